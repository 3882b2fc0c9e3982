import { test } from "node:test";
import assert from "node:assert/strict";
import { keyframesOnBoundaries, parseLadder, planLadder, type SourceFacts } from "./ladder.js";
import { ladderArgs } from "./encode.js";

const src = (o: Partial<SourceFacts> = {}): SourceFacts => ({ width: 640, height: 360, videoBitrate: 700_000, frameRate: 25, videoCodec: "h264", keyframesAligned: false, ...o });

test("the default ladder on a 640x360 source has no 1080p or 720p rendition (never upscaled)", () => {
  const plan = planLadder(src(), parseLadder("1080,720,480,360,240"));
  assert.deepEqual(plan.map((r) => r.name), ["360p", "240p"]);
  assert.deepEqual(plan.map((r) => [r.width, r.height]), [[640, 360], [426, 240]]);
});

test("no rendition is above the source's bitrate", () => {
  const plan = planLadder(src({ videoBitrate: 500_000 }), parseLadder("360,240"));
  assert.deepEqual(plan.map((r) => r.videoBitrate), [500_000, 400_000]);
  assert.deepEqual(planLadder(src({ videoBitrate: 300_000 }), parseLadder("360,240")).map((r) => r.videoBitrate), [300_000, 300_000]);
});

test("ABR_LADDER=off is an empty ladder; explicit bitrates are kept; duplicates go", () => {
  assert.deepEqual(parseLadder("off"), []);
  assert.deepEqual(parseLadder("240:300,720,240"), [{ height: 720, kbps: 3000 }, { height: 240, kbps: 300 }]);
});

test("the source rendition is copied only when it is H.264 with keyframes on every segment boundary", () => {
  assert.equal(planLadder(src({ keyframesAligned: true }), parseLadder("360,240"))[0]!.copy, true);
  assert.equal(planLadder(src({ keyframesAligned: false }), parseLadder("360,240"))[0]!.copy, false);
  assert.equal(planLadder(src({ keyframesAligned: true, videoCodec: "hevc" }), parseLadder("360,240"))[0]!.copy, false);
  assert.ok(planLadder(src({ keyframesAligned: true }), parseLadder("360,240")).slice(1).every((r) => !r.copy));
  assert.equal(planLadder(src({ keyframesAligned: true, videoBitrate: 2_000_000 }), parseLadder("360,240"))[0]!.copy, false, "far above the rung's bitrate");
});

test("a source smaller than every rung still gets one rendition at its own size", () => {
  assert.deepEqual(planLadder(src({ width: 256, height: 144 }), parseLadder("360,240")).map((r) => [r.width, r.height]), [[256, 144]]);
});

test("keyframes on boundaries: every multiple of the segment length within one frame", () => {
  assert.equal(keyframesOnBoundaries([0, 2, 4, 6, 8], 4, 9, 25), true);
  assert.equal(keyframesOnBoundaries([0, 3, 6], 4, 9, 25), false);
  assert.equal(keyframesOnBoundaries([0.021, 4.021, 8.021], 4, 11.981, 25), true, "no boundary after the last frame");
  assert.equal(keyframesOnBoundaries([0.021, 2.021, 4.021, 6.021, 8.021], 4, 9.981, 25), true, "the first frame at or after each boundary");
  assert.equal(keyframesOnBoundaries([0, 4.05, 8], 4, 8.96, 25), false, "more than a frame late");
});

test("one FFmpeg process: one split into a scale per encoded rung, the copied rung mapped from the input", () => {
  const renditions = planLadder(src({ keyframesAligned: true }), parseLadder("360,240,144"));
  const args = ladderArgs({ input: "in.mp4", outDir: "out", renditions, hasAudio: true, segmentSeconds: 4 });
  const graph = args[args.indexOf("-filter_complex") + 1]!;
  assert.match(graph, /^\[0:v:0\]split=2\[s1\]\[s2\];\[s1\]scale=426:240.*\[o1\];\[s2\]scale=256:144.*\[o2\]$/);
  assert.deepEqual(args.filter((_, i) => args[i - 1] === "-map"), ["0:v:0", "[o1]", "[o2]", "0:a:0"]);
  assert.equal(args[args.indexOf("-c:v:0") + 1], "copy");
  assert.equal(args[args.indexOf("-force_key_frames:v:1") + 1], "expr:gte(t,n_forced*4)");
  assert.ok(!args.some((a) => a.startsWith("-") && a.endsWith(":v:0") && a !== "-c:v:0"), "no encoder option on the copied stream");
});
