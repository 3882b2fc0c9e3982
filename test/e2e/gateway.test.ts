// The whole path a streamer takes: OBS-like SRT caller → gateway → live HLS → ENDLIST → convert → ready MP4.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { execa } from "execa";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import { createTestEnv, type TestEnv } from "../harness.js";
import { probe } from "../media.js";
import { startWorkers, stopWorkers, waitForRecording, type Worker } from "../workers.js";
import { startGatewayProcess, type GatewayProcess } from "../gateway/process.js";
import { freeUdpPort } from "../ports.js";
import { publish } from "../gateway/caller.js";
import { sessionFolders } from "../gateway/store.js";

let env: TestEnv;
let gw: GatewayProcess;
let workers: Worker[] = [];

before(async () => {
  env = await createTestEnv("e2e-gateway");
  workers = await startWorkers(env, "functions/convert/main.ts", 1);
  gw = await startGatewayProcess({ ...env.env, LOG_LEVEL: "info" });
});

after(async () => {
  await gw?.stop();
  await stopWorkers(workers);
  await env?.close();
});

test("a 12 s SRT broadcast becomes a ready MP4 of 12 ± 1 s", async () => {
  const created = await gw.api("POST", "/streams", { name: "e2e", title: "End to end" });
  assert.equal(created.status, 201);
  const r = await publish(created.json.obs.server, { seconds: 12 });
  assert.equal(r.exitCode, 0, r.stderr);
  const [folder] = await sessionFolders(env.s3, env.config.s3.hlsBucket, "e2e");
  assert.ok(folder);
  const rec = await waitForRecording(env, folder);
  assert.equal(rec.status, "ready", rec.error ?? "");
  assert.ok(rec.filePath);
  assert.ok(Math.abs((rec.durationSeconds ?? 0) - 12) <= 1, `recorded ${rec.durationSeconds} s`);

  const dir = `/tmp/vod-test-${env.id}/e2e`;
  await mkdir(dir, { recursive: true });
  const obj = await env.s3.send(new GetObjectCommand({ Bucket: env.config.s3.recordingsBucket, Key: rec.filePath! }));
  await writeFile(`${dir}/out.mp4`, await obj.Body!.transformToByteArray());
  const media = await probe(`${dir}/out.mp4`);
  assert.ok(Math.abs(media.duration - 12) <= 1, `MP4 lasts ${media.duration} s`);
  assert.equal(media.video, "h264");
  assert.equal(media.audio, "aac");
});

async function recordedMp4(stream: string, name: string): Promise<{ rec: Awaited<ReturnType<typeof waitForRecording>>; media: Awaited<ReturnType<typeof probe>> }> {
  const [folder] = await sessionFolders(env.s3, env.config.s3.hlsBucket, stream);
  assert.ok(folder, `${stream} has a session folder`);
  const rec = await waitForRecording(env, folder);
  assert.equal(rec.status, "ready", rec.error ?? "");
  const dir = `/tmp/vod-test-${env.id}/${name}`;
  await mkdir(dir, { recursive: true });
  const obj = await env.s3.send(new GetObjectCommand({ Bucket: env.config.s3.recordingsBucket, Key: rec.filePath! }));
  await writeFile(`${dir}/out.mp4`, await obj.Body!.transformToByteArray());
  return { rec, media: await probe(`${dir}/out.mp4`) };
}

test("a GStreamer srtsink caller (mpegtsmux alignment=7) becomes a ready recording with audio and video of the right length", async () => {
  const created = await gw.api("POST", "/streams", { name: "gst" });
  assert.equal(created.status, 201);
  // 10 s: 250 video frames at 25 fps, 250 audio buffers of 1920 samples at 48 kHz; -e ends with EOS so srtsink closes cleanly.
  const r = await execa("gst-launch-1.0", [
    "-e", "-q",
    "videotestsrc", "num-buffers=250", "is-live=true", "!", "video/x-raw,width=640,height=360,framerate=25/1", "!",
    "x264enc", "tune=zerolatency", "speed-preset=ultrafast", "key-int-max=50", "bitrate=1500", "!", "h264parse", "!", "mux.",
    "audiotestsrc", "num-buffers=250", "samplesperbuffer=1920", "is-live=true", "!", "audio/x-raw,rate=48000,channels=2", "!", "audioconvert", "!",
    "avenc_aac", "!", "aacparse", "!", "mux.",
    "mpegtsmux", "name=mux", "alignment=7", "!",
    "srtsink", `uri=srt://127.0.0.1:${gw.srtPort}`, "streamid=#!::r=gst,m=publish", `passphrase=${created.json.secret}`,
  ], { reject: false, timeout: 60_000 });
  assert.equal(r.exitCode, 0, r.stderr || r.stdout);
  const { rec, media } = await recordedMp4("gst", "gst");
  assert.ok(Math.abs((rec.durationSeconds ?? 0) - 10) <= 1, `recorded ${rec.durationSeconds} s`);
  assert.ok(Math.abs(media.duration - 10) <= 1, `MP4 lasts ${media.duration} s`);
  assert.equal(media.video, "h264");
  assert.equal(media.audio, "aac");
});

test("srt-live-transmit relaying an encoder's UDP MPEG-TS becomes a ready recording with audio and video of the right length", async () => {
  const created = await gw.api("POST", "/streams", { name: "relay" });
  assert.equal(created.status, 201);
  const udp = await freeUdpPort();
  const relay = execa("srt-live-transmit", ["-q", `udp://127.0.0.1:${udp}`, `srt://127.0.0.1:${gw.srtPort}?streamid=publish:relay&passphrase=${created.json.secret}`], { reject: false });
  // The relay connects to the gateway at start; the encoder then sends 1316-byte UDP datagrams in real time.
  await new Promise((r) => setTimeout(r, 1000));
  const encoder = await execa("ffmpeg", [
    "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=10", "-f", "lavfi", "-i", "sine=sample_rate=48000:duration=10",
    "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p", "-g", "50", "-c:a", "aac", "-b:a", "96k",
    "-f", "mpegts", `udp://127.0.0.1:${udp}?pkt_size=1316`,
  ], { reject: false });
  assert.equal(encoder.exitCode, 0, encoder.stderr);
  // UDP has no end: stopping the relay (SIGINT, as an operator does) closes its SRT connection.
  await new Promise((r) => setTimeout(r, 500));
  relay.kill("SIGINT");
  await relay;
  const { rec, media } = await recordedMp4("relay", "relay");
  assert.ok(Math.abs((rec.durationSeconds ?? 0) - 10) <= 1, `recorded ${rec.durationSeconds} s`);
  assert.ok(Math.abs(media.duration - 10) <= 1, `MP4 lasts ${media.duration} s`);
  assert.equal(media.video, "h264");
  assert.equal(media.audio, "aac");
});
