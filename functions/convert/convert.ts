import { createReadStream } from "node:fs";
import { rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { GetObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { execa } from "execa";
import { HLS_PROTOCOLS, hlsInputOptions, resolveFfmpeg } from "../../lib/ffmpeg.js";
import { HlsError, checkSegments, masterMayFollow, mergeWebVtt, resolveSource, sourceObjects, writeLocalPlaylist, type Resolution, type ResolvedSegment, type Source } from "../../lib/hls/index.js";
import { folderOf, keysOfRecording, recordingKeys, recordingName, subtitleKey } from "../../lib/layout.js";
import { abortOpenUploads, deleteKeys, payloadNeedsSigning, putText } from "../../lib/s3.js";
import { publishRecordingEvent } from "../../lib/events.js";
import { claimRecording, deleteVariantRecordings, getRecordingBySourcePrefix, markFailed, markProgress, markReady, recordingExists, recordingsCoveringPlaylist, releaseClaim } from "../../db/recordings.js";
import type { RecordingWarning, SubtitleTrack } from "../../db/schema.js";
import { PermanentError, TransientError, type GiveUp, type Handler, type HandlerContext, type HandlerResult, type Job } from "../runtime/handler.js";
import type { StorageEvent } from "../events/decode.js";
import { probeInput, probeOutput, remux, type InputStreams, type OutputFacts, type Tools, type Track } from "./remux.js";
import { createJobDir, recordChild, removeDeadJobDirs } from "./workdir.js";
import { clock, gapWarning, gapsInPart, type Gap, type Packet, type Part } from "./gaps.js";
import { startStreamingUpload } from "./faststart.js";
import { backoffDelay, sleep } from "../../lib/time.js";
import { advanceLiveAssembly, finishLiveAssembly, forgetLiveAssembly, hasLiveAssembly } from "./live-assembly.js";

// convert: a finished HLS folder → one faststart MP4 (every track the source has) in the recordings
// bucket, its subtitle side-cars, and its row, ready. The handler reads as its stages:
// resolve → claim → wait for segments → prepare inputs → probe → remux + upload → verify → subtitles → record.

/** What giveUp needs to know about a job that got as far as resolving or claiming its source prefix. */
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
/** Progress split: remuxing is most of the work, the upload (when not overlapped) the rest. */
const REMUX_SHARE = 0.85;
/** How long a dropped media playlist waits for a master naming it (see awaitMaster), and at most how many deliveries. */
const MASTER_GRACE_MS = 5000;
const MASTER_GRACE_ATTEMPTS = 5;
/** Damage is located part by part (between discontinuities) with this many reads at once. */
const LOCATE_PARALLEL = 4;

export const convert: Handler<ConvertState> = async (event, ctx, job) => {
  const { s3, db, config } = ctx;
  const bucket = config.s3.hlsBucket;
  const lap = stopwatch();
  const resolution = await hls(() => resolveSource(s3, bucket, event.key, ctx.signal));
  if (resolution.kind === "ignore") {
    // A live playlist update: the broadcast's MP4 is assembled as it grows (live-assembly.ts).
    if (resolution.live) return advanceLiveAssembly(ctx, event.key, resolution.live);
    ctx.log.debug({ reason: resolution.reason }, "nothing to convert");
    return "ignored";
  }
  if (resolution.kind === "incomplete") return awaitPlaylists(event, ctx, resolution, job);
  const src = resolution.source;
  await awaitMaster(ctx, src);
  const log = ctx.log.child({ sourcePrefix: src.sourcePrefix, playlist: src.playlistKey });
  const state: ConvertState = { sourcePrefix: src.sourcePrefix, name: src.name, playlistKey: src.playlistKey };
  job.state = state;

  // A lease shorter than NATS's redelivery: when a replica dies, its lease has ended by the time its message comes back.
  const leaseMs = Math.min(MAX_LEASE_MS, Math.floor((ctx.redeliverAfterMs ?? 60_000) / 2));
  const tJob = performance.now();
  const claimToken = `${ctx.worker}/${Math.random().toString(36).slice(2, 10)}`;
  const claim = await claimRecording(db, { sourcePrefix: src.sourcePrefix, playlistKey: src.playlistKey, playlistEtag: src.playlistEtag, streamId: src.sourcePrefix, title: src.name, claimToken, leaseMs });
  if (claim.kind === "ready") {
    log.info("already converted; duplicate event");
    return "ignored";
  }
  if (claim.kind === "busy") {
    throw new TransientError(`${src.sourcePrefix} is being converted by another job`, { retryAfterMs: Math.min(MAX_LEASE_MS, claim.retryAfterMs + 1000) });
  }
  state.claimToken = claimToken;
  lap("claim");
  const recordingId = claim.recording.id;
  void publishRecordingEvent(ctx.events, "recording.processing", claim.recording);
  log.info({ recording: recordingId, segments: src.segments.length, audio: src.audio.length, subtitles: src.subtitles.length, seconds: src.seconds, stage: "claimed" }, "converting");

  const lease = holdLease(ctx, recordingId, claimToken, leaseMs, src.sourcePrefix, log);
  let dir: string | undefined;
  try {
    // A broadcast assembled while live needs only its tail now; anything that does not match falls through to the whole folder.
    const instant = await finishLiveAssembly(ctx, src, lease.signal);
    if (instant.kind === "done") {
      lease.stop();
      const out = { size: instant.size, facts: instant.facts, warnings: [] };
      await record(ctx, { src, recordingId, claimToken, mp4: instant.mp4, out, tracks: instant.tracks, subtitles: [], sourceBytes: instant.sourceBytes, convertMs: Math.round(performance.now() - tJob), log });
      await forgetLiveAssembly(ctx, src.sourcePrefix);
      return "done";
    }
    await removeDeadJobDirs(config.functions.workDir, log);
    dir = await createJobDir(config.functions.workDir);
    const segmentBytes = await waitForSegments(s3, bucket, src, ctx, lease.signal, log);
    log.info({ stage: "segments", ms: Math.round(performance.now() - tJob) }, "segments present");
    lap("segments");
    const tools = resolveFfmpeg(config.ffmpeg);
    const t0 = performance.now();
    const keys = recordingKeys(src.sourcePrefix, src.name);
    // FFmpeg probes the start of each playlist while every segment of the recording is presigned (0.3-0.6 s of CPU an hour).
    const view = probeView(src);
    const probing = Promise.all([probeSource(tools, view, await prepareInputs(s3, bucket, view, dir, "probe-"), dir, lease.signal), abortOpenUploads(s3, config.s3.recordingsBucket, keys.mp4, lease.signal)]);
    probing.catch(() => {});
    const inputs = await prepareInputs(s3, bucket, src, dir);
    const [probed, orphans] = await probing;
    if (orphans) log.info({ aborted: orphans, key: keys.mp4 }, "aborted multipart uploads a stopped job left open on the MP4's key");
    const tracks = planTracks(src, probed);
    lap("probe");
    const out = await remuxAndUpload({ s3, config, tools, src, inputs, tracks, dir, fileKey: keys.mp4, streaming: segmentBytes < STREAMING_LIMIT_BYTES, signal: lease.signal, report: lease.report, log, lap });
    // Seconds the playlist itself marks missing (#EXT-X-GAP) are told first; damage found reading the rest follows.
    const gap = gapWarning(src.gaps, { broadcast: Boolean(claim.recording.sessionId), sourcePrefix: src.sourcePrefix, holeKept: src.segments.some((s) => s.map) });
    if (gap) out.warnings.unshift(gap);
    const subtitles = await writeSubtitles(s3, bucket, config.s3.recordingsBucket, src, lease.signal);
    lease.stop();
    lap("subtitles");
    await record(ctx, { src, recordingId, claimToken, mp4: keys.mp4, out, tracks, subtitles, sourceBytes: segmentBytes, convertMs: Math.round(performance.now() - t0), log, lap });
    return "done";
  } catch (err) {
    if (ctx.signal.aborted) await releaseClaim(db, recordingId, claimToken).catch(() => {});
    if (lease.lost.aborted) throw lease.lost.reason;
    if (err instanceof HlsError) throw new PermanentError(err.message);
    throw err;
  } finally {
    lease.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  }
};

/**
 * A dropped media playlist with no master yet may be one of a master's playlists landing first (uploaders
 * put files in any order): it is converted on its own only once MASTER_GRACE_MS passed since it landed
 * with still no master naming it. A broadcast's playlist (its row comes from the gateway) never waits,
 * nor does a folder with nothing a master's other playlists could be made of (masterMayFollow).
 */
async function awaitMaster(ctx: HandlerContext, src: Source): Promise<void> {
  if (src.masterKey) return;
  const age = Date.now() - src.playlistModified.getTime();
  if (age >= MASTER_GRACE_MS || ctx.attempt > MASTER_GRACE_ATTEMPTS) return;
  if ((await getRecordingBySourcePrefix(ctx.db, src.sourcePrefix))?.sessionId) return;
  // A playlist that was assembled while live was the folder's only playlist then: no master is coming.
  if (await hasLiveAssembly(ctx, src.sourcePrefix)) return;
  if (!(await masterMayFollow(ctx.s3, ctx.config.s3.hlsBucket, src, ctx.signal))) return;
  throw new TransientError(`${src.playlistKey} has no master playlist naming it yet; converting it on its own unless one lands within ${MASTER_GRACE_MS / 1000} s`, {
    retryAfterMs: Math.min(2000, MASTER_GRACE_MS - age + 100),
  });
}

/**
 * A master's playlists land in any order: the event of the last one makes the recording. The master's
 * own event stays until then, looked at again over the deliveries the runtime allows, and fails the
 * recording naming what never landed (or never finished) once SEGMENT_WAIT_SECONDS passed since the
 * rest did. The other playlists' events have nothing to do.
 */
async function awaitPlaylists(event: StorageEvent, ctx: HandlerContext, r: Extract<Resolution, { kind: "incomplete" }>, job: Job<ConvertState>): Promise<HandlerResult> {
  const missing = names(r.missing, r.sourcePrefix);
  if (event.key !== r.masterKey) {
    ctx.log.debug({ master: r.masterKey, missing }, "the master's other playlists are not all here yet");
    return "ignored";
  }
  const { segmentWaitMs: waitMs, maxDeliveries } = ctx.config.functions;
  const waited = Date.now() - r.since.getTime();
  if (waited < waitMs) {
    const left = Math.max(1, maxDeliveries - ctx.attempt - 1);
    throw new TransientError(`${r.masterKey} waits for ${missing}`, { retryAfterMs: Math.ceil((waitMs - waited) / left) + 500 });
  }
  job.state = { sourcePrefix: r.sourcePrefix, name: recordingName(r.sourcePrefix, r.masterKey), playlistKey: r.masterKey };
  throw new PermanentError(`${r.missing.length} playlist(s) named by ${r.masterKey} never arrived or never finished with #EXT-X-ENDLIST (waited ${Math.round(waitMs / 1000)} s): ${missing}. Upload them, then upload the master playlist again`);
}

/** The HLS rules' refusals are the user's to fix: the job fails permanently with their message. */
async function hls<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    if (err instanceof HlsError) throw new PermanentError(err.message);
    throw err;
  }
}

/** Renews the claim every second with the progress; aborts the job at once when the claim is lost or the replica stops. */
function holdLease(ctx: HandlerContext, recordingId: string, claimToken: string, leaseMs: number, sourcePrefix: string, log: HandlerContext["log"]) {
  const lost = new AbortController();
  let progress = 0;
  let written = -1;
  let lastWrite = 0;
  const tick = async () => {
    const due = Date.now() - lastWrite >= leaseMs / 3;
    if (progress === written && !due) return;
    const p = progress;
    lastWrite = Date.now();
    try {
      if (await markProgress(ctx.db, recordingId, claimToken, leaseMs, p)) written = p;
      else lost.abort(new TransientError(`${sourcePrefix} was taken over by another job`));
    } catch (err) {
      log.warn({ err: (err as Error).message }, "could not record progress");
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

interface Made {
  src: Source;
  recordingId: string;
  claimToken: string;
  mp4: string;
  out: { size: number; facts: OutputFacts; warnings: RecordingWarning[] };
  tracks: Track[];
  subtitles: SubtitleTrack[];
  sourceBytes: number;
  convertMs: number;
  log: HandlerContext["log"];
  /** Times the job's stages for the ready line; absent for paths that time themselves. */
  lap?: Stopwatch;
}

/** The last stage: the row becomes ready with what the MP4 holds; playlists of a master converted alone before it give way. */
async function record(ctx: HandlerContext, m: Made): Promise<void> {
  const { facts, warnings, size } = m.out;
  const ok = await markReady(ctx.db, m.recordingId, m.claimToken, {
    filePath: m.mp4,
    fileSizeBytes: size,
    durationSeconds: facts.duration,
    width: facts.width,
    height: facts.height,
    videoCodec: facts.videoCodec,
    audioCodec: facts.audioCodec,
    warnings,
    audioTracks: m.tracks.filter((t) => t.kind === "audio").map((t) => ({ language: t.language ?? null, name: t.title ?? null, isDefault: Boolean(t.isDefault) })),
    subtitles: m.subtitles,
    extraKeys: m.subtitles.map((s) => s.key),
    sourceBytes: m.sourceBytes,
  });
  if (!ok) {
    // The row is gone when a master claimed this variant's folder meanwhile: the MP4 belongs to nobody.
    if (!(await recordingExists(ctx.db, m.recordingId))) {
      await deleteKeys(ctx.s3, ctx.config.s3.recordingsBucket, [m.mp4, ...m.subtitles.map((s) => s.key)]);
      m.log.info({ recording: m.recordingId }, "a master playlist took over this folder; dropped the variant's MP4");
      return;
    }
    // Losing the lease this late means another job converted the same folder to the same key: its row stands.
    m.log.warn({ recording: m.recordingId }, "lease lost before marking ready; the other job's result stands");
    return;
  }
  if (m.src.memberKeys) await dropMemberRecordings(ctx, m.src, m.log);
  await publishRecordingEvent(ctx.events, "recording.ready", await getRecordingBySourcePrefix(ctx.db, m.src.sourcePrefix));
  m.lap?.("record");
  m.log.info({ recording: m.recordingId, file: m.mp4, size, duration: facts.duration, tracks: m.tracks.length, warnings: warnings.length, convertMs: m.convertMs, stages: m.lap?.laps, stage: "ready" }, "recording ready");
}

/** Recordings made from the master's variant or rendition playlists on their own, before the master landed (any upload order), give way to the master's. */
async function dropMemberRecordings(ctx: HandlerContext, src: Source, log: HandlerContext["log"]): Promise<void> {
  const removed = await deleteVariantRecordings(ctx.db, src.sourcePrefix, (src.memberKeys ?? []).map((k) => ({ sourcePrefix: folderOf(k), playlistKey: k })));
  if (removed.length === 0) return;
  await deleteKeys(ctx.s3, ctx.config.s3.recordingsBucket, removed.flatMap((r) => keysOfRecording(r)));
  log.info({ removed: removed.map((r) => r.sourcePrefix) }, "removed recordings of playlists converted before their master landed");
}

/** Records why an event was given up on the folder's recording (creating the row if the job never claimed one). */
export const giveUpConvert: GiveUp<ConvertState> = async (event, reason, ctx, job) => {
  const state = job.state;
  let sourcePrefix = state?.sourcePrefix;
  if (sourcePrefix === undefined) {
    // Failed before its source prefix was known: the deepest recording covering the playlist, else its own folder.
    const covering = await recordingsCoveringPlaylist(ctx.db, event.key);
    sourcePrefix = covering.map((r) => r.sourcePrefix).sort((a, b) => b.length - a.length)[0] ?? folderOf(event.key);
  }
  // A failing job's own upload is aborted where it fails; one left open by a killed replica before it is aborted here.
  if (state?.name !== undefined) await abortOpenUploads(ctx.s3, ctx.config.s3.recordingsBucket, recordingKeys(sourcePrefix, state.name).mp4).catch(() => {});
  await forgetLiveAssembly(ctx, sourcePrefix, { abort: true }).catch(() => {});
  const written = await markFailed(ctx.db, {
    sourcePrefix,
    playlistKey: state?.playlistKey ?? event.key,
    error: reason,
    claimToken: state?.claimToken,
    streamId: sourcePrefix,
    title: state?.name ?? recordingName(sourcePrefix, event.key),
  });
  if (written) await publishRecordingEvent(ctx.events, "recording.failed", await getRecordingBySourcePrefix(ctx.db, sourcePrefix));
  ctx.log.warn({ sourcePrefix, reason, recorded: written, stage: "failed" }, written ? "recording failed" : "failure not recorded: the folder is held or finished by another playlist");
};

/** Before the first conversion: clear temp folders a killed replica of this host left behind. */
export async function prepareConvert({ config, log }: { config: HandlerContext["config"]; log: HandlerContext["log"] }): Promise<void> {
  await removeDeadJobDirs(config.functions.workDir, log);
}

/**
 * Folders arrive in any order: wait, with backoff, for segments the playlists name but the store
 * does not have yet. The wait restarts whenever a segment arrives, and ends SEGMENT_WAIT_SECONDS after
 * the last one (or the playlist) did.
 */
async function waitForSegments(s3: S3Client, bucket: string, src: Source, ctx: HandlerContext, signal: AbortSignal, log: HandlerContext["log"]): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    const check = await checkSegments(s3, bucket, src);
    if (check.empty.length) {
      throw new PermanentError(`${check.empty.length} segment(s) are empty (0 bytes): ${names(check.empty, src.sourcePrefix)}. Upload them again with their content, then upload the playlist again`);
    }
    if (check.missing.length === 0) return check.bytes;
    const since = Math.max(src.playlistModified.getTime(), check.newest.getTime());
    // A playlist converted on its own already spent up to MASTER_GRACE_MS waiting for a master: that is not the segments' time.
    const waitMs = ctx.config.functions.segmentWaitMs + (src.masterKey ? 0 : MASTER_GRACE_MS);
    if (Date.now() - since >= waitMs) {
      throw new PermanentError(
        `${check.missing.length} segment(s) named in ${src.playlistKey} never arrived (waited ${Math.round(ctx.config.functions.segmentWaitMs / 1000)} s): ${names(check.missing, src.sourcePrefix)}. Upload them, then upload the playlist again`,
      );
    }
    log.info({ missing: check.missing.length, stage: "waiting" }, "waiting for segments");
    await ctx.progress(0);
    await sleep(Math.min(backoffDelay(attempt, 500, 10_000), waitMs - (Date.now() - since)), { signal });
  }
}

function names(keys: string[], sourcePrefix: string): string {
  const rel = keys.map((k) => (sourcePrefix && k.startsWith(`${sourcePrefix}/`) ? k.slice(sourcePrefix.length + 1) : k));
  return rel.slice(0, 10).join(", ") + (rel.length > 10 ? ` and ${rel.length - 10} more` : "");
}

interface Inputs {
  /** The video (or only) media playlist FFmpeg reads, then one per separate audio rendition (index in src.audio → path). */
  video: string;
  audio: Map<number, string>;
  urlOf: (key: string) => string;
  /** Turns presigned URLs (key files included) in FFmpeg's messages back into object names. */
  describe: (msg: string) => string;
}

/** Presigns every object the recording reads (segments, init sections, key files) and writes the playlists FFmpeg reads. */
async function prepareInputs(s3: S3Client, bucket: string, src: Source, dir: string, name = ""): Promise<Inputs> {
  const urls = new Map(await Promise.all(sourceObjects(src).map(async (k) => [k, await presign(s3, bucket, k)] as const)));
  const urlOf = (k: string) => urls.get(k)!;
  const video = join(dir, `${name}video.m3u8`);
  await writeFile(video, writeLocalPlaylist(src.segments, urlOf));
  const audio = new Map<number, string>();
  for (const [i, a] of src.audio.entries()) {
    if (!a.segments) continue;
    const path = join(dir, `${name}audio-${i}.m3u8`);
    await writeFile(path, writeLocalPlaylist(a.segments, urlOf));
    audio.set(i, path);
  }
  return { video, audio, urlOf, describe: describer(urls, src.sourcePrefix) };
}

/** Segments FFmpeg's probe reads at the start of a playlist (its 5 s of analysis, with room for short segments). */
const PROBE_SEGMENTS = 8;

/** What probeSource reads: the start of each playlist, and the first segment after each discontinuity. */
function probeView(src: Source): Source {
  const head = (segments: ResolvedSegment[]) => segments.filter((s, i) => i < PROBE_SEGMENTS || s.discontinuity);
  return { ...src, segments: head(src.segments), audio: src.audio.map((a) => (a.segments ? { ...a, segments: head(a.segments) } : a)), subtitles: [] };
}

interface Probed {
  video: InputStreams;
  /** Per entry of src.audio: the format of its stream (the variant's own audio for a muxed one). */
  audio: (InputStreams["audio"] | undefined)[];
  /** Where the video playlist's format changes after a discontinuity, against its first part. */
  changes: { video: boolean; audio: boolean };
}

async function probeSource(tools: Tools, src: Source, inputs: Inputs, dir: string, signal: AbortSignal): Promise<Probed> {
  const video = await probeInput(tools, inputs.video, inputs.describe, signal);
  const audio: Probed["audio"] = [];
  for (const [i, a] of src.audio.entries()) {
    const path = inputs.audio.get(i);
    audio.push(path ? (await probeInput(tools, path, inputs.describe, signal, `the audio rendition ${names([a.key!], src.sourcePrefix)}`)).audio : video.audio);
  }
  if (!video.video && !audio.some(Boolean)) throw new PermanentError("the segments hold no audio or video stream: check the segment files and upload the folder again");
  return { video, audio, changes: await formatChanges(tools, src, inputs, dir, video, signal) };
}

/**
 * A broadcast that reconnected may come back in another format (resolution, profile, audio rate or
 * channels) after #EXT-X-DISCONTINUITY. Each part's first segment is probed on its own and compared
 * with the first part.
 */
async function formatChanges(tools: Tools, src: Source, inputs: Inputs, dir: string, first: InputStreams, signal: AbortSignal): Promise<Probed["changes"]> {
  const starts = src.segments.flatMap((s, i) => (i > 0 && s.discontinuity ? [i] : []));
  const changes = { video: false, audio: false };
  for (const [n, i] of starts.entries()) {
    const path = join(dir, `part-${n}.m3u8`);
    await writeFile(path, writeLocalPlaylist([{ ...src.segments[i]!, discontinuity: false }], inputs.urlOf));
    let part: InputStreams;
    try {
      part = await probeInput(tools, path, inputs.describe, signal, `the part after discontinuity ${n + 1}`);
    } catch (err) {
      // A part whose first segment cannot be read is damage, told by the gap check after the remux.
      if (err instanceof PermanentError) continue;
      throw err;
    }
    const v = first.video;
    const pv = part.video;
    if (v && pv && (pv.codec !== v.codec || pv.width !== v.width || pv.height !== v.height || pv.profile !== v.profile)) changes.video = true;
    const a = first.audio;
    const pa = part.audio;
    if (a && pa && (pa.codec !== a.codec || pa.sampleRate !== a.sampleRate || pa.channels !== a.channels)) changes.audio = true;
  }
  return changes;
}

/**
 * The MP4's tracks: the video (if any), then each audio the source has, labelled with its rendition's
 * language and name. When the format changes midway the whole track is re-encoded to the first part's
 * format, not only the parts that differ: copied parts keep the source encoder's parameter sets and
 * re-encoded ones would carry libx264's, and a track with two of them is what strict players reject.
 */
function planTracks(src: Source, probed: Probed): Track[] {
  const tracks: Track[] = [];
  const v = probed.video.video;
  if (v) tracks.push({ input: 0, kind: "video", codec: v.codec, normalize: probed.changes.video ? { width: v.width, height: v.height } : undefined });
  let next = 1;
  for (const [i, a] of src.audio.entries()) {
    const format = probed.audio[i];
    const input = a.segments ? next++ : 0;
    if (!format) {
      // A separate rendition without audio is a broken source; the variant without its own audio simply has none.
      if (a.segments) throw new PermanentError(`the audio rendition ${JSON.stringify(a.name)} (${names([a.key!], src.sourcePrefix)}) holds no audio stream: check its segments and upload the folder again`);
      continue;
    }
    const normalize = input === 0 && probed.changes.audio ? { sampleRate: format.sampleRate, channels: format.channels } : undefined;
    tracks.push({ input, kind: "audio", codec: format.codec, normalize, language: a.language, title: a.name || undefined, isDefault: tracks.every((t) => t.kind !== "audio") });
  }
  return tracks;
}

interface RemuxJob {
  s3: S3Client;
  config: HandlerContext["config"];
  tools: Tools;
  src: Source;
  inputs: Inputs;
  tracks: Track[];
  dir: string;
  fileKey: string;
  /** Upload while FFmpeg writes (moov moved by convert); past 32-bit chunk offsets (> 3.5 GB) FFmpeg's own faststart does it. */
  streaming: boolean;
  signal: AbortSignal;
  report: (p: number) => void;
  log: HandlerContext["log"];
  lap: Stopwatch;
}

type Stopwatch = ((stage: string) => void) & { laps: Record<string, number> };

/** Milliseconds per stage of a job since the previous one, for the ready log line (where the time goes). */
function stopwatch(): Stopwatch {
  let at = performance.now();
  const laps: Record<string, number> = {};
  return Object.assign((stage: string) => {
    const now = performance.now();
    laps[stage] = (laps[stage] ?? 0) + Math.round(now - at);
    at = now;
  }, { laps });
}

/** One FFmpeg run writes the MP4; it is verified before its upload completes. */
async function remuxAndUpload(j: RemuxJob): Promise<{ size: number; facts: OutputFacts; warnings: RecordingWarning[] }> {
  const { src, tracks } = j;
  const output = join(j.dir, "output.mp4");
  const recBucket = j.config.s3.recordingsBucket;
  const reencodes = tracks.filter((t) => t.normalize || !["h264", "hevc", "aac"].includes(t.codec)).map((t) => `${t.kind} ${t.codec}`);
  if (reencodes.length) j.log.info({ reencodes }, "re-encoding what MP4 cannot hold as it is, or what changes format midway");
  const streamed = j.streaming ? startStreamingUpload(j.s3, recBucket, j.fileKey, output, j.signal, () => {}, { signPayload: payloadNeedsSigning(j.config.s3.endpoint) }) : undefined;
  const share = streamed ? 0.97 : REMUX_SHARE;
  let facts: OutputFacts | undefined;
  let warnings: RecordingWarning[] | undefined;
  try {
    await remux({
      tools: j.tools,
      inputs: [j.inputs.video, ...j.inputs.audio.values()],
      tracks,
      output,
      fragmented: src.segments.some((s) => s.map),
      targetSeconds: Math.max(...src.segments.map((s) => s.duration)),
      faststart: !streamed,
      seconds: src.seconds,
      signal: j.signal,
      describe: j.inputs.describe,
      onStart: (pid) => recordChild(j.dir, pid),
      onProgress: (f) => j.report(f * share),
    });
    j.lap("remux");
  } catch (err) {
    await streamed?.abort();
    throw err;
  }
  const verify = async () => {
    facts = await probeOutput(j.tools, output, j.signal);
    checkTracks(src, tracks, facts);
    warnings = await checkDuration(j, facts);
  };
  if (streamed) {
    // The MP4 is verified while its last parts go up; the object appears only if it passed.
    const size = await streamed.finish(verify);
    j.lap("verify + upload");
    return { size, facts: facts!, warnings: warnings! };
  }
  await verify();
  j.lap("verify");
  const size = (await stat(output)).size;
  await upload(j.s3, recBucket, j.fileKey, output, size, j.signal, (f) => j.report(REMUX_SHARE + f * (1 - REMUX_SHARE)));
  j.lap("upload");
  return { size, facts: facts!, warnings: warnings! };
}

/** Ready means complete: every track the source has is in the MP4, or the recording fails naming the one missing. */
function checkTracks(src: Source, tracks: Track[], facts: OutputFacts): void {
  const wantVideo = tracks.filter((t) => t.kind === "video").length;
  const audio = tracks.filter((t) => t.kind === "audio");
  if (facts.videoTracks + facts.audioTracks === 0 || facts.duration <= 0) {
    throw new PermanentError(`nothing playable could be made from ${src.playlistKey}: FFmpeg found no audio or video in its segments. Check the segment files (for example with ffprobe) and upload the folder again`);
  }
  if (facts.videoTracks < wantVideo) throw new PermanentError(`the MP4 came out without the video track of ${src.playlistKey}: its video could not be copied. Check the segment files and upload the folder again`);
  if (facts.audioTracks < audio.length) {
    const missing = audio.slice(facts.audioTracks).map((t) => JSON.stringify(t.title ?? "audio") + (t.language ? ` (${t.language})` : ""));
    throw new PermanentError(`the MP4 came out without the audio track(s) ${missing.join(", ")} of ${src.masterKey ?? src.playlistKey}: check those renditions' segments and upload the folder again`);
  }
}

/**
 * Damage is told, not punished: when the MP4 is shorter than the playlist lists (corrupt or lost data,
 * as SRT packet loss makes), each segment is probed to say where and how much is missing.
 */
async function checkDuration(j: RemuxJob, facts: OutputFacts): Promise<RecordingWarning[]> {
  const { src } = j;
  const target = Math.max(...src.segments.map((s) => s.duration));
  const missing = src.seconds - facts.duration;
  if (missing <= Math.max(1, target / 2)) return [];
  const at = await locateGaps(j);
  const where = at.length ? ` (${at.slice(0, 5).map((g) => `${clock(g.startSeconds)} in ${g.segment}: ${g.missingSeconds.toFixed(1)} s`).join("; ")}${at.length > 5 ? `; and ${at.length - 5} more places` : ""})` : "";
  j.log.warn({ missing, places: at.length, stage: "verify" }, "the source is damaged; the MP4 holds what could be read");
  return [{
    kind: "missing-media",
    missingSeconds: Math.round(missing * 10) / 10,
    at,
    message: `the source is damaged: ${missing.toFixed(1)} s of the ${src.seconds.toFixed(1)} s ${src.playlistKey} lists could not be read and are not in the MP4${where}. The rest plays; upload the damaged segments again to get them back`,
  }];
}

async function locateGaps(j: RemuxJob): Promise<RecordingWarning["at"]> {
  const { src } = j;
  const parts: { part: Part; segments: ResolvedSegment[] }[] = [];
  let t = 0;
  for (const s of src.segments) {
    // Placed on the listed timeline, so damage after an #EXT-X-GAP is named at the source's own seconds.
    t = s.listedAt ?? t;
    if (parts.length === 0 || s.discontinuity) parts.push({ part: { start: t, segments: [] }, segments: [] });
    const last = parts[parts.length - 1]!;
    (last.part.segments as { key: string; duration: number }[]).push({ key: s.key, duration: s.duration });
    last.segments.push(s);
    t += s.duration;
  }
  const gaps: Gap[] = [];
  let next = 0;
  // One read of each part's packets (a handful of processes however long the recording), parts side by side.
  const worker = async () => {
    while (next < parts.length) {
      const i = next++;
      const { part, segments } = parts[i]!;
      const packets = await packetsOf(j, segments, `part-${i}`);
      const found = gapsInPart(part, packets);
      // A loss at the very start shows no jump and looks like one at the end: reading the first segment alone tells them apart.
      const end = part.start + segments.reduce((sum, s) => sum + s.duration, 0);
      const atEnd = packets.length > 0 && found.some((g) => Math.abs(g.startSeconds + g.missingSeconds - end) < 0.25);
      const leading = atEnd ? segments[0]!.duration - span(await packetsOf(j, [segments[0]!], `first-${i}`)) : 0;
      gaps.push(...(leading > 0.5 ? gapsInPart(part, packets, leading) : found));
    }
  };
  await Promise.all(Array.from({ length: Math.min(LOCATE_PARALLEL, parts.length) }, worker));
  return gaps.sort((a, b) => a.startSeconds - b.startSeconds).map((g) => ({ ...g, segment: names([g.segment], src.sourcePrefix) }));
}

function span(packets: Packet[]): number {
  if (packets.length === 0) return 0;
  const first = Math.min(...packets.map((p) => p.dts));
  return Math.max(...packets.map((p) => p.dts + p.duration)) - first;
}

/** The packets FFmpeg reads from some segments (the video stream, else the audio), in decode order. */
async function packetsOf(j: RemuxJob, segments: ResolvedSegment[], name: string): Promise<Packet[]> {
  const path = join(j.dir, `${name}.m3u8`);
  await writeFile(path, writeLocalPlaylist(segments.map((s, i) => (i === 0 ? { ...s, discontinuity: false } : s)), j.inputs.urlOf));
  const stream = j.tracks.some((t) => t.kind === "video") ? "v:0" : "a:0";
  const r = await execa(j.tools.ffprobe, ["-v", "quiet", "-protocol_whitelist", HLS_PROTOCOLS, ...(await hlsInputOptions(j.tools)), "-select_streams", stream, "-show_entries", "packet=dts_time,duration_time", "-of", "csv=p=0", path], {
    reject: false,
    cancelSignal: j.signal,
    maxBuffer: 256 * 1024 * 1024,
  });
  return String(r.stdout)
    .split("\n")
    .map((l) => l.split(",").map(Number))
    .filter(([dts]) => Number.isFinite(dts))
    .map(([dts, duration]) => ({ dts: dts!, duration: Number.isFinite(duration) ? duration! : 0 }));
}

/** Each WebVTT subtitle rendition becomes one side-car .vtt beside the MP4. */
async function writeSubtitles(s3: S3Client, hlsBucket: string, recBucket: string, src: Source, signal: AbortSignal): Promise<SubtitleTrack[]> {
  const out: SubtitleTrack[] = [];
  for (const [i, sub] of src.subtitles.entries()) {
    const texts = await Promise.all(
      sub.segments.map(async (s) => {
        const res = await s3.send(new GetObjectCommand({ Bucket: hlsBucket, Key: s.key }), { abortSignal: signal });
        return { name: names([s.key], src.sourcePrefix), text: await res.Body!.transformToString("utf-8") };
      }),
    );
    const key = subtitleKey(src.sourcePrefix, src.name, i, sub.language);
    await hls(async () => putText(s3, recBucket, key, mergeWebVtt(texts), "text/vtt; charset=utf-8"));
    out.push({ key, language: sub.language ?? null, name: sub.name, isDefault: sub.isDefault });
  }
  return out;
}

async function presign(s3: S3Client, bucket: string, key: string): Promise<string> {
  return getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: PRESIGN_SECONDS });
}

/** FFmpeg's messages name presigned URLs (of segments and key files alike): show the object names instead, never a signature. */
function describer(urls: Map<string, string>, sourcePrefix: string): (msg: string) => string {
  return (msg) => {
    let out = msg;
    for (const [key, url] of urls) if (out.includes(url)) out = out.replaceAll(url, names([key], sourcePrefix));
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
