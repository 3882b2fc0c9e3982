// The data path stays native: the SRT addon writes a stream's bytes into FFmpeg's stdin itself, so a
// passthrough stream hands JavaScript no media, and a caller faster than real time loses nothing.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readdir, readFile } from "node:fs/promises";
import { execa } from "execa";
import { createTestEnv, waitFor, type TestEnv } from "../test/harness.js";
import { startGatewayProcess, type GatewayProcess } from "../test/gateway/process.js";
import { publish } from "../test/gateway/caller.js";
import { send } from "../test/gateway/sender.js";
import { missingSegments, readPlaylist, sessionFolders } from "../test/gateway/store.js";
import { freeTcpPort } from "../test/ports.js";

let env: TestEnv;
let gw: GatewayProcess;
let bucket: string;
let dir: string;

before(async () => {
  env = await createTestEnv("gateway-native");
  bucket = env.config.s3.hlsBucket;
  dir = `/tmp/vod-test-${env.id}/media`;
  await mkdir(dir, { recursive: true });
  gw = await startGatewayProcess({ ...env.env, LOG_LEVEL: "info" });
});

after(async () => {
  await gw?.stop();
  await env?.close();
});

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${gw.http}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  assert.ok(line, `/metrics has ${name}`);
  return Number(line.split(" ").at(-1));
}

async function createStream(name: string): Promise<string> {
  const r = await gw.api("POST", "/streams", { name });
  assert.equal(r.status, 201, JSON.stringify(r.json));
  return r.json.obs.server;
}

test("a passthrough stream hands JavaScript no media bytes: the counter of bytes reaching it stays at zero", async () => {
  const server = await createStream("native");
  const r = await publish(server, { seconds: 10 });
  assert.equal(r.exitCode, 0, r.stderr);
  const [folder] = await sessionFolders(env.s3, bucket, "native");
  const p = await waitFor("the final playlist", async () => (await readPlaylist(env.s3, bucket, `${folder}/index.m3u8`))?.ended && readPlaylist(env.s3, bucket, `${folder}/index.m3u8`), 20_000);
  assert.ok(p && p.segments.length >= 2);
  assert.ok(gw.logs.some((l) => l.includes('"profile":"copy"')), "the stream was passed through");
  const received = await waitFor("the received bytes to be counted", async () => ((await metric("gateway_srt_bytes_received_total")) > 500_000 ? metric("gateway_srt_bytes_received_total") : undefined), 10_000);
  assert.ok(received > 500_000, `${received} bytes received`);
  assert.equal(await metric("gateway_media_bytes_in_js_total"), 0);
});

test("a caller sending at 2x real time for a minute: every segment arrives, in order, and the live playlist only ever grows", async () => {
  const file = `${dir}/two-minutes.ts`;
  await execa("ffmpeg", [
    "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=120", "-f", "lavfi", "-i", "sine=sample_rate=48000:duration=120",
    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "50", "-keyint_min", "50", "-b:v", "1500k", "-c:a", "aac", "-b:a", "96k", "-f", "mpegts", file,
  ]);
  const server = await createStream("double");
  const started = Date.now();
  const caller = execa("ffmpeg", ["-hide_banner", "-loglevel", "error", "-nostdin", "-readrate", "2", "-i", file, "-map", "0", "-c", "copy", "-f", "mpegts", server], { reject: false });
  let running = true;
  void caller.then(() => (running = false));
  let seen: string[] = [];
  let folder: string | undefined;
  while (running) {
    folder ??= (await sessionFolders(env.s3, bucket, "double"))[0];
    if (folder) {
      const p = await readPlaylist(env.s3, bucket, `${folder}/index.m3u8`);
      if (p) {
        const uris = p.segments.map((s) => s.uri);
        assert.deepEqual(uris.slice(0, seen.length), seen, "the live playlist only ever grows");
        seen = uris;
      }
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  const r = await caller;
  assert.equal(r.exitCode, 0, r.stderr);
  const wallSeconds = (Date.now() - started) / 1000;
  assert.ok(wallSeconds < 75, `the caller was never slowed below 2x (took ${wallSeconds.toFixed(0)} s for 120 s of media)`);
  const p = await waitFor("the final playlist", async () => {
    const x = await readPlaylist(env.s3, bucket, `${folder}/index.m3u8`);
    return x?.ended ? x : undefined;
  }, 20_000);
  assert.deepEqual(p.segments.map((s) => s.uri), Array.from({ length: 30 }, (_, i) => `seg${String(i).padStart(5, "0")}.ts`), "30 segments of 4 s, in order, none missing");
  const total = p.segments.reduce((s, x) => s + x.duration, 0);
  assert.ok(Math.abs(total - 120) <= 1, `the playlist lasts ${total} s`);
  assert.ok(p.segments.every((s) => !s.discontinuity));
  assert.deepEqual(await missingSegments(env.s3, bucket, folder!, p), []);
  assert.equal(await metric("gateway_media_bytes_in_js_total"), 0);
});

test("the gateway says at start when the kernel grants its shared SRT socket less receive buffer than it asked, and names the sysctl", async () => {
  const capMb = Math.floor(Number(await readFile("/proc/sys/net/core/rmem_max", "utf8")) / 1048576);
  // Asking past the kernel's cap: the warning, with what was granted.
  const over = await startGatewayProcess({ ...env.env, LOG_LEVEL: "info", SRT_UDP_RCVBUF_MB: String(capMb + 8) });
  try {
    const line = await waitFor("the buffer warning", () => over.logs.find((l) => l.includes("SRT UDP receive buffer")), 10_000);
    const j = JSON.parse(line) as { level: number; requestedMb: number; grantedMb: number; msg: string };
    assert.equal(j.level, 40, "logged as a warning");
    assert.equal(j.requestedMb, capMb + 8);
    assert.ok(j.grantedMb <= capMb, `granted ${j.grantedMb} MB, within net.core.rmem_max (${capMb} MB)`);
    assert.match(j.msg, /sysctl -w net\.core\.rmem_max=/);
  } finally {
    await over.stop();
  }
  // Asking within it: no warning (the shared gateway of this file started with the default).
  if (capMb >= 1) {
    const within = await startGatewayProcess({ ...env.env, LOG_LEVEL: "info", SRT_UDP_RCVBUF_MB: "1" });
    try {
      await waitFor("the listener", () => within.logs.find((l) => l.includes("SRT listener up")), 10_000);
      assert.equal(within.logs.filter((l) => l.includes("SRT UDP receive buffer")).length, 0);
    } finally {
      await within.stop();
    }
  }
});

/** CPU time (ns, exact: schedstat) of each of the process's threads whose name starts with `prefix`. */
async function threadRunNs(pid: number, prefix: string): Promise<number[]> {
  const out: number[] = [];
  for (const t of await readdir(`/proc/${pid}/task`)) {
    const comm = (await readFile(`/proc/${pid}/task/${t}/comm`, "utf8").catch(() => "")).trim();
    if (comm.startsWith(prefix)) out.push(Number((await readFile(`/proc/${pid}/task/${t}/schedstat`, "utf8")).split(" ")[0]));
  }
  return out;
}

/** The nice value of each of the process's threads whose name starts with `prefix`. */
async function threadNice(pid: number, prefix: string): Promise<number[]> {
  const out: number[] = [];
  for (const t of await readdir(`/proc/${pid}/task`)) {
    const stat = await readFile(`/proc/${pid}/task/${t}/stat`, "utf8").catch(() => "");
    const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    if (comm.startsWith(prefix)) out.push(Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]));
  }
  return out;
}

test("with SRT_LISTENERS=2 callers from many addresses share the one port: each listener's own libsrt receive thread carries some, and every stream is recorded", async () => {
  const file = `${dir}/twelve-seconds.ts`;
  await execa("ffmpeg", [
    "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=12", "-f", "lavfi", "-i", "sine=sample_rate=48000:duration=12",
    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "50", "-keyint_min", "50", "-b:v", "800k", "-c:a", "aac", "-b:a", "64k", "-f", "mpegts", file,
  ]);
  const two = await startGatewayProcess({ ...env.env, LOG_LEVEL: "info", SRT_LISTENERS: "2" });
  try {
    const up = JSON.parse(await waitFor("the listener", () => two.logs.find((l) => l.includes("SRT listener up")), 10_000)) as { listeners: number; receiveThreadsRaised: number; listenerPid: number };
    assert.equal(up.listeners, 2);
    // libsrt's threads live in the listener process (srt-ingestd), none in the gateway's Node process.
    const pid = up.listenerPid;
    assert.deepEqual(await threadRunNs(two.proc.pid!, "SRT:"), [], "no libsrt thread in the Node process");
    // Root (as here) may raise priorities: both receive threads run at nice -10; without the right it is 0 and they run at the process's own.
    if (process.getuid?.() === 0) {
      assert.equal(up.receiveThreadsRaised, 2);
      assert.deepEqual(await threadNice(pid, "SRT:RcvQ"), [-10, -10]);
    }
    const before = await threadRunNs(pid, "SRT:RcvQ");
    assert.equal(before.length, 2, "one libsrt receive thread per listener");
    const secret = "many-listeners-secret-0123";
    const n = 16;
    for (let i = 0; i < n; i++) assert.equal((await two.api("POST", "/streams", { name: `spread-${i}`, secret })).status, 201);
    // 16 callers from 16 local ports: the kernel hashes each address to one listener's socket.
    const r = await send({ port: two.srtPort, file, mediaSeconds: 12, streams: n, streamidFormat: "#!::r=spread-%d,m=publish", passphrase: secret, localPorts: n, spreadMs: 1000 });
    assert.equal(r.connected, n, JSON.stringify(r));
    const after = await threadRunNs(pid, "SRT:RcvQ");
    const used = after.map((ns, i) => (ns - before[i]!) / 1e6);
    assert.ok(used.every((ms) => ms > 5), `both receive threads worked (ms of CPU each: ${used.map((ms) => ms.toFixed(0)).join(", ")})`);
    for (let i = 0; i < n; i++) {
      const folder = await waitFor(`spread-${i}'s session`, async () => (await sessionFolders(env.s3, bucket, `spread-${i}`))[0], 20_000);
      const p = await waitFor(`spread-${i}'s final playlist`, async () => {
        const x = await readPlaylist(env.s3, bucket, `${folder}/index.m3u8`);
        return x?.ended ? x : undefined;
      }, 30_000);
      const total = p.segments.reduce((sum, x) => sum + x.duration, 0);
      assert.ok(Math.abs(total - 12) <= 1, `spread-${i} recorded ${total} s of 12`);
    }
  } finally {
    await two.stop();
  }
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test("the SRT listener is a process of its own: killed, the gateway stops with exit 1 and says why; the gateway killed -9 takes it along, so a new gateway binds the same port", async () => {
  const ports = { http: 0, srt: 0 };
  const first = await startGatewayProcess({ ...env.env, LOG_LEVEL: "info" });
  ports.srt = first.srtPort;
  const up = JSON.parse(await waitFor("the listener", () => first.logs.find((l) => l.includes("SRT listener up")), 10_000)) as { listenerPid: number };
  assert.ok(alive(up.listenerPid));
  // The gateway killed -9: nothing closes the listener's socket gracefully, the kernel's parent-death signal ends it.
  await first.kill9();
  await waitFor("the listener process to end with its gateway", () => !alive(up.listenerPid), 5_000);

  // A new gateway on the same UDP port (it would fail to bind if the old listener lived on) takes callers.
  ports.http = await freeTcpPort();
  const second = await startGatewayProcess({ ...env.env, LOG_LEVEL: "info" }, ports);
  try {
    const up2 = JSON.parse(await waitFor("the new listener", () => second.logs.find((l) => l.includes("SRT listener up")), 10_000)) as { listenerPid: number };
    const r = await second.api("POST", "/streams", { name: "isolated" });
    assert.equal(r.status, 201, JSON.stringify(r.json));
    const published = await publish(r.json.obs.server, { seconds: 6 });
    assert.equal(published.exitCode, 0, published.stderr);
    const [folder] = await waitFor("the session", async () => (await sessionFolders(env.s3, bucket, "isolated")).length ? sessionFolders(env.s3, bucket, "isolated") : undefined, 20_000);
    await waitFor("its final playlist", async () => (await readPlaylist(env.s3, bucket, `${folder}/index.m3u8`))?.ended, 20_000);

    // The listener killed: the gateway cannot take callers any more, so it closes and exits 1 for its supervisor.
    process.kill(up2.listenerPid, "SIGKILL");
    const result = await second.proc;
    assert.equal(result.exitCode, 1);
    const fatal = second.logs.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level === 60);
    assert.ok(fatal.some((l) => /SRT listener process \(srt-ingestd, pid \d+\) killed by signal 9/.test(l.msg)), JSON.stringify(fatal));
  } finally {
    await second.stop();
  }
});
