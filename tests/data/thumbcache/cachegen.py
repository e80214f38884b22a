#!/usr/bin/env python3
"""Write Windows thumbnail caches holding given pictures, for tests.

  cachegen.py thumbcache VERSION OUT ID=PICTURE ...   thumbcache_*.db
  cachegen.py thumbsdb OUT ID=PICTURE ...             Thumbs.db (OLE2)
  cachegen.py ole OUT                                 an OLE2 file without a catalog

thumbcache layout from Joachim Metz's "Windows Explorer Thumbnail Cache
database format" (libwtcdb documentation): a 24-byte file header ("CMMM",
version, cache type, ...), then cache entries: "CMMM", entry size, entry hash
(ID, hex), identifier/padding/data sizes (at 24/28/32 in version 20, whose
entries carry an 8-byte extension first; at 16/20/24 from version 21 on),
CRC-64 fields (written as zero: the polynomial is not published and readers
do not check them), the UTF-16 identifier (the hash in hex), padding, data.
The version 32 file also gets, in this order: an entry without data (a
deleted thumbnail), a damaged entry whose sizes do not add up (a reader must
search on for the next entry), and the trailing free-space entry.

Thumbs.db: an OLE2 compound file (version 3, 512-byte sectors, 64-byte mini
sectors below the 4096-byte cutoff, per [MS-CFB]) written here, with a
"Catalog" stream (16-byte header: size 16, version 7, count, 96, 96; then per
thumbnail: record size, id, FILETIME, UTF-16 name + NUL) and one stream per
id, named by its decimal digits reversed, holding a 12-byte header (12, id,
picture size; the last picture gets a 24-byte header instead) and the JPEG.
A catalog record "ID=-" has no stream (a reader must report it missing).
"""
import struct
import sys

ENDOFCHAIN, FREESECT, FATSECT, NOSTREAM = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD, 0xFFFFFFFF


def entry(version, h, data, pad=0):
    ident = ("%x" % h).encode("utf-16-le")
    if version == 20:
        head = struct.pack("<4sIQ8sIIII8s8s", b"CMMM", 0, h, "jpg\0".encode("utf-16-le"),
                           len(ident), pad, len(data), 0, b"\0" * 8, b"\0" * 8)
    elif version == 21:
        head = struct.pack("<4sIQIIII8s8s", b"CMMM", 0, h, len(ident), pad, len(data), 0,
                           b"\0" * 8, b"\0" * 8)
    else:
        head = struct.pack("<4sIQIIII8s8s8s", b"CMMM", 0, h, len(ident), pad, len(data), 0,
                           b"\0" * 8, b"\0" * 8, b"\0" * 8)
    body = head + ident + b"\0" * pad + data
    return body[:4] + struct.pack("<I", len(body)) + body[8:]


def thumbcache(version, out, items):
    hdr = struct.pack("<4sIIIII", b"CMMM", version, 4, 0, 24, 0)
    body = b""
    for i, (h, data) in enumerate(items):
        body += entry(version, h, data, pad=8 if i == 1 else 0)
        if version == 32 and i == 0:
            body += entry(version, 0x1234, b"")             # deleted: no data
            bad = bytearray(entry(version, 0x5678, b"\xff\xd8\xff" + b"\0" * 40))
            struct.pack_into("<I", bad, 4, 20)               # size below its header
            body += bytes(bad)
    free = struct.pack("<4sI", b"CMMM", 0) + b"\0" * 120    # the free-space entry
    body += free[:4] + struct.pack("<I", len(free)) + free[8:]
    with open(out, "wb") as f:
        f.write(hdr + body)


def cfb(streams):
    """[MS-CFB] version 3 file holding the given root-level streams."""
    S, MS, CUT = 512, 64, 4096
    sectors = []          # regular sectors' contents
    fat = {}              # sector -> next

    def chain(data, size):
        n = (len(data) + size - 1) // size
        start = len(sectors)
        for i in range(n):
            sectors.append(data[i * size:(i + 1) * size].ljust(size, b"\0"))
            fat[start + i] = start + i + 1 if i + 1 < n else ENDOFCHAIN
        return start if n else ENDOFCHAIN

    mini, minifat, dirs = b"", [], []
    for name, data in streams:
        if len(data) < CUT:
            n = (len(data) + MS - 1) // MS
            start = len(mini) // MS if n else ENDOFCHAIN
            for i in range(n):
                minifat.append(len(mini) // MS + 1 if i + 1 < n else ENDOFCHAIN)
                mini += data[i * MS:(i + 1) * MS].ljust(MS, b"\0")
            dirs.append((name, start, len(data)))
        else:
            dirs.append((name, chain(data, S), len(data)))
    mini_start = chain(mini, S) if mini else ENDOFCHAIN
    mf = b"".join(struct.pack("<I", x) for x in minifat)
    minifat_start = chain(mf, S) if mf else ENDOFCHAIN
    nminifat = (len(mf) + S - 1) // S

    def direntry(name, typ, start, size, child=NOSTREAM, right=NOSTREAM):
        n = (name + "\0").encode("utf-16-le")
        return struct.pack("<64sHBBIII16sIQQIQ", n, len(n), typ, 1, NOSTREAM, right, child,
                           b"\0" * 16, 0, 0, 0, start, size)

    # children as a chain of right siblings, in the order [MS-CFB] compares
    # names (length first, then upper case)
    order = sorted(range(len(dirs)), key=lambda i: (len(dirs[i][0]), dirs[i][0].upper()))
    ents = [direntry("Root Entry", 5, mini_start, len(mini), child=order[0] + 1 if order else NOSTREAM)]
    for i, (name, start, size) in enumerate(dirs):
        k = order.index(i)
        right = order[k + 1] + 1 if k + 1 < len(order) else NOSTREAM
        ents.append(direntry(name, 2, start, size, right=right))
    while len(ents) % 4:
        ents.append(struct.pack("<64sHBBIII16sIQQIQ", b"", 0, 0, 0, NOSTREAM, NOSTREAM,
                                NOSTREAM, b"\0" * 16, 0, 0, 0, 0, 0))
    dir_start = chain(b"".join(ents), S)
    # FAT sectors: enough for every sector including themselves
    nfat = 1
    while (len(sectors) + nfat) > nfat * (S // 4):
        nfat += 1
    assert nfat <= 109
    fat_first = len(sectors)
    for i in range(nfat):
        fat[fat_first + i] = FATSECT
        sectors.append(b"")
    table = [fat.get(i, FREESECT) for i in range(nfat * (S // 4))]
    for i in range(nfat):
        sectors[fat_first + i] = b"".join(struct.pack("<I", x)
                                          for x in table[i * (S // 4):(i + 1) * (S // 4)])
    difat = [fat_first + i for i in range(nfat)] + [FREESECT] * (109 - nfat)
    hdr = struct.pack("<8s16sHHHHH6sIIIIIIIII", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", b"\0" * 16,
                      0x3E, 3, 0xFFFE, 9, 6, b"\0" * 6, 0, nfat, dir_start, 0, CUT,
                      minifat_start, nminifat, ENDOFCHAIN, 0)
    hdr += b"".join(struct.pack("<I", x) for x in difat)
    assert len(hdr) == S
    return hdr + b"".join(sectors)


def thumbsdb(out, items):
    recs, streams = b"", []
    for k, (i, data) in enumerate(items):
        name = ("picture%d.jpg" % i).encode("utf-16-le") + b"\0\0"
        rec = struct.pack("<IIQ", 0, i, 0x01D0000000000000 + i) + name
        recs += struct.pack("<I", len(rec)) + rec[4:]
        if data is None:
            continue
        if k == len(items) - 1:
            head = struct.pack("<IIIIII", 24, i, len(data), 0, 0, 0)
        else:
            head = struct.pack("<III", 12, i, len(data))
        streams.append((str(i)[::-1], head + data))
    cat = struct.pack("<HHIII", 16, 7, len(items), 96, 96) + recs
    with open(out, "wb") as f:
        f.write(cfb([("Catalog", cat)] + streams))


def items(args):
    r = []
    for a in args:
        i, p = a.split("=", 1)
        r.append((int(i, 0), None if p == "-" else open(p, "rb").read()))
    return r


if __name__ == "__main__":
    if sys.argv[1] == "thumbcache":
        thumbcache(int(sys.argv[2]), sys.argv[3], items(sys.argv[4:]))
    elif sys.argv[1] == "thumbsdb":
        thumbsdb(sys.argv[2], items(sys.argv[3:]))
    elif sys.argv[1] == "ole":  # an OLE2 file that is not a Thumbs.db
        with open(sys.argv[2], "wb") as f:
            f.write(cfb([("WordDocument", b"\xec\xa5" + b"\0" * 600)]))
    else:
        sys.exit("usage: see the docstring")
