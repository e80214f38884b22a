#!/usr/bin/env bash
# Build the libFuzzer targets (clang, ASan+UBSan) and run one or all of them.
#
# Usage: bash scripts/fuzz.sh TARGET|all SECONDS [libFuzzer flags...]
#   e.g. bash scripts/fuzz.sh jpeg 3600          one hour on the JPEG target
#        bash scripts/fuzz.sh all 14400           four hours on each, one after another
#        bash scripts/fuzz.sh png 600 -jobs=4 -workers=4   four processes in parallel
#
# Build tree: build/fuzz. Found inputs accumulate in build/fuzz/fuzz-work/corpus/TARGET
# (kept between runs, so long runs build on each other); crashes land in
# build/fuzz/fuzz-work/artifacts/TARGET/. Reproduce one with
#   build/fuzz/tests/fuzz/fuzz_TARGET build/fuzz/fuzz-work/artifacts/TARGET/crash-...
# minimise it with -minimize_crash=1 -runs=100000, then make it a regression test
# (tests/test_fuzz_regress.c). Exit status: non-zero if any target found something.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ]; then
  sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
target=$1 seconds=$2
shift 2
build=build/fuzz
cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DIMT_BUILD_FUZZ=ON -DIMT_SANITIZE=address,undefined -DIMT_BUILD_TESTS=OFF \
      -DIMT_BUILD_BENCH=OFF -DIMT_OPENMP=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" >/dev/null
shared=$(cd .. && pwd)/shared
if [ "$target" = all ]; then
  targets=$(cd "$build/tests/fuzz" && ls fuzz_* | grep -v '\.' | sed 's/^fuzz_//')
else
  targets=$target
fi
status=0
mkdir -p "$build/fuzz-work"
for t in $targets; do
  fz=$build/tests/fuzz/fuzz_$t
  [ -x "$fz" ] || { echo "fuzz.sh: no target $t" >&2; exit 2; }
  echo "== fuzz_$t for ${seconds}s"
  bash tests/fuzz/run_target.sh "$fz" "$t" "$seconds" "$(pwd)/$build/fuzz-work" "$shared" "$@" \
    2>&1 | tee "$build/fuzz-work/$t.log" | grep -E '^#[0-9]+ +(INITED|DONE|pulse)|ERROR|stat::|SUMMARY' || true
  rc=${PIPESTATUS[0]}
  [ "$rc" -eq 0 ] || { echo "fuzz.sh: fuzz_$t found something (exit $rc), see $build/fuzz-work/$t.log"; status=1; }
done
exit $status
