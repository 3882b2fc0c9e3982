// Reads just enough of an MPEG-TS stream to choose passthrough or transcode: the codecs announced in
// the PMT and the distance between the first H.264 keyframes. Runs on the receive thread, so the
// media bytes it looks at never reach JavaScript.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

struct ProbeDecision {
  std::string profile;  // "copy" or "transcode"
  std::string reason;   // why, for the logs and GET /streams
  std::string video;
  std::string audio;
  double keyframeIntervalSeconds = -1;  // < 0: unknown
};

class TsProbe {
 public:
  explicit TsProbe(double segmentSeconds, size_t maxProbeBytes = 16 * 1024 * 1024)
      : segmentSeconds_(segmentSeconds), maxProbeBytes_(maxProbeBytes) {}
  // Feeds bytes; true once the decision is known.
  bool Push(const uint8_t* data, size_t len);
  // The connection ended before the probe could decide.
  void DecideAtEnd();
  const std::optional<ProbeDecision>& decision() const { return decision_; }
  bool sawSync() const { return syncPackets_ > 0; }

 private:
  void Decide(const std::string& profile, const std::string& reason, double interval = -1);
  void Packet(const uint8_t* p);
  void Pat(const uint8_t* payload, size_t len);
  void Pmt(const uint8_t* payload, size_t len);
  void VideoPayload(const uint8_t* payload, size_t len, bool pusi, bool rai);
  void FinishPes();

  double segmentSeconds_;
  size_t maxProbeBytes_;
  std::vector<uint8_t> rest_;
  int pmtPid_ = -1, videoPid_ = -1, audioPid_ = -1;
  std::string video_, audio_;
  bool pmtSeen_ = false;
  bool pesOpen_ = false;
  bool pesHasPts_ = false;
  int64_t pesPts_ = 0;
  bool pesRai_ = false;
  std::vector<uint8_t> pesBytes_;
  bool haveFirstKey_ = false, haveLastKey_ = false;
  int64_t firstKeyframe_ = 0, lastKeyframe_ = 0, lastVideoPts_ = 0, firstVideoPts_ = 0;
  bool haveFirstPts_ = false;
  int videoCc_ = -1;
  bool lossSinceKeyframe_ = false;
  int losses_ = 0;
  size_t bytesSeen_ = 0;
  uint64_t syncPackets_ = 0;
  // In step with the 188-byte packets (three sync bytes in a row were seen).
  bool locked_ = false;
  std::optional<ProbeDecision> decision_;
};

// An H.264 Annex B buffer holds an IDR slice (NAL type 5) before any non-IDR slice (type 1).
bool HasIdrSlice(const uint8_t* b, size_t len);
