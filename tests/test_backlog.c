/* tests/test_backlog.c -- engine/backlog through the public API: the
 * ranking on made-up devices; claims by two handles never give one device
 * twice; a lease that expires is taken over, and the old holder can then
 * neither renew nor finish; full scans wait for every preview; a scan that
 * ends without a summary is retried, then given up; 4 processes claiming
 * at once claim each device exactly once; the log refuses updates and
 * deletes. Report summaries are lines written here by hand. */
#include "imgtriage.h"
#include "testutil.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char g_dir[] = "/tmp/imt-backlog-XXXXXX";

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A report whose summary says hits files with hits and the priority. */
static void write_report(const char *path, int hits, double priority, int complete)
{
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    fprintf(f, "{\"record\":\"header\",\"tool\":\"imgtriage\"}\n");
    fprintf(f, "{\"record\":\"summary\",\"complete\":%s,\"scan_status\":\"ok\",\"files\":4,"
               "\"hit_items\":%d,\"hit_files\":%d,\"distinct_known_items\":%d,\"priority\":%.3f%s}\n",
            complete ? "true" : "false", hits, hits, hits, priority,
            complete ? "" : ",\"incomplete_reason\":\"1 entry could not be read\"");
    fclose(f);
}

static void test_rank(void)
{
    imt_bl_device v[6];
    memset(v, 0, sizeof v);
    char *rec[6] = {"2024-01-05", "2024-01-01", "2024-01-03", "2024-01-02", "2024-01-04",
                    "2024-01-01"};
    for (int i = 0; i < 6; i++) {
        v[i].id = i + 1;
        v[i].received = rec[i];
    }
    /* 1: preview hits, priority 10.5; 2: unpreviewed, oldest; 3: clean;
     * 4: hits, 20.25; 5: unpreviewed; 6: clean, as old as 2, but clean
     * ranks after every unpreviewed device. Expected by the README's rule:
     * 4 1 2 5 6 3. */
    v[0].preview = (imt_bl_result){1, 0, 10, 1, 1, 1, 10.5, NULL, NULL};
    v[2].preview = (imt_bl_result){1, 1, 10, 0, 0, 0, 0.0, NULL, NULL};
    v[3].preview = (imt_bl_result){1, 0, 10, 2, 2, 2, 20.25, NULL, NULL};
    v[5].preview = (imt_bl_result){1, 1, 10, 0, 0, 0, 0.0, NULL, NULL};
    /* a full scan's result overrides its preview's: 3's scan found 1 hit */
    v[2].scan = (imt_bl_result){1, 1, 10, 1, 1, 1, 4.1, NULL, NULL};
    imt_bl_rank(v, 6);
    int64_t want[6] = {4, 1, 3, 2, 5, 6};
    for (int i = 0; i < 6; i++) CHECKF(v[i].id == want[i], "rank %d: #%lld", i, (long long)v[i].id);
    CHECK(v[0].group == 0 && v[2].group == 0 && v[3].group == 1 && v[5].group == 2);
}

static imt_backlog *open_bl(const char *path, int create)
{
    imt_backlog *bl = NULL;
    imt_err e = imt_backlog_open(&bl, path, create);
    CHECKF(e == IMT_OK, "open %s: %s", path, imt_backlog_error(bl));
    return bl;
}

static void add(imt_backlog *bl, const char *name, const char *received)
{
    const char *src[] = {"/nonexistent/evidence"};
    CHECK(imt_backlog_add(bl, "test", "CASE", name, received, src, 1, NULL) == IMT_OK);
}

static void test_claims(void)
{
    char db[256], rep[256];
    snprintf(db, sizeof db, "%s/q.db", g_dir);
    imt_backlog *a = open_bl(db, 1), *b = open_bl(db, 0);
    REQUIRE(a && b);
    add(a, "d1", "2024-01-01");
    add(a, "d2", "2024-01-02");
    add(a, "d3", "2024-01-03");
    const char *src[] = {"/x"};
    CHECK(imt_backlog_add(b, "test", "CASE", "d1", NULL, src, 1, NULL) == IMT_E_EXISTS);
    imt_bl_device da, db_, dc;
    imt_bl_phase ph;
    int got;
    int64_t pending;
    /* previews by waiting time, one device per claim */
    CHECK(imt_backlog_claim(a, "A", 60000, g_dir, &da, &ph, &got, &pending) == IMT_OK);
    CHECK(got && ph == IMT_BL_PREVIEW && !strcmp(da.device, "d1") && pending == 3);
    CHECK(imt_backlog_claim(b, "B", 60000, g_dir, &db_, &ph, &got, &pending) == IMT_OK);
    CHECK(got && ph == IMT_BL_PREVIEW && !strcmp(db_.device, "d2"));
    /* d3 with a 1 ms lease that runs out: B takes it over */
    CHECK(imt_backlog_claim(a, "A", 1, g_dir, &dc, &ph, &got, &pending) == IMT_OK);
    CHECK(got && !strcmp(dc.device, "d3"));
    sleep_ms(20);
    imt_bl_device dt;
    CHECK(imt_backlog_claim(b, "B", 60000, g_dir, &dt, &ph, &got, &pending) == IMT_OK);
    CHECK(got && dt.id == dc.id && dt.preview_report && !strcmp(dt.preview_report, dc.preview_report));
    CHECK(imt_backlog_renew(a, dc.id, "A", 60000) == IMT_E_NOT_FOUND);
    write_report(dc.preview_report, 0, 0.0, 1);
    CHECK(imt_backlog_finish(a, dc.id, "A", "A", IMT_BL_PREVIEW, dc.preview_report, NULL) ==
          IMT_E_NOT_FOUND);
    CHECK(imt_backlog_finish(b, dt.id, "B", "B", IMT_BL_PREVIEW, dt.preview_report, NULL) == IMT_OK);
    /* nothing else to claim while d1 and d2 are held: no full scan starts
     * before every preview is in */
    imt_bl_device dx;
    CHECK(imt_backlog_claim(b, "B", 60000, g_dir, &dx, &ph, &got, &pending) == IMT_OK);
    CHECK(!got && pending == 3);
    /* d1's preview finds 2 hits, d2's none */
    write_report(da.preview_report, 2, 20.5, 0);
    CHECK(imt_backlog_finish(a, da.id, "A", "A", IMT_BL_PREVIEW, da.preview_report, "t") == IMT_OK);
    write_report(db_.preview_report, 0, 0.0, 1);
    CHECK(imt_backlog_renew(b, db_.id, "B", 60000) == IMT_OK);
    CHECK(imt_backlog_finish(b, db_.id, "B", "B", IMT_BL_PREVIEW, db_.preview_report, NULL) == IMT_OK);
    /* full scans in rank order: d1 (hits), then d2, d3 (clean, by waiting) */
    const char *order[3] = {"d1", "d2", "d3"};
    imt_bl_device s[3];
    for (int i = 0; i < 3; i++) {
        CHECK(imt_backlog_claim(a, "A", 60000, g_dir, &s[i], &ph, &got, &pending) == IMT_OK);
        CHECKF(got && ph == IMT_BL_SCAN && !strcmp(s[i].device, order[i]), "scan %d: %s", i,
               got ? s[i].device : "-");
    }
    /* d1 completes with hits; d2's scan is incomplete: failed with the
     * reason; d3's ends three times without a summary: failed */
    write_report(s[0].report, 3, 30.75, 1);
    CHECK(imt_backlog_finish(a, s[0].id, "A", "A", IMT_BL_SCAN, s[0].report, NULL) == IMT_OK);
    write_report(s[1].report, 0, 0.0, 0);
    CHECK(imt_backlog_finish(a, s[1].id, "A", "A", IMT_BL_SCAN, s[1].report, NULL) == IMT_OK);
    snprintf(rep, sizeof rep, "%s", s[2].report);
    for (int k = 0; k < 3; k++) {
        FILE *f = fopen(rep, "w"); /* a header, cut short: no summary */
        REQUIRE(f);
        fputs("{\"record\":\"header\"}\n{\"record\":\"fi", f);
        fclose(f);
        imt_bl_device r;
        if (k) {
            CHECK(imt_backlog_claim(a, "A", 60000, g_dir, &r, &ph, &got, &pending) == IMT_OK);
            CHECK(got && r.id == s[2].id && ph == IMT_BL_SCAN);
            imt_bl_device_clear(&r);
        }
        CHECK(imt_backlog_finish(a, s[2].id, "A", "A", IMT_BL_SCAN, rep, NULL) == IMT_OK);
    }
    imt_bl_device *v;
    size_t n;
    CHECK(imt_backlog_devices(b, &v, &n) == IMT_OK && n == 3);
    CHECK(v[0].state == IMT_BL_DONE && v[0].scan.hit_files == 3 && v[0].scan.priority == 30.75 &&
          v[0].preview.priority == 20.5);
    CHECK(v[1].state == IMT_BL_FAILED && v[1].error && strstr(v[1].error, "could not be read"));
    CHECK(v[2].state == IMT_BL_FAILED && v[2].error && strstr(v[2].error, "attempt 3 of 3"));
    imt_bl_devices_free(v, n);
    CHECK(imt_backlog_claim(b, "B", 60000, g_dir, &dx, &ph, &got, &pending) == IMT_OK);
    CHECK(!got && pending == 0);
    int64_t c[IMT_BL__COUNT], hits;
    CHECK(imt_backlog_counts(a, c, &hits) == IMT_OK && c[IMT_BL_DONE] == 1 &&
          c[IMT_BL_FAILED] == 2 && hits == 3);
    imt_bl_device f;
    CHECK(imt_backlog_find(a, NULL, "d2", &f) == IMT_OK && f.id == s[1].id);
    imt_bl_device_clear(&f);
    char idname[32];
    snprintf(idname, sizeof idname, "#%lld", (long long)s[2].id);
    CHECK(imt_backlog_find(a, NULL, idname, &f) == IMT_OK && !strcmp(f.device, "d3"));
    imt_bl_device_clear(&f);
    CHECK(imt_backlog_find(a, NULL, "d9", &f) == IMT_E_NOT_FOUND);
    imt_bl_device_clear(&da);
    imt_bl_device_clear(&db_);
    imt_bl_device_clear(&dc);
    imt_bl_device_clear(&dt);
    for (int i = 0; i < 3; i++) imt_bl_device_clear(&s[i]);
    imt_backlog_close(a);
    imt_backlog_close(b);
    /* the log is append-only */
    sqlite3 *q;
    REQUIRE(sqlite3_open(db, &q) == SQLITE_OK);
    CHECK(sqlite3_exec(q, "DELETE FROM log", NULL, NULL, NULL) != SQLITE_OK);
    CHECK(sqlite3_exec(q, "UPDATE log SET who='x'", NULL, NULL, NULL) != SQLITE_OK);
    sqlite3_close(q);
}

/* 4 processes claim the previews of 40 devices at once: each device is
 * claimed exactly once (counted in the log, written with each claim). */
static void test_processes(void)
{
    enum { DEVICES = 40, PROCS = 4 };
    char db[256];
    snprintf(db, sizeof db, "%s/race.db", g_dir);
    imt_backlog *bl = open_bl(db, 1);
    REQUIRE(bl);
    for (int i = 0; i < DEVICES; i++) {
        char name[16];
        snprintf(name, sizeof name, "r%02d", i);
        add(bl, name, NULL);
    }
    imt_backlog_close(bl);
    pid_t pids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        pids[p] = fork();
        if (pids[p] == 0) {
            imt_backlog *w = NULL;
            if (imt_backlog_open(&w, db, 0)) _exit(3);
            char who[16];
            snprintf(who, sizeof who, "W%d", p);
            int claimed = 0;
            for (;;) {
                imt_bl_device d;
                imt_bl_phase ph;
                int got;
                int64_t pending;
                if (imt_backlog_claim(w, who, 60000, g_dir, &d, &ph, &got, &pending)) _exit(4);
                if (!got) break;
                claimed++;
                imt_bl_device_clear(&d);
            }
            imt_backlog_close(w);
            _exit(claimed > 0 ? 0 : 5);
        }
    }
    int ok = 0;
    for (int p = 0; p < PROCS; p++) {
        int st;
        waitpid(pids[p], &st, 0);
        ok += WIFEXITED(st) && (WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == 5);
    }
    CHECK(ok == PROCS);
    sqlite3 *q;
    REQUIRE(sqlite3_open(db, &q) == SQLITE_OK);
    sqlite3_stmt *st;
    REQUIRE(sqlite3_prepare_v2(q, "SELECT count(*), count(DISTINCT device_id) FROM log WHERE "
                                  "to_state='previewing'", -1, &st, NULL) == SQLITE_OK);
    REQUIRE(sqlite3_step(st) == SQLITE_ROW);
    CHECKF(sqlite3_column_int(st, 0) == DEVICES && sqlite3_column_int(st, 1) == DEVICES,
           "%d claims of %d devices", sqlite3_column_int(st, 0), sqlite3_column_int(st, 1));
    sqlite3_finalize(st);
    REQUIRE(sqlite3_prepare_v2(q, "SELECT count(*) FROM device WHERE state='previewing'", -1,
                               &st, NULL) == SQLITE_OK);
    REQUIRE(sqlite3_step(st) == SQLITE_ROW);
    CHECK(sqlite3_column_int(st, 0) == DEVICES);
    sqlite3_finalize(st);
    sqlite3_close(q);
}

int main(void)
{
    REQUIRE(mkdtemp(g_dir));
    test_rank();
    test_claims();
    test_processes();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd)) return 1;
    return tu_done("test_backlog");
}
