import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { loadConfig, type Config } from "../lib/config.js";
import { connectNats, type NatsConnection } from "../lib/nats.js";
import { createS3, putText } from "../lib/s3.js";
import { createLogger } from "../lib/log.js";
import { createDb, closeDb } from "../db/client.js";
import { dropDatabase, runMigrations } from "../db/migrate.js";
import { decodeStorageEvent, playlistEvents, type StorageEvent } from "../functions/events/decode.js";
import { sweep } from "../functions/sweep/sweep.js";
import { createTestEnv, waitFor } from "../test/harness.js";
import { startPrivateStack } from "../test/private-stack.js";
import { freeTcpPort } from "../test/ports.js";
import { detectStore, provisionBuckets, provisionConsumer, provisionStream } from "./provision.js";

/** Pulls what a durable consumer has now, acks it, and returns the decoded work events and the raw message count. */
async function drain(nc: NatsConnection, config: Config, durable: string, waitMs = 1500): Promise<{ work: StorageEvent[]; messages: number }> {
  const consumer = await jetstream(nc).consumers.get(config.nats.stream, durable);
  const work: StorageEvent[] = [];
  let messages = 0;
  for (;;) {
    const batch = await consumer.fetch({ max_messages: 200, expires: waitMs });
    let got = 0;
    for await (const m of batch) {
      got++;
      messages++;
      work.push(...playlistEvents(decodeStorageEvent(m.data), config.s3.hlsBucket));
      m.ack();
    }
    if (got === 0) return { work, messages };
  }
}

const ENDLIST = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nseg0.ts\n#EXT-X-ENDLIST\n";

test("a playlist upload reaches convert and thumbnail once each, with its exact key; segments and other buckets cause no work", async (t) => {
  const env = await createTestEnv("notify");
  t.after(() => env.close());
  const keys = [
    "plain/index.m3u8",
    "with space/and more/index.m3u8",
    "plus+sign/a+b.m3u8",
    "percent%20literal/100%/index.m3u8",
    "q&a=1?x/index.m3u8",
    "émission spéciale/日本語/index.m3u8",
  ];
  for (const key of keys) await putText(env.s3, env.config.s3.hlsBucket, key, ENDLIST, "application/vnd.apple.mpegurl");
  await putText(env.s3, env.config.s3.hlsBucket, "plain/seg0.ts", "segment bytes", "video/mp2t");
  await putText(env.s3, env.config.s3.recordingsBucket, "plain/index.m3u8", ENDLIST, "application/vnd.apple.mpegurl");

  for (const durable of Object.values(env.config.nats.consumers)) {
    const seen: StorageEvent[] = [];
    await waitFor(`all playlist events on ${durable}`, async () => {
      seen.push(...(await drain(env.nc, env.config, durable, 1000)).work);
      return seen.length >= keys.length;
    }, 20_000, 100);
    // Anything that was going to arrive late (a duplicate, the .ts, the other bucket) has arrived by now.
    seen.push(...(await drain(env.nc, env.config, durable)).work);
    assert.deepEqual(seen.map((e) => e.key).sort(), [...keys].sort(), `${durable} got each playlist exactly once`);
    for (const e of seen) {
      assert.equal(e.bucket, env.config.s3.hlsBucket);
      assert.match(e.eventName, /^s3:ObjectCreated:/);
    }
  }
});

test("a playlist finished while NATS is down past the store's reconnect window still reaches the consumers", { timeout: 300_000 }, async (t) => {
  const main = loadConfig({ ...process.env, NODE_ENV: "test" });
  const store = await detectStore(main);
  const id = randomBytes(3).toString("hex");
  const stack = await startPrivateStack({ natsPort: 14222, s3Port: 19000, subject: "storage.events", store, accessKey: main.s3.accessKey, secretKey: main.s3.secretKey });
  const dbUrl = new URL(main.databaseUrl);
  dbUrl.pathname = `/t_outage_${id}`;
  const config = loadConfig({
    ...process.env,
    NODE_ENV: "test",
    NATS_URL: stack.natsUrl,
    MINIO_ENDPOINT: stack.s3Endpoint,
    OBJECT_STORE: stack.store,
    DATABASE_URL: dbUrl.toString(),
    CONVERT_CONSUMER: "convert",
    THUMBNAIL_CONSUMER: "thumbnail",
  });
  await runMigrations(config.databaseUrl);
  const db = createDb(config.databaseUrl, { max: 2 });
  const s3 = createS3(config.s3);
  let nc = await connectNats(config.nats, "outage-test");
  t.after(async () => {
    await nc.close().catch(() => {});
    s3.destroy();
    await closeDb(db);
    await stack.close();
    await dropDatabase(config.databaseUrl);
  });
  const jsm = await jetstreamManager(nc);
  await provisionStream(jsm, config.nats);
  for (const durable of Object.values(config.nats.consumers)) await provisionConsumer(jsm, config.nats, durable, 5);
  await provisionBuckets(config, stack.store);

  // The Go NATS client in the store retries 60 times, 2 s apart, then gives up for good; that window is
  // compiled into the store, so no setting can shorten it. Past it the store never reaches NATS again,
  // which is what bringing NATS back on another port gives at once: the test needs no 2-minute wait.
  await nc.close();
  await stack.stopNats();
  const key = `after outage/${id}/index.m3u8`;
  await putText(s3, config.s3.hlsBucket, key, ENDLIST, "application/vnd.apple.mpegurl");
  const natsUrl = await stack.startNats(await freeTcpPort());
  nc = await connectNats({ ...config.nats, servers: [natsUrl] }, "outage-test");

  if (stack.store === "versitygw") {
    // Plain publish with a closed connection: the event is gone until the sweep finds the playlist.
    const before = await drain(nc, config, "convert", 3000);
    assert.deepEqual(before.work.map((e) => e.key), [], "the gateway lost the event, as measured");
  }
  const swept = await sweep({ s3, db, nc, log: createLogger("sweep-test", "silent"), config });
  if (stack.store === "versitygw") assert.deepEqual(swept.published, [key]);

  for (const durable of ["convert", "thumbnail"]) {
    const got: string[] = [];
    await waitFor(`the event on ${durable}`, async () => {
      got.push(...(await drain(nc, config, durable, 1000)).work.map((e) => e.key));
      return got.includes(key);
    }, 60_000);
  }

  // A second sweep within the duplicate window publishes nothing new.
  const again = await sweep({ s3, db, nc, log: createLogger("sweep-test", "silent"), config });
  const next = await drain(nc, config, "convert", 1000);
  assert.equal(next.work.length, 0, `no duplicate after a second sweep (published ${again.published.length})`);
});

