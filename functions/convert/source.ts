import { GetObjectCommand, ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";
import { isNotFound, listObjects } from "../../lib/s3.js";
import { PermanentError } from "../runtime/handler.js";
import {
  folderOf,
  looksFinished,
  looksMaster,
  parsePlaylist,
  pickVariant,
  recordingName,
  resolveSegmentKey,
  resolveSegments,
  totalDuration,
  type MasterPlaylist,
  type ResolvedSegment,
} from "./playlist.js";

// Stage 1 of convert: from the event's playlist to the folder, the media playlist and its segments.
//
// One recording per folder, also for master playlists: the recording's folder is the master's folder,
// and the converted stream is its highest-bandwidth variant. An event for a variant playlist (in the
// master's folder or one level below it, the layouts FFmpeg and packagers write) is mapped to that
// master; an event for any other variant, or for a master whose best variant is not finished yet, is
// ignored (the best variant's own #EXT-X-ENDLIST event comes later and does the work).

export interface Source {
  /** The recording's folder (source_prefix). */
  folder: string;
  /** Title and file name of the MP4. */
  name: string;
  /** The master playlist, when the folder has one, and all its variant playlists. */
  masterKey?: string;
  variantKeys?: string[];
  /** The media playlist converted, and the version read (its ETag): reprocessing happens when it changes. */
  playlistKey: string;
  playlistEtag: string;
  playlistModified: Date;
  segments: ResolvedSegment[];
  seconds: number;
}

export type Resolution = { kind: "ignore"; reason: string } | { kind: "convert"; source: Source };

const MAX_PLAYLIST_BYTES = 16 * 1024 * 1024;

interface PlaylistObject {
  text: string;
  etag: string;
  modified: Date;
}

export async function readPlaylist(s3: S3Client, bucket: string, key: string, signal?: AbortSignal): Promise<PlaylistObject | undefined> {
  try {
    const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
    if ((res.ContentLength ?? 0) > MAX_PLAYLIST_BYTES) {
      res.Body?.transformToByteArray().catch(() => {});
      throw new PermanentError(`${key} is ${res.ContentLength} bytes, too large for a playlist (the limit is ${MAX_PLAYLIST_BYTES}): upload the .m3u8 playlist, not media, under this name`);
    }
    return { text: await res.Body!.transformToString("utf-8"), etag: (res.ETag ?? "").replaceAll('"', ""), modified: res.LastModified ?? new Date() };
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** Decides what an event for `eventKey` means: convert some folder, or nothing. */
export async function resolveSource(s3: S3Client, bucket: string, eventKey: string, signal?: AbortSignal): Promise<Resolution> {
  const event = await readPlaylist(s3, bucket, eventKey, signal);
  if (!event) return { kind: "ignore", reason: "the playlist no longer exists" };
  const parsedEvent = looksMaster(event.text) || looksFinished(event.text) ? parsePlaylist(event.text, eventKey) : undefined;
  // A live playlist (no ENDLIST yet) must still be a playlist: a .m3u8 that is not one fails at once.
  if (!parsedEvent) {
    parsePlaylist(event.text, eventKey);
    return { kind: "ignore", reason: "the playlist is not finished (no #EXT-X-ENDLIST)" };
  }

  let masterKey: string;
  let master: MasterPlaylist;
  if (parsedEvent.isMasterPlaylist) {
    masterKey = eventKey;
    master = parsedEvent;
  } else {
    const found = await findMaster(s3, bucket, eventKey, signal);
    if (!found) return convertMedia(folderOf(eventKey), eventKey, event, undefined);
    ({ masterKey, master } = found);
  }

  const folder = folderOf(masterKey);
  const best = pickVariant(master);
  if (!best) throw new PermanentError(`${masterKey} is a master playlist with no playable variant: list at least one #EXT-X-STREAM-INF variant`);
  const variantKey = resolveSegmentKey(masterKey, best.uri, folder);
  if (!parsedEvent.isMasterPlaylist && variantKey !== eventKey) return { kind: "ignore", reason: `not the highest-bandwidth variant of ${masterKey}` };
  const variant = variantKey === eventKey ? event : await readPlaylist(s3, bucket, variantKey, signal);
  if (!variant) return { kind: "ignore", reason: `the best variant ${variantKey} is not uploaded yet` };
  if (!looksFinished(variant.text)) return { kind: "ignore", reason: `the best variant ${variantKey} is not finished yet` };
  const resolution = convertMedia(folder, variantKey, variant, masterKey);
  if (resolution.kind === "convert") resolution.source.variantKeys = variantKeysOf(master, masterKey);
  return resolution;
}

function convertMedia(folder: string, key: string, obj: PlaylistObject, masterKey: string | undefined): Resolution {
  const media = parsePlaylist(obj.text, key);
  if (media.isMasterPlaylist) throw new PermanentError(`${masterKey} names ${key} as a variant, but it is a master playlist too: variants must be media playlists`);
  const segments = resolveSegments(key, media, folder);
  return {
    kind: "convert",
    source: {
      folder,
      name: recordingName(folder, masterKey ?? key),
      masterKey,
      playlistKey: key,
      playlistEtag: obj.etag,
      playlistModified: obj.modified,
      segments,
      seconds: totalDuration(segments),
    },
  };
}

function variantKeysOf(master: MasterPlaylist, masterKey: string): string[] {
  const keys: string[] = [];
  for (const v of master.variants) {
    try {
      keys.push(resolveSegmentKey(masterKey, v.uri, folderOf(masterKey)));
    } catch {
      // a variant outside the folder is never converted; nothing of it to clean up
    }
  }
  return keys;
}

/** A master playlist in the same folder or one folder up that lists `mediaKey` as a variant. */
async function findMaster(s3: S3Client, bucket: string, mediaKey: string, signal?: AbortSignal): Promise<{ masterKey: string; master: MasterPlaylist } | undefined> {
  const here = folderOf(mediaKey);
  const folders = here ? [here, folderOf(here)] : [""];
  for (const folder of folders) {
    const candidates = (await listPlaylistsIn(s3, bucket, folder, signal)).filter((k) => k !== mediaKey).slice(0, 20);
    for (const key of candidates) {
      const obj = await readPlaylist(s3, bucket, key, signal);
      if (!obj || !looksMaster(obj.text)) continue;
      let master;
      try {
        master = parsePlaylist(obj.text, key);
      } catch {
        continue;
      }
      if (!master.isMasterPlaylist) continue;
      const lists = master.variants.some((v) => {
        try {
          return resolveSegmentKey(key, v.uri, folderOf(key)) === mediaKey;
        } catch {
          return false;
        }
      });
      if (lists) return { masterKey: key, master };
    }
  }
  return undefined;
}

/** The .m3u8 objects directly in a folder (not below it). */
async function listPlaylistsIn(s3: S3Client, bucket: string, folder: string, signal?: AbortSignal): Promise<string[]> {
  const out: string[] = [];
  let token: string | undefined;
  do {
    const res = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: folder ? `${folder}/` : "", Delimiter: "/", ContinuationToken: token }),
      { abortSignal: signal },
    );
    for (const o of res.Contents ?? []) if (o.Key?.toLowerCase().endsWith(".m3u8")) out.push(o.Key);
    token = res.IsTruncated ? res.NextContinuationToken : undefined;
  } while (token);
  return out;
}

export interface SegmentCheck {
  missing: string[];
  empty: string[];
  /** The newest segment's upload time: the wait for missing segments restarts while they keep arriving. */
  newest: Date;
  /** Total size of the segments present. */
  bytes: number;
}

/** Which segments (and init sections) are not in the store yet, from one listing of the folder. */
export async function checkSegments(s3: S3Client, bucket: string, source: Source): Promise<SegmentCheck> {
  const present = new Map<string, { size: number; modified: Date }>();
  for await (const o of listObjects(s3, bucket, source.folder ? `${source.folder}/` : "")) present.set(o.key, { size: o.size, modified: o.lastModified });
  const needed = new Set<string>();
  for (const s of source.segments) {
    needed.add(s.key);
    if (s.map) needed.add(s.map.key);
  }
  const check: SegmentCheck = { missing: [], empty: [], newest: new Date(0), bytes: 0 };
  for (const key of needed) {
    const o = present.get(key);
    if (!o) check.missing.push(key);
    else if (o.size === 0) check.empty.push(key);
    else {
      check.bytes += o.size;
      if (o.modified > check.newest) check.newest = o.modified;
    }
  }
  return check;
}
