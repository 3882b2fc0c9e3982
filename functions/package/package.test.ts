// The package function on the real stack: a dropped folder is converted by a real convert replica, its
// recording.ready event reaches real package replicas, and the ladder they write is checked with the HLS
// parser, mpd-parser (video.js's DASH parser) and ffprobe.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { chromium } from "playwright-core";
import { startApi, withToken } from "../../test/api.js";
import { join } from "node:path";
import { execa } from "execa";
import { eq } from "drizzle-orm";
import { parse as parseMpd } from "mpd-parser";
import { CopyObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { Registry } from "prom-client";
import { sweepOnce } from "./sweep.js";
import { createTestEnv, waitFor, type TestEnv } from "../../test/harness.js";
import { makeHls, probe } from "../../test/media.js";
import { startWorkers, stopWorkers, waitForRecording, type Worker } from "../../test/workers.js";
import { childrenOf, stillRunning } from "../../test/processes.js";
import { recordings, type Recording } from "../../db/schema.js";
import { getText, listObjects } from "../../lib/s3.js";
import { parsePlaylist, type MasterPlaylist, type MediaPlaylist } from "../../lib/hls/index.js";
import { createEventPublisher } from "../../lib/events.js";
import { createLogger } from "../../lib/log.js";
import { recordingData } from "../../lib/events.js";
import { loadConfig } from "../../lib/config.js";
import { packageRecording } from "./package.js";
import type { StorageEvent } from "../events/decode.js";

let env: TestEnv;
let convert: Worker[] = [];
let packagers: Worker[] = [];
/** The 20 s ladder the first test makes: the API and browser tests play it. */
let ladderId: string | undefined;
const root = new URL("../..", import.meta.url);

before(async () => {
  env = await createTestEnv("package", { ABR_LADDER: "360,240,144", ABR_SEGMENT_SECONDS: "4" });
  convert = await startWorkers(env, "functions/convert/main.ts", 1, {}, "c");
  packagers = await startWorkers(env, "functions/package/main.ts", 2, {}, "p");
});

after(async () => {
  await stopWorkers([...convert, ...packagers]);
  await env?.close();
});

async function drop(name: string, seconds: number, size = "640x360", videoBitrate?: string): Promise<Recording> {
  const dir = `/tmp/vod-test-${env.id}/${name}`;
  await makeHls(dir, { seconds, size, segmentSeconds: 2, videoBitrate });
  const prefix = `drops/${name}`;
  const r = await execa("node", ["--import", "tsx", "functions/drop/main.ts", dir, "--prefix", prefix, "--timeout", "180"], { env: { ...env.env }, cwd: root, reject: false });
  assert.equal(r.exitCode, 0, r.stderr || r.stdout);
  const rec = await waitForRecording(env, prefix);
  assert.equal(rec.status, "ready", rec.error ?? "");
  return rec;
}

async function row(id: string): Promise<Recording> {
  const [r] = await env.db.select().from(recordings).where(eq(recordings.id, id));
  assert.ok(r, `recording ${id} exists`);
  return r;
}

async function abrDone(id: string, timeoutMs = 180_000): Promise<Recording> {
  try {
    return await waitFor(`ladder of ${id} ready or failed`, async () => {
      const r = await row(id);
      return r.abrStatus === "ready" || r.abrStatus === "failed" ? r : undefined;
    }, timeoutMs, 250);
  } catch (err) {
    // What the replicas said about it is the quickest way to the cause.
    const said = packagers.flatMap((w) => w.output.filter((l) => l.includes(id) || l.includes('"level":50') || l.includes('"level":40')));
    throw new Error(`${(err as Error).message}\n${said.slice(-20).join("\n")}`);
  }
}

async function download(prefix: string, dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const names: string[] = [];
  for await (const o of listObjects(env.s3, env.config.s3.recordingsBucket, prefix)) {
    const name = o.key.slice(prefix.length);
    const res = await env.s3.send(new (await import("@aws-sdk/client-s3")).GetObjectCommand({ Bucket: env.config.s3.recordingsBucket, Key: o.key }));
    await writeFile(join(dir, name), await res.Body!.transformToByteArray());
    names.push(name);
  }
  return names.sort();
}

/** First video PTS of one CMAF segment (init + segment, as a player joins them). */
async function firstPts(dir: string, init: string, seg: string): Promise<number> {
  const joined = join(dir, `joined-${seg}.mp4`);
  await execa("sh", ["-c", `cat "${join(dir, init)}" "${join(dir, seg)}" > "${joined}"`]);
  const { stdout } = await execa("ffprobe", ["-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time", "-read_intervals", "%+#1", "-of", "csv=p=0", joined]);
  return Number(stdout.trim().split("\n")[0]);
}

test("a 20 s 640x360 recording gets a 360/240/144 CMAF ladder: valid master, decodable aligned segments, right durations, and a DASH manifest over the same objects", async () => {
  // About 600 kbit/s with a keyframe every 2 s: the source fits the 360p rung and is copied, not re-encoded.
  const rec = await drop("ladder", 20, "640x360", "600k");
  const done = await abrDone(rec.id);
  assert.equal(done.abrStatus, "ready", done.abrError ?? "");
  assert.equal(done.status, "ready");
  ladderId = rec.id;
  const bucket = env.config.s3.recordingsBucket;
  assert.equal(done.abrMasterPath, `drops/ladder/abr/master.m3u8`);

  const master = parsePlaylist(await getText(env.s3, bucket, done.abrMasterPath!), done.abrMasterPath!) as MasterPlaylist;
  assert.equal(master.isMasterPlaylist, true);
  assert.deepEqual(master.variants.map((v) => `${v.resolution?.width}x${v.resolution?.height}`), ["640x360", "426x240", "256x144"]);
  const audio = master.variants[0]!.audio;
  assert.equal(audio.length, 1, "one shared audio rendition");
  for (const v of master.variants) {
    assert.match(v.codecs ?? "", /^avc1\.[0-9a-f]{6},mp4a\.40\.2$/);
    assert.ok(v.bandwidth > 0 && v.averageBandwidth! > 0 && v.averageBandwidth! <= v.bandwidth, `bandwidths of ${v.uri}`);
    assert.equal(v.frameRate, 25);
    assert.equal(v.audio[0]?.uri, audio[0]!.uri, "every variant names the same audio rendition");
  }
  // Higher rungs cost more.
  assert.ok(master.variants[0]!.averageBandwidth! > master.variants[1]!.averageBandwidth! && master.variants[1]!.averageBandwidth! > master.variants[2]!.averageBandwidth!);
  assert.deepEqual(done.abrRenditions?.map((r) => r.name), ["360p", "240p", "144p"]);
  assert.deepEqual(done.abrRenditions?.map((r) => r.copied), [true, false, false], "the source rendition copied");

  const dir = `/tmp/vod-test-${env.id}/ladder-out`;
  const files = await download("drops/ladder/abr/", dir);
  const mp4 = await probe(`/tmp/vod-test-${env.id}/ladder-mp4.mp4`).catch(async () => {
    const res = await env.s3.send(new (await import("@aws-sdk/client-s3")).GetObjectCommand({ Bucket: bucket, Key: rec.filePath! }));
    await writeFile(`/tmp/vod-test-${env.id}/ladder-mp4.mp4`, await res.Body!.transformToByteArray());
    return probe(`/tmp/vod-test-${env.id}/ladder-mp4.mp4`);
  });

  const startsByRendition: number[][] = [];
  const referenced = new Set<string>(["master.m3u8", "manifest.mpd"]);
  for (const v of master.variants) {
    const media = parsePlaylist(await (await import("node:fs/promises")).readFile(join(dir, v.uri), "utf8"), v.uri) as MediaPlaylist;
    referenced.add(v.uri);
    const init = media.segments[0]!.map!.uri;
    referenced.add(init);
    const total = media.segments.reduce((s, x) => s + x.duration, 0);
    assert.ok(Math.abs(total - mp4.duration) <= 4, `${v.uri} lasts ${total} s, the MP4 ${mp4.duration} s`);
    // Every segment decodes: the rendition joined as a player would, decoded to the end without errors.
    const joined = join(dir, `all-${v.uri}.mp4`);
    await execa("sh", ["-c", `cat ${[init, ...media.segments.map((s) => s.uri)].map((f) => `"${join(dir, f)}"`).join(" ")} > "${joined}"`]);
    const dec = await execa("ffmpeg", ["-v", "error", "-i", joined, "-f", "null", "-"], { reject: false });
    assert.equal(dec.exitCode, 0);
    assert.equal(dec.stderr.trim(), "", `${v.uri} decodes cleanly`);
    const shown = await probe(joined);
    assert.equal(`${shown.width}x${shown.height}`, `${v.resolution!.width}x${v.resolution!.height}`);
    const starts: number[] = [];
    for (const s of media.segments) {
      referenced.add(s.uri);
      starts.push(await firstPts(dir, init, s.uri));
    }
    startsByRendition.push(starts);
  }
  // Keyframes aligned: segment N starts at the same time in every rendition, within one frame (1/25 s).
  const [first, ...others] = startsByRendition;
  for (const o of others) {
    assert.equal(o.length, first!.length);
    o.forEach((t, i) => assert.ok(Math.abs(t - first![i]!) <= 1 / 25 + 1e-6, `segment ${i}: ${t} vs ${first![i]}`));
  }
  const audioMedia = parsePlaylist(await (await import("node:fs/promises")).readFile(join(dir, audio[0]!.uri!), "utf8"), audio[0]!.uri!) as MediaPlaylist;
  referenced.add(audio[0]!.uri!);
  referenced.add(audioMedia.segments[0]!.map!.uri);
  for (const s of audioMedia.segments) referenced.add(s.uri);

  // DASH: same segment objects, nothing uploaded that neither manifest names.
  const mpd = parseMpd(await getText(env.s3, bucket, done.abrDashPath!), { manifestUri: "https://x/abr/manifest.mpd" });
  assert.deepEqual(mpd.playlists.map((p) => `${p.attributes.RESOLUTION?.width}x${p.attributes.RESOLUTION?.height}`).sort(), ["256x144", "426x240", "640x360"]);
  const dashUris = new Set<string>();
  const audioPlaylists = Object.values(mpd.mediaGroups.AUDIO).flatMap((group) => Object.values(group).flatMap((r) => r.playlists ?? []));
  assert.equal(audioPlaylists.length, 1, "one audio representation");
  for (const p of [...mpd.playlists, ...audioPlaylists]) {
    for (const s of p.segments) {
      dashUris.add(s.uri);
      if (s.map) dashUris.add(s.map.uri);
    }
  }
  const hlsSegments = [...referenced].filter((f) => f.endsWith(".m4s")).sort();
  assert.deepEqual([...dashUris].sort(), hlsSegments, "DASH and HLS name the same segment objects");
  for (const f of hlsSegments) assert.ok(files.includes(f), `${f} is in the bucket`);
  assert.deepEqual(files.filter((f) => !referenced.has(f)).sort(), [], "no object neither manifest names");
});

test("GET /recordings/{id} gives abrUrl, dashUrl and the renditions; the browser plays the ladder and switches rendition from the quality menu", async (t) => {
  assert.ok(ladderId, "the ladder test ran first");
  const api = await startApi(env);
  t.after(() => api.close());
  const d = (await (await fetch(`${api.url}/recordings/${ladderId}`)).json()) as { abrStatus: string; abrUrl: string; dashUrl: string; renditions: { name: string; width: number; height: number; codecs: string }[]; status: string; videoUrl: string };
  assert.equal(d.status, "ready");
  assert.equal(d.abrStatus, "ready");
  assert.equal(d.abrUrl, `${api.url}/recordings/${ladderId}/abr/master.m3u8`);
  assert.equal(d.dashUrl, `${api.url}/recordings/${ladderId}/abr/manifest.mpd`);
  assert.deepEqual(d.renditions.map((r) => `${r.name} ${r.width}x${r.height}`), ["360p 640x360", "240p 426x240", "144p 256x144"]);
  assert.ok(d.videoUrl, "the MP4 stays the download");

  const master = parsePlaylist(await (await fetch(d.abrUrl)).text(), "master.m3u8") as MasterPlaylist;
  const mediaUrl = new URL(master.variants[2]!.uri, d.abrUrl).toString();
  const mediaRes = await fetch(mediaUrl);
  assert.equal(mediaRes.status, 200);
  assert.equal(mediaRes.headers.get("content-type"), "application/vnd.apple.mpegurl");
  const media = parsePlaylist(await mediaRes.text(), "m") as MediaPlaylist;
  assert.match(media.segments[0]!.uri, /X-Amz-Signature=/, "segments are presigned");
  assert.match(media.segments[0]!.map!.uri, /X-Amz-Signature=/, "the init section is presigned");
  assert.equal((await fetch(media.segments[0]!.uri)).status, 200);
  const dash = await fetch(d.dashUrl);
  assert.equal(dash.headers.get("content-type"), "application/dash+xml");
  assert.match(await dash.text(), /<MPD/);
  const seg = await fetch(`${api.url}/recordings/${ladderId}/abr/seg_1_00001.m4s`, { redirect: "manual" });
  assert.equal(seg.status, 302);
  assert.equal((await fetch(seg.headers.get("location")!)).status, 200, "a DASH segment redirects to its presigned object");
  assert.equal((await fetch(`${api.url}/recordings/${ladderId}/abr/..%2Findex.m3u8`)).status, 400, "only the ladder's own files are served");

  const profile = await mkdtemp(join(tmpdir(), "abr-chromium-"));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--autoplay-policy=no-user-gesture-required"],
  });
  t.after(async () => {
    await browser.close();
    await rm(profile, { recursive: true, force: true });
  });
  const page = browser.pages()[0] ?? (await browser.newPage());
  await page.goto(`${api.url}/watch/${ladderId}`);
  const video = page.locator("video[data-testid=player]");
  await video.waitFor();
  await waitFor("the ladder to play past 0.5 s", () => video.evaluate((v: HTMLVideoElement) => v.currentTime > 0.5 || (v.paused && v.readyState > 2 && v.play().then(() => false))), 60_000);
  const options = await page.locator("[data-testid=quality] option").allInnerTexts();
  assert.deepEqual(options.map((o) => o.split(" ")[0]), ["Auto", "360p", "240p", "144p"]);
  for (const height of [144, 360]) {
    const option = page.locator("[data-testid=quality] option", { hasText: `${height}p` });
    const level = await option.getAttribute("value");
    await page.selectOption("[data-testid=quality]", level!);
    // The menu sets hls.js's currentLevel: that level is what plays now.
    await waitFor(`hls.js level ${level} playing`, async () => (await page.locator("[data-testid=current-rendition]").getAttribute("data-level")) === level, 60_000);
    await waitFor(`the picture to be ${height} lines high`, () => video.evaluate((v: HTMLVideoElement, h: number) => v.videoHeight === h || (v.paused && v.play().then(() => false)), height), 60_000);
    await waitFor(`${height}p shown as the current rendition`, async () => (await page.locator("[data-testid=current-rendition]").innerText()).startsWith(`${height}p`), 30_000);
  }
});

test("ABR_LADDER=off packages nothing: the handler ignores the event and writes no object", async () => {
  const rec = await drop("off", 4, "320x180");
  await abrDone(rec.id);
  // The replicas packaged it (their ladder is on); the handler under ABR_LADDER=off must leave a fresh row alone.
  await env.db.update(recordings).set({ abrStatus: null, abrMasterPath: null }).where(eq(recordings.id, rec.id));
  const before = await countUnder("drops/off/abr/");
  const config = loadConfig({ ...process.env, ...env.env, ABR_LADDER: "off" });
  const ctx = { s3: env.s3, db: env.db, log: createLogger("package-test", "silent"), config, signal: new AbortController().signal, progress: async () => {}, attempt: 1, worker: "off-test" };
  const r = await packageRecording({ key: "t", recordingId: rec.id } as unknown as StorageEvent, ctx, {});
  assert.equal(r, "ignored");
  assert.equal((await row(rec.id)).abrStatus, null);
  assert.equal(await countUnder("drops/off/abr/"), before);
});

async function countUnder(prefix: string): Promise<number> {
  let n = 0;
  for await (const _ of listObjects(env.s3, env.config.s3.recordingsBucket, prefix)) n++;
  return n;
}

async function insertReady(folder: string, filePath: string): Promise<Recording> {
  const [r] = await env.db.insert(recordings).values({ streamId: folder, title: folder, sourcePrefix: folder, playlistKey: `${folder}/index.m3u8`, filePath, status: "ready", progress: 1, durationSeconds: 10 }).returning();
  return r!;
}

test("a recording whose MP4 is missing or corrupt gets abrStatus failed with a reason; the recording stays ready", async () => {
  const events = createEventPublisher({ nats: () => env.nc, config: env.config, log: createLogger("package-test", "silent") });
  const missing = await insertReady("drops/missing", "drops/missing/missing.mp4");
  const corrupt = await insertReady("drops/corrupt", "drops/corrupt/corrupt.mp4");
  await env.s3.send(new PutObjectCommand({ Bucket: env.config.s3.recordingsBucket, Key: corrupt.filePath!, Body: Buffer.alloc(4096, 7), ContentType: "video/mp4" }));
  await events.publish("recording.ready", recordingData(missing));
  await events.publish("recording.ready", recordingData(corrupt));
  const m = await abrDone(missing.id, 60_000);
  assert.equal(m.abrStatus, "failed");
  assert.match(m.abrError ?? "", /drops\/missing\/missing\.mp4 is not in the .* bucket; convert the recording again/);
  assert.equal(m.status, "ready");
  const c = await abrDone(corrupt.id, 60_000);
  assert.equal(c.abrStatus, "failed");
  assert.match(c.abrError ?? "", /MP4 cannot be read/);
  assert.equal(c.status, "ready");
  assert.equal(await countUnder("drops/corrupt/abr/"), 0);
});

test("a ready recording whose recording.ready event was lost is packaged by the sweep", async () => {
  assert.ok(ladderId, "the ladder test ran first");
  const source = await row(ladderId);
  const bucket = env.config.s3.recordingsBucket;
  await env.s3.send(new CopyObjectCommand({ Bucket: bucket, Key: "drops/lost/lost.mp4", CopySource: `${bucket}/${source.filePath}` }));
  const lost = await insertReady("drops/lost", "drops/lost/lost.mp4");
  // Made a while ago and never announced: the sweep leaves just-made rows to their events.
  await env.db.update(recordings).set({ updatedAt: new Date(Date.now() - 5 * 60_000) }).where(eq(recordings.id, lost.id));
  const { createLogger: logger } = await import("../../lib/log.js");
  const log = logger("package-test", "silent");
  const registry = new Registry();
  const events = createEventPublisher({ nats: () => env.nc, config: env.config, log, registry });
  const done = await sweepOnce({ config: env.config, log, s3: env.s3, db: env.db, nc: env.nc, worker: "sweep-test", registry, events, signal: new AbortController().signal });
  assert.ok(done >= 1, `the sweep packaged ${done}`);
  const r = await row(lost.id);
  assert.equal(r.abrStatus, "ready", r.abrError ?? "");
  assert.equal(r.abrMasterPath, "drops/lost/abr/master.m3u8");
  const master = parsePlaylist(await getText(env.s3, bucket, r.abrMasterPath!), "m") as MasterPlaylist;
  assert.equal(master.variants.length, 3);
});

async function packaging(id: string, by?: string): Promise<Recording> {
  return waitFor(`a replica packaging ${id} with progress`, async () => {
    const r = await row(id);
    return r.abrStatus === "processing" && r.abrProgress > 0.05 && r.abrClaimedBy && (!by || r.abrClaimedBy.startsWith(`${by}/`)) ? r : undefined;
  }, 120_000, 100);
}

test("SIGTERM of a package replica mid-job: it gives its lease back and exits within its grace, a restarted replica finishes the ladder, no temp folder or FFmpeg left", async () => {
  // One replica with a short grace holds the job alone, so the handed-back lease is seen before anyone takes it.
  await stopWorkers(packagers);
  const graceSeconds = 2;
  const [term] = await startWorkers(env, "functions/package/main.ts", 1, { SHUTDOWN_GRACE_SECONDS: String(graceSeconds) }, "term");
  packagers = [term!];
  const rec = await drop("termed", 40, "1280x720");
  await packaging(rec.id, term!.id);
  const encoders = await waitFor("the replica's FFmpeg", async () => {
    const procs = await childrenOf(term!.proc.pid!, "ffmpeg");
    return procs.length ? procs : undefined;
  }, 30_000, 100);
  const t0 = Date.now();
  term!.proc.kill("SIGTERM");
  assert.equal(await term!.exited, 0, term!.output.slice(-10).join("\n"));
  const tookMs = Date.now() - t0;
  // Grace, then up to the runner's 5 s settle after the abort, plus closing connections: well under stack.sh's wait.
  assert.ok(tookMs < (graceSeconds + 5 + 10) * 1000, `exited ${tookMs} ms after SIGTERM`);
  assert.ok(term!.output.some((l) => l.includes("grace period over; aborting in-flight jobs")), "the job outlived the grace and was aborted");
  const handed = await row(rec.id);
  assert.equal(handed.abrClaimedBy, null, "the lease was given back");
  assert.equal(handed.abrStatus, "pending");
  assert.equal(handed.abrError, null);
  assert.deepEqual(await stillRunning(encoders), [], "the replica's FFmpeg is gone");
  assert.deepEqual(await readdir(join(env.env.WORK_DIR!, "package")).catch(() => [] as string[]), [], "no temporary folder left");
  // The replica started again (and a second one, which the kill -9 test needs): the naked message is packaged at once.
  packagers = await startWorkers(env, "functions/package/main.ts", 2, {}, "p2");
  const done = await abrDone(rec.id, 300_000);
  assert.equal(done.abrStatus, "ready", done.abrError ?? "");
  assert.ok(packagers.some((w) => w.output.some((l) => l.includes(rec.id) && l.includes("ladder ready"))), "a restarted replica finished it");
  const master = parsePlaylist(await getText(env.s3, env.config.s3.recordingsBucket, done.abrMasterPath!), "m") as MasterPlaylist;
  assert.deepEqual(master.variants.map((v) => v.resolution?.height), [360, 240, 144]);
});

test("a recording deleted through the API while it is packaged: nothing left under its abr/ prefix, no failed status written, no warnings or errors", async (t) => {
  const token = "package-delete-token";
  const api = await startApi(env, withToken(token));
  t.after(() => api.close());
  const rec = await drop("deleted", 40, "1280x720");
  const busy = await packaging(rec.id);
  const holder = packagers.find((w) => busy.abrClaimedBy!.startsWith(`${w.id}/`));
  assert.ok(holder, `a replica holds ${busy.abrClaimedBy}`);
  const encoders = await childrenOf(holder.proc.pid!, "ffmpeg");
  const del = await fetch(`${api.url}/recordings/${rec.id}`, { method: "DELETE", headers: { authorization: `Bearer ${token}` } });
  assert.equal(del.status, 204, await del.text());
  // The job sees its lease gone with the row, stops FFmpeg and removes what it had uploaded.
  await waitFor("the package job to end", () => holder.output.some((l) => l.includes(rec.id) && l.includes("recording deleted during packaging")), 120_000, 100);
  await waitFor("its temporary folder removed", async () => ((await readdir(join(env.env.WORK_DIR!, "package")).catch(() => [])).length === 0 ? true : undefined), 30_000, 100);
  assert.equal(await countUnder("drops/deleted/abr/"), 0, "no orphaned ladder objects");
  assert.equal(await countUnder("drops/deleted/"), 0, "nothing of the recording in the recordings bucket");
  assert.equal((await env.db.select().from(recordings).where(eq(recordings.id, rec.id))).length, 0, "no row written back");
  assert.deepEqual(await stillRunning(encoders), [], "its FFmpeg stopped");
  // A later delivery of the same event (none is expected; a redelivery would say so) finds nothing to do, quietly.
  const noise = packagers.flatMap((w) => w.output).filter((l) => l.includes(rec.id) && /"level":(40|50|60)/.test(l));
  assert.deepEqual(noise, [], "no warning or error about the deleted recording");
});

test("kill -9 of the package replica mid-job: the other finishes, one ladder, no temp files left", async () => {
  const rec = await drop("killed", 40, "1280x720");
  const busy = await waitFor("a replica packaging with progress", async () => {
    const r = await row(rec.id);
    return r.abrStatus === "processing" && r.abrProgress > 0.05 && r.abrClaimedBy ? r : undefined;
  }, 120_000, 100);
  const holder = packagers.find((w) => busy.abrClaimedBy!.startsWith(`${w.id}/`));
  assert.ok(holder, `a replica holds ${busy.abrClaimedBy}`);
  holder.proc.kill("SIGKILL");
  await holder.exited;
  const done = await abrDone(rec.id, 300_000);
  assert.equal(done.abrStatus, "ready", done.abrError ?? "");
  const other = packagers.find((w) => w !== holder)!;
  assert.ok(other.output.some((l) => l.includes(rec.id) && l.includes("ladder ready")), "the other replica finished it");
  const master = parsePlaylist(await getText(env.s3, env.config.s3.recordingsBucket, done.abrMasterPath!), "m") as MasterPlaylist;
  assert.deepEqual(master.variants.map((v) => v.resolution?.height), [360, 240, 144]);
  // No duplicates: every object under abr/ is named by a playlist (a restarted job overwrote, never added).
  const keys: string[] = [];
  for await (const o of listObjects(env.s3, env.config.s3.recordingsBucket, "drops/killed/abr/")) keys.push(o.key.slice("drops/killed/abr/".length));
  const named = new Set(["master.m3u8", "manifest.mpd"]);
  for (const v of [...master.variants.map((v) => v.uri), master.variants[0]!.audio[0]!.uri!]) {
    named.add(v);
    const media = parsePlaylist(await getText(env.s3, env.config.s3.recordingsBucket, `drops/killed/abr/${v}`), v) as MediaPlaylist;
    named.add(media.segments[0]!.map!.uri);
    for (const s of media.segments) named.add(s.uri);
  }
  assert.deepEqual(keys.filter((k) => !named.has(k)), []);
  const left = await readdir(join(env.env.WORK_DIR!, "package")).catch(() => [] as string[]);
  assert.deepEqual(left, [], "no temporary folder left");
  // The killed replica's FFmpeg is gone too.
  const ps = await execa("pgrep", ["-f", join(env.env.WORK_DIR!, "package")], { reject: false });
  assert.equal(ps.stdout.trim(), "");
});
