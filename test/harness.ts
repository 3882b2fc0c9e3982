// Test environments on the real local stack (`make infra`): each test file gets its own buckets,
// its own JetStream consumers and its own database, so files never see each other's work.
import { randomBytes } from "node:crypto";
import { DeleteBucketCommand } from "@aws-sdk/client-s3";
import { jetstreamManager, DeliverPolicy, AckPolicy } from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import { loadConfig, type Config } from "../lib/config.js";
import { createS3, deletePrefix } from "../lib/s3.js";
import { connectNats, type NatsConnection } from "../lib/nats.js";
import { createDb, closeDb, type Db } from "../db/client.js";
import { dropDatabase, runMigrations } from "../db/migrate.js";
import { sleep } from "../lib/time.js";
import { detectStore, provisionBuckets, provisionEventsStream, provisionJobsStream, provisionStream, ACK_WAIT_MS } from "../infra/provision.js";
import type { S3Client } from "@aws-sdk/client-s3";

export interface TestEnv {
  id: string;
  /** Environment variables that make a child process (a worker, the gateway, the API) use this env. */
  env: Record<string, string>;
  config: Config;
  s3: S3Client;
  db: Db;
  nc: NatsConnection;
  close(): Promise<void>;
}

export interface TestDb {
  config: Config;
  db: Db;
  close(): Promise<void>;
}

/** Only a database `t_<name>_<id>`, migrated: for tests that need PostgreSQL and nothing else (make test-unit). */
export async function createTestDb(name: string): Promise<TestDb> {
  const id = randomBytes(3).toString("hex");
  const slug = name.toLowerCase().replace(/[^a-z0-9]+/g, "_").slice(0, 20);
  const base = loadConfig({ ...process.env, NODE_ENV: "test" });
  const url = new URL(base.databaseUrl);
  url.pathname = `/t_${slug}_${id}`;
  const config = loadConfig({ ...process.env, NODE_ENV: "test", DATABASE_URL: url.toString() });
  await runMigrations(config.databaseUrl);
  const db = createDb(config.databaseUrl, { max: 10 });
  return {
    config,
    db,
    async close() {
      await closeDb(db);
      await dropDatabase(config.databaseUrl).catch(() => {});
    },
  };
}

/**
 * Creates buckets `t-<name>-<id>-hls` / `-rec`, consumers `<name>_<id>_convert` / `_thumbnail`
 * (delivering only events published from now on) and database `t_<name>_<id>`, migrated.
 */
export async function createTestEnv(name: string, extraEnv: Record<string, string> = {}): Promise<TestEnv> {
  const id = randomBytes(3).toString("hex");
  const slug = name.toLowerCase().replace(/[^a-z0-9]+/g, "-").slice(0, 20);
  const base = loadConfig({ ...process.env, NODE_ENV: "test" });
  const dbUrl = new URL(base.databaseUrl);
  dbUrl.pathname = `/t_${slug.replaceAll("-", "_")}_${id}`;
  const env: Record<string, string> = {
    NODE_ENV: "test",
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "warn",
    MINIO_HLS_BUCKET: `t-${slug}-${id}-hls`,
    MINIO_BUCKET: `t-${slug}-${id}-rec`,
    CONVERT_CONSUMER: `${slug.replaceAll("-", "_")}_${id}_convert`,
    THUMBNAIL_CONSUMER: `${slug.replaceAll("-", "_")}_${id}_thumbnail`,
    DATABASE_URL: dbUrl.toString(),
    WORK_DIR: `/tmp/vod-test-${id}/work`,
    SPOOL_DIR: `/tmp/vod-test-${id}/spool`,
    // An events stream of the file's own: its subjects do not overlap the stack's vod.events.>.
    EVENTS_STREAM: `t_${slug.replaceAll("-", "_")}_${id}_events`,
    EVENTS_SUBJECT_PREFIX: `t.${slug.replaceAll("-", "_")}.${id}.vod.events`,
    WEBHOOKS_CONSUMER: `${slug.replaceAll("-", "_")}_${id}_webhooks`,
    // And a jobs stream of its own (work-queue: one consumer per subject, so never shared between files).
    JOBS_STREAM: `t_${slug.replaceAll("-", "_")}_${id}_jobs`,
    JOBS_SUBJECT_PREFIX: `t.${slug.replaceAll("-", "_")}.${id}.vod.jobs`,
    CLIP_CONSUMER: `${slug.replaceAll("-", "_")}_${id}_clip`,
    ...extraEnv,
  };
  const config = loadConfig({ ...process.env, ...env });

  const nc = await connectNats(config.nats, `test-${slug}`);
  const jsm = await jetstreamManager(nc);
  await provisionStream(jsm, config.nats);
  for (const durable of Object.values(config.nats.consumers)) {
    await jsm.consumers.add(config.nats.stream, {
      durable_name: durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.New,
      ack_wait: nanos(ACK_WAIT_MS),
      max_deliver: config.functions.maxDeliveries,
      max_ack_pending: 1000,
      filter_subject: config.nats.subject,
    });
  }
  await provisionEventsStream(jsm, config);
  await provisionJobsStream(jsm, config);
  await provisionBuckets(config, await detectStore(config));
  await runMigrations(config.databaseUrl);
  const s3 = createS3(config.s3);
  const db = createDb(config.databaseUrl, { max: 5 });

  return {
    id,
    env,
    config,
    s3,
    db,
    nc,
    async close() {
      await closeDb(db);
      for (const durable of Object.values(config.nats.consumers)) await jsm.consumers.delete(config.nats.stream, durable).catch(() => {});
      await jsm.streams.delete(config.events.stream).catch(() => {});
      await jsm.streams.delete(config.jobs.stream).catch(() => {});
      for (const bucket of [config.s3.hlsBucket, config.s3.recordingsBucket]) {
        await deletePrefix(s3, bucket, "").catch(() => {});
        await s3.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => {});
      }
      s3.destroy();
      await nc.close();
      await dropDatabase(config.databaseUrl).catch(() => {});
    },
  };
}

/** Waits until a durable consumer has nothing left to deliver and nothing in flight: every event so far is handled. */
export async function consumerIdle(env: Pick<TestEnv, "nc" | "config">, durable: string, timeoutMs = 30_000): Promise<void> {
  const jsm = await jetstreamManager(env.nc);
  await waitFor(`consumer ${durable} to have nothing pending`, async () => {
    const i = await jsm.consumers.info(env.config.nats.stream, durable);
    return i.num_pending === 0 && i.num_ack_pending === 0;
  }, timeoutMs);
}

/** Polls until `check` returns a value (not undefined/false), or fails after `timeoutMs` naming `what`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 30_000, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) {
      lastErr = err;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? ` (last error: ${(lastErr as Error).message})` : ""}`);
}
