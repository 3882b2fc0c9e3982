// Instant MP4 (issue 17): simulated broadcasts of 1 h and 4 h of 720p at ~3 Mbps in 4 s MPEG-TS segments, each
// segment and then the growing live playlist written to the store as the gateway writes them, faster than real
// time, with convert replicas (processes) assembling the MP4 as it grows. Measured: final playlist (ENDLIST) PUT →
// recording ready, median of LIVE_BENCH_RUNS; side by side the whole-folder conversion of the same folder (the
// playlist PUT again as a new version, which convert then converts from the whole folder); the CPU the replicas
// spent while the broadcast ran (the live assembly's cost) per broadcast hour; the state kept in PostgreSQL.
//
// A real broadcast arrives in real time, and the assembly (≈ 20× faster than real time on a loaded 2-core host)
// is caught up when it ends: before each ENDLIST the bench waits until the assembly has put every full part up,
// and says how many segments were still left for the finish.
//
// Env: LIVE_BENCH_HOURS (default "1,4"; fractions allowed, e.g. 0.1), LIVE_BENCH_RUNS (3), LIVE_BENCH_WHOLE_RUNS (1),
// LIVE_BENCH_SPEED (segments written at this many times real time, default 40), LIVE_BENCH_REPLICAS (2),
// LIVE_BENCH_STEADY_MINUTES (5) and LIVE_BENCH_STEADY_SPEED (4): the short broadcast the live cost is measured on;
// LIVE_BENCH_BATCH (8): LIVE_ASSEMBLY_BATCH_SEGMENTS of the replicas.
// Run alone: node --import tsx bench/live-assembly.bench.ts
import { createReadStream, createWriteStream, existsSync } from "node:fs";
import { pipeline } from "node:stream/promises";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { loadavg } from "node:os";
import { join } from "node:path";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { eq } from "drizzle-orm";
import { execa } from "execa";
import { parsePlaylist, type MediaPlaylist } from "../lib/hls/index.js";
import { deletePrefix } from "../lib/s3.js";
import { createTestEnv, waitFor, type TestEnv } from "../test/harness.js";
import { startWorkers, stopWorkers, type Worker } from "../test/workers.js";
import { liveAssemblies, recordings } from "../db/schema.js";
import { assemblyStateBytes } from "../db/live-assemblies.js";
import { BENCH_CACHE, cachedHls, cacheName, HOUR_720P } from "./media.js";

// Benchmarks read their knobs directly, as the other bench files do (they are not services).
const num = (name: string, fallback: number) => (process.env[name] ? Number(process.env[name]) : fallback);
const HOURS = (process.env.LIVE_BENCH_HOURS ?? "1,4").split(",").map(Number).filter((h) => h > 0);
const RUNS = num("LIVE_BENCH_RUNS", 3);
const WHOLE_RUNS = num("LIVE_BENCH_WHOLE_RUNS", 1);
const SPEED = num("LIVE_BENCH_SPEED", 40);
const REPLICAS = num("LIVE_BENCH_REPLICAS", 2);
const STEADY_MINUTES = num("LIVE_BENCH_STEADY_MINUTES", 5);
const STEADY_SPEED = num("LIVE_BENCH_STEADY_SPEED", 4);
const PART_MB = 16;
const BATCH = num("LIVE_BENCH_BATCH", 8);
const TARGET_SECONDS = 5;

/**
 * `times` hours of the cached hour back to back with continuing timestamps, made once: the hour's segments joined
 * into one MPEG-TS file, read `times` times by FFmpeg's concat demuxer (which shifts each pass's timestamps by the
 * file's duration) and cut again by its HLS muxer. (-stream_loop cannot seek back in an HLS input.)
 */
async function cachedHours(times: number): Promise<{ dir: string; playlist: string }> {
  const hour = await cachedHls(HOUR_720P);
  if (times <= 1) return { dir: hour.dir, playlist: hour.playlist };
  const dir = join(BENCH_CACHE, `${cacheName({ ...HOUR_720P, seconds: 3600 * times })}-loop`);
  if (existsSync(join(dir, ".complete"))) return { dir, playlist: "index.m3u8" };
  const tmp = `${dir}.partial-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  process.stderr.write(`making ${times} h of 720p from the cached hour (once; later runs reuse it)\n`);
  const parsed = parsePlaylist(await readFile(join(hour.dir, hour.playlist), "utf8"), hour.playlist) as MediaPlaylist;
  const joined = join(tmp, "hour.ts");
  const out = createWriteStream(joined);
  for (const s of parsed.segments) await pipeline(createReadStream(join(hour.dir, s.uri)), out, { end: false });
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  const list = join(tmp, "list.txt");
  await writeFile(list, Array.from({ length: times }, () => `file '${joined}'`).join("\n"));
  await execa("ffmpeg", ["-hide_banner", "-loglevel", "error", "-f", "concat", "-safe", "0", "-i", list, "-map", "0", "-c", "copy",
    "-f", "hls", "-hls_time", "4", "-hls_playlist_type", "vod", "-hls_segment_filename", join(tmp, "seg%05d.ts"), join(tmp, "index.m3u8")]);
  await rm(joined);
  await rm(list);
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
  await writeFile(join(dir, ".complete"), "index.m3u8\n");
  return { dir, playlist: "index.m3u8" };
}

interface Segment {
  uri: string;
  duration: number;
  file: string;
}

/** The first `hours` of a cached folder's segments. */
async function broadcastSegments(hours: number): Promise<Segment[]> {
  const { dir, playlist } = await cachedHours(Math.ceil(hours));
  const parsed = parsePlaylist(await readFile(join(dir, playlist), "utf8"), playlist) as MediaPlaylist;
  const out: Segment[] = [];
  let t = 0;
  for (const s of parsed.segments) {
    if (t >= hours * 3600 - 0.01) break;
    out.push({ uri: s.uri, duration: s.duration, file: join(dir, s.uri) });
    t += s.duration;
  }
  return out;
}

/** The playlist the gateway writes: an event playlist, ENDLIST only once finished. */
function playlistText(segments: Segment[], n: number, ended: boolean, note = ""): string {
  const target = Math.ceil(Math.max(...segments.map((s) => s.duration)));
  const lines = ["#EXTM3U", "#EXT-X-VERSION:3", `#EXT-X-TARGETDURATION:${target}`, "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-PLAYLIST-TYPE:EVENT"];
  for (let i = 0; i < n; i++) lines.push(`#EXTINF:${segments[i]!.duration.toFixed(6)},`, segments[i]!.uri);
  if (ended) lines.push("#EXT-X-ENDLIST");
  if (note) lines.push(note);
  return `${lines.join("\n")}\n`;
}

/** CPU seconds a process and its waited-for children (FFmpeg) used, from /proc. */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ").map(Number);
  // utime, stime, cutime, cstime are fields 14-17 (1-based), i.e. 11-14 after the command name.
  return (f[11]! + f[12]! + f[13]! + f[14]!) / 100;
}

async function replicasCpu(workers: Worker[]): Promise<number> {
  let sum = 0;
  for (const w of workers) sum += await cpuSeconds(w.proc.pid!);
  return sum;
}

async function put(env: TestEnv, key: string, body: Buffer | string): Promise<string> {
  const r = await env.s3.send(new PutObjectCommand({ Bucket: env.config.s3.hlsBucket, Key: key, Body: body }));
  return (r.ETag ?? "").replaceAll('"', "");
}

async function readyRow(env: TestEnv, prefix: string, etag: string) {
  return waitFor(`${prefix} to be ready`, async () => {
    const [r] = await env.db.select().from(recordings).where(eq(recordings.sourcePrefix, prefix));
    return r && r.playlistEtag === etag && (r.status === "ready" || r.status === "failed") ? r : undefined;
  }, 3_600_000, 50);
}

interface LiveRun {
  /** Where the finish's time went, from the replica's log line. */
  stages: string;
  ready: number;
  cpuPerHour: number;
  stateBytes: number;
  leftForFinish: number;
  load: number;
  size: number;
  duration: number;
  writeSeconds: number;
}

async function broadcast(env: TestEnv, workers: Worker[], prefix: string, segments: Segment[], hours: number, speed = SPEED): Promise<LiveRun> {
  const cpu0 = await replicasCpu(workers);
  const t0 = performance.now();
  const perSegmentMs = 4000 / speed;
  for (let i = 0; i < segments.length; i++) {
    await put(env, `${prefix}/${segments[i]!.uri}`, await readFile(segments[i]!.file));
    await put(env, `${prefix}/index.m3u8`, playlistText(segments, i + 1, false));
    const ahead = t0 + (i + 1) * perSegmentMs - performance.now();
    if (ahead > 0) await new Promise((r) => setTimeout(r, ahead));
  }
  const writeSeconds = (performance.now() - t0) / 1000;
  // Caught up as a real-time broadcast would be: every full part is up (fewer than one part's segments left,
  // plus fewer than a batch not yet remuxed).
  const sample = await Promise.all(segments.slice(0, 20).map((s) => stat(s.file).then((x) => x.size)));
  // Segments per part, counted generously (the MP4's media is a little smaller than the MPEG-TS it came from).
  const perPart = Math.ceil((PART_MB * 1024 * 1024) / (0.9 * (sample.reduce((n, x) => n + x, 0) / sample.length))) + 1;
  const row = await waitFor(`the assembly of ${prefix} to catch up`, async () => {
    const [a] = await env.db.select().from(liveAssemblies).where(eq(liveAssemblies.sourcePrefix, prefix));
    if (a?.status === "abandoned") throw new Error(`the assembly was given up: ${a.reason}`);
    return a && a.segmentsDone >= segments.length - perPart - (BATCH - 1) && a.leaseOwner === null ? a : undefined;
  }, 3_600_000, 250);
  const stateBytes = await assemblyStateBytes(env.db, prefix);
  const cpu = (await replicasCpu(workers)) - cpu0;
  const load = loadavg()[0]!;
  const tEnd = performance.now();
  const etag = await put(env, `${prefix}/index.m3u8`, playlistText(segments, segments.length, true));
  const rec = await readyRow(env, prefix, etag);
  const ready = (performance.now() - tEnd) / 1000;
  if (rec.status !== "ready") throw new Error(`${prefix} failed: ${rec.error}`);
  const finished = workers.flatMap((w) => w.output).filter((l) => l.includes('"msg":"live MP4 completed"') && l.includes(`"sourcePrefix":"${prefix}"`)).at(-1);
  const f = finished ? (JSON.parse(finished) as Record<string, number>) : undefined;
  const stages = f ? `read ${f.readMs} ms, moov ${f.moovMs} ms, last uploads ${f.uploadMs} ms, store's CompleteMultipartUpload ${f.completeMs} ms, checks ${f.verifyMs} ms` : "not finished from the live assembly";
  return { stages, ready, cpuPerHour: cpu / hours, stateBytes, leftForFinish: segments.length - row.segmentsDone, load, size: rec.fileSizeBytes ?? 0, duration: rec.durationSeconds ?? 0, writeSeconds };
}

async function wholeFolder(env: TestEnv, prefix: string, segments: Segment[], run: number): Promise<number> {
  const t0 = performance.now();
  const etag = await put(env, `${prefix}/index.m3u8`, playlistText(segments, segments.length, true, `# whole-folder run ${run}`));
  const rec = await readyRow(env, prefix, etag);
  if (rec.status !== "ready") throw new Error(`${prefix} whole-folder conversion failed: ${rec.error}`);
  return (performance.now() - t0) / 1000;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const env = await createTestEnv("bench-live", { LIVE_ASSEMBLY_PART_MB: String(PART_MB), LIVE_ASSEMBLY_BATCH_SEGMENTS: String(BATCH) });
let workers: Worker[] = [];
try {
  workers = await startWorkers(env, "functions/convert/main.ts", REPLICAS);
  const table: string[] = [];
  // The cost while live, as a real broadcast pays it: segments at a pace the assembly keeps up with (one segment
  // per update; one FFmpeg run per LIVE_ASSEMBLY_BATCH_SEGMENTS of them).
  const steadyHours = STEADY_MINUTES / 60;
  const steady = STEADY_MINUTES <= 0 ? undefined : await broadcast(env, workers, "bench/live-steady", (await broadcastSegments(steadyHours)), steadyHours, STEADY_SPEED);
  await deletePrefix(env.s3, env.config.s3.hlsBucket, "bench/live-steady/");
  await deletePrefix(env.s3, env.config.s3.recordingsBucket, "bench/live-steady/");
  if (steady) console.log(`  steady state (${STEADY_MINUTES} min at ${STEADY_SPEED}× real time, one segment per update, remuxed in batches of ${BATCH}): replicas' CPU ${steady.cpuPerHour.toFixed(1)} s per broadcast hour (${(steady.cpuPerHour / 36).toFixed(2)} % of a core); ENDLIST PUT → ready ${steady.ready.toFixed(2)} s; load ${steady.load.toFixed(1)}`);
  for (const hours of HOURS) {
    const segments = await broadcastSegments(hours);
    const runs: LiveRun[] = [];
    const whole: number[] = [];
    for (let run = 1; run <= RUNS; run++) {
      const prefix = `bench/live-${hours}h-${run}`;
      const r = await broadcast(env, workers, prefix, segments, hours);
      runs.push(r);
      console.log(`  ${hours} h run ${run}: written in ${r.writeSeconds.toFixed(0)} s (${(hours * 3600 / r.writeSeconds).toFixed(0)}× real time); ENDLIST PUT → ready ${r.ready.toFixed(2)} s (${r.leftForFinish} segments left for the finish); replicas' CPU ${r.cpuPerHour.toFixed(1)} s per broadcast hour; state ${(r.stateBytes / 1024).toFixed(0)} KB; MP4 ${(r.size / 1e9).toFixed(2)} GB, ${r.duration.toFixed(1)} s; load ${r.load.toFixed(1)}\n    finish: ${r.stages}`);
      if (run <= WHOLE_RUNS) {
        const w = await wholeFolder(env, prefix, segments, run);
        whole.push(w);
        console.log(`  ${hours} h run ${run}: whole-folder conversion of the same folder (playlist PUT → ready) ${w.toFixed(1)} s; load ${loadavg()[0]!.toFixed(1)}`);
      }
      // Each run's folder and MP4 go (a 4 h run is 5-6 GB of each).
      await deletePrefix(env.s3, env.config.s3.hlsBucket, `${prefix}/`);
      await deletePrefix(env.s3, env.config.s3.recordingsBucket, `${prefix}/`);
    }
    const ready = median(runs.map((r) => r.ready));
    const w = whole.length ? median(whole) : NaN;
    table.push(`| ${hours} h (${segments.length} segments) | ${ready.toFixed(2)} s (runs ${runs.map((r) => r.ready.toFixed(2)).join(", ")}) | ${Number.isNaN(w) ? "not run" : `${w.toFixed(1)} s`} | ${Number.isNaN(w) ? "" : `${(w / ready).toFixed(1)}×`} | ${median(runs.map((r) => r.cpuPerHour)).toFixed(1)} s | ${(median(runs.map((r) => r.stateBytes)) / hours / 1024).toFixed(0)} KB | ${ready < TARGET_SECONDS ? "met" : "NOT met"} |`);
  }
  console.log(`\nlive assembly (instant MP4), ${REPLICAS} convert replicas, segments written at ${SPEED}× real time, ${PART_MB} MB parts; load average now ${loadavg().map((l) => l.toFixed(1)).join(" ")}`);
  if (steady) console.log(`live cost: replicas' CPU ${steady.cpuPerHour.toFixed(1)} s per broadcast hour in steady state (one segment per update, remuxed in batches of ${BATCH})`);
  console.log("| broadcast | ENDLIST PUT → ready (median) | whole-folder conversion, same folder | whole / live | replicas' CPU per broadcast hour (segments in batches, as written faster than real time) | state per broadcast hour | target < 5 s |");
  console.log("| --- | --- | --- | --- | --- | --- | --- |");
  for (const line of table) console.log(line);
} finally {
  await stopWorkers(workers);
  await env.close();
}
