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
import sys

MAX_SEED = {"jpeg": 256 << 10, "png": 256 << 10, "sniff": 16 << 10}


def wanted(target, path, head):
    name = path.lower()
    if target == "jpeg":
        return head[:3] == b"\xff\xd8\xff" or name.endswith((".jpg", ".jpeg")) \
            or "/go_fuzz_corpus/jpeg/" in name
    if target == "png":
        return head[:8] == b"\x89PNG\r\n\x1a\n" or name.endswith(".png") \
            or "/go_fuzz_corpus/png/" in name
    if target == "sniff":
        return True
    # hash-list targets take their seeds from tests/fuzz/seeds/ only
    return False


def main():
    target, shared, out = sys.argv[1:4]
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
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
                if not data or not wanted(target, p, data[:16]):
                    continue
                dst = os.path.join(out, hashlib.sha1(data).hexdigest())
                if not os.path.exists(dst):
                    with open(dst, "wb") as fh:
                        fh.write(data)
                    n += 1
    print(f"seeds.py: {n} seeds for {target} from {shared}")


if __name__ == "__main__":
    main()
