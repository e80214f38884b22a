/* engine/decode/heif.c -- HEIF/HEIC and AVIF -> luma plane, through libheif.
 *
 * libheif reads a whole file from memory (ISO-BMFF boxes point anywhere in
 * the file), so the reader's bytes are gathered into one buffer, at most
 * IMT_HEIF_MAX_FILE bytes. A fresh heif_context per file: nothing of one
 * file's parse outlives it.
 *
 * Limits before any pixel buffer: libheif's own per-context limit
 * (heif_context_set_maximum_image_size_limit, which it applies to every
 * 'ispe' and to a grid's declared output size while parsing, before tiles
 * are decoded), then the primary image's size (after its transforms) and
 * its 'ispe' size against --max-dimension / --max-pixels and
 * IMT_HEIF_MAX_PIXELS. libheif decodes the whole picture at once (a grid
 * is assembled into one full-size image), it cannot stream rows: memory is
 * about 3 bytes a pixel while it decodes, hence the extra pixel cap.
 * The deadline is checked before and after the decode (libheif 1.15 has no
 * way to stop a decode once started).
 *
 * Compat mode reproduces ImageMagick 6.9.11-60 (coders/heic.c, which reads
 * HEIC and AVIF alike): the primary image, decoded with libheif's default
 * transforms (irot/imir/clap applied, as the reference: it never sets
 * heic:preserve-orientation), convert_hdr_to_8bit, as YCbCr 4:2:0 planes;
 * auxiliary images (alpha, depth, gain maps) and thumbnails are not read.
 * ImageMagick stores pixel (x, y) as the quantums Y[y][x], Cb[y/2][x/2],
 * Cr[y/2][x/2] (nearest chroma, whatever nclx says: matrix and range are
 * ignored) in a YCbCr image, and its YCbCr -> sRGB transform (colorspace.c
 * ConvertYPbPrToRGB in double, ClampToQuantum) runs when the PNM is
 * written. The 8-bit PNM is grey (PGM, luma = the value) when every pixel
 * has R == G == B, as for JPEG.
 *
 * One deliberate difference, as png.c does for 16-bit PNG: for a 10/12-bit
 * image ImageMagick writes the PNM with maxval 1023/4095 and CImg keeps the
 * low byte of each sample, which is noise. We hash the 8-bit samples, what
 * `convert FILE -depth 8 pnm:-` writes.
 *
 * Damaged HEVC: libde265 can leave coding blocks of a picture undecoded,
 * their samples whatever the heap held, and libheif's own libde265 plugin
 * says nothing (the hash of such a file changed from run to run). HEVC
 * pictures are therefore decoded by our plugin (heif_hevc.c, chosen by
 * decoder_id), which first checks that every block was decoded and makes
 * such a picture `corrupt`. A grid whose tiles do not cover its canvas had
 * the same effect through libheif and is refused below.
 *
 * Fast mode gives the same plane as compat. libheif 1.15 has no scaled
 * decode (heif_decoding_options has no scale), the HEVC/AV1 decode is
 * nearly all of the time, and the embedded thumbnail is not used in its
 * place: it is a separately coded picture that may show something else
 * (an edit after capture), so a hash of it is not a hash of the image.
 */
#include "decode.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <libheif/heif.h>

/* The most bytes of one HEIF file gathered for libheif. */
#ifndef IMT_HEIF_MAX_FILE
#define IMT_HEIF_MAX_FILE ((uint64_t)256 << 20)
#endif
/* The most pixels libheif is asked to decode (48 MP iPhone HEIFs pass;
 * ~3 bytes a pixel of libheif/decoder memory: ~400 MB at the cap). */
#ifndef IMT_HEIF_MAX_PIXELS
#define IMT_HEIF_MAX_PIXELS ((uint64_t)1 << 27)
#endif

struct imt_heif_state {
    uint8_t *file;          /* the file's bytes */
    size_t file_cap;
    uint8_t *keep;          /* compat: the kept pixels, 3 bytes each */
    size_t keep_cap;
    float *pix;
    size_t pix_cap;
    int xmap[512], ymap[512];
    int inited;             /* heif_init succeeded */
    size_t file_len;        /* the last file read (its thumbnails are read
                               from it until the next decode); 0: none */
};

/* heif_init, then our HEVC decoder (heif_hevc.c) registered: libheif keeps
 * its plugins in a process-wide set (re-registering is a no-op, and the last
 * heif_deinit clears it), so both run under one lock. */
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;

void imt__heif_state_free(imt_heif_state *st)
{
    if (!st) return;
    if (st->inited) {
        pthread_mutex_lock(&init_lock);
        heif_deinit();
        pthread_mutex_unlock(&init_lock);
    }
    imt__free(st->file);
    imt__free(st->keep);
    imt__free(st->pix);
    imt__free(st);
}


static struct heif_error init_heif(void)
{
    pthread_mutex_lock(&init_lock);
    struct heif_error he = heif_init(NULL);
    if (he.code == heif_error_Ok) {
        he = heif_register_decoder_plugin(imt__heif_hevc_plugin());
        if (he.code != heif_error_Ok) heif_deinit();
    }
    pthread_mutex_unlock(&init_lock);
    return he;
}

/* Gather every byte of the reader; *n gets the count. */
static imt_err slurp(imt_heif_state *st, const imt_reader *r, size_t *n, char *detail,
                     size_t cap)
{
    imt_err e = imt__slurp(r, &st->file, &st->file_cap, IMT_HEIF_MAX_FILE, 64 * 1024, n);
    if (e == IMT_E_TOO_LARGE)
        imt__set_detail(detail, cap, "HEIF file over %llu bytes (the most read into memory)",
                        (unsigned long long)IMT_HEIF_MAX_FILE);
    else if (e == IMT_E_NOMEM)
        imt__set_detail(detail, cap, "out of memory reading a HEIF file");
    else if (e != IMT_OK)
        imt__set_detail(detail, cap, "read failed: %s", imt_strerror(e));
    return e;
}

/* ---- the primary item's grid header, read before libheif decodes -------
 * libheif 1.15 allocates a grid's output at the size its 'grid' data
 * declares, which the 'ispe' property need not agree with (a 640x480 'ispe'
 * over a 10000x10000 grid decoded to 10000x10000), and its public API does
 * not show the grid data. So the boxes that lead to it are read here:
 * meta -> pitm (the primary id), iinf (its type), iloc (where its data is:
 * the file, or idat). Every read is bounds-checked; anything malformed
 * returns 0 (not a grid we can read) and libheif then judges the file. */
typedef struct bmff {
    const uint8_t *p;
    size_t n;
} bmff;

static uint64_t be(const uint8_t *p, int k)
{
    uint64_t v = 0;
    for (int i = 0; i < k; i++) v = v << 8 | p[i];
    return v;
}

/* The box at off within [0, end): its type, payload start and end. */
static int next_box(const bmff *f, size_t off, size_t end, char type[5], size_t *pay,
                    size_t *bend)
{
    if (end > f->n || off > end || end - off < 8) return 0;
    uint64_t size = be(f->p + off, 4);
    size_t hdr = 8;
    memcpy(type, f->p + off + 4, 4);
    type[4] = '\0';
    if (size == 1) {
        if (end - off < 16) return 0;
        size = be(f->p + off + 8, 8);
        hdr = 16;
    } else if (size == 0) {
        size = end - off;
    }
    if (size < hdr || size > end - off) return 0;
    *pay = off + hdr;
    *bend = off + (size_t)size;
    return 1;
}

static int find_box(const bmff *f, size_t off, size_t end, const char *want, size_t *pay,
                    size_t *bend)
{
    char t[5];
    size_t p, e;
    while (next_box(f, off, end, t, &p, &e)) {
        if (!memcmp(t, want, 4)) {
            *pay = p;
            *bend = e;
            return 1;
        }
        off = e;
    }
    return 0;
}

#define NEED(k) do { if (q > end || end - q < (size_t)(k)) return 0; } while (0)

/* The 'ispe' size of item id (meta payload [mp, me)): ipma -> ipco.
 * 0 when not found. */
static int item_ispe(const bmff *f, size_t mp, size_t me, uint32_t id, uint64_t *w, uint64_t *h)
{
    size_t ip, ie, cp, ce, ap, ae, q, end;
    if (!find_box(f, mp, me, "iprp", &ip, &ie)) return 0;
    if (!find_box(f, ip, ie, "ipco", &cp, &ce) || !find_box(f, ip, ie, "ipma", &ap, &ae))
        return 0;
    if (ae - ap < 8) return 0;
    int v = f->p[ap], wide = f->p[ap + 3] & 1;
    uint32_t count = (uint32_t)be(f->p + ap + 4, 4);
    q = ap + 8;
    end = ae;
#define NEED2(k) do { if (q > end || end - q < (size_t)(k)) return 0; } while (0)
    for (uint32_t i = 0; i < count; i++) {
        NEED2(v < 1 ? 3 : 5);
        uint32_t iid = (uint32_t)be(f->p + q, v < 1 ? 2 : 4);
        q += v < 1 ? 2 : 4;
        unsigned na = f->p[q++];
        NEED2((size_t)na * (wide ? 2 : 1));
        for (unsigned a = 0; a < na; a++) {
            uint32_t idx = wide ? (uint32_t)(be(f->p + q, 2) & 0x7FFF) : (uint32_t)(f->p[q] & 0x7F);
            q += wide ? 2 : 1;
            if (iid != id || idx == 0) continue;
            /* the idx-th (1-based) property in ipco */
            size_t pp, pe, at = cp;
            char t[5];
            uint32_t k = 0;
            while (next_box(f, at, ce, t, &pp, &pe)) {
                if (++k == idx) {
                    if (!memcmp(t, "ispe", 4) && pe - pp >= 12) {
                        *w = be(f->p + pp + 4, 4);
                        *h = be(f->p + pp + 8, 4);
                        return 1;
                    }
                    break;
                }
                at = pe;
            }
        }
    }
#undef NEED2
    return 0;
}

/* The first item a 'dimg' reference of from points to; 0 when none. */
static uint32_t first_dimg(const bmff *f, size_t mp, size_t me, uint32_t from)
{
    size_t rp, re, p, e;
    char t[5];
    if (!find_box(f, mp, me, "iref", &rp, &re) || re - rp < 4) return 0;
    int v = f->p[rp];
    size_t idsz = v == 0 ? 2 : 4, at = rp + 4;
    while (next_box(f, at, re, t, &p, &e)) {
        at = e;
        if (memcmp(t, "dimg", 4) || e - p < idsz + 2 + idsz) continue;
        if ((uint32_t)be(f->p + p, (int)idsz) != from) continue;
        if (be(f->p + p + idsz, 2) == 0) return 0;
        return (uint32_t)be(f->p + p + idsz + 2, (int)idsz);
    }
    return 0;
}

/* 1 and the output size when the primary item is a grid or an overlay
 * ('iovl', whose canvas libheif allocates the same way) whose header is
 * readable; *ntiles: the grid's tiles (0 for an overlay). */
static int primary_grid_size(const bmff *f, uint64_t *w, uint64_t *h, uint32_t *ntiles,
                             uint64_t *cover_w, uint64_t *cover_h)
{
    size_t mp, me, p, e, q, end;
    if (!find_box(f, 0, f->n, "meta", &mp, &me) || me - mp < 4) return 0;
    mp += 4; /* full box */
    /* pitm */
    if (!find_box(f, mp, me, "pitm", &p, &e) || e - p < 6) return 0;
    uint32_t primary = f->p[p] == 0 ? (uint32_t)be(f->p + p + 4, 2)
                       : (e - p >= 8 ? (uint32_t)be(f->p + p + 4, 4) : 0);
    /* iinf: the primary's type */
    if (!find_box(f, mp, me, "iinf", &p, &e) || e - p < 6) return 0;
    q = p + 4 + (f->p[p] == 0 ? 2 : 4);
    end = e;
    int is_grid = 0, is_iovl = 0, found = 0;
    char t[5];
    size_t ip, ie;
    while (!found && next_box(f, q, end, t, &ip, &ie)) {
        q = ie;
        if (memcmp(t, "infe", 4) || ie - ip < 4) continue;
        int v = f->p[ip];
        size_t r = ip + 4;
        uint32_t id;
        if (v == 2 && ie - r >= 8) {
            id = (uint32_t)be(f->p + r, 2);
            r += 4;
        } else if (v == 3 && ie - r >= 10) {
            id = (uint32_t)be(f->p + r, 4);
            r += 6;
        } else {
            continue;
        }
        if (id == primary) {
            found = 1;
            is_grid = !memcmp(f->p + r, "grid", 4);
            is_iovl = !memcmp(f->p + r, "iovl", 4);
        }
    }
    if (!is_grid && !is_iovl) return 0;
    /* iloc: the primary's data */
    if (!find_box(f, mp, me, "iloc", &p, &e) || e - p < 8) return 0;
    int v = f->p[p];
    if (v > 2) return 0;
    q = p + 4;
    end = e;
    NEED(2);
    int osz = f->p[q] >> 4, lsz = f->p[q] & 15, bsz = f->p[q + 1] >> 4;
    int isz = v >= 1 ? (f->p[q + 1] & 15) : 0;
    if (osz > 8 || lsz > 8 || bsz > 8 || isz > 8) return 0;
    q += 2;
    uint32_t count;
    NEED(v < 2 ? 2 : 4);
    count = (uint32_t)be(f->p + q, v < 2 ? 2 : 4);
    q += v < 2 ? 2 : 4;
    for (uint32_t i = 0; i < count; i++) {
        NEED(v < 2 ? 2 : 4);
        uint32_t id = (uint32_t)be(f->p + q, v < 2 ? 2 : 4);
        q += v < 2 ? 2 : 4;
        int cm = 0;
        if (v >= 1) {
            NEED(2);
            cm = (int)(be(f->p + q, 2) & 15);
            q += 2;
        }
        NEED(2 + bsz + 2);
        uint64_t base = be(f->p + q + 2, bsz);
        q += 2 + (size_t)bsz;
        uint32_t ne = (uint32_t)be(f->p + q, 2);
        q += 2;
        uint64_t off0 = 0, len0 = 0;
        for (uint32_t k = 0; k < ne; k++) {
            NEED(isz + osz + lsz);
            uint64_t off = be(f->p + q + isz, osz), len = be(f->p + q + isz + osz, lsz);
            if (k == 0) {
                off0 = off;
                len0 = len;
            }
            q += (size_t)(isz + osz + lsz);
        }
        if (id != primary) continue;
        if (ne < 1) return 0;
        const uint8_t *src;
        uint64_t avail;
        if (cm == 0) {
            src = f->p;
            avail = f->n;
        } else if (cm == 1) {
            size_t dp, de;
            if (!find_box(f, mp, me, "idat", &dp, &de)) return 0;
            src = f->p + dp;
            avail = de - dp;
        } else {
            return 0;
        }
        uint64_t at = base + off0;
        if (at < base || at > avail || avail - at < 8 || (len0 && len0 < 8)) return 0;
        const uint8_t *g = src + at;
        if (g[0] != 0) return 0;
        int wide = g[1] & 1;
        /* grid: version, flags, rows-1, columns-1, width, height;
         * iovl: version, flags, four 16-bit fill values, width, height */
        size_t at_size = is_grid ? 4 : 10;
        if (avail - at < at_size + (wide ? 8 : 4)) return 0;
        *ntiles = is_grid ? ((uint32_t)g[2] + 1) * ((uint32_t)g[3] + 1) : 0;
        *w = be(g + at_size, wide ? 4 : 2);
        *h = be(g + at_size + (wide ? 4 : 2), wide ? 4 : 2);
        /* What the tiles cover: libheif sizes every tile as the first. */
        *cover_w = *cover_h = 0;
        uint64_t tw = 0, th = 0;
        uint32_t t0 = is_grid ? first_dimg(f, mp, me, primary) : 0;
        if (t0 && item_ispe(f, mp, me, t0, &tw, &th)) {
            *cover_w = tw * ((uint64_t)g[3] + 1);
            *cover_h = th * ((uint64_t)g[2] + 1);
        }
        return 1;
    }
    return 0;
}
#undef NEED

/* libheif's error as ours. */
static imt_err heif_err(struct heif_error he, const char *what, char *detail, size_t cap)
{
    imt_err e;
    if (he.subcode == heif_suberror_Security_limit_exceeded) he.code = heif_error_Ok;
    switch (he.code) {
    case heif_error_Ok: /* a limit */
        e = IMT_E_TOO_LARGE;
        break;
    case heif_error_Memory_allocation_error:
        e = IMT_E_NOMEM;
        break;
    case heif_error_Unsupported_filetype:
    case heif_error_Unsupported_feature:
    case heif_error_Plugin_loading_error:
        e = IMT_E_UNSUPPORTED;
        break;
    case heif_error_Invalid_input:
        e = he.subcode == heif_suberror_End_of_data ? IMT_E_TRUNCATED : IMT_E_CORRUPT;
        break;
    default:
        e = IMT_E_CORRUPT;
        break;
    }
    imt__set_detail(detail, cap, "libheif: %s: %s", what,
                    he.message ? he.message : "error");
    return e;
}

/* ImageMagick Q16: quantum of an 8-bit sample, X = QuantumScale*q, the
 * YPbPr -> RGB expression, ClampToQuantum, then ScaleQuantumToChar. */
static inline uint8_t im_clamp8(double v)
{
    unsigned q;
    if (!(v > 0.0)) q = 0;
    else if (v >= 65535.0) q = 65535;
    else q = (unsigned)(v + 0.5);
    return (uint8_t)(((q + 128u) - ((q + 128u) >> 8)) >> 8);
}

static inline void im_ycc_rgb(uint8_t y8, uint8_t cb8, uint8_t cr8, uint8_t rgb[3])
{
    const double qs = 1.0 / 65535.0;
    double Y = qs * (double)(257u * y8), Pb = qs * (double)(257u * cb8),
           Pr = qs * (double)(257u * cr8);
    rgb[0] = im_clamp8(65535.0 * (0.99999999999914679361 * Y - 1.2188941887145875e-06 * (Pb - 0.5) +
                                  1.4019995886561440468 * (Pr - 0.5)));
    rgb[1] = im_clamp8(65535.0 * (0.99999975910502514331 * Y - 0.34413567816504303521 * (Pb - 0.5) -
                                  0.71413649331646789076 * (Pr - 0.5)));
    rgb[2] = im_clamp8(65535.0 * (1.00000124040004623180 * Y + 1.77200006607230409200 * (Pb - 0.5) +
                                  2.1453384174593273e-06 * (Pr - 0.5)));
}

/* The plane from the decoded Y/Cb/Cr 4:2:0 planes (see the file comment). */
static imt_err make_plane(imt_heif_state *st, const struct heif_image *img, imt_luma *out,
                          char *detail, size_t cap)
{
    int sy = 0, scb = 0, scr = 0;
    const uint8_t *py = heif_image_get_plane_readonly(img, heif_channel_Y, &sy);
    const uint8_t *pcb = heif_image_get_plane_readonly(img, heif_channel_Cb, &scb);
    const uint8_t *pcr = heif_image_get_plane_readonly(img, heif_channel_Cr, &scr);
    int W = heif_image_get_width(img, heif_channel_Y);
    int H = heif_image_get_height(img, heif_channel_Y);
    int cw = heif_image_get_width(img, heif_channel_Cb);
    int ch = heif_image_get_height(img, heif_channel_Cb);
    int cw2 = heif_image_get_width(img, heif_channel_Cr);
    int ch2 = heif_image_get_height(img, heif_channel_Cr);
    if (!py || !pcb || !pcr || W <= 0 || H <= 0 || cw < (W + 1) / 2 || ch < (H + 1) / 2 ||
        cw2 < (W + 1) / 2 || ch2 < (H + 1) / 2 ||
        heif_image_get_bits_per_pixel_range(img, heif_channel_Y) != 8) {
        imt__set_detail(detail, cap, "libheif returned no 8-bit YCbCr 4:2:0 planes");
        return IMT_E_UNSUPPORTED;
    }
    out->width = (uint32_t)W;
    out->height = (uint32_t)H;
    int cols = imt__compat_side((uint32_t)W, (uint32_t)W, (uint32_t)H);
    int rows = imt__compat_side((uint32_t)H, (uint32_t)W, (uint32_t)H);
    size_t n = (size_t)rows * (size_t)cols;
    if (imt__grow((void **)&st->keep, &st->keep_cap, n * 3) != IMT_OK ||
        imt__grow((void **)&st->pix, &st->pix_cap, n * sizeof(float)) != IMT_OK) {
        imt__set_detail(detail, cap, "out of memory");
        return IMT_E_NOMEM;
    }
    imt__nn_map(W, cols, st->xmap);
    imt__nn_map(H, rows, st->ymap);

    /* Kept pixels first; then, unless one of them is already not grey, every
     * pixel until the first that is not. */
    int all_grey = 1;
    for (int r = 0; r < rows; r++) {
        int y = st->ymap[r];
        for (int c = 0; c < cols; c++) {
            int x = st->xmap[c];
            uint8_t *k = st->keep + 3 * ((size_t)r * (size_t)cols + (size_t)c);
            im_ycc_rgb(py[(size_t)y * (size_t)sy + (size_t)x],
                       pcb[(size_t)(y / 2) * (size_t)scb + (size_t)(x / 2)],
                       pcr[(size_t)(y / 2) * (size_t)scr + (size_t)(x / 2)], k);
            if (k[0] != k[1] || k[1] != k[2]) all_grey = 0;
        }
    }
    for (int y = 0; y < H && all_grey; y++) {
        const uint8_t *ry = py + (size_t)y * (size_t)sy;
        const uint8_t *rcb = pcb + (size_t)(y / 2) * (size_t)scb;
        const uint8_t *rcr = pcr + (size_t)(y / 2) * (size_t)scr;
        for (int x = 0; x < W; x++) {
            uint8_t k[3];
            im_ycc_rgb(ry[x], rcb[x / 2], rcr[x / 2], k);
            if (k[0] != k[1] || k[1] != k[2]) {
                all_grey = 0;
                break;
            }
        }
    }
    const uint8_t *k = st->keep;
    for (size_t i = 0; i < n; i++) {
        if (all_grey)
            st->pix[i] = (float)k[3 * i];
        else
            st->pix[i] = imt__luma_r * k[3 * i] + imt__luma_g * k[3 * i + 1] +
                         imt__luma_b * k[3 * i + 2];
    }
    out->pix = st->pix;
    out->rows = rows;
    out->cols = cols;
    return IMT_OK;
}

/* Decode the image of handle (the primary image, or a thumbnail, which the
 * sentences name) as ImageMagick asks libheif for it:
 * 8-bit YCbCr 4:2:0; then check what libheif returned and make the plane.
 * A deadline (0: none) is checked after the decode. */
static imt_err decode_handle(imt_heif_state *st, struct heif_image_handle *handle,
                             int thumbnail, uint64_t deadline_ms, imt_luma *out,
                             char *detail, size_t cap)
{
    imt_err err = IMT_OK;
    struct heif_image *img = NULL;
    struct heif_decoding_options *dopt = heif_decoding_options_alloc();
    if (!dopt) {
        imt__set_detail(detail, cap, "libheif: out of memory");
        return IMT_E_NOMEM;
    }
    dopt->convert_hdr_to_8bit = 1;
    dopt->decoder_id = IMT__HEIF_HEVC_ID; /* HEVC only; AV1 gets libheif's choice */
    struct heif_error he =
        heif_decode_image(handle, &img, heif_colorspace_YCbCr, heif_chroma_420, dopt);
    if (he.code != heif_error_Ok) {
        err = heif_err(he, thumbnail ? "decoding the thumbnail" : "decoding", detail, cap);
        goto cleanup;
    }
    if (deadline_ms && imt__now_ms() > deadline_ms) {
        imt__set_detail(detail, cap, "HEIF decoding over the time budget");
        err = IMT_E_TIMEOUT;
        goto cleanup;
    }
    int w = heif_image_get_width(img, heif_channel_Y);
    int h = heif_image_get_height(img, heif_channel_Y);
    if (w <= 0 || h <= 0 || (uint64_t)w * (uint64_t)h > IMT_HEIF_MAX_PIXELS) {
        imt__set_detail(detail, cap, "libheif returned a %dx%d %s", w, h,
                        thumbnail ? "thumbnail" : "image");
        err = IMT_E_CORRUPT;
        goto cleanup;
    }
    err = make_plane(st, img, out, detail, cap);
cleanup:
    if (img) heif_image_release(img);
    heif_decoding_options_free(dopt);
    return err;
}

imt_err imt__heif_decode(imt_heif_state **stp, const imt_reader *r, imt_pdq_mode mode,
                         const imt_decode_limits *lim, imt_luma *out, char *detail,
                         size_t cap)
{
    imt_err err = IMT_OK;
    struct heif_context *ctx = NULL;
    struct heif_image_handle *hd = NULL;
    struct heif_error he;
    size_t len = 0;
    (void)mode; /* both modes give the same plane: see the file comment */
    if (!stp || !r || !lim || !out) return IMT_E_INVALID;
    if (!*stp) {
        *stp = imt__calloc(1, sizeof **stp);
        if (!*stp) {
            imt__set_detail(detail, cap, "out of memory creating the HEIF decoder");
            return IMT_E_NOMEM;
        }
        he = init_heif();
        if (he.code != heif_error_Ok) {
            err = heif_err(he, "init", detail, cap);
            goto cleanup;
        }
        (*stp)->inited = 1;
    }
    imt_heif_state *st = *stp;
    st->file_len = 0;
    IMT_TRY(slurp(st, r, &len, detail, cap));
    st->file_len = len;
    if (len == 0) {
        imt__set_detail(detail, cap, "empty HEIF file");
        err = IMT_E_TRUNCATED;
        goto cleanup;
    }

    ctx = heif_context_alloc();
    if (!ctx) {
        imt__set_detail(detail, cap, "libheif: out of memory");
        err = IMT_E_NOMEM;
        goto cleanup;
    }
    {
        /* libheif's own limit is per side (it refuses a side at or over it
         * in every 'ispe' and grid while parsing and decoding), a second
         * line behind the pixel checks below: the largest side allowed. */
        uint64_t side = lim->max_dimension ? lim->max_dimension : 100000;
        if (side > 65535) side = 65535;
        heif_context_set_maximum_image_size_limit(ctx, (int)side + 1);
    }
    {
        /* A grid's (or overlay's) declared output size, before libheif
         * allocates it: a canvas over its limit made libheif 1.15 crash
         * (an unchecked allocation) rather than fail. */
        bmff f = {st->file, len};
        uint64_t gw = 0, gh = 0;
        uint64_t cw = 0, ch = 0;
        uint32_t nt = 0; /* tiles: libheif decodes them one by one */
        if (primary_grid_size(&f, &gw, &gh, &nt, &cw, &ch)) {
            out->width = gw > UINT32_MAX ? UINT32_MAX : (uint32_t)gw;
            out->height = gh > UINT32_MAX ? UINT32_MAX : (uint32_t)gh;
            IMT_TRY(imt__check_dims(gw, gh, lim, "HEIF grid", detail, cap));
            if (gw * gh > IMT_HEIF_MAX_PIXELS) {
                imt__set_detail(detail, cap,
                                "HEIF grid claims %llux%llu pixels, over the %llu pixels "
                                "decoded at once", (unsigned long long)gw,
                                (unsigned long long)gh, (unsigned long long)IMT_HEIF_MAX_PIXELS);
                err = IMT_E_TOO_LARGE;
                goto cleanup;
            }
            /* libheif 1.15 leaves the canvas outside the tiles as it was
             * allocated: uninitialised memory, and a hash that would depend
             * on what the process did before. */
            if (nt && cw && ch && (gw > cw || gh > ch)) {
                imt__set_detail(detail, cap,
                                "HEIF grid of %llux%llu pixels, but its tiles cover %llux%llu",
                                (unsigned long long)gw, (unsigned long long)gh,
                                (unsigned long long)cw, (unsigned long long)ch);
                err = IMT_E_CORRUPT;
                goto cleanup;
            }
        }
    }
    he = heif_context_read_from_memory_without_copy(ctx, st->file, len, NULL);
    if (he.code != heif_error_Ok) {
        err = heif_err(he, "reading the file", detail, cap);
        goto cleanup;
    }
    he = heif_context_get_primary_image_handle(ctx, &hd);
    if (he.code != heif_error_Ok) {
        err = heif_err(he, "primary image", detail, cap);
        goto cleanup;
    }
    {
        int w = heif_image_handle_get_width(hd), h = heif_image_handle_get_height(hd);
        int iw = heif_image_handle_get_ispe_width(hd), ih = heif_image_handle_get_ispe_height(hd);
        out->width = w > 0 ? (uint32_t)w : 0;
        out->height = h > 0 ? (uint32_t)h : 0;
        if (w <= 0 || h <= 0) {
            imt__set_detail(detail, cap, "HEIF primary image of %dx%d pixels", w, h);
            err = IMT_E_CORRUPT;
            goto cleanup;
        }
        IMT_TRY(imt__check_dims((uint64_t)w, (uint64_t)h, lim, "HEIF", detail, cap));
        if (iw > 0 && ih > 0)
            IMT_TRY(imt__check_dims((uint64_t)iw, (uint64_t)ih, lim, "HEIF (ispe)", detail, cap));
        uint64_t big = (uint64_t)(iw > w ? iw : w) * (uint64_t)(ih > h ? ih : h);
        if (big > IMT_HEIF_MAX_PIXELS) {
            imt__set_detail(detail, cap,
                            "HEIF claims %dx%d pixels, over the %llu pixels decoded at once",
                            w, h, (unsigned long long)IMT_HEIF_MAX_PIXELS);
            err = IMT_E_TOO_LARGE;
            goto cleanup;
        }
    }
    if (lim->deadline_ms && imt__now_ms() > lim->deadline_ms) {
        imt__set_detail(detail, cap, "HEIF decoding over the time budget");
        err = IMT_E_TIMEOUT;
        goto cleanup;
    }
    err = decode_handle(st, hd, 0, lim->deadline_ms, out, detail, cap);

cleanup:
    if (hd) heif_image_handle_release(hd);
    if (ctx) heif_context_free(ctx);
    if (err != IMT_OK) {
        out->pix = NULL;
        out->rows = out->cols = 0;
        out->partial = 0;
    }
    return err;
}

/* ---- thumbnails of the last file decoded ---------------------------------
 * The primary image's 'thmb' items: decoded as the primary is (same libheif
 * options, same colour conversion and resize), each hashed by the caller as
 * a sub-item. The file's bytes are still in the state; a fresh context. */

static imt_err thumb_open(imt_heif_state *st, struct heif_context **ctx,
                          struct heif_image_handle **hd, char *detail, size_t cap)
{
    *ctx = NULL;
    *hd = NULL;
    if (!st || !st->file_len) return IMT_E_INVALID;
    *ctx = heif_context_alloc();
    if (!*ctx) {
        imt__set_detail(detail, cap, "libheif: out of memory");
        return IMT_E_NOMEM;
    }
    heif_context_set_maximum_image_size_limit(*ctx, 65536);
    struct heif_error he = heif_context_read_from_memory_without_copy(*ctx, st->file,
                                                                      st->file_len, NULL);
    if (he.code == heif_error_Ok) he = heif_context_get_primary_image_handle(*ctx, hd);
    if (he.code != heif_error_Ok) return heif_err(he, "reading the file", detail, cap);
    return IMT_OK;
}

int imt__heif_thumbnail_count(imt_heif_state *st)
{
    struct heif_context *ctx;
    struct heif_image_handle *hd;
    char d[8];
    int n = 0;
    if (thumb_open(st, &ctx, &hd, d, sizeof d) == IMT_OK)
        n = heif_image_handle_get_number_of_thumbnails(hd);
    if (hd) heif_image_handle_release(hd);
    if (ctx) heif_context_free(ctx);
    return n > 0 ? n : 0;
}

imt_err imt__heif_thumbnail_luma(imt_heif_state *st, int index, const imt_decode_limits *lim,
                                 imt_luma *out, char *detail, size_t cap)
{
    imt_err err = IMT_OK;
    struct heif_context *ctx = NULL;
    struct heif_image_handle *hd = NULL, *th = NULL;
    struct heif_error he;
    out->pix = NULL;
    out->rows = out->cols = 0;
    out->width = out->height = 0;
    out->partial = 0;
    IMT_TRY(thumb_open(st, &ctx, &hd, detail, cap));
    heif_item_id ids[16];
    int n = heif_image_handle_get_list_of_thumbnail_IDs(hd, ids, 16);
    if (index < 0 || index >= n) {
        imt__set_detail(detail, cap, "no thumbnail %d", index);
        err = IMT_E_INVALID;
        goto cleanup;
    }
    he = heif_image_handle_get_thumbnail(hd, ids[index], &th);
    if (he.code != heif_error_Ok) {
        err = heif_err(he, "thumbnail", detail, cap);
        goto cleanup;
    }
    {
        int w = heif_image_handle_get_width(th), h = heif_image_handle_get_height(th);
        out->width = w > 0 ? (uint32_t)w : 0;
        out->height = h > 0 ? (uint32_t)h : 0;
        if (w <= 0 || h <= 0) {
            imt__set_detail(detail, cap, "HEIF thumbnail of %dx%d pixels", w, h);
            err = IMT_E_CORRUPT;
            goto cleanup;
        }
        IMT_TRY(imt__check_dims((uint64_t)w, (uint64_t)h, lim, "HEIF thumbnail", detail, cap));
        if ((uint64_t)w * (uint64_t)h > IMT_HEIF_MAX_PIXELS) {
            imt__set_detail(detail, cap, "HEIF thumbnail of %dx%d pixels", w, h);
            err = IMT_E_TOO_LARGE;
            goto cleanup;
        }
    }
    err = decode_handle(st, th, 1, 0, out, detail, cap);
cleanup:
    if (th) heif_image_handle_release(th);
    if (hd) heif_image_handle_release(hd);
    if (ctx) heif_context_free(ctx);
    if (err != IMT_OK) {
        out->pix = NULL;
        out->rows = out->cols = 0;
    }
    return err;
}
