import HLS from "hls-parser";
import { ApiError } from "./errors.js";
import type { Presign } from "./links.js";

// Stands for the bucket when resolving a playlist's relative URIs with the URL rules players use.
const BUCKET_ORIGIN = "https://bucket.invalid";

export interface PlaylistSource {
  bucket: string;
  /** The playlist's object key. */
  key: string;
  /** The folder every segment must sit in (a recording's source folder, a broadcast's session folder). */
  folder: string;
}

export interface RewriteOptions {
  /** Close the playlist as VOD (a finished recording), or keep it as published (a broadcast now live). */
  vod: boolean;
  /** Where a master playlist's variant, given as a key in the folder, is served by the API. */
  variantUrl: (key: string) => string;
}

/**
 * The object key a URI in the playlist points to, or undefined for an absolute URL elsewhere
 * (left untouched). A relative URI that climbs out of the folder is refused: it would expose other objects.
 */
export function resolveKey(uri: string, src: PlaylistSource): string | undefined {
  const url = new URL(uri, `${BUCKET_ORIGIN}/${src.key.split("/").map(encodeURIComponent).join("/")}`);
  if (url.origin !== BUCKET_ORIGIN) return undefined;
  const key = url.pathname.slice(1).split("/").map(decodeURIComponent).join("/");
  const inside = src.folder === "" ? !key.startsWith("/") : key.startsWith(`${src.folder}/`);
  if (!inside) throw new ApiError("bad_source", `the playlist ${src.key} names ${uri}, which is outside its folder ${src.folder}/; fix the playlist's URIs to stay in the folder`);
  return key;
}

export function parsePlaylist(text: string, key: string) {
  try {
    return HLS.parse(text);
  } catch (err) {
    throw new ApiError("bad_source", `the playlist ${key} could not be read as HLS (${(err as Error).message}); re-upload a valid playlist`);
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
    return HLS.stringify(playlist);
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
  return HLS.stringify(playlist);
}
