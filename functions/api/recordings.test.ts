import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { sql } from "drizzle-orm";
import { headObject, putText } from "../../lib/s3.js";
import { recordingKeys, subtitleKey } from "../../lib/layout.js";
import { recordings } from "../../db/schema.js";
import { createTestEnv, type TestEnv } from "../../test/harness.js";
import { startApi, storeReadyRecording, vodMedia, withToken, type RunningApi } from "../../test/api.js";

const TOKEN = "test-token-0123456789abcdef";
let env: TestEnv;
let api: RunningApi;

before(async () => {
  env = await createTestEnv("api-recordings");
  api = await startApi(env, withToken(TOKEN));
});
after(async () => {
  await api?.close();
  await env?.close();
});

const get = (path: string, init?: RequestInit) => fetch(`${api.url}${path}`, init);
const getJson = async (path: string) => {
  const res = await get(path);
  assert.equal(res.status, 200, `${path} answered ${res.status}: ${await res.clone().text()}`);
  return res.json() as Promise<any>;
};

interface Page { items: { id: string; createdAt: string; title: string; stream: string; status: string }[]; nextCursor: string | null }

async function allPages(query: string, limit: number, onPage?: () => Promise<void>) {
  const seen: Page["items"] = [];
  let cursor: string | null = null;
  do {
    const page: Page = await getJson(`/recordings?limit=${limit}${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    seen.push(...page.items);
    cursor = page.nextCursor;
    await onPage?.();
  } while (cursor);
  return seen;
}

async function clearRecordings() {
  await env.db.delete(recordings);
}

/** Rows in the past; `ties` rows share each microsecond, so only the id tells them apart. */
async function seed(count: number, ties: number, fields: { stream?: string; title?: string; status?: string; base?: string } = {}) {
  await env.db.execute(sql`
    insert into recordings (stream_id, title, source_prefix, status, created_at)
    select ${fields.stream ?? "seed"}, ${fields.title ?? "Seeded"} || ' ' || i, ${fields.stream ?? "seed"} || '/' || gen_random_uuid(), ${fields.status ?? "ready"},
           ${fields.base ?? "2024-03-01T00:00:00Z"}::timestamptz + ((i / ${ties}) * interval '1 microsecond')
    from generate_series(1, ${count}) as i`);
}

describe("GET /recordings", () => {
  test("pages through every recording exactly once, newest first, while new ones are being inserted", async () => {
    await clearRecordings();
    await seed(230, 3);
    const existing = new Set((await env.db.select({ id: recordings.id }).from(recordings)).map((r) => r.id));

    let inserted = 0;
    const writer = (async () => {
      for (let i = 0; i < 40; i++) {
        await env.db.insert(recordings).values({ streamId: "new", title: `Inserted ${i}`, sourcePrefix: `new/${i}` });
        inserted++;
      }
    })();
    const seen = await allPages("", 17, async () => {
      await env.db.insert(recordings).values({ streamId: "new", title: "between pages", sourcePrefix: `new/page-${Math.random()}` });
    });
    await writer;

    const ids = seen.map((r) => r.id);
    assert.equal(new Set(ids).size, ids.length, "a recording appeared on two pages");
    for (const id of existing) assert.ok(ids.includes(id), `recording ${id} was skipped`);
    const truth = await env.db.execute(sql`select id from recordings order by created_at desc, id desc`);
    const order = (truth as unknown as { id: string }[]).map((r) => r.id);
    assert.deepEqual(ids, order.filter((id) => ids.includes(id)), "pages are not in (created_at, id) newest-first order");
    assert.equal(inserted, 40);
  });

  test("rows a microsecond apart are neither skipped nor repeated across a page boundary", async () => {
    await clearRecordings();
    await seed(10, 1);
    const seen = await allPages("", 1);
    assert.equal(seen.length, 10);
    assert.equal(new Set(seen.map((r) => r.id)).size, 10);
  });

  test("filters by status, stream and date range, and combines them", async () => {
    await clearRecordings();
    await seed(5, 1, { stream: "alpha", status: "ready", base: "2024-01-10T00:00:00Z" });
    await seed(4, 1, { stream: "alpha", status: "failed", base: "2024-02-10T00:00:00Z" });
    await seed(3, 1, { stream: "beta", status: "processing", base: "2024-03-10T00:00:00Z" });

    assert.equal((await allPages("&status=failed", 50)).length, 4);
    assert.equal((await allPages("&stream=alpha", 50)).length, 9);
    assert.equal((await allPages("&stream=beta&status=processing", 50)).length, 3);
    assert.equal((await allPages("&stream=alpha&status=processing", 50)).length, 0);
    assert.equal((await allPages("&from=2024-02-01", 50)).length, 7);
    assert.equal((await allPages("&to=2024-02-01", 50)).length, 5);
    assert.equal((await allPages("&from=2024-02-01T00:00:00Z&to=2024-03-01T00:00:00Z&stream=alpha", 2)).length, 4);
    // An empty or inverted range is a valid question whose answer is nothing (the fuzzer sends both).
    assert.equal((await allPages("&from=2024-02-01&to=2024-02-01", 50)).length, 0);
    assert.equal((await allPages("&from=2024-03-01&to=2024-02-01", 50)).length, 0);
    for (const r of await allPages("&status=failed", 3)) assert.equal(r.status, "failed");
  });

  test("q finds a substring of the title or the stream name in any case, taking % and _ literally", async () => {
    await clearRecordings();
    await seed(3, 1, { stream: "studio-a", title: "Morning Show" });
    await seed(2, 1, { stream: "gaming", title: "Speedrun" });
    await seed(1, 1, { stream: "misc", title: "100% done_right" });

    assert.equal((await allPages("&q=morning", 50)).length, 3);
    assert.equal((await allPages("&q=STUDIO", 50)).length, 3);
    assert.equal((await allPages("&q=gam", 50)).length, 2);
    assert.equal((await allPages("&q=100%25", 50)).length, 1);
    assert.equal((await allPages("&q=%25", 50)).length, 1, "% must match only a literal percent sign");
    assert.equal((await allPages("&q=e_r", 50)).length, 1, "_ must match only a literal underscore");
    assert.equal((await allPages("&q=nothing-like-this", 50)).length, 0);
    assert.equal((await allPages("&q=speedrun&stream=studio-a", 50)).length, 0);
  });
});

describe("one recording", () => {
  test("its detail has presigned links that download the real MP4, poster and storyboard", async () => {
    const m = await vodMedia();
    const rec = await storeReadyRecording(env, "detail/session-1", { title: "Launch day" });
    const d = await getJson(`/recordings/${rec.id}`);
    assert.equal(d.title, "Launch day");
    assert.equal(d.status, "ready");
    assert.equal(d.sourceFolder, "detail/session-1");
    assert.equal(d.sourcePrefix, "detail/session-1");
    assert.equal(d.progress, 1);
    assert.equal(d.error, null);
    assert.match(d.videoUrl, /X-Amz-Signature=/);
    assert.match(d.videoUrl, /X-Amz-Expires=3600/);

    const video = await fetch(d.videoUrl);
    assert.equal(video.status, 200);
    assert.equal(video.headers.get("content-type"), "video/mp4");
    assert.deepEqual(Buffer.from(await video.arrayBuffer()), m.mp4);
    const poster = await fetch(d.thumbnailUrl);
    assert.deepEqual(Buffer.from(await poster.arrayBuffer()), m.jpeg);

    const vtt = await (await get(new URL(d.storyboardUrl).pathname)).text();
    assert.match(vtt, /^WEBVTT/);
    const tile = vtt.split("\n").find((l) => l.includes("#xywh="))!;
    assert.match(tile, /^http.*X-Amz-Signature=.*#xywh=0,0,160,90$/);
    const sprite = await fetch(tile.slice(0, tile.indexOf("#")));
    assert.deepEqual(Buffer.from(await sprite.arrayBuffer()), m.sprite);
  });

  test("/video redirects to the presigned MP4, and a Range request on it returns 206 with those bytes", async () => {
    const m = await vodMedia();
    const rec = await storeReadyRecording(env, "video/session-1");
    const res = await get(`/recordings/${rec.id}/video`, { redirect: "manual" });
    assert.equal(res.status, 302);
    const location = res.headers.get("location")!;
    assert.match(location, /X-Amz-Signature=/);
    const part = await fetch(location, { headers: { range: "bytes=100-1099" } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get("content-range"), `bytes 100-1099/${m.mp4.length}`);
    assert.deepEqual(Buffer.from(await part.arrayBuffer()), m.mp4.subarray(100, 1100));
    const followed = await get(`/recordings/${rec.id}/video`, { headers: { range: "bytes=0-9" } });
    assert.equal(followed.status, 206);
  });

  test("/thumbnail redirects to the presigned poster", async () => {
    const rec = await storeReadyRecording(env, "thumb/session-1");
    const res = await get(`/recordings/${rec.id}/thumbnail`, { redirect: "manual" });
    assert.equal(res.status, 302);
    assert.equal((await fetch(res.headers.get("location")!)).headers.get("content-type"), "image/jpeg");
  });

  test("/hls serves the source folder as a VOD playlist whose presigned segments download", async () => {
    const m = await vodMedia();
    const rec = await storeReadyRecording(env, "hls/session-1");
    const res = await get(`/recordings/${rec.id}/hls`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/vnd.apple.mpegurl");
    const text = await res.text();
    assert.match(text, /#EXT-X-PLAYLIST-TYPE:VOD/);
    assert.match(text, /#EXT-X-ENDLIST/);
    const segments = text.split("\n").filter((l) => l.startsWith("http"));
    assert.equal(segments.length, m.hlsFiles.filter((f) => f.endsWith(".ts")).length);
    for (const s of segments) {
      const seg = await fetch(s);
      assert.equal(seg.status, 200);
      assert.ok((await seg.arrayBuffer()).byteLength > 0);
    }
  });

  test("a processing recording reports its progress and has no video yet (409 on /video)", async () => {
    const [rec] = await env.db.insert(recordings).values({ streamId: "proc", title: "Half way", sourcePrefix: "proc/s1", status: "processing", progress: 0.4 }).returning();
    const d = await getJson(`/recordings/${rec!.id}`);
    assert.equal(d.status, "processing");
    assert.equal(Math.round(d.progress * 10), 4);
    assert.equal(d.videoUrl, null);
    const res = await get(`/recordings/${rec!.id}/video`, { redirect: "manual" });
    assert.equal(res.status, 409);
    const body = await res.json() as any;
    assert.equal(body.error.kind, "conflict");
    assert.match(body.error.message, /processing \(40%\)/);
  });

  test("a failed recording carries the error a user can act on", async () => {
    const [rec] = await env.db.insert(recordings).values({ streamId: "bad", title: "Broken", sourcePrefix: "bad/s1", status: "failed", error: "segment seg004.ts is missing; re-upload it" }).returning();
    const d = await getJson(`/recordings/${rec!.id}`);
    assert.equal(d.status, "failed");
    assert.equal(d.error, "segment seg004.ts is missing; re-upload it");
  });
});

describe("writes need the bearer token", () => {
  test("PATCH renames with the token; 401 without one, 403 with a wrong one", async () => {
    const rec = await storeReadyRecording(env, "rename/s1");
    const patch = (headers: Record<string, string>, body: unknown) =>
      get(`/recordings/${rec.id}`, { method: "PATCH", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });

    const none = await patch({}, { title: "Nope" });
    assert.equal(none.status, 401);
    assert.equal(none.headers.get("www-authenticate"), 'Bearer realm="vod-api"');
    assert.equal(((await none.json()) as any).error.kind, "unauthorized");
    const wrong = await patch({ authorization: "Bearer wrong-token-wrong-token" }, { title: "Nope" });
    assert.equal(wrong.status, 403);
    assert.equal(((await wrong.json()) as any).error.kind, "forbidden");

    const ok = await patch({ authorization: `Bearer ${TOKEN}` }, { title: "  Final cut  " });
    assert.equal(ok.status, 200);
    assert.equal(((await ok.json()) as any).title, "Final cut");
    assert.equal((await getJson(`/recordings/${rec.id}`)).title, "Final cut");
  });

  test("DELETE removes the recording's objects in both buckets and its row", async () => {
    const rec = await storeReadyRecording(env, "delete/s1");
    const unauth = await get(`/recordings/${rec.id}`, { method: "DELETE" });
    assert.equal(unauth.status, 401);
    assert.ok(await headObject(env.s3, env.config.s3.recordingsBucket, "delete/s1/recording.mp4"), "a refused delete must keep the objects");

    const res = await get(`/recordings/${rec.id}`, { method: "DELETE", headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(res.status, 204);
    assert.equal((await get(`/recordings/${rec.id}`)).status, 404);
    for (const key of ["recording.mp4", "thumbnail.jpg", "storyboard/sprite.jpg", "storyboard/storyboard.vtt"]) {
      assert.equal(await headObject(env.s3, env.config.s3.recordingsBucket, `delete/s1/${key}`), undefined, `${key} is still in the recordings bucket`);
    }
    assert.equal(await headObject(env.s3, env.config.s3.hlsBucket, "delete/s1/index.m3u8"), undefined, "the source playlist is still there, so the sweep would convert it again");
    const again = await get(`/recordings/${rec.id}`, { method: "DELETE", headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(again.status, 404);
  });

  test("DELETE of a top-level playlist's recording removes the objects its row names and nothing else in the bucket", async () => {
    const m = await vodMedia();
    const keys = recordingKeys("", "toplevel");
    const { recordingsBucket } = env.config.s3;
    const subtitle = subtitleKey("", "toplevel", 0, "en");
    for (const key of [keys.mp4, keys.poster, subtitle, "unrelated.mp4"]) await putText(env.s3, recordingsBucket, key, m.vtt, "application/octet-stream");
    const [rec] = await env.db.insert(recordings).values({ streamId: "toplevel.m3u8", title: "toplevel", sourcePrefix: "", status: "ready", filePath: keys.mp4, thumbnailPath: keys.poster, extraKeys: [subtitle] }).returning();
    const res = await get(`/recordings/${rec!.id}`, { method: "DELETE", headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(res.status, 204);
    assert.equal(await headObject(env.s3, recordingsBucket, keys.mp4), undefined);
    assert.equal(await headObject(env.s3, recordingsBucket, keys.poster), undefined);
    assert.equal(await headObject(env.s3, recordingsBucket, subtitle), undefined, "its subtitle side-car goes too");
    assert.ok(await headObject(env.s3, recordingsBucket, "unrelated.mp4"), "another recording's object stays");
  });

  test("a live recording cannot be deleted (409)", async () => {
    const [rec] = await env.db.insert(recordings).values({ streamId: "onair", title: "On air", sourcePrefix: "onair/s1", status: "live" }).returning();
    const res = await get(`/recordings/${rec!.id}`, { method: "DELETE", headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(res.status, 409);
  });

  test("without API_TOKEN configured, writes are refused with 403 saying how to enable them", async () => {
    const open = await startApi(env, (c) => ({ ...c, api: { ...c.api, token: undefined } }));
    try {
      const rec = await storeReadyRecording(env, "notoken/s1");
      const res = await fetch(`${open.url}/recordings/${rec.id}`, { method: "DELETE", headers: { authorization: "Bearer anything-at-all-here" } });
      assert.equal(res.status, 403);
      assert.match(((await res.json()) as any).error.message, /set API_TOKEN/);
    } finally {
      await open.close();
    }
  });

  test("with API_READS_REQUIRE_TOKEN on, reads need the token too, while /health and the page stay open", async () => {
    const locked = await startApi(env, withToken(TOKEN, true));
    try {
      for (const path of ["/recordings", "/live", "/recordings/0f8fad5b-d9cb-469f-a165-70867728950e"]) {
        assert.equal((await fetch(`${locked.url}${path}`)).status, 401, path);
        assert.equal((await fetch(`${locked.url}${path}`, { headers: { authorization: "Bearer wrong-token-wrong-token" } })).status, 403, path);
      }
      assert.equal((await fetch(`${locked.url}/recordings`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);
      assert.equal((await fetch(`${locked.url}/health`)).status, 200);
      assert.equal((await fetch(`${locked.url}/`)).status, 200);
    } finally {
      await locked.close();
    }
  });
});
