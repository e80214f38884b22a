#!/usr/bin/env bash
# tests/test_image_sample_fs.sh CLI SHARED -- block sampling (issue 14): a
# known file hit by sampled blocks but not whole where its first block
# implies (fragmented) is confirmed through the image's file system.
# A FAT16 image (4 KiB clusters) is made with mkfs.vfat and mtools: twelve
# 4 KiB files of random bytes, every other one deleted, then a known picture
# copied in, which mtools writes into the gaps (fragmented; checked with The
# Sleuth Kit's istat, an independent tool). Reading every place
# (--sample-blocks over all of them) must find its blocks, must NOT find it
# whole at the place its first block implies (the MD5 of those bytes is not
# its own: checked with md5sum), and must confirm it through the file
# system, naming the file (path as a full scan names it). A second copy of
# the picture, deleted after the image was filled, is confirmed as deleted
# when its clusters are fragmented too. A raw image with no file system
# states that it could not be located.
set -u
CLI=$1
SHARED=$2
V=$SHARED/vectors/pdq/images
. "$(dirname "$0")/tu_image.sh"
[ -d "$V" ] || skip "the shared vectors are missing ($V)"
need "scripts/setup.sh installs it" mkfs.vfat mcopy mdel convert python3 istat ifind md5sum
scratch

mkdir known
convert "$V/bridge-mods/aaa-orig.jpg" -resize 90% -quality 90 known/k1.jpg || exit 1
convert "$V/reg-test-input/labelme-subset/q0291.jpg" -resize 300% -quality 90 known/k2.jpg || exit 1
"$CLI" index create idx >/dev/null || { echo "FAIL: index create"; exit 1; }
"$CLI" index import-files --blocks idx known >/dev/null 2>&1 || { echo "FAIL: import-files"; exit 1; }

mkfs.vfat -C -F 16 -S 512 -s 8 fr.img 40000 >/dev/null || { echo "FAIL: mkfs.vfat"; exit 1; }
python3 -c '
import random
r = random.Random(14)
for i in range(1, 25):
    open("f%02d.bin" % i, "wb").write(bytes(r.getrandbits(8) for _ in range(4096)))'
mcopy -i fr.img f0[1-9].bin f1[0-2].bin ::/ || exit 1
for i in 02 04 06 08 10; do mdel -i fr.img ::/f$i.bin || exit 1; done
mcopy -i fr.img known/k1.jpg ::/Pictures.jpg || exit 1
# k2: into gaps too, then deleted (its clusters stay as they were)
mcopy -i fr.img f1[3-9].bin f2[0-4].bin ::/ || exit 1
for i in 14 16 18 20 22; do mdel -i fr.img ::/f$i.bin || exit 1; done
mcopy -i fr.img known/k2.jpg ::/Gone.jpg || exit 1
mdel -i fr.img ::/Gone.jpg || exit 1

# Fragmented, says istat: the sectors of Pictures.jpg are not one run.
frag=$(istat fr.img "$(ifind -n /Pictures.jpg fr.img)" | python3 -c '
import sys
t = sys.stdin.read().split("Sectors:")[1].split()
s = [int(x) for x in t if x.isdigit()]
print(sum(1 for a, b in zip(s, s[1:]) if b != a + 1))')
check '[ "${frag:-0}" -gt 0 ]' "the picture is fragmented in the image (istat)"

"$CLI" scan --sample-blocks 1000000 --index idx --out s.jsonl fr.img 2>/dev/null
check '[ $? -eq 1 ]' "sampling finds known blocks (exit 1)"
python3 - s.jsonl known/k1.jpg known/k2.jpg fr.img <<'PY' || fail=1
import json, sys, hashlib
recs = [json.loads(l) for l in open(sys.argv[1])]
kf = {r["name"]: r for r in recs if r["record"] == "known_file"}
img = open(sys.argv[4], "rb").read()
ok = True
def need(c, what):
    global ok
    if not c: print("FAIL:", what); ok = False
for name, want_path, alloc in (("k1.jpg", "fr.img!p0/Pictures.jpg", "allocated"),
                               ("k2.jpg", "fr.img!p0/Gone.jpg", "deleted")):
    data = open(sys.argv[2] if name == "k1.jpg" else sys.argv[3], "rb").read()
    r = kf.get(name)
    need(r is not None, "%s hit" % name)
    if r is None: continue
    need(r["md5"] == hashlib.md5(data).hexdigest(), "%s: its MD5 (md5 of the file)" % name)
    # where its first block lies, the image does not hold it whole
    first = [b for b in recs if b["record"] == "block" and b["file"] == name and b["block"] == 0]
    need(len(first) == 1, "%s: its first block found" % name)
    if first:
        o = first[0]["offset"]
        need(hashlib.md5(img[o:o + len(data)]).hexdigest() != r["md5"], "%s: not whole at its first block" % name)
    need(r["confirmed"] is True and r.get("confirmed_via") == "file system", "%s: confirmed through the file system: %r" % (name, r))
    need(r.get("path", "").lower() == want_path.lower() and r.get("alloc") == alloc, "%s: path and alloc %r %r" % (name, r.get("path"), r.get("alloc")))
s = recs[-1]
need(s["files_confirmed"] == 2, "summary: 2 files confirmed")
sys.exit(0 if ok else 1)
PY

# No file system (the same bytes with the boot sector and FATs zeroed): the
# hits stay unconfirmed, and the note says why.
cp fr.img nofs.img
dd if=/dev/zero of=nofs.img bs=512 count=64 conv=notrunc status=none
"$CLI" scan --sample-blocks 1000000 --index idx --out n.jsonl nofs.img 2>/dev/null
check '[ $? -eq 1 ]' "sampling without a file system finds known blocks"
python3 - n.jsonl <<'PY' || fail=1
import json, sys
kf = [r for (r) in (json.loads(l) for l in open(sys.argv[1])) if r["record"] == "known_file"]
ok = len(kf) == 2 and all(r["confirmed"] is False and "no file system" in r["note"] for r in kf)
if not ok: print("FAIL: without a file system: %r" % kf)
sys.exit(0 if ok else 1)
PY

[ $fail -eq 0 ] && echo "test_image_sample_fs: all checks passed"
exit $fail
