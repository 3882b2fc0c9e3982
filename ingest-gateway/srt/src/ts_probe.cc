#include "ts_probe.h"

#include <cstdio>
#include <cstring>

namespace {

constexpr double kPtsHz = 90000.0;
// Bytes of each video PES scanned for an IDR slice: x264's first keyframe carries a large SEI first.
constexpr size_t kPesScanBytes = 16 * 1024;
constexpr size_t kNoPatBytes = 2 * 1024 * 1024;

const char* VideoType(int t) {
  switch (t) {
    case 0x01: return "mpeg1video";
    case 0x02: return "mpeg2video";
    case 0x10: return "mpeg4";
    case 0x1b: return "h264";
    case 0x24: return "hevc";
    case 0x42: return "cavs";
    default: return nullptr;
  }
}

const char* AudioType(int t) {
  switch (t) {
    case 0x03:
    case 0x04: return "mp2";
    case 0x0f: return "aac";
    case 0x11: return "aac_latm";
    case 0x81: return "ac3";
    case 0x87: return "eac3";
    default: return nullptr;
  }
}

std::string Fixed2(double v) {
  char b[32];
  snprintf(b, sizeof b, "%.2f", v);
  return b;
}

std::string Num(double v) {
  char b[32];
  snprintf(b, sizeof b, "%g", v);
  return b;
}

}  // namespace

bool HasIdrSlice(const uint8_t* b, size_t len) {
  for (size_t i = 0; i + 3 < len; i++) {
    if (b[i] == 0 && b[i + 1] == 0 && b[i + 2] == 1) {
      int type = b[i + 3] & 0x1f;
      if (type == 5) return true;
      if (type == 1) return false;
      i += 2;
    }
  }
  return false;
}

void TsProbe::Decide(const std::string& profile, const std::string& reason, double interval) {
  decision_ = ProbeDecision{profile, reason, video_, audio_, interval};
}

void TsProbe::DecideAtEnd() {
  if (!decision_) Decide("transcode", "the connection ended before the probe could see two keyframes");
}

bool TsProbe::Push(const uint8_t* data, size_t len) {
  if (decision_) return true;
  bytesSeen_ += len;
  rest_.insert(rest_.end(), data, data + len);
  size_t off = 0;
  while (off + 188 <= rest_.size()) {
    if (rest_[off] != 0x47) {
      locked_ = false;
      off++;
      continue;
    }
    // Out of step, a 0x47 counts as a packet start only when two more follow 188 and 376 bytes on: in random
    // bytes one position in 256 holds 0x47, and one such "packet" in 8192 reads as a PAT (PID 0).
    if (!locked_) {
      if (off + 3 * 188 > rest_.size()) break;
      if (rest_[off + 188] != 0x47 || rest_[off + 376] != 0x47) {
        off++;
        continue;
      }
      locked_ = true;
    }
    syncPackets_++;
    Packet(rest_.data() + off);
    off += 188;
    if (decision_) break;
  }
  rest_.erase(rest_.begin(), rest_.begin() + static_cast<std::ptrdiff_t>(off));
  // Encoders repeat the PAT every 100 ms or so: 2 MB without one is not MPEG-TS (random bytes, another
  // container). FFmpeg gets it anyway and says in its own words what it found.
  if (!decision_ && pmtPid_ < 0 && bytesSeen_ >= kNoPatBytes)
    Decide("transcode", "no MPEG-TS program table (PAT) in the first " + Num(static_cast<double>(kNoPatBytes >> 20)) + " MB: this is not MPEG-TS as encoders send it");
  if (!decision_ && bytesSeen_ > maxProbeBytes_) {
    if (pmtSeen_)
      Decide("transcode", "no second keyframe found in the first " + Num(static_cast<double>(maxProbeBytes_ >> 20)) + " MB: re-encoding to get regular keyframes");
    else
      Decide("transcode", "no MPEG-TS program table found in the first " + Num(static_cast<double>(maxProbeBytes_ >> 20)) + " MB: letting the encoder read the input");
  }
  if (decision_) rest_.clear(), rest_.shrink_to_fit(), pesBytes_.clear(), pesBytes_.shrink_to_fit();
  return decision_.has_value();
}

void TsProbe::Packet(const uint8_t* p) {
  bool pusi = (p[1] & 0x40) != 0;
  int pid = ((p[1] & 0x1f) << 8) | p[2];
  int afc = (p[3] >> 4) & 0x3;
  size_t off = 4;
  bool rai = false;
  if (afc & 0x2) {
    int alen = p[4];
    if (alen > 0) rai = (p[5] & 0x40) != 0;
    off += 1 + alen;
  }
  if (!(afc & 0x1) || off >= 188) return;
  if (pid == videoPid_) {
    int cc = p[3] & 0x0f;
    if (videoCc_ >= 0 && cc != ((videoCc_ + 1) & 0x0f) && cc != videoCc_) {
      lossSinceKeyframe_ = true;
      losses_++;
    }
    videoCc_ = cc;
  }
  const uint8_t* payload = p + off;
  size_t plen = 188 - off;
  if (pid == 0 && pusi) Pat(payload, plen);
  else if (pid == pmtPid_ && pusi) Pmt(payload, plen);
  else if (pid == videoPid_) VideoPayload(payload, plen, pusi, rai);
}

// A PSI section from a packet payload that starts one: {start, length} within the payload.
static bool Section(const uint8_t* payload, size_t len, const uint8_t** s, size_t* slen) {
  size_t pointer = payload[0];
  if (1 + pointer + 3 > len) return false;
  *s = payload + 1 + pointer;
  size_t avail = len - 1 - pointer;
  size_t sectionLen = ((static_cast<size_t>((*s)[1]) & 0x0f) << 8) | (*s)[2];
  *slen = std::min(avail, 3 + sectionLen);
  return true;
}

void TsProbe::Pat(const uint8_t* payload, size_t len) {
  const uint8_t* s;
  size_t n;
  if (!Section(payload, len, &s, &n) || n < 12) return;
  for (size_t i = 8; i + 4 <= n - 4; i += 4) {
    int program = (s[i] << 8) | s[i + 1];
    if (program != 0) {
      pmtPid_ = ((s[i + 2] & 0x1f) << 8) | s[i + 3];
      return;
    }
  }
}

void TsProbe::Pmt(const uint8_t* payload, size_t len) {
  if (pmtSeen_) return;
  const uint8_t* s;
  size_t n;
  if (!Section(payload, len, &s, &n) || n < 16) return;
  size_t infoLen = ((s[10] & 0x0f) << 8) | s[11];
  for (size_t i = 12 + infoLen; i + 5 <= n - 4;) {
    int type = s[i];
    int pid = ((s[i + 1] & 0x1f) << 8) | s[i + 2];
    size_t esLen = ((s[i + 3] & 0x0f) << 8) | s[i + 4];
    if (videoPid_ < 0 && VideoType(type)) {
      videoPid_ = pid;
      video_ = VideoType(type);
    } else if (audioPid_ < 0 && (AudioType(type) || type == 0x06)) {
      audioPid_ = pid;
      audio_ = AudioType(type) ? AudioType(type) : "private stream (type 0x06)";
    }
    i += 5 + esLen;
  }
  pmtSeen_ = true;
  if (video_ != "h264")
    Decide("transcode", !video_.empty() ? "video is " + video_ + ", not H.264" : "the input has no video stream the gateway knows");
  else if (audioPid_ >= 0 && audio_ != "aac")
    Decide("transcode", "audio is " + audio_ + ", not AAC");
}

void TsProbe::VideoPayload(const uint8_t* p, size_t len, bool pusi, bool rai) {
  if (pusi) {
    FinishPes();
    if (len < 9 || p[0] != 0 || p[1] != 0 || p[2] != 1) return;
    int flags = p[7];
    size_t headerLen = p[8];
    pesHasPts_ = false;
    if ((flags & 0x80) && len >= 14) {
      pesPts_ = static_cast<int64_t>(p[9] & 0x0e) * 536870912LL + static_cast<int64_t>(p[10]) * 4194304LL +
                static_cast<int64_t>(p[11] & 0xfe) * 16384LL + static_cast<int64_t>(p[12]) * 128LL + (p[13] >> 1);
      pesHasPts_ = true;
    }
    pesOpen_ = true;
    pesRai_ = rai;
    pesBytes_.clear();
    if (9 + headerLen < len) pesBytes_.assign(p + 9 + headerLen, p + len);
  } else if (pesOpen_ && pesBytes_.size() < kPesScanBytes) {
    pesBytes_.insert(pesBytes_.end(), p, p + len);
  }
}

void TsProbe::FinishPes() {
  if (!pesOpen_) return;
  pesOpen_ = false;
  if (!pesHasPts_) return;
  int64_t pts = pesPts_;
  lastVideoPts_ = pts;
  if (!haveFirstPts_) firstVideoPts_ = pts, haveFirstPts_ = true;
  bool key = pesRai_ || HasIdrSlice(pesBytes_.data(), pesBytes_.size());
  if (key) {
    // Lost packets can only hide keyframes, so a short interval is proof either way; a long one
    // counts only when no packet was lost in it (else a dropped keyframe could have doubled it).
    if (haveLastKey_) {
      double interval = static_cast<double>(pts - lastKeyframe_) / kPtsHz;
      if (interval <= segmentSeconds_ + 0.05) {
        Decide("copy", std::string("H.264") + (audio_.empty() ? "" : "/AAC") + " with keyframes every " + Fixed2(interval) + " s", interval);
        return;
      }
      if (!lossSinceKeyframe_) {
        Decide("transcode", "keyframes are " + Fixed2(interval) + " s apart, more than a " + Num(segmentSeconds_) + " s segment", interval);
        return;
      }
    }
    if (!haveFirstKey_) firstKeyframe_ = pts, haveFirstKey_ = true;
    lastKeyframe_ = pts;
    haveLastKey_ = true;
    lossSinceKeyframe_ = false;
  }
  if (!haveFirstKey_ && static_cast<double>(lastVideoPts_ - firstVideoPts_) / kPtsHz > 3 * segmentSeconds_ + 0.5) {
    Decide("transcode", "no H.264 keyframe in the first " + Num(3 * segmentSeconds_) + " s of video");
    return;
  }
  // Keyframes further apart than a segment are caught above; this only ends a probe that keeps losing packets.
  if (haveFirstKey_ && static_cast<double>(lastVideoPts_ - firstKeyframe_) / kPtsHz > 3 * segmentSeconds_ + 0.5) {
    Decide("transcode", "no two keyframes " + Num(segmentSeconds_) + " s apart without packet loss in " + Num(3 * segmentSeconds_) + " s (" +
                            std::to_string(losses_) + " gaps): re-encoding to be safe");
  }
}
