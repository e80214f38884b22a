#!/usr/bin/env bash
# tests/cli_carve.sh CLI SHARED -- `imgtriage carve` from the outside: a raw
# "unallocated space" file built here (random bytes, zeros, planted pictures
# at offsets the test chose, a truncated copy at the end) carved against an
# index of one known picture. Expected offsets and lengths come from how the
# file was built, MD5s from md5sum of the planted files, and a carved item's
# record must say what `scan` says of the same picture as a file (PDQ, MD5,
# matches). The evidence is only read, the report converts back byte for byte.
set -u
CLI=$1
SRC=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { if ! eval "$1"; then echo "FAIL: $2"; fail=1; fi; }
if ! command -v python3 >/dev/null; then
  echo "SKIP: python3 is needed"; [ "${CI:-}" = true ] && exit 1; exit 77
fi

"$CLI" carve >/dev/null 2>&1; check '[ $? -eq 2 ]' "no FILE gives 2"
"$CLI" carve --help | grep -q "Exit status"; check '[ $? -eq 0 ]' "--help documents the exit status"
"$CLI" --help | grep -q "carve FILE"; check '[ $? -eq 0 ]' "imgtriage --help lists carve"

known=$SRC/tests/data/embedded/unedited.jpg
png=$SRC/tests/data/carve/small.png
gif=$SRC/tests/data/formats/webp_gif/static_16.gif
cut=$SRC/tests/data/embedded/original.jpg
mkdir -p "$tmp/ev"
img=$tmp/ev/unalloc.raw
# layout: 70000 random | known | 4096 zeros | png | 999 random | gif | 3000 bytes of cut
head -c 70000 /dev/urandom > "$img"
o1=$(stat -c %s "$img"); cat "$known" >> "$img"
head -c 4096 /dev/zero >> "$img"
o2=$(stat -c %s "$img"); cat "$png" >> "$img"
head -c 999 /dev/urandom >> "$img"
o3=$(stat -c %s "$img"); cat "$gif" >> "$img"
o4=$(stat -c %s "$img"); head -c 3000 "$cut" >> "$img"
sum_before=$(md5sum < "$img")

"$CLI" index create "$tmp/idx" >/dev/null 2>&1
"$CLI" hash --format csv "$known" | awk -F, '{print $1","$2",known.jpg"}' > "$tmp/known.csv"
"$CLI" index import --name known --format pdq-csv "$tmp/idx" "$tmp/known.csv" >/dev/null 2>&1
check '[ $? -eq 0 ]' "index import"

"$CLI" carve --index "$tmp/idx" --out "$tmp/r.jsonl" "$img" 2>"$tmp/err"
st=$?
check '[ $st -eq 1 ]' "a known picture carved: exit 1 (got $st: $(head -c 300 "$tmp/err"))"
check '[ "$(md5sum < "$img")" = "$sum_before" ]' "the evidence is unchanged"

python3 - "$tmp/r.jsonl" "$o1" "$(stat -c %s "$known")" "$(md5sum < "$known" | cut -c1-32)" \
  "$o2" "$(stat -c %s "$png")" "$(md5sum < "$png" | cut -c1-32)" \
  "$o3" "$(stat -c %s "$gif")" "$(md5sum < "$gif" | cut -c1-32)" \
  "$o4" 3000 "$(head -c 3000 "$cut" | md5sum | cut -c1-32)" <<'EOF' || fail=1
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
a = sys.argv[2:]
want = [(int(a[i]), int(a[i + 1]), a[i + 2]) for i in range(0, len(a), 3)]
files = [r for r in recs if r["record"] == "file"]
got = [(r["carved"]["offset"], r["carved"]["length"], r["md5"]) for r in files]
ok = True
if got != want:
    print("FAIL: carved items", got, "expected", want); ok = False
fmts = [r["carved"]["format"] for r in files]
if fmts != ["jpeg", "png", "gif", "jpeg"]:
    print("FAIL: formats", fmts); ok = False
tr = [r["carved"]["truncated"] for r in files]
if tr != [False, False, False, True] or files[3]["carved"]["end"] != "range-end":
    print("FAIL: truncated flags", tr); ok = False
if not files[3].get("partial"):
    print("FAIL: the truncated JPEG is not flagged partial"); ok = False
m = files[0]["matches"]
if not m or m[0]["kind"] != "pdq" or m[0]["distance"] != 0 or m[0]["list"] != "known":
    print("FAIL: the known picture did not match", m); ok = False
if any(r["matches"] for r in files[1:]):
    print("FAIL: other items matched"); ok = False
s = recs[-1]
if s["record"] != "summary" or s["hit_files"] != 1 or not s["complete"]:
    print("FAIL: summary", s); ok = False
sys.exit(0 if ok else 1)
EOF

# The carved known picture says what scan says of the file itself.
cp "$known" "$tmp/k.jpg"
"$CLI" scan --quiet --index "$tmp/idx" --out "$tmp/s.jsonl" "$tmp/k.jpg" 2>/dev/null
python3 - "$tmp/r.jsonl" "$tmp/s.jsonl" <<'EOF' || fail=1
import json, sys
c = [json.loads(l) for l in open(sys.argv[1]) if '"record":"file"' in l][0]
s = [json.loads(l) for l in open(sys.argv[2]) if '"record":"file"' in l][0]
keys = ["format", "read_bytes", "width", "height", "md5", "sha1", "pdq", "quality", "matches", "embedded"]
bad = [k for k in keys if c.get(k) != s.get(k)]
if bad:
    print("FAIL: carve and scan differ on", bad); sys.exit(1)
EOF

# The report converts back byte for byte (the "carved" member read back).
"$CLI" report jsonl "$tmp/r.jsonl" -o "$tmp/back.jsonl" 2>/dev/null
check 'cmp -s "$tmp/r.jsonl" "$tmp/back.jsonl"' "report jsonl gives the carve report back"

# Converted: DFXML says the items are not allocated, VICS that they are
# unallocated (never the mounted-file-system defaults).
"$CLI" report dfxml "$tmp/r.jsonl" -o "$tmp/r.xml" 2>/dev/null
check '[ "$(grep -c "<alloc>0</alloc>" "$tmp/r.xml")" -eq 4 ] && ! grep -q "<alloc>1" "$tmp/r.xml"' \
  "DFXML: carved items have alloc 0"
"$CLI" report vics "$tmp/r.jsonl" -o "$tmp/r.vics" 2>/dev/null
check '[ "$(grep -o "\"Unallocated\":true" "$tmp/r.vics" | wc -l)" -eq 4 ] && ! grep -q "\"Unallocated\":false" "$tmp/r.vics"' \
  "VICS: carved items are Unallocated"
# No output over the evidence; an unreadable FILE is an error record (exit 2).
"$CLI" carve --force --out "$img" "$img" >/dev/null 2>&1
check '[ $? -eq 2 ] && [ "$(md5sum < "$img")" = "$sum_before" ]' "--out over the FILE is refused"
"$CLI" carve "$tmp/none" > "$tmp/n.jsonl" 2>/dev/null
check '[ $? -eq 2 ] && grep -q "\"scan_error\":true" "$tmp/n.jsonl"' "a missing FILE: exit 2, a scan-error record"
# --max-length cuts an item there.
"$CLI" carve --max-length 1000 "$img" > "$tmp/m.jsonl" 2>/dev/null
check 'grep -q "\"offset\":$o1,\"length\":1000,\"format\":\"jpeg\",\"truncated\":true,\"end\":\"max-length\"" "$tmp/m.jsonl"' \
  "--max-length cuts the JPEG at 1000 bytes"
exit $fail
