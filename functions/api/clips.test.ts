import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readdir, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { HeadObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { recordings } from "../../db/schema.js";
import { createTestEnv, waitFor, type TestEnv } from "../../test/harness.js";
import { publishLive, startApi, storeReadyRecording, withToken, type RunningApi } from "../../test/api.js";
import { decodeErrors } from "../../test/media.js";
import { startWorkers, stopWorkers, type Worker } from "../../test/workers.js";

const TOKEN = "test-token-clips-0123456789";
const auth = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
// 25 fps with a keyframe every 48 frames: keyframes at 0, 1.92, …, 9.6, 11.52 s — never on a round second.
const GOP = 48 / 25;
let env: TestEnv;
let api: RunningApi;
let parentId: string;
let clippers: Worker[] = [];

/** A 60 s 640x360 recording (test pattern and tone), stored as convert stores one. */
async function storeSixtySeconds(folder: string) {
  const dir = join(tmpdir(), `clips-media-${process.pid}`);
  await mkdir(dir, { recursive: true });
  const mp4 = join(dir, "sixty.mp4");
  await execa("ffmpeg", [
    "-hide_banner", "-loglevel", "error", "-y",
    "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=60", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=60",
    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "48", "-keyint_min", "48", "-sc_threshold", "0",
    "-c:a", "aac", "-b:a", "96k", "-movflags", "+faststart", mp4,
  ]);
  // Its source HLS, as the gateway would have left it: the same media in segments (stream copy).
  const hls = join(dir, "hls");
  await mkdir(hls, { recursive: true });
  await execa("ffmpeg", ["-hide_banner", "-loglevel", "error", "-y", "-i", mp4, "-c", "copy", "-f", "hls", "-hls_time", "4", "-hls_playlist_type", "vod", "-hls_segment_filename", join(hls, "seg%03d.ts"), join(hls, "index.m3u8")]);
  const row = await storeReadyRecording(env, folder, { durationSeconds: 60, filePath: `${folder}/sixty.mp4` });
  await env.s3.send(new PutObjectCommand({ Bucket: env.config.s3.recordingsBucket, Key: `${folder}/sixty.mp4`, Body: await readFile(mp4), ContentType: "video/mp4" }));
  for (const f of await readdir(hls)) await env.s3.send(new PutObjectCommand({ Bucket: env.config.s3.hlsBucket, Key: `${folder}/${f}`, Body: await readFile(join(hls, f)) }));
  return row;
}

const post = (path: string, body: unknown, headers: Record<string, string> = auth) => fetch(`${api.url}${path}`, { method: "POST", headers, body: JSON.stringify(body) });
const getJson = async (path: string) => {
  const res = await fetch(`${api.url}${path}`);
  assert.equal(res.status, 200, `${path} answered ${res.status}`);
  return res.json() as Promise<any>;
};

async function createClip(path: string, body: unknown) {
  const res = await post(path, body);
  const json = (await res.json()) as any;
  assert.equal(res.status, 201, JSON.stringify(json));
  return waitFor(`clip ${json.id} ready`, async () => {
    const r = await getJson(`/recordings/${json.id}`);
    if (r.status === "failed") throw new Error(`clip failed: ${r.error}`);
    return r.status === "ready" ? r : undefined;
  }, 60_000);
}

/** Video and audio stream durations of a (downloaded) clip. */
async function streamDurations(url: string) {
  const { stdout } = await execa("ffprobe", ["-v", "error", "-show_entries", "stream=codec_type,duration:format=duration", "-of", "json", url]);
  const j = JSON.parse(stdout) as { streams: { codec_type: string; duration: string }[]; format: { duration: string } };
  return {
    video: Number(j.streams.find((s) => s.codec_type === "video")!.duration),
    audio: Number(j.streams.find((s) => s.codec_type === "audio")!.duration),
    format: Number(j.format.duration),
  };
}

/** The clip's storyboard is on the clip's own timeline: cues from 0 to about its duration, tiles that load. */
async function assertStoryboard(clip: any) {
  assert.ok(clip.storyboardUrl, "the clip has a storyboard");
  const vtt = await (await fetch(clip.storyboardUrl)).text();
  const cues = [...vtt.matchAll(/(\d\d):(\d\d):(\d\d)\.(\d{3}) --> (\d\d):(\d\d):(\d\d)\.(\d{3})\n(\S+)/g)];
  assert.ok(cues.length >= 2, vtt);
  const secs = (m: RegExpMatchArray, i: number) => Number(m[i]) * 3600 + Number(m[i + 1]) * 60 + Number(m[i + 2]) + Number(m[i + 3]) / 1000;
  assert.equal(secs(cues[0]!, 1), 0);
  assert.ok(Math.abs(secs(cues.at(-1)!, 5) - clip.durationSeconds) < 0.5, `the last cue ends at ${secs(cues.at(-1)!, 5)}, the clip lasts ${clip.durationSeconds}`);
  const tile = await fetch(cues[0]![9]!.split("#")[0]!);
  assert.equal(tile.status, 200);
  assert.equal(tile.headers.get("content-type"), "image/jpeg");
}

before(async () => {
  env = await createTestEnv("api-clips");
  api = await startApi(env, (c) => ({ ...withToken(TOKEN)(c), clips: { maxSeconds: 40, liveMaxSeconds: 20 } }));
  // The API only queues clips: one replica of the clip function cuts them, as `make up` runs it.
  clippers = await startWorkers(env, "functions/clip/main.ts", 1, {}, "clip");
  parentId = (await storeSixtySeconds("studio/sixty")).id;
});
after(async () => {
  await api?.close();
  await stopWorkers(clippers);
  await env?.close();
});

describe("clips of a recording", () => {
  test("a keyframe clip of 10–25 s starts at the keyframe at or before 10 s, ends at or after 25 s, within one GOP, and decodes", async () => {
    const seen: { type: string; data: { id: string; parentId: string; status: string; clipStart: number } }[] = [];
    const announced = env.nc.subscribe(`${env.config.events.subjectPrefix}.clip.ready`, { callback: (_err, m) => void seen.push(m.json()) });
    const clip = await createClip(`/recordings/${parentId}/clips`, { start: 10, end: 25 });
    assert.equal(clip.kind, "clip");
    // The clip is announced once ready, as the API shows it, with its parent and range.
    const event = await waitFor("clip.ready for this clip", () => seen.find((e) => e.data.id === clip.id));
    announced.unsubscribe();
    assert.equal(event.type, "clip.ready");
    assert.equal(event.data.parentId, parentId);
    assert.equal(event.data.status, "ready");
    assert.equal(event.data.clipStart, clip.clipStart);
    assert.equal(clip.parentId, parentId);
    assert.ok(clip.clipStart <= 10 && clip.clipStart > 10 - GOP, `clip starts at ${clip.clipStart}`);
    assert.ok(clip.clipEnd >= 25 - 0.001, `clip ends at ${clip.clipEnd}`);
    const d = await streamDurations(clip.videoUrl);
    assert.ok(d.video >= 15 - 0.05 && d.video <= 15 + GOP + 0.05, `video lasts ${d.video}`);
    assert.ok(Math.abs(d.format - (clip.clipEnd - clip.clipStart)) < 0.1, `file lasts ${d.format}, row says ${clip.clipEnd - clip.clipStart}`);
    assert.equal(await decodeErrors(clip.videoUrl), "");
    assert.ok(clip.thumbnailUrl, "the clip has a poster");
    await assertStoryboard(clip);
  });

  test("a precise clip of 10.5–22.3 s lasts 11.8 s within one frame, decodes cleanly, audio and video within 50 ms", async () => {
    const clip = await createClip(`/recordings/${parentId}/clips`, { start: 10.5, end: 22.3, precise: true, title: "the good part" });
    assert.equal(clip.title, "the good part");
    assert.equal(clip.clipStart, 10.5);
    assert.equal(clip.clipEnd, 22.3);
    const d = await streamDurations(clip.videoUrl);
    assert.ok(Math.abs(d.video - 11.8) <= 0.04 + 1e-6, `video lasts ${d.video}`);
    assert.ok(Math.abs(d.audio - d.video) <= 0.05, `audio lasts ${d.audio}, video ${d.video}`);
    assert.equal(await decodeErrors(clip.videoUrl), "");
    // The first frame is the parent's frame at 10.5 s: compare it with the parent's own decode there.
    const frame = async (url: string, at: number) => (await execa("ffmpeg", ["-v", "error", "-ss", String(at), "-i", url, "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "-s", "64x36", "-"], { encoding: "buffer" })).stdout;
    const parent = await getJson(`/recordings/${parentId}`);
    const a = await frame(parent.videoUrl, 10.5);
    const b = await frame(clip.videoUrl, 0);
    const diff = a.reduce((sum, v, i) => sum + Math.abs(v - b[i]!), 0) / a.length;
    assert.ok(diff < 6, `the clip's first frame differs from the parent's at 10.5 s by ${diff.toFixed(1)} on average`);
  });

  test("precise clips starting on a keyframe (copied whole) and inside one GOP (re-encoded whole) are frame-accurate too", async () => {
    for (const [start, end] of [[9.6, 12], [10.1, 11]] as const) {
      const clip = await createClip(`/recordings/${parentId}/clips`, { start, end, precise: true });
      const d = await streamDurations(clip.videoUrl);
      assert.ok(Math.abs(d.video - (end - start)) <= 0.04 + 1e-6, `${start}–${end}: video lasts ${d.video}`);
      assert.ok(Math.abs(d.audio - d.video) <= 0.05, `${start}–${end}: audio lasts ${d.audio}, video ${d.video}`);
      assert.equal(await decodeErrors(clip.videoUrl), "");
    }
  });

  test("clips are listed by kind and parent, and stay playable after their parent is deleted", async () => {
    const clip = await createClip(`/recordings/${parentId}/clips`, { start: 0, end: 5 });
    const clips = await getJson(`/recordings?kind=clip&parent=${parentId}`);
    assert.ok(clips.items.length >= 1 && clips.items.every((r: any) => r.kind === "clip" && r.parentId === parentId));
    assert.ok(clips.items.some((r: any) => r.id === clip.id));
    const plain = await getJson(`/recordings?kind=recording`);
    assert.ok(plain.items.some((r: any) => r.id === parentId) && plain.items.every((r: any) => r.kind === "recording"));

    const del = await fetch(`${api.url}/recordings/${parentId}`, { method: "DELETE", headers: auth });
    assert.equal(del.status, 204);
    const after = await getJson(`/recordings/${clip.id}`);
    assert.equal(after.status, "ready");
    const video = await fetch(after.videoUrl);
    assert.equal(video.status, 200);
    assert.ok((await video.arrayBuffer()).byteLength > 1000);

    // A clip is deleted like any recording: its row and every object under its own prefix.
    const other = await createClip(`/recordings/${after.id}/clips`, { start: 1, end: 3 });
    assert.equal(other.parentId, after.id, "a clip of a clip");
    assert.equal((await fetch(`${api.url}/recordings/${other.id}`, { method: "DELETE", headers: auth })).status, 204);
    assert.equal((await fetch(`${api.url}/recordings/${other.id}`)).status, 404);
    assert.equal((await fetch(other.videoUrl)).status, 404, "the deleted clip's MP4 is gone");

    const again = await post(`/recordings/${parentId}/clips`, { start: 0, end: 5 });
    assert.equal(again.status, 404, "a clip of a deleted recording is refused");
    assert.match(((await again.json()) as any).error.message, /no recording/);
    // Put a parent back for the other tests.
    parentId = (await storeSixtySeconds("studio/sixty-again")).id;
  });
});

test("precise clips of an audio-only and of an HEVC recording are exact too (audio re-encoded; HEVC re-encoded to H.264)", async () => {
  const dir = join(tmpdir(), `clips-media-${process.pid}`);
  const q = ["-hide_banner", "-loglevel", "error", "-y"];
  const audio = join(dir, "podcast.m4a");
  const hevc = join(dir, "hevc.mp4");
  await execa("ffmpeg", [...q, "-f", "lavfi", "-i", "sine=frequency=330:sample_rate=48000:duration=20", "-c:a", "aac", "-movflags", "+faststart", audio]);
  await execa("ffmpeg", [...q, "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=10", "-f", "lavfi", "-i", "sine=duration=10", "-c:v", "libx265", "-preset", "ultrafast", "-tag:v", "hvc1", "-x265-params", "log-level=error", "-c:a", "aac", "-movflags", "+faststart", hevc]);
  for (const [file, videoCodec, audioCodec, start, end] of [[audio, null, "aac", 2.3, 7.9], [hevc, "hevc", "aac", 2.5, 6.1]] as const) {
    const key = `other/${videoCodec ?? "audio"}.mp4`;
    await env.s3.send(new PutObjectCommand({ Bucket: env.config.s3.recordingsBucket, Key: key, Body: await readFile(file) }));
    const [row] = await env.db.insert(recordings).values({ streamId: "other", title: key, sourcePrefix: `other/${videoCodec ?? "audio"}`, status: "ready", filePath: key, durationSeconds: videoCodec ? 10 : 20, videoCodec, audioCodec }).returning();
    const clip = await createClip(`/recordings/${row!.id}/clips`, { start, end, precise: true });
    if (videoCodec) {
      const d = await streamDurations(clip.videoUrl);
      assert.equal(clip.videoCodec, "h264");
      assert.ok(Math.abs(d.video - (end - start)) <= 0.04 + 1e-6, `HEVC: video lasts ${d.video}`);
      assert.ok(Math.abs(d.audio - d.video) <= 0.05, `HEVC: audio lasts ${d.audio}, video ${d.video}`);
    } else {
      assert.equal(clip.videoCodec, null);
      assert.ok(Math.abs(clip.durationSeconds - (end - start)) <= 0.03, `audio only: the clip lasts ${clip.durationSeconds}`);
    }
    assert.equal(await decodeErrors(clip.videoUrl), "");
  }
});

test("deleting a dropped folder named like the clips' root removes its own objects and no clip", async () => {
  const clip = await createClip(`/recordings/${parentId}/clips`, { start: 2, end: 4 });
  await env.s3.send(new PutObjectCommand({ Bucket: env.config.s3.recordingsBucket, Key: "clips/clips.mp4", Body: "not really a video" }));
  const [dropped] = await env.db.insert(recordings).values({ streamId: "clips", title: "clips", sourcePrefix: "clips", status: "ready", filePath: "clips/clips.mp4" }).returning();
  assert.equal((await fetch(`${api.url}/recordings/${dropped!.id}`, { method: "DELETE", headers: auth })).status, 204);
  await assert.rejects(env.s3.send(new HeadObjectCommand({ Bucket: env.config.s3.recordingsBucket, Key: "clips/clips.mp4" })));
  assert.equal((await fetch(clip.videoUrl)).status, 200, "the clip's MP4 survived");
});

describe("bad clip requests", () => {
  const bad = async (path: string, body: unknown, status: number, field?: string) => {
    const res = await post(path, body);
    const json = (await res.json()) as any;
    assert.equal(res.status, status, JSON.stringify(json));
    if (field) assert.equal(json.error.field, field, JSON.stringify(json));
    assert.ok(json.error.message.length > 10);
    return json.error.message as string;
  };

  test("end before start, a range outside the recording, too long, and bad types are 400s naming the field", async () => {
    assert.match(await bad(`/recordings/${parentId}/clips`, { start: 20, end: 10 }, 400, "end"), /after start/);
    assert.match(await bad(`/recordings/${parentId}/clips`, { start: 10, end: 70 }, 400, "end"), /outside the recording/);
    assert.match(await bad(`/recordings/${parentId}/clips`, { start: 61, end: 62 }, 400, "start"), /outside the recording/);
    assert.match(await bad(`/recordings/${parentId}/clips`, { start: 0, end: 50 }, 400, "end"), /CLIP_MAX_SECONDS/);
    await bad(`/recordings/${parentId}/clips`, { start: -1, end: 5 }, 400, "start");
    await bad(`/recordings/${parentId}/clips`, { start: "ten", end: 5 }, 400, "start");
    await bad(`/recordings/${parentId}/clips`, { start: 1, end: 5, precise: "yes" }, 400, "precise");
    await bad(`/live/nobody/clips`, { seconds: 25 }, 400, "seconds");
  });

  test("a recording not ready is 409, an unknown recording or stream 404, no token 401", async () => {
    const [processing] = await env.db.insert(recordings).values({ streamId: "studio", title: "busy", sourcePrefix: "studio/busy", status: "processing" }).returning();
    assert.match(await bad(`/recordings/${processing!.id}/clips`, { start: 0, end: 5 }, 409), /not ready/);
    await bad(`/recordings/00000000-0000-4000-8000-000000000000/clips`, { start: 0, end: 5 }, 404);
    assert.match(await bad(`/live/nobody/clips`, { seconds: 10 }, 404), /not live/);
    const res = await post(`/recordings/${parentId}/clips`, { start: 0, end: 5 }, { "content-type": "application/json" });
    assert.equal(res.status, 401);
  });
});

describe("a clip whose cutting process stopped", () => {
  test("is marked failed, with what to do, by the next API process that starts", async () => {
    const [stale] = await env.db.insert(recordings).values({ streamId: "studio", title: "stale", sourcePrefix: "clips/stale", kind: "clip", status: "processing", updatedAt: new Date(Date.now() - 3600_000) }).returning();
    const [fresh] = await env.db.insert(recordings).values({ streamId: "studio", title: "fresh", sourcePrefix: "clips/fresh", kind: "clip", status: "processing" }).returning();
    const second = await startApi(env, withToken(TOKEN));
    try {
      const row = await waitFor("the stale clip failed", async () => {
        const r = await getJson(`/recordings/${stale!.id}`);
        return r.status === "failed" ? r : undefined;
      });
      assert.match(row.error, /create the clip again/);
      assert.equal((await getJson(`/recordings/${fresh!.id}`)).status, "processing", "a clip being cut now is left alone");
    } finally {
      await second.close();
    }
  });
});

describe("clips of a live broadcast", () => {
  test("the last N seconds of what is stored are cut at segment boundaries while the stream is live", async () => {
    const live = await publishLive(env, "arena", "s1");
    const clip = await createClip(`/live/arena/clips`, { seconds: 3 });
    assert.equal(clip.parentId, live.id);
    // The 6 s broadcast has 2 s segments: the last 3 s are covered by the last two, 2–6 s.
    assert.ok(Math.abs(clip.clipStart - 2) < 0.05 && Math.abs(clip.clipEnd - 6) < 0.05, `clip ${clip.clipStart}–${clip.clipEnd}`);
    const d = await streamDurations(clip.videoUrl);
    assert.ok(Math.abs(d.format - 4) < 0.15, `clip lasts ${d.format}`);
    assert.equal(await decodeErrors(clip.videoUrl), "");
    await assertStoryboard(clip);
  });
});
