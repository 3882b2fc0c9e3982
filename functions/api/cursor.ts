import { HttpError } from "../../lib/http/errors.js";

/**
 * A position in the newest-first list: the last row's created_at (to the microsecond, as PostgreSQL
 * stores it, since a JS Date would drop digits and skip or repeat rows) and its id as the tie-breaker.
 */
export interface Cursor {
  createdAt: string;
  id: string;
}

const TIMESTAMP = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?Z$/;
/**
 * `<microseconds since 1970>_<uuid>`: every string of this shape is a position, so the OpenAPI pattern
 * says exactly which cursors are accepted (a fuzzer's schema-valid cursor is answered, not refused).
 */
export const CURSOR_PATTERN = /^\d{1,16}_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const CURSOR_MESSAGE = "not a cursor this API returned; pass the nextCursor of the previous page, or leave it out to start at the newest";

export function encodeCursor(c: Cursor): string {
  const m = TIMESTAMP.exec(c.createdAt);
  if (!m) throw new Error(`a cursor needs an ISO UTC timestamp, got ${c.createdAt}`);
  const micros = BigInt(Date.parse(`${m[1]}Z`)) * 1000n + BigInt((m[2] ?? "").padEnd(6, "0"));
  return `${micros}_${c.id}`;
}

export function decodeCursor(raw: string): Cursor {
  if (!CURSOR_PATTERN.test(raw)) throw new HttpError("invalid_request", `cursor: ${CURSOR_MESSAGE}`, "cursor");
  const [digits, id] = raw.split("_") as [string, string];
  const micros = BigInt(digits);
  const seconds = new Date(Number(micros / 1000_000n) * 1000).toISOString().slice(0, 19);
  return { createdAt: `${seconds}.${String(micros % 1000_000n).padStart(6, "0")}Z`, id };
}
