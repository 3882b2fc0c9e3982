import { test } from "node:test";
import assert from "node:assert/strict";
import { Playlist, nextSegmentIndex, segmentFileName } from "./playlist.js";

test("an event playlist lists segments in order, marks a reconnect with a discontinuity and ends with ENDLIST only when finished", () => {
  const p = new Playlist(4);
  p.add({ uri: segmentFileName(0), duration: 4.04, discontinuity: false });
  p.add({ uri: segmentFileName(1), duration: 2.5, discontinuity: false });
  p.add({ uri: segmentFileName(2), duration: 4, discontinuity: true });
  const live = p.render(false);
  assert.match(live, /#EXT-X-PLAYLIST-TYPE:EVENT/);
  assert.match(live, /#EXT-X-TARGETDURATION:4/);
  assert.doesNotMatch(live, /#EXT-X-ENDLIST/);
  assert.match(live, /seg00001\.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:4,\nseg00002\.ts/);
  const ended = p.render(true);
  assert.ok(ended.trimEnd().endsWith("#EXT-X-ENDLIST"));
});

test("a stored playlist read back resumes numbering after its highest segment", () => {
  const p = new Playlist(4, [
    { uri: "seg00000.ts", duration: 4, discontinuity: false },
    { uri: "seg00007.ts", duration: 4, discontinuity: true },
  ]);
  const back = Playlist.parse(p.render(false), 4)!;
  assert.equal(back.ended, false);
  assert.equal(back.playlist.entries.length, 2);
  assert.equal(back.playlist.entries[1]!.discontinuity, true);
  assert.equal(nextSegmentIndex(back.playlist.entries), 8);
});

test("a segment longer than the nominal length raises the target duration so players accept it", () => {
  const p = new Playlist(4, [{ uri: "seg00000.ts", duration: 6.4, discontinuity: false }]);
  assert.match(p.render(false), /#EXT-X-TARGETDURATION:6/);
});
