#!/usr/bin/env bash
# Make the per-format bench set for bench_hash: N photo-like 1024x768
# pictures (ImageMagick plasma, fixed seeds) in each of WebP (cwebp -q 80),
# GIF, TIFF (LZW), BMP (24-bit), HEIC and AVIF (heif-enc -q 80).
#   bench/make-format-set.sh OUTDIR [N]      then: build/bench_hash OUTDIR
set -euo pipefail
out=$1 n=${2:-12}
mkdir -p "$out"
for i in $(seq 1 "$n"); do
  p="$out/src$i.png"
  convert -size 1024x768 -seed "$i" plasma: -blur 0x1 -depth 8 "$p"
  cwebp -quiet -q 80 "$p" -o "$out/w$i.webp"
  convert "$p" "$out/g$i.gif"
  convert "$p" -compress lzw "$out/t$i.tif"
  convert "$p" -type TrueColor "BMP3:$out/b$i.bmp"
  heif-enc -q 80 -o "$out/h$i.heic" "$p" >/dev/null
  heif-enc -A -q 80 -o "$out/a$i.avif" "$p" >/dev/null
  rm -f "$p"
done
