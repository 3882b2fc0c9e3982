import { createRequire } from "node:module";
import { existsSync } from "node:fs";
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
