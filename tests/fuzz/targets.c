/* tests/fuzz/targets.c -- fuzz target bodies for the parsers of untrusted
 * bytes. Besides "does not crash, leak or hang" (the sanitizers' part), each
 * target checks invariants that a wrong-but-quiet parser would break:
 *
 *  - every result is well formed: a known status, a terminated detail, a
 *    reason when the status is not OK, a hash and a quality in 0..100 when it
 *    is, file_size equal to the input length, the sniffed format;
 *  - the digests of the pipeline equal one-shot digests of the input, however
 *    early the decoder stopped reading;
 *  - decoding is independent of how the bytes arrive: the same input pulled
 *    in tiny random chunks through the internal decoder gives the same
 *    status, size and (compat mode) the same hash as one memory block;
 *  - a decoded luma plane has the documented shape and values in [0, 255].
 *
 * Limits are lowered (1 Mpixel) so that a 100-byte file claiming a huge
 * image costs milliseconds, not seconds: the full limits are exercised by
 * tests/test_bombs.c. No time budget, so that every run is deterministic. */
#include "targets.h"

#include "container/container.h"
#include "decode/decode.h"
#include "hash/hash.h"
#include "imgtriage.h"
#include "index/index.h"
#include "source/carve.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_MAX_PIXELS ((uint64_t)1 << 20)
#define FUZZ_MAX_DIM 8192u

/* Report a broken invariant and abort: libFuzzer saves the input. */
#define FUZZ_CHECK(cond, ...)                                                  \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "fuzz invariant failed at %s:%d: %s: ", __FILE__,  \
                    __LINE__, #cond);                                          \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
            abort();                                                           \
        }                                                                      \
    } while (0)

static void fuzz_opts(imt_hash_opts *o, imt_pdq_mode mode, int dihedral, unsigned digests)
{
    imt_hash_opts_init(o);
    o->mode = mode;
    o->dihedral = dihedral;
    o->digests = digests;
    o->max_pixels = FUZZ_MAX_PIXELS;
    o->max_dimension = FUZZ_MAX_DIM;
    o->time_budget_ms = 0;
}

/* One hasher per configuration, reused across inputs as a scan worker reuses
 * its hasher: state leaking from one file into the next is part of what is
 * fuzzed. Freed at exit so that LeakSanitizer sees a clean process. */
static imt_hasher *g_fast, *g_compat;

static void free_hashers(void)
{
    imt_hasher_free(g_fast);
    imt_hasher_free(g_compat);
    g_fast = g_compat = NULL;
}

static imt_hasher *hasher(imt_hasher **slot, imt_pdq_mode mode, int dihedral,
                          unsigned digests)
{
    if (!*slot) {
        static int registered;
        if (!registered) {
            atexit(free_hashers);
            registered = 1;
        }
        imt_hash_opts o;
        fuzz_opts(&o, mode, dihedral, digests);
        imt_err e = imt_hasher_create(slot, &o);
        FUZZ_CHECK(e == IMT_OK, "imt_hasher_create: %s", imt_strerror(e));
    }
    return *slot;
}

static void oneshot(const char *alg, const uint8_t *data, size_t len, uint8_t *out,
                    unsigned want)
{
    unsigned n = 0;
    int ok = EVP_Digest(data, len, out, &n, EVP_get_digestbyname(alg), NULL);
    FUZZ_CHECK(ok == 1 && n == want, "EVP_Digest(%s) failed", alg);
}

/* The invariants every imt_hash_result must satisfy for input data[len]. */
static void check_result(const imt_hash_result *r, imt_err ret, const uint8_t *data,
                         size_t len, unsigned digests)
{
    FUZZ_CHECK(ret == r->status, "return %d but status %d", ret, r->status);
    FUZZ_CHECK((int)r->status >= 0 && r->status < IMT_E__COUNT, "status %d", r->status);
    FUZZ_CHECK(r->status != IMT_E_INTERNAL && r->status != IMT_E_INVALID,
               "status %s: %s", imt_err_name(r->status), r->detail);
    FUZZ_CHECK(memchr(r->detail, 0, sizeof r->detail) != NULL, "detail unterminated");
    FUZZ_CHECK(r->file_size == len, "file_size %llu for %zu bytes",
               (unsigned long long)r->file_size, len);
    FUZZ_CHECK(r->format == imt_sniff(data, len), "format %d", r->format);
    if (r->status == IMT_OK && imt_format_is_video(r->format)) {
        /* a video: its sampled frames in time order, no picture hash */
        FUZZ_CHECK(!r->has_pdq && r->n_frames >= 1 && r->frames, "video OK with %zu frames",
                   r->n_frames);
        for (size_t i = 0; i < r->n_frames; i++) {
            const imt_video_frame *f = &r->frames[i];
            FUZZ_CHECK(f->quality >= 0 && f->quality <= 100, "frame quality %d", f->quality);
            FUZZ_CHECK(f->timestamp >= 0 && (i == 0 || (f->timestamp > r->frames[i - 1].timestamp &&
                                                        f->number >= r->frames[i - 1].number)),
                       "frame %zu at %f (number %llu) out of order", i, f->timestamp,
                       (unsigned long long)f->number);
        }
    } else if (r->status == IMT_OK) {
        FUZZ_CHECK(r->has_pdq && (r->n_pdq == 1 || r->n_pdq == IMT_DIH__COUNT),
                   "OK without a hash (has_pdq %d, n_pdq %d)", r->has_pdq, r->n_pdq);
        FUZZ_CHECK(r->quality >= 0 && r->quality <= 100, "quality %d", r->quality);
        FUZZ_CHECK(r->width > 0 && r->height > 0, "OK with size %ux%u", r->width,
                   r->height);
        FUZZ_CHECK(!r->partial || r->detail[0], "partial without a reason");
    } else {
        FUZZ_CHECK(!r->has_pdq, "hash with status %s", imt_err_name(r->status));
        FUZZ_CHECK(r->detail[0], "status %s without a reason", imt_err_name(r->status));
    }
    if (digests && len) {
        FUZZ_CHECK(r->digests == digests, "digests %u of %u", r->digests, digests);
        uint8_t d[32];
        if (digests & IMT_DIGEST_MD5) {
            oneshot("MD5", data, len, d, 16);
            FUZZ_CHECK(!memcmp(d, r->md5, 16), "MD5 differs from one-shot");
        }
        if (digests & IMT_DIGEST_SHA1) {
            oneshot("SHA1", data, len, d, 20);
            FUZZ_CHECK(!memcmp(d, r->sha1, 20), "SHA-1 differs from one-shot");
        }
        if (digests & IMT_DIGEST_SHA256) {
            oneshot("SHA256", data, len, d, 32);
            FUZZ_CHECK(!memcmp(d, r->sha256, 32), "SHA-256 differs from one-shot");
        }
    }
}

/* A reader that hands out the input in pseudo-random chunks of 1..509
 * bytes, so that decoders meet every marker and chunk split at a chunk
 * boundary. The split depends only on the input, for reproducibility. */
typedef struct chunked {
    const uint8_t *p;
    size_t len, pos;
    uint32_t rng;
} chunked;

static imt_err chunked_pull(void *ctx, const uint8_t **data, size_t *len)
{
    chunked *c = ctx;
    c->rng ^= c->rng << 13;
    c->rng ^= c->rng >> 17;
    c->rng ^= c->rng << 5;
    size_t n = 1 + c->rng % 509;
    if (n > c->len - c->pos) n = c->len - c->pos;
    *data = c->p + c->pos;
    *len = n;
    c->pos += n;
    return IMT_OK;
}

static uint32_t seed_of(const uint8_t *data, size_t len)
{
    uint32_t h = 2166136261u ^ (uint32_t)len; /* FNV-1a */
    for (size_t i = 0; i < len && i < 64; i++) h = (h ^ data[i]) * 16777619u;
    return h ? h : 1;
}

static imt_decoder *g_dec;
static imt_pdq_ctx *g_pdq;

static void free_internal(void)
{
    imt__decoder_free(g_dec);
    imt__pdq_ctx_free(g_pdq);
    g_dec = NULL;
    g_pdq = NULL;
}

/* The image targets: JPEG, PNG, BMP, TIFF, WebP and GIF share the body; fmt only documents which
 * corpus the target is seeded with (the bytes decide the decoder). */
static int image_target(const uint8_t *data, size_t len)
{
    imt_hash_result fast, compat;
    imt_err e;

    /* 1. Public API, fast mode, every digest. */
    e = imt_hash_memory(hasher(&g_fast, IMT_PDQ_FAST, 0, IMT_DIGEST_ALL), data, len, &fast);
    check_result(&fast, e, data, len, IMT_DIGEST_ALL);

    /* 2. Public API, compat mode with the dihedral variants. */
    e = imt_hash_memory(hasher(&g_compat, IMT_PDQ_COMPAT, 1, 0), data, len, &compat);
    check_result(&compat, e, data, len, 0);
    FUZZ_CHECK(fast.width == compat.width && fast.height == compat.height,
               "fast %ux%u, compat %ux%u", fast.width, fast.height, compat.width,
               compat.height);

    /* 3. The internal decoder fed in small chunks, compat mode: must agree
     *    with 2 in everything but the wording of the detail. */
    imt_format fmt = imt_sniff(data, len);
    if (!imt_format_decodable(fmt)) return 0;
    if (!g_dec) {
        static int registered;
        if (!registered) {
            atexit(free_internal);
            registered = 1;
        }
        FUZZ_CHECK(imt__decoder_create(&g_dec) == IMT_OK, "decoder_create");
        FUZZ_CHECK(imt__pdq_ctx_create(&g_pdq) == IMT_OK, "pdq_ctx_create");
    }
    chunked c = {data, len, 0, seed_of(data, len)};
    imt_reader rd = {chunked_pull, &c};
    imt_decode_limits lim = {FUZZ_MAX_PIXELS, FUZZ_MAX_DIM, 0};
    imt_luma luma;
    char detail[256] = "";
    e = imt__decode_luma(g_dec, fmt, &rd, IMT_PDQ_COMPAT, &lim, &luma, detail, sizeof detail);
    FUZZ_CHECK(memchr(detail, 0, sizeof detail) != NULL, "detail unterminated");
    FUZZ_CHECK(luma.width == compat.width && luma.height == compat.height,
               "chunked %ux%u, whole %ux%u", luma.width, luma.height, compat.width,
               compat.height);
    if (e != IMT_OK) {
        FUZZ_CHECK(e == compat.status, "chunked decode %s, whole %s (%s / %s)",
                   imt_err_name(e), imt_err_name(compat.status), detail, compat.detail);
        return 0;
    }
    FUZZ_CHECK(luma.pix && luma.rows > 0 && luma.cols > 0, "empty luma %dx%d",
               luma.rows, luma.cols);
    FUZZ_CHECK(luma.rows == imt__compat_side(luma.height, luma.width, luma.height) &&
                   luma.cols == imt__compat_side(luma.width, luma.width, luma.height),
               "compat plane %dx%d for a %ux%u image", luma.cols, luma.rows,
               luma.width, luma.height);
    for (size_t i = 0; i < (size_t)luma.rows * (size_t)luma.cols; i++)
        FUZZ_CHECK(luma.pix[i] >= 0.0f && luma.pix[i] <= 255.001f, "pixel %zu = %g", i,
                   (double)luma.pix[i]);
    imt_pdq h[IMT_DIH__COUNT];
    int q = -1;
    e = imt__pdq_hash_luma(g_pdq, luma.pix, luma.rows, luma.cols, 1, h, &q);
    FUZZ_CHECK(e == compat.status, "chunked hash %s, whole %s (%s)", imt_err_name(e),
               imt_err_name(compat.status), compat.detail);
    /* Compared only for clean data: libjpeg-turbo decodes Huffman data on a
     * fast path when a whole MCU's worth of bytes is buffered and on a slow
     * path otherwise. On a corrupt code only the slow path warns ("bad
     * Huffman code"), and the two consume different numbers of bits, so
     * what follows a corrupt code -- the partial flag and the pixels --
     * depends on where the chunk boundaries fall. Clean data must not. */
    if (e == IMT_OK && !luma.partial && !compat.partial) {
        FUZZ_CHECK(q == compat.quality, "quality %d vs %d", q, compat.quality);
        FUZZ_CHECK(!memcmp(h, compat.pdq, sizeof h), "hash depends on chunking");
    }
    return 0;
}

int imt_fuzz_jpeg(const uint8_t *data, size_t len)
{
    return image_target(data, len);
}

int imt_fuzz_png(const uint8_t *data, size_t len)
{
    return image_target(data, len);
}

int imt_fuzz_bmp(const uint8_t *data, size_t len)
{
    return image_target(data, len);
}

int imt_fuzz_tiff(const uint8_t *data, size_t len)
{
    return image_target(data, len);
}

int imt_fuzz_webp(const uint8_t *data, size_t len)
{
    return image_target(data, len);
}

/* GIF: fast mode gives the compat plane by design (gif.c), so the two
 * hashes must be equal too. */
int imt_fuzz_gif(const uint8_t *data, size_t len)
{
    image_target(data, len);
    if (imt_sniff(data, len) != IMT_FMT_GIF) return 0;
    imt_hash_result f, c;
    imt_hash_memory(hasher(&g_fast, IMT_PDQ_FAST, 0, IMT_DIGEST_ALL), data, len, &f);
    imt_hash_memory(hasher(&g_compat, IMT_PDQ_COMPAT, 1, 0), data, len, &c);
    FUZZ_CHECK(f.status == c.status, "GIF fast %s, compat %s", imt_err_name(f.status),
               imt_err_name(c.status));
    if (f.status == IMT_OK)
        FUZZ_CHECK(f.quality == c.quality && !memcmp(&f.pdq[0], &c.pdq[0], sizeof f.pdq[0]),
                   "GIF fast and compat hashes differ");
    return 0;
}

/* HEIF/HEIC and AVIF: libheif behind heif.c, and heif.c's own reading of
 * the primary item's grid header (pitm/iinf/iloc/idat) before it. */
int imt_fuzz_heif(const uint8_t *data, size_t len)
{
    return image_target(data, len);
}

/* The embedded-picture finder alone (embedded.c): every EXIF thumbnail it
 * reports lies inside the input and starts with SOI; kinds and counts are
 * sane. Then the pipeline, which collects and hashes them. */
int imt_fuzz_jpeg_embedded(const uint8_t *data, size_t len)
{
    imt_embedded_ref r[8];
    size_t n = imt__jpeg_embedded(data, len, r, 8);
    FUZZ_CHECK(n <= 8, "%zu refs", n);
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECK(r[i].kind == IMT_SUB_EXIF_THUMBNAIL || r[i].kind == IMT_SUB_MPF_IMAGE,
                   "kind %d", (int)r[i].kind);
        FUZZ_CHECK(r[i].size >= 4, "size %llu", (unsigned long long)r[i].size);
        if (r[i].kind == IMT_SUB_EXIF_THUMBNAIL)
            FUZZ_CHECK(r[i].offset + r[i].size <= len && data[r[i].offset] == 0xFF &&
                           data[r[i].offset + 1] == 0xD8,
                       "thumbnail at %llu+%llu of %zu bytes", (unsigned long long)r[i].offset,
                       (unsigned long long)r[i].size, len);
    }
    imt_hash_result res;
    imt_err e = imt_hash_memory(hasher(&g_compat, IMT_PDQ_COMPAT, 1, 0), data, len, &res);
    check_result(&res, e, data, len, 0);
    FUZZ_CHECK(res.n_sub <= IMT_MAX_SUBITEMS, "%zu sub-items", res.n_sub);
    for (size_t i = 0; i < res.n_sub; i++) {
        const imt_subitem *u = &res.sub[i];
        FUZZ_CHECK(u->has_pdq == (u->status == IMT_OK), "sub %zu: has_pdq %d, %s", i,
                   u->has_pdq, imt_err_name(u->status));
        FUZZ_CHECK(memchr(u->detail, 0, sizeof u->detail) != NULL, "detail unterminated");
        FUZZ_CHECK(u->differs == (u->distance > IMT_PDQ_MATCH_DISTANCE), "differs %d at %d",
                   u->differs, u->distance);
        if (u->differs) FUZZ_CHECK(res.thumbnail_differs, "differs not flagged");
    }
    return 0;
}

/* Format sniffing, and the whole pipeline on bytes of any format: dispatch,
 * the not-an-image and unsupported paths, digests of every byte. */
/* ---- containers: the input as a container, every member hashed --------- */
typedef struct fz_mem {
    const uint8_t *p;
    size_t n;
} fz_mem;

static imt_err fz_pread(void *ctx, uint64_t off, void *buf, size_t cap, size_t *got)
{
    const fz_mem *m = ctx;
    *got = 0;
    if (off >= m->n) return IMT_OK;
    size_t k = m->n - (size_t)off < cap ? m->n - (size_t)off : cap;
    memcpy(buf, m->p + off, k);
    *got = k;
    return IMT_OK;
}

typedef struct fz_sink {
    const imt_container_opts *o;
    size_t members, infos, top_infos;
    uint64_t bytes;
} fz_sink;

static imt_err fz_member(void *ctx, const imt__member *m, size_t *id)
{
    fz_sink *k = ctx;
    *id = k->members++;
    FUZZ_CHECK(m->depth >= 1 && m->depth <= k->o->max_depth + 1, "depth %u", (unsigned)m->depth);
    FUZZ_CHECK(!strncmp(m->path, "in!", 3), "path %s", m->path);
    FUZZ_CHECK(k->members <= k->o->max_members, "%zu members", k->members);
    FUZZ_CHECK((m->status == IMT_OK) == (m->stream != NULL), "status %s, stream %p",
               imt_err_name(m->status), (const void *)m->stream);
    if (m->status != IMT_OK) {
        FUZZ_CHECK(m->detail && m->detail[0], "no reason for %s", imt_err_name(m->status));
        return IMT_OK;
    }
    imt_hash_result r;
    imt_err e = imt_hash_stream(hasher(&g_fast, IMT_PDQ_FAST, 0, IMT_DIGEST_MD5), m->stream, &r);
    FUZZ_CHECK(e == r.status && (int)e >= 0 && e < IMT_E__COUNT, "status %d", e);
    FUZZ_CHECK(memchr(r.detail, 0, sizeof r.detail) != NULL, "detail unterminated");
    /* a cut member has no digests; one that is whole has them */
    if (m->cut[0]) FUZZ_CHECK(!r.digests && !r.has_pdq, "cut member with digests: %s", m->cut);
    k->bytes += r.file_size;
    FUZZ_CHECK(k->bytes <= k->o->max_total_bytes, "%llu bytes", (unsigned long long)k->bytes);
    return IMT_OK;
}

static void fz_info(void *ctx, size_t id, const imt_container_info *ci)
{
    fz_sink *k = ctx;
    k->infos++;
    if (id == IMT__CTOP) k->top_infos++;
    else FUZZ_CHECK(id < k->members, "info for member %zu of %zu", id, k->members);
    FUZZ_CHECK(ci->note != NULL && memchr(ci->note, 0, 4096) != NULL, "note");
    FUZZ_CHECK(!(ci->limits & ~((1u << IMT_CLIMIT__COUNT) - 1)), "limits %#x", ci->limits);
}

int imt_fuzz_container(const uint8_t *data, size_t len)
{
    imt_container_opts o;
    imt__container_opts_init(&o);
    o.max_depth = 4;
    o.max_members = 200;
    o.max_total_bytes = 8u << 20;
    o.max_buffer = 4u << 20;
    /* the sniffed container, else ZIP (libarchive bids every format anyway) */
    imt_format fmt = imt_sniff(data, len);
    if (!imt_format_is_container(fmt)) fmt = IMT_FMT_ZIP;
    fz_mem m = {data, len};
    imt__io io = {fz_pread, &m, len};
    fz_sink k;
    memset(&k, 0, sizeof k);
    k.o = &o;
    imt__csink sink = {fz_member, fz_info, &k};
    imt_err e = imt__container_expand(&io, fmt, "in", &o, NULL, &sink);
    FUZZ_CHECK(e == IMT_OK, "expand: %s", imt_err_name(e));
    FUZZ_CHECK(k.top_infos == 1, "%zu infos of the walked file", k.top_infos);
    return 0;
}

int imt_fuzz_sniff(const uint8_t *data, size_t len)
{
    imt_format f = imt_sniff(data, len);
    FUZZ_CHECK((int)f >= 0 && f < IMT_FMT__COUNT, "format %d", f);
    FUZZ_CHECK(imt_format_name(f) != NULL, "no name");
    /* IMT_SNIFF_BYTES leading bytes decide. */
    size_t k = len < IMT_SNIFF_BYTES ? len : IMT_SNIFF_BYTES;
    FUZZ_CHECK(imt_sniff(data, k) == f, "sniff of %zu bytes differs from %zu", k, len);
    for (size_t i = 0; i < k; i++) {
        imt_format g = imt_sniff(data, i);
        FUZZ_CHECK((int)g >= 0 && g < IMT_FMT__COUNT, "format %d", g);
    }
    imt_hash_result r;
    imt_err e = imt_hash_memory(hasher(&g_fast, IMT_PDQ_FAST, 0, IMT_DIGEST_ALL), data,
                                len, &r);
    if (len == 0) {
        FUZZ_CHECK(e == IMT_E_EMPTY, "empty input: %s", imt_err_name(e));
        return 0;
    }
    check_result(&r, e, data, len, IMT_DIGEST_ALL);
    if (f == IMT_FMT_UNKNOWN || imt_format_is_container(f) || f == IMT_FMT_THUMBCACHE ||
        f == IMT_FMT_OLE2) /* containers: their members are; caches: their sub-items */
        FUZZ_CHECK(e == IMT_E_NOT_IMAGE, "%s", imt_err_name(e));
    else if (!imt_format_decodable(f) && !imt_format_is_video(f))
        FUZZ_CHECK(e == IMT_E_UNSUPPORTED, "%s", imt_err_name(e));
    return 0;
}

/* Video (engine/video): libavformat and libavcodec fed from memory through
 * the same imt__io reader a folder file or a disk image gives, with lowered
 * limits (a frame cap, a time budget: a looping or endless stream must end).
 * Invariants: a well-formed result (frames in time order, qualities
 * 0..100), the digests of every byte, and the same bytes hashed twice give
 * the same frames (no state carried from one file to the next). */
static imt_hasher *g_video;

static void free_video(void)
{
    imt_hasher_free(g_video);
    g_video = NULL;
}

int imt_fuzz_video(const uint8_t *data, size_t len)
{
    if (!g_video) {
        imt_hash_opts o;
        fuzz_opts(&o, IMT_PDQ_FAST, 0, IMT_DIGEST_MD5);
        o.max_video_frames = 8;
        o.time_budget_ms = 3000;
        FUZZ_CHECK(imt_hasher_create(&g_video, &o) == IMT_OK, "hasher");
        atexit(free_video);
    }
    imt_hash_result a;
    imt_err e = imt_hash_memory(g_video, data, len, &a);
    if (len == 0) return 0;
    check_result(&a, e, data, len, IMT_DIGEST_MD5);
    if (!imt_format_is_video(a.format) || e == IMT_E_TIMEOUT) return 0;
    size_t n = a.n_frames;
    imt_video_frame *keep = n ? malloc(n * sizeof *keep) : NULL;
    FUZZ_CHECK(!n || keep, "malloc");
    if (n) memcpy(keep, a.frames, n * sizeof *keep);
    imt_hash_result b;
    imt_err e2 = imt_hash_memory(g_video, data, len, &b);
    if (e2 != IMT_E_TIMEOUT) {
        FUZZ_CHECK(e2 == e && b.n_frames == n && (!n || !memcmp(keep, b.frames, n * sizeof *keep)),
                   "hashed twice: %s %zu frames, then %s %zu", imt_err_name(e), n,
                   imt_err_name(e2), b.n_frames);
    }
    free(keep);
    return 0;
}

/* ---- carving ------------------------------------------------------------ */
typedef struct fz_hits {
    imt_carve_hit h[256];
    size_t n;
} fz_hits;

static int fz_on_hit(void *ctx, const imt_carve_hit *h)
{
    fz_hits *hs = ctx;
    if (hs->n < 256) hs->h[hs->n] = *h;
    hs->n++;
    return 0;
}

/* An io handing out at most `most` bytes per read. */
typedef struct fz_shortio {
    const uint8_t *p;
    size_t len, most;
} fz_shortio;

static imt_err fz_short_pread(void *ctx, uint64_t off, void *buf, size_t cap, size_t *got)
{
    fz_shortio *s = ctx;
    *got = 0;
    if (off >= s->len) return IMT_OK;
    size_t n = s->len - (size_t)off;
    if (n > cap) n = cap;
    if (n > s->most) n = s->most;
    memcpy(buf, s->p + off, n);
    *got = n;
    return IMT_OK;
}

/* The carver over the input: hits in offset order, inside the input, not
 * overlapping, well formed (a truncated hit ends at the input's end, the
 * maximum length or a bad structure; a complete one at its end marker),
 * each byte read once, bounded work; the same hits whatever the chunk size
 * and read sizes; the first hits hash as streams of their exact length. */
int imt_fuzz_carve(const uint8_t *data, size_t len)
{
    static fz_hits a, b;
    imt_carve_stats sa, sb;
    imt_carve_opts o;
    imt_carve_opts_init(&o);
    o.max_length = 8192;
    o.chunk_bytes = 4096;
    fz_shortio s1 = {data, len, SIZE_MAX};
    imt__io io1 = {fz_short_pread, &s1, len};
    a.n = 0;
    imt_err e = imt__carve(&io1, &o, fz_on_hit, &a, &sa);
    FUZZ_CHECK(e == IMT_OK, "carve: %s", imt_err_name(e));
    FUZZ_CHECK(sa.bytes_read <= len && sa.bytes_scanned == len && sa.hits == a.n,
               "stats: read %llu scanned %llu of %zu", (unsigned long long)sa.bytes_read,
               (unsigned long long)sa.bytes_scanned, len);
    FUZZ_CHECK(sa.examined <= (uint64_t)(IMT__CARVE_EXAMINE + 64) * sa.candidates + 2 * len,
               "work: %llu examined, %llu candidates, %zu bytes",
               (unsigned long long)sa.examined, (unsigned long long)sa.candidates, len);
    uint64_t prev = 0;
    for (size_t i = 0; i < a.n && i < 256; i++) {
        const imt_carve_hit *h = &a.h[i];
        FUZZ_CHECK(h->length >= 1 && h->offset >= prev && h->offset + h->length <= len,
                   "hit %zu at %llu+%llu", i, (unsigned long long)h->offset,
                   (unsigned long long)h->length);
        prev = h->offset + h->length;
        FUZZ_CHECK(h->truncated == (h->end != IMT_CARVE_COMPLETE), "truncated flag");
        FUZZ_CHECK(h->length <= o.max_length, "longer than the maximum");
        if (h->end == IMT_CARVE_RANGE_END)
            FUZZ_CHECK(h->offset + h->length == len, "range-end hit not at the end");
        if (h->end == IMT_CARVE_MAX_LENGTH)
            FUZZ_CHECK(h->length == o.max_length, "max-length hit of another length");
        const uint8_t *p = data + h->offset;
        int f = h->format;
        FUZZ_CHECK((f == IMT_FMT_JPEG && p[0] == 0xFF) || (f == IMT_FMT_PNG && p[0] == 0x89) ||
                       (f == IMT_FMT_GIF && p[0] == 'G') || (f == IMT_FMT_WEBP && p[0] == 'R') ||
                       (f == IMT_FMT_BMP && p[0] == 'B'),
                   "format %d at a hit starting 0x%02x", f, p[0]);
        if (h->end == IMT_CARVE_COMPLETE && f == IMT_FMT_JPEG)
            FUZZ_CHECK(p[h->length - 2] == 0xFF && p[h->length - 1] == 0xD9, "JPEG without EOI");
        if (h->end == IMT_CARVE_COMPLETE && f == IMT_FMT_GIF)
            FUZZ_CHECK(p[h->length - 1] == 0x3B, "GIF without its trailer");
    }
    /* The same hits with tiny chunks and reads. */
    size_t chunk = len ? IMT__CARVE_MIN_CHUNK + data[0] % 64 : IMT__CARVE_MIN_CHUNK;
    fz_shortio s2 = {data, len, 1 + (len > 1 ? data[1] % 13 : 0)};
    imt__io io2 = {fz_short_pread, &s2, len};
    o.chunk_bytes = chunk;
    b.n = 0;
    e = imt__carve(&io2, &o, fz_on_hit, &b, &sb);
    FUZZ_CHECK(e == IMT_OK && b.n == a.n, "%zu hits with chunk %zu, %zu with the default",
               b.n, chunk, a.n);
    for (size_t i = 0; i < a.n && i < 256; i++)
        FUZZ_CHECK(!memcmp(&a.h[i], &b.h[i], sizeof a.h[i]), "hit %zu differs with chunk %zu", i,
                   chunk);
    FUZZ_CHECK(sb.examined == sa.examined && sb.candidates == sa.candidates,
               "work depends on the chunk size");
    /* The first hits as items of their own. */
    for (size_t i = 0; i < a.n && i < 2; i++) {
        imt__memio mio;
        imt__io io;
        imt__memio_init(&mio, data, len, &io);
        imt__slice sl;
        imt_stream st;
        imt__slice_init(&sl, &io, a.h[i].offset, a.h[i].length);
        imt__carve_stream(&sl, &st);
        imt_hash_result r;
        e = imt_hash_stream(hasher(&g_fast, IMT_PDQ_FAST, 0, IMT_DIGEST_ALL), &st, &r);
        check_result(&r, e, data + a.h[i].offset, (size_t)a.h[i].length, IMT_DIGEST_ALL);
    }
    return 0;
}


/* ---- hash lists and index files --------------------------------------- */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* A scratch directory (tmpfs when there is one: LMDB commits are cheap
 * there), removed at exit. */
static char g_tmp[256];

static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[600];
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) rm_tree(p);
        else unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static imt_index *g_idx;
static int g_idx_imports;

static void free_index(void)
{
    imt_index_close(g_idx);
    g_idx = NULL;
    if (g_tmp[0]) rm_tree(g_tmp);
    g_tmp[0] = '\0';
}

static const char *scratch(void)
{
    if (!g_tmp[0]) {
        struct stat st;
        const char *base = stat("/dev/shm", &st) == 0 && access("/dev/shm", W_OK) == 0
                               ? "/dev/shm" : "/tmp";
        snprintf(g_tmp, sizeof g_tmp, "%s/imt_fuzz_XXXXXX", base);
        FUZZ_CHECK(mkdtemp(g_tmp) != NULL, "mkdtemp %s", g_tmp);
        atexit(free_index);
    }
    return g_tmp;
}

static void write_file(const char *path, const uint8_t *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    FUZZ_CHECK(fd >= 0, "open %s", path);
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        FUZZ_CHECK(w > 0, "write %s", path);
        off += (size_t)w;
    }
    close(fd);
}

/* A writable index, recreated empty every 64 successful imports so that it
 * stays small. */
static imt_index *scratch_index(void)
{
    char dir[400];
    snprintf(dir, sizeof dir, "%s/idx", scratch());
    if (g_idx && g_idx_imports >= 64) {
        imt_index_close(g_idx);
        g_idx = NULL;
        rm_tree(dir);
    }
    if (!g_idx) {
        imt_index_opts o;
        imt_index_opts_init(&o);
        o.read_only = 0;
        o.create = 1;
        o.map_size = (uint64_t)256 << 20;
        imt_err e = imt_index_open(&g_idx, dir, &o);
        FUZZ_CHECK(e == IMT_OK, "index create: %s", imt_index_open_error());
        g_idx_imports = 0;
    }
    return g_idx;
}

/* Import data as a list of the given format. Invariants: a failed import
 * leaves the index exactly as it was (its identity digest is unchanged) and
 * names a reason; a successful one leaves an index that passes
 * imt_index_verify and answers queries. */
static int list_target(const char *format, const uint8_t *data, size_t len)
{
    imt_index *idx = scratch_index();
    char path[400];
    snprintf(path, sizeof path, "%s/list", scratch());
    write_file(path, data, len);

    char id0[65], id1[65];
    FUZZ_CHECK(imt_index_identity(idx, id0) == IMT_OK, "identity");
    imt_import_opts o;
    imt_import_opts_init(&o);
    o.format = format;
    /* per-list options are refused for an export of several lists */
    if (strcmp(format, "jsonl") && strcmp(format, "auto")) {
        o.name = "fuzz";
        o.import_time = 1700000000;
    }
    o.again = 1; /* the same input again merges: keep exercising that path */
    o.skip_bad = (int)(len & 1);          /* both bad-record policies */
    o.compact = len % 3 == 0 ? 1 : -1;    /* and the compaction path */
    imt_import_stats st;
    imt_err e = imt_index_import(idx, path, &o, &st);
    FUZZ_CHECK((int)e >= 0 && e < IMT_E__COUNT, "import returned %d", e);
    FUZZ_CHECK(e != IMT_E_INTERNAL && e != IMT_E_INVALID && e != IMT_E_BUSY,
               "import: %s: %s", imt_err_name(e), imt_index_last_error(idx));
    FUZZ_CHECK(imt_index_identity(idx, id1) == IMT_OK, "identity");
    if (e != IMT_OK) {
        FUZZ_CHECK(imt_index_last_error(idx)[0] != '\0', "import %s without a reason",
                   imt_err_name(e));
        FUZZ_CHECK(!strcmp(id0, id1), "a failed import (%s) changed the index",
                   imt_err_name(e));
        return 0;
    }
    g_idx_imports++;
    FUZZ_CHECK(strcmp(id0, id1) != 0, "an import left the identity unchanged");
    e = imt_index_verify(idx);
    FUZZ_CHECK(e == IMT_OK, "verify after import: %s", imt_index_last_error(idx));
    imt_cursor *c = NULL;
    FUZZ_CHECK(imt_cursor_open(&c, idx) == IMT_OK, "cursor");
    imt_pdq q[IMT_DIH__COUNT];
    memset(q, 0, sizeof q);
    if (len >= 32) memcpy(q[0].bytes, data, 32);
    const imt_match *m;
    size_t n;
    e = imt_query_pdq(c, q, 1, 40, &m, &n);
    FUZZ_CHECK(e == IMT_OK, "query: %s", imt_err_name(e));
    uint8_t dig[32] = {0};
    e = imt_query_digest(c, IMT_KIND_MD5, dig, &m, &n);
    FUZZ_CHECK(e == IMT_OK, "digest query: %s", imt_err_name(e));
    imt_cursor_close(c);
    return 0;
}

/* Category policies (policy.c): the text of --alert/--info/--ignore and of
 * an export's inventory. Over every scheme's default: a policy is refused
 * or resolves to a canonical, complete one that resolves to itself, and
 * every category gets one of the three dispositions. */
int imt_fuzz_policy(const uint8_t *data, size_t len)
{
    char text[1024], out[IDX_POLICY_MAX], again[IDX_POLICY_MAX], msg[160];
    size_t n = len < sizeof text - 1 ? len : sizeof text - 1;
    memcpy(text, data, n);
    text[n] = '\0';
    static const int32_t cats[] = {-1, 0, 1, 2, 3, 4, 7, 8, 99, 100, 65535, INT32_MAX};
    const char *bases[4] = {imt__idx_policy_default("projectvic", 0), imt__idx_policy_default("caid", 0),
                            imt__idx_policy_default("custom", 0), imt__idx_policy_default(NULL, 1)};
    for (int b = 0; b < 4; b++) {
        FUZZ_CHECK(imt__idx_policy_valid(bases[b]), "default %s is not canonical", bases[b]);
        imt_err e = imt__idx_policy_resolve(bases[b], text, out, sizeof out, msg, sizeof msg);
        FUZZ_CHECK(e == IMT_OK || e == IMT_E_INVALID, "resolve: %s", imt_err_name(e));
        if (e != IMT_OK) {
            FUZZ_CHECK(msg[0] != '\0', "refused without a reason");
            continue;
        }
        FUZZ_CHECK(imt__idx_policy_valid(out), "'%s' is not canonical", out);
        e = imt__idx_policy_resolve(out, NULL, again, sizeof again, msg, sizeof msg);
        FUZZ_CHECK(e == IMT_OK && !strcmp(again, out), "'%s' resolves to '%s'", out, again);
        for (size_t i = 0; i < sizeof cats / sizeof cats[0]; i++) {
            imt_disposition d = imt__idx_policy_eval(out, cats[i]);
            FUZZ_CHECK(d == IMT_DISP_ALERT || d == IMT_DISP_INFO || d == IMT_DISP_IGNORE,
                       "disposition %d", (int)d);
        }
    }
    if (imt__idx_policy_valid(text)) {
        imt_err e = imt__idx_policy_resolve(text, NULL, again, sizeof again, msg, sizeof msg);
        FUZZ_CHECK(e == IMT_OK && !strcmp(again, text), "valid '%s' resolves to '%s'", text, again);
    }
    return 0;
}

int imt_fuzz_list_auto(const uint8_t *d, size_t n) { return list_target("auto", d, n); }
int imt_fuzz_list_pdq_csv(const uint8_t *d, size_t n) { return list_target("pdq-csv", d, n); }
int imt_fuzz_list_te(const uint8_t *d, size_t n) { return list_target("te", d, n); }
int imt_fuzz_list_hashdeep(const uint8_t *d, size_t n) { return list_target("hashdeep", d, n); }
int imt_fuzz_list_vics(const uint8_t *d, size_t n) { return list_target("vics", d, n); }
int imt_fuzz_list_jsonl(const uint8_t *d, size_t n) { return list_target("jsonl", d, n); }
int imt_fuzz_list_nsrl(const uint8_t *d, size_t n) { return list_target("nsrl", d, n); }

int imt_fuzz_list_sums(const uint8_t *d, size_t n)
{
    static const char *const f[3] = {"md5sum", "sha1sum", "sha256sum"};
    return list_target(f[n % 3], d, n);
}

int imt_fuzz_list_hex(const uint8_t *d, size_t n)
{
    static const char *const f[5] = {"hex", "pdq-hex", "md5-hex", "sha1-hex", "sha256-hex"};
    return list_target(f[n % 5], d, n);
}

/* A corrupted index: the input is the LMDB data file. Whatever it holds,
 * opening it must return an error or a handle that answers every call. */
int imt_fuzz_index_open(const uint8_t *data, size_t len)
{
    char dir[400], path[500];
    snprintf(dir, sizeof dir, "%s/bad.idx", scratch());
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    write_file(path, data, len);
    snprintf(path, sizeof path, "%s/lock.mdb", dir);
    unlink(path);
    imt_index *idx = NULL;
    imt_err e = imt_index_open(&idx, dir, NULL);
    FUZZ_CHECK((int)e >= 0 && e < IMT_E__COUNT, "open returned %d", e);
    FUZZ_CHECK(e != IMT_E_INTERNAL && e != IMT_E_INVALID, "open: %s: %s", imt_err_name(e),
               imt_index_open_error());
    if (e != IMT_OK) {
        FUZZ_CHECK(idx == NULL, "a failed open returned a handle");
        FUZZ_CHECK(imt_index_open_error()[0] != '\0', "open %s without a reason",
                   imt_err_name(e));
        return 0;
    }
    char id[65];
    imt_index_identity(idx, id);
    size_t nl = imt_index_list_count(idx);
    for (size_t i = 0; i < nl && i < 64; i++) {
        imt_list_info li;
        if (imt_index_list_get(idx, i, &li) == IMT_OK)
            FUZZ_CHECK(li.name && li.version && li.format && li.scheme && li.file_sha256,
                       "list %zu has a NULL string", i);
    }
    imt_index_stats ist;
    imt_index_stats_get(idx, &ist);
    imt_cursor *c = NULL;
    if (imt_cursor_open(&c, idx) == IMT_OK) {
        imt_pdq q[IMT_DIH__COUNT];
        memset(q, 0, sizeof q);
        for (int i = 0; i < IMT_DIH__COUNT; i++) q[i].bytes[i] = (uint8_t)(0x11 * i);
        const imt_match *m;
        size_t n;
        for (int radius = 0; radius <= 256; radius += 64) {
            if (imt_query_pdq(c, q, 8, radius, &m, &n) != IMT_OK) continue;
            for (size_t i = 0; i < n; i++) {
                FUZZ_CHECK(m[i].distance >= 0 && m[i].distance <= radius,
                           "match at distance %d for radius %d", m[i].distance, radius);
                for (size_t k = 0; k < m[i].n_members; k++)
                    FUZZ_CHECK(m[i].members[k].category_label && m[i].members[k].external_id,
                               "membership with a NULL string");
            }
        }
        uint8_t dig[32];
        memset(dig, 0, sizeof dig);
        imt_query_digest(c, IMT_KIND_MD5, dig, &m, &n);
        imt_query_digest(c, IMT_KIND_SHA1, dig, &m, &n);
        imt_query_digest(c, IMT_KIND_SHA256, dig, &m, &n);
        imt_cursor_close(c);
    }
    imt_index_verify(idx);
    imt_index_close(idx);
    return 0;
}

/* The page-graph check alone (engine/index/pagecheck.c), without LMDB:
 * the input is data.mdb. Whatever it holds, the check returns one of its
 * documented codes; a refusal comes with a sentence naming the folder; an
 * accepted file has a meta page whose page size and last page make sense. */
int imt_fuzz_index_pagecheck(const uint8_t *data, size_t len)
{
    char dir[400], path[500];
    snprintf(dir, sizeof dir, "%s/pc.idx", scratch());
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    write_file(path, data, len);
    /* read-only, writable, and the light walk a verified-state record
     * allows (as if a record had been planted for this file) */
    for (int pass = 0; pass < 3; pass++) {
        int write = pass == 1;
        imt__idx_pagecheck_info info;
        char err[512];
        err[0] = '\0';
        imt_err e = pass < 2 ? imt__idx_pagecheck(dir, write, &info, err, sizeof err)
                             : imt__idx_pagecheck_ex(dir, 0, 3, &info, err, sizeof err);
        FUZZ_CHECK(e == IMT_OK || e == IMT_E_INDEX_FORMAT || e == IMT_E_INDEX_CORRUPT ||
                       e == IMT_E_IO || e == IMT_E_NOMEM || e == IMT_E_TOO_LARGE,
                   "pagecheck returned %s", imt_err_name(e));
        if (e != IMT_OK) {
            /* (out of memory may have no sentence: it is not about the file) */
            FUZZ_CHECK(e == IMT_E_NOMEM ||
                           (!strncmp(err, dir, strlen(dir)) && err[strlen(dir)] == ':'),
                       "%s without a sentence naming the folder: '%s'", imt_err_name(e), err);
            continue;
        }
        FUZZ_CHECK(info.file_size == len, "file size %llu for %zu bytes",
                   (unsigned long long)info.file_size, len);
        if (info.empty) {
            FUZZ_CHECK(len == 0, "a %zu-byte file called empty", len);
            continue;
        }
        FUZZ_CHECK(info.psize >= 512 && !(info.psize & (info.psize - 1)) &&
                       info.last_pgno >= 1 && info.last_pgno < len / info.psize,
                   "accepted with page size %u, last page %llu, %zu bytes", info.psize,
                   (unsigned long long)info.last_pgno, len);
    }
    return 0;
}

/* imgtriage report: the input as a JSONL report, converted into every
 * format; never a crash, and re-emitting as JSONL is idempotent (what one
 * conversion wrote converts to itself). */
static int convert_mem(const char *path, imt_report_format f, char **out, size_t *len)
{
    FILE *m = open_memstream(out, len);
    FUZZ_CHECK(m != NULL, "open_memstream");
    imt_report_opts o;
    imt_report_opts_init(&o);
    o.format = f;
    char why[256];
    imt_err e = imt_report_convert(path, m, &o, why, sizeof why);
    fclose(m);
    FUZZ_CHECK(e == IMT_OK || e == IMT_E_PARSE || e == IMT_E_INVALID || e == IMT_E_NOMEM,
               "convert: %s", imt_err_name(e));
    FUZZ_CHECK(e == IMT_OK || why[0], "failed without a reason");
    return e == IMT_OK;
}

int imt_fuzz_report(const uint8_t *data, size_t len)
{
    char p1[] = "/tmp/imt-fuzz-report-XXXXXX", p2[] = "/tmp/imt-fuzz-report-XXXXXX";
    int fd = mkstemp(p1);
    FUZZ_CHECK(fd >= 0, "mkstemp");
    FUZZ_CHECK(write(fd, data, len) == (ssize_t)len, "write");
    close(fd);
    char *out = NULL, *again = NULL;
    size_t n = 0, n2 = 0;
    for (int f = IMT_REPORT_CSV; f <= IMT_REPORT_HTML; f++) {
        convert_mem(p1, (imt_report_format)f, &out, &n);
        free(out);
        out = NULL;
    }
    if (convert_mem(p1, IMT_REPORT_JSONL, &out, &n)) {
        fd = mkstemp(p2);
        FUZZ_CHECK(fd >= 0, "mkstemp");
        FUZZ_CHECK(write(fd, out, n) == (ssize_t)n, "write");
        close(fd);
        FUZZ_CHECK(convert_mem(p2, IMT_REPORT_JSONL, &again, &n2), "its own output refused");
        FUZZ_CHECK(n == n2 && !memcmp(out, again, n), "JSONL re-emission is not idempotent");
        unlink(p2);
    }
    free(out);
    free(again);
    unlink(p1);
    return 0;
}

/* ---- thumbnail caches ------------------------------------------------------
 * thumbcache.c: the entries found in the whole input must be found again
 * when it arrives in random pieces, each entry's bytes equal to the input at
 * its offset; then the pipeline, whose sub-items are those entries. */
typedef struct tc_seen {
    const uint8_t *in;
    size_t len, n;
    uint64_t off[64], size[64], hash[64];
    int st[64];
} tc_seen;

static void tc_record(void *ctx, const imt_tc_entry *e, const uint8_t *d)
{
    tc_seen *s = ctx;
    FUZZ_CHECK(e->index == s->n, "entry index %u, %zu before it", e->index, s->n);
    FUZZ_CHECK((e->status == IMT_OK) == (d != NULL), "status %s with data %p",
               imt_err_name(e->status), (const void *)d);
    FUZZ_CHECK(e->size > 0, "an entry without data reported");
    if (d)
        FUZZ_CHECK(e->offset <= s->len && e->size <= s->len - e->offset &&
                       !memcmp(d, s->in + e->offset, (size_t)e->size),
                   "entry %u: data at %llu+%llu is not the input's", e->index,
                   (unsigned long long)e->offset, (unsigned long long)e->size);
    if (s->n < 64) {
        s->off[s->n] = e->offset;
        s->size[s->n] = e->size;
        s->hash[s->n] = e->hash;
        s->st[s->n] = e->status;
    }
    s->n++;
}

#define FUZZ_TC_MAX ((size_t)1 << 20)

int imt_fuzz_thumbcache(const uint8_t *data, size_t len)
{
    imt_tcache *t = NULL;
    FUZZ_CHECK(imt__tc_create(&t) == IMT_OK, "tc_create");
    tc_seen whole = {data, len, 0, {0}, {0}, {0}, {0}}, parts = whole;
    imt__tc_begin(t, FUZZ_TC_MAX, tc_record, &whole);
    imt__tc_feed(t, data, len);
    imt__tc_end(t);
    imt__tc_begin(t, FUZZ_TC_MAX, tc_record, &parts);
    uint32_t rng = seed_of(data, len);
    for (size_t at = 0; at < len;) {
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        size_t k = 1 + rng % 97;
        if (k > len - at) k = len - at;
        imt__tc_feed(t, data + at, k);
        at += k;
    }
    imt__tc_end(t);
    imt__tc_free(t);
    FUZZ_CHECK(whole.n == parts.n, "%zu entries whole, %zu in pieces", whole.n, parts.n);
    for (size_t i = 0; i < whole.n && i < 64; i++)
        FUZZ_CHECK(whole.off[i] == parts.off[i] && whole.size[i] == parts.size[i] &&
                       whole.hash[i] == parts.hash[i] && whole.st[i] == parts.st[i],
                   "entry %zu differs in pieces", i);
    imt_hash_result r;
    imt_err e = imt_hash_memory(hasher(&g_compat, IMT_PDQ_COMPAT, 1, 0), data, len, &r);
    check_result(&r, e, data, len, 0);
    if (r.format == IMT_FMT_THUMBCACHE) {
        FUZZ_CHECK(r.n_sub + r.sub_omitted == whole.n, "%zu sub-items + %zu omitted, %zu entries",
                   r.n_sub, r.sub_omitted, whole.n);
        for (size_t i = 0; i < r.n_sub; i++) {
            const imt_subitem *u = &r.sub[i];
            FUZZ_CHECK(u->kind == IMT_SUB_THUMBCACHE_ENTRY && u->index == i,
                       "sub %zu: kind %d index %u", i, (int)u->kind, u->index);
            FUZZ_CHECK(u->has_pdq == (u->status == IMT_OK), "sub %zu: has_pdq %d, %s", i,
                       u->has_pdq, imt_err_name(u->status));
            FUZZ_CHECK(u->status == IMT_OK || u->detail[0], "sub %zu: %s without a reason", i,
                       imt_err_name(u->status));
        }
    }
    return 0;
}

/* thumbsdb.c (libolecf underneath): every reported picture lies within the
 * input's size; then the pipeline. */
typedef struct tdb_seen {
    size_t len, n;
} tdb_seen;

static void tdb_record(void *ctx, const imt_tdb_entry *e, const uint8_t *d)
{
    tdb_seen *s = ctx;
    FUZZ_CHECK(e->index == s->n, "record index %u, %zu before it", e->index, s->n);
    FUZZ_CHECK((e->status == IMT_OK) == (d != NULL), "status %s with data %p",
               imt_err_name(e->status), (const void *)d);
    if (d) FUZZ_CHECK(e->size <= s->len, "a %llu-byte picture in %zu bytes",
                      (unsigned long long)e->size, s->len);
    s->n++;
}

int imt_fuzz_thumbsdb(const uint8_t *data, size_t len)
{
    tdb_seen s = {len, 0};
    char why[128];
    int is = imt__thumbsdb_read(data, len, FUZZ_TC_MAX, tdb_record, &s, why, sizeof why);
    FUZZ_CHECK(memchr(why, 0, sizeof why) != NULL, "why unterminated");
    FUZZ_CHECK(is || s.n == 0, "entries without a catalog");
    imt_hash_result r;
    imt_err e = imt_hash_memory(hasher(&g_compat, IMT_PDQ_COMPAT, 1, 0), data, len, &r);
    check_result(&r, e, data, len, 0);
    for (size_t i = 0; i < r.n_sub; i++)
        FUZZ_CHECK((r.format != IMT_FMT_OLE2 || r.sub[i].kind == IMT_SUB_THUMBSDB_ENTRY) &&
                       r.sub[i].has_pdq == (r.sub[i].status == IMT_OK),
                   "sub %zu: kind %d, %s", i, (int)r.sub[i].kind, imt_err_name(r.sub[i].status));
    return 0;
}

/* Disk images (engine/source) through the scan path: the input written to
 * a temporary file (NAME.img, or NAME.E01 for the E01 target) and scanned
 * as a PATH, twice. Invariants: the scan completes (damage is a record, not
 * a failure); every record lies under the image's path and names it as its
 * image; byte runs within the cap; a file read holds no more bytes than
 * its size; the two scans give the same records (path, status, digests). */
typedef struct img_fold {
    const char *path;
    uint64_t h, n;
} img_fold;

static int img_record(void *ctx, const imt_scan_record *r)
{
    img_fold *f = ctx;
    size_t pl = strlen(f->path);
    FUZZ_CHECK(!strncmp(r->path, f->path, pl), "record %s outside the image", r->path);
    if (r->loc) {
        FUZZ_CHECK(!strcmp(r->loc->image, f->path), "loc->image %s", r->loc->image);
        FUZZ_CHECK(r->loc->n_runs <= IMT_MAX_BYTE_RUNS, "%zu runs", r->loc->n_runs);
        FUZZ_CHECK(r->loc->alloc <= IMT_ALLOC_CARVED, "alloc %d", (int)r->loc->alloc);
    }
    if (r->hash && r->have_stat)
        FUZZ_CHECK(r->hash->file_size <= r->size, "read %llu of %llu bytes",
                   (unsigned long long)r->hash->file_size, (unsigned long long)r->size);
    uint64_t h = f->h * 1099511628211ull;
    for (const char *c = r->path; *c; c++) h = (h ^ (uint8_t)*c) * 1099511628211ull;
    h ^= (uint64_t)r->status << 32 | (uint64_t)r->type;
    if (r->hash) for (int i = 0; i < 16; i++) h = (h ^ r->hash->md5[i]) * 1099511628211ull;
    f->h = h;
    f->n++;
    return 0;
}

static int dimg_target(const char *suffix, const uint8_t *data, size_t len)
{
    char dir[] = "/tmp/imt-fuzz-image-XXXXXX", path[64];
    FUZZ_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(path, sizeof path, "%s/x.%s", dir, suffix);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    FUZZ_CHECK(fd >= 0, "open");
    FUZZ_CHECK(write(fd, data, len) == (ssize_t)len, "write");
    close(fd);
    imt_scan_opts o;
    imt_scan_opts_init(&o);
    o.threads = 1;
    o.hash.max_pixels = 1u << 20;
    const char *paths[1] = {path};
    img_fold a = {path, 14695981039346656037ull, 0}, b = a;
    char detail[256];
    imt_err e = imt_scan_run(NULL, paths, 1, &o, img_record, &a, detail, sizeof detail);
    FUZZ_CHECK(e == IMT_OK, "scan: %s (%s)", imt_strerror(e), detail);
    e = imt_scan_run(NULL, paths, 1, &o, img_record, &b, detail, sizeof detail);
    FUZZ_CHECK(e == IMT_OK, "second scan: %s (%s)", imt_strerror(e), detail);
    FUZZ_CHECK(a.n == b.n && a.h == b.h, "two scans differ (%llu vs %llu records)",
               (unsigned long long)a.n, (unsigned long long)b.n);
    unlink(path);
    rmdir(dir);
    return 0;
}

int imt_fuzz_image_fat(const uint8_t *d, size_t n) { return dimg_target("img", d, n); }
int imt_fuzz_image_ext4(const uint8_t *d, size_t n) { return dimg_target("img", d, n); }
int imt_fuzz_image_ntfs(const uint8_t *d, size_t n) { return dimg_target("img", d, n); }
int imt_fuzz_image_e01(const uint8_t *d, size_t n) { return dimg_target("E01", d, n); }

const imt_fuzz_target imt_fuzz_targets[] = {
    {"jpeg", imt_fuzz_jpeg},
    {"png", imt_fuzz_png},
    {"bmp", imt_fuzz_bmp},
    {"tiff", imt_fuzz_tiff},
    {"webp", imt_fuzz_webp},
    {"gif", imt_fuzz_gif},
    {"heif", imt_fuzz_heif},
    {"jpeg_embedded", imt_fuzz_jpeg_embedded},
    {"thumbcache", imt_fuzz_thumbcache},
    {"thumbsdb", imt_fuzz_thumbsdb},
    {"video", imt_fuzz_video},
    {"sniff", imt_fuzz_sniff},
    {"container", imt_fuzz_container},
    {"list_auto", imt_fuzz_list_auto},
    {"list_pdq_csv", imt_fuzz_list_pdq_csv},
    {"list_te", imt_fuzz_list_te},
    {"list_sums", imt_fuzz_list_sums},
    {"list_hashdeep", imt_fuzz_list_hashdeep},
    {"list_hex", imt_fuzz_list_hex},
    {"list_vics", imt_fuzz_list_vics},
    {"list_jsonl", imt_fuzz_list_jsonl},
    {"list_nsrl", imt_fuzz_list_nsrl},
    {"index_open", imt_fuzz_index_open},
    {"index_pagecheck", imt_fuzz_index_pagecheck},
    {"policy", imt_fuzz_policy},
    {"report", imt_fuzz_report},
    {"carve", imt_fuzz_carve},
    {"image_fat", imt_fuzz_image_fat},
    {"image_ext4", imt_fuzz_image_ext4},
    {"image_ntfs", imt_fuzz_image_ntfs},
    {"image_e01", imt_fuzz_image_e01},
    {NULL, NULL},
};

/* Seeds only our code can make: a small valid index's data.mdb, one with
 * its PDQ hashes compacted and one with a delta segment. Called from
 * LLVMFuzzerInitialize when IMT_FUZZ_SEED_DIR is set. */
void imt_fuzz_make_seeds(const char *target, const char *outdir)
{
    if (strcmp(target, "index_open") != 0 && strcmp(target, "index_pagecheck") != 0) return;
    static const char csv[] =
        "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22,100\n"
        "0000000000000000000000000000000000000000000000000000000000000001,80\n"
        "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff,50\n";
    static const char md5[] = "d41d8cd98f00b204e9800998ecf8427e  empty\n"
                              "0cc175b9c0f1b6a831c399e269772661  a\n";
    for (int compact = 0; compact < 2; compact++) {
        char dir[400], path[500], out[600];
        snprintf(dir, sizeof dir, "%s/seed%d.idx", scratch(), compact);
        imt_index_opts o;
        imt_index_opts_init(&o);
        o.read_only = 0;
        o.create = 1;
        o.map_size = (uint64_t)1 << 20;
        imt_index *idx = NULL;
        if (imt_index_open(&idx, dir, &o) != IMT_OK) return;
        imt_import_opts io;
        imt_import_opts_init(&io);
        io.import_time = 1700000000;
        io.compact = compact;
        snprintf(path, sizeof path, "%s/seed.csv", scratch());
        write_file(path, (const uint8_t *)csv, sizeof csv - 1);
        io.format = "pdq-csv";
        imt_index_import(idx, path, &io, NULL);
        snprintf(path, sizeof path, "%s/seed.md5", scratch());
        write_file(path, (const uint8_t *)md5, sizeof md5 - 1);
        io.format = "md5sum";
        imt_index_import(idx, path, &io, NULL);
        imt_index_close(idx);
        snprintf(path, sizeof path, "%s/data.mdb", dir);
        size_t n = 0;
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        static uint8_t buf[1 << 22];
        n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        snprintf(out, sizeof out, "%s/index-%s", outdir, compact ? "compacted" : "delta");
        write_file(out, buf, n);
        rm_tree(dir);
    }
}
