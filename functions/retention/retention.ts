// The retention job: deletes source HLS folders and whole recordings once their retention has run out.
// One pass works through what is due in small batches; rows and objects are changed in an order that
// a crash at any point leaves consistent (or redone by the next pass), on any S3 store.
import type { S3Client } from "@aws-sdk/client-s3";
import type { Config } from "../../lib/config.js";
import type { Logger } from "../../lib/log.js";
import type { EventPublisher } from "../../lib/events.js";
import { publishRecordingEvent } from "../../lib/events.js";
import { deleteLadderAfterRow, deleteMadeObjects, deleteSourceObjects } from "../../lib/recording-objects.js";
import type { Db } from "../../db/client.js";
import { claimForDeletion, deleteClaimedRecordingRow, markSourceDeleted, recordingsDueForDeletion, sourcesDueForDeletion } from "../../db/recordings.js";

export interface RetentionDeps {
  s3: S3Client;
  db: Db;
  log: Logger;
  config: Pick<Config, "s3" | "retention">;
  events?: EventPublisher;
  /** Rows handled per query; small so a pass never holds much in memory. */
  batchSize?: number;
  /** At most this many rows per pass (the rest waits for the next pass). */
  maxPerPass?: number;
  /** Recordings of a batch handled at once (their S3 calls overlap). */
  parallel?: number;
}

async function inParallel<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, lane));
}

export interface RetentionResult {
  recordingsDeleted: number;
  sourcesDeleted: number;
  objectsDeleted: number;
}

function daysText(days: number): string {
  return days === 0 ? "at once" : `${days} day(s) after ready`;
}

/** One pass: whole recordings first (their sources go with them), then sources of the recordings kept. */
export async function runRetention(d: RetentionDeps): Promise<RetentionResult> {
  const batch = d.batchSize ?? 100;
  const max = d.maxPerPass ?? 10_000;
  const r: RetentionResult = { recordingsDeleted: 0, sourcesDeleted: 0, objectsDeleted: 0 };

  while (r.recordingsDeleted < max) {
    const due = await recordingsDueForDeletion(d.db, { globalDays: d.config.retention.recordingDays, limit: batch });
    if (due.length === 0) break;
    let progressed = 0;
    await inParallel(due, d.parallel ?? 8, async ({ recording: row, days }) => {
      const why = `recording retention: ${daysText(days)} (ready ${row.readyAt?.toISOString()})`;
      // Claimed first, so a pin cannot come between the objects going and the row going; then the source
      // (a source without its row would be converted again by the sweep), the MP4 and images, the row last.
      // A crash anywhere leaves the claimed row, still due, which the next pass finishes: never orphans.
      const claimed = await claimForDeletion(d.db, row.id);
      if (!claimed) {
        d.log.info({ recording: row.id, stream: row.streamId, stage: "retention" }, "recording kept: pinned or changed before it could be deleted");
        return;
      }
      let objects = await deleteSourceObjects(d.s3, d.config.s3, claimed);
      objects += await deleteMadeObjects(d.s3, d.config.s3, claimed);
      const gone = await deleteClaimedRecordingRow(d.db, row.id);
      if (!gone) return;
      // A package job that wrote its ladder between the objects going and the row going left objects no row names.
      objects += await deleteLadderAfterRow(d.s3, d.config.s3, gone);
      r.recordingsDeleted++;
      r.objectsDeleted += objects;
      progressed++;
      d.log.info({ recording: row.id, stream: row.streamId, objects, why, stage: "retention" }, "recording deleted by retention");
      void publishRecordingEvent(d.events, "recording.deleted", gone);
    });
    if (progressed === 0) break;
  }

  while (r.sourcesDeleted < max) {
    const due = await sourcesDueForDeletion(d.db, { globalMode: d.config.retention.source, limit: batch });
    if (due.length === 0) break;
    await inParallel(due, d.parallel ?? 8, async ({ recording: row, days }) => {
      const why = `source retention: ${days === 0 ? "delete once ready" : daysText(days ?? 0)}`;
      const objects = await deleteSourceObjects(d.s3, d.config.s3, row);
      await markSourceDeleted(d.db, row.id, why);
      r.sourcesDeleted++;
      r.objectsDeleted += objects;
      d.log.info({ recording: row.id, stream: row.streamId, prefix: row.sourcePrefix, objects, why, stage: "retention" }, "source HLS deleted by retention");
    });
  }
  return r;
}
