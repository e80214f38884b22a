/* engine/index/compact.c -- building the compacted PDQ levels (each an
 * array, its entry ids and MIH tables) from the delta and the smaller
 * levels, inside the caller's write transaction (checksums: sums.c). */
#include "index.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

/* Reserve an array of the compacted segment: IDX_SEG_LEAD zero bytes, then
 * len bytes at *out for the caller to fill. */
static imt_err seg_reserve(imt__idx_writer *w, const char *key, size_t len, void **out)
{
    MDB_val k = {strlen(key), (void *)key}, d = {len + IDX_SEG_LEAD, NULL};
    int rc = mdb_put(w->txn, w->idx->db_seg, &k, &d, MDB_RESERVE);
    if (rc) return imt__idx_mdb_err(w->idx, rc, "writing the compacted segment");
    memset(d.mv_data, 0, IDX_SEG_LEAD);
    *out = (uint8_t *)d.mv_data + IDX_SEG_LEAD;
    return IMT_OK;
}

/* Delete seg key (absent is fine). */
static imt_err seg_del(imt__idx_writer *w, const char *key)
{
    MDB_val kk = {strlen(key), (void *)key};
    int rc = mdb_del(w->txn, w->idx->db_seg, &kk, NULL);
    if (rc && rc != MDB_NOTFOUND) return imt__idx_mdb_err(w->idx, rc, "clearing a compacted level");
    return IMT_OK;
}

/* The cascade (index.h: IDX_LEVEL_FACTOR). The delta and the levels j..
 * become level j, where j is the largest such that level j-1 holds at
 * least IDX_LEVEL_FACTOR times the hashes of the result: so each level is
 * that many times smaller than the one before, there are about
 * log_FACTOR(N / IDX_DELTA_MAX) levels, and a delta rewrites only the
 * levels not much larger than itself. full: everything into level 0.
 * w->v (the snapshot before this import) is stale afterwards. */
imt_err imt__idx_compact(imt__idx_writer *w, int full, uint64_t *written)
{
    imt_err err = IMT_OK;
    imt__idx_view dv;
    memset(&dv, 0, sizeof dv);
    uint8_t *pdq = NULL;
    uint32_t *ent = NULL, *tab = NULL;
    char key[16];
    *written = 0;
    IMT_TRY(imt__idx_view_load(w->idx, w->txn, &w->h, &w->lv, &dv));
    int j = dv.nseg, nseg = dv.nseg;
    uint64_t n64 = dv.delta_n;
    if (full) {
        j = 0;
        n64 += dv.compacted;
    } else {
        while (j > 0) {
            uint64_t above = dv.seg[j - 1].n;
            if (j <= IDX_MAX_LEVELS && above >= (uint64_t)IDX_LEVEL_FACTOR * n64) break;
            n64 += above;
            j--;
        }
    }
    if (n64 > IDX_MAX_ENTRIES) {
        err = IMT_E_TOO_LARGE;
        goto cleanup;
    }
    size_t n = (size_t)n64;
    if (!n) goto cleanup;
    pdq = imt__malloc(n * 32);
    ent = imt__malloc(n * 4);
    if (!pdq || !ent) {
        err = IMT_E_NOMEM;
        goto cleanup;
    }
    /* older levels first, then the delta: the order of a level's hashes
     * does not matter to a search, but the bytes are a function of the
     * imports alone */
    size_t k = 0;
    for (int s = j; s < nseg; s++) {
        const imt__idx_seg *g = &dv.seg[s];
        if (!g->n) continue;
        memcpy(pdq + k * 32, g->pdq, (size_t)g->n * 32);
        memcpy(ent + k, g->ent, (size_t)g->n * 4);
        k += g->n;
    }
    for (size_t c = 0; c < dv.nchunks; c++) {
        memcpy(pdq + k * 32, dv.dpdq[c], (size_t)dv.dcount[c] * 32);
        memcpy(ent + k, dv.dent[c], (size_t)dv.dcount[c] * 4);
        k += dv.dcount[c];
    }
    if (k != n) {
        err = IMT_E_INTERNAL;
        goto cleanup;
    }
    /* the delta chunks and the merged levels go away (the view's pointers
     * die with them) */
    for (size_t c = 0; c < dv.nchunks; c++) {
        uint8_t dkey[5] = {'d'};
        imt__idx_put_be32(dkey + 1, (uint32_t)c);
        MDB_val kk = {5, dkey};
        int rc = mdb_del(w->txn, w->idx->db_seg, &kk, NULL);
        if (rc) {
            err = imt__idx_mdb_err(w->idx, rc, "clearing the delta segment");
            goto cleanup;
        }
    }
    imt__idx_view_free(&dv);
    for (int s = j; s < nseg; s++) {
        imt__idx_seg_key(key, s, "pdq", 0);
        IMT_TRY(seg_del(w, key));
        imt__idx_seg_key(key, s, "ent", 0);
        IMT_TRY(seg_del(w, key));
        for (int t = 0; t < IDX_MAX_TABLES; t++) {
            imt__idx_seg_key(key, s, "mih", t);
            IMT_TRY(seg_del(w, key));
        }
    }
    void *p = NULL;
    imt__idx_seg_key(key, j, "pdq", 0);
    IMT_TRY(seg_reserve(w, key, n * 32, &p));
    memcpy(p, pdq, n * 32);
    imt__idx_seg_key(key, j, "ent", 0);
    IMT_TRY(seg_reserve(w, key, n * 4, &p));
    memcpy(p, ent, n * 4);
    uint8_t bits[IDX_MAX_TABLES] = {0};
    int m = imt__idx_mih_params((uint32_t)n, bits);
    int start = 0;
    /* Tables are built in an aligned buffer and copied into LMDB: the space
     * LMDB reserves for a value is not 4-byte aligned. */
    size_t maxnb = 0;
    for (int t = 0; t < m; t++)
        if (((size_t)1 << bits[t]) + 1 > maxnb) maxnb = ((size_t)1 << bits[t]) + 1;
    size_t tabn;
    if (m > 0) {
        if (!imt__mul_ok(maxnb + n, 4, &tabn) || !(tab = imt__malloc(tabn))) {
            err = IMT_E_NOMEM;
            goto cleanup;
        }
    }
    for (int t = 0; t < m; t++) {
        size_t nb = ((size_t)1 << bits[t]) + 1;
        imt__idx_seg_key(key, j, "mih", t);
        uint32_t *off = tab, *ids = tab + nb;
        /* counting sort into CSR, the offsets doubling as write cursors */
        memset(off, 0, nb * 4);
        for (size_t i = 0; i < n; i++) off[imt__idx_substr(pdq + i * 32, start, bits[t])]++;
        uint32_t sum = 0;
        for (size_t b = 0; b < nb - 1; b++) {
            uint32_t c = off[b];
            off[b] = sum;
            sum += c;
        }
        off[nb - 1] = sum;
        for (size_t i = 0; i < n; i++) ids[off[imt__idx_substr(pdq + i * 32, start, bits[t])]++] = (uint32_t)i;
        for (size_t b = nb - 1; b > 0; b--) off[b] = off[b - 1];
        off[0] = 0;
        IMT_TRY(seg_reserve(w, key, (nb + n) * 4, &p));
        memcpy(p, tab, (nb + n) * 4);
        start += bits[t];
    }
    w->h.delta_n = 0;
    if (j == 0) {
        w->h.main_n = (uint32_t)n;
        w->h.mih_m = (uint32_t)m;
        memset(w->h.mih_bits, 0, sizeof w->h.mih_bits);
        memcpy(w->h.mih_bits, bits, (size_t)m);
        w->lv.count = 0;
    } else {
        imt__idx_level *l = &w->lv.l[j - 1];
        memset(l, 0, sizeof *l);
        l->n = (uint32_t)n;
        l->m = (uint32_t)m;
        memcpy(l->bits, bits, (size_t)m);
        w->lv.count = (uint32_t)j;
    }
    memset(&w->lv.l[w->lv.count], 0, (IDX_MAX_LEVELS - w->lv.count) * sizeof w->lv.l[0]);
    IMT_TRY(imt__idx_view_load(w->idx, w->txn, &w->h, &w->lv, &dv));
    IMT_TRY(imt__idx_seg_sum(&dv.seg[j], j ? w->lv.l[j - 1].sum : w->h.main_sum));
    *written = n;
cleanup:
    imt__idx_view_free(&dv);
    imt__free(pdq);
    imt__free(ent);
    imt__free(tab);
    return err;
}

imt_err imt_index_compact(imt_index *idx)
{
    imt_err err = IMT_OK;
    imt__idx_writer w;
    memset(&w, 0, sizeof w);
    if (!idx) return IMT_E_INVALID;
    err = imt__idx_writable(idx);
    if (err) return err;
    imt__idx_snapshot_end(idx);
    IMT_TRY(imt__idx_writer_begin(idx, &w));
    uint64_t written = 0;
    if (w.v.compacted + w.h.delta_n) IMT_TRY(imt__idx_compact(&w, 1, &written));
    uint64_t folded;
    IMT_TRY(imt__idx_fold_digests(&w, 1, &folded)); /* the digest deltas too */
    IMT_TRY(imt__idx_writer_commit(idx, &w, NULL, NULL));
cleanup:
    imt__idx_writer_free(&w);
    {
        imt_err e2 = imt__idx_snapshot_begin(idx);
        if (err == IMT_OK) err = e2;
    }
    return err;
}
