import { loadConfigOrExit } from "../../lib/config.js";
import { createLogger } from "../../lib/log.js";
import { createS3 } from "../../lib/s3.js";
import { connectNats } from "../../lib/nats.js";
import { createDb, closeDb } from "../../db/client.js";
import { sweepPeriodically } from "./periodic.js";
import { sweep } from "./sweep.js";

// `sweep --once` runs one pass (make up, make sweep); without it, one pass every SWEEP_INTERVAL_SECONDS,
// taking turns with convert's replicas through the same lock.
const config = loadConfigOrExit();
const log = createLogger("sweep", config.logLevel);
const s3 = createS3(config.s3);
const db = createDb(config.databaseUrl, { max: 2 });
const nc = await connectNats(config.nats, "sweep");
const stop = new AbortController();
process.on("SIGTERM", () => stop.abort());
process.on("SIGINT", () => stop.abort());

try {
  if (process.argv.includes("--once")) {
    const r = await sweep({ s3, db, nc, log, config });
    log.info({ playlists: r.playlists, published: r.published.length, idleAssemblies: r.leftovers?.abandoned.length, strayUploads: r.leftovers?.strayUploads, strayHeads: r.leftovers?.strayHeads }, "sweep done");
  } else {
    await sweepPeriodically({ s3, db, nc, log, config, intervalMs: config.functions.sweepIntervalMs, signal: stop.signal });
  }
} catch (err) {
  log.error({ err: (err as Error).message }, "sweep failed");
  process.exitCode = 1;
} finally {
  await nc.drain().catch(() => {});
  await closeDb(db);
  s3.destroy();
}
