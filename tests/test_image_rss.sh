#!/usr/bin/env bash
# tests/test_image_rss.sh CLI SHARED -- memory stays bounded on a disk image
# whose folder holds a million names: an exFAT image made by mkfs.exfat
# (exfatprogs), into which tests/data/image/mkexfat_names.c (built by CMake,
# IMT_MKEXFAT_NAMES) writes a folder D0000000 of 1,000,000 empty files
# straight into its clusters (about a second, where a million files made
# through a file system take many minutes); fsck.exfat, an independent
# reader, must count them. exFAT because it is the file system whose folders
# hold a million names (a FAT folder at most 65,535) and on which The Sleuth
# Kit lists them in linear time (on ext4 and NTFS it checks each name against
# every name before it: hours for a million).
#
# What is held per name: The Sleuth Kit keeps the names of the folder being
# listed (a TSK_FS_NAME, 88 bytes, and the name's own buffer; while its array
# grows by realloc, old and new copies, and the folder's raw bytes, 96 per
# name on exFAT); the scan itself holds a queue of 1,024 entries and nothing
# per name. So the peak grows with the largest folder, about 300 bytes per
# name, not with the image. The test scans the same layout with 1,000 names
# first, as the baseline (the libraries, the workers' decoder state), and
# asserts that the 999,000 names more add under 600 bytes each to the peak
# (VmHWM of the scan, through getrusage of each child; room for ASan's
# redzones), that the peak stays under 1.5 GiB, and that every name became a
# record. (A folder of a million names peaked at 8.5 GB before
# imt_tune_allocator kept one malloc arena.)
set -u
CLI=$1
. "$(dirname "$0")/tu_image.sh"
need "" mkfs.exfat fsck.exfat python3
MK=${IMT_MKEXFAT_NAMES:-}
[ -x "$MK" ] || skip "the mkexfat_names helper is missing (IMT_MKEXFAT_NAMES, built by CMake)"
# Under AddressSanitizer, freed memory is held in its quarantine (256 MiB):
# the peak would measure ASan, not the scan. Without it the bound holds there
# too (redzones included).
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0"
# in memory where there is room: the report of a million records is 650 MB
base=/tmp
[ -d /dev/shm ] && [ -w /dev/shm ] && base=/dev/shm
tmp=$(mktemp -d -p "$base")
trap 'rm -rf "$tmp"' EXIT
for n in 1000 1000000; do
  truncate -s 128M "$tmp/x$n.img" && mkfs.exfat -c 4096 "$tmp/x$n.img" >/dev/null &&
    "$MK" "$tmp/x$n.img" $n || { echo "FAIL: building the image of $n names"; exit 1; }
  out=$(fsck.exfat -n "$tmp/x$n.img" 2>&1)
  case $out in
    *"directories 2, files $n"*) ;;
    *) echo "FAIL: fsck.exfat does not count $n files: $out"; exit 1 ;;
  esac
done
python3 - "$CLI" "$tmp" <<'PY'
import subprocess, sys
cli, tmp = sys.argv[1], sys.argv[2]
# each scan in a child of its own, so each peak is that scan's
def scan(n):
    code = ('import resource, subprocess, sys\n'
            'p = subprocess.run(sys.argv[1:], stderr=subprocess.DEVNULL)\n'
            'print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n')
    out = subprocess.run([sys.executable, '-c', code, cli, 'scan', '--no-index', '--quiet',
                          '--threads', '2', '--out', f'{tmp}/r{n}.jsonl', f'{tmp}/x{n}.img'],
                         capture_output=True, text=True).stdout.split()
    recs = 0
    with open(f'{tmp}/r{n}.jsonl', 'rb') as f:
        for line in f:
            if b'"record":"file"' in line and b'!p0/D0000000/F' in line:
                recs += 1
    return int(out[0]), int(out[1]), recs
bad = 0
rc0, base_kb, n0 = scan(1000)
rc, peak_kb, n = scan(1000000)
for what, r, got, want in (('1000', rc0, n0, 1000), ('1000000', rc, n, 1000000)):
    if r != 0:
        print('FAIL: exit status', r, 'for', what, 'names'); bad = 1
    if got != want:
        print('FAIL: records of the folder:', got, 'of', want); bad = 1
per_name = (peak_kb - base_kb) * 1024 / 999000
print(f'peak RSS {base_kb / 1024:.1f} MiB for 1000 names, {peak_kb / 1024:.1f} MiB for 1000000: '
      f'{per_name:.0f} bytes per name more')
if per_name > 600:
    print('FAIL: over 600 bytes per name'); bad = 1
if peak_kb > 1536 * 1024:
    print('FAIL: peak over 1.5 GiB'); bad = 1
sys.exit(bad)
PY
