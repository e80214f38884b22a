/* engine/hash/pdq.c -- the PDQ hash stage: float luma -> 256-bit hash,
 * quality and, on request, the 8 dihedral hashes.
 *
 * Bit-identical to the reference C++ (facebook/ThreatExchange pdq/cpp,
 * hashing/pdqhashing.cpp and downscaling/downscaling.cpp) given the same
 * luma. This file holds the dispatch, everything after the 64x64
 * downsample that is cheap (median, bits, dihedral variants) and the
 * portable kernels; pdq_avx2.c holds the SIMD kernels (used on AVX-512
 * machines too).
 * pdq_impl.h states the exactness rules every kernel follows. */
#include "pdq_impl.h"

#include <math.h>
#include <string.h>

#define PDQ_MIN_DIM 5
#define PDQ_ALIGN 64

struct imt_pdq_ctx {
    const imt__pdq_kernels *k;
    void *work_raw;     /* b2 + compact + strip, one allocation */
    size_t work_floats; /* capacity in floats, after alignment */
    float *work;        /* work_raw aligned to PDQ_ALIGN */
    _Alignas(PDQ_ALIGN) float out64[64 * 64];
    _Alignas(PDQ_ALIGN) float b16[16 * 16];
    _Alignas(PDQ_ALIGN) float var[16 * 16];
    _Alignas(PDQ_ALIGN) float d[16 * 64];  /* the reference's dct_matrix_64 */
    _Alignas(PDQ_ALIGN) float dt[64 * 16]; /* its transpose */
    int row_at[64], col_at[64];
};

/* ---- dispatch ----------------------------------------------------------
 * common.h's one dispatch: the best table at or below a SIMD level (the
 * AVX2 kernels serve AVX-512 machines too). */

const imt__pdq_kernels *imt__pdq_kernels_for(imt_simd level)
{
#ifdef IMT__PDQ_HAVE_X86
    if (level >= IMT_SIMD_AVX2) return &imt__pdq_avx2;
#else
    (void)level;
#endif
    return &imt__pdq_portable;
}

const imt__pdq_kernels *imt__pdq_active_kernels(void)
{
    return imt__pdq_kernels_for(imt__simd_level());
}

void imt__pdq_ctx_use_kernels(imt_pdq_ctx *c, const imt__pdq_kernels *k)
{
    c->k = k ? k : imt__pdq_active_kernels();
}

const imt__pdq_kernels *imt__pdq_ctx_kernels(const imt_pdq_ctx *c) { return c->k; }

/* ---- context ----------------------------------------------------------- */

/* The DCT matrix exactly as the reference builds it: the scale factor is a
 * float, the product and cosine are taken in double, the result is stored
 * as float. */
static void build_dct(float *d, float *dt)
{
    const double pi = 3.14159265358979323846;
    const float scale = (float)sqrt(2.0 / 64.0);
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 64; j++) {
            double a = (pi / 2.0 / 64.0) * (double)(i + 1) * (double)(2 * j + 1);
            float v = (float)((double)scale * cos(a));
            d[i * 64 + j] = v;
            dt[j * 16 + i] = v;
        }
}

imt_err imt__pdq_ctx_create(imt_pdq_ctx **out)
{
    imt_err err = IMT_OK;
    imt_pdq_ctx *c = NULL;
    if (!out) return IMT_E_INVALID;
    *out = NULL;
    /* The struct holds _Alignas members: over-allocate and align by hand,
     * since the allocation hooks promise only malloc's alignment. */
    void *raw = imt__calloc(1, sizeof *c + PDQ_ALIGN + sizeof(void *));
    if (!raw) {
        err = IMT_E_NOMEM;
        goto cleanup;
    }
    uintptr_t p = ((uintptr_t)raw + sizeof(void *) + PDQ_ALIGN - 1) &
                  ~(uintptr_t)(PDQ_ALIGN - 1);
    c = (imt_pdq_ctx *)p;
    ((void **)c)[-1] = raw;
    c->k = imt__pdq_active_kernels();
    build_dct(c->d, c->dt);
    *out = c;
cleanup:
    return err;
}

void imt__pdq_ctx_free(imt_pdq_ctx *c)
{
    if (!c) return;
    imt__free(c->work_raw);
    imt__free(((void **)c)[-1]);
}

/* Make room for n floats of scratch, 64-byte aligned. */
static imt_err reserve(imt_pdq_ctx *c, size_t n)
{
    if (n <= c->work_floats) return IMT_OK;
    size_t bytes;
    if (!imt__mul_ok(n, sizeof(float), &bytes) || bytes > SIZE_MAX - PDQ_ALIGN)
        return IMT_E_NOMEM;
    void *raw = imt__malloc(bytes + PDQ_ALIGN);
    if (!raw) return IMT_E_NOMEM;
    imt__free(c->work_raw);
    c->work_raw = raw;
    c->work = (float *)(((uintptr_t)raw + PDQ_ALIGN - 1) & ~(uintptr_t)(PDQ_ALIGN - 1));
    c->work_floats = n;
    return IMT_OK;
}

/* ---- portable kernels --------------------------------------------------- */

/* The reference's box1DFloat along one contiguous row, every output. */
static void box_row_full(const float *in, float *out, int n, int fw)
{
    int hw = imt__box_half(fw);
    int ri = 0, li = 0, oi = 0, cw = 0;
    float sum = 0.0f;
    for (int i = 0; i < hw - 1; i++) {
        sum += in[ri++];
        cw++;
    }
    for (int i = 0; i < fw - hw + 1; i++) {
        sum += in[ri++];
        cw++;
        out[oi++] = sum / (float)cw;
    }
    for (int i = 0; i < n - fw; i++) {
        sum += in[ri++];
        sum -= in[li++];
        out[oi++] = sum / (float)cw;
    }
    for (int i = 0; i < hw - 1; i++) {
        sum -= in[li++];
        cw--;
        out[oi++] = sum / (float)cw;
    }
}

/* The same running sum, divided out only at the 64 positions at[]
 * (non-decreasing), written to out[0..63]. */
static void box_row_sampled(const float *in, int n, int fw, const int *at, float *out)
{
    int hw = imt__box_half(fw);
    int ri = 0, li = 0, oi = 0, cw = 0, k = 0;
    float sum = 0.0f;
    for (int i = 0; i < hw - 1; i++) {
        sum += in[ri++];
        cw++;
    }
    for (int i = 0; i < fw - hw + 1; i++, oi++) {
        sum += in[ri++];
        cw++;
        for (; k < 64 && at[k] == oi; k++) out[k] = sum / (float)cw;
    }
    for (int i = 0; i < n - fw; i++, oi++) {
        sum += in[ri++];
        sum -= in[li++];
        for (; k < 64 && at[k] == oi; k++) out[k] = sum / (float)cw;
    }
    for (int i = 0; i < hw - 1; i++, oi++) {
        sum -= in[li++];
        cw--;
        for (; k < 64 && at[k] == oi; k++) out[k] = sum / (float)cw;
    }
}

static void vec_add(float *s, const float *x, int w)
{
    for (int j = 0; j < w; j++) s[j] += x[j];
}
static void vec_sub(float *s, const float *x, int w)
{
    for (int j = 0; j < w; j++) s[j] -= x[j];
}
static void vec_div(float *o, const float *s, float d, int w)
{
    for (int j = 0; j < w; j++) o[j] = s[j] / d;
}

/* The reference's box1DFloat down every column of a w-wide, n-tall matrix
 * (row stride is), run row by row with one running sum per column, which
 * keeps each column's operations in the reference's order. With at ==
 * NULL every output row r goes to out + r * os; else only the rows at[k]
 * go to out + k * os. */
static void box_cols(const float *in, size_t is, int w, int n, int fw, float *sums,
                     float *out, size_t os, const int *at)
{
    int hw = imt__box_half(fw);
    int ri = 0, li = 0, oi = 0, k = 0;
    memset(sums, 0, (size_t)w * sizeof *sums);
    for (int i = 0; i < hw - 1; i++) vec_add(sums, in + (size_t)ri++ * is, w);
    for (int t = 0; t < n; t++, oi++) {
        if (ri < n) vec_add(sums, in + (size_t)ri++ * is, w);
        if (oi >= fw - hw + 1) vec_sub(sums, in + (size_t)li++ * is, w);
        float d = (float)imt__box_count(oi, n, fw);
        if (!at)
            vec_div(out + (size_t)oi * os, sums, d, w);
        else
            for (; k < 64 && at[k] == oi; k++) vec_div(out + (size_t)k * os, sums, d, w);
    }
}

static void portable_downsample(const imt__pdq_job *j)
{
    size_t cols = (size_t)j->cols;
    float *sums = j->strip;
    for (int r = 0; r < j->rows; r++)
        box_row_full(j->b1 + r * cols, j->b2 + r * cols, j->cols, j->win_rows);
    box_cols(j->b2, cols, j->cols, j->rows, j->win_cols, sums, j->b1, cols, NULL);
    for (int r = 0; r < j->rows; r++)
        box_row_sampled(j->b1 + r * cols, j->cols, j->win_rows, j->col_at,
                        j->compact + (size_t)r * 64);
    box_cols(j->compact, 64, 64, j->rows, j->win_cols, sums, j->out64, 64, j->row_at);
}

/* dct64To16: T = D A, then B = T Dt, each sum accumulated in k order. */
static void portable_dct(const float *a, const float *d, const float *dt, float *b)
{
    float t[16 * 64];
    (void)dt;
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 64; j++) {
            float s = 0.0f;
            for (int k = 0; k < 64; k++) s += d[i * 64 + k] * a[k * 64 + j];
            t[i * 64 + j] = s;
        }
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) {
            float s = 0.0f;
            for (int k = 0; k < 64; k++) s += t[i * 64 + k] * d[j * 64 + k];
            b[i * 16 + j] = s;
        }
}

/* pdqImageDomainQualityMetric. The luma is 0..255, so every d is small and
 * the conversions to int are defined. */
static int portable_quality(const float *a)
{
    int sum = 0;
    for (int i = 0; i < 63; i++)
        for (int j = 0; j < 64; j++) {
            int d = (int)(((a[i * 64 + j] - a[(i + 1) * 64 + j]) * 100.0f) / 255.0f);
            sum += d < 0 ? -d : d;
        }
    for (int i = 0; i < 64; i++)
        for (int j = 0; j < 63; j++) {
            int d = (int)(((a[i * 64 + j] - a[i * 64 + j + 1]) * 100.0f) / 255.0f);
            sum += d < 0 ? -d : d;
        }
    int q = sum / 90;
    return q > 100 ? 100 : q;
}

const imt__pdq_kernels imt__pdq_portable = {"portable", portable_downsample,
                                            portable_dct, portable_quality};

/* ---- median, bits, dihedral variants ----------------------------------- */

/* Torben Mogensen's median, as the reference's torben.cpp computes it (it
 * returns the (n+1)/2-th smallest value). */
static float torben(const float *m, int n)
{
    float min = m[0], max = m[0];
    for (int i = 1; i < n; i++) {
        if (m[i] < min) min = m[i];
        if (m[i] > max) max = m[i];
    }
    int less, greater, equal;
    float guess, maxlt, mingt;
    for (;;) {
        guess = (min + max) / 2;
        less = greater = equal = 0;
        maxlt = min;
        mingt = max;
        for (int i = 0; i < n; i++) {
            if (m[i] < guess) {
                less++;
                if (m[i] > maxlt) maxlt = m[i];
            } else if (m[i] > guess) {
                greater++;
                if (m[i] < mingt) mingt = m[i];
            } else {
                equal++;
            }
        }
        if (less <= (n + 1) / 2 && greater <= (n + 1) / 2) break;
        if (less > greater)
            max = maxlt;
        else
            min = mingt;
    }
    if (less >= (n + 1) / 2) return maxlt;
    if (less + equal >= (n + 1) / 2) return guess;
    return mingt;
}

/* Bit k = i * 16 + j of the reference's Hash256 is set when v[k] > median;
 * imt_pdq stores bit k in bytes[31 - k / 8], bit k % 8. */
static void to_bits(const float *v, float median, imt_pdq *h)
{
    for (int byte = 0; byte < 32; byte++) {
        const float *p = v + 8 * byte;
        unsigned x = 0;
        for (int b = 0; b < 8; b++) x |= (unsigned)(p[b] > median) << b;
        h->bytes[31 - byte] = (uint8_t)x;
    }
}

/* The reference's dct16OriginalTo* functions: variant v of the 16x16 DCT
 * negates the coefficients of one parity pattern and, for the diagonal
 * ones, transposes. neg: 0 none, 1 i even, 2 j even, 3 i + j odd. */
static const struct {
    unsigned char neg, transpose;
} dih[IMT_DIH__COUNT] = {
    {0, 0}, /* original */
    {2, 1}, /* rotate90: B[j][i] = j odd ? A[i][j] : -A[i][j] */
    {3, 0}, /* rotate180 */
    {1, 1}, /* rotate270: B[j][i] = i odd ? A[i][j] : -A[i][j] */
    {1, 0}, /* flipx */
    {2, 0}, /* flipy */
    {0, 1}, /* flip-plus1 */
    {3, 1}, /* flip-minus1 */
};

static void variant(const float *a, int v, float *b)
{
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) {
            int neg;
            switch (dih[v].neg) {
            case 1: neg = !(i & 1); break;
            case 2: neg = !(j & 1); break;
            case 3: neg = (i + j) & 1; break;
            default: neg = 0; break;
            }
            float x = neg ? -a[i * 16 + j] : a[i * 16 + j];
            if (dih[v].transpose)
                b[j * 16 + i] = x;
            else
                b[i * 16 + j] = x;
        }
}

static void output_bits(imt_pdq_ctx *c, int dihedral, imt_pdq *out)
{
    to_bits(c->b16, torben(c->b16, 256), &out[0]);
    if (!dihedral) return;
    /* A variant's median depends only on the multiset of its values, which
     * transposition keeps: the transposed variants reuse the medians of the
     * untransposed ones with the same negation pattern. */
    float med[4];
    med[0] = torben(c->b16, 256);
    for (int v = 1; v < IMT_DIH__COUNT; v++) {
        variant(c->b16, v, c->var);
        if (!dih[v].transpose) med[dih[v].neg] = torben(c->var, 256);
    }
    for (int v = 1; v < IMT_DIH__COUNT; v++) {
        variant(c->b16, v, c->var);
        to_bits(c->var, med[dih[v].neg], &out[v]);
    }
}

/* ---- the stage ----------------------------------------------------------- */

imt_err imt__pdq_hash_luma(imt_pdq_ctx *c, float *luma, int rows, int cols,
                           int dihedral, imt_pdq out[IMT_DIH__COUNT], int *quality)
{
    imt_err err = IMT_OK;
    if (!c || !luma || !out || !quality) return IMT_E_INVALID;
    *quality = 0;
    memset(out, 0, (dihedral ? IMT_DIH__COUNT : 1) * sizeof *out);
    if (rows < PDQ_MIN_DIM || cols < PDQ_MIN_DIM) {
        err = IMT_E_TOO_SMALL;
        goto cleanup;
    }

    if (rows == 64 && cols == 64 && dihedral != IMT__PDQ_DIH_REFERENCE) {
        /* The reference's pdqHash256FromFloatLuma takes a 64x64 input as
         * the downsample itself; its dihedral function always filters, so
         * its original-orientation hash of a 64x64 image is not the image's
         * hash (101 bits apart on libpng's badpal/test-palette-4.png: float
         * rounding in the running sums flips near-median coefficients). A
         * file's hash must not depend on whether its variants were asked
         * for (`hash` does not ask, `scan` does, and lists hold the plain
         * hash), so the variants are taken from the same buffer: variant t
         * of I is then the hash of T(I) up to DCT rounding, as the exact
         * geometry test shows. */
        memcpy(c->out64, luma, sizeof c->out64);
    } else {
        size_t plane, compact, need;
        if (!imt__mul_ok((size_t)rows, (size_t)cols, &plane) ||
            !imt__mul_ok((size_t)rows, 64, &compact)) {
            err = IMT_E_NOMEM;
            goto cleanup;
        }
        /* Parts: b2 padded to 16 floats (64 bytes), compact, strip. */
        if ((size_t)cols > SIZE_MAX / (IMT__PDQ_STRIP_LANES * 2 + 1) - 64 ||
            plane > SIZE_MAX - 15) {
            err = IMT_E_NOMEM;
            goto cleanup;
        }
        size_t strip = IMT__PDQ_STRIP_FLOATS(cols);
        plane = (plane + 15) & ~(size_t)15;
        need = plane + compact;
        if (need < plane || need > SIZE_MAX - strip) {
            err = IMT_E_NOMEM;
            goto cleanup;
        }
        need += strip;
        IMT_TRY(reserve(c, need));

        for (int k = 0; k < 64; k++) {
            c->row_at[k] = (int)(((k + 0.5) * rows) / 64);
            c->col_at[k] = (int)(((k + 0.5) * cols) / 64);
        }
        imt__pdq_job job;
        job.b1 = luma;
        job.b2 = c->work;
        job.compact = c->work + plane;
        job.strip = c->work + plane + compact;
        job.out64 = c->out64;
        job.rows = rows;
        job.cols = cols;
        /* computeJaroszFilterWindowSize(old, 64) = ceil(old / 128) */
        job.win_rows = (int)(((long long)cols + 127) / 128);
        job.win_cols = (int)(((long long)rows + 127) / 128);
        job.row_at = c->row_at;
        job.col_at = c->col_at;
        c->k->downsample(&job);
    }

    *quality = c->k->quality(c->out64);
    c->k->dct(c->out64, c->d, c->dt, c->b16);
    output_bits(c, dihedral != 0, out);
cleanup:
    return err;
}
