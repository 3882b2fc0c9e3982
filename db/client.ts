import postgres from "postgres";
import { drizzle, type PostgresJsDatabase } from "drizzle-orm/postgres-js";
import * as schema from "./schema.js";

export type Db = PostgresJsDatabase<typeof schema> & { $client: postgres.Sql };

export function createDb(databaseUrl: string, opts: { max?: number } = {}): Db {
  const sql = postgres(databaseUrl, { max: opts.max ?? 10, onnotice: () => {}, connect_timeout: 10 });
  return drizzle(sql, { schema }) as Db;
}

export async function closeDb(db: Db): Promise<void> {
  await db.$client.end({ timeout: 5 });
}

/** Answers when the database does: the readiness check of every service that uses it. */
export async function ping(db: Db): Promise<void> {
  await db.$client`select 1`;
}
