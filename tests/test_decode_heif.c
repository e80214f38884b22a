/* tests/test_decode_heif.c -- the HEIF/HEIC and AVIF decoder (engine/decode/heif.c).
 *
 * Expected hashes come from the reference hasher (pdq-photo-hasher through
 * ImageMagick 6.9.11, tests/data/heif/ref.csv, made by make.sh), not from
 * this decoder:
 *  - compat mode gives every reference hash and quality bit for bit
 *    (8-bit HEIC and AVIF, odd sides, lossless RGB, monochrome, alpha,
 *    a thumbnail item, irot/imir transforms, the 512x512 resize, grids as
 *    iPhones write them: hidden tiles, cropped output, a rotated grid);
 *  - the one named difference: the 10-bit p10.heic, compared with the
 *    reference's hash of `convert p10.heic -depth 8` (ref-depth8.csv), and
 *    checked to differ from the shipped reference's low-byte noise
 *    (ref-10bit-as-shipped.csv), so a change of that choice is seen;
 *  - fast mode within 10 bits of the reference for quality >= 80.
 * heif-enc 1.15 writes no grids or transforms: make.sh adds them by box
 * surgery (grid.py, transform.py), and the reference reads them as shown.
 * Robustness: every truncation of a file gives an error or a hash, never a
 * crash; limits refuse before decoding; a decoder reused after errors and
 * other files gives the same answer (fresh state per file). */
#include "decode/decode.h"
#include "imgtriage.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DATA IMT_SOURCE_DIR "/tests/data/heif/"
#define REGRESS IMT_SOURCE_DIR "/tests/regress/heif/"

typedef struct row {
    char hex[65];
    int quality;
    char file[128];
} row;

static int read_csv(const char *name, row *rows, int max)
{
    char path[512];
    snprintf(path, sizeof path, DATA "%s", name);
    FILE *f = fopen(path, "r");
    REQUIRE(f != NULL);
    int n = 0;
    char line[400];
    while (n < max && fgets(line, sizeof line, f)) {
        row *r = &rows[n];
        if (sscanf(line, "%64[0-9a-f],%d,%127[^\n]", r->hex, &r->quality, r->file) == 3) n++;
    }
    fclose(f);
    return n;
}

static imt_hasher *make_hasher(imt_pdq_mode mode, uint64_t max_pixels, uint32_t max_dim)
{
    imt_hash_opts o;
    imt_hash_opts_init(&o);
    o.mode = mode;
    if (max_pixels) o.max_pixels = max_pixels;
    if (max_dim) o.max_dimension = max_dim;
    imt_hasher *h = NULL;
    REQUIRE(imt_hasher_create(&h, &o) == IMT_OK);
    return h;
}

static void hash_path(imt_hasher *h, const char *file, imt_hash_result *res)
{
    char path[512];
    snprintf(path, sizeof path, DATA "%s", file);
    imt_hash_file(h, path, res);
}

static void check_rows(const row *rows, int n, imt_hasher *compat, imt_hasher *fast)
{
    for (int i = 0; i < n; i++) {
        imt_pdq want;
        REQUIRE(imt_pdq_from_hex(&want, rows[i].hex, 64) == IMT_OK);
        imt_hash_result r;
        hash_path(compat, rows[i].file, &r);
        CHECKF(r.status == IMT_OK, "%s: %s (%s)", rows[i].file, imt_err_name(r.status), r.detail);
        if (r.status != IMT_OK) continue;
        char got[65];
        imt_pdq_to_hex(&r.pdq[0], got);
        CHECKF(strcmp(got, rows[i].hex) == 0 && r.quality == rows[i].quality,
               "%s compat: %s,%d, reference %s,%d", rows[i].file, got, r.quality,
               rows[i].hex, rows[i].quality);
        CHECKF(r.format == IMT_FMT_HEIF || r.format == IMT_FMT_AVIF, "%s: format %s",
               rows[i].file, imt_format_name(r.format));
        hash_path(fast, rows[i].file, &r);
        CHECKF(r.status == IMT_OK, "%s fast: %s", rows[i].file, imt_err_name(r.status));
        if (r.status == IMT_OK && rows[i].quality >= 80) {
            int d = imt_pdq_distance(&r.pdq[0], &want);
            CHECKF(d <= 10, "%s fast: %d bits from the reference", rows[i].file, d);
        }
    }
}

static void test_reference(void)
{
    row rows[64];
    int n = read_csv("ref.csv", rows, 64);
    REQUIRE(n >= 15);
    imt_hasher *compat = make_hasher(IMT_PDQ_COMPAT, 0, 0);
    imt_hasher *fast = make_hasher(IMT_PDQ_FAST, 0, 0);
    check_rows(rows, n, compat, fast);

    /* The 10-bit file: the reference's `-depth 8` hash, not its shipped noise. */
    row d8[2], shipped[2];
    REQUIRE(read_csv("ref-depth8.csv", d8, 2) == 1);
    REQUIRE(read_csv("ref-10bit-as-shipped.csv", shipped, 2) == 1);
    check_rows(d8, 1, compat, fast);
    CHECK(strcmp(d8[0].hex, shipped[0].hex) != 0);

    /* Orientation: the transforms are applied (sizes swap for 90 degrees). */
    imt_hash_result r;
    hash_path(compat, "rot90.heic", &r);
    CHECKF(r.width == 200 && r.height == 320, "rot90: %ux%u", r.width, r.height);
    hash_path(compat, "grid-rot90.heic", &r);
    CHECKF(r.width == 480 && r.height == 640, "grid-rot90: %ux%u", r.width, r.height);
    hash_path(compat, "grid-crop.heic", &r);
    CHECKF(r.width == 601 && r.height == 455, "grid-crop: %ux%u", r.width, r.height);
    hash_path(compat, "orient.heic", &r);
    CHECKF(r.width == 320 && r.height == 200, "orient: %ux%u", r.width, r.height);
    CHECK(r.n_sub == 0 && !r.thumbnail_differs);

    /* Thumbnails ('thmb' items) are sub-items: thumb-differs.heic's is
     * another picture, whose reference hash is that of the same bitstream
     * alone (thumb-alone.heic); thumb.heic's is heif-enc's scaled copy. */
    for (int m = 0; m < 2; m++) {
        imt_hasher *hh = m ? fast : compat;
        hash_path(hh, "thumb-differs.heic", &r);
        REQUIRE(r.status == IMT_OK && r.n_sub == 1);
        const imt_subitem *u = &r.sub[0];
        CHECK(u->kind == IMT_SUB_HEIF_THUMBNAIL && u->index == 0 && u->status == IMT_OK);
        CHECK(u->width == 160 && u->height == 120);
        const row *ta = NULL;
        for (int i = 0; i < n; i++)
            if (!strcmp(rows[i].file, "thumb-alone.heic")) ta = &rows[i];
        REQUIRE(ta != NULL);
        char got[65];
        imt_pdq_to_hex(&u->pdq[0], got);
        CHECKF(!strcmp(got, ta->hex) && u->quality == ta->quality, "thumbnail %s,%d", got,
               u->quality);
        CHECKF(u->differs && r.thumbnail_differs && u->distance > IMT_PDQ_MATCH_DISTANCE,
               "thumb-differs: distance %d", u->distance);
        hash_path(hh, "thumb.heic", &r);
        REQUIRE(r.status == IMT_OK && r.n_sub == 1);
        CHECKF(r.sub[0].status == IMT_OK && !r.sub[0].differs && !r.thumbnail_differs &&
                   r.sub[0].distance >= 0,
               "thumb.heic: distance %d", r.sub[0].distance);
    }
    imt_hasher_free(compat);
    imt_hasher_free(fast);
}

/* ---- internal decoder: truncation, limits, state ------------------------ */
typedef struct memsrc {
    const uint8_t *p;
    size_t n, pos, chunk;
} memsrc;

static imt_err mem_pull(void *ctx, const uint8_t **d, size_t *l)
{
    memsrc *m = ctx;
    size_t k = m->n - m->pos;
    if (k > m->chunk) k = m->chunk;
    *d = m->p + m->pos;
    *l = k;
    m->pos += k;
    return IMT_OK;
}

static imt_err decode(imt_decoder *d, const uint8_t *p, size_t n, const imt_decode_limits *lim,
                      imt_luma *out, char *detail)
{
    memsrc m = {p, n, 0, 4093};
    imt_reader r = {mem_pull, &m};
    detail[0] = '\0';
    return imt__decode_luma(d, imt_sniff(p, n), &r, IMT_PDQ_COMPAT, lim, out, detail, 256);
}

static uint64_t sum_plane(const imt_luma *l)
{
    uint64_t s = 1469598103934665603ull;
    for (size_t i = 0; i < (size_t)l->rows * (size_t)l->cols; i++) {
        uint32_t v;
        memcpy(&v, &l->pix[i], 4);
        s = (s ^ v) * 1099511628211ull;
    }
    return s;
}

static void test_truncation_limits_state(void)
{
    size_t na = 0, nb = 0;
    uint8_t *a = tu_read_file(DATA "odd.heic", &na);
    uint8_t *b = tu_read_file(DATA "p8.avif", &nb);
    REQUIRE(a && b);
    imt_decoder *d = NULL;
    REQUIRE(imt__decoder_create(&d) == IMT_OK);
    imt_decode_limits lim = {(uint64_t)1 << 30, 100000, 0};
    imt_luma l;
    char detail[256];

    REQUIRE(decode(d, a, na, &lim, &l, detail) == IMT_OK);
    CHECK(l.width == 333 && l.height == 251 && l.rows == 251 && l.cols == 333);
    uint64_t sa = sum_plane(&l);

    /* Every truncation: a named error or an image, never a crash. */
    for (size_t cut = 0; cut < na; cut += na / 97 + 1) {
        imt_err e = decode(d, a, cut, &lim, &l, detail);
        CHECKF(e == IMT_OK || detail[0], "cut %zu: %s without a reason", cut, imt_err_name(e));
        CHECKF(e == IMT_OK || e == IMT_E_TRUNCATED || e == IMT_E_CORRUPT ||
                   e == IMT_E_UNSUPPORTED || e == IMT_E_NOT_IMAGE,
               "cut %zu: %s (%s)", cut, imt_err_name(e), detail);
    }
    /* Limits: refused from the header, the size still reported. */
    imt_decode_limits small = {(uint64_t)1 << 30, 300, 0};
    CHECK(decode(d, a, na, &small, &l, detail) == IMT_E_TOO_LARGE);
    CHECKF(strstr(detail, "333x251") != NULL, "detail: %s", detail);
    imt_decode_limits fewpx = {10000, 100000, 0};
    CHECK(decode(d, a, na, &fewpx, &l, detail) == IMT_E_TOO_LARGE);

    /* Another file, then the first again: the same plane. */
    REQUIRE(decode(d, b, nb, &lim, &l, detail) == IMT_OK);
    CHECK(l.rows == 512 && l.cols == 512);
    REQUIRE(decode(d, a, na, &lim, &l, detail) == IMT_OK);
    CHECK(sum_plane(&l) == sa);

    /* A grid declaring 60000x60000 over 'ispe' 128x128: refused from the
     * grid header, before libheif allocates. */
    size_t ng = 0;
    uint8_t *g = tu_read_file(DATA "bomb-grid-60000.heic", &ng);
    REQUIRE(g != NULL);
    CHECK(decode(d, g, ng, &lim, &l, detail) == IMT_E_TOO_LARGE);
    CHECKF(strstr(detail, "grid claims 60000x60000") != NULL, "detail: %s", detail);
    CHECK(l.width == 60000 && l.height == 60000);
    free(g);
    /* A grid whose tiles do not cover its canvas (10000x10000 over four
     * 64x64 tiles): libheif leaves the rest of the canvas uninitialised, so
     * its hash depended on the heap (order-independence.sh found it). */
    g = tu_read_file(DATA "bomb-grid-10000.heic", &ng);
    REQUIRE(g != NULL);
    CHECK(decode(d, g, ng, &lim, &l, detail) == IMT_E_CORRUPT);
    CHECKF(strstr(detail, "tiles cover 128x128") != NULL, "detail: %s", detail);
    free(g);
    /* A damaged HEVC stream (a mutated grey.heic the heif fuzz target
     * found) ends its slice early: libde265 leaves the rest of the picture's
     * coding blocks undecoded, their samples whatever the heap held, and
     * libheif's own plugin reports nothing (its hash differed between
     * MALLOC_PERTURB_=1 and =77). heif_hevc.c's probe finds them: corrupt,
     * whatever the heap holds (the first decode leaves it dirty). */
    g = tu_read_file(REGRESS "libde265-undecoded-blocks.heic", &ng);
    REQUIRE(g != NULL);
    for (int k = 0; k < 2; k++) {
        CHECK(decode(d, g, ng, &lim, &l, detail) == IMT_E_CORRUPT);
        CHECKF(strstr(detail, "coding blocks undecoded") != NULL, "detail: %s", detail);
    }
    free(g);
    imt__decoder_free(d);
    free(a);
    free(b);
}

/* The float luma plane itself against luma.csv (luma.py: ImageMagick's
 * PNM of the file and the reference's expression): finer than the hash,
 * which a near-miss colour conversion could still match. */
static void test_planes(void)
{
    FILE *f = fopen(DATA "luma.csv", "r");
    REQUIRE(f != NULL);
    imt_decoder *d = NULL;
    REQUIRE(imt__decoder_create(&d) == IMT_OK);
    imt_decode_limits lim = {(uint64_t)1 << 30, 100000, 0};
    char line[300], name[128], path[512], detail[256];
    unsigned long long want;
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "%127[^,],%llx", name, &want) != 2) continue;
        snprintf(path, sizeof path, DATA "%s", name);
        size_t len = 0;
        uint8_t *p = tu_read_file(path, &len);
        REQUIRE(p != NULL);
        imt_luma l;
        imt_err e = decode(d, p, len, &lim, &l, detail);
        CHECKF(e == IMT_OK, "%s: %s (%s)", name, imt_err_name(e), detail);
        if (e == IMT_OK)
            CHECKF(sum_plane(&l) == want, "%s: luma plane %016llx, reference %016llx", name,
                   (unsigned long long)sum_plane(&l), want);
        free(p);
        n++;
    }
    fclose(f);
    CHECK(n >= 6);
    imt__decoder_free(d);
}

int main(void)
{
    test_reference();
    test_planes();
    test_truncation_limits_state();
    return tu_done("test_decode_heif");
}
