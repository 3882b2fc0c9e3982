import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { decodeStorageEvent, encodeSweepEvent, playlistEvents, EventDecodeError } from "./decode.js";

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url));
const recordedKey = "talk + q&a/émission x/index.m3u8";

test("MinIO's recorded body decodes to the raw key (query-escaped key, + is a space)", () => {
  const [e] = decodeStorageEvent(fixture("minio-put.json"));
  assert.deepEqual(e, {
    bucket: "hls-streams",
    key: recordedKey,
    eventName: "s3:ObjectCreated:Put",
    size: 23,
    etag: "e8137e421125865a77e5c604882b29fd",
    sequencer: "18EB2924179E835D",
  });
});

test("MinIO's record key alone is query-unescaped when the top-level Key is absent", () => {
  const body = JSON.parse(fixture("minio-put.json").toString());
  delete body.Key;
  const [e] = decodeStorageEvent(JSON.stringify(body));
  assert.equal(e!.key, recordedKey);
});

test("the Versity gateway's recorded body keeps its raw key as is (a + stays a +)", () => {
  const [e] = decodeStorageEvent(fixture("versitygw-put.json"));
  assert.equal(e!.bucket, "hls-streams");
  assert.equal(e!.key, recordedKey);
  assert.equal(e!.etag, "e8137e421125865a77e5c604882b29fd");
  assert.equal(e!.eventName, "s3:ObjectCreated:Put");
});

test("a raw key with % and + is not percent-decoded for the gateway", () => {
  const body = JSON.parse(fixture("versitygw-put.json").toString());
  body.Records[0].s3.object.key = "a%20b+c/100%/index.m3u8";
  assert.equal(decodeStorageEvent(JSON.stringify(body))[0]!.key, "a%20b+c/100%/index.m3u8");
});

test("the sweep's own events round-trip their raw key", () => {
  const key = "x + y/50% & more/ünïcode.m3u8";
  const [e] = decodeStorageEvent(encodeSweepEvent({ bucket: "hls-streams", key, size: 9, etag: "abc" }));
  assert.equal(e!.key, key);
  assert.equal(e!.eventName, "s3:ObjectCreated:Put");
});

test("S3's test event yields no events", () => {
  assert.deepEqual(decodeStorageEvent(JSON.stringify({ Service: "S3", Event: "s3:TestEvent", Bucket: "Test-Bucket" })), []);
});

test("a body that is not JSON, or not an S3 event, fails with a decode error", () => {
  assert.throws(() => decodeStorageEvent("not json"), EventDecodeError);
  assert.throws(() => decodeStorageEvent(JSON.stringify({ hello: 1 })), /not an S3 event/);
});

test("only created playlists in the HLS bucket are work", () => {
  const ev = (bucket: string, key: string, eventName = "s3:ObjectCreated:Put") => ({ bucket, key, eventName, size: 1, etag: "", sequencer: "" });
  const kept = playlistEvents(
    [ev("hls-streams", "a/index.m3u8"), ev("hls-streams", "a/seg1.ts"), ev("recordings", "a/index.m3u8"), ev("hls-streams", "a/index.m3u8", "s3:ObjectRemoved:Delete"), ev("hls-streams", "b/INDEX.M3U8", "s3:ObjectCreated:CompleteMultipartUpload")],
    "hls-streams",
  );
  assert.deepEqual(kept.map((e) => e.key), ["a/index.m3u8", "b/INDEX.M3U8"]);
});
