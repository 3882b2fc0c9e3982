// Webhooks on the real stack: real convert, thumbnail and webhooks replicas, the API, and real HTTP
// receivers on loopback; signatures checked with the Standard Webhooks library's own verifier.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execa } from "execa";
import { createTestEnv, waitFor, type TestEnv } from "../../test/harness.js";
import { makeHls } from "../../test/media.js";
import { startWorkers, stopWorkers, waitForRecording, type Worker } from "../../test/workers.js";
import { startApi, withToken, type RunningApi } from "../../test/api.js";
import { startReceiver, type Receiver } from "../../test/webhook-receiver.js";
import { createEventPublisher } from "../../lib/events.js";
import { createLogger } from "../../lib/log.js";
import { startGatewayProcess } from "../../test/gateway/process.js";
import { publish } from "../../test/gateway/caller.js";
import { sessionFolders } from "../../test/gateway/store.js";

const TOKEN = "webhooks-test-token-0123456789";
const auth = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
let env: TestEnv;
let workers: Worker[] = [];
let api: RunningApi;
let prodApi: RunningApi;
const receivers: Receiver[] = [];

before(async () => {
  // Retries start at 0.5 s and stop after 9 s, so an endpoint that never answers 2xx is disabled within the test.
  env = await createTestEnv("webhooks", { WEBHOOK_RETRY_BASE_SECONDS: "0.5", WEBHOOK_RETRY_HOURS: "0.0025" });
  workers = [
    ...(await startWorkers(env, "functions/convert/main.ts", 1, {}, "c")),
    ...(await startWorkers(env, "functions/thumbnail/main.ts", 1, {}, "t")),
    ...(await startWorkers(env, "functions/webhooks/main.ts", 1, {}, "wh")),
  ];
  api = await startApi(env, withToken(TOKEN));
  // What NODE_ENV=production computes when WEBHOOK_ALLOW_PRIVATE is not set.
  prodApi = await startApi(env, (c) => ({ ...withToken(TOKEN)(c), webhooks: { ...c.webhooks, allowPrivate: false } }));
});

after(async () => {
  await api?.close();
  await prodApi?.close();
  await stopWorkers(workers);
  for (const r of receivers) await r.close();
  await env?.close();
});

async function receiver(): Promise<Receiver> {
  const r = await startReceiver();
  receivers.push(r);
  return r;
}

async function register(url: string, events?: string[]): Promise<{ id: string; secret: string }> {
  const res = await fetch(`${api.url}/webhooks`, { method: "POST", headers: auth, body: JSON.stringify({ url, events, description: "test" }) });
  assert.equal(res.status, 201, await res.clone().text());
  const body = (await res.json()) as { id: string; secret: string };
  assert.match(body.secret, /^whsec_/);
  return body;
}

test("a dropped folder sends processing, ready and thumbnail.ready, signed, with data as the API shows it; deleting sends recording.deleted", async () => {
  const r = await receiver();
  const ep = await register(r.url);
  const dir = `/tmp/vod-test-${env.id}/hooked`;
  await makeHls(dir, { seconds: 6, kind: "ts" });
  const prefix = "drops/hooked";
  const drop = await execa("node", ["--import", "tsx", "functions/drop/main.ts", dir, "--prefix", prefix, "--timeout", "180"], { env: { ...env.env }, cwd: new URL("../..", import.meta.url), reject: false });
  assert.equal(drop.exitCode, 0, drop.stderr || drop.stdout);
  const rec = await waitForRecording(env, prefix);
  assert.equal(rec.status, "ready");

  const events = await waitFor("processing, ready and thumbnail.ready at the receiver", () => {
    const got = r.verified(ep.secret);
    const types = got.map((e) => e.type);
    return ["recording.processing", "recording.ready", "thumbnail.ready"].every((t) => types.includes(t)) ? got : undefined;
  }, 60_000);
  const types = events.map((e) => e.type);
  assert.ok(types.indexOf("recording.processing") < types.indexOf("recording.ready"), `in order: ${types.join(", ")}`);
  for (const e of events) {
    assert.match(e.id, /^evt_/);
    assert.ok(!Number.isNaN(Date.parse(e.createdAt)));
    assert.equal(e.data.id, rec.id);
  }
  // Every request carries the three Standard Webhooks headers; the id header is the event's id.
  for (const x of r.received) {
    assert.match(String(x.headers["webhook-signature"]), /^v1,[A-Za-z0-9+/=]+$/);
    assert.equal(x.headers["webhook-id"], (JSON.parse(x.body) as { id: string }).id);
  }

  const view = (await (await fetch(`${api.url}/recordings/${rec.id}`)).json()) as Record<string, unknown>;
  const ready = events.find((e) => e.type === "recording.ready")!;
  for (const field of ["id", "stream", "title", "status", "durationSeconds", "fileSizeBytes", "width", "height", "videoCodec", "audioCodec", "sourceFolder", "createdAt"])
    assert.deepEqual(ready.data[field], view[field], `data.${field} is the API's`);
  assert.ok(!JSON.stringify(events).includes("whsec_"), "no secret in any event");

  const del = await fetch(`${api.url}/recordings/${rec.id}`, { method: "DELETE", headers: auth });
  assert.equal(del.status, 204);
  const deleted = await waitFor("recording.deleted", () => r.verified(ep.secret).find((e) => e.type === "recording.deleted"), 30_000);
  assert.equal(deleted.data.id, rec.id);
});

test("an SRT broadcast sends stream.connected, recording.live, stream.disconnected with the reason, then processing and ready", async () => {
  const r = await receiver();
  const ep = await register(r.url, ["stream.connected", "stream.disconnected", "recording.live", "recording.processing", "recording.ready"]);
  const gw = await startGatewayProcess({ ...env.env, LOG_LEVEL: "warn" });
  try {
    const created = await gw.api("POST", "/streams", { name: "hooked", title: "Hooked" });
    assert.equal(created.status, 201);
    const run = await publish(created.json.obs.server, { seconds: 6 });
    assert.equal(run.exitCode, 0, run.stderr);
    const [folder] = await sessionFolders(env.s3, env.config.s3.hlsBucket, "hooked");
    assert.ok(folder);
    const rec = await waitForRecording(env, folder);
    assert.equal(rec.status, "ready", rec.error ?? "");
    const events = await waitFor("the broadcast's five events", () => {
      const got = r.verified(ep.secret);
      return got.some((e) => e.type === "recording.ready") && got.length >= 5 ? got : undefined;
    }, 60_000);
    const types = events.map((e) => e.type);
    // In order per recording and per stream; between the two the gateway and convert race (convert may
    // take the final playlist before the gateway has marked the stream idle).
    assert.deepEqual(types.filter((t) => t.startsWith("recording.")), ["recording.live", "recording.processing", "recording.ready"], types.join(", "));
    assert.deepEqual(types.filter((t) => t.startsWith("stream.")), ["stream.connected", "stream.disconnected"], types.join(", "));
    const down = events.find((e) => e.type === "stream.disconnected")!;
    assert.equal(down.data.name, "hooked");
    assert.equal(down.data.reason, "the caller ended the stream");
    assert.equal(down.data.recordingId, rec.id);
    const live = events.find((e) => e.type === "recording.live")!;
    assert.deepEqual([live.data.id, live.data.status, live.data.stream], [rec.id, "live", "hooked"]);
    const view = (await (await fetch(`${api.url}/recordings/${rec.id}`)).json()) as Record<string, unknown>;
    const ready = events.find((e) => e.type === "recording.ready")!;
    for (const field of ["id", "stream", "title", "status", "durationSeconds", "fileSizeBytes", "sessionId", "sourceFolder"]) assert.deepEqual(ready.data[field], view[field], `data.${field} is the API's`);
  } finally {
    await gw.stop();
  }
});

test("a receiver answering 500 three times gets the event once more after; a second endpoint is not held up", async () => {
  const failing = await receiver();
  const healthy = await receiver();
  failing.answer = (n) => (n <= 3 ? 500 : 200);
  const a = await register(failing.url, ["recording.ready"]);
  const b = await register(healthy.url, ["recording.ready"]);
  const events = createEventPublisher({ nats: () => env.nc, config: env.config, log: createLogger("test", "silent") });
  const t0 = Date.now();
  for (let i = 0; i < 3; i++) await events.publish("recording.ready", { id: `00000000-0000-4000-8000-00000000000${i}`, status: "ready" });

  await waitFor("the healthy endpoint's three events", () => healthy.received.length >= 3, 30_000, 50);
  const healthyDone = Date.now();
  assert.ok(failing.received.filter((x) => x.status === 200).length === 0 || healthyDone <= failing.received.find((x) => x.status === 200)!.at, "the healthy endpoint had all three before the failing one's first success");
  assert.ok(healthyDone - t0 < 5000, `healthy endpoint served in ${healthyDone - t0} ms`);

  await waitFor("the failing endpoint's three events", () => failing.received.filter((x) => x.status === 200).length >= 3, 60_000, 100);
  const firstId = failing.received[0]!.headers["webhook-id"];
  assert.deepEqual(failing.received.slice(0, 4).map((x) => [x.headers["webhook-id"], x.status]), [[firstId, 500], [firstId, 500], [firstId, 500], [firstId, 200]], "the same event, retried until it succeeded, exactly once more");
  assert.equal(failing.received.filter((x) => x.headers["webhook-id"] === firstId && x.status === 200).length, 1);
  // Per endpoint in publish order: the failing endpoint's later events waited for the first.
  assert.deepEqual(failing.verified(a.secret).map((e) => e.data.id), healthy.verified(b.secret).map((e) => e.data.id));

  const log = (await (await fetch(`${api.url}/webhooks/${a.id}/deliveries`, { headers: auth })).json()) as { items: { eventId: string; attempt: number; statusCode: number; nextRetryAt: string | null; error: string | null }[] };
  const firstAttempts = log.items.filter((x) => x.eventId === firstId).sort((p, q) => p.attempt - q.attempt);
  assert.deepEqual(firstAttempts.map((x) => [x.attempt, x.statusCode]), [[1, 500], [2, 500], [3, 500], [4, 200]]);
  assert.ok(firstAttempts.slice(0, 3).every((x) => x.nextRetryAt && x.error === "answered 500"), "failed attempts say why and when the next comes");
});

test("an endpoint failing for the whole retry window is disabled and says why; other endpoints go on", async () => {
  const dead = await receiver();
  const alive = await receiver();
  dead.answer = () => 503;
  const d = await register(dead.url, ["recording.failed"]);
  await register(alive.url, ["recording.failed"]);
  const events = createEventPublisher({ nats: () => env.nc, config: env.config, log: createLogger("test", "silent") });
  await events.publish("recording.failed", { id: "00000000-0000-4000-8000-0000000000aa", status: "failed", error: "test" });
  await waitFor("the healthy endpoint's event", () => alive.received.length === 1, 30_000, 50);
  const disabled = await waitFor("the dead endpoint disabled", async () => {
    const w = (await (await fetch(`${api.url}/webhooks/${d.id}`, { headers: auth })).json()) as { enabled: boolean; disabledReason: string | null };
    return w.enabled ? undefined : w;
  }, 60_000, 250);
  assert.match(disabled.disabledReason ?? "", /every delivery failed for 9 s \(last: answered 503\); fix the receiver, then PATCH enabled=true/);
  assert.ok(dead.received.length >= 3, `retried ${dead.received.length} times first`);
  const tries = dead.received.length;
  await events.publish("recording.failed", { id: "00000000-0000-4000-8000-0000000000ab", status: "failed", error: "test" });
  await waitFor("the healthy endpoint's second event", () => alive.received.length === 2, 30_000, 50);
  assert.equal(dead.received.length, tries, "a disabled endpoint gets nothing more");
});

test("webhook CRUD: list, read, patch, rotate the secret, send a test event, delete", async () => {
  const r = await receiver();
  const ep = await register(r.url);
  const list = (await (await fetch(`${api.url}/webhooks`, { headers: auth })).json()) as { items: { id: string; secret?: string }[] };
  assert.ok(list.items.some((w) => w.id === ep.id));
  assert.ok(list.items.every((w) => w.secret === undefined), "secrets are shown only on create and rotate");

  const patched = await fetch(`${api.url}/webhooks/${ep.id}`, { method: "PATCH", headers: auth, body: JSON.stringify({ events: ["recording.failed"], enabled: false }) });
  assert.equal(patched.status, 200);
  assert.deepEqual(await patched.json().then((w) => [(w as { events: string[] }).events, (w as { enabled: boolean }).enabled]), [["recording.failed"], false]);

  const rotated = (await (await fetch(`${api.url}/webhooks/${ep.id}/rotate-secret`, { method: "POST", headers: auth })).json()) as { secret: string };
  assert.notEqual(rotated.secret, ep.secret);

  const sent = (await (await fetch(`${api.url}/webhooks/${ep.id}/test`, { method: "POST", headers: auth })).json()) as { ok: boolean; statusCode: number; eventId: string };
  assert.deepEqual([sent.ok, sent.statusCode], [true, 200]);
  const [verified] = r.verified(rotated.secret);
  assert.equal(verified?.type, "webhook.test", "signed with the new secret");
  assert.throws(() => r.verified(ep.secret), "the old secret no longer verifies");
  const log = (await (await fetch(`${api.url}/webhooks/${ep.id}/deliveries`, { headers: auth })).json()) as { items: { eventId: string; statusCode: number }[] };
  assert.deepEqual(log.items.map((x) => [x.eventId, x.statusCode]), [[sent.eventId, 200]]);

  assert.equal((await fetch(`${api.url}/webhooks`)).status, 401, "the token is needed");
  assert.equal((await fetch(`${api.url}/webhooks/${ep.id}`, { method: "DELETE", headers: auth })).status, 204);
  assert.equal((await fetch(`${api.url}/webhooks/${ep.id}`, { headers: auth })).status, 404);
});

test("bad input is a 400 naming the field: a non-http URL, an unknown event type, a private address in production", async () => {
  const post = async (base: string, body: unknown) => {
    const res = await fetch(`${base}/webhooks`, { method: "POST", headers: auth, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as { error: { field?: string; message: string } } };
  };
  const ftp = await post(api.url, { url: "ftp://example.com/hook" });
  assert.equal(ftp.status, 400);
  assert.equal(ftp.body.error.field, "url");
  assert.match(ftp.body.error.message, /http/);

  const unknown = await post(api.url, { url: "https://example.com/hook", events: ["recording.exploded"] });
  assert.equal(unknown.status, 400);
  assert.match(unknown.body.error.field ?? "", /^events/);
  assert.match(unknown.body.error.message, /recording\.ready/, "the message lists the types there are");

  for (const url of ["http://127.0.0.1:8080/hook", "http://10.1.2.3/hook", "http://169.254.169.254/latest", "http://localhost/hook"]) {
    const priv = await post(prodApi.url, { url });
    assert.equal(priv.status, 400, url);
    assert.equal(priv.body.error.field, "url");
    assert.match(priv.body.error.message, /WEBHOOK_ALLOW_PRIVATE/);
  }
  const extra = await post(api.url, { url: "https://example.com/hook", secret: "mine" });
  assert.equal(extra.status, 400);
  assert.equal(extra.body.error.field, "secret");
});
