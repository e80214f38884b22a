#!/usr/bin/env bash
# bench/bench_scan.sh -- `imgtriage scan` end to end against `imgtriage hash`
# alone on the same photo corpus, with 1 and 2 threads.
#   usage: bash bench/bench_scan.sh [BUILD_DIR] [CORPUS_DIR]
# BUILD_DIR defaults to build (a Release/RelWithDebInfo build); CORPUS_DIR to
# .corpus/photos, fetched by scripts/fetch-photos.sh when absent.
# Every figure is the best of REPS runs (default 3) after one warm-up run
# (the corpus is then in the page cache: this measures the CPU pipeline).
# Compared pairs: scan does MD5+SHA-1, 8 dihedral hashes and the index
# lookups on top of what plain `hash` does, so the same-work baseline is
# `hash --crypto --dihedral` (MD5+SHA-1+SHA-256, 8 hashes) against
# `scan --sha256`; plain `hash` is shown too.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}
C=${2:-.corpus/photos}
REPS=${REPS:-3}
CLI=$B/imgtriage
[ -x "$CLI" ] || { echo "bench_scan: build first ($CLI missing)" >&2; exit 2; }
[ -d "$C" ] || bash scripts/fetch-photos.sh "$C"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# An index of the first 10 photos' hashes, so that matching really runs.
ls "$C"/*.jpg | head -n 10 > "$tmp/known.txt"
"$CLI" hash -i "$tmp/known.txt" > "$tmp/known.csv"
"$CLI" index create "$tmp/idx" >/dev/null
"$CLI" index import --quiet --name bench --format pdq-csv "$tmp/idx" "$tmp/known.csv"

best() { # best wall time in seconds of REPS runs of "$@" (after a warm-up)
  "$@" >/dev/null 2>&1 || true
  local b=999999 t0 t1
  for _ in $(seq "$REPS"); do
    t0=$(date +%s.%N); "$@" >/dev/null 2>&1 || true; t1=$(date +%s.%N)
    b=$(awk -v a="$t0" -v z="$t1" -v b="$b" 'BEGIN { t = z - a; print (t < b ? t : b) }')
  done
  echo "$b"
}

"$CLI" scan --index "$tmp/idx" --quiet --out "$tmp/r.jsonl" "$C" 2>/dev/null || true
read -r files images bytes < <(tail -n 1 "$tmp/r.jsonl" | python3 -c '
import json, sys; s = json.loads(sys.stdin.read()); print(s["files"], s["images"], s["bytes"])')
echo "corpus: $C: $files files, $images images hashed, $((bytes / 1000000)) MB"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
printf '%-44s %8s %10s %10s\n' "command" "seconds" "images/s" "MB/s"
r() { awk -v a="$1" -v b="$2" 'BEGIN { print a / b }'; }
declare -A T
for n in 1 2; do
  T[hash$n]=$(best "$CLI" hash -t "$n" "$C")
  T[hashfull$n]=$(best "$CLI" hash -t "$n" --crypto --dihedral "$C")
  T[scan$n]=$(best "$CLI" scan --index "$tmp/idx" -t "$n" --quiet --out /dev/null "$C")
  T[scan256$n]=$(best "$CLI" scan --index "$tmp/idx" -t "$n" --sha256 --quiet --out /dev/null "$C")
  for k in hash hashfull scan scan256; do
    case $k in
      hash) label="hash -t $n" ;;
      hashfull) label="hash -t $n --crypto --dihedral" ;;
      scan) label="scan -t $n (md5+sha1, dihedral, index)" ;;
      scan256) label="scan -t $n --sha256" ;;
    esac
    t=${T[$k$n]}
    printf '%-44s %8.2f %10.1f %10.1f\n' "$label" "$t" "$(r "$images" "$t")" \
      "$(r "$(r "$bytes" 1000000)" "$t")"
  done
done
printf 'scan rate / hash rate, same work (scan --sha256 vs hash --crypto --dihedral): 1 thread %.3f, 2 threads %.3f\n' \
  "$(r "${T[hashfull1]}" "${T[scan2561]}")" "$(r "${T[hashfull2]}" "${T[scan2562]}")"
printf 'scan rate / plain hash rate (scan does more work):                       1 thread %.3f, 2 threads %.3f\n' \
  "$(r "${T[hash1]}" "${T[scan1]}")" "$(r "${T[hash2]}" "${T[scan2]}")"
printf 'scan speed-up with 2 threads vs 1: %.2fx (hash: %.2fx)\n' \
  "$(r "${T[scan1]}" "${T[scan2]}")" "$(r "${T[hash1]}" "${T[hash2]}")"
