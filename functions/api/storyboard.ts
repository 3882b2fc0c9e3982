import type { Presign } from "./links.js";
import { resolveKey } from "./playlist.js";

/**
 * The storyboard's WebVTT with each cue's image (`sprite.jpg#xywh=x,y,w,h`, relative to the VTT)
 * replaced by a presigned link, keeping the fragment that says which tile of the sprite to show.
 * WebVTT is line-based: a cue payload is the line after the `-->` timing line.
 */
export async function rewriteStoryboard(vtt: string, src: { bucket: string; key: string; sourcePrefix: string }, presign: Presign): Promise<string> {
  const lines = vtt.split(/\r?\n/);
  const out = await Promise.all(
    lines.map(async (line, i) => {
      if (i === 0 || !lines[i - 1]!.includes("-->") || line.trim() === "") return line;
      const hash = line.indexOf("#");
      const target = hash === -1 ? line.trim() : line.slice(0, hash).trim();
      const fragment = hash === -1 ? "" : line.slice(hash);
      const key = resolveKey(target, src);
      return key === undefined ? line : `${await presign(src.bucket, key, { contentType: "image/jpeg" })}${fragment}`;
    }),
  );
  return out.join("\n");
}
