import { Counter, Gauge, type Registry } from "prom-client";
import { withTryLock } from "../../db/locks.js";
import { sleep } from "../../lib/time.js";
import { sweep, type SweepDeps } from "./sweep.js";

// Any constant works; it only has to be the same in every replica of every function.
const SWEEP_LOCK = 7_301_843;

/**
 * Sweeps for playlists whose event was lost, now and every SWEEP_INTERVAL_SECONDS, until `signal`
 * aborts. An advisory try-lock makes one replica sweep while the others skip.
 */
export async function sweepPeriodically(deps: SweepDeps & { intervalMs: number; signal: AbortSignal; registry?: Registry }): Promise<void> {
  const { log, signal, registry } = deps;
  const registers = registry ? [registry] : [];
  const recovered = new Counter({ name: "sweep_recovered_total", help: "Events the sweep re-published for finished playlists without an up-to-date recording", registers });
  const leftovers = new Counter({
    name: "sweep_live_leftovers_total",
    help: "What the sweep removed after live broadcasts that never ended or replicas killed mid-upload: idle-assembly (upload aborted, head and state deleted), stray-upload, stray-head",
    labelNames: ["what"],
    registers,
  });
  const oldest = new Gauge({ name: "sweep_oldest_unconverted_seconds", help: "Age of the oldest finished playlist (ENDLIST) without an up-to-date recording, at the last sweep", registers });
  while (!signal.aborted) {
    try {
      const r = await withTryLock(deps.db, SWEEP_LOCK, () => sweep(deps));
      // Only the replica holding the lock reports the backlog; the others clear theirs so no stale value lingers.
      if (r) {
        recovered.inc(r.published.length);
        oldest.set(r.oldestUnconvertedSeconds);
        const l = r.leftovers;
        if (l) {
          leftovers.inc({ what: "idle-assembly" }, l.abandoned.length);
          leftovers.inc({ what: "stray-upload" }, l.strayUploads);
          leftovers.inc({ what: "stray-head" }, l.strayHeads);
        }
        log.info({ stage: "sweep", playlists: r.playlists, published: r.published.length, idleAssemblies: l?.abandoned.length, strayUploads: l?.strayUploads, strayHeads: l?.strayHeads }, "sweep done");
      } else {
        oldest.reset();
      }
    } catch (err) {
      log.warn({ stage: "sweep", err: (err as Error).message }, "sweep failed; next one at the next interval");
    }
    await sleep(deps.intervalMs, { signal }).catch(() => {});
  }
}
