/* engine/hash/pdq.c -- placeholder until the PDQ stage lands. */
#include "hash.h"

struct imt_pdq_ctx { int unused; };

imt_err imt__pdq_ctx_create(imt_pdq_ctx **out)
{
    *out = imt__calloc(1, sizeof **out);
    return *out ? IMT_OK : IMT_E_NOMEM;
}

void imt__pdq_ctx_free(imt_pdq_ctx *c) { imt__free(c); }

imt_err imt__pdq_hash_luma(imt_pdq_ctx *c, float *luma, int rows, int cols,
                           int dihedral, imt_pdq out[IMT_DIH__COUNT], int *quality)
{
    (void)c; (void)luma; (void)rows; (void)cols; (void)dihedral; (void)out; (void)quality;
    return IMT_E_INTERNAL;
}
