import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { execa } from "execa";
import { pino } from "pino";
import { createTestEnv, waitFor, type TestEnv } from "../../test/harness.js";
import { startWorkers, stopWorkers } from "../../test/workers.js";
import { makeHls, makeShape, probe } from "../../test/media.js";
import { headObject, listObjects } from "../../lib/s3.js";
import { ensureRecordingFor, getRecordingBySourcePrefix } from "../../db/recordings.js";
import { recordings } from "../../db/schema.js";
import { eq } from "drizzle-orm";
import type { StorageEvent } from "../events/decode.js";
import { PermanentError, type HandlerContext } from "../runtime/handler.js";
import { thumbnailFunction } from "./function.js";
import { handleThumbnail, thumbnailKeys } from "./handler.js";
import { onTimeline, PlaylistError, type SegmentRef } from "./playlist.js";
import { posterCandidates } from "./poster.js";
import { pickTileSegments, storyboardVtt } from "./storyboard.js";

let env: TestEnv;
let work: string;

before(async () => {
  env = await createTestEnv("thumbnail");
  work = await mkdtemp(join(tmpdir(), "thumbnail-test-"));
});
after(async () => {
  await env?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

function event(key: string, bucket = env.config.s3.hlsBucket): StorageEvent {
  return { bucket, key, eventName: "s3:ObjectCreated:Put", size: 0, etag: "", sequencer: "" };
}

/** A handler context on the test env whose log lines are kept for the test to read. */
function context(overrides: { maxTiles?: number } = {}): { ctx: HandlerContext; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split("\n").filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const config = { ...env.config, functions: { ...env.config.functions, storyboardMaxTiles: overrides.maxTiles ?? env.config.functions.storyboardMaxTiles } };
  const ctx: HandlerContext = {
    s3: env.s3,
    db: env.db,
    log: pino({ level: "debug" }, sink),
    config,
    signal: new AbortController().signal,
    progress: async () => {},
    attempt: 1,
    worker: "thumbnail-test",
  };
  return { ctx, lines };
}

async function uploadDir(dir: string, prefix: string, skip: (name: string) => boolean = () => false): Promise<void> {
  const names = (await readdir(dir)).sort((a, b) => Number(a.endsWith(".m3u8")) - Number(b.endsWith(".m3u8")));
  for (const name of names) {
    if (skip(name)) continue;
    await env.s3.send(new PutObjectCommand({ Bucket: env.config.s3.hlsBucket, Key: `${prefix}/${name}`, Body: await readFile(join(dir, name)) }));
  }
}

async function putHls(key: string, body: string | Uint8Array): Promise<void> {
  await env.s3.send(new PutObjectCommand({ Bucket: env.config.s3.hlsBucket, Key: key, Body: body }));
}

async function download(key: string): Promise<Uint8Array> {
  const res = await env.s3.send(new GetObjectCommand({ Bucket: env.config.s3.recordingsBucket, Key: key }));
  return res.Body!.transformToByteArray();
}

/** Average luma of a picture, as FFmpeg's signalstats measures it (16 is video black). */
async function lumaOf(file: string): Promise<number> {
  const { stdout } = await execa("ffmpeg", ["-hide_banner", "-loglevel", "error", "-i", file, "-vf", "signalstats,metadata=mode=print:key=lavfi.signalstats.YAVG:file=-", "-f", "null", "-"]);
  const m = /YAVG=([\d.]+)/.exec(stdout);
  assert.ok(m, `no YAVG for ${file}: ${stdout}`);
  return Number(m[1]);
}

let files = 0;
async function saveLocal(bytes: Uint8Array, ext: string): Promise<string> {
  const path = join(work, `out-${files++}.${ext}`);
  await writeFile(path, bytes);
  return path;
}

/** Asserts the folder's poster is a decodable, non-black JPEG and returns its probe. */
async function assertGoodPoster(folder: string) {
  const keys = thumbnailKeys(folder);
  const jpeg = await download(keys.poster);
  assert.ok(jpeg.length > 1000, `poster is ${jpeg.length} bytes`);
  const file = await saveLocal(jpeg, "jpg");
  const p = await probe(file);
  assert.equal(p.video, "mjpeg");
  assert.ok((p.width ?? 0) > 0 && (p.height ?? 0) > 0);
  const luma = await lumaOf(file);
  assert.ok(luma > 40, `poster is black (YAVG ${luma})`);
  return p;
}

/** Parses the storyboard VTT and checks every cue points inside the sprite and the cues cover the stream in order. */
async function assertGoodStoryboard(folder: string, duration: number) {
  const keys = thumbnailKeys(folder);
  const sprite = await saveLocal(await download(keys.sprite), "jpg");
  const sp = await probe(sprite);
  assert.equal(sp.video, "mjpeg");
  const vtt = new TextDecoder().decode(await download(keys.vtt));
  assert.match(vtt, /^WEBVTT\n\n/);
  const cues = [...vtt.matchAll(/(\d\d):(\d\d):(\d\d)\.(\d{3}) --> (\d\d):(\d\d):(\d\d)\.(\d{3})\n(\S+)#xywh=(\d+),(\d+),(\d+),(\d+)/g)].map((m) => {
    const t = (i: number) => Number(m[i]) * 3600 + Number(m[i + 1]) * 60 + Number(m[i + 2]) + Number(m[i + 3]) / 1000;
    return { start: t(1), end: t(5), url: m[9], x: Number(m[10]), y: Number(m[11]), w: Number(m[12]), h: Number(m[13]) };
  });
  assert.ok(cues.length > 0, "VTT has no cues");
  assert.equal(vtt.split("-->").length - 1, cues.length, "every cue is well formed");
  assert.equal(cues[0]!.start, 0);
  for (const [i, c] of cues.entries()) {
    assert.equal(c.url, "storyboard.jpg");
    assert.ok(c.end > c.start, `cue ${i} is empty`);
    if (i > 0) assert.equal(c.start, cues[i - 1]!.end, `cue ${i} does not follow the previous one`);
    assert.ok(c.x + c.w <= sp.width! && c.y + c.h <= sp.height!, `cue ${i} points outside the ${sp.width}x${sp.height} sprite`);
  }
  assert.ok(Math.abs(cues.at(-1)!.end - duration) < 0.5, `last cue ends at ${cues.at(-1)!.end}, stream is ${duration} s`);
  return { cues, sprite: sp };
}

describe("thumbnail handler on the real stack", () => {
  test("a finished MPEG-TS folder gets a non-black JPEG poster, a sprite and a VTT, and a processing row", async () => {
    const dir = join(work, "ts");
    await makeHls(dir, { seconds: 20, kind: "ts" });
    await uploadDir(dir, "drops/ts show");
    const { ctx, lines } = context();
    assert.equal(await handleThumbnail(event("drops/ts show/index.m3u8"), ctx, {}), "done");
    const p = await assertGoodPoster("drops/ts show");
    assert.equal(p.width, 640);
    const { cues } = await assertGoodStoryboard("drops/ts show", 20);
    assert.equal(cues.length, 10, "one tile per 2 s segment");
    const row = await getRecordingBySourcePrefix(env.db, "drops/ts show");
    assert.ok(row);
    assert.equal(row.status, "processing");
    assert.equal(row.streamId, "drops/ts show");
    assert.equal(row.title, "ts show");
    assert.equal(row.thumbnailPath, "drops/ts show/thumbnail.jpg");
    assert.equal(row.storyboardPath, "drops/ts show/storyboard.jpg");
    assert.equal(row.storyboardVttPath, "drops/ts show/storyboard.vtt");
    const posterLine = lines.find((l) => l.msg === "poster uploaded");
    assert.equal(posterLine?.segment, "drops/ts show/seg001.ts", "the segment starting nearest 10% of 20 s");
  });

  test("a finished fMP4 folder (#EXT-X-MAP) gets a non-black JPEG poster and a valid storyboard", async () => {
    const dir = join(work, "fmp4");
    await makeHls(dir, { seconds: 30, kind: "fmp4", size: "1280x720" });
    await uploadDir(dir, "drops/Émission fmp4");
    const { ctx } = context();
    assert.equal(await handleThumbnail(event("drops/Émission fmp4/index.m3u8"), ctx, {}), "done");
    const p = await assertGoodPoster("drops/Émission fmp4");
    assert.equal(p.width, 1280);
    const { sprite } = await assertGoodStoryboard("drops/Émission fmp4", 30);
    assert.equal(sprite.width, 160 * 10);
    const row = await getRecordingBySourcePrefix(env.db, "drops/Émission fmp4");
    assert.equal(row?.thumbnailPath, "drops/Émission fmp4/thumbnail.jpg");
    const again = context();
    assert.equal(await handleThumbnail(event("drops/Émission fmp4/index.m3u8"), again.ctx, {}), "done");
    assert.ok(again.lines.some((l) => l.msg === "thumbnail already made for this playlist version"), "a non-ASCII folder's version is recognised too");
  });

  test("a playlist without #EXT-X-ENDLIST is ignored and writes nothing", async () => {
    const dir = join(work, "live");
    await makeHls(dir, { seconds: 6, kind: "ts" });
    const live = (await readFile(join(dir, "index.m3u8"), "utf8")).replace("#EXT-X-ENDLIST", "").replace("#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-PLAYLIST-TYPE:EVENT");
    await writeFile(join(dir, "index.m3u8"), live);
    await uploadDir(dir, "live/s1");
    const { ctx } = context();
    assert.equal(await handleThumbnail(event("live/s1/index.m3u8"), ctx, {}), "ignored");
    assert.equal(await getRecordingBySourcePrefix(env.db, "live/s1"), undefined);
    assert.equal(await headObject(env.s3, env.config.s3.recordingsBucket, thumbnailKeys("live/s1").poster), undefined);
  });

  // The runner hands a function only the events its spec accepts (the handler no longer filters them again):
  // segments, other buckets and deletions are asked of thumbnailFunction.accepts; a missing playlist of the handler.
  test("events that are not a finished playlist in the HLS bucket are ignored", async () => {
    const { ctx } = context();
    assert.equal(thumbnailFunction.accepts(event("drops/ts show/seg000.ts"), env.config), false);
    assert.equal(thumbnailFunction.accepts(event("drops/ts show/index.m3u8", env.config.s3.recordingsBucket), env.config), false);
    assert.equal(thumbnailFunction.accepts({ ...event("drops/ts show/index.m3u8"), eventName: "s3:ObjectRemoved:Delete" }, env.config), false);
    assert.equal(thumbnailFunction.accepts(event("drops/ts show/index.m3u8"), env.config), true);
    assert.equal(await handleThumbnail(event("nowhere/index.m3u8"), ctx, {}), "ignored");
  });

  test("a bad playlist fails permanently and leaves the recording's status and error alone", async () => {
    await ensureRecordingFor(env.db, "bad/garbage", "garbage");
    await env.db.update(recordings).set({ status: "ready" }).where(eq(recordings.sourcePrefix, "bad/garbage"));
    await putHls("bad/garbage/index.m3u8", "this is not a playlist\n#EXT-X-ENDLIST\n");
    const { ctx } = context();
    await assert.rejects(handleThumbnail(event("bad/garbage/index.m3u8"), ctx, {}), (err: Error) => err instanceof PermanentError && /not an HLS playlist/.test(err.message));
    const row = await getRecordingBySourcePrefix(env.db, "bad/garbage");
    assert.equal(row?.status, "ready");
    assert.equal(row?.error, null);
    assert.equal(row?.thumbnailPath, null);
  });

  test("a playlist whose segment escapes its folder or is an absolute URL is refused without fetching it", async () => {
    const { ctx } = context();
    const cases = [["dotdot", "../other/seg000.ts"], ["url", "http://example.com/seg.ts"], ["bucket", "/other-bucket/seg.ts"], ["hidden", "..%2F..%2Fother%2Fseg.ts"]] as const;
    for (const [name, uri] of cases) {
      const key = `bad/${name}/index.m3u8`;
      await putHls(key, `#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n${uri}\n#EXT-X-ENDLIST\n`);
      await assert.rejects(handleThumbnail(event(key), ctx, {}), (err: Error) => err instanceof PermanentError && err.message.includes(uri), name);
      assert.equal(await getRecordingBySourcePrefix(env.db, `bad/${name}`), undefined, `${name}: no row for a refused playlist`);
    }
  });

  test("when the segment at 10% is corrupt, the poster comes from a neighbouring segment", async () => {
    const dir = join(work, "corrupt");
    await makeHls(dir, { seconds: 20, kind: "ts" });
    await uploadDir(dir, "broken/corrupt");
    await putHls("broken/corrupt/seg001.ts", new Uint8Array(50_000).fill(7));
    const { ctx, lines } = context();
    assert.equal(await handleThumbnail(event("broken/corrupt/index.m3u8"), ctx, {}), "done");
    await assertGoodPoster("broken/corrupt");
    assert.equal(lines.find((l) => l.msg === "poster uploaded")?.segment, "broken/corrupt/seg002.ts");
    // The storyboard keeps the good segments and leaves the corrupt one out.
    const { cues } = await assertGoodStoryboard("broken/corrupt", 20);
    assert.equal(cues.length, 9);
  });

  test("when the segment at 10% is missing or empty, the poster comes from another segment", async () => {
    const dir = join(work, "missing");
    await makeHls(dir, { seconds: 20, kind: "fmp4" });
    await uploadDir(dir, "broken/missing", (name) => name === "seg001.m4s");
    await putHls("broken/missing/seg002.m4s", new Uint8Array());
    const { ctx, lines } = context();
    assert.equal(await handleThumbnail(event("broken/missing/index.m3u8"), ctx, {}), "done");
    await assertGoodPoster("broken/missing");
    assert.equal(lines.find((l) => l.msg === "poster uploaded")?.segment, "broken/missing/seg003.m4s");
  });

  test("a folder whose segments all fail to decode uploads no poster (never an empty file) and fails permanently", async () => {
    await putHls("broken/all/a.ts", new Uint8Array(10_000).fill(1));
    await putHls("broken/all/b.ts", new Uint8Array(10_000).fill(2));
    await putHls("broken/all/index.m3u8", "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\na.ts\n#EXTINF:2.0,\nb.ts\n#EXT-X-ENDLIST\n");
    const { ctx } = context();
    await assert.rejects(handleThumbnail(event("broken/all/index.m3u8"), ctx, {}), (err: Error) => err instanceof PermanentError && /no video frame could be decoded/.test(err.message));
    assert.equal(await headObject(env.s3, env.config.s3.recordingsBucket, thumbnailKeys("broken/all").poster), undefined);
    const row = await getRecordingBySourcePrefix(env.db, "broken/all");
    assert.equal(row?.status, "processing", "the row convert will fail is not failed by the thumbnail");
    assert.equal(row?.error, null);
  });

  test("a stream that opens on black gets its poster from a later, non-black segment", async () => {
    const dir = join(work, "dark");
    const mp4 = join(work, "dark.mp4");
    // 7 s of black, then the test pattern: the segments at 10% and its neighbours are black.
    await execa("ffmpeg", [
      "-hide_banner", "-loglevel", "error", "-y",
      "-f", "lavfi", "-i", "color=black:size=320x180:rate=25:duration=7",
      "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=13",
      "-filter_complex", "[0:v][1:v]concat=n=2:v=1:a=0", "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0", mp4,
    ]);
    await execa("mkdir", ["-p", dir]);
    await execa("ffmpeg", ["-hide_banner", "-loglevel", "error", "-y", "-i", mp4, "-c", "copy", "-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod", "-hls_segment_filename", `${dir}/seg%03d.ts`, `${dir}/index.m3u8`]);
    await uploadDir(dir, "dark/opening");
    const { ctx } = context();
    assert.equal(await handleThumbnail(event("dark/opening/index.m3u8"), ctx, {}), "done");
    await assertGoodPoster("dark/opening");
  });

  test("a master playlist uses its highest-bandwidth variant and the recording is the master's folder", async () => {
    const low = join(work, "master", "low");
    const high = join(work, "master", "high");
    await makeHls(low, { seconds: 10, kind: "ts", size: "320x180", videoBitrate: "300k" });
    await makeHls(high, { seconds: 10, kind: "ts", size: "640x360", videoBitrate: "1200k" });
    await uploadDir(low, "multi/show/low");
    await uploadDir(high, "multi/show/high");
    await putHls(
      "multi/show/master.m3u8",
      "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=400000,RESOLUTION=320x180\nlow/index.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=1400000,RESOLUTION=640x360\nhigh/index.m3u8\n",
    );
    const { ctx } = context();
    assert.equal(await handleThumbnail(event("multi/show/low/index.m3u8"), ctx, {}), "ignored", "a lower variant's event");
    assert.equal(await handleThumbnail(event("multi/show/high/index.m3u8"), ctx, {}), "done", "the best variant's event");
    const p = await assertGoodPoster("multi/show");
    assert.equal(p.width, 640);
    assert.equal(await handleThumbnail(event("multi/show/master.m3u8"), ctx, {}), "done", "the master's event");
    assert.equal(await getRecordingBySourcePrefix(env.db, "multi/show/high"), undefined, "no recording per variant");
    assert.equal((await getRecordingBySourcePrefix(env.db, "multi/show"))?.thumbnailPath, "multi/show/thumbnail.jpg");
  });

  test("an audio-only folder gets a waveform poster and no storyboard", async () => {
    const dir = join(work, "podcast");
    await makeShape(dir, "audio-only", 8);
    await uploadDir(dir, "audio/podcast");
    const { ctx, lines } = context();
    assert.equal(await handleThumbnail(event("audio/podcast/index.m3u8"), ctx, {}), "done");
    assert.ok(lines.some((l) => l.msg === "waveform poster uploaded (audio only, no storyboard)"));
    const file = await saveLocal(await download(thumbnailKeys("audio/podcast").poster), "jpg");
    const p = await probe(file);
    assert.deepEqual([p.video, p.width, p.height], ["mjpeg", 1280, 360]);
    const luma = await lumaOf(file);
    assert.ok(luma > 15, `the waveform is drawn (YAVG ${luma})`);
    const row = await getRecordingBySourcePrefix(env.db, "audio/podcast");
    assert.equal(row?.thumbnailPath, "audio/podcast/thumbnail.jpg");
    assert.equal(row?.storyboardPath, null);
    assert.equal(row?.storyboardVttPath, null);
    assert.equal(await headObject(env.s3, env.config.s3.recordingsBucket, thumbnailKeys("audio/podcast").sprite), undefined);
  });

  test("an AES-128 folder (key in the folder) gets its poster and storyboard from the decrypted segments", async () => {
    const dir = join(work, "aes");
    await makeShape(dir, "aes", 10);
    await uploadDir(dir, "enc/show");
    const { ctx } = context();
    assert.equal(await handleThumbnail(event("enc/show/index.m3u8"), ctx, {}), "done");
    await assertGoodPoster("enc/show");
    const row = await getRecordingBySourcePrefix(env.db, "enc/show");
    assert.equal(row?.storyboardVttPath, "enc/show/storyboard.vtt");
  });

  test("the same playlist version delivered twice is made once", async () => {
    const { ctx, lines } = context();
    assert.equal(await handleThumbnail(event("drops/ts show/index.m3u8"), ctx, {}), "done");
    assert.ok(lines.some((l) => l.msg === "thumbnail already made for this playlist version"));
    assert.ok(!lines.some((l) => l.msg === "poster uploaded"));
  });

  test("a long stream's storyboard reads at most STORYBOARD_MAX_TILES segments", async () => {
    const dir = join(work, "long");
    await makeHls(dir, { seconds: 40, kind: "ts", size: "320x180" });
    await uploadDir(dir, "long/one");
    const { ctx } = context({ maxTiles: 6 });
    assert.equal(await handleThumbnail(event("long/one/index.m3u8"), ctx, {}), "done");
    const { cues, sprite } = await assertGoodStoryboard("long/one", 40);
    assert.equal(cues.length, 6);
    assert.deepEqual([sprite.width, sprite.height], [6 * 160, 90]);
    const objects = [];
    for await (const o of listObjects(env.s3, env.config.s3.recordingsBucket, "long/one/")) objects.push(o.key);
    assert.deepEqual(objects.sort(), ["long/one/storyboard.jpg", "long/one/storyboard.vtt", "long/one/thumbnail.jpg"]);
  });
});

describe("thumbnail replica", () => {
  test("a replica bound to the thumbnail consumer makes the poster and storyboard when a folder is dropped, and leaves status to convert", async () => {
    const workers = await startWorkers(env, "functions/thumbnail/main.ts", 1, {}, "thumb");
    try {
      const dir = join(work, "replica");
      await makeHls(dir, { seconds: 12, kind: "ts" });
      await uploadDir(dir, "replica/drop");
      const row = await waitFor("the dropped folder's storyboard", async () => {
        const r = await getRecordingBySourcePrefix(env.db, "replica/drop");
        return r?.storyboardVttPath ? r : undefined;
      }, 60_000);
      assert.equal(row.status, "processing");
      assert.equal(row.thumbnailPath, "replica/drop/thumbnail.jpg");
      await assertGoodPoster("replica/drop");
      await assertGoodStoryboard("replica/drop", 12);
    } finally {
      await stopWorkers(workers);
    }
  });
});

describe("segment keys", () => {
  test("keys with . or .. parts or backslashes are refused even when a resolver let them through", () => {
    for (const key of ["a/b/../x.ts", "a/./x.ts", "a/b\\x.ts"]) {
      assert.throws(() => onTimeline([{ key, duration: 2, discontinuity: false }], "a/b/index.m3u8"), (err: Error) => err instanceof PlaylistError && err.message.includes("a/b/index.m3u8"), key);
    }
  });

  test("segments are placed on the timeline by their durations, byte ranges and init sections kept", () => {
    const t = onTimeline(
      [
        { key: "a/s.mp4", duration: 2, discontinuity: false, byterange: { offset: 100, length: 50 }, map: { key: "a/init.mp4" } },
        { key: "a/s.mp4", duration: 2.5, discontinuity: true, byterange: { offset: 150, length: 60 }, map: { key: "a/init.mp4" } },
      ],
      "a/index.m3u8",
    );
    assert.equal(t.duration, 4.5);
    assert.deepEqual(t.segments.map((s) => [s.start, s.range?.offset, s.init?.key]), [[0, 100, "a/init.mp4"], [2, 150, "a/init.mp4"]]);
  });
});

describe("frame choice", () => {
  const segs = (n: number, d = 2): SegmentRef[] => Array.from({ length: n }, (_, i) => ({ key: `s${i}`, start: i * d, duration: d }));

  test("the poster is tried nearest 10% first, then neighbours and later points, the first segment last", () => {
    const c = posterCandidates(segs(100), 200).map((x) => x.index);
    assert.deepEqual(c, [10, 11, 9, 12, 25, 50]);
    assert.deepEqual(posterCandidates(segs(3), 6).map((x) => x.index), [1, 2, 0]);
  });

  test("a one-segment stream is seeked into rather than showing its first frame", () => {
    assert.deepEqual(posterCandidates(segs(1, 10), 10), [{ index: 0, offset: 1 }, { index: 0, offset: 0 }]);
  });

  test("tiles are spread evenly and never exceed the limit, whatever the stream's length", () => {
    assert.equal(pickTileSegments(segs(1800), 3600, 100).length, 100);
    assert.equal(pickTileSegments(segs(30), 60, 100).length, 30);
    const picks = pickTileSegments(segs(1000, 3.6), 3600, 10).map((s) => s.start);
    assert.deepEqual(picks.map((t) => Math.round(t)), [0, 360, 720, 1080, 1440, 1800, 2160, 2520, 2880, 3240]);
  });

  test("the VTT names the sprite by a relative URL with the tile's rectangle", () => {
    const vtt = storyboardVtt("storyboard.jpg", [{ start: 0, end: 3725.5, x: 160, y: 90 }], 160, 90);
    assert.equal(vtt, "WEBVTT\n\n00:00:00.000 --> 01:02:05.500\nstoryboard.jpg#xywh=160,90,160,90\n");
  });
});
