import { and, asc, desc, eq, lt, sql } from "drizzle-orm";
import type { Db } from "./client.js";
import { liveAssemblies, liveAssemblyParts, type LiveAssembly, type LiveAssemblyPart } from "./schema.js";

// The one owner of live_assemblies and live_assembly_parts: the state of a broadcast's MP4 built while it is
// live (functions/convert/live-assembly.ts). Every change after taking the lease is conditional on holding
// it, so a replica that stalled past its lease cannot overwrite the one that took over.

export interface NewAssembly {
  sourcePrefix: string;
  playlistKey: string;
  mp4Key: string;
  uploadId: string;
}

/** Creates the assembly of a source prefix unless one exists; answers the row that stands. */
export async function createAssembly(db: Db, a: NewAssembly): Promise<{ row: LiveAssembly; created: boolean }> {
  const [inserted] = await db.insert(liveAssemblies).values(a).onConflictDoNothing().returning();
  if (inserted) return { row: inserted, created: true };
  const row = await getAssembly(db, a.sourcePrefix);
  if (!row) throw new Error(`live assembly of ${a.sourcePrefix} vanished while being created`);
  return { row, created: false };
}

export async function getAssembly(db: Db, sourcePrefix: string): Promise<LiveAssembly | undefined> {
  const [row] = await db.select().from(liveAssemblies).where(eq(liveAssemblies.sourcePrefix, sourcePrefix));
  return row;
}

/** Takes the assembly's short lease unless another replica holds an unexpired one; answers the row when taken. */
export async function takeAssemblyLease(db: Db, sourcePrefix: string, owner: string, leaseMs: number): Promise<LiveAssembly | undefined> {
  const [row] = await db
    .update(liveAssemblies)
    .set({ leaseOwner: owner, leaseExpiresAt: sql`now() + ${leaseMs} * interval '1 millisecond'`, updatedAt: sql`now()` })
    .where(and(eq(liveAssemblies.sourcePrefix, sourcePrefix), sql`(${liveAssemblies.leaseOwner} is null or ${liveAssemblies.leaseOwner} = ${owner} or ${liveAssemblies.leaseExpiresAt} < now())`))
    .returning();
  return row;
}

export async function releaseAssemblyLease(db: Db, sourcePrefix: string, owner: string): Promise<void> {
  await db
    .update(liveAssemblies)
    .set({ leaseOwner: null, leaseExpiresAt: null })
    .where(and(eq(liveAssemblies.sourcePrefix, sourcePrefix), eq(liveAssemblies.leaseOwner, owner)));
}

const held = (sourcePrefix: string, owner: string) => and(eq(liveAssemblies.sourcePrefix, sourcePrefix), eq(liveAssemblies.leaseOwner, owner), sql`${liveAssemblies.leaseExpiresAt} >= now()`);

/** The first segments are held back for part 1: how many, their media bytes, and the codec configuration every segment must match. */
export async function setAssemblyHead(db: Db, sourcePrefix: string, owner: string, h: { init: Buffer; headSegments: number; headBytes: number; uriHash: string }): Promise<boolean> {
  const rows = await db
    .update(liveAssemblies)
    .set({ init: h.init, headSegments: h.headSegments, headBytes: h.headBytes, segmentsDone: h.headSegments, uriHash: h.uriHash, updatedAt: sql`now()` })
    .where(held(sourcePrefix, owner))
    .returning({ p: liveAssemblies.sourcePrefix });
  return rows.length === 1;
}

/** Records one uploaded part and moves the assembly past its segments, in one transaction; false when the lease was lost. */
export async function addAssemblyPart(db: Db, owner: string, part: LiveAssemblyPart, uriHash: string): Promise<boolean> {
  return db.transaction(async (tx) => {
    const rows = await tx
      .update(liveAssemblies)
      .set({ segmentsDone: part.firstSegment + part.segments, uriHash, partsBytes: sql`${liveAssemblies.partsBytes} + ${part.bytes}`, updatedAt: sql`now()` })
      .where(and(held(part.sourcePrefix, owner), eq(liveAssemblies.segmentsDone, part.firstSegment)))
      .returning({ p: liveAssemblies.sourcePrefix });
    if (rows.length !== 1) return false;
    await tx.insert(liveAssemblyParts).values(part).onConflictDoUpdate({
      target: [liveAssemblyParts.sourcePrefix, liveAssemblyParts.partNumber],
      set: { etag: part.etag, firstSegment: part.firstSegment, segments: part.segments, bytes: part.bytes, tables: part.tables },
    });
    return true;
  });
}

/** The number the assembly's next part gets (part 1 is written last, with the moov). */
export async function nextPartNumber(db: Db, sourcePrefix: string): Promise<number> {
  const [row] = await db.select({ n: sql<number>`coalesce(max(${liveAssemblyParts.partNumber}), 1) + 1` }).from(liveAssemblyParts).where(eq(liveAssemblyParts.sourcePrefix, sourcePrefix));
  return Number(row?.n ?? 2);
}

/** Media bytes and segments of the assembly's latest part (what a part of this broadcast takes now), if any. */
export async function lastPartSize(db: Db, sourcePrefix: string): Promise<{ bytes: number; segments: number } | undefined> {
  const [row] = await db.select({ bytes: liveAssemblyParts.bytes, segments: liveAssemblyParts.segments }).from(liveAssemblyParts).where(eq(liveAssemblyParts.sourcePrefix, sourcePrefix)).orderBy(desc(liveAssemblyParts.partNumber)).limit(1);
  return row ? { bytes: Number(row.bytes), segments: row.segments } : undefined;
}

export async function assemblyParts(db: Db, sourcePrefix: string): Promise<LiveAssemblyPart[]> {
  return db.select().from(liveAssemblyParts).where(eq(liveAssemblyParts.sourcePrefix, sourcePrefix)).orderBy(asc(liveAssemblyParts.partNumber));
}

/** Gives up on incremental assembly (the whole-folder path will make the MP4); the row stays so later events skip at once. */
export async function abandonAssembly(db: Db, sourcePrefix: string, reason: string): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.update(liveAssemblies).set({ status: "abandoned", reason, updatedAt: sql`now()` }).where(eq(liveAssemblies.sourcePrefix, sourcePrefix));
    await tx.delete(liveAssemblyParts).where(eq(liveAssemblyParts.sourcePrefix, sourcePrefix));
  });
}

/** The upload is complete: the part tables are no longer needed, the facts are kept until the recording is ready. */
export async function completeAssembly(db: Db, sourcePrefix: string, owner: string, facts: Record<string, unknown>): Promise<boolean> {
  return db.transaction(async (tx) => {
    const rows = await tx.update(liveAssemblies).set({ status: "complete", facts, updatedAt: sql`now()` }).where(held(sourcePrefix, owner)).returning({ p: liveAssemblies.sourcePrefix });
    if (rows.length !== 1) return false;
    await tx.delete(liveAssemblyParts).where(eq(liveAssemblyParts.sourcePrefix, sourcePrefix));
    return true;
  });
}

export async function deleteAssembly(db: Db, sourcePrefix: string): Promise<void> {
  await db.delete(liveAssemblies).where(eq(liveAssemblies.sourcePrefix, sourcePrefix));
}

const leaseFree = sql`(${liveAssemblies.leaseOwner} is null or ${liveAssemblies.leaseExpiresAt} < now())`;

/** Assemblies (in any state) untouched since `before` and held by no replica: the sweep's candidates for abandoning. */
export async function idleAssemblies(db: Db, before: Date): Promise<LiveAssembly[]> {
  return db.select().from(liveAssemblies).where(and(lt(liveAssemblies.updatedAt, before), leaseFree)).orderBy(asc(liveAssemblies.updatedAt));
}

/** Takes the lease of an assembly only if it is still untouched since `before` (a live update since then keeps it). */
export async function takeIdleAssemblyLease(db: Db, sourcePrefix: string, owner: string, leaseMs: number, before: Date): Promise<LiveAssembly | undefined> {
  const [row] = await db
    .update(liveAssemblies)
    .set({ leaseOwner: owner, leaseExpiresAt: sql`now() + ${leaseMs} * interval '1 millisecond'` })
    .where(and(eq(liveAssemblies.sourcePrefix, sourcePrefix), lt(liveAssemblies.updatedAt, before), leaseFree))
    .returning();
  return row;
}

/** Deletes an assembly (its parts go with it) while holding its lease; false when the lease was lost. */
export async function deleteHeldAssembly(db: Db, sourcePrefix: string, owner: string): Promise<boolean> {
  const rows = await db.delete(liveAssemblies).where(held(sourcePrefix, owner)).returning({ p: liveAssemblies.sourcePrefix });
  return rows.length === 1;
}

/** Every assembly's MP4 key and upload: what the store's open uploads and head objects are checked against. */
export async function assemblyObjects(db: Db): Promise<{ mp4Key: string; uploadId: string }[]> {
  return db.select({ mp4Key: liveAssemblies.mp4Key, uploadId: liveAssemblies.uploadId }).from(liveAssemblies);
}

/** Assemblies in progress (the live_assemblies_active gauge). */
export async function countActiveAssemblies(db: Db): Promise<number> {
  const [row] = await db.select({ n: sql<number>`count(*)::int` }).from(liveAssemblies).where(eq(liveAssemblies.status, "assembling"));
  return row?.n ?? 0;
}

/** Bytes of state an assembly keeps in PostgreSQL (its row's codec configuration and its parts' tables). */
export async function assemblyStateBytes(db: Db, sourcePrefix: string): Promise<number> {
  const [row] = await db
    .select({
      n: sql<number>`(coalesce((select sum(octet_length(tables) + 64) from ${liveAssemblyParts} where ${liveAssemblyParts.sourcePrefix} = ${sourcePrefix}), 0) + coalesce((select octet_length(init) + 256 from ${liveAssemblies} where ${liveAssemblies.sourcePrefix} = ${sourcePrefix}), 0))::int`,
    })
    .from(sql`(select 1) as one`);
  return row?.n ?? 0;
}
