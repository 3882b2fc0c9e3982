import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import type { S3Client } from "@aws-sdk/client-s3";
import type { Logger } from "../../lib/log.js";
import { PermanentError, TransientError } from "../runtime/handler.js";
import { BLACK_YAVG, grabPosterFrame } from "./frames.js";
import { jpegSize } from "./jpeg.js";
import type { SegmentRef } from "./playlist.js";
import { fetchSegment, openSegment, SegmentUnreadable, type InitCache } from "./segment.js";

/** Where in the stream the poster is taken. */
export const POSTER_AT = 0.1;
/** Segments tried before giving up: the cost stays a handful of segments however long the stream. */
export const MAX_POSTER_TRIES = 6;

export interface FrameDeps {
  s3: S3Client;
  bucket: string;
  ffmpeg: string;
  /** A private temporary folder for this job. */
  dir: string;
  inits: InitCache;
  log: Logger;
  signal?: AbortSignal;
}

/** The segments hold audio only: there is no frame to take (the poster is a waveform instead). */
export class NoVideo extends Error {
  override name = "NoVideo";
}

export interface Poster {
  jpeg: Uint8Array;
  width: number;
  height: number;
  segment: SegmentRef;
  /** Seconds from the start of the stream. */
  at: number;
  yavg: number;
}

/**
 * Segments to try, best first: the one starting nearest 10% in, its neighbours, then further into the
 * stream. The first segment comes last, as a stream's first frame is often black. A stream of one
 * segment is seeked into instead.
 */
export function posterCandidates(segments: readonly SegmentRef[], duration: number): { index: number; offset: number }[] {
  const n = segments.length;
  if (n === 0) return [];
  if (n === 1) {
    const only = segments[0]!;
    const offset = Math.min(duration * POSTER_AT, only.duration / 2);
    return offset > 0 ? [{ index: 0, offset }, { index: 0, offset: 0 }] : [{ index: 0, offset: 0 }];
  }
  const nearest = (t: number) => {
    let best = 1;
    for (let i = 1; i < n; i++) if (Math.abs(segments[i]!.start - t) < Math.abs(segments[best]!.start - t)) best = i;
    return best;
  };
  const first = nearest(duration * POSTER_AT);
  const order = [first, first + 1, Math.max(1, first - 1), first + 2, nearest(duration * 0.25), nearest(duration * 0.5), nearest(duration * 0.75), 0];
  const seen = new Set<number>();
  const out: { index: number; offset: number }[] = [];
  for (const i of order) {
    if (i < 0 || i >= n || seen.has(i)) continue;
    seen.add(i);
    out.push({ index: i, offset: 0 });
  }
  return out.slice(0, MAX_POSTER_TRIES);
}

/**
 * A non-empty, non-black JPEG from the segment nearest 10% into the stream, falling back to other
 * segments when one is missing, empty, undecodable or black. Only the tried segments are read.
 */
export async function makePoster(deps: FrameDeps, segments: readonly SegmentRef[], duration: number): Promise<Poster> {
  const tried: string[] = [];
  const missing: string[] = [];
  let darkest: Poster | undefined;
  const candidates = posterCandidates(segments, duration);
  for (const [n, c] of candidates.entries()) {
    const segment = segments[c.index]!;
    const src = join(deps.dir, `poster-source-${n}`);
    const out = join(deps.dir, `poster-${n}.jpg`);
    const t0 = performance.now();
    let input: string | Readable;
    try {
      // From the start of a segment the frame is decoded as the bytes arrive; seeking needs a file.
      if (c.offset === 0) input = await openSegment(deps.s3, deps.bucket, segment, deps.inits, deps.signal);
      else await fetchSegment(deps.s3, deps.bucket, segment, (input = src), deps.inits, deps.signal);
    } catch (err) {
      if (!(err instanceof SegmentUnreadable)) throw err;
      if (err.reason === "missing") missing.push(err.key);
      tried.push(err.message);
      deps.log.warn({ segment: segment.key, why: err.message }, "poster segment unreadable, trying another");
      continue;
    }
    const t1 = performance.now();
    const frame = await grabPosterFrame(deps.ffmpeg, input, out, c.offset, deps.signal);
    await rm(src, { force: true });
    deps.log.debug({ segment: segment.key, openMs: Math.round(t1 - t0), decodeMs: Math.round(performance.now() - t1), ok: frame.ok }, "poster frame tried");
    if (!frame.ok && frame.noVideo) throw new NoVideo(`${segment.key} holds no video stream`);
    if (!frame.ok) {
      tried.push(`${segment.key}: ${frame.why}`);
      deps.log.warn({ segment: segment.key, why: frame.why }, "no poster frame from segment, trying another");
      continue;
    }
    const jpeg = await readFile(out).catch(() => new Uint8Array());
    const size = jpegSize(jpeg);
    if (!size) {
      tried.push(`${segment.key}: ffmpeg wrote an empty or truncated JPEG (${jpeg.length} bytes)`);
      deps.log.warn({ segment: segment.key, bytes: jpeg.length }, "empty or truncated poster JPEG, trying another segment");
      continue;
    }
    const poster: Poster = { jpeg, ...size, segment, at: segment.start + c.offset, yavg: frame.yavg };
    if (frame.yavg >= BLACK_YAVG) return poster;
    tried.push(`${segment.key}: black frame (luma ${frame.yavg.toFixed(1)})`);
    if (!darkest || poster.yavg > darkest.yavg) darkest = poster;
  }
  // A stream that is dark throughout gets its brightest frame: a dark poster, never an empty file.
  if (darkest) return darkest;
  if (missing.length > 0)
    throw new TransientError(`no poster yet: segment(s) ${missing.join(", ")} are not in the bucket; it will be retried when they have been uploaded`);
  throw new PermanentError(`no video frame could be decoded for the poster (${tried.join("; ")}); check that the segments hold H.264 or HEVC video`);
}
