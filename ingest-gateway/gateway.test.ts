import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { writeFile, mkdir } from "node:fs/promises";
import { eq } from "drizzle-orm";
import { createTestEnv, waitFor, type TestEnv } from "../test/harness.js";
import { probe } from "../test/media.js";
import { getText } from "../lib/s3.js";
import { recordings, streams } from "../db/schema.js";
import { startGatewayProcess, type GatewayProcess } from "../test/gateway/process.js";
import { publish, srtUrl } from "../test/gateway/caller.js";
import { keys, missingSegments, readPlaylist, sessionFolders } from "../test/gateway/store.js";

let env: TestEnv;
let gw: GatewayProcess;
let bucket: string;

before(async () => {
  env = await createTestEnv("gateway");
  bucket = env.config.s3.hlsBucket;
  gw = await startGatewayProcess({ ...env.env, LOG_LEVEL: "info", RECONNECT_GRACE_SECONDS: "6" });
});

after(async () => {
  await gw?.stop();
  await env?.close();
});

async function createStream(name: string): Promise<{ secret: string; server: string }> {
  const r = await gw.api("POST", "/streams", { name });
  assert.equal(r.status, 201, JSON.stringify(r.json));
  return { secret: r.json.secret, server: r.json.obs.server };
}

async function endedPlaylist(stream: string, timeoutMs = 30_000) {
  return waitFor(`an ENDLIST playlist for ${stream}`, async () => {
    for (const folder of await sessionFolders(env.s3, bucket, stream)) {
      const p = await readPlaylist(env.s3, bucket, `${folder}/index.m3u8`);
      if (p?.ended) return { folder, playlist: p };
    }
    return undefined;
  }, timeoutMs, 50);
}

test("a 12 s publish grows the live playlist in the bucket, each listed segment exists, and ENDLIST lands within 2 s of the caller stopping", async () => {
  const { server } = await createStream("cam12");
  const caller = publish(server, { seconds: 12 });
  let running = true;
  void caller.then(() => (running = false));

  const seen = new Set<number>();
  let folder = "";
  while (running) {
    const [f] = await sessionFolders(env.s3, bucket, "cam12");
    if (f) {
      folder = f;
      const p = await readPlaylist(env.s3, bucket, `${f}/index.m3u8`);
      if (p && !p.ended && p.segments.length > 0) {
        assert.deepEqual(await missingSegments(env.s3, bucket, f, p), [], "the live playlist names only stored segments");
        seen.add(p.segments.length);
      }
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const r = await caller;
  const stoppedAt = Date.now();
  assert.equal(r.exitCode, 0, r.stderr);
  assert.ok(seen.size >= 2, `the live playlist grew during the stream (segment counts seen: ${[...seen].join(", ")})`);

  const { playlist } = await endedPlaylist("cam12", 2000);
  const afterStopMs = Date.now() - stoppedAt;
  assert.ok(afterStopMs <= 2000, `ENDLIST after ${afterStopMs} ms`);
  assert.equal(playlist.segments.length, 3);
  const total = playlist.segments.reduce((s, x) => s + x.duration, 0);
  assert.ok(Math.abs(total - 12) <= 1, `playlist lasts ${total} s`);
  assert.ok(playlist.segments.every((s) => !s.discontinuity));
  assert.deepEqual(await missingSegments(env.s3, bucket, folder, playlist), []);
  assert.match(folder, /^cam12\/\d{8}T\d{6}Z-[0-9a-f]{4}$/);

  const [rec] = await env.db.select().from(recordings).where(eq(recordings.sourcePrefix, folder));
  assert.ok(rec, "the recording row exists");
  assert.equal(rec.status, "live", "the row stays live until convert takes it over");
  assert.equal(rec.streamId, "cam12");
  assert.equal(rec.sessionId, folder.split("/")[1]);
  const [row] = await env.db.select().from(streams).where(eq(streams.name, "cam12"));
  assert.equal(row!.state, "idle");
  assert.equal(row!.currentSession, null);
});

test("a wrong passphrase, a missing one and an unknown stream are refused at the handshake, say why, and leave nothing in the bucket", async () => {
  await createStream("guarded");
  const wrong = await publish(srtUrl(gw.srtPort, "#!::r=guarded,m=publish", "not-the-secret-123"), { seconds: 3 });
  const none = await publish(srtUrl(gw.srtPort, "#!::r=guarded,m=publish"), { seconds: 3 });
  const unknown = await publish(srtUrl(gw.srtPort, "publish:nobody", "whatever-secret-1"), { seconds: 3 });
  for (const r of [wrong, none, unknown]) assert.notEqual(r.exitCode, 0, "the caller was refused");
  assert.deepEqual(await keys(env.s3, bucket, "guarded/"), []);
  assert.deepEqual(await keys(env.s3, bucket, "nobody/"), []);

  const list = await (await fetch(`${gw.http}/streams`)).json();
  const reasons = list.refusals.map((r: { stream: string; reason: string }) => `${r.stream}:${r.reason}`);
  assert.ok(reasons.includes("guarded:wrong-passphrase"), reasons.join(","));
  assert.ok(reasons.includes("guarded:no-passphrase"), reasons.join(","));
  assert.ok(reasons.includes("nobody:unknown-stream"), reasons.join(","));
  const guarded = list.streams.find((s: { name: string }) => s.name === "guarded");
  assert.equal(guarded.state, "idle");
  assert.ok(guarded.lastRefusal.message.includes("passphrase"));
  assert.ok(gw.logs.some((l) => l.includes("wrong passphrase for stream 'guarded'")), "the log says why");
});

test("two streams published at once land in separate session folders", async () => {
  const a = await createStream("duo-a");
  const b = await createStream("duo-b");
  const [ra, rb] = await Promise.all([publish(a.server, { seconds: 8 }), publish(b.server, { seconds: 8 })]);
  assert.equal(ra.exitCode, 0, ra.stderr);
  assert.equal(rb.exitCode, 0, rb.stderr);
  const pa = await endedPlaylist("duo-a");
  const pb = await endedPlaylist("duo-b");
  assert.notEqual(pa.folder, pb.folder);
  assert.ok(pa.folder.startsWith("duo-a/") && pb.folder.startsWith("duo-b/"));
  for (const p of [pa, pb]) {
    assert.ok(p.playlist.segments.length >= 2);
    assert.deepEqual(await missingSegments(env.s3, bucket, p.folder, p.playlist), []);
  }
});

test("MPEG-2 video with MP2 audio is transcoded to H.264/AAC", async () => {
  const { server } = await createStream("mpeg2cam");
  const r = await publish(server, { seconds: 9, codec: "mpeg2" });
  assert.equal(r.exitCode, 0, r.stderr);
  const { folder, playlist } = await endedPlaylist("mpeg2cam");
  assert.ok(playlist.segments.length >= 2);
  const dir = `/tmp/vod-test-${env.id}/probe`;
  await mkdir(dir, { recursive: true });
  const { GetObjectCommand } = await import("@aws-sdk/client-s3");
  const obj = await env.s3.send(new GetObjectCommand({ Bucket: bucket, Key: `${folder}/${playlist.segments[0]!.uri}` }));
  await writeFile(`${dir}/seg.ts`, await obj.Body!.transformToByteArray());
  const media = await probe(`${dir}/seg.ts`);
  assert.equal(media.video, "h264");
  assert.equal(media.audio, "aac");
  assert.ok(gw.logs.some((l) => l.includes('"profile":"transcode"') && l.includes("mpeg2video")), "the profile choice is logged with its reason");
});

test("the control API needs the token for writes, answers OBS settings, stops a broadcast cleanly and deletes a stream", async () => {
  const anon = await fetch(`${gw.http}/streams`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "nope" }) });
  assert.equal(anon.status, 401);
  assert.match((await anon.json()).error.message, /Bearer/);
  assert.equal((await gw.api("POST", "/streams", { name: "bad name!" })).status, 400);

  const created = await gw.api("POST", "/streams", { name: "studio", title: "Studio A" });
  assert.equal(created.status, 201);
  assert.ok(created.json.secret.length >= 10);
  assert.equal(created.json.obs.service, "Custom");
  assert.equal(created.json.obs.server, `srt://127.0.0.1:${gw.srtPort}?streamid=#!::r=studio,m=publish&passphrase=${created.json.secret}`);
  assert.equal((await gw.api("POST", "/streams", { name: "studio" })).status, 409);
  const one = await gw.api("GET", "/streams/studio");
  assert.equal(one.json.secret, created.json.secret);

  const caller = publish(created.json.obs.server, { seconds: 60 });
  await waitFor("a first stored segment", async () => {
    const [f] = await sessionFolders(env.s3, bucket, "studio");
    return f && (await readPlaylist(env.s3, bucket, `${f}/index.m3u8`))?.segments.length;
  }, 30_000);
  const live = await (await fetch(`${gw.http}/streams`)).json();
  const entry = live.streams.find((s: { name: string }) => s.name === "studio");
  assert.equal(entry.state, "live");
  assert.equal(entry.live.profile, "copy");
  assert.ok(entry.live.session && entry.live.lastSegmentAt);

  const stop = await gw.api("POST", "/streams/studio/stop");
  assert.equal(stop.status, 200);
  const [folder] = await sessionFolders(env.s3, bucket, "studio");
  const final = await readPlaylist(env.s3, bucket, `${folder}/index.m3u8`);
  assert.ok(final?.ended, "the final playlist is stored when stop answers");
  assert.ok(stop.json.refusedUntil);
  await caller;
  assert.equal((await gw.api("POST", "/streams/studio/stop")).status, 409);
  const reconnect = await publish(created.json.obs.server, { seconds: 2 });
  assert.notEqual(reconnect.exitCode, 0, "the encoder's automatic reconnect after a stop is refused");
  const held = (await (await fetch(`${gw.http}/streams`)).json()).streams.find((s: { name: string }) => s.name === "studio");
  assert.equal(held.lastRefusal.reason, "held");

  assert.equal((await gw.api("DELETE", "/streams/studio")).status, 200);
  const after = await publish(created.json.obs.server, { seconds: 2 });
  assert.notEqual(after.exitCode, 0, "a deleted stream is refused");
  assert.equal((await sessionFolders(env.s3, bucket, "studio")).length, 1);
  const text = await getText(env.s3, bucket, `${folder}/index.m3u8`);
  assert.match(text, /#EXT-X-ENDLIST/);
});

test("with INGEST_AUTH=off any stream name is accepted without a passphrase, and a caller sending one is told to drop it", async () => {
  const open = await startGatewayProcess({ ...env.env, LOG_LEVEL: "info", INGEST_AUTH: "off", SPOOL_DIR: `/tmp/vod-test-${env.id}/spool-open` });
  try {
    const r = await publish(srtUrl(open.srtPort, "#!::r=anyone,m=publish"), { seconds: 6 });
    assert.equal(r.exitCode, 0, r.stderr);
    const { folder } = await endedPlaylist("anyone");
    const [rec] = await env.db.select().from(recordings).where(eq(recordings.sourcePrefix, folder));
    assert.equal(rec?.streamId, "anyone");
    const [row] = await env.db.select().from(streams).where(eq(streams.name, "anyone"));
    assert.equal(row?.state, "idle", "a stream row is made for the name");

    const withSecret = await publish(srtUrl(open.srtPort, "publish:anyone", "a-secret-nobody-set"), { seconds: 2 });
    assert.notEqual(withSecret.exitCode, 0);
    const list = await (await fetch(`${open.http}/streams`)).json();
    assert.ok(list.refusals.some((f: { reason: string; message: string }) => f.reason === "unexpected-passphrase" && f.message.includes("remove passphrase=")), JSON.stringify(list.refusals));
  } finally {
    await open.stop();
  }
});

test("without API_TOKEN configured, creating, stopping and deleting streams is refused with a message saying what to set", async () => {
  const locked = await startGatewayProcess({ ...env.env, API_TOKEN: "", SPOOL_DIR: `/tmp/vod-test-${env.id}/spool-locked` });
  try {
    for (const [method, path] of [["POST", "/streams"], ["POST", "/streams/x/stop"], ["DELETE", "/streams/x"]] as const) {
      const res = await fetch(`${locked.http}${path}`, { method, headers: { "content-type": "application/json" }, body: method === "POST" ? JSON.stringify({ name: "x" }) : undefined });
      assert.equal(res.status, 403, `${method} ${path}`);
      assert.match((await res.json()).error.message, /API_TOKEN/);
    }
    assert.equal((await fetch(`${locked.http}/streams`)).status, 200, "the public list still answers");
  } finally {
    await locked.stop();
  }
});

test("errors use the one HTTP shape: a wrong token is 403, an unknown stream 404, a wrong method 405 with Allow", async () => {
  const wrong = await fetch(`${gw.http}/streams`, { method: "POST", headers: { authorization: "Bearer not-the-token-at-all", "content-type": "application/json" }, body: JSON.stringify({ name: "x" }) });
  assert.equal(wrong.status, 403);
  assert.equal((await wrong.json()).error.kind, "forbidden");
  const missing = await gw.api("GET", "/streams/nobody-here");
  assert.equal(missing.status, 404);
  assert.equal(missing.json.error.kind, "not_found");
  const bad = await gw.api("POST", "/streams", { name: "bad name!" });
  assert.equal(bad.json.error.kind, "invalid_request");
  assert.equal(bad.json.error.field, "name");
  const put = await fetch(`${gw.http}/health`, { method: "PUT" });
  assert.equal(put.status, 405);
  assert.equal(put.headers.get("allow"), "GET, HEAD");
  assert.equal((await put.json()).error.kind, "method_not_allowed");
});

test("with NATS unreachable the gateway starts, ingests and stays healthy; /ready and dependency_up say NATS is down", async () => {
  const alone = await startGatewayProcess({ ...env.env, LOG_LEVEL: "info", INGEST_AUTH: "off", NATS_URL: "nats://127.0.0.1:1", SPOOL_DIR: `/tmp/vod-test-${env.id}/spool-nonats` });
  try {
    const r = await publish(srtUrl(alone.srtPort, "#!::r=nonats,m=publish"), { seconds: 6 });
    assert.equal(r.exitCode, 0, r.stderr);
    await endedPlaylist("nonats");
    assert.equal((await fetch(`${alone.http}/health`)).status, 200);
    const ready = await fetch(`${alone.http}/ready`);
    assert.equal(ready.status, 503);
    const body = await ready.json();
    assert.equal(body.checks.nats, "not connected");
    assert.equal(body.checks.database, "ok");
    assert.equal(body.checks.objectStore, "ok");
    const metrics = await (await fetch(`${alone.http}/metrics`)).text();
    assert.match(metrics, /dependency_up\{[^}]*dependency="nats"[^}]*\} 0/);
    assert.match(metrics, /dependency_up\{[^}]*dependency="database"[^}]*\} 1/);
  } finally {
    await alone.stop();
  }
});
