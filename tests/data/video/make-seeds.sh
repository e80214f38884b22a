#!/usr/bin/env bash
# tests/data/video/make-seeds.sh OUT: the fuzz seeds of the video target
# (tests/fuzz/seeds/video): 2 s of a 64x48 test pattern at 4 fps in every
# container and a codec each, a few KB apiece.
set -euo pipefail
OUT=$1
mkdir -p "$OUT"
FF="ffmpeg -hide_banner -loglevel error -nostdin -y -f lavfi -i testsrc=size=64x48:rate=4:duration=2"
$FF -c:v libx264 -preset veryfast -g 4 -bf 1 -pix_fmt yuv420p "$OUT/h264.mp4"
$FF -c:v libx265 -x265-params log-level=none:pools=1:frame-threads=1 -preset ultrafast -pix_fmt yuv420p "$OUT/hevc.mov"
$FF -c:v libvpx-vp9 -b:v 20k -deadline realtime "$OUT/vp9.webm"
$FF -c:v libvpx -b:v 20k -deadline realtime "$OUT/vp8.mkv"
$FF -c:v mpeg4 -q:v 10 "$OUT/mpeg4.avi"
$FF -c:v flv1 -q:v 10 "$OUT/flv1.flv"
$FF -c:v mpeg2video -q:v 10 "$OUT/mpeg2.ts"
$FF -c:v wmv2 -q:v 10 "$OUT/wmv2.wmv"
$FF -c:v mjpeg -q:v 10 "$OUT/mjpeg.mov"
