# mkfat.py IMG NDIRS NPERDIR: a FAT32 image (made by mkfs.vfat) whose root
# holds NDIRS folders of NPERDIR empty files each, written straight into the
# directory clusters (fast: no mount, no per-file tool call).
import struct, sys
img, ndirs, nper = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
f = open(img, 'r+b'); b = f.read(512)
bps, spc, res, nfat = struct.unpack_from('<H', b, 11)[0], b[13], struct.unpack_from('<H', b, 14)[0], b[16]
fatsz, root = struct.unpack_from('<I', b, 36)[0], struct.unpack_from('<I', b, 44)[0]
cs = spc * bps
data0 = (res + nfat * fatsz) * bps
nclus = (struct.unpack_from('<I', b, 32)[0] - (res + nfat * fatsz)) // spc
fat = bytearray(b'\0' * (4 * (nclus + 2)))
f.seek(res * bps); fat[:] = f.read(len(fat))
nextc = 3   # root is cluster 2
def chain(n):
    global nextc
    start = nextc
    for j in range(n):
        struct.pack_into('<I', fat, 4 * (start + j), 0x0FFFFFFF if j == n - 1 else start + j + 1)
    nextc += n
    return start
DATE = ((2020 - 1980) << 9) | (1 << 5) | 1
def ent(name, attr, clus, size=0):
    # name, attr, nt-res, ctime-tenth, ctime, cdate, adate, clus-hi, mtime, mdate, clus-lo, size
    return name + struct.pack('<BBBHHHHHHHI', attr, 0, 0, 0, DATE, DATE, clus >> 16, 0, DATE,
                              clus & 0xFFFF, size)
rootents = []
for d in range(ndirs):
    nbytes = (nper + 2) * 32
    n = (nbytes + cs - 1) // cs
    c = chain(n)
    name = b'D%07d   ' % d
    rootents.append(ent(name, 0x10, c))
    buf = bytearray(n * cs)
    buf[0:32] = ent(b'.          ', 0x10, c); buf[32:64] = ent(b'..         ', 0x10, 0)
    for i in range(nper):
        buf[64 + 32 * i:96 + 32 * i] = ent(b'F%07dTXT' % i, 0x20, 0)
    f.seek(data0 + (c - 2) * cs); f.write(buf)
assert len(rootents) * 32 <= cs
f.seek(data0 + (root - 2) * cs); f.write(b''.join(rootents))
for k in range(nfat):
    f.seek((res + k * fatsz) * bps); f.write(fat)
