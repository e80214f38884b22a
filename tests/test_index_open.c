/* tests/test_index_open.c -- what opening an index guarantees (docs/INDEX.md,
 * "Opening").
 *
 * Shared, read-only indexes (issue 9 item 8): an index the reader cannot
 * write -- root-owned with folders 0755 and files 0644, a copy without its
 * lock.mdb in a read-only folder, a read-only mount -- opens read-only for
 * an unprivileged user and answers every query as the owner's open does.
 * Without write access to lock.mdb the reader cannot register with LMDB,
 * so a writer could recycle the pages it reads: a commit after the open
 * must make the next query fail with IMT_E_INDEX_CHANGED, never answer
 * from recycled pages.
 *
 * The open-time content check (issue 9 item 7): one flipped bit in any
 * array a PDQ query searches (compacted hashes, entry ids, MIH offsets and
 * positions, delta hashes and ids) fails the open with IMT_E_INDEX_CORRUPT
 * and a sentence naming the segment; with skip_content_check it opens,
 * says content_verified = 0, and verify still finds the damage.
 *
 * The children drop root (st_drop_root) so that permissions apply; the
 * tests run as root here and in CI. Not root: the folder is made 0555 and
 * the files 0444, which the owner cannot write either. */
#include "index/index.h"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "scantest.h"
#pragma GCC diagnostic pop

#include <sched.h>
#include <stdint.h>
#include <sys/mount.h>
#include <sys/wait.h>

static char tmpdir[256];
static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(void)
{
    return tu_xorshift(&rng);
}

#define NMAIN 3000
#define NDELTA 200
static imt_pdq known[NMAIN + NDELTA];
static const char md5_hex[] = "0cc175b9c0f1b6a831c399e269772661";

static void write_list(const char *path, const imt_pdq *h, size_t n)
{
    FILE *f = fopen(path, "w");
    REQUIRE(f != NULL);
    for (size_t i = 0; i < n; i++) {
        for (int b = 0; b < 32; b++) fprintf(f, "%02x", h[i].bytes[b]);
        fprintf(f, ",%d,item%zu\n", 50 + (int)(i % 50), i);
    }
    REQUIRE(fclose(f) == 0);
}

/* An index with a compacted segment (NMAIN hashes), a delta segment
 * (NDELTA) and an MD5 list. */
static void build(const char *dir)
{
    char path[400];
    for (size_t i = 0; i < NMAIN + NDELTA; i++)
        for (int b = 0; b < 32; b += 8) {
            uint64_t r = rnd();
            memcpy(known[i].bytes + b, &r, 8);
        }
    imt_index *idx = tu_index_new(dir, (uint64_t)64 << 20);
    imt_import_opts io;
    imt_import_opts_init(&io);
    io.import_time = 1700000000;
    io.format = "pdq-csv";
    snprintf(path, sizeof path, "%s/main.csv", tmpdir);
    write_list(path, known, NMAIN);
    io.compact = 1;
    CHECKF(imt_index_import(idx, path, &io, NULL) == IMT_OK, "%s", imt_index_last_error(idx));
    snprintf(path, sizeof path, "%s/delta.csv", tmpdir);
    write_list(path, known + NMAIN, NDELTA);
    io.compact = 0;
    CHECKF(imt_index_import(idx, path, &io, NULL) == IMT_OK, "%s", imt_index_last_error(idx));
    snprintf(path, sizeof path, "%s/a.md5", tmpdir);
    FILE *f = fopen(path, "w");
    REQUIRE(f != NULL);
    fprintf(f, "%s  a.txt\n", md5_hex);
    REQUIRE(fclose(f) == 0);
    io.format = "md5sum";
    CHECKF(imt_index_import(idx, path, &io, NULL) == IMT_OK, "%s", imt_index_last_error(idx));
    imt_index_stats s;
    REQUIRE(imt_index_stats_get(idx, &s) == IMT_OK);
    CHECK(s.pdq_main == NMAIN && s.pdq_delta == NDELTA);
    imt_index_close(idx);
}

static void copy_file(const char *from, const char *to, mode_t mode)
{
    size_t n = 0;
    unsigned char *b = tu_read_file(from, &n);
    REQUIRE(b != NULL);
    st_write(to, b, n);
    free(b);
    REQUIRE(chmod(to, mode) == 0);
}

/* Queries through a fresh cursor: a compacted hash, a delta hash (each at
 * distance 0 with its own external id), the MD5, and nothing for a far
 * hash. Returns the number of failed checks (for a child's exit status). */
static int query_all(imt_index *idx)
{
    int bad = 0;
    imt_cursor *c = NULL;
    if (imt_cursor_open(&c, idx) != IMT_OK) return 100;
    const imt_match *m;
    size_t n;
    size_t probe[3] = {7, NMAIN - 1, NMAIN + 5};
    for (int i = 0; i < 3; i++) {
        char ext[32];
        snprintf(ext, sizeof ext, "item%zu", probe[i] < NMAIN ? probe[i] : probe[i] - NMAIN);
        if (imt_query_pdq(c, &known[probe[i]], 1, 0, &m, &n) != IMT_OK || n != 1 ||
            m[0].distance != 0 || m[0].n_members != 1 || strcmp(m[0].members[0].external_id, ext))
            bad++;
    }
    uint8_t md5[16];
    for (int i = 0; i < 16; i++) sscanf(md5_hex + 2 * i, "%2hhx", &md5[i]);
    if (imt_query_digest(c, IMT_KIND_MD5, md5, &m, &n) != IMT_OK || n != 1) bad++;
    imt_pdq far;
    memset(&far, 0x5a, sizeof far);
    if (imt_query_pdq(c, &far, 1, 8, &m, &n) != IMT_OK || n != 0) bad++;
    imt_cursor_close(c);
    return bad;
}

/* In a child (optionally as 'nobody'): open dir read-only, compare the
 * identity with want, query, verify. Exit status 0 = all good; the parent
 * reports which step failed. */
static int child_open(const char *dir, const char *want_id, int drop)
{
    if (drop && st_drop_root() != 0) return 90;
    imt_index *idx = NULL;
    imt_err e = imt_index_open(&idx, dir, NULL);
    if (e != IMT_OK) {
        fprintf(stderr, "child: open %s: %s: %s\n", dir, imt_err_name(e), imt_index_open_error());
        return 10;
    }
    char id[65];
    if (imt_index_identity(idx, id) != IMT_OK || strcmp(id, want_id)) return 11;
    int q = query_all(idx);
    if (q) {
        fprintf(stderr, "child: %d queries failed\n", q);
        return 12;
    }
    e = imt_index_verify(idx);
    if (e != IMT_OK) {
        fprintf(stderr, "child: verify: %s\n", imt_index_last_error(idx));
        return 13;
    }
    imt_index_close(idx);
    return 0;
}

static int run_child(const char *dir, const char *want_id, int drop)
{
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) _exit(child_open(dir, want_id, drop));
    int status;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 200 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/* Make dir and its files unwritable for the child: root-owned 0755/0644
 * (the child drops root), or 0555/0444 when the test is not root. */
static void make_shared(const char *dir, int with_lock)
{
    int root = geteuid() == 0;
    char p[400];
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    REQUIRE(chmod(p, root ? 0644 : 0444) == 0);
    snprintf(p, sizeof p, "%s/lock.mdb", dir);
    if (with_lock) REQUIRE(chmod(p, root ? 0644 : 0444) == 0);
    else if (unlink(p) != 0) REQUIRE(errno == ENOENT);
    REQUIRE(chmod(dir, root ? 0755 : 0555) == 0);
}

static void shared_readonly(void)
{
    char dir[400], id[65];
    snprintf(dir, sizeof dir, "%s/shared.idx", tmpdir);
    build(dir);
    imt_index *idx = NULL;
    REQUIRE(imt_index_open(&idx, dir, NULL) == IMT_OK);
    REQUIRE(imt_index_identity(idx, id) == IMT_OK);
    CHECK(query_all(idx) == 0);
    imt_index_close(idx);
    int drop = geteuid() == 0;

    /* 1. root-owned 0755/0644 with its lock.mdb (the case) */
    make_shared(dir, 1);
    int rc = run_child(dir, id, drop);
    CHECKF(rc == 0, "shared 0755/0644 index as another user: child step %d", rc);

    /* 2. a copy without lock.mdb in a folder the reader cannot write */
    char copy[400], from[500], to[500];
    snprintf(copy, sizeof copy, "%s/copy.idx", tmpdir);
    REQUIRE(mkdir(copy, 0755) == 0);
    snprintf(from, sizeof from, "%s/data.mdb", dir);
    snprintf(to, sizeof to, "%s/data.mdb", copy);
    copy_file(from, to, 0644);
    make_shared(copy, 0);
    rc = run_child(copy, id, drop);
    CHECKF(rc == 0, "copy without lock.mdb in a read-only folder: child step %d", rc);

    /* the owner can still open it for writing (after making it writable) */
    REQUIRE(chmod(dir, 0755) == 0);
}

/* In a child that opened the index (as 'nobody': without a lock; as root:
 * with one), after the parent committed an import. */
/* The hash each commit adds a membership to (query_all does not probe it;
 * after the first round it has more than one). */
#define TWICE 20

static int child_after_commit(const char *dir, int lockfree, int to_parent, int from_parent)
{
    if (lockfree && st_drop_root() != 0) return 90;
    imt_index *idx = NULL;
    if (imt_index_open(&idx, dir, NULL) != IMT_OK) return 20;
    if (query_all(idx)) return 21;
    imt_cursor *c = NULL;
    if (imt_cursor_open(&c, idx) != IMT_OK) return 22;
    const imt_match *m = NULL;
    size_t n = 0;
    if (imt_query_pdq(c, &known[TWICE], 1, 0, &m, &n) != IMT_OK || n != 1) return 22;
    size_t members = m[0].n_members;
    char b = 'o';
    if (write(to_parent, &b, 1) != 1 || read(from_parent, &b, 1) != 1 || b != 'g') return 23;
    /* the cursor opened before the commit: with a lock it keeps reading
     * the snapshot (known[TWICE] lacks the new list's membership) */
    imt_err want = lockfree ? IMT_E_INDEX_CHANGED : IMT_OK;
    n = 99;
    imt_err e = imt_query_pdq(c, &known[TWICE], 1, 0, &m, &n);
    if (e != want || (e == IMT_OK) != (n == 1) || (n == 1 && m[0].n_members != members)) return 24;
    uint8_t md5[16];
    for (int i = 0; i < 16; i++) sscanf(md5_hex + 2 * i, "%2hhx", &md5[i]);
    e = imt_query_digest(c, IMT_KIND_MD5, md5, &m, &n);
    if (e != want || (e == IMT_OK) != (n == 1)) return 25;
    imt_cursor_close(c);
    /* a cursor opened after the commit: with a lock it reads the handle's
     * snapshot too (its transaction was begun with the handle's: index.c,
     * the pool), so the same memberships and none of a list the handle's
     * inventory (and the report's header) lacks; without a lock the
     * snapshot's pages may be reused: refused. (Before the pool it was
     * refused with a lock too: `index query` and scans failed.) */
    c = NULL;
    e = imt_cursor_open(&c, idx);
    if (lockfree) {
        if (e != IMT_E_INDEX_CHANGED || c) return 26;
    } else {
        if (e != IMT_OK) return 26;
        int stray = 0;
        n = 99;
        if (imt_query_pdq(c, &known[TWICE], 1, 0, &m, &n) != IMT_OK || n != 1 ||
            m[0].n_members != members) {
            imt_cursor_close(c);
            return 29;
        }
        for (size_t k = 0; k < m[0].n_members; k++) {
            int found = 0;
            for (size_t l = 0; l < imt_index_list_count(idx); l++) {
                imt_list_info li;
                if (imt_index_list_get(idx, l, &li) == IMT_OK && li.id == m[0].members[k].list_id)
                    found = 1;
            }
            stray += !found;
        }
        imt_cursor_close(c);
        if (stray) return 29;
    }
    if (imt_index_verify(idx) != want) return 27;
    /* export reads the handle's snapshot: kept with a lock, void without */
    int nul = open("/dev/null", O_WRONLY);
    if (nul < 0) return 30;
    e = imt_index_export(idx, nul, NULL);
    close(nul);
    if (e != want) return 31;
    if (lockfree && !strstr(imt_index_last_error(idx), "changed")) return 28;
    imt_index_close(idx);
    return 0;
}

/* A writer commits while a reader has the index open. With a lock (the
 * reader may write lock.mdb) the reader's cursors, open before the commit
 * or opened after it, read its snapshot and answer as before; without one,
 * every later query, cursor and verify fails with IMT_E_INDEX_CHANGED. */
static void writer_commits(int lockfree)
{
    char dir[300], path[400];
    snprintf(dir, sizeof dir, "%s/shared.idx", tmpdir);
    make_shared(dir, 1);
    if (!lockfree) {
        /* writable by its owner: the reader (root, or the owner) can lock */
        snprintf(path, sizeof path, "%s/data.mdb", dir);
        REQUIRE(chmod(path, 0644) == 0 && chmod(dir, 0755) == 0);
        snprintf(path, sizeof path, "%s/lock.mdb", dir);
        REQUIRE(chmod(path, 0644) == 0);
    }
    int c2p[2], p2c[2];
    REQUIRE(pipe(c2p) == 0 && pipe(p2c) == 0);
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(c2p[0]);
        close(p2c[1]);
        _exit(child_after_commit(dir, lockfree, c2p[1], p2c[0]));
    }
    close(c2p[1]);
    close(p2c[0]);
    char b = 0;
    if (read(c2p[0], &b, 1) == 1 && b == 'o') {
        /* the owner imports (not root: the files are its own, 0444) */
        REQUIRE(chmod(dir, 0755) == 0);
        snprintf(path, sizeof path, "%s/data.mdb", dir);
        REQUIRE(chmod(path, 0644) == 0);
        snprintf(path, sizeof path, "%s/lock.mdb", dir);
        REQUIRE(chmod(path, 0644) == 0);
        imt_index_opts o;
        imt_index_opts_init(&o);
        o.read_only = 0;
        imt_index *idx = NULL;
        REQUIRE(imt_index_open(&idx, dir, &o) == IMT_OK);
        imt_import_opts io;
        imt_import_opts_init(&io);
        /* a new list holding known[TWICE]: the entry gains a membership */
        io.format = "pdq-csv";
        io.again = 1; /* the same list each round: only the commit matters */
        snprintf(path, sizeof path, "%s/more.csv", tmpdir);
        FILE *f = fopen(path, "w");
        REQUIRE(f != NULL);
        for (int i = 0; i < 32; i++) fprintf(f, "%02x", known[TWICE].bytes[i]);
        fprintf(f, ",90,again\n");
        REQUIRE(fclose(f) == 0);
        CHECKF(imt_index_import(idx, path, &io, NULL) == IMT_OK, "%s", imt_index_last_error(idx));
        imt_index_close(idx);
        b = 'g';
        CHECK(write(p2c[1], &b, 1) == 1);
    }
    close(c2p[0]);
    close(p2c[1]);
    int status;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0,
           "a commit under a reader %s a lock: child status %d",
           lockfree ? "without" : "with", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/* A scan through a lock-free handle while a writer commits: the files
 * matched after the commit get status IMT_E_INDEX_CHANGED and count as
 * scan errors (the scan is incomplete), never as files with no match. */
typedef struct scan_ctx {
    int to_parent, from_parent;
    int n, changed, changed_as_error, other;
} scan_ctx;

static int on_scan_record(void *ctx, const imt_scan_record *rec)
{
    scan_ctx *x = ctx;
    if (x->n++ == 0) {
        /* the first file is done: let the parent commit */
        char b = 'o';
        if (write(x->to_parent, &b, 1) != 1 || read(x->from_parent, &b, 1) != 1) return 1;
        return 0;
    }
    if (rec->status == IMT_E_INDEX_CHANGED) {
        x->changed++;
        x->changed_as_error += rec->scan_error != 0;
    } else x->other++;
    return 0;
}

static int child_scan(const char *dir, const char *const *files, size_t nf, int to_parent,
                      int from_parent)
{
    if (st_drop_root() != 0) return 90;
    imt_index *idx = NULL;
    if (imt_index_open(&idx, dir, NULL) != IMT_OK) return 40;
    imt_scan_opts so;
    imt_scan_opts_init(&so);
    so.threads = 1;
    so.batch_files = 1;
    scan_ctx x = {to_parent, from_parent, 0, 0, 0, 0};
    char detail[256];
    imt_err e = imt_scan_run(idx, files, nf, &so, on_scan_record, &x, detail, sizeof detail);
    imt_index_close(idx);
    if (e != IMT_OK) return 41;
    if (x.n != (int)nf || x.changed < 1) return 42;
    if (x.changed_as_error != x.changed) return 43;
    return 0;
}

static void scan_during_commit(void)
{
    char dir[300], path[400], fpath[4][400];
    const char *files[4];
    snprintf(dir, sizeof dir, "%s/shared.idx", tmpdir);
    for (int i = 0; i < 4; i++) {
        snprintf(fpath[i], sizeof fpath[i], "%s/evidence%d.txt", tmpdir, i);
        FILE *f = fopen(fpath[i], "w");
        REQUIRE(f != NULL);
        fprintf(f, "evidence file %d\n", i);
        REQUIRE(fclose(f) == 0);
        REQUIRE(chmod(fpath[i], 0644) == 0);
        files[i] = fpath[i];
    }
    make_shared(dir, 1);
    int c2p[2], p2c[2];
    REQUIRE(pipe(c2p) == 0 && pipe(p2c) == 0);
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(c2p[0]);
        close(p2c[1]);
        _exit(child_scan(dir, files, 4, c2p[1], p2c[0]));
    }
    close(c2p[1]);
    close(p2c[0]);
    char b = 0;
    if (read(c2p[0], &b, 1) == 1 && b == 'o') {
        REQUIRE(chmod(dir, 0755) == 0);
        snprintf(path, sizeof path, "%s/data.mdb", dir);
        REQUIRE(chmod(path, 0644) == 0);
        snprintf(path, sizeof path, "%s/lock.mdb", dir);
        REQUIRE(chmod(path, 0644) == 0);
        imt_index_opts o;
        imt_index_opts_init(&o);
        o.read_only = 0;
        imt_index *idx = NULL;
        REQUIRE(imt_index_open(&idx, dir, &o) == IMT_OK);
        imt_import_opts io;
        imt_import_opts_init(&io);
        io.format = "md5sum";
        io.again = 1;
        snprintf(path, sizeof path, "%s/scan.md5", tmpdir);
        FILE *f = fopen(path, "w");
        REQUIRE(f != NULL);
        fprintf(f, "0123456789abcdef0123456789abcdef  x\n");
        REQUIRE(fclose(f) == 0);
        CHECKF(imt_index_import(idx, path, &io, NULL) == IMT_OK, "%s", imt_index_last_error(idx));
        imt_index_close(idx);
        b = 'g';
        CHECK(write(p2c[1], &b, 1) == 1);
    }
    close(c2p[0]);
    close(p2c[1]);
    int status;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0,
           "a lock-free scan while a writer commits: child status %d",
           WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/* 3. a read-only mount: bind-mount the index read-only in a private mount
 * namespace (needs CAP_SYS_ADMIN: root here and in CI). */
static int ro_mount(void)
{
    char dir[400], mnt[400], id[65];
    snprintf(dir, sizeof dir, "%s/shared.idx", tmpdir);
    snprintf(mnt, sizeof mnt, "%s/ro-mount", tmpdir);
    REQUIRE(mkdir(mnt, 0755) == 0);
    imt_index *idx = NULL;
    REQUIRE(imt_index_open(&idx, dir, NULL) == IMT_OK);
    REQUIRE(imt_index_identity(idx, id) == IMT_OK);
    imt_index_close(idx);
    fflush(NULL);
    int pfd[2];
    REQUIRE(pipe(pfd) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        char ok = 1;
        if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
            mount(dir, mnt, NULL, MS_BIND, NULL) != 0 ||
            mount(NULL, mnt, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) != 0) {
            fprintf(stderr, "cannot make a read-only bind mount: %s\n", strerror(errno));
            ok = 0;
        }
        if (write(pfd[1], &ok, 1) != 1) _exit(91);
        if (!ok) _exit(0);
        /* a write must fail here: the mount is read-only */
        char p[500];
        snprintf(p, sizeof p, "%s/probe", mnt);
        int fd = open(p, O_WRONLY | O_CREAT, 0644);
        if (fd >= 0 || errno != EROFS) _exit(92);
        _exit(child_open(mnt, id, 0));
    }
    close(pfd[1]);
    char ok = 0;
    ssize_t r = read(pfd[0], &ok, 1);
    close(pfd[0]);
    int status;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    if (r != 1 || !ok) return 0;
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0,
           "read-only bind mount: child status %d", status);
    return 1;
}

/* ---- the open-time content check (issue 9 item 7) ---------------------- */

/* Flip bit `bit` of data.mdb (a copy of src's) at offset off, in dst. */
static void flipped_copy(const char *src, const char *dst, uint64_t off, int bit)
{
    char from[400], to[400];
    snprintf(from, sizeof from, "%s/data.mdb", src);
    snprintf(to, sizeof to, "%s/data.mdb", dst);
    REQUIRE(mkdir(dst, 0755) == 0);
    size_t n = 0;
    unsigned char *b = tu_read_file(from, &n);
    REQUIRE(b != NULL);
    if (off < n) b[off] ^= (unsigned char)(1u << bit);
    st_write(to, b, n);
    free(b);
}

static void content_check(void)
{
    char dir[300], id[65];
    snprintf(dir, sizeof dir, "%s/content.idx", tmpdir);
    build(dir);
    imt_index *idx = NULL;
    REQUIRE(imt_index_open(&idx, dir, NULL) == IMT_OK);
    REQUIRE(imt_index_identity(idx, id) == IMT_OK);
    imt_index_stats s;
    REQUIRE(imt_index_stats_get(idx, &s) == IMT_OK);
    CHECK(s.content_verified == 1 && s.pdq_main == NMAIN && s.pdq_delta == NDELTA);
    /* where the searched arrays lie in data.mdb: each target's next 48
     * bytes (random data) occur exactly once in the file */
    char path[400];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    size_t flen = 0;
    unsigned char *file = tu_read_file(path, &flen);
    REQUIRE(file != NULL);
    const imt__idx_view *v = &idx->view;
    const imt__idx_seg *g = &v->seg[0];
    REQUIRE(g->n == NMAIN && v->nchunks == 1 && g->m > 0);
    struct {
        const char *what;
        const uint8_t *at;
        const char *why;      /* in the open error */
        size_t hash;          /* the known hash whose bytes change, or SIZE_MAX */
    } t[] = {
        {"compacted PDQ hash", g->pdq + 5 * 32 + 3, "compacted", 5},
        /* the ids are 0, 1, 2, ... (as in the freed delta chunk compaction
         * read them from): the array's first, after its 48-byte zero lead */
        {"compacted entry id", (const uint8_t *)g->ent, "compacted", SIZE_MAX},
        {"MIH table offsets", (const uint8_t *)(g->off[0] + 17), "compacted", SIZE_MAX},
        {"MIH table positions", (const uint8_t *)(g->ids[g->m - 1] + 100), "compacted", SIZE_MAX},
        {"delta PDQ hash", v->dpdq[0] + 11 * 32 + 31, "delta", NMAIN + 11},
        {"delta entry id", v->dent[0] + 4 * 13, "delta", SIZE_MAX},
    };
    size_t off[6];
    static const uint8_t zero[48];
    for (int i = 0; i < 6; i++) {
        size_t found = 0;
        for (size_t o = 0; o + 48 <= flen; o++)
            if (file[o] == t[i].at[0] && !memcmp(file + o, t[i].at, 48) &&
                (i != 1 || (o >= 48 && !memcmp(file + o - 48, zero, 48)))) {
                off[i] = o;
                found++;
            }
        CHECKF(found == 1, "%s: found %zu times in data.mdb", t[i].what, found);
        if (found != 1) off[i] = flen;
    }
    free(file);
    /* the compacted hash 5 is the list's 6th (compaction keeps the order) */
    REQUIRE(!memcmp(g->pdq + 5 * 32, known[5].bytes, 32));
    REQUIRE(!memcmp(v->dpdq[0] + 11 * 32, known[NMAIN + 11].bytes, 32));
    imt_index_close(idx);

    for (int i = 0; i < 6; i++) {
        char bad[320];
        snprintf(bad, sizeof bad, "%s/flip%d.idx", tmpdir, i);
        flipped_copy(dir, bad, off[i], i % 8);
        /* by default the open fails and says why */
        idx = NULL;
        imt_err e = imt_index_open(&idx, bad, NULL);
        CHECKF(e == IMT_E_INDEX_CORRUPT && !idx, "%s flipped: open gave %s", t[i].what,
               imt_err_name(e));
        CHECKF(strstr(imt_index_open_error(), "checksum") &&
               strstr(imt_index_open_error(), t[i].why),
               "%s flipped: open error '%s'", t[i].what, imt_index_open_error());
        imt_index_close(idx);
        /* skipping the check: it opens, says it is not verified, and
         * verify still finds the damage */
        imt_index_opts o;
        imt_index_opts_init(&o);
        o.skip_content_check = 1;
        idx = NULL;
        e = imt_index_open(&idx, bad, &o);
        CHECKF(e == IMT_OK, "%s flipped, unchecked open: %s", t[i].what, imt_index_open_error());
        if (e != IMT_OK) continue;
        REQUIRE(imt_index_stats_get(idx, &s) == IMT_OK);
        CHECKF(s.content_verified == 0, "%s flipped: unchecked open says verified", t[i].what);
        /* the identity is the header's: only the check ties it to the bytes */
        char id2[65];
        CHECK(imt_index_identity(idx, id2) == IMT_OK && !strcmp(id, id2));
        e = imt_index_verify(idx);
        CHECKF(e == IMT_E_INDEX_CORRUPT, "%s flipped: verify gave %s", t[i].what,
               imt_err_name(e));
        if (i == 0) {
            /* `index verify` names the bad record, not the open's checksum
             * sentence (it opens without the content check) */
            char cmd[800];
            snprintf(cmd, sizeof cmd, "'%s' index verify '%s' 2>&1", IMT_CLI, bad);
            FILE *pf = popen(cmd, "r");
            REQUIRE(pf != NULL);
            char out[2048];
            size_t nr = fread(out, 1, sizeof out - 1, pf);
            out[nr] = '\0';
            int st = pclose(pf);
            CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 2 && strstr(out, "entry 5") &&
                   strstr(out, "differs from the entry's"),
                   "index verify on a flipped PDQ hash: status %d, '%s'", st, out);
        }
        if (t[i].hash != SIZE_MAX) {
            /* what the check prevents: the known hash is no longer found */
            imt_cursor *c = NULL;
            REQUIRE(imt_cursor_open(&c, idx) == IMT_OK);
            const imt_match *m;
            size_t n = 9;
            CHECK(imt_query_pdq(c, &known[t[i].hash], 1, 0, &m, &n) == IMT_OK && n == 0);
            imt_cursor_close(c);
        }
        imt_index_close(idx);
    }
}

/* An index written before the delta checksum existed has no "dsum"
 * record: it opens, the compacted segment is still checked, and it says
 * content_verified = 0 while it has a delta segment; its next commit
 * seals the delta. */
static void no_delta_sum(void)
{
    char dir[300], copy[320], from[400], to[400];
    snprintf(dir, sizeof dir, "%s/content.idx", tmpdir);
    snprintf(copy, sizeof copy, "%s/nodsum.idx", tmpdir);
    REQUIRE(mkdir(copy, 0755) == 0);
    snprintf(from, sizeof from, "%s/data.mdb", dir);
    snprintf(to, sizeof to, "%s/data.mdb", copy);
    copy_file(from, to, 0644);
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    REQUIRE(mdb_env_create(&env) == 0);
    mdb_env_set_maxdbs(env, 8);
    mdb_env_set_mapsize(env, (size_t)64 << 20);
    REQUIRE(mdb_env_open(env, copy, 0, 0644) == 0);
    REQUIRE(mdb_txn_begin(env, NULL, 0, &txn) == 0);
    REQUIRE(mdb_dbi_open(txn, "meta", 0, &dbi) == 0);
    MDB_val k = {4, (void *)"dsum"};
    REQUIRE(mdb_del(txn, dbi, &k, NULL) == 0);
    REQUIRE(mdb_txn_commit(txn) == 0);
    mdb_env_close(env);

    imt_index *idx = NULL;
    REQUIRE(imt_index_open(&idx, copy, NULL) == IMT_OK);
    imt_index_stats s;
    REQUIRE(imt_index_stats_get(idx, &s) == IMT_OK);
    CHECK(s.pdq_delta == NDELTA && s.content_verified == 0);
    CHECK(query_all(idx) == 0);
    CHECK(imt_index_verify(idx) == IMT_OK);
    imt_index_close(idx);
    imt_index_opts o;
    imt_index_opts_init(&o);
    o.read_only = 0;
    REQUIRE(imt_index_open(&idx, copy, &o) == IMT_OK);
    imt_import_opts io;
    imt_import_opts_init(&io);
    io.format = "sha1sum";
    io.compact = 0;
    snprintf(from, sizeof from, "%s/seal.sha1", tmpdir);
    FILE *f = fopen(from, "w");
    REQUIRE(f != NULL);
    fprintf(f, "86f7e437faa5a7fce15d1ddcb9eaeaea377667b8  a.txt\n");
    REQUIRE(fclose(f) == 0);
    CHECKF(imt_index_import(idx, from, &io, NULL) == IMT_OK, "%s", imt_index_last_error(idx));
    REQUIRE(imt_index_stats_get(idx, &s) == IMT_OK);
    CHECK(s.pdq_delta == NDELTA && s.content_verified == 1);
    imt_index_close(idx);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "%s/test_index_open.XXXXXX", IMT_BINARY_DIR);
    REQUIRE(mkdtemp(tmpdir));
    REQUIRE(chmod(tmpdir, 0755) == 0);
    content_check();
    no_delta_sum();
    shared_readonly();
    int mounted = ro_mount();
    writer_commits(1);
    writer_commits(0);
    scan_during_commit();
    char cmd[800];
    snprintf(cmd, sizeof cmd, "chmod -R u+w '%s' && rm -rf '%s'", tmpdir, tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    int rc = tu_done("test_index_open");
    if (rc == 0 && !mounted) return tu_skip("no read-only bind mount (needs CAP_SYS_ADMIN)");
    return rc;
}
