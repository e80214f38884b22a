/* tests/scantest.h -- helpers shared by the scan tests (header-only: every
 * tests/test_*.c is its own program). Public API only. */
#ifndef IMT_SCANTEST_H
#define IMT_SCANTEST_H

#include "imgtriage.h"
#include "testutil.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

/* A report in memory. */
typedef struct st_report {
    char *text;
    size_t len;
    imt_err scan_status;
    imt_report_summary sum;
} st_report;

typedef struct st_stopper {
    imt_report *rep;
    volatile int *stop;
    unsigned long after, seen;
} st_stopper;

/* In a forked child running as root: become 'nobody' (uid/gid 65534 when
 * absent), so that permissions apply. Returns 0, or -1 if that failed. */
static inline int st_drop_root(void)
{
    if (geteuid() != 0) return 0;
    struct passwd *pw = getpwnam("nobody");
    uid_t uid = pw ? pw->pw_uid : 65534;
    gid_t gid = pw ? pw->pw_gid : 65534;
    return setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0 ? -1 : 0;
}

/* A sub-check that cannot run here: a note, but under CI=true a failure
 * (CI must run every check). */
static inline void st_subskip(const char *why)
{
    const char *ci = getenv("CI");
    if (ci && !strcmp(ci, "true")) {
        tu_checks++;
        tu_failures++;
        fprintf(stderr, "FAIL (sub-check cannot run under CI=true): %s\n", why);
    } else {
        printf("SKIP (sub-check): %s\n", why);
    }
}

static int st_record_and_stop(void *ctx, const imt_scan_record *rec)
{
    st_stopper *s = ctx;
    int rc = imt_report_record(s->rep, rec);
    if (++s->seen == s->after) *s->stop = 1;
    return rc;
}

/* Scan paths into a report held in memory (or the file out_path when not
 * NULL). stop_after > 0: raise the stop flag after that many records.
 * resume: the report to continue, or NULL. */
static imt_err st_scan(imt_index *idx, const char *const *paths, size_t n, int threads,
                       size_t batch, unsigned long stop_after, const char *resume,
                       const char *out_path, int hits_only, imt_report_format fmt,
                       st_report *out)
{
    memset(out, 0, sizeof *out);
    FILE *f = out_path ? fopen(out_path, "w") : open_memstream(&out->text, &out->len);
    REQUIRE(f != NULL);
    imt_report_opts ro;
    imt_report_opts_init(&ro);
    ro.format = fmt;
    ro.hits_only = hits_only;
    ro.device = "test-device";
    imt_report *rep = NULL;
    REQUIRE(imt_report_create(&rep, f, &ro) == IMT_OK);
    if (resume) REQUIRE(imt_report_resume(rep, resume) == IMT_OK);
    imt_scan_opts so;
    imt_scan_opts_init(&so);
    so.threads = threads;
    so.batch_files = batch;
    volatile int stop = 0;
    so.stop = &stop;
    if (resume) {
        so.skip = imt_report_skip;
        so.ctx = rep;
    }
    REQUIRE(imt_report_begin(rep, idx, paths, n, &so) == IMT_OK);
    st_stopper sp = {rep, &stop, stop_after, 0};
    char detail[256];
    out->scan_status = imt_scan_run(idx, paths, n, &so, st_record_and_stop, &sp, detail,
                                    sizeof detail);
    CHECK(imt_report_end(rep, out->scan_status, &out->sum) == IMT_OK);
    imt_report_free(rep);
    fclose(f);
    if (out_path) {
        size_t len = 0;
        out->text = (char *)tu_read_file(out_path, &len);
        REQUIRE(out->text != NULL);
        out->text = realloc(out->text, len + 1);
        out->text[len] = '\0';
        out->len = len;
    }
    return out->scan_status;
}

/* The line of the report whose path literal is exactly lit ("\"d/x\""), or
 * NULL. Returns a pointer into the text; the line ends at '\n'. */
static const char *st_line(const st_report *r, const char *lit)
{
    char key[4200];
    snprintf(key, sizeof key, "\"path\":%s,", lit);
    return strstr(r->text, key);
}

/* Does the line at l (up to its newline) contain s? */
static int st_has(const char *l, const char *s)
{
    if (!l) return 0;
    const char *end = strchr(l, '\n');
    size_t n = end ? (size_t)(end - l) : strlen(l);
    size_t m = strlen(s);
    for (size_t i = 0; i + m <= n; i++)
        if (!memcmp(l + i, s, m)) return 1;
    return 0;
}

/* Only the file records (lines starting {"record":"file"), concatenated. */
static char *st_records(const st_report *r)
{
    char *o = malloc(r->len + 1);
    size_t k = 0;
    const char *p = r->text;
    while (p && *p) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) + 1 : strlen(p);
        if (!strncmp(p, "{\"record\":\"file\"", 16)) {
            memcpy(o + k, p, n);
            k += n;
        }
        p += n;
    }
    o[k] = '\0';
    return o;
}

/* The summary record parsed, or NULL. */
static yajl_val st_summary(const st_report *r)
{
    const char *p = strstr(r->text, "{\"record\":\"summary\"");
    if (!p) return NULL;
    const char *e = strchr(p, '\n');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    char *s = malloc(n + 1);
    memcpy(s, p, n);
    s[n] = '\0';
    yajl_val v = yajl_tree_parse(s, NULL, 0);
    free(s);
    return v;
}

/* JSON equality ignoring the members named in ign (times, run facts). */
static int st_json_equal(yajl_val a, yajl_val b, const char *const *ign)
{
    if (!a || !b) return a == b;
    if (a->type != b->type) return 0;
    if (YAJL_IS_STRING(a)) return !strcmp(a->u.string, b->u.string);
    if (YAJL_IS_NUMBER(a)) return !strcmp(a->u.number.r, b->u.number.r);
    if (YAJL_IS_ARRAY(a)) {
        if (a->u.array.len != b->u.array.len) return 0;
        for (size_t i = 0; i < a->u.array.len; i++)
            if (!st_json_equal(a->u.array.values[i], b->u.array.values[i], ign)) return 0;
        return 1;
    }
    if (YAJL_IS_OBJECT(a)) {
        for (int pass = 0; pass < 2; pass++) {
            yajl_val x = pass ? b : a, y = pass ? a : b;
            for (size_t i = 0; i < x->u.object.len; i++) {
                const char *k = x->u.object.keys[i];
                int skip = 0;
                for (const char *const *g = ign; *g; g++)
                    if (!strcmp(*g, k)) skip = 1;
                if (skip) continue;
                const char *path[] = {k, NULL};
                yajl_val yv = yajl_tree_get(y, path, yajl_t_any);
                if (!yv || !st_json_equal(x->u.object.values[i], yv, ign)) return 0;
            }
        }
        return 1;
    }
    return 1;
}

static const char *const st_time_keys[] = {"end_time", "elapsed_s", "first_hit_after_s", NULL};

static void st_write(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    REQUIRE(f != NULL);
    REQUIRE(fwrite(data, 1, len, f) == len);
    REQUIRE(fclose(f) == 0);
}

#endif
