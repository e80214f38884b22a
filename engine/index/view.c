/* engine/index/view.c -- the search view of a snapshot: the compacted PDQ
 * array, its entry ids, the MIH tables and the delta segment, each checked
 * for size and alignment; and writing the header, which seals the delta
 * segment's checksum (calls meta.c and sums.c). */
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

void imt__idx_seg_key(char out[16], int lvl, const char *what, int t)
{
    char name[8];
    if (!strcmp(what, "mih")) snprintf(name, sizeof name, "mih%02u", (unsigned)t & 31u);
    else snprintf(name, sizeof name, "%s", what);
    if (lvl) snprintf(out, 16, "%u.%s", (unsigned)lvl & 15u, name);
    else snprintf(out, 16, "%s", name);
}

/* Level lvl's arrays (n hashes, m tables of widths bits) into *g. */
static imt_err seg_load(imt_index *idx, MDB_txn *txn, int lvl, uint32_t n, uint32_t m,
                        const uint8_t *bits, imt__idx_view *v, imt__idx_seg *g)
{
    imt_err err = IMT_OK;
    MDB_val d;
    char key[16];
    g->n = n;
    g->m = (int)m;
    int s = 0;
    for (int t = 0; t < g->m; t++) {
        g->bits[t] = bits[t];
        g->start[t] = s;
        s += g->bits[t];
    }
    if (!n) return IMT_OK;
    imt__idx_seg_key(key, lvl, "pdq", 0);
    IMT_TRY(seg_get_array(idx, txn, key, &d, "compacted PDQ array"));
    if (d.mv_size != (size_t)n * 32) {
        imt__idx_set_err(idx, "%s: the PDQ array of level %d has %zu bytes, expected %zu", idx->path,
                         lvl, d.mv_size, (size_t)n * 32);
        err = IMT_E_INDEX_CORRUPT;
        goto cleanup;
    }
    g->pdq = d.mv_data;
    imt__idx_seg_key(key, lvl, "ent", 0);
    IMT_TRY(seg_get_array(idx, txn, key, &d, "entry id array"));
    if (d.mv_size != (size_t)n * 4) {
        imt__idx_set_err(idx, "%s: the entry id array of level %d has the wrong size", idx->path, lvl);
        err = IMT_E_INDEX_CORRUPT;
        goto cleanup;
    }
    const void *p;
    IMT_TRY(keep_aligned(v, d.mv_data, d.mv_size, &p));
    g->ent = p;
    for (int t = 0; t < g->m; t++) {
        imt__idx_seg_key(key, lvl, "mih", t);
        IMT_TRY(seg_get_array(idx, txn, key, &d, "MIH table"));
        size_t nb = ((size_t)1 << g->bits[t]) + 1;
        if (d.mv_size != (nb + n) * 4) {
            imt__idx_set_err(idx, "%s: MIH table %d of level %d has %zu bytes, expected %zu",
                             idx->path, t, lvl, d.mv_size, (nb + n) * 4);
            err = IMT_E_INDEX_CORRUPT;
            goto cleanup;
        }
        IMT_TRY(keep_aligned(v, d.mv_data, d.mv_size, &p));
        g->off[t] = p;
        g->ids[t] = (const uint32_t *)p + nb;
        if (g->off[t][nb - 1] != n) {
            imt__idx_set_err(idx, "%s: MIH table %d of level %d does not end at %u", idx->path, t,
                             lvl, (unsigned)n);
            err = IMT_E_INDEX_CORRUPT;
            goto cleanup;
        }
    }
cleanup:
    return err;
}

imt_err imt__idx_view_load(imt_index *idx, MDB_txn *txn, const imt__idx_header *h,
                           const imt__idx_levels *lv, imt__idx_view *v)
{
    imt_err err = IMT_OK;
    MDB_val d;
    memset(v, 0, sizeof *v);
    v->nseg = 1 + (lv ? (int)lv->count : 0);
    IMT_TRY(seg_load(idx, txn, 0, h->main_n, h->mih_m, h->mih_bits, v, &v->seg[0]));
    v->compacted = h->main_n;
    for (int s = 1; s < v->nseg; s++) {
        const imt__idx_level *l = &lv->l[s - 1];
        IMT_TRY(seg_load(idx, txn, s, l->n, l->m, l->bits, v, &v->seg[s]));
        v->compacted += l->n;
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

/* Every header write also seals the delta segment as written in txn, in
 * the meta record "dsum" (the compacted segments' sums are in the header,
 * level 0's, and in "levels", set by compaction), and writes "levels"
 * (lv NULL: none beyond 0). O(delta), which an import reads anyway.
 * Separate records, so that the header keeps its layout. */
imt_err imt__idx_write_header(imt_index *idx, MDB_txn *txn, const imt__idx_header *h,
                              const imt__idx_levels *lv)
{
    imt_err err = IMT_OK;
    uint8_t sum[32];
    imt__idx_view v;
    static const imt__idx_levels none;
    if (!lv) lv = &none;
    IMT_TRY(imt__idx_view_load(idx, txn, h, lv, &v));
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
    if (rc) {
        err = imt__idx_mdb_err(idx, rc, "writing the delta checksum");
        goto cleanup;
    }
    uint8_t rec[4 + sizeof lv->l];
    memcpy(rec, &lv->count, 4);
    memcpy(rec + 4, lv->l, (size_t)lv->count * sizeof(imt__idx_level));
    MDB_val lk = {6, (void *)"levels"}, ld = {4 + (size_t)lv->count * sizeof(imt__idx_level), rec};
    rc = mdb_put(txn, idx->db_meta, &lk, &ld, 0);
    if (rc) err = imt__idx_mdb_err(idx, rc, "writing the levels record");
cleanup:
    return err;
}
