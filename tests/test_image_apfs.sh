#!/usr/bin/env bash
# tests/test_image_apfs.sh CLI SHARED -- APFS in disk images (issue 12: "APFS
# where TSK 4.11 opens it"). No Debian tool writes files into APFS without
# mounting it, so the volume here is the empty one mkapfs (apfsprogs) makes;
# what can be tested honestly is tested:
#   - a GPT image with a FAT partition (a picture copied in by mcopy) and an
#     APFS partition (mkapfs, accepted by apfsck) with a picture written (dd)
#     into blocks its space manager calls free (TSK's pstat lists them): the
#     scan opens the container and its volume (no partition or volume error,
#     no records made up of the empty volume's metadata), finds the FAT
#     picture, and carves the planted pictures (one in the middle of the
#     largest free range, one at the first block of the first free range,
#     which TSK's own block_getflags for APFS calls allocated) from the
#     container's free blocks at the image offsets where their bytes lie
#     (searched here), fs "apfs", partition 2; all match the reference
#     hasher's PDQ of their originals; 1 and 2 threads give the same records;
#   - the APFS file system filling an image of its own (no partition table)
#     is scanned the same way (partition 0);
#   - a volume marked encrypted is one record IMAGE!p2!v1 (type dir,
#     "encrypted", volume 1 and its name, a scan error): TSK would need its
#     password; the container's free space is still carved; the report's
#     DFXML conversion (read back from the JSONL) carries the volume;
#   - a container whose superblock fails its checksum (TSK does not open
#     it) is one record IMAGE!p2 saying so, and the partition is carved
#     whole, as any partition whose file system does not open;
#   - a container whose space manager is damaged (its object type changed,
#     checksum fixed: TSK throws a C++ exception listing its free blocks,
#     which engine/source/apfs.cpp catches) is enumerated, with one record
#     IMAGE!p2 saying its free space is not carved (a scan error);
#   - a container on which The Sleuth Kit 4.11 crashes (one byte of the
#     volume's object-map b-tree root changed, its checksum fixed: TSK's own
#     pstat dies of SIGSEGV on it) does not crash the scan: a record IMAGE!p2
#     says TSK crashed reading it (engine/source/fs.c asks TSK in a child
#     process first), and the partition is carved whole.
set -u
CLI=$1
SHARED=$2
HERE=$(cd "$(dirname "$0")" && pwd)
V=$SHARED/vectors/pdq/images
REF=$SHARED/vectors/pdq/observed/cpp-shipped-imagemagick.csv
. "$(dirname "$0")/tu_image.sh"
[ -d "$V" ] && [ -f "$REF" ] || skip "the shared vectors are missing ($V)"
need "scripts/setup.sh installs it: apfsprogs for mkapfs, apfsck" sfdisk mkfs.vfat mcopy mkapfs \
  apfsck pstat convert python3 xmllint
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$HERE/lsan.supp}
scratch

# ---- planted pictures: altered copies of reference images; the known list
# is the reference hasher's PDQ of each original
L=$V/reg-test-input/labelme-subset
convert "$L/q0746.jpg" -resize 90% -quality 85 fat.jpg || exit 1
convert "$L/q1050.jpg" -resize 90% -quality 85 apfs.jpg || exit 1
convert "$L/q0291.jpg" -resize 90% -quality 85 edge.jpg || exit 1
"$CLI" index create idx >/dev/null || exit 1
for k in fat:q0746 apfs:q1050 edge:q0291; do
  grep ",reg-test-input/labelme-subset/${k#*:}.jpg\$" "$REF" | head -n 1 > "list_${k%%:*}.csv"
  [ -s "list_${k%%:*}.csv" ] || { echo "FAIL: ${k#*:} not in the reference CSV"; exit 1; }
  "$CLI" index import -q --format pdq-csv --name "${k%%:*}" --category 1 idx "list_${k%%:*}.csv" \
    >/dev/null || { echo "FAIL: import ${k%%:*}"; exit 1; }
done

# ---- the file systems
truncate -s 8M fat.img && mkfs.vfat -n IMTFAT fat.img >/dev/null || exit 1
MTOOLS_SKIP_CHECK=1 mcopy -i fat.img fat.jpg ::/photo.jpg || { echo "FAIL: mcopy"; exit 1; }
# mkapfs refuses containers under about 128 MiB; the file is sparse
truncate -s 128M apfs.img && mkapfs -L imtvol apfs.img >/dev/null || { echo "FAIL: mkapfs"; exit 1; }
# a free block, as TSK's own pool tool lists the container's free ranges
pstat apfs.img > pstat.txt || { echo "FAIL: pstat"; exit 1; }
read -r BLK APSB EDGE < <(python3 - <<'EOF'
import re
t = open('pstat.txt').read()
rng = [(int(a, 16), int(b, 16)) for a, b in re.findall(r'\|   0x([0-9a-f]+)-0x([0-9a-f]+)', t)]
a, b = max(rng, key=lambda r: r[1] - r[0])  # the largest free range
print(a + (b - a) // 2, re.search(r'APSB Block Number: (\d+)', t).group(1), min(rng)[0])
EOF
)
[ -n "$BLK" ] && [ -n "$APSB" ] && [ -n "$EDGE" ] || { echo "FAIL: no free range or volume in pstat's output"; cat pstat.txt; exit 1; }
dd if=apfs.jpg of=apfs.img bs=4096 seek="$BLK" conv=notrunc status=none || exit 1
dd if=edge.jpg of=apfs.img bs=4096 seek="$EDGE" conv=notrunc status=none || exit 1
apfsck apfs.img >/dev/null 2>&1 || { echo "FAIL: apfsck rejects the container"; exit 1; }

# ---- the disk: GPT, FAT at 1 MiB, APFS at 10 MiB
truncate -s 140M disk.raw
printf 'label: gpt\nunit: sectors\nfirst-lba: 2048\nstart=2048, size=16384, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\nstart=20480, size=262144, type=7C3457EF-0000-11AA-AA11-00306543ECAC\n' |
  sfdisk -q disk.raw || { echo "FAIL: sfdisk"; exit 1; }
dd if=fat.img of=disk.raw bs=512 seek=2048 conv=notrunc,sparse status=none
dd if=apfs.img of=disk.raw bs=512 seek=20480 conv=notrunc,sparse status=none

# a copy whose volume is marked encrypted (APFS_FS_UNENCRYPTED cleared in its
# superblock's fs_flags, the block's Fletcher-64 checksum recomputed), and one
# whose container superblock fails its checksum
cp --sparse=always disk.raw enc.raw && cp --sparse=always disk.raw bad.raw &&
  cp --sparse=always disk.raw crash.raw && cp --sparse=always apfs.img crash_apfs.img &&
  cp --sparse=always disk.raw sm.raw
python3 - "$APSB" <<'EOF' || { echo "FAIL: patching the copies"; exit 1; }
import struct, sys
part, bs = 20480 * 512, 4096
def fletcher64(b):
    s1 = s2 = 0
    for (w,) in struct.iter_unpack('<I', b[8:]):
        s1 = (s1 + w) % 0xFFFFFFFF
        s2 = (s2 + s1) % 0xFFFFFFFF
    c1 = 0xFFFFFFFF - (s1 + s2) % 0xFFFFFFFF
    c2 = 0xFFFFFFFF - (s1 + c1) % 0xFFFFFFFF
    return c2 << 32 | c1
with open('enc.raw', 'r+b') as f:
    off = part + int(sys.argv[1]) * bs
    f.seek(off); b = bytearray(f.read(bs))
    assert b[32:36] == b'APSB' and struct.unpack_from('<Q', b, 0)[0] == fletcher64(b)
    flags = struct.unpack_from('<Q', b, 264)[0]
    assert flags & 1, 'the volume is not marked unencrypted'
    struct.pack_into('<Q', b, 264, flags & ~1)
    struct.pack_into('<Q', b, 0, fletcher64(b))
    f.seek(off); f.write(b)
with open('bad.raw', 'r+b') as f:
    f.seek(part); b = bytearray(f.read(bs))
    assert b[32:36] == b'NXSB' and struct.unpack_from('<Q', b, 0)[0] == fletcher64(b)
    b[0] ^= 0xFF  # the checksum no longer holds; the magic does
    f.seek(part); f.write(b)
# the space manager (the object whose oid is the NX superblock's
# nx_spaceman_oid, type 0x05) made another type (0x11)
with open('sm.raw', 'r+b') as f:
    f.seek(part); sm_oid = struct.unpack_from('<Q', f.read(bs), 152)[0]
    for n in range(256):
        f.seek(part + n * bs); b = bytearray(f.read(bs))
        if struct.unpack_from('<Q', b, 8)[0] == sm_oid and struct.unpack_from('<I', b, 24)[0] & 0xFFFF == 5:
            struct.pack_into('<I', b, 24, struct.unpack_from('<I', b, 24)[0] & 0xFFFF0000 | 0x11)
            struct.pack_into('<Q', b, 0, fletcher64(b))
            f.seek(part + n * bs); f.write(b)
            break
    else:
        raise SystemExit('no space manager found')
# the volume's object map (APSB apfs_omap_oid -> omap_phys om_tree_oid): its
# b-tree root's table-space length (btn_table_space.len, bytes 42-43) made
# 0x5xx; checksum fixed
for name, base in (('crash.raw', part), ('crash_apfs.img', 0)):
    with open(name, 'r+b') as f:
        def block(n):
            f.seek(base + n * bs); return bytearray(f.read(bs))
        apsb = block(int(sys.argv[1]))
        om = block(struct.unpack_from('<Q', apsb, 128)[0])
        tree = struct.unpack_from('<Q', om, 48)[0]
        b = block(tree)
        assert struct.unpack_from('<I', b, 24)[0] == 0x40000002 and b[43] == 1, 'not a b-tree root'
        b[43] = 5
        struct.pack_into('<Q', b, 0, fletcher64(b))
        f.seek(base + tree * bs); f.write(b)
EOF
pst=$(bash -c 'pstat "$1" >/dev/null 2>&1; echo $?' _ crash_apfs.img 2>/dev/null)
check '[ $pst -ge 128 ]' "TSK's pstat crashes on the damaged object map (exit $pst; if TSK was fixed, update this test)"

scan() { # OUT IMAGE [options...]: the exit status in $st
  local out=$1 img=$2; shift 2
  "$CLI" scan --index idx --quiet --force --out "$out" "$@" "$img" 2>"$out.err"; st=$?
}
scan disk.jsonl disk.raw --threads 2
check '[ $st -eq 1 ]' "disk: exit 1 with hits (got $st: $(tail -n 3 disk.jsonl.err))"
scan disk1.jsonl disk.raw --threads 1
scan whole.jsonl apfs.img --threads 2
check '[ $st -eq 1 ]' "APFS image: exit 1 with hits (got $st)"
scan enc.jsonl enc.raw --threads 2
check '[ $st -eq 1 ]' "encrypted volume: exit 1 with hits (got $st)"
scan bad.jsonl bad.raw --threads 2
check '[ $st -eq 1 ]' "damaged container: exit 1 with hits (got $st)"
scan sm.jsonl sm.raw --threads 2
check '[ $st -eq 1 ]' "damaged space manager: exit 1 with the FAT hit (got $st: $(tail -n 3 sm.jsonl.err))"
scan crash.jsonl crash.raw --threads 2
check '[ $st -eq 1 ]' "a container TSK crashes on: exit 1 with hits (got $st: $(tail -n 3 crash.jsonl.err))"

python3 - "$BLK" "$EDGE" <<'EOF' || fail=1
import hashlib, json, sys
blk, edge = int(sys.argv[1]), int(sys.argv[2])
bad = 0
def expect(c, what):
    global bad
    if not c:
        print('FAIL:', what); bad = 1
def load(p):
    return [r for r in map(json.loads, open(p)) if r['record'] == 'file']
fat = open('fat.jpg', 'rb').read()
PICS = {'apfs': open('apfs.jpg', 'rb').read(), 'edge': open('edge.jpg', 'rb').read()}
P2 = 20480 * 512
def image_offset(path, data):  # where the planted bytes lie, searched
    img = open(path, 'rb').read()
    off = img.find(data)
    expect(off > 0 and img.find(data, off + 1) < 0, f'the picture lies once in {path}')
    return off
def carved_ok(rep, by, prefix, offs, part, part_off, fs):
    for lst, pic in PICS.items():
        carved_one(rep, by, f'{prefix}/carved@{offs[lst]}', offs[lst], part, part_off, fs, pic, lst)
    return sorted(f'{prefix}/carved@{o}' for o in offs.values())
def carved_one(rep, by, name, off, part, part_off, fs, pic, lst):
    r = by.get(name)
    expect(r is not None, f'{rep}: {name} carved (have {sorted(by)})')
    if r is None: return
    loc = r['image']
    expect(loc['alloc'] == 'carved' and loc['partition'] == part and loc['part_offset'] == part_off
           and loc['fs'] == fs and 'volume' not in loc,
           f'{rep}: {name} carved, partition {part} at {part_off}, fs {fs!r}, no volume (got {loc})')
    expect(loc.get('first_offset') == off and loc['runs'] == [[0, off, len(pic)]],
           f'{rep}: {name} first_offset and runs {off} (got {loc.get("first_offset")}, {loc["runs"]})')
    expect(r.get('carved') == {'offset': off, 'length': len(pic), 'format': 'jpeg',
                               'truncated': False, 'end': 'complete'}, f'{rep}: {name} "carved"')
    expect(r.get('md5') == hashlib.md5(pic).hexdigest(), f'{rep}: {name} MD5 = md5sum of {lst}.jpg')
    expect({m['list'] for m in r['matches']} == {lst}, f'{rep}: {name} matches list {lst} (reference PDQ)')

off = {k: image_offset('disk.raw', v) for k, v in PICS.items()}
expect(off == {'apfs': P2 + blk * 4096, 'edge': P2 + edge * 4096},
       f'the planted pictures at container blocks {blk} and {edge}')
# the disk: the FAT picture, the carved picture, nothing else, no errors
for rep in ('disk.jsonl', 'disk1.jsonl'):
    recs = load(rep)
    by = {r['path']: r for r in recs}
    r = by.get('disk.raw!p1/photo.jpg')
    expect(r is not None and r['image']['alloc'] == 'allocated' and r['image']['fs'].startswith('fat')
           and r.get('md5') == hashlib.md5(fat).hexdigest()
           and {m['list'] for m in r['matches']} == {'fat'},
           f'{rep}: the FAT picture found, allocated, MD5 and match (got {r})')
    want = carved_ok(rep, by, 'disk.raw!p2', off, 2, P2, 'apfs')
    p2 = sorted(p for p in by if p.startswith('disk.raw!p2'))
    expect(p2 == want,
           f'{rep}: partition 2 gives only the carved picture: the volume opened, no error, no '
           f'records of its metadata (got {p2})')
    expect(not any(r.get('scan_error') for r in recs), f'{rep}: no scan errors')
a, b = load('disk.jsonl'), load('disk1.jsonl')
strip = lambda rs: [{k: v for k, v in r.items() if k not in ('seq',)} for r in rs]
expect(json.dumps(strip(a), sort_keys=True) == json.dumps(strip(b), sort_keys=True),
       '1 and 2 threads give the same records')

# the container filling an image of its own: partition 0
woff = {k: image_offset('apfs.img', v) for k, v in PICS.items()}
recs = load('whole.jsonl')
by = {r['path']: r for r in recs}
want = carved_ok('whole.jsonl', by, 'apfs.img!p0', woff, 0, 0, 'apfs')
expect(sorted(by) == want and not any(r.get('scan_error') for r in recs),
       f'whole.jsonl: only the carved picture, no errors (got {sorted(by)})')

# the encrypted volume: one record saying so; the free space still carved
recs = load('enc.jsonl')
by = {r['path']: r for r in recs}
r = by.get('enc.raw!p2!v1')
expect(r is not None and r['type'] == 'dir' and r['status'] == 'encrypted' and r.get('scan_error')
       and 'password' in r.get('detail', '') and r['image'].get('volume') == 1
       and r['image'].get('volume_name') == 'imtvol' and r['image']['fs'] == 'apfs',
       f'enc.jsonl: the encrypted volume is a record of its own (got {r})')
want = carved_ok('enc.jsonl', by, 'enc.raw!p2', off, 2, P2, 'apfs')
expect(sorted(p for p in by if p.startswith('enc.raw!p2')) == sorted(['enc.raw!p2!v1'] + want), f'enc.jsonl: nothing else in p2 ({sorted(by)})')

# the damaged container: one record for the partition, carved whole
recs = load('bad.jsonl')
by = {r['path']: r for r in recs}
r = by.get('bad.raw!p2')
expect(r is not None and r['type'] == 'dir' and r.get('scan_error')
       and 'APFS container' in r.get('detail', '') and 'carved' in r.get('detail', ''),
       f'bad.jsonl: the container that does not open is a record saying so (got {r})')
carved_ok('bad.jsonl', by, 'bad.raw!p2', off, 2, P2, 'apfs')
expect(by.get('bad.raw!p1/photo.jpg') is not None, 'bad.jsonl: the FAT partition is still read')

# the damaged space manager: the volume is read, the free space is not
recs = load('sm.jsonl')
by = {r['path']: r for r in recs}
r = by.get('sm.raw!p2')
expect(r is not None and r['type'] == 'dir' and r.get('scan_error') and r['status'] == 'corrupt'
       and 'free space is not carved' in r.get('detail', '') and 'APFSSpaceman' in r.get('detail', ''),
       f'sm.jsonl: a record says the free space is not carved, with TSK\'s exception (got {r})')
expect(sorted(p for p in by if p.startswith('sm.raw!p2')) == ['sm.raw!p2'],
       f'sm.jsonl: no volume error, nothing carved in p2 ({sorted(by)})')
expect(by.get('sm.raw!p1/photo.jpg') is not None, 'sm.jsonl: the FAT partition is read')

# the container TSK crashes on: the scan goes on, the partition is carved
recs = load('crash.jsonl')
by = {r['path']: r for r in recs}
r = by.get('crash.raw!p2')
expect(r is not None and r['type'] == 'dir' and r.get('scan_error')
       and 'crashed' in r.get('detail', '') and 'carved' in r.get('detail', ''),
       f'crash.jsonl: the container TSK crashes on is a record saying so (got {r})')
carved_ok('crash.jsonl', by, 'crash.raw!p2', off, 2, P2, 'apfs')
expect(by.get('crash.raw!p1/photo.jpg') is not None, 'crash.jsonl: the FAT partition is still read')
sys.exit(bad)
EOF
# the volume survives the report's read-back: DFXML, valid against the schema
"$CLI" report dfxml enc.jsonl -o enc.xml 2>/dev/null
check 'xmllint --noout --schema "$SHARED/schemas/dfxml/dfxml.xsd" enc.xml 2>/dev/null' "DFXML valid against the schema"
check 'grep -q "partition=\"2\" part_offset=\"10485760\" fs=\"apfs\" volume=\"1\" volume_name=\"imtvol\"" enc.xml' \
  "DFXML carries the encrypted volume's number and name"
[ $fail -eq 0 ] && echo "test_image_apfs: ok"
exit $fail
