import { open, type FileHandle } from "node:fs/promises";
import { Readable } from "node:stream";
import { AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateMultipartUploadCommand, UploadPartCommand, type CompletedPart, type S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import * as zlib from "node:zlib";
import { sleep } from "../../lib/time.js";
import { alignFreeBytes, freeBox } from "./part-alignment.js";
import { boxAt, boxes } from "./fragments.js";

// A faststart MP4 uploaded while FFmpeg is still writing it.
//
// FFmpeg writes [ftyp][free][mdat ...][moov]: the media first, the index (moov) last. A faststart file
// is [ftyp][moov][free][mdat ...]: the same bytes with moov moved to the front and its chunk offsets
// (stco/co64) shifted by moov's size. FFmpeg's own +faststart rewrites the whole file after writing it;
// here the media bytes are uploaded as multipart parts 2..n as soon as they are on disk, and part 1
// (ftyp + moov + the first HEAD_BYTES of media) is uploaded last, when moov exists. The upload then
// overlaps the remux instead of following it, and the disk holds one copy of the file.

const DEFAULT_HEAD_BYTES = 16 * 1024 * 1024;
const DEFAULT_PART_BYTES = 16 * 1024 * 1024;
/**
 * Bytes near the end of the growing file are not uploaded yet: the moov FFmpeg appends last could be among
 * them (about 2 MB per hour of 720p; a part that caught some of it is redone), and the rest goes up after FFmpeg ends.
 */
const DEFAULT_TAIL_MARGIN = 8 * 1024 * 1024;
const PARALLEL_PARTS = 4;
const POLL_MS = 200;

/** The MP4 FFmpeg wrote is not laid out as expected; transient to the runtime, as a rerun may well write it right. */
export class FaststartError extends Error {
  readonly kind = "faststart" as const;
  override name = "FaststartError";
}

const faststartError = (message: string): Error => new FaststartError(message);

export interface Atom {
  type: string;
  start: number;
  size: number;
}

/** The top-level boxes of an MP4 file. */
export async function readTopLevelAtoms(fh: FileHandle, fileSize: number): Promise<Atom[]> {
  const atoms: Atom[] = [];
  const head = Buffer.alloc(16);
  let pos = 0;
  while (pos + 8 <= fileSize) {
    await fh.read(head, 0, 16, pos);
    const b = boxAt(head, 0, fileSize - pos, faststartError, pos);
    atoms.push({ type: b.type, start: pos, size: b.end });
    pos += b.end;
  }
  return atoms;
}

const CONTAINERS = new Set(["moov", "trak", "mdia", "minf", "stbl"]);

/** A copy of `moov` whose chunk offsets point `delta` bytes further; refuses 32-bit offsets that would overflow. */
export function shiftChunkOffsets(moov: Buffer, delta: number): Buffer {
  const out = Buffer.from(moov);
  const walk = (start: number, end: number) => {
    for (const { type, payload, end: boxEnd } of boxes(out, start, end, faststartError)) {
      if (CONTAINERS.has(type)) walk(payload, boxEnd);
      else if (type === "stco" || type === "co64") {
        const count = out.readUInt32BE(payload + 4);
        let p = payload + 8;
        for (let i = 0; i < count; i++) {
          if (type === "stco") {
            const v = out.readUInt32BE(p) + delta;
            if (v > 0xffffffff) throw new FaststartError("chunk offsets overflow 32 bits after moving moov");
            out.writeUInt32BE(v, p);
            p += 4;
          } else {
            out.writeBigUInt64BE(out.readBigUInt64BE(p) + BigInt(delta), p);
            p += 8;
          }
        }
      }
    }
  };
  walk(8, out.length);
  return out;
}

/** node:zlib's CRC32 (Node 20.15+), native and several times cheaper than SigV4's SHA-256 of every byte. */
const CRC32 = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;

/** The part's CRC32 as S3 wants it (base64 of 4 big-endian bytes); undefined where Node lacks zlib.crc32. */
function crc32Of(body: Uint8Array): string | undefined {
  if (!CRC32) return undefined;
  const b = Buffer.alloc(4);
  b.writeUInt32BE(CRC32(body) >>> 0);
  return b.toString("base64");
}

export interface StreamingUpload {
  /**
   * FFmpeg finished writing: put moov first, upload what is left, complete. Returns the object's size.
   * `check` (the MP4's verification) runs while the last parts go up; the upload completes only if it passes.
   */
  finish(check?: () => Promise<void>): Promise<number>;
  /** FFmpeg failed or the job stops: drop the parts. */
  abort(): Promise<void>;
}

/**
 * Starts following `file` as FFmpeg writes it (without +faststart), uploading its media to
 * `bucket/key` as it grows. `onProgress` gets the bytes uploaded so far.
 */
export function startStreamingUpload(
  s3: S3Client,
  bucket: string,
  key: string,
  file: string,
  signal: AbortSignal,
  onProgress: (uploaded: number) => void,
  sizes: { headBytes?: number; partBytes?: number; tailMargin?: number; signPayload?: boolean } = {},
): StreamingUpload {
  // S3 wants every part but the last to be at least 5 MiB; tests use smaller sizes than these defaults.
  const HEAD_BYTES = sizes.headBytes ?? DEFAULT_HEAD_BYTES;
  const PART_BYTES = sizes.partBytes ?? DEFAULT_PART_BYTES;
  const TAIL_MARGIN = sizes.tailMargin ?? DEFAULT_TAIL_MARGIN;
  let uploadId: string | undefined;
  let nextStart = HEAD_BYTES;
  let uploaded = 0;
  let writerDone = false;
  let failure: unknown;
  const inFlight = new Set<Promise<void>>();

  const parts = new Map<number, { start: number; end: number; etag: string; checksum?: string }>();
  // Part buffers are reused: a new 16 MB buffer per part kept the garbage collector busy for a second per GB.
  const free: Buffer[] = [];

  const sendPart = async (partNumber: number, body: Buffer) => {
    uploadId ??= await createUpload();
    const command = new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: partNumber, Body: body, ContentLength: body.length, ChecksumCRC32: crc32Of(body) });
    // A part carrying its CRC32 is not hashed again for the signature (UNSIGNED-PAYLOAD) where lib/s3.ts's
    // payloadNeedsSigning allows it: the store checks the CRC32 (a mismatch is refused with BadDigest).
    if (CRC32 && !sizes.signPayload) {
      command.middlewareStack.add((next) => async (args) => {
        (args.request as { headers: Record<string, string> }).headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD";
        return next(args);
      }, { step: "build", name: "unsignedPayload" });
    }
    return s3.send(command, { abortSignal: signal });
  };
  const uploadPart = async (fh: FileHandle, partNumber: number, start: number, end: number) => {
    const buffer = free.pop() ?? Buffer.allocUnsafe(PART_BYTES);
    try {
      const body = buffer.subarray(0, end - start);
      const { bytesRead } = await fh.read(body, 0, body.length, start);
      if (bytesRead !== body.length) throw new FaststartError(`the MP4 being written is shorter than expected: read ${bytesRead} of ${body.length} bytes at ${start}`);
      const res = await sendPart(partNumber, body);
      parts.set(partNumber, { start, end, etag: res.ETag!, checksum: res.ChecksumCRC32 });
      uploaded += body.length;
      onProgress(uploaded);
    } finally {
      free.push(buffer);
    }
  };
  let creating: Promise<string> | undefined;
  const createUpload = () =>
    (creating ??= s3
      .send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ContentType: "video/mp4", ChecksumAlgorithm: CRC32 ? "CRC32" : undefined }), { abortSignal: signal })
      .then((r) => r.UploadId!));

  const follow = (async () => {
    // FFmpeg creates the file when it starts writing; until then there is nothing to follow.
    let fh: FileHandle | undefined;
    while (!fh) {
      fh = await open(file, "r").catch(() => undefined);
      if (!fh) {
        if (writerDone || signal.aborted) return;
        await sleep(POLL_MS);
      }
    }
    try {
      let partNumber = 2;
      while (!writerDone && !signal.aborted && !failure) {
        const { size } = await fh.stat();
        while (size >= nextStart + PART_BYTES + TAIL_MARGIN && inFlight.size < PARALLEL_PARTS) {
          const p = uploadPart(fh, partNumber++, nextStart, nextStart + PART_BYTES).catch((err) => {
            failure ??= err;
          });
          nextStart += PART_BYTES;
          inFlight.add(p);
          void p.finally(() => inFlight.delete(p));
        }
        await Promise.race([sleep(POLL_MS), ...inFlight]);
      }
      await Promise.all(inFlight);
    } finally {
      await fh.close();
    }
  })();

  const abort = async () => {
    writerDone = true;
    await follow.catch(() => {});
    if (creating) {
      const id = await creating.catch(() => undefined);
      if (id) await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: id })).catch(() => {});
    }
  };

  return {
    abort,
    async finish(check = async () => {}) {
      let checked = false;
      try {
        return await complete(() => {
          checked = true;
          return check();
        });
      } catch (err) {
        await abort();
        // What the check finds wrong with the MP4 itself says more than how its upload failed.
        if (!checked) await check();
        throw err;
      }
    },
  };

  async function complete(check: () => Promise<void>): Promise<number> {
    writerDone = true;
    await follow;
    if (failure) throw failure;
    const fh = await open(file, "r");
    try {
      const { size } = await fh.stat();
      const atoms = await readTopLevelAtoms(fh, size);
      const moovAt = atoms.findIndex((a) => a.type === "moov");
      if (atoms[0]?.type !== "ftyp" || moovAt !== atoms.length - 1) {
        throw new FaststartError(`unexpected MP4 layout ${atoms.map((a) => a.type).join(",")}: expected ftyp first and moov last`);
      }
      const ftyp = atoms[0]!;
      const moovAtom = atoms[moovAt]!;
      const moov = Buffer.alloc(moovAtom.size);
      await fh.read(moov, 0, moov.length, moovAtom.start);
      const head = Buffer.alloc(ftyp.size);
      await fh.read(head, 0, head.length, 0);
      const patched = shiftChunkOffsets(moov, moov.length);
      // Media bytes sit between ftyp and moov; parts beyond their end (moov was larger than the margin) are redone.
      const mediaEnd = moovAtom.start;
      for (const [n, p] of parts) {
        if (p.end > mediaEnd) {
          parts.delete(n);
          uploaded -= p.end - p.start;
          nextStart = Math.min(nextStart, p.start);
        }
      }
      if (!uploadId || parts.size === 0) {
        // Small file (or nothing streamed): one ordinary upload of ftyp + moov + media, once the check passed.
        await check();
        if (uploadId) await abort();
        const body = Readable.from(concatChunks([head, patched], fh, ftyp.size, mediaEnd, PART_BYTES));
        const up = new Upload({ client: s3, params: { Bucket: bucket, Key: key, Body: body, ContentType: "video/mp4", ContentLength: size }, partSize: PART_BYTES, queueSize: PARALLEL_PARTS });
        up.on("httpUploadProgress", (p) => onProgress(p.loaded ?? 0));
        await up.done();
        return size;
      }
      // The rest of the media, in parts after the ones already up (the last may be short).
      let partNumber = Math.max(...parts.keys()) + 1;
      const rest: [number, number, number][] = [];
      for (let start = Math.max(...[...parts.values()].map((p) => p.end)); start < mediaEnd; start += PART_BYTES) rest.push([partNumber++, start, Math.min(mediaEnd, start + PART_BYTES)]);
      // Part 1 (ftyp, the patched moov, and the media bytes before the first streamed part) goes up beside the rest.
      // It ends on a block boundary (part-alignment.ts): a free box after the moov, the offsets shifted past it too.
      const gap = alignFreeBytes(head.length + moov.length + HEAD_BYTES - ftyp.size);
      const patchedFirst = gap ? shiftChunkOffsets(moov, moov.length + gap) : patched;
      let first: { ETag?: string; ChecksumCRC32?: string } = {};
      const sendFirst = async () => {
        const media = Buffer.alloc(HEAD_BYTES - ftyp.size);
        await fh.read(media, 0, media.length, ftyp.size);
        first = await sendPart(1, Buffer.concat([head, patchedFirst, freeBox(gap), media]));
      };
      const uploading = runLimited([sendFirst, ...rest.map(([n, s, e]) => () => uploadPart(fh, n, s, e))], PARALLEL_PARTS);
      // Both settle before anything is decided, so an abort never races a part still going up.
      const [up, checked] = await Promise.allSettled([uploading, check()]);
      if (checked.status === "rejected") throw checked.reason;
      if (up.status === "rejected") throw up.reason;
      const res = first;
      const completed: CompletedPart[] = [
        { PartNumber: 1, ETag: res.ETag!, ChecksumCRC32: res.ChecksumCRC32 },
        ...[...parts.entries()].sort((a, b) => a[0] - b[0]).map(([n, p]) => ({ PartNumber: n, ETag: p.etag, ChecksumCRC32: p.checksum })),
      ];
      await s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: completed } }), { abortSignal: signal });
      onProgress(size + gap);
      return size + gap;
    } finally {
      await fh.close();
    }
  }
}

async function* concatChunks(first: Buffer[], fh: FileHandle, from: number, to: number, chunk: number): AsyncGenerator<Buffer> {
  for (const b of first) yield b;
  for (let pos = from; pos < to; pos += chunk) {
    const b = Buffer.alloc(Math.min(chunk, to - pos));
    await fh.read(b, 0, b.length, pos);
    yield b;
  }
}

async function runLimited(tasks: (() => Promise<void>)[], limit: number): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, async () => {
    while (next < tasks.length) await tasks[next++]!();
  }));
}
