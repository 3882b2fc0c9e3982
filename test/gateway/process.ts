// Runs the real gateway as a child process on free ports, for tests and the benchmark.
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { execa, type ResultPromise } from "execa";
import { waitFor } from "../harness.js";
import { freeTcpPort, freeUdpPort } from "../ports.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const API_TOKEN = "gateway-test-token-0123456789";

export interface GatewayProcess {
  http: string;
  srtPort: number;
  env: Record<string, string>;
  logs: string[];
  proc: ResultPromise;
  /** POST/GET/DELETE against the control API with the token. */
  api(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }>;
  stop(): Promise<void>;
  kill9(): Promise<void>;
}

/** checkout: run the gateway of another checkout of this project (the benchmark's before/after comparison). */
export async function startGatewayProcess(env: Record<string, string>, ports?: { http: number; srt: number }, checkout = root): Promise<GatewayProcess> {
  const httpPort = ports?.http ?? (await freeTcpPort());
  const srtPort = ports?.srt ?? (await freeUdpPort());
  const fullEnv: Record<string, string> = {
    LOG_LEVEL: "info",
    API_TOKEN,
    ...env,
    GATEWAY_HTTP_PORT: String(httpPort),
    SRT_PORT: String(srtPort),
    SRT_HOST: "127.0.0.1",
  };
  // GATEWAY_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the gateway under a test or the benchmark.
  const nodeArgs = (process.env.GATEWAY_NODE_ARGS ?? "").split(" ").filter(Boolean);
  const proc = execa("node", [...nodeArgs, "--import", "tsx", join(checkout, "ingest-gateway/main.ts")], {
    cwd: checkout,
    env: { ...process.env, ...fullEnv },
    stdout: "pipe",
    stderr: "pipe",
    buffer: false,
    reject: false,
  });
  const logs: string[] = [];
  let partial = "";
  proc.stdout!.on("data", (d: Buffer) => {
    const text = partial + d.toString();
    const lines = text.split("\n");
    partial = lines.pop() ?? "";
    logs.push(...lines);
  });
  proc.stderr!.on("data", (d: Buffer) => {
    if (process.env.GATEWAY_TEST_STDERR) process.stderr.write(d);
  });
  const http = `http://127.0.0.1:${httpPort}`;
  let exited = false;
  void proc.then(() => (exited = true));
  await waitFor("the gateway's /health", async () => {
    if (exited) throw new Error(`the gateway exited at start: ${logs.slice(-5).join("\n")}`);
    const r = await fetch(`${http}/health`).catch(() => undefined);
    return r?.ok;
  }, 60_000);
  const api = async (method: string, path: string, body?: unknown) => {
    const r = await fetch(`${http}${path}`, {
      method,
      headers: { authorization: `Bearer ${API_TOKEN}`, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: r.status, json: await r.json().catch(() => undefined) };
  };
  return {
    http,
    srtPort,
    env: fullEnv,
    logs,
    proc,
    api,
    async stop() {
      if (exited) return;
      proc.kill("SIGTERM");
      await proc;
    },
    async kill9() {
      proc.kill("SIGKILL");
      await proc;
    },
  };
}
