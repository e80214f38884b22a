/* engine/decode/bmp.c -- BMP -> luma plane, our own reader (no library).
 *
 * The reference hasher does not read BMP through ImageMagick: CImg's
 * load() sends a ".bmp" file (or any file starting "BM") to CImg's own
 * load_bmp(), and only an uncompressed one stays there; a compressed one
 * (RLE8, RLE4, BITFIELDS) goes on to `convert FILE pnm:-`. So there are two
 * pixel models here, each checked against the reference hasher on files
 * made by convert (tests/data/formats):
 *
 * CImg (compression 0, BI_RGB):
 *  - the palette (4-byte BGRx entries, biClrUsed of them or 1 << bpp) is
 *    read right after the DIB header, the pixels from bfOffBits or right
 *    after the palette, whichever is later; rows are bottom-up unless the
 *    height is negative; 16-bit pixels are 5-5-5 and CImg keeps the 5-bit
 *    values (0..31) unscaled; the 4th byte of 32-bit pixels is ignored;
 *  - every image has 3 channels, so the luma is 0.299R+0.587G+0.114B in
 *    float even for a grey palette;
 *  - bytes past the end of the data, and past bfSize when it is neither 0
 *    nor bfOffBits, read as 0 (CImg zero-fills its buffer) when the pixel
 *    data is under 24 MiB; above that CImg reads row by row into one
 *    buffer, so a row cut short keeps the bytes of the row before.
 *    Either way the file is hashed and flagged partial.
 * ImageMagick (RLE8, RLE4, BITFIELDS 16/32 bits), then its PNM writer:
 *  - RLE: runs, absolute runs, end of line, delta and end of bitmap as IM's
 *    DecodeImage, into a zeroed index plane (skipped pixels are index 0);
 *    an index past the palette reads entry 0; data that ends before the
 *    end-of-bitmap marker (or a delta that leaves the image) ends decoding
 *    there, the rest stays index 0 (Debian's build hashes such files; we
 *    flag them partial);
 *  - BITFIELDS: each mask's value shifted to 16 bits and its top bits
 *    repeated below as IM does, then scaled to 8 bits for the PNM;
 *  - the PNM is PGM (luma = the grey value) when every pixel has R==G==B,
 *    else PPM (0.299R+...); a bfSize over the file's size is an error
 *    there (Debian's build: "improper image header"). An RLE4 image has depth 4 in IM: its PNM has
 *    maxval 15 and the reference reads those 0..15 values as they are.
 * Cases the reference gets from undefined behaviour (an index past a CImg
 * palette, bfSize < bfOffBits, widths <= 0) or reads as garbage (the
 * 12-byte OS/2 header, which CImg parses as a 40-byte one) cannot be
 * matched: we decode those as the format says (index past the palette:
 * black; OS/2: its own fields) and say so in the README.
 *
 * Memory: rows are streamed (one row buffer plus the <= 512x512 output);
 * RLE images need the whole index plane (IM's runs may wrap rows and move
 * back to the start of a row), which is capped at IMT_BMP_RLE_MAX bytes,
 * checked from the header before it is allocated. Fast mode gives the same
 * plane: there is nothing cheaper to decode in a BMP than its rows.
 */
#include "decode.h"

#include <string.h>

#define COMPAT_SIDE 512
#define IMT_BMP_RLE_MAX ((uint64_t)64 << 20)   /* index plane of an RLE image */
#define IMT_BMP_MAX_COLORS 65536u              /* CImg reads biClrUsed entries */
#define CIMG_IOBUFFER ((uint64_t)24 << 20)     /* CImg's bulk/row-by-row switch */

enum { BI_RGB = 0, BI_RLE8 = 1, BI_RLE4 = 2, BI_BITFIELDS = 3 };

struct imt_bmp_state {
    uint8_t *row;     /* one stored row */
    uint8_t *idx;     /* RLE: the whole index plane */
    uint8_t *px;      /* output samples, 3 per pixel */
    float *plane;
    size_t row_cap, idx_cap, px_cap, plane_cap;
    int xmap[COMPAT_SIDE];
};

typedef struct bctx {
    const imt_reader *r;
    const uint8_t *chunk;
    size_t len, pos;
    uint64_t off;      /* bytes consumed */
    int eof;
    imt_err err;
    const imt_decode_limits *lim;
    imt_bmp_state *st;
    /* image */
    uint32_t w, h;
    int topdown, bpp, comp, im;  /* im: the ImageMagick model */
    uint8_t pal[256 * 3];        /* RGB */
    unsigned ncol;
    uint32_t mask[3], shift[3], qbits[3];
    int all_grey, all_mono; /* every pixel R==G==B; and each 0 or 255 */
    int out_cols, out_rows;
} bctx;

/* ---- input ---------------------------------------------------------------- */

/* Up to n bytes into dst (NULL: skip them); returns how many. */
static size_t bread(bctx *c, uint8_t *dst, size_t n)
{
    size_t got = 0;
    while (got < n) {
        if (c->pos == c->len) {
            if (c->eof || c->err) break;
            const uint8_t *d = NULL;
            size_t k = 0;
            imt_err e = c->r->pull(c->r->ctx, &d, &k);
            if (e != IMT_OK) {
                c->err = e;
                break;
            }
            if (k == 0) {
                c->eof = 1;
                break;
            }
            c->chunk = d;
            c->len = k;
            c->pos = 0;
        }
        size_t k = c->len - c->pos;
        if (k > n - got) k = n - got;
        if (dst) memcpy(dst + got, c->chunk + c->pos, k);
        c->pos += k;
        got += k;
    }
    c->off += got;
    return got;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static unsigned le16(const uint8_t *p) { return (unsigned)p[0] | (unsigned)p[1] << 8; }

/* ---- output --------------------------------------------------------------- */

/* Keep the pixels of image row y (3 bytes each in rgb) that the
 * nearest-neighbour resize picks. */
static void put_row(bctx *c, uint32_t y, const uint8_t *rgb)
{
    uint64_t R = (uint64_t)c->out_rows, H = c->h;
    uint64_t ilo = ((uint64_t)y * R + H - 1) / H, ihi = (((uint64_t)y + 1) * R + H - 1) / H;
    if (ilo >= ihi) return;
    size_t rowbytes = (size_t)c->out_cols * 3;
    uint8_t *dst = c->st->px + (size_t)ilo * rowbytes;
    for (int j = 0; j < c->out_cols; j++) memcpy(dst + 3 * j, rgb + 3 * (size_t)c->st->xmap[j], 3);
    for (uint64_t i = ilo + 1; i < ihi; i++) memcpy(c->st->px + (size_t)i * rowbytes, dst, rowbytes);
}

/* IM's PNM writer: PGM when every pixel has R == G == B, PBM when also
 * every value is 0 or 255. Judged over every pixel, not the kept ones. */
static void grey_check(bctx *c, const uint8_t *rgb, uint32_t n)
{
    if (!c->all_grey) return;
    unsigned diff = 0, mid = 0;
    for (uint32_t i = 0; i < n; i++) {
        diff |= (unsigned)(rgb[3 * i] ^ rgb[3 * i + 1]) | (unsigned)(rgb[3 * i + 1] ^ rgb[3 * i + 2]);
        mid |= (unsigned)(rgb[3 * i] != 0 && rgb[3 * i] != 255);
    }
    if (diff) c->all_grey = 0;
    if (diff || mid) c->all_mono = 0;
}

static void finish_plane(bctx *c)
{
    size_t n = (size_t)c->out_cols * (size_t)c->out_rows;
    const uint8_t *p = c->st->px;
    float *o = c->st->plane;
    if (c->im && c->all_grey) {
        for (size_t k = 0; k < n; k++) o[k] = (float)p[3 * k];
    } else {
        for (size_t k = 0; k < n; k++, p += 3)
            o[k] = imt__luma_r * p[0] + imt__luma_g * p[1] + imt__luma_b * p[2];
    }
}

/* ---- pixel models ------------------------------------------------------------ */

/* CImg: pixel x of a stored row -> RGB. Index past the palette: black
 * (see top). */
static inline void cimg_px(const bctx *c, const uint8_t *s, uint32_t x, uint8_t *o)
{
    switch (c->bpp) {
    case 1:
    case 4:
    case 8: {
        int d = c->bpp, per = 8 / d;
        unsigned mask = (1u << d) - 1u;
        unsigned byte = s[x / (uint32_t)per];
        unsigned k = (byte >> (8 - d * (int)(x % (uint32_t)per + 1))) & mask;
        if (k < c->ncol) memcpy(o, c->pal + 3 * k, 3);
        else memset(o, 0, 3);
        break;
    }
    case 16: {
        unsigned v = le16(s + 2 * (size_t)x);
        o[0] = (uint8_t)((v >> 10) & 31);
        o[1] = (uint8_t)((v >> 5) & 31);
        o[2] = (uint8_t)(v & 31);
        break;
    }
    default: { /* 24, 32 */
        const uint8_t *p = s + (size_t)(c->bpp / 8) * x;
        o[0] = p[2];
        o[1] = p[1];
        o[2] = p[0];
    }
    }
}

/* CImg path: only the pixels the resize keeps are converted (the CImg
 * model needs no whole-image test), straight into the output rows. */
static void cimg_put_row(bctx *c, uint32_t y, const uint8_t *s)
{
    uint64_t R = (uint64_t)c->out_rows, H = c->h;
    uint64_t ilo = ((uint64_t)y * R + H - 1) / H, ihi = (((uint64_t)y + 1) * R + H - 1) / H;
    if (ilo >= ihi) return;
    size_t rowbytes = (size_t)c->out_cols * 3;
    uint8_t *dst = c->st->px + (size_t)ilo * rowbytes;
    for (int j = 0; j < c->out_cols; j++) cimg_px(c, s, (uint32_t)c->st->xmap[j], dst + 3 * j);
    for (uint64_t i = ilo + 1; i < ihi; i++) memcpy(c->st->px + (size_t)i * rowbytes, dst, rowbytes);
}

/* ImageMagick Q16 quantum -> the 8-bit PNM sample (ScaleQuantumToChar). */
static uint8_t q_to_char(unsigned q)
{
    return (uint8_t)(((q + 128u) - ((q + 128u) >> 8)) >> 8);
}

/* ImageMagick's BITFIELDS sample (bmp.c ReadBMPImage, 16 and 32 bits). */
static uint8_t field(const bctx *c, int ch, uint32_t pixel)
{
    uint32_t v = (uint32_t)(((uint64_t)(pixel & c->mask[ch]) << c->shift[ch]) & 0xffffffffu) >> 16;
    uint32_t qb = c->qbits[ch];
    if (c->bpp == 16) {
        if (qb == 5) v |= (v & 0xe000) >> 5;
        if (ch == 1 && qb == 6) v |= (v & 0xc000) >> 6;
        if (qb <= 8) v |= (v & 0xff00) >> 8;
    } else if (qb == 8) {
        v |= (v & 0xff00) >> 8;
    }
    return q_to_char(v & 0xffffu);
}

static void bitfields_row(const bctx *c, const uint8_t *s, uint8_t *rgb)
{
    if (c->bpp == 24) { /* IM reads 24-bit BITFIELDS as BGR, masks unused */
        for (uint32_t x = 0; x < c->w; x++) {
            rgb[3 * (size_t)x] = s[3 * (size_t)x + 2];
            rgb[3 * (size_t)x + 1] = s[3 * (size_t)x + 1];
            rgb[3 * (size_t)x + 2] = s[3 * (size_t)x];
        }
        return;
    }
    for (uint32_t x = 0; x < c->w; x++) {
        uint32_t px = c->bpp == 16 ? le16(s + 2 * (size_t)x) : le32(s + 4 * (size_t)x);
        for (int ch = 0; ch < 3; ch++) rgb[3 * (size_t)x + ch] = c->mask[ch] ? field(c, ch, px) : 0;
    }
}

/* An index plane row -> RGB through the palette, as IM's PNM writer sees
 * it: depth 4 (RLE4) -> maxval 15 (ScaleQuantumToAny), else 8 bits. */
static void index_row(const bctx *c, const uint8_t *s, uint8_t *rgb)
{
    for (uint32_t x = 0; x < c->w; x++) {
        unsigned k = s[x] < c->ncol ? s[x] : 0;
        memcpy(rgb + 3 * (size_t)x, c->pal + 3 * k, 3);
    }
}

/* The depth-4 (RLE4) PNM: PBM when all pixels are 0/255 grey (values come
 * back as they are), else maxval 15: ScaleQuantumToAny(257 v, 15), truncated
 * (IM 6.9.11 Q16 non-HDRI adds no 0.5). */
static void depth4(bctx *c)
{
    if (c->all_grey && c->all_mono) return;
    size_t n = (size_t)c->out_cols * (size_t)c->out_rows * 3;
    uint8_t *p = c->st->px;
    for (size_t k = 0; k < n; k++)
        p[k] = (uint8_t)(unsigned)((15.0 * (257.0 * p[k])) / 65535.0);
}

/* ---- RLE (IM's DecodeImage) ------------------------------------------------ */

/* Fills c->st->idx (w*h bytes, zeroed) from the RLE stream. Returns 1 when
 * the end-of-bitmap marker (or the last row's end of line) was read, 0 when
 * the data ended before; on a time-out sets *timeout. */
static int rle_decode(bctx *c, int *timeout)
{
    uint8_t *pixels = c->st->idx;
    size_t total = (size_t)c->w * c->h;
    uint8_t *p = pixels, *q = pixels + total;
    size_t x = 0, y = 0;
    uint8_t b[2];
    unsigned ops = 0;
    memset(pixels, 0, total);
    while (y < c->h) {
        if (p < pixels || p > q) break;
        if ((++ops & 0xffffu) == 0 && c->lim->deadline_ms && imt__now_ms() > c->lim->deadline_ms) {
            *timeout = 1;
            return 0;
        }
        if (bread(c, b, 1) != 1) return 0;
        if (b[0] > 0) {
            size_t count = b[0];
            if (count > (size_t)(q - p)) count = (size_t)(q - p);
            if (bread(c, b + 1, 1) != 1) return 0;
            if (c->comp == BI_RLE8) {
                memset(p, b[1], count);
                p += count;
            } else {
                for (size_t i = 0; i < count; i++)
                    *p++ = (uint8_t)((i & 1) ? (b[1] & 0x0f) : (b[1] >> 4));
            }
            x += count;
            continue;
        }
        if (bread(c, b, 1) != 1) return 0;
        switch (b[0]) {
        case 0: /* end of line */
            x = 0;
            y++;
            p = pixels + (y < c->h ? y * c->w : total);
            if (y >= c->h) p = q;
            break;
        case 1: /* end of bitmap */
            return 1;
        case 2: { /* delta: IM reads both bytes, EOF reads as -1 */
            int dx = bread(c, b, 1) == 1 ? b[0] : -1;
            int dy = bread(c, b + 1, 1) == 1 ? b[1] : -1;
            x += (size_t)(ptrdiff_t)dx;
            y += (size_t)(ptrdiff_t)dy;
            /* IM: p = pixels + y*columns + x, checked against the plane at
             * the loop's top; out of it ends the loop */
            if (y >= c->h || x > total) return 0;
            uint64_t at = (uint64_t)y * c->w + x;
            if (at > total) return 0;
            p = pixels + at;
            break;
        }
        default: { /* absolute run */
            size_t count = b[0];
            if (count > (size_t)(q - p)) count = (size_t)(q - p);
            if (c->comp == BI_RLE8) {
                for (size_t i = 0; i < count; i++) {
                    if (bread(c, b, 1) != 1) return 0;
                    *p++ = b[0];
                }
                if ((count & 1) && bread(c, b, 1) != 1) return 0;
            } else {
                for (size_t i = 0; i < count; i++) {
                    if (!(i & 1) && bread(c, b, 1) != 1) return 0;
                    *p++ = (uint8_t)((i & 1) ? (b[0] & 0x0f) : (b[0] >> 4));
                }
                if (((count & 3) == 1 || (count & 3) == 2) && bread(c, b, 1) != 1) return 0;
            }
            x += count;
        }
        }
    }
    /* IM's loop ends with y == rows (a success) or p out of the plane */
    return y >= c->h;
}

/* ---- the decode ------------------------------------------------------------------ */

static int deadline_passed(const bctx *c)
{
    return c->lim->deadline_ms && imt__now_ms() > c->lim->deadline_ms;
}

static imt_err decode(bctx *c, imt_luma *out, char *detail, size_t cap)
{
    imt_err err = IMT_OK;
    imt_bmp_state *st = c->st;
    uint8_t hd[14 + 124];
    memset(hd, 0, sizeof hd);
    size_t got = bread(c, hd, 18);
    if (got < 18 || hd[0] != 'B' || hd[1] != 'M') {
        if (c->err) goto read_failed;
        imt__set_detail(detail, cap, "BMP: file ends inside the header (%zu bytes)", got);
        return IMT_E_TRUNCATED;
    }
    uint32_t bfsize = le32(hd + 2), offbits = le32(hd + 10), hs = le32(hd + 14);
    if (hs != 12 && hs != 16 && hs != 40 && hs != 52 && hs != 56 && hs != 64 && hs != 108 &&
        hs != 124) {
        imt__set_detail(detail, cap, "BMP: unknown header size %u", (unsigned)hs);
        return IMT_E_CORRUPT;
    }
    if (bread(c, hd + 18, hs - 4) != hs - 4) {
        if (c->err) goto read_failed;
        imt__set_detail(detail, cap, "BMP: file ends inside the %u-byte header", (unsigned)hs);
        return IMT_E_TRUNCATED;
    }
    int64_t w, h;
    uint32_t clrused = 0;
    unsigned planes;
    if (hs == 12) {
        w = le16(hd + 18);
        h = (int16_t)le16(hd + 20);
        planes = le16(hd + 22);
        c->bpp = (int)le16(hd + 24);
        c->comp = BI_RGB;
    } else {
        w = (int32_t)le32(hd + 18);
        h = (int32_t)le32(hd + 22);
        planes = le16(hd + 26);
        c->bpp = (int)le16(hd + 28);
        c->comp = (int)le32(hd + 30);
        if (hs > 16) clrused = le32(hd + 46);
    }
    c->topdown = h < 0;
    if (h < 0) h = -h;
    out->width = w > 0 ? (uint32_t)w : 0;
    out->height = (uint32_t)h;
    if (w <= 0 || h == 0) {
        imt__set_detail(detail, cap, "BMP claims %lldx%lld pixels", (long long)w, (long long)h);
        return IMT_E_CORRUPT;
    }
    IMT_TRY(imt__check_dims((uint64_t)w, (uint64_t)h, c->lim, "BMP", detail, cap));
    c->w = (uint32_t)w;
    c->h = (uint32_t)h;
    int bpp = c->bpp;
    if (bpp != 1 && bpp != 4 && bpp != 8 && bpp != 16 && bpp != 24 && bpp != 32) {
        imt__set_detail(detail, cap, "BMP: %d bits per pixel", bpp);
        return IMT_E_UNSUPPORTED;
    }
    c->im = c->comp != BI_RGB;
    if (c->im) {
        /* ImageMagick's checks (ReadBMPImage) */
        if (planes != 1 || (bpp < 16 && clrused > (1u << bpp)) ||
            (c->comp == BI_RLE8 && bpp != 8) || (c->comp == BI_RLE4 && bpp != 4) ||
            (c->comp == BI_BITFIELDS && bpp < 16)) {
            imt__set_detail(detail, cap, "BMP: compression %d with %d bits per pixel, %u planes, "
                            "%u colours", c->comp, bpp, planes, (unsigned)clrused);
            return IMT_E_CORRUPT;
        }
        if (c->comp > BI_BITFIELDS) {
            imt__set_detail(detail, cap, "BMP: compression %d (JPEG/PNG in BMP) is not decoded",
                            c->comp);
            return IMT_E_UNSUPPORTED;
        }
    }

    /* the colour table (or BITFIELDS masks), right after the header */
    uint64_t pos = 14 + (uint64_t)hs;
    unsigned ncol = 0;
    if (bpp < 16) ncol = clrused ? clrused : 1u << bpp;
    if (ncol > IMT_BMP_MAX_COLORS) {
        imt__set_detail(detail, cap, "BMP: %u palette entries", ncol);
        return IMT_E_CORRUPT;
    }
    c->ncol = ncol;
    memset(c->pal, 0, sizeof c->pal);
    if (c->comp == BI_BITFIELDS) {
        uint8_t m[12];
        if (hs > 40) {
            memcpy(m, hd + 54, 12);
        } else {
            if (bread(c, m, 12) != 12) goto short_header;
            pos += 12;
        }
        for (int ch = 0; ch < 3; ch++) c->mask[ch] = le32(m + 4 * ch);
    }
    for (unsigned i = 0; i < ncol; i++) {
        uint8_t e[4];
        size_t es = (c->im && (hs == 12 || hs == 64)) || (!c->im && hs == 12) ? 3 : 4;
        if (bread(c, e, es) != es) goto short_header;
        pos += es;
        if (i < 256) {
            c->pal[3 * i] = e[2];
            c->pal[3 * i + 1] = e[1];
            c->pal[3 * i + 2] = e[0];
        }
    }
    if (c->ncol > 256) c->ncol = 256;
    for (int ch = 0; ch < 3 && c->comp == BI_BITFIELDS; ch++) {
        uint32_t m = c->mask[ch], s = 0, b = 0;
        if (m) {
            while (!(((uint64_t)m << s) & 0x80000000u)) s++;
            while ((((uint64_t)m << (s + b)) & 0x80000000u)) b++;
        }
        c->shift[ch] = s;
        c->qbits[ch] = b;
    }
    if (offbits > pos) {
        if (bread(c, NULL, offbits - pos) != offbits - pos) goto short_header;
        pos = offbits;
    } else if (c->im && offbits < pos) {
        /* IM seeks back into the header or palette: not streamed */
        imt__set_detail(detail, cap, "BMP: pixel data offset %u inside the header and palette",
                        (unsigned)offbits);
        return IMT_E_CORRUPT;
    }

    /* buffers: all sizes checked (w, h <= max_dimension and the product
     * <= max_pixels above; a row of 32-bit pixels is 4w) */
    uint64_t rowbytes;
    if (bpp == 1) rowbytes = ((uint64_t)w + 7) / 8;
    else if (bpp == 4) rowbytes = ((uint64_t)w + 1) / 2;
    else rowbytes = (uint64_t)w * (uint64_t)(bpp / 8);
    uint64_t align = (4 - rowbytes % 4) % 4;
    if (rowbytes + align > SIZE_MAX / 4 || (uint64_t)w * 3 > SIZE_MAX / 4) {
        imt__set_detail(detail, cap, "BMP: rows of %llu bytes", (unsigned long long)rowbytes);
        return IMT_E_TOO_LARGE;
    }
    int rle = c->comp == BI_RLE8 || c->comp == BI_RLE4;
    if (rle && (uint64_t)w * (uint64_t)h > IMT_BMP_RLE_MAX) {
        imt__set_detail(detail, cap, "BMP: a run-length coded %llux%llu image needs its whole "
                        "index plane, over the %llu MiB allowed", (unsigned long long)w,
                        (unsigned long long)h, (unsigned long long)(IMT_BMP_RLE_MAX >> 20));
        return IMT_E_TOO_LARGE;
    }
    c->out_cols = imt__compat_side(c->w, c->w, c->h);
    c->out_rows = imt__compat_side(c->h, c->w, c->h);
    imt__nn_map((int)c->w, c->out_cols, st->xmap);
    size_t n = (size_t)c->out_cols * (size_t)c->out_rows;
    /* row: the stored row, then 3 bytes per pixel of RGB after it */
    size_t rb = (size_t)(rowbytes + align);
    IMT_TRY(imt__grow((void **)&st->row, &st->row_cap, rb + 3 * (size_t)w));
    IMT_TRY(imt__grow((void **)&st->px, &st->px_cap, 3 * n));
    IMT_TRY(imt__grow((void **)&st->plane, &st->plane_cap, n * sizeof(float)));
    if (rle) IMT_TRY(imt__grow((void **)&st->idx, &st->idx_cap, (size_t)w * (size_t)h));
    uint8_t *raw = st->row, *rgb = st->row + rb;
    c->all_grey = c->all_mono = 1;

    if (rle) {
        int timeout = 0;
        int ok = rle_decode(c, &timeout);
        if (c->err) goto read_failed;
        if (timeout) goto timed_out;
        if (!ok) {
            /* Debian's ImageMagick keeps what was decoded (the rest is
             * index 0): hashed, flagged partial */
            out->partial = 1;
            imt__set_detail(detail, cap, "BMP: run-length data ends before the end of the "
                            "bitmap (%llu bytes); the rest reads as colour 0",
                            (unsigned long long)c->off);
        }
        /* plane row r is image row h-1-r (IM reads it bottom-up), flipped
         * for a negative height */
        for (uint32_t r = 0; r < c->h; r++) {
            index_row(c, st->idx + (size_t)r * c->w, rgb);
            grey_check(c, rgb, c->w);
            uint32_t y = c->topdown ? r : c->h - 1 - r;
            put_row(c, y, rgb);
        }
        if (c->comp == BI_RLE4) depth4(c);
    } else {
        /* CImg reads min(rows * row, bfSize - bfOffBits) bytes into a zeroed
         * buffer when that is under 24 MiB, else row by row */
        uint64_t total = (uint64_t)c->h * rb, avail = total;
        if (!c->im && bfsize != 0 && bfsize != offbits && bfsize > offbits)
            avail = bfsize - offbits;
        uint64_t bulk = avail < total ? avail : total;
        int rowwise = !c->im && bulk >= CIMG_IOBUFFER;
        uint64_t left = rowwise || c->im ? UINT64_MAX : bulk;
        int ended = 0;
        memset(raw, 0, rb);
        for (uint32_t r = 0; r < c->h; r++) {
            if ((r & 63) == 0 && deadline_passed(c)) goto timed_out;
            size_t want = rowwise ? (size_t)rowbytes : rb;
            size_t k = want;
            if (k > left) k = (size_t)left;
            size_t g = ended ? 0 : bread(c, raw, k);
            if (c->err) goto read_failed;
            if (g < want) {
                if (!rowwise) memset(raw + g, 0, rb - g); /* zeroed buffer */
                if (g < k || k < want) ended = 1;
            }
            if (rowwise && !ended && bread(c, NULL, rb - rowbytes) != rb - rowbytes)
                ended = 1; /* the padding: CImg seeks over it */
            if (left != UINT64_MAX) left -= k;
            if (c->im && ended) {
                imt__set_detail(detail, cap, "BMP: pixel data ends after %u of %u rows",
                                (unsigned)r, (unsigned)c->h);
                return IMT_E_CORRUPT; /* IM: InsufficientImageDataInFile */
            }
            uint32_t y = c->topdown ? r : c->h - 1 - r;
            if (c->im) {
                bitfields_row(c, raw, rgb);
                grey_check(c, rgb, c->w);
                put_row(c, y, rgb);
            } else {
                cimg_put_row(c, y, raw);
            }
        }
        if (ended) {
            out->partial = 1;
            imt__set_detail(detail, cap, "BMP: pixel data ends early (%llu bytes); the rest "
                            "reads as %s", (unsigned long long)c->off,
                            rowwise ? "the row before" : "zeros");
        }
    }
    if (c->im) {
        /* Debian's ImageMagick refuses a BMP whose bfSize is over the
         * file's size ("improper image header") and one whose pixel data
         * would be over 256 times the file's size (stride * rows / 256,
         * RLE4 counted at 8 bits a pixel): read to the end to know */
        while (bread(c, NULL, (size_t)1 << 20) == (size_t)1 << 20) {
        }
        if (c->err) goto read_failed;
        uint64_t ibpp = c->comp == BI_RLE4 ? 8 : (uint64_t)bpp;
        uint64_t length = 4 * (((uint64_t)c->w * ibpp + 31) / 32) * c->h;
        if (bfsize > c->off || length / 256 > c->off) {
            imt__set_detail(detail, cap, "BMP: %s the file's %llu bytes (ImageMagick refuses it)",
                            bfsize > c->off ? "bfSize is over" : "the pixel data would be over 256 times",
                            (unsigned long long)c->off);
            return IMT_E_CORRUPT;
        }
    }
    finish_plane(c);
    out->pix = st->plane;
    out->cols = c->out_cols;
    out->rows = c->out_rows;
    return err;

short_header:
    if (c->err) goto read_failed;
    imt__set_detail(detail, cap, "BMP: file ends inside the colour table (%llu bytes)",
                    (unsigned long long)c->off);
    return IMT_E_TRUNCATED;
read_failed:
    imt__set_detail(detail, cap, "BMP read failed: %s", imt_strerror(c->err));
    return c->err;
timed_out:
    imt__set_detail(detail, cap, "BMP decoding stopped at the time budget");
    return IMT_E_TIMEOUT;
cleanup:
    return err;
}

imt_err imt__bmp_decode(imt_bmp_state **stp, const imt_reader *r, imt_pdq_mode mode,
                        const imt_decode_limits *lim, imt_luma *out, char *detail, size_t cap)
{
    if (!stp || !r || !lim || !out) return IMT_E_INVALID;
    (void)mode; /* both modes give the reference's plane: see the top */
    if (!*stp) {
        *stp = imt__calloc(1, sizeof **stp);
        if (!*stp) return IMT_E_NOMEM;
    }
    bctx *c = imt__calloc(1, sizeof *c);
    if (!c) return IMT_E_NOMEM;
    c->r = r;
    c->lim = lim;
    c->st = *stp;
    out->pix = NULL;
    out->rows = out->cols = 0;
    out->partial = 0;
    imt_err err = decode(c, out, detail, cap);
    imt__free(c);
    if (err != IMT_OK) {
        out->pix = NULL;
        out->rows = out->cols = 0;
    }
    return err;
}

void imt__bmp_state_free(imt_bmp_state *st)
{
    if (!st) return;
    imt__free(st->row);
    imt__free(st->idx);
    imt__free(st->px);
    imt__free(st->plane);
    imt__free(st);
}
