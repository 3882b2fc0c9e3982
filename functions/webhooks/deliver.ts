import { hostname } from "node:os";
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { Config } from "../../lib/config.js";
import type { Logger } from "../../lib/log.js";
import type { Db } from "../../db/client.js";
import { backlog, claimDueDeliveries, markAttemptFailed, markDelivered, extendClaims, releaseDeliveries, type ClaimedDelivery } from "../../db/webhooks.js";
import { backoffDelay, sleep } from "../../lib/time.js";
import { sendWebhook } from "./send.js";

// Idle endpoints are looked at this often; an event enqueued by this replica wakes the loop at once.
const POLL_MS = 250;
/** Most endpoints delivered to at once by one replica. */
const PARALLEL_ENDPOINTS = 64;
/** Deliveries of one endpoint taken at once, sent one after another in order. */
const BATCH = 20;

export interface DeliveryLoop {
  run(signal: AbortSignal): Promise<void>;
  /** New deliveries were queued: look now rather than at the next poll. */
  wake(): void;
}

/** When the next attempt comes, or null when the event has been retried for the whole window. */
export function nextAttemptAt(d: Pick<ClaimedDelivery, "attempts" | "createdAt">, config: Config["webhooks"], now = Date.now(), random = Math.random): Date | null {
  const attempt = d.attempts + 1;
  const base = backoffDelay(attempt, config.retryBaseMs, 6 * 3600_000);
  // Full jitter on half the delay: receivers coming back are not hit by every sender at once.
  const delay = base / 2 + random() * (base / 2);
  const at = now + delay;
  return at - d.createdAt.getTime() > config.retryMs ? null : new Date(at);
}

/** "24 h", "90 min", "11 s": the retry window as the reason shows it. */
export function span(ms: number): string {
  if (ms >= 3600_000) return `${+(ms / 3600_000).toFixed(1)} h`;
  if (ms >= 60_000) return `${Math.round(ms / 60_000)} min`;
  return `${Math.round(ms / 1000)} s`;
}

export function createDeliveryLoop(o: { db: Db; config: Config; log: Logger; registry: Registry; worker?: string }): DeliveryLoop {
  const worker = o.worker ?? `webhooks-${hostname()}-${process.pid}`;
  const deliveries = new Counter({ name: "webhook_deliveries_total", help: "Delivery attempts, by endpoint and outcome (delivered, retry, failed)", labelNames: ["endpoint", "outcome"], registers: [o.registry] });
  const latency = new Histogram({
    name: "webhook_delivery_latency_seconds",
    help: "From the event's creation to its successful delivery",
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60, 300, 3600],
    registers: [o.registry],
  });
  new Gauge({
    name: "webhook_deliveries_pending",
    help: "Deliveries waiting for an enabled endpoint",
    registers: [o.registry],
    async collect() {
      const b = await backlog(o.db).catch(() => undefined);
      if (b) this.set(b.pending);
    },
  });
  new Gauge({
    name: "webhook_oldest_undelivered_event_age_seconds",
    help: "Age of the oldest event not yet delivered to an enabled endpoint",
    registers: [o.registry],
    async collect() {
      const b = await backlog(o.db).catch(() => undefined);
      if (b) this.set(b.oldestSeconds);
    },
  });

  const busy = new Map<string, Promise<void>>();
  let woken: (() => void) | undefined;
  const wake = () => {
    woken?.();
    woken = undefined;
  };
  // A lease longer than one attempt can take: a replica killed mid-delivery frees its claim after it.
  const leaseMs = o.config.webhooks.timeoutMs * 3;

  /** One endpoint's claimed run, in order; after a failure the rest go back to wait behind it. */
  async function deliverRun(run: ClaimedDelivery[], signal: AbortSignal): Promise<void> {
    let extended = Date.now();
    // A success is recorded while the next request goes out (a crash before it is recorded means a resend,
    // which at-least-once allows); every record is written before the run ends.
    const writes: Promise<void>[] = [];
    try {
      for (let i = 0; i < run.length; i++) {
        if (Date.now() - extended > leaseMs / 3) {
          extended = Date.now();
          await extendClaims(o.db, run.slice(i).map((d) => d.id), worker, leaseMs);
        }
        const ok = signal.aborted ? false : await deliver(run[i]!, writes);
        if (!ok) {
          await Promise.all(writes);
          await releaseDeliveries(o.db, run.slice(signal.aborted ? i : i + 1).map((d) => d.id));
          return;
        }
        // The endpoint works again: the rest of the run need not clear its failure clock.
        for (const d of run) d.failingSince = null;
      }
    } finally {
      await Promise.all(writes);
    }
  }

  async function deliver(d: ClaimedDelivery, writes: Promise<void>[]): Promise<boolean> {
    const log = o.log.child({ endpoint: d.endpointId, event: d.eventId, type: d.eventType, attempt: d.attempts + 1 });
    const r = await sendWebhook({ url: d.url, secret: d.secret, eventId: d.eventId, body: d.body, timeoutMs: o.config.webhooks.timeoutMs, allowPrivate: o.config.webhooks.allowPrivate });
    const result = { statusCode: r.statusCode, durationMs: r.durationMs, error: r.error };
    if (r.ok) {
      writes.push(markDelivered(o.db, { ...d }, result));
      deliveries.inc({ endpoint: d.endpointId, outcome: "delivered" });
      latency.observe((Date.now() - d.eventCreatedAt.getTime()) / 1000);
      log.debug({ ms: r.durationMs }, "webhook delivered");
      return true;
    }
    const next = nextAttemptAt(d, o.config.webhooks);
    const failingFor = d.failingSince ? Date.now() - d.failingSince.getTime() : 0;
    const disable =
      next === null || failingFor >= o.config.webhooks.retryMs
        ? `disabled: every delivery failed for ${span(o.config.webhooks.retryMs)} (last: ${r.error}); fix the receiver, then PATCH enabled=true`
        : null;
    await markAttemptFailed(o.db, d, result, disable ? null : next, disable);
    deliveries.inc({ endpoint: d.endpointId, outcome: disable ? "failed" : "retry" });
    if (disable) log.error({ reason: disable }, "webhook endpoint disabled");
    else log.warn({ error: r.error, status: r.statusCode, retryAt: next?.toISOString() }, "webhook delivery failed; will retry");
    return false;
  }

  return {
    wake,
    async run(signal) {
      signal.addEventListener("abort", wake, { once: true });
      while (!signal.aborted) {
        let claimed: ClaimedDelivery[] = [];
        const free = PARALLEL_ENDPOINTS - busy.size;
        if (free > 0) {
          try {
            claimed = await claimDueDeliveries(o.db, worker, leaseMs, free, BATCH, [...busy.keys()]);
          } catch (err) {
            o.log.warn({ err: (err as Error).message }, "could not claim webhook deliveries; retrying");
          }
        }
        const runs = new Map<string, ClaimedDelivery[]>();
        for (const d of claimed) runs.set(d.endpointId, [...(runs.get(d.endpointId) ?? []), d]);
        for (const [endpoint, run] of runs) {
          const p = deliverRun(run, signal)
            .catch((err) => o.log.error({ err: (err as Error).message, endpoint }, "recording a webhook attempt failed; the claim expires and it is retried"))
            .finally(() => {
              busy.delete(endpoint);
              wake();
            });
          busy.set(endpoint, p);
        }
        if (claimed.length > 0) continue;
        await Promise.race([new Promise<void>((r) => (woken = r)), sleep(POLL_MS, { unref: true })]);
      }
      await Promise.all(busy.values());
    },
  };
}
