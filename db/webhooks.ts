// The webhook tables' queries: endpoints (the API), deliveries and attempts (the webhooks function).
import { and, asc, desc, eq, inArray, lte, sql } from "drizzle-orm";
import type { Db } from "./client.js";
import { webhookAttempts, webhookDeliveries, webhookEndpoints, type WebhookDelivery, type WebhookEndpoint } from "./schema.js";

export async function listEndpoints(db: Db): Promise<WebhookEndpoint[]> {
  return db.select().from(webhookEndpoints).orderBy(asc(webhookEndpoints.createdAt), asc(webhookEndpoints.id));
}

export async function getEndpoint(db: Db, id: string): Promise<WebhookEndpoint | undefined> {
  const [row] = await db.select().from(webhookEndpoints).where(eq(webhookEndpoints.id, id));
  return row;
}

export async function createEndpoint(db: Db, e: { url: string; events: string[] | null; description: string | null; secret: string }): Promise<WebhookEndpoint> {
  const [row] = await db.insert(webhookEndpoints).values(e).returning();
  return row!;
}

/** Re-enabling clears the reason and the failure clock. */
export async function updateEndpoint(db: Db, id: string, p: { url?: string; events?: string[] | null; enabled?: boolean }): Promise<WebhookEndpoint | undefined> {
  const set: Partial<typeof webhookEndpoints.$inferInsert> = { updatedAt: new Date() };
  if (p.url !== undefined) set.url = p.url;
  if (p.events !== undefined) set.events = p.events;
  if (p.enabled !== undefined) set.enabled = p.enabled;
  if (p.enabled === true) Object.assign(set, { disabledReason: null, failingSince: null });
  const [row] = await db.update(webhookEndpoints).set(set).where(eq(webhookEndpoints.id, id)).returning();
  return row;
}

export async function rotateEndpointSecret(db: Db, id: string, secret: string): Promise<WebhookEndpoint | undefined> {
  const [row] = await db.update(webhookEndpoints).set({ secret, updatedAt: new Date() }).where(eq(webhookEndpoints.id, id)).returning();
  return row;
}

export async function deleteEndpoint(db: Db, id: string): Promise<boolean> {
  const rows = await db.delete(webhookEndpoints).where(eq(webhookEndpoints.id, id)).returning({ id: webhookEndpoints.id });
  return rows.length > 0;
}

export interface NewDelivery {
  eventId: string;
  eventType: string;
  eventSeq: number;
  orderKey: string;
  eventCreatedAt: Date;
  body: string;
}

/**
 * Queues one event for every enabled endpoint that wants its type, in one statement; a redelivered
 * event adds nothing (one row per endpoint and event). Returns how many rows were added.
 */
export async function enqueueDeliveries(db: Db, d: NewDelivery): Promise<number> {
  const rows = await db.execute<{ id: number }>(sql`
    insert into webhook_deliveries (endpoint_id, event_id, event_type, event_seq, order_key, event_created_at, body)
    select e.id, ${d.eventId}, ${d.eventType}, ${d.eventSeq}, ${d.orderKey}, ${d.eventCreatedAt.toISOString()}::timestamptz, ${d.body}
    from webhook_endpoints e
    where e.enabled and (e.events is null or ${d.eventType} = any(e.events))
    on conflict (endpoint_id, event_id) do nothing
    returning id`);
  return [...rows].length;
}

export type ClaimedDelivery = WebhookDelivery & { url: string; secret: string; failingSince: Date | null };

/**
 * Takes, for up to `limit` endpoints, their oldest pending deliveries (up to `batch` each, in event order) when
 * the oldest is due and nobody holds one of that endpoint: one holder per endpoint keeps its events in order,
 * and a slow endpoint holds only its own queue.
 */
export async function claimDueDeliveries(db: Db, worker: string, leaseMs: number, limit: number, batch: number, skipEndpoints: string[]): Promise<ClaimedDelivery[]> {
  const skip = skipEndpoints.length ? sql`and d.endpoint_id not in (${sql.join(skipEndpoints.map((id) => sql`${id}::uuid`), sql`, `)})` : sql``;
  const result = await db.execute<{ id: number }>(sql`
    with heads as (
      select distinct on (d.endpoint_id) d.endpoint_id, d.next_attempt_at, d.claim_expires_at
      from webhook_deliveries d join webhook_endpoints e on e.id = d.endpoint_id
      where d.status = 'pending' and e.enabled ${skip}
      order by d.endpoint_id, d.event_seq, d.id
    ), due as (
      select endpoint_id from heads
      where next_attempt_at <= now() and (claim_expires_at is null or claim_expires_at < now())
      order by next_attempt_at limit ${limit}
    ), picked as (
      select b.id from due cross join lateral (
        select d.id from webhook_deliveries d where d.endpoint_id = due.endpoint_id and d.status = 'pending'
        order by d.event_seq, d.id limit ${batch}
      ) b
    )
    update webhook_deliveries d set claimed_by = ${worker}, claim_expires_at = now() + ${`${leaseMs} milliseconds`}::interval
    from picked where d.id = picked.id and (d.claim_expires_at is null or d.claim_expires_at < now()) and d.status = 'pending'
    returning d.id`);
  const ids = [...result].map((r) => Number(r.id));
  if (ids.length === 0) return [];
  const rows = await db
    .select({ d: webhookDeliveries, url: webhookEndpoints.url, secret: webhookEndpoints.secret, failingSince: webhookEndpoints.failingSince })
    .from(webhookDeliveries)
    .innerJoin(webhookEndpoints, eq(webhookEndpoints.id, webhookDeliveries.endpointId))
    .where(inArray(webhookDeliveries.id, ids))
    .orderBy(asc(webhookDeliveries.eventSeq), asc(webhookDeliveries.id));
  return rows.map((r) => ({ ...r.d, url: r.url, secret: r.secret, failingSince: r.failingSince }));
}

/** Keeps a long run's claims alive while it is still being worked through. */
export async function extendClaims(db: Db, ids: number[], worker: string, leaseMs: number): Promise<void> {
  if (ids.length === 0) return;
  await db
    .update(webhookDeliveries)
    .set({ claimExpiresAt: sql`now() + ${`${leaseMs} milliseconds`}::interval` })
    .where(and(inArray(webhookDeliveries.id, ids), eq(webhookDeliveries.claimedBy, worker), eq(webhookDeliveries.status, "pending")));
}

/** Hands claimed deliveries back unattempted (their endpoint's earlier one failed): they wait behind it. */
export async function releaseDeliveries(db: Db, ids: number[]): Promise<void> {
  if (ids.length === 0) return;
  await db.update(webhookDeliveries).set({ claimedBy: null, claimExpiresAt: null }).where(and(inArray(webhookDeliveries.id, ids), eq(webhookDeliveries.status, "pending")));
}

export interface AttemptResult {
  statusCode: number | null;
  durationMs: number;
  error: string | null;
}

export async function markDelivered(db: Db, d: ClaimedDelivery, r: AttemptResult): Promise<void> {
  // One statement: the delivery row and its attempt together, without a transaction's extra round trips.
  await db.execute(sql`
    with done as (
      update webhook_deliveries set status = 'delivered', attempts = attempts + 1, delivered_at = now(), claimed_by = null, claim_expires_at = null
      where id = ${d.id} returning id, endpoint_id, event_id, event_type, attempts
    )
    insert into webhook_attempts (delivery_id, endpoint_id, event_id, event_type, attempt, status_code, duration_ms, error)
    select id, endpoint_id, event_id, event_type, attempts, ${r.statusCode}, ${r.durationMs}, ${r.error} from done`);
  if (d.failingSince) await db.update(webhookEndpoints).set({ failingSince: null }).where(eq(webhookEndpoints.id, d.endpointId));
}

/** A failed attempt: retried at `nextAttemptAt`, or given up (null), and the endpoint disabled when `disableReason` says so. */
export async function markAttemptFailed(db: Db, d: ClaimedDelivery, r: AttemptResult, nextAttemptAt: Date | null, disableReason: string | null): Promise<void> {
  await db.transaction(async (tx) => {
    await tx
      .update(webhookDeliveries)
      .set({ status: nextAttemptAt ? "pending" : "failed", attempts: d.attempts + 1, nextAttemptAt: nextAttemptAt ?? new Date(), claimedBy: null, claimExpiresAt: null })
      .where(eq(webhookDeliveries.id, d.id));
    await tx.insert(webhookAttempts).values({ deliveryId: d.id, endpointId: d.endpointId, eventId: d.eventId, eventType: d.eventType, attempt: d.attempts + 1, ...r, nextRetryAt: nextAttemptAt });
    await tx.update(webhookEndpoints).set({ failingSince: sql`coalesce(${webhookEndpoints.failingSince}, now())` }).where(eq(webhookEndpoints.id, d.endpointId));
    if (disableReason) {
      await tx.update(webhookEndpoints).set({ enabled: false, disabledReason: disableReason, updatedAt: new Date() }).where(eq(webhookEndpoints.id, d.endpointId));
      await tx
        .update(webhookDeliveries)
        .set({ status: "failed", claimedBy: null, claimExpiresAt: null })
        .where(and(eq(webhookDeliveries.endpointId, d.endpointId), eq(webhookDeliveries.status, "pending")));
    }
  });
}

/** Recent attempts of one endpoint, newest first. */
export async function recentAttempts(db: Db, endpointId: string, limit: number) {
  return db.select().from(webhookAttempts).where(eq(webhookAttempts.endpointId, endpointId)).orderBy(desc(webhookAttempts.at), desc(webhookAttempts.id)).limit(limit);
}

/** Pending deliveries of enabled endpoints and the age of the oldest event among them (metrics). */
export async function backlog(db: Db): Promise<{ pending: number; oldestSeconds: number }> {
  const [row] = await db
    .select({
      pending: sql<number>`count(*)::int`,
      oldest: sql<number | null>`extract(epoch from now() - min(${webhookDeliveries.eventCreatedAt}))::float8`,
    })
    .from(webhookDeliveries)
    .innerJoin(webhookEndpoints, eq(webhookEndpoints.id, webhookDeliveries.endpointId))
    .where(and(eq(webhookDeliveries.status, "pending"), eq(webhookEndpoints.enabled, true), lte(webhookDeliveries.createdAt, sql`now()`)));
  return { pending: row?.pending ?? 0, oldestSeconds: row?.oldest ?? 0 };
}

/** POST /webhooks/{id}/test: the sent test event and its one attempt, so it shows in the delivery log. */
export async function recordTestDelivery(db: Db, endpointId: string, e: { eventId: string; body: string; createdAt: Date }, r: AttemptResult & { ok: boolean }): Promise<void> {
  await db.transaction(async (tx) => {
    const [row] = await tx
      .insert(webhookDeliveries)
      .values({ endpointId, eventId: e.eventId, eventType: "webhook.test", eventSeq: 0, orderKey: `test:${endpointId}`, eventCreatedAt: e.createdAt, body: e.body, status: r.ok ? "delivered" : "failed", attempts: 1, deliveredAt: r.ok ? new Date() : null })
      .returning({ id: webhookDeliveries.id });
    await tx.insert(webhookAttempts).values({ deliveryId: row!.id, endpointId, eventId: e.eventId, eventType: "webhook.test", attempt: 1, statusCode: r.statusCode, durationMs: r.durationMs, error: r.error });
  });
}
