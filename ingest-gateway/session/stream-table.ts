// The listen callback answers from memory: this keeps its table of streams and secrets in step with the DB.
import type { Logger } from "../../lib/log.js";
import type { Db } from "../../db/client.js";
import { listStreams } from "../../db/streams.js";
import type { NativeIngestServer } from "../srt/addon.js";

export class StreamTable {
  private timer?: NodeJS.Timeout;
  private readonly holds = new Map<string, { until: number; message: string }>();
  constructor(private readonly db: Db, private readonly server: NativeIngestServer, private readonly log: Logger, private readonly everyMs = 3000) {}

  async refresh(): Promise<number> {
    const rows = await listStreams(this.db);
    const now = Date.now();
    for (const [name, h] of this.holds) if (h.until <= now) this.holds.delete(name);
    this.server.setStreams(rows.map((r) => ({ name: r.name, passphrase: r.secret, disabled: r.state === "disabled", hold: this.holds.get(r.name)?.message })));
    return rows.length;
  }

  /**
   * Refuses a stream's callers for `ms`: an encoder whose broadcast was stopped through the API
   * reconnects by itself (OBS retries for about a minute), which would start a new broadcast at once.
   */
  async hold(name: string, ms: number): Promise<Date> {
    const until = new Date(Date.now() + ms);
    const message = `stream '${name}' was stopped through the API; it accepts callers again from ${until.toISOString()} (stop the encoder, or wait)`;
    this.holds.set(name, { until: until.getTime(), message });
    await this.refresh();
    setTimeout(() => void this.refresh().catch(() => {}), ms + 50).unref();
    return until;
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
