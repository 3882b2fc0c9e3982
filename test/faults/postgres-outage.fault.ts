// Fault: PostgreSQL stopped for 60 s, then started again: while a batch of dropped folders converts,
// and in the middle of a live SRT broadcast (the gateway keeps ingesting without its database).
// A private PostgreSQL on another port (the shared one is never stopped); NATS and the store are the
// shared stack's, with this test's own buckets and consumers. Nothing may be lost or converted twice.
import { after, before, test } from "node:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTestEnv, waitFor, type TestEnv } from "../harness.js";
import { startPrivatePostgres, type PrivatePostgres } from "../private-stack.js";
import { startWorkers, stopWorkers, type Worker } from "../workers.js";
import { assertEachConvertedOnce, batchStatus, broadcastThroughOutage, dropFolders, faultMedia, waitAllReady } from "./support.js";

const FOLDERS = 12;
const OUTAGE_MS = Number(process.env.FAULT_OUTAGE_SECONDS ?? 60) * 1000;
let pg: PrivatePostgres;
let env: TestEnv;
let dir: string;
let workers: Worker[] = [];

before(async () => {
  pg = await startPrivatePostgres(25432);
  const url = new URL(pg.url);
  url.pathname = "/t_fault_postgres";
  env = await createTestEnv("pg-outage", { DATABASE_URL: url.toString() });
  dir = await mkdtemp(join(tmpdir(), "fault-pg-"));
});
after(async () => {
  await stopWorkers(workers);
  await env?.close();
  await pg?.close();
  await rm(dir, { recursive: true, force: true });
});

test("PostgreSQL stopped for 60 s mid-conversion: every folder ready, each converted exactly once", { timeout: 900_000 }, async (t) => {
  workers = await startWorkers(env, "functions/convert/main.ts", 2, { SWEEP_INTERVAL_SECONDS: "3600" }, "pg");
  const folders = await dropFolders(env, await faultMedia(dir), "pgfault", FOLDERS);
  await waitFor("the first recordings to be ready", async () => (await batchStatus(env, "pgfault")).ready >= 1, 120_000, 100);
  const readyAtStop = (await batchStatus(env, "pgfault")).ready;
  const stoppedAt = Date.now();
  await pg.stop();
  t.diagnostic(`fault: PostgreSQL stopped with ${readyAtStop}/${FOLDERS} ready`);
  await new Promise((r) => setTimeout(r, OUTAGE_MS));
  await pg.start();
  const startedAt = Date.now();
  await waitAllReady(env, "pgfault", FOLDERS, 600_000).catch(async (err: Error) => {
    // Say where each folder stands and what the replicas said last, so a failure here can be read without a rerun.
    const s = await batchStatus(env, "pgfault");
    const tails = workers.map((w) => `${w.id}:\n${w.output.slice(-40).join("\n")}`).join("\n");
    throw new Error(`${err.message}\n${JSON.stringify(s.rows)}\n${tails}`);
  });
  const { duplicatesSkipped } = await assertEachConvertedOnce(env, "pgfault", folders, workers);
  t.diagnostic(`fault: PostgreSQL down ${((startedAt - stoppedAt) / 1000).toFixed(0)} s; all ${FOLDERS} ready ${((Date.now() - startedAt) / 1000).toFixed(1)} s after it came back; recordings lost 0; duplicates skipped ${duplicatesSkipped}`);
});

test("PostgreSQL stopped for 60 s mid-broadcast: the recording holds every second the caller sent", { timeout: 900_000 }, async (t) => {
  const r = await broadcastThroughOutage(env, workers, { name: "pg-cut", outageMs: OUTAGE_MS, stop: () => pg.stop(), start: () => pg.start() });
  t.diagnostic(`fault: PostgreSQL down ${(r.outageMs / 1000).toFixed(0)} s mid-broadcast; sent ${r.sentSeconds.toFixed(1)} s, recorded ${r.recordedSeconds.toFixed(1)} s in ${r.recordings} recording(s); seconds lost ${r.lostSeconds.toFixed(1)}`);
});
