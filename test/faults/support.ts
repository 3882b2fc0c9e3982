// What the fault tests share: a batch of dropped folders and the checks that nothing was lost and
// nothing was converted twice.
import assert from "node:assert/strict";
import { join } from "node:path";
import { like } from "drizzle-orm";
import { listObjects } from "../../lib/s3.js";
import { recordings } from "../../db/schema.js";
import { listFolder, uploadFiles } from "../../functions/drop/upload.js";
import { makeHls } from "../media.js";
import { waitFor, type TestEnv } from "../harness.js";
import type { Worker } from "../workers.js";
import { startGatewayProcess } from "../gateway/process.js";
import { publish, srtUrl } from "../gateway/caller.js";
import { eq } from "drizzle-orm";

/** An HLS folder made by FFmpeg's muxer (12 s of 360p), written once into `dir`. */
export async function faultMedia(dir: string): Promise<string> {
  const folder = join(dir, "talk");
  await makeHls(folder, { seconds: 12, segmentSeconds: 2, size: "640x360" });
  return folder;
}

/** Uploads the folder `count` times under `<batch>/folder-NN`, as a user's tool does (segments, then the playlist). */
export async function dropFolders(env: TestEnv, media: string, batch: string, count: number): Promise<string[]> {
  const files = await listFolder(media);
  const folders = Array.from({ length: count }, (_, i) => `${batch}/folder-${String(i).padStart(2, "0")}`);
  await Promise.all(folders.map((f) => uploadFiles(env.s3, env.config.s3.hlsBucket, f, files, { concurrency: 2 })));
  return folders;
}

export async function batchStatus(env: TestEnv, batch: string) {
  const rows = await env.db.select({ folder: recordings.sourcePrefix, status: recordings.status, error: recordings.error }).from(recordings).where(like(recordings.sourcePrefix, `${batch}/%`));
  return { rows, ready: rows.filter((r) => r.status === "ready").length, failed: rows.filter((r) => r.status === "failed") };
}

export async function waitAllReady(env: TestEnv, batch: string, count: number, timeoutMs: number): Promise<void> {
  await waitFor(`all ${count} recordings of ${batch} ready`, async () => {
    const s = await batchStatus(env, batch);
    if (s.failed.length) throw new Error(`failed: ${s.failed.map((r) => `${r.folder}: ${r.error}`).join("; ")}`);
    return s.ready === count;
  }, timeoutMs, 250);
}

/** Nothing lost, nothing twice: one ready row and one MP4 per folder, and one "ready" log per folder across all replicas. */
export async function assertEachConvertedOnce(env: TestEnv, batch: string, folders: string[], workers: Worker[]): Promise<{ duplicatesSkipped: number }> {
  const { rows, ready } = await batchStatus(env, batch);
  assert.equal(rows.length, folders.length, "one recording per folder");
  assert.equal(ready, folders.length, "every recording ready");
  const mp4s: string[] = [];
  for await (const o of listObjects(env.s3, env.config.s3.recordingsBucket, `${batch}/`)) if (o.key.endsWith(".mp4")) mp4s.push(o.key.slice(0, o.key.lastIndexOf("/")));
  assert.deepEqual(mp4s.sort(), [...folders].sort(), "one MP4 per folder");
  const perFolder = new Map<string, number>();
  for (const w of workers) {
    for (const line of w.output) {
      let l: { stage?: string; key?: string };
      try {
        l = JSON.parse(line) as typeof l;
      } catch {
        continue;
      }
      if (l.stage !== "ready" || !l.key?.startsWith(`${batch}/`)) continue;
      const folder = l.key.slice(0, l.key.lastIndexOf("/"));
      perFolder.set(folder, (perFolder.get(folder) ?? 0) + 1);
    }
  }
  assert.deepEqual([...perFolder.entries()].filter(([, n]) => n !== 1), [], "no folder converted twice");
  assert.equal(perFolder.size, folders.length, "every folder's conversion logged");
  return { duplicatesSkipped: workers.flatMap((w) => w.output).filter((l) => l.includes("duplicate event")).length };
}

/**
 * A live SRT broadcast (FFmpeg's caller, real time) through a gateway on `env`, with `stop` called
 * 20 s in and `start` after `outageMs`; the broadcast goes on 20 s past the outage, then ends cleanly.
 * Needs convert replicas running on `env`. Answers what was sent and what the finished recording holds.
 */
export async function broadcastThroughOutage(env: TestEnv, convertReplicas: Worker[], o: { name: string; outageMs: number; stop(): Promise<void>; start(): Promise<void> }) {
  assert.ok(convertReplicas.some((w) => w.proc.exitCode === null), "a convert replica is running");
  const gateway = await startGatewayProcess({ ...env.env, INGEST_AUTH: "off", LOG_LEVEL: "warn" });
  try {
    const seconds = Math.round((20_000 + o.outageMs + 20_000) / 1000);
    const caller = publish(srtUrl(gateway.srtPort, `#!::r=${o.name},m=publish`), { seconds, size: "320x180" });
    const sentAt = Date.now();
    await new Promise((r) => setTimeout(r, 20_000));
    const stoppedAt = Date.now();
    await o.stop();
    await new Promise((r) => setTimeout(r, o.outageMs));
    await o.start();
    const outageMs = Date.now() - stoppedAt;
    const ended = await caller;
    assert.equal(ended.exitCode, 0, `the caller ran to its end: ${ended.stderr}`);
    const sentSeconds = Math.min(seconds, (Date.now() - sentAt) / 1000);
    // The same gateway process ingested throughout: the fault never made it exit (nothing restarted it).
    assert.equal(gateway.proc.exitCode, null, "the gateway process is still the one that started");
    const rows = await waitFor(`the recording of ${o.name} ready`, async () => {
      const r = await env.db.select().from(recordings).where(eq(recordings.streamId, o.name));
      const failed = r.filter((x) => x.status === "failed");
      if (failed.length) throw new Error(`failed: ${failed.map((x) => x.error).join("; ")}`);
      return r.length > 0 && r.every((x) => x.status === "ready") ? r : undefined;
    }, 600_000, 500);
    const recordedSeconds = rows.reduce((sum, r) => sum + (r.durationSeconds ?? 0), 0);
    // The caller's last partial segment and its start-up can differ by a segment; beyond that, seconds were lost.
    const lostSeconds = Math.max(0, seconds - recordedSeconds);
    assert.equal(rows.length, 1, "one broadcast, one recording");
    assert.ok(lostSeconds <= 4, `sent ${seconds} s, recorded ${recordedSeconds} s`);
    return { outageMs, sentSeconds, recordedSeconds, lostSeconds, recordings: rows.length, gatewayRestarts: 0 };
  } finally {
    await gateway.stop();
  }
}
