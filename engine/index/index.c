/* engine/index/index.c -- opening an index, its snapshot (header, list
 * inventory, search view, content check) and entry records. */
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

#define DEFAULT_MAP_SIZE (64ull << 30)

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

const char *imt_index_last_error(const imt_index *idx)
{
    return idx ? idx->err : "";
}

const char *imt_hash_kind_name(imt_hash_kind k)
{
    switch (k) {
    case IMT_KIND_PDQ: return "pdq";
    case IMT_KIND_MD5: return "md5";
    case IMT_KIND_SHA1: return "sha1";
    case IMT_KIND_SHA256: return "sha256";
    }
    return "unknown";
}

void imt_index_opts_init(imt_index_opts *o)
{
    memset(o, 0, sizeof *o);
    o->read_only = 1;
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

/* Every header write also seals the delta segment as written in txn, in
 * the meta record "dsum" (the compacted segment's sum is in the header,
 * set by compaction). O(delta), which an import reads anyway. A separate
 * record, so that the header keeps its layout and format. */
imt_err imt__idx_write_header(imt_index *idx, MDB_txn *txn, const imt__idx_header *h)
{
    imt_err err = IMT_OK;
    uint8_t sum[32];
    imt__idx_view v;
    IMT_TRY(imt__idx_view_load(idx, txn, h, &v));
    err = imt__idx_delta_sum(&v, sum);
    imt__idx_view_free(&v);
    if (err) goto cleanup;
    MDB_val k = {6, (void *)"header"}, d = {sizeof *h, (void *)h};
    int rc = mdb_put(txn, idx->db_meta, &k, &d, 0);
    if (rc) {
        err = imt__idx_mdb_err(idx, rc, "writing the header");
        goto cleanup;
    }
    MDB_val dk = {4, (void *)"dsum"}, dd = {32, sum};
    rc = mdb_put(txn, idx->db_meta, &dk, &dd, 0);
    if (rc) err = imt__idx_mdb_err(idx, rc, "writing the delta checksum");
cleanup:
    return err;
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

/* ---- the search view --------------------------------------------------- */
static imt_err keep_aligned(imt__idx_view *v, const void *p, size_t len, const void **out)
{
    if (((uintptr_t)p & 3) == 0) {
        *out = p;
        return IMT_OK;
    }
    void **no = imt__realloc(v->owned, (v->nowned + 1) * sizeof *no);
    if (!no) return IMT_E_NOMEM;
    v->owned = no;
    void *c = imt__malloc(len);
    if (!c) return IMT_E_NOMEM;
    memcpy(c, p, len);
    v->owned[v->nowned++] = c;
    *out = c;
    return IMT_OK;
}

void imt__idx_view_free(imt__idx_view *v)
{
    if (!v) return;
    for (size_t i = 0; i < v->nowned; i++) imt__free(v->owned[i]);
    imt__free(v->owned);
    imt__free(v->dpdq);
    imt__free(v->dent);
    imt__free(v->dcount);
    memset(v, 0, sizeof *v);
}

static imt_err seg_get(imt_index *idx, MDB_txn *txn, const void *key, size_t klen,
                       MDB_val *d, const char *what)
{
    MDB_val k = {klen, (void *)key};
    int rc = mdb_get(txn, idx->db_seg, &k, d);
    if (rc == MDB_NOTFOUND) {
        imt__idx_set_err(idx, "%s: the %s is missing", idx->path, what);
        return IMT_E_INDEX_CORRUPT;
    }
    return rc ? imt__idx_mdb_err(idx, rc, what) : IMT_OK;
}

/* An array of the compacted segment: skip its lead (index.h: IDX_SEG_LEAD). */
static imt_err seg_get_array(imt_index *idx, MDB_txn *txn, const char *key, MDB_val *d,
                             const char *what)
{
    imt_err err = seg_get(idx, txn, key, strlen(key), d, what);
    if (err) return err;
    if (d->mv_size < IDX_SEG_LEAD) {
        imt__idx_set_err(idx, "%s: the %s has %zu bytes", idx->path, what, d->mv_size);
        return IMT_E_INDEX_CORRUPT;
    }
    d->mv_size -= IDX_SEG_LEAD;
    d->mv_data = (uint8_t *)d->mv_data + IDX_SEG_LEAD;
    return IMT_OK;
}

imt_err imt__idx_view_load(imt_index *idx, MDB_txn *txn, const imt__idx_header *h, imt__idx_view *v)
{
    imt_err err = IMT_OK;
    MDB_val d;
    memset(v, 0, sizeof *v);
    v->main_n = h->main_n;
    v->m = (int)h->mih_m;
    int s = 0;
    for (int t = 0; t < v->m; t++) {
        v->bits[t] = h->mih_bits[t];
        v->start[t] = s;
        s += v->bits[t];
    }
    if (v->main_n) {
        IMT_TRY(seg_get_array(idx, txn, "pdq", &d, "compacted PDQ array"));
        if (d.mv_size != (size_t)v->main_n * 32) {
            imt__idx_set_err(idx, "%s: the PDQ array has %zu bytes, expected %zu", idx->path,
                        d.mv_size, (size_t)v->main_n * 32);
            err = IMT_E_INDEX_CORRUPT;
            goto cleanup;
        }
        v->pdq = d.mv_data;
        IMT_TRY(seg_get_array(idx, txn, "ent", &d, "entry id array"));
        if (d.mv_size != (size_t)v->main_n * 4) {
            imt__idx_set_err(idx, "%s: the entry id array has the wrong size", idx->path);
            err = IMT_E_INDEX_CORRUPT;
            goto cleanup;
        }
        const void *p;
        IMT_TRY(keep_aligned(v, d.mv_data, d.mv_size, &p));
        v->ent = p;
        for (int t = 0; t < v->m; t++) {
            char key[8];
            snprintf(key, sizeof key, "mih%02u", (unsigned)t & 31u);
            IMT_TRY(seg_get_array(idx, txn, key, &d, "MIH table"));
            size_t nb = ((size_t)1 << v->bits[t]) + 1;
            if (d.mv_size != (nb + v->main_n) * 4) {
                imt__idx_set_err(idx, "%s: MIH table %d has %zu bytes, expected %zu", idx->path,
                            t, d.mv_size, (nb + v->main_n) * 4);
                err = IMT_E_INDEX_CORRUPT;
                goto cleanup;
            }
            IMT_TRY(keep_aligned(v, d.mv_data, d.mv_size, &p));
            v->off[t] = p;
            v->ids[t] = (const uint32_t *)p + nb;
            if (v->off[t][nb - 1] != v->main_n) {
                imt__idx_set_err(idx, "%s: MIH table %d does not end at %u", idx->path, t,
                            (unsigned)v->main_n);
                err = IMT_E_INDEX_CORRUPT;
                goto cleanup;
            }
        }
    }
    v->delta_n = h->delta_n;
    if (v->delta_n) {
        size_t nc = (v->delta_n + IDX_DELTA_CHUNK - 1) / IDX_DELTA_CHUNK;
        v->dpdq = imt__calloc(nc, sizeof *v->dpdq);
        v->dent = imt__calloc(nc, sizeof *v->dent);
        v->dcount = imt__calloc(nc, sizeof *v->dcount);
        if (!v->dpdq || !v->dent || !v->dcount) {
            err = IMT_E_NOMEM;
            goto cleanup;
        }
        v->nchunks = nc;
        uint64_t total = 0;
        for (size_t c = 0; c < nc; c++) {
            uint8_t key[5] = {'d'};
            imt__idx_put_be32(key + 1, (uint32_t)c);
            IMT_TRY(seg_get(idx, txn, key, 5, &d, "delta chunk"));
            if (d.mv_size % 36 || d.mv_size / 36 > IDX_DELTA_CHUNK || !d.mv_size) {
                imt__idx_set_err(idx, "%s: delta chunk %zu has %zu bytes", idx->path, c, d.mv_size);
                err = IMT_E_INDEX_CORRUPT;
                goto cleanup;
            }
            v->dcount[c] = (uint32_t)(d.mv_size / 36);
            v->dpdq[c] = d.mv_data;
            v->dent[c] = (const uint8_t *)d.mv_data + (size_t)v->dcount[c] * 32;
            total += v->dcount[c];
        }
        if (total != v->delta_n) {
            imt__idx_set_err(idx, "%s: delta chunks hold %llu hashes, header says %u", idx->path,
                        (unsigned long long)total, (unsigned)v->delta_n);
            err = IMT_E_INDEX_CORRUPT;
            goto cleanup;
        }
    }
cleanup:
    if (err != IMT_OK) imt__idx_view_free(v);
    return err;
}

/* ---- lists and identity ----------------------------------------------- */
static imt_err decode_list(const uint8_t *p, size_t len, imt_list_info *li, char **strs)
{
    if (len < 24) return IMT_E_INDEX_CORRUPT;
    li->id = imt__idx_get_u32(p);
    li->known_good = p[4];
    int64_t t;
    uint64_t n;
    memcpy(&t, p + 8, 8);
    memcpy(&n, p + 16, 8);
    li->import_time = t;
    li->entries = n;
    const char *s = (const char *)p + 24;
    size_t left = len - 24;
    /* the policy is the sixth string since format 3; a list without one
     * (written by format 2) has its scheme's default */
    const char **fields[6] = {&li->name, &li->version, &li->format, &li->file_sha256,
                              &li->scheme, &li->policy};
    for (int i = 0; i < 6; i++) {
        if (i == 5 && !left) {
            li->policy = imt__idx_policy_default(li->scheme, li->known_good);
            strs[i] = NULL;
            break;
        }
        const char *z = memchr(s, 0, left);
        if (!z) return IMT_E_INDEX_CORRUPT;
        *fields[i] = s;
        strs[i] = (char *)s;
        left -= (size_t)(z - s) + 1;
        s = z + 1;
    }
    if (left || !imt__idx_policy_valid(li->policy)) return IMT_E_INDEX_CORRUPT;
    return IMT_OK;
}

static imt_err load_lists(imt_index *idx, MDB_txn *txn, EVP_MD_CTX *md)
{
    imt_err err = IMT_OK;
    MDB_cursor *cur = NULL;
    MDB_val k, d;
    size_t n = 0, bytes = 0;
    int rc = mdb_cursor_open(txn, idx->db_lists, &cur);
    if (rc) return imt__idx_mdb_err(idx, rc, "reading the lists");
    for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        n++;
        bytes += d.mv_size;
    }
    if (rc != MDB_NOTFOUND) {
        err = imt__idx_mdb_err(idx, rc, "reading the lists");
        goto cleanup;
    }
    idx->lists = imt__calloc(n ? n : 1, sizeof *idx->lists);
    idx->listbuf = imt__malloc(bytes ? bytes : 1);
    if (!idx->lists || !idx->listbuf) {
        err = IMT_E_NOMEM;
        goto cleanup;
    }
    size_t i = 0, o = 0;
    for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); rc == 0 && i < n;
         rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT), i++) {
        memcpy(idx->listbuf + o, d.mv_data, d.mv_size);
        char *strs[6];
        if (decode_list((uint8_t *)idx->listbuf + o, d.mv_size, &idx->lists[i], strs) != IMT_OK ||
            k.mv_size != 4 || imt__idx_get_be32(k.mv_data) != idx->lists[i].id) {
            imt__idx_set_err(idx, "%s: list record %zu is malformed", idx->path, i);
            err = IMT_E_INDEX_CORRUPT;
            goto cleanup;
        }
        if (md) EVP_DigestUpdate(md, d.mv_data, d.mv_size);
        o += d.mv_size;
    }
    idx->nlists = i;
cleanup:
    mdb_cursor_close(cur);
    return err;
}

static imt_err compute_identity(imt_index *idx, MDB_txn *txn)
{
    imt_err err = IMT_OK;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md) return IMT_E_NOMEM;
    if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        err = IMT_E_INTERNAL;
        goto cleanup;
    }
    /* the header minus nothing: it holds the format, counts, generation and
     * the checksum of the compacted segment */
    EVP_DigestUpdate(md, "imgtriage-index-identity-1", 26);
    EVP_DigestUpdate(md, &idx->hdr, sizeof idx->hdr);
    /* and the delta checksum (absent in an index no build with it wrote) */
    if (idx->has_delta_sum) EVP_DigestUpdate(md, idx->delta_sum, 32);
    IMT_TRY(load_lists(idx, txn, md));
    unsigned char dg[32];
    unsigned dn = 0;
    if (EVP_DigestFinal_ex(md, dg, &dn) != 1) {
        err = IMT_E_INTERNAL;
        goto cleanup;
    }
    for (int i = 0; i < 32; i++) snprintf(idx->identity + 2 * i, 3, "%02x", dg[i]);
cleanup:
    EVP_MD_CTX_free(md);
    return err;
}

void imt__idx_snapshot_end(imt_index *idx)
{
    imt__idx_view_free(&idx->view);
    imt__free(idx->lists);
    imt__free(idx->listbuf);
    idx->lists = NULL;
    idx->listbuf = NULL;
    idx->nlists = 0;
    if (idx->rtxn) mdb_txn_abort(idx->rtxn);
    idx->rtxn = NULL;
}

imt_err imt__idx_unchanged(const imt_index *idx)
{
    if (!idx->nolock) return IMT_OK;
    MDB_envinfo ei;
    /* reads the meta pages in the shared map: the last committed txnid */
    if (mdb_env_info(idx->env, &ei) != 0) return IMT_E_DB;
    return ei.me_last_txnid == idx->snap_txnid ? IMT_OK : IMT_E_INDEX_CHANGED;
}

/* madvise [p, p+len) (page-aligned outwards). */
static void advise(const void *p, size_t len, int advice)
{
    long pg = sysconf(_SC_PAGESIZE);
    if (pg <= 0 || !len) return;
    uintptr_t a = (uintptr_t)p & ~((uintptr_t)pg - 1);
    (void)madvise((void *)a, len + ((uintptr_t)p - a), advice);
}

/* The map is MDB_NORDAHEAD (MADV_RANDOM: right for the queries' random
 * accesses), so a sequential pass over a cold index would fault in one
 * page at a time: 19 s instead of 2.7 s for the arrays of a 10M index
 * (bench_index, evicted from the page cache). Read the ranges as a
 * sequence, then give them back LMDB's advice. */
static void advise_arrays(const imt__idx_view *v, int advice)
{
    if (!v->main_n) return;
    advise(v->pdq, (size_t)v->main_n * 32, advice);
    advise(v->ent, (size_t)v->main_n * 4, advice);
    for (int t = 0; t < v->m; t++)
        advise(v->off[t], ((((size_t)1 << v->bits[t]) + 1) + v->main_n) * 4, advice);
}

/* Open-time content check: the arrays every PDQ query searches (the
 * compacted hashes, their entry ids and MIH tables, and the delta chunks)
 * against the sums in the header, which the identity covers. So a flipped
 * bit there fails the open instead of silently changing answers, and the
 * identity a report records stands for the bytes searched. One sequential
 * read, which also brings a cold index into the page cache. The B-trees
 * (entry records, digest tables) are not covered: `verify` checks them. */
static imt_err check_content(imt_index *idx)
{
    imt_err err = IMT_OK;
    const imt__idx_view *v = &idx->view;
    uint8_t sum[32];
    if (v->main_n) {
        advise_arrays(v, MADV_SEQUENTIAL);
        advise_arrays(v, MADV_WILLNEED);
        err = imt__idx_main_sum(v, sum);
        advise_arrays(v, MADV_RANDOM);
        if (err) goto cleanup;
        if (memcmp(sum, idx->hdr.main_sum, 32) != 0) {
            imt__idx_set_err(idx, "%s: the compacted PDQ segment (hashes, entry ids or MIH tables) "
                        "does not match the checksum in the header: the index is damaged "
                        "('imgtriage index verify' names the first problem)", idx->path);
            err = IMT_E_INDEX_CORRUPT;
            goto cleanup;
        }
    }
    IMT_TRY(imt__idx_delta_sum(v, sum));
    if (idx->has_delta_sum) {
        if (memcmp(sum, idx->delta_sum, 32) != 0) {
            imt__idx_set_err(idx, "%s: the delta PDQ segment (hashes or entry ids) does not match "
                        "its checksum: the index is damaged ('imgtriage index verify' names "
                        "the first problem)", idx->path);
            err = IMT_E_INDEX_CORRUPT;
            goto cleanup;
        }
    } else if (v->delta_n) {
        /* written by a build before the delta checksum: the compacted
         * segment was checked, the delta cannot be (the next import seals
         * it); say "not verified" */
        goto cleanup;
    }
    idx->content_verified = 1;
cleanup:
    return err;
}

imt_err imt__idx_snapshot_begin(imt_index *idx)
{
    imt_err err = IMT_OK;
    int rc = mdb_txn_begin(idx->env, NULL, MDB_RDONLY, &idx->rtxn);
    if (rc) return imt__idx_mdb_err(idx, rc, "starting a read transaction");
    idx->snap_txnid = mdb_txn_id(idx->rtxn);
    IMT_TRY(imt__idx_read_header(idx, idx->rtxn, &idx->hdr));
    IMT_TRY(imt__idx_read_delta_sum(idx, idx->rtxn, idx->delta_sum, &idx->has_delta_sum));
    IMT_TRY(compute_identity(idx, idx->rtxn));
    IMT_TRY(imt__idx_view_load(idx, idx->rtxn, &idx->hdr, &idx->view));
    idx->content_verified = 0;
    if (idx->check_content) IMT_TRY(check_content(idx));
    if (imt__idx_unchanged(idx) != IMT_OK) {
        imt__idx_set_err(idx, "%s: the index changed while it was being opened (it is read "
                    "without a lock: no write access to lock.mdb)", idx->path);
        err = IMT_E_INDEX_CHANGED;
    }
cleanup:
    if (err != IMT_OK) imt__idx_snapshot_end(idx);
    return err;
}

/* ---- open / close ------------------------------------------------------ */
static imt_err open_dbis(imt_index *idx, MDB_txn *txn, unsigned flags)
{
    struct { const char *name; MDB_dbi *dbi; } t[] = {
        {"meta", &idx->db_meta},     {"lists", &idx->db_lists}, {"entries", &idx->db_entries},
        {"md5", &idx->db_md5},       {"sha1", &idx->db_sha1},   {"sha256", &idx->db_sha256},
        {"seg", &idx->db_seg},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        int rc = mdb_dbi_open(txn, t[i].name, flags, t[i].dbi);
        if (rc == MDB_NOTFOUND || rc == MDB_INCOMPATIBLE) {
            imt__idx_set_err(idx, "%s: not an imgtriage index (no '%s' table)", idx->path, t[i].name);
            return IMT_E_INDEX_FORMAT;
        }
        if (rc) return imt__idx_mdb_err(idx, rc, "opening the tables");
    }
    return IMT_OK;
}

/* Can this process register as a reader? LMDB records readers in
 * lock.mdb, so that a writer never recycles a page a reader may still read,
 * and a reader must open that file for writing (LMDB creates it if absent).
 * A shared index may not allow it: root-owned with files 0644, a read-only
 * folder without lock.mdb, read-only media. Such an index is opened with
 * MDB_NOLOCK instead: it reads the same snapshot, but a writer cannot see
 * it, so imt__idx_unchanged() turns any later commit into IMT_E_INDEX_CHANGED.
 * 1: open without a lock; 0: LMDB can use the lock (or will report why not). */
static int lock_unwritable(const char *path)
{
    size_t n = strlen(path) + 16;
    char *lock = imt__malloc(n);
    if (!lock) return 0;
    snprintf(lock, n, "%s/lock.mdb", path);
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    int e = errno;
    imt__free(lock);
    if (fd >= 0) {
        close(fd);
        return 0;
    }
    return e == EACCES || e == EPERM || e == EROFS;
}

/* Why the calling thread's last imt_index_open failed (the handle is gone). */
static char *imt__open_error_buf(void)
{
    static _Thread_local char buf[512];
    return buf;
}

const char *imt_index_open_error(void)
{
    return imt__open_error_buf();
}

static imt_err open_once(imt_index **out, const char *path, const imt_index_opts *opts);

/* A writer committing while this opens can change data.mdb between the
 * page check and LMDB's open, or (without a lock) during the snapshot's
 * reads: nothing was answered yet, so open again, a few times. */
imt_err imt_index_open(imt_index **out, const char *path, const imt_index_opts *opts)
{
    imt_err err = IMT_E_INDEX_CHANGED;
    for (int i = 0; i < 8 && err == IMT_E_INDEX_CHANGED; i++) {
        if (i) usleep(1000u << (i < 6 ? i : 6));
        err = open_once(out, path, opts);
    }
    return err;
}

static imt_err open_once(imt_index **out, const char *path, const imt_index_opts *opts)
{
    imt_err err = IMT_OK;
    imt_index_opts o;
    imt_index *idx = NULL;
    MDB_txn *txn = NULL;
    char *data = NULL;
    if (!out || !path) return IMT_E_INVALID;
    *out = NULL;
    if (opts) o = *opts;
    else imt_index_opts_init(&o);
    if (o.create && o.read_only) return IMT_E_INVALID;
    idx = imt__calloc(1, sizeof *idx);
    if (!idx) return IMT_E_NOMEM;
    idx->read_only = o.read_only != 0;
    idx->check_content = !o.skip_content_check;
    idx->path = imt__strdup(path);
    size_t dl = strlen(path) + 16;
    data = imt__malloc(dl);
    if (!idx->path || !data) {
        err = IMT_E_NOMEM;
        goto cleanup;
    }
    snprintf(data, dl, "%s/data.mdb", path);
    struct stat st;
    int fresh = 0;
    if (stat(path, &st) != 0) {
        if (errno != ENOENT || !o.create) {
            imt__idx_set_err(idx, "%s: %s", path, strerror(errno));
            err = errno == ENOENT ? IMT_E_NOT_FOUND : IMT_E_IO;
            goto cleanup;
        }
        if (mkdir(path, 0777) != 0) {
            imt__idx_set_err(idx, "%s: cannot create the directory: %s", path, strerror(errno));
            err = IMT_E_IO;
            goto cleanup;
        }
        fresh = 1;
    } else if (!S_ISDIR(st.st_mode)) {
        imt__idx_set_err(idx, "%s: not an imgtriage index (not a directory)", path);
        err = IMT_E_INDEX_FORMAT;
        goto cleanup;
    } else if (stat(data, &st) != 0) {
        if (!o.create) {
            imt__idx_set_err(idx, "%s: not an imgtriage index (no data.mdb)", path);
            err = IMT_E_INDEX_FORMAT;
            goto cleanup;
        }
        fresh = 1;
    } else if (o.create && o.exclusive) {
        imt__idx_set_err(idx, "%s: an index exists there already", path);
        err = IMT_E_EXISTS;
        goto cleanup;
    }
    imt__idx_pagecheck_info pci;
    memset(&pci, 0, sizeof pci);
    if (!fresh) {
        /* LMDB 0.9 trusts the page numbers, offsets and sizes in the file
         * and would fault (SIGBUS, SIGSEGV) or abort on a damaged one:
         * check every page it can reach before it maps the file. */
        IMT_TRY(imt__idx_pagecheck(path, !idx->read_only, &pci, idx->err, sizeof idx->err));
    }
    int rc = mdb_env_create(&idx->env);
    if (rc) {
        err = imt__idx_mdb_err(idx, rc, "creating the environment");
        goto cleanup;
    }
    mdb_env_set_maxdbs(idx->env, 8);
    mdb_env_set_maxreaders(idx->env, 1022);
    if (!idx->read_only || o.map_size)
        mdb_env_set_mapsize(idx->env, (size_t)(o.map_size ? o.map_size : DEFAULT_MAP_SIZE));
    else if (!fresh && !pci.empty)
        /* read-only: the file is all there is to map (the meta page's map
         * size is not trusted; LMDB raises it to what its pages need) */
        mdb_env_set_mapsize(idx->env, (size_t)pci.file_size);
    if (idx->read_only && !fresh) idx->nolock = lock_unwritable(path);
    unsigned flags = MDB_NOTLS | MDB_NORDAHEAD | (idx->read_only ? MDB_RDONLY : 0) |
                     (idx->nolock ? MDB_NOLOCK : 0);
    rc = mdb_env_open(idx->env, path, flags, 0666);
    if (rc) {
        err = imt__idx_mdb_err(idx, rc, "opening");
        if (rc == EACCES) err = IMT_E_IO;
        goto cleanup;
    }
    MDB_envinfo ei;
    MDB_stat es;
    if (mdb_env_info(idx->env, &ei) != 0 || mdb_env_stat(idx->env, &es) != 0) {
        imt__idx_set_err(idx, "%s: cannot read the environment's parameters", path);
        err = IMT_E_DB;
        goto cleanup;
    }
    if (!fresh && !pci.empty && (es.ms_psize != pci.psize || (uint64_t)ei.me_last_pgno != pci.last_pgno)) {
        /* the file changed between the check and mdb_env_open */
        imt__idx_set_err(idx, "%s: data.mdb changed while it was being opened (a writer "
                    "committed; tried again 8 times)", path);
        err = IMT_E_INDEX_CHANGED;
        goto cleanup;
    }
    int dead = 0;
    mdb_reader_check(idx->env, &dead);
    rc = mdb_txn_begin(idx->env, NULL, idx->read_only ? MDB_RDONLY : 0, &txn);
    if (rc) {
        err = imt__idx_mdb_err(idx, rc, "starting a transaction");
        goto cleanup;
    }
    IMT_TRY(open_dbis(idx, txn, idx->read_only ? 0 : MDB_CREATE));
    if (!idx->read_only) {
        MDB_val k = {6, (void *)"header"}, d;
        rc = mdb_get(txn, idx->db_meta, &k, &d);
        if (rc == MDB_NOTFOUND) {
            MDB_stat ms;
            mdb_stat(txn, idx->db_entries, &ms);
            if (!fresh && ms.ms_entries) {
                imt__idx_set_err(idx, "%s: not an imgtriage index (data but no header)", path);
                err = IMT_E_INDEX_FORMAT;
                goto cleanup;
            }
            imt__idx_header h;
            memset(&h, 0, sizeof h);
            memcpy(h.magic, IDX_MAGIC, 8);
            h.format = IDX_FORMAT_VERSION;
            h.created = (int64_t)time(NULL);
            h.next_list = 1;
            snprintf(h.tool, sizeof h.tool, "imgtriage %s", IMT_VERSION_STRING);
            IMT_TRY(imt__idx_write_header(idx, txn, &h));
        } else if (rc) {
            err = imt__idx_mdb_err(idx, rc, "reading the header");
            goto cleanup;
        }
    }
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc) {
        err = imt__idx_mdb_err(idx, rc, "committing");
        goto cleanup;
    }
    IMT_TRY(imt__idx_snapshot_begin(idx));
    *out = idx;
    idx = NULL;
cleanup:
    if (txn) mdb_txn_abort(txn);
    imt__free(data);
    if (idx) {
        snprintf(imt__open_error_buf(), 512, "%s", idx->err);
        imt_index_close(idx);
    } else {
        imt__open_error_buf()[0] = '\0';
    }
    return err;
}

void imt_index_close(imt_index *idx)
{
    if (!idx) return;
    imt__idx_snapshot_end(idx);
    if (idx->env) mdb_env_close(idx->env);
    imt__free(idx->path);
    imt__free(idx);
}

size_t imt_index_list_count(const imt_index *idx)
{
    return idx ? idx->nlists : 0;
}

imt_err imt_index_list_get(const imt_index *idx, size_t i, imt_list_info *out)
{
    if (!idx || !out || i >= idx->nlists) return IMT_E_INVALID;
    *out = idx->lists[i];
    return IMT_OK;
}

const char *imt_disposition_name(imt_disposition d)
{
    switch (d) {
    case IMT_DISP_ALERT: return "alert";
    case IMT_DISP_INFO: return "info";
    case IMT_DISP_IGNORE: return "ignore";
    }
    return "alert";
}

/* The lists are few (one per import): a linear search. A membership of a
 * list not in the inventory alerts (verify reports it). */
size_t imt__idx_list_find(const imt_list_info *l, size_t n, uint32_t id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (l[mid].id == id) return mid;
        if (l[mid].id < id) lo = mid + 1;
        else hi = mid;
    }
    return n;
}

imt_disposition imt__idx_disposition(const imt_index *idx, uint32_t list, int32_t cat)
{
    size_t i = imt__idx_list_find(idx->lists, idx->nlists, list);
    if (i == idx->nlists) return IMT_DISP_ALERT; /* an unknown list never clears */
    return imt__idx_policy_eval(idx->lists[i].policy, cat);
}

imt_err imt_index_identity(const imt_index *idx, char out[65])
{
    if (!idx || !out) return IMT_E_INVALID;
    memcpy(out, idx->identity, 65);
    return IMT_OK;
}

imt_err imt_index_stats_get(const imt_index *idx, imt_index_stats *s)
{
    if (!idx || !s) return IMT_E_INVALID;
    memset(s, 0, sizeof *s);
    const imt__idx_header *h = &idx->hdr;
    s->format_version = h->format;
    s->tool_version = h->tool;
    s->created = h->created;
    s->generation = h->generation;
    s->entries = h->next_entry;
    s->pdq = h->n_pdq;
    s->md5 = h->n_md5;
    s->sha1 = h->n_sha1;
    s->sha256 = h->n_sha256;
    s->memberships = h->n_members;
    s->pdq_main = h->main_n;
    s->pdq_delta = h->delta_n;
    s->mih_tables = (int)h->mih_m;
    for (uint32_t t = 0; t < h->mih_m; t++) s->mih_bits[t] = h->mih_bits[t];
    s->content_verified = idx->content_verified;
    size_t pl = strlen(idx->path) + 16;
    char buf[4096];
    if (pl < sizeof buf) {
        snprintf(buf, sizeof buf, "%s/data.mdb", idx->path);
        struct stat st;
        if (stat(buf, &st) == 0) s->file_bytes = (uint64_t)st.st_size;
    }
    return IMT_OK;
}
