/* engine/index/parse_nsrl.c -- NIST NSRL RDSv3 SQLite databases (known-good
 * lists). Opened read-only and immutable; the hashes come from the
 * DISTINCT_HASH view (sha256, sha1, md5) when it exists, else from the
 * distinct rows of FILE; the VERSION row names the release. A truncated file
 * is caught from its header before SQLite touches it; any other damage is
 * SQLite's error, never a crash. "Line" numbers in messages are row numbers. */
#include "index.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The file must be as long as its header says (page size x page count). */
static imt_err check_header(imt__idx_sink *s, const char *path)
{
    imt_err err = IMT_OK;
    uint8_t h[100];
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return imt__idx_sink_fail(s, IMT_E_IO, "%s", strerror(errno));
    if (fstat(fd, &st) != 0) {
        err = imt__idx_sink_fail(s, IMT_E_IO, "%s", strerror(errno));
        goto cleanup;
    }
    ssize_t r = pread(fd, h, sizeof h, 0);
    if (r < (ssize_t)sizeof h) {
        err = imt__idx_sink_fail(s, IMT_E_TRUNCATED, "truncated SQLite file: %lld bytes, shorter than "
                            "its 100-byte header", (long long)st.st_size);
        goto cleanup;
    }
    if (memcmp(h, "SQLite format 3", 16) != 0) {
        err = imt__idx_sink_fail(s, IMT_E_PARSE, "not an SQLite database");
        goto cleanup;
    }
    uint32_t ps = (uint32_t)h[16] << 8 | h[17];
    if (ps == 1) ps = 65536;
    if (ps < 512 || (ps & (ps - 1))) {
        err = imt__idx_sink_fail(s, IMT_E_DB, "SQLite header has an invalid page size %u", (unsigned)ps);
        goto cleanup;
    }
    uint32_t pages = imt__idx_get_be32(h + 28);
    uint32_t change = imt__idx_get_be32(h + 24), valid_for = imt__idx_get_be32(h + 92);
    if (pages && change == valid_for) {
        uint64_t need = (uint64_t)pages * ps;
        if ((uint64_t)st.st_size < need) {
            err = imt__idx_sink_fail(s, IMT_E_TRUNCATED,
                                "truncated SQLite file: %lld bytes, its header says %llu",
                                (long long)st.st_size, (unsigned long long)need);
            goto cleanup;
        }
    }
    if ((uint64_t)st.st_size % ps) {
        err = imt__idx_sink_fail(s, IMT_E_TRUNCATED,
                            "truncated SQLite file: %lld bytes is not a whole number of %u-byte pages",
                            (long long)st.st_size, (unsigned)ps);
        goto cleanup;
    }
cleanup:
    close(fd);
    return err;
}

static imt_err sql_err(imt__idx_sink *s, sqlite3 *db, int rc, const char *what)
{
    int code = rc & 0xff;
    imt_err e = (code == SQLITE_CORRUPT || code == SQLITE_NOTADB) ? IMT_E_CORRUPT
                : code == SQLITE_NOMEM ? IMT_E_NOMEM : IMT_E_DB;
    return imt__idx_sink_fail(s, e, "SQLite: %s: %s", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

static int has_table(sqlite3 *db, const char *name)
{
    sqlite3_stmt *st = NULL;
    int found = 0;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE name = ?1 COLLATE NOCASE "
                               "AND type IN ('table','view')", -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) found = 1;
    else if (rc != SQLITE_DONE) found = -1;
    sqlite3_finalize(st);
    return found;
}

/* One hex column; NULL or "" is absent. Returns 1 set, 0 absent, -1 bad
 * (reported). */
static int col_hash(imt__idx_sink *s, sqlite3_stmt *st, int col, uint64_t row, uint8_t *out,
                    size_t nb, const char *what, imt_err *err)
{
    *err = IMT_OK;
    if (sqlite3_column_type(st, col) == SQLITE_NULL) return 0;
    const char *t = (const char *)sqlite3_column_text(st, col);
    int n = sqlite3_column_bytes(st, col);
    if (!t || n == 0) return 0;
    imt_err e = imt_hex_decode(out, nb, t, (size_t)n);
    if (e == IMT_OK) return 1;
    if (e == IMT_E_HASH_LENGTH)
        *err = imt__idx_sink_bad(s, row, e, "row %llu: %s must have %zu hex digits, '%.80s' has %d",
                            (unsigned long long)row, what, 2 * nb, t, n);
    else
        *err = imt__idx_sink_bad(s, row, e, "row %llu: %s '%.80s' has a character that is not hex",
                            (unsigned long long)row, what, t);
    return -1;
}

imt_err imt__idx_parse_nsrl(imt__idx_sink *s, const char *path)
{
    imt_err err = IMT_OK;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char *uri = NULL;
    IMT_TRY(check_header(s, path));
    /* immutable=1: no locking, no journal, no -wal files next to a
     * read-only evidence copy */
    size_t ul = strlen(path) * 3 + 32;
    uri = imt__malloc(ul);
    if (!uri) {
        err = IMT_E_NOMEM;
        goto cleanup;
    }
    {
        char *w = uri;
        w += snprintf(w, ul, "file:");
        for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
            if (*p == '%' || *p == '?' || *p == '#' || *p < 0x21 || *p >= 0x7f)
                w += snprintf(w, 4, "%%%02X", *p);
            else
                *w++ = (char)*p;
        }
        snprintf(w, 32, "?immutable=1");
    }
    int rc = sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
    if (rc != SQLITE_OK) {
        err = sql_err(s, db, rc, "opening");
        goto cleanup;
    }
    int hv = has_table(db, "VERSION");
    if (hv < 0) {
        err = sql_err(s, db, sqlite3_errcode(db), "reading the schema");
        goto cleanup;
    }
    if (hv) {
        rc = sqlite3_prepare_v2(db, "SELECT version FROM VERSION LIMIT 1", -1, &st, NULL);
        if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
            imt__idx_sink_set_version(s, (const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
        st = NULL;
    }
    const char *sql;
    int hd = has_table(db, "DISTINCT_HASH"), hf = has_table(db, "FILE");
    if (hd > 0) sql = "SELECT sha256, sha1, md5 FROM DISTINCT_HASH";
    else if (hf > 0) sql = "SELECT DISTINCT sha256, sha1, md5 FROM FILE";
    else {
        err = imt__idx_sink_fail(s, IMT_E_PARSE, "not an NSRL RDSv3 database: no DISTINCT_HASH or FILE table");
        goto cleanup;
    }
    rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        err = sql_err(s, db, rc, "reading the hashes");
        goto cleanup;
    }
    uint64_t row = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        row++;
        imt__idx_rec r;
        memset(&r, 0, sizeof r);
        r.quality = -1;
        r.category = -1;
        r.line = row;
        int a = col_hash(s, st, 0, row, r.sha256, 32, "a SHA-256", &err);
        if (err) goto cleanup;
        int b = a < 0 ? -1 : col_hash(s, st, 1, row, r.sha1, 20, "a SHA-1", &err);
        if (err) goto cleanup;
        int c = (a < 0 || b < 0) ? -1 : col_hash(s, st, 2, row, r.md5, 16, "an MD5", &err);
        if (err) goto cleanup;
        if (a < 0 || b < 0 || c < 0) continue;
        if (a) r.kinds |= KB_SHA256;
        if (b) r.kinds |= KB_SHA1;
        if (c) r.kinds |= KB_MD5;
        if (!r.kinds) {
            IMT_TRY(imt__idx_sink_bad(s, row, IMT_E_PARSE, "row %llu has no hash", (unsigned long long)row));
            continue;
        }
        IMT_TRY(imt__idx_sink_add(s, &r, "", ""));
    }
    if (rc != SQLITE_DONE) {
        err = sql_err(s, db, rc, "reading the hashes");
        goto cleanup;
    }
cleanup:
    sqlite3_finalize(st);
    if (db) sqlite3_close(db);
    imt__free(uri);
    return err;
}
