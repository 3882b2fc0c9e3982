import { hostname } from "node:os";
import { Hono } from "hono";
import type { ServerType } from "@hono/node-server";
import { sql } from "drizzle-orm";
import { loadConfig, type Config } from "../../lib/config.js";
import { createLogger, type Logger } from "../../lib/log.js";
import { createS3 } from "../../lib/s3.js";
import { connectNats } from "../../lib/nats.js";
import { Counter, Gauge, type Registry } from "prom-client";
import { createMetrics, listen, mountOps, onShutdown } from "../../lib/service.js";
import { createDb, closeDb, type Db } from "../../db/client.js";
import { sweep } from "../sweep/sweep.js";
import { createRunner, type Runner } from "./runner.js";
import type { GiveUp, Handler } from "./handler.js";
import type { S3Client } from "@aws-sdk/client-s3";
import type { NatsConnection } from "../../lib/nats.js";

export interface FunctionSpec {
  /** "convert", "thumbnail": names the logs and metrics. */
  name: string;
  /** Which durable consumer the function pulls from. */
  consumer: (config: Config) => string;
  handler: Handler;
  giveUp?: GiveUp;
  /** Runs once before pulling (e.g. clearing temp files a crashed replica left). */
  prepare?: (deps: { config: Config; log: Logger; worker: string }) => Promise<void>;
  /** Runs the sweep for lost events at start and every SWEEP_INTERVAL_SECONDS (default true). */
  sweep?: boolean;
}

export interface Replica {
  worker: string;
  /** The port /health and /metrics listen on (METRICS_PORT, or the one the system picked for 0). */
  port: number;
  runner: Runner;
  stop(): Promise<void>;
}

// Any constant works; it only has to be the same in every replica of every function.
const SWEEP_LOCK = 7_301_843;

/** Starts one replica of a function in this process: connections, runner, ops server, periodic sweep. */
export async function startReplica(spec: FunctionSpec, config: Config = loadConfig()): Promise<Replica> {
  const worker = config.functions.replicaId ?? `${spec.name}-${hostname()}-${process.pid}`;
  const log = createLogger(spec.name, config.logLevel).child({ worker });
  const s3 = createS3(config.s3);
  // Jobs, lease renewals and the sweep lock each take a connection at times.
  const db = createDb(config.databaseUrl, { max: config.functions.concurrency + 3 });
  const nc = await connectNats(config.nats, worker);
  await spec.prepare?.({ config, log, worker });

  const registry = createMetrics(spec.name);
  const runner = createRunner({ name: spec.name, handler: spec.handler, giveUp: spec.giveUp, nc, s3, db, log, config, consumer: spec.consumer(config), worker, registry });
  const app = mountOps(new Hono(), registry, {
    nats: async () => {
      if (nc.isClosed()) throw new Error("connection closed");
      await nc.flush();
    },
    db: async () => {
      await db.execute(sql`select 1`);
    },
  });
  const server: ServerType = await listen(app, config.functions.metricsPort, log);
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : config.functions.metricsPort;

  await runner.start();
  const sweeper = spec.sweep === false ? undefined : startSweeper({ s3, db, nc, log, config }, registry);

  let stopped: Promise<void> | undefined;
  return {
    worker,
    port,
    runner,
    stop() {
      stopped ??= (async () => {
        await sweeper?.stop();
        await runner.stop();
        await new Promise<void>((r) => server.close(() => r()));
        await nc.drain().catch(() => {});
        await closeDb(db);
        s3.destroy();
        log.info("stopped");
      })();
      return stopped;
    },
  };
}

/** The process entry of a function: one process = one replica; SIGTERM stops it gracefully. */
export async function runFunction(spec: FunctionSpec): Promise<void> {
  const config = loadConfig();
  const replica = await startReplica(spec, config);
  onShutdown(createLogger(spec.name, config.logLevel).child({ worker: replica.worker }), () => replica.stop());
}

/**
 * Sweeps for playlists whose event was lost, now and every SWEEP_INTERVAL_SECONDS. A session-level
 * advisory try-lock on a reserved connection makes one replica sweep while the others skip.
 */
function startSweeper(deps: { s3: S3Client; db: Db; nc: NatsConnection; log: Logger; config: Config }, registry: Registry): { stop(): Promise<void> } {
  const { db, log, config } = deps;
  // Only the replica holding the sweep lock reports the backlog; the others clear theirs so no stale value lingers.
  const recovered = new Counter({ name: "sweep_recovered_total", help: "Events the sweep re-published for finished playlists without an up-to-date recording", registers: [registry] });
  const oldest = new Gauge({ name: "sweep_oldest_unconverted_seconds", help: "Age of the oldest finished playlist (ENDLIST) without an up-to-date recording, at the last sweep", registers: [registry] });
  let running: Promise<void> | undefined;
  const once = async () => {
    const conn = await db.$client.reserve();
    try {
      const [row] = await conn`select pg_try_advisory_lock(${SWEEP_LOCK}) as locked`;
      if (!row?.locked) {
        oldest.reset();
        return;
      }
      try {
        const r = await sweep(deps);
        recovered.inc(r.published.length);
        oldest.set(r.oldestUnconvertedSeconds);
        log.info({ stage: "sweep", playlists: r.playlists, published: r.published.length }, "sweep done");
      } finally {
        await conn`select pg_advisory_unlock(${SWEEP_LOCK})`;
      }
    } catch (err) {
      log.warn({ stage: "sweep", err: (err as Error).message }, "sweep failed; next one at the next interval");
    } finally {
      conn.release();
    }
  };
  const tick = () => {
    running ??= once().finally(() => (running = undefined));
  };
  tick();
  const timer = setInterval(tick, config.functions.sweepIntervalMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
