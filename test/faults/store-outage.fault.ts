// Fault: the object store stopped for 60 s, then started again over the same data: while a batch of
// dropped folders converts, and in the middle of a live SRT broadcast (the gateway spools and catches up).
// A private store and NATS on other ports; the shared stack is never touched.
import { after, before, test } from "node:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../lib/config.js";
import { detectStore } from "../../infra/provision.js";
import { createTestEnv, waitFor, type TestEnv } from "../harness.js";
import { startPrivateStack, type PrivateStack } from "../private-stack.js";
import { startWorkers, stopWorkers, type Worker } from "../workers.js";
import { assertEachConvertedOnce, batchStatus, broadcastThroughOutage, dropFolders, faultMedia, waitAllReady } from "./support.js";

const FOLDERS = 12;
const OUTAGE_MS = Number(process.env.FAULT_OUTAGE_SECONDS ?? 60) * 1000;
let stack: PrivateStack;
let env: TestEnv;
let dir: string;
let workers: Worker[] = [];

before(async () => {
  const main = loadConfig({ ...process.env, NODE_ENV: "test" });
  stack = await startPrivateStack({ natsPort: 24522, s3Port: 29100, subject: main.nats.subject, store: await detectStore(main), accessKey: main.s3.accessKey, secretKey: main.s3.secretKey });
  env = await createTestEnv("store-outage", { NATS_URL: stack.natsUrl, MINIO_ENDPOINT: stack.s3Endpoint, OBJECT_STORE: stack.store });
  dir = await mkdtemp(join(tmpdir(), "fault-store-"));
});
after(async () => {
  await stopWorkers(workers);
  await env?.close();
  await stack?.close();
  await rm(dir, { recursive: true, force: true });
});

test("the object store stopped for 60 s mid-conversion: every folder ready, each converted exactly once", { timeout: 900_000 }, async (t) => {
  workers = await startWorkers(env, "functions/convert/main.ts", 2, { SWEEP_INTERVAL_SECONDS: "3600" }, "store");
  const folders = await dropFolders(env, await faultMedia(dir), "storefault", FOLDERS);
  await waitFor("the first recordings to be ready", async () => (await batchStatus(env, "storefault")).ready >= 1, 120_000, 100);
  const readyAtStop = (await batchStatus(env, "storefault")).ready;
  const stoppedAt = Date.now();
  await stack.stopStore();
  t.diagnostic(`fault: object store (${stack.store}) stopped with ${readyAtStop}/${FOLDERS} ready`);
  await new Promise((r) => setTimeout(r, OUTAGE_MS));
  await stack.startStore();
  const startedAt = Date.now();
  await waitAllReady(env, "storefault", FOLDERS, 600_000);
  const { duplicatesSkipped } = await assertEachConvertedOnce(env, "storefault", folders, workers);
  t.diagnostic(`fault: store down ${((startedAt - stoppedAt) / 1000).toFixed(0)} s; all ${FOLDERS} ready ${((Date.now() - startedAt) / 1000).toFixed(1)} s after it came back; recordings lost 0; duplicates skipped ${duplicatesSkipped}`);
});

test("the object store stopped for 60 s mid-broadcast: the recording holds every second the caller sent", { timeout: 900_000 }, async (t) => {
  const r = await broadcastThroughOutage(env, workers, { name: "store-cut", outageMs: OUTAGE_MS, stop: () => stack.stopStore(), start: () => stack.startStore() });
  t.diagnostic(`fault: store down ${(r.outageMs / 1000).toFixed(0)} s mid-broadcast; sent ${r.sentSeconds.toFixed(1)} s, recorded ${r.recordedSeconds.toFixed(1)} s in ${r.recordings} recording(s); seconds lost ${r.lostSeconds.toFixed(1)}`);
});
