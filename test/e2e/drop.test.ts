// The folder-drop path as a user sees it: `make drop` uploads a local HLS folder, real convert and
// thumbnail replicas pick up the ENDLIST event, and the VOD API lists and serves the result.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execa } from "execa";
import { createTestEnv, waitFor, type TestEnv } from "../harness.js";
import { makeHls } from "../media.js";
import { startWorkers, stopWorkers, waitForRecording, type Worker } from "../workers.js";
import { startApi, type RunningApi } from "../api.js";

let env: TestEnv;
let workers: Worker[] = [];
let api: RunningApi;

before(async () => {
  env = await createTestEnv("e2e-drop");
  workers = [
    ...(await startWorkers(env, "functions/convert/main.ts", 2, {}, "c")),
    ...(await startWorkers(env, "functions/thumbnail/main.ts", 1, {}, "t")),
  ];
  api = await startApi(env);
});

after(async () => {
  await api?.close();
  await stopWorkers(workers);
  await env?.close();
});

test("a dropped HLS folder becomes a ready recording the API lists, plays and previews", async () => {
  const dir = `/tmp/vod-test-${env.id}/Concert à Paris`;
  await makeHls(dir, { seconds: 10, kind: "ts" });
  const prefix = "drops/Concert à Paris";
  const drop = await execa("node", ["--import", "tsx", "functions/drop/main.ts", dir, "--prefix", prefix, "--timeout", "180"], {
    env: { ...env.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
    cwd: new URL("../..", import.meta.url),
    reject: false,
  });
  assert.equal(drop.exitCode, 0, drop.stderr || drop.stdout);
  assert.match(drop.stdout, /^ready: s3:\/\/\S+\/drops\/Concert à Paris\/.+\.mp4 /m);

  const rec = await waitForRecording(env, prefix);
  assert.equal(rec.status, "ready");
  // The thumbnail function works independently of convert: wait for its fields too.
  await waitFor("the poster and storyboard", async () => {
    const r = (await (await fetch(`${api.url}/recordings/${rec.id}`)).json()) as { thumbnailUrl?: string; storyboardUrl?: string };
    return r.thumbnailUrl && r.storyboardUrl ? r : undefined;
  }, 60_000);

  const list = (await (await fetch(`${api.url}/recordings?q=${encodeURIComponent("concert à")}&status=ready`)).json()) as { items: { id: string; status: string }[] };
  assert.deepEqual(list.items.map((i) => i.id), [rec.id]);

  const detail = (await (await fetch(`${api.url}/recordings/${rec.id}`)).json()) as { videoUrl: string; thumbnailUrl: string; durationSeconds: number; sourceFolder: string };
  assert.equal(detail.sourceFolder, prefix);
  assert.ok(Math.abs(detail.durationSeconds - 10) <= 0.5, `duration ${detail.durationSeconds}`);
  const poster = await fetch(detail.thumbnailUrl);
  assert.equal(poster.status, 200);
  assert.ok((await poster.arrayBuffer()).byteLength > 1000, "a real JPEG, not an empty file");

  const video = await fetch(`${api.url}/recordings/${rec.id}/video`, { redirect: "manual" });
  assert.equal(video.status, 302);
  const ranged = await fetch(video.headers.get("location")!, { headers: { Range: "bytes=0-1023" } });
  assert.equal(ranged.status, 206, "players can seek");
  assert.equal((await ranged.arrayBuffer()).byteLength, 1024);

  const vtt = await fetch(`${api.url}/recordings/${rec.id}/storyboard.vtt`);
  assert.equal(vtt.status, 200);
  assert.match(await vtt.text(), /^WEBVTT/);
});
