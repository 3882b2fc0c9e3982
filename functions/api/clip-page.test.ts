// The player page's clip mode in a real browser (Debian's chromium): drag the in and out handles over the
// storyboard, create the clip, see its progress, then watch it play and appear in the recording's clips.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa, type ResultPromise } from "execa";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { createTestEnv, waitFor, type TestEnv } from "../../test/harness.js";
import { storeReadyRecording } from "../../test/api.js";
import { freeTcpPort } from "../../test/ports.js";
import { startWorkers, stopWorkers, type Worker } from "../../test/workers.js";

const TOKEN = "browser-clip-token-0123456789";
const root = fileURLToPath(new URL("../..", import.meta.url));
const artifacts = join(root, "test-artifacts");
let env: TestEnv;
let api: ResultPromise;
let base: string;
let browser: BrowserContext;
let profile: string;
let page: Page;
let parentId: string;
let clippers: Worker[] = [];

before(async () => {
  env = await createTestEnv("api-clip-page");
  parentId = (await storeReadyRecording(env, "studio-c/2025-07-01", { title: "Launch event" })).id;
  const port = await freeTcpPort();
  base = `http://127.0.0.1:${port}`;
  api = execa("node", ["--import", "tsx", "functions/api/main.ts"], { cwd: root, env: { ...env.env, API_PORT: String(port), API_TOKEN: TOKEN }, reject: false, stdio: "pipe" });
  await waitFor("the API to answer /ready", async () => (await fetch(`${base}/ready`).catch(() => undefined))?.ok, 30_000);
  // The API queues the clip; a replica of the clip function cuts it.
  clippers = await startWorkers(env, "functions/clip/main.ts", 1, {}, "clip");
  await mkdir(artifacts, { recursive: true });
  profile = await mkdtemp(join(tmpdir(), "api-clip-chromium-"));
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1440, height: 900 },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"],
  });
  await browser.addInitScript((t) => localStorage.setItem("replay.apiToken", t), TOKEN);
  page = browser.pages()[0] ?? (await browser.newPage());
});

after(async () => {
  await browser?.close();
  if (profile) await rm(profile, { recursive: true, force: true });
  if (api) {
    api.kill("SIGTERM");
    await api;
  }
  await stopWorkers(clippers);
  await env?.close();
});

test("clip mode: drag the handles, create the clip, see it play and listed under the recording", async () => {
  await page.goto(`${base}/watch/${parentId}`);
  const video = page.locator("video[data-testid=player]");
  await video.waitFor();
  await waitFor("the video's metadata", () => video.evaluate((v: HTMLVideoElement) => v.readyState >= 1));
  await page.click("[data-testid=clip-mode]");
  const timeline = page.locator("[data-testid=clip-timeline]");
  await timeline.waitFor();
  await waitFor("storyboard tiles on the timeline", async () => (await page.locator(".clip-tile").count()) > 0);
  const box = (await timeline.boundingBox())!;

  // Drag the in handle to a quarter of the 6 s recording, the out handle to three quarters.
  const drag = async (which: "in" | "out", fraction: number) => {
    const h = (await page.locator(`[data-testid=clip-${which}]`).boundingBox())!;
    await page.mouse.move(h.x + h.width / 2, h.y + h.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * fraction, h.y + h.height / 2, { steps: 8 });
    // While dragging, the player shows that frame.
    const t = await video.evaluate((v: HTMLVideoElement) => v.currentTime);
    assert.ok(Math.abs(t - 6 * fraction) < 0.3, `the player shows ${t} s while the ${which} handle is at ${6 * fraction} s`);
    await page.mouse.up();
  };
  await drag("out", 0.75);
  await drag("in", 0.25);
  assert.match(await page.locator("[data-testid=clip-range]").innerText(), /\(3\.\d s\)/);
  await page.screenshot({ path: join(artifacts, "api-clip-mode.png") });

  await page.click("[data-testid=clip-create]");
  const clipPlayer = page.locator("video[data-testid=clip-player]");
  await clipPlayer.waitFor({ timeout: 30_000 });
  await waitFor("the clip to play past 0.5 s", () => clipPlayer.evaluate((v: HTMLVideoElement) => v.currentTime > 0.5 || (v.paused && v.readyState > 2 && v.play().then(() => false))), 30_000);
  await waitFor("the clip listed under the recording", async () => (await page.locator("[data-testid=clips] [data-testid=recording]").count()) === 1);
  assert.equal(await page.locator("[data-testid=clips] [data-testid=clip-badge]").count(), 1);
  await page.screenshot({ path: join(artifacts, "api-clip-made.png") });

  // The clip's own page plays it and links back to its recording.
  await page.click("[data-testid=clip-link]");
  await page.locator("[data-testid=clip-of]").waitFor();
  assert.equal(await page.locator("[data-testid=clip-of] a").getAttribute("href"), `/watch/${parentId}`);
  const own = page.locator("video[data-testid=player]");
  await waitFor("the clip's page to play it", () => own.evaluate((v: HTMLVideoElement) => v.currentTime > 0.5 || (v.paused && v.readyState > 2 && v.play().then(() => false))), 30_000);

  const list = (await (await fetch(`${base}/recordings?kind=clip&parent=${parentId}`)).json()) as { items: { clipStart: number; clipEnd: number; status: string }[] };
  assert.equal(list.items.length, 1);
  const [clip] = list.items;
  assert.equal(clip!.status, "ready");
  assert.ok(clip!.clipStart <= 1.5 + 0.2 && clip!.clipEnd >= 4.5 - 0.2, `clip ${clip!.clipStart}–${clip!.clipEnd}`);
});
