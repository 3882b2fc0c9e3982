// Claim races against one PostgreSQL (make test-unit starts it alone): many jobs, one folder, one winner.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createTestDb, type TestDb } from "../test/harness.js";
import { recordings } from "./schema.js";
import { claimRecording, markFailed, markProgress, recordingsCoveringPlaylist, releaseClaim, type ClaimRequest } from "./recordings.js";

let t: TestDb;
before(async () => {
  t = await createTestDb("claims");
});
after(async () => {
  await t?.close();
});

const request = (sourcePrefix: string, claimToken: string, over: Partial<ClaimRequest> = {}): ClaimRequest => ({
  sourcePrefix,
  playlistKey: `${sourcePrefix}/index.m3u8`,
  playlistEtag: "v1",
  streamId: sourcePrefix,
  title: sourcePrefix,
  claimToken,
  leaseMs: 30_000,
  ...over,
});

test("twenty jobs claiming one new folder at once: exactly one wins, the others are told to retry after the lease", async () => {
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => claimRecording(t.db, request("race/new", `job-${i}`))));
  const winners = results.filter((r) => r.kind === "claimed");
  assert.equal(winners.length, 1);
  const busy = results.filter((r) => r.kind === "busy");
  assert.equal(busy.length, 19);
  for (const b of busy) if (b.kind === "busy") assert.ok(b.retryAfterMs > 25_000 && b.retryAfterMs <= 30_000, `retry after ${b.retryAfterMs} ms`);
  const rows = await recordingsCoveringPlaylist(t.db, "race/new/index.m3u8");
  assert.equal(rows.length, 1, "one row per folder");
});

test("twenty jobs racing for a live row the gateway made: one takes it over", async () => {
  await t.db.insert(recordings).values({ streamId: "cam", title: "cam live", sourcePrefix: "race/live", status: "live", sessionId: "s1" });
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => claimRecording(t.db, request("race/live", `job-${i}`))));
  assert.equal(results.filter((r) => r.kind === "claimed").length, 1);
  const claimed = results.find((r) => r.kind === "claimed")!;
  assert.equal(claimed.recording.status, "processing");
  assert.equal(claimed.recording.title, "cam live", "the gateway's title stays");
});

test("a version already ready is reported ready to every racer, and a new version is claimed once", async () => {
  await t.db.insert(recordings).values({ streamId: "d", title: "d", sourcePrefix: "race/ready", status: "ready", playlistKey: "race/ready/index.m3u8", playlistEtag: "v1" });
  const same = await Promise.all(Array.from({ length: 10 }, (_, i) => claimRecording(t.db, request("race/ready", `job-${i}`))));
  assert.deepEqual([...new Set(same.map((r) => r.kind))], ["ready"]);
  const changed = await Promise.all(Array.from({ length: 10 }, (_, i) => claimRecording(t.db, request("race/ready", `job-${i}`, { playlistEtag: "v2" }))));
  assert.equal(changed.filter((r) => r.kind === "claimed").length, 1);
});

test("an expired lease is taken over, and the old holder's progress and failure are refused", async () => {
  const first = await claimRecording(t.db, request("race/expired", "old", { leaseMs: 1 }));
  assert.equal(first.kind, "claimed");
  const id = first.recording.id;
  await new Promise((r) => setTimeout(r, 20));
  const racers = await Promise.all(Array.from({ length: 10 }, (_, i) => claimRecording(t.db, request("race/expired", `new-${i}`))));
  const winner = racers.find((r) => r.kind === "claimed");
  assert.ok(winner);
  assert.equal(racers.filter((r) => r.kind === "claimed").length, 1);
  assert.equal(await markProgress(t.db, id, "old", 30_000, 0.5), false, "the old holder lost its lease");
  assert.equal(await markProgress(t.db, id, winner.recording.claimedBy!, 30_000, 0.5), true);
  const failedByOld = await markFailed(t.db, { sourcePrefix: "race/expired", playlistKey: "race/expired/index.m3u8", error: "old job failed", claimToken: "old", streamId: "race/expired", title: "x" });
  assert.equal(failedByOld, false, "a job that lost its lease cannot fail the recording the new holder is making");
});

test("a released claim can be taken at once by the next job", async () => {
  const first = await claimRecording(t.db, request("race/released", "a"));
  assert.equal(first.kind, "claimed");
  await releaseClaim(t.db, first.recording.id, "a");
  const next = await claimRecording(t.db, request("race/released", "b"));
  assert.equal(next.kind, "claimed");
});
