// What the API's tests share: real media made with FFmpeg, recordings stored the way convert and
// thumbnail store them, and the app served on a free port over the test environment's buckets and database.
import { mkdir, readFile, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { execa } from "execa";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { createLogger } from "../lib/log.js";
import { createMetrics, listen } from "../lib/service.js";
import { recordings, streams, type NewRecording } from "../db/schema.js";
import { makeHls } from "./media.js";
import type { TestEnv } from "./harness.js";
import type { Config } from "../lib/config.js";
import { createApp } from "../functions/api/app.js";
import { createPresigner } from "../functions/api/links.js";

export interface VodMedia {
  mp4: Buffer;
  jpeg: Buffer;
  sprite: Buffer;
  vtt: string;
  hlsDir: string;
  hlsFiles: string[];
}

let media: Promise<VodMedia> | undefined;

/** A 6 s 640x360 MP4 (faststart), its poster, a 3x2 storyboard sprite with its WebVTT, and an HLS folder. Made once per process. */
export function vodMedia(): Promise<VodMedia> {
  media ??= (async () => {
    const dir = join(tmpdir(), `vod-api-media-${process.pid}`);
    await mkdir(dir, { recursive: true });
    const src = ["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=6", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=6"];
    const q = ["-hide_banner", "-loglevel", "error", "-y"];
    await execa("ffmpeg", [...q, ...src, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-movflags", "+faststart", join(dir, "video.mp4")]);
    await execa("ffmpeg", [...q, "-ss", "1", "-i", join(dir, "video.mp4"), "-frames:v", "1", "-vf", "scale=640:360", join(dir, "thumb.jpg")]);
    await execa("ffmpeg", [...q, "-i", join(dir, "video.mp4"), "-vf", "fps=1,scale=160:90,tile=3x2", "-frames:v", "1", join(dir, "sprite.jpg")]);
    const tile = (i: number) => `${(i % 3) * 160},${Math.floor(i / 3) * 90},160,90`;
    const ts = (s: number) => `00:00:0${s}.000`;
    const vtt = ["WEBVTT", "", ...[0, 1, 2, 3, 4, 5].flatMap((i) => [`${ts(i)} --> ${ts(i + 1)}`, `sprite.jpg#xywh=${tile(i)}`, ""])].join("\n");
    const hlsDir = join(dir, "hls");
    await makeHls(hlsDir, { seconds: 6, segmentSeconds: 2, size: "320x180" });
    return {
      mp4: await readFile(join(dir, "video.mp4")),
      jpeg: await readFile(join(dir, "thumb.jpg")),
      sprite: await readFile(join(dir, "sprite.jpg")),
      vtt,
      hlsDir,
      hlsFiles: (await readdir(hlsDir)).sort(),
    };
  })();
  return media;
}

async function put(env: TestEnv, bucket: string, key: string, body: Buffer | string, type: string) {
  await env.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: type }));
}

/** Uploads a finished recording's objects (source HLS, MP4, poster, storyboard) and inserts its row, status ready. */
export async function storeReadyRecording(env: TestEnv, folder: string, row: Partial<NewRecording> = {}) {
  const m = await vodMedia();
  const { hlsBucket, recordingsBucket } = env.config.s3;
  for (const f of m.hlsFiles) await put(env, hlsBucket, `${folder}/${f}`, await readFile(join(m.hlsDir, f)), f.endsWith(".m3u8") ? "application/vnd.apple.mpegurl" : "video/mp2t");
  await put(env, recordingsBucket, `${folder}/recording.mp4`, m.mp4, "video/mp4");
  await put(env, recordingsBucket, `${folder}/thumbnail.jpg`, m.jpeg, "image/jpeg");
  await put(env, recordingsBucket, `${folder}/storyboard/sprite.jpg`, m.sprite, "image/jpeg");
  await put(env, recordingsBucket, `${folder}/storyboard/storyboard.vtt`, m.vtt, "text/vtt");
  const [inserted] = await env.db
    .insert(recordings)
    .values({
      streamId: folder.split("/")[0]!,
      title: folder,
      sourcePrefix: folder,
      playlistKey: `${folder}/index.m3u8`,
      status: "ready",
      progress: 1,
      filePath: `${folder}/recording.mp4`,
      thumbnailPath: `${folder}/thumbnail.jpg`,
      storyboardPath: `${folder}/storyboard/sprite.jpg`,
      storyboardVttPath: `${folder}/storyboard/storyboard.vtt`,
      fileSizeBytes: m.mp4.length,
      durationSeconds: 6,
      width: 640,
      height: 360,
      videoCodec: "h264",
      audioCodec: "aac",
      ...row,
    })
    .returning();
  return inserted!;
}

/** Publishes what the gateway publishes mid-broadcast (segments, then an EVENT playlist without #EXT-X-ENDLIST) and marks the stream live. */
export async function publishLive(env: TestEnv, stream: string, session: string, title = `${stream} live`, playlist?: (text: string) => string) {
  const m = await vodMedia();
  const folder = `${stream}/${session}`;
  const { hlsBucket } = env.config.s3;
  for (const f of m.hlsFiles.filter((f) => f.endsWith(".ts"))) await put(env, hlsBucket, `${folder}/${f}`, await readFile(join(m.hlsDir, f)), "video/mp2t");
  const vod = await readFile(join(m.hlsDir, "index.m3u8"), "utf8");
  const event = vod.replace("#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-PLAYLIST-TYPE:EVENT").replace("#EXT-X-ENDLIST\n", "");
  await put(env, hlsBucket, `${folder}/index.m3u8`, playlist ? playlist(event) : event, "application/vnd.apple.mpegurl");
  const [rec] = await env.db.insert(recordings).values({ streamId: stream, title, sourcePrefix: folder, status: "live", sessionId: session }).returning();
  await env.db.insert(streams).values({ name: stream, secret: "secret-0123456789", state: "live", currentSession: session, currentRecordingId: rec!.id, lastConnectedAt: new Date() });
  return rec!;
}

export interface RunningApi {
  url: string;
  config: Config;
  close(): Promise<void>;
}

/** The API app on a free port, over the test environment (plus config changes, e.g. a token). */
export async function startApi(env: TestEnv, change: (c: Config) => Config = (c) => c): Promise<RunningApi> {
  const config = change(env.config);
  const log = createLogger("api-test", process.env.TEST_LOG_LEVEL ?? "silent");
  const app = createApp({ config, db: env.db, s3: env.s3, log, nats: () => env.nc, presign: createPresigner(config.s3), metrics: createMetrics("api") });
  const server = await listen(app, 0, log, "127.0.0.1");
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    config,
    close: () => new Promise<void>((resolve) => { server.close(() => resolve()); if ("closeAllConnections" in server) server.closeAllConnections(); }),
  };
}

export const withToken = (token: string, readsRequireToken = false) => (c: Config): Config => ({ ...c, api: { ...c.api, token, readsRequireToken } });
