/* engine/decode/limits.c -- the input limits every decoder checks before it
 * allocates for an image (a leaf: calls nothing else of engine/decode). */
#include "decode.h"

#include <inttypes.h>

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
