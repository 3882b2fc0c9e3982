import { timingSafeEqual, createHash } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import { ApiError } from "./errors.js";

// Hashing first gives both sides the same length, which timingSafeEqual needs, and hides the token's length.
const digest = (s: string) => createHash("sha256").update(s).digest();

/** `Authorization: Bearer <API_TOKEN>`: 401 without one, 403 with a wrong one (or when no token is configured). */
export function bearerAuth(token: string | undefined, action: "change recordings" | "read the API"): MiddlewareHandler {
  const expected = token === undefined ? undefined : digest(token);
  return async (c, next) => {
    const header = c.req.header("authorization");
    if (!header) throw new ApiError("unauthorized", `a bearer token is needed to ${action}: send the header Authorization: Bearer <API_TOKEN>`);
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) throw new ApiError("unauthorized", "the Authorization header must be Bearer <API_TOKEN>");
    if (!expected) throw new ApiError("forbidden", `no API_TOKEN is configured, so nobody may ${action}; set API_TOKEN (16+ characters) on the API and send it as the bearer token`);
    if (!timingSafeEqual(digest(match[1]!), expected)) throw new ApiError("forbidden", "the bearer token is wrong; send the API_TOKEN the API was started with");
    await next();
  };
}

export const passThrough: MiddlewareHandler = async (_c, next) => {
  await next();
};
