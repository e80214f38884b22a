/* bench/bench_pdq.c -- the PDQ hash stage (float luma -> hash + quality),
 * portable kernels against the SIMD kernels this CPU gets, per image size,
 * with and without the 7 dihedral variants. The baseline (portable) is
 * measured in the same run; the ratio is portable time / SIMD time.
 *
 * Usage: bench_pdq [milliseconds per measurement, default 300]
 * The luma is refreshed from a pristine copy before every call (the stage
 * overwrites it); only the call itself is timed. */
#define _POSIX_C_SOURCE 200809L
#include "hash/pdq_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A photo-like luma: smooth gradients, a few edges, mild noise. */
static void make_luma(float *p, int rows, int cols)
{
    uint32_t s = 12345u;
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) {
            s = s * 1664525u + 1013904223u;
            float v = 40.0f + 120.0f * (float)(i + 2 * j) / (float)(rows + 2 * cols);
            if (((i / 37) ^ (j / 23)) & 1) v += 60.0f;
            v += (float)(s >> 28);
            p[(size_t)i * cols + j] = v;
        }
}

/* Milliseconds per call: the best average over batches of 10 calls,
 * batches repeated for about budget_ms (the machine is shared, so the
 * best batch is the figure least disturbed by other work). */
static double measure(imt_pdq_ctx *c, const float *src, float *work, int rows, int cols,
                      int dihedral, double budget_ms)
{
    size_t n = (size_t)rows * cols;
    imt_pdq h[IMT_DIH__COUNT];
    int q;
    double best = 1e30, start = now_s();
    int batches = 0;
    while ((now_s() - start) * 1e3 < budget_ms || batches < 3) {
        double spent = 0;
        for (int i = 0; i < 10; i++) {
            memcpy(work, src, n * sizeof *work);
            double t0 = now_s();
            if (imt__pdq_hash_luma(c, work, rows, cols, dihedral, h, &q) != IMT_OK) {
                fprintf(stderr, "hash failed\n");
                exit(1);
            }
            spent += now_s() - t0;
        }
        if (spent / 10 < best) best = spent / 10;
        batches++;
    }
    return best * 1e3;
}

int main(int argc, char **argv)
{
    double budget = argc > 1 ? atof(argv[1]) : 300.0;
    static const int sizes[][2] = {{512, 512}, {64, 64}, {128, 128}, {256, 256},
                                   {375, 500}, {500, 375}, {1024, 768}};
    imt_pdq_ctx *c;
    if (imt__pdq_ctx_create(&c) != IMT_OK) return 1;
    const imt__pdq_kernels *simd = imt__pdq_active_kernels();
    printf("bench_pdq: hash stage, ms per image (best batch of 10); portable vs %s\n", simd->name);
    printf("%-10s %-4s %10s %10s %8s\n", "rows x cols", "dih", "portable", simd->name, "ratio");
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int rows = sizes[s][0], cols = sizes[s][1];
        size_t n = (size_t)rows * cols;
        float *src = malloc(n * sizeof *src), *work = malloc(n * sizeof *work);
        if (!src || !work) return 1;
        make_luma(src, rows, cols);
        for (int dih = 0; dih < 2; dih++) {
            imt__pdq_ctx_use_kernels(c, &imt__pdq_portable);
            double tp = measure(c, src, work, rows, cols, dih, budget);
            imt__pdq_ctx_use_kernels(c, simd);
            double ts = measure(c, src, work, rows, cols, dih, budget);
            char dims[32];
            snprintf(dims, sizeof dims, "%dx%d", rows, cols);
            printf("%-10s %-4s %10.4f %10.4f %7.2fx\n", dims, dih ? "yes" : "no", tp, ts,
                   tp / ts);
        }
        free(src);
        free(work);
    }
    imt__pdq_ctx_free(c);
    return 0;
}
