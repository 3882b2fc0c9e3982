import { createInterface } from "node:readline";
import { execa } from "execa";
import { HLS_PROTOCOLS, hlsInputOptions } from "../../lib/ffmpeg.js";
import { dieWithParent } from "../../lib/child.js";
import { PermanentError, TransientError } from "../runtime/handler.js";

// FFmpeg reads temporary playlists of presigned segment URLs (the video variant and each separate audio
// rendition, one input each) and writes one MP4: streams MP4 holds are copied (H.264/HEVC, AAC), others
// re-encoded; a source whose format changes across discontinuities is re-encoded to its first part's format.

export interface Tools {
  ffmpeg: string;
  ffprobe: string;
}

export interface VideoFormat {
  codec: string;
  width?: number;
  height?: number;
  profile?: string;
}

export interface AudioFormat {
  codec: string;
  sampleRate?: number;
  channels?: number;
}

/** The first video and audio stream of one input, as FFmpeg sees them. */
export interface InputStreams {
  video?: VideoFormat;
  audio?: AudioFormat;
}

const PROTOCOLS = HLS_PROTOCOLS;
/** Errors that say the store or the network failed, not the media: worth another attempt. */
const NETWORK_TROUBLE = /Server returned 5\d\d|Connection refused|Connection reset|Connection timed out|timed out|Failed to open segment|Failed to reload playlist|Immediate exit requested/i;

interface ProbeStream {
  codec_type: string;
  codec_name?: string;
  width?: number;
  height?: number;
  profile?: string;
  sample_rate?: string;
  channels?: number;
}

/** The streams at the start of a playlist (or of one part of it); `what` names it in errors. */
export async function probeInput(tools: Tools, playlistPath: string, describe: (msg: string) => string, signal: AbortSignal, what = "the first segment"): Promise<InputStreams> {
  const hls = await hlsInputOptions(tools);
  const r = await execa(
    tools.ffprobe,
    ["-v", "error", "-protocol_whitelist", PROTOCOLS, ...hls, "-show_entries", "stream=codec_type,codec_name,width,height,profile,sample_rate,channels", "-of", "json", playlistPath],
    { reject: false, cancelSignal: signal, forceKillAfterDelay: 2000 },
  );
  signal.throwIfAborted();
  if (r.exitCode !== 0) {
    const said = describe(lastLines(String(r.stderr)));
    if (NETWORK_TROUBLE.test(said)) throw new TransientError(`reading ${what} failed: ${said}`);
    throw new PermanentError(`${what} is not audio or video FFmpeg can read (${said}): check the segment files and upload the folder again`);
  }
  const streams = (JSON.parse(String(r.stdout)) as { streams?: ProbeStream[] }).streams ?? [];
  const v = streams.find((s) => s.codec_type === "video" && s.codec_name);
  const a = streams.find((s) => s.codec_type === "audio" && s.codec_name);
  return {
    video: v ? { codec: v.codec_name!, width: v.width, height: v.height, profile: v.profile } : undefined,
    audio: a ? { codec: a.codec_name!, sampleRate: a.sample_rate ? Number(a.sample_rate) : undefined, channels: a.channels } : undefined,
  };
}

/** One stream of the MP4, in output order (video first, then audio tracks). */
export interface Track {
  input: number;
  kind: "video" | "audio";
  codec: string;
  /** Re-encode to this format (the first part's) because the source changes format midway. */
  normalize?: { width?: number; height?: number; sampleRate?: number; channels?: number };
  language?: string;
  title?: string;
  isDefault?: boolean;
}

/** The mapping and codec of every output track: copy what MP4 holds as is, re-encode the rest to H.264 / AAC. */
export function codecArgs(tracks: readonly Track[]): { args: string[]; reencodes: string[] } {
  const args: string[] = [];
  const reencodes: string[] = [];
  let a = 0;
  for (const t of tracks) {
    if (t.kind === "video") {
      args.push("-map", `${t.input}:v:0`);
      const n = t.normalize;
      if (n?.width && n.height) {
        // Every part is fitted into the first part's frame, so the MP4 has one sample description.
        args.push("-c:v:0", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p");
        args.push("-filter:v:0", `scale=${n.width}:${n.height}:force_original_aspect_ratio=decrease,pad=${n.width}:${n.height}:(ow-iw)/2:(oh-ih)/2,setsar=1`);
        reencodes.push(`video ${t.codec} (its format changes midway)`);
      } else if (t.codec === "h264") args.push("-c:v:0", "copy");
      // hvc1 is the tag Apple players require for HEVC in MP4.
      else if (t.codec === "hevc") args.push("-c:v:0", "copy", "-tag:v:0", "hvc1");
      else {
        args.push("-c:v:0", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p");
        reencodes.push(`video ${t.codec}`);
      }
      continue;
    }
    args.push("-map", `${t.input}:a:0`);
    const n = t.normalize;
    if (n?.sampleRate || n?.channels) {
      args.push(`-c:a:${a}`, "aac", `-b:a:${a}`, "160k", ...(n.sampleRate ? [`-ar:a:${a}`, String(n.sampleRate)] : []), ...(n.channels ? [`-ac:a:${a}`, String(n.channels)] : []));
      reencodes.push(`audio ${t.codec} (its format changes midway)`);
    } else if (t.codec === "aac") args.push(`-c:a:${a}`, "copy");
    else {
      args.push(`-c:a:${a}`, "aac", `-b:a:${a}`, "160k");
      reencodes.push(`audio ${t.codec}`);
    }
    if (t.language) args.push(`-metadata:s:a:${a}`, `language=${t.language}`);
    if (t.title) args.push(`-metadata:s:a:${a}`, `title=${t.title}`);
    args.push(`-disposition:a:${a}`, t.isDefault ? "default" : "0");
    a++;
  }
  return { args, reencodes };
}

/**
 * Discontinuities reset timestamps: FFmpeg folds jumps larger than this threshold so the MP4's timeline
 * stays continuous, and content FFmpeg had to skip (a corrupt segment) shows up as a shorter MP4.
 * MPEG-TS interleaves audio and video closely, so a 1 s threshold is safe; fMP4 carries each track's
 * whole fragment at once (audio arrives a segment "late"), so its threshold must stay above a segment's
 * length or the audio would be shifted.
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
  /** Local playlists, one FFmpeg input each: the video variant first, then separate audio renditions. */
  inputs: readonly string[];
  tracks: readonly Track[];
  output: string;
  /** The playlist's duration, to turn FFmpeg's position into a fraction. */
  seconds: number;
  signal: AbortSignal;
  onProgress: (fraction: number) => void;
  /** Turns presigned URLs in FFmpeg's messages back into segment names. */
  describe: (msg: string) => string;
  onStart?: (pid: number | undefined) => Promise<void>;
}

export async function remux(o: RemuxOptions): Promise<void> {
  const { args: codec } = codecArgs(o.tracks);
  const hls = await hlsInputOptions(o.tools);
  const inputs = o.inputs.flatMap((path) => [
    "-protocol_whitelist", PROTOCOLS,
    // A stalled segment read fails instead of hanging.
    "-rw_timeout", "30000000",
    ...hls,
    "-i", path,
  ]);
  // A replica killed with -9 must not leave this FFmpeg running (the kernel kills it; child.pid covers the rest).
  const [command, args] = dieWithParent(o.tools.ffmpeg, [
    "-hide_banner", "-nostdin", "-loglevel", "warning", "-nostats",
    ...discontinuityArgs(o),
    ...inputs,
    ...codec,
    ...(o.faststart ? ["-movflags", "+faststart"] : []),
    "-progress", "pipe:1",
    "-y", o.output,
  ]);
  const sub = execa(
    command,
    args,
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
  videoTracks: number;
  audioTracks: number;
}

export async function probeOutput(tools: Tools, file: string, signal: AbortSignal): Promise<OutputFacts> {
  const { stdout } = await execa(tools.ffprobe, ["-v", "error", "-show_entries", "format=duration:stream=codec_type,codec_name,width,height", "-of", "json", file], { cancelSignal: signal });
  const j = JSON.parse(stdout) as { format?: { duration?: string }; streams?: ProbeStream[] };
  const streams = j.streams ?? [];
  const v = streams.filter((s) => s.codec_type === "video");
  const a = streams.filter((s) => s.codec_type === "audio");
  return {
    duration: Number(j.format?.duration ?? 0),
    width: v[0]?.width ?? null,
    height: v[0]?.height ?? null,
    videoCodec: v[0]?.codec_name ?? null,
    audioCodec: a[0]?.codec_name ?? null,
    videoTracks: v.length,
    audioTracks: a.length,
  };
}

/** FFmpeg's last few messages, which say why it stopped. */
export function lastLines(stderr: string, n = 4): string {
  const lines = stderr.split("\n").map((l) => l.trim()).filter(Boolean);
  const errors = lines.filter((l) => /error|invalid|failed|could not|unable|corrupt|no such/i.test(l));
  return (errors.length ? errors : lines).slice(-n).join("; ").slice(0, 800) || "no message";
}
