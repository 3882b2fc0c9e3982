// SessionUploader through its public API, over an in-memory store that records every PUT and can
// stall or fail: the order rules and the spool budget, without S3.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import HLS from "hls-parser";
import type { ObjectPut } from "../../lib/s3.js";
import { pino } from "pino";
import { createGatewayMetrics } from "../metrics.js";
import { Playlist, segmentFileName } from "../session/playlist.js";
import { SpoolBudget } from "./spool-budget.js";
import { SessionUploader } from "./uploader.js";

const PREFIX = "cam/s1";
const PLAYLIST_KEY = `${PREFIX}/index.m3u8`;

/** Stores PUT bodies by key; `hold()` stalls every PUT until released; `failNext(n)` fails the next n. */
function memoryStore() {
  const objects = new Map<string, string>();
  const puts: string[] = [];
  /** For each stored playlist: the segments it named that were not stored yet (must stay empty). */
  const unstoredNamed: string[][] = [];
  let held: Promise<void> | undefined;
  let release = () => {};
  let failures = 0;
  const putter = {
    async put({ key: Key, body: Body }: ObjectPut) {
      if (held) await held;
      if (failures > 0) {
        failures--;
        throw new Error("the store is restarting");
      }
      const text = typeof Body === "string" ? Body : Buffer.from(Body).toString();
      if (Key === PLAYLIST_KEY) {
        const named = Playlist.parse(text, 2)!.playlist.entries.map((e) => `${PREFIX}/${e.uri}`);
        unstoredNamed.push(named.filter((k) => !objects.has(k)));
      }
      objects.set(Key, text);
      puts.push(Key);
    },
  };
  return {
    putter,
    objects,
    puts,
    unstoredNamed,
    hold() {
      held = new Promise((r) => (release = r));
    },
    release() {
      held = undefined;
      release();
    },
    failNext(n: number) {
      failures = n;
    },
  };
}

async function setup(limitBytes = 1e9) {
  const dir = await mkdtemp(join(tmpdir(), "uploader-unit-"));
  const store = memoryStore();
  const metrics = createGatewayMetrics();
  const budget = new SpoolBudget(limitBytes);
  const playlist = new Playlist(2);
  const stored: string[] = [];
  const uploader = new SessionUploader({
    store: store.putter,
    bucket: "hls",
    prefix: PREFIX,
    playlist,
    log: pino({ level: "silent" }),
    metrics,
    budget,
    context: {},
    onStored: (seg) => stored.push(seg.name),
  });
  let index = 0;
  /** FFmpeg finishing the next segment: a file of `bytes` on disk, then enqueued. */
  const finishSegment = async (bytes = 100, discontinuity = false) => {
    const name = segmentFileName(index++);
    const path = join(dir, name);
    await writeFile(path, Buffer.alloc(bytes, index));
    await uploader.enqueue({ name, path, duration: 2, discontinuity, closedAt: Date.now() });
    return { name, path };
  };
  return { dir, store, metrics, budget, playlist, stored, uploader, finishSegment };
}

test("segments are stored in the order FFmpeg finished them, each before the playlist that names it", async () => {
  const u = await setup();
  for (let i = 0; i < 5; i++) await u.finishSegment();
  await u.uploader.drain();
  const segments = u.store.puts.filter((k) => k !== PLAYLIST_KEY);
  assert.deepEqual(segments, [0, 1, 2, 3, 4].map((i) => `${PREFIX}/${segmentFileName(i)}`));
  assert.ok(u.store.unstoredNamed.length >= 1, "the playlist was stored");
  assert.deepEqual(u.store.unstoredNamed.flat(), [], "no stored playlist ever named a segment the store did not have");
  assert.deepEqual(u.stored, [0, 1, 2, 3, 4].map(segmentFileName));
  assert.equal(u.budget.usedBytes, 0, "every stored segment gave its bytes back to the spool");
});

test("finish stores the playlist with ENDLIST last, after every queued segment", async () => {
  const u = await setup();
  u.store.hold();
  for (let i = 0; i < 3; i++) await u.finishSegment();
  const finished = u.uploader.finish();
  u.store.release();
  assert.equal(await finished, true);
  assert.equal(u.store.puts.at(-1), PLAYLIST_KEY);
  assert.match(u.store.objects.get(PLAYLIST_KEY)!, /#EXT-X-ENDLIST\s*$/);
  assert.equal(Playlist.parse(u.store.objects.get(PLAYLIST_KEY)!, 2)!.playlist.entries.length, 3);
});

test("a session with no stored segment has nothing to finish", async () => {
  const u = await setup();
  assert.equal(await u.uploader.finish(), false);
  assert.deepEqual(u.store.puts, []);
});

test("a failing store is retried until it answers, without reordering", async () => {
  const u = await setup();
  u.store.failNext(2);
  await u.finishSegment();
  await u.finishSegment();
  await u.uploader.drain();
  assert.deepEqual(u.stored, [segmentFileName(0), segmentFileName(1)]);
  assert.deepEqual(u.store.unstoredNamed.flat(), []);
});

test("when the spool is over budget, the oldest waiting segment is dropped (never the one being stored) and the playlist lists it as a gap with its duration", async () => {
  // Room for two 100-byte segments: a stalled store makes the third and fourth push the oldest waiting one out.
  const u = await setup(250);
  u.store.hold();
  const s0 = await u.finishSegment();
  const s1 = await u.finishSegment();
  const s2 = await u.finishSegment();
  const s3 = await u.finishSegment();
  assert.equal(existsSync(s1.path), false, "the dropped segment's file is removed from the spool");
  assert.equal(existsSync(s2.path), false);
  assert.ok(u.budget.usedBytes <= 250, `spool ${u.budget.usedBytes} bytes over its 250-byte budget`);
  u.store.release();
  await u.uploader.drain();
  assert.deepEqual(u.stored, [s0.name, s3.name]);
  assert.equal(u.budget.usedBytes, 0, "dropped segments gave their bytes back once, stored ones after their PUT");
  assert.ok(!u.store.puts.includes(`${PREFIX}/${s1.name}`) && !u.store.puts.includes(`${PREFIX}/${s2.name}`), "a dropped segment is never PUT");
  const text = u.store.objects.get(PLAYLIST_KEY)!;
  const entries = Playlist.parse(text, 2)!.playlist.entries;
  assert.deepEqual(entries.map((e) => [e.uri, e.duration, e.discontinuity, Boolean(e.gap)]), [
    [s0.name, 2, false, false],
    [s1.name, 2, false, true],
    [s2.name, 2, false, true],
    [s3.name, 2, false, false],
  ]);
  assert.match(text, new RegExp(`#EXT-X-GAP\\n#EXTINF:2,?\\n${s1.name}`), "the standard tag, before the segment it marks");
  assert.match(text, /#EXT-X-VERSION:8\n/, "the version strict parsers require for EXT-X-GAP");
  HLS.setOptions({ strictMode: true });
  try {
    assert.equal((HLS.parse(text) as InstanceType<typeof HLS.types.MediaPlaylist>).segments.filter((s) => s.gap).length, 2, "a strict parser accepts it");
  } finally {
    HLS.setOptions({ strictMode: false });
  }
  const p = Playlist.parse(text, 2)!.playlist;
  assert.equal(p.duration, 8, "the timeline keeps the dropped seconds");
  assert.equal(p.storedDuration, 4);
  const dropped = (await u.metrics.registry.getSingleMetric("gateway_segments_dropped_total")!.get()).values[0]!.value;
  assert.equal(dropped, 2);
});

test("a dropped segment that began a reconnect keeps its discontinuity as a gap; finishing lists trailing gaps in the final playlist", async () => {
  const u = await setup(150);
  u.store.hold();
  const s0 = await u.finishSegment();
  const s1 = await u.finishSegment(100, true);
  const s2 = await u.finishSegment();
  const finished = u.uploader.finish();
  u.store.release();
  assert.equal(await finished, true);
  const entries = Playlist.parse(u.store.objects.get(PLAYLIST_KEY)!, 2)!.playlist.entries;
  assert.deepEqual(entries.map((e) => [e.uri, e.discontinuity, Boolean(e.gap)]), [
    [s0.name, false, false],
    [s1.name, true, true],
    [s2.name, false, false],
  ]);
});
