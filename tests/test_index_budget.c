/* tests/test_index_budget.c -- issue 11: an import in bounded memory.
 *
 * A generated md5sum list several times larger than the import's memory
 * budget is imported in a fresh child process (exec'd, so its VmHWM starts
 * from its own image, as in test_bombs.c) with --memory-budget's minimum
 * (4 MiB): its peak RSS growth must stay under the budget plus the bytes
 * LMDB wrote (a write transaction holds its dirty pages in memory until it
 * has 512 MiB of them: LMDB's bound, not the list's) plus a fixed slack;
 * the same import with the default budget (one batch, as every import was
 * before) must grow past that bound, so the check can fail.
 *
 * Then the result: every digest of the list found with the first line's
 * name; a PDQ list imported in many batches answers radius searches exactly
 * as a brute-force scan of the list; and the exports of indexes built with
 * the smallest and the default budget are byte for byte the same (batching
 * changes no result). Both lists hold repeats (same hash, earlier line),
 * some across batch boundaries. */
#include "testutil.h"

#include <imgtriage.h>

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

#define N_MD5 600000u  /* md5sum lines: about 27 MB of text */
#define MD5_REPEAT 7u  /* every 7th line repeats the line 5000 before it */
#define N_PDQ 30000u
#define PDQ_REPEAT 11u
#define BUDGET (4ull << 20)
#define SLACK_MB (UNDER_ASAN ? 64 : 12)

static char tmp[300];

/* splitmix64: the lists' bytes, independent of the code under test */
static uint64_t mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* Line i's hash source: a repeat takes the source of line i - 5000. */
static uint32_t md5_src(uint32_t i)
{
    return (i >= 5000 && i % MD5_REPEAT == 0) ? i - 5000 : i;
}

static void md5_of(uint32_t src, uint8_t d[16])
{
    uint64_t a = mix(src * 2ull + 1), b = mix(src * 2ull + 2);
    memcpy(d, &a, 8);
    memcpy(d + 8, &b, 8);
}

static uint32_t pdq_src(uint32_t i)
{
    return (i >= 300 && i % PDQ_REPEAT == 0) ? i - 300 : i;
}

/* PDQ hashes in clusters of 8 near-duplicates, so radius 31 finds several. */
static void pdq_of(uint32_t src, imt_pdq *h)
{
    uint32_t base = src / 8;
    for (int w = 0; w < 4; w++) {
        uint64_t v = mix(1000003ull * base + (uint64_t)w + 77);
        memcpy(h->bytes + 8 * w, &v, 8);
    }
    for (int k = 0; k < 12; k++) { /* up to 12 bits off the cluster centre */
        uint64_t r = mix(0x5EED0000ull + src * 16ull + (uint64_t)k);
        if ((src & 7) != 0) h->bytes[(r >> 8) & 31] ^= (uint8_t)(1u << (r & 7));
    }
}

static long proc_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t fl = strlen(field);
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, field, fl) && line[fl] == ':') v = strtol(line + fl + 1, NULL, 10);
    fclose(f);
    return v;
}

static void write_lists(const char *md5p, const char *pdqp)
{
    FILE *f = fopen(md5p, "w");
    REQUIRE(f);
    for (uint32_t i = 0; i < N_MD5; i++) {
        uint8_t d[16];
        md5_of(md5_src(i), d);
        for (int k = 0; k < 16; k++) fprintf(f, "%02x", d[k]);
        fprintf(f, "  dir/file%07u.jpg\n", (unsigned)i);
    }
    REQUIRE(fclose(f) == 0);
    f = fopen(pdqp, "w");
    REQUIRE(f);
    for (uint32_t i = 0; i < N_PDQ; i++) {
        imt_pdq h;
        char hex[65];
        pdq_of(pdq_src(i), &h);
        imt_pdq_to_hex(&h, hex);
        fprintf(f, "%s,100,p%u\n", hex, (unsigned)i);
    }
    REQUIRE(fclose(f) == 0);
}

/* The child: create dir, import list with budget (0: default); prints
 * "hwm0 hwm1 batches duplicates records" (kB) and exits 0, or 1. */
static int child(const char *dir, const char *list, const char *budget)
{
    imt_index_opts o;
    imt_index_opts_init(&o);
    o.read_only = 0;
    o.create = 1;
    imt_index *idx = NULL;
    if (imt_index_open(&idx, dir, &o) != IMT_OK) return 1;
    imt_import_opts io;
    imt_import_opts_init(&io);
    io.memory_budget = strtoull(budget, NULL, 10);
    io.import_time = 1700000000;
    io.name = "list";
    imt_import_stats st;
    long hwm0 = proc_kb("VmHWM");
    imt_err e = imt_index_import(idx, list, &io, &st);
    long hwm1 = proc_kb("VmHWM");
    if (e != IMT_OK) {
        fprintf(stderr, "child import: %s\n", imt_index_last_error(idx));
        return 1;
    }
    printf("%ld %ld %llu %llu %llu\n", hwm0, hwm1, (unsigned long long)st.batches,
           (unsigned long long)st.duplicates, (unsigned long long)st.records);
    imt_index_close(idx);
    return 0;
}

typedef struct run {
    long hwm0, hwm1;
    unsigned long long batches, dups, records;
} run;

static const char *g_self;

static run import_in_child(const char *dir, const char *list, uint64_t budget)
{
    run r;
    memset(&r, 0, sizeof r);
    int fd[2];
    REQUIRE(pipe(fd) == 0);
    char b[32];
    snprintf(b, sizeof b, "%llu", (unsigned long long)budget);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        close(fd[1]);
        setenv("ASAN_OPTIONS", "quarantine_size_mb=16:detect_leaks=1", 1);
        char *args[] = {(char *)g_self, "--child", (char *)dir, (char *)list, b, NULL};
        execv(g_self, args);
        _exit(127);
    }
    close(fd[1]);
    char line[256] = "";
    ssize_t n = read(fd[0], line, sizeof line - 1);
    close(fd[0]);
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status) && WEXITSTATUS(status) == 0 && n > 0);
    line[n] = '\0';
    REQUIRE(sscanf(line, "%ld %ld %llu %llu %llu", &r.hwm0, &r.hwm1, &r.batches, &r.dups,
                   &r.records) == 5);
    return r;
}

static long file_kb(const char *dir)
{
    char p[520];
    struct stat sb;
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    REQUIRE(stat(p, &sb) == 0);
    return (long)(sb.st_size / 1024);
}

static imt_index *open_ro(const char *dir)
{
    imt_index_opts o;
    imt_index_opts_init(&o);
    imt_index *idx = NULL;
    REQUIRE(imt_index_open(&idx, dir, &o) == IMT_OK);
    return idx;
}

/* jsonl export without its first line (the header names the index). */
static char *export_body(const char *dir, const char *out)
{
    imt_index *idx = open_ro(dir);
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    REQUIRE(fd >= 0);
    imt_export_opts eo;
    imt_export_opts_init(&eo);
    CHECKF(imt_index_export(idx, fd, &eo) == IMT_OK, "export: %s", imt_index_last_error(idx));
    close(fd);
    imt_index_close(idx);
    size_t n;
    char *t = (char *)tu_read_file(out, &n);
    REQUIRE(t);
    char *nl = memchr(t, '\n', n);
    REQUIRE(nl);
    memmove(t, nl + 1, n - (size_t)(nl + 1 - t));
    t[n - (size_t)(nl + 1 - t)] = '\0';
    return t;
}

static void check_md5(const char *dir)
{
    imt_index *idx = open_ro(dir);
    imt_cursor *c = NULL;
    REQUIRE(imt_cursor_open(&c, idx) == IMT_OK);
    uint32_t missing = 0, wrong = 0;
    for (uint32_t i = 0; i < N_MD5; i++) {
        uint8_t d[16];
        md5_of(md5_src(i), d);
        const imt_match *m = NULL;
        size_t n = 0;
        if (imt_query_digest(c, IMT_KIND_MD5, d, &m, &n) != IMT_OK || n != 1) {
            missing++;
            continue;
        }
        char want[40];
        snprintf(want, sizeof want, "dir/file%07u.jpg", (unsigned)md5_src(i));
        if (m[0].n_members != 1 || strcmp(m[0].members[0].external_id, want) != 0) wrong++;
    }
    CHECKF(missing == 0 && wrong == 0, "md5: %u of %u missing, %u with another membership",
           (unsigned)missing, N_MD5, (unsigned)wrong);
    imt_index_stats s;
    REQUIRE(imt_index_stats_get(idx, &s) == IMT_OK);
    uint32_t distinct = 0;
    for (uint32_t i = 0; i < N_MD5; i++) distinct += md5_src(i) == i;
    CHECKF(s.entries == distinct, "entries %llu, want %u", (unsigned long long)s.entries,
           (unsigned)distinct);
    imt_cursor_close(c);
    CHECKF(imt_index_verify(idx) == IMT_OK, "verify: %s", imt_index_last_error(idx));
    imt_index_close(idx);
}

static int popcount256(const imt_pdq *a, const imt_pdq *b)
{
    int d = 0;
    for (int i = 0; i < 32; i++) d += __builtin_popcount((unsigned)(a->bytes[i] ^ b->bytes[i]));
    return d;
}

static void check_pdq(const char *dir)
{
    imt_pdq *all = malloc(N_PDQ * sizeof *all);
    REQUIRE(all);
    uint32_t nd = 0;
    for (uint32_t i = 0; i < N_PDQ; i++)
        if (pdq_src(i) == i) pdq_of(i, &all[nd++]);
    imt_index *idx = open_ro(dir);
    imt_index_stats s;
    REQUIRE(imt_index_stats_get(idx, &s) == IMT_OK);
    CHECKF(s.entries == nd, "pdq entries %llu, want %u", (unsigned long long)s.entries, (unsigned)nd);
    imt_cursor *c = NULL;
    REQUIRE(imt_cursor_open(&c, idx) == IMT_OK);
    static const int radii[] = {0, 8, 31, 48};
    uint32_t bad = 0;
    for (uint32_t qi = 0; qi < 200; qi++) {
        imt_pdq q;
        pdq_of((uint32_t)(mix(qi + 999) % N_PDQ), &q);
        q.bytes[qi % 32] ^= (uint8_t)(qi & 0xff); /* off the list too */
        for (size_t ri = 0; ri < sizeof radii / sizeof radii[0]; ri++) {
            int r = radii[ri];
            size_t want = 0;
            for (uint32_t i = 0; i < nd; i++) want += popcount256(&q, &all[i]) <= r;
            const imt_match *m = NULL;
            size_t n = 0;
            int ok = imt_query_pdq(c, &q, 1, r, &m, &n) == IMT_OK && n == want;
            for (size_t k = 0; ok && k < n; k++)
                ok = m[k].distance == popcount256(&q, &m[k].pdq) && m[k].distance <= r;
            bad += !ok;
        }
    }
    CHECKF(bad == 0, "pdq: %u of 800 searches differ from brute force", (unsigned)bad);
    imt_cursor_close(c);
    CHECKF(imt_index_verify(idx) == IMT_OK, "verify: %s", imt_index_last_error(idx));
    imt_index_close(idx);
    free(all);
}

int main(int argc, char **argv)
{
    if (argc == 5 && !strcmp(argv[1], "--child")) return child(argv[2], argv[3], argv[4]);
    g_self = "/proc/self/exe";
    static char self[4096];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    REQUIRE(sl > 0);
    self[sl] = '\0';
    g_self = self;
    snprintf(tmp, sizeof tmp, "%s/test_index_budget.XXXXXX", IMT_BINARY_DIR);
    REQUIRE(mkdtemp(tmp));
    char md5p[400], pdqp[400], d_small[400], d_def[400], p_small[400], p_def[400], out[400];
    snprintf(md5p, sizeof md5p, "%s/big.md5", tmp);
    snprintf(pdqp, sizeof pdqp, "%s/big.csv", tmp);
    snprintf(d_small, sizeof d_small, "%s/small.idx", tmp);
    snprintf(d_def, sizeof d_def, "%s/default.idx", tmp);
    snprintf(p_small, sizeof p_small, "%s/psmall.idx", tmp);
    snprintf(p_def, sizeof p_def, "%s/pdefault.idx", tmp);
    write_lists(md5p, pdqp);
    struct stat sb;
    REQUIRE(stat(md5p, &sb) == 0);
    CHECKF((uint64_t)sb.st_size > 4 * BUDGET, "the list (%lld B) must be far larger than the budget",
           (long long)sb.st_size);

    run a = import_in_child(d_small, md5p, BUDGET);
    run b = import_in_child(d_def, md5p, 0);
    long db_kb = file_kb(d_small);
    long bound_kb = (long)(BUDGET / 1024) + db_kb + SLACK_MB * 1024L;
    long grew_a = a.hwm1 - a.hwm0, grew_b = b.hwm1 - b.hwm0;
    printf("md5sum list %lld B, %u lines: budget 4 MiB: %llu batches, peak RSS +%ld MB; default: "
           "%llu batch(es), +%ld MB; data.mdb %ld MB; bound %ld MB\n",
           (long long)sb.st_size, N_MD5, a.batches, grew_a / 1024, b.batches, grew_b / 1024,
           db_kb / 1024, bound_kb / 1024);
    CHECKF(a.hwm0 > 0 && a.hwm1 >= a.hwm0, "VmHWM unreadable");
    CHECKF(a.batches >= 4, "the list took %llu batches: not over the budget", a.batches);
    CHECKF(b.batches == 1, "the default budget took %llu batches", b.batches);
    CHECKF(grew_a <= bound_kb, "budget 4 MiB: peak RSS grew %ld kB, bound %ld kB", grew_a, bound_kb);
    CHECKF(grew_b > bound_kb, "the default (one batch) grew %ld kB, not over the bound %ld kB: "
           "the check would not see an unbounded import", grew_b, bound_kb);
    uint64_t want_dups = 0;
    for (uint32_t i = 0; i < N_MD5; i++) want_dups += md5_src(i) != i;
    CHECK(a.dups == want_dups && b.dups == want_dups && a.records == N_MD5 && b.records == N_MD5);
    check_md5(d_small);
    snprintf(out, sizeof out, "%s/a.jsonl", tmp);
    char *ea = export_body(d_small, out);
    snprintf(out, sizeof out, "%s/b.jsonl", tmp);
    char *eb = export_body(d_def, out);
    CHECKF(!strcmp(ea, eb), "md5: the exports of the 4 MiB and the default budget differ");
    free(ea);
    free(eb);

    /* PDQ: many batches (the minimum budget holds ~20k PDQ records) */
    run c = import_in_child(p_small, pdqp, BUDGET);
    run d = import_in_child(p_def, pdqp, 0);
    CHECKF(c.batches >= 2 && d.batches == 1, "pdq batches %llu / %llu", c.batches, d.batches);
    check_pdq(p_small);
    snprintf(out, sizeof out, "%s/c.jsonl", tmp);
    ea = export_body(p_small, out);
    snprintf(out, sizeof out, "%s/d.jsonl", tmp);
    eb = export_body(p_def, out);
    CHECKF(!strcmp(ea, eb), "pdq: the exports of the 4 MiB and the default budget differ");
    free(ea);
    free(eb);

    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (!getenv("KEEP") && tu_failures == 0 && system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", tmp);
    return tu_done("test_index_budget");
}
