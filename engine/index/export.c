/* engine/index/export.c -- writing entries back out: our JSON-lines form
 * (every field, re-importable) or a list format of one hash kind. */
#include "index.h"
#include "common/text.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
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

/* One entry in format fmt (its membership of `list`, or every one). 0, or
 * -1 when its memberships are malformed. */
static int emit_entry(out *o, int fmt, const imt_list_info *list, uint32_t id, const imt__idx_entry *ep)
{
    const imt__idx_entry e = *ep;
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
    if (r < 0) return -1;
    if (!found) return 0;
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
    return 0;
}

/* Ids per window of the export's merge of entry records and compact
 * entries: at most this many compact entries are held (16 bytes each). */
#define EXPORT_WINDOW (1u << 22)

/* A compact entry of the window: its id, digest (in the map) and class. */
struct cwin {
    uint32_t id, cls;
    const uint8_t *key;
    int kind;
};

static int cmp_cwin(const void *a, const void *b)
{
    const struct cwin *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* The compact entries with ids in [lo, hi), sorted by id, into *cw. */
static imt_err collect_compact(imt_index *idx, MDB_txn *txn, uint64_t lo, uint64_t hi, struct cwin **cw,
                               size_t *cap, size_t *n)
{
    imt_err err = IMT_OK;
    MDB_cursor *c = NULL;
    MDB_val k, d;
    *n = 0;
    for (int tt = 0; tt < (idx->has_dplus ? 6 : 3); tt++) {
        int t = tt % 3; /* the main tables, then their deltas */
        int rc = mdb_cursor_open(txn, tt < 3 ? imt__idx_dig_dbi(idx, t) : imt__idx_dplus_dbi(idx, t), &c);
        if (rc) return imt__idx_mdb_err(idx, rc, "reading the digests");
        for (rc = mdb_cursor_get(c, &k, &d, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
            if (d.mv_size != IDX_DIG_COMPACT) continue;
            uint32_t id = imt__idx_get_u32(d.mv_data);
            if (id < lo || id >= hi) continue;
            if (k.mv_size != imt__idx_dig_len[t] || *n >= hi - lo) {
                imt__idx_set_err(idx, "%s: a digest key is malformed, or an entry id is named twice", idx->path);
                err = IMT_E_INDEX_CORRUPT;
                goto cleanup;
            }
            if (*n == *cap) {
                size_t nc = *cap ? 2 * *cap : 4096;
                struct cwin *p = imt__realloc(*cw, nc * sizeof *p);
                if (!p) {
                    err = IMT_E_NOMEM;
                    goto cleanup;
                }
                *cw = p;
                *cap = nc;
            }
            (*cw)[(*n)++] = (struct cwin){id, imt__idx_get_u32((const uint8_t *)d.mv_data + 4), k.mv_data, t};
        }
        if (rc != MDB_NOTFOUND) {
            err = imt__idx_mdb_err(idx, rc, "reading the digests");
            goto cleanup;
        }
        mdb_cursor_close(c);
        c = NULL;
    }
    if (*n) qsort(*cw, *n, sizeof **cw, cmp_cwin);
cleanup:
    if (c) mdb_cursor_close(c);
    return err;
}

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
    uint8_t *synth = NULL;
    size_t capsynth = 0, capcw = 0;
    struct cwin *cw = NULL;
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
    /* entries in id order: the records, and the compact entries (no
     * record: index.h, IDX_DIG_COMPACT) found in the digest tables, merged
     * window by window of ids so that memory stays bounded */
    MDB_stat cs;
    int compact = idx->has_cls && mdb_stat(txn, idx->db_cls, &cs) == 0 && cs.ms_entries > 0;
    uint64_t ne = idx->hdr.next_entry, win = compact ? EXPORT_WINDOW : (ne ? ne : 1);
    int rc = 0;
    for (uint64_t lo = 0; lo < ne && !err && !o->failed; lo += win) {
        uint64_t hi = lo + win;
        size_t nc = 0, ci = 0;
        if (compact) IMT_TRY(collect_compact(idx, txn, lo, hi, &cw, &capcw, &nc));
        mdb_cursor_close(cur);
        cur = NULL;
        rc = mdb_cursor_open(txn, idx->db_entries, &cur);
        if (rc) {
            err = imt__idx_mdb_err(idx, rc, "reading the entries");
            goto cleanup;
        }
        uint8_t kb[4];
        imt__idx_put_be32(kb, (uint32_t)lo);
        MDB_val k = {4, kb}, d;
        rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
        for (;;) {
            if (o->failed) break;
            int has_rec = rc == 0 && k.mv_size == 4 && imt__idx_get_be32(k.mv_data) < hi;
            if (rc == 0 && k.mv_size != 4) {
                imt__idx_set_err(idx, "%s: an entry record is malformed", idx->path);
                err = IMT_E_INDEX_CORRUPT;
                goto cleanup;
            }
            if (!has_rec && ci == nc) break;
            imt__idx_entry e;
            uint32_t id;
            if (has_rec && (ci == nc || imt__idx_get_be32(k.mv_data) < cw[ci].id)) {
                id = imt__idx_get_be32(k.mv_data);
                if (imt__idx_entry_decode(d.mv_data, d.mv_size, &e) != IMT_OK) {
                    imt__idx_set_err(idx, "%s: an entry record is malformed", idx->path);
                    err = IMT_E_INDEX_CORRUPT;
                    goto cleanup;
                }
                rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
            } else {
                size_t len;
                id = cw[ci].id;
                imt_err e2 = imt__idx_compact_record(idx, txn, cw[ci].kind, cw[ci].key, cw[ci].cls, &synth,
                                                     &capsynth, &len);
                if (!e2 && imt__idx_entry_decode(synth, len, &e) != IMT_OK) e2 = IMT_E_INDEX_CORRUPT;
                if (e2) {
                    imt__idx_set_err(idx, "%s: compact entry %u: %s", idx->path, (unsigned)id,
                                     e2 == IMT_E_INDEX_CORRUPT ? "its class is missing or malformed"
                                                               : imt_strerror(e2));
                    err = e2;
                    goto cleanup;
                }
                ci++;
            }
            if (emit_entry(o, fmt, list, id, &e) < 0) {
                imt__idx_set_err(idx, "%s: entry %u has malformed memberships", idx->path, (unsigned)id);
                err = IMT_E_INDEX_CORRUPT;
                goto cleanup;
            }
        }
        if (rc != 0 && rc != MDB_NOTFOUND) break;
        rc = 0;
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
    imt__free(synth);
    imt__free(cw);
    return err;
}
