// Crash recovery at start: broadcasts the gateway began and never finished are finalised from what
// is in the store once their grace period is over; younger ones wait for their caller to come back.
import { rm } from "node:fs/promises";
import type { S3Client } from "@aws-sdk/client-s3";
import type { Config } from "../../lib/config.js";
import type { Logger } from "../../lib/log.js";
import { getText, headObject, putText } from "../../lib/s3.js";
import type { Db } from "../../db/client.js";
import { endBroadcast } from "../../db/streams.js";
import { failEmptyRecording, unfinishedBroadcasts } from "../../db/recordings.js";
import { lostBeforeFirstSegment, spoolRoot } from "./broadcast.js";
import type { SessionManager } from "./manager.js";
import { Playlist } from "./playlist.js";
import { keyIn, LIVE_PLAYLIST_NAME } from "../../lib/layout.js";

export interface RecoveryDeps {
  s3: S3Client;
  db: Db;
  log: Logger;
  config: Config;
  manager: SessionManager;
  now?: () => Date;
}

export interface RecoveryResult {
  finalised: string[];
  waiting: string[];
  alreadyEnded: string[];
}

export async function recoverSessions(d: RecoveryDeps): Promise<RecoveryResult> {
  const now = (d.now ?? (() => new Date()))();
  const bucket = d.config.s3.hlsBucket;
  const grace = d.config.gateway.reconnectGraceMs;
  const seg = d.config.gateway.segmentSeconds;
  const result: RecoveryResult = { finalised: [], waiting: [], alreadyEnded: [] };
  // Segments a crashed process left in the spool were never listed in a stored playlist: they are not part of the recording.
  await rm(spoolRoot(d.config.gateway.spoolDir), { recursive: true, force: true });

  for (const rec of await unfinishedBroadcasts(d.db)) {
    const key = keyIn(rec.sourcePrefix, LIVE_PLAYLIST_NAME);
    const log = d.log.child({ stream: rec.stream, session: rec.session, recording: rec.id, stage: "recovery" });
    const head = await headObject(d.s3, bucket, key);
    const parsed = head ? Playlist.parse(await getText(d.s3, bucket, key), seg) : undefined;
    if (parsed?.ended) {
      result.alreadyEnded.push(rec.sourcePrefix);
      await endBroadcast(d.db, rec.stream, rec.session!, now);
      continue;
    }
    const lastActivity = head?.LastModified ?? rec.createdAt;
    const idleMs = now.getTime() - lastActivity.getTime();
    if (idleMs < grace && !d.manager.get(rec.stream)) {
      d.manager.adopt(rec.stream, rec.session!, rec.id, parsed?.playlist ?? new Playlist(seg), rec.createdAt, grace - idleMs);
      result.waiting.push(rec.sourcePrefix);
      log.info({ idleMs }, "unfinished broadcast found; waiting for its caller before finalising it");
      continue;
    }
    if (parsed && parsed.playlist.entries.length > 0) {
      await putText(d.s3, bucket, key, parsed.playlist.render(true), "application/vnd.apple.mpegurl");
      log.info({ idleMs, segments: parsed.playlist.entries.length }, "finalised a broadcast left unfinished by a previous run");
    } else {
      await failEmptyRecording(d.db, rec.id, lostBeforeFirstSegment(grace));
      log.warn({ idleMs }, "an unfinished broadcast had no stored segment");
    }
    await endBroadcast(d.db, rec.stream, rec.session!, now);
    result.finalised.push(rec.sourcePrefix);
  }
  return result;
}
