// Webhook delivery latency: events published to the events stream at 100/s for 30 s, delivered by one
// webhooks replica to 5 loopback receivers; latency = receiver's arrival time - the event's createdAt.
// Run alone: node --import tsx bench/webhooks.bench.ts   (or `make bench` with every benchmark)
import { createTestEnv } from "../test/harness.js";
import { startWorkers, stopWorkers } from "../test/workers.js";
import { startReceiver, type Receiver } from "../test/webhook-receiver.js";
import { createEndpoint } from "../db/webhooks.js";
import { newSecret } from "../functions/webhooks/send.js";
import { createEventPublisher } from "../lib/events.js";
import { createLogger } from "../lib/log.js";
import { sleep } from "../lib/time.js";

const RATE = Number(process.env.BENCH_WEBHOOKS_RATE ?? 100);
const SECONDS = Number(process.env.BENCH_WEBHOOKS_SECONDS ?? 30);
const ENDPOINTS = Number(process.env.BENCH_WEBHOOKS_ENDPOINTS ?? 5);
const REPLICAS = Number(process.env.BENCH_WEBHOOKS_REPLICAS ?? 1);

const env = await createTestEnv("bench-webhooks");
const receivers: Receiver[] = [];
let workers: Awaited<ReturnType<typeof startWorkers>> = [];
try {
  for (let i = 0; i < ENDPOINTS; i++) {
    const r = await startReceiver();
    receivers.push(r);
    await createEndpoint(env.db, { url: r.url, events: null, description: `bench ${i}`, secret: newSecret() });
  }
  workers = await startWorkers(env, "functions/webhooks/main.ts", REPLICAS, process.env.BENCH_WEBHOOKS_CONCURRENCY ? { FUNCTION_CONCURRENCY: process.env.BENCH_WEBHOOKS_CONCURRENCY } : {}, "bw");
  const events = createEventPublisher({ nats: () => env.nc, config: env.config, log: createLogger("bench", "silent") });
  const total = RATE * SECONDS;
  const t0 = performance.now();
  const sent: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    // Paced to the target rate: event i is published at i / RATE seconds.
    const due = t0 + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    sent.push(events.publish("recording.ready", { id: `bench-${i % 50}`, n: i }));
  }
  await Promise.all(sent);
  const publishSeconds = (performance.now() - t0) / 1000;
  const deadline = Date.now() + 120_000;
  while (receivers.some((r) => r.received.length < total) && Date.now() < deadline) await sleep(200);

  const latencies = receivers.flatMap((r) => r.received.map((x) => x.at - Date.parse((JSON.parse(x.body) as { createdAt: string }).createdAt))).sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
  const delivered = receivers.map((r) => new Set(r.received.map((x) => x.headers["webhook-id"])).size);
  console.log(`webhooks: ${total} events at ${(total / publishSeconds).toFixed(0)}/s to ${ENDPOINTS} endpoints, ${REPLICAS} replica(s)`);
  console.log(`  delivered per endpoint: ${delivered.join(", ")} of ${total}`);
  console.log(`  event-to-delivery latency: p50 ${q(0.5)} ms, p95 ${q(0.95)} ms, p99 ${q(0.99)} ms, max ${latencies[latencies.length - 1]} ms`);
  if (delivered.some((d) => d < total)) process.exitCode = 1;
} finally {
  await stopWorkers(workers);
  for (const r of receivers) await r.close();
  await env.close();
}
