/* tests/test_index_kinds.c -- issue 11: storage by kind. A digest-only
 * entry (one MD5, SHA-1 or SHA-256, one membership without a file name)
 * is stored as its digest's key and value alone (docs/INDEX.md, "Storage
 * by kind"), at most 40 bytes per entry on disk; an entry that a later
 * record changes (another list, a file name, another hash kind, a more
 * severe category) gets its full record, in the same import or a later
 * one, across batches too. Every answer is checked against what the test
 * wrote (the expected memberships come from the generator, not from the
 * index), and `verify` checks the structures after each step. */
#include "testutil.h"

#include <imgtriage.h>

#include <fcntl.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NA 40000u /* list A: MD5 digests, known-good */
#define NB 3000u  /* list B: SHA-1 digests */
#define NJ 24000u /* the two-list export: half of it joins the other half */

static char tmp[300];

static uint64_t mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static void digest(uint64_t seed, uint8_t *d, size_t n)
{
    for (size_t i = 0; i < n; i += 8) {
        uint64_t v = mix(seed * 4 + i / 8);
        memcpy(d + i, &v, n - i < 8 ? n - i : 8);
    }
}

static void hexs(const uint8_t *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", d[i]);
}

/* The memberships of digest d: the list ids (sorted as the index keeps
 * them: in the order they joined) and external ids must be want[]. */
static void expect(imt_cursor *c, imt_hash_kind k, const uint8_t *d, size_t nw, const uint32_t *lists,
                   const char *const *ext, const int32_t *cat, const char *what, uint32_t i)
{
    const imt_match *m;
    size_t n;
    imt_err e = imt_query_digest(c, k, d, &m, &n);
    CHECKF(e == IMT_OK, "%s %u: query failed (%s)", what, i, imt_strerror(e));
    if (e) return;
    CHECKF(n == (nw ? 1u : 0u), "%s %u: %zu matches, want %u", what, i, n, nw ? 1u : 0u);
    if (n != 1) return;
    CHECKF(m[0].n_members == nw, "%s %u: %zu memberships, want %zu", what, i, m[0].n_members, nw);
    for (size_t j = 0; j < nw && j < m[0].n_members; j++) {
        const imt_membership *b = &m[0].members[j];
        CHECKF(b->list_id == lists[j] && !strcmp(b->external_id, ext[j]) && b->category == cat[j],
               "%s %u: membership %zu is list %u id '%s' category %d, want %u '%s' %d", what, i, j,
               (unsigned)b->list_id, b->external_id, (int)b->category, (unsigned)lists[j], ext[j],
               (int)cat[j]);
    }
}

/* Keys in the MD5 table and in its delta ("md5+"), read with LMDB. */
static void md5_tables(const char *dir, size_t *main_n, size_t *delta_n)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi a, b;
    MDB_stat sa, sb;
    *main_n = *delta_n = (size_t)-1;
    if (mdb_env_create(&env)) return;
    mdb_env_set_maxdbs(env, 32);
    if (mdb_env_open(env, dir, MDB_RDONLY, 0) == 0 && mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) == 0) {
        if (mdb_dbi_open(txn, "md5", 0, &a) == 0 && mdb_stat(txn, a, &sa) == 0) *main_n = sa.ms_entries;
        if (mdb_dbi_open(txn, "md5+", 0, &b) == 0 && mdb_stat(txn, b, &sb) == 0) *delta_n = sb.ms_entries;
        mdb_txn_abort(txn);
    }
    mdb_env_close(env);
}

/* List D, part `part` (0, 1): bare MD5 digests, 1000 then 2000. */
static void write_d(const char *path, int part)
{
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    uint8_t d[16];
    char hx[40];
    for (uint32_t i = part ? 1000 : 0; i < (part ? 3000u : 1000u); i++) {
        digest(4000000 + i, d, 16);
        hexs(d, 16, hx);
        fprintf(f, "%s\n", hx);
    }
    fclose(f);
}

static int import(imt_index *idx, const char *path, const char *fmt, int known_good, uint64_t budget,
                  imt_import_stats *st)
{
    imt_import_opts io;
    imt_import_opts_init(&io);
    io.format = fmt;
    io.known_good = known_good;
    io.memory_budget = budget;
    imt_err e = imt_index_import(idx, path, &io, st);
    CHECKF(e == IMT_OK, "import %s: %s", path, imt_index_last_error(idx));
    return e == IMT_OK;
}

int main(void)
{
    char dir[400], la[400], lb[400], lc[400], lj[400], line[400];
    snprintf(tmp, sizeof tmp, "%s/imt_kinds_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    REQUIRE(mkdtemp(tmp));
    snprintf(dir, sizeof dir, "%s/idx", tmp);
    snprintf(la, sizeof la, "%s/a.md5", tmp);
    snprintf(lb, sizeof lb, "%s/b.sha1", tmp);
    snprintf(lc, sizeof lc, "%s/c.md5sum", tmp);
    snprintf(lj, sizeof lj, "%s/j.jsonl", tmp);
    uint8_t d[32];
    char hx[70];

    /* A: NA MD5 digests, one per line; B: NB SHA-1 digests */
    FILE *f = fopen(la, "w");
    REQUIRE(f);
    for (uint32_t i = 0; i < NA; i++) {
        digest(i, d, 16);
        hexs(d, 16, hx);
        fprintf(f, "%s\n", hx);
    }
    fclose(f);
    f = fopen(lb, "w");
    REQUIRE(f);
    for (uint32_t i = 0; i < NB; i++) {
        digest(1000000 + i, d, 20);
        hexs(d, 20, hx);
        fprintf(f, "%s\n", hx);
    }
    fclose(f);
    imt_index *idx = tu_index_rw(dir, 1);
    REQUIRE(idx);
    imt_import_stats st;
    REQUIRE(import(idx, la, "md5-hex", 1, 0, &st));
    imt_index_stats is;
    imt_index_stats_get(idx, &is);
    /* 34 bytes a digest in a full B-tree (16 key + 8 value + LMDB's 8-byte
     * node header and 2-byte pointer), plus a few fixed pages; an entry
     * record and a 4-byte value cost 75 */
    double bpe = (double)is.file_bytes / (double)is.entries;
    CHECKF(is.entries == NA && bpe <= 40.0, "%llu entries, %.1f bytes per entry on disk (want <= 40)",
           (unsigned long long)is.entries, bpe);
    printf("digest-only MD5 list of %u: %.1f bytes per entry on disk\n", NA, bpe);
    REQUIRE(import(idx, lb, "sha1-hex", 0, 0, &st));
    CHECK(imt_index_verify(idx) == IMT_OK);

    /* C: md5sum lines with file names for every 10th digest of A, and 100
     * of its own: A's entries join list C (their records are written) */
    f = fopen(lc, "w");
    REQUIRE(f);
    for (uint32_t i = 0; i < NA; i += 10) {
        digest(i, d, 16);
        hexs(d, 16, hx);
        fprintf(f, "%s  file%u.jpg\n", hx, i);
    }
    for (uint32_t i = 0; i < 100; i++) {
        digest(2000000 + i, d, 16);
        hexs(d, 16, hx);
        fprintf(f, "%s  new%u.jpg\n", hx, i);
    }
    fclose(f);
    REQUIRE(import(idx, lc, "md5sum", 0, 0, &st));
    CHECK(st.merged == NA / 10 && st.new_entries == 100);
    CHECK(imt_index_verify(idx) == IMT_OK);
    /* D1: 1000 new bare digests: into the delta with C's 100 (1,100, under
     * a sixteenth of the table: no fold) */
    char ld[400];
    snprintf(ld, sizeof ld, "%s/d.md5", tmp);
    write_d(ld, 0);
    REQUIRE(import(idx, ld, "md5-hex", 1, 0, &st));
    CHECK(imt_index_verify(idx) == IMT_OK);
    imt_index_close(idx);
    size_t mn, dn;
    md5_tables(dir, &mn, &dn);
    CHECKF(mn == NA && dn == 1100, "MD5 table %zu keys, its delta %zu: want %u and 1100", mn, dn, NA);

    /* J: an export of two lists (ids 1 and 2) whose list 2 names, far
     * later in the file (other batches under the smallest budget) and
     * close by (the same batch), MD5 digests list 1 holds without a file
     * name; list 2's category is more severe for some (a repeat of the
     * same list would merge; another list joins) */
    f = fopen(lj, "w");
    REQUIRE(f);
    uint32_t n2 = 0;
    for (uint32_t i = 0; i < NJ; i++)
        if (i % 3 == 0 || (i % 5 == 0 && i + 1 < NJ)) n2++;
    fprintf(f, "{\"imgtriage-export\":2,\"index\":\"x\",\"lists\":["
               "{\"id\":1,\"name\":\"j1\",\"version\":\"\",\"format\":\"md5-hex\",\"scheme\":\"custom\","
               "\"known_good\":false,\"policy\":\"alert=none,0+\",\"file_sha256\":\"%064d\","
               "\"import_time\":1,\"entries\":%u},"
               "{\"id\":2,\"name\":\"j2\",\"version\":\"\",\"format\":\"md5-hex\",\"scheme\":\"custom\","
               "\"known_good\":false,\"policy\":\"alert=none,0+\",\"file_sha256\":\"%064d\","
               "\"import_time\":1,\"entries\":%u}]}\n", 1, NJ, 2, n2);
    for (uint32_t i = 0; i < NJ; i++) {
        digest(3000000 + i, d, 16);
        hexs(d, 16, hx);
        fprintf(f, "{\"md5\":\"%s\",\"lists\":[{\"list\":1,\"category\":%u,\"label\":\"\",\"id\":\"\"}]}\n",
                hx, i % 4);
        if (i % 5 == 0 && i + 1 < NJ && i % 3 != 0) { /* at once: the same batch */
            snprintf(line, sizeof line, "{\"md5\":\"%s\",\"lists\":[{\"list\":2,\"category\":7,\"label\":\"x\",\"id\":\"\"}]}\n", hx);
            fputs(line, f);
        }
    }
    for (uint32_t i = 0; i < NJ; i += 3) { /* at the end: later batches */
        digest(3000000 + i, d, 16);
        hexs(d, 16, hx);
        fprintf(f, "{\"md5\":\"%s\",\"lists\":[{\"list\":2,\"category\":7,\"label\":\"x\",\"id\":\"\"}]}\n", hx);
    }
    fclose(f);
    char dir2[400];
    snprintf(dir2, sizeof dir2, "%s/idx2", tmp);
    idx = tu_index_rw(dir2, 1);
    REQUIRE(idx);
    REQUIRE(import(idx, lj, "jsonl", -1, 4ull << 20, &st));
    CHECKF(st.batches > 2, "%llu batches: the list should span several", (unsigned long long)st.batches);
    CHECK(st.merged == n2 && st.new_entries == NJ);
    CHECK(imt_index_verify(idx) == IMT_OK);
    imt_index_close(idx);

    /* K: 60,000 MD5 digests sharing their first 8 bytes (the runs' block
     * index keeps only those: equal prefixes span its blocks), then every
     * 7th of them again, in later batches: each repeat is found */
    {
        char lk[400], dk[400];
        snprintf(lk, sizeof lk, "%s/k.md5", tmp);
        snprintf(dk, sizeof dk, "%s/idxk", tmp);
        f = fopen(lk, "w");
        REQUIRE(f);
        for (uint32_t i = 0; i < 60000; i++) fprintf(f, "0123456789abcdef%016llx\n", (unsigned long long)mix(i));
        for (uint32_t i = 0; i < 60000; i += 7) fprintf(f, "0123456789abcdef%016llx\n", (unsigned long long)mix(i));
        fclose(f);
        idx = tu_index_rw(dk, 1);
        REQUIRE(idx);
        REQUIRE(import(idx, lk, "md5-hex", 1, 4ull << 20, &st));
        CHECKF(st.batches > 2 && st.new_entries == 60000 && st.duplicates == (60000 + 6) / 7,
               "K: %llu batches, %llu new entries, %llu repeats", (unsigned long long)st.batches,
               (unsigned long long)st.new_entries, (unsigned long long)st.duplicates);
        CHECK(imt_index_verify(idx) == IMT_OK);
        imt_index_close(idx);
    }

    /* every answer, read-only, from both indexes; then D2 (2000 more)
     * passes a sixteenth: the delta is folded into the table, and again */
    for (int round = 0; round < 2; round++) {
    if (round) {
        idx = tu_index_rw(dir, 0);
        REQUIRE(idx);
        write_d(ld, 1);
        REQUIRE(import(idx, ld, "md5-hex", 1, 0, &st));
        CHECK(imt_index_verify(idx) == IMT_OK);
        imt_index_close(idx);
        md5_tables(dir, &mn, &dn);
        CHECKF(mn == NA + 3100 && dn == 0, "after the fold: MD5 table %zu keys, its delta %zu", mn, dn);
    }
    imt_index *ia = NULL, *ij = NULL;
    REQUIRE(imt_index_open(&ia, dir, NULL) == IMT_OK);
    REQUIRE(imt_index_open(&ij, dir2, NULL) == IMT_OK);
    imt_cursor *c = NULL, *cj = NULL;
    REQUIRE(imt_cursor_open(&c, ia) == IMT_OK && imt_cursor_open(&cj, ij) == IMT_OK);
    for (uint32_t i = 0; i < NA; i++) {
        char name[40];
        snprintf(name, sizeof name, "file%u.jpg", i);
        uint32_t lists[2] = {1, 3};
        const char *ext[2] = {"", name};
        int32_t cat[2] = {-1, -1};
        digest(i, d, 16);
        expect(c, IMT_KIND_MD5, d, i % 10 ? 1 : 2, lists, ext, cat, "A", i);
    }
    for (uint32_t i = 0; i < NB; i++) {
        uint32_t lists[1] = {2};
        const char *ext[1] = {""};
        int32_t cat[1] = {-1};
        digest(1000000 + i, d, 20);
        expect(c, IMT_KIND_SHA1, d, 1, lists, ext, cat, "B", i);
        digest(5000000 + i, d, 20); /* never imported */
        expect(c, IMT_KIND_SHA1, d, 0, lists, ext, cat, "absent", i);
    }
    for (uint32_t i = 0; i < 100; i++) {
        char name[40];
        snprintf(name, sizeof name, "new%u.jpg", i);
        uint32_t lists[1] = {3};
        const char *ext[1] = {name};
        int32_t cat[1] = {-1};
        digest(2000000 + i, d, 16);
        expect(c, IMT_KIND_MD5, d, 1, lists, ext, cat, "C", i);
    }
    for (uint32_t i = 0; i < (round ? 3000u : 1000u); i++) {
        uint32_t lists[1] = {4u + (i >= 1000)};
        const char *ext[1] = {""};
        int32_t cat[1] = {-1};
        digest(4000000 + i, d, 16);
        expect(c, IMT_KIND_MD5, d, 1, lists, ext, cat, "D", i);
    }
    for (uint32_t i = 0; i < NJ; i++) {
        int joined = i % 3 == 0 || (i % 5 == 0 && i + 1 < NJ);
        uint32_t lists[2] = {1, 2};
        const char *ext[2] = {"", ""};
        int32_t cat[2] = {(int32_t)(i % 4), 7};
        digest(3000000 + i, d, 16);
        expect(cj, IMT_KIND_MD5, d, joined ? 2 : 1, lists, ext, cat, "J", i);
    }
    imt_cursor_close(c);
    imt_cursor_close(cj);

    /* the md5-hex export of list A: the list's lines, in its order */
    char out[400];
    snprintf(out, sizeof out, "%s/a.out", tmp);
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    REQUIRE(fd >= 0);
    imt_export_opts eo;
    imt_export_opts_init(&eo);
    eo.format = "md5-hex";
    eo.list_id = 1;
    CHECK(imt_index_export(ia, fd, &eo) == IMT_OK);
    close(fd);
    size_t n1, n2b;
    unsigned char *x1 = tu_read_file(la, &n1), *x2 = tu_read_file(out, &n2b);
    CHECK(x1 && x2 && n1 == n2b && !memcmp(x1, x2, n1));
    free(x1);
    free(x2);
    imt_index_close(ia);
    imt_index_close(ij);
    }
    snprintf(line, sizeof line, "rm -rf '%s'", tmp);
    CHECK(system(line) == 0);
    return tu_done("test_index_kinds");
}
