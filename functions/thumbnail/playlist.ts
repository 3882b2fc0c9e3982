import type { S3Client } from "@aws-sdk/client-s3";
import { HlsError, looksFinished, looksMaster, parsePlaylist, readPlaylist, resolveSegments, resolveSource, type ResolvedSegment } from "../../lib/hls/index.js";
import { folderOf } from "../../lib/layout.js";
import { PermanentError } from "../runtime/handler.js";

// The thumbnail reads playlists through the one HLS module convert uses (lib/hls): the same source
// prefix, the same variant and the same refusals, so both functions always agree on which recording an
// event is about and never make a row the other would not.

/** A playlist the HLS rules refuse (a segment outside the folder, not a playlist...): never fetched. */
export class PlaylistError extends PermanentError {}

/** The HLS rules' refusals fail the thumbnail job permanently with their message. */
async function refusals<T>(f: () => Promise<T> | T): Promise<T> {
  try {
    return await f();
  } catch (err) {
    if (err instanceof HlsError) throw new PlaylistError(err.message);
    throw err;
  }
}

export interface ByteRange {
  offset: number;
  length: number;
}

/** One media segment, as an object key in the HLS bucket, with where it sits on the timeline. */
export interface SegmentRef {
  key: string;
  start: number;
  duration: number;
  range?: ByteRange;
  /** fMP4: the initialization section (#EXT-X-MAP) that must precede the segment's bytes. */
  init?: { key: string; range?: ByteRange };
  /** AES-128: the key file (inside the folder) and the IV the segment is decrypted with. */
  aes?: { key: string; iv: string };
}

export interface Timeline {
  segments: SegmentRef[];
  duration: number;
}

export type PlaylistLookup =
  | { kind: "ignored"; reason: string }
  | {
      kind: "recording";
      /** The recording's source prefix (its HLS folder in hls-streams; the master's folder for a master playlist). */
      sourcePrefix: string;
      /** The media playlist's segments as the HLS rules resolved them (keys, IVs): an audio-only source's waveform reads them all. */
      resolved: ResolvedSegment[];
      /** The recording's title, as convert names it. */
      name: string;
      /** The media playlist whose segments are used. */
      mediaKey: string;
      /** Which version of the playlist the images are made from: a changed playlist is made again. */
      version: string;
    } & Timeline;

/**
 * S3 keys are names, not paths, but a file-backed store may treat `..` in a key as a path: a key with
 * `.`/`..` parts (as `..%2F` decodes to) or backslashes is refused, whatever resolved it.
 */
function assertPlainKey(key: string, playlistKey: string): void {
  if (key.split("/").some((p) => p === "." || p === "..") || key.includes("\\"))
    throw new PlaylistError(`${playlistKey} references a segment that resolves to ${JSON.stringify(key)}, which is not a plain path inside its folder: list segments by their plain relative names`);
}

/** Segments placed on the stream's timeline (start = sum of the durations before). */
export function onTimeline(segments: readonly ResolvedSegment[], playlistKey: string): Timeline {
  let start = 0;
  const out: SegmentRef[] = [];
  for (const s of segments) {
    assertPlainKey(s.key, playlistKey);
    if (s.map) assertPlainKey(s.map.key, playlistKey);
    if (s.aes) assertPlainKey(s.aes.key, playlistKey);
    const duration = Number.isFinite(s.duration) && s.duration > 0 ? s.duration : 0;
    out.push({ key: s.key, start, duration, range: s.byterange, init: s.map ? { key: s.map.key, range: s.map.byterange } : undefined, aes: s.aes });
    start += duration;
  }
  return { segments: out, duration: start };
}

const version = (key: string, etag: string) => `${key}@${etag}`;

/** The event's playlist, read once: enough to ignore an unfinished one without further requests. */
export async function readEventPlaylist(s3: S3Client, bucket: string, key: string, signal?: AbortSignal) {
  const obj = await refusals(() => readPlaylist(s3, bucket, key, signal));
  if (!obj) return { kind: "ignored" as const, reason: "the playlist no longer exists" };
  if (!looksFinished(obj.text) && !looksMaster(obj.text)) return { kind: "ignored" as const, reason: "the playlist is not finished (no #EXT-X-ENDLIST)" };
  return { kind: "candidate" as const, text: obj.text, etag: obj.etag };
}

/**
 * A guess made before the folder is known: when the event's playlist is itself a finished media
 * playlist, it is what gets used (unless a master makes it a lower variant, which only `lookupPlaylist`
 * can tell). Lets the poster start while the master search runs. Undefined when there is no safe guess.
 */
export function guessTimeline(key: string, text: string, etag: string): (Timeline & { version: string }) | undefined {
  try {
    const media = parsePlaylist(text, key);
    if (media.isMasterPlaylist || !media.endlist) return undefined;
    return { ...onTimeline(resolveSegments(key, media, folderOf(key)), key), version: version(key, etag) };
  } catch {
    return undefined;
  }
}

/** What a playlist event means, decided by convert's own rules: a recording's folder and segments, or nothing. */
export async function lookupPlaylist(s3: S3Client, bucket: string, key: string, signal?: AbortSignal): Promise<PlaylistLookup> {
  const r = await refusals(() => resolveSource(s3, bucket, key, signal));
  if (r.kind === "ignore") return { kind: "ignored", reason: r.reason };
  // The event of the master's last playlist to land makes the images.
  if (r.kind === "incomplete") return { kind: "ignored", reason: `${r.masterKey} still waits for ${r.missing.join(", ")}` };
  const src = r.source;
  return {
    kind: "recording",
    sourcePrefix: src.sourcePrefix,
    resolved: src.segments,
    name: src.name,
    mediaKey: src.playlistKey,
    version: version(src.playlistKey, src.playlistEtag),
    ...onTimeline(src.segments, src.playlistKey),
  };
}
