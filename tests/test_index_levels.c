/* tests/test_index_levels.c -- issue 11, growing lists: the compacted PDQ
 * hashes in several MIH levels (engine/index/compact.c: the cascade).
 *
 * Many imports of varying sizes (the delta threshold lowered so that small
 * lists make levels) into one index: at checkpoints every query's answer
 * equals a brute-force scan of every hash imported so far (kept here, not
 * read from the index), for r in {0, 8, 31, 63}, single and batched, with
 * MIH, the scan and auto; verify passes; several levels exist. The cost:
 * the PDQ hashes an import writes into levels stay a small multiple of the
 * hashes it adds (a full rebuild, as before the cascade, wrote the whole
 * index at every overflow of the delta: 65 times the hashes added here).
 * Then: a flipped byte in a level's array fails the open, naming the
 * level; a changed level record changes the identity; an index of format
 * 4 (no levels record) opens and searches as before and a write makes it
 * format 5; imt_index_compact leaves one level. */
#include "index/index.h"
#include "testutil.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t rng = 0xD1B54A32D192ED03ull;
static uint64_t rnd(void)
{
    return tu_xorshift(&rng);
}

static void rand_hash(imt_pdq *h)
{
    tu_rand_pdq(&rng, h);
}

static void flip(imt_pdq *h, int k)
{
    tu_flip_pdq(&rng, h, k);
}

#define MAXN 60000
static imt_pdq all[MAXN];
static size_t nall;
static char tmp[300];

/* The next list: n hashes, a third of them noisy copies (4..40 bits) of
 * hashes already imported, so that a query near one finds hashes in
 * several levels; written as a PDQ CSV. */
static void make_list(const char *path, size_t n)
{
    REQUIRE(nall + n <= MAXN);
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    char hex[65];
    for (size_t i = 0; i < n; i++) {
        imt_pdq h;
        if (nall && rnd() % 3 == 0) {
            h = all[rnd() % nall];
            flip(&h, 4 + (int)(rnd() % 37));
        } else rand_hash(&h);
        all[nall + i] = h;
        imt_pdq_to_hex(&h, hex);
        fprintf(f, "%s,%d\n", hex, (int)(i % 101));
    }
    REQUIRE(fclose(f) == 0);
    nall += n;
}

typedef struct bf {
    imt_pdq h;
    int d;
} bf;

static int cmp_bf(const void *a, const void *b)
{
    const bf *x = a, *y = b;
    int c = memcmp(&x->h, &y->h, 32);
    return c ? c : x->d - y->d;
}

static bf want[MAXN], got[MAXN];

/* The brute-force answer of q (nv variants) at radius: (hash, smallest
 * distance) of every hash imported, sorted. */
static size_t oracle(const imt_pdq *q, int nv, int radius)
{
    size_t ne = 0;
    for (size_t i = 0; i < nall; i++) {
        int best = 999;
        for (int j = 0; j < nv; j++) {
            int d = imt_pdq_distance(&all[i], &q[j]);
            if (d < best) best = d;
        }
        if (best <= radius) {
            want[ne].h = all[i];
            want[ne].d = best;
            ne++;
        }
    }
    qsort(want, ne, sizeof *want, cmp_bf);
    return ne;
}

/* Does m[0..nm) (query qi's part of a batch when batch) equal the oracle? */
static int same(const imt_match *m, size_t nm, size_t ne, int batch, uint32_t qi, const imt_pdq *q)
{
    size_t k = 0;
    for (size_t i = 0; i < nm; i++) {
        if (batch && m[i].query != qi) continue;
        if (k == MAXN) return 0;
        got[k].h = m[i].pdq;
        got[k].d = m[i].distance;
        if (imt_pdq_distance(&m[i].pdq, &q[m[i].variant]) != m[i].distance) return 0;
        k++;
    }
    if (k != ne) return 0;
    qsort(got, k, sizeof *got, cmp_bf);
    return memcmp(got, want, k * sizeof *got) == 0;
}

static long total_matches;

/* Queries (near imported hashes, and random) against the oracle, every
 * radius and method; a batch of 16 queries through imt_query_pdq_batch;
 * dihedral-style 8-variant queries at r = 31. */
static void check_exact(imt_index *idx, int nq, const char *when)
{
    static const int radii[4] = {0, 8, 31, 63};
    static const imt_search_method meth[3] = {IMT_SEARCH_AUTO, IMT_SEARCH_MIH, IMT_SEARCH_SCAN};
    imt_pdq q[16 * 8];
    imt_cursor *c = NULL;
    REQUIRE(imt_cursor_open(&c, idx) == IMT_OK);
    int fails = 0;
    for (int i = 0; i < nq && fails < 3; i++) {
        imt_pdq one = all[rnd() % nall];
        if (i % 4 == 3) rand_hash(&one);
        else flip(&one, (int)(rnd() % 41));
        for (int ri = 0; ri < 4; ri++) {
            size_t ne = oracle(&one, 1, radii[ri]);
            for (int mi = 0; mi < 3; mi++) {
                imt_cursor_set_method(c, meth[mi]);
                const imt_match *m;
                size_t nm;
                imt_err e = imt_query_pdq(c, &one, 1, radii[ri], &m, &nm);
                total_matches += (long)nm;
                if (e != IMT_OK || !same(m, nm, ne, 0, 0, &one)) {
                    fails++;
                    CHECKF(0, "%s: query %d r=%d method %d: %s, %zu results, brute force %zu", when, i,
                           radii[ri], mi, imt_err_name(e), e ? 0 : nm, ne);
                }
            }
        }
    }
    /* a batch: the scan may take a level for all 16 at once */
    for (int i = 0; i < 16; i++) {
        q[i] = all[rnd() % nall];
        flip(&q[i], (int)(rnd() % 33));
    }
    for (int ri = 0; ri < 4 && fails < 3; ri++)
        for (int mi = 0; mi < 3; mi++) {
            imt_cursor_set_method(c, meth[mi]);
            const imt_match *m;
            size_t nm;
            imt_err e = imt_query_pdq_batch(c, q, 16, 1, radii[ri], &m, &nm);
            CHECKF(e == IMT_OK, "%s: batch: %s", when, imt_err_name(e));
            if (e) break;
            for (uint32_t k = 0; k < 16; k++) {
                size_t ne = oracle(&q[k], 1, radii[ri]);
                if (!same(m, nm, ne, 1, k, &q[k])) {
                    fails++;
                    CHECKF(0, "%s: batch query %u r=%d method %d differs from brute force", when,
                           (unsigned)k, radii[ri], mi);
                }
            }
        }
    /* 8 variants of one query (each a different hash) */
    for (int i = 0; i < 8; i++) {
        q[i] = all[rnd() % nall];
        flip(&q[i], (int)(rnd() % 20));
    }
    size_t ne = oracle(q, 8, 31);
    for (int mi = 0; mi < 3; mi++) {
        imt_cursor_set_method(c, meth[mi]);
        const imt_match *m;
        size_t nm;
        imt_err e = imt_query_pdq(c, q, 8, 31, &m, &nm);
        CHECKF(e == IMT_OK && same(m, nm, ne, 0, 0, q), "%s: 8 variants, method %d: %zu results, "
               "brute force %zu", when, mi, e ? 0 : nm, ne);
    }
    imt_cursor_close(c);
}

static void copy_dir(const char *from, const char *to)
{
    char cmd[1000];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s' && cp '%s/data.mdb' '%s/'", to, to, from, to);
    REQUIRE(system(cmd) == 0);
}

/* Raw LMDB edit of meta or seg record key in the index at dir: fn
 * changes the value's copy (or deletes it when fn is NULL). */
static void edit(const char *dir, const char *db, const char *key,
                 void (*fn)(uint8_t *v, size_t n))
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    REQUIRE(mdb_env_create(&env) == 0);
    mdb_env_set_maxdbs(env, 16);
    mdb_env_set_mapsize(env, 1ull << 30);
    REQUIRE(mdb_env_open(env, dir, 0, 0644) == 0);
    REQUIRE(mdb_txn_begin(env, NULL, 0, &txn) == 0);
    REQUIRE(mdb_dbi_open(txn, db, 0, &dbi) == 0);
    MDB_val k = {strlen(key), (void *)key}, d;
    REQUIRE(mdb_get(txn, dbi, &k, &d) == 0);
    if (fn) {
        uint8_t *c = malloc(d.mv_size);
        REQUIRE(c);
        memcpy(c, d.mv_data, d.mv_size);
        fn(c, d.mv_size);
        MDB_val nd = {d.mv_size, c};
        REQUIRE(mdb_put(txn, dbi, &k, &nd, 0) == 0);
        free(c);
    } else REQUIRE(mdb_del(txn, dbi, &k, NULL) == 0);
    REQUIRE(mdb_txn_commit(txn) == 0);
    mdb_env_close(env);
}

static void flip_hash_byte(uint8_t *v, size_t n)
{
    REQUIRE(n > IDX_SEG_LEAD + 100);
    v[IDX_SEG_LEAD + 77] ^= 0x10; /* a bit of the third hash */
}
static void flip_level_sum(uint8_t *v, size_t n)
{
    REQUIRE(n >= 4 + sizeof(imt__idx_level));
    v[4 + offsetof(imt__idx_level, sum) + 5] ^= 1; /* level 1's checksum */
}
static void set_format4(uint8_t *v, size_t n)
{
    REQUIRE(n > 12);
    uint32_t four = 4;
    memcpy(v + 8, &four, 4);
}

int main(void)
{
    snprintf(tmp, sizeof tmp, "%s/test_index_levels.XXXXXX", IMT_BINARY_DIR);
    REQUIRE(mkdtemp(tmp));
    char dir[400], csv[400], path[500];
    snprintf(dir, sizeof dir, "%s/idx", tmp);
    snprintf(csv, sizeof csv, "%s/list.csv", tmp);
    /* small lists make levels: the delta becomes a level past 256 hashes */
    imt__idx_delta_max = 256;
    imt_index *idx = tu_index_rw(dir, 1);
    imt_import_opts io;
    imt_import_stats st;
    /* the base: 24,000 hashes, compacted into level 0 */
    make_list(csv, 24000);
    imt_import_opts_init(&io);
    io.name = "base";
    REQUIRE(imt_index_import(idx, csv, &io, &st) == IMT_OK);
    CHECK(st.compacted && st.pdq_written == 24000);
    /* 48 lists of 40..700 hashes (~1% of the index each, some larger):
     * written hashes against added hashes */
    uint64_t added = 0, written = 0, maxlevels = 0, level0_rebuilds = 0;
    char id_before[65], id_after[65];
    for (int l = 0; l < 48; l++) {
        size_t n = 40 + (size_t)(rnd() % 661);
        make_list(csv, n);
        imt_import_opts_init(&io);
        char name[32];
        snprintf(name, sizeof name, "delta %d", l);
        io.name = name;
        imt_index_stats s0, s1;
        REQUIRE(imt_index_stats_get(idx, &s0) == IMT_OK);
        REQUIRE(imt_index_identity(idx, id_before) == IMT_OK);
        imt_err e = imt_index_import(idx, csv, &io, &st);
        CHECKF(e == IMT_OK, "import %d: %s", l, imt_index_last_error(idx));
        REQUIRE(imt_index_stats_get(idx, &s1) == IMT_OK);
        REQUIRE(imt_index_identity(idx, id_after) == IMT_OK);
        CHECK(strcmp(id_before, id_after) != 0);
        added += n;
        written += st.pdq_written;
        if (s1.pdq_level[0] != s0.pdq_level[0]) level0_rebuilds++;
        if ((uint64_t)s1.pdq_levels > maxlevels) maxlevels = (uint64_t)s1.pdq_levels;
        /* the levels shrink by the factor, so there are few of them */
        for (int k = 1; k < s1.pdq_levels; k++)
            CHECKF(s1.pdq_level[k - 1] >= IDX_LEVEL_FACTOR * s1.pdq_level[k],
                   "import %d: level %d holds %llu, level %d %llu", l, k - 1,
                   (unsigned long long)s1.pdq_level[k - 1], k, (unsigned long long)s1.pdq_level[k]);
        CHECK(s1.pdq_main + s1.pdq_delta == nall && s1.pdq == nall);
        CHECK(s1.pdq_delta <= imt__idx_delta_max);
        if (l % 8 == 7) {
            snprintf(name, sizeof name, "after import %d", l);
            check_exact(idx, 24, name);
            CHECKF(imt_index_verify(idx) == IMT_OK, "%s: verify: %s", name, imt_index_last_error(idx));
        }
    }
    printf("%llu hashes added in 48 imports, %llu written into levels (%.2f per hash added); "
           "level 0 rebuilt %llu times; at most %llu levels\n", (unsigned long long)added,
           (unsigned long long)written, (double)written / (double)added,
           (unsigned long long)level0_rebuilds, (unsigned long long)maxlevels);
    /* amortised cost: about IDX_LEVEL_FACTOR rewrites per hash and level
     * it climbs (10 here), where rebuilding the whole index at every
     * overflow of the delta wrote 64.7 per hash added; level 0 (the O(N)
     * rebuild) at most once per N0 / FACTOR hashes added (it was rebuilt
     * at 36 of the 48 imports) */
    CHECKF(written <= 2 * IDX_LEVEL_FACTOR * added, "%llu hashes written for %llu added",
           (unsigned long long)written, (unsigned long long)added);
    CHECKF(level0_rebuilds <= added / (24000 / IDX_LEVEL_FACTOR), "level 0 rebuilt %llu times",
           (unsigned long long)level0_rebuilds);
    CHECK(maxlevels >= 3);
    imt_index_stats s;
    REQUIRE(imt_index_stats_get(idx, &s) == IMT_OK);
    CHECK(s.format_version == 5 && s.content_verified == 1);
    printf("levels at the end:");
    for (int k = 0; k < s.pdq_levels; k++) printf(" %llu", (unsigned long long)s.pdq_level[k]);
    printf(", delta %llu\n", (unsigned long long)s.pdq_delta);
    REQUIRE(s.pdq_levels >= 2);
    check_exact(idx, 64, "final");
    CHECKF(imt_index_verify(idx) == IMT_OK, "final verify: %s", imt_index_last_error(idx));
    /* the export (entry order = import order) lists every hash imported */
    {
        snprintf(path, sizeof path, "%s/export.txt", tmp);
        FILE *f = fopen(path, "w+");
        REQUIRE(f);
        imt_export_opts eo;
        imt_export_opts_init(&eo);
        eo.format = "pdq-hex";
        CHECK(imt_index_export(idx, fileno(f), &eo) == IMT_OK);
        rewind(f);
        char line[200], hex[65];
        size_t k = 0, bad = 0;
        while (fgets(line, sizeof line, f)) {
            if (k < nall) imt_pdq_to_hex(&all[k], hex);
            if (k >= nall || strncmp(line, hex, 64) != 0) bad++;
            k++;
        }
        fclose(f);
        CHECKF(k == nall && bad == 0, "export: %zu lines, %zu differ from the %zu hashes imported", k,
               bad, nall);
    }
    imt_index_close(idx);

    /* a flipped bit in level 1's PDQ array: the open refuses the index and
     * names the level; without the check it opens and verify finds it */
    snprintf(path, sizeof path, "%s/flip", tmp);
    copy_dir(dir, path);
    edit(path, "seg", "1.pdq", flip_hash_byte);
    idx = NULL;
    imt_err e = imt_index_open(&idx, path, NULL);
    CHECKF(e == IMT_E_INDEX_CORRUPT && !idx && strstr(imt_index_open_error(), "level 1") &&
           strstr(imt_index_open_error(), "checksum"),
           "flipped level 1: %s (%s)", imt_err_name(e), imt_index_open_error());
    imt_index_close(idx);
    {
        imt_index_opts o;
        imt_index_opts_init(&o);
        o.skip_content_check = 1;
        idx = NULL;
        REQUIRE(imt_index_open(&idx, path, &o) == IMT_OK);
        e = imt_index_verify(idx);
        CHECKF(e == IMT_E_INDEX_CORRUPT, "verify of the flipped level: %s", imt_err_name(e));
        imt_index_close(idx);
    }
    /* a level's MIH table too */
    copy_dir(dir, path);
    edit(path, "seg", "1.mih03", flip_hash_byte);
    idx = NULL;
    e = imt_index_open(&idx, path, NULL);
    CHECKF(e == IMT_E_INDEX_CORRUPT && strstr(imt_index_open_error(), "level 1"),
           "flipped MIH table of level 1: %s (%s)", imt_err_name(e), imt_index_open_error());
    imt_index_close(idx);

    /* the identity names the levels: another checksum in the levels
     * record, another identity (and the content check refuses it) */
    {
        imt_index_opts o;
        imt_index_opts_init(&o);
        o.skip_content_check = 1;
        char a[65], b[65];
        idx = NULL;
        REQUIRE(imt_index_open(&idx, dir, &o) == IMT_OK);
        imt_index_identity(idx, a);
        imt_index_close(idx);
        copy_dir(dir, path);
        edit(path, "meta", "levels", flip_level_sum);
        idx = NULL;
        REQUIRE(imt_index_open(&idx, path, &o) == IMT_OK);
        imt_index_identity(idx, b);
        imt_index_close(idx);
        CHECKF(strcmp(a, b) != 0, "the identity ignores the levels record");
        idx = NULL;
        e = imt_index_open(&idx, path, NULL);
        CHECKF(e == IMT_E_INDEX_CORRUPT, "a level's checksum changed: open gave %s", imt_err_name(e));
        imt_index_close(idx);
        /* the levels record missing from a format 5 index */
        copy_dir(dir, path);
        edit(path, "meta", "levels", NULL);
        idx = NULL;
        e = imt_index_open(&idx, path, NULL);
        CHECKF(e == IMT_E_INDEX_CORRUPT, "no levels record: open gave %s", imt_err_name(e));
        imt_index_close(idx);
        /* a format 4 header may not describe levels */
        copy_dir(dir, path);
        edit(path, "meta", "header", set_format4);
        idx = NULL;
        e = imt_index_open(&idx, path, NULL);
        CHECKF(e == IMT_E_INDEX_CORRUPT, "format 4 with levels: open gave %s", imt_err_name(e));
        imt_index_close(idx);
    }

    /* --compact: one level, the same answers */
    idx = tu_index_rw(dir, 0);
    REQUIRE(imt_index_compact(idx) == IMT_OK);
    REQUIRE(imt_index_stats_get(idx, &s) == IMT_OK);
    CHECK(s.pdq_levels == 1 && s.pdq_delta == 0 && s.pdq_level[0] == nall);
    check_exact(idx, 16, "compacted");
    CHECK(imt_index_verify(idx) == IMT_OK);
    imt_index_close(idx);

    /* format 4 (as an older build wrote it: no levels record) opens,
     * searches and verifies; a write makes it format 5 */
    copy_dir(dir, path);
    edit(path, "meta", "levels", NULL);
    edit(path, "meta", "header", set_format4);
    idx = NULL;
    e = imt_index_open(&idx, path, NULL);
    CHECKF(e == IMT_OK, "format 4: %s", imt_index_open_error());
    if (e == IMT_OK) {
        REQUIRE(imt_index_stats_get(idx, &s) == IMT_OK);
        CHECK(s.format_version == 4 && s.content_verified == 1 && s.pdq_levels == 1);
        check_exact(idx, 16, "format 4");
        CHECK(imt_index_verify(idx) == IMT_OK);
        imt_index_close(idx);
        idx = tu_index_rw(path, 0);
        /* past the delta threshold: a level 1, and only the list's own
         * hashes written (a 0.7% delta costs its own size) */
        make_list(csv, 300);
        imt_import_opts_init(&io);
        CHECK(imt_index_import(idx, csv, &io, &st) == IMT_OK && st.pdq_written == 300);
        REQUIRE(imt_index_stats_get(idx, &s) == IMT_OK);
        CHECK(s.format_version == 5 && s.pdq_levels == 2);
        check_exact(idx, 16, "format 4 upgraded");
        CHECK(imt_index_verify(idx) == IMT_OK);
        imt_index_close(idx);
    }
    printf("%ld matches compared\n", total_matches);
    CHECK(total_matches > 1000);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (!getenv("KEEP") && tu_failures == 0 && system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", tmp);
    return tu_done("test_index_levels");
}
