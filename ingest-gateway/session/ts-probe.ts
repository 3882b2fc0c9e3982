// Reads just enough of an MPEG-TS stream to choose passthrough or transcode:
// the codecs announced in the PMT and the distance between the first H.264 keyframes.

export type Profile = "copy" | "transcode";

export interface ProbeDecision {
  profile: Profile;
  /** Why, for the logs and GET /streams. */
  reason: string;
  video?: string;
  audio?: string;
  keyframeIntervalSeconds?: number;
}

const VIDEO_TYPES: Record<number, string> = { 0x01: "mpeg1video", 0x02: "mpeg2video", 0x10: "mpeg4", 0x1b: "h264", 0x24: "hevc", 0x42: "cavs" };
const AUDIO_TYPES: Record<number, string> = { 0x03: "mp2", 0x04: "mp2", 0x0f: "aac", 0x11: "aac_latm", 0x81: "ac3", 0x87: "eac3" };
const PTS_HZ = 90_000;
/** Bytes of each video PES scanned for an IDR slice: x264's first keyframe carries a large SEI first. */
const PES_SCAN_BYTES = 16 * 1024;

export class TsProbe {
  private rest = Buffer.alloc(0);
  private pmtPid?: number;
  private videoPid?: number;
  private audioPid?: number;
  private video?: string;
  private audio?: string;
  private pmtSeen = false;
  private pes?: { pts?: number; bytes: Buffer[]; size: number; rai: boolean };
  private firstKeyframe?: number;
  private lastKeyframe?: number;
  private lastVideoPts?: number;
  /** Continuity counter of the last video packet: a gap means SRT dropped packets (a keyframe may be among them). */
  private videoCc?: number;
  private lossSinceKeyframe = false;
  private losses = 0;
  private bytesSeen = 0;
  decision?: ProbeDecision;

  constructor(private readonly segmentSeconds: number, private readonly maxProbeBytes = 16 * 1024 * 1024) {}

  /** Feeds bytes; returns the decision once it is known (and keeps returning it). */
  push(chunk: Buffer): ProbeDecision | undefined {
    if (this.decision) return this.decision;
    this.bytesSeen += chunk.length;
    let buf = this.rest.length ? Buffer.concat([this.rest, chunk]) : chunk;
    let off = 0;
    while (off + 188 <= buf.length) {
      if (buf[off] !== 0x47) {
        off++;
        continue;
      }
      this.packet(buf.subarray(off, off + 188));
      off += 188;
      if (this.decision) return this.decision;
    }
    this.rest = Buffer.from(buf.subarray(off));
    if (this.bytesSeen > this.maxProbeBytes) {
      this.decide("transcode", this.pmtSeen ? "no second keyframe found in the first MBs: re-encoding to get regular keyframes" : "no MPEG-TS program table found: letting the encoder read the input");
    }
    return this.decision;
  }

  private decide(profile: Profile, reason: string, interval?: number) {
    this.decision = { profile, reason, video: this.video, audio: this.audio, keyframeIntervalSeconds: interval };
  }

  private packet(p: Buffer) {
    const pusi = (p[1]! & 0x40) !== 0;
    const pid = ((p[1]! & 0x1f) << 8) | p[2]!;
    const afc = (p[3]! >> 4) & 0x3;
    let off = 4;
    let rai = false;
    if (afc & 0x2) {
      const len = p[4]!;
      if (len > 0) rai = (p[5]! & 0x40) !== 0;
      off += 1 + len;
    }
    if (!(afc & 0x1) || off >= 188) return;
    if (pid === this.videoPid) {
      const cc = p[3]! & 0x0f;
      if (this.videoCc !== undefined && cc !== ((this.videoCc + 1) & 0x0f) && cc !== this.videoCc) {
        this.lossSinceKeyframe = true;
        this.losses++;
      }
      this.videoCc = cc;
    }
    const payload = p.subarray(off);
    if (pid === 0 && pusi) this.pat(payload);
    else if (pid === this.pmtPid && pusi) this.pmt(payload);
    else if (pid === this.videoPid) this.videoPayload(payload, pusi, rai);
  }

  private section(payload: Buffer): Buffer | undefined {
    const pointer = payload[0]!;
    const s = payload.subarray(1 + pointer);
    if (s.length < 3) return undefined;
    const len = ((s[1]! & 0x0f) << 8) | s[2]!;
    return s.subarray(0, Math.min(s.length, 3 + len));
  }

  private pat(payload: Buffer) {
    const s = this.section(payload);
    if (!s) return;
    for (let i = 8; i + 4 <= s.length - 4; i += 4) {
      const program = (s[i]! << 8) | s[i + 1]!;
      if (program !== 0) {
        this.pmtPid = ((s[i + 2]! & 0x1f) << 8) | s[i + 3]!;
        return;
      }
    }
  }

  private pmt(payload: Buffer) {
    if (this.pmtSeen) return;
    const s = this.section(payload);
    if (!s || s.length < 12) return;
    const infoLen = ((s[10]! & 0x0f) << 8) | s[11]!;
    for (let i = 12 + infoLen; i + 5 <= s.length - 4; ) {
      const type = s[i]!;
      const pid = ((s[i + 1]! & 0x1f) << 8) | s[i + 2]!;
      const esLen = ((s[i + 3]! & 0x0f) << 8) | s[i + 4]!;
      if (this.videoPid === undefined && VIDEO_TYPES[type]) {
        this.videoPid = pid;
        this.video = VIDEO_TYPES[type];
      } else if (this.audioPid === undefined && (AUDIO_TYPES[type] || type === 0x06)) {
        this.audioPid = pid;
        this.audio = AUDIO_TYPES[type] ?? `private stream (type 0x06)`;
      }
      i += 5 + esLen;
    }
    this.pmtSeen = true;
    if (this.video !== "h264") {
      this.decide("transcode", this.video ? `video is ${this.video}, not H.264` : "the input has no video stream the gateway knows");
    } else if (this.audio !== undefined && this.audio !== "aac") {
      this.decide("transcode", `audio is ${this.audio}, not AAC`);
    }
  }

  private videoPayload(payload: Buffer, pusi: boolean, rai: boolean) {
    if (pusi) {
      this.finishPes();
      const p = payload;
      if (p.length < 9 || p[0] !== 0 || p[1] !== 0 || p[2] !== 1) return;
      const flags = p[7]!;
      const headerLen = p[8]!;
      let pts: number | undefined;
      if (flags & 0x80 && p.length >= 14) {
        pts = (p[9]! & 0x0e) * 536870912 + p[10]! * 4194304 + (p[11]! & 0xfe) * 16384 + p[12]! * 128 + (p[13]! >> 1);
      }
      const body = p.subarray(9 + headerLen);
      this.pes = { pts, bytes: [Buffer.from(body)], size: body.length, rai };
    } else if (this.pes && this.pes.size < PES_SCAN_BYTES) {
      this.pes.bytes.push(Buffer.from(payload));
      this.pes.size += payload.length;
    }
  }

  private finishPes() {
    const pes = this.pes;
    this.pes = undefined;
    if (!pes || pes.pts === undefined) return;
    this.lastVideoPts = pes.pts;
    const key = pes.rai || hasIdrSlice(Buffer.concat(pes.bytes));
    if (key) {
      // Lost packets can only hide keyframes, so a short interval is proof either way; a long one
      // counts only when no packet was lost in it (else a dropped keyframe could have doubled it).
      if (this.lastKeyframe !== undefined) {
        const interval = (pes.pts - this.lastKeyframe) / PTS_HZ;
        if (interval <= this.segmentSeconds + 0.05) {
          this.decide("copy", `H.264${this.audio ? "/AAC" : ""} with keyframes every ${interval.toFixed(2)} s`, interval);
          return;
        }
        if (!this.lossSinceKeyframe) {
          this.decide("transcode", `keyframes are ${interval.toFixed(2)} s apart, more than a ${this.segmentSeconds} s segment`, interval);
          return;
        }
      }
      this.firstKeyframe ??= pes.pts;
      this.lastKeyframe = pes.pts;
      this.lossSinceKeyframe = false;
    }
    const first = this.firstKeyframe;
    // Keyframes further apart than a segment are caught above; this only ends a probe that keeps losing packets.
    if (first !== undefined && (this.lastVideoPts - first) / PTS_HZ > 3 * this.segmentSeconds + 0.5) {
      this.decide("transcode", `no two keyframes ${this.segmentSeconds} s apart without packet loss in ${3 * this.segmentSeconds} s (${this.losses} gaps): re-encoding to be safe`);
    }
  }
}

/** An H.264 Annex B buffer holds an IDR slice (NAL type 5) before any non-IDR slice (type 1). */
export function hasIdrSlice(b: Buffer): boolean {
  for (let i = 0; i + 3 < b.length; i++) {
    if (b[i] === 0 && b[i + 1] === 0 && b[i + 2] === 1) {
      const type = b[i + 3]! & 0x1f;
      if (type === 5) return true;
      if (type === 1) return false;
      i += 2;
    }
  }
  return false;
}
