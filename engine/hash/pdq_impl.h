/* engine/hash/pdq_impl.h -- private to engine/hash/pdq*.c: the kernels the
 * PDQ stage dispatches to (portable in pdq.c, SIMD in pdq_avx2.c), and the
 * box-filter geometry they share.
 *
 * Every kernel must give results bit-identical to the reference C++
 * (facebook/ThreatExchange pdq/cpp): the same float operations in the same
 * order for every output value, no FMA (the SIMD files are built without
 * -mfma and with -ffp-contract=off of their own, besides the global one,
 * and use explicit multiply then add), real division wherever the
 * reference divides. The one licence taken: x / d and x * (1/d) are the
 * same correctly rounded value when d is a power of two, so such divisions
 * may be multiplications. */
#ifndef IMT_PDQ_IMPL_H
#define IMT_PDQ_IMPL_H

#include "hash.h"

/* One image's downsampling job: the two Jarosz passes (box along rows,
 * then along columns, twice) and the 64x64 point sampling.
 *
 *   pass 1 rows:    b1 -> b2            every value
 *   pass 1 columns: b2 -> b1            every value
 *   pass 2 rows:    b1 -> compact       running sums everywhere, but only
 *                                       the 64 sampled columns divided out
 *   pass 2 columns: compact -> out64    only the 64 sampled rows divided out
 *
 * Skipping the unsampled outputs of pass 2 is exact: a box output depends
 * on its running sum, and the running sums are still computed in full. */
typedef struct imt__pdq_job {
    float *b1;        /* rows x cols, the luma; overwritten */
    float *b2;        /* rows x cols scratch */
    float *compact;   /* rows x 64 scratch: pass 2 rows at the sampled columns */
    float *strip;     /* IMT__PDQ_STRIP_FLOATS(cols) scratch, 64-byte aligned */
    float *out64;     /* 64 x 64 result (the reference's buffer64x64) */
    int rows, cols;
    int win_rows;     /* window of the boxes along rows (from cols) */
    int win_cols;     /* window of the boxes along columns (from rows) */
    const int *row_at; /* 64 sampled row indices, non-decreasing */
    const int *col_at; /* 64 sampled column indices, non-decreasing */
} imt__pdq_job;

/* Scratch a kernel may use: two cols x 64 float planes (strips of rows
 * transposed), then a row of cols + 64 floats (running sums). */
#define IMT__PDQ_STRIP_LANES 64
#define IMT__PDQ_STRIP_FLOATS(cols) \
    (((size_t)(cols) + 64) * (IMT__PDQ_STRIP_LANES * 2 + 1))

typedef struct imt__pdq_kernels {
    const char *name;
    void (*downsample)(const imt__pdq_job *job);
    /* The reference's dct64To16: b16 = D a Dt, d is D (16 x 64, row-major),
     * dt its transpose (64 x 16). */
    void (*dct)(const float *a64, const float *d, const float *dt, float *b16);
    /* pdqImageDomainQualityMetric. */
    int (*quality)(const float *a64);
} imt__pdq_kernels;

extern const imt__pdq_kernels imt__pdq_portable;
#if defined(__x86_64__) || defined(__i386__)
extern const imt__pdq_kernels imt__pdq_avx2;
#define IMT__PDQ_HAVE_X86 1
#endif

/* The dispatch (common.h, imt_simd): the best kernels at or below a level,
 * and those for this process's level (IMT_FORCE_PORTABLE=1: portable). A
 * context takes them when created; tests and benches may make a context
 * use others (NULL: back to the process's choice). Kernels for an ISA this
 * CPU lacks must not be chosen. */
const imt__pdq_kernels *imt__pdq_kernels_for(imt_simd level);
const imt__pdq_kernels *imt__pdq_active_kernels(void);
void imt__pdq_ctx_use_kernels(imt_pdq_ctx *c, const imt__pdq_kernels *k);
const imt__pdq_kernels *imt__pdq_ctx_kernels(const imt_pdq_ctx *c);

/* ---- box geometry ------------------------------------------------------
 * The reference's box1DFloat over n values with window fw writes output o
 * after adding input o + hw - 1 (hw = (fw + 2) / 2) and, from output
 * fw - hw + 1 on, subtracting input o - (fw - hw + 1); the sum is divided
 * by the number of inputs in the window, imt__box_count(). */
static inline int imt__box_half(int fw) { return (fw + 2) / 2; }

static inline int imt__box_count(int o, int n, int fw)
{
    int hw = imt__box_half(fw);
    if (o < fw - hw + 1) return hw + o;
    if (o < n - hw + 1) return fw;
    return fw + n - hw - o;
}

/* Non-zero when d is a power of two, so that x / d == x * (1.0f / d). */
static inline int imt__pow2(int d) { return d > 0 && (d & (d - 1)) == 0; }

#endif
