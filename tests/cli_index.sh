#!/usr/bin/env bash
# tests/cli_index.sh -- `imgtriage index` end to end: create, import (auto and
# named formats), a rejected import that changes nothing, stats, verify,
# query (PDQ within a radius, digests; exit 1 when found), compact (the same
# answers), export round trip.
# Usage: bash cli_index.sh CLI SHARED_DIR
set -u
CLI=$1
DATA=$(cd "$(dirname "$0")" && pwd)/data/index
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
check() { if ! eval "$1"; then echo "FAIL: $1"; fail=1; fi; }

for sub in "" create import compact stats verify export query; do
  "$CLI" index $sub --help >/dev/null || { echo "FAIL: index $sub --help"; fail=1; }
done

"$CLI" index create "$T/i" || fail=1
"$CLI" index create "$T/i" 2>"$T/err"; check '[ $? -eq 2 ] && grep -q exists "$T/err"'
"$CLI" index import -q "$T/i" "$DATA/pdq.csv" "$DATA/md5sum.txt" || fail=1
"$CLI" index import -q --format pdq-hex --name "pdq hex" --category 2 "$T/i" "$DATA/pdq.hex" || fail=1
"$CLI" index import -q --known-good --name "known good" --version 7 "$T/i" "$DATA/sha1sum.txt" || fail=1
before=$("$CLI" index stats --json "$T/i")
"$CLI" index import "$T/i" "$DATA/bad/pdq_nonhex.csv" 2>"$T/err"
check '[ $? -eq 2 ]'
check 'grep -q "pdq_nonhex.csv:3: .*not a hex digit.*(not-hex); nothing of it was imported" "$T/err"'
check '[ "$("$CLI" index stats --json "$T/i")" = "$before" ]'
# the same file twice: refused, naming the list it is; --again forces it
before=$("$CLI" index stats --json "$T/i")
cp "$DATA/md5sum.txt" "$T/renamed.txt"
"$CLI" index import "$T/i" "$T/renamed.txt" 2>"$T/err"; rc=$?
check '[ $rc -eq 2 ] && grep -q "imported already as list 2 .md5sum.txt. (file SHA-256 [0-9a-f]\{64\}).*--again.*(duplicate)" "$T/err"'
check '[ "$("$CLI" index stats --json "$T/i")" = "$before" ]'
"$CLI" index import -q --again --create "$T/twice" "$T/renamed.txt" "$DATA/md5sum.txt" || fail=1
check '[ "$("$CLI" index stats --json "$T/twice" | grep -o "\"id\":[0-9]*" | tr "\n" " ")" = "\"id\":1 \"id\":2 " ]'
"$CLI" index verify "$T/i" >/dev/null || { echo "FAIL: verify"; fail=1; }
"$CLI" index stats "$T/i" >"$T/stats" || fail=1
check 'grep -q "entries:        14 " "$T/stats" && grep -q "pdq hex" "$T/stats"'

# the first PDQ of pdq.csv, 3 bits changed: found at distance 3 in 2 lists
h=$(head -1 "$DATA/pdq.csv" | cut -d, -f1)
first=${h:0:1}
case $first in 0) f=7;; 1) f=6;; *) f=0;; esac   # flips 3 bits for 0/1; else maybe more
q="$f${h:1}"
"$CLI" index query "$T/i" "$q" >"$T/q"; rc=$?
d=$(python3 -c "print(bin(int('$h',16)^int('$q',16)).count('1'))" 2>/dev/null || echo x)
check '[ $rc -eq 1 ] && [ $(wc -l <"$T/q") -eq 2 ] && grep -q "^$q,pdq,$d,original,0,1,\"pdq.csv\",,\"img1.jpg\",alert$" "$T/q"'
check 'grep -q "^$q,pdq,$d,original,0,3,\"pdq hex\",2,\"\",alert$" "$T/q"'
"$CLI" index query -r 0 "$T/i" "$q" >/dev/null; check '[ $? -eq $([ "$d" = 0 ] && echo 1 || echo 0) ]'
m=$(head -1 "$DATA/md5sum.txt" | cut -c1-32)
"$CLI" index query "$T/i" "$m" >"$T/q"; rc=$?
check '[ $rc -eq 1 ] && grep -q "^$m,md5,0,,5,2,\"md5sum.txt\",,\"files/sample-1.bin\",alert$" "$T/q"'
"$CLI" index query "$T/i" 0123 2>/dev/null; check '[ $? -eq 2 ]'
# compact: the delta's PDQ hashes become level 0; the same answers
"$CLI" index query "$T/i" "$q" "$m" >"$T/q.before"
"$CLI" index stats --json "$T/i" >"$T/s.before"
check 'grep -q "\"pdq_compacted\":0,\"pdq_delta\":[1-9]" "$T/s.before"'
"$CLI" index compact "$T/i" >"$T/out" || fail=1
check 'grep -q ": PDQ levels none (delta [1-9][0-9]*) -> [1-9][0-9]* (delta 0), [0-9.]* s$" "$T/out"'
"$CLI" index stats --json "$T/i" >"$T/s.after"
check 'grep -q "\"pdq_compacted\":[1-9][0-9]*,\"pdq_delta\":0," "$T/s.after"'
"$CLI" index query "$T/i" "$q" "$m" >"$T/q.after"
check '[ -s "$T/q.after" ] && cmp -s "$T/q.before" "$T/q.after"'
"$CLI" index verify "$T/i" >/dev/null || { echo "FAIL: verify after compact"; fail=1; }
"$CLI" index compact -q "$T/i" >"$T/out" && check '[ ! -s "$T/out" ]'
"$CLI" index compact 2>/dev/null; check '[ $? -eq 2 ]'
"$CLI" index compact "$T/absent" 2>/dev/null; check '[ $? -eq 2 ]'

# hostile strings in a list: quoted CSV, no terminal escape reaches the output
esc=$(printf '\033')
printf '0123456789abcdef0123456789abcdef  a,b"c%s[2Jd\n' "$esc" >"$T/hostile.md5"
"$CLI" index import -q --create --name "n${esc}]0;x,\"q\"" "$T/h" "$T/hostile.md5" || fail=1
"$CLI" index query "$T/h" 0123456789abcdef0123456789abcdef >"$T/q"; rc=$?
check '[ $rc -eq 1 ] && ! grep -q "$esc" "$T/q"'
check 'grep -qF "0123456789abcdef0123456789abcdef,md5,0,,0,1,\"n\\x1b]0;x,\"\"q\"\"\",,\"a,b\"\"c\\x1b[2Jd\",alert" "$T/q"'
"$CLI" index stats "$T/h" >"$T/stats"
check '! grep -q "$esc" "$T/stats" && grep -qF "\"n\\x1b]0;x,\"\"q\"\"\"" "$T/stats"'
# a list name longer than the list record holds is refused, never cut
long=$(head -c 600 /dev/zero | tr '\0' n)
"$CLI" index import -q --name "$long" "$T/h" "$T/hostile.md5" 2>"$T/err"; rc=$?
check '[ $rc -eq 2 ] && grep -q "a list name of 600 bytes: at most 511" "$T/err"'
"$CLI" index stats "$T/h" >"$T/stats"
check '! grep -q nnnnnnnn "$T/stats"'

# export and re-import: the same entries
"$CLI" index export -o "$T/all.jsonl" "$T/i" || fail=1
"$CLI" index export --list 2 --format md5sum "$T/i" >"$T/md5" || fail=1
check 'cmp -s "$T/md5" "$DATA/md5sum.txt"'
"$CLI" index import -q --create "$T/j" "$T/all.jsonl" || fail=1
"$CLI" index export -o "$T/all2.jsonl" "$T/j" || fail=1
# byte for byte, but the exporting index's identity; the inventory too
noid() { sed '1s/"index":"[0-9a-f]\{64\}",//' "$1"; }
check '[ "$(noid "$T/all.jsonl")" = "$(noid "$T/all2.jsonl")" ] && [ -s "$T/all2.jsonl" ]'
check '[ "$("$CLI" index stats --json "$T/i" | sed "s/.*\"lists\"://")" = "$("$CLI" index stats --json "$T/j" | sed "s/.*\"lists\"://")" ]'
check '"$CLI" index stats "$T/j" | grep -q "^  4   good .* \"known good\" (\"7\") "'
"$CLI" index verify "$T/j" >/dev/null || fail=1
# an export's lists are the files they came from: not twice either
"$CLI" index import "$T/j" "$T/all.jsonl" 2>"$T/err"; rc=$?
check '[ $rc -eq 2 ] && grep -q "a list of this export was imported already as list 1 .pdq.csv." "$T/err"'
"$CLI" index stats "$T/nonexistent" 2>/dev/null; check '[ $? -eq 2 ]'

# Category policy, end to end: a VICS list mixing categories 0, 1, 2, 3, 8 and
# none; a scan of files with those MD5s (by md5sum, not by us). Project VIC:
# 0 ignore (the file is known-good), 1-2 and none alert (hits, exit 1,
# priority), 3 and 8 (e.g. NIST's NSRL-derived VICS 1.2) informational.
mkdir "$T/ev"
cats="0 1 2 3 8 none"
for c in $cats; do echo "a file of category $c" >"$T/ev/c$c.bin"; done
echo "no list has me" >"$T/ev/clean.bin"
{ printf '{"@odata.context":"http://x/2.0.xml/Default/$metadata#Media","value":['
  sep=; id=100
  for c in $cats; do
    m=$(md5sum <"$T/ev/c$c.bin" | cut -c1-32)
    if [ "$c" = none ]; then printf '%s{"MediaID":%d,"MD5":"%s"}' "$sep" $id "$m"
    else printf '%s{"MediaID":%d,"Category":%s,"MD5":"%s"}' "$sep" $id "$c" "$m"; fi
    sep=,; id=$((id+1))
  done
  printf ']}\n'; } >"$T/mix.json"
"$CLI" index import -q --create "$T/p" "$T/mix.json" || fail=1
"$CLI" index stats "$T/p" >"$T/stats"
check 'grep -q "policy: alert=none,1-2 info=3+ ignore=0" "$T/stats"'
"$CLI" index stats --json "$T/p" | grep -q '"policy":"alert=none,1-2 info=3+ ignore=0"'; check '[ $? -eq 0 ]'
"$CLI" scan -q --index "$T/p" --out "$T/r.jsonl" "$T/ev" 2>"$T/sum"; rc=$?
check '[ $rc -eq 1 ]'
# the audit header names each list's policy and says the searched bytes were checked
check 'head -n 1 "$T/r.jsonl" | grep -q "\"content_verified\":true,"'
check 'head -n 1 "$T/r.jsonl" | grep -q "\"policy\":\"alert=none,1-2 info=3+ ignore=0\""'
disp() { grep "\"path\":\"[^\"]*/$1\"" "$T/r.jsonl" | grep -o '"disposition":"[a-z]*"' | cut -d'"' -f4 | tr '\n' ' '; }
check '[ "$(disp c0.bin)" = "ignore " ] && [ "$(disp c1.bin)" = "alert " ] && [ "$(disp c2.bin)" = "alert " ]'
check '[ "$(disp c3.bin)" = "info " ] && [ "$(disp c8.bin)" = "info " ] && [ "$(disp cnone.bin)" = "alert " ]'
check 'grep "\"path\":\"[^\"]*/c0.bin\"" "$T/r.jsonl" | grep -q "\"known_good\":true,"'
check 'tail -n 1 "$T/r.jsonl" | grep -q "\"hit_files\":3,\"distinct_known_items\":3,\"known_good_files\":1,"'
# weights (README): 10 + 5 + 1 for categories 1, 2, none; density 3 hits / 7 files
check 'grep -q "priority 16.429 = 16 (sum over 3 distinct" "$T/sum"'
# only category 3 alerts: one hit; an override is stored and shown
"$CLI" index import -q --create --ignore '*' --alert 3 "$T/pq" "$T/mix.json" || fail=1
check '"$CLI" index stats "$T/pq" | grep -q "policy: alert=3 ignore=none,0-2,4+"'
"$CLI" scan -q --index "$T/pq" --out "$T/r2.jsonl" "$T/ev" 2>/dev/null; rc=$?
check '[ $rc -eq 1 ] && tail -n 1 "$T/r2.jsonl" | grep -q "\"hit_files\":1,\"distinct_known_items\":1,\"known_good_files\":5,"'
# nothing alerts: exit 0 although every listed file matches
"$CLI" index import -q --create --info '*' "$T/n" "$T/mix.json" || fail=1
"$CLI" scan -q --index "$T/n" --out "$T/r3.jsonl" "$T/ev" 2>/dev/null; rc=$?
check '[ $rc -eq 0 ] && tail -n 1 "$T/r3.jsonl" | grep -q "\"hit_files\":0,"'
check '[ $(grep -c "\"disposition\":\"info\"" "$T/r3.jsonl") -eq 6 ]'
# a bad policy term: refused before anything is read
"$CLI" index import -q --alert 1-x "$T/n" "$T/mix.json" 2>"$T/err"; rc=$?
check '[ $rc -eq 2 ] && grep -q "category policy: .1-x. is not a category" "$T/err"'
# the verified-state record (docs/INDEX.md "Opening"): the second open of the
# unchanged index checks its structure only and the report says the content
# rests on the record; --full-check and IMGTRIAGE_FULL_CHECK=1 read it all
export XDG_CACHE_HOME="$T/cache"
sleep 2.5 # a record is written only for a file over 2 s older than the check
hdr() { "$CLI" scan -q "$@" --index "$T/p" --out "$T/v.jsonl" --force "$T/ev" 2>/dev/null; head -n 1 "$T/v.jsonl"; }
check 'hdr | grep -q "\"content_verified\":true,\"content_verified_by\":\"open\",\"content_verified_at\":\"[0-9T:.Z-]*\",\"pages_checked\":\"all\""'
check '[ "$(ls "$T/cache/imgtriage/verified" | wc -l)" -eq 1 ]'
check 'hdr | grep -q "\"content_verified\":true,\"content_verified_by\":\"record\",\"content_verified_at\":\"[0-9T:.Z-]*\",\"pages_checked\":\"structure, leaves by the record\""'
check '"$CLI" index stats "$T/p" | grep -q "^open check:     meta and branch pages .*; PDQ content verified by this machine at 20[0-9-]*T[0-9:]*Z, unchanged since$"'
check 'hdr --full-check | grep -q "\"content_verified_by\":\"open\",.*\"pages_checked\":\"all\""'
check 'IMGTRIAGE_FULL_CHECK=1 hdr | grep -q "\"content_verified_by\":\"open\",.*\"pages_checked\":\"all\""'
check '[ "$(ls "$T/p" | tr "\n" " ")" = "data.mdb lock.mdb " ]'
exit $fail
