import { withTryLock } from "../../db/locks.js";
import { recordingsNeedingAbr } from "../../db/recordings.js";
import { ACK_WAIT_MS } from "../../infra/provision.js";
import { sleep } from "../../lib/time.js";
import type { BackgroundDeps } from "../runtime/replica.js";
import { PermanentError, TransientError, type HandlerContext } from "../runtime/handler.js";
import type { StorageEvent } from "../events/decode.js";
import { giveUpPackage, packageRecording, type PackageState, type ReadyEvent } from "./package.js";

// Any constant works; the same in every package replica.
const ABR_SWEEP_LOCK = 7_301_916;
const PER_SWEEP = 20;

/**
 * Finds ready recordings whose ladder was never made (their recording.ready event was lost, or every
 * replica was off) and packages them here, one at a time, in the one replica holding the lock. Not
 * re-published as recording.ready: webhook subscribers would get a second copy of an event that did not happen.
 */
export async function sweepAbrPeriodically(deps: BackgroundDeps): Promise<void> {
  const { log, signal } = deps;
  while (!signal.aborted) {
    await sleep(deps.config.functions.sweepIntervalMs, { signal }).catch(() => {});
    if (signal.aborted) break;
    try {
      const done = await withTryLock(deps.db, ABR_SWEEP_LOCK, () => sweepOnce(deps));
      if (done) log.info({ stage: "abr-sweep", packaged: done }, "ABR sweep done");
    } catch (err) {
      log.warn({ stage: "abr-sweep", err: (err as Error).message }, "ABR sweep failed; next one at the next interval");
    }
  }
}

export async function sweepOnce(deps: BackgroundDeps): Promise<number> {
  const rows = await recordingsNeedingAbr(deps.db, PER_SWEEP);
  let n = 0;
  for (const { id } of rows) {
    if (deps.signal.aborted) break;
    const ctx: HandlerContext = { s3: deps.s3, db: deps.db, log: deps.log.child({ stage: "abr-sweep" }), config: deps.config, signal: deps.signal, progress: async () => {}, attempt: 1, worker: deps.worker, redeliverAfterMs: ACK_WAIT_MS };
    const event: ReadyEvent = { key: `sweep ${id}`, recordingId: id };
    const job: { state?: PackageState } = {};
    try {
      if ((await packageRecording(event as unknown as StorageEvent, ctx, job)) === "done") n++;
    } catch (err) {
      // A transient failure is left for the next sweep; a permanent one is recorded as the event path would.
      if (err instanceof PermanentError) await giveUpPackage(event as unknown as StorageEvent, err.message, ctx, job);
      else if (!(err instanceof TransientError)) deps.log.warn({ recording: id, err: (err as Error).message }, "ABR sweep could not package a recording");
    }
  }
  return n;
}
