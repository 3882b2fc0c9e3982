// The control socket between the gateway (client.cc, in Node) and srt-ingestd (daemon.cc): newline-delimited
// JSON both ways over a Unix stream socket; a pipe's fd travels with an "attach" command as SCM_RIGHTS.
#pragma once
#include <deque>
#include <functional>
#include <string>

// Reads what is there (blocking), splitting lines and collecting passed fds in arrival order.
// Returns false at end of stream or on error.
class LineReader {
 public:
  explicit LineReader(int fd) : fd_(fd) {}
  bool Next(std::string& line);
  // The oldest fd received and not yet taken (-1 when none).
  int TakeFd();

 private:
  int fd_;
  std::string buf_;
  std::deque<int> fds_;
};

// Writes one line (and optionally one fd) completely; false when the peer is gone.
bool SendLine(int sock, const std::string& line, int fd = -1);
