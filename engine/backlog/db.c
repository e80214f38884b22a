/* engine/backlog/db.c -- the backlog database (SQLite, local disk).
 *
 * Tables: device (one row per device: case, name, received date, state,
 * the preview's and the full scan's results, report paths, worker and
 * lease), source (its evidence paths, in order), log (every state change:
 * time, who, device, from, to, what; triggers make it append-only) and
 * meta (the format). Every change of state happens in one BEGIN IMMEDIATE
 * transaction together with its log row, so the log and the rows never
 * disagree, and two processes never claim one device: the claim's SELECT
 * and UPDATE run under SQLite's write lock. Leases are wall-clock times
 * (Unix ms) so that every process on the machine reads them alike. */
#include "backlog/backlog.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>
#include <time.h>

#define FORMAT "imgtriage-backlog 1"
#define MAX_ATTEMPTS 3

static const char *const state_names[IMT_BL__COUNT] = {"queued", "previewing", "previewed",
                                                       "scanning", "done", "failed"};

const char *imt_bl_state_name(imt_bl_state s)
{
    return (unsigned)s < IMT_BL__COUNT ? state_names[s] : "unknown";
}

static imt_bl_state state_of(const char *s)
{
    for (int i = 0; i < IMT_BL__COUNT; i++)
        if (s && !strcmp(s, state_names[i])) return (imt_bl_state)i;
    return IMT_BL_FAILED;
}

imt_err imt__bl_fail(imt_backlog *bl, imt_err e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(bl->err, sizeof bl->err, fmt, ap);
    va_end(ap);
    return e;
}

static imt_err sql_fail(imt_backlog *bl, const char *what)
{
    int rc = sqlite3_errcode(bl->db);
    imt__bl_fail(bl, IMT_E_DB, "backlog database: %s: %s", what, sqlite3_errmsg(bl->db));
    if (rc == SQLITE_NOMEM) return IMT_E_NOMEM;
    if ((rc & 0xff) == SQLITE_CONSTRAINT) return IMT_E_EXISTS;
    return IMT_E_DB;
}

const char *imt_backlog_error(const imt_backlog *bl)
{
    return bl && bl->err[0] ? bl->err : "no error";
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* UTC ISO 8601 with milliseconds. */
static void iso_now(char out[32])
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    imt__set_detail(out + n, 32 - n, ".%03dZ", (int)(ts.tv_nsec / 1000000));
}

static imt_err exec(imt_backlog *bl, const char *sql)
{
    if (sqlite3_exec(bl->db, sql, NULL, NULL, NULL) != SQLITE_OK) return sql_fail(bl, sql);
    return IMT_OK;
}

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS device("
    " id INTEGER PRIMARY KEY, case_id TEXT NOT NULL, name TEXT NOT NULL,"
    " received TEXT, added TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'queued'"
    "  CHECK(state IN ('queued','previewing','previewed','scanning','done','failed')),"
    " p_have INTEGER NOT NULL DEFAULT 0, p_complete INTEGER, p_files INTEGER,"
    " p_hit_files INTEGER, p_hit_items INTEGER, p_known INTEGER, p_priority REAL, p_preview TEXT,"
    " s_have INTEGER NOT NULL DEFAULT 0, s_complete INTEGER, s_files INTEGER,"
    " s_hit_files INTEGER, s_hit_items INTEGER, s_known INTEGER, s_priority REAL,"
    " preview_report TEXT, report TEXT, worker TEXT, lease_until INTEGER NOT NULL DEFAULT 0,"
    " attempts INTEGER NOT NULL DEFAULT 0, error TEXT, UNIQUE(case_id, name));"
    "CREATE TABLE IF NOT EXISTS source(device_id INTEGER NOT NULL REFERENCES device(id),"
    " pos INTEGER NOT NULL, path TEXT NOT NULL, PRIMARY KEY(device_id, pos));"
    "CREATE TABLE IF NOT EXISTS log(seq INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL,"
    " who TEXT NOT NULL, device_id INTEGER, from_state TEXT, to_state TEXT, what TEXT NOT NULL);"
    "CREATE TRIGGER IF NOT EXISTS log_no_update BEFORE UPDATE ON log"
    " BEGIN SELECT RAISE(ABORT, 'the backlog log is append-only'); END;"
    "CREATE TRIGGER IF NOT EXISTS log_no_delete BEFORE DELETE ON log"
    " BEGIN SELECT RAISE(ABORT, 'the backlog log is append-only'); END;"
    "INSERT OR IGNORE INTO meta VALUES('format', '" FORMAT "');";

/* SQLite's locks are not safe on network file systems: refuse them. */
static int on_network_fs(const char *path)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == dir) dir[1] = 0;
    else *slash = 0;
    struct statfs sf;
    if (statfs(dir, &sf) != 0) return 0;
    unsigned long t = (unsigned long)sf.f_type;
    return t == 0x6969 /* NFS */ || t == 0xFF534D42 /* CIFS */ || t == 0xFE534D42 /* SMB2 */ ||
           t == 0x517B /* SMB */ || t == 0x65735546 /* FUSE */ || t == 0x5346414F /* AFS */;
}

imt_err imt_backlog_open(imt_backlog **out, const char *path, int create)
{
    if (!out || !path) return IMT_E_INVALID;
    *out = NULL;
    imt_backlog *bl = imt__calloc(1, sizeof *bl);
    if (!bl) return IMT_E_NOMEM;
    imt_err err = IMT_OK;
    if (on_network_fs(path)) {
        imt__bl_fail(bl, IMT_E_INVALID, "%s: on a network file system, where SQLite's locking "
                     "is not safe: keep the backlog on local disk", path);
        err = IMT_E_INVALID;
        goto cleanup;
    }
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(path, &bl->db, flags, NULL) != SQLITE_OK) {
        imt__bl_fail(bl, IMT_E_NOT_FOUND, "%s: %s", path,
                     bl->db ? sqlite3_errmsg(bl->db) : "cannot open");
        err = create ? IMT_E_IO : IMT_E_NOT_FOUND;
        goto cleanup;
    }
    sqlite3_busy_timeout(bl->db, 30000);
    IMT_TRY(exec(bl, "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON;"));
    if (create) IMT_TRY(exec(bl, SCHEMA));
    sqlite3_stmt *st = NULL;
    int ok = sqlite3_prepare_v2(bl->db, "SELECT value FROM meta WHERE key='format'", -1, &st,
                                NULL) == SQLITE_OK &&
             sqlite3_step(st) == SQLITE_ROW &&
             !strcmp((const char *)sqlite3_column_text(st, 0), FORMAT);
    sqlite3_finalize(st);
    if (!ok) {
        err = imt__bl_fail(bl, IMT_E_INDEX_FORMAT, "%s: not an imgtriage backlog ('imgtriage "
                           "backlog init' makes one)", path);
        goto cleanup;
    }
cleanup:
    if (err) {
        /* The handle holds only the sentence (imt_backlog_error): close it. */
        if (!bl->err[0]) snprintf(bl->err, sizeof bl->err, "%s: %s", path, imt_strerror(err));
        if (bl->db) sqlite3_close(bl->db);
        bl->db = NULL;
    }
    *out = bl;
    return err;
}

void imt_backlog_close(imt_backlog *bl)
{
    if (!bl) return;
    if (bl->db) sqlite3_close(bl->db);
    imt__free(bl);
}

static imt_err begin(imt_backlog *bl)
{
    return exec(bl, "BEGIN IMMEDIATE");
}

static void rollback(imt_backlog *bl)
{
    sqlite3_exec(bl->db, "ROLLBACK", NULL, NULL, NULL);
}

/* Bind ? parameters: 's' text (NULL ok), 'i' int64, 'd' double. */
static imt_err prep(imt_backlog *bl, sqlite3_stmt **st, const char *sql, const char *types, ...)
{
    if (sqlite3_prepare_v2(bl->db, sql, -1, st, NULL) != SQLITE_OK) return sql_fail(bl, sql);
    va_list ap;
    va_start(ap, types);
    for (int i = 0; types[i]; i++) {
        int rc;
        if (types[i] == 's') {
            const char *s = va_arg(ap, const char *);
            rc = s ? sqlite3_bind_text(*st, i + 1, s, -1, SQLITE_TRANSIENT)
                   : sqlite3_bind_null(*st, i + 1);
        } else if (types[i] == 'i') {
            rc = sqlite3_bind_int64(*st, i + 1, va_arg(ap, int64_t));
        } else {
            rc = sqlite3_bind_double(*st, i + 1, va_arg(ap, double));
        }
        if (rc != SQLITE_OK) {
            va_end(ap);
            sqlite3_finalize(*st);
            *st = NULL;
            return sql_fail(bl, "bind");
        }
    }
    va_end(ap);
    return IMT_OK;
}

/* Run a statement that returns no rows. */
static imt_err run(imt_backlog *bl, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    imt_err err = rc == SQLITE_DONE || rc == SQLITE_ROW ? IMT_OK : sql_fail(bl, what);
    sqlite3_finalize(st);
    return err;
}

static imt_err log_row(imt_backlog *bl, const char *who, int64_t id, const char *from,
                       const char *to, const char *what)
{
    char t[32];
    iso_now(t);
    sqlite3_stmt *st;
    imt_err err = prep(bl, &st, "INSERT INTO log(time, who, device_id, from_state, to_state, what)"
                       " VALUES(?, ?, ?, ?, ?, ?)", "ssisss", t, who ? who : "?", id, from, to, what);
    return err ? err : run(bl, st, "log");
}

imt_err imt_backlog_add(imt_backlog *bl, const char *who, const char *case_id,
                        const char *device, const char *received,
                        const char *const *sources, size_t n_sources, int64_t *id_out)
{
    if (!bl || !bl->db || !case_id || !*case_id || !device || !*device || !n_sources)
        return IMT_E_INVALID;
    char t[32];
    iso_now(t);
    imt_err err = begin(bl);
    if (err) return err;
    sqlite3_stmt *st = NULL;
    IMT_TRY(prep(bl, &st, "INSERT INTO device(case_id, name, received, added) VALUES(?, ?, ?, ?)",
                 "ssss", case_id, device, received && *received ? received : t, t));
    if (sqlite3_step(st) != SQLITE_DONE) {
        err = sql_fail(bl, "add");
        if (err == IMT_E_EXISTS)
            imt__bl_fail(bl, err, "case %s already holds a device named %s", case_id, device);
        sqlite3_finalize(st);
        goto cleanup;
    }
    sqlite3_finalize(st);
    int64_t id = sqlite3_last_insert_rowid(bl->db);
    for (size_t i = 0; i < n_sources; i++) {
        IMT_TRY(prep(bl, &st, "INSERT INTO source VALUES(?, ?, ?)", "iis", id, (int64_t)i,
                     sources[i]));
        IMT_TRY(run(bl, st, "add source"));
    }
    char what[256];
    imt__set_detail(what, sizeof what, "added: %zu evidence source%s, received %s", n_sources,
             n_sources == 1 ? "" : "s", received && *received ? received : t);
    IMT_TRY(log_row(bl, who, id, NULL, "queued", what));
    IMT_TRY(exec(bl, "COMMIT"));
    if (id_out) *id_out = id;
    return IMT_OK;
cleanup:
    rollback(bl);
    return err;
}

void imt_bl_device_clear(imt_bl_device *d)
{
    if (!d) return;
    imt__free(d->case_id);
    imt__free(d->device);
    imt__free(d->received);
    imt__free(d->added);
    for (size_t i = 0; i < d->n_sources; i++) imt__free(d->sources[i]);
    imt__free(d->sources);
    imt__bl_result_clear(&d->preview);
    imt__bl_result_clear(&d->scan);
    imt__free(d->preview_report);
    imt__free(d->report);
    imt__free(d->worker);
    imt__free(d->error);
    memset(d, 0, sizeof *d);
}

void imt_bl_devices_free(imt_bl_device *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) imt_bl_device_clear(&v[i]);
    imt__free(v);
}

#define DEVICE_COLS                                                                        \
    "id, case_id, name, received, added, state, p_have, p_complete, p_files, p_hit_files, " \
    "p_hit_items, p_known, p_priority, p_preview, s_have, s_complete, s_files, s_hit_files, " \
    "s_hit_items, s_known, s_priority, preview_report, report, worker, lease_until, "      \
    "attempts, error"

static int col_str(sqlite3_stmt *st, int c, char **out)
{
    const unsigned char *s = sqlite3_column_text(st, c);
    if (!s) return 1;
    return (*out = imt__strdup((const char *)s)) != NULL;
}

static imt_err row_to_device(imt_backlog *bl, sqlite3_stmt *st, imt_bl_device *d)
{
    memset(d, 0, sizeof *d);
    d->id = sqlite3_column_int64(st, 0);
    int ok = col_str(st, 1, &d->case_id) & col_str(st, 2, &d->device) &
             col_str(st, 3, &d->received) & col_str(st, 4, &d->added);
    d->state = state_of((const char *)sqlite3_column_text(st, 5));
    imt_bl_result *r[2] = {&d->preview, &d->scan};
    for (int k = 0; k < 2; k++) {
        int c = k ? 14 : 6;
        r[k]->have = sqlite3_column_int(st, c);
        r[k]->complete = sqlite3_column_int(st, c + 1);
        r[k]->files = sqlite3_column_int64(st, c + 2);
        r[k]->hit_files = sqlite3_column_int64(st, c + 3);
        r[k]->hit_items = sqlite3_column_int64(st, c + 4);
        r[k]->known_items = sqlite3_column_int64(st, c + 5);
        r[k]->priority = sqlite3_column_double(st, c + 6);
    }
    ok &= col_str(st, 13, &d->preview.preview) & col_str(st, 21, &d->preview_report) &
          col_str(st, 22, &d->report) & col_str(st, 23, &d->worker);
    d->lease_until_ms = sqlite3_column_int64(st, 24);
    d->attempts = sqlite3_column_int(st, 25);
    ok &= col_str(st, 26, &d->error);
    if (!ok) return IMT_E_NOMEM;
    /* its sources, in order */
    sqlite3_stmt *ss;
    imt_err err = prep(bl, &ss, "SELECT path FROM source WHERE device_id=? ORDER BY pos", "i", d->id);
    if (err) return err;
    while (sqlite3_step(ss) == SQLITE_ROW) {
        char **ns = imt__realloc(d->sources, (d->n_sources + 1) * sizeof *ns);
        if (!ns) {
            sqlite3_finalize(ss);
            return IMT_E_NOMEM;
        }
        d->sources = ns;
        d->sources[d->n_sources] = NULL;
        if (!col_str(ss, 0, &d->sources[d->n_sources])) {
            sqlite3_finalize(ss);
            return IMT_E_NOMEM;
        }
        d->n_sources++;
    }
    sqlite3_finalize(ss);
    d->group = imt__bl_group(d);
    return IMT_OK;
}

/* Every device matching where (an SQL condition with ? bound to arg when
 * types is "i"), unranked. */
static imt_err load(imt_backlog *bl, const char *where, const char *types, int64_t arg,
                    imt_bl_device **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT " DEVICE_COLS " FROM device WHERE %s ORDER BY id", where);
    sqlite3_stmt *st;
    imt_err err = types[0] ? prep(bl, &st, sql, types, arg) : prep(bl, &st, sql, "");
    if (err) return err;
    imt_bl_device *v = NULL;
    size_t cnt = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        imt_bl_device *nv = imt__realloc(v, (cnt + 1) * sizeof *nv);
        if (!nv) {
            err = IMT_E_NOMEM;
            break;
        }
        v = nv;
        err = row_to_device(bl, st, &v[cnt]);
        cnt++;
        if (err) break;
    }
    if (!err && rc != SQLITE_DONE) err = sql_fail(bl, "list");
    sqlite3_finalize(st);
    if (err) {
        imt_bl_devices_free(v, cnt);
        return err;
    }
    *out = v;
    *n = cnt;
    return IMT_OK;
}

imt_err imt_backlog_devices(imt_backlog *bl, imt_bl_device **out, size_t *n)
{
    if (!bl || !bl->db || !out || !n) return IMT_E_INVALID;
    imt_err err = load(bl, "1", "", 0, out, n);
    if (!err) imt__bl_rank(*out, *n);
    return err;
}

imt_err imt_backlog_find(imt_backlog *bl, const char *case_id, const char *name,
                         imt_bl_device *out)
{
    if (!bl || !bl->db || !name || !out) return IMT_E_INVALID;
    memset(out, 0, sizeof *out);
    imt_bl_device *v;
    size_t n;
    imt_err err = imt_backlog_devices(bl, &v, &n);
    if (err) return err;
    /* "#N" is an id; a name is matched first, and a bare number that
     * names no device is an id too. */
    const char *num = name[0] == '#' ? name + 1 : name;
    char *end;
    long long id = strtoll(num, &end, 10);
    int is_num = *num && !*end;
    size_t hit = n, count = 0;
    for (int pass = name[0] == '#'; pass < 2 && count == 0; pass++) {
        for (size_t i = 0; i < n; i++) {
            int m = pass ? is_num && v[i].id == id
                         : !strcmp(v[i].device, name) && (!case_id || !strcmp(v[i].case_id, case_id));
            if (m) {
                hit = i;
                count++;
            }
        }
    }
    if (count == 1) {
        *out = v[hit];
        memset(&v[hit], 0, sizeof v[hit]);
    }
    imt_bl_devices_free(v, n);
    if (count == 0) return imt__bl_fail(bl, IMT_E_NOT_FOUND, "no device %s%s%s in the backlog",
                                        name, case_id ? " in case " : "", case_id ? case_id : "");
    if (count > 1)
        return imt__bl_fail(bl, IMT_E_DUPLICATE, "%zu devices are named %s: give --case", count,
                            name);
    return IMT_OK;
}

/* A file name part: [A-Za-z0-9._-], others as '_', at most 60 bytes. */
static void safe_name(char *out, size_t cap, const char *s)
{
    size_t k = 0;
    for (; *s && k + 1 < cap && k < 60; s++) {
        char c = *s;
        out[k++] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                           c == '.' || c == '-'
                       ? c
                       : '_';
    }
    out[k] = 0;
}

static imt_err claim_row(imt_backlog *bl, const char *who, int64_t lease_ms,
                         const char *reports_dir, const imt_bl_device *d, imt_bl_phase ph,
                         int64_t now)
{
    char cs[64], dn[64], path[PATH_MAX], what[512];
    safe_name(cs, sizeof cs, d->case_id);
    safe_name(dn, sizeof dn, d->device);
    int expired = d->state == IMT_BL_PREVIEWING || d->state == IMT_BL_SCANNING;
    const char *to = ph == IMT_BL_PREVIEW ? "previewing" : "scanning";
    const char *have = ph == IMT_BL_PREVIEW ? d->preview_report : d->report;
    if (!have)
        imt__set_detail(path, sizeof path, "%s/%lld-%s-%s%s", reports_dir ? reports_dir : ".",
                 (long long)d->id, cs, dn, ph == IMT_BL_PREVIEW ? ".preview.jsonl" : ".jsonl");
    sqlite3_stmt *st;
    imt_err err = prep(bl, &st,
                       ph == IMT_BL_PREVIEW
                           ? "UPDATE device SET state=?, worker=?, lease_until=?,"
                             " preview_report=coalesce(preview_report, ?) WHERE id=?"
                           : "UPDATE device SET state=?, worker=?, lease_until=?,"
                             " report=coalesce(report, ?) WHERE id=?",
                       "ssisi", to, who, now + lease_ms, have ? have : path, d->id);
    if (!err) err = run(bl, st, "claim");
    if (err) return err;
    if (expired)
        imt__set_detail(what, sizeof what, "lease of %s expired at %lld: resumed by %s (%s)",
                 d->worker ? d->worker : "?", (long long)d->lease_until_ms, who,
                 ph == IMT_BL_PREVIEW ? "preview" : "full scan");
    else
        imt__set_detail(what, sizeof what, "claimed for its %s, report %s",
                 ph == IMT_BL_PREVIEW ? "preview" : "full scan", have ? have : path);
    return log_row(bl, who, d->id, imt_bl_state_name(d->state), to, what);
}

static int64_t count_where(imt_backlog *bl, const char *sql)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(bl->db, sql, -1, &st, NULL) != SQLITE_OK) return -1;
    int64_t n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    return n;
}

imt_err imt_backlog_claim(imt_backlog *bl, const char *who, int64_t lease_ms,
                          const char *reports_dir, imt_bl_device *out, imt_bl_phase *phase,
                          int *got, int64_t *pending)
{
    if (!bl || !bl->db || !who || !out || !phase || !got || lease_ms <= 0) return IMT_E_INVALID;
    *got = 0;
    memset(out, 0, sizeof *out);
    imt_bl_device *v = NULL;
    size_t n = 0;
    int64_t now = now_ms(), id = 0;
    imt_err err = begin(bl);
    if (err) return err;
    /* Previews first, by waiting time. */
    IMT_TRY(load(bl, "state='queued' OR (state='previewing' AND lease_until<?)", "i", now, &v, &n));
    if (n) {
        imt__bl_rank(v, n); /* all unpreviewed: by waiting time */
        *phase = IMT_BL_PREVIEW;
        IMT_TRY(claim_row(bl, who, lease_ms, reports_dir, &v[0], IMT_BL_PREVIEW, now));
        id = v[0].id;
    } else if (count_where(bl, "SELECT count(*) FROM device WHERE state='previewing'") == 0) {
        /* Every preview is in: full scans in rank order. */
        IMT_TRY(load(bl, "state='previewed' OR (state='scanning' AND lease_until<?)", "i", now,
                     &v, &n));
        if (n) {
            imt__bl_rank(v, n);
            *phase = IMT_BL_SCAN;
            IMT_TRY(claim_row(bl, who, lease_ms, reports_dir, &v[0], IMT_BL_SCAN, now));
            id = v[0].id;
        }
    }
    if (pending)
        *pending = count_where(bl, "SELECT count(*) FROM device WHERE state NOT IN ('done','failed')");
    IMT_TRY(exec(bl, "COMMIT"));
    imt_bl_devices_free(v, n);
    v = NULL;
    n = 0;
    if (id) {
        IMT_TRY(load(bl, "id=?", "i", id, &v, &n));
        if (n == 1) {
            *out = v[0];
            memset(&v[0], 0, sizeof v[0]);
            *got = 1;
        }
        imt_bl_devices_free(v, n);
    }
    return IMT_OK;
cleanup:
    if (sqlite3_get_autocommit(bl->db) == 0) rollback(bl);
    imt_bl_devices_free(v, n);
    return err;
}

imt_err imt_backlog_renew(imt_backlog *bl, int64_t id, const char *who, int64_t lease_ms)
{
    if (!bl || !bl->db || !who) return IMT_E_INVALID;
    sqlite3_stmt *st;
    imt_err err = prep(bl, &st, "UPDATE device SET lease_until=? WHERE id=? AND worker=? AND"
                       " state IN ('previewing','scanning')", "iis", now_ms() + lease_ms, id, who);
    if (!err) err = run(bl, st, "renew");
    if (!err && sqlite3_changes(bl->db) != 1)
        return imt__bl_fail(bl, IMT_E_NOT_FOUND, "device %lld is no longer held by %s",
                            (long long)id, who);
    return err;
}

/* Current state and holder of id, inside a transaction. */
static imt_err current(imt_backlog *bl, int64_t id, imt_bl_device *d)
{
    imt_bl_device *v;
    size_t n;
    imt_err err = load(bl, "id=?", "i", id, &v, &n);
    if (err) return err;
    if (n != 1) {
        imt_bl_devices_free(v, n);
        return imt__bl_fail(bl, IMT_E_NOT_FOUND, "no device %lld", (long long)id);
    }
    *d = v[0];
    imt__free(v);
    return IMT_OK;
}

imt_err imt_backlog_release(imt_backlog *bl, int64_t id, const char *who, const char *why)
{
    if (!bl || !bl->db || !who) return IMT_E_INVALID;
    imt_bl_device d;
    memset(&d, 0, sizeof d);
    imt_err err = begin(bl);
    if (err) return err;
    IMT_TRY(current(bl, id, &d));
    if (!d.worker || strcmp(d.worker, who) ||
        (d.state != IMT_BL_PREVIEWING && d.state != IMT_BL_SCANNING)) {
        err = imt__bl_fail(bl, IMT_E_NOT_FOUND, "device %lld is not held by %s", (long long)id, who);
        goto cleanup;
    }
    const char *to = d.state == IMT_BL_PREVIEWING ? "queued" : "previewed";
    sqlite3_stmt *st;
    IMT_TRY(prep(bl, &st, "UPDATE device SET state=?, worker=NULL, lease_until=0 WHERE id=?",
                 "si", to, id));
    IMT_TRY(run(bl, st, "release"));
    char what[300];
    imt__set_detail(what, sizeof what, "released: %s", why ? why : "interrupted");
    IMT_TRY(log_row(bl, who, id, imt_bl_state_name(d.state), to, what));
    IMT_TRY(exec(bl, "COMMIT"));
    imt_bl_device_clear(&d);
    return IMT_OK;
cleanup:
    rollback(bl);
    imt_bl_device_clear(&d);
    return err;
}

imt_err imt_backlog_finish(imt_backlog *bl, int64_t id, const char *who, const char *holder,
                           imt_bl_phase phase, const char *report, const char *note)
{
    if (!bl || !bl->db || !who || !report) return IMT_E_INVALID;
    imt_bl_result r;
    imt_err err = imt__bl_read_summary(report, &r);
    if (err) return err;
    imt_bl_device d;
    memset(&d, 0, sizeof d);
    if ((err = begin(bl))) {
        imt__bl_result_clear(&r);
        return err;
    }
    IMT_TRY(current(bl, id, &d));
    imt_bl_state held = phase == IMT_BL_PREVIEW ? IMT_BL_PREVIEWING : IMT_BL_SCANNING;
    if (holder) {
        if (d.state != held || !d.worker || strcmp(d.worker, holder)) {
            err = imt__bl_fail(bl, IMT_E_NOT_FOUND, "device %lld is no longer held by %s",
                               (long long)id, holder);
            goto cleanup;
        }
    } else {
        /* A batch system's result: a preview only for a device not past
         * its preview, a full scan for one not done. Nothing without a
         * summary (the task has not run, or will be requeued). */
        int fits = phase == IMT_BL_PREVIEW ? d.state <= IMT_BL_PREVIEWING
                                            : d.state != IMT_BL_DONE;
        if (!fits || !r.have) {
            err = imt__bl_fail(bl, IMT_E_NOT_FOUND, "device %lld: %s", (long long)id,
                               !fits ? "past that stage" : "no summary in its report yet");
            goto cleanup;
        }
    }
    const char *to;
    char what[700];
    sqlite3_stmt *st;
    if (r.have && phase == IMT_BL_PREVIEW) {
        to = "previewed";
        IMT_TRY(prep(bl, &st, "UPDATE device SET state=?, worker=NULL, lease_until=0, attempts=0,"
                     " error=NULL, preview_report=?, p_have=1, p_complete=?, p_files=?, p_hit_files=?,"
                     " p_hit_items=?, p_known=?, p_priority=?, p_preview=? WHERE id=?",
                     "siiiiiidsi", to, report, (int64_t)r.complete, r.files, r.hit_files,
                     r.hit_items, r.known_items, r.priority, r.preview, id));
        imt__set_detail(what, sizeof what, "preview: %lld files with hits, %lld distinct known items, "
                 "priority %.3f", (long long)r.hit_files, (long long)r.known_items, r.priority);
    } else if (r.have) {
        to = r.complete ? "done" : "failed";
        IMT_TRY(prep(bl, &st, "UPDATE device SET state=?, worker=NULL, lease_until=0, attempts=0,"
                     " error=?, report=?, s_have=1, s_complete=?, s_files=?, s_hit_files=?,"
                     " s_hit_items=?, s_known=?, s_priority=? WHERE id=?",
                     "sssiiiiidi", to, r.complete ? NULL : (r.reason ? r.reason : "incomplete"),
                     report, (int64_t)r.complete, r.files, r.hit_files, r.hit_items,
                     r.known_items, r.priority, id));
        imt__set_detail(what, sizeof what, "full scan %s: %lld files, %lld with hits, priority %.3f%s%s",
                 r.complete ? "complete" : "INCOMPLETE", (long long)r.files,
                 (long long)r.hit_files, r.priority, r.complete ? "" : ": ",
                 r.complete ? "" : (r.reason ? r.reason : ""));
    } else {
        int attempts = d.attempts + 1;
        int give_up = attempts >= MAX_ATTEMPTS;
        /* A preview that never ends still lets the device be scanned. */
        to = phase == IMT_BL_PREVIEW ? (give_up ? "previewed" : "queued")
                                     : (give_up ? "failed" : "previewed");
        imt__set_detail(what, sizeof what, "%s ended without a summary (attempt %d of %d)%s",
                 phase == IMT_BL_PREVIEW ? "preview" : "full scan", attempts, MAX_ATTEMPTS,
                 give_up ? phase == IMT_BL_PREVIEW ? ": given up, the full scan follows"
                                                   : ": given up"
                         : ": back in the queue, resumed from its report");
        IMT_TRY(prep(bl, &st, "UPDATE device SET state=?, worker=NULL, lease_until=0,"
                     " attempts=?, error=? WHERE id=?", "sisi", to,
                     (int64_t)(give_up ? 0 : attempts), what, id));
    }
    IMT_TRY(run(bl, st, "finish"));
    if (note) {
        size_t l = strlen(what);
        imt__set_detail(what + l, sizeof what - l, " (%s)", note);
    }
    IMT_TRY(log_row(bl, who, id, imt_bl_state_name(d.state), to, what));
    IMT_TRY(exec(bl, "COMMIT"));
    imt_bl_device_clear(&d);
    imt__bl_result_clear(&r);
    return IMT_OK;
cleanup:
    rollback(bl);
    imt_bl_device_clear(&d);
    imt__bl_result_clear(&r);
    return err;
}

imt_err imt_backlog_counts(imt_backlog *bl, int64_t counts[IMT_BL__COUNT], int64_t *hit_files)
{
    if (!bl || !bl->db || !counts) return IMT_E_INVALID;
    memset(counts, 0, sizeof(int64_t) * IMT_BL__COUNT);
    sqlite3_stmt *st;
    imt_err err = prep(bl, &st, "SELECT state, count(*) FROM device GROUP BY state", "");
    if (err) return err;
    while (sqlite3_step(st) == SQLITE_ROW)
        counts[state_of((const char *)sqlite3_column_text(st, 0))] += sqlite3_column_int64(st, 1);
    sqlite3_finalize(st);
    if (hit_files)
        *hit_files = count_where(bl, "SELECT coalesce(sum(CASE WHEN s_have THEN s_hit_files WHEN"
                                     " p_have THEN p_hit_files ELSE 0 END), 0) FROM device");
    return IMT_OK;
}

imt_err imt_backlog_log_write(imt_backlog *bl, int64_t id, FILE *f, int json)
{
    if (!bl || !bl->db || !f) return IMT_E_INVALID;
    sqlite3_stmt *st;
    imt_err err = prep(bl, &st,
                       "SELECT l.seq, l.time, l.who, l.device_id, d.case_id, d.name, l.from_state,"
                       " l.to_state, l.what FROM log l LEFT JOIN device d ON d.id=l.device_id"
                       " WHERE ?=0 OR l.device_id=? ORDER BY l.seq", "ii", id, id);
    if (err) return err;
    imt__buf b = {0};
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *c[9];
        for (int i = 0; i < 9; i++) c[i] = (const char *)sqlite3_column_text(st, i);
        b.len = 0;
        if (json) {
            imt__buf_printf(&b, "{\"seq\":%lld,\"time\":", (long long)sqlite3_column_int64(st, 0));
            imt__buf_json_str(&b, c[1]);
            imt__buf_puts(&b, ",\"who\":");
            imt__buf_json_str(&b, c[2]);
            imt__buf_printf(&b, ",\"device_id\":%lld,\"case\":", (long long)sqlite3_column_int64(st, 3));
            imt__buf_json_str(&b, c[4] ? c[4] : "");
            imt__buf_puts(&b, ",\"device\":");
            imt__buf_json_str(&b, c[5] ? c[5] : "");
            imt__buf_puts(&b, ",\"from\":");
            if (c[6]) imt__buf_json_str(&b, c[6]);
            else imt__buf_puts(&b, "null");
            imt__buf_puts(&b, ",\"to\":");
            if (c[7]) imt__buf_json_str(&b, c[7]);
            else imt__buf_puts(&b, "null");
            imt__buf_puts(&b, ",\"what\":");
            imt__buf_json_str(&b, c[8]);
            imt__buf_puts(&b, "}\n");
        } else {
            /* names through the CSV escaper: no terminal escapes on screen */
            imt__buf_printf(&b, "%s %s #%lld ", c[1], c[2], (long long)sqlite3_column_int64(st, 3));
            imt__buf_csv_str(&b, c[5] ? c[5] : "");
            imt__buf_printf(&b, " %s -> %s: ", c[6] ? c[6] : "-", c[7] ? c[7] : "-");
            imt__buf_csv_str(&b, c[8]);
            imt__buf_puts(&b, "\n");
        }
        if (b.oom) {
            err = IMT_E_NOMEM;
            break;
        }
        if (fwrite(b.p, 1, b.len, f) != b.len) {
            err = imt__bl_fail(bl, IMT_E_WRITE, "the log could not be written");
            break;
        }
    }
    sqlite3_finalize(st);
    imt__buf_free(&b);
    return err;
}

imt_err imt_backlog_note(imt_backlog *bl, const char *who, int64_t id, const char *what)
{
    if (!bl || !bl->db || !who || !what) return IMT_E_INVALID;
    return log_row(bl, who, id, NULL, NULL, what);
}

imt_err imt_backlog_set(imt_backlog *bl, const char *key, const char *value)
{
    if (!bl || !bl->db || !key || !strcmp(key, "format")) return IMT_E_INVALID;
    sqlite3_stmt *st;
    imt_err err = value ? prep(bl, &st, "INSERT OR REPLACE INTO meta VALUES(?, ?)", "ss", key, value)
                        : prep(bl, &st, "DELETE FROM meta WHERE key=?", "s", key);
    return err ? err : run(bl, st, "setting");
}

imt_err imt_backlog_get(imt_backlog *bl, const char *key, char **out)
{
    if (!bl || !bl->db || !key || !out) return IMT_E_INVALID;
    *out = NULL;
    sqlite3_stmt *st;
    imt_err err = prep(bl, &st, "SELECT value FROM meta WHERE key=?", "s", key);
    if (err) return err;
    if (sqlite3_step(st) == SQLITE_ROW && !col_str(st, 0, out)) err = IMT_E_NOMEM;
    sqlite3_finalize(st);
    return err;
}

void imt_backlog_free_string(char *s)
{
    imt__free(s);
}
