import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { Config } from "./config.js";
import type { Logger } from "./log.js";
import { backoffDelay, sleep } from "./time.js";

export type { NatsConnection };

/** A connection that keeps reconnecting for ever: services outlive NATS restarts. Rejects when NATS is not there at first. */
export async function connectNats(nats: Config["nats"], name: string): Promise<NatsConnection> {
  return connect({ servers: nats.servers, name, maxReconnectAttempts: -1, reconnectTimeWait: 1000, timeout: 5000 });
}

export interface BackgroundNats {
  /** The connection once there is one (it then reconnects by itself for ever). */
  current(): NatsConnection | undefined;
  close(): Promise<void>;
}

/**
 * For a service that works without NATS (the gateway, the API): tries to connect in the background
 * until it succeeds, backing off to 30 s between tries, and never fails the service for it.
 */
export function connectNatsInBackground(nats: Config["nats"], name: string, log: Logger): BackgroundNats {
  let nc: NatsConnection | undefined;
  const stop = new AbortController();
  const loop = (async () => {
    for (let attempt = 1; !nc && !stop.signal.aborted; attempt++) {
      try {
        nc = await connectNats(nats, name);
        if (attempt > 1) log.info({ attempts: attempt }, "connected to NATS");
      } catch (err) {
        const delay = backoffDelay(attempt, 1000, 30_000);
        log.warn({ err: (err as Error).message, retryInMs: delay }, "NATS is not reachable; /ready reports it, retrying");
        await sleep(delay, { signal: stop.signal, unref: true }).catch(() => {});
      }
    }
  })();
  return {
    current: () => nc,
    async close() {
      stop.abort();
      await loop;
      await nc?.drain().catch(() => {});
    },
  };
}
