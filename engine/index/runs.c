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

/* Write the batch's sorted digests of kind k (a[0..n)) to a new run. */
imt_err imt__idx_run_spill(imt__idx_writer *w, const imt__idx_sink *s, int k, const imt__idx_kv *a, size_t n)
{
    static const unsigned kb[3] = {KB_MD5, KB_SHA1, KB_SHA256};
    imt_err err = IMT_OK;
    size_t len, rl = imt__idx_dig_len[k] + 8, cap = IMT__IDX_RUN_BUF - IMT__IDX_RUN_BUF % rl, o = 0;
    uint8_t *buf = imt__malloc(cap);
    int *nr = imt__realloc(w->runs[k], (w->nruns[k] + 1) * sizeof *nr);
    if (!buf || !nr) {
        imt__free(buf);
        if (nr) w->runs[k] = nr;
        return IMT_E_NOMEM;
    }
    w->runs[k] = nr;
    int fd = run_create(w);
    if (fd < 0) {
        imt__free(buf);
        return IMT_E_IO;
    }
    w->runs[k][w->nruns[k]++] = fd;
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
        MDB_stat ms;
        mdb_stat(w->txn, imt__idx_dig_dbi(w->idx, k), &ms);
        unsigned flags = ms.ms_entries ? 0 : MDB_APPEND;
        while (!err) {
            /* the smallest head: few runs (list size / a quarter of the
             * budget), so a linear pick is enough */
            size_t best = nr;
            for (size_t r = 0; r < nr; r++)
                if (cur[r] && (best == nr || memcmp(cur[r], cur[best], len) < 0)) best = r;
            if (best == nr) break;
            MDB_val key = {len, (void *)cur[best]};
            /* a compact entry promoted by a later batch: a full one now */
            uint32_t e[2] = {imt__idx_get_u32(cur[best] + len), imt__idx_get_u32(cur[best] + len + 4)};
            e[1] = imt__idx_value_cls(w, e[0], e[1]);
            MDB_val val = {e[1] == IDX_CLS_NONE ? 4 : IDX_DIG_COMPACT, e};
            int rc = mdb_put(w->txn, imt__idx_dig_dbi(w->idx, k), &key, &val, flags | MDB_NOOVERWRITE);
            if (rc) {
                err = imt__idx_mdb_err(w->idx, rc, "writing a digest");
                break;
            }
            cur[best] = imt__idx_run_next(&rd[best], &err);
        }
        if (err == IMT_E_IO) imt__idx_set_err(w->idx, "reading the import's temporary runs failed");
        for (size_t r = 0; r < nr; r++) imt__idx_run_close(&rd[r]);
        imt__free(rd);
        imt__free(cur);
        if (err) return err;
    }
    return IMT_OK;
}

