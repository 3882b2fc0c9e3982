// One SRT listener on one UDP port serving many publishers, routed by streamid.
#pragma once
#include <napi.h>
#include <srt/srt.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

struct StreamEntry {
  std::string passphrase;
  bool disabled = false;
  // When set, callers are refused with this message (a stream just stopped through the API).
  std::string hold;
};

struct Connection {
  SRTSOCKET sock = SRT_INVALID_SOCK;
  std::string stream;
  std::string peer;
  std::mutex mu;
  std::condition_variable cv;
  // Bytes received but not yet handed to JavaScript; bounded by Core::maxPending.
  std::vector<char> pending;
  bool scheduled = false;
  int64_t pendingSinceMs = 0;
  bool paused = false;
  bool closing = false;
  std::atomic<uint64_t> bytes{0};
  std::atomic<int64_t> lastDataMs{0};
};

// A handshake the listen callback let through; kept briefly so a passphrase failure that
// libsrt reports only through its log can be attributed to a stream and a peer.
struct PendingHandshake {
  SRTSOCKET sock;
  std::string stream;
  std::string peer;
  int64_t atMs;
};

class Core : public std::enable_shared_from_this<Core> {
 public:
  Napi::ThreadSafeFunction tsfn;
  SRTSOCKET listener = SRT_INVALID_SOCK;
  bool auth = true;
  int peerIdleMs = 5000;
  int latencyMs = 120;
  size_t maxPending = 4 * 1024 * 1024;

  std::mutex tableMu;
  std::unordered_map<std::string, StreamEntry> table;

  std::mutex connsMu;
  std::unordered_map<SRTSOCKET, std::shared_ptr<Connection>> conns;

  std::mutex handshakesMu;
  std::deque<PendingHandshake> handshakes;

  std::atomic<bool> stopping{false};
  std::thread acceptThread;
  std::mutex threadsMu;
  std::condition_variable threadsCv;
  int liveThreads = 0;

  std::mutex emitMu;
  bool released = false;

  void Emit(std::function<void(Napi::Env, Napi::Function)> fn);
  void EmitRefused(const std::string& stream, const std::string& peer, const std::string& reason, const std::string& message, int code);
  void EmitLog(int level, const std::string& area, const std::string& message);

  void Start(const std::string& host, int port);
  void Stop();
  void AcceptLoop();
  void RecvLoop(std::shared_ptr<Connection> conn);
  // Hands the connection's pending bytes to JavaScript in one call (at most one call queued at a time).
  void ScheduleDelivery(const std::shared_ptr<Connection>& conn);
  int OnListen(SRTSOCKET ns, int hsversion, const sockaddr* peer, const char* streamid);
  // Returns true when the log line was a passphrase failure of one of this server's handshakes.
  bool OnAuthFailureLog(const std::string& message, bool unsecure);
};

class IngestServer : public Napi::ObjectWrap<IngestServer> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit IngestServer(const Napi::CallbackInfo& info);
  ~IngestServer() override;

 private:
  Napi::Value Listen(const Napi::CallbackInfo& info);
  Napi::Value SetStreams(const Napi::CallbackInfo& info);
  Napi::Value CloseConnection(const Napi::CallbackInfo& info);
  Napi::Value Pause(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value Stop(const Napi::CallbackInfo& info);

  std::shared_ptr<Core> core_;
};

void InstallLogHandler();
