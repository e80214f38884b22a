/* engine/decode/tiff.c -- TIFF -> luma plane through libtiff 4.
 *
 * The reference hasher reads a TIFF with `convert FILE pnm:-` (ImageMagick
 * 6.9.11 Q16) and CImg reads the first PNM of the output: the first
 * directory (page) is the file's picture. ImageMagick reads the raw samples
 * (strips or tiles) and its PNM writer then gives, per pixel (checked with
 * the reference hasher on tests/data/formats):
 *  - 8-bit grey, RGB, palette: the 8-bit values (palette entries are
 *    16-bit, scaled to 8 bits as ScaleQuantumToChar; a palette whose
 *    entries are all under 256 is an old-style 8-bit one, as IM reads it);
 *    extra samples (alpha) are dropped, not composited; premultiplied
 *    (associated) alpha is divided out first, as IM does;
 *  - min-is-white: inverted; min-is-black with 3 or more samples: IM reads
 *    samples 0..2 as RGB and writes a PGM of their Rec. 709 luma; CMYK (separated, 4+ samples): ImageMagick's
 *    CMYK -> sRGB in Q16, as engine/decode/jpeg.c (without the inversion);
 *  - JPEG-compressed YCbCr: libjpeg's RGB (libtiff's JPEGCOLORMODE_RGB);
 *  - the PNM is PGM (luma = the value) when every pixel has R == G == B,
 *    else PPM (0.299R+0.587G+0.114B in float); CMYK is always PPM;
 *  - 1, 2 and 4-bit samples: IM's image depth is the sample depth and its
 *    PNM has maxval 2^d-1, values the reference reads as they are (0..15
 *    for 4 bits), unless every pixel is black or white grey (PBM: 0/255);
 *  - 16-bit samples: IM's PNM has maxval 65535 and CImg keeps the low byte
 *    of each sample (noise). As for 16-bit PNG (png.c) we do not copy
 *    that: a sample v becomes v / 257, what `convert -depth 8` writes. The
 *    one colour model where compat differs from the reference.
 *  - a strip or tile libtiff cannot read ends IM's reading: the rows from
 *    that strip on stay black and the image is hashed (flagged partial
 *    here; a file whose first strip fails is IMT_E_CORRUPT);
 * Other photometric models (YCbCr without JPEG, CIELab, LogLuv), sample
 * formats other than unsigned integers and other bit depths are
 * IMT_E_UNSUPPORTED.
 *
 * Memory. libtiff needs random access and our input is a pull stream, so
 * the file is read into memory first, up to IMT_TIFF_FILE_CAP (a bigger
 * file is IMT_E_TOO_LARGE: a 16-bit uncompressed A4 scan at 600 dpi is
 * ~200 MB). Pixels are streamed: strips a row at a time (TIFFReadScanline),
 * planar-separate strips and tiles a band (one strip or tile row) at a
 * time, each band checked against IMT_TIFF_BAND_CAP from the header before
 * it is allocated; libtiff's own allocations are capped per call
 * (TIFFOpenOptionsSetMaxSingleMemAlloc). Plus the <= 512x512 output.
 * Fast mode gives the same plane.
 */
#include "decode.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <tiffio.h>

#define COMPAT_SIDE 512
#define IMT_TIFF_FILE_CAP ((uint64_t)256 << 20)
#define IMT_TIFF_BAND_CAP ((uint64_t)64 << 20)
#define IMT_TIFF_LIBTIFF_CAP ((tmsize_t)256 << 20)

struct imt_tiff_state {
    uint8_t *file;
    size_t file_cap;
    uint8_t *band;     /* samples of one band of rows, interleaved */
    uint8_t *plane_buf;/* one plane's strip/tile (separate planes) */
    uint8_t *rgb;      /* one row as RGB */
    uint8_t *px;       /* kept samples, 3 per pixel */
    float *plane;
    size_t band_cap, plane_buf_cap, rgb_cap, px_cap, plane_cap;
    int xmap[COMPAT_SIDE];
    uint8_t cmyk_lut[256 * 256];
    int cmyk_ready;
    size_t file_len;   /* the last file read (its further pages are read from
                          it until the next decode); 0: none */
};

typedef struct tctx {
    imt_tiff_state *st;
    const imt_decode_limits *lim;
    const uint8_t *data;
    uint64_t size, pos;
    char msg[200];
    /* image */
    uint32_t w, h;
    unsigned bps, spp, photo, planar;
    int kind;           /* K_GREY, K_RGB, K_PAL, K_CMYK */
    int miniswhite;
    int assoc;          /* premultiplied (associated) alpha right after the colour */
    int grey3;          /* min-is-black with 3+ samples: IM reads them as RGB */
    uint8_t pal[3 * 256];
    uint8_t pal_grey[256];   /* entry has R == G == B */
    int all_grey, all_mono;
    int out_cols, out_rows;
} tctx;

enum { K_GREY, K_RGB, K_PAL, K_CMYK };

/* ---- libtiff I/O over the buffered file ------------------------------------- */

static tmsize_t t_read(thandle_t h, void *buf, tmsize_t n)
{
    tctx *c = (tctx *)h;
    if (n < 0) return -1;
    uint64_t k = c->size - c->pos;
    if ((uint64_t)n < k) k = (uint64_t)n;
    memcpy(buf, c->data + c->pos, (size_t)k);
    c->pos += k;
    return (tmsize_t)k;
}

static tmsize_t t_write(thandle_t h, void *buf, tmsize_t n)
{
    (void)h;
    (void)buf;
    (void)n;
    return -1;
}

static toff_t t_seek(thandle_t h, toff_t off, int whence)
{
    tctx *c = (tctx *)h;
    uint64_t base = whence == SEEK_CUR ? c->pos : whence == SEEK_END ? c->size : 0;
    if (off > UINT64_MAX - base) return (toff_t)-1;
    c->pos = base + off;
    if (c->pos > c->size) c->pos = c->size; /* reads there return 0 bytes */
    return c->pos;
}

static int t_close(thandle_t h)
{
    (void)h;
    return 0;
}

static toff_t t_size(thandle_t h) { return ((tctx *)h)->size; }

static int t_map(thandle_t h, void **base, toff_t *size)
{
    tctx *c = (tctx *)h;
    *base = (void *)c->data;
    *size = c->size;
    return 1;
}

static void t_unmap(thandle_t h, void *base, toff_t size)
{
    (void)h;
    (void)base;
    (void)size;
}

static int t_error(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
    (void)tif;
    (void)module;
    tctx *c = user;
    if (c && !c->msg[0]) vsnprintf(c->msg, sizeof c->msg, fmt, ap);
    return 1;
}

static int t_warning(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
    (void)tif;
    (void)user;
    (void)module;
    (void)fmt;
    (void)ap;
    return 1;
}

/* ---- buffers ----------------------------------------------------------------- */

/* The whole file into st->file (libtiff seeks). */
static imt_err slurp(tctx *c, const imt_reader *r, char *detail, size_t cap)
{
    imt_tiff_state *st = c->st;
    size_t n = 0;
    imt_err e = imt__slurp(r, &st->file, &st->file_cap, IMT_TIFF_FILE_CAP, (size_t)1 << 20, &n);
    if (e == IMT_E_TOO_LARGE)
        imt__set_detail(detail, cap, "TIFF file over %llu MiB (libtiff needs it all in "
                        "memory)", (unsigned long long)(IMT_TIFF_FILE_CAP >> 20));
    else if (e != IMT_OK && e != IMT_E_NOMEM)
        imt__set_detail(detail, cap, "TIFF read failed: %s", imt_strerror(e));
    if (e != IMT_OK) return e;
    c->data = st->file;
    c->size = n;
    st->file_len = n;
    return IMT_OK;
}

/* ---- pixels ------------------------------------------------------------------- */

/* ImageMagick Q16 -> 8-bit PNM sample */
static uint8_t q_to_char(unsigned q)
{
    return (uint8_t)(((q + 128u) - ((q + 128u) >> 8)) >> 8);
}

static void build_cmyk_lut(uint8_t *lut)
{
    /* quantum 257*s for C, M, Y and K; red = QR - (QS*C*(QR-K) + K) */
    const double qr = 65535.0, qs = 1.0 / 65535.0;
    for (int s = 0; s < 256; s++) {
        for (int k = 0; k < 256; k++) {
            double cq = 257.0 * s, kq = 257.0 * k;
            double v = qr - (qs * cq * (qr - kq) + kq);
            unsigned q = v <= 0.0 ? 0u : v >= qr ? 65535u : (unsigned)(v + 0.5);
            lut[s * 256 + k] = q_to_char(q);
        }
    }
}

/* Sample i of an interleaved row at bps bits. */
static inline unsigned sample(const uint8_t *row, size_t i, unsigned bps)
{
    switch (bps) {
    case 8: return row[i];
    case 16: {
        uint16_t v;
        memcpy(&v, row + 2 * i, 2); /* libtiff gives native order */
        return v;
    }
    default: {
        size_t bit = i * bps;
        return (row[bit >> 3] >> (8 - bps - (bit & 7))) & ((1u << bps) - 1u);
    }
    }
}

/* 8-bit value of a colour sample (8 or 16 bits; low depths are handled
 * after the whole image is seen: see depth_low) */
static inline uint8_t to8(unsigned v, unsigned bps)
{
    return bps == 16 ? (uint8_t)(v / 257u) : (uint8_t)v;
}

/* ImageMagick disassociating a premultiplied sample (quantum-import.c):
 * alpha = QuantumScale * A, times PerceptibleReciprocal(alpha) (1/alpha,
 * or 1e12 under MagickEpsilon), ClampToQuantum. In and out in Q16. */
static unsigned unassoc(unsigned q, unsigned a)
{
    double alpha = (1.0 / 65535.0) * a;
    double r = alpha >= 1.0e-12 ? 1.0 / alpha : 1.0e12;
    double v = r * q;
    return v <= 0.0 ? 0u : v >= 65535.0 ? 65535u : (unsigned)(v + 0.5);
}

/* A colour sample with associated alpha -> 8 bits (16-bit: v / 257 of the
 * Q16 value, as elsewhere). */
static uint8_t assoc8(unsigned v, unsigned a, unsigned bps)
{
    unsigned q = bps == 16 ? v : 257u * v, qa = bps == 16 ? a : 257u * a;
    unsigned u = unassoc(q, qa);
    return bps == 16 ? (uint8_t)(u / 257u) : q_to_char(u);
}

/* One interleaved row -> RGB, tracking the PNM writer's grey/mono test. */
static void convert_row(tctx *c, const uint8_t *row, uint8_t *rgb)
{
    imt_tiff_state *st = c->st;
    unsigned bps = c->bps, spp = c->spp, maxv = (1u << (bps > 8 ? 16 : bps)) - 1u;
    unsigned diff = 0, mid = 0;
    for (uint32_t x = 0; x < c->w; x++) {
        size_t i = (size_t)x * spp;
        uint8_t *o = rgb + 3 * (size_t)x;
        switch (c->kind) {
        case K_GREY: {
            unsigned v = sample(row, i, bps);
            if (c->miniswhite) v = maxv - v;
            if (c->grey3) {
                /* IM reads samples 0..2 as RGB and writes the PGM value
                 * as Rec. 709 luma of the Q16 samples (GetPixelLuma) */
                double k = bps == 16 ? 1.0 : 257.0;
                double l = 0.212656 * (k * sample(row, i, bps)) +
                           0.715158 * (k * sample(row, i + 1, bps)) +
                           0.072186 * (k * sample(row, i + 2, bps));
                unsigned q = l <= 0.0 ? 0u : l >= 65535.0 ? 65535u : (unsigned)(l + 0.5);
                o[0] = o[1] = o[2] = bps == 16 ? (uint8_t)(q / 257u) : q_to_char(q);
                break;
            }
            if (c->assoc) {
                uint8_t g8 = assoc8(v, sample(row, i + 1, bps), bps);
                o[0] = o[1] = o[2] = g8;
                break;
            }
            /* low depths: v * 65535 / maxv is IM's quantum, kept here as
             * the exact 8-bit v * 255 / maxv (see finish_plane) */
            uint8_t g = bps >= 8 ? to8(v, bps) : (uint8_t)(v * (255u / maxv));
            o[0] = o[1] = o[2] = g;
            break;
        }
        case K_PAL: {
            unsigned k = sample(row, i, bps);
            memcpy(o, c->pal + 3 * (k & 255), 3);
            diff |= !c->pal_grey[k & 255];
            break;
        }
        case K_RGB:
            if (c->assoc) {
                unsigned al = sample(row, i + 3, bps);
                for (int ch = 0; ch < 3; ch++) o[ch] = assoc8(sample(row, i + ch, bps), al, bps);
                diff |= (unsigned)(o[0] ^ o[1]) | (unsigned)(o[1] ^ o[2]);
                break;
            }
            o[0] = to8(sample(row, i, bps), bps);
            o[1] = to8(sample(row, i + 1, bps), bps);
            o[2] = to8(sample(row, i + 2, bps), bps);
            diff |= (unsigned)(o[0] ^ o[1]) | (unsigned)(o[1] ^ o[2]);
            break;
        default: { /* CMYK */
            unsigned k = to8(sample(row, i + 3, bps), bps);
            const uint8_t *lut = st->cmyk_lut;
            o[0] = lut[to8(sample(row, i, bps), bps) * 256 + k];
            o[1] = lut[to8(sample(row, i + 1, bps), bps) * 256 + k];
            o[2] = lut[to8(sample(row, i + 2, bps), bps) * 256 + k];
            break;
        }
        }
        mid |= (unsigned)(o[0] != 0 && o[0] != 255);
    }
    if (diff) c->all_grey = 0;
    if (mid) c->all_mono = 0;
}

static void put_row(tctx *c, uint32_t y, const uint8_t *rgb)
{
    uint64_t R = (uint64_t)c->out_rows, H = c->h;
    uint64_t ilo = ((uint64_t)y * R + H - 1) / H, ihi = (((uint64_t)y + 1) * R + H - 1) / H;
    if (ilo >= ihi) return;
    size_t rowbytes = (size_t)c->out_cols * 3;
    uint8_t *dst = c->st->px + (size_t)ilo * rowbytes;
    for (int j = 0; j < c->out_cols; j++) memcpy(dst + 3 * j, rgb + 3 * (size_t)c->st->xmap[j], 3);
    for (uint64_t i = ilo + 1; i < ihi; i++) memcpy(c->st->px + (size_t)i * rowbytes, dst, rowbytes);
}

static void finish_plane(tctx *c)
{
    size_t n = (size_t)c->out_cols * (size_t)c->out_rows;
    uint8_t *p = c->st->px;
    float *o = c->st->plane;
    int grey = c->kind != K_CMYK && c->all_grey;
    if (c->bps < 8 && !(grey && c->all_mono)) {
        /* IM's image depth is the sample depth: its PNM has maxval 2^d-1
         * (ScaleQuantumToAny), values the reference reads as they are;
         * PBM (0/255) when every pixel is black or white grey */
        double maxv = (double)((1u << c->bps) - 1u);
        for (size_t k = 0; k < 3 * n; k++)
            p[k] = (uint8_t)(unsigned)(maxv * (257.0 * p[k]) / 65535.0); /* truncated, as IM */
    }
    if (grey) {
        for (size_t k = 0; k < n; k++) o[k] = (float)p[3 * k];
    } else {
        for (size_t k = 0; k < n; k++, p += 3)
            o[k] = imt__luma_r * p[0] + imt__luma_g * p[1] + imt__luma_b * p[2];
    }
}

/* ---- the decode ------------------------------------------------------------------ */

static int deadline_passed(const tctx *c)
{
    return c->lim->deadline_ms && imt__now_ms() > c->lim->deadline_ms;
}

#define LIBTIFF_FAIL(what)                                                                 \
    do {                                                                                   \
        imt__set_detail(detail, cap, "libtiff: %s%s%s", what, c->msg[0] ? ": " : "", c->msg); \
        err = IMT_E_CORRUPT;                                                               \
        goto cleanup;                                                                      \
    } while (0)

static imt_err decode(tctx *c, TIFF *tif, imt_luma *out, char *detail, size_t cap)
{
    imt_err err = IMT_OK;
    imt_tiff_state *st = c->st;
    uint32_t w = 0, h = 0;
    uint16_t bps = 1, spp = 1, photo = 0, planar = 1, fmt = 1, comp = 1, inkset = 1;
    if (!TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w) || !TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h))
        LIBTIFF_FAIL("no image size");
    out->width = w;
    out->height = h;
    IMT_TRY(imt__check_dims(w, h, c->lim, "TIFF", detail, cap));
    TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bps);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &spp);
    TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &planar);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &fmt);
    TIFFGetFieldDefaulted(tif, TIFFTAG_COMPRESSION, &comp);
    TIFFGetFieldDefaulted(tif, TIFFTAG_INKSET, &inkset);
    if (!TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photo))
        photo = spp >= 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK;
    c->w = w;
    c->h = h;
    c->bps = bps;
    c->spp = spp;
    c->planar = planar;
    if (fmt != SAMPLEFORMAT_UINT || spp == 0 || spp > 16 ||
        (bps != 1 && bps != 2 && bps != 4 && bps != 8 && bps != 16)) {
        imt__set_detail(detail, cap, "TIFF: %u-bit samples of format %u, %u per pixel, are "
                        "not decoded", (unsigned)bps, (unsigned)fmt, (unsigned)spp);
        return IMT_E_UNSUPPORTED;
    }
    switch (photo) {
    case PHOTOMETRIC_MINISBLACK:
    case PHOTOMETRIC_MINISWHITE:
        c->kind = K_GREY;
        c->miniswhite = photo == PHOTOMETRIC_MINISWHITE;
        break;
    case PHOTOMETRIC_RGB:
        c->kind = K_RGB;
        break;
    case PHOTOMETRIC_YCBCR:
        if (comp != COMPRESSION_JPEG) goto unsupported;
        /* libjpeg converts to RGB, as ImageMagick has libtiff do */
        if (!TIFFSetField(tif, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB)) goto unsupported;
        c->kind = K_RGB;
        break;
    case PHOTOMETRIC_PALETTE:
        c->kind = K_PAL;
        break;
    case PHOTOMETRIC_SEPARATED:
        if (inkset != INKSET_CMYK || spp < 4) goto unsupported;
        c->kind = K_CMYK;
        break;
    default:
        goto unsupported;
    }
    if ((c->kind == K_RGB && spp < 3) || ((c->kind == K_RGB || c->kind == K_CMYK) && bps < 8) ||
        (c->kind == K_PAL && bps > 8) || (planar == PLANARCONFIG_SEPARATE && bps < 8))
        goto unsupported;
    {
        /* ImageMagick: any associated extra sample makes the alpha (the
         * sample after the colour ones) associated, and divides it out */
        uint16_t nextra = 0, *einfo = NULL;
        if (TIFFGetField(tif, TIFFTAG_EXTRASAMPLES, &nextra, &einfo) && einfo)
            for (unsigned i = 0; i < nextra; i++)
                if (einfo[i] == EXTRASAMPLE_ASSOCALPHA) c->assoc = 1;
        unsigned ncolour = c->kind == K_RGB ? 3 : c->kind == K_CMYK ? 4 : 1;
        c->grey3 = c->kind == K_GREY && !c->miniswhite && spp >= 3 && bps >= 8 &&
                   planar != PLANARCONFIG_SEPARATE;
        if (c->grey3) c->assoc = 0; /* IM: RGBA quantum, alpha dropped */
        if (c->assoc && (c->kind == K_PAL || c->kind == K_CMYK || bps < 8 || spp <= ncolour))
            goto unsupported;
    }
    if (c->kind == K_CMYK && !st->cmyk_ready) {
        build_cmyk_lut(st->cmyk_lut);
        st->cmyk_ready = 1;
    }
    if (c->kind == K_PAL) {
        uint16_t *rm = NULL, *gm = NULL, *bm = NULL;
        if (!TIFFGetField(tif, TIFFTAG_COLORMAP, &rm, &gm, &bm) || !rm || !gm || !bm)
            LIBTIFF_FAIL("palette image without a colour map");
        unsigned n = 1u << bps;
        double range = 255.0;
        for (unsigned i = 0; i < n; i++)
            if (rm[i] >= 256 || gm[i] >= 256 || bm[i] >= 256) range = 65535.0;
        for (unsigned i = 0; i < n; i++) {
            const uint16_t *m[3] = {rm, gm, bm};
            for (int ch = 0; ch < 3; ch++) {
                double v = 65535.0 * m[ch][i] / range;
                unsigned q = v <= 0.0 ? 0u : v >= 65535.0 ? 65535u : (unsigned)(v + 0.5);
                c->pal[3 * i + ch] = q_to_char(q);
            }
            c->pal_grey[i] = c->pal[3 * i] == c->pal[3 * i + 1] && c->pal[3 * i + 1] == c->pal[3 * i + 2];
        }
    }

    /* geometry of one band of rows, checked before allocation */
    int tiled = TIFFIsTiled(tif);
    uint32_t tw = 0, th = 0, rps = 0;
    uint64_t row_samples = (uint64_t)w * spp;
    uint64_t row_bytes = (row_samples * bps + 7) / 8;
    uint64_t band_rows;
    if (tiled) {
        if (!TIFFGetField(tif, TIFFTAG_TILEWIDTH, &tw) || !TIFFGetField(tif, TIFFTAG_TILELENGTH, &th) ||
            tw == 0 || th == 0)
            LIBTIFF_FAIL("tiled image without a tile size");
        if (bps < 8) goto unsupported; /* tiles of packed bits: not generated */
        band_rows = th;
    } else {
        TIFFGetFieldDefaulted(tif, TIFFTAG_ROWSPERSTRIP, &rps);
        if (rps == 0 || rps > h) rps = h;
        band_rows = planar == PLANARCONFIG_SEPARATE ? rps : 1;
    }
    uint64_t band_bytes = band_rows * row_bytes;
    uint64_t piece = 0; /* one tile, or one plane's strip */
    if (tiled) {
        tmsize_t ts = TIFFTileSize(tif);
        if (ts <= 0) LIBTIFF_FAIL("bad tile size");
        piece = (uint64_t)ts;
        uint64_t across = ((uint64_t)w + tw - 1) / tw;
        band_bytes = ((uint64_t)across * tw) * spp * (bps / 8) * th;
    } else if (planar == PLANARCONFIG_SEPARATE) {
        tmsize_t ss = TIFFStripSize(tif);
        if (ss <= 0) LIBTIFF_FAIL("bad strip size");
        piece = (uint64_t)ss;
    }
    if (band_bytes > IMT_TIFF_BAND_CAP || piece > IMT_TIFF_BAND_CAP) {
        imt__set_detail(detail, cap, "TIFF: %s of %llu bytes, over the %llu MiB a band may take",
                        tiled ? "a row of tiles" : "a strip",
                        (unsigned long long)(band_bytes > piece ? band_bytes : piece),
                        (unsigned long long)(IMT_TIFF_BAND_CAP >> 20));
        return IMT_E_TOO_LARGE;
    }
    c->out_cols = imt__compat_side(w, w, h);
    c->out_rows = imt__compat_side(h, w, h);
    imt__nn_map((int)w, c->out_cols, st->xmap);
    size_t n = (size_t)c->out_cols * (size_t)c->out_rows;
    IMT_TRY(imt__grow((void **)&st->band, &st->band_cap, band_bytes ? band_bytes : row_bytes));
    IMT_TRY(imt__grow((void **)&st->rgb, &st->rgb_cap, (uint64_t)w * 3));
    IMT_TRY(imt__grow((void **)&st->px, &st->px_cap, (uint64_t)n * 3));
    IMT_TRY(imt__grow((void **)&st->plane, &st->plane_cap, (uint64_t)n * sizeof(float)));
    if (piece) IMT_TRY(imt__grow((void **)&st->plane_buf, &st->plane_buf_cap, piece));
    c->all_grey = c->all_mono = 1;
    size_t bpsb = bps / 8; /* bytes per sample, for bps >= 8 */

    uint32_t bad_from = 0, y0_failed = 0;
    for (uint32_t y0 = 0; y0 < h; y0 += (uint32_t)band_rows) {
        y0_failed = y0;
        if (deadline_passed(c)) {
            imt__set_detail(detail, cap, "TIFF decoding stopped at the time budget");
            return IMT_E_TIMEOUT;
        }
        uint32_t rows = (uint32_t)(h - y0 < band_rows ? h - y0 : band_rows);
        size_t stride = (size_t)row_bytes;
        if (tiled) {
            uint32_t across = (w + tw - 1) / tw;
            stride = (size_t)across * tw * spp * bpsb;
            unsigned planes = planar == PLANARCONFIG_SEPARATE ? spp : 1;
            for (uint32_t tx = 0; tx < across; tx++) {
                for (unsigned s = 0; s < planes; s++) {
                    if (TIFFReadTile(tif, st->plane_buf, tx * tw, y0, 0, (uint16_t)s) < 0)
                        goto bad_band;
                    unsigned ns = planes == 1 ? spp : 1;
                    for (uint32_t r = 0; r < rows; r++) {
                        const uint8_t *src = st->plane_buf + (size_t)r * tw * ns * bpsb;
                        uint8_t *dst = st->band + (size_t)r * stride + (size_t)tx * tw * spp * bpsb;
                        if (planes == 1) {
                            memcpy(dst, src, (size_t)tw * spp * bpsb);
                        } else {
                            for (uint32_t x = 0; x < tw; x++)
                                memcpy(dst + ((size_t)x * spp + s) * bpsb, src + (size_t)x * bpsb, bpsb);
                        }
                    }
                }
            }
        } else if (planar == PLANARCONFIG_SEPARATE) {
            uint32_t strip_in_plane = y0 / rps, strips_per_plane = (h + rps - 1) / rps;
            for (unsigned s = 0; s < spp; s++) {
                tmsize_t got = TIFFReadEncodedStrip(tif, s * strips_per_plane + strip_in_plane,
                                                    st->plane_buf, (tmsize_t)piece);
                if (got < (tmsize_t)((size_t)rows * w * bpsb)) goto bad_band;
                for (uint32_t r = 0; r < rows; r++)
                    for (uint32_t x = 0; x < w; x++)
                        memcpy(st->band + (size_t)r * stride + ((size_t)x * spp + s) * bpsb,
                               st->plane_buf + ((size_t)r * w + x) * bpsb, bpsb);
            }
        } else {
            if (TIFFReadScanline(tif, st->band, y0, 0) < 0) {
                /* IM reads whole strips: the failing strip is lost too */
                bad_from = (y0 / rps) * rps;
                goto bad_data;
            }
        }
        for (uint32_t r = 0; r < rows; r++) {
            convert_row(c, st->band + (size_t)r * stride, st->rgb);
            put_row(c, y0 + r, st->rgb);
        }
    }
    finish_plane(c);
    out->pix = st->plane;
    out->cols = c->out_cols;
    out->rows = c->out_rows;
cleanup:
    return err;
bad_band:
    bad_from = y0_failed;
bad_data:
    /* ImageMagick stops at a strip or tile it cannot read and keeps the
     * image: the rows from there on stay black (its fresh pixel cache),
     * and the reference hashes it. So do we, flagged partial. */
    if (bad_from == 0) LIBTIFF_FAIL("no pixel data readable");
    memset(st->rgb, 0, (size_t)w * 3);
    for (uint32_t y = bad_from; y < h; y++) put_row(c, y, st->rgb);
    out->partial = 1;
    imt__set_detail(detail, cap, "libtiff: %s; rows %u.. of %u read as black",
                    c->msg[0] ? c->msg : "data unreadable", (unsigned)bad_from, (unsigned)h);
    finish_plane(c);
    out->pix = st->plane;
    out->cols = c->out_cols;
    out->rows = c->out_rows;
    return IMT_OK;
unsupported:
    imt__set_detail(detail, cap, "TIFF: photometric %u with %u samples of %u bits (%s, "
                    "compression %u) is not decoded", (unsigned)photo, (unsigned)spp,
                    (unsigned)bps, planar == PLANARCONFIG_SEPARATE ? "planar" : "chunky",
                    (unsigned)comp);
    return IMT_E_UNSUPPORTED;
}

/* libtiff over the bytes in c, with our limits and message handlers; *opts
 * NULL: out of memory. */
static TIFF *open_tiff(tctx *c, TIFFOpenOptions **opts)
{
    *opts = TIFFOpenOptionsAlloc();
    if (!*opts) return NULL;
    TIFFOpenOptionsSetMaxSingleMemAlloc(*opts, IMT_TIFF_LIBTIFF_CAP);
    TIFFOpenOptionsSetErrorHandlerExtR(*opts, t_error, c);
    TIFFOpenOptionsSetWarningHandlerExtR(*opts, t_warning, c);
    /* the map procedure hands libtiff our buffer: strips are not copied */
    return TIFFClientOpenExt("input", "r", (thandle_t)c, t_read, t_write, t_seek, t_close,
                             t_size, t_map, t_unmap, *opts);
}

imt_err imt__tiff_decode(imt_tiff_state **stp, const imt_reader *r, imt_pdq_mode mode,
                         const imt_decode_limits *lim, imt_luma *out, char *detail, size_t cap)
{
    imt_err err = IMT_OK;
    TIFF *tif = NULL;
    TIFFOpenOptions *opts = NULL;
    if (!stp || !r || !lim || !out) return IMT_E_INVALID;
    (void)mode; /* both modes give the reference's plane: see the top */
    if (!*stp) {
        *stp = imt__calloc(1, sizeof **stp);
        if (!*stp) return IMT_E_NOMEM;
    }
    tctx *c = imt__calloc(1, sizeof *c);
    if (!c) return IMT_E_NOMEM;
    c->st = *stp;
    c->lim = lim;
    (*stp)->file_len = 0;
    out->pix = NULL;
    out->rows = out->cols = 0;
    out->partial = 0;
    IMT_TRY(slurp(c, r, detail, cap));
    tif = open_tiff(c, &opts);
    if (!opts) {
        err = IMT_E_NOMEM;
        goto cleanup;
    }
    if (!tif) {
        /* the first directory past the end of the file: cut short (writers
         * put it after the pixel data) */
        uint64_t ifd = 0;
        if (c->size >= 8 && c->data[0] == 'I' && c->data[2] == 42)
            ifd = (uint64_t)c->data[4] | (uint64_t)c->data[5] << 8 |
                  (uint64_t)c->data[6] << 16 | (uint64_t)c->data[7] << 24;
        else if (c->size >= 8 && c->data[0] == 'M' && c->data[3] == 42)
            ifd = (uint64_t)c->data[7] | (uint64_t)c->data[6] << 8 |
                  (uint64_t)c->data[5] << 16 | (uint64_t)c->data[4] << 24;
        int cut = c->size < 8 || ifd + 2 > c->size;
        if (cut)
            imt__set_detail(detail, cap, "TIFF: file ends (%llu bytes) before its first "
                            "directory (at %llu)", (unsigned long long)c->size,
                            (unsigned long long)ifd);
        else
            imt__set_detail(detail, cap, "libtiff: %s", c->msg[0] ? c->msg : "not a readable TIFF");
        err = cut ? IMT_E_TRUNCATED : IMT_E_CORRUPT;
        goto cleanup;
    }
    err = decode(c, tif, out, detail, cap);
cleanup:
    if (tif) TIFFClose(tif);
    if (opts) TIFFOpenOptionsFree(opts);
    imt__free(c);
    if (err != IMT_OK) {
        out->pix = NULL;
        out->rows = out->cols = 0;
    }
    return err;
}

/* ---- the further pages of the last file decoded ----------------------------
 * Every directory after the first is a page, decoded as the first is (the
 * reference reads page k as `convert FILE[k]`), from the bytes still in the
 * state; one fresh libtiff handle for them all. */
imt_err imt__tiff_pages(imt_tiff_state *st, const imt_decode_limits *lim, imt_page_fn fn,
                        void *ctx)
{
    if (!st || !st->file_len || !fn) return IMT_E_INVALID;
    tctx *c = imt__calloc(1, sizeof *c);
    if (!c) return IMT_E_NOMEM;
    c->st = st;
    c->lim = lim;
    c->data = st->file;
    c->size = st->file_len;
    TIFFOpenOptions *opts = NULL;
    TIFF *tif = open_tiff(c, &opts);
    imt_err err = tif ? IMT_OK : opts ? IMT_E_CORRUPT : IMT_E_NOMEM;
    /* one pass to count (libtiff checks the chain for loops), one to decode:
     * each page read after the one before, never a walk from the start */
    int n = tif ? (int)TIFFNumberOfDirectories(tif) : 0;
    for (int page = 1; tif && page < n; page++) {
        imt_luma out = {0};
        char detail[256] = "";
        imt_err e;
        c->msg[0] = '\0';
        if (!TIFFReadDirectory(tif)) {
            imt__set_detail(detail, sizeof detail, "libtiff: page %d cannot be read%s%s", page,
                            c->msg[0] ? ": " : "", c->msg);
            e = IMT_E_CORRUPT;
            if (!fn(ctx, page, n, e, &out, detail)) break;
            break; /* the chain ends here */
        }
        e = decode(c, tif, &out, detail, sizeof detail);
        if (e != IMT_OK) {
            out.pix = NULL;
            out.rows = out.cols = 0;
        }
        if (!fn(ctx, page, n, e, &out, detail)) break;
    }
    if (tif) TIFFClose(tif);
    if (opts) TIFFOpenOptionsFree(opts);
    imt__free(c);
    return err;
}

void imt__tiff_state_free(imt_tiff_state *st)
{
    if (!st) return;
    imt__free(st->file);
    imt__free(st->band);
    imt__free(st->plane_buf);
    imt__free(st->rgb);
    imt__free(st->px);
    imt__free(st->plane);
    imt__free(st);
}
