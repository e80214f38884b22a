#!/usr/bin/env bash
# tests/test_image_walk.sh CLI SHARED -- the folder walk of a disk image
# (engine/source/fs.c, walk_fs) on a damaged ext4 made by the tools:
# mkfs.ext4 -d from a tree with a path 140 folders deep, then debugfs `ln`
# (which links folders as readily as files, without checks) makes a/b/loop
# name a (a loop) and x/alias name a too (a cross-link). Expected, from the
# layout built here: every file once; the file 140 levels down found (The
# Sleuth Kit's own walk stopped at 128 levels and dropped it); one `corrupt`
# record for the loop (path .../b/loop) and one for the cross-link (a or
# x/alias, whichever the walk meets second), neither a scan error (their
# names are listed under the other path): exit status 0. Before fs.c walked
# folders itself the loop and the cross-link gave no record, a/b/c.txt was
# listed twice and the deep file not at all.
set -u
CLI=$1
. "$(dirname "$0")/tu_image.sh"
need "" mkfs.ext4 debugfs python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/t/a/b" "$tmp/t/x"
echo c > "$tmp/t/a/b/c.txt"
echo y > "$tmp/t/x/y.txt"
p=$tmp/t/deep
for i in $(seq 1 140); do p=$p/d$i; done
mkdir -p "$p" && echo deep > "$p/deep.txt"
truncate -s 8M "$tmp/w.img" && mkfs.ext4 -q -d "$tmp/t" "$tmp/w.img" &&
  printf 'ln a a/b/loop\nln a x/alias\n' | debugfs -w -f - "$tmp/w.img" >/dev/null 2>&1 ||
  { echo "FAIL: building the image"; exit 1; }
"$CLI" scan --no-index --quiet --out "$tmp/r.jsonl" "$tmp/w.img" >/dev/null 2>&1
rc=$?
python3 - "$tmp/r.jsonl" "$tmp/w.img" "$rc" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if '"record":"file"' in l]
img, rc = sys.argv[2], int(sys.argv[3])
paths = [r['path'][len(img + '!p0/'):] for r in recs]
bad = 0
def check(ok, what):
    global bad
    if not ok:
        print('FAIL:', what); bad = 1
check(rc == 0, f'exit status {rc}, want 0')
check(sum(p.endswith('/b/c.txt') for p in paths) == 1, f'c.txt once: {paths}')
check(paths.count('x/y.txt') == 1, 'x/y.txt once')
deep = 'deep/' + '/'.join(f'd{i}' for i in range(1, 141)) + '/deep.txt'
check(deep in paths, 'the file 140 folders deep')
bad_recs = [(p, r['status'], r.get('scan_error', False), r.get('detail', ''))
            for p, r in zip(paths, recs) if r['type'] == 'dir']
loops = [b for b in bad_recs if b[0].endswith('/b/loop')]
check(len(loops) == 1 and loops[0][1] == 'corrupt' and not loops[0][2] and 'loop' in loops[0][3],
      f'one loop record: {bad_recs}')
cross = [b for b in bad_recs if b[0] in ('a', 'x/alias')]
check(len(cross) == 1 and cross[0][1] == 'corrupt' and not cross[0][2]
      and 'cross-linked' in cross[0][3], f'one cross-link record: {bad_recs}')
check(len(bad_recs) == 2, f'no other dir records: {bad_recs}')
print(f'{len(recs)} records; dir records: {[(b[0], b[1]) for b in bad_recs]}')
sys.exit(bad)
PY
