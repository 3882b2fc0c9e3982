import type { Db } from "./client.js";

/**
 * Runs `fn` only if this process wins a session-level advisory lock, held on one reserved
 * connection while `fn` runs; otherwise returns undefined at once (another replica holds it).
 */
export async function withTryLock<T>(db: Db, lock: number, fn: () => Promise<T>): Promise<T | undefined> {
  const conn = await db.$client.reserve();
  try {
    const [row] = await conn`select pg_try_advisory_lock(${lock}) as locked`;
    if (!row?.locked) return undefined;
    try {
      return await fn();
    } finally {
      await conn`select pg_advisory_unlock(${lock})`;
    }
  } finally {
    conn.release();
  }
}
