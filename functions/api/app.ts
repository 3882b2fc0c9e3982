import { createHttpApp } from "../../lib/http/app.js";
import { httpMetrics } from "../../lib/http/metrics.js";
import { dependencyChecks, mountOps } from "../../lib/http/ops.js";
import { ping } from "../../db/client.js";
import type { ApiDeps } from "./deps.js";
import { mountDocs } from "./docs.js";
import { clipRoutes } from "./clips.js";
import { liveRoutes } from "./live.js";
import { pageRoutes } from "./page/routes.js";
import { recordingRoutes } from "./recordings.js";
import { webhookRoutes } from "./webhooks.js";
import { usageRoutes } from "./usage.js";
import { createEventPublisher } from "../../lib/events.js";

/** The VOD API, its OpenAPI document and docs, ops endpoints and the web page, as one Hono app. */
export function createApp(deps: ApiDeps) {
  const { config, db, s3, nats } = deps;
  deps.events ??= createEventPublisher({ nats: () => nats?.(), config, log: deps.log, registry: deps.metrics });
  const app = createHttpApp({ log: deps.log, realm: "vod-api" });
  app.use(httpMetrics(deps.metrics));

  // /health says the process answers; /ready says its dependencies do too.
  mountOps(app, {
    registry: deps.metrics,
    ready: dependencyChecks({ database: () => ping(db), s3: { client: s3, buckets: [config.s3.hlsBucket, config.s3.recordingsBucket] }, nats: () => nats?.() }),
  });

  app.route("/", recordingRoutes(deps));
  app.route("/", liveRoutes(deps));
  app.route("/", webhookRoutes(deps));
  app.route("/", usageRoutes(deps));
  app.route("/", clipRoutes(deps));

  app.openAPIRegistry.registerComponent("securitySchemes", "bearerAuth", {
    type: "http",
    scheme: "bearer",
    description: "The API_TOKEN the API was started with. Always needed to rename, delete or clip; for reads only when API_READS_REQUIRE_TOKEN is on.",
  });
  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "VOD API",
      version: "1.0.0",
      description: "Recordings made from live SRT broadcasts and dropped HLS folders: list, search, play, clip, rename, delete; and the broadcasts live now (and clip them). Errors are JSON: `{ error: { kind, message, field? } }`.",
    },
  });
  mountDocs(app);

  app.route("/", pageRoutes(deps));
  return app;
}
