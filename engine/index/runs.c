/* engine/index/runs.c -- an import's sorted digest runs: when a list is
 * imported in several batches (the memory budget), each batch's new digests
 * go, sorted, to an unnamed temporary file; later batches read them back in
 * order, and the end merges every run into the digest tables in key order.
 * Calls meta.c and sink.c only. */
#include "index.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const size_t imt__idx_dig_len[3] = {16, 20, 32};

imt_err imt__idx_run_open(imt__idx_run_rd *r, int fd, size_t rl)
{
    memset(r, 0, sizeof *r);
    r->fd = fd;
    r->rl = rl;
    r->buf = imt__malloc(IMT__IDX_RUN_BUF - IMT__IDX_RUN_BUF % rl);
    if (!r->buf) return IMT_E_NOMEM;
    if (lseek(fd, 0, SEEK_SET) < 0) return IMT_E_IO;
    return IMT_OK;
}

/* The next record, or NULL at the end (*err set on a read error). */
const uint8_t *imt__idx_run_next(imt__idx_run_rd *r, imt_err *err)
{
    if (r->pos + r->rl <= r->n) {
        const uint8_t *p = r->buf + r->pos;
        r->pos += r->rl;
        return p;
    }
    if (r->eof) return NULL;
    size_t cap = IMT__IDX_RUN_BUF - IMT__IDX_RUN_BUF % r->rl;
    r->n = 0;
    r->pos = 0;
    while (r->n < cap) {
        ssize_t k = read(r->fd, r->buf + r->n, cap - r->n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            *err = IMT_E_IO;
            return NULL;
        }
        if (k == 0) {
            r->eof = 1;
            break;
        }
        r->n += (size_t)k;
    }
    if (r->n % r->rl) {
        *err = IMT_E_IO;
        return NULL;
    }
    return imt__idx_run_next(r, err);
}

void imt__idx_run_close(imt__idx_run_rd *r)
{
    imt__free(r->buf);
    r->buf = NULL;
}

/* An unnamed file in $TMPDIR (else /tmp): nothing stays on any exit. */
static int run_create(imt__idx_writer *w)
{
    const char *d = getenv("TMPDIR");
    if (!d || !*d) d = "/tmp";
    int fd = open(d, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) {
        char p[600];
        snprintf(p, sizeof p, "%s/imgtriage-run-XXXXXX", d);
        fd = mkostemp(p, O_CLOEXEC);
        if (fd >= 0) unlink(p);
    }
    if (fd < 0)
        imt__idx_set_err(w->idx, "cannot create a temporary file in %s for the import's sorted runs: %s",
                    d, strerror(errno));
    return fd;
}

static imt_err write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return IMT_E_IO;
        p += k;
        n -= (size_t)k;
    }
    return IMT_OK;
}


/* ---- the filter of digests in runs ---------------------------------------
 * A blocked Bloom filter: a key sets 8 bits of one 512-bit block (one cache
 * line). Sized once, at the first run, for 16 bits a digest of the list as
 * the importer estimates it (bounded by bloom_cap): about 0.2% false
 * positives, each costing a block read per run. Past its size it only
 * answers "maybe" more often: results never depend on it. */
/* A hash of the whole digest (a list may hold digests sharing a prefix). */
static uint64_t bloom_mix(const uint8_t *h, int kind)
{
    uint64_t x = (uint64_t)(kind + 1) * 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < imt__idx_dig_len[kind]; i += 4) {
        uint32_t v;
        memcpy(&v, h + i, 4);
        x ^= v;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    }
    return x ^ (x >> 31);
}

static const uint64_t *bloom_block(const imt__idx_writer *w, uint64_t x)
{
    return w->bloom + 8 * (size_t)(((x >> 32) * (uint64_t)w->bloom_blocks) >> 32);
}

static void bloom_add(imt__idx_writer *w, const uint8_t *h, int kind)
{
    uint64_t x = bloom_mix(h, kind), y = x * 0xD6E8FEB86659FD93ull;
    uint64_t *b = (uint64_t *)bloom_block(w, x);
    for (int i = 0; i < 8; i++) {
        unsigned bit = (unsigned)((i < 3 ? x >> (9 * i) : y >> (9 * (i - 3))) & 511);
        b[bit >> 6] |= 1ull << (bit & 63);
    }
}

static int bloom_has(const imt__idx_writer *w, const uint8_t *h, int kind)
{
    uint64_t x = bloom_mix(h, kind), y = x * 0xD6E8FEB86659FD93ull;
    const uint64_t *b = bloom_block(w, x);
    for (int i = 0; i < 8; i++) {
        unsigned bit = (unsigned)((i < 3 ? x >> (9 * i) : y >> (9 * (i - 3))) & 511);
        if (!(b[bit >> 6] >> (bit & 63) & 1)) return 0;
    }
    return 1;
}

static imt_err bloom_init(imt__idx_writer *w, uint64_t n_batch)
{
    /* 16 bits a digest: the estimate, else eight batches like this one */
    uint64_t want = w->est_digests > n_batch ? w->est_digests : 8 * n_batch, bytes = want * 2 + 64;
    if (w->bloom_cap && bytes > w->bloom_cap) bytes = w->bloom_cap;
    if (bytes < 4096) bytes = 4096;
    if (bytes > ((uint64_t)1 << 40)) bytes = (uint64_t)1 << 40;
    w->bloom_blocks = (size_t)(bytes / 64);
    w->bloom = imt__calloc(w->bloom_blocks, 64);
    if (!w->bloom) {
        w->bloom_blocks = 0;
        return IMT_E_NOMEM;
    }
    return IMT_OK;
}

/* Write the batch's sorted digests of kind k (a[0..n)) to a new run. */
imt_err imt__idx_run_spill(imt__idx_writer *w, const imt__idx_sink *s, int k, const imt__idx_kv *a, size_t n)
{
    static const unsigned kb[3] = {KB_MD5, KB_SHA1, KB_SHA256};
    imt_err err = IMT_OK;
    size_t len, rl = imt__idx_dig_len[k] + 8, cap = IMT__IDX_RUN_BUF - IMT__IDX_RUN_BUF % rl, o = 0;
    uint8_t *buf = imt__malloc(cap);
    int *nr = imt__realloc(w->runs[k], (w->nruns[k] + 1) * sizeof *nr);
    if (nr) w->runs[k] = nr;
    struct imt__idx_run_meta *rm = imt__realloc(w->rmeta[k], (w->nruns[k] + 1) * sizeof *rm);
    if (rm) w->rmeta[k] = rm;
    uint8_t *first = imt__malloc((n / IMT__IDX_RUN_STRIDE + 1) * imt__idx_dig_len[k]);
    if (!buf || !nr || !rm || !first || (!w->bloom && bloom_init(w, n) != IMT_OK)) {
        imt__free(buf);
        imt__free(first);
        return IMT_E_NOMEM;
    }
    int fd = run_create(w);
    if (fd < 0) {
        imt__free(buf);
        imt__free(first);
        return IMT_E_IO;
    }
    w->runs[k][w->nruns[k]] = fd;
    w->rmeta[k][w->nruns[k]].n = n;
    w->rmeta[k][w->nruns[k]].first = first;
    w->nruns[k]++;
    for (size_t i = 0; i < n; i++) {
        /* in hash order the records, their hash bytes and classes are
         * random accesses: fetch them ahead (this loop was a fifth of a
         * digest list's import) */
        if (i + 16 < n) {
            __builtin_prefetch(&s->recs[a[i + 16].idx]);
            __builtin_prefetch(&w->cls_of[a[i + 16].idx]);
        }
        if (i + 8 < n) __builtin_prefetch(s->hb + s->recs[a[i + 8].idx].hash);
        const uint8_t *h = imt__idx_srec_hash(s, &s->recs[a[i].idx], kb[k], &len);
        memcpy(buf + o, h, len);
        if (i % IMT__IDX_RUN_STRIDE == 0) memcpy(first + i / IMT__IDX_RUN_STRIDE * len, h, len);
        bloom_add(w, h, k);
        uint32_t cls = imt__idx_value_cls(w, a[i].pad, w->cls_of[a[i].idx]);
        memcpy(buf + o + len, &a[i].pad, 4);
        memcpy(buf + o + len + 4, &cls, 4);
        o += rl;
        if (o == cap || i + 1 == n) {
            if (write_all(fd, buf, o) != IMT_OK) {
                imt__idx_set_err(w->idx, "writing the import's temporary runs failed: %s", strerror(errno));
                err = IMT_E_IO;
                break;
            }
            o = 0;
        }
    }
    imt__free(buf);
    return err;
}

imt_err imt__idx_writer_runs(imt__idx_writer *w)
{
    imt_err err = IMT_OK;
    for (int k = 0; k < 3; k++) {
        size_t nr = w->nruns[k], len = imt__idx_dig_len[k];
        if (!nr) continue;
        imt__idx_run_rd *rd = imt__calloc(nr, sizeof *rd);
        const uint8_t **cur = imt__calloc(nr, sizeof *cur);
        if (!rd || !cur) {
            imt__free(rd);
            imt__free(cur);
            return IMT_E_NOMEM;
        }
        for (size_t r = 0; r < nr && !err; r++) {
            err = imt__idx_run_open(&rd[r], w->runs[k][r], len + 8);
            if (!err) cur[r] = imt__idx_run_next(&rd[r], &err);
        }
        unsigned flags;
        MDB_dbi dbi = imt__idx_dig_target(w->idx, w->txn, k, &flags);
        /* one k-way merge: a binary heap of the runs by their head */
        size_t *hp = imt__malloc(nr * sizeof *hp), hn = 0;
        if (!hp) err = IMT_E_NOMEM;
        for (size_t r = 0; r < nr && !err; r++) {
            if (!cur[r]) continue;
            size_t i = hn++;
            while (i && memcmp(cur[r], cur[hp[(i - 1) / 2]], len) < 0) {
                hp[i] = hp[(i - 1) / 2];
                i = (i - 1) / 2;
            }
            hp[i] = r;
        }
        while (!err && hn) {
            size_t best = hp[0];
            /* a compact entry promoted by a later batch: a full one now */
            uint32_t e[2] = {imt__idx_get_u32(cur[best] + len), imt__idx_get_u32(cur[best] + len + 4)};
            e[1] = imt__idx_value_cls(w, e[0], e[1]);
            MDB_val key = {len, (void *)cur[best]};
            MDB_val val = {e[1] == IDX_CLS_NONE ? 4 : IDX_DIG_COMPACT, e};
            int rc = mdb_put(w->txn, dbi, &key, &val, flags | MDB_NOOVERWRITE);
            if (rc) {
                err = imt__idx_mdb_err(w->idx, rc, "writing a digest");
                break;
            }
            cur[best] = imt__idx_run_next(&rd[best], &err);
            if (!cur[best]) best = hp[--hn]; /* the last one sifts down from the root */
            size_t i = 0;
            for (;;) {
                size_t c = 2 * i + 1;
                if (c >= hn) break;
                if (c + 1 < hn && memcmp(cur[hp[c + 1]], cur[hp[c]], len) < 0) c++;
                if (memcmp(cur[hp[c]], cur[best], len) >= 0) break;
                hp[i] = hp[c];
                i = c;
            }
            if (hn) hp[i] = best;
        }
        imt__free(hp);
        if (err == IMT_E_IO) imt__idx_set_err(w->idx, "reading the import's temporary runs failed");
        for (size_t r = 0; r < nr; r++) imt__idx_run_close(&rd[r]);
        imt__free(rd);
        imt__free(cur);
        if (err) return err;
    }
    return IMT_OK;
}


MDB_dbi imt__idx_dig_target(const imt_index *idx, MDB_txn *txn, int k, unsigned *flags)
{
    MDB_stat ms;
    *flags = MDB_APPEND;
    if (mdb_stat(txn, imt__idx_dig_dbi(idx, k), &ms) != 0 || ms.ms_entries == 0)
        return imt__idx_dig_dbi(idx, k);
    if (mdb_stat(txn, imt__idx_dplus_dbi(idx, k), &ms) != 0 || ms.ms_entries != 0) *flags = 0;
    return imt__idx_dplus_dbi(idx, k);
}

/* One digest table entry as a run record (key, entry id, class: NONE for a
 * 4-byte value) into buf at *o, flushed to fd when full. */
static imt_err fold_put(imt__idx_writer *w, int fd, uint8_t *buf, size_t cap, size_t *o, size_t len,
                        const MDB_val *k, const MDB_val *v)
{
    if (k->mv_size != len || (v->mv_size != 4 && v->mv_size != IDX_DIG_COMPACT)) {
        imt__idx_set_err(w->idx, "%s: a digest record is malformed", w->idx->path);
        return IMT_E_INDEX_CORRUPT;
    }
    uint32_t cls = v->mv_size == 4 ? IDX_CLS_NONE : imt__idx_get_u32((const uint8_t *)v->mv_data + 4);
    memcpy(buf + *o, k->mv_data, len);
    memcpy(buf + *o + len, v->mv_data, 4);
    memcpy(buf + *o + len + 4, &cls, 4);
    *o += len + 8;
    if (*o == cap) {
        if (write_all(fd, buf, *o) != IMT_OK) {
            imt__idx_set_err(w->idx, "writing the import's temporary runs failed: %s", strerror(errno));
            return IMT_E_IO;
        }
        *o = 0;
    }
    return IMT_OK;
}

/* Kind k: main and delta merged in key order into a run, both emptied,
 * the run appended into the main table. */
static imt_err fold_one(imt__idx_writer *w, int k)
{
    imt_err err = IMT_OK;
    size_t len = imt__idx_dig_len[k], rl = len + 8, cap = IMT__IDX_RUN_BUF - IMT__IDX_RUN_BUF % rl, o = 0;
    MDB_cursor *cm = NULL, *cd = NULL;
    imt__idx_run_rd rd = {0};
    uint8_t *buf = imt__malloc(cap);
    int fd = -1;
    if (!buf) return IMT_E_NOMEM;
    fd = run_create(w);
    if (fd < 0) {
        err = IMT_E_IO;
        goto cleanup;
    }
    MDB_val km, vm, kd, vd;
    int rc = mdb_cursor_open(w->txn, imt__idx_dig_dbi(w->idx, k), &cm);
    if (!rc) rc = mdb_cursor_open(w->txn, imt__idx_dplus_dbi(w->idx, k), &cd);
    if (rc) {
        err = imt__idx_mdb_err(w->idx, rc, "reading the digests");
        goto cleanup;
    }
    int rm = mdb_cursor_get(cm, &km, &vm, MDB_FIRST), rdl = mdb_cursor_get(cd, &kd, &vd, MDB_FIRST);
    while (rm == 0 || rdl == 0) {
        int c = rm ? 1 : rdl ? -1 : memcmp(km.mv_data, kd.mv_data, len < kd.mv_size ? len : kd.mv_size);
        if (c == 0) {
            imt__idx_set_err(w->idx, "%s: a digest is in its table and in its delta", w->idx->path);
            err = IMT_E_INDEX_CORRUPT;
            goto cleanup;
        }
        if (c < 0) {
            IMT_TRY(fold_put(w, fd, buf, cap, &o, len, &km, &vm));
            rm = mdb_cursor_get(cm, &km, &vm, MDB_NEXT);
        } else {
            IMT_TRY(fold_put(w, fd, buf, cap, &o, len, &kd, &vd));
            rdl = mdb_cursor_get(cd, &kd, &vd, MDB_NEXT);
        }
    }
    if (rm != MDB_NOTFOUND || rdl != MDB_NOTFOUND) {
        err = imt__idx_mdb_err(w->idx, rm != MDB_NOTFOUND ? rm : rdl, "reading the digests");
        goto cleanup;
    }
    if (o && write_all(fd, buf, o) != IMT_OK) {
        imt__idx_set_err(w->idx, "writing the import's temporary runs failed: %s", strerror(errno));
        err = IMT_E_IO;
        goto cleanup;
    }
    mdb_cursor_close(cm);
    mdb_cursor_close(cd);
    cm = cd = NULL;
    rc = mdb_drop(w->txn, imt__idx_dig_dbi(w->idx, k), 0);
    if (!rc) rc = mdb_drop(w->txn, imt__idx_dplus_dbi(w->idx, k), 0);
    if (rc) {
        err = imt__idx_mdb_err(w->idx, rc, "emptying a digest table");
        goto cleanup;
    }
    IMT_TRY(imt__idx_run_open(&rd, fd, rl));
    const uint8_t *p;
    while ((p = imt__idx_run_next(&rd, &err)) != NULL) {
        uint32_t e[2] = {imt__idx_get_u32(p + len), imt__idx_get_u32(p + len + 4)};
        MDB_val key = {len, (void *)p}, val = {e[1] == IDX_CLS_NONE ? 4 : IDX_DIG_COMPACT, e};
        rc = mdb_put(w->txn, imt__idx_dig_dbi(w->idx, k), &key, &val, MDB_APPEND);
        if (rc) {
            err = imt__idx_mdb_err(w->idx, rc, "writing a digest");
            goto cleanup;
        }
    }
    if (err) imt__idx_set_err(w->idx, "reading the import's temporary runs failed");
cleanup:
    if (cm) mdb_cursor_close(cm);
    if (cd) mdb_cursor_close(cd);
    imt__idx_run_close(&rd);
    if (fd >= 0) close(fd);
    imt__free(buf);
    return err;
}

imt_err imt__idx_fold_digests(imt__idx_writer *w, int force, uint64_t *folded)
{
    *folded = 0;
    for (int k = 0; k < 3; k++) {
        MDB_stat m, d;
        if (mdb_stat(w->txn, imt__idx_dig_dbi(w->idx, k), &m) || mdb_stat(w->txn, imt__idx_dplus_dbi(w->idx, k), &d))
            continue;
        if (d.ms_entries == 0 || (!force && d.ms_entries * 16 <= m.ms_entries)) continue;
        imt_err err = fold_one(w, k);
        if (err) return err;
        *folded += d.ms_entries;
    }
    return IMT_OK;
}

/* Block b (IMT__IDX_RUN_STRIDE records) of run r of kind k into buf; its
 * record count, 0 on a read error. */
static size_t run_block(imt__idx_writer *w, int k, size_t r, uint64_t b, uint8_t *buf)
{
    const struct imt__idx_run_meta *m = &w->rmeta[k][r];
    size_t rl = imt__idx_dig_len[k] + 8;
    uint64_t lo = b * IMT__IDX_RUN_STRIDE, n = m->n - lo < IMT__IDX_RUN_STRIDE ? m->n - lo : IMT__IDX_RUN_STRIDE;
    size_t want = (size_t)n * rl, got = 0;
    while (got < want) {
        ssize_t k2 = pread(w->runs[k][r], buf + got, want - got, (off_t)(lo * rl + got));
        if (k2 < 0 && errno == EINTR) continue;
        if (k2 <= 0) return 0;
        got += (size_t)k2;
    }
    return (size_t)n;
}

imt_err imt__idx_run_lookup(imt__idx_writer *w, const imt__idx_sink *s, int k, const imt__idx_kv *a,
                            size_t m, uint32_t *pre, uint32_t *pcls)
{
    static const unsigned kb[3] = {KB_MD5, KB_SHA1, KB_SHA256};
    size_t nr = w->nruns[k], rl = imt__idx_dig_len[k] + 8, len;
    imt_err err = IMT_OK;
    /* per run: the block held, and its records */
    uint8_t *bufs = imt__malloc(nr * IMT__IDX_RUN_STRIDE * rl);
    uint64_t *held = imt__malloc(nr * sizeof *held);
    size_t *hn = imt__malloc(nr * sizeof *hn);
    if (!bufs || !held || !hn) {
        err = IMT_E_NOMEM;
        goto cleanup;
    }
    for (size_t r = 0; r < nr; r++) held[r] = UINT64_MAX;
    for (size_t i = 0; i < m; i++) {
        const uint8_t *h = imt__idx_srec_hash(s, &s->recs[a[i].idx], kb[k], &len);
        if (!bloom_has(w, h, k)) continue;
        for (size_t r = 0; r < nr && pre[a[i].idx] == UINT32_MAX; r++) {
            const struct imt__idx_run_meta *rm = &w->rmeta[k][r];
            uint64_t nb = (rm->n + IMT__IDX_RUN_STRIDE - 1) / IMT__IDX_RUN_STRIDE;
            /* the one block that may hold it: the last whose first key is
             * <= h (a run's keys are distinct and sorted) */
            uint64_t lo = 0, hi = nb;
            while (lo < hi) {
                uint64_t mid = lo + (hi - lo) / 2;
                if (memcmp(rm->first + mid * len, h, len) <= 0) lo = mid + 1;
                else hi = mid;
            }
            if (lo > 0) {
                uint64_t b = lo - 1;
                uint8_t *bb = bufs + r * IMT__IDX_RUN_STRIDE * rl;
                if (held[r] != b) {
                    hn[r] = run_block(w, k, r, b, bb);
                    if (!hn[r]) {
                        held[r] = UINT64_MAX;
                        imt__idx_set_err(w->idx, "reading the import's temporary runs failed");
                        err = IMT_E_IO;
                        goto cleanup;
                    }
                    held[r] = b;
                }
                for (size_t j = 0; j < hn[r]; j++) {
                    const uint8_t *p = bb + j * rl;
                    if (memcmp(p, h, len) == 0) {
                        pre[a[i].idx] = imt__idx_get_u32(p + len);
                        pcls[a[i].idx] = imt__idx_get_u32(p + len + 4);
                        break;
                    }
                }
            }
        }
    }
cleanup:
    imt__free(bufs);
    imt__free(held);
    imt__free(hn);
    return err;
}
