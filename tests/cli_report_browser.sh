#!/usr/bin/env bash
# tests/cli_report_browser.sh CLI SHARED -- the HTML report as a person sees
# it: opened in headless Chromium (Debian's chromium), which runs the page's
# own script under its Content-Security-Policy. Checks the rendered DOM
# (title, hit-table rows, the three charts, the script ran), no console
# message (a CSP violation or script error prints one), no network request
# (Chromium's net log holds only the page's file:// URL; a control page
# that does fetch shows the check sees requests), and saves a screenshot as
# report-html.png in the build folder. Skips where chromium is missing,
# except under CI=true.
set -u
CLI=$1
SHARED=$2
BUILD=$(cd "$(dirname "$CLI")" && pwd)
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROMIUM" ]; then
  echo "SKIP: chromium is not installed (apt-get install chromium): the HTML report is not checked in a browser"
  [ "${CI:-}" = true ] && exit 1
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { if ! eval "$1"; then echo "FAIL: $2"; fail=1; fi; }
command -v convert >/dev/null || { echo "SKIP: ImageMagick convert is missing"; [ "${CI:-}" = true ] && exit 1; exit 77; }
. "$(dirname "$0")/report_fixture.sh"

"$CLI" report html -o "$tmp/r.html" "$tmp/r.jsonl"
check '[ $? -eq 0 ]' "report html"

# One headless run: --dump-dom prints the DOM after the page's script ran.
# The browser's own background traffic is switched off where a flag allows,
# and told apart from the page's requests by their initiator.
browse() { # $1 page, $2 net log, $3 dom out, $4 stderr out, rest: more flags
  local page=$1 net=$2 dom=$3 err=$4; shift 4
  timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu --user-data-dir="$tmp/ud" \
    --no-first-run --disable-background-networking --disable-component-update --disable-sync \
    --disable-default-apps --disable-extensions --disable-features=Translate,OptimizationHints,MediaRouter \
    --enable-logging=stderr --v=0 --log-net-log="$net" "$@" "file://$page" >"$dom" 2>"$err"
}
browse "$tmp/r.html" "$tmp/net.json" "$tmp/dom.html" "$tmp/err.txt" --dump-dom
check '[ $? -eq 0 ] && [ -s "$tmp/dom.html" ]' "chromium renders the page"
# The control: a page without CSP that loads an image over the network.
printf '<!DOCTYPE html><title>c</title><img src="http://127.0.0.1:9/x.png"><script>console.error("control")</script>' > "$tmp/control.html"
browse "$tmp/control.html" "$tmp/cnet.json" "$tmp/cdom.html" "$tmp/cerr.txt" --dump-dom

python3 - "$tmp/r.jsonl" "$tmp/dom.html" "$tmp/err.txt" "$tmp/net.json" "$tmp/r.html" \
  "$tmp/cerr.txt" "$tmp/cnet.json" "$tmp/control.html" "$HOSTILE_DEVICE" <<'PY' || fail=1
import json, sys
from html.parser import HTMLParser
jsonl, dom, err, net, page, cerr, cnet, cpage, device = sys.argv[1:]
recs = [json.loads(l) for l in open(jsonl, encoding="utf-8")]
files = [r for r in recs if r["record"] == "file"]
hit_rows = sum(len(r["matches"]) for r in files if any(m["disposition"] == "alert" for m in r["matches"]))
class P(HTMLParser):
    def __init__(s):
        super().__init__(convert_charrefs=True)
        s.stack, s.title, s.rows, s.figs, s.svgs, s.sortable = [], "", 0, set(), 0, False
    def handle_starttag(s, tag, attrs):
        a = dict(attrs)
        if tag == "html" and a.get("data-sortable") == "1": s.sortable = True
        ids = [i for t, i in s.stack]
        if tag == "tr" and "hit-table" in ids and s.stack and s.stack[-1][0] == "tbody": s.rows += 1
        if tag == "figure": s.figs.add(a.get("id"))
        if tag == "svg" and any(i and i.startswith("chart-") for i in ids): s.svgs += 1
        if tag not in ("meta", "br", "img", "input", "link"): s.stack.append((tag, a.get("id")))
    def handle_endtag(s, tag):
        while s.stack:
            if s.stack.pop()[0] == tag: break
    def handle_data(s, d):
        if s.stack and s.stack[-1][0] == "title" and len(s.stack) >= 2 and s.stack[-2][0] == "head":
            s.title += d
p = P(); p.feed(open(dom, encoding="utf-8").read())
ok = True
if p.title != "imgtriage report: " + device + ", case C-1": print("FAIL: title", repr(p.title)); ok = False
if p.rows != hit_rows or hit_rows < 4: print("FAIL: hit rows", p.rows, hit_rows); ok = False
if p.figs != {"chart-mtime", "chart-categories", "chart-folders"} or p.svgs != 3:
    print("FAIL: charts", p.figs, p.svgs); ok = False
if not p.sortable: print("FAIL: the page's own script did not run (CSP hash?)"); ok = False
def console(path): return [l for l in open(path, errors="replace") if ":CONSOLE" in l]
def urls(path):
    # Requests the page made: jobs started with the page as initiator (the
    # browser's own update and account traffic says "not an origin").
    d = json.load(open(path))
    start = d["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return {e["params"]["url"] for e in d.get("events", [])
            if e.get("type") == start and "url" in e.get("params", {})
            and e["params"].get("initiator") != "not an origin"}
if console(err): print("FAIL: console messages:", "".join(console(err))[:2000]); ok = False
u = urls(net) - {"file://" + page}
if u: print("FAIL: network requests:", u); ok = False
# The control shows both checks see what they look for.
if not console(cerr): print("FAIL: the control page's console error was not seen"); ok = False
if not any(x.startswith("http://127.0.0.1:9/") for x in urls(cnet)):
    print("FAIL: the control page's request was not seen in the net log", urls(cnet)); ok = False
if not ok: sys.exit(1)
PY

# A screenshot, as a person sees the page (kept in the build folder).
rm -f "$BUILD/report-html.png"
browse "$tmp/r.html" "$tmp/net2.json" "$tmp/shot.out" "$tmp/shot.err" --hide-scrollbars \
  --window-size=1280,2400 --screenshot="$BUILD/report-html.png"
check '[ -s "$BUILD/report-html.png" ]' "a screenshot is saved in $BUILD/report-html.png"
exit $fail
