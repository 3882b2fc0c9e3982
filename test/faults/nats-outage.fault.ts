// Fault: NATS stopped for 60 s while folders are dropped. The store cannot deliver those events (the
// Versity gateway drops them once its reconnect buffer gives up; MinIO queues them), so the sweep must
// find them: every folder ready, each converted exactly once. Private NATS and store on other ports.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../lib/config.js";
import { detectStore } from "../../infra/provision.js";
import { createTestEnv, type TestEnv } from "../harness.js";
import { startPrivateStack, type PrivateStack } from "../private-stack.js";
import { startWorkers, stopWorkers, type Worker } from "../workers.js";
import { assertEachConvertedOnce, batchStatus, broadcastThroughOutage, dropFolders, faultMedia, waitAllReady } from "./support.js";

const FOLDERS = 10;
const OUTAGE_MS = Number(process.env.FAULT_OUTAGE_SECONDS ?? 60) * 1000;
let stack: PrivateStack;
let env: TestEnv;
let dir: string;
let workers: Worker[] = [];

before(async () => {
  const main = loadConfig({ ...process.env, NODE_ENV: "test" });
  stack = await startPrivateStack({ natsPort: 24622, s3Port: 29200, subject: main.nats.subject, store: await detectStore(main), accessKey: main.s3.accessKey, secretKey: main.s3.secretKey });
  env = await createTestEnv("nats-outage", { NATS_URL: stack.natsUrl, MINIO_ENDPOINT: stack.s3Endpoint, OBJECT_STORE: stack.store });
  dir = await mkdtemp(join(tmpdir(), "fault-nats-"));
});
after(async () => {
  await stopWorkers(workers);
  await env?.close();
  await stack?.close();
  await rm(dir, { recursive: true, force: true });
});

test("NATS stopped for 60 s while folders are dropped: the replicas ride it out and every folder is converted once", { timeout: 900_000 }, async (t) => {
  // A short sweep interval stands in for the default 180 s, so the test waits minutes less for the same recovery.
  workers = await startWorkers(env, "functions/convert/main.ts", 2, { SWEEP_INTERVAL_SECONDS: "20" }, "natsout");
  const media = await faultMedia(dir);
  const stoppedAt = Date.now();
  await stack.stopNats();
  const folders = await dropFolders(env, media, "natsfault", FOLDERS);
  t.diagnostic(`fault: NATS stopped; ${FOLDERS} folders dropped ${((Date.now() - stoppedAt) / 1000).toFixed(1)} s into the outage`);
  await new Promise((r) => setTimeout(r, Math.max(0, OUTAGE_MS - (Date.now() - stoppedAt))));
  await stack.startNats();
  const startedAt = Date.now();
  assert.equal((await batchStatus(env, "natsfault")).ready, 0, "nothing converted while NATS was down");
  await waitAllReady(env, "natsfault", FOLDERS, 600_000);
  const { duplicatesSkipped } = await assertEachConvertedOnce(env, "natsfault", folders, workers);
  // Every replica outlived the outage: none exited and had to be restarted.
  for (const w of workers) assert.equal(w.proc.exitCode, null, `${w.id} is still running`);
  const swept = workers.flatMap((w) => w.output).filter((l) => l.includes("re-published event")).length;
  t.diagnostic(`fault: NATS down ${((startedAt - stoppedAt) / 1000).toFixed(0)} s; all ${FOLDERS} ready ${((Date.now() - startedAt) / 1000).toFixed(1)} s after it came back; events recovered by the sweep ${swept}; recordings lost 0; duplicates skipped ${duplicatesSkipped}`);
});

test("NATS stopped for 60 s mid-broadcast: the gateway keeps ingesting without a restart, events resume, the recording holds every second", { timeout: 900_000 }, async (t) => {
  if (!workers.some((w) => w.proc.exitCode === null)) workers.push(...(await startWorkers(env, "functions/convert/main.ts", 1, { SWEEP_INTERVAL_SECONDS: "20" }, "natslive")));
  const r = await broadcastThroughOutage(env, workers, { name: "nats-cut", outageMs: OUTAGE_MS, stop: () => stack.stopNats(), start: async () => { await stack.startNats(); } });
  t.diagnostic(`fault: NATS down ${(r.outageMs / 1000).toFixed(0)} s mid-broadcast; gateway restarts ${r.gatewayRestarts}; sent ${r.sentSeconds.toFixed(1)} s, recorded ${r.recordedSeconds.toFixed(1)} s in ${r.recordings} recording(s); seconds lost ${r.lostSeconds.toFixed(1)}`);
});
