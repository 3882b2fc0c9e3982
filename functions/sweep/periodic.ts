import { withTryLock } from "../../db/locks.js";
import { sleep } from "../../lib/time.js";
import { sweep, type SweepDeps } from "./sweep.js";

// Any constant works; it only has to be the same in every replica of every function.
const SWEEP_LOCK = 7_301_843;

/**
 * Sweeps for playlists whose event was lost, now and every SWEEP_INTERVAL_SECONDS, until `signal`
 * aborts. An advisory try-lock makes one replica sweep while the others skip.
 */
export async function sweepPeriodically(deps: SweepDeps & { intervalMs: number; signal: AbortSignal }): Promise<void> {
  const { log, signal } = deps;
  while (!signal.aborted) {
    try {
      const r = await withTryLock(deps.db, SWEEP_LOCK, () => sweep(deps));
      if (r) log.info({ stage: "sweep", playlists: r.playlists, published: r.published.length }, "sweep done");
    } catch (err) {
      log.warn({ stage: "sweep", err: (err as Error).message }, "sweep failed; next one at the next interval");
    }
    await sleep(deps.intervalMs, { signal }).catch(() => {});
  }
}
