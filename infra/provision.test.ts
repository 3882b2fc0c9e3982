import { test } from "node:test";
import assert from "node:assert/strict";
import { jetstreamManager, AckPolicy, RetentionPolicy } from "@nats-io/jetstream";
import { loadConfig } from "../lib/config.js";
import { putText, presignGet } from "../lib/s3.js";
import { createTestEnv } from "../test/harness.js";
import { provision } from "./provision.js";

test("provisioning twice gives the same stream, consumers and buckets, and the second run changes nothing", async (t) => {
  const env = await createTestEnv("provision");
  t.after(() => env.close());
  // Durable consumers as `make up` makes them (the harness's own deliver only new events).
  const config = loadConfig({ ...process.env, ...env.env, CONVERT_CONSUMER: `${env.config.nats.consumers.convert}_p`, THUMBNAIL_CONSUMER: `${env.config.nats.consumers.thumbnail}_p` });
  const jsm = await jetstreamManager(env.nc);
  t.after(async () => {
    for (const c of Object.values(config.nats.consumers)) await jsm.consumers.delete(config.nats.stream, c).catch(() => {});
  });
  await provision(config);
  const first = await Promise.all(Object.values(config.nats.consumers).map((c) => jsm.consumers.info(config.nats.stream, c)));
  await provision(config);
  const second = await Promise.all(Object.values(config.nats.consumers).map((c) => jsm.consumers.info(config.nats.stream, c)));
  assert.deepEqual(second.map((c) => c.config), first.map((c) => c.config));
  for (const c of second) {
    assert.equal(c.config.ack_policy, AckPolicy.Explicit);
    assert.equal(c.config.durable_name, c.name);
    assert.equal(c.config.max_deliver, config.functions.maxDeliveries);
  }
  const stream = await jsm.streams.info(config.nats.stream);
  assert.ok(stream.config.subjects?.includes(config.nats.subject));
  assert.equal(stream.config.retention, RetentionPolicy.Interest, "kept until every function has acked");
  // The jobs stream: a clip job is removed once acked, and its consumer hands a dead replica's job on quickly.
  const jobs = await jsm.streams.info(config.jobs.stream);
  assert.equal(jobs.config.retention, RetentionPolicy.Workqueue);
  assert.deepEqual(jobs.config.subjects, [`${config.jobs.subjectPrefix}.>`]);
  const clip = await jsm.consumers.info(config.jobs.stream, config.jobs.clipConsumer);
  assert.equal(clip.config.ack_wait, config.jobs.clipAckWaitMs * 1_000_000);
  assert.equal(clip.config.filter_subject, `${config.jobs.subjectPrefix}.clip`);
});

test("buckets are private: an anonymous GET is refused, a presigned one works and answers CORS for the page", async (t) => {
  const env = await createTestEnv("private");
  t.after(() => env.close());
  for (const bucket of [env.config.s3.hlsBucket, env.config.s3.recordingsBucket]) {
    await putText(env.s3, bucket, "folder/file.txt", "hello", "text/plain");
    const anonymous = await fetch(`${env.config.s3.endpoint}/${bucket}/folder/file.txt`);
    assert.equal(anonymous.status, 403, `${bucket} refuses anonymous reads`);
    const url = await presignGet(env.config.s3, bucket, "folder/file.txt", { expiresIn: 60 });
    const signed = await fetch(url, { headers: { Origin: "http://localhost:8080" } });
    assert.equal(signed.status, 200);
    assert.equal(await signed.text(), "hello");
    assert.ok(signed.headers.get("access-control-allow-origin"), `${bucket} answers CORS`);
    const ranged = await fetch(url, { headers: { Range: "bytes=1-3" } });
    assert.equal(ranged.status, 206);
    assert.equal(await ranged.text(), "ell");
  }
});
