// One broadcast of one stream: a session folder `<stream>/<session>/`, its recording row, and the
// connections that feed it one after another (a reconnect within the grace period continues it).
import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { S3Client } from "@aws-sdk/client-s3";
import type { ObjectPutter } from "../../lib/s3.js";
import type { Config } from "../../lib/config.js";
import type { Logger } from "../../lib/log.js";
import type { Db } from "../../db/client.js";
import { endBroadcast, resumeBroadcast, startBroadcast } from "../../db/streams.js";
import { failEmptyRecording, getRecordingBySourcePrefix } from "../../db/recordings.js";
import { publishRecordingEvent, type EventPublisher } from "../../lib/events.js";
import { sessionPrefix } from "../../lib/layout.js";
import type { GatewayMetrics } from "../metrics.js";
import { SessionUploader, type StoreStages } from "../uploader/uploader.js";
import { retry } from "../../lib/retry.js";
import type { SpoolBudget } from "../uploader/spool-budget.js";
import { Connection, type ConnectionEnd } from "./connection.js";
import { Playlist, nextSegmentIndex } from "./playlist.js";
import { Segmenter, type FinishedSegment } from "./segmenter.js";

export interface BroadcastDeps {
  s3: S3Client;
  /** The hot path's PUTs (segments and live playlists), lighter than the SDK's. */
  putter: ObjectPutter;
  /** Batches each stream's last-stored-segment time into the database. */
  marks: { mark(stream: string, at: Date): void };
  db: Db;
  log: Logger;
  config: Config;
  metrics: GatewayMetrics;
  budget: SpoolBudget;
  ffmpeg: string;
  /** Announces stream and recording changes (stream.connected, recording.live, stream.disconnected). */
  events?: EventPublisher;
  /** The SRT addon's side of a connection: hand it FFmpeg's stdin, or end it. */
  srt: { attach(id: number, fd: number): boolean; close(id: number): boolean; makePipe(): [number, number] };
}

/** The SRT addon ends a connection that moves no byte this long (a libsrt wedge is caught sooner). */
export const STALL_MS = 15_000;

export function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(1)} MB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} kB`;
  return `${n} bytes`;
}

export type BroadcastState = "live" | "waiting" | "ending" | "ended";

/** Sortable and unique: `20261125T031500Z-ab12`. */
export function newSessionId(now: Date): string {
  return `${now.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z")}-${randomBytes(2).toString("hex")}`;
}

export function spoolRoot(spoolDir: string): string {
  return join(spoolDir, "sessions");
}

export const CRASHED_EARLY = "the gateway stopped (crashed or was killed) before a first segment of this broadcast was stored";

/** The error of a broadcast whose gateway died before storing anything and whose caller did not come back. */
export function lostBeforeFirstSegment(graceMs: number): string {
  return `${CRASHED_EARLY}, and the caller did not come back within the ${graceMs / 1000} s reconnect grace: nothing of it was recorded`;
}

export class Broadcast {
  state: BroadcastState = "live";
  readonly prefix: string;
  readonly playlist: Playlist;
  readonly uploader: SessionUploader;
  connection?: Connection;
  /** Every connection of this broadcast, for the error a recording with no segment gets. */
  private readonly connections: Connection[] = [];
  lastSegmentAt?: Date;
  waitingSince?: Date;
  endReason?: string;
  recordingId?: string;
  private readonly spool: string;
  private nextIndex: number;
  private segmentsSeen: number;
  private chain: Promise<void> = Promise.resolve();
  private readonly ready: Promise<void>;
  private graceTimer?: NodeJS.Timeout;
  private stopRequested = false;
  private stopWhy = "stopped through the API";
  private readonly log: Logger;
  private announcedDown = false;
  /** Taken over from a previous run of the gateway that stopped mid-broadcast (crash recovery). */
  private readonly resumed: boolean;

  constructor(
    private readonly d: BroadcastDeps,
    readonly stream: string,
    readonly session: string,
    readonly startedAt: Date,
    private readonly onEnding: (b: Broadcast) => void,
    resumed?: { recordingId: string; playlist: Playlist },
  ) {
    this.prefix = sessionPrefix(stream, session);
    this.resumed = resumed !== undefined;
    this.log = d.log.child({ stream, session });
    this.playlist = resumed?.playlist ?? new Playlist(d.config.gateway.segmentSeconds);
    this.nextIndex = nextSegmentIndex(this.playlist.entries);
    this.segmentsSeen = this.playlist.entries.length;
    this.spool = join(spoolRoot(d.config.gateway.spoolDir), stream, session);
    mkdirSync(this.spool, { recursive: true });
    this.uploader = new SessionUploader({
      store: d.putter,
      bucket: d.config.s3.hlsBucket,
      prefix: this.prefix,
      playlist: this.playlist,
      log: d.log,
      metrics: d.metrics,
      budget: d.budget,
      context: { stream, session },
      onStored: (seg, ms, stages) => this.segmentStored(seg.name, ms, stages),
    });
    if (resumed) {
      this.recordingId = resumed.recordingId;
      this.ready = Promise.resolve();
    } else {
      this.ready = this.insertRow();
    }
  }

  private async insertRow(): Promise<void> {
    const { recordingId } = await retry(
      () =>
        startBroadcast(this.d.db, {
          stream: this.stream,
          session: this.session,
          sourcePrefix: this.prefix,
          title: this.startedAt.toISOString().replace("T", " ").slice(0, 16) + " UTC",
          // Only used when ingest auth is off and the name has no row: never a usable credential.
          fallbackSecret: randomBytes(24).toString("base64url"),
          now: this.startedAt,
        }),
      { what: "recording the broadcast in the database", log: this.d.log, context: { stream: this.stream, session: this.session }, maxMs: 5 * 60_000 },
    );
    this.recordingId = recordingId;
    this.log.info({ recording: recordingId, prefix: this.prefix }, "broadcast started");
    void this.announce("stream.connected");
    void getRecordingBySourcePrefix(this.d.db, this.prefix).then((row) => publishRecordingEvent(this.d.events, "recording.live", row), () => {});
  }

  /** A new SRT connection for this stream: it continues the session after the current one has finished. */
  attach(id: number, peer: string): Connection {
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.graceTimer = undefined;
    const wasWaiting = this.state === "waiting";
    this.state = "live";
    this.waitingSince = undefined;
    const conn = new Connection({
      id,
      stream: this.stream,
      peer,
      segmentSeconds: this.d.config.gateway.segmentSeconds,
      forced: this.d.config.gateway.profile,
      log: this.log,
      makePipe: () => this.d.srt.makePipe(),
      spawn: (profile, startIndex, stdinFd, onSegment) =>
        new Segmenter({ ffmpeg: this.d.ffmpeg, stdinFd, dir: this.spool, startIndex, segmentSeconds: this.d.config.gateway.segmentSeconds, profile, log: this.log, onSegment }),
      attach: (fd) => this.d.srt.attach(id, fd),
      close: () => void this.d.srt.close(id),
      onSegment: (s, c) => this.segmentFinished(s, c),
    });
    this.connections.push(conn);
    this.connection = conn;
    // Numbering continues where the previous connection's FFmpeg stopped, so it must have finished.
    this.chain = this.chain.then(async () => {
      conn.start(this.nextIndex);
      await conn.done;
    });
    if (wasWaiting || this.segmentsSeen > 0) {
      this.log.info({ peer, connection: id }, "caller reconnected; the session continues after a discontinuity");
      void this.ready.then(() => resumeBroadcast(this.d.db, { stream: this.stream, session: this.session, recordingId: this.recordingId!, now: new Date() })).then(() => this.announce("stream.connected")).catch((err) =>
        this.log.warn({ err: (err as Error).message }, "could not mark the stream live again"),
      );
    }
    return conn;
  }

  private segmentFinished(s: FinishedSegment, conn: Connection): void {
    const m = /^seg(\d+)\.ts$/.exec(s.name);
    if (m) this.nextIndex = Math.max(this.nextIndex, Number(m[1]) + 1);
    const discontinuity = conn.segments === 1 && this.segmentsSeen > 0;
    this.segmentsSeen++;
    void this.uploader.enqueue({ name: s.name, path: s.path, duration: s.duration, closedAt: s.closedAt, discontinuity });
  }

  private segmentStored(name: string, ms: number, stages: StoreStages): void {
    this.lastSegmentAt = new Date();
    this.d.metrics.segmentsStored.inc();
    this.d.metrics.segmentStoreSeconds.observe(ms / 1000);
    // A slow one says where its time went (queue, disk, store): the figure operators ask about first.
    this.log.info({ segment: name, ms, stage: "segment-stored", ...(ms >= 1000 ? stages : {}) }, "segment stored");
    this.d.marks.mark(this.stream, this.lastSegmentAt);
  }

  /** Its SRT connection closed; `end.reason` comes from the addon. */
  detached(conn: Connection, end: ConnectionEnd): void {
    conn.end(end);
    if (this.connection !== conn) return; // replaced by a newer connection
    this.connection = undefined;
    if (this.stopRequested) void this.finish(this.stopWhy);
    else if (conn.failure) void this.finish(conn.failure);
    else if (end.reason === "closed") void this.finish("the caller ended the stream");
    else if (end.reason === "stalled") void this.finish(`the connection was ended: ${end.detail ?? "it moved no data"}`);
    else if (end.reason === "timeout") {
      this.wait(this.d.config.gateway.reconnectGraceMs);
      void this.announce("stream.disconnected", `the connection was lost; the session stays open ${this.d.config.gateway.reconnectGraceMs / 1000} s for a reconnect`);
    }
    else void this.finish("the connection was closed");
  }

  /** What a recording with no segment says: what arrived, and why nothing came of it. */
  private emptyReason(): string {
    const bytes = this.connections.reduce((s, c) => s + c.bytes, 0);
    // Media the previous run received but had not stored died with it: say so, not "no media arrived".
    if (this.resumed && bytes === 0) return lostBeforeFirstSegment(this.d.config.gateway.reconnectGraceMs);
    if (this.resumed) return `${CRASHED_EARLY}; after it restarted, ${this.emptyReasonOf(bytes)}`;
    return this.emptyReasonOf(bytes);
  }

  private emptyReasonOf(bytes: number): string {
    if (bytes === 0) return "the broadcast ended before any media arrived; check that the encoder sends MPEG-TS over SRT";
    const failure = this.connections.map((c) => c.failure).filter(Boolean).at(-1);
    const probe = this.connections.map((c) => c.decision?.reason).filter(Boolean).at(-1);
    return `the gateway received ${formatBytes(bytes)} from the caller but made no segment of it: ${failure ?? "FFmpeg finished without a complete segment"}${probe ? ` (input: ${probe})` : ""}; check that the encoder sends MPEG-TS with H.264 or another video codec FFmpeg reads`;
  }

  /** Keeps the session open for a reconnect; finalises it when none comes in time. */
  wait(ms: number): void {
    this.state = "waiting";
    this.waitingSince ??= new Date();
    this.log.info({ graceMs: Math.round(ms) }, "caller lost; waiting for it to reconnect");
    this.graceTimer = setTimeout(() => void this.finish(`no reconnect within ${this.d.config.gateway.reconnectGraceMs / 1000} s`), ms);
  }

  /** POST /streams/:name/stop: end cleanly, whatever the caller does. Returns the connection to close, if any. */
  requestStop(why = "stopped through the API"): number | undefined {
    this.stopRequested = true;
    this.stopWhy = why;
    if (this.connection) return this.connection.id;
    void this.finish(why);
    return undefined;
  }

  private finishing?: Promise<void>;
  finish(why: string): Promise<void> {
    if (!this.finishing) {
      this.finishing = this.doFinish(why);
      this.onEnding(this);
    }
    return this.finishing;
  }

  private async doFinish(why: string): Promise<void> {
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.state = "ending";
    this.endReason = why;
    await this.chain;
    await this.ready.catch(() => {});
    try {
      const stored = await this.uploader.finish();
      if (!stored && this.recordingId)
        await failEmptyRecording(this.d.db, this.recordingId, this.emptyReason());
      await endBroadcast(this.d.db, this.stream, this.session, new Date());
      if (!this.announcedDown) void this.announce("stream.disconnected", why);
      this.log.info({ recording: this.recordingId, why, segments: this.playlist.entries.length, seconds: Math.round(this.playlist.duration) }, stored ? "broadcast ended; final playlist stored" : "broadcast ended with no segment");
    } catch (err) {
      this.log.error({ err: (err as Error).message, why }, "could not finish the broadcast; the next gateway start finalises it from the store");
    }
    this.state = "ended";
  }

  /** The stream as the gateway's GET /streams shows it, after the change is committed. */
  private announce(type: "stream.connected" | "stream.disconnected", reason?: string): Promise<void> {
    const connected = type === "stream.connected";
    this.announcedDown = !connected;
    return this.d.events?.publish(type, {
      name: this.stream,
      state: connected ? "live" : "idle",
      session: this.session,
      recordingId: this.recordingId ?? null,
      ...(connected ? {} : { reason }),
    }) ?? Promise.resolve();
  }

  /** Gateway shutdown: store what is finished, leave the session open for a reconnect after the restart. */
  async suspend(): Promise<void> {
    if (this.graceTimer) clearTimeout(this.graceTimer);
    if (this.connection) this.d.srt.close(this.connection.id);
    await this.chain;
    await this.uploader.drain();
  }
}
