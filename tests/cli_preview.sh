#!/usr/bin/env bash
# tests/cli_preview.sh CLI SHARED -- `imgtriage scan --budget` from the
# outside: option errors; a preview's report (valid JSONL, records in read
# order equal to the full scan's, the summary's "preview" fields the backlog
# reads, exit statuses); a device with none read in part states its bound;
# a later full scan with --resume PREVIEW_REPORT reads only what the preview
# did not (a file the preview read is changed afterwards: its record stays
# the preview's) and ends with the full scan's records; TMPDIR inside the
# evidence is refused.
set -u
CLI=$1
SHARED=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { if ! eval "$1"; then echo "FAIL: $2"; fail=1; fi; }
skip() {
  [ $fail -eq 0 ] || exit 1
  if [ "${CI:-}" = "true" ]; then echo "FAIL: $1 (missing under CI=true)"; exit 1; fi
  echo "SKIP: $1"; exit 77
}
V=$SHARED/vectors/pdq/images
CSV=$SHARED/vectors/pdq/observed/cpp-shipped-imagemagick.csv
[ -d "$V" ] && [ -f "$CSV" ] || skip "the shared PDQ vectors ($V)"
command -v convert >/dev/null || skip "ImageMagick's convert (scripts/setup.sh installs it)"
command -v python3 >/dev/null || skip "python3"

# Option errors.
"$CLI" scan --no-index --budget 5x "$tmp" >/dev/null 2>&1; check '[ $? -eq 2 ]' "--budget 5x is refused"
"$CLI" scan --no-index --budget 0 "$tmp" >/dev/null 2>&1; check '[ $? -eq 2 ]' "--budget 0 is refused"
"$CLI" scan --no-index --stop-after-hits 0 "$tmp" >/dev/null 2>&1; check '[ $? -eq 2 ]' "--stop-after-hits 0 is refused"
"$CLI" scan --help | grep -q -- "--budget DURATION"; check '[ $? -eq 0 ]' "--help documents --budget"

# A device: program files first in walk order, known pictures in user folders.
D=$tmp/dev
mkdir -p "$D/Program Files" "$D/Users/ann/Pictures" "$D/Users/ann/Downloads" "$D/Users/ann/Documents"
for d in $(seq -w 1 30); do
  mkdir "$D/Program Files/app$d"
  (cd "$D/Program Files/app$d" && for f in $(seq -w 1 40); do echo "lib $d $f" > "lib$f.dll"; done)
done
for f in $(seq -w 1 60); do echo "note $f" > "$D/Users/ann/Documents/n$f.txt"; done
convert "$V/bridge-mods/aaa-orig.jpg" -resize 90% -quality 90 "$D/Users/ann/Pictures/holiday.jpg"
convert "$V/reg-test-input/labelme-subset/q0291.jpg" -resize 90% -quality 90 "$D/Users/ann/Downloads/x.jpg"
convert "$V/reg-test-input/labelme-subset/q0746.jpg" -resize 90% -quality 90 "$D/Users/ann/Pictures/other.jpg"
ln -s holiday.jpg "$D/Users/ann/Pictures/link.jpg"
grep -E ',(bridge-mods/aaa-orig\.jpg|reg-test-input/labelme-subset/q0291\.jpg)$' "$CSV" > "$tmp/list.csv"
"$CLI" index import -q --create --name known "$tmp/idx" "$tmp/list.csv" || { echo "FAIL: index"; exit 1; }

"$CLI" scan --index "$tmp/idx" --quiet --out "$tmp/full.jsonl" "$D" 2>/dev/null
check '[ $? -eq 1 ]' "the full scan finds known material"

# A preview with a budget it does not need: reads everything, exit 1.
"$CLI" scan --index "$tmp/idx" --quiet --budget 5m --out "$tmp/p.jsonl" "$D" 2>"$tmp/p.err"
check '[ $? -eq 1 ]' "a preview with hits exits 1"
check 'grep -q "PREVIEW, stopped by complete" "$tmp/p.err"' "the human summary says it is a preview"
python3 - "$tmp/full.jsonl" "$tmp/p.jsonl" <<'PY' || fail=1
import json, sys
full = [json.loads(l) for l in open(sys.argv[1])]
pv = [json.loads(l) for l in open(sys.argv[2])]
ok = True
def need(c, what):
    global ok
    if not c: print("FAIL:", what); ok = False
fr = {r["path"]: r for r in full if r["record"] == "file"}
pr = [r for r in pv if r["record"] == "file"]
need(pv[0]["record"] == "header" and pv[0]["preview"]["budget_s"] == 300.0, "header: preview budget")
need(len(pr) == len(fr) and all(fr[r["path"]] == r for r in pr), "preview records equal the full scan's")
need([r["seq"] for r in pr] != sorted(r["seq"] for r in pr), "records come in read order, not walk order")
s = pv[-1]
need(s["record"] == "summary" and s["priority_is_preview"] is True, "summary: priority_is_preview")
p = s["preview"]
need(p["stopped_by"] == "complete" and s["complete"] is True, "read whole: complete")
need(p["enumerated_files"] == p["examined_files"] == s["files"] == 1263, "files listed and read: %r" % p["enumerated_files"])
need(p["hit_files"] == 2 and p["hit_files_upper95"] == 2 and p["estimated_hit_files"] == 2.0, "hits and exact bound")
um = [c for c in p["classes"] if c["class"] == "user-media"][0]
need(um["enumerated"] == 3 and um["pictures"] == 3 and um["hit_files"] == 2, "user-media class")
need(p["files_before_first_hit"] is not None and p["files_before_first_hit"] <= 1, "first hit among the first files")
need([c["class"] for c in p["classes"]] == ["user-media", "deleted-media", "media", "user-other", "deleted-other", "system-media", "other", "system-other"], "classes in read order")
need("PREVIEW" in s["priority_explanation"], "the priority says it is a preview")
sys.exit(0 if ok else 1)
PY

# --stop-after-hits 1: stops at once; the report says so; exit 1.
"$CLI" scan --index "$tmp/idx" --quiet --stop-after-hits 1 --threads 1 --out "$tmp/h.jsonl" "$D" 2>/dev/null
check '[ $? -eq 1 ]' "--stop-after-hits with a hit exits 1"
python3 - "$tmp/h.jsonl" <<'PY' || fail=1
import json, sys
s = [json.loads(l) for l in open(sys.argv[1])][-1]
p = s["preview"]
ok = p["stopped_by"] == "hits" and s["complete"] is False and p["hit_files"] == 1 \
    and p["examined_files"] <= 3 and "stopped by hits" in s["incomplete_reason"] \
    and p["hit_files_upper95"] > p["hit_files"]
if not ok: print("FAIL: --stop-after-hits summary", p)
sys.exit(0 if ok else 1)
PY

# A later full scan resumes the preview: what the preview read is not read
# again (the Documents note it read is changed now: its record stays the
# preview's), the rest is; every other record equals the full scan's.
read_by_preview=$(python3 -c "
import json,sys
for l in open('$tmp/h.jsonl'):
    r=json.loads(l)
    if r['record']=='file' and r['type']=='file': print(r['path']); break")
cp "$read_by_preview" "$tmp/saved"
echo "changed after the preview" >> "$read_by_preview"
"$CLI" scan --index "$tmp/idx" --quiet --resume "$tmp/h.jsonl" --out "$tmp/r.jsonl" "$D" 2>/dev/null
check '[ $? -eq 1 ]' "the resumed full scan exits 1"
python3 - "$tmp/full.jsonl" "$tmp/r.jsonl" "$tmp/h.jsonl" "$read_by_preview" <<'PY' || fail=1
import json, sys
full = [json.loads(l) for l in open(sys.argv[1]) if '"record":"file"' in l]
res = [json.loads(l) for l in open(sys.argv[2]) if '"record":"file"' in l]
pv = {r["path"]: r for r in (json.loads(l) for l in open(sys.argv[3])) if r["record"] == "file"}
changed = sys.argv[4]
ok = [r["path"] for r in res] == [r["path"] for r in full]
ok = ok and all(a == b for a, b in zip(full, res) if a["path"] != changed)
got = [r for r in res if r["path"] == changed][0]
ok = ok and got == pv[changed]   # the preview's record, not a new read
if not ok: print("FAIL: resuming a preview")
sys.exit(0 if ok else 1)
PY
cp "$tmp/saved" "$read_by_preview"

# A device with none, read in part: the summary states each class's bound.
N=$tmp/none
mkdir -p "$N/Windows/System32"
(cd "$N/Windows/System32" && for f in $(seq 1 4000); do echo "sys $f" > "d$f.sys"; done)
"$CLI" scan --index "$tmp/idx" --quiet --threads 1 --budget 30ms --out "$tmp/n.jsonl" "$N" 2>/dev/null
st=$?
python3 - "$tmp/n.jsonl" $st <<'PY' || fail=1
import json, sys
s = [json.loads(l) for l in open(sys.argv[1])][-1]
p = s["preview"]
ok = s["record"] == "summary" and p["hit_files"] == 0
for c in p["classes"]:
    N, n, u = c["enumerated"], c["examined"], c["hit_files_upper95"]
    if N == 0: continue
    if n == N: ok = ok and u == 0
    elif n == 0: ok = ok and u == N
    else: ok = ok and 0 < u <= 3 * N / n and abs(c["rule_of_three"] - 3 * N / n) < 1e-3
if p["examined_files"] < p["enumerated_files"] or not p["enumeration_complete"]:
    ok = ok and s["complete"] is False and p["stopped_by"] == "budget" and sys.argv[2] == "2"
else:
    ok = ok and s["complete"] is True and sys.argv[2] == "0"
if not ok: print("FAIL: the bound of a device with none", sys.argv[2], p)
sys.exit(0 if ok else 1)
PY

# The listing's temporary files never go into the evidence.
TMPDIR="$D/Users" "$CLI" scan --index "$tmp/idx" --quiet --budget 5m --out "$tmp/t.jsonl" "$D" 2>"$tmp/t.err"
check '[ $? -eq 2 ] && grep -q "inside the evidence" "$tmp/t.err"' "TMPDIR inside the evidence is refused"
check '[ -z "$(find "$D" -newer "$tmp/list.csv" -name "imgtriage-preview*")" ]' "nothing written into the evidence"

# Order independence: the hostile corpus read in the preview's order (another
# seed, in batches, 2 threads) gives every file the full scan's record.
M=$SHARED/corpus/malformed
if [ -d "$M/pillow" ] && [ -d "$M/jpeg_imagetestsuite" ]; then
  "$CLI" scan --no-index --quiet --threads 1 --out "$tmp/mf-full.jsonl" "$M/pillow" "$M/jpeg_imagetestsuite" 2>/dev/null
  "$CLI" scan --no-index --quiet --threads 2 --seed 7 --budget 1h --out "$tmp/mf-pv.jsonl" "$M/pillow" "$M/jpeg_imagetestsuite" 2>/dev/null
  python3 - "$tmp/mf-full.jsonl" "$tmp/mf-pv.jsonl" <<'PY' || fail=1
import json, sys
def recs(p):
    return {r["path"]: r for r in (json.loads(l) for l in open(p, errors="surrogateescape")) if r["record"] == "file"}
a, b = recs(sys.argv[1]), recs(sys.argv[2])
diff = [k for k in a if a[k] != b.get(k)]
if len(a) < 500 or diff or len(a) != len(b):
    print("FAIL: hostile corpus: %d records, preview %d, %d differ: %r" % (len(a), len(b), len(diff), diff[:3]))
    sys.exit(1)
PY
else
  skip "the shared hostile corpus ($M)"
fi

# A preview cannot itself resume.
"$CLI" scan --index "$tmp/idx" --quiet --budget 5m --resume "$tmp/h.jsonl" "$D" >/dev/null 2>&1
check '[ $? -eq 2 ]' "--budget with --resume is refused"

[ $fail -eq 0 ] && echo "cli_preview: all checks passed"
exit $fail
