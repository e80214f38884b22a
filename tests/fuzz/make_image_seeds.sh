#!/usr/bin/env bash
# tests/fuzz/make_image_seeds.sh TARGET OUTDIR -- seeds for the disk-image
# fuzz targets, made by the file-system tools (nothing mounted): a small
# FAT12 image with a picture and a deleted file, a 128 KiB ext2 image
# (mkfs.ext4 without a journal) with a picture, a 2 MiB NTFS image (mkntfs's
# least) with a picture and an alternate data stream, and an E01 of the FAT
# image. A missing tool skips the target's seeds, except under CI=true.
set -u
target=$1 out=$2
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
need() { for t; do command -v "$t" >/dev/null || { echo "make_image_seeds: $t missing" >&2; [ "${CI:-}" = true ] && exit 1; exit 0; }; done; }
need convert
convert -size 24x16 gradient:red-blue "$tmp/a.jpg" && echo "a note" > "$tmp/b.txt" || exit 1
fat() {
  need mkfs.vfat mcopy mdel
  truncate -s 64K "$1" && mkfs.vfat -n SEED "$1" >/dev/null &&
    MTOOLS_SKIP_CHECK=1 mcopy -i "$1" "$tmp/a.jpg" ::/a.jpg &&
    MTOOLS_SKIP_CHECK=1 mcopy -i "$1" "$tmp/b.txt" ::/b.txt &&
    MTOOLS_SKIP_CHECK=1 mdel -i "$1" ::/b.txt
}
case $target in
  image_fat) fat "$out/fat12.img" ;;
  image_ext4)
    need mkfs.ext4
    mkdir -p "$tmp/d/p" && cp "$tmp/a.jpg" "$tmp/d/p/a.jpg" &&
      truncate -s 128K "$out/ext.img" && mkfs.ext4 -q -F -b 1024 -N 16 -d "$tmp/d" "$out/ext.img" 2>/dev/null ;;
  image_ntfs)
    need mkntfs ntfscp
    truncate -s 2M "$out/ntfs.img" && mkntfs -q -F -Q "$out/ntfs.img" >/dev/null 2>&1 &&
      ntfscp -q "$out/ntfs.img" "$tmp/a.jpg" a.jpg && ntfscp -q -N s "$out/ntfs.img" "$tmp/b.txt" a.jpg ;;
  image_e01)
    need ewfacquire
    fat "$tmp/fat.img" && ewfacquire -u -q -t "$tmp/seed" -C C-1 -e E -c best "$tmp/fat.img" >/dev/null 2>&1 &&
      cp "$tmp/seed.E01" "$out/seed.E01" ;;
  *) echo "make_image_seeds: unknown target $target" >&2; exit 1 ;;
esac
