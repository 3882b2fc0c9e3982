import { Hono } from "hono";
import { serve, type ServerType } from "@hono/node-server";
import { Registry, collectDefaultMetrics } from "prom-client";
import type { Logger } from "./log.js";

export type HealthCheck = () => Promise<void>;

/** A Prometheus registry with Node's default metrics, labelled with the service name. */
export function createMetrics(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  return registry;
}

/**
 * `/health` (200 when every check passes, 503 naming the failing ones) and `/metrics`,
 * mounted on any Hono app: the API and the gateway add theirs to their own app, functions serve only these.
 */
export function mountOps(app: Hono, registry: Registry, checks: Record<string, HealthCheck>): Hono {
  app.get("/health", async (c) => {
    const results = await Promise.all(
      Object.entries(checks).map(async ([name, check]) => {
        try {
          await withTimeout(check(), 3000);
          return [name, "ok"] as const;
        } catch (err) {
          return [name, (err as Error).message || "failed"] as const;
        }
      }),
    );
    const failing = results.filter(([, r]) => r !== "ok");
    return c.json({ status: failing.length ? "unhealthy" : "ok", checks: Object.fromEntries(results) }, failing.length ? 503 : 200);
  });
  app.get("/metrics", async (c) => c.body(await registry.metrics(), 200, { "content-type": registry.contentType }));
  return app;
}

export function listen(app: Hono, port: number, log: Logger, host = "0.0.0.0"): Promise<ServerType> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: app.fetch, port, hostname: host }, (info) => {
      log.info({ port: info.port }, "listening");
      resolve(server);
    });
    server.once("error", reject);
  });
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms).unref())]);
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
