// Maximum broadcast length: a broadcast that reaches its stream's limit (or MAX_BROADCAST_SECONDS) ends
// as a normal end (ENDLIST last, recording converted), and the stream's callers are refused with
// `max-duration` for a while, so the encoder's automatic reconnect starts the next broadcast only after.
import type { Logger } from "../../lib/log.js";
import type { SessionManager } from "./manager.js";
import type { StreamTable } from "./stream-table.js";

export interface LimitWatchOptions {
  manager: SessionManager;
  table: StreamTable;
  log: Logger;
  defaultMaxSeconds: number;
  /** How long callers are refused after the limit ended a broadcast. */
  holdMs: number;
  everyMs?: number;
}

export function watchBroadcastLimits(o: LimitWatchOptions): { stop(): void } {
  const ending = new Set<string>();
  const check = () => {
    const now = Date.now();
    for (const live of o.manager.list(() => undefined)) {
      const max = o.table.maxBroadcastSeconds(live.stream) ?? o.defaultMaxSeconds;
      const b = o.manager.get(live.stream);
      if (!b || ending.has(b.session) || now - b.startedAt.getTime() < max * 1000) continue;
      ending.add(b.session);
      const why = `max-duration: the broadcast reached its maximum length of ${max} s`;
      o.log.warn({ stream: live.stream, session: b.session, maxSeconds: max }, "broadcast reached its maximum length; ending it");
      void (async () => {
        // Held before the connection closes, so the encoder's reconnect is refused.
        await o.table.hold(live.stream, o.holdMs, "max-duration", `reached its maximum broadcast length (${max} s)`);
        await o.manager.stop(live.stream, why);
      })()
        .catch((err) => o.log.error({ stream: live.stream, err: (err as Error).message }, "could not end a broadcast at its maximum length"))
        .finally(() => ending.delete(b.session));
    }
  };
  const timer = setInterval(check, o.everyMs ?? 500);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
