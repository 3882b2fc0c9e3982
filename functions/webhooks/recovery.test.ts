// At least once through crashes: a webhooks replica killed with -9 mid-delivery and the (private) NATS
// restarted while events are published; every event still reaches the receiver, duplicates keep their id.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { loadConfig } from "../../lib/config.js";
import { createLogger } from "../../lib/log.js";
import { connectNats, type NatsConnection } from "../../lib/nats.js";
import { createEventPublisher } from "../../lib/events.js";
import { detectStore } from "../../infra/provision.js";
import { createTestEnv, waitFor, type TestEnv } from "../../test/harness.js";
import { startPrivateStack, type PrivateStack } from "../../test/private-stack.js";
import { startWorkers, stopWorkers, type Worker } from "../../test/workers.js";
import { startApi, withToken, type RunningApi } from "../../test/api.js";
import { startReceiver, type Receiver } from "../../test/webhook-receiver.js";
import { freeTcpPort } from "../../test/ports.js";
import { sleep } from "../../lib/time.js";

const TOKEN = "webhooks-recovery-token-0123456789";
let stack: PrivateStack;
let env: TestEnv;
let api: RunningApi;
let rcv: Receiver;
let publisherNc: NatsConnection;
let workers: Worker[] = [];

before(async () => {
  const main = loadConfig({ ...process.env, NODE_ENV: "test" });
  const natsPort = await freeTcpPort();
  stack = await startPrivateStack({ natsPort, s3Port: await freeTcpPort(), subject: main.nats.subject, store: await detectStore(main), accessKey: main.s3.accessKey, secretKey: main.s3.secretKey });
  env = await createTestEnv("webhooks-recovery", { NATS_URL: stack.natsUrl, MINIO_ENDPOINT: stack.s3Endpoint, OBJECT_STORE: stack.store, WEBHOOK_RETRY_BASE_SECONDS: "0.5" });
  api = await startApi(env, withToken(TOKEN));
  rcv = await startReceiver();
  publisherNc = await connectNats(env.config.nats, "test-publisher");
});

after(async () => {
  await stopWorkers(workers, 5000);
  await rcv?.close();
  await api?.close();
  await publisherNc?.close().catch(() => {});
  await env?.close().catch(() => {});
  await stack?.close();
});

test("kill -9 of the webhooks replica mid-delivery and a NATS restart lose no event", { timeout: 300_000 }, async () => {
  const res = await fetch(`${api.url}/webhooks`, { method: "POST", headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" }, body: JSON.stringify({ url: rcv.url }) });
  assert.equal(res.status, 201);
  const { secret } = (await res.json()) as { secret: string };
  // Slow answers keep a request in flight when the replica is killed.
  rcv.answer = async () => {
    await sleep(300);
    return 200;
  };
  workers = await startWorkers(env, "functions/webhooks/main.ts", 1, {}, "wa");
  const events = createEventPublisher({ nats: () => publisherNc, config: env.config, log: createLogger("test", "silent") });
  const published: Promise<void>[] = [];
  for (let i = 0; i < 20; i++) published.push(events.publish("recording.ready", { id: `rec-${i}`, n: i }));
  await Promise.all(published);

  await waitFor("a few deliveries", () => rcv.received.length >= 3, 30_000, 20);
  workers[0]!.proc.kill("SIGKILL");
  await workers[0]!.exited;
  const deliveredBeforeKill = rcv.received.length;

  await stack.stopNats();
  // Published while NATS is down: the publisher keeps them and retries.
  const late: Promise<void>[] = [];
  for (let i = 20; i < 30; i++) late.push(events.publish("recording.ready", { id: `rec-${i}`, n: i }));
  await sleep(2000);
  await stack.startNats();
  await Promise.all(late);

  workers.push(...(await startWorkers(env, "functions/webhooks/main.ts", 1, {}, "wb")));
  const all = await waitFor("all 30 events at the receiver", () => {
    const got = rcv.verified(secret);
    return new Set(got.map((e) => e.data.n)).size === 30 ? got : undefined;
  }, 180_000, 250);
  assert.ok(deliveredBeforeKill < 30, "the kill came mid-delivery");
  // Duplicates are allowed; each carries the same webhook-id as its event's id.
  for (const x of rcv.received) assert.equal(x.headers["webhook-id"], (JSON.parse(x.body) as { id: string }).id);
  const byN = new Map<number, Set<string>>();
  for (const e of all) byN.set(e.data.n as number, (byN.get(e.data.n as number) ?? new Set()).add(e.id));
  assert.ok([...byN.values()].every((ids) => ids.size === 1), "one event id per event, however often it came");
  // In publish order, duplicates aside.
  const firstSeen = [...new Map(all.map((e) => [e.data.n as number, e])).keys()];
  assert.deepEqual(firstSeen, [...firstSeen].sort((a, b) => a - b));
});
