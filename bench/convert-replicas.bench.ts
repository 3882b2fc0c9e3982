// Convert throughput: 40 short folders (30 s of 720p at ~3 Mbps each) whose playlists land at once,
// converted by 1, 2 and 4 replicas (FUNCTION_CONCURRENCY=1): recordings per minute, playlist PUTs to
// the last one ready. Segments are uploaded before the clock starts.
// Run alone: node --import tsx bench/convert-replicas.bench.ts   (or `make bench` with every benchmark)
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { jetstreamManager } from "@nats-io/jetstream";
import { and, eq, like, sql } from "drizzle-orm";
import { createTestEnv, waitFor } from "../test/harness.js";
import { startWorkers, stopWorkers } from "../test/workers.js";
import { recordings } from "../db/schema.js";
import { cachedHls, uploadHls, HOUR_720P } from "./media.js";

const FOLDERS = 40;
const REPLICAS = [1, 2, 4];
const env = await createTestEnv("bench-convert-replicas");

try {
  const clip = await cachedHls({ ...HOUR_720P, seconds: 30 });
  const playlist = await readFile(join(clip.dir, clip.playlist));
  const jsm = await jetstreamManager(env.nc);
  const results: string[] = [];
  for (const n of REPLICAS) {
    const workers = await startWorkers(env, "functions/convert/main.ts", n, {}, `r${n}-`);
    try {
      const folders = Array.from({ length: FOLDERS }, (_, i) => `r${n}/folder-${String(i).padStart(2, "0")}`);
      for (let i = 0; i < folders.length; i += 8) await Promise.all(folders.slice(i, i + 8).map((f) => uploadHls(env.s3, env.config.s3.hlsBucket, clip.dir, f, { playlists: false, concurrency: 4 })));
      await waitFor("the segment events to drain", async () => {
        const i = await jsm.consumers.info(env.config.nats.stream, env.config.nats.consumers.convert);
        return i.num_pending === 0 && i.num_ack_pending === 0;
      }, 300_000, 250);

      const t0 = performance.now();
      await Promise.all(folders.map((f) => env.s3.send(new PutObjectCommand({ Bucket: env.config.s3.hlsBucket, Key: `${f}/${clip.playlist}`, Body: playlist }))));
      await waitFor(`${FOLDERS} recordings with ${n} replica(s)`, async () => {
        const [c] = await env.db.select({ n: sql<number>`count(*)::int` }).from(recordings).where(and(like(recordings.sourcePrefix, `r${n}/%`), eq(recordings.status, "ready")));
        return c!.n === FOLDERS;
      }, 1_800_000, 100);
      const seconds = (performance.now() - t0) / 1000;
      const failed = await env.db.select().from(recordings).where(and(like(recordings.sourcePrefix, `r${n}/%`), eq(recordings.status, "failed")));
      if (failed.length) throw new Error(`${failed.length} failed: ${failed[0]!.error}`);
      const line = `  ${n} replica(s): ${FOLDERS} recordings in ${seconds.toFixed(1)} s = ${((FOLDERS / seconds) * 60).toFixed(0)} recordings/min`;
      console.log(line);
      results.push(line);
    } finally {
      await stopWorkers(workers);
    }
  }
  console.log(`convert throughput, ${FOLDERS} folders of 30 s 720p (${(clip.bytes / 1e6).toFixed(1)} MB each):\n${results.join("\n")}`);
} finally {
  await env.close();
}
