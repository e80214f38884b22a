/* engine/scan/hashfile.c -- one file through the pipeline: read once
 * (digesting every byte), sniff, decode to luma, PDQ-hash.
 *
 * Reading is a pull stream of fixed-size chunks: the decoder asks for bytes,
 * each chunk is digested as it passes, and whatever the decoder did not need
 * (a progressive JPEG stopped early, trailing data) is drained through the
 * digests afterwards. Memory per hasher is one chunk plus decoder scratch,
 * whatever the file size.
 *
 * Sparse files: the holes of a regular file (SEEK_DATA/SEEK_HOLE) are not
 * read; chunks of zeros from a static buffer stand for them, so the digests
 * and the decoder still see every byte of the file. Digesting the zeros
 * cannot be skipped (MD5/SHA are not shortcuts over runs of zeros), so a
 * sparse file costs its digest time, not its read time: on a 4 GB hole,
 * 17.1 s -> about 7 s (the kernel's zero-filling of read() was 9.4 s of it).
 * A stop request is honoured between chunks (256 KiB: well under a
 * millisecond of digesting), so a signal never waits for a huge file. */
#include "decode/decode.h"
#include "hash/hash.h"
#include "scan.h"
#include "video/video.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK (256u * 1024u)

/* The most bytes of one embedded picture collected (a camera's MPF
 * preview is a few MB); a larger one is too-large, not read. */
#define SUB_MAX_BYTES ((size_t)16 << 20)
/* The most bytes of a Thumbs.db (an OLE2 file, read whole: thumbsdb.c) */
#define OLE_MAX_BYTES ((size_t)64 << 20)

struct imt_hasher {
    imt_hash_opts opts;
    imt_decoder *dec;
    imt_pdq_ctx *pdq;
    imt_digest *dig;
    uint8_t *buf;
    char last_error[256];
    /* embedded pictures of the current file: where, and their bytes as the
     * stream passes them (buffers reused across files) */
    size_t n_emb;
    imt_embedded_ref emb[IMT_MAX_SUBITEMS];
    uint8_t *emb_buf[IMT_MAX_SUBITEMS];
    size_t emb_cap[IMT_MAX_SUBITEMS];
    uint64_t emb_got[IMT_MAX_SUBITEMS];
    int emb_want[IMT_MAX_SUBITEMS]; /* being collected */
    imt_subitem sub[IMT_MAX_SUBITEMS];
    /* the sampled frames of the current video (buffers reused across files) */
    imt_video_frame *frames;
    size_t n_frames, cap_frames;
    int video_threads;           /* 0: opts.video_threads */
    /* a thumbnail cache: its entries, hashed as the stream passes them
     * (thumbcache_*.db), or the whole file gathered (Thumbs.db) */
    imt_tcache *tc;
    int tc_on, ole_on;
    uint8_t *ole;
    size_t ole_len, ole_cap;
    int ole_over;                  /* the file is larger than gathered */
    imt_subitem *csub;             /* up to IMT_MAX_CACHE_ENTRIES */
    size_t n_csub, csub_cap;
    imt_hash_result *cres;         /* the result being filled */
    const imt_decode_limits *clim;
    size_t ctimeout;               /* entries the time budget left unhashed */
};

/* The largest video frame decoded (RGB24 + float luma: 7 bytes a pixel);
 * --max-pixels applies below it. 8K is 2^25. */
#define VIDEO_MAX_PIXELS ((uint64_t)1 << 26)

/* What a hole of a sparse file reads as. */
static const uint8_t zeros[CHUNK];

/* The source behind the reader: an fd, a memory block or a caller's stream. */
typedef struct source {
    imt_hasher *h;
    int fd;                /* -1 for memory and streams */
    const imt_stream *stream; /* non-NULL: read through it */
    const imt__io *rio;    /* a stream's random access, when it has one (a
                              file in a disk image): a video decodes through it */
    int sparse;            /* a regular file with holes: pread, holes not read */
    off_t pos;             /* sparse: the next offset to read */
    off_t zero_end;        /* sparse: [pos, zero_end) is a hole */
    off_t data_end;        /* sparse: [pos, data_end) is data */
    off_t size;            /* sparse: the size when opened */
    const uint8_t *mem;
    size_t mem_len, mem_pos;
    uint64_t total;        /* bytes delivered (and digested) so far */
    uint64_t limit;        /* fd: read no more than this (the size when
                              opened: digests and size agree); 0 = to EOF */
    const uint8_t *first;  /* the already-read first chunk, replayed once */
    size_t first_len;
    uint64_t base;         /* fd: the offset reading started at (video pread) */
    int eof;
    imt_err err;           /* sticky read error */
    int read_errno;
    off_t dn_base;         /* a regular file: its offset when the read began; -1 none */
    uint64_t dn_done;      /* bytes after dn_base dropped from the page cache */
} source;

/* Evidence is read once: drop what has been read from the page cache
 * (every DONTNEED_STEP bytes, and at the end), so that a scan streaming
 * hundreds of GB through the cache does not evict the index's pages, which
 * every query needs again (issue 11). Advisory; the bytes read are the same. */
#define DONTNEED_STEP (8u << 20)
static void drop_behind(source *s, int all)
{
    if (s->fd < 0 || s->dn_base < 0 || s->total <= s->dn_done) return;
    if (!all && s->total - s->dn_done < DONTNEED_STEP) return;
    (void)posix_fadvise(s->fd, s->dn_base + (off_t)s->dn_done, (off_t)(s->total - s->dn_done),
                        POSIX_FADV_DONTNEED);
    s->dn_done = s->total;
}

#define OFF_T_MAX ((off_t)(((uintmax_t)1 << (sizeof(off_t) * 8 - 1)) - 1))

/* Sparse source at s->pos, past the known runs: is a hole or data next?
 * Where the system cannot say, plain reads to the end. */
static void locate(source *s)
{
    off_t d = lseek(s->fd, s->pos, SEEK_DATA);
    if (d < 0 && errno == ENXIO && s->size > s->pos) {
        s->zero_end = s->size;       /* a hole up to the end */
    } else if (d > s->pos) {
        s->zero_end = d;
    } else if (d == s->pos) {
        off_t e = lseek(s->fd, s->pos, SEEK_HOLE);
        s->data_end = e > s->pos ? e : OFF_T_MAX;
    } else {
        s->data_end = OFF_T_MAX;     /* at the end (or unknown): read to EOF */
    }
}

/* Copy the part of the stream bytes [at, at+len) that belongs to an
 * embedded picture being collected. Bytes arrive in order, once each. */
static void collect(imt_hasher *h, uint64_t at, const uint8_t *d, size_t len)
{
    for (size_t i = 0; i < h->n_emb; i++) {
        if (!h->emb_want[i]) continue;
        uint64_t lo = h->emb[i].offset, hi = lo + h->emb[i].size;
        uint64_t a = at > lo ? at : lo, b = at + len < hi ? at + len : hi;
        if (a >= b) continue;
        memcpy(h->emb_buf[i] + (a - lo), d + (a - at), (size_t)(b - a));
        h->emb_got[i] += b - a;
    }
}

static int emb_pending(const imt_hasher *h)
{
    for (size_t i = 0; i < h->n_emb; i++)
        if (h->emb_want[i] && h->emb_got[i] < h->emb[i].size) return 1;
    return 0;
}

static void cache_feed(imt_hasher *h, const uint8_t *d, size_t n);

/* Read the next chunk from the underlying file and digest it. */
static imt_err src_fetch(source *s, const uint8_t **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    if (s->err) return s->err;
    if (s->eof) return IMT_OK;
    if (s->h->opts.stop && *s->h->opts.stop) return s->err = IMT_E_INTERRUPTED;
    size_t room = CHUNK;
    if (s->limit) {
        if (s->total >= s->limit) {
            s->eof = 1; /* the size it had when opened: more is a change */
            return IMT_OK;
        }
        if (s->limit - s->total < room) room = (size_t)(s->limit - s->total);
    }
    if (s->sparse) {
        if (s->pos >= s->zero_end && s->pos >= s->data_end) locate(s);
        if (s->pos < s->zero_end) {
            off_t n = s->zero_end - s->pos;
            *len = n > (off_t)room ? room : (size_t)n;
            *data = zeros;
        } else {
            off_t want = s->data_end - s->pos;
            size_t cnt = want > (off_t)room ? room : (size_t)want;
            ssize_t n;
            do n = pread(s->fd, s->h->buf, cnt, s->pos);
            while (n < 0 && errno == EINTR);
            if (n < 0) {
                s->read_errno = errno;
                return s->err = IMT_E_IO;
            }
            *data = s->h->buf;
            *len = (size_t)n; /* 0: the end (the file may have shrunk) */
        }
        s->pos += (off_t)*len;
    } else if (s->stream) {
        size_t got = 0;
        imt_err e = s->stream->read(s->stream->ctx, s->h->buf, room, &got);
        if (e) {
            s->read_errno = 0;
            return s->err = e;
        }
        if (got > room) {
            s->read_errno = 0;
            return s->err = IMT_E_INTERNAL; /* the stream broke its contract */
        }
        *data = s->h->buf;
        *len = got;
    } else if (s->fd < 0) {
        size_t n = s->mem_len - s->mem_pos;
        if (n > CHUNK) n = CHUNK;
        *data = s->mem + s->mem_pos;
        s->mem_pos += n;
        *len = n;
    } else {
        ssize_t n;
        do n = read(s->fd, s->h->buf, room);
        while (n < 0 && errno == EINTR);
        if (n < 0) {
            s->read_errno = errno;
            return s->err = IMT_E_IO;
        }
        *data = s->h->buf;
        *len = (size_t)n;
    }
    if (*len == 0) s->eof = 1;
    if (s->h->n_emb) collect(s->h, s->total, *data, *len);
    if (s->h->tc_on || s->h->ole_on) cache_feed(s->h, *data, *len);
    imt__digest_update(s->h->dig, *data, *len);
    s->total += *len;
    if (!s->sparse || *data != zeros) drop_behind(s, *len == 0);
    return IMT_OK;
}

/* The decoder's pull: replays the first chunk once, then fetches. */
static imt_err src_pull(void *ctx, const uint8_t **data, size_t *len)
{
    source *s = ctx;
    if (s->first) {
        *data = s->first;
        *len = s->first_len;
        s->first = NULL;
        return IMT_OK;
    }
    return src_fetch(s, data, len);
}

/* Why, and the figures: imgtriage.h. A library must not change the
 * process's allocator behind its caller's back, so this is a call. */
void imt_tune_allocator(void)
{
#ifdef __GLIBC__
    mallopt(M_MMAP_THRESHOLD, 512 * 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024);
    /* One arena. With blocks up to 512 MiB kept in the heap, a block that
     * grows by realloc in a thread's arena (heaps of at most 64 MiB) moves
     * to a new heap again and again, and each old heap stays resident,
     * pinned by the small blocks allocated between the moves: The Sleuth
     * Kit grows a folder's names 512 at a time, and a disk image's folder of
     * a million names (listed on the enumerating thread) peaked at 8.5 GB
     * instead of 290 MB (test_image_rss). The main arena grows in place. */
    mallopt(M_ARENA_MAX, 1);
#endif
}

void imt_hash_opts_init(imt_hash_opts *o)
{
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->mode = IMT_PDQ_FAST;
    o->dihedral = 0;
    o->digests = 0;
    o->pdq = 1;
    o->max_file_bytes = (uint64_t)2 << 30;
    o->max_pixels = (uint64_t)1 << 30;
    o->max_dimension = 100000;
    o->time_budget_ms = 60000;
    o->embedded = 1;
    o->seconds_per_hash = 1.0;
    o->max_video_frames = 36000;
    o->video_threads = 1;
}

imt_err imt_hasher_create(imt_hasher **out, const imt_hash_opts *opts)
{
    if (!out) return IMT_E_INVALID;
    *out = NULL;
    imt_err err = IMT_OK;
    imt_hasher *h = imt__calloc(1, sizeof *h);
    if (!h) return IMT_E_NOMEM;
    if (opts) h->opts = *opts;
    else imt_hash_opts_init(&h->opts);
    if (h->opts.mode != IMT_PDQ_FAST && h->opts.mode != IMT_PDQ_COMPAT) {
        err = IMT_E_INVALID;
        goto cleanup;
    }
    h->opts.digests &= IMT_DIGEST_ALL;
    if (!(h->opts.seconds_per_hash > 0) || h->opts.seconds_per_hash > 1e9) {
        err = IMT_E_INVALID;
        goto cleanup;
    }
    if (!h->opts.max_video_frames) h->opts.max_video_frames = 1;
    IMT_TRY(imt__decoder_create(&h->dec));
    IMT_TRY(imt__pdq_ctx_create(&h->pdq));
    IMT_TRY(imt__digest_create(&h->dig));
    h->buf = imt__malloc(CHUNK);
    if (!h->buf) {
        err = IMT_E_NOMEM;
        goto cleanup;
    }
    *out = h;
    return IMT_OK;
cleanup:
    imt_hasher_free(h);
    return err;
}

void imt_hasher_free(imt_hasher *h)
{
    if (!h) return;
    imt__decoder_free(h->dec);
    imt__pdq_ctx_free(h->pdq);
    imt__digest_free(h->dig);
    imt__free(h->buf);
    for (size_t i = 0; i < IMT_MAX_SUBITEMS; i++) imt__free(h->emb_buf[i]);
    imt__free(h->frames);
    imt__tc_free(h->tc);
    imt__free(h->ole);
    imt__free(h->csub);
    imt__free(h);
}

void imt__hasher_set_video_threads(imt_hasher *h, int n)
{
    if (h) h->video_threads = n < 1 ? 1 : n > 16 ? 16 : n;
}

const char *imt_hasher_last_error(const imt_hasher *h)
{
    return h ? h->last_error : "";
}

static void res_reset(imt_hash_result *res)
{
    memset(res, 0, sizeof *res);
    res->status = IMT_OK;
}

/* Status and detail into res and the handle. */
static imt_err finish(imt_hasher *h, imt_hash_result *res, imt_err st)
{
    res->status = st;
    if (st == IMT_OK && !res->partial) res->detail[0] = '\0';
    else if (!res->detail[0])
        imt__set_detail(res->detail, sizeof res->detail, "%s", imt_strerror(st));
    memcpy(h->last_error, res->detail, sizeof h->last_error);
    h->last_error[sizeof h->last_error - 1] = '\0';
    return st;
}

/* The embedded pictures a JPEG's first chunk points to: set up their
 * collection (the bytes of the first chunk itself are taken here, the rest
 * as the stream passes). */
static void emb_begin(imt_hasher *h, const uint8_t *first, size_t first_len,
                      imt_hash_result *res)
{
    imt_embedded_ref found[2 * IMT_MAX_SUBITEMS];
    size_t n = imt__jpeg_embedded(first, first_len, found, 2 * IMT_MAX_SUBITEMS);
    if (n > IMT_MAX_SUBITEMS) {
        res->sub_omitted = n - IMT_MAX_SUBITEMS;
        n = IMT_MAX_SUBITEMS;
    }
    for (size_t i = 0; i < n; i++) {
        imt_subitem *u = &h->sub[i];
        memset(u, 0, sizeof *u);
        h->emb[i] = found[i];
        h->emb_got[i] = 0;
        h->emb_want[i] = 0;
        u->kind = found[i].kind;
        u->index = found[i].index;
        u->offset = found[i].offset;
        u->size = found[i].size;
        u->distance = -1;
        if (found[i].size > SUB_MAX_BYTES) {
            u->status = IMT_E_TOO_LARGE;
            imt__set_detail(u->detail, sizeof u->detail,
                            "embedded picture of %llu bytes, over the %zu collected",
                            (unsigned long long)found[i].size, SUB_MAX_BYTES);
            continue;
        }
        if (h->emb_cap[i] < found[i].size) {
            uint8_t *b = imt__realloc(h->emb_buf[i], (size_t)found[i].size);
            if (!b) {
                u->status = IMT_E_NOMEM;
                imt__set_detail(u->detail, sizeof u->detail, "out of memory");
                continue;
            }
            h->emb_buf[i] = b;
            h->emb_cap[i] = (size_t)found[i].size;
        }
        h->emb_want[i] = 1;
    }
    h->n_emb = n;
    collect(h, 0, first, first_len);
}

typedef struct memrd {
    const uint8_t *p;
    size_t n, pos;
} memrd;

static imt_err memrd_pull(void *ctx, const uint8_t **d, size_t *l)
{
    memrd *m = ctx;
    size_t k = m->n - m->pos;
    if (k > CHUNK) k = CHUNK;
    *d = m->p + m->pos;
    *l = k;
    m->pos += k;
    return IMT_OK;
}

/* A decoded sub-item: its hash (all 8 variants), status, and distance
 * from the file's own hash. */
static void sub_finish(imt_hasher *h, imt_subitem *u, imt_err e, const imt_luma *luma,
                       char *detail, imt_hash_result *res)
{
    int compare = u->kind != IMT_SUB_TIFF_PAGE; /* a page is another picture */
    u->width = luma->width;
    u->height = luma->height;
    if (e == IMT_OK) {
        e = imt__pdq_hash_luma(h->pdq, luma->pix, luma->rows, luma->cols, 1, u->pdq,
                               &u->quality);
        if (e == IMT_E_TOO_SMALL) imt__set_detail(detail, 256, "below PDQ's 5x5 minimum");
    }
    u->status = e;
    if (e != IMT_OK) {
        imt__set_detail(u->detail, sizeof u->detail, "%s", detail[0] ? detail : imt_strerror(e));
        return;
    }
    u->has_pdq = 1;
    if (luma->partial) imt__set_detail(u->detail, sizeof u->detail, "%s", detail);
    if (res->has_pdq && compare) {
        int best = 256;
        for (int d = 0; d < IMT_DIH__COUNT; d++) {
            int x = imt_pdq_distance(&u->pdq[d], &res->pdq[0]);
            if (x < best) best = x;
        }
        u->distance = best;
        u->differs = best > IMT_PDQ_MATCH_DISTANCE;
        if (u->differs) res->thumbnail_differs = 1;
    }
}

/* Decode and hash a sub-item's picture from its bytes. */
static void decode_sub(imt_hasher *h, imt_subitem *u, const uint8_t *b, size_t n,
                       const imt_decode_limits *lim, imt_hash_result *res)
{
    u->format = imt_sniff(b, n);
    if (!imt_format_decodable(u->format)) {
        u->status = u->format == IMT_FMT_UNKNOWN ? IMT_E_NOT_IMAGE : IMT_E_UNSUPPORTED;
        imt__set_detail(u->detail, sizeof u->detail, "%s",
                        u->format == IMT_FMT_UNKNOWN ? "no known image signature"
                                                     : "format not decoded");
        return;
    }
    memrd m = {b, n, 0};
    imt_reader rd = {memrd_pull, &m};
    imt_luma luma;
    char detail[256] = "";
    imt_err e = imt__decode_luma(h->dec, u->format, &rd, h->opts.mode, lim, &luma, detail,
                                 sizeof detail);
    sub_finish(h, u, e, &luma, detail, res);
}

/* ---- thumbnail caches ----------------------------------------------------
 * Every cached picture is a sub-item (kind, entry id, where its bytes are),
 * hashed like an embedded picture; the list grows up to
 * IMT_MAX_CACHE_ENTRIES (kept by the hasher for its next file). The file's
 * own status is not-an-image: it is a container, its detail says what
 * it held. */

/* The next cache sub-item, or NULL (counted as omitted) at the bound, out of
 * memory or past the time budget. */
static imt_subitem *csub_next(imt_hasher *h)
{
    imt_hash_result *res = h->cres;
    if (h->clim->deadline_ms && imt__now_ms() > h->clim->deadline_ms) {
        h->ctimeout++;
        res->sub_omitted++;
        return NULL;
    }
    if (h->n_csub == IMT_MAX_CACHE_ENTRIES) {
        res->sub_omitted++;
        return NULL;
    }
    if (h->n_csub == h->csub_cap) {
        size_t cap = h->csub_cap ? 2 * h->csub_cap : 64;
        if (cap > IMT_MAX_CACHE_ENTRIES) cap = IMT_MAX_CACHE_ENTRIES;
        imt_subitem *c = imt__realloc(h->csub, cap * sizeof *c);
        if (!c) {
            res->sub_omitted++;
            return NULL;
        }
        h->csub = c;
        h->csub_cap = cap;
    }
    imt_subitem *u = &h->csub[h->n_csub++];
    memset(u, 0, sizeof *u);
    u->distance = -1;
    return u;
}

/* A cache entry's picture: hashed now (its bytes are the parser's until it
 * returns). */
static void cache_entry(imt_hasher *h, imt_subitem_kind kind, uint32_t index, uint64_t id,
                        uint64_t offset, uint64_t size, imt_err st, const uint8_t *data)
{
    imt_subitem *u = csub_next(h);
    if (!u) return;
    u->kind = kind;
    u->index = index;
    u->entry_id = id;
    u->offset = offset;
    u->size = size;
    if (st != IMT_OK || !data) {
        u->status = st != IMT_OK ? st : IMT_E_INTERNAL;
        if (st == IMT_E_TOO_LARGE)
            imt__set_detail(u->detail, sizeof u->detail,
                            "cache entry of %llu bytes, over the %zu collected",
                            (unsigned long long)size, SUB_MAX_BYTES);
        else if (st == IMT_E_TRUNCATED)
            imt__set_detail(u->detail, sizeof u->detail,
                            "the file ends inside this entry's %llu bytes",
                            (unsigned long long)size);
        else if (st == IMT_E_NOT_FOUND)
            imt__set_detail(u->detail, sizeof u->detail, "no stream for this catalog record");
        else if (st == IMT_E_NOT_IMAGE)
            imt__set_detail(u->detail, sizeof u->detail, "no JPEG in this thumbnail stream");
        else if (st == IMT_E_CORRUPT)
            imt__set_detail(u->detail, sizeof u->detail, "its OLE2 sector chain is broken");
        else
            imt__set_detail(u->detail, sizeof u->detail, "%s", imt_strerror(u->status));
        return;
    }
    decode_sub(h, u, data, (size_t)size, h->clim, h->cres);
}

static void thumbsdb_entry(void *ctx, const imt_tdb_entry *e, const uint8_t *data)
{
    cache_entry(ctx, IMT_SUB_THUMBSDB_ENTRY, e->index, e->id, 0, e->size, e->status, data);
}

static void tc_entry(void *ctx, const imt_tc_entry *e, const uint8_t *data)
{
    cache_entry(ctx, IMT_SUB_THUMBCACHE_ENTRY, e->index, e->hash, e->offset, e->size, e->status,
                data);
}

static void cache_feed(imt_hasher *h, const uint8_t *d, size_t n)
{
    if (h->tc_on) imt__tc_feed(h->tc, d, n);
    if (h->ole_on && !h->ole_over) {
        if (n > OLE_MAX_BYTES - h->ole_len) {
            h->ole_over = 1;
            return;
        }
        if (h->ole_len + n > h->ole_cap) {
            size_t cap = h->ole_cap ? h->ole_cap : CHUNK;
            while (cap < h->ole_len + n) cap *= 2;
            if (cap > OLE_MAX_BYTES) cap = OLE_MAX_BYTES;
            uint8_t *b = imt__realloc(h->ole, cap);
            if (!b) {
                h->ole_over = 1;
                return;
            }
            h->ole = b;
            h->ole_cap = cap;
        }
        memcpy(h->ole + h->ole_len, d, n);
        h->ole_len += n;
    }
}

/* A cache file's first chunk: start reading its entries. */
static imt_err cache_begin(imt_hasher *h, const uint8_t *first, size_t first_len,
                           imt_hash_result *res, const imt_decode_limits *lim)
{
    h->cres = res;
    h->clim = lim;
    h->ctimeout = 0;
    h->n_csub = 0;
    if (res->format == IMT_FMT_THUMBCACHE) {
        if (!h->tc && imt__tc_create(&h->tc) != IMT_OK) return IMT_E_NOMEM;
        imt__tc_begin(h->tc, SUB_MAX_BYTES, tc_entry, h);
        h->tc_on = 1;
    } else {
        h->ole_len = 0;
        h->ole_over = 0;
        h->ole_on = 1;
    }
    cache_feed(h, first, first_len);
    return IMT_OK;
}

/* The whole cache file has passed: finish its list and say what it held. */
static void cache_end(imt_hasher *h, imt_hash_result *res)
{
    char what[128];
    if (h->tc_on) {
        imt__tc_end(h->tc);
        h->tc_on = 0;
        imt__set_detail(what, sizeof what, "Windows thumbnail cache (thumbcache, format version %u)",
                        (unsigned)imt__tc_version(h->tc));
    } else {
        h->ole_on = 0;
        if (h->ole_over) {
            imt__free(h->ole);
            h->ole = NULL;
            h->ole_cap = 0;
            imt__set_detail(res->detail, sizeof res->detail,
                            "OLE2 compound file over %zu bytes: a Thumbs.db's pictures are not "
                            "read from it", OLE_MAX_BYTES);
            return;
        }
        char why[128] = "";
        int thumbs = imt__thumbsdb_read(h->ole, h->ole_len, SUB_MAX_BYTES, thumbsdb_entry, h,
                                        why, sizeof why);
        /* every OLE2 file (Office documents, installers) is gathered: do not
         * keep a large one's buffer for the next file */
        if (h->ole_cap > ((size_t)8 << 20)) {
            imt__free(h->ole);
            h->ole = NULL;
            h->ole_cap = 0;
        }
        if (!thumbs) {
            imt__set_detail(res->detail, sizeof res->detail,
                            "OLE2 compound file without a Thumbs.db catalog%s%s",
                            why[0] ? ": " : "", why);
            return;
        }
        imt__set_detail(what, sizeof what, "Windows Thumbs.db%s%s", why[0] ? " (" : "",
                        why[0] ? why : "");
        if (why[0]) imt__set_detail(what + strlen(what), sizeof what - strlen(what), ")");
    }
    res->sub = h->n_csub ? h->csub : NULL;
    res->n_sub = h->n_csub;
    imt__set_detail(res->detail, sizeof res->detail,
                    "%s: %zu pictures, hashed as sub-items%s", what, h->n_csub + h->ctimeout,
                    h->ctimeout ? "; the time budget ran out before the last of them" : "");
    if (h->ctimeout)
        imt__set_detail(res->detail + strlen(res->detail), sizeof res->detail - strlen(res->detail),
                        " (%zu not hashed)", h->ctimeout);
}

/* TIFF: every page after the first, from the file the decoder just read,
 * in the long list (as a cache's entries). */
static int tiff_page(void *ctx, int page, int pages, imt_err e, const imt_luma *luma,
                     char *detail)
{
    imt_hasher *h = ctx;
    imt_subitem *u = csub_next(h);
    if (!u) { /* the bound or the time budget: the rest are omitted */
        h->cres->sub_omitted += (size_t)(pages - page - 1);
        return 0;
    }
    u->kind = IMT_SUB_TIFF_PAGE;
    u->index = (uint32_t)page;
    u->format = IMT_FMT_TIFF;
    sub_finish(h, u, e, luma, detail, h->cres);
    return 1;
}

static void tiff_pages(imt_hasher *h, imt_hash_result *res, const imt_decode_limits *lim)
{
    h->cres = res;
    h->clim = lim;
    h->ctimeout = 0;
    h->n_csub = 0;
    imt__decode_pages(h->dec, res->format, lim, tiff_page, h);
    res->sub = h->n_csub ? h->csub : NULL;
    res->n_sub = h->n_csub;
}

/* HEIF/AVIF: the primary image's thumbnail items, from the file the
 * decoder just read. */
static void heif_thumbs(imt_hasher *h, imt_hash_result *res, const imt_decode_limits *lim)
{
    int n = imt__decode_thumbnail_count(h->dec, res->format);
    if (n <= 0) return;
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        if (k == IMT_MAX_SUBITEMS) {
            res->sub_omitted++;
            continue;
        }
        imt_subitem *u = &h->sub[k++];
        memset(u, 0, sizeof *u);
        u->kind = IMT_SUB_HEIF_THUMBNAIL;
        u->index = (uint32_t)i;
        u->format = res->format;
        u->distance = -1;
        imt_luma luma;
        char detail[256] = "";
        imt_err e = imt__decode_thumbnail(h->dec, res->format, i, lim, &luma, detail,
                                          sizeof detail);
        sub_finish(h, u, e, &luma, detail, res);
    }
    res->sub = h->sub;
    res->n_sub = k;
}

/* Decode and hash every collected picture; compare it with the file's own
 * hash (all 8 of its variants against the file's original). */
static void emb_hash(imt_hasher *h, imt_hash_result *res, const imt_decode_limits *lim)
{
    for (size_t i = 0; i < h->n_emb; i++) {
        imt_subitem *u = &h->sub[i];
        if (!h->emb_want[i]) continue;
        if (h->emb_got[i] < h->emb[i].size) {
            u->status = IMT_E_TRUNCATED;
            imt__set_detail(u->detail, sizeof u->detail,
                            "the file ends %llu bytes into this %llu-byte picture",
                            (unsigned long long)h->emb_got[i], (unsigned long long)u->size);
            continue;
        }
        decode_sub(h, u, h->emb_buf[i], (size_t)u->size, lim, res);
    }
    if (h->n_emb) {
        res->sub = h->sub;
        res->n_sub = h->n_emb;
    }
}

/* ---- video: random access to the item, one frame per seconds_per_hash */

static imt_err fd_pread(void *ctx, uint64_t off, void *buf, size_t cap, size_t *got)
{
    const source *s = ctx;
    *got = 0;
    if (s->limit && off >= s->limit) return IMT_OK;
    if (s->limit && cap > s->limit - off) cap = (size_t)(s->limit - off);
    if (off > (uint64_t)OFF_T_MAX) return IMT_OK;
    ssize_t n;
    if (off > (uint64_t)OFF_T_MAX - s->base) return IMT_OK;
    do n = pread(s->fd, buf, cap, (off_t)(s->base + off));
    while (n < 0 && errno == EINTR);
    if (n < 0) return IMT_E_IO;
    *got = (size_t)n;
    return IMT_OK;
}

static imt_err mem_pread(void *ctx, uint64_t off, void *buf, size_t cap, size_t *got)
{
    const source *s = ctx;
    *got = 0;
    if (off >= s->mem_len) return IMT_OK;
    if (cap > s->mem_len - off) cap = (size_t)(s->mem_len - off);
    memcpy(buf, s->mem + off, cap);
    *got = cap;
    return IMT_OK;
}

static imt_err video_frame(void *ctx, float *luma, int rows, int cols, uint64_t i,
                           double timestamp)
{
    imt_hasher *h = ctx;
    if (i >= h->cap_frames) {
        size_t n = h->cap_frames ? h->cap_frames * 2 : 64;
        if (n > h->opts.max_video_frames) n = h->opts.max_video_frames;
        if (n <= i) return IMT_E_INTERNAL;
        imt_video_frame *f = imt__realloc(h->frames, n * sizeof *f);
        if (!f) return IMT_E_NOMEM;
        h->frames = f;
        h->cap_frames = n;
    }
    imt_video_frame *f = &h->frames[i];
    memset(f, 0, sizeof *f);
    f->timestamp = timestamp;
    imt_pdq pdq[IMT_DIH__COUNT];
    imt_err e = imt__pdq_hash_luma(h->pdq, luma, rows, cols, 0, pdq, &f->quality);
    if (e) return e;
    f->pdq = pdq[0];
    h->n_frames = (size_t)i + 1;
    return IMT_OK;
}

static void video_number(void *ctx, uint64_t i, uint64_t number)
{
    imt_hasher *h = ctx;
    if (i < h->n_frames) h->frames[i].number = number;
}

/* A video: decode through random access to the item (the digest pass
 * reads the bytes again, in order). */
static imt_err video_run(imt_hasher *h, source *s, uint64_t size, const imt_decode_limits *lim,
                         imt_hash_result *res)
{
    const imt_hash_opts *o = &h->opts;
    imt__io io = {NULL, s, size};
    if (s->rio) io = *s->rio;
    else if (s->fd >= 0) io.pread = fd_pread;
    else if (!s->stream) io.pread = mem_pread;
    else {
        imt__set_detail(res->detail, sizeof res->detail,
                        "%s video from a stream without random access is not decoded",
                        imt_format_name(res->format));
        return IMT_E_UNSUPPORTED;
    }
    if (s->fd >= 0 && !s->limit) {
        /* not a regular file of known size: the decoder needs one */
        imt__set_detail(res->detail, sizeof res->detail, "a video must be a regular file");
        return IMT_E_UNSUPPORTED;
    }
    if (s->fd >= 0) io.size = s->limit;
    imt__video_opts vo = {
        .seconds_per_hash = o->seconds_per_hash,
        .max_pixels = o->max_pixels && o->max_pixels < VIDEO_MAX_PIXELS ? o->max_pixels
                                                                        : VIDEO_MAX_PIXELS,
        .max_dimension = o->max_dimension,
        .max_frames = o->max_video_frames,
        .deadline_ms = lim->deadline_ms,
        .stop = o->stop,
        .threads = h->video_threads > o->video_threads ? h->video_threads : o->video_threads,
    };
    imt__video_info info;
    h->n_frames = 0;
    imt_err e = imt__video_decode(&io, &vo, video_frame, h, &info, video_number, res->detail,
                                  sizeof res->detail);
    res->width = info.width;
    res->height = info.height;
    res->duration = info.duration;
    if (e == IMT_E_TOO_SMALL)
        imt__set_detail(res->detail, sizeof res->detail,
                        "video frames of %ux%u pixels are below PDQ's 5x5 minimum",
                        (unsigned)info.width, (unsigned)info.height);
    if (e != IMT_OK) {
        h->n_frames = 0;
        return e;
    }
    res->frames = h->frames;
    res->n_frames = h->n_frames;
    if (info.frames_capped) {
        res->partial = 1;
        imt__set_detail(res->detail, sizeof res->detail,
                        "%s video: only the first %zu sampled frames were hashed",
                        info.codec, h->n_frames);
    } else if (info.partial) {
        res->partial = 1; /* detail: the decoder's complaint */
    } else {
        res->detail[0] = '\0';
    }
    return IMT_OK;
}

static imt_err run(imt_hasher *h, source *s, uint64_t size_hint, imt_hash_result *res)
{
    const imt_hash_opts *o = &h->opts;
    imt_err st = IMT_OK, e;
    imt__digest_begin(h->dig, o->digests);
    h->n_emb = 0;
    h->tc_on = h->ole_on = 0;
    h->n_csub = 0;
    imt_decode_limits lim = {o->max_pixels, o->max_dimension, 0};
    if (o->time_budget_ms) lim.deadline_ms = imt__now_ms() + o->time_budget_ms;

    /* First chunk: enough to sniff. A short read of a regular file is fine:
     * the sniffer needs IMT_SNIFF_BYTES and a chunk is far more. */
    const uint8_t *first;
    size_t first_len;
    e = src_fetch(s, &first, &first_len);
    if (e) goto read_failed;
    if (first_len == 0) st = IMT_E_EMPTY;
    else res->format = imt_sniff(first, first_len);

    if (o->pdq && st == IMT_OK) {
        if (imt_format_is_video(res->format)) {
            st = video_run(h, s, size_hint, &lim, res);
            if (s->err) {
                e = s->err;
                goto read_failed;
            }
        } else if (res->format == IMT_FMT_UNKNOWN) {
            st = IMT_E_NOT_IMAGE;
            imt__set_detail(res->detail, sizeof res->detail, "no known image signature");
        } else if (imt_format_is_container(res->format)) {
            st = IMT_E_NOT_IMAGE; /* a scan expands it (engine/container) */
            imt__set_detail(res->detail, sizeof res->detail, "a %s container, not an image",
                            imt_format_name(res->format));
        } else if ((res->format == IMT_FMT_THUMBCACHE || res->format == IMT_FMT_OLE2) &&
                   !(o->max_file_bytes && size_hint > o->max_file_bytes)) {
            /* a container: its pictures are sub-items (cache_end says) */
            st = IMT_E_NOT_IMAGE;
            imt__set_detail(res->detail, sizeof res->detail, "%s file (its pictures are not "
                            "read: embedded pictures are off)", imt_format_name(res->format));
            if (o->embedded && cache_begin(h, first, first_len, res, &lim) != IMT_OK)
                imt__set_detail(res->detail, sizeof res->detail,
                                "out of memory reading a thumbnail cache");
        } else if (!imt_format_decodable(res->format)) {
            st = IMT_E_UNSUPPORTED;
            imt__set_detail(res->detail, sizeof res->detail,
                            "%s images are recognised but not decoded",
                            imt_format_name(res->format));
        } else if (o->max_file_bytes && size_hint > o->max_file_bytes) {
            st = IMT_E_TOO_LARGE;
            imt__set_detail(res->detail, sizeof res->detail,
                            "file of %llu bytes is over the limit of %llu bytes",
                            (unsigned long long)size_hint,
                            (unsigned long long)o->max_file_bytes);
        } else {
            if (o->embedded && res->format == IMT_FMT_JPEG) emb_begin(h, first, first_len, res);
            s->first = first;
            s->first_len = first_len;
            imt_reader rd = {src_pull, s};
            imt_luma luma;
            st = imt__decode_luma(h->dec, res->format, &rd, o->mode, &lim, &luma,
                                  res->detail, sizeof res->detail);
            res->width = luma.width;
            res->height = luma.height;
            if (s->err) {
                e = s->err;
                goto read_failed;
            }
            if (st == IMT_OK) {
                st = imt__pdq_hash_luma(h->pdq, luma.pix, luma.rows, luma.cols,
                                        o->dihedral, res->pdq, &res->quality);
                if (st == IMT_OK) {
                    res->has_pdq = 1;
                    res->partial = luma.partial;
                    res->n_pdq = o->dihedral ? IMT_DIH__COUNT : 1;
                } else if (st == IMT_E_TOO_SMALL) {
                    imt__set_detail(res->detail, sizeof res->detail,
                                    "image of %ux%u pixels is below PDQ's 5x5 minimum",
                                    (unsigned)luma.width, (unsigned)luma.height);
                }
            }
        }
    }

    /* Digest whatever the decoder left unread. */
    if (o->digests) {
        const uint8_t *d;
        size_t n;
        s->first = NULL;
        do {
            e = src_fetch(s, &d, &n);
            if (e) goto read_failed;
        } while (n);
        if (imt__digest_end(h->dig, res->md5, res->sha1, res->sha256) == IMT_OK)
            res->digests = o->digests;
    } else if (h->n_emb || h->tc_on || h->ole_on) {
        /* Embedded pictures past what the decoder read (MPF images follow
         * the main one): read on until they are complete; a cache to its
         * end. */
        const uint8_t *d;
        size_t n;
        s->first = NULL;
        while ((emb_pending(h) || h->tc_on || h->ole_on) && !s->eof) {
            e = src_fetch(s, &d, &n);
            if (e) goto read_failed;
        }
    }
    if (h->tc_on || h->ole_on) cache_end(h, res);
    if (h->n_emb) emb_hash(h, res, &lim);
    if (o->embedded && o->pdq && (res->format == IMT_FMT_HEIF || res->format == IMT_FMT_AVIF) &&
        res->width)
        heif_thumbs(h, res, &lim);
    if (o->embedded && o->pdq && res->format == IMT_FMT_TIFF) tiff_pages(h, res, &lim);
    goto done;

read_failed:
    st = e;
    res->has_pdq = 0;
    res->frames = NULL;
    res->n_frames = 0;
    res->n_pdq = 0;
    h->n_emb = 0;
    h->tc_on = h->ole_on = 0;
    res->sub = NULL;
    res->n_sub = 0;
    res->sub_omitted = 0;
    if (e == IMT_E_INTERRUPTED)
        imt__set_detail(res->detail, sizeof res->detail, "stopped on request after %llu bytes",
                        (unsigned long long)s->total);
    else if (s->read_errno)
        imt__set_detail(res->detail, sizeof res->detail, "read failed after %llu bytes: %s",
                        (unsigned long long)s->total, strerror(s->read_errno));
    else
        imt__set_detail(res->detail, sizeof res->detail, "read failed after %llu bytes: %s",
                        (unsigned long long)s->total, imt_strerror(e));
    imt__digest_end(h->dig, res->md5, res->sha1, res->sha256); /* discard */
    memset(res->md5, 0, sizeof res->md5);
    memset(res->sha1, 0, sizeof res->sha1);
    memset(res->sha256, 0, sizeof res->sha256);
    res->digests = 0;
done:
    res->file_size = s->total;
    if (!o->digests && s->fd >= 0 && size_hint > s->total) res->file_size = size_hint;
    return finish(h, res, st);
}

imt_err imt_hash_fd(imt_hasher *h, int fd, imt_hash_result *res)
{
    if (!res) return IMT_E_INVALID;
    res_reset(res);
    if (!h || fd < 0) return res->status = IMT_E_INVALID;
    struct stat st;
    uint64_t size = 0;
    if (fstat(fd, &st) != 0) memset(&st, 0, sizeof st); /* not regular: no limit */
    if (S_ISREG(st.st_mode)) size = (uint64_t)st.st_size;
    source s = {.h = h, .fd = fd, .dn_base = -1};
    off_t at = S_ISREG(st.st_mode) ? lseek(fd, 0, SEEK_CUR) : -1;
    s.dn_base = at;
    if (size && at >= 0 && (uint64_t)at < size) {
        s.limit = size - (uint64_t)at;
        s.base = (uint64_t)at;
    }
    /* Fewer blocks than bytes: holes (or compression) -- skip reading holes.
     * pread from the current offset, which is left after the bytes read. */
    if (size && S_ISREG(st.st_mode) && (uint64_t)st.st_blocks * 512u < size) {
        if (at >= 0) {
            s.sparse = 1;
            s.pos = at;
            s.size = st.st_size;
        }
    }
    imt_err r = run(h, &s, size, res);
    drop_behind(&s, 1);
    if (s.sparse) (void)lseek(fd, s.pos, SEEK_SET);
    /* Did it change while read? Growth past the size at open is not read
     * (the digests cover the size reported); any change is flagged. */
    struct stat after;
    if (S_ISREG(st.st_mode) && r != IMT_E_INTERRUPTED && fstat(fd, &after) == 0 &&
        (after.st_size != st.st_size || after.st_mtim.tv_sec != st.st_mtim.tv_sec ||
         after.st_mtim.tv_nsec != st.st_mtim.tv_nsec || after.st_ctim.tv_sec != st.st_ctim.tv_sec ||
         after.st_ctim.tv_nsec != st.st_ctim.tv_nsec)) {
        res->changed = 1;
        size_t used = strlen(res->detail);
        imt__set_detail(res->detail + used, sizeof res->detail - used,
                        "%sthe file changed while it was read (%lld bytes when opened, %lld "
                        "after): digests cover the first %llu bytes", used ? "; " : "",
                        (long long)st.st_size, (long long)after.st_size,
                        (unsigned long long)res->file_size);
    }
    return r;
}

imt_err imt_hash_memory(imt_hasher *h, const void *data, size_t len, imt_hash_result *res)
{
    if (!res) return IMT_E_INVALID;
    res_reset(res);
    if (!h || (!data && len)) return res->status = IMT_E_INVALID;
    source s = {.h = h, .fd = -1, .mem = data, .mem_len = len};
    return run(h, &s, len, res);
}

imt_err imt_hash_stream(imt_hasher *h, const imt_stream *st, imt_hash_result *res)
{
    return imt__hash_stream_io(h, st, NULL, res);
}

imt_err imt__hash_stream_io(imt_hasher *h, const imt_stream *st, const imt__io *rio,
                            imt_hash_result *res)
{
    if (!res) return IMT_E_INVALID;
    res_reset(res);
    if (!h || !st || !st->read) return res->status = IMT_E_INVALID;
    source s = {.h = h, .fd = -1, .stream = st, .rio = rio, .limit = st->size};
    imt_err r = run(h, &s, st->size, res);
    if (r != IMT_E_INTERRUPTED && st->size && res->file_size < st->size && res->digests) {
        /* fewer bytes than announced: the digests cover what there was */
        size_t used = strlen(res->detail);
        imt__set_detail(res->detail + used, sizeof res->detail - used,
                        "%sthe stream ended after %llu of %llu bytes: digests cover those",
                        used ? "; " : "", (unsigned long long)res->file_size,
                        (unsigned long long)st->size);
        res->partial = 1;
    }
    return r;
}

imt_err imt_hash_file(imt_hasher *h, const char *path, imt_hash_result *res)
{
    if (!res) return IMT_E_INVALID;
    res_reset(res);
    if (!h || !path) return res->status = IMT_E_INVALID;
    int fd = imt__open_evidence(AT_FDCWD, path, O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        imt__set_detail(res->detail, sizeof res->detail, "cannot open: %s", strerror(e));
        return finish(h, res, e == ENOENT || e == ENOTDIR ? IMT_E_NOT_FOUND : IMT_E_IO);
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) {
        close(fd);
        imt__set_detail(res->detail, sizeof res->detail, "not a regular file");
        return finish(h, res, IMT_E_IO);
    }
    /* O_NONBLOCK only guarded the open against FIFOs; regular files ignore it. */
    imt_err r = imt_hash_fd(h, fd, res);
    close(fd);
    return r;
}
