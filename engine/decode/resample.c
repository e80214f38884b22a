/* engine/decode/resample.c -- area (box) reduction of a streamed image.
 *
 * Contract: imt__area_begin() sizes an accumulator for a src_w x src_h image
 * reduced to dst_w x dst_h (each dst side <= its src side). Source pixel
 * (x, y) belongs to exactly one output cell, (x*dst_w/src_w, y*dst_h/src_h)
 * rounded down, so cells hold floor or ceil(src/dst) pixels per axis and a
 * pixel's contribution does not depend on the order in which rows (or
 * Adam7 pass rows) arrive. Values are added as fixed-point integers
 * (IMT_AREA_ONE per unit of luma); imt__area_finish() divides every cell by
 * the number of source pixels it covers, so pixels never added (a
 * truncated image) count as 0, black, as the reference fills them.
 * Memory: O(src_w + dst_w*dst_h), never the whole image.
 */
#include "decode.h"

#include <string.h>

void imt__area_free(imt_area *a)
{
    if (!a) return;
    imt__free(a->xbin);
    imt__free(a->acc);
    memset(a, 0, sizeof *a);
}

/* Grow *p to hold n elements of size sz; keeps the old block when big enough. */
static imt_err grow(void **p, size_t *cap, size_t n, size_t sz)
{
    size_t bytes;
    if (!imt__mul_ok(n, sz, &bytes)) return IMT_E_NOMEM;
    if (bytes <= *cap) return IMT_OK;
    void *q = imt__malloc(bytes);
    if (!q) return IMT_E_NOMEM;
    imt__free(*p);
    *p = q;
    *cap = bytes;
    return IMT_OK;
}

imt_err imt__area_begin(imt_area *a, uint32_t src_w, uint32_t src_h, int dst_w, int dst_h)
{
    imt_err err = IMT_OK;
    if (src_w == 0 || src_h == 0 || dst_w <= 0 || dst_h <= 0 ||
        (uint32_t)dst_w > src_w || (uint32_t)dst_h > src_h)
        return IMT_E_INVALID;
    IMT_TRY(grow((void **)&a->xbin, &a->xbin_cap, src_w, sizeof *a->xbin));
    size_t cells;
    if (!imt__mul_ok((size_t)dst_w, (size_t)dst_h, &cells)) return IMT_E_NOMEM;
    /* Largest cell: ceil(src/dst) per axis; its sum must fit in 64 bits at
     * 255 * IMT_AREA_ONE (< 2^24) per pixel. */
    uint64_t cw = ((uint64_t)src_w + (uint64_t)dst_w - 1) / (uint64_t)dst_w,
             ch = ((uint64_t)src_h + (uint64_t)dst_h - 1) / (uint64_t)dst_h;
    if (cw > (((uint64_t)1 << 40) - 1) / ch) return IMT_E_TOO_LARGE;
    IMT_TRY(grow((void **)&a->acc, &a->acc_cap, cells, sizeof *a->acc));
    a->src_w = src_w;
    a->src_h = src_h;
    a->dst_w = dst_w;
    a->dst_h = dst_h;
    for (uint32_t x = 0; x < src_w; x++)
        a->xbin[x] = (uint32_t)(((uint64_t)x * (uint64_t)dst_w) / src_w);
    memset(a->acc, 0, cells * sizeof *a->acc);
cleanup:
    return err;
}

void imt__area_add_row(imt_area *a, uint32_t y, uint32_t x0, uint32_t xstep,
                       const uint32_t *vals, uint32_t n)
{
    uint64_t *row = a->acc + (size_t)(((uint64_t)y * (uint64_t)a->dst_h) / a->src_h) *
                                 (size_t)a->dst_w;
    const uint32_t *bin = a->xbin + x0;
    if (xstep == 1) {
        for (uint32_t i = 0; i < n; i++) row[bin[i]] += vals[i];
    } else {
        for (uint32_t i = 0; i < n; i++) row[bin[(size_t)i * xstep]] += vals[i];
    }
}

/* Pixels of source axis [0, src) that land in output index i. */
static uint64_t bin_count(uint64_t i, uint64_t src, uint64_t dst)
{
    /* x lands in i iff i*src <= x*dst < (i+1)*src, i.e. x in
     * [ceil(i*src/dst), ceil((i+1)*src/dst)). */
    uint64_t lo = (i * src + dst - 1) / dst, hi = ((i + 1) * src + dst - 1) / dst;
    return hi - lo;
}

void imt__area_finish(imt_area *a, float *out)
{
    for (int y = 0; y < a->dst_h; y++) {
        uint64_t cy = bin_count((uint64_t)y, a->src_h, (uint64_t)a->dst_h);
        const uint64_t *row = a->acc + (size_t)y * (size_t)a->dst_w;
        float *o = out + (size_t)y * (size_t)a->dst_w;
        for (int x = 0; x < a->dst_w; x++) {
            uint64_t cx = bin_count((uint64_t)x, a->src_w, (uint64_t)a->dst_w);
            o[x] = (float)((double)row[x] / ((double)IMT_AREA_ONE * (double)(cx * cy)));
        }
    }
}
