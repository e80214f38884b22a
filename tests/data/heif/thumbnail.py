#!/usr/bin/env python3
"""Make image 2 of a two-image heif-enc file the thumbnail of image 1 (an
'iref' 'thmb' reference; image 1 primary), as cameras store a HEIC
thumbnail, so that the thumbnail can be a different picture from the main
one (an edit after capture). heif-enc 1.15 writes thumbnails only as a
scaled copy of the image (-t).

Usage: thumbnail.py TWO.heic OUT.heic"""
import struct
import sys


def box(typ, payload):
    return struct.pack(">I4s", 8 + len(payload), typ.encode()) + payload


def fullbox(typ, ver, flags, payload):
    return box(typ, struct.pack(">I", (ver << 24) | flags) + payload)


def children(b, start, end):
    p, out = start, []
    while p + 8 <= end:
        size, typ = struct.unpack(">I4s", b[p:p + 8])
        out.append((typ.decode("latin1"), p, size))
        p += size
    return out


b = open(sys.argv[1], "rb").read()
_, mp, ms = next(x for x in children(b, 0, len(b)) if x[0] == "meta")
subs = children(b, mp + 12, mp + ms)
sub = {t: (p, s) for t, p, s in subs}
lp = sub["iloc"][0]
assert b[lp + 8] == 0 and b[lp + 12] == 0x44 and b[lp + 13] == 0x40
n = struct.unpack(">H", b[lp + 14:lp + 16])[0]
assert n == 2
items, q = [], lp + 16
for _ in range(n):
    iid, dri, base, ne = struct.unpack(">HHIH", b[q:q + 10])
    off, ln = struct.unpack(">II", b[q + 10:q + 18])
    items.append((iid, base + off, ln))
    q += 18
iref = fullbox("iref", 0, 0, box("thmb", struct.pack(">HHH", items[1][0], 1, items[0][0])))


def build(delta):
    ent = b"".join(struct.pack(">HHIHII", iid, 0, off + delta, 1, 0, ln) for iid, off, ln in items)
    iloc = fullbox("iloc", 0, 0, bytes([0x44, 0x40]) + struct.pack(">H", n) + ent)
    parts = []
    for t, p, s in subs:
        parts.append(iloc if t == "iloc" else b[p:p + s])
        if t == "iinf":
            parts.append(iref)
    return fullbox("meta", 0, 0, b"".join(parts))


delta = len(build(0)) - ms
meta = build(delta)
open(sys.argv[2], "wb").write(b[:mp] + meta + b[mp + ms:])
