// One accepted SRT connection. Its media bytes stay native: the addon's receive thread probes them
// (copy or transcode), holds them until the broadcast lets this connection start (after the previous
// connection's FFmpeg finished), then writes them straight into FFmpeg's stdin pipe. JavaScript sees
// the probe's decision, FFmpeg's finished segments and the close.
import { closeSync } from "node:fs";
import type { Logger } from "../../lib/log.js";
import type { CloseReason, ProbeDecision, Profile } from "../srt/addon.js";
import type { FinishedSegment, Segmenter } from "./segmenter.js";

export interface ConnectionOptions {
  id: number;
  stream: string;
  peer: string;
  segmentSeconds: number;
  forced: "auto" | Profile;
  log: Logger;
  /** A close-on-exec pipe [readFd, writeFd]. */
  makePipe(): [number, number];
  spawn(profile: Profile, startIndex: number, stdinFd: number, onSegment: (s: FinishedSegment) => void): Segmenter;
  /** Gives the receive thread the pipe's write end; false when the connection is already gone. */
  attach(fd: number): boolean;
  /** Ends the SRT connection (the receive thread then closes FFmpeg's stdin). */
  close(): void;
  onSegment(s: FinishedSegment, conn: Connection): void;
}

export interface ConnectionEnd {
  reason: CloseReason;
  /** Why a stalled connection was ended. */
  detail?: string;
  bytes: number;
  bytesDropped: number;
}

/** FFmpeg that has made no segment this long after it started gets its connection ended. */
export function noSegmentTimeoutMs(segmentSeconds: number): number {
  return (5 * segmentSeconds + 5) * 1000;
}

export class Connection {
  readonly connectedAt = new Date();
  /** Bytes received (known at the end; GET /streams asks the addon while live). */
  bytes = 0;
  decision?: ProbeDecision;
  segments = 0;
  /** Why this connection produced nothing usable, in words for the recording's error. */
  failure?: string;
  endInfo?: ConnectionEnd;
  private startIndex?: number;
  private segmenter?: Segmenter;
  private watchdog?: NodeJS.Timeout;
  private resolveDone!: (r: { error?: string }) => void;
  /** Resolves when this connection's FFmpeg has exited and reported every segment. */
  readonly done: Promise<{ error?: string }>;

  constructor(private readonly o: ConnectionOptions) {
    this.done = new Promise((r) => (this.resolveDone = r));
    if (o.forced !== "auto") this.decision = { profile: o.forced, reason: `INGEST_PROFILE=${o.forced}` };
  }

  get id() {
    return this.o.id;
  }

  /** The receive thread's probe decided. */
  probed(d: ProbeDecision): void {
    this.o.log.info({ connection: this.o.id, profile: d.profile, reason: d.reason, video: d.video, audio: d.audio }, "ingest profile chosen");
    this.decision ??= d;
    this.run();
  }

  /** The broadcast's go-ahead, with the first segment number this connection writes. */
  start(startIndex: number): void {
    this.startIndex = startIndex;
    this.run();
  }

  /** The SRT connection closed; the receive thread has closed FFmpeg's stdin, so FFmpeg finishes its last segment. */
  end(info: ConnectionEnd): void {
    this.endInfo = info;
    this.bytes = info.bytes;
    // No segmenter will come: nothing arrived, or the bytes were never probed.
    if (!this.segmenter && (!this.decision || info.bytes === 0)) this.resolveDone({});
  }

  private run(): void {
    if (this.segmenter || this.startIndex === undefined || !this.decision) return;
    if (this.endInfo && this.endInfo.bytes === 0) return;
    const [readFd, writeFd] = this.o.makePipe();
    let seg: Segmenter;
    try {
      seg = this.o.spawn(this.decision.profile, this.startIndex, readFd, (s) => {
        this.segments++;
        if (this.watchdog) clearTimeout(this.watchdog);
        this.watchdog = undefined;
        this.o.onSegment(s, this);
      });
    } finally {
      closeSync(readFd);
    }
    this.segmenter = seg;
    if (!this.o.attach(writeFd)) closeSync(writeFd);
    this.watchdog = setTimeout(() => {
      if (this.endInfo || this.segments > 0) return;
      this.failure = `FFmpeg made no segment in ${noSegmentTimeoutMs(this.o.segmentSeconds) / 1000} s of input (${this.decision?.reason ?? "no probe decision"}); the stream may have no keyframes: set the encoder's keyframe interval to 2 s`;
      this.o.log.error({ connection: this.o.id }, this.failure);
      // Killed, not ended: a graceful end would flush what it holds as a segment no player can start.
      seg.kill();
      this.o.close();
    }, noSegmentTimeoutMs(this.o.segmentSeconds));
    void seg.exited.then((r) => {
      if (this.watchdog) clearTimeout(this.watchdog);
      if (r.error) {
        this.o.log.warn({ connection: this.o.id, err: r.error }, "ffmpeg for this connection failed");
        this.failure ??= r.error;
      }
      // FFmpeg gave up while the caller still sends (it cannot read the bytes): end the connection too.
      if (!this.endInfo) this.o.close();
      this.resolveDone({ error: r.error });
    });
  }

  kill(): void {
    this.segmenter?.kill();
  }
}
