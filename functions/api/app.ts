import { mountOps } from "../../lib/service.js";
import type { ApiDeps } from "./deps.js";
import { mountDocs } from "./docs.js";
import { handleError, notFound } from "./errors.js";
import { httpMetrics } from "./http-metrics.js";
import { liveRoutes } from "./live.js";
import { pageRoutes } from "./page/routes.js";
import { mountReady } from "./ready.js";
import { recordingRoutes } from "./recordings.js";
import { createRouter } from "./router.js";

/** The VOD API, its OpenAPI document and docs, ops endpoints and the web page, as one Hono app. */
export function createApp(deps: ApiDeps) {
  const app = createRouter();
  app.use(httpMetrics(deps.metrics));
  app.onError(handleError(deps.log));
  app.notFound(notFound);

  // /health says the process answers; /ready says its dependencies do too.
  mountOps(app, deps.metrics, {});
  mountReady(app, deps);

  app.route("/", recordingRoutes(deps));
  app.route("/", liveRoutes(deps));

  app.openAPIRegistry.registerComponent("securitySchemes", "bearerAuth", {
    type: "http",
    scheme: "bearer",
    description: "The API_TOKEN the API was started with. Always needed to rename or delete; for reads only when API_READS_REQUIRE_TOKEN is on.",
  });
  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "VOD API",
      version: "1.0.0",
      description: "Recordings made from live SRT broadcasts and dropped HLS folders: list, search, play, rename, delete; and the broadcasts live now. Errors are JSON: `{ error: { kind, message, field? } }`.",
    },
  });
  mountDocs(app);

  app.route("/", pageRoutes(deps));
  return app;
}
