import { Counter, type Registry } from "prom-client";
import { withTryLock } from "../../db/locks.js";
import { sleep } from "../../lib/time.js";
import { runRetention, type RetentionDeps } from "./retention.js";

// Any constant works; the same in every replica (and not the sweep's).
const RETENTION_LOCK = 7_301_844;

/**
 * Runs the retention job now and every RETENTION_INTERVAL_SECONDS until `signal` aborts; an advisory
 * try-lock makes one replica do it while the others skip.
 */
export async function retainPeriodically(deps: RetentionDeps & { intervalMs: number; signal: AbortSignal; registry?: Registry }): Promise<void> {
  const { log, signal, registry } = deps;
  const registers = registry ? [registry] : [];
  const deleted = new Counter({ name: "retention_deleted_total", help: "What the retention job deleted, by what (recording, source)", labelNames: ["what"], registers });
  const objects = new Counter({ name: "retention_objects_deleted_total", help: "Objects the retention job deleted", registers });
  while (!signal.aborted) {
    try {
      const started = Date.now();
      const r = await withTryLock(deps.db, RETENTION_LOCK, () => runRetention(deps));
      if (r) {
        deleted.inc({ what: "recording" }, r.recordingsDeleted);
        deleted.inc({ what: "source" }, r.sourcesDeleted);
        objects.inc(r.objectsDeleted);
        if (r.recordingsDeleted + r.sourcesDeleted > 0) log.info({ stage: "retention", ...r, ms: Date.now() - started }, "retention pass done");
      }
    } catch (err) {
      log.warn({ stage: "retention", err: (err as Error).message }, "retention pass failed; next one at the next interval");
    }
    await sleep(deps.intervalMs, { signal }).catch(() => {});
  }
}
