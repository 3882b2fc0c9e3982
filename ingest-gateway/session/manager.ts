// Routes the SRT listener's events to broadcasts: one live broadcast per stream name.
import type { Logger } from "../../lib/log.js";
import type { NativeIngestServer, RefusalReason, SrtEvent, SrtStats } from "../srt/addon.js";
import { Broadcast, newSessionId, type BroadcastDeps } from "./broadcast.js";
import type { Connection } from "./connection.js";
import type { Playlist } from "./playlist.js";

export interface Refusal {
  at: string;
  stream: string;
  peer: string;
  reason: RefusalReason;
  message: string;
}

export interface LiveInfo {
  stream: string;
  session: string;
  recordingId?: string;
  state: "live" | "waiting";
  startedAt: string;
  durationSeconds: number;
  storedSeconds: number;
  segments: number;
  lastSegmentAt?: string;
  peer?: string;
  profile?: string;
  profileReason?: string;
  bitrateKbps?: number;
  bytesReceived?: number;
  packetsLost?: number;
  waitingSince?: string;
}

const KEEP_REFUSALS = 50;

export class SessionManager {
  private readonly live = new Map<string, Broadcast>();
  /** counted: bytes of the connection already added to the received-bytes metric. */
  private readonly conns = new Map<number, { conn: Connection; broadcast: Broadcast; peer: string; counted: number }>();
  private readonly ending = new Set<Broadcast>();
  readonly refusals: Refusal[] = [];
  server?: NativeIngestServer;
  /** The addon refuses a held stream as "held"; this says the hold's real reason (max-duration). */
  holdReason?: (stream: string) => RefusalReason | undefined;
  /** Why each stream's last broadcast ended, for GET /streams. */
  readonly lastEnd = new Map<string, { at: string; session: string; reason: string }>();

  constructor(private readonly d: Omit<BroadcastDeps, "srt">, private readonly log: Logger, private readonly makePipe: () => [number, number]) {}

  private deps(): BroadcastDeps {
    return {
      ...this.d,
      srt: {
        attach: (id, fd) => this.server?.attach(id, fd) ?? false,
        close: (id) => this.server?.close(id) ?? false,
        makePipe: this.makePipe,
      },
    };
  }

  handle(ev: SrtEvent): void {
    // Media bytes stay in the addon; this tripwire counts any that reach JavaScript (it must stay 0).
    for (const v of Object.values(ev)) if (Buffer.isBuffer(v)) this.d.metrics.mediaBytesInJs.inc(v.length);
    switch (ev.type) {
      case "probe": {
        const { id, type: _type, ...decision } = ev;
        this.conns.get(id)?.conn.probed(decision);
        return;
      }
      case "connect":
        return this.connected(ev.id, ev.stream, ev.peer);
      case "close": {
        const entry = this.conns.get(ev.id);
        if (!entry) return;
        this.conns.delete(ev.id);
        this.d.metrics.bytesReceived.inc(Math.max(0, ev.bytes - entry.counted));
        this.log.info({ stream: ev.stream, session: entry.broadcast.session, connection: ev.id, reason: ev.reason, detail: ev.detail, idleMs: ev.idleMs, bytes: ev.bytes, bytesDropped: ev.bytesDropped }, "SRT connection closed");
        entry.broadcast.detached(entry.conn, { reason: ev.reason, detail: ev.detail, bytes: ev.bytes, bytesDropped: ev.bytesDropped });
        return;
      }
      case "refused": {
        const reason = ev.reason === "held" ? (this.holdReason?.(ev.stream) ?? ev.reason) : ev.reason;
        const r: Refusal = { at: new Date().toISOString(), stream: ev.stream, peer: ev.peer, reason, message: ev.message };
        this.refusals.unshift(r);
        this.refusals.length = Math.min(this.refusals.length, KEEP_REFUSALS);
        this.d.metrics.refusals.inc({ reason });
        this.log.warn({ stream: ev.stream || undefined, peer: ev.peer, reason, code: ev.code }, `SRT caller refused: ${ev.message}`);
        return;
      }
      case "log":
        this.log.debug({ area: ev.area, level: ev.level }, `libsrt: ${ev.message}`);
        return;
    }
  }

  private connected(id: number, stream: string, peer: string): void {
    this.d.metrics.connections.inc();
    let b = this.live.get(stream);
    if (b && b.connection) {
      // The same stream publishes again while we still hold its old link: a caller that
      // reconnected before its loss was noticed. The newest one wins and the session continues.
      const old = b.connection;
      this.log.info({ stream, session: b.session, old: old.id, connection: id }, "a new connection replaces the stream's current one");
      this.server?.close(old.id);
    }
    if (!b) {
      const now = new Date();
      b = new Broadcast(this.deps(), stream, newSessionId(now), now, (x) => this.ended(x));
      this.live.set(stream, b);
      this.d.metrics.liveStreams.set(this.live.size);
    }
    const conn = b.attach(id, peer);
    this.conns.set(id, { conn, broadcast: b, peer, counted: 0 });
    this.log.info({ stream, session: b.session, connection: id, peer }, "SRT caller connected");
  }

  private ended(b: Broadcast): void {
    if (this.live.get(b.stream) === b) this.live.delete(b.stream);
    this.d.metrics.liveStreams.set(this.live.size);
    this.ending.add(b);
    void b.finish("").finally(() => {
      this.ending.delete(b);
      this.lastEnd.set(b.stream, { at: new Date().toISOString(), session: b.session, reason: b.endReason ?? "" });
    });
  }

  /** A session found unfinished at start, still within its grace period: a reconnect continues it. */
  adopt(stream: string, session: string, recordingId: string, playlist: Playlist, startedAt: Date, waitMs: number): void {
    const b = new Broadcast(this.deps(), stream, session, startedAt, (x) => this.ended(x), { recordingId, playlist });
    this.live.set(stream, b);
    this.d.metrics.liveStreams.set(this.live.size);
    b.wait(waitMs);
  }

  /** Ends a stream's broadcast cleanly (final playlist last). false when it is not live. */
  async stop(stream: string, why = "stopped through the API"): Promise<boolean> {
    const b = this.live.get(stream);
    if (!b) return false;
    const id = b.requestStop(why);
    if (id !== undefined) this.server?.close(id);
    await b.finish(why);
    return true;
  }

  /** Adds what live connections received since the last call to the received-bytes metric (the addon counts). */
  sampleBytes(stats: (id: number) => SrtStats | undefined): void {
    for (const [id, entry] of this.conns) {
      const s = stats(id);
      if (!s) continue;
      this.d.metrics.bytesReceived.inc(Math.max(0, s.bytesReceived - entry.counted));
      entry.counted = s.bytesReceived;
    }
  }

  get(stream: string): Broadcast | undefined {
    return this.live.get(stream);
  }

  list(stats: (id: number) => SrtStats | undefined): LiveInfo[] {
    const now = Date.now();
    return [...this.live.values()].map((b) => {
      const c = b.connection;
      const s = c ? stats(c.id) : undefined;
      return {
        stream: b.stream,
        session: b.session,
        recordingId: b.recordingId,
        state: b.state === "waiting" ? "waiting" : "live",
        startedAt: b.startedAt.toISOString(),
        durationSeconds: Math.round((now - b.startedAt.getTime()) / 1000),
        storedSeconds: Math.round(b.playlist.storedDuration * 10) / 10,
        segments: b.playlist.entries.length,
        lastSegmentAt: b.lastSegmentAt?.toISOString(),
        peer: c ? this.conns.get(c.id)?.peer : undefined,
        profile: c?.decision?.profile,
        profileReason: c?.decision?.reason,
        bitrateKbps: s ? Math.round(s.mbpsReceiveRate * 1000) : undefined,
        bytesReceived: s?.bytesReceived ?? c?.bytes,
        packetsLost: s?.packetsLost,
        waitingSince: b.waitingSince?.toISOString(),
      };
    });
  }

  /** Shutdown: stop taking data, store what FFmpeg finished, leave sessions for the next start. */
  async suspendAll(): Promise<void> {
    await Promise.all([...this.live.values()].map((b) => b.suspend()));
    await Promise.all([...this.ending].map((b) => b.finish("")));
  }
}
