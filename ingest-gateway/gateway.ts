// Wires the gateway together: SRT listener → sessions → uploader, HTTP control API, crash recovery.
import type { ServerType } from "@hono/node-server";
import type { Config } from "../lib/config.js";
import { resolveFfmpeg } from "../lib/ffmpeg.js";
import type { Logger } from "../lib/log.js";
import { connectNatsInBackground } from "../lib/nats.js";
import { createEventPublisher } from "../lib/events.js";
import { createObjectPutter, createS3 } from "../lib/s3.js";
import { listen } from "../lib/service.js";
import { createHttpApp } from "../lib/http/app.js";
import { httpMetrics } from "../lib/http/metrics.js";
import { dependencyChecks, mountOps } from "../lib/http/ops.js";
import { closeDb, createDb, ping } from "../db/client.js";
import { createApp } from "./http/app.js";
import { createGatewayMetrics } from "./metrics.js";
import { STALL_MS } from "./session/broadcast.js";
import { SessionManager } from "./session/manager.js";
import { recoverSessions } from "./session/recovery.js";
import { StreamTable } from "./session/stream-table.js";
import { SegmentMarks } from "./session/segment-marks.js";
import { watchBroadcastLimits } from "./session/limits.js";
import { daemonPath, loadAddon } from "./srt/addon.js";
import { retry } from "../lib/retry.js";
import { SpoolBudget } from "./uploader/spool-budget.js";

/** libsrt declares a silent caller gone after this; a drop is told from a clean hang-up by it. */
const PEER_IDLE_MS = 5000;
/** After POST /streams/:name/stop, the stream's callers are refused this long (OBS retries its reconnect for about a minute). */
const STOP_HOLD_MS = 60_000;
/** After a broadcast reached its maximum length: long enough to refuse OBS's first reconnects, short enough to let it start the next broadcast. */
const MAX_DURATION_HOLD_MS = 5_000;

export async function startGateway(config: Config, log: Logger): Promise<{ close(): Promise<void> }> {
  const addon = loadAddon();
  const budget = new SpoolBudget(config.gateway.spoolMaxBytes);
  const metrics = createGatewayMetrics(budget);
  const s3 = createS3(config.s3);
  const putter = createObjectPutter(config.s3);
  const db = createDb(config.databaseUrl, { max: 10 });
  const { ffmpeg } = resolveFfmpeg(config.ffmpeg);
  // Ingest needs neither NATS, the database nor the store to go on (segments spool, uploads retry):
  // they are readiness, never liveness, and NATS is connected in the background for ever.
  const nats = connectNatsInBackground(config.nats, "ingest-gateway", log);
  const events = createEventPublisher({ nats: nats.current, config, log, registry: metrics.registry });
  const marks = new SegmentMarks(db, log);
  const manager = new SessionManager({ s3, putter, marks, db, log, config, metrics, budget, ffmpeg, events }, log, () => addon.makePipe());
  // Set once the gateway is up: a dead listener process ends the gateway (exit 1) after a graceful close.
  let fail: ((message: string) => void) | undefined;
  const server = new addon.IngestServer({ daemon: daemonPath, auth: config.gateway.auth, peerIdleMs: PEER_IDLE_MS, segmentSeconds: config.gateway.segmentSeconds, stallMs: STALL_MS, udpReceiveBuffer: config.gateway.srtUdpReceiveBuffer, listeners: config.gateway.srtListeners }, (ev) => {
    if (ev.type === "fatal") {
      log.fatal({ pid: server.pid }, ev.message);
      if (fail) fail(ev.message);
      else process.exit(1);
      return;
    }
    try {
      manager.handle(ev);
    } catch (err) {
      log.error({ err: (err as Error).message, event: ev.type }, "handling an SRT event failed");
    }
  });
  manager.server = server;
  const sampler = setInterval(() => manager.sampleBytes((id) => server.stats(id)), 5000).unref();
  const table = new StreamTable(db, server, log);

  // The DB may still be starting (make up): the table and recovery need it before callers are let in.
  const streams = await retry(() => table.refresh(), { what: "loading streams", log, context: {}, maxMs: 120_000 });
  const recovered = await retry(() => recoverSessions({ s3, db, log, config, manager }), { what: "crash recovery", log, context: {}, maxMs: 120_000 });
  log.info({ streams, ...Object.fromEntries(Object.entries(recovered).map(([k, v]) => [k, v.length])) }, "stream table loaded, unfinished broadcasts recovered");
  table.start();
  manager.holdReason = (name) => table.holdReason(name);
  const limits = watchBroadcastLimits({ manager, table, log, defaultMaxSeconds: config.gateway.maxBroadcastSeconds, holdMs: MAX_DURATION_HOLD_MS });

  const udp = server.listen(config.gateway.srtHost, config.gateway.srtPort);
  if (udp.udpReceiveBufferGranted < udp.udpReceiveBufferRequested) {
    // Packets beyond the buffer are dropped by the kernel while libsrt's receive thread is busy: at
    // 100 streams a 4 MB buffer is ~100 ms of slack, and the loss shows as retransmissions, then gaps.
    const mb = (b: number) => Math.round(b / 1048576);
    log.warn(
      { requestedMb: mb(udp.udpReceiveBufferRequested), grantedMb: mb(udp.udpReceiveBufferGranted) },
      `the kernel caps the SRT UDP receive buffer at ${mb(udp.udpReceiveBufferGranted)} MB (asked ${mb(udp.udpReceiveBufferRequested)} MB): many streams will lose packets under load; raise it with 'sysctl -w net.core.rmem_max=${udp.udpReceiveBufferRequested}' (infra/stack.sh up does so as root) or lower SRT_UDP_RCVBUF_MB`,
    );
  }
  log.info({ srt: `${config.gateway.srtHost}:${config.gateway.srtPort}`, listenerPid: server.pid, listeners: udp.listeners, receiveThreadsRaised: udp.receiveThreadsRaised, auth: config.gateway.auth, profile: config.gateway.profile, srtVersion: addon.srtVersion }, "SRT listener up");
  if (!config.gateway.auth) log.warn("INGEST_AUTH=off: any stream name is accepted without a passphrase (development only)");
  if (!config.gateway.apiToken) log.warn("API_TOKEN is not set: creating, deleting and stopping streams is refused until it is");

  const api = createApp({ db, log, config, manager, stats: (id) => server.stats(id), refreshStreams: () => table.refresh(), holdStream: (name) => table.hold(name, STOP_HOLD_MS) });
  const app = createHttpApp({ log, realm: "ingest-gateway" });
  app.use(httpMetrics(metrics.registry));
  mountOps(app, {
    registry: metrics.registry,
    ready: dependencyChecks({ database: () => ping(db), s3: { client: s3, buckets: [config.s3.hlsBucket] }, nats: nats.current }),
  });
  app.route("/", api);
  const http: ServerType = await listen(app, config.gateway.httpPort, log);

  let closing: Promise<void> | undefined;
  const close = () => (closing ??= closeAll());
  fail = (message) => {
    // What was received is on disk or in FFmpeg: the graceful close stores it; the next start recovers the rest.
    void close().finally(() => {
      log.fatal({ message }, "the gateway stopped because its SRT listener process died; start it again (a supervisor does)");
      process.exit(1);
    });
  };
  return { close };

  async function closeAll(): Promise<void> {
    table.stop();
    limits.stop();
    clearInterval(sampler);
    server.stop();
    await manager.suspendAll();
    await marks.stop();
    await new Promise<void>((r) => http.close(() => r()));
    await events.flush();
    await nats.close();
    await closeDb(db);
    s3.destroy();
    putter.destroy();
  }
}
