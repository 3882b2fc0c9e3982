import { OpenAPIHono } from "@hono/zod-openapi";
import type { BlankEnv } from "hono/types";
import { validationError } from "./errors.js";

/** An OpenAPI router whose failed validations become the API's JSON 400s. */
export function createRouter() {
  return new OpenAPIHono<BlankEnv>({
    defaultHook: (result) => {
      if (!result.success) throw validationError(result.error, result.target);
    },
  });
}

/** The scheme and host the client used, for links back into the API. */
export function apiOrigin(url: string, forwardedProto?: string): string {
  const u = new URL(url);
  // Behind a TLS-terminating proxy the API sees http; the client's scheme is what links must use.
  if (forwardedProto === "https" || forwardedProto === "http") u.protocol = `${forwardedProto}:`;
  return u.origin;
}
