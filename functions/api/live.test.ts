import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { eq } from "drizzle-orm";
import { recordings, streams } from "../../db/schema.js";
import { createTestEnv, type TestEnv } from "../../test/harness.js";
import { publishLive as publishLiveIn, startApi, type RunningApi } from "../../test/api.js";

let env: TestEnv;
let api: RunningApi;

before(async () => {
  env = await createTestEnv("api-live");
  api = await startApi(env);
});
after(async () => {
  await api?.close();
  await env?.close();
});

const publishLive = (stream: string, session: string, playlist?: (text: string) => string) => publishLiveIn(env, stream, session, undefined, playlist);

test("GET /live lists broadcasts now live with a playlist URL the API serves", async () => {
  const rec = await publishLive("studio", "s-20250101");
  await env.db.insert(streams).values({ name: "idle-one", secret: "secret-0123456789", state: "idle" });
  const { items } = (await (await fetch(`${api.url}/live`)).json()) as { items: any[] };
  assert.equal(items.length, 1);
  assert.equal(items[0].stream, "studio");
  assert.equal(items[0].sessionId, "s-20250101");
  assert.equal(items[0].recordingId, rec.id);
  assert.equal(items[0].title, "studio live");
  assert.equal(items[0].playlistUrl, `${api.url}/live/studio/index.m3u8`);
});

test("the live playlist keeps its EVENT shape with presigned segment links that download", async () => {
  const res = await fetch(`${api.url}/live/studio/index.m3u8`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "application/vnd.apple.mpegurl");
  assert.match(res.headers.get("cache-control")!, /no-cache/);
  const text = await res.text();
  assert.match(text, /#EXT-X-PLAYLIST-TYPE:EVENT/);
  assert.doesNotMatch(text, /#EXT-X-ENDLIST/);
  const segments = text.split("\n").filter((l) => l.startsWith("http"));
  assert.ok(segments.length >= 3);
  for (const s of segments) {
    assert.match(s, /\/studio\/s-20250101\/seg\d+\.ts\?.*X-Amz-Signature=/);
    assert.equal((await fetch(s)).status, 200);
  }
});

test("the live recording's detail links to the live playlist", async () => {
  const [rec] = await env.db.select().from(recordings).where(eq(recordings.streamId, "studio"));
  const d = (await (await fetch(`${api.url}/recordings/${rec!.id}`)).json()) as any;
  assert.equal(d.status, "live");
  assert.equal(d.liveUrl, `${api.url}/live/studio/index.m3u8`);
  assert.equal(d.videoUrl, null);
});

test("a stream that went idle is 404 with a message pointing to /live", async () => {
  await env.db.update(streams).set({ state: "idle" }).where(eq(streams.name, "studio"));
  const res = await fetch(`${api.url}/live/studio/index.m3u8`);
  assert.equal(res.status, 404);
  assert.match(((await res.json()) as any).error.message, /GET \/live/);
  assert.equal(((await (await fetch(`${api.url}/live`)).json()) as any).items.length, 0);
});

test("a live stream whose playlist has not been uploaded yet is 404 saying to retry", async () => {
  const [rec] = await env.db.insert(recordings).values({ streamId: "early", title: "early", sourcePrefix: "early/s1", status: "live" }).returning();
  await env.db.insert(streams).values({ name: "early", secret: "secret-0123456789", state: "live", currentSession: "s1", currentRecordingId: rec!.id });
  const res = await fetch(`${api.url}/live/early/index.m3u8`);
  assert.equal(res.status, 404);
  assert.match(((await res.json()) as any).error.message, /retry/);
});

test("a playlist naming a segment outside its session folder is refused (502) rather than signed", async () => {
  await publishLive("sneaky", "s1", (text) => text.replace("seg000.ts", "../../other/secret.ts"));
  const res = await fetch(`${api.url}/live/sneaky/index.m3u8`);
  assert.equal(res.status, 502);
  const body = (await res.json()) as any;
  assert.equal(body.error.kind, "bad_source");
  assert.match(body.error.message, /outside the folder "sneaky\/s1"/);
});
