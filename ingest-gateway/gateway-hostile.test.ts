// Callers that misbehave: faster than real time, bytes that are not MPEG-TS, video without keyframes,
// and streamids or passphrases made to break things. None may wedge a broadcast or grow memory.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { eq } from "drizzle-orm";
import { execa } from "execa";
import { createTestEnv, waitFor, type TestEnv } from "../test/harness.js";
import { recordings, streams } from "../db/schema.js";
import { startGatewayProcess, type GatewayProcess } from "../test/gateway/process.js";
import { send } from "../test/gateway/sender.js";
import { keys, readPlaylist, sessionFolders } from "../test/gateway/store.js";

let env: TestEnv;
let gw: GatewayProcess;
let bucket: string;
let dir: string;
/** 60 s of 640x360 H.264/AAC, keyframes every 2 s, as an encoder's recording would be replayed. */
let minute: string;

before(async () => {
  env = await createTestEnv("gateway-hostile");
  bucket = env.config.s3.hlsBucket;
  dir = `/tmp/vod-test-${env.id}/media`;
  await mkdir(dir, { recursive: true });
  minute = `${dir}/minute.ts`;
  await execa("ffmpeg", [
    "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=60", "-f", "lavfi", "-i", "sine=sample_rate=48000:duration=60",
    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "50", "-keyint_min", "50", "-b:v", "1500k", "-c:a", "aac", "-b:a", "96k", "-f", "mpegts", minute,
  ]);
  gw = await startGatewayProcess({ ...env.env, LOG_LEVEL: "info", RECONNECT_GRACE_SECONDS: "5" });
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

async function endedPlaylist(stream: string, timeoutMs = 40_000) {
  return waitFor(`an ENDLIST playlist for ${stream}`, async () => {
    for (const folder of await sessionFolders(env.s3, bucket, stream)) {
      const p = await readPlaylist(env.s3, bucket, `${folder}/index.m3u8`);
      if (p?.ended) return { folder, playlist: p };
    }
    return undefined;
  }, timeoutMs, 100);
}

async function streamState(name: string): Promise<string | undefined> {
  const [row] = await env.db.select().from(streams).where(eq(streams.name, name));
  return row?.state;
}

function rssMb(pid: number): Promise<number> {
  return readFile(`/proc/${pid}/status`, "utf8").then((s) => Number(/^VmRSS:\s+(\d+)/m.exec(s)?.[1] ?? 0) / 1024);
}

async function metric(name: string, label: string): Promise<number> {
  const text = await (await fetch(`${gw.http}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`) && l.includes(label));
  return line ? Number(line.split(" ").at(-1)) : 0;
}

test("callers sending at 5x, 20x and unpaced (latency=2 s, as the wedge was found) all end with a finalised recording of what arrived", async () => {
  const rates: Record<string, { pace: string[]; x: number }> = { burst5: { pace: ["-readrate", "5"], x: 5 }, burst20: { pace: ["-readrate", "20"], x: 20 }, unpaced: { pace: [], x: Infinity } };
  const callers = await Promise.all(
    Object.entries(rates).map(async ([name, { pace }]) => {
      const { server } = await createStream(name);
      const r = await execa("ffmpeg", ["-hide_banner", "-loglevel", "error", "-nostdin", ...pace, "-i", minute, "-map", "0", "-c", "copy", "-f", "mpegts", `${server}&pkt_size=1316&latency=2000000`], {
        reject: false,
        timeout: 90_000,
      });
      return { name, r };
    }),
  );
  for (const { name, r } of callers) {
    assert.ok(!r.timedOut, `the ${name} caller was never left blocked in its send`);
    const { folder, playlist } = await endedPlaylist(name);
    const seconds = playlist.segments.reduce((s, x) => s + x.duration, 0);
    assert.ok(playlist.segments.length > 0, `${name}: something was recorded`);
    assert.deepEqual(playlist.segments.map((s) => s.uri), playlist.segments.map((_, i) => `seg${String(i).padStart(5, "0")}.ts`), `${name}: segments in order, none missing`);
    // Paced bursts deliver everything (even the 2 s latency window still held when the caller hangs up);
    // an unpaced caller overruns libsrt's buffer, and the recording holds what arrived before that.
    if (Number.isFinite(rates[name]!.x)) assert.ok(Math.abs(seconds - 60) <= 4.5, `${name}: recorded ${seconds} s of 60`);
    await waitFor(`${name} to be idle`, async () => (await streamState(name)) === "idle", 20_000);
    const [rec] = await env.db.select().from(recordings).where(eq(recordings.sourcePrefix, folder));
    assert.ok(rec, `${name}: its recording row exists`);
  }
  const list = (await gw.api("GET", "/streams")).json;
  assert.equal(list.streams.filter((s: { live: unknown }) => s.live).length, 0, "no broadcast is left live");
});

test("a caller sending random bytes gets a failed recording that names the bytes received and FFmpeg's reason, and memory stays bounded", async () => {
  const { secret } = await createStream("noise");
  const file = `${dir}/noise.bin`;
  await writeFile(file, randomBytes(6 * 1024 * 1024));
  const rss0 = await rssMb(gw.proc.pid!);
  const r = await send({ port: gw.srtPort, file, mediaSeconds: 6, streamidFormat: "#!::r=noise,m=publish", passphrase: secret, rate: 2 });
  assert.equal(r.connected, 1);
  const rec = await waitFor("the noise recording to fail", async () => {
    const [row] = await env.db.select().from(recordings).where(eq(recordings.streamId, "noise"));
    return row?.status === "failed" ? row : undefined;
  }, 40_000);
  const mb = Number(/received ([\d.]+) MB/.exec(rec.error ?? "")?.[1]);
  assert.ok(mb >= 5 && mb <= 6, rec.error ?? "");
  assert.match(rec.error ?? "", /ffmpeg exited with \d+: .*(could not find codec parameters|Invalid data)/i, rec.error ?? "");
  assert.match(rec.error ?? "", /not MPEG-TS/, "the probe's finding is told too");
  // The recording row is written before the session lets go of the stream: wait for the state, do not race it.
  await waitFor("the noise stream to go idle", async () => ((await streamState("noise")) === "idle" ? true : undefined), 15_000, 200);
  const grown = (await rssMb(gw.proc.pid!)) - rss0;
  assert.ok(grown < 120, `the gateway grew ${grown.toFixed(0)} MB`);
});

test("a never-ending stream with no keyframe at all is ended with a clear failure instead of running forever", async () => {
  const { server } = await createStream("nokey");
  const rss0 = await rssMb(gw.proc.pid!);
  // filter_units drops every IDR slice (NAL type 5): H.264 that no decoder can start on. No duration: it never ends on its own.
  const caller = execa("ffmpeg", [
    "-hide_banner", "-loglevel", "error", "-nostdin", "-readrate", "3", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25",
    "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-bsf:v", "filter_units=remove_types=5", "-f", "mpegts", server,
  ], { reject: false, timeout: 120_000 });
  const rec = await waitFor("the nokey recording to fail", async () => {
    const [row] = await env.db.select().from(recordings).where(eq(recordings.streamId, "nokey"));
    return row?.status === "failed" ? row : undefined;
  }, 90_000, 500);
  const r = await caller;
  assert.ok(!r.timedOut, "the gateway ended the caller's connection");
  assert.match(rec.error ?? "", /received [\d.]+ MB/, rec.error ?? "");
  assert.match(rec.error ?? "", /no segment/, rec.error ?? "");
  assert.match(rec.error ?? "", /keyframe/, rec.error ?? "");
  // The recording row is written before the session lets go of the stream: wait for the state, do not race it.
  await waitFor("the nokey stream to go idle", async () => ((await streamState("nokey")) === "idle" ? true : undefined), 15_000, 200);
  const grown = (await rssMb(gw.proc.pid!)) - rss0;
  assert.ok(grown < 120, `the gateway grew ${grown.toFixed(0)} MB`);
});

test("hostile streamids and passphrases are refused at the handshake, before any media, each with a counted reason", async () => {
  const { secret } = await createStream("vault");
  const hex = (s: string | Buffer) => Buffer.from(s).toString("hex");
  const before = { bad: await metric("gateway_srt_refusals_total", 'reason="bad-streamid"'), wrong: await metric("gateway_srt_refusals_total", 'reason="wrong-passphrase"'), none: await metric("gateway_srt_refusals_total", 'reason="no-passphrase"') };
  const badIds: Buffer[] = [
    randomBytes(40),
    Buffer.from("publish:" + "a".repeat(500)),
    Buffer.concat([Buffer.from("publish:cam"), Buffer.from([0xff, 0xfe, 0x80, 0xc3, 0x28])]),
    Buffer.from("publish:x'); DROP TABLE streams;--"),
    Buffer.from("#!::r=../../etc/passwd,m=publish"),
    Buffer.from("publish:$(touch /tmp/pwned)"),
    Buffer.from("#!::r=vault%00,m=publish"),
    Buffer.from("#!::r=vault,m=request"),
  ];
  for (const id of badIds) {
    const r = await send({ port: gw.srtPort, file: minute, mediaSeconds: 60, streamidHex: id.toString("hex"), passphrase: secret });
    assert.equal(r.connected, 0, `streamid ${JSON.stringify(id.toString("latin1"))} was refused`);
    assert.equal(r.bytesSent, 0);
  }
  const badSecrets = [randomBytes(30).toString("base64").slice(0, 40), "x".repeat(79), "'; DROP TABLE streams;--", Buffer.from([0xff, 0xfe, 0x80, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49])];
  for (const p of badSecrets) {
    const r = await send({ port: gw.srtPort, file: minute, mediaSeconds: 60, streamidFormat: "#!::r=vault,m=publish", passphraseHex: hex(p) });
    assert.equal(r.connected, 0, `passphrase ${JSON.stringify(p.toString())} was refused`);
  }
  const tooLong = await send({ port: gw.srtPort, file: minute, mediaSeconds: 60, streamidFormat: "#!::r=vault,m=publish", passphrase: "y".repeat(200) });
  assert.equal(tooLong.connected, 0, "a passphrase longer than SRT allows is refused (libsrt does not send it)");

  assert.deepEqual(await keys(env.s3, bucket, "vault/"), [], "no media was stored");
  const after = { bad: await metric("gateway_srt_refusals_total", 'reason="bad-streamid"'), wrong: await metric("gateway_srt_refusals_total", 'reason="wrong-passphrase"'), none: await metric("gateway_srt_refusals_total", 'reason="no-passphrase"') };
  assert.equal(after.bad - before.bad, badIds.length, "every bad streamid is counted");
  // A passphrase libsrt will not set (shorter than 10 or longer than 79 bytes) reaches us as none at all.
  const counted = after.wrong - before.wrong + (after.none - before.none);
  assert.equal(counted, badSecrets.length + 1, "every bad passphrase is counted");
  const list = (await gw.api("GET", "/streams")).json;
  assert.ok(list.refusals.some((f: { reason: string; message: string }) => f.reason === "bad-streamid" && f.message.length > 0));
  assert.equal(await streamState("vault"), "idle");
});
