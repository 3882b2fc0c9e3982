// Convert latency for one hour of 720p at ~3 Mbps (4 s MPEG-TS segments), dropped as a folder alone under
// its parent (no wait for a master): time from the final playlist PUT to the recording being ready, against
// a plain copy of the same bytes through the same store in the same run (GET every segment, streamed into
// one multipart PUT), alternating three times. Target (issue 17): ratio ≤ 1.0×. Each run also prints the load,
// the CPU seconds of both sides and the convert job's stages (from the replica's "recording ready" line).
// Run alone: node --import tsx bench/convert.bench.ts   (or `make bench` with every benchmark)
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { once } from "node:events";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { jetstreamManager } from "@nats-io/jetstream";
import { eq } from "drizzle-orm";
import { parsePlaylist, type MediaPlaylist } from "../lib/hls/index.js";
import { createTestEnv, waitFor, type TestEnv } from "../test/harness.js";
import { startWorkers, stopWorkers } from "../test/workers.js";
import { recordings } from "../db/schema.js";
import { cachedHls, uploadHls, HOUR_720P } from "./media.js";

const TARGET = 1.0;
const RUNS = 3;
const env = await createTestEnv("bench-convert");

async function consumerIdle(e: TestEnv) {
  const jsm = await jetstreamManager(e.nc);
  await waitFor("the convert consumer to drain the segment events", async () => {
    const i = await jsm.consumers.info(e.config.nats.stream, e.config.nats.consumers.convert);
    return i.num_pending === 0 && i.num_ack_pending === 0;
  }, 300_000, 250);
}

/** CPU seconds a process used so far, on its own and in its waited-for children (FFmpeg, ffprobe): utime + stime, cutime + cstime at 100 ticks a second. */
async function cpuSeconds(pid: number): Promise<{ own: number; children: number }> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ").map(Number);
  return { own: (f[11]! + f[12]!) / 100, children: (f[13]! + f[14]!) / 100 };
}

const loadAverage = async () => (await readFile("/proc/loadavg", "utf8")).split(" ")[0];

/** The plain copy: every segment read once and streamed into one object, as a lower bound for convert. */
async function plainCopy(prefix: string, segments: string[], target: string): Promise<number> {
  const t0 = performance.now();
  const body = new PassThrough({ highWaterMark: 8 * 1024 * 1024 });
  const up = new Upload({ client: env.s3, params: { Bucket: env.config.s3.recordingsBucket, Key: target, Body: body }, partSize: 16 * 1024 * 1024, queueSize: 4 });
  const reading = (async () => {
    for (const s of segments) {
      const res = await env.s3.send(new GetObjectCommand({ Bucket: env.config.s3.hlsBucket, Key: `${prefix}/${s}` }));
      // Written by hand: pipeline(…, { end: false }) leaves a close listener on `body` per segment.
      for await (const chunk of res.Body as Readable) if (!body.write(chunk)) await once(body, "drain");
    }
    body.end();
  })();
  await Promise.all([reading, up.done()]);
  return (performance.now() - t0) / 1000;
}

try {
  const hour = await cachedHls(HOUR_720P);
  const playlistText = await readFile(join(hour.dir, hour.playlist), "utf8");
  const segments = (parsePlaylist(playlistText, hour.playlist) as MediaPlaylist).segments.map((s) => s.uri);
  const workers = await startWorkers(env, "functions/convert/main.ts", 1);
  try {
    process.stderr.write(`uploading ${hour.segments} segments (${(hour.bytes / 1e9).toFixed(2)} GB)\n`);
    await uploadHls(env.s3, env.config.s3.hlsBucket, hour.dir, "bench/hour", { playlists: false });
    await consumerIdle(env);

    // Copy and convert alternate, RUNS times: both see the same load on a shared machine; the median pair counts.
    const pairs: { copy: number; convert: number }[] = [];
    let row;
    for (let run = 1; run <= RUNS; run++) {
      const load = await loadAverage();
      const copyCpu0 = process.cpuUsage();
      const copy = await plainCopy("bench/hour", segments, `bench/copy-${run}.bin`);
      const copyCpu = (({ user, system }) => (user + system) / 1e6)(process.cpuUsage(copyCpu0));
      const convertCpu0 = await cpuSeconds(workers[0]!.proc.pid!);
      // A changed playlist (a comment line) is a new version: convert runs again on the same folder.
      const body = run === 1 ? playlistText : `${playlistText}# run ${run}\n`;
      const t0 = performance.now();
      const put = await env.s3.send(new PutObjectCommand({ Bucket: env.config.s3.hlsBucket, Key: `bench/hour/${hour.playlist}`, Body: body }));
      const etag = (put.ETag ?? "").replaceAll('"', "");
      row = await waitFor("the hour to be converted", async () => {
        const [r] = await env.db.select().from(recordings).where(eq(recordings.sourcePrefix, "bench/hour"));
        return r && r.playlistEtag === etag && (r.status === "ready" || r.status === "failed") ? r : undefined;
      }, 1_800_000, 100);
      const convert = (performance.now() - t0) / 1000;
      if (row.status !== "ready") throw new Error(`conversion failed: ${row.error}`);
      pairs.push({ copy, convert });
      const cpu = await cpuSeconds(workers[0]!.proc.pid!);
      const [own, children] = [cpu.own - convertCpu0.own, cpu.children - convertCpu0.children];
      console.log(`  run ${run}: plain copy ${copy.toFixed(1)} s, playlist PUT → ready ${convert.toFixed(1)} s, ratio ${(convert / copy).toFixed(2)}× (load ${load}; CPU: copy ${copyCpu.toFixed(1)} s in Node, convert ${(own + children).toFixed(1)} s = replica ${own.toFixed(1)} + FFmpeg/ffprobe ${children.toFixed(1)})`);
      // Where the time went, from the replica's "recording ready" line (ms per stage of the job that made it).
      const readyLines = () => workers.flatMap((w) => w.output).filter((l) => l.includes('"stage":"ready"'));
      const ready = await waitFor("the replica's ready line", () => readyLines()[run - 1], 10_000, 50).catch(() => undefined);
      if (ready) {
        const { stages } = JSON.parse(ready) as { stages?: Record<string, number> };
        console.log(`    stages (s): ${Object.entries(stages ?? {}).map(([k, v]) => `${k} ${(v / 1000).toFixed(2)}`).join(", ")}`);
      }
    }
    const median = [...pairs].sort((a, b) => a.convert / a.copy - b.convert / b.copy)[Math.floor(pairs.length / 2)]!;
    const ratio = median.convert / median.copy;
    console.log(`convert: 1 h of 720p, ${hour.segments} segments, ${(hour.bytes / 1e9).toFixed(2)} GB → MP4 ${((row!.fileSizeBytes ?? 0) / 1e9).toFixed(2)} GB, ${row!.durationSeconds?.toFixed(1)} s, ${row!.width}x${row!.height} ${row!.videoCodec}/${row!.audioCodec}`);
    console.log(`  median run: playlist PUT → ready ${median.convert.toFixed(1)} s vs plain copy (GET all + PUT one) ${median.copy.toFixed(1)} s`);
    console.log(`  ratio ${ratio.toFixed(2)}× (target ≤ ${TARGET}×): ${ratio <= TARGET ? "met" : "NOT met"}`);
  } finally {
    await stopWorkers(workers);
  }
} finally {
  await env.close();
}
