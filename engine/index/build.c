/* engine/index/build.c -- importing a list in one write transaction, the
 * delta segment and compaction (rebuilding the MIH tables).
 *
 * An import reads the whole list into memory first (records + a string
 * arena), rejects or skips bad records and in-list duplicates, then merges
 * it into the index inside ONE LMDB write transaction: on any error, crash
 * or SIGKILL nothing of it is visible (LMDB commits by switching meta pages).
 * New PDQ hashes go to the delta segment (scanned linearly); when it grows
 * past IDX_DELTA_MAX, or on request, the compacted segment is rebuilt from
 * both in the same transaction. */
#include "index.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Above this many delta hashes an import compacts (auto mode). A query
 * scans the delta linearly: 64k hashes = 2 MiB, about 0.1 ms per query. */
#define IDX_DELTA_MAX 65536u

/* A stored membership: list slot, category, arena offsets. */
typedef struct smem {
    uint32_t slot;
    int32_t category;
    uint32_t label, ext;
} smem;

struct idx_sink {
    imt_index *idx;
    const char *path;
    idx_rec *recs;
    size_t n, cap;
    smem *mem;
    size_t nmem, capmem;
    idx_list_meta *lists;        /* an export's inventory; NULL: none */
    size_t nlists;
    char *str;
    size_t nstr, capstr;
    uint32_t last_label, last_ext;
    int skip_bad;
    int32_t def_cat;
    uint64_t bad;
    char examples[IMT_IMPORT_BAD_EXAMPLES][256];
    char version[256];
    void (*progress)(void *, uint64_t);
    void *progress_opaque;
};

/* ---- the sink ---------------------------------------------------------- */
imt_err idx_sink_fail_at(idx_sink *s, uint64_t line, imt_err e, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    idx_set_err(s->idx, "%s:%llu: %s", s->path, (unsigned long long)line, msg);
    return e;
}

const char *idx_sink_path(const idx_sink *s)
{
    return s->path;
}

void idx_sink_set_version(idx_sink *s, const char *v)
{
    snprintf(s->version, sizeof s->version, "%s", v);
}

static imt_err arena_add(idx_sink *s, const char *str, uint32_t *off, uint32_t *last)
{
    if (!str || !*str) {
        *off = 0;
        return IMT_OK;
    }
    if (*last && strcmp(s->str + *last, str) == 0) {
        *off = *last;
        return IMT_OK;
    }
    size_t len = strlen(str) + 1;
    if (len > 65535) len = 65535; /* stored NUL-terminated, bounded */
    if (s->nstr == 0) len++;      /* offset 0 is "": the arena starts with a NUL */
    if (s->nstr + len > UINT32_MAX) return IMT_E_TOO_LARGE;
    if (s->nstr + len > s->capstr) {
        size_t cap = s->capstr ? s->capstr : 4096;
        while (cap < s->nstr + len) cap *= 2;
        char *p = imt__realloc(s->str, cap);
        if (!p) return IMT_E_NOMEM;
        s->str = p;
        s->capstr = cap;
    }
    if (s->nstr == 0) {
        s->str[0] = '\0';
        s->nstr = 1;
        len--;
    }
    memcpy(s->str + s->nstr, str, len - 1);
    s->str[s->nstr + len - 1] = '\0';
    *off = (uint32_t)s->nstr;
    *last = *off;
    s->nstr += len;
    return IMT_OK;
}

imt_err idx_sink_add_members(idx_sink *s, const idx_rec *r, size_t n, const idx_member_in *m)
{
    imt_err err = IMT_OK;
    if (!n || n > 65535) return IMT_E_INTERNAL;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024, bytes;
        if (!imt__mul_ok(cap, sizeof *s->recs, &bytes)) return IMT_E_NOMEM;
        idx_rec *p = imt__realloc(s->recs, bytes);
        if (!p) return IMT_E_NOMEM;
        s->recs = p;
        s->cap = cap;
    }
    if (s->nmem + n > s->capmem) {
        size_t cap = s->capmem ? s->capmem : 1024, bytes;
        while (cap < s->nmem + n) cap *= 2;
        if (!imt__mul_ok(cap, sizeof *s->mem, &bytes)) return IMT_E_NOMEM;
        smem *p = imt__realloc(s->mem, bytes);
        if (!p) return IMT_E_NOMEM;
        s->mem = p;
        s->capmem = cap;
    }
    if (s->n >= IDX_MAX_ENTRIES || s->nmem + n > UINT32_MAX) return IMT_E_TOO_LARGE;
    idx_rec *d = &s->recs[s->n];
    *d = *r;
    d->mem = (uint32_t)s->nmem;
    d->nmem = (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        smem *sm = &s->mem[s->nmem + i];
        if (m[i].slot >= (s->nlists ? s->nlists : 1)) return IMT_E_INTERNAL;
        sm->slot = m[i].slot;
        sm->category = m[i].category < 0 ? s->def_cat : m[i].category;
        IMT_TRY(arena_add(s, m[i].label, &sm->label, &s->last_label));
        IMT_TRY(arena_add(s, m[i].ext, &sm->ext, &s->last_ext));
    }
    s->nmem += n;
    s->n++;
    if (s->progress && (s->n & 65535) == 0) s->progress(s->progress_opaque, s->n);
cleanup:
    return err;
}

imt_err idx_sink_add(idx_sink *s, const idx_rec *r, const char *label, const char *ext)
{
    idx_member_in m = {0, r->category, label, ext};
    return idx_sink_add_members(s, r, 1, &m);
}

imt_err idx_sink_add_list(idx_sink *s, const idx_list_meta *m)
{
    if (s->nlists >= IDX_MAX_LISTS) return IMT_E_TOO_LARGE;
    if ((s->nlists & (s->nlists - 1)) == 0) { /* 0, 1, 2, 4, ...: double */
        idx_list_meta *p = imt__realloc(s->lists, (s->nlists ? 2 * s->nlists : 1) * sizeof *p);
        if (!p) return IMT_E_NOMEM;
        s->lists = p;
    }
    s->lists[s->nlists++] = *m;
    return IMT_OK;
}

static imt_err sink_badv(idx_sink *s, uint64_t line, imt_err e, const char *fmt, va_list ap)
{
    char msg[256];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (!s->skip_bad) {
        if (line) idx_set_err(s->idx, "%s:%llu: %s", s->path, (unsigned long long)line, msg);
        else idx_set_err(s->idx, "%s: %s", s->path, msg);
        return e;
    }
    if (s->bad < IMT_IMPORT_BAD_EXAMPLES) {
        char *ex = s->examples[s->bad];
        int k = snprintf(ex, sizeof s->examples[0], "%s:%llu: ", s->path, (unsigned long long)line);
        if (k >= 0 && (size_t)k < sizeof s->examples[0])
            snprintf(ex + k, sizeof s->examples[0] - (size_t)k, "%.*s", (int)(sizeof s->examples[0] - (size_t)k - 1), msg);
    }
    s->bad++;
    return IMT_OK;
}

imt_err idx_sink_bad(idx_sink *s, uint64_t line, imt_err e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    imt_err r = sink_badv(s, line, e, fmt, ap);
    va_end(ap);
    return r;
}

imt_err idx_sink_fail(idx_sink *s, imt_err e, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    idx_set_err(s->idx, "%s: %s", s->path, msg);
    return e;
}

imt_err idx_parse_hex(const char *s, size_t len, uint8_t *out, size_t nbytes)
{
    if (len != 2 * nbytes) return IMT_E_HASH_LENGTH;
    for (size_t i = 0; i < nbytes; i++) {
        int v[2];
        for (int k = 0; k < 2; k++) {
            char c = s[2 * i + (size_t)k];
            if (c >= '0' && c <= '9') v[k] = c - '0';
            else if (c >= 'a' && c <= 'f') v[k] = c - 'a' + 10;
            else if (c >= 'A' && c <= 'F') v[k] = c - 'A' + 10;
            else return IMT_E_NOT_HEX;
        }
        out[i] = (uint8_t)(v[0] << 4 | v[1]);
    }
    return IMT_OK;
}

/* ---- sorting: LSD radix sort of (64-bit key, index) pairs -------------- */
typedef struct kv {
    uint64_t key;
    uint32_t idx;
    uint32_t pad;
} kv;

static imt_err radix_sort(kv *a, size_t n)
{
    if (n < 2) return IMT_OK;
    size_t bytes;
    if (!imt__mul_ok(n, sizeof *a, &bytes)) return IMT_E_NOMEM;
    kv *tmp = imt__malloc(bytes);
    if (!tmp) return IMT_E_NOMEM;
    kv *src = a, *dst = tmp;
    for (int pass = 0; pass < 8; pass++) {
        size_t cnt[256] = {0};
        int sh = pass * 8;
        for (size_t i = 0; i < n; i++) cnt[(src[i].key >> sh) & 255]++;
        int skip = 0;
        for (int b = 0; b < 256; b++)
            if (cnt[b] == n) skip = 1;
        if (skip) continue;
        size_t sum = 0;
        for (int b = 0; b < 256; b++) {
            size_t c = cnt[b];
            cnt[b] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++) dst[cnt[(src[i].key >> sh) & 255]++] = src[i];
        kv *t = src;
        src = dst;
        dst = t;
    }
    if (src != a) memcpy(a, src, bytes);
    imt__free(tmp);
    return IMT_OK;
}

static uint64_t key64(const uint8_t *h)
{
    uint64_t k = 0;
    for (int i = 0; i < 8; i++) k = k << 8 | h[i];
    return k;
}

static const uint8_t *rec_hash(const idx_rec *r, unsigned kind, size_t *len)
{
    switch (kind) {
    case KB_PDQ: *len = 32; return r->pdq;
    case KB_MD5: *len = 16; return r->md5;
    case KB_SHA1: *len = 20; return r->sha1;
    default: *len = 32; return r->sha256;
    }
}

static const char *kind_label(unsigned kind)
{
    return kind == KB_PDQ ? "PDQ hash" : kind == KB_MD5 ? "MD5" : kind == KB_SHA1 ? "SHA-1" : "SHA-256";
}

/* Sort by (full hash, line): kv keys give the first 8 bytes; runs of equal
 * keys are finished with an insertion sort on the whole hash. */
static imt_err sort_by_hash(const idx_sink *s, unsigned kind, kv *a, size_t n)
{
    imt_err err = radix_sort(a, n);
    if (err) return err;
    size_t len;
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && a[j].key == a[i].key) j++;
        for (size_t x = i + 1; x < j; x++) {
            kv v = a[x];
            const uint8_t *hv = rec_hash(&s->recs[v.idx], kind, &len);
            size_t y = x;
            while (y > i) {
                const uint8_t *hy = rec_hash(&s->recs[a[y - 1].idx], kind, &len);
                int c = memcmp(hy, hv, len);
                if (c < 0 || (c == 0 && a[y - 1].idx < v.idx)) break;
                a[y] = a[y - 1];
                y--;
            }
            a[y] = v;
        }
        i = j;
    }
    return IMT_OK;
}

/* Mark records whose hash of some kind repeats an earlier line's. Without
 * skip_bad the first such line is the error (unless an earlier bad line,
 * before_line, was already found). */
static imt_err find_duplicates(idx_sink *s, uint64_t before_line)
{
    imt_err err = IMT_OK;
    kv *a = NULL;
    uint8_t *dup = NULL;
    uint64_t *dup_of = NULL;
    size_t bytes;
    if (!s->n) return IMT_OK;
    if (!imt__mul_ok(s->n, sizeof *a, &bytes)) return IMT_E_NOMEM;
    a = imt__malloc(bytes);
    dup = imt__calloc(s->n, 1);
    dup_of = imt__calloc(s->n, sizeof *dup_of);
    if (!a || !dup || !dup_of) {
        err = IMT_E_NOMEM;
        goto cleanup;
    }
    static const unsigned kinds[4] = {KB_PDQ, KB_MD5, KB_SHA1, KB_SHA256};
    size_t ndup = 0;
    for (int k = 0; k < 4; k++) {
        size_t m = 0, len;
        for (size_t i = 0; i < s->n; i++) {
            if (!(s->recs[i].kinds & kinds[k])) continue;
            a[m].key = key64(rec_hash(&s->recs[i], kinds[k], &len));
            a[m].idx = (uint32_t)i;
            a[m].pad = 0;
            m++;
        }
        IMT_TRY(sort_by_hash(s, kinds[k], a, m));
        for (size_t i = 1; i < m; i++) {
            const uint8_t *h0 = rec_hash(&s->recs[a[i - 1].idx], kinds[k], &len);
            const uint8_t *h1 = rec_hash(&s->recs[a[i].idx], kinds[k], &len);
            if (a[i].key == a[i - 1].key && memcmp(h0, h1, len) == 0) {
                /* a[i-1] is the earliest line of the run (sorted by index) */
                size_t first = i - 1;
                while (first > 0 && dup[a[first].idx] && a[first - 1].key == a[i].key &&
                       memcmp(rec_hash(&s->recs[a[first - 1].idx], kinds[k], &len), h1, len) == 0)
                    first--;
                if (!dup[a[i].idx]) {
                    dup[a[i].idx] = (uint8_t)(k + 1);
                    dup_of[a[i].idx] = s->recs[a[first].idx].line;
                    ndup++;
                }
            }
        }
    }
    if (!ndup) goto cleanup;
    for (size_t i = 0; i < s->n; i++) {
        if (!dup[i]) continue;
        const idx_rec *r = &s->recs[i];
        if (!s->skip_bad && before_line && r->line >= before_line) continue;
        err = idx_sink_bad(s, r->line, IMT_E_DUPLICATE, "duplicate %s (first on line %llu)",
                           kind_label(kinds[dup[i] - 1]), (unsigned long long)dup_of[i]);
        if (err) goto cleanup;
    }
    if (s->skip_bad) {
        size_t w = 0;
        for (size_t i = 0; i < s->n; i++)
            if (!dup[i]) s->recs[w++] = s->recs[i];
        s->n = w;
    }
cleanup:
    imt__free(a);
    imt__free(dup);
    imt__free(dup_of);
    return err;
}

/* ---- writing ----------------------------------------------------------- */
static imt_err file_sha256(idx_sink *s, int fd, char out[65])
{
    imt_err err = IMT_OK;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t *buf = imt__malloc(1 << 20);
    if (!md || !buf) {
        err = IMT_E_NOMEM;
        goto cleanup;
    }
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    if (lseek(fd, 0, SEEK_SET) < 0) {
        err = idx_sink_fail(s, IMT_E_IO, "cannot seek: %s", strerror(errno));
        goto cleanup;
    }
    for (;;) {
        ssize_t r = read(fd, buf, 1 << 20);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            err = idx_sink_fail(s, IMT_E_IO, "read error: %s", strerror(errno));
            goto cleanup;
        }
        if (r == 0) break;
        EVP_DigestUpdate(md, buf, (size_t)r);
    }
    unsigned char dg[32];
    unsigned dn;
    EVP_DigestFinal_ex(md, dg, &dn);
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", dg[i]);
cleanup:
    EVP_MD_CTX_free(md);
    imt__free(buf);
    return err;
}

/* A growable byte buffer for records. */
typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf;

static imt_err buf_add(buf *b, const void *data, size_t len)
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

static imt_err add_member(buf *b, uint32_t list, int32_t cat, const char *label, const char *ext)
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
static imt_err encode_entry(buf *b, unsigned kinds, int quality, const uint8_t *pdq,
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

typedef struct pdq_ent {
    uint8_t pdq[32];
    uint32_t entry;
} pdq_ent;

static int cmp_pdq_ent(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

typedef struct writer {
    imt_index *idx;
    MDB_txn *txn;
    idx_header h;
    idx_view v;           /* the write txn's view before this import */
    pdq_ent *delta_old;   /* existing delta, sorted by hash */
    size_t ndelta_old;
    pdq_ent *newpdq;      /* PDQ hashes to add to the delta */
    size_t nnew, capnew;
    kv *dig[3];           /* new digest keys -> entry: md5, sha1, sha256 */
    size_t ndig[3];
    buf rec, mem;
} writer;

static imt_err newpdq_add(writer *w, const uint8_t *pdq, uint32_t entry)
{
    if (w->nnew == w->capnew) {
        size_t cap = w->capnew ? w->capnew * 2 : 1024, bytes;
        if (!imt__mul_ok(cap, sizeof *w->newpdq, &bytes)) return IMT_E_NOMEM;
        pdq_ent *p = imt__realloc(w->newpdq, bytes);
        if (!p) return IMT_E_NOMEM;
        w->newpdq = p;
        w->capnew = cap;
    }
    memcpy(w->newpdq[w->nnew].pdq, pdq, 32);
    w->newpdq[w->nnew].entry = entry;
    w->nnew++;
    return IMT_OK;
}

static imt_err load_delta_sorted(writer *w)
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

static int pdq_lookup(writer *w, const uint8_t *q, uint32_t *entry)
{
    if (main_lookup(&w->v, q, entry)) return 1;
    if (w->ndelta_old) {
        pdq_ent key;
        memcpy(key.pdq, q, 32);
        const pdq_ent *f = bsearch(&key, w->delta_old, w->ndelta_old, sizeof key, cmp_pdq_ent);
        if (f) {
            *entry = f->entry;
            return 1;
        }
    }
    return 0;
}

static MDB_dbi dig_dbi(const writer *w, int k)
{
    return k == 0 ? w->idx->db_md5 : k == 1 ? w->idx->db_sha1 : w->idx->db_sha256;
}

static imt_err dig_lookup(writer *w, int k, const uint8_t *d, uint32_t *entry, int *found)
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

static imt_err dig_add(writer *w, int k, uint32_t rec_idx, uint32_t entry, size_t cap)
{
    if (!w->dig[k]) {
        w->dig[k] = imt__calloc(cap ? cap : 1, sizeof *w->dig[k]);
        if (!w->dig[k]) return IMT_E_NOMEM;
    }
    kv *e = &w->dig[k][w->ndig[k]++];
    e->idx = rec_idx;
    e->pad = entry;
    return IMT_OK;
}

/* The memberships of record r, for list ids first_list + slot, into w->mem;
 * counts them per slot. */
static imt_err rec_members(writer *w, const idx_sink *s, const idx_rec *r, uint32_t first_list,
                           uint64_t *per_slot)
{
    imt_err err = IMT_OK;
    for (uint32_t j = 0; j < r->nmem; j++) {
        const smem *m = &s->mem[r->mem + j];
        const char *label = m->label && s->str ? s->str + m->label : "";
        const char *ext = m->ext && s->str ? s->str + m->ext : "";
        IMT_TRY(add_member(&w->mem, first_list + m->slot, m->category, label, ext));
        per_slot[m->slot]++;
    }
cleanup:
    return err;
}

/* Merge every record; new entries are appended in id order. */
static imt_err merge_records(writer *w, idx_sink *s, uint32_t list_id, uint64_t *per_slot,
                             imt_import_stats *st)
{
    imt_err err = IMT_OK;
    MDB_cursor *ec = NULL;
    int rc = mdb_cursor_open(w->txn, w->idx->db_entries, &ec);
    if (rc) return idx_mdb_err(w->idx, rc, "opening the entries");
    for (size_t i = 0; i < s->n; i++) {
        const idx_rec *r = &s->recs[i];
        const uint8_t *dg[3] = {r->md5, r->sha1, r->sha256};
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
        if ((r->kinds & KB_PDQ) && pdq_lookup(w, r->pdq, &e)) {
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
            IMT_TRY(encode_entry(&w->rec, r->kinds, r->quality, r->pdq, r->md5, r->sha1,
                                 r->sha256, r->nmem, w->mem.p, w->mem.n));
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
            if (r->kinds & KB_PDQ) IMT_TRY(newpdq_add(w, r->pdq, id));
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
                pdq = r->pdq;
                quality = r->quality;
                IMT_TRY(newpdq_add(w, r->pdq, found_entry));
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
static imt_err write_digests(writer *w, idx_sink *s)
{
    imt_err err = IMT_OK;
    static const unsigned kb[3] = {KB_MD5, KB_SHA1, KB_SHA256};
    for (int k = 0; k < 3; k++) {
        size_t n = w->ndig[k], len;
        if (!n) continue;
        kv *a = w->dig[k];
        for (size_t i = 0; i < n; i++) a[i].key = key64(rec_hash(&s->recs[a[i].idx], kb[k], &len));
        /* sort_by_hash orders by record index inside equal hashes; the
         * entry rides in pad */
        IMT_TRY(sort_by_hash(s, kb[k], a, n));
        MDB_stat ms;
        mdb_stat(w->txn, dig_dbi(w, k), &ms);
        unsigned flags = ms.ms_entries ? 0 : MDB_APPEND;
        for (size_t i = 0; i < n; i++) {
            const uint8_t *hk = rec_hash(&s->recs[a[i].idx], kb[k], &len);
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
static imt_err write_delta(writer *w)
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

/* Reserve an array of the compacted segment: IDX_SEG_LEAD zero bytes, then
 * len bytes at *out for the caller to fill. */
static imt_err seg_reserve(writer *w, const char *key, size_t len, void **out)
{
    MDB_val k = {strlen(key), (void *)key}, d = {len + IDX_SEG_LEAD, NULL};
    int rc = mdb_put(w->txn, w->idx->db_seg, &k, &d, MDB_RESERVE);
    if (rc) return idx_mdb_err(w->idx, rc, "writing the compacted segment");
    memset(d.mv_data, 0, IDX_SEG_LEAD);
    *out = (uint8_t *)d.mv_data + IDX_SEG_LEAD;
    return IMT_OK;
}

/* Rebuild the compacted segment from itself and the delta (w->v holds the
 * snapshot before this import; the new hashes are in the delta chunks
 * written already, so re-load the delta view). */
static imt_err compact(writer *w)
{
    imt_err err = IMT_OK;
    idx_view dv;
    memset(&dv, 0, sizeof dv);
    uint8_t *pdq = NULL;
    uint32_t *ent = NULL, *tab = NULL;
    IMT_TRY(idx_view_load(w->idx, w->txn, &w->h, &dv));
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
        idx_put_be32(key + 1, (uint32_t)c);
        MDB_val kk = {5, key};
        int rc = mdb_del(w->txn, w->idx->db_seg, &kk, NULL);
        if (rc) {
            err = idx_mdb_err(w->idx, rc, "clearing the delta segment");
            goto cleanup;
        }
    }
    idx_view_free(&dv);
    /* old tables of another shape */
    for (uint32_t t = 0; t < IDX_MAX_TABLES; t++) {
        char key[8];
        snprintf(key, sizeof key, "mih%02u", (unsigned)t & 31u);
        MDB_val kk = {5, key};
        int rc = mdb_del(w->txn, w->idx->db_seg, &kk, NULL);
        if (rc && rc != MDB_NOTFOUND) {
            err = idx_mdb_err(w->idx, rc, "clearing the MIH tables");
            goto cleanup;
        }
    }
    void *p = NULL;
    IMT_TRY(seg_reserve(w, "pdq", n * 32, &p));
    memcpy(p, pdq, n * 32);
    IMT_TRY(seg_reserve(w, "ent", n * 4, &p));
    memcpy(p, ent, n * 4);
    uint8_t bits[IDX_MAX_TABLES] = {0};
    int m = idx_mih_params((uint32_t)n, bits);
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
        for (size_t i = 0; i < n; i++) off[idx_substr(pdq + i * 32, start, bits[t])]++;
        uint32_t sum = 0;
        for (size_t b = 0; b < nb - 1; b++) {
            uint32_t c = off[b];
            off[b] = sum;
            sum += c;
        }
        off[nb - 1] = sum;
        for (size_t i = 0; i < n; i++) ids[off[idx_substr(pdq + i * 32, start, bits[t])]++] = (uint32_t)i;
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
    IMT_TRY(idx_view_load(w->idx, w->txn, &w->h, &dv));
    IMT_TRY(idx_main_sum(&dv, w->h.main_sum));
cleanup:
    idx_view_free(&dv);
    imt__free(pdq);
    imt__free(ent);
    imt__free(tab);
    return err;
}

static imt_err write_list(writer *w, const imt_list_info *li)
{
    imt_err err = IMT_OK;
    buf b = {0};
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

static void writer_free(writer *w)
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

static imt_err writer_begin(imt_index *idx, writer *w)
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
static imt_err writer_commit(imt_index *idx, writer *w, void (*stage)(void *, const char *),
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

void imt_import_opts_init(imt_import_opts *o)
{
    memset(o, 0, sizeof *o);
    o->known_good = -1;
    o->category = -1;
    o->compact = -1;
}

static int is_writable(imt_index *idx)
{
    if (idx->read_only) {
        idx_set_err(idx, "%s: the index is open read-only", idx->path);
        return 0;
    }
    if (__atomic_load_n(&idx->open_cursors, __ATOMIC_SEQ_CST)) {
        idx_set_err(idx, "%s: close every cursor before writing", idx->path);
        return 0;
    }
    return 1;
}

/* Refuse a list whose file was imported already (same SHA-256): it would
 * double every match. Read inside the write transaction, so two importers
 * cannot both pass. */
static imt_err check_not_imported(writer *w, const idx_list_meta *m, size_t nm, const char *path)
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

/* The lists of an export's inventory, with the options over them: they name
 * one list, so they apply only to an export of one. */
static imt_err inventory_lists(idx_sink *s, const imt_import_opts *o, idx_list_meta **out,
                               size_t *nout)
{
    int over = (o->name && *o->name) || (o->version && *o->version) || (o->scheme && *o->scheme) ||
               o->policy || o->known_good >= 0 || o->category >= 0 || o->import_time;
    if (over && s->nlists > 1) {
        idx_set_err(s->idx, "%s: an export of %zu lists: --name, --version, --scheme, "
                    "--category, --known-good/--known-bad and policies name one list",
                    s->path, s->nlists);
        return IMT_E_INVALID;
    }
    idx_list_meta *m = s->lists;
    if (s->nlists == 1) {
        char msg[160];
        int redefault = (o->scheme && *o->scheme) || o->known_good >= 0;
        if (o->name && *o->name) snprintf(m->name, sizeof m->name, "%s", o->name);
        if (o->version && *o->version) snprintf(m->version, sizeof m->version, "%s", o->version);
        if (o->scheme && *o->scheme) snprintf(m->scheme, sizeof m->scheme, "%s", o->scheme);
        if (o->known_good >= 0) m->known_good = o->known_good;
        if (o->import_time) m->import_time = o->import_time;
        char base[IDX_POLICY_MAX];
        snprintf(base, sizeof base, "%s",
                 redefault ? idx_policy_default(m->scheme, m->known_good) : m->policy);
        if (idx_policy_resolve(base, o->policy, m->policy, sizeof m->policy, msg, sizeof msg) !=
            IMT_OK) {
            idx_set_err(s->idx, "category policy: %s", msg);
            return IMT_E_INVALID;
        }
    }
    *out = s->lists;
    *nout = s->nlists;
    s->lists = NULL; /* now the caller's */
    s->nlists = 0;
    return IMT_OK;
}

imt_err imt_index_import(imt_index *idx, const char *path, const imt_import_opts *opts,
                         imt_import_stats *stats)
{
    imt_err err = IMT_OK;
    imt_import_opts o;
    imt_import_stats st;
    idx_sink s;
    writer w;
    int fd = -1, snap_closed = 0;
    char sha[65] = {0}, fmtname[24] = {0}, policy[IDX_POLICY_MAX], pmsg[160];
    idx_list_meta *metas = NULL;
    size_t nmeta = 0;
    uint64_t *per_slot = NULL;
    memset(&s, 0, sizeof s);
    memset(&st, 0, sizeof st);
    memset(&w, 0, sizeof w);
    if (!idx || !path) return IMT_E_INVALID;
    if (opts) o = *opts;
    else imt_import_opts_init(&o);
    if (idx->read_only || __atomic_load_n(&idx->open_cursors, __ATOMIC_SEQ_CST)) {
        is_writable(idx);
        return idx->read_only ? IMT_E_READONLY : IMT_E_BUSY;
    }
    idx->err[0] = '\0';
    s.idx = idx;
    s.path = path;
    s.skip_bad = o.skip_bad;
    s.def_cat = o.category;
    s.progress = o.progress;
    s.progress_opaque = o.progress_opaque;
    idx_format f = IF_AUTO;
    if (o.format && *o.format && !idx_format_by_name(o.format, &f)) {
        idx_set_err(idx, "unknown format '%s'", o.format);
        err = IMT_E_INVALID;
        goto cleanup;
    }
    /* the policy is checked before the file is read (a typo costs nothing),
     * and resolved over its default once the format is known */
    if (idx_policy_resolve(idx_policy_default(NULL, 0), o.policy, policy, sizeof policy, pmsg,
                           sizeof pmsg) != IMT_OK) {
        idx_set_err(idx, "category policy: %s", pmsg);
        err = IMT_E_INVALID;
        goto cleanup;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        idx_set_err(idx, "%s: %s", path, strerror(errno));
        err = errno == ENOENT ? IMT_E_NOT_FOUND : IMT_E_IO;
        goto cleanup;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        idx_set_err(idx, "%s: not a regular file", path);
        err = IMT_E_IO;
        goto cleanup;
    }
    if (sb.st_size == 0) {
        idx_set_err(idx, "%s: the file is empty", path);
        err = IMT_E_EMPTY;
        goto cleanup;
    }
    IMT_TRY(file_sha256(&s, fd, sha));
    IMT_TRY(idx_detect(&s, fd, &f)); /* detect.c: AUTO stays only for blank text */
    if (lseek(fd, 0, SEEK_SET) < 0) {
        err = idx_sink_fail(&s, IMT_E_IO, "cannot seek: %s", strerror(errno));
        goto cleanup;
    }
    imt_err perr;
    uint64_t bad_line = 0;
    if (f == IF_NSRL) {
        perr = idx_parse_nsrl(&s, path);
        snprintf(fmtname, sizeof fmtname, "nsrl-rdsv3");
    } else if (f == IF_VICS || f == IF_JSONL) {
        perr = idx_parse_vics(&s, fd, f, fmtname, sizeof fmtname);
    } else {
        idx_format actual = f;
        perr = idx_parse_text(&s, fd, f, &actual);
        snprintf(fmtname, sizeof fmtname, "%s", idx_format_name(actual));
    }
    if (perr != IMT_OK) {
        /* the parser stopped at a bad line: an earlier duplicate wins */
        bad_line = s.n ? s.recs[s.n - 1].line + 1 : 1;
        char saved[512];
        memcpy(saved, idx->err, sizeof saved);
        imt_err d = find_duplicates(&s, bad_line);
        if (d == IMT_E_DUPLICATE) err = d;
        else {
            memcpy(idx->err, saved, sizeof saved);
            err = perr;
        }
        goto cleanup;
    }
    IMT_TRY(find_duplicates(&s, 0));
    if (!s.n) {
        if (s.bad) idx_set_err(idx, "%s: no valid record (%llu bad)", path, (unsigned long long)s.bad);
        else idx_set_err(idx, "%s: the list holds no hash", path);
        err = IMT_E_EMPTY;
        goto cleanup;
    }
    st.records = s.n;
    st.bad = s.bad;
    memcpy(st.bad_examples, s.examples, sizeof st.bad_examples);
    snprintf(st.format, sizeof st.format, "%s", fmtname);

    /* the lists to create: the export's inventory, or one from the options */
    if (s.nlists) {
        IMT_TRY(inventory_lists(&s, &o, &metas, &nmeta));
    } else {
        metas = imt__calloc(1, sizeof *metas);
        if (!metas) {
            err = IMT_E_NOMEM;
            goto cleanup;
        }
        nmeta = 1;
        idx_list_meta *m = &metas[0];
        if (o.name && *o.name) snprintf(m->name, sizeof m->name, "%s", o.name);
        else {
            const char *b = strrchr(path, '/');
            snprintf(m->name, sizeof m->name, "%s", b ? b + 1 : path);
        }
        snprintf(m->version, sizeof m->version, "%s", o.version && *o.version ? o.version : s.version);
        snprintf(m->format, sizeof m->format, "%s", fmtname);
        snprintf(m->file_sha256, sizeof m->file_sha256, "%s", sha);
        snprintf(m->scheme, sizeof m->scheme, "%s",
                 o.scheme && *o.scheme ? o.scheme : (f == IF_VICS ? "projectvic" : "custom"));
        m->import_time = o.import_time ? o.import_time : (int64_t)time(NULL);
        m->known_good = o.known_good >= 0 ? o.known_good : (f == IF_NSRL);
        if (idx_policy_resolve(idx_policy_default(m->scheme, m->known_good), o.policy, m->policy,
                               sizeof m->policy, pmsg, sizeof pmsg) != IMT_OK) {
            idx_set_err(idx, "category policy: %s", pmsg);
            err = IMT_E_INVALID;
            goto cleanup;
        }
    }
    per_slot = imt__calloc(nmeta, sizeof *per_slot);
    if (!per_slot) {
        err = IMT_E_NOMEM;
        goto cleanup;
    }

    /* the write transaction: everything below is atomic */
#define STAGE(name) do { if (o.stage) o.stage(o.progress_opaque, name); } while (0)
    STAGE("parsed");
    idx_snapshot_end(idx);
    snap_closed = 1;
    IMT_TRY(writer_begin(idx, &w));
    STAGE("begin");
    if (!o.again) IMT_TRY(check_not_imported(&w, metas, nmeta, path));
    IMT_TRY(load_delta_sorted(&w));
    uint32_t list_id = w.h.next_list;
    if ((uint64_t)w.h.next_list + nmeta > UINT32_MAX) {
        idx_set_err(idx, "%s: too many lists", idx->path);
        err = IMT_E_TOO_LARGE;
        goto cleanup;
    }
    w.h.next_list += (uint32_t)nmeta;
    IMT_TRY(merge_records(&w, &s, list_id, per_slot, &st));
    STAGE("entries");
    IMT_TRY(write_digests(&w, &s));
    STAGE("digests");
    IMT_TRY(write_delta(&w));
    STAGE("delta");
    int do_compact = o.compact > 0 || (o.compact < 0 && w.h.delta_n > IDX_DELTA_MAX) ||
                     (o.compact < 0 && w.h.delta_n > 4096 && w.h.main_n == 0);
    if (do_compact && (w.h.delta_n || o.compact > 0)) {
        IMT_TRY(compact(&w));
        st.compacted = 1;
        STAGE("compact");
    }
    for (size_t i = 0; i < nmeta; i++) {
        const idx_list_meta *m = &metas[i];
        if (s.nlists && !s.bad && per_slot[i] != m->entries) {
            idx_set_err(idx, "%s: list %u of the export says it has %llu entries, %llu name it",
                        path, (unsigned)m->src_id, (unsigned long long)m->entries,
                        (unsigned long long)per_slot[i]);
            err = IMT_E_PARSE;
            goto cleanup;
        }
        imt_list_info li;
        memset(&li, 0, sizeof li);
        li.id = list_id + (uint32_t)i;
        li.name = m->name;
        li.version = m->version;
        li.format = m->format;
        li.file_sha256 = m->file_sha256;
        li.scheme = m->scheme;
        li.import_time = m->import_time;
        li.known_good = m->known_good;
        li.policy = m->policy;
        li.entries = per_slot[i];
        IMT_TRY(write_list(&w, &li));
    }
    IMT_TRY(writer_commit(idx, &w, o.stage, o.progress_opaque));
    STAGE("done");
#undef STAGE
    st.list_id = list_id;
    st.lists = (uint32_t)nmeta;
cleanup:
    writer_free(&w);
    if (snap_closed) {
        imt_err e2 = idx_snapshot_begin(idx);
        if (err == IMT_OK) err = e2;
    }
    if (fd >= 0) close(fd);
    imt__free(s.recs);
    imt__free(s.mem);
    imt__free(s.lists);
    imt__free(s.str);
    imt__free(metas);
    imt__free(per_slot);
    if (stats) *stats = st;
    return err;
}

imt_err imt_index_compact(imt_index *idx)
{
    imt_err err = IMT_OK;
    writer w;
    memset(&w, 0, sizeof w);
    if (!idx) return IMT_E_INVALID;
    if (idx->read_only) {
        is_writable(idx);
        return IMT_E_READONLY;
    }
    if (!is_writable(idx)) return IMT_E_BUSY;
    idx_snapshot_end(idx);
    IMT_TRY(writer_begin(idx, &w));
    if (w.h.main_n + w.h.delta_n) IMT_TRY(compact(&w));
    IMT_TRY(writer_commit(idx, &w, NULL, NULL));
cleanup:
    writer_free(&w);
    {
        imt_err e2 = idx_snapshot_begin(idx);
        if (err == IMT_OK) err = e2;
    }
    return err;
}
