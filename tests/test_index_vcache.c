/* tests/test_index_vcache.c -- the verified-state record (issue 11, cold
 * start; docs/INDEX.md "Opening: the verified-state record").
 *
 * A read-only open that checked every page (and the PDQ content) records
 * it outside the index, in $XDG_CACHE_HOME/imgtriage/verified; the next open
 * of the unchanged file reads the meta and branch pages only (observed
 * through imt_index_stats.pages_from_record and open_pages_read, not
 * timing) and takes the content as verified by the record
 * (content_from_record, verified_at of the first check). Any change falls
 * back to the full check: a leaf page damaged in place with its mtime put
 * back (ctime still changes) is refused as without a record; an import
 * makes the next open check everything. A record is never written inside
 * the index folder, nor for a file changed within 2 s of the check; an
 * unusable record folder means the full check, no error. Expected answers
 * come from the generated lists (each hash at distance 0 with its own id,
 * each digest found), not from the code under test. */
#include "index/index.h"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "scantest.h"
#pragma GCC diagnostic pop

#include <dirent.h>
#include <time.h>
#include <pwd.h>
#include <stdint.h>
#include <sys/wait.h>

static char tmpdir[256], cache[320];
static uint64_t rng = 0x243F6A8885A308D3ull;

static uint64_t rnd(void)
{
    return tu_xorshift(&rng);
}

#define NPDQ 3000
#define NMD5 20000 /* a digest table of a few hundred leaves under branch pages */
static imt_pdq known[NPDQ];
static uint8_t md5s[NMD5][16];

static void import_file(imt_index *idx, const char *path, const char *fmt)
{
    imt_import_opts io;
    imt_import_opts_init(&io);
    io.import_time = 1700000000;
    io.format = fmt;
    io.compact = 1;
    CHECKF(imt_index_import(idx, path, &io, NULL) == IMT_OK, "%s", imt_index_last_error(idx));
}

static void build(const char *dir)
{
    char path[400];
    for (size_t i = 0; i < NPDQ; i++)
        for (int b = 0; b < 32; b += 8) {
            uint64_t r = rnd();
            memcpy(known[i].bytes + b, &r, 8);
        }
    for (size_t i = 0; i < NMD5; i++)
        for (int b = 0; b < 16; b += 8) {
            uint64_t r = rnd();
            memcpy(md5s[i] + b, &r, 8);
        }
    imt_index *idx = tu_index_new(dir, (uint64_t)64 << 20);
    snprintf(path, sizeof path, "%s/p.csv", tmpdir);
    FILE *f = fopen(path, "w");
    REQUIRE(f != NULL);
    for (size_t i = 0; i < NPDQ; i++) {
        for (int b = 0; b < 32; b++) fprintf(f, "%02x", known[i].bytes[b]);
        fprintf(f, ",90,item%zu\n", i);
    }
    REQUIRE(fclose(f) == 0);
    import_file(idx, path, "pdq-csv");
    snprintf(path, sizeof path, "%s/d.hex", tmpdir);
    f = fopen(path, "w");
    REQUIRE(f != NULL);
    for (size_t i = 0; i < NMD5; i++) {
        for (int b = 0; b < 16; b++) fprintf(f, "%02x", md5s[i][b]);
        fputc('\n', f);
    }
    REQUIRE(fclose(f) == 0);
    import_file(idx, path, "md5-hex");
    imt_index_close(idx);
}

/* The file must be older than the record's racy window (2 s) before a
 * record of it is written. */
static void age(void)
{
    struct timespec ts = {2, 300000000};
    nanosleep(&ts, NULL);
}

/* Failed checks of queries with known answers through a fresh cursor. */
static int query_all(imt_index *idx)
{
    int bad = 0;
    imt_cursor *c = NULL;
    if (imt_cursor_open(&c, idx) != IMT_OK) return 100;
    const imt_match *m;
    size_t n;
    for (size_t i = 0; i < NPDQ; i += 499) {
        char ext[32];
        snprintf(ext, sizeof ext, "item%zu", i);
        if (imt_query_pdq(c, &known[i], 1, 0, &m, &n) != IMT_OK || n != 1 || m[0].distance != 0 ||
            m[0].n_members != 1 || strcmp(m[0].members[0].external_id, ext))
            bad++;
    }
    for (size_t i = 0; i < NMD5; i += 997)
        if (imt_query_digest(c, IMT_KIND_MD5, md5s[i], &m, &n) != IMT_OK || n != 1) bad++;
    uint8_t absent[16];
    memset(absent, 0xa5, sizeof absent);
    if (imt_query_digest(c, IMT_KIND_MD5, absent, &m, &n) != IMT_OK || n != 0) bad++;
    imt_cursor_close(c);
    return bad;
}

typedef struct opened {
    imt_err err;
    imt_index_stats s;
    int stored;
    char id[65];
} opened;

/* Open dir read-only, record what the open did, query, close. */
static opened open_ro(const char *dir, int full)
{
    opened r;
    memset(&r, 0, sizeof r);
    imt_index_opts o;
    imt_index_opts_init(&o);
    o.full_check = full;
    imt_index *idx = NULL;
    r.err = imt_index_open(&idx, dir, &o);
    if (r.err) return r;
    REQUIRE(imt_index_stats_get(idx, &r.s) == IMT_OK);
    REQUIRE(imt_index_identity(idx, r.id) == IMT_OK);
    r.stored = idx->vc_stored;
    CHECKF(query_all(idx) == 0, "%s: queries with known answers failed", dir);
    imt_index_close(idx);
    return r;
}

/* Files in a folder (0 when absent). */
static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

/* A listing of the index folder: the names, and data.mdb's size, mtime
 * and ctime. */
static void listing(const char *dir, char *out, size_t cap)
{
    out[0] = '\0';
    DIR *d = opendir(dir);
    REQUIRE(d != NULL);
    struct dirent *e;
    size_t o = 0;
    while ((e = readdir(d))) {
        char p[600];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        REQUIRE(lstat(p, &st) == 0);
        if (S_ISDIR(st.st_mode) && e->d_name[0] == '.') continue;
        /* lock.mdb: LMDB's reader table, written by every locked open */
        int data = !strcmp(e->d_name, "data.mdb");
        int w = snprintf(out + o, cap - o, "%s:%lld:%lld.%09ld:%lld.%09ld\n", e->d_name,
                         data ? (long long)st.st_size : 0, data ? (long long)st.st_mtim.tv_sec : 0,
                         data ? st.st_mtim.tv_nsec : 0, data ? (long long)st.st_ctim.tv_sec : 0,
                         data ? st.st_ctim.tv_nsec : 0);
        REQUIRE(w > 0 && (size_t)w < cap - o);
        o += (size_t)w;
    }
    closedir(d);
}

/* The offset in data.mdb of the leaf page of "md5" holding md5s[k] (as
 * LMDB reads it: the file also holds freed pages with old copies). */
static uint64_t leaf_of(const char *dir, size_t k, unsigned *psize)
{
    imt_index *idx = NULL;
    imt_index_opts o;
    imt_index_opts_init(&o);
    o.full_check = 1;
    REQUIRE(imt_index_open(&idx, dir, &o) == IMT_OK);
    MDB_stat es;
    REQUIRE(mdb_env_stat(idx->env, &es) == 0);
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    REQUIRE(mdb_txn_begin(idx->env, NULL, MDB_RDONLY, &txn) == 0);
    REQUIRE(mdb_cursor_open(txn, idx->db_md5, &cur) == 0);
    MDB_val key = {16, md5s[k]}, val;
    REQUIRE(mdb_cursor_get(cur, &key, &val, MDB_SET_KEY) == 0);
    /* the map is page-aligned: the page begins with its number */
    size_t pg;
    memcpy(&pg, (const void *)((uintptr_t)key.mv_data & ~(uintptr_t)(es.ms_psize - 1)), sizeof pg);
    uint64_t at = (uint64_t)pg * es.ms_psize;
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    imt_index_close(idx);
    *psize = es.ms_psize;
    return at / es.ms_psize * es.ms_psize;
}

static void record_reuse(const char *dir)
{
    char vdir[400], before[4096], after[4096];
    snprintf(vdir, sizeof vdir, "%s/imgtriage/verified", cache);
    listing(dir, before, sizeof before);
    /* first open: everything read and checked, the record written */
    opened a = open_ro(dir, 0);
    REQUIRE(a.err == IMT_OK);
    CHECKF(a.s.pages_from_record == 0 && a.s.content_from_record == 0 && a.s.content_verified == 1,
           "first open: pages_from_record %d content_from_record %d verified %d",
           a.s.pages_from_record, a.s.content_from_record, a.s.content_verified);
    CHECKF(a.stored == 1 && count_files(vdir) == 1, "first open: record stored %d, %d files",
           a.stored, count_files(vdir));
    struct stat st;
    REQUIRE(stat(vdir, &st) == 0);
    CHECKF((st.st_mode & 0777) == 0700, "record folder mode %o", (unsigned)(st.st_mode & 0777));
    CHECK(a.s.verified_at > 0);
    /* second open: meta and branch pages only, the content by the record */
    opened b = open_ro(dir, 0);
    REQUIRE(b.err == IMT_OK);
    CHECKF(b.s.pages_from_record == 1 && b.s.content_from_record == 1 && b.s.content_verified == 1,
           "second open: pages_from_record %d content_from_record %d verified %d",
           b.s.pages_from_record, b.s.content_from_record, b.s.content_verified);
    CHECKF(b.s.open_pages_read * 10 < a.s.open_pages_read,
           "second open read %llu pages, the first %llu", (unsigned long long)b.s.open_pages_read,
           (unsigned long long)a.s.open_pages_read);
    CHECK(b.s.verified_at == a.s.verified_at && !strcmp(a.id, b.id) && b.stored == 0);
    /* forced: the full check (option and environment), and it refreshes */
    opened c = open_ro(dir, 1);
    CHECK(c.err == IMT_OK && c.s.pages_from_record == 0 && c.s.content_from_record == 0 &&
          c.s.open_pages_read == a.s.open_pages_read && c.stored == 1);
    setenv("IMGTRIAGE_FULL_CHECK", "1", 1);
    c = open_ro(dir, 0);
    CHECK(c.err == IMT_OK && c.s.pages_from_record == 0 && c.s.content_from_record == 0);
    unsetenv("IMGTRIAGE_FULL_CHECK");
    /* nothing was written into the index folder */
    listing(dir, after, sizeof after);
    CHECKF(!strcmp(before, after), "the index folder changed:\n%s---\n%s", before, after);
    /* a record folder others may write is not trusted */
    REQUIRE(chmod(vdir, 0770) == 0);
    c = open_ro(dir, 0);
    CHECK(c.err == IMT_OK && c.s.pages_from_record == 0 && c.stored == 0);
    REQUIRE(chmod(vdir, 0700) == 0);
    /* a record whose bytes do not match its own checksum is ignored */
    char rec[700];
    DIR *d = opendir(vdir);
    REQUIRE(d != NULL);
    struct dirent *e;
    rec[0] = '\0';
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') snprintf(rec, sizeof rec, "%s/%s", vdir, e->d_name);
    closedir(d);
    size_t rn = 0;
    unsigned char *rb = tu_read_file(rec, &rn);
    REQUIRE(rb != NULL && rn == sizeof(imt__idx_vrec));
    rb[offsetof(imt__idx_vrec, identity)] ^= 1;
    st_write(rec, rb, rn);
    c = open_ro(dir, 0);
    CHECK(c.err == IMT_OK && c.s.pages_from_record == 0 && c.s.content_from_record == 0);
    free(rb);
    CHECK(open_ro(dir, 0).s.pages_from_record == 1); /* the full open stored it again */
    /* a record whose key matches but whose structure hash does not (what a
     * branch page changed behind the file system's back looks like): the
     * light walk is thrown away for the full check */
    rb = tu_read_file(rec, &rn);
    REQUIRE(rb != NULL && rn == sizeof(imt__idx_vrec));
    imt__idx_vrec vr;
    memcpy(&vr, rb, sizeof vr);
    vr.key.structure[7] ^= 0x10;
    REQUIRE(imt__idx_vcache_store(dir, &vr) == 1);
    c = open_ro(dir, 0);
    CHECKF(c.err == IMT_OK && c.s.pages_from_record == 0 && c.s.content_from_record == 0 &&
               c.s.open_pages_read == a.s.open_pages_read && c.stored == 1,
           "structure hash differs: pages_from_record %d, %llu pages read (full: %llu)",
           c.s.pages_from_record, (unsigned long long)c.s.open_pages_read,
           (unsigned long long)a.s.open_pages_read);
    free(rb);
    CHECK(open_ro(dir, 0).s.pages_from_record == 1);
}

/* A leaf page damaged in place, its mtime put back: ctime still changes, so
 * the record no longer matches and the full check refuses the file. */
static void damaged_leaf(const char *dir)
{
    CHECK(open_ro(dir, 0).s.pages_from_record == 1);
    unsigned ps = 0;
    uint64_t off = leaf_of(dir, NMD5 / 2, &ps);
    char p[600];
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    struct stat st;
    REQUIRE(stat(p, &st) == 0);
    int fd = open(p, O_WRONLY);
    REQUIRE(fd >= 0);
    /* the page's upper bound (after mp_pgno, mp_pad, mp_flags, mp_lower)
     * past the page: LMDB would read node offsets outside it */
    uint16_t upper = (uint16_t)(ps + 1000);
    REQUIRE(pwrite(fd, &upper, 2, (off_t)(off + sizeof(size_t) + 6)) == 2);
    REQUIRE(close(fd) == 0);
    struct timespec ts[2] = {st.st_atim, st.st_mtim};
    REQUIRE(utimensat(AT_FDCWD, p, ts, 0) == 0);
    struct stat st2;
    REQUIRE(stat(p, &st2) == 0);
    REQUIRE(st2.st_mtim.tv_sec == st.st_mtim.tv_sec && st2.st_mtim.tv_nsec == st.st_mtim.tv_nsec &&
            st2.st_size == st.st_size && st2.st_ino == st.st_ino);
    opened r = open_ro(dir, 0);
    CHECKF(r.err == IMT_E_INDEX_CORRUPT, "damaged leaf with mtime restored: open gave %s",
           imt_err_name(r.err));
    CHECKF(strstr(imt_index_open_error(), "md5") != NULL, "open error '%s'", imt_index_open_error());
}

/* An import changes the file: the next open checks everything (and, the
 * file being seconds old, records nothing yet). */
static void after_import(const char *dir)
{
    CHECK(open_ro(dir, 0).s.pages_from_record == 1);
    imt_index_opts o;
    imt_index_opts_init(&o);
    o.read_only = 0;
    o.map_size = (uint64_t)64 << 20;
    imt_index *idx = NULL;
    REQUIRE(imt_index_open(&idx, dir, &o) == IMT_OK);
    char path[400];
    snprintf(path, sizeof path, "%s/e.hex", tmpdir);
    FILE *f = fopen(path, "w");
    REQUIRE(f != NULL);
    fprintf(f, "00112233445566778899aabbccddeeff\n");
    REQUIRE(fclose(f) == 0);
    import_file(idx, path, "md5-hex");
    imt_index_close(idx);
    opened r = open_ro(dir, 0);
    CHECK(r.err == IMT_OK && r.s.pages_from_record == 0 && r.s.content_from_record == 0 &&
          r.s.content_verified == 1);
    CHECKF(r.stored == 0, "a record of a file written %s ago was stored", "under 2 s");
    r = open_ro(dir, 0);
    CHECK(r.err == IMT_OK && r.s.pages_from_record == 0);
    age();
    r = open_ro(dir, 0);
    CHECK(r.err == IMT_OK && r.s.pages_from_record == 0 && r.stored == 1);
    r = open_ro(dir, 0);
    CHECK(r.err == IMT_OK && r.s.pages_from_record == 1 && r.s.content_from_record == 1);
}

/* No usable record folder: the full check, no error, nothing written. */
static void no_record_folder(const char *dir)
{
    char x[600], inside[600];
    /* XDG_CACHE_HOME a regular file */
    snprintf(x, sizeof x, "%s/afile", tmpdir);
    st_write(x, "x", 1);
    setenv("XDG_CACHE_HOME", x, 1);
    opened r = open_ro(dir, 0);
    CHECK(r.err == IMT_OK && r.s.pages_from_record == 0 && r.stored == 0 && r.s.content_verified);
    /* inside the index folder: never written there */
    snprintf(inside, sizeof inside, "%s/cache", dir);
    setenv("XDG_CACHE_HOME", inside, 1);
    r = open_ro(dir, 0);
    CHECK(r.err == IMT_OK && r.s.pages_from_record == 0 && r.stored == 0);
    struct stat st;
    CHECKF(stat(inside, &st) != 0 && errno == ENOENT, "%s was created", inside);
    setenv("XDG_CACHE_HOME", cache, 1);
}

/* A read-only shared index (root-owned 0755/0644, no writable lock.mdb)
 * opened by another user: the record goes to that user's cache. */
static void shared_readonly(const char *src)
{
    if (geteuid() != 0) {
        st_subskip("shared read-only index as another user (needs root to drop to 'nobody')");
        return;
    }
    char dir[400], from[600], to[600], ucache[400];
    snprintf(dir, sizeof dir, "%s/shared.idx", tmpdir);
    REQUIRE(mkdir(dir, 0755) == 0);
    snprintf(from, sizeof from, "%s/data.mdb", src);
    snprintf(to, sizeof to, "%s/data.mdb", dir);
    size_t n = 0;
    unsigned char *b = tu_read_file(from, &n);
    REQUIRE(b != NULL);
    st_write(to, b, n);
    free(b);
    REQUIRE(chmod(to, 0644) == 0);
    snprintf(ucache, sizeof ucache, "%s/ucache", tmpdir);
    REQUIRE(mkdir(ucache, 0700) == 0);
    struct passwd *pw = getpwnam("nobody");
    REQUIRE(chown(ucache, pw ? pw->pw_uid : 65534, pw ? pw->pw_gid : 65534) == 0);
    age();
    char before[4096], after[4096];
    listing(dir, before, sizeof before);
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        tu_failures = 0; /* the child's own checks (the parent's are its own) */
        setenv("XDG_CACHE_HOME", ucache, 1);
        if (st_drop_root() != 0) _exit(90);
        opened a = open_ro(dir, 0), c = open_ro(dir, 0);
        if (a.err || c.err) _exit(10);
        if (a.s.pages_from_record || !a.stored) _exit(11);
        if (!c.s.pages_from_record || !c.s.content_from_record) _exit(12);
        _exit(tu_failures ? 13 : 0);
    }
    int status;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "shared read-only: child status %d",
           status);
    listing(dir, after, sizeof after);
    CHECKF(!strcmp(before, after), "the shared index folder changed:\n%s---\n%s", before, after);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "%s/test_index_vcache.XXXXXX", IMT_BINARY_DIR);
    REQUIRE(mkdtemp(tmpdir));
    REQUIRE(chmod(tmpdir, 0755) == 0);
    snprintf(cache, sizeof cache, "%s/cache", tmpdir);
    setenv("XDG_CACHE_HOME", cache, 1);
    unsetenv("IMGTRIAGE_FULL_CHECK");
    char dir[400];
    snprintf(dir, sizeof dir, "%s/a.idx", tmpdir);
    build(dir);
    age();
    record_reuse(dir);
    no_record_folder(dir);
    shared_readonly(dir);
    after_import(dir);
    damaged_leaf(dir);
    char cmd[800];
    snprintf(cmd, sizeof cmd, "chmod -R u+w '%s' && rm -rf '%s'", tmpdir, tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return tu_done("test_index_vcache");
}
