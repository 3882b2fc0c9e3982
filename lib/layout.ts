// The storage layout: the one place that knows where every object of a stream, a broadcast session
// and a recording lives. Writers, readers and deleters ask here; nobody else spells a key.
//
// hls-streams/<stream>/<session>/index.m3u8, seg00000.ts …        a broadcast's live HLS (its source prefix)
// hls-streams/<any folder>/…                                        a dropped HLS folder (its source prefix)
// recordings/<source prefix>/<name>.mp4, thumbnail.jpg,
//            storyboard.jpg, storyboard.vtt, <name>.<lang>.vtt    a recording and its side files
// recordings/clips/<clip id>/<name>.mp4, thumbnail.jpg, …              a clip: its own prefix, so deleting its parent
//                                                                    (everything under the parent's prefix) leaves it
// A playlist at the bucket's top level has no folder: its side files are named after it (`<name>.thumbnail.jpg`).

/** The live playlist the gateway writes in each session's folder. */
export const LIVE_PLAYLIST_NAME = "index.m3u8";

/** The source prefix (HLS folder, no trailing slash) of one broadcast session. */
export function sessionPrefix(stream: string, sessionId: string): string {
  return `${stream}/${sessionId}`;
}

/** The live playlist of a broadcast session. */
export function livePlaylistKey(stream: string, sessionId: string): string {
  return `${sessionPrefix(stream, sessionId)}/${LIVE_PLAYLIST_NAME}`;
}

/** A key inside a source prefix (the empty prefix is the bucket's top level). */
export function keyIn(sourcePrefix: string, name: string): string {
  return sourcePrefix ? `${sourcePrefix}/${name}` : name;
}

/** The listing prefix of everything under a source prefix ("" for the whole bucket). */
export function listPrefix(sourcePrefix: string): string {
  return sourcePrefix ? `${sourcePrefix}/` : "";
}

/** The folder of a key: everything before its last "/" ("" at the top level). */
export function folderOf(key: string): string {
  const i = key.lastIndexOf("/");
  return i < 0 ? "" : key.slice(0, i);
}

/** The recording's name (title, MP4 file name): the folder's last part, or the playlist's name at the top level. */
export function recordingName(sourcePrefix: string, playlistKey: string): string {
  if (sourcePrefix) return sourcePrefix.slice(sourcePrefix.lastIndexOf("/") + 1);
  const base = playlistKey.slice(playlistKey.lastIndexOf("/") + 1);
  return base.replace(/\.m3u8$/i, "") || "recording";
}

/** Where a recording's files go in the recordings bucket: in its source prefix, beside each other. */
export interface RecordingKeys {
  mp4: string;
  poster: string;
  sprite: string;
  vtt: string;
}

export function recordingKeys(sourcePrefix: string, name: string): RecordingKeys {
  const base = sourcePrefix ? `${sourcePrefix}/` : `${name}.`;
  return {
    mp4: sourcePrefix ? `${sourcePrefix}/${name}.mp4` : `${name}.mp4`,
    poster: `${base}thumbnail.jpg`,
    sprite: `${base}storyboard.jpg`,
    vtt: `${base}storyboard.vtt`,
  };
}

const LIVE_HEAD_SUFFIX = ".live-head";

/**
 * The live assembly's held-back first media bytes (and their sample tables), kept beside the MP4 until its
 * finish writes them into part 1; deleted with the assembly.
 */
export function liveHeadKey(mp4Key: string): string {
  return `${mp4Key}${LIVE_HEAD_SUFFIX}`;
}

/** The MP4 key a live assembly's head object belongs to, or undefined when `key` is not a head object. */
export function mp4OfLiveHead(key: string): string | undefined {
  return key.endsWith(LIVE_HEAD_SUFFIX) && key.length > LIVE_HEAD_SUFFIX.length ? key.slice(0, -LIVE_HEAD_SUFFIX.length) : undefined;
}

/** A subtitle side-car beside the MP4: `<name>.<index>.<language>.vtt`. */
export function subtitleKey(sourcePrefix: string, name: string, index: number, language: string | undefined): string {
  const lang = (language ?? "und").replace(/[^A-Za-z0-9-]/g, "_") || "und";
  return keyIn(sourcePrefix, `${name}.${index}.${lang}.vtt`);
}

/** The object keys a recording row names, for deleting "every object of a recording". */
export function keysOfRecording(row: {
  filePath?: string | null;
  thumbnailPath?: string | null;
  storyboardPath?: string | null;
  storyboardVttPath?: string | null;
  extraKeys?: readonly string[] | null;
}): string[] {
  return [row.filePath, row.thumbnailPath, row.storyboardPath, row.storyboardVttPath, ...(row.extraKeys ?? [])].filter((k): k is string => Boolean(k));
}

/**
 * The folder of a recording's ABR ladder (CMAF segments, media playlists, master.m3u8, manifest.mpd):
 * `<source prefix>/abr/`, or `<name>.abr/` for a playlist at the bucket's top level. Ends with "/".
 */
export function abrPrefix(sourcePrefix: string, name: string): string {
  return sourcePrefix ? `${sourcePrefix}/abr/` : `${name}.abr/`;
}

/** The ABR master playlist and DASH manifest of a recording. */
export function abrKeys(sourcePrefix: string, name: string): { prefix: string; master: string; dash: string } {
  const prefix = abrPrefix(sourcePrefix, name);
  return { prefix, master: `${prefix}master.m3u8`, dash: `${prefix}manifest.mpd` };
}

/** A clip's source prefix: its own folder in the recordings bucket (never under its parent's, which its deletion empties). */
export function clipPrefix(clipId: string): string {
  return `clips/${clipId}`;
}

/** A clip's MP4, poster and storyboard, named like a recording's. */
export function clipKeys(clipId: string): RecordingKeys {
  return recordingKeys(clipPrefix(clipId), "clip");
}

/** Whether a recording's folder in the recordings bucket holds clips' folders too (a dropped folder named like the clips' root). */
export function holdsClips(sourcePrefix: string): boolean {
  return sourcePrefix !== "" && clipPrefix("x").startsWith(listPrefix(sourcePrefix));
}
