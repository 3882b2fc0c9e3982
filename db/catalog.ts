// The VOD API's reads: the catalogue of recordings and the broadcasts now live. It writes nothing;
// the API's writes (rename, delete) are in db/recordings.ts, the table's owner.
import { and, eq, sql } from "drizzle-orm";
import type { Db } from "./client.js";
import { recordings, streams, type AbrRendition, type AbrStatus, type AudioTrack, type RecordingKind, type RecordingStatus, type RecordingWarning, type SubtitleTrack } from "./schema.js";

export interface RecordingFilter {
  status?: RecordingStatus;
  kind?: RecordingKind;
  /** Clips of this recording. */
  parent?: string;
  stream?: string;
  from?: Date;
  to?: Date;
  /** Substring of the title or the stream name, any case. */
  q?: string;
  /** Rows strictly older than this position (created_at to the microsecond, then id). */
  after?: { createdAt: string; id: string };
}

/** A recording as the API shows it; timestamps are ISO strings (UTC, milliseconds). */
export interface CatalogRecording {
  id: string;
  streamId: string;
  userId: string | null;
  title: string;
  status: RecordingStatus;
  progress: number;
  error: string | null;
  durationSeconds: number | null;
  fileSizeBytes: number | null;
  width: number | null;
  height: number | null;
  videoCodec: string | null;
  audioCodec: string | null;
  filePath: string | null;
  thumbnailPath: string | null;
  storyboardPath: string | null;
  storyboardVttPath: string | null;
  sourcePrefix: string;
  playlistKey: string | null;
  sessionId: string | null;
  warnings: RecordingWarning[] | null;
  audioTracks: AudioTrack[] | null;
  subtitles: SubtitleTrack[] | null;
  /** Side files beside the MP4 (subtitles), for deleting every object of the recording. */
  extraKeys: string[] | null;
  abrStatus: AbrStatus | null;
  abrProgress: number;
  abrError: string | null;
  abrMasterPath: string | null;
  abrDashPath: string | null;
  abrRenditions: AbrRendition[] | null;
  pinned: boolean;
  sourceDeletedAt: Date | null;
  sourceDeletedReason: string | null;
  createdAt: string;
  updatedAt: string;
  /** created_at to the microsecond, as PostgreSQL stores it: what a page cursor must carry. */
  position: string;
  kind: RecordingKind;
  parentId: string | null;
  clipStart: number | null;
  clipEnd: number | null;
}

export type CatalogSummary = Pick<
  CatalogRecording,
  "id" | "streamId" | "title" | "status" | "progress" | "error" | "durationSeconds" | "fileSizeBytes" | "width" | "height"
  | "thumbnailPath" | "storyboardVttPath" | "createdAt" | "updatedAt" | "position" | "kind" | "parentId" | "clipStart" | "clipEnd"
>;

// The list is the API's hottest path: it reads through postgres.js directly, without the ORM's per-row
// mapping (a fifth of the CPU of a 50-row page), and only the columns a list item shows.
function summaryColumns(pg: Db["$client"]) {
  return pg`
    id, stream_id as "streamId", title, status, progress, error,
    duration_seconds as "durationSeconds", file_size_bytes::float8 as "fileSizeBytes", width, height,
    thumbnail_path as "thumbnailPath", storyboard_vtt_path as "storyboardVttPath",
    kind, parent_id as "parentId", clip_start as "clipStart", clip_end as "clipEnd",
    to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as "createdAt",
    to_char(updated_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as "updatedAt",
    to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as position`;
}

function recordingColumns(pg: Db["$client"]) {
  return pg`
    ${summaryColumns(pg)}, user_id as "userId", video_codec as "videoCodec", audio_codec as "audioCodec",
    file_path as "filePath", storyboard_path as "storyboardPath", source_prefix as "sourcePrefix",
    playlist_key as "playlistKey", session_id as "sessionId", warnings, audio_tracks as "audioTracks", subtitles, extra_keys as "extraKeys",
    abr_status as "abrStatus", abr_progress as "abrProgress", abr_error as "abrError", abr_master_path as "abrMasterPath",
    abr_dash_path as "abrDashPath", abr_renditions as "abrRenditions",
    pinned, source_deleted_at as "sourceDeletedAt", source_deleted_reason as "sourceDeletedReason"`;
}

/** `%`, `_` and `\` are LIKE wildcards; a search for them means the characters themselves. */
function containsPattern(q: string): string {
  return `%${q.replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`;
}

/**
 * Newest first, keyset-paginated on (created_at, id): every filter combination walks one of the
 * (…, created_at desc, id desc) indexes, so a page deep in the list costs what the first one does.
 * Rows inserted meanwhile are newer than any cursor, so they never shift a page already being walked.
 */
export async function listRecordings(db: Db, filter: RecordingFilter, limit: number): Promise<CatalogSummary[]> {
  const pg = db.$client;
  const where = [];
  if (filter.status) where.push(pg`status = ${filter.status}`);
  if (filter.kind) where.push(pg`kind = ${filter.kind}`);
  if (filter.parent) where.push(pg`parent_id = ${filter.parent}::uuid`);
  if (filter.stream) where.push(pg`stream_id = ${filter.stream}`);
  if (filter.from) where.push(pg`created_at >= ${filter.from.toISOString()}::timestamptz`);
  if (filter.to) where.push(pg`created_at < ${filter.to.toISOString()}::timestamptz`);
  // The same expression as the trigram index in migration 0001, so that index serves it.
  if (filter.q) where.push(pg`(title || ' ' || stream_id) ilike ${containsPattern(filter.q)}`);
  if (filter.after) where.push(pg`(created_at, id) < (${filter.after.createdAt}::timestamptz, ${filter.after.id}::uuid)`);
  const conditions = where.length ? pg`where ${where.reduce((all, c) => pg`${all} and ${c}`)}` : pg``;
  // NULLS LAST as the indexes are built: plain DESC means NULLS FIRST, which PostgreSQL would not match
  // to those indexes (even on NOT NULL columns) and would sort the whole table instead.
  return pg<CatalogSummary[]>`
    select ${summaryColumns(pg)} from recordings ${conditions}
    order by created_at desc nulls last, id desc nulls last
    limit ${limit}`;
}

export async function getRecording(db: Db, id: string): Promise<CatalogRecording | undefined> {
  const pg = db.$client;
  const rows = await pg<CatalogRecording[]>`select ${recordingColumns(pg)} from recordings where id = ${id}::uuid`;
  return rows[0];
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
