import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { like } from "drizzle-orm";
import { createTestEnv, waitFor, type TestEnv } from "../../test/harness.js";
import { decodeErrors, makeShape, probe, probeStreams } from "../../test/media.js";
import { startWorkers, stopWorkers, waitForRecording, type Worker } from "../../test/workers.js";
import { presignGet } from "../../lib/s3.js";
import { recordings } from "../../db/schema.js";
import { listFolder, uploadFiles } from "../drop/upload.js";
import { chromium } from "playwright-core";
import { startApi } from "../../test/api.js";

// The HLS shapes packagers write, each made by FFmpeg's own HLS muxer, uploaded in the orders users'
// tools use, converted by a convert replica on the real stack into one complete recording.

let env: TestEnv;
let workers: Worker[];
let media: string;

before(async () => {
  env = await createTestEnv("inputs", { SEGMENT_WAIT_SECONDS: "4" });
  media = await mkdtemp(join(tmpdir(), "inputs-test-"));
  for (const shape of ["audio-rendition", "languages", "hevc-fmp4", "single-file", "audio-only", "aes"] as const) await makeShape(join(media, shape), shape);
  await makeShape(join(media, "ladder"), "ladder", 6, "640x360");
  workers = [...(await startWorkers(env, "functions/convert/main.ts", 1)), ...(await startWorkers(env, "functions/thumbnail/main.ts", 1, {}, "t"))];
});

after(async () => {
  await stopWorkers(workers ?? []);
  await env.close();
  await rm(media, { recursive: true, force: true });
});

const hls = () => env.config.s3.hlsBucket;

/** Media files first, then the playlists one by one in `order`, as an uploader that sorts by name or time does. */
async function uploadInOrder(shape: string, prefix: string, order: string[]) {
  const files = await listFolder(join(media, shape));
  await uploadFiles(env.s3, hls(), prefix, files, { skip: (f) => f.rel.endsWith(".m3u8") });
  for (const name of order) {
    await env.s3.send(new PutObjectCommand({ Bucket: hls(), Key: `${prefix}/${name}`, Body: await readFile(join(media, shape, name)) }));
  }
}

async function rowsUnder(prefix: string) {
  return env.db.select().from(recordings).where(like(recordings.sourcePrefix, `${prefix}%`));
}

async function mp4Url(key: string) {
  return presignGet(env.config.s3, env.config.s3.recordingsBucket, key);
}

/** One ready recording for the prefix, its MP4 holding the given tracks for about `seconds`. */
async function assertComplete(prefix: string, want: { video?: string; audio: number; seconds: number }) {
  const r = await waitForRecording(env, prefix);
  assert.equal(r.status, "ready", `${prefix}: expected ready, got ${r.status}: ${r.error}`);
  const url = await mp4Url(r.filePath!);
  const streams = await probeStreams(url);
  const p = await probe(url);
  assert.equal(streams.find((s) => s.codec_type === "video")?.codec_name, want.video, `${prefix}: video track`);
  assert.equal(streams.filter((s) => s.codec_type === "audio").length, want.audio, `${prefix}: audio tracks`);
  assert.ok(Math.abs(p.duration - want.seconds) <= 0.6, `${prefix}: MP4 lasts ${p.duration} s, expected ${want.seconds} s`);
  assert.deepEqual(r.warnings ?? [], [], `${prefix}: no warnings`);
  assert.equal((await rowsUnder(prefix)).length, 1, `${prefix}: one row`);
  return { r, streams };
}

for (const [order, playlists] of [
  ["master first", ["master.m3u8", "s_0.m3u8", "s_1.m3u8"]],
  ["media playlists first", ["s_0.m3u8", "s_1.m3u8", "master.m3u8"]],
  ["rendition first", ["s_1.m3u8", "master.m3u8", "s_0.m3u8"]],
] as const) {
  test(`a master with a separate audio rendition uploaded ${order} becomes one recording with video and audio, never one of its playlists alone`, async () => {
    const prefix = `rendition/${order.replaceAll(" ", "-")}`;
    // Watch the folder's row the whole time: it must never be ready with one track, or made from a playlist other than the video variant.
    const seen: string[] = [];
    let watching = true;
    const watch = (async () => {
      while (watching) {
        for (const r of await rowsUnder(prefix)) if (r.status === "ready") seen.push(`${r.playlistKey} ${r.audioTracks?.length} audio`);
        await new Promise((ok) => setTimeout(ok, 100));
      }
    })();
    try {
      await uploadInOrder("audio-rendition", prefix, [...playlists]);
      await assertComplete(prefix, { video: "h264", audio: 1, seconds: 6 });
    } finally {
      watching = false;
      await watch;
    }
    assert.deepEqual([...new Set(seen)], [`${prefix}/s_0.m3u8 1 audio`]);
    const [r] = await rowsUnder(prefix);
    assert.equal(r!.filePath, `${prefix}/${order.replaceAll(" ", "-")}.mp4`);
  });
}

test("two audio renditions (two languages) and a WebVTT subtitle rendition: two labelled audio tracks and a side-car .vtt", async () => {
  await uploadFiles(env.s3, hls(), "langs/talk", await listFolder(join(media, "languages")));
  const { r, streams } = await assertComplete("langs/talk", { video: "h264", audio: 2, seconds: 6 });
  const audio = streams.filter((s) => s.codec_type === "audio");
  assert.deepEqual(audio.map((s) => s.tags?.language), ["eng", "fra"], "the DEFAULT rendition leads, every language is kept");
  assert.deepEqual(r.audioTracks?.map((t) => [t.language, t.isDefault]), [["eng", true], ["fra", false]]);
  assert.equal(r.subtitles?.length, 1);
  const sub = r.subtitles![0]!;
  assert.equal(sub.language, "eng");
  assert.deepEqual(r.extraKeys, [sub.key]);
  const res = await env.s3.send(new GetObjectCommand({ Bucket: env.config.s3.recordingsBucket, Key: sub.key }));
  const vtt = await res.Body!.transformToString();
  assert.match(vtt, /^WEBVTT/);
  assert.match(vtt, /Hello/);
  assert.match(vtt, /World/);
  assert.equal(vtt.match(/World/g)!.length, 1, "a cue repeated across segments is kept once");
});

test("AES-128 with its key in the folder converts, and the MP4 decodes without errors", async () => {
  const files = (await listFolder(join(media, "aes"))).filter((f) => !f.rel.endsWith(".keyinfo"));
  await uploadFiles(env.s3, hls(), "enc/inside", files);
  const { r } = await assertComplete("enc/inside", { video: "h264", audio: 1, seconds: 6 });
  assert.equal(await decodeErrors(await mp4Url(r.filePath!)), "");
});

test("an AES-128 key outside the folder is refused and nothing outside the folder is fetched", async () => {
  let requests = 0;
  const server = createServer((_req, res) => {
    requests++;
    res.end(Buffer.alloc(16));
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const port = (server.address() as { port: number }).port;
  try {
    const playlist = await readFile(join(media, "aes/index.m3u8"), "utf8");
    const segments = (await listFolder(join(media, "aes"))).filter((f) => f.rel.endsWith(".ts"));
    await uploadFiles(env.s3, hls(), "enc/absolute", segments);
    await uploadFiles(env.s3, hls(), "enc/dotdot", segments);
    await env.s3.send(new PutObjectCommand({ Bucket: hls(), Key: "enc/k.key", Body: await readFile(join(media, "aes/k.key")) }));
    await env.s3.send(new PutObjectCommand({ Bucket: hls(), Key: "enc/absolute/index.m3u8", Body: playlist.replaceAll('URI="k.key"', `URI="http://127.0.0.1:${port}/k.key"`) }));
    await env.s3.send(new PutObjectCommand({ Bucket: hls(), Key: "enc/dotdot/index.m3u8", Body: playlist.replaceAll('URI="k.key"', 'URI="../k.key"') }));
    const abs = await waitForRecording(env, "enc/absolute");
    assert.equal(abs.status, "failed");
    assert.match(abs.error!, /references "http:\/\/127\.0\.0\.1:\d+\/k\.key", an absolute URL: key files must be relative paths to files inside the playlist's folder/);
    const dotdot = await waitForRecording(env, "enc/dotdot");
    assert.equal(dotdot.status, "failed");
    assert.match(dotdot.error!, /references "\.\.\/k\.key", which resolves to "enc\/k\.key" outside the folder "enc\/dotdot": key files must/);
    assert.equal(requests, 0, "the key server outside the folder was never asked");
  } finally {
    server.close();
  }
});

test("SAMPLE-AES is failed with a message naming the method", async () => {
  const playlist = await readFile(join(media, "aes/index.m3u8"), "utf8");
  await uploadFiles(env.s3, hls(), "enc/sample-aes", (await listFolder(join(media, "aes"))).filter((f) => f.rel.endsWith(".ts") || f.rel.endsWith(".key")));
  await env.s3.send(new PutObjectCommand({ Bucket: hls(), Key: "enc/sample-aes/index.m3u8", Body: playlist.replaceAll("METHOD=AES-128", "METHOD=SAMPLE-AES") }));
  const r = await waitForRecording(env, "enc/sample-aes");
  assert.equal(r.status, "failed");
  assert.match(r.error!, /METHOD=SAMPLE-AES, which encrypts samples inside the media for DRM players; convert decrypts only METHOD=AES-128/);
});

test("HEVC in fMP4, single-file byte ranges, a three-variant ladder with muxed audio and audio only each become one complete recording", async () => {
  await uploadFiles(env.s3, hls(), "shapes/hevc", await listFolder(join(media, "hevc-fmp4")));
  await uploadFiles(env.s3, hls(), "shapes/single", await listFolder(join(media, "single-file")));
  await uploadFiles(env.s3, hls(), "shapes/ladder", await listFolder(join(media, "ladder")));
  await uploadFiles(env.s3, hls(), "shapes/podcast", await listFolder(join(media, "audio-only")));
  const hevc = await assertComplete("shapes/hevc", { video: "hevc", audio: 1, seconds: 6 });
  assert.equal(hevc.r.videoCodec, "hevc");
  await assertComplete("shapes/single", { video: "h264", audio: 1, seconds: 6 });
  const ladder = await assertComplete("shapes/ladder", { video: "h264", audio: 1, seconds: 6 });
  assert.deepEqual([ladder.r.width, ladder.r.height, ladder.r.playlistKey], [640, 360, "shapes/ladder/v0/index.m3u8"]);
  const podcast = await assertComplete("shapes/podcast", { video: undefined, audio: 1, seconds: 6 });
  assert.deepEqual([podcast.r.width, podcast.r.videoCodec, podcast.r.audioCodec], [null, null, "aac"]);
});

test("a damaged segment (as SRT loss leaves) gives a ready recording of what is there, with a warning saying how much is missing and where", async () => {
  const dir = join(media, "audio-rendition");
  const playlist = await readFile(join(dir, "s_0.m3u8"), "utf8");
  await uploadFiles(env.s3, hls(), "damaged/show", (await listFolder(dir)).filter((f) => f.rel.startsWith("s_0_") && f.rel !== "s_0_001.ts"));
  await env.s3.send(new PutObjectCommand({ Bucket: hls(), Key: "damaged/show/s_0_001.ts", Body: new Uint8Array(Array.from({ length: 150_000 }, (_, i) => (i * 7919) % 251)) }));
  await env.s3.send(new PutObjectCommand({ Bucket: hls(), Key: "damaged/show/index.m3u8", Body: playlist }));
  const r = await waitForRecording(env, "damaged/show");
  assert.equal(r.status, "ready", r.error ?? "");
  assert.equal(r.warnings?.length, 1);
  const w = r.warnings![0]!;
  assert.ok(w.missingSeconds >= 1.5 && w.missingSeconds <= 2.5, `missing ${w.missingSeconds} s`);
  assert.deepEqual(w.at.map((g) => [g.segment, g.startSeconds]), [["s_0_001.ts", 2]]);
  assert.match(w.message, /the source is damaged: 2\.\d s of the 6\.0 s .* are not in the MP4 \(0:02 in s_0_001\.ts: 2\.0 s\)/);
  assert.ok(Math.abs(r.durationSeconds! - 4) <= 0.6);
});

test("an audio rendition with no audio in it fails the recording, naming the rendition", async () => {
  const dir = join(media, "audio-rendition");
  const master = (await readFile(join(dir, "master.m3u8"), "utf8")).replace('URI="s_1.m3u8"', 'URI="s_0.m3u8"');
  await uploadFiles(env.s3, hls(), "broken/no-audio", (await listFolder(dir)).filter((f) => f.rel.startsWith("s_0")));
  await env.s3.send(new PutObjectCommand({ Bucket: hls(), Key: "broken/no-audio/master.m3u8", Body: master }));
  const r = await waitForRecording(env, "broken/no-audio", ["failed"]);
  assert.equal(r.status, "failed");
  assert.match(r.error!, /the audio rendition "audio_1" \(s_0\.m3u8\) holds no audio stream: check its segments and upload the folder again/);
});

test("a master whose audio rendition playlist never lands fails after SEGMENT_WAIT_SECONDS, naming it", async () => {
  await uploadFiles(env.s3, hls(), "broken/no-rendition", (await listFolder(join(media, "audio-rendition"))).filter((f) => f.rel !== "s_1.m3u8"));
  const r = await waitForRecording(env, "broken/no-rendition", ["failed"]);
  assert.match(r.error!, /1 playlist\(s\) named by broken\/no-rendition\/master\.m3u8 never arrived or never finished with #EXT-X-ENDLIST \(waited 4 s\): s_1\.m3u8\. Upload them, then upload the master playlist again/);
  assert.equal((await rowsUnder("broken/no-rendition")).length, 1);
});

test("the API lists subtitles, audio tracks and warnings; the page shows subtitle tracks, the warning, and an audio player under the waveform", async () => {
  const api = await startApi(env);
  const profile = await mkdtemp(join(tmpdir(), "inputs-chromium-"));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"],
  });
  try {
    const idOf = async (prefix: string) => (await waitForRecording(env, prefix)).id;
    type Detail = { subtitles: { language: string | null; name: string; url: string }[]; audioTracks: { language: string | null; default: boolean }[]; warnings: { message: string; missingSeconds: number }[] };
    const detail = async (id: string) => (await (await fetch(`${api.url}/recordings/${id}`)).json()) as Detail;

    const talk = await detail(await idOf("langs/talk"));
    assert.deepEqual(talk.audioTracks.map((t) => [t.language, t.default]), [["eng", true], ["fra", false]]);
    assert.equal(talk.subtitles.length, 1);
    assert.equal(talk.subtitles[0]!.language, "eng");
    const vtt = await fetch(talk.subtitles[0]!.url);
    assert.equal(vtt.status, 200);
    assert.match(vtt.headers.get("content-type")!, /^text\/vtt/);
    assert.match(await vtt.text(), /Hello/);

    const damaged = await detail(await idOf("damaged/show"));
    assert.equal(damaged.warnings.length, 1);
    assert.match(damaged.warnings[0]!.message, /s_0_001\.ts/);

    const page = browser.pages()[0] ?? (await browser.newPage());
    await page.goto(`${api.url}/watch/${await idOf("langs/talk")}`);
    const track = page.locator("video[data-testid=player] track[data-testid=subtitle-track]");
    await track.waitFor({ state: "attached" });
    assert.equal(await track.getAttribute("srclang"), "eng");
    // The track loads in the browser (same origin) and its cues are parsed.
    const cues = await page.evaluate(async () => {
      const v = document.querySelector("video[data-testid=player]") as HTMLVideoElement;
      const t = v.textTracks[0]!;
      t.mode = "showing";
      for (let i = 0; i < 100 && !(t.cues && t.cues.length); i++) await new Promise((ok) => setTimeout(ok, 100));
      return Array.from(t.cues ?? []).map((c) => (c as VTTCue).text);
    });
    assert.deepEqual(cues, ["Hello", "World"]);

    await page.goto(`${api.url}/watch/${await idOf("damaged/show")}`);
    assert.match(await page.locator("[data-testid=warnings]").innerText(), /the source is damaged: 2\.\d s .* s_0_001\.ts/);

    const podcast = await idOf("shapes/podcast");
    await waitFor("the podcast's waveform poster", async () => (await env.db.select().from(recordings).where(like(recordings.sourcePrefix, "shapes/podcast"))).some((r) => r.thumbnailPath), 60_000);
    await page.goto(`${api.url}/watch/${podcast}`);
    const audio = page.locator("audio[data-testid=player]");
    await audio.waitFor();
    await waitFor("the waveform image to load", () => page.locator("img[data-testid=waveform]").evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth === 1280));
    await waitFor("the audio to play past 1 s", () => audio.evaluate((a: HTMLAudioElement) => a.currentTime > 1 || (a.paused && a.play().then(() => false, () => false))), 30_000);
    assert.equal(await page.locator("video").count(), 0);
  } finally {
    await browser.close();
    await rm(profile, { recursive: true, force: true });
    await api.close();
  }
});
