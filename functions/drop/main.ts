// `make drop DIR=path/to/hls-folder [PREFIX=name/in/bucket]` (or `node --import tsx functions/drop/main.ts DIR [--prefix P]`):
// uploads a local HLS folder to hls-streams, playlists last, then waits for its recording and prints it.
import { readFile } from "node:fs/promises";
import { basename, resolve } from "node:path";
import { parseArgs } from "node:util";
import cliProgress from "cli-progress";
import { HeadObjectCommand } from "@aws-sdk/client-s3";
import { loadConfig } from "../../lib/config.js";
import { folderOf, keyIn, listPrefix } from "../../lib/layout.js";
import { createS3 } from "../../lib/s3.js";
import { sleep } from "../../lib/time.js";
import { createDb, closeDb } from "../../db/client.js";
import { recordingOfDrop } from "../../db/recordings.js";
import { DropError, isPlaylistFile, listFolder, uploadFiles } from "./upload.js";

const USAGE = "usage: make drop DIR=path/to/hls-folder [PREFIX=name/in/bucket]   (or: functions/drop/main.ts DIR [--prefix P] [--timeout SECONDS] [--no-wait])";

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { prefix: { type: "string" }, timeout: { type: "string", default: "1800" }, "no-wait": { type: "boolean", default: false }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length !== 1) throw new DropError(`expected one folder, got ${positionals.length} arguments. ${USAGE}`);
  const dir = resolve(positionals[0]!);
  const prefix = (values.prefix ?? basename(dir)).replace(/^\/+|\/+$/g, "");
  if (!prefix) throw new DropError("the prefix is empty: pass --prefix name/in/bucket (PREFIX=... with make)");
  const timeoutMs = Number(values.timeout) * 1000;
  if (!(timeoutMs > 0)) throw new DropError(`--timeout must be a number of seconds, got ${JSON.stringify(values.timeout)}`);

  const files = await listFolder(dir);
  const playlists = files.filter((f) => isPlaylistFile(f.rel));
  if (playlists.length === 0) throw new DropError(`${dir} holds no .m3u8 playlist: drop the folder that holds the HLS playlist and its segments`);
  const texts = await Promise.all(playlists.map(async (p) => ({ p, text: await readFile(p.path, "utf8") })));
  const notPlaylists = texts.filter((t) => !t.text.replace(/^\uFEFF/, "").trimStart().startsWith("#EXTM3U"));
  if (notPlaylists.length) throw new DropError(`${notPlaylists.map((t) => t.p.rel).join(", ")} is not an HLS playlist (no #EXTM3U header): fix or remove it`);
  if (!texts.some((t) => t.text.includes("#EXT-X-ENDLIST"))) {
    throw new DropError(`no playlist in ${dir} ends with #EXT-X-ENDLIST, so nothing would be converted: add #EXT-X-ENDLIST as the last line of the finished playlist`);
  }
  // The recording's source prefix is the folder of the top-most playlist (the master, when there is one).
  const top = [...playlists].sort((a, b) => a.rel.split("/").length - b.rel.split("/").length)[0]!;
  const sourcePrefix = folderOf(keyIn(prefix, top.rel));

  const config = loadConfig();
  const s3 = createS3(config.s3);
  const bucket = config.s3.hlsBucket;
  const total = files.reduce((s, f) => s + f.size, 0);
  const bar = new cliProgress.SingleBar(
    { format: "upload  [{bar}] {percentage}% | {value}/{total} MB | {file}", hideCursor: true, stream: process.stderr },
    cliProgress.Presets.shades_classic,
  );
  const startedAt = new Date(Date.now() - 1000);
  bar.start(Math.max(1, Math.round(total / 1e6)), 0, { file: "" });
  let sent = 0;
  try {
    await uploadFiles(s3, bucket, prefix, files, {
      onFile: (f) => {
        sent += f.size;
        bar.update(Math.round(sent / 1e6), { file: f.rel });
      },
    });
  } finally {
    bar.stop();
  }
  console.log(`uploaded ${files.length} files (${(total / 1e6).toFixed(1)} MB) to s3://${bucket}/${listPrefix(prefix)}`);
  if (values["no-wait"]) {
    s3.destroy();
    return 0;
  }

  const etags = (
    await Promise.all(playlists.map((p) => s3.send(new HeadObjectCommand({ Bucket: bucket, Key: keyIn(prefix, p.rel) })).then((h) => (h.ETag ?? "").replaceAll('"', ""))))
  ).filter(Boolean);
  s3.destroy();
  const db = createDb(config.databaseUrl, { max: 1 });
  const conv = new cliProgress.SingleBar({ format: "convert [{bar}] {percentage}% | {status}", hideCursor: true, stream: process.stderr }, cliProgress.Presets.shades_classic);
  conv.start(100, 0, { status: "waiting for a convert replica" });
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      const r = await recordingOfDrop(db, sourcePrefix, startedAt, etags);
      if (r) conv.update(Math.round(r.progress * 100), { status: r.status });
      if (r && (r.status === "ready" || r.status === "failed")) {
        conv.stop();
        if (r.status === "ready") {
          console.log(`ready: s3://${config.s3.recordingsBucket}/${r.filePath} (${r.durationSeconds?.toFixed(1)} s, ${r.width}x${r.height}, ${((r.fileSizeBytes ?? 0) / 1e6).toFixed(1)} MB), recording ${r.id}`);
          return 0;
        }
        console.log(`failed: ${r.error}`);
        return 1;
      }
      if (Date.now() > deadline) {
        conv.stop();
        console.log(`still ${r?.status ?? "not picked up"} after ${values.timeout} s: is a convert replica running (make up)? The recording of ${sourcePrefix} will appear when it is done.`);
        return 3;
      }
      await sleep(500);
    }
  } finally {
    conv.stop();
    await closeDb(db);
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`drop: ${(err as Error).message}`);
    process.exit(err instanceof DropError || (err as Error).name === "ConfigError" ? 2 : 1);
  },
);
