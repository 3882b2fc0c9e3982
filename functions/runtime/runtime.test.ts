import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import { consumerIdle as waitForIdle, createTestEnv, waitFor, type TestEnv } from "../../test/harness.js";
import { encodeSweepEvent, isPlaylistCreated } from "../events/decode.js";
import { PermanentError, TransientError, type GiveUp, type Handler } from "./handler.js";
import { startReplica, type FunctionSpec, type Replica } from "./replica.js";
import type { Config } from "../../lib/config.js";

let env: TestEnv;
const replicas: Replica[] = [];

before(async () => {
  env = await createTestEnv("runtime", { MAX_DELIVERIES: "3", SHUTDOWN_GRACE_SECONDS: "1", FUNCTION_CONCURRENCY: "2" });
});
after(async () => {
  for (const r of replicas) await r.stop();
  await env.close();
});

/** One replica with this handler; each test uses its own keys, so replicas of earlier tests never matter. */
async function replica<S>(handler: Handler<S>, giveUp?: GiveUp<S>, config: Config = env.config, more: Partial<FunctionSpec<S>> = {}) {
  const spec: FunctionSpec<S> = { name: "runtime-test", consumer: (c) => c.nats.consumers.convert, accepts: (e, c) => isPlaylistCreated(e, c.s3.hlsBucket), handler, giveUp, ...more };
  const r = await startReplica(spec, config);
  replicas.push(r);
  return r;
}

async function stopAll() {
  while (replicas.length) await replicas.pop()!.stop();
}

async function publish(key: string, opts: { bucket?: string; body?: string } = {}) {
  const body = opts.body ?? encodeSweepEvent({ bucket: opts.bucket ?? env.config.s3.hlsBucket, key, size: 10, etag: "e" });
  await jetstream(env.nc).publish(env.config.nats.subject, body);
}

const consumerIdle = () => waitForIdle(env, env.config.nats.consumers.convert);

test("events for other buckets, non-playlist keys, other event types and undecodable bodies are acked without running the handler", async () => {
  const calls: string[] = [];
  await replica(async (e) => void calls.push(e.key));
  await publish("a/index.m3u8", { bucket: "some-other-bucket" });
  await publish("a/seg000.ts");
  const removed = JSON.parse(encodeSweepEvent({ bucket: env.config.s3.hlsBucket, key: "a/index.m3u8", size: 1, etag: "e" }));
  removed.Records[0].eventName = "s3:ObjectRemoved:Delete";
  await publish("", { body: JSON.stringify(removed) });
  await publish("", { body: "not json" });
  await publish("ignored-check/index.m3u8");
  await waitFor("the playlist event to reach the handler", () => calls.includes("ignored-check/index.m3u8"));
  await consumerIdle();
  assert.deepEqual(calls, ["ignored-check/index.m3u8"]);
  await stopAll();
});

test("a transient failure is retried with the next attempt number and then acked once", async () => {
  const attempts: number[] = [];
  await replica(async (e, ctx) => {
    if (e.key !== "transient/index.m3u8") return;
    attempts.push(ctx.attempt);
    if (ctx.attempt === 1) throw new TransientError("store hiccup");
  });
  await publish("transient/index.m3u8");
  await waitFor("the second attempt", () => attempts.length === 2);
  await consumerIdle();
  assert.deepEqual(attempts, [1, 2]);
  await stopAll();
});

test("a permanent error records its reason through giveUp once and is not redelivered", async () => {
  let calls = 0;
  const reasons: string[] = [];
  await replica(
    async (e) => {
      if (e.key !== "permanent/index.m3u8") return;
      calls++;
      throw new PermanentError("the playlist names a segment outside its folder");
    },
    async (_e, reason) => void reasons.push(reason),
  );
  await publish("permanent/index.m3u8");
  await waitFor("giveUp", () => reasons.length === 1);
  await consumerIdle();
  assert.equal(calls, 1);
  assert.deepEqual(reasons, ["the playlist names a segment outside its folder"]);
  await stopAll();
});

test("what the handler found reaches giveUp through its job, one job per event", async () => {
  const seen: Array<{ key: string; state: unknown }> = [];
  await replica<{ found: string }>(
    async (e, _ctx, job) => {
      if (e.key !== "job-state/index.m3u8") return;
      job.state = { found: "the folder job-state" };
      throw new PermanentError("bad playlist");
    },
    async (e, _reason, _ctx, job) => void seen.push({ key: e.key, state: job.state }),
  );
  await publish("job-state/index.m3u8");
  await waitFor("giveUp", () => seen.length === 1);
  await consumerIdle();
  assert.deepEqual(seen, [{ key: "job-state/index.m3u8", state: { found: "the folder job-state" } }]);
  await stopAll();
});

test("the runner only hands the handler the events the function accepts", async () => {
  const calls: string[] = [];
  await replica(async (e) => void calls.push(e.key), undefined, env.config, { accepts: (e) => e.key.endsWith("/take.m3u8") });
  await publish("accepts/skip.m3u8");
  await publish("accepts/take.m3u8");
  await waitFor("the accepted event", () => calls.includes("accepts/take.m3u8"));
  await consumerIdle();
  assert.deepEqual(calls, ["accepts/take.m3u8"]);
  await stopAll();
});

test("a function's background tasks run while the replica runs and end when it stops", async () => {
  const events: string[] = [];
  await replica(async () => "ignored", undefined, env.config, {
    background: ({ signal }) => [
      async () => {
        events.push("started");
        await new Promise((r) => signal.addEventListener("abort", r, { once: true }));
        events.push("stopped");
      },
    ],
  });
  await waitFor("the background task to start", () => events.includes("started"));
  assert.deepEqual(events, ["started"]);
  await stopAll();
  assert.deepEqual(events, ["started", "stopped"]);
});

test("progress shows in the function_job_progress gauge while the job runs, and is gone after", async () => {
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const r = await replica(async (e, ctx) => {
    if (e.key !== "progress/index.m3u8") return;
    await ctx.progress(0.25);
    await held;
    return "done";
  });
  await publish("progress/index.m3u8");
  const metrics = () => fetch(`http://127.0.0.1:${r.port}/metrics`).then((m) => m.text());
  await waitFor("the gauge to show the job's progress", async () => /function_job_progress\{[^}]*key="progress\/index.m3u8"[^}]*\} 0.25/.test(await metrics()));
  release();
  await consumerIdle();
  assert.doesNotMatch(await metrics(), /function_job_progress\{[^}]*key="progress\/index.m3u8"/);
  await stopAll();
});

test("the last allowed delivery gives up and records why, after MAX_DELIVERIES attempts", async () => {
  const attempts: number[] = [];
  const reasons: string[] = [];
  await replica(
    async (e, ctx) => {
      if (e.key !== "always-failing/index.m3u8") return;
      attempts.push(ctx.attempt);
      throw new TransientError("database unreachable", { retryAfterMs: 100 });
    },
    async (_e, reason) => void reasons.push(reason),
  );
  await publish("always-failing/index.m3u8");
  await waitFor("giveUp", () => reasons.length === 1, 30_000);
  await consumerIdle();
  assert.deepEqual(attempts, [1, 2, 3]);
  assert.equal(reasons[0], "gave up after 3 attempts: database unreachable");
  await stopAll();
});

test("a job longer than the consumer's ack_wait is kept alive by heartbeats and runs once", async () => {
  const jsm = await jetstreamManager(env.nc);
  await jsm.consumers.update(env.config.nats.stream, env.config.nats.consumers.convert, { ack_wait: nanos(1500) });
  try {
    const attempts: number[] = [];
    await replica(async (e, ctx) => {
      if (e.key !== "long/index.m3u8") return;
      attempts.push(ctx.attempt);
      await new Promise((r) => setTimeout(r, 5000));
    });
    // A second replica would receive the message if the first one's heartbeats stopped.
    await replica(async (e, ctx) => {
      if (e.key === "long/index.m3u8") attempts.push(ctx.attempt);
    });
    await publish("long/index.m3u8");
    await waitFor("the job to start", () => attempts.length > 0);
    await consumerIdle();
    assert.deepEqual(attempts, [1]);
  } finally {
    await stopAll();
    await jsm.consumers.update(env.config.nats.stream, env.config.nats.consumers.convert, { ack_wait: nanos(60_000) });
  }
});

test("stopping a replica lets a short job finish and releases a job longer than the grace period to another replica", async () => {
  const finished: string[] = [];
  const aborted: string[] = [];
  const first = await replica(async (e, ctx) => {
    if (!e.key.startsWith("shutdown/")) return;
    const ms = e.key.includes("short") ? 300 : 60_000;
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(resolve, ms);
      ctx.signal.addEventListener("abort", () => {
        clearTimeout(t);
        aborted.push(e.key);
        reject(ctx.signal.reason);
      });
    });
    finished.push(e.key);
  });
  await publish("shutdown/short/index.m3u8");
  await publish("shutdown/long/index.m3u8");
  await waitFor("both jobs to run", () => first.runner.inFlight === 2);
  await first.stop();
  replicas.splice(replicas.indexOf(first), 1);
  assert.deepEqual(finished, ["shutdown/short/index.m3u8"]);
  assert.deepEqual(aborted, ["shutdown/long/index.m3u8"]);

  const takenOver: number[] = [];
  await replica(async (e, ctx) => {
    if (e.key === "shutdown/long/index.m3u8") takenOver.push(ctx.attempt);
  });
  await waitFor("another replica to take the released job", () => takenOver.length === 1);
  assert.deepEqual(takenOver, [2]);
  await consumerIdle();
  await stopAll();
});

test("FUNCTION_CONCURRENCY bounds how many jobs one replica runs at once", async () => {
  let running = 0;
  let most = 0;
  let done = 0;
  await replica(async (e) => {
    if (!e.key.startsWith("concurrency/")) return;
    running++;
    most = Math.max(most, running);
    await new Promise((r) => setTimeout(r, 400));
    running--;
    done++;
  });
  for (let i = 0; i < 6; i++) await publish(`concurrency/${i}/index.m3u8`);
  await waitFor("all six jobs", () => done === 6, 30_000);
  assert.equal(most, 2);
  await stopAll();
});

// /health is liveness now (nothing outside the process); the NATS and database checks moved to /ready,
// named as every service names them, with the object store a replica also needs.
test("/health says the process is alive, /ready reports NATS, the database and the buckets, /metrics counts jobs started and done", async () => {
  const r = await replica(async () => "done");
  await publish("metrics/index.m3u8");
  await consumerIdle();
  const health = await fetch(`http://127.0.0.1:${r.port}/health`);
  assert.equal(health.status, 200);
  assert.deepEqual(await health.json(), { status: "ok" });
  const ready = await fetch(`http://127.0.0.1:${r.port}/ready`);
  assert.equal(ready.status, 200);
  assert.deepEqual(await ready.json(), { status: "ready", checks: { nats: "ok", database: "ok", objectStore: "ok" } });
  const metrics = await (await fetch(`http://127.0.0.1:${r.port}/metrics`)).text();
  assert.match(metrics, /function_jobs_started_total\{[^}]*function="runtime-test"[^}]*\} 1/);
  assert.match(metrics, /function_jobs_done_total\{[^}]*result="done"[^}]*\} 1/);
  assert.match(metrics, /function_job_duration_seconds_count/);
  await stopAll();
});
