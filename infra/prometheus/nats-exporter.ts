// A stand-in for prometheus-nats-exporter on machines that cannot install it (Debian does not package it,
// and the Go module proxy these machines reach refuses github.com/nats-io/prometheus-nats-exporter). It
// takes the same flags (`-varz -jsz=all -p 7777 -a 127.0.0.1 http://127.0.0.1:8222 …`) and exports the
// same metric names (gnatsd_varz_*, jetstream_server_*, jetstream_stream_*, jetstream_consumer_*) with the
// labels our rules and dashboard read, so the official exporter (compose and Kubernetes run its image)
// and this one are interchangeable. infra/stack.sh runs the official binary when it is on PATH.
import { fileURLToPath } from "node:url";
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { Gauge, Registry } from "prom-client";
import { createLogger } from "../../lib/log.js";

/** What one nats-server's monitoring port answered; a part it could not answer is undefined. */
export interface ServerSample {
  url: string;
  varz?: Record<string, unknown>;
  jsz?: Jsz;
}

interface Jsz {
  server_id?: string;
  meta_cluster?: { name?: string; leader?: string };
  streams?: number;
  consumers?: number;
  messages?: number;
  bytes?: number;
  config?: { max_memory?: number; max_storage?: number };
  account_details?: {
    name: string;
    id?: string;
    stream_detail?: {
      name: string;
      cluster?: { leader?: string };
      state?: { messages?: number; bytes?: number; first_seq?: number; last_seq?: number; consumer_count?: number };
      consumer_detail?: {
        name: string;
        cluster?: { leader?: string };
        delivered?: { consumer_seq?: number; stream_seq?: number };
        ack_floor?: { consumer_seq?: number; stream_seq?: number };
        num_ack_pending?: number;
        num_redelivered?: number;
        num_waiting?: number;
        num_pending?: number;
      }[];
    }[];
  }[];
}

/** Keys of /varz the official exporter skips or turns into labels: not numbers worth a series. */
const VARZ_SKIP = new Set(["leaf", "trusted_operators_claim", "cluster_tls_timeout", "cluster_cluster_port", "cluster_auth_timeout", "gateway_port", "gateway_auth_timeout", "gateway_tls_timeout", "gateway_connect_retries"]);

/** Every number of /varz, nested objects flattened with `_` (gnatsd_varz_jetstream_stats_storage), as the official exporter names them. */
export function flattenVarz(obj: Record<string, unknown>, prefix: string[] = [], out = new Map<string, number>()): Map<string, number> {
  for (const [k, v] of Object.entries(obj)) {
    const name = [...prefix, k].join("_").replaceAll("/", "_").replace(/_+/g, "_").replace(/^_|_$/g, "");
    if (VARZ_SKIP.has(name) || !/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(name)) continue;
    if (typeof v === "number" && Number.isFinite(v)) out.set(name, v);
    else if (v && typeof v === "object" && !Array.isArray(v)) flattenVarz(v as Record<string, unknown>, [...prefix, k], out);
  }
  return out;
}

const SERVER_LABELS = ["server_id", "server_name", "cluster", "is_meta_leader"] as const;
const STREAM_LABELS = [...SERVER_LABELS, "account", "stream_name", "stream_leader", "is_stream_leader"] as const;
const CONSUMER_LABELS = [...STREAM_LABELS, "consumer_name", "consumer_leader", "is_consumer_leader"] as const;

/** The Prometheus text for what the servers answered (a server that answered nothing adds no series, as with the official exporter). */
export async function render(samples: readonly ServerSample[]): Promise<string> {
  const registry = new Registry();
  const gauges = new Map<string, Gauge<string>>();
  const gauge = (name: string, labels: readonly string[], help = name) => {
    let g = gauges.get(name);
    if (!g) gauges.set(name, (g = new Gauge({ name, help, labelNames: [...labels], registers: [registry] })));
    return g;
  };
  for (const s of samples) {
    const varz = s.varz;
    const serverId = String(varz?.server_id ?? s.jsz?.server_id ?? s.url);
    if (varz) for (const [name, value] of flattenVarz(varz)) gauge(`gnatsd_varz_${name}`, ["server_id"]).set({ server_id: serverId }, value);
    const jsz = s.jsz;
    if (!jsz) continue;
    const serverName = String(varz?.server_name ?? "");
    const server = { server_id: serverId, server_name: serverName, cluster: jsz.meta_cluster?.name ?? "", is_meta_leader: String(Boolean(serverName) && jsz.meta_cluster?.leader === serverName) };
    gauge("jetstream_server_total_streams", SERVER_LABELS, "Total number of streams in JetStream").set(server, jsz.streams ?? 0);
    gauge("jetstream_server_total_consumers", SERVER_LABELS, "Total number of consumers in JetStream").set(server, jsz.consumers ?? 0);
    gauge("jetstream_server_total_messages", SERVER_LABELS, "Total number of stored messages in JetStream").set(server, jsz.messages ?? 0);
    gauge("jetstream_server_total_message_bytes", SERVER_LABELS, "Total number of bytes stored in JetStream").set(server, jsz.bytes ?? 0);
    gauge("jetstream_server_max_storage", SERVER_LABELS, "JetStream max storage in bytes").set(server, jsz.config?.max_storage ?? 0);
    for (const account of jsz.account_details ?? []) {
      for (const st of account.stream_detail ?? []) {
        const streamLeader = st.cluster?.leader ?? "";
        const stream = { ...server, account: account.name, stream_name: st.name, stream_leader: streamLeader, is_stream_leader: String(streamLeader === serverName) };
        gauge("jetstream_stream_total_messages", STREAM_LABELS, "Total number of messages from a stream").set(stream, st.state?.messages ?? 0);
        gauge("jetstream_stream_total_bytes", STREAM_LABELS, "Total stored bytes from a stream").set(stream, st.state?.bytes ?? 0);
        gauge("jetstream_stream_first_seq", STREAM_LABELS, "First sequence from a stream").set(stream, st.state?.first_seq ?? 0);
        gauge("jetstream_stream_last_seq", STREAM_LABELS, "Last sequence from a stream").set(stream, st.state?.last_seq ?? 0);
        gauge("jetstream_stream_consumer_count", STREAM_LABELS, "Total number of consumers from a stream").set(stream, st.state?.consumer_count ?? 0);
        for (const c of st.consumer_detail ?? []) {
          const consumerLeader = c.cluster?.leader ?? "";
          const labels = { ...stream, consumer_name: c.name, consumer_leader: consumerLeader, is_consumer_leader: String(consumerLeader === serverName) };
          gauge("jetstream_consumer_delivered_consumer_seq", CONSUMER_LABELS, "Latest sequence number of a stream consumer").set(labels, c.delivered?.consumer_seq ?? 0);
          gauge("jetstream_consumer_delivered_stream_seq", CONSUMER_LABELS, "Latest sequence number of a stream").set(labels, c.delivered?.stream_seq ?? 0);
          gauge("jetstream_consumer_ack_floor_consumer_seq", CONSUMER_LABELS, "Acknowledgement floor of a consumer").set(labels, c.ack_floor?.consumer_seq ?? 0);
          gauge("jetstream_consumer_ack_floor_stream_seq", CONSUMER_LABELS, "Acknowledgement floor of a stream").set(labels, c.ack_floor?.stream_seq ?? 0);
          gauge("jetstream_consumer_num_ack_pending", CONSUMER_LABELS, "Number of pending acks from a consumer").set(labels, c.num_ack_pending ?? 0);
          gauge("jetstream_consumer_num_redelivered", CONSUMER_LABELS, "Number of redelivered messages from a consumer").set(labels, c.num_redelivered ?? 0);
          gauge("jetstream_consumer_num_waiting", CONSUMER_LABELS, "Number of inflight fetch requests from a pull consumer").set(labels, c.num_waiting ?? 0);
          gauge("jetstream_consumer_num_pending", CONSUMER_LABELS, "Number of pending messages from a consumer").set(labels, c.num_pending ?? 0);
        }
      }
    }
  }
  return registry.metrics();
}

export interface ExporterOptions {
  urls: string[];
  varz: boolean;
  /** `-jsz=all` (streams and consumers), `streams`, `consumers`; undefined: no JetStream metrics. */
  jsz?: "all" | "streams" | "consumers";
  port: number;
  addr: string;
}

/** The official exporter's flags, single dash and all (node's parseArgs reads `-varz` as four short flags). */
export function parseFlags(argv: readonly string[]): ExporterOptions {
  const o: ExporterOptions = { urls: [], varz: false, port: 7777, addr: "0.0.0.0" };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.split(/=(.*)/s, 2) as [string, string | undefined];
    const value = () => inline ?? argv[++i] ?? "";
    if (flag === "-varz" || flag === "--varz") o.varz = true;
    else if (flag === "-jsz" || flag === "--jsz") {
      const v = value();
      if (v !== "all" && v !== "streams" && v !== "consumers") throw new Error(`-jsz=${v}: use -jsz=all, -jsz=streams or -jsz=consumers`);
      o.jsz = v;
    } else if (flag === "-p" || flag === "-port" || flag === "--port") o.port = Number(value());
    else if (flag === "-a" || flag === "-addr" || flag === "--addr") o.addr = value();
    else if (flag.startsWith("-")) throw new Error(`unknown flag ${flag}: this stand-in knows -varz, -jsz=all|streams|consumers, -p/-port and -a/-addr`);
    else o.urls.push(arg.replace(/\/+$/, ""));
  }
  if (o.urls.length === 0) throw new Error("name at least one nats-server monitoring URL, such as http://127.0.0.1:8222");
  if (!o.varz && !o.jsz) throw new Error("choose what to export: -varz and/or -jsz=all");
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) throw new Error("-p must be a port number");
  return o;
}

async function getJson(url: string): Promise<Record<string, unknown> | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    return res.ok ? ((await res.json()) as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** One scrape: every server's /varz and /jsz, asked at once. */
export async function sample(o: ExporterOptions): Promise<ServerSample[]> {
  const jszQuery = o.jsz === "all" || o.jsz === "consumers" ? "?accounts=true&streams=true&consumers=true" : "?accounts=true&streams=true";
  return Promise.all(
    o.urls.map(async (url) => ({
      url,
      // Server labels come from /varz: it is asked for JetStream too, even without -varz.
      varz: await getJson(`${url}/varz`),
      jsz: o.jsz ? ((await getJson(`${url}/jsz${jszQuery}`)) as Jsz | undefined) : undefined,
    })),
  ).then((all) => all.map((s) => (o.varz ? s : { ...s, varz: s.varz ? { server_id: s.varz.server_id, server_name: s.varz.server_name } : undefined })));
}

async function main() {
  const log = createLogger("nats-exporter");
  let o: ExporterOptions;
  try {
    o = parseFlags(process.argv.slice(2));
  } catch (err) {
    log.fatal({ err: (err as Error).message }, "bad flags");
    process.exit(2);
  }
  const app = new Hono();
  app.get("/metrics", async (c) => {
    const samples = await sample(o);
    const down = samples.filter((s) => !s.varz).map((s) => s.url);
    if (down.length) log.warn({ down }, "nats-server monitoring did not answer; its series are left out of this scrape");
    return c.text(await render(samples), 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
  });
  app.get("/", (c) => c.text("prometheus-nats-exporter stand-in: /metrics\n"));
  const server = serve({ fetch: app.fetch, port: o.port, hostname: o.addr }, (info) => log.info({ port: info.port, urls: o.urls, varz: o.varz, jsz: o.jsz }, "exporting NATS metrics"));
  for (const sig of ["SIGTERM", "SIGINT"] as const) process.once(sig, () => server.close(() => process.exit(0)));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) void main();
