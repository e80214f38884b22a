#!/usr/bin/env python3
"""Make a HEIF grid image (as iPhones write: a 'grid' derived item over
hidden HEVC tiles) from a file heif-enc wrote with the tiles as separate
images, row by row. heif-enc 1.15 cannot write grids itself.

Usage: grid.py TILES.heic OUT.heic ROWS COLS OUT_W OUT_H [ISPE_W ISPE_H]
The grid's output size is OUT_W x OUT_H (at most the tiles' total: the rest
is cropped); its 'ispe' says ISPE_W x ISPE_H (default: the output size), so
that a file can claim one size in 'ispe' and another in the grid data."""
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


def main():
    src, dst = sys.argv[1], sys.argv[2]
    rows, cols, ow, oh = (int(x) for x in sys.argv[3:7])
    iw, ih = (int(sys.argv[7]), int(sys.argv[8])) if len(sys.argv) > 8 else (ow, oh)
    b = open(src, "rb").read()
    top = children(b, 0, len(b))
    _, mp, ms = next(x for x in top if x[0] == "meta")
    sub = {t: (p, s) for t, p, s in children(b, mp + 12, mp + ms)}
    hdlr = b[sub["hdlr"][0]:sub["hdlr"][0] + sub["hdlr"][1]]
    # iloc v0: offset 4, length 4, base offset 4 bytes (heif-enc's layout)
    lp = sub["iloc"][0]
    assert b[lp + 8] == 0 and b[lp + 12] == 0x44 and b[lp + 13] == 0x40
    n = struct.unpack(">H", b[lp + 14:lp + 16])[0]
    items, q = [], lp + 16
    for _ in range(n):
        iid, dri, base, ne = struct.unpack(">HHIH", b[q:q + 10])
        assert ne == 1
        off, ln = struct.unpack(">II", b[q + 10:q + 18])
        items.append((iid, base + off, ln))
        q += 18
    assert len(items) == rows * cols
    gid = max(i[0] for i in items) + 1
    ip, isz = sub["iprp"]
    isub = {t: (p, s) for t, p, s in children(b, ip + 8, ip + isz)}
    cp, cs = isub["ipco"]
    props = b[cp + 8:cp + cs]
    nprops = len(children(b, cp + 8, cp + cs))
    ap, asz = isub["ipma"]
    amap = b[ap + 16:ap + asz]  # the entries (version 0, 7-bit indices)
    ecount = struct.unpack(">I", b[ap + 12:ap + 16])[0]

    ispe = fullbox("ispe", 0, 0, struct.pack(">II", iw, ih))
    ipco = box("ipco", props + ispe)
    ipma = fullbox("ipma", 0, 0, struct.pack(">I", ecount + 1) + amap +
                   struct.pack(">HBB", gid, 1, nprops + 1))
    iprp = box("iprp", ipco + ipma)
    infes = b""
    for iid, _, _ in items:  # tiles hidden (flags 1)
        infes += fullbox("infe", 2, 1, struct.pack(">HH", iid, 0) + b"hvc1" + b"\0")
    infes += fullbox("infe", 2, 0, struct.pack(">HH", gid, 0) + b"grid" + b"\0")
    iinf = fullbox("iinf", 0, 0, struct.pack(">H", len(items) + 1) + infes)
    dimg = box("dimg", struct.pack(">HH", gid, len(items)) +
               b"".join(struct.pack(">H", i[0]) for i in items))
    iref = fullbox("iref", 0, 0, dimg)
    pitm = fullbox("pitm", 0, 0, struct.pack(">H", gid))
    grid = struct.pack(">BBBBHH", 0, 0, rows - 1, cols - 1, ow, oh) if max(ow, oh) < 65536 \
        else struct.pack(">BBBBII", 0, 1, rows - 1, cols - 1, ow, oh)

    def build(delta, grid_off):
        ent = b""
        for iid, off, ln in items:
            ent += struct.pack(">HHIHII", iid, 0, off + delta, 1, 0, ln)
        ent += struct.pack(">HHIHII", gid, 0, grid_off, 1, 0, len(grid))
        iloc = fullbox("iloc", 0, 0, bytes([0x44, 0x40]) + struct.pack(">H", len(items) + 1) + ent)
        return fullbox("meta", 0, 0, hdlr + pitm + iloc + iinf + iref + iprp)

    meta = build(0, 0)
    delta = len(meta) - ms
    rest = b[mp + ms:]
    grid_off = mp + len(meta) + len(rest) + 8
    meta = build(delta, grid_off)
    assert len(meta) - ms == delta
    out = b[:mp] + meta + rest + box("mdat", grid)
    open(dst, "wb").write(out)


main()
