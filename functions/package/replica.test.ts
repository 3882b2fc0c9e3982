// The package replica as infra/stack.sh starts it (its start_app line read from the script): the same entry,
// REPLICA_ID and METRICS_PORT, against the shared infra with this test's buckets, consumer and database.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createTestEnv, waitFor, type TestEnv } from "../../test/harness.js";
import { freeTcpPort } from "../../test/ports.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
let env: TestEnv;

before(async () => {
  env = await createTestEnv("package-replica", { ABR_LADDER: "360,240,144" });
});

after(async () => {
  await env?.close();
});

test("stack.sh's package replica answers /health, /ready and /metrics, pulls from the package consumer, and stops cleanly on SIGTERM", async () => {
  const stack = await readFile(`${root}infra/stack.sh`, "utf8");
  const line = stack.match(/start_app package "\$PACKAGE_REPLICAS" (\S+) (\d+)/);
  assert.ok(line, "infra/stack.sh starts the package function with start_app");
  const [, entry, base] = line;
  assert.equal(entry, "functions/package/main.ts");
  assert.equal(base, "9400", "package replicas listen from 9400 (clip has 9500)");
  // stack.sh would give package-1 port 9401; a free port here, as that one may be the running stack's.
  const port = await freeTcpPort();
  const child = spawn(process.execPath, ["--import", "tsx", `${root}${entry}`], {
    cwd: root,
    env: { ...process.env, ...env.env, LOG_LEVEL: "info", REPLICA_ID: "package-1", METRICS_PORT: String(port) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output: string[] = [];
  child.stdout.on("data", (c: Buffer) => output.push(...c.toString().split("\n").filter(Boolean)));
  child.stderr.on("data", (c: Buffer) => output.push(...c.toString().split("\n").filter(Boolean)));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  try {
    await waitFor("the replica to pull", () => output.some((l) => l.includes('"msg":"pulling"')) || (child.exitCode !== null && Promise.reject(new Error(output.join("\n")))), 120_000, 100);
    const pulling = JSON.parse(output.find((l) => l.includes('"msg":"pulling"'))!) as { consumer: string; worker: string; service: string };
    assert.equal(pulling.service, "package");
    assert.equal(pulling.worker, "package-1");
    assert.equal(pulling.consumer, env.config.events.packageConsumer);
    const url = `http://127.0.0.1:${port}`;
    const health = await fetch(`${url}/health`);
    assert.equal(health.status, 200);
    const ready = (await (await fetch(`${url}/ready`)).json()) as { status: string; checks: Record<string, string> };
    assert.deepEqual(ready, { status: "ready", checks: { database: "ok", objectStore: "ok", nats: "ok" } });
    const metrics = await (await fetch(`${url}/metrics`)).text();
    for (const name of ["function_jobs_started_total", "function_jobs_failed_total", "function_job_progress", "function_consumer_pending_messages"]) assert.match(metrics, new RegExp(`^# HELP ${name} `, "m"));
    assert.match(metrics, /service="package"/);
  } finally {
    child.kill("SIGTERM");
  }
  assert.equal(await exited, 0, output.slice(-5).join("\n"));
  assert.ok(output.some((l) => l.includes('"msg":"stopped"')), "it stopped through its shutdown path");
});
