import { createHash, timingSafeEqual } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import { HttpError } from "./errors.js";

// Hashing first gives both sides the same length, which timingSafeEqual needs, and hides the token's length.
const digest = (s: string) => createHash("sha256").update(s).digest();

/**
 * `Authorization: Bearer <API_TOKEN>` for every service: 403 when no token is configured (nobody may,
 * by default), 401 when no bearer token is sent or the header is malformed, 403 when it is wrong.
 */
export function bearerAuth(token: string | undefined, action: string): MiddlewareHandler {
  const expected = token ? digest(token) : undefined;
  return async (c, next) => {
    // No token configured: no credentials could help, so it is 403 whatever was sent.
    if (!expected) throw new HttpError("forbidden", `no API_TOKEN is configured, so nobody may ${action}; set API_TOKEN (16+ characters) on the service and send it as the bearer token`);
    const header = c.req.header("authorization");
    if (!header) throw new HttpError("unauthorized", `a bearer token is needed to ${action}: send the header Authorization: Bearer <API_TOKEN>`);
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) throw new HttpError("unauthorized", "the Authorization header must be Bearer <API_TOKEN>");
    if (!timingSafeEqual(digest(match[1]!), expected)) throw new HttpError("forbidden", "the bearer token is wrong; send the API_TOKEN the service was started with");
    await next();
  };
}

export const passThrough: MiddlewareHandler = async (_c, next) => {
  await next();
};
