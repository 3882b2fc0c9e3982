import type { Config } from "../../lib/config.js";
import type { Logger } from "../../lib/log.js";
import { createS3 } from "../../lib/s3.js";
import { connectNatsInBackground } from "../../lib/nats.js";
import { createMetrics, listen, onShutdown } from "../../lib/service.js";
import { closeDb, createDb } from "../../db/client.js";
import { createApp } from "./app.js";
import { createPresigner } from "./links.js";

/** One process serving the API: its own pools and connections, stopped cleanly on SIGTERM/SIGINT. */
export async function serveApi(config: Config, log: Logger): Promise<void> {
  const db = createDb(config.databaseUrl, { max: 20 });
  const s3 = createS3(config.s3);

  // The API serves without NATS (creating a clip answers 503 until it is back) and keeps trying to connect.
  const nats = connectNatsInBackground(config.nats, "api", log);

  const app = createApp({ config, db, s3, log, nats: nats.current, presign: createPresigner(config.s3), metrics: createMetrics("api") });
  const server = await listen(app, config.api.port, log);

  onShutdown(log, async () => {
    // Stop taking connections, let requests in flight finish, then release the pools.
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      setTimeout(() => resolve(), config.functions.shutdownGraceMs).unref();
      if ("closeIdleConnections" in server) server.closeIdleConnections();
    });
    await nats.close();
    await closeDb(db);
    s3.destroy();
  });
}
