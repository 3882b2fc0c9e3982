import { test } from "node:test";
import assert from "node:assert/strict";
import { clipKeys, clipPrefix, folderOf, holdsClips, keyIn, keysOfRecording, listPrefix, liveHeadKey, livePlaylistKey, mp4OfLiveHead, recordingKeys, recordingName, sessionPrefix, subtitleKey } from "./layout.js";

test("a broadcast session's source prefix and live playlist sit under its stream", () => {
  assert.equal(sessionPrefix("studio-a", "2025-06-01T10-00-00Z"), "studio-a/2025-06-01T10-00-00Z");
  assert.equal(livePlaylistKey("studio-a", "s1"), "studio-a/s1/index.m3u8");
  assert.equal(folderOf(livePlaylistKey("studio-a", "s1")), sessionPrefix("studio-a", "s1"));
});

test("keys inside a source prefix, and the bucket's top level as the empty prefix", () => {
  assert.equal(keyIn("drops/show", "seg0.ts"), "drops/show/seg0.ts");
  assert.equal(keyIn("", "seg0.ts"), "seg0.ts");
  assert.equal(listPrefix("drops/show"), "drops/show/");
  assert.equal(listPrefix(""), "", "the empty prefix lists the whole bucket: deleters must not use it for one recording");
  assert.equal(folderOf("a/b/index.m3u8"), "a/b");
  assert.equal(folderOf("index.m3u8"), "");
});

test("a recording is named after its folder, or after its playlist at the top level", () => {
  assert.equal(recordingName("drops/Émission spéciale", "drops/Émission spéciale/index.m3u8"), "Émission spéciale");
  assert.equal(recordingName("", "My Show.M3U8"), "My Show");
  assert.equal(recordingName("", ".m3u8"), "recording");
});

test("a recording's MP4 and images sit in its source prefix; at the top level they are named after it", () => {
  assert.deepEqual(recordingKeys("cam/s1", "s1"), { mp4: "cam/s1/s1.mp4", poster: "cam/s1/thumbnail.jpg", sprite: "cam/s1/storyboard.jpg", vtt: "cam/s1/storyboard.vtt" });
  assert.deepEqual(recordingKeys("", "show"), { mp4: "show.mp4", poster: "show.thumbnail.jpg", sprite: "show.storyboard.jpg", vtt: "show.storyboard.vtt" });
});

test("subtitle side-cars carry their index and a file-safe language", () => {
  assert.equal(subtitleKey("cam/s1", "s1", 0, "en"), "cam/s1/s1.0.en.vtt");
  assert.equal(subtitleKey("", "show", 2, undefined), "show.2.und.vtt");
  assert.equal(subtitleKey("x", "x", 1, "pt/BR"), "x/x.1.pt_BR.vtt");
});

test("every object of a recording is what its row names, without gaps or empties", () => {
  const keys = recordingKeys("cam/s1", "s1");
  assert.deepEqual(
    keysOfRecording({ filePath: keys.mp4, thumbnailPath: keys.poster, storyboardPath: null, storyboardVttPath: "", extraKeys: ["cam/s1/s1.0.en.vtt"] }),
    [keys.mp4, keys.poster, "cam/s1/s1.0.en.vtt"],
  );
  assert.deepEqual(keysOfRecording({}), []);
});

test("a clip's files sit under its own prefix, never under its parent's (which deleting the parent empties)", () => {
  const id = "0f8fad5b-d9cb-469f-a165-70867728950e";
  assert.equal(clipPrefix(id), `clips/${id}`);
  assert.deepEqual(clipKeys(id), { mp4: `clips/${id}/clip.mp4`, poster: `clips/${id}/thumbnail.jpg`, sprite: `clips/${id}/storyboard.jpg`, vtt: `clips/${id}/storyboard.vtt` });
  assert.ok(!clipKeys(id).mp4.startsWith(listPrefix(sessionPrefix("cam", "s1"))));
  // A dropped folder named like the clips' root must not take every clip with it when deleted.
  assert.equal(holdsClips("clips"), true);
  assert.equal(holdsClips("clips-2025"), false);
  assert.equal(holdsClips("cam/s1"), false);
  assert.equal(holdsClips(""), false);
});

test("a live assembly's head object names the MP4 it belongs to; other keys are no head", () => {
  const mp4 = recordingKeys("cam/s1", "s1").mp4;
  assert.equal(mp4OfLiveHead(liveHeadKey(mp4)), mp4);
  assert.equal(mp4OfLiveHead(mp4), undefined);
  assert.equal(mp4OfLiveHead("cam/s1/thumbnail.jpg"), undefined);
  assert.equal(mp4OfLiveHead(".live-head"), undefined);
});
