import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { HLS_PROTOCOLS } from "../../lib/ffmpeg.js";

// Cutting a range out of a source FFmpeg reads over HTTP (a presigned MP4, whose index lets FFmpeg seek by
// byte ranges, or a local playlist naming only the covering segments' presigned URLs). Either way FFmpeg
// reads only the bytes of the range, so a clip costs the same from a 1 min or a 1 h parent.

export interface ClipInput {
  /** A presigned MP4 URL, or the path of a local playlist of presigned segment URLs. */
  url: string;
  /** Extra input options (the HLS reader's protocol whitelist for a playlist). */
  options: string[];
  /** Where the input's first frame sits on the parent's timeline, seconds. */
  timelineStart: number;
}

export interface CutResult {
  /** The range of the parent actually cut (a keyframe cut starts at the keyframe at or before the asked start). */
  start: number;
  end: number;
}

export class CutError extends Error {
  readonly kind = "cut" as const;
  override name = "CutError";
}

const BASE = ["-hide_banner", "-nostdin", "-loglevel", "error", "-y"];
const t = (s: number) => Math.max(0, s).toFixed(6);

async function run(bin: string, args: string[], what: string, signal?: AbortSignal): Promise<string> {
  const r = await execa(bin, args, { reject: false, cancelSignal: signal });
  if (r.isCanceled) throw signal?.reason ?? new Error("cancelled");
  if (r.exitCode !== 0) throw new CutError(`${what} failed (ffmpeg exit ${r.exitCode}): ${String(r.stderr).trim().split("\n").pop() ?? "no message"}`);
  return String(r.stdout);
}

export interface Tools {
  ffmpeg: string;
  ffprobe: string;
}

/** Media facts of a finished clip file. */
export async function probeFile(tools: Tools, path: string, signal?: AbortSignal) {
  const out = await run(tools.ffprobe, ["-v", "error", "-show_entries", "format=duration:stream=codec_type,codec_name,width,height,duration", "-of", "json", path], "probing the clip", signal);
  const j = JSON.parse(out) as { format?: { duration?: string }; streams?: { codec_type: string; codec_name?: string; width?: number; height?: number; duration?: string }[] };
  const video = j.streams?.find((s) => s.codec_type === "video");
  const audio = j.streams?.find((s) => s.codec_type === "audio");
  return {
    duration: Number(j.format?.duration ?? 0),
    width: video?.width ?? null,
    height: video?.height ?? null,
    videoCodec: video?.codec_name ?? null,
    audioCodec: audio?.codec_name ?? null,
    videoDuration: video?.duration ? Number(video.duration) : null,
    audioDuration: audio?.duration ? Number(audio.duration) : null,
  };
}

/** Keyframe cut: stream copy from the keyframe at or before `start` to `end`. Nothing is re-encoded. */
export async function cutAtKeyframes(tools: Tools, input: ClipInput, start: number, end: number, out: string, signal?: AbortSignal): Promise<CutResult> {
  const from = start - input.timelineStart;
  await run(
    tools.ffmpeg,
    [...BASE, ...input.options, "-ss", t(from), "-i", input.url, "-t", t(end - start), "-map", "0:v:0?", "-map", "0:a:0?", "-c", "copy",
      "-avoid_negative_ts", "make_zero", "-movflags", "+faststart", out],
    "the keyframe cut",
    signal,
  );
  const { duration } = await probeFile(tools, out, signal);
  // The copy starts at the keyframe before `start`; the extra length says how far before.
  return { start: Math.max(input.timelineStart, Math.min(start, end - duration)), end };
}

/** The input's own start time: FFmpeg's -ss counts from it, ffprobe's timestamps include it. */
async function startTime(tools: Tools, input: ClipInput, signal?: AbortSignal): Promise<number> {
  const out = await run(tools.ffprobe, ["-v", "error", ...input.options, "-show_entries", "format=start_time", "-of", "csv=p=0", input.url], "reading the source", signal);
  const v = Number(out.trim());
  return Number.isFinite(v) ? v : 0;
}

/** The first keyframe at or after `from` (input seconds) within `span` seconds, or undefined. */
async function firstKeyframeAfter(tools: Tools, input: ClipInput, origin: number, from: number, span: number, signal?: AbortSignal): Promise<number | undefined> {
  const out = await run(
    tools.ffprobe,
    ["-v", "error", ...input.options, "-select_streams", "v:0", "-skip_frame", "nokey", "-show_entries", "frame=pts_time", "-of", "csv=p=0",
      "-read_intervals", `${t(origin + from)}%+${t(span)}`, input.url],
    "finding keyframes",
    signal,
  );
  const times = out.split("\n").filter((line) => line.trim()).map((line) => Number(line.trim().replace(/,$/, "")) - origin).filter(Number.isFinite);
  return times.filter((v) => v >= from - 0.0005).sort((a, b) => a - b)[0];
}

/**
 * Frame-accurate cut: only the frames from `start` to the first keyframe inside the range are re-encoded,
 * the rest of the video is copied; the audio is re-encoded over the whole range in one go (cheap), so it
 * has no seam and stays in sync with the video to the frame.
 */
export async function cutPrecisely(
  tools: Tools,
  input: ClipInput,
  start: number,
  end: number,
  dir: string,
  out: string,
  source: { videoCodec: string | null },
  signal?: AbortSignal,
): Promise<CutResult> {
  const from = start - input.timelineStart;
  const to = end - input.timelineStart;
  if (!source.videoCodec) {
    // Audio only: every AAC frame can start a clip; re-encoding the range is the whole job.
    await run(tools.ffmpeg, [...BASE, ...input.options, "-ss", t(from), "-i", input.url, "-t", t(to - from), "-map", "0:a:0", "-vn", "-c:a", "aac", "-b:a", "160k", "-movflags", "+faststart", out], "re-encoding the audio", signal);
    return { start, end };
  }
  // The re-encoded head is H.264: only an H.264 source can have the rest copied after it.
  const copyable = source.videoCodec === "h264";
  const origin = copyable ? await startTime(tools, input, signal) : 0;
  // A GOP is rarely over 10 s; past that the whole range is re-encoded, which is what it would need anyway.
  const key = copyable ? await firstKeyframeAfter(tools, input, origin, from, Math.min(to - from, 10), signal) : undefined;
  const head = join(dir, "head.ts");
  const tail = join(dir, "tail.ts");
  const encode = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p"];
  const parts: { path: string; duration: number }[] = [];
  const jobs: Promise<unknown>[] = [];
  const firstFrame = key !== undefined && key - from < 0.001;
  if (key === undefined || key >= to) {
    jobs.push(run(tools.ffmpeg, [...BASE, ...input.options, "-ss", t(from), "-i", input.url, "-t", t(to - from), "-map", "0:v:0", "-an", "-sn", ...encode, "-f", "mpegts", head], "re-encoding the range", signal));
    parts.push({ path: head, duration: to - from });
  } else {
    if (!firstFrame) {
      jobs.push(run(tools.ffmpeg, [...BASE, ...input.options, "-ss", t(from), "-i", input.url, "-t", t(key - from), "-map", "0:v:0", "-an", "-sn", ...encode, "-f", "mpegts", head], "re-encoding up to the first keyframe", signal));
      parts.push({ path: head, duration: key - from });
    }
    jobs.push(run(tools.ffmpeg, [...BASE, ...input.options, "-ss", t(key), "-i", input.url, "-t", t(to - key), "-map", "0:v:0", "-an", "-sn", "-c:v", "copy", "-f", "mpegts", tail], "copying from the first keyframe", signal));
    parts.push({ path: tail, duration: to - key });
  }
  const audio = join(dir, "audio.m4a");
  const withAudio = run(tools.ffmpeg, [...BASE, ...input.options, "-ss", t(from), "-i", input.url, "-t", t(to - from), "-map", "0:a:0", "-vn", "-sn", "-c:a", "aac", "-b:a", "160k", audio], "re-encoding the audio", signal)
    .then(() => true)
    .catch((err: unknown) => (err instanceof CutError && /matches no streams/.test(err.message) ? false : Promise.reject(err)));
  await Promise.all(jobs);
  const hasAudio = await withAudio;
  const list = join(dir, "parts.txt");
  await writeFile(list, parts.map((p) => `file '${p.path.replace(/'/g, "'\\''")}'\nduration ${t(p.duration)}`).join("\n") + "\n");
  await run(
    tools.ffmpeg,
    [...BASE, "-f", "concat", "-safe", "0", "-i", list, ...(hasAudio ? ["-i", audio] : []), "-map", "0:v:0", ...(hasAudio ? ["-map", "1:a:0"] : []),
      "-c", "copy", "-t", t(to - from), "-movflags", "+faststart", out],
    "joining the clip",
    signal,
  );
  return { start, end };
}

export const HLS_INPUT_OPTIONS = (extra: string[]) => ["-protocol_whitelist", HLS_PROTOCOLS, ...extra];
