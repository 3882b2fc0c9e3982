// The web page's script: plain ES module, no build. It talks to the same API any client uses.
const app = document.getElementById("app");
const TOKEN_KEY = "replay.apiToken";
const PAGE_SIZE = 24;

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "style") el.style.cssText = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== undefined && c !== null && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

function svg(path) {
  const s = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  s.setAttribute("viewBox", "0 0 24 24");
  const p = document.createElementNS("http://www.w3.org/2000/svg", "path");
  p.setAttribute("d", path);
  s.append(p);
  return s;
}
const ICON_LIVE = "M12 10a2 2 0 1 1 0 4 2 2 0 0 1 0-4Zm-4.95-2.36 1.42 1.42a5 5 0 0 0 0 5.88l-1.42 1.42a7 7 0 0 1 0-8.72Zm9.9 0a7 7 0 0 1 0 8.72l-1.42-1.42a5 5 0 0 0 0-5.88l1.42-1.42ZM4.22 4.81l1.41 1.42a9 9 0 0 0 0 11.54l-1.41 1.42a11 11 0 0 1 0-14.38Zm15.56 0a11 11 0 0 1 0 14.38l-1.41-1.42a9 9 0 0 0 0-11.54l1.41-1.42Z";
const ICON_FILM = "M4 4h16a2 2 0 0 1 2 2v12a2 2 0 0 1-2 2H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2Zm0 2v2h2V6H4Zm14 0v2h2V6h-2ZM4 10v4h2v-4H4Zm14 0v4h2v-4h-2ZM4 16v2h2v-2H4Zm14 0v2h2v-2h-2ZM8 6v12h8V6H8Z";

// --- API access -------------------------------------------------------------------------------

const token = () => localStorage.getItem(TOKEN_KEY) || "";

class ApiFailure extends Error {
  constructor(status, body) {
    super(body?.error?.message || `the API answered ${status}`);
    this.status = status;
    this.kind = body?.error?.kind;
  }
}

async function api(path, opts = {}) {
  const headers = { ...(opts.headers || {}) };
  if (token()) headers.authorization = `Bearer ${token()}`;
  if (opts.json !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(path, { method: opts.method || "GET", headers, body: opts.json !== undefined ? JSON.stringify(opts.json) : undefined });
  if (res.status === 204) return null;
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new ApiFailure(res.status, body);
  return body;
}

/** Runs a write; on 401/403 asks for the token once and retries. */
async function withToken(run) {
  try {
    return await run();
  } catch (err) {
    if (err instanceof ApiFailure && (err.status === 401 || err.status === 403)) {
      toast(err.message, true);
      if (await askToken()) return run();
    }
    throw err;
  }
}

function askToken() {
  const dialog = document.getElementById("token-dialog");
  const input = document.getElementById("token-input");
  input.value = token();
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => {
        if (dialog.returnValue === "save" && input.value.trim()) localStorage.setItem(TOKEN_KEY, input.value.trim());
        if (dialog.returnValue === "clear") localStorage.removeItem(TOKEN_KEY);
        updateTokenButton();
        resolve(dialog.returnValue === "save");
      },
      { once: true },
    );
  });
}

function updateTokenButton() {
  document.getElementById("token-button").textContent = token() ? "Signed in" : "Sign in";
}

let toastTimer;
function toast(message, isError = false) {
  const el = document.getElementById("toast");
  el.textContent = message;
  el.className = `toast show${isError ? " error" : ""}`;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (el.className = "toast"), 3500);
}

// --- Formatting -------------------------------------------------------------------------------

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  const s = Math.round(seconds);
  const hh = Math.floor(s / 3600), mm = Math.floor((s % 3600) / 60), ss = s % 60;
  return hh ? `${hh}:${String(mm).padStart(2, "0")}:${String(ss).padStart(2, "0")}` : `${mm}:${String(ss).padStart(2, "0")}`;
}

function ago(iso) {
  const sec = (Date.now() - new Date(iso).getTime()) / 1000;
  const units = [["year", 31536000], ["month", 2592000], ["week", 604800], ["day", 86400], ["hour", 3600], ["minute", 60]];
  for (const [name, size] of units) if (sec >= size) return new Intl.RelativeTimeFormat("en", { numeric: "auto" }).format(-Math.floor(sec / size), name);
  return "just now";
}

function bytes(n) {
  if (!n) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(n >= 10 || i === 0 ? 0 : 1)} ${units[i]}`;
}

const STATUS_LABEL = { live: "Live", processing: "Processing", ready: "Ready", failed: "Failed" };

function badge(status, progress) {
  const label = status === "processing" ? `Processing ${Math.round((progress || 0) * 100)}%` : STATUS_LABEL[status];
  return h("span", { class: `badge ${status}`, "data-testid": "status" }, status === "live" ? h("span", { class: "live-dot", style: "width:7px;height:7px;background:#fff" }) : null, label);
}

// --- Storyboard hover preview -----------------------------------------------------------------

const storyboards = new Map();

/** Cues of a storyboard WebVTT: [{start, end, url, x, y, w, h}]. */
async function loadStoryboard(url) {
  if (!storyboards.has(url)) {
    storyboards.set(url, (async () => {
      const res = await fetch(url, { headers: token() ? { authorization: `Bearer ${token()}` } : {} });
      if (!res.ok) return [];
      const lines = (await res.text()).split(/\r?\n/);
      const cues = [];
      const time = (t) => t.split(":").reduce((acc, part) => acc * 60 + parseFloat(part), 0);
      for (let i = 0; i < lines.length - 1; i++) {
        if (!lines[i].includes("-->")) continue;
        const [a, b] = lines[i].split("-->").map((s) => s.trim().split(/\s+/)[0]);
        const target = lines[i + 1].trim();
        const m = /#xywh=(\d+),(\d+),(\d+),(\d+)/.exec(target);
        if (!m) continue;
        cues.push({ start: time(a), end: time(b), url: target.slice(0, target.indexOf("#")), x: +m[1], y: +m[2], w: +m[3], h: +m[4] });
      }
      return cues;
    })().catch(() => []));
  }
  return storyboards.get(url);
}

function attachPreview(thumb, rec) {
  if (!rec.storyboardUrl) return;
  const preview = h("div", { class: "preview" });
  const scrub = h("div", { class: "scrub" });
  thumb.append(preview, scrub);
  thumb.addEventListener("mousemove", async (e) => {
    const cues = await loadStoryboard(rec.storyboardUrl);
    if (!cues.length) return;
    const box = thumb.getBoundingClientRect();
    const fraction = Math.min(Math.max((e.clientX - box.left) / box.width, 0), 0.999);
    const total = rec.durationSeconds || cues[cues.length - 1].end;
    const t = fraction * total;
    const cue = cues.find((c) => t >= c.start && t < c.end) || cues[cues.length - 1];
    // Scale the tile to the card: the sprite is drawn bigger so one tile fills the box.
    const sx = box.width / cue.w, sy = box.height / cue.h;
    const img = preview.dataset.sprite === cue.url ? null : new Image();
    if (img) { img.src = cue.url; preview.dataset.sprite = cue.url; preview.style.backgroundImage = `url("${cue.url}")`; img.onload = () => { preview.dataset.sheetW = img.naturalWidth; preview.dataset.sheetH = img.naturalHeight; position(); }; }
    function position() {
      if (!preview.dataset.sheetW) return;
      preview.style.backgroundSize = `${preview.dataset.sheetW * sx}px ${preview.dataset.sheetH * sy}px`;
      preview.style.backgroundPosition = `${-cue.x * sx}px ${-cue.y * sy}px`;
      preview.classList.add("ready");
      scrub.classList.add("ready");
    }
    position();
    scrub.style.width = `${fraction * 100}%`;
  });
}

// --- Library ----------------------------------------------------------------------------------

function recordingCard(rec) {
  const thumb = h("div", { class: "thumb" });
  if (rec.thumbnailUrl) thumb.append(h("img", { src: rec.thumbnailUrl, alt: "", loading: "lazy" }));
  else thumb.append(h("div", { class: "placeholder" }, svg(rec.status === "live" ? ICON_LIVE : ICON_FILM)));
  if (rec.status !== "ready") thumb.append(badge(rec.status, rec.progress));
  else if (rec.kind === "clip") thumb.append(h("span", { class: "badge clip", "data-testid": "clip-badge" }, "Clip"));
  if (rec.status === "processing") thumb.append(h("div", { class: "progress", role: "progressbar", "aria-valuenow": Math.round(rec.progress * 100) }, h("span", { style: `width:${Math.max(rec.progress * 100, 3)}%` })));
  else if (rec.durationSeconds) thumb.append(h("span", { class: "duration" }, duration(rec.durationSeconds)));
  attachPreview(thumb, rec);
  const streamLink = h("span", { class: "stream-link", title: `Only ${rec.stream}`, onclick: (e) => { e.preventDefault(); setFilter({ stream: rec.stream }); } }, rec.stream);
  return h(
    "a",
    { class: "card", href: `/watch/${rec.id}`, "data-testid": "recording", "data-id": rec.id, "data-status": rec.status },
    thumb,
    h(
      "div",
      { class: "card-body" },
      h("h3", { class: "card-title" }, rec.title),
      h("div", { class: "card-meta" }, streamLink, h("span", {}, "·"), h("span", { title: new Date(rec.createdAt).toLocaleString() }, ago(rec.createdAt)), rec.fileSizeBytes ? [h("span", {}, "·"), h("span", {}, bytes(rec.fileSizeBytes))] : null),
      rec.status === "failed" && rec.error ? h("div", { class: "card-error" }, rec.error) : null,
    ),
  );
}

function liveCard(b) {
  const thumb = h("div", { class: "thumb" }, b.thumbnailUrl ? h("img", { src: b.thumbnailUrl, alt: "" }) : h("div", { class: "placeholder" }, svg(ICON_LIVE)), badge("live"));
  return h(
    "a",
    { class: "card", href: `/watch/live/${encodeURIComponent(b.stream)}`, "data-testid": "live" },
    thumb,
    h("div", { class: "card-body" }, h("h3", { class: "card-title" }, b.title || b.stream), h("div", { class: "card-meta" }, h("span", {}, b.stream), h("span", {}, "·"), h("span", {}, b.startedAt ? `started ${ago(b.startedAt)}` : "live"))),
  );
}

function skeletons(n) {
  return Array.from({ length: n }, () => h("div", { class: "card skeleton" }, h("div", { class: "thumb" }), h("div", { class: "line" }), h("div", { class: "line short" })));
}

const filter = { q: "", status: "", stream: "", days: "" };
let listToken = 0;
let nextCursor = null;

function readFilterFromUrl() {
  const p = new URLSearchParams(location.search);
  filter.q = p.get("q") || "";
  filter.status = p.get("status") || "";
  filter.stream = p.get("stream") || "";
  filter.days = p.get("days") || "";
}

function setFilter(change) {
  Object.assign(filter, change);
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(filter)) if (v) p.set(k, v);
  history.replaceState(null, "", p.size ? `/?${p}` : "/");
  syncControls();
  loadRecordings(true);
}

function syncControls() {
  document.getElementById("search").value = filter.q;
  for (const chip of document.querySelectorAll("#status-filter .chip")) chip.classList.toggle("active", chip.dataset.status === filter.status);
  document.getElementById("date-filter").value = filter.days;
  const sf = document.getElementById("stream-filter");
  sf.hidden = !filter.stream;
  sf.replaceChildren(filter.stream ? h("button", { type: "button", onclick: () => setFilter({ stream: "" }) }, `Stream: ${filter.stream}`, h("span", { "aria-hidden": "true" }, "✕")) : "");
}

function listQuery(cursor) {
  const p = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (filter.q) p.set("q", filter.q);
  if (filter.status) p.set("status", filter.status);
  if (filter.stream) p.set("stream", filter.stream);
  if (filter.days) p.set("from", new Date(Date.now() - Number(filter.days) * 86400_000).toISOString());
  if (cursor) p.set("cursor", cursor);
  return `/recordings?${p}`;
}

async function loadRecordings(reset) {
  const grid = document.getElementById("grid");
  const empty = document.getElementById("grid-empty");
  const more = document.getElementById("grid-more");
  const mine = ++listToken;
  if (reset) {
    nextCursor = null;
    grid.replaceChildren(...skeletons(8));
    empty.hidden = true;
  }
  try {
    const page = await api(listQuery(reset ? null : nextCursor));
    if (mine !== listToken) return;
    if (reset) grid.replaceChildren();
    grid.append(...page.items.map(recordingCard));
    nextCursor = page.nextCursor;
    more.hidden = !nextCursor;
    if (grid.children.length === 0) {
      empty.hidden = false;
      const filtered = filter.q || filter.status || filter.stream || filter.days;
      empty.replaceChildren(
        h("strong", {}, filtered ? "Nothing matches" : "No recordings yet"),
        filtered ? "Try another search or clear the filters." : "Go live with OBS, or drop an HLS folder into the hls-streams bucket: recordings appear here as they are converted.",
      );
    }
  } catch (err) {
    if (mine !== listToken) return;
    grid.replaceChildren();
    empty.hidden = false;
    empty.replaceChildren(h("strong", {}, "Could not load recordings"), err.message);
    if (err.status === 401 || err.status === 403) askToken().then((ok) => ok && loadRecordings(true));
  }
}

async function loadLive() {
  try {
    const { items } = await api("/live");
    document.getElementById("live-section").hidden = items.length === 0;
    document.getElementById("live-grid").replaceChildren(...items.map(liveCard));
  } catch {
    document.getElementById("live-section").hidden = true;
  }
}

/** Processing cards update in place, so progress moves without reloading the list. */
async function refreshActiveCards() {
  const cards = [...document.querySelectorAll('#grid .card[data-status="processing"], #grid .card[data-status="live"]')].slice(0, 12);
  await Promise.all(
    cards.map(async (card) => {
      try {
        const rec = await api(`/recordings/${card.dataset.id}`);
        card.replaceWith(recordingCard(rec));
      } catch (err) {
        if (err.status === 404) card.remove();
      }
    }),
  );
}

function startLibrary() {
  readFilterFromUrl();
  syncControls();
  let debounce;
  const search = document.getElementById("search");
  search.addEventListener("input", () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => setFilter({ q: search.value.trim() }), 250);
  });
  search.form.addEventListener("submit", (e) => { e.preventDefault(); clearTimeout(debounce); setFilter({ q: search.value.trim() }); });
  for (const chip of document.querySelectorAll("#status-filter .chip")) chip.addEventListener("click", () => setFilter({ status: chip.dataset.status }));
  document.getElementById("date-filter").addEventListener("change", (e) => setFilter({ days: e.target.value }));
  document.getElementById("more-button").addEventListener("click", () => loadRecordings(false));
  new IntersectionObserver((entries) => entries.some((e) => e.isIntersecting) && nextCursor && loadRecordings(false), { rootMargin: "400px" }).observe(document.getElementById("grid-more"));
  loadLive();
  loadRecordings(true);
  setInterval(() => { loadLive(); refreshActiveCards(); }, 5000);
}

// --- Player -----------------------------------------------------------------------------------

function playHls(video, url) {
  if (window.Hls && window.Hls.isSupported()) {
    const hls = new window.Hls({
      // Only the API's own playlist needs the token; presigned segment links must go out without it.
      xhrSetup: (xhr, u) => { if (token() && new URL(u, location.href).origin === location.origin) xhr.setRequestHeader("authorization", `Bearer ${token()}`); },
    });
    hls.loadSource(url);
    hls.attachMedia(video);
    hls.on(window.Hls.Events.ERROR, (_e, data) => { if (data.fatal) toast(`Playback stopped: ${data.details}`, true); });
    return hls;
  }
  if (video.canPlayType("application/vnd.apple.mpegurl")) video.src = url;
  else toast("This browser cannot play HLS", true);
}

/** Auto plus each rendition of the ladder, and the rendition playing now. */
function qualityMenu(hls) {
  const select = h("select", { "aria-label": "Quality", "data-testid": "quality" }, h("option", { value: "-1" }, "Auto"));
  const current = h("span", { class: "rendition", "data-testid": "current-rendition" }, "");
  const label = (l) => (l.height ? `${l.height}p` : `${Math.round(l.bitrate / 1000)} kbit/s`);
  hls.on(window.Hls.Events.MANIFEST_PARSED, () => {
    // Highest first, as people read a quality list; the value is hls.js's level index.
    const levels = hls.levels.map((l, i) => ({ l, i })).sort((a, b) => (b.l.height || 0) - (a.l.height || 0) || b.l.bitrate - a.l.bitrate);
    select.replaceChildren(h("option", { value: "-1" }, "Auto"), ...levels.map(({ l, i }) => h("option", { value: String(i) }, `${label(l)} · ${Math.round(l.bitrate / 1000)} kbit/s`)));
  });
  hls.on(window.Hls.Events.LEVEL_SWITCHED, (_e, data) => {
    const l = hls.levels[data.level];
    current.textContent = l ? `${label(l)}${hls.autoLevelEnabled ? " (auto)" : ""}` : "";
    current.dataset.level = String(data.level);
  });
  // currentLevel switches at once (flushing the buffer); -1 hands the choice back to hls.js.
  select.addEventListener("change", () => { hls.currentLevel = Number(select.value); });
  return h("div", { class: "quality" }, h("label", {}, "Quality ", select), current);
}

function startPlayback(video) {
  video.play().catch(() => { video.muted = true; video.play().catch(() => {}); });
}

function notice(title, text, progress) {
  return h("div", { class: "notice" }, h("div", {}, h("strong", {}, title), text, progress !== undefined ? h("div", { class: "progress" }, h("span", { style: `width:${Math.max(progress * 100, 3)}%` })) : null));
}

function detailRow(label, value) {
  return value ? [h("dt", {}, label), h("dd", {}, value)] : [];
}

async function startWatch(id) {
  const player = document.getElementById("player");
  const details = document.getElementById("details");
  let rec;
  try {
    rec = await api(`/recordings/${id}`);
  } catch (err) {
    player.replaceChildren(notice(err.status === 404 ? "Recording not found" : "Could not load the recording", err.message));
    details.replaceChildren(h("a", { class: "back", href: "/" }, "← All recordings"));
    return;
  }
  document.title = `${rec.title} · Replay`;
  const tracks = (rec.subtitles || []).map((t, i) => h("track", { kind: "subtitles", src: t.url, srclang: t.language || "", label: t.name || t.language || `Subtitles ${i + 1}`, "data-testid": "subtitle-track" }));
  if (rec.status === "ready" && rec.videoUrl && !rec.videoCodec && rec.audioCodec) {
    // Audio only (a podcast): an audio player under its waveform.
    const audio = h("audio", { controls: true, preload: "metadata", src: rec.videoUrl, "data-testid": "player" });
    player.replaceChildren(h("div", { class: "audio-player" }, rec.thumbnailUrl ? h("img", { src: rec.thumbnailUrl, alt: "Waveform", "data-testid": "waveform" }) : null, audio));
    startPlayback(audio);
  } else if (rec.status === "ready" && rec.abrUrl && window.Hls && window.Hls.isSupported()) {
    // The ABR ladder: hls.js picks the rendition (Auto) or the viewer does; the MP4 stays the download.
    const video = h("video", { controls: true, playsinline: true, poster: rec.thumbnailUrl, "data-testid": "player" }, ...tracks);
    player.replaceChildren(video, qualityMenu(playHls(video, rec.abrUrl)));
    startPlayback(video);
  } else if (rec.status === "ready" && rec.videoUrl) {
    const video = h("video", { controls: true, playsinline: true, preload: "metadata", poster: rec.thumbnailUrl, src: rec.videoUrl, "data-testid": "player" }, ...tracks);
    player.replaceChildren(video);
    startPlayback(video);
    watched.video = video;
  } else if (rec.status === "live" && rec.liveUrl) {
    const video = h("video", { controls: true, playsinline: true, "data-testid": "player" });
    player.replaceChildren(video);
    playHls(video, rec.liveUrl);
    startPlayback(video);
  } else if (rec.status === "processing") {
    player.replaceChildren(notice("Preparing the video", "It can be watched as soon as the conversion finishes.", rec.progress));
    setTimeout(() => startWatch(id), 4000);
  } else {
    player.replaceChildren(notice("This recording cannot be played", rec.error || "Its conversion failed."));
  }
  renderDetails(details, rec);
}

function renderDetails(details, rec) {
  const title = h("h1", { "data-testid": "title" }, rec.title);
  const actions = h(
    "div",
    { class: "actions" },
    rec.videoUrl ? h("a", { class: "ghost-button", href: rec.videoUrl, download: "" }, "Download") : null,
    watched.video && rec.durationSeconds ? h("button", { class: "ghost-button", type: "button", "data-testid": "clip-mode", onclick: () => toggleClipMode(rec) }, "Clip") : null,
    h("button", { class: "ghost-button", type: "button", onclick: () => rename() }, "Rename"),
    rec.status !== "live" ? h("button", { class: "danger-button", type: "button", onclick: () => remove() }, "Delete") : null,
  );
  function rename() {
    const input = h("input", { value: rec.title, maxlength: "200", "aria-label": "New title" });
    const form = h("form", { class: "rename" }, input, h("button", { class: "primary-button", type: "submit" }, "Save"));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        const updated = await withToken(() => api(`/recordings/${rec.id}`, { method: "PATCH", json: { title: input.value } }));
        rec.title = updated.title;
        title.textContent = updated.title;
        document.title = `${updated.title} · Replay`;
        form.replaceWith(title);
        toast("Renamed");
      } catch (err) {
        toast(err.message, true);
      }
    });
    title.replaceWith(form);
    input.focus();
    input.select();
  }
  async function remove() {
    if (!confirm(`Delete “${rec.title}”? Its video, thumbnails and source segments are removed for good.`)) return;
    try {
      await withToken(() => api(`/recordings/${rec.id}`, { method: "DELETE" }));
      location.href = "/";
    } catch (err) {
      toast(err.message, true);
    }
  }
  const resolution = rec.width && rec.height ? `${rec.width}×${rec.height}` : "";
  const codecs = [rec.videoCodec, rec.audioCodec].filter(Boolean).join(" / ");
  details.replaceChildren(
    ...[
      h("div", { class: "status-line" }, badge(rec.status, rec.progress), h("span", { class: "sub" }, new Date(rec.createdAt).toLocaleString())),
      title,
      h("div", { class: "sub" }, h("a", { href: `/?stream=${encodeURIComponent(rec.stream)}` }, rec.stream)),
      rec.kind === "clip" ? h("div", { class: "sub", "data-testid": "clip-of" }, `Clip of ${duration(rec.clipStart)}–${duration(rec.clipEnd)} of `, rec.parentId ? h("a", { href: `/watch/${rec.parentId}` }, "its recording") : "a recording") : null,
      (rec.warnings || []).length ? h("div", { class: "warning-box", "data-testid": "warnings" }, ...rec.warnings.map((w) => h("p", {}, w.message))) : null,
      rec.error ? h("div", { class: "error-box" }, rec.error) : null,
      h("dl", {}, ...detailRow("Duration", duration(rec.durationSeconds)), ...detailRow("Resolution", resolution), ...detailRow("Codecs", codecs), ...detailRow("Size", bytes(rec.fileSizeBytes)), ...detailRow("Source", rec.sourcePrefix)),
      actions,
      h("a", { class: "back", href: "/" }, "← All recordings"),
    ].filter(Boolean),
  );
  showMoreFrom(rec.stream, rec.id);
  if (rec.kind !== "clip") showClips(rec.id);
}

// --- Clips ------------------------------------------------------------------------------------

const watched = { video: null };

/** The recording's clips, under the player. */
async function showClips(parentId) {
  let section = document.getElementById("clips");
  if (!section) {
    section = h("section", { class: "section clips", id: "clips", "data-testid": "clips", hidden: true });
    document.getElementById("more-from").before(section);
  }
  try {
    const page = await api(`/recordings?kind=clip&parent=${parentId}&limit=50`);
    section.hidden = page.items.length === 0;
    section.replaceChildren(h("div", { class: "section-head" }, h("h2", {}, `Clips (${page.items.length})`)), h("div", { class: "grid" }, ...page.items.map(recordingCard)));
  } catch {
    section.hidden = true;
  }
}

function clock(seconds) {
  const ms = Math.round((seconds % 1) * 10);
  return `${duration(Math.floor(seconds))}.${ms}`;
}

/**
 * Clip mode: in and out handles over a strip of storyboard tiles; dragging a handle shows that frame in
 * the player; Preview plays the range; Create clip asks the API, shows progress, then plays the clip.
 */
async function toggleClipMode(rec) {
  const existing = document.getElementById("clip-panel");
  if (existing) { existing.remove(); return; }
  const video = watched.video;
  const total = rec.durationSeconds;
  const range = { start: Math.min(video.currentTime || 0, Math.max(0, total - 10)), end: 0 };
  range.end = Math.min(total, range.start + Math.min(30, total));
  const strip = h("div", { class: "clip-strip" });
  const selected = h("div", { class: "clip-selected" });
  const tip = h("div", { class: "clip-tip", hidden: true });
  const handle = (which) => h("div", { class: `clip-handle ${which}`, role: "slider", tabindex: "0", "aria-label": which === "in" ? "Clip start" : "Clip end", "aria-valuemin": "0", "aria-valuemax": String(total), "data-testid": `clip-${which}` });
  const inHandle = handle("in"), outHandle = handle("out");
  const timeline = h("div", { class: "clip-timeline", "data-testid": "clip-timeline" }, strip, selected, inHandle, outHandle, tip);
  const label = h("span", { class: "clip-range", "data-testid": "clip-range" });
  const precise = h("input", { type: "checkbox", "data-testid": "clip-precise" });
  const status = h("div", { class: "clip-status", "data-testid": "clip-status" });
  const createButton = h("button", { class: "primary-button", type: "button", "data-testid": "clip-create", onclick: () => create() }, "Create clip");
  const panel = h(
    "section",
    { class: "clip-panel", id: "clip-panel", "data-testid": "clip-panel" },
    timeline,
    h("div", { class: "clip-controls" }, label, h("label", { class: "clip-precise" }, precise, " Frame-accurate"),
      h("button", { class: "ghost-button", type: "button", "data-testid": "clip-preview", onclick: () => preview() }, "Preview"), createButton),
    status,
  );
  document.querySelector(".player-wrap").append(panel);

  const cues = rec.storyboardUrl ? await loadStoryboard(rec.storyboardUrl) : [];
  // Tiles along the strip, each where its cue starts: the timeline reads like the video.
  for (const cue of cues) {
    const tile = h("div", { class: "clip-tile", style: `left:${(cue.start / total) * 100}%;width:${((cue.end - cue.start) / total) * 100}%;background-image:url("${cue.url}");background-position:-${cue.x}px -${cue.y}px;` });
    strip.append(tile);
  }

  function draw() {
    const a = (range.start / total) * 100, b = (range.end / total) * 100;
    inHandle.style.left = `${a}%`;
    outHandle.style.left = `${b}%`;
    selected.style.left = `${a}%`;
    selected.style.width = `${b - a}%`;
    inHandle.setAttribute("aria-valuenow", range.start.toFixed(1));
    outHandle.setAttribute("aria-valuenow", range.end.toFixed(1));
    label.textContent = `${clock(range.start)} – ${clock(range.end)} (${(range.end - range.start).toFixed(1)} s)`;
  }
  function set(which, t) {
    const min = 0.5;
    if (which === "in") range.start = Math.max(0, Math.min(t, range.end - min));
    else range.end = Math.min(total, Math.max(t, range.start + min));
    draw();
    // The current frame, shown while dragging.
    video.pause();
    video.currentTime = which === "in" ? range.start : range.end;
    const cue = cues.find((c) => video.currentTime >= c.start && video.currentTime < c.end);
    tip.hidden = false;
    tip.style.left = `${((which === "in" ? range.start : range.end) / total) * 100}%`;
    tip.replaceChildren(cue ? h("div", { class: "clip-tip-image", style: `background-image:url("${cue.url}");background-position:-${cue.x}px -${cue.y}px;width:${cue.w}px;height:${cue.h}px` }) : "", h("span", {}, clock(which === "in" ? range.start : range.end)));
  }
  for (const [which, el] of [["in", inHandle], ["out", outHandle]]) {
    el.addEventListener("pointerdown", (e) => { e.preventDefault(); el.setPointerCapture(e.pointerId); el.classList.add("dragging"); });
    el.addEventListener("pointermove", (e) => {
      if (!el.hasPointerCapture(e.pointerId)) return;
      const box = timeline.getBoundingClientRect();
      set(which, (Math.min(Math.max(e.clientX - box.left, 0), box.width) / box.width) * total);
    });
    el.addEventListener("pointerup", (e) => { el.releasePointerCapture(e.pointerId); el.classList.remove("dragging"); tip.hidden = true; });
    el.addEventListener("keydown", (e) => {
      const step = e.shiftKey ? 10 : 1;
      if (e.key === "ArrowLeft") { e.preventDefault(); set(which, (which === "in" ? range.start : range.end) - step); }
      if (e.key === "ArrowRight") { e.preventDefault(); set(which, (which === "in" ? range.start : range.end) + step); }
    });
  }
  function preview() {
    video.currentTime = range.start;
    const stop = () => { if (video.currentTime >= range.end) { video.pause(); video.removeEventListener("timeupdate", stop); } };
    video.addEventListener("timeupdate", stop);
    startPlayback(video);
  }
  async function create() {
    createButton.disabled = true;
    try {
      const made = await withToken(() => api(`/recordings/${rec.id}/clips`, { method: "POST", json: { start: Number(range.start.toFixed(3)), end: Number(range.end.toFixed(3)), precise: precise.checked } }));
      await follow(made.id);
    } catch (err) {
      status.replaceChildren(h("div", { class: "error-box" }, err.message));
      toast(err.message, true);
    } finally {
      createButton.disabled = false;
    }
  }
  async function follow(id) {
    for (;;) {
      const clip = await api(`/recordings/${id}`);
      if (clip.status === "ready") {
        const player = h("video", { controls: true, playsinline: true, src: clip.videoUrl, poster: clip.thumbnailUrl, "data-testid": "clip-player" });
        status.replaceChildren(h("div", { class: "clip-made" }, player, h("a", { href: `/watch/${clip.id}`, "data-testid": "clip-link" }, `${clip.title} · ${duration(clip.durationSeconds)}`)));
        startPlayback(player);
        showClips(rec.id);
        toast("Clip ready");
        return;
      }
      if (clip.status === "failed") throw new Error(clip.error || "the clip failed");
      status.replaceChildren(h("div", { class: "notice" }, h("div", {}, h("strong", {}, "Cutting the clip"), h("div", { class: "progress", role: "progressbar", "data-testid": "clip-progress" }, h("span", { style: `width:${Math.max(clip.progress * 100, 3)}%` })))));
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  draw();
}

/** Other recordings of the same stream under the player, so the page is not a dead end. */
async function showMoreFrom(stream, exceptId) {
  const more = document.getElementById("more-from");
  if (!more || more.dataset.stream === stream) return;
  more.dataset.stream = stream;
  try {
    const page = await api(`/recordings?stream=${encodeURIComponent(stream)}&limit=9`);
    const items = page.items.filter((r) => r.id !== exceptId).slice(0, 8);
    more.hidden = items.length === 0;
    more.replaceChildren(h("div", { class: "section-head" }, h("h2", {}, `More from ${stream}`)), h("div", { class: "grid" }, ...items.map(recordingCard)));
  } catch {
    more.hidden = true;
  }
}

async function startLive(stream) {
  const player = document.getElementById("player");
  const details = document.getElementById("details");
  const { items } = await api("/live").catch(() => ({ items: [] }));
  const b = items.find((i) => i.stream === stream);
  if (!b) {
    player.replaceChildren(notice("Not live", `${stream} is not broadcasting right now.`));
    details.replaceChildren(h("a", { class: "back", href: `/?stream=${encodeURIComponent(stream)}` }, `← Recordings of ${stream}`));
    return;
  }
  document.title = `${b.title || b.stream} · Live · Replay`;
  const video = h("video", { controls: true, playsinline: true, "data-testid": "player" });
  player.replaceChildren(video);
  playHls(video, b.playlistUrl);
  startPlayback(video);
  details.replaceChildren(
    h("div", { class: "status-line" }, badge("live"), h("span", { class: "sub" }, b.startedAt ? `started ${ago(b.startedAt)}` : "")),
    h("h1", {}, b.title || b.stream),
    h("div", { class: "sub" }, b.stream),
    h("a", { class: "back", href: "/" }, "← All recordings"),
  );
  showMoreFrom(b.stream, b.recordingId);
}

// --- Webhooks settings ------------------------------------------------------------------------

async function loadWebhooks() {
  const list = document.getElementById("webhook-list");
  let items;
  try {
    items = (await withToken(() => api("/webhooks"))).items;
  } catch (err) {
    list.replaceChildren(h("div", { class: "empty" }, err.message));
    return;
  }
  if (items.length === 0) list.replaceChildren(h("div", { class: "empty" }, "No endpoints yet: add one above."));
  else list.replaceChildren(...items.map(webhookRow));
}

function webhookRow(w) {
  const log = h("div", { class: "webhook-log", hidden: true });
  const state = w.enabled ? h("span", { class: "pill ok" }, "enabled") : h("span", { class: "pill failed", title: w.disabledReason || "" }, w.disabledReason ? "disabled by the service" : "disabled");
  const test = async () => {
    try {
      const r = await withToken(() => api(`/webhooks/${w.id}/test`, { method: "POST" }));
      toast(r.ok ? `Test delivered (${r.statusCode}, ${r.durationMs} ms)` : `Test failed: ${r.error}`, !r.ok);
      if (!log.hidden) await showLog();
    } catch (err) {
      toast(err.message, true);
    }
  };
  const showLog = async () => {
    const { items } = await withToken(() => api(`/webhooks/${w.id}/deliveries?limit=20`));
    log.hidden = false;
    log.replaceChildren(
      items.length === 0
        ? h("div", { class: "muted" }, "No deliveries yet.")
        : h("table", { class: "log-table" },
            h("tr", {}, h("th", {}, "When"), h("th", {}, "Event"), h("th", {}, "Try"), h("th", {}, "Status"), h("th", {}, "ms"), h("th", {}, "Error / next retry")),
            ...items.map((a) => h("tr", {}, h("td", {}, ago(a.at)), h("td", {}, a.eventType), h("td", {}, a.attempt), h("td", {}, a.statusCode ?? "—"), h("td", {}, a.durationMs), h("td", {}, [a.error, a.nextRetryAt ? `retry ${new Date(a.nextRetryAt).toLocaleTimeString()}` : ""].filter(Boolean).join(" · ")))),
          ),
    );
  };
  const toggle = async () => {
    await withToken(() => api(`/webhooks/${w.id}`, { method: "PATCH", json: { enabled: !w.enabled } }));
    await loadWebhooks();
  };
  const remove = async () => {
    if (!confirm(`Remove the endpoint ${w.url}?`)) return;
    await withToken(() => api(`/webhooks/${w.id}`, { method: "DELETE" }));
    await loadWebhooks();
  };
  return h("div", { class: "webhook" },
    h("div", { class: "webhook-head" },
      h("div", {}, h("div", { class: "webhook-url" }, w.url), h("div", { class: "muted" }, [w.description, w.events ? w.events.join(", ") : "all events"].filter(Boolean).join(" · "))),
      state,
      h("div", { class: "webhook-actions" },
        h("button", { class: "ghost-button", type: "button", onclick: test }, "Send test"),
        h("button", { class: "ghost-button", type: "button", onclick: () => (log.hidden ? showLog() : (log.hidden = true)) }, "Deliveries"),
        h("button", { class: "ghost-button", type: "button", onclick: toggle }, w.enabled ? "Disable" : "Enable"),
        h("button", { class: "danger-button", type: "button", onclick: remove }, "Remove"),
      ),
    ),
    w.disabledReason ? h("div", { class: "muted" }, w.disabledReason) : null,
    log,
  );
}

function startWebhooks() {
  document.getElementById("webhook-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const url = document.getElementById("webhook-url").value.trim();
    const description = document.getElementById("webhook-description").value.trim() || undefined;
    try {
      const w = await withToken(() => api("/webhooks", { method: "POST", json: { url, description } }));
      const secret = document.getElementById("webhook-secret");
      secret.hidden = false;
      secret.replaceChildren(h("strong", {}, "Signing secret (shown once): "), h("code", {}, w.secret));
      e.target.reset();
      await loadWebhooks();
    } catch (err) {
      toast(err.message, true);
    }
  });
  loadWebhooks();
}

// --- Start ------------------------------------------------------------------------------------

updateTokenButton();
document.getElementById("token-button").addEventListener("click", () => askToken());
// --- Streams (storage by stream) -------------------------------------------------------------

async function startStreams() {
  const rows = document.getElementById("usage-rows");
  try {
    const { streams, total } = await api("/usage");
    const row = (name, u, cls) =>
      h("tr", { class: cls, "data-testid": "usage-row" }, h("td", {}, name), h("td", {}, u.recordings), h("td", {}, bytes(u.mp4Bytes) || "0 B"), h("td", {}, u.sourcesKept), h("td", {}, bytes(u.sourceBytes) || "0 B"), h("td", {}, u.pinned));
    rows.replaceChildren(...streams.map((s) => row(h("a", { href: `/?stream=${encodeURIComponent(s.stream)}` }, s.stream), s)), row("Total", total, "total"));
  } catch (err) {
    rows.replaceChildren(h("tr", {}, h("td", { colspan: 6 }, err.message)));
  }
}

const view = app.dataset.view;
if (view === "library") startLibrary();
else if (view === "watch") startWatch(app.dataset.id);
else if (view === "live") startLive(app.dataset.stream);
else if (view === "webhooks") startWebhooks();
else if (view === "streams") startStreams();
