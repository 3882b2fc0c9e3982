import type { S3Client } from "@aws-sdk/client-s3";
import { jetstream } from "@nats-io/jetstream";
import { headers } from "@nats-io/transport-node";
import type { Config } from "../../lib/config.js";
import type { Logger } from "../../lib/log.js";
import type { NatsConnection } from "../../lib/nats.js";
import { looksFinished } from "../../lib/hls/index.js";
import { getText, listObjects } from "../../lib/s3.js";
import type { Db } from "../../db/client.js";
import { recordingsCoveringPlaylist } from "../../db/recordings.js";
import { encodeSweepEvent, isPlaylistKey } from "../events/decode.js";
import { sweepLiveLeftovers, type LeftoverResult } from "./leftovers.js";

export interface SweepDeps {
  s3: S3Client;
  db: Db;
  nc: NatsConnection;
  log: Logger;
  config: Pick<Config, "s3" | "nats" | "functions">;
  /** The clock idle ages are judged by (tests move it forward instead of waiting). */
  now?: () => number;
}

export interface SweepResult {
  playlists: number;
  published: string[];
  /** Age of the oldest finished playlist with no up-to-date recording (0 when there is none). */
  oldestUnconvertedSeconds: number;
  /** What idle live assemblies and killed uploads left behind, removed; undefined when that part failed (logged). */
  leftovers?: LeftoverResult;
}

/**
 * Events are hints and any store can lose one: find every finished playlist (#EXT-X-ENDLIST)
 * with no recording, or only one older than the playlist, and publish its event again. Then remove what
 * live assemblies of playlists that never finished left behind (leftovers.ts).
 */
export async function sweep({ s3, db, nc, log, config, now }: SweepDeps): Promise<SweepResult> {
  const js = jetstream(nc);
  const bucket = config.s3.hlsBucket;
  const result: SweepResult = { playlists: 0, published: [], oldestUnconvertedSeconds: 0 };
  for await (const obj of listObjects(s3, bucket)) {
    if (!isPlaylistKey(obj.key)) continue;
    result.playlists++;
    const covering = await recordingsCoveringPlaylist(db, obj.key);
    // Only convert sets playlist_key: a row made by the gateway (live) or by thumbnail proves nothing.
    // A source the retention job is deleting (or deleted) is not missing its recording.
    const upToDate = covering.some(
      (r) => r.sourceDeletedAt !== null || (r.playlistKey !== null && ((r.playlistKey === obj.key && r.playlistEtag === obj.etag) || r.updatedAt >= obj.lastModified)),
    );
    if (upToDate) continue;
    let text: string;
    try {
      text = await getText(s3, bucket, obj.key);
    } catch (err) {
      log.warn({ key: obj.key, err: (err as Error).message }, "sweep could not read playlist");
      continue;
    }
    if (!looksFinished(text)) continue;
    const h = headers();
    // Same playlist version swept twice within the stream's duplicate window is published once.
    h.set("Nats-Msg-Id", `sweep:${bucket}/${obj.key}@${obj.etag}`);
    await js.publish(config.nats.subject, encodeSweepEvent({ bucket, key: obj.key, size: obj.size, etag: obj.etag }), { headers: h });
    result.published.push(obj.key);
    result.oldestUnconvertedSeconds = Math.max(result.oldestUnconvertedSeconds, (Date.now() - obj.lastModified.getTime()) / 1000);
    log.info({ key: obj.key, stage: "sweep" }, "re-published event for a finished playlist with no recording");
  }
  try {
    result.leftovers = await sweepLiveLeftovers({ s3, db, log, config, now });
  } catch (err) {
    log.warn({ stage: "sweep", err: (err as Error).message }, "sweep could not remove live assembly leftovers; next one at the next interval");
  }
  return result;
}
