// The gateway's control API on GATEWAY_HTTP_PORT: streams, their secrets and OBS settings, live state.
import { randomBytes } from "node:crypto";
import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import type { Db } from "../../db/client.js";
import { createStream, deleteStream, getStream, listStreams } from "../../db/streams.js";
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
      const rows = await listStreams(d.db);
      const live = new Map(d.manager.list(d.stats).map((l) => [l.stream, l]));
      const streams = rows.map((r) => ({
        name: r.name,
        title: r.title,
        state: live.has(r.name) ? "live" : r.state,
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
      return c.json({ name: row.name, title: row.title, state: live ? "live" : row.state, secret: row.secret, obs: settingsFor(row.name, row.secret), live }, 200);
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

  app.doc("/openapi.json", { openapi: "3.0.0", info: { title: "ingest gateway", version: "1" } });
  return app;
}
