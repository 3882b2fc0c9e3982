// The thumbnail's timeline of a playlist with #EXT-X-GAP entries: the poster and storyboard never read
// a gap's segment, and their times are the MP4's (convert closes the hole in an MPEG-TS recording).
import { test } from "node:test";
import assert from "node:assert/strict";
import { guessTimeline } from "./playlist.js";

test("gap entries are left off the thumbnail's timeline: never fetched, and the storyboard's times run on as the MP4's do", () => {
  const text = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\nseg00000.ts\n#EXT-X-GAP\n#EXTINF:4,\nseg00001.ts\n#EXT-X-GAP\n#EXTINF:4,\nseg00002.ts\n#EXTINF:3,\nseg00003.ts\n#EXT-X-ENDLIST\n";
  const t = guessTimeline("cam/s1/index.m3u8", text, "etag")!;
  assert.deepEqual(t.segments.map((s) => [s.key, s.start, s.duration]), [
    ["cam/s1/seg00000.ts", 0, 4],
    ["cam/s1/seg00003.ts", 4, 3],
  ]);
  assert.equal(t.duration, 7);
});
