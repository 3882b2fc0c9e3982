import HLS from "hls-parser";
import type { types } from "hls-parser";
import { PermanentError } from "../runtime/handler.js";

// Pure playlist logic: parsing, choosing a variant, turning segment URIs into object keys that stay
// inside the recording's folder, and writing the temporary playlist FFmpeg reads.

// Lenient parsing (real playlists bend the spec) without the parser's own console output.
HLS.setOptions({ silent: true });

export type MediaPlaylist = types.MediaPlaylist;
export type MasterPlaylist = types.MasterPlaylist;

/** `a/b/index.m3u8` → `a/b`; a key at the bucket root → "". */
export function folderOf(key: string): string {
  const i = key.lastIndexOf("/");
  return i < 0 ? "" : key.slice(0, i);
}

/** The last name of a folder (`talks/2026/keynote` → `keynote`), or the playlist's name for a root-level playlist. */
export function recordingName(folder: string, playlistKey: string): string {
  if (folder) return folder.slice(folder.lastIndexOf("/") + 1);
  const base = playlistKey.slice(playlistKey.lastIndexOf("/") + 1);
  return base.replace(/\.m3u8$/i, "") || "recording";
}

export function isPlaylistText(text: string): boolean {
  return text.replace(/^\uFEFF/, "").trimStart().startsWith("#EXTM3U");
}

/** A cheap look before parsing: a media playlist is finished only with #EXT-X-ENDLIST. */
export function looksFinished(text: string): boolean {
  return text.includes("#EXT-X-ENDLIST");
}

export function looksMaster(text: string): boolean {
  return text.includes("#EXT-X-STREAM-INF");
}

export function parsePlaylist(text: string, key: string): MasterPlaylist | MediaPlaylist {
  if (!isPlaylistText(text)) {
    throw new PermanentError(`${key} is not an HLS playlist (it does not start with #EXTM3U): upload a valid .m3u8 file to this folder`);
  }
  try {
    return HLS.parse(text.replace(/^\uFEFF/, "")) as MasterPlaylist | MediaPlaylist;
  } catch (err) {
    throw new PermanentError(`${key} could not be parsed as an HLS playlist (${(err as Error).message}): fix the playlist and upload it again`);
  }
}

/** The variant a VOD viewer wants most: the highest bandwidth (not I-frame only). */
export function pickVariant(master: MasterPlaylist): types.Variant | undefined {
  return [...master.variants].filter((v) => !v.isIFrameOnly).sort((a, b) => b.bandwidth - a.bandwidth)[0];
}

/**
 * Resolves a URI written in the playlist `fromKey` to an object key in the same bucket, refusing
 * anything that would read outside `rootFolder`: absolute URLs (other hosts), absolute paths (other
 * buckets in path-style S3), `..` escapes and query strings. Nothing refused is ever fetched.
 */
export function resolveSegmentKey(fromKey: string, uri: string, rootFolder: string): string {
  const shown = JSON.stringify(uri);
  const fix = "segments must be relative paths to files inside the playlist's folder";
  if (/^[a-z][a-z0-9+.-]*:/i.test(uri)) throw new PermanentError(`${fromKey} references ${shown}, an absolute URL: ${fix}`);
  if (uri.startsWith("/") || uri.startsWith("\\")) throw new PermanentError(`${fromKey} references ${shown}, an absolute path (another bucket or folder): ${fix}`);
  if (uri.includes("?")) throw new PermanentError(`${fromKey} references ${shown}, which has a query string: ${fix}`);
  const path = uri.split("#")[0]!;
  const parts = folderOf(fromKey).split("/").filter(Boolean);
  for (const raw of path.split("/")) {
    const part = decodeComponent(raw);
    // An encoded separator (`..%2Fx.ts`) would smuggle a ".." past the walk below into the key.
    if (part.includes("/") || part.includes("\\")) throw new PermanentError(`${fromKey} references ${shown}, which hides a path separator in an encoded name: ${fix}`);
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (parts.length === 0) throw new PermanentError(`${fromKey} references ${shown}, which escapes the bucket with "..": ${fix}`);
      parts.pop();
      continue;
    }
    parts.push(part);
  }
  const key = parts.join("/");
  const root = rootFolder ? `${rootFolder}/` : "";
  if (!key.startsWith(root) || key.length === root.length) {
    throw new PermanentError(`${fromKey} references ${shown}, which resolves to ${JSON.stringify(key)} outside the folder ${JSON.stringify(rootFolder)}: ${fix}`);
  }
  return key;
}

/** URIs may be percent-encoded; a raw name with a stray % is taken as it is. */
function decodeComponent(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

export interface ResolvedSegment {
  key: string;
  duration: number;
  discontinuity: boolean;
  byterange?: { length: number; offset: number };
  /** The fMP4 initialization section (#EXT-X-MAP) this segment needs. */
  map?: { key: string; byterange?: { length: number; offset: number } };
}

/** Every segment of a finished media playlist, as object keys inside `rootFolder`. */
export function resolveSegments(playlistKey: string, media: MediaPlaylist, rootFolder: string): ResolvedSegment[] {
  if (media.segments.length === 0) {
    throw new PermanentError(`${playlistKey} lists no segments: there is nothing to convert; upload a playlist that lists its segments`);
  }
  return media.segments.map((s) => {
    if (s.key && s.key.method !== "NONE") {
      throw new PermanentError(`${playlistKey} is encrypted (#EXT-X-KEY METHOD=${s.key.method}), which convert does not support: upload unencrypted segments`);
    }
    return {
      key: resolveSegmentKey(playlistKey, s.uri, rootFolder),
      duration: s.duration,
      discontinuity: Boolean(s.discontinuity),
      byterange: s.byterange,
      map: s.map ? { key: resolveSegmentKey(playlistKey, s.map.uri, rootFolder), byterange: s.map.byterange } : undefined,
    };
  });
}

export function totalDuration(segments: ResolvedSegment[]): number {
  return segments.reduce((sum, s) => sum + s.duration, 0);
}

/**
 * The playlist FFmpeg reads: the same segments in the same order, each by a URL FFmpeg can fetch
 * (presigned), so the segments stream from the store into FFmpeg without touching the disk.
 */
export function writeLocalPlaylist(segments: ResolvedSegment[], urlOf: (key: string) => string): string {
  const target = Math.max(1, Math.ceil(Math.max(...segments.map((s) => s.duration))));
  const lines = ["#EXTM3U", "#EXT-X-VERSION:7", `#EXT-X-TARGETDURATION:${target}`, "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-PLAYLIST-TYPE:VOD"];
  let map: string | undefined;
  for (const s of segments) {
    if (s.discontinuity) lines.push("#EXT-X-DISCONTINUITY");
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
