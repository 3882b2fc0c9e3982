import { test } from "node:test";
import assert from "node:assert/strict";
import { pino } from "pino";
import { retry } from "./retry.js";

const log = pino({ level: "silent" });

test("retry returns the first success and counts each retry", async () => {
  let calls = 0;
  let retries = 0;
  const v = await retry(
    async () => {
      if (++calls < 3) throw new Error("not yet");
      return "stored";
    },
    { what: "a put", log, context: {}, onRetry: () => retries++ },
  );
  assert.equal(v, "stored");
  assert.equal(calls, 3);
  assert.equal(retries, 2);
});

test("retry gives up with the last error once the next wait would pass maxMs", async () => {
  let calls = 0;
  const t0 = Date.now();
  await assert.rejects(
    retry(
      async () => {
        calls++;
        throw new Error(`failure ${calls}`);
      },
      { what: "a put", log, context: {}, maxMs: 600 },
    ),
    /failure 2/,
  );
  // 250 ms, then 500 more would pass 600: two calls.
  assert.equal(calls, 2);
  assert.ok(Date.now() - t0 < 600);
});

test("retry stops as soon as its signal aborts, with the error of the attempt that failed", async () => {
  const stop = new AbortController();
  let calls = 0;
  const done = retry(
    async () => {
      calls++;
      if (calls === 2) stop.abort();
      throw new Error(`failure ${calls}`);
    },
    { what: "a put", log, context: {}, signal: stop.signal },
  );
  await assert.rejects(done, /failure 2/);
  assert.equal(calls, 2);
});
