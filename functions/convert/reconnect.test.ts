import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext } from "playwright-core";
import { createTestEnv, waitFor, type TestEnv } from "../../test/harness.js";
import { decodeErrors, makeReconnect, probeStreams } from "../../test/media.js";
import { startWorkers, stopWorkers, waitForRecording, type Worker } from "../../test/workers.js";
import { presignGet } from "../../lib/s3.js";
import { listFolder, uploadFiles } from "../drop/upload.js";

// A broadcast that reconnected in another format (640x360 48 kHz stereo, then 1280x720 44.1 kHz mono
// after #EXT-X-DISCONTINUITY) becomes an MP4 that Chromium's <video> plays from start to end.

let env: TestEnv;
let workers: Worker[];
let media: string;
let browser: BrowserContext;
let profile: string;

before(async () => {
  env = await createTestEnv("reconnect");
  media = await mkdtemp(join(tmpdir(), "reconnect-test-"));
  await makeReconnect(join(media, "show"), { size: "640x360", seconds: 4 }, { size: "1280x720", seconds: 4, sampleRate: 44100, channels: 1 });
  workers = await startWorkers(env, "functions/convert/main.ts", 1);
  profile = await mkdtemp(join(tmpdir(), "reconnect-chromium-"));
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"],
  });
});

after(async () => {
  await browser?.close();
  if (profile) await rm(profile, { recursive: true, force: true });
  await stopWorkers(workers ?? []);
  await env.close();
  await rm(media, { recursive: true, force: true });
});

test("a reconnect at another resolution and audio format plays in Chromium past the change, keeping every second", async () => {
  await uploadFiles(env.s3, env.config.s3.hlsBucket, "cam/reconnected", await listFolder(join(media, "show")));
  const r = await waitForRecording(env, "cam/reconnected");
  assert.equal(r.status, "ready", r.error ?? "");
  assert.ok(Math.abs(r.durationSeconds! - 8) <= 0.6, `MP4 lasts ${r.durationSeconds} s of 8 s`);
  assert.deepEqual([r.width, r.height], [640, 360], "the first part's format wins");
  const url = await presignGet(env.config.s3, env.config.s3.recordingsBucket, r.filePath!);
  const streams = await probeStreams(url);
  assert.deepEqual(streams.map((s) => s.codec_type), ["video", "audio"]);
  assert.equal(await decodeErrors(url), "");

  const page = browser.pages()[0] ?? (await browser.newPage());
  await page.setContent(`<video id="v" muted playsinline preload="auto" src="${url}"></video>`);
  await page.evaluate(() => {
    const v = document.getElementById("v") as HTMLVideoElement & { errors?: string[] };
    v.errors = [];
    v.addEventListener("error", () => v.errors!.push(String(v.error?.message ?? v.error?.code)));
  });
  await page.waitForFunction(() => (document.getElementById("v") as HTMLVideoElement).readyState >= 1, undefined, { timeout: 30_000 });
  assert.ok(Math.abs((await page.evaluate(() => (document.getElementById("v") as HTMLVideoElement).duration)) - 8) <= 0.6);
  // Seek past the change (at 4 s) and play: time must advance and frames of the second part must render.
  const before = await page.evaluate(async () => {
    const v = document.getElementById("v") as HTMLVideoElement;
    v.currentTime = 5;
    await new Promise((ok) => v.addEventListener("seeked", ok, { once: true }));
    await v.play();
    return v.getVideoPlaybackQuality().totalVideoFrames;
  });
  await waitFor("playback to pass 6.5 s", () => page.evaluate(() => (document.getElementById("v") as HTMLVideoElement).currentTime > 6.5), 30_000);
  const after = await page.evaluate(() => {
    const v = document.getElementById("v") as HTMLVideoElement & { errors?: string[] };
    return { frames: v.getVideoPlaybackQuality().totalVideoFrames, errors: v.errors, width: v.videoWidth, error: v.error?.code ?? null };
  });
  assert.deepEqual(after.errors, [], "no error event");
  assert.equal(after.error, null);
  assert.ok(after.frames > before + 10, `frames rendered after the change: ${before} → ${after.frames}`);
  assert.equal(after.width, 640);
});
