/* engine/index/meta.c -- a leaf of the index module: the handle's error
 * sentences, reading the header and delta-checksum records, entry records and
 * their memberships, and the MIH table widths. Calls nothing else in the
 * module. */
#include "index.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- errors ------------------------------------------------------------ */
void imt__idx_set_err(imt_index *idx, const char *fmt, ...)
{
    if (!idx) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(idx->err, sizeof idx->err, fmt, ap);
    va_end(ap);
}

imt_err imt__idx_mdb_err(imt_index *idx, int rc, const char *what)
{
    if (rc == MDB_MAP_FULL) {
        imt__idx_set_err(idx, "%s: %s: the index map is full; open it with a larger map_size",
                    idx->path, what);
        return IMT_E_TOO_LARGE;
    }
    if (rc == ENOMEM) {
        imt__idx_set_err(idx, "%s: %s: out of memory", idx->path, what);
        return IMT_E_NOMEM;
    }
    if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND) {
        imt__idx_set_err(idx, "%s: %s: LMDB: %s", idx->path, what, mdb_strerror(rc));
        return IMT_E_INDEX_CORRUPT;
    }
    if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH) {
        imt__idx_set_err(idx, "%s: not an imgtriage index (LMDB: %s)", idx->path, mdb_strerror(rc));
        return IMT_E_INDEX_FORMAT;
    }
    imt__idx_set_err(idx, "%s: %s: LMDB: %s", idx->path, what, mdb_strerror(rc));
    return IMT_E_DB;
}


/* ---- header ------------------------------------------------------------ */
imt_err imt__idx_read_header(imt_index *idx, MDB_txn *txn, imt__idx_header *h)
{
    MDB_val k = {6, (void *)"header"}, d;
    int rc = mdb_get(txn, idx->db_meta, &k, &d);
    if (rc == MDB_NOTFOUND) {
        imt__idx_set_err(idx, "%s: not an imgtriage index (no header record)", idx->path);
        return IMT_E_INDEX_FORMAT;
    }
    if (rc) return imt__idx_mdb_err(idx, rc, "reading the header");
    if (d.mv_size < 12 || memcmp(d.mv_data, IDX_MAGIC, 8) != 0) {
        imt__idx_set_err(idx, "%s: not an imgtriage index (bad header magic)", idx->path);
        return IMT_E_INDEX_FORMAT;
    }
    uint32_t fmt = imt__idx_get_u32((const uint8_t *)d.mv_data + 8);
    if (fmt < IDX_FORMAT_MIN || fmt > IDX_FORMAT_VERSION) {
        imt__idx_set_err(idx, "%s: index format version %u; this build reads versions %u to %u",
                    idx->path, (unsigned)fmt, IDX_FORMAT_MIN, IDX_FORMAT_VERSION);
        return IMT_E_INDEX_FORMAT;
    }
    if (d.mv_size != sizeof *h) {
        imt__idx_set_err(idx, "%s: header record has %zu bytes, expected %zu", idx->path,
                    d.mv_size, sizeof *h);
        return IMT_E_INDEX_CORRUPT;
    }
    memcpy(h, d.mv_data, sizeof *h);
    h->tool[sizeof h->tool - 1] = '\0';
    if (h->mih_m > IDX_MAX_TABLES || h->main_n > IDX_MAX_ENTRIES ||
        (h->main_n && !h->mih_m)) {
        imt__idx_set_err(idx, "%s: header has impossible values", idx->path);
        return IMT_E_INDEX_CORRUPT;
    }
    int sum = 0;
    for (uint32_t t = 0; t < h->mih_m; t++) {
        if (h->mih_bits[t] < 1 || h->mih_bits[t] > 32) {
            imt__idx_set_err(idx, "%s: header has a table width of %u bits", idx->path,
                        (unsigned)h->mih_bits[t]);
            return IMT_E_INDEX_CORRUPT;
        }
        sum += h->mih_bits[t];
    }
    if (h->mih_m && sum != 256) {
        imt__idx_set_err(idx, "%s: header table widths sum to %d, not 256", idx->path, sum);
        return IMT_E_INDEX_CORRUPT;
    }
    return IMT_OK;
}

/* The table widths of one segment: 1..32 bits each, summing to 256. */
static int widths_ok(uint32_t m, const uint8_t *bits)
{
    int sum = 0;
    if (m < 1 || m > IDX_MAX_TABLES) return 0;
    for (uint32_t t = 0; t < m; t++) {
        if (bits[t] < 1 || bits[t] > 32) return 0;
        sum += bits[t];
    }
    return sum == 256;
}

imt_err imt__idx_read_levels(imt_index *idx, MDB_txn *txn, const imt__idx_header *h,
                             imt__idx_levels *lv)
{
    MDB_val k = {6, (void *)"levels"}, d;
    memset(lv, 0, sizeof *lv);
    int rc = mdb_get(txn, idx->db_meta, &k, &d);
    if (rc == MDB_NOTFOUND && h->format < 5) return IMT_OK; /* before levels existed */
    if (rc == MDB_NOTFOUND) {
        imt__idx_set_err(idx, "%s: the index is of format %u but has no levels record", idx->path,
                         (unsigned)h->format);
        return IMT_E_INDEX_CORRUPT;
    }
    if (rc) return imt__idx_mdb_err(idx, rc, "reading the levels record");
    const uint8_t *p = d.mv_data;
    uint32_t count = d.mv_size >= 4 ? imt__idx_get_u32(p) : UINT32_MAX;
    /* a format 2-4 header with the record (tests make one by rewriting the
     * version) may not describe levels: an older build would not search them */
    if ((h->format < 5 && count) || count > IDX_MAX_LEVELS ||
        d.mv_size != 4 + (size_t)count * sizeof(imt__idx_level)) {
        imt__idx_set_err(idx, "%s: the levels record is malformed (%zu bytes)", idx->path, d.mv_size);
        return IMT_E_INDEX_CORRUPT;
    }
    lv->count = count;
    memcpy(lv->l, p + 4, (size_t)count * sizeof(imt__idx_level));
    for (uint32_t i = 0; i < count; i++) {
        const imt__idx_level *l = &lv->l[i];
        if (!l->n || l->n > IDX_MAX_ENTRIES || !widths_ok(l->m, l->bits)) {
            imt__idx_set_err(idx, "%s: the levels record has impossible values (level %u)", idx->path,
                             (unsigned)i + 1);
            return IMT_E_INDEX_CORRUPT;
        }
    }
    return IMT_OK;
}

/* The "dsum" record of txn's snapshot: *present 0 when an index written
 * before it existed (format 2 builds) lacks it. */
imt_err imt__idx_read_delta_sum(imt_index *idx, MDB_txn *txn, uint8_t out[32], int *present)
{
    MDB_val k = {4, (void *)"dsum"}, d;
    *present = 0;
    int rc = mdb_get(txn, idx->db_meta, &k, &d);
    if (rc == MDB_NOTFOUND) return IMT_OK;
    if (rc) return imt__idx_mdb_err(idx, rc, "reading the delta checksum");
    if (d.mv_size != 32) {
        imt__idx_set_err(idx, "%s: the delta checksum record has %zu bytes", idx->path, d.mv_size);
        return IMT_E_INDEX_CORRUPT;
    }
    memcpy(out, d.mv_data, 32);
    *present = 1;
    return IMT_OK;
}

/* ---- entry records ----------------------------------------------------- */
imt_err imt__idx_entry_decode(const void *data, size_t len, imt__idx_entry *e)
{
    const uint8_t *p = data;
    if (len < 4) return IMT_E_INDEX_CORRUPT;
    memset(e, 0, sizeof *e);
    e->kinds = p[0];
    e->quality = (int8_t)p[1];
    e->n_members = (unsigned)p[2] | (unsigned)p[3] << 8;
    if (e->kinds == 0 || (e->kinds & ~15u)) return IMT_E_INDEX_CORRUPT;
    size_t need = 4 + ((e->kinds & KB_PDQ) ? 32 : 0) + ((e->kinds & KB_MD5) ? 16 : 0) +
                  ((e->kinds & KB_SHA1) ? 20 : 0) + ((e->kinds & KB_SHA256) ? 32 : 0);
    if (len < need) return IMT_E_INDEX_CORRUPT;
    size_t o = 4;
    if (e->kinds & KB_PDQ) { e->pdq = p + o; o += 32; }
    if (e->kinds & KB_MD5) { e->md5 = p + o; o += 16; }
    if (e->kinds & KB_SHA1) { e->sha1 = p + o; o += 20; }
    if (e->kinds & KB_SHA256) { e->sha256 = p + o; o += 32; }
    e->members = p + o;
    e->members_len = len - o;
    return IMT_OK;
}

int imt__idx_member_next(const imt__idx_entry *e, size_t *pos, uint32_t *list, int32_t *cat,
                    const char **label, const char **ext)
{
    size_t o = *pos, n = e->members_len;
    if (o == n) return 0;
    if (n - o < 10) return -1;
    const uint8_t *p = e->members;
    *list = imt__idx_get_u32(p + o);
    uint32_t c = imt__idx_get_u32(p + o + 4);
    *cat = (int32_t)c;
    o += 8;
    const void *z = memchr(p + o, 0, n - o);
    if (!z) return -1;
    *label = (const char *)(p + o);
    o = (size_t)((const uint8_t *)z - p) + 1;
    if (o >= n) return -1;
    z = memchr(p + o, 0, n - o);
    if (!z) return -1;
    *ext = (const char *)(p + o);
    o = (size_t)((const uint8_t *)z - p) + 1;
    *pos = o;
    return 1;
}

imt_err imt__idx_compact_record(imt_index *idx, MDB_txn *txn, int k, const uint8_t *dg, uint32_t cls,
                                uint8_t **buf, size_t *cap, size_t *len)
{
    static const uint8_t kb[3] = {KB_MD5, KB_SHA1, KB_SHA256}, dl[3] = {16, 20, 32};
    uint8_t key[4];
    imt__idx_put_be32(key, cls);
    MDB_val kk = {4, key}, d;
    int rc = idx->has_cls ? mdb_get(txn, idx->db_cls, &kk, &d) : MDB_NOTFOUND;
    /* list id, category, the label and its NUL: exactly one NUL, last */
    if (rc == 0 && (d.mv_size < 9 || ((const uint8_t *)d.mv_data)[d.mv_size - 1] != 0 ||
                    memchr((const uint8_t *)d.mv_data + 8, 0, d.mv_size - 8) !=
                        (const uint8_t *)d.mv_data + d.mv_size - 1))
        rc = MDB_CORRUPTED;
    /* no error text: cursors of one handle run on several threads */
    if (rc == MDB_NOTFOUND || rc == MDB_CORRUPTED) return IMT_E_INDEX_CORRUPT;
    if (rc) return IMT_E_DB;
    size_t n = 4 + dl[k] + d.mv_size + 1;
    if (n > *cap) {
        uint8_t *p = imt__realloc(*buf, n);
        if (!p) return IMT_E_NOMEM;
        *buf = p;
        *cap = n;
    }
    uint8_t *p = *buf;
    p[0] = kb[k];
    p[1] = 0xFF; /* quality -1 */
    p[2] = 1;    /* one membership */
    p[3] = 0;
    memcpy(p + 4, dg, dl[k]);
    memcpy(p + 4 + dl[k], d.mv_data, d.mv_size);
    p[n - 1] = 0; /* no external id */
    *len = n;
    return IMT_OK;
}

int imt__idx_dig_get(const imt_index *idx, MDB_txn *txn, int k, const uint8_t *d, MDB_val *val,
                     int *in_delta)
{
    static const size_t dl[3] = {16, 20, 32};
    MDB_val key = {dl[k], (void *)d};
    *in_delta = 0;
    int rc = mdb_get(txn, imt__idx_dig_dbi(idx, k), &key, val);
    if (rc != MDB_NOTFOUND || !idx->has_dplus) return rc;
    key.mv_size = dl[k];
    key.mv_data = (void *)d;
    rc = mdb_get(txn, imt__idx_dplus_dbi(idx, k), &key, val);
    *in_delta = rc == 0;
    return rc;
}

uint64_t imt__idx_dig_count(const imt_index *idx, MDB_txn *txn, int k)
{
    MDB_stat a, b;
    uint64_t n = 0;
    if (mdb_stat(txn, imt__idx_dig_dbi(idx, k), &a) == 0) n += a.ms_entries;
    if (idx->has_dplus && mdb_stat(txn, imt__idx_dplus_dbi(idx, k), &b) == 0) n += b.ms_entries;
    return n;
}

/* ---- MIH parameters ------------------------------------------- */
int imt__idx_mih_params(uint32_t n, uint8_t bits[IDX_MAX_TABLES])
{
    /* m = 256 / log2(n) substrings of about log2(n) bits, so that a bucket
     * holds about one hash (Norouzi et al.); at least 8 (widths <= 32). */
    double l = n > 1 ? log2((double)n) : 1.0;
    int m = (int)floor(256.0 / l + 0.5);
    if (m < 8) m = 8;
    if (m > IDX_MAX_TABLES) m = IDX_MAX_TABLES;
    int base = 256 / m, extra = 256 % m;
    for (int t = 0; t < m; t++) bits[t] = (uint8_t)(base + (t < extra ? 1 : 0));
    return m;
}

