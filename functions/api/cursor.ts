import { HttpError } from "../../lib/http/errors.js";

/**
 * A position in the newest-first list: the last row's created_at (to the microsecond, as PostgreSQL
 * stores it, since a JS Date would drop digits and skip or repeat rows) and its id as the tie-breaker.
 */
export interface Cursor {
  createdAt: string;
  id: string;
}

const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function encodeCursor(c: Cursor): string {
  return Buffer.from(`${c.createdAt}|${c.id}`, "utf8").toString("base64url");
}

export function decodeCursor(raw: string): Cursor {
  const [createdAt, id, extra] = Buffer.from(raw, "base64url").toString("utf8").split("|");
  if (extra !== undefined || !createdAt || !id || !TIMESTAMP.test(createdAt) || !UUID.test(id)) {
    throw new HttpError("invalid_request", "cursor: not a cursor this API returned; pass the nextCursor of the previous page, or leave it out to start at the newest", "cursor");
  }
  return { createdAt, id };
}
