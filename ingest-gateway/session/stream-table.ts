// The listen callback answers from memory: this keeps its table of streams and secrets in step with the DB.
import type { Logger } from "../../lib/log.js";
import type { Db } from "../../db/client.js";
import { listStreams } from "../../db/streams.js";
import type { NativeIngestServer, RefusalReason } from "../srt/addon.js";

export type HoldReason = Extract<RefusalReason, "held" | "max-duration">;

export class StreamTable {
  private timer?: NodeJS.Timeout;
  private readonly holds = new Map<string, { until: number; message: string; reason: HoldReason }>();
  private readonly limits = new Map<string, number>();
  constructor(private readonly db: Db, private readonly server: NativeIngestServer, private readonly log: Logger, private readonly everyMs = 3000) {}

  async refresh(): Promise<number> {
    const rows = await listStreams(this.db);
    const now = Date.now();
    for (const [name, h] of this.holds) if (h.until <= now) this.holds.delete(name);
    this.limits.clear();
    for (const r of rows) if (r.maxBroadcastSeconds !== null) this.limits.set(r.name, r.maxBroadcastSeconds);
    this.server.setStreams(rows.map((r) => ({ name: r.name, passphrase: r.secret, disabled: r.disabled || r.state === "disabled", hold: this.holds.get(r.name)?.message })));
    return rows.length;
  }

  /**
   * Refuses a stream's callers for `ms`: an encoder whose broadcast was stopped through the API
   * reconnects by itself (OBS retries for about a minute), which would start a new broadcast at once.
   */
  async hold(name: string, ms: number, reason: HoldReason = "held", why = "was stopped through the API"): Promise<Date> {
    const until = new Date(Date.now() + ms);
    const message = `stream '${name}' ${why}; it accepts callers again from ${until.toISOString()} (stop the encoder, or wait)`;
    this.holds.set(name, { until: until.getTime(), message, reason });
    await this.refresh();
    setTimeout(() => void this.refresh().catch(() => {}), ms + 50).unref();
    return until;
  }

  /** Why a stream's callers are held now (the addon says only "held"). */
  holdReason(name: string): HoldReason | undefined {
    const h = this.holds.get(name);
    return h && h.until > Date.now() ? h.reason : undefined;
  }

  /** The stream's own maximum broadcast length, if it has one. */
  maxBroadcastSeconds(name: string): number | undefined {
    return this.limits.get(name);
  }

  /** Streams created by another process (the VOD API, SQL) become publishable within `everyMs`. */
  start(): void {
    this.timer = setInterval(() => {
      this.refresh().catch((err) => this.log.warn({ err: (err as Error).message }, "could not refresh the stream table; callers are checked against the last one"));
    }, this.everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
