import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa, type ResultPromise } from "execa";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { recordings } from "../../db/schema.js";
import { createTestEnv, waitFor, type TestEnv } from "../../test/harness.js";
import { publishLive, storeReadyRecording } from "../../test/api.js";
import { freeTcpPort } from "../../test/ports.js";

const TOKEN = "browser-token-0123456789";
const root = fileURLToPath(new URL("../..", import.meta.url));
const artifacts = join(root, "test-artifacts");
let env: TestEnv;
let api: ResultPromise;
let base: string;
let browser: BrowserContext;
let profile: string;
let page: Page;
let readyId: string;

before(async () => {
  env = await createTestEnv("api-page");
  const ready = await storeReadyRecording(env, "studio-a/2025-06-01", { title: "Quarterly product keynote" });
  readyId = ready.id;
  await storeReadyRecording(env, "podcast/episode-42", { title: "Episode 42: scaling video pipelines", durationSeconds: 3725 });
  await storeReadyRecording(env, "gaming/speedrun", { title: "Any% speedrun, world record attempt", durationSeconds: 1432 });
  await env.db.insert(recordings).values([
    { streamId: "studio-b", title: "Design review (afternoon)", sourcePrefix: "studio-b/s1", status: "processing", progress: 0.62 },
    { streamId: "uploads/old-tape", title: "Archive tape 1998", sourcePrefix: "uploads/old-tape", status: "failed", error: "segment seg004.ts is missing from the folder; upload it again and the recording is retried" },
  ]);

  await publishLive(env, "town-hall", "s-live-1", "All-hands town hall");

  const port = await freeTcpPort();
  base = `http://127.0.0.1:${port}`;
  api = execa("node", ["--import", "tsx", "functions/api/main.ts"], { cwd: root, env: { ...env.env, API_PORT: String(port), API_TOKEN: TOKEN }, reject: false, stdio: "pipe" });
  await waitFor("the API to answer /ready", async () => (await fetch(`${base}/ready`).catch(() => undefined))?.ok, 30_000);

  await mkdir(artifacts, { recursive: true });
  profile = await mkdtemp(join(tmpdir(), "api-chromium-"));
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1440, height: 900 },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"],
  });
  page = browser.pages()[0] ?? (await browser.newPage());
});

after(async () => {
  await browser?.close();
  if (profile) await rm(profile, { recursive: true, force: true });
  if (api) {
    api.kill("SIGTERM");
    const result = await api;
    assert.equal(result.exitCode, 0, `the API did not stop cleanly on SIGTERM: ${result.stderr}`);
  }
  await env?.close();
});

test("the page lists the ready recording with its thumbnail, and badges for the others", async () => {
  await page.goto(base);
  await page.locator("[data-testid=live]").waitFor();
  assert.match(await page.locator("#live-section").innerText(), /All-hands town hall/);
  const card = page.locator(`[data-testid=recording][data-id="${readyId}"]`);
  await card.waitFor();
  assert.match(await card.innerText(), /Quarterly product keynote/);
  await waitFor("the thumbnail to load", () => card.locator("img").evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0));
  assert.equal(await page.locator("[data-testid=recording]").count(), 6);
  assert.match(await page.locator('[data-testid=recording][data-status=processing]').innerText(), /processing 62%/i);
  assert.match(await page.locator('[data-testid=recording][data-status=failed]').innerText(), /segment seg004\.ts is missing/);
  await page.screenshot({ path: join(artifacts, "api-library.png") });
});

test("search narrows the list to the matching recordings", async () => {
  await page.fill("#search", "keynote");
  await waitFor("the list to narrow", async () => (await page.locator("[data-testid=recording]").count()) === 1);
  assert.match(await page.locator("[data-testid=recording]").innerText(), /Quarterly product keynote/);
  await page.fill("#search", "podcast");
  await waitFor("the stream search", async () => (await page.locator("[data-testid=recording]").count()) === 1 && /Episode 42/.test(await page.locator("[data-testid=recording]").innerText()));
  await page.fill("#search", "");
  await waitFor("the full list again", async () => (await page.locator("[data-testid=recording]").count()) === 6);
});

test("the status filter shows only failed recordings", async () => {
  await page.click('#status-filter [data-status="failed"]');
  await waitFor("the failed filter", async () => (await page.locator("[data-testid=recording]").count()) === 1);
  assert.equal(await page.locator("[data-testid=recording]").getAttribute("data-status"), "failed");
  await page.click('#status-filter [data-status=""]');
  await waitFor("all again", async () => (await page.locator("[data-testid=recording]").count()) === 6);
});

test("hovering a card shows its storyboard tile", async () => {
  const thumb = page.locator(`[data-testid=recording][data-id="${readyId}"] .thumb`);
  const box = (await thumb.boundingBox())!;
  await page.mouse.move(box.x + box.width * 0.1, box.y + box.height / 2);
  await page.mouse.move(box.x + box.width * 0.7, box.y + box.height / 2);
  await waitFor("the storyboard preview", () => thumb.locator(".preview.ready").count().then((n) => n === 1));
  assert.match((await thumb.locator(".preview").getAttribute("style"))!, /X-Amz-Signature/);
  await page.screenshot({ path: join(artifacts, "api-hover.png") });
  await page.mouse.move(0, 0);
});

test("the player page plays the MP4: currentTime advances", async () => {
  await page.locator(`[data-testid=recording][data-id="${readyId}"]`).click();
  await page.waitForURL(`**/watch/${readyId}`);
  const video = page.locator("video[data-testid=player]");
  await video.waitFor();
  await waitFor("the video to play past 1 s", () => video.evaluate((v: HTMLVideoElement) => v.currentTime > 1 || (v.paused && v.play().then(() => false))), 30_000);
  await page.screenshot({ path: join(artifacts, "api-player.png") });
});

test("rename from the player page asks for the token once, then saves", async () => {
  await page.click("text=Rename");
  await page.fill('input[aria-label="New title"]', "Keynote, final cut");
  await page.click("form.rename button[type=submit]");
  await page.locator("#token-dialog[open]").waitFor();
  await page.fill("#token-input", TOKEN);
  await page.click('#token-dialog button[value="save"]');
  await waitFor("the new title", async () => (await page.locator("[data-testid=title]").innerText()) === "Keynote, final cut");
  const d = (await (await fetch(`${base}/recordings/${readyId}`)).json()) as { title: string };
  assert.equal(d.title, "Keynote, final cut");
});

test("a live broadcast plays through hls.js from the API's rewritten playlist", async () => {
  await page.goto(base);
  await page.locator("[data-testid=live]").click();
  await page.waitForURL("**/watch/live/town-hall");
  const video = page.locator("video[data-testid=player]");
  await video.waitFor();
  await waitFor("the live video to play past 0.5 s", () => video.evaluate((v: HTMLVideoElement) => v.currentTime > 0.5 || (v.paused && v.readyState > 2 && v.play().then(() => false))), 30_000);
  await page.screenshot({ path: join(artifacts, "api-live.png") });
});

test("delete from the player page removes the recording and returns to the list", async () => {
  const [speedrun] = (await (await fetch(`${base}/recordings?q=speedrun`)).json() as { items: { id: string }[] }).items;
  await page.goto(`${base}/watch/${speedrun!.id}`);
  await page.locator("[data-testid=title]").waitFor();
  page.once("dialog", (d) => d.accept());
  await page.click("text=Delete");
  await page.waitForURL(`${base}/`);
  await page.locator("[data-testid=recording]").first().waitFor();
  assert.equal(await page.locator(`[data-testid=recording][data-id="${speedrun!.id}"]`).count(), 0);
  assert.equal((await fetch(`${base}/recordings/${speedrun!.id}`)).status, 404);
});

test("the webhooks view adds an endpoint, shows its secret once, sends a signed test and lists the delivery", async () => {
  const { startReceiver } = await import("../../test/webhook-receiver.js");
  const rcv = await startReceiver();
  try {
    await page.goto(`${base}/settings/webhooks`);
    await page.evaluate((t) => localStorage.setItem("replay.apiToken", t), TOKEN);
    await page.reload();
    await page.fill("#webhook-url", rcv.url);
    await page.fill("#webhook-description", "receiver under test");
    await page.click("#webhook-form button[type=submit]");
    const secret = await waitFor("the secret", async () => (await page.locator("#webhook-secret code").innerText().catch(() => "")) || undefined);
    assert.match(secret, /^whsec_/);
    await page.locator(".webhook", { hasText: rcv.url }).locator("text=Send test").click();
    await waitFor("the test at the receiver", () => rcv.received.length === 1);
    assert.equal(rcv.verified(secret)[0]?.type, "webhook.test");
    await page.locator(".webhook", { hasText: rcv.url }).locator("text=Deliveries").click();
    await waitFor("the delivery row", async () => /webhook\.test[\s\S]*200/.test(await page.locator(".log-table").innerText().catch(() => "")));
  } finally {
    await rcv.close();
  }
});

test("the streams view shows what each stream stores, from GET /usage", async () => {
  const usage = (await (await fetch(`${base}/usage`)).json()) as { streams: { stream: string; recordings: number; mp4Bytes: number }[]; total: { recordings: number } };
  const studio = usage.streams.find((s) => s.stream === "studio-a");
  assert.equal(studio?.recordings, 1);
  assert.ok(studio.mp4Bytes > 0);
  await page.goto(`${base}/streams`);
  await page.locator("[data-testid=usage-row]").first().waitFor();
  const rows = await page.locator("[data-testid=usage-row]").allInnerTexts();
  assert.equal(rows.length, usage.streams.length + 1, "a row per stream and the total");
  assert.match(rows.find((r) => r.startsWith("studio-a"))!, /studio-a\s+1\s+\d+(\.\d)? (KB|MB)/);
  assert.match(rows.at(-1)!, new RegExp(`^Total\\s+${usage.total.recordings}\\s`));
});
