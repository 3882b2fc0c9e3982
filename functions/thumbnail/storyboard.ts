import { readFile, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { composeSprite, grabTiles } from "./frames.js";
import { jpegSize } from "./jpeg.js";
import type { SegmentRef } from "./playlist.js";
import type { FrameDeps } from "./poster.js";
import { fetchSegment, SegmentUnreadable } from "./segment.js";

export const TILE_WIDTH = 160;
export const SPRITE_COLUMNS = 10;
/** Segments read and decoded by one FFmpeg process: bounds its memory (about 5 MB per 720p input). */
export const TILE_BATCH = 20;

export interface Tile {
  /** Cue start and end, seconds. */
  start: number;
  end: number;
  x: number;
  y: number;
}

export interface Storyboard {
  sprite: Uint8Array;
  vtt: string;
  tileWidth: number;
  tileHeight: number;
  columns: number;
  rows: number;
  tiles: Tile[];
}

/**
 * At most `maxTiles` segments, evenly spread: the timeline is cut into `maxTiles` equal slots and the
 * first segment starting in each slot is taken. Each tile is that segment's first keyframe.
 */
export function pickTileSegments(segments: readonly SegmentRef[], duration: number, maxTiles: number): SegmentRef[] {
  if (segments.length <= maxTiles) return [...segments];
  if (!(duration > 0)) return Array.from({ length: maxTiles }, (_, i) => segments[Math.floor((i * segments.length) / maxTiles)]!);
  const slot = duration / maxTiles;
  const picks: SegmentRef[] = [];
  let last = -1;
  for (const s of segments) {
    const i = Math.min(maxTiles - 1, Math.floor(s.start / slot + 1e-9));
    if (i === last) continue;
    picks.push(s);
    last = i;
  }
  return picks;
}

function timestamp(seconds: number): string {
  const ms = Math.round(Math.max(0, seconds) * 1000);
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor(ms / 60_000) % 60;
  const s = Math.floor(ms / 1000) % 60;
  const pad = (v: number, n = 2) => String(v).padStart(n, "0");
  return `${pad(h)}:${pad(m)}:${pad(s)}.${pad(ms % 1000, 3)}`;
}

/** WebVTT whose cues point into the sprite (`storyboard.jpg#xywh=x,y,w,h`), as players' scrub previews expect. */
export function storyboardVtt(spriteName: string, tiles: readonly Tile[], w: number, h: number): string {
  const cues = tiles.map((t) => `${timestamp(t.start)} --> ${timestamp(t.end)}\n${encodeURI(spriteName)}#xywh=${t.x},${t.y},${w},${h}`);
  return `WEBVTT\n\n${cues.join("\n\n")}\n`;
}

async function nonEmpty(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.size ? true : false;
}

/**
 * The sprite sheet and its VTT. Reads at most `maxTiles` segments whatever the stream's length; a
 * segment that cannot be read or decoded is left out (the previous cue then lasts longer).
 * Returns undefined when no tile could be made.
 */
export async function makeStoryboard(
  deps: FrameDeps,
  segments: readonly SegmentRef[],
  duration: number,
  opts: { maxTiles: number; aspect: number; spriteName: string },
): Promise<Storyboard | undefined> {
  const picks = pickTileSegments(segments, duration, opts.maxTiles);
  const tileWidth = TILE_WIDTH;
  const tileHeight = Math.max(2, 2 * Math.round(tileWidth / opts.aspect / 2));
  const made: SegmentRef[] = [];

  for (let b = 0; b < picks.length; b += TILE_BATCH) {
    const batch = picks.slice(b, b + TILE_BATCH);
    const fetched = await Promise.all(
      batch.map(async (seg, i) => {
        const src = join(deps.dir, `tile-source-${b + i}`);
        try {
          await fetchSegment(deps.s3, deps.bucket, seg, src, deps.inits, deps.signal);
          return { seg, src, out: join(deps.dir, `tile-raw-${b + i}.png`) };
        } catch (err) {
          if (!(err instanceof SegmentUnreadable)) throw err;
          deps.log.warn({ segment: seg.key, why: err.message }, "storyboard tile skipped");
          return undefined;
        }
      }),
    );
    const ready = fetched.filter((f) => f !== undefined);
    try {
      if (ready.length === 0) continue;
      const all = await grabTiles(deps.ffmpeg, ready.map((f) => f.src), ready.map((f) => f.out), tileWidth, tileHeight, deps.signal);
      if (!all.ok) {
        // One bad segment fails the whole batch: redo it one segment at a time to keep the good ones.
        deps.log.warn({ why: all.why, segments: ready.length }, "storyboard batch failed, retrying its segments one by one");
        for (const f of ready) {
          const one = await grabTiles(deps.ffmpeg, [f.src], [f.out], tileWidth, tileHeight, deps.signal);
          if (!one.ok) deps.log.warn({ segment: f.seg.key, why: one.why }, "storyboard tile skipped");
        }
      }
      for (const f of ready) {
        if (!(await nonEmpty(f.out))) continue;
        await rename(f.out, join(deps.dir, `tile-${String(made.length).padStart(4, "0")}.png`));
        made.push(f.seg);
      }
    } finally {
      await Promise.all(ready.map((f) => rm(f.src, { force: true })));
    }
  }
  if (made.length === 0) return undefined;

  const columns = Math.min(SPRITE_COLUMNS, made.length);
  const rows = Math.ceil(made.length / columns);
  const spritePath = join(deps.dir, "storyboard.jpg");
  const composed = await composeSprite(deps.ffmpeg, join(deps.dir, "tile-%04d.png"), columns, rows, spritePath, deps.signal);
  if (!composed.ok) {
    deps.log.warn({ why: composed.why }, "storyboard sprite could not be composed");
    return undefined;
  }
  const sprite = await readFile(spritePath);
  if (!jpegSize(sprite)) {
    deps.log.warn({ bytes: sprite.length }, "storyboard sprite is empty or truncated");
    return undefined;
  }
  const tiles = made.map((seg, i) => ({
    start: i === 0 ? 0 : seg.start,
    end: i + 1 < made.length ? made[i + 1]!.start : duration,
    x: (i % columns) * tileWidth,
    y: Math.floor(i / columns) * tileHeight,
  }));
  return { sprite, vtt: storyboardVtt(opts.spriteName, tiles, tileWidth, tileHeight), tileWidth, tileHeight, columns, rows, tiles };
}
