import { HlsError, parsePlaylist as parseHls, resolveUri, stringifyPlaylist } from "../../lib/hls/index.js";
import { HttpError } from "../../lib/http/errors.js";
import type { Presign } from "./links.js";

export interface PlaylistSource {
  bucket: string;
  /** The playlist's object key. */
  key: string;
  /** The source prefix every segment must sit in (a recording's HLS folder, a broadcast's session folder). */
  sourcePrefix: string;
}

export interface RewriteOptions {
  /** Close the playlist as VOD (a finished recording), or keep it as published (a broadcast now live). */
  vod: boolean;
  /** Where a master playlist's variant, given as a key in the folder, is served by the API. */
  variantUrl: (key: string) => string;
}

/**
 * The object key a URI in the playlist points to, or undefined for an absolute URL elsewhere
 * (left untouched). Relative URIs follow the HLS rules convert uses (lib/hls), so the API
 * never signs a key convert would refuse: nothing outside the folder is exposed.
 */
export function resolveKey(uri: string, src: PlaylistSource): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:/i.test(uri) || uri.startsWith("//")) return undefined;
  try {
    return resolveUri(src.key, uri, src.sourcePrefix, /\.m3u8$/i.test(uri.split("?")[0]!) ? "playlist" : "segment");
  } catch (err) {
    throw new HttpError("bad_source", `${(err as Error).message}; fix the playlist's URIs to stay in the folder`);
  }
}

export function parsePlaylist(text: string, key: string) {
  try {
    return parseHls(text, key);
  } catch (err) {
    if (err instanceof HlsError) throw new HttpError("bad_source", `the playlist ${key} could not be read as HLS (${err.message})`);
    throw err;
  }
}

/** The playlist with every segment, init section and key turned into a presigned link to its object. */
export async function rewritePlaylist(text: string, src: PlaylistSource, presign: Presign, opts: RewriteOptions): Promise<string> {
  const playlist = parsePlaylist(text, src.key);
  const sign = async (uri: string) => {
    const key = resolveKey(uri, src);
    return key === undefined ? uri : presign(src.bucket, key);
  };

  if (playlist.isMasterPlaylist) {
    const toApi = (uri: string) => {
      const key = resolveKey(uri, src);
      return key === undefined ? uri : opts.variantUrl(key);
    };
    for (const variant of playlist.variants) {
      variant.uri = toApi(variant.uri);
      for (const r of [...variant.audio, ...variant.video, ...variant.subtitles]) if (r.uri) r.uri = toApi(r.uri);
    }
    return stringifyPlaylist(playlist);
  }

  await Promise.all(
    playlist.segments.map(async (segment) => {
      segment.uri = await sign(segment.uri);
      if (segment.map) segment.map.uri = await sign(segment.map.uri);
      // skd:// and data: key URIs are not objects in the bucket.
      if (segment.key?.uri && !/^(skd|data):/i.test(segment.key.uri)) segment.key.uri = await sign(segment.key.uri);
    }),
  );
  if (opts.vod) {
    playlist.playlistType = "VOD";
    playlist.endlist = true;
  }
  return stringifyPlaylist(playlist);
}
