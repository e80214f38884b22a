/* tests/test_index_corrupt.c -- a damaged data.mdb never crashes the
 * library: opening it returns OK, IMT_E_INDEX_CORRUPT or IMT_E_INDEX_FORMAT,
 * and when it opens, queries, verify and an import return (whatever they
 * return) instead of faulting.
 *
 * A small index (branch pages, overflow pages, a free-page list, every
 * table) is built with the API, then one copy per trial is damaged: every
 * byte of both meta pages, every field of every page header, and random
 * bytes at random offsets (fixed seed). Each trial runs in a child process,
 * which must exit normally. LMDB 0.9.24 itself would fault (SIGBUS/SIGSEGV)
 * or abort on many of these (engine/index/pagecheck.c). */
#include "imgtriage.h"
#include "testutil.h"

#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmpdir[300];
static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(void)
{
    return tu_xorshift(&rng);
}

static void write_file(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    REQUIRE(f != NULL);
    REQUIRE(fwrite(buf, 1, len, f) == len);
    REQUIRE(fclose(f) == 0);
}

/* Build the index: 1000 PDQ hashes (compacted: overflow pages for the
 * arrays and tables, a 2-level entries table), 100 more in the delta
 * segment, md5/sha1 lists, and a re-import so that the free-page DB has
 * lists. */
static void build(const char *dir)
{
    char path[400];
    imt_index *idx = tu_index_new(dir, (uint64_t)64 << 20);
    imt_import_opts io;
    imt_import_opts_init(&io);
    io.import_time = 1700000000;
    snprintf(path, sizeof path, "%s/list.csv", tmpdir);
    FILE *f = fopen(path, "w");
    REQUIRE(f != NULL);
    for (int i = 0; i < 1000; i++) {
        for (int b = 0; b < 4; b++) fprintf(f, "%016llx", (unsigned long long)rnd());
        fprintf(f, ",%d\n", (int)(rnd() % 101));
    }
    REQUIRE(fclose(f) == 0);
    io.format = "pdq-csv";
    io.compact = 1;
    io.name = "base";
    CHECKF(imt_index_import(idx, path, &io, NULL) == IMT_OK, "%s", imt_index_last_error(idx));
    f = fopen(path, "w");
    REQUIRE(f != NULL);
    for (int i = 0; i < 100; i++) {
        for (int b = 0; b < 4; b++) fprintf(f, "%016llx", (unsigned long long)rnd());
        fprintf(f, ",%d\n", 90);
    }
    REQUIRE(fclose(f) == 0);
    io.compact = 0;
    io.name = "delta";
    CHECKF(imt_index_import(idx, path, &io, NULL) == IMT_OK, "%s", imt_index_last_error(idx));
    f = fopen(path, "w");
    REQUIRE(f != NULL);
    for (int i = 0; i < 100; i++)
        fprintf(f, "%016llx%016llx  file%d.jpg\n", (unsigned long long)rnd(),
                (unsigned long long)rnd(), i);
    REQUIRE(fclose(f) == 0);
    io.format = "md5sum";
    io.name = "md5s";
    CHECKF(imt_index_import(idx, path, &io, NULL) == IMT_OK, "%s", imt_index_last_error(idx));
    imt_index_close(idx);
}

/* What a damaged index is put through, in the child (heavy: also a query
 * matching every entry and imt_index_verify, which read every record).
 * Returns the exit status: 0 when it opened and every call returned, 10/11
 * when open refused it as corrupt / not an index, 1 when open returned
 * something it must not. */
static int exercise(const char *dir, int write, int heavy)
{
    imt_index_opts o;
    imt_index_opts_init(&o);
    if (write) {
        o.read_only = 0;
        o.map_size = (uint64_t)64 << 20;
    }
    imt_index *idx = NULL;
    imt_err e = imt_index_open(&idx, dir, &o);
    if (e != IMT_OK) {
        if (e != IMT_E_INDEX_CORRUPT && e != IMT_E_INDEX_FORMAT) {
            fprintf(stderr, "open returned %s: %s\n", imt_err_name(e), imt_index_open_error());
            return 1;
        }
        if (!imt_index_open_error()[0]) {
            fprintf(stderr, "open returned %s without a reason\n", imt_err_name(e));
            return 1;
        }
        return e == IMT_E_INDEX_CORRUPT ? 10 : 11;
    }
    imt_cursor *c = NULL;
    if (imt_cursor_open(&c, idx) == IMT_OK) {
        imt_pdq q[8];
        memset(q, 0, sizeof q);
        for (int i = 0; i < 8; i++) q[i].bytes[i] = (uint8_t)(0x35 * i);
        const imt_match *m;
        size_t n;
        imt_query_pdq(c, q, 8, 32, &m, &n);
        if (heavy) imt_query_pdq(c, q, 1, 256, &m, &n); /* every entry: every leaf */
        uint8_t dig[32];
        memset(dig, 0x5a, sizeof dig);
        imt_query_digest(c, IMT_KIND_MD5, dig, &m, &n);
        imt_query_digest(c, IMT_KIND_SHA1, dig, &m, &n);
        imt_query_digest(c, IMT_KIND_SHA256, dig, &m, &n);
        imt_cursor_close(c);
    }
    if (heavy || write) imt_index_verify(idx);
    if (write) {
        char path[500];
        snprintf(path, sizeof path, "%s/more.md5", tmpdir);
        FILE *f = fopen(path, "w");
        if (f) {
            fprintf(f, "0cc175b9c0f1b6a831c399e269772661  a\n");
            fclose(f);
            imt_import_opts io;
            imt_import_opts_init(&io);
            io.format = "md5sum";
            io.compact = 0;
            imt_index_import(idx, path, &io, NULL);
        }
    }
    imt_index_close(idx);
    return 0;
}

static size_t n_trials, n_corrupt, n_format, n_ok;


/* Damage a copy (len bytes of img with byte off set to val) and run it. */
static void trial(const uint8_t *img, size_t len, size_t off, uint8_t val, int write)
{
    static uint8_t *buf;
    static size_t cap;
    if (cap < len) {
        free(buf);
        buf = malloc(len);
        REQUIRE(buf != NULL);
        cap = len;
    }
    memcpy(buf, img, len);
    if (off < len) {
        if (buf[off] == val) return;
        buf[off] = val;
    }
    char dir[400], path[500];
    snprintf(dir, sizeof dir, "%s/bad.idx", tmpdir);
    mkdir(dir, 0777);
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    write_file(path, buf, len);
    snprintf(path, sizeof path, "%s/lock.mdb", dir);
    unlink(path);
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) _exit(exercise(dir, write, n_trials % 3 == 0));
    int st = 0;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    n_trials++;
    int ok = WIFEXITED(st) && (WEXITSTATUS(st) == 0 || WEXITSTATUS(st) >= 10);
    CHECKF(ok, "byte %zu (page %zu, +%zu) = 0x%02x, %s: %s %d", off, off / 4096, off % 4096,
           val, write ? "writable" : "read-only",
           WIFSIGNALED(st) ? "killed by signal" : "exit", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
    if (ok && WEXITSTATUS(st) == 10) n_corrupt++;
    else if (ok && WEXITSTATUS(st) == 11) n_format++;
    else if (ok) n_ok++;
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "%s/test_index_corrupt.XXXXXX", IMT_BINARY_DIR);
    REQUIRE(mkdtemp(tmpdir));
    char dir[400], path[500];
    snprintf(dir, sizeof dir, "%s/good.idx", tmpdir);
    build(dir);
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    size_t len = 0;
    uint8_t *img = tu_read_file(path, &len);
    REQUIRE(img != NULL && len >= 8192);
    const size_t ps = 4096; /* the page size LMDB chose here (checked below) */
    uint32_t psize;
    memcpy(&psize, img + 16 + 24, 4); /* meta 0: MDB_meta.mm_dbs[0].md_pad */
    REQUIRE(psize == ps);
    size_t npages = len / ps;
    fprintf(stderr, "index: %zu bytes, %zu pages\n", len, npages);

    /* the undamaged copy opens and answers, both ways */
    trial(img, len, len, 0, 0);
    trial(img, len, len, 0, 1);
    CHECK(n_ok == 2);
    n_ok = 0;

    /* every byte of both meta pages (page header and MDB_meta) */
    for (size_t m = 0; m < 2; m++)
        for (size_t b = 0; b < 16 + 136; b++) {
            size_t off = m * ps + b;
            trial(img, len, off, (uint8_t)(img[off] ^ (b & 1 ? 0x01 : 0xff)), b % 8 == 3);
        }
    /* every page header field of every page: pgno, pad, flags, lower/upper
     * (or the overflow page count) */
    static const size_t fields[] = {0, 2, 8, 10, 11, 12, 13, 14, 15};
    for (size_t p = 2; p < npages; p++)
        for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
            size_t off = p * ps + fields[f];
            trial(img, len, off, (uint8_t)(img[off] ^ (f & 1 ? 0x01 : 0xff)), (p + f) % 8 == 0);
        }
    /* random bytes at random offsets, and in the first bytes of pages (where
     * node offsets and the nodes of full pages are) */
    for (int i = 0; i < 800; i++) {
        size_t off = (size_t)(rnd() % len);
        if (i & 1) off = (size_t)(rnd() % npages) * ps + 16 + (size_t)(rnd() % 256);
        trial(img, len, off, (uint8_t)rnd(), i % 8 == 0);
    }
    fprintf(stderr, "%zu trials: %zu opened, %zu refused as corrupt, %zu as not an index\n",
            n_trials, n_ok, n_corrupt, n_format);
    /* the check must have had something to do */
    CHECK(n_corrupt > n_trials / 4);
    free(img);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", tmpdir);
    return tu_done("test_index_corrupt");
}
