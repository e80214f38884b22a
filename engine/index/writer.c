/* engine/index/writer.c -- one LMDB write transaction of an import: new
 * entries appended in id order, memberships joined to entries holding one
 * of the record's hashes already, the digest tables written in key order,
 * new PDQ hashes appended to the delta segment, the list records and the
 * header; a crash before the commit leaves the index as it was (LMDB
 * commits by switching meta pages). */
#include "index.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

imt_err idx_writable(imt_index *idx)
{
    if (idx->read_only) {
        idx_set_err(idx, "%s: the index is open read-only", idx->path);
        return IMT_E_READONLY;
    }
    if (__atomic_load_n(&idx->open_cursors, __ATOMIC_SEQ_CST)) {
        idx_set_err(idx, "%s: close every cursor before writing", idx->path);
        return IMT_E_BUSY;
    }
    return IMT_OK;
}

/* A growable byte buffer for records. */
static imt_err buf_add(idx_buf *b, const void *data, size_t len)
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

static imt_err add_member(idx_buf *b, uint32_t list, int32_t cat, const char *label, const char *ext)
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
static imt_err encode_entry(idx_buf *b, unsigned kinds, int quality, const uint8_t *pdq,
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

/* Exact PDQ lookup in the compacted segment (radius 0 through table 0..m:
 * the hash's own bucket in table 0 holds it if present). */
static int main_lookup(const idx_view *v, const uint8_t *q, uint32_t *entry)
{
    if (!v->main_n) return 0;
    uint32_t b = idx_substr(q, v->start[0], v->bits[0]);
    for (uint32_t i = v->off[0][b]; i < v->off[0][b + 1]; i++) {
        uint32_t pos = v->ids[0][i];
        if (memcmp(v->pdq + (size_t)pos * 32, q, 32) == 0) {
            *entry = v->ent[pos];
            return 1;
        }
    }
    return 0;
}

static int cmp_pdq_ent(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

static imt_err newpdq_add(idx_writer *w, const uint8_t *pdq, uint32_t entry)
{
    if (w->nnew == w->capnew) {
        size_t cap = w->capnew ? w->capnew * 2 : 1024, bytes;
        if (!imt__mul_ok(cap, sizeof *w->newpdq, &bytes)) return IMT_E_NOMEM;
        idx_pdq_ent *p = imt__realloc(w->newpdq, bytes);
        if (!p) return IMT_E_NOMEM;
        w->newpdq = p;
        w->capnew = cap;
    }
    memcpy(w->newpdq[w->nnew].pdq, pdq, 32);
    w->newpdq[w->nnew].entry = entry;
    w->nnew++;
    return IMT_OK;
}

static imt_err load_delta_sorted(idx_writer *w)
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
            w->delta_old[k].entry = idx_get_u32(w->v.dent[c] + 4 * (size_t)i);
        }
    w->ndelta_old = k;
    qsort(w->delta_old, k, sizeof *w->delta_old, cmp_pdq_ent);
    return IMT_OK;
}

static int pdq_lookup(idx_writer *w, const uint8_t *q, uint32_t *entry)
{
    if (main_lookup(&w->v, q, entry)) return 1;
    if (w->ndelta_old) {
        idx_pdq_ent key;
        memcpy(key.pdq, q, 32);
        const idx_pdq_ent *f = bsearch(&key, w->delta_old, w->ndelta_old, sizeof key, cmp_pdq_ent);
        if (f) {
            *entry = f->entry;
            return 1;
        }
    }
    return 0;
}

static MDB_dbi dig_dbi(const idx_writer *w, int k)
{
    return k == 0 ? w->idx->db_md5 : k == 1 ? w->idx->db_sha1 : w->idx->db_sha256;
}

static imt_err dig_lookup(idx_writer *w, int k, const uint8_t *d, uint32_t *entry, int *found)
{
    static const size_t len[3] = {16, 20, 32};
    MDB_val key = {len[k], (void *)d}, val;
    int rc = mdb_get(w->txn, dig_dbi(w, k), &key, &val);
    *found = 0;
    if (rc == MDB_NOTFOUND) return IMT_OK;
    if (rc) return idx_mdb_err(w->idx, rc, "looking up a digest");
    if (val.mv_size != 4) {
        idx_set_err(w->idx, "%s: a digest record is malformed", w->idx->path);
        return IMT_E_INDEX_CORRUPT;
    }
    *entry = idx_get_u32(val.mv_data);
    *found = 1;
    return IMT_OK;
}

static imt_err dig_add(idx_writer *w, int k, uint32_t rec_idx, uint32_t entry, size_t cap)
{
    if (!w->dig[k]) {
        w->dig[k] = imt__calloc(cap ? cap : 1, sizeof *w->dig[k]);
        if (!w->dig[k]) return IMT_E_NOMEM;
    }
    idx_kv *e = &w->dig[k][w->ndig[k]++];
    e->idx = rec_idx;
    e->pad = entry;
    return IMT_OK;
}

/* The memberships of record r, for list ids first_list + slot, into w->mem;
 * counts them per slot. */
static imt_err rec_members(idx_writer *w, const idx_sink *s, const idx_srec *r, uint32_t first_list,
                           uint64_t *per_slot)
{
    imt_err err = IMT_OK;
    for (uint32_t j = 0; j < r->nmem; j++) {
        const idx_smem *m = &s->mem[r->mem + j];
        IMT_TRY(add_member(&w->mem, first_list + m->slot, m->category, idx_sink_str(s, m->label),
                           idx_sink_str(s, m->ext)));
        per_slot[m->slot]++;
    }
cleanup:
    return err;
}

/* Merge every record; new entries are appended in id order. */
imt_err idx_writer_merge(idx_writer *w, const idx_sink *s, uint32_t list_id, uint64_t *per_slot,
                         imt_import_stats *st)
{
    imt_err err = IMT_OK;
    MDB_cursor *ec = NULL;
    IMT_TRY(load_delta_sorted(w));
    int rc = mdb_cursor_open(w->txn, w->idx->db_entries, &ec);
    if (rc) return idx_mdb_err(w->idx, rc, "opening the entries");
    for (size_t i = 0; i < s->n; i++) {
        const idx_srec *r = &s->recs[i];
        size_t hl;
        const uint8_t *rpdq = idx_srec_hash(s, r, KB_PDQ, &hl);
        const uint8_t *dg[3] = {idx_srec_hash(s, r, KB_MD5, &hl), idx_srec_hash(s, r, KB_SHA1, &hl),
                                idx_srec_hash(s, r, KB_SHA256, &hl)};
        static const unsigned kb[3] = {KB_MD5, KB_SHA1, KB_SHA256};
        uint32_t found_entry = 0, e;
        int found = 0, have[3] = {0, 0, 0}, have_pdq = 0;
        for (int k = 2; k >= 0; k--) {
            if (!(r->kinds & kb[k])) continue;
            int f;
            IMT_TRY(dig_lookup(w, k, dg[k], &e, &f));
            have[k] = f;
            if (f && !found) {
                found = 1;
                found_entry = e;
            }
        }
        if ((r->kinds & KB_PDQ) && pdq_lookup(w, rpdq, &e)) {
            have_pdq = 1;
            if (!found) {
                found = 1;
                found_entry = e;
            }
        }
        if (!found) {
            if (w->h.next_entry >= IDX_MAX_ENTRIES) {
                idx_set_err(w->idx, "%s: the index is full (%u entries)", w->idx->path,
                            (unsigned)w->h.next_entry);
                err = IMT_E_TOO_LARGE;
                goto cleanup;
            }
            uint32_t id = w->h.next_entry++;
            w->mem.n = 0;
            IMT_TRY(rec_members(w, s, r, list_id, per_slot));
            IMT_TRY(encode_entry(&w->rec, r->kinds, r->quality, rpdq, dg[0], dg[1], dg[2], r->nmem,
                                 w->mem.p, w->mem.n));
            uint8_t key[4];
            idx_put_be32(key, id);
            MDB_val k = {4, key}, d = {w->rec.n, w->rec.p};
            rc = mdb_cursor_put(ec, &k, &d, MDB_APPEND);
            if (rc) {
                err = idx_mdb_err(w->idx, rc, "writing an entry");
                goto cleanup;
            }
            for (int k2 = 0; k2 < 3; k2++)
                if (r->kinds & kb[k2]) IMT_TRY(dig_add(w, k2, (uint32_t)i, id, s->n));
            if (r->kinds & KB_PDQ) IMT_TRY(newpdq_add(w, rpdq, id));
            w->h.n_pdq += (r->kinds & KB_PDQ) ? 1 : 0;
            w->h.n_md5 += (r->kinds & KB_MD5) ? 1 : 0;
            w->h.n_sha1 += (r->kinds & KB_SHA1) ? 1 : 0;
            w->h.n_sha256 += (r->kinds & KB_SHA256) ? 1 : 0;
            st->new_entries++;
        } else {
            /* join the entry: one more membership, and the hashes of kinds it
             * lacks (a hash indexed under another entry stays there) */
            uint8_t key[4];
            idx_put_be32(key, found_entry);
            MDB_val k = {4, key}, d;
            rc = mdb_get(w->txn, w->idx->db_entries, &k, &d);
            if (rc) {
                err = rc == MDB_NOTFOUND ? IMT_E_INDEX_CORRUPT : idx_mdb_err(w->idx, rc, "reading an entry");
                if (rc == MDB_NOTFOUND)
                    idx_set_err(w->idx, "%s: entry %u is missing", w->idx->path, (unsigned)found_entry);
                goto cleanup;
            }
            idx_entry old;
            if (idx_entry_decode(d.mv_data, d.mv_size, &old) != IMT_OK ||
                old.n_members + r->nmem > 65535) {
                idx_set_err(w->idx, "%s: entry %u is malformed or full", w->idx->path,
                            (unsigned)found_entry);
                err = IMT_E_INDEX_CORRUPT;
                goto cleanup;
            }
            unsigned kinds = old.kinds;
            const uint8_t *pdq = old.pdq, *md5 = old.md5, *sha1 = old.sha1, *sha256 = old.sha256;
            int quality = old.quality;
            if ((r->kinds & KB_PDQ) && !(kinds & KB_PDQ) && !have_pdq) {
                kinds |= KB_PDQ;
                pdq = rpdq;
                quality = r->quality;
                IMT_TRY(newpdq_add(w, rpdq, found_entry));
                w->h.n_pdq++;
            }
            const uint8_t **dst[3] = {&md5, &sha1, &sha256};
            for (int k2 = 0; k2 < 3; k2++) {
                if (!(r->kinds & kb[k2]) || (kinds & kb[k2]) || have[k2]) continue;
                kinds |= kb[k2];
                *dst[k2] = dg[k2];
                IMT_TRY(dig_add(w, k2, (uint32_t)i, found_entry, s->n));
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
                err = idx_mdb_err(w->idx, rc, "updating an entry");
                goto cleanup;
            }
            st->merged++;
        }
        w->h.n_members += r->nmem;
    }
cleanup:
    mdb_cursor_close(ec);
    return err;
}

/* Insert the new digests in key order (fast B-tree appends). */
imt_err idx_writer_digests(idx_writer *w, const idx_sink *s)
{
    imt_err err = IMT_OK;
    static const unsigned kb[3] = {KB_MD5, KB_SHA1, KB_SHA256};
    for (int k = 0; k < 3; k++) {
        size_t n = w->ndig[k], len;
        if (!n) continue;
        idx_kv *a = w->dig[k];
        for (size_t i = 0; i < n; i++) a[i].key = idx_key64(idx_srec_hash(s, &s->recs[a[i].idx], kb[k], &len));
        /* sort_by_hash orders by record index inside equal hashes; the
         * entry rides in pad */
        IMT_TRY(idx_sort_by_hash(s, kb[k], a, n));
        MDB_stat ms;
        mdb_stat(w->txn, dig_dbi(w, k), &ms);
        unsigned flags = ms.ms_entries ? 0 : MDB_APPEND;
        for (size_t i = 0; i < n; i++) {
            const uint8_t *hk = idx_srec_hash(s, &s->recs[a[i].idx], kb[k], &len);
            MDB_val key = {len, (void *)hk};
            uint32_t e = a[i].pad;
            MDB_val val = {4, &e};
            int rc = mdb_put(w->txn, dig_dbi(w, k), &key, &val, flags | MDB_NOOVERWRITE);
            if (rc) {
                err = idx_mdb_err(w->idx, rc, "writing a digest");
                goto cleanup;
            }
        }
    }
cleanup:
    return err;
}

/* Append w->newpdq to the delta chunks. */
imt_err idx_writer_delta(idx_writer *w)
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
        idx_put_be32(key + 1, chunk);
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
                idx_set_err(w->idx, "%s: delta chunk %u is missing or has the wrong size",
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
            err = idx_mdb_err(w->idx, rc, "writing the delta segment");
            goto cleanup;
        }
        done += add;
        total += (uint32_t)add;
    }
    w->h.delta_n = total;
cleanup:
    imt__free(tmp);
    return err;
}

imt_err idx_writer_list(idx_writer *w, const imt_list_info *li)
{
    imt_err err = IMT_OK;
    idx_buf b = {0};
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
    idx_put_be32(key, li->id);
    MDB_val k = {4, key}, d = {b.n, b.p};
    int rc = mdb_put(w->txn, w->idx->db_lists, &k, &d, MDB_NOOVERWRITE);
    if (rc) err = idx_mdb_err(w->idx, rc, "writing the list record");
cleanup:
    imt__free(b.p);
    return err;
}

void idx_writer_free(idx_writer *w)
{
    idx_view_free(&w->v);
    imt__free(w->delta_old);
    imt__free(w->newpdq);
    for (int k = 0; k < 3; k++) imt__free(w->dig[k]);
    imt__free(w->rec.p);
    imt__free(w->mem.p);
    if (w->txn) mdb_txn_abort(w->txn);
    w->txn = NULL;
}

imt_err idx_writer_begin(imt_index *idx, idx_writer *w)
{
    imt_err err = IMT_OK;
    memset(w, 0, sizeof *w);
    w->idx = idx;
    int rc = mdb_txn_begin(idx->env, NULL, 0, &w->txn);
    if (rc) return idx_mdb_err(idx, rc, "starting the write transaction");
    IMT_TRY(idx_read_header(idx, w->txn, &w->h));
    IMT_TRY(idx_view_load(idx, w->txn, &w->h, &w->v));
cleanup:
    return err;
}

/* Commit w (stage, if any, hears "commit" just before). */
imt_err idx_writer_commit(imt_index *idx, idx_writer *w, void (*stage)(void *, const char *),
                          void *opaque)
{
    imt_err err = IMT_OK;
    w->h.generation++;
    w->h.format = IDX_FORMAT_VERSION; /* a format-2 index is upgraded */
    IMT_TRY(idx_write_header(idx, w->txn, &w->h));
    idx_view_free(&w->v); /* its pointers die with the transaction */
    if (stage) stage(opaque, "commit");
    int rc = mdb_txn_commit(w->txn);
    w->txn = NULL;
    if (rc) {
        err = idx_mdb_err(idx, rc, "committing");
        goto cleanup;
    }
cleanup:
    return err;
}

/* Refuse a list whose file was imported already (same SHA-256): it would
 * double every match. Read inside the write transaction, so two importers
 * cannot both pass. */
imt_err idx_writer_check_new(idx_writer *w, const idx_list_meta *m, size_t nm, const char *path)
{
    imt_err err = IMT_OK;
    MDB_cursor *cur = NULL;
    MDB_val k, d;
    int rc = mdb_cursor_open(w->txn, w->idx->db_lists, &cur);
    if (rc) return idx_mdb_err(w->idx, rc, "reading the lists");
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
            idx_set_err(w->idx, "%s: a list record is malformed", w->idx->path);
            err = IMT_E_INDEX_CORRUPT;
            goto cleanup;
        }
        for (size_t j = 0; j < nm; j++) {
            if (strcmp(f[3], m[j].file_sha256) != 0) continue;
            idx_set_err(w->idx, "%s: %s was imported already as list %u '%.200s' (file SHA-256 %s); "
                        "importing it again would count its matches twice (--again to do it anyway)",
                        path, nm > 1 ? "a list of this export" : "this file",
                        (unsigned)idx_get_u32(d.mv_data), f[0], f[3]);
            err = IMT_E_DUPLICATE;
            goto cleanup;
        }
    }
    if (rc && rc != MDB_NOTFOUND) err = idx_mdb_err(w->idx, rc, "reading the lists");
cleanup:
    mdb_cursor_close(cur);
    return err;
}

