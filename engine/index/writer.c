/* engine/index/writer.c -- one LMDB write transaction of an import: new
 * entries appended in id order, memberships joined to entries holding one
 * of the record's hashes already, the digest tables written in key order,
 * new PDQ hashes appended to the delta segment, the list records and the
 * header; a crash before the commit leaves the index as it was (LMDB
 * commits by switching meta pages). */
#include "index.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

imt_err imt__idx_writable(imt_index *idx)
{
    if (idx->read_only) {
        imt__idx_set_err(idx, "%s: the index is open read-only", idx->path);
        return IMT_E_READONLY;
    }
    if (__atomic_load_n(&idx->open_cursors, __ATOMIC_SEQ_CST)) {
        imt__idx_set_err(idx, "%s: close every cursor before writing", idx->path);
        return IMT_E_BUSY;
    }
    return IMT_OK;
}

/* A growable byte buffer for records. */
static imt_err buf_add(imt__idx_buf *b, const void *data, size_t len)
{
    if (b->n + len > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + len) cap *= 2;
        uint8_t *p = imt__realloc(b->p, cap);
        if (!p) return IMT_E_NOMEM;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, len);
    b->n += len;
    return IMT_OK;
}

static imt_err add_member(imt__idx_buf *b, uint32_t list, int32_t cat, const char *label, const char *ext)
{
    imt_err err = IMT_OK;
    uint32_t c = (uint32_t)cat;
    IMT_TRY(buf_add(b, &list, 4));
    IMT_TRY(buf_add(b, &c, 4));
    IMT_TRY(buf_add(b, label, strlen(label) + 1));
    IMT_TRY(buf_add(b, ext, strlen(ext) + 1));
cleanup:
    return err;
}

/* Encode a new entry record. */
static imt_err encode_entry(imt__idx_buf *b, unsigned kinds, int quality, const uint8_t *pdq,
                            const uint8_t *md5, const uint8_t *sha1, const uint8_t *sha256,
                            unsigned n_members, const void *members, size_t mlen)
{
    imt_err err = IMT_OK;
    uint8_t h[4] = {(uint8_t)kinds, (uint8_t)(int8_t)quality, (uint8_t)(n_members & 255),
                    (uint8_t)(n_members >> 8)};
    b->n = 0;
    IMT_TRY(buf_add(b, h, 4));
    if (kinds & KB_PDQ) IMT_TRY(buf_add(b, pdq, 32));
    if (kinds & KB_MD5) IMT_TRY(buf_add(b, md5, 16));
    if (kinds & KB_SHA1) IMT_TRY(buf_add(b, sha1, 20));
    if (kinds & KB_SHA256) IMT_TRY(buf_add(b, sha256, 32));
    if (mlen) IMT_TRY(buf_add(b, members, mlen));
cleanup:
    return err;
}

/* Exact PDQ lookup in the compacted levels (radius 0 through table 0 of
 * each: the hash's own bucket holds it if present). */
static int main_lookup(const imt__idx_view *v, const uint8_t *q, uint32_t *entry)
{
    for (int s = 0; s < v->nseg; s++) {
        const imt__idx_seg *g = &v->seg[s];
        if (!g->n) continue;
        uint32_t b = imt__idx_substr(q, g->start[0], g->bits[0]);
        for (uint32_t i = g->off[0][b]; i < g->off[0][b + 1]; i++) {
            uint32_t pos = g->ids[0][i];
            if (pos < g->n && memcmp(g->pdq + (size_t)pos * 32, q, 32) == 0) {
                *entry = g->ent[pos];
                return 1;
            }
        }
    }
    return 0;
}

static int cmp_pdq_ent(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

static imt_err newpdq_add(imt__idx_writer *w, const uint8_t *pdq, uint32_t entry)
{
    if (w->nnew == w->capnew) {
        size_t cap = w->capnew ? w->capnew * 2 : 1024, bytes;
        if (!imt__mul_ok(cap, sizeof *w->newpdq, &bytes)) return IMT_E_NOMEM;
        imt__idx_pdq_ent *p = imt__realloc(w->newpdq, bytes);
        if (!p) return IMT_E_NOMEM;
        w->newpdq = p;
        w->capnew = cap;
    }
    memcpy(w->newpdq[w->nnew].pdq, pdq, 32);
    w->newpdq[w->nnew].entry = entry;
    w->nnew++;
    return IMT_OK;
}

static imt_err load_delta_sorted(imt__idx_writer *w)
{
    size_t n = w->v.delta_n, bytes;
    if (!n) return IMT_OK;
    if (!imt__mul_ok(n, sizeof *w->delta_old, &bytes)) return IMT_E_NOMEM;
    w->delta_old = imt__malloc(bytes);
    if (!w->delta_old) return IMT_E_NOMEM;
    size_t k = 0;
    for (size_t c = 0; c < w->v.nchunks; c++)
        for (uint32_t i = 0; i < w->v.dcount[c]; i++, k++) {
            memcpy(w->delta_old[k].pdq, w->v.dpdq[c] + (size_t)i * 32, 32);
            w->delta_old[k].entry = imt__idx_get_u32(w->v.dent[c] + 4 * (size_t)i);
        }
    w->ndelta_old = k;
    qsort(w->delta_old, k, sizeof *w->delta_old, cmp_pdq_ent);
    return IMT_OK;
}

static int pdq_lookup(imt__idx_writer *w, const uint8_t *q, uint32_t *entry)
{
    if (main_lookup(&w->v, q, entry)) return 1;
    if (w->ndelta_old) {
        imt__idx_pdq_ent key;
        memcpy(key.pdq, q, 32);
        const imt__idx_pdq_ent *f = bsearch(&key, w->delta_old, w->ndelta_old, sizeof key, cmp_pdq_ent);
        if (f) {
            *entry = f->entry;
            return 1;
        }
    }
    return 0;
}

static imt_err dig_lookup(imt__idx_writer *w, int k, const uint8_t *d, uint32_t *entry, uint32_t *cls,
                          int *found)
{
    MDB_val val;
    int in_delta;
    int rc = imt__idx_dig_get(w->idx, w->txn, k, d, &val, &in_delta);
    *found = 0;
    if (rc == MDB_NOTFOUND) return IMT_OK;
    if (rc) return imt__idx_mdb_err(w->idx, rc, "looking up a digest");
    if (val.mv_size != 4 && val.mv_size != IDX_DIG_COMPACT) {
        imt__idx_set_err(w->idx, "%s: a digest record is malformed", w->idx->path);
        return IMT_E_INDEX_CORRUPT;
    }
    *entry = imt__idx_get_u32(val.mv_data);
    *cls = val.mv_size == 4 ? IDX_CLS_NONE : imt__idx_get_u32((const uint8_t *)val.mv_data + 4);
    *found = 1;
    return IMT_OK;
}

/* The batch's digests of kind k looked up in their table in key order (the
 * tables are written only after the merge, so the answers hold for all of
 * it): pre[i] the entry of record i's digest, UINT32_MAX when absent or
 * when r has none, and pcls[i] its class (IDX_CLS_NONE: a full entry;
 * a compact one may have been promoted since: load_old). In key order the B-tree pages are met in order, not at
 * random: a later batch's lookups in a large table cost about a sequential
 * pass instead of a cache miss per level per record. */
static imt_err prelookup(imt__idx_writer *w, const imt__idx_sink *s, int k, uint32_t *pre, uint32_t *pcls)
{
    static const unsigned kb[3] = {KB_MD5, KB_SHA1, KB_SHA256};
    imt_err err = IMT_OK;
    imt__idx_kv *a = NULL;
    size_t m = 0, len, bytes;
    for (size_t i = 0; i < s->n; i++) pre[i] = pcls[i] = UINT32_MAX;
    uint64_t have = imt__idx_dig_count(w->idx, w->txn, k);
    if (have == 0 && w->nruns[k] == 0) return IMT_OK;
    if (!imt__mul_ok(s->n, sizeof *a, &bytes) || !(a = imt__malloc(bytes ? bytes : 1)))
        return IMT_E_NOMEM;
    for (size_t i = 0; i < s->n; i++) {
        if (!(s->recs[i].kinds & kb[k])) continue;
        a[m].key = imt__idx_key64(imt__idx_srec_hash(s, &s->recs[i], kb[k], &len));
        a[m].idx = (uint32_t)i;
        a[m].pad = 0;
        m++;
    }
    IMT_TRY(imt__idx_sort_by_hash(s, kb[k], a, m));
    if (have)
        for (size_t i = 0; i < m; i++) {
            uint32_t e, c;
            int f;
            const uint8_t *h = imt__idx_srec_hash(s, &s->recs[a[i].idx], kb[k], &len);
            IMT_TRY(dig_lookup(w, k, h, &e, &c, &f));
            if (f) {
                pre[a[i].idx] = e;
                pcls[a[i].idx] = c;
            }
        }
    /* the earlier batches' runs: only where the filter does not rule a
     * digest out */
    if (w->nruns[k]) IMT_TRY(imt__idx_run_lookup(w, s, k, a, m, pre, pcls));
cleanup:
    imt__free(a);
    return err;
}

static imt_err dig_add(imt__idx_writer *w, int k, uint32_t rec_idx, uint32_t entry, size_t cap)
{
    if (!w->dig[k]) {
        w->dig[k] = imt__calloc(cap ? cap : 1, sizeof *w->dig[k]);
        if (!w->dig[k]) return IMT_E_NOMEM;
    }
    imt__idx_kv *e = &w->dig[k][w->ndig[k]++];
    e->idx = rec_idx;
    e->pad = entry;
    return IMT_OK;
}

/* The memberships of record r, for list ids first_list + slot, into w->mem;
 * counts them per slot. */
static imt_err rec_members(imt__idx_writer *w, const imt__idx_sink *s, const imt__idx_srec *r, uint32_t first_list,
                           uint64_t *per_slot)
{
    imt_err err = IMT_OK;
    for (uint32_t j = 0; j < r->nmem; j++) {
        const imt__idx_smem *m = &s->mem[r->mem + j];
        IMT_TRY(add_member(&w->mem, first_list + m->slot, m->category, imt__idx_sink_str(s, m->label),
                           imt__idx_sink_str(s, m->ext)));
        per_slot[m->slot]++;
    }
cleanup:
    return err;
}

/* ---- the batch table: hashes indexed by this batch --------------------- */
static uint64_t bt_key(const uint8_t *h, int k)
{
    return (imt__idx_key64(h) & ~(uint64_t)3) | (uint64_t)k;
}

static size_t bt_slot(const imt__idx_writer *w, uint64_t key)
{
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 17) & (w->btcap - 1);
}

/* kinds 0..3: PDQ, MD5, SHA-1, SHA-256 (bit 1 << k) */
static int bt_find(const imt__idx_writer *w, const imt__idx_sink *s, int k, const uint8_t *h, uint32_t *entry,
                   uint32_t *rec)
{
    uint64_t key = bt_key(h, k);
    size_t len;
    for (size_t i = bt_slot(w, key);; i = (i + 1) & (w->btcap - 1)) {
        const imt__idx_kv *e = &w->bt[i];
        if (!e->idx) return 0;
        if (e->key != key) continue;
        const uint8_t *he = imt__idx_srec_hash(s, &s->recs[e->idx - 1], 1u << k, &len);
        if (memcmp(he, h, len) == 0) {
            *entry = e->pad;
            *rec = e->idx - 1;
            return 1;
        }
    }
}

static void bt_put(imt__idx_writer *w, int k, const uint8_t *h, uint32_t rec, uint32_t entry)
{
    uint64_t key = bt_key(h, k);
    size_t i = bt_slot(w, key);
    while (w->bt[i].idx) i = (i + 1) & (w->btcap - 1);
    w->bt[i].key = key;
    w->bt[i].idx = rec + 1;
    w->bt[i].pad = entry;
}

/* In-list repeats: record r (line) found entry `old`, which already names
 * one of r's lists. Rebuilds the memberships into w->mem: a membership of
 * one of r's lists takes the more severe of the two category/label pairs by
 * the list's policy (the earlier on a tie; the earlier external id stays),
 * r's other memberships are appended. *added: memberships appended. */
static imt_err merge_repeat(imt__idx_writer *w, imt__idx_sink *s, const imt__idx_srec *r, const imt__idx_entry *old,
                            uint32_t first_list, const imt__idx_list_meta *metas, size_t nmeta,
                            uint64_t *per_slot, imt_import_stats *st, unsigned *added, int *changed)
{
    imt_err err = IMT_OK;
    size_t pos = 0;
    uint32_t list;
    int32_t cat;
    const char *label, *ext;
    int rc, conflict = 0;
    *added = 0;
    *changed = 0;
    w->mem.n = 0;
    while ((rc = imt__idx_member_next(old, &pos, &list, &cat, &label, &ext)) == 1) {
        const imt__idx_smem *m = NULL;
        for (uint32_t j = 0; j < r->nmem && !m; j++)
            if (first_list + s->mem[r->mem + j].slot == list) m = &s->mem[r->mem + j];
        if (m && (m->category != cat || strcmp(imt__idx_sink_str(s, m->label), label) != 0)) {
            const char *pol = metas[m->slot < nmeta ? m->slot : 0].policy;
            imt_disposition d0 = imt__idx_policy_eval(pol, cat), d1 = imt__idx_policy_eval(pol, m->category);
            if (!conflict && st->conflicts < 1)
                snprintf(st->conflict_example, sizeof st->conflict_example,
                         "%s:%llu: repeats an earlier record of the list with category %d "
                         "(%s) where it had %d (%s); kept %d", s->path,
                         (unsigned long long)r->line, (int)m->category, imt_disposition_name(d1),
                         (int)cat, imt_disposition_name(d0), (int)(d1 < d0 ? m->category : cat));
            conflict = 1;
            if (d1 < d0) { /* ALERT < INFO < IGNORE: the new one is more severe */
                cat = m->category;
                label = imt__idx_sink_str(s, m->label);
                *changed = 1;
            }
        }
        IMT_TRY(add_member(&w->mem, list, cat, label, ext));
    }
    if (rc < 0) {
        imt__idx_set_err(w->idx, "%s: an entry's memberships are malformed", w->idx->path);
        return IMT_E_INDEX_CORRUPT;
    }
    for (uint32_t j = 0; j < r->nmem; j++) {
        const imt__idx_smem *m = &s->mem[r->mem + j];
        int seen = 0;
        pos = 0;
        while (!seen && imt__idx_member_next(old, &pos, &list, &cat, &label, &ext) == 1)
            seen = list == first_list + m->slot;
        if (seen) continue;
        IMT_TRY(add_member(&w->mem, first_list + m->slot, m->category, imt__idx_sink_str(s, m->label),
                           imt__idx_sink_str(s, m->ext)));
        per_slot[m->slot]++;
        (*added)++;
        *changed = 1;
    }
    st->duplicates++;
    st->conflicts += (uint64_t)conflict;
cleanup:
    return err;
}

/* Does entry `old` name one of r's lists already? */
static int names_list(const imt__idx_sink *s, const imt__idx_srec *r, const imt__idx_entry *old, uint32_t first_list)
{
    size_t pos = 0;
    uint32_t list;
    int32_t cat;
    const char *label, *ext;
    while (imt__idx_member_next(old, &pos, &list, &cat, &label, &ext) == 1)
        for (uint32_t j = 0; j < r->nmem; j++)
            if (list == first_list + s->mem[r->mem + j].slot) return 1;
    return 0;
}

/* ---- compact entries (index.h: IDX_DIG_COMPACT) ------------------------- */
struct imt__idx_cls {
    uint64_t hash;               /* 0: free slot */
    uint32_t list, id;
    int32_t category;
    char *label;
};

/* The digest kind (0..2) of a record that may be stored compact: one
 * digest, no PDQ, quality unknown, one membership without external id. */
static int compact_kind(const imt__idx_sink *s, const imt__idx_srec *r)
{
    if (r->nmem != 1 || r->quality >= 0 || s->mem[r->mem].ext != 0) return -1;
    switch (r->kinds) {
    case KB_MD5: return 0;
    case KB_SHA1: return 1;
    case KB_SHA256: return 2;
    default: return -1;
    }
}

/* The class of (list, category, label): this import's, or a new one
 * written to "cls"; IDX_CLS_NONE when the import has made IDX_MAX_CLASSES
 * (the record then gets an entry record). */
static imt_err class_of(imt__idx_writer *w, uint32_t list, int32_t cat, const char *label, uint32_t *out)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *c = label; *c; c++) h = (h ^ (uint8_t)*c) * 1099511628211ull;
    h ^= ((uint64_t)list << 32 | (uint32_t)cat) * 0x9E3779B97F4A7C15ull;
    h |= 1;
    *out = IDX_CLS_NONE;
    if (!w->capcls) {
        w->cls = imt__calloc(1024, sizeof *w->cls);
        if (!w->cls) return IMT_E_NOMEM;
        w->capcls = 1024;
    }
    size_t i = (size_t)(h >> 20) & (w->capcls - 1);
    for (; w->cls[i].hash; i = (i + 1) & (w->capcls - 1)) {
        const struct imt__idx_cls *c = &w->cls[i];
        if (c->hash == h && c->list == list && c->category == cat && !strcmp(c->label, label)) {
            *out = c->id;
            return IMT_OK;
        }
    }
    if (w->ncls >= IDX_MAX_CLASSES || w->next_cls == IDX_CLS_NONE) return IMT_OK;
    if (2 * (w->ncls + 1) > w->capcls) { /* at most half full */
        struct imt__idx_cls *n = imt__calloc(2 * w->capcls, sizeof *n);
        if (!n) return IMT_E_NOMEM;
        for (size_t j = 0; j < w->capcls; j++) {
            if (!w->cls[j].hash) continue;
            size_t t = (size_t)(w->cls[j].hash >> 20) & (2 * w->capcls - 1);
            while (n[t].hash) t = (t + 1) & (2 * w->capcls - 1);
            n[t] = w->cls[j];
        }
        imt__free(w->cls);
        w->cls = n;
        w->capcls *= 2;
        for (i = (size_t)(h >> 20) & (w->capcls - 1); w->cls[i].hash; i = (i + 1) & (w->capcls - 1)) {}
    }
    size_t ll = strlen(label);
    char *lab = imt__malloc(ll + 1);
    if (!lab) return IMT_E_NOMEM;
    memcpy(lab, label, ll + 1);
    imt_err err = IMT_OK;
    uint8_t key[4];
    imt__idx_put_be32(key, w->next_cls);
    w->mem.n = 0;
    uint32_t c = (uint32_t)cat;
    IMT_TRY(buf_add(&w->mem, &list, 4));
    IMT_TRY(buf_add(&w->mem, &c, 4));
    IMT_TRY(buf_add(&w->mem, label, ll + 1));
    MDB_val k = {4, key}, d = {w->mem.n, w->mem.p};
    int rc = mdb_put(w->txn, w->idx->db_cls, &k, &d, MDB_NOOVERWRITE);
    if (rc) {
        err = imt__idx_mdb_err(w->idx, rc, "writing a membership class");
        goto cleanup;
    }
    w->cls[i] = (struct imt__idx_cls){h, list, w->next_cls, cat, lab};
    lab = NULL;
    w->ncls++;
    *out = w->next_cls++;
cleanup:
    imt__free(lab);
    return err;
}

/* The current record of entry id, found through a digest of kind k whose
 * value named class cls: the entry record if it has one (a full entry, or
 * a compact one this transaction promoted), else the compact entry's
 * record built from its class. *compact: which of the two. */
/* Record r carries a digest of a kind that entry e holds with another
 * value. */
static int digest_conflict(const imt__idx_srec *r, const uint8_t *const dg[3], const imt__idx_entry *e)
{
    static const unsigned kb[3] = {KB_MD5, KB_SHA1, KB_SHA256};
    static const size_t len[3] = {16, 20, 32};
    const uint8_t *have[3] = {e->md5, e->sha1, e->sha256};
    for (int k = 0; k < 3; k++)
        if ((r->kinds & kb[k]) && have[k] && memcmp(have[k], dg[k], len[k]) != 0) return 1;
    return 0;
}

static imt_err load_old(imt__idx_writer *w, uint32_t id, uint32_t cls, int k, const uint8_t *dg,
                        imt__idx_entry *old, int *compact)
{
    uint8_t key[4];
    imt__idx_put_be32(key, id);
    MDB_val kk = {4, key}, d;
    int rc = MDB_NOTFOUND;
    *compact = 0;
    if (cls == IDX_CLS_NONE || imt__idx_promoted(w, id) || id < w->first_new)
        rc = mdb_get(w->txn, w->idx->db_entries, &kk, &d);
    if (rc == MDB_NOTFOUND && cls != IDX_CLS_NONE && k >= 0 && !imt__idx_promoted(w, id)) {
        size_t len;
        imt_err e = imt__idx_compact_record(w->idx, w->txn, k, dg, cls, &w->synth, &w->capsynth, &len);
        if (e == IMT_E_INDEX_CORRUPT)
            imt__idx_set_err(w->idx, "%s: entry %u: membership class %u is missing or malformed",
                             w->idx->path, (unsigned)id, (unsigned)cls);
        else if (e)
            imt__idx_set_err(w->idx, "%s: reading membership class %u failed", w->idx->path,
                             (unsigned)cls);
        if (e) return e;
        *compact = 1;
        d.mv_data = w->synth;
        d.mv_size = len;
        rc = 0;
    }
    if (rc == MDB_NOTFOUND) {
        imt__idx_set_err(w->idx, "%s: entry %u is missing", w->idx->path, (unsigned)id);
        return IMT_E_INDEX_CORRUPT;
    }
    if (rc) return imt__idx_mdb_err(w->idx, rc, "reading an entry");
    if (imt__idx_entry_decode(d.mv_data, d.mv_size, old) != IMT_OK) {
        imt__idx_set_err(w->idx, "%s: entry %u is malformed", w->idx->path, (unsigned)id);
        return IMT_E_INDEX_CORRUPT;
    }
    return IMT_OK;
}

/* Compact entry id (digest dg of kind k) has just got an entry record:
 * its digest's value becomes the 4-byte id. One this transaction made
 * has its digest still in the batch or a run: marked, written so later. */
static imt_err promote(imt__idx_writer *w, uint32_t id, int k, const uint8_t *dg)
{
    if (id >= w->first_new) {
        size_t b = id - w->first_new;
        if (b / 8 >= w->capprom) {
            size_t cap = w->capprom ? w->capprom : 4096;
            while (cap <= b / 8) cap *= 2;
            uint8_t *p = imt__realloc(w->prom, cap);
            if (!p) return IMT_E_NOMEM;
            memset(p + w->capprom, 0, cap - w->capprom);
            w->prom = p;
            w->capprom = cap;
        }
        w->prom[b / 8] |= (uint8_t)(1u << (b & 7));
        return IMT_OK;
    }
    MDB_val key = {imt__idx_dig_len[k], (void *)dg}, val = {4, &id}, old;
    int in_delta;
    int rc = imt__idx_dig_get(w->idx, w->txn, k, dg, &old, &in_delta);
    if (rc == 0)
        rc = mdb_put(w->txn, in_delta ? imt__idx_dplus_dbi(w->idx, k) : imt__idx_dig_dbi(w->idx, k), &key,
                     &val, 0);
    return rc ? imt__idx_mdb_err(w->idx, rc, "rewriting a digest") : IMT_OK;
}

/* Merge every record of the batch; new entries are appended in id order. */
imt_err imt__idx_writer_merge(imt__idx_writer *w, imt__idx_sink *s, uint32_t list_id, const imt__idx_list_meta *metas,
                         size_t nmeta, uint64_t *per_slot, imt_import_stats *st)
{
    imt_err err = IMT_OK;
    MDB_cursor *ec = NULL;
    uint32_t *pre[3] = {NULL, NULL, NULL}, *pcls[3] = {NULL, NULL, NULL};
    if (!w->delta_loaded) {
        IMT_TRY(load_delta_sorted(w));
        w->delta_loaded = 1;
    }
    /* the batch table: at most 3/4 full */
    size_t nh = 0, cap = 64;
    for (size_t i = 0; i < s->n; i++) nh += (size_t)__builtin_popcount(s->recs[i].kinds);
    while (cap < nh + nh / 3 + 1) cap *= 2;
    imt__free(w->bt);
    w->bt = imt__calloc(cap, sizeof *w->bt);
    if (!w->bt) return IMT_E_NOMEM;
    w->btcap = cap;
    int rc = mdb_cursor_open(w->txn, w->idx->db_entries, &ec);
    if (rc) return imt__idx_mdb_err(w->idx, rc, "opening the entries");
    if (s->n > w->capcls_of) {
        imt__free(w->cls_of);
        w->capcls_of = 0;
        if (!(w->cls_of = imt__malloc(s->n * sizeof *w->cls_of))) {
            err = IMT_E_NOMEM;
            goto cleanup;
        }
        w->capcls_of = s->n;
    }
    for (size_t i = 0; i < s->n; i++) w->cls_of[i] = IDX_CLS_NONE;
    for (int k = 0; k < 3; k++) {
        pre[k] = imt__malloc((s->n ? s->n : 1) * sizeof *pre[k]);
        pcls[k] = imt__malloc((s->n ? s->n : 1) * sizeof *pcls[k]);
        if (!pre[k] || !pcls[k]) {
            err = IMT_E_NOMEM;
            goto cleanup;
        }
        IMT_TRY(prelookup(w, s, k, pre[k], pcls[k]));
    }
    for (size_t i = 0; i < s->n; i++) {
        const imt__idx_srec *r = &s->recs[i];
        size_t hl;
        if (i + 8 < s->n) {
            /* the batch table is a random access per hash: fetch ahead */
            const imt__idx_srec *r8 = &s->recs[i + 8];
            for (int k = 0; k < 4; k++)
                if (r8->kinds & (1u << k))
                    __builtin_prefetch(&w->bt[bt_slot(w, bt_key(imt__idx_srec_hash(s, r8, 1u << k, &hl), k))]);
        }
        const uint8_t *rpdq = imt__idx_srec_hash(s, r, KB_PDQ, &hl);
        const uint8_t *dg[3] = {imt__idx_srec_hash(s, r, KB_MD5, &hl), imt__idx_srec_hash(s, r, KB_SHA1, &hl),
                                imt__idx_srec_hash(s, r, KB_SHA256, &hl)};
        static const unsigned kb[3] = {KB_MD5, KB_SHA1, KB_SHA256};
        uint32_t found_entry = 0, e = 0, ent_of[3] = {0, 0, 0}, pdq_ent = 0, brec;
        uint32_t found_cls = IDX_CLS_NONE; /* the class the found digest's value named */
        int found = 0, have[3] = {0, 0, 0}, have_pdq = 0, found_k = -1;
        for (int k = 2; k >= 0; k--) {
            if (!(r->kinds & kb[k])) continue;
            uint32_t c = IDX_CLS_NONE;
            int f = bt_find(w, s, k + 1, dg[k], &e, &brec);
            if (f) c = w->cls_of[brec];
            else if (pre[k][i] != UINT32_MAX) {
                f = 1;
                e = pre[k][i];
                c = pcls[k][i];
            }
            have[k] = f;
            ent_of[k] = e;
            if (f && !found) {
                found = 1;
                found_entry = e;
                found_cls = c;
                found_k = k;
            }
        }
        if ((r->kinds & KB_PDQ) && (bt_find(w, s, 0, rpdq, &e, &brec) || pdq_lookup(w, rpdq, &e))) {
            have_pdq = 1;
            pdq_ent = e;
            if (!found) {
                found = 1;
                found_entry = e;
            }
        }
        if (found && found_k < 0 && (r->kinds & (KB_MD5 | KB_SHA1 | KB_SHA256))) {
            /* found by its PDQ hash alone: a record whose MD5 (SHA-1,
             * SHA-256) differs from that entry's is another file that looks
             * the same (a re-encoded copy, a cropped twin): an entry of its
             * own, so that no digest is dropped */
            imt__idx_entry pe;
            int pc;
            IMT_TRY(load_old(w, found_entry, IDX_CLS_NONE, -1, NULL, &pe, &pc));
            if (digest_conflict(r, dg, &pe)) {
                found = 0;
                st->pdq_shared++;
            }
        }
        if (!found) {
            if (w->h.next_entry >= IDX_MAX_ENTRIES) {
                imt__idx_set_err(w->idx, "%s: the index is full (%u entries)", w->idx->path,
                            (unsigned)w->h.next_entry);
                err = IMT_E_TOO_LARGE;
                goto cleanup;
            }
            uint32_t id = w->h.next_entry++;
            int ck = compact_kind(s, r);
            uint32_t cls = IDX_CLS_NONE;
            if (ck >= 0) {
                const imt__idx_smem *m = &s->mem[r->mem];
                IMT_TRY(class_of(w, list_id + m->slot, m->category, imt__idx_sink_str(s, m->label), &cls));
            }
            if (cls != IDX_CLS_NONE) {
                /* a compact entry: its digest's value is all of it */
                w->cls_of[i] = cls;
                IMT_TRY(dig_add(w, ck, (uint32_t)i, id, s->n));
                bt_put(w, ck + 1, dg[ck], (uint32_t)i, id);
                per_slot[s->mem[r->mem].slot]++;
                if (ck == 0) w->h.n_md5++;
                else if (ck == 1) w->h.n_sha1++;
                else w->h.n_sha256++;
                st->new_entries++;
                w->h.n_members++;
                continue;
            }
            w->mem.n = 0;
            IMT_TRY(rec_members(w, s, r, list_id, per_slot));
            IMT_TRY(encode_entry(&w->rec, r->kinds, r->quality, rpdq, dg[0], dg[1], dg[2], r->nmem,
                                 w->mem.p, w->mem.n));
            uint8_t key[4];
            imt__idx_put_be32(key, id);
            MDB_val k = {4, key}, d = {w->rec.n, w->rec.p};
            rc = mdb_cursor_put(ec, &k, &d, MDB_APPEND);
            if (rc) {
                err = imt__idx_mdb_err(w->idx, rc, "writing an entry");
                goto cleanup;
            }
            for (int k2 = 0; k2 < 3; k2++)
                if (r->kinds & kb[k2]) {
                    IMT_TRY(dig_add(w, k2, (uint32_t)i, id, s->n));
                    bt_put(w, k2 + 1, dg[k2], (uint32_t)i, id);
                }
            if (r->kinds & KB_PDQ) {
                IMT_TRY(newpdq_add(w, rpdq, id));
                bt_put(w, 0, rpdq, (uint32_t)i, id);
            }
            w->h.n_pdq += (r->kinds & KB_PDQ) ? 1 : 0;
            w->h.n_md5 += (r->kinds & KB_MD5) ? 1 : 0;
            w->h.n_sha1 += (r->kinds & KB_SHA1) ? 1 : 0;
            w->h.n_sha256 += (r->kinds & KB_SHA256) ? 1 : 0;
            st->new_entries++;
            w->h.n_members += r->nmem;
        } else {
            /* join the entry: one more membership, and the hashes of kinds it
             * lacks (a hash indexed under another entry stays there) */
            uint8_t key[4];
            imt__idx_put_be32(key, found_entry);
            MDB_val k = {4, key};
            imt__idx_entry old;
            int was_compact;
            IMT_TRY(load_old(w, found_entry, found_cls, found_k, found_k >= 0 ? dg[found_k] : NULL, &old,
                             &was_compact));
            if (old.n_members + r->nmem > 65535) {
                imt__idx_set_err(w->idx, "%s: entry %u is malformed or full", w->idx->path,
                            (unsigned)found_entry);
                err = IMT_E_INDEX_CORRUPT;
                goto cleanup;
            }
            unsigned kinds = old.kinds;
            const uint8_t *pdq = old.pdq, *md5 = old.md5, *sha1 = old.sha1, *sha256 = old.sha256;
            int quality = old.quality;
            if (names_list(s, r, &old, list_id)) {
                /* the list named this entry already: a repeat when every
                 * hash of r is this entry's, else a bad record */
                int same = !(r->kinds & KB_PDQ) || (have_pdq && pdq_ent == found_entry);
                for (int k2 = 0; k2 < 3; k2++)
                    if ((r->kinds & kb[k2]) && !(have[k2] && ent_of[k2] == found_entry)) same = 0;
                if (!same) {
                    err = imt__idx_sink_bad(s, r->line, IMT_E_DUPLICATE,
                                       "duplicate: holds a hash of an earlier record of this list "
                                       "(entry %u) and a hash that record lacks",
                                       (unsigned)found_entry);
                    if (err) goto cleanup;
                    continue;
                }
                unsigned added;
                int changed;
                IMT_TRY(merge_repeat(w, s, r, &old, list_id, metas, nmeta, per_slot, st, &added,
                                     &changed));
                if (changed) {
                    IMT_TRY(encode_entry(&w->rec, kinds, quality, pdq, md5, sha1, sha256,
                                         old.n_members + added, w->mem.p, w->mem.n));
                    MDB_val nd = {w->rec.n, w->rec.p};
                    rc = mdb_put(w->txn, w->idx->db_entries, &k, &nd, 0);
                    if (rc) {
                        err = imt__idx_mdb_err(w->idx, rc, "updating an entry");
                        goto cleanup;
                    }
                    if (was_compact) IMT_TRY(promote(w, found_entry, found_k, dg[found_k]));
                }
                w->h.n_members += added;
                continue;
            }
            if ((r->kinds & KB_PDQ) && !(kinds & KB_PDQ) && !have_pdq) {
                kinds |= KB_PDQ;
                pdq = rpdq;
                quality = r->quality;
                IMT_TRY(newpdq_add(w, rpdq, found_entry));
                bt_put(w, 0, rpdq, (uint32_t)i, found_entry);
                w->h.n_pdq++;
            }
            const uint8_t **dst[3] = {&md5, &sha1, &sha256};
            for (int k2 = 0; k2 < 3; k2++) {
                if (!(r->kinds & kb[k2]) || (kinds & kb[k2]) || have[k2]) continue;
                kinds |= kb[k2];
                *dst[k2] = dg[k2];
                IMT_TRY(dig_add(w, k2, (uint32_t)i, found_entry, s->n));
                bt_put(w, k2 + 1, dg[k2], (uint32_t)i, found_entry);
                if (k2 == 0) w->h.n_md5++;
                else if (k2 == 1) w->h.n_sha1++;
                else w->h.n_sha256++;
            }
            w->mem.n = 0;
            IMT_TRY(buf_add(&w->mem, old.members, old.members_len));
            IMT_TRY(rec_members(w, s, r, list_id, per_slot));
            IMT_TRY(encode_entry(&w->rec, kinds, quality, pdq, md5, sha1, sha256,
                                 old.n_members + r->nmem, w->mem.p, w->mem.n));
            MDB_val nd = {w->rec.n, w->rec.p};
            rc = mdb_put(w->txn, w->idx->db_entries, &k, &nd, 0);
            if (rc) {
                err = imt__idx_mdb_err(w->idx, rc, "updating an entry");
                goto cleanup;
            }
            if (was_compact) IMT_TRY(promote(w, found_entry, found_k, dg[found_k]));
            st->merged++;
            w->h.n_members += r->nmem;
        }
    }
cleanup:
    mdb_cursor_close(ec);
    for (int k = 0; k < 3; k++) {
        imt__free(pre[k]);
        imt__free(pcls[k]);
    }
    return err;
}

imt_err imt__idx_writer_digests(imt__idx_writer *w, const imt__idx_sink *s, int spill)
{
    imt_err err = IMT_OK;
    static const unsigned kb[3] = {KB_MD5, KB_SHA1, KB_SHA256};
    for (int k = 0; k < 3; k++) {
        size_t n = w->ndig[k], len;
        if (!n) continue;
        imt__idx_kv *a = w->dig[k];
        for (size_t i = 0; i < n; i++) a[i].key = imt__idx_key64(imt__idx_srec_hash(s, &s->recs[a[i].idx], kb[k], &len));
        /* sort_by_hash orders by record index inside equal hashes; the
         * entry rides in pad */
        IMT_TRY(imt__idx_sort_by_hash(s, kb[k], a, n));
        if (spill || w->nruns[k]) {
            IMT_TRY(imt__idx_run_spill(w, s, k, a, n));
            continue;
        }
        unsigned flags;
        MDB_dbi dbi = imt__idx_dig_target(w->idx, w->txn, k, &flags);
        for (size_t i = 0; i < n; i++) {
            /* in hash order the records are random accesses, and the hash
             * bytes a second one: fetch both ahead */
            if (i + 16 < n) {
                __builtin_prefetch(&s->recs[a[i + 16].idx]);
                __builtin_prefetch(&w->cls_of[a[i + 16].idx]);
            }
            if (i + 8 < n) __builtin_prefetch(s->hb + s->recs[a[i + 8].idx].hash);
            const uint8_t *hk = imt__idx_srec_hash(s, &s->recs[a[i].idx], kb[k], &len);
            MDB_val key = {len, (void *)hk};
            uint32_t e[2] = {a[i].pad, imt__idx_value_cls(w, a[i].pad, w->cls_of[a[i].idx])};
            MDB_val val = {e[1] == IDX_CLS_NONE ? 4 : IDX_DIG_COMPACT, e};
            int rc = mdb_put(w->txn, dbi, &key, &val, flags | MDB_NOOVERWRITE);
            if (rc) {
                err = imt__idx_mdb_err(w->idx, rc, "writing a digest");
                goto cleanup;
            }
        }
    }
cleanup:
    for (int k = 0; k < 3; k++) {
        imt__free(w->dig[k]);
        w->dig[k] = NULL;
        w->ndig[k] = 0;
    }
    imt__free(w->bt); /* the digests are in their tables now */
    w->bt = NULL;
    w->btcap = 0;
    return err;
}

/* Append w->newpdq to the delta chunks. */
imt_err imt__idx_writer_delta(imt__idx_writer *w)
{
    imt_err err = IMT_OK;
    uint8_t *tmp = NULL;
    size_t done = 0;
    uint32_t total = w->h.delta_n;
    if (!w->nnew) return IMT_OK;
    if ((uint64_t)total + w->nnew > IDX_MAX_ENTRIES) return IMT_E_TOO_LARGE;
    while (done < w->nnew) {
        uint32_t chunk = total / IDX_DELTA_CHUNK, have = total % IDX_DELTA_CHUNK;
        size_t add = IDX_DELTA_CHUNK - have;
        if (add > w->nnew - done) add = w->nnew - done;
        size_t cnt = have + add;
        uint8_t key[5] = {'d'};
        imt__idx_put_be32(key + 1, chunk);
        MDB_val k = {5, key}, d;
        imt__free(tmp);
        tmp = imt__malloc(cnt * 36);
        if (!tmp) {
            err = IMT_E_NOMEM;
            goto cleanup;
        }
        if (have) {
            int rc = mdb_get(w->txn, w->idx->db_seg, &k, &d);
            if (rc || d.mv_size != (size_t)have * 36) {
                imt__idx_set_err(w->idx, "%s: delta chunk %u is missing or has the wrong size",
                            w->idx->path, (unsigned)chunk);
                err = IMT_E_INDEX_CORRUPT;
                goto cleanup;
            }
            memcpy(tmp, d.mv_data, (size_t)have * 32);
            memcpy(tmp + cnt * 32, (const uint8_t *)d.mv_data + (size_t)have * 32, (size_t)have * 4);
        }
        for (size_t i = 0; i < add; i++) {
            memcpy(tmp + (have + i) * 32, w->newpdq[done + i].pdq, 32);
            memcpy(tmp + cnt * 32 + (have + i) * 4, &w->newpdq[done + i].entry, 4);
        }
        d.mv_size = cnt * 36;
        d.mv_data = tmp;
        int rc = mdb_put(w->txn, w->idx->db_seg, &k, &d, 0);
        if (rc) {
            err = imt__idx_mdb_err(w->idx, rc, "writing the delta segment");
            goto cleanup;
        }
        done += add;
        total += (uint32_t)add;
    }
    w->h.delta_n = total;
    /* later batches look the new hashes up in delta_old: merge them in */
    qsort(w->newpdq, w->nnew, sizeof *w->newpdq, cmp_pdq_ent);
    size_t n = w->ndelta_old + w->nnew, bytes;
    imt__idx_pdq_ent *m = NULL;
    if (!imt__mul_ok(n, sizeof *m, &bytes) || !(m = imt__malloc(bytes))) {
        err = IMT_E_NOMEM;
        goto cleanup;
    }
    size_t a = 0, b = 0, o = 0;
    while (a < w->ndelta_old || b < w->nnew)
        m[o++] = b == w->nnew || (a < w->ndelta_old &&
                                  memcmp(w->delta_old[a].pdq, w->newpdq[b].pdq, 32) < 0)
                     ? w->delta_old[a++]
                     : w->newpdq[b++];
    imt__free(w->delta_old);
    w->delta_old = m;
    w->ndelta_old = n;
    w->nnew = 0;
cleanup:
    imt__free(tmp);
    return err;
}

imt_err imt__idx_writer_list(imt__idx_writer *w, const imt_list_info *li)
{
    imt_err err = IMT_OK;
    imt__idx_buf b = {0};
    uint8_t head[24] = {0};
    memcpy(head, &li->id, 4);
    head[4] = (uint8_t)(li->known_good != 0);
    memcpy(head + 8, &li->import_time, 8);
    memcpy(head + 16, &li->entries, 8);
    IMT_TRY(buf_add(&b, head, 24));
    const char *f[6] = {li->name, li->version, li->format, li->file_sha256, li->scheme,
                        li->policy};
    for (int i = 0; i < 6; i++) IMT_TRY(buf_add(&b, f[i], strlen(f[i]) + 1));
    uint8_t key[4];
    imt__idx_put_be32(key, li->id);
    MDB_val k = {4, key}, d = {b.n, b.p};
    int rc = mdb_put(w->txn, w->idx->db_lists, &k, &d, MDB_NOOVERWRITE);
    if (rc) err = imt__idx_mdb_err(w->idx, rc, "writing the list record");
cleanup:
    imt__free(b.p);
    return err;
}

void imt__idx_writer_free(imt__idx_writer *w)
{
    imt__idx_view_free(&w->v);
    imt__free(w->delta_old);
    imt__free(w->newpdq);
    imt__free(w->bt);
    for (int k = 0; k < 3; k++) {
        imt__free(w->dig[k]);
        for (size_t r = 0; r < w->nruns[k]; r++) {
            close(w->runs[k][r]);
            if (w->rmeta[k]) imt__free(w->rmeta[k][r].first);
        }
        imt__free(w->runs[k]);
        imt__free(w->rmeta[k]);
        w->runs[k] = NULL;
        w->rmeta[k] = NULL;
        w->nruns[k] = 0;
    }
    imt__free(w->rec.p);
    imt__free(w->mem.p);
    imt__free(w->cls_of);
    for (size_t i = 0; i < w->capcls; i++) imt__free(w->cls[i].label);
    imt__free(w->cls);
    imt__free(w->prom);
    imt__free(w->synth);
    imt__free(w->bloom);
    w->bloom = NULL;
    w->bloom_blocks = 0;
    w->cls_of = NULL;
    w->cls = NULL;
    w->prom = NULL;
    w->synth = NULL;
    w->capcls = w->ncls = w->capprom = w->capsynth = w->capcls_of = 0;
    if (w->txn) mdb_txn_abort(w->txn);
    w->txn = NULL;
}

imt_err imt__idx_writer_begin(imt_index *idx, imt__idx_writer *w)
{
    imt_err err = IMT_OK;
    memset(w, 0, sizeof *w);
    w->idx = idx;
    int rc = mdb_txn_begin(idx->env, NULL, 0, &w->txn);
    if (rc) return imt__idx_mdb_err(idx, rc, "starting the write transaction");
    IMT_TRY(imt__idx_read_header(idx, w->txn, &w->h));
    IMT_TRY(imt__idx_read_levels(idx, w->txn, &w->h, &w->lv));
    IMT_TRY(imt__idx_view_load(idx, w->txn, &w->h, &w->lv, &w->v));
    w->first_new = w->h.next_entry;
    {
        /* classes are numbered on from the last one */
        MDB_cursor *cc;
        MDB_val k, d;
        rc = mdb_cursor_open(w->txn, idx->db_cls, &cc);
        if (rc) return imt__idx_mdb_err(idx, rc, "reading the membership classes");
        rc = mdb_cursor_get(cc, &k, &d, MDB_LAST);
        mdb_cursor_close(cc);
        if (rc == 0 && k.mv_size == 4) w->next_cls = imt__idx_get_be32(k.mv_data) + 1;
        else if (rc == 0 || rc != MDB_NOTFOUND) {
            if (rc == 0) imt__idx_set_err(idx, "%s: a membership class key is malformed", idx->path);
            return rc == 0 ? IMT_E_INDEX_CORRUPT : imt__idx_mdb_err(idx, rc, "reading the membership classes");
        }
    }
cleanup:
    return err;
}

/* Commit w (stage, if any, hears "commit" just before). */
imt_err imt__idx_writer_commit(imt_index *idx, imt__idx_writer *w, void (*stage)(void *, const char *),
                          void *opaque)
{
    imt_err err = IMT_OK;
    w->h.generation++;
    w->h.format = IDX_FORMAT_VERSION; /* a format-2 index is upgraded */
    IMT_TRY(imt__idx_write_header(idx, w->txn, &w->h, &w->lv));
    imt__idx_view_free(&w->v); /* its pointers die with the transaction */
    if (stage) stage(opaque, "commit");
    int rc = mdb_txn_commit(w->txn);
    w->txn = NULL;
    if (rc) {
        err = imt__idx_mdb_err(idx, rc, "committing");
        goto cleanup;
    }
cleanup:
    return err;
}

/* Refuse a list whose file was imported already (same SHA-256): it would
 * double every match. Read inside the write transaction, so two importers
 * cannot both pass. */
imt_err imt__idx_writer_check_new(imt__idx_writer *w, const imt__idx_list_meta *m, size_t nm, const char *path)
{
    imt_err err = IMT_OK;
    MDB_cursor *cur = NULL;
    MDB_val k, d;
    int rc = mdb_cursor_open(w->txn, w->idx->db_lists, &cur);
    if (rc) return imt__idx_mdb_err(w->idx, rc, "reading the lists");
    for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        const char *f[4], *p = (const char *)d.mv_data + 24, *end = (const char *)d.mv_data + d.mv_size;
        if (d.mv_size < 24) break;
        int i = 0;
        for (; i < 4 && p < end; i++) {
            const char *z = memchr(p, 0, (size_t)(end - p));
            if (!z) break;
            f[i] = p;
            p = z + 1;
        }
        if (i < 4) {
            imt__idx_set_err(w->idx, "%s: a list record is malformed", w->idx->path);
            err = IMT_E_INDEX_CORRUPT;
            goto cleanup;
        }
        for (size_t j = 0; j < nm; j++) {
            if (strcmp(f[3], m[j].file_sha256) != 0) continue;
            imt__idx_set_err(w->idx, "%s: %s was imported already as list %u '%.200s' (file SHA-256 %s); "
                        "importing it again would count its matches twice (--again to do it anyway)",
                        path, nm > 1 ? "a list of this export" : "this file",
                        (unsigned)imt__idx_get_u32(d.mv_data), f[0], f[3]);
            err = IMT_E_DUPLICATE;
            goto cleanup;
        }
    }
    if (rc && rc != MDB_NOTFOUND) err = imt__idx_mdb_err(w->idx, rc, "reading the lists");
cleanup:
    mdb_cursor_close(cur);
    return err;
}

