import { randomUUID } from "node:crypto";
import { setMaxListeners } from "node:events";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { HeadObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { resolveFfmpeg } from "../../lib/ffmpeg.js";
import { isNotFound } from "../../lib/s3.js";
import { ensureRecordingForFolder, setPoster, setStoryboard, thumbnailFields } from "../../db/thumbnails.js";
import { isObjectCreated, isPlaylistKey } from "../events/decode.js";
import { PermanentError, TransientError, type Handler } from "../runtime/handler.js";
import { lookupPlaylist, PlaylistError } from "./playlist.js";
import { makePoster, type FrameDeps } from "./poster.js";
import { makeStoryboard, TILE_BATCH } from "./storyboard.js";
import type { InitCache } from "./segment.js";

export const POSTER_NAME = "thumbnail.jpg";
export const SPRITE_NAME = "storyboard.jpg";
export const VTT_NAME = "storyboard.vtt";
/** Object metadata naming the playlist version the images were made from: a repeated event is skipped. */
const VERSION_META = "playlist-version";

/** Where a recording's images go in the recordings bucket: beside its MP4, in the same folder path. */
export function thumbnailKeys(folder: string) {
  return { poster: `${folder}/${POSTER_NAME}`, sprite: `${folder}/${SPRITE_NAME}`, vtt: `${folder}/${VTT_NAME}` };
}

async function put(s3: S3Client, bucket: string, key: string, body: Uint8Array | string, contentType: string, version: string, signal: AbortSignal) {
  await s3.send(
    new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: contentType, Metadata: { [VERSION_META]: version } }),
    { abortSignal: signal },
  );
}

/** The VTT is written last: when it carries this version, the whole set (and the row) was done for it. */
async function madeFor(s3: S3Client, bucket: string, key: string, signal: AbortSignal): Promise<string | undefined> {
  try {
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
    return head.Metadata?.[VERSION_META];
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/**
 * Poster and storyboard for a finished HLS folder. Triggered by the same playlist events as convert
 * and independent of it: it creates the recording row if convert has not yet, and writes only the
 * thumbnail columns, so a thumbnail failure never changes a recording's status.
 */
export const handleThumbnail: Handler = async (event, ctx) => {
  const { s3, db, config } = ctx;
  if (!isObjectCreated(event) || !isPlaylistKey(event.key) || event.bucket !== config.s3.hlsBucket) return "ignored";
  // A storyboard batch reads many segments at once, each listening for the job's abort.
  const signal = AbortSignal.any([ctx.signal]);
  setMaxListeners(4 * TILE_BATCH, signal);
  const began = performance.now();
  const ms = () => Math.round(performance.now() - began);
  let folder: string | undefined;
  let dir: string | undefined;
  try {
    const found = await lookupPlaylist(s3, event.bucket, event.key, signal);
    if (found.kind === "ignored") {
      ctx.log.debug({ key: event.key, reason: found.reason, stage: "thumbnail" }, "playlist event ignored");
      return "ignored";
    }
    const lookupMs = ms();
    folder = found.folder;
    if (folder === "") throw new PlaylistError(`playlist ${event.key} is at the top of the bucket; put each recording in its own folder`);
    if (found.segments.length === 0) throw new PlaylistError(`playlist ${found.mediaKey} lists no segments; upload a playlist with at least one #EXTINF segment`);
    const log = ctx.log.child({ recording: folder, stage: "thumbnail" });
    const keys = thumbnailKeys(folder);
    const bucket = config.s3.recordingsBucket;

    dir = join(config.functions.workDir, "thumbnail", randomUUID());
    await mkdir(dir, { recursive: true });
    const inits: InitCache = new Map();
    const deps: FrameDeps = { s3, bucket: event.bucket, ffmpeg: resolveFfmpeg(config.ffmpeg).ffmpeg, dir, inits, log, signal };

    // The poster is started at once; meanwhile the database says whether this version was already made.
    const skip = new AbortController();
    const framesFrom = ms();
    const posterJob = makePoster({ ...deps, signal: AbortSignal.any([signal, skip.signal]) }, found.segments, found.duration);
    posterJob.catch(() => {});
    const done = await thumbnailFields(db, folder);
    if (done?.storyboardVttPath && (await madeFor(s3, bucket, keys.vtt, signal)) === found.version) {
      skip.abort(new Error("already made"));
      await posterJob.catch(() => {});
      log.info({ version: found.version }, "thumbnail already made for this playlist version");
      return "done";
    }
    await ensureRecordingForFolder(db, folder);
    const poster = await posterJob;
    const frameMs = ms() - framesFrom;
    await put(s3, bucket, keys.poster, poster.jpeg, "image/jpeg", found.version, signal);
    await setPoster(db, folder, keys.poster);
    log.info({ key: keys.poster, segment: poster.segment.key, at: poster.at, yavg: poster.yavg, bytes: poster.jpeg.length, lookupMs, frameMs, ms: ms() }, "poster uploaded");

    const aspect = poster.width / poster.height;
    const board = await makeStoryboard(deps, found.segments, found.duration, { maxTiles: config.functions.storyboardMaxTiles, aspect, spriteName: SPRITE_NAME });
    if (!board) {
      log.warn({ ms: ms() }, "no storyboard: no segment gave a frame");
      return "done";
    }
    await put(s3, bucket, keys.sprite, board.sprite, "image/jpeg", found.version, signal);
    await put(s3, bucket, keys.vtt, board.vtt, "text/vtt; charset=utf-8", found.version, signal);
    await setStoryboard(db, folder, keys.sprite, keys.vtt);
    log.info({ key: keys.sprite, tiles: board.tiles.length, grid: `${board.columns}x${board.rows}`, ms: ms() }, "storyboard uploaded");
    return "done";
  } catch (err) {
    if (err instanceof PermanentError || err instanceof TransientError || signal.aborted) throw err;
    // S3, database or file system trouble: worth another delivery.
    throw new TransientError(`thumbnail for ${folder ?? event.key} failed: ${(err as Error).message}; it will be retried`, { cause: err });
  } finally {
    if (dir) await rm(dir, { recursive: true, force: true });
  }
};
