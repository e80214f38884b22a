/* tests/test_hash.c -- the PDQ hash stage (engine/hash/pdq*.c).
 *
 *  - golden: hashes and quality of synthetic lumas (a formula below) equal
 *    tests/golden/pdq_synthetic.txt, produced by the reference C++ hasher
 *    (facebook/ThreatExchange pdq/cpp, pdqHash256FromFloatLuma and
 *    pdqDihedralHash256esFromFloatLuma) fed the same float lumas; every
 *    kernel set this CPU can run is checked;
 *  - the SIMD kernels equal the portable ones bit for bit on random lumas;
 *  - IMT_FORCE_PORTABLE=1 selects the portable kernels (child process);
 *  - the dihedral set finds exact rotations and flips of an image;
 *  - too small, flat, allocation failure, no allocation after warm-up. */
#include "hash/pdq_impl.h"
#include "testutil.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- synthetic lumas ------------------------------------------------------
 * Integer arithmetic and exactly specified float operations only (no libm),
 * so the values are the same on every IEEE machine. */
static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

static void synth(float *p, int rows, int cols, int pattern, uint32_t seed)
{
    uint32_t s = seed;
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) {
            float v;
            switch (pattern) {
            case 0: /* grey noise */
                v = (float)(lcg(&s) % 256);
                break;
            case 1: { /* RGB noise through the reference's luma weights */
                int r = (int)(lcg(&s) % 256), g = (int)(lcg(&s) % 256), b = (int)(lcg(&s) % 256);
                v = 0.299f * (float)r + 0.587f * (float)g + 0.114f * (float)b;
                break;
            }
            case 2: /* smooth quadratic bands */
                v = (float)(((i * i * 3 + j * j * 5 + i * j + (int)(seed % 97) * 64) >> 6) % 256);
                break;
            case 3: /* flat */
                v = (float)(seed % 256);
                break;
            case 4: /* diagonal gradient */
                v = (float)((i * 255) / rows + (j * 255) / cols) * 0.5f;
                break;
            case 6: { /* a smooth scene: gradient, two rectangles, a disc */
                int m = rows < cols ? rows : cols, di = i - (3 * rows) / 10, dj = j - (7 * cols) / 10;
                int base = 60 + (100 * i) / rows + (40 * j) / cols;
                if (i >= rows / 5 && i < rows / 2 && j >= cols / 6 && j < cols / 3) base += 80;
                if (i >= (3 * rows) / 5 && i < (9 * rows) / 10 && j >= cols / 2 && j < (4 * cols) / 5)
                    base -= 50;
                if (36 * (di * di + dj * dj) < m * m) base += 60;
                v = (float)base;
                break;
            }
            default: { /* photo-like: gradient, blocks, mild noise */
                int base = 40 + (120 * (i + 2 * j)) / (rows + 2 * cols);
                if (((i / 37) ^ (j / 23)) & 1) base += 60;
                v = (float)base + (float)(lcg(&s) % 16) * 0.25f;
                break;
            }
            }
            p[(size_t)i * cols + j] = v;
        }
}

static float *synth_new(int rows, int cols, int pattern, uint32_t seed)
{
    float *p = malloc((size_t)rows * (size_t)cols * sizeof *p);
    REQUIRE(p != NULL);
    synth(p, rows, cols, pattern, seed);
    return p;
}

/* Hash a copy (the stage overwrites its input). */
static imt_err hash_copy(imt_pdq_ctx *c, const float *luma, int rows, int cols, int dih,
                         imt_pdq out[IMT_DIH__COUNT], int *quality)
{
    size_t n = (size_t)rows * (size_t)cols;
    float *w = malloc((n ? n : 1) * sizeof *w);
    REQUIRE(w != NULL);
    if (n) memcpy(w, luma, n * sizeof *w);
    imt_err e = imt__pdq_hash_luma(c, w, rows, cols, dih, out, quality);
    free(w);
    return e;
}

/* The kernel sets this CPU can run. */
static int kernel_sets(const imt__pdq_kernels *k[4])
{
    int n = 0;
    k[n++] = &imt__pdq_portable;
#ifdef IMT__PDQ_HAVE_X86
    if (imt__cpu_features() & IMT_CPU_AVX2) k[n++] = &imt__pdq_avx2;
#endif
    return n;
}

/* ---- golden values from the reference ------------------------------------- */

static int golden_lines;

static void test_golden(void)
{
    const char *path = IMT_SOURCE_DIR "/tests/golden/pdq_synthetic.txt";
    FILE *f = fopen(path, "r");
    REQUIRE(f != NULL);
    const imt__pdq_kernels *ks[4];
    int nk = kernel_sets(ks);
    imt_pdq_ctx *c;
    REQUIRE(imt__pdq_ctx_create(&c) == IMT_OK);
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        int rows, cols, pattern, dih, quality;
        unsigned seed;
        char hex[IMT_DIH__COUNT][IMT_PDQ_HEX_LEN + 1];
        int got = sscanf(line, "%d %d %d %u %d %d %64s %64s %64s %64s %64s %64s %64s %64s", &rows,
                         &cols, &pattern, &seed, &dih, &quality, hex[0], hex[1], hex[2], hex[3],
                         hex[4], hex[5], hex[6], hex[7]);
        int nh = dih ? IMT_DIH__COUNT : 1;
        REQUIRE(got == 6 + nh);
        golden_lines++;
        float *luma = synth_new(rows, cols, pattern, seed);
        for (int k = 0; k < nk; k++) {
            imt__pdq_ctx_use_kernels(c, ks[k]);
            imt_pdq h[IMT_DIH__COUNT];
            int q = -1;
            /* dih 1 lines are the reference's dihedral function, which
             * filters a 64x64 input: its exact mode */
            CHECK(hash_copy(c, luma, rows, cols, dih ? IMT__PDQ_DIH_REFERENCE : 0, h, &q) ==
                  IMT_OK);
            CHECKF(q == quality, "%dx%d pattern %d (%s): quality %d, reference %d", rows, cols,
                   pattern, ks[k]->name, q, quality);
            for (int v = 0; v < nh; v++) {
                char mine[IMT_PDQ_HEX_LEN + 1];
                imt_pdq_to_hex(&h[v], mine);
                CHECKF(strcmp(mine, hex[v]) == 0, "%dx%d pattern %d seed %u dih %d (%s) %s: %s, reference %s",
                       rows, cols, pattern, seed, dih, ks[k]->name,
                       imt_dihedral_name((imt_dihedral)v), mine, hex[v]);
            }
        }
        free(luma);
    }
    fclose(f);
    imt__pdq_ctx_free(c);
    CHECK(golden_lines >= 30);
}

/* A file's hash and quality do not depend on whether the dihedral variants
 * were asked for (issue 9 item 11: libpng's badpal/test-palette-4.png, a
 * 64x64 palette image, hashed 101 bits apart in `hash` and `scan`). The
 * plain hash is checked against the reference in test_golden; here, with
 * the variants, out[0] and quality must be bit for bit the same, on 64x64
 * inputs too (the reference's dihedral function filters those: pattern 1,
 * non-integer RGB luma, and the test-palette-4 shape below give different
 * hashes there). The variants of a 64x64 input are checked against the
 * transformed images in test_dihedral_exact. */
static void test_dihedral_keeps_hash(void)
{
    imt_pdq_ctx *c;
    REQUIRE(imt__pdq_ctx_create(&c) == IMT_OK);
    const imt__pdq_kernels *ks[4];
    int nk = kernel_sets(ks);
    static const int shapes[][2] = {{64, 64}, {63, 64}, {64, 65}, {100, 64}, {512, 512}, {5, 7}};
    int differs_in_reference = 0;
    for (int k = 0; k < nk; k++) {
        imt__pdq_ctx_use_kernels(c, ks[k]);
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int pattern = 0; pattern <= 7; pattern++) {
                int rows = shapes[s][0], cols = shapes[s][1];
                float *luma = synth_new(rows, cols, pattern, 77u + (uint32_t)pattern);
                if (pattern == 7) { /* few colours, many equal coefficients */
                    for (int i = 0; i < rows * cols; i++)
                        luma[i] = 0.299f * (float)((i / 8) % 3 * 100) +
                                  0.587f * (float)((i / 64) % 2 * 200) + 0.114f * 37.0f;
                }
                imt_pdq h0[IMT_DIH__COUNT], h1[IMT_DIH__COUNT], hr[IMT_DIH__COUNT];
                int q0 = -1, q1 = -2, qr = -3;
                REQUIRE(hash_copy(c, luma, rows, cols, 0, h0, &q0) == IMT_OK);
                REQUIRE(hash_copy(c, luma, rows, cols, 1, h1, &q1) == IMT_OK);
                REQUIRE(hash_copy(c, luma, rows, cols, IMT__PDQ_DIH_REFERENCE, hr, &qr) == IMT_OK);
                CHECKF(memcmp(&h0[0], &h1[0], sizeof h0[0]) == 0 && q0 == q1,
                       "%dx%d pattern %d (%s): the hash changes with the dihedral variants "
                       "(distance %d, quality %d/%d)", rows, cols, pattern, ks[k]->name,
                       imt_pdq_distance(&h0[0], &h1[0]), q0, q1);
                if (rows != 64 || cols != 64)
                    CHECK(memcmp(h1, hr, sizeof h1) == 0 && q1 == qr);
                else if (memcmp(&h0[0], &hr[0], sizeof h0[0]) != 0)
                    differs_in_reference++;
                free(luma);
            }
    }
    /* the inputs include one where the reference's two functions disagree */
    CHECK(differs_in_reference > 0);
    imt__pdq_ctx_free(c);
}

/* ---- SIMD against portable ------------------------------------------------ */

static void test_simd_equals_portable(void)
{
    const imt__pdq_kernels *ks[4];
    int nk = kernel_sets(ks);
    if (nk == 1) {
        /* Nothing to compare. Under CI=true that is a failure: CI must run
         * on a CPU with the SIMD kernels, or SIMD = portable goes unchecked. */
        const char *ci = getenv("CI");
        CHECKF(!(ci && strcmp(ci, "true") == 0),
               "no SIMD kernels on this CPU: SIMD = portable not checked (CI=true)");
        fprintf(stderr, "test_hash: SKIP SIMD = portable: no SIMD kernels on this CPU\n");
        return;
    }
    imt_pdq_ctx *ref, *c;
    REQUIRE(imt__pdq_ctx_create(&ref) == IMT_OK);
    REQUIRE(imt__pdq_ctx_create(&c) == IMT_OK);
    imt__pdq_ctx_use_kernels(ref, &imt__pdq_portable);
    uint32_t s = 777;
    int compared = 0;
    for (int it = 0; it < 400; it++) {
        int rows, cols;
        switch (it % 4) {
        case 0: rows = 5 + (int)(lcg(&s) % 30); cols = 5 + (int)(lcg(&s) % 600); break;
        case 1: rows = 5 + (int)(lcg(&s) % 600); cols = 5 + (int)(lcg(&s) % 30); break;
        default: rows = 5 + (int)(lcg(&s) % 520); cols = 5 + (int)(lcg(&s) % 520); break;
        }
        if (it % 50 == 7) rows = cols = 64;
        if (it % 50 == 8) rows = cols = 512;
        if (it % 100 == 9) { rows = 1100; cols = 700; } /* windows 9 and 6: real divisions */
        float *luma = synth_new(rows, cols, (int)(lcg(&s) % 6), lcg(&s));
        int dih = it % 2;
        imt_pdq a[IMT_DIH__COUNT], b[IMT_DIH__COUNT];
        int qa, qb;
        REQUIRE(hash_copy(ref, luma, rows, cols, dih, a, &qa) == IMT_OK);
        for (int k = 1; k < nk; k++) {
            imt__pdq_ctx_use_kernels(c, ks[k]);
            REQUIRE(hash_copy(c, luma, rows, cols, dih, b, &qb) == IMT_OK);
            CHECKF(qa == qb, "%dx%d: quality %d portable, %d %s", rows, cols, qa, qb, ks[k]->name);
            CHECKF(memcmp(a, b, (dih ? IMT_DIH__COUNT : 1) * sizeof a[0]) == 0,
                   "%dx%d dih %d: %s differs from portable", rows, cols, dih, ks[k]->name);
            compared++;
        }
        free(luma);
    }
    imt__pdq_ctx_free(ref);
    imt__pdq_ctx_free(c);
    CHECK(compared >= 400);
}

/* IMT_FORCE_PORTABLE=1, set before the first use, selects the portable
 * kernels; checked in a child so this process keeps its own choice. */
static void test_force_portable(void)
{
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        setenv("IMT_FORCE_PORTABLE", "1", 1);
        int ok = imt__pdq_active_kernels() == &imt__pdq_portable;
        imt_pdq_ctx *c;
        ok = ok && imt__pdq_ctx_create(&c) == IMT_OK;
        ok = ok && imt__pdq_ctx_kernels(c) == &imt__pdq_portable;
        if (ok) imt__pdq_ctx_free(c);
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    /* the one dispatch: a level's table, the process's level, a new context */
    CHECK(imt__pdq_kernels_for(IMT_SIMD_PORTABLE) == &imt__pdq_portable);
    CHECK(imt__pdq_active_kernels() == imt__pdq_kernels_for(imt__simd_level()));
#ifdef IMT__PDQ_HAVE_X86
    CHECK(imt__pdq_kernels_for(IMT_SIMD_AVX2) == &imt__pdq_avx2);
    CHECK(imt__pdq_kernels_for(IMT_SIMD_AVX512) == &imt__pdq_avx2);
    CHECK((imt__simd_level() >= IMT_SIMD_AVX2) == !!(imt__cpu_features() & IMT_CPU_AVX2));
#endif
    imt_pdq_ctx *c;
    REQUIRE(imt__pdq_ctx_create(&c) == IMT_OK);
    CHECK(imt__pdq_ctx_kernels(c) == imt__pdq_active_kernels());
    imt__pdq_ctx_use_kernels(c, &imt__pdq_portable);
    CHECK(imt__pdq_ctx_kernels(c) == &imt__pdq_portable);
    imt__pdq_ctx_use_kernels(c, NULL);
    CHECK(imt__pdq_ctx_kernels(c) == imt__pdq_active_kernels());
    imt__pdq_ctx_free(c);
}

/* ---- dihedral --------------------------------------------------------------- */

/* dst = transform t of src (rows x cols); returns the new shape. The
 * transforms are named as the reference names its hashes: the hash of
 * transform t of an image is close to dihedral hash t of the image. */
static void transform(const float *src, int rows, int cols, int t, float *dst, int *orows,
                      int *ocols)
{
    int tr = t == IMT_DIH_ROTATE90 || t == IMT_DIH_ROTATE270 || t == IMT_DIH_FLIP_PLUS1 ||
             t == IMT_DIH_FLIP_MINUS1;
    *orows = tr ? cols : rows;
    *ocols = tr ? rows : cols;
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) {
            int y, x; /* destination */
            switch (t) {
            case IMT_DIH_ROTATE90: y = cols - 1 - j; x = i; break; /* counter-clockwise */
            case IMT_DIH_ROTATE180: y = rows - 1 - i; x = cols - 1 - j; break;
            case IMT_DIH_ROTATE270: y = j; x = rows - 1 - i; break;
            case IMT_DIH_FLIPX: y = rows - 1 - i; x = j; break;
            case IMT_DIH_FLIPY: y = i; x = cols - 1 - j; break;
            case IMT_DIH_FLIP_PLUS1: y = j; x = i; break;
            case IMT_DIH_FLIP_MINUS1: y = cols - 1 - j; x = rows - 1 - i; break;
            default: y = i; x = j; break;
            }
            dst[(size_t)y * *ocols + x] = src[(size_t)i * cols + j];
        }
}

/* Exact geometry: on a 64x64 image of integers the Jarosz filter is the
 * identity (windows of 1: every running sum is an exact integer) and the
 * sample points are the pixels, so the 64x64 buffer of T(I) is exactly T
 * applied to that of I, and hash(T(I)) differs from dihedral hash T of I
 * only through float rounding in the DCT: a mirrored column of the DCT
 * matrix equals the negated original only to an ulp, and the sums run in
 * the other order. Only coefficients within ~1e-6 (relative) of the median
 * can flip, so the distance is 0 or a bit or two; the bound asserted is 2. */
static void test_dihedral_exact(void)
{
    imt_pdq_ctx *c;
    REQUIRE(imt__pdq_ctx_create(&c) == IMT_OK);
    float tr[64 * 64];
    int worst = 0;
    for (int pattern = 0; pattern <= 6; pattern++) {
        if (pattern == 1 || pattern == 3 || pattern == 4) continue; /* non-integers, flat, ramp */
        for (uint32_t seed = 1; seed <= 3; seed++) {
            float *img = synth_new(64, 64, pattern, seed);
            imt_pdq set[IMT_DIH__COUNT], h[IMT_DIH__COUNT];
            int q, qt, r, k;
            REQUIRE(hash_copy(c, img, 64, 64, 1, set, &q) == IMT_OK);
            for (int t = 0; t < IMT_DIH__COUNT; t++) {
                transform(img, 64, 64, t, tr, &r, &k);
                REQUIRE(hash_copy(c, tr, 64, 64, 1, h, &qt) == IMT_OK);
                int d = imt_pdq_distance(&h[0], &set[t]);
                CHECKF(d <= 2, "64x64 pattern %d seed %u: %s at distance %d", pattern, seed,
                       imt_dihedral_name((imt_dihedral)t), d);
                CHECK(qt == q);
                if (d > worst) worst = d;
            }
            free(img);
        }
    }
    fprintf(stderr, "test_hash: dihedral, exact geometry: worst distance %d\n", worst);
    imt__pdq_ctx_free(c);
}

/* Resampled geometry: on other sizes the box windows are asymmetric (fw -
 * hw + 1 inputs before the output, hw - 1 after) and a sample point
 * (k + 0.5) * n / 64 mirrors to a point up to a pixel away, so the 64x64
 * buffer of T(I) is that of I shifted by up to about a pixel, and
 * coefficients near the median flip. That is not bounded by arithmetic,
 * so the bound is the one the system needs: a rotated or flipped copy
 * still matches its dihedral hash at IMT_PDQ_MATCH_DISTANCE (31), and the
 * right variant is the nearest of the 8. Asserted on a smooth scene at
 * sides of 256 and more (a pixel is at most 1/4 of a cell); measured worst
 * 28 there. Noise, near-Nyquist patterns and small sides (where a pixel is
 * most of a cell) break this and are not asserted: on some of the shared
 * test photos at 256x256 the reference's own dihedral hashes sit 40-100
 * bits from the hash of the rotated photo. */
static void test_dihedral_resampled(void)
{
    static const int shapes[][2] = {{256, 384}, {384, 256}, {512, 512}, {300, 300}, {640, 480}};
    imt_pdq_ctx *c;
    REQUIRE(imt__pdq_ctx_create(&c) == IMT_OK);
    int worst = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        int rows = shapes[si][0], cols = shapes[si][1];
        float *img = synth_new(rows, cols, 6, 0);
        float *tr = malloc((size_t)rows * cols * sizeof *tr);
        REQUIRE(tr != NULL);
        imt_pdq set[IMT_DIH__COUNT];
        int q;
        REQUIRE(hash_copy(c, img, rows, cols, 1, set, &q) == IMT_OK);
        CHECK(q >= IMT_PDQ_MIN_QUALITY);
        for (int t = 0; t < IMT_DIH__COUNT; t++) {
            int tr_rows, tr_cols, qt;
            transform(img, rows, cols, t, tr, &tr_rows, &tr_cols);
            imt_pdq h[IMT_DIH__COUNT];
            REQUIRE(hash_copy(c, tr, tr_rows, tr_cols, 0, h, &qt) == IMT_OK);
            int d = imt_pdq_distance(&h[0], &set[t]), nearest = 1;
            for (int u = 0; u < IMT_DIH__COUNT; u++)
                if (u != t && imt_pdq_distance(&h[0], &set[u]) <= d) nearest = 0;
            CHECKF(d <= IMT_PDQ_MATCH_DISTANCE && nearest,
                   "%dx%d: %s of the image at distance %d from its dihedral hash%s", rows, cols,
                   imt_dihedral_name((imt_dihedral)t), d, nearest ? "" : ", not the nearest");
            if (t == IMT_DIH_ORIGINAL) CHECK(d == 0);
            if (d > worst) worst = d;
        }
        free(tr);
        free(img);
    }
    fprintf(stderr, "test_hash: dihedral, resampled: worst distance %d\n", worst);
    imt__pdq_ctx_free(c);
}

/* ---- edges, quality, memory ------------------------------------------------ */

static void test_too_small(void)
{
    imt_pdq_ctx *c;
    REQUIRE(imt__pdq_ctx_create(&c) == IMT_OK);
    float *luma = synth_new(100, 100, 0, 1);
    static const int dims[][2] = {{4, 100}, {100, 4}, {4, 4}, {0, 0}, {1, 5}, {5, -3}};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
        imt_pdq h[IMT_DIH__COUNT];
        int q = 77;
        CHECK(imt__pdq_hash_luma(c, luma, dims[i][0], dims[i][1], 1, h, &q) == IMT_E_TOO_SMALL);
        CHECK(q == 0);
    }
    imt_pdq h[IMT_DIH__COUNT];
    int q;
    CHECK(hash_copy(c, luma, 5, 5, 0, h, &q) == IMT_OK); /* 5x5 is the minimum */
    CHECK(imt__pdq_hash_luma(NULL, luma, 10, 10, 0, h, &q) == IMT_E_INVALID);
    CHECK(imt__pdq_hash_luma(c, NULL, 10, 10, 0, h, &q) == IMT_E_INVALID);
    free(luma);
    imt__pdq_ctx_free(c);
    imt__pdq_ctx_free(NULL);
}

static void test_flat(void)
{
    const imt__pdq_kernels *ks[4];
    int nk = kernel_sets(ks);
    imt_pdq_ctx *c;
    REQUIRE(imt__pdq_ctx_create(&c) == IMT_OK);
    static const int shapes[][2] = {{512, 512}, {64, 64}, {5, 5}, {333, 77}};
    for (int k = 0; k < nk; k++) {
        imt__pdq_ctx_use_kernels(c, ks[k]);
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            float *luma = synth_new(shapes[s][0], shapes[s][1], 3, 200);
            imt_pdq h[IMT_DIH__COUNT];
            int q = -1;
            CHECK(hash_copy(c, luma, shapes[s][0], shapes[s][1], 1, h, &q) == IMT_OK);
            CHECKF(q == 0, "flat %dx%d (%s): quality %d", shapes[s][0], shapes[s][1],
                   ks[k]->name, q);
            free(luma);
        }
    }
    imt__pdq_ctx_free(c);
}

/* An allocator that fails allocation number fail_at (0-based; -1 never)
 * and counts allocations. */
static long n_allocs, fail_at = -1;
static void *t_malloc(void *o, size_t n)
{
    (void)o;
    if (n_allocs++ == fail_at) return NULL;
    return malloc(n);
}
static void *t_realloc(void *o, void *p, size_t n)
{
    (void)o;
    if (n_allocs++ == fail_at) return NULL;
    return realloc(p, n);
}
static void t_free(void *o, void *p)
{
    (void)o;
    free(p);
}

static void test_memory(void)
{
    imt_allocator a = {t_malloc, t_realloc, t_free, NULL};
    REQUIRE(imt_set_allocator(&a) == IMT_OK);
    float *big = synth_new(512, 512, 5, 9), *small = synth_new(300, 200, 0, 9);
    /* Fail each allocation in turn: the error is IMT_E_NOMEM, nothing leaks
     * (the sanitizer build checks), and once nothing fails the hash is made. */
    int done = 0;
    for (long n = 0; n < 20 && !done; n++) {
        n_allocs = 0;
        fail_at = n;
        imt_pdq_ctx *c = NULL;
        imt_err e = imt__pdq_ctx_create(&c);
        if (e == IMT_OK) {
            imt_pdq h[IMT_DIH__COUNT];
            int q;
            e = hash_copy(c, big, 512, 512, 1, h, &q);
            imt__pdq_ctx_free(c);
        } else {
            CHECK(c == NULL);
        }
        if (n_allocs <= n) done = 1; /* allocation n was never reached */
        CHECK(done ? e == IMT_OK : e == IMT_E_NOMEM);
    }
    CHECK(done);
    /* After warm-up on the largest image, hashing allocates nothing. */
    fail_at = -1;
    imt_pdq_ctx *c;
    REQUIRE(imt__pdq_ctx_create(&c) == IMT_OK);
    imt_pdq h[IMT_DIH__COUNT];
    int q;
    REQUIRE(hash_copy(c, big, 512, 512, 1, h, &q) == IMT_OK);
    long before = n_allocs;
    for (int i = 0; i < 3; i++) {
        CHECK(hash_copy(c, small, 300, 200, i & 1, h, &q) == IMT_OK);
        CHECK(hash_copy(c, big, 512, 512, i & 1, h, &q) == IMT_OK);
    }
    CHECK(n_allocs == before);
    imt__pdq_ctx_free(c);
    free(big);
    free(small);
    REQUIRE(imt_set_allocator(NULL) == IMT_OK);
}

int main(void)
{
    test_force_portable();
    test_golden();
    test_simd_equals_portable();
    test_dihedral_keeps_hash();
    test_dihedral_exact();
    test_dihedral_resampled();
    test_too_small();
    test_flat();
    test_memory();
    return tu_done("test_hash");
}
