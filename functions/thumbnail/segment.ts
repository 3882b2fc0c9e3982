import { createDecipheriv } from "node:crypto";
import { createWriteStream } from "node:fs";
import { pipeline } from "node:stream/promises";
import { Readable } from "node:stream";
import { GetObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { isNotFound } from "../../lib/s3.js";
import type { ByteRange, SegmentRef } from "./playlist.js";

/** A segment that gave no bytes to decode; the caller tries another one. */
export class SegmentUnreadable extends Error {
  override name = "SegmentUnreadable";
  constructor(
    readonly reason: "missing" | "empty",
    readonly key: string,
  ) {
    super(reason === "missing" ? `segment ${key} is not in the bucket` : `segment ${key} is empty`);
  }
}

const rangeHeader = (r?: ByteRange) => (r ? `bytes=${r.offset}-${r.offset + r.length - 1}` : undefined);

async function get(s3: S3Client, bucket: string, key: string, range: ByteRange | undefined, signal?: AbortSignal) {
  try {
    return await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: rangeHeader(range) }), { abortSignal: signal });
  } catch (err) {
    if (isNotFound(err)) throw new SegmentUnreadable("missing", key);
    throw err;
  }
}

/** Init sections are shared by every segment of a playlist: read each once per job. */
export type InitCache = Map<string, Promise<Uint8Array>>;

async function initBytes(s3: S3Client, bucket: string, seg: SegmentRef, inits: InitCache, signal?: AbortSignal): Promise<Uint8Array | undefined> {
  if (!seg.init) return undefined;
  const cacheKey = `${seg.init.key}@${rangeHeader(seg.init.range) ?? ""}`;
  let pending = inits.get(cacheKey);
  if (!pending) {
    pending = get(s3, bucket, seg.init.key, seg.init.range, signal).then((r) => r.Body!.transformToByteArray());
    inits.set(cacheKey, pending);
    // A failed read must not be remembered: the next segment tries again.
    pending.catch(() => inits.delete(cacheKey));
  }
  const init = await pending;
  if (init.length === 0) throw new SegmentUnreadable("empty", seg.init.key);
  return init;
}

/** An AES-128 segment's key file, read once per job like init sections. */
async function keyBytes(s3: S3Client, bucket: string, seg: SegmentRef, inits: InitCache, signal?: AbortSignal): Promise<Uint8Array | undefined> {
  if (!seg.aes) return undefined;
  const cacheKey = `aes-key:${seg.aes.key}`;
  let pending = inits.get(cacheKey);
  if (!pending) {
    pending = get(s3, bucket, seg.aes.key, undefined, signal).then((r) => r.Body!.transformToByteArray());
    inits.set(cacheKey, pending);
    pending.catch(() => inits.delete(cacheKey));
  }
  const key = await pending;
  if (key.length !== 16) throw new SegmentUnreadable(key.length === 0 ? "empty" : "missing", seg.aes.key);
  return key;
}

/** The segment's bytes as stored, decrypted when the playlist says they are AES-128 encrypted. */
async function segmentBody(s3: S3Client, bucket: string, seg: SegmentRef, inits: InitCache, signal?: AbortSignal): Promise<{ body: Readable }> {
  const key = await keyBytes(s3, bucket, seg, inits, signal);
  const res = await get(s3, bucket, seg.key, seg.range, signal);
  const body = res.Body as Readable;
  if (res.ContentLength === 0) {
    body.destroy();
    throw new SegmentUnreadable("empty", seg.key);
  }
  if (!key) return { body };
  const decipher = createDecipheriv("aes-128-cbc", key, Buffer.from(seg.aes!.iv, "hex"));
  // A reader that stops early (the poster) destroys the decipher; the S3 body goes with it.
  decipher.on("close", () => body.destroy());
  body.on("error", (err) => decipher.destroy(err));
  return { body: body.pipe(decipher) };
}

/**
 * One segment (after its init section, for fMP4) as a stream, for a reader that may stop early: the
 * poster needs only the first keyframe, so most of the segment is never transferred. Missing and empty
 * segments are reported before any byte is read.
 */
export async function openSegment(s3: S3Client, bucket: string, seg: SegmentRef, inits: InitCache, signal?: AbortSignal): Promise<Readable> {
  const init = await initBytes(s3, bucket, seg, inits, signal);
  const { body } = await segmentBody(s3, bucket, seg, inits, signal);
  if (!init) return body;
  async function* withInit() {
    try {
      yield init!;
      yield* body;
    } finally {
      body.destroy();
    }
  }
  return Readable.from(withInit(), { objectMode: false });
}

/**
 * Writes one segment (after its #EXT-X-MAP init section, for fMP4) to `dest`, so FFmpeg can seek in it.
 * Only this segment's bytes are read: the cost does not depend on the stream's length.
 */
export async function fetchSegment(s3: S3Client, bucket: string, seg: SegmentRef, dest: string, inits: InitCache, signal?: AbortSignal): Promise<void> {
  const init = await initBytes(s3, bucket, seg, inits, signal);
  const { body } = await segmentBody(s3, bucket, seg, inits, signal);
  const out = createWriteStream(dest);
  if (init) out.write(init);
  await pipeline(body, out, { signal });
}
