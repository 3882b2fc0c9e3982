#!/usr/bin/env bash
# A scratch XFS filesystem with reflink, for an object store's data folder whose CompleteMultipartUpload should
# clone the parts' extents instead of copying their bytes (the Versity gateway's posix backend joins parts with
# copy_file_range, which XFS with reflink or btrfs answers by sharing extents; ext4 copies every byte).
#
#   infra/reflink-store.sh up <dir> [size]   sparse image <dir>/xfs.img (default 64G, only written blocks take
#                                            disk), made with mkfs.xfs -m reflink=1, loop-mounted on <dir>/mnt
#                                            with discard (deleted objects give their blocks back to the host);
#                                            prints the mount point. Run again: reuses the mounted filesystem.
#   infra/reflink-store.sh down <dir>        unmounts and deletes <dir> (image included). Run again: nothing to do.
#
# Exit 3 with one line on stderr saying why when it cannot be made here (not root, no mkfs.xfs, no loop device):
# callers skip what needs it. Needs Debian's xfsprogs (infra/versions.sh installs it).
set -euo pipefail
cmd=${1:-}
dir=${2:-}
size=${3:-64G}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 up|down <dir> [size]" >&2; exit 2; }
img="$dir/xfs.img"
mnt="$dir/mnt"
unavailable() { echo "reflink store unavailable: $*" >&2; exit 3; }

case "$cmd" in
  up)
    if mountpoint -q "$mnt" 2>/dev/null; then echo "$mnt"; exit 0; fi
    [ "$(id -u)" = 0 ] || unavailable "mounting a loop device needs root (running as $(id -un))"
    command -v mkfs.xfs >/dev/null || unavailable "mkfs.xfs is not installed (apt-get install xfsprogs)"
    command -v losetup >/dev/null || unavailable "losetup is not installed (util-linux)"
    mkdir -p "$mnt"
    if [ ! -f "$img" ]; then
      truncate -s "$size" "$img.partial"
      mkfs.xfs -q -m reflink=1 "$img.partial" || { rm -f "$img.partial"; unavailable "mkfs.xfs -m reflink=1 failed"; }
      mv "$img.partial" "$img"
    fi
    if ! err=$(mount -o loop,discard "$img" "$mnt" 2>&1); then
      rm -rf "$dir"
      unavailable "mount -o loop failed (no loop devices in this container?): $err"
    fi
    echo "$mnt"
    ;;
  down)
    if mountpoint -q "$mnt" 2>/dev/null; then
      # A store that just exited may still hold the mount for a moment.
      for _ in 1 2 3 4 5 6 7 8 9 10; do umount "$mnt" 2>/dev/null && break; sleep 0.5; done
      mountpoint -q "$mnt" && { echo "reflink store: $mnt is still busy; unmount it and delete $dir by hand" >&2; exit 1; }
    fi
    rm -rf "$dir"
    ;;
  *) echo "usage: $0 up|down <dir> [size]" >&2; exit 2 ;;
esac
