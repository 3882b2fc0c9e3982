// `make soak`: SRT broadcasts that drop and come back, folders dropped all along, and convert,
// thumbnail and gateway processes killed with -9 at random, for SOAK_MINUTES. At the end every
// broadcast and folder must have complete recordings, nothing may be left running or on disk, and
// the figures (counts, seconds sent vs recorded, RSS at start and end) are printed.
// Knobs: SOAK_MINUTES (10), SOAK_STREAMS (20), SOAK_FOLDER_EVERY_SECONDS (20), SOAK_KILL_EVERY_SECONDS (60),
// SOAK_KILL (convert,thumbnail,gateway), SOAK_SEED. Runs on the shared stack with its own buckets, consumers and database, like a test file.
import { readdir, readFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { eq } from "drizzle-orm";
import { createTestEnv, waitFor } from "../harness.js";
import { startWorkers, stopWorkers, type Worker } from "../workers.js";
import { recordings } from "../../db/schema.js";
import { faultMedia, dropFolders } from "../faults/support.js";
import { freeTcpPort, freeUdpPort } from "../ports.js";
import { startGatewayProcess, type GatewayProcess } from "../gateway/process.js";
import { publish, srtUrl } from "../gateway/caller.js";
import { CRASHED_EARLY } from "../../ingest-gateway/session/broadcast.js";

const minutes = Number(process.env.SOAK_MINUTES ?? 10);
const streamCount = Number(process.env.SOAK_STREAMS ?? 20);
const folderEvery = Number(process.env.SOAK_FOLDER_EVERY_SECONDS ?? 20) * 1000;
const killEvery = Number(process.env.SOAK_KILL_EVERY_SECONDS ?? 60) * 1000;
// Which processes the chaos kills: a gateway kill cuts every live session, whose sent seconds are then unknown here,
// so a run without it (SOAK_KILL=convert,thumbnail) holds every stream to sent = recorded.
const killKinds = (process.env.SOAK_KILL ?? "convert,thumbnail,gateway").split(",").map((k) => k.trim()).filter((k): k is "convert" | "thumbnail" | "gateway" => ["convert", "thumbnail", "gateway"].includes(k));
const GRACE_S = 10;
// A seeded generator, so a failing soak can be run again the same way.
let seed = Number(process.env.SOAK_SEED ?? Date.now() % 1_000_000);
const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
const between = (lo: number, hi: number) => lo + random() * (hi - lo);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const say = (msg: string) => process.stdout.write(`soak: ${msg}\n`);

async function rssMb(pid: number | undefined): Promise<number | undefined> {
  if (!pid) return undefined;
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  const kb = /VmRSS:\s+(\d+)/.exec(status)?.[1];
  return kb ? Math.round(Number(kb) / 1024) : undefined;
}

async function main() {
  say(`${minutes} min, ${streamCount} streams, a folder every ${folderEvery / 1000} s, a kill of ${killKinds.join("/") || "nothing"} every ${killEvery / 1000} s, seed ${seed}`);
  const env = await createTestEnv("soak", { SWEEP_INTERVAL_SECONDS: "60" });
  const media = await mkdtemp(join(tmpdir(), "soak-"));
  const folderMedia = await faultMedia(media);
  const ports = { http: await freeTcpPort(), srt: await freeUdpPort() };
  const gatewayEnv = { ...env.env, INGEST_AUTH: "off", RECONNECT_GRACE_SECONDS: String(GRACE_S), LOG_LEVEL: "warn" };
  let gateway: GatewayProcess = await startGatewayProcess(gatewayEnv, ports);
  const convert: Worker[] = await startWorkers(env, "functions/convert/main.ts", 2, {}, "soakc");
  const thumbnail: Worker[] = await startWorkers(env, "functions/thumbnail/main.ts", 2, {}, "soakt");
  // Memory is judged per process over its whole life: replica 0 of convert and thumbnail is never killed (the
  // others are), and every gateway process is sampled until it is killed or the soak ends.
  const rss = new Map<number, { kind: string; samples: { at: number; mb: number }[] }>();
  const sampleRss = async () => {
    const procs: [string, number | undefined][] = [["gateway", gateway.proc.pid], ...convert.map((w) => ["convert", w.proc.pid] as [string, number | undefined]), ...thumbnail.map((w) => ["thumbnail", w.proc.pid] as [string, number | undefined])];
    for (const [kind, pid] of procs) {
      const mb = await rssMb(pid);
      if (!pid || mb === undefined) continue;
      const entry = rss.get(pid) ?? { kind, samples: [] };
      entry.samples.push({ at: Date.now(), mb });
      rss.set(pid, entry);
    }
  };
  await sampleRss();
  const sampler = setInterval(() => void sampleRss(), 15_000);
  const endAt = Date.now() + minutes * 60_000;
  const counts = { sessions: 0, dropsWithinGrace: 0, dropsBeyondGrace: 0, folders: 0, kills: { convert: 0, thumbnail: 0, gateway: 0 } };
  const secondsSent = new Map<string, number>();
  // Streams with a session cut by a gateway kill: what reached the gateway before the kill is unknown from here.
  const interrupted = new Set<string>();
  const gatewayKills: number[] = [];

  // One broadcaster per stream: publish a while, drop, come back within the grace or after it.
  const broadcaster = async (name: string) => {
    while (Date.now() < endAt - 30_000) {
      const seconds = Math.round(between(20, 90));
      counts.sessions++;
      const started = Date.now();
      const caller = publish(srtUrl(ports.srt, `#!::r=${name},m=publish`), { seconds, size: "320x180" });
      await caller;
      if (gatewayKills.some((t) => t >= started)) interrupted.add(name);
      // A caller cut by a gateway kill ends early: count what it had time to send.
      secondsSent.set(name, (secondsSent.get(name) ?? 0) + Math.min(seconds, (Date.now() - started) / 1000));
      const within = random() < 0.5;
      within ? counts.dropsWithinGrace++ : counts.dropsBeyondGrace++;
      await sleep(within ? between(1, GRACE_S - 5) * 1000 : between(GRACE_S + 5, GRACE_S + 20) * 1000);
    }
  };
  const dropper = async () => {
    while (Date.now() < endAt - 30_000) {
      await dropFolders(env, folderMedia, `soak/batch-${counts.folders}`, 1);
      counts.folders++;
      await sleep(folderEvery);
    }
  };
  const chaos = async () => {
    while (Date.now() < endAt - 60_000) {
      await sleep(between(0.5, 1.5) * killEvery);
      if (killKinds.length === 0) return;
      const which = killKinds[Math.floor(random() * killKinds.length)]!;
      counts.kills[which]++;
      if (which === "gateway") {
        gatewayKills.push(Date.now());
        await gateway.kill9();
        gateway = await startGatewayProcess(gatewayEnv, ports);
      } else {
        const pool = which === "convert" ? convert : thumbnail;
        const i = 1 + Math.floor(random() * (pool.length - 1));
        pool[i]!.proc.kill("SIGKILL");
        await pool[i]!.exited;
        pool[i] = (await startWorkers(env, `functions/${which}/main.ts`, 1, {}, `soak${which[0]}${counts.kills[which]}`))[0]!;
      }
      say(`killed a ${which} replica with -9 and started another`);
    }
  };
  await Promise.all([...Array.from({ length: streamCount }, (_, i) => broadcaster(`soak-${String(i).padStart(2, "0")}`)), dropper(), chaos()]);

  // Settle: every broadcast finalised and every recording converted.
  say("load over; waiting for every recording to settle");
  await waitFor("no recording live or processing", async () => {
    const open = await env.db.select({ id: recordings.id }).from(recordings).where(eq(recordings.status, "live")).limit(1);
    const busy = await env.db.select({ id: recordings.id }).from(recordings).where(eq(recordings.status, "processing")).limit(1);
    return open.length === 0 && busy.length === 0;
  }, 15 * 60_000, 2000);
  await sampleRss();
  clearInterval(sampler);
  // For each kind, the process that lived longest: its RSS after its first minute (warm) and at its last sample.
  const memory: Record<string, string> = {};
  for (const kind of ["gateway", "convert", "thumbnail"]) {
    const lives = [...rss.entries()].filter(([, e]) => e.kind === kind).map(([pid, e]) => ({ pid, ...e, life: e.samples.at(-1)!.at - e.samples[0]!.at }));
    const longest = lives.sort((a, b) => b.life - a.life)[0];
    if (!longest) continue;
    const warm = longest.samples.find((x) => x.at - longest.samples[0]!.at >= 60_000) ?? longest.samples[0]!;
    const peak = Math.max(...longest.samples.map((x) => x.mb));
    memory[kind] = `pid ${longest.pid} over ${(longest.life / 60_000).toFixed(1)} min: ${longest.samples[0]!.mb} MB at start, ${warm.mb} MB after 1 min, ${longest.samples.at(-1)!.mb} MB at end, peak ${peak} MB (${lives.length} process(es) of this kind)`;
  }

  const rows = await env.db.select().from(recordings);
  const problems: string[] = [];
  // A session the gateway was killed in before it stored a first segment, whose caller then stayed away, has nothing to
  // record: it fails with that said (counted), which is not a loss of stored seconds.
  const emptyAtKill = rows.filter((r) => r.status === "failed" && r.error?.startsWith(CRASHED_EARLY) && interrupted.has(r.streamId));
  for (const r of rows) if (r.status !== "ready" && !emptyAtKill.includes(r)) problems.push(`${r.sourcePrefix}: ${r.status} ${r.error ?? ""}`);
  const folderRows = rows.filter((r) => r.sourcePrefix.startsWith("soak/batch-"));
  if (folderRows.length !== counts.folders) problems.push(`${counts.folders} folders dropped, ${folderRows.length} recordings of them`);
  let sent = 0;
  let recorded = 0;
  for (const [name, s] of secondsSent) {
    const got = rows.filter((r) => r.streamId === name).reduce((sum, r) => sum + (r.durationSeconds ?? 0), 0);
    sent += s;
    recorded += got;
    // A session loses at most its last partial segment and the caller's start-up: allow 6 s per session boundary.
    const sessions = rows.filter((r) => r.streamId === name).length;
    if (!interrupted.has(name) && got < s - 6 * Math.max(1, sessions)) problems.push(`${name}: sent ${s.toFixed(0)} s, recorded ${got.toFixed(0)} s`);
  }
  const files = async (dir: string) => (await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => [])).filter((d) => d.isFile()).map((d) => join(d.parentPath, d.name));
  const leftovers = await files(env.env.WORK_DIR!);
  const spool = await files(env.env.SPOOL_DIR!);
  const ffmpeg = (await execa("ps", ["-eo", "args"])).stdout.split("\n").filter((l) => l.startsWith("ffmpeg") && (l.includes(env.id) || l.includes(env.config.s3.hlsBucket)));
  if (leftovers.length) problems.push(`temp files left in WORK_DIR: ${leftovers.slice(0, 5).join(", ")}`);
  if (spool.some((f) => f.endsWith(".ts"))) problems.push(`segments left in the spool: ${spool.filter((f) => f.endsWith(".ts")).length}`);
  if (ffmpeg.length) problems.push(`FFmpeg still running: ${ffmpeg.length}`);

  say(`sessions started ${counts.sessions}, drops within grace ${counts.dropsWithinGrace}, beyond ${counts.dropsBeyondGrace}, folders ${counts.folders}, kills ${JSON.stringify(counts.kills)}`);
  say(`recordings ${rows.length} (${rows.filter((r) => r.status === "ready").length} ready); broadcast seconds sent ${sent.toFixed(0)}, recorded ${recorded.toFixed(0)}; streams cut by a gateway kill (not held to sent = recorded) ${interrupted.size}; sessions with nothing stored when the gateway was killed ${emptyAtKill.length}`);
  for (const [kind, line] of Object.entries(memory)) say(`RSS ${kind}: ${line}`);

  await stopWorkers([...convert, ...thumbnail]);
  await gateway.stop();
  await env.close();
  await rm(media, { recursive: true, force: true });
  if (problems.length) {
    say(`FAILED:\n  ${problems.join("\n  ")}`);
    process.exit(1);
  }
  say("every broadcast and folder has its recordings; nothing left behind");
}

await main();
