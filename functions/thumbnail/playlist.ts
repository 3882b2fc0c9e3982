import { GetObjectCommand, ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";
import HLS from "hls-parser";
import type { types } from "hls-parser";
import { isNotFound } from "../../lib/s3.js";
import { PermanentError } from "../runtime/handler.js";

// hls-parser reports problems on stderr besides throwing; we report them ourselves, in JSON.
HLS.setOptions({ silent: true });

/** A playlist that cannot be used as it is: retrying will not help, the uploader must fix it. */
export class PlaylistError extends PermanentError {
  readonly detail = "playlist" as const;
}

export interface ByteRange {
  offset: number;
  length: number;
}

/** One media segment, as an object key in the HLS bucket, with where it sits on the timeline. */
export interface SegmentRef {
  key: string;
  /** The playlist's own URI, for messages. */
  uri: string;
  start: number;
  duration: number;
  range?: ByteRange;
  /** fMP4: the initialization section (#EXT-X-MAP) that must precede the segment's bytes. */
  init?: { key: string; range?: ByteRange };
}

export type PlaylistLookup =
  | { kind: "ignored"; reason: string }
  | {
      kind: "recording";
      /** The recording's folder in the HLS bucket (the master's folder for a master playlist). */
      folder: string;
      /** The media playlist whose segments are used. */
      mediaKey: string;
      /** The ETags of the master (if any) and media playlist: a changed playlist is a new version of the recording. */
      version: string;
      segments: SegmentRef[];
      duration: number;
    };

const ENDLIST = "#EXT-X-ENDLIST";
const STREAM_INF = "#EXT-X-STREAM-INF";

export function folderOf(key: string): string {
  const i = key.lastIndexOf("/");
  return i < 0 ? "" : key.slice(0, i);
}

/**
 * Resolves a URI written in the playlist at `playlistKey` to an object key in the same bucket, and
 * refuses anything that would leave `root`: absolute URLs, root-relative paths, `..` above the folder,
 * encoded slashes. Such a URI is never fetched.
 */
export function resolveUri(uri: string, playlistKey: string, root: string): string {
  const u = uri.trim();
  const fix = `; list segments by paths relative to the playlist, inside its folder "${root}"`;
  if (u === "") throw new PlaylistError(`playlist ${playlistKey} has an empty URI line${fix}`);
  if (/^[a-z][a-z0-9+.-]*:/i.test(u)) throw new PlaylistError(`playlist ${playlistKey} refers to "${u}", an absolute URL${fix}`);
  if (u.startsWith("/") || u.includes("\\")) throw new PlaylistError(`playlist ${playlistKey} refers to "${u}", which is not a relative path${fix}`);
  if (/[?#]/.test(u)) throw new PlaylistError(`playlist ${playlistKey} refers to "${u}", which has a query or fragment${fix}`);

  const parts = folderOf(playlistKey).split("/").filter(Boolean);
  const rootDepth = root.split("/").filter(Boolean).length;
  for (const raw of u.split("/")) {
    let part = raw;
    try {
      part = decodeURIComponent(raw);
    } catch {
      // Not percent-encoded (a literal `%` in a file name): the name is used as written.
    }
    if (part.includes("/") || part.includes("\\")) throw new PlaylistError(`playlist ${playlistKey} refers to "${u}", which hides a slash in an escape${fix}`);
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (parts.length <= rootDepth) throw new PlaylistError(`playlist ${playlistKey} refers to "${u}", which leaves its folder${fix}`);
      parts.pop();
      continue;
    }
    parts.push(part);
  }
  const key = parts.join("/");
  if (root !== "" && !key.startsWith(`${root}/`)) throw new PlaylistError(`playlist ${playlistKey} refers to "${u}", which leaves its folder${fix}`);
  return key;
}

async function readText(s3: S3Client, bucket: string, key: string, signal?: AbortSignal): Promise<{ text: string; etag: string } | undefined> {
  try {
    const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
    return { text: await res.Body!.transformToString("utf-8"), etag: (res.ETag ?? "").replaceAll('"', "") };
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

function parse(text: string, key: string): types.MasterPlaylist | types.MediaPlaylist {
  if (!text.trimStart().startsWith("#EXTM3U")) throw new PlaylistError(`${key} is not an HLS playlist (it does not start with #EXTM3U); upload the .m3u8 that ffmpeg or your encoder wrote`);
  try {
    return HLS.parse(text);
  } catch (err) {
    throw new PlaylistError(`${key} is not a valid HLS playlist (${(err as Error).message}); upload the .m3u8 that ffmpeg or your encoder wrote`);
  }
}

/** The variant a viewer on a good connection gets: highest bandwidth, then largest picture. */
export function bestVariant(master: types.MasterPlaylist): types.Variant | undefined {
  const videoFirst = master.variants.filter((v) => !v.isIFrameOnly);
  return [...videoFirst].sort((a, b) => b.bandwidth - a.bandwidth || area(b) - area(a))[0];
}
const area = (v: types.Variant) => (v.resolution ? v.resolution.width * v.resolution.height : 0);

/** Segment keys and their place on the timeline; URIs leaving `root` are refused. */
export function resolveSegments(media: types.MediaPlaylist, mediaKey: string, root: string): { segments: SegmentRef[]; duration: number } {
  let start = 0;
  const lastByteEnd = new Map<string, number>();
  const segments: SegmentRef[] = [];
  for (const s of media.segments) {
    if (s.key && s.key.method !== "NONE") throw new PlaylistError(`playlist ${mediaKey} has encrypted segments (#EXT-X-KEY METHOD=${s.key.method}); upload unencrypted HLS`);
    const key = resolveUri(s.uri, mediaKey, root);
    let range: ByteRange | undefined;
    if (s.byterange) {
      // An EXT-X-BYTERANGE without an offset continues where the previous range of the same file ended.
      const offset = s.byterange.offset ?? lastByteEnd.get(key) ?? 0;
      range = { offset, length: s.byterange.length };
      lastByteEnd.set(key, offset + s.byterange.length);
    }
    const init = s.map ? { key: resolveUri(s.map.uri, mediaKey, root), range: s.map.byterange ? { offset: s.map.byterange.offset ?? 0, length: s.map.byterange.length } : undefined } : undefined;
    const duration = Number.isFinite(s.duration) && s.duration > 0 ? s.duration : 0;
    segments.push({ key, uri: s.uri, start, duration, range, init });
    start += duration;
  }
  return { segments, duration: start };
}

/** The master playlists among the `.m3u8` objects directly inside `folder` (never reads segments). */
async function mastersIn(s3: S3Client, bucket: string, folder: string, except: string, signal?: AbortSignal) {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const res = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: folder === "" ? "" : `${folder}/`, Delimiter: "/", ContinuationToken: token }),
      { abortSignal: signal },
    );
    for (const o of res.Contents ?? []) if (o.Key && o.Key !== except && o.Key.toLowerCase().endsWith(".m3u8")) keys.push(o.Key);
    token = res.IsTruncated ? res.NextContinuationToken : undefined;
  } while (token);
  const masters: { key: string; etag: string; playlist: types.MasterPlaylist }[] = [];
  for (const key of keys) {
    const got = await readText(s3, bucket, key, signal);
    if (!got || !got.text.includes(STREAM_INF)) continue;
    try {
      const p = parse(got.text, key);
      if (p.isMasterPlaylist) masters.push({ key, etag: got.etag, playlist: p });
    } catch {
      // Someone else's broken master is not this recording's problem; its own event reports it.
    }
  }
  return masters;
}

/**
 * Decides what a playlist event means. A finished media playlist is a recording in its own folder,
 * unless a master in its folder or the folder above lists it: then the recording is the master's folder,
 * made from the master's highest-bandwidth variant (other variants are ignored). A master playlist is a
 * recording once that variant has #EXT-X-ENDLIST. Anything unfinished is ignored after one GET.
 */
export async function lookupPlaylist(s3: S3Client, bucket: string, key: string, signal?: AbortSignal): Promise<PlaylistLookup> {
  const got = await readText(s3, bucket, key, signal);
  if (!got) return { kind: "ignored", reason: "playlist no longer exists" };
  if (!got.text.includes(ENDLIST) && !got.text.includes(STREAM_INF)) return { kind: "ignored", reason: "playlist has no #EXT-X-ENDLIST yet" };
  const playlist = parse(got.text, key);

  if (playlist.isMasterPlaylist) {
    const root = folderOf(key);
    const best = bestVariant(playlist);
    if (!best) throw new PlaylistError(`master playlist ${key} lists no variants; list at least one media playlist with #EXT-X-STREAM-INF`);
    const variantKey = resolveUri(best.uri, key, root);
    const variant = await readText(s3, bucket, variantKey, signal);
    if (!variant) return { kind: "ignored", reason: `variant ${variantKey} is not uploaded yet` };
    if (!variant.text.includes(ENDLIST)) return { kind: "ignored", reason: `variant ${variantKey} has no #EXT-X-ENDLIST yet` };
    const media = parse(variant.text, variantKey);
    if (media.isMasterPlaylist) throw new PlaylistError(`master playlist ${key} lists another master playlist (${variantKey}) as a variant; list media playlists only`);
    return { kind: "recording", folder: root, mediaKey: variantKey, version: `${got.etag}+${variant.etag}`, ...resolveSegments(media, variantKey, root) };
  }

  if (!playlist.endlist) return { kind: "ignored", reason: "playlist has no #EXT-X-ENDLIST yet" };
  const own = folderOf(key);
  const candidates = own === "" ? [own] : [own, folderOf(own)];
  for (const folder of candidates) {
    for (const m of await mastersIn(s3, bucket, folder, key, signal)) {
      const listed = m.playlist.variants.some((v) => safeResolve(v.uri, m.key, folder) === key);
      if (!listed) continue;
      const best = bestVariant(m.playlist);
      if (!best || safeResolve(best.uri, m.key, folder) !== key) return { kind: "ignored", reason: `not the highest-bandwidth variant of ${m.key}` };
      return { kind: "recording", folder, mediaKey: key, version: `${m.etag}+${got.etag}`, ...resolveSegments(playlist, key, folder) };
    }
  }
  return { kind: "recording", folder: own, mediaKey: key, version: got.etag, ...resolveSegments(playlist, key, own) };
}

function safeResolve(uri: string, playlistKey: string, root: string): string | undefined {
  try {
    return resolveUri(uri, playlistKey, root);
  } catch {
    return undefined;
  }
}
