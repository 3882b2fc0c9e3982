import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { Hono } from "hono";
import { html } from "hono/html";
import type { ApiDeps } from "../deps.js";
import { Layout, LibraryView, WatchView, WebhooksView, StreamsView } from "./layout.js";

const here = (name: string) => new URL(`./${name}`, import.meta.url);
// Read once at start: the assets are small and never change while the process runs.
const assets = {
  "app.css": { body: readFileSync(here("app.css")), type: "text/css; charset=utf-8" },
  "app.js": { body: readFileSync(here("app.js")), type: "text/javascript; charset=utf-8" },
  "icon.svg": { body: readFileSync(here("icon.svg")), type: "image/svg+xml" },
  "hls.js": { body: readFileSync(createRequire(import.meta.url).resolve("hls.js/dist/hls.min.js")), type: "text/javascript; charset=utf-8" },
};

/** The web page: a library of recordings with live broadcasts on top, and a player page. */
export function pageRoutes(_deps: ApiDeps) {
  const app = new Hono();
  const page = (body: unknown) => html`<!doctype html>${body}`;
  app.get("/", (c) => c.html(page(<Layout title="Replay · Recordings" view="library"><LibraryView /></Layout>)));
  app.get("/watch/live/:stream", (c) => c.html(page(<Layout title="Replay · Live" view="live" data={{ stream: c.req.param("stream") }}><WatchView /></Layout>)));
  app.get("/watch/:id", (c) => c.html(page(<Layout title="Replay · Watch" view="watch" data={{ id: c.req.param("id") }}><WatchView /></Layout>)));
  app.get("/streams", (c) => c.html(page(<Layout title="Replay · Streams" view="streams"><StreamsView /></Layout>)));
  app.get("/settings/webhooks", (c) => c.html(page(<Layout title="Replay · Webhooks" view="webhooks"><WebhooksView /></Layout>)));
  app.get("/assets/:name", (c) => {
    const asset = assets[c.req.param("name") as keyof typeof assets];
    if (!asset) return c.notFound();
    return c.body(asset.body, 200, { "content-type": asset.type, "cache-control": "public, max-age=300" });
  });
  return app;
}
