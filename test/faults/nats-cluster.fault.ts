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
import { like } from "drizzle-orm";
import { loadConfig } from "../../lib/config.js";
import { listObjects } from "../../lib/s3.js";
import { recordings } from "../../db/schema.js";
import { detectStore } from "../../infra/provision.js";
import { listFolder, uploadFiles } from "../../functions/drop/upload.js";
import { createTestEnv, waitFor, type TestEnv } from "../harness.js";
import { makeHls } from "../media.js";
import { startPrivateStack, type PrivateStack } from "../private-stack.js";
import { startWorkers, stopWorkers, type Worker } from "../workers.js";

const FOLDERS = 20;
let stack: PrivateStack;
let env: TestEnv;
let media: string;
let workers: Worker[] = [];

before(async () => {
  const main = loadConfig({ ...process.env, NODE_ENV: "test" });
  stack = await startPrivateStack({ natsPort: 24222, s3Port: 29000, natsNodes: 3, subject: main.nats.subject, store: await detectStore(main), accessKey: main.s3.accessKey, secretKey: main.s3.secretKey });
  env = await createTestEnv("nats-cluster", { NATS_URL: stack.natsUrl, MINIO_ENDPOINT: stack.s3Endpoint, OBJECT_STORE: stack.store, NATS_STREAM_REPLICAS: "3" });
  media = await mkdtemp(join(tmpdir(), "fault-cluster-"));
  await makeHls(join(media, "talk"), { seconds: 12, segmentSeconds: 2, size: "640x360" });
});
after(async () => {
  await stopWorkers(workers);
  await env?.close();
  await stack?.close();
  await rm(media, { recursive: true, force: true });
});

test("kill -9 of the stream's leader while 20 folders convert: 20 ready, each converted exactly once", { timeout: 600_000 }, async (t) => {
  const jsm = await jetstreamManager(env.nc);
  const before = await jsm.streams.info(env.config.nats.stream);
  assert.equal(before.config.num_replicas, 3);
  assert.equal(before.cluster?.replicas?.length, 2, "the stream has a leader and two followers");

  // The sweep is what recovers lost events; this test is about JetStream alone, so it sweeps only at start (before any folder exists).
  workers = await startWorkers(env, "functions/convert/main.ts", 2, { SWEEP_INTERVAL_SECONDS: "3600", FUNCTION_CONCURRENCY: "1" }, "cluster");
  const files = await listFolder(join(media, "talk"));
  const folders = Array.from({ length: FOLDERS }, (_, i) => `cluster/folder-${String(i).padStart(2, "0")}`);
  await Promise.all(folders.map((f) => uploadFiles(env.s3, env.config.s3.hlsBucket, f, files, { concurrency: 2 })));

  const statusCounts = async () => {
    const rows = await env.db.select({ folder: recordings.sourcePrefix, status: recordings.status }).from(recordings).where(like(recordings.sourcePrefix, "cluster/%"));
    return { rows, ready: rows.filter((r) => r.status === "ready").length };
  };
  // Mid-conversion: some folders are done, most are not.
  await waitFor("the first recordings to be ready", async () => (await statusCounts()).ready >= 1, 120_000, 100);
  const info = await jsm.streams.info(env.config.nats.stream);
  const leader = info.cluster!.leader!;
  assert.ok(stack.natsNodes.some((n) => n.name === leader), `leader ${leader} is one of the private nodes`);
  const readyAtKill = (await statusCounts()).ready;
  const killedAt = Date.now();
  await stack.killNatsNode(leader);
  t.diagnostic(`fault: killed stream leader ${leader} with ${readyAtKill}/${FOLDERS} ready`);

  const newLeader = await waitFor("a new stream leader", async () => {
    const i = await jsm.streams.info(env.config.nats.stream).catch(() => undefined);
    return i?.cluster?.leader && i.cluster.leader !== leader ? i.cluster.leader : undefined;
  }, 60_000, 200);
  const electedMs = Date.now() - killedAt;
  await waitFor(`all ${FOLDERS} recordings ready`, async () => (await statusCounts()).ready === FOLDERS, 300_000, 250);
  const allReadyMs = Date.now() - killedAt;

  const { rows } = await statusCounts();
  assert.equal(rows.length, FOLDERS, "one recording per folder");
  const mp4s: string[] = [];
  for await (const o of listObjects(env.s3, env.config.s3.recordingsBucket, "cluster/")) if (o.key.endsWith(".mp4")) mp4s.push(o.key);
  assert.equal(mp4s.length, FOLDERS, "one MP4 per folder");
  // Exactly once: across both replicas, each folder was converted to ready once (a redelivery after the failover is recognised and skipped).
  const readyLogs = workers.flatMap((w) => w.output.map((l) => { try { return JSON.parse(l) as { stage?: string; key?: string; msg?: string }; } catch { return {}; } }).filter((l) => l.stage === "ready"));
  const perFolder = new Map<string, number>();
  for (const l of readyLogs) perFolder.set(l.key!.slice(0, l.key!.lastIndexOf("/")), (perFolder.get(l.key!.slice(0, l.key!.lastIndexOf("/"))) ?? 0) + 1);
  assert.deepEqual([...perFolder.entries()].filter(([, n]) => n !== 1), [], "no folder converted twice");
  assert.equal(perFolder.size, FOLDERS);
  const swept = workers.flatMap((w) => w.output).filter((l) => l.includes("re-published event"));
  assert.deepEqual(swept, [], "no event needed the sweep");
  const duplicates = workers.flatMap((w) => w.output).filter((l) => l.includes("duplicate event")).length;
  t.diagnostic(`fault: new leader ${newLeader} after ${(electedMs / 1000).toFixed(1)} s; all ${FOLDERS} ready ${(allReadyMs / 1000).toFixed(1)} s after the kill; recordings lost 0; redeliveries skipped as duplicates ${duplicates}`);
});
