import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import { eq } from "drizzle-orm";
import { execa } from "execa";
import { consumerIdle, createTestEnv, waitFor, type TestEnv } from "../../test/harness.js";
import { startWorkers, stopWorkers, waitForRecording, type Worker } from "../../test/workers.js";
import { startGatewayProcess, type GatewayProcess } from "../../test/gateway/process.js";
import { publish } from "../../test/gateway/caller.js";
import { readPlaylist, sessionFolders } from "../../test/gateway/store.js";
import { createLogger } from "../../lib/log.js";
import { liveHeadKey } from "../../lib/layout.js";
import { abortMultipartUpload, headObject, listMultipartUploads } from "../../lib/s3.js";
import { liveAssemblies, liveAssemblyParts, recordings, type Recording } from "../../db/schema.js";
import { releaseAssemblyLease, takeAssemblyLease } from "../../db/live-assemblies.js";
import { sweep } from "./sweep.js";

// A broadcast whose gateway is killed with -9 and not restarted never gets #EXT-X-ENDLIST: its live assembly
// (an open upload with parts stored, a head object, rows) would stay forever. The sweep removes it once idle;
// when the gateway comes back on the same spool and ends the playlist, the whole-folder path makes the MP4.
// A second broadcast cut by the same kill keeps its assembly, but its upload is no longer open when it ends
// (as after a finish that completed it and died): the finish falls back to the whole folder, never fails.

let env: TestEnv;
let gw: GatewayProcess | undefined;
let workers: Worker[] = [];

before(async () => {
  // 5 MB parts and batches of 2 segments, so that a part is uploaded within seconds of media; a short lease.
  env = await createTestEnv("abandoned-broadcast", { LIVE_ASSEMBLY_PART_MB: "5", LIVE_ASSEMBLY_LEASE_SECONDS: "3", LIVE_ASSEMBLY_BATCH_SEGMENTS: "2" });
  // The replica's own sweep stays out of the way: the test runs the sweep itself, with its clock moved on.
  workers = await startWorkers(env, "functions/convert/main.ts", 1, { LOG_LEVEL: "info", SWEEP_INTERVAL_SECONDS: "3600" }, "abandon");
  gw = await startGatewayProcess({ ...env.env, LOG_LEVEL: "info" });
});

after(async () => {
  if (env) await mkdir(`/tmp/vod-test-${env.id}`, { recursive: true }).then(() => writeFile(`/tmp/vod-test-${env.id}/replicas.log`, workers.flatMap((w) => w.output).join("\n")));
  await gw?.stop();
  await stopWorkers(workers);
  await env?.close();
});

interface Counts {
  duration: number;
  packets: Record<string, number>;
}

async function probe(path: string): Promise<Counts> {
  const { stdout } = await execa("ffprobe", ["-v", "error", "-count_packets", "-show_entries", "format=duration:stream=codec_type,nb_read_packets", "-of", "json", path]);
  const j = JSON.parse(stdout) as { format: { duration: string }; streams: { codec_type: string; nb_read_packets: string }[] };
  return { duration: Number(j.format.duration), packets: Object.fromEntries(j.streams.map((s) => [s.codec_type, Number(s.nb_read_packets)])) };
}

async function download(bucket: string, key: string): Promise<Buffer> {
  const obj = await env.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await obj.Body!.transformToByteArray());
}

/** Starts a 6 Mbit/s broadcast (a 5 MB part every few seconds); answers its folder once a part was uploaded while live. */
async function broadcast(name: string) {
  const created = await gw!.api("POST", "/streams", { name });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  const caller = publish(created.json.obs.server, { seconds: 120, videoBitrate: "6M" });
  const folder = await waitFor(`${name}'s session folder`, async () => (await sessionFolders(env.s3, env.config.s3.hlsBucket, name))[0], 60_000);
  await waitFor(`a part of ${name}'s assembly uploaded while live`, async () => (await env.db.select().from(liveAssemblyParts).where(eq(liveAssemblyParts.sourcePrefix, folder))).length > 0, 90_000, 250);
  return { caller, folder };
}

/** The ready recording's MP4 holds exactly the media its final playlist lists: every packet of its segments, and their length. */
async function checkWholeFolderMp4(folder: string, done: Recording): Promise<void> {
  const rec = env.config.s3.recordingsBucket;
  assert.equal(done.status, "ready", done.error ?? "");
  assert.equal((await env.db.select().from(recordings).where(eq(recordings.sourcePrefix, folder))).length, 1, "one recording");
  const lines = workers.flatMap((w) => w.output).filter((l) => l.includes(folder));
  assert.ok(!lines.some((l) => l.includes('"msg":"live MP4 completed"')), "not finished from a live assembly: the whole-folder path made it");
  const final = (await readPlaylist(env.s3, env.config.s3.hlsBucket, `${folder}/index.m3u8`))!;
  assert.ok(final.ended);
  const dir = `/tmp/vod-test-${env.id}/${folder.replaceAll("/", "_")}`;
  await mkdir(dir, { recursive: true });
  const source = Buffer.concat(await Promise.all(final.segments.map((s) => download(env.config.s3.hlsBucket, `${folder}/${s.uri}`))));
  await writeFile(`${dir}/source.ts`, source);
  await writeFile(`${dir}/recording.mp4`, await download(rec, done.filePath!));
  const [mp4, ts] = [await probe(`${dir}/recording.mp4`), await probe(`${dir}/source.ts`)];
  assert.deepEqual(mp4.packets, ts.packets, "the MP4 has every video and audio packet of the segments");
  const listed = final.segments.reduce((n, s) => n + s.duration, 0);
  assert.ok(Math.abs(mp4.duration - listed) < 0.5, `MP4 ${mp4.duration} s, playlist ${listed} s`);
  assert.ok(Math.abs((done.durationSeconds ?? 0) - mp4.duration) < 0.05, `the row says ${done.durationSeconds} s`);
}

test("broadcasts cut without ENDLIST: the sweep aborts an idle one's upload and drops its head and state; ended later, each is one correct recording", async () => {
  const [cut, gone] = await Promise.all([broadcast("cut"), broadcast("gone")]);
  const folder = cut.folder;
  const playlistKey = `${folder}/index.m3u8`;

  // The gateway dies and stays down: no ENDLIST comes.
  await gw!.kill9();
  for (const b of [cut, gone]) b.caller.kill("SIGKILL");
  await Promise.all([cut.caller, gone.caller]);
  await consumerIdle(env, env.config.nats.consumers.convert, 60_000);
  const settled = async (f: string) => waitFor(`the replica to let go of ${f}'s assembly`, async () => {
    const [r] = await env.db.select().from(liveAssemblies).where(eq(liveAssemblies.sourcePrefix, f));
    return r && r.leaseOwner === null ? r : undefined;
  }, 30_000);
  const row = await settled(folder);
  const goneRow = await settled(gone.folder);
  assert.equal(row.status, "assembling");
  assert.ok(row.partsBytes >= 5 * 1024 * 1024, `parts stored: ${row.partsBytes} bytes`);
  const rec = env.config.s3.recordingsBucket;
  // Listed by the MP4's key: MinIO lists the uploads of one key, never of a folder.
  const uploads = async (key = row.mp4Key) => {
    const ids: string[] = [];
    for await (const u of listMultipartUploads(env.s3, rec, key)) ids.push(u.uploadId);
    return ids;
  };
  assert.deepEqual(await uploads(), [row.uploadId], "the assembly's upload is open with its parts");
  assert.ok(await headObject(env.s3, rec, liveHeadKey(row.mp4Key)), "the head object is there");

  // The second broadcast's assembly is held (as by a replica) while the sweep runs, so it stays.
  assert.ok(await takeAssemblyLease(env.db, gone.folder, "test/holder", 120_000));
  const log = createLogger("sweep-test", "silent");
  const now = await sweep({ s3: env.s3, db: env.db, nc: env.nc, log, config: env.config });
  assert.deepEqual(now.leftovers?.abandoned, [], "seconds after the cut the broadcast may still come back: nothing is removed");
  const idleMs = env.config.functions.liveAssembly.idleMs;
  const later = await sweep({ s3: env.s3, db: env.db, nc: env.nc, log, config: env.config, now: () => Date.now() + idleMs + 60_000 });
  assert.deepEqual(later.leftovers?.abandoned, [playlistKey]);
  assert.deepEqual(await uploads(), [], "ListMultipartUploads shows no upload left on the MP4's key: no parts stored");
  assert.equal(await headObject(env.s3, rec, liveHeadKey(row.mp4Key)), undefined, "the head object is deleted");
  assert.equal((await env.db.select().from(liveAssemblies).where(eq(liveAssemblies.sourcePrefix, folder))).length, 0, "the assembly's row is gone");
  assert.equal((await env.db.select().from(liveAssemblyParts).where(eq(liveAssemblyParts.sourcePrefix, folder))).length, 0, "its parts' rows are gone");
  const [live] = await env.db.select().from(recordings).where(eq(recordings.sourcePrefix, folder));
  assert.equal(live?.status, "live", "the recording itself is untouched: the broadcast may still end");
  // The second one's upload goes away under its row.
  await abortMultipartUpload(env.s3, rec, goneRow.mp4Key, goneRow.uploadId);
  await releaseAssemblyLease(env.db, gone.folder, "test/holder");

  // The gateway comes back on the same spool: its crash recovery ends both playlists with ENDLIST.
  gw = await startGatewayProcess(gw!.env, { http: Number(new URL(gw!.http).port), srt: gw!.srtPort });
  const [done, goneDone] = await Promise.all([waitForRecording(env, folder, ["ready", "failed"], 120_000), waitForRecording(env, gone.folder, ["ready", "failed"], 120_000)]);
  await checkWholeFolderMp4(folder, done);
  await checkWholeFolderMp4(gone.folder, goneDone);
  assert.ok(workers.flatMap((w) => w.output).some((l) => l.includes(gone.folder) && l.includes("live assembly does not match the final playlist") && l.includes('"reason":"state-missing"') && l.includes("multipart upload is no longer open")), "the finish saw the upload gone and fell back");
  assert.equal(await headObject(env.s3, rec, liveHeadKey(goneRow.mp4Key)), undefined, "the fallback deleted its head object");
  assert.equal((await env.db.select().from(liveAssemblies).where(eq(liveAssemblies.sourcePrefix, gone.folder))).length, 0);
  assert.deepEqual([...(await uploads()), ...(await uploads(goneRow.mp4Key))], [], "no upload left open");
});
