// The clip function as a pool: a replica killed with SIGKILL in the middle of a cut stops heartbeating its
// job; JetStream redelivers it after CLIP_ACK_WAIT_SECONDS and another replica cuts the clip again over the
// same keys. The clip ends ready once, announced once.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { and, eq } from "drizzle-orm";
import { HeadObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { jetstreamManager } from "@nats-io/jetstream";
import { recordings } from "../../db/schema.js";
import { createTestEnv, waitFor, type TestEnv } from "../../test/harness.js";
import { startApi, storeReadyRecording, withToken, type RunningApi } from "../../test/api.js";
import { startWorkers, stopWorkers, type Worker } from "../../test/workers.js";
import { decodeErrors } from "../../test/media.js";

const TOKEN = "test-token-clip-takeover-0123456789";
let env: TestEnv;
let api: RunningApi;
const workers: Worker[] = [];

before(async () => {
  // A short ack wait so the dead replica's job comes back in seconds (heartbeats go every third of it).
  env = await createTestEnv("clip-takeover", { CLIP_ACK_WAIT_SECONDS: "3" });
  api = await startApi(env, withToken(TOKEN));
});
after(async () => {
  await api?.close();
  await stopWorkers(workers);
  await env?.close();
});

test("a clip replica killed with SIGKILL mid-cut: another replica finishes the clip, which is ready once", async (t) => {
  // 30 s of 720p with a single keyframe: a precise cut of 0.5–29.5 s has no keyframe inside its range to copy
  // from, so it re-encodes all of it — seconds of work, a window to kill the replica in.
  const dir = join(tmpdir(), `clip-takeover-${process.pid}`);
  await mkdir(dir, { recursive: true });
  const mp4 = join(dir, "one-gop.mp4");
  await execa("ffmpeg", [
    "-hide_banner", "-loglevel", "error", "-y",
    "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25:duration=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=30",
    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "2000", "-keyint_min", "2000", "-sc_threshold", "0",
    "-c:a", "aac", "-movflags", "+faststart", mp4,
  ]);
  const parent = await storeReadyRecording(env, "studio/one-gop", { durationSeconds: 30, filePath: "studio/one-gop/one-gop.mp4" });
  await env.s3.send(new PutObjectCommand({ Bucket: env.config.s3.recordingsBucket, Key: "studio/one-gop/one-gop.mp4", Body: await readFile(mp4), ContentType: "video/mp4" }));

  const readyEvents: string[] = [];
  const sub = env.nc.subscribe(`${env.config.events.subjectPrefix}.clip.ready`, {
    callback: (_err, m) => {
      readyEvents.push((JSON.parse(m.string()) as { data: { id: string } }).data.id);
    },
  });

  const [first] = await startWorkers(env, "functions/clip/main.ts", 1, {}, "clipa");
  workers.push(first!);
  const res = await fetch(`${api.url}/recordings/${parent.id}/clips`, { method: "POST", headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" }, body: JSON.stringify({ start: 0.5, end: 29.5, precise: true }) });
  const created = (await res.json()) as { id: string };
  assert.equal(res.status, 201, JSON.stringify(created));

  await waitFor("the first replica to start cutting", () => first!.output.some((l) => l.includes('"msg":"cutting clip"')), 60_000, 50);
  first!.proc.kill("SIGKILL");
  await first!.exited;
  const [row0] = await env.db.select().from(recordings).where(eq(recordings.id, created.id));
  assert.equal(row0?.status, "processing", "the first replica finished before it was killed: the cut was too quick to test a takeover");
  assert.ok(!first!.output.some((l) => l.includes('"msg":"clip ready"')), "the killed replica stored the clip");

  const [second] = await startWorkers(env, "functions/clip/main.ts", 1, {}, "clipb");
  workers.push(second!);
  const clip = await waitFor("the clip ready", async () => {
    const [r] = await env.db.select().from(recordings).where(eq(recordings.id, created.id));
    if (r?.status === "failed") throw new Error(`clip failed: ${r.error}`);
    return r?.status === "ready" ? r : undefined;
  }, 120_000);
  const done = second!.output.find((l) => l.includes('"msg":"clip ready"'));
  assert.ok(done, "the second replica cut the clip");
  assert.match(second!.output.find((l) => l.includes('"msg":"cutting clip"'))!, /"attempt":2/, "the second replica got the job as its second delivery");
  t.diagnostic(`taken over and ready: ${JSON.parse(done!).ms} ms of cutting on the second replica`);

  const clips = await env.db.select().from(recordings).where(and(eq(recordings.parentId, parent.id), eq(recordings.kind, "clip")));
  assert.equal(clips.length, 1, "one clip row");
  assert.ok(Math.abs(clip.durationSeconds! - 29) < 0.05, `the clip lasts ${clip.durationSeconds} s, not 29 s`);
  const video = await env.s3.send(new HeadObjectCommand({ Bucket: env.config.s3.recordingsBucket, Key: clip.filePath! }));
  assert.equal(video.ContentLength, clip.fileSizeBytes, "the stored MP4 is the one the row describes");
  const page = (await (await fetch(`${api.url}/recordings/${clip.id}`)).json()) as { videoUrl: string };
  assert.equal(await decodeErrors(page.videoUrl), "", "the clip decodes cleanly");

  // The job is gone from the work queue (acked), and clip.ready was announced once.
  await waitFor("clip.ready announced", () => readyEvents.includes(clip.id), 10_000);
  await env.nc.flush();
  const info = await (await jetstreamManager(env.nc)).streams.info(env.config.jobs.stream);
  assert.equal(info.state.messages, 0, "the clip job is still queued");
  sub.unsubscribe();
  assert.deepEqual(readyEvents.filter((id) => id === clip.id), [clip.id], "clip.ready announced once");
});
