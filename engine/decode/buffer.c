/* engine/decode/buffer.c -- a leaf of the decode module: the scratch buffers
 * decoders keep between files (grown, never shrunk, contents not kept) and
 * reading a whole stream into memory for the libraries that need random
 * access (libtiff, libheif). Calls nothing else in the module. */
#include "decode.h"

#include <string.h>

imt_err imt__grow(void **p, size_t *cap, uint64_t bytes)
{
    if (bytes > SIZE_MAX) return IMT_E_NOMEM;
    if (bytes <= *cap && *p) return IMT_OK;
    void *q = imt__malloc(bytes ? (size_t)bytes : 1);
    if (!q) return IMT_E_NOMEM;
    imt__free(*p);
    *p = q;
    *cap = (size_t)bytes;
    return IMT_OK;
}

imt_err imt__slurp(const imt_reader *r, uint8_t **buf, size_t *cap, uint64_t max,
                   size_t first, size_t *n)
{
    size_t len = 0;
    *n = 0;
    for (;;) {
        const uint8_t *d = NULL;
        size_t k = 0;
        imt_err e = r->pull(r->ctx, &d, &k);
        if (e != IMT_OK) return e;
        if (k == 0) break;
        if ((uint64_t)len + k > max) return IMT_E_TOO_LARGE;
        if (len + k > *cap || !*buf) {
            uint64_t want = *cap ? *cap : first;
            while (want < len + k) want *= 2;
            if (want > max) want = max;
            uint8_t *q = imt__malloc((size_t)want);
            if (!q) return IMT_E_NOMEM;
            if (len) memcpy(q, *buf, len);
            imt__free(*buf);
            *buf = q;
            *cap = (size_t)want;
        }
        memcpy(*buf + len, d, k);
        len += k;
    }
    *n = len;
    return IMT_OK;
}
