#include "server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <srt/access_control.h>
#include <sys/socket.h>
#include <sys/syslog.h>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "streamid.h"

namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string FormatAddr(const sockaddr* sa) {
  if (!sa) return "";
  char host[INET6_ADDRSTRLEN] = {0};
  if (sa->sa_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    return std::string(host) + ":" + std::to_string(ntohs(in->sin_port));
  }
  if (sa->sa_family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    return "[" + std::string(host) + "]:" + std::to_string(ntohs(in6->sin6_port));
  }
  return "";
}

int ListenHook(void* opaque, SRTSOCKET ns, int hsversion, const sockaddr* peer, const char* streamid) {
  return static_cast<Core*>(opaque)->OnListen(ns, hsversion, peer, streamid);
}

// libsrt's log handler is process-wide; it forwards to every live server.
std::mutex gCoresMu;
std::vector<std::weak_ptr<Core>> gCores;

void LogHandler(void*, int level, const char*, int, const char* area, const char* message) {
  std::string msg = message ? message : "";
  // A passphrase mismatch is refused inside libsrt after the listen callback said yes: its log is the only
  // trace. This one line per refusal names the new socket (@id), which ties it to the handshake.
  bool refusal = msg.find("connection rejected due to") != std::string::npos;
  bool badSecret = refusal && msg.find("BADSECRET") != std::string::npos;
  bool unsecure = refusal && msg.find("UNSECURE") != std::string::npos;
  std::vector<std::shared_ptr<Core>> cores;
  {
    std::lock_guard<std::mutex> l(gCoresMu);
    for (auto& w : gCores)
      if (auto c = w.lock()) cores.push_back(c);
  }
  for (auto& c : cores) {
    if (badSecret || unsecure) {
      if (c->OnAuthFailureLog(msg, unsecure)) break;
    } else if (level <= LOG_WARNING) {
      c->EmitLog(level, area ? area : "", msg);
    }
  }
}

}  // namespace

void InstallLogHandler() {
  srt_setloghandler(nullptr, LogHandler);
  srt_setloglevel(LOG_WARNING);
  srt_setlogflags(SRT_LOGF_DISABLE_TIME | SRT_LOGF_DISABLE_THREADNAME | SRT_LOGF_DISABLE_EOL);
}

void Core::Emit(const nlohmann::json& ev) {
  std::lock_guard<std::mutex> l(emitMu);
  if (released || !sink) return;
  sink(ev);
}

void Core::EmitRefused(const std::string& stream, const std::string& peer, const std::string& reason, const std::string& message, int code) {
  Emit({{"type", "refused"}, {"stream", stream}, {"peer", peer}, {"reason", reason}, {"message", message}, {"code", code}});
}

void Core::EmitLog(int level, const std::string& area, const std::string& message) {
  Emit({{"type", "log"}, {"level", level <= LOG_ERR ? "error" : "warn"}, {"area", area}, {"message", message}});
}

int Core::OnListen(SRTSOCKET ns, int hsversion, const sockaddr* peerAddr, const char* streamid) {
  // Runs on libsrt's receive thread, shared by every connection: answer from memory, never block.
  std::string peer = FormatAddr(peerAddr);
  StreamIdResult parsed = ParseStreamId(streamid ? streamid : "");
  if (hsversion < 5) parsed = StreamIdResult{false, "", "the caller speaks SRT handshake v4, which carries no streamid; use SRT 1.3 or newer"};
  if (!parsed.ok) {
    srt_setrejectreason(ns, SRT_REJX_BAD_REQUEST);
    EmitRefused("", peer, "bad-streamid", parsed.error, SRT_REJX_BAD_REQUEST);
    return -1;
  }
  StreamEntry entry;
  bool found = false;
  {
    std::lock_guard<std::mutex> l(tableMu);
    auto it = table.find(parsed.name);
    if (it != table.end()) {
      entry = it->second;
      found = true;
    }
  }
  if (found && !entry.hold.empty()) {
    srt_setrejectreason(ns, SRT_REJX_LOCKED);
    EmitRefused(parsed.name, peer, "held", entry.hold, SRT_REJX_LOCKED);
    return -1;
  }
  if (auth) {
    if (!found) {
      srt_setrejectreason(ns, SRT_REJX_NOTFOUND);
      EmitRefused(parsed.name, peer, "unknown-stream",
                  "no stream named '" + parsed.name + "' exists; create it (POST /streams) or check the streamid", SRT_REJX_NOTFOUND);
      return -1;
    }
    if (entry.disabled) {
      srt_setrejectreason(ns, SRT_REJX_FORBIDDEN);
      EmitRefused(parsed.name, peer, "disabled", "stream '" + parsed.name + "' is disabled; enable it before publishing", SRT_REJX_FORBIDDEN);
      return -1;
    }
    if (srt_setsockflag(ns, SRTO_PASSPHRASE, entry.passphrase.data(), static_cast<int>(entry.passphrase.size())) == SRT_ERROR) {
      srt_setrejectreason(ns, SRT_REJX_ISE);
      EmitRefused(parsed.name, peer, "bad-secret-config",
                  "stream '" + parsed.name + "' has a secret libsrt refuses (it must be 10-79 characters); recreate the stream", SRT_REJX_ISE);
      return -1;
    }
  }
  std::lock_guard<std::mutex> l(handshakesMu);
  int64_t now = NowMs();
  while (!handshakes.empty() && now - handshakes.front().atMs > 10000) handshakes.pop_front();
  handshakes.push_back({ns, parsed.name, peer, now});
  return 0;
}

bool Core::OnAuthFailureLog(const std::string& message, bool unsecure) {
  PendingHandshake hs{SRT_INVALID_SOCK, "", "", 0};
  {
    std::lock_guard<std::mutex> l(handshakesMu);
    if (handshakes.empty()) return false;
    // libsrt's log line may name the socket as @<id>; otherwise the newest handshake is the one failing.
    auto match = handshakes.end();
    for (auto it = handshakes.begin(); it != handshakes.end(); ++it) {
      if (message.find("@" + std::to_string(it->sock)) != std::string::npos) match = it;
    }
    if (match == handshakes.end()) match = std::prev(handshakes.end());
    hs = *match;
    handshakes.erase(match);
  }
  // UNSECURE: one side has a passphrase and the other none; with auth on the server always has one.
  if (unsecure && auth)
    EmitRefused(hs.stream, hs.peer, "no-passphrase",
                "stream '" + hs.stream + "' needs its passphrase: add &passphrase=<secret> to the SRT URL", SRT_REJ_BADSECRET);
  else if (unsecure)
    EmitRefused(hs.stream, hs.peer, "unexpected-passphrase",
                "the caller sent a passphrase but this server runs without ingest auth; remove passphrase= from the SRT URL", SRT_REJ_UNSECURE);
  else
    EmitRefused(hs.stream, hs.peer, "wrong-passphrase",
                "wrong passphrase for stream '" + hs.stream + "'; copy the secret from POST /streams into passphrase=", SRT_REJ_BADSECRET);
  return true;
}

constexpr int kRecvBufferPackets = 32768;
constexpr int kReceiveNice = -10;

SRTSOCKET Core::OpenListener(const sockaddr_in& sa, const std::string& host, int port, bool reusePort) {
  SRTSOCKET listener = srt_create_socket();
  if (listener == SRT_INVALID_SOCK) throw std::runtime_error(std::string("srt_create_socket: ") + srt_getlasterror_str());
  int yes = 1;
  srt_setsockflag(listener, SRTO_RCVSYN, &yes, sizeof yes);
  srt_setsockflag(listener, SRTO_PEERIDLETIMEO, &peerIdleMs, sizeof peerIdleMs);
  srt_setsockflag(listener, SRTO_RCVLATENCY, &latencyMs, sizeof latencyMs);
  srt_setsockflag(listener, SRTO_LATENCY, &latencyMs, sizeof latencyMs);
  // The receive buffer must hold the caller's latency window at the rate it sends: with libsrt's
  // default (8192 packets, 1.2 s at 60 Mbps) a caller sending 20x real time with latency=2000 ms filled
  // it with packets not yet due, after which libsrt 1.5.1 never delivered again (the wedge of issue 12).
  // 32k packets (48 MB) cover 2 s at ~190 Mbps; libsrt allocates the space only as packets arrive.
  // TSBPD stays on (the well-trodden live path: in order, late packets dropped; turned off, libsrt
  // 1.5.1 hands out FFmpeg's messages, sent "not in order", out of order after a loss). Packets not yet
  // due when a caller hangs up are read after the break (see RecvLoop).
  int fc = kRecvBufferPackets;
  int rcvbuf = kRecvBufferPackets * 1456;
  srt_setsockflag(listener, SRTO_FC, &fc, sizeof fc);
  srt_setsockflag(listener, SRTO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  // The UDP socket is ours: its real buffer size can be read back (the kernel caps it at net.core.rmem_max),
  // and with SO_REUSEPORT several of them share the port. libsrt then gives each socket handed over with
  // srt_bind_acquire a multiplexer of its own (it only looks for one to share when it binds by address), and
  // connections accepted on a listener stay on its multiplexer. The kernel picks a socket by hashing the
  // caller's address and port, so all packets of one caller reach the same multiplexer.
  int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (udp < 0) {
    srt_close(listener);
    throw std::runtime_error(std::string("socket(udp): ") + strerror(errno));
  }
  if (reusePort && setsockopt(udp, SOL_SOCKET, SO_REUSEPORT, &yes, sizeof yes) != 0) {
    std::string err = strerror(errno);
    close(udp);
    srt_close(listener);
    throw std::runtime_error("setsockopt(SO_REUSEPORT): " + err + "; set SRT_LISTENERS=1");
  }
  if (bind(udp, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
    std::string err = strerror(errno);
    close(udp);
    srt_close(listener);
    throw std::runtime_error("cannot bind SRT to udp " + host + ":" + std::to_string(port) + " (" + err +
                             "); another process may use the port: set SRT_PORT");
  }
  int want = udpReceiveBuffer;
  srt_setsockflag(listener, SRTO_UDP_RCVBUF, &want, sizeof want);
  if (srt_bind_acquire(listener, udp) == SRT_ERROR) {
    std::string err = srt_getlasterror_str();
    close(udp);
    srt_close(listener);
    throw std::runtime_error("cannot bind SRT to udp " + host + ":" + std::to_string(port) + " (" + err + ")");
  }
  // libsrt has set SO_RCVBUF from SRTO_UDP_RCVBUF; Linux reports double what it grants (its bookkeeping share).
  int got = 0;
  socklen_t gotLen = sizeof got;
  if (getsockopt(udp, SOL_SOCKET, SO_RCVBUF, &got, &gotLen) == 0) udpReceiveBufferGranted = got / 2;
  srt_listen_callback(listener, ListenHook, this);
  if (srt_listen(listener, 64) == SRT_ERROR) {
    std::string err = srt_getlasterror_str();
    srt_close(listener);
    throw std::runtime_error("srt_listen: " + err);
  }
  return listener;
}

// libsrt's receive threads (one per listener, named "SRT:RcvQ:w<n>") drain the UDP sockets. When one falls behind
// (busy cores), the kernel drops datagrams and the retransmissions cost more than the time it yielded: it runs at
// nice -10 when the process may raise priorities (root or CAP_SYS_NICE). Returns how many threads were raised.
int Core::RaiseReceiveThreads() {
  int raised = 0;
  DIR* d = opendir("/proc/self/task");
  if (!d) return 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    char path[320];
    snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    char comm[32] = {0};
    ssize_t n = read(fd, comm, sizeof comm - 1);
    close(fd);
    if (n <= 0 || strncmp(comm, "SRT:RcvQ", 8) != 0) continue;
    if (setpriority(PRIO_PROCESS, static_cast<id_t>(atoi(e->d_name)), kReceiveNice) == 0) raised++;
  }
  closedir(d);
  return raised;
}

void Core::Start(const std::string& host, int port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &sa.sin_addr) != 1)
    throw std::runtime_error("SRT_HOST '" + host + "' is not an IPv4 address; use 0.0.0.0 or a local address");
  bool reusePort = listenerCount > 1;
  if (reusePort) {
    // SO_REUSEPORT would let a second gateway on the same port join our group and take a share of the
    // callers; a plain bind first fails when anything holds the port, as a single listener's bind does.
    int probe = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (probe >= 0 && bind(probe, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      std::string err = strerror(errno);
      close(probe);
      throw std::runtime_error("cannot bind SRT to udp " + host + ":" + std::to_string(port) + " (" + err +
                               "); another process may use the port: set SRT_PORT");
    }
    if (probe >= 0) close(probe);
  }
  try {
    for (int i = 0; i < listenerCount; i++) listeners.push_back(OpenListener(sa, host, port, reusePort));
  } catch (...) {
    for (SRTSOCKET l : listeners) srt_close(l);
    listeners.clear();
    throw;
  }
  receiveThreadsRaised = RaiseReceiveThreads();
  {
    std::lock_guard<std::mutex> l(gCoresMu);
    gCores.push_back(weak_from_this());
  }
  auto self = shared_from_this();
  for (SRTSOCKET l : listeners) acceptThreads.emplace_back([self, l] { self->AcceptLoop(l); });
}

void Core::AcceptLoop(SRTSOCKET listener) {
  while (!stopping) {
    sockaddr_storage addr{};
    int len = sizeof addr;
    SRTSOCKET s = srt_accept(listener, reinterpret_cast<sockaddr*>(&addr), &len);
    if (s == SRT_INVALID_SOCK) {
      if (stopping) break;
      EmitLog(LOG_ERR, "accept", std::string("srt_accept failed: ") + srt_getlasterror_str());
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    char sid[600] = {0};
    int sidlen = sizeof sid - 1;
    srt_getsockflag(s, SRTO_STREAMID, sid, &sidlen);
    StreamIdResult parsed = ParseStreamId(std::string(sid, sidlen > 0 ? sidlen : 0));
    {
      std::lock_guard<std::mutex> l(handshakesMu);
      for (auto it = handshakes.begin(); it != handshakes.end(); ++it)
        if (it->sock == s) {
          handshakes.erase(it);
          break;
        }
    }
    auto conn = std::make_shared<Connection>();
    conn->sock = s;
    conn->stream = parsed.name;
    conn->peer = FormatAddr(reinterpret_cast<sockaddr*>(&addr));
    conn->lastDataMs = NowMs();
    conn->probe = std::make_unique<TsProbe>(segmentSeconds);
    {
      std::lock_guard<std::mutex> l(connsMu);
      conns[s] = conn;
    }
    {
      std::lock_guard<std::mutex> l(threadsMu);
      liveThreads++;
    }
    Emit({{"type", "connect"}, {"id", conn->sock}, {"stream", conn->stream}, {"peer", conn->peer}});
    auto self = shared_from_this();
    std::thread([self, conn] { self->RecvLoop(conn); }).detach();
  }
}

constexpr int kRecvTimeoutMs = 200;
constexpr size_t kBatchBytes = 64 * 1024;
// 50 ms between polls: 20 wake-ups a second per stream (at 20 ms the receive threads cost 0.15 % of a core per stream).
constexpr int kPollMs = 50;
constexpr int64_t kBatchMs = 100;

void Core::EmitProbe(const std::shared_ptr<Connection>& conn) {
  ProbeDecision d = *conn->probe->decision();
  nlohmann::json ev{{"type", "probe"}, {"id", conn->sock}, {"profile", d.profile}, {"reason", d.reason}};
  if (!d.video.empty()) ev["video"] = d.video;
  if (!d.audio.empty()) ev["audio"] = d.audio;
  if (d.keyframeIntervalSeconds >= 0) ev["keyframeIntervalSeconds"] = d.keyframeIntervalSeconds;
  Emit(ev);
}

Core::SinkResult Core::WriteSink(Connection& conn, int fd, const char* data, size_t len, int64_t& lastProgressMs) {
  while (len > 0) {
    if (conn.sinkBroken) {
      conn.bytesDropped += len;
      return SinkResult::Ok;
    }
    ssize_t w = write(fd, data, len);
    if (w > 0) {
      data += w;
      len -= static_cast<size_t>(w);
      conn.bytesWritten += static_cast<uint64_t>(w);
      lastProgressMs = NowMs();
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // Backpressure: the segmenter is behind. Reading SRT waits with it; libsrt's flow control then
      // slows the caller down (no TSBPD: nothing is dropped for being late).
      pollfd p{fd, POLLOUT, 0};
      int64_t t0 = NowMs();
      poll(&p, 1, kRecvTimeoutMs);
      conn.blockedMs += static_cast<uint64_t>(NowMs() - t0);
      if (conn.closing) return SinkResult::Closing;
      if (NowMs() - lastProgressMs >= stallMs) return SinkResult::Stalled;
      continue;
    }
    // EPIPE: the segmenter exited (JavaScript hears why from FFmpeg itself).
    std::lock_guard<std::mutex> l(conn.mu);
    conn.sinkBroken = true;
  }
  return SinkResult::Ok;
}

void Core::RecvLoop(std::shared_ptr<Connection> conn) {
  // One thread per connection: srt_recvmsg blocks, and live streams are few enough per machine.
  pthread_setname_np(pthread_self(), "srt-recv");
  char buf[1500];
  std::string reason;
  // Why a "stalled" connection was ended, in words for the log and the broadcast.
  std::string detail;
  int64_t idleMs = 0;
  auto self = shared_from_this();
  // Non-blocking reads every kPollMs: blocking, the thread was woken by libsrt for every packet
  // (~285 a second per 3 Mbps stream); polling drains what is due in one go at a fraction of the wake-ups.
  bool nonblocking = false;
  srt_setsockflag(conn->sock, SRTO_RCVSYN, &nonblocking, sizeof nonblocking);
  int64_t lastProgress = NowMs();
  // Set when the caller has hung up while its last packets may not be due yet (see below).
  int64_t drainUntilMs = 0;
  int64_t idleBeforeBreakMs = 0;
  std::vector<char> batch;
  batch.reserve(kBatchBytes + sizeof buf);
  int64_t batchSinceMs = 0;
  std::vector<char> flush;
  for (;;) {
    int fd;
    bool full;
    {
      std::unique_lock<std::mutex> l(conn->mu);
      fd = conn->sinkFd;
      if (fd >= 0 && !conn->head.empty()) flush.swap(conn->head);
      full = fd < 0 && conn->head.size() >= maxPending;
      if (full) conn->cv.wait_for(l, std::chrono::milliseconds(kRecvTimeoutMs));
    }
    if (conn->closing) {
      reason = "stopped";
      break;
    }
    if (!flush.empty()) {
      SinkResult r = WriteSink(*conn, fd, flush.data(), flush.size(), lastProgress);
      flush.clear();
      flush.shrink_to_fit();
      if (r == SinkResult::Stalled) {
        reason = "stalled";
        detail = "FFmpeg took no data for " + std::to_string(stallMs / 1000) + " s";
        break;
      }
      if (r == SinkResult::Closing) { reason = "stopped"; break; }
      continue;
    }
    if (full) {
      if (NowMs() - lastProgress >= stallMs) { reason = "stalled"; break; }
      continue;
    }
    int n = srt_recvmsg(conn->sock, buf, sizeof buf);
    if (n == SRT_ERROR && (srt_getlasterror(nullptr) == SRT_ETIMEOUT || srt_getlasterror(nullptr) == SRT_EASYNCRCV)) {
      // Connected (keepalives flow) but no data: a caller that stopped sending, or a libsrt receiver
      // that stopped delivering. Either way the broadcast must not stay live forever.
      // (libsrt 1.5.1 overrun by an unpaced caller ends up here: its buffer holds packets it never delivers.)
      if (!batch.empty() && fd >= 0 && NowMs() - batchSinceMs >= kBatchMs) {
        SinkResult r = WriteSink(*conn, fd, batch.data(), batch.size(), lastProgress);
        batch.clear();
        if (r == SinkResult::Closing) { reason = "stopped"; break; }
      }
      if (NowMs() - lastProgress >= stallMs) { reason = "stalled"; break; }
      std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs));
      continue;
    }
    if (n == SRT_ERROR && !conn->closing && srt_getsockstate(conn->sock) == SRTS_BROKEN) {
      // The caller hung up, but what it sent may still wait in the receive buffer for its play-out time
      // (TSBPD): libsrt hands those packets out once due while the broken socket lives, so read on for
      // one latency window.
      int64_t now = NowMs();
      if (drainUntilMs == 0) {
        // Whether the caller hung up or was lost is judged from the silence before the break.
        idleBeforeBreakMs = now - conn->lastDataMs;
        int lat = 0, len = sizeof lat;
        srt_getsockflag(conn->sock, SRTO_RCVLATENCY, &lat, &len);
        drainUntilMs = now + lat + 500;
      }
      if (now < drainUntilMs) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        continue;
      }
    }
    if (n == SRT_ERROR) {
      idleMs = drainUntilMs ? idleBeforeBreakMs : NowMs() - conn->lastDataMs;
      // libsrt reports a caller's clean close and a lost peer the same way; a lost peer is only
      // noticed after the idle timeout, so silence that long before the break means the link dropped.
      if (conn->closing) reason = "stopped";
      else reason = idleMs >= peerIdleMs / 2 ? "timeout" : "closed";
      break;
    }
    if (n <= 0) continue;
    int64_t now = NowMs();
    conn->lastDataMs = now;
    lastProgress = now;
    conn->bytes += static_cast<uint64_t>(n);
    if (conn->probe && !conn->probe->decision()) {
      if (conn->probe->Push(reinterpret_cast<const uint8_t*>(buf), static_cast<size_t>(n))) EmitProbe(conn);
    }
    if (fd >= 0) {
      // Packets go to FFmpeg in batches: one write (and one wake-up of FFmpeg) per ~32 KB instead of per packet.
      if (batch.empty()) batchSinceMs = now;
      batch.insert(batch.end(), buf, buf + n);
      if (batch.size() < kBatchBytes && now - batchSinceMs < kBatchMs) continue;
      SinkResult r = WriteSink(*conn, fd, batch.data(), batch.size(), lastProgress);
      batch.clear();
      if (r == SinkResult::Stalled) {
        reason = "stalled";
        detail = "FFmpeg took no data for " + std::to_string(stallMs / 1000) + " s";
        break;
      }
      if (r == SinkResult::Closing) { reason = "stopped"; break; }
    } else {
      std::lock_guard<std::mutex> l(conn->mu);
      conn->head.insert(conn->head.end(), buf, buf + n);
    }
  }
  {
    // What is still held goes to the segmenter before its stdin closes: bytes of a segmenter attached
    // after the last pass of the loop, then the last batch.
    std::lock_guard<std::mutex> l(conn->mu);
    if (conn->sinkFd >= 0) {
      flush.insert(flush.end(), conn->head.begin(), conn->head.end());
      conn->head.clear();
      flush.insert(flush.end(), batch.begin(), batch.end());
    }
  }
  srt_close(conn->sock);
  // Bytes that arrived before a segmenter was attached still become segments: the probe decides now
  // if it has not, and the bytes wait (briefly) for JavaScript to attach one.
  bool waitForSink;
  {
    std::lock_guard<std::mutex> l(conn->mu);
    waitForSink = conn->sinkFd < 0 && !conn->head.empty() && reason != "stopped";
  }
  if (waitForSink && conn->probe && !conn->probe->decision()) {
    conn->probe->DecideAtEnd();
    EmitProbe(conn);
  }
  if (waitForSink) {
    std::unique_lock<std::mutex> l(conn->mu);
    conn->cv.wait_for(l, std::chrono::milliseconds(lingerMs), [&] { return conn->closing || conn->sinkFd >= 0; });
    if (conn->sinkFd >= 0) flush.swap(conn->head);
  }
  if (!flush.empty()) {
    int64_t progress = NowMs();
    WriteSink(*conn, conn->sinkFd, flush.data(), flush.size(), progress);
  }
  uint64_t unwritten;
  {
    std::lock_guard<std::mutex> l(conn->mu);
    unwritten = conn->head.size();
    conn->head.clear();
    conn->head.shrink_to_fit();
    // End of input for the segmenter: it writes its last segment and exits.
    if (conn->sinkFd >= 0) close(conn->sinkFd);
    conn->sinkFd = -1;
  }
  {
    std::lock_guard<std::mutex> l(connsMu);
    conns.erase(conn->sock);
  }
  uint64_t bytes = conn->bytes;
  uint64_t dropped = conn->bytesDropped + unwritten;
  if (reason == "stalled" && detail.empty())
    detail = "no data arrived for " + std::to_string(stallMs / 1000) + " s while connected";
  nlohmann::json ev{{"type", "close"}, {"id", conn->sock}, {"stream", conn->stream}, {"reason", reason}, {"idleMs", idleMs}, {"bytes", bytes}, {"bytesDropped", dropped}};
  if (!detail.empty()) ev["detail"] = detail;
  Emit(ev);
  std::lock_guard<std::mutex> l(threadsMu);
  liveThreads--;
  threadsCv.notify_all();
}

void Core::Stop() {
  if (stopping.exchange(true)) return;
  for (SRTSOCKET l : listeners) srt_close(l);
  for (auto& t : acceptThreads)
    if (t.joinable()) t.join();
  std::vector<std::shared_ptr<Connection>> all;
  {
    std::lock_guard<std::mutex> l(connsMu);
    for (auto& [s, c] : conns) all.push_back(c);
  }
  for (auto& c : all) {
    c->closing = true;
    c->cv.notify_all();
    srt_close(c->sock);
  }
  {
    std::unique_lock<std::mutex> l(threadsMu);
    threadsCv.wait_for(l, std::chrono::seconds(5), [&] { return liveThreads == 0; });
  }
  {
    std::lock_guard<std::mutex> l(gCoresMu);
    for (auto it = gCores.begin(); it != gCores.end();) {
      auto c = it->lock();
      if (!c || c.get() == this) it = gCores.erase(it);
      else ++it;
    }
  }
  std::lock_guard<std::mutex> l(emitMu);
  released = true;
}

void SetStreamTable(Core& core, const nlohmann::json& streams) {
  std::unordered_map<std::string, StreamEntry> next;
  for (const auto& o : streams) {
    if (!o.is_object() || !o.contains("name") || !o["name"].is_string()) continue;
    StreamEntry e;
    if (o.contains("passphrase") && o["passphrase"].is_string()) e.passphrase = o["passphrase"].get<std::string>();
    e.disabled = o.contains("disabled") && o["disabled"].is_boolean() && o["disabled"].get<bool>();
    if (o.contains("hold") && o["hold"].is_string()) e.hold = o["hold"].get<std::string>();
    next[o["name"].get<std::string>()] = std::move(e);
  }
  std::lock_guard<std::mutex> l(core.tableMu);
  core.table.swap(next);
}

std::shared_ptr<Connection> FindConnection(Core& core, SRTSOCKET id) {
  std::lock_guard<std::mutex> l(core.connsMu);
  auto it = core.conns.find(id);
  return it == core.conns.end() ? nullptr : it->second;
}

bool CloseConnection(Core& core, SRTSOCKET id) {
  auto conn = FindConnection(core, id);
  if (!conn) return false;
  conn->closing = true;
  conn->cv.notify_all();
  srt_close(conn->sock);
  return true;
}

// The receive thread takes the fd (a pipe's write end, received over the control socket) and closes it at the end.
bool AttachSink(Core& core, SRTSOCKET id, int fd) {
  auto conn = FindConnection(core, id);
  if (!conn) return false;
  int flags = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  {
    std::lock_guard<std::mutex> l(conn->mu);
    if (conn->sinkFd >= 0) return false;
    conn->sinkFd = fd;
  }
  conn->cv.notify_all();
  return true;
}

nlohmann::json ConnectionStats(Core& core, SRTSOCKET id) {
  auto conn = FindConnection(core, id);
  if (!conn) return nullptr;
  SRT_TRACEBSTATS perf{};
  if (srt_bstats(conn->sock, &perf, 0) == SRT_ERROR) return nullptr;
  return {
      {"bytesReceived", conn->bytes.load()},
      {"bytesToSegmenter", conn->bytesWritten.load()},
      {"bytesDropped", conn->bytesDropped.load()},
      {"backpressureMs", conn->blockedMs.load()},
      {"mbpsReceiveRate", perf.mbpsRecvRate},
      {"packetsLost", perf.pktRcvLossTotal},
      {"packetsDropped", perf.pktRcvDropTotal},
      {"rttMs", perf.msRTT},
      {"msLatency", perf.msRcvTsbPdDelay},
  };
}
