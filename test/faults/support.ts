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
