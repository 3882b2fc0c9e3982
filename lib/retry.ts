import type { Logger } from "./log.js";
import { backoffDelay, sleep } from "./time.js";

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
  for (let attempt = 1; ; attempt++) {
    const delay = backoffDelay(attempt, 250, 5000);
    try {
      return await fn();
    } catch (err) {
      if (o.signal?.aborted) throw err;
      if (o.maxMs !== undefined && Date.now() - started + delay > o.maxMs) throw err;
      o.onRetry?.();
      o.log.warn({ ...o.context, attempt, err: (err as Error).message, retryInMs: delay }, `${o.what} failed; retrying`);
      await sleep(delay, { signal: o.signal }).catch(() => {});
    }
  }
}
