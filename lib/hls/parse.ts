import HLS from "hls-parser";
import type { types } from "hls-parser";
import { HlsError } from "./error.js";

export type MediaPlaylist = types.MediaPlaylist;
export type MasterPlaylist = types.MasterPlaylist;
export type Rendition = types.Rendition;
export type Variant = types.Variant;

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

/**
 * Parses leniently (real playlists bend the spec) and quietly. hls-parser keeps its options in one
 * module-wide object shared with every other user of the library, so they are set for this call only
 * and put back as they were: importing or calling this module changes nothing for anyone else.
 */
function parseQuietly(text: string): MasterPlaylist | MediaPlaylist {
  const before = HLS.getOptions();
  HLS.setOptions({ silent: true, strictMode: false });
  try {
    return HLS.parse(text) as MasterPlaylist | MediaPlaylist;
  } finally {
    HLS.setOptions({ silent: before.silent, strictMode: before.strictMode });
  }
}

export function parsePlaylist(text: string, key: string): MasterPlaylist | MediaPlaylist {
  if (!isPlaylistText(text)) {
    throw new HlsError("not-playlist", `${key} is not an HLS playlist (it does not start with #EXTM3U): upload a valid .m3u8 file to this folder`);
  }
  try {
    return parseQuietly(text.replace(/^\uFEFF/, ""));
  } catch (err) {
    throw new HlsError("not-playlist", `${key} could not be parsed as an HLS playlist (${(err as Error).message}): fix the playlist and upload it again`);
  }
}

/** Writes a parsed playlist back as text (the API rewrites URIs in place). */
export function stringifyPlaylist(playlist: MasterPlaylist | MediaPlaylist): string {
  return HLS.stringify(playlist);
}
