import { execa } from "execa";
import type { PlannedRendition, SourceFacts } from "./ladder.js";
import { keyframesOnBoundaries } from "./ladder.js";

// One FFmpeg process decodes the source once and encodes every rung (split → scale per rung), writing CMAF
// fMP4 segments through FFmpeg's DASH muxer: it writes manifest.mpd and, with hls_playlist, an HLS media
// playlist per representation over the same segment files, so HLS and DASH players share one copy.

export interface ProbedSource extends SourceFacts {
  duration: number;
  hasAudio: boolean;
}

export class SourceError extends Error {
  override name = "SourceError";
  readonly kind = "source" as const;
}

/** What the packaging needs to know about the MP4; a file FFmpeg cannot read is a SourceError. */
export async function probeSource(ffprobe: string, file: string, segmentSeconds: number, signal?: AbortSignal): Promise<ProbedSource> {
  const r = await execa(ffprobe, ["-v", "error", "-show_entries", "format=duration:stream=codec_type,codec_name,width,height,avg_frame_rate,r_frame_rate,bit_rate", "-of", "json", file], { reject: false, cancelSignal: signal });
  if (r.exitCode !== 0) throw new SourceError(`the recording's MP4 cannot be read (${String(r.stderr).trim().split("\n").pop() || `ffprobe exit ${r.exitCode}`}); convert it again, then packaging runs again`);
  const info = JSON.parse(String(r.stdout)) as { format?: { duration?: string }; streams?: { codec_type: string; codec_name: string; width?: number; height?: number; avg_frame_rate?: string; r_frame_rate?: string; bit_rate?: string }[] };
  const video = info.streams?.find((s) => s.codec_type === "video" && s.width && s.height);
  if (!video) throw new SourceError("the recording's MP4 has no video stream; an audio-only recording gets no ladder");
  const duration = Number(info.format?.duration ?? 0);
  if (!(duration > 0)) throw new SourceError("the recording's MP4 has no duration (it is empty or damaged); convert it again");
  const frameRate = rate(video.avg_frame_rate) || rate(video.r_frame_rate) || 30;
  const { keyframes, lastFrame } = await keyframeTimes(ffprobe, file, signal);
  return {
    width: video.width!,
    height: video.height!,
    videoBitrate: video.bit_rate ? Number(video.bit_rate) : undefined,
    frameRate,
    videoCodec: video.codec_name,
    keyframesAligned: keyframesOnBoundaries(keyframes, segmentSeconds, lastFrame, frameRate),
    duration,
    hasAudio: Boolean(info.streams?.some((s) => s.codec_type === "audio")),
  };
}

function rate(r: string | undefined): number {
  const [n, d] = (r ?? "").split("/").map(Number);
  return n && d ? n / d : 0;
}

/** Keyframe times and the last frame's time, from the packets' flags: no decoding needed. */
async function keyframeTimes(ffprobe: string, file: string, signal?: AbortSignal): Promise<{ keyframes: number[]; lastFrame: number }> {
  const r = await execa(ffprobe, ["-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags", "-of", "csv=p=0", file], { reject: false, cancelSignal: signal });
  if (r.exitCode !== 0) throw new SourceError("the recording's MP4 cannot be read (its video packets do not parse); convert it again");
  const packets = String(r.stdout)
    .split("\n")
    .map((l) => l.split(","))
    .map(([t, flags]) => ({ t: Number(t), key: (flags ?? "").includes("K") }))
    .filter((p) => Number.isFinite(p.t));
  return { keyframes: packets.filter((p) => p.key).map((p) => p.t).sort((a, b) => a - b), lastFrame: Math.max(0, ...packets.map((p) => p.t)) };
}

export const AUDIO_BITRATE = 128_000;

export interface EncodePlan {
  input: string;
  outDir: string;
  renditions: PlannedRendition[];
  hasAudio: boolean;
  segmentSeconds: number;
  /** x264 preset: the bench may pick a faster one; packaging uses veryfast. */
  preset?: string;
}

/** The FFmpeg arguments of one process that writes every rendition (video streams 0..n-1, then audio n). */
export function ladderArgs(p: EncodePlan): string[] {
  const encoded = p.renditions.map((r, i) => ({ r, i })).filter(({ r }) => !r.copy);
  const preset = p.preset ?? "veryfast";
  const graph =
    encoded.length === 0
      ? []
      : ["-filter_complex", `[0:v:0]split=${encoded.length}${encoded.map(({ i }) => `[s${i}]`).join("")};` + encoded.map(({ r, i }) => `[s${i}]scale=${r.width}:${r.height}:flags=bicubic,format=yuv420p[o${i}]`).join(";")];
  const maps = p.renditions.flatMap((r, i) => ["-map", r.copy ? "0:v:0" : `[o${i}]`]);
  const perStream = p.renditions.flatMap((r, i) =>
    r.copy
      ? [`-c:v:${i}`, "copy"]
      : [
          `-c:v:${i}`, "libx264", `-b:v:${i}`, String(r.videoBitrate), `-maxrate:v:${i}`, String(Math.round(r.videoBitrate * 1.1)), `-bufsize:v:${i}`, String(Math.round(r.videoBitrate * 1.5)),
          // Per stream, so a copied rendition is not given encoder options. The same forced keyframes in every
          // encoded rung and no scene-cut keyframes: segments start together.
          `-preset:v:${i}`, preset, `-profile:v:${i}`, "high", `-sc_threshold:v:${i}`, "0", `-force_key_frames:v:${i}`, `expr:gte(t,n_forced*${p.segmentSeconds})`,
        ],
  );
  const audio = p.hasAudio ? ["-map", "0:a:0", "-c:a", "aac", "-b:a", String(AUDIO_BITRATE), "-ac", "2"] : [];
  const sets = p.hasAudio ? "id=0,streams=v id=1,streams=a" : "id=0,streams=v";
  return [
    "-hide_banner", "-nostdin", "-v", "error", "-y",
    "-i", p.input,
    ...graph,
    ...maps,
    ...audio,
    ...perStream,
    // Source timestamps kept as they are (no frames added to make the rate constant, no rounding to 1/fps):
    // copied and encoded renditions then start each segment at the same presentation time.
    "-fps_mode", "passthrough", "-enc_time_base:v", "-1",
    "-progress", "pipe:1", "-stats_period", "1",
    "-f", "dash", "-seg_duration", String(p.segmentSeconds), "-use_template", "1", "-use_timeline", "1",
    "-hls_playlist", "1", "-adaptation_sets", sets,
    "-init_seg_name", "init_$RepresentationID$.m4s", "-media_seg_name", "seg_$RepresentationID$_$Number%05d$.m4s",
    `${p.outDir}/manifest.mpd`,
  ];
}

/** Runs the ladder's one FFmpeg, reporting media seconds done; rejects with FFmpeg's last words. */
export async function encodeLadder(ffmpeg: string, p: EncodePlan, o: { signal?: AbortSignal; onProgress?: (seconds: number) => void; onStart?: (pid: number | undefined) => void } = {}): Promise<void> {
  const child = execa(ffmpeg, ladderArgs(p), { reject: false, cancelSignal: o.signal, buffer: { stdout: false, stderr: true }, stripFinalNewline: true });
  o.onStart?.(child.pid);
  child.stdout?.setEncoding("utf8");
  child.stdout?.on("data", (chunk: string) => {
    for (const m of chunk.matchAll(/out_time_us=(\d+)/g)) o.onProgress?.(Number(m[1]) / 1e6);
  });
  const r = await child;
  if (o.signal?.aborted) throw o.signal.reason ?? new Error("aborted");
  if (r.exitCode !== 0) throw new Error(`FFmpeg could not package the ladder (exit ${r.exitCode}): ${String(r.stderr).trim().split("\n").slice(-3).join(" | ")}`);
}
