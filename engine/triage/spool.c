/* engine/triage/spool.c -- the listing of a device's regular files, per
 * class, read back in seeded random order with bounded memory.
 *
 * Records are appended to one memory buffer per class. When the buffers
 * together pass the memory budget, each is written to its class's unnamed
 * temporary file (O_TMPFILE, else mkstemp and unlink: nothing stays behind,
 * and never in the evidence: preview.c refuses a tmpdir inside a PATH).
 * Reading a class back: one that never spilled is sorted in memory; one
 * that did is first split into 2^b buckets by the top bits of its keys
 * (uniform, so each bucket holds about a 2^b-th of the class), with 2^b
 * chosen so that a bucket fits in half the budget, and each bucket is then
 * sorted in memory in turn. Keys are a keyed hash of the path, so the
 * order is a random permutation fixed by the seed. */
#include "triage.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A record as stored: this header, the path, its NUL, zeros to 8 bytes,
 * the blob, zeros to 8 bytes. */
typedef struct rhdr {
    uint64_t key, seq, dev, ino, size;
    uint32_t len;              /* path bytes, without the NUL */
    uint32_t blob_len;
} rhdr;

static size_t rec_bytes(uint32_t len, uint32_t blob_len)
{
    return sizeof(rhdr) + (((size_t)len + 1 + 7) & ~(size_t)7) +
           (((size_t)blob_len + 7) & ~(size_t)7);
}

static size_t hdr_rec_bytes(const rhdr *h)
{
    return rec_bytes(h->len, h->blob_len);
}

typedef struct cstore {
    char *mem;
    size_t len, cap;
    int fd;                    /* -1 until the class spills */
    uint64_t file_bytes;
} cstore;

struct imt__spool {
    char *tmpdir;
    size_t memory, held;
    cstore c[IMT_CLASS__COUNT];
    /* reading one class back */
    int cur;
    int from_mem;              /* the class never spilled: one run from mem */
    int mem_taken;
    int *bfd;                  /* buckets of a spilled class */
    size_t nb, bi;
    char *run;
    size_t run_len;
    imt__tfile *v;
    size_t nv, capv;
};

uint64_t imt__triage_key(uint64_t seed, const char *path)
{
    /* splitmix64's finaliser over 8-byte words, keyed by the seed */
#define MIX(z) ((z) = ((z) ^ ((z) >> 30)) * 0xBF58476D1CE4E5B9ull, \
                (z) = ((z) ^ ((z) >> 27)) * 0x94D049BB133111EBull, (z) ^= (z) >> 31)
    uint64_t h = seed + 0x9E3779B97F4A7C15ull;
    MIX(h);
    size_t n = strlen(path);
    for (size_t i = 0; i < n; i += 8) {
        uint64_t w = 0;
        size_t k = n - i < 8 ? n - i : 8;
        memcpy(&w, path + i, k);
        h ^= w + 0x9E3779B97F4A7C15ull * (i + 1);
        MIX(h);
    }
    h ^= (uint64_t)n;
    MIX(h);
#undef MIX
    return h;
}

static int tmp_fd(const char *dir)
{
#ifdef O_TMPFILE
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0) return fd;
#endif
    size_t n = strlen(dir) + 40;
    char *t = imt__malloc(n);
    if (!t) return -1;
    snprintf(t, n, "%s/imgtriage-preview-XXXXXX", dir);
    int fd2 = mkstemp(t);
    if (fd2 >= 0) unlink(t);
    imt__free(t);
    return fd2;
}

static imt_err write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return IMT_E_IO;
        c += w;
        n -= (size_t)w;
    }
    return IMT_OK;
}

static imt_err read_all(int fd, void *p, size_t n, uint64_t off)
{
    char *c = p;
    while (n) {
        ssize_t r = pread(fd, c, n, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return IMT_E_IO;
        c += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return IMT_OK;
}

imt_err imt__spool_open(imt__spool **out, const char *tmpdir, size_t memory)
{
    imt__spool *s = imt__calloc(1, sizeof *s);
    if (!s) return IMT_E_NOMEM;
    s->tmpdir = imt__strdup(tmpdir ? tmpdir : "/tmp");
    if (!s->tmpdir) {
        imt__free(s);
        return IMT_E_NOMEM;
    }
    s->memory = memory < 4096 ? 4096 : memory;
    for (int i = 0; i < IMT_CLASS__COUNT; i++) s->c[i].fd = -1;
    s->cur = -1;
    *out = s;
    return IMT_OK;
}

static void close_buckets(imt__spool *s)
{
    for (size_t i = 0; s->bfd && i < s->nb; i++)
        if (s->bfd[i] >= 0) close(s->bfd[i]);
    imt__free(s->bfd);
    s->bfd = NULL;
    s->nb = s->bi = 0;
}

void imt__spool_free(imt__spool *s)
{
    if (!s) return;
    for (int i = 0; i < IMT_CLASS__COUNT; i++) {
        imt__free(s->c[i].mem);
        if (s->c[i].fd >= 0) close(s->c[i].fd);
    }
    close_buckets(s);
    imt__free(s->run);
    imt__free(s->v);
    imt__free(s->tmpdir);
    imt__free(s);
}

/* Write class i's buffer to its file and let the buffer go. */
static imt_err spill(imt__spool *s, int i)
{
    cstore *c = &s->c[i];
    if (!c->len) return IMT_OK;
    if (c->fd < 0 && (c->fd = tmp_fd(s->tmpdir)) < 0) return IMT_E_IO;
    if (write_all(c->fd, c->mem, c->len)) return IMT_E_IO;
    c->file_bytes += c->len;
    s->held -= c->len;
    imt__free(c->mem);
    c->mem = NULL;
    c->len = c->cap = 0;
    return IMT_OK;
}

imt_err imt__spool_add(imt__spool *s, int cls, const imt__tfile *f)
{
    if (!s || cls < 0 || cls >= IMT_CLASS__COUNT || !f || !f->path) return IMT_E_INVALID;
    size_t len = strlen(f->path);
    if (len > UINT32_MAX - 16 || f->blob_len > UINT32_MAX - 16 || (f->blob_len && !f->blob))
        return IMT_E_INVALID;
    size_t need = rec_bytes((uint32_t)len, (uint32_t)f->blob_len);
    cstore *c = &s->c[cls];
    if (c->len + need > c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 4096;
        while (nc < c->len + need) nc *= 2;
        char *nm = imt__realloc(c->mem, nc);
        if (!nm) return IMT_E_NOMEM;
        c->mem = nm;
        c->cap = nc;
    }
    rhdr h;
    memset(&h, 0, sizeof h);
    h.key = f->key;
    h.seq = f->seq;
    h.dev = f->dev;
    h.ino = f->ino;
    h.size = f->size;
    h.len = (uint32_t)len;
    h.blob_len = (uint32_t)f->blob_len;
    char *p = c->mem + c->len;
    size_t pb = (len + 1 + 7) & ~(size_t)7;
    memcpy(p, &h, sizeof h);
    memset(p + sizeof h, 0, need - sizeof h);
    memcpy(p + sizeof h, f->path, len);
    if (f->blob_len) memcpy(p + sizeof h + pb, f->blob, f->blob_len);
    c->len += need;
    s->held += need;
    if (s->held > s->memory) {
        imt_err err = IMT_OK;
        for (int i = 0; i < IMT_CLASS__COUNT; i++) IMT_TRY(spill(s, i));
    cleanup:
        return err;
    }
    return IMT_OK;
}

static int tfile_cmp(const void *a, const void *b)
{
    const imt__tfile *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return strcmp(x->path, y->path);
}

/* Index and sort the records in s->run. */
static imt_err index_run(imt__spool *s)
{
    size_t n = 0;
    for (size_t off = 0; off + sizeof(rhdr) <= s->run_len;) {
        rhdr h;
        memcpy(&h, s->run + off, sizeof h);
        size_t rb = hdr_rec_bytes(&h);
        if (rb > s->run_len - off) return IMT_E_INTERNAL;
        if (n == s->capv) {
            size_t nc = s->capv ? s->capv * 2 : 256, bytes;
            if (!imt__mul_ok(nc, sizeof *s->v, &bytes)) return IMT_E_NOMEM;
            imt__tfile *nv = imt__realloc(s->v, bytes);
            if (!nv) return IMT_E_NOMEM;
            s->v = nv;
            s->capv = nc;
        }
        imt__tfile *t = &s->v[n++];
        t->key = h.key;
        t->seq = h.seq;
        t->dev = h.dev;
        t->ino = h.ino;
        t->size = h.size;
        t->path = s->run + off + sizeof h;
        t->blob_len = h.blob_len;
        t->blob = h.blob_len ? s->run + off + sizeof h + (((size_t)h.len + 1 + 7) & ~(size_t)7)
                             : NULL;
        off += rb;
    }
    s->nv = n;
    if (n > 1) qsort(s->v, n, sizeof *s->v, tfile_cmp);
    return IMT_OK;
}

imt_err imt__spool_class_begin(imt__spool *s, int cls)
{
    imt_err err = IMT_OK;
    char *buf = NULL;
    if (!s || cls < 0 || cls >= IMT_CLASS__COUNT) return IMT_E_INVALID;
    close_buckets(s);
    imt__free(s->run);
    s->run = NULL;
    s->run_len = 0;
    s->nv = 0;
    s->cur = cls;
    cstore *c = &s->c[cls];
    if (c->fd < 0) {
        s->from_mem = 1;
        s->mem_taken = 0;
        return IMT_OK;
    }
    s->from_mem = 0;
    IMT_TRY(spill(s, cls));
    uint64_t total = c->file_bytes;
    unsigned bits = 1;
    while (bits < 16 && (total >> bits) > s->memory / 2) bits++;
    s->nb = (size_t)1 << bits;
    s->bfd = imt__malloc(s->nb * sizeof *s->bfd);
    if (!s->bfd) { err = IMT_E_NOMEM; goto cleanup; }
    for (size_t i = 0; i < s->nb; i++) s->bfd[i] = -1;
    /* Split: read the class's file a block at a time, append each record to
     * its bucket's file (through a small buffer per bucket). */
    size_t bsz = 1 << 16, cap = (size_t)1 << 20;
    buf = imt__malloc(cap + s->nb * bsz);
    size_t *blen = imt__calloc(s->nb, sizeof *blen);
    if (!buf || !blen) { imt__free(blen); err = IMT_E_NOMEM; goto cleanup; }
    char *out = buf + cap;
    uint64_t off = 0;
    size_t have = 0;
    while (off < total || have) {
        size_t want = cap - have;
        if (want > total - off) want = (size_t)(total - off);
        if (want) {
            err = read_all(c->fd, buf + have, want, off);
            if (err) break;
            off += want;
            have += want;
        }
        size_t used = 0;
        for (;;) {
            if (have - used < sizeof(rhdr)) break;
            rhdr h;
            memcpy(&h, buf + used, sizeof h);
            size_t rb = hdr_rec_bytes(&h);
            if (rb > cap) { err = IMT_E_INTERNAL; break; } /* a path over 1 MiB */
            if (have - used < rb) break;
            size_t b = (size_t)(h.key >> (64 - bits));
            if (blen[b] + rb > bsz) {
                if (s->bfd[b] < 0 && (s->bfd[b] = tmp_fd(s->tmpdir)) < 0) { err = IMT_E_IO; break; }
                if ((err = write_all(s->bfd[b], out + b * bsz, blen[b]))) break;
                blen[b] = 0;
            }
            if (rb > bsz) { /* larger than a bucket buffer: straight out */
                if (s->bfd[b] < 0 && (s->bfd[b] = tmp_fd(s->tmpdir)) < 0) { err = IMT_E_IO; break; }
                if ((err = write_all(s->bfd[b], buf + used, rb))) break;
            } else {
                memcpy(out + b * bsz + blen[b], buf + used, rb);
                blen[b] += rb;
            }
            used += rb;
        }
        if (err) break;
        if (used == 0 && have && off >= total) { err = IMT_E_INTERNAL; break; } /* torn */
        memmove(buf, buf + used, have - used);
        have -= used;
    }
    for (size_t b = 0; !err && b < s->nb; b++) {
        if (!blen[b]) continue;
        if (s->bfd[b] < 0 && (s->bfd[b] = tmp_fd(s->tmpdir)) < 0) { err = IMT_E_IO; break; }
        err = write_all(s->bfd[b], out + b * bsz, blen[b]);
    }
    imt__free(blen);
    if (!err) {
        close(c->fd); /* the class now lives in its buckets */
        c->fd = -1;
        c->file_bytes = 0;
        s->bi = 0;
    }
cleanup:
    imt__free(buf);
    return err;
}

imt_err imt__spool_class_next(imt__spool *s, const imt__tfile **v, size_t *n)
{
    imt_err err = IMT_OK;
    if (!s || !v || !n || s->cur < 0) return IMT_E_INVALID;
    *v = NULL;
    *n = 0;
    imt__free(s->run);
    s->run = NULL;
    s->run_len = 0;
    s->nv = 0;
    if (s->from_mem) {
        if (s->mem_taken) return IMT_OK;
        cstore *c = &s->c[s->cur];
        s->mem_taken = 1;
        s->run = c->mem; /* the run takes the class's buffer */
        s->run_len = c->len;
        s->held -= c->len;
        c->mem = NULL;
        c->len = c->cap = 0;
    } else {
        while (s->bi < s->nb && s->bfd[s->bi] < 0) s->bi++;
        if (s->bi >= s->nb) return IMT_OK;
        int fd = s->bfd[s->bi];
        off_t end = lseek(fd, 0, SEEK_END);
        if (end < 0) return IMT_E_IO;
        if (end > 0) {
            s->run = imt__malloc((size_t)end);
            if (!s->run) return IMT_E_NOMEM;
            IMT_TRY(read_all(fd, s->run, (size_t)end, 0));
            s->run_len = (size_t)end;
        }
        close(fd);
        s->bfd[s->bi++] = -1;
    }
    IMT_TRY(index_run(s));
    *v = s->v;
    *n = s->nv;
    if (!s->nv && !s->from_mem) return imt__spool_class_next(s, v, n); /* an empty bucket */
cleanup:
    return err;
}
