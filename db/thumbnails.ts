import { eq } from "drizzle-orm";
import type { Db } from "./client.js";
import { recordings } from "./schema.js";

/**
 * Makes sure the folder has its recording row, as convert's claim would create it (status `processing`,
 * stream_id = folder path, title = convert's name for it). An existing row, whoever made it, is left as it is.
 */
export async function ensureRecordingForFolder(db: Db, folder: string, title: string): Promise<void> {
  await db
    .insert(recordings)
    .values({ sourcePrefix: folder, streamId: folder, title, status: "processing" })
    .onConflictDoNothing({ target: recordings.sourcePrefix });
}

// The two updates below write thumbnail columns only: never status, error or updated_at, which belong to
// convert (the sweep reads updated_at to tell whether a recording is newer than its playlist).

export async function setPoster(db: Db, folder: string, thumbnailPath: string): Promise<void> {
  await db.update(recordings).set({ thumbnailPath }).where(eq(recordings.sourcePrefix, folder));
}

export async function setStoryboard(db: Db, folder: string, storyboardPath: string, storyboardVttPath: string): Promise<void> {
  await db.update(recordings).set({ storyboardPath, storyboardVttPath }).where(eq(recordings.sourcePrefix, folder));
}

export async function thumbnailFields(db: Db, folder: string) {
  const rows = await db
    .select({ thumbnailPath: recordings.thumbnailPath, storyboardPath: recordings.storyboardPath, storyboardVttPath: recordings.storyboardVttPath })
    .from(recordings)
    .where(eq(recordings.sourcePrefix, folder));
  return rows[0];
}
