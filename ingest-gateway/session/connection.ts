// One accepted SRT connection: buffers its MPEG-TS until the profile is known and the
// broadcast lets it start (after the previous connection's FFmpeg finished), then feeds FFmpeg.
import type { Logger } from "../../lib/log.js";
import { TsProbe, type ProbeDecision, type Profile } from "./ts-probe.js";
import type { FinishedSegment, Segmenter } from "./segmenter.js";

export interface ConnectionOptions {
  id: number;
  stream: string;
  peer: string;
  segmentSeconds: number;
  forced: "auto" | Profile;
  log: Logger;
  spawn(profile: Profile, startIndex: number, onSegment: (s: FinishedSegment) => void): Segmenter;
  onSegment(s: FinishedSegment, conn: Connection): void;
  /** Pauses or resumes reading the SRT socket while FFmpeg's stdin is full. */
  backpressure(paused: boolean): void;
}

/** Bytes held while the profile is being decided; beyond this the oldest are dropped. */
const MAX_BUFFERED = 24 * 1024 * 1024;

export class Connection {
  readonly connectedAt = new Date();
  bytes = 0;
  decision?: ProbeDecision;
  segments = 0;
  private readonly probe: TsProbe;
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  private startIndex?: number;
  private segmenter?: Segmenter;
  private inputEnded = false;
  private paused = false;
  private resolveDone!: (r: { error?: string }) => void;
  /** Resolves when this connection's FFmpeg has exited and reported every segment. */
  readonly done: Promise<{ error?: string }>;

  constructor(private readonly o: ConnectionOptions) {
    this.probe = new TsProbe(o.segmentSeconds);
    this.done = new Promise((r) => (this.resolveDone = r));
    if (o.forced !== "auto") this.decision = { profile: o.forced, reason: `INGEST_PROFILE=${o.forced}` };
  }

  get id() {
    return this.o.id;
  }

  push(chunk: Buffer): void {
    this.bytes += chunk.length;
    if (this.segmenter) {
      if (!this.segmenter.write(chunk) && !this.paused) {
        this.paused = true;
        this.o.backpressure(true);
        this.segmenter.onDrain(() => {
          this.paused = false;
          this.o.backpressure(false);
        });
      }
      return;
    }
    if (!this.decision) {
      const d = this.probe.push(chunk);
      if (d) {
        this.decision = d;
        this.o.log.info({ connection: this.o.id, profile: d.profile, reason: d.reason, video: d.video, audio: d.audio }, "ingest profile chosen");
      }
    }
    this.buffered.push(chunk);
    this.bufferedBytes += chunk.length;
    while (this.bufferedBytes > MAX_BUFFERED && this.buffered.length > 1) this.bufferedBytes -= this.buffered.shift()!.length;
    this.run();
  }

  /** The broadcast's go-ahead, with the first segment number this connection writes. */
  start(startIndex: number): void {
    this.startIndex = startIndex;
    this.run();
  }

  /** The SRT connection closed: flush what is buffered and let FFmpeg finish the last segment. */
  end(): void {
    this.inputEnded = true;
    if (!this.decision && this.bufferedBytes > 0) {
      this.decision = { profile: "transcode", reason: "the connection ended before the probe could see two keyframes" };
    }
    this.run();
  }

  private run(): void {
    if (this.segmenter) {
      if (this.inputEnded) void this.finish();
      return;
    }
    if (this.startIndex === undefined) return;
    if (this.inputEnded && this.bufferedBytes === 0) {
      this.resolveDone({});
      return;
    }
    if (!this.decision) return;
    this.segmenter = this.o.spawn(this.decision.profile, this.startIndex, (s) => {
      this.segments++;
      this.o.onSegment(s, this);
    });
    for (const b of this.buffered) this.segmenter.write(b);
    this.buffered = [];
    this.bufferedBytes = 0;
    if (this.inputEnded) void this.finish();
  }

  private finishing = false;
  private async finish(): Promise<void> {
    if (this.finishing || !this.segmenter) return;
    this.finishing = true;
    const r = await this.segmenter.end();
    if (r.error) this.o.log.warn({ connection: this.o.id, err: r.error }, "ffmpeg for this connection failed");
    this.resolveDone({ error: r.error });
  }

  kill(): void {
    this.segmenter?.kill();
  }
}
