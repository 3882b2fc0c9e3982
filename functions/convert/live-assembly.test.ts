import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdir, open, writeFile } from "node:fs/promises";
import { CopyObjectCommand, GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand } from "@aws-sdk/client-s3";
import { eq } from "drizzle-orm";
import { execa } from "execa";
import { createTestEnv, waitFor, type TestEnv } from "../../test/harness.js";
import { startWorkers, stopWorkers, waitForRecording, type Worker } from "../../test/workers.js";
import { startGatewayProcess, type GatewayProcess } from "../../test/gateway/process.js";
import { publish } from "../../test/gateway/caller.js";
import { readPlaylist, sessionFolders } from "../../test/gateway/store.js";
import { getText, listObjects, putText } from "../../lib/s3.js";
import { liveHeadKey } from "../../lib/layout.js";
import { liveAssemblies, recordings, type LiveAssembly } from "../../db/schema.js";
import { releaseAssemblyLease, takeAssemblyLease } from "../../db/live-assemblies.js";

// Instant MP4: broadcasts over SRT through the real gateway, with convert replicas as processes building
// each MP4 while it is live. Four broadcasts run side by side (a plain one of 2 minutes, one whose
// assembling replica is killed with -9, one whose live updates are skipped for a while, one that
// reconnects with a discontinuity), and each MP4 is compared with a whole-folder conversion of a copy of
// the same folder: same duration, tracks and packets (FFmpeg's framemd5 of every packet).

let env: TestEnv;
let gw: GatewayProcess;
let workers: Worker[] = [];
/** Every replica started, killed ones included: their logs say who did what. */
const everyone: Worker[] = [];
const logs = () => everyone.flatMap((w) => w.output);
const BITRATE = "2M";

before(async () => {
  // 5 MB parts so that a 2-minute 640x360 broadcast spans several; a short lease so a killed holder is taken over fast;
  // batches of 2 segments, so that remuxing waits for a batch and a 60 s broadcast still advances after a kill.
  env = await createTestEnv("live-assembly", { LIVE_ASSEMBLY_PART_MB: "5", LIVE_ASSEMBLY_LEASE_SECONDS: "3", LIVE_ASSEMBLY_BATCH_SEGMENTS: "2" });
  workers = await startWorkers(env, "functions/convert/main.ts", 2, { LOG_LEVEL: "info" }, "live");
  everyone.push(...workers);
  gw = await startGatewayProcess({ ...env.env, LOG_LEVEL: "info", RECONNECT_GRACE_SECONDS: "20" });
});

after(async () => {
  // What the replicas logged, for looking into a failure.
  if (env) await mkdir(`/tmp/vod-test-${env.id}`, { recursive: true }).then(() => writeFile(`/tmp/vod-test-${env.id}/replicas.log`, everyone.map((w) => w.output.map((l) => `${w.id} ${l}`).join("\n")).join("\n")));
  await gw?.stop();
  await stopWorkers(everyone);
  await env?.close();
});

async function createStream(name: string): Promise<string> {
  const r = await gw.api("POST", "/streams", { name });
  assert.equal(r.status, 201, JSON.stringify(r.json));
  // Four encoders on a shared, loaded machine: a 1 s SRT latency (in µs) leaves time to retransmit what is lost.
  return `${r.json.obs.server}&latency=1000000`;
}

/** What FFmpeg says decoding every frame (nothing for a clean file), without the decoders' addresses. */
async function decodeErrors(path: string): Promise<string> {
  const r = await execa("ffmpeg", ["-v", "error", "-i", path, "-f", "null", "-"], { reject: false });
  assert.equal(r.exitCode, 0, r.stderr);
  return r.stderr.replace(/ @ 0x[0-9a-f]+/g, "");
}

async function folderOf(stream: string): Promise<string> {
  return waitFor(`${stream}'s session folder`, async () => (await sessionFolders(env.s3, env.config.s3.hlsBucket, stream))[0], 60_000);
}

async function assembly(folder: string): Promise<LiveAssembly | undefined> {
  const [row] = await env.db.select().from(liveAssemblies).where(eq(liveAssemblies.sourcePrefix, folder));
  return row;
}

async function download(key: string, name: string): Promise<string> {
  const dir = `/tmp/vod-test-${env.id}/live`;
  await mkdir(dir, { recursive: true });
  const obj = await env.s3.send(new GetObjectCommand({ Bucket: env.config.s3.recordingsBucket, Key: key }));
  const path = `${dir}/${name}.mp4`;
  await writeFile(path, await obj.Body!.transformToByteArray());
  return path;
}

interface Probed {
  duration: number;
  streams: { codec: string; packets: number }[];
}

async function probePackets(path: string): Promise<Probed> {
  const { stdout } = await execa("ffprobe", ["-v", "error", "-count_packets", "-show_entries", "format=duration:stream=codec_name,nb_read_packets", "-of", "json", path]);
  const j = JSON.parse(stdout) as { format: { duration: string }; streams: { codec_name: string; nb_read_packets: string }[] };
  return { duration: Number(j.format.duration), streams: j.streams.map((s) => ({ codec: s.codec_name, packets: Number(s.nb_read_packets) })) };
}

/** Every packet's timestamps, size and checksum, as FFmpeg reads them. */
async function framemd5(path: string): Promise<string> {
  const { stdout } = await execa("ffmpeg", ["-v", "error", "-i", path, "-map", "0", "-c", "copy", "-f", "framemd5", "-"], { maxBuffer: 256 * 1024 * 1024 });
  return stdout.split("\n").filter((l) => !l.startsWith("#")).join("\n");
}

/** The top-level boxes of an MP4 file, in order. */
async function topBoxes(path: string): Promise<string[]> {
  const fh = await open(path, "r");
  try {
    const { size } = await fh.stat();
    const out: string[] = [];
    const head = Buffer.alloc(16);
    for (let pos = 0; pos + 8 <= size; ) {
      await fh.read(head, 0, 16, pos);
      let n = head.readUInt32BE(0);
      if (n === 1) n = Number(head.readBigUInt64BE(8));
      out.push(head.toString("latin1", 4, 8));
      if (n < 8) break;
      pos += n;
    }
    return out;
  } finally {
    await fh.close();
  }
}

/** The whole-folder path's MP4 of the same folder: a copy of it dropped under another prefix, playlist last. */
async function wholeFolderMp4(folder: string, name: string): Promise<string> {
  const bucket = env.config.s3.hlsBucket;
  const copy = `whole/${name}`;
  const objects: string[] = [];
  for await (const o of listObjects(env.s3, bucket, `${folder}/`)) objects.push(o.key);
  const playlist = objects.filter((k) => k.endsWith(".m3u8"));
  for (const key of objects.filter((k) => !k.endsWith(".m3u8"))) {
    await env.s3.send(new CopyObjectCommand({ Bucket: bucket, Key: `${copy}/${key.slice(folder.length + 1)}`, CopySource: `${bucket}/${encodeURIComponent(key).replaceAll("%2F", "/")}` }));
  }
  // The playlist last, as an upload: its event starts the conversion.
  for (const key of playlist) await putText(env.s3, bucket, `${copy}/${key.slice(folder.length + 1)}`, await getText(env.s3, bucket, key), "application/vnd.apple.mpegurl");
  const rec = await waitForRecording(env, copy, ["ready", "failed"], 180_000);
  assert.equal(rec.status, "ready", rec.error ?? "");
  assert.ok(!logs().some((l) => l.includes('"msg":"live MP4 completed"') && l.includes(`"sourcePrefix":"${copy}"`)), "the copy is converted by the whole-folder path");
  return download(rec.filePath!, `${name}-whole`);
}

/** Waits for the broadcast's recording; checks the MP4 was finished from the live assembly and equals the whole-folder path's. */
async function checkInstantMp4(t: { diagnostic(msg: string): void }, folder: string, name: string): Promise<void> {
  const rec = await waitForRecording(env, folder, ["ready", "failed"], 180_000);
  assert.equal(rec.status, "ready", rec.error ?? "");
  const ended = await env.s3.send(new HeadObjectCommand({ Bucket: env.config.s3.hlsBucket, Key: `${folder}/index.m3u8` }));
  t.diagnostic(`${name}: ENDLIST stored → recording ready in ${rec.readyAt!.getTime() - ended.LastModified!.getTime()} ms (store and database clocks, same host)`);
  const finished = logs().find((l) => l.includes('"msg":"live MP4 completed"') && l.includes(`"sourcePrefix":"${folder}"`));
  assert.ok(finished, `${folder} was finished from its live assembly`);
  assert.ok(JSON.parse(finished).parts >= 3, `the media went up in parts while live: ${finished}`);
  assert.equal(JSON.parse(finished).headFrom, "kept", `the finish read the head kept while live instead of remuxing it: ${finished}`);
  await waitFor("the assembly's state to be gone once the recording is ready", async () => (await assembly(folder)) === undefined, 30_000);
  const rows = await env.db.select().from(recordings).where(eq(recordings.sourcePrefix, folder));
  assert.equal(rows.length, 1);

  const live = await download(rec.filePath!, name);
  // A free box may sit between moov and mdat (part 1 filled up to a block boundary); players skip it.
  assert.deepEqual((await topBoxes(live)).filter((b) => b !== "free").slice(0, 3), ["ftyp", "moov", "mdat"], "faststart: moov before the media");
  const whole = await wholeFolderMp4(folder, name);
  // Clean, unless SRT lost media on the loaded machine: then the whole-folder MP4 of the same segments says the same.
  const errors = await decodeErrors(live);
  assert.equal(errors, await decodeErrors(whole), "FFmpeg plays the MP4 as it plays the whole-folder path's");
  if (errors) t.diagnostic(`${name}: the source itself is damaged (SRT loss under load); both MP4s decode with: ${errors.split("\n")[0]}`);

  const [a, b] = [await probePackets(live), await probePackets(whole)];
  assert.deepEqual(a.streams, b.streams, "same tracks and packet counts as the whole-folder path");
  assert.ok(Math.abs(a.duration - b.duration) < 0.05, `duration ${a.duration} s vs ${b.duration} s`);
  assert.ok(Math.abs((rec.durationSeconds ?? 0) - b.duration) < 0.05, `the row says ${rec.durationSeconds} s`);
  assert.equal(await framemd5(live), await framemd5(whole), "every packet (timestamps, size, bytes) equals the whole-folder path's");
  const uploads = (await env.s3.send(new ListMultipartUploadsCommand({ Bucket: env.config.s3.recordingsBucket, Prefix: `${folder}/` }))).Uploads ?? [];
  assert.deepEqual(uploads, [], "no multipart upload left open");
  const kept = await env.s3.send(new HeadObjectCommand({ Bucket: env.config.s3.recordingsBucket, Key: liveHeadKey(rec.filePath!) })).then(() => true, () => false);
  assert.equal(kept, false, "the head kept while live is deleted with the assembly");
}

describe("instant MP4 from live broadcasts", { concurrency: true }, () => {
  test("a 2-minute SRT broadcast is ready seconds after its end: faststart, plays, and holds the same packets as the whole-folder path", async (t) => {
    const server = await createStream("plain");
    const caller = await publish(server, { seconds: 120, videoBitrate: BITRATE });
    assert.equal(caller.exitCode, 0, caller.stderr);
    await checkInstantMp4(t, await folderOf("plain"), "plain");
  });

  test("the replica assembling a broadcast is killed with -9 mid-broadcast: the other takes over and the MP4 is complete", async (t) => {
    const server = await createStream("killed");
    const caller = publish(server, { seconds: 60, videoBitrate: BITRATE });
    const folder = await folderOf("killed");
    await waitFor("the assembly's head", async () => (await assembly(folder))?.headSegments != null, 90_000, 200);
    const holder = await waitFor("a replica holding the assembly", async () => {
      const row = await assembly(folder);
      return row?.leaseOwner ?? undefined;
    }, 30_000, 5);
    const victim = workers.find((w) => holder.startsWith(`${w.id}/`))!;
    assert.ok(victim, `holder ${holder}`);
    victim.proc.kill("SIGKILL");
    await victim.exited;
    const before = (await assembly(folder))!.segmentsDone;
    const survivor = workers.find((w) => w !== victim)!;
    await waitFor("the survivor to advance the assembly", async () => ((await assembly(folder))?.segmentsDone ?? 0) > before, 60_000, 200);
    assert.equal((await caller).exitCode, 0);
    await checkInstantMp4(t, folder, "killed");
    assert.ok(survivor.output.some((l) => l.includes('"msg":"live MP4 completed"') && l.includes(folder)), "the survivor finished it");
    // A replacement keeps two replicas for the rest of the file.
    const again = await startWorkers(env, "functions/convert/main.ts", 1, { LOG_LEVEL: "info" }, "again");
    everyone.push(...again);
    workers = [survivor, ...again];
  });

  test("live updates skipped while another holds the assembly (missed events) are caught up by the next one", async (t) => {
    const server = await createStream("missed");
    const caller = publish(server, { seconds: 50, videoBitrate: BITRATE });
    const folder = await folderOf("missed");
    await waitFor("the assembly's head", async () => (await assembly(folder))?.headSegments != null, 90_000, 200);
    // Held by someone else: each update in this window is acked and skipped by the replicas.
    const owner = "test/holder";
    const held = await waitFor("the test to take the lease", async () => takeAssemblyLease(env.db, folder, owner, 4000), 30_000, 20);
    const listed = async () => (await readPlaylist(env.s3, env.config.s3.hlsBucket, `${folder}/index.m3u8`))?.segments.length ?? 0;
    const atStart = await listed();
    await waitFor("three segments to land while the lease is held", async () => {
      await takeAssemblyLease(env.db, folder, owner, 4000);
      return (await listed()) >= atStart + 3;
    }, 60_000, 500);
    assert.equal((await assembly(folder))!.segmentsDone, held.segmentsDone, "nothing assembled while the lease was held");
    await releaseAssemblyLease(env.db, folder, owner);
    assert.equal((await caller).exitCode, 0);
    await checkInstantMp4(t, folder, "missed");
  });

  test("a caller reconnecting within the grace period (a discontinuity): one recording, one correct MP4 from the whole-folder path", async () => {
    const server = await createStream("flaky");
    const first = publish(server, { seconds: 60, videoBitrate: BITRATE });
    const folder = await folderOf("flaky");
    await waitFor("the assembly to start", async () => (await assembly(folder)) !== undefined, 60_000, 200);
    first.kill("SIGKILL");
    await first;
    await waitFor("the gateway to notice the lost caller", async () => {
      const list = await (await fetch(`${gw.http}/streams`)).json();
      return list.streams.find((s: { name: string }) => s.name === "flaky")?.live?.state === "waiting";
    }, 30_000);
    const second = await publish(server, { seconds: 12, videoBitrate: BITRATE });
    assert.equal(second.exitCode, 0, second.stderr);
    const rec = await waitForRecording(env, folder, ["ready", "failed"], 180_000);
    assert.equal(rec.status, "ready", rec.error ?? "");
    const p = (await readPlaylist(env.s3, env.config.s3.hlsBucket, `${folder}/index.m3u8`))!;
    assert.equal(p.segments.filter((s) => s.discontinuity).length, 1, "the playlist has the reconnect's discontinuity");
    const lines = logs().filter((l) => l.includes(folder));
    assert.ok(lines.some((l) => l.includes("live assembly given up") && l.includes('"reason":"discontinuity"')), "the assembly gave up at the discontinuity");
    assert.ok(!lines.some((l) => l.includes('"msg":"live MP4 completed"')));
    const rows = await env.db.select().from(recordings).where(eq(recordings.streamId, "flaky"));
    assert.equal(rows.length, 1, "one recording");
    const mp4 = await download(rec.filePath!, "flaky");
    const listedSeconds = p.segments.reduce((n, s) => n + s.duration, 0);
    assert.ok(Math.abs((await probePackets(mp4)).duration - listedSeconds) < 1, "the MP4 holds both parts");
    assert.ok(!/moov atom not found|Invalid data found/.test(await decodeErrors(mp4)), "FFmpeg plays the MP4");
    const uploads = (await env.s3.send(new ListMultipartUploadsCommand({ Bucket: env.config.s3.recordingsBucket, Prefix: `${folder}/` }))).Uploads ?? [];
    assert.deepEqual(uploads, [], "the abandoned assembly's upload was aborted");
    assert.equal(await assembly(folder), undefined, "no assembly state left");
  });
});
