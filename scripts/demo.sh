#!/usr/bin/env bash
# Interim demo: install, build, hash the PDQ reference images in ../shared.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)"
dir=../shared/vectors/pdq/images
if [ -d "$dir" ]; then
  build/imgtriage hash --format csv "$dir" || true
else
  echo "demo: $dir not found; build done, try: build/imgtriage hash PATH" >&2
fi
