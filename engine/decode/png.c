/* engine/decode/png.c -- placeholder until the PNG decoder lands. */
#include "decode.h"

imt_err imt__png_decode(imt_png_state **st, const imt_reader *r, imt_pdq_mode mode,
                         const imt_decode_limits *lim, imt_luma *out,
                         char *detail, size_t cap)
{
    (void)st; (void)r; (void)mode; (void)lim; (void)out;
    imt__set_detail(detail, cap, "PNG decoding not built yet");
    return IMT_E_UNSUPPORTED;
}

void imt__png_state_free(imt_png_state *st) { (void)st; }
