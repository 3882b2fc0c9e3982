// Instant replay: during a running SRT broadcast, a clip of the last 20 s is ready while the stream is
// still live; after the broadcast ends and converts, the clip is unchanged and the recording complete.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { HeadObjectCommand } from "@aws-sdk/client-s3";
import { createTestEnv, waitFor, type TestEnv } from "../harness.js";
import { decodeErrors, probe } from "../media.js";
import { startWorkers, stopWorkers, waitForRecording, type Worker } from "../workers.js";
import { startGatewayProcess, type GatewayProcess } from "../gateway/process.js";
import { publish } from "../gateway/caller.js";
import { readPlaylist, sessionFolders } from "../gateway/store.js";
import { startApi, withToken, type RunningApi } from "../api.js";

const TOKEN = "test-token-live-clip-0123456789";
const BROADCAST_SECONDS = 45;
let env: TestEnv;
let gw: GatewayProcess;
let api: RunningApi;
let workers: Worker[] = [];

before(async () => {
  env = await createTestEnv("e2e-live-clip");
  workers = await startWorkers(env, "functions/convert/main.ts", 1);
  // The API queues the clip; a replica of the clip function cuts it.
  workers.push(...(await startWorkers(env, "functions/clip/main.ts", 1, {}, "clip")));
  gw = await startGatewayProcess({ ...env.env, LOG_LEVEL: "info" });
  api = await startApi(env, withToken(TOKEN));
});

after(async () => {
  await api?.close();
  await gw?.stop();
  await stopWorkers(workers);
  await env?.close();
});

test("a clip of the last 20 s of a running SRT broadcast is ready while it is live and unchanged after it is converted", async (t) => {
  const created = await gw.api("POST", "/streams", { name: "replay", title: "Instant replay" });
  assert.equal(created.status, 201);
  let ended = false;
  const caller = publish(created.json.obs.server, { seconds: BROADCAST_SECONDS });
  void caller.then(() => (ended = true));

  // Wait until more than 20 s are stored, as the live playlist says.
  const folder = await waitFor("the session folder", async () => (await sessionFolders(env.s3, env.config.s3.hlsBucket, "replay"))[0], 30_000);
  await waitFor("20 s stored", async () => {
    const p = await readPlaylist(env.s3, env.config.s3.hlsBucket, `${folder}/index.m3u8`);
    return p && p.segments.reduce((s, x) => s + x.duration, 0) >= 24;
  }, 60_000, 500);

  const asked = performance.now();
  const res = await fetch(`${api.url}/live/replay/clips`, { method: "POST", headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" }, body: JSON.stringify({ seconds: 20 }) });
  const body = (await res.json()) as any;
  assert.equal(res.status, 201, JSON.stringify(body));
  const clip = await waitFor("the live clip ready", async () => {
    const r = (await (await fetch(`${api.url}/recordings/${body.id}`)).json()) as any;
    if (r.status === "failed") throw new Error(`clip failed: ${r.error}`);
    return r.status === "ready" ? r : undefined;
  }, 30_000, 200);
  t.diagnostic(`live clip of ${(clip.clipEnd - clip.clipStart).toFixed(1)} s ready ${Math.round(performance.now() - asked)} ms after it was asked for`);
  assert.equal(ended, false, "the clip was ready only after the broadcast ended");
  const live = (await (await fetch(`${api.url}/live`)).json()) as any;
  assert.ok(live.items.some((b: any) => b.stream === "replay"), "the broadcast is still live");
  assert.equal(clip.kind, "clip");
  assert.ok(clip.clipEnd - clip.clipStart >= 20 - 0.05, `clip covers ${clip.clipStart}–${clip.clipEnd}`);
  assert.ok(clip.clipEnd - clip.clipStart <= 20 + 6 + 0.05, `clip covers ${clip.clipStart}–${clip.clipEnd}: more than one segment beyond 20 s`);
  assert.ok(Math.abs(clip.durationSeconds - (clip.clipEnd - clip.clipStart)) < 0.2, `clip lasts ${clip.durationSeconds}`);
  assert.equal(await decodeErrors(clip.videoUrl), "");
  assert.ok(clip.thumbnailUrl && clip.storyboardUrl, "the live clip has its poster and storyboard");
  const head = async (key: string) => env.s3.send(new HeadObjectCommand({ Bucket: env.config.s3.recordingsBucket, Key: key }));
  const before = await head(clip.sourcePrefix + "/clip.mp4");

  const r = await caller;
  assert.equal(r.exitCode, 0, r.stderr);
  const rec = await waitForRecording(env, folder);
  assert.equal(rec.status, "ready", rec.error ?? "");
  assert.equal(clip.parentId, rec.id);
  assert.ok(Math.abs((rec.durationSeconds ?? 0) - BROADCAST_SECONDS) <= 1.5, `the broadcast recorded ${rec.durationSeconds} s`);

  const afterwards = (await (await fetch(`${api.url}/recordings/${body.id}`)).json()) as any;
  for (const f of ["status", "clipStart", "clipEnd", "durationSeconds", "fileSizeBytes", "sourcePrefix"]) assert.deepEqual(afterwards[f], clip[f], `${f} changed after the broadcast ended`);
  const now = await head(clip.sourcePrefix + "/clip.mp4");
  assert.equal(now.ETag, before.ETag, "the clip's MP4 changed after the broadcast ended");
  const media = await probe(afterwards.videoUrl);
  assert.ok(Math.abs(media.duration - clip.durationSeconds) < 0.1);
});
