import { createWriteStream } from "node:fs";
import { mkdir, readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import type { Readable } from "node:stream";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { claimAbr, markAbrFailed, markAbrProgress, markAbrReady, recordingExists, releaseAbrClaim } from "../../db/recordings.js";
import type { AbrRendition } from "../../db/schema.js";
import { resolveFfmpeg } from "../../lib/ffmpeg.js";
import { abrKeys, recordingName } from "../../lib/layout.js";
import { deleteKeys, deletePrefix, isNotFound, listObjects } from "../../lib/s3.js";
import { PermanentError, TransientError, type GiveUp, type Handler, type HandlerContext, type HandlerResult } from "../runtime/handler.js";
import type { StorageEvent } from "../events/decode.js";
import { createJobDir, recordChild, removeDeadJobDirs } from "../convert/workdir.js";
import { encodeLadder, probeSource, SourceError } from "./encode.js";
import { parseLadder, planLadder } from "./ladder.js";
import { writeMaster } from "./master.js";

// package: a ready recording's MP4 → an ABR ladder of CMAF segments with an HLS master and a DASH manifest,
// in `<source prefix>/abr/`. Stages: claim the ladder → download the MP4 → probe → plan → encode (one
// FFmpeg) → upload (master playlist last) → mark ready. The recording's own status is never touched.

const MAX_LEASE_MS = 30_000;
const UPLOADS_AT_ONCE = 4;
export const PACKAGE_WORK = "package";

/** A recording.ready event as the package consumer carries it: `key` names it in logs. */
export interface ReadyEvent {
  key: string;
  recordingId: string;
}

export interface PackageState {
  recordingId: string;
  claimToken?: string;
}

const CONTENT_TYPES: Record<string, string> = { m3u8: "application/vnd.apple.mpegurl", mpd: "application/dash+xml", m4s: "video/iso.segment" };

export const packageRecording: Handler<PackageState> = async (raw, ctx, job): Promise<HandlerResult> => {
  const { recordingId } = raw as unknown as ReadyEvent;
  const { config, db, s3 } = ctx;
  const ladder = parseLadder(config.abr.ladder);
  if (ladder.length === 0) return "ignored";
  job.state = { recordingId };
  const log = ctx.log.child({ recording: recordingId });

  // A lease shorter than NATS's redelivery: when a replica dies, its lease has ended by the time its message comes back.
  const leaseMs = Math.min(MAX_LEASE_MS, Math.floor((ctx.redeliverAfterMs ?? 60_000) / 2));
  const claimToken = `${ctx.worker}/${Math.random().toString(36).slice(2, 10)}`;
  const claim = await claimAbr(db, recordingId, claimToken, leaseMs);
  if (claim.kind === "nothing") {
    log.info({ why: claim.why }, "nothing to package");
    return "ignored";
  }
  if (claim.kind === "busy") throw new TransientError(`recording ${recordingId} is being packaged by another job`, { retryAfterMs: Math.min(MAX_LEASE_MS, claim.retryAfterMs) });
  job.state.claimToken = claimToken;
  const rec = claim.recording;
  const keys = abrKeys(rec.sourcePrefix, recordingName(rec.sourcePrefix, rec.playlistKey ?? rec.filePath ?? "recording"));
  const lease = holdLease(ctx, recordingId, claimToken, leaseMs);
  const bucket = config.s3.recordingsBucket;
  const segmentSeconds = config.abr.segmentSeconds;
  let dir: string | undefined;
  const t0 = performance.now();
  try {
    if (!rec.filePath) throw new PermanentError("the recording has no MP4 to package; convert it again");
    await removeDeadJobDirs(config.functions.workDir, log, PACKAGE_WORK);
    dir = await createJobDir(config.functions.workDir, PACKAGE_WORK);
    const input = join(dir, "source.mp4");
    await download(ctx, bucket, rec.filePath, input, lease.signal);
    const tools = resolveFfmpeg(config.ffmpeg);
    const source = await probeSource(tools.ffprobe, input, segmentSeconds, lease.signal);
    const planned = planLadder(source, ladder);
    log.info({ stage: "planned", renditions: planned.map((r) => `${r.name}${r.copy ? " (copy)" : ""}@${Math.round(r.videoBitrate / 1000)}k`), seconds: source.duration }, "packaging");
    const outDir = join(dir, "out");
    await mkdir(outDir);
    await encodeLadder(tools.ffmpeg, { input, outDir, renditions: planned, hasAudio: source.hasAudio, segmentSeconds }, {
      signal: lease.signal,
      onStart: (pid) => void recordChild(dir!, pid),
      onProgress: (s) => lease.report(0.95 * Math.min(1, s / source.duration)),
    });
    const master = await writeMaster(outDir, planned, source.hasAudio, source.frameRate);
    const files = (await readdir(outDir)).filter((f) => f !== "master.m3u8");
    await uploadAll(ctx, outDir, keys.prefix, files, lease.signal);
    // The master goes last: a player that finds it finds every segment it names.
    await put(ctx, keys.master, master.text, "application/vnd.apple.mpegurl", lease.signal);
    // A ladder made before (an older MP4, a longer ladder) may have files this one does not: they go.
    const current = new Set([...files, "master.m3u8"].map((f) => keys.prefix + f));
    const stale: string[] = [];
    for await (const o of listObjects(s3, bucket, keys.prefix)) if (!current.has(o.key)) stale.push(o.key);
    if (stale.length) await deleteKeys(s3, bucket, stale);
    const renditions: AbrRendition[] = master.renditions.map((r) => ({ ...r, playlist: keys.prefix + r.playlist }));
    if (!(await markAbrReady(db, recordingId, claimToken, { masterPath: keys.master, dashPath: keys.dash, renditions }))) {
      // Deleted while packaging: what was uploaded goes too, or it would be orphaned.
      if (!(await recordingExists(db, recordingId))) {
        const removed = await deletePrefix(s3, bucket, keys.prefix);
        log.info({ removed, stage: "orphans" }, "recording deleted during packaging; its ladder removed");
        return "ignored";
      }
      throw new TransientError(`recording ${recordingId}'s packaging was taken over by another job`);
    }
    log.info({ stage: "ready", renditions: renditions.length, ms: Math.round(performance.now() - t0), seconds: source.duration }, "ladder ready");
    return "done";
  } catch (err) {
    // Shutdown or a failed attempt: the lease goes back at once, so the next delivery (here or elsewhere) needs no wait.
    if (!lease.lost.aborted) await releaseAbrClaim(db, recordingId, claimToken).catch(() => {});
    if (lease.lost.aborted) {
      // Lost because the row went away (deleted): remove anything uploaded so far; nothing is left to retry or fail.
      if (!(await recordingExists(db, recordingId).catch(() => true))) {
        const removed = await deletePrefix(s3, bucket, keys.prefix);
        log.info({ removed, stage: "orphans" }, "recording deleted during packaging; its ladder removed");
        return "ignored";
      }
      throw lease.lost.reason;
    }
    if (err instanceof SourceError) throw new PermanentError(err.message);
    throw err;
  } finally {
    lease.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  }
};

/** Given up (bad MP4, or every delivery failed): the ladder fails with the reason; the recording stays ready. */
export const giveUpPackage: GiveUp<PackageState> = async (raw, reason, ctx, job) => {
  const recordingId = job.state?.recordingId ?? (raw as unknown as ReadyEvent).recordingId;
  if (!recordingId) return;
  const written = await markAbrFailed(ctx.db, recordingId, reason, job.state?.claimToken);
  ctx.log.warn({ recording: recordingId, reason, recorded: written, stage: "failed" }, "ABR packaging failed");
};

export async function preparePackage({ config, log }: { config: HandlerContext["config"]; log: HandlerContext["log"] }): Promise<void> {
  await removeDeadJobDirs(config.functions.workDir, log, PACKAGE_WORK);
}

async function download(ctx: HandlerContext, bucket: string, key: string, file: string, signal: AbortSignal): Promise<void> {
  try {
    const res = await ctx.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
    await pipeline(res.Body as Readable, createWriteStream(file), { signal });
  } catch (err) {
    if (isNotFound(err)) throw new PermanentError(`the recording's MP4 ${key} is not in the ${bucket} bucket; convert the recording again (upload its playlist again)`);
    throw err;
  }
}

async function put(ctx: HandlerContext, key: string, body: Buffer | string, contentType: string, signal: AbortSignal): Promise<void> {
  await ctx.s3.send(new PutObjectCommand({ Bucket: ctx.config.s3.recordingsBucket, Key: key, Body: body, ContentType: contentType }), { abortSignal: signal });
}

async function uploadAll(ctx: HandlerContext, dir: string, prefix: string, files: string[], signal: AbortSignal): Promise<void> {
  const queue = [...files];
  const worker = async () => {
    for (let f = queue.shift(); f; f = queue.shift()) {
      const ext = f.slice(f.lastIndexOf(".") + 1);
      try {
        await put(ctx, prefix + f, await readFile(join(dir, f)), CONTENT_TYPES[ext] ?? "application/octet-stream", signal);
      } catch (err) {
        queue.length = 0; // the other uploaders take no new file
        throw err;
      }
    }
  };
  // Every upload settles before a failure is reported: a cleanup that follows must not race a PUT still in flight.
  const settled = await Promise.allSettled(Array.from({ length: UPLOADS_AT_ONCE }, worker));
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
}

/** Renews the ladder's lease every second with the progress; aborts the job when the lease is lost or the replica stops. */
function holdLease(ctx: HandlerContext, recordingId: string, claimToken: string, leaseMs: number) {
  const lost = new AbortController();
  let progress = 0;
  let lastWrite = 0;
  const tick = async () => {
    if (Date.now() - lastWrite < Math.min(1000, leaseMs / 3)) return;
    lastWrite = Date.now();
    try {
      if (!(await markAbrProgress(ctx.db, recordingId, claimToken, leaseMs, progress))) lost.abort(new TransientError(`recording ${recordingId}'s packaging lease was lost (taken over or deleted)`));
    } catch (err) {
      ctx.log.warn({ err: (err as Error).message }, "could not record packaging progress");
    }
  };
  const ticker = setInterval(() => void tick(), 1000);
  return {
    signal: AbortSignal.any([ctx.signal, lost.signal]),
    lost: lost.signal,
    report(p: number) {
      progress = Math.round(p * 1000) / 1000;
      void ctx.progress(p);
    },
    stop: () => clearInterval(ticker),
  };
}

