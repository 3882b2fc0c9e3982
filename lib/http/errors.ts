// The one error shape of every HTTP service: `{ error: { kind, message, field? } }`, one status per kind.
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ZodError } from "zod";
import type { Logger } from "../log.js";

/** What went wrong, as a client can branch on it; each kind has one HTTP status. */
export const errorKinds = {
  invalid_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  gone: 410,
  bad_source: 502,
  unavailable: 503,
  internal: 500,
} as const;
export type ErrorKind = keyof typeof errorKinds;

/** An error every service answers as JSON with its kind's status. */
export class HttpError extends Error {
  override name = "HttpError";
  constructor(
    readonly kind: ErrorKind,
    message: string,
    readonly field?: string,
    /** Extra response headers (Allow on a 405). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
  get status() {
    return errorKinds[this.kind];
  }
}

export interface ErrorBody {
  error: { kind: ErrorKind; message: string; field?: string };
}

export function errorResponse(c: Context, err: HttpError, realm = "vod"): Response {
  const body: ErrorBody = { error: { kind: err.kind, message: err.message, ...(err.field ? { field: err.field } : {}) } };
  const headers: Record<string, string> = { "cache-control": "no-store", ...err.headers };
  if (err.kind === "unauthorized") headers["www-authenticate"] = `Bearer realm="${realm}"`;
  return c.json(body, err.status, headers);
}

/** A zod failure as one 400 naming the first bad field and what it expects. */
export function validationError(error: ZodError, target: string): HttpError {
  const issue = error.issues[0];
  if (issue?.code === "unrecognized_keys") {
    const field = [...issue.path.map(String), issue.keys[0]].join(".");
    return new HttpError("invalid_request", `${field}: not a field that can be set here; remove it`, field);
  }
  const field = issue?.path.length ? issue.path.map(String).join(".") : target === "json" ? "body" : target;
  const message = issue ? issue.message : "invalid input";
  return new HttpError("invalid_request", `${field}: ${message}`, field);
}

/** The app's last resort: known errors keep their kind, anything else is a 500 without internals. */
export function handleError(log: Logger, realm?: string) {
  return (err: Error, c: Context): Response => {
    if (err instanceof HttpError) return errorResponse(c, err, realm);
    if (err instanceof HTTPException) {
      // Hono raises these itself, e.g. for a body that is not valid JSON.
      const kind = err.status === 401 ? "unauthorized" : err.status === 404 ? "not_found" : err.status < 500 ? "invalid_request" : "internal";
      const message = err.status === 400 && /json/i.test(err.message) ? "body: not valid JSON; send a JSON object like {\"title\": \"…\"}" : err.message || "bad request";
      return errorResponse(c, new HttpError(kind, message, kind === "invalid_request" ? "body" : undefined), realm);
    }
    log.error({ err: err.message, stack: err.stack, method: c.req.method, path: c.req.path }, "request failed");
    return errorResponse(c, new HttpError("internal", "the server failed to answer; try again, and see the service's logs if it keeps failing"), realm);
  };
}
