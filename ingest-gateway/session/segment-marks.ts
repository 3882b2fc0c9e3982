// Each stream's "last segment stored" time goes to the database in batches: at 100 streams one UPDATE per
// segment was 25 queries a second from the gateway's one JavaScript thread; readers (GET /live) only need it
// to the second.
import type { Db } from "../../db/client.js";
import { markSegmentsStored } from "../../db/streams.js";
import type { Logger } from "../../lib/log.js";

export class SegmentMarks {
  private pending = new Map<string, Date>();
  private readonly timer: NodeJS.Timeout;
  private flushing?: Promise<void>;

  constructor(private readonly db: Db, private readonly log: Logger, everyMs = 2000) {
    this.timer = setInterval(() => void this.flush(), everyMs).unref();
  }

  mark(stream: string, at: Date): void {
    this.pending.set(stream, at);
  }

  /** Writes what is pending; a failed batch is merged back (newer marks win) for the next one. */
  async flush(): Promise<void> {
    if (this.flushing || this.pending.size === 0) return this.flushing;
    const batch = this.pending;
    this.pending = new Map();
    this.flushing = markSegmentsStored(this.db, [...batch].map(([stream, at]) => ({ stream, at })))
      .catch((err) => {
        for (const [stream, at] of batch) if (!this.pending.has(stream)) this.pending.set(stream, at);
        this.log.warn({ err: (err as Error).message, streams: batch.size }, "could not record the last stored segments; retrying with the next batch");
      })
      .finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.flushing;
    await this.flush();
  }
}
