#!/usr/bin/env bash
# Writes the committed bmp/ and tiff/ fuzz seeds (tiny images made with
# convert, tiffcp and tests/data/formats/tiffbmp/bmpvariant.py).
set -euo pipefail
S=$(cd "$(dirname "$0")" && pwd)
V=$S/../../data/formats/tiffbmp/bmpvariant.py
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
convert -size 29x21 -seed 3 plasma: -depth 8 "$t/s.png"
convert -size 29x21 -seed 4 plasma: -colorspace gray -depth 8 "$t/sg.png"
mkdir -p "$S/bmp" "$S/tiff"
convert "$t/s.png" -define bmp:format=bmp3 "$S/bmp/rgb24.bmp"
convert "$t/s.png" -alpha set "$S/bmp/rgba32_v5.bmp"
convert "$t/s.png" -define bmp:subtype=RGB565 "$S/bmp/rgb565.bmp"
convert "$t/s.png" -colors 16 -type palette -define bmp:format=bmp3 "$S/bmp/pal4.bmp"
convert "$t/s.png" -colors 50 -type palette -compress rle -define bmp:format=bmp3 "$S/bmp/rle8.bmp"
convert "$t/sg.png" -monochrome -define bmp:format=bmp3 "$S/bmp/mono1.bmp"
python3 "$V" rle4 "$S/bmp/pal4.bmp" "$S/bmp/rle4.bmp"
python3 "$V" topdown "$S/bmp/rgb24.bmp" "$S/bmp/topdown.bmp"
convert "$t/s.png" -compress lzw "$S/tiff/rgb_lzw.tif"
convert "$t/s.png" -compress jpeg "$S/tiff/rgb_jpeg.tif"
tiffcp -c jpeg "$S/tiff/rgb_lzw.tif" "$S/tiff/ycbcr_jpeg.tif"
tiffcp -c zip -t -w 16 -l 16 "$S/tiff/rgb_lzw.tif" "$S/tiff/tile_zip.tif"
tiffcp -c packbits -p separate "$S/tiff/rgb_lzw.tif" "$S/tiff/planar_packbits.tif"
convert "$t/s.png" -colorspace cmyk "$S/tiff/cmyk.tif"
convert "$t/s.png" -colors 16 -type palette -depth 4 "$S/tiff/pal4.tif"
convert "$t/sg.png" -monochrome -compress group4 "$S/tiff/g4.tif"
convert "$t/sg.png" -depth 16 "$S/tiff/grey16.tif"
convert "$t/sg.png" "$t/s.png" "$S/tiff/two_pages.tif"
