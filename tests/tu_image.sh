# tests/tu_image.sh -- sourced by the disk-image tests (test_image*.sh).
# skip MSG: what a test needs is absent: skip (exit 77), but fail under
# CI=true, where everything must be there.
skip() { echo "SKIP: $1"; [ "${CI:-}" = true ] && exit 1; exit 77; }
# need HINT TOOL...: skip unless every TOOL is on PATH; HINT (may be empty)
# says where it comes from.
need() {
  local hint=$1 t
  shift
  for t in "$@"; do command -v "$t" >/dev/null || skip "$t is missing${hint:+ ($hint)}"; done
}
# scratch: a fresh folder $tmp, removed on exit unless KEEP is set, made the
# working folder; fail=0 for check.
scratch() {
  tmp=$(mktemp -d)
  trap '[ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
  [ -n "${KEEP:-}" ] && echo "kept $tmp"
  fail=0
  cd "$tmp" || exit 1
}
# check CMD MSG: evaluate CMD; if it fails, print MSG and remember the failure.
check() { if ! eval "$1"; then echo "FAIL: $2"; fail=1; fi; }
