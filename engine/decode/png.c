/* engine/decode/png.c -- PNG -> luma plane, through libpng 1.6.
 *
 * Bytes come from the imt_reader pull stream; libpng errors come back by
 * longjmp to one setjmp in run(); libpng and zlib allocate through the
 * library's hooks. Rows are read raw (no libpng transforms, no libpng
 * deinterlacing): every colour model is unpacked here, and each Adam7 pass
 * row is placed at its true pixel positions, so memory stays O(width) for
 * every image, interlaced included.
 *
 * Compat mode reproduces what the reference hasher sees: ImageMagick 6.9.11
 * `convert FILE pnm:-` read back by CImg as uint8, verified pixel for pixel
 * on PngSuite and the vector PNGs:
 *  - alpha (and tRNS) is dropped, not composited; sBIT, iCCP, cHRM, bKGD
 *    change nothing;
 *  - 1/2/4-bit grey is scaled to 8 bits (x255, x85, x17); palettes expand
 *    to their 8-bit RGB entries;
 *  - the PNM is grey (PGM/PBM, luma = the value) when the PNG is grey or
 *    when every pixel of the image has R == G == B (ImageMagick tests every
 *    pixel), else PPM, luma = 0.299f*R + 0.587f*G + 0.114f*B in float;
 *  - a colour PNG whose gamma (gAMA, or 0.45455 for sRGB or none, as libpng
 *    reports it) is over 0.75 is read as linear RGB, and the PPM writer
 *    converts it to sRGB (per channel, in Q16: lin_to_srgb8 below). Not a
 *    PGM: an all-grey linear image keeps its stored values;
 *  - 16-bit samples: ImageMagick writes maxval 65535 and CImg keeps only the
 *    low byte of each sample, which is noise. We deliberately do not copy
 *    that: 16-bit samples become (v + 128) / 257, ImageMagick's own 16->8
 *    rounding (what `convert FILE -depth 8 pnm:-` writes). 16-bit PNGs are
 *    the one colour model where compat differs from the reference; none is
 *    among the reference vectors.
 * ImageMagick returns no image for a PNG whose data ends early (we found no
 * truncation point of any vector or PngSuite file where it does), so such a
 * file is IMT_E_TRUNCATED in both modes; likewise any libpng error, the
 * trailing chunks up to IEND included (png_read_end is called as it is).
 */
#include "decode.h"

#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <string.h>

#define COMPAT_SIDE 512
/* Fast mode: each side is area-reduced to at most this many pixels (smaller
 * sides pass through). See the measurements in the commit introducing it. */
#define FAST_SIDE 128
/* Ancillary chunks over this size are refused by libpng before any read
 * buffer is sized (we skip every ancillary chunk, so nothing big is ever
 * allocated for them; this only bounds what a file may claim). */
#define CHUNK_MALLOC_MAX (64u << 20)
#define CHUNK_CACHE_MAX 128u

struct imt_png_state {
    uint8_t *row;      /* one raw row (or Adam7 pass row) */
    uint8_t *smp;      /* its pixels as grey or RGB bytes */
    uint32_t *lum;     /* fast: its pixels as fixed-point luma */
    uint8_t *px;       /* compat: the output's samples, 1 or 3 per pixel */
    float *plane;      /* the output */
    uint32_t *lum2;    /* fast, linear-light sources: the untransformed luma */
    int xmap[COMPAT_SIDE];
    size_t row_cap, smp_cap, lum_cap, lum2_cap, px_cap, plane_cap; /* bytes */
    imt_area area, area2;
    uint8_t srgb[256]; /* linear -> sRGB, as ImageMagick converts (see below) */
    int srgb_ready;
};

/* Everything one decode touches after setjmp lives here, in memory, so a
 * longjmp loses nothing the cleanup needs. */
typedef struct pctx {
    imt_png_state *st;
    const imt_reader *r;
    const imt_decode_limits *lim;
    imt_pdq_mode mode;
    png_structp png;
    png_infop info;
    /* input */
    const uint8_t *chunk;
    size_t chunk_len, chunk_pos;
    uint64_t consumed;
    uint8_t head[24];   /* signature, IHDR length, type, width, height */
    imt_err read_err;   /* pull() failed */
    int eof;            /* the data ended early */
    int nomem;          /* an allocation for libpng or zlib failed */
    char msg[200];      /* libpng's error */
    char warn[200];     /* libpng's first warning */
    /* image */
    uint32_t w, h;
    int depth, ctype, interlaced;
    int grey_src;       /* colour type 0 or 4: one channel out */
    int all_grey;       /* colour sources: every pixel so far R==G==B */
    int linear;         /* colour source with gAMA > 0.75: ImageMagick treats it
                           as linear RGB and converts to sRGB when it writes PPM */
    uint8_t pal[256 * 3];
    uint8_t pal_grey[256];
    uint32_t pal_lum[256];
    /* output */
    int out_cols, out_rows;
    uint32_t rows_done; /* rows (pass rows included) read */
} pctx;

/* ---- libpng hooks -------------------------------------------------------- */

static png_voidp png_malloc_hook(png_structp png, png_alloc_size_t size)
{
    void *p = imt__malloc(size);
    if (!p) {
        pctx *c = png_get_mem_ptr(png);
        if (c) c->nomem = 1;
    }
    return p;
}

static void png_free_hook(png_structp png, png_voidp p)
{
    (void)png;
    imt__free(p);
}

static void png_error_hook(png_structp png, png_const_charp msg)
{
    pctx *c = png_get_error_ptr(png);
    if (c && !c->msg[0]) imt__set_detail(c->msg, sizeof c->msg, "%s", msg ? msg : "error");
    png_longjmp(png, 1);
}

static void png_warning_hook(png_structp png, png_const_charp msg)
{
    pctx *c = png_get_error_ptr(png);
    if (c && !c->warn[0]) imt__set_detail(c->warn, sizeof c->warn, "%s", msg ? msg : "warning");
}

/* libpng's read callback: copy from the pulled chunks; running out of data
 * (or a read error) is a libpng error, so it longjmps out. */
static void png_read_hook(png_structp png, png_bytep data, size_t len)
{
    pctx *c = png_get_io_ptr(png);
    while (len) {
        if (c->chunk_pos == c->chunk_len) {
            const uint8_t *d = NULL;
            size_t n = 0;
            imt_err e = c->r->pull(c->r->ctx, &d, &n);
            if (e != IMT_OK) {
                c->read_err = e;
                png_error(png, "read failed");
            }
            if (n == 0) {
                c->eof = 1;
                png_error(png, "unexpected end of file");
            }
            c->chunk = d;
            c->chunk_len = n;
            c->chunk_pos = 0;
        }
        size_t k = c->chunk_len - c->chunk_pos;
        if (k > len) k = len;
        const uint8_t *src = c->chunk + c->chunk_pos;
        if (c->consumed < sizeof c->head) {
            size_t h = sizeof c->head - (size_t)c->consumed;
            memcpy(c->head + c->consumed, src, h < k ? h : k);
        }
        memcpy(data, src, k);
        data += k;
        len -= k;
        c->chunk_pos += k;
        c->consumed += k;
    }
}

/* ---- buffers ------------------------------------------------------------- */

static imt_err grow(void **p, size_t *cap, size_t n, size_t sz)
{
    size_t bytes;
    if (!imt__mul_ok(n, sz, &bytes)) return IMT_E_NOMEM;
    if (bytes <= *cap && *p) return IMT_OK;
    void *q = imt__malloc(bytes);
    if (!q) return IMT_E_NOMEM;
    imt__free(*p);
    *p = q;
    *cap = bytes;
    return IMT_OK;
}

/* ---- unpacking ------------------------------------------------------------
 * One raw row of n pixels -> n grey bytes (grey sources) or 3n RGB bytes.
 * Samples of 16 bits become (v + 128) / 257 (see the file comment). */

static inline uint8_t s16(const uint8_t *p)
{
    return (uint8_t)(((unsigned)p[0] << 8 | p[1]) / 257u);
}

/* ImageMagick (Q16) converting a linear-RGB 8-bit sample to sRGB for a PPM:
 * q = v*257, EncodePixelGamma (the sRGB curve), ClampToQuantum (+0.5 and
 * truncate), ScaleQuantumToChar. ImageMagick evaluates x^(1/2.4) with a
 * Chebyshev polynomial; pow() gives the same 8-bit result for all 256
 * inputs (checked against convert on a 256-level ramp). */
static uint8_t lin_to_srgb8(unsigned v)
{
    double q = (double)v * 257.0, e;
    if (q <= 0.0031306684425005883 * 65535.0) e = 12.92 * q;
    else e = 65535.0 * (1.055 * pow(q / 65535.0, 1.0 / 2.4) - 0.055);
    unsigned Q = e <= 0.0 ? 0u : e >= 65535.0 ? 65535u : (unsigned)(e + 0.5);
    return (uint8_t)(((Q + 128u) - ((Q + 128u) >> 8)) >> 8);
}

static void unpack_grey(const pctx *c, const uint8_t *row, uint32_t n, uint8_t *g)
{
    int d = c->depth;
    if (d < 8) {
        /* 1, 2, 4 bits, most significant first; scale to 0..255 */
        unsigned scale = d == 1 ? 255u : d == 2 ? 85u : 17u, mask = (1u << d) - 1u;
        int per = 8 / d;
        for (uint32_t i = 0; i < n; i++) {
            unsigned byte = row[i / (uint32_t)per];
            int shift = 8 - d * (int)(i % (uint32_t)per + 1);
            g[i] = (uint8_t)(((byte >> shift) & mask) * scale);
        }
        return;
    }
    size_t step = (size_t)(c->ctype == PNG_COLOR_TYPE_GRAY_ALPHA ? 2 : 1) * (size_t)(d / 8);
    if (d == 8) {
        if (step == 1) memcpy(g, row, n);
        else
            for (uint32_t i = 0; i < n; i++) g[i] = row[(size_t)i * step];
    } else {
        for (uint32_t i = 0; i < n; i++) g[i] = s16(row + (size_t)i * step);
    }
}

/* Palette indices of n pixels at depth d into idx (may alias nothing). */
static void unpack_index(const uint8_t *row, uint32_t n, int d, uint8_t *idx)
{
    if (d == 8) {
        memcpy(idx, row, n);
        return;
    }
    unsigned mask = (1u << d) - 1u;
    int per = 8 / d;
    for (uint32_t i = 0; i < n; i++) {
        unsigned byte = row[i / (uint32_t)per];
        int shift = 8 - d * (int)(i % (uint32_t)per + 1);
        idx[i] = (uint8_t)((byte >> shift) & mask);
    }
}

/* Colour sources (RGB, RGBA, palette) -> RGB; in compat mode also clears
 * c->all_grey at the first pixel with R, G, B not all equal, judged on the
 * stored samples (16 bits included), as ImageMagick does. */
static void unpack_rgb(pctx *c, const uint8_t *row, uint32_t n, uint8_t *rgb, int check)
{
    if (c->ctype == PNG_COLOR_TYPE_PALETTE) {
        /* indices go to the tail third of rgb, then expand forwards: entry i
         * is read (at 2n + i) before rgb[3i..3i+2] can overwrite it. */
        uint8_t *idx = rgb + 2 * (size_t)n;
        unpack_index(row, n, c->depth, idx);
        int grey = 1;
        for (uint32_t i = 0; i < n; i++) {
            unsigned k = idx[i];
            grey &= c->pal_grey[k];
            const uint8_t *p = c->pal + 3 * k;
            rgb[3 * (size_t)i] = p[0];
            rgb[3 * (size_t)i + 1] = p[1];
            rgb[3 * (size_t)i + 2] = p[2];
        }
        if (check && !grey) c->all_grey = 0;
        return;
    }
    size_t bps = (size_t)(c->depth / 8);
    size_t step = (c->ctype == PNG_COLOR_TYPE_RGB_ALPHA ? 4 : 3) * bps;
    if (bps == 1) {
        unsigned diff = 0;
        for (uint32_t i = 0; i < n; i++) {
            const uint8_t *p = row + (size_t)i * step;
            uint8_t r = p[0], g = p[1], b = p[2];
            diff |= (unsigned)(r ^ g) | (unsigned)(g ^ b);
            rgb[3 * (size_t)i] = r;
            rgb[3 * (size_t)i + 1] = g;
            rgb[3 * (size_t)i + 2] = b;
        }
        if (check && diff) c->all_grey = 0;
    } else {
        unsigned diff = 0;
        for (uint32_t i = 0; i < n; i++) {
            const uint8_t *p = row + (size_t)i * step;
            diff |= (unsigned)(p[0] ^ p[2]) | (unsigned)(p[1] ^ p[3]) |
                    (unsigned)(p[2] ^ p[4]) | (unsigned)(p[3] ^ p[5]);
            rgb[3 * (size_t)i] = s16(p);
            rgb[3 * (size_t)i + 1] = s16(p + 2);
            rgb[3 * (size_t)i + 2] = s16(p + 4);
        }
        if (check && diff) c->all_grey = 0;
    }
}

/* Fast mode: one raw row -> fixed-point luma (IMT_AREA_ONE per unit). The
 * weights 19595, 38470, 7471 are 0.299, 0.587, 0.114 in 1/65536 and sum to
 * 65536, so white stays 255 exactly. */
#define LW_R 19595u
#define LW_G 38470u
#define LW_B 7471u

static void row_to_lum(pctx *c, const uint8_t *row, uint32_t n, uint32_t *lum)
{
    imt_png_state *st = c->st;
    if (c->linear) {
        /* Rare (gAMA 1.0): the sRGB-converted luma, and while every pixel is
         * still grey also the raw one, in case the image turns out grey
         * (then ImageMagick writes a PGM of the raw values). */
        uint8_t *rgb = st->smp;
        int was_grey = c->all_grey;
        unpack_rgb(c, row, n, rgb, 1);
        const uint8_t *t = st->srgb;
        for (uint32_t i = 0; i < n; i++) {
            const uint8_t *p = rgb + 3 * (size_t)i;
            lum[i] = LW_R * t[p[0]] + LW_G * t[p[1]] + LW_B * t[p[2]];
        }
        if (was_grey && c->all_grey)
            for (uint32_t i = 0; i < n; i++) st->lum2[i] = (uint32_t)rgb[3 * (size_t)i] << 16;
        return;
    }
    if (c->ctype == PNG_COLOR_TYPE_PALETTE) {
        uint8_t *idx = st->smp;
        unpack_index(row, n, c->depth, idx);
        for (uint32_t i = 0; i < n; i++) lum[i] = c->pal_lum[idx[i]];
        return;
    }
    if (c->grey_src) {
        uint8_t *g = st->smp;
        unpack_grey(c, row, n, g);
        for (uint32_t i = 0; i < n; i++) lum[i] = (uint32_t)g[i] << 16;
        return;
    }
    if (c->depth == 8) {
        /* the common case, without the RGB detour */
        size_t step = c->ctype == PNG_COLOR_TYPE_RGB_ALPHA ? 4 : 3;
        for (uint32_t i = 0; i < n; i++) {
            const uint8_t *p = row + (size_t)i * step;
            lum[i] = LW_R * p[0] + LW_G * p[1] + LW_B * p[2];
        }
        return;
    }
    uint8_t *rgb = st->smp;
    unpack_rgb(c, row, n, rgb, 0);
    for (uint32_t i = 0; i < n; i++)
        lum[i] = LW_R * rgb[3 * (size_t)i] + LW_G * rgb[3 * (size_t)i + 1] +
                 LW_B * rgb[3 * (size_t)i + 2];
}

/* ---- sinks: one (pass) row of n pixels at columns x0, x0+xs, ... of row y */

static void fast_row(pctx *c, uint32_t y, uint32_t x0, uint32_t xs, uint32_t n)
{
    imt_png_state *st = c->st;
    int was_grey = c->all_grey;
    row_to_lum(c, st->row, n, st->lum);
    imt__area_add_row(&st->area, y, x0, xs, st->lum, n);
    if (c->linear && was_grey && c->all_grey)
        imt__area_add_row(&st->area2, y, x0, xs, st->lum2, n);
}

static void compat_row(pctx *c, uint32_t y, uint32_t x0, uint32_t xs, uint32_t n)
{
    imt_png_state *st = c->st;
    /* output rows i with floor(i*h/out_rows) == y: [ceil(y*R/h), ceil((y+1)*R/h)) */
    uint64_t R = (uint64_t)c->out_rows, H = c->h;
    uint64_t ilo = ((uint64_t)y * R + H - 1) / H, ihi = ((uint64_t)y + 1) * R;
    ihi = (ihi + H - 1) / H;
    int need = ilo < ihi;
    int check = !c->grey_src && c->all_grey;
    if (!need && !check) return;
    int ch = c->grey_src ? 1 : 3;
    if (c->grey_src) unpack_grey(c, st->row, n, st->smp);
    else unpack_rgb(c, st->row, n, st->smp, check);
    if (!need) return;
    size_t oc = (size_t)c->out_cols, rowbytes = oc * (size_t)ch;
    uint8_t *dst = st->px + (size_t)ilo * rowbytes;
    for (size_t j = 0; j < oc; j++) {
        uint32_t sx = (uint32_t)st->xmap[j];
        if (sx < x0 || (sx - x0) % xs) continue;
        const uint8_t *s = st->smp + (size_t)((sx - x0) / xs) * (size_t)ch;
        memcpy(dst + j * (size_t)ch, s, (size_t)ch);
    }
    for (uint64_t i = ilo + 1; i < ihi; i++)
        memcpy(st->px + (size_t)i * rowbytes, dst, rowbytes);
}

/* Compat: the sampled pixels -> the reference's float luma. */
static void compat_finish(pctx *c)
{
    imt_png_state *st = c->st;
    size_t n = (size_t)c->out_cols * (size_t)c->out_rows;
    float *o = st->plane;
    if (c->grey_src) {
        for (size_t k = 0; k < n; k++) o[k] = (float)st->px[k];
    } else if (c->all_grey) {
        for (size_t k = 0; k < n; k++) o[k] = (float)st->px[3 * k];
    } else if (c->linear) {
        const uint8_t *t = st->srgb;
        for (size_t k = 0; k < n; k++) {
            const uint8_t *p = st->px + 3 * k;
            o[k] = imt__luma_r * t[p[0]] + imt__luma_g * t[p[1]] + imt__luma_b * t[p[2]];
        }
    } else {
        /* exactly fillFloatLumaFromRGB: float coefficient times the uint8
         * sample, summed left to right, no contraction (-ffp-contract=off) */
        for (size_t k = 0; k < n; k++) {
            const uint8_t *p = st->px + 3 * k;
            o[k] = imt__luma_r * p[0] + imt__luma_g * p[1] + imt__luma_b * p[2];
        }
    }
}

/* ---- the decode ------------------------------------------------------------ */

static int deadline_passed(const pctx *c)
{
    return c->lim->deadline_ms && imt__now_ms() > c->lim->deadline_ms;
}

/* Header, limits, buffers, then every row. Runs under run()'s setjmp:
 * libpng errors longjmp out of here; our own errors return. */
static imt_err decode_body(pctx *c, imt_luma *out, char *detail, size_t cap)
{
    imt_err err = IMT_OK;
    imt_png_state *st = c->st;
    png_structp png = c->png;
    png_infop info = c->info;

    png_read_info(png, info);
    png_uint_32 w, h;
    int depth, ctype, ilace;
    png_get_IHDR(png, info, &w, &h, &depth, &ctype, &ilace, NULL, NULL);
    c->w = w;
    c->h = h;
    out->width = w;
    out->height = h;
    IMT_TRY(imt__check_dims(w, h, c->lim, "PNG", detail, cap));
    c->depth = depth;
    c->ctype = ctype;
    c->interlaced = ilace != PNG_INTERLACE_NONE;
    c->grey_src = ctype == PNG_COLOR_TYPE_GRAY || ctype == PNG_COLOR_TYPE_GRAY_ALPHA;
    c->all_grey = 1;
    if (!c->grey_src) {
        /* ImageMagick's default when libpng reports no gamma: 1/2.2 */
        double gamma = 0.45455;
        if (png_get_gAMA(png, info, &gamma) != PNG_INFO_gAMA) gamma = 0.45455;
        c->linear = gamma > 0.75;
    }
    if (c->linear && !st->srgb_ready) {
        for (unsigned v = 0; v < 256; v++) st->srgb[v] = lin_to_srgb8(v);
        st->srgb_ready = 1;
    }

    if (ctype == PNG_COLOR_TYPE_PALETTE) {
        /* Entries past the palette stay black, as libpng's own expansion
         * leaves them (badpal files). */
        png_colorp pal = NULL;
        int npal = 0;
        memset(c->pal, 0, sizeof c->pal);
        if (png_get_PLTE(png, info, &pal, &npal) != PNG_INFO_PLTE) npal = 0;
        if (npal > 256) npal = 256;
        for (int i = 0; i < npal; i++) {
            c->pal[3 * i] = pal[i].red;
            c->pal[3 * i + 1] = pal[i].green;
            c->pal[3 * i + 2] = pal[i].blue;
        }
        for (int i = 0; i < 256; i++) {
            const uint8_t *p = c->pal + 3 * i;
            c->pal_grey[i] = p[0] == p[1] && p[1] == p[2];
            c->pal_lum[i] = LW_R * p[0] + LW_G * p[1] + LW_B * p[2];
        }
    }

    png_read_update_info(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if (rowbytes == 0) {
        imt__set_detail(detail, cap, "PNG row size overflows");
        err = IMT_E_TOO_LARGE;
        goto cleanup;
    }
    /* smp holds 3 bytes per pixel (RGB, or indices in fast mode) */
    IMT_TRY(grow((void **)&st->row, &st->row_cap, rowbytes, 1));
    IMT_TRY(grow((void **)&st->smp, &st->smp_cap, w, 3));

    if (c->mode == IMT_PDQ_COMPAT) {
        c->out_cols = imt__compat_side(w, w, h);
        c->out_rows = imt__compat_side(h, w, h);
        imt__nn_map((int)w, c->out_cols, st->xmap);
        size_t n = (size_t)c->out_cols * (size_t)c->out_rows;
        IMT_TRY(grow((void **)&st->px, &st->px_cap, n, c->grey_src ? 1 : 3));
        IMT_TRY(grow((void **)&st->plane, &st->plane_cap, n, sizeof(float)));
        /* rows never decoded stay black */
        memset(st->px, 0, n * (c->grey_src ? 1u : 3u));
    } else {
        c->out_cols = w > FAST_SIDE ? FAST_SIDE : (int)w;
        c->out_rows = h > FAST_SIDE ? FAST_SIDE : (int)h;
        IMT_TRY(grow((void **)&st->lum, &st->lum_cap, w, sizeof(uint32_t)));
        IMT_TRY(grow((void **)&st->plane, &st->plane_cap,
                     (size_t)c->out_cols * (size_t)c->out_rows, sizeof(float)));
        err = imt__area_begin(&st->area, w, h, c->out_cols, c->out_rows);
        if (!err && c->linear) {
            err = grow((void **)&st->lum2, &st->lum2_cap, w, sizeof(uint32_t));
            if (!err) err = imt__area_begin(&st->area2, w, h, c->out_cols, c->out_rows);
        }
        if (err == IMT_E_TOO_LARGE)
            imt__set_detail(detail, cap, "PNG of %ux%u pixels is too large to reduce",
                            (unsigned)w, (unsigned)h);
        if (err) goto cleanup;
    }

    int passes = c->interlaced ? PNG_INTERLACE_ADAM7_PASSES : 1;
    for (int pass = 0; pass < passes; pass++) {
        uint32_t cols = w, rows = h, x0 = 0, xs = 1, y0 = 0, ys = 1;
        if (c->interlaced) {
            cols = PNG_PASS_COLS(w, pass);
            rows = PNG_PASS_ROWS(h, pass);
            x0 = PNG_PASS_START_COL(pass);
            xs = PNG_PASS_COL_OFFSET(pass);
            y0 = PNG_PASS_START_ROW(pass);
            ys = PNG_PASS_ROW_OFFSET(pass);
        }
        if (cols == 0 || rows == 0) continue; /* libpng skips empty passes too */
        for (uint32_t r = 0; r < rows; r++) {
            if (deadline_passed(c)) {
                imt__set_detail(detail, cap, "PNG decoding stopped at the time budget");
                err = IMT_E_TIMEOUT;
                goto cleanup;
            }
            png_read_row(png, st->row, NULL);
            c->rows_done++;
            uint32_t y = y0 + r * ys;
            if (c->mode == IMT_PDQ_COMPAT) compat_row(c, y, x0, xs, cols);
            else fast_row(c, y, x0, xs, cols);
        }
    }
    /* The trailing chunks, IEND included: ImageMagick fails a PNG whose end
     * is missing or corrupt, so do we. Extra compressed data is skipped by
     * libpng after one small buffer ("Too much image data", a warning). */
    png_read_end(png, NULL);

    if (c->mode == IMT_PDQ_COMPAT) compat_finish(c);
    else imt__area_finish(c->linear && c->all_grey ? &st->area2 : &st->area, st->plane);
    out->pix = st->plane;
    out->cols = c->out_cols;
    out->rows = c->out_rows;
cleanup:
    return err;
}

/* The one setjmp: every libpng call after png_create_read_struct_2 runs
 * under it. Nothing local to this function changes after it; what the
 * handler reads lives in *c. */
static imt_err run(pctx *c, imt_luma *out, char *detail, size_t cap)
{
    if (setjmp(png_jmpbuf(c->png))) {
        if (c->read_err) {
            imt__set_detail(detail, cap, "PNG read failed: %s", imt_strerror(c->read_err));
            return c->read_err;
        }
        if (c->nomem) {
            imt__set_detail(detail, cap, "libpng: out of memory");
            return IMT_E_NOMEM;
        }
        if (c->eof) {
            if (c->consumed < sizeof c->head)
                imt__set_detail(detail, cap, "libpng: file ends after %u bytes, inside the header",
                                (unsigned)c->consumed);
            else if (c->rows_done == 0)
                imt__set_detail(detail, cap, "libpng: data ends before the first row "
                                "(%llu bytes)", (unsigned long long)c->consumed);
            else
                imt__set_detail(detail, cap, "libpng: data ends after %u of the image's rows "
                                "(%llu bytes)", (unsigned)c->rows_done,
                                (unsigned long long)c->consumed);
            return IMT_E_TRUNCATED;
        }
        /* libpng refuses a side over png_set_user_limits before we see it:
         * report it as the limit it is, from the IHDR bytes. */
        if (strstr(c->warn, "exceeds user limit") && c->consumed >= sizeof c->head &&
            memcmp(c->head + 12, "IHDR", 4) == 0) {
            const uint8_t *p = c->head + 16;
            uint64_t w = (uint64_t)p[0] << 24 | (uint64_t)p[1] << 16 | (uint64_t)p[2] << 8 | p[3];
            uint64_t h = (uint64_t)p[4] << 24 | (uint64_t)p[5] << 16 | (uint64_t)p[6] << 8 | p[7];
            imt_err e = imt__check_dims(w, h, c->lim, "PNG", detail, cap);
            if (e == IMT_E_TOO_LARGE) return e;
        }
        if (c->warn[0] && (strstr(c->msg, "Invalid IHDR") || strstr(c->msg, "IHDR")))
            imt__set_detail(detail, cap, "libpng: %s (%s)", c->msg, c->warn);
        else
            imt__set_detail(detail, cap, "libpng: %s", c->msg[0] ? c->msg : "error");
        return IMT_E_CORRUPT;
    }
    c->info = png_create_info_struct(c->png);
    if (!c->info) {
        imt__set_detail(detail, cap, "libpng: out of memory");
        return IMT_E_NOMEM;
    }
    png_set_read_fn(c->png, c, png_read_hook);
    uint32_t side = c->lim->max_dimension && c->lim->max_dimension < PNG_UINT_31_MAX
                        ? c->lim->max_dimension : PNG_UINT_31_MAX;
    png_set_user_limits(c->png, side, side);
    png_set_chunk_cache_max(c->png, CHUNK_CACHE_MAX);
    png_set_chunk_malloc_max(c->png, CHUNK_MALLOC_MAX);
    png_set_benign_errors(c->png, 1);
    png_set_check_for_invalid_index(c->png, 0);
    /* Critical chunks keep libpng's checks (a bad CRC is an error). Of the
     * ancillary chunks only gAMA, sRGB, cHRM and iCCP are read, because they
     * decide the gamma libpng reports (see the file comment); like
     * ImageMagick, libpng is told not to recognise sRGB ICC profiles. The
     * rest are skipped unread, CRC included: none changes the pixels. APNG
     * frames are skipped too (ImageMagick 6 reads the default image). */
    png_set_crc_action(c->png, PNG_CRC_DEFAULT, PNG_CRC_QUIET_USE);
    png_set_option(c->png, PNG_SKIP_sRGB_CHECK_PROFILE, PNG_OPTION_ON);
    png_set_keep_unknown_chunks(c->png, PNG_HANDLE_CHUNK_NEVER, NULL, 0);
    static const png_byte skip[] =
        "bKGD\0eXIf\0hIST\0iTXt\0oFFs\0pCAL\0pHYs\0sBIT\0sCAL\0sPLT\0sTER\0"
        "tEXt\0tIME\0tRNS\0zTXt\0acTL\0fcTL\0fdAT\0";
    png_set_keep_unknown_chunks(c->png, PNG_HANDLE_CHUNK_NEVER, skip, (int)(sizeof skip / 5));
    return decode_body(c, out, detail, cap);
}

imt_err imt__png_decode(imt_png_state **stp, const imt_reader *r, imt_pdq_mode mode,
                        const imt_decode_limits *lim, imt_luma *out,
                        char *detail, size_t cap)
{
    imt_err err = IMT_OK;
    pctx *c = NULL;
    if (!stp || !r || !lim || !out) return IMT_E_INVALID;
    if (!*stp) {
        *stp = imt__calloc(1, sizeof **stp);
        if (!*stp) return IMT_E_NOMEM;
    }
    /* pctx is big (palette tables): on the heap, not the stack of a scanner
     * thread; it also keeps it out of setjmp's way. */
    c = imt__calloc(1, sizeof *c);
    if (!c) return IMT_E_NOMEM;
    c->st = *stp;
    c->r = r;
    c->lim = lim;
    c->mode = mode;
    out->pix = NULL;
    out->rows = out->cols = 0;
    out->partial = 0;

    c->png = png_create_read_struct_2(PNG_LIBPNG_VER_STRING, c, png_error_hook,
                                      png_warning_hook, c, png_malloc_hook, png_free_hook);
    if (!c->png) {
        imt__set_detail(detail, cap, "libpng: out of memory");
        err = IMT_E_NOMEM;
        goto cleanup;
    }
    err = run(c, out, detail, cap);

cleanup:
    if (c) {
        if (c->png) png_destroy_read_struct(&c->png, c->info ? &c->info : NULL, NULL);
        imt__free(c);
    }
    if (err != IMT_OK) {
        out->pix = NULL;
        out->rows = out->cols = 0;
    }
    return err;
}

void imt__png_state_free(imt_png_state *st)
{
    if (!st) return;
    imt__free(st->row);
    imt__free(st->smp);
    imt__free(st->lum);
    imt__free(st->px);
    imt__free(st->plane);
    imt__free(st->lum2);
    imt__area_free(&st->area);
    imt__area_free(&st->area2);
    imt__free(st);
}
