import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { Hono } from "hono";

// Swagger UI served from the installed swagger-ui-dist, not a CDN: the docs work on closed networks.
const require = createRequire(import.meta.url);
const asset = (name: string) => readFileSync(require.resolve(`swagger-ui-dist/${name}`));
const files = {
  "swagger-ui.css": { body: asset("swagger-ui.css"), type: "text/css; charset=utf-8" },
  "swagger-ui-bundle.js": { body: asset("swagger-ui-bundle.js"), type: "text/javascript; charset=utf-8" },
};

const page = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>VOD API</title><link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div><script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script></body></html>`;
const init = `window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });`;

export function mountDocs(app: Hono<any>): void {
  app.get("/docs", (c) => c.html(page));
  app.get("/docs/init.js", (c) => c.body(init, 200, { "content-type": "text/javascript; charset=utf-8" }));
  for (const [name, f] of Object.entries(files)) {
    app.get(`/docs/${name}`, (c) => c.body(f.body, 200, { "content-type": f.type, "cache-control": "public, max-age=86400" }));
  }
}
