// SRT listeners on one UDP port serving many publishers, routed by streamid: one libsrt multiplexer
// (UDP socket + receive and send threads) per listener, the kernel spreading callers over them (SO_REUSEPORT).
// Runs in srt-ingestd (daemon.cc), a process of its own beside the gateway's Node process: libsrt's threads
// and every media byte stay out of the JavaScript process; events leave as JSON through `sink`.
#pragma once
#include <srt/srt.h>

#include <functional>
#include <nlohmann/json.hpp>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "ts_probe.h"

struct StreamEntry {
  std::string passphrase;
  bool disabled = false;
  // When set, callers are refused with this message (a stream just stopped through the API).
  std::string hold;
};

// Media bytes never leave native code: the receive thread writes them to the segmenter's stdin
// (a pipe JavaScript attaches once FFmpeg runs), and holds them in `head` until then.
struct Connection {
  SRTSOCKET sock = SRT_INVALID_SOCK;
  std::string stream;
  std::string peer;
  std::mutex mu;
  std::condition_variable cv;
  // Bytes received before the segmenter is attached; bounded by Core::maxPending (reading waits beyond).
  std::vector<char> head;
  // Write end of the segmenter's stdin, owned (and closed) by the receive thread once attached.
  int sinkFd = -1;
  // The segmenter stopped reading (exited): what arrives after is counted and dropped.
  bool sinkBroken = false;
  std::atomic<bool> closing{false};
  std::unique_ptr<TsProbe> probe;
  std::atomic<uint64_t> bytes{0};
  std::atomic<uint64_t> bytesWritten{0};
  std::atomic<uint64_t> bytesDropped{0};
  std::atomic<int64_t> lastDataMs{0};
  // Time spent waiting for the segmenter to take bytes (pipe full), in ms: backpressure seen.
  std::atomic<uint64_t> blockedMs{0};
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
  // Where events go (the daemon's control socket); called from libsrt's and the receive threads.
  std::function<void(const nlohmann::json&)> sink;
  // One per multiplexer: each has its own UDP socket on the same port and its own libsrt receive thread.
  std::vector<SRTSOCKET> listeners;
  int listenerCount = 1;
  bool auth = true;
  int peerIdleMs = 5000;
  int latencyMs = 120;
  // Bytes held per connection until its segmenter is attached (the probe decides within 16 MB).
  size_t maxPending = 24 * 1024 * 1024;
  double segmentSeconds = 4;
  // A connection that moves no byte for this long (caller silent while connected, segmenter not
  // reading, or never attached) is ended with reason "stalled".
  int stallMs = 15000;
  // After the caller hung up, bytes not yet handed to a segmenter wait this long for one.
  int lingerMs = 30000;
  // Bytes asked for each UDP socket's kernel receive buffer, and what the kernel granted.
  int udpReceiveBuffer = 32 * 1024 * 1024;
  int udpReceiveBufferGranted = 0;

  std::mutex tableMu;
  std::unordered_map<std::string, StreamEntry> table;

  std::mutex connsMu;
  std::unordered_map<SRTSOCKET, std::shared_ptr<Connection>> conns;

  std::mutex handshakesMu;
  std::deque<PendingHandshake> handshakes;

  std::atomic<bool> stopping{false};
  std::vector<std::thread> acceptThreads;
  std::mutex threadsMu;
  std::condition_variable threadsCv;
  int liveThreads = 0;

  std::mutex emitMu;
  bool released = false;

  void Emit(const nlohmann::json& ev);
  void EmitRefused(const std::string& stream, const std::string& peer, const std::string& reason, const std::string& message, int code);
  void EmitLog(int level, const std::string& area, const std::string& message);

  void Start(const std::string& host, int port);
  void Stop();
  // Binds one listener on its own UDP socket; reusePort when several share the port.
  SRTSOCKET OpenListener(const sockaddr_in& sa, const std::string& host, int port, bool reusePort);
  int RaiseReceiveThreads();
  // libsrt receive threads running at a raised priority (0 when the process may not raise it).
  int receiveThreadsRaised = 0;
  void AcceptLoop(SRTSOCKET listener);
  void RecvLoop(std::shared_ptr<Connection> conn);
  void EmitProbe(const std::shared_ptr<Connection>& conn);
  enum class SinkResult { Ok, Stalled, Closing };
  // Writes all of data to the segmenter's pipe, waiting (backpressure) while it is full.
  SinkResult WriteSink(Connection& conn, int fd, const char* data, size_t len, int64_t& lastProgressMs);
  int OnListen(SRTSOCKET ns, int hsversion, const sockaddr* peer, const char* streamid);
  // Returns true when the log line was a passphrase failure of one of this server's handshakes.
  bool OnAuthFailureLog(const std::string& message, bool unsecure);
};

// Commands from the gateway (daemon.cc): a connection's current state.
std::shared_ptr<Connection> FindConnection(Core& core, SRTSOCKET id);
nlohmann::json ConnectionStats(Core& core, SRTSOCKET id);
bool AttachSink(Core& core, SRTSOCKET id, int fd);
bool CloseConnection(Core& core, SRTSOCKET id);
void SetStreamTable(Core& core, const nlohmann::json& streams);

void InstallLogHandler();
