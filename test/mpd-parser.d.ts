// The part of video.js's mpd-parser the tests use (the package ships no types).
declare module "mpd-parser" {
  export interface MpdSegment {
    uri: string;
    resolvedUri: string;
    duration: number;
    map?: { uri: string; resolvedUri: string };
  }
  export interface MpdPlaylist {
    attributes: { RESOLUTION?: { width: number; height: number }; CODECS?: string; BANDWIDTH?: number };
    segments: MpdSegment[];
  }
  export interface MpdManifest {
    playlists: MpdPlaylist[];
    mediaGroups: { AUDIO: Record<string, Record<string, { playlists?: MpdPlaylist[] }>> };
  }
  export function parse(manifest: string, options?: { manifestUri?: string }): MpdManifest;
}
