import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { cp, mkdir, mkdtemp, readFile, readdir, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import HLS from "hls-parser";
import { execa } from "execa";
import { eq, like } from "drizzle-orm";
import { consumerIdle, createTestEnv, waitFor, type TestEnv } from "../../test/harness.js";
import { makeHls, probe } from "../../test/media.js";
import { startApi } from "../../test/api.js";
import { startWorkers, stopWorkers, waitForRecording, type Worker } from "../../test/workers.js";
import { listObjects, presignGet } from "../../lib/s3.js";
import { recordings } from "../../db/schema.js";
import { listFolder, uploadFiles, type LocalFile } from "../drop/upload.js";
import type { MediaPlaylist } from "../../lib/hls/index.js";

// Two convert replicas on the real stack convert folders uploaded the way users and the gateway do.

let env: TestEnv;
let workers: Worker[];
let media: string;

before(async () => {
  env = await createTestEnv("convert", { SEGMENT_WAIT_SECONDS: "4" });
  media = await mkdtemp(join(tmpdir(), "convert-test-"));
  await Promise.all([
    makeHls(join(media, "ts"), { seconds: 6, size: "320x180" }),
    makeHls(join(media, "fmp4"), { seconds: 6, size: "320x180", kind: "fmp4" }),
    makeHls(join(media, "part-a"), { seconds: 4, size: "320x180" }),
    makeHls(join(media, "part-b"), { seconds: 4, size: "320x180" }),
    makeHls(join(media, "low"), { seconds: 6, size: "320x180", videoBitrate: "200k" }),
    makeHls(join(media, "high"), { seconds: 6, size: "640x360", videoBitrate: "600k" }),
  ]);
  workers = await startWorkers(env, "functions/convert/main.ts", 2);
});

after(async () => {
  await stopWorkers(workers ?? []);
  await env.close();
  await rm(media, { recursive: true, force: true });
});

const hls = () => env.config.s3.hlsBucket;

async function upload(localDir: string, prefix: string, skip?: (f: LocalFile) => boolean) {
  await uploadFiles(env.s3, hls(), prefix, await listFolder(localDir), { skip });
}

async function put(key: string, body: string | Uint8Array) {
  await env.s3.send(new PutObjectCommand({ Bucket: hls(), Key: key, Body: body }));
}

function playlistSeconds(text: string): number {
  return (HLS.parse(text) as MediaPlaylist).segments.reduce((s, seg) => s + seg.duration, 0);
}

async function mp4Keys(folder: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of listObjects(env.s3, env.config.s3.recordingsBucket, `${folder}/`)) if (o.key.endsWith(".mp4")) keys.push(o.key);
  return keys;
}

/** Every packet of every stream (timestamps, size, flags), as ffprobe lists them: equal lists mean equal content. */
async function packets(input: string): Promise<string> {
  const { stdout } = await execa("ffprobe", ["-v", "error", "-show_entries", "packet=stream_index,pts,dts,duration,size,flags", "-of", "csv=p=0", input]);
  return stdout;
}

async function rowsUnder(folder: string) {
  return env.db.select().from(recordings).where(like(recordings.sourcePrefix, `${folder}%`));
}

/** The folder's one recording is ready, as one MP4 with audio and video whose duration matches the playlist. */
async function assertConverted(folder: string, seconds: number) {
  const r = await waitForRecording(env, folder);
  assert.equal(r.status, "ready", `expected ready, got ${r.status}: ${r.error}`);
  assert.deepEqual(await mp4Keys(folder), [r.filePath]);
  const p = await probe(await presignGet(env.config.s3, env.config.s3.recordingsBucket, r.filePath!));
  assert.ok(Math.abs(p.duration - seconds) <= 0.5, `MP4 lasts ${p.duration} s, the playlist ${seconds} s`);
  assert.equal(p.video, "h264");
  assert.equal(p.audio, "aac");
  assert.ok(Math.abs(r.durationSeconds! - p.duration) < 0.01);
  assert.ok(r.fileSizeBytes! > 0);
  assert.equal(r.progress, 1);
  assert.equal(r.claimedBy, null);
  assert.equal((await rowsUnder(folder)).length, 1, "one row for the folder");
  // Faststart: the index (moov) comes right after ftyp, before the media, so playback starts at once.
  const head = await env.s3.send(new GetObjectCommand({ Bucket: env.config.s3.recordingsBucket, Key: r.filePath!, Range: "bytes=0-63" }));
  const bytes = Buffer.from(await head.Body!.transformToByteArray());
  assert.equal(bytes.toString("latin1", 4, 8), "ftyp");
  assert.equal(bytes.toString("latin1", bytes.readUInt32BE(0) + 4, bytes.readUInt32BE(0) + 8), "moov");
  return r;
}

test("an MPEG-TS folder becomes one ready MP4 named after its folder, with size, resolution and codecs recorded", async () => {
  await upload(join(media, "ts"), "drops/ts-folder");
  const r = await assertConverted("drops/ts-folder", playlistSeconds(await readFile(join(media, "ts/index.m3u8"), "utf8")));
  assert.equal(r.filePath, "drops/ts-folder/ts-folder.mp4");
  assert.equal(r.streamId, "drops/ts-folder");
  assert.equal(r.title, "ts-folder");
  assert.deepEqual([r.width, r.height, r.videoCodec, r.audioCodec], [320, 180, "h264", "aac"]);
  assert.equal(r.attempts, 1);
});

test("an MPEG-TS folder's MP4 holds exactly the packets FFmpeg reads from the folder itself", async () => {
  await upload(join(media, "ts"), "drops/same-packets");
  const r = await assertConverted("drops/same-packets", playlistSeconds(await readFile(join(media, "ts/index.m3u8"), "utf8")));
  // The same folder read from local disk by FFmpeg's HLS reader, remuxed by a plain stream copy.
  const reference = join(media, "reference.mp4");
  await execa("ffmpeg", ["-hide_banner", "-loglevel", "error", "-y", "-i", join(media, "ts/index.m3u8"), "-map", "0:v:0", "-map", "0:a:0", "-c", "copy", reference]);
  const url = await presignGet(env.config.s3, env.config.s3.recordingsBucket, r.filePath!);
  const made = await packets(url);
  assert.ok(made.split("\n").length > 200, "the MP4 has packets");
  assert.equal(made, await packets(reference));
});

test("a folder uploaded alone (nothing beside it a master could name) is converted at once, without the wait for a master", async () => {
  await upload(join(media, "ts"), "alone/talk");
  await assertConverted("alone/talk", playlistSeconds(await readFile(join(media, "ts/index.m3u8"), "utf8")));
  const waited = workers.flatMap((w) => w.output).filter((l) => l.includes("alone/talk/index.m3u8 has no master playlist naming it yet"));
  assert.deepEqual(waited, []);
  // A folder with a sibling (another drop, or a master's other variant) still waits for a master.
  await upload(join(media, "ts"), "drops/with-siblings");
  await assertConverted("drops/with-siblings", playlistSeconds(await readFile(join(media, "ts/index.m3u8"), "utf8")));
  assert.ok(workers.flatMap((w) => w.output).some((l) => l.includes("drops/with-siblings/index.m3u8 has no master playlist naming it yet")), "the folder beside others waited for a master");
});

test("an fMP4 folder (#EXT-X-MAP init section) becomes one ready MP4", async () => {
  await upload(join(media, "fmp4"), "drops/fmp4-folder");
  await assertConverted("drops/fmp4-folder", playlistSeconds(await readFile(join(media, "fmp4/index.m3u8"), "utf8")));
});

test("a folder with a discontinuity (timestamps restart) gives an MP4 with a continuous timeline as long as the playlist", async () => {
  const dir = join(media, "disc");
  await mkdir(dir, { recursive: true });
  const lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:2", "#EXT-X-PLAYLIST-TYPE:VOD"];
  for (const part of ["a", "b"]) {
    const pl = HLS.parse(await readFile(join(media, `part-${part}/index.m3u8`), "utf8")) as MediaPlaylist;
    if (part === "b") lines.push("#EXT-X-DISCONTINUITY");
    for (const s of pl.segments) {
      await cp(join(media, `part-${part}`, s.uri), join(dir, `${part}-${s.uri}`));
      lines.push(`#EXTINF:${s.duration},`, `${part}-${s.uri}`);
    }
  }
  lines.push("#EXT-X-ENDLIST", "");
  await writeFile(join(dir, "index.m3u8"), lines.join("\n"));
  await upload(dir, "drops/discontinuity");
  await assertConverted("drops/discontinuity", playlistSeconds(lines.join("\n")));
});

test("a dropped folder whose playlist marks a segment #EXT-X-GAP converts what exists, closes the hole, and warns naming the missing seconds", async () => {
  const dir = join(media, "gap");
  await cp(join(media, "ts"), dir, { recursive: true });
  // The segment the playlist marks missing is not uploaded at all: convert must neither wait for it nor fetch it.
  await rm(join(dir, "seg001.ts"));
  const pl = HLS.parse(await readFile(join(dir, "index.m3u8"), "utf8")) as MediaPlaylist;
  assert.equal(pl.segments[1]!.uri, "seg001.ts");
  pl.segments[1]!.gap = true;
  const text = HLS.stringify(pl);
  assert.match(text, /#EXT-X-GAP\n#EXTINF:[\d.]+,?\nseg001\.ts/);
  await writeFile(join(dir, "index.m3u8"), text);
  await upload(dir, "drops/gap");
  const listed = playlistSeconds(text);
  const missing = pl.segments[1]!.duration;
  const start = pl.segments[0]!.duration;
  await assertConverted("drops/gap", listed - missing);
  const [r] = await rowsUnder("drops/gap");
  assert.equal(r!.warnings?.length, 1, `one warning, and no damage found in what was read: ${JSON.stringify(r!.warnings)}`);
  const w = r!.warnings![0]!;
  assert.equal(w.kind, "gap");
  assert.deepEqual(w.at, [{ segment: "seg001.ts", startSeconds: Math.round(start * 10) / 10, missingSeconds: Math.round(missing * 10) / 10 }]);
  assert.match(w.message, new RegExp(`^seconds ${start.toFixed(1)}–${(start + missing).toFixed(1)} missing: the source playlist marks them as a gap \\(#EXT-X-GAP\\)`));
  // The API shows it as it shows other damage (the page renders every warning's message).
  const api = await startApi(env);
  try {
    const detail = (await (await fetch(`${api.url}/recordings/${r!.id}`)).json()) as { warnings: { kind: string; message: string; at: unknown[] }[] };
    assert.deepEqual(detail.warnings, r!.warnings);
  } finally {
    await api.close();
  }
});

test("an fMP4 folder with an #EXT-X-GAP segment keeps its timeline (FFmpeg keeps fMP4 timestamps) and its warning says so", async () => {
  const dir = join(media, "gap-fmp4");
  await cp(join(media, "fmp4"), dir, { recursive: true });
  await rm(join(dir, "seg001.m4s"));
  const pl = HLS.parse(await readFile(join(dir, "index.m3u8"), "utf8")) as MediaPlaylist;
  assert.equal(pl.segments[1]!.uri, "seg001.m4s");
  pl.segments[1]!.gap = true;
  const text = HLS.stringify(pl);
  await writeFile(join(dir, "index.m3u8"), text);
  await upload(dir, "drops/gap-fmp4");
  await assertConverted("drops/gap-fmp4", playlistSeconds(text));
  const [r] = await rowsUnder("drops/gap-fmp4");
  assert.deepEqual(r!.warnings?.map((w) => w.kind), ["gap"], JSON.stringify(r!.warnings));
  assert.match(r!.warnings![0]!.message, /^seconds 2\.0–4\.0 missing: .*The MP4 keeps the source's timeline/);
});

test("a master playlist with two variants gives one recording for its folder, from the highest-bandwidth variant", async () => {
  const dir = join(media, "master");
  await cp(join(media, "low"), join(dir, "low"), { recursive: true });
  await cp(join(media, "high"), join(dir, "high"), { recursive: true });
  await writeFile(
    join(dir, "master.m3u8"),
    "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=400000,RESOLUTION=320x180\nlow/index.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=900000,RESOLUTION=640x360\nhigh/index.m3u8\n",
  );
  // Variant playlists land before the master (the uploader's order): their events must still map to the master's folder.
  await upload(dir, "drops/master");
  const r = await assertConverted("drops/master", playlistSeconds(await readFile(join(media, "high/index.m3u8"), "utf8")));
  assert.deepEqual([r.width, r.height], [640, 360]);
  assert.equal(r.playlistKey, "drops/master/high/index.m3u8");
  assert.equal(r.filePath, "drops/master/master.mp4");
});

test("variants converted before their master landed give way to one recording for the master's folder", async () => {
  const dir = join(media, "master-late");
  await cp(join(media, "low"), join(dir, "low"), { recursive: true });
  await cp(join(media, "high"), join(dir, "high"), { recursive: true });
  // Uploaded with no master (as `mc cp -r` may order them): each variant is converted as a folder of its own...
  await upload(dir, "drops/master-late");
  await waitForRecording(env, "drops/master-late/low");
  await waitForRecording(env, "drops/master-late/high");
  // ...until the master lands: then the master's folder has the one recording.
  await put("drops/master-late/master.m3u8", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=400000\nlow/index.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=900000\nhigh/index.m3u8\n");
  const r = await waitForRecording(env, "drops/master-late");
  assert.equal(r.status, "ready", r.error ?? "");
  await waitFor("the variants' own recordings to be removed", async () => (await rowsUnder("drops/master-late")).length === 1);
  assert.deepEqual(await mp4Keys("drops/master-late"), ["drops/master-late/master-late.mp4"]);
  assert.deepEqual([r.width, r.height], [640, 360]);
});

test("folder and segment names with spaces, + and non-ASCII letters convert", async () => {
  const dir = join(media, "names");
  await cp(join(media, "ts"), dir, { recursive: true });
  let text = await readFile(join(dir, "index.m3u8"), "utf8");
  for (const f of (await readdir(dir)).filter((f) => f.endsWith(".ts"))) {
    const renamed = f.replace("seg", "partie été #");
    await rename(join(dir, f), join(dir, renamed));
    // One raw name, the others percent-encoded: playlists in the wild use both.
    text = text.replace(f, f.endsWith("000.ts") ? renamed.replace("#", "%23") : encodeURIComponent(renamed));
  }
  await writeFile(join(dir, "index.m3u8"), text);
  await upload(dir, "talk + q&a/émission x");
  const r = await assertConverted("talk + q&a/émission x", playlistSeconds(text));
  assert.equal(r.filePath, "talk + q&a/émission x/émission x.mp4");
});

test("a playlist uploaded before its segments is converted once the segments land", async () => {
  const playlist = await readFile(join(media, "ts/index.m3u8"));
  await put("drops/playlist-first/index.m3u8", playlist);
  await waitFor("the folder to be claimed and waiting", async () => (await rowsUnder("drops/playlist-first"))[0]?.status === "processing");
  await upload(join(media, "ts"), "drops/playlist-first", (f) => f.rel.endsWith(".m3u8"));
  const r = await assertConverted("drops/playlist-first", playlistSeconds(playlist.toString()));
  assert.equal(r.attempts, 1);
});

test("a segment that never arrives fails the recording after SEGMENT_WAIT_SECONDS, naming the segment", async () => {
  await upload(join(media, "ts"), "drops/missing", (f) => f.rel === "seg001.ts");
  const r = await waitForRecording(env, "drops/missing");
  assert.equal(r.status, "failed");
  assert.match(r.error!, /1 segment\(s\) named in drops\/missing\/index\.m3u8 never arrived .*: seg001\.ts\. Upload them, then upload the playlist again/);
  assert.deepEqual(await mp4Keys("drops/missing"), []);
});

test("the same finished playlist PUT five times is converted once: one MP4, one row, one claim", async () => {
  await upload(join(media, "ts"), "drops/five-puts", (f) => f.rel.endsWith(".m3u8"));
  const playlist = await readFile(join(media, "ts/index.m3u8"));
  for (let i = 0; i < 5; i++) await put("drops/five-puts/index.m3u8", playlist);
  const r = await assertConverted("drops/five-puts", playlistSeconds(playlist.toString()));
  assert.equal(r.attempts, 1);
  // Late duplicates still arrive after ready: once the consumer has handled every one, the recording is as it was.
  await consumerIdle(env, env.config.nats.consumers.convert);
  const [again] = await rowsUnder("drops/five-puts");
  assert.deepEqual([again!.status, again!.attempts, again!.updatedAt.getTime()], ["ready", 1, r.updatedAt.getTime()]);
});

test("a changed playlist in a converted folder is converted again, replacing the MP4", async () => {
  await upload(join(media, "ts"), "drops/changed");
  const first = await assertConverted("drops/changed", 6);
  const shorter = (await readFile(join(media, "ts/index.m3u8"), "utf8")).replace(/#EXTINF:[\d.]+,\nseg002\.ts\n/, "");
  await put("drops/changed/index.m3u8", shorter);
  const second = await waitFor("the new version to be ready", async () => {
    const [r] = await rowsUnder("drops/changed");
    return r && r.status === "ready" && r.playlistEtag !== first.playlistEtag ? r : undefined;
  }, 60_000);
  assert.equal(second.id, first.id);
  assert.ok(Math.abs(second.durationSeconds! - playlistSeconds(shorter)) <= 0.5);
  assert.deepEqual(await mp4Keys("drops/changed"), [first.filePath]);
});

test("a broadcast's live row (made by the gateway) is taken over: one row keeps the stream's name and title", async () => {
  await env.db.insert(recordings).values({ streamId: "cam1", sessionId: "s42", title: "Morning show", sourcePrefix: "cam1/s42", status: "live" });
  await upload(join(media, "ts"), "cam1/s42");
  const r = await assertConverted("cam1/s42", 6);
  assert.deepEqual([r.streamId, r.sessionId, r.title, r.filePath], ["cam1", "s42", "Morning show", "cam1/s42/s42.mp4"]);
});

test("bad inputs each fail with a clear error while a good folder next to them converts", async () => {
  const ts = await readFile(join(media, "ts/index.m3u8"), "utf8");
  const seg = await readFile(join(media, "ts/seg000.ts"));
  const bad: Record<string, RegExp> = {};

  await put("bad/not-a-playlist/index.m3u8", "this is a shopping list, not a playlist\n");
  bad["bad/not-a-playlist"] = /bad\/not-a-playlist\/index\.m3u8 is not an HLS playlist \(it does not start with #EXTM3U\): upload a valid \.m3u8 file/;

  await put("bad/other/seg000.ts", seg);
  await put("bad/dotdot/index.m3u8", ts.replace("seg000.ts", "../other/seg000.ts"));
  bad["bad/dotdot"] = /references "\.\.\/other\/seg000\.ts", which resolves to "bad\/other\/seg000\.ts" outside the folder "bad\/dotdot": segments must be relative paths/;

  await put("bad/http/index.m3u8", ts.replace("seg000.ts", "http://example.com/seg000.ts"));
  bad["bad/http"] = /references "http:\/\/example\.com\/seg000\.ts", an absolute URL: segments must be relative paths/;

  await upload(join(media, "ts"), "bad/empty-segment", (f) => f.rel === "seg001.ts" || f.rel.endsWith(".m3u8"));
  await put("bad/empty-segment/seg001.ts", new Uint8Array(0));
  await put("bad/empty-segment/index.m3u8", ts);
  bad["bad/empty-segment"] = /1 segment\(s\) are empty \(0 bytes\): seg001\.ts\. Upload them again/;

  // Nothing playable at all: every segment is noise.
  await put("bad/all-corrupt/seg000.ts", new Uint8Array(Array.from({ length: 150_000 }, (_, i) => (i * 7919) % 251)));
  await put("bad/all-corrupt/index.m3u8", "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\nseg000.ts\n#EXT-X-ENDLIST\n");
  bad["bad/all-corrupt"] = /the first segment is not audio or video FFmpeg can read|nothing playable could be made/;

  await put("bad/no-segments/index.m3u8", "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-ENDLIST\n");
  bad["bad/no-segments"] = /lists no segments: there is nothing to convert/;

  await upload(join(media, "ts"), "bad/good-neighbour");

  for (const [folder, error] of Object.entries(bad)) {
    const r = await waitForRecording(env, folder);
    assert.equal(r.status, "failed", `${folder} should fail`);
    assert.match(r.error!, error, `${folder}: ${r.error}`);
    assert.deepEqual(await mp4Keys(folder), []);
  }
  await assertConverted("bad/good-neighbour", 6);
  // The segment the ../ playlist pointed at is not a recording of its own, and was not converted.
  assert.equal((await env.db.select().from(recordings).where(eq(recordings.sourcePrefix, "bad/other"))).length, 0);
  assert.deepEqual(await mp4Keys("bad/other"), []);
});

test("a live playlist (no #EXT-X-ENDLIST yet) is acked without creating a recording", async () => {
  const live = (await readFile(join(media, "ts/index.m3u8"), "utf8")).replace("#EXT-X-ENDLIST\n", "").replace("#EXT-X-PLAYLIST-TYPE:VOD\n", "");
  await upload(join(media, "ts"), "live/in-progress", (f) => f.rel.endsWith(".m3u8"));
  await put("live/in-progress/index.m3u8", live);
  await put("live/marker/index.m3u8", "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-ENDLIST\n");
  // Events are handled in order per replica; once the marker's failure is recorded the live event was handled too.
  await waitForRecording(env, "live/marker");
  await waitFor("both replicas to have handled everything", async () => (await rowsUnder("live/in-progress")).length === 0);
  assert.equal((await rowsUnder("live/in-progress")).length, 0);
});
