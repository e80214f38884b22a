/* tests/test_decode_webp_gif.c -- the WebP and GIF decoders (engine/decode/
 * webp.c, gif.c).
 *
 * Expected values come from the reference hasher (pdq-photo-hasher through
 * CImg and ImageMagick 6.9.11), run by tests/data/formats/webp_gif/make.sh
 * over the images it generated:
 *   expected.csv      every image: compat must give the hash AND quality bit
 *                     for bit; fast must be within 10 bits where quality >= 80;
 *   expected_cut.csv  every image cut short at 4 points: where the reference
 *                     gives no hash (all zero) we must give none either (or
 *                     the same all-zero hash of a flat picture), and
 *                     where it hashes we must give its hash and quality;
 *   corpus_reference.csv  the reference over every GIF and WebP of
 *                     ../shared/corpus (607 + 300 hostile files, chosen by
 *                     their magic bytes): a non-zero hash must be ours bit for
 *                     bit; an all-zero line (the reference prints one both for
 *                     a file it cannot read and for a flat picture) must be a
 *                     per-file error here or that same all-zero hash.
 * Besides: decoding is independent of how the bytes arrive and of the files
 * decoded before; claimed sizes over the limits are refused from the
 * headers. */
#include "decode/decode.h"
#include "imgtriage.h"
#include "testutil.h"

#include <dirent.h>
#include <string.h>

#define DIR_ IMT_SOURCE_DIR "/tests/data/formats/webp_gif"
#define MAXROWS 256

typedef struct row {
    char hash[65];
    int quality;
    char file[128];
    long cut; /* expected_cut.csv: bytes kept */
} row;

static int load_csv(const char *name, row *rows, int with_cut)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", DIR_, name);
    FILE *f = fopen(path, "r");
    REQUIRE(f != NULL);
    char line[512];
    int n = 0;
    while (n < MAXROWS && fgets(line, sizeof line, f)) {
        row *r = &rows[n];
        char file[128];
        int q = 0;
        long cut = 0;
        int got = with_cut ? sscanf(line, "%64[0-9a-f],%d,%127[^,],%ld", r->hash, &q, file, &cut)
                           : sscanf(line, "%64[0-9a-f],%d,%127[^,\r\n]", r->hash, &q, file);
        REQUIRE(got == (with_cut ? 4 : 3) && strlen(r->hash) == 64);
        r->quality = q;
        r->cut = cut;
        snprintf(r->file, sizeof r->file, "%s", file);
        n++;
    }
    fclose(f);
    return n;
}

static unsigned char *read_image(const char *file, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", DIR_, file);
    unsigned char *d = tu_read_file(path, len);
    REQUIRE(d != NULL);
    return d;
}

static imt_hasher *make(imt_pdq_mode mode, uint64_t max_pixels, uint32_t max_dim)
{
    imt_hash_opts o;
    imt_hash_opts_init(&o);
    o.mode = mode;
    o.time_budget_ms = 0;
    if (max_pixels) o.max_pixels = max_pixels;
    if (max_dim) o.max_dimension = max_dim;
    imt_hasher *h = NULL;
    REQUIRE(imt_hasher_create(&h, &o) == IMT_OK);
    return h;
}

static int dist_hex(const imt_pdq *a, const char *hex)
{
    imt_pdq b;
    REQUIRE(imt_pdq_from_hex(&b, hex, 64) == IMT_OK);
    return imt_pdq_distance(a, &b);
}

static int is_zero(const char *hex)
{
    for (int i = 0; i < 64; i++)
        if (hex[i] != '0') return 0;
    return 1;
}

/* 1. compat exact, fast within 10; every image of the folder is listed. */
static void test_expected(void)
{
    static row rows[MAXROWS];
    int n = load_csv("expected.csv", rows, 0);
    int files = 0, webp = 0, gif = 0;
    DIR *d = opendir(DIR_);
    REQUIRE(d != NULL);
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l > 5 && !strcmp(e->d_name + l - 5, ".webp")) webp++, files++;
        if (l > 4 && !strcmp(e->d_name + l - 4, ".gif")) gif++, files++;
    }
    closedir(d);
    CHECKF(n == files, "expected.csv has %d rows for %d images", n, files);
    CHECK(webp >= 12 && gif >= 12);
    imt_hasher *hc = make(IMT_PDQ_COMPAT, 0, 0), *hf = make(IMT_PDQ_FAST, 0, 0);
    int worst = 0;
    for (int i = 0; i < n; i++) {
        size_t len;
        unsigned char *img = read_image(rows[i].file, &len);
        imt_hash_result rc, rf;
        imt_hash_memory(hc, img, len, &rc);
        imt_hash_memory(hf, img, len, &rf);
        CHECKF(rc.status == IMT_OK, "%s compat: %s (%s)", rows[i].file, imt_err_name(rc.status),
               rc.detail);
        CHECKF(rf.status == IMT_OK, "%s fast: %s (%s)", rows[i].file, imt_err_name(rf.status),
               rf.detail);
        if (rc.status == IMT_OK) {
            char hex[65];
            imt_pdq_to_hex(&rc.pdq[0], hex);
            CHECKF(!strcmp(hex, rows[i].hash) && rc.quality == rows[i].quality,
                   "%s compat: %s,%d; reference %s,%d", rows[i].file, hex, rc.quality,
                   rows[i].hash, rows[i].quality);
        }
        if (rf.status == IMT_OK && rows[i].quality >= 80) {
            int dd = dist_hex(&rf.pdq[0], rows[i].hash);
            if (dd > worst) worst = dd;
            CHECKF(dd <= 10, "%s fast: %d bits from the reference", rows[i].file, dd);
        }
        free(img);
    }
    printf("%d images: compat exact, fast worst distance %d\n", n, worst);
    imt_hasher_free(hc);
    imt_hasher_free(hf);
}

/* 2. Cut short: the reference's verdict, and its hash where it has one. */
static void test_cut(void)
{
    static row rows[MAXROWS];
    int n = load_csv("expected_cut.csv", rows, 1);
    CHECK(n >= 100);
    imt_hasher *hc = make(IMT_PDQ_COMPAT, 0, 0), *hf = make(IMT_PDQ_FAST, 0, 0);
    int hashed = 0;
    for (int i = 0; i < n; i++) {
        size_t len;
        unsigned char *img = read_image(rows[i].file, &len);
        REQUIRE(rows[i].cut > 0 && (size_t)rows[i].cut < len);
        imt_hash_result rc, rf;
        imt_hash_memory(hc, img, (size_t)rows[i].cut, &rc);
        imt_hash_memory(hf, img, (size_t)rows[i].cut, &rf);
        if (is_zero(rows[i].hash)) {
            /* the reference prints an all-zero hash for a file it cannot
             * read and for a flat picture (no_colour_table.gif is black) */
            char z[65] = "";
            if (rc.status == IMT_OK) imt_pdq_to_hex(&rc.pdq[0], z);
            int flat = rc.status == IMT_OK && !strcmp(z, rows[i].hash) &&
                       rc.quality == rows[i].quality && rf.status == IMT_OK;
            CHECKF(flat || (rc.status != IMT_OK && rf.status != IMT_OK),
                   "%s cut to %ld bytes: the reference reads nothing, we: compat %s %s, fast %s",
                   rows[i].file, rows[i].cut, imt_err_name(rc.status), z,
                   imt_err_name(rf.status));
            if (!flat) CHECKF(rc.detail[0] != '\0', "%s cut: no reason", rows[i].file);
        } else {
            hashed++;
            char hex[65] = "";
            if (rc.status == IMT_OK) imt_pdq_to_hex(&rc.pdq[0], hex);
            CHECKF(rc.status == IMT_OK && !strcmp(hex, rows[i].hash) &&
                       rc.quality == rows[i].quality,
                   "%s cut to %ld bytes: %s %s,%d; reference %s,%d", rows[i].file, rows[i].cut,
                   imt_err_name(rc.status), hex, rc.quality, rows[i].hash, rows[i].quality);
            CHECKF(rf.status == IMT_OK, "%s cut to %ld bytes, fast: %s (%s)", rows[i].file,
                   rows[i].cut, imt_err_name(rf.status), rf.detail);
        }
        free(img);
    }
    CHECK(hashed >= 20); /* the GIFs missing only their last block / trailer */
    printf("%d cut files, %d hashed by the reference\n", n, hashed);
    imt_hasher_free(hc);
    imt_hasher_free(hf);
}

/* ---- 3. chunking and decoder reuse ---------------------------------------- */
typedef struct memsrc {
    const uint8_t *d;
    size_t n, pos, step;
} memsrc;

static imt_err mem_pull(void *ctx, const uint8_t **data, size_t *len)
{
    memsrc *m = ctx;
    size_t k = m->n - m->pos;
    if (k > m->step) k = m->step;
    *data = m->d + m->pos;
    *len = k;
    m->pos += k;
    return IMT_OK;
}

static float *decode_plane(imt_decoder *dec, const uint8_t *d, size_t n, size_t step,
                           imt_pdq_mode mode, int *rows, int *cols)
{
    memsrc m = {d, n, 0, step};
    imt_reader r = {mem_pull, &m};
    imt_decode_limits lim = {(uint64_t)1 << 30, 100000, 0};
    imt_luma out;
    char detail[256];
    imt_format fmt = imt_sniff(d, n);
    imt_err e = imt__decode_luma(dec, fmt, &r, mode, &lim, &out, detail, sizeof detail);
    CHECKF(e == IMT_OK, "decode (step %zu): %s (%s)", step, imt_err_name(e), detail);
    if (e != IMT_OK) return NULL;
    size_t k = (size_t)out.rows * (size_t)out.cols;
    float *p = malloc(k * sizeof *p);
    REQUIRE(p != NULL);
    memcpy(p, out.pix, k * sizeof *p);
    *rows = out.rows;
    *cols = out.cols;
    return p;
}

static void test_chunking_and_reuse(void)
{
    static row rows[MAXROWS];
    int n = load_csv("expected.csv", rows, 0);
    imt_decoder *shared = NULL;
    REQUIRE(imt__decoder_create(&shared) == IMT_OK);
    for (int pass = 0; pass < 2; pass++) {
        for (int k = 0; k < n; k++) {
            /* the second pass goes backwards through one reused decoder */
            int i = pass ? n - 1 - k : k;
            size_t len;
            unsigned char *img = read_image(rows[i].file, &len);
            for (int m = 0; m < 2; m++) {
                imt_pdq_mode mode = m ? IMT_PDQ_FAST : IMT_PDQ_COMPAT;
                imt_decoder *fresh = NULL;
                REQUIRE(imt__decoder_create(&fresh) == IMT_OK);
                int r0, c0, r1, c1, r2, c2;
                float *whole = decode_plane(fresh, img, len, len, mode, &r0, &c0);
                imt__decoder_free(fresh);
                float *tiny = decode_plane(shared, img, len, pass ? 7 : 1, mode, &r1, &c1);
                float *reused = decode_plane(shared, img, len, 4096, mode, &r2, &c2);
                if (whole && tiny && reused) {
                    size_t bytes = (size_t)r0 * (size_t)c0 * sizeof(float);
                    CHECKF(r0 == r1 && c0 == c1 && !memcmp(whole, tiny, bytes),
                           "%s (%s): the plane depends on the chunk size", rows[i].file,
                           m ? "fast" : "compat");
                    CHECKF(r0 == r2 && c0 == c2 && !memcmp(whole, reused, bytes),
                           "%s (%s): the plane depends on the files decoded before",
                           rows[i].file, m ? "fast" : "compat");
                }
                free(whole);
                free(tiny);
                free(reused);
            }
            free(img);
        }
    }
    imt__decoder_free(shared);
}

/* ---- 4. limits from the headers -------------------------------------------- */
static void expect_too_large(const char *file, const unsigned char *img, size_t len,
                             uint64_t max_pixels, uint32_t max_dim, const char *detail_has)
{
    for (int m = 0; m < 2; m++) {
        imt_hasher *h = make(m ? IMT_PDQ_FAST : IMT_PDQ_COMPAT, max_pixels, max_dim);
        imt_hash_result r;
        imt_hash_memory(h, img, len, &r);
        CHECKF(r.status == IMT_E_TOO_LARGE && strstr(r.detail, detail_has),
               "%s (max_pixels %llu, max_dimension %u): %s \"%s\", expected too-large "
               "naming \"%s\"", file, (unsigned long long)max_pixels, (unsigned)max_dim,
               imt_err_name(r.status), r.detail, detail_has);
        imt_hasher_free(h);
    }
}

static void test_limits(void)
{
    size_t len;
    unsigned char *img = read_image("lossy_640.webp", &len);
    expect_too_large("lossy_640.webp", img, len, 640 * 480 - 1, 0, "640x480");
    expect_too_large("lossy_640.webp", img, len, 0, 639, "640x480");
    free(img);
    img = read_image("anim_offset.webp", &len); /* VP8X canvas 310x206 */
    expect_too_large("anim_offset.webp", img, len, 0, 300, "WebP canvas claims 310x206");
    free(img);
    img = read_image("anim_transparent.gif", &len); /* screen 260x200 */
    expect_too_large("anim_transparent.gif", img, len, 0, 250, "GIF logical screen");
    free(img);
    /* A frame larger than its screen (10x10): the reference ignores the
     * screen, so it hashes as the original; the frame's own size is checked
     * against the limits. */
    img = read_image("static_text.gif", &len);
    img[6] = 10, img[7] = 0, img[8] = 10, img[9] = 0;
    expect_too_large("static_text.gif (screen 10x10)", img, len, 0, 250,
                     "GIF frame 1 claims 300x200");
    imt_hasher *h = make(IMT_PDQ_COMPAT, 0, 0);
    imt_hash_result r;
    imt_hash_memory(h, img, len, &r);
    static row rows[MAXROWS];
    int n = load_csv("expected.csv", rows, 0);
    for (int i = 0; i < n; i++)
        if (!strcmp(rows[i].file, "static_text.gif")) {
            char hex[65] = "";
            if (r.status == IMT_OK) imt_pdq_to_hex(&r.pdq[0], hex);
            CHECKF(r.status == IMT_OK && !strcmp(hex, rows[i].hash),
                   "static_text.gif with a 10x10 screen: %s %s", imt_err_name(r.status), hex);
        }
    imt_hasher_free(h);
    free(img);
}

/* 5. The shared hostile corpus against the reference's verdicts. */
static int test_corpus(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", DIR_, "corpus_reference.csv");
    FILE *f = fopen(path, "r");
    REQUIRE(f != NULL);
    if (!tu_shared("corpus/malformed")) {
        fclose(f);
        return 0;
    }
    imt_hasher *h = make(IMT_PDQ_COMPAT, 0, 0);
    char line[1024];
    int n = 0, hashed = 0, refused = 0;
    while (fgets(line, sizeof line, f)) {
        char hex[65], rel[900];
        int q = 0;
        REQUIRE(sscanf(line, "%64[0-9a-f],%d,%899[^\r\n]", hex, &q, rel) == 3);
        const char *full = tu_shared(rel);
        CHECKF(full != NULL, "corpus file %s missing", rel);
        if (!full) continue;
        imt_hash_result r;
        imt_hash_file(h, full, &r);
        char got[65] = "";
        if (r.status == IMT_OK) imt_pdq_to_hex(&r.pdq[0], got);
        if (is_zero(hex)) {
            CHECKF(r.status != IMT_OK || (!strcmp(got, hex) && r.quality == q),
                   "%s: the reference has no hash (or a flat one), we %s %s", rel,
                   imt_err_name(r.status), got);
            refused += r.status != IMT_OK;
        } else {
            CHECKF(r.status == IMT_OK && !strcmp(got, hex) && r.quality == q,
                   "%s: %s %s,%d; reference %s,%d (%s)", rel, imt_err_name(r.status), got,
                   r.quality, hex, q, r.detail);
            hashed++;
        }
        n++;
    }
    fclose(f);
    imt_hasher_free(h);
    CHECK(n >= 900 && hashed >= 150);
    printf("corpus: %d files, %d hashed as the reference, %d refused as the reference\n", n,
           hashed, refused);
    return 1;
}

int main(void)
{
    test_expected();
    test_cut();
    test_chunking_and_reuse();
    test_limits();
    if (!test_corpus()) {
        /* the rest ran; this part needs ../shared */
        int rc = tu_skip("../shared/corpus absent: corpus_reference.csv not checked");
        if (rc != 77) return rc;
    }
    return tu_done("test_decode_webp_gif");
}
