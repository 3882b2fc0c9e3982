import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { createTestEnv, type TestEnv } from "../../test/harness.js";
import { makeHls } from "../../test/media.js";
import { startWorkers, stopWorkers, type Worker } from "../../test/workers.js";
import { listObjects } from "../../lib/s3.js";
import { uploadOrder } from "./upload.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
let env: TestEnv;
let workers: Worker[];
let dir: string;

before(async () => {
  env = await createTestEnv("drop");
  dir = await mkdtemp(join(tmpdir(), "drop-test-"));
  await makeHls(join(dir, "my talk"), { seconds: 4, size: "320x180" });
  workers = await startWorkers(env, "functions/convert/main.ts", 1);
});
after(async () => {
  await stopWorkers(workers ?? []);
  await env.close();
  await rm(dir, { recursive: true, force: true });
});

const drop = (...args: string[]) => execa(process.execPath, ["--import", "tsx", "functions/drop/main.ts", ...args], { cwd: root, env: { ...env.env }, reject: false });

test("drop uploads a folder playlist last, waits for the recording and prints its MP4 key", async () => {
  const r = await drop(join(dir, "my talk"), "--prefix", "dropped/é 1");
  assert.equal(r.exitCode, 0, r.stderr);
  assert.match(r.stdout, /uploaded 3 files .* to s3:\/\/t-drop-\w+-hls\/dropped\/é 1\//);
  assert.match(r.stdout, new RegExp(`ready: s3://${env.config.s3.recordingsBucket}/dropped/é 1/é 1\\.mp4 \\(4\\.0 s, 320x180`));
  const keys: string[] = [];
  for await (const o of listObjects(env.s3, env.config.s3.hlsBucket, "dropped/")) keys.push(o.key);
  assert.deepEqual(keys.sort(), ["dropped/é 1/index.m3u8", "dropped/é 1/seg000.ts", "dropped/é 1/seg001.ts"]);
});

test("drop of the same folder again reports the existing recording at once", async () => {
  const r = await drop(join(dir, "my talk"), "--prefix", "dropped/é 1");
  assert.equal(r.exitCode, 0, r.stderr);
  assert.match(r.stdout, /ready: .*é 1\.mp4/);
});

test("drop refuses a folder with no playlist, a missing folder and a playlist without #EXT-X-ENDLIST, saying what to do", async () => {
  await mkdir(join(dir, "empty"));
  let r = await drop(join(dir, "empty"));
  assert.equal(r.exitCode, 2);
  assert.match(r.stderr, /holds no \.m3u8 playlist: drop the folder that holds the HLS playlist and its segments/);

  r = await drop(join(dir, "nope"));
  assert.equal(r.exitCode, 2);
  assert.match(r.stderr, /does not exist: pass the path of a folder/);

  await mkdir(join(dir, "live"));
  await writeFile(join(dir, "live/index.m3u8"), "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\nseg0.ts\n");
  r = await drop(join(dir, "live"));
  assert.equal(r.exitCode, 2);
  assert.match(r.stderr, /ends with #EXT-X-ENDLIST, so nothing would be converted: add #EXT-X-ENDLIST/);

  r = await drop();
  assert.equal(r.exitCode, 2);
  assert.match(r.stderr, /usage: make drop DIR=/);
});

test("segments go up before playlists, and a master before its variants", () => {
  const f = (rel: string) => ({ rel, path: rel, size: 1 });
  const files = [f("low/index.m3u8"), f("low/seg0.ts"), f("high/index.m3u8"), f("high/seg0.ts"), f("init.mp4"), f("zz-master.m3u8")];
  const order = uploadOrder(files, (x) => x.rel === "zz-master.m3u8").map((x) => x.rel);
  assert.deepEqual(order, ["low/seg0.ts", "high/seg0.ts", "init.mp4", "zz-master.m3u8", "high/index.m3u8", "low/index.m3u8"]);
});
