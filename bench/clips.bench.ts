// Clip latency: from the clip's job queued on the jobs stream (as the API queues it after inserting the row)
// to clip.ready announced by a replica of the clip function (its MP4 and poster stored, its row ready), for a
// 60 s clip of a 1-minute and a 1-hour 720p recording, keyframe cut and precise cut, side by side in one run.
// Target (issue #13): under 2 s (keyframe) and 5 s (precise) for both parents, i.e. a cost that does not
// grow with the parent's length. One clip replica, started as `make up` starts it.
// Run alone: node --import tsx bench/clips.bench.ts   (or `make bench` with every benchmark)
import { existsSync } from "node:fs";
import { createReadStream } from "node:fs";
import { mkdir, rename, stat } from "node:fs/promises";
import { join } from "node:path";
import { cpus, loadavg } from "node:os";
import { randomUUID } from "node:crypto";
import { execa } from "execa";
import { Upload } from "@aws-sdk/lib-storage";
import { eq } from "drizzle-orm";
import { clipPrefix } from "../lib/layout.js";
import { insertClip } from "../db/recordings.js";
import { recordings } from "../db/schema.js";
import { publishClipJob } from "../functions/clip/jobs.js";
import { createTestEnv } from "../test/harness.js";
import { startWorkers, stopWorkers, type Worker } from "../test/workers.js";
import { BENCH_CACHE } from "./media.js";

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const TARGET_MS = { keyframe: 2000, precise: 5000 };

/** A 1-minute 720p MP4 at about 3 Mbps (4 s GOP), and an hour of it by stream copy (no re-encoding). */
async function parents(): Promise<{ minute: string; hour: string }> {
  const dir = join(BENCH_CACHE, "clips");
  await mkdir(dir, { recursive: true });
  const minute = join(dir, "minute-720p.mp4");
  const hour = join(dir, "hour-720p.mp4");
  const q = ["-hide_banner", "-loglevel", "error", "-y"];
  if (!existsSync(minute)) {
    process.stderr.write("making a 1-minute 720p MP4 in bench/.cache/clips (once)\n");
    await execa("ffmpeg", [...q, "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25:duration=60", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=60",
      "-c:v", "libx264", "-preset", "veryfast", "-b:v", "3M", "-g", "100", "-keyint_min", "100", "-sc_threshold", "0", "-pix_fmt", "yuv420p",
      "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart", `${minute}.partial.mp4`]);
    await rename(`${minute}.partial.mp4`, minute);
  }
  if (!existsSync(hour)) {
    process.stderr.write("making a 1-hour MP4 from it by stream copy (once)\n");
    await execa("ffmpeg", [...q, "-stream_loop", "59", "-i", minute, "-c", "copy", "-movflags", "+faststart", `${hour}.partial.mp4`]);
    await rename(`${hour}.partial.mp4`, hour);
  }
  return { minute, hour };
}

const env = await createTestEnv("bench-clips");
let clippers: Worker[] = [];
// clip.ready of each clip, as it is announced on the test env's events stream.
const announced = new Map<string, () => void>();
const sub = env.nc.subscribe(`${env.config.events.subjectPrefix}.clip.ready`, {
  callback: (_err, m) => {
    announced.get((JSON.parse(m.string()) as { data: { id: string } }).data.id)?.();
  },
});
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function storeParent(path: string, label: string) {
  const key = `bench/${label}/recording.mp4`;
  const t0 = performance.now();
  await new Upload({ client: env.s3, params: { Bucket: env.config.s3.recordingsBucket, Key: key, Body: createReadStream(path), ContentType: "video/mp4" }, queueSize: 4, partSize: 16 * 1024 * 1024 }).done();
  const { stdout } = await execa("ffprobe", ["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path]);
  const size = (await stat(path)).size;
  process.stderr.write(`uploaded the ${label} parent (${(size / 1e6).toFixed(0)} MB, ${Number(stdout).toFixed(0)} s) in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  const [row] = await env.db.insert(recordings).values({ streamId: "bench", title: label, sourcePrefix: `bench/${label}`, status: "ready", filePath: key, durationSeconds: Number(stdout), fileSizeBytes: size }).returning();
  return { row: row!, key, size, duration: Number(stdout) };
}

async function clipOnce(parent: { row: { id: string }; key: string }, start: number, end: number, precise: boolean): Promise<number> {
  const clipId = randomUUID();
  await insertClip(env.db, { id: clipId, parentId: parent.row.id, streamId: "bench", title: "bench clip", sourcePrefix: clipPrefix(clipId), clipStart: start, clipEnd: end });
  const ready = new Promise<void>((resolve) => announced.set(clipId, resolve));
  const t0 = performance.now();
  await publishClipJob(env.nc, env.config, { clipId, source: { kind: "mp4", bucket: env.config.s3.recordingsBucket, key: parent.key, videoCodec: "h264" }, start, end, precise });
  const timeout = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 120_000).unref());
  if ((await Promise.race([ready, timeout])) === "timeout") throw new Error("no clip.ready within 120 s");
  const ms = performance.now() - t0;
  announced.delete(clipId);
  const [row] = await env.db.select().from(recordings).where(eq(recordings.id, clipId));
  if (row?.status !== "ready") throw new Error(`clip failed: ${row?.error}`);
  return ms;
}

try {
  clippers = await startWorkers(env, "functions/clip/main.ts", 1, {}, "benchclip");
  const files = await parents();
  const minute = await storeParent(files.minute, "1-minute");
  const hour = await storeParent(files.hour, "1-hour");
  // 60 s out of each: the whole minute, and a minute from the middle of the hour off its keyframes. The whole
  // minute from 0 is keyframe-aligned, leaving precise nothing to re-encode: its precise case is 0.7–60 s.
  const cases = [
    { parent: "1 minute", p: minute, start: 0, precise: false },
    { parent: "1 hour", p: hour, start: 1801.3, precise: false },
    { parent: "1 minute", p: minute, start: 0.7, precise: true },
    { parent: "1 hour", p: hour, start: 1801.3, precise: true },
  ];
  const rows: Record<string, unknown>[] = [];
  let ok = true;
  const times = new Map<number, number[]>();
  // Interleaved: every run does each case once, so load on the shared machine falls on all of them alike.
  for (let r = 0; r < RUNS + 1; r++) {
    for (const [i, c] of cases.entries()) {
      const start = c.start;
      const end = Math.min(start + 60, c.p.duration);
      const ms = await clipOnce(c.p, start, end, c.precise).catch((err: Error) => { throw new Error(`${c.parent} ${c.precise ? "precise" : "keyframe"} ${start}–${end}: ${err.message}`); });
      if (r > 0) times.set(i, [...(times.get(i) ?? []), ms]);
    }
  }
  for (const [i, c] of cases.entries()) {
    const t = times.get(i)!;
    const mode = c.precise ? "precise" : "keyframe";
    const target = TARGET_MS[mode];
    rows.push({ parent: c.parent, clip: `${c.start}–${Math.min(c.start + 60, c.p.duration)} s`, parentMb: Math.round(c.p.size / 1e6), mode, median: `${Math.round(median(t))} ms`, max: `${Math.round(Math.max(...t))} ms`, target: `< ${target} ms` });
    if (median(t) >= target) ok = false;
  }
  const machine = { cores: cpus().length, load1m: Number(loadavg()[0]!.toFixed(1)) };
  console.log(`\nclip latency (job queued → clip.ready from a clip replica: MP4 + poster stored, row ready) for a 60 s clip, ${RUNS} interleaved runs after a warm-up`);
  console.log(`machine: ${machine.cores} cores, load average ${machine.load1m} at the end of the run`);
  console.table(rows);
  console.log(JSON.stringify({ bench: "clips", targetMs: TARGET_MS, machine, results: rows }));
  console.log(ok ? "clips: every median under its target" : "clips: at least one median is over its target");
} finally {
  sub.unsubscribe();
  await stopWorkers(clippers);
  await env.close();
}
