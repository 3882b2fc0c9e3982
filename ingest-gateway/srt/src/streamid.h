// Parsing of the SRT streamid a caller sends: which stream it wants to publish to.
#pragma once
#include <string>

struct StreamIdResult {
  bool ok = false;
  std::string name;
  // Why the streamid was not understood, in words a streamer can act on.
  std::string error;
};

// Accepts `publish:<name>`, the access-control form `#!::r=<name>,m=publish` (raw or
// percent-encoded, since ffmpeg passes the URL's streamid through undecoded) and a bare `<name>`.
StreamIdResult ParseStreamId(const std::string& raw);

// Stream names become S3 folder names: letters, digits, '_', '-', '.', starting with a letter or digit, 1-64 chars.
bool IsValidStreamName(const std::string& name);
