import type { CatalogRecording, CatalogSummary } from "../../db/catalog.js";
import type { ApiDeps } from "./deps.js";
import type { z } from "@hono/zod-openapi";
import type { RecordingSchema, RecordingSummarySchema } from "./schemas.js";
import { liveUrl } from "./live.js";


/** A name safe in a Content-Disposition header: browsers save the MP4 under the recording's title. */
export function downloadName(title: string): string {
  const base = title.normalize("NFKD").replace(/[^\w .-]+/g, "_").replace(/\s+/g, " ").trim().slice(0, 100);
  return `${base || "recording"}.mp4`;
}

/** Poster links for a page of recordings, awaiting only the ones not already signed. */
export async function posterUrls(deps: ApiDeps, rows: Pick<CatalogSummary, "thumbnailPath">[]): Promise<(string | null)[]> {
  const bucket = deps.config.s3.recordingsBucket;
  const urls = rows.map((r) => (r.thumbnailPath ? (deps.presign.cached(bucket, r.thumbnailPath) ?? null) : null));
  await Promise.all(
    rows.map(async (r, i) => {
      if (r.thumbnailPath && urls[i] === null) urls[i] = await deps.presign(bucket, r.thumbnailPath);
    }),
  );
  return urls;
}

export function toSummary(row: CatalogSummary, origin: string, thumbnailUrl: string | null): z.infer<typeof RecordingSummarySchema> {
  return {
    id: row.id,
    stream: row.streamId,
    title: row.title,
    status: row.status,
    progress: row.status === "ready" ? 1 : row.progress,
    error: row.error,
    durationSeconds: row.durationSeconds,
    fileSizeBytes: row.fileSizeBytes,
    width: row.width,
    height: row.height,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
    thumbnailUrl,
    storyboardUrl: row.storyboardVttPath ? `${origin}/recordings/${row.id}/storyboard.vtt` : null,
    kind: row.kind,
    parentId: row.parentId,
    clipStart: row.clipStart,
    clipEnd: row.clipEnd,
  };
}

export async function toDetail(deps: ApiDeps, row: CatalogRecording, origin: string): Promise<z.infer<typeof RecordingSchema>> {
  const { recordingsBucket, presignExpirySeconds } = deps.config.s3;
  const playable = row.filePath && row.status === "ready";
  return {
    ...toSummary(row, origin, (await posterUrls(deps, [row]))[0]!),
    videoCodec: row.videoCodec,
    audioCodec: row.audioCodec,
    sourcePrefix: row.sourcePrefix,
    sourceFolder: row.sourcePrefix,
    sessionId: row.sessionId,
    videoUrl: playable ? await deps.presign(recordingsBucket, row.filePath!, { contentType: "video/mp4", filename: downloadName(row.title) }) : null,
    hlsUrl: row.sourceDeletedAt ? null : `${origin}/recordings/${row.id}/hls`,
    pinned: row.pinned,
    source: { kept: !row.sourceDeletedAt, deletedAt: row.sourceDeletedAt ? new Date(row.sourceDeletedAt).toISOString() : null, reason: row.sourceDeletedReason },
    liveUrl: row.status === "live" ? liveUrl(origin, row.streamId) : null,
    // Links are reused for half their lifetime, so the earliest any of them ends is half the expiry from now.
    warnings: row.warnings ?? [],
    audioTracks: (row.audioTracks ?? []).map((t) => ({ language: t.language, name: t.name, default: t.isDefault })),
    subtitles: (row.subtitles ?? []).map((t, i) => ({ language: t.language, name: t.name, url: `${origin}/recordings/${row.id}/subtitles/${i}` })),
    abrStatus: row.abrStatus,
    abrProgress: row.abrStatus === "ready" ? 1 : row.abrProgress,
    abrError: row.abrError,
    abrUrl: row.abrStatus === "ready" && row.abrMasterPath ? `${origin}/recordings/${row.id}/abr/master.m3u8` : null,
    dashUrl: row.abrStatus === "ready" && row.abrDashPath ? `${origin}/recordings/${row.id}/abr/manifest.mpd` : null,
    renditions: row.abrStatus === "ready" ? (row.abrRenditions ?? []).map(({ playlist: _playlist, ...r }) => r) : [],
    linksExpireAt: new Date(Date.now() + (presignExpirySeconds * 1000) / 2).toISOString(),
  };
}
