/* tests/test_index.c -- exactness of the index's PDQ search: on random,
 * clustered and planted data (N >= 100k) every query's result equals a
 * brute-force scan's, for radii 0..63 and with dihedral variants, for every
 * search method (MIH, scan, auto) and every distance kernel; the compacted
 * and the delta segments both take part. Also digest lookups, stats and
 * verify. Usage: test_index [portable-child DIR] */
#include "index/index.h"
#include "testutil.h"

#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
    return tu_xorshift(&rng);
}

static void rand_hash(imt_pdq *h)
{
    tu_rand_pdq(&rng, h);
}

/* Flip k distinct random bits. */
static void flip(imt_pdq *h, int k)
{
    tu_flip_pdq(&rng, h, k);
}

static int cmp_pdq(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

/* Sort and drop repeats; returns the new count. */
static size_t uniq(imt_pdq *h, size_t n)
{
    qsort(h, n, sizeof *h, cmp_pdq);
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (!w || memcmp(&h[w - 1], &h[i], 32)) h[w++] = h[i];
    return w;
}

static void shuffle(imt_pdq *h, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = rnd() % i;
        imt_pdq t = h[i - 1];
        h[i - 1] = h[j];
        h[j] = t;
    }
}

static void write_csv(const char *path, const imt_pdq *h, size_t n)
{
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    char hex[65];
    for (size_t i = 0; i < n; i++) {
        imt_pdq_to_hex(&h[i], hex);
        fprintf(f, "%s,%d\n", hex, (int)(i % 101));
    }
    fclose(f);
}

/* Brute force: of the n indexed hashes, those within radius of any of the
 * nq variants, with the smallest distance; compared as (hash, distance)
 * sets with the index's answer. */
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

static bf *expect_buf, *got_buf;
static int *dist_buf;

/* Brute force once per query: the smallest distance of every hash. */
static void brute(const imt_pdq *all, size_t n, const imt_pdq *q, int nq)
{
    for (size_t i = 0; i < n; i++) {
        int best = 999;
        for (int j = 0; j < nq; j++) {
            int d = imt_pdq_distance(&all[i], &q[j]);
            if (d < best) best = d;
        }
        dist_buf[i] = best;
    }
}

static int check_query(imt_cursor *c, const imt_pdq *all, size_t n, const imt_pdq *q, int nq,
                       int radius, const char *what)
{
    size_t ne = 0;
    for (size_t i = 0; i < n; i++) {
        if (dist_buf[i] <= radius) {
            expect_buf[ne].h = all[i];
            expect_buf[ne].d = dist_buf[i];
            ne++;
        }
    }
    const imt_match *m;
    size_t nm;
    imt_err e = imt_query_pdq(c, q, nq, radius, &m, &nm);
    CHECKF(e == IMT_OK, "%s: query failed: %s", what, imt_strerror(e));
    if (e) return 0;
    int ok = nm == ne;
    for (size_t i = 0; i < nm && ok; i++) {
        got_buf[i].h = m[i].pdq;
        got_buf[i].d = m[i].distance;
        /* reported variant gives the reported distance; sorted by distance */
        if (imt_pdq_distance(&m[i].pdq, &q[m[i].variant]) != m[i].distance) ok = 0;
        if (i && m[i - 1].distance > m[i].distance) ok = 0;
        if (m[i].kind != IMT_KIND_PDQ || m[i].n_members < 1) ok = 0;
    }
    if (ok) {
        qsort(expect_buf, ne, sizeof *expect_buf, cmp_bf);
        qsort(got_buf, nm, sizeof *got_buf, cmp_bf);
        for (size_t i = 0; i < ne && ok; i++)
            if (cmp_bf(&expect_buf[i], &got_buf[i])) ok = 0;
    }
    CHECKF(ok, "%s: r=%d nq=%d: index gave %zu results, brute force %zu", what, radius, nq, nm, ne);
    return ok;
}

static char tmpdir[256];

static void rm_rf(const char *p)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", p);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", p);
}

/* Build an index of base (compacted) + extra (delta), then check queries. */
static void run_dataset(const char *name, imt_pdq *all, size_t nbase, size_t nextra,
                        const imt_pdq *queries, size_t nqueries, const int *radii, int nradii,
                        int methods)
{
    char dir[400], csv[400];
    snprintf(dir, sizeof dir, "%s/%s.idx", tmpdir, name);
    snprintf(csv, sizeof csv, "%s/%s.csv", tmpdir, name);
    imt_index_opts o;
    imt_index_opts_init(&o);
    o.read_only = 0;
    o.create = 1;
    imt_index *idx = NULL;
    REQUIRE(imt_index_open(&idx, dir, &o) == IMT_OK);
    imt_import_opts io;
    imt_import_opts_init(&io);
    imt_import_stats st;
    write_csv(csv, all, nbase);
    imt_err e = imt_index_import(idx, csv, &io, &st);
    CHECKF(e == IMT_OK, "%s: import: %s", name, imt_index_last_error(idx));
    CHECK(st.records == nbase && st.new_entries == nbase && st.compacted);
    if (nextra) {
        write_csv(csv, all + nbase, nextra);
        io.name = "extra";
        e = imt_index_import(idx, csv, &io, &st);
        CHECKF(e == IMT_OK, "%s: import 2: %s", name, imt_index_last_error(idx));
        CHECK(st.records == nextra && !st.compacted);
    }
    imt_index_stats s;
    REQUIRE(imt_index_stats_get(idx, &s) == IMT_OK);
    CHECK(s.pdq_main == nbase && s.pdq_delta == nextra && s.entries == nbase + nextra);
    CHECKF(imt_index_verify(idx) == IMT_OK, "%s: verify: %s", name, imt_index_last_error(idx));
    /* format 2: the compacted arrays (large values, on LMDB overflow pages)
     * start on a 64-byte boundary of the map, so no hash straddles two
     * cache lines (index.h: IDX_SEG_LEAD) */
    if (nbase >= 1024) {
        const imt__idx_seg *v = &idx->view.seg[0];
        CHECKF(((uintptr_t)v->pdq & 63) == 0 && ((uintptr_t)v->off[0] & 63) == 0,
               "%s: compacted arrays at %u, %u mod 64", name, (unsigned)((uintptr_t)v->pdq & 63),
               (unsigned)((uintptr_t)v->off[0] & 63));
    }
    imt_cursor *c;
    REQUIRE(imt_cursor_open(&c, idx) == IMT_OK);
    size_t n = nbase + nextra, fails = 0;
    static const imt_search_method meth[3] = {IMT_SEARCH_AUTO, IMT_SEARCH_MIH, IMT_SEARCH_SCAN};
    for (size_t qi = 0; qi < nqueries && fails < 5; qi++) {
        brute(all, n, &queries[qi], 1);
        for (int mi = 0; mi < 3; mi++) {
            if (!(methods & (1 << mi))) continue;
            imt_cursor_set_method(c, meth[mi]);
            for (int ri = 0; ri < nradii; ri++) {
                char what[128];
                snprintf(what, sizeof what, "%s method %d query %zu", name, mi, qi);
                if (!check_query(c, all, n, &queries[qi], 1, radii[ri], what)) fails++;
            }
        }
    }
    /* dihedral: 8 variants per query (consecutive query hashes) */
    for (size_t qi = 0; qi + 8 <= nqueries && qi < 64 && fails < 5; qi += 8) {
        brute(all, n, &queries[qi], 8);
        for (int mi = 0; mi < 3; mi++) {
            if (!(methods & (1 << mi))) continue;
            imt_cursor_set_method(c, meth[mi]);
            for (int r = 0; r <= 63; r += 31) {
                char what[128];
                snprintf(what, sizeof what, "%s method %d dihedral %zu", name, mi, qi);
                if (!check_query(c, all, n, &queries[qi], 8, r, what)) fails++;
            }
        }
    }
    /* batches (blocked scan or MIH per query) give each query's own answer */
    for (int mi = 0; mi < 3; mi++) {
        imt_cursor_set_method(c, meth[mi]);
        for (int r = 0; r <= 63; r += 63) {
            for (int nvar = 1; nvar <= 8; nvar += 7) {
                size_t nb = nqueries / (size_t)nvar < 13 ? nqueries / (size_t)nvar : 13;
                const imt_match *m;
                size_t nm;
                REQUIRE(imt_query_pdq_batch(c, queries, nb, nvar, r, &m, &nm) == IMT_OK);
                imt_match *bm = malloc((nm + 1) * sizeof *bm);
                REQUIRE(bm);
                memcpy(bm, m, nm * sizeof *bm);
                size_t at = 0;
                for (size_t i = 0; i < nb; i++) {
                    size_t n1;
                    REQUIRE(imt_query_pdq(c, &queries[i * (size_t)nvar], nvar, r, &m, &n1) == IMT_OK);
                    int same = at + n1 <= nm;
                    for (size_t k = 0; k < n1 && same; k++)
                        same = bm[at + k].query == i && bm[at + k].entry == m[k].entry &&
                               bm[at + k].distance == m[k].distance &&
                               bm[at + k].variant == m[k].variant;
                    CHECKF(same, "%s: batch of %zu differs at query %zu (r=%d nvar=%d method %d)",
                           name, nb, i, r, nvar, mi);
                    at += n1;
                }
                CHECK(at == nm);
                free(bm);
            }
        }
    }
    imt_query_counters qc;
    imt_cursor_counters(c, &qc);
    CHECK(qc.queries > 0 && qc.candidates > 0);
    imt_cursor_close(c);
    imt_index_close(idx);
    unlink(csv);
}

static void exactness(size_t N, int full)
{
    expect_buf = malloc((N + 10000) * sizeof *expect_buf);
    got_buf = malloc((N + 10000) * sizeof *got_buf);
    dist_buf = malloc((N + 10000) * sizeof *dist_buf);
    REQUIRE(expect_buf && got_buf && dist_buf);
    static const int radii_full[] = {0, 1, 8, 31, 32, 47, 63};
    static const int radii_small[] = {0, 31, 63};
    const int *radii = full ? radii_full : radii_small;
    int nradii = full ? 7 : 3;
    size_t nq = full ? 160 : 48;

    /* 1. random: base + delta; queries = indexed hashes with 0..40 bits
     * flipped (from both segments) and unrelated hashes */
    size_t extra = 3000;
    imt_pdq *all = malloc((N + extra) * sizeof *all), *q = malloc(nq * sizeof *q);
    REQUIRE(all && q);
    for (size_t i = 0; i < N + extra; i++) rand_hash(&all[i]);
    size_t n = uniq(all, N + extra);
    shuffle(all, n);
    for (size_t i = 0; i < nq; i++) {
        if (i % 4 == 3) rand_hash(&q[i]);
        else {
            q[i] = all[rnd() % n];
            flip(&q[i], (int)(rnd() % 41));
        }
    }
    run_dataset("random", all, n - extra, extra, q, nq, radii, nradii, 7);

    /* 2. clustered: noisy copies (1..24 bits) of a few thousand centres */
    size_t ncent = 2000;
    imt_pdq *cent = malloc(ncent * sizeof *cent);
    REQUIRE(cent);
    for (size_t i = 0; i < ncent; i++) rand_hash(&cent[i]);
    for (size_t i = 0; i < N + extra; i++) {
        all[i] = cent[rnd() % ncent];
        flip(&all[i], 1 + (int)(rnd() % 24));
    }
    n = uniq(all, N + extra);
    shuffle(all, n);
    for (size_t i = 0; i < nq; i++) {
        q[i] = cent[rnd() % ncent];
        flip(&q[i], (int)(rnd() % 20));
    }
    run_dataset("clustered", all, n - extra, extra, q, nq, radii, nradii, 7);

    /* 3. planted: around each query, hashes at exactly 0, 1, r-1, r, r+1
     * for r = 31 and 63, placed in both segments */
    for (size_t i = 0; i < N + extra; i++) rand_hash(&all[i]);
    static const int dists[] = {0, 1, 30, 31, 32, 62, 63, 64};
    size_t k = 0;
    for (size_t i = 0; i < nq; i++) {
        rand_hash(&q[i]);
        for (int d = 0; d < 8; d++) {
            size_t at = (k * 7919) % (N + extra);
            k++;
            all[at] = q[i];
            flip(&all[at], dists[d]);
        }
    }
    n = uniq(all, N + extra);
    shuffle(all, n);
    run_dataset("planted", all, n - extra, extra, q, nq, radii, nradii, 7);
    free(cent);
    free(all);
    free(q);
    free(expect_buf);
    free(got_buf);
    free(dist_buf);
}

/* Every kernel gives the same hits as the portable one. */
static void kernels(void)
{
    size_t n = 5000;
    uint8_t *arr = malloc(n * 32), q[8 * 32];
    uint32_t *i0 = malloc(n * 8 * 4), *i1 = malloc(n * 8 * 4);
    uint16_t *d0 = malloc(n * 8 * 2), *d1 = malloc(n * 8 * 2);
    REQUIRE(arr && i0 && i1 && d0 && d1);
    for (size_t i = 0; i < n * 32; i += 8) {
        uint64_t r = rnd();
        memcpy(arr + i, &r, 8);
    }
    for (int j = 0; j < 8; j++) {
        memcpy(q + 32 * j, arr + 32 * (rnd() % n), 32);
        imt_pdq t;
        memcpy(t.bytes, q + 32 * j, 32);
        flip(&t, j * 9);
        memcpy(q + 32 * j, t.bytes, 32);
    }
    unsigned f = imt__cpu_features();
    imt__idx_scan_fn fns[2] = {(f & IMT_CPU_AVX2) ? imt__idx_scan_avx2 : NULL,
                          (f & IMT_CPU_AVX512) ? imt__idx_scan_avx512 : NULL};
    int tested = 0;
    for (int r = 0; r <= 256; r += (r < 140 ? 7 : 58)) {
        for (int nq = 1; nq <= 8; nq += 7) {
            size_t k0 = imt__idx_scan_portable(arr, n - 3, q, nq, r, i0, d0);
            /* as sets of (idx, dq) */
            uint64_t s0 = 0, x0 = 0;
            for (size_t i = 0; i < k0; i++) {
                s0 += ((uint64_t)i0[i] << 16 | d0[i]) * 0x9E3779B97F4A7C15ull;
                x0 ^= (uint64_t)i0[i] * 31 + d0[i];
            }
            for (int fi = 0; fi < 2; fi++) {
                if (!fns[fi]) continue;
                size_t k1 = fns[fi](arr, n - 3, q, nq, r, i1, d1);
                uint64_t s1 = 0, x1 = 0;
                for (size_t i = 0; i < k1; i++) {
                    s1 += ((uint64_t)i1[i] << 16 | d1[i]) * 0x9E3779B97F4A7C15ull;
                    x1 ^= (uint64_t)i1[i] * 31 + d1[i];
                }
                CHECKF(k0 == k1 && s0 == s1 && x0 == x1, "scan kernel %d differs at r=%d nq=%d", fi, r, nq);
                tested++;
            }
        }
    }
    /* the verify-step kernel */
    uint32_t ids[300];
    for (int i = 0; i < 300; i++) ids[i] = (uint32_t)(rnd() % n);
    imt__idx_dist_portable(arr, ids, 300, q, d0);
    if (f & IMT_CPU_AVX2) {
        imt__idx_dist_avx2(arr, ids, 300, q, d1);
        CHECK(memcmp(d0, d1, 300 * 2) == 0);
    }
    printf("kernels: %d SIMD comparisons (features %u)\n", tested, f);
    free(arr);
    free(i0);
    free(i1);
    free(d0);
    free(d1);
}

/* Digests, lists, identity, read-only handles, bad arguments. */
static void api_misc(void)
{
    char dir[400], f1[400];
    snprintf(dir, sizeof dir, "%s/misc.idx", tmpdir);
    snprintf(f1, sizeof f1, "%s/a.md5", tmpdir);
    FILE *f = fopen(f1, "w");
    REQUIRE(f);
    fprintf(f, "d41d8cd98f00b204e9800998ecf8427e  empty.txt\n"
               "0cc175b9c0f1b6a831c399e269772661  a.txt\n");
    fclose(f);
    imt_index *idx = NULL;
    CHECK(imt_index_open(&idx, dir, NULL) == IMT_E_NOT_FOUND && !idx);
    CHECK(strstr(imt_index_open_error(), dir) != NULL);
    imt_index_opts o;
    imt_index_opts_init(&o);
    o.read_only = 0;
    o.create = 1;
    REQUIRE(imt_index_open(&idx, dir, &o) == IMT_OK);
    char id0[65], id1[65];
    REQUIRE(imt_index_identity(idx, id0) == IMT_OK);
    CHECK(strlen(id0) == 64);
    imt_import_opts io;
    imt_import_opts_init(&io);
    io.name = "md5 list";
    io.version = "v1";
    io.import_time = 1700000000;
    imt_import_stats st;
    CHECKF(imt_index_import(idx, f1, &io, &st) == IMT_OK, "%s", imt_index_last_error(idx));
    CHECK(st.list_id == 1 && st.records == 2 && strcmp(st.format, "md5sum") == 0);
    /* the same file again: refused (its matches would count twice) ... */
    io.name = "again";
    CHECK(imt_index_import(idx, f1, &io, &st) == IMT_E_DUPLICATE &&
          strstr(imt_index_last_error(idx), "imported already as list 1 'md5 list'"));
    /* ... unless asked: same hashes -> one entry, two memberships */
    io.again = 1;
    CHECK(imt_index_import(idx, f1, &io, &st) == IMT_OK && st.merged == 2 && st.new_entries == 0);
    REQUIRE(imt_index_identity(idx, id1) == IMT_OK);
    CHECK(strcmp(id0, id1) != 0);
    CHECK(imt_index_list_count(idx) == 2);
    imt_list_info li;
    REQUIRE(imt_index_list_get(idx, 0, &li) == IMT_OK);
    CHECK(li.id == 1 && !strcmp(li.name, "md5 list") && !strcmp(li.version, "v1") &&
          !strcmp(li.format, "md5sum") && li.entries == 2 && li.import_time == 1700000000 &&
          !li.known_good && !strcmp(li.scheme, "custom") && strlen(li.file_sha256) == 64);
    CHECK(imt_index_list_get(idx, 2, &li) == IMT_E_INVALID);
    imt_cursor *c;
    REQUIRE(imt_cursor_open(&c, idx) == IMT_OK);
    /* import refuses while a cursor is open */
    CHECK(imt_index_import(idx, f1, &io, &st) == IMT_E_BUSY);
    uint8_t md5[16];
    REQUIRE(imt_hex_decode(md5, 16, "0cc175b9c0f1b6a831c399e269772661", 32) == IMT_OK);
    const imt_match *m;
    size_t n;
    CHECK(imt_query_digest(c, IMT_KIND_MD5, md5, &m, &n) == IMT_OK && n == 1);
    if (n == 1) {
        CHECK(m[0].kind == IMT_KIND_MD5 && m[0].n_members == 2 && m[0].entry == 1);
        CHECK(m[0].members[0].list_id == 1 && m[0].members[1].list_id == 2);
        CHECK(!strcmp(m[0].members[0].external_id, "a.txt"));
        CHECK(m[0].members[0].category == -1 && m[0].quality == -1);
    }
    md5[0] ^= 1;
    CHECK(imt_query_digest(c, IMT_KIND_MD5, md5, &m, &n) == IMT_OK && n == 0);
    CHECK(imt_query_digest(c, IMT_KIND_PDQ, md5, &m, &n) == IMT_E_INVALID);
    imt_pdq q;
    memset(&q, 0, sizeof q);
    CHECK(imt_query_pdq(c, &q, 1, 257, &m, &n) == IMT_E_INVALID);
    CHECK(imt_query_pdq(c, &q, 1, -1, &m, &n) == IMT_E_INVALID);
    CHECK(imt_query_pdq(c, &q, 9, 31, &m, &n) == IMT_E_INVALID);
    CHECK(imt_query_pdq(c, &q, 1, 256, &m, &n) == IMT_OK && n == 0);
    imt_cursor_close(c);
    CHECK(imt_index_verify(idx) == IMT_OK);
    imt_index_close(idx);
    /* read-only: import refused; create exclusive refused */
    REQUIRE(imt_index_open(&idx, dir, NULL) == IMT_OK);
    CHECK(imt_index_import(idx, f1, &io, &st) == IMT_E_READONLY);
    char id2[65];
    imt_index_identity(idx, id2);
    CHECK(strcmp(id1, id2) == 0);
    imt_index_close(idx);
    o.exclusive = 1;
    CHECK(imt_index_open(&idx, dir, &o) == IMT_E_EXISTS && !idx);
    /* not an index */
    CHECK(imt_index_open(&idx, tmpdir, NULL) == IMT_E_INDEX_FORMAT);
    CHECK(imt_index_open(&idx, f1, NULL) == IMT_E_INDEX_FORMAT);
    imt_index_close(NULL);
    imt_cursor_close(NULL);
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "portable-child")) {
        /* run by the parent with IMT_FORCE_PORTABLE=1 */
        snprintf(tmpdir, sizeof tmpdir, "%s", argv[2]);
        if (imt__cpu_features() != 0) {
            fprintf(stderr, "IMT_FORCE_PORTABLE did not clear the features\n");
            return 1;
        }
        exactness(20000, 0);
        return tu_done("test_index (portable)");
    }
    snprintf(tmpdir, sizeof tmpdir, "%s/test_index.XXXXXX", IMT_BINARY_DIR);
    REQUIRE(mkdtemp(tmpdir));
    kernels();
    api_misc();
    exactness(100000, 1);
    /* the portable path, in a child process (features are detected once) */
    char child_dir[300];
    snprintf(child_dir, sizeof child_dir, "%s/portable", tmpdir);
    REQUIRE(mkdir(child_dir, 0777) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        setenv("IMT_FORCE_PORTABLE", "1", 1);
        execl(argv[0], argv[0], "portable-child", child_dir, (char *)NULL);
        _exit(127);
    }
    int status;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "portable child failed (%d)", status);
    rm_rf(tmpdir);
    return tu_done("test_index");
}
