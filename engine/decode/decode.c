/* engine/decode/decode.c -- dispatch to the per-format decoders, limits,
 * and the reference's resampling helpers shared by them. */
#include "decode.h"

#include <inttypes.h>

const float imt__luma_r = 0.299f, imt__luma_g = 0.587f, imt__luma_b = 0.114f;

struct imt_decoder {
    imt_jpeg_state *jpeg;
    imt_png_state *png;
};

imt_err imt__decoder_create(imt_decoder **out)
{
    if (!out) return IMT_E_INVALID;
    *out = imt__calloc(1, sizeof **out);
    return *out ? IMT_OK : IMT_E_NOMEM;
}

void imt__decoder_free(imt_decoder *d)
{
    if (!d) return;
    imt__jpeg_state_free(d->jpeg);
    imt__png_state_free(d->png);
    imt__free(d);
}

imt_err imt__decode_luma(imt_decoder *d, imt_format fmt, const imt_reader *r,
                         imt_pdq_mode mode, const imt_decode_limits *lim,
                         imt_luma *out, char *detail, size_t cap)
{
    if (!d || !r || !lim || !out) return IMT_E_INVALID;
    out->pix = NULL;
    out->rows = out->cols = 0;
    out->width = out->height = 0;
    out->partial = 0;
    switch (fmt) {
    case IMT_FMT_JPEG:
        return imt__jpeg_decode(&d->jpeg, r, mode, lim, out, detail, cap);
    case IMT_FMT_PNG:
        return imt__png_decode(&d->png, r, mode, lim, out, detail, cap);
    case IMT_FMT_UNKNOWN:
        imt__set_detail(detail, cap, "no known image signature");
        return IMT_E_NOT_IMAGE;
    default:
        imt__set_detail(detail, cap, "%s images are recognised but not decoded",
                        imt_format_name(fmt));
        return IMT_E_UNSUPPORTED;
    }
}

imt_err imt__check_dims(uint64_t w, uint64_t h, const imt_decode_limits *lim,
                        const char *what, char *detail, size_t cap)
{
    if (w == 0 || h == 0) {
        imt__set_detail(detail, cap, "%s claims %" PRIu64 "x%" PRIu64 " pixels", what, w, h);
        return IMT_E_CORRUPT;
    }
    if (lim->max_dimension && (w > lim->max_dimension || h > lim->max_dimension)) {
        imt__set_detail(detail, cap,
                        "%s claims %" PRIu64 "x%" PRIu64 " pixels, a side over the "
                        "limit of %" PRIu32, what, w, h, lim->max_dimension);
        return IMT_E_TOO_LARGE;
    }
    if (lim->max_pixels && w * h > lim->max_pixels) {
        imt__set_detail(detail, cap,
                        "%s claims %" PRIu64 "x%" PRIu64 " pixels, over the limit of "
                        "%" PRIu64 " pixels", what, w, h, lim->max_pixels);
        return IMT_E_TOO_LARGE;
    }
    return IMT_OK;
}

void imt__nn_map(int src, int dst, int *map)
{
    for (int i = 0; i < dst; i++)
        map[i] = (int)(((uint64_t)i * (uint64_t)src) / (uint64_t)dst);
}

int imt__compat_side(uint32_t side, uint32_t w, uint32_t h)
{
    return (w > 512 || h > 512) ? 512 : (int)side;
}
