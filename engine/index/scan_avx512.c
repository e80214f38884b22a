/* engine/index/scan_avx512.c -- AVX-512 VPOPCNTDQ scan: 8 hashes (256
 * bytes, 4 registers) per step, per-word counts summed into one distance
 * per lane with two unpacks and two permutes. */
#include "index.h"

#if defined(__x86_64__)
#include <immintrin.h>

size_t imt__idx_scan_avx512(const uint8_t *arr, size_t n, const uint8_t *q, int nq,
                       int radius, uint32_t *out_idx, uint16_t *out_dq)
{
    __m512i qv[8];
    for (int j = 0; j < nq; j++)
        qv[j] = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(q + 32 * j)));
    const __m512i ia = _mm512_setr_epi64(0, 4, 1, 5, 8, 12, 9, 13);
    const __m512i ib = _mm512_setr_epi64(2, 6, 3, 7, 10, 14, 11, 15);
    const __m512i rv = _mm512_set1_epi64(radius);
    size_t k = 0, i = 0;
    for (; i + 8 <= n; i += 8) {
        const uint8_t *h = arr + i * 32;
        __m512i a0 = _mm512_loadu_si512((const void *)h);
        __m512i a1 = _mm512_loadu_si512((const void *)(h + 64));
        __m512i a2 = _mm512_loadu_si512((const void *)(h + 128));
        __m512i a3 = _mm512_loadu_si512((const void *)(h + 192));
        for (int j = 0; j < nq; j++) {
            __m512i z0 = _mm512_popcnt_epi64(_mm512_xor_si512(a0, qv[j]));
            __m512i z1 = _mm512_popcnt_epi64(_mm512_xor_si512(a1, qv[j]));
            __m512i z2 = _mm512_popcnt_epi64(_mm512_xor_si512(a2, qv[j]));
            __m512i z3 = _mm512_popcnt_epi64(_mm512_xor_si512(a3, qv[j]));
            __m512i s01 = _mm512_add_epi64(_mm512_unpacklo_epi64(z0, z1),
                                           _mm512_unpackhi_epi64(z0, z1));
            __m512i s23 = _mm512_add_epi64(_mm512_unpacklo_epi64(z2, z3),
                                           _mm512_unpackhi_epi64(z2, z3));
            __m512i d = _mm512_add_epi64(_mm512_permutex2var_epi64(s01, ia, s23),
                                         _mm512_permutex2var_epi64(s01, ib, s23));
            __mmask8 m = _mm512_cmple_epu64_mask(d, rv);
            if (m) {
                uint64_t dd[8];
                _mm512_storeu_si512((void *)dd, d);
                while (m) {
                    int e = __builtin_ctz(m);
                    m &= (__mmask8)(m - 1);
                    out_idx[k] = (uint32_t)(i + (size_t)e);
                    out_dq[k] = (uint16_t)(dd[e] | (uint64_t)j << 9);
                    k++;
                }
            }
        }
    }
    if (i < n) {
        size_t t = imt__idx_scan_portable(arr + i * 32, n - i, q, nq, radius, out_idx + k, out_dq + k);
        for (size_t x = 0; x < t; x++) out_idx[k + x] += (uint32_t)i;
        k += t;
    }
    return k;
}
#else
typedef int imt__idx_scan_avx512_unused;
#endif
