// The gateway's control API on GATEWAY_HTTP_PORT: streams, their secrets and OBS settings, live state.
import { randomBytes } from "node:crypto";
import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import type { Db } from "../../db/client.js";
import { createStream, deleteStream, getStream, listStreams, setStreamSecret, updateStreamSettings } from "../../db/streams.js";
import { usageByStream } from "../../db/recordings.js";
import type { Stream } from "../../db/schema.js";
import type { Config } from "../../lib/config.js";
import type { Logger } from "../../lib/log.js";
import { createRouter } from "../../lib/http/app.js";
import { bearerAuth } from "../../lib/http/auth.js";
import { errorKinds, HttpError } from "../../lib/http/errors.js";
import type { SessionManager } from "../session/manager.js";
import type { SrtStats } from "../srt/addon.js";
import { obsSettings } from "./obs-settings.js";

export interface AppDeps {
  db: Db;
  log: Logger;
  config: Config;
  manager: SessionManager;
  stats(id: number): SrtStats | undefined;
  /** Pushes the DB's streams to the SRT listener at once (after a create or delete). */
  refreshStreams(): Promise<unknown>;
  /** Refuses a stream's callers for a while after it was stopped; returns until when. */
  holdStream(name: string): Promise<Date>;
}

const StreamName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, "a stream name is 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit")
  .openapi({ example: "studio-a" });
const ErrorBody = z.object({
  error: z.object({ kind: z.enum(Object.keys(errorKinds) as [keyof typeof errorKinds, ...(keyof typeof errorKinds)[]]), message: z.string(), field: z.string().optional() }),
});
// PostgreSQL refuses NUL in text; as a pattern it is in /openapi.json too.
const noNul = [/^[^\u0000]*$/, "must not contain NUL characters (\\u0000); remove them"] as const;
const CreateBody = z.object({
  name: StreamName,
  title: z.string().max(200).regex(...noNul).optional(),
  userId: z.string().max(200).regex(...noNul).optional(),
  /** SRT passphrases are 10-79 characters; generated when left out. */
  secret: z.string().min(10, "an SRT passphrase needs at least 10 characters").max(79, "an SRT passphrase has at most 79 characters").regex(...noNul).optional(),
});
const Days = z.number({ error: "expected a number of days (0 or more)" }).min(0, "expected 0 or more days; negative days are meaningless");
/** The settings a stream takes; a maximum length shorter than one segment could never end on a segment. */
const patchBody = (segmentSeconds: number) => z
  .object({
    title: z.string().max(200).regex(...noNul).nullable().optional(),
    disabled: z.boolean({ error: "expected true or false" }).optional(),
    maxBroadcastSeconds: z
      .number({ error: "expected a whole number of seconds" })
      .int("expected a whole number of seconds")
      .min(segmentSeconds, `expected at least one segment (${segmentSeconds} s)`)
      .max(30 * 24 * 3600, "expected at most 30 days (2592000 s)")
      .nullable()
      .optional()
      .openapi({ description: "Broadcasts end at this length (at least one segment); null = MAX_BROADCAST_SECONDS" }),
    sourceRetention: z
      .union([z.enum(["keep", "delete"]), Days], { error: "expected keep, delete or a number of days (0 or more)" })
      .nullable()
      .optional()
      .openapi({ description: "keep, delete (once the recording is ready) or days after ready; null = SOURCE_RETENTION" }),
    recordingRetentionDays: Days.nullable().optional().openapi({ description: "0 keeps forever; null = RECORDING_RETENTION_DAYS" }),
  })
  .strict();
const errorResponse = (description: string) => ({ description, content: { "application/json": { schema: ErrorBody } } });
/** What every route behind the token may answer besides its own statuses. */
const refusals = {
  400: errorResponse("a parameter or the body is wrong; the message names it"),
  401: errorResponse("no or a wrong bearer token"),
  403: errorResponse("stream changes are disabled because API_TOKEN is not set"),
};

function generateSecret(): string {
  // 24 url-safe characters: well within SRT's 10-79 and free of characters URLs would need to escape.
  return randomBytes(18).toString("base64url");
}

export function createApp(d: AppDeps): OpenAPIHono {
  const app = createRouter();
  // Like the VOD API: with no token configured, nothing may change streams (secure by default).
  const requireToken = bearerAuth(d.config.gateway.apiToken, "change streams or read their passphrases");
  // Listing is public (no secrets in it); one stream's settings carry its passphrase, so they need the token like writes.
  app.use("/streams/*", async (c, next) => (c.req.method === "GET" && c.req.path.replace(/\/$/, "") === "/streams" ? next() : requireToken(c, next)));

  /** The stream's settings (its own, null when it follows the global one) and what it stores. */
  const describe = (r: Stream, usage: Awaited<ReturnType<typeof usageByStream>>[number] | undefined) => ({
    disabled: r.disabled || r.state === "disabled",
    settings: {
      maxBroadcastSeconds: r.maxBroadcastSeconds,
      sourceRetention: r.sourceRetention === null || r.sourceRetention === "keep" || r.sourceRetention === "delete" ? r.sourceRetention : Number(r.sourceRetention),
      recordingRetentionDays: r.recordingRetentionDays,
    },
    effective: {
      maxBroadcastSeconds: r.maxBroadcastSeconds ?? d.config.gateway.maxBroadcastSeconds,
      sourceRetention: r.sourceRetention ?? d.config.retention.source,
      recordingRetentionDays: r.recordingRetentionDays ?? d.config.retention.recordingDays,
    },
    usage: { recordings: usage?.recordings ?? 0, mp4Bytes: usage?.mp4Bytes ?? 0, sourceBytes: usage?.sourceBytes ?? 0, sourcesKept: usage?.sourcesKept ?? 0 },
    lastEnd: d.manager.lastEnd.get(r.name) ?? null,
  });

  const settingsFor = (name: string, secret?: string) =>
    obsSettings({ host: d.config.gateway.srtPublicHost, port: d.config.gateway.srtPort, name, secret: d.config.gateway.auth ? secret : undefined });

  app.openapi(
    createRoute({
      method: "get",
      path: "/streams",
      summary: "Every stream with its live state, and callers refused lately (and why)",
      responses: { 200: { description: "streams", content: { "application/json": { schema: z.object({}).passthrough() } } } },
    }),
    async (c) => {
      const [rows, usage] = await Promise.all([listStreams(d.db), usageByStream(d.db)]);
      const used = new Map(usage.map((u) => [u.stream, u]));
      const live = new Map(d.manager.list(d.stats).map((l) => [l.stream, l]));
      const streams = rows.map((r) => ({
        name: r.name,
        title: r.title,
        state: live.has(r.name) ? "live" : r.state,
        ...describe(r, used.get(r.name)),
        lastConnectedAt: r.lastConnectedAt?.toISOString() ?? null,
        lastSegmentAt: r.lastSegmentAt?.toISOString() ?? null,
        live: live.get(r.name) ?? null,
        lastRefusal: d.manager.refusals.find((f) => f.stream === r.name) ?? null,
      }));
      return c.json({ auth: d.config.gateway.auth, streams, refusals: d.manager.refusals }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/streams",
      summary: "Create a stream and its SRT passphrase; answers the OBS settings",
      request: { body: { required: true, content: { "application/json": { schema: CreateBody } } } },
      responses: {
        ...refusals,
        201: { description: "created", content: { "application/json": { schema: z.object({}).passthrough() } } },
        409: { description: "exists", content: { "application/json": { schema: ErrorBody } } },
      },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const secret = body.secret ?? generateSecret();
      const row = await createStream(d.db, { name: body.name, secret, title: body.title, userId: body.userId });
      if (!row) throw new HttpError("conflict", `a stream named '${body.name}' exists already; pick another name or DELETE /streams/${body.name} first`);
      await d.refreshStreams();
      d.log.info({ stream: body.name }, "stream created");
      return c.json({ name: row.name, title: row.title, secret, obs: settingsFor(row.name, secret) }, 201);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/streams/{name}",
      summary: "One stream's OBS settings (with its passphrase) and live state",
      request: { params: z.object({ name: StreamName }) },
      responses: {
        ...refusals,
        200: { description: "stream", content: { "application/json": { schema: z.object({}).passthrough() } } },
        404: { description: "unknown", content: { "application/json": { schema: ErrorBody } } },
      },
    }),
    async (c) => {
      const { name } = c.req.valid("param");
      const row = await getStream(d.db, name);
      if (!row) throw new HttpError("not_found", `no stream named '${name}'; create it with POST /streams`);
      const live = d.manager.list(d.stats).find((l) => l.stream === name) ?? null;
      const [usage] = await usageByStream(d.db, name);
      return c.json({ name: row.name, title: row.title, state: live ? "live" : row.state, ...describe(row, usage), secret: row.secret, obs: settingsFor(row.name, row.secret), live }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "patch",
      path: "/streams/{name}",
      summary: "Change a stream: disable (ends its broadcast, refuses callers) or enable, title, maximum broadcast length, retention",
      request: { params: z.object({ name: StreamName }), body: { required: true, content: { "application/json": { schema: patchBody(d.config.gateway.segmentSeconds) } } } },
      responses: {
        ...refusals,
        200: { description: "changed", content: { "application/json": { schema: z.object({}).passthrough() } } },
        404: { description: "unknown", content: { "application/json": { schema: ErrorBody } } },
      },
    }),
    async (c) => {
      const { name } = c.req.valid("param");
      // Without a JSON content type the validator sees no body at all: refuse rather than change nothing silently.
      if (!/^application\/json\b/i.test(c.req.header("content-type") ?? "")) throw new HttpError("invalid_request", 'body: send a JSON object like {"disabled": true} with Content-Type: application/json', "body");
      const body = c.req.valid("json");
      const { sourceRetention, ...rest } = body;
      const row = await updateStreamSettings(d.db, name, { ...rest, ...(sourceRetention === undefined ? {} : { sourceRetention: sourceRetention === null ? null : String(sourceRetention) }) });
      if (!row) throw new HttpError("not_found", `no stream named '${name}'; create it with POST /streams`);
      // The listener refuses new callers first, so ending the broadcast does not let the encoder's reconnect in.
      await d.refreshStreams();
      const stopped = body.disabled === true ? await d.manager.stop(name, "disabled through the API") : false;
      d.log.info({ stream: name, change: body, stoppedBroadcast: stopped }, "stream changed");
      const [usage] = await usageByStream(d.db, name);
      return c.json({ name: row.name, title: row.title, ...describe(row, usage), stoppedBroadcast: stopped }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/streams/{name}/rotate-secret",
      summary: "Issue a new SRT passphrase: the running broadcast goes on; the next connection needs the new one",
      request: { params: z.object({ name: StreamName }) },
      responses: {
        ...refusals,
        200: { description: "rotated", content: { "application/json": { schema: z.object({ name: z.string(), secret: z.string(), obs: z.object({}).passthrough() }) } } },
        404: { description: "unknown", content: { "application/json": { schema: ErrorBody } } },
      },
    }),
    async (c) => {
      const { name } = c.req.valid("param");
      const secret = generateSecret();
      const row = await setStreamSecret(d.db, name, secret);
      if (!row) throw new HttpError("not_found", `no stream named '${name}'; create it with POST /streams`);
      await d.refreshStreams();
      d.log.info({ stream: name }, "stream passphrase rotated");
      return c.json({ name, secret, obs: settingsFor(name, secret) as Record<string, unknown> }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/streams/{name}",
      summary: "Delete a stream (a running broadcast is ended first); its recordings stay",
      request: { params: z.object({ name: StreamName }) },
      responses: {
        ...refusals,
        200: { description: "deleted", content: { "application/json": { schema: z.object({ deleted: z.string(), stoppedBroadcast: z.boolean() }) } } },
        404: { description: "unknown", content: { "application/json": { schema: ErrorBody } } },
      },
    }),
    async (c) => {
      const { name } = c.req.valid("param");
      const existed = await deleteStream(d.db, name);
      await d.refreshStreams();
      const stopped = await d.manager.stop(name);
      if (!existed && !stopped) throw new HttpError("not_found", `no stream named '${name}'; GET /streams lists them`);
      d.log.info({ stream: name, stopped }, "stream deleted");
      return c.json({ deleted: name, stoppedBroadcast: stopped }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/streams/{name}/stop",
      summary: "End the stream's broadcast cleanly: the final playlist (ENDLIST) is stored last",
      request: { params: z.object({ name: StreamName }) },
      responses: {
        ...refusals,
        200: { description: "stopped", content: { "application/json": { schema: z.object({ stopped: z.string(), refusedUntil: z.string() }) } } },
        409: { description: "not live", content: { "application/json": { schema: ErrorBody } } },
      },
    }),
    async (c) => {
      const { name } = c.req.valid("param");
      if (!d.manager.get(name)) throw new HttpError("conflict", `stream '${name}' is not live; nothing to stop`);
      // Held before the connection closes, so the encoder's automatic reconnect is refused.
      const until = await d.holdStream(name);
      await d.manager.stop(name);
      return c.json({ stopped: name, refusedUntil: until.toISOString() }, 200);
    },
  );

  app.doc31("/openapi.json", { openapi: "3.1.0", info: { title: "ingest gateway", version: "1" } });
  return app;
}
