/* engine/index/scan.c -- the distance kernels' tables for common.h's
 * dispatch (the kernels: scan_portable.c, scan_avx2.c, scan_avx512.c). */
#include "index.h"

/* ---- the dispatch (common.h): one table per level --------------------- */

static const imt__idx_kernels k_portable = {"portable", imt__idx_scan_portable, imt__idx_dist_portable};
#if defined(__x86_64__)
static const imt__idx_kernels k_avx2 = {"avx2", imt__idx_scan_avx2, imt__idx_dist_avx2};
/* the verify step has no AVX-512 kernel: scalar popcnt is as fast there */
static const imt__idx_kernels k_avx512 = {"avx512-vpopcntdq", imt__idx_scan_avx512, imt__idx_dist_avx2};
#endif

const imt__idx_kernels *imt__idx_kernels_for(imt_simd level)
{
#if defined(__x86_64__)
    if (level >= IMT_SIMD_AVX512) return &k_avx512;
    if (level >= IMT_SIMD_AVX2) return &k_avx2;
#else
    (void)level;
#endif
    return &k_portable;
}

void imt__idx_cursor_use_kernels(imt_cursor *c, const imt__idx_kernels *k)
{
    c->kern = k ? k : imt__idx_kernels_for(imt__simd_level());
}

imt__idx_scan_fn imt__idx_scan_impl(void) { return imt__idx_kernels_for(imt__simd_level())->scan; }

imt__idx_dist_fn imt__idx_dist_impl(void) { return imt__idx_kernels_for(imt__simd_level())->dist; }
