import { and, eq, ne, or, sql } from "drizzle-orm";
import type { Db } from "./client.js";
import { recordings, type AudioTrack, type Recording, type RecordingWarning, type SubtitleTrack } from "./schema.js";

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
}

/** The MP4 is fully uploaded: ready, lease released. False when the lease was lost meanwhile. */
export async function markReady(db: Db, id: string, claimToken: string, facts: ReadyFacts): Promise<boolean> {
  const rows = await db
    .update(recordings)
    .set({ ...facts, status: "ready", progress: 1, error: null, claimedBy: null, claimExpiresAt: null, updatedAt: sql`now()` })
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

export async function getRecordingByFolder(db: Db, sourcePrefix: string): Promise<Recording | undefined> {
  const [row] = await db.select().from(recordings).where(eq(recordings.sourcePrefix, sourcePrefix));
  return row;
}

/**
 * Removes recordings made from a master's variant playlists on their own, before the master landed
 * (folders dropped in any order): the folder's one recording is the master's. Returns what they stored.
 */
export async function deleteVariantRecordings(db: Db, masterFolder: string, variants: { folder: string; playlistKey: string }[]): Promise<Recording[]> {
  const others = variants.filter((v) => v.folder !== masterFolder);
  if (others.length === 0) return [];
  return db
    .delete(recordings)
    .where(and(ne(recordings.sourcePrefix, masterFolder), or(...others.map((v) => and(eq(recordings.sourcePrefix, v.folder), eq(recordings.playlistKey, v.playlistKey))))))
    .returning();
}

export async function recordingExists(db: Db, id: string): Promise<boolean> {
  const rows = await db.select({ id: recordings.id }).from(recordings).where(eq(recordings.id, id));
  return rows.length > 0;
}
