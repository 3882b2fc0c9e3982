// The session's event playlist: only segments already stored, in order, with a discontinuity
// where a reconnect (a new encoder run) begins, and an #EXT-X-GAP entry (RFC 8216bis: the segment is
// missing, players skip it) with its real duration for each segment the full spool made the uploader
// drop, so the playlist's timeline stays the broadcast's. Written with hls-parser, read back through lib/hls.
import HLS from "hls-parser";
import { parsePlaylist } from "../../lib/hls/index.js";

const { MediaPlaylist, Segment } = HLS.types;
type MediaPlaylistT = InstanceType<typeof MediaPlaylist>;

/** The live playlist's name is the storage layout's (lib/layout.ts); kept under this name for the uploader. */
export { LIVE_PLAYLIST_NAME as PLAYLIST_NAME } from "../../lib/layout.js";

export interface PlaylistEntry {
  uri: string;
  duration: number;
  discontinuity: boolean;
  /** The segment was dropped before it could be stored: listed as #EXT-X-GAP, never fetched. */
  gap?: boolean;
}

export class Playlist {
  readonly entries: PlaylistEntry[] = [];

  constructor(private readonly segmentSeconds: number, entries: PlaylistEntry[] = []) {
    this.entries.push(...entries);
  }

  add(entry: PlaylistEntry): void {
    this.entries.push(entry);
  }

  /** The broadcast's length so far, gaps included. */
  get duration(): number {
    return this.entries.reduce((s, e) => s + e.duration, 0);
  }

  /** Seconds of media in the store (gaps not counted). */
  get storedDuration(): number {
    return this.entries.reduce((s, e) => s + (e.gap ? 0 : e.duration), 0);
  }

  render(ended: boolean): string {
    const longest = this.entries.reduce((m, e) => Math.max(m, e.duration), 0);
    let discontinuities = 0;
    const segments = this.entries.map((e, i) => {
      if (e.discontinuity && i > 0) discontinuities++;
      return new Segment({
        uri: e.uri,
        duration: Number(e.duration.toFixed(6)),
        discontinuity: e.discontinuity && i > 0,
        gap: e.gap || undefined,
        mediaSequenceNumber: i,
        discontinuitySequence: discontinuities,
      });
    });
    const playlist = new MediaPlaylist({
      // EXT-X-GAP needs version 8 for strict parsers (hls-parser's strict mode among them); 3 otherwise, as before.
      version: this.entries.some((e) => e.gap) ? 8 : 3,
      // Players require every EXTINF, rounded, to fit the target duration.
      targetDuration: Math.max(this.segmentSeconds, Math.round(longest)),
      playlistType: "EVENT",
      mediaSequenceBase: 0,
      endlist: ended,
      segments,
    });
    return HLS.stringify(playlist);
  }

  /** Reads a playlist this gateway wrote (after a crash or restart); undefined when it is not a media playlist. */
  static parse(text: string, segmentSeconds: number): { playlist: Playlist; ended: boolean } | undefined {
    const parsed = parsePlaylist(text, "the session's playlist");
    if (parsed.isMasterPlaylist) return undefined;
    const media = parsed as MediaPlaylistT;
    const entries = media.segments.map((s) => ({ uri: s.uri, duration: s.duration, discontinuity: Boolean(s.discontinuity), ...(s.gap ? { gap: true } : {}) }));
    return { playlist: new Playlist(segmentSeconds, entries), ended: media.endlist };
  }
}

export function segmentFileName(index: number): string {
  return `seg${String(index).padStart(5, "0")}.ts`;
}

/** The index after the highest `segNNNNN.ts` listed, so a resumed session never reuses a name. */
export function nextSegmentIndex(entries: PlaylistEntry[]): number {
  let next = 0;
  for (const e of entries) {
    const m = /^seg(\d+)\.ts$/.exec(e.uri);
    if (m) next = Math.max(next, Number(m[1]) + 1);
  }
  return Math.max(next, entries.length);
}
