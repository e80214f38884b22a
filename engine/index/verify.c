/* engine/index/verify.c -- `index verify`: every structure is checked
 * against the entry records, in one read transaction. */
#include "index.h"

#include <string.h>

#define FAIL(...)                                   \
    do {                                            \
        imt__idx_set_err(idx, __VA_ARGS__);              \
        err = IMT_E_INDEX_CORRUPT;                  \
        goto cleanup;                               \
    } while (0)

imt_err imt_index_verify(imt_index *idx)
{
    imt_err err = IMT_OK;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    imt__idx_view v;
    imt__idx_header h;
    imt__idx_levels lv;
    uint64_t *loc = NULL;      /* per entry: 0 none, else 1 + position (delta after main) */
    uint64_t *members = NULL;  /* per list index: memberships counted */
    uint8_t *seen = NULL;
    uint8_t *cseen = NULL;     /* per entry id: a compact entry (IDX_DIG_COMPACT) */
    uint8_t *synth = NULL;
    size_t capsynth = 0;
    imt_list_info *lists = NULL;
    memset(&v, 0, sizeof v);
    if (!idx) return IMT_E_INVALID;
    const char *p = idx->path;
    int rc = mdb_txn_begin(idx->env, NULL, MDB_RDONLY, &txn);
    if (rc) return imt__idx_mdb_err(idx, rc, "starting a read transaction");
    IMT_TRY(imt__idx_read_header(idx, txn, &h));
    IMT_TRY(imt__idx_read_levels(idx, txn, &h, &lv));
    IMT_TRY(imt__idx_view_load(idx, txn, &h, &lv, &v));
    if (h.next_list < 1) FAIL("%s: header: next list id is 0", p);
    if (v.compacted + h.delta_n != h.n_pdq)
        FAIL("%s: header: %llu compacted + %u delta PDQ hashes, but %llu entries hold PDQ", p,
             (unsigned long long)v.compacted, (unsigned)h.delta_n, (unsigned long long)h.n_pdq);

    /* lists: the handle's inventory is of its snapshot; verify the current
     * one from this transaction */
    MDB_stat ms;
    mdb_stat(txn, idx->db_lists, &ms);
    size_t nl = ms.ms_entries;
    lists = imt__calloc(nl ? nl : 1, sizeof *lists);
    members = imt__calloc(nl ? nl : 1, sizeof *members);
    if (!lists || !members) {
        err = IMT_E_NOMEM;
        goto cleanup;
    }
    rc = mdb_cursor_open(txn, idx->db_lists, &cur);
    if (rc) {
        err = imt__idx_mdb_err(idx, rc, "reading the lists");
        goto cleanup;
    }
    MDB_val k, d;
    size_t li = 0;
    for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); rc == 0 && li < nl;
         rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT), li++) {
        const uint8_t *b = d.mv_data;
        if (k.mv_size != 4 || d.mv_size < 24) FAIL("%s: list record %zu is malformed", p, li);
        lists[li].id = imt__idx_get_u32(b);
        memcpy(&lists[li].entries, b + 16, 8);
        size_t zeros = 0;
        for (size_t i = 24; i < d.mv_size; i++) zeros += b[i] == 0;
        if (imt__idx_get_be32(k.mv_data) != lists[li].id || lists[li].id == 0 ||
            lists[li].id >= h.next_list || (zeros != 5 && zeros != 6) || b[d.mv_size - 1] != 0) {
            FAIL("%s: list record %zu (id %u) is malformed", p, li, (unsigned)lists[li].id);
        }
    }
    mdb_cursor_close(cur);
    cur = NULL;

    /* the record counts of the entries and digest tables (checked against
     * their pages at open) bound the allocations */
    size_t ne = h.next_entry;
    uint64_t bound = 0, ncompact = 0, cnt[4] = {0, 0, 0, 0}, nmem = 0;
    MDB_dbi dbs[3] = {idx->db_md5, idx->db_sha1, idx->db_sha256};
    mdb_stat(txn, idx->db_entries, &ms);
    size_t nrec = ms.ms_entries;
    for (int t = 0; t < 3; t++) bound += imt__idx_dig_count(idx, txn, t);
    if (nrec > ne || ne - nrec > bound)
        FAIL("%s: the header says %zu entries, the entries table holds %zu and the digest "
             "tables %llu keys", p, ne, nrec, (unsigned long long)bound);
    loc = imt__calloc(ne ? ne : 1, sizeof *loc);
    cseen = imt__calloc(ne / 8 + 1, 1);
    if (!loc || !cseen) {
        err = IMT_E_NOMEM;
        goto cleanup;
    }
    /* the compact entries: each id once, its class a membership of a list;
     * the main tables, then their deltas (whose keys the main tables lack) */
    for (int tt = 0; tt < (idx->has_dplus ? 6 : 3); tt++) {
        int t = tt % 3;
        mdb_cursor_close(cur);
        cur = NULL;
        rc = mdb_cursor_open(txn, tt < 3 ? dbs[t] : imt__idx_dplus_dbi(idx, t), &cur);
        if (rc) {
            err = imt__idx_mdb_err(idx, rc, "reading the digests");
            goto cleanup;
        }
        for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
            if (tt >= 3) {
                MDB_val k2 = k, d2;
                if (mdb_get(txn, dbs[t], &k2, &d2) != MDB_NOTFOUND)
                    FAIL("%s: a digest is in its table and in its delta", p);
            }
            if (d.mv_size == 4) continue;
            uint32_t id = d.mv_size == IDX_DIG_COMPACT ? imt__idx_get_u32(d.mv_data) : 0;
            if (d.mv_size != IDX_DIG_COMPACT || k.mv_size != imt__idx_dig_len[t] || id >= ne ||
                (cseen[id / 8] >> (id & 7) & 1))
                FAIL("%s: a digest's value is malformed or names entry %u twice or beyond the "
                     "header's count", p, (unsigned)id);
            cseen[id / 8] |= (uint8_t)(1u << (id & 7));
            size_t len, at;
            imt__idx_entry e;
            uint32_t list;
            int32_t cat;
            const char *lab, *ext;
            size_t mp = 0;
            imt_err e2 = imt__idx_compact_record(idx, txn, t, k.mv_data,
                                                 imt__idx_get_u32((const uint8_t *)d.mv_data + 4), &synth,
                                                 &capsynth, &len);
            if (e2 == IMT_E_NOMEM) {
                err = e2;
                goto cleanup;
            }
            if (e2 || imt__idx_entry_decode(synth, len, &e) != IMT_OK ||
                imt__idx_member_next(&e, &mp, &list, &cat, &lab, &ext) != 1)
                FAIL("%s: compact entry %u: its membership class is missing or malformed", p, (unsigned)id);
            if ((at = imt__idx_list_find(lists, nl, list)) == nl)
                FAIL("%s: compact entry %u names list %u, which does not exist", p, (unsigned)id,
                     (unsigned)list);
            members[at]++;
            nmem++;
            cnt[t + 1]++;
            ncompact++;
        }
        if (rc != MDB_NOTFOUND) {
            err = imt__idx_mdb_err(idx, rc, "reading the digests");
            goto cleanup;
        }
    }
    mdb_cursor_close(cur);
    cur = NULL;
    if (nrec + ncompact != ne)
        FAIL("%s: the header says %zu entries, the entries table holds %zu and the digest tables "
             "%llu compact ones", p, ne, nrec, (unsigned long long)ncompact);
    /* positions: the levels in order, then the delta; each PDQ hash once
     * in all of them */
    uint64_t pos = 0;
    for (int s = 0; s < v.nseg; s++)
        for (uint32_t i = 0; i < v.seg[s].n; i++, pos++) {
            uint32_t e = v.seg[s].ent[i];
            if (e >= ne || loc[e]) {
                FAIL("%s: compacted level %d position %u names entry %u (%s)", p, s, (unsigned)i,
                     (unsigned)e, e >= ne ? "no such entry" : "twice");
            }
            loc[e] = pos + 1;
        }
    for (size_t c = 0; c < v.nchunks; c++)
        for (uint32_t i = 0; i < v.dcount[c]; i++, pos++) {
            uint32_t e = imt__idx_get_u32(v.dent[c] + 4 * (size_t)i);
            if (e >= ne || loc[e]) {
                FAIL("%s: delta hash %llu names entry %u (%s)", p, (unsigned long long)pos,
                     (unsigned)e, e >= ne ? "no such entry" : "twice");
            }
            loc[e] = pos + 1;
        }

    for (size_t i = 0; i < ne; i++)
        if (loc[i] && (cseen[i / 8] >> (i & 7) & 1))
            FAIL("%s: compact entry %zu has no PDQ hash but a segment holds one for it", p, i);

    /* every entry record: the ids 0..ne-1 that are not compact, in order */
    uint64_t n = 0, nr = 0;
    rc = mdb_cursor_open(txn, idx->db_entries, &cur);
    if (rc) {
        err = imt__idx_mdb_err(idx, rc, "reading the entries");
        goto cleanup;
    }
    for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT), n++, nr++) {
        while (n < ne && (cseen[n / 8] >> (n & 7) & 1)) n++;
        if (k.mv_size != 4 || imt__idx_get_be32(k.mv_data) != n) {
            FAIL("%s: entry ids are not 0..%llu in order, less the compact ones (at %llu)", p,
                 (unsigned long long)ne, (unsigned long long)n);
        }
        imt__idx_entry e;
        if (n >= ne || imt__idx_entry_decode(d.mv_data, d.mv_size, &e) != IMT_OK) {
            FAIL("%s: entry %llu is malformed or beyond the header's count", p, (unsigned long long)n);
        }
        size_t mp = 0, nm = 0, at;
        uint32_t list;
        int32_t cat;
        const char *lab, *ext;
        int r;
        while ((r = imt__idx_member_next(&e, &mp, &list, &cat, &lab, &ext)) == 1) {
            if ((at = imt__idx_list_find(lists, nl, list)) == nl) {
                FAIL("%s: entry %llu names list %u, which does not exist", p,
                     (unsigned long long)n, (unsigned)list);
            }
            members[at]++;
            nm++;
        }
        if (r < 0 || nm != e.n_members || nm == 0) {
            FAIL("%s: entry %llu has malformed memberships", p, (unsigned long long)n);
        }
        nmem += nm;
        const uint8_t *dg[3] = {e.md5, e.sha1, e.sha256};
        static const size_t dl[3] = {16, 20, 32};
        static const char *dn[3] = {"MD5", "SHA-1", "SHA-256"};
        for (int t = 0; t < 3; t++) {
            if (!dg[t]) continue;
            cnt[t + 1]++;
            MDB_val vv;
            int in_delta;
            (void)dl;
            rc = imt__idx_dig_get(idx, txn, t, dg[t], &vv, &in_delta);
            if (rc || vv.mv_size != 4 || imt__idx_get_u32(vv.mv_data) != n) {
                FAIL("%s: entry %llu: its %s is not in the %s table (or names another entry)", p,
                     (unsigned long long)n, dn[t], dn[t]);
            }
        }
        if (e.pdq) {
            cnt[0]++;
            uint64_t l = loc[n];
            if (!l) {
                FAIL("%s: entry %llu: its PDQ hash is in no segment", p, (unsigned long long)n);
            }
            l--;
            const uint8_t *x = NULL;
            int in_level = l < v.compacted;
            for (int s = 0; s < v.nseg && !x; s++) {
                if (l < v.seg[s].n) x = v.seg[s].pdq + l * 32;
                else l -= v.seg[s].n;
            }
            if (!x) {
                size_t c = (size_t)(l / IDX_DELTA_CHUNK);
                x = v.dpdq[c] + (l % IDX_DELTA_CHUNK) * 32;
            }
            if (memcmp(x, e.pdq, 32) != 0) {
                FAIL("%s: entry %llu: the PDQ hash in the %s segment differs from the entry's", p,
                     (unsigned long long)n, in_level ? "compacted" : "delta");
            }
        } else if (loc[n]) {
            FAIL("%s: entry %llu has no PDQ hash but a segment holds one for it", p,
                 (unsigned long long)n);
        }
    }
    mdb_cursor_close(cur);
    cur = NULL;
    if (nr != nrec) {
        FAIL("%s: %llu entry records, the table says %llu", p, (unsigned long long)nr,
             (unsigned long long)nrec);
    }
    if (cnt[0] != h.n_pdq || cnt[1] != h.n_md5 || cnt[2] != h.n_sha1 || cnt[3] != h.n_sha256 ||
        nmem != h.n_members) {
        FAIL("%s: the header's counts differ from the entries", p);
    }
    for (int t = 0; t < 3; t++) {
        uint64_t nk = imt__idx_dig_count(idx, txn, t);
        if (nk != cnt[t + 1]) {
            FAIL("%s: a digest table holds %llu keys, the entries %llu", p, (unsigned long long)nk,
                 (unsigned long long)cnt[t + 1]);
        }
    }
    for (size_t i = 0; i < nl; i++)
        if (members[i] != lists[i].entries) {
            unsigned id = (unsigned)lists[i].id;
            unsigned long long a = (unsigned long long)members[i], b = (unsigned long long)lists[i].entries;
            FAIL("%s: list %u: %llu entries name it, its record says %llu", p, id, a, b);
        }

    /* the MIH tables of every level: every position once, in the bucket
     * of its substring; each level's checksum */
    for (int s = 0; s < v.nseg; s++) {
        const imt__idx_seg *g = &v.seg[s];
        if (!g->n) continue;
        imt__free(seen);
        seen = imt__malloc(((size_t)g->n + 7) / 8);
        if (!seen) {
            err = IMT_E_NOMEM;
            goto cleanup;
        }
        for (int t = 0; t < g->m; t++) {
            memset(seen, 0, ((size_t)g->n + 7) / 8);
            size_t nb = (size_t)1 << g->bits[t];
            if (g->off[t][0] != 0) FAIL("%s: level %d: MIH table %d does not start at 0", p, s, t);
            for (size_t b = 0; b < nb; b++) {
                uint32_t lo = g->off[t][b], hi = g->off[t][b + 1];
                if (hi < lo || hi > g->n)
                    FAIL("%s: level %d: MIH table %d: bucket %zu has bad offsets", p, s, t, b);
                for (uint32_t i = lo; i < hi; i++) {
                    uint32_t ps = g->ids[t][i];
                    if (ps >= g->n || (seen[ps >> 3] & (1u << (ps & 7))))
                        FAIL("%s: level %d: MIH table %d: position %u is invalid or listed twice",
                             p, s, t, (unsigned)ps);
                    seen[ps >> 3] |= (uint8_t)(1u << (ps & 7));
                    if (imt__idx_substr(g->pdq + (size_t)ps * 32, g->start[t], g->bits[t]) != b)
                        FAIL("%s: level %d: MIH table %d: position %u is in bucket %zu, not its own",
                             p, s, t, (unsigned)ps, b);
                }
            }
        }
        uint8_t sum[32];
        IMT_TRY(imt__idx_seg_sum(g, sum));
        if (memcmp(sum, s ? lv.l[s - 1].sum : h.main_sum, 32) != 0)
            FAIL("%s: the checksum of compacted level %d differs from the stored one", p, s);
    }
    {
        uint8_t sum[32], want[32];
        int present = 0;
        IMT_TRY(imt__idx_read_delta_sum(idx, txn, want, &present));
        IMT_TRY(imt__idx_delta_sum(&v, sum));
        if (present && memcmp(sum, want, 32) != 0)
            FAIL("%s: the checksum of the delta segment differs from its record's", p);
    }
    if (imt__idx_unchanged(idx) != IMT_OK) {
        /* read without a lock: what was read may be recycled pages */
        imt__idx_set_err(idx, "%s: the index changed while it was being verified; verify again", p);
        err = IMT_E_INDEX_CHANGED;
    }
cleanup:
    if (cur) mdb_cursor_close(cur);
    imt__idx_view_free(&v);
    if (txn) mdb_txn_abort(txn);
    imt__free(loc);
    imt__free(members);
    imt__free(seen);
    imt__free(cseen);
    imt__free(synth);
    imt__free(lists);
    return err;
}
