#!/usr/bin/env bash
# Run one libFuzzer target for a given time with its seed corpus.
#
# Usage: run_target.sh FUZZER NAME SECONDS WORK_DIR SHARED_DIR [libFuzzer flags...]
#
#   WORK_DIR/seeds/NAME      seeds copied from SHARED_DIR at run time (rebuilt each run)
#   WORK_DIR/corpus/NAME     inputs the fuzzer found interesting (kept between runs)
#   WORK_DIR/artifacts/NAME  crash-*, leak-*, timeout-*, oom-* inputs, if any
#   tests/fuzz/seeds/NAME    small seeds written for this project (committed)
#   tests/fuzz/dict/NAME.dict  a libFuzzer dictionary, when there is one
#
# Exit status: libFuzzer's (0 when it found nothing). A missing SHARED_DIR is
# not fatal (the committed seeds still run) except under CI=true.
set -euo pipefail
fuzzer=$1 name=$2 seconds=$3 work=$4 shared=$5
shift 5
here=$(cd "$(dirname "$0")" && pwd)

seeds=$work/seeds/$name corpus=$work/corpus/$name art=$work/artifacts/$name
mkdir -p "$corpus" "$art"
dirs=("$corpus")
if [ -d "$shared/corpus" ] || [ -d "$shared/vectors" ]; then
  python3 "$here/seeds.py" "$name" "$shared" "$seeds"
  dirs+=("$seeds")
elif [ "${CI:-}" = true ]; then
  echo "run_target.sh: $shared missing under CI=true" >&2
  exit 1
else
  echo "run_target.sh: $shared missing; fuzzing from committed seeds only" >&2
fi
[ -d "$here/seeds/$name" ] && dirs+=("$here/seeds/$name")
if [ "$name" = list_auto ]; then  # format detection: every list format's seeds
  for d in "$here"/seeds/list_*; do dirs+=("$d"); done
fi
# Seeds made by code: the target writes them at start-up (a valid index file).
export IMT_FUZZ_SEED_DIR=$work/gen/$name
rm -rf "$IMT_FUZZ_SEED_DIR"
mkdir -p "$IMT_FUZZ_SEED_DIR"
dirs+=("$IMT_FUZZ_SEED_DIR")
if [[ $name == image_* ]]; then  # small file-system images and an E01, made by the tools
  bash "$here/make_image_seeds.sh" "$name" "$IMT_FUZZ_SEED_DIR" || exit 1
fi
case $name in
  index_open|index_pagecheck) maxlen=262144 ;;
  image_ntfs) maxlen=2097152 ;;
  image_*) maxlen=262144 ;;
  list_*|video) maxlen=65536 ;;
  *) maxlen=16384 ;;
esac
# IMT_FUZZ_RUNS=N (the CI smoke): a fixed number of executions from a fixed
# seed, so the smoke is reproducible: what passes here passes in CI; SECONDS
# stays as a cap. Long runs (scripts/fuzz.sh) leave it unset: random seeds.
# The image targets get 30 s per input: The Sleuth Kit zeroes and copies
# what an ext4 inline-data inode claims (up to 4 GB) whenever it reads the
# inode, seconds under ASan (tests/fuzz/known/README); a hang still fails.
tmo=10
[[ $name == image_* ]] && tmo=30
flags=(-max_total_time="$seconds" -timeout="${IMT_FUZZ_TIMEOUT:-$tmo}"
       -rss_limit_mb="${IMT_FUZZ_RSS_MB:-2048}" -max_len="${IMT_FUZZ_MAX_LEN:-$maxlen}"
       -print_final_stats=1 -artifact_prefix="$art/")
[ -f "$here/dict/$name.dict" ] && flags+=(-dict="$here/dict/$name.dict")
if [[ $name == image_* ]]; then
  # TSK (4.11) callocs what a hostile inode claims (an ext4 inode's inline
  # data size, gigabytes) during its orphan search, and uses only the bytes
  # the image holds: a virtual allocation, not memory. -rss_limit_mb still
  # bounds the memory used; an allocation the system refuses is NULL to TSK,
  # as it would be outside the fuzzer.
  flags+=(-malloc_limit_mb=65536)
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}:allocator_may_return_null=1
fi
if [ -n "${IMT_FUZZ_RUNS:-}" ]; then
  flags+=(-runs="$IMT_FUZZ_RUNS" -seed="${IMT_FUZZ_SEED:-1}")
fi

# Leaks are findings; halt on the first UBSan report rather than logging it.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
# libewf's own leak on a damaged chunk (tests/lsan.supp says which).
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$here/../lsan.supp}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
echo "run_target.sh: $fuzzer ${flags[*]} $* ${dirs[*]}"
exec "$fuzzer" "${flags[@]}" "$@" "${dirs[@]}"
