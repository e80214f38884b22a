/* tests/test_order.c -- a file's result is a function of its bytes and the
 * options only (issue 9 item 1).
 *
 * Over every file of the shared hostile sets (go-fuzz JPEG corpus, the JPEG
 * image test suite, libpng's test PNGs, PngSuite, Pillow's test images), in
 * fast and compat mode with the eight dihedral hashes:
 *  - alone: a fresh hasher for each file (the reference result);
 *  - batches: one hasher per thread over the files in a shuffled order
 *    (fixed seeds), 1 and 2 threads, each thread taking the next file;
 *  - scan: imt_scan_run over the same folders, 1 and 2 threads.
 * Every run must give each file the same status, width, height, PDQ hashes
 * and quality as the file hashed alone. And the file's hash must not depend
 * on whether its dihedral variants were asked for (the CLI's `hash` does
 * not ask, `scan` does): alone without them, status, size, the original
 * hash and quality are the same. Only the public API is used.
 * Missing corpus: skip, a failure under CI=true. */
#include "imgtriage.h"
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

static const char *const sets[] = {
    "corpus/malformed/go_fuzz_corpus/jpeg/corpus",
    "corpus/malformed/jpeg_imagetestsuite",
    "corpus/malformed/libpng_testpngs",
    "corpus/malformed/pngsuite",
    "corpus/malformed/pillow",
};
#define NSETS (sizeof sets / sizeof sets[0])

typedef struct outcome {
    imt_err status;
    uint32_t width, height;
    int has_pdq, quality;
    imt_pdq pdq[IMT_DIH__COUNT];
} outcome;

static char **paths;
static size_t npaths, cap_paths;
static outcome *alone;

static void add_path(const char *p)
{
    if (npaths == cap_paths) {
        cap_paths = cap_paths ? 2 * cap_paths : 1024;
        paths = realloc(paths, cap_paths * sizeof *paths);
        REQUIRE(paths);
    }
    paths[npaths] = strdup(p);
    REQUIRE(paths[npaths]);
    npaths++;
}

static void add_file(const char *p, const char *name, void *ctx)
{
    (void)name;
    (void)ctx;
    add_path(p);
}

static void take(outcome *o, const imt_hash_result *r)
{
    memset(o, 0, sizeof *o);
    o->status = r->status;
    o->width = r->width;
    o->height = r->height;
    o->has_pdq = r->has_pdq;
    if (r->has_pdq) {
        o->quality = r->quality;
        memcpy(o->pdq, r->pdq, sizeof o->pdq);
    }
}

static int same(const outcome *a, const outcome *b)
{
    return a->status == b->status && a->width == b->width && a->height == b->height &&
           a->has_pdq == b->has_pdq && a->quality == b->quality &&
           memcmp(a->pdq, b->pdq, sizeof a->pdq) == 0;
}

static int g_diffs;

static void compare(const char *run, size_t i, const outcome *got)
{
    if (same(&alone[i], got)) return;
    if (g_diffs++ < 20)
        fprintf(stderr, "%s: %s: alone %s q%d pdq0 %02x%02x.., got %s q%d pdq0 %02x%02x..\n",
                run, paths[i], imt_err_name(alone[i].status), alone[i].quality,
                alone[i].pdq[0].bytes[0], alone[i].pdq[0].bytes[1], imt_err_name(got->status),
                got->quality, got->pdq[0].bytes[0], got->pdq[0].bytes[1]);
}

/* ---- batches over a shuffled order ------------------------------------------ */

typedef struct batch {
    const imt_hash_opts *opts;
    const size_t *order;
    outcome *got;
    atomic_size_t next;
    atomic_int failed;
} batch;

static void *batch_worker(void *arg)
{
    batch *b = arg;
    imt_hasher *h = NULL;
    if (imt_hasher_create(&h, b->opts) != IMT_OK) {
        atomic_store(&b->failed, 1);
        return NULL;
    }
    for (;;) {
        size_t k = atomic_fetch_add(&b->next, 1);
        if (k >= npaths) break;
        size_t i = b->order[k];
        imt_hash_result r;
        imt_hash_file(h, paths[i], &r);
        take(&b->got[i], &r);
    }
    imt_hasher_free(h);
    return NULL;
}

static uint64_t rng_state;
static uint64_t rng(void)
{
    /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void run_batches(const imt_hash_opts *opts, const char *mode, uint64_t seed, int threads)
{
    size_t *order = malloc(npaths * sizeof *order);
    outcome *got = calloc(npaths, sizeof *got);
    REQUIRE(order && got);
    for (size_t i = 0; i < npaths; i++) order[i] = i;
    rng_state = seed;
    for (size_t i = npaths - 1; i > 0; i--) {
        size_t j = (size_t)(rng() % (i + 1));
        size_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    batch b = {opts, order, got, 0, 0};
    pthread_t th[2];
    for (int t = 0; t < threads; t++) REQUIRE(pthread_create(&th[t], NULL, batch_worker, &b) == 0);
    for (int t = 0; t < threads; t++) pthread_join(th[t], NULL);
    REQUIRE(!atomic_load(&b.failed));
    char run[96];
    snprintf(run, sizeof run, "%s, seed %llu, %d thread(s)", mode, (unsigned long long)seed,
             threads);
    int before = g_diffs;
    for (size_t i = 0; i < npaths; i++) compare(run, i, &got[i]);
    CHECKF(g_diffs == before, "%s: %d of %zu files differ from the file hashed alone", run,
           g_diffs - before, npaths);
    free(order);
    free(got);
}

/* ---- the scan path --------------------------------------------------------- */

typedef struct scanctx {
    outcome *got;
    unsigned char *seen;
    size_t next; /* walk order is sorted, as paths[]: a cursor suffices */
    int unknown;
} scanctx;

static int on_record(void *ctx, const imt_scan_record *rec)
{
    scanctx *s = ctx;
    if (rec->type != IMT_ENTRY_FILE) return 0;
    size_t i = s->next;
    while (i < npaths && strcmp(paths[i], rec->path) != 0) i++;
    if (i == npaths) { /* not in order: search from the start */
        for (i = 0; i < npaths && strcmp(paths[i], rec->path) != 0; i++) {}
    }
    if (i == npaths) {
        s->unknown++;
        return 0;
    }
    s->next = i + 1;
    s->seen[i] = 1;
    if (rec->hash) {
        take(&s->got[i], rec->hash);
    } else {
        memset(&s->got[i], 0, sizeof s->got[i]);
        s->got[i].status = rec->status;
    }
    return 0;
}

static void run_scan(const imt_hash_opts *opts, const char *mode, const char *const *dirs,
                     int threads)
{
    imt_scan_opts so;
    imt_scan_opts_init(&so);
    so.threads = threads;
    so.hash = *opts;
    so.batch_files = 64;
    scanctx s = {calloc(npaths, sizeof(outcome)), calloc(npaths, 1), 0, 0};
    REQUIRE(s.got && s.seen);
    char detail[256] = "";
    imt_err e = imt_scan_run(NULL, dirs, NSETS, &so, on_record, &s, detail, sizeof detail);
    CHECKF(e == IMT_OK, "scan (%s, %d threads): %s %s", mode, threads, imt_err_name(e), detail);
    CHECKF(s.unknown == 0, "scan reported %d files the walk did not list", s.unknown);
    char run[96];
    snprintf(run, sizeof run, "scan, %s, %d thread(s)", mode, threads);
    int before = g_diffs;
    size_t missing = 0;
    for (size_t i = 0; i < npaths; i++) {
        if (!s.seen[i]) missing++;
        else compare(run, i, &s.got[i]);
    }
    CHECKF(missing == 0, "%s: %zu files without a record", run, missing);
    CHECKF(g_diffs == before, "%s: %d of %zu files differ from the file hashed alone", run,
           g_diffs - before, npaths);
    free(s.got);
    free(s.seen);
}

int main(void)
{
    const char *dirs[NSETS];
    for (size_t k = 0; k < NSETS; k++) {
        const char *d = tu_shared(sets[k]);
        if (!d) return tu_skip(sets[k]);
        dirs[k] = strdup(d);
        REQUIRE(dirs[k]);
    }
    for (size_t k = 0; k < NSETS; k++) tu_walk(dirs[k], add_file, NULL);
    REQUIRE(npaths > 1000);
    alone = calloc(npaths, sizeof *alone);
    REQUIRE(alone);

    for (int m = 0; m < 2; m++) {
        const char *mode = m ? "compat" : "fast";
        imt_hash_opts o;
        imt_hash_opts_init(&o);
        o.mode = m ? IMT_PDQ_COMPAT : IMT_PDQ_FAST;
        o.dihedral = 1;
        size_t nok = 0;
        for (size_t i = 0; i < npaths; i++) {
            imt_hasher *h = NULL;
            REQUIRE(imt_hasher_create(&h, &o) == IMT_OK);
            imt_hash_result r;
            imt_hash_file(h, paths[i], &r);
            take(&alone[i], &r);
            nok += r.status == IMT_OK;
            imt_hasher_free(h);
        }
        /* without the variants: the same file hash */
        imt_hash_opts o1 = o;
        o1.dihedral = 0;
        int before = g_diffs;
        for (size_t i = 0; i < npaths; i++) {
            imt_hasher *h = NULL;
            REQUIRE(imt_hasher_create(&h, &o1) == IMT_OK);
            imt_hash_result r;
            imt_hash_file(h, paths[i], &r);
            outcome one;
            take(&one, &r);
            memcpy(one.pdq + 1, alone[i].pdq + 1, sizeof one.pdq - sizeof one.pdq[0]);
            char run[64];
            snprintf(run, sizeof run, "%s, no dihedral", mode);
            compare(run, i, &one);
            imt_hasher_free(h);
        }
        CHECKF(g_diffs == before, "%s: %d of %zu files hash differently without the dihedral "
               "variants", mode, g_diffs - before, npaths);
        /* the sets hold both decodable and broken files */
        CHECKF(nok > 300 && nok < npaths, "%s: %zu of %zu files hashed", mode, nok, npaths);
        run_batches(&o, mode, 1, 1);
        run_batches(&o, mode, 2, 1);
        run_batches(&o, mode, 3, 2);
        run_batches(&o, mode, 4, 2);
        run_scan(&o, mode, dirs, 1);
        run_scan(&o, mode, dirs, 2);
    }
    printf("%zu files, 2 modes\n", npaths);
    free(alone);
    for (size_t i = 0; i < npaths; i++) free(paths[i]);
    free(paths);
    for (size_t k = 0; k < NSETS; k++) free((char *)dirs[k]);
    return tu_done("test_order");
}
