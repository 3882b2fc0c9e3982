// The HLS rules of the whole project: parse, resolve, refuse. Nothing else parses playlists.
export { HlsError, type HlsErrorKind } from "./error.js";
export { isPlaylistText, looksFinished, looksMaster, parsePlaylist, stringifyPlaylist, type MasterPlaylist, type MediaPlaylist, type Rendition, type Variant } from "./parse.js";
export { resolveUri, type UriRole } from "./uri.js";
export { listedGaps, neededKeys, resolveSegments, totalDuration, writeLocalPlaylist, type ByteRange, type ListedGap, type ResolvedSegment, type SegmentKey } from "./media.js";
export { memberKeys, pickVariant, planMaster, type MasterPlan, type RenditionRef } from "./master.js";
export { checkSegments, masterMayFollow, readPlaylist, resolveSource, sourceObjects, type AudioSource, type PlaylistObject, type Resolution, type SegmentCheck, type Source, type SubtitleSource } from "./source.js";
export { mergeWebVtt } from "./subtitles.js";
