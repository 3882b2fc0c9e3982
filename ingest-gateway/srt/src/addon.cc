#include <napi.h>
#include <srt/srt.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "client.h"
#include "spawn.h"
#include "ts_probe.h"
#include "streamid.h"

namespace {

Napi::Value ParseStreamIdJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  StreamIdResult r = ParseStreamId(info[0].ToString().Utf8Value());
  auto o = Napi::Object::New(env);
  if (r.ok) o.Set("name", r.name);
  else o.Set("error", r.error);
  return o;
}

// [readFd, writeFd], both close-on-exec so no other child inherits them (FFmpeg gets the read end as
// its stdin through spawn, which clears the flag on the copy); the pipe is enlarged to 1 MB.
Napi::Value MakePipe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw Napi::Error::New(env, std::string("pipe2: ") + strerror(errno));
  fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
  auto arr = Napi::Array::New(env, 2);
  arr.Set(0u, fds[0]);
  arr.Set(1u, fds[1]);
  return arr;
}

// probeTs(buffers, segmentSeconds): the receive thread's probe run over test input.
Napi::Value ProbeTsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto chunks = info[0].As<Napi::Array>();
  TsProbe probe(info[1].ToNumber().DoubleValue());
  for (uint32_t i = 0; i < chunks.Length() && !probe.decision(); i++) {
    auto b = chunks.Get(i).As<Napi::Buffer<uint8_t>>();
    probe.Push(b.Data(), b.Length());
  }
  if (!probe.decision()) return env.Undefined();
  const ProbeDecision& d = *probe.decision();
  auto o = Napi::Object::New(env);
  o.Set("profile", d.profile);
  o.Set("reason", d.reason);
  if (!d.video.empty()) o.Set("video", d.video);
  if (!d.audio.empty()) o.Set("audio", d.audio);
  if (d.keyframeIntervalSeconds >= 0) o.Set("keyframeIntervalSeconds", d.keyframeIntervalSeconds);
  return o;
}

Napi::Value HasIdrSliceJs(const Napi::CallbackInfo& info) {
  auto b = info[0].As<Napi::Buffer<uint8_t>>();
  return Napi::Boolean::New(info.Env(), HasIdrSlice(b.Data(), b.Length()));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("IngestServer", IngestServer::Init(env));
  exports.Set("parseStreamId", Napi::Function::New(env, ParseStreamIdJs));
  exports.Set("srtVersion", Napi::String::New(env, SRT_VERSION_STRING));
  exports.Set("makePipe", Napi::Function::New(env, MakePipe));
  exports.Set("hasIdrSlice", Napi::Function::New(env, HasIdrSliceJs));
  exports.Set("probeTs", Napi::Function::New(env, ProbeTsJs));
  InitSpawn(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(srt_ingest, Init)
