#include <napi.h>
#include <srt/srt.h>

#include "server.h"
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

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  srt_startup();
  InstallLogHandler();
  exports.Set("IngestServer", IngestServer::Init(env));
  exports.Set("parseStreamId", Napi::Function::New(env, ParseStreamIdJs));
  exports.Set("srtVersion", Napi::String::New(env, SRT_VERSION_STRING));
  return exports;
}

}  // namespace

NODE_API_MODULE(srt_ingest, Init)
