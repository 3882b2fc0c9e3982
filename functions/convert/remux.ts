import { createInterface } from "node:readline";
import { execa } from "execa";
import { PermanentError, TransientError } from "../runtime/handler.js";

// Stage 3 of convert: FFmpeg reads the temporary playlist of presigned segment URLs and writes a
// faststart MP4, copying the streams MP4 can hold (H.264/HEVC, AAC) and re-encoding only the others.

export interface Tools {
  ffmpeg: string;
  ffprobe: string;
}

export interface InputStreams {
  video?: string;
  audio?: string;
}

const PROTOCOLS = "file,http,https,tcp,tls,crypto";
/** Errors that say the store or the network failed, not the media: worth another attempt. */
const NETWORK_TROUBLE = /Server returned 5\d\d|Connection refused|Connection reset|Connection timed out|timed out|Failed to open segment|Failed to reload playlist|Immediate exit requested/i;

/** The codecs of the first video and audio stream, as FFmpeg sees them at the start of the recording. */
export async function probeInput(tools: Tools, playlistPath: string, describe: (msg: string) => string, signal: AbortSignal): Promise<InputStreams> {
  const hls = await hlsInputOptions(tools);
  const r = await execa(tools.ffprobe, ["-v", "error", "-protocol_whitelist", PROTOCOLS, ...hls, "-show_entries", "stream=codec_type,codec_name", "-of", "json", playlistPath], {
    reject: false,
    cancelSignal: signal,
    forceKillAfterDelay: 2000,
  });
  signal.throwIfAborted();
  if (r.exitCode !== 0) {
    const said = describe(lastLines(String(r.stderr)));
    if (NETWORK_TROUBLE.test(said)) throw new TransientError(`reading the first segment failed: ${said}`);
    throw new PermanentError(`the first segment is not audio or video FFmpeg can read (${said}): check the segment files and upload the folder again`);
  }
  const streams = (JSON.parse(String(r.stdout)) as { streams?: { codec_type: string; codec_name?: string }[] }).streams ?? [];
  const out: InputStreams = {
    video: streams.find((s) => s.codec_type === "video")?.codec_name,
    audio: streams.find((s) => s.codec_type === "audio")?.codec_name,
  };
  if (!out.video && !out.audio) throw new PermanentError("the segments hold no audio or video stream: check the segment files and upload the folder again");
  return out;
}

/** Copy what MP4 holds as is; anything else is re-encoded to H.264 / AAC. */
export function codecArgs(input: InputStreams): { args: string[]; reencodes: string[] } {
  const args: string[] = [];
  const reencodes: string[] = [];
  if (input.video) {
    args.push("-map", "0:v:0");
    if (input.video === "h264") args.push("-c:v", "copy");
    // hvc1 is the tag Apple players require for HEVC in MP4.
    else if (input.video === "hevc") args.push("-c:v", "copy", "-tag:v", "hvc1");
    else {
      args.push("-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p");
      reencodes.push(`video ${input.video}`);
    }
  }
  if (input.audio) {
    args.push("-map", "0:a:0");
    if (input.audio === "aac") args.push("-c:a", "copy");
    else {
      args.push("-c:a", "aac", "-b:a", "160k");
      reencodes.push(`audio ${input.audio}`);
    }
  }
  return { args, reencodes };
}

/**
 * Discontinuities reset timestamps: FFmpeg folds jumps larger than this threshold so the MP4's timeline
 * stays continuous, and content FFmpeg had to skip (a corrupt segment) shows up as a shorter MP4 that
 * convert refuses. MPEG-TS interleaves audio and video closely, so a 1 s threshold is safe; fMP4
 * carries each track's whole fragment at once (audio arrives a segment "late"), so its threshold must
 * stay above a segment's length or the audio would be shifted.
 */
export function discontinuityArgs(o: { fragmented: boolean; targetSeconds: number }): string[] {
  const seconds = o.fragmented ? Math.max(10, Math.ceil(o.targetSeconds * 2) + 1) : 1;
  return ["-dts_delta_threshold", String(seconds)];
}

export interface RemuxOptions {
  /** Let FFmpeg move moov to the front itself (a second pass over the file) rather than convert's streaming upload. */
  faststart: boolean;
  /** fMP4 segments (#EXT-X-MAP) rather than MPEG-TS. */
  fragmented: boolean;
  targetSeconds: number;
  tools: Tools;
  input: string;
  output: string;
  streams: InputStreams;
  /** The playlist's duration, to turn FFmpeg's position into a fraction. */
  seconds: number;
  signal: AbortSignal;
  onProgress: (fraction: number) => void;
  /** Turns presigned URLs in FFmpeg's messages back into segment names. */
  describe: (msg: string) => string;
  onStart?: (pid: number | undefined) => Promise<void>;
}

/**
 * The HLS reader's options differ between FFmpeg builds (Debian's 5.1 has the newer extension checks,
 * older static builds do not): ask the binary once. The checks guard against playlists that read local
 * files; ours is written by convert and names only presigned URLs, so any segment extension is allowed.
 */
const hlsOptionCache = new Map<string, Promise<string[]>>();
export function hlsInputOptions(tools: Tools): Promise<string[]> {
  let p = hlsOptionCache.get(tools.ffmpeg);
  if (!p) {
    p = execa(tools.ffmpeg, ["-hide_banner", "-h", "demuxer=hls"], { reject: false }).then((r) => {
      const help = String(r.stdout);
      const has = (name: string) => help.includes(`-${name} `);
      return [
        ...(has("allowed_extensions") ? ["-allowed_extensions", "ALL"] : []),
        ...(has("allowed_segment_extensions") ? ["-allowed_segment_extensions", "ALL"] : []),
        ...(has("extension_picky") ? ["-extension_picky", "0"] : []),
        ...(has("seg_max_retry") ? ["-seg_max_retry", "3"] : []),
      ];
    });
    hlsOptionCache.set(tools.ffmpeg, p);
  }
  return p;
}

export async function remux(o: RemuxOptions): Promise<void> {
  const { args: codec } = codecArgs(o.streams);
  const hls = await hlsInputOptions(o.tools);
  const sub = execa(
    o.tools.ffmpeg,
    [
      "-hide_banner", "-nostdin", "-loglevel", "warning", "-nostats",
      "-protocol_whitelist", PROTOCOLS,
      // A stalled segment read fails instead of hanging.
      "-rw_timeout", "30000000",
      ...hls,
      ...discontinuityArgs(o),
      "-i", o.input,
      ...codec,
      ...(o.faststart ? ["-movflags", "+faststart"] : []),
      "-progress", "pipe:1",
      "-y", o.output,
    ],
    { reject: false, cancelSignal: o.signal, forceKillAfterDelay: 2000, buffer: { stdout: false, stderr: true }, stdin: "ignore" },
  );
  await o.onStart?.(sub.pid);
  const lines = createInterface({ input: sub.stdout! });
  lines.on("line", (line) => {
    const m = /^out_time_us=(\d+)/.exec(line);
    if (m && o.seconds > 0) o.onProgress(Math.min(1, Number(m[1]) / 1e6 / o.seconds));
  });
  const r = await sub;
  o.signal.throwIfAborted();
  if (r.exitCode !== 0) {
    const said = o.describe(lastLines(String(r.stderr)));
    if (NETWORK_TROUBLE.test(said)) throw new TransientError(`FFmpeg could not read the segments: ${said}`);
    throw new PermanentError(`FFmpeg could not convert the recording (${said}): check the segment files and upload the folder again`);
  }
}

export interface OutputFacts {
  duration: number;
  width: number | null;
  height: number | null;
  videoCodec: string | null;
  audioCodec: string | null;
}

export async function probeOutput(tools: Tools, file: string, signal: AbortSignal): Promise<OutputFacts> {
  const { stdout } = await execa(tools.ffprobe, ["-v", "error", "-show_entries", "format=duration:stream=codec_type,codec_name,width,height", "-of", "json", file], { cancelSignal: signal });
  const j = JSON.parse(stdout) as { format?: { duration?: string }; streams?: { codec_type: string; codec_name?: string; width?: number; height?: number }[] };
  const v = j.streams?.find((s) => s.codec_type === "video");
  const a = j.streams?.find((s) => s.codec_type === "audio");
  return { duration: Number(j.format?.duration ?? 0), width: v?.width ?? null, height: v?.height ?? null, videoCodec: v?.codec_name ?? null, audioCodec: a?.codec_name ?? null };
}

/** FFmpeg's last few messages, which say why it stopped. */
export function lastLines(stderr: string, n = 4): string {
  const lines = stderr.split("\n").map((l) => l.trim()).filter(Boolean);
  const errors = lines.filter((l) => /error|invalid|failed|could not|unable|corrupt|no such/i.test(l));
  return (errors.length ? errors : lines).slice(-n).join("; ").slice(0, 800) || "no message";
}
