import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createLogger } from "../../lib/log.js";
import { createMetrics } from "../../lib/service.js";
import { createTestEnv, type TestEnv } from "../../test/harness.js";
import { createApp } from "./app.js";
import { createPresigner } from "./links.js";
import { startApi, type RunningApi } from "../../test/api.js";

let env: TestEnv;
let api: RunningApi;

before(async () => {
  env = await createTestEnv("api-ops");
  api = await startApi(env);
});
after(async () => {
  await api?.close();
  await env?.close();
});

test("/ready reports the database, both buckets and NATS as ok", async () => {
  const res = await fetch(`${api.url}/ready`);
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { status: "ready", checks: { database: "ok", objectStore: "ok", nats: "ok" } });
  assert.equal((await fetch(`${api.url}/health`)).status, 200);
});

test("/ready is 503 naming what is missing when a bucket does not exist and NATS is not connected", async () => {
  const config = { ...env.config, s3: { ...env.config.s3, recordingsBucket: "no-such-bucket-here" } };
  const app = createApp({ config, db: env.db, s3: env.s3, log: createLogger("api-test", "silent"), presign: createPresigner(config.s3), metrics: createMetrics("api") });
  const res = await app.request("/ready");
  assert.equal(res.status, 503);
  const body = (await res.json()) as { status: string; checks: Record<string, string> };
  assert.equal(body.status, "unavailable");
  assert.equal(body.checks.database, "ok");
  assert.match(body.checks.objectStore!, /no-such-bucket-here/);
  assert.equal(body.checks.nats, "not connected");
});

test("/metrics counts requests by route pattern, not by raw path", async () => {
  await fetch(`${api.url}/recordings?limit=1`);
  await fetch(`${api.url}/recordings/0f8fad5b-d9cb-469f-a165-70867728950e`);
  const text = await (await fetch(`${api.url}/metrics`)).text();
  assert.match(text, /http_request_duration_seconds_count\{[^}]*route="\/recordings"[^}]*status="200"/);
  assert.match(text, /route="\/recordings\/:id"/);
  assert.doesNotMatch(text, /0f8fad5b/);
});

test("/openapi.json documents every API route from the zod schemas, and /docs serves the interactive page", async () => {
  const doc = (await (await fetch(`${api.url}/openapi.json`)).json()) as { openapi: string; paths: Record<string, Record<string, { parameters?: { name: string }[] }>> };
  assert.equal(doc.openapi, "3.1.0");
  for (const path of ["/recordings", "/recordings/{id}", "/recordings/{id}/video", "/recordings/{id}/hls", "/recordings/{id}/clips", "/recordings/{id}/abr/{file}", "/live", "/live/{stream}/index.m3u8", "/live/{stream}/clips", "/webhooks", "/usage"]) assert.ok(doc.paths[path], `${path} is missing`);
  assert.ok(doc.paths["/recordings/{id}"]!.patch && doc.paths["/recordings/{id}"]!.delete);
  const params = doc.paths["/recordings"]!.get!.parameters!.map((p) => p.name).sort();
  assert.deepEqual(params, ["cursor", "from", "kind", "limit", "parent", "q", "status", "stream", "to"]);
  const docs = await fetch(`${api.url}/docs`);
  assert.equal(docs.status, 200);
  const html = await docs.text();
  assert.match(html, /swagger/i);
  assert.doesNotMatch(html, /https?:\/\//, "no CDN: the docs load on a closed network");
  for (const asset of ["/docs/swagger-ui.css", "/docs/swagger-ui-bundle.js", "/docs/init.js"]) assert.equal((await fetch(`${api.url}${asset}`)).status, 200, asset);
});

test("the web page and its assets are served", async () => {
  const page = await fetch(`${api.url}/`);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /^<!doctype html>/);
  for (const asset of ["app.js", "app.css", "hls.js", "icon.svg"]) assert.equal((await fetch(`${api.url}/assets/${asset}`)).status, 200, asset);
  assert.equal((await fetch(`${api.url}/assets/nope.js`)).status, 404);
});
