import { GetObjectCommand, ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";
import { folderOf, listPrefix, recordingName } from "../layout.js";
import { isNotFound, listObjects } from "../s3.js";
import { HlsError } from "./error.js";
import { memberKeys, planMaster, type RenditionRef } from "./master.js";
import { listedGaps, neededKeys, resolveSegments, totalDuration, type ListedGap, type ResolvedSegment } from "./media.js";
import { looksFinished, looksMaster, parsePlaylist, type MasterPlaylist, type MediaPlaylist } from "./parse.js";


// From a playlist event to the recording it is about: its source prefix and every media playlist the
// recording is made of.
//
// One recording per source prefix, also for master playlists: the recording's source prefix is the
// master's folder, its video the highest-bandwidth variant, its audio that variant's audio group, its
// subtitles the variant's WebVTT group. An event for any playlist the master names (in the master's
// folder or one level below it, the layouts FFmpeg and packagers write) is mapped to that master and
// never becomes a recording of its own; the recording is made when the last of the playlists it needs
// is finished, whichever event that is.

export interface AudioSource extends RenditionRef {
  /** Set for a rendition with its own playlist; the variant's own audio has none. */
  segments?: ResolvedSegment[];
}

export interface SubtitleSource extends RenditionRef {
  key: string;
  segments: ResolvedSegment[];
}

export interface Source {
  sourcePrefix: string;
  /** Title and file name of the MP4. */
  name: string;
  /** The master playlist, when the folder has one, and every playlist it names. */
  masterKey?: string;
  memberKeys?: string[];
  /** The video (or only) media playlist, and the version of everything read: reprocessing happens when it changes. */
  playlistKey: string;
  playlistEtag: string;
  playlistModified: Date;
  /** The segments holding media; #EXT-X-GAP entries are in `gaps` instead. */
  segments: ResolvedSegment[];
  /** Seconds of media the segments hold (gaps not counted). */
  seconds: number;
  /** Where the video (or only) playlist marks media as missing (#EXT-X-GAP), on its listed timeline. */
  gaps: ListedGap[];
  /** Audio tracks in MP4 order. A plain media playlist has one entry: whatever audio its segments carry. */
  audio: AudioSource[];
  subtitles: SubtitleSource[];
}

export type Resolution =
  /** `live`: a playlist still growing (no #EXT-X-ENDLIST yet), parsed, for convert's live assembly. */
  | { kind: "ignore"; reason: string; live?: MasterPlaylist | MediaPlaylist }
  /**
   * A master whose playlists (the video variant, its audio renditions, its subtitles) are not all
   * uploaded or finished yet: `missing` names them, `since` is when the last of the others landed.
   */
  | { kind: "incomplete"; sourcePrefix: string; masterKey: string; missing: string[]; since: Date }
  | { kind: "convert"; source: Source };

const MAX_PLAYLIST_BYTES = 16 * 1024 * 1024;

export interface PlaylistObject {
  text: string;
  etag: string;
  modified: Date;
}

export async function readPlaylist(s3: S3Client, bucket: string, key: string, signal?: AbortSignal): Promise<PlaylistObject | undefined> {
  try {
    const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
    if ((res.ContentLength ?? 0) > MAX_PLAYLIST_BYTES) {
      res.Body?.transformToByteArray().catch(() => {});
      throw new HlsError("too-large", `${key} is ${res.ContentLength} bytes, too large for a playlist (the limit is ${MAX_PLAYLIST_BYTES}): upload the .m3u8 playlist, not media, under this name`);
    }
    return { text: await res.Body!.transformToString("utf-8"), etag: (res.ETag ?? "").replaceAll('"', ""), modified: res.LastModified ?? new Date() };
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** Decides what an event for `eventKey` means: make some recording, or nothing. */
export async function resolveSource(s3: S3Client, bucket: string, eventKey: string, signal?: AbortSignal): Promise<Resolution> {
  const event = await readPlaylist(s3, bucket, eventKey, signal);
  if (!event) return { kind: "ignore", reason: "the playlist no longer exists" };
  const parsedEvent = looksMaster(event.text) || looksFinished(event.text) ? parsePlaylist(event.text, eventKey) : undefined;
  // A live playlist (no ENDLIST yet) must still be a playlist: a .m3u8 that is not one fails at once.
  if (!parsedEvent) {
    const live = parsePlaylist(event.text, eventKey);
    return { kind: "ignore", reason: "the playlist is not finished (no #EXT-X-ENDLIST)", live };
  }

  let masterKey: string;
  let master: MasterPlaylist;
  let masterModified: Date;
  if (parsedEvent.isMasterPlaylist) {
    masterKey = eventKey;
    master = parsedEvent;
    masterModified = event.modified;
  } else {
    const found = await findMaster(s3, bucket, eventKey, signal);
    if (!found) return { kind: "convert", source: mediaSource(folderOf(eventKey), eventKey, event, undefined) };
    ({ masterKey, master, modified: masterModified } = found);
  }

  const sourcePrefix = folderOf(masterKey);
  const plan = planMaster(master, masterKey);
  const needed = [plan.variantKey, ...plan.audio.flatMap((a) => (a.key ? [a.key] : [])), ...plan.subtitles.map((s) => s.key)];
  if (!parsedEvent.isMasterPlaylist && !needed.includes(eventKey)) return { kind: "ignore", reason: `not the highest-bandwidth variant of ${masterKey} nor one of its renditions` };
  const read = new Map<string, PlaylistObject>();
  const missing: string[] = [];
  for (const key of new Set(needed)) {
    const obj = key === eventKey ? event : await readPlaylist(s3, bucket, key, signal);
    if (!obj || !looksFinished(obj.text)) missing.push(key);
    else read.set(key, obj);
  }
  if (missing.length) {
    const since = new Date(Math.max(masterModified.getTime(), ...[...read.values()].map((o) => o.modified.getTime())));
    return { kind: "incomplete", sourcePrefix, masterKey, missing, since };
  }
  const source = mediaSource(sourcePrefix, plan.variantKey, read.get(plan.variantKey)!, masterKey);
  source.memberKeys = memberKeys(master, masterKey);
  source.audio = plan.audio.map((a) => (a.key ? { ...a, segments: mediaSegments(sourcePrefix, a.key, read.get(a.key)!, masterKey) } : a));
  source.subtitles = plan.subtitles.map((s) => ({ ...s, segments: mediaSegments(sourcePrefix, s.key, read.get(s.key)!, masterKey) }));
  const all = [...read.values()];
  source.playlistEtag = [...read.entries()].map(([k, o]) => (k === plan.variantKey ? o.etag : `${o.etag.slice(0, 8)}`)).join("+");
  source.playlistModified = new Date(Math.max(...all.map((o) => o.modified.getTime())));
  return { kind: "convert", source };
}

function parseMedia(key: string, obj: PlaylistObject, masterKey: string | undefined): MediaPlaylist {
  const media = parsePlaylist(obj.text, key);
  if (media.isMasterPlaylist) throw new HlsError("bad-master", `${masterKey} names ${key} as a media playlist, but it is a master playlist too: variants and renditions must be media playlists`);
  return media;
}

function mediaSegments(sourcePrefix: string, key: string, obj: PlaylistObject, masterKey: string | undefined): ResolvedSegment[] {
  return resolveSegments(key, parseMedia(key, obj, masterKey), sourcePrefix);
}

function mediaSource(sourcePrefix: string, key: string, obj: PlaylistObject, masterKey: string | undefined): Source {
  const media = parseMedia(key, obj, masterKey);
  const segments = resolveSegments(key, media, sourcePrefix);
  return {
    sourcePrefix,
    name: recordingName(sourcePrefix, masterKey ?? key),
    masterKey,
    playlistKey: key,
    playlistEtag: obj.etag,
    playlistModified: obj.modified,
    segments,
    seconds: totalDuration(segments),
    gaps: listedGaps(key, media, sourcePrefix),
    audio: [{ name: "", isDefault: true }],
    subtitles: [],
  };
}

/** A master playlist in the same folder or one folder up that names `mediaKey` (as a variant or a rendition). */
async function findMaster(s3: S3Client, bucket: string, mediaKey: string, signal?: AbortSignal): Promise<{ masterKey: string; master: MasterPlaylist; modified: Date } | undefined> {
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
      if (master.isMasterPlaylist && memberKeys(master, key).includes(mediaKey)) return { masterKey: key, master, modified: obj.modified };
    }
  }
  return undefined;
}

/** The .m3u8 objects directly in a folder (not below it). */
async function listPlaylistsIn(s3: S3Client, bucket: string, folder: string, signal?: AbortSignal): Promise<string[]> {
  const out: string[] = [];
  let token: string | undefined;
  do {
    const res = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: listPrefix(folder), Delimiter: "/", ContinuationToken: token }), { abortSignal: signal });
    for (const o of res.Contents ?? []) if (o.Key?.toLowerCase().endsWith(".m3u8")) out.push(o.Key);
    token = res.IsTruncated ? res.NextContinuationToken : undefined;
  } while (token);
  return out;
}

/**
 * Whether a master could still come for a media playlist that has none: false when nothing lies where a
 * master's other playlists would (the playlist's folder holds only the playlist and what it names, and
 * the folder above holds nothing but this folder), since a master's variants and renditions arrive with
 * media of their own. Uploaders may put a master after its variants; a folder uploaded alone has none.
 */
export async function masterMayFollow(s3: S3Client, bucket: string, source: Source, signal?: AbortSignal): Promise<boolean> {
  const own = new Set([source.playlistKey, ...sourceObjects(source)]);
  let token: string | undefined;
  do {
    const res = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: listPrefix(source.sourcePrefix), ContinuationToken: token }), { abortSignal: signal });
    if ((res.Contents ?? []).some((o) => !own.has(o.Key!))) return true;
    token = res.IsTruncated ? res.NextContinuationToken : undefined;
  } while (token);
  // A top-level playlist's master would sit beside it, in the folder just listed.
  if (!source.sourcePrefix) return false;
  const above = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: listPrefix(folderOf(source.sourcePrefix)), Delimiter: "/", MaxKeys: 2 }), { abortSignal: signal });
  return (above.Contents ?? []).length > 0 || (above.CommonPrefixes ?? []).some((p) => p.Prefix !== `${source.sourcePrefix}/`);
}

/** Every object the recording reads: the segments, init sections and keys of all its playlists. */
export function sourceObjects(source: Source): string[] {
  return [...new Set([...neededKeys(source.segments), ...source.audio.flatMap((a) => (a.segments ? neededKeys(a.segments) : [])), ...source.subtitles.flatMap((s) => neededKeys(s.segments))])];
}

export interface SegmentCheck {
  missing: string[];
  empty: string[];
  /** The newest segment's upload time: the wait for missing segments restarts while they keep arriving. */
  newest: Date;
  /** Total size of the objects present. */
  bytes: number;
}

/** Which of the recording's objects are not in the store yet, from one listing of its source prefix. */
export async function checkSegments(s3: S3Client, bucket: string, source: Source): Promise<SegmentCheck> {
  const present = new Map<string, { size: number; modified: Date }>();
  for await (const o of listObjects(s3, bucket, listPrefix(source.sourcePrefix))) present.set(o.key, { size: o.size, modified: o.lastModified });
  const check: SegmentCheck = { missing: [], empty: [], newest: new Date(0), bytes: 0 };
  for (const key of sourceObjects(source)) {
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

