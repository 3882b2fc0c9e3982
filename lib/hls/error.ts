// What is wrong with an HLS folder, as a value: each caller maps it to its own error (convert and
// thumbnail fail the job permanently, the API answers bad_source). Messages say what to fix.

export type HlsErrorKind =
  /** The object is not a playlist, or cannot be parsed as one. */
  | "not-playlist"
  /** A playlist larger than any real playlist: probably media uploaded under a .m3u8 name. */
  | "too-large"
  /** A segment, init section, key or rendition URI that would read outside the recording's folder. */
  | "outside-folder"
  /** Encryption convert cannot undo (SAMPLE-AES, unknown methods). */
  | "encryption"
  /** A media playlist that lists nothing. */
  | "no-segments"
  /** A master playlist with nothing playable, or naming a master as its variant. */
  | "bad-master";

export class HlsError extends Error {
  override name = "HlsError";
  constructor(
    readonly kind: HlsErrorKind,
    message: string,
  ) {
    super(message);
  }
}
