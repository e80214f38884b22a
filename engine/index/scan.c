/* engine/index/scan.c -- the distance kernels' tables for common.h's
 * dispatch (the kernels: scan_portable.c, scan_avx2.c, scan_avx512.c). */
#include "index.h"

/* ---- the dispatch (common.h): one table per level --------------------- */

static const idx_kernels k_portable = {"portable", idx_scan_portable, idx_dist_portable};
#if defined(__x86_64__)
static const idx_kernels k_avx2 = {"avx2", idx_scan_avx2, idx_dist_avx2};
/* the verify step has no AVX-512 kernel: scalar popcnt is as fast there */
static const idx_kernels k_avx512 = {"avx512-vpopcntdq", idx_scan_avx512, idx_dist_avx2};
#endif

const idx_kernels *idx_kernels_for(imt_simd level)
{
#if defined(__x86_64__)
    if (level >= IMT_SIMD_AVX512) return &k_avx512;
    if (level >= IMT_SIMD_AVX2) return &k_avx2;
#else
    (void)level;
#endif
    return &k_portable;
}

void idx_cursor_use_kernels(imt_cursor *c, const idx_kernels *k)
{
    c->kern = k ? k : idx_kernels_for(imt__simd_level());
}

idx_scan_fn idx_scan_impl(void) { return idx_kernels_for(imt__simd_level())->scan; }

idx_dist_fn idx_dist_impl(void) { return idx_kernels_for(imt__simd_level())->dist; }
