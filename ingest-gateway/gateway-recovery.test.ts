import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { eq } from "drizzle-orm";
import { createTestEnv, waitFor, type TestEnv } from "../test/harness.js";
import { recordings, streams } from "../db/schema.js";
import { startGatewayProcess, type GatewayProcess } from "../test/gateway/process.js";
import { publish } from "../test/gateway/caller.js";
import { childrenOf, survivorsOfKill9 } from "../test/processes.js";
import { missingSegments, readPlaylist, sessionFolders } from "../test/gateway/store.js";

let env: TestEnv;
let gw: GatewayProcess;
let bucket: string;
const GRACE_SECONDS = "6";

before(async () => {
  env = await createTestEnv("gateway-recovery");
  bucket = env.config.s3.hlsBucket;
  gw = await startGatewayProcess({ ...env.env, LOG_LEVEL: "info", RECONNECT_GRACE_SECONDS: GRACE_SECONDS });
});

after(async () => {
  await gw?.stop();
  await env?.close();
});

async function createStream(name: string): Promise<string> {
  const r = await gw.api("POST", "/streams", { name });
  assert.equal(r.status, 201, JSON.stringify(r.json));
  return r.json.obs.server;
}

async function storedSegments(stream: string, atLeast: number) {
  return waitFor(`${atLeast} stored segment(s) of ${stream}`, async () => {
    const folders = await sessionFolders(env.s3, bucket, stream);
    const last = folders.at(-1);
    const p = last && (await readPlaylist(env.s3, bucket, `${last}/index.m3u8`));
    return p && p.segments.length >= atLeast ? { folder: last, playlist: p } : undefined;
  }, 60_000);
}

async function endedFolders(stream: string, count: number) {
  return waitFor(`${count} finished session(s) of ${stream}`, async () => {
    const out = [];
    for (const f of await sessionFolders(env.s3, bucket, stream)) {
      const p = await readPlaylist(env.s3, bucket, `${f}/index.m3u8`);
      if (p?.ended) out.push({ folder: f, playlist: p });
    }
    return out.length >= count ? out : undefined;
  }, 60_000);
}

async function liveState(stream: string): Promise<string | undefined> {
  const list = await (await fetch(`${gw.http}/streams`)).json();
  return list.streams.find((s: { name: string }) => s.name === stream)?.live?.state;
}

test("a caller that drops and comes back within the grace period continues the same session, with a discontinuity", async () => {
  const server = await createStream("flaky");
  const first = publish(server, { seconds: 60 });
  await storedSegments("flaky", 1);
  first.kill("SIGKILL");
  await first;
  await waitFor("the gateway to notice the lost caller", async () => (await liveState("flaky")) === "waiting", 30_000);

  const second = await publish(server, { seconds: 6 });
  assert.equal(second.exitCode, 0, second.stderr);
  const [done] = await endedFolders("flaky", 1);
  assert.equal((await sessionFolders(env.s3, bucket, "flaky")).length, 1, "one session folder");
  const breaks = done!.playlist.segments.filter((s) => s.discontinuity).length;
  assert.equal(breaks, 1, done!.playlist.text);
  assert.deepEqual(await missingSegments(env.s3, bucket, done!.folder, done!.playlist), []);
  const rows = await env.db.select().from(recordings).where(eq(recordings.streamId, "flaky"));
  assert.equal(rows.length, 1, "one recording");
});

test("a caller that comes back after the grace period starts a second session", async () => {
  const server = await createStream("late");
  const first = publish(server, { seconds: 60 });
  await storedSegments("late", 1);
  first.kill("SIGKILL");
  await first;
  const [ended] = await endedFolders("late", 1);
  assert.ok(ended!.playlist.segments.every((s) => !s.discontinuity));

  const second = await publish(server, { seconds: 6 });
  assert.equal(second.exitCode, 0, second.stderr);
  const both = await endedFolders("late", 2);
  assert.equal(new Set(both.map((b) => b.folder)).size, 2);
  const rows = await env.db.select().from(recordings).where(eq(recordings.streamId, "late"));
  assert.equal(rows.length, 2, "two recordings");
});

test("after kill -9 of the gateway mid-stream, the restarted gateway finalises the session with ENDLIST from what is in the bucket", async () => {
  const server = await createStream("crashy");
  const caller = publish(server, { seconds: 60 });
  const { folder } = await storedSegments("crashy", 2);
  const ffmpegs = await childrenOf(gw.proc.pid!, "ffmpeg");
  assert.equal(ffmpegs.length, 1, "the session's segmenter runs as the gateway's child");
  // Stopped, the segmenter cannot end on its own when its stdin closes: the kernel must kill it with the gateway.
  const left = await survivorsOfKill9(gw.proc, ffmpegs, 5_000);
  assert.deepEqual(left, [], "no FFmpeg of the killed gateway is left running under init");
  await gw.kill9();
  caller.kill("SIGKILL");
  await caller;
  const [before] = await env.db.select().from(streams).where(eq(streams.name, "crashy"));
  assert.equal(before!.state, "live", "the crash left the stream marked live");

  gw = await startGatewayProcess(gw.env, { http: Number(new URL(gw.http).port), srt: gw.srtPort });
  const [done] = await endedFolders("crashy", 1);
  assert.equal(done!.folder, folder);
  assert.ok(done!.playlist.segments.length >= 2);
  assert.deepEqual(await missingSegments(env.s3, bucket, done!.folder, done!.playlist), []);
  await waitFor("the stream back to idle", async () => {
    const [row] = await env.db.select().from(streams).where(eq(streams.name, "crashy"));
    return row?.state === "idle";
  });
  const [rec] = await env.db.select().from(recordings).where(eq(recordings.sourcePrefix, folder!));
  assert.equal(rec!.status, "live", "convert takes the row over when the ENDLIST playlist arrives");
});

test("kill -9 before a first segment was stored and no caller back: the recording fails saying the gateway stopped, not that no media came", async () => {
  const server = await createStream("early");
  const caller = publish(server, { seconds: 60 });
  const row = await waitFor("the broadcast's recording row", async () => {
    const [r] = await env.db.select().from(recordings).where(eq(recordings.streamId, "early"));
    return r;
  }, 30_000, 50);
  await gw.kill9();
  caller.kill("SIGKILL");
  await caller;
  assert.equal(await readPlaylist(env.s3, bucket, `${row.sourcePrefix}/index.m3u8`), undefined, "killed before a first segment was stored");

  gw = await startGatewayProcess(gw.env, { http: Number(new URL(gw.http).port), srt: gw.srtPort });
  const failed = await waitFor("the recording to fail after the grace", async () => {
    const [r] = await env.db.select().from(recordings).where(eq(recordings.id, row.id));
    return r?.status === "failed" ? r : undefined;
  }, 60_000);
  assert.match(failed.error ?? "", /^the gateway stopped \(crashed or was killed\) before a first segment of this broadcast was stored/);
  assert.doesNotMatch(failed.error ?? "", /before any media arrived/);
});
