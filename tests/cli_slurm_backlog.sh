#!/usr/bin/env bash
# tests/cli_slurm_backlog.sh CLI SHARED -- `imgtriage backlog submit --slurm`
# on a one-node Slurm cluster started by scripts/slurm-local.sh (issue 16):
# 6 generated devices (2 hold pictures a known list names by the reference
# hasher's hashes), previews as one job array, full scans as a second array in
# rank order depending on the first, `backlog sync` reading the reports back:
# ranking, every report complete, every transition logged; a task restarted
# over its partial report resumes it. Skips when Slurm cannot start, but
# under CI=true that is a failure.
set -u
CLI=$1
SHARED=${2:-}
HERE=$(cd "$(dirname "$0")/.." && pwd)
T=$(mktemp -d)
SD=$T/slurm
cleanup() { bash "$HERE/scripts/slurm-local.sh" stop "$SD" 2>/dev/null; rm -rf "$T"; }
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
command -v python3 >/dev/null || skip "python3 is absent"
# a port of our own per run, so that a cluster left by another run is not used
export IMT_SLURM_PORT=$((20000 + RANDOM % 20000))
bash "$HERE/scripts/slurm-local.sh" start "$SD" 2>"$T/slurm.err" ||
  skip "Slurm could not be started: $(tail -n 3 "$T/slurm.err")"
export SLURM_CONF=$SD/slurm.conf
# idempotent: a second start leaves the running cluster alone
bash "$HERE/scripts/slurm-local.sh" start "$SD" 2>"$T/slurm2.err"
check '[ $? -eq 0 ] && grep -q "running already" "$T/slurm2.err"' "slurm-local.sh start is idempotent"

ref() { grep ",$1\$" "$REF" | head -n 1 | cut -d, -f1; }
printf '%s,100,bridge\n' "$(ref bridge-mods/aaa-orig.jpg)" >"$T/a.csv"
printf '%s,100,q0291\n' "$(ref reg-test-input/labelme-subset/q0291.jpg)" >"$T/c.csv"
"$CLI" index import -q --create --name "cat A" --scheme caid --category 1 "$T/idx" "$T/a.csv" || fail=1
"$CLI" index import -q --name "cat C" --scheme caid --category 3 "$T/idx" "$T/c.csv" || fail=1
E=$T/ev
mkdir -p $E/s1 $E/s2 $E/s3 $E/s4 $E/s5 $E/s6
for d in s1 s2 s3 s4 s5 s6; do for i in 1 2 3; do echo "$d note $i" >$E/$d/n$i.txt; done; done
cp $IMG/bridge-mods/blur-a-little.jpg $E/s4/a.jpg                     # 10 + 1/4
cp $IMG/reg-test-input/labelme-subset/q0291.jpg $E/s2/b.bin           # 4 + 1/4
cp $IMG/reg-test-input/labelme-subset/q1050.jpg $E/s5/                # clean
"$CLI" backlog init "$T/q.db" || fail=1
r=1; for d in s1 s2 s3 s4 s5 s6; do
  "$CLI" backlog add "$T/q.db" --case S --device $d --received 2024-05-0$r $E/$d >/dev/null || fail=1
  r=$((r + 1))
done

jobs=$("$CLI" backlog submit "$T/q.db" --slurm --index "$T/idx" --shared "$T/shared" \
  --partition local --threads 1 -- --time=10 2>"$T/submit.err")
check '[ $? -eq 0 ]' "submit ($(head -c 300 "$T/submit.err"))"
read -r j1 j2 <<<"$jobs"
"$CLI" backlog submit "$T/q.db" --slurm --index "$T/idx" --shared "$T/shared" 2>"$T/again.err"; rc=$?
check '[ $rc -eq 2 ] && grep -q "submitted already" "$T/again.err"' "a second submission is refused while devices are open"
check '[ -n "${j2:-}" ]' "two job arrays submitted (got '$jobs')"
check 'scontrol show job "$j2" | grep -q "Dependency=afterany:${j1}"' "the scans depend on the previews"
for i in $(seq 1 600); do
  [ "$(squeue -h -j "$j1,$j2" 2>/dev/null | wc -l)" -eq 0 ] && break
  sleep 0.2
done
check '[ "$(squeue -h -j "$j1,$j2" 2>/dev/null | wc -l)" -eq 0 ]' "the jobs ended"
"$CLI" backlog sync "$T/q.db" 2>"$T/sync.err" || fail=1
check 'grep -q "synced 6 previews and 6 full scans" "$T/sync.err"' "sync: $(cat "$T/sync.err")"
# a second sync changes nothing
"$CLI" backlog sync "$T/q.db" 2>"$T/sync2.err" || fail=1
check 'grep -q "synced 0 previews and 0 full scans" "$T/sync2.err"' "a second sync: $(cat "$T/sync2.err")"

order() { "$CLI" backlog list "$T/q.db" --json | python3 -c "
import json, sys
print(' '.join(d['device'] + ':' + d['state'] for d in json.load(sys.stdin)))"; }
want="s4:done s2:done s1:done s3:done s5:done s6:done"
check '[ "$(order)" = "$want" ]' "ranking after sync (got $(order))"
# priorities by hand: s4 CAID A 10 + 1 hit of 4 files; s2 CAID C 4 + 1/4
prio() { tail -n 1 "$T/shared/dev/$1/scan.jsonl" | grep -o '"priority":[0-9.]*' | cut -d: -f2; }
check '[ "$(prio 4)" = 10.250 ] && [ "$(prio 2)" = 4.250 ]' "priorities $(prio 4) $(prio 2)"
for id in 1 2 3 4 5 6; do
  rep=$T/shared/dev/$id/scan.jsonl
  files=$(find "$E/s$id" -type f | wc -l)
  check 'tail -n 1 "$rep" | grep -q "\"record\":\"summary\",\"complete\":true"' "s$id: report complete"
  check '[ "$(grep -c "\"record\":\"file\"" "$rep")" -eq "$files" ]' "s$id: one record per file"
  check '[ -s "$T/shared/dev/$id/preview.jsonl" ]' "s$id: preview report"
done
# the scan array ran in rank order: task i scanned the i-th ranked device
for i in 0 1 2 3 4 5; do
  dev=$(grep -o 'device #[0-9]*' "$T/shared/logs/scan-$i.out" | head -n 1 | tr -dc 0-9)
  exp=$(echo "4 2 1 3 5 6" | cut -d' ' -f$((i + 1)))
  check '[ "$dev" = "$exp" ]' "scan task $i scanned device #$exp (got #$dev)"
done
check '! grep -l "Sanitizer\|runtime error" "$T"/shared/logs/* >/dev/null' "task logs: $(grep -l "Sanitizer\|runtime error" "$T"/shared/logs/* | head -n 3)"
"$CLI" backlog log "$T/q.db" >"$T/log" || fail=1
check 'grep -q "submitted to Slurm: previews as job array $j1, full scans as job array $j2" "$T/log"' "the submission is logged"
for t in "queued -> previewed" "previewed -> done"; do
  check '[ "$(grep -c -- "$t" "$T/log")" -eq 6 ]' "every device logged $t"
done

# a requeued task resumes its partial report: cut device 4's report short
# and run its task again, as Slurm would (SLURM_ARRAY_TASK_ID 0: rank 1)
rep=$T/shared/dev/4/scan.jsonl
grep '"record":"file"' "$rep" | sort >"$T/before"
head -n 3 "$rep" >"$T/cut" && cat "$T/cut" >"$rep"
SLURM_ARRAY_TASK_ID=0 "$CLI" backlog task "$T/shared" scan 2>"$T/task.err"
check 'grep -q "resumed from its report" "$T/task.err" && head -n 1 "$rep" | grep -q "\"resumed_from\""' "the task resumed ($(head -c 200 "$T/task.err"))"
grep '"record":"file"' "$rep" | sort >"$T/after"
check 'tail -n 1 "$rep" | grep -q "\"complete\":true" && [ "$(wc -l <"$T/after")" -eq 4 ]' "the resumed report is complete"
check 'diff <(grep -o "\"path\":\"[^\"]*\"" "$T/before") <(grep -o "\"path\":\"[^\"]*\"" "$T/after") >/dev/null' "the same files, once each"
bash "$HERE/scripts/slurm-local.sh" stop "$SD"
check '! bash "$HERE/scripts/slurm-local.sh" status "$SD"' "slurm-local.sh stop"
exit $fail
