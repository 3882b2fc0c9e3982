import { test } from "node:test";
import assert from "node:assert/strict";
import { gapWarning, gapsInPart, type Packet } from "./gaps.js";

const part = { start: 10, segments: ["a.ts", "b.ts", "c.ts", "d.ts"].map((key) => ({ key, duration: 2 })) };
/** 25 fps video packets from `from` to `to` seconds (decode times offset as an encoder's are). */
const frames = (from: number, to: number): Packet[] => Array.from({ length: Math.round((to - from) * 25) }, (_, i) => ({ dts: 1.4 + from + i / 25, duration: 0.04 }));

test("an intact part has no gap", () => {
  assert.deepEqual(gapsInPart(part, frames(0, 8)), []);
});

test("a lost segment in the middle is a jump: named, placed on the playlist's timeline", () => {
  assert.deepEqual(gapsInPart(part, [...frames(0, 2), ...frames(4, 8)]), [{ segment: "b.ts", startSeconds: 12, missingSeconds: 2 }]);
});

test("loss inside a segment (SRT packet loss) is found where it starts", () => {
  assert.deepEqual(gapsInPart(part, [...frames(0, 5), ...frames(6.5, 8)]), [{ segment: "c.ts", startSeconds: 15, missingSeconds: 1.5 }]);
});

test("loss at the end, at the start (told by reading the first segment alone), and a part with nothing readable", () => {
  assert.deepEqual(gapsInPart(part, frames(0, 6)), [{ segment: "d.ts", startSeconds: 16, missingSeconds: 2 }]);
  assert.deepEqual(gapsInPart(part, frames(2, 8), 2), [{ segment: "a.ts", startSeconds: 10, missingSeconds: 2 }]);
  assert.deepEqual(gapsInPart(part, []), [{ segment: "a.ts", startSeconds: 10, missingSeconds: 8 }]);
});

test("B-frame reordering and jitter of a few frames are not loss", () => {
  const jittered = frames(0, 8).map((p, i) => ({ ...p, dts: p.dts + (i % 7 === 0 ? 0.08 : 0) }));
  assert.deepEqual(gapsInPart(part, jittered), []);
});

test("seconds a broadcast's playlist marks as gaps are named on its timeline, with where the MP4 cuts over them and why", () => {
  const w = gapWarning([{ segment: "cam/s1/seg00010.ts", startSeconds: 40, missingSeconds: 12 }], { broadcast: true, sourcePrefix: "cam/s1" })!;
  assert.equal(w.kind, "gap");
  assert.equal(w.missingSeconds, 12);
  assert.deepEqual(w.at, [{ segment: "seg00010.ts", startSeconds: 40, missingSeconds: 12 }]);
  assert.equal(w.message, "seconds 40.0–52.0 missing: the gateway could not store them (spool full during an object store outage). The MP4 skips them, going on at 0:40 with the media stored after; the rest plays");
});

test("several gap runs of a dropped folder: each named, in order, the MP4's cut points moved up by the gaps before them", () => {
  const w = gapWarning([
    { segment: "f/b.ts", startSeconds: 100, missingSeconds: 4.2 },
    { segment: "f/a.ts", startSeconds: 8, missingSeconds: 2 },
  ], { broadcast: false, sourcePrefix: "f" })!;
  assert.equal(w.missingSeconds, 6.2);
  assert.deepEqual(w.at.map((g) => g.segment), ["a.ts", "b.ts"]);
  assert.match(w.message, /^seconds 8\.0–10\.0 and 100\.0–104\.2 missing \(6\.2 s in all\): the source playlist marks them as a gap \(#EXT-X-GAP\)/);
  assert.match(w.message, /going on at 0:08 and 1:38 with the media stored after/);
});

test("fMP4 sources keep their timestamps: the warning says the MP4 holds a frame over the gap instead of naming a cut", () => {
  const w = gapWarning([{ segment: "f/seg001.m4s", startSeconds: 2, missingSeconds: 2 }], { broadcast: false, sourcePrefix: "f", holeKept: true })!;
  assert.match(w.message, /^seconds 2\.0–4\.0 missing: .*The MP4 keeps the source's timeline: it holds the last frame before each gap until the media after it; the rest plays$/);
});

test("no gap, no warning", () => {
  assert.equal(gapWarning([], { broadcast: true, sourcePrefix: "" }), undefined);
});
