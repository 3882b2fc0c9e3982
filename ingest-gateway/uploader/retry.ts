import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "../../lib/log.js";

export interface RetryOptions {
  what: string;
  log: Logger;
  context: Record<string, unknown>;
  /** Give up after this long; undefined = until it works or `signal` aborts. */
  maxMs?: number;
  signal?: AbortSignal;
  onRetry?: () => void;
}

/** Retries with a doubling delay (0.25 s → 5 s): a store that restarts must not lose a broadcast. */
export async function retry<T>(fn: () => Promise<T>, o: RetryOptions): Promise<T> {
  const started = Date.now();
  let delay = 250;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (o.signal?.aborted) throw err;
      if (o.maxMs !== undefined && Date.now() - started + delay > o.maxMs) throw err;
      o.onRetry?.();
      o.log.warn({ ...o.context, attempt, err: (err as Error).message, retryInMs: delay }, `${o.what} failed; retrying`);
      await sleep(delay, undefined, { signal: o.signal }).catch(() => {});
      delay = Math.min(delay * 2, 5000);
    }
  }
}
