// Pure rules of webhooks: which addresses are refused, when the next attempt comes, how events are keyed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { isPrivateAddress, parseWebhookUrl, checkWebhookUrl, WebhookUrlError } from "./url.js";
import { nextAttemptAt } from "./deliver.js";
import { orderKey, recordingData } from "../../lib/events.js";

test("private, loopback, link-local and unspecified addresses are recognised; public ones are not", () => {
  for (const a of ["127.0.0.1", "10.0.0.5", "172.20.1.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "::1", "fe80::1", "fd00::1", "::ffff:127.0.0.1", "::"]) assert.ok(isPrivateAddress(a), a);
  for (const a of ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"]) assert.ok(!isPrivateAddress(a), a);
});

test("only http(s) URLs without credentials are accepted, with a message saying what to send", () => {
  assert.throws(() => parseWebhookUrl("ftp://example.com/x"), /use http:\/\/ or https:\/\//);
  assert.throws(() => parseWebhookUrl("not a url"), WebhookUrlError);
  assert.throws(() => parseWebhookUrl("https://user:pw@example.com/x"), /credentials/);
  assert.equal(parseWebhookUrl("https://example.com/hooks").host, "example.com");
});

test("a literal private address is refused without a DNS lookup unless private addresses are allowed", async () => {
  await assert.rejects(checkWebhookUrl("http://[::1]:8080/x", false), /WEBHOOK_ALLOW_PRIVATE/);
  await assert.rejects(checkWebhookUrl("http://169.254.169.254/latest", false), /link-local|private/);
  assert.equal((await checkWebhookUrl("http://127.0.0.1/x", true)).hostname, "127.0.0.1");
});

test("retries back off exponentially with jitter and stop after the retry window", () => {
  const cfg = { retryMs: 24 * 3600_000, retryBaseMs: 5000, timeoutMs: 10_000, allowPrivate: false };
  const created = new Date(0);
  const delays = [0, 1, 2, 3].map((attempts) => nextAttemptAt({ attempts, createdAt: created }, cfg, 0, () => 1)!.getTime());
  assert.deepEqual(delays, [5000, 10_000, 20_000, 40_000], "doubling, full delay at the top of the jitter");
  assert.equal(nextAttemptAt({ attempts: 0, createdAt: created }, cfg, 0, () => 0)!.getTime(), 2500, "jitter takes up to half off");
  assert.equal(nextAttemptAt({ attempts: 30, createdAt: created }, cfg, 24 * 3600_000 - 1000, () => 1), null, "past the window: given up");
});

test("events of one recording share an order key; stream events are keyed by the stream", () => {
  assert.equal(orderKey({ type: "recording.ready", data: { id: "r1" } }), "recording:r1");
  assert.equal(orderKey({ type: "stream.connected", data: { name: "cam" } }), "stream:cam");
  const now = new Date("2026-01-01T00:00:00Z");
  const data = recordingData({ id: "r1", streamId: "cam", title: "t", status: "ready", progress: 0.5, error: null, durationSeconds: 1, fileSizeBytes: 2, width: 3, height: 4, videoCodec: "h264", audioCodec: "aac", sourcePrefix: "cam/s1", sessionId: "s1", createdAt: now, updatedAt: now });
  assert.equal(data.progress, 1, "ready means done, as the API says");
  assert.equal(data.createdAt, "2026-01-01T00:00:00.000Z");
});
