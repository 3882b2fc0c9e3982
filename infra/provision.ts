import { fileURLToPath } from "node:url";
import {
  CreateBucketCommand,
  HeadBucketCommand,
  PutBucketCorsCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import * as Minio from "minio";
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  RetentionPolicy,
  StorageType,
  jetstreamManager,
  type JetStreamManager,
} from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import { loadConfigOrExit, type Config } from "../lib/config.js";
import { createS3 } from "../lib/s3.js";
import { connectNats, type NatsConnection } from "../lib/nats.js";
import { runMigrations } from "../db/migrate.js";
import { eventSubject } from "../lib/events.js";

/** Redeliver a message whose worker went silent (no ack, no heartbeat) after this long. */
export const ACK_WAIT_MS = 60_000;
/** A sweep re-publishing the same playlist version within this window is dropped by JetStream. */
export const DUPLICATE_WINDOW_MS = 10 * 60_000;

export async function provisionStream(jsm: JetStreamManager, nats: Config["nats"]): Promise<void> {
  const config = {
    name: nats.stream,
    subjects: [nats.subject],
    // Kept until every consumer (convert, thumbnail) has acked it.
    retention: RetentionPolicy.Interest,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_age: nanos(7 * 24 * 3600 * 1000),
    duplicate_window: nanos(DUPLICATE_WINDOW_MS),
    num_replicas: nats.streamReplicas,
  };
  try {
    const info = await jsm.streams.info(nats.stream);
    // Replicas change in place on a cluster (NATS_STREAM_REPLICAS=3 after the stream was made with 1).
    if (!info.config.subjects?.includes(nats.subject) || info.config.duplicate_window !== config.duplicate_window || info.config.num_replicas !== config.num_replicas) {
      await jsm.streams.update(nats.stream, { ...info.config, subjects: [nats.subject], duplicate_window: config.duplicate_window, num_replicas: config.num_replicas });
    }
  } catch (err) {
    if (!isNotFound(err)) throw err;
    await jsm.streams.add(config);
  }
}

/** A durable pull consumer; every replica of a function binds to it and they share its messages. */
export async function provisionConsumer(jsm: JetStreamManager, nats: Config["nats"], durable: string, maxDeliveries: number): Promise<void> {
  const wanted = {
    ack_wait: nanos(ACK_WAIT_MS),
    max_deliver: maxDeliveries,
    max_ack_pending: 1000,
    filter_subject: nats.subject,
  };
  try {
    const info = await jsm.consumers.info(nats.stream, durable);
    const c = info.config;
    if (c.ack_wait !== wanted.ack_wait || c.max_deliver !== wanted.max_deliver || c.max_ack_pending !== wanted.max_ack_pending) {
      await jsm.consumers.update(nats.stream, durable, { ack_wait: wanted.ack_wait, max_deliver: wanted.max_deliver, max_ack_pending: wanted.max_ack_pending });
    }
  } catch (err) {
    if (!isNotFound(err)) throw err;
    await jsm.consumers.add(nats.stream, {
      durable_name: durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ...wanted,
    });
  }
}

function isNotFound(err: unknown): boolean {
  const e = err as { code?: string | number; message?: string; api_error?: { err_code?: number } };
  return e?.code === 404 || e?.code === "404" || /not found/i.test(e?.message ?? "");
}

/** The events stream (`vod.events.>`), kept EVENTS_MAX_AGE_HOURS whatever its consumers do: platforms read it too. */
export async function provisionEventsStream(jsm: JetStreamManager, config: Config): Promise<void> {
  const { stream, subjectPrefix, maxAgeMs } = config.events;
  const wanted = {
    name: stream,
    subjects: [`${subjectPrefix}.>`],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_age: nanos(maxAgeMs),
    // Publishers retry with the event's id as the message id: a retry within this window is dropped.
    duplicate_window: nanos(2 * 60_000),
    num_replicas: config.nats.streamReplicas,
  };
  try {
    const info = await jsm.streams.info(stream);
    const c = info.config;
    if (c.max_age !== wanted.max_age || c.num_replicas !== wanted.num_replicas || c.subjects?.[0] !== wanted.subjects[0]) {
      await jsm.streams.update(stream, { ...c, subjects: wanted.subjects, max_age: wanted.max_age, num_replicas: wanted.num_replicas });
    }
  } catch (err) {
    if (!isNotFound(err)) throw err;
    await jsm.streams.add(wanted);
  }
  // The webhooks function fans out quickly and never gives an event up: delivery retries live in PostgreSQL.
  await provisionConsumer(jsm, { ...config.nats, stream, subject: `${subjectPrefix}.>` }, config.events.consumer, -1);
  // The package function reads only recording.ready; its jobs are bounded by MAX_DELIVERIES like convert's.
  await provisionConsumer(jsm, { ...config.nats, stream, subject: eventSubject(subjectPrefix, "recording.ready") }, config.events.packageConsumer, config.functions.maxDeliveries);
}

/** How often a clip job is tried before its clip is marked failed: a cut that failed twice fails again. */
export const CLIP_MAX_DELIVERIES = 3;

/**
 * The jobs stream (`vod.jobs.>`): work the API hands to a function pool. Work-queue retention: a job is gone
 * once a replica acks it, and only one consumer per subject may exist, so the clip pool shares one.
 */
export async function provisionJobsStream(jsm: JetStreamManager, config: Config): Promise<void> {
  const { stream, subjectPrefix, clipConsumer, clipAckWaitMs } = config.jobs;
  const wanted = {
    name: stream,
    subjects: [`${subjectPrefix}.>`],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    // The API publishes a clip's job with the clip's id as the message id: a retried publish is dropped.
    duplicate_window: nanos(2 * 60_000),
    num_replicas: config.nats.streamReplicas,
  };
  try {
    const info = await jsm.streams.info(stream);
    if (info.config.num_replicas !== wanted.num_replicas || info.config.subjects?.[0] !== wanted.subjects[0]) {
      await jsm.streams.update(stream, { ...info.config, subjects: wanted.subjects, num_replicas: wanted.num_replicas });
    }
  } catch (err) {
    if (!isNotFound(err)) throw err;
    await jsm.streams.add(wanted);
  }
  const consumer = { ack_wait: nanos(clipAckWaitMs), max_deliver: CLIP_MAX_DELIVERIES, max_ack_pending: 1000 };
  try {
    const c = (await jsm.consumers.info(stream, clipConsumer)).config;
    if (c.ack_wait !== consumer.ack_wait || c.max_deliver !== consumer.max_deliver) await jsm.consumers.update(stream, clipConsumer, consumer);
  } catch (err) {
    if (!isNotFound(err)) throw err;
    await jsm.consumers.add(stream, { durable_name: clipConsumer, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All, filter_subject: `${subjectPrefix}.clip`, ...consumer });
  }
}

export async function provisionJetStream(nc: NatsConnection, config: Config): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await provisionStream(jsm, config.nats);
  for (const durable of Object.values(config.nats.consumers)) {
    await provisionConsumer(jsm, config.nats, durable, config.functions.maxDeliveries);
  }
  await provisionEventsStream(jsm, config);
  await provisionJobsStream(jsm, config);
}

async function ensureBucket(s3: S3Client, bucket: string): Promise<void> {
  try {
    await s3.send(new HeadBucketCommand({ Bucket: bucket }));
  } catch {
    try {
      // Buckets are private: no policy, no public ACL. Objects are shared through presigned URLs.
      await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    } catch (err) {
      const name = (err as { name?: string }).name;
      if (name !== "BucketAlreadyOwnedByYou" && name !== "BucketAlreadyExists") throw err;
    }
  }
}

/** CORS so the web page (and hls.js) can fetch presigned objects. MinIO sets it server-wide instead. */
async function ensureCors(s3: S3Client, bucket: string, origins: string[]): Promise<"bucket" | "server"> {
  try {
    await s3.send(
      new PutBucketCorsCommand({
        Bucket: bucket,
        CORSConfiguration: {
          CORSRules: [
            {
              AllowedOrigins: origins,
              AllowedMethods: ["GET", "HEAD"],
              AllowedHeaders: ["*"],
              ExposeHeaders: ["Content-Length", "Content-Range", "ETag", "Accept-Ranges"],
              MaxAgeSeconds: 3600,
            },
          ],
        },
      }),
    );
    return "bucket";
  } catch (err) {
    // MinIO's community edition answers NotImplemented; its MINIO_API_CORS_ALLOW_ORIGIN applies instead.
    if ((err as { name?: string }).name === "NotImplemented") return "server";
    throw err;
  }
}

export async function detectStore(config: Config): Promise<"minio" | "versitygw"> {
  if (config.s3.objectStore !== "auto") return config.s3.objectStore;
  const res = await fetch(`${config.s3.endpoint}/minio/health/live`).catch(() => undefined);
  return res?.ok ? "minio" : "versitygw";
}

/** MinIO: created objects whose key ends in .m3u8 go to the NATS target (JetStream mode, set by env at server start). */
async function ensureMinioNotification(config: Config, bucket: string): Promise<void> {
  const url = new URL(config.s3.endpoint);
  const client = new Minio.Client({
    endPoint: url.hostname,
    port: Number(url.port || (url.protocol === "https:" ? 443 : 80)),
    useSSL: url.protocol === "https:",
    accessKey: config.s3.accessKey,
    secretKey: config.s3.secretKey,
    region: config.s3.region,
  });
  const queue = new Minio.QueueConfig(config.s3.minioNatsArn);
  queue.addEvent(Minio.ObjectCreatedAll);
  queue.addFilterSuffix(".m3u8");
  const notification = new Minio.NotificationConfig();
  notification.add(queue);
  try {
    await client.setBucketNotification(bucket, notification);
  } catch (err) {
    const msg = (err as Error).message;
    throw new Error(
      `MinIO refused the notification on ${bucket} for ${config.s3.minioNatsArn} (${msg}). ` +
        "Start MinIO with MINIO_NOTIFY_NATS_ENABLE_PRIMARY=on and the other MINIO_NOTIFY_NATS_*_PRIMARY variables, " +
        "and set MINIO_NATS_ARN to the ARN MinIO prints at start.",
    );
  }
}

export async function provisionBuckets(config: Config, store: "minio" | "versitygw"): Promise<{ cors: string }> {
  const s3 = createS3(config.s3);
  let cors = "bucket";
  for (const bucket of [config.s3.hlsBucket, config.s3.recordingsBucket]) {
    await ensureBucket(s3, bucket);
    cors = await ensureCors(s3, bucket, config.s3.corsOrigins);
  }
  if (store === "minio") await ensureMinioNotification(config, config.s3.hlsBucket);
  s3.destroy();
  return { cors };
}

/** Everything a fresh stack needs before services start; safe to run again and from several places. */
export async function provision(config: Config): Promise<{ store: string; cors: string }> {
  const nc = await connectNats(config.nats, "provision");
  try {
    // The stream first: MinIO's JetStream target needs it to publish.
    await provisionJetStream(nc, config);
  } finally {
    await nc.close();
  }
  const store = await detectStore(config);
  const { cors } = await provisionBuckets(config, store);
  await runMigrations(config.databaseUrl);
  return { store, cors };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const config = loadConfigOrExit();
  try {
    if (process.argv.includes("--jetstream")) {
      // Before the object store starts: MinIO's JetStream target publishes into this stream.
      const nc = await connectNats(config.nats, "provision");
      await provisionJetStream(nc, config).finally(() => nc.close());
      console.log(`provision: JetStream stream ${config.nats.stream} on ${config.nats.subject}, consumers ${Object.values(config.nats.consumers).join(", ")}; events ${config.events.stream} on ${config.events.subjectPrefix}.>; jobs ${config.jobs.stream} on ${config.jobs.subjectPrefix}.clip`);
      process.exit(0);
    }
    const { store, cors } = await provision(config);
    console.log(
      `provision: ${store}: buckets ${config.s3.hlsBucket}, ${config.s3.recordingsBucket} (private, CORS per ${cors}); ` +
        `JetStream stream ${config.nats.stream} on ${config.nats.subject}, consumers ${Object.values(config.nats.consumers).join(", ")}; events ${config.events.stream} on ${config.events.subjectPrefix}.>; jobs ${config.jobs.stream}; ` +
        `migrations applied`,
    );
  } catch (err) {
    console.error(`provision: ${(err as Error).message}`);
    process.exit(1);
  }
}
