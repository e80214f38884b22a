/* engine/index/dedup.c -- sorting a batch's hashes (LSD radix sort on the
 * first 8 bytes, runs of equal keys finished on the whole hash) for the
 * digest tables' in-order inserts. In-list repeats are found by the merge
 * (writer.c), which sees every earlier batch. */
#include "index.h"

#include <string.h>

/* ---- sorting: LSD radix sort of (64-bit key, index) pairs -------------- */
static imt_err radix_sort(imt__idx_kv *a, size_t n)
{
    if (n < 2) return IMT_OK;
    size_t bytes;
    if (!imt__mul_ok(n, sizeof *a, &bytes)) return IMT_E_NOMEM;
    imt__idx_kv *tmp = imt__malloc(bytes);
    if (!tmp) return IMT_E_NOMEM;
    imt__idx_kv *src = a, *dst = tmp;
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
        imt__idx_kv *t = src;
        src = dst;
        dst = t;
    }
    if (src != a) memcpy(a, src, bytes);
    imt__free(tmp);
    return IMT_OK;
}

uint64_t imt__idx_key64(const uint8_t *h)
{
    uint64_t k = 0;
    for (int i = 0; i < 8; i++) k = k << 8 | h[i];
    return k;
}

/* Sort by (full hash, line): kv keys give the first 8 bytes; runs of equal
 * keys are finished with an insertion sort on the whole hash. */
imt_err imt__idx_sort_by_hash(const imt__idx_sink *s, unsigned kind, imt__idx_kv *a, size_t n)
{
    imt_err err = radix_sort(a, n);
    if (err) return err;
    size_t len;
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && a[j].key == a[i].key) j++;
        for (size_t x = i + 1; x < j; x++) {
            imt__idx_kv v = a[x];
            const uint8_t *hv = imt__idx_srec_hash(s, &s->recs[v.idx], kind, &len);
            size_t y = x;
            while (y > i) {
                const uint8_t *hy = imt__idx_srec_hash(s, &s->recs[a[y - 1].idx], kind, &len);
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
