import { test } from "node:test";
import assert from "node:assert/strict";
import { loadAddon } from "./addon.js";

const { parseStreamId } = loadAddon();

test("the three streamid forms OBS users write name the same stream", () => {
  assert.deepEqual(parseStreamId("publish:studio-a"), { name: "studio-a" });
  assert.deepEqual(parseStreamId("#!::r=studio-a,m=publish"), { name: "studio-a" });
  assert.deepEqual(parseStreamId("#!::m=publish,r=studio-a"), { name: "studio-a" });
  // ffmpeg passes the URL's streamid through undecoded.
  assert.deepEqual(parseStreamId("%23%21%3A%3Ar%3Dstudio-a%2Cm%3Dpublish"), { name: "studio-a" });
  assert.deepEqual(parseStreamId("studio-a"), { name: "studio-a" });
});

test("streamids that name no usable stream are refused with a reason a streamer can act on", () => {
  assert.match(parseStreamId("").error!, /no streamid/);
  assert.match(parseStreamId("#!::r=studio-a,m=request").error!, /m=publish/);
  assert.match(parseStreamId("#!::m=publish").error!, /names no stream/);
  assert.match(parseStreamId("publish:../etc").error!, /not a stream name/);
  assert.match(parseStreamId("publish:a/b").error!, /not a stream name/);
});
