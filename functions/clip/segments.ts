import type { S3Client } from "@aws-sdk/client-s3";
import { getText } from "../../lib/s3.js";
import { parsePlaylist, resolveSegments } from "../../lib/hls/index.js";
import type { TimedSegment } from "./clip.js";

/** A media playlist's segments placed on its timeline (start = the durations before it). */
export function timedSegments(text: string, playlistKey: string, sourcePrefix: string): TimedSegment[] {
  const playlist = parsePlaylist(text, playlistKey);
  if (playlist.isMasterPlaylist || playlist.segments.length === 0) return [];
  let at = 0;
  return resolveSegments(playlistKey, playlist, sourcePrefix).map((s) => {
    const seg = { ...s, start: at };
    at += s.duration;
    return seg;
  });
}

/** The segments that hold any of [from, to): what a clip of that range needs to read. */
export function covering(segments: readonly TimedSegment[], from: number, to: number): TimedSegment[] {
  return segments.filter((s) => s.start + s.duration > from + 1e-6 && s.start < to - 1e-6);
}

/**
 * The parent's source segments covering a range, when its HLS is still in the source bucket and is a plain
 * media playlist: the clip's storyboard is made from them as the thumbnail function makes one. Else none.
 */
export async function sourceSegments(s3: S3Client, bucket: string, parent: { playlistKey: string | null; sourcePrefix: string }, from: number, to: number): Promise<TimedSegment[]> {
  if (!parent.playlistKey) return [];
  try {
    return covering(timedSegments(await getText(s3, bucket, parent.playlistKey), parent.playlistKey, parent.sourcePrefix), from, to);
  } catch {
    return [];
  }
}
