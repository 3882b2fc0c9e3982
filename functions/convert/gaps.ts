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

/** A run of seconds the source playlist marks as missing (#EXT-X-GAP), as lib/hls lists it. */
export interface ListedGapRun {
  segment: string;
  startSeconds: number;
  missingSeconds: number;
}

export interface GapWarning {
  kind: "gap";
  message: string;
  missingSeconds: number;
  at: { segment: string; startSeconds: number; missingSeconds: number }[];
}

const seconds = (s: number) => (Math.round(s * 10) / 10).toFixed(1);

/**
 * The warning for seconds a playlist marks as missing, named on the source's own timeline. The MP4 closes
 * each hole (FFmpeg folds MPEG-TS timestamp jumps, so its timeline runs on with the next media stored) and
 * the warning says where the cut is; fMP4 timestamps are kept as they are (`holeKept`): the hole stays.
 * `broadcast`: the gateway wrote the playlist, and marks a segment missing only when its spool was full.
 */
export function gapWarning(gaps: readonly ListedGapRun[], o: { broadcast: boolean; sourcePrefix: string; holeKept?: boolean }): GapWarning | undefined {
  if (gaps.length === 0) return undefined;
  const rel = (k: string) => (o.sourcePrefix && k.startsWith(`${o.sourcePrefix}/`) ? k.slice(o.sourcePrefix.length + 1) : k);
  const ordered = [...gaps].sort((a, b) => a.startSeconds - b.startSeconds);
  const total = ordered.reduce((sum, g) => sum + g.missingSeconds, 0);
  let before = 0;
  const cuts = ordered.map((g) => {
    const cut = g.startSeconds - before;
    before += g.missingSeconds;
    return clock(cut);
  });
  const spans = ordered.map((g) => `${seconds(g.startSeconds)}–${seconds(g.startSeconds + g.missingSeconds)}`);
  const list = (items: string[]) => (items.length > 5 ? `${items.slice(0, 5).join(", ")} and ${items.length - 5} more` : items.length > 1 ? `${items.slice(0, -1).join(", ")} and ${items.at(-1)}` : items[0]!);
  const why = o.broadcast
    ? "the gateway could not store them (spool full during an object store outage)"
    : "the source playlist marks them as a gap (#EXT-X-GAP): whoever packaged it did not have them";
  return {
    kind: "gap",
    missingSeconds: Math.round(total * 10) / 10,
    at: ordered.map((g) => ({ segment: rel(g.segment), startSeconds: Math.round(g.startSeconds * 10) / 10, missingSeconds: Math.round(g.missingSeconds * 10) / 10 })),
    message: `seconds ${list(spans)} missing${ordered.length > 1 ? ` (${seconds(total)} s in all)` : ""}: ${why}. ${
      o.holeKept ? "The MP4 keeps the source's timeline: it holds the last frame before each gap until the media after it" : `The MP4 skips them, going on at ${list(cuts)} with the media stored after`
    }; the rest plays`,
  };
}

/** m:ss or h:mm:ss. */
export function clock(secondsIn: number): string {
  const s = Math.floor(secondsIn);
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(h ? 2 : 1, "0");
  return `${h ? `${h}:` : ""}${mm}:${String(s % 60).padStart(2, "0")}`;
}
