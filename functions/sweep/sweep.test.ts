import { test } from "node:test";
import assert from "node:assert/strict";
import { eq } from "drizzle-orm";
import { jetstream } from "@nats-io/jetstream";
import { putText, headObject } from "../../lib/s3.js";
import { createLogger } from "../../lib/log.js";
import { recordings } from "../../db/schema.js";
import { createTestEnv, type TestEnv } from "../../test/harness.js";
import { decodeStorageEvent, playlistEvents } from "../events/decode.js";
import { sweep } from "./sweep.js";

const FINISHED = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nseg0.ts\n#EXT-X-ENDLIST\n";
const LIVE = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:EVENT\n#EXTINF:2.0,\nseg0.ts\n";

async function pending(env: TestEnv): Promise<string[]> {
  const consumer = await jetstream(env.nc).consumers.get(env.config.nats.stream, env.config.nats.consumers.convert);
  const keys: string[] = [];
  for (;;) {
    const batch = await consumer.fetch({ max_messages: 100, expires: 1500 });
    let n = 0;
    for await (const m of batch) {
      n++;
      keys.push(...playlistEvents(decodeStorageEvent(m.data), env.config.s3.hlsBucket).map((e) => e.key));
      m.ack();
    }
    if (n === 0) return keys;
  }
}

test("the sweep re-publishes finished playlists that convert has not handled, and only those", async (t) => {
  const env = await createTestEnv("sweep");
  t.after(() => env.close());
  const bucket = env.config.s3.hlsBucket;
  const put = (key: string, text: string) => putText(env.s3, bucket, key, text, "application/vnd.apple.mpegurl");
  await put("no-row/index.m3u8", FINISHED);
  await put("thumb-row/index.m3u8", FINISHED);
  await put("converted/index.m3u8", FINISHED);
  await put("changed/index.m3u8", FINISHED);
  await put("still-live/index.m3u8", LIVE);
  await put("broadcast/s1/index.m3u8", FINISHED);
  await pending(env); // the store's own events: this test is about what the sweep adds

  const etag = async (key: string) => (await headObject(env.s3, bucket, key))!.ETag!.replaceAll('"', "");
  // thumbnail made the row before convert saw the playlist; the gateway made a live row.
  await env.db.insert(recordings).values({ sourcePrefix: "thumb-row", streamId: "thumb-row", title: "thumb-row", status: "processing" });
  await env.db.insert(recordings).values({ sourcePrefix: "broadcast/s1", streamId: "broadcast", title: "b", status: "live", sessionId: "s1" });
  await env.db.insert(recordings).values({ sourcePrefix: "converted", streamId: "converted", title: "c", status: "ready", playlistKey: "converted/index.m3u8", playlistEtag: await etag("converted/index.m3u8") });
  await env.db.insert(recordings).values({ sourcePrefix: "changed", streamId: "changed", title: "c", status: "ready", playlistKey: "changed/index.m3u8", playlistEtag: await etag("changed/index.m3u8") });
  // Re-uploaded with other content after it was converted.
  await env.db.update(recordings).set({ updatedAt: new Date(Date.now() - 60_000) }).where(eq(recordings.sourcePrefix, "changed"));
  await put("changed/index.m3u8", FINISHED.replace("seg0.ts", "seg0.ts\n#EXTINF:2.0,\nseg1.ts"));
  await pending(env);

  const log = createLogger("sweep-test", "silent");
  const result = await sweep({ s3: env.s3, db: env.db, nc: env.nc, log, config: env.config });
  const expected = ["broadcast/s1/index.m3u8", "changed/index.m3u8", "no-row/index.m3u8", "thumb-row/index.m3u8"];
  assert.equal(result.playlists, 6);
  assert.deepEqual([...result.published].sort(), expected);
  assert.deepEqual((await pending(env)).sort(), expected, "convert receives exactly the swept playlists");

  // Within the stream's duplicate window the same versions are not delivered twice.
  await sweep({ s3: env.s3, db: env.db, nc: env.nc, log, config: env.config });
  assert.deepEqual(await pending(env), []);
});
