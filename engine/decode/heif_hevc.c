/* engine/decode/heif_hevc.c -- HEVC pictures for libheif: libde265, plus
 * the check that every coding block was decoded.
 *
 * libheif's built-in libde265 plugin (libheif 1.15, libde265 1.0.11) hands
 * out whatever picture libde265 returns. A damaged HEVC stream whose CABAC
 * data sends end_of_slice_segment_flag early (or whose WPP substream ends
 * wrongly) leaves the rest of the picture's coding tree blocks undecoded,
 * with no error and usually no warning; their samples are whatever the
 * heap held (libde265 decodes into an internal picture, allocated with
 * posix_memalign, when SAO is on: its allocation hooks are used only for
 * pictures without SAO). The hash of such a file then changed from run to
 * run (tests/regress/heif/libde265-undecoded-blocks.heic: MALLOC_PERTURB_=1
 * and =77 gave different hashes).
 *
 * This plugin (id IMT__HEIF_HEVC_ID, chosen through
 * heif_decoding_options.decoder_id for every HEVC picture heif.c asks for:
 * the primary image, grid tiles, thumbnails) decodes each picture twice:
 *   1. a probe: SAO and deblocking off, so libde265 decodes into pictures
 *      from our allocation hooks, which fill every plane with a canary (a
 *      fixed pseudo-random byte per position). Decoding writes every sample
 *      of every block it decodes and, with both loop filters off, nothing
 *      else; so an aligned 8x8 luma block still holding its 64 canary bytes
 *      was not decoded (a decoded block equal to it by chance: 2^-512). The
 *      smallest coding tree block is 16x16, so any undecoded one holds such
 *      blocks. Any picture with one is refused (a decoder error: heif.c
 *      reports `corrupt`).
 *   2. the picture itself, exactly as libheif's libde265 plugin decodes it
 *      (one worker thread, the last picture of the stream, the same plane
 *      copy and nclx), so compat stays bit-identical to the reference.
 * Both passes run libde265 with one worker thread, so the probe walks the
 * stream through the same slice and substream logic as the real decode.
 * The probe costs about one more HEVC decode (without the loop filters):
 * bench_hash's HEIF rows measure it.
 */
#include "decode.h"

#include <stdlib.h>
#include <string.h>

#include <libde265/de265.h>
#include <libheif/heif.h>
#include <libheif/heif_plugin.h>

typedef struct hevc_dec {
    uint8_t *nal;       /* the pushed length-prefixed NAL units */
    size_t len, cap;
} hevc_dec;

/* One probe picture's planes, the user data of each of its planes. */
typedef struct probe_pic {
    uint8_t *mem[3];
    size_t row_bytes[3], rows[3], stride[3];
} probe_pic;

static const struct heif_error ok_ = {heif_error_Ok, heif_suberror_Unspecified, "Success"};

static struct heif_error plugin_err(enum heif_error_code c, enum heif_suberror_code s,
                                    const char *msg)
{
    struct heif_error e = {c, s, msg};
    return e;
}

/* The canary byte at (row, byte column) of a plane: a fixed hash. */
static inline uint8_t canary(size_t row, size_t col, int c)
{
    uint32_t v = (uint32_t)row * 0x9E3779B1u ^ (uint32_t)col * 0x85EBCA77u ^ (uint32_t)c * 0xC2B2AE3Du;
    v ^= v >> 16;
    v *= 0x7FEB352Du;
    v ^= v >> 15;
    v *= 0x846CA68Bu;
    v ^= v >> 16;
    return (uint8_t)v;
}

static void probe_free(probe_pic *p)
{
    if (!p) return;
    for (int c = 0; c < 3; c++) free(p->mem[c]);
    free(p);
}

static int probe_get_buffer(de265_decoder_context *ctx, struct de265_image_spec *spec,
                            struct de265_image *img, void *userdata)
{
    (void)ctx;
    (void)userdata;
    int sw = 1, sh = 1, planes = 3;
    switch (spec->format) {
    case de265_image_format_mono8: planes = 1; break;
    case de265_image_format_YUV420P8: sw = sh = 2; break;
    case de265_image_format_YUV422P8: sw = 2; break;
    case de265_image_format_YUV444P8: break;
    default: return 0;
    }
    if (spec->width <= 0 || spec->height <= 0 || spec->alignment <= 0 ||
        spec->alignment > 4096)
        return 0;
    probe_pic *p = calloc(1, sizeof *p);
    if (!p) return 0;
    for (int c = 0; c < planes; c++) {
        int bpp = (de265_get_bits_per_pixel(img, c) + 7) / 8;
        size_t w = (size_t)spec->width / (size_t)(c ? sw : 1);
        size_t h = (size_t)spec->height / (size_t)(c ? sh : 1);
        size_t a = (size_t)spec->alignment;
        size_t stride_px = (w + a - 1) / a * a;
        if (bpp < 1 || bpp > 2 || stride_px > INT32_MAX / 2 || h > INT32_MAX) goto fail;
        p->stride[c] = stride_px * (size_t)bpp;
        p->row_bytes[c] = w * (size_t)bpp;
        p->rows[c] = h;
        if (h && p->stride[c] > (SIZE_MAX - 64) / h) goto fail;
        size_t n = p->stride[c] * h + 64; /* libde265 reads a little past the end */
        p->mem[c] = aligned_alloc(64, (n + 63) / 64 * 64);
        if (!p->mem[c]) goto fail;
        for (size_t y = 0; y < h; y++)
            for (size_t x = 0; x < p->stride[c]; x++)
                p->mem[c][y * p->stride[c] + x] = canary(y, x, c);
        memset(p->mem[c] + p->stride[c] * h, 0, 64);
    }
    for (int c = 0; c < 3; c++)
        de265_set_image_plane(img, c, p->mem[c], (int)p->stride[c], p);
    return 1;
fail:
    probe_free(p);
    return 0;
}

static void probe_release_buffer(de265_decoder_context *ctx, struct de265_image *img,
                                 void *userdata)
{
    (void)ctx;
    (void)userdata;
    probe_free(de265_get_image_plane_user_data(img, 0));
}

/* 1 when an aligned 8x8 block of the luma plane still holds the canary. */
static int probe_undecoded(const struct de265_image *img)
{
    const probe_pic *p = de265_get_image_plane_user_data(img, 0);
    if (!p || !p->mem[0]) return 1; /* not our picture: cannot vouch for it */
    int bpp = (de265_get_bits_per_pixel(img, 0) + 7) / 8;
    size_t bw = 8 * (size_t)bpp;
    for (size_t by = 0; by + 8 <= p->rows[0]; by += 8)
        for (size_t bx = 0; bx + bw <= p->row_bytes[0]; bx += bw) {
            int same = 1;
            for (size_t y = by; y < by + 8 && same; y++) {
                const uint8_t *row = p->mem[0] + y * p->stride[0];
                for (size_t x = bx; x < bx + bw; x++)
                    if (row[x] != canary(y, x, 0)) {
                        same = 0;
                        break;
                    }
            }
            if (same) return 1;
        }
    return 0;
}

static void push_all(de265_decoder_context *ctx, const hevc_dec *d)
{
    size_t at = 0;
    while (d->len - at >= 4) {
        const uint8_t *q = d->nal + at;
        uint32_t n = (uint32_t)q[0] << 24 | (uint32_t)q[1] << 16 | (uint32_t)q[2] << 8 | q[3];
        at += 4;
        if (n > d->len - at) break; /* push_data refused these already */
        de265_push_NAL(ctx, d->nal + at, (int)n, 0, NULL);
        at += n;
    }
}

/* Pass 1: 1 when some picture of the stream leaves a block undecoded. */
static int probe_stream(const hevc_dec *d, int *nomem)
{
    struct de265_image_allocation alloc = {probe_get_buffer, probe_release_buffer};
    de265_decoder_context *ctx = de265_new_decoder();
    int bad = 0, more;
    *nomem = 0;
    if (!ctx) {
        *nomem = 1;
        return 1;
    }
    de265_set_parameter_bool(ctx, DE265_DECODER_PARAM_DISABLE_SAO, 1);
    de265_set_parameter_bool(ctx, DE265_DECODER_PARAM_DISABLE_DEBLOCKING, 1);
    de265_set_image_allocation_functions(ctx, &alloc, NULL);
    de265_start_worker_threads(ctx, 1);
    push_all(ctx, d);
    de265_flush_data(ctx);
    do {
        more = 0;
        de265_error e = de265_decode(ctx, &more);
        if (e == DE265_ERROR_OUT_OF_MEMORY) *nomem = 1;
        if (e != DE265_OK) break;
        const struct de265_image *img = de265_get_next_picture(ctx);
        if (img) {
            if (probe_undecoded(img)) bad = 1;
            de265_release_next_picture(ctx);
        }
    } while (more);
    de265_free_decoder(ctx);
    return bad;
}

/* As libheif 1.15's convert_libde265_image_to_heif_image. */
static struct heif_error to_heif(const struct de265_image *src, struct heif_image **out)
{
    int mono = de265_get_chroma_format(src) == de265_chroma_mono;
    struct heif_error err = heif_image_create(
        de265_get_image_width(src, 0), de265_get_image_height(src, 0),
        mono ? heif_colorspace_monochrome : heif_colorspace_YCbCr,
        (enum heif_chroma)de265_get_chroma_format(src), out);
    if (err.code) return err;
    static const enum heif_channel ch[3] = {heif_channel_Y, heif_channel_Cb, heif_channel_Cr};
    int bpp = de265_get_bits_per_pixel(src, 0);
    for (int c = 0; c < (mono ? 1 : 3); c++) {
        if (de265_get_bits_per_pixel(src, c) != bpp) {
            heif_image_release(*out);
            *out = NULL;
            return plugin_err(heif_error_Unsupported_feature,
                              heif_suberror_Unsupported_color_conversion,
                              "Channels with different number of bits per pixel are not supported");
        }
        int stride, dst_stride;
        const uint8_t *data = de265_get_image_plane(src, c, &stride);
        int w = de265_get_image_width(src, c), h = de265_get_image_height(src, c);
        if (w <= 0 || h <= 0 || !data) {
            heif_image_release(*out);
            *out = NULL;
            return plugin_err(heif_error_Decoder_plugin_error, heif_suberror_Invalid_image_size,
                              "");
        }
        err = heif_image_add_plane(*out, ch[c], w, h, bpp);
        if (err.code) {
            heif_image_release(*out);
            *out = NULL;
            return err;
        }
        uint8_t *dst = heif_image_get_plane(*out, ch[c], &dst_stride);
        size_t bytes = (size_t)w * (size_t)((bpp + 7) / 8);
        for (int y = 0; y < h; y++)
            memcpy(dst + (size_t)y * (size_t)dst_stride, data + (size_t)y * (size_t)stride, bytes);
    }
    return ok_;
}

static const char *plugin_name(void) { return "imgtriage libde265 (checked)"; }
static void plugin_init(void) {}
static void plugin_deinit(void) {}

/* Low priority: only chosen by its id (libheif's own plugin stays the
 * default for anything else in the process). */
static int plugin_supports(enum heif_compression_format f)
{
    return f == heif_compression_HEVC ? 1 : 0;
}

static struct heif_error plugin_new(void **dec)
{
    hevc_dec *d = calloc(1, sizeof *d);
    if (!d)
        return plugin_err(heif_error_Memory_allocation_error, heif_suberror_Unspecified,
                          "out of memory");
    *dec = d;
    return ok_;
}

static void plugin_free(void *dec)
{
    hevc_dec *d = dec;
    if (!d) return;
    free(d->nal);
    free(d);
}

/* As libheif's plugin: 4-byte NAL lengths, a length past the data is an
 * error; the units are kept for the two passes. */
static struct heif_error plugin_push(void *dec, const void *data, size_t size)
{
    hevc_dec *d = dec;
    const uint8_t *p = data;
    size_t at = 0;
    while (at < size) {
        if (size - at < 4)
            return plugin_err(heif_error_Decoder_plugin_error, heif_suberror_End_of_data, "");
        uint32_t n = (uint32_t)p[at] << 24 | (uint32_t)p[at + 1] << 16 |
                     (uint32_t)p[at + 2] << 8 | p[at + 3];
        if (n > size - at - 4)
            return plugin_err(heif_error_Decoder_plugin_error, heif_suberror_End_of_data, "");
        at += 4 + (size_t)n;
    }
    if (size > SIZE_MAX - d->len)
        return plugin_err(heif_error_Memory_allocation_error, heif_suberror_Unspecified,
                          "out of memory");
    if (d->len + size > d->cap) {
        size_t cap = d->cap ? d->cap : 4096;
        while (cap < d->len + size) cap = cap > SIZE_MAX / 2 ? d->len + size : cap * 2;
        uint8_t *q = realloc(d->nal, cap);
        if (!q)
            return plugin_err(heif_error_Memory_allocation_error, heif_suberror_Unspecified,
                              "out of memory");
        d->nal = q;
        d->cap = cap;
    }
    if (size) memcpy(d->nal + d->len, data, size);
    d->len += size;
    return ok_;
}

static struct heif_error plugin_decode(void *dec, struct heif_image **out)
{
    hevc_dec *d = dec;
    struct heif_error err = ok_;
    int nomem = 0, more;
    *out = NULL;
    if (probe_stream(d, &nomem))
        return nomem ? plugin_err(heif_error_Memory_allocation_error, heif_suberror_Unspecified,
                                  "out of memory in the HEVC decoder")
                     : plugin_err(heif_error_Decoder_plugin_error, heif_suberror_Unspecified,
                                  "the HEVC stream leaves coding blocks undecoded");

    de265_decoder_context *ctx = de265_new_decoder();
    if (!ctx)
        return plugin_err(heif_error_Memory_allocation_error, heif_suberror_Unspecified,
                          "out of memory");
    de265_start_worker_threads(ctx, 1);
    push_all(ctx, d);
    de265_flush_data(ctx);
    do {
        more = 0;
        if (de265_decode(ctx, &more) != DE265_OK) break;
        const struct de265_image *img = de265_get_next_picture(ctx);
        if (img) {
            if (*out) heif_image_release(*out);
            *out = NULL;
            err = to_heif(img, out);
            if (err.code != heif_error_Ok) break;
            struct heif_color_profile_nclx *nclx = heif_nclx_color_profile_alloc();
            if (nclx) {
                heif_nclx_color_profile_set_color_primaries(
                    nclx, (uint16_t)de265_get_image_colour_primaries(img));
                heif_nclx_color_profile_set_transfer_characteristics(
                    nclx, (uint16_t)de265_get_image_transfer_characteristics(img));
                heif_nclx_color_profile_set_matrix_coefficients(
                    nclx, (uint16_t)de265_get_image_matrix_coefficients(img));
                nclx->full_range_flag = (uint8_t)de265_get_image_full_range_flag(img);
                heif_image_set_nclx_color_profile(*out, nclx);
                heif_nclx_color_profile_free(nclx);
            }
            de265_release_next_picture(ctx);
        }
    } while (more);
    de265_free_decoder(ctx);
    if (err.code == heif_error_Ok && !*out)
        err = plugin_err(heif_error_Decoder_plugin_error, heif_suberror_Unspecified,
                         "the HEVC stream holds no picture");
    return err;
}

static void plugin_strict(void *dec, int flag)
{
    (void)dec;
    (void)flag;
}

static const struct heif_decoder_plugin hevc_plugin = {
    3, plugin_name, plugin_init, plugin_deinit, plugin_supports, plugin_new, plugin_free,
    plugin_push, plugin_decode, plugin_strict, IMT__HEIF_HEVC_ID};

const struct heif_decoder_plugin *imt__heif_hevc_plugin(void) { return &hevc_plugin; }
