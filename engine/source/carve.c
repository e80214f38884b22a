/* engine/source/carve.c -- the carver (carve.h says what each format's walk
 * checks and why the work is linear) and slices of a range as items.
 *
 * One buffer holds a window [ws, ws + wlen) of the range. The scan keeps
 * the window from its current position on; an uncommitted walk keeps it
 * from its candidate's start (it may be rejected and the scan go back to
 * one byte after the signature, which is then still in the window: nothing
 * is read twice); a committed walk keeps only from where it is (it ends in
 * a hit and the scan goes on after it). The buffer is chunk_bytes plus
 * IMT__CARVE_LOOKAHEAD, the farthest an uncommitted walk may look. */
#include "source/carve.h"

#include <errno.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <sys/stat.h>
#include <unistd.h>

#define CARVE_DEFAULT_MAX ((uint64_t)64 << 20)
#define CARVE_DEFAULT_CHUNK ((size_t)4 << 20)
#define CARVE_ALL_FORMATS                                                           \
    ((1u << IMT_FMT_JPEG) | (1u << IMT_FMT_PNG) | (1u << IMT_FMT_GIF) |            \
     (1u << IMT_FMT_WEBP) | (1u << IMT_FMT_BMP))

void imt_carve_opts_init(imt_carve_opts *o)
{
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->max_length = CARVE_DEFAULT_MAX;
    o->chunk_bytes = CARVE_DEFAULT_CHUNK;
    o->formats = CARVE_ALL_FORMATS;
}

const char *imt_carve_end_name(imt_carve_end e)
{
    switch (e) {
    case IMT_CARVE_COMPLETE: return "complete";
    case IMT_CARVE_RANGE_END: return "range-end";
    case IMT_CARVE_MAX_LENGTH: return "max-length";
    case IMT_CARVE_BAD_STRUCTURE: return "bad-structure";
    }
    return "unknown";
}

/* ---- the window ---------------------------------------------------------- */
typedef struct carver {
    const imt__io *io;
    uint64_t size;
    uint8_t *buf;
    size_t cap, chunk;
    uint64_t ws;             /* window start (offset in the range) */
    size_t wlen;
    imt_err err;             /* a failed read: the carve ends with it */
    imt_carve_stats st;
    uint64_t max_len;
    /* the candidate being walked */
    uint64_t cand, limit;    /* limit: cand + max_len */
    int committed;
    uint64_t exam;           /* bytes examined while uncommitted */
    uint64_t mark;           /* committed: where a bad structure found now would
                                end the hit (the window keeps from here) */
    uint64_t rewind_left;    /* bytes a bad PNG CRC may still send the scan back
                                over (see walk_png) */
    uint32_t crc[256];       /* CRC-32 table (PNG) */
} carver;

/* A pointer to pos in the window, holding at least n bytes there unless the
 * range ends first; *avail: the bytes from pos to the window's end. Bytes
 * before keep (<= pos) may be dropped. NULL at or past the range's end or
 * on a failed read (c->err). */
static const uint8_t *fetch(carver *c, uint64_t pos, size_t n, uint64_t keep,
                            size_t *avail)
{
    *avail = 0;
    if (c->err || pos >= c->size) return NULL;
    if (n > c->size - pos) n = (size_t)(c->size - pos);
    uint64_t wend = c->ws + c->wlen;
    if (pos < c->ws || pos + n > wend) {
        if (keep > pos || pos + n - keep > c->cap) keep = pos;
        if (keep >= c->ws && keep <= wend) {
            size_t drop = (size_t)(keep - c->ws);
            memmove(c->buf, c->buf + drop, c->wlen - drop);
            c->wlen -= drop;
        } else {
            c->wlen = 0;
        }
        c->ws = keep;
        /* Read to cover pos + n, and a whole chunk when there is room. */
        uint64_t want = c->ws + c->wlen + c->chunk;
        if (want < pos + n) want = pos + n;
        if (want > c->ws + c->cap) want = c->ws + c->cap;
        if (want > c->size) want = c->size;
        while (c->ws + c->wlen < want) {
            size_t got = 0;
            imt_err e = c->io->pread(c->io->ctx, c->ws + c->wlen, c->buf + c->wlen,
                                     (size_t)(want - c->ws - c->wlen), &got);
            if (e == IMT_OK && got == 0) e = IMT_E_IO; /* shorter than its size */
            if (e != IMT_OK) {
                c->err = e;
                return NULL;
            }
            c->wlen += got;
            c->st.bytes_read += got;
        }
    }
    *avail = (size_t)(c->ws + c->wlen - pos);
    return c->buf + (pos - c->ws);
}

/* n (<= 32) bytes at pos for the walk of the current candidate, or NULL
 * when they run past the range, the maximum length, or a read failed. An
 * uncommitted walk commits when it would look past its lookahead or
 * examine more than its budget (no random bytes get that far). */
static const uint8_t *need(carver *c, uint64_t pos, size_t n)
{
    if (pos > c->limit || n > c->limit - pos) return NULL;
    c->st.examined += n;
    if (!c->committed) {
        c->exam += n;
        if (c->exam > IMT__CARVE_EXAMINE || pos + n > c->cand + IMT__CARVE_LOOKAHEAD)
            c->committed = 1;
    }
    size_t avail;
    uint64_t keep = c->committed ? c->mark : c->cand;
    const uint8_t *p = fetch(c, pos, n, keep < pos ? keep : pos, &avail);
    return p && avail >= n ? p : NULL;
}

/* As need, for a run of bytes of any length: a pointer to pos and how many
 * bytes follow in the window (at most up to the limit). NULL as need. */
static const uint8_t *span(carver *c, uint64_t pos, size_t *avail)
{
    if (pos >= c->limit) return NULL;
    uint64_t keep = c->committed ? c->mark : c->cand;
    const uint8_t *p = fetch(c, pos, 1, keep < pos ? keep : pos, avail);
    if (!p) return NULL;
    if (*avail > c->limit - pos) *avail = (size_t)(c->limit - pos);
    return p;
}

/* ---- the outcome of a walk ------------------------------------------------ */
enum { W_REJECT = 0, W_HIT = 1, W_ERR = 2 };

static int hit_end(carver *c, imt_carve_hit *h, uint64_t end, imt_carve_end why)
{
    h->offset = c->cand;
    h->length = end - c->cand;
    h->end = why;
    h->truncated = why != IMT_CARVE_COMPLETE;
    return W_HIT;
}

/* The walk needed bytes that are not there: past the maximum length, past
 * the range's end, or a read failed. */
static int run_off(carver *c, imt_carve_hit *h)
{
    if (c->err) return W_ERR;
    if (c->limit < c->size) return hit_end(c, h, c->limit, IMT_CARVE_MAX_LENGTH);
    return hit_end(c, h, c->size, IMT_CARVE_RANGE_END);
}

/* A bad structure at pos: a committed candidate ends there, truncated. */
static int bad(carver *c, imt_carve_hit *h, uint64_t pos)
{
    if (!c->committed || pos <= c->cand) return W_REJECT;
    return hit_end(c, h, pos, IMT_CARVE_BAD_STRUCTURE);
}

static uint32_t be32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}
static uint32_t le32(const uint8_t *b)
{
    return (uint32_t)b[3] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[1] << 8 | b[0];
}
static unsigned le16(const uint8_t *b)
{
    return (unsigned)b[1] << 8 | b[0];
}

/* ---- JPEG ------------------------------------------------------------------ */
static int jpeg_sof(unsigned m)
{
    return m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
}

/* A marker with a length: everything from 0xC0 to 0xFE but RSTn, SOI, EOI. */
static int jpeg_segment(unsigned m)
{
    return m >= 0xC0 && m <= 0xFE && !(m >= 0xD0 && m <= 0xD9);
}

/* The first marker after SOI, as JPEG writers put it: APPn, COM, DQT, DHT,
 * DRI or a baseline/progressive SOF. */
static int jpeg_first(unsigned m)
{
    return (m >= 0xE0 && m <= 0xEF) || m == 0xFE || m == 0xDB || m == 0xC4 ||
           m == 0xDD || (m >= 0xC0 && m <= 0xC2);
}

/* Entropy-coded data from *pp to the next marker: a 0xFF followed by a byte
 * that is not 0x00 (stuffing), RSTn or 0xFF (fill). Returns 0 with *pp at
 * that 0xFF, or -1 when the data runs off (run_off says how). */
static int jpeg_entropy(carver *c, uint64_t *pp)
{
    uint64_t p = *pp;
    for (;;) {
        size_t avail;
        c->mark = p; /* nothing behind p can end the hit any more */
        const uint8_t *b = span(c, p, &avail);
        if (!b) return -1;
        const uint8_t *f = memchr(b, 0xFF, avail);
        if (!f) {
            c->st.examined += avail;
            p += avail;
            continue;
        }
        size_t i = (size_t)(f - b);
        c->st.examined += i;
        p += i;
        const uint8_t *m = need(c, p, 2);
        if (!m) return -1;
        unsigned x = m[1];
        if (x == 0x00 || x == 0xFF || (x >= 0xD0 && x <= 0xD7)) {
            p += 1;
            continue;
        }
        *pp = p;
        return 0;
    }
}

static int walk_jpeg(carver *c, imt_carve_hit *h)
{
    const uint8_t *b = need(c, c->cand, 4);
    if (!b || b[0] != 0xFF || b[1] != 0xD8 || b[2] != 0xFF || !jpeg_first(b[3]))
        return c->err ? W_ERR : W_REJECT;
    h->format = IMT_FMT_JPEG;
    uint64_t p = c->cand + 2;
    int sof = 0, sos = 0;
    for (;;) {
        c->mark = p;
        b = need(c, p, 2);
        if (!b) return run_off(c, h);
        if (b[0] != 0xFF) return bad(c, h, p);
        unsigned fill = 0;
        while (b[1] == 0xFF) { /* fill bytes before a marker */
            if (++fill > 64) return bad(c, h, p);
            b = need(c, ++p, 2);
            if (!b) return run_off(c, h);
        }
        unsigned m = b[1];
        if (m == 0xD9) {
            if (!sos) return bad(c, h, p);
            return hit_end(c, h, p + 2, IMT_CARVE_COMPLETE);
        }
        if (!jpeg_segment(m) || (sos && jpeg_sof(m))) return bad(c, h, p);
        b = need(c, p + 2, 2);
        if (!b) return run_off(c, h);
        unsigned len = (unsigned)b[0] << 8 | b[1];
        if (len < 2 || (jpeg_sof(m) && len < 8)) return bad(c, h, p);
        if (jpeg_sof(m)) sof = 1;
        if (m != 0xDA) {
            p += 2 + len; /* jumped over: an EXIF thumbnail in APP1 is never seen */
            continue;
        }
        if (!sof) return bad(c, h, p);
        sos = 1;
        c->committed = 1; /* image data follows a whole header */
        p += 2 + len;
        if (jpeg_entropy(c, &p) != 0) return run_off(c, h);
    }
}

/* ---- PNG ------------------------------------------------------------------- */
static void crc_init(uint32_t *t)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t v = n;
        for (int k = 0; k < 8; k++) v = v & 1 ? 0xEDB88320u ^ (v >> 1) : v >> 1;
        t[n] = v;
    }
}

/* CRC-32 of [pos, pos + len); -1 when the bytes run off. */
static int crc_range(carver *c, uint64_t pos, uint64_t len, uint32_t *out)
{
    uint32_t crc = 0xFFFFFFFFu;
    while (len) {
        size_t avail;
        const uint8_t *b = span(c, pos, &avail);
        if (!b) return -1;
        if (avail > len) avail = (size_t)len;
        for (size_t i = 0; i < avail; i++) crc = c->crc[(crc ^ b[i]) & 0xFF] ^ (crc >> 8);
        c->st.examined += avail;
        pos += avail;
        len -= avail;
    }
    *out = crc ^ 0xFFFFFFFFu;
    return 0;
}

static int png_type_ok(const uint8_t *t)
{
    for (int i = 0; i < 4; i++)
        if (!((t[i] >= 'A' && t[i] <= 'Z') || (t[i] >= 'a' && t[i] <= 'z'))) return 0;
    return 1;
}

static int walk_png(carver *c, imt_carve_hit *h)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    const uint8_t *b = need(c, c->cand, 8);
    if (!b || memcmp(b, sig, 8)) return c->err ? W_ERR : W_REJECT;
    h->format = IMT_FMT_PNG;
    uint64_t p = c->cand + 8;
    for (int first = 1;; first = 0) {
        c->mark = p;
        b = need(c, p, 8);
        if (!b) return run_off(c, h);
        uint32_t len = be32(b);
        uint8_t type[4];
        memcpy(type, b + 4, 4);
        if (len > 0x7FFFFFFFu || !png_type_ok(type)) return bad(c, h, p);
        if (first && (memcmp(type, "IHDR", 4) || len != 13)) return bad(c, h, p);
        uint32_t crc;
        if (crc_range(c, p + 4, 4 + (uint64_t)len, &crc) != 0) return run_off(c, h);
        b = need(c, p + 8 + len, 4);
        if (!b) return run_off(c, h);
        if (be32(b) != crc) {
            /* The chunk is not this file's (a fragment, another file over
             * it): the item ends before it, so that a picture starting
             * inside it is found; but the scan then goes back over bytes
             * the CRC already read, so that is allowed for at most the
             * range's size in all: past that (a hostile range of nested
             * bad chunks) the item ends after the chunk. Linear either way. */
            uint64_t e = p + 12 + (uint64_t)len;
            if (!c->committed || e - p <= c->rewind_left) {
                if (c->committed) c->rewind_left -= e - p;
                return bad(c, h, p);
            }
            return hit_end(c, h, e, IMT_CARVE_BAD_STRUCTURE);
        }
        c->committed = 1; /* a signature and an IHDR with its CRC */
        p += 12 + (uint64_t)len;
        if (!memcmp(type, "IEND", 4)) return hit_end(c, h, p, IMT_CARVE_COMPLETE);
    }
}

/* ---- GIF ------------------------------------------------------------------- */
/* Sub-blocks from *pp to their terminator; -1 when they run off. */
static int gif_blocks(carver *c, uint64_t *pp)
{
    uint64_t p = *pp;
    for (;;) {
        const uint8_t *b = need(c, p, 1);
        if (!b) return -1;
        p += 1 + (uint64_t)b[0];
        if (!b[0]) break;
    }
    *pp = p;
    return 0;
}

static int walk_gif(carver *c, imt_carve_hit *h)
{
    const uint8_t *b = need(c, c->cand, 13);
    if (!b || (memcmp(b, "GIF87a", 6) && memcmp(b, "GIF89a", 6)) || !le16(b + 6) ||
        !le16(b + 8))
        return c->err ? W_ERR : W_REJECT;
    h->format = IMT_FMT_GIF;
    uint64_t p = c->cand + 13;
    if (b[10] & 0x80) p += 3u << ((b[10] & 7) + 1);
    int images = 0;
    for (;;) {
        c->mark = p;
        b = need(c, p, 1);
        if (!b) return run_off(c, h);
        if (b[0] == 0x3B) {
            if (!images) return bad(c, h, p);
            return hit_end(c, h, p + 1, IMT_CARVE_COMPLETE);
        }
        if (b[0] == 0x21) {
            if (!need(c, p, 2)) return run_off(c, h);
            p += 2;
        } else if (b[0] == 0x2C) {
            b = need(c, p, 10);
            if (!b) return run_off(c, h);
            if (!le16(b + 5) || !le16(b + 7)) return bad(c, h, p);
            unsigned fl = b[9];
            uint64_t q = p + 10;
            if (fl & 0x80) q += 3u << ((fl & 7) + 1);
            b = need(c, q, 1);
            if (!b) return run_off(c, h);
            if (b[0] < 1 || b[0] > 11) return bad(c, h, p); /* LZW minimum code size */
            p = q + 1;
            images++;
            c->committed = 1; /* a whole header and an image descriptor */
        } else {
            return bad(c, h, p);
        }
        if (gif_blocks(c, &p) != 0) return run_off(c, h);
    }
}

/* ---- WebP (RIFF) ------------------------------------------------------------ */
static int fourcc_ok(const uint8_t *t)
{
    for (int i = 0; i < 4; i++)
        if (t[i] < 0x20 || t[i] > 0x7E) return 0;
    return 1;
}

static int walk_webp(carver *c, imt_carve_hit *h)
{
    const uint8_t *b = need(c, c->cand, 20);
    if (!b || memcmp(b, "RIFF", 4) || memcmp(b + 8, "WEBP", 4)) return c->err ? W_ERR : W_REJECT;
    uint64_t total = (uint64_t)le32(b + 4) + 8, first = le32(b + 16);
    const uint8_t *fc = b + 12;
    int vp8 = !memcmp(fc, "VP8 ", 4), vp8l = !memcmp(fc, "VP8L", 4), vp8x = !memcmp(fc, "VP8X", 4);
    if (!(vp8 || vp8l || vp8x) || 20 + first > total) return W_REJECT;
    if (vp8x && first < 10) return W_REJECT;
    if (vp8l && (!(b = need(c, c->cand + 20, 1)) || b[0] != 0x2F))
        return c->err ? W_ERR : W_REJECT;
    if (vp8 && (first < 10 || !(b = need(c, c->cand + 20, 6)) || b[3] != 0x9D ||
                b[4] != 0x01 || b[5] != 0x2A))
        return c->err ? W_ERR : W_REJECT;
    h->format = IMT_FMT_WEBP;
    c->committed = 1;
    uint64_t end = c->cand + total, p = c->cand + 12;
    while (p < end) {
        c->mark = p;
        b = need(c, p, 8);
        if (!b) return run_off(c, h);
        if (!fourcc_ok(b)) return bad(c, h, p);
        uint64_t cs = le32(b + 4), np = p + 8 + cs + (cs & 1);
        if (np > end) {
            if (p + 8 + cs != end) return bad(c, h, p); /* a last odd chunk unpadded */
            np = end;
        }
        p = np;
    }
    if (!need(c, end - 1, 1)) return run_off(c, h);
    return hit_end(c, h, end, IMT_CARVE_COMPLETE);
}

/* ---- BMP ------------------------------------------------------------------- */
static int walk_bmp(carver *c, imt_carve_hit *h)
{
    const uint8_t *b = need(c, c->cand, 26);
    if (!b || b[0] != 'B' || b[1] != 'M') return c->err ? W_ERR : W_REJECT;
    uint64_t fsize = le32(b + 2), off = le32(b + 10), hs = le32(b + 14);
    uint64_t w, ah;
    unsigned planes, bpp, comp;
    if (hs == 12) {
        w = le16(b + 18);
        ah = le16(b + 20);
        planes = le16(b + 22);
        bpp = le16(b + 24);
        comp = 0;
    } else if (hs == 40 || hs == 52 || hs == 56 || hs == 64 || hs == 108 || hs == 124) {
        b = need(c, c->cand, 34);
        if (!b) return c->err ? W_ERR : W_REJECT;
        int32_t sw = (int32_t)le32(b + 18), sh = (int32_t)le32(b + 22);
        if (sw <= 0 || sh == 0 || sh == INT32_MIN) return W_REJECT;
        w = (uint64_t)sw;
        ah = sh < 0 ? (uint64_t)(-(int64_t)sh) : (uint64_t)sh;
        planes = le16(b + 26);
        bpp = le16(b + 28);
        comp = le32(b + 30);
    } else {
        return W_REJECT;
    }
    if (!w || !ah || w > (1u << 20) || ah > (1u << 20) || planes != 1) return W_REJECT;
    if (bpp != 1 && bpp != 4 && bpp != 8 && bpp != 16 && bpp != 24 && bpp != 32) return W_REJECT;
    int rle = comp == 1 || comp == 2;
    if (!(comp == 0 || comp == 3 || comp == 6 || (comp == 1 && bpp == 8) ||
          (comp == 2 && bpp == 4)))
        return W_REJECT;
    if ((comp == 3 || comp == 6) && bpp < 16) return W_REJECT;
    if (off < 14 + hs) return W_REJECT;
    uint64_t len;
    if (rle) {
        if (fsize <= off) return W_REJECT;
        len = fsize;
    } else {
        /* The rows the header describes; bfSize when it holds them and at
         * most 1 MiB more (a V5 profile after the pixels), else the rows. */
        uint64_t rows = off + (w * bpp + 31) / 32 * 4 * ah;
        len = fsize >= rows && fsize - rows <= ((uint64_t)1 << 20) ? fsize : rows;
    }
    h->format = IMT_FMT_BMP;
    c->committed = 1;
    if (!need(c, c->cand + len - 1, 1)) return run_off(c, h);
    return hit_end(c, h, c->cand + len, IMT_CARVE_COMPLETE);
}

/* ---- the scan ----------------------------------------------------------------- */
/* The two leading bytes of each format's signature: every walk checks them
 * first, so the scan only stops where both match. */
typedef struct sigs {
    unsigned char first[256];  /* first byte -> its format (0: none) */
    unsigned char second[256]; /* first byte -> the byte that must follow */
    uint8_t pair[5][2];
    int n;
    int vec;                   /* SSE2 scan; off with IMT_FORCE_PORTABLE=1 */
} sigs;

static void sigs_init(sigs *g, unsigned formats)
{
    static const struct { int fmt; uint8_t a, b; } all[] = {
        {IMT_FMT_JPEG, 0xFF, 0xD8}, {IMT_FMT_PNG, 0x89, 'P'}, {IMT_FMT_GIF, 'G', 'I'},
        {IMT_FMT_WEBP, 'R', 'I'}, {IMT_FMT_BMP, 'B', 'M'}};
    memset(g, 0, sizeof *g);
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
        if (!(formats & (1u << all[i].fmt))) continue;
        g->first[all[i].a] = (unsigned char)all[i].fmt;
        g->second[all[i].a] = all[i].b;
        g->pair[g->n][0] = all[i].a;
        g->pair[g->n][1] = all[i].b;
        g->n++;
    }
    g->vec = imt__cpu_features() != 0;
}

/* The first i in b[0..avail) where a signature's two bytes start, or where
 * its first byte is the window's last byte (the walk reads on); avail when
 * there is none. */
static size_t scan_sigs(const sigs *g, const uint8_t *b, size_t avail)
{
    size_t i = 0;
#if defined(__SSE2__)
    if (g->n && g->vec) {
        __m128i a[5], z[5];
        for (int k = 0; k < g->n; k++) {
            a[k] = _mm_set1_epi8((char)g->pair[k][0]);
            z[k] = _mm_set1_epi8((char)g->pair[k][1]);
        }
        for (; i + 17 <= avail; i += 16) {
            __m128i v0 = _mm_loadu_si128((const __m128i *)(b + i));
            __m128i v1 = _mm_loadu_si128((const __m128i *)(b + i + 1));
            __m128i m = _mm_and_si128(_mm_cmpeq_epi8(v0, a[0]), _mm_cmpeq_epi8(v1, z[0]));
            for (int k = 1; k < g->n; k++)
                m = _mm_or_si128(m, _mm_and_si128(_mm_cmpeq_epi8(v0, a[k]),
                                                  _mm_cmpeq_epi8(v1, z[k])));
            unsigned mask = (unsigned)_mm_movemask_epi8(m);
            if (mask) return i + (size_t)__builtin_ctz(mask);
        }
    }
#endif
    for (; i < avail; i++)
        if (g->first[b[i]] && (i + 1 == avail || b[i + 1] == g->second[b[i]])) return i;
    return avail;
}

imt_err imt__carve(const imt__io *range, const imt_carve_opts *opts, imt_carve_fn fn,
                   void *ctx, imt_carve_stats *stats)
{
    imt_carve_opts dflt;
    if (!opts) {
        imt_carve_opts_init(&dflt);
        opts = &dflt;
    }
    if (stats) memset(stats, 0, sizeof *stats);
    if (!range || !range->pread || !fn || !opts->max_length) return IMT_E_INVALID;
    carver c;
    memset(&c, 0, sizeof c);
    crc_init(c.crc);
    c.io = range;
    c.size = range->size;
    c.max_len = opts->max_length;
    c.rewind_left = c.size;
    c.chunk = opts->chunk_bytes ? opts->chunk_bytes : CARVE_DEFAULT_CHUNK;
    if (c.chunk < IMT__CARVE_MIN_CHUNK) c.chunk = IMT__CARVE_MIN_CHUNK;
    if (c.chunk > ((size_t)1 << 30)) c.chunk = (size_t)1 << 30;
    c.cap = c.chunk + IMT__CARVE_LOOKAHEAD + 64;
    if (c.cap > c.size + 64) c.cap = (size_t)c.size + 64; /* a small range: no more */
    c.buf = imt__malloc(c.cap);
    if (!c.buf) return IMT_E_NOMEM;

    sigs g;
    sigs_init(&g, opts->formats);

    imt_err err = IMT_OK;
    uint64_t p = 0;
    while (p < c.size) {
        if (opts->stop && *opts->stop) {
            err = IMT_E_INTERRUPTED;
            break;
        }
        size_t avail;
        const uint8_t *b = fetch(&c, p, 1, p, &avail);
        if (!b) break;
        size_t i = scan_sigs(&g, b, avail);
        c.st.examined += i;
        p += i;
        c.st.bytes_scanned = p;
        if (i == avail) continue;
        if (i + 1 == avail) {
            /* A first byte at the window's end: its second byte decides, as
             * it does inside the window (the work must not depend on where
             * the chunks end). */
            b = fetch(&c, p, 2, p, &avail);
            if (!b) break;
            i = 0;
            if (avail < 2 || b[1] != g.second[b[0]]) {
                c.st.examined++;
                p++;
                continue;
            }
        }
        imt_carve_hit h;
        memset(&h, 0, sizeof h);
        c.cand = p;
        c.limit = p + c.max_len < p ? UINT64_MAX : p + c.max_len;
        c.committed = 0;
        c.exam = 0;
        c.mark = p;
        c.st.candidates++;
        int r;
        switch (b[i]) {
        case 0xFF: r = walk_jpeg(&c, &h); break;
        case 0x89: r = walk_png(&c, &h); break;
        case 'G': r = walk_gif(&c, &h); break;
        case 'R': r = walk_webp(&c, &h); break;
        default: r = walk_bmp(&c, &h); break;
        }
        if (r == W_ERR) break;
        if (r == W_REJECT) {
            p++;
            continue;
        }
        c.st.hits++;
        p = h.offset + h.length;
        c.st.bytes_scanned = p;
        if (fn(ctx, &h)) {
            err = IMT_E_INTERRUPTED;
            break;
        }
    }
    if (err == IMT_OK && c.err) err = c.err;
    if (err == IMT_OK) c.st.bytes_scanned = c.size;
    if (stats) *stats = c.st;
    imt__free(c.buf);
    return err;
}

/* ---- slices ------------------------------------------------------------------- */
void imt__slice_init(imt__slice *s, const imt__io *range, uint64_t off, uint64_t len)
{
    s->range = range;
    s->off = off;
    s->len = len;
    s->pos = 0;
}

static imt_err slice_pread(void *ctx, uint64_t off, void *buf, size_t cap, size_t *got)
{
    imt__slice *s = ctx;
    *got = 0;
    if (off >= s->len) return IMT_OK;
    if (cap > s->len - off) cap = (size_t)(s->len - off);
    if (s->off + off >= s->range->size) return IMT_OK;
    return s->range->pread(s->range->ctx, s->off + off, buf, cap, got);
}

static imt_err slice_read(void *ctx, void *buf, size_t cap, size_t *got)
{
    imt__slice *s = ctx;
    imt_err e = slice_pread(s, s->pos, buf, cap, got);
    if (e == IMT_OK) s->pos += *got;
    return e;
}

void imt__carve_io(imt__slice *s, imt__io *out)
{
    out->pread = slice_pread;
    out->ctx = s;
    out->size = s->len;
}

void imt__carve_stream(imt__slice *s, imt_stream *out)
{
    s->pos = 0;
    out->read = slice_read;
    out->ctx = s;
    out->size = s->len;
}

/* ---- memory and descriptors --------------------------------------------------- */
static imt_err mem_pread(void *ctx, uint64_t off, void *buf, size_t cap, size_t *got)
{
    const imt__memio *m = ctx;
    *got = 0;
    if (off >= m->len) return IMT_OK;
    if (cap > m->len - off) cap = (size_t)(m->len - off);
    memcpy(buf, m->p + off, cap);
    *got = cap;
    return IMT_OK;
}

void imt__memio_init(imt__memio *m, const void *p, size_t len, imt__io *out)
{
    m->p = p;
    m->len = len;
    out->pread = mem_pread;
    out->ctx = m;
    out->size = len;
}

static imt_err fd_pread(void *ctx, uint64_t off, void *buf, size_t cap, size_t *got)
{
    int fd = *(const int *)ctx;
    *got = 0;
    for (;;) {
        ssize_t n = pread(fd, buf, cap, (off_t)off);
        if (n >= 0) {
            *got = (size_t)n;
            return IMT_OK;
        }
        if (errno != EINTR) return IMT_E_IO;
    }
}

imt_err imt_carve_fd(int fd, uint64_t size, const imt_carve_opts *opts, imt_carve_fn fn,
                     void *ctx, imt_carve_stats *stats)
{
    if (stats) memset(stats, 0, sizeof *stats);
    if (fd < 0 || !fn) return IMT_E_INVALID;
    if (!size) {
        struct stat st;
        if (fstat(fd, &st) != 0) return IMT_E_IO;
        size = (uint64_t)st.st_size;
    }
    imt__io io = {fd_pread, &fd, size};
    return imt__carve(&io, opts, fn, ctx, stats);
}
