import { test } from "node:test";
import assert from "node:assert/strict";
import HLS from "hls-parser";
import { folderOf, recordingName } from "../layout.js";
import { HlsError, listedGaps, memberKeys, mergeWebVtt, parsePlaylist, pickVariant, planMaster, neededKeys, resolveSegments, resolveUri as resolveSegmentKey, writeLocalPlaylist, type MasterPlaylist, type MediaPlaylist } from "./index.js";

const media = (body: string) => parsePlaylist(`#EXTM3U\n#EXT-X-TARGETDURATION:2\n${body}\n#EXT-X-ENDLIST\n`, "f/index.m3u8") as MediaPlaylist;

test("segment URIs resolve relative to the playlist, with percent-encoding, spaces and non-ASCII kept", () => {
  assert.equal(resolveSegmentKey("talk + q&a/émission x/index.m3u8", "seg 001.ts", "talk + q&a/émission x"), "talk + q&a/émission x/seg 001.ts");
  assert.equal(resolveSegmentKey("a/b/index.m3u8", "%C3%A9t%C3%A9%20001.ts", "a/b"), "a/b/été 001.ts");
  assert.equal(resolveSegmentKey("a/b/v0/index.m3u8", "./x/../seg.ts", "a/b"), "a/b/v0/seg.ts");
  assert.equal(resolveSegmentKey("a/b/v0/index.m3u8", "../shared/init.mp4", "a/b"), "a/b/shared/init.mp4");
  assert.equal(resolveSegmentKey("index.m3u8", "seg.ts", ""), "seg.ts");
});

test("segment URIs that leave the folder, the bucket or the store are refused with a message saying why", () => {
  const refused = (uri: string, why: RegExp) =>
    assert.throws(() => resolveSegmentKey("a/b/index.m3u8", uri, "a/b"), (err: unknown) => err instanceof HlsError && err.kind === "outside-folder" && why.test(err.message) && err.message.includes("relative paths"));
  refused("../c/seg.ts", /outside the folder "a\/b"/);
  refused("../../../../etc/passwd", /escapes the bucket/);
  refused("http://evil.example/seg.ts", /absolute URL/);
  refused("https://127.0.0.1:9000/hls-streams/a/b/seg.ts", /absolute URL/);
  refused("//evil.example/seg.ts", /absolute path/);
  refused("/other-bucket/seg.ts", /absolute path/);
  refused("s3://other-bucket/seg.ts", /absolute URL/);
  refused("file:///etc/passwd", /absolute URL/);
  refused("seg.ts?X-Amz-Signature=1", /query string/);
  refused("..", /outside the folder/);
  refused("..%2F..%2Fc%2Fseg.ts", /encoded name/);
  refused("x%5C..%5Cseg.ts", /encoded name/);
});

test("a text that is not a playlist, and a playlist with no segments, fail with what to do", () => {
  assert.throws(() => parsePlaylist("hello", "x/index.m3u8"), /x\/index\.m3u8 is not an HLS playlist .*upload a valid \.m3u8/);
  assert.throws(() => resolveSegments("f/index.m3u8", media(""), "f"), /lists no segments/);
});

test("the highest-bandwidth variant is chosen, I-frame playlists are not", () => {
  const master = parsePlaylist(
    "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360\nmid/index.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=2500000,RESOLUTION=1280x720\nhigh/index.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=300000\nlow/index.m3u8\n#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=9000000,URI=\"iframes.m3u8\"\n",
    "m/master.m3u8",
  ) as MasterPlaylist;
  assert.equal(master.isMasterPlaylist, true);
  assert.equal(pickVariant(master)?.uri, "high/index.m3u8");
});

test("discontinuities, fMP4 init sections and byte ranges are carried into the playlist FFmpeg reads", () => {
  const m = media('#EXT-X-MAP:URI="init.mp4"\n#EXTINF:2,\nseg0.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI="init2.mp4"\n#EXTINF:1.5,\n#EXT-X-BYTERANGE:1000@0\nseg1.m4s');
  const segs = resolveSegments("f/index.m3u8", m, "f");
  assert.deepEqual(segs.map((s) => [s.key, s.duration, s.discontinuity, s.map?.key]), [
    ["f/seg0.m4s", 2, false, "f/init.mp4"],
    ["f/seg1.m4s", 1.5, true, "f/init2.mp4"],
  ]);
  const text = writeLocalPlaylist(segs, (k) => `https://s3.test/${encodeURI(k)}?sig=1`);
  const again = HLS.parse(text) as MediaPlaylist;
  assert.equal(again.endlist, true);
  assert.deepEqual(again.segments.map((s) => [s.uri, s.duration, Boolean(s.discontinuity), s.map?.uri, s.byterange?.length]), [
    ["https://s3.test/f/seg0.m4s?sig=1", 2, false, "https://s3.test/f/init.mp4?sig=1", undefined],
    ["https://s3.test/f/seg1.m4s?sig=1", 1.5, true, "https://s3.test/f/init2.mp4?sig=1", 1000],
  ]);
});

test("AES-128 keys inside the folder are resolved with their IV; keys outside, SAMPLE-AES and unknown methods are refused naming why", () => {
  const segs = resolveSegments("f/index.m3u8", media('#EXT-X-MEDIA-SEQUENCE:7\n#EXT-X-KEY:METHOD=AES-128,URI="key.bin"\n#EXTINF:2,\nseg0.ts\n#EXT-X-KEY:METHOD=AES-128,URI="k2.bin",IV=0x0000000000000000000000000000ABCD\n#EXTINF:2,\nseg1.ts'), "f");
  assert.deepEqual(segs.map((s) => s.aes), [
    { key: "f/key.bin", iv: "00000000000000000000000000000007" },
    { key: "f/k2.bin", iv: "0000000000000000000000000000abcd" },
  ]);
  const text = writeLocalPlaylist(segs, (k) => `https://s3.test/${k}?sig=1`);
  assert.match(text, /#EXT-X-KEY:METHOD=AES-128,URI="https:\/\/s3\.test\/f\/key\.bin\?sig=1",IV=0x00000000000000000000000000000007\n#EXTINF/);
  const refused = (key: string, why: RegExp) =>
    assert.throws(() => resolveSegments("f/index.m3u8", media(`${key}\n#EXTINF:2,\nseg0.ts`), "f"), (err: unknown) => err instanceof HlsError && why.test(err.message));
  refused('#EXT-X-KEY:METHOD=AES-128,URI="../other/key.bin"', /outside the folder "f": key files must be relative paths/);
  refused('#EXT-X-KEY:METHOD=AES-128,URI="https://keys.example/k"', /an absolute URL: key files must/);
  refused('#EXT-X-KEY:METHOD=SAMPLE-AES,URI="key.bin"', /METHOD=SAMPLE-AES, which encrypts samples inside the media for DRM players/);
  refused('#EXT-X-KEY:METHOD=ROT13,URI="key.bin"', /METHOD=ROT13, which is not a method of the HLS specification/);
});

test("a master's best variant, its audio group (DEFAULT first) and its WebVTT subtitles are planned as one recording", () => {
  const master = parsePlaylist(
    [
      "#EXTM3U",
      '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="Français",LANGUAGE="fra",URI="a_fr.m3u8"',
      '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="English",DEFAULT=YES,LANGUAGE="eng",URI="a_en.m3u8"',
      '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English",LANGUAGE="eng",URI="subs/en.m3u8"',
      '#EXT-X-STREAM-INF:BANDWIDTH=300000,AUDIO="aud",SUBTITLES="subs"',
      "low.m3u8",
      '#EXT-X-STREAM-INF:BANDWIDTH=900000,AUDIO="aud",SUBTITLES="subs"',
      "high.m3u8",
      "",
    ].join("\n"),
    "m/master.m3u8",
  ) as MasterPlaylist;
  const plan = planMaster(master, "m/master.m3u8");
  assert.equal(plan.variantKey, "m/high.m3u8");
  assert.equal(plan.muxedAudio, false);
  assert.deepEqual(plan.audio.map((a) => [a.key, a.language, a.name, a.isDefault]), [
    ["m/a_en.m3u8", "eng", "English", true],
    ["m/a_fr.m3u8", "fra", "Français", false],
  ]);
  assert.deepEqual(plan.subtitles.map((s) => [s.key, s.language]), [["m/subs/en.m3u8", "eng"]]);
});

test("parsing changes no hls-parser option for other users of the library", async () => {
  const HLSParser = HLS;
  HLSParser.setOptions({ strictMode: true });
  parsePlaylist("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\na.ts\n", "x.m3u8");
  assert.equal(HLSParser.getOptions().strictMode, true);
  assert.equal(HLSParser.getOptions().silent, undefined);
  HLSParser.setOptions({ strictMode: false });
});

test("the recording is named after its folder, or after the playlist at the bucket root", () => {
  assert.equal(folderOf("a/b/index.m3u8"), "a/b");
  assert.equal(folderOf("index.m3u8"), "");
  assert.equal(recordingName("talks/2026/keynote", "talks/2026/keynote/index.m3u8"), "keynote");
  assert.equal(recordingName("", "my show.m3u8"), "my show");
});

test("every playlist a master names (variants and renditions) is its member; ones outside its folder are not", () => {
  const master = parsePlaylist(
    '#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",NAME="en",URI="audio/en.m3u8"\n#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="s",NAME="en",URI="../elsewhere/subs.m3u8"\n#EXT-X-STREAM-INF:BANDWIDTH=1,AUDIO="a",SUBTITLES="s"\nv0/index.m3u8\n',
    "m/master.m3u8",
  ) as MasterPlaylist;
  assert.deepEqual(memberKeys(master, "m/master.m3u8").sort(), ["m/audio/en.m3u8", "m/v0/index.m3u8"]);
  assert.throws(() => planMaster(master, "m/master.m3u8"), (err: unknown) => err instanceof HlsError && /variant and rendition playlists must be relative paths/.test(err.message));
});

test("WebVTT segments merge into one file, a cue repeated across segments kept once; a segment that is not WebVTT is refused", () => {
  const merged = mergeWebVtt([
    { name: "s0.vtt", text: "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:126000,LOCAL:00:00:00.000\n\n00:00:01.000 --> 00:00:03.000\nHello\n" },
    { name: "s1.vtt", text: "WEBVTT\n\n00:00:01.000 --> 00:00:03.000\nHello\n\n00:00:04.000 --> 00:00:05.000\nWorld\n" },
  ]);
  assert.equal(merged.match(/Hello/g)?.length, 1);
  assert.match(merged, /^WEBVTT\n\n00:00:01\.000 --> 00:00:03\.000\nHello\n\n00:00:04\.000 --> 00:00:05\.000\nWorld/);
  assert.throws(() => mergeWebVtt([{ name: "bad.vtt", text: "not subtitles" }]), /the subtitle segment bad\.vtt is not WebVTT/);
});

test("#EXT-X-GAP entries (hls-parser reads the tag) are never read: left out of the segments, listed as runs on the playlist's timeline", () => {
  const m = media("#EXTINF:4,\nseg0.ts\n#EXT-X-GAP\n#EXTINF:4,\nseg1.ts\n#EXT-X-GAP\n#EXTINF:3.5,\nseg2.ts\n#EXTINF:4,\nseg3.ts\n#EXT-X-GAP\n#EXTINF:4,\nseg4.ts\n#EXTINF:2,\nseg5.ts");
  const segs = resolveSegments("f/index.m3u8", m, "f");
  assert.deepEqual(segs.map((s) => [s.key, s.listedAt, s.discontinuity]), [
    ["f/seg0.ts", 0, false],
    ["f/seg3.ts", 11.5, true],
    ["f/seg5.ts", 19.5, true],
  ]);
  assert.deepEqual(listedGaps("f/index.m3u8", m, "f"), [
    { segment: "f/seg1.ts", startSeconds: 4, missingSeconds: 7.5 },
    { segment: "f/seg4.ts", startSeconds: 15.5, missingSeconds: 4 },
  ]);
  assert.deepEqual(neededKeys(segs), ["f/seg0.ts", "f/seg3.ts", "f/seg5.ts"], "a gap's segment is never waited for nor fetched");
  assert.doesNotMatch(writeLocalPlaylist(segs, (k) => k), /seg1|seg2|seg4|GAP/);
  assert.deepEqual(listedGaps("f/index.m3u8", media("#EXTINF:2,\na.ts"), "f"), []);
});

test("a playlist of nothing but gaps has nothing to convert, and says so", () => {
  assert.throws(() => resolveSegments("f/index.m3u8", media("#EXT-X-GAP\n#EXTINF:2,\na.ts\n#EXT-X-GAP\n#EXTINF:2,\nb.ts"), "f"), (err: unknown) => err instanceof HlsError && err.kind === "no-segments" && /lists only gaps/.test(err.message));
});
