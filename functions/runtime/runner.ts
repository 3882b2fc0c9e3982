import { jetstream, type Consumer, type JsMsg } from "@nats-io/jetstream";
import { millis } from "@nats-io/transport-node";
import type { S3Client } from "@aws-sdk/client-s3";
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { Config } from "../../lib/config.js";
import type { Logger } from "../../lib/log.js";
import type { NatsConnection } from "../../lib/nats.js";
import type { Db } from "../../db/client.js";
import { decodeStorageEvent, playlistEvents, type StorageEvent } from "../events/decode.js";
import { PermanentError, TransientError, type GiveUp, type Handler, type HandlerContext } from "./handler.js";

export interface RunnerOptions {
  /** The function's name (metrics label, logs): "convert". */
  name: string;
  handler: Handler;
  giveUp?: GiveUp;
  nc: NatsConnection;
  s3: S3Client;
  db: Db;
  log: Logger;
  config: Config;
  /** The durable pull consumer every replica of this function shares. */
  consumer: string;
  worker: string;
  registry: Registry;
}

export interface Runner {
  /** Resolves once the consumer is bound and pulling has begun. */
  start(): Promise<void>;
  /** Stops pulling, lets in-flight jobs finish within SHUTDOWN_GRACE_SECONDS, then aborts and naks the rest. */
  stop(): Promise<void>;
  readonly inFlight: number;
}

interface Job {
  msg: JsMsg;
  abort: AbortController;
  settled: boolean;
  done: Promise<void>;
}

// A pull that finds nothing ends after this long; it bounds how long stop() waits for the pull loop.
const PULL_EXPIRES_MS = 3000;
const RETRY_BASE_MS = 1000;
const RETRY_MAX_MS = 60_000;
const SETTLE_AFTER_ABORT_MS = 5000;

class ShutdownAbort extends Error {
  override name = "ShutdownAbort";
}

/** Binds a handler to its durable JetStream pull consumer: one runner per replica process. */
export function createRunner(o: RunnerOptions): Runner {
  const { log, config } = o;
  const concurrency = config.functions.concurrency;
  const jobs = new Set<Job>();
  let stopping = false;
  let loop: Promise<void> | undefined;
  let slotFreed: (() => void) | undefined;
  let ackWaitMs = 60_000;
  let maxDeliver = config.functions.maxDeliveries;

  const labels = { function: o.name };
  const started = new Counter({ name: "function_jobs_started_total", help: "Jobs taken from the consumer", labelNames: ["function"], registers: [o.registry] });
  const done = new Counter({ name: "function_jobs_done_total", help: "Jobs acked, by result (done or ignored)", labelNames: ["function", "result"], registers: [o.registry] });
  const failed = new Counter({ name: "function_jobs_failed_total", help: "Jobs that failed, by outcome (retry, gave_up, released)", labelNames: ["function", "outcome"], registers: [o.registry] });
  const duration = new Histogram({ name: "function_job_duration_seconds", help: "Job duration, by result", labelNames: ["function", "result"], buckets: [0.05, 0.25, 1, 5, 15, 60, 180, 600, 1800], registers: [o.registry] });
  const inFlight = new Gauge({ name: "function_jobs_in_flight", help: "Jobs running now", labelNames: ["function"], registers: [o.registry] });
  let bound: Consumer | undefined;
  // Consumer lag, asked of NATS at scrape time (NATS's own monitoring port does not speak Prometheus).
  new Gauge({
    name: "function_consumer_pending_messages",
    help: "Messages in the durable consumer not yet delivered to any replica",
    labelNames: ["function", "consumer"],
    registers: [o.registry],
    async collect() {
      const info = await bound?.info().catch(() => undefined);
      if (info) this.set({ ...labels, consumer: o.consumer }, info.num_pending);
    },
  });

  async function pull(consumer: Consumer): Promise<void> {
    while (!stopping) {
      if (jobs.size >= concurrency) {
        await new Promise<void>((r) => (slotFreed = r));
        continue;
      }
      try {
        // Only ask for as many messages as there are free slots: a message waiting in a local
        // buffer would burn its ack_wait while another replica could be running it.
        const batch = await consumer.fetch({ max_messages: concurrency - jobs.size, expires: PULL_EXPIRES_MS });
        for await (const msg of batch) {
          if (stopping) msg.nak();
          else run(msg);
        }
      } catch (err) {
        if (stopping) break;
        log.warn({ err: (err as Error).message }, "pulling from the consumer failed; retrying");
        await sleep(1000);
      }
    }
  }

  function run(msg: JsMsg): void {
    const job: Job = { msg, abort: new AbortController(), settled: false, done: Promise.resolve() };
    jobs.add(job);
    inFlight.inc(labels);
    job.done = handle(job).finally(() => {
      job.settled = true;
      jobs.delete(job);
      inFlight.dec(labels);
      slotFreed?.();
      slotFreed = undefined;
    });
  }

  async function handle(job: Job): Promise<void> {
    const { msg } = job;
    const attempt = msg.info.deliveryCount;
    let events: StorageEvent[];
    try {
      events = decodeStorageEvent(msg.data);
    } catch (err) {
      log.warn({ seq: msg.seq, err: (err as Error).message }, "terminating an undecodable notification");
      msg.term((err as Error).message);
      return;
    }
    const relevant = playlistEvents(events, config.s3.hlsBucket);
    // The Versity gateway publishes every object of every bucket: most messages end here, cheaply.
    if (relevant.length === 0) {
      msg.ack();
      return;
    }

    let lastWorking = Date.now();
    const working = () => {
      lastWorking = Date.now();
      msg.working();
    };
    // A heartbeat well inside ack_wait keeps a long job from being redelivered to another replica.
    const heartbeat = setInterval(working, Math.max(500, Math.floor(ackWaitMs / 3)));
    const t0 = performance.now();
    started.inc(labels);
    let current: StorageEvent = relevant[0]!;
    const ctx: HandlerContext = {
      s3: o.s3,
      db: o.db,
      log: log.child({ key: current.key, attempt }),
      config,
      signal: job.abort.signal,
      attempt,
      worker: o.worker,
      redeliverAfterMs: ackWaitMs,
      async progress() {
        if (Date.now() - lastWorking >= 1000) working();
      },
    };
    try {
      let result: "done" | "ignored" = "ignored";
      for (const event of relevant) {
        current = event;
        ctx.log = log.child({ key: event.key, attempt });
        const r = await o.handler(event, ctx);
        if (r !== "ignored") result = "done";
      }
      msg.ack();
      done.inc({ ...labels, result });
      duration.observe({ ...labels, result }, (performance.now() - t0) / 1000);
    } catch (err) {
      duration.observe({ ...labels, result: "failed" }, (performance.now() - t0) / 1000);
      await fail(job, ctx, current, err);
    } finally {
      clearInterval(heartbeat);
    }
  }

  async function fail(job: Job, ctx: HandlerContext, event: StorageEvent, err: unknown): Promise<void> {
    const { msg } = job;
    const reason = (err as Error)?.message || String(err);
    if (job.abort.signal.aborted && job.abort.signal.reason instanceof ShutdownAbort) {
      failed.inc({ ...labels, outcome: "released" });
      ctx.log.warn({ reason }, "job aborted by shutdown; released to another replica");
      msg.nak();
      return;
    }
    const permanent = err instanceof PermanentError || (err as { kind?: string })?.kind === "permanent";
    const last = ctx.attempt >= maxDeliver;
    if (!permanent && !last) {
      const requested = err instanceof TransientError ? err.retryAfterMs : undefined;
      const delay = requested ?? Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** (ctx.attempt - 1));
      failed.inc({ ...labels, outcome: "retry" });
      ctx.log.warn({ reason, retryInMs: delay }, "job failed; will retry");
      msg.nak(delay);
      return;
    }
    const why = permanent ? reason : `gave up after ${ctx.attempt} attempts: ${reason}`;
    try {
      await o.giveUp?.(event, why, ctx);
    } catch (giveUpErr) {
      // Recording the reason matters more than ending early: retry while deliveries remain.
      if (!last) {
        ctx.log.error({ reason, err: (giveUpErr as Error).message }, "could not record the failure; will retry");
        failed.inc({ ...labels, outcome: "retry" });
        msg.nak(RETRY_BASE_MS * 2 ** (ctx.attempt - 1));
        return;
      }
      ctx.log.error({ reason, err: (giveUpErr as Error).message }, "could not record the failure of the last attempt");
    }
    failed.inc({ ...labels, outcome: "gave_up" });
    ctx.log.error({ reason: why, permanent }, "job given up");
    msg.term(why.slice(0, 500));
  }

  return {
    get inFlight() {
      return jobs.size;
    },
    async start() {
      const js = jetstream(o.nc);
      const consumer = await js.consumers.get(config.nats.stream, o.consumer);
      bound = consumer;
      const info = await consumer.info();
      // The consumer's settings win over ours: they decide when NATS redelivers or stops.
      if (info.config.ack_wait) ackWaitMs = millis(info.config.ack_wait);
      if (info.config.max_deliver && info.config.max_deliver > 0) maxDeliver = info.config.max_deliver;
      log.info({ consumer: o.consumer, concurrency, ackWaitMs, maxDeliver }, "pulling");
      loop = pull(consumer);
    },
    async stop() {
      stopping = true;
      slotFreed?.();
      await loop;
      const pending = [...jobs];
      if (pending.length === 0) return;
      log.info({ inFlight: pending.length, graceMs: config.functions.shutdownGraceMs }, "waiting for in-flight jobs");
      await Promise.race([Promise.all(pending.map((j) => j.done)), sleep(config.functions.shutdownGraceMs)]);
      const left = [...jobs];
      if (left.length === 0) return;
      log.warn({ inFlight: left.length }, "grace period over; aborting in-flight jobs");
      for (const j of left) j.abort.abort(new ShutdownAbort("the replica is shutting down"));
      await Promise.race([Promise.all(left.map((j) => j.done)), sleep(SETTLE_AFTER_ABORT_MS)]);
      for (const j of left) if (!j.settled) j.msg.nak();
    },
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}
