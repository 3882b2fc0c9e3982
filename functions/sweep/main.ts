import { loadConfigOrExit } from "../../lib/config.js";
import { createLogger } from "../../lib/log.js";
import { createS3 } from "../../lib/s3.js";
import { connectNats } from "../../lib/nats.js";
import { createDb, closeDb } from "../../db/client.js";
import { sweep } from "./sweep.js";

// `sweep --once` runs one pass (make up, make sweep); without it, one pass every SWEEP_INTERVAL_SECONDS.
const config = loadConfigOrExit();
const log = createLogger("sweep", config.logLevel);
const s3 = createS3(config.s3);
const db = createDb(config.databaseUrl, { max: 2 });
const nc = await connectNats(config.nats, "sweep");
const once = process.argv.includes("--once");

let stopping = false;
process.on("SIGTERM", () => (stopping = true));
process.on("SIGINT", () => (stopping = true));

try {
  do {
    const r = await sweep({ s3, db, nc, log, config });
    log.info({ playlists: r.playlists, published: r.published.length }, "sweep done");
    if (once) break;
    const until = Date.now() + config.functions.sweepIntervalMs;
    while (!stopping && Date.now() < until) await new Promise((r) => setTimeout(r, 500));
  } while (!stopping);
} catch (err) {
  log.error({ err: (err as Error).message }, "sweep failed");
  process.exitCode = 1;
} finally {
  await nc.drain().catch(() => {});
  await closeDb(db);
  s3.destroy();
}
