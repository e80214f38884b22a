#!/usr/bin/env python3
"""Add an 'irot' (rotation) and/or 'imir' (mirror) property to the primary
item of a HEIF file written by heif-enc (ftyp, meta, mdat): heif-enc 1.15
writes neither. The property boxes go at the end of ipco, the primary item's
ipma entry gets their (essential) indices, the meta/iprp/ipco/ipma sizes
grow, and every iloc offset into the file (construction method 0) moves by
the bytes inserted before it.

Usage: transform.py IN OUT [--irot N (1..3, x90 deg anticlockwise)] [--imir AXIS (0|1)]
"""
import struct
import sys


def boxes(b, start, end):
    p = start
    while p + 8 <= end:
        size, typ = struct.unpack(">I4s", b[p:p + 8])
        yield p, size, typ.decode("latin1")
        p += size


def main():
    src, dst = sys.argv[1], sys.argv[2]
    irot = imir = None
    args = sys.argv[3:]
    for i in range(0, len(args), 2):
        if args[i] == "--irot":
            irot = int(args[i + 1])
        elif args[i] == "--imir":
            imir = int(args[i + 1])
    b = bytearray(open(src, "rb").read())
    meta = next(x for x in boxes(b, 0, len(b)) if x[2] == "meta")
    mstart = meta[0] + 12  # full box
    sub = {t: (p, s) for p, s, t in boxes(b, mstart, meta[0] + meta[1])}
    pitm = sub["pitm"][0]
    primary = struct.unpack(">H", b[pitm + 12:pitm + 14])[0]
    iprp_p, iprp_s = sub["iprp"]
    isub = {t: (p, s) for p, s, t in boxes(b, iprp_p + 8, iprp_p + iprp_s)}
    ipco_p, ipco_s = isub["ipco"]
    ipma_p, ipma_s = isub["ipma"]
    nprops = sum(1 for _ in boxes(b, ipco_p + 8, ipco_p + ipco_s))
    new = b""
    idx = []
    if irot is not None:
        new += struct.pack(">I4sB", 9, b"irot", irot & 3)
        nprops += 1
        idx.append(nprops)
    if imir is not None:
        new += struct.pack(">I4sB", 9, b"imir", imir & 1)
        nprops += 1
        idx.append(nprops)
    # ipma: version/flags, entry_count, entries (16-bit ids for version 0,
    # 7-bit indices unless flags & 1).
    ver, flags = b[ipma_p + 8], int.from_bytes(b[ipma_p + 9:ipma_p + 12], "big")
    assert ver == 0 and not (flags & 1), "ipma layout not handled"
    q = ipma_p + 12
    count = struct.unpack(">I", b[q:q + 4])[0]
    q += 4
    ins_at = None
    for _ in range(count):
        item, n = struct.unpack(">HB", b[q:q + 3])
        if item == primary:
            b[q + 2] = n + len(idx)
            ins_at = q + 3 + n
        q += 3 + n
    assert ins_at is not None
    assoc = bytes(0x80 | i for i in idx)
    # Insert the associations first (later in the file), then the boxes.
    delta = len(new) + len(assoc)
    b[ins_at:ins_at] = assoc
    struct.pack_into(">I", b, ipma_p, ipma_s + len(assoc))
    ipco_end = ipco_p + ipco_s
    b[ipco_end:ipco_end] = new
    struct.pack_into(">I", b, ipco_p, ipco_s + len(new))
    struct.pack_into(">I", b, iprp_p, iprp_s + delta)
    struct.pack_into(">I", b, meta[0], meta[1] + delta)
    # iloc (before iprp in heif-enc's files? find it again, it may have moved).
    meta_end = meta[0] + meta[1] + delta
    iloc = next((p, s) for p, s, t in boxes(b, mstart, meta_end) if t == "iloc")
    p = iloc[0] + 8
    ver = b[p]
    p += 4
    osz, lsz = b[p] >> 4, b[p] & 15
    bsz, isz = b[p + 1] >> 4, (b[p + 1] & 15) if ver in (1, 2) else 0
    p += 2
    if ver < 2:
        n = struct.unpack(">H", b[p:p + 2])[0]
        p += 2
    else:
        n = struct.unpack(">I", b[p:p + 4])[0]
        p += 4

    def rd(p, sz):
        return int.from_bytes(b[p:p + sz], "big") if sz else 0

    def wr(p, sz, v):
        b[p:p + sz] = v.to_bytes(sz, "big")

    for _ in range(n):
        p += 2 if ver < 2 else 4
        cm = 0
        if ver in (1, 2):
            cm = rd(p, 2) & 15
            p += 2
        p += 2  # data_reference_index
        base_p = p
        base = rd(p, bsz)
        p += bsz
        ne = rd(p, 2)
        p += 2
        for _ in range(ne):
            if ver in (1, 2) and isz:
                p += isz
            off_p = p
            off = rd(p, osz)
            p += osz + lsz
            if cm == 0 and not bsz:
                if off >= ipco_end:
                    wr(off_p, osz, off + delta)
        if cm == 0 and bsz and base >= ipco_end:
            wr(base_p, bsz, base + delta)
    open(dst, "wb").write(b)


main()
