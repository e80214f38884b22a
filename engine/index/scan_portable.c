/* engine/index/scan_portable.c -- the portable distance kernels (a leaf:
 * the SIMD kernels call imt__idx_scan_portable for their tails, scan.c's tables
 * point at both). A scan compares a block of hashes with up to 8 queries at
 * once (the 8 dihedral variants of one image), so each hash is loaded once. */
#include "index.h"

#include <string.h>

static inline uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* Hamming distance of two 32-byte hashes; byte order does not matter. */
static inline int dist32(const uint8_t *a, const uint8_t *b)
{
    return __builtin_popcountll(load64(a) ^ load64(b)) +
           __builtin_popcountll(load64(a + 8) ^ load64(b + 8)) +
           __builtin_popcountll(load64(a + 16) ^ load64(b + 16)) +
           __builtin_popcountll(load64(a + 24) ^ load64(b + 24));
}

size_t imt__idx_scan_portable(const uint8_t *arr, size_t n, const uint8_t *q, int nq,
                         int radius, uint32_t *out_idx, uint16_t *out_dq)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *h = arr + i * 32;
        for (int j = 0; j < nq; j++) {
            int d = dist32(h, q + 32 * j);
            if (d <= radius) {
                out_idx[k] = (uint32_t)i;
                out_dq[k] = (uint16_t)(d | j << 9);
                k++;
            }
        }
    }
    return k;
}

void imt__idx_dist_portable(const uint8_t *arr, const uint32_t *ids, size_t n,
                       const uint8_t *q, uint16_t *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (uint16_t)dist32(arr + (size_t)ids[i] * 32, q);
}
