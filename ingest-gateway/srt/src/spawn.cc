// Segmenters started with posix_spawn: glibc's is a vfork-style clone that shares the parent's memory until
// exec, so starting one costs the same whatever the gateway's size. Node's spawn forks, copying the page tables
// of every mapped byte: 34 ms per FFmpeg at 800 MB here, all of it on the event loop.
#include "spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

void InitChildAttributes(posix_spawnattr_t* attr) {
  posix_spawnattr_init(attr);
  // Node ignores SIGPIPE and blocks some signals in its threads; the child starts with defaults, as libuv's do.
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(attr, &all);
  posix_spawnattr_setsigmask(attr, &none);
  posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
}

namespace {

// spawn(file, args, stdinFd) → { pid, stdoutFd, stderrFd }; stdout and stderr are pipes whose read ends
// (close-on-exec) JavaScript wraps as sockets. Throws with errno's text when the program cannot be started.
Napi::Value SpawnJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string file = info[0].ToString().Utf8Value();
  auto argsJs = info[1].As<Napi::Array>();
  int stdinFd = info[2].ToNumber().Int32Value();
  std::vector<std::string> args{file};
  for (uint32_t i = 0; i < argsJs.Length(); i++) args.push_back(argsJs.Get(i).ToString().Utf8Value());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0) throw Napi::Error::New(env, std::string("pipe2: ") + strerror(errno));
  if (pipe2(err, O_CLOEXEC) != 0) {
    int e = errno;
    close(out[0]), close(out[1]);
    throw Napi::Error::New(env, std::string("pipe2: ") + strerror(e));
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  // dup2 clears close-on-exec on the copy, so only fds 0-2 reach the child.
  posix_spawn_file_actions_adddup2(&fa, stdinFd, 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  posix_spawnattr_t attr;
  InitChildAttributes(&attr);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, file.c_str(), &fa, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  close(out[1]);
  close(err[1]);
  if (rc != 0) {
    close(out[0]);
    close(err[0]);
    auto e = Napi::Error::New(env, std::string("cannot run ") + file + ": " + strerror(rc));
    e.Set("code", Napi::String::New(env, rc == ENOENT ? "ENOENT" : "ESPAWN"));
    throw e;
  }
  auto o = Napi::Object::New(env);
  o.Set("pid", pid);
  o.Set("stdoutFd", out[0]);
  o.Set("stderrFd", err[0]);
  return o;
}

// waitExit(pid, callback(code, signal)): a thread waits for this child only (its pid, so libuv's own children
// are never touched) without reaping it; the zombie is reaped on the JavaScript thread, right before the
// callback, so until JavaScript knows of the exit the pid cannot be reused and a kill() cannot hit another process.
Napi::Value WaitExitJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  pid_t pid = info[0].ToNumber().Int32Value();
  auto tsfn = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "waitpid", 0, 1);
  std::thread([pid, tsfn]() mutable {
    pthread_setname_np(pthread_self(), "seg-wait");
    siginfo_t si{};
    while (waitid(P_PID, pid, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR) {
    }
    tsfn.BlockingCall(new pid_t(pid), [](Napi::Env env, Napi::Function cb, pid_t* p) {
      int status = 0;
      pid_t r;
      do r = waitpid(*p, &status, 0);
      while (r < 0 && errno == EINTR);
      delete p;
      bool exited = r >= 0 && WIFEXITED(status);
      int sig = r >= 0 && WIFSIGNALED(status) ? WTERMSIG(status) : 0;
      cb.Call({exited ? Napi::Number::New(env, WEXITSTATUS(status)) : env.Null(), Napi::Number::New(env, sig)});
    });
    tsfn.Release();
  }).detach();
  return env.Undefined();
}

}  // namespace

void InitSpawn(Napi::Env env, Napi::Object exports) {
  exports.Set("spawn", Napi::Function::New(env, SpawnJs));
  exports.Set("waitExit", Napi::Function::New(env, WaitExitJs));
}
