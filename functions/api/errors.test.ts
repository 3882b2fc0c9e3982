import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createDb, closeDb } from "../../db/client.js";
import { createLogger } from "../../lib/log.js";
import { createMetrics } from "../../lib/service.js";
import { createTestEnv, type TestEnv } from "../../test/harness.js";
import { createApp } from "./app.js";
import { createPresigner } from "./links.js";
import { startApi, storeReadyRecording, withToken, type RunningApi } from "../../test/api.js";

const TOKEN = "errors-token-0123456789";
const MISSING = "0f8fad5b-d9cb-469f-a165-70867728950e";
let env: TestEnv;
let api: RunningApi;

before(async () => {
  env = await createTestEnv("api-errors");
  api = await startApi(env, withToken(TOKEN));
});
after(async () => {
  await api?.close();
  await env?.close();
});

/** Asserts the API's JSON error shape and returns it. */
async function expectError(res: Response, status: number, kind: string, field?: string) {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${await res.clone().text()}`);
  assert.match(res.headers.get("content-type") ?? "", /application\/json/);
  const body = (await res.json()) as { error: { kind: string; message: string; field?: string } };
  assert.equal(body.error.kind, kind);
  assert.equal(typeof body.error.message, "string");
  assert.ok(body.error.message.length > 10, "the message should say what is wrong");
  assert.doesNotMatch(JSON.stringify(body), /\bat .*\.(ts|js):\d+/, "no stack trace");
  if (field !== undefined) assert.equal(body.error.field, field);
  return body.error;
}

const get = (path: string, init?: RequestInit) => fetch(`${api.url}${path}`, init);
const authed = (method: string, body?: string, contentType = "application/json"): RequestInit => ({
  method,
  headers: { authorization: `Bearer ${TOKEN}`, "content-type": contentType },
  body,
});

describe("400 names the bad field", () => {
  const cases: [string, string][] = [
    ["/recordings?limit=0", "limit"],
    ["/recordings?limit=201", "limit"],
    ["/recordings?limit=ten", "limit"],
    ["/recordings?status=done", "status"],
    ["/recordings?from=yesterday", "from"],
    ["/recordings?to=2024-13-45", "to"],
    ["/recordings?cursor=not-a-cursor", "cursor"],
    ["/recordings?cursor=1706745600000000_x", "cursor"],
    [`/recordings?q=${"x".repeat(201)}`, "q"],
    ["/recordings?q=%20%20", "q"],
    ["/recordings/not-a-uuid", "id"],
    ["/recordings/not-a-uuid/video", "id"],
    ["/recordings/123/hls", "id"],
  ];
  for (const [path, field] of cases) {
    test(`GET ${path} → 400 naming ${field}`, async () => {
      const e = await expectError(await get(path), 400, "invalid_request", field);
      assert.ok(e.message.startsWith(`${field}:`), e.message);
    });
  }

  test("PATCH with a bad body names the field: missing, empty, too long, wrong type, unknown", async () => {
    const rec = await storeReadyRecording(env, "errors/patch");
    const path = `/recordings/${rec.id}`;
    await expectError(await get(path, authed("PATCH", JSON.stringify({}))), 400, "invalid_request", "title");
    await expectError(await get(path, authed("PATCH", JSON.stringify({ title: "   " }))), 400, "invalid_request", "title");
    await expectError(await get(path, authed("PATCH", JSON.stringify({ title: "x".repeat(201) }))), 400, "invalid_request", "title");
    await expectError(await get(path, authed("PATCH", JSON.stringify({ title: 42 }))), 400, "invalid_request", "title");
    await expectError(await get(path, authed("PATCH", JSON.stringify({ title: "ok", status: "ready" }))), 400, "invalid_request", "status");
  });

  test("PATCH with a body that is not JSON is a 400 about the body", async () => {
    const rec = await storeReadyRecording(env, "errors/badjson");
    await expectError(await get(`/recordings/${rec.id}`, authed("PATCH", "{title:")), 400, "invalid_request", "body");
  });
});

describe("401, 403, 404, 409, 500", () => {
  test("a variant outside the recording's folder is not found, and nothing outside it is read", async () => {
    const rec = await storeReadyRecording(env, "errors/variant");
    await expectError(await get(`/recordings/${rec.id}/hls?variant=${encodeURIComponent("other/index.m3u8")}`), 404, "not_found");
    await expectError(await get(`/recordings/${rec.id}/hls?variant=${encodeURIComponent("errors/variant/../../x.m3u8")}`), 404, "not_found");
  });

  test("writes without a token are 401, with a wrong one 403, and a malformed header 401", async () => {
    await expectError(await get(`/recordings/${MISSING}`, { method: "DELETE" }), 401, "unauthorized");
    await expectError(await get(`/recordings/${MISSING}`, { method: "DELETE", headers: { authorization: "Basic abc" } }), 401, "unauthorized");
    await expectError(await get(`/recordings/${MISSING}`, { method: "DELETE", headers: { authorization: "Bearer nope-nope-nope-nope" } }), 403, "forbidden");
  });

  test("an unknown recording is 404 on every route", async () => {
    for (const suffix of ["", "/video", "/hls", "/thumbnail", "/storyboard.vtt"]) await expectError(await get(`/recordings/${MISSING}${suffix}`), 404, "not_found");
    await expectError(await get(`/recordings/${MISSING}`, authed("PATCH", JSON.stringify({ title: "x" }))), 404, "not_found");
    await expectError(await get(`/recordings/${MISSING}`, authed("DELETE")), 404, "not_found");
  });

  test("a known path with a method it does not answer is 405 naming the methods in Allow", async () => {
    const res = await get(`/recordings/${MISSING}`, { method: "PUT" });
    await expectError(res, 405, "method_not_allowed");
    assert.equal(res.headers.get("allow"), "DELETE, GET, HEAD, PATCH");
    const ready = await get("/ready", { method: "POST" });
    assert.equal(ready.status, 405);
    assert.equal(ready.headers.get("allow"), "GET, HEAD");
  });

  test("an unknown route or live stream is 404", async () => {
    await expectError(await get("/nothing/here"), 404, "not_found");
    await expectError(await get("/live/nobody/index.m3u8"), 404, "not_found");
  });

  test("a recording whose source playlist is gone answers 404 on /hls saying to play the MP4", async () => {
    const rec = await storeReadyRecording(env, "errors/gone", { playlistKey: "errors/gone/missing.m3u8" });
    const e = await expectError(await get(`/recordings/${rec.id}/hls`), 404, "not_found");
    assert.match(e.message, /\/video/);
  });

  test("a failure inside the server is a 500 with a JSON message and no internals", async () => {
    const db = createDb(env.config.databaseUrl, { max: 1 });
    await closeDb(db);
    const app = createApp({ config: env.config, db, s3: env.s3, log: createLogger("api-test", "silent"), presign: createPresigner(env.config.s3), metrics: createMetrics("api") });
    const res = await app.request("/recordings");
    const e = await expectError(res, 500, "internal");
    assert.doesNotMatch(e.message, /postgres|CONNECTION|ended/i);
  });
});
