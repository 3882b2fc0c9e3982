import { folderOf } from "../layout.js";
import { HlsError } from "./error.js";
import type { MasterPlaylist, Rendition, Variant } from "./parse.js";
import { resolveUri } from "./uri.js";

// A master playlist as one recording: the best video variant, the audio its group offers (default
// first, every language kept) and its WebVTT subtitles. Every playlist a master names belongs to it.

/** An audio or subtitle rendition: its playlist (absent when the audio is muxed in the variant) and its labels. */
export interface RenditionRef {
  /** The rendition's media playlist; undefined for audio carried in the variant's own segments. */
  key?: string;
  /** The rendition's NAME; empty for audio the playlist does not label. */
  name: string;
  language?: string;
  isDefault: boolean;
}

export interface MasterPlan {
  variantKey: string;
  variant: Variant;
  /** Audio tracks in MP4 order: the group's DEFAULT rendition (else its first) leads. */
  audio: RenditionRef[];
  /** Whether the variant's own segments carry the (leading or only) audio. */
  muxedAudio: boolean;
  subtitles: (RenditionRef & { key: string })[];
}

/** The variant a VOD viewer wants most: the highest bandwidth (not I-frame only). */
export function pickVariant(master: MasterPlaylist): Variant | undefined {
  return [...master.variants].filter((v) => !v.isIFrameOnly).sort((a, b) => b.bandwidth - a.bandwidth)[0];
}

const ref = (r: Rendition, key: string | undefined): RenditionRef => ({ key, name: r.name, language: r.language || undefined, isDefault: Boolean(r.isDefault) });

export function planMaster(master: MasterPlaylist, masterKey: string): MasterPlan {
  const sourcePrefix = folderOf(masterKey);
  const variant = pickVariant(master);
  if (!variant) throw new HlsError("bad-master", `${masterKey} is a master playlist with no playable variant: list at least one #EXT-X-STREAM-INF variant`);
  const variantKey = resolveUri(masterKey, variant.uri, sourcePrefix, "playlist");
  const group = [...variant.audio].sort((a, b) => Number(Boolean(b.isDefault)) - Number(Boolean(a.isDefault)));
  const carried = group.filter((r) => !r.uri);
  const separate = group.filter((r) => r.uri);
  // A group whose renditions all have their own playlists replaces the variant's audio (HLS spec 4.4.6.2.1).
  const muxedAudio = separate.length === 0 || carried.length > 0;
  const audio: RenditionRef[] = group.map((r) => ref(r, r.uri ? resolveUri(masterKey, r.uri, sourcePrefix, "playlist") : undefined));
  // No audio group: whatever audio the variant carries, unlabelled.
  if (audio.length === 0) audio.push({ name: "", isDefault: true });
  const subtitles = variant.subtitles.filter((r) => r.uri).map((r) => ({ ...ref(r, undefined), key: resolveUri(masterKey, r.uri!, sourcePrefix, "playlist") }));
  return { variantKey, variant, audio, muxedAudio, subtitles };
}

/** Every media playlist the master names (variants and renditions) that lies inside its folder. */
export function memberKeys(master: MasterPlaylist, masterKey: string): string[] {
  const sourcePrefix = folderOf(masterKey);
  const uris = master.variants.flatMap((v) => [v.uri, ...[...v.audio, ...v.video, ...v.subtitles].map((r) => r.uri)]);
  const keys = new Set<string>();
  for (const uri of uris) {
    if (!uri) continue;
    try {
      keys.add(resolveUri(masterKey, uri, sourcePrefix, "playlist"));
    } catch {
      // a playlist outside the folder is never read; nothing of it to map or clean up
    }
  }
  return [...keys];
}
