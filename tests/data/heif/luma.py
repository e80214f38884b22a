#!/usr/bin/env python3
"""The reference's float luma plane of an image of at most 512x512, from
ImageMagick's PNM (`convert FILE pnm:-`, as CImg reads it), as an FNV-1a-64
over the float32 bit patterns: PGM -> the value; PPM -> 0.299f*R + 0.587f*G
+ 0.114f*B in float32, left to right (each step rounded to float32).
Usage: luma.py FILE... (prints "file,fnv" lines)."""
import struct
import subprocess
import sys


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


R, G, B = f32(0.299), f32(0.587), f32(0.114)


def pnm(path):
    d = subprocess.run(["convert", path, "pnm:-"], check=True, capture_output=True).stdout
    fields, p = [], 0
    while len(fields) < 4:
        while d[p:p + 1].isspace():
            p += 1
        s = p
        while not d[p:p + 1].isspace():
            p += 1
        fields.append(d[s:p])
    p += 1
    kind, w, h, mx = fields[0], int(fields[1]), int(fields[2]), int(fields[3])
    assert mx == 255 and w <= 512 and h <= 512, (path, kind, w, h, mx)
    return kind, w, h, d[p:]


for path in sys.argv[1:]:
    kind, w, h, px = pnm(path)
    s = 1469598103934665603
    for i in range(w * h):
        if kind == b"P5":
            v = float(px[i])
        else:
            r, g, b = px[3 * i:3 * i + 3]
            v = f32(f32(f32(R * r) + f32(G * g)) + f32(B * b))
        s = ((s ^ struct.unpack("<I", struct.pack("<f", v))[0]) * 1099511628211) % (1 << 64)
    print("%s,%016x" % (path, s))
