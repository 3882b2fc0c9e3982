import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { jetstream } from "@nats-io/jetstream";
import { createTestEnv, waitFor, type TestEnv } from "../test/harness.js";
import { startGatewayProcess, type GatewayProcess } from "../test/gateway/process.js";
import { publish, srtUrl } from "../test/gateway/caller.js";
import { readPlaylist, sessionFolders } from "../test/gateway/store.js";

let env: TestEnv;
let gw: GatewayProcess;
let bucket: string;

before(async () => {
  env = await createTestEnv("gateway-lifecycle");
  bucket = env.config.s3.hlsBucket;
  gw = await startGatewayProcess({ ...env.env, LOG_LEVEL: "info", SEGMENT_SECONDS: "4" });
});

after(async () => {
  await gw?.stop();
  await env?.close();
});

async function createStream(name: string): Promise<{ secret: string; server: string }> {
  const r = await gw.api("POST", "/streams", { name });
  assert.equal(r.status, 201, JSON.stringify(r.json));
  return { secret: r.json.secret, server: r.json.obs.server };
}

async function endedPlaylists(stream: string) {
  const out = [];
  for (const folder of await sessionFolders(env.s3, bucket, stream)) {
    const p = await readPlaylist(env.s3, bucket, `${folder}/index.m3u8`);
    if (p?.ended) out.push({ folder, playlist: p });
  }
  return out;
}

async function liveSegments(stream: string, n = 1) {
  return waitFor(`${n} live segment(s) of ${stream}`, async () => {
    for (const f of await sessionFolders(env.s3, bucket, stream)) {
      const p = await readPlaylist(env.s3, bucket, `${f}/index.m3u8`);
      if (p && !p.ended && p.segments.length >= n) return f;
    }
    return undefined;
  }, 60_000);
}

async function streamInfo(name: string) {
  return (await (await fetch(`${gw.http}/streams`)).json()).streams.find((s: { name: string }) => s.name === name);
}

async function events(): Promise<{ type: string; data: Record<string, unknown> }[]> {
  const c = await jetstream(env.nc).consumers.get(env.config.events.stream);
  const out: { type: string; data: Record<string, unknown> }[] = [];
  const batch = await c.fetch({ max_messages: 500, expires: 1500 });
  for await (const m of batch) out.push(m.json());
  return out;
}

test("bad settings are refused with a 400 naming the field: negative days, an unknown retention mode, a maximum below one segment", async () => {
  await createStream("strict");
  const cases: [unknown, string][] = [
    [{ recordingRetentionDays: -1 }, "recordingRetentionDays"],
    [{ sourceRetention: "forever" }, "sourceRetention"],
    [{ sourceRetention: -2 }, "sourceRetention"],
    [{ maxBroadcastSeconds: 3 }, "maxBroadcastSeconds"],
    [{ maxBroadcastSeconds: 10.5 }, "maxBroadcastSeconds"],
    [{ disabled: "yes" }, "disabled"],
    [{ colour: "red" }, "colour"],
  ];
  for (const [body, field] of cases) {
    const r = await gw.api("PATCH", "/streams/strict", body);
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.equal(r.json.error.field, field, JSON.stringify(r.json));
    assert.match(r.json.error.message, new RegExp(`^${field}: `));
  }
  const ok = await gw.api("PATCH", "/streams/strict", { sourceRetention: 0.5, recordingRetentionDays: 30, maxBroadcastSeconds: 4, title: "Strict" });
  assert.equal(ok.status, 200, JSON.stringify(ok.json));
  assert.deepEqual(ok.json.settings, { maxBroadcastSeconds: 4, sourceRetention: 0.5, recordingRetentionDays: 30 });
  const reset = await gw.api("PATCH", "/streams/strict", { sourceRetention: null });
  assert.equal(reset.json.settings.sourceRetention, null);
  assert.equal(reset.json.effective.sourceRetention, "7", "back to the global default");
  assert.equal((await gw.api("PATCH", "/streams/nobody", { disabled: true })).status, 404);
});

test("a per-stream maximum of 20 s fed for 40 s: one recording of 20 s ± a segment, the caller refused with max-duration, a later broadcast accepted", async () => {
  const { server } = await createStream("capped");
  assert.equal((await gw.api("PATCH", "/streams/capped", { maxBroadcastSeconds: 20 })).status, 200);
  const started = Date.now();
  const caller = await publish(server, { seconds: 40 });
  const ranMs = Date.now() - started;
  assert.ok(ranMs < 32_000, `the caller was disconnected at the limit (it ran ${ranMs} ms)`);
  const ended = await waitFor("the capped broadcast's ENDLIST", async () => (await endedPlaylists("capped"))[0], 30_000);
  const seconds = ended.playlist.segments.reduce((s, x) => s + x.duration, 0);
  assert.ok(Math.abs(seconds - 20) <= 4, `the recording lasts ${seconds} s`);

  // The encoder's reconnect right after is refused, and says why.
  const reconnect = await publish(server, { seconds: 2 });
  assert.notEqual(reconnect.exitCode, 0, "the immediate reconnect is refused");
  const info = await streamInfo("capped");
  assert.equal(info.lastRefusal.reason, "max-duration", JSON.stringify(info.lastRefusal));
  assert.match(info.lastEnd.reason, /^max-duration/);
  assert.ok(gw.logs.some((l) => l.includes("broadcast reached its maximum length")), "the log says so");
  const down = (await events()).filter((e) => e.type === "stream.disconnected" && e.data.name === "capped");
  assert.ok(down.some((e) => String(e.data.reason).startsWith("max-duration")), JSON.stringify(down));

  // After the hold a new broadcast starts.
  const until = Date.parse(/accepts callers again from (\S+) /.exec(info.lastRefusal.message)![1]!);
  await waitFor("the max-duration hold to end", () => Date.now() > until + 200, 20_000);
  const later = await publish(server, { seconds: 6 });
  assert.equal(later.exitCode, 0, later.stderr);
  await waitFor("a second broadcast", async () => (await endedPlaylists("capped")).length === 2 || undefined, 30_000);
  assert.equal((await sessionFolders(env.s3, bucket, "capped")).length, 2, "exactly one recording for the capped broadcast, then the later one");
});

test("disabling ends a live broadcast cleanly and refuses new callers with `disabled`; enabling lets them in again", async () => {
  const { server } = await createStream("switch");
  const caller = publish(server, { seconds: 40 });
  const folder = await liveSegments("switch", 2);
  const r = await gw.api("PATCH", "/streams/switch", { disabled: true });
  assert.equal(r.status, 200);
  assert.equal(r.json.stoppedBroadcast, true);
  assert.equal(r.json.disabled, true);
  const final = await readPlaylist(env.s3, bucket, `${folder}/index.m3u8`);
  assert.ok(final?.ended, "the final playlist is stored when PATCH answers");
  assert.ok(final.segments.length >= 2);
  await caller;

  const refused = await publish(server, { seconds: 2 });
  assert.notEqual(refused.exitCode, 0);
  assert.equal((await streamInfo("switch")).lastRefusal.reason, "disabled");

  assert.equal((await gw.api("PATCH", "/streams/switch", { disabled: false })).status, 200);
  const accepted = await publish(server, { seconds: 6 });
  assert.equal(accepted.exitCode, 0, accepted.stderr);
  await waitFor("the broadcast after enabling", async () => (await endedPlaylists("switch")).length === 2 || undefined, 30_000);
});

test("a rotated passphrase: the running broadcast goes on, the old one is refused, the new one accepted", async () => {
  const { secret: old } = await createStream("rotor");
  const url = (secret: string) => srtUrl(gw.srtPort, "#!::r=rotor,m=publish", secret);
  const running = publish(url(old), { seconds: 14 });
  const folder = await liveSegments("rotor", 1);
  const rotated = await gw.api("POST", "/streams/rotor/rotate-secret");
  assert.equal(rotated.status, 200);
  const fresh = rotated.json.secret as string;
  assert.ok(fresh.length >= 10 && fresh !== old);
  assert.equal((await gw.api("GET", "/streams/rotor")).json.secret, fresh);

  const r = await running;
  assert.equal(r.exitCode, 0, `the running broadcast was not interrupted: ${r.stderr}`);
  const p = await waitFor("the running broadcast's ENDLIST", async () => {
    const x = await readPlaylist(env.s3, bucket, `${folder}/index.m3u8`);
    return x?.ended ? x : undefined;
  }, 30_000);
  assert.ok(p.segments.reduce((s, x) => s + x.duration, 0) >= 12, "it recorded to its end");

  const withOld = await publish(url(old), { seconds: 2 });
  assert.notEqual(withOld.exitCode, 0);
  assert.equal((await streamInfo("rotor")).lastRefusal.reason, "wrong-passphrase");
  const withNew = await publish(url(fresh), { seconds: 6 });
  assert.equal(withNew.exitCode, 0, withNew.stderr);
});
