// Named queries for the VOD API: the catalogue of recordings and the broadcasts now live.
import { and, desc, eq, gte, lt, sql, type SQL } from "drizzle-orm";
import type { Db } from "./client.js";
import { recordings, streams, type RecordingStatus } from "./schema.js";

export interface RecordingFilter {
  status?: RecordingStatus;
  stream?: string;
  from?: Date;
  to?: Date;
  /** Substring of the title or the stream name, any case. */
  q?: string;
  /** Rows strictly older than this position (created_at to the microsecond, then id). */
  after?: { createdAt: string; id: string };
}

const columns = {
  id: recordings.id,
  streamId: recordings.streamId,
  userId: recordings.userId,
  title: recordings.title,
  status: recordings.status,
  progress: recordings.progress,
  error: recordings.error,
  durationSeconds: recordings.durationSeconds,
  fileSizeBytes: recordings.fileSizeBytes,
  width: recordings.width,
  height: recordings.height,
  videoCodec: recordings.videoCodec,
  audioCodec: recordings.audioCodec,
  filePath: recordings.filePath,
  thumbnailPath: recordings.thumbnailPath,
  storyboardPath: recordings.storyboardPath,
  storyboardVttPath: recordings.storyboardVttPath,
  sourcePrefix: recordings.sourcePrefix,
  playlistKey: recordings.playlistKey,
  sessionId: recordings.sessionId,
  createdAt: recordings.createdAt,
  updatedAt: recordings.updatedAt,
  /** created_at in full precision, for the next page's cursor. */
  position: sql<string>`to_char(${recordings.createdAt} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`,
};

export type CatalogRecording = NonNullable<Awaited<ReturnType<typeof getRecording>>>;

/** `%`, `_` and `\` are LIKE wildcards; a search for them means the characters themselves. */
function containsPattern(q: string): string {
  return `%${q.replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`;
}

/**
 * Newest first, keyset-paginated on (created_at, id): every filter combination walks one of the
 * (…, created_at desc, id desc) indexes, so a page deep in the list costs what the first one does.
 * Rows inserted meanwhile are newer than any cursor, so they never shift a page already being walked.
 */
export async function listRecordings(db: Db, filter: RecordingFilter, limit: number) {
  const where: SQL[] = [];
  if (filter.status) where.push(eq(recordings.status, filter.status));
  if (filter.stream) where.push(eq(recordings.streamId, filter.stream));
  if (filter.from) where.push(gte(recordings.createdAt, filter.from));
  if (filter.to) where.push(lt(recordings.createdAt, filter.to));
  // The same expression as the trigram index in migration 0001, so that index serves it.
  if (filter.q) where.push(sql`(${recordings.title} || ' ' || ${recordings.streamId}) ilike ${containsPattern(filter.q)}`);
  if (filter.after) where.push(sql`(${recordings.createdAt}, ${recordings.id}) < (${filter.after.createdAt}::timestamptz, ${filter.after.id}::uuid)`);
  return db
    .select(columns)
    .from(recordings)
    .where(and(...where))
    .orderBy(desc(recordings.createdAt), desc(recordings.id))
    .limit(limit);
}

export async function getRecording(db: Db, id: string) {
  const rows = await db.select(columns).from(recordings).where(eq(recordings.id, id)).limit(1);
  return rows[0];
}

export async function renameRecording(db: Db, id: string, title: string) {
  const rows = await db.update(recordings).set({ title, updatedAt: sql`now()` }).where(eq(recordings.id, id)).returning({ id: recordings.id });
  return rows.length > 0;
}

export async function deleteRecordingRow(db: Db, id: string) {
  const rows = await db.delete(recordings).where(eq(recordings.id, id)).returning({ id: recordings.id });
  return rows.length > 0;
}

const liveColumns = {
  stream: streams.name,
  title: sql<string | null>`coalesce(${recordings.title}, ${streams.title})`,
  sessionId: streams.currentSession,
  recordingId: streams.currentRecordingId,
  startedAt: sql<Date | null>`coalesce(${recordings.createdAt}, ${streams.lastConnectedAt})`.mapWith(recordings.createdAt),
  lastSegmentAt: streams.lastSegmentAt,
  thumbnailPath: recordings.thumbnailPath,
};

/** Streams broadcasting now, most recently started first. */
export async function listLiveBroadcasts(db: Db) {
  return db
    .select(liveColumns)
    .from(streams)
    .leftJoin(recordings, eq(recordings.id, streams.currentRecordingId))
    .where(and(eq(streams.state, "live"), sql`${streams.currentSession} is not null`))
    .orderBy(sql`coalesce(${recordings.createdAt}, ${streams.lastConnectedAt}) desc nulls last`, streams.name);
}

export async function getLiveBroadcast(db: Db, stream: string) {
  const rows = await db
    .select(liveColumns)
    .from(streams)
    .leftJoin(recordings, eq(recordings.id, streams.currentRecordingId))
    .where(and(eq(streams.name, stream), eq(streams.state, "live"), sql`${streams.currentSession} is not null`))
    .limit(1);
  return rows[0];
}

export async function pingDb(db: Db): Promise<void> {
  await db.execute(sql`select 1`);
}
