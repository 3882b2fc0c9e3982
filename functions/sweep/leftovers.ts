import { randomBytes } from "node:crypto";
import type { S3Client } from "@aws-sdk/client-s3";
import type { Config } from "../../lib/config.js";
import type { Logger } from "../../lib/log.js";
import { folderOf, liveHeadKey, mp4OfLiveHead } from "../../lib/layout.js";
import { abortMultipartUpload, abortOpenUploads, deleteKeys, headObject, listMultipartUploads, listObjects } from "../../lib/s3.js";
import type { Db } from "../../db/client.js";
import { assemblyObjects, deleteHeldAssembly, idleAssemblies, releaseAssemblyLease, takeIdleAssemblyLease } from "../../db/live-assemblies.js";
import { recordingClaimed } from "../../db/recordings.js";

export interface LeftoverDeps {
  s3: S3Client;
  db: Db;
  log: Logger;
  config: Pick<Config, "s3" | "functions">;
  /** The clock ages are judged by (tests move it forward instead of waiting). */
  now?: () => number;
}

export interface LeftoverResult {
  /** Playlists whose idle live assembly was removed. */
  abandoned: string[];
  /** Multipart uploads in the recordings bucket no assembly owns, older than the idle age, aborted. */
  strayUploads: number;
  /** Head objects no assembly owns, older than the idle age, deleted. */
  strayHeads: number;
}

/** Held while removing one assembly; the assembly is idle, so a long hold blocks nobody. */
const SWEEP_LEASE_MS = 60_000;

/**
 * What live assemblies leave behind when their broadcast never ends (the packager died without
 * #EXT-X-ENDLIST) or a replica dies at the wrong moment: multipart uploads whose parts are stored forever,
 * head objects, rows. Anything untouched for LIVE_ASSEMBLY_IDLE_MINUTES goes:
 * - an idle assembly (row not updated and playlist not written since): head deleted, row deleted, upload
 *   aborted, in that order under its lease, so a live replica never races it and a sweep that dies halfway
 *   leaves either the row (done again next time) or a stray upload (aborted below next time). Should the
 *   playlist end later, convert finds no assembly and converts the whole folder; a late live update starts a
 *   new assembly from the first segment.
 * - an open multipart upload no assembly owns (a replica killed between creating it and recording it, a
 *   conversion or clip killed mid-upload whose folder is never converted again) unless a job holds the folder.
 *   This needs a store that lists a whole bucket's uploads (AWS, the Versity gateway, most others); MinIO lists
 *   one key's only, and expires such uploads itself (its api stale_uploads_expiry, 24 h by default).
 * - a head object no assembly owns (its deletion failed, or a stalled replica wrote it after losing its lease).
 */
export async function sweepLiveLeftovers({ s3, db, log, config, now = Date.now }: LeftoverDeps): Promise<LeftoverResult> {
  const idleMs = config.functions.liveAssembly.idleMs;
  const before = new Date(now() - idleMs);
  const recBucket = config.s3.recordingsBucket;
  const result: LeftoverResult = { abandoned: [], strayUploads: 0, strayHeads: 0 };

  for (const row of await idleAssemblies(db, before)) {
    // Events can be lost while a broadcast goes on: a playlist written lately is live, whatever the row says.
    const playlist = await headObject(s3, config.s3.hlsBucket, row.playlistKey);
    if (playlist?.LastModified && playlist.LastModified >= before) continue;
    const owner = `sweep/${randomBytes(4).toString("hex")}`;
    const taken = await takeIdleAssemblyLease(db, row.sourcePrefix, owner, SWEEP_LEASE_MS, before);
    if (!taken) continue;
    let removed = false;
    try {
      await deleteKeys(s3, recBucket, [liveHeadKey(taken.mp4Key)]);
      removed = await deleteHeldAssembly(db, taken.sourcePrefix, owner);
      if (!removed) continue;
      // A complete upload is the MP4 itself (its recording is convert's to finish); only an open one is aborted.
      if (taken.status !== "complete") await abortMultipartUpload(s3, recBucket, taken.mp4Key, taken.uploadId);
      // Uploads replicas killed before recording them left on the same key, unless a conversion holds the folder.
      // Found by their key, which every store lists (MinIO lists uploads of one key only, never a whole bucket).
      if (!(await recordingClaimed(db, taken.sourcePrefix))) result.strayUploads += await abortOpenUploads(s3, recBucket, taken.mp4Key);
    } finally {
      if (!removed) await releaseAssemblyLease(db, taken.sourcePrefix, owner).catch(() => {});
    }
    result.abandoned.push(taken.playlistKey);
    log.info(
      { stage: "sweep", playlist: taken.playlistKey, sourcePrefix: taken.sourcePrefix, status: taken.status, idleMinutes: Math.round((now() - taken.updatedAt.getTime()) / 60_000), partsBytes: taken.partsBytes, key: taken.mp4Key },
      "removed an idle live assembly: its playlist got no ENDLIST; the whole-folder path converts it if it ever ends",
    );
  }

  const owned = await assemblyObjects(db);
  const ownedUploads = new Set(owned.map((o) => o.uploadId));
  const ownedMp4s = new Set(owned.map((o) => o.mp4Key));

  for await (const u of listMultipartUploads(s3, recBucket)) {
    if (u.initiated >= before || ownedUploads.has(u.uploadId)) continue;
    // A conversion that has run longer than the idle age is still a conversion.
    if (await recordingClaimed(db, folderOf(u.key))) continue;
    await abortMultipartUpload(s3, recBucket, u.key, u.uploadId);
    result.strayUploads++;
    log.info({ stage: "sweep", key: u.key, uploadId: u.uploadId, initiated: u.initiated.toISOString() }, "aborted a multipart upload no live assembly or job owns");
  }

  const heads: string[] = [];
  for await (const o of listObjects(s3, recBucket)) {
    const mp4 = mp4OfLiveHead(o.key);
    if (mp4 === undefined || o.lastModified >= before || ownedMp4s.has(mp4)) continue;
    heads.push(o.key);
  }
  if (heads.length) {
    await deleteKeys(s3, recBucket, heads);
    result.strayHeads = heads.length;
    log.info({ stage: "sweep", keys: heads }, "deleted live assembly head objects no assembly owns");
  }
  return result;
}
