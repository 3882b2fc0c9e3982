import { createRoute, z } from "@hono/zod-openapi";
import { deleteKeys, deletePrefix, getText, isNotFound } from "../../lib/s3.js";
import { folderOf, holdsClips, keyIn, keysOfRecording, listPrefix, LIVE_PLAYLIST_NAME } from "../../lib/layout.js";
import { getRecording, listRecordings, type CatalogRecording } from "../../db/catalog.js";
import { deleteRecordingRow, renameRecording, setPinned } from "../../db/recordings.js";
import { publishRecordingEvent } from "../../lib/events.js";
import { deleteLadderAfterRow, deleteMadeObjects, deleteSourceObjects } from "../../lib/recording-objects.js";
import type { ApiDeps } from "./deps.js";
import { HttpError } from "../../lib/http/errors.js";
import { bearerAuth, passThrough } from "../../lib/http/auth.js";
import { decodeCursor, encodeCursor } from "./cursor.js";
import { rewritePlaylist } from "./playlist.js";
import { rewriteStoryboard } from "./storyboard.js";
import { posterUrls, toDetail, toSummary } from "./recording-json.js";
import { createRouter } from "../../lib/http/app.js";
import { apiOrigin } from "./origin.js";
import { AbrFileParam, errors, HlsQuery, IdParam, ListQuery, RecordingPageSchema, RecordingSchema, RenameBody, SubtitleParam } from "./schemas.js";

const json = <T extends z.ZodType>(schema: T, description: string) => ({ content: { "application/json": { schema } }, description });
const bearer = [{ bearerAuth: [] }];
const HLS_TYPE = "application/vnd.apple.mpegurl";

export function recordingRoutes(deps: ApiDeps) {
  const { config, db, s3, presign, log } = deps;
  const { hlsBucket, recordingsBucket } = config.s3;
  const read = config.api.readsRequireToken ? bearerAuth(config.api.token, "read the API") : passThrough;
  const write = bearerAuth(config.api.token, "change recordings");
  const readSecurity = config.api.readsRequireToken ? bearer : [];
  const origin = (c: { req: { url: string; header(n: string): string | undefined } }) => apiOrigin(c.req.url, c.req.header("x-forwarded-proto"));

  async function mustGet(id: string): Promise<CatalogRecording> {
    const row = await getRecording(db, id);
    if (!row) throw new HttpError("not_found", `no recording with id ${id}; list them with GET /recordings`);
    return row;
  }

  const app = createRouter();

  app.openapi(
    createRoute({
      method: "get",
      path: "/recordings",
      tags: ["recordings"],
      summary: "List recordings, newest first",
      description: "Keyset-paginated: pass `nextCursor` back as `cursor` until it is null. Filters combine with AND.",
      middleware: read,
      security: readSecurity,
      request: { query: ListQuery },
      responses: { 200: json(RecordingPageSchema, "A page of recordings"), 400: errors[400], 401: errors[401], 403: errors[403] },
    }),
    async (c) => {
      const q = c.req.valid("query");
      const after = q.cursor ? decodeCursor(q.cursor) : undefined;
      const rows = await listRecordings(db, { status: q.status, kind: q.kind, parent: q.parent, stream: q.stream, from: q.from, to: q.to, q: q.q, after }, q.limit + 1);
      const page = rows.slice(0, q.limit);
      const last = page[page.length - 1];
      const base = origin(c);
      const posters = await posterUrls(deps, page);
      const items = page.map((r, i) => toSummary(r, base, posters[i]!));
      const nextCursor = rows.length > q.limit && last ? encodeCursor({ createdAt: last.position, id: last.id }) : null;
      return c.json({ items, nextCursor }, 200, { "cache-control": "no-store" });
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/recordings/{id}",
      tags: ["recordings"],
      summary: "One recording, with presigned expiring links",
      middleware: read,
      security: readSecurity,
      request: { params: IdParam },
      responses: { 200: json(RecordingSchema, "The recording"), 400: errors[400], 401: errors[401], 403: errors[403], 404: errors[404] },
    }),
    async (c) => {
      const row = await mustGet(c.req.valid("param").id);
      return c.json(await toDetail(deps, row, origin(c)), 200, { "cache-control": "no-store" });
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/recordings/{id}/video",
      tags: ["recordings"],
      summary: "Redirect to the presigned MP4 (byte ranges work)",
      middleware: read,
      security: readSecurity,
      request: { params: IdParam },
      responses: { 302: { description: "Location is the presigned MP4 link" }, 400: errors[400], 401: errors[401], 403: errors[403], 404: errors[404], 409: errors[409] },
    }),
    async (c) => {
      const row = await mustGet(c.req.valid("param").id);
      if (row.status !== "ready" || !row.filePath) {
        const why = row.status === "failed" ? `its conversion failed: ${row.error ?? "no reason recorded"}` : `it is ${row.status}${row.status === "processing" ? ` (${Math.round(row.progress * 100)}%)` : ""}`;
        throw new HttpError("conflict", `recording ${row.id} has no MP4 yet because ${why}; try again when its status is ready, or play ${"/recordings/" + row.id + "/hls"}`);
      }
      const detail = await toDetail(deps, row, origin(c));
      c.header("cache-control", "no-store");
      return c.redirect(detail.videoUrl!, 302);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/recordings/{id}/thumbnail",
      tags: ["recordings"],
      summary: "Redirect to the presigned poster JPEG",
      middleware: read,
      security: readSecurity,
      request: { params: IdParam },
      responses: { 302: { description: "Location is the presigned JPEG link" }, 400: errors[400], 401: errors[401], 403: errors[403], 404: errors[404] },
    }),
    async (c) => {
      const row = await mustGet(c.req.valid("param").id);
      if (!row.thumbnailPath) throw new HttpError("not_found", `recording ${row.id} has no thumbnail yet; one is made shortly after its source arrives`);
      c.header("cache-control", "no-store");
      return c.redirect((await posterUrls(deps, [row]))[0]!, 302);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/recordings/{id}/hls",
      tags: ["recordings"],
      summary: "The source HLS as a VOD playlist with presigned segment links",
      middleware: read,
      security: readSecurity,
      request: { params: IdParam, query: HlsQuery },
      responses: {
        200: { content: { [HLS_TYPE]: { schema: z.string() } }, description: "An M3U8 playlist" },
        400: errors[400], 401: errors[401], 403: errors[403], 404: errors[404], 410: errors[410], 502: errors[502],
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const { variant } = c.req.valid("query");
      const row = await mustGet(id);
      if (row.sourceDeletedAt)
        throw new HttpError("gone", `the source HLS of recording ${id} was deleted on ${new Date(row.sourceDeletedAt).toISOString()} (${row.sourceDeletedReason ?? "retention"}); play the MP4 instead (GET /recordings/${id}/video)`);
      const sourcePrefix = row.sourcePrefix;
      const key = variant ?? row.playlistKey ?? keyIn(sourcePrefix, LIVE_PLAYLIST_NAME);
      if (variant && (!variant.startsWith(listPrefix(sourcePrefix)) || variant.split("/").includes("..") || !variant.endsWith(".m3u8"))) {
        // Any string is a well-formed variant key; one this recording does not have is not found (and nothing outside its folder is read).
        throw new HttpError("not_found", `recording ${id} has no variant playlist ${variant}; use the links its master playlist (GET /recordings/${id}/hls) gives`);
      }
      let text: string;
      try {
        text = await getText(s3, hlsBucket, key);
      } catch (err) {
        if (isNotFound(err)) throw new HttpError("not_found", `the source playlist ${key} is no longer in the ${hlsBucket} bucket; play the MP4 instead (GET /recordings/${id}/video)`);
        throw err;
      }
      const base = `${origin(c)}/recordings/${id}/hls`;
      const body = await rewritePlaylist(text, { bucket: hlsBucket, key, sourcePrefix }, presign, {
        vod: row.status !== "live",
        variantUrl: (k) => `${base}?variant=${encodeURIComponent(k)}`,
      });
      return c.body(body, 200, { "content-type": HLS_TYPE, "cache-control": "no-store" });
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/recordings/{id}/abr/{file}",
      tags: ["recordings"],
      summary: "The ABR ladder: master.m3u8, media playlists (segments presigned), manifest.mpd, and segments (redirected to presigned links)",
      description: "Start at the recording's `abrUrl` (HLS) or `dashUrl` (DASH); every other file is named relative to them.",
      middleware: read,
      security: readSecurity,
      request: { params: AbrFileParam },
      responses: {
        200: { content: { [HLS_TYPE]: { schema: z.string() }, "application/dash+xml": { schema: z.string() } }, description: "A playlist or manifest" },
        302: { description: "A segment: redirected to its presigned link" },
        400: errors[400], 401: errors[401], 403: errors[403], 404: errors[404],
      },
    }),
    async (c) => {
      const { id, file } = c.req.valid("param");
      const row = await mustGet(id);
      if (row.abrStatus !== "ready" || !row.abrMasterPath) {
        const why = row.abrStatus === "failed" ? `its packaging failed: ${row.abrError}` : row.abrStatus ? `its ladder is ${row.abrStatus}` : "it has no ladder (ABR_LADDER is off, or it is not ready)";
        throw new HttpError("not_found", `recording ${id} has no ABR ladder yet because ${why}; play the MP4 (videoUrl) or the source HLS (hlsUrl) meanwhile`);
      }
      const folder = folderOf(row.abrMasterPath);
      const key = `${folder}/${file}`;
      if (file.endsWith(".m4s")) return c.redirect(await presign(recordingsBucket, key), 302);
      let text: string;
      try {
        text = await getText(s3, recordingsBucket, key);
      } catch (err) {
        if (isNotFound(err)) throw new HttpError("not_found", `recording ${id}'s ladder has no ${file}; use the files its master playlist or manifest names`);
        throw err;
      }
      if (file.endsWith(".mpd")) return c.body(text, 200, { "content-type": "application/dash+xml", "cache-control": "no-store" });
      // The master names media playlists relative to itself: they resolve to this route. Media playlists get presigned segments.
      const body = file === "master.m3u8" ? text : await rewritePlaylist(text, { bucket: recordingsBucket, key, sourcePrefix: folder }, presign, { vod: true, variantUrl: (k) => k });
      return c.body(body, 200, { "content-type": HLS_TYPE, "cache-control": "no-store" });
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/recordings/{id}/storyboard.vtt",
      tags: ["recordings"],
      summary: "The storyboard's WebVTT, each tile a presigned sprite link with #xywh",
      middleware: read,
      security: readSecurity,
      request: { params: IdParam },
      responses: { 200: { content: { "text/vtt": { schema: z.string() } }, description: "WebVTT" }, 400: errors[400], 401: errors[401], 403: errors[403], 404: errors[404] },
    }),
    async (c) => {
      const row = await mustGet(c.req.valid("param").id);
      if (!row.storyboardVttPath) throw new HttpError("not_found", `recording ${row.id} has no storyboard yet; it is made after the recording is converted`);
      let vtt: string;
      try {
        vtt = await getText(s3, recordingsBucket, row.storyboardVttPath);
      } catch (err) {
        if (isNotFound(err)) throw new HttpError("not_found", `the storyboard ${row.storyboardVttPath} is missing from the ${recordingsBucket} bucket`);
        throw err;
      }
      const key = row.storyboardVttPath;
      const body = await rewriteStoryboard(vtt, { bucket: recordingsBucket, key, sourcePrefix: folderOf(key) }, presign);
      return c.body(body, 200, { "content-type": "text/vtt; charset=utf-8", "cache-control": "no-store" });
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/recordings/{id}/subtitles/{index}",
      tags: ["recordings"],
      summary: "A subtitle side-car (WebVTT), same-origin so <track> elements can load it",
      middleware: read,
      security: readSecurity,
      request: { params: SubtitleParam },
      responses: { 200: { content: { "text/vtt": { schema: z.string() } }, description: "WebVTT" }, 400: errors[400], 401: errors[401], 403: errors[403], 404: errors[404] },
    }),
    async (c) => {
      const { id, index } = c.req.valid("param");
      const row = await mustGet(id);
      const sub = row.subtitles?.[index];
      if (!sub) throw new HttpError("not_found", `recording ${row.id} has ${row.subtitles?.length ?? 0} subtitle track(s); their urls are listed by GET /recordings/${row.id}`);
      try {
        return c.body(await getText(s3, recordingsBucket, sub.key), 200, { "content-type": "text/vtt; charset=utf-8", "cache-control": "no-store" });
      } catch (err) {
        if (isNotFound(err)) throw new HttpError("not_found", `the subtitle file ${sub.key} is missing from the ${recordingsBucket} bucket`);
        throw err;
      }
    },
  );

  app.openapi(
    createRoute({
      method: "patch",
      path: "/recordings/{id}",
      tags: ["recordings"],
      summary: "Rename a recording and/or pin it (a pinned recording is kept regardless of retention)",
      middleware: write,
      security: bearer,
      request: { params: IdParam, body: { content: { "application/json": { schema: RenameBody } }, required: true } },
      responses: { 200: json(RecordingSchema, "The renamed recording"), 400: errors[400], 401: errors[401], 403: errors[403], 404: errors[404], 409: errors[409] },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const { title, pinned } = c.req.valid("json");
      const pin = pinned === undefined ? "set" : await setPinned(db, id, pinned);
      if (pin === "deleting") throw new HttpError("conflict", `recording ${id} is being deleted by retention (RECORDING_RETENTION_DAYS) and can no longer be pinned`);
      const found = pin === "set" && (title === undefined || (await renameRecording(db, id, title)));
      if (!found) throw new HttpError("not_found", `no recording with id ${id}; list them with GET /recordings`);
      log.info({ recording: id, title, pinned }, "recording changed");
      return c.json(await toDetail(deps, await mustGet(id), origin(c)), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/recordings/{id}",
      tags: ["recordings"],
      summary: "Delete a recording: its MP4, thumbnail, storyboard, everything under its source prefix, and its row",
      middleware: write,
      security: bearer,
      request: { params: IdParam },
      responses: { 204: { description: "Deleted" }, 400: errors[400], 401: errors[401], 403: errors[403], 404: errors[404], 409: errors[409] },
    }),
    async (c) => {
      const row = await mustGet(c.req.valid("param").id);
      if (row.status === "live") throw new HttpError("conflict", `recording ${row.id} is still being broadcast; stop the stream first, then delete it`);
      const started = Date.now();
      // The source prefix goes first: a folder left behind without its row would be converted again by the sweep.
      let objects = await deleteSourceObjects(s3, config.s3, row);
      objects += await deleteMadeObjects(s3, config.s3, row);
      await deleteRecordingRow(db, row.id);
      objects += await deleteLadderAfterRow(s3, config.s3, row);
      void publishRecordingEvent(deps.events, "recording.deleted", row);
      log.info({ recording: row.id, stream: row.streamId, objects, ms: Date.now() - started }, "recording deleted");
      return c.body(null, 204);
    },
  );

  return app;
}
