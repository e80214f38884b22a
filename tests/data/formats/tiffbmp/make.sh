#!/usr/bin/env bash
# tests/data/formats/tiffbmp/make.sh -- the TIFF and BMP test images, made
# with Debian's ImageMagick 6.9.11 (convert), libtiff's tiffcp and, for the
# BMP variants convert cannot write (top-down, RLE4, OS/2), bmpvariant.py
# below. Then the reference hasher's CSV:
#   REF=/path/to/pdq-photo-hasher ./make.sh
# writes expected.csv (hash,quality,name) from it. Fixed seeds: the same
# commands give the same bytes with the same tool versions.
set -euo pipefail
cd "$(dirname "$0")"
rm -f ./*.tif ./*.bmp
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
# sources
convert -size 130x97 -seed 7 plasma: -depth 8 "$t/p.png"
convert -size 530x520 radial-gradient:white-navy -fill gold -draw 'circle 200,200 260,330' \
  -fill firebrick -draw 'rectangle 330,60 560,250' -fill white \
  -draw 'polygon 40,500 300,380 420,520' -fill teal -draw 'ellipse 470,400 90,60 0,360' \
  -depth 8 "$t/big.png"
convert -size 121x99 -seed 11 plasma: -colorspace gray -depth 8 "$t/g.png"
convert -size 111x83 -seed 5 plasma: -depth 8 "$t/p2.png"

# ---- TIFF ----
convert "$t/p.png" -compress none t_rgb8_none.tif
convert "$t/p.png" -compress lzw t_rgb8_lzw.tif
convert "$t/p.png" -compress zip t_rgb8_deflate.tif
convert "$t/p.png" -compress rle t_rgb8_packbits.tif
convert "$t/p.png" -compress jpeg -quality 90 t_rgb8_jpeg.tif
tiffcp -c jpeg:90 -r 16 t_rgb8_none.tif t_ycbcr_jpeg.tif
convert "$t/big.png" -compress lzw t_big_strip_lzw.tif
tiffcp -c zip -t -w 64 -l 64 t_big_strip_lzw.tif t_big_tile_deflate.tif
tiffcp -c none -t -w 16 -l 32 t_rgb8_none.tif t_tile_none.tif
tiffcp -c lzw -p separate t_rgb8_none.tif t_planar_lzw.tif
tiffcp -c lzw -p separate -t -w 32 -l 32 t_rgb8_none.tif t_planar_tile.tif
convert "$t/p2.png" "$t/p.png" -compress lzw t_multipage.tif
convert "$t/p.png" -depth 16 -compress zip t_rgb16_deflate.tif
convert "$t/g.png" -depth 16 -compress zip t_grey16.tif
convert "$t/p.png" -colorspace cmyk -compress lzw t_cmyk_lzw.tif
convert "$t/p.png" -colorspace cmyk -compress none t_cmyk_none.tif
# a true 16-bit source (plasma at depth 16): the reference reads the low
# byte of each sample (see engine/decode/tiff.c); not in expected.csv's
# exact set, listed in mismatch.txt
convert -size 97x73 -seed 9 plasma: -depth 16 -compress zip t_rgb16_true.tif
convert "$t/p.png" -colors 200 -type palette -compress lzw t_palette8.tif
convert "$t/p.png" -colors 16 -type palette -depth 4 -compress none t_palette4.tif
convert "$t/g.png" -compress lzw t_grey8_lzw.tif
convert "$t/g.png" -depth 4 -compress none t_grey4.tif
convert "$t/g.png" -define tiff:photometric=min-is-white -compress zip t_grey8_miniswhite.tif
convert "$t/g.png" -monochrome -compress group4 t_bilevel_g4.tif
convert "$t/g.png" -monochrome -compress none t_bilevel_none.tif
convert "$t/p.png" \( "$t/g.png" -resize 130x97\! \) -alpha off -compose copy-opacity -composite \
  -compress lzw t_rgba_lzw.tif
convert "$t/g.png" \( "$t/p.png" -colorspace gray -resize 121x99\! \) -alpha off \
  -compose copy-opacity -composite -compress zip t_greya_deflate.tif
convert t_rgba_lzw.tif -define tiff:alpha=associated -compress lzw t_rgba_assoc.tif
convert "$t/p2.png" -depth 8 rgb:"$t/p2.rgb"
python3 bmpvariant.py tiffgrey3 111 83 "$t/p2.rgb" t_grey_spp3.tif
tiffcp -c lzw -r 16 t_rgb8_none.tif "$t/ms.tif"
python3 bmpvariant.py tiffgarble "$t/ms.tif" t_lzw_badstrip.tif   # partial: IM keeps the rows before
convert t_greya_deflate.tif -define tiff:alpha=associated -compress zip t_greya_assoc.tif

# ---- BMP ----
convert "$t/p.png" -define bmp:format=bmp3 b_rgb24_v3.bmp
convert "$t/p.png" -define bmp:format=bmp4 b_rgb24_v4.bmp
convert "$t/p.png" b_rgb24_v5.bmp
convert "$t/p.png" -alpha set -define bmp:format=bmp3 -define bmp3:alpha=true b_rgb32_v3.bmp
convert "$t/p.png" \( "$t/g.png" -resize 130x97\! \) -alpha off -compose copy-opacity -composite \
  b_rgba32_v5.bmp
convert "$t/p.png" -define bmp:subtype=RGB565 b_rgb565.bmp
convert "$t/p.png" -define bmp:subtype=RGB555 b_rgb555.bmp
convert "$t/p.png" -colors 200 -type palette -define bmp:format=bmp3 b_pal8.bmp
convert "$t/p.png" -colors 16 -type palette -define bmp:format=bmp3 b_pal4.bmp
convert "$t/g.png" -monochrome -define bmp:format=bmp3 b_mono1.bmp
convert "$t/g.png" -type grayscale -define bmp:format=bmp3 b_grey8.bmp
convert "$t/p.png" -colors 200 -type palette -compress rle -define bmp:format=bmp3 b_pal8_rle.bmp
convert "$t/g.png" -type palette -compress rle -define bmp:format=bmp3 b_grey8_rle.bmp
convert "$t/big.png" -colors 64 -type palette -compress rle -define bmp:format=bmp3 b_big_rle8.bmp
convert "$t/big.png" -colors 16 -type palette -define bmp:format=bmp3 b_big_pal4.bmp
python3 bmpvariant.py topdown b_rgb24_v3.bmp b_rgb24_topdown.bmp
python3 bmpvariant.py topdown b_pal8.bmp b_pal8_topdown.bmp
python3 bmpvariant.py rle4 b_pal4.bmp b_pal4_rle4.bmp
python3 bmpvariant.py rle4 b_big_pal4.bmp b_big_rle4.bmp
python3 bmpvariant.py bitfields24 b_rgb24_v3.bmp b_bitfields24.bmp
python3 bmpvariant.py redim 1300 970 b_pal8_rle.bmp b_rle8_wrapped.bmp
rm -f b_big_pal4.bmp

if [ -n "${REF:-}" ]; then
  "$REF" ./*.tif ./*.bmp | sed 's#,\./#,#' > expected.csv
  # Pages after the first (sub-items): the reference reads only a file's
  # first page, so each page is split out with tiffcp and hashed alone;
  # pages.csv names it FILE,PAGE (test_decode_tiffbmp).
  p=$(mktemp -d)
  tiffcp t_multipage.tif,1 "$p/page.tif"
  "$REF" "$p/page.tif" | sed 's#,[^,]*/page\.tif$#,t_multipage.tif,1#' > pages.csv
  rm -rf "$p"
fi
