// Fault: the object store down long enough for the gateway's spool to reach SPOOL_MAX_MB mid-broadcast.
// The policy (README): the oldest waiting segment is dropped, counted in gateway_segments_dropped_total,
// listed in the playlist as #EXT-X-GAP with its duration, every second that was stored is in the
// recording, and the recording's warning names the seconds that are missing.
// A private store and NATS on other ports; the shared stack is never touched.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { eq } from "drizzle-orm";
import { loadConfig } from "../../lib/config.js";
import { detectStore } from "../../infra/provision.js";
import { recordings } from "../../db/schema.js";
import { createTestEnv, waitFor, type TestEnv } from "../harness.js";
import { startPrivateStack, type PrivateStack } from "../private-stack.js";
import { startWorkers, stopWorkers, type Worker } from "../workers.js";
import { startGatewayProcess } from "../gateway/process.js";
import { publish, srtUrl } from "../gateway/caller.js";
import { readPlaylist } from "../gateway/store.js";

const OUTAGE_MS = Number(process.env.FAULT_OUTAGE_SECONDS ?? 60) * 1000;
const SEGMENT_SECONDS = 4;
let stack: PrivateStack;
let env: TestEnv;
let workers: Worker[] = [];

before(async () => {
  const main = loadConfig({ ...process.env, NODE_ENV: "test" });
  stack = await startPrivateStack({ natsPort: 24542, s3Port: 29120, subject: main.nats.subject, store: await detectStore(main), accessKey: main.s3.accessKey, secretKey: main.s3.secretKey });
  env = await createTestEnv("spool-full", { NATS_URL: stack.natsUrl, MINIO_ENDPOINT: stack.s3Endpoint, OBJECT_STORE: stack.store });
});
after(async () => {
  await stopWorkers(workers);
  await env?.close();
  await stack?.close();
});

async function counter(http: string, name: string): Promise<number> {
  const text = await (await fetch(`${http}/metrics`)).text();
  return Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "m").exec(text)?.[1] ?? 0);
}

test("the spool reaches SPOOL_MAX_MB while the store is down: the oldest waiting segments are dropped and counted, and everything stored is in the recording", { timeout: 900_000 }, async (t) => {
  workers = await startWorkers(env, "functions/convert/main.ts", 1, {}, "spool");
  // 1 MB holds about two 4 s segments of a 2 Mbit/s stream: most of the outage cannot be kept.
  const gateway = await startGatewayProcess({ ...env.env, INGEST_AUTH: "off", LOG_LEVEL: "warn", SPOOL_MAX_MB: "1", SEGMENT_SECONDS: String(SEGMENT_SECONDS) });
  try {
    const seconds = Math.round((20_000 + OUTAGE_MS + 20_000) / 1000);
    const t0 = Date.now();
    const caller = publish(srtUrl(gateway.srtPort, "#!::r=spool-full,m=publish"), { seconds, videoBitrate: "2M" });
    await waitFor("a first stored segment", async () => (await counter(gateway.http, "gateway_segment_store_seconds_count")) >= 1, 60_000, 200);
    await new Promise((r) => setTimeout(r, 10_000));
    const stoppedAt = (Date.now() - t0) / 1000;
    await stack.stopStore();
    await new Promise((r) => setTimeout(r, OUTAGE_MS));
    const restartedAt = (Date.now() - t0) / 1000;
    await stack.startStore();
    const ended = await caller;
    assert.equal(ended.exitCode, 0, `the caller ran to its end: ${ended.stderr}`);
    const dropped = await counter(gateway.http, "gateway_segments_dropped_total");
    assert.ok(dropped >= 3, `only ${dropped} segment(s) dropped: the spool did not fill`);

    const rec = await waitFor("the recording to be converted", async () => {
      const [r] = await env.db.select().from(recordings).where(eq(recordings.streamId, "spool-full"));
      if (r?.status === "failed") throw new Error(`the recording failed: ${r.error}`);
      return r?.status === "ready" ? r : undefined;
    }, 600_000, 500);
    const recorded = rec.durationSeconds ?? 0;

    // The final playlist keeps every dropped segment as an #EXT-X-GAP entry with its real duration.
    const playlist = (await readPlaylist(env.s3, env.config.s3.hlsBucket, rec.playlistKey!))!;
    assert.ok(playlist.ended, "the final playlist is stored");
    assert.equal(playlist.segments.filter((e) => e.gap).length, dropped, "one gap entry per dropped segment");
    const runs: { segment: string; startSeconds: number; missingSeconds: number }[] = [];
    let at = 0;
    let prevGap = false;
    for (const e of playlist.segments) {
      if (e.gap && prevGap) runs.at(-1)!.missingSeconds += e.duration;
      else if (e.gap) runs.push({ segment: e.uri, startSeconds: at, missingSeconds: e.duration });
      at += e.duration;
      prevGap = e.gap;
    }
    const gapSeconds = runs.reduce((sum, g) => sum + g.missingSeconds, 0);
    // Sent = recorded + dropped, within a segment (the caller's start-up and last partial segment).
    assert.ok(Math.abs(seconds - gapSeconds - recorded) <= SEGMENT_SECONDS + 2, `sent ${seconds} s, dropped ${gapSeconds.toFixed(1)} s, recorded ${recorded} s`);
    assert.ok(Math.abs(at - gapSeconds - recorded) <= 1, `the playlist lists ${at.toFixed(1)} s of which ${gapSeconds.toFixed(1)} s are gaps, the MP4 holds ${recorded} s: the hole is closed`);

    // The recording names exactly those seconds, on the broadcast's timeline, and says why.
    const warning = (rec.warnings ?? []).find((w) => w.kind === "gap");
    assert.ok(warning, `a gap warning: ${JSON.stringify(rec.warnings)}`);
    const r1 = (n: number) => Math.round(n * 10) / 10;
    assert.deepEqual(warning.at, runs.map((g) => ({ segment: g.segment, startSeconds: r1(g.startSeconds), missingSeconds: r1(g.missingSeconds) })));
    assert.ok(Math.abs(warning.missingSeconds - gapSeconds) < 0.2);
    const first = runs[0]!;
    assert.match(warning.message, new RegExp(`^seconds ${r1(first.startSeconds).toFixed(1)}–${r1(first.startSeconds + first.missingSeconds).toFixed(1)}`));
    assert.match(warning.message, /missing.*: the gateway could not store them \(spool full during an object store outage\)/);
    // Those seconds are the outage's: after the store stopped (less the caller's start-up), before it came back.
    for (const g of runs) {
      assert.ok(g.startSeconds >= stoppedAt - 5 && g.startSeconds + g.missingSeconds <= restartedAt + 2,
        `gap ${g.startSeconds.toFixed(1)}–${(g.startSeconds + g.missingSeconds).toFixed(1)} s lies outside the outage (${stoppedAt.toFixed(1)}–${restartedAt.toFixed(1)} s after the caller started)`);
    }
    t.diagnostic(`fault: spool full (SPOOL_MAX_MB=1) during a ${OUTAGE_MS / 1000} s store outage (${stoppedAt.toFixed(0)}–${restartedAt.toFixed(0)} s): sent ${seconds} s, dropped ${dropped} segments (${gapSeconds.toFixed(1)} s, listed as #EXT-X-GAP), recorded ${recorded.toFixed(1)} s; stored seconds lost ${Math.max(0, seconds - gapSeconds - recorded).toFixed(1)}; warning: ${warning.message}`);
  } finally {
    await gateway.stop();
  }
});
