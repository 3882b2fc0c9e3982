import { jetstream, type Consumer, type JsMsg } from "@nats-io/jetstream";
import { millis } from "@nats-io/transport-node";
import type { S3Client } from "@aws-sdk/client-s3";
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { Config } from "../../lib/config.js";
import type { Logger } from "../../lib/log.js";
import type { NatsConnection } from "../../lib/nats.js";
import type { Db } from "../../db/client.js";
import { decodeStorageEvent, type StorageEvent } from "../events/decode.js";
import { backoffDelay, sleep } from "../../lib/time.js";
import { runChecks, type Check } from "../../lib/http/ops.js";
import type { EventPublisher } from "../../lib/events.js";
import { PermanentError, TransientError, type GiveUp, type Handler, type HandlerContext, type Job } from "./handler.js";

export interface RunnerOptions {
  /** The function's name (metrics label, logs): "convert". */
  name: string;
  handler: Handler;
  giveUp?: GiveUp;
  /** Which events are work for this function; the rest are acked without running the handler. */
  accepts: (event: StorageEvent) => boolean;
  /** Another stream than the storage notifications, with its own decoding (the webhooks function's events). */
  source?: EventSource;
  nc: NatsConnection;
  s3: S3Client;
  db: Db;
  log: Logger;
  config: Config;
  /** The durable pull consumer every replica of this function shares. */
  consumer: string;
  worker: string;
  registry: Registry;
  events?: EventPublisher;
  /**
   * The services a job needs besides NATS (database, object store), as /ready checks them. A job that fails
   * while one of them is down is put back without giving up, and the replica stops pulling until it answers:
   * an outage must not spend a message's deliveries.
   */
  dependencies?: Record<string, Check>;
}

/** Where a function's events come from when they are not storage notifications: the stream, how to decode, the key to log. */
export interface EventSource {
  stream: (config: Config) => string;
  decode: (data: Uint8Array, seq: number) => StorageEvent[];
}

export interface Runner {
  /** Resolves once the consumer is bound and pulling has begun. */
  start(): Promise<void>;
  /** Stops pulling, lets in-flight jobs finish within SHUTDOWN_GRACE_SECONDS, then aborts and naks the rest. */
  stop(): Promise<void>;
  readonly inFlight: number;
}

/** The part of a JetStream message the runner uses, so a test can hand it a fake one. */
export type Delivery = Pick<JsMsg, "data" | "seq" | "ack" | "nak" | "term" | "working"> & { readonly info: Pick<JsMsg["info"], "deliveryCount"> };

interface Running {
  msg: Delivery;
  abort: AbortController;
  settled: boolean;
  done: Promise<void>;
}

// A pull that finds nothing ends after this long; it bounds how long stop() waits for the pull loop.
const PULL_EXPIRES_MS = 3000;
const RETRY_BASE_MS = 1000;
const RETRY_MAX_MS = 60_000;
const SETTLE_AFTER_ABORT_MS = 5000;
const PROGRESS_LOG_MS = 10_000;
/** While a dependency is down: how often it is asked again, and when a job put back comes again. */
const DEPENDENCY_POLL_MS = 1000;
const DEPENDENCY_RETRY_MS = 5000;

/** The reason a job is aborted when its replica shuts down: the message goes back to another replica. */
export class ShutdownAbort extends Error {
  override name = "ShutdownAbort";
}

export interface DeliveryOptions extends Pick<RunnerOptions, "name" | "handler" | "giveUp" | "accepts" | "source" | "s3" | "db" | "log" | "config" | "worker" | "registry" | "events"> {
  /** The consumer's ack_wait and max_deliver, as NATS enforces them. */
  limits: () => { ackWaitMs: number; maxDeliver: number };
  /** After a job failed (not permanently): the name of a dependency that does not answer, if any. */
  dependencyDown?: () => Promise<string | undefined>;
}

/**
 * Runs one delivery through the handler and settles it: ack when done or not work, nak with a
 * growing delay on a transient error, giveUp + term on a permanent error or the last delivery,
 * plain nak when the replica shuts down. Knows nothing of pulling, so a fake message tests it.
 */
export function createDeliveryHandler(o: DeliveryOptions): (msg: Delivery, signal: AbortSignal) => Promise<void> {
  const { log, config } = o;
  const labels = { function: o.name };
  const started = new Counter({ name: "function_jobs_started_total", help: "Jobs taken from the consumer", labelNames: ["function"], registers: [o.registry] });
  const done = new Counter({ name: "function_jobs_done_total", help: "Jobs acked, by result (done or ignored)", labelNames: ["function", "result"], registers: [o.registry] });
  const failed = new Counter({ name: "function_jobs_failed_total", help: "Jobs that failed, by outcome (retry, gave_up, released)", labelNames: ["function", "outcome"], registers: [o.registry] });
  const duration = new Histogram({ name: "function_job_duration_seconds", help: "Job duration, by result", labelNames: ["function", "result"], buckets: [0.05, 0.25, 1, 5, 15, 60, 180, 600, 1800], registers: [o.registry] });
  const progressGauge = new Gauge({ name: "function_job_progress", help: "How far each running job is (0..1), by the key of its event", labelNames: ["function", "key"], registers: [o.registry] });

  return async function handle(msg, signal) {
    const attempt = msg.info.deliveryCount;
    let events: StorageEvent[];
    try {
      events = o.source ? o.source.decode(msg.data, msg.seq) : decodeStorageEvent(msg.data);
    } catch (err) {
      log.warn({ seq: msg.seq, err: (err as Error).message }, "terminating an undecodable notification");
      msg.term((err as Error).message);
      return;
    }
    const relevant = events.filter(o.accepts);
    // The Versity gateway publishes every object of every bucket: most messages end here, cheaply.
    if (relevant.length === 0) {
      msg.ack();
      return;
    }

    const { ackWaitMs } = o.limits();
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
    let job: Job = {};
    let lastLogged = 0;
    const ctx: HandlerContext = {
      s3: o.s3,
      db: o.db,
      log: log.child({ key: current.key, attempt }),
      config,
      signal,
      attempt,
      worker: o.worker,
      events: o.events,
      redeliverAfterMs: ackWaitMs,
      async progress(fraction) {
        const f = Math.min(1, Math.max(0, fraction));
        progressGauge.set({ ...labels, key: current.key }, f);
        if (Date.now() - lastLogged >= PROGRESS_LOG_MS) {
          lastLogged = Date.now();
          ctx.log.info({ progress: Math.round(f * 1000) / 1000 }, "job progress");
        }
        if (Date.now() - lastWorking >= 1000) working();
      },
    };
    try {
      let result: "done" | "ignored" = "ignored";
      for (const event of relevant) {
        current = event;
        job = {};
        ctx.log = log.child({ key: event.key, attempt });
        try {
          const r = await o.handler(event, ctx, job);
          if (r !== "ignored") result = "done";
        } finally {
          progressGauge.remove({ ...labels, key: event.key });
        }
      }
      msg.ack();
      done.inc({ ...labels, result });
      duration.observe({ ...labels, result }, (performance.now() - t0) / 1000);
    } catch (err) {
      duration.observe({ ...labels, result: "failed" }, (performance.now() - t0) / 1000);
      await fail(msg, signal, ctx, current, job, err);
    } finally {
      clearInterval(heartbeat);
    }
  };

  async function fail(msg: Delivery, signal: AbortSignal, ctx: HandlerContext, event: StorageEvent, job: Job, err: unknown): Promise<void> {
    const reason = (err as Error)?.message || String(err);
    if (signal.aborted && signal.reason instanceof ShutdownAbort) {
      failed.inc({ ...labels, outcome: "released" });
      ctx.log.warn({ reason }, "job aborted by shutdown; released to another replica");
      msg.nak();
      return;
    }
    const { maxDeliver } = o.limits();
    const permanent = err instanceof PermanentError || (err as { kind?: string })?.kind === "permanent";
    const last = ctx.attempt >= maxDeliver;
    const down = permanent ? undefined : await o.dependencyDown?.();
    if (down) {
      // Not the job's fault: it goes back without giving up, and the runner pulls nothing more until `down` answers.
      failed.inc({ ...labels, outcome: "dependency_down" });
      ctx.log.warn({ reason, dependency: down, last }, last ? `${down} is down on the last delivery; the sweep will publish this playlist again` : `${down} is down; the job goes back until it answers`);
      msg.nak(DEPENDENCY_RETRY_MS);
      return;
    }
    if (!permanent && !last) {
      const requested = err instanceof TransientError ? err.retryAfterMs : undefined;
      const delay = requested ?? backoffDelay(ctx.attempt, RETRY_BASE_MS, RETRY_MAX_MS);
      failed.inc({ ...labels, outcome: "retry" });
      ctx.log.warn({ reason, retryInMs: delay }, "job failed; will retry");
      msg.nak(delay);
      return;
    }
    const why = permanent ? reason : `gave up after ${ctx.attempt} attempts: ${reason}`;
    try {
      await o.giveUp?.(event, why, ctx, job);
    } catch (giveUpErr) {
      // Recording the reason matters more than ending early: retry while deliveries remain.
      if (!last) {
        ctx.log.error({ reason, err: (giveUpErr as Error).message }, "could not record the failure; will retry");
        failed.inc({ ...labels, outcome: "retry" });
        msg.nak(backoffDelay(ctx.attempt, RETRY_BASE_MS, RETRY_MAX_MS));
        return;
      }
      ctx.log.error({ reason, err: (giveUpErr as Error).message }, "could not record the failure of the last attempt");
    }
    failed.inc({ ...labels, outcome: "gave_up" });
    ctx.log.error({ reason: why, permanent }, "job given up");
    msg.term(why.slice(0, 500));
  }
}

/** Binds a handler to its durable JetStream pull consumer: one runner per replica process. */
export function createRunner(o: RunnerOptions): Runner {
  const { log, config } = o;
  const concurrency = config.functions.concurrency;
  const jobs = new Set<Running>();
  let stopping = false;
  let loop: Promise<void> | undefined;
  let slotFreed: (() => void) | undefined;
  let ackWaitMs = 60_000;
  let maxDeliver = config.functions.maxDeliveries;
  const labels = { function: o.name };
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
  const paused = new Gauge({ name: "function_paused", help: "1 while the replica pulls nothing because a dependency (database, object store) does not answer", labelNames: ["function"], registers: [o.registry] });
  let down: string | undefined;
  async function dependencyDown(): Promise<string | undefined> {
    if (!o.dependencies) return undefined;
    const results = await runChecks(o.dependencies);
    const failing = Object.entries(results).find(([, r]) => r !== "ok");
    if (failing && !down) {
      down = failing[0];
      paused.set(labels, 1);
      log.warn({ dependency: failing[0], reason: failing[1] }, "a dependency does not answer; pulling paused");
    }
    return failing?.[0];
  }
  async function awaitDependencies(): Promise<void> {
    const since = Date.now();
    while (!stopping && (await dependencyDown()) !== undefined) await sleep(DEPENDENCY_POLL_MS, { unref: true });
    log.info({ dependency: down, pausedMs: Date.now() - since }, "dependencies answer again; pulling resumed");
    down = undefined;
    paused.set(labels, 0);
  }
  const handle = createDeliveryHandler({ ...o, limits: () => ({ ackWaitMs, maxDeliver }), dependencyDown });

  async function pull(consumer: Consumer): Promise<void> {
    while (!stopping) {
      if (down) {
        await awaitDependencies();
        continue;
      }
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
        await sleep(1000, { unref: true });
      }
    }
  }

  function run(msg: JsMsg): void {
    const job: Running = { msg, abort: new AbortController(), settled: false, done: Promise.resolve() };
    jobs.add(job);
    inFlight.inc(labels);
    job.done = handle(msg, job.abort.signal).finally(() => {
      job.settled = true;
      jobs.delete(job);
      inFlight.dec(labels);
      slotFreed?.();
      slotFreed = undefined;
    });
  }

  return {
    get inFlight() {
      return jobs.size;
    },
    async start() {
      const js = jetstream(o.nc);
      const consumer = await js.consumers.get(o.source?.stream(config) ?? config.nats.stream, o.consumer);
      bound = consumer;
      const info = await consumer.info();
      // The consumer's settings win over ours: they decide when NATS redelivers or stops.
      if (info.config.ack_wait) ackWaitMs = millis(info.config.ack_wait);
      // -1 is unlimited (the webhooks consumer: an event is never given up, its retries live in PostgreSQL).
      if (info.config.max_deliver) maxDeliver = info.config.max_deliver > 0 ? info.config.max_deliver : Number.POSITIVE_INFINITY;
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
      await Promise.race([Promise.all(pending.map((j) => j.done)), sleep(config.functions.shutdownGraceMs, { unref: true })]);
      const left = [...jobs];
      if (left.length === 0) return;
      log.warn({ inFlight: left.length }, "grace period over; aborting in-flight jobs");
      for (const j of left) j.abort.abort(new ShutdownAbort("the replica is shutting down"));
      await Promise.race([Promise.all(left.map((j) => j.done)), sleep(SETTLE_AFTER_ABORT_MS, { unref: true })]);
      for (const j of left) if (!j.settled) j.msg.nak();
    },
  };
}

