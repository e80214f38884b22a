/* tests/test_index_concurrent.c -- issue 11: readers beside a writer.
 *
 * A child process imports lists 1..K into an index, one at a time, and
 * compacts every third import (so the compacted PDQ segment, the delta and
 * the digest tables all change under the readers). With the delta
 * threshold lowered (imt__idx_delta_max) and a base 8 times a list, the
 * other PDQ imports build compacted levels: a new level 1, level 1 merged
 * into level 0, level 1 rebuilt from itself and the delta. Meanwhile this process
 * opens the index again and again and queries it: every answer must be
 * that of one snapshot, the one the handle opened: a hash of list j is
 * found, with exactly its membership of list j, iff the handle's inventory
 * holds list j, and never otherwise. No reader may fail: a cursor opened
 * after a commit reads the handle's snapshot (before the handle kept its
 * cursors' transactions, index.c, it was refused with IMT_E_INDEX_CHANGED
 * and `index query` or a scan failed at its start); the last part makes
 * that happen for certain: a commit between the open and the cursors.
 * The lists are generated here, so the expected answers do not come from
 * the code under test. */
#include "index/index.h"
#include "testutil.h"

#include <imgtriage.h>

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define K 12          /* lists imported by the writer (list 0 is the base) */
#define PER_LIST 3000 /* MD5 and PDQ records per list */
#define BASE_N 25000  /* ... and in list 0, the base (> 8 x PER_LIST) */

static char tmp[300], dir[400];

static uint64_t mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static void md5_of(int list, int i, uint8_t d[16])
{
    uint64_t a = mix((uint64_t)list << 32 | (uint64_t)i), b = mix(a);
    memcpy(d, &a, 8);
    memcpy(d + 8, &b, 8);
}

static void pdq_of(int list, int i, imt_pdq *h)
{
    for (int w = 0; w < 4; w++) {
        uint64_t v = mix(((uint64_t)list << 40) ^ ((uint64_t)i << 4) ^ (uint64_t)w ^ 0xABCDEF);
        memcpy(h->bytes + 8 * w, &v, 8);
    }
}

static void write_list(int list, char *md5p, char *pdqp, size_t cap)
{
    snprintf(md5p, cap, "%s/l%d.md5", tmp, list);
    snprintf(pdqp, cap, "%s/l%d.csv", tmp, list);
    FILE *f = fopen(md5p, "w"), *g = fopen(pdqp, "w");
    REQUIRE(f && g);
    for (int i = 0; i < (list ? PER_LIST : BASE_N); i++) {
        uint8_t d[16];
        imt_pdq h;
        char hex[65];
        md5_of(list, i, d);
        for (int k = 0; k < 16; k++) fprintf(f, "%02x", d[k]);
        fprintf(f, "  l%d/f%d\n", list, i);
        pdq_of(list, i, &h);
        imt_pdq_to_hex(&h, hex);
        fprintf(g, "%s,100,l%d/p%d\n", hex, list, i);
    }
    REQUIRE(fclose(f) == 0 && fclose(g) == 0);
}

/* Reader rounds so far, shared with the writer (MAP_SHARED): the writer
 * lets the reader run rounds between its imports, so the check that reads
 * ran beside the writes does not depend on the machine's load. */
static volatile long *shared_rounds;
/* Imports after which the index had more than one compacted level, and
 * level builds that left level 0 as it was (counted by the writer). */
static volatile long *shared_levels, *shared_upper;

/* The writer: list L = the MD5 file then the PDQ file, as two lists;
 * list ids 2L+1 (MD5) and 2L+2 (PDQ). */
static int writer(void)
{
    imt_index_opts o;
    imt_index_opts_init(&o);
    o.read_only = 0;
    imt_index *idx = NULL;
    if (imt_index_open(&idx, dir, &o) != IMT_OK) return 1;
    imt__idx_delta_max = 1000; /* a list's 3,000 PDQ hashes make a level */
    for (int l = 1; l <= K; l++) {
        char a[500], b[500];
        write_list(l, a, b, sizeof a);
        imt_import_opts io;
        imt_import_opts_init(&io);
        imt_import_stats st;
        if (imt_index_import(idx, a, &io, &st) != IMT_OK) return 2;
        io.compact = l % 3 == 0 ? 1 : -1;
        imt_index_stats s0, s1;
        imt_index_stats_get(idx, &s0);
        if (imt_index_import(idx, b, &io, &st) != IMT_OK) return 3;
        imt_index_stats_get(idx, &s1);
        if (s1.pdq_levels > 1) (*shared_levels)++;
        if (st.pdq_written && s1.pdq_level[0] == s0.pdq_level[0]) (*shared_upper)++;
        usleep(20000);
        /* at least two reader rounds per list imported (10 s at most) */
        for (int w = 0; w < 1000 && *shared_rounds < 2L * l; w++) usleep(10000);
    }
    imt_index_close(idx);
    return 0;
}

typedef struct tally {
    long rounds, reopens, queries, bad;
} tally;

/* One reader round: open, check a sample of every list against the
 * handle's inventory. */
static void round_(tally *t, unsigned seed)
{
    imt_index_opts o;
    imt_index_opts_init(&o);
    imt_index *idx = NULL;
    imt_err e = imt_index_open(&idx, dir, &o);
    if (e != IMT_OK) {
        t->bad++;
        fprintf(stderr, "reader: open: %s (%s)\n", imt_index_open_error(), imt_err_name(e));
        return;
    }
    size_t nl = imt_index_list_count(idx);
    imt_cursor *c = NULL;
    e = imt_cursor_open(&c, idx);
    if (e != IMT_OK) {
        t->bad++;
        fprintf(stderr, "reader: cursor: %s\n", imt_err_name(e));
        imt_index_close(idx);
        return;
    }
    t->rounds++;
    (*shared_rounds)++;
    for (int l = 0; l <= K; l++) {
        uint32_t md5_list = (uint32_t)(2 * l + 1), pdq_list = (uint32_t)(2 * l + 2);
        int have_md5 = md5_list <= nl, have_pdq = pdq_list <= nl;
        for (int s = 0; s < 4; s++) {
            int i = (int)(mix(seed * 131u + (unsigned)(l * 7 + s)) % PER_LIST);
            uint8_t d[16];
            imt_pdq h;
            const imt_match *m = NULL;
            size_t n = 0;
            md5_of(l, i, d);
            e = imt_query_digest(c, IMT_KIND_MD5, d, &m, &n);
            t->queries++;
            if (e == IMT_E_INDEX_CHANGED) { /* a lock-less reader only */
                t->reopens++;
                goto done;
            }
            if (e != IMT_OK || n != (size_t)have_md5 ||
                (n && (m[0].n_members != 1 || m[0].members[0].list_id != md5_list))) {
                t->bad++;
                fprintf(stderr, "reader: MD5 of list %d: %s, %zu matches, %zu lists in the snapshot\n",
                        l, imt_err_name(e), n, nl);
            }
            pdq_of(l, i, &h);
            h.bytes[3] ^= 0x11; /* two bits off: radius 8 finds it */
            e = imt_query_pdq(c, &h, 1, 8, &m, &n);
            t->queries++;
            if (e == IMT_E_INDEX_CHANGED) {
                t->reopens++;
                goto done;
            }
            if (e != IMT_OK || n != (size_t)have_pdq ||
                (n && (m[0].distance != 2 || m[0].n_members != 1 ||
                       m[0].members[0].list_id != pdq_list))) {
                t->bad++;
                fprintf(stderr, "reader: PDQ of list %d: %s, %zu matches, %zu lists in the snapshot\n",
                        l, imt_err_name(e), n, nl);
            }
        }
    }
done:
    imt_cursor_close(c);
    imt_index_close(idx);
}

int main(void)
{
    snprintf(tmp, sizeof tmp, "%s/test_index_concurrent.XXXXXX", IMT_BINARY_DIR);
    REQUIRE(mkdtemp(tmp));
    snprintf(dir, sizeof dir, "%s/idx", tmp);
    /* the base: list 0 (lists 1 and 2) */
    {
        imt_index *idx = tu_index_rw(dir, 1);
        char a[500], b[500];
        write_list(0, a, b, sizeof a);
        imt_import_opts io;
        imt_import_opts_init(&io);
        imt_import_stats st;
        REQUIRE(imt_index_import(idx, a, &io, &st) == IMT_OK);
        REQUIRE(imt_index_import(idx, b, &io, &st) == IMT_OK);
        imt_index_close(idx);
    }
    void *sh = mmap(NULL, 3 * sizeof(long), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(sh != MAP_FAILED);
    shared_rounds = sh;
    shared_levels = (long *)sh + 1;
    shared_upper = (long *)sh + 2;
    *shared_rounds = *shared_levels = *shared_upper = 0;
    fflush(stdout);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) _exit(writer());
    tally t = {0, 0, 0, 0};
    int status = 0, done = 0;
    unsigned seed = 1;
    while (!done) {
        round_(&t, seed++);
        if (waitpid(pid, &status, WNOHANG) == pid) done = 1;
    }
    round_(&t, seed++); /* after the last commit */
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the writer failed (status %d)", status);
    printf("reader: %ld rounds, %ld queries, %ld reopens on a changed snapshot, %ld bad answers\n",
           t.rounds, t.queries, t.reopens, t.bad);
    CHECK(t.bad == 0);
    printf("writer: %ld imports left several compacted levels, %ld built a level beyond 0\n",
           *shared_levels, *shared_upper);
    CHECKF(*shared_levels >= 4 && *shared_upper >= 4, "levels: %ld, %ld", *shared_levels, *shared_upper);
    CHECKF(t.rounds >= 20, "only %ld reader rounds ran beside the writer", t.rounds);

    /* A commit by another process between the handle's open and its
     * cursors: three cursors (the pool holds at least four) and fifty
     * opened one after another all read the handle's snapshot: list K+1
     * absent, list 1 present; the next open sees K+1. */
    {
        imt_index_opts o;
        imt_index_opts_init(&o);
        imt_index *idx = NULL;
        REQUIRE(imt_index_open(&idx, dir, &o) == IMT_OK);
        size_t nl = imt_index_list_count(idx);
        char a[500], b[500];
        write_list(K + 1, a, b, sizeof a);
        fflush(stdout);
        pid_t w = fork();
        REQUIRE(w >= 0);
        if (w == 0) {
            imt_index *wi = tu_index_rw(dir, 0); /* exits 1 if it cannot */
            imt_import_opts io;
            imt_import_opts_init(&io);
            io.compact = 1;
            imt_import_stats st;
            int ok = imt_index_import(wi, a, &io, &st) == IMT_OK && imt_index_import(wi, b, &io, &st) == IMT_OK;
            imt_index_close(wi);
            _exit(ok ? 0 : 1);
        }
        REQUIRE(waitpid(w, &status, 0) == w);
        CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the second writer failed (%d)", status);
        imt_cursor *cs[3] = {NULL, NULL, NULL};
        for (int k = 0; k < 3; k++) {
            imt_err e = imt_cursor_open(&cs[k], idx);
            CHECKF(e == IMT_OK, "cursor %d after a commit: %s", k, imt_err_name(e));
        }
        for (int r = 0; r < 50 && cs[0]; r++) {
            imt_cursor *c = NULL;
            imt_err e = imt_cursor_open(&c, idx);
            CHECKF(e == IMT_OK, "cursor %d opened and closed after a commit: %s", r + 3, imt_err_name(e));
            imt_cursor_close(c);
        }
        for (int k = 0; k < 3; k++) {
            if (!cs[k]) continue;
            uint8_t d[16];
            imt_pdq h;
            const imt_match *m = NULL;
            size_t n = 9;
            md5_of(K + 1, 5, d);
            CHECK(imt_query_digest(cs[k], IMT_KIND_MD5, d, &m, &n) == IMT_OK && n == 0);
            pdq_of(K + 1, 5, &h);
            CHECK(imt_query_pdq(cs[k], &h, 1, 8, &m, &n) == IMT_OK && n == 0);
            md5_of(1, 5, d);
            CHECK(imt_query_digest(cs[k], IMT_KIND_MD5, d, &m, &n) == IMT_OK && n == 1 &&
                  m[0].members[0].list_id == 3);
            imt_cursor_close(cs[k]);
        }
        CHECK(imt_index_list_count(idx) == nl);
        imt_index_close(idx);
        idx = NULL;
        REQUIRE(imt_index_open(&idx, dir, &o) == IMT_OK);
        CHECKF(imt_index_list_count(idx) == nl + 2, "%zu lists after the second writer, %zu before",
               imt_index_list_count(idx), nl);
        imt_cursor *c = NULL;
        REQUIRE(imt_cursor_open(&c, idx) == IMT_OK);
        uint8_t d[16];
        const imt_match *m = NULL;
        size_t n = 0;
        md5_of(K + 1, 5, d);
        CHECK(imt_query_digest(c, IMT_KIND_MD5, d, &m, &n) == IMT_OK && n == 1 &&
              m[0].members[0].list_id == (uint32_t)(2 * (K + 1) + 1));
        imt_cursor_close(c);
        imt_index_close(idx);
    }
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (!getenv("KEEP") && tu_failures == 0 && system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", tmp);
    return tu_done("test_index_concurrent");
}
