import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { Config } from "./config.js";

export type { NatsConnection };

/** A connection that keeps reconnecting for ever: services outlive NATS restarts. */
export async function connectNats(nats: Config["nats"], name: string): Promise<NatsConnection> {
  return connect({ servers: nats.servers, name, maxReconnectAttempts: -1, reconnectTimeWait: 1000, timeout: 5000 });
}
