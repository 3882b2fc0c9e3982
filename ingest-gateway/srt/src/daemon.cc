// srt-ingestd: the gateway's SRT listener in a process of its own. The gateway (Node) starts it with a Unix
// socket as fd 3 and talks to it in JSON lines (control.h): libsrt's receive, TSBPD and per-connection threads,
// and every media byte, live here; the Node process only hears events (connect, probe, close, refused, log)
// and hands over each segmenter's stdin (a pipe's write end) with "attach".
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdio>
#include <mutex>

#include "control.h"
#include "server.h"

using nlohmann::json;

namespace {

constexpr int kControlFd = 3;

// A missing or non-number option keeps the default (JavaScript's undefined is left out, NaN becomes null).
template <typename T>
T Num(const json& o, const char* key, T fallback) {
  auto it = o.find(key);
  return it != o.end() && it->is_number() ? it->get<T>() : fallback;
}

void Configure(Core& core, const json& o) {
  auto auth = o.find("auth");
  core.auth = auth == o.end() || !auth->is_boolean() || auth->get<bool>();
  core.peerIdleMs = Num(o, "peerIdleMs", core.peerIdleMs);
  core.latencyMs = Num(o, "latencyMs", core.latencyMs);
  core.maxPending = Num(o, "maxPendingBytes", core.maxPending);
  core.segmentSeconds = Num(o, "segmentSeconds", core.segmentSeconds);
  core.stallMs = Num(o, "stallMs", core.stallMs);
  core.udpReceiveBuffer = Num(o, "udpReceiveBuffer", core.udpReceiveBuffer);
  core.listenerCount = std::max(1, Num(o, "listeners", core.listenerCount));
  core.lingerMs = Num(o, "lingerMs", core.lingerMs);
}

}  // namespace

int main() {
  // The gateway gone (even by kill -9) means no one reads events: end, freeing the UDP port for its successor.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) return 1;
  // Writes into a segmenter that exited must fail with EPIPE, not kill the process.
  signal(SIGPIPE, SIG_IGN);
  // Stopping is the gateway's call (it drains connections first): a terminal's Ctrl-C or a group SIGTERM
  // must not end the listener under it.
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);
  srt_startup();
  InstallLogHandler();

  std::mutex sendMu;
  auto send = [&](const json& j) {
    std::lock_guard<std::mutex> l(sendMu);
    SendLine(kControlFd, j.dump(-1, ' ', false, json::error_handler_t::replace));
  };
  auto core = std::make_shared<Core>();
  core->sink = send;

  LineReader reader(kControlFd);
  std::string line;
  while (reader.Next(line)) {
    json cmd = json::parse(line, nullptr, false);
    if (cmd.is_discarded() || !cmd.is_object()) continue;
    std::string op = cmd.value("op", "");
    json reply{{"reply", Num<int64_t>(cmd, "req", 0)}};
    try {
      if (op == "listen") {
        Configure(*core, cmd.value("options", json::object()));
        auto host = cmd.find("host");
        core->Start(host != cmd.end() && host->is_string() ? host->get<std::string>() : "0.0.0.0", Num(cmd, "port", 9999));
        reply["result"] = {{"udpReceiveBufferRequested", core->udpReceiveBuffer},
                           {"udpReceiveBufferGranted", core->udpReceiveBufferGranted},
                           {"listeners", core->listeners.size()},
                           {"receiveThreadsRaised", core->receiveThreadsRaised},
                           {"pid", getpid()}};
      } else if (op == "setStreams") {
        SetStreamTable(*core, cmd.value("streams", json::array()));
        reply["result"] = true;
      } else if (op == "close") {
        reply["result"] = CloseConnection(*core, Num(cmd, "id", SRT_INVALID_SOCK));
      } else if (op == "attach") {
        int fd = reader.TakeFd();
        bool ok = fd >= 0 && AttachSink(*core, Num(cmd, "id", SRT_INVALID_SOCK), fd);
        // Not taken: this process's copy is closed; the gateway closes its own.
        if (!ok && fd >= 0) close(fd);
        reply["result"] = ok;
      } else if (op == "statsAll") {
        // Every connection's figures in one answer: one round trip per sampling, not one per stream.
        std::vector<SRTSOCKET> ids;
        {
          std::lock_guard<std::mutex> l(core->connsMu);
          for (auto& [id, c] : core->conns) ids.push_back(id);
        }
        json all = json::object();
        for (SRTSOCKET id : ids) {
          json st = ConnectionStats(*core, id);
          if (!st.is_null()) all[std::to_string(id)] = std::move(st);
        }
        reply["result"] = std::move(all);
      } else if (op == "stop") {
        core->Stop();
        reply["result"] = true;
        send(reply);
        return 0;
      } else {
        reply["error"] = "unknown command '" + op + "'";
      }
    } catch (const std::exception& e) {
      reply["error"] = e.what();
    }
    // Commands sent without waiting (attach, close) want no answer.
    if (!cmd.value("noReply", false)) send(reply);
  }
  // The gateway closed the socket without "stop" (it is exiting): end the connections, then this process.
  core->Stop();
  return 0;
}
