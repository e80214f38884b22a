#!/usr/bin/env python3
"""Collect the seed corpus of one fuzz target from ../shared at run time.

Usage: seeds.py TARGET SHARED_DIR OUT_DIR

Files are chosen by content (magic bytes) or name, capped in size, and copied
under their SHA-1 so duplicates collapse. Nothing from ../shared is ever
committed: OUT_DIR lives in the build tree and is rebuilt on every run.
"""
import hashlib
import os
import shutil
import sqlite3
import sys

MAX_SEED = {"jpeg": 256 << 10, "png": 256 << 10, "bmp": 256 << 10, "tiff": 256 << 10,
            "webp": 256 << 10, "gif": 256 << 10, "heif": 64 << 10, "jpeg_embedded": 64 << 10,
            "sniff": 16 << 10, "container": 64 << 10, "carve": 16 << 10}


def wanted(target, path, head):
    name = path.lower()
    if target == "jpeg":
        return head[:3] == b"\xff\xd8\xff" or name.endswith((".jpg", ".jpeg")) \
            or "/go_fuzz_corpus/jpeg/" in name
    if target == "png":
        return head[:8] == b"\x89PNG\r\n\x1a\n" or name.endswith(".png") \
            or "/go_fuzz_corpus/png/" in name
    if target == "bmp":
        return head[:2] == b"BM" or name.endswith(".bmp")
    if target == "tiff":
        return head[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+") \
            or name.endswith((".tif", ".tiff"))
    if target == "webp":
        return (head[:4] == b"RIFF" and head[8:12] == b"WEBP") or name.endswith(".webp") \
            or "/go_fuzz_corpus/webp/" in name
    if target == "gif":
        return head[:6] in (b"GIF87a", b"GIF89a") or name.endswith(".gif") \
            or "/go_fuzz_corpus/gif/" in name
    if target == "jpeg_embedded":
        return head[:3] == b"\xff\xd8\xff"
    if target == "heif":
        return (head[4:8] == b"ftyp") or name.endswith((".heic", ".heif", ".avif"))
    if target == "thumbcache":
        return head[:4] == b"CMMM"
    if target == "thumbsdb":
        return head[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
    if target == "sniff":
        return True
    if target == "container":  # archives, compressed files, PDFs
        return head[:4] in (b"PK\x03\x04", b"PK\x05\x06") or head[:6] == b"7z\xbc\xaf\x27\x1c" \
            or head[:4] == b"Rar!" or head[:3] in (b"\x1f\x8b\x08", b"BZh") \
            or head[:6] == b"\xfd7zXZ\x00" or head[:4] == b"\x28\xb5\x2f\xfd" \
            or head[:5] == b"%PDF-" or head[:5] == b"07070" or head[257:262] == b"ustar"
    if target == "carve":
        return head[:3] == b"\xff\xd8\xff" or head[:8] == b"\x89PNG\r\n\x1a\n" \
            or head[:6] in (b"GIF87a", b"GIF89a") or head[:2] == b"BM" \
            or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
    # hash-list targets take their seeds from tests/fuzz/seeds/ only
    return False


def nsrl_seeds(out):
    """Small NSRL RDSv3-shaped SQLite files, written by this script."""
    rows = [("E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
             "DA39A3EE5E6B4B0D3255BFEF95601890AFD80709", "D41D8CD98F00B204E9800998ECF8427E"),
            ("CA978112CA1BBDCAFAC231B39A23DC4DA786EFF8147C4E72B9807785AFEE48BB",
             "86F7E437FAA5A7FCE15D1DDCB9EAEAEA377667B8", "0CC175B9C0F1B6A831C399E269772661")]
    for name, table in (("nsrl-distinct", "DISTINCT_HASH"), ("nsrl-file", "FILE")):
        path = os.path.join(out, name)
        db = sqlite3.connect(path)
        db.execute("PRAGMA page_size=512")
        db.execute("CREATE TABLE VERSION (version TEXT, build_set TEXT)")
        db.execute("INSERT INTO VERSION VALUES ('2024.03.1', 'Modern')")
        extra = ", file_name TEXT" if table == "FILE" else ""
        db.execute(f"CREATE TABLE {table} (sha256 TEXT, sha1 TEXT, md5 TEXT{extra})")
        for r in rows:
            db.execute(f"INSERT INTO {table} VALUES (?, ?, ?{', ?' if extra else ''})",
                       r + (("x.bin",) if extra else ()))
        db.commit()
        db.close()
    return 2


def main():
    target, shared, out = sys.argv[1:4]
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    if target in ("list_nsrl", "list_auto"):
        n = nsrl_seeds(out)
        print(f"seeds.py: {n} generated NSRL seeds")
        if target == "list_nsrl":
            return
    roots = [os.path.join(shared, "corpus"), os.path.join(shared, "vectors")]
    cap = MAX_SEED.get(target, 1 << 20)
    n = 0
    for root in roots:
        for dirpath, _, files in os.walk(root):
            for f in sorted(files):
                p = os.path.join(dirpath, f)
                if f.startswith("_") or f in ("LICENSE", "MANIFEST"):
                    continue
                try:
                    if not os.path.isfile(p) or os.path.getsize(p) > cap:
                        continue
                    with open(p, "rb") as fh:
                        data = fh.read()
                except OSError:
                    continue
                if not data or not wanted(target, p, data[:512]):
                    continue
                dst = os.path.join(out, hashlib.sha1(data).hexdigest())
                if not os.path.exists(dst):
                    with open(dst, "wb") as fh:
                        fh.write(data)
                    n += 1
    print(f"seeds.py: {n} seeds for {target} from {shared}")


if __name__ == "__main__":
    main()
