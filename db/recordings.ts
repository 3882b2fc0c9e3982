import { and, eq, gte, inArray, isNotNull, isNull, ne, or, sql } from "drizzle-orm";
import type { Db } from "./client.js";
import { recordings, streams, type AbrRendition, type AudioTrack, type Recording, type RecordingWarning, type SubtitleTrack } from "./schema.js";

// The one owner of the recordings table: every query that writes it lives here, whoever calls it
// (convert, thumbnail, the API, the gateway), beside the reads of the functions that write it.
// Only startBroadcast (db/streams.ts) also inserts a row, in one transaction with its stream's state.
//
// The recording lifecycle as convert drives it: claim a folder (a lease), report progress (renewing
// the lease), then ready or failed. Every write after the claim is conditional on holding it, so a
// replica that lost its lease (stalled, or taken over after a crash) cannot overwrite the new holder.

export interface ClaimRequest {
  sourcePrefix: string;
  /** The media playlist being converted and its ETag: together they are the version of the folder. */
  playlistKey: string;
  playlistEtag: string;
  /** Used only when the row is new (a dropped folder): broadcasts already have theirs from the gateway. */
  streamId: string;
  title: string;
  /** Unique per job, so two jobs of one replica never share a claim. */
  claimToken: string;
  leaseMs: number;
}

export type ClaimResult =
  | { kind: "claimed"; recording: Recording }
  /** This version is already converted. */
  | { kind: "ready"; recording: Recording }
  /** Another job holds a live lease on the folder; retry after it ends. */
  | { kind: "busy"; recording: Recording; retryAfterMs: number };

/**
 * Takes the folder's row (creating it, or taking over a `live` row from the gateway) unless the same
 * playlist version is already ready or another job holds an unexpired lease. One statement, so two
 * replicas racing for the same folder cannot both win.
 */
export async function claimRecording(db: Db, c: ClaimRequest): Promise<ClaimResult> {
  const lease = sql`now() + ${c.leaseMs} * interval '1 millisecond'`;
  const claimed = await db
    .insert(recordings)
    .values({
      streamId: c.streamId,
      title: c.title,
      sourcePrefix: c.sourcePrefix,
      playlistKey: c.playlistKey,
      playlistEtag: c.playlistEtag,
      status: "processing",
      progress: 0,
      claimedBy: c.claimToken,
      claimExpiresAt: lease,
      attempts: 1,
    })
    .onConflictDoUpdate({
      target: recordings.sourcePrefix,
      set: {
        status: "processing",
        playlistKey: c.playlistKey,
        playlistEtag: c.playlistEtag,
        progress: 0,
        error: null,
        claimedBy: c.claimToken,
        claimExpiresAt: lease,
        attempts: sql`${recordings.attempts} + 1`,
        // A new MP4 needs a new ladder: the package function makes it again on the next recording.ready.
        abrStatus: sql`case when ${recordings.abrStatus} is null then null else 'pending' end`,
        updatedAt: sql`now()`,
      },
      setWhere: sql`not (${recordings.status} = 'ready' and ${recordings.playlistKey} = ${c.playlistKey} and ${recordings.playlistEtag} = ${c.playlistEtag})
        and (${recordings.claimedBy} is null or ${recordings.claimExpiresAt} < now())`,
    })
    .returning();
  if (claimed[0]) return { kind: "claimed", recording: claimed[0] };

  const [row] = await db
    .select({ r: recordings, waitMs: sql<number>`greatest(0, extract(epoch from (${recordings.claimExpiresAt} - now())) * 1000)::float8` })
    .from(recordings)
    .where(eq(recordings.sourcePrefix, c.sourcePrefix));
  if (!row) throw new Error(`recording for ${c.sourcePrefix} vanished while claiming it`);
  if (row.r.status === "ready" && row.r.playlistKey === c.playlistKey && row.r.playlistEtag === c.playlistEtag) return { kind: "ready", recording: row.r };
  return { kind: "busy", recording: row.r, retryAfterMs: Math.ceil(Number(row.waitMs ?? 0)) };
}

/** Records progress and extends the lease; false when the lease was lost (the job must stop). */
export async function markProgress(db: Db, id: string, claimToken: string, leaseMs: number, progress?: number): Promise<boolean> {
  const rows = await db
    .update(recordings)
    .set({
      claimExpiresAt: sql`now() + ${leaseMs} * interval '1 millisecond'`,
      ...(progress === undefined ? {} : { progress: Math.min(1, Math.max(0, progress)) }),
      updatedAt: sql`now()`,
    })
    .where(and(eq(recordings.id, id), eq(recordings.claimedBy, claimToken)))
    .returning({ id: recordings.id });
  return rows.length > 0;
}

export interface ReadyFacts {
  filePath: string;
  fileSizeBytes: number;
  durationSeconds: number;
  width: number | null;
  height: number | null;
  videoCodec: string | null;
  audioCodec: string | null;
  warnings: RecordingWarning[];
  audioTracks: AudioTrack[];
  subtitles: SubtitleTrack[];
  extraKeys: string[];
  /** Bytes of the source segments, for usage. */
  sourceBytes?: number;
}

/** The MP4 is fully uploaded: ready, lease released. False when the lease was lost meanwhile. */
export async function markReady(db: Db, id: string, claimToken: string, facts: ReadyFacts): Promise<boolean> {
  const rows = await db
    .update(recordings)
    .set({ ...facts, status: "ready", progress: 1, error: null, claimedBy: null, claimExpiresAt: null, readyAt: sql`now()`, updatedAt: sql`now()` })
    .where(and(eq(recordings.id, id), eq(recordings.claimedBy, claimToken)))
    .returning({ id: recordings.id });
  return rows.length > 0;
}

/** Gives the lease back without a verdict (shutdown): the next delivery takes the folder at once. */
export async function releaseClaim(db: Db, id: string, claimToken: string): Promise<void> {
  await db
    .update(recordings)
    .set({ claimedBy: null, claimExpiresAt: null, updatedAt: sql`now()` })
    .where(and(eq(recordings.id, id), eq(recordings.claimedBy, claimToken)));
}

export interface FailRequest {
  sourcePrefix: string;
  /** The playlist the failure is about (the event's, or the media playlist being converted). */
  playlistKey: string;
  error: string;
  /** The failing job's claim, when it had one. */
  claimToken?: string;
  streamId: string;
  title: string;
}

/**
 * Marks the folder failed with a reason a user can act on, creating the row when the failure came
 * before any claim (not a playlist). Leaves alone a folder another job is working on, and a ready or
 * live recording that a different playlist (say, a stray .m3u8 dropped beside it) has nothing to do with.
 * Returns whether a row was written.
 */
export async function markFailed(db: Db, f: FailRequest): Promise<boolean> {
  const rows = await db
    .insert(recordings)
    .values({ streamId: f.streamId, title: f.title, sourcePrefix: f.sourcePrefix, playlistKey: f.playlistKey, status: "failed", error: f.error })
    .onConflictDoUpdate({
      target: recordings.sourcePrefix,
      set: { status: "failed", error: f.error, playlistKey: f.playlistKey, claimedBy: null, claimExpiresAt: null, updatedAt: sql`now()` },
      setWhere: sql`(${recordings.claimedBy} is null or ${recordings.claimExpiresAt} < now() or ${recordings.claimedBy} = ${f.claimToken ?? ""})
        and (${recordings.status} in ('processing', 'failed') or ${recordings.playlistKey} = ${f.playlistKey})`,
    })
    .returning({ id: recordings.id });
  return rows.length > 0;
}

/** Whether a job holds the folder's recording right now (a conversion in progress, whose upload is not a stray). */
export async function recordingClaimed(db: Db, sourcePrefix: string): Promise<boolean> {
  const [row] = await db.select({ id: recordings.id }).from(recordings).where(and(eq(recordings.sourcePrefix, sourcePrefix), sql`${recordings.claimExpiresAt} > now()`)).limit(1);
  return Boolean(row);
}

export async function getRecordingBySourcePrefix(db: Db, sourcePrefix: string): Promise<Recording | undefined> {
  const [row] = await db.select().from(recordings).where(eq(recordings.sourcePrefix, sourcePrefix));
  return row;
}

/**
 * Removes recordings made from a master's variant playlists on their own, before the master landed
 * (folders dropped in any order): the folder's one recording is the master's. Returns what they stored.
 */
export async function deleteVariantRecordings(db: Db, masterPrefix: string, variants: { sourcePrefix: string; playlistKey: string }[]): Promise<Recording[]> {
  const others = variants.filter((v) => v.sourcePrefix !== masterPrefix);
  if (others.length === 0) return [];
  return db
    .delete(recordings)
    .where(and(ne(recordings.sourcePrefix, masterPrefix), or(...others.map((v) => and(eq(recordings.sourcePrefix, v.sourcePrefix), eq(recordings.playlistKey, v.playlistKey))))))
    .returning();
}

export async function recordingExists(db: Db, id: string): Promise<boolean> {
  const rows = await db.select({ id: recordings.id }).from(recordings).where(eq(recordings.id, id));
  return rows.length > 0;
}

// Thumbnail's writes.

/**
 * Makes sure the source prefix has its recording row, as convert's claim would create it (status `processing`,
 * stream_id = the source prefix, title = convert's name for it). An existing row, whoever made it, is left as it is.
 */
export async function ensureRecordingFor(db: Db, sourcePrefix: string, title: string): Promise<void> {
  await db
    .insert(recordings)
    .values({ sourcePrefix, streamId: sourcePrefix, title, status: "processing" })
    .onConflictDoNothing({ target: recordings.sourcePrefix });
}

// The two updates below write thumbnail columns only: never status, error or updated_at, which belong to
// convert (the sweep reads updated_at to tell whether a recording is newer than its playlist).

export async function setPoster(db: Db, sourcePrefix: string, thumbnailPath: string): Promise<void> {
  await db.update(recordings).set({ thumbnailPath }).where(eq(recordings.sourcePrefix, sourcePrefix));
}

export async function setStoryboard(db: Db, sourcePrefix: string, storyboardPath: string, storyboardVttPath: string): Promise<void> {
  await db.update(recordings).set({ storyboardPath, storyboardVttPath }).where(eq(recordings.sourcePrefix, sourcePrefix));
}

export async function thumbnailFields(db: Db, sourcePrefix: string) {
  const rows = await db
    .select({ thumbnailPath: recordings.thumbnailPath, storyboardPath: recordings.storyboardPath, storyboardVttPath: recordings.storyboardVttPath })
    .from(recordings)
    .where(eq(recordings.sourcePrefix, sourcePrefix));
  return rows[0];
}

// Which recordings a playlist belongs to (convert's giveUp, the sweep).

/** The source prefixes a playlist key may belong to, deepest first: `a/b/c/index.m3u8` → `a/b/c`, `a/b`, `a`. */
export function ancestorPrefixes(key: string): string[] {
  const parts = key.split("/").slice(0, -1);
  const out: string[] = [];
  for (let i = parts.length; i > 0; i--) out.push(parts.slice(0, i).join("/"));
  return out;
}

/** Recordings whose source prefix holds this playlist (a variant playlist belongs to its master's prefix). */
export async function recordingsCoveringPlaylist(db: Db, playlistKey: string) {
  const prefixes = ancestorPrefixes(playlistKey);
  if (prefixes.length === 0) prefixes.push("");
  return db
    .select({
      id: recordings.id,
      sourcePrefix: recordings.sourcePrefix,
      status: recordings.status,
      playlistKey: recordings.playlistKey,
      playlistEtag: recordings.playlistEtag,
      updatedAt: recordings.updatedAt,
      sourceDeletedAt: recordings.sourceDeletedAt,
    })
    .from(recordings)
    .where(inArray(recordings.sourcePrefix, prefixes));
}

// The API's writes.

export async function renameRecording(db: Db, id: string, title: string) {
  const rows = await db.update(recordings).set({ title, updatedAt: sql`now()` }).where(eq(recordings.id, id)).returning({ id: recordings.id });
  return rows.length > 0;
}

/** Pins (kept regardless of retention) or unpins: "deleting" once retention has claimed it, "missing" when there is no such recording. */
export async function setPinned(db: Db, id: string, pinned: boolean): Promise<"set" | "deleting" | "missing"> {
  const rows = await db
    .update(recordings)
    .set({ pinned, updatedAt: sql`now()` })
    .where(and(eq(recordings.id, id), isNull(recordings.deletingSince)))
    .returning({ id: recordings.id });
  if (rows.length > 0) return "set";
  const [held] = await db.select({ id: recordings.id }).from(recordings).where(eq(recordings.id, id));
  return held ? "deleting" : "missing";
}

export async function deleteRecordingRow(db: Db, id: string) {
  const rows = await db.delete(recordings).where(eq(recordings.id, id)).returning({ id: recordings.id });
  return rows.length > 0;
}

// The gateway's writes and crash recovery's reads.

/** A broadcast that never stored a segment has nothing to convert: say so on its row. */
export async function failEmptyRecording(db: Db, recordingId: string, error: string): Promise<void> {
  await db
    .update(recordings)
    .set({ status: "failed", error, updatedAt: new Date() })
    .where(and(eq(recordings.id, recordingId), eq(recordings.status, "live")));
}

/** Broadcasts the gateway started and never finished (it stopped or crashed): crash recovery's work list. */
export async function unfinishedBroadcasts(db: Db) {
  return db
    .select({ id: recordings.id, stream: recordings.streamId, session: recordings.sessionId, sourcePrefix: recordings.sourcePrefix, createdAt: recordings.createdAt })
    .from(recordings)
    .where(and(eq(recordings.status, "live"), isNotNull(recordings.sessionId)));
}

/** The drop command's wait: the prefix's recording once it changed since `since` or is ready for one of these playlist versions. */
export async function recordingOfDrop(db: Db, sourcePrefix: string, since: Date, etags: string[]): Promise<Recording | undefined> {
  const changed = gte(recordings.updatedAt, since);
  const readyVersion = etags.length ? or(changed, and(eq(recordings.status, "ready"), inArray(recordings.playlistEtag, etags))) : changed;
  const [row] = await db.select().from(recordings).where(and(eq(recordings.sourcePrefix, sourcePrefix), readyVersion));
  return row;
}

// The retention job's reads and writes. A stream's own setting wins over the global one; a dropped
// folder has no stream row and follows the global one.

/** When retention counts from: rows made before ready_at existed count from their last change. */
const readySince = sql`coalesce(${recordings.readyAt}, ${recordings.updatedAt})`;
/** Days as SQL: the stream's override, else the global value. */
const recordingDays = (globalDays: number) => sql<number>`coalesce(${streams.recordingRetentionDays}, ${globalDays}::float8)`;
/** keep → null (never), delete → 0, else the number of days. */
const sourceDays = (globalMode: string) => {
  const mode = sql`coalesce(${streams.sourceRetention}, ${globalMode}::text)`;
  return sql<number | null>`(case ${mode} when 'keep' then null when 'delete' then 0 else (${mode})::float8 end)`;
};

/** Ready, unpinned recordings whose retention has run out, oldest first, at most `limit`. */
export async function recordingsDueForDeletion(db: Db, o: { globalDays: number; limit: number }) {
  const days = recordingDays(o.globalDays);
  return db
    .select({ recording: recordings, days })
    .from(recordings)
    .leftJoin(streams, eq(streams.name, recordings.streamId))
    .where(
      and(
        eq(recordings.status, "ready"),
        eq(recordings.pinned, false),
        sql`${days} > 0`,
        sql`${readySince} + ${days} * interval '1 day' <= now()`,
      ),
    )
    .orderBy(readySince)
    .limit(o.limit);
}

/**
 * Recordings whose source HLS folder is due: ready with its poster (or ready for an hour without one),
 * not the stream's current broadcast, source still there, and the retention after ready has run out.
 */
export async function sourcesDueForDeletion(db: Db, o: { globalMode: string; limit: number }) {
  const days = sourceDays(o.globalMode);
  return db
    .select({ recording: recordings, days })
    .from(recordings)
    .leftJoin(streams, eq(streams.name, recordings.streamId))
    .where(
      and(
        eq(recordings.status, "ready"),
        // A clip has no source HLS of its own.
        eq(recordings.kind, "recording"),
        isNull(recordings.sourceDeletedAt),
        or(isNotNull(recordings.thumbnailPath), sql`${readySince} <= now() - interval '1 hour'`),
        or(isNull(streams.currentRecordingId), ne(streams.currentRecordingId, recordings.id)),
        sql`${readySince} + ${days} * interval '1 day' <= now()`,
      ),
    )
    .orderBy(readySince)
    .limit(o.limit);
}

export async function markSourceDeleted(db: Db, id: string, reason: string): Promise<void> {
  await db.update(recordings).set({ sourceDeletedAt: sql`now()`, sourceDeletedReason: reason }).where(eq(recordings.id, id));
}

/**
 * Claims a due recording for deletion if it is still due (not pinned meanwhile): from here pinning is
 * refused, so its objects can go before its row. A claim left by a crashed pass is taken again.
 */
export async function claimForDeletion(db: Db, id: string): Promise<Recording | undefined> {
  const [row] = await db
    .update(recordings)
    .set({ deletingSince: sql`now()` })
    .where(and(eq(recordings.id, id), eq(recordings.pinned, false), eq(recordings.status, "ready")))
    .returning();
  return row;
}

/** The row of a recording whose objects are gone, once claimed for deletion. */
export async function deleteClaimedRecordingRow(db: Db, id: string): Promise<Recording | undefined> {
  const [row] = await db.delete(recordings).where(and(eq(recordings.id, id), isNotNull(recordings.deletingSince))).returning();
  return row;
}

/** Per stream: recordings, bytes of MP4s, and how many still keep their source. */
export async function usageByStream(db: Db, stream?: string) {
  return db
    .select({
      stream: recordings.streamId,
      recordings: sql<number>`count(*)::int`,
      mp4Bytes: sql<number>`coalesce(sum(${recordings.fileSizeBytes}), 0)::float8`,
      sourceBytes: sql<number>`coalesce(sum(${recordings.sourceBytes}) filter (where ${recordings.sourceDeletedAt} is null), 0)::float8`,
      sourcesKept: sql<number>`(count(*) filter (where ${recordings.sourceDeletedAt} is null))::int`,
      pinned: sql<number>`(count(*) filter (where ${recordings.pinned}))::int`,
    })
    .from(recordings)
    .where(stream === undefined ? undefined : eq(recordings.streamId, stream))
    .groupBy(recordings.streamId)
    .orderBy(recordings.streamId);
}

// Clips: recordings cut from another one (functions/clip). The row is made by the API when asked for, and
// written by the cutter only while it is `processing`.

export interface NewClip {
  id: string;
  parentId: string | null;
  streamId: string;
  title: string;
  sourcePrefix: string;
  /** The range asked for; the cutter writes the range it actually cut. */
  clipStart: number;
  clipEnd: number;
}

export async function insertClip(db: Db, c: NewClip): Promise<Recording> {
  const [row] = await db
    .insert(recordings)
    .values({ ...c, kind: "clip", status: "processing", progress: 0 })
    .returning();
  return row!;
}

export async function markClipProgress(db: Db, id: string, progress: number): Promise<void> {
  await db
    .update(recordings)
    .set({ progress: Math.min(1, Math.max(0, progress)), updatedAt: sql`now()` })
    .where(and(eq(recordings.id, id), eq(recordings.kind, "clip"), eq(recordings.status, "processing")));
}

export interface ClipFacts {
  filePath: string;
  fileSizeBytes: number;
  durationSeconds: number;
  width: number | null;
  height: number | null;
  videoCodec: string | null;
  audioCodec: string | null;
  clipStart: number;
  clipEnd: number;
  thumbnailPath: string | null;
  storyboardPath: string | null;
  storyboardVttPath: string | null;
}

/** Ends a clip that is still processing; false when it is not (deleted, or already ended by another delivery). */
async function endProcessingClip(db: Db, id: string, change: Partial<typeof recordings.$inferInsert>): Promise<boolean> {
  const rows = await db
    .update(recordings)
    .set({ ...change, updatedAt: sql`now()` })
    .where(and(eq(recordings.id, id), eq(recordings.kind, "clip"), eq(recordings.status, "processing")))
    .returning({ id: recordings.id });
  return rows.length > 0;
}

/** The clip's MP4 (and images) are stored. False when the clip was deleted meanwhile. */
export async function markClipReady(db: Db, id: string, facts: ClipFacts): Promise<boolean> {
  return endProcessingClip(db, id, { ...facts, status: "ready", progress: 1, error: null });
}

/** True when this call failed the clip (it was still processing). */
export async function markClipFailed(db: Db, id: string, error: string): Promise<boolean> {
  return endProcessingClip(db, id, { status: "failed", error });
}

/** Clips still `processing` long after any cut takes: the process cutting them stopped. Fails them with a reason. */
export async function failAbandonedClips(db: Db, olderThanMs: number, error: string): Promise<number> {
  const rows = await db
    .update(recordings)
    .set({ status: "failed", error, updatedAt: sql`now()` })
    .where(and(eq(recordings.kind, "clip"), eq(recordings.status, "processing"), sql`${recordings.updatedAt} < now() - ${olderThanMs} * interval '1 millisecond'`))
    .returning({ id: recordings.id });
  return rows.length;
}

// The package function's writes: the ABR ladder has its own status and lease, apart from the recording's,
// so packaging never touches status, error or the convert claim.

export type AbrClaimResult =
  | { kind: "claimed"; recording: Recording }
  /** Gone, not ready, or its ladder already packaged: nothing to do. */
  | { kind: "nothing"; why: string }
  | { kind: "busy"; retryAfterMs: number };

/** Takes a ready recording's packaging lease unless its ladder is ready or another job holds a live lease. */
export async function claimAbr(db: Db, id: string, claimToken: string, leaseMs: number): Promise<AbrClaimResult> {
  const rows = await db
    .update(recordings)
    .set({ abrStatus: "processing", abrProgress: 0, abrError: null, abrClaimedBy: claimToken, abrClaimExpiresAt: sql`now() + ${leaseMs} * interval '1 millisecond'` })
    .where(
      and(
        eq(recordings.id, id),
        eq(recordings.status, "ready"),
        sql`${recordings.abrStatus} is distinct from 'ready'`,
        sql`(${recordings.abrClaimedBy} is null or ${recordings.abrClaimExpiresAt} < now())`,
      ),
    )
    .returning();
  if (rows[0]) return { kind: "claimed", recording: rows[0] };
  const [row] = await db
    .select({ status: recordings.status, abrStatus: recordings.abrStatus, waitMs: sql<number>`greatest(0, extract(epoch from (${recordings.abrClaimExpiresAt} - now())) * 1000)::float8` })
    .from(recordings)
    .where(eq(recordings.id, id));
  if (!row) return { kind: "nothing", why: "the recording is gone" };
  if (row.status !== "ready") return { kind: "nothing", why: `the recording is ${row.status}` };
  if (row.abrStatus === "ready") return { kind: "nothing", why: "its ladder is already packaged" };
  return { kind: "busy", retryAfterMs: Math.ceil(Number(row.waitMs ?? 0)) + 500 };
}

/** Progress of the ladder and a longer lease; false when the lease was lost or the recording deleted. */
export async function markAbrProgress(db: Db, id: string, claimToken: string, leaseMs: number, progress: number): Promise<boolean> {
  const rows = await db
    .update(recordings)
    .set({ abrProgress: Math.min(1, Math.max(0, progress)), abrClaimExpiresAt: sql`now() + ${leaseMs} * interval '1 millisecond'` })
    .where(and(eq(recordings.id, id), eq(recordings.abrClaimedBy, claimToken)))
    .returning({ id: recordings.id });
  return rows.length > 0;
}

export async function markAbrReady(db: Db, id: string, claimToken: string, f: { masterPath: string; dashPath: string; renditions: AbrRendition[] }): Promise<boolean> {
  const rows = await db
    .update(recordings)
    .set({ abrStatus: "ready", abrProgress: 1, abrError: null, abrMasterPath: f.masterPath, abrDashPath: f.dashPath, abrRenditions: f.renditions, abrClaimedBy: null, abrClaimExpiresAt: null })
    .where(and(eq(recordings.id, id), eq(recordings.abrClaimedBy, claimToken)))
    .returning({ id: recordings.id });
  return rows.length > 0;
}

/** The ladder could not be made: its own status says why; the recording stays as it is. */
export async function markAbrFailed(db: Db, id: string, reason: string, claimToken?: string): Promise<boolean> {
  const rows = await db
    .update(recordings)
    .set({ abrStatus: "failed", abrError: reason, abrClaimedBy: null, abrClaimExpiresAt: null })
    .where(and(eq(recordings.id, id), sql`(${recordings.abrClaimedBy} is null or ${recordings.abrClaimExpiresAt} < now() or ${recordings.abrClaimedBy} = ${claimToken ?? ""})`))
    .returning({ id: recordings.id });
  return rows.length > 0;
}

export async function releaseAbrClaim(db: Db, id: string, claimToken: string): Promise<void> {
  await db.update(recordings).set({ abrStatus: "pending", abrClaimedBy: null, abrClaimExpiresAt: null }).where(and(eq(recordings.id, id), eq(recordings.abrClaimedBy, claimToken)));
}

/** Ready recordings whose ladder was never made (a lost event) or whose packaging lease ran out: the sweep's work. */
export async function recordingsNeedingAbr(db: Db, limit: number) {
  return db
    .select({ id: recordings.id })
    .from(recordings)
    .where(
      and(
        eq(recordings.status, "ready"),
        // Clips are cut from a recording and announced as clip.ready: they get no ladder of their own.
        eq(recordings.kind, "recording"),
        sql`(${recordings.abrStatus} is null or ${recordings.abrStatus} = 'pending' or (${recordings.abrStatus} = 'processing' and ${recordings.abrClaimExpiresAt} < now()))`,
        sql`${recordings.updatedAt} < now() - interval '1 minute'`,
      ),
    )
    .limit(limit);
}

export async function getRecordingById(db: Db, id: string): Promise<Recording | undefined> {
  const [row] = await db.select().from(recordings).where(eq(recordings.id, id));
  return row;
}
