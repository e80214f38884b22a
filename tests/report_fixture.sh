# tests/report_fixture.sh -- sourced by tests/cli_report*.sh: a real scan of
# evidence with hostile names. Needs CLI, tmp, check and fail set; leaves
# $ev (the evidence), $idx (the index) and $tmp/r.jsonl, $tmp/r.csv.
# Evidence: pictures made by ImageMagick (fixed seeds), a known list of two
# of them (hashed by the reference hasher's CSV format via `imgtriage hash`,
# and by md5sum), a known-good file, a symlink and a non-image.
ev=$tmp/evidence
mkdir -p "$ev/DCIM" "$ev/docs"
for s in 1 2 3 4; do convert -size 320x240 -seed $s plasma: "$ev/DCIM/p$s.jpg"; done
convert "$ev/DCIM/p1.jpg" -flop -quality 80 "$ev/DCIM/p1-mirror.jpg"
echo "plain text" > "$ev/docs/readme.txt"
echo "known good" > "$ev/docs/good.txt"
ln -s ../DCIM/p2.jpg "$ev/docs/link.jpg"
ln "$ev/DCIM/p1.jpg" "$ev/docs/p1-hardlink.jpg"   # walked after DCIM/p1.jpg
# An embedded picture: a cropped photo still holding its original's EXIF
# thumbnail (thumbnail-differs).
cp "$(dirname "$0")/data/embedded/cropped.jpg" "$ev/DCIM/"
# Hostile names (issue 17): markup, a script end tag (the '/' makes a folder
# '<'), a spreadsheet formula, terminal escapes and line breaks, bytes that
# are not UTF-8, and a byte XML 1.0 cannot hold. p3 and p4 are known (hits).
mkdir -p "$ev/<"
cp "$ev/DCIM/p3.jpg" "$ev/<img src=x onerror=alert(1)>.jpg"
cp "$ev/DCIM/p4.jpg" "$ev/</script>.png"
cp "$ev/DCIM/p3.jpg" "$ev/=HYPERLINK(\"http:__x\",\"y\").jpg"
cp "$ev/DCIM/p4.jpg" "$ev/"$'-2+3\x1b[31m\n\r\x01 tail.jpg'
cp "$ev/DCIM/p3.jpg" "$ev/"$'bad\xff\xfe utf8 & \x27quote\x27.jpg'
"$CLI" hash "$ev/DCIM/p1.jpg" "$ev/DCIM/p3.jpg" > "$tmp/known.csv"
md5sum "$ev/DCIM/p2.jpg" "$ev/DCIM/p4.jpg" > "$tmp/known.md5"
md5sum "$ev/docs/good.txt" > "$tmp/good.md5"
# A list name and a device name from outside are hostile too.
HOSTILE_LIST=$'=cmd|\x27 /C calc\x27!A0 <i>md5</i> \xc3'
HOSTILE_DEVICE='<script>alert(1)</script> phone'
idx=$tmp/index
"$CLI" index create "$idx" >/dev/null
"$CLI" index import --quiet --name known-photos --scheme projectvic --category 1 --format pdq-csv "$idx" "$tmp/known.csv" >/dev/null
"$CLI" index import --quiet --name "$HOSTILE_LIST" --scheme custom --category 2 --format md5sum "$idx" "$tmp/known.md5" >/dev/null
"$CLI" index import --quiet --name good --known-good --format md5sum "$idx" "$tmp/good.md5" >/dev/null
"$CLI" scan --quiet --sha256 --index "$idx" --device "$HOSTILE_DEVICE" --case C-1 --out "$tmp/r.jsonl" "$ev" 2>/dev/null
check '[ $? -eq 1 ]' "the scan finds the known pictures"
"$CLI" scan --quiet --sha256 --index "$idx" --format csv --out "$tmp/r.csv" "$ev" 2>/dev/null

