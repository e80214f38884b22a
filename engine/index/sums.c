/* engine/index/sums.c -- checksums of the segments a PDQ query searches
 * (a leaf: it reads a search view, nothing else). Compaction stores the
 * compacted segments' in the header (level 0) and "levels", every commit the delta segment's in
 * the meta record "dsum"; the open-time content check (index.c) and verify
 * compare them with the bytes. */
#include "index.h"

#include <openssl/evp.h>

imt_err imt__idx_seg_sum(const imt__idx_seg *g, uint8_t out[32])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md) return IMT_E_NOMEM;
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    EVP_DigestUpdate(md, g->pdq, (size_t)g->n * 32);
    EVP_DigestUpdate(md, g->ent, (size_t)g->n * 4);
    for (int t = 0; t < g->m; t++) {
        EVP_DigestUpdate(md, g->off[t], (((size_t)1 << g->bits[t]) + 1) * 4);
        EVP_DigestUpdate(md, g->ids[t], (size_t)g->n * 4);
    }
    unsigned n;
    EVP_DigestFinal_ex(md, out, &n);
    EVP_MD_CTX_free(md);
    return IMT_OK;
}

imt_err imt__idx_delta_sum(const imt__idx_view *v, uint8_t out[32])
{
    imt_err err = IMT_OK;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned n = 0;
    if (!md) return IMT_E_NOMEM;
    if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        err = IMT_E_INTERNAL;
        goto cleanup;
    }
    /* a chunk's value: its hashes, then its entry ids (contiguous) */
    for (size_t c = 0; c < v->nchunks; c++)
        if (EVP_DigestUpdate(md, v->dpdq[c], (size_t)v->dcount[c] * 36) != 1) {
            err = IMT_E_INTERNAL;
            goto cleanup;
        }
    if (EVP_DigestFinal_ex(md, out, &n) != 1) err = IMT_E_INTERNAL;
cleanup:
    EVP_MD_CTX_free(md);
    return err;
}
