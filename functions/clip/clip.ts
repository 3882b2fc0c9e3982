import { createReadStream } from "node:fs";
import { mkdir, rm, stat } from "node:fs/promises";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { GetObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { writeFile, readFile } from "node:fs/promises";
import type { Config } from "../../lib/config.js";
import type { Logger } from "../../lib/log.js";
import { hlsInputOptions, resolveFfmpeg } from "../../lib/ffmpeg.js";
import { writeLocalPlaylist, type ResolvedSegment } from "../../lib/hls/index.js";
import { clipKeys } from "../../lib/layout.js";
import type { Db } from "../../db/client.js";
import { markClipFailed, markClipProgress, markClipReady } from "../../db/recordings.js";
import { getRecording } from "../../db/catalog.js";
import { recordingData, type EventPublisher } from "../../lib/events.js";
import { grabPosterFrame } from "../thumbnail/frames.js";
import { makeStoryboard } from "../thumbnail/storyboard.js";
import type { SegmentRef } from "../thumbnail/playlist.js";
import { cutAtKeyframes, cutPrecisely, HLS_INPUT_OPTIONS, probeFile, type ClipInput } from "./cut.js";

// Makes one clip: cut the range from its source, store the MP4 and a poster under the clip's own prefix,
// and mark the row ready (or failed, with the reason). The source is the parent's MP4 for a ready
// recording, or the covering HLS segments for a broadcast still live.

/** A segment of the parent's playlist with its place on the parent's timeline. */
export type TimedSegment = ResolvedSegment & { start: number };

export type ClipSource =
  | { kind: "mp4"; bucket: string; key: string; videoCodec: string | null }
  | { kind: "hls"; bucket: string; segments: TimedSegment[] };

export interface ClipJob {
  clipId: string;
  source: ClipSource;
  start: number;
  end: number;
  precise: boolean;
  /** The parent's source segments covering the range, when there are any: the storyboard is made from them. */
  storyboard?: { bucket: string; segments: TimedSegment[] };
}

export interface ClipDeps {
  s3: S3Client;
  db: Db;
  config: Config;
  log: Logger;
  signal?: AbortSignal;
  /** Announces clip.ready / clip.failed once the row says so. */
  events?: EventPublisher;
}

/** Signed for the endpoint this process reaches (FFmpeg reads it from here, not a browser). */
async function internalUrl(s3: S3Client, bucket: string, key: string): Promise<string> {
  return getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: 3600 });
}

async function inputFor(deps: ClipDeps, source: ClipSource, dir: string, ffmpeg: string): Promise<ClipInput> {
  if (source.kind === "mp4") return { url: await internalUrl(deps.s3, source.bucket, source.key), options: [], timelineStart: 0 };
  const urls = new Map<string, string>();
  const keys = new Set(source.segments.flatMap((s) => [s.key, s.map?.key, s.aes?.key].filter((k): k is string => Boolean(k))));
  await Promise.all([...keys].map(async (k) => urls.set(k, await internalUrl(deps.s3, source.bucket, k))));
  const path = join(dir, "source.m3u8");
  await writeFile(path, writeLocalPlaylist(source.segments, (k) => urls.get(k)!));
  return { url: path, options: HLS_INPUT_OPTIONS(await hlsInputOptions({ ffmpeg })), timelineStart: source.segments[0]!.start };
}

/**
 * The clip's storyboard, made by the thumbnail function's code from the source segments that cover it, placed
 * on the clip's timeline. None (logged) when the source segments are gone or give no frame: the clip plays anyway.
 */
async function clipStoryboard(deps: ClipDeps, job: ClipJob, cut: { start: number; end: number }, facts: { duration: number; width: number | null; height: number | null }, dir: string, ffmpeg: string, log: Logger) {
  const segments = job.storyboard?.segments ?? [];
  if (segments.length === 0 || !facts.width || !facts.height) return undefined;
  const refs: SegmentRef[] = segments.map((s) => ({
    key: s.key,
    start: Math.max(0, s.start - cut.start),
    duration: s.duration,
    range: s.byterange,
    init: s.map ? { key: s.map.key, range: s.map.byterange } : undefined,
    aes: s.aes,
  }));
  const tiles = join(dir, "tiles");
  await mkdir(tiles, { recursive: true });
  try {
    return await makeStoryboard(
      { s3: deps.s3, bucket: job.storyboard!.bucket, ffmpeg, dir: tiles, inits: new Map(), log, signal: deps.signal },
      refs,
      facts.duration,
      { maxTiles: deps.config.functions.storyboardMaxTiles, aspect: facts.width / facts.height, spriteName: "storyboard.jpg" },
    );
  } catch (err) {
    log.warn({ err }, "no storyboard for the clip");
    return undefined;
  }
}

/**
 * Cuts and stores the clip, and marks its row ready (once: a row no longer processing is left as it is).
 * Throws what went wrong: the clip function retries the job and, when it gives up, calls failClip.
 * Every key is the clip's own (clipKeys), so a cut run again after a replica died overwrites, never adds.
 */
export async function makeClip(deps: ClipDeps, job: ClipJob): Promise<void> {
  const { s3, db, config } = deps;
  const log = deps.log.child({ recording: job.clipId, stage: "clip" });
  const began = performance.now();
  const tools = resolveFfmpeg(config.ffmpeg);
  const dir = join(config.functions.workDir, "clip", randomUUID());
  try {
    log.info({ start: job.start, end: job.end, precise: job.precise, source: job.source.kind }, "cutting clip");
    await mkdir(dir, { recursive: true });
    const input = await inputFor(deps, job.source, dir, tools.ffmpeg);
    const out = join(dir, "clip.mp4");
    const cut = job.precise
      ? await cutPrecisely(tools, input, job.start, job.end, dir, out, { videoCodec: job.source.kind === "mp4" ? job.source.videoCodec : "h264" }, deps.signal)
      : await cutAtKeyframes(tools, input, job.start, job.end, out, deps.signal);
    const cutMs = Math.round(performance.now() - began);
    await markClipProgress(db, job.clipId, 0.7);
    const facts = await probeFile(tools, out, deps.signal);
    const keys = clipKeys(job.clipId);
    const bucket = config.s3.recordingsBucket;
    const size = (await stat(out)).size;
    const upload = new Upload({ client: s3, params: { Bucket: bucket, Key: keys.mp4, Body: createReadStream(out), ContentType: "video/mp4" } });
    // The poster is taken from the clip itself, the way the thumbnail function takes one from a segment.
    const posterPath = join(dir, "poster.jpg");
    const poster = grabPosterFrame(tools.ffmpeg, out, posterPath, Math.min(1, facts.duration / 10), deps.signal).catch(() => ({ ok: false as const, why: "poster failed" }));
    await upload.done();
    const frame = await poster;
    let thumbnailPath: string | null = null;
    if (frame.ok) {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: keys.poster, Body: await readFile(posterPath), ContentType: "image/jpeg" }));
      thumbnailPath = keys.poster;
    }
    const board = await clipStoryboard(deps, job, cut, facts, dir, tools.ffmpeg, log);
    if (board) {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: keys.sprite, Body: board.sprite, ContentType: "image/jpeg" }));
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: keys.vtt, Body: board.vtt, ContentType: "text/vtt; charset=utf-8" }));
    }
    const ok = await markClipReady(db, job.clipId, {
      filePath: keys.mp4,
      fileSizeBytes: size,
      durationSeconds: facts.duration,
      width: facts.width,
      height: facts.height,
      videoCodec: facts.videoCodec,
      audioCodec: facts.audioCodec,
      clipStart: cut.start,
      clipEnd: cut.end,
      thumbnailPath,
      storyboardPath: board ? keys.sprite : null,
      storyboardVttPath: board ? keys.vtt : null,
    });
    log.info({ start: cut.start, end: cut.end, precise: job.precise, source: job.source.kind, bytes: size, cutMs, ms: Math.round(performance.now() - began), stored: ok }, "clip ready");
    if (ok) await announce(deps, "clip.ready", job.clipId);
  } catch (err) {
    log.warn({ err: (err as Error).message, ms: Math.round(performance.now() - began) }, "clip cut failed");
    throw err;
  } finally {
    await rm(dir, { recursive: true, force: true }).catch(() => {});
  }
}

/** Marks a clip that will not be cut failed, with the reason and what to do, and announces it (once). */
export async function failClip(deps: Pick<ClipDeps, "db" | "events">, clipId: string, reason: string): Promise<void> {
  const changed = await markClipFailed(deps.db, clipId, `the clip could not be cut: ${reason}; try again, or pick another range`);
  if (changed) await announce(deps, "clip.failed", clipId);
}

/** The event carries the clip as a recording, read back after the change is committed. */
async function announce(deps: Pick<ClipDeps, "db" | "events">, type: "clip.ready" | "clip.failed", id: string): Promise<void> {
  if (!deps.events) return;
  const row = await getRecording(deps.db, id);
  if (row) await deps.events.publish(type, { ...recordingData(row), kind: "clip", parentId: row.parentId, clipStart: row.clipStart, clipEnd: row.clipEnd });
}
