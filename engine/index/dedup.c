/* engine/index/dedup.c -- sorting a list's hashes (LSD radix sort on the
 * first 8 bytes, runs of equal keys finished on the whole hash) and finding
 * in-list duplicates. */
#include "index.h"

#include <string.h>

/* ---- sorting: LSD radix sort of (64-bit key, index) pairs -------------- */
static imt_err radix_sort(idx_kv *a, size_t n)
{
    if (n < 2) return IMT_OK;
    size_t bytes;
    if (!imt__mul_ok(n, sizeof *a, &bytes)) return IMT_E_NOMEM;
    idx_kv *tmp = imt__malloc(bytes);
    if (!tmp) return IMT_E_NOMEM;
    idx_kv *src = a, *dst = tmp;
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
        idx_kv *t = src;
        src = dst;
        dst = t;
    }
    if (src != a) memcpy(a, src, bytes);
    imt__free(tmp);
    return IMT_OK;
}

uint64_t idx_key64(const uint8_t *h)
{
    uint64_t k = 0;
    for (int i = 0; i < 8; i++) k = k << 8 | h[i];
    return k;
}

static const char *kind_label(unsigned kind)
{
    return kind == KB_PDQ ? "PDQ hash" : kind == KB_MD5 ? "MD5" : kind == KB_SHA1 ? "SHA-1" : "SHA-256";
}

/* Sort by (full hash, line): kv keys give the first 8 bytes; runs of equal
 * keys are finished with an insertion sort on the whole hash. */
imt_err idx_sort_by_hash(const idx_sink *s, unsigned kind, idx_kv *a, size_t n)
{
    imt_err err = radix_sort(a, n);
    if (err) return err;
    size_t len;
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && a[j].key == a[i].key) j++;
        for (size_t x = i + 1; x < j; x++) {
            idx_kv v = a[x];
            const uint8_t *hv = idx_srec_hash(s, &s->recs[v.idx], kind, &len);
            size_t y = x;
            while (y > i) {
                const uint8_t *hy = idx_srec_hash(s, &s->recs[a[y - 1].idx], kind, &len);
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
imt_err idx_find_duplicates(idx_sink *s, uint64_t before_line)
{
    imt_err err = IMT_OK;
    idx_kv *a = NULL;
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
            a[m].key = idx_key64(idx_srec_hash(s, &s->recs[i], kinds[k], &len));
            a[m].idx = (uint32_t)i;
            a[m].pad = 0;
            m++;
        }
        IMT_TRY(idx_sort_by_hash(s, kinds[k], a, m));
        for (size_t i = 1; i < m; i++) {
            const uint8_t *h0 = idx_srec_hash(s, &s->recs[a[i - 1].idx], kinds[k], &len);
            const uint8_t *h1 = idx_srec_hash(s, &s->recs[a[i].idx], kinds[k], &len);
            if (a[i].key == a[i - 1].key && memcmp(h0, h1, len) == 0) {
                /* a[i-1] is the earliest line of the run (sorted by index) */
                size_t first = i - 1;
                while (first > 0 && dup[a[first].idx] && a[first - 1].key == a[i].key &&
                       memcmp(idx_srec_hash(s, &s->recs[a[first - 1].idx], kinds[k], &len), h1, len) == 0)
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
        const idx_srec *r = &s->recs[i];
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

