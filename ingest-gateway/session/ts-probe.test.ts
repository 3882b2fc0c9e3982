import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { probeChunks, hasIdrSlice } from "./ts-probe.js";

async function ts(name: string, video: string[], audio: string[], seconds = 12): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), "ts-probe-"));
  const out = join(dir, name);
  await execa("ffmpeg", [
    "-hide_banner", "-loglevel", "error",
    "-f", "lavfi", "-i", `testsrc2=size=320x180:rate=25:duration=${seconds}`,
    "-f", "lavfi", "-i", `sine=sample_rate=48000:duration=${seconds}`,
    ...video, ...audio, "-f", "mpegts", out,
  ]);
  return readFile(out);
}

function feed(buf: Buffer, segmentSeconds = 4) {
  // Chunks the size SRT delivers (7 TS packets), with a split packet now and then.
  const chunks: Buffer[] = [];
  for (let i = 0; i < buf.length; i += 1316 + (i % 3 === 0 ? 5 : 0)) chunks.push(buf.subarray(i, i + 1316 + (i % 3 === 0 ? 5 : 0)));
  return probeChunks(chunks, segmentSeconds);
}

const x264 = (gop: number) => ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", String(gop), "-keyint_min", String(gop), "-sc_threshold", "0"];

test("H.264/AAC with keyframes every 2 s is passed through", async () => {
  const d = feed(await ts("a.ts", x264(50), ["-c:a", "aac"]));
  assert.equal(d?.profile, "copy");
  assert.equal(d?.keyframeIntervalSeconds, 2);
  assert.equal(d?.video, "h264");
  assert.equal(d?.audio, "aac");
});

test("packets lost in transit do not make a stream with 2 s keyframes look like one that needs transcoding", async () => {
  const buf = await ts("lossy.ts", x264(50), ["-c:a", "aac"]);
  const kept: Buffer[] = [];
  // Drop one packet in 40, as a congested SRT link does with packets that arrive too late.
  for (let i = 0, n = 0; i + 188 <= buf.length; i += 188, n++) if (n % 40 !== 17) kept.push(buf.subarray(i, i + 188));
  const d = feed(Buffer.concat(kept));
  assert.equal(d?.profile, "copy", d?.reason);
});

test("H.264 whose keyframes are further apart than a segment is transcoded", async () => {
  const d = feed(await ts("b.ts", x264(250), ["-c:a", "aac"]));
  assert.equal(d?.profile, "transcode");
  assert.match(d!.reason, /keyframe/);
});

test("MPEG-2 video is transcoded, and the reason names the codec", async () => {
  const d = feed(await ts("c.ts", ["-c:v", "mpeg2video", "-g", "12"], ["-c:a", "mp2"]));
  assert.equal(d?.profile, "transcode");
  assert.match(d!.reason, /mpeg2video/);
});

test("H.264 with MP2 audio is transcoded because of the audio", async () => {
  const d = feed(await ts("d.ts", x264(50), ["-c:a", "mp2"]));
  assert.equal(d?.profile, "transcode");
  assert.match(d!.reason, /audio is mp2/);
});

test("an IDR slice is found after SPS/PPS/SEI, and a non-IDR slice first means no keyframe", () => {
  assert.equal(hasIdrSlice(Buffer.from([0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 1, 0x06, 9, 0, 0, 1, 0x65, 0x88])), true);
  assert.equal(hasIdrSlice(Buffer.from([0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x41, 0x9a])), false);
});
