#!/usr/bin/env bash
# bench/bench_image.sh -- disk images: the engine's read rate of a raw and an
# E01 image against `cat` and `ewfexport` of the same image, and `scan` of
# the image against `scan` of the same files as a folder (goal: at least
# 0.9x), with 1 and 2 threads; and the carving rate in MB/s of unallocated
# space (a file system whose free blocks hold CARVE_MB MiB of random bytes
# and the photos, deleted).
#   usage: bash bench/bench_image.sh [BUILD_DIR] [PHOTOS_DIR]
# PHOTOS_DIR: JPEG photos to put in the image (default .corpus/photos when
# present, else N generated ones: N=${N:-60} 1024x768 plasma pictures).
# The image is an ext4 file system (mkfs.ext4 -d) of those files plus 10%
# room; the E01 is ewfacquire's, fast compression. Every figure is the best of
# REPS runs (default 3) after a warm-up: files in the page cache, so this
# measures the CPU side (decompression, TSK, hashing), not the disk.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}
P=${2:-.corpus/photos}
REPS=${REPS:-3}
CARVE_MB=${CARVE_MB:-256}   # random bytes in the carving image's free space
CLI=$B/imgtriage
[ -x "$CLI" ] && [ -x "$B/bench_image" ] || { echo "bench_image: build first" >&2; exit 2; }
for t in mkfs.ext4 ewfacquire ewfexport convert; do
  command -v $t >/dev/null || { echo "bench_image: $t missing (scripts/setup.sh)" >&2; exit 2; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/files"
if [ -d "$P" ]; then
  cp "$P"/*.jpg "$tmp/files/"
else
  for i in $(seq "${N:-60}"); do
    convert -size 1024x768 -seed "$i" plasma: -quality 90 "$tmp/files/p$i.jpg"
  done
fi
mb=$(du -sm "$tmp/files" | cut -f1)
truncate -s $((mb * 11 / 10 + 16))M "$tmp/disk.raw"
mkfs.ext4 -q -F -d "$tmp/files" "$tmp/disk.raw"
ewfacquire -u -q -t "$tmp/disk" -c fast "$tmp/disk.raw" >/dev/null 2>&1
size=$(stat -c %s "$tmp/disk.raw")
echo "image: ext4, $((size / 1000000)) MB, $(ls "$tmp/files" | wc -l) photos ($mb MiB); E01 $(($(stat -c %s "$tmp/disk.E01") / 1000000)) MB (fast compression)"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"

best() { # best wall time of REPS runs of "$@" after a warm-up
  "$@" >/dev/null 2>&1 || true
  local b=999999 t0 t1
  for _ in $(seq "$REPS"); do
    t0=$(date +%s.%N); "$@" >/dev/null 2>&1 || true; t1=$(date +%s.%N)
    b=$(awk -v a="$t0" -v z="$t1" -v b="$b" 'BEGIN { t = z - a; print (t < b ? t : b) }')
  done
  echo "$b"
}
mbs() { awk -v s="$size" -v t="$1" 'BEGIN { printf "%.1f", s / 1e6 / t }'; }

echo "== read MB/s (image bytes per second)"
cat_t=$(best cat "$tmp/disk.raw")
ewfx_t=$(best ewfexport -u -q -f raw -t - "$tmp/disk.E01")
printf '  %-34s %8s\n' "cat disk.raw" "$(mbs "$cat_t")"
printf '  %-34s %8s\n' "engine, raw" "$("$B/bench_image" "$tmp/disk.raw" "$REPS")"
printf '  %-34s %8s\n' "ewfexport -t - disk.E01" "$(mbs "$ewfx_t")"
printf '  %-34s %8s\n' "engine, E01" "$("$B/bench_image" "$tmp/disk.E01" "$REPS")"

echo "== scan (--no-index): the image against the same files as a folder"
printf '  %-10s %10s %10s %10s %10s %8s\n' threads folder_s raw_s e01_s "" "raw/folder"
for n in 1 2; do
  f=$(best "$CLI" scan --no-index --quiet -t "$n" --out /dev/null "$tmp/files")
  r=$(best "$CLI" scan --no-index --quiet -t "$n" --out /dev/null "$tmp/disk.raw")
  e=$(best "$CLI" scan --no-index --quiet -t "$n" --out /dev/null "$tmp/disk.E01")
  printf '  %-10s %10.3f %10.3f %10.3f %10s %8s\n' "$n" "$f" "$r" "$e" "" \
    "$(awk -v f="$f" -v r="$r" 'BEGIN { printf "%.2fx", f / r }')"
done
echo "  (raw/folder: the folder's time over the image's; at least 0.9x is the goal; e01/folder likewise)"

# Carving: an ext4 file system whose free blocks hold a deleted file of
# random bytes (so the carver's signature scan meets as many candidate
# bytes as noise gives, not zeros) and the photos, deleted: the scan carves
# every free block and hashes the photos it carves (and the 5 MiB of the
# photos' deleted entries). The rate is the free bytes (dumpe2fs) over the
# whole scan's time: a lower bound on the carver's own rate.
echo "== carving: unallocated space of a file system (random bytes + the photos, deleted)"
mkdir -p "$tmp/cf"
head -c $((CARVE_MB * 1048576)) /dev/urandom > "$tmp/cf/noise.bin"
cp "$tmp/files"/*.jpg "$tmp/cf/"
truncate -s $((CARVE_MB + mb + 32))M "$tmp/carve.raw"
mkfs.ext4 -q -F -d "$tmp/cf" "$tmp/carve.raw"
# noise.bin's inode cleared after its removal: no deleted file names it, so
# the scan does not also hash it (only the carver reads those blocks)
ino=$(debugfs -R "ls -p /" "$tmp/carve.raw" 2>/dev/null | awk -F/ '$6 == "noise.bin" { print $2 }')
for f in "$tmp/cf"/*; do debugfs -w -R "rm /${f##*/}" "$tmp/carve.raw" >/dev/null 2>&1; done
debugfs -w -R "clri <$ino>" "$tmp/carve.raw" >/dev/null 2>&1
free=$(dumpe2fs -h "$tmp/carve.raw" 2>/dev/null | awk -F: '/^Free blocks/ { f = $2 } /^Block size/ { b = $2 } END { print f * b }')
"$CLI" scan --no-index --quiet --out "$tmp/carve.jsonl" "$tmp/carve.raw" 2>/dev/null || true
carved=$(grep -c '"alloc":"carved"' "$tmp/carve.jsonl" || true)
cat_t=$(best cat "$tmp/carve.raw")
c1=$(best "$CLI" scan --no-index --quiet -t 1 --out /dev/null "$tmp/carve.raw")
c2=$(best "$CLI" scan --no-index --quiet -t 2 --out /dev/null "$tmp/carve.raw")
echo "  free space $((free / 1000000)) MB; $carved items carved (the $(ls "$tmp/files" | wc -l) photos and what noise passes for one)"
awk -v f="$free" -v a="$c1" -v b="$c2" -v c="$cat_t" -v s="$(stat -c %s "$tmp/carve.raw")" 'BEGIN {
  printf "  %-34s %8.1f\n", "carving MB/s of free space, 1 thread", f / 1e6 / a
  printf "  %-34s %8.1f\n", "carving MB/s of free space, 2 threads", f / 1e6 / b
  printf "  %-34s %8.1f\n", "cat carve.raw MB/s", s / 1e6 / c }'
