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

#include "decode/decode.h"
#include "hash/hash.h"
#include "imgtriage.h"

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
    if (r->status == IMT_OK) {
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

/* The image targets: JPEG and PNG share the body; fmt only documents which
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
    /* Not compared: the partial flag. libjpeg-turbo decodes Huffman data on a
     * fast path when a whole MCU's worth of bytes is buffered and on a slow
     * path otherwise; only the slow path warns "bad Huffman code" (both
     * decode the same value), so that warning depends on chunk boundaries. */
    if (e == IMT_OK) {
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

/* Format sniffing, and the whole pipeline on bytes of any format: dispatch,
 * the not-an-image and unsupported paths, digests of every byte. */
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
    if (f == IMT_FMT_UNKNOWN) FUZZ_CHECK(e == IMT_E_NOT_IMAGE, "%s", imt_err_name(e));
    else if (!imt_format_decodable(f)) FUZZ_CHECK(e == IMT_E_UNSUPPORTED, "%s", imt_err_name(e));
    return 0;
}

const imt_fuzz_target imt_fuzz_targets[] = {
    {"jpeg", imt_fuzz_jpeg},
    {"png", imt_fuzz_png},
    {"sniff", imt_fuzz_sniff},
    {NULL, NULL},
};
