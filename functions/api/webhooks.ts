// Webhook endpoints: register, change, rotate the secret, send a test, read the delivery log.
import { createRoute, z } from "@hono/zod-openapi";
import { createRouter } from "../../lib/http/app.js";
import { bearerAuth } from "../../lib/http/auth.js";
import { HttpError } from "../../lib/http/errors.js";
import { eventTypes, newEvent, TEST_EVENT_TYPE } from "../../lib/events.js";
import type { WebhookEndpoint } from "../../db/schema.js";
import { createEndpoint, deleteEndpoint, getEndpoint, listEndpoints, recentAttempts, recordTestDelivery, rotateEndpointSecret, updateEndpoint } from "../../db/webhooks.js";
import { checkWebhookUrl, WebhookUrlError } from "../webhooks/url.js";
import { newSecret, sendWebhook } from "../webhooks/send.js";
import type { ApiDeps } from "./deps.js";
import { errors } from "./schemas.js";

const json = <T extends z.ZodType>(schema: T, description: string) => ({ content: { "application/json": { schema } }, description });
const bearer = [{ bearerAuth: [] }];

const WebhookId = z.object({
  id: z.uuid({ error: "expected a webhook id (a UUID), as POST /webhooks answered it" }).openapi({ param: { name: "id", in: "path" }, example: "0f8fad5b-d9cb-469f-a165-70867728950e" }),
});
// PostgreSQL refuses NUL in text: the client's mistake (400), said by a pattern /openapi.json carries.
const NO_NUL = /^[^\u0000]*$/;
const NUL_MESSAGE = "must not contain NUL characters (\\u0000); remove them";
// IPv6 literals are left out (a pattern for them is long and easy to get wrong): an IPv6 receiver is named by DNS.
const URL_MESSAGE = "expected an http:// or https:// URL with a host name or IPv4 address, like https://example.com/hooks";
const PORT = "(6553[0-5]|655[0-2]\\d|65[0-4]\\d\\d|6[0-4]\\d{3}|[1-5]\\d{4}|\\d{1,4})";
const OCTET = "(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)";
// A host whose last label reads as a number is parsed as IPv4 by URL parsers (WHATWG): then it must be a
// dotted quad. Any other last label carries a letter that makes it a name (not a decimal or 0x number).
const NAME_END = "([A-Za-z-][A-Za-z0-9-]*|[1-9]\\d*[A-Za-z-][A-Za-z0-9-]*|0\\d*[A-WYZa-wyz-][A-Za-z0-9-]*|0[xX][0-9A-Fa-f]*[G-Zg-z-][A-Za-z0-9-]*)";
const HOST = `(${OCTET}(\\.${OCTET}){3}|([A-Za-z0-9-]+\\.)*${NAME_END})\\.?`;
const URL_PATTERN = new RegExp(`^[hH][tT][tT][pP][sS]?://${HOST}(:${PORT})?([/?#][^\\s\\u0000]*)?$`);
const Url = z
  .string({ error: "expected an http(s) URL" })
  .max(2000, "expected at most 2000 characters")
  // As the one pattern (it also excludes NUL), so /openapi.json says what a URL must look like; the parser has the last word.
  .regex(URL_PATTERN, URL_MESSAGE)
  .refine((v) => URL.canParse(v), { message: URL_MESSAGE })
  .openapi({ example: "https://example.com/hooks/vod" });
const Events = z
  .array(z.enum(eventTypes, { error: `expected one of ${eventTypes.join(", ")}` }), { error: "expected a list of event types" })
  .min(1, "expected at least one event type; leave the field out for all")
  .openapi({ description: "Event types to send; all when left out" });

const CreateBody = z.strictObject({ url: Url, events: Events.optional(), description: z.string().max(500, "expected at most 500 characters").regex(NO_NUL, NUL_MESSAGE).optional() });
const PatchBody = z.strictObject({ url: Url.optional(), events: Events.nullable().optional(), enabled: z.boolean({ error: "expected true or false" }).optional() });

const WebhookSchema = z
  .object({
    id: z.string(),
    url: z.string(),
    events: z.array(z.string()).nullable().openapi({ description: "null: every event type" }),
    description: z.string().nullable(),
    enabled: z.boolean(),
    disabledReason: z.string().nullable().openapi({ description: "Why the service disabled it (failing for WEBHOOK_RETRY_HOURS)" }),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi("Webhook");
const WebhookWithSecret = WebhookSchema.extend({ secret: z.string().openapi({ description: "Standard Webhooks secret (whsec_…); shown only now" }) }).openapi("WebhookWithSecret");
const AttemptSchema = z
  .object({
    eventId: z.string(),
    eventType: z.string(),
    attempt: z.number(),
    statusCode: z.number().nullable(),
    durationMs: z.number(),
    error: z.string().nullable(),
    nextRetryAt: z.string().nullable(),
    at: z.string(),
  })
  .openapi("WebhookAttempt");
const TestResult = z.object({ eventId: z.string(), ok: z.boolean(), statusCode: z.number().nullable(), durationMs: z.number(), error: z.string().nullable() }).openapi("WebhookTestResult");

function toJson(w: WebhookEndpoint): z.infer<typeof WebhookSchema> {
  return {
    id: w.id,
    url: w.url,
    events: w.events,
    description: w.description,
    enabled: w.enabled,
    disabledReason: w.disabledReason,
    createdAt: w.createdAt.toISOString(),
    updatedAt: w.updatedAt.toISOString(),
  };
}

export function webhookRoutes(deps: ApiDeps) {
  const { config, db, log } = deps;
  // Endpoints carry where events go and sign them: reading them needs the token too.
  const auth = bearerAuth(config.api.token, "manage webhooks");
  const allowPrivate = config.webhooks.allowPrivate;
  const app = createRouter();

  async function checkUrl(url: string): Promise<void> {
    try {
      await checkWebhookUrl(url, allowPrivate);
    } catch (err) {
      if (err instanceof WebhookUrlError) throw new HttpError("invalid_request", `url: ${err.message}`, "url");
      throw err;
    }
  }
  async function mustGet(id: string): Promise<WebhookEndpoint> {
    const row = await getEndpoint(db, id);
    if (!row) throw new HttpError("not_found", `no webhook with id ${id}; list them with GET /webhooks`);
    return row;
  }
  const route = <P extends string, M extends "get" | "post" | "patch" | "delete">(method: M, path: P, summary: string) => ({ method, path, tags: ["webhooks"], summary, middleware: auth, security: bearer });

  app.openapi(
    createRoute({ ...route("post", "/webhooks", "Register a webhook endpoint; the answer holds its signing secret"), request: { body: { content: { "application/json": { schema: CreateBody } }, required: true } }, responses: { 201: json(WebhookWithSecret, "The endpoint and its secret"), 400: errors[400], 401: errors[401], 403: errors[403] } }),
    async (c) => {
      if (!/^application\/json\b/i.test(c.req.header("content-type") ?? "")) throw new HttpError("invalid_request", 'body: send a JSON object like {"url": "https://example.com/hooks"} with Content-Type: application/json', "body");
      const body = c.req.valid("json");
      await checkUrl(body.url);
      const row = await createEndpoint(db, { url: body.url, events: body.events ?? null, description: body.description ?? null, secret: newSecret() });
      log.info({ webhook: row.id, url: row.url }, "webhook registered");
      return c.json({ ...toJson(row), secret: row.secret }, 201);
    },
  );

  app.openapi(createRoute({ ...route("get", "/webhooks", "List webhook endpoints"), responses: { 200: json(z.object({ items: z.array(WebhookSchema) }), "Every endpoint"), 401: errors[401], 403: errors[403] } }), async (c) =>
    c.json({ items: (await listEndpoints(db)).map(toJson) }, 200, { "cache-control": "no-store" }),
  );

  app.openapi(createRoute({ ...route("get", "/webhooks/{id}", "One webhook endpoint"), request: { params: WebhookId }, responses: { 200: json(WebhookSchema, "The endpoint"), 400: errors[400], 401: errors[401], 403: errors[403], 404: errors[404] } }), async (c) =>
    c.json(toJson(await mustGet(c.req.valid("param").id)), 200),
  );

  app.openapi(
    createRoute({ ...route("patch", "/webhooks/{id}", "Change an endpoint's URL or events, or enable/disable it"), request: { params: WebhookId, body: { content: { "application/json": { schema: PatchBody } }, required: true } }, responses: { 200: json(WebhookSchema, "The changed endpoint"), 400: errors[400], 401: errors[401], 403: errors[403], 404: errors[404] } }),
    async (c) => {
      const { id } = c.req.valid("param");
      // Without a JSON content type the validator sees no body at all; an empty change must be asked for as {}.
      if (!/^application\/json\b/i.test(c.req.header("content-type") ?? "")) throw new HttpError("invalid_request", 'body: send a JSON object like {"enabled": false} with Content-Type: application/json', "body");
      const body = c.req.valid("json");
      if (body.url !== undefined) await checkUrl(body.url);
      const row = await updateEndpoint(db, id, body);
      if (!row) throw new HttpError("not_found", `no webhook with id ${id}; list them with GET /webhooks`);
      return c.json(toJson(row), 200);
    },
  );

  app.openapi(createRoute({ ...route("delete", "/webhooks/{id}", "Remove an endpoint and its delivery log"), request: { params: WebhookId }, responses: { 204: { description: "Deleted" }, 400: errors[400], 401: errors[401], 403: errors[403], 404: errors[404] } }), async (c) => {
    const { id } = c.req.valid("param");
    if (!(await deleteEndpoint(db, id))) throw new HttpError("not_found", `no webhook with id ${id}; list them with GET /webhooks`);
    return c.body(null, 204);
  });

  app.openapi(
    createRoute({ ...route("post", "/webhooks/{id}/rotate-secret", "Replace the signing secret; the answer holds the new one"), request: { params: WebhookId }, responses: { 200: json(WebhookWithSecret, "The endpoint and its new secret"), 400: errors[400], 401: errors[401], 403: errors[403], 404: errors[404] } }),
    async (c) => {
      const { id } = c.req.valid("param");
      const row = await rotateEndpointSecret(db, id, newSecret());
      if (!row) throw new HttpError("not_found", `no webhook with id ${id}; list them with GET /webhooks`);
      log.info({ webhook: id }, "webhook secret rotated");
      return c.json({ ...toJson(row), secret: row.secret }, 200);
    },
  );

  app.openapi(
    createRoute({ ...route("post", "/webhooks/{id}/test", "Send a signed webhook.test event now and answer how the endpoint answered"), request: { params: WebhookId }, responses: { 200: json(TestResult, "What the endpoint answered"), 400: errors[400], 401: errors[401], 403: errors[403], 404: errors[404] } }),
    async (c) => {
      const row = await mustGet(c.req.valid("param").id);
      const event = newEvent(TEST_EVENT_TYPE, { webhookId: row.id, message: "a test event from the VOD API" });
      const body = JSON.stringify(event);
      const r = await sendWebhook({ url: row.url, secret: row.secret, eventId: event.id, body, timeoutMs: config.webhooks.timeoutMs, allowPrivate });
      await recordTestDelivery(db, row.id, { eventId: event.id, body, createdAt: new Date(event.createdAt) }, r);
      return c.json({ eventId: event.id, ok: r.ok, statusCode: r.statusCode, durationMs: r.durationMs, error: r.error }, 200);
    },
  );

  app.openapi(
    createRoute({
      ...route("get", "/webhooks/{id}/deliveries", "Recent delivery attempts, newest first"),
      request: { params: WebhookId, query: z.object({ limit: z.coerce.number({ error: "expected an integer from 1 to 200" }).int("expected an integer from 1 to 200").min(1, "expected an integer from 1 to 200").max(200, "expected an integer from 1 to 200").default(50) }) },
      responses: { 200: json(z.object({ items: z.array(AttemptSchema) }), "Attempts"), 400: errors[400], 401: errors[401], 403: errors[403], 404: errors[404] },
    }),
    async (c) => {
      const row = await mustGet(c.req.valid("param").id);
      const rows = await recentAttempts(db, row.id, c.req.valid("query").limit);
      const items = rows.map((a) => ({ eventId: a.eventId, eventType: a.eventType, attempt: a.attempt, statusCode: a.statusCode, durationMs: a.durationMs, error: a.error, nextRetryAt: a.nextRetryAt?.toISOString() ?? null, at: a.at.toISOString() }));
      return c.json({ items }, 200, { "cache-control": "no-store" });
    },
  );

  return app;
}
