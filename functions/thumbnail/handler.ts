import { setMaxListeners } from "node:events";
import { rm } from "node:fs/promises";
import { createJobDir, removeDeadJobDirs } from "../convert/workdir.js";
import { HeadObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { resolveFfmpeg } from "../../lib/ffmpeg.js";
import { recordingKeys } from "../../lib/layout.js";
import { isNotFound } from "../../lib/s3.js";
import { publishRecordingEvent } from "../../lib/events.js";
import { ensureRecordingFor, getRecordingBySourcePrefix, setPoster, setStoryboard, thumbnailFields } from "../../db/recordings.js";
import { PermanentError, TransientError, type Handler } from "../runtime/handler.js";
import { guessTimeline, lookupPlaylist, readEventPlaylist, type Timeline } from "./playlist.js";
import { makePoster, NoVideo, type FrameDeps, type Poster } from "./poster.js";
import { makeWaveform } from "./waveform.js";
import { makeStoryboard, TILE_BATCH } from "./storyboard.js";
import type { InitCache } from "./segment.js";

/** Object metadata naming the playlist version the images were made from: a repeated event is skipped. */
const VERSION_META = "playlist-version";
// Metadata travels in HTTP headers, which must be ASCII: keys with spaces or accents are escaped.
const metaValue = (version: string) => encodeURIComponent(version);

/** Where a recording's images go in the recordings bucket (lib/layout.ts): beside the MP4. */
export function thumbnailKeys(sourcePrefix: string, name = "") {
  const { poster, sprite, vtt } = recordingKeys(sourcePrefix, name);
  return { poster, sprite, vtt };
}

async function put(s3: S3Client, bucket: string, key: string, body: Uint8Array | string, contentType: string, version: string, signal: AbortSignal) {
  await s3.send(
    new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: contentType, Metadata: { [VERSION_META]: metaValue(version) } }),
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
  // A storyboard batch reads many segments at once, each listening for the job's abort.
  const signal = AbortSignal.any([ctx.signal]);
  setMaxListeners(4 * TILE_BATCH, signal);
  const began = performance.now();
  const ms = () => Math.round(performance.now() - began);
  let sourcePrefix: string | undefined;
  let dir: string | undefined;
  // The poster being made, cancellable when it turns out to be for the wrong playlist or not needed.
  let poster: { job: Promise<Poster>; cancel: AbortController } | undefined;
  const stopPoster = async () => {
    poster?.cancel.abort(new Error("poster not needed"));
    await poster?.job.catch(() => {});
    poster = undefined;
  };

  try {
    const read = await readEventPlaylist(s3, event.bucket, event.key, signal);
    if (read.kind === "ignored") {
      ctx.log.debug({ key: event.key, reason: read.reason, stage: "thumbnail" }, "playlist event ignored");
      return "ignored";
    }
    // A replica killed with -9 leaves its job folder: whichever replica of this host runs next removes it.
    await removeDeadJobDirs(config.functions.workDir, ctx.log, "thumbnail");
    dir = await createJobDir(config.functions.workDir, "thumbnail");
    const deps: FrameDeps = { s3, bucket: event.bucket, ffmpeg: resolveFfmpeg(config.ffmpeg).ffmpeg, dir, inits: new Map() as InitCache, log: ctx.log, signal };
    const startPoster = (t: Timeline) => {
      const cancel = new AbortController();
      const job = makePoster({ ...deps, signal: AbortSignal.any([signal, cancel.signal]) }, t.segments, t.duration);
      job.catch(() => {});
      poster = { job, cancel };
    };

    // Finding the folder may list it and read a master; meanwhile the poster starts from the event's own
    // playlist, which is what gets used whenever that playlist is a finished media playlist.
    const lookup = lookupPlaylist(s3, event.bucket, event.key, signal);
    lookup.catch(() => {});
    const guess = guessTimeline(event.key, read.text, read.etag);
    if (guess) startPoster(guess);
    const found = await lookup;
    if (found.kind === "ignored") {
      ctx.log.debug({ key: event.key, reason: found.reason, stage: "thumbnail" }, "playlist event ignored");
      return "ignored";
    }
    const lookupMs = ms();
    if (!guess || guess.version !== found.version) {
      await stopPoster();
      startPoster(found);
    }
    sourcePrefix = found.sourcePrefix;
    if (found.segments.length === 0) throw new PermanentError(`${found.mediaKey} lists no segments: upload a playlist that lists its segments`);
    const log = ctx.log.child({ recording: sourcePrefix, stage: "thumbnail" });
    deps.log = log;
    const keys = thumbnailKeys(sourcePrefix, found.name);
    const bucket = config.s3.recordingsBucket;

    const done = await thumbnailFields(db, sourcePrefix);
    if (done?.storyboardVttPath === keys.vtt && (await madeFor(s3, bucket, keys.vtt, signal)) === metaValue(found.version)) {
      log.info({ version: found.version }, "thumbnail already made for this playlist version");
      return "done";
    }
    await ensureRecordingFor(db, sourcePrefix, found.name);
    const made = await poster!.job.catch((err: unknown) => (err instanceof NoVideo ? undefined : Promise.reject(err)));
    if (!made) {
      // Audio only: a waveform is the poster, and there is no storyboard (nothing to preview).
      const wave = await makeWaveform(deps, found.resolved);
      await put(s3, bucket, keys.poster, wave.jpeg, "image/jpeg", found.version, signal);
      await setPoster(db, sourcePrefix, keys.poster);
      await publishRecordingEvent(ctx.events, "thumbnail.ready", await getRecordingBySourcePrefix(db, sourcePrefix));
      log.info({ key: keys.poster, bytes: wave.jpeg.length, lookupMs, ms: ms() }, "waveform poster uploaded (audio only, no storyboard)");
      return "done";
    }
    await put(s3, bucket, keys.poster, made.jpeg, "image/jpeg", found.version, signal);
    await setPoster(db, sourcePrefix, keys.poster);
    await publishRecordingEvent(ctx.events, "thumbnail.ready", await getRecordingBySourcePrefix(db, sourcePrefix));
    log.info({ key: keys.poster, segment: made.segment.key, at: made.at, yavg: made.yavg, bytes: made.jpeg.length, lookupMs, ms: ms() }, "poster uploaded");

    const spriteName = keys.sprite.slice(keys.sprite.lastIndexOf("/") + 1);
    const board = await makeStoryboard(deps, found.segments, found.duration, { maxTiles: config.functions.storyboardMaxTiles, aspect: made.width / made.height, spriteName });
    if (!board) {
      log.warn({ ms: ms() }, "no storyboard: no segment gave a frame");
      return "done";
    }
    await put(s3, bucket, keys.sprite, board.sprite, "image/jpeg", found.version, signal);
    await put(s3, bucket, keys.vtt, board.vtt, "text/vtt; charset=utf-8", found.version, signal);
    await setStoryboard(db, sourcePrefix, keys.sprite, keys.vtt);
    log.info({ key: keys.sprite, tiles: board.tiles.length, grid: `${board.columns}x${board.rows}`, ms: ms() }, "storyboard uploaded");
    return "done";
  } catch (err) {
    if (err instanceof PermanentError || err instanceof TransientError || signal.aborted) throw err;
    // S3, database or file system trouble: worth another delivery.
    throw new TransientError(`thumbnail for ${sourcePrefix ?? event.key} failed: ${(err as Error).message}; it will be retried`, { cause: err });
  } finally {
    await stopPoster();
    if (dir) await rm(dir, { recursive: true, force: true });
  }
};
