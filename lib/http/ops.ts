// The same /health, /ready and /metrics on every service (API, gateway, each function replica).
// /health answers "restart me?" and looks at nothing outside the process; /ready answers "send me
// work?" and asks each dependency, and the dependency_up gauge says the same to Prometheus.
import { HeadBucketCommand, type S3Client } from "@aws-sdk/client-s3";
import type { Hono } from "hono";
import { Gauge, type Registry } from "prom-client";
import type { NatsConnection } from "../nats.js";

export type Check = () => Promise<unknown>;

const CHECK_TIMEOUT_MS = 3000;

export interface OpsOptions {
  registry: Registry;
  /** Dependencies /ready asks, by name ("database", "objectStore", "nats"). */
  ready: Record<string, Check>;
  /** What the process itself needs to keep doing its job; failing ones make /health 503 (a restart helps). */
  live?: Record<string, Check>;
}

/** The readiness checks of the dependencies a service has: the one way each is asked. */
export function dependencyChecks(deps: { database?: () => Promise<unknown>; s3?: { client: S3Client; buckets: string[] }; nats?: () => NatsConnection | undefined }): Record<string, Check> {
  const checks: Record<string, Check> = {};
  if (deps.database) checks.database = deps.database;
  if (deps.s3) {
    const { client, buckets } = deps.s3;
    checks.objectStore = () =>
      Promise.all(
        buckets.map((Bucket) =>
          client.send(new HeadBucketCommand({ Bucket })).catch((err: Error) => {
            throw new Error(`bucket ${Bucket}: ${err.name === "NotFound" ? "missing; run make provision" : err.message}`);
          }),
        ),
      );
  }
  if (deps.nats) {
    const nats = deps.nats;
    checks.nats = async () => {
      const nc = nats();
      if (!nc || nc.isClosed()) throw new Error("not connected");
      await nc.flush();
    };
  }
  return checks;
}

/** Runs every check at once, each bounded in time: name → "ok" or why it failed. */
export async function runChecks(checks: Record<string, Check>): Promise<Record<string, string>> {
  const results = await Promise.all(
    Object.entries(checks).map(async ([name, check]) => {
      try {
        await withTimeout(check(), CHECK_TIMEOUT_MS);
        return [name, "ok"] as const;
      } catch (err) {
        return [name, (err as Error).message || "failed"] as const;
      }
    }),
  );
  return Object.fromEntries(results);
}

/** Mounts /health, /ready and /metrics on any Hono app. */
export function mountOps<A extends Hono<any, any, any>>(app: A, o: OpsOptions): A {
  const up = new Gauge({
    name: "dependency_up",
    help: "1 when the dependency answered its readiness check at the last scrape, else 0",
    labelNames: ["dependency"],
    registers: [o.registry],
    async collect() {
      const results = await runChecks(o.ready);
      for (const [dependency, r] of Object.entries(results)) this.set({ dependency }, r === "ok" ? 1 : 0);
    },
  });
  void up;
  app.get("/health", async (c) => {
    const checks = await runChecks(o.live ?? {});
    const failing = Object.values(checks).some((r) => r !== "ok");
    return c.json({ status: failing ? "unhealthy" : "ok", ...(o.live ? { checks } : {}) }, failing ? 503 : 200, { "cache-control": "no-store" });
  });
  app.get("/ready", async (c) => {
    const checks = await runChecks(o.ready);
    const failing = Object.values(checks).some((r) => r !== "ok");
    return c.json({ status: failing ? "unavailable" : "ready", checks }, failing ? 503 : 200, { "cache-control": "no-store" });
  });
  app.get("/metrics", async (c) => c.body(await o.registry.metrics(), 200, { "content-type": o.registry.contentType }));
  return app;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<T>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
