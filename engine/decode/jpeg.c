/* engine/decode/jpeg.c -- placeholder until the JPEG decoder lands. */
#include "decode.h"

imt_err imt__jpeg_decode(imt_jpeg_state **st, const imt_reader *r, imt_pdq_mode mode,
                         const imt_decode_limits *lim, imt_luma *out,
                         char *detail, size_t cap)
{
    (void)st; (void)r; (void)mode; (void)lim; (void)out;
    imt__set_detail(detail, cap, "JPEG decoding not built yet");
    return IMT_E_UNSUPPORTED;
}

void imt__jpeg_state_free(imt_jpeg_state *st) { (void)st; }
