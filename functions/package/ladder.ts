// The ABR ladder's rules, pure: which rungs a source gets, at which size and bitrate. No I/O here.

export interface Rung {
  height: number;
  /** Video kbit/s of the rung before the source's own bitrate caps it. */
  kbps: number;
}

/** Sensible H.264 video bitrates for the common rungs (kbit/s); other heights scale by area. */
const DEFAULT_KBPS: Record<number, number> = { 2160: 14000, 1440: 8000, 1080: 5000, 720: 3000, 480: 1400, 360: 800, 240: 400, 144: 200 };

export function defaultKbps(height: number): number {
  return DEFAULT_KBPS[height] ?? Math.max(100, Math.round((height * height * 5000) / (1080 * 1080)));
}

/** `off` → no ladder; `1080,720:2500,480` → rungs, highest first. The config schema already checked the shape. */
export function parseLadder(spec: string): Rung[] {
  if (spec.trim() === "off") return [];
  const rungs = spec.split(",").map((part) => {
    const [h, k] = part.trim().split(":");
    const height = Number(h);
    return { height, kbps: k ? Number(k) : defaultKbps(height) };
  });
  const seen = new Set<number>();
  return rungs.filter((r) => (seen.has(r.height) ? false : (seen.add(r.height), true))).sort((a, b) => b.height - a.height);
}

export interface SourceFacts {
  width: number;
  height: number;
  /** Video bits per second, when the container says. */
  videoBitrate?: number;
  frameRate: number;
  videoCodec: string;
  /** True when the source's keyframes fall on every segment boundary (within one frame). */
  keyframesAligned: boolean;
}

export interface PlannedRendition {
  name: string;
  width: number;
  height: number;
  /** Target video bit rate (bit/s) when encoded; for a copy, the source's. */
  videoBitrate: number;
  /** The source's video stream is used as it is: H.264, this height, keyframes on the segment boundaries. */
  copy: boolean;
}

/** A source up to this much above a rung's bitrate still counts as fitting it. */
const COPY_BITRATE_SLACK = 1.25;

const even = (n: number) => Math.max(2, 2 * Math.round(n / 2));

/**
 * The rungs a source gets: never taller than the source (no upscaling), never above its bitrate.
 * A source shorter than every rung gets one rendition at its own size, so every recording has a ladder.
 */
export function planLadder(source: SourceFacts, ladder: Rung[]): PlannedRendition[] {
  const fit = ladder.filter((r) => r.height <= source.height);
  const rungs = fit.length > 0 ? fit : ladder.length > 0 ? [{ height: source.height, kbps: defaultKbps(source.height) }] : [];
  const cap = source.videoBitrate && source.videoBitrate > 0 ? source.videoBitrate : Infinity;
  return rungs.map((r) => {
    // Copied when it already fits the rung: H.264, its height, keyframes on the boundaries, and not far above the rung's bitrate.
    const copy = r.height === source.height && source.videoCodec === "h264" && source.keyframesAligned && (source.videoBitrate ?? Infinity) <= r.kbps * 1000 * COPY_BITRATE_SLACK;
    const height = r.height === source.height ? source.height : even(r.height);
    const width = r.height === source.height ? source.width : even((source.width * r.height) / source.height);
    const videoBitrate = copy && source.videoBitrate ? source.videoBitrate : Math.min(r.kbps * 1000, cap);
    return { name: `${height}p`, width, height, videoBitrate: Math.round(videoBitrate), copy };
  });
}

/**
 * True when at every segment boundary b (b = k × segment length, on the timeline FFmpeg's forced keyframes
 * use) up to the last frame, the first frame at or after b is a keyframe: then copied and encoded renditions
 * cut at the same frames.
 */
export function keyframesOnBoundaries(keyframes: number[], segmentSeconds: number, lastFrame: number, frameRate: number): boolean {
  const frame = 1 / Math.max(1, frameRate);
  for (let b = segmentSeconds; b <= lastFrame + 1e-6; b += segmentSeconds) {
    if (!keyframes.some((k) => k >= b - 1e-6 && k < b + frame - 1e-6)) return false;
  }
  return keyframes.length > 0;
}
