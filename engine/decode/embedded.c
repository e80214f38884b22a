/* engine/decode/embedded.c -- where a JPEG file holds further pictures:
 * the EXIF thumbnail (APP1 "Exif", IFD1 JPEGInterchangeFormat and
 * JPEGInterchangeFormatLength) and the images an APP2 "MPF" (CIPA DC-007
 * Multi-Picture Format) index lists after the first (large previews,
 * second views). Only the file's leading marker segments are read (up to
 * SOS): a leaf that finds byte ranges; the caller collects and decodes them.
 *
 * Every count, offset and length is untrusted: each read is bounds-checked
 * against the segment it belongs to, IFD walks are capped, and a range is
 * reported only when it is non-empty and, for the EXIF thumbnail, lies
 * inside its APP1 segment and starts with a JPEG SOI (as the EXIF standard
 * requires). Nothing is allocated. */
#include "decode.h"

#include <string.h>

typedef struct tiff {
    const uint8_t *p; /* the TIFF header */
    size_t n;         /* bytes from it to the end of the segment */
    int le;
} tiff;

static int rd16(const tiff *t, size_t off, uint32_t *v)
{
    if (off > t->n || t->n - off < 2) return 0;
    const uint8_t *q = t->p + off;
    *v = t->le ? (uint32_t)q[0] | (uint32_t)q[1] << 8 : (uint32_t)q[0] << 8 | q[1];
    return 1;
}

static int rd32(const tiff *t, size_t off, uint32_t *v)
{
    if (off > t->n || t->n - off < 4) return 0;
    const uint8_t *q = t->p + off;
    *v = t->le ? (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24
               : (uint32_t)q[0] << 24 | (uint32_t)q[1] << 16 | (uint32_t)q[2] << 8 | q[3];
    return 1;
}

static int tiff_open(tiff *t, const uint8_t *p, size_t n)
{
    if (n < 8) return 0;
    if (!memcmp(p, "II*\0", 4)) t->le = 1;
    else if (!memcmp(p, "MM\0*", 4)) t->le = 0;
    else return 0;
    t->p = p;
    t->n = n;
    return 1;
}

/* The value of a SHORT or LONG tag with count 1 in the IFD at ifd. */
static int ifd_tag(const tiff *t, uint32_t ifd, uint32_t tag, uint32_t *val)
{
    uint32_t cnt;
    if (!rd16(t, ifd, &cnt)) return 0;
    for (uint32_t i = 0; i < cnt; i++) {
        size_t e = (size_t)ifd + 2 + 12 * (size_t)i;
        uint32_t tg, type, count;
        if (!rd16(t, e, &tg) || !rd16(t, e + 2, &type) || !rd32(t, e + 4, &count)) return 0;
        if (tg != tag) continue;
        if (count != 1) return 0;
        if (type == 3) return rd16(t, e + 8, val);
        if (type == 4) return rd32(t, e + 8, val);
        return 0;
    }
    return 0;
}

/* APP1 Exif: the IFD1 thumbnail. seg: the segment payload after "Exif\0\0";
 * base: its offset in the file. */
static size_t exif_thumb(const uint8_t *seg, size_t n, uint64_t base, imt_embedded_ref *out)
{
    tiff t;
    uint32_t ifd0, cnt, ifd1, off, len;
    if (!tiff_open(&t, seg, n) || !rd32(&t, 4, &ifd0) || !rd16(&t, ifd0, &cnt)) return 0;
    if (!rd32(&t, (size_t)ifd0 + 2 + 12 * (size_t)cnt, &ifd1) || ifd1 == 0 || ifd1 == ifd0)
        return 0;
    if (!ifd_tag(&t, ifd1, 0x0201, &off) || !ifd_tag(&t, ifd1, 0x0202, &len)) return 0;
    if (len < 4 || off > n || n - off < len) return 0; /* inside APP1 */
    if (seg[off] != 0xFF || seg[off + 1] != 0xD8) return 0;
    out->kind = IMT_SUB_EXIF_THUMBNAIL;
    out->index = 0;
    out->offset = base + off;
    out->size = len;
    return 1;
}

/* APP2 MPF: the MP Index IFD's entries after the first (the first is this
 * image). Offsets are from the MP header (seg). */
static size_t mpf_images(const uint8_t *seg, size_t n, uint64_t base, imt_embedded_ref *out,
                         size_t max)
{
    tiff t;
    uint32_t ifd, cnt;
    size_t k = 0;
    if (!tiff_open(&t, seg, n) || !rd32(&t, 4, &ifd) || !rd16(&t, ifd, &cnt)) return 0;
    for (uint32_t i = 0; i < cnt; i++) {
        size_t e = (size_t)ifd + 2 + 12 * (size_t)i;
        uint32_t tg, type, count, voff;
        if (!rd16(&t, e, &tg) || !rd16(&t, e + 2, &type) || !rd32(&t, e + 4, &count)) return 0;
        if (tg != 0xB002) continue;
        if (type != 7 || count % 16 || !rd32(&t, e + 8, &voff)) return 0;
        uint32_t entries = count / 16;
        for (uint32_t j = 1; j < entries && k < max; j++) {
            size_t ent = (size_t)voff + 16 * (size_t)j;
            uint32_t size, off;
            if (!rd32(&t, ent + 4, &size) || !rd32(&t, ent + 8, &off)) break;
            if (size < 4 || off == 0) continue;
            out[k].kind = IMT_SUB_MPF_IMAGE;
            out[k].index = j;
            out[k].offset = base + off;
            out[k].size = size;
            k++;
        }
        break;
    }
    return k;
}

size_t imt__jpeg_embedded(const uint8_t *p, size_t n, imt_embedded_ref *out, size_t max)
{
    size_t k = 0, pos = 2;
    int seen_exif = 0, seen_mpf = 0;
    if (!p || !out || max == 0 || n < 4 || p[0] != 0xFF || p[1] != 0xD8) return 0;
    while (pos + 4 <= n && k < max) {
        if (p[pos] != 0xFF) return k; /* not a marker: stop, do not guess */
        uint8_t m = p[pos + 1];
        if (m == 0xFF) { /* fill byte */
            pos++;
            continue;
        }
        if (m == 0xD8 || m == 0xD9 || m == 0xDA || (m >= 0xD0 && m <= 0xD7) || m == 0x01)
            return k; /* SOI again, EOI, SOS: the headers end */
        size_t len = (size_t)p[pos + 2] << 8 | p[pos + 3];
        if (len < 2 || len > n - pos - 2) return k; /* runs past what we hold */
        const uint8_t *seg = p + pos + 4;
        size_t sn = len - 2;
        uint64_t sbase = (uint64_t)(pos + 4);
        if (m == 0xE1 && !seen_exif && sn >= 6 && !memcmp(seg, "Exif\0\0", 6)) {
            seen_exif = 1;
            k += exif_thumb(seg + 6, sn - 6, sbase + 6, out + k);
        } else if (m == 0xE2 && !seen_mpf && sn >= 4 && !memcmp(seg, "MPF\0", 4)) {
            seen_mpf = 1;
            k += mpf_images(seg + 4, sn - 4, sbase + 4, out + k, max - k);
        }
        pos += 2 + len;
    }
    return k;
}

const char *imt_subitem_kind_name(imt_subitem_kind k)
{
    switch (k) {
    case IMT_SUB_EXIF_THUMBNAIL: return "exif-thumbnail";
    case IMT_SUB_MPF_IMAGE: return "mpf-image";
    case IMT_SUB_HEIF_THUMBNAIL: return "heif-thumbnail";
    case IMT_SUB_THUMBCACHE_ENTRY: return "thumbcache-entry";
    case IMT_SUB_THUMBSDB_ENTRY: return "thumbsdb-entry";
    case IMT_SUB_TIFF_PAGE: return "tiff-page";
    case IMT_SUB__COUNT: break;
    }
    return "unknown";
}
