// The gateway's side of srt-ingestd (see client.cc).
#pragma once
#include <napi.h>
#include <sys/types.h>

#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <unordered_map>

#include "control.h"

class IngestServer : public Napi::ObjectWrap<IngestServer> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit IngestServer(const Napi::CallbackInfo& info);
  ~IngestServer() override;

 private:
  Napi::Value Listen(const Napi::CallbackInfo& info);
  Napi::Value SetStreams(const Napi::CallbackInfo& info);
  Napi::Value CloseConnection(const Napi::CallbackInfo& info);
  Napi::Value Attach(const Napi::CallbackInfo& info);
  Napi::Value StatsAll(const Napi::CallbackInfo& info);
  bool Post(nlohmann::json cmd, int fd = -1);
  Napi::Value Stop(const Napi::CallbackInfo& info);
  Napi::Value Pid(const Napi::CallbackInfo& info);
  nlohmann::json Request(Napi::Env env, nlohmann::json cmd, int fd = -1);
  void ReadLoop();
  void Shutdown();

  std::string options_;
  pid_t pid_ = 0;
  int sock_ = -1;
  Napi::ThreadSafeFunction tsfn_;
  std::thread reader_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<int64_t, nlohmann::json> replies_;
  int64_t nextReq_ = 0;
  bool dead_ = false;
  bool stopping_ = false;
};
