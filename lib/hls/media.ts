import { HlsError } from "./error.js";
import type { MediaPlaylist } from "./parse.js";
import { resolveUri } from "./uri.js";

// A media playlist's segments as object keys inside the recording's source prefix, and the playlist
// FFmpeg reads: the same segments by URLs it can fetch.

export interface ByteRange {
  length: number;
  offset: number;
}

/** AES-128 decryption of a segment: its key file (inside the folder) and its IV. */
export interface SegmentKey {
  key: string;
  /** 32 hex digits: the playlist's IV, else the segment's media sequence number, as the HLS spec says. */
  iv: string;
}

export interface ResolvedSegment {
  key: string;
  duration: number;
  discontinuity: boolean;
  byterange?: ByteRange;
  /** The fMP4 initialization section (#EXT-X-MAP) this segment needs. */
  map?: { key: string; byterange?: ByteRange };
  aes?: SegmentKey;
  /** Where the segment starts on the playlist's listed timeline: every EXTINF before it, #EXT-X-GAP entries included (set by resolveSegments). */
  listedAt?: number;
}

/**
 * Seconds a playlist lists but marks as missing (#EXT-X-GAP, RFC 8216bis 4.4.4.7: the segment is not
 * there and clients must not load it), consecutive entries as one run, placed on the listed timeline.
 */
export interface ListedGap {
  /** The run's first segment (its key). */
  segment: string;
  startSeconds: number;
  missingSeconds: number;
}

/**
 * Every segment of a finished media playlist that holds media, as object keys inside `sourcePrefix`.
 * #EXT-X-GAP entries are left out (nothing may be read there; `listedGaps` tells where they are), and the
 * segment after a gap starts a new part, as after a discontinuity: its timestamps jump over the gap.
 */
export function resolveSegments(playlistKey: string, media: MediaPlaylist, sourcePrefix: string): ResolvedSegment[] {
  if (media.segments.length === 0) {
    throw new HlsError("no-segments", `${playlistKey} lists no segments: there is nothing to convert; upload a playlist that lists its segments`);
  }
  const out: ResolvedSegment[] = [];
  let at = 0;
  let afterGap = false;
  for (const s of media.segments) {
    const listedAt = at;
    at += s.duration;
    if (s.gap) {
      afterGap = true;
      continue;
    }
    out.push({
      key: resolveUri(playlistKey, s.uri, sourcePrefix),
      duration: s.duration,
      discontinuity: Boolean(s.discontinuity) || (afterGap && out.length > 0),
      byterange: s.byterange,
      map: s.map ? { key: resolveUri(playlistKey, s.map.uri, sourcePrefix), byterange: s.map.byterange } : undefined,
      aes: segmentKey(playlistKey, s.key, s.mediaSequenceNumber, sourcePrefix),
      listedAt,
    });
    afterGap = false;
  }
  if (out.length === 0) {
    throw new HlsError("no-segments", `${playlistKey} lists only gaps (every segment is marked #EXT-X-GAP): no media was stored, so there is nothing to convert`);
  }
  return out;
}

/** The runs of #EXT-X-GAP entries of a media playlist, on its listed timeline (empty when it has none). */
export function listedGaps(playlistKey: string, media: MediaPlaylist, sourcePrefix: string): ListedGap[] {
  const gaps: ListedGap[] = [];
  let at = 0;
  let open: ListedGap | undefined;
  for (const s of media.segments) {
    if (s.gap && open) open.missingSeconds += s.duration;
    else if (s.gap) gaps.push((open = { segment: resolveUri(playlistKey, s.uri, sourcePrefix), startSeconds: at, missingSeconds: s.duration }));
    else open = undefined;
    at += s.duration;
  }
  return gaps.map((g) => ({ ...g, startSeconds: round3(g.startSeconds), missingSeconds: round3(g.missingSeconds) }));
}

const round3 = (s: number) => Math.round(s * 1000) / 1000;

function segmentKey(playlistKey: string, k: MediaPlaylist["segments"][number]["key"], sequence: number, sourcePrefix: string): SegmentKey | undefined {
  if (!k || k.method === "NONE") return undefined;
  if (k.method !== "AES-128") {
    const why = k.method === "SAMPLE-AES" || k.method === "SAMPLE-AES-CTR" ? "encrypts samples inside the media for DRM players" : "is not a method of the HLS specification";
    throw new HlsError("encryption", `${playlistKey} is encrypted with #EXT-X-KEY METHOD=${k.method}, which ${why}; convert decrypts only METHOD=AES-128 with the key file in the folder: upload the folder unencrypted or with AES-128`);
  }
  if (k.format && k.format !== "identity") {
    throw new HlsError("encryption", `${playlistKey} names its AES-128 key with KEYFORMAT="${k.format}", which convert cannot read: use KEYFORMAT="identity" (the key file's 16 bytes)`);
  }
  if (!k.uri) throw new HlsError("encryption", `${playlistKey} has #EXT-X-KEY METHOD=AES-128 without a URI: name the key file in the folder`);
  const iv = k.iv ? Buffer.from(k.iv).toString("hex").padStart(32, "0") : sequence.toString(16).padStart(32, "0");
  return { key: resolveUri(playlistKey, k.uri, sourcePrefix, "key"), iv };
}

export function totalDuration(segments: readonly ResolvedSegment[]): number {
  return segments.reduce((sum, s) => sum + s.duration, 0);
}

/** Every object a playlist's segments need (segments, init sections, keys), once each. */
export function neededKeys(segments: readonly ResolvedSegment[]): string[] {
  return [...new Set(segments.flatMap((s) => [s.key, ...(s.map ? [s.map.key] : []), ...(s.aes ? [s.aes.key] : [])]))];
}

/**
 * The playlist FFmpeg reads: the same segments in the same order, each by a URL FFmpeg can fetch
 * (presigned), so the segments stream from the store into FFmpeg without touching the disk. Keys carry
 * their IV explicitly, because this playlist's media sequence restarts at 0.
 */
export function writeLocalPlaylist(segments: readonly ResolvedSegment[], urlOf: (key: string) => string): string {
  const target = Math.max(1, Math.ceil(Math.max(...segments.map((s) => s.duration))));
  const lines = ["#EXTM3U", "#EXT-X-VERSION:7", `#EXT-X-TARGETDURATION:${target}`, "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-PLAYLIST-TYPE:VOD"];
  let map: string | undefined;
  let aes: string | undefined;
  for (const s of segments) {
    if (s.discontinuity) lines.push("#EXT-X-DISCONTINUITY");
    const a = s.aes ? `${s.aes.key}@${s.aes.iv}` : undefined;
    if (a !== aes) lines.push(s.aes ? `#EXT-X-KEY:METHOD=AES-128,URI="${urlOf(s.aes.key)}",IV=0x${s.aes.iv}` : "#EXT-X-KEY:METHOD=NONE");
    aes = a;
    const m = s.map ? `${s.map.key}@${s.map.byterange?.offset ?? ""}` : undefined;
    if (s.map && m !== map) {
      const range = s.map.byterange ? `,BYTERANGE="${s.map.byterange.length}@${s.map.byterange.offset}"` : "";
      lines.push(`#EXT-X-MAP:URI="${urlOf(s.map.key)}"${range}`);
    }
    map = m;
    lines.push(`#EXTINF:${s.duration.toFixed(6)},`);
    if (s.byterange) lines.push(`#EXT-X-BYTERANGE:${s.byterange.length}@${s.byterange.offset}`);
    lines.push(urlOf(s.key));
  }
  lines.push("#EXT-X-ENDLIST", "");
  return lines.join("\n");
}
