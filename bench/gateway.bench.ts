// Ingest gateway benchmark (figures printed, not asserted):
//  1. concurrent 3 Mbps passthrough streams: segment-to-store p95 (target < 1 s), CPU per stream split by
//     process (the gateway's Node process, its FFmpeg segmenters, the object store) and memory per stream;
//  2. transcode streams of 720p per core;
//  3. live latency: a segment's last frame entering the gateway → the playlist naming it readable from the store.
//  4. side by side at each step in GATEWAY_BENCH_MEDIAMTX (default "20,40"): MediaMTX v1.20.1 fed by the same sender,
//     recording fMP4 to a temporary folder (`bash bench/mediamtx-install.sh` builds it; skipped with a note when absent).
// Runs alone (`node --import tsx bench/gateway.bench.ts`) or from bench/run.ts; needs `make infra`.
// GATEWAY_BENCH_STREAMS="20,40,100", GATEWAY_BENCH_TRANSCODE="1,2,3" ("" skips), GATEWAY_BENCH_SECONDS=40 change
// the steps; GATEWAY_BENCH_CALLERS=ffmpeg uses one FFmpeg per stream instead of the native sender (bench/srt-sender.c),
// whose connections come from GATEWAY_BENCH_CALLER_PORTS (16) local UDP ports, as callers from many hosts would.
// GATEWAY_BENCH_COMPARE=/path/to/another/checkout (its addon built) runs that gateway too at each passthrough step,
// side by side in the same run (before/after figures).
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { availableParallelism, loadavg } from "node:os";
import { execa, type ResultPromise } from "execa";
import { createTestEnv, waitFor, type TestEnv } from "../test/harness.js";
import { BENCH_CACHE } from "./media.js";
import { startGatewayProcess, type GatewayProcess } from "../test/gateway/process.js";
import { readPlaylist } from "../test/gateway/store.js";
import { senderBinary, sendArgs } from "../test/gateway/sender.js";
import { freeTcpPort, freeUdpPort } from "../test/ports.js";

const SECONDS = Number(process.env.GATEWAY_BENCH_SECONDS ?? 40);
const steps = (v: string) => v.split(",").filter(Boolean).map(Number);
const PASSTHROUGH_STEPS = steps(process.env.GATEWAY_BENCH_STREAMS ?? "20,40,100");
const TRANSCODE_STEPS = steps(process.env.GATEWAY_BENCH_TRANSCODE ?? "1,2,3");
const MEDIAMTX_STEPS = steps(process.env.GATEWAY_BENCH_MEDIAMTX ?? "20,40");
const FFMPEG_CALLERS = process.env.GATEWAY_BENCH_CALLERS === "ffmpeg";
const CALLER_PORTS = Number(process.env.GATEWAY_BENCH_CALLER_PORTS ?? 16);
/** Another checkout of the project (e.g. main as it was) whose gateway runs right after ours at each passthrough step. */
const COMPARE = process.env.GATEWAY_BENCH_COMPARE;
// Long enough that every caller still sends when the measuring window closes (the window must not see the streams end).
const FILE_SECONDS = Math.max(60, Math.ceil((SECONDS + 15) / 10) * 10);
const CLK_TCK = 100;
const CORES = availableParallelism();

/** FILE_SECONDS of 720p at 3 Mbps, H.264 (keyframe every 2 s) + AAC, as OBS would send it. */
async function sourceFile(): Promise<string> {
  const file = join(BENCH_CACHE, `gateway-720p-3M-${FILE_SECONDS}s.ts`);
  if (existsSync(file)) return file;
  await mkdir(BENCH_CACHE, { recursive: true });
  process.stderr.write(`gateway bench: making ${FILE_SECONDS} s of 720p 3 Mbps H.264/AAC (once, cached)\n`);
  await execa("ffmpeg", [
    "-hide_banner", "-loglevel", "error", "-y",
    "-f", "lavfi", "-i", `testsrc2=size=1280x720:rate=25:duration=${FILE_SECONDS}`, "-f", "lavfi", "-i", `sine=frequency=440:sample_rate=48000:duration=${FILE_SECONDS}`,
    "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-b:v", "3M", "-maxrate", "3M", "-bufsize", "3M", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0",
    "-c:a", "aac", "-b:a", "128k", "-f", "mpegts", `${file}.part`,
  ]);
  await rename(`${file}.part`, file);
  return file;
}

/**
 * One FFmpeg caller per stream, reading the file in real time. Their starts are spread over one segment,
 * as independent encoders' keyframes are: started together, every stream would cut its segments in the same instant.
 */
async function callers(file: string, urls: string[], seconds: number): Promise<ResultPromise[]> {
  const procs: ResultPromise[] = [];
  const spreadMs = urls.length > 1 ? 4000 / urls.length : 0;
  for (const u of urls) {
    procs.push(execa("ffmpeg", ["-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-stream_loop", "-1", "-t", String(seconds), "-i", file, "-map", "0", "-c", "copy", "-f", "mpegts", u], { reject: false, stdin: "ignore" }));
    await new Promise((r) => setTimeout(r, spreadMs));
  }
  return procs;
}

/** One native sender process plays the file to every stream in real time, starts spread over 4 s. */
async function nativeCallers(file: string, port: number, prefix: string, n: number): Promise<ResultPromise[]> {
  const args = sendArgs({ port, file, mediaSeconds: FILE_SECONDS, streams: n, streamidFormat: `#!::r=${prefix}%d,m=publish`, passphrase: BENCH_SECRET, spreadMs: 4000, localPorts: CALLER_PORTS });
  const p = execa(await senderBinary(), args, { reject: false, stdin: "ignore" });
  void p.then((r) => process.stderr.write(`gateway bench: sender ${r.stdout}${r.stderr ? ` ${r.stderr}` : ""}\n`));
  return [p];
}

/** The object store's process (the Versity gateway or MinIO), for its share of the CPU. */
function storePid(): number | undefined {
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const comm = readFileSync(`/proc/${d}/comm`, "utf8").trim();
      if (comm === "versitygw" || comm === "minio") return Number(d);
    } catch {
      // exited while we looked
    }
  }
  return undefined;
}

function children(pid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) out.push(Number(d));
    } catch {
      // exited while we looked
    }
  }
  return out;
}

/** CPU seconds and proportional memory (PSS, shared libraries split between processes) of a process and its children. */
function treeUsage(pid: number): { cpu: Map<number, number>; rssMb: number } {
  const cpu = new Map<number, number>();
  let rss = 0;
  for (const p of [pid, ...children(pid)]) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      cpu.set(p, (Number(f[11]) + Number(f[12])) / CLK_TCK);
      rss += Number(/^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${p}/smaps_rollup`, "utf8"))?.[1] ?? 0) / 1024;
    } catch {
      // exited while we looked
    }
  }
  return { cpu, rssMb: rss };
}

/** CPU seconds of each thread of a process, keyed by thread id, with its name (libsrt's "SRT:RcvQ:w1", our "srt-recv"). */
function threadCpu(pid: number, mainName = "js-main"): Map<number, { name: string; sec: number }> {
  const out = new Map<number, { name: string; sec: number }>();
  try {
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      try {
        const stat = readFileSync(`/proc/${pid}/task/${t}/stat`, "utf8");
        const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        const name = Number(t) === pid ? mainName : stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")).replace(/:w\d+$/, "");
        out.set(Number(t), { name, sec: (Number(f[11]) + Number(f[12])) / CLK_TCK });
      } catch {
        // the thread ended while we looked
      }
    }
  } catch {
    // the process ended
  }
  return out;
}

/** % of one core per stream spent by each kind of thread between two snapshots (the 4 largest, the rest as "other"). */
function threadSplit(a: Map<number, { name: string; sec: number }>, b: Map<number, { name: string; sec: number }>, elapsed: number, n: number): string {
  const by = new Map<string, number>();
  for (const [tid, t] of b) by.set(t.name, (by.get(t.name) ?? 0) + t.sec - (a.get(tid)?.sec ?? t.sec));
  const sorted = [...by].sort((x, y) => y[1] - x[1]);
  const top = sorted.slice(0, 4);
  const other = sorted.slice(4).reduce((s, [, v]) => s + v, 0);
  const pct = (sec: number) => ((sec / elapsed / n) * 100).toFixed(2);
  return [...top.map(([k, v]) => `${k} ${pct(v)}`), `other ${pct(other)}`].join(", ");
}

/** Datagrams the kernel dropped for a full socket receive buffer, machine-wide (the gateway's shared SRT socket during a step). */
function udpReceiveDrops(): number {
  const lines = readFileSync("/proc/net/snmp", "utf8").split("\n").filter((l) => l.startsWith("Udp:"));
  const names = lines[0]!.split(/\s+/);
  return Number(lines[1]!.split(/\s+/)[names.indexOf("RcvbufErrors")]);
}

function cpuBetween(a: Map<number, number>, b: Map<number, number>): number {
  let s = 0;
  for (const [p, v] of b) s += v - (a.get(p) ?? v);
  return s;
}

function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

interface StoredLine {
  stream: string;
  ms: number;
  at: number;
  /** Where a slow store's time went (the gateway logs it for stores of 1 s or more). */
  stages?: { notice: number; wait: number; read: number; segmentPut: number; playlistPut: number };
}

function storedLines(gw: GatewayProcess, from: number): StoredLine[] {
  const out: StoredLine[] = [];
  for (const l of gw.logs.slice(from)) {
    if (!l.includes('"stage":"segment-stored"')) continue;
    const j = JSON.parse(l) as { stream: string; ms: number; time: string; noticeMs?: number; waitMs?: number; readMs?: number; segmentPutMs?: number; playlistPutMs?: number };
    const stages = j.waitMs === undefined ? undefined : { notice: j.noticeMs ?? 0, wait: j.waitMs, read: j.readMs ?? 0, segmentPut: j.segmentPutMs ?? 0, playlistPut: j.playlistPutMs ?? 0 };
    out.push({ stream: j.stream, ms: j.ms, at: Date.parse(j.time), stages });
  }
  return out;
}

const BENCH_SECRET = "bench-secret-0123456789";
/** GATEWAY_BENCH_DIAG=1: where slow stores come from, printed per step (a timeline of store times and the event loop's delay). */
const DIAG = process.env.GATEWAY_BENCH_DIAG === "1";

async function diagnose(gw: GatewayProcess, lines: StoredLine[], t0: number, tag: string): Promise<void> {
  const slow = lines.filter((l) => l.ms >= 1000);
  const buckets = new Map<number, { n: number; slow: number; max: number }>();
  for (const l of lines) {
    const b = Math.floor((l.at - t0) / 5000) * 5;
    const e = buckets.get(b) ?? { n: 0, slow: 0, max: 0 };
    e.n++;
    if (l.ms >= 1000) e.slow++;
    e.max = Math.max(e.max, l.ms);
    buckets.set(b, e);
  }
  process.stderr.write(`gateway bench diag ${tag}: ${slow.length}/${lines.length} stores ≥ 1 s; per 5 s of the window (s: stored/slow/max ms): ${[...buckets].sort((a, b) => a[0] - b[0]).map(([b, e]) => `${b}:${e.n}/${e.slow}/${e.max}`).join(" ")}\n`);
  const staged = slow.flatMap((l) => (l.stages ? [l.stages] : []));
  if (staged.length) {
    const med = (k: keyof NonNullable<StoredLine["stages"]>) => percentile(staged.map((s) => s[k]), 50);
    process.stderr.write(`gateway bench diag ${tag}: slow stores' median ms: notice ${med("notice")}, queue ${med("wait")}, read ${med("read")}, segment PUT ${med("segmentPut")}, playlist PUT ${med("playlistPut")}\n`);
  }
  const text = await (await fetch(`${gw.http}/metrics`)).text();
  const pick = text.split("\n").filter((l) => /^(nodejs_eventloop_lag_(p50|p99|max)_seconds|nodejs_gc_duration_seconds_sum|gateway_upload_retries_total|nodejs_active_handles_total|process_cpu_seconds_total)[ {]/.test(l));
  process.stderr.write(`gateway bench diag ${tag}: ${pick.join("; ")}\n`);
}

async function createStreams(gw: GatewayProcess, prefix: string, n: number): Promise<string[]> {
  const urls: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await gw.api("POST", "/streams", { name: `${prefix}${i}`, secret: BENCH_SECRET });
    if (r.status !== 201) throw new Error(`could not create stream ${prefix}${i}: ${JSON.stringify(r.json)}`);
    urls.push(r.json.obs.server as string);
  }
  return urls;
}

interface StepResult {
  gateway: string;
  streams: number;
  segmentsStored: number;
  segmentsExpected: number;
  p50StoreMs: number;
  p95StoreMs: number;
  maxStoreMs: number;
  /** % of one core per stream: the gateway's Node process, its SRT listener process (srt-ingestd: libsrt and the media bytes), its FFmpeg children, the object store, and all together. */
  nodePct: number;
  listenerPct: number;
  ffmpegPct: number;
  storePct: number;
  totalPct: number;
  /** Proportional memory (PSS) of the gateway and its FFmpeg children per stream, above the idle gateway. */
  pssMbPerStream: number;
  nodeRssMb: number;
  callerCpuPct: number;
  /** The SRT listener process's CPU per stream by thread (the Node process's when libsrt runs inside it, as in older checkouts): libsrt's UDP receive thread, its TSBPD threads, our receive threads. */
  srtThreads: string;
  /** % of one core per stream of each libsrt receive thread (one per SRT listener): how evenly callers spread. */
  rcvqEach: string;
  /** UDP datagrams dropped by the kernel during the window (full receive buffer). */
  udpDrops: number;
  holds: boolean;
  /** The machine's 1-minute load average at the end of the step (other work on the machine shows here). */
  loadAvg: number;
}

function cpuOf(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return 0;
  }
}

function rssMb(pid: number): number {
  try {
    return Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

async function runStep(env: TestEnv, file: string, profile: "auto" | "transcode", n: number, tag: string, checkout?: string): Promise<StepResult> {
  const gw = await startGatewayProcess({ ...env.env, LOG_LEVEL: "info", INGEST_PROFILE: profile, SPOOL_DIR: `/tmp/vod-bench-${env.id}/${tag}` }, undefined, checkout);
  try {
    const base = treeUsage(gw.proc.pid!).rssMb;
    const urls = await createStreams(gw, `${tag}-`, n);
    const procs = FFMPEG_CALLERS ? await callers(file, urls.map((u) => u.replace(/passphrase=[^&]*/, `passphrase=${BENCH_SECRET}`)), SECONDS) : await nativeCallers(file, gw.srtPort, `${tag}-`, n);
    // Steady state: after every stream has started and stored its first segment.
    const warm = 10_000;
    await new Promise((r) => setTimeout(r, warm));
    const from = gw.logs.length;
    const store = storePid();
    const node = gw.proc.pid!;
    // The SRT listener process (srt-ingestd); a checkout from before it ran libsrt inside Node.
    const upLine = gw.logs.find((l) => l.includes("SRT listener up"));
    const listener = upLine ? ((JSON.parse(upLine) as { listenerPid?: number }).listenerPid ?? 0) : 0;
    const srtPid = listener || node;
    const u0 = treeUsage(node);
    const mainName = listener ? "control" : "js-main";
    const th0 = threadCpu(srtPid, mainName);
    const d0 = udpReceiveDrops();
    const s0 = cpuOf(store);
    const c0 = procs.map((p) => treeUsage(p.pid!));
    const t0 = Date.now();
    const window = (SECONDS - warm / 1000 - 4) * 1000;
    let rssPeak = 0;
    let nodeRss = 0;
    while (Date.now() - t0 < window) {
      await new Promise((r) => setTimeout(r, 2000));
      rssPeak = Math.max(rssPeak, treeUsage(node).rssMb);
      nodeRss = Math.max(nodeRss, rssMb(node));
    }
    const u1 = treeUsage(node);
    const th1 = threadCpu(srtPid, mainName);
    const d1 = udpReceiveDrops();
    const s1 = cpuOf(store);
    const c1 = procs.map((p) => treeUsage(p.pid!));
    const elapsed = (Date.now() - t0) / 1000;
    const lines = storedLines(gw, from);
    if (DIAG) await diagnose(gw, lines, t0, tag);
    for (const p of procs) p.kill("SIGTERM");
    await Promise.all(procs);
    const ms = lines.map((l) => l.ms);
    const all = cpuBetween(u0.cpu, u1.cpu);
    const nodeCpu = (u1.cpu.get(node) ?? 0) - (u0.cpu.get(node) ?? 0);
    const listenerCpu = listener ? (u1.cpu.get(listener) ?? 0) - (u0.cpu.get(listener) ?? 0) : 0;
    const pct = (sec: number) => Number(((sec / elapsed / n) * 100).toFixed(2));
    const callerPct = (c0.reduce((s, c, i) => s + cpuBetween(c.cpu, c1[i]!.cpu), 0) / elapsed) * 100;
    const expected = Math.floor((elapsed / 4) * n);
    const p95 = percentile(ms, 95);
    const rcvq = [...th1].filter(([, t]) => t.name === "SRT:RcvQ").map(([tid, t]) => ((t.sec - (th0.get(tid)?.sec ?? t.sec)) / elapsed / n) * 100);
    return {
      gateway: checkout ? "compare" : "this",
      streams: n,
      segmentsStored: lines.length,
      segmentsExpected: expected,
      p50StoreMs: percentile(ms, 50),
      p95StoreMs: p95,
      maxStoreMs: Math.max(...ms),
      nodePct: pct(nodeCpu),
      listenerPct: pct(listenerCpu),
      ffmpegPct: pct(all - nodeCpu - listenerCpu),
      storePct: pct(s1 - s0),
      totalPct: pct(all + s1 - s0),
      pssMbPerStream: Number(((rssPeak - base) / n).toFixed(1)),
      nodeRssMb: Math.round(nodeRss),
      callerCpuPct: Math.round(callerPct),
      srtThreads: threadSplit(th0, th1, elapsed, n),
      rcvqEach: rcvq.map((x) => x.toFixed(2)).join(" / "),
      udpDrops: d1 - d0,
      // Holds: the store keeps up (p95 < 1 s) and no stream falls behind real time.
      holds: p95 < 1000 && lines.length >= expected * 0.9,
      loadAvg: Number(loadavg()[0]!.toFixed(1)),
    };
  } finally {
    await gw.stop();
  }
}

/** MediaMTX built by bench/mediamtx-install.sh (or MEDIAMTX_BIN). */
function mediamtxBinary(): string | undefined {
  const bin = process.env.MEDIAMTX_BIN ?? join(import.meta.dirname, "..", ".cache", "bin", "mediamtx");
  return existsSync(bin) ? bin : undefined;
}

interface MediamtxResult {
  streams: number;
  /** Paths with a publisher at the end of the window (MediaMTX's API). */
  publishing: number;
  /** Bytes written to disk in the window over the bytes the callers sent in it: ≈ 1 when recording keeps up. */
  recordedRatio: number;
  cpuPct: number;
  pssMbPerStream: number;
  callerCpuPct: number;
  holds: boolean;
  loadAvg: number;
}

function folderBytes(dir: string): number {
  let sum = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    try {
      sum += statSync(join(e.parentPath, e.name)).size;
    } catch {
      // removed while we looked
    }
  }
  return sum;
}

/**
 * MediaMTX fed by the same native sender (same passphrase, same streamid form), publishing over SRT and
 * recording fMP4 to a temporary folder (4 s segments, 1 s parts: its defaults apart from the segment length).
 * Every other server of it is off.
 */
async function runMediamtxStep(bin: string, file: string, n: number, tag: string): Promise<MediamtxResult> {
  const dir = `/tmp/vod-bench-mediamtx-${process.pid}-${tag}`;
  await mkdir(join(dir, "rec"), { recursive: true });
  const srtPort = await freeUdpPort();
  const apiPort = await freeTcpPort();
  const conf = [
    "logLevel: warn",
    "api: yes",
    `apiAddress: 127.0.0.1:${apiPort}`,
    "rtsp: no", "rtmp: no", "hls: no", "webrtc: no", "moq: no",
    "srt: yes",
    `srtAddress: 127.0.0.1:${srtPort}`,
    "pathDefaults:",
    "  record: yes",
    `  recordPath: ${dir}/rec/%path/%Y-%m-%d_%H-%M-%S-%f`,
    "  recordFormat: fmp4",
    "  recordPartDuration: 1s",
    "  recordSegmentDuration: 4s",
    "  recordDeleteAfter: 0s",
    `  srtPublishPassphrase: ${BENCH_SECRET}`,
    "paths:",
    "  all_others:",
  ].join("\n");
  await writeFile(join(dir, "mediamtx.yml"), conf + "\n");
  const mtx = execa(bin, [join(dir, "mediamtx.yml")], { reject: false, stdin: "ignore", cwd: dir });
  let mtxOut = "";
  mtx.stdout?.on("data", (d: Buffer) => (mtxOut = (mtxOut + d.toString()).slice(-4000)));
  try {
    const api = (path: string) => fetch(`http://127.0.0.1:${apiPort}${path}`).then((r) => (r.ok ? r.json() : undefined)).catch(() => undefined);
    await waitFor("MediaMTX's API", () => api("/v3/paths/list"), 30_000);
    const base = treeUsage(mtx.pid!).rssMb;
    const procs = await nativeCallers(file, srtPort, `${tag}-`, n);
    await new Promise((r) => setTimeout(r, 10_000));
    const c0 = procs.map((p) => treeUsage(p.pid!));
    const m0 = cpuOf(mtx.pid);
    const b0 = folderBytes(join(dir, "rec"));
    const t0 = Date.now();
    const window = (SECONDS - 10 - 4) * 1000;
    let rssPeak = 0;
    while (Date.now() - t0 < window) {
      await new Promise((r) => setTimeout(r, 2000));
      rssPeak = Math.max(rssPeak, treeUsage(mtx.pid!).rssMb);
    }
    const m1 = cpuOf(mtx.pid);
    const b1 = folderBytes(join(dir, "rec"));
    const c1 = procs.map((p) => treeUsage(p.pid!));
    const elapsed = (Date.now() - t0) / 1000;
    const list = (await api("/v3/paths/list?itemsPerPage=1000")) as { items?: { ready?: boolean; available?: boolean }[] } | undefined;
    const publishing = list?.items?.filter((i) => i.ready ?? i.available).length ?? 0;
    for (const p of procs) p.kill("SIGTERM");
    await Promise.all(procs);
    // The sender paces the file's bytes over its media length: this is what it sent per stream per second.
    const sentPerSecond = statSync(file).size / FILE_SECONDS;
    const recordedRatio = Number(((b1 - b0) / (sentPerSecond * n * elapsed)).toFixed(2));
    return {
      streams: n,
      publishing,
      recordedRatio,
      cpuPct: Number((((m1 - m0) / elapsed / n) * 100).toFixed(2)),
      pssMbPerStream: Number(((rssPeak - base) / n).toFixed(1)),
      callerCpuPct: Math.round((c0.reduce((sum, c, i) => sum + cpuBetween(c.cpu, c1[i]!.cpu), 0) / elapsed) * 100),
      holds: publishing === n && recordedRatio >= 0.9,
      loadAvg: Number(loadavg()[0]!.toFixed(1)),
    };
  } catch (err) {
    throw new Error(`MediaMTX step of ${n} streams failed: ${(err as Error).message}; its output: ${mtxOut.trim().split("\n").slice(-5).join(" | ")}`);
  } finally {
    mtx.kill("SIGTERM");
    await mtx;
    await rm(dir, { recursive: true, force: true });
  }
}

/** One passthrough stream; the playlist is polled every 50 ms to see when each segment becomes readable. */
async function liveLatency(env: TestEnv, file: string): Promise<{ segments: number; p50Ms: number; p95Ms: number; maxMs: number }> {
  const gw = await startGatewayProcess({ ...env.env, LOG_LEVEL: "info", SPOOL_DIR: `/tmp/vod-bench-${env.id}/latency` });
  try {
    const [url] = await createStreams(gw, "latency-", 1);
    const from = gw.logs.length;
    const [proc] = await callers(file, [url!], 30);
    const seen = new Map<number, number>();
    let folder: string | undefined;
    let done = false;
    void proc!.then(() => (done = true));
    while (!done) {
      folder ??= (await gw.api("GET", "/streams")).json.streams.find((s: { name: string }) => s.name === "latency-0")?.live?.session;
      if (folder) {
        const p = await readPlaylist(env.s3, env.config.s3.hlsBucket, `latency-0/${folder}/index.m3u8`).catch(() => undefined);
        if (p && !seen.has(p.segments.length)) seen.set(p.segments.length, Date.now());
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    const p = await waitFor("the final playlist", () => readPlaylist(env.s3, env.config.s3.hlsBucket, `latency-0/${folder}/index.m3u8`).then((x) => (x?.ended ? x : undefined)), 10_000);
    // The caller sends in real time from its first byte (the gateway logs when it connected):
    // segment k's last frame goes in at that moment + the durations up to k.
    const connected = gw.logs.slice(from).find((l) => l.includes("SRT caller connected"));
    const started = Date.parse((JSON.parse(connected!) as { time: string }).time);
    const lat: number[] = [];
    let end = 0;
    p.segments.forEach((s, k) => {
      end += s.duration;
      const visible = seen.get(k + 1);
      if (visible !== undefined && k > 0 && k < p.segments.length - 1) lat.push(visible - (started + end * 1000));
    });
    return { segments: lat.length, p50Ms: percentile(lat, 50), p95Ms: percentile(lat, 95), maxMs: Math.max(...lat) };
  } finally {
    await gw.stop();
  }
}

async function main() {
  const file = await sourceFile();
  const env = await createTestEnv("bench-gateway");
  try {
    console.log(`\ningest gateway: ${CORES} cores, ${SECONDS} s per step, 720p 3 Mbps H.264/AAC callers (${FFMPEG_CALLERS ? "one FFmpeg per stream" : "one native sender for all streams"}, starts spread over 4 s); load average now ${loadavg()[0]!.toFixed(1)}`);
    const passthrough: StepResult[] = [];
    const mediamtx: MediamtxResult[] = [];
    const mtxBin = mediamtxBinary();
    if (MEDIAMTX_STEPS.length && !mtxBin) console.log("MediaMTX is not built: `bash bench/mediamtx-install.sh` builds v1.20.1 from the Go module proxy; its steps are skipped");
    for (const n of PASSTHROUGH_STEPS) {
      process.stderr.write(`gateway bench: ${n} passthrough streams\n`);
      passthrough.push(await runStep(env, file, "auto", n, `p${n}`));
      if (COMPARE) {
        process.stderr.write(`gateway bench: ${n} passthrough streams, ${COMPARE}'s gateway\n`);
        passthrough.push(await runStep(env, file, "auto", n, `c${n}`, COMPARE));
      }
      // Right after the gateway's step at the same count, so both see the same machine.
      if (mtxBin && MEDIAMTX_STEPS.includes(n)) {
        process.stderr.write(`gateway bench: MediaMTX, ${n} streams\n`);
        mediamtx.push(await runMediamtxStep(mtxBin, file, n, `m${n}`));
      }
    }
    for (const n of MEDIAMTX_STEPS.filter((n) => mtxBin && !PASSTHROUGH_STEPS.includes(n))) mediamtx.push(await runMediamtxStep(mtxBin!, file, n, `m${n}`));
    console.log("\npassthrough (copy): segment-to-store = FFmpeg closes a segment → the playlist naming it is stored; target p95 < 1 s; CPU in % of one core per stream");
    console.table(passthrough);
    if (mediamtx.length) {
      console.log("\nMediaMTX v1.20.1, same sender, SRT publish + fMP4 recording to local disk (no object store); CPU in % of one core per stream, vs the gateway's total (Node + FFmpeg + object store) at the same count");
      console.table(mediamtx.map((m) => {
        const gw = passthrough.find((p) => p.streams === m.streams && p.gateway === "this");
        return { ...m, gatewayTotalPct: gw?.totalPct, gatewayOverMediamtx: gw ? Number((gw.totalPct / m.cpuPct).toFixed(2)) : undefined };
      }));
    }
    const held = passthrough.filter((r) => r.holds && r.gateway === "this").map((r) => r.streams);
    const maxHeld = held.length ? Math.max(...held) : 0;

    const transcode: StepResult[] = [];
    for (const n of TRANSCODE_STEPS) {
      process.stderr.write(`gateway bench: ${n} transcode streams\n`);
      transcode.push(await runStep(env, file, "transcode", n, `t${n}`));
    }
    console.log("\ntranscode (libx264 faster, CRF 23, 720p25 in): holds = every stream stays real time and p95 < 1 s");
    console.table(transcode);
    const tHeld = transcode.filter((r) => r.holds).map((r) => r.streams);
    const maxTranscode = tHeld.length ? Math.max(...tHeld) : 0;

    process.stderr.write("gateway bench: live latency\n");
    const latency = await liveLatency(env, file);
    console.log("\nlive latency: segment's last frame sent into the gateway → playlist naming it readable from the store (50 ms polling, includes SRT's 120 ms latency)");
    console.table([latency]);

    const summary = {
      bench: "gateway",
      cores: CORES,
      passthroughStreamsHeld: maxHeld,
      transcodeStreamsPerCore: Number((maxTranscode / CORES).toFixed(2)),
      passthrough,
      mediamtx,
      transcode,
      latency,
    };
    console.log(JSON.stringify(summary));
    console.log(`gateway: holds ${maxHeld} passthrough streams at p95 < 1 s (target ≥ 50); ${summary.transcodeStreamsPerCore} transcode streams per core at 720p; live latency p95 ${latency.p95Ms} ms`);
  } finally {
    await env.close();
  }
}

await main();
