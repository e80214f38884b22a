#!/usr/bin/env python3
"""Writes the committed carve/ fuzz seeds: small generated pictures of
tests/data/carve and tests/data/formats planted in zeros and seeded random
bytes, a truncated copy, a picture inside a JPEG APP segment, and hostile
patterns (an SOI flood, a chain of tiny segments, a PNG chunk length of
0xFFFFFFFF). Each seed stays under 16 KiB (the fuzz smoke's -max_len)."""
import os
import random
import struct

here = os.path.dirname(os.path.abspath(__file__))
data = os.path.join(here, "..", "..", "data")
out = os.path.join(here, "carve")
os.makedirs(out, exist_ok=True)


def rd(*p):
    with open(os.path.join(data, *p), "rb") as f:
        return f.read()


rng = random.Random(1)
noise = lambda n: bytes(rng.randrange(256) for _ in range(n))
jpg = rd("carve", "restart.jpg")
prog = rd("carve", "progressive.jpg")
png = rd("carve", "small.png")
gif = rd("formats", "webp_gif", "static_16.gif")
bmp = rd("formats", "tiffbmp", "b_mono1.bmp")
seeds = {
    "mix": noise(300) + jpg + bytes(100) + gif + noise(50) + bmp + noise(20),
    "png": bytes(10) + png + noise(10),
    "progressive_cut": noise(40) + prog + prog[: len(prog) // 2],
    "nested": b"\xff\xd8\xff\xe5" + struct.pack(">H", len(gif) + 2) + gif + jpg[2:],
    "soi_flood": b"\xff\xd8" * 2000 + b"\xff\xd8\xff\xe0" * 500,
    "segment_chain": b"\xff\xd8" + b"\xff\xe0\x00\x04\xff\xd8" * 300 + b"\x00\x00",
    "png_huge_chunk": png[:33] + b"\xff\xff\xff\xffIDAT" + bytes(64),
}
for name, b in seeds.items():
    assert len(b) <= 16384, name
    with open(os.path.join(out, name), "wb") as f:
        f.write(b)
