import { deflateSync, inflateSync } from "node:zlib";
import { boxes, child, FragmentError, moovRoot, need, readInit, type Box, type Run, type TrackInit } from "./fragments.js";
import { freeBox } from "./part-alignment.js";

// An ordinary (not fragmented) faststart MP4's index, written from the sample tables of runs of samples that
// were appended one after another to the file's single mdat: [ftyp][moov][mdat header][media].
//
// Each run (one track's samples of one segment) becomes one chunk. stts/ctts/stss/stsz/stsc/stco|co64 are
// written here; the track headers, handlers and sample descriptions (stsd, the codec configuration) are taken
// from FFmpeg's own moov for the segments, so the codec boxes are the ones the whole-folder path writes.
// Sample durations across segment boundaries come from the decode times: the next run's first decode time
// minus this run's last.

/** The movie timescale FFmpeg's MP4 muxer uses too. */
const MOVIE_TIMESCALE = 1000;
/** mdat with a 64-bit size: its size is only known at the end, and may pass 4 GB. */
export const MDAT_HEADER_BYTES = 16;

/** One track's samples, in decode order, and where its chunks sit in the media (offsets from the first media byte). */
export interface TrackSamples {
  init: TrackInit;
  firstDts: number;
  sizes: number[];
  durations: number[];
  cts: number[];
  /** 1-based numbers of the keyframes. */
  syncs: number[];
  chunks: { offset: number; count: number }[];
}

/** A timestamp jump between two runs that a continuous MP4 cannot hold as it is; the whole-folder path folds such jumps. */
export class TimelineError extends Error {
  readonly kind = "timeline" as const;
  override name = "TimelineError";
}

/**
 * Joins runs (in media order; `base` is each run's media offset from the first media byte) into per-track
 * sample tables. A run's last duration becomes the distance to the next run's first decode time; a jump larger
 * than `maxGapSeconds` either way is refused (TimelineError).
 */
export function joinRuns(tracks: TrackInit[], runs: { run: Run; base: number }[], maxGapSeconds = 0.5): TrackSamples[] {
  const out: TrackSamples[] = tracks.map((init) => ({ init, firstDts: 0, sizes: [], durations: [], cts: [], syncs: [], chunks: [] }));
  const nextDts: (number | undefined)[] = tracks.map(() => undefined);
  for (const { run, base } of runs) {
    const t = out[run.track]!;
    const expected = nextDts[run.track];
    if (expected === undefined) t.firstDts = run.firstDts;
    else {
      const gap = run.firstDts - expected;
      const last = t.durations.length - 1;
      const fixed = t.durations[last]! + gap;
      if (Math.abs(gap) > maxGapSeconds * t.init.timescale || fixed <= 0) {
        throw new TimelineError(`${t.init.kind} timestamps jump by ${(gap / t.init.timescale).toFixed(3)} s between segments`);
      }
      t.durations[last] = fixed;
    }
    t.chunks.push({ offset: base + run.offset, count: run.sizes.length });
    const n0 = t.sizes.length;
    for (let i = 0; i < run.sizes.length; i++) {
      t.sizes.push(run.sizes[i]!);
      t.durations.push(run.durations[i]!);
      t.cts.push(run.cts[i]!);
      if (run.sync[i]) t.syncs.push(n0 + i + 1);
    }
    let end = run.firstDts;
    for (let i = 0; i < run.durations.length; i++) end += run.durations[i]!;
    nextDts[run.track] = end;
  }
  return out.filter((t) => t.sizes.length > 0);
}

// --- writing boxes

function box(type: string, ...payload: Buffer[]): Buffer {
  const size = 8 + payload.reduce((n, b) => n + b.length, 0);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(size, 0);
  head.write(type, 4, "latin1");
  return Buffer.concat([head, ...payload]);
}

function fullBox(type: string, version: number, flags: number, ...payload: Buffer[]): Buffer {
  const vf = Buffer.alloc(4);
  vf.writeUInt32BE(((version & 0xff) << 24) | (flags & 0xffffff), 0);
  return box(type, vf, ...payload);
}

function u32s(values: ArrayLike<number>): Buffer {
  // Filled natively and swapped to big-endian in one call: a 4 h moov has a million sizes.
  const a = Uint32Array.from(values as ArrayLike<number>, (v) => v >>> 0);
  const b = Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  return new Uint16Array(new Uint8Array([1, 0]).buffer)[0] === 1 ? b.swap32() : b;
}

const MATRIX = [0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000];

/** Run-length pairs of a list, flat: count, value, count, value, ... */
function runLengths(values: number[]): number[] {
  const out: number[] = [];
  let last = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (i > 0 && last === v) out[out.length - 2]!++;
    else out.push(1, v);
    last = v;
  }
  return out;
}

function stts(t: TrackSamples): Buffer {
  const pairs = runLengths(t.durations);
  return fullBox("stts", 0, 0, u32s([pairs.length / 2]), u32s(pairs));
}

function ctts(t: TrackSamples): Buffer | undefined {
  let negative = false;
  let any = false;
  for (const c of t.cts) {
    if (c !== 0) any = true;
    if (c < 0) negative = true;
  }
  if (!any) return undefined;
  // Negative offsets (version 1) are two's complement: the same 32 bits u32s writes for them.
  const pairs = runLengths(t.cts);
  return fullBox("ctts", negative ? 1 : 0, 0, u32s([pairs.length / 2]), u32s(pairs));
}

function stss(t: TrackSamples): Buffer | undefined {
  if (t.syncs.length === t.sizes.length) return undefined;
  return fullBox("stss", 0, 0, u32s([t.syncs.length]), u32s(t.syncs));
}

function stsz(t: TrackSamples): Buffer {
  return fullBox("stsz", 0, 0, u32s([0, t.sizes.length]), u32s(t.sizes));
}

function stsc(t: TrackSamples): Buffer {
  const entries: number[] = [];
  let last = -1;
  t.chunks.forEach((c, i) => {
    if (c.count === last) return;
    entries.push(i + 1, c.count, 1);
    last = c.count;
  });
  return fullBox("stsc", 0, 0, u32s([entries.length / 3]), u32s(entries));
}

function chunkOffsets(t: TrackSamples, mediaStart: number, co64: boolean): Buffer {
  if (!co64) return fullBox("stco", 0, 0, u32s([t.chunks.length]), u32s(t.chunks.map((c) => mediaStart + c.offset)));
  const b = Buffer.alloc(4 + t.chunks.length * 8);
  b.writeUInt32BE(t.chunks.length, 0);
  t.chunks.forEach((c, i) => b.writeBigUInt64BE(BigInt(mediaStart + c.offset), 4 + i * 8));
  return fullBox("co64", 0, 0, b);
}

/** Sum of the durations, in the track's timescale. */
function mediaDuration(t: TrackSamples): number {
  let d = 0;
  for (const x of t.durations) d += x;
  return d;
}

/** Presentation time of the earliest-presented sample among the first ones (B-frames reorder only within a GOP). */
function firstPts(t: TrackSamples): number {
  let dts = t.firstDts;
  let min = Infinity;
  for (let i = 0; i < Math.min(t.sizes.length, 64); i++) {
    min = Math.min(min, dts + t.cts[i]!);
    dts += t.durations[i]!;
  }
  return min;
}

export interface MoovPlan {
  moov: Buffer;
  /** Longest track, in seconds, as players (and ffprobe) read it. */
  duration: number;
  co64: boolean;
  /** A `free` box to write between the moov and the mdat header (empty when no gap was asked for). */
  free: Buffer;
}

/** The ftyp FFmpeg's MP4 muxer writes by default. */
export function ftyp(tracks: TrackSamples[]): Buffer {
  const brands = ["isom", "iso2", ...(tracks.some((t) => t.init.format === "avc1") ? ["avc1"] : []), "mp41"];
  const minor = Buffer.alloc(4);
  minor.writeUInt32BE(512, 0);
  return box("ftyp", Buffer.from("isom", "latin1"), minor, Buffer.from(brands.join(""), "latin1"));
}

/**
 * The moov of an MP4 laid out as [ftyp (ftypBytes)][moov][free (gap(moov bytes), optional)][mdat header][media];
 * `init` is FFmpeg's moov for the segments (track headers and sample descriptions are taken from it). 64-bit
 * chunk offsets when the file passes 4 GB. `gap` gives the bytes of a `free` box after the moov (0, or at least
 * 8), for a caller that needs the media to start at a chosen alignment.
 */
export function buildMoov(init: Buffer, tracks: TrackSamples[], ftypBytes: number, mediaBytes: number, gap: (moovBytes: number) => number = () => 0): MoovPlan {
  // The moov's size does not depend on the offsets' values, and co64 adds 4 bytes per chunk: one sizing pass.
  // The sample tables are written once and reused by the second pass, which only changes the chunk offsets.
  const tables = new Map<TrackSamples, Buffer[]>();
  const sized = writeMoov(init, tracks, 0, false, tables).moov.length;
  const chunks = tracks.reduce((n, t) => n + t.chunks.length, 0);
  const co64 = ftypBytes + sized + gap(sized) + MDAT_HEADER_BYTES + mediaBytes > 0xffffffff;
  const size = co64 ? sized + 4 * chunks : sized;
  const freeBytes = gap(size);
  if (freeBytes !== 0 && freeBytes < 8) throw new FragmentError(`a free box cannot be ${freeBytes} bytes`);
  const plan = writeMoov(init, tracks, ftypBytes + size + freeBytes + MDAT_HEADER_BYTES, co64, tables);
  if (plan.moov.length !== size) throw new FragmentError(`moov came out ${plan.moov.length} bytes, not the ${size} planned`);
  return { ...plan, free: freeBox(freeBytes) };
}

function writeMoov(initBuf: Buffer, tracks: TrackSamples[], mediaStart: number, co64: boolean, memo: Map<TrackSamples, Buffer[]>): Omit<MoovPlan, "free"> {
  const root = moovRoot(initBuf);
  const traks = boxes(initBuf, root.payload, root.end).filter((b) => b.type === "trak");
  const ids = readInit(initBuf).map((t) => t.id);
  const starts = tracks.map((t) => firstPts(t) / t.init.timescale);
  const t0 = Math.min(...starts);
  let movieDuration = 0;
  const trakBoxes = tracks.map((t, i) => {
    const trak = traks[ids.indexOf(t.init.id)];
    if (!trak) throw new FragmentError(`track ${t.init.id} is not in the codec configuration`);
    const ts = t.init.timescale;
    const mediaTime = firstPts(t) - t.firstDts;
    const dur = mediaDuration(t);
    const empty = Math.round((starts[i]! - t0) * MOVIE_TIMESCALE);
    // As FFmpeg writes it: the edit shows the whole media duration from the first presented sample.
    // Rounded up, as FFmpeg does: rounded down, players would cut the last sample short to fit the edit.
    const shown = Math.ceil((dur / ts) * MOVIE_TIMESCALE);
    const entries: [number, number][] = [];
    if (empty > 0) entries.push([empty, -1]);
    entries.push([shown, mediaTime]);
    const trackDuration = empty + shown;
    movieDuration = Math.max(movieDuration, trackDuration);
    const elst = Buffer.alloc(4 + entries.length * 12);
    elst.writeUInt32BE(entries.length, 0);
    entries.forEach(([d, m], k) => {
      elst.writeUInt32BE(d, 4 + k * 12);
      elst.writeInt32BE(m, 8 + k * 12);
      elst.writeUInt32BE(0x10000, 12 + k * 12);
    });
    let fixed = memo.get(t);
    if (!fixed) {
      fixed = [copyOf(initBuf, stblOf(initBuf, trak), "stsd"), stts(t), ctts(t), stss(t), stsc(t), stsz(t)].filter((b): b is Buffer => Boolean(b));
      memo.set(t, fixed);
    }
    const stbl = box("stbl", ...fixed, chunkOffsets(t, mediaStart, co64));
    const mdia = need(initBuf, trak, "mdia");
    const minf = need(initBuf, mdia, "minf");
    const minfKids = boxes(initBuf, minf.payload, minf.end).filter((b) => b.type !== "stbl").map((b) => initBuf.subarray(b.start, b.end));
    return box(
      "trak",
      tkhd(initBuf, need(initBuf, trak, "tkhd"), trackDuration),
      box("edts", fullBox("elst", 0, 0, elst)),
      box("mdia", mdhd(initBuf, need(initBuf, mdia, "mdhd"), dur), copyOf(initBuf, mdia, "hdlr"), box("minf", ...minfKids, stbl)),
    );
  });
  const mvhd = Buffer.alloc(96);
  mvhd.writeUInt32BE(MOVIE_TIMESCALE, 8);
  mvhd.writeUInt32BE(movieDuration, 12);
  mvhd.writeUInt32BE(0x10000, 16);
  mvhd.writeUInt16BE(0x100, 20);
  MATRIX.forEach((m, k) => mvhd.writeUInt32BE(m >>> 0, 32 + k * 4));
  mvhd.writeUInt32BE(Math.max(...ids) + 1, 92);
  const moov = box("moov", fullBox("mvhd", 0, 0, mvhd), ...trakBoxes);
  return { moov, duration: movieDuration / MOVIE_TIMESCALE, co64 };
}


function stblOf(buf: Buffer, trak: Box): Box {
  return need(buf, need(buf, need(buf, trak, "mdia"), "minf"), "stbl");
}

function copyOf(buf: Buffer, parent: Box, type: string): Buffer {
  const b = need(buf, parent, type);
  return buf.subarray(b.start, b.end);
}

/** FFmpeg's tkhd with this duration (movie timescale), always version 0 (32 bits of milliseconds is 49 days). */
function tkhd(buf: Buffer, b: Box, duration: number): Buffer {
  const v = buf[b.payload]!;
  const src = buf.subarray(b.payload, b.end);
  const out = Buffer.alloc(84);
  out.writeUInt32BE(src.readUInt32BE(0) & 0xffffff, 0);
  const rest = v === 1 ? 36 : 24;
  out.writeUInt32BE(src.readUInt32BE(v === 1 ? 20 : 12), 12);
  out.writeUInt32BE(duration, 20);
  src.copy(out, 24, rest, rest + 60);
  return box("tkhd", out);
}

/** FFmpeg's mdhd with this duration (track timescale); version 1 when it needs 64 bits. */
function mdhd(buf: Buffer, b: Box, duration: number): Buffer {
  const v = buf[b.payload]!;
  const timescale = buf.readUInt32BE(b.payload + (v === 1 ? 20 : 12));
  const language = buf.readUInt16BE(b.payload + (v === 1 ? 32 : 20));
  if (duration <= 0xffffffff) {
    const p = Buffer.alloc(20);
    p.writeUInt32BE(timescale, 8);
    p.writeUInt32BE(duration, 12);
    p.writeUInt16BE(language, 16);
    return fullBox("mdhd", 0, 0, p);
  }
  const p = Buffer.alloc(32);
  p.writeUInt32BE(timescale, 16);
  p.writeBigUInt64BE(BigInt(duration), 20);
  p.writeUInt16BE(language, 28);
  return fullBox("mdhd", 1, 0, p);
}

/** Width and height a video track's tkhd says (16.16 fixed point). */
export function videoSize(init: Buffer, trackId: number): { width: number; height: number } | undefined {
  const [root] = boxes(init);
  if (!root) return undefined;
  for (const trak of boxes(init, root.payload, root.end).filter((b) => b.type === "trak")) {
    const h = need(init, trak, "tkhd");
    const v = init[h.payload]!;
    if (init.readUInt32BE(h.payload + (v === 1 ? 20 : 12)) !== trackId) continue;
    const at = h.payload + (v === 1 ? 88 : 76);
    return { width: init.readUInt32BE(at) >>> 16, height: init.readUInt32BE(at + 4) >>> 16 };
  }
  return undefined;
}

// --- the compact state of a part: its runs' tables, packed and deflated

export interface PackedRun {
  run: Run;
  /** Media offset of the run from the part's first byte. */
  base: number;
}

/** Packs runs into one deflated buffer: a small JSON header, then the sizes, durations, offsets and flags. */
export function packRuns(runs: PackedRun[]): Buffer {
  const head = runs.map(({ run, base }) => [run.track, run.firstDts, base + run.offset, run.sizes.length]);
  const json = Buffer.from(JSON.stringify(head));
  const len = Buffer.alloc(4);
  len.writeUInt32BE(json.length, 0);
  const parts: Buffer[] = [len, json];
  for (const { run } of runs) parts.push(Buffer.from(run.sizes.buffer, run.sizes.byteOffset, run.sizes.byteLength));
  for (const { run } of runs) parts.push(Buffer.from(run.durations.buffer, run.durations.byteOffset, run.durations.byteLength));
  for (const { run } of runs) parts.push(Buffer.from(run.cts.buffer, run.cts.byteOffset, run.cts.byteLength));
  for (const { run } of runs) parts.push(Buffer.from(run.sync.buffer, run.sync.byteOffset, run.sync.byteLength));
  return deflateSync(Buffer.concat(parts), { level: 6 });
}

/** The runs packRuns packed; each run's `offset` is from the part's first byte (base 0). */
export function unpackRuns(packed: Buffer): PackedRun[] {
  const raw = inflateSync(packed);
  const len = raw.readUInt32BE(0);
  const head = JSON.parse(raw.toString("utf8", 4, 4 + len)) as [number, number, number, number][];
  let p = 4 + len;
  const take = <T>(n: number, bytes: number, make: (b: ArrayBuffer) => T): T => {
    // Copied out so the typed array is aligned whatever the header's length.
    const slice = raw.buffer.slice(raw.byteOffset + p, raw.byteOffset + p + n * bytes);
    p += n * bytes;
    return make(slice);
  };
  const runs: Run[] = head.map(([track, firstDts, offset]) => ({ track, firstDts, offset, sizes: new Uint32Array(0), durations: new Uint32Array(0), cts: new Int32Array(0), sync: new Uint8Array(0) }));
  head.forEach(([, , , n], i) => (runs[i]!.sizes = take(n, 4, (b) => new Uint32Array(b))));
  head.forEach(([, , , n], i) => (runs[i]!.durations = take(n, 4, (b) => new Uint32Array(b))));
  head.forEach(([, , , n], i) => (runs[i]!.cts = take(n, 4, (b) => new Int32Array(b))));
  head.forEach(([, , , n], i) => (runs[i]!.sync = take(n, 1, (b) => new Uint8Array(b))));
  return runs.map((run) => ({ run, base: 0 }));
}
