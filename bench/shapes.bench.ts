// What each HLS shape costs to convert: one minute of 720p in every shape FFmpeg's HLS muxer writes
// (plain MPEG-TS as the reference, separate audio rendition, two languages + WebVTT, AES-128, HEVC
// fMP4, single-file byte ranges, a three-variant ladder, audio only, a reconnect in another format,
// a damaged segment), each timed from its first playlist PUT to ready and from the claim to ready,
// against a plain copy of the same bytes (GET every object of the folder, streamed into one PUT).
// Run alone: node --import tsx bench/shapes.bench.ts   (or `node --import tsx bench/run.ts shapes`)
import { existsSync } from "node:fs";
import { once } from "node:events";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { PassThrough, type Readable } from "node:stream";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { eq } from "drizzle-orm";
import { createTestEnv, waitFor } from "../test/harness.js";
import { makeHls, makeReconnect, makeShape, type Shape } from "../test/media.js";
import { startWorkers, stopWorkers } from "../test/workers.js";
import { recordings } from "../db/schema.js";
import { listFolder, uploadFiles, type LocalFile } from "../functions/drop/upload.js";
import { BENCH_CACHE } from "./media.js";

const SECONDS = 60;
const SIZE = "1280x720";
type Case = { name: string; make: (dir: string) => Promise<unknown>; damage?: string };

const cases: Case[] = [
  { name: "plain MPEG-TS", make: (d) => makeHls(d, { seconds: SECONDS, size: SIZE, segmentSeconds: 2 }) },
  ...(["audio-rendition", "languages", "aes", "hevc-fmp4", "single-file", "ladder", "audio-only"] as Shape[]).map((s) => ({ name: s, make: (d: string) => makeShape(d, s, SECONDS, SIZE) })),
  { name: "reconnect 720p→1080p (re-encoded)", make: (d) => makeReconnect(d, { size: SIZE, seconds: SECONDS / 2 }, { size: "1920x1080", seconds: SECONDS / 2, sampleRate: 44100, channels: 1 }) },
  { name: "damaged segment (located)", make: (d) => makeHls(d, { seconds: SECONDS, size: SIZE, segmentSeconds: 2 }), damage: "seg010.ts" },
];

const env = await createTestEnv("bench-shapes");

/** Made once and kept under bench/.cache: making HEVC and a ladder takes longer than converting them. */
async function cached(c: Case): Promise<string> {
  const dir = join(BENCH_CACHE, `shape-${c.name.replace(/[^A-Za-z0-9]+/g, "_")}-${SECONDS}s-${SIZE}`);
  if (existsSync(join(dir, ".done"))) return dir;
  await rm(`${dir}.tmp`, { recursive: true, force: true });
  await mkdir(`${dir}.tmp`, { recursive: true });
  process.stderr.write(`making ${c.name}\n`);
  await c.make(`${dir}.tmp`);
  await writeFile(join(`${dir}.tmp`, ".done"), "");
  await rm(dir, { recursive: true, force: true });
  await rename(`${dir}.tmp`, dir);
  return dir;
}

async function plainCopy(prefix: string, files: LocalFile[], target: string): Promise<number> {
  const t0 = performance.now();
  const body = new PassThrough({ highWaterMark: 8 * 1024 * 1024 });
  const up = new Upload({ client: env.s3, params: { Bucket: env.config.s3.recordingsBucket, Key: target, Body: body }, partSize: 16 * 1024 * 1024, queueSize: 4 });
  const reading = (async () => {
    for (const f of files) {
      const res = await env.s3.send(new GetObjectCommand({ Bucket: env.config.s3.hlsBucket, Key: `${prefix}/${f.rel}` }));
      for await (const chunk of res.Body as Readable) if (!body.write(chunk)) await once(body, "drain");
    }
    body.end();
  })();
  await Promise.all([reading, up.done()]);
  return (performance.now() - t0) / 1000;
}

try {
  const dirs = [];
  for (const c of cases) dirs.push(await cached(c));
  const workers = await startWorkers(env, "functions/convert/main.ts", 1);
  const rows: string[] = [];
  try {
    for (const [i, c] of cases.entries()) {
      const prefix = `bench/shape-${i}`;
      const files = (await listFolder(dirs[i]!)).filter((f) => !f.rel.startsWith("."));
      const media = files.filter((f) => !f.rel.endsWith(".m3u8"));
      await uploadFiles(env.s3, env.config.s3.hlsBucket, prefix, media);
      if (c.damage) await env.s3.send(new PutObjectCommand({ Bucket: env.config.s3.hlsBucket, Key: `${prefix}/${c.damage}`, Body: new Uint8Array(Array.from({ length: 500_000 }, (_, k) => (k * 7919) % 251)) }));
      const copy = await plainCopy(prefix, media, `bench/shape-copy-${i}.bin`);
      const t0 = performance.now();
      await uploadFiles(env.s3, env.config.s3.hlsBucket, prefix, files.filter((f) => f.rel.endsWith(".m3u8")));
      const row = await waitFor(`${c.name} to be converted`, async () => {
        const [r] = await env.db.select().from(recordings).where(eq(recordings.sourcePrefix, prefix));
        return r && (r.status === "ready" || r.status === "failed") ? r : undefined;
      }, 1_800_000, 100);
      const total = (performance.now() - t0) / 1000;
      const claimToReady = (row.updatedAt.getTime() - row.createdAt.getTime()) / 1000;
      const bytes = media.reduce((s, f) => s + f.size, 0);
      const what = row.status === "ready" ? `${row.width ?? "-"}x${row.height ?? "-"} ${row.videoCodec ?? "-"}/${row.audioCodec} ${row.audioTracks?.length ?? 0} audio, ${row.subtitles?.length ?? 0} subs${row.warnings?.length ? `, warning: ${row.warnings[0]!.missingSeconds} s missing` : ""}` : `FAILED: ${row.error}`;
      const line = `${c.name.padEnd(36)} ${(bytes / 1e6).toFixed(1).padStart(6)} MB  copy ${copy.toFixed(1).padStart(5)} s  PUT→ready ${total.toFixed(1).padStart(5)} s  claim→ready ${claimToReady.toFixed(1).padStart(5)} s  ratio ${(claimToReady / copy).toFixed(2).padStart(5)}×  ${what}`;
      console.log(line);
      rows.push(line);
    }
  } finally {
    await stopWorkers(workers);
  }
  console.log(`\nshapes: ${SECONDS} s of ${SIZE} each; ratio = claim→ready / plain copy of the same bytes. PUT→ready of a folder without a master beside other folders includes the ${5} s wait for one (MASTER_GRACE_MS).`);
} finally {
  await env.close();
}
