// The listen callback answers from memory: this keeps its table of streams and secrets in step with the DB.
import type { Logger } from "../../lib/log.js";
import type { Db } from "../../db/client.js";
import { listStreams } from "../../db/streams.js";
import type { NativeIngestServer } from "../srt/addon.js";

export class StreamTable {
  private timer?: NodeJS.Timeout;
  constructor(private readonly db: Db, private readonly server: NativeIngestServer, private readonly log: Logger, private readonly everyMs = 3000) {}

  async refresh(): Promise<number> {
    const rows = await listStreams(this.db);
    this.server.setStreams(rows.map((r) => ({ name: r.name, passphrase: r.secret, disabled: r.state === "disabled" })));
    return rows.length;
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
