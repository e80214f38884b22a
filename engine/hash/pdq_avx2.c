/* engine/hash/pdq_avx2.c -- AVX2 kernels of the PDQ stage, bit-identical
 * to the portable ones (see pdq_impl.h for the rules).
 *
 * Boxes down columns run row by row with 8 columns per register: each
 * lane is one column's running sum, in the reference's order. Boxes along
 * rows need one running sum per row, so strips of 32 rows are transposed
 * (8x8 blocks) into a column-major scratch strip, summed with 4 registers
 * of 8 rows each (4 independent dependency chains), and transposed back.
 * This file is compiled with -mavx2 -mfma; -ffp-contract=off keeps every
 * multiply and add separate, as the reference has them. */
#include "pdq_impl.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define G 32 /* rows per strip: 4 registers of 8 */

static inline void transpose8(__m256 r[8])
{
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
    r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
    r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
    r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
    r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

/* Lanes 0..n-1 on (n clamped to 0..8). */
static inline __m256i lane_mask(int n)
{
    n = n < 0 ? 0 : n > 8 ? 8 : n;
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx);
}

/* The box sum at position o divided by its window count, exactly. */
static inline __m256 box_div(__m256 s, int o, int n, int fw)
{
    int d = imt__box_count(o, n, fw);
    if (imt__pow2(d)) return _mm256_mul_ps(s, _mm256_set1_ps(1.0f / (float)d));
    return _mm256_div_ps(s, _mm256_set1_ps((float)d));
}

/* ---- boxes along rows, on strips of G rows ------------------------------ */

/* tin[c * G + l] = in[min(r0 + l, rows - 1)][c] for c < n. */
static void strip_load(const float *in, size_t cols, int rows, int r0, int n, float *tin)
{
    for (int g = 0; g < G / 8; g++) {
        const float *rp[8];
        for (int l = 0; l < 8; l++) {
            int r = r0 + 8 * g + l;
            rp[l] = in + (size_t)(r < rows ? r : rows - 1) * cols;
        }
        float *t = tin + 8 * g;
        int c = 0;
        for (; c + 8 <= n; c += 8) {
            __m256 v[8];
            v[0] = _mm256_loadu_ps(rp[0] + c);
            v[1] = _mm256_loadu_ps(rp[1] + c);
            v[2] = _mm256_loadu_ps(rp[2] + c);
            v[3] = _mm256_loadu_ps(rp[3] + c);
            v[4] = _mm256_loadu_ps(rp[4] + c);
            v[5] = _mm256_loadu_ps(rp[5] + c);
            v[6] = _mm256_loadu_ps(rp[6] + c);
            v[7] = _mm256_loadu_ps(rp[7] + c);
            transpose8(v);
            float *o = t + (size_t)c * G;
            _mm256_store_ps(o + 0 * G, v[0]);
            _mm256_store_ps(o + 1 * G, v[1]);
            _mm256_store_ps(o + 2 * G, v[2]);
            _mm256_store_ps(o + 3 * G, v[3]);
            _mm256_store_ps(o + 4 * G, v[4]);
            _mm256_store_ps(o + 5 * G, v[5]);
            _mm256_store_ps(o + 6 * G, v[6]);
            _mm256_store_ps(o + 7 * G, v[7]);
        }
        if (c < n) {
            __m256 v[8];
            __m256i m = lane_mask(n - c);
            for (int l = 0; l < 8; l++) v[l] = _mm256_maskload_ps(rp[l] + c, m);
            transpose8(v);
            for (int k = 0; k < n - c; k++) _mm256_store_ps(t + (size_t)(c + k) * G, v[k]);
        }
    }
}

/* The running sums of box1DFloat along each of the G rows (undivided):
 * tout[o * G + l] for every position o < n. */
static void strip_box(const float *tin, float *tout, int n, int fw)
{
    int hw = imt__box_half(fw);
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    const float *r = tin, *l = tin;
    float *o = tout;
#define ADD(p)                                          \
    s0 = _mm256_add_ps(s0, _mm256_load_ps((p) + 0));    \
    s1 = _mm256_add_ps(s1, _mm256_load_ps((p) + 8));    \
    s2 = _mm256_add_ps(s2, _mm256_load_ps((p) + 16));   \
    s3 = _mm256_add_ps(s3, _mm256_load_ps((p) + 24))
#define SUB(p)                                          \
    s0 = _mm256_sub_ps(s0, _mm256_load_ps((p) + 0));    \
    s1 = _mm256_sub_ps(s1, _mm256_load_ps((p) + 8));    \
    s2 = _mm256_sub_ps(s2, _mm256_load_ps((p) + 16));   \
    s3 = _mm256_sub_ps(s3, _mm256_load_ps((p) + 24))
#define PUT(p)                      \
    _mm256_store_ps((p) + 0, s0);   \
    _mm256_store_ps((p) + 8, s1);   \
    _mm256_store_ps((p) + 16, s2);  \
    _mm256_store_ps((p) + 24, s3)
    for (int i = 0; i < hw - 1; i++, r += G) {
        ADD(r);
    }
    for (int i = 0; i < fw - hw + 1; i++, r += G, o += G) {
        ADD(r);
        PUT(o);
    }
    for (int i = 0; i < n - fw; i++, r += G, l += G, o += G) {
        ADD(r);
        SUB(l);
        PUT(o);
    }
    for (int i = 0; i < hw - 1; i++, l += G, o += G) {
        SUB(l);
        PUT(o);
    }
#undef ADD
#undef SUB
#undef PUT
}

/* out[r0 + l][c] = tout[c * G + l] / count(c), rows below `rows` only. */
static void strip_store(const float *tout, int n, int fw, float *out, size_t cols, int rows,
                        int r0)
{
    int hw = imt__box_half(fw);
    /* Positions [lo, hi) divide by fw; the edges by smaller counts. */
    int lo = fw - hw + 1, hi = n - hw + 1;
    __m256 mid = _mm256_set1_ps(imt__pow2(fw) ? 1.0f / (float)fw : (float)fw);
    int mid_mul = imt__pow2(fw);
    for (int g = 0; g < G / 8; g++) {
        int nl = rows - (r0 + 8 * g);
        if (nl <= 0) break;
        if (nl > 8) nl = 8;
        float *rp = out + (size_t)(r0 + 8 * g) * cols;
        const float *t = tout + 8 * g;
        for (int c = 0; c < n; c += 8) {
            __m256 v[8];
            int kn = n - c < 8 ? n - c : 8;
            if (c >= lo && c + 8 <= hi) {
                for (int k = 0; k < 8; k++) {
                    __m256 x = _mm256_load_ps(t + (size_t)(c + k) * G);
                    v[k] = mid_mul ? _mm256_mul_ps(x, mid) : _mm256_div_ps(x, mid);
                }
            } else {
                for (int k = 0; k < kn; k++)
                    v[k] = box_div(_mm256_load_ps(t + (size_t)(c + k) * G), c + k, n, fw);
                for (int k = kn; k < 8; k++) v[k] = _mm256_setzero_ps();
            }
            transpose8(v);
            if (kn == 8 && nl == 8) {
                for (int l = 0; l < 8; l++) _mm256_storeu_ps(rp + (size_t)l * cols + c, v[l]);
            } else if (kn == 8) {
                for (int l = 0; l < nl; l++) _mm256_storeu_ps(rp + (size_t)l * cols + c, v[l]);
            } else {
                __m256i m = lane_mask(kn);
                for (int l = 0; l < nl; l++) _mm256_maskstore_ps(rp + (size_t)l * cols + c, m, v[l]);
            }
        }
    }
}

/* compact[r0 + l][k] = tout[at[k] * G + l] / count(at[k]), k < 64. */
static void strip_store_sampled(const float *tout, int n, int fw, const int *at,
                                float *compact, int rows, int r0)
{
    for (int g = 0; g < G / 8; g++) {
        int nl = rows - (r0 + 8 * g);
        if (nl <= 0) break;
        if (nl > 8) nl = 8;
        float *rp = compact + (size_t)(r0 + 8 * g) * 64;
        for (int kb = 0; kb < 64; kb += 8) {
            __m256 v[8];
            for (int k = 0; k < 8; k++) {
                int c = at[kb + k];
                v[k] = box_div(_mm256_load_ps(tout + (size_t)c * G + 8 * g), c, n, fw);
            }
            transpose8(v);
            for (int l = 0; l < nl; l++) _mm256_store_ps(rp + l * 64 + kb, v[l]);
        }
    }
}

/* ---- boxes down columns, row by row -------------------------------------- */

/* A box down the columns, run incrementally as input rows become
 * available: output row o is made once input row o + hw - 1 exists (or
 * the last row). sums[] holds each column's running sum between calls;
 * every column's operations stay in the reference's order. */
typedef struct colbox {
    const float *in;
    size_t is;       /* input row stride */
    int w, n, fw;    /* width, height, window */
    float *out;
    size_t os;       /* output row stride */
    const int *at;   /* NULL: every output row; else output row at[k] -> row k */
    float *sums;     /* w floats, rounded up to 8 */
    int next;        /* next output row */
    int k;           /* next at[] entry */
} colbox;

#define LOAD8(p) _mm256_loadu_ps(p)
/* One block of 64 columns over output rows [o0, o1). */
static void colbox_block64(const colbox *b, int c, int o0, int o1, int k)
{
    int hw = imt__box_half(b->fw), fw = b->fw, n = b->n;
    const float *in = b->in + c;
    float *out = b->out + c;
    __m256 s0, s1, s2, s3, s4, s5, s6, s7;
#define ROWOP(OP, p)                                   \
    do {                                               \
        const float *q_ = (p);                         \
        s0 = OP(s0, LOAD8(q_ + 0));                    \
        s1 = OP(s1, LOAD8(q_ + 8));                    \
        s2 = OP(s2, LOAD8(q_ + 16));                   \
        s3 = OP(s3, LOAD8(q_ + 24));                   \
        s4 = OP(s4, LOAD8(q_ + 32));                   \
        s5 = OP(s5, LOAD8(q_ + 40));                   \
        s6 = OP(s6, LOAD8(q_ + 48));                   \
        s7 = OP(s7, LOAD8(q_ + 56));                   \
    } while (0)
#define PUT8(p, D, DV)                                         \
    do {                                                       \
        float *q_ = (p);                                       \
        _mm256_storeu_ps(q_ + 0, D(s0, DV));                   \
        _mm256_storeu_ps(q_ + 8, D(s1, DV));                   \
        _mm256_storeu_ps(q_ + 16, D(s2, DV));                  \
        _mm256_storeu_ps(q_ + 24, D(s3, DV));                  \
        _mm256_storeu_ps(q_ + 32, D(s4, DV));                  \
        _mm256_storeu_ps(q_ + 40, D(s5, DV));                  \
        _mm256_storeu_ps(q_ + 48, D(s6, DV));                  \
        _mm256_storeu_ps(q_ + 56, D(s7, DV));                  \
    } while (0)
    if (o0 == 0) {
        s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = _mm256_setzero_ps();
        for (int i = 0; i < hw - 1; i++) ROWOP(_mm256_add_ps, in + (size_t)i * b->is);
    } else {
        const float *q = b->sums + c;
        s0 = LOAD8(q + 0); s1 = LOAD8(q + 8); s2 = LOAD8(q + 16); s3 = LOAD8(q + 24);
        s4 = LOAD8(q + 32); s5 = LOAD8(q + 40); s6 = LOAD8(q + 48); s7 = LOAD8(q + 56);
    }
    for (int o = o0; o < o1; o++) {
        if (o + hw - 1 < n) ROWOP(_mm256_add_ps, in + (size_t)(o + hw - 1) * b->is);
        if (o >= fw - hw + 1) ROWOP(_mm256_sub_ps, in + (size_t)(o - (fw - hw + 1)) * b->is);
        int d = imt__box_count(o, n, fw);
        if (!b->at) {
            if (imt__pow2(d)) {
                __m256 r = _mm256_set1_ps(1.0f / (float)d);
                PUT8(out + (size_t)o * b->os, _mm256_mul_ps, r);
            } else {
                __m256 r = _mm256_set1_ps((float)d);
                PUT8(out + (size_t)o * b->os, _mm256_div_ps, r);
            }
        } else {
            for (; k < 64 && b->at[k] == o; k++) {
                __m256 r = _mm256_set1_ps((float)d);
                PUT8(out + (size_t)k * b->os, _mm256_div_ps, r);
            }
        }
    }
    float *q = b->sums + c;
    _mm256_storeu_ps(q + 0, s0); _mm256_storeu_ps(q + 8, s1);
    _mm256_storeu_ps(q + 16, s2); _mm256_storeu_ps(q + 24, s3);
    _mm256_storeu_ps(q + 32, s4); _mm256_storeu_ps(q + 40, s5);
    _mm256_storeu_ps(q + 48, s6); _mm256_storeu_ps(q + 56, s7);
#undef ROWOP
#undef PUT8
}

/* One block of 8 columns (masked to the width) over output rows [o0, o1). */
static void colbox_block8(const colbox *b, int c, int o0, int o1, int k)
{
    int hw = imt__box_half(b->fw), fw = b->fw, n = b->n;
    const float *in = b->in + c;
    float *out = b->out + c;
    __m256i m = lane_mask(b->w - c);
    __m256 s;
    if (o0 == 0) {
        s = _mm256_setzero_ps();
        for (int i = 0; i < hw - 1; i++)
            s = _mm256_add_ps(s, _mm256_maskload_ps(in + (size_t)i * b->is, m));
    } else {
        s = _mm256_loadu_ps(b->sums + c);
    }
    for (int o = o0; o < o1; o++) {
        if (o + hw - 1 < n)
            s = _mm256_add_ps(s, _mm256_maskload_ps(in + (size_t)(o + hw - 1) * b->is, m));
        if (o >= fw - hw + 1)
            s = _mm256_sub_ps(s, _mm256_maskload_ps(in + (size_t)(o - (fw - hw + 1)) * b->is, m));
        if (!b->at)
            _mm256_maskstore_ps(out + (size_t)o * b->os, m, box_div(s, o, n, fw));
        else
            for (; k < 64 && b->at[k] == o; k++)
                _mm256_maskstore_ps(out + (size_t)k * b->os, m, box_div(s, o, n, fw));
    }
    _mm256_storeu_ps(b->sums + c, s);
}

/* Make every output row whose inputs are among the first `avail` rows. */
static void colbox_run(colbox *b, int avail)
{
    int hw = imt__box_half(b->fw);
    int o1 = avail >= b->n ? b->n : avail - hw + 1;
    int o0 = b->next;
    if (o1 <= o0) return;
    int c = 0;
    for (; c + 64 <= b->w; c += 64) colbox_block64(b, c, o0, o1, b->k);
    for (; c < b->w; c += 8) colbox_block8(b, c, o0, o1, b->k);
    if (b->at)
        while (b->k < 64 && b->at[b->k] < o1) b->k++;
    b->next = o1;
}

/* The four passes as one stream down the image, so that each pass reads
 * rows the previous one has just written (cache-warm): a strip of rows
 * through pass 1 rows, the column box over the rows now complete, then
 * pass 2 rows over each complete strip of pass 1 columns. */
static void avx2_downsample(const imt__pdq_job *j)
{
    size_t cols = (size_t)j->cols;
    int rows = j->rows;
    float *tin = j->strip, *tout = j->strip + cols * IMT__PDQ_STRIP_LANES;
    float *sums = tout + cols * IMT__PDQ_STRIP_LANES;
    colbox c1 = {j->b2, cols, j->cols, rows, j->win_cols, j->b1, cols, NULL, sums, 0, 0};
    int p2 = 0; /* next strip of pass 2 rows */
    for (int r0 = 0; r0 < rows; r0 += G) {
        strip_load(j->b1, cols, rows, r0, j->cols, tin);
        strip_box(tin, tout, j->cols, j->win_rows);
        strip_store(tout, j->cols, j->win_rows, j->b2, cols, rows, r0);
        colbox_run(&c1, r0 + G < rows ? r0 + G : rows);
        for (; p2 < rows && (c1.next >= p2 + G || c1.next == rows); p2 += G) {
            strip_load(j->b1, cols, rows, p2, j->cols, tin);
            strip_box(tin, tout, j->cols, j->win_rows);
            strip_store_sampled(tout, j->cols, j->win_rows, j->col_at, j->compact, rows, p2);
        }
    }
    colbox c2 = {j->compact, 64, 64, rows, j->win_cols, j->out64, 64, j->row_at, sums, 0, 0};
    colbox_run(&c2, rows);
}

/* ---- DCT and quality ------------------------------------------------------ */

static void avx2_dct(const float *a, const float *d, const float *dt, float *b)
{
    _Alignas(32) float t[16 * 64];
    for (int i = 0; i < 16; i++) {
        __m256 s[8];
        for (int v = 0; v < 8; v++) s[v] = _mm256_setzero_ps();
        for (int k = 0; k < 64; k++) {
            __m256 dk = _mm256_set1_ps(d[i * 64 + k]);
            for (int v = 0; v < 8; v++)
                s[v] = _mm256_add_ps(s[v], _mm256_mul_ps(dk, _mm256_load_ps(a + k * 64 + 8 * v)));
        }
        for (int v = 0; v < 8; v++) _mm256_store_ps(t + i * 64 + 8 * v, s[v]);
    }
    for (int i = 0; i < 16; i += 4) {
        __m256 s[8];
        for (int v = 0; v < 8; v++) s[v] = _mm256_setzero_ps();
        for (int k = 0; k < 64; k++) {
            __m256 d0 = _mm256_load_ps(dt + k * 16), d1 = _mm256_load_ps(dt + k * 16 + 8);
            for (int ii = 0; ii < 4; ii++) {
                __m256 tk = _mm256_set1_ps(t[(i + ii) * 64 + k]);
                s[2 * ii] = _mm256_add_ps(s[2 * ii], _mm256_mul_ps(tk, d0));
                s[2 * ii + 1] = _mm256_add_ps(s[2 * ii + 1], _mm256_mul_ps(tk, d1));
            }
        }
        for (int ii = 0; ii < 4; ii++) {
            _mm256_store_ps(b + (i + ii) * 16, s[2 * ii]);
            _mm256_store_ps(b + (i + ii) * 16 + 8, s[2 * ii + 1]);
        }
    }
}

static inline __m256i grad(__m256 u, __m256 v)
{
    const __m256 k100 = _mm256_set1_ps(100.0f), k255 = _mm256_set1_ps(255.0f);
    __m256 q = _mm256_div_ps(_mm256_mul_ps(_mm256_sub_ps(u, v), k100), k255);
    return _mm256_abs_epi32(_mm256_cvttps_epi32(q));
}

static int avx2_quality(const float *a)
{
    __m256i acc = _mm256_setzero_si256();
    for (int i = 0; i < 63; i++)
        for (int j = 0; j < 64; j += 8)
            acc = _mm256_add_epi32(acc, grad(_mm256_load_ps(a + i * 64 + j),
                                             _mm256_load_ps(a + (i + 1) * 64 + j)));
    __m256i m7 = lane_mask(7);
    for (int i = 0; i < 64; i++) {
        const float *p = a + i * 64;
        for (int j = 0; j < 56; j += 8)
            acc = _mm256_add_epi32(acc, grad(_mm256_load_ps(p + j), _mm256_loadu_ps(p + j + 1)));
        __m256i g = grad(_mm256_load_ps(p + 56), _mm256_maskload_ps(p + 57, m7));
        acc = _mm256_add_epi32(acc, _mm256_and_si256(g, m7));
    }
    __m128i x = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    x = _mm_add_epi32(x, _mm_shuffle_epi32(x, 0x4E));
    x = _mm_add_epi32(x, _mm_shuffle_epi32(x, 0xB1));
    int q = _mm_cvtsi128_si32(x) / 90;
    return q > 100 ? 100 : q;
}

const imt__pdq_kernels imt__pdq_avx2 = {"avx2", avx2_downsample, avx2_dct, avx2_quality};

#endif
