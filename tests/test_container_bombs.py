#!/usr/bin/env python3
"""tests/test_container_bombs.py OUTDIR -- the container bombs test_container
expands, written with Python's zipfile, zlib and struct (not by the code
under test):

  nested.zip    42.zip's shape: 16 ZIPs of 16 ZIPs of 16 ZIPs of 16 members of
                4 MiB of zeros (16^4 x 4 MiB = 256 GiB expanded), a few KB
  overlap.zip   David Fifield's overlapping files: 250 members whose deflate
                data overlap (each quotes the next one's local header in a
                stored block, then runs on into it), all ending in one kernel
                of 8 MiB of zeros: the seeking ZIP reader (central directory)
                inflates the kernel for every member (2 GB from 80 KB)
  overlap.zip.gz  the same gzipped: libarchive reads it with the streaming ZIP
                reader (local headers in order), which sees one entry
"""
import gzip, io, os, struct, sys, zipfile, zlib

out = sys.argv[1]
os.makedirs(out, exist_ok=True)


def zip_of(members):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for name, data in members:
            zi = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, data)
    return b.getvalue()


zeros = bytes(4 << 20)
layer = zip_of([("%02d.bin" % i, zeros) for i in range(16)])
for depth in range(3):
    layer = zip_of([("%02d.zip" % i, layer) for i in range(16)])
open(os.path.join(out, "nested.zip"), "wb").write(layer)

# Fifield's overlapping files: member i's deflate data is a stored block
# quoting member i+1's local header, then member i+1's data, ..., then the
# one kernel; every member inflates to the later headers plus the kernel.
kernel_plain = bytes(8 << 20)
c = zlib.compressobj(9, zlib.DEFLATED, -15)
kernel = c.compress(kernel_plain) + c.flush()
n = 250
names = [b"f%04d.bin" % i for i in range(n)]
headers = [None] * n          # local headers
tail, plain_crc, plain_len = kernel, zlib.crc32(kernel_plain), len(kernel_plain)
datas = [None] * n
for i in range(n - 1, -1, -1):
    datas[i] = (tail, plain_crc, plain_len)
    lh = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x5021, plain_crc, len(tail),
                     plain_len, len(names[i]), 0) + names[i]
    headers[i] = lh
    # member i-1 quotes lh: a stored block (BFINAL 0, BTYPE 00), then lh
    tail = struct.pack("<BHH", 0, len(lh), len(lh) ^ 0xFFFF) + lh + tail
    plain_crc = zlib.crc32(lh + kernel_plain) if i == n - 1 else zlib.crc32(lh, 0)
    # the plain text of member i-1: lh, then member i's plain text
    if i == n - 1:
        prev_plain_parts = [lh]
    else:
        prev_plain_parts = [lh] + prev_plain_parts
    plain_len = sum(len(x) for x in prev_plain_parts) + len(kernel_plain)
    crc = 0
    for x in prev_plain_parts:
        crc = zlib.crc32(x, crc)
    plain_crc = zlib.crc32(kernel_plain, crc)
# the file: lh0, then quote header + lh1, ..., lh(n-1), kernel
body = headers[0]
offsets = [0]
for i in range(1, n):
    body += struct.pack("<BHH", 0, len(headers[i]), len(headers[i]) ^ 0xFFFF)
    offsets.append(len(body))
    body += headers[i]
body += kernel
cd = b""
for i in range(n):
    comp, crc_i, plen = datas[i]
    cd += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0x5021, crc_i,
                      len(comp), plen, len(names[i]), 0, 0, 0, 0, 0, offsets[i]) + names[i]
eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, len(cd), len(body), 0)
data = body + cd + eocd
open(os.path.join(out, "overlap.zip"), "wb").write(data)
with open(os.path.join(out, "overlap.zip.gz"), "wb") as f:
    f.write(gzip.compress(data, 9, mtime=0))
print("nested.zip %d bytes, overlap.zip %d bytes" % (len(layer), len(data)))
