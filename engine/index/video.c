/* engine/index/video.c -- the known videos: their two tables and
 * imt_query_vpdq.
 *
 * Tables (created with the others; an older index opened read-only has
 * none, and then holds no known video):
 *   "videos":  key BE32 video number (0, 1, ... in import order), value
 *              u32 list id, i32 category, u32 frame count, u16 id length,
 *              the id, then per frame 32 bytes PDQ, 1 byte quality, 8 bytes
 *              timestamp (IEEE double), all little-endian;
 *   "vframes": key a PDQ hash then the BE32 number of a video that holds
 *              it, empty value (no LMDB duplicates: the page check before
 *              open, pagecheck.c, admits plain tables only).
 * The frames are also ordinary PDQ entries of the list (membership external
 * id = the video id), so the MIH search finds them; vframes then says which
 * videos each found hash belongs to, whatever list merged it first.
 *
 * Scoring (vPDQ's, as python-threatexchange's VPDQIndex does it): both
 * sides keep frames of quality >= min_quality, exact-duplicate hashes once.
 * A query hash u and a known hash k form a pair when distance(u, k) <=
 * distance: the search returns every such k (it is exact), so for a known
 * video v with hash set K_v, query_matched = |{u : some pair (u, k), k in
 * K_v}| and known_matched = |{k in K_v : some pair (u, k)}|, the counts the
 * reference's brute-force double loop gives, with work proportional to the
 * pairs found instead of |Q| x |K| for every known video. */
#include "index.h"

#include <stdlib.h>
#include <string.h>

typedef struct vpair {
    uint32_t video;
    uint32_t u;                  /* unique query hash */
    uint64_t entry;
    uint16_t dist;
    uint8_t k[32];               /* the known hash (the entry's) */
} vpair;

struct imt__idx_vq {
    uint32_t *rep;               /* unique query hashes: a frame index each */
    size_t caprep;
    int32_t *fmap;               /* frame -> unique hash, -1 filtered */
    size_t capfmap;
    imt_pdq *uq;
    size_t capuq;
    vpair *pairs;
    size_t npairs, cappairs;
    uint8_t *kv;                 /* a known video's hashes, 32 bytes each */
    size_t capkv;
    uint8_t *umark;              /* per unique query hash */
    size_t capumark;
    imt_vpdq_match *out;
    size_t capout;
    uint32_t *fr;                /* frames lists of all results */
    size_t nfr, capfr;
};

static void vq_free(struct imt__idx_vq *q)
{
    if (!q) return;
    imt__free(q->rep);
    imt__free(q->fmap);
    imt__free(q->uq);
    imt__free(q->pairs);
    imt__free(q->kv);
    imt__free(q->umark);
    imt__free(q->out);
    imt__free(q->fr);
    imt__free(q);
}

void imt_vpdq_opts_init(imt_vpdq_opts *o)
{
    if (!o) return;
    o->distance = IMT_PDQ_MATCH_DISTANCE;
    o->min_quality = IMT_PDQ_MIN_QUALITY;
    o->query_pct = 80.0;
    o->compared_pct = 0.0;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

#define VHEAD 14u
#define VFRAME 41u

imt_err imt__idx_video_write(MDB_txn *txn, imt_index *idx, const imt__idx_videos *v,
                             uint32_t list_id, int32_t cat)
{
    imt_err err = IMT_OK;
    if (!v->n) return IMT_OK;
    if (!idx->has_videos) {
        imt__idx_set_err(idx, "%s: this index has no videos table (open it writable)", idx->path);
        return IMT_E_READONLY;
    }
    MDB_cursor *cur = NULL;
    uint8_t *buf = NULL;
    int rc = mdb_cursor_open(txn, idx->db_videos, &cur);
    if (rc) return imt__idx_mdb_err(idx, rc, "reading the videos table");
    MDB_val k, d;
    uint64_t next = 0;
    rc = mdb_cursor_get(cur, &k, &d, MDB_LAST);
    if (rc == 0 && k.mv_size == 4) next = (uint64_t)imt__idx_get_be32(k.mv_data) + 1;
    else if (rc && rc != MDB_NOTFOUND) {
        err = imt__idx_mdb_err(idx, rc, "reading the videos table");
        goto cleanup;
    }
    mdb_cursor_close(cur);
    cur = NULL;
    for (size_t i = 0; i < v->n; i++, next++) {
        const imt__idx_video *x = &v->v[i];
        if (next > UINT32_MAX) {
            imt__idx_set_err(idx, "%s: over 2^32 known videos", idx->path);
            err = IMT_E_TOO_LARGE;
            goto cleanup;
        }
        size_t idl = strlen(x->id), len = VHEAD + idl + x->n * VFRAME;
        uint8_t *b = imt__realloc(buf, len);
        if (!b) {
            err = IMT_E_NOMEM;
            goto cleanup;
        }
        buf = b;
        put32(b, list_id);
        put32(b + 4, (uint32_t)cat);
        put32(b + 8, (uint32_t)x->n);
        b[12] = (uint8_t)idl;
        b[13] = (uint8_t)(idl >> 8);
        memcpy(b + VHEAD, x->id, idl);
        uint8_t key[4];
        imt__idx_put_be32(key, (uint32_t)next);
        for (size_t j = 0; j < x->n; j++) {
            const imt__idx_vframe *f = &v->f[x->first + j];
            uint8_t *o = b + VHEAD + idl + j * VFRAME;
            memcpy(o, f->pdq, 32);
            o[32] = (uint8_t)f->quality;
            uint64_t t;
            memcpy(&t, &f->ts, 8);
            for (int z = 0; z < 8; z++) o[33 + z] = (uint8_t)(t >> (8 * z));
            uint8_t fkb[36];
            memcpy(fkb, f->pdq, 32);
            memcpy(fkb + 32, key, 4);
            MDB_val fk = {36, fkb}, fd = {0, (void *)""};
            rc = mdb_put(txn, idx->db_vframes, &fk, &fd, MDB_NOOVERWRITE);
            if (rc && rc != MDB_KEYEXIST) {
                err = imt__idx_mdb_err(idx, rc, "writing the video frames table");
                goto cleanup;
            }
        }
        MDB_val vk = {4, key}, vd = {len, b};
        rc = mdb_put(txn, idx->db_videos, &vk, &vd, MDB_NOOVERWRITE);
        if (rc) {
            err = imt__idx_mdb_err(idx, rc, "writing the videos table");
            goto cleanup;
        }
    }
cleanup:
    if (cur) mdb_cursor_close(cur);
    imt__free(buf);
    return err;
}

/* ---- the query ------------------------------------------------------- */

static imt_err grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return IMT_OK;
    size_t nc = *cap ? *cap : 16, bytes;
    while (nc < need) nc *= 2;
    if (!imt__mul_ok(nc, elem, &bytes)) return IMT_E_NOMEM;
    void *q = imt__realloc(*p, bytes);
    if (!q) return IMT_E_NOMEM;
    *p = q;
    *cap = nc;
    return IMT_OK;
}

static int rep_cmp(const void *a, const void *b, void *ctx)
{
    const imt_video_frame *fr = ctx;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    int c = memcmp(fr[x].pdq.bytes, fr[y].pdq.bytes, 32);
    return c ? c : (x < y ? -1 : x > y);
}

static int pair_cmp(const void *a, const void *b)
{
    const vpair *x = a, *y = b;
    if (x->video != y->video) return x->video < y->video ? -1 : 1;
    return memcmp(x->k, y->k, 32);
}

static int h32_cmp(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

static int out_cmp(const void *a, const void *b)
{
    const imt_vpdq_match *x = a, *y = b;
    if (x->list_id != y->list_id) return x->list_id < y->list_id ? -1 : 1;
    return strcmp(x->video, y->video);
}

/* Score video number vn against the pairs p[0..np) (all of it). */
static imt_err score(imt_cursor *c, struct imt__idx_vq *q, const imt_vpdq_opts *o,
                     uint32_t vn, vpair *p, size_t np, size_t nuq, size_t nframes, size_t *nout)
{
    imt_index *idx = c->idx;
    uint8_t key[4];
    imt__idx_put_be32(key, vn);
    MDB_val k = {4, key}, d;
    int rc = mdb_get(c->txn, idx->db_videos, &k, &d);
    if (rc == MDB_NOTFOUND) return IMT_E_INDEX_CORRUPT; /* vframes names it */
    if (rc) return IMT_E_DB;
    const uint8_t *r = d.mv_data;
    if (d.mv_size < VHEAD) return IMT_E_INDEX_CORRUPT;
    uint32_t list = get32(r), nf = get32(r + 8);
    int32_t cat = (int32_t)get32(r + 4);
    size_t idl = (size_t)r[12] | (size_t)r[13] << 8;
    if (d.mv_size != VHEAD + idl + (size_t)nf * VFRAME) return IMT_E_INDEX_CORRUPT;
    /* K_v: its distinct hashes of quality >= min, sorted */
    imt_err err = grow((void **)&q->kv, &q->capkv, (size_t)nf + 1, 32);
    if (err) return err;
    size_t nk = 0;
    for (uint32_t i = 0; i < nf; i++) {
        const uint8_t *f = r + VHEAD + idl + (size_t)i * VFRAME;
        if ((int)f[32] >= o->min_quality) memcpy(q->kv + 32 * nk++, f, 32);
    }
    if (nk) qsort(q->kv, nk, 32, h32_cmp);
    size_t w = 0;
    for (size_t i = 0; i < nk; i++)
        if (!w || memcmp(q->kv + 32 * i, q->kv + 32 * (w - 1), 32))
            memmove(q->kv + 32 * w++, q->kv + 32 * i, 32);
    nk = w;
    if (!nk) return IMT_OK;
    /* the pairs are sorted by k: count distinct k in K_v, mark their u */
    memset(q->umark, 0, nuq);
    uint32_t km = 0, qm = 0;
    int mind = 257;
    uint64_t entry = UINT64_MAX;
    for (size_t i = 0; i < np; i++) {
        if (!bsearch(p[i].k, q->kv, nk, 32, h32_cmp)) continue;
        if (i == 0 || memcmp(p[i].k, p[i - 1].k, 32) ||
            !bsearch(p[i - 1].k, q->kv, nk, 32, h32_cmp))
            km++;
        if (!q->umark[p[i].u]) {
            q->umark[p[i].u] = 1;
            qm++;
        }
        if (p[i].dist < mind) mind = p[i].dist;
        if (p[i].entry < entry) entry = p[i].entry;
    }
    if (!qm) return IMT_OK;
    double qp = (double)qm * 100.0 / (double)nuq, cp = (double)km * 100.0 / (double)nk;
    if (qp < o->query_pct || cp < o->compared_pct) return IMT_OK;
    /* the query frames that match it, in order */
    size_t first = q->nfr;
    for (size_t i = 0; i < nframes; i++) {
        int32_t u = q->fmap[i];
        if (u < 0 || !q->umark[u]) continue;
        err = grow((void **)&q->fr, &q->capfr, q->nfr + 1, sizeof *q->fr);
        if (err) return err;
        q->fr[q->nfr++] = (uint32_t)i;
    }
    err = grow((void **)&q->out, &q->capout, *nout + 1, sizeof *q->out);
    if (err) return err;
    imt_vpdq_match *m = &q->out[(*nout)++];
    memset(m, 0, sizeof *m);
    m->list_id = list;
    /* the id lives in the record, valid as long as the cursor's snapshot;
     * it is not NUL-terminated there, so it is copied after the frames */
    m->video = NULL;
    m->category = cat;
    m->disposition = imt__idx_disposition(idx, list, cat);
    m->entry = entry;
    m->query_frames = (uint32_t)nuq;
    m->query_matched = qm;
    m->known_frames = (uint32_t)nk;
    m->known_matched = km;
    m->query_pct = qp;
    m->compared_pct = cp;
    m->min_distance = mind;
    m->n_frames = q->nfr - first;
    /* frames: an offset until the end (q->fr may move) */
    m->frames = (const uint32_t *)(uintptr_t)first;
    /* the id: appended to fr as bytes (aligned to 4) */
    size_t words = (idl + 1 + 3) / 4;
    err = grow((void **)&q->fr, &q->capfr, q->nfr + words, sizeof *q->fr);
    if (err) return err;
    char *id = (char *)(q->fr + q->nfr);
    memcpy(id, r + VHEAD, idl);
    id[idl] = 0;
    m->video = (const char *)(uintptr_t)q->nfr; /* an offset too, fixed below */
    q->nfr += words;
    return IMT_OK;
}

imt_err imt_query_vpdq(imt_cursor *c, const imt_video_frame *frames, size_t n,
                       const imt_vpdq_opts *opts, const imt_vpdq_match **out, size_t *n_out)
{
    if (!c || !out || !n_out || (n && !frames)) return IMT_E_INVALID;
    *out = NULL;
    *n_out = 0;
    imt_vpdq_opts o;
    if (opts) o = *opts;
    else imt_vpdq_opts_init(&o);
    if (o.distance < 0 || o.distance > 256) return IMT_E_INVALID;
    imt_index *idx = c->idx;
    if (!idx->has_videos || !n) return IMT_OK;
    if (n > UINT32_MAX / 2) return IMT_E_TOO_LARGE;
    if (!c->vq) {
        if (!(c->vq = imt__calloc(1, sizeof *c->vq))) return IMT_E_NOMEM;
        c->vq_free = vq_free; /* a pointer, not a call: query.c stays below this file */
    }
    struct imt__idx_vq *q = c->vq;
    imt_err err = IMT_OK;
    q->npairs = q->nfr = 0;
    MDB_cursor *mc = NULL;
    /* distinct query hashes of quality >= min */
    IMT_TRY(grow((void **)&q->rep, &q->caprep, n, sizeof *q->rep));
    IMT_TRY(grow((void **)&q->fmap, &q->capfmap, n, sizeof *q->fmap));
    size_t nf = 0;
    for (size_t i = 0; i < n; i++) {
        q->fmap[i] = -1;
        if (frames[i].quality >= o.min_quality) q->rep[nf++] = (uint32_t)i;
    }
    if (!nf) return IMT_OK;
    qsort_r(q->rep, nf, sizeof *q->rep, rep_cmp, (void *)frames);
    size_t nuq = 0;
    IMT_TRY(grow((void **)&q->uq, &q->capuq, nf, sizeof *q->uq));
    for (size_t i = 0; i < nf; i++) {
        uint32_t f = q->rep[i];
        if (nuq && !memcmp(frames[f].pdq.bytes, q->uq[nuq - 1].bytes, 32)) {
            q->fmap[f] = (int32_t)(nuq - 1);
            continue;
        }
        q->uq[nuq] = frames[f].pdq;
        q->fmap[f] = (int32_t)nuq++;
    }
    IMT_TRY(grow((void **)&q->umark, &q->capumark, nuq, 1));
    /* every known hash within the distance of each, through the search */
    const imt_match *m;
    size_t nm;
    IMT_TRY(imt_query_pdq_batch(c, q->uq, nuq, 1, o.distance, &m, &nm));
    int rc = mdb_cursor_open(c->txn, idx->db_vframes, &mc);
    if (rc) {
        err = IMT_E_DB;
        goto cleanup;
    }
    for (size_t i = 0; i < nm; i++) {
        uint8_t kb[36] = {0};
        memcpy(kb, m[i].pdq.bytes, 32);
        MDB_val k = {36, kb}, d;
        for (rc = mdb_cursor_get(mc, &k, &d, MDB_SET_RANGE);
             rc == 0 && k.mv_size == 36 && !memcmp(k.mv_data, m[i].pdq.bytes, 32);
             rc = mdb_cursor_get(mc, &k, &d, MDB_NEXT)) {
            IMT_TRY(grow((void **)&q->pairs, &q->cappairs, q->npairs + 1, sizeof *q->pairs));
            vpair *p = &q->pairs[q->npairs++];
            p->video = imt__idx_get_be32((const uint8_t *)k.mv_data + 32);
            p->u = (uint32_t)m[i].query;
            p->entry = m[i].entry;
            p->dist = (uint16_t)m[i].distance;
            memcpy(p->k, m[i].pdq.bytes, 32);
        }
        if (rc && rc != MDB_NOTFOUND) {
            err = IMT_E_DB;
            goto cleanup;
        }
    }
    mdb_cursor_close(mc);
    mc = NULL;
    if (q->npairs > 1) qsort(q->pairs, q->npairs, sizeof *q->pairs, pair_cmp); /* pairs may be NULL */
    size_t nout = 0;
    for (size_t i = 0; i < q->npairs;) {
        size_t j = i;
        while (j < q->npairs && q->pairs[j].video == q->pairs[i].video) j++;
        IMT_TRY(score(c, q, &o, q->pairs[i].video, q->pairs + i, j - i, nuq, n, &nout));
        i = j;
    }
    /* offsets into fr become pointers now that it no longer moves */
    for (size_t i = 0; i < nout; i++) {
        q->out[i].frames = q->fr + (uintptr_t)q->out[i].frames;
        q->out[i].video = (const char *)(q->fr + (uintptr_t)q->out[i].video);
    }
    if (nout > 1) qsort(q->out, nout, sizeof *q->out, out_cmp);
    err = imt__idx_unchanged(idx);
    if (err) goto cleanup;
    *out = q->out;
    *n_out = nout;
cleanup:
    if (mc) mdb_cursor_close(mc);
    return err;
}
