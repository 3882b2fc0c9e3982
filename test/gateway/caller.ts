// SRT callers as OBS is one: FFmpeg's libsrt caller sending MPEG-TS, from a test pattern and a tone.
import { execa, type ResultPromise } from "execa";

export interface CallerOptions {
  seconds: number;
  /** "h264" (H.264/AAC, what OBS sends) or "mpeg2" (MPEG-2 video + MP2 audio, must be transcoded). */
  codec?: "h264" | "mpeg2";
  size?: string;
  gopSeconds?: number;
  videoBitrate?: string;
  /** Read this MPEG-TS file in real time instead of encoding a test pattern (benchmarks). */
  file?: string;
}

export function srtUrl(port: number, streamid: string, passphrase?: string): string {
  return `srt://127.0.0.1:${port}?streamid=${streamid}${passphrase ? `&passphrase=${passphrase}` : ""}`;
}

export function publish(url: string, o: CallerOptions): ResultPromise<{ reject: false; stdin: "ignore"; stdout: "ignore"; stderr: "pipe"; buffer: true }> {
  const input = o.file
    ? ["-re", "-stream_loop", "-1", "-t", String(o.seconds), "-i", o.file, "-c", "copy"]
    : [
        "-re", "-f", "lavfi", "-i", `testsrc2=size=${o.size ?? "640x360"}:rate=25:duration=${o.seconds}`,
        "-f", "lavfi", "-i", `sine=frequency=440:sample_rate=48000:duration=${o.seconds}`,
        ...(o.codec === "mpeg2"
          ? ["-c:v", "mpeg2video", "-q:v", "5", "-g", "12", "-c:a", "mp2", "-b:a", "128k"]
          : ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p", "-g", String(25 * (o.gopSeconds ?? 2)), "-keyint_min", String(25 * (o.gopSeconds ?? 2)),
             ...(o.videoBitrate ? ["-b:v", o.videoBitrate, "-maxrate", o.videoBitrate, "-bufsize", o.videoBitrate] : []),
             "-c:a", "aac", "-b:a", "96k"]),
      ];
  return execa("ffmpeg", ["-hide_banner", "-loglevel", "error", "-nostdin", ...input, "-f", "mpegts", url], {
    reject: false,
    stdin: "ignore",
    stdout: "ignore",
    stderr: "pipe",
    buffer: true,
  });
}
