#!/usr/bin/env bash
# tests/test_image_preview.sh CLI SHARED -- the preview of a DISK IMAGE
# (issue 14): `imgtriage scan --budget / --stop-after-hits IMAGE`.
# Builds with mkfs.vfat and mtools (nothing mounted) a FAT32 image holding
# 3,000 small system and program files, known pictures (altered copies of
# public test images, the known list being the reference hasher's PDQ of
# the originals) in user folders, one of them deleted (mdel), and a ZIP in
# Downloads holding a known picture (made by Python's zipfile); checks:
#   - --stop-after-hits 3 finds the three known files having read at most 3
#     files where the full scan reads 3,006 (the deleted picture as class
#     deleted-media); every record equals the full scan's record of that
#     file (location, allocation status, byte runs, seq);
#   - a preview read to its end, on 1 and 2 threads, gives every listed file
#     the full scan's record, members of the ZIP included (and its hit);
#     it is not complete: the unallocated space it did not carve is stated
#     (not_carved), and the carved items are the full scan's only;
#   - the same file system as partition 1 behind an MBR (sfdisk), raw and as
#     an E01 (ewfacquire): the preview's records are the full scan's;
#   - --resume PREVIEW_REPORT: the full scan reads only what the preview did
#     not (a file the preview read is overwritten in the image afterwards:
#     its record stays the preview's) and the rest equals the full scan's;
#   - a device with none (the same system files, no pictures) read in part
#     states each class's bound (at most 3N/n, the exact hypergeometric one);
#   - the folder version: a ZIP's member with a known picture is a hit of the
#     preview (its members were dropped before).
#   - a folder's classes come from the path below the PATH (a tree of system
#     files under a case folder named Downloads stays system-other).
set -u
CLI=$1
SHARED=$2
V=$SHARED/vectors/pdq/images
CSV=$SHARED/vectors/pdq/observed/cpp-shipped-imagemagick.csv
. "$(dirname "$0")/tu_image.sh"
[ -d "$V" ] && [ -f "$CSV" ] || skip "the shared vectors are missing ($V)"
need "scripts/setup.sh installs it" mkfs.vfat mcopy mdel sfdisk ewfacquire convert python3
scratch

L=$V/reg-test-input/labelme-subset
grep -E ',(bridge-mods/aaa-orig\.jpg|reg-test-input/labelme-subset/(q0291|q1050|q2821)\.jpg)$' "$CSV" > list.csv
[ "$(wc -l < list.csv)" -eq 4 ] || { echo "FAIL: reference CSV lines"; exit 1; }
"$CLI" index import -q --create --name known idx list.csv || { echo "FAIL: index"; exit 1; }

# ---- the device tree: system files first in walk order, pictures in users --
mk_system() {
  python3 - "$1" <<'EOF' || exit 1
import os, sys
for d, n, fmt in (("Windows/System32", 2500, "d%d.dll"), ("Program Files/App", 500, "l%d.dat")):
    os.makedirs(os.path.join(sys.argv[1], d))
    for f in range(1, n + 1):
        open(os.path.join(sys.argv[1], d, fmt % f), "w").write("%s %d\n" % (d, f))
EOF
}
T=$tmp/tree
mk_system "$T"
mkdir -p "$T/Users/ann/Pictures" "$T/Users/ann/Downloads" "$T/Users/ann/Documents"
convert "$V/bridge-mods/aaa-orig.jpg" -resize 90% -quality 90 "$T/Users/ann/Pictures/holiday.jpg" || exit 1
convert "$L/q0291.jpg" -resize 90% -quality 90 "$T/Users/ann/Downloads/x.jpg" || exit 1
convert "$L/q1050.jpg" -resize 90% -quality 90 "$T/Users/ann/Pictures/gone.jpg" || exit 1
convert "$L/q2821.jpg" -resize 90% -quality 90 inner.jpg || exit 1
python3 -c 'import zipfile,sys; z = zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED); z.write("inner.jpg", "inner.jpg"); z.close()' "$T/Users/ann/Downloads/a.zip" || exit 1
echo "a note" > "$T/Users/ann/Documents/n.txt"

# FAT32 (512-byte clusters: small), the tree copied in, one picture deleted.
mkfs.vfat -C -F 32 -S 512 -s 1 -n DEV dev.img 40000 >/dev/null || { echo "FAIL: mkfs.vfat"; exit 1; }
mcopy -s -i dev.img "$T"/* ::/ || { echo "FAIL: mcopy"; exit 1; }
mdel -i dev.img ::/Users/ann/Pictures/gone.jpg || { echo "FAIL: mdel"; exit 1; }

"$CLI" scan --index idx --quiet --threads 1 --out full.jsonl dev.img 2>/dev/null
check '[ $? -eq 1 ]' "the full scan finds known material"
# A preview's seq is the file's listing position: the full scan's, less the
# container members and carved items the full scan numbers before it (a
# member has its container's). pvexpect(full report) -> {path: record}.
cat > expect.py <<'EOF'
import json
def pvexpect(path):
    out, before, last = {}, 0, None
    for r in (json.loads(l) for l in open(path)):
        if r["record"] != "file": continue
        e = dict(r)
        if "member" in r:
            e["seq"] = last; before += 1
        elif r.get("image", {}).get("alloc") == "carved":
            before += 1; continue
        else:
            e["seq"] = r["seq"] - before; last = e["seq"]
        out[r["path"]] = e
    return out
EOF

# ---- --stop-after-hits 3: the three known files first ----------------------
"$CLI" scan --index idx --quiet --threads 1 --stop-after-hits 3 --out h.jsonl dev.img 2>h.err
check '[ $? -eq 1 ]' "a preview with hits exits 1"
check 'grep -q "NOT CARVED" h.err' "the human summary says what was not carved"
python3 - full.jsonl h.jsonl <<'PY' || fail=1
import json, sys
sys.path.insert(0, "."); from expect import pvexpect
full = [json.loads(l) for l in open(sys.argv[1])]
pv = [json.loads(l) for l in open(sys.argv[2])]
ok = True
def need(c, what):
    global ok
    if not c: print("FAIL:", what); ok = False
fr = {r["path"]: r for r in full if r["record"] == "file"}
pr = [r for r in pv if r["record"] == "file"]
def hit(r): return any(m.get("disposition", "alert") == "alert" for m in r.get("matches", []))
fs = full[-1]
need(fs["files"] == 3008 and fs["hit_files"] == 5, "full scan: %r files, %r hits" % (fs["files"], fs["hit_files"]))
need(any(r.get("image", {}).get("alloc") == "carved" for r in fr.values()), "the full scan carves")
s = pv[-1]; p = s["preview"]
need(p["stopped_by"] == "hits" and p["hit_files"] == 3, "stopped by hits: %r" % p)
need(p["examined_files"] <= 3 and p["enumerated_files"] == 3006, "read %r of %r listed" % (p["examined_files"], p["enumerated_files"]))
need(p["disk_images"] == 1 and p["not_carved"]["areas"] >= 1, "not carved stated: %r" % p.get("not_carved"))
need(s["complete"] is False and "not carved" in s["incomplete_reason"], "incomplete: %r" % s.get("incomplete_reason"))
cls = {c["class"]: c for c in p["classes"]}
d = cls["deleted-media"]
need(d["enumerated"] == 1 and d["examined"] == 1 and d["hit_files"] == 1, "deleted-media class: %r" % d)
need(cls["user-media"]["enumerated"] == 2 and cls["user-media"]["hit_files"] == 2, "user-media class")
need(cls["system-other"]["enumerated"] == 3000 and cls["system-other"]["examined"] == 0, "system files not read")
hits = sorted(r["path"].split("!p0/")[1] for r in pr if hit(r))
need(hits == ["Users/ann/Downloads/x.jpg", "Users/ann/Pictures/_one.jpg", "Users/ann/Pictures/holiday.jpg"], "hits: %r" % hits)
need(all(r.get("image", {}).get("alloc") == "deleted" for r in pr if "_one" in r["path"]), "the deleted one says so")
ex = pvexpect(sys.argv[1])
need(len(pr) == 3 and all(ex.get(r["path"]) == r for r in pr), "records equal the full scan's")
sys.exit(0 if ok else 1)
PY

# ---- the same file system behind a partition table, and as an E01 ----------
# (each kind of image the full scan reads: a partition table, E01)
{
  truncate -s $((1048576 + 40960000 + 1048576)) disk.raw
  echo 'start=2048, size=80000, type=c' | sfdisk -q disk.raw >/dev/null || { echo "FAIL: sfdisk"; exit 1; }
  dd if=dev.img of=disk.raw bs=512 seek=2048 conv=notrunc status=none
  ewfacquire -u -q -t disk -c none -S 20MiB -f encase6 disk.raw >/dev/null 2>&1 || { echo "FAIL: ewfacquire"; exit 1; }
  "$CLI" scan --index idx --quiet --threads 2 --out dfull.jsonl disk.raw 2>/dev/null
  for im in disk.raw disk.E01; do
    "$CLI" scan --index idx --quiet --threads 2 --stop-after-hits 3 --out "d-$im.jsonl" "$im" 2>/dev/null
    check '[ $? -eq 1 ]' "a preview of $im with hits exits 1"
  done
  python3 - dfull.jsonl d-disk.raw.jsonl d-disk.E01.jsonl <<'PY' || fail=1
import json, sys
sys.path.insert(0, "."); from expect import pvexpect
ex = pvexpect(sys.argv[1])
ok = True
for f, name in ((sys.argv[2], "disk.raw"), (sys.argv[3], "disk.E01")):
    pr = [json.loads(l) for l in open(f) if '"record":"file"' in l]
    for r in pr:   # the E01 names itself; everything else is the raw image's
        r["path"] = r["path"].replace(name, "disk.raw", 1)
        r["image"]["path"] = "disk.raw"
    p = json.loads(open(f).readlines()[-1])["preview"]
    good = len(pr) == 3 and all(r["image"]["partition"] == 1 and ex.get(r["path"]) == r for r in pr) \
        and p["hit_files"] == 3 and p["not_carved"]["areas"] >= 2
    if not good: print("FAIL: %s: partitioned image's preview records %r" % (name, p)); ok = False
sys.exit(0 if ok else 1)
PY
}

# ---- read to its end, 1 and 2 threads: every record the full scan's --------
for t in 1 2; do
  "$CLI" scan --index idx --quiet --threads $t --budget 1h --seed 5 --out p$t.jsonl dev.img 2>/dev/null
  check '[ $? -eq 1 ]' "preview to the end ($t threads) exits 1"
done
python3 - full.jsonl p1.jsonl p2.jsonl <<'PY' || fail=1
import json, sys
sys.path.insert(0, "."); from expect import pvexpect
def recs(f): return [json.loads(l) for l in open(f)]
notcarved = pvexpect(sys.argv[1])
ok = True
for f in sys.argv[2:]:
    pv = recs(f)
    pr = [r for r in pv if r["record"] == "file"]
    got = {r["path"]: r for r in pr}
    diff = [k for k in notcarved if notcarved[k] != got.get(k)]
    extra = [k for k in got if k not in notcarved]
    if diff or extra or len(pr) != len(got):
        print("FAIL: %s: %d differ %r, %d extra %r" % (f, len(diff), diff[:3], len(extra), extra[:3])); ok = False
    p = pv[-1]["preview"]
    mem = [r for r in pr if "member" in r]
    if p["stopped_by"] != "complete" or p["hit_files"] != 4 or len(mem) != 1 or not mem[0].get("matches"):
        print("FAIL: %s: the ZIP's member and its hit: %r" % (f, p)); ok = False
    if [c["class"] for c in p["classes"]][:2] != ["user-media", "deleted-media"]:
        print("FAIL: read order of classes"); ok = False
sys.exit(0 if ok else 1)
PY

# ---- resume: the full scan reads only what the preview did not -------------
# Overwrite, in the image, the first bytes of a file the preview read: a
# full scan would now see other bytes; the resumed one keeps the record.
off=$(python3 -c "
import json
for l in open('h.jsonl'):
    r = json.loads(l)
    if r['record'] == 'file' and r['path'].endswith('Downloads/x.jpg'): print(r['image']['first_offset'])")
check '[ -n "$off" ]' "the preview read x.jpg"
cp dev.img dev.orig
printf 'XXXXXXXXXXXXXXXX' | dd of=dev.img bs=1 seek="${off:-0}" conv=notrunc status=none
"$CLI" scan --index idx --quiet --threads 2 --resume h.jsonl --out r.jsonl dev.img 2>/dev/null
check '[ $? -eq 1 ]' "the resumed full scan exits 1"
python3 - full.jsonl r.jsonl h.jsonl dev.img <<'PY' || fail=1
import json, sys, hashlib
def files(f): return [json.loads(l) for l in open(f) if '"record":"file"' in l]
full, res, pv = (files(f) for f in sys.argv[1:4])
ok = [r["path"] for r in res] == [r["path"] for r in full]
x = [r for r in full if r["path"].endswith("Downloads/x.jpg")][0]["path"]
ok = ok and all(a == b for a, b in zip(full, res))   # x.jpg: the preview's = the full scan's
# it was not read again: its bytes in the image now (its byte runs) have another MD5
rx = [r for r in res if r["path"] == x][0]
img = open(sys.argv[4], "rb").read()
now = b"".join(img[o:o + n] for _, o, n in rx["image"]["runs"])
ok = ok and len(now) == rx["size"] and hashlib.md5(now).hexdigest() != rx["md5"]
pvp = {r["path"] for r in pv}
ok = ok and {r["path"] for r in res} == pvp | {r["path"] for r in full if r["path"] not in pvp}
s = json.loads(open(sys.argv[2]).readlines()[-1])
ok = ok and s["complete"] is True and s["hit_files"] == 5  # 4 files + the carved copy
if not ok: print("FAIL: resuming the preview of an image", s.get("hit_files"))
sys.exit(0 if ok else 1)
PY
mv dev.orig dev.img

# ---- a device with none: the bound ------------------------------------------
N=$tmp/none
mk_system "$N"
mkfs.vfat -C -F 32 -S 512 -s 1 -n NONE none.img 40000 >/dev/null && mcopy -s -i none.img "$N"/* ::/ || { echo "FAIL: none.img"; exit 1; }
# Budgets from this machine's speed (a preview read whole, timed): the
# listing and a part of the reading; tried again with more time when the
# listing itself did not end. Every run's bounds are checked; one must have
# read a class in part.
"$CLI" scan --index idx --quiet --threads 1 --budget 1h --out nw.jsonl none.img 2>/dev/null
part=0
budget=$(python3 -c "
import json
s = json.loads(open('nw.jsonl').readlines()[-1]); p = s['preview']
e, r = p['enumerate_s'], s['elapsed_s'] - p['enumerate_s']
print(max(1, int(1000 * (e * 1.5 + r / 3))))")
for k in 1 2 3 4 5 6 7 8; do
  # next budget: more when the listing did not end, less when all was read
  [ $k -gt 1 ] && budget=$(python3 -c "
import json
p = json.loads(open('n.jsonl').readlines()[-1])['preview']
b, e = $budget, 1000 * p['enumerate_s']
print(int(b * 1.5) if not p['enumeration_complete'] else max(1, int(e + (b - e) / 3)))")
  budget=${budget}ms
  "$CLI" scan --index idx --quiet --threads 1 --budget "$budget" --force --out n.jsonl none.img 2>/dev/null
  st=$?
  python3 - n.jsonl $st <<'PY'
import json, sys
s = json.loads(open(sys.argv[1]).readlines()[-1])
p = s["preview"]
ok = s["record"] == "summary" and p["hit_files"] == 0 and s["complete"] is False and sys.argv[2] == "2"
part = 0
for c in p["classes"]:
    N, n, u = c["enumerated"], c["examined"], c["hit_files_upper95"]
    if N == 0: continue
    if n == N: ok = ok and u == 0
    elif n == 0: ok = ok and u == N
    else:
        part = 1
        ok = ok and 0 < u <= 3 * N / n and abs(c["rule_of_three"] - 3 * N / n) < 1e-3
if p["enumeration_complete"]:
    ok = ok and p["not_carved"]["areas"] >= 1 and p["enumerated_files"] == 3001
print("none device, budget %s s: %s of %s read (a class read in part: %s)" % (p["budget_s"], p["examined_files"], p["enumerated_files"], bool(part)))
if not ok: print("FAIL: the bound of a device with none", sys.argv[2], p); sys.exit(1)
sys.exit(3 if part else 0)
PY
  r=$?
  [ $r -eq 1 ] && fail=1
  [ $r -eq 3 ] && { part=1; break; }
  budget=${budget%ms}
done
check '[ $part -eq 1 ]' "a preview of the device with none read a class in part"

# ---- the folder version of the ZIP: its member's hit is the preview's -------
"$CLI" scan --index idx --quiet --threads 1 --out ffull.jsonl "$T/Users" 2>/dev/null
"$CLI" scan --index idx --quiet --threads 1 --budget 1h --out fpv.jsonl "$T/Users" 2>/dev/null
python3 - ffull.jsonl fpv.jsonl <<'PY' || fail=1
import json, sys
full = {r["path"]: r for r in (json.loads(l) for l in open(sys.argv[1])) if r["record"] == "file"}
pv = [json.loads(l) for l in open(sys.argv[2])]
got = {r["path"]: r for r in pv if r["record"] == "file"}
mem = [k for k in full if "!inner.jpg" in k]
ok = len(mem) == 1 and mem[0] in got and got[mem[0]]["matches"] == full[mem[0]]["matches"]
ok = ok and pv[-1]["preview"]["hit_files"] == 4 and set(got) == set(full)
if not ok: print("FAIL: a folder preview keeps a ZIP's member and its hit", pv[-1]["preview"]["hit_files"])
sys.exit(0 if ok else 1)
PY

# ---- classes come from the path below the PATH, not the folders holding it --
# (the none tree moved under a case folder named Downloads: still system files)
mkdir -p "$tmp/case/Downloads" && mv "$N" "$tmp/case/Downloads/none"
"$CLI" scan --index idx --quiet --threads 2 --budget 1h --out rel.jsonl "$tmp/case/Downloads/none" 2>/dev/null
python3 - rel.jsonl <<'PY' || fail=1
import json, sys
p = json.loads(open(sys.argv[1]).readlines()[-1])["preview"]
c = {k["class"]: k["enumerated"] for k in p["classes"]}
if c["system-other"] != 3000 or c["user-other"] != 0:
    print("FAIL: classes of a tree under a folder named Downloads: %r" % c); sys.exit(1)
PY

[ $fail -eq 0 ] && echo "test_image_preview: all checks passed"
exit $fail
