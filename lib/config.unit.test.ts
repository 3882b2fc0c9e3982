import { test } from "node:test";
import assert from "node:assert/strict";
import { availableParallelism } from "node:os";
import { loadConfig, ConfigError } from "./config.js";

const fails = (env: Record<string, string>, pattern: RegExp) => {
  assert.throws(() => loadConfig(env), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, pattern);
    assert.equal(err.message.split("\n").length, 1, "one line");
    return true;
  });
};

test("the defaults describe the local stack", () => {
  const c = loadConfig({});
  assert.equal(c.s3.endpoint, "http://127.0.0.1:9000");
  assert.equal(c.s3.hlsBucket, "hls-streams");
  assert.equal(c.s3.recordingsBucket, "recordings");
  assert.deepEqual(c.nats.servers, ["nats://127.0.0.1:4222"]);
  assert.equal(c.databaseUrl, "postgres://postgres:postgres@127.0.0.1:5432/recording_db");
  assert.equal(c.gateway.srtPort, 9999);
  assert.equal(c.gateway.httpPort, 9090);
  assert.equal(c.api.port, 8080);
  // One SRT listener (UDP socket and libsrt receive thread) per CPU.
  assert.equal(c.gateway.srtListeners, availableParallelism());
  assert.equal(loadConfig({ SRT_LISTENERS: "1" }).gateway.srtListeners, 1);
  assert.equal(c.functions.liveAssembly.batchSegments, 8);
  assert.equal(loadConfig({ LIVE_ASSEMBLY_BATCH_SEGMENTS: "2" }).functions.liveAssembly.batchSegments, 2);
  assert.equal(c.functions.liveAssembly.idleMs, 30 * 60_000);
  assert.equal(loadConfig({ LIVE_ASSEMBLY_IDLE_MINUTES: "1.5" }).functions.liveAssembly.idleMs, 90_000);
});

test("MINIO_ENDPOINT takes the original host:port form as well as a URL", () => {
  assert.equal(loadConfig({ MINIO_ENDPOINT: "minio:9000" }).s3.endpoint, "http://minio:9000");
  assert.equal(loadConfig({ MINIO_ENDPOINT: "minio:9000", MINIO_USE_SSL: "true" }).s3.endpoint, "https://minio:9000");
  assert.equal(loadConfig({ MINIO_ENDPOINT: "https://s3.example.com" }).s3.endpoint, "https://s3.example.com");
});

test("each malformed variable gives one line naming it and what is expected", () => {
  fails({ MINIO_ENDPOINT: "ftp://x" }, /^config: MINIO_ENDPOINT: expected host:port or a URL .*got "ftp:\/\/x"/);
  fails({ MINIO_BUCKET: "Bad_Bucket" }, /^config: MINIO_BUCKET: expected an S3 bucket name/);
  fails({ MINIO_HLS_BUCKET: "x" }, /^config: MINIO_HLS_BUCKET: expected an S3 bucket name/);
  fails({ MINIO_SECRET_KEY: "short" }, /^config: MINIO_SECRET_KEY: expected a secret key of at least 8/);
  fails({ DATABASE_URL: "mysql://x" }, /^config: DATABASE_URL: expected a URL like postgres:\/\//);
  fails({ NATS_URL: "127.0.0.1:4222" }, /^config: NATS_URL: expected a NATS URL/);
  fails({ FUNCTION_CONCURRENCY: "many" }, /^config: FUNCTION_CONCURRENCY: expected an integer from 1 to 64/);
  fails({ FUNCTION_CONCURRENCY: "0" }, /^config: FUNCTION_CONCURRENCY: expected an integer from 1 to 64/);
  fails({ SRT_PORT: "70000" }, /^config: SRT_PORT: expected an integer from 1 to 65535/);
  fails({ LIVE_ASSEMBLY_BATCH_SEGMENTS: "0" }, /^config: LIVE_ASSEMBLY_BATCH_SEGMENTS: expected an integer from 1 to 64/);
  fails({ LIVE_ASSEMBLY_IDLE_MINUTES: "0.5" }, /^config: LIVE_ASSEMBLY_IDLE_MINUTES: expected at least 1 minute/);
  fails({ LIVE_ASSEMBLY_IDLE_MINUTES: "soon" }, /^config: LIVE_ASSEMBLY_IDLE_MINUTES: expected a number of minutes/);
  fails({ SRT_LISTENERS: "0" }, /^config: SRT_LISTENERS: expected an integer from 1 to 64/);
  fails({ OBJECT_STORE: "s3" }, /^config: OBJECT_STORE: expected auto, minio or versitygw/);
  fails({ INGEST_AUTH: "maybe" }, /^config: INGEST_AUTH: expected on or off/);
  fails({ API_TOKEN: "short" }, /^config: API_TOKEN: expected a token of at least 16/);
  fails({ MINIO_NATS_ARN: "arn:aws:sqs::x" }, /^config: MINIO_NATS_ARN: expected an ARN like arn:minio:sqs::PRIMARY:nats/);
  fails({ NODE_ENV: "staging" }, /^config: NODE_ENV: /);
});

test("production refuses the development credentials and needs an API token", () => {
  const prod = {
    NODE_ENV: "production",
    MINIO_ACCESS_KEY: "vod-prod",
    MINIO_SECRET_KEY: "a-long-secret-key",
    DATABASE_URL: "postgres://vod:s3cret-pw@db:5432/recording_db",
    API_TOKEN: "0123456789abcdef0123",
  };
  assert.equal(loadConfig(prod).env, "production");
  fails({ ...prod, MINIO_ACCESS_KEY: "minioadmin", MINIO_SECRET_KEY: "minioadmin123" }, /MINIO_ACCESS_KEY\/MINIO_SECRET_KEY: the development credentials are refused/);
  fails({ NODE_ENV: "production", DATABASE_URL: prod.DATABASE_URL, API_TOKEN: prod.API_TOKEN }, /development credentials are refused/);
  fails({ ...prod, DATABASE_URL: "postgres://postgres:postgres@db:5432/recording_db" }, /DATABASE_URL: the development database password is refused/);
  const { API_TOKEN: _, ...noToken } = prod;
  fails(noToken, /API_TOKEN: required when NODE_ENV=production/);
  fails({ ...prod, INGEST_AUTH: "off" }, /INGEST_AUTH: off is refused/);
});

test("a service started with a bad setting prints that one line and exits 1", async () => {
  const { execa } = await import("execa");
  for (const [env, line] of [
    [{ NATS_URL: "localhost" }, /^config: NATS_URL: expected a NATS URL/],
    [{ NODE_ENV: "production" }, /^config: MINIO_ACCESS_KEY\/MINIO_SECRET_KEY: the development credentials are refused/],
  ] as const) {
    const r = await execa("node", ["--import", "tsx", "functions/sweep/main.ts", "--once"], { env: { ...env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" }, extendEnv: true, reject: false, cwd: new URL("..", import.meta.url) });
    assert.equal(r.exitCode, 1);
    assert.match(r.stderr, line);
    assert.equal(r.stderr.trim().split("\n").length, 1, `one line, got: ${r.stderr}`);
  }
});
