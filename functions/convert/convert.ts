import { createReadStream } from "node:fs";
import { rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { DeleteObjectsCommand, GetObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { resolveFfmpeg } from "../../lib/ffmpeg.js";
import { claimRecording, deleteVariantRecordings, markFailed, markProgress, markReady, recordingExists, recordingsCoveringPlaylist, releaseClaim } from "../../db/recordings.js";
import { PermanentError, TransientError, type GiveUp, type Handler, type HandlerContext } from "../runtime/handler.js";
import { folderOf, recordingName, writeLocalPlaylist } from "./playlist.js";
import { checkSegments, resolveSource, type Source } from "./source.js";
import { codecArgs, probeInput, probeOutput, remux, type Tools } from "./remux.js";
import { createJobDir, recordChild, removeDeadJobDirs } from "./workdir.js";
import { startStreamingUpload } from "./faststart.js";

// convert: a finished HLS folder → one faststart MP4 in the recordings bucket and its row, ready.
// Stages: resolve the playlist → claim the folder → wait for segments → probe → remux → upload → record.

/** What giveUp needs to know about a job that got as far as resolving or claiming its folder. */
export interface ConvertState {
  sourcePrefix: string;
  name: string;
  playlistKey: string;
  claimToken?: string;
}

const PRESIGN_SECONDS = 12 * 3600;
const UPLOAD_PART_BYTES = 16 * 1024 * 1024;
const MAX_LEASE_MS = 30_000;
const STREAMING_LIMIT_BYTES = 3.5e9;
/** Progress split: remuxing is most of the work, the upload the rest. */
const REMUX_SHARE = 0.85;

export const convert: Handler<ConvertState> = async (event, ctx, job) => {
  const { s3, db, config } = ctx;
  const bucket = config.s3.hlsBucket;
  const resolution = await resolveSource(s3, bucket, event.key, ctx.signal);
  if (resolution.kind === "ignore") {
    ctx.log.debug({ reason: resolution.reason }, "nothing to convert");
    return "ignored";
  }
  const src = resolution.source;
  const log = ctx.log.child({ folder: src.folder, playlist: src.playlistKey });
  const state: ConvertState = { sourcePrefix: src.folder, name: src.name, playlistKey: src.playlistKey };
  job.state = state;

  // A lease shorter than NATS's redelivery: when a replica dies, its lease has ended by the time its message comes back.
  const leaseMs = Math.min(MAX_LEASE_MS, Math.floor((ctx.redeliverAfterMs ?? 60_000) / 2));
  const tJob = performance.now();
  const claimToken = `${ctx.worker}/${Math.random().toString(36).slice(2, 10)}`;
  const claim = await claimRecording(db, { sourcePrefix: src.folder, playlistKey: src.playlistKey, playlistEtag: src.playlistEtag, streamId: src.folder, title: src.name, claimToken, leaseMs });
  if (claim.kind === "ready") {
    log.info("already converted; duplicate event");
    return "ignored";
  }
  if (claim.kind === "busy") {
    throw new TransientError(`${src.folder} is being converted by another job`, { retryAfterMs: Math.min(MAX_LEASE_MS, claim.retryAfterMs + 1000) });
  }
  state.claimToken = claimToken;
  const recordingId = claim.recording.id;
  log.info({ recording: recordingId, segments: src.segments.length, seconds: src.seconds, stage: "claimed" }, "converting");

  // Stop at once when the replica shuts down or when the lease is lost to another job.
  const lost = new AbortController();
  const signal = AbortSignal.any([ctx.signal, lost.signal]);
  let progress = 0;
  let written = -1;
  let lastWrite = 0;
  const tick = async () => {
    const due = Date.now() - lastWrite >= leaseMs / 3;
    if (progress === written && !due) return;
    const p = progress;
    lastWrite = Date.now();
    try {
      if (await markProgress(db, recordingId, claimToken, leaseMs, p)) written = p;
      else lost.abort(new TransientError(`${src.folder} was taken over by another job`));
    } catch (err) {
      log.warn({ err: (err as Error).message }, "could not record progress");
    }
  };
  const ticker = setInterval(() => void tick(), 1000);
  const report = (p: number) => {
    progress = Math.round(p * 1000) / 1000;
    void ctx.progress(p);
  };

  let dir: string | undefined;
  try {
    await removeDeadJobDirs(config.functions.workDir, log);
    dir = await createJobDir(config.functions.workDir);
    const jobDir = dir;
    const segmentBytes = await waitForSegments(s3, bucket, src, ctx, signal, log);
    log.info({ stage: "segments", ms: Math.round(performance.now() - tJob) }, "segments present");
    const tools = resolveFfmpeg(config.ffmpeg);
    const keys = [...new Set(src.segments.flatMap((s) => (s.map ? [s.map.key, s.key] : [s.key])))];
    const urls = new Map(await Promise.all(keys.map(async (k) => [k, await presign(s3, bucket, k)] as const)));
    const input = join(dir, "input.m3u8");
    await writeFile(input, writeLocalPlaylist(src.segments, (k) => urls.get(k)!));
    const describe = describer(urls, src.folder);

    const t0 = performance.now();
    const streams = await probeInput(tools, input, describe, signal);
    const { reencodes } = codecArgs(streams);
    if (reencodes.length) log.info({ reencodes }, "codecs MP4 cannot hold as they are: re-encoding them");
    const output = join(dir, "output.mp4");
    const fileKey = src.folder ? `${src.folder}/${src.name}.mp4` : `${src.name}.mp4`;
    const recBucket = config.s3.recordingsBucket;
    const fragmented = src.segments.some((s) => s.map);
    const targetSeconds = Math.max(...src.segments.map((s) => s.duration));
    // Past 32-bit chunk offsets moving moov needs co64 boxes: leave such (rare, > 3.5 GB) files to FFmpeg's own faststart.
    const streaming = segmentBytes < STREAMING_LIMIT_BYTES;
    let size: number;
    let facts: Awaited<ReturnType<typeof probeOutput>>;
    if (streaming) {
      const streamed = startStreamingUpload(s3, recBucket, fileKey, output, signal, () => {});
      try {
        await remux({ tools, input, output, streams, fragmented, targetSeconds, faststart: false, seconds: src.seconds, signal, describe, onStart: (pid) => recordChild(jobDir, pid), onProgress: (f) => report(f * 0.97) });
        facts = await probeOutput(tools, output, signal);
        checkDuration(src, facts.duration);
      } catch (err) {
        await streamed.abort();
        throw err;
      }
      size = await streamed.finish();
    } else {
      await remux({ tools, input, output, streams, fragmented, targetSeconds, faststart: true, seconds: src.seconds, signal, describe, onStart: (pid) => recordChild(jobDir, pid), onProgress: (f) => report(f * REMUX_SHARE) });
      facts = await probeOutput(tools, output, signal);
      checkDuration(src, facts.duration);
      size = (await stat(output)).size;
      await upload(s3, recBucket, fileKey, output, size, signal, (f) => report(REMUX_SHARE + f * (1 - REMUX_SHARE)));
    }
    const convertMs = Math.round(performance.now() - t0);
    clearInterval(ticker);
    const ok = await markReady(db, recordingId, claimToken, {
      filePath: fileKey,
      fileSizeBytes: size,
      durationSeconds: facts.duration,
      width: facts.width,
      height: facts.height,
      videoCodec: facts.videoCodec,
      audioCodec: facts.audioCodec,
    });
    if (!ok) {
      // The row is gone when a master claimed this variant's folder meanwhile: the MP4 belongs to nobody.
      if (!(await recordingExists(db, recordingId))) {
        await deleteObjects(s3, recBucket, [fileKey]);
        log.info({ recording: recordingId }, "a master playlist took over this folder; dropped the variant's MP4");
        return "done";
      }
      // Losing the lease this late means another job converted the same folder to the same key: its row stands.
      log.warn({ recording: recordingId }, "lease lost before marking ready; the other job's result stands");
      return "done";
    }
    if (src.variantKeys) await dropVariantRecordings(s3, db, recBucket, src, log);
    log.info({ recording: recordingId, file: fileKey, size, duration: facts.duration, streaming, convertMs, stage: "ready" }, "recording ready");
    return "done";
  } catch (err) {
    if (ctx.signal.aborted) await releaseClaim(db, recordingId, claimToken).catch(() => {});
    if (lost.signal.aborted) throw lost.signal.reason;
    throw err;
  } finally {
    clearInterval(ticker);
    if (dir) await rm(dir, { recursive: true, force: true });
  }
};

/** Variants converted on their own before their master landed (any upload order) give way to the master's recording. */
async function dropVariantRecordings(s3: S3Client, db: HandlerContext["db"], recBucket: string, src: Source, log: HandlerContext["log"]): Promise<void> {
  const removed = await deleteVariantRecordings(db, src.folder, (src.variantKeys ?? []).map((k) => ({ folder: folderOf(k), playlistKey: k })));
  if (removed.length === 0) return;
  const keys = removed.flatMap((r) => [r.filePath, r.thumbnailPath, r.storyboardPath, r.storyboardVttPath]).filter((k): k is string => Boolean(k));
  await deleteObjects(s3, recBucket, keys);
  log.info({ removed: removed.map((r) => r.sourcePrefix) }, "removed recordings of variants converted before their master landed");
}

async function deleteObjects(s3: S3Client, bucket: string, keys: string[]): Promise<void> {
  if (keys.length) await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true } }));
}

/** Records why an event was given up on the folder's recording (creating the row if the job never claimed one). */
export const giveUpConvert: GiveUp<ConvertState> = async (event, reason, ctx, job) => {
  const state = job.state;
  let folder = state?.sourcePrefix;
  if (folder === undefined) {
    // Failed before its folder was known: the deepest recording covering the playlist, else its own folder.
    const covering = await recordingsCoveringPlaylist(ctx.db, event.key);
    folder = covering.map((r) => r.sourcePrefix).sort((a, b) => b.length - a.length)[0] ?? folderOf(event.key);
  }
  const written = await markFailed(ctx.db, {
    sourcePrefix: folder,
    playlistKey: state?.playlistKey ?? event.key,
    error: reason,
    claimToken: state?.claimToken,
    streamId: folder,
    title: state?.name ?? recordingName(folder, event.key),
  });
  ctx.log.warn({ folder, reason, recorded: written, stage: "failed" }, written ? "recording failed" : "failure not recorded: the folder is held or finished by another playlist");
};

/** Before the first conversion: clear temp folders a killed replica of this host left behind. */
export async function prepareConvert({ config, log }: { config: HandlerContext["config"]; log: HandlerContext["log"] }): Promise<void> {
  await removeDeadJobDirs(config.functions.workDir, log);
}

/**
 * Folders arrive in any order: wait, with backoff, for segments the playlist names but the store
 * does not have yet. The wait restarts whenever a segment arrives, and ends SEGMENT_WAIT_SECONDS after
 * the last one (or the playlist) did.
 */
async function waitForSegments(s3: S3Client, bucket: string, src: Source, ctx: HandlerContext, signal: AbortSignal, log: HandlerContext["log"]): Promise<number> {
  let delay = 500;
  for (;;) {
    const check = await checkSegments(s3, bucket, src);
    if (check.empty.length) {
      throw new PermanentError(`${check.empty.length} segment(s) are empty (0 bytes): ${names(check.empty, src.folder)}. Upload them again with their content, then upload the playlist again`);
    }
    if (check.missing.length === 0) return check.bytes;
    const since = Math.max(src.playlistModified.getTime(), check.newest.getTime());
    const waitMs = ctx.config.functions.segmentWaitMs;
    if (Date.now() - since >= waitMs) {
      throw new PermanentError(
        `${check.missing.length} segment(s) named in ${src.playlistKey} never arrived (waited ${Math.round(waitMs / 1000)} s): ${names(check.missing, src.folder)}. Upload them, then upload the playlist again`,
      );
    }
    log.info({ missing: check.missing.length, stage: "waiting" }, "waiting for segments");
    await ctx.progress(0);
    await sleep(Math.min(delay, waitMs - (Date.now() - since)), signal);
    delay = Math.min(delay * 2, 10_000);
  }
}

function names(keys: string[], folder: string): string {
  const rel = keys.map((k) => (folder && k.startsWith(`${folder}/`) ? k.slice(folder.length + 1) : k));
  return rel.slice(0, 10).join(", ") + (rel.length > 10 ? ` and ${rel.length - 10} more` : "");
}

/** A corrupt segment makes FFmpeg skip its content: the MP4 comes out shorter than the playlist says. */
function checkDuration(src: Source, seconds: number): void {
  const target = Math.max(...src.segments.map((s) => s.duration));
  const tolerance = Math.max(1, target / 2);
  if (src.seconds - seconds > tolerance) {
    throw new PermanentError(
      `the MP4 came out ${seconds.toFixed(1)} s long but ${src.playlistKey} lists ${src.seconds.toFixed(1)} s: some segments are corrupt or not media. Check the segment files (for example with ffprobe) and upload the folder again`,
    );
  }
}

async function presign(s3: S3Client, bucket: string, key: string): Promise<string> {
  return getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: PRESIGN_SECONDS });
}

/** FFmpeg's messages name presigned URLs: show the segment names instead. */
function describer(urls: Map<string, string>, folder: string): (msg: string) => string {
  return (msg) => {
    let out = msg;
    for (const [key, url] of urls) if (out.includes(url)) out = out.replaceAll(url, names([key], folder));
    return out.replace(/https?:\/\/\S+/g, (u) => u.split("?")[0]!);
  };
}

async function upload(s3: S3Client, bucket: string, key: string, file: string, size: number, signal: AbortSignal, onProgress: (f: number) => void): Promise<void> {
  const up = new Upload({
    client: s3,
    params: { Bucket: bucket, Key: key, Body: createReadStream(file, { highWaterMark: 1024 * 1024 }), ContentType: "video/mp4", ContentLength: size },
    partSize: UPLOAD_PART_BYTES,
    queueSize: 4,
    leavePartsOnError: false,
  });
  up.on("httpUploadProgress", (p) => onProgress(size > 0 ? (p.loaded ?? 0) / size : 1));
  const onAbort = () => void up.abort().catch(() => {});
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    await up.done();
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
  signal.throwIfAborted();
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(done, Math.max(0, ms));
    function done() {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }
    function onAbort() {
      clearTimeout(t);
      reject(signal.reason);
    }
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
