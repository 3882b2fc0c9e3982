// Fault: a three-node NATS cluster loses the node leading the event stream (kill -9) while twenty
// dropped folders convert. Every folder must end ready, converted exactly once, without the sweep's help.
// Runs on a private cluster and object store (other ports); the shared stack is never touched.
// `make test-faults` runs it; figures are printed as `# fault:` diagnostics.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { loadConfig } from "../../lib/config.js";
import { detectStore } from "../../infra/provision.js";
import { createTestEnv, waitFor, type TestEnv } from "../harness.js";
import { startPrivateStack, type PrivateStack } from "../private-stack.js";
import { startWorkers, stopWorkers, type Worker } from "../workers.js";
import { assertEachConvertedOnce, batchStatus, dropFolders, faultMedia, waitAllReady } from "./support.js";

const FOLDERS = 20;
let stack: PrivateStack;
let env: TestEnv;
let dir: string;
let workers: Worker[] = [];

before(async () => {
  const main = loadConfig({ ...process.env, NODE_ENV: "test" });
  stack = await startPrivateStack({ natsPort: 24222, s3Port: 29000, natsNodes: 3, subject: main.nats.subject, store: await detectStore(main), accessKey: main.s3.accessKey, secretKey: main.s3.secretKey });
  env = await createTestEnv("nats-cluster", { NATS_URL: stack.natsUrl, MINIO_ENDPOINT: stack.s3Endpoint, OBJECT_STORE: stack.store, NATS_STREAM_REPLICAS: "3" });
  dir = await mkdtemp(join(tmpdir(), "fault-cluster-"));
});
after(async () => {
  await stopWorkers(workers);
  await env?.close();
  await stack?.close();
  await rm(dir, { recursive: true, force: true });
});

test("kill -9 of the stream's leader while 20 folders convert: 20 ready, each converted exactly once", { timeout: 600_000 }, async (t) => {
  const jsm = await jetstreamManager(env.nc);
  const initial = await jsm.streams.info(env.config.nats.stream);
  assert.equal(initial.config.num_replicas, 3);
  assert.equal(initial.cluster?.replicas?.length, 2, "the stream has a leader and two followers");

  // The sweep is what recovers lost events; this test is about JetStream alone, so it sweeps only at start (before any folder exists).
  workers = await startWorkers(env, "functions/convert/main.ts", 2, { SWEEP_INTERVAL_SECONDS: "3600" }, "cluster");
  const folders = await dropFolders(env, await faultMedia(dir), "cluster", FOLDERS);

  // Mid-conversion: some folders are done, most are not.
  await waitFor("the first recordings to be ready", async () => (await batchStatus(env, "cluster")).ready >= 1, 120_000, 100);
  const leader = (await jsm.streams.info(env.config.nats.stream)).cluster!.leader!;
  assert.ok(stack.natsNodes.some((n) => n.name === leader), `leader ${leader} is one of the private nodes`);
  const readyAtKill = (await batchStatus(env, "cluster")).ready;
  const killedAt = Date.now();
  await stack.killNatsNode(leader);
  t.diagnostic(`fault: killed stream leader ${leader} with ${readyAtKill}/${FOLDERS} ready`);

  const newLeader = await waitFor("a new stream leader", async () => {
    const i = await jsm.streams.info(env.config.nats.stream).catch(() => undefined);
    return i?.cluster?.leader && i.cluster.leader !== leader ? i.cluster.leader : undefined;
  }, 60_000, 200);
  const electedMs = Date.now() - killedAt;
  await waitAllReady(env, "cluster", FOLDERS, 300_000);
  const allReadyMs = Date.now() - killedAt;

  const { duplicatesSkipped } = await assertEachConvertedOnce(env, "cluster", folders, workers);
  assert.deepEqual(workers.flatMap((w) => w.output).filter((l) => l.includes("re-published event")), [], "no event needed the sweep");
  t.diagnostic(`fault: new leader ${newLeader} after ${(electedMs / 1000).toFixed(1)} s; all ${FOLDERS} ready ${(allReadyMs / 1000).toFixed(1)} s after the kill; recordings lost 0; redeliveries skipped as duplicates ${duplicatesSkipped}`);
});
