// The kit's rules through a small app in memory: no server, no dependencies.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRoute, z } from "@hono/zod-openapi";
import { pino } from "pino";
import { Registry } from "prom-client";
import { allowedMethods, createHttpApp } from "./app.js";
import { bearerAuth } from "./auth.js";
import { HttpError } from "./errors.js";
import { mountOps } from "./ops.js";

const TOKEN = "unit-token-0123456789";

/** `token` "" stands for "no API_TOKEN configured". */
function app(token = TOKEN) {
  const a = createHttpApp({ log: pino({ level: "silent" }), realm: "unit" });
  mountOps(a, {
    registry: new Registry(),
    ready: {
      database: async () => {},
      nats: async () => {
        throw new Error("not connected");
      },
    },
  });
  a.openapi(
    createRoute({ method: "get", path: "/things/{id}", request: { params: z.object({ id: z.string().regex(/^\d+$/, "expected digits") }) }, responses: { 200: { description: "a thing" } } }),
    (c) => {
      const { id } = c.req.valid("param");
      if (id === "0") throw new HttpError("not_found", "no thing 0; list them with GET /things");
      return c.json({ id }, 200);
    },
  );
  a.delete("/things/:id", bearerAuth(token, "delete things"), (c) => c.body(null, 204));
  a.get("/boom", () => {
    throw new Error("secret internals");
  });
  return a;
}

const error = async (res: Response) => ((await res.json()) as { error: { kind: string; message: string; field?: string } }).error;

test("a bad parameter is a 400 naming the field", async () => {
  const res = await app().request("/things/abc");
  assert.equal(res.status, 400);
  assert.deepEqual(await error(res), { kind: "invalid_request", message: "id: expected digits", field: "id" });
});

test("a thrown HttpError keeps its kind and status; any other error is a 500 without internals", async () => {
  const missing = await app().request("/things/0");
  assert.equal(missing.status, 404);
  assert.equal((await error(missing)).kind, "not_found");
  const boom = await app().request("/boom");
  assert.equal(boom.status, 500);
  assert.doesNotMatch((await error(boom)).message, /secret internals/);
});

test("the bearer middleware: 401 without a token, 403 with a wrong one, 403 when none is configured, through with the right one", async () => {
  const a = app();
  const none = await a.request("/things/1", { method: "DELETE" });
  assert.equal(none.status, 401);
  assert.match(none.headers.get("www-authenticate") ?? "", /Bearer realm="unit"/);
  assert.equal((await a.request("/things/1", { method: "DELETE", headers: { authorization: "Basic x" } })).status, 401);
  assert.equal((await a.request("/things/1", { method: "DELETE", headers: { authorization: "Bearer wrong-token-wrong" } })).status, 403);
  assert.equal((await a.request("/things/1", { method: "DELETE", headers: { authorization: `Bearer ${TOKEN}` } })).status, 204);
  const unset = await app("").request("/things/1", { method: "DELETE" });
  assert.equal(unset.status, 403);
  assert.match((await error(unset)).message, /set API_TOKEN/);
});

test("a known path asked with another method is 405 with Allow; an unknown path is 404", async () => {
  const a = app();
  const put = await a.request("/things/1", { method: "PUT" });
  assert.equal(put.status, 405);
  assert.equal(put.headers.get("allow"), "DELETE, GET, HEAD");
  assert.equal((await error(put)).kind, "method_not_allowed");
  const nowhere = await a.request("/nowhere", { method: "PUT" });
  assert.equal(nowhere.status, 404);
  assert.deepEqual(allowedMethods([{ method: "ALL", path: "*" }, { method: "GET", path: "/docs/*" }], "/docs/init.js"), ["GET", "HEAD"]);
});

test("/health answers without asking dependencies; /ready and dependency_up name the one that is down", async () => {
  const a = app();
  const health = await a.request("/health");
  assert.equal(health.status, 200);
  assert.deepEqual(await health.json(), { status: "ok" });
  const ready = await a.request("/ready");
  assert.equal(ready.status, 503);
  assert.deepEqual(await ready.json(), { status: "unavailable", checks: { database: "ok", nats: "not connected" } });
  const metrics = await (await a.request("/metrics")).text();
  assert.match(metrics, /dependency_up\{dependency="nats"\} 0/);
  assert.match(metrics, /dependency_up\{dependency="database"\} 1/);
});
