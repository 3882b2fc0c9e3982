// The alert rules: promtool's unit tests pass, every metric they name is exported by a real service,
// and a real Prometheus with the shipped rules scrapes the API, the gateway, a function replica, PostgreSQL
// and NATS (through the exporter make up runs: the official one's stand-in on these machines).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { createTestEnv, waitFor, type TestEnv } from "../../test/harness.js";
import { startWorkers, stopWorkers, type Worker } from "../../test/workers.js";
import { startApi, type RunningApi } from "../../test/api.js";
import { freeTcpPort } from "../../test/ports.js";
import { startGatewayProcess, type GatewayProcess } from "../../test/gateway/process.js";

const here = fileURLToPath(new URL(".", import.meta.url));
const rulesFile = join(here, "alerts.yml");

let env: TestEnv;
let api: RunningApi;
let gateway: GatewayProcess;
let workers: Worker[] = [];
let convertPort: number;
let webhooksPort: number;
let natsExporter: ChildProcess;
let natsExporterPort: number;

before(async () => {
  env = await createTestEnv("prometheus");
  api = await startApi(env);
  gateway = await startGatewayProcess({ ...env.env, LOG_LEVEL: "warn" });
  convertPort = await freeTcpPort();
  workers = await startWorkers(env, "functions/convert/main.ts", 1, { METRICS_PORT: String(convertPort) }, "prom");
  webhooksPort = await freeTcpPort();
  workers.push(...(await startWorkers(env, "functions/webhooks/main.ts", 1, { METRICS_PORT: String(webhooksPort) }, "promwh")));
  // The shared NATS's monitoring port (8222 by the contract), read as make up's exporter reads it.
  const natsMonitor = `http://${new URL(env.config.nats.servers[0]!.replace(/^(nats:\/\/)?/, "http://")).hostname}:8222`;
  natsExporterPort = await freeTcpPort();
  natsExporter = spawn(process.execPath, ["--import", "tsx", join(here, "nats-exporter.ts"), "-varz", "-jsz=all", "-a", "127.0.0.1", "-p", String(natsExporterPort), natsMonitor], { stdio: "ignore" });
  await waitFor("the NATS exporter", async () => (await fetch(`http://127.0.0.1:${natsExporterPort}/metrics`).catch(() => undefined))?.ok, 30_000, 200);
});
after(async () => {
  natsExporter?.kill("SIGTERM");
  await stopWorkers(workers);
  await gateway?.stop();
  await api?.close();
  await env?.close();
});

/** The metric names an expression reads (identifiers followed by `{`, `[` or a space-less operator, minus functions and keywords). */
function metricNames(expr: string): string[] {
  const words = expr.replace(/"[^"]*"/g, "").match(/[a-zA-Z_:][a-zA-Z0-9_:]*/g) ?? [];
  const notMetrics = new Set(["sum", "max", "min", "by", "without", "increase", "rate", "histogram_quantile", "le", "instance", "function", "consumer", "outcome", "or", "and", "absent", "count", "up", "max_over_time", "changes", "stream_name", "consumer_name"]);
  return words.filter((w) => !notMetrics.has(w) && /_/.test(w));
}

test("promtool: the alert rules are valid and each alert fires (and only then) in its unit test", async () => {
  const check = await execa("promtool", ["check", "rules", rulesFile], { reject: false, all: true });
  assert.equal(check.exitCode, 0, check.all);
  const unit = await execa("promtool", ["test", "rules", join(here, "alerts.test.yml")], { reject: false, all: true });
  assert.equal(unit.exitCode, 0, unit.all);
  assert.match(unit.all ?? "", /SUCCESS/);
  const alerts = [...(await readFile(rulesFile, "utf8")).matchAll(/- alert: (\w+)/g)].map((m) => m[1]!);
  const tested = new Set([...(await readFile(join(here, "alerts.test.yml"), "utf8")).matchAll(/alertname: (\w+)/g)].map((m) => m[1]!));
  assert.deepEqual(alerts.filter((a) => !tested.has(a)), [], "every alert has a promtool unit test");
});

test("promtool: the local and compose scrape configs are valid", async () => {
  for (const f of ["prometheus.yml", "prometheus.compose.yml"]) {
    const r = await execa("promtool", ["check", "config", "--syntax-only", join(here, f)], { reject: false, all: true });
    assert.equal(r.exitCode, 0, `${f}: ${r.all}`);
  }
});

test("every metric the rules read is exported by the API, the gateway, a function replica or the NATS exporter", async () => {
  const exposed = (await Promise.all([`${api.url}/metrics`, `${gateway.http}/metrics`, `http://127.0.0.1:${convertPort}/metrics`, `http://127.0.0.1:${webhooksPort}/metrics`, `http://127.0.0.1:${natsExporterPort}/metrics`].map(async (u) => (await fetch(u)).text()))).join("\n");
  const types = new Set([...exposed.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
  const exprs = [...(await readFile(rulesFile, "utf8")).matchAll(/expr: (.+)/g)].map((m) => m[1]!);
  const missing = new Set<string>();
  for (const expr of exprs) {
    for (const name of metricNames(expr)) {
      const base = name.replace(/_(bucket|sum|count)$/, "");
      if (!types.has(name) && !types.has(base)) missing.add(name);
    }
  }
  assert.deepEqual([...missing], []);
});

test("a real Prometheus with the shipped rules scrapes every service (PostgreSQL through its exporter) and loads every alert", async () => {
  const dir = await mkdtemp(join(tmpdir(), "vod-prom-"));
  const port = await freeTcpPort();
  // PostgreSQL through Debian's exporter, as make up runs it (it only reads statistics views).
  const pgPort = await freeTcpPort();
  const pgUrl = new URL(env.config.databaseUrl);
  pgUrl.searchParams.set("sslmode", "disable");
  const exporter = spawn("prometheus-postgres-exporter", [`--web.listen-address=127.0.0.1:${pgPort}`], { stdio: "ignore", env: { ...process.env, DATA_SOURCE_NAME: pgUrl.toString() } });
  const targets = { "vod-api": new URL(api.url).host, "ingest-gateway": new URL(gateway.http).host, convert: `127.0.0.1:${convertPort}`, postgres: `127.0.0.1:${pgPort}`, nats: `127.0.0.1:${natsExporterPort}` };
  const config = [
    "global: { scrape_interval: 1s, evaluation_interval: 1s }",
    `rule_files: [${JSON.stringify(rulesFile)}]`,
    "scrape_configs:",
    ...Object.entries(targets).map(([job, t]) => `  - { job_name: ${job}, static_configs: [{ targets: ["${t}"] }] }`),
  ].join("\n");
  await writeFile(join(dir, "prometheus.yml"), config);
  const prom: ChildProcess = spawn("prometheus", [`--config.file=${join(dir, "prometheus.yml")}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: "ignore" });
  try {
    const query = async (q: string) => {
      const r = (await (await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`)).json()) as { data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
      return r.data.result;
    };
    const up = await waitFor("Prometheus to scrape every target", async () => {
      const r = await query("up == 1");
      return r.length === 5 ? r : undefined;
    }, 30_000, 500);
    assert.deepEqual(up.map((s) => s.metric.job).sort(), ["convert", "ingest-gateway", "nats", "postgres", "vod-api"]);
    // NATS and JetStream: this test's own consumer, as the stalled-consumer rule reads it.
    assert.ok(Number((await query("gnatsd_varz_connections"))[0]?.value[1]) >= 1, "NATS counts this test's connections");
    const js = await query(`jetstream_consumer_num_pending{stream_name="${env.config.nats.stream}",consumer_name="${env.config.nats.consumers.convert}"}`);
    assert.equal(js.length, 1, "the convert consumer of this test's stream is exported");
    assert.equal((await query("pg_up"))[0]?.value[1], "1", "the exporter reaches PostgreSQL");
    // Values only a live process produces: the consumer asked at scrape time, the spool's limit from its config.
    const lag = await waitFor("the consumer's pending count", async () => (await query("function_consumer_pending_messages")).at(0), 20_000, 500);
    assert.equal(lag.metric.consumer, env.config.nats.consumers.convert);
    const limit = await query("gateway_spool_limit_bytes");
    assert.equal(Number(limit[0]!.value[1]), env.config.gateway.spoolMaxBytes);
    const rules = (await (await fetch(`http://127.0.0.1:${port}/api/v1/rules`)).json()) as { data: { groups: { rules: { name: string; health: string }[] }[] } };
    const loaded = rules.data.groups.flatMap((g) => g.rules);
    assert.ok(loaded.length >= 9, `rules loaded: ${loaded.map((r) => r.name).join(", ")}`);
    // The Grafana dashboard compose provisions: every panel's query is valid PromQL over these services.
    const dashboard = JSON.parse(await readFile(join(here, "..", "grafana", "dashboards", "vod.json"), "utf8")) as { panels: { title: string; targets: { expr: string }[] }[] };
    for (const panel of dashboard.panels) {
      for (const t of panel.targets) {
        const r = (await (await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(t.expr)}`)).json()) as { status: string; error?: string };
        assert.equal(r.status, "success", `${panel.title}: ${t.expr}: ${r.error}`);
      }
    }
    await waitFor("every rule to be evaluated without error", async () => {
      const r = (await (await fetch(`http://127.0.0.1:${port}/api/v1/rules`)).json()) as typeof rules;
      return r.data.groups.flatMap((g) => g.rules).every((x) => x.health === "ok");
    }, 20_000, 500);
  } finally {
    exporter.kill("SIGTERM");
    prom.kill("SIGTERM");
    await new Promise((r) => prom.once("exit", r));
    await rm(dir, { recursive: true, force: true });
  }
});
