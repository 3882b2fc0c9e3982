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

/** The lavfi sources: a test pattern and tones (one per audio input), `seconds` long. */
function lavfi(seconds: number, o: { size?: string; rate?: number; tones?: number[]; sampleRate?: number; channels?: number } = {}): string[] {
  const rate = o.rate ?? 25;
  const args = ["-f", "lavfi", "-i", `testsrc2=size=${o.size ?? "320x180"}:rate=${rate}:duration=${seconds}`];
  for (const f of o.tones ?? [440]) args.push("-f", "lavfi", "-i", `sine=frequency=${f}:sample_rate=${o.sampleRate ?? 48000}:duration=${seconds}`);
  return args;
}

const H264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0"];
const HLS_VOD = ["-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod"];

async function ffmpeg(dir: string, args: string[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  await execa("ffmpeg", ["-hide_banner", "-loglevel", "error", "-y", ...args], { cwd: dir });
}

/**
 * HLS folders in the shapes packagers write, each made by FFmpeg's own HLS muxer in `dir`:
 * - "audio-rendition": master.m3u8 + video variant + a separate audio rendition (`-var_stream_map "v:0,agroup:aud a:0,agroup:aud"`)
 * - "languages": video + two audio renditions (eng default, fra) + a WebVTT subtitle rendition
 * - "hevc-fmp4": HEVC (hvc1) + AAC in fMP4 segments
 * - "single-file": one .ts file addressed by #EXT-X-BYTERANGE
 * - "ladder": a master with three variants, each with muxed audio
 * - "audio-only": AAC only, MPEG-TS segments
 * - "aes": AES-128 with the key file k.key in the folder
 */
export type Shape = "audio-rendition" | "languages" | "hevc-fmp4" | "single-file" | "ladder" | "audio-only" | "aes";

export async function makeShape(dir: string, shape: Shape, seconds = 6, size = "320x180"): Promise<void> {
  const aac = ["-c:a", "aac", "-b:a", "96k", "-ac", "2"];
  const sources = (n: number, o: Parameters<typeof lavfi>[1] = {}) => lavfi(n, { size, ...o });
  switch (shape) {
    case "audio-rendition":
      return ffmpeg(dir, [...sources(seconds), "-map", "0:v", "-map", "1:a", ...H264, ...aac, ...HLS_VOD, "-master_pl_name", "master.m3u8", "-var_stream_map", "v:0,agroup:aud a:0,agroup:aud", "-hls_segment_filename", "s_%v_%03d.ts", "s_%v.m3u8"]);
    case "languages": {
      await mkdir(dir, { recursive: true });
      const { writeFile } = await import("node:fs/promises");
      await writeFile(`${dir}/subs.srt`, "1\n00:00:00,500 --> 00:00:02,000\nHello\n\n2\n00:00:03,000 --> 00:00:05,000\nWorld\n");
      await ffmpeg(dir, [
        ...sources(seconds, { tones: [440, 660] }), "-i", "subs.srt",
        "-map", "0:v", "-map", "1:a", "-map", "2:a", "-map", "3:s", ...H264, ...aac, "-c:s", "webvtt", ...HLS_VOD,
        "-master_pl_name", "master.m3u8",
        "-var_stream_map", "v:0,s:0,agroup:aud,sgroup:subs,language:eng a:0,agroup:aud,language:eng,name:english,default:yes a:1,agroup:aud,language:fra,name:french",
        "-hls_segment_filename", "s_%v_%03d.ts", "s_%v.m3u8",
      ]);
      const { rm } = await import("node:fs/promises");
      await rm(`${dir}/subs.srt`);
      return;
    }
    case "hevc-fmp4":
      return ffmpeg(dir, [...sources(seconds), "-c:v", "libx265", "-preset", "ultrafast", "-tag:v", "hvc1", "-x265-params", "keyint=50:min-keyint=50:scenecut=0:log-level=error", "-pix_fmt", "yuv420p", ...aac, ...HLS_VOD, "-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4", "-hls_segment_filename", "seg%03d.m4s", "index.m3u8"]);
    case "single-file":
      return ffmpeg(dir, [...sources(seconds), ...H264, ...aac, ...HLS_VOD, "-hls_flags", "single_file", "index.m3u8"]);
    case "ladder":
      return ffmpeg(dir, [
        ...sources(seconds),
        "-filter_complex", "[0:v]split=3[a][b][c];[b]scale=iw*3/4:-2[b2];[c]scale=iw/2:-2[c2]",
        "-map", "[a]", "-map", "[b2]", "-map", "[c2]", "-map", "1:a", "-map", "1:a", "-map", "1:a",
        ...H264, "-b:v:0", "800k", "-b:v:1", "400k", "-b:v:2", "200k", ...aac, ...HLS_VOD,
        "-master_pl_name", "master.m3u8", "-var_stream_map", "v:0,a:0 v:1,a:1 v:2,a:2", "-hls_segment_filename", "v%v/seg%03d.ts", "v%v/index.m3u8",
      ]);
    case "audio-only":
      // A tone whose loudness swells and fades, as speech does: its waveform has a shape.
      return ffmpeg(dir, ["-f", "lavfi", "-i", `aevalsrc=0.8*sin(2*PI*440*t)*abs(sin(PI*t/2)):s=48000:d=${seconds}`, ...aac, ...HLS_VOD, "-hls_segment_filename", "seg%03d.ts", "index.m3u8"]);
    case "aes": {
      await mkdir(dir, { recursive: true });
      const { writeFile } = await import("node:fs/promises");
      const { randomBytes } = await import("node:crypto");
      await writeFile(`${dir}/k.key`, randomBytes(16));
      // The key info file: the URI written into the playlist, then the key's local path.
      await writeFile(`${dir}/../${dir.split("/").pop()}.keyinfo`, `k.key\n${dir}/k.key\n`);
      return ffmpeg(dir, [...sources(seconds), ...H264, ...aac, ...HLS_VOD, "-hls_key_info_file", `${dir}/../${dir.split("/").pop()}.keyinfo`, "-hls_segment_filename", "seg%03d.ts", "index.m3u8"]);
    }
  }
}

/** A broadcast that reconnected in another format: part A, #EXT-X-DISCONTINUITY, part B (FFmpeg writes each part). */
export async function makeReconnect(dir: string, a: { size: string; seconds: number; sampleRate?: number }, b: { size: string; seconds: number; sampleRate?: number; channels?: number }): Promise<string> {
  const { readFile, writeFile } = await import("node:fs/promises");
  for (const [name, p] of [["a", a], ["b", b]] as const) {
    await ffmpeg(dir, [...lavfi(p.seconds, { size: p.size, sampleRate: p.sampleRate }), ...H264, "-c:a", "aac", "-b:a", "96k", "-ac", String("channels" in p && p.channels ? p.channels : 2), ...HLS_VOD, "-hls_segment_filename", `${name}%03d.ts`, `${name}.m3u8`]);
  }
  const part = async (name: string) => (await readFile(`${dir}/${name}.m3u8`, "utf8")).split("\n").filter((l) => l.startsWith("#EXTINF") || (l && !l.startsWith("#")));
  const lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:2", "#EXT-X-PLAYLIST-TYPE:VOD", ...(await part("a")), "#EXT-X-DISCONTINUITY", ...(await part("b")), "#EXT-X-ENDLIST", ""];
  const { rm } = await import("node:fs/promises");
  await rm(`${dir}/a.m3u8`);
  await rm(`${dir}/b.m3u8`);
  await writeFile(`${dir}/index.m3u8`, lines.join("\n"));
  return lines.join("\n");
}

/** Every stream of a media file or URL, with the tags convert writes. */
export async function probeStreams(input: string): Promise<{ codec_type: string; codec_name: string; width?: number; height?: number; tags?: { language?: string; title?: string } }[]> {
  const { stdout } = await execa("ffprobe", ["-v", "error", "-show_entries", "stream=codec_type,codec_name,width,height:stream_tags=language,title", "-of", "json", input]);
  return (JSON.parse(stdout) as { streams: [] }).streams;
}

/** Decodes a whole media file or URL; returns FFmpeg's error messages (empty when it decodes cleanly). */
export async function decodeErrors(input: string): Promise<string> {
  const r = await execa("ffmpeg", ["-hide_banner", "-v", "error", "-i", input, "-f", "null", "-"], { reject: false });
  return String(r.stderr).trim();
}
