#!/usr/bin/env bash
# Install the Debian/Ubuntu packages imgtriage needs to build and test.
# Idempotent: does nothing when everything is present. Needs root (or sudo).
set -euo pipefail
PKGS=(build-essential cmake pkg-config libjpeg-dev libpng-dev libwebp-dev libgif-dev liblmdb-dev
      libssl-dev libsqlite3-dev libyajl-dev libomp-dev clang libtiff-dev libtiff-tools
      libclang-rt-dev python3 libjpeg-turbo-progs imagemagick webp gifsicle
      libxml2-utils chromium
      libheif-dev libheif1 libde265-0 libde265-dev libaom3 libdav1d6 libheif-examples libexif-dev libolecf-dev
      libarchive-dev libarchive-tools zip unzip p7zip-full libqpdf-dev qpdf poppler-utils
      dosfstools mtools
      libavformat-dev libavcodec-dev libswscale-dev libavutil-dev ffmpeg
      sqlite3 slurm-wlm munge
      libewf-dev ewf-tools libtsk-dev sleuthkit e2fsprogs ntfs-3g fdisk
      xorriso genisoimage exfatprogs apfsprogs)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
