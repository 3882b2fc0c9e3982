// Reading what the gateway put in the test bucket.
import HLS from "hls-parser";
import type { S3Client } from "@aws-sdk/client-s3";
import { getText, headObject, isNotFound, listObjects } from "../../lib/s3.js";

export interface StoredPlaylist {
  key: string;
  ended: boolean;
  /** `gap`: listed as #EXT-X-GAP (dropped from a full spool, never stored). */
  segments: { uri: string; duration: number; discontinuity: boolean; gap: boolean }[];
  text: string;
}

export async function readPlaylist(s3: S3Client, bucket: string, key: string): Promise<StoredPlaylist | undefined> {
  let text: string;
  try {
    text = await getText(s3, bucket, key);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
  const p = HLS.parse(text) as InstanceType<typeof HLS.types.MediaPlaylist>;
  return { key, ended: p.endlist, text, segments: p.segments.map((s) => ({ uri: s.uri, duration: s.duration, discontinuity: Boolean(s.discontinuity), gap: Boolean(s.gap) })) };
}

export async function keys(s3: S3Client, bucket: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const o of listObjects(s3, bucket, prefix)) out.push(o.key);
  return out;
}

/** The session folders of a stream: `<stream>/<session>`. */
export async function sessionFolders(s3: S3Client, bucket: string, stream: string): Promise<string[]> {
  const set = new Set((await keys(s3, bucket, `${stream}/`)).map((k) => k.split("/").slice(0, 2).join("/")));
  return [...set].sort();
}

/** Segments the playlist names as media (not gaps) that the store does not have. */
export async function missingSegments(s3: S3Client, bucket: string, folder: string, p: StoredPlaylist): Promise<string[]> {
  const missing: string[] = [];
  for (const s of p.segments) if (!s.gap && !(await headObject(s3, bucket, `${folder}/${s.uri}`))) missing.push(s.uri);
  return missing;
}
