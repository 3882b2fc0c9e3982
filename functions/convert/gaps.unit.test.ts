import { test } from "node:test";
import assert from "node:assert/strict";
import { gapsInPart, type Packet } from "./gaps.js";

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
