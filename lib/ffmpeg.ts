import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { execa } from "execa";
import type { Config } from "./config.js";

const require = createRequire(import.meta.url);

/** FFMPEG_PATH → ffmpeg-static (when its binary was downloaded) → ffmpeg on PATH. */
export function resolveFfmpeg(ff: Config["ffmpeg"]): { ffmpeg: string; ffprobe: string } {
  let ffmpeg = ff.ffmpegPath;
  if (!ffmpeg) {
    try {
      const fromPackage = require("ffmpeg-static") as string | null;
      if (fromPackage && existsSync(fromPackage)) ffmpeg = fromPackage;
    } catch {
      // optional dependency not installed: fall through to PATH
    }
  }
  ffmpeg ??= "ffmpeg";
  const ffprobe = ff.ffprobePath ?? (ffmpeg.endsWith("ffmpeg") && ffmpeg.includes("/") && existsSync(ffmpeg.replace(/ffmpeg$/, "ffprobe")) ? ffmpeg.replace(/ffmpeg$/, "ffprobe") : "ffprobe");
  return { ffmpeg, ffprobe };
}

/** What FFmpeg may open when it reads a playlist of presigned URLs: HTTP(S), and crypto for AES-128 segments. */
export const HLS_PROTOCOLS = "file,http,https,tcp,tls,crypto";

/**
 * The HLS reader's options differ between FFmpeg builds (Debian's 5.1 has the newer extension checks,
 * older static builds do not): ask the binary once. The checks guard against playlists that read local
 * files; the playlists given to FFmpeg are written by us and name only presigned URLs, so any segment or
 * key extension is allowed.
 */
const hlsOptionCache = new Map<string, Promise<string[]>>();
export function hlsInputOptions(tools: { ffmpeg: string }): Promise<string[]> {
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
