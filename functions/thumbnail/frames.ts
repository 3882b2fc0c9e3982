import { pipeline } from "node:stream/promises";
import type { Readable } from "node:stream";
import { execa } from "execa";
import { dieWithParent } from "../../lib/child.js";

/** Luma average (0-255, video range 16-235) under which a frame counts as black. */
export const BLACK_YAVG = 28;
/** Posters larger than this are scaled down; smaller ones keep their size. */
export const POSTER_MAX_WIDTH = 1280;

export type FrameResult = { ok: true; yavg: number } | { ok: false; why: string; noVideo?: boolean };

function lastLine(text: string): string {
  return text.trim().split("\n").filter(Boolean).pop() ?? "";
}

/**
 * One JPEG from a segment, given as a local file (seekable: `offset` may be > 0) or as a stream read
 * from the start. At offset 0 only keyframes are decoded (a segment starts with one), so FFmpeg stops
 * after the first frame and the rest of a streamed segment is never read. The frame's luma average
 * comes back with it.
 */
export async function grabPosterFrame(ffmpeg: string, input: string | Readable, output: string, offset: number, signal?: AbortSignal): Promise<FrameResult> {
  const streamed = typeof input !== "string";
  // A replica killed with -9 must not leave its FFmpeg running: the kernel kills it with the replica.
  const sub = execa(
    ...dieWithParent(ffmpeg, [
      // One frame: threads would cost more to start than they save.
      "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-filter_threads", "1", "-threads", "1",
      ...(offset > 0 && !streamed ? ["-ss", offset.toFixed(3)] : ["-skip_frame", "nokey"]),
      "-i", streamed ? "pipe:0" : input,
      "-map", "0:v:0", "-frames:v", "1", "-an", "-sn", "-dn",
      "-vf", `scale='min(${POSTER_MAX_WIDTH},iw)':-2,signalstats,metadata=mode=print:key=lavfi.signalstats.YAVG:file=-`,
      "-q:v", "3", "-f", "image2", "-update", "1", output,
    ]),
    { reject: false, cancelSignal: signal, stdin: streamed ? "pipe" : "ignore" },
  );
  // FFmpeg closes its input as soon as it has the frame: the broken pipe that follows is expected.
  const feeding = streamed ? pipeline(input, sub.stdin!).catch(() => {}) : Promise.resolve();
  const r = await sub;
  if (streamed) input.destroy();
  await feeding;
  if (r.isCanceled) throw signal?.reason ?? new Error("cancelled");
  // FFmpeg's words when the input has no video stream at all: an audio-only source.
  if (r.exitCode !== 0 && /matches no streams/.test(r.stderr)) return { ok: false, why: "the segment holds no video stream", noVideo: true };
  if (r.exitCode !== 0) return { ok: false, why: `ffmpeg exited with ${r.exitCode}: ${lastLine(r.stderr) || "no message"}` };
  const m = /lavfi\.signalstats\.YAVG=([\d.]+)/.exec(r.stdout);
  if (!m) return { ok: false, why: "ffmpeg decoded no video frame" };
  return { ok: true, yavg: Number(m[1]) };
}

/**
 * The first keyframe of each input, scaled and letterboxed to `w`x`h`, written to its own output file.
 * One process for a batch: FFmpeg starts once, and each decoder runs on one thread to keep memory small.
 */
export async function grabTiles(ffmpeg: string, inputs: string[], outputs: string[], w: number, h: number, signal?: AbortSignal): Promise<FrameResult> {
  const args = ["-hide_banner", "-nostdin", "-loglevel", "error", "-y"];
  for (const input of inputs) args.push("-threads", "1", "-skip_frame", "nokey", "-i", input);
  const graph = inputs
    .map((_, i) => `[${i}:v:0]trim=end_frame=1,scale=${w}:${h}:force_original_aspect_ratio=decrease,pad=${w}:${h}:-1:-1,setsar=1[t${i}]`)
    .join(";");
  args.push("-filter_complex", graph, "-filter_complex_threads", "1");
  outputs.forEach((out, i) => args.push("-map", `[t${i}]`, "-frames:v", "1", "-f", "image2", "-update", "1", "-c:v", "png", out));
  const r = await execa(...dieWithParent(ffmpeg, args), { reject: false, cancelSignal: signal, stdin: "ignore" });
  if (r.isCanceled) throw signal?.reason ?? new Error("cancelled");
  if (r.exitCode !== 0) return { ok: false, why: `ffmpeg exited with ${r.exitCode}: ${lastLine(r.stderr) || "no message"}` };
  return { ok: true, yavg: 0 };
}

/** Lays `count` tiles named by `pattern` (`tile-%03d.png`, from 0) out in a `cols`x`rows` grid, as one JPEG. */
export async function composeSprite(ffmpeg: string, pattern: string, cols: number, rows: number, output: string, signal?: AbortSignal): Promise<FrameResult> {
  const r = await execa(
    ...dieWithParent(ffmpeg, ["-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-f", "image2", "-start_number", "0", "-i", pattern, "-vf", `tile=${cols}x${rows}`, "-frames:v", "1", "-q:v", "4", "-f", "image2", "-update", "1", output]),
    { reject: false, cancelSignal: signal, stdin: "ignore" },
  );
  if (r.isCanceled) throw signal?.reason ?? new Error("cancelled");
  if (r.exitCode !== 0) return { ok: false, why: `ffmpeg exited with ${r.exitCode}: ${lastLine(r.stderr) || "no message"}` };
  return { ok: true, yavg: 0 };
}
