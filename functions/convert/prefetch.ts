import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { GetObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { writeLocalPlaylist, type ResolvedSegment } from "../../lib/hls/index.js";
import type { Logger } from "../../lib/log.js";

// FFmpeg's HLS reader fetches one segment at a time and only when it needs it: every segment costs a
// request's latency during which nothing is remuxed. Here a small HTTP server on the loopback stands
// between FFmpeg and the store: the playlists FFmpeg reads name its URLs, and whenever FFmpeg asks for
// segment i the next AHEAD segments of that playlist are already being fetched (PARALLEL at once), so
// the GETs overlap each other, the remux and the upload. FFmpeg still does all the HLS work itself
// (discontinuities, init sections and AES keys, which it keeps reading from presigned URLs).

/** Segments of one playlist fetched ahead of the one FFmpeg reads. */
const AHEAD = 8;
/** GETs in flight at once, over every playlist. */
const PARALLEL = 6;
/** A segment up to this size is read into memory ahead of time; a larger one is opened ahead and streamed when asked for. */
const BUFFER_MAX = 16 * 1024 * 1024;

type Fetched =
  | { ok: true; body: Buffer }
  | { ok: true; stream: Readable; length?: number }
  | { ok: false; status: number; message: string };

export interface PrefetchedInputs {
  /** Playlists for FFmpeg (one per given list, same order), their segments served by the prefetcher. */
  playlists: string[];
  /** Pairs of object key and the URL FFmpeg sees for it, to turn FFmpeg's messages back into names. */
  urls: [string, string][];
  /** Segments served and how many were already fetched when FFmpeg asked. */
  stats(): { served: number; waited: number };
  close(): Promise<void>;
}

/**
 * Starts the prefetcher for these playlists' segments and writes the playlists FFmpeg reads into `dir`.
 * `urlOf` gives the presigned URL of everything else a playlist names (init sections, key files).
 */
export async function startPrefetch(o: {
  s3: S3Client;
  bucket: string;
  lists: readonly (readonly ResolvedSegment[])[];
  urlOf: (key: string) => string;
  dir: string;
  signal: AbortSignal;
  log: Logger;
  /** Tests make it small to take the streamed path. */
  bufferMax?: number;
}): Promise<PrefetchedInputs> {
  const bufferMax = o.bufferMax ?? BUFFER_MAX;
  const keys = o.lists.map((segs) => segs.map((s) => s.key));
  const entries = keys.map(() => new Map<number, { p: Promise<Fetched>; settled: boolean }>());
  const held = new Set<Readable>();
  let active = 0;
  const queue: (() => void)[] = [];
  let served = 0;
  let waited = 0;

  const slot = async () => {
    while (active >= PARALLEL) await new Promise<void>((r) => queue.push(r));
    active++;
  };
  const free = () => {
    active--;
    queue.shift()?.();
  };

  const fetchOne = async (key: string): Promise<Fetched> => {
    await slot();
    let release = true;
    try {
      const res = await o.s3.send(new GetObjectCommand({ Bucket: o.bucket, Key: key }), { abortSignal: o.signal });
      const body = res.Body as Readable;
      if (res.ContentLength !== undefined && res.ContentLength <= bufferMax) {
        return { ok: true, body: Buffer.from(await res.Body!.transformToByteArray()) };
      }
      // Too large to hold: the response stays open, unread, until FFmpeg asks for it.
      held.add(body);
      release = false;
      free();
      return { ok: true, stream: body, length: res.ContentLength };
    } catch (err) {
      const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
      const status = e.name === "NoSuchKey" ? 404 : e.$metadata?.httpStatusCode && e.$metadata.httpStatusCode >= 400 ? e.$metadata.httpStatusCode : 502;
      return { ok: false, status, message: e.message ?? String(err) };
    } finally {
      if (release) free();
    }
  };

  /** Segment i of a playlist, and the next AHEAD started; what lies behind i is dropped. */
  const get = (list: number, i: number) => {
    const map = entries[list]!;
    for (const n of map.keys()) if (n < i) map.delete(n);
    for (let j = i; j < Math.min(keys[list]!.length, i + 1 + AHEAD); j++) {
      if (map.has(j)) continue;
      const e = { p: fetchOne(keys[list]![j]!), settled: false };
      void e.p.then(() => (e.settled = true));
      map.set(j, e);
    }
    return map.get(i)!;
  };

  const serve = async (req: IncomingMessage, res: ServerResponse) => {
    const m = /^\/(\d+)\/(\d+)\//.exec(req.url ?? "");
    const list = m ? Number(m[1]) : -1;
    const i = m ? Number(m[2]) : -1;
    const key = keys[list]?.[i];
    if (key === undefined) {
      res.writeHead(404).end();
      return;
    }
    // FFmpeg resumes a broken read with a range from where it stopped: that one goes straight to the store.
    const range = /^bytes=(\d+)-(\d*)$/.exec(String(req.headers.range ?? ""));
    if (range && Number(range[1]) > 0) {
      entries[list]!.delete(i);
      await serveRange(o.s3, o.bucket, key, range[0], res, o.signal);
      return;
    }
    const e = get(list, i);
    if (!e.settled) waited++;
    const f = await e.p;
    // Served once: a retry of the same segment is fetched again.
    entries[list]!.delete(i);
    served++;
    if (!f.ok) {
      res.writeHead(f.status, { "content-type": "text/plain" }).end(f.message);
      return;
    }
    if ("body" in f) {
      res.writeHead(200, { "content-length": f.body.length, "content-type": "application/octet-stream" }).end(f.body);
      return;
    }
    held.delete(f.stream);
    res.writeHead(200, { ...(f.length !== undefined ? { "content-length": f.length } : {}), "content-type": "application/octet-stream" });
    await pipeline(f.stream, res).catch(() => {});
  };

  const server = createServer((req, res) => {
    serve(req, res).catch((err: unknown) => {
      o.log.warn({ err: (err as Error).message, url: req.url }, "prefetch: serving a segment failed");
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const urls: [string, string][] = [];
  const playlists: string[] = [];
  for (const [list, segs] of o.lists.entries()) {
    const index = new Map<string, number>();
    segs.forEach((s, i) => {
      if (!index.has(s.key)) index.set(s.key, i);
    });
    // The object's name ends the URL, so FFmpeg's extension checks see what the playlist named.
    const local = (key: string) => {
      const i = index.get(key);
      if (i === undefined) return o.urlOf(key);
      const url = `http://127.0.0.1:${port}/${list}/${i}/${encodeURIComponent(key.slice(key.lastIndexOf("/") + 1))}`;
      urls.push([key, url]);
      return url;
    };
    const path = join(o.dir, `prefetch-${list}.m3u8`);
    await writeFile(path, writeLocalPlaylist(segs, local));
    playlists.push(path);
  }
  const onAbort = () => void close();
  o.signal.addEventListener("abort", onAbort, { once: true });
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      o.signal.removeEventListener("abort", onAbort);
      for (const s of held) s.destroy();
      held.clear();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    })());
  return { playlists, urls, stats: () => ({ served, waited }), close };
}

async function serveRange(s3: S3Client, bucket: string, key: string, range: string, res: ServerResponse, signal: AbortSignal): Promise<void> {
  try {
    const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: range }), { abortSignal: signal });
    res.writeHead(206, { "content-range": r.ContentRange ?? "", ...(r.ContentLength !== undefined ? { "content-length": r.ContentLength } : {}) });
    await pipeline(r.Body as Readable, res).catch(() => {});
  } catch (err) {
    const e = err as { $metadata?: { httpStatusCode?: number }; message?: string };
    if (!res.headersSent) res.writeHead(e.$metadata?.httpStatusCode ?? 502).end(e.message);
  }
}
