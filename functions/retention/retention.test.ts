import { test } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eq, sql } from "drizzle-orm";
import { jetstream } from "@nats-io/jetstream";
import { listObjects, putText } from "../../lib/s3.js";
import { createLogger } from "../../lib/log.js";
import { createEventPublisher } from "../../lib/events.js";
import { recordings, streams } from "../../db/schema.js";
import { createTestEnv, waitFor, type TestEnv } from "../../test/harness.js";
import { startApi, storeReadyRecording, withToken } from "../../test/api.js";
import { makeHls, probe } from "../../test/media.js";
import { startWorkers, stopWorkers, waitForRecording } from "../../test/workers.js";
import { sweep } from "../sweep/sweep.js";
import { runRetention } from "./retention.js";
import { claimForDeletion } from "../../db/recordings.js";
import { deleteMadeObjects } from "../../lib/recording-objects.js";

const TOKEN = "retention-token-0123456789";
const log = createLogger("retention-test", process.env.TEST_LOG_LEVEL ?? "silent");

async function keys(env: TestEnv, bucket: string, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of listObjects(env.s3, bucket, prefix)) out.push(o.key);
  return out;
}

/** Every event on the test's events stream so far. */
async function events(env: TestEnv): Promise<{ type: string; data: { id: string } }[]> {
  const c = await jetstream(env.nc).consumers.get(env.config.events.stream);
  const out: { type: string; data: { id: string } }[] = [];
  const batch = await c.fetch({ max_messages: 100, expires: 1500 });
  for await (const m of batch) out.push(m.json());
  return out;
}

test("source retention `delete`: once ready (with its poster) the folder is gone, the MP4 plays, the sweep resurrects nothing, the API says why", async (t) => {
  const env = await createTestEnv("retention-source", { SOURCE_RETENTION: "delete", RETENTION_INTERVAL_SECONDS: "1" });
  t.after(() => env.close());
  const workers = [
    ...(await startWorkers(env, "functions/convert/main.ts", 1, {}, "convert")),
    ...(await startWorkers(env, "functions/thumbnail/main.ts", 1, {}, "thumb")),
  ];
  t.after(() => stopWorkers(workers));
  const api = await startApi(env);
  t.after(() => api.close());

  const dir = join(tmpdir(), `retention-${env.id}`);
  const playlist = await makeHls(dir, { seconds: 6, segmentSeconds: 2, size: "320x180" });
  const files = (await readdir(dir)).filter((f) => f !== playlist);
  // Segments first, the playlist last, as an uploader does.
  for (const f of [...files, playlist]) await putText(env.s3, env.config.s3.hlsBucket, `dropped/${f}`, await readFile(join(dir, f)), f.endsWith(".m3u8") ? "application/vnd.apple.mpegurl" : "video/mp2t");

  const ready = await waitForRecording(env, "dropped", ["ready", "failed"]);
  assert.equal(ready.status, "ready", ready.error ?? "");
  const gone = await waitFor("the source to be deleted", async () => {
    const [r] = await env.db.select().from(recordings).where(eq(recordings.id, ready.id));
    return r?.sourceDeletedAt ? r : undefined;
  }, 60_000);
  assert.ok(gone.thumbnailPath, "the source went only after the poster was made");
  assert.match(gone.sourceDeletedReason ?? "", /source retention: delete once ready/);
  assert.deepEqual(await keys(env, env.config.s3.hlsBucket, "dropped/"), [], "no object of the source folder is left");

  const detail = (await (await fetch(`${api.url}/recordings/${ready.id}`)).json()) as any;
  assert.equal(detail.hlsUrl, null);
  assert.equal(detail.source.kept, false);
  const p = await probe(detail.videoUrl);
  assert.ok(Math.abs(p.duration - 6) < 0.5, `the MP4 plays its 6 s (got ${p.duration})`);
  const hls = await fetch(`${api.url}/recordings/${ready.id}/hls`);
  assert.equal(hls.status, 410);
  assert.match(((await hls.json()) as any).error.message, /was deleted .*source retention.*play the MP4/);

  const swept = await sweep({ s3: env.s3, db: env.db, nc: env.nc, log, config: env.config });
  assert.deepEqual(swept.published, []);
  const rows = await env.db.select().from(recordings);
  assert.deepEqual(rows.map((r) => [r.id, r.status]), [[ready.id, "ready"]], "nothing was converted again");
});

test("recording retention of a fraction of a day deletes an old recording's objects and row, keeps a pinned one and a newer one; a stream's own setting wins", async (t) => {
  // 0.0001 days = 8.64 s.
  const env = await createTestEnv("retention-recordings", { RECORDING_RETENTION_DAYS: "0.0001", SOURCE_RETENTION: "keep" });
  t.after(() => env.close());
  const ago = (s: number) => new Date(Date.now() - s * 1000);
  const old = await storeReadyRecording(env, "cam/old", { readyAt: ago(60) });
  const pinned = await storeReadyRecording(env, "cam/pinned", { readyAt: ago(60) });
  const api = await startApi(env, withToken(TOKEN));
  t.after(() => api.close());
  const pin = await fetch(`${api.url}/recordings/${pinned.id}`, { method: "PATCH", headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" }, body: JSON.stringify({ pinned: true }) });
  assert.equal(pin.status, 200);
  assert.equal(((await pin.json()) as any).pinned, true);
  const bad = await fetch(`${api.url}/recordings/${pinned.id}`, { method: "PATCH", headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" }, body: JSON.stringify({ pinned: "yes" }) });
  assert.equal(bad.status, 400);
  assert.equal(((await bad.json()) as any).error.field, "pinned");
  const newer = await storeReadyRecording(env, "cam/newer", { readyAt: ago(1) });
  // This stream keeps its recordings for a day: its own setting beats the global 0.0001.
  await env.db.insert(streams).values({ name: "kept", secret: "secret-0123456789", recordingRetentionDays: 1 });
  const ownSetting = await storeReadyRecording(env, "kept/a", { readyAt: ago(60) });

  const events$ = createEventPublisher({ nats: () => env.nc, config: env.config, log });
  const r = await runRetention({ s3: env.s3, db: env.db, log, config: env.config, events: events$, batchSize: 2 });
  await events$.flush();
  assert.deepEqual({ recordings: r.recordingsDeleted, sources: r.sourcesDeleted }, { recordings: 1, sources: 0 });

  const left = (await env.db.select({ id: recordings.id }).from(recordings)).map((x) => x.id).sort();
  assert.deepEqual(left, [pinned.id, newer.id, ownSetting.id].sort());
  assert.deepEqual(await keys(env, env.config.s3.hlsBucket, "cam/old/"), []);
  assert.deepEqual(await keys(env, env.config.s3.recordingsBucket, "cam/old/"), []);
  for (const kept of ["cam/pinned/", "cam/newer/", "kept/a/"]) {
    assert.ok((await keys(env, env.config.s3.recordingsBucket, kept)).includes(`${kept}recording.mp4`), `${kept} keeps its MP4`);
    assert.ok((await keys(env, env.config.s3.hlsBucket, kept)).length > 0, `${kept} keeps its source (SOURCE_RETENTION=keep)`);
  }
  const deleted = (await events(env)).filter((e) => e.type === "recording.deleted");
  assert.deepEqual(deleted.map((e) => e.data.id), [old.id]);
  const usage = (await (await fetch(`${api.url}/usage`)).json()) as any;
  assert.deepEqual(usage.streams.map((s: any) => [s.stream, s.recordings, s.pinned]), [["cam", 2, 1], ["kept", 1, 0]]);
  assert.equal(usage.total.recordings, 3);

  // Unpinned, the pinned one is due at the next pass; the newer one is once its time has passed.
  await env.db.update(recordings).set({ pinned: false }).where(eq(recordings.id, pinned.id));
  await env.db.execute(sql`update recordings set ready_at = now() - interval '1 minute' where id = ${newer.id}`);
  const again = await runRetention({ s3: env.s3, db: env.db, log, config: env.config });
  assert.equal(again.recordingsDeleted, 2);
  assert.deepEqual((await env.db.select({ id: recordings.id }).from(recordings)).map((x) => x.id), [ownSetting.id]);
});

test("a pass that dies between a recording's objects and its row is finished by the next one; a claimed recording can no longer be pinned", async (t) => {
  const env = await createTestEnv("retention-crash", { RECORDING_RETENTION_DAYS: "0.0001", SOURCE_RETENTION: "keep" });
  t.after(() => env.close());
  const row = await storeReadyRecording(env, "cam/crashed", { readyAt: new Date(Date.now() - 60_000) });
  // What a pass that was killed leaves: the row claimed, its MP4 already gone, the row still there.
  const claimed = await claimForDeletion(env.db, row.id);
  assert.ok(claimed, "the due recording is claimed");
  await deleteMadeObjects(env.s3, env.config.s3, claimed);
  const api = await startApi(env, withToken(TOKEN));
  t.after(() => api.close());
  const pin = await fetch(`${api.url}/recordings/${row.id}`, { method: "PATCH", headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" }, body: JSON.stringify({ pinned: true }) });
  assert.equal(pin.status, 409, "pinning a recording retention is deleting is refused");
  assert.match(((await pin.json()) as any).error.message, /being deleted by retention/);

  const r = await runRetention({ s3: env.s3, db: env.db, log, config: env.config });
  assert.equal(r.recordingsDeleted, 1);
  assert.deepEqual(await env.db.select({ id: recordings.id }).from(recordings), []);
  assert.deepEqual(await keys(env, env.config.s3.hlsBucket, "cam/crashed/"), []);
  assert.deepEqual(await keys(env, env.config.s3.recordingsBucket, "cam/crashed/"), []);
});

test("source retention in days keeps a source until its time, never the current broadcast's", async (t) => {
  const env = await createTestEnv("retention-days", { SOURCE_RETENTION: "0.0001" });
  t.after(() => env.close());
  const ago = (s: number) => new Date(Date.now() - s * 1000);
  const due = await storeReadyRecording(env, "cam/due", { readyAt: ago(60) });
  const fresh = await storeReadyRecording(env, "cam/fresh", { readyAt: ago(1) });
  const current = await storeReadyRecording(env, "live/s1", { readyAt: ago(60) });
  await env.db.insert(streams).values({ name: "live", secret: "secret-0123456789", state: "live", currentRecordingId: current.id });
  const r = await runRetention({ s3: env.s3, db: env.db, log, config: env.config });
  assert.equal(r.sourcesDeleted, 1);
  assert.deepEqual(await keys(env, env.config.s3.hlsBucket, "cam/due/"), []);
  assert.ok((await keys(env, env.config.s3.hlsBucket, "cam/fresh/")).length > 0);
  assert.ok((await keys(env, env.config.s3.hlsBucket, "live/s1/")).length > 0);
  const [row] = await env.db.select().from(recordings).where(eq(recordings.id, due.id));
  assert.ok(row?.sourceDeletedAt && row.status === "ready", "the row stays, marked");
  assert.equal((await env.db.select().from(recordings).where(eq(recordings.id, fresh.id)))[0]?.sourceDeletedAt, null);
});
