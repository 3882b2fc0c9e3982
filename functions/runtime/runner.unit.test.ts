// The runner's settlement rules with a fake message: no NATS, no store, no database.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Registry } from "prom-client";
import { pino } from "pino";
import { loadConfig } from "../../lib/config.js";
import type { S3Client } from "@aws-sdk/client-s3";
import type { Db } from "../../db/client.js";
import { encodeSweepEvent, isPlaylistCreated, type StorageEvent } from "../events/decode.js";
import { PermanentError, TransientError, type GiveUp, type Handler } from "./handler.js";
import { createDeliveryHandler, ShutdownAbort, type Delivery } from "./runner.js";

const config = loadConfig({ NODE_ENV: "test" });
const hls = config.s3.hlsBucket;

/** A message that records how it was settled. */
function fakeMessage(body: string, deliveryCount = 1) {
  const settled: string[] = [];
  const msg: Delivery = {
    data: new TextEncoder().encode(body),
    seq: 1,
    info: { deliveryCount },
    ack: () => void settled.push("ack"),
    nak: (delay?: number) => void settled.push(delay === undefined ? "nak" : `nak ${delay}`),
    term: (reason?: string) => void settled.push(`term ${reason}`),
    working: () => void settled.push("working"),
  };
  return { msg, settled };
}

function deliver(handler: Handler, opts: { giveUp?: GiveUp; maxDeliver?: number; dependencyDown?: () => Promise<string | undefined> } = {}) {
  return createDeliveryHandler({
    name: "unit",
    handler,
    giveUp: opts.giveUp,
    accepts: (e) => isPlaylistCreated(e, hls),
    s3: {} as S3Client,
    db: {} as Db,
    log: pino({ level: "silent" }),
    config,
    worker: "unit-1",
    registry: new Registry(),
    limits: () => ({ ackWaitMs: 60_000, maxDeliver: opts.maxDeliver ?? 3 }),
    dependencyDown: opts.dependencyDown,
  });
}

const playlist = (key = "show/index.m3u8") => encodeSweepEvent({ bucket: hls, key, size: 1, etag: "e" });

test("a handler that returns is acked", async () => {
  const { msg, settled } = fakeMessage(playlist());
  await deliver(async () => "done")(msg, new AbortController().signal);
  assert.deepEqual(settled, ["ack"]);
});

test("an event the function does not accept is acked without calling the handler", async () => {
  let called = false;
  const { msg, settled } = fakeMessage(encodeSweepEvent({ bucket: hls, key: "show/seg0.ts", size: 1, etag: "e" }));
  await deliver(async () => void (called = true))(msg, new AbortController().signal);
  assert.equal(called, false);
  assert.deepEqual(settled, ["ack"]);
});

test("an undecodable body is terminated with the reason", async () => {
  const { msg, settled } = fakeMessage("not json");
  await deliver(async () => "done")(msg, new AbortController().signal);
  assert.deepEqual(settled, ["term notification body is not JSON"]);
});

test("a transient error is nak'ed with a doubling delay, or the delay the error asks for", async () => {
  const plain = fakeMessage(playlist(), 2);
  await deliver(async () => {
    throw new Error("socket hang up");
  })(plain.msg, new AbortController().signal);
  assert.deepEqual(plain.settled, ["nak 2000"]);

  const asked = fakeMessage(playlist(), 1);
  await deliver(async () => {
    throw new TransientError("busy", { retryAfterMs: 123 });
  })(asked.msg, new AbortController().signal);
  assert.deepEqual(asked.settled, ["nak 123"]);
});

test("a permanent error calls giveUp with the job's state, then terminates", async () => {
  const given: Array<{ event: StorageEvent; reason: string; state: unknown }> = [];
  const { msg, settled } = fakeMessage(playlist());
  await deliver(
    async (_e, _ctx, job) => {
      job.state = { sourcePrefix: "show" };
      throw new PermanentError("segment outside its folder");
    },
    { giveUp: async (event, reason, _ctx, job) => void given.push({ event, reason, state: job.state }) },
  )(msg, new AbortController().signal);
  assert.equal(given.length, 1);
  assert.equal(given[0]!.event.key, "show/index.m3u8");
  assert.equal(given[0]!.reason, "segment outside its folder");
  assert.deepEqual(given[0]!.state, { sourcePrefix: "show" });
  assert.deepEqual(settled, ["term segment outside its folder"]);
});

test("the last allowed delivery gives up with the attempt count in the reason", async () => {
  const reasons: string[] = [];
  const { msg, settled } = fakeMessage(playlist(), 3);
  await deliver(
    async () => {
      throw new TransientError("database unreachable");
    },
    { giveUp: async (_e, reason) => void reasons.push(reason), maxDeliver: 3 },
  )(msg, new AbortController().signal);
  assert.deepEqual(reasons, ["gave up after 3 attempts: database unreachable"]);
  assert.deepEqual(settled, ["term gave up after 3 attempts: database unreachable"]);
});

test("when giveUp itself fails before the last delivery, the message is retried instead of terminated", async () => {
  const { msg, settled } = fakeMessage(playlist(), 1);
  await deliver(
    async () => {
      throw new PermanentError("bad playlist");
    },
    {
      giveUp: async () => {
        throw new Error("database down");
      },
    },
  )(msg, new AbortController().signal);
  assert.deepEqual(settled, ["nak 1000"]);
});

test("a job aborted by shutdown is released with a plain nak and no giveUp", async () => {
  let gaveUp = false;
  const abort = new AbortController();
  const { msg, settled } = fakeMessage(playlist());
  await deliver(
    async (_e, ctx) => {
      abort.abort(new ShutdownAbort("stopping"));
      throw ctx.signal.reason;
    },
    { giveUp: async () => void (gaveUp = true) },
  )(msg, abort.signal);
  assert.equal(gaveUp, false);
  assert.deepEqual(settled, ["nak"]);
});

test("progress heartbeats the message at most once a second", async () => {
  const { msg, settled } = fakeMessage(playlist());
  await deliver(async (_e, ctx) => {
    await ctx.progress(0.1);
    await ctx.progress(0.2);
    return "done";
  })(msg, new AbortController().signal);
  // The first call comes right after the job started, the second within the same second: no heartbeat yet.
  assert.deepEqual(settled, ["ack"]);
});

test("a job that fails while a dependency is down goes back without giving up, even on its last delivery; a permanent error is not asked about", async () => {
  let gaveUp = 0;
  let asked = 0;
  const down = async () => (asked++, "database");
  const failing: Handler = async () => {
    throw new Error("connect ECONNREFUSED 127.0.0.1:5432");
  };
  const last = fakeMessage(playlist(), 3);
  await deliver(failing, { maxDeliver: 3, giveUp: async () => void gaveUp++, dependencyDown: down })(last.msg, new AbortController().signal);
  assert.deepEqual(last.settled, ["nak 5000"]);
  assert.equal(gaveUp, 0);

  const permanent = fakeMessage(playlist(), 1);
  asked = 0;
  await deliver(async () => {
    throw new PermanentError("not an HLS playlist");
  }, { giveUp: async () => void gaveUp++, dependencyDown: down })(permanent.msg, new AbortController().signal);
  assert.equal(asked, 0);
  assert.equal(gaveUp, 1);
  assert.match(permanent.settled[0]!, /^term/);

  // Everything answering: the usual growing delay.
  const up = fakeMessage(playlist(), 1);
  await deliver(failing, { dependencyDown: async () => undefined })(up.msg, new AbortController().signal);
  assert.deepEqual(up.settled, ["nak 1000"]);
});
