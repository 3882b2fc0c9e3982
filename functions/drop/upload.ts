import { createReadStream } from "node:fs";
import { readdir, readFile, stat } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import { PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { keyIn } from "../../lib/layout.js";

// Uploading a local HLS folder to the hls-streams bucket, playlists last: the playlist's event then
// finds every segment already there (convert would also wait for them, but there is no need to).
// Masters go before their variants (see uploadOrder).

export class DropError extends Error {
  readonly kind = "usage" as const;
  override name = "DropError";
}

export interface LocalFile {
  path: string;
  /** Path inside the folder, with / separators. */
  rel: string;
  size: number;
}

export async function listFolder(dir: string): Promise<LocalFile[]> {
  let st;
  try {
    st = await stat(dir);
  } catch {
    throw new DropError(`${dir} does not exist: pass the path of a folder holding an HLS playlist (.m3u8) and its segments`);
  }
  if (!st.isDirectory()) throw new DropError(`${dir} is not a folder: pass the folder that holds the .m3u8 playlist, not a file`);
  const out: LocalFile[] = [];
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || entry.name.startsWith(".")) continue;
    const path = join(entry.parentPath ?? (entry as unknown as { path: string }).path, entry.name);
    out.push({ path, rel: relative(dir, path).split(sep).join("/"), size: (await stat(path)).size });
  }
  return out;
}

export function isPlaylistFile(rel: string): boolean {
  return rel.toLowerCase().endsWith(".m3u8");
}

/**
 * Media first, then playlists: masters before media playlists, so that when a variant's #EXT-X-ENDLIST
 * event arrives its master is already there and the folder gets one recording, not one per variant.
 */
export function uploadOrder(files: LocalFile[], isMaster: (f: LocalFile) => boolean = () => false): LocalFile[] {
  const media = files.filter((f) => !isPlaylistFile(f.rel));
  const rank = (f: LocalFile) => (isMaster(f) ? 0 : 1);
  const playlists = files.filter((f) => isPlaylistFile(f.rel)).sort((a, b) => rank(a) - rank(b) || a.rel.split("/").length - b.rel.split("/").length || a.rel.localeCompare(b.rel));
  return [...media, ...playlists];
}

export function contentType(rel: string): string {
  const ext = rel.slice(rel.lastIndexOf(".") + 1).toLowerCase();
  return { m3u8: "application/vnd.apple.mpegurl", ts: "video/mp2t", m4s: "video/iso.segment", mp4: "video/mp4", aac: "audio/aac", vtt: "text/vtt" }[ext] ?? "application/octet-stream";
}

export interface UploadOptions {
  concurrency?: number;
  onFile?: (f: LocalFile) => void;
  /** Files to leave out (tests: a segment that never arrives). */
  skip?: (f: LocalFile) => boolean;
}

/** Uploads `files` under `prefix`: the non-playlists in parallel, then the playlists one by one in order. */
export async function uploadFiles(s3: S3Client, bucket: string, prefix: string, files: LocalFile[], o: UploadOptions = {}): Promise<void> {
  const masters = new Set<string>();
  for (const f of files.filter((f) => isPlaylistFile(f.rel))) if ((await readFile(f.path, "utf8")).includes("#EXT-X-STREAM-INF")) masters.add(f.rel);
  const ordered = uploadOrder(files, (f) => masters.has(f.rel)).filter((f) => !o.skip?.(f));
  const put = async (f: LocalFile) => {
    const key = keyIn(prefix, f.rel);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: createReadStream(f.path), ContentLength: f.size, ContentType: contentType(f.rel) }));
    o.onFile?.(f);
  };
  const media = ordered.filter((f) => !isPlaylistFile(f.rel));
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(o.concurrency ?? 8, media.length) }, async () => {
      while (next < media.length) await put(media[next++]!);
    }),
  );
  for (const f of ordered.filter((f) => isPlaylistFile(f.rel))) await put(f);
}
