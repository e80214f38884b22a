/* tests/test_scan.c -- the walker, the records and the report, without an
 * index: ordering, hard links, symlink loops, FIFOs, unreadable folders,
 * vanishing files, non-UTF-8 names, paths over PATH_MAX, evidence left
 * untouched (bytes and atimes), thread-count independence, stop and resume.
 * Public API only. */
#define _GNU_SOURCE 1 /* fopencookie */
#include "scantest.h"

#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <pthread.h>
#include <sys/wait.h>
#include <time.h>

static char root[256];

static void mkfile(const char *rel, const char *content)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    st_write(p, content, strlen(content));
}

static char *lit(const char *rel)
{
    /* The JSON literal of root/rel (root has only plain characters). */
    static char b[4][600];
    static int k = 0;
    char *o = b[k++ & 3];
    snprintf(o, sizeof b[0], "\"%s/%s\"", root, rel);
    return o;
}

static size_t long_path_len;

/* 25 nested folders of 200-byte names: a file path over PATH_MAX. */
static void make_long_path(void)
{
    char name[201];
    memset(name, 'n', 200);
    name[200] = '\0';
    char p[512];
    snprintf(p, sizeof p, "%s/long", root);
    REQUIRE(mkdir(p, 0755) == 0);
    int fd = open(p, O_RDONLY | O_DIRECTORY);
    REQUIRE(fd >= 0);
    long_path_len = strlen(p);
    for (int i = 0; i < 25; i++) {
        REQUIRE(mkdirat(fd, name, 0755) == 0);
        int nfd = openat(fd, name, O_RDONLY | O_DIRECTORY);
        REQUIRE(nfd >= 0);
        close(fd);
        fd = nfd;
        long_path_len += 201;
    }
    int f = openat(fd, "deep.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    REQUIRE(f >= 0);
    REQUIRE(write(f, "deep", 4) == 4);
    close(f);
    close(fd);
    long_path_len += strlen("/deep.txt");
}

static void build_tree(void)
{
    strcpy(root, "/tmp/imt-scan-XXXXXX");
    REQUIRE(mkdtemp(root) != NULL);
    REQUIRE(chmod(root, 0755) == 0); /* the unprivileged child walks it too */
    char p[600], q[600];
    mkfile("a.txt", "hello\n");
    snprintf(p, sizeof p, "%s/b", root);
    REQUIRE(mkdir(p, 0755) == 0);
    snprintf(p, sizeof p, "%s/a.txt", root);
    snprintf(q, sizeof q, "%s/b/hard.txt", root);
    REQUIRE(link(p, q) == 0);
    snprintf(p, sizeof p, "%s/b/loop1", root);
    REQUIRE(symlink("loop2", p) == 0);
    snprintf(p, sizeof p, "%s/b/loop2", root);
    REQUIRE(symlink("loop1", p) == 0);
    snprintf(p, sizeof p, "%s/b/up", root);
    REQUIRE(symlink("..", p) == 0);
    snprintf(p, sizeof p, "%s/fifo", root);
    REQUIRE(mkfifo(p, 0644) == 0);
    snprintf(p, sizeof p, "%s/bad\xff\xfe.bin", root);
    st_write(p, "x", 1);
    snprintf(p, sizeof p, "%s/locked", root);
    REQUIRE(mkdir(p, 0755) == 0);
    mkfile("locked/secret.txt", "secret");
    REQUIRE(chmod(p, 0) == 0);
    make_long_path();
    mkfile("z_empty", "");
    mkfile("b-c.txt", "sorts after b/ in walk order: '/' is lowest");
}

static void rm_tree(void)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "chmod -R u+rwx '%s' 2>/dev/null; rm -rf '%s'", root, root);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", root);
}

static void test_records(void)
{
    const char *paths[] = {root};
    st_report r;
    CHECK(st_scan(NULL, paths, 1, 2, 3, 0, NULL, NULL, 0, IMT_REPORT_JSONL, &r) == IMT_OK);
    /* Walk order: sorted names, depth first, '/' before every byte. */
    const char *order[] = {"a.txt", "b/hard.txt", "b/loop1", "b/loop2", "b/up", "b-c.txt",
                           "bad\\udcff\\udcfe.bin", "fifo", "z_empty"};
    const char *prev = r.text;
    for (size_t i = 0; i < sizeof order / sizeof *order; i++) {
        const char *l = st_line(&r, lit(order[i]));
        CHECKF(l != NULL, "no record for %s", order[i]);
        CHECKF(l > prev, "%s out of order", order[i]);
        if (l) prev = l;
    }
    const char *l = st_line(&r, lit("a.txt"));
    CHECK(st_has(l, "\"type\":\"file\"") && st_has(l, "\"status\":\"not-an-image\""));
    CHECK(st_has(l, "\"md5\":\"b1946ac92492d2347c6235b4d2611184\""));
    CHECK(st_has(l, "\"sha1\":\"f572d396fae9206628714fb2ce00f72e94f2258f\""));
    CHECK(st_has(l, "\"size\":6,") && st_has(l, "\"mtime\":\"") && st_has(l, "\"ctime\":\""));
    l = st_line(&r, lit("b/hard.txt"));
    char want[700];
    snprintf(want, sizeof want, "\"hardlink_of\":%s", lit("a.txt"));
    CHECK(st_has(l, "\"type\":\"hardlink\"") && st_has(l, want) && !st_has(l, "\"md5\""));
    l = st_line(&r, lit("b/loop1"));
    CHECK(st_has(l, "\"type\":\"symlink\"") && st_has(l, "\"link_target\":\"loop2\""));
    l = st_line(&r, lit("b/up"));
    CHECK(st_has(l, "\"type\":\"symlink\"") && st_has(l, "\"link_target\":\"..\""));
    l = st_line(&r, lit("fifo"));
    CHECK(st_has(l, "\"type\":\"fifo\"") && st_has(l, "not opened"));
    l = st_line(&r, lit("bad\\udcff\\udcfe.bin"));
    CHECK(st_has(l, "\"md5\":\"9dd4e461268c8034f5c8564e155c67a6\"")); /* md5("x") */
    l = st_line(&r, lit("z_empty"));
    CHECK(st_has(l, "\"status\":\"empty\""));
    /* The path over PATH_MAX was read through descriptors. */
    CHECK(long_path_len > PATH_MAX);
    const char *deep = strstr(r.text, "nnnn/deep.txt\"");
    CHECK(deep != NULL);
    if (deep) {
        const char *start = deep;
        while (start > r.text && start[-1] != '\n') start--;
        CHECK(st_has(start, "\"md5\":\"6627415e807ee33c7302917216e7da68\"")); /* md5sum */
        const char *ps = strstr(start, "\"path\":\"") + 8;
        CHECK((size_t)(strchr(ps, '"') - ps) == long_path_len);
    }
    /* Nothing followed the symlinks: a.txt is recorded once as a file. */
    const char *a1 = st_line(&r, lit("a.txt"));
    CHECK(a1 && !strstr(a1 + 1, "/b/up/"));
    CHECK(r.sum.complete);
    /* Root reads the 000 folder; an unprivileged walk is tested below. */
    yajl_val s = st_summary(&r);
    CHECK(s != NULL);
    const char *tp[] = {"types", "symlink", NULL};
    yajl_val v = yajl_tree_get(s, tp, yajl_t_number);
    CHECK(v && YAJL_GET_INTEGER(v) == 3);
    yajl_tree_free(s);
    free(r.text);
}

static void test_threads_identical(void)
{
    const char *paths[] = {root};
    st_report a, b;
    st_scan(NULL, paths, 1, 1, 256, 0, NULL, NULL, 0, IMT_REPORT_JSONL, &a);
    st_scan(NULL, paths, 1, 2, 2, 0, NULL, NULL, 0, IMT_REPORT_JSONL, &b);
    char *ra = st_records(&a), *rb = st_records(&b);
    CHECK(strlen(ra) > 0 && strcmp(ra, rb) == 0);
    yajl_val sa = st_summary(&a), sb = st_summary(&b);
    CHECK(sa && sb && st_json_equal(sa, sb, st_time_keys));
    yajl_tree_free(sa);
    yajl_tree_free(sb);
    free(ra);
    free(rb);
    free(a.text);
    free(b.text);
}

static void test_resume(void)
{
    const char *paths[] = {root};
    char part[600], part2[600];
    snprintf(part, sizeof part, "%s.part.jsonl", root);
    snprintf(part2, sizeof part2, "%s.part2.jsonl", root);
    st_report full, cut, cut2, res;
    st_scan(NULL, paths, 1, 2, 2, 0, NULL, NULL, 0, IMT_REPORT_JSONL, &full);
    /* Interrupt after 3 records, then interrupt the resumed run too. */
    CHECK(st_scan(NULL, paths, 1, 2, 2, 3, NULL, part, 0, IMT_REPORT_JSONL, &cut) ==
          IMT_E_INTERRUPTED);
    /* Stopped during the second batch of 2: that batch is emitted whole. */
    CHECKF(!cut.sum.complete && cut.sum.entries == 4, "entries %llu",
           (unsigned long long)cut.sum.entries);
    CHECK(strstr(cut.text, "\"complete\":false") != NULL);
    CHECK(st_scan(NULL, paths, 1, 1, 2, 6, part, part2, 0, IMT_REPORT_JSONL, &cut2) ==
          IMT_E_INTERRUPTED);
    CHECKF(cut2.sum.entries == 6, "entries %llu", (unsigned long long)cut2.sum.entries);
    CHECK(st_scan(NULL, paths, 1, 2, 2, 0, part2, NULL, 0, IMT_REPORT_JSONL, &res) == IMT_OK);
    char *rf = st_records(&full), *rr = st_records(&res), *rc = st_records(&cut);
    CHECK(strcmp(rf, rr) == 0);
    CHECK(strncmp(rf, rc, strlen(rc)) == 0); /* the cut report is a prefix */
    yajl_val sf = st_summary(&full), sr = st_summary(&res);
    CHECK(sf && sr && st_json_equal(sf, sr, st_time_keys));
    CHECK(strstr(res.text, "\"resumed_from\":") != NULL);
    yajl_tree_free(sf);
    yajl_tree_free(sr);
    free(rf);
    free(rr);
    free(rc);
    /* Resuming with other options is refused with a reason. */
    imt_report *rep = NULL;
    FILE *f = fopen("/dev/null", "w");
    REQUIRE(imt_report_create(&rep, f, NULL) == IMT_OK);
    CHECK(imt_report_resume(rep, part) == IMT_OK);
    imt_scan_opts so;
    imt_scan_opts_init(&so);
    so.hash.dihedral = 0;
    CHECK(imt_report_begin(rep, NULL, paths, 1, &so) == IMT_E_INVALID);
    CHECK(strstr(imt_report_last_error(rep), "options") != NULL);
    imt_report_free(rep);
    fclose(f);
    unlink(part);
    unlink(part2);
    free(full.text);
    free(cut.text);
    free(cut2.text);
    free(res.text);
}

/* A file deleted after the walk found it but before it was read. */
static int vanish_skip(void *ctx, const char *path, imt_entry_type type)
{
    (void)ctx;
    (void)type;
    size_t n = strlen(path);
    if (n > 10 && !strcmp(path + n - 10, "vanish.txt")) CHECK(unlink(path) == 0);
    return 0;
}

static void test_vanish(void)
{
    mkfile("vanish.txt", "soon gone");
    const char *paths[] = {root};
    st_report r;
    memset(&r, 0, sizeof r);
    FILE *f = open_memstream(&r.text, &r.len);
    imt_report *rep = NULL;
    REQUIRE(imt_report_create(&rep, f, NULL) == IMT_OK);
    imt_scan_opts so;
    imt_scan_opts_init(&so);
    so.skip = vanish_skip;
    REQUIRE(imt_report_begin(rep, NULL, paths, 1, &so) == IMT_OK);
    CHECK(imt_scan_run(NULL, paths, 1, &so, imt_report_record, rep, NULL, 0) == IMT_OK);
    CHECK(imt_report_end(rep, IMT_OK, &r.sum) == IMT_OK);
    imt_report_free(rep);
    fclose(f);
    const char *l = st_line(&r, lit("vanish.txt"));
    CHECK(st_has(l, "\"status\":\"not-found\"") && st_has(l, "vanished"));
    CHECK(r.sum.errors == 0 && r.sum.complete);
    /* A file deleted during the scan is a finding, not a scan error: the
     * summary keeps the two apart (issue 9 item 11). */
    CHECK(strstr(r.text, "\"errors_by_kind\":{},\"findings_by_kind\":{\"not-found\":1}") != NULL);
    free(r.text);
}

/* Evidence untouched: bytes, mtime and atime (set in the past, so that even
 * relatime would update it on a read) of files and folders. */
/* Returns 0 when the file system under base does not record reads. */
static int atime_check(const char *base)
{
    char p[600], d[600];
    snprintf(d, sizeof d, "%s/at", base);
    REQUIRE(mkdir(d, 0755) == 0);
    snprintf(p, sizeof p, "%s/at/photo.bin", base);
    st_write(p, "\xff\xd8\xff\xe0 not really a jpeg", 23);
    struct timespec old[2] = {{1000000000, 0}, {1000000000, 0}}; /* 2001 */
    REQUIRE(utimensat(AT_FDCWD, p, old, 0) == 0);
    struct timespec dold[2] = {{1000000000, 0}, {UTIME_OMIT, 0}};
    REQUIRE(utimensat(AT_FDCWD, d, dold, 0) == 0);
    /* Does this mount record reads at all? Probe with a plain read. */
    char probe[600];
    snprintf(probe, sizeof probe, "%s/probe", base);
    st_write(probe, "p", 1);
    REQUIRE(utimensat(AT_FDCWD, probe, old, 0) == 0);
    size_t n;
    free(tu_read_file(probe, &n));
    struct stat ps;
    REQUIRE(stat(probe, &ps) == 0);
    int atime_works = ps.st_atim.tv_sec != 1000000000;
    unlink(probe);

    size_t len0, len1;
    unsigned char *before = tu_read_file(p, &len0);
    REQUIRE(utimensat(AT_FDCWD, p, old, 0) == 0); /* undo our own read */
    struct stat s0, s1, ds;
    REQUIRE(stat(p, &s0) == 0);
    const char *paths[] = {d};
    st_report r;
    st_scan(NULL, paths, 1, 2, 256, 0, NULL, NULL, 0, IMT_REPORT_JSONL, &r);
    CHECK(strstr(r.text, "photo.bin") != NULL);
    REQUIRE(stat(p, &s1) == 0);
    REQUIRE(stat(d, &ds) == 0);
    CHECK(s1.st_mtim.tv_sec == s0.st_mtim.tv_sec && s1.st_size == s0.st_size);
    unsigned char *after = tu_read_file(p, &len1);
    CHECK(before && after && len0 == len1 && memcmp(before, after, len0) == 0);
    if (atime_works) {
        CHECKF(s1.st_atim.tv_sec == 1000000000, "file atime changed to %lld",
               (long long)s1.st_atim.tv_sec);
        CHECKF(ds.st_atim.tv_sec == 1000000000, "folder atime changed to %lld",
               (long long)ds.st_atim.tv_sec);
    }
    free(before);
    free(after);
    free(r.text);
    return atime_works;
}

/* Where the test tree's file system does not record reads (noatime), the
 * check runs on tmpfs (/dev/shm: relatime by default) instead. */
static void test_atime(void)
{
    if (atime_check(root)) return;
    char shm[64] = "/dev/shm/imt-atime-XXXXXX";
    if (mkdtemp(shm)) {
        int ok = atime_check(shm);
        char cmd[200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", shm);
        if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", shm);
        if (ok) return;
    }
    st_subskip("neither the test folder nor /dev/shm updates atimes on read (noatime)");
}

/* An unreadable folder, walked by an unprivileged process (root reads
 * anything, so as root the walk runs in a child that drops to nobody). */
static void test_unreadable(void)
{
    char out[600];
    snprintf(out, sizeof out, "%s.unpriv.jsonl", root);
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    REQUIRE(fd >= 0);
    close(fd);
    REQUIRE(chmod(out, 0666) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        if (st_drop_root() != 0) _exit(77);
        const char *paths[] = {root};
        st_report r;
        st_scan(NULL, paths, 1, 2, 256, 0, NULL, out, 0, IMT_REPORT_JSONL, &r);
        _exit(tu_failures ? 1 : 0);
    }
    int status;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
        st_subskip("cannot drop privileges to test an unreadable folder");
        unlink(out);
        return;
    }
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    st_report r;
    memset(&r, 0, sizeof r);
    size_t len;
    r.text = (char *)tu_read_file(out, &len);
    REQUIRE(r.text);
    r.text = realloc(r.text, len + 1);
    r.text[len] = '\0';
    r.len = len;
    const char *l = st_line(&r, lit("locked"));
    CHECK(st_has(l, "\"type\":\"dir\"") && st_has(l, "\"status\":\"unreadable\"") &&
          st_has(l, "Permission denied"));
    CHECK(strstr(r.text, "secret.txt") == NULL);
    CHECK(strstr(r.text, "\"scan_errors\":1,") != NULL);
    CHECK(st_has(l, "\"scan_error\":true"));
    /* An unreadable folder leaves the scan incomplete, as the exit status
     * (2) says (issue 9 item 11: they agree). */
    CHECK(strstr(r.text, "\"complete\":false") != NULL);
    free(r.text);
    unlink(out);
}

static void test_csv_and_escaping(void)
{
    const char *paths[] = {root};
    st_report r;
    st_scan(NULL, paths, 1, 1, 256, 0, NULL, NULL, 0, IMT_REPORT_CSV, &r);
    CHECK(!strncmp(r.text, "# {\"record\":\"header\"", 20));
    CHECK(strstr(r.text, "\npath,type,status,detail,size,") != NULL);
    CHECK(strstr(r.text, "/bad\\xff\\xfe.bin\",file,not-an-image,") != NULL);
    CHECK(strstr(r.text, "\n# {\"record\":\"summary\"") != NULL);
    free(r.text);
    /* Hits only, no index: header and summary, no records. */
    st_scan(NULL, paths, 1, 1, 256, 0, NULL, NULL, 1, IMT_REPORT_JSONL, &r);
    CHECK(strstr(r.text, "{\"record\":\"file\"") == NULL);
    CHECK(strstr(r.text, "{\"record\":\"summary\"") != NULL);
    free(r.text);

    /* Lossless escaping: every byte sequence comes back. */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK(imt_json_write_str(f, "a\"\\\n\x01\xc3\xa9\xed\xa0\x80\xf0\x9f\x98\x80\xff") == 0);
    fclose(f);
    CHECK(!strcmp(buf, "\"a\\\"\\\\\\n\\u0001\xc3\xa9\\udced\\udca0\\udc80\xf0\x9f\x98\x80\\udcff\""));
    free(buf);
}

static void test_args(void)
{
    const char *paths[] = {"/nonexistent/evidence", root};
    st_report r;
    st_scan(NULL, paths, 2, 1, 256, 0, NULL, NULL, 0, IMT_REPORT_JSONL, &r);
    const char *l = st_line(&r, "\"/nonexistent/evidence\"");
    CHECK(st_has(l, "\"status\":\"not-found\""));
    CHECK(l && l < st_line(&r, lit("a.txt"))); /* arguments in the order given */
    /* A PATH that does not exist (a typo, an unmounted exhibit) leaves the
     * scan incomplete (issue 9 item 2): counted as a scan error, and the
     * summary says so. */
    CHECK(st_has(l, "\"scan_error\":true"));
    CHECKF(r.sum.errors == 1, "errors %llu", (unsigned long long)r.sum.errors);
    CHECK(!r.sum.complete);
    CHECK(strstr(r.text, "\"complete\":false") != NULL);
    free(r.text);
    /* Only the missing PATH: the same. */
    st_scan(NULL, paths, 1, 1, 256, 0, NULL, NULL, 0, IMT_REPORT_JSONL, &r);
    CHECK(r.sum.errors == 1 && !r.sum.complete && r.sum.entries == 1);
    CHECK(strstr(r.text, "\"errors_by_kind\":{\"not-found\":1},\"findings_by_kind\":{}") != NULL);
    free(r.text);
    CHECK(imt_scan_run(NULL, paths, 2, NULL, NULL, NULL, NULL, 0) == IMT_E_INVALID);
    uint64_t files = 0, bytes = 0;
    CHECK(imt_scan_estimate(paths + 1, 1, 0, NULL, &files, &bytes) == IMT_OK);
    /* Exactly what find(1) counts: regular files, one per inode. */
    char cmd[700];
    snprintf(cmd, sizeof cmd, "find '%s' -type f -printf '%%D:%%i %%s\\n' | sort -u | "
             "awk '{n++; b+=$2} END {print n+0, b+0}'", root);
    FILE *p = popen(cmd, "r");
    unsigned long long wf = 0, wb = 0;
    REQUIRE(p && fscanf(p, "%llu %llu", &wf, &wb) == 2);
    pclose(p);
    CHECKF(files == wf && bytes == wb, "estimate %llu files %llu bytes, find %llu %llu",
           (unsigned long long)files, (unsigned long long)bytes, wf, wb);
}

/* Repeated and overlapping PATHs are read once (issue 9 item 11): a PATH
 * inside another (or the same, by another name) gets one record saying so,
 * and nothing under it is walked again. */
static void test_overlap(void)
{
    char sub_dir[600], again[600], file[600], dotted[600];
    snprintf(sub_dir, sizeof sub_dir, "%s/b", root);
    snprintf(again, sizeof again, "%s/b/", root);
    snprintf(file, sizeof file, "%s/a.txt", root);
    snprintf(dotted, sizeof dotted, "%s/b/..", root);
    const char *alone[] = {root};
    const char *paths[] = {sub_dir, root, again, file, dotted};
    st_report one, many;
    CHECK(st_scan(NULL, alone, 1, 1, 256, 0, NULL, NULL, 0, IMT_REPORT_JSONL, &one) == IMT_OK);
    CHECK(st_scan(NULL, paths, 5, 2, 3, 0, NULL, NULL, 0, IMT_REPORT_JSONL, &many) == IMT_OK);
    CHECKF(many.sum.files == one.sum.files, "files %llu, alone %llu",
           (unsigned long long)many.sum.files, (unsigned long long)one.sum.files);
    CHECKF(many.sum.entries == one.sum.entries + 4, "entries %llu, alone %llu",
           (unsigned long long)many.sum.entries, (unsigned long long)one.sum.entries);
    CHECK(many.sum.bytes == one.sum.bytes && many.sum.complete);
    char l[700];
    snprintf(l, sizeof l, "\"%s\"", sub_dir);
    CHECK(st_has(st_line(&many, l), "\"type\":\"dir\"") &&
          st_has(st_line(&many, l), "read there once"));
    snprintf(l, sizeof l, "\"%s\"", file);
    /* a.txt has two records: read under root, then the PATH's own record. */
    char key[720];
    snprintf(key, sizeof key, "\"path\":%s,", l);
    const char *fl = strstr(many.text, key), *f2 = fl ? strstr(fl + 1, key) : NULL;
    CHECK(fl && st_has(fl, "\"md5\""));
    CHECK(f2 && st_has(f2, "read there once") && !st_has(f2, "\"md5\""));
    /* b's entries appear once, under root (where the walk reads them). */
    snprintf(l, sizeof l, "\"path\":\"%s/b/loop1\"", root);
    const char *first = strstr(many.text, l);
    CHECK(first && !strstr(first + 1, l));
    free(one.text);
    free(many.text);
}

/* A file that grows while it is read (issue 9 item 11): the digests cover
 * exactly the bytes the result reports (the size when opened), and the
 * result says the file changed. A writer thread appends all along. */
typedef struct grower {
    const char *path;
    volatile int stop;
} grower;

static void *grow_main(void *arg)
{
    grower *g = arg;
    int fd = open(g->path, O_WRONLY | O_APPEND);
    static char chunk[65536];
    memset(chunk, 'g', sizeof chunk);
    /* Paced (at most ~300 MB/s, 256 MB in all, at least 0.8 s) so that it
     * is still writing when the read ends, whatever the machine. */
    for (int i = 0; fd >= 0 && !g->stop && i < 4096; i++) {
        if (write(fd, chunk, sizeof chunk) != (ssize_t)sizeof chunk) break;
        usleep(200);
    }
    if (fd >= 0) close(fd);
    return NULL;
}

static void test_growing(void)
{
    char p[600];
    snprintf(p, sizeof p, "%s.grow.bin", root);
    static char base[1 << 20];
    for (size_t i = 0; i < sizeof base; i++) base[i] = (char)(i * 7);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    REQUIRE(fd >= 0);
    for (int i = 0; i < 16; i++) REQUIRE(write(fd, base, sizeof base) == (ssize_t)sizeof base);
    close(fd);
    grower g = {p, 0};
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, grow_main, &g) == 0);
    struct stat s0;
    do REQUIRE(stat(p, &s0) == 0);
    while (s0.st_size == 16 << 20); /* it is growing */
    imt_hash_opts o;
    imt_hash_opts_init(&o);
    o.digests = IMT_DIGEST_MD5;
    imt_hasher *h;
    REQUIRE(imt_hasher_create(&h, &o) == IMT_OK);
    imt_hash_result r;
    imt_hash_file(h, p, &r);
    g.stop = 1;
    pthread_join(th, NULL);
    imt_hasher_free(h);
    struct stat s1;
    REQUIRE(stat(p, &s1) == 0);
    CHECKF(r.changed, "no changed flag (read %llu bytes, now %lld)",
           (unsigned long long)r.file_size, (long long)s1.st_size);
    CHECK(strstr(r.detail, "changed while it was read") != NULL);
    CHECK(r.file_size >= (uint64_t)s0.st_size && r.file_size < (uint64_t)s1.st_size);
    /* The digest is the digest of the first file_size bytes (head | md5sum). */
    char cmd[800], md5[33], hx[33];
    snprintf(cmd, sizeof cmd, "head -c %llu '%s' | md5sum", (unsigned long long)r.file_size, p);
    FILE *pp = popen(cmd, "r");
    REQUIRE(pp && fread(md5, 1, 32, pp) == 32);
    pclose(pp);
    md5[32] = '\0';
    for (int i = 0; i < 16; i++) sprintf(hx + 2 * i, "%02x", r.md5[i]);
    CHECKF(!strcmp(hx, md5), "md5 %s, of the first %llu bytes %s", hx,
           (unsigned long long)r.file_size, md5);
    unlink(p);
}

/* The output of a digest tool for path: 'md5sum' -> hex into out. */
static void tool_digest(const char *tool, const char *path, char *out, size_t n)
{
    char cmd[900];
    snprintf(cmd, sizeof cmd, "%s '%s'", tool, path);
    FILE *p = popen(cmd, "r");
    REQUIRE(p != NULL);
    REQUIRE(fread(out, 1, n, p) == n);
    out[n] = '\0';
    pclose(p);
}

/* A sparse file (data, a hole, data, a trailing hole) is digested over every
 * byte although its holes are not read (issue 9 item 9): the digests equal
 * md5sum's and sha1sum's, and the size is the file's. */
static void test_sparse(void)
{
    char d[600], p[700];
    snprintf(d, sizeof d, "%s.sparse", root);
    REQUIRE(mkdir(d, 0755) == 0);
    snprintf(p, sizeof p, "%s/holes.bin", d);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    REQUIRE(fd >= 0);
    char a[1000], b[5000];
    memset(a, 'A', sizeof a);
    memset(b, 'B', sizeof b);
    REQUIRE(pwrite(fd, a, sizeof a, 0) == (ssize_t)sizeof a);
    REQUIRE(pwrite(fd, b, sizeof b, (3 << 20) + 17) == (ssize_t)sizeof b);
    REQUIRE(ftruncate(fd, (8 << 20) + 5) == 0);
    close(fd);
    char md5[33], sha1[41];
    tool_digest("md5sum", p, md5, 32);
    tool_digest("sha1sum", p, sha1, 40);
    const char *paths[] = {d};
    st_report r;
    CHECK(st_scan(NULL, paths, 1, 1, 256, 0, NULL, NULL, 0, IMT_REPORT_JSONL, &r) == IMT_OK);
    char want[200];
    snprintf(want, sizeof want, "\"md5\":\"%s\",\"sha1\":\"%s\"", md5, sha1);
    CHECKF(strstr(r.text, want) != NULL, "want %s in %s", want, r.text);
    snprintf(want, sizeof want, "\"read_bytes\":%d,", (8 << 20) + 5);
    CHECK(strstr(r.text, want) != NULL);
    free(r.text);
    unlink(p);
    rmdir(d);
}

/* A stream on a disk that fills up after 3000 bytes. */
static ssize_t full_write(void *c, const char *buf, size_t n)
{
    size_t *used = c;
    (void)buf;
    if (*used + n > 3000) {
        errno = ENOSPC;
        return -1;
    }
    *used += n;
    return (ssize_t)n;
}

/* The disk fills up while the report is written (issue 9 item 11): the
 * summary says the report could not be written, with "No space left on
 * device", never that something could not be read; and not complete. */
static void test_disk_full(void)
{
    size_t used = 0;
    cookie_io_functions_t io = {NULL, full_write, NULL, NULL};
    FILE *f = fopencookie(&used, "w", io);
    REQUIRE(f != NULL);
    imt_report *rep = NULL;
    REQUIRE(imt_report_create(&rep, f, NULL) == IMT_OK);
    const char *paths[] = {root};
    imt_scan_opts so;
    imt_scan_opts_init(&so);
    so.threads = 1;
    REQUIRE(imt_report_begin(rep, NULL, paths, 1, &so) == IMT_OK);
    imt_err st = imt_scan_run(NULL, paths, 1, &so, imt_report_record, rep, NULL, 0);
    CHECK(st == IMT_E_INTERRUPTED); /* the record callback stopped it */
    CHECK(strstr(imt_report_last_error(rep), "No space left on device") != NULL);
    imt_report_summary sum;
    CHECK(imt_report_end(rep, st, &sum) != IMT_OK);
    CHECK(!sum.complete);
    const char *t = imt_report_summary_text(rep);
    CHECKF(strstr(t, "SCAN INCOMPLETE: the report could not be written: No space left on "
                     "device") != NULL, "%s", t);
    CHECK(strstr(t, "could not be read") == NULL && strstr(t, "stopped") == NULL);
    imt_report_free(rep);
    fclose(f);
}

int main(void)
{
    build_tree();
    /* First: it forks, and libgomp's thread pool does not survive a fork. */
    test_unreadable();
    test_records();
    test_threads_identical();
    test_resume();
    test_vanish();
    test_atime();
    test_csv_and_escaping();
    test_args();
    test_sparse();
    test_overlap();
    test_growing();
    test_disk_full();
    rm_tree();
    return tu_done("test_scan");
}
