// A second NATS and object store on other ports, for tests that stop and start services
// without disturbing the shared stack. Same binaries and the same store kind as `make infra` runs.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, mkdir } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { waitFor } from "./harness.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = join(root, ".cache", "bin");

export interface PrivateStack {
  store: "minio" | "versitygw";
  natsUrl: string;
  s3Endpoint: string;
  stopNats(): Promise<void>;
  /** Starts NATS again (same JetStream data), on its first port or on `port`; returns its URL. */
  startNats(port?: number): Promise<string>;
  close(): Promise<void>;
}

function minioBinary(): string | undefined {
  const fromEnv = process.env.MINIO_BIN;
  if (fromEnv && existsSync(fromEnv)) return fromEnv;
  if (existsSync(join(bin, "minio"))) return join(bin, "minio");
  for (const dir of (process.env.PATH ?? "").split(":")) if (dir && existsSync(join(dir, "minio"))) return join(dir, "minio");
  return undefined;
}

async function stop(p: ChildProcess | undefined): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once("exit", r));
  p.kill("SIGTERM");
  await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
  if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
}

export async function startPrivateStack(opts: { natsPort: number; s3Port: number; subject: string; store: "minio" | "versitygw"; accessKey: string; secretKey: string }): Promise<PrivateStack> {
  const dir = await mkdtemp(join(tmpdir(), "vod-private-"));
  const natsUrl = `nats://127.0.0.1:${opts.natsPort}`;
  const s3Endpoint = `http://127.0.0.1:${opts.s3Port}`;
  const monitorPort = opts.natsPort + 1;
  let nats: ChildProcess | undefined;
  let store: ChildProcess | undefined;

  const startNats = async (port = opts.natsPort) => {
    await mkdir(join(dir, "nats"), { recursive: true });
    nats = spawn(join(bin, "nats-server"), ["-a", "127.0.0.1", "-p", String(port), "-m", String(monitorPort), "-js", "-sd", join(dir, "nats")], { stdio: "ignore" });
    await waitFor("private NATS", async () => (await fetch(`http://127.0.0.1:${monitorPort}/healthz?js-enabled-only=true`)).ok, 20_000);
    return `nats://127.0.0.1:${port}`;
  };
  await startNats();

  const minio = opts.store === "minio" ? minioBinary() : undefined;
  if (opts.store === "minio" && !minio) throw new Error("the shared stack runs MinIO but no MinIO binary was found for the private stack");
  if (minio) {
    store = spawn(minio, ["server", join(dir, "minio"), "--address", `127.0.0.1:${opts.s3Port}`, "--console-address", `127.0.0.1:${opts.s3Port + 1}`], {
      stdio: "ignore",
      env: {
        ...process.env,
        MINIO_ROOT_USER: opts.accessKey,
        MINIO_ROOT_PASSWORD: opts.secretKey,
        MINIO_NOTIFY_NATS_ENABLE_PRIMARY: "on",
        MINIO_NOTIFY_NATS_ADDRESS_PRIMARY: `127.0.0.1:${opts.natsPort}`,
        MINIO_NOTIFY_NATS_SUBJECT_PRIMARY: opts.subject,
        MINIO_NOTIFY_NATS_JETSTREAM_PRIMARY: "on",
        MINIO_NOTIFY_NATS_QUEUE_DIR_PRIMARY: join(dir, "minio-events"),
      },
    });
    await waitFor("private MinIO", async () => (await fetch(`${s3Endpoint}/minio/health/live`)).ok, 60_000);
  } else {
    await mkdir(join(dir, "versitygw"), { recursive: true });
    store = spawn(
      join(bin, "versitygw"),
      ["--port", `127.0.0.1:${opts.s3Port}`, "--access", opts.accessKey, "--secret", opts.secretKey, "--quiet", "--event-nats-url", natsUrl, "--event-nats-topic", opts.subject, "--event-filter", join(root, "infra", "versitygw-events.json"), "posix", join(dir, "versitygw")],
      { stdio: "ignore" },
    );
    await waitFor("private Versity gateway", async () => (await fetch(`${s3Endpoint}/`)).status > 0, 30_000);
  }

  return {
    store: minio ? "minio" : "versitygw",
    natsUrl,
    s3Endpoint,
    stopNats: () => stop(nats),
    startNats,
    async close() {
      await stop(store);
      await stop(nats);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
