#!/usr/bin/env python3
"""Put pictures into a JPEG the way cameras do (no exiftool needed).

  jpegembed.py exif MAIN.jpg THUMB.jpg OUT.jpg
      insert an APP1 Exif segment right after SOI: IFD0 (Orientation 1), IFD1
      (Compression 6, JPEGInterchangeFormat, JPEGInterchangeFormatLength)
      and the thumbnail's bytes, big-endian (MM) TIFF.
  jpegembed.py mpf MAIN.jpg PREVIEW.jpg OUT.jpg
      insert an APP2 MPF segment (MP Index IFD: MPFVersion, NumberOfImages,
      MPEntry for 2 images) after SOI and append PREVIEW after the main
      image, as CIPA DC-007 lays it out (little-endian II TIFF)."""
import struct
import sys


def exif(main, thumb):
    # TIFF: header(8) IFD0 at 8: 1 entry -> 2+12+4 = 18 bytes; IFD1 at 26: 3 entries
    # -> 2+36+4 = 42 bytes; thumbnail at 68.
    ifd0 = struct.pack(">H", 1) + struct.pack(">HHII", 0x0112, 3, 1, 1 << 16) + struct.pack(">I", 26)
    toff = 26 + 2 + 3 * 12 + 4
    ifd1 = (struct.pack(">H", 3) + struct.pack(">HHII", 0x0103, 3, 1, 6 << 16) +
            struct.pack(">HHII", 0x0201, 4, 1, toff) +
            struct.pack(">HHII", 0x0202, 4, 1, len(thumb)) + struct.pack(">I", 0))
    tiff = b"MM\x00*" + struct.pack(">I", 8) + ifd0 + ifd1
    assert len(tiff) == toff
    payload = b"Exif\x00\x00" + tiff + thumb
    assert len(payload) + 2 <= 65535, "thumbnail too large for APP1"
    seg = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return main[:2] + seg + main[2:]


def mpf(main, preview):
    # APP2: "MPF\0" + TIFF(II) header(8) + IFD at 8: 3 entries (2+36+4 = 42) + entries (32)
    n_ent = 3
    ifd_len = 2 + 12 * n_ent + 4
    ent_off = 8 + ifd_len
    seg_payload_len = 4 + ent_off + 32
    seg_len = 2 + 2 + seg_payload_len
    mp_header_abs = 2 + 4 + 4  # SOI, marker+length, "MPF\0"
    total_main = len(main) + seg_len
    ifd = (struct.pack("<H", n_ent) +
           struct.pack("<HHI4s", 0xB000, 7, 4, b"0100") +
           struct.pack("<HHII", 0xB001, 4, 1, 2) +
           struct.pack("<HHII", 0xB002, 7, 32, ent_off) + struct.pack("<I", 0))
    entries = (struct.pack("<IIIHH", 0x20030000, total_main, 0, 0, 0) +
               struct.pack("<IIIHH", 0x00010001, len(preview), total_main - mp_header_abs, 0, 0))
    payload = b"MPF\x00" + b"II*\x00" + struct.pack("<I", 8) + ifd + entries
    assert len(payload) == seg_payload_len
    seg = b"\xff\xe2" + struct.pack(">H", len(payload) + 2) + payload
    out = main[:2] + seg + main[2:]
    assert len(out) == total_main
    return out + preview


mode, a, b, out = sys.argv[1:5]
A, B = open(a, "rb").read(), open(b, "rb").read()
open(out, "wb").write(exif(A, B) if mode == "exif" else mpf(A, B))
