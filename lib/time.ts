// Waiting and backing off: the one sleep and the one doubling delay every service and test uses.

/**
 * Resolves after `ms`. With a signal, rejects with the signal's reason as soon as it aborts.
 * `unref` lets the process exit meanwhile (bounds on shutdown waits).
 */
export function sleep(ms: number, opts: { signal?: AbortSignal; unref?: boolean } = {}): Promise<void> {
  const { signal, unref } = opts;
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(done, Math.max(0, ms));
    if (unref) t.unref();
    function done() {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }
    function onAbort() {
      clearTimeout(t);
      reject(signal!.reason);
    }
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** The delay before retry number `attempt` (from 1): `baseMs` doubling each time, never above `maxMs`. */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
}
