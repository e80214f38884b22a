/* engine/index/query.c -- per-thread cursors and exact PDQ / digest search.
 *
 * PDQ search over the compacted segment is multi-index hashing (Norouzi,
 * Punjani, Fleet: "Fast exact search in Hamming space with multi-index
 * hashing", 2014): the 256 bits are cut into m substrings; each table maps a
 * substring value to the positions holding it (CSR: offsets + ids). A hash
 * within r of q is within r_t of q in some table t (build_plan), so
 * probing every bucket within r_t in each table and verifying the full
 * distance finds everything. A hit is counted only in the first table whose
 * substring is within that table's radius, so no hash is reported twice and
 * no visited-set is needed. For large radii a blocked SIMD scan is cheaper:
 * the choice is made per call and level from the plan's expected cost.
 * The compacted hashes are in a few levels (compact.c), each with its own
 * tables, all searched; the delta segment is always scanned. */
#include "index.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TMP_CAP (IDX_SCAN_BLOCK * 8)

#define PROBE_CHUNK 256
#define CAND_CHUNK 1024

struct probe {
    uint32_t b[PROBE_CHUNK];
    uint32_t lo[PROBE_CHUNK], hi[PROBE_CHUNK];
    uint32_t cand[CAND_CHUNK];
    uint16_t dist[CAND_CHUNK];
};
typedef struct probe probe;

/* ---- the MIH cost plan ------------------------------------------------- */
/* Relative costs, in units of one hash compared by a blocked scan (about
 * 0.3 ns with AVX-512): a bucket probe and a candidate are random accesses
 * into the map, about 15-20 ns each once pipelined (bench_index at 1M and
 * 10M on a 2-vCPU AVX-512 machine). */
#define COST_PROBE 50.0
#define COST_CAND 50.0

static double binom(int n, int k)
{
    if (k < 0 || k > n) return 0;
    double r = 1;
    for (int i = 1; i <= k; i++) r = r * (n - k + i) / i;
    return r;
}

/* The MIH cost plan of a cursor, from its index's search view: for each
 * radius, the per-table radii. A hash within r of q has, in some
 * table t, substring distance <= r_t whenever sum(r_t + 1) >= r + 1 (the
 * pigeonhole rule, refined: Norouzi et al. 2014). Which tables get the
 * larger radii is chosen greedily by marginal cost, so uneven widths get
 * what is cheapest; the marginal costs grow with r_t, so greedy is optimal. */
static void plan_seg(const imt__idx_seg *g, int8_t (*plan)[IDX_MAX_TABLES], double *mih_cost)
{
    int rt[IDX_MAX_TABLES];
    double per_bucket[IDX_MAX_TABLES];
    for (int t = 0; t < g->m; t++) {
        rt[t] = -1;
        per_bucket[t] = COST_PROBE + COST_CAND * (double)g->n / ldexp(1.0, g->bits[t]);
    }
    double cost = 0;
    for (int r = 0; r <= 256; r++) {
        /* raise one table's radius (r + 1 increments in all) */
        int best = -1;
        double bc = 0;
        for (int t = 0; t < g->m; t++) {
            if (rt[t] >= g->bits[t]) continue;
            double mc = binom(g->bits[t], rt[t] + 1) * per_bucket[t];
            if (best < 0 || mc < bc) { best = t; bc = mc; }
        }
        if (best >= 0) {
            rt[best]++;
            cost += bc;
        }
        for (int t = 0; t < g->m; t++) plan[r][t] = (int8_t)rt[t];
        mih_cost[r] = cost;
    }
}

/* One plan per compacted level (each has its own tables). */
static imt_err build_plan(imt_cursor *c, const imt__idx_view *v)
{
    c->plan = imt__calloc(257 * (size_t)v->nseg, sizeof *c->plan);
    c->mih_cost = imt__calloc(257 * (size_t)v->nseg, sizeof *c->mih_cost);
    if (!c->plan || !c->mih_cost) return IMT_E_NOMEM;
    for (int s = 0; s < v->nseg; s++)
        if (v->seg[s].n) plan_seg(&v->seg[s], c->plan + 257 * s, c->mih_cost + 257 * s);
    return IMT_OK;
}

/* ---- cursors ----------------------------------------------------------- */
imt_err imt_cursor_open(imt_cursor **out, imt_index *idx)
{
    imt_err err = IMT_OK;
    if (!out || !idx) return IMT_E_INVALID;
    *out = NULL;
    imt_cursor *c = imt__calloc(1, sizeof *c);
    if (!c) return IMT_E_NOMEM;
    c->idx = idx;
    imt__idx_cursor_use_kernels(c, NULL);
    c->tmp = imt__malloc(TMP_CAP * sizeof *c->tmp);
    c->tmpd = imt__malloc(TMP_CAP * sizeof *c->tmpd);
    c->probe = imt__malloc(sizeof *c->probe);
    if (!c->tmp || !c->tmpd || !c->probe) {
        err = IMT_E_NOMEM;
        goto cleanup;
    }
    /* the handle's view cannot change while a cursor is open (an import
     * needs none), so the plan made here stays right */
    if (idx->view.compacted) IMT_TRY(build_plan(c, &idx->view));
    /* a transaction on the handle's snapshot (index.c: the pool), else a
     * new one, which a commit since the open makes a changed snapshot */
    c->txn = imt__idx_txn_take(idx);
    int rc = c->txn ? 0 : mdb_txn_begin(idx->env, NULL, MDB_RDONLY, &c->txn);
    if (rc == MDB_MAP_RESIZED) {
        /* a writer grew the file past the read-only map: it committed
         * since the handle's snapshot, so this is a changed snapshot */
        err = IMT_E_INDEX_CHANGED;
        goto cleanup;
    }
    if (rc) {
        err = rc == MDB_READERS_FULL ? IMT_E_BUSY : IMT_E_DB;
        goto cleanup;
    }
    /* The cursor's transaction reads the entry records and digest tables;
     * the handle's snapshot gave the PDQ arrays, the list inventory and the
     * identity. After a commit by another process they would be of two
     * versions (a membership of a list the inventory lacks, taken as
     * alerting), so the cursor must start on the handle's snapshot. Once
     * open, LMDB keeps its snapshot (with a lock; without one, every query
     * checks again). */
    if (mdb_txn_id(c->txn) != idx->snap_txnid || imt__idx_unchanged(idx) != IMT_OK) {
        err = IMT_E_INDEX_CHANGED;
        goto cleanup;
    }
    __atomic_add_fetch(&idx->open_cursors, 1, __ATOMIC_SEQ_CST);
    *out = c;
    c = NULL;
cleanup:
    if (c) {
        if (c->txn) imt__idx_txn_give(idx, c->txn);
        imt__free(c->plan);
        imt__free(c->mih_cost);
        imt__free(c->tmp);
        imt__free(c->tmpd);
        imt__free(c->probe);
        imt__free(c);
    }
    return err;
}

void imt_cursor_close(imt_cursor *c)
{
    if (!c) return;
    if (c->txn) imt__idx_txn_give(c->idx, c->txn);
    __atomic_sub_fetch(&c->idx->open_cursors, 1, __ATOMIC_SEQ_CST);
    imt__free(c->hits);
    imt__free(c->matches);
    imt__free(c->mem);
    imt__free(c->tmp);
    imt__free(c->tmpd);
    imt__free(c->probe);
    imt__free(c->ents);
    imt__free(c->synth);
    imt__free(c->plan);
    imt__free(c->mih_cost);
    if (c->vq_free) c->vq_free(c->vq);
    imt__free(c);
}

void imt_cursor_set_method(imt_cursor *c, imt_search_method m)
{
    if (c && (m == IMT_SEARCH_AUTO || m == IMT_SEARCH_MIH || m == IMT_SEARCH_SCAN))
        c->method = m;
}

void imt_cursor_counters(const imt_cursor *c, imt_query_counters *out)
{
    if (!out) return;
    if (!c) {
        memset(out, 0, sizeof *out);
        return;
    }
    *out = c->cnt;
}

/* ---- hits -------------------------------------------------------------- */
static imt_err hits_reserve(imt_cursor *c, size_t more)
{
    if (c->caphits - c->nhits >= more) return IMT_OK;
    size_t need = c->nhits + more, cap = c->caphits ? c->caphits : 256, bytes;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) return IMT_E_NOMEM;
        cap *= 2;
    }
    if (!imt__mul_ok(cap, sizeof *c->hits, &bytes)) return IMT_E_NOMEM;
    imt__idx_hit *h = imt__realloc(c->hits, bytes);
    if (!h) return IMT_E_NOMEM;
    c->hits = h;
    c->caphits = cap;
    return IMT_OK;
}

/* Scan n hashes at arr with the nq queries; ent_of gives the entry id of a
 * position (main: ent[], delta: unaligned ids). */
static imt_err scan_array(imt_cursor *c, const uint8_t *arr, size_t n, const uint32_t *ent,
                          const uint8_t *dent, const imt_pdq *q, int nq, int radius,
                          uint32_t qi)
{
    imt_err err = IMT_OK;
    imt__idx_scan_fn scan = c->kern->scan;
    for (size_t b = 0; b < n; b += IDX_SCAN_BLOCK) {
        size_t bn = n - b < IDX_SCAN_BLOCK ? n - b : IDX_SCAN_BLOCK;
        size_t k = scan(arr + b * 32, bn, q[0].bytes, nq, radius, c->tmp, c->tmpd);
        if (!k) continue;
        IMT_TRY(hits_reserve(c, k));
        for (size_t i = 0; i < k; i++) {
            size_t pos = b + c->tmp[i];
            imt__idx_hit *h = &c->hits[c->nhits++];
            h->entry = ent ? ent[pos] : imt__idx_get_u32(dent + 4 * pos);
            h->dist = (uint16_t)(c->tmpd[i] & 511);
            h->variant = (uint8_t)(c->tmpd[i] >> 9);
            h->pad = 0;
            h->query = qi;
        }
    }
    c->cnt.candidates += (uint64_t)n * (uint64_t)nq;
cleanup:
    return err;
}

/* MIH probing runs in chunks of buckets, in passes, so that the random
 * accesses of a chunk (offsets, then id runs, then hashes) are issued
 * together and overlap instead of waiting one after the other. */

/* Verify pr->cand[0..n) against q: full distance, then the rule that a
 * hash counts only in the first table whose substring is within radius. */
static imt_err verify_cands(imt_cursor *c, const imt__idx_seg *v, probe *pr, size_t n,
                            const uint8_t *q, int radius, int t, const uint32_t *subq,
                            const int8_t *plan, int j, uint32_t qi)
{
    imt_err err = IMT_OK;
    c->cnt.candidates += n;
    c->kern->dist(v->pdq, pr->cand, n, q, pr->dist);
    for (size_t i = 0; i < n; i++) {
        if (pr->dist[i] > radius) continue;
        uint32_t pos = pr->cand[i];
        const uint8_t *x = v->pdq + (size_t)pos * 32;
        int earlier = 0;
        for (int u = 0; u < t && !earlier; u++) {
            if (plan[u] < 0) continue;
            uint32_t sx = imt__idx_substr(x, v->start[u], v->bits[u]);
            if (__builtin_popcount(sx ^ subq[u]) <= plan[u]) earlier = 1;
        }
        if (earlier) continue;
        IMT_TRY(hits_reserve(c, 1));
        imt__idx_hit *h = &c->hits[c->nhits++];
        h->entry = v->ent[pos];
        h->dist = pr->dist[i];
        h->variant = (uint8_t)j;
        h->pad = 0;
        h->query = qi;
    }
cleanup:
    return err;
}

/* Probe the nb buckets in pr->b of table t. */
static imt_err probe_chunk(imt_cursor *c, const imt__idx_seg *v, probe *pr, size_t nb,
                           const uint8_t *q, int radius, int t, const uint32_t *subq,
                           const int8_t *plan, int j, uint32_t qi)
{
    imt_err err = IMT_OK;
    const uint32_t *off = v->off[t], *ids = v->ids[t];
    c->cnt.buckets += nb;
    for (size_t i = 0; i < nb; i++) __builtin_prefetch(&off[pr->b[i]]);
    for (size_t i = 0; i < nb; i++) {
        pr->lo[i] = off[pr->b[i]];
        pr->hi[i] = off[pr->b[i] + 1];
        if (pr->hi[i] < pr->lo[i] || pr->hi[i] > v->n) {
            err = IMT_E_INDEX_CORRUPT;
            goto cleanup;
        }
        if (pr->hi[i] > pr->lo[i]) __builtin_prefetch(&ids[pr->lo[i]]);
    }
    size_t nc = 0;
    for (size_t i = 0; i < nb; i++) {
        for (uint32_t k = pr->lo[i]; k < pr->hi[i]; k++) {
            uint32_t pos = ids[k];
            if (pos >= v->n) {
                err = IMT_E_INDEX_CORRUPT;
                goto cleanup;
            }
            __builtin_prefetch(v->pdq + (size_t)pos * 32);
            pr->cand[nc++] = pos;
            if (nc == CAND_CHUNK) {
                IMT_TRY(verify_cands(c, v, pr, nc, q, radius, t, subq, plan, j, qi));
                nc = 0;
            }
        }
    }
    if (nc) IMT_TRY(verify_cands(c, v, pr, nc, q, radius, t, subq, plan, j, qi));
cleanup:
    return err;
}

static imt_err mih_one(imt_cursor *c, const imt__idx_seg *v, int seg, const uint8_t *q, int radius,
                       int j, uint32_t qi)
{
    imt_err err = IMT_OK;
    uint32_t subq[IDX_MAX_TABLES];
    const int8_t *plan = c->plan[257 * seg + radius];
    probe *pr = c->probe;
    for (int t = 0; t < v->m; t++) subq[t] = imt__idx_substr(q, v->start[t], v->bits[t]);
    for (int t = 0; t < v->m; t++) {
        int rt = plan[t], w = v->bits[t];
        uint64_t lim = (uint64_t)1 << w;
        size_t nb = 0;
        for (int k = 0; k <= rt && k <= w; k++) {
            /* every w-bit mask with k bits set (Gosper's hack) */
            uint64_t mask = k ? ((uint64_t)1 << k) - 1 : 0;
            while (mask < lim) {
                pr->b[nb++] = subq[t] ^ (uint32_t)mask;
                if (nb == PROBE_CHUNK) {
                    IMT_TRY(probe_chunk(c, v, pr, nb, q, radius, t, subq, plan, j, qi));
                    nb = 0;
                }
                if (!k) break;
                /* the next mask with k bits (Gosper's hack); the division
                 * by the lowest set bit is a shift */
                int tz = __builtin_ctzll(mask);
                uint64_t r = mask + ((uint64_t)1 << tz);
                mask = (((r ^ mask) >> 2) >> tz) | r;
            }
        }
        if (nb) IMT_TRY(probe_chunk(c, v, pr, nb, q, radius, t, subq, plan, j, qi));
    }
cleanup:
    return err;
}

/* MIH or the scan of level seg for nq variants at radius: the plan's
 * expected cost against a pass over the level. In a batch the scan is
 * compute-bound (each block is compared with many queries while in cache):
 * one unit per hash and variant; a lone query's pass is bound by memory
 * bandwidth, about 8 units per hash, which the extra variants share. */
static int use_mih(const imt_cursor *c, const imt__idx_seg *g, int seg, int nq, int radius, int batch)
{
    if (c->method == IMT_SEARCH_MIH) return 1;
    if (c->method == IMT_SEARCH_SCAN || !g->m) return 0;
    double per_hash = batch ? (double)nq : (nq > 8 ? (double)nq : 8.0);
    return c->mih_cost[257 * seg + radius] * nq < (double)g->n * per_hash;
}

/* The scan of one level for a batch of queries: each block of hashes is
 * compared with every query while it sits in cache. */
static imt_err scan_batch(imt_cursor *c, const imt__idx_seg *v, const imt_pdq *q, size_t nqueries,
                          int nvar, int radius)
{
    imt_err err = IMT_OK;
    imt__idx_scan_fn scan = c->kern->scan;
    c->cnt.scans += (uint64_t)nqueries * (uint64_t)nvar;
    c->cnt.candidates += (uint64_t)v->n * nqueries * (uint64_t)nvar;
    for (size_t b = 0; b < v->n; b += IDX_SCAN_BLOCK) {
        size_t bn = v->n - b < IDX_SCAN_BLOCK ? v->n - b : IDX_SCAN_BLOCK;
        /* single-hash queries go 8 to a kernel call (one load of each hash
         * for 8 queries); dihedral queries one query (8 variants) a call */
        size_t step = nvar == 1 ? 8 : 1;
        for (size_t i = 0; i < nqueries; i += step) {
            int nk = nvar == 1 ? (int)(nqueries - i < 8 ? nqueries - i : 8) : nvar;
            size_t k = scan(v->pdq + b * 32, bn, q[i * (size_t)nvar].bytes, nk, radius, c->tmp,
                            c->tmpd);
            if (!k) continue;
            IMT_TRY(hits_reserve(c, k));
            for (size_t x = 0; x < k; x++) {
                imt__idx_hit *h = &c->hits[c->nhits++];
                unsigned j = c->tmpd[x] >> 9;
                h->entry = v->ent[b + c->tmp[x]];
                h->dist = (uint16_t)(c->tmpd[x] & 511);
                h->variant = (uint8_t)(nvar == 1 ? 0 : j);
                h->pad = 0;
                h->query = (uint32_t)(nvar == 1 ? i + j : i);
            }
        }
    }
cleanup:
    return err;
}

/* Search of level seg for queries q[0..nq) (the variants of one query) at
 * radius; appends hits, query index qi for all. Each (entry, variant) at
 * most once. */
static imt_err search_seg(imt_cursor *c, const imt__idx_seg *g, int seg, const imt_pdq *q, int nq,
                          int radius, uint32_t qi)
{
    imt_err err = IMT_OK;
    if (use_mih(c, g, seg, nq, radius, 0)) {
        for (int j = 0; j < nq; j++) IMT_TRY(mih_one(c, g, seg, q[j].bytes, radius, j, qi));
    } else {
        c->cnt.scans += (uint64_t)nq;
        IMT_TRY(scan_array(c, g->pdq, g->n, g->ent, NULL, q, nq, radius, qi));
    }
cleanup:
    return err;
}

/* Every level (MIH or the scan, chosen per level: a batch of queries
 * scans a level once for all when that is cheaper), then the delta
 * chunks. A hash is in exactly one level or the delta (verify checks it),
 * so each (query, entry, variant) is found at most once. */
static imt_err search_all(imt_cursor *c, const imt__idx_view *v, const imt_pdq *q, size_t nqueries,
                          int nvar, int radius)
{
    imt_err err = IMT_OK;
    c->cnt.queries += (uint64_t)nqueries * (uint64_t)nvar;
    for (int s = 0; s < v->nseg; s++) {
        const imt__idx_seg *g = &v->seg[s];
        if (!g->n) continue;
        if (nqueries > 1 && !use_mih(c, g, s, nvar, radius, 1)) {
            IMT_TRY(scan_batch(c, g, q, nqueries, nvar, radius));
        } else {
            for (size_t i = 0; i < nqueries; i++)
                IMT_TRY(search_seg(c, g, s, q + i * (size_t)nvar, nvar, radius, (uint32_t)i));
        }
    }
    for (size_t i = 0; i < nqueries; i++)
        for (size_t ch = 0; ch < v->nchunks; ch++)
            IMT_TRY(scan_array(c, v->dpdq[ch], v->dcount[ch], NULL, v->dent[ch],
                               q + i * (size_t)nvar, nvar, radius, (uint32_t)i));
cleanup:
    return err;
}

/* ---- results ----------------------------------------------------------- */
static int cmp_hit_entry(const void *a, const void *b)
{
    const imt__idx_hit *x = a, *y = b;
    if (x->query != y->query) return x->query < y->query ? -1 : 1;
    if (x->entry != y->entry) return x->entry < y->entry ? -1 : 1;
    if (x->dist != y->dist) return x->dist < y->dist ? -1 : 1;
    return (int)x->variant - (int)y->variant;
}

static int cmp_hit_dist(const void *a, const void *b)
{
    const imt__idx_hit *x = a, *y = b;
    if (x->query != y->query) return x->query < y->query ? -1 : 1;
    if (x->dist != y->dist) return x->dist < y->dist ? -1 : 1;
    if (x->entry != y->entry) return x->entry < y->entry ? -1 : 1;
    return 0;
}

static imt_err get_entry(imt_cursor *c, uint32_t id, imt__idx_entry *e)
{
    uint8_t key[4];
    if (c->synth_on && id == c->synth_id) /* the compact entry of a digest query */
        return imt__idx_entry_decode(c->synth, c->nsynth, e);
    imt__idx_put_be32(key, id);
    MDB_val k = {4, key}, d;
    int rc = mdb_get(c->txn, c->idx->db_entries, &k, &d);
    if (rc == MDB_NOTFOUND) return IMT_E_INDEX_CORRUPT;
    if (rc) return IMT_E_DB;
    return imt__idx_entry_decode(d.mv_data, d.mv_size, e);
}

/* Turn c->hits[0..n) (unique) into matches with memberships. */
static imt_err build_matches(imt_cursor *c, imt_hash_kind kind, const imt_match **out,
                             size_t *nout)
{
    imt_err err = IMT_OK;
    size_t n = c->nhits, bytes, total = 0;
    if (n > c->capmatches) {
        if (!imt__mul_ok(n, sizeof *c->matches, &bytes)) return IMT_E_NOMEM;
        imt_match *m = imt__realloc(c->matches, bytes);
        if (!m) return IMT_E_NOMEM;
        c->matches = m;
        c->capmatches = n;
    }
    if (n > c->capents) {
        if (!imt__mul_ok(n, sizeof *c->ents, &bytes)) return IMT_E_NOMEM;
        imt__idx_entry *p = imt__realloc(c->ents, bytes);
        if (!p) return IMT_E_NOMEM;
        c->ents = p;
        c->capents = n;
    }
    /* the records stay mapped while the cursor's transaction lives */
    for (size_t i = 0; i < n; i++) {
        IMT_TRY(get_entry(c, c->hits[i].entry, &c->ents[i]));
        total += c->ents[i].n_members;
    }
    if (total > c->capmem) {
        if (!imt__mul_ok(total, sizeof *c->mem, &bytes)) return IMT_E_NOMEM;
        imt_membership *m = imt__realloc(c->mem, bytes);
        if (!m) return IMT_E_NOMEM;
        c->mem = m;
        c->capmem = total;
    }
    size_t mi = 0;
    for (size_t i = 0; i < n; i++) {
        const imt__idx_entry e = c->ents[i];
        imt_match *m = &c->matches[i];
        memset(m, 0, sizeof *m);
        m->kind = kind;
        m->entry = c->hits[i].entry;
        m->distance = kind == IMT_KIND_PDQ ? c->hits[i].dist : 0;
        m->variant = (imt_dihedral)c->hits[i].variant;
        if (e.pdq) memcpy(m->pdq.bytes, e.pdq, 32);
        m->quality = e.quality;
        m->members = c->mem + mi;
        m->query = c->hits[i].query;
        size_t pos = 0;
        uint32_t list;
        int32_t cat;
        const char *label, *ext;
        int r;
        while ((r = imt__idx_member_next(&e, &pos, &list, &cat, &label, &ext)) == 1) {
            if (mi >= total) return IMT_E_INDEX_CORRUPT;
            imt_membership *ms = &c->mem[mi++];
            ms->list_id = list;
            ms->category = cat;
            ms->category_label = label;
            ms->external_id = ext;
            ms->disposition = imt__idx_disposition(c->idx, list, cat);
            m->n_members++;
        }
        if (r < 0 || m->n_members != e.n_members) return IMT_E_INDEX_CORRUPT;
    }
    *out = c->matches;
    *nout = n;
cleanup:
    return err;
}

/* The end of every query: without a lock, a commit since the handle's
 * snapshot voids what was read (index.h: imt__idx_unchanged). */
static imt_err finish(const imt_cursor *c, imt_err err, const imt_match **out, size_t *n)
{
    imt_err e = imt__idx_unchanged(c->idx);
    if (e != IMT_OK) err = e;
    if (err != IMT_OK) {
        *out = NULL;
        *n = 0;
    }
    return err;
}

imt_err imt_query_pdq_batch(imt_cursor *c, const imt_pdq *q, size_t nqueries, int nvar,
                            int radius, const imt_match **out, size_t *n)
{
    imt_err err = IMT_OK;
    if (!out || !n) return IMT_E_INVALID;
    *out = NULL;
    *n = 0;
    if (!c || (!q && nqueries) || nvar < 1 || nvar > IMT_DIH__COUNT || radius < 0 ||
        radius > 256 || nqueries > UINT32_MAX)
        return IMT_E_INVALID;
    c->nhits = 0;
    IMT_TRY(search_all(c, &c->idx->view, q, nqueries, nvar, radius));
    if (c->nhits > 1) {
        /* one hit per (query, entry): the smallest distance, then the first
         * variant */
        qsort(c->hits, c->nhits, sizeof *c->hits, cmp_hit_entry);
        size_t w = 0;
        for (size_t i = 0; i < c->nhits; i++) {
            if (w && c->hits[w - 1].query == c->hits[i].query &&
                c->hits[w - 1].entry == c->hits[i].entry)
                continue;
            c->hits[w++] = c->hits[i];
        }
        c->nhits = w;
        qsort(c->hits, c->nhits, sizeof *c->hits, cmp_hit_dist);
    }
    IMT_TRY(build_matches(c, IMT_KIND_PDQ, out, n));
cleanup:
    return finish(c, err, out, n);
}

imt_err imt_query_pdq(imt_cursor *c, const imt_pdq *q, int nq, int radius,
                      const imt_match **out, size_t *n)
{
    return imt_query_pdq_batch(c, q, 1, nq, radius, out, n);
}

imt_err imt_query_digest(imt_cursor *c, imt_hash_kind kind, const uint8_t *digest,
                         const imt_match **out, size_t *n)
{
    imt_err err = IMT_OK;
    if (!out || !n) return IMT_E_INVALID;
    *out = NULL;
    *n = 0;
    if (!c || !digest) return IMT_E_INVALID;
    int ki;
    switch (kind) {
    case IMT_KIND_MD5: ki = 0; break;
    case IMT_KIND_SHA1: ki = 1; break;
    case IMT_KIND_SHA256: ki = 2; break;
    default: return IMT_E_INVALID;
    }
    c->cnt.queries++;
    c->nhits = 0;
    MDB_val d;
    int in_delta;
    int rc = imt__idx_dig_get(c->idx, c->txn, ki, digest, &d, &in_delta);
    if (rc == MDB_NOTFOUND) goto cleanup;
    if (rc) {
        err = IMT_E_DB;
        goto cleanup;
    }
    if (d.mv_size != 4 && d.mv_size != IDX_DIG_COMPACT) {
        err = IMT_E_INDEX_CORRUPT;
        goto cleanup;
    }
    IMT_TRY(hits_reserve(c, 1));
    c->hits[0].entry = imt__idx_get_u32(d.mv_data);
    if (d.mv_size == IDX_DIG_COMPACT) {
        /* a compact entry: its record is made from the digest and its class */
        uint32_t cls = imt__idx_get_u32((const uint8_t *)d.mv_data + 4);
        IMT_TRY(imt__idx_compact_record(c->idx, c->txn, ki, digest, cls, &c->synth, &c->capsynth,
                                        &c->nsynth));
        c->synth_id = c->hits[0].entry;
        c->synth_on = 1;
    }
    c->hits[0].dist = 0;
    c->hits[0].variant = 0;
    c->hits[0].query = 0;
    c->nhits = 1;
    IMT_TRY(build_matches(c, kind, out, n));
cleanup:
    c->synth_on = 0;
    return finish(c, err, out, n);
}
