// Per session, in order: each finished segment is stored, then the playlist that now lists it.
// So the playlist in the store only ever names segments that exist.
import { statSync } from "node:fs";
import { open, unlink } from "node:fs/promises";
import type { ObjectPutter } from "../../lib/s3.js";
import type { Logger } from "../../lib/log.js";
import { PLAYLIST_NAME, type Playlist } from "../session/playlist.js";
import type { GatewayMetrics } from "../metrics.js";
import { retry } from "../../lib/retry.js";
import type { SpoolBudget } from "./spool-budget.js";

export interface QueuedSegment {
  name: string;
  path: string;
  duration: number;
  discontinuity: boolean;
  closedAt: number;
  bytes: number;
  /** When FFmpeg last wrote the file (its mtime): closedAt minus this is how late JavaScript heard of it. */
  writtenAt: number;
  /** Dropped from the full spool: its file is gone; the playlist lists it as a gap when its turn comes. */
  dropped?: boolean;
}

/** Where a segment's time from FFmpeg closing it to its playlist being stored went, in ms (the log line of a slow store says which). */
export interface StoreStages {
  /** From FFmpeg's last write of the file to JavaScript reading its line (the event loop's delay). */
  noticeMs: number;
  /** Waiting behind this session's earlier segments (and for the event loop). */
  waitMs: number;
  readMs: number;
  segmentPutMs: number;
  playlistPutMs: number;
}

export interface UploaderDeps {
  /** PUTs to the store (lib/s3.ts createObjectPutter; the unit tests give an in-memory one). */
  store: Pick<ObjectPutter, "put">;
  bucket: string;
  /** `<stream>/<session>`, no trailing slash. */
  prefix: string;
  playlist: Playlist;
  log: Logger;
  metrics: GatewayMetrics;
  budget: SpoolBudget;
  context: Record<string, unknown>;
  /** Called after the playlist naming this segment is stored, with where the time went. */
  onStored(seg: QueuedSegment, storeMs: number, stages: StoreStages): void;
}

export class SessionUploader {
  private queue: QueuedSegment[] = [];
  private running?: Promise<void>;
  private readonly abort = new AbortController();

  constructor(private readonly d: UploaderDeps) {}

  get pending(): number {
    return this.queue.length;
  }

  async enqueue(seg: Omit<QueuedSegment, "bytes" | "writtenAt">): Promise<void> {
    // Synchronous on purpose: segments must enter the queue in the order FFmpeg finished them.
    let bytes = 0;
    let writtenAt = seg.closedAt;
    try {
      const st = statSync(seg.path);
      bytes = st.size;
      writtenAt = Math.min(seg.closedAt, Math.round(st.mtimeMs));
    } catch {
      // FFmpeg reported a file that is gone: the loop skips it.
    }
    this.d.budget.take(bytes);
    this.queue.push({ ...seg, bytes, writtenAt });
    // Bounded disk: when the store cannot keep up, the oldest waiting segment of this session goes first
    // (never the one being stored, nor the newest). It keeps its place in the queue, so the playlist
    // lists it as a gap with its real duration where it was: the timeline stays true.
    const inFlight = this.running ? 1 : 0;
    while (this.d.budget.over) {
      const victim = this.queue.slice(inFlight, -1).find((s) => !s.dropped);
      if (!victim) break;
      victim.dropped = true;
      this.d.budget.give(victim.bytes);
      victim.bytes = 0;
      this.d.metrics.segmentsDropped.inc();
      await removeFile(victim.path);
      this.d.log.error({ ...this.d.context, segment: victim.name, seconds: victim.duration, spoolBytes: this.d.budget.usedBytes },
        "spool is full because the object store is not keeping up; dropped the oldest waiting segment, listed as a gap in the playlist (check the store's health)");
    }
    this.kick();
  }

  private kick() {
    if (this.running) return;
    this.running = this.loop().finally(() => {
      this.running = undefined;
      if (this.queue.length) this.kick();
    });
  }

  private async loop(): Promise<void> {
    for (let seg = this.queue[0]; seg; seg = this.queue[0]) {
      const key = `${this.d.prefix}/${seg.name}`;
      // A gap costs no request of its own: the next stored segment's playlist (or the final one) lists it.
      if (seg.dropped) this.d.playlist.add({ uri: seg.name, duration: seg.duration, discontinuity: seg.discontinuity, gap: true });
      const picked = Date.now();
      const read = seg.dropped ? undefined : await readSegment(seg.path);
      const body = read?.body;
      const stages: StoreStages = { noticeMs: seg.closedAt - seg.writtenAt, waitMs: picked - seg.closedAt, readMs: Date.now() - picked, segmentPutMs: 0, playlistPutMs: 0 };
      if (read) {
        const putStart = Date.now();
        await retry(() => this.putSegment(key, read.body), {
          what: "storing a segment", log: this.d.log, context: { ...this.d.context, key }, signal: this.abort.signal,
          onRetry: () => this.d.metrics.uploadRetries.inc(),
        });
        // The store has answered: no write of the body is pending any more.
        giveBack(read.buffer);
        const playlistStart = Date.now();
        stages.segmentPutMs = playlistStart - putStart;
        this.d.playlist.add({ uri: seg.name, duration: seg.duration, discontinuity: seg.discontinuity });
        await this.writePlaylist(false);
        stages.playlistPutMs = Date.now() - playlistStart;
      }
      this.queue.shift();
      this.d.budget.give(seg.bytes);
      await removeFile(seg.path);
      if (body) this.d.onStored(seg, Date.now() - seg.closedAt, stages);
    }
  }

  /**
   * A segment PUT with a CRC32 checksum the store verifies (catches corruption; 0.14 CPU s/GB natively).
   * SigV4's SHA-256 of the whole body (about 0.8 CPU s/GB more, measured in bench/upload-checksums.bench.ts)
   * only buys tamper-proofing, which TLS already gives and a loopback store does not need: the putter keeps
   * it for plain http to another host only.
   */
  private async putSegment(key: string, body: Uint8Array): Promise<void> {
    await this.d.store.put({ bucket: this.d.bucket, key, body, contentType: "video/mp2t", crc32: true });
  }

  async writePlaylist(ended: boolean, maxMs?: number): Promise<void> {
    const key = `${this.d.prefix}/${PLAYLIST_NAME}`;
    const text = this.d.playlist.render(ended);
    await retry(() => this.d.store.put({ bucket: this.d.bucket, key, body: text, contentType: "application/vnd.apple.mpegurl" }), {
      what: ended ? "storing the final playlist" : "storing the playlist", log: this.d.log, context: { ...this.d.context, key },
      signal: this.abort.signal, maxMs, onRetry: () => this.d.metrics.uploadRetries.inc(),
    });
  }

  /** Waits until every queued segment and its playlist are stored. */
  async drain(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Stores what is queued, then the playlist with #EXT-X-ENDLIST, last. Returns false when there was nothing to finish. */
  async finish(): Promise<boolean> {
    await this.drain();
    if (this.d.playlist.entries.length === 0) return false;
    await this.writePlaylist(true, 10 * 60_000);
    return true;
  }

  /** Shutdown: stop retrying. */
  cancel(): void {
    this.abort.abort();
  }
}

/**
 * Segment bodies are read into reused buffers: a new 1.5 MB buffer per segment made V8 run full collections
 * for the external memory it added up to (garbage collection was the JavaScript thread's largest cost at 40 streams).
 */
const spare: Buffer[] = [];
const KEEP_SPARE = 8;
const BUFFER_STEP = 256 * 1024;

async function readSegment(path: string): Promise<{ body: Buffer; buffer: Buffer } | undefined> {
  const fh = await open(path, "r").catch(() => undefined);
  // FFmpeg reported a file that is gone: the loop skips it.
  if (!fh) return undefined;
  try {
    const { size } = await fh.stat();
    const i = spare.findIndex((b) => b.length >= size);
    const buffer = i >= 0 ? spare.splice(i, 1)[0]! : Buffer.allocUnsafeSlow(Math.max(1, Math.ceil(size / BUFFER_STEP)) * BUFFER_STEP);
    let filled = 0;
    while (filled < size) {
      const { bytesRead } = await fh.read(buffer, filled, size - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return { body: buffer.subarray(0, filled), buffer };
  } catch {
    return undefined;
  } finally {
    await fh.close();
  }
}

function giveBack(buffer: Buffer): void {
  if (spare.length < KEEP_SPARE) spare.push(buffer);
}

/** unlink, not rm: a spooled segment is one file, and rm's lstat and retry logic cost a call per segment. */
async function removeFile(path: string): Promise<void> {
  await unlink(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== "ENOENT") throw err;
  });
}
