// Media for benchmarks, made once with FFmpeg's lavfi sources and cached under bench/.cache (git-ignored).
// Several benchmarks share one folder per set of options; a lock keeps two runs from making it twice.
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { makeHls, type HlsOptions } from "../test/media.js";

export const BENCH_CACHE = join(dirname(fileURLToPath(import.meta.url)), ".cache");

export interface BenchHls {
  dir: string;
  playlist: string;
  seconds: number;
  segments: number;
  bytes: number;
}

/** One hour of 720p at about 3 Mbps in 4 s MPEG-TS segments (the gateway's default segment length). */
export const HOUR_720P: HlsOptions = { seconds: 3600, kind: "ts", size: "1280x720", videoBitrate: "3M", segmentSeconds: 4 };
/** The same stream, one minute long. */
export const MINUTE_720P: HlsOptions = { ...HOUR_720P, seconds: 60 };

/** A folder name that says what is in it, so equal options share one cached folder. */
export function cacheName(o: HlsOptions): string {
  return [`hls-${o.kind ?? "ts"}`, o.size ?? "640x360", `${o.seconds}s`, `seg${o.segmentSeconds ?? 2}`, o.rate ? `${o.rate}fps` : "", o.videoBitrate ?? "crf", o.playlistName ?? ""]
    .filter(Boolean)
    .join("-")
    .replace(/[^A-Za-z0-9._-]/g, "_");
}

async function summary(dir: string, playlist: string, seconds: number): Promise<BenchHls> {
  const names = await readdir(dir);
  let bytes = 0;
  for (const n of names) if (!n.startsWith(".")) bytes += (await stat(join(dir, n))).size;
  return { dir, playlist, seconds, segments: names.filter((n) => /\.(ts|m4s)$/.test(n)).length, bytes };
}

/**
 * The HLS folder for these options, made on first use (an hour of 720p takes about 5 minutes on two cores).
 * A `.complete` marker is written last, so an interrupted run is redone, never half used.
 */
export async function cachedHls(o: HlsOptions, log: (msg: string) => void = (m) => process.stderr.write(`${m}\n`)): Promise<BenchHls> {
  const dir = join(BENCH_CACHE, cacheName(o));
  const marker = join(dir, ".complete");
  const lock = `${dir}.lock`;
  await mkdir(BENCH_CACHE, { recursive: true });
  for (;;) {
    if (existsSync(marker)) return summary(dir, (await readFile(marker, "utf8")).trim(), o.seconds);
    try {
      await mkdir(lock);
      break;
    } catch {
      // Another run is making it: wait, unless its lock is older than any real run (it crashed).
      const s = await stat(lock).catch(() => undefined);
      if (s && Date.now() - s.mtimeMs > 60 * 60_000) await rm(lock, { recursive: true, force: true });
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
  try {
    if (existsSync(marker)) return summary(dir, (await readFile(marker, "utf8")).trim(), o.seconds);
    const tmp = `${dir}.partial-${process.pid}`;
    await rm(tmp, { recursive: true, force: true });
    log(`making ${cacheName(o)} in bench/.cache (once; later runs reuse it)`);
    const t0 = Date.now();
    const playlist = await makeHls(tmp, o);
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
    await writeFile(marker, `${playlist}\n`);
    log(`made ${cacheName(o)} in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    return summary(dir, playlist, o.seconds);
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

/** Uploads an HLS folder to `bucket/prefix/`, segments first and playlists last, as the gateway and the drop CLI do. */
export async function uploadHls(s3: S3Client, bucket: string, dir: string, prefix: string, opts: { concurrency?: number; playlists?: boolean } = {}): Promise<number> {
  const names = (await readdir(dir)).filter((n) => !n.startsWith("."));
  const media = names.filter((n) => !n.endsWith(".m3u8"));
  const playlists = names.filter((n) => n.endsWith(".m3u8"));
  let bytes = 0;
  const put = async (name: string) => {
    const body = await readFile(join(dir, name));
    bytes += body.length;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}/${name}`, Body: body }));
  };
  let next = 0;
  await Promise.all(
    Array.from({ length: opts.concurrency ?? 8 }, async () => {
      while (next < media.length) await put(media[next++]!);
    }),
  );
  if (opts.playlists !== false) for (const p of playlists) await put(p);
  return bytes;
}
