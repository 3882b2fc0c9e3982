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
// Two stores side by side, run by run: (a) the shared stack's store as it runs here (the Versity gateway on ext4:
// its CompleteMultipartUpload copies every part into the object), and (b) a private Versity gateway (with its own
// NATS for the bucket events and its own convert replicas) whose posix root is an XFS filesystem with reflink in a
// sparse loop-mounted image (infra/reflink-store.sh; needs root and loop devices, else the row is skipped with the
// reason): there complete clones the parts' extents, costing metadata only, as MinIO's complete keeps its parts.
//
// Env: LIVE_BENCH_HOURS (default "1,4"; fractions allowed, e.g. 0.1), LIVE_BENCH_RUNS (3), LIVE_BENCH_WHOLE_RUNS (1),
// LIVE_BENCH_SPEED (segments written at this many times real time, default 40), LIVE_BENCH_REPLICAS (2),
// LIVE_BENCH_STEADY_MINUTES (5) and LIVE_BENCH_STEADY_SPEED (4): the short broadcast the live cost is measured on;
// LIVE_BENCH_BATCH (8): LIVE_ASSEMBLY_BATCH_SEGMENTS of the replicas.
// Run alone: node --import tsx bench/live-assembly.bench.ts
import { createReadStream, createWriteStream, existsSync } from "node:fs";
import { pipeline } from "node:stream/promises";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { eq } from "drizzle-orm";
import { execa } from "execa";
import { parsePlaylist, type MediaPlaylist } from "../lib/hls/index.js";
import type { Config } from "../lib/config.js";
import { deletePrefix } from "../lib/s3.js";
import { detectStore } from "../infra/provision.js";
import { createTestEnv, waitFor, type TestEnv } from "../test/harness.js";
import { startWorkers, stopWorkers, type Worker } from "../test/workers.js";
import { startPrivateStack, type PrivateStack } from "../test/private-stack.js";
import { freeTcpPort } from "../test/ports.js";
import { liveAssemblies, liveAssemblyParts, recordings } from "../db/schema.js";
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
  /** The store's CompleteMultipartUpload as the replica waited for it, in seconds (NaN when not finished live). */
  complete: number;
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
  const partSizes = (await env.db.select({ bytes: liveAssemblyParts.bytes }).from(liveAssemblyParts).where(eq(liveAssemblyParts.sourcePrefix, prefix))).map((p) => Number(p.bytes));
  const cpu = (await replicasCpu(workers)) - cpu0;
  const load = loadavg()[0]!;
  const tEnd = performance.now();
  const etag = await put(env, `${prefix}/index.m3u8`, playlistText(segments, segments.length, true));
  const rec = await readyRow(env, prefix, etag);
  const ready = (performance.now() - tEnd) / 1000;
  if (rec.status !== "ready") throw new Error(`${prefix} failed: ${rec.error}`);
  const finished = workers.flatMap((w) => w.output).filter((l) => l.includes('"msg":"live MP4 completed"') && l.includes(`"sourcePrefix":"${prefix}"`)).at(-1);
  const f = finished ? (JSON.parse(finished) as Record<string, number>) : undefined;
  // A reflink store clones only parts that end on a block (functions/convert/part-alignment.ts): say whether they all did.
  const offBlock = [...(f ? [f.part1Bytes!] : []), ...partSizes].filter((b) => b % 4096 !== 0).length;
  const stages = f ? `parts ending off a 4 KiB block ${offBlock} of ${partSizes.length + 1} (the last excepted); read ${f.readMs} ms, moov ${f.moovMs} ms, last uploads ${f.uploadMs} ms, store's CompleteMultipartUpload ${f.completeMs} ms, checks ${f.verifyMs} ms` : "not finished from the live assembly";
  const complete = f ? f.completeMs! / 1000 : NaN;
  return { stages, complete, ready, cpuPerHour: cpu / hours, stateBytes, leftForFinish: segments.length - row.segmentsDone, load, size: rec.fileSizeBytes ?? 0, duration: rec.durationSeconds ?? 0, writeSeconds };
}

async function wholeFolder(env: TestEnv, prefix: string, segments: Segment[], run: number): Promise<number> {
  const t0 = performance.now();
  const etag = await put(env, `${prefix}/index.m3u8`, playlistText(segments, segments.length, true, `# whole-folder run ${run}`));
  const rec = await readyRow(env, prefix, etag);
  if (rec.status !== "ready") throw new Error(`${prefix} whole-folder conversion failed: ${rec.error}`);
  return (performance.now() - t0) / 1000;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** One object store the broadcasts are written to, with its own test env (buckets, consumers, database) and replicas. */
interface Store {
  label: string;
  env: TestEnv;
  workers: Worker[];
}

/** The filesystem a folder is on (ext4, xfs, …), as findmnt names it. */
async function fsType(path: string): Promise<string> {
  const r = await execa("findmnt", ["-n", "-o", "FSTYPE", "--target", path], { reject: false });
  return r.exitCode === 0 ? r.stdout.trim() : "unknown filesystem";
}

const replicaEnv = { LIVE_ASSEMBLY_PART_MB: String(PART_MB), LIVE_ASSEMBLY_BATCH_SEGMENTS: String(BATCH) };
const root = fileURLToPath(new URL("..", import.meta.url));
const reflinkScript = join(root, "infra", "reflink-store.sh");
const reflinkDir = join(tmpdir(), `vod-bench-reflink-${process.pid}`);
let reflinkUp = false;
let reflinkSkipped: string | undefined;
let privateStack: PrivateStack | undefined;
const stores: Store[] = [];

/**
 * Row (b): a private Versity gateway (and NATS for its events) whose posix root is on an XFS filesystem with
 * reflink, so CompleteMultipartUpload clones the parts' extents as MinIO renames its parts. Undefined, with the
 * reason printed, when the filesystem cannot be made here.
 */
async function reflinkStore(main: Config): Promise<Store | undefined> {
  const up = await execa("bash", [reflinkScript, "up", reflinkDir], { reject: false });
  if (up.exitCode !== 0) {
    reflinkSkipped = up.stderr.trim() || `infra/reflink-store.sh exited ${up.exitCode}`;
    console.log(`  reflink row skipped: ${reflinkSkipped}`);
    return undefined;
  }
  reflinkUp = true;
  const data = join(up.stdout.trim(), "versitygw");
  privateStack = await startPrivateStack({ natsPort: await freeTcpPort(), s3Port: await freeTcpPort(), subject: main.nats.subject, store: "versitygw", accessKey: main.s3.accessKey, secretKey: main.s3.secretKey, storeDir: data });
  const env = await createTestEnv("bench-live-reflink", { ...replicaEnv, NATS_URL: privateStack.natsUrl, MINIO_ENDPOINT: privateStack.s3Endpoint, OBJECT_STORE: "versitygw" });
  stores.push({ label: `versitygw, posix root on ${await fsType(data)} with reflink (complete clones extents)`, env, workers: [] });
  stores.at(-1)!.workers = await startWorkers(env, "functions/convert/main.ts", REPLICAS, {}, "rl");
  return stores.at(-1)!;
}

let cleaned: Promise<void> | undefined;
/** Replicas, test envs, the private stack, then the XFS image: also on failure and on Ctrl-C. */
function cleanup(): Promise<void> {
  cleaned ??= (async () => {
    for (const s of stores) await stopWorkers(s.workers);
    for (const s of stores) await s.env.close().catch((err: Error) => process.stderr.write(`closing ${s.label}: ${err.message}\n`));
    await privateStack?.close();
    if (reflinkUp) {
      const down = await execa("bash", [reflinkScript, "down", reflinkDir], { reject: false });
      if (down.exitCode !== 0) process.stderr.write(`${down.stderr.trim()}\n`);
    }
  })();
  return cleaned;
}
for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => void cleanup().finally(() => process.exit(130)));

try {
  const sharedEnv = await createTestEnv("bench-live", replicaEnv);
  const sharedKind = await detectStore(sharedEnv.config);
  const sharedFs = sharedKind === "versitygw" ? `, posix root on ${await fsType(join(root, ".state", "versitygw"))} (complete copies the parts)` : " (complete keeps the parts)";
  stores.push({ label: `shared ${sharedKind}${sharedFs}`, env: sharedEnv, workers: [] });
  stores[0]!.workers = await startWorkers(sharedEnv, "functions/convert/main.ts", REPLICAS);
  const shared = stores[0]!;
  await reflinkStore(sharedEnv.config);

  // The cost while live, as a real broadcast pays it: segments at a pace the assembly keeps up with (one segment
  // per update; one FFmpeg run per LIVE_ASSEMBLY_BATCH_SEGMENTS of them). The store does not change it: measured once.
  const steadyHours = STEADY_MINUTES / 60;
  const steady = STEADY_MINUTES <= 0 ? undefined : await broadcast(shared.env, shared.workers, "bench/live-steady", (await broadcastSegments(steadyHours)), steadyHours, STEADY_SPEED);
  await deletePrefix(shared.env.s3, shared.env.config.s3.hlsBucket, "bench/live-steady/");
  await deletePrefix(shared.env.s3, shared.env.config.s3.recordingsBucket, "bench/live-steady/");
  if (steady) console.log(`  steady state (${STEADY_MINUTES} min at ${STEADY_SPEED}× real time, one segment per update, remuxed in batches of ${BATCH}): replicas' CPU ${steady.cpuPerHour.toFixed(1)} s per broadcast hour (${(steady.cpuPerHour / 36).toFixed(2)} % of a core); ENDLIST PUT → ready ${steady.ready.toFixed(2)} s; load ${steady.load.toFixed(1)}`);

  const table: string[] = [];
  const s = (x: number, digits = 2) => (Number.isNaN(x) ? "–" : `${x.toFixed(digits)} s`);
  for (const hours of HOURS) {
    const segments = await broadcastSegments(hours);
    const runs = new Map<Store, LiveRun[]>(stores.map((st) => [st, []]));
    const whole = new Map<Store, number[]>(stores.map((st) => [st, []]));
    // The stores take turns run by run, so both see the same spread of load from the rest of the machine.
    for (let run = 1; run <= RUNS; run++) {
      for (const [i, st] of stores.entries()) {
        const prefix = `bench/live-${hours}h-${run}`;
        const tag = i === 0 ? "shared " : "reflink";
        const r = await broadcast(st.env, st.workers, prefix, segments, hours);
        runs.get(st)!.push(r);
        console.log(`  ${tag} ${hours} h run ${run}: written in ${r.writeSeconds.toFixed(0)} s (${(hours * 3600 / r.writeSeconds).toFixed(0)}× real time); ENDLIST PUT → ready ${r.ready.toFixed(2)} s (${r.leftForFinish} segments left for the finish); replicas' CPU ${r.cpuPerHour.toFixed(1)} s per broadcast hour; state ${(r.stateBytes / 1024).toFixed(0)} KB; MP4 ${(r.size / 1e9).toFixed(2)} GB, ${r.duration.toFixed(1)} s; load ${r.load.toFixed(1)}\n    finish: ${r.stages}`);
        if (run <= WHOLE_RUNS) {
          const w = await wholeFolder(st.env, prefix, segments, run);
          whole.get(st)!.push(w);
          console.log(`  ${tag} ${hours} h run ${run}: whole-folder conversion of the same folder (playlist PUT → ready) ${w.toFixed(1)} s; load ${loadavg()[0]!.toFixed(1)}`);
        }
        // Each run's folder and MP4 go (a 4 h run is 5-6 GB of each).
        await deletePrefix(st.env.s3, st.env.config.s3.hlsBucket, `${prefix}/`);
        await deletePrefix(st.env.s3, st.env.config.s3.recordingsBucket, `${prefix}/`);
      }
    }
    for (const st of stores) {
      const rs = runs.get(st)!;
      const ready = median(rs.map((r) => r.ready));
      const complete = median(rs.map((r) => r.complete));
      const ours = median(rs.map((r) => r.ready - r.complete));
      const ws = whole.get(st)!;
      const w = ws.length ? median(ws) : NaN;
      table.push(`| ${hours} h (${segments.length} segments) | ${st.label} | ${s(ready)} (runs ${rs.map((r) => r.ready.toFixed(2)).join(", ")}) | ${s(ours)} | ${s(complete)} (runs ${rs.map((r) => r.complete.toFixed(2)).join(", ")}) | ${(ready / TARGET_SECONDS).toFixed(2)}× (${ready < TARGET_SECONDS ? "met" : "NOT met"}) | ${s(w, 1)} | ${median(rs.map((r) => r.cpuPerHour)).toFixed(1)} s | ${(median(rs.map((r) => r.stateBytes)) / hours / 1024).toFixed(0)} KB |`);
    }
  }
  console.log(`\nlive assembly (instant MP4), ${REPLICAS} convert replicas per store, segments written at ${SPEED}× real time, ${PART_MB} MB parts; load average now ${loadavg().map((l) => l.toFixed(1)).join(" ")}`);
  if (steady) console.log(`live cost: replicas' CPU ${steady.cpuPerHour.toFixed(1)} s per broadcast hour in steady state (one segment per update, remuxed in batches of ${BATCH})`);
  if (reflinkSkipped) console.log(`reflink row skipped: ${reflinkSkipped}`);
  console.log(`| broadcast | store | ENDLIST PUT → ready (median) | ours (ready − the store's complete) | the store's CompleteMultipartUpload | ready / ${TARGET_SECONDS} s target | whole-folder conversion, same folder | replicas' CPU per broadcast hour (written faster than real time) | state per broadcast hour |`);
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const line of table) console.log(line);
} finally {
  await cleanup();
}
