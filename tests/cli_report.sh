#!/usr/bin/env bash
# tests/cli_report.sh CLI SHARED -- `imgtriage report FORMAT REPORT.jsonl`:
# converting a real scan's report without rescanning. The JSONL re-emitted
# equals the scan's records; CSV equals what `scan --format csv` wrote
# itself; --hits-only keeps exactly the records with an alerting match.
set -u
CLI=$1
SHARED=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { if ! eval "$1"; then echo "FAIL: $2"; fail=1; fi; }
command -v convert >/dev/null || { echo "SKIP: ImageMagick convert is missing"; [ "${CI:-}" = true ] && exit 1; exit 77; }

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
md5sum "$ev/DCIM/p4.jpg" >> "$tmp/known.md5"
md5sum "$ev/DCIM/p2.jpg" > "$tmp/known.md5"
md5sum "$ev/docs/good.txt" > "$tmp/good.md5"
idx=$tmp/index
"$CLI" index create "$idx" >/dev/null
"$CLI" index import --quiet --name known-photos --scheme projectvic --category 1 --format pdq-csv "$idx" "$tmp/known.csv" >/dev/null
"$CLI" index import --quiet --name known-md5 --scheme custom --category 2 --format md5sum "$idx" "$tmp/known.md5" >/dev/null
"$CLI" index import --quiet --name good --known-good --format md5sum "$idx" "$tmp/good.md5" >/dev/null
"$CLI" scan --quiet --sha256 --index "$idx" --device phone --case C-1 --out "$tmp/r.jsonl" "$ev" 2>/dev/null
check '[ $? -eq 1 ]' "the scan finds the known pictures"
"$CLI" scan --quiet --sha256 --index "$idx" --format csv --out "$tmp/r.csv" "$ev" 2>/dev/null

# jsonl: the whole report back, byte for byte (records read back and
# re-serialised; header and summary copied).
"$CLI" report jsonl "$tmp/r.jsonl" > "$tmp/re.jsonl"
check '[ $? -eq 0 ] && cmp -s "$tmp/r.jsonl" "$tmp/re.jsonl"' "report jsonl equals the scan's report"
# csv: the rows equal the ones the scan wrote itself.
"$CLI" report csv "$tmp/r.jsonl" > "$tmp/re.csv"
check '[ $? -eq 0 ] && diff <(grep -v "^#" "$tmp/r.csv") <(grep -v "^#" "$tmp/re.csv") >/dev/null' "report csv rows equal scan --format csv"
check 'head -n 1 "$tmp/re.csv" | grep -q "\"format\":\"csv\"}"' "report csv: the header says csv"
# --hits-only: exactly the records with an alerting match (selected here by
# python from the scan's own lines), header marked hits_only.
"$CLI" report jsonl --hits-only "$tmp/r.jsonl" > "$tmp/hits.jsonl"
python3 - "$tmp/r.jsonl" "$tmp/hits.jsonl" <<'PY' || fail=1
import json, sys
full = open(sys.argv[1], 'rb').read().splitlines(True)
hits = open(sys.argv[2], 'rb').read().splitlines(True)
want = [l for l in full if json.loads(l).get("record") == "file" and
        any(m["disposition"] == "alert" for m in json.loads(l)["matches"])]
got = [l for l in hits if json.loads(l).get("record") == "file"]
if len(want) < 2 or got != want:
    print("FAIL: --hits-only records", len(want), len(got)); sys.exit(1)
h = json.loads(hits[0])
if h["options"]["hits_only"] is not True or hits[-1] != full[-1]:
    print("FAIL: --hits-only header/summary"); sys.exit(1)
PY

# Errors: not a report, unknown format, output over the report or inside
# the evidence or the index.
echo '{"x":1}' > "$tmp/not.jsonl"
"$CLI" report jsonl "$tmp/not.jsonl" >/dev/null 2>&1; check '[ $? -eq 2 ]' "not a report gives 2"
"$CLI" report pdf "$tmp/r.jsonl" >/dev/null 2>&1; check '[ $? -eq 2 ]' "an unknown format gives 2"
"$CLI" report csv -o "$tmp/r.jsonl" --force "$tmp/r.jsonl" >/dev/null 2>&1; check '[ $? -eq 2 ] && cmp -s "$tmp/r.jsonl" "$tmp/re.jsonl"' "-o over the report itself is refused"
"$CLI" report csv -o "$ev/out.csv" "$tmp/r.jsonl" >/dev/null 2>&1; check '[ $? -eq 2 ] && [ ! -e "$ev/out.csv" ]' "-o inside the evidence is refused"
"$CLI" report csv -o "$idx/out.csv" "$tmp/r.jsonl" >/dev/null 2>&1; check '[ $? -eq 2 ] && [ ! -e "$idx/out.csv" ]' "-o inside the index is refused"
"$CLI" report csv -o "$tmp/ok.csv" "$tmp/r.jsonl"; check '[ $? -eq 0 ] && cmp -s "$tmp/ok.csv" "$tmp/re.csv"' "-o writes the file"

# dfxml: valid against the DFXML 2.0.0-beta.0 schema, and every fileobject
# holds its record's exact name bytes (text, or imgtriage:hex where XML
# cannot hold them), size, inode and digests (read by python's XML parser).
xsd=$SHARED/schemas/dfxml/dfxml.xsd
"$CLI" report dfxml -o "$tmp/r.dfxml" "$tmp/r.jsonl"
check '[ $? -eq 0 ]' "report dfxml"
if ! command -v xmllint >/dev/null || [ ! -f "$xsd" ]; then
  echo "SKIP: xmllint (libxml2-utils) or $xsd is missing: DFXML not validated"
  [ "${CI:-}" = true ] && fail=1
else
  check 'xmllint --noout --schema "$xsd" "$tmp/r.dfxml" 2>"$tmp/xmllint.err"' "DFXML validates: $(head -c 300 "$tmp/xmllint.err" 2>/dev/null)"
fi
python3 - "$tmp/r.jsonl" "$tmp/r.dfxml" <<'PY' || fail=1
import json, sys, xml.etree.ElementTree as ET
D = "{http://www.forensicswiki.org/wiki/Category:Digital_Forensics_XML}"
I = "{https://github.com/imgtriage/imgtriage/ns/report/2}"
recs = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
recs = [r for r in recs if r["record"] == "file"]
fos = ET.parse(sys.argv[2]).getroot().findall(D + "fileobject")
ok = len(fos) == len(recs) and len(recs) >= 12
for r, fo in zip(recs, fos):
    fn = fo.find(D + "filename")
    hx = fn.get(I + "hex")
    name = bytes.fromhex(hx) if hx is not None else fn.text.encode()
    if name != r["path"].encode("utf-8", "surrogateescape"):
        print("FAIL: dfxml name", name, r["path"]); ok = False
    if hx is not None and "\ufffd" not in fn.text:
        print("FAIL: dfxml hex without a replaced character"); ok = False
    if "size" in r and int(fo.find(D + "filesize").text) != r["size"]: ok = False
    if "inode" in r and int(fo.find(D + "inode").text) != r["inode"]: ok = False
    got = {h.get("type"): h.text for h in fo.findall(D + "hashdigest")}
    want = {k: r[k] for k in ("md5", "sha1", "sha256") if k in r}
    if got != want: print("FAIL: dfxml digests", got, want); ok = False
    pdq = fo.find(I + "pdq")
    if (pdq.text if pdq is not None else None) != r.get("pdq"): ok = False
    ms = fo.findall(I + "match")
    if [(m.get("kind"), m.get("list")) for m in ms] != [(m["kind"], m["list"]) for m in r["matches"]]:
        print("FAIL: dfxml matches"); ok = False
if not ok: print("FAIL: dfxml content"); sys.exit(1)
PY

# vics: a VICS 2.0 case export whose media are the report's distinct files
# read (by MD5; expected values computed here from the JSONL records), with
# Category only from projectvic lists; it re-imports through our own VICS
# reader into a fresh index, whose export holds exactly what was exported.
"$CLI" report vics -o "$tmp/r.vics.json" "$tmp/r.jsonl"
check '[ $? -eq 0 ]' "report vics"
"$CLI" index create "$tmp/vidx" >/dev/null
"$CLI" index import --quiet --name case-export "$tmp/vidx" "$tmp/r.vics.json" >/dev/null
check '[ $? -eq 0 ]' "the VICS export imports"
"$CLI" index export "$tmp/vidx" > "$tmp/vidx.jsonl"
python3 - "$tmp/r.jsonl" "$tmp/r.vics.json" "$tmp/vidx.jsonl" <<'PY' || fail=1
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
recs = [r for r in recs if r["record"] == "file" and "read_bytes" in r]
want = {}
for r in recs:
    m = want.setdefault(r["md5"], {"sha1": r["sha1"], "sha256": r["sha256"], "pdq": r.get("pdq"),
                                   "size": r["read_bytes"], "cat": None, "paths": []})
    m["paths"].append(r["path"])
    for x in r["matches"]:
        if x["scheme"] == "projectvic" and x["category"] is not None:
            m["cat"] = x["category"]
doc = json.load(open(sys.argv[2], encoding="utf-8"))
ok = doc["@odata.context"].endswith("2.0.xml/US/$metadata#Cases") and len(doc["value"]) == 1
media = doc["value"][0]["Media"]
got = {}
for m in media:
    alt = {a["HashName"]: a["HashValue"] for a in m.get("AlternativeHashes", [])}
    got[m["MD5"]] = {"sha1": m["SHA1"], "sha256": alt.get("SHA256"), "pdq": alt.get("PDQ"),
                     "size": m["MediaSize"], "cat": m.get("Category"),
                     "paths": [f["FilePath"] + f["FileName"] for f in m["MediaFiles"]]}
    if m["IsPrecategorized"] != ("Category" in m) or any(f["Unallocated"] for f in m["MediaFiles"]):
        ok = False
if got != want:
    print("FAIL: vics media differ from the report's files"); ok = False
if not any(v["cat"] == 1 for v in want.values()) or not any(len(v["paths"]) > 1 for v in want.values()):
    print("FAIL: vics test data lacks a categorised or a repeated file"); ok = False
# The re-import: one entry per media object, same hashes, id and category.
lines = [json.loads(l) for l in open(sys.argv[3], encoding="utf-8")][1:]
back = {e["md5"]: e for e in lines}
if len(lines) != len(media): print("FAIL: vics re-import entries", len(lines), len(media)); ok = False
for m in media:
    e = back.get(m["MD5"])
    alt = {a["HashName"]: a["HashValue"] for a in m.get("AlternativeHashes", [])}
    if (not e or e["sha1"] != m["SHA1"] or e.get("sha256") != alt.get("SHA256") or
            e.get("pdq") != alt.get("PDQ") or e["lists"][0]["id"] != str(m["MediaID"]) or
            e["lists"][0]["category"] != m.get("Category")):
        print("FAIL: vics re-import differs", m["MediaID"], e); ok = False
if not ok: sys.exit(1)
PY

exit $fail
