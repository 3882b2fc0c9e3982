// One FFmpeg per connection: MPEG-TS on stdin (a pipe the SRT addon writes into, never JavaScript), 4 s MPEG-TS segments in the spool folder,
// and one CSV line on stdout per finished segment (the segment muxer writes it when the file is closed).
import { createInterface } from "node:readline";
import { join } from "node:path";
import type { Logger } from "../../lib/log.js";
import type { Profile } from "./ts-probe.js";
import { dieWithParent } from "../../lib/child.js";
import { spawnNative, type NativeChild } from "./native-child.js";

export interface FinishedSegment {
  name: string;
  path: string;
  duration: number;
  /** Wall clock (ms) when FFmpeg closed the file. */
  closedAt: number;
}

export interface SegmenterOptions {
  ffmpeg: string;
  /** FFmpeg's stdin: the read end of the pipe the SRT receive thread writes into. */
  stdinFd: number;
  dir: string;
  startIndex: number;
  segmentSeconds: number;
  profile: Profile;
  log: Logger;
  onSegment(seg: FinishedSegment): void;
}

/** The original service's transcode settings: libx264 faster, CRF 23 capped at 3000k, GOP 50 at 25 fps, AAC 128k 48 kHz stereo. */
const TRANSCODE = [
  "-c:v", "libx264", "-preset", "faster", "-crf", "23", "-maxrate", "3000k", "-bufsize", "6000k",
  "-g", "50", "-keyint_min", "50", "-sc_threshold", "0", "-r", "25", "-pix_fmt", "yuv420p",
  "-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2",
];

export function segmenterArgs(o: Pick<SegmenterOptions, "dir" | "startIndex" | "segmentSeconds" | "profile">): string[] {
  return [
    "-hide_banner", "-nostdin", "-loglevel", "error",
    "-fflags", "+genpts+discardcorrupt", "-f", "mpegts", "-i", "pipe:0",
    "-map", "0:v:0?", "-map", "0:a:0?",
    ...(o.profile === "copy" ? ["-c", "copy"] : TRANSCODE),
    "-max_muxing_queue_size", "4096",
    "-f", "segment", "-segment_time", String(o.segmentSeconds), "-segment_format", "mpegts",
    "-segment_list", "pipe:1", "-segment_list_type", "csv",
    "-segment_start_number", String(o.startIndex),
    join(o.dir, "seg%05d.ts"),
  ];
}

export class Segmenter {
  private readonly proc?: NativeChild;
  private stderrTail = "";
  /** Resolves when FFmpeg exited and every segment line was read. */
  readonly exited: Promise<{ code: number | undefined; error?: string }>;

  constructor(private readonly o: SegmenterOptions) {
    // The addon's posix_spawn, not Node's spawn: a burst of callers must not stall the event loop (see native-child.ts).
    // dieWithParent: a gateway killed with -9 must not leave its transcoding FFmpeg running (orphans were seen at full CPU).
    const [command, args] = dieWithParent(o.ffmpeg, segmenterArgs(o));
    try {
      this.proc = spawnNative(command, args, o.stdinFd);
    } catch (err) {
      this.stderrTail = (err as Error).message;
      this.exited = Promise.resolve({ code: undefined, error: `ffmpeg could not start: ${this.stderrTail}` });
      return;
    }
    const exit = this.proc.exit;
    this.proc.stderr.on("data", (d: Buffer) => {
      this.stderrTail = (this.stderrTail + d.toString()).slice(-2000);
    });
    const lines = createInterface({ input: this.proc.stdout });
    const linesDone = new Promise<void>((resolve) => lines.on("close", resolve));
    lines.on("line", (line) => {
      const [file, start, end] = line.split(",");
      if (!file || start === undefined || end === undefined) return;
      const duration = Number(end) - Number(start);
      o.onSegment({ name: file, path: join(o.dir, file), duration: duration > 0 ? duration : o.segmentSeconds, closedAt: Date.now() });
    });
    this.exited = Promise.all([exit, linesDone]).then(([r]) => {
      const code = r.code ?? undefined;
      const error = code === 0 ? undefined : `ffmpeg exited with ${code ?? r.signal}: ${this.stderrTail.trim().split("\n").slice(-3).join(" | ")}`;
      return { code, error };
    });
  }

  /** Ends when the SRT receive thread closes FFmpeg's stdin: FFmpeg writes the last (short) segment and exits. */
  end(): Promise<{ code: number | undefined; error?: string }> {
    return this.exited;
  }

  kill(): void {
    this.proc?.kill("SIGKILL");
  }
}
