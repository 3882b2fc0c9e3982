import { HeadBucketCommand } from "@aws-sdk/client-s3";
import type { Hono } from "hono";
import { pingDb } from "../../db/catalog.js";
import type { ApiDeps } from "./deps.js";

const CHECK_TIMEOUT_MS = 3000;

function within<T>(p: Promise<T>, ms: number): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms).unref())]);
}

/** `/ready`: 200 when the database, both buckets and NATS answer; 503 naming the ones that do not. */
export function mountReady(app: Hono, deps: ApiDeps): void {
  const { db, s3, nats, config } = deps;
  const checks: Record<string, () => Promise<unknown>> = {
    database: () => pingDb(db),
    objectStore: () =>
      Promise.all([config.s3.hlsBucket, config.s3.recordingsBucket].map((Bucket) => s3.send(new HeadBucketCommand({ Bucket })).catch((err: Error) => {
        throw new Error(`bucket ${Bucket}: ${err.name === "NotFound" ? "missing; run make provision" : err.message}`);
      }))),
    nats: async () => {
      const nc = nats?.();
      if (!nc || nc.isClosed()) throw new Error("not connected");
      await nc.flush();
    },
  };
  app.get("/ready", async (c) => {
    const results = await Promise.all(
      Object.entries(checks).map(async ([name, check]) => {
        try {
          await within(check(), CHECK_TIMEOUT_MS);
          return [name, "ok"] as const;
        } catch (err) {
          return [name, (err as Error).message || "failed"] as const;
        }
      }),
    );
    const failing = results.some(([, r]) => r !== "ok");
    return c.json({ status: failing ? "unavailable" : "ready", checks: Object.fromEntries(results) }, failing ? 503 : 200, { "cache-control": "no-store" });
  });
}
