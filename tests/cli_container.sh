#!/usr/bin/env bash
# tests/cli_container.sh CLI SHARED -- issue 18's end-to-end test: known
# pictures (altered copies of the PDQ vector images) planted inside a ZIP, a
# ZIP inside a 7z, a TAR.GZ, a DOCX, a PDF (a DCTDecode image) and an
# encrypted ZIP, among unrelated archives. The index holds the reference
# hasher's own hashes of the originals (cpp-shipped-imagemagick.csv), so the
# expected matches come from outside the code under test. Every planted
# picture must be found under its in-container path, the encrypted one
# reported as such (never silently skipped), the unrelated ones give no hit;
# the same records on 1 and 2 threads and with a tiny held-records budget
# (the container then expanded again when emitted); `imgtriage report`
# keeps the container fields; --resume over a report cut inside a
# container's members gives the full report.
set -u
CLI=$1 SHARED=$2
tmp=$(mktemp -d)
[ -n "${KEEP:-}" ] || trap 'rm -rf "$tmp"' EXIT; echo "tmp=$tmp" >&2
fail=0
check() { if ! eval "$1"; then echo "FAIL: $2"; fail=1; fi; }
need() {
  if ! command -v "$1" >/dev/null; then
    echo "SKIP: $1 is missing (scripts/setup.sh installs it)"
    [ "${CI:-}" = true ] && exit 1
    exit 77
  fi
}
for t in zip 7z tar gzip convert python3 qpdf; do need $t; done
imgs=$SHARED/vectors/pdq/images
csv=$SHARED/vectors/pdq/observed/cpp-shipped-imagemagick.csv
if [ ! -d "$imgs" ] || [ ! -f "$csv" ]; then
  echo "SKIP: the shared PDQ vectors are missing ($SHARED)"
  [ "${CI:-}" = true ] && exit 1
  exit 77
fi

# Altered copies (recompressed, resized, mirrored: the mirror is matched
# through the dihedral variants) of six known pictures of PDQ quality 100;
# the index gets the reference hashes of the originals.
mkdir -p "$tmp/alt" "$tmp/ev" "$tmp/plain"
while read -r q alt; do
  convert "$imgs/$q.jpg" $alt "$tmp/alt/$(basename $q).jpg" 2>/dev/null
  grep ",$q.jpg\$" "$csv" >> "$tmp/known.csv"
done <<'EOF2'
reg-test-input/labelme-subset/q0122 -quality 75
reg-test-input/labelme-subset/q0746 -resize 90% -quality 80
misc-images/wee -flop -quality 85
reg-test-input/labelme-subset/q0291 -resize 120% -quality 85
reg-test-input/labelme-subset/q1050 -resize 90% -quality 80
reg-test-input/labelme-subset/q2821 -quality 75
EOF2
check '[ "$(wc -l < "$tmp/known.csv")" -eq 6 ]' "six reference hashes"
"$CLI" index create "$tmp/idx" >/dev/null
"$CLI" index import --quiet --name planted --format pdq-csv "$tmp/idx" "$tmp/known.csv" >/dev/null

# Unrelated pictures: ImageMagick plasma (fixed seeds).
for s in 1 2 3; do convert -size 200x160 -seed $s plasma: "$tmp/plain/p$s.jpg"; done

cd "$tmp/alt"
mkdir -p photos && cp q0122.jpg photos/holiday.jpg
zip -q -X "$tmp/ev/a.zip" photos/holiday.jpg
cp q0746.jpg x.jpg && zip -q -X inner.zip x.jpg && 7z a -bd -bso0 -bsp0 "$tmp/ev/b.7z" inner.zip >/dev/null
cp wee.jpg c.jpg && tar czf "$tmp/ev/c.tar.gz" c.jpg
mkdir -p docx/word/media && cp q0291.jpg docx/word/media/image1.jpeg
printf '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>' > "docx/[Content_Types].xml"
(cd docx && zip -q -X -r "$tmp/ev/d.docx" "[Content_Types].xml" word)
# A PDF holding the picture as a DCTDecode image, written by Python (the
# JPEG's own bytes as the stream, as every PDF writer embeds a JPEG).
python3 - q1050.jpg "$tmp/ev/e.pdf" <<'EOF'
import struct, sys
jpg = open(sys.argv[1], "rb").read()
i, w, h = 2, 0, 0
while i < len(jpg):
    m, n = jpg[i + 1], struct.unpack(">H", jpg[i + 2:i + 4])[0]
    if m in (0xC0, 0xC1, 0xC2):
        h, w = struct.unpack(">HH", jpg[i + 5:i + 9]); break
    i += 2 + n
content = b"q %d 0 0 %d 0 0 cm /Im1 Do Q" % (w, h)
objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Resources << /XObject << /Im1 4 0 R >> >> /Contents 5 0 R >>" % (w, h),
        b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter /DCTDecode /Length %d >>\nstream\n" % (w, h, len(jpg)) + jpg + b"\nendstream",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream"]
out, offs = b"%PDF-1.4\n", []
for k, o in enumerate(objs):
    offs.append(len(out)); out += b"%d 0 obj\n" % (k + 1) + o + b"\nendobj\n"
x = len(out)
out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1) + b"".join(b"%010d 00000 n \n" % o for o in offs)
out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, x)
open(sys.argv[2], "wb").write(out)
EOF
cp q2821.jpg secret.jpg && zip -q -X -P hunter2 "$tmp/ev/f-encrypted.zip" secret.jpg
cd "$tmp/plain"
zip -q -X "$tmp/ev/g-unrelated.zip" p1.jpg p2.jpg && tar czf "$tmp/ev/h-unrelated.tar.gz" p3.jpg
cp p1.jpg "$tmp/ev/loose.jpg"
# A gzipped text file: one member, its bytes (an earlier build let
# libarchive take the text for an mtree spec naming a file "hello").
printf 'hello\n' > notes.txt && gzip -9n -c notes.txt > "$tmp/ev/i-notes.txt.gz"
cd "$tmp"

"$CLI" scan --quiet --index "$tmp/idx" --out "$tmp/r.jsonl" "$tmp/ev" 2>"$tmp/r.err"
st=$?
check '[ $st -eq 1 ]' "known material found: exit 1 (got $st)"
hit() { # $1: the member path; it must be a record with a PDQ match on "planted"
  python3 - "$tmp/r.jsonl" "$1" <<'EOF'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if '"record":"file"' in l]
r = [x for x in recs if x["path"] == sys.argv[2]]
sys.exit(0 if len(r) == 1 and any(m["kind"] == "pdq" and m["list"] == "planted"
                                  and m["distance"] <= 31 for m in r[0]["matches"]) else 1)
EOF
}
ev=$tmp/ev
check 'hit "$ev/a.zip!photos/holiday.jpg"' "the ZIP's picture is found"
check 'hit "$ev/b.7z!inner.zip!x.jpg"' "the picture in a ZIP inside a 7z is found"
check 'hit "$ev/c.tar.gz!c.jpg"' "the TAR.GZ's picture is found"
check 'hit "$ev/d.docx!word/media/image1.jpeg"' "the DOCX's picture is found"
check 'hit "$ev/e.pdf!obj4.jpg"' "the PDF's DCT image is found"
python3 - "$tmp/r.jsonl" "$ev" <<'EOF' || fail=1
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
recs = {x["path"]: x for x in lines if x["record"] == "file"}
summ = lines[-1]
ev = sys.argv[2]
bad = []
def want(c, what):
    if not c: bad.append(what)
hits = sorted(p for p, x in recs.items() if any(m["disposition"] == "alert" for m in x["matches"]))
want(hits == sorted([ev + "/a.zip!photos/holiday.jpg", ev + "/b.7z!inner.zip!x.jpg",
                     ev + "/c.tar.gz!c.jpg", ev + "/d.docx!word/media/image1.jpeg",
                     ev + "/e.pdf!obj4.jpg"]), "exactly the planted pictures are hits: %s" % hits)
e = recs.get(ev + "/f-encrypted.zip!secret.jpg", {})
want(e.get("status") == "encrypted" and "pdq" not in e and "md5" not in e,
     "the encrypted member is reported encrypted, not hashed: %s" % e)
c = recs.get(ev + "/f-encrypted.zip", {}).get("container", {})
want(c.get("encrypted") == 1, "the encrypted ZIP's record counts it: %s" % c)
want(summ["containers"]["encrypted"] == 1, "summary counts 1 encrypted container: %s" % summ.get("containers"))
want(summ["findings_by_kind"].get("encrypted") == 1, "findings_by_kind: encrypted 1")
want("1 encrypted container not examined" in summ["priority_explanation"], "the priority explanation names it")
# member fields: depth, container record before its members, members count
n = recs[ev + "/b.7z!inner.zip"]
want(n["member"]["depth"] == 1 and n["container"]["members"] == 1 and n["format"] == "zip", "nested zip record: %s" % n)
want(recs[ev + "/b.7z!inner.zip!x.jpg"]["member"]["depth"] == 2, "depth 2")
want(recs[ev + "/b.7z"]["container"]["members"] == 2, "7z: 2 member records follow")
order = [x["path"] for x in lines if x["record"] == "file"]
i = order.index(ev + "/b.7z")
want(order[i + 1:i + 3] == [ev + "/b.7z!inner.zip", ev + "/b.7z!inner.zip!x.jpg"], "member order %s" % order[i:i+3])
want([x["seq"] for x in lines if x["record"] == "file"] == list(range(len(order))), "seq counts members")
# the container keeps the digests of its own bytes
import hashlib
want(recs[ev + "/a.zip"]["md5"] == hashlib.md5(open(ev + "/a.zip", "rb").read()).hexdigest(), "container digests")
want(recs[ev + "/a.zip!photos/holiday.jpg"]["md5"] ==
     hashlib.md5(open(sys.argv[2] + "/../alt/q0122.jpg", "rb").read()).hexdigest(), "member digests")
want(recs[ev + "/a.zip!photos/holiday.jpg"]["member"]["size"] == len(open(sys.argv[2] + "/../alt/q0122.jpg", "rb").read()), "member size")
want("mtime" in recs[ev + "/a.zip!photos/holiday.jpg"]["member"], "member mtime")
want(len([p for p in order if p.startswith(ev + "/g-unrelated.zip!")]) == 2, "unrelated zip expanded")
g = recs.get(ev + "/i-notes.txt.gz!i-notes.txt", {})
want(g.get("md5") == hashlib.md5(b"hello\n").hexdigest() and g.get("read_bytes") == 6 and
     [p for p in order if p.startswith(ev + "/i-notes.txt.gz!")] == [ev + "/i-notes.txt.gz!i-notes.txt"],
     "a gzipped text file: one member holding its bytes: %s" % g)
for b in bad: print("FAIL:", b)
sys.exit(1 if bad else 0)
EOF
check 'grep -q "1 encrypted (not examined)" "$tmp/r.err"' "the human summary names the encrypted container"

# Other encryption: a 7z whose directory is encrypted (-mhe), a 7z whose
# data is, a PDF that needs a user password, and one with only an owner
# password (it opens: its image is hashed).
mkdir -p "$tmp/ev2"
(cd "$tmp/alt" && 7z a -bd -bso0 -bsp0 -psecret -mhe=on "$tmp/ev2/hdr.7z" q1050.jpg >/dev/null &&
 7z a -bd -bso0 -bsp0 -psecret "$tmp/ev2/data.7z" q1050.jpg >/dev/null)
qpdf --encrypt user owner 256 -- "$ev/e.pdf" "$tmp/ev2/locked.pdf"
qpdf --encrypt "" owner 256 -- "$ev/e.pdf" "$tmp/ev2/owner-only.pdf"
"$CLI" scan --quiet --index "$tmp/idx" --out "$tmp/r2.jsonl" "$tmp/ev2" 2>/dev/null
python3 - "$tmp/r2.jsonl" "$tmp/ev2" <<'EOF' || fail=1
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
recs = {x["path"]: x for x in lines if x["record"] == "file"}
d, bad = sys.argv[2], []
def want(c, what):
    if not c: bad.append(what)
c = recs[d + "/hdr.7z"].get("container", {})
want(c.get("encrypted") == 1 and c.get("members") == 0 and "encrypted" in c.get("note", ""), "7z -mhe: %s" % c)
want(recs[d + "/data.7z!q1050.jpg"]["status"] == "encrypted", "7z data encrypted")
c = recs[d + "/locked.pdf"].get("container", {})
want(c.get("encrypted") == 1 and "password" in c.get("note", ""), "PDF with a user password: %s" % c)
o = [x for p, x in recs.items() if p.startswith(d + "/owner-only.pdf!obj") and p.endswith(".jpg")]
want(len(o) == 1 and any(m["list"] == "planted" for m in o[0]["matches"]),
     "owner-password PDF (qpdf renumbers its objects): its image is found")
want(lines[-1]["containers"]["encrypted"] == 3 and "3 encrypted containers not examined" in lines[-1]["priority_explanation"],
     "summary: 3 encrypted containers")
for b in bad: print("FAIL:", b)
sys.exit(1 if bad else 0)
EOF

# The same records whatever the thread count, and when the held-records
# budget is too small to keep any member (each container then expanded
# again when its turn to be emitted comes).
strip() { grep '"record":"file"' "$1"; }
"$CLI" scan --quiet --threads 1 --index "$tmp/idx" --out "$tmp/t1.jsonl" "$ev" 2>/dev/null
"$CLI" scan --quiet --threads 2 --max-held-bytes 1 --index "$tmp/idx" --out "$tmp/t2.jsonl" "$ev" 2>/dev/null
check 'cmp -s <(strip "$tmp/r.jsonl") <(strip "$tmp/t1.jsonl")' "1 thread: the same records"
check 'cmp -s <(strip "$tmp/r.jsonl") <(strip "$tmp/t2.jsonl")' "held budget 1 byte: the same records"

# imgtriage report keeps the container fields (JSONL back byte for byte).
"$CLI" report jsonl "$tmp/r.jsonl" -o "$tmp/back.jsonl" 2>/dev/null
check 'cmp -s <(strip "$tmp/r.jsonl") <(strip "$tmp/back.jsonl")' "report jsonl: the records back byte for byte"

# Resume: a report cut after the 7z's first member record (a kill between
# lines) must not claim the 7z: the result equals the full report.
head -n "$(grep -n 'b.7z!inner.zip"' "$tmp/r.jsonl" | cut -d: -f1)" "$tmp/r.jsonl" > "$tmp/cut.jsonl"
"$CLI" scan --quiet --index "$tmp/idx" --resume "$tmp/cut.jsonl" --out "$tmp/cut.jsonl" "$ev" 2>/dev/null
check 'cmp -s <(strip "$tmp/r.jsonl") <(strip "$tmp/cut.jsonl")' "resume inside a container's members: the full records"
head -n "$(grep -n 'c.tar.gz!c.jpg"' "$tmp/r.jsonl" | cut -d: -f1)" "$tmp/r.jsonl" > "$tmp/cut2.jsonl"
"$CLI" scan --quiet --index "$tmp/idx" --resume "$tmp/cut2.jsonl" --out "$tmp/cut2.jsonl" "$ev" 2>/dev/null
check 'cmp -s <(strip "$tmp/r.jsonl") <(strip "$tmp/cut2.jsonl")' "resume after a whole container: the full records"

# --no-containers: containers are files like any other.
"$CLI" scan --quiet --no-containers --index "$tmp/idx" --out "$tmp/nc.jsonl" "$ev" 2>/dev/null
check '[ $? -eq 0 ] && ! grep -q "!" <(strip "$tmp/nc.jsonl" | grep -o "\"path\":\"[^\"]*\"")' "--no-containers: no members"
"$CLI" scan --help | grep -q -- "--max-expanded-bytes"; check '[ $? -eq 0 ]' "--help lists the container limits"

[ $fail -eq 0 ] && echo "cli_container: all passed"
exit $fail
