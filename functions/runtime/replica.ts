import { hostname } from "node:os";
import { Hono } from "hono";
import type { ServerType } from "@hono/node-server";
import { loadConfig, type Config } from "../../lib/config.js";
import { createLogger, type Logger } from "../../lib/log.js";
import { createS3 } from "../../lib/s3.js";
import { connectNats } from "../../lib/nats.js";
import { createMetrics, listen, onShutdown } from "../../lib/service.js";
import { dependencyChecks, mountOps } from "../../lib/http/ops.js";
import { createDb, closeDb, ping, type Db } from "../../db/client.js";
import type { StorageEvent } from "../events/decode.js";
import { createEventPublisher, type EventPublisher } from "../../lib/events.js";
import { createRunner, type EventSource, type Runner } from "./runner.js";
import type { GiveUp, Handler } from "./handler.js";
import type { S3Client } from "@aws-sdk/client-s3";
import type { Registry } from "prom-client";
import type { NatsConnection } from "../../lib/nats.js";

/** What a function's background tasks get: the replica's connections and a signal that ends them. */
export interface BackgroundDeps {
  config: Config;
  log: Logger;
  s3: S3Client;
  db: Db;
  nc: NatsConnection;
  worker: string;
  /** The replica's /metrics registry, for what a task counts (the sweep's backlog). */
  registry: Registry;
  /** The replica's event publisher (recording.deleted from the retention job). */
  events: EventPublisher;
  /** Aborted when the replica stops: each task returns soon after. */
  signal: AbortSignal;
}

export interface FunctionSpec<S = unknown> {
  /** "convert", "thumbnail": names the logs and metrics. */
  name: string;
  /** Which durable consumer the function pulls from. */
  consumer: (config: Config) => string;
  /** Which events are work; the runner acks the others without calling the handler. */
  accepts: (event: StorageEvent, config: Config) => boolean;
  handler: Handler<S>;
  giveUp?: GiveUp<S>;
  /** Pulls from another stream than the storage notifications (the events stream), decoded its own way. */
  source?: EventSource;
  /** Runs once before pulling (e.g. clearing temp files a crashed replica left). */
  prepare?: (deps: { config: Config; log: Logger; worker: string }) => Promise<void>;
  /** Long-running tasks the function owns (convert's sweep): started after pulling begins, awaited on stop. */
  background?: (deps: BackgroundDeps) => Array<() => Promise<void>>;
}

export interface Replica {
  worker: string;
  /** The port /health, /ready and /metrics listen on (METRICS_PORT, or the one the system picked for 0). */
  port: number;
  runner: Runner;
  stop(): Promise<void>;
}

/** Starts one replica of a function in this process: connections, runner, ops server, background tasks. */
export async function startReplica<S>(spec: FunctionSpec<S>, config: Config = loadConfig()): Promise<Replica> {
  const worker = config.functions.replicaId ?? `${spec.name}-${hostname()}-${process.pid}`;
  const log = createLogger(spec.name, config.logLevel).child({ worker });
  const s3 = createS3(config.s3);
  // Jobs, lease renewals and the sweep lock each take a connection at times.
  const db = createDb(config.databaseUrl, { max: config.functions.concurrency + 3 });
  const nc = await connectNats(config.nats, worker);
  await spec.prepare?.({ config, log, worker });

  const registry = createMetrics(spec.name);
  const events = createEventPublisher({ nats: () => nc, config, log, registry });
  const checks = dependencyChecks({ database: () => ping(db), s3: { client: s3, buckets: [config.s3.hlsBucket, config.s3.recordingsBucket] }, nats: () => nc });
  const runner = createRunner({
    name: spec.name,
    handler: spec.handler as Handler,
    giveUp: spec.giveUp as GiveUp | undefined,
    accepts: (e) => spec.accepts(e, config),
    source: spec.source,
    nc,
    s3,
    db,
    log,
    config,
    consumer: spec.consumer(config),
    worker,
    registry,
    events,
    dependencies: { database: checks.database!, objectStore: checks.objectStore! },
  });
  const app = mountOps(new Hono(), { registry, ready: checks });
  const server: ServerType = await listen(app, config.functions.metricsPort, log);
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : config.functions.metricsPort;

  await runner.start();
  const stopBackground = new AbortController();
  const tasks = (spec.background?.({ config, log, s3, db, nc, worker, registry, events, signal: stopBackground.signal }) ?? []).map((task) =>
    task().catch((err) => log.error({ err: (err as Error).message }, "a background task ended with an error")),
  );

  let stopped: Promise<void> | undefined;
  return {
    worker,
    port,
    runner,
    stop() {
      stopped ??= (async () => {
        stopBackground.abort();
        await Promise.all(tasks);
        await runner.stop();
        await events.flush();
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
export async function runFunction<S>(spec: FunctionSpec<S>): Promise<void> {
  const config = loadConfig();
  const replica = await startReplica(spec, config);
  onShutdown(createLogger(spec.name, config.logLevel).child({ worker: replica.worker }), () => replica.stop());
}
