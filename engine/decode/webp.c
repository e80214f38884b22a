/* engine/decode/webp.c -- WebP -> luma plane, through libwebp (and its demuxer
 * for animations).
 *
 * Compat mode reproduces what the reference hasher sees: CImg does not know
 * the .webp extension, so it runs ImageMagick 6.9.11 `convert FILE pnm:-` and
 * reads the first PNM of the stream as uint8. ImageMagick's WebP reader:
 *  - decodes with WebPDecode, RGBA, libwebp's defaults (fancy upsampling);
 *    the PNM keeps R, G, B and drops alpha (RGB under alpha 0 as decoded,
 *    not composited). We decode MODE_RGB: the same R, G, B values;
 *  - an animation's first frame is placed on a canvas of the animation's
 *    size at the frame's offset, every other canvas pixel (0,0,0), no
 *    blending or disposal (ImageMagick's ReadAnimatedWEBPImage, is_first);
 *  - the PNM is PGM when every pixel has R == G == B (luma = the value), else
 *    PPM and luma = 0.299f*R + 0.587f*G + 0.114f*B, as for PNG and JPEG;
 *  - then the nearest-neighbour resize to 512x512 when a side is over 512.
 * Verified against the reference over tests/data/formats/webp_gif (lossy,
 * lossless, alpha, animated, sharp-YUV, grey).
 *
 * Memory. libwebp decodes from one contiguous buffer, so the file is read
 * into memory: a still image whole (ImageMagick gives libwebp the whole
 * file, whatever the RIFF size says), up to 4 bytes a pixel plus 1 MiB; an
 * animation whole too (ImageMagick demuxes all of it), up to 4 bytes a
 * canvas pixel plus IMT_WEBP_ANIM_IN_CAP (64 MiB). Before
 * that, the size in the first chunk header (VP8X canvas, or the VP8 / VP8L
 * frame header) is checked against the limits, and the memory the decode
 * will take (the RGB output, plus what libwebp keeps for lossless and alpha
 * data: ~8 bytes a pixel) against IMT_WEBP_MEM_CAP; over it: too-large
 * before anything is allocated. The input itself may not exceed
 * IMT_WEBP_IN_SLACK + 4 bytes per canvas pixel (more than any encoder
 * writes for one frame) either.
 *
 * Fast mode: an image with a side over 512 is decoded through libwebp's
 * scaler straight to the compat plane's size (512x512, area-averaged rather
 * than nearest): lossy data is then decoded row by row, O(width) memory and
 * no full-size RGB buffer. Smaller images and animation frames give the
 * compat plane.
 *
 * Errors: data ending before the image does is truncated (ImageMagick gives
 * no image for such a file); any other libwebp refusal is corrupt, an
 * unsupported feature unsupported.
 */
#include "decode.h"

#include <string.h>
#include <webp/decode.h>
#include <webp/demux.h>

#define COMPAT_SIDE 512
/* Memory one WebP decode may take (output plus libwebp's own buffers). */
#ifndef IMT_WEBP_MEM_CAP
#define IMT_WEBP_MEM_CAP ((uint64_t)256 << 20)
#endif
/* Bytes of input allowed beyond 4 per canvas pixel (metadata chunks). */
#define IMT_WEBP_IN_SLACK ((uint64_t)1 << 20)
/* An animation is read whole (see below): bytes allowed beyond 4 per
 * canvas pixel. */
#ifndef IMT_WEBP_ANIM_IN_CAP
#define IMT_WEBP_ANIM_IN_CAP ((uint64_t)64 << 20)
#endif
/* Bytes pulled before the first image chunk must have been seen. */
#define IMT_WEBP_HEAD_MAX ((size_t)1 << 20)

struct imt_webp_state {
    uint8_t *in;     /* the file's bytes read so far */
    size_t in_cap;
    uint8_t *rgb;    /* decoded RGB (a frame, or the fast-mode plane's size) */
    size_t rgb_cap;
    float *plane;
    size_t plane_cap;
    int xmap[COMPAT_SIDE], ymap[COMPAT_SIDE];
};

typedef struct wctx {
    imt_webp_state *st;
    const imt_reader *r;
    size_t len;      /* bytes in st->in */
    int eof;
    imt_err read_err; /* pull() failed */
} wctx;

/* Keep contents: the input buffer. */
static imt_err grow_keep(wctx *c, size_t bytes)
{
    imt_webp_state *st = c->st;
    if (bytes <= st->in_cap) return IMT_OK;
    size_t n = st->in_cap ? st->in_cap : 64 * 1024;
    while (n < bytes) n = n > SIZE_MAX / 2 ? bytes : n * 2;
    uint8_t *q = imt__malloc(n);
    if (!q) return IMT_E_NOMEM;
    if (c->len) memcpy(q, st->in, c->len);
    imt__free(st->in);
    st->in = q;
    st->in_cap = n;
    return IMT_OK;
}

/* Pull until at least want bytes are buffered (or the data ends), never
 * buffering more than limit bytes (the rest of a chunk is dropped). */
static imt_err fill(wctx *c, size_t want, size_t limit)
{
    while (c->len < want && !c->eof && c->len < limit) {
        const uint8_t *d = NULL;
        size_t n = 0;
        imt_err e = c->r->pull(c->r->ctx, &d, &n);
        if (e != IMT_OK) {
            c->read_err = e;
            return e;
        }
        if (n == 0) {
            c->eof = 1;
            break;
        }
        if (n > limit - c->len) n = limit - c->len;
        e = grow_keep(c, c->len + n);
        if (e != IMT_OK) return e;
        memcpy(c->st->in + c->len, d, n);
        c->len += n;
    }
    return IMT_OK;
}

static imt_err r_pull(wctx *c, const uint8_t **d, size_t *n)
{
    imt_err e = c->r->pull(c->r->ctx, d, n);
    if (e != IMT_OK) c->read_err = e;
    else if (*n == 0) c->eof = 1;
    return e;
}

static uint32_t le24(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16; }
static uint32_t le32(const uint8_t *p) { return le24(p) | (uint32_t)p[3] << 24; }

static imt_err status_err(VP8StatusCode s)
{
    switch (s) {
    case VP8_STATUS_OK: return IMT_OK;
    case VP8_STATUS_OUT_OF_MEMORY: return IMT_E_NOMEM;
    case VP8_STATUS_NOT_ENOUGH_DATA: return IMT_E_TRUNCATED;
    case VP8_STATUS_UNSUPPORTED_FEATURE: return IMT_E_UNSUPPORTED;
    default: return IMT_E_CORRUPT;
    }
}

static const char *status_text(VP8StatusCode s)
{
    switch (s) {
    case VP8_STATUS_OUT_OF_MEMORY: return "out of memory";
    case VP8_STATUS_INVALID_PARAM: return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR: return "bitstream error";
    case VP8_STATUS_UNSUPPORTED_FEATURE: return "unsupported feature";
    case VP8_STATUS_SUSPENDED: return "suspended";
    case VP8_STATUS_USER_ABORT: return "aborted";
    case VP8_STATUS_NOT_ENOUGH_DATA: return "data ends early";
    default: return "error";
    }
}

/* Decode one VP8/VP8L bitstream (or a still file) data[len] of w x h into
 * st->rgb as RGB, scaled to ow x oh when those differ from w x h. */
static imt_err decode_rgb(imt_webp_state *st, const uint8_t *data, size_t len, int w, int h,
                          int ow, int oh, char *detail, size_t cap)
{
    imt_err err = IMT_OK;
    WebPDecoderConfig cfg;
    if (!WebPInitDecoderConfig(&cfg)) {
        imt__set_detail(detail, cap, "libwebp: version mismatch");
        return IMT_E_INTERNAL;
    }
    size_t stride = (size_t)ow * 3, bytes = stride * (size_t)oh;
    IMT_TRY(imt__grow((void **)&st->rgb, &st->rgb_cap, bytes));
    if (ow != w || oh != h) {
        cfg.options.use_scaling = 1;
        cfg.options.scaled_width = ow;
        cfg.options.scaled_height = oh;
    }
    cfg.output.colorspace = MODE_RGB;
    cfg.output.is_external_memory = 1;
    cfg.output.u.RGBA.rgba = st->rgb;
    cfg.output.u.RGBA.stride = (int)stride;
    cfg.output.u.RGBA.size = bytes;
    VP8StatusCode s = WebPDecode(data, len, &cfg);
    WebPFreeDecBuffer(&cfg.output);
    if (s != VP8_STATUS_OK) {
        err = status_err(s);
        imt__set_detail(detail, cap, "libwebp: %s", status_text(s));
    }
cleanup:
    return err;
}

/* The reference's plane from an RGB picture of fw x fh placed at (fx, fy) on
 * a W x H canvas of (0,0,0); out is ocols x orows by nearest neighbour. */
static void plane_from_rgb(imt_webp_state *st, const uint8_t *rgb, int fw, int fh, int fx,
                           int fy, int W, int H, int ocols, int orows)
{
    static const uint8_t black[3] = {0, 0, 0};
    imt__nn_map(W, ocols, st->xmap);
    imt__nn_map(H, orows, st->ymap);
    /* PGM or PPM: ImageMagick looks at every pixel of the canvas; the black
     * border is grey. */
    int grey = 1;
    size_t n = (size_t)fw * (size_t)fh;
    for (size_t k = 0; k < n && grey; k++) {
        const uint8_t *p = rgb + 3 * k;
        grey = p[0] == p[1] && p[1] == p[2];
    }
    float *o = st->plane;
    for (int i = 0; i < orows; i++) {
        int y = st->ymap[i] - fy;
        for (int j = 0; j < ocols; j++) {
            int x = st->xmap[j] - fx;
            const uint8_t *p = black;
            if (x >= 0 && x < fw && y >= 0 && y < fh)
                p = rgb + 3 * ((size_t)y * (size_t)fw + (size_t)x);
            o[(size_t)i * (size_t)ocols + (size_t)j] =
                grey ? (float)p[0]
                     : imt__luma_r * p[0] + imt__luma_g * p[1] + imt__luma_b * p[2];
        }
    }
}

static int deadline_passed(const imt_decode_limits *lim)
{
    return lim->deadline_ms && imt__now_ms() > lim->deadline_ms;
}

static imt_err decode_file(wctx *c, imt_pdq_mode mode, const imt_decode_limits *lim,
                           imt_luma *out, char *detail, size_t cap)
{
    imt_err err = IMT_OK;
    imt_webp_state *st = c->st;
    WebPDemuxer *dmx = NULL;
    WebPIterator it;
    int have_it = 0;

    /* RIFF header and the first chunk header: 12 + 8 + 10 bytes cover a
     * VP8X canvas, a VP8 frame header and a VP8L header. */
    IMT_TRY(fill(c, 30, IMT_WEBP_HEAD_MAX));
    if (c->len < 12 || memcmp(st->in, "RIFF", 4) || memcmp(st->in + 8, "WEBP", 4)) {
        imt__set_detail(detail, cap, "WebP: file ends after %zu bytes, inside the RIFF header",
                        c->len);
        err = IMT_E_TRUNCATED;
        goto cleanup;
    }
    uint64_t total = (uint64_t)le32(st->in + 4) + 8;
    WebPBitstreamFeatures f;
    VP8StatusCode s;
    uint32_t W = 0, H = 0;
    if (c->len >= 30 && !memcmp(st->in + 12, "VP8X", 4)) {
        W = 1 + le24(st->in + 24);
        H = 1 + le24(st->in + 27);
        out->width = W;
        out->height = H;
        IMT_TRY(imt__check_dims(W, H, lim, "WebP canvas", detail, cap));
    }
    /* The features (animation, alpha, lossless) need the first image chunk:
     * read on in small steps until libwebp has it. */
    for (;;) {
        s = WebPGetFeatures(st->in, c->len, &f);
        if (s != VP8_STATUS_NOT_ENOUGH_DATA || c->eof || c->len >= IMT_WEBP_HEAD_MAX) break;
        IMT_TRY(fill(c, c->len + 4096, IMT_WEBP_HEAD_MAX));
    }
    if (s != VP8_STATUS_OK) {
        err = status_err(s);
        if (s == VP8_STATUS_NOT_ENOUGH_DATA && !c->eof) {
            err = IMT_E_TOO_LARGE;
            imt__set_detail(detail, cap, "WebP: no image data in the first %zu bytes", c->len);
        } else if (s == VP8_STATUS_NOT_ENOUGH_DATA) {
            imt__set_detail(detail, cap, "WebP: file ends after %zu bytes, inside the "
                            "headers", c->len);
        } else {
            imt__set_detail(detail, cap, "libwebp: %s in the headers", status_text(s));
        }
        goto cleanup;
    }
    W = (uint32_t)f.width;
    H = (uint32_t)f.height;
    out->width = W;
    out->height = H;
    IMT_TRY(imt__check_dims(W, H, lim, "WebP", detail, cap));

    int ocols = imt__compat_side(W, W, H), orows = imt__compat_side(H, W, H);
    /* Scaled only where both sides shrink: compat stretches a side under 512
     * (of an image with the other over 512) by repeating pixels, which the
     * scaler would interpolate; a 1x1892 file then hashed 30 bits apart. */
    int scaled = mode == IMT_PDQ_FAST && !f.has_animation && W >= COMPAT_SIDE &&
                 H >= COMPAT_SIDE && (W > COMPAT_SIDE || H > COMPAT_SIDE);
    uint64_t px = (uint64_t)W * H;
    uint64_t need = scaled ? (uint64_t)ocols * (uint64_t)orows * 3 : px * 3;
    if (f.format == 2 /* lossless */) need += px * 5;
    else if (f.has_alpha) need += px * 2;
    if (f.has_animation) need += px * 5;
    if (need > IMT_WEBP_MEM_CAP) {
        imt__set_detail(detail, cap, "WebP %ux%u would need %llu bytes to decode, more than "
                        "the limit of %llu bytes", (unsigned)W, (unsigned)H,
                        (unsigned long long)need, (unsigned long long)IMT_WEBP_MEM_CAP);
        err = IMT_E_TOO_LARGE;
        goto cleanup;
    }
    uint64_t in_max = IMT_WEBP_IN_SLACK + px * 4;
    if (in_max > SIZE_MAX) in_max = SIZE_MAX;
    IMT_TRY(imt__grow((void **)&st->plane, &st->plane_cap,
                 (size_t)ocols * (size_t)orows * sizeof(float)));

    if (!f.has_animation) {
        if (total > in_max) {
            imt__set_detail(detail, cap, "WebP %ux%u claims %llu bytes of data, over the "
                            "limit of %llu", (unsigned)W, (unsigned)H,
                            (unsigned long long)total, (unsigned long long)in_max);
            err = IMT_E_TOO_LARGE;
            goto cleanup;
        }
        /* the whole file, as ImageMagick hands libwebp the whole blob
         * (libwebp then reads up to the RIFF size) */
        IMT_TRY(fill(c, (size_t)in_max, (size_t)in_max));
        if (!c->eof) {
            const uint8_t *d = NULL;
            size_t n = 0;
            IMT_TRY(r_pull(c, &d, &n));
            if (n) {
                imt__set_detail(detail, cap, "WebP %ux%u: the file is over %llu bytes, the "
                                "limit for its size", (unsigned)W, (unsigned)H,
                                (unsigned long long)in_max);
                err = IMT_E_TOO_LARGE;
                goto cleanup;
            }
        }
        if (deadline_passed(lim)) {
            imt__set_detail(detail, cap, "WebP decoding stopped at the time budget");
            err = IMT_E_TIMEOUT;
            goto cleanup;
        }
        if (scaled) {
            IMT_TRY(decode_rgb(st, st->in, c->len, (int)W, (int)H, ocols, orows, detail, cap));
            /* the scaler's output is the plane's grid itself */
            plane_from_rgb(st, st->rgb, ocols, orows, 0, 0, ocols, orows, ocols, orows);
        } else {
            IMT_TRY(decode_rgb(st, st->in, c->len, (int)W, (int)H, (int)W, (int)H, detail, cap));
            plane_from_rgb(st, st->rgb, (int)W, (int)H, 0, 0, (int)W, (int)H, ocols, orows);
        }
    } else {
        /* ImageMagick demuxes the whole file (WebPDemux, not partial: a file
         * that ends early or has a broken chunk anywhere gives no frame), so
         * the whole file is read, up to IMT_WEBP_ANIM_IN_CAP. */
        uint64_t cap_in = IMT_WEBP_ANIM_IN_CAP + px * 4;
        if (cap_in > SIZE_MAX) cap_in = SIZE_MAX;
        IMT_TRY(fill(c, (size_t)cap_in, (size_t)cap_in));
        if (!c->eof) {
            const uint8_t *d = NULL;
            size_t n = 0;
            IMT_TRY(r_pull(c, &d, &n));
            if (n) {
                imt__set_detail(detail, cap, "WebP animation over %llu bytes, the limit for "
                                "its canvas", (unsigned long long)cap_in);
                err = IMT_E_TOO_LARGE;
                goto cleanup;
            }
        }
        if (deadline_passed(lim)) {
            imt__set_detail(detail, cap, "WebP decoding stopped at the time budget");
            err = IMT_E_TIMEOUT;
            goto cleanup;
        }
        WebPData wd = {st->in, c->len};
        dmx = WebPDemux(&wd);
        if (!dmx) {
            if (c->len < total) {
                imt__set_detail(detail, cap, "WebP animation ends after %zu of its %llu bytes",
                                c->len, (unsigned long long)total);
                err = IMT_E_TRUNCATED;
            } else {
                imt__set_detail(detail, cap, "libwebp demux: invalid animation structure");
                err = IMT_E_CORRUPT;
            }
            goto cleanup;
        }
        have_it = WebPDemuxGetFrame(dmx, 1, &it);
        if (!have_it) {
            imt__set_detail(detail, cap, "WebP animation without a frame");
            err = IMT_E_CORRUPT;
            goto cleanup;
        }
        /* The demuxer checked the frame lies inside the canvas. */
        IMT_TRY(decode_rgb(st, it.fragment.bytes, it.fragment.size, it.width, it.height,
                           it.width, it.height, detail, cap));
        plane_from_rgb(st, st->rgb, it.width, it.height, it.x_offset, it.y_offset, (int)W,
                       (int)H, ocols, orows);
    }
    out->pix = st->plane;
    out->cols = ocols;
    out->rows = orows;
cleanup:
    if (have_it) WebPDemuxReleaseIterator(&it);
    WebPDemuxDelete(dmx);
    return err;
}

imt_err imt__webp_decode(imt_webp_state **stp, const imt_reader *r, imt_pdq_mode mode,
                         const imt_decode_limits *lim, imt_luma *out, char *detail,
                         size_t cap)
{
    if (!stp || !r || !lim || !out) return IMT_E_INVALID;
    if (!*stp) {
        *stp = imt__calloc(1, sizeof **stp);
        if (!*stp) {
            imt__set_detail(detail, cap, "out of memory creating the WebP decoder");
            return IMT_E_NOMEM;
        }
    }
    wctx c = {*stp, r, 0, 0, IMT_OK};
    imt_err err = decode_file(&c, mode, lim, out, detail, cap);
    if (c.read_err != IMT_OK && err == c.read_err)
        imt__set_detail(detail, cap, "WebP read failed: %s", imt_strerror(err));
    if (err == IMT_E_NOMEM && !(detail && detail[0]))
        imt__set_detail(detail, cap, "WebP: out of memory");
    if (err != IMT_OK) {
        out->pix = NULL;
        out->rows = out->cols = 0;
    }
    /* The input buffer can be large: do not keep it past the file. */
    if ((*stp)->in_cap > ((size_t)4 << 20)) {
        imt__free((*stp)->in);
        (*stp)->in = NULL;
        (*stp)->in_cap = 0;
    }
    if ((*stp)->rgb_cap > ((size_t)4 << 20)) {
        imt__free((*stp)->rgb);
        (*stp)->rgb = NULL;
        (*stp)->rgb_cap = 0;
    }
    return err;
}

void imt__webp_state_free(imt_webp_state *st)
{
    if (!st) return;
    imt__free(st->in);
    imt__free(st->rgb);
    imt__free(st->plane);
    imt__free(st);
}
