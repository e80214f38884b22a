/* engine/index/compact.c -- rebuilding the compacted PDQ segment (the
 * array, entry ids and the MIH tables) from itself and the delta, inside
 * the caller's write transaction (its checksum: sums.c). */
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

/* Rebuild the compacted segment from itself and the delta (w->v holds the
 * snapshot before this import; the new hashes are in the delta chunks
 * written already, so re-load the delta view). */
imt_err imt__idx_compact(imt__idx_writer *w)
{
    imt_err err = IMT_OK;
    imt__idx_view dv;
    memset(&dv, 0, sizeof dv);
    uint8_t *pdq = NULL;
    uint32_t *ent = NULL, *tab = NULL;
    IMT_TRY(imt__idx_view_load(w->idx, w->txn, &w->h, &dv));
    uint64_t n64 = (uint64_t)dv.main_n + dv.delta_n;
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
    if (dv.main_n) {
        memcpy(pdq, dv.pdq, (size_t)dv.main_n * 32);
        memcpy(ent, dv.ent, (size_t)dv.main_n * 4);
    }
    size_t k = dv.main_n;
    for (size_t c = 0; c < dv.nchunks; c++) {
        memcpy(pdq + k * 32, dv.dpdq[c], (size_t)dv.dcount[c] * 32);
        memcpy(ent + k, dv.dent[c], (size_t)dv.dcount[c] * 4);
        k += dv.dcount[c];
    }
    /* the delta chunks go away (the view's pointers die with them) */
    for (size_t c = 0; c < dv.nchunks; c++) {
        uint8_t key[5] = {'d'};
        imt__idx_put_be32(key + 1, (uint32_t)c);
        MDB_val kk = {5, key};
        int rc = mdb_del(w->txn, w->idx->db_seg, &kk, NULL);
        if (rc) {
            err = imt__idx_mdb_err(w->idx, rc, "clearing the delta segment");
            goto cleanup;
        }
    }
    imt__idx_view_free(&dv);
    /* old tables of another shape */
    for (uint32_t t = 0; t < IDX_MAX_TABLES; t++) {
        char key[8];
        snprintf(key, sizeof key, "mih%02u", (unsigned)t & 31u);
        MDB_val kk = {5, key};
        int rc = mdb_del(w->txn, w->idx->db_seg, &kk, NULL);
        if (rc && rc != MDB_NOTFOUND) {
            err = imt__idx_mdb_err(w->idx, rc, "clearing the MIH tables");
            goto cleanup;
        }
    }
    void *p = NULL;
    IMT_TRY(seg_reserve(w, "pdq", n * 32, &p));
    memcpy(p, pdq, n * 32);
    IMT_TRY(seg_reserve(w, "ent", n * 4, &p));
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
        char key[8];
        snprintf(key, sizeof key, "mih%02u", (unsigned)t & 31u);
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
    w->h.main_n = (uint32_t)n;
    w->h.delta_n = 0;
    w->h.mih_m = (uint32_t)m;
    memset(w->h.mih_bits, 0, sizeof w->h.mih_bits);
    memcpy(w->h.mih_bits, bits, (size_t)m);
    IMT_TRY(imt__idx_view_load(w->idx, w->txn, &w->h, &dv));
    IMT_TRY(imt__idx_main_sum(&dv, w->h.main_sum));
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
    if (w.h.main_n + w.h.delta_n) IMT_TRY(imt__idx_compact(&w));
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
