import type { Child } from "hono/jsx";

/** The page shell: header with search, then the view the client script fills (library, watch, live). */
export function Layout(props: { title: string; view: "library" | "watch" | "live" | "webhooks" | "streams"; data?: Record<string, string>; children?: Child }) {
  const data = Object.fromEntries(Object.entries(props.data ?? {}).map(([k, v]) => [`data-${k}`, v]));
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{props.title}</title>
        <link rel="icon" href="/assets/icon.svg" type="image/svg+xml" />
        <link rel="stylesheet" href="/assets/app.css" />
      </head>
      <body>
        <header class="topbar">
          <a class="brand" href="/">
            <img src="/assets/icon.svg" alt="" width="28" height="28" />
            <span>Replay</span>
          </a>
          <form class="search" role="search" action="/" method="get">
            <svg viewBox="0 0 24 24" aria-hidden="true"><path d="M10.5 3a7.5 7.5 0 0 1 5.96 12.05l4.24 4.25-1.41 1.41-4.25-4.24A7.5 7.5 0 1 1 10.5 3Zm0 2a5.5 5.5 0 1 0 0 11 5.5 5.5 0 0 0 0-11Z" /></svg>
            <input id="search" name="q" type="search" placeholder="Search titles and streams" autocomplete="off" aria-label="Search recordings" />
          </form>
          <div class="topbar-actions">
            <a class="ghost-button" href="/streams">Streams</a>
            <a class="ghost-button" href="/settings/webhooks">Webhooks</a>
            <a class="ghost-button" href="/docs">API</a>
            <button id="token-button" class="ghost-button" type="button">Sign in</button>
          </div>
        </header>
        <main id="app" data-view={props.view} {...data}>
          {props.children}
        </main>
        <dialog id="token-dialog" class="dialog">
          <form method="dialog">
            <h2>API token</h2>
            <p>Renaming and deleting need the token the API was started with (API_TOKEN). It is kept in this browser only.</p>
            <input id="token-input" type="password" placeholder="API token" autocomplete="off" />
            <div class="dialog-actions">
              <button value="clear" class="ghost-button" type="submit">Forget</button>
              <button value="save" class="primary-button" type="submit">Save</button>
            </div>
          </form>
        </dialog>
        <div id="toast" class="toast" role="status" aria-live="polite"></div>
        <script src="/assets/hls.js"></script>
        <script type="module" src="/assets/app.js"></script>
      </body>
    </html>
  );
}

export function LibraryView() {
  return (
    <>
      <section id="live-section" class="section" hidden>
        <div class="section-head">
          <h2><span class="live-dot"></span>Live now</h2>
        </div>
        <div id="live-grid" class="grid"></div>
      </section>
      <section class="section">
        <div class="section-head">
          <h2>Recordings</h2>
          <div class="filters">
            <div class="chips" id="status-filter" role="radiogroup" aria-label="Status">
              <button type="button" class="chip active" data-status="">All</button>
              <button type="button" class="chip" data-status="ready">Ready</button>
              <button type="button" class="chip" data-status="processing">Processing</button>
              <button type="button" class="chip" data-status="live">Live</button>
              <button type="button" class="chip" data-status="failed">Failed</button>
            </div>
            <select id="date-filter" class="select" aria-label="Created">
              <option value="">Any time</option>
              <option value="1">Last 24 hours</option>
              <option value="7">Last 7 days</option>
              <option value="30">Last 30 days</option>
            </select>
          </div>
        </div>
        <div id="stream-filter" class="stream-filter" hidden></div>
        <div id="grid" class="grid" aria-live="polite"></div>
        <div id="grid-empty" class="empty" hidden></div>
        <div id="grid-more" class="more" hidden>
          <button type="button" class="ghost-button" id="more-button">Load more</button>
        </div>
      </section>
    </>
  );
}

/** Webhook endpoints: add one (its secret is shown once), send a test, read recent deliveries. */
export function WebhooksView() {
  return (
    <section class="section webhooks">
      <div class="section-head">
        <h2>Webhooks</h2>
      </div>
      <p class="muted">Signed (Standard Webhooks) POSTs for stream and recording events. Managing them needs the API token.</p>
      <form id="webhook-form" class="webhook-form">
        <input id="webhook-url" class="text-input" type="url" required placeholder="https://example.com/hooks/vod" aria-label="Endpoint URL" />
        <input id="webhook-description" class="text-input" type="text" placeholder="Description (optional)" aria-label="Description" />
        <button class="primary-button" type="submit">Add endpoint</button>
      </form>
      <div id="webhook-secret" class="notice" hidden></div>
      <div id="webhook-list" class="webhook-list" aria-live="polite"></div>
    </section>
  );
}

/** Storage by stream (GET /usage): recordings, MP4 bytes, source bytes still kept. */
export function StreamsView() {
  return (
    <section class="section streams">
      <div class="section-head">
        <h2>Streams</h2>
      </div>
      <p class="muted">What each stream stores. Sources are deleted after SOURCE_RETENTION, recordings after RECORDING_RETENTION_DAYS (unless pinned); streams can set their own on the gateway.</p>
      <table class="log-table usage-table">
        <thead>
          <tr><th>Stream</th><th>Recordings</th><th>MP4s</th><th>Sources kept</th><th>Source bytes</th><th>Pinned</th></tr>
        </thead>
        <tbody id="usage-rows" aria-live="polite"></tbody>
      </table>
    </section>
  );
}

export function WatchView() {
  return (
    <div class="watch">
      <div class="player-wrap">
        <div class="player" id="player"></div>
      </div>
      <aside class="details" id="details"></aside>
      <section class="section more-from" id="more-from" hidden></section>
    </div>
  );
}
