/* tests/test_decode_tiffbmp.c -- the TIFF and BMP decoders (engine/decode/
 * tiff.c, bmp.c).
 *
 * Golden values come from the reference hasher: tests/data/formats/tiffbmp/
 * expected.csv is pdq-photo-hasher's output over the images make.sh made
 * there with convert, tiffcp and bmpvariant.py. compat must give its hash
 * and quality exactly for every image except those mismatch.txt names with
 * the cause; fast must be within 10 bits for quality >= 80. Every image of
 * the folder must be in the CSV. Then: the same bytes in small chunks give
 * the same hash; truncations and header edits never crash and give a
 * named status; limits are checked from the header. */
#include "decode/decode.h"
#include "hash/hash.h"
#include "testutil.h"

#include <dirent.h>
#include <string.h>

#define DIR_ IMT_SOURCE_DIR "/tests/data/formats/tiffbmp"

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

static imt_hasher *hasher(imt_pdq_mode mode)
{
    imt_hash_opts o;
    imt_hash_opts_init(&o);
    o.mode = mode;
    imt_hasher *h = NULL;
    REQUIRE(imt_hasher_create(&h, &o) == IMT_OK);
    return h;
}

static int in_list(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; (p = strstr(p, name)) != NULL; p += n)
        if ((p == list || p[-1] == '\n') && (p[n] == ' ' || p[n] == '\t')) return 1;
    return 0;
}

/* 1. compat exact, fast within 10 bits, every image listed */
static void reference_csv(void)
{
    size_t len = 0, mlen = 0;
    char *csv = (char *)tu_read_file(DIR_ "/expected.csv", &len);
    char *mism = (char *)tu_read_file(DIR_ "/mismatch.txt", &mlen);
    REQUIRE(csv && mism);
    csv = realloc(csv, len + 1);
    csv[len] = 0;
    mism = realloc(mism, mlen + 1);
    mism[mlen] = 0;
    imt_hasher *hc = hasher(IMT_PDQ_COMPAT), *hf = hasher(IMT_PDQ_FAST);
    int rows = 0, exact = 0;
    char *save = NULL;
    for (char *line = strtok_r(csv, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char hex[65], name[128];
        int q;
        REQUIRE(sscanf(line, "%64[0-9a-f],%d,%127s", hex, &q, name) == 3);
        imt_pdq want;
        REQUIRE(imt_pdq_from_hex(&want, hex, 64) == IMT_OK);
        char path[512];
        snprintf(path, sizeof path, "%s/%s", DIR_, name);
        imt_hash_result rc, rf;
        CHECKF(imt_hash_file(hc, path, &rc) == IMT_OK, "%s compat: %s", name, rc.detail);
        CHECKF(imt_hash_file(hf, path, &rf) == IMT_OK, "%s fast: %s", name, rf.detail);
        rows++;
        if (rc.status != IMT_OK || rf.status != IMT_OK) continue;
        int dc = imt_pdq_distance(&rc.pdq[0], &want), df = imt_pdq_distance(&rf.pdq[0], &want);
        if (in_list(mism, name)) {
            /* named as not matching: it must still decode, and not match
             * by accident (else it belongs in the exact set) */
            CHECKF(dc != 0, "%s is listed in mismatch.txt but matches", name);
            continue;
        }
        exact++;
        CHECKF(dc == 0 && rc.quality == q, "%s compat: distance %d, quality %d (reference %d)",
               name, dc, rc.quality, q);
        if (q >= 80) CHECKF(df <= 10, "%s fast: distance %d from the reference", name, df);
        /* *_bad* images have unreadable data the reference reads past */
        int bad = strstr(name, "_bad") != NULL;
        CHECKF(rc.partial == bad && rf.partial == bad, "%s partial %d/%d", name, rc.partial,
               rf.partial);
    }
    CHECKF(rows >= 50 && exact >= 49, "%d rows, %d exact", rows, exact);
    /* every image in the folder has its row */
    DIR *d = opendir(DIR_);
    REQUIRE(d);
    struct dirent *e;
    char *csv2 = (char *)tu_read_file(DIR_ "/expected.csv", &len);
    csv2 = realloc(csv2, len + 1);
    csv2[len] = 0;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 5 || (strcmp(e->d_name + n - 4, ".tif") && strcmp(e->d_name + n - 4, ".bmp")))
            continue;
        char key[300];
        snprintf(key, sizeof key, ",%s\n", e->d_name);
        CHECKF(strstr(csv2, key) != NULL, "%s has no row in expected.csv", e->d_name);
    }
    closedir(d);
    free(csv2);
    imt_hasher_free(hc);
    imt_hasher_free(hf);
    free(csv);
    free(mism);
}

/* Decode bytes with a fresh decoder in chunks of step bytes; hash it. */
static imt_err decode_hash(const uint8_t *d, size_t n, size_t step, imt_pdq *h, int *q,
                           int *partial, char *detail, size_t cap)
{
    imt_decoder *dec = NULL;
    imt_pdq_ctx *pdq = NULL;
    REQUIRE(imt__decoder_create(&dec) == IMT_OK && imt__pdq_ctx_create(&pdq) == IMT_OK);
    memsrc m = {d, n, 0, step};
    imt_reader r = {mem_pull, &m};
    imt_decode_limits lim = {(uint64_t)1 << 30, 100000, 0};
    imt_luma out;
    detail[0] = 0;
    imt_err e = imt__decode_luma(dec, imt_sniff(d, n), &r, IMT_PDQ_COMPAT, &lim, &out, detail, cap);
    if (partial) *partial = out.partial;
    if (e == IMT_OK) e = imt__pdq_hash_luma(pdq, out.pix, out.rows, out.cols, 0, h, q);
    imt__pdq_ctx_free(pdq);
    imt__decoder_free(dec);
    return e;
}

static uint8_t *load(const char *name, size_t *n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", DIR_, name);
    uint8_t *d = tu_read_file(path, n);
    REQUIRE(d);
    return d;
}

/* 2. chunking does not change anything; 3. truncations name a status */
static void chunks_and_truncation(void)
{
    static const char *files[] = {"b_rgb24_v3.bmp", "b_pal8_rle.bmp", "b_pal4_rle4.bmp",
                                  "b_rgb565.bmp", "b_mono1.bmp", "t_rgb8_lzw.tif",
                                  "t_planar_tile.tif", "t_ycbcr_jpeg.tif"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        size_t n;
        uint8_t *d = load(files[i], &n);
        char det[256];
        imt_pdq h1[8], h2[8];
        int q1, q2;
        REQUIRE(decode_hash(d, n, 1 << 20, h1, &q1, NULL, det, sizeof det) == IMT_OK);
        CHECKF(decode_hash(d, n, 7, h2, &q2, NULL, det, sizeof det) == IMT_OK &&
                   !memcmp(&h1[0], &h2[0], sizeof h1[0]) && q1 == q2,
               "%s in 7-byte chunks differs", files[i]);
        for (size_t cut = 20; cut < n; cut += n / 23 + 1) {
            int partial = 0;
            imt_err e = decode_hash(d, cut, 4096, h2, &q2, &partial, det, sizeof det);
            CHECKF(e == IMT_OK || e == IMT_E_TRUNCATED || e == IMT_E_CORRUPT ||
                       e == IMT_E_TOO_SMALL,
                   "%s cut at %zu: %s (%s)", files[i], cut, imt_err_name(e), det);
            CHECKF(e != IMT_OK || det[0] || !partial, "%s cut at %zu: partial without a reason",
                   files[i], cut);
        }
        free(d);
    }
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* 4. BMP header edits: limits before allocation, the CImg and IM rules */
static void bmp_headers(void)
{
    size_t n;
    uint8_t *d = load("b_rgb24_v3.bmp", &n);
    uint8_t *e = malloc(n);
    char det[256];
    imt_pdq h[8], h0[8];
    int q, q0, partial;
    REQUIRE(decode_hash(d, n, 4096, h0, &q0, NULL, det, sizeof det) == IMT_OK);

    /* a huge claimed size is too-large from the header */
    memcpy(e, d, n);
    put32(e + 18, 90000);
    put32(e + 22, 90000);
    CHECK(decode_hash(e, n, 4096, h, &q, NULL, det, sizeof det) == IMT_E_TOO_LARGE);
    /* zero or negative width: corrupt */
    memcpy(e, d, n);
    put32(e + 18, (uint32_t)-5);
    CHECK(decode_hash(e, n, 4096, h, &q, NULL, det, sizeof det) == IMT_E_CORRUPT);
    /* a 2-bit BMP is not decoded */
    memcpy(e, d, n);
    e[28] = 2;
    CHECK(decode_hash(e, n, 4096, h, &q, NULL, det, sizeof det) == IMT_E_UNSUPPORTED);
    /* JPEG inside BMP (compression 4): unsupported */
    memcpy(e, d, n);
    e[30] = 4;
    CHECK(decode_hash(e, n, 4096, h, &q, NULL, det, sizeof det) == IMT_E_UNSUPPORTED);
    /* bfSize 0: the file's own end counts (CImg), same hash */
    memcpy(e, d, n);
    put32(e + 2, 0);
    CHECK(decode_hash(e, n, 4096, h, &q, &partial, det, sizeof det) == IMT_OK &&
          !memcmp(&h[0], &h0[0], sizeof h[0]) && !partial);
    /* the pixel data cut short: hashed, flagged partial */
    CHECK(decode_hash(d, n - 1000, 4096, h, &q, &partial, det, sizeof det) == IMT_OK && partial);
    free(e);
    free(d);

    /* RLE: a huge claimed size is too-large before the index plane */
    d = load("b_pal8_rle.bmp", &n);
    e = malloc(n);
    memcpy(e, d, n);
    put32(e + 18, 20000);
    put32(e + 22, 20000);
    CHECK(decode_hash(e, n, 4096, h, &q, NULL, det, sizeof det) == IMT_E_TOO_LARGE);
    /* ImageMagick (the reference's reader of RLE BMPs, checked with the
     * reference hasher): a bfSize over the file size fails; RLE data cut
     * short is hashed (the rest is colour 0), flagged partial here */
    memcpy(e, d, n);
    put32(e + 2, (uint32_t)n + 10);
    CHECK(decode_hash(e, n, 4096, h, &q, NULL, det, sizeof det) == IMT_E_CORRUPT);
    put32(e + 2, (uint32_t)n - 10);
    CHECK(decode_hash(e, n, 4096, h, &q, NULL, det, sizeof det) == IMT_OK);
    REQUIRE(d[n - 4] == 0 && d[n - 3] == 0 && d[n - 2] == 0 && d[n - 1] == 1);
    put32(e + 2, (uint32_t)n - 2);
    CHECK(decode_hash(e, n - 2, 4096, h, &q, NULL, det, sizeof det) == IMT_OK);
    put32(e + 2, (uint32_t)n / 2);
    CHECK(decode_hash(e, n / 2, 4096, h, &q, &partial, det, sizeof det) == IMT_OK && partial);
    /* 7000x7000 claimed over 20 KB: stride * rows / 256 is over the file
     * size, which ImageMagick refuses ("insufficient image data in file";
     * the reference hashes nothing) */
    memcpy(e, d, n);
    put32(e + 18, 7000);
    put32(e + 22, 7000);
    CHECK(decode_hash(e, n, 4096, h, &q, NULL, det, sizeof det) == IMT_E_CORRUPT);
    free(e);
    free(d);
}

/* 4b. An OS/2 (12-byte header) BMP: the reference's CImg loader misreads
 * the header (it aborts on this file), so the expected hash is the
 * reference's for the same pixels in a V3 BMP (expected.csv). */
static void bmp_os2(void)
{
    size_t n, len;
    uint8_t *d = load("b_rgb24_v3.bmp", &n);
    char *csv = (char *)tu_read_file(DIR_ "/expected.csv", &len);
    REQUIRE(csv);
    csv = realloc(csv, len + 1);
    csv[len] = 0;
    char *row = strstr(csv, ",b_rgb24_v3.bmp\n");
    REQUIRE(row && row - csv >= 68);
    imt_pdq want;
    REQUIRE(imt_pdq_from_hex(&want, row - 68, 64) == IMT_OK);
    uint32_t off = (uint32_t)d[10] | (uint32_t)d[11] << 8, w = d[18] | d[19] << 8,
             h = d[22] | d[23] << 8;
    REQUIRE(d[28] == 24 && d[14] == 40);
    size_t pix = n - off;
    uint8_t *e = malloc(26 + pix);
    memcpy(e, "BM", 2);
    put32(e + 2, (uint32_t)(26 + pix));
    put32(e + 6, 0);
    put32(e + 10, 26);
    put32(e + 14, 12);
    e[18] = (uint8_t)w;
    e[19] = (uint8_t)(w >> 8);
    e[20] = (uint8_t)h;
    e[21] = (uint8_t)(h >> 8);
    e[22] = 1;
    e[23] = 0;
    e[24] = 24;
    e[25] = 0;
    memcpy(e + 26, d + off, pix);
    char det[256];
    imt_pdq hh[8];
    int q;
    CHECKF(decode_hash(e, 26 + pix, 4096, hh, &q, NULL, det, sizeof det) == IMT_OK &&
               imt_pdq_distance(&hh[0], &want) == 0,
           "OS/2 BMP: %s", det);
    free(e);
    free(csv);
    free(d);
}

/* 5. TIFF: limits from the header; garbage after the header */
static void tiff_headers(void)
{
    size_t n;
    uint8_t *d = load("t_rgb8_none.tif", &n);
    char det[256];
    imt_pdq h[8];
    int q;
    /* find the ImageWidth entry (tag 256, type SHORT or LONG) and make it huge */
    uint8_t *e = malloc(n);
    memcpy(e, d, n);
    uint32_t ifd = (uint32_t)e[4] | (uint32_t)e[5] << 8 | (uint32_t)e[6] << 16 | (uint32_t)e[7] << 24;
    REQUIRE(e[0] == 'I' && ifd + 2 < n);
    unsigned cnt = e[ifd] | e[ifd + 1] << 8;
    int found = 0;
    for (unsigned i = 0; i < cnt; i++) {
        uint8_t *t = e + ifd + 2 + 12 * i;
        unsigned tag = t[0] | t[1] << 8;
        if (tag == 256 || tag == 257) {
            t[2] = 4; /* LONG */
            t[3] = 0;
            put32(t + 8, 200000);
            found++;
        }
    }
    REQUIRE(found == 2);
    CHECK(decode_hash(e, n, 4096, h, &q, NULL, det, sizeof det) == IMT_E_TOO_LARGE);
    free(e);
    /* cut before its directory (written after the pixels): truncated */
    imt_err rt = decode_hash(d, n * 2 / 3, 4096, h, &q, NULL, det, sizeof det);
    CHECKF(rt == IMT_E_TRUNCATED, "TIFF cut before its IFD: %s (%s)", imt_err_name(rt), det);
    /* a directory with no entries */
    static const uint8_t junk[16] = {'I', 'I', 42, 0, 8, 0, 0, 0};
    imt_err r = decode_hash(junk, sizeof junk, 4096, h, &q, NULL, det, sizeof det);
    CHECKF(r == IMT_E_CORRUPT, "junk TIFF: %s (%s)", imt_err_name(r), det);
    free(d);
}

/* 6. a result depends on the file only: A, B, A on one hasher */
static void fresh_state(void)
{
    imt_hasher *h = hasher(IMT_PDQ_COMPAT);
    imt_hash_result a1, b, a2;
    REQUIRE(imt_hash_file(h, DIR_ "/b_pal4_rle4.bmp", &a1) == IMT_OK);
    REQUIRE(imt_hash_file(h, DIR_ "/t_cmyk_lzw.tif", &b) == IMT_OK);
    REQUIRE(imt_hash_file(h, DIR_ "/t_grey4.tif", &b) == IMT_OK);
    REQUIRE(imt_hash_file(h, DIR_ "/b_pal4_rle4.bmp", &a2) == IMT_OK);
    CHECK(!memcmp(&a1.pdq[0], &a2.pdq[0], sizeof a1.pdq[0]) && a1.quality == a2.quality);
    imt_hasher_free(h);
}

/* 7. A multi-page TIFF: the first page is the file's hash, every further
 * page a sub-item (tiff-page, index = the page), compat exactly the
 * reference's hash of that page split out alone (pages.csv), fast within
 * 10 bits; not compared with the file's own (another picture). */
static void tiff_pages(void)
{
    size_t len = 0;
    char *csv = (char *)tu_read_file(DIR_ "/pages.csv", &len);
    REQUIRE(csv != NULL);
    char hex[65];
    int q = 0, page = 0;
    REQUIRE(sscanf(csv, "%64[0-9a-f],%d,t_multipage.tif,%d", hex, &q, &page) == 3);
    imt_pdq want;
    REQUIRE(imt_pdq_from_hex(&want, hex, 64) == IMT_OK);
    free(csv);
    imt_pdq_mode modes[2] = {IMT_PDQ_COMPAT, IMT_PDQ_FAST};
    for (int m = 0; m < 2; m++) {
        imt_hasher *h = hasher(modes[m]);
        imt_hash_result r;
        imt_hash_file(h, DIR_ "/t_multipage.tif", &r);
        CHECKF(r.status == IMT_OK && r.n_sub == 1 && r.sub_omitted == 0,
               "%s %zu sub-items (%zu omitted)", imt_err_name(r.status), r.n_sub,
               r.sub_omitted);
        if (r.n_sub == 1) {
            const imt_subitem *u = &r.sub[0];
            int d = imt_pdq_distance(&u->pdq[0], &want);
            CHECKF(u->kind == IMT_SUB_TIFF_PAGE && u->index == (uint32_t)page &&
                       u->status == IMT_OK && u->format == IMT_FMT_TIFF,
                   "kind %d index %u %s", (int)u->kind, u->index, imt_err_name(u->status));
            if (m == 0)
                CHECKF(d == 0 && u->quality == q, "page %d: distance %d, quality %d vs %d", page,
                       d, u->quality, q);
            else
                CHECKF(d <= 10, "page %d: fast is %d bits from the reference", page, d);
            CHECK(u->distance == -1 && !u->differs && !r.thumbnail_differs);
            CHECK(u->width == 130 && u->height == 97);
        }
        imt_hasher_free(h);
    }
    /* one page: no sub-items; embedded off: none either */
    imt_hasher *h = hasher(IMT_PDQ_COMPAT);
    imt_hash_result r;
    imt_hash_file(h, DIR_ "/t_rgb8_lzw.tif", &r);
    CHECK(r.status == IMT_OK && r.n_sub == 0);
    imt_hasher_free(h);
    imt_hash_opts o;
    imt_hash_opts_init(&o);
    o.embedded = 0;
    REQUIRE(imt_hasher_create(&h, &o) == IMT_OK);
    imt_hash_file(h, DIR_ "/t_multipage.tif", &r);
    CHECK(r.status == IMT_OK && r.n_sub == 0);
    imt_hasher_free(h);
}

int main(void)
{
    tiff_pages();
    reference_csv();
    chunks_and_truncation();
    bmp_headers();
    bmp_os2();
    tiff_headers();
    fresh_state();
    return tu_done("test_decode_tiffbmp");
}
