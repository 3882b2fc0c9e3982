// The owner of the streams table (who may publish, who is live): the gateway's queries. A broadcast's
// start also inserts its recording row, in the same transaction; every other recordings write is in db/recordings.ts.
import { and, asc, eq, sql } from "drizzle-orm";
import type { Db } from "./client.js";
import { recordings, streams, type Stream } from "./schema.js";

export async function listStreams(db: Db): Promise<Stream[]> {
  return db.select().from(streams).orderBy(asc(streams.name));
}

export async function getStream(db: Db, name: string): Promise<Stream | undefined> {
  const [row] = await db.select().from(streams).where(eq(streams.name, name));
  return row;
}

/** Undefined when a stream of that name exists already. */
export async function createStream(db: Db, s: { name: string; secret: string; title?: string; userId?: string }): Promise<Stream | undefined> {
  const [row] = await db
    .insert(streams)
    .values({ name: s.name, secret: s.secret, title: s.title, userId: s.userId })
    .onConflictDoNothing({ target: streams.name })
    .returning();
  return row;
}

export async function deleteStream(db: Db, name: string): Promise<boolean> {
  const rows = await db.delete(streams).where(eq(streams.name, name)).returning({ name: streams.name });
  return rows.length > 0;
}

/**
 * A broadcast begins: its recording row (status live) and the stream's state, together.
 * With ingest auth off a name may have no stream row yet; one is made with `fallbackSecret`.
 */
export async function startBroadcast(
  db: Db,
  b: { stream: string; session: string; sourcePrefix: string; title: string; fallbackSecret: string; now: Date },
): Promise<{ recordingId: string }> {
  return db.transaction(async (tx) => {
    await tx.insert(streams).values({ name: b.stream, secret: b.fallbackSecret }).onConflictDoNothing({ target: streams.name });
    const [stream] = await tx.select().from(streams).where(eq(streams.name, b.stream));
    const [rec] = await tx
      .insert(recordings)
      .values({
        streamId: b.stream,
        userId: stream?.userId,
        title: stream?.title ? `${stream.title} (${b.title})` : `${b.stream} ${b.title}`,
        status: "live",
        sourcePrefix: b.sourcePrefix,
        sessionId: b.session,
      })
      .onConflictDoUpdate({ target: recordings.sourcePrefix, set: { updatedAt: b.now } })
      .returning({ id: recordings.id });
    await tx
      .update(streams)
      .set({ state: "live", currentSession: b.session, currentRecordingId: rec!.id, lastConnectedAt: b.now, updatedAt: b.now })
      .where(eq(streams.name, b.stream));
    return { recordingId: rec!.id };
  });
}

/** A caller came back to a running session (reconnect within the grace period, or after a gateway restart). */
export async function resumeBroadcast(db: Db, b: { stream: string; session: string; recordingId: string; now: Date }): Promise<void> {
  await db
    .update(streams)
    .set({ state: "live", currentSession: b.session, currentRecordingId: b.recordingId, lastConnectedAt: b.now, updatedAt: b.now })
    .where(eq(streams.name, b.stream));
}

/** Many streams' last stored segment in one statement (the gateway batches them: one query, not one per segment). */
export async function markSegmentsStored(db: Db, marks: readonly { stream: string; at: Date }[]): Promise<void> {
  if (marks.length === 0) return;
  const rows = sql.join(marks.map((m) => sql`(${m.stream}::text, ${m.at.toISOString()}::timestamptz)`), sql`, `);
  await db.execute(sql`update ${streams} set last_segment_at = v.at from (values ${rows}) as v(name, at) where ${streams.name} = v.name`);
}

/** Back to idle, unless a newer session of the same stream has started meanwhile. */
export async function endBroadcast(db: Db, stream: string, session: string, now: Date): Promise<void> {
  await db
    .update(streams)
    .set({ state: "idle", currentSession: null, currentRecordingId: null, updatedAt: now })
    .where(and(eq(streams.name, stream), eq(streams.currentSession, session), eq(streams.state, "live")));
}

/** What PATCH /streams/{name} may change; null puts a setting back to the global one. */
export interface StreamSettings {
  title?: string | null;
  disabled?: boolean;
  maxBroadcastSeconds?: number | null;
  sourceRetention?: string | null;
  recordingRetentionDays?: number | null;
}

export async function updateStreamSettings(db: Db, name: string, s: StreamSettings): Promise<Stream | undefined> {
  const [row] = await db
    .update(streams)
    .set({ ...s, updatedAt: new Date() })
    .where(eq(streams.name, name))
    .returning();
  return row;
}

/** A new SRT passphrase; the handshake of the next connection checks it, a running one goes on. */
export async function setStreamSecret(db: Db, name: string, secret: string): Promise<Stream | undefined> {
  const [row] = await db.update(streams).set({ secret, updatedAt: new Date() }).where(eq(streams.name, name)).returning();
  return row;
}
