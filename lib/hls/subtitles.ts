import webvtt from "node-webvtt";
import { HlsError } from "./error.js";

/**
 * One WebVTT file from the segments of a WebVTT subtitle rendition. Packagers cut cues at segment
 * boundaries and repeat a cue that spans two segments in both: repeats are kept once. Cue times in
 * FFmpeg's and most packagers' segments are already on the presentation timeline (an
 * X-TIMESTAMP-MAP header is taken to map LOCAL 0 to the media's start, as packagers write it).
 */
export function mergeWebVtt(segments: readonly { name: string; text: string }[]): string {
  const seen = new Set<string>();
  const cues: webvtt.Cue[] = [];
  for (const s of segments) {
    let parsed;
    try {
      parsed = webvtt.parse(s.text.replace(/^\uFEFF/, ""), { meta: true, strict: false });
    } catch (err) {
      throw new HlsError("not-playlist", `the subtitle segment ${s.name} is not WebVTT (${(err as Error).message}): subtitle renditions must list WebVTT files`);
    }
    for (const c of parsed.cues) {
      const id = `${c.start}|${c.end}|${c.text}`;
      if (seen.has(id)) continue;
      seen.add(id);
      cues.push(c);
    }
  }
  cues.sort((a, b) => a.start - b.start || a.end - b.end);
  return webvtt.compile({ valid: true, cues });
}
