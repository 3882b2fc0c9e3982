// posix_spawn for segmenters (see spawn.cc for why not Node's spawn).
#pragma once
#include <napi.h>

void InitSpawn(Napi::Env env, Napi::Object exports);
