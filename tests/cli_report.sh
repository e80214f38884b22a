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

. "$(dirname "$0")/report_fixture.sh"

# jsonl: the whole report back, byte for byte (records read back and
# re-serialised; header and summary copied).
"$CLI" report jsonl "$tmp/r.jsonl" > "$tmp/re.jsonl"
check '[ $? -eq 0 ] && cmp -s "$tmp/r.jsonl" "$tmp/re.jsonl"' "report jsonl equals the scan's report"
check 'grep -q "\"flags\":\[\"thumbnail-differs\"\],\"embedded\":\[{\"kind\":\"exif-thumbnail\"" "$tmp/re.jsonl"' "embedded pictures and flags are re-emitted"
# A report of the older format 1 (made here from this one as that version
# wrote it: no list_id, no scan_error, report_format 1): its JSONL comes
# back byte for byte, and its CSV rows are the same as this report's.
python3 - "$tmp/r.jsonl" "$tmp/v1.jsonl" <<'PY'
import re, sys
out = []
for l in open(sys.argv[1], "rb").read().splitlines(True):
    if l.startswith(b'{"record":"header"'): l = l.replace(b'"report_format":2,', b'"report_format":1,', 1)
    if l.startswith(b'{"record":"file"'): l = re.sub(rb',"list_id":\d+', b"", l).replace(b',"scan_error":true', b"")
    out.append(l)
open(sys.argv[2], "wb").write(b"".join(out))
PY
"$CLI" report jsonl "$tmp/v1.jsonl" > "$tmp/v1.re.jsonl"
check '[ $? -eq 0 ] && cmp -s "$tmp/v1.jsonl" "$tmp/v1.re.jsonl" && ! cmp -s "$tmp/v1.jsonl" "$tmp/r.jsonl"' "report jsonl of a format-1 report equals it"
"$CLI" report csv "$tmp/v1.jsonl" > "$tmp/v1.csv"
check '[ $? -eq 0 ] && diff <(grep -v "^#" "$tmp/r.csv") <(grep -v "^#" "$tmp/v1.csv") >/dev/null' "report csv of a format-1 report"
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
    def attr(e, k):
        hx = e.get(k + "_hex")
        return bytes.fromhex(hx) if hx is not None else e.get(k).encode()
    if ([(m.get("kind"), attr(m, "list")) for m in ms] !=
            [(m["kind"], m["list"].encode("utf-8", "surrogateescape")) for m in r["matches"]]):
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
allrecs = [r for r in recs if r["record"] == "file"]
recs = [r for r in allrecs if "read_bytes" in r]
want, md5_of = {}, {}
for r in allrecs:
    if r["type"] == "hardlink" and r.get("hardlink_of") in md5_of:
        want[md5_of[r["hardlink_of"]]]["paths"].append(r["path"])
    if "read_bytes" not in r: continue
    md5_of[r["path"]] = r["md5"]
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
if not any(r["type"] == "hardlink" for r in allrecs): print("FAIL: no hard link in the test data"); ok = False
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

# Hostile names stay inert and recoverable in CSV: no cell a spreadsheet
# would run as a formula; the path column, with one leading ' dropped and
# \xNN and \\ undone, gives every record's path bytes back.
python3 - "$tmp/r.jsonl" "$tmp/re.csv" <<'PY' || fail=1
import csv, io, json, re, sys
recs = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
want = {r["path"].encode("utf-8", "surrogateescape") for r in recs if r["record"] == "file"}
text = open(sys.argv[2], encoding="utf-8").read()
rows = list(csv.reader(io.StringIO("".join(l for l in text.splitlines(True) if not l.startswith("#")))))[1:]
ok = True
def undo(c):
    if c[:1] == "'": c = c[1:]
    out = bytearray()
    for m in re.finditer(r"\\x([0-9a-f]{2})|\\\\|(.)", c, re.S):
        if m.group(1): out.append(int(m.group(1), 16))
        elif m.group(2) is None: out += b"\\"
        else: out += m.group(2).encode()
    return bytes(out)
for row in rows:
    for cell in row:
        if cell[:1] in ("=", "+", "-", "@"):
            print("FAIL: csv formula cell", repr(cell)); ok = False
got = {undo(r[0]) for r in rows}
if got != want: print("FAIL: csv paths", got ^ want); ok = False
if not any(p.startswith(b"=") or b"/=" in p for p in want): print("FAIL: no formula name planted"); ok = False
if not ok: sys.exit(1)
PY

# html: one page, inert whatever the names: only the tags and attributes
# the writer itself uses (no <img>, <i>, no on* handler, no style, src or
# href attribute), one <script> and one <style> whose SHA-256 the
# Content-Security-Policy names (default-src 'none', nothing unsafe), every
# hostile name shown as text, one hit-table row per match of a hit file.
"$CLI" report html -o "$tmp/r.html" "$tmp/r.jsonl"
check '[ $? -eq 0 ]' "report html"
python3 - "$tmp/r.jsonl" "$tmp/r.html" "$HOSTILE_DEVICE" <<'PY' || fail=1
import base64, hashlib, json, sys
from html.parser import HTMLParser
recs = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
files = [r for r in recs if r["record"] == "file"]
hit_rows = sum(len(r["matches"]) for r in files if any(m["disposition"] == "alert" for m in r["matches"]))
ALLOWED = set("html head meta title style body header h1 h2 h3 p strong section dl dt dd div "
              "figure figcaption svg rect text table caption thead tbody tr th td button footer "
              "script".split())
class P(HTMLParser):
    def __init__(s):
        super().__init__(convert_charrefs=True)
        s.bad, s.stack, s.text, s.scripts, s.styles, s.csp, s.rows, s.title = [], [], [], [], [], None, 0, ""
    def handle_starttag(s, tag, attrs):
        if tag not in ALLOWED: s.bad.append(tag)
        for k, v in attrs:
            if k.startswith("on") or k in ("style", "src", "href", "srcdoc", "action", "formaction"):
                s.bad.append(tag + " " + k)
        a = dict(attrs)
        if tag == "meta" and a.get("http-equiv") == "Content-Security-Policy": s.csp = a["content"]
        if tag == "tr" and "hit-table" in s.stack_ids() and s.stack[-1][0] == "tbody": s.rows += 1
        if tag not in ("meta",): s.stack.append((tag, a.get("id")))
    def stack_ids(s): return [i for t, i in s.stack]
    def handle_endtag(s, tag):
        while s.stack:
            t, i = s.stack.pop()
            if t == tag: break
    def handle_data(s, d):
        top = s.stack[-1][0] if s.stack else None
        if top == "script": s.scripts.append(d)
        elif top == "style": s.styles.append(d)
        elif top == "title" and len(s.stack) >= 2 and s.stack[-2][0] == "head": s.title += d
        else: s.text.append(d)
p = P(); p.feed(open(sys.argv[2], encoding="utf-8").read()); p.close()
ok = True
if p.bad: print("FAIL: html has", sorted(set(p.bad))); ok = False
h = lambda t: "'sha256-" + base64.b64encode(hashlib.sha256(t.encode()).digest()).decode() + "'"
csp = p.csp or ""
if (len(p.scripts) != 1 or len(p.styles) != 1 or "default-src 'none'" not in csp or "unsafe" in csp
        or "script-src " + h(p.scripts[0]) not in csp or "style-src " + h(p.styles[0]) not in csp):
    print("FAIL: html CSP / script / style", csp); ok = False
text = "".join(p.text)
for name in ["<img src=x onerror=alert(1)>.jpg", "</script>.png", '=HYPERLINK("http:__x","y").jpg',
             "\\x1b[31m\\x0a\\x0d\\x01 tail.jpg", "bad\\xff\\xfe utf8 & 'quote'.jpg",
             "<i>md5</i>"]:
    if name not in text: print("FAIL: html does not show", repr(name)); ok = False
if sys.argv[3] not in p.title: print("FAIL: html title", repr(p.title)); ok = False
if p.rows != hit_rows or hit_rows < 4: print("FAIL: html hit rows", p.rows, hit_rows); ok = False
if not ok: sys.exit(1)
PY

# scan --also FORMAT:FILE: the same files `imgtriage report` makes from the
# scan's JSONL; its files are checked like --out before the scan.
"$CLI" scan --quiet --sha256 --index "$idx" --out "$tmp/s.jsonl" --also "html:$tmp/s.html" \
  --also "dfxml:$tmp/s.dfxml" --also "vics:$tmp/s.vics" "$ev" 2>/dev/null
check '[ $? -eq 1 ]' "scan --also: exit 1 (hits)"
for f in html dfxml vics; do
  "$CLI" report $f "$tmp/s.jsonl" > "$tmp/s.$f.want"
  check 'cmp -s "$tmp/s.$f" "$tmp/s.$f.want"' "scan --also $f equals report $f"
done
"$CLI" scan --quiet --index "$idx" --also "html:$tmp/x.html" "$ev" >/dev/null 2>&1
check '[ $? -eq 2 ] && [ ! -e "$tmp/x.html" ]' "--also without --out is refused"
"$CLI" scan --quiet --index "$idx" --out "$tmp/y.jsonl" --also "html:$ev/x.html" "$ev" >/dev/null 2>&1
check '[ $? -eq 2 ] && [ ! -e "$ev/x.html" ] && [ ! -e "$tmp/y.jsonl" ]' "--also inside the evidence is refused before the scan"
"$CLI" scan --quiet --index "$idx" --out "$tmp/z.jsonl" --also "csv:$tmp/z.jsonl" "$ev" >/dev/null 2>&1
check '[ $? -eq 2 ] && [ ! -e "$tmp/z.jsonl" ]' "--also over the report itself is refused"
"$CLI" scan --quiet --index "$idx" --out "$tmp/w.jsonl" --also "pdf:$tmp/w.pdf" "$ev" >/dev/null 2>&1
check '[ $? -eq 2 ]' "--also with an unknown format is refused"

exit $fail
