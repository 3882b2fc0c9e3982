// What the S3 SDK's integrity work costs the gateway per GB of segments (figures printed, not asserted):
// the Node process's CPU seconds for PUTs of 1.5 MB segments (a 4 s segment at 3 Mbps) to the local store,
// with the SDK's default checksum (CRC32), none, an explicit algorithm, an unsigned payload and the gateway's lean putter;
// the CPU per small playlist PUT, SDK vs putter; then the
// raw cost of each hash alone. Needs `make infra`. UPLOAD_BENCH_MB=300 sets the amount.
import { createHash, randomBytes } from "node:crypto";
import { crc32 } from "node:zlib";
import { CreateBucketCommand, DeleteBucketCommand, PutObjectCommand, S3Client, type ChecksumAlgorithm } from "@aws-sdk/client-s3";
import { loadConfig } from "../lib/config.js";
import { createObjectPutter, deletePrefix } from "../lib/s3.js";

const TOTAL_MB = Number(process.env.UPLOAD_BENCH_MB ?? 300);
const SEGMENT = randomBytes(1.5 * 1024 * 1024);
const COUNT = Math.ceil((TOTAL_MB * 1024 * 1024) / SEGMENT.length);
const config = loadConfig(process.env);
const bucket = `bench-upload-${randomBytes(3).toString("hex")}`;

function client(when: "WHEN_SUPPORTED" | "WHEN_REQUIRED", unsigned = false): S3Client {
  const c = new S3Client({
    endpoint: config.s3.endpoint, region: config.s3.region, forcePathStyle: true,
    credentials: { accessKeyId: config.s3.accessKey, secretAccessKey: config.s3.secretKey },
    requestChecksumCalculation: when, responseChecksumValidation: "WHEN_REQUIRED",
  });
  // SigV4 hashes the whole body into x-amz-content-sha256 unless it says UNSIGNED-PAYLOAD.
  if (unsigned)
    c.middlewareStack.add((next) => async (args) => {
      (args.request as { headers: Record<string, string> }).headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD";
      return next(args);
    }, { step: "build", name: "unsignedPayload" });
  return c;
}

async function put(label: string, c: S3Client, algo?: ChecksumAlgorithm) {
  const cpu0 = process.cpuUsage();
  const t0 = Date.now();
  for (let i = 0; i < COUNT; i++) await c.send(new PutObjectCommand({ Bucket: bucket, Key: `${label}/${i}.ts`, Body: SEGMENT, ContentType: "video/mp2t", ChecksumAlgorithm: algo }));
  const cpu = process.cpuUsage(cpu0);
  const gb = (COUNT * SEGMENT.length) / 1024 ** 3;
  return { way: label, cpuSecondsPerGB: Number(((cpu.user + cpu.system) / 1e6 / gb).toFixed(2)), wallSecondsPerGB: Number(((Date.now() - t0) / 1000 / gb).toFixed(2)) };
}

/** The gateway's own putter (lib/s3.ts): the SDK's signer without its middleware stack. */
async function putLean(label: string, crc: boolean) {
  const putter = createObjectPutter(config.s3);
  const cpu0 = process.cpuUsage();
  const t0 = Date.now();
  for (let i = 0; i < COUNT; i++) await putter.put({ bucket, key: `${label}/${i}.ts`, body: SEGMENT, contentType: "video/mp2t", crc32: crc });
  const cpu = process.cpuUsage(cpu0);
  putter.destroy();
  const gb = (COUNT * SEGMENT.length) / 1024 ** 3;
  return { way: label, cpuSecondsPerGB: Number(((cpu.user + cpu.system) / 1e6 / gb).toFixed(2)), wallSecondsPerGB: Number(((Date.now() - t0) / 1000 / gb).toFixed(2)) };
}

/** CPU ms per PUT of a small live playlist (one per segment besides the segment itself). */
async function playlistPut(label: string, put: (i: number) => Promise<unknown>) {
  const n = 300;
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < n; i++) await put(i);
  const cpu = process.cpuUsage(cpu0);
  return { playlistPut: label, cpuMsPerPut: Number(((cpu.user + cpu.system) / 1000 / n).toFixed(3)) };
}

function hash(label: string, f: (b: Buffer) => void) {
  const n = 200;
  const t0 = process.cpuUsage();
  for (let i = 0; i < n; i++) f(SEGMENT);
  const u = process.cpuUsage(t0);
  return { hash: label, cpuSecondsPerGB: Number(((u.user + u.system) / 1e6 / ((n * SEGMENT.length) / 1024 ** 3)).toFixed(3)) };
}

await client("WHEN_REQUIRED").send(new CreateBucketCommand({ Bucket: bucket }));
try {
  const rows = [];
  rows.push(await put("sdk-default-crc32", client("WHEN_SUPPORTED")));
  rows.push(await put("no-checksum", client("WHEN_REQUIRED")));
  rows.push(await put("crc32c", client("WHEN_REQUIRED"), "CRC32C"));
  rows.push(await put("sha256-checksum", client("WHEN_REQUIRED"), "SHA256"));
  rows.push(await put("no-checksum-unsigned-payload", client("WHEN_REQUIRED", true)));
  rows.push(await put("crc32-unsigned-payload", client("WHEN_SUPPORTED", true)));
  rows.push(await putLean("lean-putter-crc32-unsigned (the gateway's)", true));
  rows.push(await putLean("lean-putter-unsigned-no-checksum", false));
  console.log(`\nPUT ${COUNT} segments of 1.5 MB (${((COUNT * SEGMENT.length) / 1024 ** 2).toFixed(0)} MB) to ${config.s3.endpoint}: Node CPU seconds per GB (SigV4 hashes the payload unless unsigned)`);
  console.table(rows);
  const playlist = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n" + "#EXTINF:4.000,\nseg00001.ts\n".repeat(30);
  const sdk = client("WHEN_REQUIRED", true);
  const lean = createObjectPutter(config.s3);
  console.table([
    await playlistPut("sdk PutObject", (i) => sdk.send(new PutObjectCommand({ Bucket: bucket, Key: `pl-sdk/${i}.m3u8`, Body: playlist, ContentType: "application/vnd.apple.mpegurl" }))),
    await playlistPut("lean putter", (i) => lean.put({ bucket, key: `pl-lean/${i}.m3u8`, body: playlist, contentType: "application/vnd.apple.mpegurl" })),
  ]);
  lean.destroy();
  console.table([
    hash("sha256 (node:crypto)", (b) => createHash("sha256").update(b).digest()),
    hash("md5 (node:crypto)", (b) => createHash("md5").update(b).digest()),
    hash("crc32 (node:zlib)", (b) => crc32(b)),
  ]);
  console.log(JSON.stringify({ bench: "upload-checksums", puts: rows }));
} finally {
  const c = client("WHEN_REQUIRED");
  await deletePrefix(c, bucket, "").catch(() => {});
  await c.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => {});
}
