#!/usr/bin/env bash
# tests/test_image_rss.sh CLI SHARED -- memory stays bounded on a disk image
# whose folder holds the most names FAT allows (65,535), written straight
# into a FAT32 image made by mkfs.vfat (tests/data/image/mkfat.py: seconds,
# where a million files made through a file system take minutes here). The
# scan's own memory per name is a queue slot; TSK holds the names of the
# folder being walked (about 250 bytes each), so the peak grows with the
# largest folder, not with the image: the test asserts the peak (VmHWM of
# the scan, through getrusage of the child) stays under 80 MiB, and that
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
truncate -s 300M "$tmp/many.img" && mkfs.vfat -F 32 -s 8 "$tmp/many.img" >/dev/null &&
  python3 "$HERE/data/image/mkfat.py" "$tmp/many.img" 1 65535 || { echo "FAIL: building the image"; exit 1; }
python3 - "$CLI" "$tmp" <<'PY'
import json, resource, subprocess, sys
cli, tmp = sys.argv[1], sys.argv[2]
p = subprocess.run([cli, 'scan', '--no-index', '--quiet', '--threads', '2', '--out', tmp + '/r.jsonl',
                    tmp + '/many.img'], stderr=subprocess.DEVNULL)
peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
n = 0
for line in open(tmp + '/r.jsonl'):
    r = json.loads(line)
    if r['record'] == 'file' and '/D0000000/F' in r['path']:
        n += 1
bad = 0
if p.returncode != 0:
    print('FAIL: exit status', p.returncode); bad = 1
if n != 65535:
    print('FAIL: records of the folder:', n, 'of 65535'); bad = 1
print(f'peak RSS {peak_kb / 1024:.1f} MiB for 65535 names in one folder')
if peak_kb > 80 * 1024:
    print('FAIL: peak RSS over 80 MiB'); bad = 1
sys.exit(bad)
PY
