#!/usr/bin/env bash
# Regenerate the embedded-picture test JPEGs and the reference hasher's CSV.
# Tools: ImageMagick 6.9.11 convert, python3 (jpegembed.py writes the EXIF
# APP1 and MPF APP2 segments itself), the reference hasher (REF=...).
#   original.jpg        a 640x480 photo-like picture
#   thumb.jpg           its 160x120 thumbnail (what a camera embeds)
#   unedited.jpg        original.jpg with thumb.jpg as its EXIF thumbnail
#   cropped.jpg         original.jpg cropped to its right 45%, still carrying the
#                       ORIGINAL's EXIF thumbnail (an edit that kept the metadata)
#   mpf.jpg             cropped.jpg's picture with an MPF second image: the
#                       original at 320x240 (a camera's large preview)
set -euo pipefail
cd "$(dirname "$0")"
REF=${REF:-/work/notes/ref/pdq/cpp/pdq-photo-hasher}
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
convert -size 640x480 -seed 31 plasma: -blur 0x2 -depth 8 -quality 85 original.jpg
convert original.jpg -resize 160x120 -quality 80 thumb.jpg
convert original.jpg -resize 320x240 -quality 80 "$t/preview.jpg"
python3 jpegembed.py exif original.jpg thumb.jpg unedited.jpg
convert original.jpg -gravity east -crop 288x480+0+0 +repage -quality 85 "$t/crop.jpg"
python3 jpegembed.py exif "$t/crop.jpg" thumb.jpg cropped.jpg
python3 jpegembed.py mpf "$t/crop.jpg" "$t/preview.jpg" mpf.jpg
cp "$t/preview.jpg" preview.jpg
"$REF" original.jpg thumb.jpg preview.jpg unedited.jpg cropped.jpg mpf.jpg > ref.csv
