/* engine/index/scan_avx2.c -- AVX2 distance kernels: bytes counted with the
 * nibble table (pshufb), summed with psadbw; 4 hashes per step. The MIH
 * verify step uses the scalar popcnt this ISA level brings. */
#include "index.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

static inline int dist32(const uint8_t *a, const uint8_t *b)
{
    uint64_t x[4], y[4];
    memcpy(x, a, 32);
    memcpy(y, b, 32);
    return (int)(_mm_popcnt_u64(x[0] ^ y[0]) + _mm_popcnt_u64(x[1] ^ y[1]) +
                 _mm_popcnt_u64(x[2] ^ y[2]) + _mm_popcnt_u64(x[3] ^ y[3]));
}

static inline __m256i popcnt_sad(__m256i x, __m256i lut, __m256i low)
{
    __m256i lo = _mm256_and_si256(x, low);
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), low);
    __m256i c = _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi));
    return _mm256_sad_epu8(c, _mm256_setzero_si256());
}

size_t imt__idx_scan_avx2(const uint8_t *arr, size_t n, const uint8_t *q, int nq,
                     int radius, uint32_t *out_idx, uint16_t *out_dq)
{
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                         0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i low = _mm256_set1_epi8(0x0f);
    __m256i qv[8];
    for (int j = 0; j < nq; j++) qv[j] = _mm256_loadu_si256((const __m256i *)(q + 32 * j));
    size_t k = 0, i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint8_t *h = arr + i * 32;
        __m256i a0 = _mm256_loadu_si256((const __m256i *)h);
        __m256i a1 = _mm256_loadu_si256((const __m256i *)(h + 32));
        __m256i a2 = _mm256_loadu_si256((const __m256i *)(h + 64));
        __m256i a3 = _mm256_loadu_si256((const __m256i *)(h + 96));
        for (int j = 0; j < nq; j++) {
            __m256i s0 = popcnt_sad(_mm256_xor_si256(a0, qv[j]), lut, low);
            __m256i s1 = popcnt_sad(_mm256_xor_si256(a1, qv[j]), lut, low);
            __m256i s2 = popcnt_sad(_mm256_xor_si256(a2, qv[j]), lut, low);
            __m256i s3 = popcnt_sad(_mm256_xor_si256(a3, qv[j]), lut, low);
            /* each lane <= 64: pack the 4 hashes into 16-bit fields */
            __m256i t = _mm256_add_epi64(
                _mm256_add_epi64(s0, _mm256_slli_epi64(s1, 16)),
                _mm256_add_epi64(_mm256_slli_epi64(s2, 32), _mm256_slli_epi64(s3, 48)));
            __m128i u = _mm_add_epi64(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
            uint64_t d4 = (uint64_t)_mm_cvtsi128_si64(u) + (uint64_t)_mm_extract_epi64(u, 1);
            for (int e = 0; e < 4; e++) {
                int d = (int)((d4 >> (16 * e)) & 0xffff);
                if (d <= radius) {
                    out_idx[k] = (uint32_t)(i + e);
                    out_dq[k] = (uint16_t)(d | j << 9);
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

void imt__idx_dist_avx2(const uint8_t *arr, const uint32_t *ids, size_t n,
                   const uint8_t *q, uint16_t *out)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        _mm_prefetch((const char *)(arr + (size_t)ids[i + (i + 8 < n ? 8 : 0)] * 32), _MM_HINT_T0);
        out[i] = (uint16_t)dist32(arr + (size_t)ids[i] * 32, q);
        out[i + 1] = (uint16_t)dist32(arr + (size_t)ids[i + 1] * 32, q);
        out[i + 2] = (uint16_t)dist32(arr + (size_t)ids[i + 2] * 32, q);
        out[i + 3] = (uint16_t)dist32(arr + (size_t)ids[i + 3] * 32, q);
    }
    for (; i < n; i++) out[i] = (uint16_t)dist32(arr + (size_t)ids[i] * 32, q);
}
#else
typedef int imt__idx_scan_avx2_unused;
#endif
