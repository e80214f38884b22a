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

/* ---- the index: open an existing index, list its inventory, query ------- */
typedef struct index_arg {
    const char *dir;
    imt_pdq q;
    uint8_t md5[16];
} index_arg;

/* The four calls' statuses go to status[] (open, cursor, PDQ query, MD5
 * query) and a fingerprint of each answer to res[]: the identity, the list
 * count, the PDQ matches and the MD5 match, so that same_result compares
 * them with the unfailing run. */
static int scenario_index(const void *argp, outcome *out)
{
    const index_arg *arg = argp;
    imt_index *idx = NULL;
    imt_cursor *c = NULL;
    int oom = 0;
    out->n = 4;
    for (int i = 0; i < 4; i++) out->status[i] = IMT_OK;
    memset(out->res, 0, sizeof out->res);
    imt_err e = imt_index_open(&idx, arg->dir, NULL);
    out->status[0] = e;
    if (e != IMT_OK) {
        CHECKF(e == IMT_E_NOMEM, "open: %s", imt_err_name(e));
        CHECK(idx == NULL);
        for (int i = 1; i < 4; i++) out->status[i] = IMT_E_NOMEM; /* not reached */
        return 1;
    }
    char id[65];
    CHECK(imt_index_identity(idx, id) == IMT_OK);
    memcpy(out->res[0].sha256, id, 32); /* compared by same_result */
    out->res[0].width = (uint32_t)imt_index_list_count(idx);
    e = imt_cursor_open(&c, idx);
    out->status[1] = e;
    if (e != IMT_OK) {
        CHECKF(e == IMT_E_NOMEM, "cursor: %s", imt_err_name(e));
        out->status[2] = out->status[3] = IMT_E_NOMEM; /* not reached */
        oom = 1;
        goto done;
    }
    const imt_match *m;
    size_t n = 0;
    imt_pdq q8[IMT_DIH__COUNT];
    for (int i = 0; i < IMT_DIH__COUNT; i++) q8[i] = arg->q;
    e = imt_query_pdq(c, q8, IMT_DIH__COUNT, 31, &m, &n);
    out->status[2] = e;
    if (e == IMT_E_NOMEM) oom = 1;
    else if (e == IMT_OK) {
        out->res[2].height = (uint32_t)n;
        for (size_t i = 0; i < n && i < 8; i++) {
            out->res[2].pdq[i] = m[i].pdq;
            out->res[2].width += (uint32_t)m[i].distance + (uint32_t)m[i].n_members;
        }
    } else CHECKF(0, "query_pdq: %s", imt_err_name(e));
    e = imt_query_digest(c, IMT_KIND_MD5, arg->md5, &m, &n);
    out->status[3] = e;
    if (e == IMT_E_NOMEM) oom = 1;
    else if (e == IMT_OK) {
        out->res[3].height = (uint32_t)n;
        if (n) out->res[3].width = m[0].n_members ? m[0].members[0].list_id : 0;
    } else CHECKF(0, "query_digest: %s", imt_err_name(e));
done:
    imt_cursor_close(c);
    imt_index_close(idx);
    return oom;
}

static void index_allocfail(void)
{
    char dir[400], list[512];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/imt_allocfail_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    REQUIRE(mkdtemp(dir) != NULL);
    snprintf(list, sizeof list, "%s/list.csv", dir);
    FILE *f = fopen(list, "w");
    REQUIRE(f != NULL);
    /* 300 PDQ hashes (some near the query) and two MD5s. */
    for (int i = 0; i < 300; i++) {
        fprintf(f, "%04x", (unsigned)i);
        for (int b = 2; b < 32; b++) fprintf(f, "%02x", (unsigned)((i * 37 + b * 11) & 0xff));
        fprintf(f, ",%d\n", 50 + i % 50);
    }
    fclose(f);
    char idxdir[600];
    snprintf(idxdir, sizeof idxdir, "%s/idx", dir);
    imt_index_opts o;
    imt_index_opts_init(&o);
    o.read_only = 0;
    o.create = 1;
    o.map_size = (uint64_t)64 << 20;
    imt_index *idx = NULL;
    REQUIRE(imt_index_open(&idx, idxdir, &o) == IMT_OK);
    imt_import_opts io;
    imt_import_opts_init(&io);
    io.import_time = 1700000000;
    io.format = "pdq-csv";
    CHECKF(imt_index_import(idx, list, &io, NULL) == IMT_OK, "%s", imt_index_last_error(idx));
    f = fopen(list, "w");
    REQUIRE(f != NULL);
    fprintf(f, "d41d8cd98f00b204e9800998ecf8427e  empty\n0cc175b9c0f1b6a831c399e269772661  a\n");
    fclose(f);
    io.format = "md5sum";
    io.compact = 0; /* keep the PDQ hashes of the first list in the delta too */
    CHECKF(imt_index_import(idx, list, &io, NULL) == IMT_OK, "%s", imt_index_last_error(idx));
    imt_index_close(idx);

    index_arg a;
    memset(&a, 0, sizeof a);
    a.dir = idxdir;
    a.q.bytes[1] = 5;
    for (int b = 2; b < 32; b++) a.q.bytes[b] = (uint8_t)((5 * 37 + b * 11) & 0xff);
    a.q.bytes[3] ^= 0x11; /* two bits away from entry 5 */
    static const uint8_t md5[16] = {0xd4, 0x1d, 0x8c, 0xd9, 0x8f, 0x00, 0xb2, 0x04,
                                    0xe9, 0x80, 0x09, 0x98, 0xec, 0xf8, 0x42, 0x7e};
    memcpy(a.md5, md5, 16);
    outcome plain;
    scenario_index(&a, &plain); /* the system allocator: the queries must find something */
    CHECKF(plain.res[2].height >= 1 && plain.res[3].height == 1,
           "the index scenario finds %u PDQ and %u MD5 matches", plain.res[2].height,
           plain.res[3].height);
    long steps = fail_each_allocation("open an index, list, query PDQ (8 variants) and MD5",
                                      scenario_index, &a);
    CHECK(steps > 0);

    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
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
#define TB_ IMT_SOURCE_DIR "/tests/data/formats/tiffbmp/"
        hash_arg a5 = {{TB_ "b_pal4_rle4.bmp", TB_ "t_planar_tile.tif", TB_ "b_rgb24_v3.bmp"},
                       mode, 0, 0};
        snprintf(name, sizeof name, "hash RLE4 BMP, planar tiled TIFF, BMP, %s", mn);
        fail_each_allocation(name, scenario_hash, &a5);
#undef TB_
    }
    index_allocfail();
    return tu_done("test_allocfail");
}
