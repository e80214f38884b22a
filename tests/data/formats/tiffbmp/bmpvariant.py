#!/usr/bin/env python3
"""BMP variants ImageMagick does not write, made from files it did write.

  bmpvariant.py topdown IN OUT   negative height, rows stored top first
  bmpvariant.py rle4 IN OUT      a 4-bit BI_RGB BMP re-coded as BI_RLE4
                                 (encoded runs, absolute runs, end of line,
                                 end of bitmap)
  bmpvariant.py bitfields24 IN OUT  a 24-bit BI_RGB BMP (40-byte header) as
                                 BI_BITFIELDS: masks after the header
  bmpvariant.py redim W H IN OUT the same bytes claiming W x H pixels (RLE
                                 data then wraps rows and ends early)
  bmpvariant.py tiffgarble IN OUT   (not a BMP) a little-endian multi-strip
                                 TIFF with 40 bytes of its middle strip set
                                 to 0xff (LZW: "code not yet in table")
  bmpvariant.py tiffgrey3 W H IN.rgb OUT  (not a BMP) an uncompressed TIFF
                                 of W x H 8-bit RGB samples that says
                                 min-is-black with 3 samples per pixel
"""
import struct
import sys


def rows_of(data):
    off = struct.unpack_from('<I', data, 10)[0]
    hs = struct.unpack_from('<I', data, 14)[0]
    w, h = struct.unpack_from('<ii', data, 18)
    bpp = struct.unpack_from('<H', data, 28)[0]
    stride = ((w * bpp + 31) // 32) * 4
    rows = [data[off + r * stride: off + (r + 1) * stride] for r in range(abs(h))]
    return off, hs, w, h, bpp, stride, rows


def topdown(data):
    off, hs, w, h, bpp, stride, rows = rows_of(data)
    out = bytearray(data[:off])
    struct.pack_into('<i', out, 22, -h)
    for r in reversed(rows):
        out += r
    out += data[off + stride * h:]
    return bytes(out)


def rle4_row(nib):
    out = bytearray()
    i, n = 0, len(nib)
    while i < n:
        j = i
        while j < n and j - i < 255 and nib[j] == nib[i]:
            j += 1
        if j - i >= 3:  # encoded run of one colour
            out += bytes([j - i, nib[i] << 4 | nib[i]])
            i = j
            continue
        # absolute run up to the next run of 3 (at least 3 pixels, at most 255)
        k = i
        while k < n and k - i < 255:
            if k + 2 < n and nib[k] == nib[k + 1] == nib[k + 2]:
                break
            k += 1
        if k - i < 3:  # too short for an absolute run: alternate-colour runs
            for p in nib[i:k]:
                out += bytes([1, p << 4])
            i = k
            continue
        seg = nib[i:k]
        out += bytes([0, len(seg)])
        packed = bytearray()
        for a in range(0, len(seg), 2):
            hi = seg[a]
            lo = seg[a + 1] if a + 1 < len(seg) else 0
            packed.append(hi << 4 | lo)
        if len(packed) % 2:
            packed.append(0)
        out += packed
        i = k
    return out


def rle4(data):
    off, hs, w, h, bpp, stride, rows = rows_of(data)
    assert bpp == 4 and h > 0
    body = bytearray()
    for r in rows:
        nib = []
        for x in range(w):
            b = r[x // 2]
            nib.append(b >> 4 if x % 2 == 0 else b & 15)
        body += rle4_row(nib)
        body += b'\x00\x00'
    body[-2:] = b'\x00\x01'  # the last end of line becomes end of bitmap
    out = bytearray(data[:off])
    struct.pack_into('<I', out, 30, 2)              # BI_RLE4
    struct.pack_into('<I', out, 34, len(body))      # biSizeImage
    out += body
    struct.pack_into('<I', out, 2, len(out))        # bfSize
    return bytes(out)


def bitfields24(data):
    off = struct.unpack_from('<I', data, 10)[0]
    out = bytearray(data[:54]) + struct.pack('<III', 0xff0000, 0xff00, 0xff) + data[54:]
    struct.pack_into('<I', out, 10, off + 12)
    struct.pack_into('<I', out, 30, 3)              # BI_BITFIELDS
    struct.pack_into('<I', out, 2, len(out))
    return bytes(out)


def tiffgrey3(w, h, rgb):
    entries = [(256, 4, w), (257, 4, h), (258, 3, 8), (259, 3, 1), (262, 3, 1),
               (273, 4, 8), (277, 3, 3), (278, 4, h), (279, 4, len(rgb))]
    out = bytearray(b'II*\0') + struct.pack('<I', 8 + len(rgb)) + rgb
    out += struct.pack('<H', len(entries))
    for tag, typ, val in entries:
        out += struct.pack('<HHI', tag, typ, 1)
        out += struct.pack('<HH', val, 0) if typ == 3 else struct.pack('<I', val)
    out += struct.pack('<I', 0)
    return bytes(out)


def tiffgarble(data):
    d = bytearray(data)
    ifd = struct.unpack_from('<I', d, 4)[0]
    for i in range(struct.unpack_from('<H', d, ifd)[0]):
        tag, typ, cnt, val = struct.unpack_from('<HHII', d, ifd + 2 + 12 * i)
        if tag == 273:
            off = struct.unpack_from('<I', d, val + 4 * (cnt // 2))[0]
            d[off + 20:off + 60] = b'\xff' * 40
    return bytes(d)


def main():
    op = sys.argv[1]
    if op == 'tiffgrey3':
        w, h, src, dst = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
        out = tiffgrey3(w, h, open(src, 'rb').read())
    elif op == 'redim':
        w, h, src, dst = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
        out = bytearray(open(src, 'rb').read())
        struct.pack_into('<ii', out, 18, w, h)
    else:
        src, dst = sys.argv[2:4]
        data = open(src, 'rb').read()
        out = {'topdown': topdown, 'rle4': rle4, 'bitfields24': bitfields24,
               'tiffgarble': tiffgarble}[op](data)
    open(dst, 'wb').write(out)


if __name__ == '__main__':
    main()
