import { loadConfig } from "../lib/config.js";
import { createLogger } from "../lib/log.js";
import { onShutdown } from "../lib/service.js";
import { startGateway } from "./gateway.js";

const config = loadConfig();
const log = createLogger("ingest-gateway", config.logLevel);
try {
  const gateway = await startGateway(config, log);
  onShutdown(log, () => gateway.close());
} catch (err) {
  log.fatal({ err: (err as Error).message }, "the gateway could not start");
  process.exit(1);
}
