/* tests/test_container.c -- container bombs, with peak memory asserted.
 *
 * tests/test_container_bombs.py writes the bombs with Python's zipfile, zlib
 * and struct (not with the code under test): a 42.zip-shaped nested ZIP
 * (256 GiB expanded), David Fifield's overlapping-member ZIP (2 GB from
 * 33 KB) and the same gzipped, which libarchive reads with its streaming ZIP
 * reader instead of the seeking one. Each case is scanned by a forked child
 * through the public API (imt_scan_run); the child sends what the records
 * say through a pipe, and the parent takes its peak RSS from wait4(). Every
 * case must end in bounded time and memory, with the limit that stopped it
 * named on the container's record.
 *
 *   nested, defaults          -> ratio (all depths) stops it after ~64 MiB
 *   nested, no ratio, 256 MiB -> total-bytes stops it at 256 MiB
 *   nested, max depth 2       -> the depth-2 ZIPs are reported, not expanded
 *   overlap.zip (seeking)     -> many members, ratio stops it after ~64 MiB
 *   overlap.zip, 5 members    -> members stops it after 5
 *   overlap.zip.gz (streaming)-> one member: the streaming reader sees only
 *                                the first local header (and no limit trips)
 */
#include "testutil.h"

#include "imgtriage.h"
#include "report/report.h"

#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct facts {
    unsigned long long records, bytes, depth1, maxdepth, top_members;
    unsigned top_limits, any_limits;
} facts;

static int on_rec(void *ctx, const imt_scan_record *r)
{
    facts *f = ctx;
    f->records++;
    if (r->hash) f->bytes += r->hash->file_size;
    if (r->container.depth == 1) f->depth1++;
    if (r->container.depth > f->maxdepth) f->maxdepth = r->container.depth;
    if (r->container.depth == 0) {
        f->top_limits = r->container.limits;
        f->top_members = r->container.members;
    }
    f->any_limits |= r->container.limits;
    return 0;
}

typedef struct limits {
    uint32_t depth, ratio;
    uint64_t total, members;
} limits;

/* Scan path in a child; its facts and peak RSS (KB). */
static int run(const char *path, const limits *l, facts *out, long *peak_kb)
{
    int fd[2];
    if (pipe(fd) != 0) return 0;
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        imt_scan_opts o;
        imt_scan_opts_init(&o);
        o.threads = 1;
        if (l->depth) o.containers.max_depth = l->depth;
        if (l->ratio != 1) o.containers.max_ratio = l->ratio;
        if (l->total) o.containers.max_total_bytes = l->total;
        if (l->members) o.containers.max_members = l->members;
        facts f;
        memset(&f, 0, sizeof f);
        imt_err e = imt_scan_run(NULL, &path, 1, &o, on_rec, &f, NULL, 0);
        if (e == IMT_OK && write(fd[1], &f, sizeof f) != (ssize_t)sizeof f) _exit(3);
        _exit(e == IMT_OK ? 0 : 2);
    }
    close(fd[1]);
    int got = (int)read(fd[0], out, sizeof *out);
    close(fd[0]);
    int st = 0;
    struct rusage ru;
    if (pid < 0 || wait4(pid, &st, 0, &ru) != pid) return 0;
    *peak_kb = ru.ru_maxrss;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 && got == (int)sizeof *out;
}

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

#define MIB (1024ull * 1024ull)
/* Measured: under 20 MB. Under ASan, shadow memory and a 16 MB quarantine. */
#define PEAK_BOUND_MB (UNDER_ASAN ? 160 : 64)

static void one(const char *dir, const char *file, const limits *l, facts *f)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    long kb = 0;
    memset(f, 0, sizeof *f);
    int ok = run(path, l, f, &kb);
    CHECKF(ok, "%s: the scan did not complete", file);
    printf("%-16s depth %u ratio %u total %llu MiB members %llu: %llu records, %llu MiB "
           "read, top limits %#x, peak %ld MB\n", file, (unsigned)l->depth, (unsigned)l->ratio,
           (unsigned long long)(l->total / MIB), (unsigned long long)l->members, f->records,
           f->bytes / MIB, f->top_limits, kb / 1024);
    CHECKF(kb / 1024 < PEAK_BOUND_MB, "%s: peak RSS %ld MB, bound %d MB", file, kb / 1024,
           PEAK_BOUND_MB);
    CHECKF(f->records == 1 + f->top_members, "%s: %llu records, the container says %llu follow",
           file, f->records, f->top_members);
}

/* The container fields of a record survive record.c -> facts.c (what
 * `imgtriage report` and --resume read back), and the summary counts them. */
static void round_trip(void)
{
    imt_hash_result h;
    memset(&h, 0, sizeof h);
    h.format = IMT_FMT_ZIP;
    h.file_size = 1234;
    imt_scan_record r;
    memset(&r, 0, sizeof r);
    r.seq = 7;
    r.path = "ev/a.zip!in/b.7z";
    r.type = IMT_ENTRY_FILE;
    r.status = IMT_E_NOT_IMAGE;
    r.detail = "a 7z container, not an image";
    r.hash = &h;
    r.container.depth = 2;
    r.container.index = 5;
    r.container.size = 1234;
    r.container.has_mtime = 1;
    r.container.mtime_s = 1577836800;
    r.container.mtime_ns = 5;
    r.container.expanded = 1;
    r.container.members = 9;
    r.container.encrypted = 2;
    r.container.limits = IMT_CLIMIT_RATIO | IMT_CLIMIT_BUFFER;
    r.container.note = "expansion stopped: \"why\"";
    imt__buf b = {0};
    imt__put_record_json(&b, &r);
    REQUIRE(!b.oom);
    char eb[128];
    yajl_val v = yajl_tree_parse(b.p, eb, sizeof eb);
    REQUIRE(v);
    imt__jrecord j;
    REQUIRE(imt__record_from_json(v, &j) == IMT_OK);
    const imt_container_info *c = &j.rec.container;
    CHECK(c->depth == 2 && c->index == 5 && c->size == 1234 && c->has_mtime &&
          c->mtime_s == 1577836800 && c->mtime_ns == 5 && c->expanded && c->members == 9 &&
          c->encrypted == 2 && c->limits == (IMT_CLIMIT_RATIO | IMT_CLIMIT_BUFFER) &&
          !strcmp(c->note, "expansion stopped: \"why\""));
    imt__buf b2 = {0};
    imt__put_record_json(&b2, &j.rec);
    CHECKF(b2.len == b.len && !memcmp(b.p, b2.p, b.len), "re-emitted:\n%s%s", b.p, b2.p);
    imt__rfacts f;
    imt_scan_match *ms = NULL;
    REQUIRE(imt__facts_from_json(v, &f, &ms) == IMT_OK);
    imt__summary s;
    memset(&s, 0, sizeof s);
    REQUIRE(imt__summary_add(&s, &f, "\"x\"", 0) == IMT_OK);
    CHECK(s.members == 1 && s.containers == 1 && s.encrypted_containers == 1 &&
          s.limits[3] == 1 && s.limits[4] == 1 && s.limits[0] == 0);
    imt__buf ex = {0};
    imt__priority(&s, &ex);
    CHECKF(ex.p && strstr(ex.p, "; 1 encrypted container not examined"), "%s", ex.p);
    imt__buf_free(&ex);
    imt__summary_free(&s);
    imt__free(ms);
    imt__free(j.ms);
    yajl_tree_free(v);
    imt__buf_free(&b);
    imt__buf_free(&b2);
}

/* ---- allocation failure N = 0, 1, 2, ... through a container scan -------
 * (test_allocfail's discipline): every step either reports out of memory or
 * gives exactly the records of an unfailing run, and frees every block. */
typedef struct counting {
    long calls, fail_at, failed, live;
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
static void *c_malloc(void *o, size_t n)
{
    (void)o;
    if (should_fail()) return NULL;
    void *p = malloc(n);
    if (p) g_cnt.live++;
    return p;
}
static void *c_realloc(void *o, void *p, size_t n)
{
    (void)o;
    if (should_fail()) return NULL;
    void *q = realloc(p, n);
    if (q && !p) g_cnt.live++;
    return q;
}
static void c_free(void *o, void *p)
{
    (void)o;
    if (p) g_cnt.live--;
    free(p);
}

typedef struct text {
    char *p;
    size_t len;
} text;

static int on_rec_text(void *ctx, const imt_scan_record *r)
{
    text *t = ctx;
    char line[1024], md5[33] = "";
    if (r->hash && (r->hash->digests & IMT_DIGEST_MD5))
        for (int i = 0; i < 16; i++) sprintf(md5 + 2 * i, "%02x", r->hash->md5[i]);
    int n = snprintf(line, sizeof line, "%s|%s|%s|%s|%d|%u|%llu|%d|%llu|%llu|%u|%s\n", r->path,
                     imt_err_name(r->status), r->detail, md5, r->hash ? r->hash->has_pdq : -1,
                     (unsigned)r->container.depth, (unsigned long long)r->container.index,
                     r->container.expanded, (unsigned long long)r->container.members,
                     (unsigned long long)r->container.encrypted, r->container.limits,
                     r->container.note ? r->container.note : "");
    char *np = realloc(t->p, t->len + (size_t)n + 1);
    if (!np) return 1;
    memcpy(np + t->len, line, (size_t)n + 1);
    t->p = np;
    t->len += (size_t)n;
    return 0;
}

static imt_err scan_text(const char *dir, uint64_t held, text *t)
{
    imt_scan_opts o;
    imt_scan_opts_init(&o);
    o.threads = 1;
    o.containers.max_held_bytes = held;
    t->p = NULL;
    t->len = 0;
    return imt_scan_run(NULL, &dir, 1, &o, on_rec_text, t, NULL, 0);
}

static void allocfail(uint64_t held)
{
    const char *dir = IMT_SOURCE_DIR "/tests/fuzz/seeds/container";
    text base;
    REQUIRE(scan_text(dir, held, &base) == IMT_OK);
    REQUIRE(strstr(base.p, "!inner.zip!t.txt|") && strstr(base.p, "|encrypted|"));
    imt_allocator a = {c_malloc, c_realloc, c_free, NULL};
    long n, oom = 0;
    for (n = 0; n < 100000; n++) {
        memset(&g_cnt, 0, sizeof g_cnt);
        g_cnt.fail_at = n;
        REQUIRE(imt_set_allocator(&a) == IMT_OK);
        text t;
        imt_err e = scan_text(dir, held, &t);
        imt_set_allocator(NULL);
        CHECKF(g_cnt.live == 0, "held %llu, failing allocation %ld: %ld blocks leaked",
               (unsigned long long)held, n, g_cnt.live);
        int same = e == IMT_OK && t.len == base.len && !memcmp(t.p, base.p, base.len);
        int said = e == IMT_E_NOMEM || (e == IMT_OK && t.p && strstr(t.p, "|out-of-memory|"));
        CHECKF(same || said, "held %llu, failing allocation %ld: %s, and the records differ "
               "without saying out-of-memory", (unsigned long long)held, n, imt_err_name(e));
        oom += !same;
        free(t.p);
        if (!g_cnt.failed) break;
    }
    printf("allocfail (held %llu): %ld steps, %ld reported out of memory\n",
           (unsigned long long)held, n, oom);
    free(base.p);
}

int main(int argc, char **argv)
{
    (void)argc;
    /* A small ASan quarantine, so that retained frees don't count: set
     * before the program starts, so run it again with it. */
    if (UNDER_ASAN && !getenv("IMT_TEST_REEXEC")) {
        setenv("IMT_TEST_REEXEC", "1", 1);
        setenv("ASAN_OPTIONS", "quarantine_size_mb=16:detect_leaks=1", 1);
        execv("/proc/self/exe", argv);
        perror("execv");
        return 1;
    }
    round_trip();
    allocfail(64ull << 20); /* members kept by the worker */
    allocfail(1);           /* every container expanded again when emitted */
    if (system("command -v python3 >/dev/null 2>&1") != 0) return tu_skip("python3 is missing");
    char dir[] = "/tmp/imt-cbombs-XXXXXX", cmd[8192];
    REQUIRE(mkdtemp(dir));
    snprintf(cmd, sizeof cmd, "python3 %s/tests/test_container_bombs.py %s >/dev/null",
             IMT_SOURCE_DIR, dir);
    REQUIRE(system(cmd) == 0);
    facts f;

    limits dflt = {0, 1, 0, 0};
    one(dir, "nested.zip", &dflt, &f);
    CHECK(f.top_limits & IMT_CLIMIT_RATIO);
    CHECKF(f.bytes < 100 * MIB, "%llu bytes", f.bytes);

    limits total = {0, 0, 256 * MIB, 0};
    one(dir, "nested.zip", &total, &f);
    CHECK(f.top_limits & IMT_CLIMIT_TOTAL_BYTES);
    CHECK(!(f.any_limits & IMT_CLIMIT_RATIO));
    CHECKF(f.bytes <= 256 * MIB + 256 * 1024 && f.bytes > 200 * MIB, "%llu bytes", f.bytes);

    limits depth = {2, 0, 0, 0};
    one(dir, "nested.zip", &depth, &f);
    CHECK(f.any_limits & IMT_CLIMIT_DEPTH);
    CHECKF(f.maxdepth == 2 && f.records == 1 + 16 + 256, "max depth %llu, %llu records",
           f.maxdepth, f.records);

    one(dir, "overlap.zip", &dflt, &f);
    CHECK(f.top_limits & IMT_CLIMIT_RATIO);
    CHECKF(f.depth1 > 2, "the seeking reader sees the overlapping members: %llu", f.depth1);
    CHECKF(f.bytes < 100 * MIB, "%llu bytes", f.bytes);

    limits members = {0, 0, 0, 5};
    one(dir, "overlap.zip", &members, &f);
    CHECK(f.top_limits & IMT_CLIMIT_MEMBERS);
    CHECKF(f.records == 6, "%llu records", f.records);

    one(dir, "overlap.zip.gz", &dflt, &f);
    CHECKF(f.depth1 == 1, "the streaming reader sees one member: %llu", f.depth1);
    CHECK(!(f.any_limits & (IMT_CLIMIT_RATIO | IMT_CLIMIT_TOTAL_BYTES | IMT_CLIMIT_MEMBERS)));

    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return tu_done("test_container");
}
