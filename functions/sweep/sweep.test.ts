import { test } from "node:test";
import assert from "node:assert/strict";
import { eq } from "drizzle-orm";
import { jetstream } from "@nats-io/jetstream";
import { CompleteMultipartUploadCommand, CreateMultipartUploadCommand, UploadPartCommand } from "@aws-sdk/client-s3";
import { putText, headObject, listMultipartUploads } from "../../lib/s3.js";
import { createLogger } from "../../lib/log.js";
import { liveHeadKey } from "../../lib/layout.js";
import { liveAssemblies, liveAssemblyParts, recordings } from "../../db/schema.js";
import { createAssembly, takeAssemblyLease } from "../../db/live-assemblies.js";
import { createTestEnv, type TestEnv } from "../../test/harness.js";
import { decodeStorageEvent, playlistEvents } from "../events/decode.js";
import { sweep } from "./sweep.js";

const FINISHED = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nseg0.ts\n#EXT-X-ENDLIST\n";
const LIVE = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:EVENT\n#EXTINF:2.0,\nseg0.ts\n";

async function pending(env: TestEnv): Promise<string[]> {
  const consumer = await jetstream(env.nc).consumers.get(env.config.nats.stream, env.config.nats.consumers.convert);
  const keys: string[] = [];
  for (;;) {
    const batch = await consumer.fetch({ max_messages: 100, expires: 1500 });
    let n = 0;
    for await (const m of batch) {
      n++;
      keys.push(...playlistEvents(decodeStorageEvent(m.data), env.config.s3.hlsBucket).map((e) => e.key));
      m.ack();
    }
    if (n === 0) return keys;
  }
}

test("the sweep re-publishes finished playlists that convert has not handled, and only those", async (t) => {
  const env = await createTestEnv("sweep");
  t.after(() => env.close());
  const bucket = env.config.s3.hlsBucket;
  const put = (key: string, text: string) => putText(env.s3, bucket, key, text, "application/vnd.apple.mpegurl");
  await put("no-row/index.m3u8", FINISHED);
  await put("thumb-row/index.m3u8", FINISHED);
  await put("converted/index.m3u8", FINISHED);
  await put("changed/index.m3u8", FINISHED);
  await put("still-live/index.m3u8", LIVE);
  await put("broadcast/s1/index.m3u8", FINISHED);
  await pending(env); // the store's own events: this test is about what the sweep adds

  const etag = async (key: string) => (await headObject(env.s3, bucket, key))!.ETag!.replaceAll('"', "");
  // thumbnail made the row before convert saw the playlist; the gateway made a live row.
  await env.db.insert(recordings).values({ sourcePrefix: "thumb-row", streamId: "thumb-row", title: "thumb-row", status: "processing" });
  await env.db.insert(recordings).values({ sourcePrefix: "broadcast/s1", streamId: "broadcast", title: "b", status: "live", sessionId: "s1" });
  await env.db.insert(recordings).values({ sourcePrefix: "converted", streamId: "converted", title: "c", status: "ready", playlistKey: "converted/index.m3u8", playlistEtag: await etag("converted/index.m3u8") });
  await env.db.insert(recordings).values({ sourcePrefix: "changed", streamId: "changed", title: "c", status: "ready", playlistKey: "changed/index.m3u8", playlistEtag: await etag("changed/index.m3u8") });
  // Re-uploaded with other content after it was converted.
  await env.db.update(recordings).set({ updatedAt: new Date(Date.now() - 60_000) }).where(eq(recordings.sourcePrefix, "changed"));
  await put("changed/index.m3u8", FINISHED.replace("seg0.ts", "seg0.ts\n#EXTINF:2.0,\nseg1.ts"));
  await pending(env);

  const log = createLogger("sweep-test", "silent");
  const result = await sweep({ s3: env.s3, db: env.db, nc: env.nc, log, config: env.config });
  const expected = ["broadcast/s1/index.m3u8", "changed/index.m3u8", "no-row/index.m3u8", "thumb-row/index.m3u8"];
  assert.equal(result.playlists, 6);
  assert.deepEqual([...result.published].sort(), expected);
  assert.deepEqual((await pending(env)).sort(), expected, "convert receives exactly the swept playlists");

  // Within the stream's duplicate window the same versions are not delivered twice.
  await sweep({ s3: env.s3, db: env.db, nc: env.nc, log, config: env.config });
  assert.deepEqual(await pending(env), []);
});

test("the sweep removes idle live assemblies and the uploads and head objects nobody owns, and nothing a live replica or a job still holds", async (t) => {
  const env = await createTestEnv("sweep-leftovers");
  t.after(() => env.close());
  const rec = env.config.s3.recordingsBucket;
  const idleMs = env.config.functions.liveAssembly.idleMs;
  const log = createLogger("sweep-test", "silent");
  /** An open upload with one stored part, as a replica leaves it when killed. */
  const openUpload = async (key: string) => {
    const { UploadId } = await env.s3.send(new CreateMultipartUploadCommand({ Bucket: rec, Key: key, ContentType: "video/mp4" }));
    await env.s3.send(new UploadPartCommand({ Bucket: rec, Key: key, UploadId, PartNumber: 2, Body: Buffer.alloc(64 * 1024, 1) }));
    return UploadId!;
  };
  const assembly = async (folder: string, opts: { playlist: boolean }) => {
    const mp4Key = `${folder}/s1.mp4`;
    const uploadId = await openUpload(mp4Key);
    await createAssembly(env.db, { sourcePrefix: folder, playlistKey: `${folder}/index.m3u8`, mp4Key, uploadId });
    await env.db.insert(liveAssemblyParts).values({ sourcePrefix: folder, partNumber: 2, etag: "x", firstSegment: 3, segments: 3, bytes: 65536, tables: Buffer.alloc(8) });
    await putText(env.s3, rec, liveHeadKey(mp4Key), "head", "application/octet-stream");
    if (opts.playlist) await putText(env.s3, env.config.s3.hlsBucket, `${folder}/index.m3u8`, LIVE, "application/vnd.apple.mpegurl");
    return { mp4Key, uploadId };
  };
  const open = async () => {
    const ids: string[] = [];
    for await (const u of listMultipartUploads(env.s3, rec)) ids.push(`${u.key} ${u.uploadId}`);
    return ids;
  };
  const exists = async (key: string) => (await headObject(env.s3, rec, key)) !== undefined;
  const rows = async () => (await env.db.select({ p: liveAssemblies.sourcePrefix }).from(liveAssemblies)).map((r) => r.p).sort();

  // A packager died long ago (its playlist is gone too); another's events were lost but it still writes its playlist.
  const dead = await assembly("dead/s1", { playlist: false });
  // A replica killed between creating its upload and its row: another replica's row stands for the key.
  const loser = await openUpload(dead.mp4Key);
  const lost = await assembly("lost/s1", { playlist: true });
  // A finish completed the upload and its replica died before the head and the row were deleted (its recording is ready).
  const finished = await assembly("finished/s1", { playlist: false });
  const part = await env.s3.send(new UploadPartCommand({ Bucket: rec, Key: finished.mp4Key, UploadId: finished.uploadId, PartNumber: 1, Body: Buffer.alloc(1024, 2) }));
  await env.s3.send(new CompleteMultipartUploadCommand({ Bucket: rec, Key: finished.mp4Key, UploadId: finished.uploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag! }] } }));
  await env.db.update(liveAssemblies).set({ status: "complete" }).where(eq(liveAssemblies.sourcePrefix, "finished/s1"));
  // A replica holds this one right now.
  const held = await assembly("held/s1", { playlist: true });
  assert.ok(await takeAssemblyLease(env.db, "held/s1", "convert-1/test", 120_000));
  await env.db.update(liveAssemblies).set({ updatedAt: new Date(Date.now() - 2 * idleMs) });
  // A replica killed between CreateMultipartUpload and its row; a conversion still running on its folder; a head whose deletion failed.
  const stray = await openUpload("stray/s1/s1.mp4");
  const busy = await openUpload("busy/busy.mp4");
  await env.db.insert(recordings).values({ sourcePrefix: "busy", streamId: "busy", title: "busy", status: "processing", claimedBy: "convert-2/job", claimExpiresAt: new Date(Date.now() + 120_000) });
  await putText(env.s3, rec, liveHeadKey("stray/s1/s1.mp4"), "head", "application/octet-stream");

  const first = await sweep({ s3: env.s3, db: env.db, nc: env.nc, log, config: env.config });
  assert.deepEqual(first.leftovers?.abandoned.sort(), ["dead/s1/index.m3u8", "finished/s1/index.m3u8"], "only the idle assemblies go");
  assert.equal(first.leftovers?.strayUploads, 1, "the killed replica's upload on the idle assembly's key goes with it; uploads younger than the idle age stay");
  assert.equal(first.leftovers?.strayHeads, 0, "heads younger than the idle age stay");
  assert.equal(await exists(liveHeadKey(finished.mp4Key)), false, "the completed assembly's head is deleted");
  assert.equal((await headObject(env.s3, rec, finished.mp4Key))?.ContentLength, 1024, "and its MP4 (the completed upload) is kept");
  assert.deepEqual(await rows(), ["held/s1", "lost/s1"]);
  assert.equal((await env.db.select().from(liveAssemblyParts).where(eq(liveAssemblyParts.sourcePrefix, "dead/s1"))).length, 0, "its parts' state is gone with it");
  assert.equal(await exists(liveHeadKey(dead.mp4Key)), false, "its head object is deleted");
  const afterFirst = await open();
  assert.ok(!afterFirst.some((u) => u.endsWith(dead.uploadId) || u.endsWith(loser)), "its upload and the stray one on its key are aborted (no parts left stored)");
  for (const id of [lost.uploadId, held.uploadId, stray, busy]) assert.ok(afterFirst.some((u) => u.endsWith(id)), `${id} stays open`);

  // Later: everything is older than the idle age; the playlist of lost/s1 was last written long ago.
  const later = () => Date.now() + 2 * idleMs;
  const second = await sweep({ s3: env.s3, db: env.db, nc: env.nc, log, config: env.config, now: later });
  assert.deepEqual(second.leftovers, { abandoned: ["lost/s1/index.m3u8"], strayUploads: 1, strayHeads: 1 });
  assert.deepEqual(await rows(), ["held/s1"], "the assembly a replica holds is never taken from it");
  assert.deepEqual((await open()).sort(), [`busy/busy.mp4 ${busy}`, `held/s1/s1.mp4 ${held.uploadId}`].sort(), "the stray upload is aborted; the held assembly's and the running conversion's stay");
  assert.equal(await exists(liveHeadKey("stray/s1/s1.mp4")), false, "the stray head is deleted");
  assert.equal(await exists(liveHeadKey(held.mp4Key)), true, "the held assembly's head stays");
});
