/* engine/decode/thumbcache.c -- the pictures of a Windows thumbnail cache
 * (thumbcache_*.db, Vista to 11), read as the file streams past.
 *
 * Layout (Joachim Metz, libwtcdb's "Windows Explorer Thumbnail Cache
 * database format"; little-endian): a file header "CMMM", format version
 * (20 Vista, 21 Windows 7, 30 Windows 8, 31 Windows 8.1, 32 Windows 10/11),
 * cache type and entry offsets, then cache entries one after another. Each
 * entry: "CMMM", its size (from the signature on), the entry hash (the
 * ThumbnailCacheId, 8 bytes), then the sizes of its identifier string, its
 * padding and its data at offsets 24/28/32 (version 20, whose entries carry
 * an 8-byte file extension first) or 16/20/24 (21 and later), two CRC-64s,
 * the UTF-16 identifier, padding, and the data (a BMP, JPEG or PNG).
 *
 * Defensive reading, never seeking backwards (the bytes stream once through
 * the digests): the header's entry offsets are not trusted (they moved
 * between versions); entries are found by their signature from byte 24 on,
 * and after each valid entry the next is expected where its size says. An
 * entry whose sizes do not add up is skipped by searching on for the next
 * "CMMM" one byte past its start, so one damaged entry does not hide the
 * rest of the cache. Entries without data (the free-space entry, deleted
 * ones) are not reported. An entry's data is buffered (at most max_data
 * bytes: larger ones are reported too-large, not read); nothing else is
 * kept, so memory is one entry whatever the cache size. The CRC-64s are not
 * checked (the polynomial is not published): a damaged picture fails to
 * decode instead. */
#include "decode.h"

#include <string.h>

enum { TC_FH, TC_SCAN, TC_EH, TC_SKIP_TO_DATA, TC_DATA, TC_SKIP_TO_END };

#define TC_FILE_HEADER 24u
#define TC_MAX_EH 56u

struct imt_tcache {
    int state;
    uint64_t pos;            /* stream offset of the next byte fed */
    uint32_t version;
    uint8_t fh[TC_FILE_HEADER];
    uint8_t eh[TC_MAX_EH];
    size_t fh_n, eh_n, eh_size;
    uint32_t win;            /* scan: the last four bytes */
    uint64_t entry_at, data_at, data_end, entry_end;
    uint64_t hash;
    uint32_t index;          /* entries with data so far */
    size_t max_data;
    uint8_t *data;
    size_t data_cap, data_n;
    int data_keep;           /* the data is being buffered */
    imt_err data_err;        /* why not (too large, out of memory) */
    size_t entries;
    imt_tc_fn fn;
    void *ctx;
};

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p) { return le32(p) | (uint64_t)le32(p + 4) << 32; }

imt_err imt__tc_create(imt_tcache **out)
{
    *out = imt__calloc(1, sizeof **out);
    return *out ? IMT_OK : IMT_E_NOMEM;
}

void imt__tc_free(imt_tcache *t)
{
    if (!t) return;
    imt__free(t->data);
    imt__free(t);
}

void imt__tc_begin(imt_tcache *t, size_t max_data, imt_tc_fn fn, void *ctx)
{
    uint8_t *d = t->data;
    size_t cap = t->data_cap;
    memset(t, 0, sizeof *t);
    t->data = d;
    t->data_cap = cap;
    t->state = TC_FH;
    t->max_data = max_data;
    t->fn = fn;
    t->ctx = ctx;
}

uint32_t imt__tc_version(const imt_tcache *t) { return t->version; }
size_t imt__tc_entries(const imt_tcache *t) { return t->entries; }

static void emit(imt_tcache *t, imt_err st, const uint8_t *data)
{
    imt_tc_entry e = {t->hash, t->data_at, t->data_end - t->data_at, t->index++, st};
    t->entries++;
    t->fn(t->ctx, &e, data);
}

static void feed(imt_tcache *t, const uint8_t *p, size_t n);

/* The entry header in eh is complete: check it and plan the entry. */
static void entry_header(imt_tcache *t)
{
    const uint8_t *h = t->eh;
    uint64_t size = le32(h + 4);
    uint64_t id, pad, data;
    if (t->version == 20) {
        id = le32(h + 24);
        pad = le32(h + 28);
        data = le32(h + 32);
    } else {
        id = le32(h + 16);
        pad = le32(h + 20);
        data = le32(h + 24);
    }
    if (size < t->eh_size || t->eh_size + id + pad + data > size) {
        /* Not an entry: search on from the byte after its "CMMM". */
        uint8_t again[TC_MAX_EH];
        size_t k = t->eh_n - 1;
        memcpy(again, t->eh + 1, k);
        t->state = TC_SCAN;
        t->win = 0;
        t->pos = t->entry_at + 1;
        feed(t, again, k);
        return;
    }
    t->hash = le64(h + 8);
    t->data_at = t->entry_at + t->eh_size + id + pad;
    t->data_end = t->data_at + data;
    t->entry_end = t->entry_at + size;
    if (data == 0) {
        t->state = TC_SKIP_TO_END;
        return;
    }
    t->data_n = 0;
    t->data_err = IMT_OK;
    t->data_keep = 0;
    if (data > t->max_data) {
        t->data_err = IMT_E_TOO_LARGE;
    } else if (t->data_cap < data) {
        uint8_t *b = imt__realloc(t->data, (size_t)data);
        if (!b) {
            t->data_err = IMT_E_NOMEM;
        } else {
            t->data = b;
            t->data_cap = (size_t)data;
        }
    }
    t->data_keep = t->data_err == IMT_OK;
    t->state = TC_SKIP_TO_DATA;
}

static void feed(imt_tcache *t, const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        switch (t->state) {
        case TC_FH: {
            size_t k = TC_FILE_HEADER - t->fh_n;
            if (k > n - i) k = n - i;
            memcpy(t->fh + t->fh_n, p + i, k);
            t->fh_n += k;
            t->pos += k;
            i += k;
            if (t->fh_n == TC_FILE_HEADER) {
                t->version = le32(t->fh + 4);
                t->eh_size = t->version == 21 ? 48 : 56;
                t->state = TC_SCAN;
                t->win = 0;
            }
            break;
        }
        case TC_SCAN: {
            /* The window holds the last bytes across calls; past a byte
             * that is neither 'C' nor 'M', memchr jumps to the next 'C'. */
            while (i < n) {
                uint8_t c = p[i++];
                t->pos++;
                t->win = t->win << 8 | c;
                if (t->win == 0x434D4D4Du) { /* "CMMM" */
                    t->entry_at = t->pos - 4;
                    memcpy(t->eh, "CMMM", 4);
                    t->eh_n = 4;
                    t->state = TC_EH;
                    break;
                }
                if (c != 'C' && c != 'M') {
                    const uint8_t *q = memchr(p + i, 'C', n - i);
                    size_t skip = q ? (size_t)(q - (p + i)) : n - i;
                    if (skip) {
                        i += skip;
                        t->pos += skip;
                        t->win = 0;
                    }
                }
            }
            break;
        }
        case TC_EH: {
            size_t k = t->eh_size - t->eh_n;
            if (k > n - i) k = n - i;
            memcpy(t->eh + t->eh_n, p + i, k);
            t->eh_n += k;
            t->pos += k;
            i += k;
            /* A refused header re-feeds its own bytes to the scan, which
             * then goes on with the rest of this chunk. */
            if (t->eh_n == t->eh_size) entry_header(t);
            break;
        }
        case TC_SKIP_TO_DATA:
        case TC_SKIP_TO_END: {
            uint64_t to = t->state == TC_SKIP_TO_DATA ? t->data_at : t->entry_end;
            uint64_t k = to - t->pos;
            if (k > n - i) k = n - i;
            i += (size_t)k;
            t->pos += k;
            if (t->pos == to) {
                if (t->state == TC_SKIP_TO_DATA) {
                    t->state = TC_DATA;
                } else {
                    t->state = TC_SCAN;
                    t->win = 0;
                }
            }
            break;
        }
        case TC_DATA: {
            uint64_t k = t->data_end - t->pos;
            if (k > n - i) k = n - i;
            if (t->data_keep) memcpy(t->data + t->data_n, p + i, (size_t)k);
            t->data_n += (size_t)k;
            i += (size_t)k;
            t->pos += k;
            if (t->pos == t->data_end) {
                emit(t, t->data_err, t->data_keep ? t->data : NULL);
                t->state = TC_SKIP_TO_END;
                if (t->pos == t->entry_end) {
                    t->state = TC_SCAN;
                    t->win = 0;
                }
            }
            break;
        }
        }
    }
}

void imt__tc_feed(imt_tcache *t, const uint8_t *p, size_t n)
{
    if (n) feed(t, p, n);
}

void imt__tc_end(imt_tcache *t)
{
    /* An entry whose data the file cut short. */
    if (t->state == TC_DATA || t->state == TC_SKIP_TO_DATA) {
        t->state = TC_SCAN;
        emit(t, IMT_E_TRUNCATED, NULL);
    }
}
