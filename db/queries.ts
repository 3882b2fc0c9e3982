import { inArray } from "drizzle-orm";
import type { Db } from "./client.js";
import { recordings } from "./schema.js";

/** The folders a playlist key may belong to, deepest first: `a/b/c/index.m3u8` → `a/b/c`, `a/b`, `a`. */
export function ancestorFolders(key: string): string[] {
  const parts = key.split("/").slice(0, -1);
  const out: string[] = [];
  for (let i = parts.length; i > 0; i--) out.push(parts.slice(0, i).join("/"));
  return out;
}

/** Recordings whose source folder holds this playlist (a variant playlist belongs to its master's folder). */
export async function recordingsCoveringPlaylist(db: Db, playlistKey: string) {
  const folders = ancestorFolders(playlistKey);
  if (folders.length === 0) folders.push("");
  return db
    .select({
      id: recordings.id,
      sourcePrefix: recordings.sourcePrefix,
      status: recordings.status,
      playlistKey: recordings.playlistKey,
      playlistEtag: recordings.playlistEtag,
      updatedAt: recordings.updatedAt,
    })
    .from(recordings)
    .where(inArray(recordings.sourcePrefix, folders));
}
