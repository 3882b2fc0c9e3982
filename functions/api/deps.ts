import type { S3Client } from "@aws-sdk/client-s3";
import type { Registry } from "prom-client";
import type { Config } from "../../lib/config.js";
import type { Logger } from "../../lib/log.js";
import type { NatsConnection } from "../../lib/nats.js";
import type { Db } from "../../db/client.js";
import type { Presign } from "./links.js";
import type { EventPublisher } from "../../lib/events.js";

/** Everything the API's routes use, passed in so tests run the app on their own buckets and database. */
export interface ApiDeps {
  config: Config;
  db: Db;
  s3: S3Client;
  log: Logger;
  presign: Presign;
  metrics: Registry;
  /** The NATS connection once there is one: /ready looks at it, clip jobs and events are published on it. */
  nats?: () => NatsConnection | undefined;
  /** Publishes recording.deleted; made from `nats` when not given. */
  events?: EventPublisher;
}
