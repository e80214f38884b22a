/* engine/index/export.c -- writing entries back out: our JSON-lines form
 * (every field, re-importable) or a list format of one hash kind. */
#include "index.h"
#include "common/text.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void imt_export_opts_init(imt_export_opts *o)
{
    memset(o, 0, sizeof *o);
    o->format = "jsonl";
    o->list_id = -1;
}

typedef struct out {
    int fd;
    char buf[65536];
    size_t n;
    int failed;
} out;

static void flush(out *o)
{
    size_t w = 0;
    while (w < o->n && !o->failed) {
        ssize_t r = write(o->fd, o->buf + w, o->n - w);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) o->failed = errno ? errno : EIO;
        else w += (size_t)r;
    }
    o->n = 0;
}

static void put(out *o, const char *s, size_t n)
{
    while (n) {
        if (o->n == sizeof o->buf) flush(o);
        size_t k = sizeof o->buf - o->n < n ? sizeof o->buf - o->n : n;
        memcpy(o->buf + o->n, s, k);
        o->n += k;
        s += k;
        n -= k;
    }
}

static void puts_(out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void hex(out *o, const uint8_t *b, size_t n)
{
    static const char d[] = "0123456789abcdef";
    char t[64];
    for (size_t i = 0; i < n; i++) {
        t[2 * i] = d[b[i] >> 4];
        t[2 * i + 1] = d[b[i] & 15];
    }
    put(o, t, 2 * n);
}

/* A JSON string with the reports' lossless escaping (common/text.h):
 * invalid UTF-8 bytes as \udcXX, which the jsonl import turns back. */
static void jstr(out *o, const char *s)
{
    imt__buf b = {0};
    imt__buf_json_str(&b, s);
    if (b.oom) o->failed = ENOMEM;
    else put(o, b.p, b.len);
    imt__buf_free(&b);
}

static void jint(out *o, long long v)
{
    char t[32];
    snprintf(t, sizeof t, "%lld", v);
    puts_(o, t);
}

enum { X_JSONL, X_PDQ_CSV, X_TE, X_MD5SUM, X_SHA1SUM, X_SHA256SUM, X_PDQ_HEX, X_MD5_HEX,
       X_SHA1_HEX, X_SHA256_HEX };

static int export_format(const char *f)
{
    static const char *names[] = {"jsonl", "pdq-csv", "te", "md5sum", "sha1sum", "sha256sum",
                                  "pdq-hex", "md5-hex", "sha1-hex", "sha256-hex"};
    for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++)
        if (!strcmp(f, names[i])) return i;
    return -1;
}

imt_err imt_index_export(imt_index *idx, int fd, const imt_export_opts *opts)
{
    imt_err err = IMT_OK;
    imt_export_opts eo;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    out *o = NULL;
    if (!idx || fd < 0) return IMT_E_INVALID;
    if (opts) eo = *opts;
    else imt_export_opts_init(&eo);
    int fmt = export_format(eo.format ? eo.format : "jsonl");
    if (fmt < 0) {
        imt__idx_set_err(idx, "unknown export format '%s'", eo.format);
        return IMT_E_INVALID;
    }
    const imt_list_info *list = NULL;
    if (eo.list_id >= 0) {
        for (size_t i = 0; i < idx->nlists; i++)
            if ((int64_t)idx->lists[i].id == eo.list_id) list = &idx->lists[i];
        if (!list) {
            imt__idx_set_err(idx, "%s: no list with id %lld", idx->path, (long long)eo.list_id);
            return IMT_E_NOT_FOUND;
        }
    }
    o = imt__calloc(1, sizeof *o);
    if (!o) return IMT_E_NOMEM;
    o->fd = fd;
    /* the handle's snapshot, so the export matches its list inventory */
    txn = idx->rtxn;
    if (!txn) {
        err = IMT_E_INTERNAL;
        goto cleanup;
    }
    if (fmt == X_JSONL) {
        /* version 2: the list inventory, every field of each list, so an
         * import gives the lists back as they were */
        puts_(o, "{\"imgtriage-export\":2,\"index\":");
        jstr(o, idx->identity);
        puts_(o, ",\"lists\":[");
        int first = 1;
        for (size_t i = 0; i < idx->nlists; i++) {
            const imt_list_info *l = &idx->lists[i];
            if (list && l != list) continue;
            puts_(o, first ? "{\"id\":" : ",{\"id\":");
            first = 0;
            jint(o, l->id);
            puts_(o, ",\"name\":");
            jstr(o, l->name);
            puts_(o, ",\"version\":");
            jstr(o, l->version);
            puts_(o, ",\"format\":");
            jstr(o, l->format);
            puts_(o, ",\"scheme\":");
            jstr(o, l->scheme);
            puts_(o, ",\"known_good\":");
            puts_(o, l->known_good ? "true" : "false");
            puts_(o, ",\"policy\":");
            jstr(o, l->policy);
            puts_(o, ",\"file_sha256\":");
            jstr(o, l->file_sha256);
            puts_(o, ",\"import_time\":");
            jint(o, l->import_time);
            puts_(o, ",\"entries\":");
            jint(o, (long long)l->entries);
            puts_(o, "}");
        }
        puts_(o, "]}\n");
    }
    int rc = mdb_cursor_open(txn, idx->db_entries, &cur);
    if (rc) {
        err = imt__idx_mdb_err(idx, rc, "reading the entries");
        goto cleanup;
    }
    MDB_val k, d;
    for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); rc == 0 && !o->failed;
         rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        imt__idx_entry e;
        if (k.mv_size != 4 || imt__idx_entry_decode(d.mv_data, d.mv_size, &e) != IMT_OK) {
            imt__idx_set_err(idx, "%s: an entry record is malformed", idx->path);
            err = IMT_E_INDEX_CORRUPT;
            goto cleanup;
        }
        uint32_t id = imt__idx_get_be32(k.mv_data);
        /* the membership this export speaks for: the list's, or the first */
        size_t mp = 0;
        uint32_t ml = 0;
        int32_t cat = -1;
        const char *lab = "", *ext = "";
        int found = 0, r;
        uint32_t l2;
        int32_t c2;
        const char *lab2, *ext2;
        while ((r = imt__idx_member_next(&e, &mp, &l2, &c2, &lab2, &ext2)) == 1) {
            if (!list || l2 == list->id) {
                if (!found) {
                    ml = l2;
                    cat = c2;
                    lab = lab2;
                    ext = ext2;
                }
                found = 1;
                if (list) break;
            }
        }
        if (r < 0) {
            imt__idx_set_err(idx, "%s: entry %u has malformed memberships", idx->path, (unsigned)id);
            err = IMT_E_INDEX_CORRUPT;
            goto cleanup;
        }
        if (!found) continue;
        switch (fmt) {
        case X_JSONL: {
            puts_(o, "{\"entry\":");
            jint(o, id);
            if (e.pdq) {
                puts_(o, ",\"pdq\":\"");
                hex(o, e.pdq, 32);
                puts_(o, "\"");
                if (e.quality >= 0) {
                    puts_(o, ",\"quality\":");
                    jint(o, e.quality);
                }
            }
            if (e.md5) { puts_(o, ",\"md5\":\""); hex(o, e.md5, 16); puts_(o, "\""); }
            if (e.sha1) { puts_(o, ",\"sha1\":\""); hex(o, e.sha1, 20); puts_(o, "\""); }
            if (e.sha256) { puts_(o, ",\"sha256\":\""); hex(o, e.sha256, 32); puts_(o, "\""); }
            if (cat >= 0) {
                puts_(o, ",\"category\":");
                jint(o, cat);
            }
            if (*lab) { puts_(o, ",\"label\":"); jstr(o, lab); }
            if (*ext) { puts_(o, ",\"id\":"); jstr(o, ext); }
            /* every membership (of the exported list), in order */
            puts_(o, ",\"lists\":[");
            size_t p2 = 0;
            int first = 1;
            while (imt__idx_member_next(&e, &p2, &l2, &c2, &lab2, &ext2) == 1) {
                if (list && l2 != list->id) continue;
                puts_(o, first ? "{\"list\":" : ",{\"list\":");
                first = 0;
                jint(o, l2);
                puts_(o, ",\"category\":");
                if (c2 >= 0) jint(o, c2);
                else puts_(o, "null");
                puts_(o, ",\"label\":");
                jstr(o, lab2);
                puts_(o, ",\"id\":");
                jstr(o, ext2);
                puts_(o, "}");
            }
            puts_(o, "]");
            (void)ml;
            puts_(o, "}\n");
            break;
        }
        case X_PDQ_CSV:
            if (!e.pdq) break;
            hex(o, e.pdq, 32);
            puts_(o, ",");
            jint(o, e.quality >= 0 ? e.quality : 0);
            if (*ext) { puts_(o, ","); puts_(o, ext); }
            puts_(o, "\n");
            break;
        case X_TE:
            if (!e.pdq) break;
            puts_(o, "pdq ");
            hex(o, e.pdq, 32);
            if (*ext) { puts_(o, " "); puts_(o, ext); }
            puts_(o, "\n");
            break;
        case X_MD5SUM: case X_SHA1SUM: case X_SHA256SUM: {
            const uint8_t *h = fmt == X_MD5SUM ? e.md5 : fmt == X_SHA1SUM ? e.sha1 : e.sha256;
            size_t n = fmt == X_MD5SUM ? 16 : fmt == X_SHA1SUM ? 20 : 32;
            if (!h) break;
            int esc = strchr(ext, '\\') || strchr(ext, '\n');
            if (esc) puts_(o, "\\");
            hex(o, h, n);
            puts_(o, "  ");
            if (!*ext) puts_(o, "-");
            for (const char *c = ext; *c; c++) {
                if (*c == '\\') puts_(o, "\\\\");
                else if (*c == '\n') puts_(o, "\\n");
                else put(o, c, 1);
            }
            puts_(o, "\n");
            break;
        }
        default: {
            const uint8_t *h = fmt == X_PDQ_HEX ? e.pdq : fmt == X_MD5_HEX ? e.md5
                             : fmt == X_SHA1_HEX ? e.sha1 : e.sha256;
            size_t n = fmt == X_MD5_HEX ? 16 : fmt == X_SHA1_HEX ? 20 : 32;
            if (!h) break;
            hex(o, h, n);
            puts_(o, "\n");
        }
        }
    }
    if (rc != 0 && rc != MDB_NOTFOUND) {
        err = imt__idx_mdb_err(idx, rc, "reading the entries");
        goto cleanup;
    }
    flush(o);
    if (o->failed) {
        imt__idx_set_err(idx, "export: write error: %s", strerror(o->failed));
        err = IMT_E_IO;
    }
    if (err == IMT_OK && imt__idx_unchanged(idx) != IMT_OK) {
        /* read without a lock: a commit since the open may have recycled
         * the snapshot's pages under this export (index.h) */
        imt__idx_set_err(idx, "%s: the index changed while it was exported; export again", idx->path);
        err = IMT_E_INDEX_CHANGED;
    }
cleanup:
    if (cur) mdb_cursor_close(cur);
    imt__free(o);
    return err;
}
