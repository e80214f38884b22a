/* engine/triage/sample.c -- block sampling of a raw disk image: n distinct
 * 4 KiB-aligned positions drawn at random (seeded), read in offset order
 * (sequential access), and at each the 4 KiB blocks at the 8 sector
 * alignments a file could start on looked up in the index's block table
 * (engine/index/blocks.c). A file starting on a 512-byte boundary has each
 * of its 4 KiB blocks at exactly one (position, alignment), so a collection
 * whose stored blocks lie under M of the P positions is found with
 * probability 1 - C(P - M, n) / C(P, n). */
#include "triage.h"
#include "scan/scan.h"
#include "source/source.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void imt_sample_opts_init(imt_sample_opts *o)
{
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->seed = 1;
}

double imt_sample_detect_probability(uint64_t P, uint64_t M, uint64_t n)
{
    if (M == 0 || n == 0 || P == 0) return 0.0;
    if (M > P) M = P;
    if (n > P - M) return 1.0;
    /* log C(P-M, n) - log C(P, n) */
    double l = lgamma((double)(P - M) + 1) - lgamma((double)(P - M - n) + 1) -
               lgamma((double)P + 1) + lgamma((double)(P - n) + 1);
    return 1.0 - exp(l);
}

void imt_sample_result_free(imt_sample_result *r)
{
    if (!r) return;
    imt__free(r->hits);
    memset(r, 0, sizeof *r);
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* n distinct numbers below P, sorted: Floyd's algorithm over a sorted set
 * would be n log n per insert; instead draw, sort, dedupe, top up. */
static imt_err draw_positions(uint64_t P, uint64_t n, uint64_t seed, uint64_t **out)
{
    size_t bytes;
    if (!imt__mul_ok((size_t)n, sizeof(uint64_t), &bytes)) return IMT_E_NOMEM;
    uint64_t *v = imt__malloc(bytes ? bytes : 1);
    if (!v) return IMT_E_NOMEM;
    uint64_t s = seed ^ 0x5A3C96E1F00DBA11ull, have = 0;
    if (n == P) {
        for (uint64_t i = 0; i < n; i++) v[i] = i;
        *out = v;
        return IMT_OK;
    }
    while (have < n) {
        for (uint64_t i = have; i < n; i++) {
            /* unbiased below P: reject the top partial range */
            uint64_t lim = UINT64_MAX - UINT64_MAX % P, r;
            do r = splitmix(&s); while (r >= lim);
            v[i] = r % P;
        }
        qsort(v, (size_t)n, sizeof *v, u64_cmp);
        uint64_t k = 0;
        for (uint64_t i = 0; i < n; i++)
            if (!k || v[i] != v[k - 1]) v[k++] = v[i];
        have = k;
    }
    *out = v;
    return IMT_OK;
}

imt_err imt_sample_image(imt_index *idx, const char *path, const imt_sample_opts *o,
                         imt_sample_result *res, char *detail, size_t cap)
{
    imt_err err = IMT_OK;
    imt_block_reader *br = NULL;
    uint64_t *pos = NULL;
    uint8_t *buf = NULL;
    int fd = -1;
    size_t hcap = 0;
    if (detail && cap) detail[0] = '\0';
    if (!idx || !path || !o || !res || !o->samples) return IMT_E_INVALID;
    memset(res, 0, sizeof *res);
    uint64_t t0 = imt__now_ms();
    err = imt_block_reader_open(&br, idx);
    if (err) {
        imt__set_detail(detail, cap, "%s", imt_index_last_error(idx));
        goto cleanup;
    }
    fd = imt__open_evidence(AT_FDCWD, path, 0);
    if (fd < 0) {
        imt__set_detail(detail, cap, "cannot open %s: %s", path, strerror(errno));
        err = errno == ENOENT ? IMT_E_NOT_FOUND : IMT_E_IO;
        goto cleanup;
    }
    off_t end = lseek(fd, 0, SEEK_END);
    if (end < 0) {
        imt__set_detail(detail, cap, "cannot size %s: %s", path, strerror(errno));
        err = IMT_E_IO;
        goto cleanup;
    }
    res->image_size = (uint64_t)end;
    res->positions = res->image_size / IMT_BLOCK_SIZE;
    if (!res->positions) {
        imt__set_detail(detail, cap, "%s is smaller than one 4 KiB block", path);
        err = IMT_E_INVALID;
        goto cleanup;
    }
    uint64_t n = o->samples < res->positions ? o->samples : res->positions;
    IMT_TRY(draw_positions(res->positions, n, o->seed, &pos));
    /* Rounds: with a budget, the positions are shuffled and each round
     * (a sixteenth, at least 1024) sorted, so that whole rounds read are a
     * random sample; without one, one round: a single sweep. */
    uint64_t round = n;
    if (o->budget_ms) {
        round = n / 16 > 1024 ? n / 16 : 1024;
        uint64_t s = o->seed ^ 0xC2B2AE3D27D4EB4Full;
        for (uint64_t i = n; i > 1; i--) {
            uint64_t j = splitmix(&s) % i, t = pos[i - 1];
            pos[i - 1] = pos[j];
            pos[j] = t;
        }
        for (uint64_t r0 = 0; r0 < n; r0 += round)
            qsort(pos + r0, (size_t)(n - r0 < round ? n - r0 : round), sizeof *pos, u64_cmp);
    }
    enum { WIN = IMT_BLOCK_SIZE + IMT_BLOCK_SIZE - 512 };
    buf = imt__malloc(WIN);
    if (!buf) { err = IMT_E_NOMEM; goto cleanup; }
    for (uint64_t i = 0; i < n; i++) {
        if (o->stop && *o->stop) { err = IMT_E_INTERRUPTED; break; }
        if (o->budget_ms && i % round == 0 && i && imt__now_ms() - t0 >= o->budget_ms) {
            res->budget_hit = 1;
            break;
        }
        uint64_t p = pos[i] * IMT_BLOCK_SIZE;
        size_t want = WIN;
        if (res->image_size - p < want) want = (size_t)(res->image_size - p);
        size_t got = 0;
        while (got < want) {
            ssize_t r = pread(fd, buf + got, want - got, (off_t)(p + got));
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) break;
            got += (size_t)r;
        }
        if (got < IMT_BLOCK_SIZE) {
            imt__set_detail(detail, cap, "cannot read %s at %llu: %s", path,
                            (unsigned long long)p, got ? "short read" : strerror(errno));
            err = IMT_E_IO;
            goto cleanup;
        }
        res->samples++;
        res->bytes_read += got;
        for (size_t a = 0; a + IMT_BLOCK_SIZE <= got; a += 512) {
            imt_block_hit h;
            int found = 0;
            res->lookups++;
            IMT_TRY(imt_block_lookup(br, imt_block_key(buf + a), &h, &found));
            if (!found) continue;
            if (res->n_hits == hcap) {
                size_t nc = hcap ? hcap * 2 : 16, bytes;
                if (!imt__mul_ok(nc, sizeof *res->hits, &bytes)) { err = IMT_E_NOMEM; goto cleanup; }
                imt_sample_hit *nh = imt__realloc(res->hits, bytes);
                if (!nh) { err = IMT_E_NOMEM; goto cleanup; }
                res->hits = nh;
                hcap = nc;
            }
            res->hits[res->n_hits].offset = p + a;
            res->hits[res->n_hits++].at = h;
        }
    }
    if (err == IMT_E_INTERRUPTED) imt__set_detail(detail, cap, "stopped on request");
cleanup:
    res->elapsed_ms = imt__now_ms() - t0;
    if (fd >= 0) close(fd);
    imt_block_reader_close(br);
    imt__free(pos);
    imt__free(buf);
    if (err == IMT_E_NOMEM && detail && cap && !detail[0])
        imt__set_detail(detail, cap, "out of memory");
    return err;
}

imt_err imt_sample_confirm(const char *path, uint64_t start, uint64_t size,
                           const uint8_t md5[16], int *match)
{
    if (!path || !md5 || !match) return IMT_E_INVALID;
    *match = 0;
    int fd = imt__open_evidence(AT_FDCWD, path, 0);
    if (fd < 0) return IMT_E_IO;
    imt_err err = IMT_OK;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned char *buf = imt__malloc(1 << 16), md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    if (!c || !buf || !EVP_DigestInit_ex(c, EVP_md5(), NULL)) { err = IMT_E_NOMEM; goto cleanup; }
    for (uint64_t off = 0; off < size;) {
        size_t want = size - off < (1u << 16) ? (size_t)(size - off) : (1u << 16);
        ssize_t r = pread(fd, buf, want, (off_t)(start + off));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) goto cleanup; /* past the end: not there */
        if (!EVP_DigestUpdate(c, buf, (size_t)r)) { err = IMT_E_NOMEM; goto cleanup; }
        off += (uint64_t)r;
    }
    if (EVP_DigestFinal_ex(c, md, &len) && len == 16) *match = !memcmp(md, md5, 16);
cleanup:
    EVP_MD_CTX_free(c);
    imt__free(buf);
    close(fd);
    return err;
}

/* ---- block hits located through the file system ------------------------
 * A known file that is not whole where its block implies (fragmented, or
 * its start reused) is found by the file whose byte runs hold the block:
 * the source's enumeration lists every file with its runs (metadata only),
 * and the files holding a sampled offset are read through TSK and hashed. */

typedef struct loc_off {
    uint64_t off;
    size_t i;
} loc_off;

static int loc_cmp(const void *a, const void *b)
{
    const loc_off *x = a, *y = b;
    if (x->off != y->off) return x->off < y->off ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* MD5 of e's content read whole through rd; 0 when it could not be. */
static int md5_entry(imt__sreader *rd, const imt__sentry *e, uint8_t md5[16], uint8_t *buf,
                     size_t bcap)
{
    imt_stream st;
    char det[256];
    if (imt__sreader_begin(rd, e, &st, det, sizeof det) != IMT_OK) return 0;
    int ok = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    uint64_t total = 0;
    if (c && EVP_DigestInit_ex(c, EVP_md5(), NULL)) {
        for (;;) {
            size_t got = 0;
            if (st.read(st.ctx, buf, bcap, &got) != IMT_OK) break;
            if (!got) {
                ok = total == e->size;
                break;
            }
            if (!EVP_DigestUpdate(c, buf, got)) break;
            total += got;
        }
        if (ok) ok = EVP_DigestFinal_ex(c, md, &len) && len == 16;
        if (ok) memcpy(md5, md, 16);
    }
    EVP_MD_CTX_free(c);
    imt__sreader_end(rd);
    return ok;
}

imt_err imt_sample_locate(const char *path, const uint64_t *offsets, size_t n,
                          imt_sample_located_fn cb, void *ctx, const volatile int *stop,
                          char *detail, size_t cap)
{
    imt_err err = IMT_OK;
    imt__enum *en = NULL;
    imt__sreader *rd = NULL;
    imt__sentry *e = NULL;
    loc_off *v = NULL;
    uint8_t *buf = NULL;
    enum { BUF = 1 << 16 };
    if (detail && cap) detail[0] = '\0';
    if (!path || !cb || (n && !offsets)) return IMT_E_INVALID;
    if (!n) return IMT_OK;
    imt__img_kind kind;
    struct stat sb;
    int bdev = stat(path, &sb) == 0 && S_ISBLK(sb.st_mode);
    if (!imt__img_sniff(path, bdev, &kind)) {
        imt__set_detail(detail, cap, "%s: no volume or file system recognised", path);
        return IMT_E_UNSUPPORTED;
    }
    size_t bytes;
    if (!imt__mul_ok(n, sizeof *v, &bytes)) return IMT_E_NOMEM;
    v = imt__malloc(bytes);
    buf = imt__malloc(BUF);
    if (!v || !buf) { err = IMT_E_NOMEM; goto cleanup; }
    for (size_t i = 0; i < n; i++) v[i] = (loc_off){offsets[i], i};
    qsort(v, n, sizeof *v, loc_cmp);
    IMT_TRY(imt__sreader_create(&rd));
    imt__src_limits lim;
    imt__src_limits_init(&lim);
    lim.no_carve = 1;
    IMT_TRY(imt__enum_open(&en, path, kind, &lim, stop));
    for (;;) {
        IMT_TRY(imt__enum_next(en, &e));
        if (!e) break;
        if (e->type != IMT_ENTRY_FILE || e->status != IMT_OK || !e->readable || e->carved) {
            imt__sentry_free(e);
            e = NULL;
            continue;
        }
        int have_md5 = -1; /* not read yet */
        uint8_t md5[16] = {0};
        for (size_t r = 0; r < e->loc.n_runs && !err; r++) {
            const imt_byte_run *ru = &e->loc.runs[r];
            if (ru->sparse || !ru->len) continue;
            /* the first offset at or after the run's start */
            size_t lo = 0, hi = n;
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (v[mid].off < ru->img_offset) lo = mid + 1;
                else hi = mid;
            }
            for (; lo < n && v[lo].off - ru->img_offset < ru->len; lo++) {
                if (have_md5 < 0) have_md5 = md5_entry(rd, e, md5, buf, BUF);
                imt_sample_located l;
                memset(&l, 0, sizeof l);
                l.hit = v[lo].i;
                l.path = e->path;
                l.alloc = e->loc.alloc;
                l.size = e->size;
                l.file_offset = ru->file_offset + (v[lo].off - ru->img_offset);
                l.read_ok = have_md5 > 0;
                if (l.read_ok) memcpy(l.md5, md5, 16);
                if (cb(ctx, &l)) {
                    err = IMT_E_INTERRUPTED;
                    break;
                }
            }
        }
        imt__sentry_free(e);
        e = NULL;
        if (err) goto cleanup;
    }
    if (stop && *stop) err = IMT_E_INTERRUPTED;
cleanup:
    imt__sentry_free(e);
    imt__enum_close(en);
    imt__sreader_free(rd);
    imt__free(v);
    imt__free(buf);
    if (err == IMT_E_INTERRUPTED && detail && cap && !detail[0])
        imt__set_detail(detail, cap, "stopped on request");
    if (err == IMT_E_NOMEM && detail && cap && !detail[0])
        imt__set_detail(detail, cap, "out of memory");
    return err;
}
