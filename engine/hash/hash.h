/* engine/hash/hash.h -- the PDQ stage (float luma -> 256-bit hashes and
 * quality) and the cryptographic digests of file bytes. */
#ifndef IMT_HASH_H
#define IMT_HASH_H

#include "common/common.h"

/* ---- PDQ ---------------------------------------------------------------
 * Scratch buffers for one thread; reused across images, grown on demand. */
typedef struct imt_pdq_ctx imt_pdq_ctx;

imt_err imt__pdq_ctx_create(imt_pdq_ctx **out);
void imt__pdq_ctx_free(imt_pdq_ctx *c);

/* The reference's hash stage on a rows x cols float luma plane: two-pass
 * Jarosz box filter (windows ceil(cols/128) along rows, ceil(rows/128) along
 * columns), 64x64 point samples at cell centres, 16x16 DCT, bits above the
 * median, quality from the 64x64 gradients. luma is overwritten (it is the
 * reference's buffer 1). With dihedral, out[0..7] get the 8 variants in
 * imt_dihedral order; else only out[0]. out[0] and quality never depend on
 * dihedral: they are pdqHash256FromFloatLuma's, which takes a 64x64 input
 * as its own downsample. Bit-identical to the reference on every code path
 * (SIMD or portable), with one deliberate difference: the reference's
 * dihedral function filters a 64x64 input (so its original-orientation
 * hash differs from the plain one); here the variants of a 64x64 input
 * come from the unfiltered buffer too. dihedral = IMT__PDQ_DIH_REFERENCE
 * reproduces the reference's dihedral function exactly (for the golden
 * tests). rows or cols < 5: IMT_E_TOO_SMALL. */
#define IMT__PDQ_DIH_REFERENCE 2
imt_err imt__pdq_hash_luma(imt_pdq_ctx *c, float *luma, int rows, int cols,
                           int dihedral, imt_pdq out[IMT_DIH__COUNT], int *quality);

/* ---- digests (OpenSSL EVP) --------------------------------------------- */
typedef struct imt_digest imt_digest;

imt_err imt__digest_create(imt_digest **out);
void imt__digest_free(imt_digest *d);
/* Start digests for the IMT_DIGEST_* bits in which (0: none). */
imt_err imt__digest_begin(imt_digest *d, unsigned which);
void imt__digest_update(imt_digest *d, const void *data, size_t len);
/* Finish; fills the arrays of the digests begun. */
imt_err imt__digest_end(imt_digest *d, uint8_t md5[16], uint8_t sha1[20],
                        uint8_t sha256[32]);

#endif
