// GET /usage: what each stream stores (recordings, MP4 bytes, source bytes still kept), for retention decisions.
import { createRoute, z } from "@hono/zod-openapi";
import { usageByStream } from "../../db/recordings.js";
import { createRouter } from "../../lib/http/app.js";
import { bearerAuth, passThrough } from "../../lib/http/auth.js";
import type { ApiDeps } from "./deps.js";
import { errors } from "./schemas.js";

export const StreamUsageSchema = z
  .object({
    stream: z.string().openapi({ description: "The stream's name, or a dropped folder's path" }),
    recordings: z.number().int(),
    mp4Bytes: z.number(),
    sourceBytes: z.number().openapi({ description: "Bytes of source HLS segments still stored" }),
    sourcesKept: z.number().int().openapi({ description: "Recordings whose source HLS is still stored" }),
    pinned: z.number().int(),
  })
  .openapi("StreamUsage");

export const UsageSchema = z
  .object({ streams: z.array(StreamUsageSchema), total: StreamUsageSchema.omit({ stream: true }) })
  .openapi("Usage");

export function usageRoutes(deps: ApiDeps) {
  const read = deps.config.api.readsRequireToken ? bearerAuth(deps.config.api.token, "read the API") : passThrough;
  const app = createRouter();
  app.openapi(
    createRoute({
      method: "get",
      path: "/usage",
      tags: ["usage"],
      summary: "Storage used, by stream and in total",
      middleware: read,
      security: deps.config.api.readsRequireToken ? [{ bearerAuth: [] }] : [],
      responses: { 200: { content: { "application/json": { schema: UsageSchema } }, description: "Usage by stream" }, 401: errors[401], 403: errors[403] },
    }),
    async (c) => {
      const streams = await usageByStream(deps.db);
      const total = { recordings: 0, mp4Bytes: 0, sourceBytes: 0, sourcesKept: 0, pinned: 0 };
      for (const s of streams) for (const k of Object.keys(total) as (keyof typeof total)[]) total[k] += s[k];
      return c.json({ streams, total }, 200);
    },
  );
  return app;
}
