// ABR packaging cost: the default ladder (ABR_LADDER's default) from 720p and 1080p sources, made the way the
// package function makes it (one FFmpeg: decode once, split → scale → encode every rung) and, side by side,
// with one FFmpeg per rendition (each decoding the source itself, all running at once). Prints wall and CPU
// seconds, the ratio, and seconds of media packaged per second per core.
// Run alone: node --import tsx bench/abr.bench.ts   (BENCH_SECONDS=30 by default; the machine is shared)
import { availableParallelism } from "node:os";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { ladderArgs, probeSource } from "../functions/package/encode.js";
import { parseLadder, planLadder, type PlannedRendition } from "../functions/package/ladder.js";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 30);
const SEGMENT = 4;
const LADDER = parseLadder("1080,720,480,360,240");
const root = `/tmp/vod-bench-abr`;
const cores = availableParallelism();

interface Cost {
  wall: number;
  cpu: number;
}

/** Runs FFmpeg under /usr/bin/time: wall seconds and user+sys CPU seconds of the process and its threads. */
async function timed(args: string[]): Promise<Cost> {
  const r = await execa("/usr/bin/time", ["-f", "TIME %e %U %S", "ffmpeg", ...args], { reject: false });
  const line = String(r.stderr).split("\n").find((l) => l.startsWith("TIME "));
  if (r.exitCode !== 0 || !line) throw new Error(`ffmpeg failed: ${String(r.stderr).split("\n").slice(-4).join(" | ")}`);
  const [, e, u, s] = line.split(" ").map(Number);
  return { wall: e!, cpu: u! + s! };
}

async function source(height: number): Promise<string> {
  const width = Math.round((height * 16) / 9);
  const file = join(root, `src-${height}p.mp4`);
  // A broadcast-like source: H.264 at a typical bitrate for its size, 2 s GOP, AAC.
  await execa("ffmpeg", ["-hide_banner", "-v", "error", "-y", "-f", "lavfi", "-i", `testsrc2=size=${width}x${height}:rate=30:duration=${SECONDS}`, "-f", "lavfi", "-i", `sine=frequency=440:sample_rate=48000:duration=${SECONDS}`,
    "-c:v", "libx264", "-preset", "veryfast", "-b:v", height >= 1080 ? "6000k" : "3500k", "-g", "60", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart", file]);
  return file;
}

async function single(input: string, renditions: PlannedRendition[], hasAudio: boolean): Promise<Cost> {
  const outDir = join(root, "single");
  await rm(outDir, { recursive: true, force: true });
  await mkdir(outDir, { recursive: true });
  return timed(ladderArgs({ input, outDir, renditions, hasAudio, segmentSeconds: SEGMENT }).filter((a, i, all) => a !== "-progress" && all[i - 1] !== "-progress"));
}

/** The same renditions, one FFmpeg each (audio with the first), all started together. */
async function perRendition(input: string, renditions: PlannedRendition[], hasAudio: boolean): Promise<Cost> {
  const t0 = performance.now();
  const costs = await Promise.all(
    renditions.map(async (r, i) => {
      const outDir = join(root, `per-${i}`);
      await rm(outDir, { recursive: true, force: true });
      await mkdir(outDir, { recursive: true });
      const args = ladderArgs({ input, outDir, renditions: [r], hasAudio: hasAudio && i === 0, segmentSeconds: SEGMENT });
      return timed(args.filter((a, j, all) => a !== "-progress" && all[j - 1] !== "-progress"));
    }),
  );
  return { wall: (performance.now() - t0) / 1000, cpu: costs.reduce((s, c) => s + c.cpu, 0) };
}

await rm(root, { recursive: true, force: true });
await mkdir(root, { recursive: true });
console.log(`ABR ladder bench: ${SECONDS} s sources, default ladder ${LADDER.map((r) => r.height).join("/")}, ${SEGMENT} s segments, ${cores} cores, x264 veryfast`);
for (const height of [720, 1080]) {
  const input = await source(height);
  const probed = await probeSource("ffprobe", input, SEGMENT);
  const renditions = planLadder(probed, LADDER);
  const one = await single(input, renditions, probed.hasAudio);
  const many = await perRendition(input, renditions, probed.hasAudio);
  const perCore = (c: Cost) => (probed.duration / c.wall / cores).toFixed(2);
  console.log(`\n${height}p source → ${renditions.map((r) => `${r.name}${r.copy ? "(copy)" : ""}`).join(", ")}`);
  console.log(`  one process, decode once : wall ${one.wall.toFixed(1)} s, CPU ${one.cpu.toFixed(1)} s, ${perCore(one)} media s per s per core, ${(probed.duration / one.cpu).toFixed(2)} media s per CPU s`);
  console.log(`  one process per rendition: wall ${many.wall.toFixed(1)} s, CPU ${many.cpu.toFixed(1)} s, ${perCore(many)} media s per s per core, ${(probed.duration / many.cpu).toFixed(2)} media s per CPU s`);
  console.log(`  ratio (per-rendition / single): wall ${(many.wall / one.wall).toFixed(2)}x, CPU ${(many.cpu / one.cpu).toFixed(2)}x`);
}
await rm(root, { recursive: true, force: true });
