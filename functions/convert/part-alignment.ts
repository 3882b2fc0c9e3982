// Where the parts of an MP4's multipart upload end. A store that joins parts with copy_file_range on a filesystem
// with reflink (the Versity gateway's posix backend on XFS or btrfs) clones their extents instead of copying the
// bytes, but the kernel clones only block-aligned ranges: one part ending off a block makes every later part a
// byte copy. So every part but the last ends on PART_ALIGN_BYTES of the object, with a `free` box (part 1, after
// the moov) or unreferenced zeros inside the mdat (the live assembly's media parts). MinIO and others are unaffected.

/** The block of XFS, btrfs and ext4 as made by default. */
export const PART_ALIGN_BYTES = 4096;

/** Zeros after `bytes` to the next boundary. */
export function alignPadding(bytes: number): number {
  return (PART_ALIGN_BYTES - (bytes % PART_ALIGN_BYTES)) % PART_ALIGN_BYTES;
}

/** Bytes of a `free` box that brings `bytes` to the next boundary: 0, or at least 8 (a box's header). */
export function alignFreeBytes(bytes: number): number {
  const pad = alignPadding(bytes);
  return pad === 0 ? 0 : pad < 8 ? pad + PART_ALIGN_BYTES : pad;
}

/** A `free` box of `size` bytes (empty for 0): players skip it. */
export function freeBox(size: number): Buffer {
  const box = Buffer.alloc(size);
  if (size) {
    box.writeUInt32BE(size, 0);
    box.write("free", 4, "latin1");
  }
  return box;
}
