import type { Config } from "../../lib/config.js";
import type { Logger } from "../../lib/log.js";
import { createS3 } from "../../lib/s3.js";
import { connectNats, type NatsConnection } from "../../lib/nats.js";
import { createMetrics, listen, onShutdown } from "../../lib/service.js";
import { closeDb, createDb } from "../../db/client.js";
import { createApp } from "./app.js";
import { createPresigner } from "./links.js";

/** One process serving the API: its own pools and connections, stopped cleanly on SIGTERM/SIGINT. */
export async function serveApi(config: Config, log: Logger): Promise<void> {
  const db = createDb(config.databaseUrl, { max: 20 });
  const s3 = createS3(config.s3);

  // NATS only feeds /ready: the API serves without it, and keeps trying to connect in the background.
  let nc: NatsConnection | undefined;
  let stopping = false;
  void (async () => {
    while (!nc && !stopping) {
      try {
        nc = await connectNats(config.nats, "api");
      } catch (err) {
        log.warn({ err: (err as Error).message }, "NATS is not reachable; /ready reports it, retrying in 5 s");
        await new Promise((r) => setTimeout(r, 5000).unref());
      }
    }
  })();

  const app = createApp({ config, db, s3, log, nats: () => nc, presign: createPresigner(config.s3), metrics: createMetrics("api") });
  const server = await listen(app, config.api.port, log);

  onShutdown(log, async () => {
    stopping = true;
    // Stop taking connections, let requests in flight finish, then release the pools.
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      setTimeout(() => resolve(), config.functions.shutdownGraceMs).unref();
      if ("closeIdleConnections" in server) server.closeIdleConnections();
    });
    await nc?.drain().catch(() => {});
    await closeDb(db);
    s3.destroy();
  });
}
