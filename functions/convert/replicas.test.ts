import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { CreateMultipartUploadCommand, ListMultipartUploadsCommand, UploadPartCommand } from "@aws-sdk/client-s3";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import { like } from "drizzle-orm";
import { createTestEnv, waitFor, type TestEnv } from "../../test/harness.js";
import { makeHls, probe } from "../../test/media.js";
import { startWorkers, stopWorkers, waitForRecording, type Worker } from "../../test/workers.js";
import { listObjects, presignGet } from "../../lib/s3.js";
import { recordings } from "../../db/schema.js";
import { listFolder, uploadFiles } from "../drop/upload.js";
import { decodeStorageEvent } from "../events/decode.js";

// Several convert replicas sharing one consumer: every folder converted exactly once, and a replica
// killed with -9 in the middle of a job leaves neither a stuck recording nor temp files behind.

let env: TestEnv;
let media: string;
const started: Worker[] = [];

before(async () => {
  env = await createTestEnv("convert-replicas");
  // A short ack_wait so a killed replica's message comes back within seconds (replicas read it at start).
  const jsm = await jetstreamManager(env.nc);
  await jsm.consumers.update(env.config.nats.stream, env.config.nats.consumers.convert, { ack_wait: nanos(4000) });
  media = await mkdtemp(join(tmpdir(), "convert-replicas-"));
  await makeHls(join(media, "short"), { seconds: 4, size: "320x180" });
  // MPEG-2 video and MP2 audio do not fit MP4 as they are: convert re-encodes them, which takes long enough to be killed mid-way.
  await mkdtemp(join(media, "mpeg2-")).then(async (dir) => {
    await execa("ffmpeg", [
      "-hide_banner", "-loglevel", "error", "-y",
      "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25:duration=40",
      "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=40",
      "-c:v", "mpeg2video", "-q:v", "4", "-g", "50", "-c:a", "mp2", "-b:a", "128k",
      "-f", "hls", "-hls_time", "4", "-hls_playlist_type", "vod", "-hls_segment_filename", join(dir, "seg%03d.ts"), join(dir, "index.m3u8"),
    ]);
    await rm(join(media, "mpeg2"), { recursive: true, force: true });
    await execa("mv", [dir, join(media, "mpeg2")]);
  });
});

after(async () => {
  await stopWorkers(started);
  await env.close();
  await rm(media, { recursive: true, force: true });
});

async function mp4Keys(prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of listObjects(env.s3, env.config.s3.recordingsBucket, prefix)) if (o.key.endsWith(".mp4")) keys.push(o.key);
  return keys.sort();
}

test("three replicas and twenty folders dropped at once: every folder converted exactly once", async () => {
  const workers = await startWorkers(env, "functions/convert/main.ts", 3, {}, "scale");
  started.push(...workers);
  const files = await listFolder(join(media, "short"));
  const folders = Array.from({ length: 20 }, (_, i) => `batch/folder-${String(i).padStart(2, "0")}`);
  await Promise.all(folders.map((f) => uploadFiles(env.s3, env.config.s3.hlsBucket, f, files, { concurrency: 2 })));

  for (const f of folders) {
    const r = await waitForRecording(env, f);
    assert.equal(r.status, "ready", `${f}: ${r.error}`);
    assert.equal(r.attempts, 1, `${f} claimed once`);
  }
  const rows = await env.db.select().from(recordings).where(like(recordings.sourcePrefix, "batch/%"));
  assert.equal(rows.length, 20);
  assert.deepEqual(await mp4Keys("batch/"), folders.map((f) => `${f}/${f.split("/")[1]}.mp4`));
  // The work was shared: more than one replica converted folders.
  const converters = new Set(workers.filter((w) => w.output.some((l) => l.includes('"stage":"ready"'))).map((w) => w.id));
  assert.ok(converters.size >= 2, `only ${[...converters].join(", ")} converted`);
  await stopWorkers(workers);
});

test("a replica killed with -9 while FFmpeg re-encodes: another replica finishes the job, no temp files or FFmpeg left", async () => {
  const workers = await startWorkers(env, "functions/convert/main.ts", 2, {}, "kill");
  started.push(...workers);
  await uploadFiles(env.s3, env.config.s3.hlsBucket, "crash/mid-job", await listFolder(join(media, "mpeg2")));

  const holder = await waitFor("a replica to be re-encoding", async () => {
    const [r] = await env.db.select().from(recordings).where(like(recordings.sourcePrefix, "crash/mid-job"));
    return r && r.progress > 0.05 && r.progress < 0.5 ? r.claimedBy : undefined;
  }, 60_000, 100);
  const victim = workers.find((w) => holder!.startsWith(`${w.id}/`))!;
  const workDir = join(env.config.functions.workDir, "convert");
  const deadDirs = await readdir(workDir);
  assert.ok(deadDirs.length > 0, "the job has a temp folder");
  victim.proc.kill("SIGKILL");
  await victim.exited;

  const r = await waitForRecording(env, "crash/mid-job", ["ready", "failed"], 180_000);
  assert.equal(r.status, "ready", r.error ?? "");
  assert.equal(r.attempts, 2, "claimed by the killed replica, then by the survivor");
  assert.deepEqual([r.videoCodec, r.audioCodec], ["h264", "aac"]);
  const p = await probe(await presignGet(env.config.s3, env.config.s3.recordingsBucket, r.filePath!));
  assert.ok(Math.abs(p.duration - 40) <= 0.5, `MP4 lasts ${p.duration} s`);
  assert.deepEqual(await mp4Keys("crash/"), ["crash/mid-job/mid-job.mp4"]);

  await waitFor("the work folder to be empty", async () => (await readdir(workDir)).length === 0, 15_000);
  const ffmpegs = await execa("pgrep", ["-f", env.config.functions.workDir], { reject: false });
  assert.equal(ffmpegs.stdout.trim(), "", "no FFmpeg still working in the dead replica's folder");
  const survivor = workers.find((w) => w !== victim)!;
  assert.ok(survivor.output.some((l) => l.includes("removed temp folders left by replicas that stopped")));
  await stopWorkers([survivor]);
});

test("a finished playlist whose event was lost is converted after the sweep a replica runs at start", async () => {
  // With no replica running, the test takes the folder's events off the consumer itself: they are lost to convert.
  const consumer = await jetstream(env.nc).consumers.get(env.config.nats.stream, env.config.nats.consumers.convert);
  await uploadFiles(env.s3, env.config.s3.hlsBucket, "lost/event", await listFolder(join(media, "short")));
  await waitFor("the playlist's event, to drop it", async () => {
    const m = await consumer.next({ expires: 1000 });
    if (!m) return false;
    m.ack();
    return decodeStorageEvent(m.data).some((e) => e.bucket === env.config.s3.hlsBucket && e.key === "lost/event/index.m3u8");
  });

  const workers = await startWorkers(env, "functions/convert/main.ts", 1, {}, "sweep");
  started.push(...workers);
  const r = await waitForRecording(env, "lost/event");
  assert.equal(r.status, "ready", r.error ?? "");
  assert.ok(workers[0]!.output.some((l) => l.includes('"stage":"sweep"') && l.includes('"published":1')));
  await stopWorkers(workers);
});

test("a multipart upload a killed job left open on the MP4's key is aborted when the folder is converted", async () => {
  // What a replica killed with -9 mid-upload leaves: an open upload on the MP4's key with a part in it.
  const key = "orphan/left/left.mp4";
  const bucket = env.config.s3.recordingsBucket;
  const { UploadId } = await env.s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ContentType: "video/mp4" }));
  await env.s3.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: 2, Body: Buffer.alloc(5 * 1024 * 1024, 1) }));
  const open = async () => ((await env.s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: "orphan/" }))).Uploads ?? []).map((u) => u.UploadId);
  assert.deepEqual(await open(), [UploadId]);

  const workers = await startWorkers(env, "functions/convert/main.ts", 1, {}, "orphan");
  started.push(...workers);
  await uploadFiles(env.s3, env.config.s3.hlsBucket, "orphan/left", await listFolder(join(media, "short")));
  const r = await waitForRecording(env, "orphan/left");
  assert.equal(r.status, "ready", r.error ?? "");
  assert.equal(r.filePath, key);
  assert.deepEqual(await open(), [], "no multipart upload left open under orphan/");
  assert.ok(workers[0]!.output.some((l) => l.includes("aborted multipart uploads")));
  await stopWorkers(workers);
});
