import type { Hono } from "hono";
import { serve, type ServerType } from "@hono/node-server";
import { Registry, collectDefaultMetrics } from "prom-client";
import type { Logger } from "./log.js";

/** A Prometheus registry with Node's default metrics, labelled with the service name. */
export function createMetrics(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  return registry;
}

export function listen(app: Pick<Hono<any, any, any>, "fetch">, port: number, log: Logger, host = "0.0.0.0"): Promise<ServerType> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: app.fetch, port, hostname: host }, (info) => {
      log.info({ port: info.port }, "listening");
      resolve(server);
    });
    server.once("error", reject);
  });
}

/** Runs `stop` once on SIGTERM or SIGINT; a second signal exits at once. */
export function onShutdown(log: Logger, stop: (signal: string) => Promise<void>): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(1);
    stopping = true;
    log.info({ signal }, "shutting down");
    stop(signal).then(
      () => process.exit(0),
      (err) => {
        log.error({ err: (err as Error).message }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", handler);
  process.on("SIGINT", handler);
}
