// The whole path a streamer takes: OBS-like SRT caller → gateway → live HLS → ENDLIST → convert → ready MP4.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import { createTestEnv, type TestEnv } from "../harness.js";
import { probe } from "../media.js";
import { startWorkers, stopWorkers, waitForRecording, type Worker } from "../workers.js";
import { startGatewayProcess, type GatewayProcess } from "../gateway/process.js";
import { publish } from "../gateway/caller.js";
import { sessionFolders } from "../gateway/store.js";

let env: TestEnv;
let gw: GatewayProcess;
let workers: Worker[] = [];

before(async () => {
  env = await createTestEnv("e2e-gateway");
  workers = await startWorkers(env, "functions/convert/main.ts", 1);
  gw = await startGatewayProcess({ ...env.env, LOG_LEVEL: "info" });
});

after(async () => {
  await gw?.stop();
  await stopWorkers(workers);
  await env?.close();
});

test("a 12 s SRT broadcast becomes a ready MP4 of 12 ± 1 s", async () => {
  const created = await gw.api("POST", "/streams", { name: "e2e", title: "End to end" });
  assert.equal(created.status, 201);
  const r = await publish(created.json.obs.server, { seconds: 12 });
  assert.equal(r.exitCode, 0, r.stderr);
  const [folder] = await sessionFolders(env.s3, env.config.s3.hlsBucket, "e2e");
  assert.ok(folder);
  const rec = await waitForRecording(env, folder);
  assert.equal(rec.status, "ready", rec.error ?? "");
  assert.ok(rec.filePath);
  assert.ok(Math.abs((rec.durationSeconds ?? 0) - 12) <= 1, `recorded ${rec.durationSeconds} s`);

  const dir = `/tmp/vod-test-${env.id}/e2e`;
  await mkdir(dir, { recursive: true });
  const obj = await env.s3.send(new GetObjectCommand({ Bucket: env.config.s3.recordingsBucket, Key: rec.filePath! }));
  await writeFile(`${dir}/out.mp4`, await obj.Body!.transformToByteArray());
  const media = await probe(`${dir}/out.mp4`);
  assert.ok(Math.abs(media.duration - 12) <= 1, `MP4 lasts ${media.duration} s`);
  assert.equal(media.video, "h264");
  assert.equal(media.audio, "aac");
});
