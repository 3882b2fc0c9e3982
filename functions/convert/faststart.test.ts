import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, open, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand } from "@aws-sdk/client-s3";
import { execa } from "execa";
import { createTestEnv, type TestEnv } from "../../test/harness.js";
import { PermanentError } from "../runtime/handler.js";
import { readTopLevelAtoms, shiftChunkOffsets, startStreamingUpload } from "./faststart.js";
import { alignFreeBytes, freeBox } from "./part-alignment.js";

let env: TestEnv;
let dir: string;
let plain: Buffer;

before(async () => {
  env = await createTestEnv("faststart");
  dir = await mkdtemp(join(tmpdir(), "faststart-test-"));
  // About 23 MB, moov last (no +faststart): large enough for several 5 MiB parts.
  await execa("ffmpeg", [
    "-hide_banner", "-loglevel", "error", "-y",
    "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25:duration=12", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=12",
    "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "20M", "-c:a", "aac", join(dir, "plain.mp4"),
  ]);
  plain = await readFile(join(dir, "plain.mp4"));
});
after(async () => {
  await env.close();
  await rm(dir, { recursive: true, force: true });
});

async function atoms(file: string) {
  const fh = await open(file, "r");
  try {
    return await readTopLevelAtoms(fh, (await fh.stat()).size);
  } finally {
    await fh.close();
  }
}

/** Every packet of every stream, hashed: equal lists mean the same media in the same order and timing. */
async function packets(file: string): Promise<string> {
  const { stdout } = await execa("ffmpeg", ["-hide_banner", "-loglevel", "error", "-i", file, "-map", "0", "-c", "copy", "-f", "framemd5", "-"]);
  return stdout.split("\n").filter((l) => !l.startsWith("#")).join("\n");
}

/**
 * moov moved in front of the media with shifted chunk offsets: what the streaming upload must produce. Uploaded
 * in parts with part 1 ending after `headBytes` of the file, a free box after the moov makes part 1 end on a 4 KiB
 * boundary (part-alignment.ts), and the offsets move past it too.
 */
async function movedMoov(headBytes?: number): Promise<Buffer> {
  const top = await atoms(join(dir, "plain.mp4"));
  const ftyp = top[0]!;
  const moov = top.at(-1)!;
  const gap = headBytes === undefined ? 0 : alignFreeBytes(moov.size + headBytes);
  const patched = shiftChunkOffsets(plain.subarray(moov.start, moov.start + moov.size), moov.size + gap);
  return Buffer.concat([plain.subarray(0, ftyp.size), patched, freeBox(gap), plain.subarray(ftyp.size, moov.start)]);
}

test("moving moov in front of the media, offsets shifted, keeps every packet and makes the file faststart", async () => {
  assert.deepEqual((await atoms(join(dir, "plain.mp4"))).map((a) => a.type), ["ftyp", "free", "mdat", "moov"]);
  await writeFile(join(dir, "moved.mp4"), await movedMoov());
  assert.deepEqual((await atoms(join(dir, "moved.mp4"))).map((a) => a.type), ["ftyp", "moov", "free", "mdat"]);
  assert.equal(await packets(join(dir, "moved.mp4")), await packets(join(dir, "plain.mp4")));
  // With a free box after the moov for part 1 to end on a block: the same packets.
  const aligned = await movedMoov(5 << 20);
  const moov = (await atoms(join(dir, "plain.mp4"))).at(-1)!;
  assert.equal((moov.size + alignFreeBytes(moov.size + (5 << 20)) + (5 << 20)) % 4096, 0, "part 1 ends on a 4 KiB boundary");
  await writeFile(join(dir, "aligned.mp4"), aligned);
  assert.deepEqual((await atoms(join(dir, "aligned.mp4"))).map((a) => a.type), ["ftyp", "moov", "free", "free", "mdat"]);
  assert.equal(await packets(join(dir, "aligned.mp4")), await packets(join(dir, "plain.mp4")));
});

async function growAndUpload(key: string, sizes: { headBytes: number; partBytes: number; tailMargin: number }, check?: () => Promise<void>): Promise<Buffer> {
  const file = join(dir, `${key}.mp4`);
  const upload = startStreamingUpload(env.s3, env.config.s3.recordingsBucket, key, file, new AbortController().signal, () => {}, sizes);
  // FFmpeg's way of writing: sequential chunks, moov last.
  const fh = await open(file, "w");
  for (let pos = 0; pos < plain.length; pos += 512 * 1024) {
    await fh.write(plain, pos, Math.min(512 * 1024, plain.length - pos), pos);
    await new Promise((r) => setTimeout(r, 40));
  }
  await fh.close();
  const size = await upload.finish(check);
  const res = await env.s3.send(new GetObjectCommand({ Bucket: env.config.s3.recordingsBucket, Key: key }));
  const body = Buffer.from(await res.Body!.transformToByteArray());
  assert.equal(size, body.length, "the size it answers is the object's");
  return body;
}

test("a file uploaded in parts while it is written ends up as one faststart object, byte for byte, each part checked by its CRC32", async () => {
  assert.ok((await growAndUpload("grown.mp4", { headBytes: 5 << 20, partBytes: 5 << 20, tailMargin: 1 << 20 })).equals(await movedMoov(5 << 20)));
  // The parts went up unsigned with their CRC32, which the store verified and combined (CRC32 of the part CRCs, "-<parts>").
  const head = await env.s3.send(new HeadObjectCommand({ Bucket: env.config.s3.recordingsBucket, Key: "grown.mp4", ChecksumMode: "ENABLED" }));
  assert.match(head.ChecksumCRC32 ?? "", /^[A-Za-z0-9+/]{6}==-\d+$/);
});

test("parts that were uploaded before moov turned out to be in them are redone", async () => {
  // No margin, and parts laid out so the last streamed part ends exactly at the end of the file, moov included:
  // it must be replaced by a media-only part while the part before it stays.
  assert.ok(plain.length >= 15 << 20, `the sample is ${plain.length} bytes`);
  const sizes = { headBytes: plain.length - (10 << 20), partBytes: 5 << 20, tailMargin: 0 };
  assert.ok((await growAndUpload("no-margin.mp4", sizes)).equals(await movedMoov(sizes.headBytes)));
});

test("the check runs while the last parts go up: the object is completed after it passes, and never when it fails", async () => {
  const sizes = { headBytes: 5 << 20, partBytes: 5 << 20, tailMargin: 1 << 20 };
  let passed = false;
  const made = await growAndUpload("checked.mp4", sizes, async () => {
    await new Promise((r) => setTimeout(r, 300));
    passed = true;
  });
  assert.ok(passed);
  assert.ok(made.equals(await movedMoov(sizes.headBytes)));

  await assert.rejects(growAndUpload("refused.mp4", sizes, async () => {
    throw new PermanentError("the MP4 came out without its audio track");
  }), /without its audio track/);
  await assert.rejects(env.s3.send(new HeadObjectCommand({ Bucket: env.config.s3.recordingsBucket, Key: "refused.mp4" })), (err: Error) => err.name === "NotFound");
  const open = await env.s3.send(new ListMultipartUploadsCommand({ Bucket: env.config.s3.recordingsBucket, Prefix: "refused.mp4" }));
  assert.deepEqual(open.Uploads ?? [], [], "its parts were dropped");
});
