// Thumbnail latency: from the handler call to the poster JPEG uploaded (and its row updated), for a
// 1-minute and a 1-hour stream of 720p. Target: under 0.5 s for both, i.e. cost that does not grow
// with the stream's length. Also prints the full job (poster + storyboard) and what was read from S3.
// Run alone: node --import tsx bench/thumbnail.bench.ts   (or `make bench` with every benchmark)
import { cpus, loadavg } from "node:os";
import { Writable } from "node:stream";
import { pino } from "pino";
import { createTestEnv } from "../test/harness.js";
import { deletePrefix } from "../lib/s3.js";
import type { HandlerContext } from "../functions/runtime/handler.js";
import { handleThumbnail } from "../functions/thumbnail/handler.js";
import { cachedHls, uploadHls, HOUR_720P, MINUTE_720P, type BenchHls } from "./media.js";

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const TARGET_MS = 500;

interface Run {
  posterMs: number;
  /** Of which: deciding the folder by convert's rules (the poster is decoded meanwhile). */
  lookupMs: number;
  posterGets: number;
  posterBytes: number;
  totalMs: number;
  gets: number;
  getBytes: number;
  lists: number;
  tiles: number;
}

const env = await createTestEnv("bench-thumbnail");
const counts = { gets: 0, getBytes: 0, lists: 0 };
// Counts what the handler reads, to show the poster's reads do not depend on the stream's length.
env.s3.middlewareStack.add(
  (next, context) => async (args) => {
    const out = await next(args);
    if (context.commandName === "GetObjectCommand") {
      counts.gets++;
      counts.getBytes += Number((out.output as { ContentLength?: number }).ContentLength ?? 0);
    } else if (context.commandName === "ListObjectsV2Command") counts.lists++;
    return out;
  },
  { step: "initialize", name: "benchCounter" },
);

async function measure(folder: string): Promise<Run> {
  // Start from nothing each time, so the run is not skipped as already done.
  await deletePrefix(env.s3, env.config.s3.recordingsBucket, `${folder}/`);
  let posterAt = 0;
  let lookupMs = 0;
  let posterReads = { gets: 0, getBytes: 0 };
  let tiles = 0;
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split("\n").filter(Boolean)) {
        const l = JSON.parse(line) as { msg?: string; tiles?: number; level?: number; lookupMs?: number };
        if (l.msg === "poster uploaded") {
          posterAt = performance.now();
          lookupMs = l.lookupMs ?? 0;
          posterReads = { ...counts };
        }
        if (l.msg === "storyboard uploaded") tiles = l.tiles ?? 0;
        if ((l.level ?? 0) >= 40) process.stderr.write(`${line}\n`);
      }
      cb();
    },
  });
  const ctx: HandlerContext = {
    s3: env.s3,
    db: env.db,
    log: pino({ level: "info" }, sink),
    config: env.config,
    signal: new AbortController().signal,
    progress: async () => {},
    attempt: 1,
    worker: "bench",
  };
  Object.assign(counts, { gets: 0, getBytes: 0, lists: 0 });
  const t0 = performance.now();
  const result = await handleThumbnail({ bucket: env.config.s3.hlsBucket, key: `${folder}/index.m3u8`, eventName: "s3:ObjectCreated:Put", size: 0, etag: "", sequencer: "" }, ctx, {});
  const t1 = performance.now();
  if (result !== "done" || posterAt === 0) throw new Error(`thumbnail for ${folder} did not complete (result ${result})`);
  return { posterMs: posterAt - t0, lookupMs, posterGets: posterReads.gets, posterBytes: posterReads.getBytes, totalMs: t1 - t0, ...counts, tiles };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (ms: number) => `${Math.round(ms)} ms`;

try {
  const streams: [string, BenchHls][] = [
    ["1 minute", await cachedHls(MINUTE_720P)],
    ["1 hour", await cachedHls(HOUR_720P)],
  ];
  const rows: Record<string, unknown>[] = [];
  let ok = true;
  for (const [label, hls] of streams) {
    const folder = `bench/${label.replace(" ", "-")}`;
    const t0 = performance.now();
    await uploadHls(env.s3, env.config.s3.hlsBucket, hls.dir, folder);
    process.stderr.write(`uploaded ${label} (${hls.segments} segments, ${(hls.bytes / 1e6).toFixed(0)} MB) in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
    const cold = await measure(folder);
    const runs: Run[] = [];
    for (let i = 0; i < RUNS; i++) runs.push(await measure(folder));
    const poster = runs.map((r) => r.posterMs);
    const row = {
      stream: label,
      segments: hls.segments,
      mb: Math.round(hls.bytes / 1e6),
      posterFirstRun: fmt(cold.posterMs),
      posterMedian: fmt(median(poster)),
      posterMax: fmt(Math.max(...poster)),
      lookupMedian: fmt(median(runs.map((r) => r.lookupMs))),
      posterGets: runs[0]!.posterGets,
      // Sizes of the objects opened; the poster stops reading its segment after the first keyframe.
      posterMbOpened: (runs[0]!.posterBytes / 1e6).toFixed(2),
      wholeJobMedian: fmt(median(runs.map((r) => r.totalMs))),
      tiles: runs[0]!.tiles,
      jobGets: runs[0]!.gets,
      jobMbOpened: (runs[0]!.getBytes / 1e6).toFixed(1),
      jobLists: runs[0]!.lists,
    };
    rows.push(row);
    if (median(poster) >= TARGET_MS) ok = false;
  }
  // The poster is one FFmpeg process: on a busy machine its start-up waits for a core.
  const machine = { cores: cpus().length, load1m: Number(loadavg()[0]!.toFixed(1)) };
  console.log(`\nthumbnail latency (handler call → poster JPEG uploaded and recorded), ${RUNS} runs after a first run; target < ${TARGET_MS} ms`);
  console.log(`machine: ${machine.cores} cores, load average ${machine.load1m} at the end of the run`);
  console.table(rows);
  console.log(JSON.stringify({ bench: "thumbnail", targetMs: TARGET_MS, machine, results: rows }));
  console.log(ok ? `thumbnail: median poster latency under ${TARGET_MS} ms for both streams` : `thumbnail: median poster latency is over ${TARGET_MS} ms for at least one stream`);
} finally {
  await env.close();
}
