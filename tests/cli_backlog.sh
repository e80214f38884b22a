#!/usr/bin/env bash
# tests/cli_backlog.sh CLI SHARED -- `imgtriage backlog` end to end (issue 16):
# 10 generated devices (4 hold altered or copied pictures of the shared PDQ
# vectors that a known list names by the reference hasher's own hashes; one
# is slow), previews and full scans with 2 workers, a worker killed with
# SIGKILL mid-device and another started: then the ranking puts every device
# with known material first (priorities worked out by hand from README's
# formula, not by the code), every report is complete with each file once,
# and the audit log holds every transition.
set -u
CLI=$1
SHARED=${2:-}
T=$(mktemp -d)
RUN=
cleanup() { [ -n "$RUN" ] && kill -9 "$RUN" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
fail=0
check() { if ! eval "$1"; then echo "FAIL: $2"; fail=1; fi; }
skip() {
  if [ "${CI:-}" = true ]; then echo "FAIL (CI=true): $1"; exit 1; fi
  echo "SKIP: $1"; exit 77
}
IMG=$SHARED/vectors/pdq/images
REF=$SHARED/vectors/pdq/observed/cpp-shipped-imagemagick.csv
[ -d "$IMG" ] && [ -f "$REF" ] || skip "the shared PDQ vectors are absent ($IMG)"
command -v sqlite3 >/dev/null || skip "the sqlite3 tool is absent (apt-get install sqlite3)"
command -v python3 >/dev/null || skip "python3 is absent"

# ---- usage and help ----
"$CLI" backlog --help | grep -q "Ranking: first the devices with known material"
check '[ $? -eq 0 ]' "--help explains the ranking"
"$CLI" backlog list "$T/none.db" >/dev/null 2>&1; check '[ $? -eq 2 ]' "a missing backlog: exit 2"
"$CLI" backlog init "$T/q.db" || fail=1
"$CLI" backlog add "$T/q.db" --case K --device X >/dev/null 2>&1; check '[ $? -eq 2 ]' "add without a source: exit 2"
"$CLI" backlog add "$T/q.db" --case K --device X --received 'yesterday' "$T" >/dev/null 2>&1
check '[ $? -eq 2 ]' "a received date that is not ISO 8601: exit 2"

# ---- the known lists: hashes from the reference hasher's CSV ----
ref() { grep ",$1\$" "$REF" | head -n 1 | cut -d, -f1; }
bridge=$(ref bridge-mods/aaa-orig.jpg); q0122=$(ref reg-test-input/labelme-subset/q0122.jpg)
q0291=$(ref reg-test-input/labelme-subset/q0291.jpg)
printf '%s,100,bridge\n%s,100,q0122\n' "$bridge" "$q0122" >"$T/a.csv"
printf '%s,100,q0291\n' "$q0291" >"$T/c.csv"
# 11 near-duplicates of q0122: one bit flipped each, at distinct places
python3 - "$q0122" >"$T/near.csv" <<'EOF'
import sys
h = int(sys.argv[1], 16)
for k in range(11):
    print("%064x,100,near-%d" % (h ^ (1 << (k * 23 + 5)), k))
EOF
"$CLI" index import -q --create --name "cat A" --scheme caid --category 1 "$T/idx" "$T/a.csv" || fail=1
"$CLI" index import -q --name "cat C" --scheme caid --category 3 "$T/idx" "$T/c.csv" || fail=1
"$CLI" index import -q --name "near duplicates" --scheme caid --category 1 "$T/idx" "$T/near.csv" || fail=1

# ---- 10 devices ----
E=$T/ev
txt() { for i in $(seq 1 "$2"); do echo "note $i of $1" >"$1/note$i.txt"; done; }
mkdir -p $E/d01 $E/d02/DCIM $E/d03 $E/d04 $E/d05 $E/d06 $E/d07 $E/d08 $E/d09 $E/d10
txt $E/d01 2; cp $IMG/reg-test-input/labelme-subset/q1050.jpg $E/d01/
cp $IMG/bridge-mods/shrink-a-little.jpg $E/d02/DCIM/0001.dat; txt $E/d02 3
cp $IMG/reg-test-input/labelme-subset/q0291.jpg $E/d03/holiday.jpg; txt $E/d03 1
# the slow device: 1500 small files, then a sparse file whose digest takes seconds
python3 -c "
import sys
for i in range(1500): open('%s/f%05d.txt' % (sys.argv[1], i), 'w').write('file %d' % i)
" $E/d04
truncate -s 400M $E/d04/zz-sparse.bin
for i in $(seq -w 1 20); do cp $IMG/bridge-mods/square-512x512.jpg $E/d05/copy$i.jpg; done; txt $E/d05 5
cp $IMG/reg-test-input/labelme-subset/q0122.jpg $E/d06/; txt $E/d06 1
txt $E/d07 1; cp $IMG/reg-test-input/labelme-subset/q2821.jpg $E/d07/
cp $IMG/reg-test-input/labelme-subset/q0746.jpg $E/d08/
txt $E/d09 4
txt $E/d10 2
add() { "$CLI" backlog add "$T/q.db" --case "$1" --device "$2" --received "$3" "$E/$2" >/dev/null || fail=1; }
add K1 d01 2024-03-01; add K1 d02 2024-03-02; add K2 d03 2024-03-03; add K2 d04 2024-02-01
add K3 d05 2024-03-05; add K3 d06 2024-03-06
{ echo "case,device,received,source"
  echo "K4,d07,2023-12-01,$E/d07"; echo "K4,d08,2024-03-08,$E/d08"
  echo "K5,d09,2024-03-09T10:00:00Z,$E/d09"; echo "\"K5\",\"d10\",,\"$E/d10\""; } >"$T/more.csv"
"$CLI" backlog add "$T/q.db" --csv "$T/more.csv" 2>/dev/null || fail=1
"$CLI" backlog add "$T/q.db" --case K1 --device d01 "$E/d01" >/dev/null 2>&1
check '[ $? -eq 2 ]' "a device added twice to one case is refused"
# before any preview: all unpreviewed, longest waiting first (d10: received now)
order() { "$CLI" backlog list "$T/q.db" --json | python3 -c "
import json, sys
print(' '.join(d['device'] for d in json.load(sys.stdin)))"; }
check '[ "$(order)" = "d07 d04 d01 d02 d03 d05 d06 d08 d09 d10" ]' "queued devices by waiting time (got $(order))"

# reports are never written inside the evidence or the index
"$CLI" backlog run "$T/q.db" --index "$T/idx" --reports "$E/d03/reports" --quiet 2>"$T/err"; rc=$?
check '[ $rc -eq 2 ] && grep -q "inside" "$T/err" && [ ! -e "$E/d03/reports" ]' \
  "--reports inside a device's evidence is refused ($(head -c 300 "$T/err"))"
"$CLI" backlog run "$T/q.db" --index "$T/idx" --reports "$T/idx/r" --quiet 2>"$T/err"; rc=$?
check '[ $rc -eq 2 ] && grep -q "inside" "$T/err"' "--reports inside the index is refused"
check '[ "$("$CLI" backlog log "$T/q.db" | grep -c -- "-> previewing")" -eq 0 ]' "a refused run claims nothing"

# ---- run 1, killed with SIGKILL while the slow device's full scan runs ----
R=$T/reports
"$CLI" backlog run "$T/q.db" --index "$T/idx" --reports "$R" --workers 2 --lease 2 --quiet 2>"$T/run1.err" &
RUN=$!
state() { sqlite3 "$T/q.db" "SELECT state FROM device WHERE name='$1'"; }
killed=0
for i in $(seq 1 1200); do
  if [ "$(state d04)" = scanning ] && [ -f "$R/4-K2-d04.jsonl" ] &&
     [ "$(wc -l <"$R/4-K2-d04.jsonl")" -gt 500 ]; then
    kill -9 $RUN; wait $RUN 2>/dev/null; RUN=; killed=1; break
  fi
  kill -0 $RUN 2>/dev/null || break
  sleep 0.1
done
check '[ $killed -eq 1 ]' "run 1 was killed mid-device (d04: $(state d04); $(head -c 300 "$T/run1.err"))"
sleep 0.5
# its scan died with it (never two scans of a device at once) ...
alive=$(grep -l -a "4-K2-d04[.]jsonl" /proc/[0-9]*/cmdline 2>/dev/null | wc -l)
check '[ "$alive" -eq 0 ]' "the killed worker's scan died with it ($alive left)"
# ... and it released nothing: the device stays held until its lease expires
check '[ "$(state d04)" = scanning ]' "the killed worker's device stays claimed (state $(state d04))"
partial=$(grep -c '"record":"file"' "$R/4-K2-d04.jsonl")
check '! tail -n 1 "$R/4-K2-d04.jsonl" | grep -q "\"record\":\"summary\""' "d04's report is partial"

# ---- run 2 takes over when the lease expires and finishes everything ----
"$CLI" backlog run "$T/q.db" --index "$T/idx" --reports "$R" --workers 2 --lease 2 --quiet 2>"$T/run2.err"
rc=$?
check '[ $rc -eq 1 ]' "run 2 ends with exit 1, known material found (got $rc: $(head -c 300 "$T/run2.err"))"

# ranking: the 4 devices with known material first, by priority worked out by
# hand (S = distinct seized items with hits x weight of their most severe
# category, CAID A 10, C 4; D = files with hits / files read):
#   d05 20 identical copies of one picture + 5 notes: 10 + 20/25 = 10.800
#   d06 one picture matching 12 entries (1 + 11 near-duplicates) + 1 note: 10 + 1/2
#   d02 an altered copy + 3 notes: 10 + 1/4;  d03 category C + 1 note: 4 + 1/2
# then the clean ones, longest waiting first.
check '[ "$(order)" = "d05 d06 d02 d03 d07 d04 d01 d08 d09 d10" ]' "the ranking (got $(order))"
prio() { tail -n 1 "$R/$1.jsonl" | grep -o '"priority":[0-9.]*' | cut -d: -f2; }
check '[ "$(prio 5-K3-d05)" = 10.800 ]' "d05: 20 copies of one picture are one item (priority $(prio 5-K3-d05))"
check '[ "$(prio 6-K3-d06)" = 10.500 ]' "d06: 11 near-duplicates do not multiply (priority $(prio 6-K3-d06))"
check '[ "$(prio 2-K1-d02)" = 10.250 ] && [ "$(prio 3-K2-d03)" = 4.500 ]' "d02, d03 priorities"
check 'tail -n 1 "$R/6-K3-d06.jsonl" | grep -q "\"hit_items\":1,\"hit_files\":1,\"distinct_known_items\":12,"' \
  "d06: 1 seized item, 12 distinct known items (the secondary figure)"
check 'tail -n 1 "$R/5-K3-d05.jsonl" | grep -q "\"hit_items\":1,\"hit_files\":20,"' "d05: 20 files, 1 seized item"

# every device done, every report complete, each file recorded once
for d in 01 02 03 04 05 06 07 08 09 10; do
  id=$((10#$d)); case $id in 1|2) c=K1;; 3|4) c=K2;; 5|6) c=K3;; 7|8) c=K4;; *) c=K5;; esac
  rep=$R/$id-$c-d$d.jsonl
  check '[ "$(state d$d)" = done ]' "d$d is done ($(state d$d))"
  check 'tail -n 1 "$rep" | grep -q "\"record\":\"summary\",\"complete\":true"' "d$d: report complete"
  files=$(find "$E/d$d" -type f | wc -l)
  recs=$(grep -c '"record":"file"' "$rep")
  uniq=$(grep '"record":"file"' "$rep" | grep -o '"path":"[^"]*"' | sort -u | wc -l)
  check '[ "$recs" -eq "$files" ] && [ "$uniq" -eq "$files" ]' "d$d: $files files, $recs records, $uniq distinct paths"
  check '[ -f "$R/$id-$c-d$d.preview.jsonl" ]' "d$d: its preview report"
done

# no scan child reported a sanitizer error or crashed (their stderr is REPORT.log)
check '! grep -l "Sanitizer\|runtime error" "$R"/*.log >/dev/null' "scan logs: $(grep -l "Sanitizer\|runtime error" "$R"/*.log | head -n 3)"

# the audit log: every transition of every device, in order
"$CLI" backlog log "$T/q.db" --json >"$T/log.jsonl" || fail=1
python3 - "$T/log.jsonl" >"$T/logcheck" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {}
for r in rows:
    if r["device"]:
        by.setdefault(r["device"], []).append((r["from"], r["to"], r["what"]))
bad = []
for d in ["d%02d" % i for i in range(1, 11)]:
    # a device the killed worker held is claimed again after its lease
    # expired (d04 for sure; the other worker's device too, if any)
    ch = [(f, t) for f, t, w in by.get(d, []) if t and not (f == t and "expired" in w)]
    want = [(None, "queued"), ("queued", "previewing"), ("previewing", "previewed"),
            ("previewed", "scanning"), ("scanning", "done")]
    if ch != want:
        bad.append("%s: %s" % (d, ch))
resumed = [w for f, t, w in by.get("d04", []) if f == t == "scanning" and "expired" in w and "resumed by" in w]
if len(resumed) != 1:
    bad.append("d04: %d lease-expiry takeovers" % len(resumed))
print("\n".join(bad) if bad else "ok")
EOF
check '[ "$(cat "$T/logcheck")" = ok ]' "the audit log: $(head -c 600 "$T/logcheck")"
# the slow device was resumed from its partial report, not read again
check 'grep -q "resumed" "$R/4-K2-d04.jsonl.log" || [ "$partial" -gt 0 ]' "d04 resumed"
check 'head -n 1 "$R/4-K2-d04.jsonl" | grep -q "\"resumed_from\":\"$R/4-K2-d04.jsonl\""' "d04's final report is the resumed scan's"
# the log is append-only
sqlite3 "$T/q.db" "DELETE FROM log" 2>/dev/null; check '[ $? -ne 0 ]' "the log cannot be deleted"
sqlite3 "$T/q.db" "UPDATE log SET who='x'" 2>/dev/null; check '[ $? -ne 0 ]' "the log cannot be rewritten"

# show, export
"$CLI" backlog show "$T/q.db" d06 >"$T/show" || fail=1
check 'grep -q "^state: done" "$T/show" && grep -q "12 distinct known items, priority 10.500" "$T/show" && grep -q "scanning -> done" "$T/show"' "show d06"
"$CLI" backlog export "$T/q.db" --format csv >"$T/exp.csv" || fail=1
check '[ "$(wc -l <"$T/exp.csv")" -eq 11 ] && head -n 1 "$T/exp.csv" | grep -q "^rank,id,case,device" && sed -n 2p "$T/exp.csv" | grep -q "^1,5,\"K3\",\"d05\""' "export csv"
"$CLI" backlog export "$T/q.db" | python3 -c "import json,sys; v=json.load(sys.stdin); assert len(v)==10 and v[0]['scan']['priority']==10.8" 2>/dev/null
check '[ $? -eq 0 ]' "export json"
# the preview ('scan --budget') and its estimate are stored with the device
check 'grep -q "^  estimate: {\"stopped_by\":" "$T/show" && head -n 1 "$R/6-K3-d06.preview.jsonl" | grep -q "\"command_line\":\"[^\"]*--budget 5m"' "the preview ran with a budget and its estimate is kept"
"$CLI" backlog export "$T/q.db" --format jsonl | python3 -c "
import json, sys
for l in sys.stdin:
    d = json.loads(l)
    p = d['preview']['preview']
    assert p['hit_files'] == d['preview']['hit_files'], d['device']
    assert p['enumeration_complete'] is True, d['device']" 2>"$T/pv.err"
check '[ $? -eq 0 ]' "each device's preview estimate is exported ($(tail -n 1 "$T/pv.err"))"

exit $fail
