/* engine/decode/decode.c -- the decoder handle and the dispatch to the
 * per-format decoders. Only dispatch: what the format files share lives in
 * leaf files they call (limits.c, resample.c), which call nothing of this
 * module, so no two files of it call each other. A new format is one file
 * (its imt__X_decode and state) plus a case here. */
#include "decode.h"

struct imt_decoder {
    imt_jpeg_state *jpeg;
    imt_png_state *png;
    imt_bmp_state *bmp;
    imt_tiff_state *tiff;
    imt_webp_state *webp;
    imt_gif_state *gif;
    imt_heif_state *heif;
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
    imt__bmp_state_free(d->bmp);
    imt__tiff_state_free(d->tiff);
    imt__webp_state_free(d->webp);
    imt__gif_state_free(d->gif);
    imt__heif_state_free(d->heif);
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
    case IMT_FMT_BMP:
        return imt__bmp_decode(&d->bmp, r, mode, lim, out, detail, cap);
    case IMT_FMT_TIFF:
        return imt__tiff_decode(&d->tiff, r, mode, lim, out, detail, cap);
    case IMT_FMT_WEBP:
        return imt__webp_decode(&d->webp, r, mode, lim, out, detail, cap);
    case IMT_FMT_GIF:
        return imt__gif_decode(&d->gif, r, mode, lim, out, detail, cap);
    case IMT_FMT_HEIF:
    case IMT_FMT_AVIF:
        return imt__heif_decode(&d->heif, r, mode, lim, out, detail, cap);
    case IMT_FMT_UNKNOWN:
        imt__set_detail(detail, cap, "no known image signature");
        return IMT_E_NOT_IMAGE;
    default:
        imt__set_detail(detail, cap, "%s images are recognised but not decoded",
                        imt_format_name(fmt));
        return IMT_E_UNSUPPORTED;
    }
}

int imt__decode_thumbnail_count(imt_decoder *d, imt_format fmt)
{
    if (!d || (fmt != IMT_FMT_HEIF && fmt != IMT_FMT_AVIF) || !d->heif) return 0;
    return imt__heif_thumbnail_count(d->heif);
}

imt_err imt__decode_thumbnail(imt_decoder *d, imt_format fmt, int index,
                              const imt_decode_limits *lim, imt_luma *out, char *detail,
                              size_t cap)
{
    if (!d || !lim || !out) return IMT_E_INVALID;
    if ((fmt != IMT_FMT_HEIF && fmt != IMT_FMT_AVIF) || !d->heif) {
        imt__set_detail(detail, cap, "no thumbnails in %s files", imt_format_name(fmt));
        return IMT_E_UNSUPPORTED;
    }
    return imt__heif_thumbnail_luma(d->heif, index, lim, out, detail, cap);
}

imt_err imt__decode_pages(imt_decoder *d, imt_format fmt, const imt_decode_limits *lim,
                          imt_page_fn fn, void *ctx)
{
    if (!d || !lim || !fn) return IMT_E_INVALID;
    if (fmt != IMT_FMT_TIFF || !d->tiff) return IMT_E_UNSUPPORTED;
    return imt__tiff_pages(d->tiff, lim, fn, ctx);
}
