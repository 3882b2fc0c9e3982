// One way to make an HTTP service's app: typed OpenAPI routes whose failed validations, errors,
// unknown routes and wrong methods all answer the kit's one error shape.
import { OpenAPIHono } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { BlankEnv } from "hono/types";
import type { Logger } from "../log.js";
import { errorResponse, handleError, HttpError, validationError } from "./errors.js";

/** An OpenAPI router whose failed validations become the kit's JSON 400s (sub-apps use it too). */
export function createRouter() {
  return new OpenAPIHono<BlankEnv>({
    defaultHook: (result) => {
      if (!result.success) throw validationError(result.error, result.target);
    },
  });
}

/**
 * The service's root app: errors as JSON, unknown paths 404, a known path with another method 405
 * with `Allow`. `realm` names the service in WWW-Authenticate.
 */
export function createHttpApp(opts: { log: Logger; realm: string }) {
  const app = createRouter();
  app.onError(handleError(opts.log, opts.realm));
  app.notFound((c) => unmatched(c, app.routes, opts.realm));
  return app;
}

/** The methods the app's routes answer on this path (HEAD wherever GET is), none when the path is unknown. */
export function allowedMethods(routes: ReadonlyArray<{ method: string; path: string }>, path: string): string[] {
  const methods = new Set<string>();
  for (const r of routes) {
    if (r.method === "ALL" || !patternOf(r.path).test(path)) continue;
    methods.add(r.method);
    if (r.method === "GET") methods.add("HEAD");
  }
  return [...methods].sort();
}

function unmatched(c: Context, routes: ReadonlyArray<{ method: string; path: string }>, realm: string): Response {
  const allowed = allowedMethods(routes, c.req.path);
  if (allowed.length && !allowed.includes(c.req.method)) {
    return errorResponse(c, new HttpError("method_not_allowed", `${c.req.path} does not answer ${c.req.method}; it answers ${allowed.join(", ")}`, undefined, { allow: allowed.join(", ") }), realm);
  }
  return errorResponse(c, new HttpError("not_found", `no route for ${c.req.method} ${c.req.path}; see /openapi.json for the routes`), realm);
}

const patterns = new Map<string, RegExp>();

/** Hono's route syntax (`/recordings/:id`, `/docs/*`, `:name{regex}`) as an anchored regex. */
function patternOf(route: string): RegExp {
  let re = patterns.get(route);
  if (!re) {
    const source = route
      .split("/")
      .map((part) => {
        if (part === "*") return ".*";
        const param = /^:\w+(?:\{(.+)\})?(\?)?$/.exec(part);
        if (param) return param[1] ? `(?:${param[1]})` : "[^/]+";
        return part.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replaceAll("*", ".*");
      })
      .join("/");
    re = new RegExp(`^${source}/?$`);
    patterns.set(route, re);
  }
  return re;
}
