import cluster from "node:cluster";
import { loadConfigOrExit } from "../../lib/config.js";
import { createLogger } from "../../lib/log.js";
import { onShutdown } from "../../lib/service.js";
import { serveApi } from "./server.js";

const config = loadConfigOrExit();
const log = createLogger("api", config.logLevel);

if (config.apiWorkers > 1 && cluster.isPrimary) {
  // Workers share the one port (the primary hands out connections); one that dies is replaced.
  let stopping = false;
  for (let i = 0; i < config.apiWorkers; i++) cluster.fork();
  cluster.on("exit", (worker, code, signal) => {
    if (stopping) return;
    log.error({ worker: worker.id, code, signal }, "API worker died; starting another");
    cluster.fork();
  });
  log.info({ port: config.api.port, workers: config.apiWorkers }, "VOD API starting workers");
  onShutdown(log, async (signal) => {
    stopping = true;
    const workers = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined);
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            w.once("exit", () => resolve());
            // Ctrl-C already reached every worker (one process group); a second signal would make them exit at once.
            if (signal !== "SIGINT") w.process.kill("SIGTERM");
          }),
      ),
    );
  });
} else {
  await serveApi(config, log);
  log.info(
    { port: config.api.port, worker: cluster.worker?.id, readsRequireToken: config.api.readsRequireToken, writes: config.api.token ? "token" : "disabled (API_TOKEN not set)" },
    "VOD API ready",
  );
}
