// A second NATS and object store on other ports, for tests that stop and start services
// without disturbing the shared stack. Same binaries and the same store kind as `make infra` runs.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, mkdir, readdir, writeFile } from "node:fs/promises";
import { execa } from "execa";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { waitFor } from "./harness.js";
import { freeTcpPort } from "./ports.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = join(root, ".cache", "bin");

export interface PrivateStack {
  store: "minio" | "versitygw";
  /** One URL, or a comma-separated list of every node of a cluster. */
  natsUrl: string;
  s3Endpoint: string;
  /** The NATS servers (one, or the cluster's nodes), by server name. */
  natsNodes: NatsNode[];
  stopNats(): Promise<void>;
  /** Starts NATS again (same JetStream data): every node of a cluster, or the one node on its port or on `port`; returns the URL(s). */
  startNats(port?: number): Promise<string>;
  /** kill -9 of one NATS node, as a crashed machine. */
  killNatsNode(name: string): Promise<void>;
  stopStore(): Promise<void>;
  /** Starts the object store again over the same data. */
  startStore(): Promise<void>;
  close(): Promise<void>;
}

export interface NatsNode {
  name: string;
  port: number;
  monitorPort: number;
  url: string;
  readonly running: boolean;
}

function minioBinary(): string | undefined {
  const fromEnv = process.env.MINIO_BIN;
  if (fromEnv && existsSync(fromEnv)) return fromEnv;
  if (existsSync(join(bin, "minio"))) return join(bin, "minio");
  for (const dir of (process.env.PATH ?? "").split(":")) if (dir && existsSync(join(dir, "minio"))) return join(dir, "minio");
  return undefined;
}

async function kill9(p: ChildProcess | undefined): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once("exit", r));
  p.kill("SIGKILL");
  await exited;
}

async function stop(p: ChildProcess | undefined): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once("exit", r));
  p.kill("SIGTERM");
  await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
  if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
}

/**
 * `natsNodes: 3` starts a NATS cluster (routes, JetStream on every node): node i listens on natsPort + i,
 * monitors on natsPort + 100 + i and routes on natsPort + 200 + i. One node keeps natsPort and monitors on a port the system gives.
 * `storeDir`: the object store's data folder (e.g. on another filesystem), made if missing and left in place by
 * close(); by default a folder in the stack's temporary directory.
 */
export async function startPrivateStack(opts: { natsPort: number; s3Port: number; subject: string; store: "minio" | "versitygw"; accessKey: string; secretKey: string; natsNodes?: number; storeDir?: string }): Promise<PrivateStack> {
  const dir = await mkdtemp(join(tmpdir(), "vod-private-"));
  const count = opts.natsNodes ?? 1;
  // A lone node's monitoring port is asked of the system too: natsPort + 1 can be anyone's (even this stack's s3Port).
  const loneMonitorPort = count === 1 ? await freeTcpPort() : 0;
  const s3Endpoint = `http://127.0.0.1:${opts.s3Port}`;
  const procs = new Map<string, ChildProcess>();
  const nodes: NatsNode[] = Array.from({ length: count }, (_, i) => {
    const name = count === 1 ? "private" : `private-${i + 1}`;
    const port = opts.natsPort + i;
    return { name, port, monitorPort: count === 1 ? loneMonitorPort : opts.natsPort + 100 + i, url: `nats://127.0.0.1:${port}`, get running() { const p = procs.get(name); return !!p && p.exitCode === null && p.signalCode === null; } };
  });
  const natsUrl = nodes.map((n) => n.url).join(",");
  const routes = nodes.map((_, i) => `nats://127.0.0.1:${opts.natsPort + 200 + i}`);
  let store: ChildProcess | undefined;

  const startNode = async (i: number, port = nodes[i]!.port) => {
    const n = nodes[i]!;
    await mkdir(join(dir, n.name), { recursive: true });
    const cluster = count === 1 ? [] : ["--cluster_name", "private", "--cluster", routes[i]!, "--routes", routes.filter((_, j) => j !== i).join(",")];
    procs.set(n.name, spawn(join(bin, "nats-server"), ["-a", "127.0.0.1", "-p", String(port), "-m", String(n.monitorPort), "-js", "-sd", join(dir, n.name), "-n", n.name, ...cluster], { stdio: "ignore" }));
  };
  const startNats = async (port?: number) => {
    if (port !== undefined && count > 1) throw new Error("a cluster's nodes restart on their own ports");
    // A cluster's nodes wait for each other's routes: start all, then wait for each.
    for (let i = 0; i < count; i++) if (!nodes[i]!.running) await startNode(i, port);
    // A cluster has JetStream once it elected a meta leader, which /healthz (without js-enabled-only) waits for.
    for (const n of nodes) await waitFor(`private NATS ${n.name}`, async () => (await fetch(`http://127.0.0.1:${n.monitorPort}/healthz`)).ok, 30_000);
    return port === undefined ? natsUrl : `nats://127.0.0.1:${port}`;
  };
  await startNats();

  const minio = opts.store === "minio" ? minioBinary() : undefined;
  if (opts.store === "minio" && !minio) throw new Error("the shared stack runs MinIO but no MinIO binary was found for the private stack");
  const startStore = async () => {
    if (minio) {
      store = spawn(minio, ["server", opts.storeDir ?? join(dir, "minio"), "--address", `127.0.0.1:${opts.s3Port}`, "--console-address", `127.0.0.1:${opts.s3Port + 1}`], {
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
      const data = opts.storeDir ?? join(dir, "versitygw");
      await mkdir(data, { recursive: true });
      store = spawn(
        join(bin, "versitygw"),
        ["--port", `127.0.0.1:${opts.s3Port}`, "--access", opts.accessKey, "--secret", opts.secretKey, "--quiet", "--event-nats-url", natsUrl, "--event-nats-topic", opts.subject, "--event-filter", join(root, "infra", "versitygw-events.json"), "posix", data],
        { stdio: "ignore" },
      );
      await waitFor("private Versity gateway", async () => (await fetch(`${s3Endpoint}/`)).status > 0, 30_000);
    }
  };
  await startStore();

  return {
    store: minio ? "minio" : "versitygw",
    natsUrl,
    s3Endpoint,
    natsNodes: nodes,
    stopNats: async () => {
      await Promise.all([...procs.values()].map((p) => stop(p)));
    },
    startNats,
    killNatsNode: (name) => kill9(procs.get(name)),
    stopStore: () => stop(store),
    startStore,
    async close() {
      await stop(store);
      await Promise.all([...procs.values()].map((p) => stop(p)));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface PrivatePostgres {
  /** postgres://… of the `postgres` database; tests name their own database in it. */
  url: string;
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

/** A PostgreSQL of its own on `port` (Debian's binaries, run as the postgres user as initdb demands). */
export async function startPrivatePostgres(port: number): Promise<PrivatePostgres> {
  const versions = (await readdir("/usr/lib/postgresql").catch(() => [] as string[])).sort((a, b) => Number(a) - Number(b));
  const pgBin = versions.length ? join("/usr/lib/postgresql", versions.at(-1)!, "bin") : undefined;
  if (!pgBin) throw new Error("PostgreSQL is not installed; run infra/install.sh");
  const dir = await mkdtemp(join(tmpdir(), "vod-private-pg-"));
  const data = join(dir, "data");
  const asPostgres = (cmd: string, args: string[]) => execa("runuser", ["-u", "postgres", "--", join(pgBin, cmd), ...args]);
  await chown(dir, "postgres");
  await writeFile(join(dir, "pw"), "postgres\n");
  await chown(join(dir, "pw"), "postgres");
  await asPostgres("initdb", ["-D", data, "-U", "postgres", `--pwfile=${join(dir, "pw")}`, "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8"]);
  const start = async () => {
    await asPostgres("pg_ctl", ["-D", data, "-l", join(dir, "postgres.log"), "-w", "-t", "30", "-o", `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir}`, "start"]);
  };
  const stopPg = async () => {
    await asPostgres("pg_ctl", ["-D", data, "-m", "fast", "-w", "stop"]).catch(() => {});
  };
  await start();
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
    stop: stopPg,
    start,
    async close() {
      await stopPg();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function chown(path: string, user: string): Promise<void> {
  await execa("chown", [`${user}:${user}`, path]);
}
