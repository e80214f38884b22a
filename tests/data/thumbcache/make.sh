#!/usr/bin/env bash
# Regenerate the thumbnail-cache test files and the reference hasher's CSV.
# Tools: ImageMagick 6.9.11 convert, python3 (cachegen.py writes the cache
# layouts), the reference hasher (REF=...), which hashes each picture file
# on its own: the expected hash of the cache entry holding it.
#   p1.jpg p2.png p3.bmp p4.jpg   the pictures (p4 is over 4096 bytes: a
#                                 regular OLE2 stream; the others are small)
#   thumbcache_256.db   format 32 (Windows 10/11): p1 (id 0x1111aaaa2222bbbb),
#                       a deleted entry, a damaged entry, p2, p3, p4, free space
#   thumbcache_96.db    format 21 (Windows 7): p3, p1
#   thumbcache_32.db    format 20 (Vista): p2
#   Thumbs.db           OLE2: catalog ids 1 (p1), 2 (p3 as JPEG), 5 (no
#                       stream), 12 (p4, stream "21", a 24-byte header)
#   other.ole           OLE2 with one "WordDocument" stream and no catalog
set -euo pipefail
cd "$(dirname "$0")"
REF=${REF:-/work/notes/ref/pdq/cpp/pdq-photo-hasher}
convert -size 256x192 -seed 7 plasma: -depth 8 -quality 85 p1.jpg
convert -size 200x150 gradient:navy-orange -fill white -draw 'circle 70,75 70,30' \
        -fill black -draw 'rectangle 120,20 180,130' -depth 8 p2.png
convert -size 96x96 -seed 11 plasma: -depth 8 -type TrueColor BMP3:p3.bmp
convert -size 320x240 -seed 23 plasma: -blur 0x1 -depth 8 -quality 92 p4.jpg
convert p3.bmp -resize 64x64 -quality 70 p3.jpg
python3 cachegen.py thumbcache 32 thumbcache_256.db 0x1111aaaa2222bbbb=p1.jpg \
        0x3333cccc4444dddd=p2.png 0x5555eeee6666ffff=p3.bmp 0x77770000888899=p4.jpg
python3 cachegen.py thumbcache 21 thumbcache_96.db 0xa1=p3.bmp 0xa2=p1.jpg
python3 cachegen.py thumbcache 20 thumbcache_32.db 0xb1=p2.png
python3 cachegen.py thumbsdb Thumbs.db 1=p1.jpg 2=p3.jpg 5=- 12=p4.jpg
python3 cachegen.py ole other.ole   # OLE2, no catalog: not a Thumbs.db
"$REF" p1.jpg p2.png p3.bmp p4.jpg p3.jpg > ref.csv
# Fuzz seeds: small caches of the same pictures.
S=../../fuzz/seeds
python3 cachegen.py thumbcache 32 $S/thumbcache/v32-small.db 0x12=p3.jpg 0x34=p2.png
python3 cachegen.py thumbcache 21 $S/thumbcache/v21.db 0x56=p3.jpg
cp thumbcache_32.db $S/thumbcache/v20.db
python3 cachegen.py thumbsdb $S/thumbsdb/small.db 1=p3.jpg 3=- 21=p3.jpg
