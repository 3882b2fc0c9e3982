import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { boxes, codecSignature, readFragmented, type Run, type SegmentMedia, type TrackInit } from "./fragments.js";
import { buildMoov, ftyp, joinRuns, MDAT_HEADER_BYTES, packRuns, TimelineError, unpackRuns } from "./moov.js";
import { alignFreeBytes, alignPadding } from "./part-alignment.js";

// The live assembly's pure parts: FFmpeg's fragmented output read back into sample tables, tables joined
// across segments, packed state, and the moov written from them. FFmpeg makes the inputs (a 3-segment HLS
// with B-frames) and is the judge: the MP4 written here must hold exactly the packets of FFmpeg's own remux.

let dir: string;
const segments: SegmentMedia[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "moov-unit-"));
  await execa("ffmpeg", [
    "-hide_banner", "-loglevel", "error", "-y",
    "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=6",
    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=6",
    "-c:v", "libx264", "-preset", "ultrafast", "-bf", "2", "-g", "50", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k",
    "-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod", "-hls_segment_filename", join(dir, "seg%03d.ts"), join(dir, "index.m3u8"),
  ]);
  for (const name of (await readdir(dir)).filter((n) => n.endsWith(".ts")).sort()) {
    const r = await execa("ffmpeg", [
      "-hide_banner", "-loglevel", "error", "-f", "mpegts", "-copyts", "-i", "pipe:0", "-map", "0:v:0?", "-map", "0:a:0?", "-c", "copy", "-bsf:a", "aac_adtstoasc",
      "-f", "mp4", "-movflags", "frag_custom+empty_moov+default_base_moof+delay_moov+frag_discont", "-fflags", "+bitexact", "pipe:1",
    ], { input: await readFile(join(dir, name)), encoding: "buffer" });
    segments.push(readFragmented(Buffer.from(r.stdout)));
  }
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function placed(list: SegmentMedia[]): { runs: { run: Run; base: number }[]; bytes: number } {
  const runs: { run: Run; base: number }[] = [];
  let at = 0;
  for (const s of list) {
    for (const run of s.runs) runs.push({ run, base: at });
    at += s.media.length;
  }
  return { runs, bytes: at };
}

test("FFmpeg's fragment of one segment reads back as one run per track with the source's decode times", () => {
  assert.equal(segments.length, 3);
  const [first, second] = segments;
  assert.deepEqual(first!.tracks.map((t) => [t.kind, t.format, t.timescale]), [["video", "avc1", 90000], ["audio", "mp4a", 48000]]);
  assert.equal(first!.tracks[1]!.objectType, 0x40, "AAC");
  const video = first!.runs.find((r) => r.track === 0)!;
  assert.equal(video.sizes.length, 50, "2 s of 25 fps");
  assert.equal(video.sync[0], 1, "a segment starts on a keyframe");
  assert.ok(video.cts.some((c) => c > 0), "B-frames have composition offsets");
  const sum = video.sizes.reduce((n, x) => n + x, 0) + first!.runs.find((r) => r.track === 1)!.sizes.reduce((n, x) => n + x, 0);
  assert.equal(sum, first!.media.length, "the runs cover the media bytes");
  // Decode times stay absolute (-copyts): the second segment starts where the first ends.
  const next = second!.runs.find((r) => r.track === 0)!;
  assert.equal(next.firstDts, video.firstDts + 50 * 3600);
  assert.ok(codecSignature(first!.init).equals(codecSignature(second!.init)), "one codec configuration");
});

test("the MP4 written from the joined tables holds exactly the packets of FFmpeg's own remux of the playlist", async () => {
  const { runs, bytes } = placed(segments);
  const tables = joinRuns(segments[0]!.tracks, runs);
  const head = ftyp(tables);
  const plan = buildMoov(segments[0]!.init, tables, head.length, bytes);
  assert.equal(plan.co64, false);
  const mdat = Buffer.alloc(MDAT_HEADER_BYTES);
  mdat.writeUInt32BE(1, 0);
  mdat.write("mdat", 4, "latin1");
  mdat.writeBigUInt64BE(BigInt(MDAT_HEADER_BYTES + bytes), 8);
  const mine = join(dir, "mine.mp4");
  await writeFile(mine, Buffer.concat([head, plan.moov, mdat, ...segments.map((s) => s.media)]));
  const theirs = join(dir, "theirs.mp4");
  await execa("ffmpeg", ["-hide_banner", "-loglevel", "error", "-y", "-i", join(dir, "index.m3u8"), "-map", "0:v:0", "-map", "0:a:0", "-c", "copy", theirs]);
  const md5 = async (f: string) => (await execa("ffmpeg", ["-v", "error", "-i", f, "-map", "0", "-c", "copy", "-f", "framemd5", "-"])).stdout.split("\n").filter((l) => !l.startsWith("#")).join("\n");
  assert.equal(await md5(mine), await md5(theirs));
  const duration = async (f: string) => Number((await execa("ffprobe", ["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", f])).stdout);
  assert.equal(await duration(mine), await duration(theirs));
  assert.ok(Math.abs(plan.duration - (await duration(theirs))) < 0.002, "the duration the row gets is what ffprobe reads");
});

test("parts padded to 4 KiB (a free box after the moov, zeros in the mdat) still hold exactly FFmpeg's packets", async () => {
  // As the live assembly lays out its parts for stores that clone block-aligned ranges: segment 1 ends part 1.
  const ALIGN = 4096;
  const runs: { run: Run; base: number }[] = [];
  const media: Buffer[] = [];
  let at = 0;
  for (const [i, s] of segments.entries()) {
    for (const run of s.runs) runs.push({ run, base: at });
    const zeros = i === 0 || i === segments.length - 1 ? 0 : alignPadding(s.media.length);
    media.push(s.media, Buffer.alloc(zeros));
    at += s.media.length + zeros;
  }
  const tables = joinRuns(segments[0]!.tracks, runs);
  const head = ftyp(tables);
  const plan = buildMoov(segments[0]!.init, tables, head.length, at, (moovBytes) => alignFreeBytes(head.length + moovBytes + MDAT_HEADER_BYTES + segments[0]!.media.length));
  assert.ok(plan.free.length >= 8, "a free box fills part 1 up");
  assert.equal(plan.free.toString("latin1", 4, 8), "free");
  assert.equal((head.length + plan.moov.length + plan.free.length + MDAT_HEADER_BYTES + segments[0]!.media.length) % ALIGN, 0, "part 1 ends on a block");
  const mdat = Buffer.alloc(MDAT_HEADER_BYTES);
  mdat.writeUInt32BE(1, 0);
  mdat.write("mdat", 4, "latin1");
  mdat.writeBigUInt64BE(BigInt(MDAT_HEADER_BYTES + at), 8);
  const mine = join(dir, "aligned.mp4");
  await writeFile(mine, Buffer.concat([head, plan.moov, plan.free, mdat, ...media]));
  const theirs = join(dir, "theirs-aligned.mp4");
  await execa("ffmpeg", ["-hide_banner", "-loglevel", "error", "-y", "-i", join(dir, "index.m3u8"), "-map", "0:v:0", "-map", "0:a:0", "-c", "copy", theirs]);
  const md5 = async (f: string) => (await execa("ffmpeg", ["-v", "error", "-i", f, "-map", "0", "-c", "copy", "-f", "framemd5", "-"])).stdout.split("\n").filter((l) => !l.startsWith("#")).join("\n");
  assert.equal(await md5(mine), await md5(theirs));
});

test("past 4 GB the chunk offsets are 64-bit and point past the moov", () => {
  const { runs } = placed(segments);
  const tables = joinRuns(segments[0]!.tracks, runs);
  const media = 5 * 1024 ** 3;
  const plan = buildMoov(segments[0]!.init, tables, 32, media);
  assert.equal(plan.co64, true);
  const offsets: bigint[] = [];
  const walk = (start: number, end: number) => {
    for (const b of boxes(plan.moov, start, end)) {
      if (["moov", "trak", "mdia", "minf", "stbl"].includes(b.type)) walk(b.payload, b.end);
      if (b.type === "stco") assert.fail("32-bit offsets in a file over 4 GB");
      if (b.type === "co64") {
        const n = plan.moov.readUInt32BE(b.payload + 4);
        for (let i = 0; i < n; i++) offsets.push(plan.moov.readBigUInt64BE(b.payload + 8 + i * 8));
      }
    }
  };
  walk(0, plan.moov.length);
  assert.equal(offsets.length, 6, "one chunk per track per segment");
  assert.equal(Number(offsets.reduce((a, b) => (a < b ? a : b))), 32 + plan.moov.length + MDAT_HEADER_BYTES);
});

const track: TrackInit = { id: 1, kind: "video", timescale: 90000, format: "avc1" };
const run = (firstDts: number, n: number, duration = 3600): Run => ({
  track: 0,
  firstDts,
  offset: 0,
  sizes: new Uint32Array(n).fill(100),
  durations: new Uint32Array(n).fill(duration),
  cts: new Int32Array(n),
  sync: Uint8Array.from({ length: n }, (_, i) => (i === 0 ? 1 : 0)),
});

test("a run's last duration becomes the distance to the next run's first decode time", () => {
  // The source's next segment starts 1 frame late (3600 + 1800): the previous last frame lasts that much longer.
  const [t] = joinRuns([track], [{ run: run(1000, 3), base: 0 }, { run: run(1000 + 3 * 3600 + 1800, 2), base: 300 }]);
  assert.deepEqual(t!.durations, [3600, 3600, 5400, 3600, 3600]);
  assert.deepEqual(t!.chunks, [{ offset: 0, count: 3 }, { offset: 300, count: 2 }]);
  assert.deepEqual(t!.syncs, [1, 4]);
  assert.equal(t!.firstDts, 1000);
});

test("a timestamp jump between segments (a wrap, a restart) is refused rather than written into the MP4", () => {
  assert.throws(() => joinRuns([track], [{ run: run(0, 3), base: 0 }, { run: run(90000 * 5, 2), base: 300 }]), TimelineError);
  assert.throws(() => joinRuns([track], [{ run: run(90000 * 5, 3), base: 0 }, { run: run(0, 2), base: 300 }]), TimelineError);
});

test("a part's tables survive packing: the same runs come back, offsets counted from the part's start", () => {
  const a = run(123456789, 4);
  a.cts.set([7200, -3600, 0, 3600]);
  a.offset = 10;
  const b = { ...run(42, 2), track: 1 };
  const packed = packRuns([{ run: a, base: 0 }, { run: b, base: 1000 }]);
  const back = unpackRuns(packed);
  assert.equal(back.length, 2);
  assert.deepEqual([...back[0]!.run.cts], [7200, -3600, 0, 3600]);
  assert.deepEqual([back[0]!.run.firstDts, back[0]!.run.offset, back[1]!.run.offset, back[1]!.run.track], [123456789, 10, 1000, 1]);
  assert.deepEqual([...back[1]!.run.sizes], [100, 100]);
  assert.deepEqual([...back[0]!.run.sync], [1, 0, 0, 0]);
});
