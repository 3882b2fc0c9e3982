// Function replicas as real child processes for tests and benchmarks: one process per replica,
// like infra/stack.sh runs them, bound to a test env's consumers.
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { eq } from "drizzle-orm";
import type { TestEnv } from "./harness.js";
import { waitFor } from "./harness.js";
import { recordings, type Recording } from "../db/schema.js";

const root = fileURLToPath(new URL("..", import.meta.url));

export interface Worker {
  id: string;
  proc: ChildProcess;
  /** Everything the replica logged (JSON lines). */
  output: string[];
  exited: Promise<number | null>;
}

/** Starts `n` replicas of `entry` (e.g. functions/convert/main.ts) and waits until each is pulling. */
export async function startWorkers(env: TestEnv, entry: string, n: number, extraEnv: Record<string, string> = {}, prefix = "w"): Promise<Worker[]> {
  const workers: Worker[] = [];
  for (let i = 1; i <= n; i++) {
    const id = `${prefix}${i}-${env.id}`;
    const proc = spawn(process.execPath, ["--import", "tsx", entry], {
      cwd: root,
      env: { ...process.env, ...env.env, LOG_LEVEL: "info", REPLICA_ID: id, ...extraEnv },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const output: string[] = [];
    const collect = (chunk: Buffer) => output.push(...chunk.toString().split("\n").filter(Boolean));
    proc.stdout!.on("data", collect);
    proc.stderr!.on("data", collect);
    const exited = new Promise<number | null>((r) => proc.once("exit", (code) => r(code)));
    workers.push({ id, proc, output, exited });
  }
  for (const w of workers) await waitFor(`replica ${w.id} to pull`, () => w.output.some((l) => l.includes('"msg":"pulling"')) || (w.proc.exitCode !== null && Promise.reject(new Error(w.output.join("\n")))), 120_000);
  return workers;
}

/** SIGTERM, then SIGKILL if a replica is still there after `graceMs`. */
export async function stopWorkers(workers: Worker[], graceMs = 15_000): Promise<void> {
  await Promise.all(
    workers.map(async (w) => {
      if (w.proc.exitCode !== null || w.proc.signalCode !== null) return;
      w.proc.kill("SIGTERM");
      const t = setTimeout(() => w.proc.kill("SIGKILL"), graceMs);
      await w.exited;
      clearTimeout(t);
    }),
  );
}

/** The folder's recording once its status is one of `statuses`. */
export async function waitForRecording(env: TestEnv, folder: string, statuses: Recording["status"][] = ["ready", "failed"], timeoutMs = 120_000): Promise<Recording> {
  return waitFor(`recording of ${folder} to be ${statuses.join(" or ")}`, async () => {
    const [r] = await env.db.select().from(recordings).where(eq(recordings.sourcePrefix, folder));
    return r && statuses.includes(r.status) ? r : undefined;
  }, timeoutMs, 250);
}
