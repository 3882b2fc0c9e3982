// Real media for tests, made with FFmpeg's lavfi sources (test pattern + tone).
import { mkdir } from "node:fs/promises";
import { execa } from "execa";

export interface HlsOptions {
  seconds: number;
  /** "ts" (MPEG-TS segments) or "fmp4" (#EXT-X-MAP + .m4s). */
  kind?: "ts" | "fmp4";
  segmentSeconds?: number;
  size?: string;
  rate?: number;
  playlistName?: string;
  videoBitrate?: string;
}

/** Writes an HLS VOD folder (playlist with #EXT-X-ENDLIST) into `dir` and returns the playlist's file name. */
export async function makeHls(dir: string, o: HlsOptions): Promise<string> {
  await mkdir(dir, { recursive: true });
  const kind = o.kind ?? "ts";
  const name = o.playlistName ?? "index.m3u8";
  const rate = o.rate ?? 25;
  const seg = o.segmentSeconds ?? 2;
  await execa("ffmpeg", [
    "-hide_banner", "-loglevel", "error", "-y",
    "-f", "lavfi", "-i", `testsrc2=size=${o.size ?? "640x360"}:rate=${rate}:duration=${o.seconds}`,
    "-f", "lavfi", "-i", `sine=frequency=440:sample_rate=48000:duration=${o.seconds}`,
    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", String(rate * seg), "-keyint_min", String(rate * seg), "-sc_threshold", "0",
    ...(o.videoBitrate ? ["-b:v", o.videoBitrate] : []),
    "-c:a", "aac", "-b:a", "96k", "-ac", "2",
    "-f", "hls", "-hls_time", String(seg), "-hls_playlist_type", "vod",
    ...(kind === "fmp4" ? ["-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4", "-hls_segment_filename", `${dir}/seg%03d.m4s`] : ["-hls_segment_filename", `${dir}/seg%03d.ts`]),
    `${dir}/${name}`,
  ]);
  return name;
}

/** ffprobe's view of a media file or URL: duration and the codec of each stream. */
export async function probe(input: string): Promise<{ duration: number; video?: string; audio?: string; width?: number; height?: number }> {
  const { stdout } = await execa("ffprobe", ["-v", "error", "-show_entries", "format=duration:stream=codec_type,codec_name,width,height", "-of", "json", input]);
  const j = JSON.parse(stdout) as { format: { duration?: string }; streams: { codec_type: string; codec_name: string; width?: number; height?: number }[] };
  const v = j.streams.find((s) => s.codec_type === "video");
  const a = j.streams.find((s) => s.codec_type === "audio");
  return { duration: Number(j.format.duration ?? 0), video: v?.codec_name, audio: a?.codec_name, width: v?.width, height: v?.height };
}
