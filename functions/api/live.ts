import { createRoute, z } from "@hono/zod-openapi";
import { getText, isNotFound } from "../../lib/s3.js";
import { livePlaylistKey, sessionPrefix, LIVE_PLAYLIST_NAME } from "../../lib/layout.js";
import { getLiveBroadcast, listLiveBroadcasts } from "../../db/catalog.js";
import type { ApiDeps } from "./deps.js";
import { HttpError } from "../../lib/http/errors.js";
import { bearerAuth, passThrough } from "../../lib/http/auth.js";
import { rewritePlaylist } from "./playlist.js";
import { createRouter } from "../../lib/http/app.js";
import { apiOrigin } from "./origin.js";
import { errors, LiveListSchema, StreamParam } from "./schemas.js";

const HLS_TYPE = "application/vnd.apple.mpegurl";

/** The API's link to a live broadcast's playlist (the route below). */
export function liveUrl(origin: string, stream: string): string {
  return `${origin}/live/${encodeURIComponent(stream)}/${LIVE_PLAYLIST_NAME}`;
}

/** Broadcasts now live. The gateway publishes each at its session's live playlist (lib/layout.ts). */
export function liveRoutes(deps: ApiDeps) {
  const { config, db, s3, presign } = deps;
  const read = config.api.readsRequireToken ? bearerAuth(config.api.token, "read the API") : passThrough;
  const security = config.api.readsRequireToken ? [{ bearerAuth: [] }] : [];
  const app = createRouter();

  app.openapi(
    createRoute({
      method: "get",
      path: "/live",
      tags: ["live"],
      summary: "Broadcasts now live, each with a playable HLS link",
      middleware: read,
      security,
      responses: { 200: { content: { "application/json": { schema: LiveListSchema } }, description: "Live broadcasts, newest first" }, 401: errors[401], 403: errors[403] },
    }),
    async (c) => {
      const origin = apiOrigin(c.req.url, c.req.header("x-forwarded-proto"));
      const rows = await listLiveBroadcasts(db);
      const items = await Promise.all(
        rows.map(async (r) => ({
          stream: r.stream,
          title: r.title,
          sessionId: r.sessionId!,
          recordingId: r.recordingId,
          startedAt: r.startedAt?.toISOString() ?? null,
          lastSegmentAt: r.lastSegmentAt?.toISOString() ?? null,
          playlistUrl: liveUrl(origin, r.stream),
          thumbnailUrl: r.thumbnailPath ? await presign(config.s3.recordingsBucket, r.thumbnailPath) : null,
        })),
      );
      return c.json({ items }, 200, { "cache-control": "no-store" });
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/live/{stream}/index.m3u8",
      tags: ["live"],
      summary: "The live broadcast's playlist, segments as presigned links",
      middleware: read,
      security,
      request: { params: StreamParam },
      responses: {
        200: { content: { [HLS_TYPE]: { schema: z.string() } }, description: "An EVENT playlist that grows until the broadcast ends" },
        400: errors[400], 401: errors[401], 403: errors[403], 404: errors[404], 502: errors[502],
      },
    }),
    async (c) => {
      const { stream } = c.req.valid("param");
      const { key, text, sourcePrefix } = await readLivePlaylist(deps, stream, "not_found");
      const body = await rewritePlaylist(text, { bucket: config.s3.hlsBucket, key, sourcePrefix }, presign, { vod: false, variantUrl: (k) => k });
      // Players reload a live playlist every target duration; a cached copy would freeze the stream.
      return c.body(body, 200, { "content-type": HLS_TYPE, "cache-control": "no-cache, no-store" });
    },
  );

  return app;
}

/**
 * The live playlist of a stream broadcasting now, for the live routes and live clips alike: 404 when the
 * stream is not live, `notYet` when it is but has stored nothing yet.
 */
export async function readLivePlaylist(deps: Pick<ApiDeps, "db" | "s3" | "config">, stream: string, notYet: "not_found" | "conflict"): Promise<{ live: NonNullable<Awaited<ReturnType<typeof getLiveBroadcast>>>; key: string; text: string; sourcePrefix: string }> {
  const live = await getLiveBroadcast(deps.db, stream);
  if (!live?.sessionId) throw new HttpError("not_found", `stream ${stream} is not live now; GET /live lists the broadcasts that are`);
  const key = livePlaylistKey(stream, live.sessionId);
  try {
    return { live, key, text: await getText(deps.s3, deps.config.s3.hlsBucket, key), sourcePrefix: sessionPrefix(stream, live.sessionId) };
  } catch (err) {
    if (isNotFound(err)) throw new HttpError(notYet, `stream ${stream} is live but has not stored its first segments yet; retry in a few seconds`);
    throw err;
  }
}
