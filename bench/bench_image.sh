#!/usr/bin/env bash
# bench/bench_image.sh -- disk images: the engine's read rate of a raw and an
# E01 image against `cat` and `ewfexport` of the same image, and `scan` of
# the image against `scan` of the same files as a folder (goal: at least
# 0.9x), with 1 and 2 threads.
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
echo "== carving: not in this branch (the carver is merged separately)"
