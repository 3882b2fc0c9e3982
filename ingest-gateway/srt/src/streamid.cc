#include "streamid.h"

#include <cctype>

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string PercentDecode(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] == '%' && i + 2 < s.size()) {
      int hi = HexValue(s[i + 1]), lo = HexValue(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

}  // namespace

bool IsValidStreamName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  if (!std::isalnum(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') return false;
  }
  return true;
}

StreamIdResult ParseStreamId(const std::string& raw) {
  StreamIdResult r;
  std::string id = raw.find('%') != std::string::npos ? PercentDecode(raw) : raw;
  if (id.empty()) {
    r.error = "no streamid was sent; add ?streamid=#!::r=<stream>,m=publish to the SRT URL";
    return r;
  }
  std::string name;
  if (id.rfind("#!::", 0) == 0) {
    std::string mode;
    size_t pos = 4;
    while (pos <= id.size()) {
      size_t comma = id.find(',', pos);
      if (comma == std::string::npos) comma = id.size();
      std::string pair = id.substr(pos, comma - pos);
      size_t eq = pair.find('=');
      if (eq != std::string::npos) {
        std::string key = pair.substr(0, eq), value = pair.substr(eq + 1);
        if (key == "r") name = value;
        else if (key == "m") mode = value;
      }
      pos = comma + 1;
    }
    if (!mode.empty() && mode != "publish") {
      r.error = "this server only takes publishers: use m=publish in the streamid (got m=" + mode + ")";
      return r;
    }
    if (name.empty()) {
      r.error = "the streamid names no stream: write it as #!::r=<stream>,m=publish";
      return r;
    }
  } else if (id.rfind("publish:", 0) == 0) {
    name = id.substr(8);
  } else {
    name = id;
  }
  if (!IsValidStreamName(name)) {
    r.error = "'" + name.substr(0, 80) +
              "' is not a stream name (letters, digits, _ - . only, at most 64); use #!::r=<stream>,m=publish or publish:<stream>";
    return r;
  }
  r.ok = true;
  r.name = name;
  return r;
}
