import { pino, type Logger } from "pino";

export type { Logger };

/** JSON lines on stdout; every line names the service that wrote it. */
export function createLogger(service: string, level = "info"): Logger {
  return pino({ level, base: { service }, timestamp: pino.stdTimeFunctions.isoTime });
}
