// VOD API list throughput: GET /recordings?limit=50 on 100k recordings, the first page and a page
// 1,000 pages deep, under load from autocannon. Target: >= 2,000 req/s and p99 < 50 ms for both.
// The API runs as its own process (as in production), so the load generator does not share its event loop.
// Run alone: node --import tsx bench/api.bench.ts   (or `make bench` with every benchmark)
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import os from "node:os";
import autocannon from "autocannon";
import { execa } from "execa";
import { sql } from "drizzle-orm";
import { createTestEnv, waitFor } from "../test/harness.js";
import { encodeCursor } from "../functions/api/cursor.js";
import { freeTcpPort } from "../test/ports.js";

const ROWS = Number(process.env.BENCH_API_ROWS ?? 100_000);
const SECONDS = Number(process.env.BENCH_API_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_API_CONNECTIONS ?? 20);
/** API processes (API_WORKERS) to measure side by side: one, and one per core (how a box would run it). */
const WORKER_COUNTS = (process.env.BENCH_API_WORKERS ?? `1,${os.availableParallelism()}`).split(",").map(Number).filter((n, i, all) => n > 0 && all.indexOf(n) === i);
const TARGET_RPS = 2000;
const TARGET_P99_MS = 50;
const root = fileURLToPath(new URL("..", import.meta.url));

const env = await createTestEnv("bench-api");
let api: ReturnType<typeof execa> | undefined;
try {
  const started = Date.now();
  // 50 streams, a year of history, mostly ready, each with a poster: what a busy catalogue looks like.
  await env.db.execute(sql`
    insert into recordings (stream_id, title, source_prefix, status, progress, file_path, thumbnail_path, duration_seconds, file_size_bytes, width, height, created_at)
    select 'stream-' || (i % 50),
           (array['Morning show','Weekly review','Product keynote','Speedrun','Town hall','Podcast','Design review','Live coding'])[1 + i % 8] || ' #' || i,
           'stream-' || (i % 50) || '/' || i,
           case when i % 97 = 0 then 'failed' when i % 53 = 0 then 'processing' else 'ready' end,
           case when i % 53 = 0 then 0.5 else 1 end,
           'stream-' || (i % 50) || '/' || i || '/recording.mp4',
           'stream-' || (i % 50) || '/' || i || '/thumbnail.jpg',
           600 + i % 3000, 50000000 + i, 1280, 720,
           now() - (i * interval '5 minutes') - (random() * interval '1 second')
    from generate_series(1, ${ROWS}) as i`);
  await env.db.execute(sql`analyze recordings`);
  console.log(`seeded ${ROWS.toLocaleString()} recordings in ${((Date.now() - started) / 1000).toFixed(1)} s`);

  // The cursor a client holds after following nextCursor 1,000 times: the 50,000th row's position.
  const deep = (await env.db.execute(sql`
    select id, to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as position
    from recordings order by created_at desc, id desc offset ${50 * 1000 - 1} limit 1`)) as unknown as { id: string; position: string }[];
  const deepCursor = encodeCursor({ createdAt: deep[0]!.position, id: deep[0]!.id });

  for (const WORKERS of WORKER_COUNTS) {
    const port = await freeTcpPort();
    const base = `http://127.0.0.1:${port}`;
    api = execa("node", ["--import", "tsx", "functions/api/main.ts"], { cwd: root, env: { ...env.env, API_PORT: String(port), API_WORKERS: String(WORKERS), LOG_LEVEL: "warn" }, reject: false, stdio: "inherit" });
    await waitFor("the API to be ready", async () => (await fetch(`${base}/ready`).catch(() => undefined))?.ok, 30_000);

    const cases = [
      { name: "first page", path: "/recordings?limit=50" },
      { name: "page 1,000 deep", path: `/recordings?limit=50&cursor=${deepCursor}` },
      { name: "first page, status=ready", path: "/recordings?limit=50&status=ready" },
      { name: "search q=keynote", path: "/recordings?limit=50&q=keynote" },
    ];
    const rows: Record<string, string | number>[] = [];
    for (const c of cases) {
      const check = await fetch(`${base}${c.path}`);
      const body = (await check.json()) as { items: unknown[]; nextCursor: string | null };
      if (check.status !== 200 || body.items.length !== 50) throw new Error(`${c.name}: expected 50 items, got ${check.status} with ${body.items?.length}`);
      // A short warm-up so JIT and the link cache settle before measuring.
      await autocannon({ url: `${base}${c.path}`, connections: CONNECTIONS, duration: 2 });
      const cpuBefore = treeCpuMs(api.pid!);
      const r = await autocannon({ url: `${base}${c.path}`, connections: CONNECTIONS, duration: SECONDS });
      const cpuPerRequest = (treeCpuMs(api.pid!) - cpuBefore) / Math.max(1, r.requests.total);
      const ok = r.requests.average >= TARGET_RPS && r.latency.p99 < TARGET_P99_MS;
      rows.push({
        case: c.name,
        "req/s": Math.round(r.requests.average),
        "p50 ms": r.latency.p50,
        "p99 ms": r.latency.p99,
        "max ms": r.latency.max,
        // What one request costs the API process, independent of what else the machine runs.
        "API CPU ms/req": Number(cpuPerRequest.toFixed(2)),
        "non-2xx": r.non2xx,
        errors: r.errors,
        target: ok ? "met" : `missed (>= ${TARGET_RPS} req/s, p99 < ${TARGET_P99_MS} ms)`,
      });
    }
    console.log(`\nGET /recordings on ${ROWS.toLocaleString()} rows, ${WORKERS} API worker(s), ${CONNECTIONS} connections, ${SECONDS} s each`);
    console.table(rows);
    api.kill("SIGTERM");
    await api;
    api = undefined;
  }
  const [load1] = readFileSync("/proc/loadavg", "utf8").split(" ");
  console.log(`machine: load average ${load1} on ${os.cpus().length} CPUs (the API, PostgreSQL and autocannon share them)`);
} finally {
  if (api) {
    api.kill("SIGTERM");
    await api;
  }
  await env.close();
}

/** CPU time (user + system, from /proc, in ms) used so far by a process and its live children (the API's workers). */
function treeCpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  const own = ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean);
  return own + children.reduce((sum, child) => sum + treeCpuMs(Number(child)), 0);
}
