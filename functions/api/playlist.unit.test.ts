import { test } from "node:test";
import assert from "node:assert/strict";
import { HttpError } from "../../lib/http/errors.js";
import { decodeCursor, encodeCursor } from "./cursor.js";
import type { Presign } from "./links.js";
import { resolveKey, rewritePlaylist } from "./playlist.js";
import { rewriteStoryboard } from "./storyboard.js";

// Stands in for S3 signing: these tests are about which keys get signed, not about signatures.
const fakePresign: Presign = Object.assign(async (bucket: string, key: string) => `https://s3.test/${bucket}/${key}?sig=1`, { cached: () => undefined });
const src = { bucket: "hls", key: "cam/s1/index.m3u8", sourcePrefix: "cam/s1" };

test("relative URIs resolve inside the folder, percent-escapes decoded; absolute URLs are left alone", () => {
  assert.equal(resolveKey("seg001.ts", src), "cam/s1/seg001.ts");
  assert.equal(resolveKey("video/seg%20001.ts", src), "cam/s1/video/seg 001.ts");
  assert.equal(resolveKey("https://cdn.example.com/a.ts", src), undefined);
});

test("a URI that climbs out of the folder is refused as a bad source", () => {
  for (const uri of ["../other/seg.ts", "/cam/s2/seg.ts", "../../etc.ts"]) {
    assert.throws(() => resolveKey(uri, src), (err: unknown) => err instanceof HttpError && err.kind === "bad_source", uri);
  }
});

test("a finished event playlist becomes VOD, with init section and segments signed", async () => {
  const text = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-TARGETDURATION:2", "#EXT-X-PLAYLIST-TYPE:EVENT", '#EXT-X-MAP:URI="init.mp4"', "#EXTINF:2.0,", "seg000.m4s", "#EXTINF:2.0,", "seg001.m4s", ""].join("\n");
  const out = await rewritePlaylist(text, src, fakePresign, { vod: true, variantUrl: (k) => k });
  assert.match(out, /#EXT-X-PLAYLIST-TYPE:VOD/);
  assert.match(out, /#EXT-X-ENDLIST/);
  assert.match(out, /#EXT-X-MAP:URI="https:\/\/s3\.test\/hls\/cam\/s1\/init\.mp4\?sig=1"/);
  assert.match(out, /^https:\/\/s3\.test\/hls\/cam\/s1\/seg001\.m4s\?sig=1$/m);
});

test("a live playlist stays open (no ENDLIST added)", async () => {
  const text = ["#EXTM3U", "#EXT-X-TARGETDURATION:4", "#EXT-X-MEDIA-SEQUENCE:0", "#EXTINF:4.0,", "seg000.ts", ""].join("\n");
  const out = await rewritePlaylist(text, src, fakePresign, { vod: false, variantUrl: (k) => k });
  assert.doesNotMatch(out, /#EXT-X-ENDLIST/);
  assert.match(out, /seg000\.ts\?sig=1/);
});

test("a master playlist's variants point back at the API, not at the bucket", async () => {
  const text = ["#EXTM3U", "#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360", "low/index.m3u8", "#EXT-X-STREAM-INF:BANDWIDTH=2500000,RESOLUTION=1280x720", "high/index.m3u8", ""].join("\n");
  const out = await rewritePlaylist(text, src, fakePresign, { vod: true, variantUrl: (k) => `/recordings/x/hls?variant=${encodeURIComponent(k)}` });
  assert.match(out, /^\/recordings\/x\/hls\?variant=cam%2Fs1%2Flow%2Findex\.m3u8$/m);
  assert.match(out, /^\/recordings\/x\/hls\?variant=cam%2Fs1%2Fhigh%2Findex\.m3u8$/m);
  assert.doesNotMatch(out, /sig=1/);
});

test("a text that is not a playlist is a bad source, not a crash", async () => {
  await assert.rejects(rewritePlaylist("<html>nope</html>", src, fakePresign, { vod: true, variantUrl: (k) => k }), (err: unknown) => err instanceof HttpError && err.kind === "bad_source");
});

test("storyboard cues keep their #xywh tile while the sprite becomes a signed link", async () => {
  const vtt = ["WEBVTT", "", "00:00:00.000 --> 00:00:05.000", "storyboard.jpg#xywh=0,0,160,90", "", "00:00:05.000 --> 00:00:10.000", "storyboard.jpg#xywh=160,0,160,90", ""].join("\n");
  const out = await rewriteStoryboard(vtt, { bucket: "rec", key: "cam/s1/storyboard.vtt", sourcePrefix: "cam/s1" }, fakePresign);
  assert.deepEqual(out.split("\n").filter((l) => l.includes("xywh")), ["https://s3.test/rec/cam/s1/storyboard.jpg?sig=1#xywh=0,0,160,90", "https://s3.test/rec/cam/s1/storyboard.jpg?sig=1#xywh=160,0,160,90"]);
  assert.ok(out.startsWith("WEBVTT\n\n00:00:00.000 --> 00:00:05.000\n"));
});

test("a cursor round-trips with microseconds; anything else is a 400 on cursor", () => {
  const c = { createdAt: "2025-01-31T12:00:00.123456Z", id: "0f8fad5b-d9cb-469f-a165-70867728950e" };
  assert.deepEqual(decodeCursor(encodeCursor(c)), c);
  for (const bad of ["", "abc", "12_not-a-uuid", `${encodeCursor(c)}x`, Buffer.from(`${c.createdAt}|${c.id}`).toString("base64url")]) {
    assert.throws(() => decodeCursor(bad), (err: unknown) => err instanceof HttpError && err.field === "cursor");
  }
});
