// posix_spawn for segmenters (see spawn.cc for why not Node's spawn).
#pragma once
#include <napi.h>
#include <spawn.h>

void InitSpawn(Napi::Env env, Napi::Object exports);

// Attributes every child of the gateway starts with: default signal handlers and no blocked signals.
void InitChildAttributes(posix_spawnattr_t* attr);
