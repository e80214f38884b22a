#!/usr/bin/env bash
# Build a real-photo corpus for the benches from Debian wallpaper packages,
# downloaded (not installed) and unpacked in a temporary directory.
#   usage: bash scripts/fetch-photos.sh [DIR]      (default: .corpus/photos)
# DIR gets the JPEG/PNG photos of 2-24 megapixels (named PACKAGE--FILE) and
# DIR/progressive/ a progressive copy of every JPEG (jpegtran -progressive,
# lossless: same coefficients). gnome-backgrounds ships WebP only: those are
# re-encoded as baseline JPEG (convert -quality 92) so they count as JPEGs. Needs apt-get, dpkg-deb and identify (ImageMagick,
# for the size filter); installs libjpeg-turbo-progs for jpegtran if absent.
set -euo pipefail
DIR=${1:-.corpus/photos}
PKGS=(gnome-backgrounds desktop-base mate-backgrounds)
mkdir -p "$DIR/progressive"
DIR=$(cd "$DIR" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
if ! apt-get download "${PKGS[@]}" >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  apt-get download "${PKGS[@]}" >/dev/null
fi
for deb in ./*.deb; do
  pkg=$(dpkg-deb -f "$deb" Package)
  mkdir -p "x/$pkg"
  dpkg-deb -x "$deb" "x/$pkg"
done
if ! command -v jpegtran >/dev/null; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    libjpeg-turbo-progs >/dev/null
fi
n=0
while IFS= read -r -d '' f; do
  pkg=${f#x/}; pkg=${pkg%%/*}
  # width x height from identify (ImageMagick); skip what it cannot read
  wh=$(identify -format '%w %h' "$f[0]" 2>/dev/null) || continue
  set -- $wh
  px=$(( $1 * $2 ))
  [ "$px" -ge 2000000 ] && [ "$px" -le 24000000 ] || continue
  name="$pkg--$(basename "$f")"
  # the same picture can ship in several packages or names: keep one
  sum=$(sha256sum "$f" | cut -c1-16)
  [ -e "$tmp/seen.$sum" ] && continue
  touch "$tmp/seen.$sum"
  case "$name" in
    *.webp|*.WEBP)
      name="${name%.*}.jpg"
      convert "$f[0]" -quality 92 "$DIR/$name" ;;
    *) cp "$f" "$DIR/$name" ;;
  esac
  case "$name" in
    *.jpg|*.jpeg|*.JPG|*.JPEG)
      jpegtran -copy none -progressive "$DIR/$name" > "$DIR/progressive/$name" ;;
  esac
  n=$((n + 1))
done < <(find x -type f \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' -o -iname '*.webp' \) -print0 | sort -z)
echo "fetch-photos: $n photos in $DIR ($(ls "$DIR/progressive" | wc -l) progressive copies)"
