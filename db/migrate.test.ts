import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import postgres from "postgres";
import { loadConfig } from "../lib/config.js";
import { runMigrations } from "./migrate.js";

const base = loadConfig({ ...process.env, NODE_ENV: "test" }).databaseUrl;
const withDb = (name: string) => {
  const u = new URL(base);
  u.pathname = `/${name}`;
  return u.toString();
};
const admin = () => postgres(withDb("postgres"), { max: 1, onnotice: () => {} });

async function tables(url: string): Promise<{ tables: string[]; applied: number }> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const t = await sql<{ tablename: string }[]>`select tablename from pg_tables where schemaname = 'public' order by tablename`;
    const m = await sql<{ n: number }[]>`select count(*)::int as n from drizzle.__drizzle_migrations`;
    return { tables: t.map((r) => r.tablename), applied: m[0]!.n };
  } finally {
    await sql.end();
  }
}

test("migrations create the database and apply to it, and applying again changes nothing", async (t) => {
  const name = `t_migrate_${randomBytes(3).toString("hex")}`;
  t.after(async () => {
    const a = admin();
    await a.unsafe(`drop database if exists ${name} with (force)`);
    await a.end();
  });
  await runMigrations(withDb(name));
  const first = await tables(withDb(name));
  assert.ok(first.tables.includes("recordings") && first.tables.includes("streams"));
  assert.ok(first.applied >= 1);
  await runMigrations(withDb(name));
  assert.deepEqual(await tables(withDb(name)), first);
});

test("several services migrating the same empty database at once all succeed", async (t) => {
  const name = `t_migrate_${randomBytes(3).toString("hex")}`;
  t.after(async () => {
    const a = admin();
    await a.unsafe(`drop database if exists ${name} with (force)`);
    await a.end();
  });
  const results = await Promise.allSettled([1, 2, 3, 4].map(() => runMigrations(withDb(name))));
  assert.deepEqual(results.map((r) => (r.status === "rejected" ? String(r.reason) : "ok")), ["ok", "ok", "ok", "ok"]);
  const after = await tables(withDb(name));
  assert.ok(after.tables.includes("recordings"));
});
