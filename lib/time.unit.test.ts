import { test } from "node:test";
import assert from "node:assert/strict";
import { backoffDelay, sleep } from "./time.js";

test("the backoff doubles from its base and stops at its ceiling", () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map((a) => backoffDelay(a, 1000, 30_000)), [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
  assert.equal(backoffDelay(0, 250, 5000), 250, "attempt numbers start at 1; 0 is treated as the first");
});

test("sleep resolves after its time and rejects with the abort reason when its signal aborts first", async () => {
  const t0 = performance.now();
  await sleep(30);
  assert.ok(performance.now() - t0 >= 25);
  const stop = new AbortController();
  const waiting = sleep(60_000, { signal: stop.signal });
  stop.abort(new Error("shutting down"));
  await assert.rejects(waiting, /shutting down/);
  await assert.rejects(sleep(10, { signal: AbortSignal.abort(new Error("already")) }), /already/);
});
