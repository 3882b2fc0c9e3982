// IngestServer as JavaScript sees it: a client of srt-ingestd (daemon.cc), which it starts as a child process.
// Commands are answered synchronously (a round trip over a Unix socket, tens of microseconds); events arrive
// on a reader thread and reach JavaScript through a thread-safe function. No media byte passes through here.
#include "client.h"
#include "spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

extern char** environ;

using nlohmann::json;

namespace {

std::string Stringify(Napi::Env env, Napi::Value v) {
  auto JSON = env.Global().Get("JSON").As<Napi::Object>();
  auto s = JSON.Get("stringify").As<Napi::Function>().Call(JSON, {v});
  return s.IsString() ? s.As<Napi::String>().Utf8Value() : "null";
}

Napi::Value Parse(Napi::Env env, const std::string& text) {
  auto JSON = env.Global().Get("JSON").As<Napi::Object>();
  return JSON.Get("parse").As<Napi::Function>().Call(JSON, {Napi::String::New(env, text)});
}

}  // namespace

Napi::Function IngestServer::Init(Napi::Env env) {
  return DefineClass(env, "IngestServer",
                     {
                         InstanceMethod("listen", &IngestServer::Listen),
                         InstanceMethod("setStreams", &IngestServer::SetStreams),
                         InstanceMethod("close", &IngestServer::CloseConnection),
                         InstanceMethod("attach", &IngestServer::Attach),
                         InstanceMethod("statsAll", &IngestServer::StatsAll),
                         InstanceMethod("stop", &IngestServer::Stop),
                         InstanceAccessor("pid", &IngestServer::Pid, nullptr),
                     });
}

IngestServer::IngestServer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<IngestServer>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction())
    throw Napi::TypeError::New(env, "new IngestServer(options, onEvent): expected an options object and a function");
  auto opts = info[0].As<Napi::Object>();
  if (!opts.Has("daemon") || !opts.Get("daemon").IsString())
    throw Napi::TypeError::New(env, "new IngestServer(options): options.daemon must be the path of srt-ingestd");
  std::string daemon = opts.Get("daemon").As<Napi::String>().Utf8Value();
  options_ = Stringify(env, opts);

  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    throw Napi::Error::New(env, std::string("socketpair: ") + strerror(errno));
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, sv[1], 3);
  posix_spawnattr_t attr;
  InitChildAttributes(&attr);
  char* argv[] = {const_cast<char*>(daemon.c_str()), nullptr};
  int rc = posix_spawn(&pid_, daemon.c_str(), &fa, &attr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  close(sv[1]);
  if (rc != 0) {
    close(sv[0]);
    throw Napi::Error::New(env, "cannot start the SRT daemon " + daemon + ": " + strerror(rc) + "; run 'bash infra/install.sh' to build it");
  }
  sock_ = sv[0];
  tsfn_ = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "srt-ingestd", 0, 1);
  reader_ = std::thread([this] { ReadLoop(); });
}

IngestServer::~IngestServer() { Shutdown(); }

void IngestServer::ReadLoop() {
  LineReader reader(sock_);
  std::string line;
  while (reader.Next(line)) {
    json j = json::parse(line, nullptr, false);
    if (j.is_object() && j.contains("reply") && j["reply"].is_number_integer()) {
      // The id first: json's assignment takes its argument by value, which C++17 builds before the left side.
      int64_t id = j["reply"].get<int64_t>();
      std::lock_guard<std::mutex> l(mu_);
      replies_[id] = std::move(j);
      cv_.notify_all();
      continue;
    }
    tsfn_.NonBlockingCall(new std::string(std::move(line)), [](Napi::Env env, Napi::Function fn, std::string* text) {
      Napi::Value ev = Parse(env, *text);
      delete text;
      fn.Call({ev});
    });
  }
  // End of stream: the daemon exited. Unless we stopped it, the gateway must hear that no caller can reach it.
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  bool expected;
  {
    std::lock_guard<std::mutex> l(mu_);
    dead_ = true;
    expected = stopping_;
    cv_.notify_all();
  }
  if (!expected) {
    std::string why = WIFSIGNALED(status) ? "killed by signal " + std::to_string(WTERMSIG(status)) : "exited with " + std::to_string(WEXITSTATUS(status));
    json ev{{"type", "fatal"}, {"message", "the SRT listener process (srt-ingestd, pid " + std::to_string(pid_) + ") " + why + "; no caller can reach this gateway"}};
    tsfn_.NonBlockingCall(new std::string(ev.dump()), [](Napi::Env env, Napi::Function fn, std::string* text) {
      Napi::Value v = Parse(env, *text);
      delete text;
      fn.Call({v});
    });
  }
  tsfn_.Release();
}

json IngestServer::Request(Napi::Env env, json cmd, int fd) {
  int64_t req;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (dead_) throw Napi::Error::New(env, "the SRT listener process (srt-ingestd) is not running");
    req = ++nextReq_;
  }
  cmd["req"] = req;
  if (!SendLine(sock_, cmd.dump(), fd)) throw Napi::Error::New(env, "the SRT listener process (srt-ingestd) is gone");
  std::unique_lock<std::mutex> l(mu_);
  bool answered = cv_.wait_for(l, std::chrono::seconds(10), [&] { return dead_ || replies_.count(req) > 0; });
  if (!answered || !replies_.count(req)) throw Napi::Error::New(env, "the SRT listener process (srt-ingestd) did not answer '" + cmd.value("op", "") + "'");
  json reply = std::move(replies_[req]);
  replies_.erase(req);
  l.unlock();
  if (reply.contains("error")) throw Napi::Error::New(env, reply["error"].is_string() ? reply["error"].get<std::string>() : reply["error"].dump());
  return reply.value("result", json());
}

Napi::Value IngestServer::Listen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string host = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "0.0.0.0";
  int port = info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 9999;
  json r = Request(env, {{"op", "listen"}, {"host", host}, {"port", port}, {"options", json::parse(options_)}});
  return Parse(env, r.dump());
}

Napi::Value IngestServer::SetStreams(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) throw Napi::TypeError::New(env, "setStreams(list): expected an array of {name, passphrase, disabled}");
  Request(env, {{"op", "setStreams"}, {"streams", json::parse(Stringify(env, info[0]))}});
  return env.Undefined();
}

bool IngestServer::Post(json cmd, int fd) {
  // Sent without waiting for the answer: a round trip per call made the JavaScript thread wait for the
  // listener's thread to be scheduled, and on busy cores 100 of them in a row stalled it for seconds.
  cmd["noReply"] = true;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (dead_) return false;
  }
  return SendLine(sock_, cmd.dump(), fd);
}

Napi::Value IngestServer::CloseConnection(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Napi::Boolean::New(env, Post({{"op", "close"}, {"id", info[0].ToNumber().Int64Value()}}));
}

Napi::Value IngestServer::Attach(const Napi::CallbackInfo& info) {
  // attach(id, fd): the fd travels to the listener (SCM_RIGHTS duplicates it in flight), so ours is closed as soon as
  // it is sent. A connection already gone closes the listener's copy, and FFmpeg reads end of input.
  // false: it could not be sent, and the fd stays the caller's to close, as before.
  Napi::Env env = info.Env();
  int fd = info[1].ToNumber().Int32Value();
  bool sent = Post({{"op", "attach"}, {"id", info[0].ToNumber().Int64Value()}}, fd);
  if (sent) close(fd);
  return Napi::Boolean::New(env, sent);
}

Napi::Value IngestServer::StatsAll(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Parse(env, Request(env, {{"op", "statsAll"}}).dump());
}

Napi::Value IngestServer::Stop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool send;
  {
    std::lock_guard<std::mutex> l(mu_);
    send = !dead_ && !stopping_;
    stopping_ = true;
  }
  if (send) {
    try {
      Request(env, {{"op", "stop"}});
    } catch (const Napi::Error&) {
      // Already gone: nothing to stop.
    }
  }
  Shutdown();
  return env.Undefined();
}

Napi::Value IngestServer::Pid(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), pid_); }

void IngestServer::Shutdown() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  if (sock_ >= 0) {
    // The daemon reads end of stream and exits; the reader thread then reaps it.
    shutdown(sock_, SHUT_RDWR);
  }
  if (reader_.joinable()) reader_.join();
  if (sock_ >= 0) close(sock_);
  sock_ = -1;
}
