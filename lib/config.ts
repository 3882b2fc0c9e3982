import { availableParallelism } from "node:os";
import { z } from "zod";

// The one place that reads process.env. Every service calls loadConfig() once at start;
// a missing or malformed variable stops it with one line naming the variable.

const DEV_ACCESS_KEY = "minioadmin";
const DEV_SECRET_KEY = "minioadmin123";
const DEV_DATABASE_URL = "postgres://postgres:postgres@127.0.0.1:5432/recording_db";

const int = (min: number, max: number) =>
  z.coerce.number({ error: `expected an integer from ${min} to ${max}` }).int(`expected an integer from ${min} to ${max}`).min(min, `expected an integer from ${min} to ${max}`).max(max, `expected an integer from ${min} to ${max}`);
const seconds = z.coerce.number({ error: "expected a number of seconds" }).positive("expected a positive number of seconds");
const bool = z
  .enum(["true", "false", "1", "0", "on", "off", "yes", "no"], { error: "expected true or false" })
  .transform((v) => ["true", "1", "on", "yes"].includes(v));
const bucketName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, "expected an S3 bucket name (3-63 lowercase letters, digits, dots, hyphens)");
const natsName = z.string().regex(/^[A-Za-z0-9_-]+$/, "expected a NATS name (letters, digits, _ and -)");

/** `localhost:9000`, `http://localhost:9000` and `https://s3.example.com` are all accepted. */
const endpoint = z
  .string()
  .min(1, "expected host:port or a URL like http://127.0.0.1:9000")
  .transform((v, ctx) => {
    const withScheme = /^[a-z]+:\/\//i.test(v) ? v : `http://${v}`;
    try {
      const url = new URL(withScheme);
      if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error("scheme");
      return url.origin;
    } catch {
      ctx.addIssue({ code: "custom", message: "expected host:port or a URL like http://127.0.0.1:9000" });
      return z.NEVER;
    }
  });

const schema = z.object({
  NODE_ENV: z.enum(["development", "production", "test"]).default("development"),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),

  MINIO_ENDPOINT: endpoint.default("http://127.0.0.1:9000"),
  MINIO_USE_SSL: bool.optional(),
  MINIO_REGION: z.string().min(1).default("us-east-1"),
  MINIO_ACCESS_KEY: z.string().min(3, "expected an access key of at least 3 characters").default(DEV_ACCESS_KEY),
  MINIO_SECRET_KEY: z.string().min(8, "expected a secret key of at least 8 characters").default(DEV_SECRET_KEY),
  MINIO_HLS_BUCKET: bucketName.default("hls-streams"),
  MINIO_BUCKET: bucketName.default("recordings"),
  /** Public base URL for presigned links, when clients reach the store by another name than services do. */
  MINIO_PUBLIC_ENDPOINT: endpoint.optional(),
  /** Which store infra/ runs; only provisioning looks at it (everything else speaks plain S3). */
  OBJECT_STORE: z.enum(["auto", "minio", "versitygw"], { error: "expected auto, minio or versitygw" }).default("auto"),
  /** The MinIO NATS target's ARN, as MinIO prints it at start (the target ID keeps its case). */
  MINIO_NATS_ARN: z.string().regex(/^arn:minio:sqs:[^:]*:[^:]+:nats$/, "expected an ARN like arn:minio:sqs::PRIMARY:nats").default("arn:minio:sqs::PRIMARY:nats"),
  /** Origins allowed to fetch objects from the buckets in a browser (the API's web page). */
  CORS_ORIGINS: z.string().min(1).default("*"),
  PRESIGN_EXPIRY_SECONDS: int(60, 7 * 24 * 3600).default(3600),

  NATS_URL: z
    .string()
    .regex(/^(nats|tls|ws|wss):\/\/[^\s,]+(,(nats|tls|ws|wss):\/\/[^\s,]+)*$/, "expected a NATS URL like nats://127.0.0.1:4222 (comma-separate several)")
    .default("nats://127.0.0.1:4222"),
  NATS_SUBJECT: z.string().regex(/^[A-Za-z0-9_.-]+$/, "expected a NATS subject like storage.events").default("storage.events"),
  NATS_STREAM: natsName.default("STORAGE_EVENTS"),
  /** 3 on a NATS cluster, so the stream survives losing a server. */
  NATS_STREAM_REPLICAS: int(1, 5).default(1),
  CONVERT_CONSUMER: natsName.default("convert"),
  THUMBNAIL_CONSUMER: natsName.default("thumbnail"),
  /** The stream every stream and recording change is published to, on `<EVENTS_SUBJECT_PREFIX>.<type>`. */
  EVENTS_STREAM: natsName.default("VOD_EVENTS"),
  EVENTS_SUBJECT_PREFIX: z.string().regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, "expected a NATS subject prefix like vod.events").default("vod.events"),
  /** How long the events stream keeps an event, for consumers that read it late. */
  EVENTS_MAX_AGE_HOURS: seconds.default(7 * 24),
  WEBHOOKS_CONSUMER: natsName.default("webhooks"),
  /** The package function's consumer on the events stream (recording.ready only). */
  PACKAGE_CONSUMER: natsName.default("package"),
  /** The ABR ladder every ready recording is packaged to: heights, each optionally with kbit/s (`720:3000`), or `off`. */
  ABR_LADDER: z
    .string()
    .regex(/^(off|\d{2,4}(:\d{2,6})?(,\d{2,4}(:\d{2,6})?)*)$/, "expected off or heights like 1080,720,480,360,240 (each optionally :kbps, e.g. 720:3000)")
    .default("1080,720,480,360,240"),
  /** Seconds per CMAF segment of the ladder; keyframes are forced at each boundary in every rendition. */
  ABR_SEGMENT_SECONDS: int(1, 20).default(4),
  /** Work the API hands to a function pool (clip cuts), on `<JOBS_SUBJECT_PREFIX>.clip`; a job is removed once acked. */
  JOBS_STREAM: natsName.default("VOD_JOBS"),
  JOBS_SUBJECT_PREFIX: z.string().regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, "expected a NATS subject prefix like vod.jobs").default("vod.jobs"),
  CLIP_CONSUMER: natsName.default("clip"),
  /** A clip job not heartbeated this long (its replica died) goes to another replica: cuts take seconds. */
  CLIP_ACK_WAIT_SECONDS: seconds.default(10),
  /** An event is retried this long; an endpoint failing this long is disabled. */
  WEBHOOK_RETRY_HOURS: seconds.default(24),
  /** The first retry's delay; each next one doubles (with jitter). */
  WEBHOOK_RETRY_BASE_SECONDS: seconds.default(5),
  /** Private, loopback and link-local endpoint addresses are refused in production unless this is on. */
  WEBHOOK_ALLOW_PRIVATE: bool.default(false),

  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\/.+/, "expected a URL like postgres://user:password@host:5432/database")
    .default(DEV_DATABASE_URL),

  FUNCTION_CONCURRENCY: int(1, 64).default(1),
  /** Delivery attempts before a job is given up and its recording marked failed. */
  MAX_DELIVERIES: int(1, 100).default(8),
  /** How long convert waits for segments a playlist names but that have not arrived. */
  SEGMENT_WAIT_SECONDS: seconds.default(300),
  SHUTDOWN_GRACE_SECONDS: seconds.default(30),
  SWEEP_INTERVAL_SECONDS: seconds.default(180),
  WORK_DIR: z.string().min(1).default("/tmp/vod-work"),
  /** Build a broadcast's MP4 while it is live (convert acting on live playlist updates), so it is ready seconds after the end. */
  LIVE_ASSEMBLY: bool.default(true),
  /** Size of the parts the live assembly appends to the MP4's multipart upload (S3 wants at least 5 MB). */
  LIVE_ASSEMBLY_PART_MB: int(5, 1024).default(16),
  /** How long a replica holds a live assembly per playlist update; a killed holder's is taken over after this. */
  LIVE_ASSEMBLY_LEASE_SECONDS: seconds.default(15),
  /** While live, new segments are remuxed once this many wait (one FFmpeg run for them all); the finish takes the rest. */
  LIVE_ASSEMBLY_BATCH_SEGMENTS: int(1, 64).default(8),
  /**
   * A live playlist neither updated nor assembled this long is abandoned (its packager died without ENDLIST): the
   * sweep aborts its upload and drops its state; stray uploads and heads older than this go too.
   */
  LIVE_ASSEMBLY_IDLE_MINUTES: z.coerce.number({ error: "expected a number of minutes" }).min(1, "expected at least 1 minute (longer than any reconnect grace)").max(7 * 24 * 60, "expected at most 10080 minutes (a week)").default(30),
  /** Most frames in a recording's storyboard sprite: bounds the thumbnail's cost on long streams. */
  STORYBOARD_MAX_TILES: int(1, 400).default(100),
  /** Name of this replica in logs and job claims; infra/stack.sh sets it (convert-1, ...), else host and pid are used. */
  REPLICA_ID: z.string().min(1).optional(),
  FFMPEG_PATH: z.string().min(1).optional(),
  FFPROBE_PATH: z.string().min(1).optional(),

  API_PORT: int(1, 65535).default(8080),
  API_TOKEN: z.string().min(16, "expected a token of at least 16 characters").optional(),
  API_READS_REQUIRE_TOKEN: bool.default(false),
  /** Processes serving the API on its one port (node:cluster), to use more than one core. */
  API_WORKERS: int(1, 64).default(1),
  METRICS_PORT: int(0, 65535).default(0),
  /** Longest clip of a recording, and longest live clip (the last N seconds of a broadcast). */
  CLIP_MAX_SECONDS: int(1, 86_400).default(3600),
  CLIP_LIVE_MAX_SECONDS: int(1, 86_400).default(600),

  GATEWAY_HTTP_PORT: int(1, 65535).default(9090),
  SRT_PORT: int(1, 65535).default(9999),
  SRT_HOST: z.string().min(1).default("0.0.0.0"),
  /** Host name put in the OBS settings the gateway hands out. */
  SRT_PUBLIC_HOST: z.string().min(1).default("127.0.0.1"),
  /** Kernel receive buffer of each SRT UDP socket (~1 s of 100 streams at 3 Mbps); capped by net.core.rmem_max. */
  SRT_UDP_RCVBUF_MB: int(1, 1024).default(32),
  /** SRT listeners on the one port (SO_REUSEPORT), each with its own UDP socket and libsrt receive thread; callers are spread by address. */
  SRT_LISTENERS: int(1, 64).default(Math.max(1, availableParallelism())),
  INGEST_AUTH: z.enum(["on", "off"], { error: "expected on or off" }).default("on"),
  INGEST_PROFILE: z.enum(["auto", "copy", "transcode"], { error: "expected auto, copy or transcode" }).default("auto"),
  SEGMENT_SECONDS: int(1, 30).default(4),
  RECONNECT_GRACE_SECONDS: seconds.default(30),
  SPOOL_DIR: z.string().min(1).default("/tmp/vod-spool"),
  /** Finished segments waiting for the store, all streams together; beyond it the oldest waiting are dropped. */
  SPOOL_MAX_MB: int(1, 1_000_000).default(2048),

  /** keep, delete (once the recording and thumbnail are ready) or days after ready (fractions accepted). */
  SOURCE_RETENTION: z
    .string()
    .regex(/^(keep|delete|\d+(\.\d+)?)$/, "expected keep, delete or a number of days like 7 or 0.5")
    .default("7"),
  /** Days a ready recording is kept (fractions accepted); 0 keeps forever. */
  RECORDING_RETENTION_DAYS: z.coerce.number({ error: "expected a number of days" }).min(0, "expected 0 (forever) or a positive number of days").default(0),
  RETENTION_INTERVAL_SECONDS: seconds.default(300),
  /** Broadcasts end at this length (12 h); a stream may set its own. */
  MAX_BROADCAST_SECONDS: int(1, 30 * 24 * 3600).default(12 * 3600),
});

export type Config = ReturnType<typeof loadConfig>;

export class ConfigError extends Error {
  override name = "ConfigError";
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env) {
  // Empty strings count as unset, as docker-compose passes `VAR=` for unset variables.
  const input = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const name = String(issue.path[0] ?? "environment");
    const got = input[name] === undefined ? "it is not set" : `got ${JSON.stringify(input[name])}`;
    throw new ConfigError(`config: ${name}: ${issue.message} (${got})`);
  }
  const e = parsed.data;

  if (e.NODE_ENV === "production") {
    if (!env.MINIO_ACCESS_KEY || !env.MINIO_SECRET_KEY || e.MINIO_ACCESS_KEY === DEV_ACCESS_KEY || e.MINIO_SECRET_KEY === DEV_SECRET_KEY)
      throw new ConfigError("config: MINIO_ACCESS_KEY/MINIO_SECRET_KEY: the development credentials are refused when NODE_ENV=production; set your own");
    const db = new URL(e.DATABASE_URL.replace(/^postgres(ql)?:/, "http:"));
    if (!env.DATABASE_URL || decodeURIComponent(db.password) === "postgres" || db.password === "")
      throw new ConfigError("config: DATABASE_URL: the development database password is refused when NODE_ENV=production; set a URL with your own password");
    if (!e.API_TOKEN) throw new ConfigError("config: API_TOKEN: required when NODE_ENV=production (at least 16 characters)");
    if (e.INGEST_AUTH === "off") throw new ConfigError("config: INGEST_AUTH: off is refused when NODE_ENV=production");
  }

  const useSsl = e.MINIO_USE_SSL ?? e.MINIO_ENDPOINT.startsWith("https:");
  const s3Endpoint = useSsl ? e.MINIO_ENDPOINT.replace(/^http:/, "https:") : e.MINIO_ENDPOINT;

  return {
    env: e.NODE_ENV,
    logLevel: e.LOG_LEVEL,
    s3: {
      endpoint: s3Endpoint,
      publicEndpoint: e.MINIO_PUBLIC_ENDPOINT ?? s3Endpoint,
      region: e.MINIO_REGION,
      accessKey: e.MINIO_ACCESS_KEY,
      secretKey: e.MINIO_SECRET_KEY,
      hlsBucket: e.MINIO_HLS_BUCKET,
      recordingsBucket: e.MINIO_BUCKET,
      presignExpirySeconds: e.PRESIGN_EXPIRY_SECONDS,
      objectStore: e.OBJECT_STORE,
      minioNatsArn: e.MINIO_NATS_ARN,
      corsOrigins: e.CORS_ORIGINS.split(",").map((o) => o.trim()),
    },
    nats: {
      servers: e.NATS_URL.split(","),
      subject: e.NATS_SUBJECT,
      stream: e.NATS_STREAM,
      streamReplicas: e.NATS_STREAM_REPLICAS,
      consumers: { convert: e.CONVERT_CONSUMER, thumbnail: e.THUMBNAIL_CONSUMER },
    },
    events: {
      stream: e.EVENTS_STREAM,
      subjectPrefix: e.EVENTS_SUBJECT_PREFIX,
      maxAgeMs: e.EVENTS_MAX_AGE_HOURS * 3600_000,
      consumer: e.WEBHOOKS_CONSUMER,
      packageConsumer: e.PACKAGE_CONSUMER,
    },
    abr: { ladder: e.ABR_LADDER, segmentSeconds: e.ABR_SEGMENT_SECONDS },
    jobs: {
      stream: e.JOBS_STREAM,
      subjectPrefix: e.JOBS_SUBJECT_PREFIX,
      clipConsumer: e.CLIP_CONSUMER,
      clipAckWaitMs: e.CLIP_ACK_WAIT_SECONDS * 1000,
    },
    webhooks: {
      retryMs: e.WEBHOOK_RETRY_HOURS * 3600_000,
      retryBaseMs: e.WEBHOOK_RETRY_BASE_SECONDS * 1000,
      allowPrivate: e.WEBHOOK_ALLOW_PRIVATE || e.NODE_ENV !== "production",
      timeoutMs: 10_000,
    },
    databaseUrl: e.DATABASE_URL,
    functions: {
      concurrency: e.FUNCTION_CONCURRENCY,
      maxDeliveries: e.MAX_DELIVERIES,
      segmentWaitMs: e.SEGMENT_WAIT_SECONDS * 1000,
      shutdownGraceMs: e.SHUTDOWN_GRACE_SECONDS * 1000,
      sweepIntervalMs: e.SWEEP_INTERVAL_SECONDS * 1000,
      retentionIntervalMs: e.RETENTION_INTERVAL_SECONDS * 1000,
      workDir: e.WORK_DIR,
      liveAssembly: { enabled: e.LIVE_ASSEMBLY, partBytes: e.LIVE_ASSEMBLY_PART_MB * 1024 * 1024, leaseMs: e.LIVE_ASSEMBLY_LEASE_SECONDS * 1000, batchSegments: e.LIVE_ASSEMBLY_BATCH_SEGMENTS, idleMs: e.LIVE_ASSEMBLY_IDLE_MINUTES * 60_000 },
      storyboardMaxTiles: e.STORYBOARD_MAX_TILES,
      metricsPort: e.METRICS_PORT,
      replicaId: e.REPLICA_ID,
    },
    ffmpeg: { ffmpegPath: e.FFMPEG_PATH, ffprobePath: e.FFPROBE_PATH },
    api: { port: e.API_PORT, token: e.API_TOKEN, readsRequireToken: e.API_READS_REQUIRE_TOKEN },
    clips: { maxSeconds: e.CLIP_MAX_SECONDS, liveMaxSeconds: e.CLIP_LIVE_MAX_SECONDS },
    apiWorkers: e.API_WORKERS,
    retention: { source: e.SOURCE_RETENTION, recordingDays: e.RECORDING_RETENTION_DAYS },
    gateway: {
      httpPort: e.GATEWAY_HTTP_PORT,
      srtPort: e.SRT_PORT,
      srtHost: e.SRT_HOST,
      srtPublicHost: e.SRT_PUBLIC_HOST,
      srtUdpReceiveBuffer: e.SRT_UDP_RCVBUF_MB * 1024 * 1024,
      srtListeners: e.SRT_LISTENERS,
      auth: e.INGEST_AUTH === "on",
      profile: e.INGEST_PROFILE,
      segmentSeconds: e.SEGMENT_SECONDS,
      reconnectGraceMs: e.RECONNECT_GRACE_SECONDS * 1000,
      spoolDir: e.SPOOL_DIR,
      spoolMaxBytes: e.SPOOL_MAX_MB * 1024 * 1024,
      apiToken: e.API_TOKEN,
      maxBroadcastSeconds: e.MAX_BROADCAST_SECONDS,
    },
  };
}

/** For a service's entry point: a bad setting prints its one line and exits, no stack trace. */
export function loadConfigOrExit(env: NodeJS.ProcessEnv = process.env): Config {
  try {
    return loadConfig(env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
}
