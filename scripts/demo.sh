#!/usr/bin/env bash
# The README's first command: a real demo of imgtriage on a fresh machine.
#   bash scripts/demo.sh            (DEMO_DIR=... to choose where data goes)
# 1. installs what is needed (scripts/setup.sh) and builds (cmake);
# 2. fetches public wallpaper photos from Debian packages (scripts/fetch-photos.sh);
# 3. builds a demo index of "known" photos (a made-up list: no abuse material
#    and no real hash list is ever involved);
# 4. makes a demo "seized device" folder: altered copies of some known photos
#    (resized, recompressed, cropped a little, mirrored, rotated, renamed to
#    .dat) among unrelated photos, non-image files and a known-good file;
# 5. scans it and shows the hits and the device's priority.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd)
bash scripts/setup.sh

echo "== build"
cmake -S . -B build/demo -DCMAKE_BUILD_TYPE=Release -DIMT_BUILD_TESTS=OFF \
      -DIMT_BUILD_BENCH=OFF >/dev/null
cmake --build build/demo -j "$(nproc)" >"$SRC/build/demo-build.log" 2>&1 ||
  { cat "$SRC/build/demo-build.log"; exit 2; }
CLI=$SRC/build/demo/imgtriage

D=${DEMO_DIR:-$SRC/build/demo-data}
mkdir -p "$D"
D=$(cd "$D" && pwd)
PHOTOS=$D/photos
if ! ls "$PHOTOS"/*.jpg >/dev/null 2>&1; then
  echo "== fetching public photos from Debian packages (once)"
  bash scripts/fetch-photos.sh "$PHOTOS"
fi
# Pick 6 "known" photos with detail enough for PDQ (quality >= 80) and 3
# unrelated ones far from all of them (wallpaper packages ship light and dark
# variants of one picture: those would rightly match).
mapfile -t PICK < <("$CLI" hash --threads "$(nproc)" "$PHOTOS"/*.jpg | python3 -c '
import sys
rows = sorted((l.rstrip("\n").split(",", 2) for l in sys.stdin), key=lambda r: r[2])
rows = [r for r in rows if int(r[1]) >= 80]
d = lambda a, b: bin(int(a, 16) ^ int(b, 16)).count("1")
known, other = [], []
for h, q, p in rows:
    if len(known) < 6 and all(d(h, k[0]) > 90 for k in known):
        known.append((h, p))
for h, q, p in rows:
    if len(other) < 3 and all(d(h, k[0]) > 90 for k in known + other):
        other.append((h, p))
for h, p in known: print("K" + p)
for h, p in other: print("O" + p)
')
KNOWN=(); OTHER=()
for x in "${PICK[@]}"; do
  case "$x" in K*) KNOWN+=("${x#K}") ;; O*) OTHER+=("${x#O}") ;; esac
done
if [ ${#KNOWN[@]} -lt 6 ] || [ ${#OTHER[@]} -lt 3 ]; then
  echo "demo: not enough distinct detailed photos in $PHOTOS" >&2
  exit 2
fi

echo "== demo index: ${#KNOWN[@]} known photos (a made-up list), one known-good file"
rm -rf "$D/index" "$D/lists" "$D/device" "$D/report.jsonl"
mkdir -p "$D/lists"
"$CLI" hash --threads "$(nproc)" "${KNOWN[@]}" > "$D/lists/demo-known.csv"
md5sum "${KNOWN[@]}" > "$D/lists/demo-known.md5"
DEV=$D/device
mkdir -p "$DEV/DCIM/Camera" "$DEV/Download" "$DEV/Pictures/.thumbs" "$DEV/system"
cp /etc/os-release "$DEV/system/os-release"
md5sum "$DEV/system/os-release" > "$D/lists/demo-good.md5"
"$CLI" index create "$D/index"
"$CLI" index import --quiet --name demo-known-photos --scheme custom --category 1 \
  --format pdq-csv "$D/index" "$D/lists/demo-known.csv"
"$CLI" index import --quiet --name demo-known-md5 --scheme custom --category 1 \
  --format md5sum "$D/index" "$D/lists/demo-known.md5"
"$CLI" index import --quiet --name demo-known-good --known-good \
  --format md5sum "$D/index" "$D/lists/demo-good.md5"

echo "== demo device: altered copies among unrelated photos and other files"
convert -quiet "${KNOWN[0]}" -resize 40% -quality 70 "$DEV/DCIM/Camera/IMG_20240101_101010.jpg"
convert -quiet "${KNOWN[1]}" -flop -resize 50% -quality 85 "$DEV/DCIM/Camera/IMG_20240102_121212.jpg"
convert -quiet "${KNOWN[2]}" -gravity center -crop 98%x98%+0+0 +repage -resize 50% -quality 80 \
  "$DEV/Pictures/cropped.jpg"
convert -quiet "${KNOWN[3]}" -rotate 90 -resize 30% -quality 75 "$DEV/Pictures/.thumbs/t_0001.jpg"
cp "${KNOWN[4]}" "$DEV/Download/cache_8812.dat"
i=0
for f in "${OTHER[@]}"; do
  i=$((i + 1))
  convert -quiet "$f" -resize 50% -quality 85 "$DEV/DCIM/Camera/IMG_2024030${i}_090000.jpg"
done
printf 'shopping: milk, bread\n' > "$DEV/Download/notes.txt"
tar -C /usr/share/doc -czf "$DEV/Download/docs.tar.gz" bash 2>/dev/null || true
ln -s ../DCIM "$DEV/Pictures/camera-link"

echo "== scan"
st=0
"$CLI" scan --index "$D/index" --device demo-phone --case DEMO-0001 \
  --out "$D/report.jsonl" "$DEV" || st=$?
echo
echo "== hits (from $D/report.jsonl)"
python3 - "$D/report.jsonl" "$DEV/" <<'PY'
import json, sys
dev = sys.argv[2]
for line in open(sys.argv[1], 'rb'):
    r = json.loads(line)
    if r.get('record') != 'file':
        continue
    hits = [m for m in r.get('matches', []) if m.get('disposition', 'alert') == 'alert']
    emb = r.get('embedded', [])
    if r.get('known_good'):
        print(f"  known-good  {r['path'].replace(dev, '')}: skipped")
    for m in hits:
        how = m['kind'] if m['kind'] != 'pdq' else \
            f"pdq distance {m['distance']} ({m['variant']})"
        if m.get('embedded') is not None and m['embedded'] < len(emb):
            how += f" of its embedded {emb[m['embedded']].get('kind', 'picture')}"
        print(f"  HIT         {r['path'].replace(dev, '')}: {m['list']} category "
              f"{m.get('category')} by {how}")
PY
echo
echo "exit status $st (0 nothing known, 1 known material found, 2 incomplete scan)"
echo "The full report: $D/report.jsonl; 'imgtriage scan --help' for the options."
