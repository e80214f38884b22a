#!/usr/bin/env bash
# The whole test suite: install dependencies, build with -Werror, run ctest,
# then build again with AddressSanitizer + UndefinedBehaviorSanitizer and run
# ctest again, then build the libFuzzer targets with clang and run each for a
# short smoke time (IMT_FUZZ_SECONDS, default 20; 0 skips the stage).
# Usage: bash scripts/test.sh   (from anywhere in the checkout)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
jobs=$(nproc)

echo "== build (Release, -Werror)"
cmake -S . -B build/ci -DCMAKE_BUILD_TYPE=Release -DIMT_WERROR=ON >/dev/null
cmake --build build/ci -j "$jobs"
echo "== ctest"
(cd build/ci && ctest --output-on-failure -j "$jobs")

echo "== build (ASan+UBSan)"
cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DIMT_WERROR=ON \
      -DIMT_SANITIZE=address,undefined -DIMT_BUILD_BENCH=OFF >/dev/null
cmake --build build/asan -j "$jobs"
echo "== ctest under ASan+UBSan"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build/asan && ctest --output-on-failure -j "$jobs")

fuzz_seconds=${IMT_FUZZ_SECONDS:-60}
if [ "$fuzz_seconds" != 0 ]; then
  echo "== build (libFuzzer targets, clang, ASan+UBSan)"
  cmake -S . -B build/fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DIMT_BUILD_FUZZ=ON -DIMT_SANITIZE=address,undefined -DIMT_BUILD_TESTS=OFF \
        -DIMT_BUILD_BENCH=OFF -DIMT_OPENMP=OFF -DIMT_FUZZ_SECONDS="$fuzz_seconds" >/dev/null
  cmake --build build/fuzz -j "$jobs"
  # A fixed number of runs from a fixed seed (reproducible), capped in time.
  export IMT_FUZZ_RUNS=${IMT_FUZZ_RUNS:-3000}
  echo "== ctest -L fuzz (${IMT_FUZZ_RUNS} runs per target from seed ${IMT_FUZZ_SEED:-1}, at most ${fuzz_seconds}s)"
  (cd build/fuzz && ctest -L fuzz --output-on-failure)
fi
