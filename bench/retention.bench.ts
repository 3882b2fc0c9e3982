// The retention job over 100k recordings of which 1k are due (objects in the real store for the due ones),
// and the bytes freed per broadcast hour with the default settings (SOURCE_RETENTION=7 days, recordings kept).
// Run alone: node --import tsx bench/retention.bench.ts   (or `make bench` with every benchmark)
import { readdir, readFile, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { sql } from "drizzle-orm";
import { createTestEnv, type TestEnv } from "../test/harness.js";
import { makeHls } from "../test/media.js";
import { createLogger } from "../lib/log.js";
import { putText } from "../lib/s3.js";
import { runRetention } from "../functions/retention/retention.js";

const TOTAL = Number(process.env.BENCH_RETENTION_TOTAL ?? 100_000);
const DUE = Number(process.env.BENCH_RETENTION_DUE ?? 1_000);
const log = createLogger("bench", "silent");

/** TOTAL ready rows; the DUE first became ready `dueDaysAgo` days ago, the rest now. Objects only for the due ones. */
async function seed(env: TestEnv, dueDaysAgo: number): Promise<void> {
  await env.db.execute(sql`delete from recordings`);
  await env.db.execute(sql`
    insert into recordings (stream_id, title, source_prefix, status, progress, file_path, thumbnail_path, file_size_bytes, source_bytes, ready_at)
    select 'cam' || (i % 20), 'bench ' || i, 'cam' || (i % 20) || '/s' || i, 'ready', 1, 'cam' || (i % 20) || '/s' || i || '/recording.mp4',
           'cam' || (i % 20) || '/s' || i || '/thumbnail.jpg', 1000000, 1100000,
           case when i <= ${DUE} then now() - ${dueDaysAgo} * interval '1 day' else now() end
    from generate_series(1, ${TOTAL}) as i`);
  await env.db.execute(sql`analyze recordings`);
  const { hlsBucket, recordingsBucket } = env.config.s3;
  const puts: (() => Promise<unknown>)[] = [];
  for (let i = 1; i <= DUE; i++) {
    const p = `cam${i % 20}/s${i}`;
    puts.push(
      () => putText(env.s3, hlsBucket, `${p}/seg000.ts`, "x", "video/mp2t"),
      () => putText(env.s3, hlsBucket, `${p}/index.m3u8`, "#EXTM3U\n", "application/vnd.apple.mpegurl"),
      () => putText(env.s3, recordingsBucket, `${p}/recording.mp4`, "x", "video/mp4"),
      () => putText(env.s3, recordingsBucket, `${p}/thumbnail.jpg`, "x", "image/jpeg"),
    );
  }
  for (let i = 0; i < puts.length; i += 32) await Promise.all(puts.slice(i, i + 32).map((f) => f()));
}

async function timed(env: TestEnv, source: string, recordingDays: number) {
  const t0 = performance.now();
  const r = await runRetention({ s3: env.s3, db: env.db, log, config: { ...env.config, retention: { source, recordingDays } } });
  return { ...r, ms: Math.round(performance.now() - t0) };
}

const env = await createTestEnv("bench-retention");
try {
  await seed(env, 2);
  const idle = await timed(env, "keep", 30);
  const recs = await timed(env, "keep", 1);
  console.log(`retention: ${TOTAL} recordings, ${DUE} due`);
  console.log(`  pass with nothing due: ${idle.ms} ms`);
  console.log(`  recording retention (1 day, ${DUE} due, 4 objects each): ${recs.ms} ms, ${recs.recordingsDeleted} recordings, ${recs.objectsDeleted} objects (${(recs.ms / Math.max(1, recs.recordingsDeleted)).toFixed(1)} ms per recording)`);
  await seed(env, 8);
  const srcs = await timed(env, "7", 0);
  console.log(`  source retention (default 7 days, ${DUE} due, 2 objects each): ${srcs.ms} ms, ${srcs.sourcesDeleted} sources, ${srcs.objectsDeleted} objects (${(srcs.ms / Math.max(1, srcs.sourcesDeleted)).toFixed(1)} ms per source)`);
  if (recs.recordingsDeleted !== DUE || srcs.sourcesDeleted !== DUE) process.exitCode = 1;

  // Bytes per broadcast hour at OBS's default output (2500 kbps video, 160 kbps audio, 720p), as the gateway stores it.
  const dir = join(tmpdir(), `bench-retention-${env.id}`);
  await makeHls(dir, { seconds: 60, segmentSeconds: 4, size: "1280x720", videoBitrate: "2500k" });
  let hlsBytes = 0;
  for (const f of await readdir(dir)) hlsBytes += (await stat(join(dir, f))).size;
  await execa("ffmpeg", ["-hide_banner", "-loglevel", "error", "-y", "-i", join(dir, "index.m3u8"), "-c", "copy", "-movflags", "+faststart", join(dir, "out.mp4")]);
  const mp4Bytes = (await readFile(join(dir, "out.mp4"))).length;
  const gb = (b: number) => (b / 1e9).toFixed(2);
  console.log(`bytes per broadcast hour (2500k+aac, 720p): source HLS ${gb(hlsBytes * 60)} GB, MP4 ${gb(mp4Bytes * 60)} GB`);
  console.log(`  default settings (sources 7 days after ready, recordings forever): ${gb(hlsBytes * 60)} GB freed per broadcast hour, 7 days after it; ${gb(mp4Bytes * 60)} GB kept`);
} finally {
  await env.close();
}
