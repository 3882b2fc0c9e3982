import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { GetObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { execa } from "execa";
import { dieWithParent } from "../../lib/child.js";
import { HLS_PROTOCOLS, hlsInputOptions } from "../../lib/ffmpeg.js";
import { neededKeys, writeLocalPlaylist, type ResolvedSegment } from "../../lib/hls/index.js";
import { PermanentError } from "../runtime/handler.js";
import { jpegSize } from "./jpeg.js";

// An audio-only recording (a podcast) has no frame to show: its poster is the waveform of the whole
// recording, drawn by FFmpeg's showwavespic from the segments streamed out of the store (square-root
// scale, so quiet speech still shows).

export const WAVEFORM_SIZE = { width: 1280, height: 360 };

export interface Waveform {
  jpeg: Uint8Array;
  width: number;
  height: number;
}

export async function makeWaveform(deps: { s3: S3Client; bucket: string; ffmpeg: string; dir: string; signal?: AbortSignal }, segments: readonly ResolvedSegment[]): Promise<Waveform> {
  const urls = new Map(await Promise.all(neededKeys(segments).map(async (k) => [k, await getSignedUrl(deps.s3, new GetObjectCommand({ Bucket: deps.bucket, Key: k }), { expiresIn: 3600 })] as const)));
  const playlist = join(deps.dir, "waveform.m3u8");
  const out = join(deps.dir, "waveform.jpg");
  await writeFile(playlist, writeLocalPlaylist(segments, (k) => urls.get(k)!));
  const { width, height } = WAVEFORM_SIZE;
  const r = await execa(
    // dieWithParent: a replica killed with -9 must not leave this FFmpeg running.
    ...dieWithParent(deps.ffmpeg, [
      "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
      "-protocol_whitelist", HLS_PROTOCOLS, ...(await hlsInputOptions(deps)), "-i", playlist,
      "-filter_complex", `[0:a:0]aformat=channel_layouts=mono,showwavespic=s=${width}x${height}:colors=0x3ea6ff:scale=sqrt,format=yuvj420p[w]`,
      "-map", "[w]", "-frames:v", "1", "-q:v", "3", "-f", "image2", "-update", "1", out,
    ]),
    { reject: false, cancelSignal: deps.signal, stdin: "ignore" },
  );
  if (r.isCanceled) throw deps.signal?.reason ?? new Error("cancelled");
  const jpeg = await readFile(out).catch(() => new Uint8Array());
  const size = jpegSize(jpeg);
  if (r.exitCode !== 0 || !size) {
    throw new PermanentError(`no waveform could be drawn for this audio-only recording (${String(r.stderr).trim().split("\n").pop() || "FFmpeg wrote no image"}); check that the segments hold audio`);
  }
  return { jpeg, ...size };
}
