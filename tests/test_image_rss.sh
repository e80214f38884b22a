#!/usr/bin/env bash
# tests/test_image_rss.sh CLI SHARED -- memory stays bounded on a disk image
# whose folder holds the most names FAT allows (65,535), written straight
# into a FAT32 image made by mkfs.vfat (tests/data/image/mkfat.py: seconds,
# where a million files made through a file system take minutes here). The
# scan's own memory per name is a queue slot; TSK holds the names of the
# folder being walked (about 250 bytes each), so the peak grows with the
# largest folder, not with the image. The test scans the same layout with
# 1,000 names first, as the baseline (the libraries, the workers' decoder
# state), and asserts that the 64,535 names more add under 600 bytes each to
# the peak (VmHWM of the scan, through getrusage of each child), and that
# every name became a record.
set -u
CLI=$1
HERE=$(cd "$(dirname "$0")" && pwd)
skip() { echo "SKIP: $1"; [ "${CI:-}" = true ] && exit 1; exit 77; }
for t in mkfs.vfat python3; do command -v "$t" >/dev/null || skip "$t is missing"; done
# Under AddressSanitizer, freed memory is held in its quarantine (256 MiB):
# the peak would measure ASan, not the scan. Without it the bound holds there
# too (redzones included).
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for n in 1000 65535; do
  truncate -s 300M "$tmp/f$n.img" && mkfs.vfat -F 32 -s 8 "$tmp/f$n.img" >/dev/null &&
    python3 "$HERE/data/image/mkfat.py" "$tmp/f$n.img" 1 $n || { echo "FAIL: building the image"; exit 1; }
done
python3 - "$CLI" "$tmp" <<'PY'
import json, subprocess, sys
cli, tmp = sys.argv[1], sys.argv[2]
# each scan in a child of its own, so each peak is that scan's
def scan(n):
    code = ('import resource, subprocess, sys\n'
            'p = subprocess.run(sys.argv[1:], stderr=subprocess.DEVNULL)\n'
            'print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n')
    out = subprocess.run([sys.executable, '-c', code, cli, 'scan', '--no-index', '--quiet',
                          '--threads', '2', '--out', f'{tmp}/r{n}.jsonl', f'{tmp}/f{n}.img'],
                         capture_output=True, text=True).stdout.split()
    recs = sum(1 for line in open(f'{tmp}/r{n}.jsonl')
               if '"record":"file"' in line and '/D0000000/F' in json.loads(line)['path'])
    return int(out[0]), int(out[1]), recs
bad = 0
rc0, base_kb, n0 = scan(1000)
rc, peak_kb, n = scan(65535)
for what, r, got, want in (('1000', rc0, n0, 1000), ('65535', rc, n, 65535)):
    if r != 0:
        print('FAIL: exit status', r, 'for', what, 'names'); bad = 1
    if got != want:
        print('FAIL: records of the folder:', got, 'of', want); bad = 1
per_name = (peak_kb - base_kb) * 1024 / 64535
print(f'peak RSS {base_kb / 1024:.1f} MiB for 1000 names, {peak_kb / 1024:.1f} MiB for 65535: '
      f'{per_name:.0f} bytes per name more')
if per_name > 600:
    print('FAIL: over 600 bytes per name'); bad = 1
sys.exit(bad)
PY
