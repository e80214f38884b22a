#!/usr/bin/env bash
# tests/test_image.sh CLI SHARED -- scanning disk images end to end (issue 12).
# Builds, with the file-system tools and nothing mounted, a GPT disk image
# holding a FAT32, an ext4 and an NTFS partition (each made as a file and
# dd'd in at its partition's offset) with altered copies (resized,
# recompressed) of public test images as allocated files, deleted files, a
# deleted file whose clusters were given to another file, an NTFS orphan
# and an NTFS alternate data stream; converts it to E01 (ewfacquire, three
# segments); and checks:
#   - a picture written (dd) into free clusters of the FAT32 partition, with
#     no file naming it, and the deleted files whose blocks are unallocated
#     are carved from the file systems' unallocated blocks: alloc carved,
#     the right partition, path IMAGE!pN/carved@OFFSET at the image offset
#     where the planted bytes lie (found by searching the raw image);
#     a picture split around a cluster in use is carved whole, in two runs;
#     a picture outside the partitions is carved as IMAGE!p0/carved@OFFSET
#     (partition 0: the volume system's unallocated space after the last);
#   - a ZIP in the FAT32 partition is expanded like a folder's (issue 18): its
#     member is IMAGE!p1/dir/a.zip!inner.jpg, MD5 and match those of the
#     planted file, and the same records when the held-records budget makes
#     the scan expand it again at emit time (--max-held-bytes 1);
#   - every planted copy is found with the right path, status, partition and
#     flags, its MD5 is md5sum's of the planted file, the image bytes its
#     byte runs name are the planted file, and its PDQ matches the reference
#     hasher's hash of its original (an independent list);
#   - the raw image and the E01 give the same records, 1 and 2 threads too;
#   - the report header carries the E01's acquisition metadata; --verify-image
#     says match on the E01, mismatch on a copy whose stored MD5 was changed
#     (its section checksum fixed), and the scan of that copy is incomplete;
#   - a copy with one damaged chunk still reports every planted copy outside
#     that chunk, the ones inside as region errors, and exits 1 (hits);
#   - --resume from a cut report gives the same records;
#   - DFXML of the report is valid against the schema and has byte runs.
set -u
CLI=$1
SHARED=$2
HERE=$(cd "$(dirname "$0")" && pwd)
V=$SHARED/vectors/pdq/images
REF=$SHARED/vectors/pdq/observed/cpp-shipped-imagemagick.csv
. "$(dirname "$0")/tu_image.sh"
[ -d "$V" ] && [ -f "$REF" ] || skip "the shared vectors are missing ($V)"
need "scripts/setup.sh installs it" sfdisk mkfs.vfat mmd mcopy mdel mkfs.ext4 debugfs mkntfs \
  ntfscp ewfacquire convert python3 xmllint ifind xorriso split
# libewf leaks the buffer of a chunk it fails to read (tests/lsan.supp):
# not ours to fix, and it would fail the ASan build's run of the damaged E01.
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$HERE/lsan.supp}
scratch

# ---- planted files: altered copies of reference images --------------------
L=$V/reg-test-input/labelme-subset
alter() { convert "$1" -resize "$2" -quality 85 "$3" || exit 1; }
alter "$L/q0746.jpg" 90% fat_alloc.jpg
alter "$L/q1050.jpg" 90% fat_del.jpg
alter "$L/q0003.jpg" 90% fat_reused.jpg
alter "$L/q0291.jpg" 90% ext_alloc.jpg
alter "$L/q2821.jpg" 90% ext_del.jpg
alter "$V/misc-images/c.png" 90% ntfs_alloc.jpg
alter "$V/reg-test-input/pen-and-coaster.png" 50% ntfs_orphan.jpg
alter "$V/bridge-mods/aaa-orig.jpg" 50% ntfs_ads.jpg
# fat_alloc's original, altered otherwise: its list names it
alter "$L/q0746.jpg" 70% fat_carved.jpg
alter "$L/q1050.jpg" 70% gap_carved.jpg
alter "$L/q0291.jpg" 70% frag_carved.jpg
alter "$L/q0746.jpg" 80% zip_inner.jpg
# a ZIP (made by Python's zipfile, not by the code under test) holding one
# a video (the reference vpdq-hash-video's output for it: tests/data/video/ref)
cp "$HERE/data/video/videos/unrelated1.mp4" clip.mp4 && cp "$HERE/data/video/ref/unrelated1.txt" clip.vpdq || exit 1
python3 -c 'import zipfile; z = zipfile.ZipFile("a.zip", "w", zipfile.ZIP_DEFLATED); z.write("zip_inner.jpg", "inner.jpg"); z.writestr("readme.txt", "hello"); z.close()' || exit 1

# The known list: the reference hasher's PDQ of each original, one list per
# original so that a match names it.
declare -A ORIG=([fat_alloc]=reg-test-input/labelme-subset/q0746.jpg
  [fat_del]=reg-test-input/labelme-subset/q1050.jpg
  [ext_alloc]=reg-test-input/labelme-subset/q0291.jpg
  [ext_del]=reg-test-input/labelme-subset/q2821.jpg
  [ntfs_alloc]=misc-images/c.png
  [ntfs_orphan]=reg-test-input/pen-and-coaster.png
  [ntfs_ads]=bridge-mods/aaa-orig.jpg)
"$CLI" index create idx >/dev/null || exit 1
for k in "${!ORIG[@]}"; do
  grep ",${ORIG[$k]}\$" "$REF" | head -n 1 > "list_$k.csv"
  [ -s "list_$k.csv" ] || { echo "FAIL: ${ORIG[$k]} not in the reference CSV"; exit 1; }
  "$CLI" index import -q --format pdq-csv --name "$k" --category 1 idx "list_$k.csv" >/dev/null ||
    { echo "FAIL: import $k"; exit 1; }
done

# ---- the file systems ------------------------------------------------------
truncate -s 36M fat.img && mkfs.vfat -F 32 -s 1 -n IMTFAT fat.img >/dev/null || exit 1
export MTOOLS_SKIP_CHECK=1
mmd -i fat.img ::/dir && mcopy -i fat.img a.zip ::/dir/a.zip && mcopy -i fat.img clip.mp4 ::/dir/clip.mp4 && mmd -i fat.img ::/DCIM && mcopy -i fat.img fat_alloc.jpg ::/DCIM/holiday.jpg &&
  mcopy -i fat.img fat_del.jpg ::/DCIM/gone.jpg && mdel -i fat.img ::/DCIM/gone.jpg &&
  mcopy -i fat.img fat_reused.jpg ::/reused.jpg && mdel -i fat.img ::/reused.jpg ||
  { echo "FAIL: mtools"; exit 1; }
# reused.jpg's clusters given to new data, as the file system would: its
# deleted entry (root folder) names its first cluster; those clusters are
# marked used in both FATs and overwritten with other bytes.
python3 <<'EOF2' || { echo "FAIL: reusing clusters"; exit 1; }
import struct
f = open('fat.img', 'r+b'); b = f.read(512)
bps, spc, res, nfat = struct.unpack_from('<H', b, 11)[0], b[13], struct.unpack_from('<H', b, 14)[0], b[16]
fatsz, root = struct.unpack_from('<I', b, 36)[0], struct.unpack_from('<I', b, 44)[0]
data0 = (res + nfat * fatsz) * bps
cs = spc * bps
def coff(c): return data0 + (c - 2) * cs
f.seek(coff(root)); d = f.read(cs)
for i in range(0, cs, 32):
    e = d[i:i + 32]
    if e[0] == 0xE5 and e[1:11] == b'EUSED  JPG' and e[11] != 0x0F:
        start = struct.unpack_from('<H', e, 20)[0] << 16 | struct.unpack_from('<H', e, 26)[0]
        size = struct.unpack_from('<I', e, 28)[0]
        break
else:
    raise SystemExit('deleted entry not found')
n = (size + cs - 1) // cs
for k in range(nfat):
    for j in range(n):
        c = start + j
        f.seek((res + k * fatsz) * bps + 4 * c)
        f.write(struct.pack('<I', 0x0FFFFFFF if j == n - 1 else c + 1))
for j in range(n):
    f.seek(coff(start + j)); f.write(bytes([0x5A]) * cs)
EOF2
# A picture in free clusters only (no entry names it): 30 MiB into the
# file system, far past the few clusters the files above use.
dd if=fat_carved.jpg of=fat.img bs=1M seek=30 conv=notrunc status=none || exit 1
# A fragmented picture in free clusters: its first 4 clusters at 32 MiB, then
# one cluster in use by other bytes (marked in both FATs), then the rest.
# The carver reads the free space as one range, so it finds the picture whole,
# in two image runs.
python3 <<'EOF3' || { echo "FAIL: planting a fragmented picture"; exit 1; }
import struct
f = open('fat.img', 'r+b'); b = f.read(512)
bps, spc, res, nfat = struct.unpack_from('<H', b, 11)[0], b[13], struct.unpack_from('<H', b, 14)[0], b[16]
fatsz = struct.unpack_from('<I', b, 36)[0]
data0 = (res + nfat * fatsz) * bps
cs = spc * bps
assert cs == 512 and (32 * 2**20 - data0) % cs == 0
c = (32 * 2**20 - data0) // cs + 2
d = open('frag_carved.jpg', 'rb').read()
f.seek(data0 + (c - 2) * cs); f.write(d[:4 * cs])
for k in range(nfat):
    f.seek((res + k * fatsz) * bps + 4 * (c + 4)); f.write(struct.pack('<I', 0x0FFFFFFF))
f.seek(data0 + (c + 2) * cs); f.write(bytes([0x5A]) * cs)
f.seek(data0 + (c + 3) * cs); f.write(d[4 * cs:])
EOF3
mkdir -p extd/photos && cp ext_alloc.jpg extd/photos/kept.jpg && cp ext_del.jpg extd/photos/removed.jpg
truncate -s 8M ext.img && mkfs.ext4 -q -F -d extd ext.img || exit 1
debugfs -w -R "rm /photos/removed.jpg" ext.img >/dev/null 2>&1 || { echo "FAIL: debugfs rm"; exit 1; }
truncate -s 8M ntfs.img && mkntfs -q -F -Q ntfs.img >/dev/null 2>&1 || { echo "FAIL: mkntfs"; exit 1; }
echo "a note" > note.txt
ntfscp -q ntfs.img ntfs_alloc.jpg kept.jpg && ntfscp -q ntfs.img ntfs_orphan.jpg todelete.jpg &&
  ntfscp -q ntfs.img note.txt readme.txt && ntfscp -q -N hidden ntfs.img ntfs_ads.jpg readme.txt ||
  { echo "FAIL: ntfscp"; exit 1; }
# Delete todelete.jpg's MFT entry as a crashed delete would leave it: the
# entry's in-use flag cleared (its name and clusters stay): TSK finds it as
# an orphan.
ino=$(ifind -n todelete.jpg ntfs.img) || { echo "FAIL: ifind"; exit 1; }
python3 - "$ino" <<'EOF' || exit 1
import struct, sys
ino = int(sys.argv[1])
f = open('ntfs.img', 'r+b'); b = f.read(512)
bps, spc = struct.unpack_from('<H', b, 11)[0], b[13]
mft = struct.unpack_from('<Q', b, 48)[0] * spc * bps
cpr = struct.unpack_from('<b', b, 64)[0]
rs = 2 ** (-cpr) if cpr < 0 else cpr * spc * bps
off = mft + ino * rs
f.seek(off); e = f.read(24); assert e[:4] == b'FILE'
f.seek(off + 22); f.write(struct.pack('<H', struct.unpack_from('<H', e, 22)[0] & ~1))
EOF

# ---- the disk: GPT, partitions at 1 MiB, 38 MiB, 47 MiB ---------------------
truncate -s 58M disk.raw
printf 'label: gpt\nunit: sectors\nfirst-lba: 2048\nstart=2048, size=73728, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\nstart=77824, size=16384, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\nstart=96256, size=16384, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\n' |
  sfdisk -q disk.raw || { echo "FAIL: sfdisk"; exit 1; }
dd if=fat.img of=disk.raw bs=512 seek=2048 conv=notrunc status=none
dd if=ext.img of=disk.raw bs=512 seek=77824 conv=notrunc status=none
dd if=ntfs.img of=disk.raw bs=512 seek=96256 conv=notrunc status=none
# a picture outside every partition (after the last one, which ends at 55 MiB)
dd if=gap_carved.jpg of=disk.raw bs=1M seek=56 conv=notrunc status=none
EWF_META=(-C "CASE-42" -D "generated test disk" -e "Examiner Ex" -E "EV-7" -N "notes here")
ewfacquire -u -q -t disk "${EWF_META[@]}" -c none -S 20MiB -f encase6 disk.raw >/dev/null 2>&1 ||
  { echo "FAIL: ewfacquire"; exit 1; }
check '[ -f disk.E01 ] && [ -f disk.E02 ] && [ -f disk.E03 ]' "ewfacquire wrote three segments"
RAW_MD5=$(md5sum < disk.raw | cut -c1-32)

scan() { # OUT IMAGE [options...]: the exit status in $st
  local out=$1 img=$2; shift 2
  "$CLI" scan --index idx --quiet --force --out "$out" "$@" "$img" 2>"$out.err"; st=$?
}

scan raw.jsonl disk.raw --threads 2
check '[ $st -eq 1 ]' "raw: exit 1 with hits (got $st: $(tail -n 3 raw.jsonl.err))"
scan e01.jsonl disk.E01 --threads 1 --verify-image
check '[ $st -eq 1 ]' "E01: exit 1 with hits (got $st)"

# ---- every planted copy: path, status, partition, flags, bytes, match -----
python3 - "$RAW_MD5" <<'EOF' || fail=1
import hashlib, json, sys
raw_md5 = sys.argv[1]
img = open('disk.raw', 'rb').read()
def load(p):
    hdr, recs = None, []
    for line in open(p):
        r = json.loads(line)
        if r['record'] == 'header': hdr = r
        elif r['record'] == 'file': recs.append(r)
    return hdr, recs
bad = 0
def expect(c, what):
    global bad
    if not c:
        print('FAIL:', what); bad = 1
# name in image -> (planted file, alloc, partition, list or None, overwritten)
want = {
    'p1/DCIM/holiday.jpg': ('fat_alloc.jpg', 'allocated', 1, 'fat_alloc', False),
    'p1/DCIM/_one.jpg': ('fat_del.jpg', 'deleted', 1, 'fat_del', False),
    'p1/_eused.jpg': (None, 'deleted', 1, None, True),
    'p2/photos/kept.jpg': ('ext_alloc.jpg', 'allocated', 2, 'ext_alloc', False),
    'p2/photos/removed.jpg': ('ext_del.jpg', 'deleted', 2, 'ext_del', False),
    'p3/kept.jpg': ('ntfs_alloc.jpg', 'allocated', 3, 'ntfs_alloc', False),
    'p3/$OrphanFiles/todelete.jpg': ('ntfs_orphan.jpg', 'orphan', 3, 'ntfs_orphan', None),
    'p3/readme.txt:hidden': ('ntfs_ads.jpg', 'allocated', 3, 'ntfs_ads', False),
}
parts = {1: 2048 * 512, 2: 77824 * 512, 3: 96256 * 512, 0: (96256 + 16384) * 512}
for rep in ('raw.jsonl', 'e01.jsonl'):
    hdr, recs = load(rep)
    image = 'disk.raw' if rep == 'raw.jsonl' else 'disk.E01'
    by = {r['path']: r for r in recs}
    for name, (planted, alloc, part, lst, ow) in want.items():
        r = by.get(image + '!' + name)
        expect(r is not None, f'{rep}: {name} found (have {sorted(by)[:40]})')
        if r is None: continue
        loc = r['image']
        expect(loc['alloc'] == alloc, f'{rep}: {name} is {alloc} (got {loc["alloc"]})')
        expect(loc['partition'] == part and loc['part_offset'] == parts[part],
               f'{rep}: {name} in partition {part} at {parts[part]}')
        if ow is not None:
            expect(('content-may-be-overwritten' in r.get('flags', [])) == ow,
                   f'{rep}: {name} content-may-be-overwritten is {ow}')
        if planted is None: continue
        data = open(planted, 'rb').read()
        expect(r.get('md5') == hashlib.md5(data).hexdigest(), f'{rep}: {name} MD5 = md5sum of {planted}')
        expect(r['size'] == len(data), f'{rep}: {name} size')
        # the byte runs name exactly the planted bytes in the raw image
        got = b''.join(img[io:io + ln] if io is not None else bytes(ln)
                       for fo, io, ln in loc['runs'])
        expect(got == data, f'{rep}: {name} byte runs hold the planted bytes')
        expect(loc.get('first_offset') == loc['runs'][0][1], f'{rep}: {name} first_offset')
        lists = {m['list'] for m in r['matches']}
        expect(lists == {lst}, f'{rep}: {name} matches list {lst} (got {lists})')
    expect(by[image + '!p3/readme.txt:hidden']['image'].get('stream') == 'hidden', 'ADS stream name')
    expect(by[image + '!p1/_eused.jpg'].get('md5') != hashlib.md5(open('fat_reused.jpg','rb').read()).hexdigest(),
           'the overwritten deleted file does not hash as the original')
    # carved from unallocated blocks: where the planted bytes lie in the
    # raw image (searched here, not taken from the records)
    carved = {}
    for planted, part, lst in (('fat_carved.jpg', 1, 'fat_alloc'), ('fat_del.jpg', 1, 'fat_del'),
                               ('ext_del.jpg', 2, 'ext_del'), ('gap_carved.jpg', 0, 'fat_del')):
        data = open(planted, 'rb').read()
        off = img.find(data)
        expect(off > 0 and img.find(data, off + 1) < 0, f'{planted} lies once in the raw image')
        name = f'p{part}/carved@{off}'
        carved[name] = lst
        r = by.get(image + '!' + name)
        expect(r is not None, f'{rep}: {planted} carved as {name} (have {sorted(p for p in by if "carved" in p)})')
        if r is None: continue
        loc = r['image']
        expect(loc['alloc'] == 'carved', f'{rep}: {name} is carved (got {loc["alloc"]})')
        expect(loc['partition'] == part and loc['part_offset'] == parts[part],
               f'{rep}: {name} in partition {part} at {parts[part]}')
        expect(loc.get('first_offset') == off, f'{rep}: {name} first_offset {off} (got {loc.get("first_offset")})')
        want_c = {'offset': off, 'length': len(data), 'format': 'jpeg', 'truncated': False, 'end': 'complete'}
        expect(r.get('carved') == want_c, f'{rep}: {name} "carved" is {want_c} (got {r.get("carved")})')
        expect(not r.get('partial'), f'{rep}: {name} is not partial')
        expect(r.get('md5') == hashlib.md5(data).hexdigest(), f'{rep}: {name} MD5 = md5sum of {planted}')
        expect(r['size'] == len(data), f'{rep}: {name} size {len(data)} (got {r["size"]})')
        got = b''.join(img[io:io + ln] for fo, io, ln in loc['runs'])
        expect(got == data, f'{rep}: {name} byte runs hold the planted bytes')
        lists = {m['list'] for m in r['matches']}
        expect(lists == {lst}, f'{rep}: {name} matches list {lst} (got {lists})')
    # the fragmented one: whole, in two runs around the cluster in use
    fo = 2048 * 512 + 32 * 2**20
    data = open('frag_carved.jpg', 'rb').read()
    name = f'p1/carved@{fo}'
    carved[name] = 'ext_alloc'
    r = by.get(image + '!' + name)
    expect(r is not None, f'{rep}: the fragmented picture carved as {name}')
    if r is not None:
        expect(r['image']['runs'] == [[0, fo, 2048], [2048, fo + 2560, len(data) - 2048]],
               f'{rep}: {name} runs skip the cluster in use (got {r["image"]["runs"]})')
        expect(r.get('md5') == hashlib.md5(data).hexdigest(), f'{rep}: {name} MD5 = md5sum of frag_carved.jpg')
        expect({m['list'] for m in r['matches']} == {'ext_alloc'}, f'{rep}: {name} matches ext_alloc')
    # a ZIP inside the image: its member, hashed and matched
    r = by.get(image + '!p1/dir/a.zip!inner.jpg')
    expect(r is not None, f'{rep}: the ZIP member p1/dir/a.zip!inner.jpg found')
    if r is not None:
        data = open('zip_inner.jpg', 'rb').read()
        expect(r.get('md5') == hashlib.md5(data).hexdigest(), f'{rep}: the ZIP member MD5 = md5sum of zip_inner.jpg')
        expect({m['list'] for m in r['matches']} == {'fat_alloc'}, f'{rep}: the ZIP member matches fat_alloc')
    # a video inside the image: decoded through the image's random access,
    # every sampled frame as the reference vpdq-hash-video gives it
    r = by.get(image + '!p1/dir/clip.mp4')
    expect(r is not None and r.get('format') == 'mp4', f'{rep}: the video p1/dir/clip.mp4 read as mp4')
    if r is not None:
        want_f = [tuple(l.strip().split(',')) for l in open('clip.vpdq') if l.strip()]
        got_f = [(str(f['frame']), str(f['quality']), f['pdq'], '%.3f' % f['timestamp'])
                 for f in r.get('frames', [])]
        expect(len(want_f) > 0 and got_f == want_f,
               f'{rep}: the video\'s frames are the reference\'s ({len(got_f)} of {len(want_f)}; {r.get("detail")})')
    hits = {r['path'].split('!', 1)[1] for r in recs if r['matches']}
    expect(hits == {n for n, w in want.items() if w[3]} | set(carved) | {'p1/dir/a.zip!inner.jpg'},
           f'{rep}: hits are exactly the planted copies (got {hits})')
    expect(not any(r.get('scan_error') for r in recs), f'{rep}: no scan errors')
# the E01's header: acquisition metadata and verification
hdr, _ = load('e01.jsonl')
im = hdr.get('images', [{}])[0]
for k, v in (('kind', 'e01'), ('case_number', 'CASE-42'), ('examiner', 'Examiner Ex'),
             ('evidence_number', 'EV-7'), ('description', 'generated test disk'),
             ('notes', 'notes here'), ('segments', 3), ('stored_md5', raw_md5),
             ('computed_md5', raw_md5), ('verify', 'match')):
    expect(im.get(k) == v, f'E01 header {k} = {v!r} (got {im.get(k)!r})')
# raw and E01: the same records but for the image's name
def norm(recs, image):
    out = []
    for r in recs:
        r = dict(r); r.pop('seq')
        r['path'] = r['path'].replace(image + '!', 'IMG!', 1)
        if 'image' in r: r['image'] = dict(r['image']); r['image'].pop('path')
        out.append(r)
    return out
_, a = load('raw.jsonl'); _, b = load('e01.jsonl')
expect(norm(a, 'disk.raw') == norm(b, 'disk.E01'), 'raw and E01 give the same records')
sys.exit(bad)
EOF

# ---- 1 vs 2 threads: the same records --------------------------------------
scan raw1.jsonl disk.raw --threads 1
check 'diff <(grep "\"record\":\"file\"" raw.jsonl) <(grep "\"record\":\"file\"" raw1.jsonl) >/dev/null' \
  "the same records with 1 and 2 threads"

# ---- the held-records budget: the ZIP expanded again when emitted ---------
scan held.jsonl disk.raw --threads 2 --max-held-bytes 1
check 'diff <(grep "\"record\":\"file\"" raw.jsonl) <(grep "\"record\":\"file\"" held.jsonl) >/dev/null' \
  "a ZIP in an image expanded at emit time (--max-held-bytes 1) gives the same records"

# ---- --resume from a cut report ---------------------------------------------
head -n 12 raw.jsonl > cut.jsonl
"$CLI" scan --index idx --quiet --threads 2 --resume cut.jsonl --out resumed.jsonl disk.raw 2>/dev/null
check 'diff <(grep "\"record\":\"file\"" raw.jsonl) <(grep "\"record\":\"file\"" resumed.jsonl) >/dev/null' \
  "--resume continues an image scan to the same records"

# ---- a modified copy: --verify-image says mismatch, the scan is incomplete --
cp disk.E01 mod.E01 && cp disk.E02 mod.E02 && cp disk.E03 mod.E03
python3 - <<'EOF' || fail=1
import struct, zlib
# Change the stored MD5 in the hash and digest sections of the last segment
# and fix each section's Adler-32, so libewf reads the changed value.
p = 'mod.E03'; d = bytearray(open(p, 'rb').read())
off, done = 13, 0
while off + 76 <= len(d):
    typ = bytes(d[off:off + 16]).rstrip(b'\0')
    nxt, size = struct.unpack_from('<QQ', d, off + 16)
    data = off + 76
    if typ == b'hash':
        d[data] ^= 0xFF
        struct.pack_into('<I', d, data + 32, zlib.adler32(bytes(d[data:data + 32])))
        done += 1
    elif typ == b'digest':
        d[data] ^= 0xFF
        struct.pack_into('<I', d, data + 76, zlib.adler32(bytes(d[data:data + 76])))
        done += 1
    if typ in (b'done', b'next') or nxt <= off: break
    off = nxt
open(p, 'wb').write(d)
assert done >= 1, 'no hash section found'
EOF
scan mod.jsonl mod.E01 --verify-image
check 'head -n 1 mod.jsonl | grep -q "\"verify\":\"mismatch\""' "--verify-image: mismatch on a modified copy"
check 'tail -n 1 mod.jsonl | grep -q "\"complete\":false" && grep -q "does not match its stored MD5" mod.jsonl.err' \
  "a mismatch makes the scan incomplete, and says why"
check '[ $st -eq 1 ]' "a mismatching copy with hits exits 1 (got $st)"

# ---- a damaged chunk: the rest is still scanned ----------------------------
python3 - <<'EOF' || fail=1
# Flip a byte of ntfs_alloc.jpg's bytes in the uncompressed E01: its chunk's
# checksum then fails.
d = bytearray(open('disk.E03', 'rb').read())
data = open('ntfs_alloc.jpg', 'rb').read()
pat = data[len(data) // 2:len(data) // 2 + 64]
i = d.find(pat)
assert i > 0 and d.find(pat, i + 1) < 0, 'the pattern is not unique in the third segment'
d[i + 10] ^= 0xFF
open('bad.E03', 'wb').write(d)
EOF
cp disk.E01 bad.E01 && cp disk.E02 bad.E02
scan bad.jsonl bad.E01 --threads 2
check '[ $st -eq 1 ]' "a damaged E01 with hits exits 1 (got $st)"
python3 - <<'EOF' || fail=1
import json, sys
recs = [json.loads(l) for l in open('bad.jsonl')]
files = {r['path'].split('!', 1)[1]: r for r in recs if r['record'] == 'file'}
bad = 0
k = files.get('p3/kept.jpg', {})
if not (k.get('scan_error') and 'corrupt E01 chunk' in k.get('detail', '')):
    print('FAIL: the file in the damaged chunk is a region error:', k.get('status'), k.get('detail')); bad = 1
for n in ('p1/DCIM/holiday.jpg', 'p1/DCIM/_one.jpg', 'p2/photos/kept.jpg', 'p2/photos/removed.jpg',
          'p3/readme.txt:hidden'):
    if not files.get(n, {}).get('matches'):
        print('FAIL: outside the damaged chunk, still found:', n); bad = 1
s = recs[-1]
if s.get('complete') is not False:
    print('FAIL: the damaged scan is incomplete'); bad = 1
sys.exit(bad)
EOF
scan badv.jsonl bad.E01 --verify-image
check 'head -n 1 badv.jsonl | grep -q "\"verify\":\"unreadable\""' "--verify-image on a damaged copy: unreadable"

# ---- a missing image and a missing segment --------------------------------
cp disk.E01 gap.E01 && cp disk.E03 gap.E03
scan gap.jsonl gap.E01
check '[ $st -eq 1 ] || [ $st -eq 2 ]' "a missing segment: exit 1 or 2 (got $st)"
check 'tail -n 1 gap.jsonl | grep -q "\"complete\":false"' "a missing segment: incomplete"

# ---- other forms: split raw, a bare file system (p0), an ISO ----------------
split -b 20M -d -a 3 --numeric-suffixes=1 disk.raw split. || exit 1
scan split.jsonl split.001
check 'diff <(grep "\"record\":\"file\"" raw.jsonl | sed "s/disk\.raw/IMG/g") <(grep "\"record\":\"file\"" split.jsonl | sed "s/split\.001/IMG/g") >/dev/null' \
  "split raw (.001, .002, .003) gives the raw image's records"
scan bare.jsonl ext.img
check 'grep -q "\"path\":\"ext.img!p0/photos/kept.jpg\"" bare.jsonl && grep "ext.img!p0/photos/kept.jpg" bare.jsonl | grep -q "\"list\":\"ext_alloc\""' \
  "a bare file system: IMAGE!p0/..., matched"
mkdir -p isod/pics && cp fat_alloc.jpg isod/pics/a.jpg
  xorriso -as mkisofs -quiet -o disc.iso isod 2>/dev/null || { echo "FAIL: xorriso"; fail=1; }
  scan iso.jsonl disc.iso
  check 'grep -i "disc.iso!p0/pics/a.jpg" iso.jsonl | grep -q "\"list\":\"fat_alloc\""' "an ISO 9660 image: its file found and matched"

# ---- carving's bounded window: runs far behind the reads are dropped --------
# A bare FAT32 (512-byte clusters) whose free space is fragmented (every
# other cluster in use) over its first 8 MiB, free for 100 MiB, fragmented
# again over its last 12 MiB: by the time the carver reads the last part,
# the first part's 8,192 runs lie more than its reach (~70 MiB) behind and
# are dropped to make room. A picture written into every other cluster of
# the last part, after that drop, is still carved whole with its 512-byte
# runs mapped to the right image offsets.
truncate -s 124M win.img && mkfs.vfat -F 32 -s 1 win.img >/dev/null || exit 1
python3 <<'EOF4' || { echo "FAIL: building the fragmented FAT"; exit 1; }
import struct
f = open('win.img', 'r+b'); b = f.read(512)
bps, res, nfat = struct.unpack_from('<H', b, 11)[0], struct.unpack_from('<H', b, 14)[0], b[16]
fatsz = struct.unpack_from('<I', b, 36)[0]
data0 = (res + nfat * fatsz) * bps
nclus = (124 * 2**20 - data0) // 512
f.seek(res * bps); fat = bytearray(f.read(fatsz * bps))
used = list(range(10, 10 + 16384, 2)) + list(range(nclus - 24576, nclus, 2))
for c in used: struct.pack_into('<I', fat, 4 * c, 0x0FFFFFFF)
for k in range(nfat):
    f.seek((res + k * fatsz) * bps); f.write(fat)
d = open('frag_carved.jpg', 'rb').read()
c0 = nclus - 24576 + 20001  # free (odd offset from an even used start), after the drop
offs = []
for i in range(0, len(d), 512):
    c = c0 + 2 * (i // 512)
    f.seek(data0 + (c - 2) * 512); f.write(d[i:i + 512]); offs.append(data0 + (c - 2) * 512)
open('win.offs', 'w').write(' '.join(map(str, offs)))
EOF4
"$CLI" scan --no-index --quiet --force --threads 2 --out win.jsonl win.img 2>/dev/null
python3 - <<'EOF5' || fail=1
import hashlib, json, sys
offs = list(map(int, open('win.offs').read().split()))
d = open('frag_carved.jpg', 'rb').read()
recs = {r['path']: r for r in map(json.loads, open('win.jsonl')) if r['record'] == 'file'}
r = recs.get(f'win.img!p0/carved@{offs[0]}')
bad = 0
if r is None:
    print('FAIL: the picture after the dropped runs is carved', sorted(recs)[:10]); sys.exit(1)
want = [[i * 512, o, min(512, len(d) - i * 512)] for i, o in enumerate(offs)]
if r['image']['runs'] != want:
    print('FAIL: its runs are the clusters it was written to:', r['image']['runs'][:4], want[:4]); bad = 1
if r.get('md5') != hashlib.md5(d).hexdigest():
    print('FAIL: its MD5 is md5sum of frag_carved.jpg'); bad = 1
if any(x.get('scan_error') for x in recs.values()):
    print('FAIL: no scan errors in the fragmented FAT'); bad = 1
sys.exit(bad)
EOF5

# ---- a hostile size: an inode claiming 1 TiB in an 8 MiB file system --------
cp ext.img huge.img && debugfs -w -R "sif /photos/kept.jpg size 0x10000000000" huge.img >/dev/null 2>&1 ||
  { echo "FAIL: debugfs sif"; fail=1; }
timeout 60 "$CLI" scan --no-index --quiet --out huge.jsonl huge.img 2>/dev/null; st=$?
check '[ $st -eq 2 ]' "an absurd size: the scan ends, incomplete (exit $st; 124 = it hung reading holes)"
check 'grep "huge.img!p0/photos/kept.jpg" huge.jsonl | grep -q "more than twice its file system"' \
  "an absurd size is a clear per-file error"

# A fuzzed 20 KB ext2 image (tests/regress/image_ext4) whose orphan inode
# claims 2 GB in indirect blocks: TSK builds that block list in quadratic
# time (45 s here) unless the size is refused before the list is loaded.
cp "$HERE/regress/image_ext4/quadratic-runs-huge-inode.img" quad.img
timeout 20 "$CLI" scan --no-index --quiet --out quad.jsonl quad.img 2>/dev/null; st=$?
check '[ $st -eq 2 ] && grep -q "more than twice its file system" quad.jsonl' \
  "a huge ext2 inode is refused before TSK lists its blocks (exit $st; 124 = over 20 s)"

# ---- DFXML with byte runs, valid against the schema ---------------------------
"$CLI" report dfxml raw.jsonl -o raw.xml 2>/dev/null
check 'xmllint --noout --schema "$SHARED/schemas/dfxml/dfxml.xsd" raw.xml 2>/dev/null' "DFXML valid against the schema"
check 'grep -q "<byte_run file_offset=\"0\" img_offset=" raw.xml && grep -q "<alloc>0</alloc>" raw.xml' \
  "DFXML has byte runs and deleted files"
# the JSONL conversion gives the records back unchanged (facts.c reads the location)
"$CLI" report jsonl raw.jsonl -o again.jsonl 2>/dev/null
check 'diff <(grep "\"record\":\"file\"" raw.jsonl) <(grep "\"record\":\"file\"" again.jsonl) >/dev/null' \
  "report jsonl re-emits image records unchanged"

[ $fail -eq 0 ] && echo "test_image: all checks passed"
exit $fail
