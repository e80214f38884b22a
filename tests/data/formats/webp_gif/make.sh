#!/usr/bin/env bash
# The WebP and GIF test images of tests/test_decode_webp_gif.c, and their
# expected values. Every picture is generated here (ImageMagick with fixed
# seeds, then cwebp / img2webp / webpmux / gifsicle); expected.csv is the
# reference hasher's output over them: facebook/ThreatExchange pdq/cpp
# pdq-photo-hasher as shipped, reading through CImg and Debian's ImageMagick
# 6.9.11-60 (libwebp 1.2.4, gifsicle 1.93).
#
# Usage: make.sh [REFERENCE_HASHER]   (run in this folder; rewrites everything)
set -euo pipefail
cd "$(dirname "$0")"
ref=${1:-/work/notes/ref/pdq/cpp/pdq-photo-hasher}
IM=/usr/bin/convert
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rm -f ./*.webp ./*.gif expected.csv

# ---- sources (PNG in $tmp) --------------------------------------------------
$IM -size 640x480 -seed 7 plasma: "$tmp/plasma640.png"
$IM -size 320x240 -seed 11 plasma: "$tmp/plasma320.png"
$IM -size 300x200 gradient:navy-orange -fill white -draw "polygon 20,180 150,20 280,180" \
    -fill black -draw "ellipse 150,120 60,30 0,360" -stroke yellow -strokewidth 5 \
    -draw "line 0,0 299,199" "$tmp/text300.png"
# lossless-friendly: flat shapes on a gradient
$IM -size 320x240 gradient:black-white -rotate 90 -resize 320x240\! \
    -fill red -draw "circle 100,100 100,160" -fill blue -draw "rectangle 180,40 300,200" \
    "$tmp/shapes320.png"
# alpha: plasma with a radial alpha ramp and a fully transparent hole
$IM -size 256x192 -seed 13 plasma: \( -size 256x192 radial-gradient:white-black \
    -fill black -draw "circle 190,50 190,80" \) -alpha off -compose CopyOpacity -composite \
    "$tmp/alpha256.png"
$IM -size 200x200 -seed 5 plasma: -colorspace gray "$tmp/grey200.png"
for i in 1 2 3; do
  $IM -size 200x150 -seed $((20 + i)) plasma: "$tmp/frame$i.png"
done

# ---- WebP ---------------------------------------------------------------------
cwebp -quiet -q 80 "$tmp/plasma640.png" -o lossy_640.webp
cwebp -quiet -q 90 "$tmp/text300.png" -o lossy_text.webp
# over 512: compat resizes, fast decodes through libwebp's scaler
$IM -size 1200x900 -seed 17 plasma: -blur 0x2 "$tmp/plasma1200.png"
cwebp -quiet -q 70 "$tmp/plasma1200.png" -o lossy_1200.webp
$IM "$tmp/shapes320.png" -resize 900x400\! "$tmp/shapes900.png"
cwebp -quiet -lossless "$tmp/shapes900.png" -o lossless_900.webp
$IM "$tmp/alpha256.png" -resize 520x700\! "$tmp/alpha520.png"
cwebp -quiet -q 80 "$tmp/alpha520.png" -o alpha_520.webp
cwebp -quiet -q 75 -sharp_yuv "$tmp/plasma320.png" -o lossy_sharpyuv.webp
cwebp -quiet -q 85 "$tmp/grey200.png" -o lossy_grey.webp
cwebp -quiet -lossless "$tmp/shapes320.png" -o lossless.webp
cwebp -quiet -lossless "$tmp/grey200.png" -o lossless_grey.webp
cwebp -quiet -q 85 "$tmp/alpha256.png" -o alpha_lossy.webp
cwebp -quiet -lossless "$tmp/alpha256.png" -o alpha_lossless.webp
cwebp -quiet -lossless -exact "$tmp/alpha256.png" -o alpha_exact.webp
img2webp -loop 0 -lossy -q 80 -d 100 "$tmp/frame1.png" "$tmp/frame2.png" "$tmp/frame3.png" \
    -o anim_lossy.webp 2>/dev/null
$IM "$tmp/shapes320.png" -resize 200x150\! "$tmp/shapes200.png"
img2webp -loop 0 -lossless -d 100 "$tmp/shapes200.png" -lossy -q 70 "$tmp/frame2.png" \
    -o anim_mixed.webp 2>/dev/null
# an animation whose first frame covers only part of the canvas
cwebp -quiet -q 80 "$tmp/text300.png" -o "$tmp/f_small.webp"
cwebp -quiet -q 80 "$tmp/frame2.png" -o "$tmp/f_full.webp"
webpmux -frame "$tmp/f_small.webp" +100+10+6+0-b -frame "$tmp/f_full.webp" +100+0+0+0-b \
    -loop 0 -bgcolor 255,255,255,255 -o "$tmp/anim_offset.webp" >/dev/null
# webpmux sets the canvas to the largest frame extent; keep it as made
cp "$tmp/anim_offset.webp" anim_offset.webp

# ---- GIF ----------------------------------------------------------------------
$IM "$tmp/shapes320.png" -resize 640x480\! -colors 64 static_640.gif
$IM "$tmp/text300.png" static_text.gif
$IM "$tmp/plasma320.png" -interlace GIF interlaced.gif
$IM "$tmp/grey200.png" grey.gif
$IM "$tmp/plasma320.png" +dither -colors 16 static_16.gif
# transparency: the transparent index's palette colour is not white or black
$IM "$tmp/alpha256.png" -channel A -threshold 50% +channel static_transparent.gif
gifsicle --no-warnings -I static_transparent.gif >/dev/null
$IM "$tmp/text300.png" -fill '#20c040' -draw "rectangle 0,0 80,60" -transparent '#20c040' \
    transparent_green.gif
# animations
$IM -delay 10 "$tmp/frame1.png" "$tmp/frame2.png" "$tmp/frame3.png" -loop 0 anim.gif
gifsicle --no-warnings -O2 anim.gif -o anim_opt.gif
gifsicle --no-warnings --colors 64 --interlace anim.gif -o anim_interlaced.gif
# first frame smaller than the logical screen, at an offset
$IM "$tmp/text300.png" "$tmp/f_small.gif"
$IM "$tmp/frame2.png" "$tmp/f_full.gif"
gifsicle --no-warnings --logical-screen 320x240 --position 10,6 "$tmp/f_small.gif" \
    --position 0,0 "$tmp/f_full.gif" -o anim_offset.gif
# local colour tables on every frame
$IM "$tmp/frame1.png" "$tmp/lct0.gif"
$IM "$tmp/frame3.png" "$tmp/lct1.gif"
gifsicle --no-warnings "$tmp/lct0.gif" "$tmp/lct1.gif" -o anim_local.gif
# a transparent first frame over a bigger screen: what is not covered
$IM -size 120x90 -seed 3 plasma: -fill "#ff00ff" -draw "circle 60,45 60,70" \
    -transparent '#ff00ff' "$tmp/t_small.gif"
gifsicle --no-warnings --logical-screen 260x200 --position 30,20 "$tmp/t_small.gif" \
    --position 0,0 "$tmp/f_full.gif" -o anim_transparent.gif

# a transparent index whose palette colour is not black
gifsicle --no-warnings -t 3 static_16.gif -o transparent_index3.gif
# two colours (ImageMagick writes a PBM for it)
$IM -size 64x48 xc:black -fill white -draw "rectangle 10,8 40,30" -colors 2 bw.gif
# a grey first frame, coloured later ones: the volume has 3 channels
$IM -delay 10 "$tmp/grey200.png" -colorspace gray -resize 200x150\! "$tmp/g0.gif"
gifsicle --no-warnings "$tmp/g0.gif" "$tmp/lct1.gif" -o anim_grey_first.gif
# an animation whose frames have alpha
$IM "$tmp/alpha256.png" -crop 200x150+0+0 +repage "$tmp/a0.png"
$IM "$tmp/alpha256.png" -crop 200x150+56+42 +repage "$tmp/a1.png"
img2webp -loop 0 -lossy -q 80 "$tmp/a0.png" -lossless "$tmp/a1.png" -o anim_alpha.webp 2>/dev/null

# ImageMagick's colour-table rules, on GIFs written byte by byte: a 4-entry
# global table with pixel indices 0..7 (past the table: entry 0), the same
# with a transparent index equal to the table size (one more entry, black),
# and a file with no colour table at all (every entry black).
python3 - <<'PY'
import struct
def lzw_literals(idx, k):
    # literal codes only, a clear code every 6 codes so the width stays k+1
    clear, out, acc, nbits, width = 1 << k, bytearray(), 0, 0, k + 1
    codes = []
    for i, v in enumerate(idx):
        if i % 6 == 0:
            codes.append(clear)
        codes.append(v)
    codes.append(clear + 1)
    for c in codes:
        acc |= c << nbits
        nbits += width
        while nbits >= 8:
            out.append(acc & 255); acc >>= 8; nbits -= 8
    if nbits:
        out.append(acc & 255)
    data = bytearray([k])
    for i in range(0, len(out), 255):
        blk = out[i:i + 255]
        data += bytes([len(blk)]) + blk
    return bytes(data + b"\0")
def gif(name, w, h, gct, transparent=None, flags_bits=1):
    b = bytearray(b"GIF89a" + struct.pack("<HH", w, h))
    if gct is not None:
        b += bytes([0x80 | flags_bits, 0, 0]) + bytes(gct)
    else:
        b += bytes([flags_bits, 0, 0])
    if transparent is not None:
        b += bytes([0x21, 0xF9, 4, 1, 0, 0, transparent, 0])
    b += b"\x2c" + struct.pack("<HHHH", 0, 0, w, h) + b"\0"
    idx = [((x * 3 + y * 5) // 7) % 8 for y in range(h) for x in range(w)]
    b += lzw_literals(idx, 3) + b";"
    open(name, "wb").write(b)
pal = [200, 30, 40, 20, 180, 60, 90, 90, 90, 250, 240, 20]
gif("index_past_table.gif", 48, 40, pal)
gif("transparent_eq_size.gif", 48, 40, pal, transparent=4)
gif("no_colour_table.gif", 48, 40, None)
PY

# ---- fuzz seeds (tests/fuzz/seeds/webp, gif): tiny files of each kind ----------
seeds=../../../fuzz/seeds
rm -rf "$seeds/webp" "$seeds/gif"
mkdir -p "$seeds/webp" "$seeds/gif"
$IM -size 24x16 -seed 2 plasma: "$tmp/s.png"
$IM -size 24x16 -seed 3 plasma: "$tmp/s2.png"
$IM "$tmp/s.png" \( -size 24x16 gradient:white-black \) -alpha off -compose CopyOpacity \
    -composite "$tmp/sa.png"
cwebp -quiet -q 50 "$tmp/s.png" -o "$seeds/webp/lossy.webp"
cwebp -quiet -lossless "$tmp/s.png" -o "$seeds/webp/lossless.webp"
cwebp -quiet -q 50 "$tmp/sa.png" -o "$seeds/webp/alpha.webp"
img2webp -loop 0 -lossy -q 30 "$tmp/s.png" -lossless "$tmp/sa.png" -o "$seeds/webp/anim.webp" \
    2>/dev/null
$IM "$tmp/s.png" -colors 8 "$seeds/gif/static.gif"
$IM "$tmp/s.png" -colors 4 -interlace GIF "$seeds/gif/interlaced.gif"
$IM "$tmp/sa.png" -channel A -threshold 50% +channel -colors 8 "$seeds/gif/transparent.gif"
$IM "$tmp/s.png" -colors 8 "$tmp/s1.gif"
$IM "$tmp/s2.png" -resize 12x8\! -colors 8 "$tmp/s3.gif"
gifsicle --no-warnings --logical-screen 24x16 "$tmp/s3.gif" --position 0,0 "$tmp/s1.gif" \
    -o "$seeds/gif/anim.gif"

# ---- expected: the reference hasher over every file ----------------------------
ls ./*.webp ./*.gif | sed 's|^\./||' | LC_ALL=C sort > "$tmp/list"
"$ref" $(cat "$tmp/list") > expected.csv
# ... and over every file cut short (at a third, and 3, 2 and 1 bytes short):
# HASH,QUALITY,FILE,BYTES_KEPT; an all-zero hash is a file the reference
# could not read (-k: it goes on to the next).
mkdir "$tmp/cut"
while read -r f; do
  n=$(stat -c %s "$f")
  for k in $((n / 3)) $((n - 3)) $((n - 2)) $((n - 1)); do
    head -c "$k" "$f" > "$tmp/cut/$k-$f"
    "$ref" -k "$tmp/cut/$k-$f" 2>/dev/null | sed "s|,[^,]*\$|,$f,$k|" || true
    rm -f "$tmp/cut/$k-$f"
  done
done < "$tmp/list" > expected_cut.csv
wc -c ./*.webp ./*.gif | tail -1
