// The copy/transcode choice is made by the SRT addon's receive thread (srt/src/ts_probe.cc), which
// reads the codecs in the PMT and the distance between the first H.264 keyframes, so the media
// bytes never reach JavaScript. This module names its types and lets tests run it over a file.
import { loadAddon, type ProbeDecision, type Profile } from "../srt/addon.js";

export type { ProbeDecision, Profile };

/** Runs the native probe over chunks as the receive thread would see them. */
export function probeChunks(chunks: Buffer[], segmentSeconds: number): ProbeDecision | undefined {
  return loadAddon().probeTs(chunks, segmentSeconds);
}

/** An H.264 Annex B buffer holds an IDR slice (NAL type 5) before any non-IDR slice (type 1). */
export function hasIdrSlice(b: Buffer): boolean {
  return loadAddon().hasIdrSlice(b);
}
