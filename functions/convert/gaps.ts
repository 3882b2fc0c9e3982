// Where a damaged source lost its media, from the timestamps FFmpeg reads. Between two discontinuities
// an HLS stream's timestamps are continuous (HLS spec 3.3.3): a jump forward is media that was lost (a
// corrupt segment, SRT packet loss), and its position on the playlist's timeline names the segment.

export interface Packet {
  /** Decode time, seconds. */
  dts: number;
  duration: number;
}

export interface Gap {
  /** The segment the loss starts in (its key). */
  segment: string;
  /** Where, on the playlist's timeline. */
  startSeconds: number;
  missingSeconds: number;
}

/** One run of segments between discontinuities, placed on the playlist's timeline. */
export interface Part {
  start: number;
  segments: readonly { key: string; duration: number }[];
}

const round = (s: number) => Math.round(s * 10) / 10;

/** The segment whose listed span holds `t` (the last one for a time past the end). */
function segmentAt(part: Part, t: number): string {
  let start = part.start;
  for (const s of part.segments) {
    if (t < start + s.duration) return s.key;
    start += s.duration;
  }
  return part.segments[part.segments.length - 1]!.key;
}

/**
 * The gaps of one part, given its packets (one stream, in decode order) and how much of its first
 * segment could be read (`leading`: seconds missing before the first packet, found by reading that
 * segment alone). What is missing but not seen as a jump is at the part's end.
 */
export function gapsInPart(part: Part, packets: readonly Packet[], leading = 0): Gap[] {
  const listed = part.segments.reduce((sum, s) => sum + s.duration, 0);
  if (packets.length === 0) return listed > 0 ? [{ segment: part.segments[0]!.key, startSeconds: round(part.start), missingSeconds: round(listed) }] : [];
  const durations = packets.map((p) => p.duration).filter((d) => d > 0).sort((a, b) => a - b);
  const typical = durations[Math.floor(durations.length / 2)] ?? 0.04;
  // Jitter and B-frame reordering move packets by a few frames; a loss is longer than that.
  const tolerance = Math.max(0.5, 3 * typical);
  const gaps: Gap[] = [];
  if (leading > tolerance) gaps.push({ segment: part.segments[0]!.key, startSeconds: round(part.start), missingSeconds: round(leading) });
  const first = packets[0]!.dts;
  let next = first;
  let lost = 0;
  for (const p of packets) {
    const jump = p.dts - next;
    if (jump > tolerance) {
      const at = part.start + leading + (next - first);
      gaps.push({ segment: segmentAt(part, at), startSeconds: round(at), missingSeconds: round(jump) });
      lost += jump;
    }
    next = Math.max(next, p.dts + (p.duration > 0 ? p.duration : typical));
  }
  const read = next - first;
  const tail = listed - leading - read;
  if (tail > tolerance) {
    const at = part.start + leading + read;
    gaps.push({ segment: segmentAt(part, at), startSeconds: round(at), missingSeconds: round(tail) });
  }
  return gaps;
}
