#!/usr/bin/env bash
# tests/data/video/make.sh OUT: the test videos, made with ffmpeg from the
# public PDQ vector images (../shared/vectors/pdq/images) and ImageMagick
# plasma images (fixed seeds). Slideshows of 6 pictures, 2 s each, 10 fps,
# 256x192, one encoder thread. Its output is committed in videos/ (made with
# Debian 12's ffmpeg 5.1, x264, x265, libvpx): `bash make.sh videos`.
# ref/NAME.txt is the reference's vpdq-hash-video on videos/NAME.* (ref/README).
set -euo pipefail
OUT=$1
SHARED=${2:-$(cd "$(dirname "$0")/../../../.." && pwd)/shared}
IMG=$SHARED/vectors/pdq/images
mkdir -p "$OUT"
cd "$OUT"
FF="ffmpeg -hide_banner -loglevel error -nostdin -y"
# slideshow OUT CODEC_ARGS IMAGE... : 2 s per picture at 10 fps, 256x192
slideshow() {
  local out=$1 codec=$2; shift 2
  local ins=() filt="" cat="" i=0
  for f in "$@"; do
    ins+=(-loop 1 -framerate 10 -t 2 -i "$f")
    filt+="[$i:v]scale=256:192,setsar=1,format=yuv420p[v$i];"
    cat+="[v$i]"
    i=$((i + 1))
  done
  # shellcheck disable=SC2086
  $FF "${ins[@]}" -filter_complex "${filt}${cat}concat=n=$i:v=1:a=0,fps=10[o]" -map "[o]" \
      $codec -threads 1 "$out"
}
X264="-c:v libx264 -preset veryfast -g 20 -bf 2 -pix_fmt yuv420p"
L=$IMG/reg-test-input/labelme-subset
convert -size 256x192 -seed 31 plasma: -blur 0x2 plasma31.png
slideshow known1.mp4 "$X264" "$IMG/bridge-mods/aaa-orig.jpg" "$IMG/reg-test-input/pen-and-coaster.png" \
  plasma31.png "$L/q0291.jpg" "$L/q0746.jpg" "$L/q1050.jpg"
slideshow known2.mp4 "$X264" "$IMG/misc-images/c.png" "$IMG/reg-test-input/exif-rotn/exif-rotn-1.jpg" \
  "$L/q2821.jpg" "$L/q0003.jpg" "$L/q0004.jpg" "$IMG/misc-images/wee.jpg"
for s in 11 12 13 14 15 16 21 22 23 24 25 26; do
  convert -size 256x192 -seed $s plasma: -blur 0x2 "plasma$s.png"
done
slideshow unrelated1.mp4 "$X264" plasma11.png plasma12.png plasma13.png plasma14.png plasma15.png plasma16.png
slideshow unrelated2.flv "-c:v flv1 -q:v 4" plasma21.png plasma22.png plasma23.png plasma24.png plasma25.png plasma26.png
rm -f plasma*.png
# the copies on the "device"
$FF -i known1.mp4 -c:v libx265 -x265-params log-level=none:pools=1:frame-threads=1 -preset ultrafast copy_hevc.mp4
$FF -i known2.mp4 -c:v libvpx-vp9 -b:v 40k -deadline realtime -cpu-used 8 copy_vp9.webm
$FF -i known1.mp4 -vf scale=384:288 -c:v libx264 -preset veryfast copy_rescaled.mkv
$FF -i known2.mp4 -t 7 -c:v libx264 -preset veryfast copy_trimmed.ts
$FF -i known1.mp4 -vf fps=25 -c:v mpeg4 -q:v 10 copy_fps25.avi
# variable frame rate: a test pattern with frames at irregular times (kept
# timestamps); ref/vfr.pts is ffprobe's list of its frames' presentation
# times (-show_entries frame=best_effort_timestamp_time), the oracle of the
# sampling by timestamp
$FF -f lavfi -i testsrc=size=128x96:rate=30:duration=6 \
    -vf "select='not(mod(n\,4))+gt(t\,3)*not(mod(n\,3))'" -fps_mode vfr \
    -c:v libx264 -preset veryfast -g 10 -bf 2 -threads 1 vfr.mkv  # committed in ../vfr/
