import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { drizzle } from "drizzle-orm/postgres-js";
import { migrate } from "drizzle-orm/postgres-js/migrator";

const migrationsFolder = fileURLToPath(new URL("./migrations", import.meta.url));
// Any constant works; it only has to be the same in every process that migrates.
const MIGRATION_LOCK = 7_301_842;

/** Creates the database when it is missing (several processes may race to do so). */
export async function ensureDatabase(databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.slice(1));
  if (!name) throw new Error("DATABASE_URL names no database: add one, e.g. postgres://user:password@host:5432/recording_db");
  url.pathname = "/postgres";
  const admin = postgres(url.toString(), { max: 1, onnotice: () => {}, connect_timeout: 10 });
  try {
    const rows = await admin`select 1 from pg_database where datname = ${name}`;
    if (rows.length === 0) {
      try {
        await admin.unsafe(`create database "${name.replaceAll('"', '""')}"`);
      } catch (err) {
        // 42P04: created meanwhile by another process; 23505: the same race seen through pg_database's unique index.
        const code = (err as { code?: string }).code;
        if (code !== "42P04" && code !== "23505") throw err;
      }
    }
  } finally {
    await admin.end({ timeout: 5 });
  }
}

/** Drops a database (test databases when their file ends); connections still open are ended. */
export async function dropDatabase(databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.slice(1));
  url.pathname = "/postgres";
  const admin = postgres(url.toString(), { max: 1, onnotice: () => {}, connect_timeout: 10 });
  try {
    await admin.unsafe(`drop database if exists "${name.replaceAll('"', '""')}" with (force)`);
  } finally {
    await admin.end({ timeout: 5 });
  }
}

/** Applies pending migrations under an advisory lock, so services starting together do not collide. */
export async function runMigrations(databaseUrl: string): Promise<void> {
  await ensureDatabase(databaseUrl);
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {}, connect_timeout: 10 });
  try {
    await sql`select pg_advisory_lock(${MIGRATION_LOCK})`;
    try {
      await migrate(drizzle(sql), { migrationsFolder });
    } finally {
      await sql`select pg_advisory_unlock(${MIGRATION_LOCK})`;
    }
  } finally {
    await sql.end({ timeout: 5 });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { loadConfigOrExit } = await import("../lib/config.js");
  const config = loadConfigOrExit();
  try {
    await runMigrations(config.databaseUrl);
    console.log(JSON.stringify({ level: "info", msg: "migrations applied", database: new URL(config.databaseUrl).pathname.slice(1) }));
  } catch (err) {
    console.error((err as Error).message);
    process.exit(1);
  }
}
