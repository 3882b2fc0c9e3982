import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { execa } from "execa";
import { parsePlaylist, resolveSegments, type MediaPlaylist } from "../../lib/hls/index.js";
import { createLogger } from "../../lib/log.js";
import { createTestEnv, type TestEnv } from "../../test/harness.js";
import { makeHls } from "../../test/media.js";
import { uploadHls } from "../../bench/media.js";
import { startPrefetch } from "./prefetch.js";

let env: TestEnv;
let dir: string;
let work: string;

before(async () => {
  env = await createTestEnv("prefetch");
  dir = await mkdtemp(join(tmpdir(), "prefetch-test-"));
  work = await mkdtemp(join(tmpdir(), "prefetch-work-"));
  await makeHls(dir, { seconds: 20, segmentSeconds: 2 });
  await uploadHls(env.s3, env.config.s3.hlsBucket, dir, "f");
});
after(async () => {
  await env.close();
  await rm(dir, { recursive: true, force: true });
  await rm(work, { recursive: true, force: true });
});

async function segmentsOf() {
  const text = await readFile(join(dir, "index.m3u8"), "utf8");
  return resolveSegments("f/index.m3u8", parsePlaylist(text, "f/index.m3u8") as MediaPlaylist, "f");
}

for (const bufferMax of [undefined, 1000]) {
  test(`segments come back byte for byte, in order and out of order, with ranges and a missing one as 404 (${bufferMax ? "streamed" : "buffered"})`, async () => {
    const segs = await segmentsOf();
    const withMissing = [...segs, { ...segs[0]!, key: "f/not-there.ts" }];
    const ac = new AbortController();
    const presign = (k: string) => `presigned:${k}`;
    const pf = await startPrefetch({ s3: env.s3, bucket: env.config.s3.hlsBucket, lists: [withMissing], urlOf: presign, dir: work, signal: ac.signal, log: createLogger("test"), bufferMax });
    try {
      const playlist = await readFile(pf.playlists[0]!, "utf8");
      const urls = playlist.split("\n").filter((l) => l.startsWith("http://127.0.0.1:"));
      assert.equal(urls.length, withMissing.length, "every segment is served by the prefetcher");
      for (const [i, s] of segs.entries()) {
        const res = await fetch(urls[i]!);
        assert.equal(res.status, 200);
        assert.ok(Buffer.from(await res.arrayBuffer()).equals(await readFile(join(dir, s.key.slice(2)))), `segment ${s.key} differs`);
      }
      // A retry (same segment again), a resumed read (a range from an offset) and a missing object.
      const again = await fetch(urls[3]!);
      assert.ok(Buffer.from(await again.arrayBuffer()).equals(await readFile(join(dir, segs[3]!.key.slice(2)))));
      const tail = await fetch(urls[2]!, { headers: { range: "bytes=100-" } });
      assert.equal(tail.status, 206);
      assert.ok(Buffer.from(await tail.arrayBuffer()).equals((await readFile(join(dir, segs[2]!.key.slice(2)))).subarray(100)));
      const missing = await fetch(urls[urls.length - 1]!);
      assert.equal(missing.status, 404);
      assert.equal(pf.stats().served, segs.length + 2);
      assert.deepEqual(new Set(pf.urls.map(([k]) => k)), new Set(withMissing.map((s) => s.key)));
    } finally {
      await pf.close();
    }
  });
}

test("FFmpeg reads the prefetched playlist to the same packets as the presigned one", async () => {
  const segs = await segmentsOf();
  const presign = (k: string) => getSignedUrl(env.s3, new GetObjectCommand({ Bucket: env.config.s3.hlsBucket, Key: k }), { expiresIn: 600 });
  const urls = new Map(await Promise.all(segs.map(async (s) => [s.key, await presign(s.key)] as const)));
  const ac = new AbortController();
  const pf = await startPrefetch({ s3: env.s3, bucket: env.config.s3.hlsBucket, lists: [segs], urlOf: (k) => urls.get(k)!, dir: work, signal: ac.signal, log: createLogger("test") });
  try {
    const packets = async (input: string) =>
      (await execa("ffprobe", ["-v", "error", "-protocol_whitelist", "file,http,https,tcp,tls,crypto", "-show_entries", "packet=stream_index,pts,size", "-of", "csv=p=0", input])).stdout;
    const direct = await packets(join(dir, "index.m3u8"));
    assert.ok(direct.split("\n").length > 500);
    assert.equal(await packets(pf.playlists[0]!), direct);
    // Closing stops serving: the loopback port no longer answers.
    await pf.close();
    const url = (await readFile(pf.playlists[0]!, "utf8")).split("\n").find((l) => l.startsWith("http://"))!;
    await assert.rejects(fetch(url));
  } finally {
    await pf.close();
  }
});
