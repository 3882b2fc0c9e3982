import { createHash, randomBytes } from "node:crypto";
import { CompleteMultipartUploadCommand, CreateMultipartUploadCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, UploadPartCommand, type S3Client } from "@aws-sdk/client-s3";
import { execa } from "execa";
import { Counter, Gauge, type Registry } from "prom-client";
import { dieWithParent } from "../../lib/child.js";
import { resolveFfmpeg } from "../../lib/ffmpeg.js";
import { HlsError, looksFinished, parsePlaylist, readPlaylist, resolveSegments, type MasterPlaylist, type MediaPlaylist, type ResolvedSegment, type Source } from "../../lib/hls/index.js";
import { folderOf, listPrefix, liveHeadKey, recordingKeys, recordingName } from "../../lib/layout.js";
import { abortMultipartUpload, abortOpenUploads, deleteKeys, isNoSuchUpload, listObjects } from "../../lib/s3.js";
import { sleep } from "../../lib/time.js";
import { abandonAssembly, addAssemblyPart, assemblyParts, nextPartNumber, completeAssembly, countActiveAssemblies, createAssembly, deleteAssembly, getAssembly, lastPartSize, releaseAssemblyLease, setAssemblyHead, takeAssemblyLease } from "../../db/live-assemblies.js";
import { getRecordingBySourcePrefix } from "../../db/recordings.js";
import type { LiveAssembly } from "../../db/schema.js";
import { TransientError, type HandlerContext, type HandlerResult } from "../runtime/handler.js";
import { codecSignature, FragmentError, readFragmented, readInit, type Run, type SegmentMedia, type TrackInit } from "./fragments.js";
import { buildMoov, ftyp, joinRuns, MDAT_HEADER_BYTES, packRuns, TimelineError, unpackRuns, videoSize } from "./moov.js";
import { alignFreeBytes, alignPadding } from "./part-alignment.js";
import type { OutputFacts, Track } from "./remux.js";

/**
 * Live assembly ("instant MP4"): a broadcast's faststart MP4 is built while it is live, so that at
 * #EXT-X-ENDLIST only its tail is left to do.
 *
 * Driven by the store's events, not by the gateway: every update of a live media playlist (any packager's)
 * reaches convert, which calls `advanceLiveAssembly`. Under a short lease in PostgreSQL (another replica
 * holding it: skip, the next update catches up; a missed update is harmless, each one processes every
 * segment not yet assembled) the new complete segments are remuxed one by one by FFmpeg into fragmented MP4
 * (-c copy -copyts: the codec boxes and packets are FFmpeg's, as in the whole-folder path), whose sample
 * tables are read (fragments.ts), and the media is appended to a multipart upload of the final MP4 key in
 * parts of LIVE_ASSEMBLY_PART_MB. Each part's sample tables are stored packed with it (live_assembly_parts),
 * so a replica killed with -9 loses nothing another cannot take over. The first segments (at least 5 MB,
 * held back for part 1, which also carries ftyp and moov) and the segments after the last part are not
 * stored: they are in the bucket and are read again, deterministically, at the end or on takeover.
 *
 * At #EXT-X-ENDLIST convert claims the recording as always and calls `finishLiveAssembly`: the remaining
 * segments become the last part, the moov is written from the tables (moov.ts), part 1 = ftyp + moov +
 * mdat header + head media, CompleteMultipartUpload. Anything the incremental MP4 could get wrong (a
 * discontinuity, a format change, a rewritten playlist, a master with renditions, encryption, byte ranges,
 * fMP4 segments, a timestamp jump, damage, missing state) aborts the upload and answers "fallback": the
 * whole-folder path makes the MP4 instead.
 */

/** S3's smallest part: the held-back head makes part 1 at least this big with ftyp and moov on top. */
const HEAD_BYTES = 5 * 1024 * 1024;
/**
 * Segments remuxed by one FFmpeg run when catching up (at the end, after a takeover or missed updates): the
 * segments' bytes joined are one MPEG-TS stream, as the whole-folder path's HLS demuxer reads them, and one
 * process start serves them all. Batches run a few at once.
 */
const BATCH_SEGMENTS = 8;
const PARALLEL_BATCHES = 3;
/** A part waits for at most this many segments (a broadcast whose first minutes are nearly empty misjudges a part's size). */
const MAX_PART_SEGMENTS = 64;
/** Per replica, segments remuxed but not yet in an uploaded part are kept in memory up to this many bytes. */
const CACHE_LIMIT_BYTES = 256 * 1024 * 1024;

export type FallbackReason =
  | "disabled" | "short" | "gap" | "master" | "renditions" | "subtitles" | "discontinuity" | "byte-ranges" | "fmp4" | "encryption"
  | "sliding-window" | "playlist-changed" | "several-playlists" | "codec" | "format-change" | "timestamp-jump" | "damaged"
  | "state-missing" | "unreadable-segment" | "nondeterministic";

const metrics = {
  fallbacks: new Counter({ name: "live_assembly_fallbacks_total", help: "Live assemblies given up for the whole-folder path, by reason", labelNames: ["reason"], registers: [] }),
  finished: new Counter({ name: "live_assembly_finished_total", help: "MP4s finished from a live assembly", registers: [] }),
  segments: new Counter({ name: "live_assembly_segments_total", help: "Segments remuxed by the live assembly", registers: [] }),
  parts: new Counter({ name: "live_assembly_parts_total", help: "Parts appended to live assemblies' uploads", registers: [] }),
  finishSeconds: new Gauge({ name: "live_assembly_last_finish_seconds", help: "Seconds the last finish took (ENDLIST claim to complete upload)", registers: [] }),
};

const metricNames = {
  live_assembly_fallbacks_total: "fallbacks",
  live_assembly_finished_total: "finished",
  live_assembly_segments_total: "segments",
  live_assembly_parts_total: "parts",
  live_assembly_last_finish_seconds: "finishSeconds",
} as const;

/** Registers the live assembly's metrics on a replica's registry, with the gauge of assemblies in progress. */
export function registerLiveAssemblyMetrics(registry: Registry, db: HandlerContext["db"]): void {
  for (const [name, m] of Object.entries(metricNames)) if (!registry.getSingleMetric(name)) registry.registerMetric(metrics[m]);
  if (registry.getSingleMetric("live_assemblies_active")) return;
  new Gauge({
    name: "live_assemblies_active",
    help: "Live assemblies in progress (broadcasts whose MP4 is being built)",
    registers: [registry],
    async collect() {
      this.set(await countActiveAssemblies(db).catch(() => 0));
    },
  });
}

class Fallback extends Error {
  constructor(readonly reason: FallbackReason, message: string) {
    super(message);
  }
}

/** Consecutive segments [first, first + count) remuxed by one FFmpeg run. */
interface Piece extends SegmentMedia {
  first: number;
  count: number;
}

interface Cached {
  uploadId: string;
  /** By their first segment. */
  segments: Map<number, Piece>;
  bytes: number;
  used: number;
}
/** Segments this replica remuxed and has not put in a part yet, by source prefix (a takeover simply reads them again). */
const cache = new Map<string, Cached>();

function cacheFor(sourcePrefix: string, uploadId: string): Cached {
  let c = cache.get(sourcePrefix);
  if (!c || c.uploadId !== uploadId) {
    c = { uploadId, segments: new Map(), bytes: 0, used: 0 };
    cache.set(sourcePrefix, c);
  }
  c.used = Date.now();
  let total = [...cache.values()].reduce((n, x) => n + x.bytes, 0);
  for (const [k, x] of [...cache.entries()].sort((a, b) => a[1].used - b[1].used)) {
    if (total <= CACHE_LIMIT_BYTES || x === c) continue;
    total -= x.bytes;
    cache.delete(k);
  }
  return c;
}

function forget(c: Cached, below: number): void {
  for (const [i, s] of c.segments) {
    if (i + s.count > below) continue;
    c.bytes -= s.media.length;
    c.segments.delete(i);
  }
}

/** Which segments of a playlist the incremental MP4 can take, or why not. */
function eligibility(segments: ResolvedSegment[], mediaSequence: number): Fallback | undefined {
  if (mediaSequence !== 0) return new Fallback("sliding-window", "the playlist does not list the broadcast from its first segment");
  for (const [i, s] of segments.entries()) {
    if (i > 0 && s.discontinuity) return new Fallback("discontinuity", "the playlist has #EXT-X-DISCONTINUITY (a reconnect)");
    if (s.byterange) return new Fallback("byte-ranges", "the playlist's segments are byte ranges");
    if (s.map) return new Fallback("fmp4", "the segments are fMP4 (#EXT-X-MAP)");
    if (s.aes) return new Fallback("encryption", "the segments are encrypted");
  }
  return undefined;
}

function uriHash(segments: ResolvedSegment[], n: number): string {
  const h = createHash("sha256");
  for (let i = 0; i < n; i++) h.update(`${segments[i]!.key}\n`);
  return h.digest("hex").slice(0, 32);
}

/** Consecutive segments, remuxed by one FFmpeg run to fragmented MP4 with their source timestamps (-copyts). */
async function readBatch(ctx: HandlerContext, segments: ResolvedSegment[], first: number, count: number, hvc1: boolean, signal: AbortSignal): Promise<Piece> {
  const keys = segments.slice(first, first + count).map((s) => s.key);
  const input = Buffer.concat(
    await Promise.all(keys.map(async (key) => {
      const res = await ctx.s3.send(new GetObjectCommand({ Bucket: ctx.config.s3.hlsBucket, Key: key }), { abortSignal: signal });
      return Buffer.from(await res.Body!.transformToByteArray());
    })),
  );
  const tools = resolveFfmpeg(ctx.config.ffmpeg);
  const [command, args] = dieWithParent(tools.ffmpeg, [
    "-hide_banner", "-nostats", "-loglevel", "error",
    "-f", "mpegts", "-copyts", "-i", "pipe:0",
    // The streams the whole-folder path maps: the first video and the first audio.
    "-map", "0:v:0?", "-map", "0:a:0?", "-c", "copy",
    ...(hvc1 ? ["-tag:v", "hvc1"] : []),
    "-bsf:a", "aac_adtstoasc",
    "-f", "mp4", "-movflags", "frag_custom+empty_moov+default_base_moof+delay_moov+frag_discont",
    "-fflags", "+bitexact", "pipe:1",
  ]);
  const r = await execa(command, args, { input, encoding: "buffer", maxBuffer: 1024 * 1024 * 1024, reject: false, cancelSignal: signal, forceKillAfterDelay: 2000 });
  signal.throwIfAborted();
  const named = keys.length === 1 ? keys[0]! : `${keys[0]} … ${keys[keys.length - 1]}`;
  if (r.exitCode !== 0) throw new Fallback("unreadable-segment", `FFmpeg could not read ${named}: ${Buffer.from(r.stderr).toString().trim().split("\n").slice(-2).join("; ")}`);
  metrics.segments.inc(count);
  try {
    return { ...readFragmented(Buffer.from(r.stdout)), first, count };
  } catch (err) {
    if (err instanceof FragmentError) throw new Fallback("unreadable-segment", `${named}: ${err.message}`);
    throw err;
  }
}

/** The codecs an MP4 takes as they are (the whole-folder path copies exactly these too). */
function checkCodecs(tracks: TrackInit[]): Fallback | undefined {
  for (const t of tracks) {
    if (t.kind === "video" && !["avc1", "hvc1", "hev1"].includes(t.format)) return new Fallback("codec", `video ${t.format} is re-encoded by the whole-folder path`);
    if (t.kind === "audio" && !(t.format === "mp4a" && t.objectType === 0x40)) return new Fallback("codec", `audio ${t.format} is re-encoded by the whole-folder path`);
  }
  if (!tracks.some((t) => t.kind === "video" || t.kind === "audio")) return new Fallback("codec", "the segments hold no audio or video");
  return undefined;
}

/**
 * Segments [from, to) as pieces in order: cached ones from memory, the rest in batches remuxed a few at once
 * (cached when `c` is given). Every piece must match `signature`.
 */
async function readPieces(ctx: HandlerContext, segments: ResolvedSegment[], from: number, to: number, c: Cached | undefined, hvc1: boolean, signature: Buffer | undefined, signal: AbortSignal, perRun = BATCH_SEGMENTS): Promise<Piece[]> {
  const plan: { first: number; count: number; cached?: Piece }[] = [];
  for (let i = from; i < to; ) {
    // A cached piece may reach past `to` (read ahead earlier): it is taken whole.
    const cached = c?.segments.get(i);
    if (cached) {
      plan.push({ first: i, count: cached.count, cached });
      i += cached.count;
      continue;
    }
    let n = 1;
    while (n < perRun && i + n < to && !c?.segments.has(i + n)) n++;
    plan.push({ first: i, count: n });
    i += n;
  }
  const out: Piece[] = new Array(plan.length);
  let next = 0;
  const worker = async () => {
    while (next < plan.length) {
      const k = next++;
      const step = plan[k]!;
      const piece = step.cached ?? (await readBatch(ctx, segments, step.first, step.count, hvc1, signal));
      if (!step.cached && c) {
        c.segments.set(piece.first, piece);
        c.bytes += piece.media.length;
      }
      if (signature && !codecSignature(piece.init).equals(signature)) throw new Fallback("format-change", `${segments[piece.first]!.key} changes the codec configuration`);
      out[k] = piece;
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL_BATCHES, plan.length) }, worker));
  return out;
}

async function abortUpload(s3: S3Client, bucket: string, key: string, uploadId: string): Promise<void> {
  await abortMultipartUpload(s3, bucket, key, uploadId).catch(() => {});
}

/**
 * The store no longer has the assembly's upload: an earlier finish completed it and died before recording that,
 * or it was aborted behind the assembly's back (a lifecycle rule, an operator; the sweep deletes the row first).
 * Either way the parts are out of reach: the whole-folder path makes the MP4.
 */
function uploadGone(err: unknown): never {
  if (isNoSuchUpload(err)) throw new Fallback("state-missing", "the assembly's multipart upload is no longer open (completed by a finish that died, or aborted)");
  throw err;
}

async function giveUp(ctx: HandlerContext, row: LiveAssembly, f: Fallback): Promise<void> {
  await abortUpload(ctx.s3, ctx.config.s3.recordingsBucket, row.mp4Key, row.uploadId);
  await deleteHead(ctx, row.mp4Key);
  await abandonAssembly(ctx.db, row.sourcePrefix, `${f.reason}: ${f.message}`);
  cache.delete(row.sourcePrefix);
  metrics.fallbacks.inc({ reason: f.reason });
  ctx.log.info({ sourcePrefix: row.sourcePrefix, reason: f.reason, detail: f.message, stage: "live" }, "live assembly given up; the whole-folder path will make the MP4 at the end");
}

/** Renews a lease while a step runs; `lost` aborts when another replica took the assembly over. */
function keepLease(ctx: HandlerContext, sourcePrefix: string, owner: string, leaseMs: number) {
  const lost = new AbortController();
  const timer = setInterval(() => {
    void takeAssemblyLease(ctx.db, sourcePrefix, owner, leaseMs).then(
      (row) => (row ? undefined : lost.abort(new TransientError(`the live assembly of ${sourcePrefix} was taken over`))),
      () => {},
    );
  }, Math.max(500, leaseMs / 3));
  return { signal: AbortSignal.any([ctx.signal, lost.signal]), stop: () => clearInterval(timer) };
}

/**
 * One live playlist update (`parsed` is the playlist convert already read): assemble every complete segment
 * not yet assembled. Never throws for the media: what cannot be assembled is left to the whole-folder path.
 */
export async function advanceLiveAssembly(ctx: HandlerContext, playlistKey: string, parsed: MasterPlaylist | MediaPlaylist): Promise<HandlerResult> {
  const settings = ctx.config.functions.liveAssembly;
  if (!settings.enabled) return "ignored";
  let media: MediaPlaylist;
  let segments: ResolvedSegment[];
  const sourcePrefix = folderOf(playlistKey);
  try {
    if (parsed.isMasterPlaylist) return "ignored";
    media = parsed;
    if (media.segments.length === 0) return "ignored";
    segments = resolveSegments(playlistKey, media, sourcePrefix);
  } catch (err) {
    if (err instanceof HlsError) return "ignored";
    throw err;
  }
  const log = ctx.log.child({ sourcePrefix, playlist: playlistKey, stage: "live" });
  const unfit = media.segments.some((s) => s.gap) ? new Fallback("gap", "the playlist marks missing segments (#EXT-X-GAP)") : eligibility(segments, media.mediaSequenceBase ?? 0);
  let row = await getAssembly(ctx.db, sourcePrefix);
  if (!row) {
    if (unfit) return "ignored";
    // A late update of a broadcast already converted (or being converted) must not start a second assembly.
    const rec = await getRecordingBySourcePrefix(ctx.db, sourcePrefix);
    if (rec && rec.status !== "live") return "ignored";
    if (!(await onlyPlaylist(ctx, sourcePrefix, playlistKey))) return "ignored";
    const mp4Key = recordingKeys(sourcePrefix, recordingName(sourcePrefix, playlistKey)).mp4;
    const up = await ctx.s3.send(new CreateMultipartUploadCommand({ Bucket: ctx.config.s3.recordingsBucket, Key: mp4Key, ContentType: "video/mp4" }), { abortSignal: ctx.signal });
    const made = await createAssembly(ctx.db, { sourcePrefix, playlistKey, mp4Key, uploadId: up.UploadId! });
    if (!made.created) await abortUpload(ctx.s3, ctx.config.s3.recordingsBucket, mp4Key, up.UploadId!);
    else log.info({ key: mp4Key }, "live assembly started");
    row = made.row;
  }
  if (row.status !== "assembling") return "ignored";
  const owner = `${ctx.worker}/${randomBytes(4).toString("hex")}`;
  const taken = await takeAssemblyLease(ctx.db, sourcePrefix, owner, settings.leaseMs);
  if (!taken) {
    log.debug("another replica holds the live assembly; the next update catches up");
    return "ignored";
  }
  row = taken;
  const lease = keepLease(ctx, sourcePrefix, owner, settings.leaseMs);
  const t0 = performance.now();
  try {
    if (row.playlistKey !== playlistKey) throw new Fallback("several-playlists", `${playlistKey} is a second playlist in the folder of ${row.playlistKey}`);
    if (unfit) throw unfit;
    // Read before another replica's newer update was assembled: nothing to do (a playlist really cut short is refused at the end).
    if (segments.length < row.segmentsDone) return "ignored";
    if (row.uriHash && uriHash(segments, row.segmentsDone) !== row.uriHash) {
      throw new Fallback("playlist-changed", "the playlist no longer lists the segments already assembled");
    }
    for (let round = 0; ; round++) {
      const done = await step(ctx, row, segments, owner, lease.signal);
      if (done.parts || done.head) log.info({ head: done.head, parts: done.parts, segmentsDone: done.segmentsDone, listed: segments.length, ms: Math.round(performance.now() - t0) }, "live assembly advanced");
      // Updates that landed while this one held the lease were skipped by the other replicas: take them in too.
      const fresh = round < 100 ? await newerSegments(ctx, playlistKey, segments.length, lease.signal) : undefined;
      if (!fresh) return "done";
      if (uriHash(fresh, segments.length) !== uriHash(segments, segments.length)) throw new Fallback("playlist-changed", "the playlist no longer lists the segments already assembled");
      segments = fresh;
      const again = await getAssembly(ctx.db, sourcePrefix);
      if (!again || again.status !== "assembling" || again.leaseOwner !== owner) return "done";
      row = again;
    }
  } catch (err) {
    if (err instanceof Fallback) {
      await giveUp(ctx, row, err);
      return "done";
    }
    if (lease.signal.aborted && !ctx.signal.aborted) return "ignored";
    throw err;
  } finally {
    lease.stop();
    await releaseAssemblyLease(ctx.db, sourcePrefix, owner).catch(() => {});
  }
}

/**
 * The playlist's segments when it lists more than `than` now and is still live and assemblable; undefined
 * otherwise (a finished playlist is the finish's, anything else the next update's to judge).
 */
async function newerSegments(ctx: HandlerContext, playlistKey: string, than: number, signal: AbortSignal): Promise<ResolvedSegment[] | undefined> {
  const obj = await readPlaylist(ctx.s3, ctx.config.s3.hlsBucket, playlistKey, signal).catch(() => undefined);
  if (!obj || looksFinished(obj.text)) return undefined;
  try {
    const media = parsePlaylist(obj.text, playlistKey);
    if (media.isMasterPlaylist || media.segments.some((s) => s.gap)) return undefined;
    const segments = resolveSegments(playlistKey, media, folderOf(playlistKey));
    if (segments.length <= than || eligibility(segments, media.mediaSequenceBase ?? 0)) return undefined;
    return segments;
  } catch (err) {
    if (err instanceof HlsError) return undefined;
    throw err;
  }
}

/** A folder with other playlists (a master and its renditions) is made by the whole-folder path. */
async function onlyPlaylist(ctx: HandlerContext, sourcePrefix: string, playlistKey: string): Promise<boolean> {
  for await (const o of listObjects(ctx.s3, ctx.config.s3.hlsBucket, listPrefix(sourcePrefix))) {
    if (o.key !== playlistKey && /\.m3u8$/i.test(o.key)) return false;
  }
  return true;
}

/** The work of one update: decide the head once, then upload every full part the new segments make. */
async function step(ctx: HandlerContext, row: LiveAssembly, segments: ResolvedSegment[], owner: string, signal: AbortSignal): Promise<{ head: boolean; parts: number; segmentsDone: number }> {
  const c = cacheFor(row.sourcePrefix, row.uploadId);
  let head = false;
  let segmentsDone = row.segmentsDone;
  let signature = row.init ? codecSignature(row.init) : undefined;
  let hvc1 = row.init ? readInitFormat(row.init) === "hvc1" : false;
  let init = row.init;
  // One FFmpeg run per segment cost more CPU than ingesting the broadcast. While live, segments are remuxed only
  // in whole batches of LIVE_ASSEMBLY_BATCH_SEGMENTS, and once the head is up only when a part's worth has landed
  // (estimated from the latest part, or the head), so they go straight into a part: nothing waits in one
  // replica's memory for another replica to remux again. The finish takes what is left (less than a part).
  const batch = ctx.config.functions.liveAssembly.batchSegments;
  let readable: number;
  if (row.headSegments === null) {
    let frontier = segmentsDone;
    for (let p = c.segments.get(frontier); p; p = c.segments.get(frontier)) frontier += p.count;
    readable = frontier + Math.floor((segments.length - frontier) / batch) * batch;
    if (readable === frontier) return { head: false, parts: 0, segmentsDone };
  } else {
    const last = (await lastPartSize(ctx.db, row.sourcePrefix)) ?? { bytes: row.headBytes!, segments: row.headSegments };
    const perPart = Math.ceil(ctx.config.functions.liveAssembly.partBytes / Math.max(1, last.bytes / last.segments));
    if (segments.length - segmentsDone < Math.max(batch, Math.min(perPart, MAX_PART_SEGMENTS))) return { head: false, parts: 0, segmentsDone };
    readable = segments.length;
  }

  /** Pieces from segment `from` on until they hold `min` media bytes (whole pieces), or undefined while too few have landed. */
  const collect = async (from: number, min: number) => {
    let bytes = 0;
    let end = from;
    const pieces: Piece[] = [];
    while (bytes < min && end < readable) {
      const got = await readPieces(ctx, segments, end, Math.min(readable, end + Math.max(batch, BATCH_SEGMENTS) * PARALLEL_BATCHES), c, hvc1, signature, signal, batch);
      for (const p of got) {
        if (bytes >= min) break;
        pieces.push(p);
        bytes += p.media.length;
        end = p.first + p.count;
      }
    }
    return bytes >= min ? { pieces, bytes, end } : undefined;
  };

  if (row.headSegments === null) {
    // The first segment alone decides the codecs, and its moov is the MP4's codec configuration.
    let [first] = await readPieces(ctx, segments, 0, 1, c, hvc1, undefined, signal);
    if (first!.count !== 1 || readInitFormat(first!.init) === "hev1") {
      // HEVC goes into MP4 as hvc1 (what Apple players need), as the whole-folder path writes it.
      hvc1 ||= readInitFormat(first!.init) === "hev1";
      forget(c, Infinity);
      c.segments.clear();
      c.bytes = 0;
      [first] = await readPieces(ctx, segments, 0, 1, c, hvc1, undefined, signal);
    }
    const unfit = checkCodecs(readInitTracks(first!.init));
    if (unfit) throw unfit;
    signature = codecSignature(first!.init);
    init = first!.init;
    const taken = await collect(0, HEAD_BYTES);
    if (!taken) return { head: false, parts: 0, segmentsDone };
    // Kept in the store before the row names the head, so the finish reads it back instead of remuxing it again.
    await putHead(ctx, row.mp4Key, taken.pieces, signal);
    if (!(await setAssemblyHead(ctx.db, row.sourcePrefix, owner, { init, headSegments: taken.end, headBytes: taken.bytes, uriHash: uriHash(segments, taken.end) }))) {
      throw new TransientError(`lost the live assembly of ${row.sourcePrefix}`);
    }
    head = true;
    segmentsDone = taken.end;
    forget(c, taken.end);
  }
  let parts = 0;
  let partNumber = await nextPartNumber(ctx.db, row.sourcePrefix);
  const partBytes = ctx.config.functions.liveAssembly.partBytes;
  for (;;) {
    // A part is whole pieces (whole segments) of at least partBytes; a partial one waits for more segments (or the end).
    const taken = await collect(segmentsDone, partBytes);
    if (!taken) break;
    const runs = placeRuns(taken.pieces, 0);
    try {
      joinRuns(readInitTracks(init!), runs);
    } catch (err) {
      if (err instanceof TimelineError) throw new Fallback("timestamp-jump", err.message);
      throw err;
    }
    // Zeros up to a block boundary (part-alignment.ts), inside the mdat: no sample points at them.
    const body = Buffer.concat([...taken.pieces.map((s) => s.media), Buffer.alloc(alignPadding(taken.bytes))]);
    const res = await ctx.s3.send(new UploadPartCommand({ Bucket: ctx.config.s3.recordingsBucket, Key: row.mp4Key, UploadId: row.uploadId, PartNumber: partNumber, Body: body, ContentLength: body.length }), { abortSignal: signal }).catch(uploadGone);
    const ok = await addAssemblyPart(ctx.db, owner, { sourcePrefix: row.sourcePrefix, partNumber, etag: res.ETag!, firstSegment: segmentsDone, segments: taken.end - segmentsDone, bytes: body.length, tables: packRuns(runs) }, uriHash(segments, taken.end));
    if (!ok) throw new TransientError(`lost the live assembly of ${row.sourcePrefix}`);
    metrics.parts.inc();
    parts++;
    partNumber++;
    segmentsDone = taken.end;
    forget(c, taken.end);
  }
  return { head, parts, segmentsDone };
}

/** The head object: 4 bytes of table length, the head's packed sample tables, then its media bytes. */
async function putHead(ctx: HandlerContext, mp4Key: string, pieces: Piece[], signal: AbortSignal): Promise<void> {
  const tables = packRuns(placeRuns(pieces, 0));
  const len = Buffer.alloc(4);
  len.writeUInt32BE(tables.length, 0);
  const body = Buffer.concat([len, tables, ...pieces.map((p) => p.media)]);
  await ctx.s3.send(new PutObjectCommand({ Bucket: ctx.config.s3.recordingsBucket, Key: liveHeadKey(mp4Key), Body: body, ContentLength: body.length }), { abortSignal: signal });
}

/** The head kept while live, or undefined when it is missing or not the one the row names (then it is remuxed again). */
async function getHead(ctx: HandlerContext, row: LiveAssembly, signal: AbortSignal): Promise<{ runs: { run: Run; base: number }[]; media: Buffer } | undefined> {
  const res = await ctx.s3.send(new GetObjectCommand({ Bucket: ctx.config.s3.recordingsBucket, Key: liveHeadKey(row.mp4Key) }), { abortSignal: signal }).catch((err: unknown) => {
    if (signal.aborted) throw err;
    return undefined;
  });
  if (!res?.Body) return undefined;
  const body = Buffer.from(await res.Body.transformToByteArray());
  if (body.length < 4) return undefined;
  const n = body.readUInt32BE(0);
  if (4 + n + row.headBytes! !== body.length) return undefined;
  try {
    return { runs: unpackRuns(body.subarray(4, 4 + n)), media: body.subarray(4 + n) };
  } catch {
    return undefined;
  }
}

async function deleteHead(ctx: Pick<HandlerContext, "s3" | "config">, mp4Key: string): Promise<void> {
  await deleteKeys(ctx.s3, ctx.config.s3.recordingsBucket, [liveHeadKey(mp4Key)]).catch(() => {});
}

function readInitTracks(init: Buffer): TrackInit[] {
  return readInit(init);
}

function readInitFormat(init: Buffer): string | undefined {
  return readInitTracks(init).find((t) => t.kind === "video")?.format;
}

/** The runs of consecutive segments, each with its media offset counted from `base`. */
function placeRuns(batch: SegmentMedia[], base: number): { run: Run; base: number }[] {
  const out: { run: Run; base: number }[] = [];
  let at = base;
  for (const s of batch) {
    for (const run of s.runs) out.push({ run, base: at });
    at += s.media.length;
  }
  return out;
}

export type LiveFinish =
  | { kind: "none" }
  | { kind: "fallback"; reason: FallbackReason }
  | { kind: "done"; mp4: string; size: number; facts: OutputFacts; tracks: Track[]; sourceBytes: number };

/**
 * At #EXT-X-ENDLIST, after convert claimed the recording: finishes the folder's live assembly if it matches the
 * final playlist, else aborts its upload and answers "fallback" (or "none" when the folder had none).
 */
export async function finishLiveAssembly(ctx: HandlerContext, src: Source, signal: AbortSignal): Promise<LiveFinish> {
  let row = await getAssembly(ctx.db, src.sourcePrefix);
  if (!row) return { kind: "none" };
  const log = ctx.log.child({ sourcePrefix: src.sourcePrefix, stage: "live-finish" });
  const recBucket = ctx.config.s3.recordingsBucket;
  if (row.status === "complete") {
    // A replica died after completing the upload and before the row was ready: the MP4 is there.
    const facts = row.facts as { size: number; facts: OutputFacts; tracks: Track[]; sourceBytes: number } | null;
    const head = await ctx.s3.send(new HeadObjectCommand({ Bucket: recBucket, Key: row.mp4Key }), { abortSignal: signal }).catch(() => undefined);
    if (facts && head?.ContentLength === facts.size) return { kind: "done", mp4: row.mp4Key, ...facts };
    await deleteAssembly(ctx.db, row.sourcePrefix);
    metrics.fallbacks.inc({ reason: "state-missing" });
    return { kind: "fallback", reason: "state-missing" };
  }
  if (row.status === "abandoned") {
    await abortUpload(ctx.s3, recBucket, row.mp4Key, row.uploadId);
    await deleteHead(ctx, row.mp4Key);
    await deleteAssembly(ctx.db, row.sourcePrefix);
    const reason = (row.reason?.split(":")[0] ?? "state-missing") as FallbackReason;
    log.info({ reason: row.reason }, "live assembly was given up while live; converting the whole folder");
    return { kind: "fallback", reason };
  }
  const t0 = performance.now();
  const owner = `${ctx.worker}/${randomBytes(4).toString("hex")}`;
  const leaseMs = ctx.config.functions.liveAssembly.leaseMs;
  const waitUntil = Date.now() + leaseMs + 2000;
  // A live update may hold the lease for a moment (or a killed replica until its lease ends).
  for (;;) {
    const taken = await takeAssemblyLease(ctx.db, src.sourcePrefix, owner, leaseMs);
    if (taken) {
      row = taken;
      break;
    }
    // The sweep removed it as idle while we waited: the folder is converted whole.
    if (!(await getAssembly(ctx.db, src.sourcePrefix))) return { kind: "none" };
    if (Date.now() > waitUntil) throw new TransientError(`the live assembly of ${src.sourcePrefix} stays held by another replica`, { retryAfterMs: 1000 });
    await sleep(100);
  }
  const lease = keepLease(ctx, src.sourcePrefix, owner, leaseMs);
  const sig = AbortSignal.any([signal, lease.signal]);
  try {
    const out = await finish(ctx, src, row, owner, sig, log);
    metrics.finished.inc();
    metrics.finishSeconds.set((performance.now() - t0) / 1000);
    log.info({ ms: Math.round(performance.now() - t0), size: out.size, duration: out.facts.duration }, "live assembly finished");
    return out;
  } catch (err) {
    if (err instanceof Fallback) {
      await abortUpload(ctx.s3, recBucket, row.mp4Key, row.uploadId);
      await deleteHead(ctx, row.mp4Key);
      await deleteAssembly(ctx.db, row.sourcePrefix);
      cache.delete(row.sourcePrefix);
      metrics.fallbacks.inc({ reason: err.reason });
      log.info({ reason: err.reason, detail: err.message }, "live assembly does not match the final playlist; converting the whole folder");
      return { kind: "fallback", reason: err.reason };
    }
    throw err;
  } finally {
    lease.stop();
    await releaseAssemblyLease(ctx.db, src.sourcePrefix, owner).catch(() => {});
  }
}

async function finish(ctx: HandlerContext, src: Source, row: LiveAssembly, owner: string, signal: AbortSignal, log: HandlerContext["log"]): Promise<Extract<LiveFinish, { kind: "done" }>> {
  const recBucket = ctx.config.s3.recordingsBucket;
  if (!ctx.config.functions.liveAssembly.enabled) throw new Fallback("disabled", "LIVE_ASSEMBLY is off");
  if (src.masterKey) throw new Fallback("master", `the folder has a master playlist ${src.masterKey}`);
  if (src.audio.length !== 1 || src.audio[0]!.segments) throw new Fallback("renditions", "the recording has separate audio renditions");
  if (src.subtitles.length) throw new Fallback("subtitles", "the recording has subtitle renditions");
  // Missing seconds (#EXT-X-GAP) are told by the whole-folder path's gap warning.
  if (src.gaps.length) throw new Fallback("gap", "the playlist marks missing segments (#EXT-X-GAP)");
  if (src.playlistKey !== row.playlistKey) throw new Fallback("several-playlists", `the final playlist ${src.playlistKey} is not the one assembled (${row.playlistKey})`);
  const unfit = eligibility(src.segments, 0);
  if (unfit) throw unfit;
  if (row.headSegments === null || row.headBytes === null || !row.init) throw new Fallback("short", "the broadcast ended before its first 5 MB were assembled");
  const segments = src.segments;
  if (segments.length < row.segmentsDone || uriHash(segments, row.segmentsDone) !== row.uriHash) throw new Fallback("playlist-changed", "the final playlist does not list the segments assembled while live");
  const parts = await assemblyParts(ctx.db, row.sourcePrefix);
  let expect = row.headSegments;
  for (const [i, p] of parts.entries()) {
    if (p.partNumber !== i + 2 || p.firstSegment !== expect) throw new Fallback("state-missing", `part ${p.partNumber} does not follow the assembled segments`);
    expect += p.segments;
  }
  if (expect !== row.segmentsDone) throw new Fallback("state-missing", "the stored parts do not cover the assembled segments");

  const signature = codecSignature(row.init);
  const hvc1 = readInitFormat(row.init) === "hvc1";
  const c = cacheFor(row.sourcePrefix, row.uploadId);
  const t0 = performance.now();
  const sourceBytesP = folderBytes(ctx, src, signal);
  const headSegments = row.headSegments;
  const [kept, tailSegs] = await Promise.all([
    getHead(ctx, row, signal),
    readPieces(ctx, segments, row.segmentsDone, segments.length, c, hvc1, signature, signal),
  ]);
  // Assemblies begun before the head was kept (or whose head object is gone) remux the head again.
  const headFrom = kept ? "kept" : "remuxed";
  const { runs: headRuns, media: headMedia } = kept ?? (await (async () => {
    const headSegs = await readPieces(ctx, segments, 0, headSegments, undefined, hvc1, signature, signal);
    return { runs: placeRuns(headSegs, 0), media: Buffer.concat(headSegs.map((s) => s.media)) };
  })());
  if (headMedia.length !== row.headBytes) throw new Fallback("nondeterministic", `the first segments remuxed to ${headMedia.length} bytes, not the ${row.headBytes} assembled while live`);
  const tailMedia = Buffer.concat(tailSegs.map((s) => s.media));
  const tRead = performance.now();

  // Every run of the MP4 in media order, with its offset from the first media byte.
  const runs = headRuns;
  let at = row.headBytes;
  for (const p of parts) {
    for (const r of unpackRuns(p.tables)) runs.push({ run: r.run, base: at });
    at += p.bytes;
  }
  runs.push(...placeRuns(tailSegs, at));
  const mediaBytes = at + tailMedia.length;
  const inits = readInitTracks(row.init);
  let tables;
  try {
    tables = joinRuns(inits, runs);
  } catch (err) {
    if (err instanceof TimelineError) throw new Fallback("timestamp-jump", err.message);
    throw err;
  }
  const head = ftyp(tables);
  // Part 1 ends on a block boundary too (part-alignment.ts): a free box after the moov takes up the difference.
  const plan = buildMoov(row.init, tables, head.length, mediaBytes, (moovBytes) => alignFreeBytes(head.length + moovBytes + MDAT_HEADER_BYTES + row.headBytes!));
  // Damage is located and told by the whole-folder path (warnings), not here.
  const target = Math.max(...segments.map((s) => s.duration));
  if (src.seconds - plan.duration > Math.max(1, target / 2)) throw new Fallback("damaged", `the segments hold ${plan.duration.toFixed(1)} s of the ${src.seconds.toFixed(1)} s the playlist lists`);

  const tMoov = performance.now();
  const mdat = Buffer.alloc(MDAT_HEADER_BYTES);
  mdat.writeUInt32BE(1, 0);
  mdat.write("mdat", 4, "latin1");
  mdat.writeBigUInt64BE(BigInt(MDAT_HEADER_BYTES + mediaBytes), 8);
  const part1 = Buffer.concat([head, plan.moov, plan.free, mdat, headMedia]);
  const lastNumber = parts.length + 2;
  const upload = (n: number, body: Buffer) => ctx.s3.send(new UploadPartCommand({ Bucket: recBucket, Key: row.mp4Key, UploadId: row.uploadId, PartNumber: n, Body: body, ContentLength: body.length }), { abortSignal: signal }).catch(uploadGone);
  const [r1, rLast] = await Promise.all([upload(1, part1), tailMedia.length ? upload(lastNumber, tailMedia) : undefined]);
  const completed = [{ PartNumber: 1, ETag: r1.ETag! }, ...parts.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag })), ...(rLast ? [{ PartNumber: lastNumber, ETag: rLast.ETag! }] : [])];
  const tUpload = performance.now();
  await ctx.s3.send(new CompleteMultipartUploadCommand({ Bucket: recBucket, Key: row.mp4Key, UploadId: row.uploadId, MultipartUpload: { Parts: completed } }), { abortSignal: signal }).catch(uploadGone);
  const tComplete = performance.now();
  const size = part1.length + (at - row.headBytes) + tailMedia.length;
  // Verified cheaply: the moov's facts are known; the stored object must have exactly the bytes written.
  const stored = await ctx.s3.send(new HeadObjectCommand({ Bucket: recBucket, Key: row.mp4Key }), { abortSignal: signal });
  if (stored.ContentLength !== size) throw new Fallback("state-missing", `the completed MP4 has ${stored.ContentLength} bytes, not ${size}`);
  // Uploads a killed replica created on this key before its assembly row existed.
  const orphans = await abortOpenUploads(ctx.s3, recBucket, row.mp4Key, signal);
  if (orphans) log.info({ aborted: orphans }, "aborted stray multipart uploads on the MP4's key");

  const video = tables.find((t) => t.init.kind === "video");
  const audio = tables.find((t) => t.init.kind === "audio");
  const dims = video ? videoSize(row.init, video.init.id) : undefined;
  const facts: OutputFacts = {
    duration: plan.duration,
    width: dims?.width ?? null,
    height: dims?.height ?? null,
    videoCodec: video ? (video.init.format === "avc1" ? "h264" : "hevc") : null,
    audioCodec: audio ? "aac" : null,
    videoTracks: video ? 1 : 0,
    audioTracks: audio ? 1 : 0,
  };
  const tracks: Track[] = [
    ...(video ? [{ input: 0, kind: "video" as const, codec: facts.videoCodec! }] : []),
    ...(audio ? [{ input: 0, kind: "audio" as const, codec: "aac", isDefault: true }] : []),
  ];
  const sourceBytes = await sourceBytesP;
  if (!(await completeAssembly(ctx.db, row.sourcePrefix, owner, { size, facts, tracks, sourceBytes }))) throw new TransientError(`lost the live assembly of ${row.sourcePrefix}`);
  cache.delete(row.sourcePrefix);
  await deleteHead(ctx, row.mp4Key);
  // Where the finish's time goes: reading the head and tail again, the moov, the last uploads, the store's CompleteMultipartUpload, the checks.
  const ms = (a: number, b: number) => Math.round(b - a);
  const stages = { readMs: ms(t0, tRead), moovMs: ms(tRead, tMoov), uploadMs: ms(tMoov, tUpload), completeMs: ms(tUpload, tComplete), verifyMs: ms(tComplete, performance.now()) };
  log.info({ parts: completed.length, part1Bytes: part1.length, mediaBytes, moovBytes: plan.moov.length, co64: plan.co64, tailSegments: tailSegs.length, headSegments, headFrom, ...stages }, "live MP4 completed");
  return { kind: "done", mp4: row.mp4Key, size, facts, tracks, sourceBytes };
}

/** Bytes of the folder's segments (the recording's sourceBytes, as the whole-folder path counts them). */
async function folderBytes(ctx: HandlerContext, src: Source, signal: AbortSignal): Promise<number> {
  const wanted = new Set(src.segments.map((s) => s.key));
  let n = 0;
  for await (const o of listObjects(ctx.s3, ctx.config.s3.hlsBucket, listPrefix(src.sourcePrefix))) {
    signal.throwIfAborted();
    if (wanted.has(o.key)) n += o.size;
  }
  return n;
}

/** The recording is ready (or failed): the assembly's row goes, and with a failure its upload. */
export async function forgetLiveAssembly(ctx: Pick<HandlerContext, "db" | "s3" | "config">, sourcePrefix: string, opts: { abort?: boolean } = {}): Promise<void> {
  const row = await getAssembly(ctx.db, sourcePrefix);
  if (row && opts.abort && row.status !== "complete") await abortUpload(ctx.s3, ctx.config.s3.recordingsBucket, row.mp4Key, row.uploadId);
  if (row) await deleteHead(ctx, row.mp4Key);
  await deleteAssembly(ctx.db, sourcePrefix);
}

/** Whether the folder has a live assembly (in any state): it was a live broadcast's only playlist. */
export async function hasLiveAssembly(ctx: HandlerContext, sourcePrefix: string): Promise<boolean> {
  return Boolean(await getAssembly(ctx.db, sourcePrefix));
}
