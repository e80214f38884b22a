/* tests/test_allocfail.c -- allocation-failure discipline (SQLite's
 * test_malloc.c): run a public-API scenario with the allocation hook failing
 * allocation N, for N = 0, 1, 2, ... until the scenario runs without meeting
 * a failure. Every step must either report out-of-memory or produce exactly
 * the result of an unfailing run, and must leave no block allocated through
 * the hook once its handles are freed.
 *
 * What the hook sees: every allocation the library makes itself and libpng's
 * (png_create_read_struct_2 gets the hook). libjpeg's own memory manager,
 * OpenSSL's digest contexts and LMDB allocate with the system malloc, so a
 * failure there cannot be injected here; ASan/LSan watch those instead. */
#include "imgtriage.h"
#include "testutil.h"

#include <string.h>

/* ---- the counting allocator ------------------------------------------- */
typedef struct counting {
    long calls;       /* allocation attempts so far (malloc and realloc) */
    long fail_at;     /* fail attempt number fail_at; -1 never */
    long failed;      /* failures injected in this step */
    long live;        /* blocks allocated and not freed */
} counting;

static counting g_cnt;

static int should_fail(void)
{
    long n = g_cnt.calls++;
    if (g_cnt.fail_at >= 0 && n == g_cnt.fail_at) {
        g_cnt.failed++;
        return 1;
    }
    return 0;
}

static void *c_malloc(void *opaque, size_t size)
{
    (void)opaque;
    if (should_fail()) return NULL;
    void *p = malloc(size);
    if (p) g_cnt.live++;
    return p;
}

static void *c_realloc(void *opaque, void *ptr, size_t size)
{
    (void)opaque;
    if (should_fail()) return NULL; /* the old block stays valid */
    void *p = realloc(ptr, size);
    if (p && !ptr) g_cnt.live++;
    return p;
}

static void c_free(void *opaque, void *ptr)
{
    (void)opaque;
    if (ptr) {
        g_cnt.live--;
        free(ptr);
    }
}

static const imt_allocator counting_alloc = {c_malloc, c_realloc, c_free, NULL};

/* ---- scenarios ---------------------------------------------------------- */
/* A scenario runs public API calls and writes what it observed into out:
 * status codes and the results that matter (hashes, sizes, digests). It
 * returns 1 if some call reported out-of-memory (the step then only has to
 * be clean), 0 if every call completed. */
typedef struct outcome {
    imt_err status[4];
    imt_hash_result res[4];
    int n;
} outcome;

typedef int (*scenario_fn)(const void *arg, outcome *out);

typedef struct hash_arg {
    const char *files[3];   /* hashed one after another with one hasher */
    imt_pdq_mode mode;
    int dihedral;
    int from_path;          /* imt_hash_file rather than imt_hash_memory */
} hash_arg;

/* Compare the parts of a result that an injected failure must not change:
 * everything but the detail text. */
static int same_result(const imt_hash_result *a, const imt_hash_result *b)
{
    return a->status == b->status && a->format == b->format && a->width == b->width &&
           a->height == b->height && a->file_size == b->file_size &&
           a->has_pdq == b->has_pdq && a->n_pdq == b->n_pdq &&
           !memcmp(a->pdq, b->pdq, sizeof a->pdq) && a->quality == b->quality &&
           a->digests == b->digests && !memcmp(a->md5, b->md5, 16) &&
           !memcmp(a->sha1, b->sha1, 20) && !memcmp(a->sha256, b->sha256, 32) &&
           a->partial == b->partial;
}

static int scenario_hash(const void *argp, outcome *out)
{
    const hash_arg *arg = argp;
    imt_hash_opts o;
    imt_hash_opts_init(&o);
    o.mode = arg->mode;
    o.dihedral = arg->dihedral;
    o.digests = IMT_DIGEST_ALL;
    o.time_budget_ms = 0;
    imt_hasher *h = NULL;
    out->n = 0;
    imt_err e = imt_hasher_create(&h, &o);
    if (e == IMT_E_NOMEM) {
        CHECK(h == NULL);
        for (int i = 0; i < 3 && arg->files[i]; i++) out->status[out->n++] = IMT_E_NOMEM;
        return 1;
    }
    CHECKF(e == IMT_OK, "imt_hasher_create: %s", imt_err_name(e));
    if (e != IMT_OK) return 0;
    int oom = 0;
    for (int i = 0; i < 3 && arg->files[i]; i++) {
        imt_hash_result *r = &out->res[out->n];
        if (arg->from_path) {
            e = imt_hash_file(h, arg->files[i], r);
        } else {
            size_t len = 0;
            unsigned char *buf = tu_read_file(arg->files[i], &len);
            REQUIRE(buf != NULL);
            e = imt_hash_memory(h, buf, len, r);
            free(buf);
        }
        CHECK(e == r->status);
        out->status[out->n++] = e;
        if (e == IMT_E_NOMEM) {
            CHECKF(strcmp(imt_err_name(r->status), "out-of-memory") == 0, "%s",
                   imt_err_name(r->status));
            CHECK(r->detail[0] != '\0' && !r->has_pdq);
            oom = 1;
            /* The hasher stays usable: go on with the next file. */
        }
    }
    imt_hasher_free(h);
    return oom;
}

/* Run scenario with failure at N = 0, 1, ... Returns the number of steps. */
static long fail_each_allocation(const char *name, scenario_fn fn, const void *arg)
{
    outcome ref, got;
    memset(&ref, 0, sizeof ref);

    /* The reference: no failure, counting only. */
    g_cnt = (counting){0, -1, 0, 0};
    REQUIRE(imt_set_allocator(&counting_alloc) == IMT_OK);
    int oom = fn(arg, &ref);
    long total = g_cnt.calls;
    CHECKF(!oom, "%s: out of memory without an injected failure", name);
    CHECKF(g_cnt.live == 0, "%s: %ld blocks leaked by an unfailing run", name, g_cnt.live);

    long n;
    for (n = 0;; n++) {
        memset(&got, 0, sizeof got);
        g_cnt = (counting){0, n, 0, 0};
        oom = fn(arg, &got);
        long failed = g_cnt.failed, live = g_cnt.live;
        CHECKF(live == 0, "%s: failing allocation %ld leaked %ld blocks", name, n, live);
        /* Every call either reported out-of-memory or gave exactly the
         * unfailing run's result (an optional allocation may fail quietly). */
        CHECKF(got.n == ref.n, "%s: step %ld ran %d calls of %d", name, n, got.n, ref.n);
        for (int i = 0; i < got.n && i < ref.n; i++)
            CHECKF(got.status[i] == IMT_E_NOMEM || same_result(&got.res[i], &ref.res[i]),
                   "%s: failing allocation %ld changed result %d: %s (%s), not %s",
                   name, n, i, imt_err_name(got.status[i]), got.res[i].detail,
                   imt_err_name(ref.status[i]));
        if (oom)
            CHECKF(failed == 1, "%s: out of memory at step %ld with no failure injected",
                   name, n);
        if (!failed) break; /* allocation n was never reached: done */
        if (n > total + 1000) {
            CHECKF(0, "%s: no end after %ld steps", name, n);
            break;
        }
    }
    imt_set_allocator(NULL);
    printf("%s: %ld allocations in a full run, %ld failure steps, result %s\n", name,
           total, n, ref.n ? imt_err_name(ref.status[ref.n - 1]) : "-");
    return n;
}

int main(void)
{
    const char *jpg = tu_shared("vectors/pdq/images/misc-images/small.jpg");
    const char *jpg2 = tu_shared("vectors/pdq/images/bridge-mods/square-128x128.jpg");
    const char *png = tu_shared("vectors/pdq/images/misc-images/c.png");
    const char *png_pal_il = tu_shared("corpus/malformed/pngsuite/png/basi3p02.png");
    const char *png_16a = tu_shared("corpus/malformed/pngsuite/png/basn4a16.png");
    const char *bad_png = tu_shared("corpus/malformed/pngsuite/png/xcsn0g01.png");
    if (!jpg || !jpg2 || !png || !png_pal_il || !png_16a || !bad_png)
        return tu_skip("../shared vectors or pngsuite missing");

    /* Also out of memory before anything else: creating the hasher. */
    hash_arg none = {{NULL}, IMT_PDQ_FAST, 0, 0};
    fail_each_allocation("create hasher", scenario_hash, &none);

    for (int m = 0; m < 2; m++) {
        imt_pdq_mode mode = m ? IMT_PDQ_COMPAT : IMT_PDQ_FAST;
        const char *mn = m ? "compat" : "fast";
        char name[128];
        hash_arg a1 = {{jpg, jpg2, NULL}, mode, m, 0};
        snprintf(name, sizeof name, "hash 2 JPEGs, %s%s", mn, m ? "+dihedral" : "");
        fail_each_allocation(name, scenario_hash, &a1);
        hash_arg a2 = {{png, NULL}, mode, 0, 1};
        snprintf(name, sizeof name, "hash vector PNG from its path, %s", mn);
        fail_each_allocation(name, scenario_hash, &a2);
        hash_arg a3 = {{png_pal_il, png_16a, bad_png}, mode, !m, 0};
        snprintf(name, sizeof name, "hash interlaced palette, 16-bit RGBA, corrupt PNG, %s", mn);
        fail_each_allocation(name, scenario_hash, &a3);
        hash_arg a4 = {{png, jpg, NULL}, mode, 0, 0};
        snprintf(name, sizeof name, "hash PNG then JPEG with one hasher, %s", mn);
        fail_each_allocation(name, scenario_hash, &a4);
    }
    return tu_done("test_allocfail");
}
