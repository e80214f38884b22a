#!/usr/bin/env bash
# Regenerate the HEIF/AVIF test images and the reference hasher's CSV.
# Tools: ImageMagick 6.9.11 convert, heif-enc (libheif 1.15.1, x265 / aom),
# python3, and the reference hasher built from facebook/ThreatExchange pdq/cpp
# against Debian's ImageMagick (REF=path/to/pdq-photo-hasher).
#
# heif-enc 1.15 cannot write grid (tiled) images, irot/imir transforms or
# 10-bit AVIF (aom 3.6 asserts): grid.py and transform.py add grids and
# irot/imir by hand (box surgery on heif-enc's output); no 10-bit AVIF.
set -euo pipefail
cd "$(dirname "$0")"
REF=${REF:-/work/notes/ref/pdq/cpp/pdq-photo-hasher}
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
convert -size 640x480 -seed 7 plasma: -depth 8 "$t/p8.png"
convert -size 640x480 -seed 7 plasma: "$t/p16.png"          # 16-bit: heif-enc makes 10-bit
convert -size 333x251 -seed 11 plasma:red-blue -depth 8 "$t/odd.png"
convert -size 300x300 gradient:black-white -depth 8 -colorspace Gray "$t/g.png"
convert -size 480x360 -seed 5 plasma: -depth 8 \( -size 480x360 radial-gradient: \) \
        -alpha off -compose copy_opacity -composite "$t/a.png"
convert -size 320x200 -seed 9 plasma: -depth 8 "$t/o.png"
convert -size 120x90 -seed 13 plasma: -depth 8 "$t/small.png"
heif-enc -q 50 "$t/p8.png" -o p8.heic                        # > 512: the 512x512 resize
heif-enc -A -q 50 "$t/p8.png" -o p8.avif
heif-enc -q 50 "$t/p16.png" -o p10.heic                      # 10-bit HEVC
heif-enc -q 70 "$t/odd.png" -o odd.heic                      # odd sides (chroma rounding)
heif-enc -A -q 90 "$t/odd.png" -o odd.avif
heif-enc -L -p chroma=444 --matrix_coefficients=0 "$t/small.png" -o lossless.heic
heif-enc -A -L -p chroma=444 --matrix_coefficients=0 "$t/small.png" -o lossless.avif
heif-enc -q 90 "$t/g.png" -o grey.heic                       # monochrome: PGM path
heif-enc -q 50 "$t/a.png" -o alpha.heic                      # alpha auxiliary image
heif-enc -A -q 50 "$t/a.png" -o alpha.avif
heif-enc -q 50 -t 96 "$t/p8.png" -o thumb.heic              # with a thumbnail item
heif-enc -q 90 "$t/o.png" -o orient.heic
python3 transform.py orient.heic rot90.heic --irot 1
python3 transform.py orient.heic rot270-mir.heic --irot 3 --imir 1
python3 transform.py orient.heic mir.heic --imir 0
python3 transform.py p8.heic p8-rot90.heic --irot 1
# Grids (heif-enc writes the tiles as separate images; grid.py joins them as
# iPhones do: hidden tiles, a 'grid' primary item).
convert -size 640x480 -seed 21 plasma: -depth 8 "$t/big.png"
convert "$t/big.png" -crop 320x240 +repage -depth 8 "$t/tile_%d.png"
heif-enc -q 30 "$t"/tile_{0,1,2,3}.png -o "$t/tiles.heic"
python3 grid.py "$t/tiles.heic" grid.heic 2 2 640 480
python3 grid.py "$t/tiles.heic" grid-crop.heic 2 2 601 455     # output cropped
python3 transform.py grid.heic grid-rot90.heic --irot 1
convert -size 400x300 -seed 23 plasma: -depth 8 "$t/mid.png"
convert "$t/mid.png" -crop 200x150 +repage -depth 8 "$t/mtile_%d.png"
heif-enc -q 50 "$t"/mtile_{0,1,2,3}.png -o "$t/mtiles.heic"
python3 grid.py "$t/mtiles.heic" grid-small.heic 2 2 390 290   # <= 512: luma.csv
# Bombs (tests/test_bombs.c): four 64x64 tiles under grids that declare
# 60000x60000 and 10000x10000 while their 'ispe' says 128x128.
convert -size 128x128 -seed 25 plasma: -depth 8 "$t/b.png"
convert "$t/b.png" -crop 64x64 +repage -depth 8 "$t/btile_%d.png"
heif-enc -q 30 "$t"/btile_{0,1,2,3}.png -o "$t/btiles.heic"
python3 grid.py "$t/btiles.heic" bomb-grid-60000.heic 2 2 60000 60000 128 128
python3 grid.py "$t/btiles.heic" bomb-grid-10000.heic 2 2 10000 10000 128 128
# A HEIC whose thumbnail ('thmb' item) is another picture than the image,
# as after an edit that kept the old thumbnail (thumbnail.py), and that
# thumbnail encoded alone (the same bitstream: heif-enc is deterministic).
convert -size 320x240 -seed 41 plasma: -depth 8 "$t/m.png"
convert -size 320x240 -seed 43 plasma: -depth 8 -resize 160x120 "$t/tb.png"
heif-enc -q 60 "$t/m.png" "$t/tb.png" -o "$t/two.heic"
python3 thumbnail.py "$t/two.heic" thumb-differs.heic
heif-enc -q 60 "$t/tb.png" -o thumb-alone.heic
files=(thumb-differs.heic thumb-alone.heic grid.heic grid-crop.heic grid-rot90.heic grid-small.heic p8.heic p8.avif odd.heic odd.avif lossless.heic lossless.avif grey.heic alpha.heic
       alpha.avif thumb.heic orient.heic rot90.heic rot270-mir.heic mir.heic p8-rot90.heic)
( cd . && "$REF" "${files[@]}" ) > ref.csv
# 10-bit: the reference writes a maxval-1023 PNM whose low bytes CImg keeps
# (noise); imgtriage hashes the 8-bit samples instead, what the reference
# gives for `convert p10.heic -depth 8` (heif.c's file comment).
convert p10.heic -depth 8 "$t/p10.ppm"
"$REF" "$t/p10.ppm" | sed 's#,[^,]*$#,p10.heic#' > ref-depth8.csv
"$REF" p10.heic > ref-10bit-as-shipped.csv
# The reference's float luma planes (images of at most 512x512): a check
# finer than the hash (luma.py: ImageMagick's PNM, the reference's expression).
python3 luma.py grid-small.heic odd.heic odd.avif grey.heic rot270-mir.heic alpha.avif lossless.heic > luma.csv
