/* tests/test_decode_jpeg.c -- the JPEG decoder (engine/decode/jpeg.c).
 *
 * Compat mode: dimensions, the 512x512 resize, grey versus colour handling,
 * and float-luma checksums of four vector images whose goldens come from an
 * independent path (ImageMagick `convert FILE pnm:-` read by CImg, then the
 * reference's luma expression), not from this decoder. Robustness: truncated
 * copies, limits, deadline, hostile corpora, allocation failures, reuse of
 * one decoder after errors. Fast mode: output size and the progressive
 * DC-only early stop (exactly equal to the full decode at 1/8 scale). */
#include "decode/decode.h"
#include "testutil.h"

#include <dirent.h>
#include <setjmp.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

/* ---- a memory reader with small chunks (to exercise refills) ---------- */
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

/* Chunk size of the test reader. libjpeg-turbo's Huffman decoder takes a
 * fast path that does not warn about a bad code when the whole MCU is in
 * the buffer, so whether a damaged file is flagged partial depends on the
 * chunking: comparisons with a one-buffer libjpeg use one chunk. */
static size_t g_chunk = 7001;

static imt_decode_limits default_limits(void)
{
    imt_decode_limits lim = {(uint64_t)1 << 30, 100000, 0};
    return lim;
}

static imt_err decode_buf(imt_decoder *d, const uint8_t *p, size_t n, imt_pdq_mode mode,
                          const imt_decode_limits *lim, imt_luma *out, char *detail,
                          size_t *consumed)
{
    memsrc m = {p, n, 0, g_chunk};
    imt_reader r = {mem_pull, &m};
    detail[0] = '\0';
    imt_err e = imt__decode_luma(d, IMT_FMT_JPEG, &r, mode, lim, out, detail, 256);
    if (consumed) *consumed = m.pos;
    return e;
}

static uint64_t fnv_floats(const float *f, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    const uint8_t *b = (const uint8_t *)f;
    for (size_t i = 0; i < n * sizeof(float); i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}

static int all_integral(const float *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (f[i] != floorf(f[i])) return 0;
    return 1;
}

/* ---- vector images ----------------------------------------------------- */
typedef struct vec {
    const char *path;
    uint32_t w, h;     /* as `identify` reports */
    int grey;          /* the reference reads it as one channel (PGM) */
    uint64_t fnv;      /* FNV-1a of the reference's float luma bits; 0 = none */
} vec;

/* Goldens: ImageMagick 6.9.11 `convert FILE pnm:-` -> CImg<uint8_t> ->
 * resize(512,512) when a side is over 512 -> the reference's
 * fillFloatLumaFromRGB / fillFloatLumaFromGrey, dumped and hashed with
 * fnv_floats (a throwaway program; no code of this project involved). */
static const vec vectors[] = {
    {"vectors/pdq/images/bridge-mods/aaa-orig.jpg", 1600, 1004, 0, 0x4e7d5386b47babe2ull},
    {"vectors/pdq/images/misc-images/modes/CMYK.jpg", 1600, 1004, 0, 0x2339fc066b45efbaull},
    {"vectors/pdq/images/misc-images/small.jpg", 224, 399, 1, 0x3156572fdcf79b03ull},
    {"vectors/pdq/images/misc-images/wee.jpg", 34, 42, 0, 0x925c87f7175a3cbcull},
    {"vectors/pdq/images/bridge-mods/shrink-a-lot.jpg", 160, 100, 0, 0},
    {"vectors/pdq/images/bridge-mods/square-512x512.jpg", 512, 512, 0, 0},
    {"vectors/pdq/images/reg-test-input/dih/bridge-2-rotate-90.jpg", 1004, 1600, 0, 0},
    {"vectors/pdq/images/reg-test-input/exif-rotn/exif-rotn-6.jpg", 4032, 3024, 0, 0xf31de59c6e3244abull},
    {"vectors/pdq/images/reg-test-input/labelme-subset/q2821.jpg", 256, 256, 1, 0xc42561b6039868f8ull},
    {"vectors/pdq/images/reg-test-input/labelme-subset/q0122.jpg", 256, 256, 0, 0},
};

static void test_vectors(imt_decoder *d)
{
    char det[256];
    imt_decode_limits lim = default_limits();
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        const vec *v = &vectors[i];
        const char *path = tu_shared(v->path);
        REQUIRE(path != NULL);
        size_t n;
        uint8_t *buf = tu_read_file(path, &n);
        REQUIRE(buf != NULL);
        imt_luma L;
        imt_err e = decode_buf(d, buf, n, IMT_PDQ_COMPAT, &lim, &L, det, NULL);
        CHECKF(e == IMT_OK, "%s: %s %s", v->path, imt_err_name(e), det);
        if (e == IMT_OK) {
            CHECK(L.width == v->w && L.height == v->h);
            int big = v->w > 512 || v->h > 512;
            CHECKF(L.cols == (big ? 512 : (int)v->w) && L.rows == (big ? 512 : (int)v->h),
                   "%s: %dx%d", v->path, L.cols, L.rows);
            CHECK(!L.partial);
            size_t np = (size_t)L.rows * (size_t)L.cols;
            /* Grey images carry the sample itself; colour ones the float
             * formula, which is almost never integral over a photo. */
            CHECKF(all_integral(L.pix, np) == v->grey, "%s grey=%d", v->path, v->grey);
            if (v->fnv) {
                uint64_t h = fnv_floats(L.pix, np);
                CHECKF(h == v->fnv, "%s: luma fnv %016llx, reference %016llx", v->path,
                       (unsigned long long)h, (unsigned long long)v->fnv);
            }
        }
        /* Fast mode: small output, about the same picture. */
        e = decode_buf(d, buf, n, IMT_PDQ_FAST, &lim, &L, det, NULL);
        CHECKF(e == IMT_OK, "%s fast: %s %s", v->path, imt_err_name(e), det);
        if (e == IMT_OK) {
            CHECK(L.width == v->w && L.height == v->h);
            CHECKF(L.cols <= 512 && L.rows <= 512 && L.cols >= 5 && L.rows >= 5,
                   "%s fast %dx%d", v->path, L.cols, L.rows);
            if (v->w >= 1024 && v->h >= 1024)
                CHECKF(L.cols < (int)v->w / 4 && L.rows < (int)v->h / 4, "%s fast %dx%d",
                       v->path, L.cols, L.rows);
        }
        free(buf);
    }
}

/* ---- truncation ----------------------------------------------------------
 * The expected outcome of each cut comes from stock libjpeg (jpeg_mem_src,
 * which, like ImageMagick's source, warns and inserts an EOI when the data
 * ends), decoding every row with its defaults: an error after the data ran
 * out is truncated, an error before is corrupt, no error is an image, partial
 * when libjpeg warned. Cuts at 15 points and single changed bytes. */
typedef struct oracle_err {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    int saw_eof, warnings;
} oracle_err;

static void oracle_error_exit(j_common_ptr c)
{
    longjmp(((oracle_err *)c->err)->jb, 1);
}

static void oracle_emit(j_common_ptr c, int level)
{
    oracle_err *e = (oracle_err *)c->err;
    if (level >= 0) return;
    e->warnings++;
    if (c->err->msg_code == JWRN_JPEG_EOF) e->saw_eof = 1;
}

/* The decoder's spec beyond libjpeg's verdict (README, decode.h): libjpeg
 * errors for data it cannot decode by design are unsupported; more than
 * 1024 scans is corrupt (ImageMagick's limit); the default limits (2^30
 * pixels, a side of 100000) and the 256 MiB libjpeg memory cap are
 * too-large; a component count other than 1, 3 or 4 is unsupported. */
static int oracle_unsupported(int code)
{
    return code == JERR_BAD_PRECISION || code == JERR_SOF_UNSUPPORTED ||
           code == JERR_ARITH_NOTIMPL || code == JERR_NOT_COMPILED || code == JERR_NOTIMPL ||
           code == JERR_CONVERSION_NOTIMPL;
}

static void oracle_progress(j_common_ptr c)
{
    if (((j_decompress_ptr)c)->input_scan_number >= 1024) {
        ((oracle_err *)c->err)->pub.msg_code = -1;
        longjmp(((oracle_err *)c->err)->jb, 1);
    }
}

static imt_err oracle_outcome(const uint8_t *p, size_t n, int *partial)
{
    struct jpeg_decompress_struct d;
    oracle_err e;
    memset(&e, 0, sizeof e);
    d.err = jpeg_std_error(&e.pub);
    e.pub.error_exit = oracle_error_exit;
    e.pub.emit_message = oracle_emit;
    volatile imt_err r = IMT_OK;
    uint8_t *row = NULL;
    jpeg_create_decompress(&d);
    struct jpeg_progress_mgr prog;
    memset(&prog, 0, sizeof prog);
    prog.progress_monitor = oracle_progress;
    if (setjmp(e.jb)) {
        int code = e.pub.msg_code;
        if (code == JERR_NO_BACKING_STORE) r = IMT_E_TOO_LARGE;
        else if (oracle_unsupported(code)) r = IMT_E_UNSUPPORTED;
        else r = e.saw_eof && code != -1 ? IMT_E_TRUNCATED : IMT_E_CORRUPT;
    } else {
        jpeg_mem_src(&d, p, (unsigned long)n);
        d.progress = &prog;
        jpeg_read_header(&d, TRUE);
        d.mem->max_memory_to_use = 256L << 20;
        if ((uint64_t)d.image_width * d.image_height > ((uint64_t)1 << 30) ||
            d.image_width > 100000 || d.image_height > 100000) {
            r = IMT_E_TOO_LARGE;
            goto done;
        }
        if (d.num_components != 1 && d.num_components != 3 && d.num_components != 4) {
            r = IMT_E_UNSUPPORTED;
            goto done;
        }
        /* ImageMagick's setting: CMYK out for CMYK/YCCK (libjpeg's default
         * for YCCK would be an error-free CMYK too; for plain CMYK the same) */
        if (d.jpeg_color_space == JCS_YCCK) d.out_color_space = JCS_CMYK;
        jpeg_start_decompress(&d);
        row = malloc((size_t)d.output_width * (size_t)d.output_components);
        REQUIRE(row);
        while (d.output_scanline < d.output_height) {
            JSAMPROW rp = row;
            jpeg_read_scanlines(&d, &rp, 1);
        }
        /* no jpeg_finish_decompress: what follows the last row is not
         * part of the image (the decoder leaves it to the digests) */
    }
done:
    jpeg_destroy_decompress(&d);
    free(row);
    *partial = e.warnings > 0;
    return r;
}

static int g_trunc_corrupt;

static void test_truncation(imt_decoder *d, const char *rel)
{
    const char *path = tu_shared(rel);
    REQUIRE(path != NULL);
    size_t n;
    uint8_t *buf = tu_read_file(path, &n);
    REQUIRE(buf != NULL);
    imt_decode_limits lim = default_limits();
    char det[256];
    size_t lens[] = {1, 2, 3, 20, 100, 200, 400, 700, n / 8, n / 4, n / 2, 3 * n / 4,
                     n - 100, n - 2, n - 1};
    int seen[3] = {0, 0, 0};
    for (int mode = 0; mode < 2; mode++) {
        for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
            if (lens[i] >= n) continue;
            uint8_t *cp = malloc(lens[i]);
            REQUIRE(cp != NULL);
            memcpy(cp, buf, lens[i]);
            int partial = 0;
            imt_err want = oracle_outcome(cp, lens[i], &partial);
            imt_luma L;
            imt_err e = decode_buf(d, cp, lens[i], (imt_pdq_mode)mode, &lim, &L, det, NULL);
            CHECKF(e == want, "%s cut at %zu, mode %d: %s, libjpeg says %s [%s]", rel, lens[i],
                   mode, imt_err_name(e), imt_err_name(want), det);
            CHECK(det[0] != '\0');
            seen[want == IMT_OK ? 0 : want == IMT_E_TRUNCATED ? 1 : 2]++;
            if (e == IMT_OK) {
                CHECK(L.partial == 1 && partial == 1);
                CHECK(L.pix != NULL && L.rows > 0 && L.cols > 0);
                if (want == IMT_OK && partial)
                    CHECKF(strcmp(det, "libjpeg: Premature end of JPEG file") == 0, "%s at %zu: [%s]",
                           rel, lens[i], det);
            }
            free(cp);
        }
    }
    /* and whole files with one header or data byte changed */
    for (int mode = 0; mode < 2; mode++) {
        for (size_t k = 3; k < n; k += k < 800 ? 37 : n / 7) {
            uint8_t *cp = malloc(n);
            REQUIRE(cp != NULL);
            memcpy(cp, buf, n);
            cp[k] ^= 0x55;
            int partial = 0;
            imt_err want = oracle_outcome(cp, n, &partial);
            imt_luma L;
            g_chunk = n;
            imt_err e = decode_buf(d, cp, n, (imt_pdq_mode)mode, &lim, &L, det, NULL);
            g_chunk = 7001;
            CHECKF(e == want,
                   "%s byte %zu changed, mode %d: %s, libjpeg says %s [%s]", rel, k, mode,
                   imt_err_name(e), imt_err_name(want), det);
            if (e == IMT_OK)
                CHECKF(L.partial == partial, "%s byte %zu, mode %d: partial %d, libjpeg %d [%s]", rel, k,
                       mode, L.partial, partial, det);
            seen[want == IMT_OK ? 0 : want == IMT_E_TRUNCATED ? 1 : 2]++;
            free(cp);
        }
    }
    printf("%s: cuts: %d images, %d truncated, %d corrupt\n", rel, seen[0], seen[1], seen[2]);
    /* the cuts reach both error classes and images */
    CHECK(seen[0] > 0 && seen[1] > 0);
    g_trunc_corrupt += seen[2];
    free(buf);
}

/* ---- crafted headers -------------------------------------------------------
 * A minimal datastream: SOI, DQT, SOFn (w x h, 1 component), a DC and an AC
 * Huffman table with one code each, SOS, a few bytes of data, EOI. */
static size_t craft(uint8_t *o, unsigned sof, unsigned w, unsigned h)
{
    size_t k = 0;
    o[k++] = 0xFF; o[k++] = 0xD8;
    o[k++] = 0xFF; o[k++] = 0xDB; o[k++] = 0; o[k++] = 67; o[k++] = 0;
    for (int i = 0; i < 64; i++) o[k++] = 1;
    o[k++] = 0xFF; o[k++] = (uint8_t)sof; o[k++] = 0; o[k++] = 11; o[k++] = 8;
    o[k++] = (uint8_t)(h >> 8); o[k++] = (uint8_t)h; o[k++] = (uint8_t)(w >> 8); o[k++] = (uint8_t)w;
    o[k++] = 1; o[k++] = 1; o[k++] = 0x11; o[k++] = 0;
    /* DHT: class 0 id 0, one code of length 1 for symbol 0; class 1 id 0 the same. */
    for (int cls = 0; cls < 2; cls++) {
        o[k++] = 0xFF; o[k++] = 0xC4; o[k++] = 0; o[k++] = 20;
        o[k++] = (uint8_t)(cls << 4);
        o[k++] = 1;
        for (int i = 1; i < 16; i++) o[k++] = 0;
        o[k++] = 0;
    }
    o[k++] = 0xFF; o[k++] = 0xDA; o[k++] = 0; o[k++] = 8; o[k++] = 1; o[k++] = 1; o[k++] = 0;
    if (sof == 0xC2) { o[k++] = 0; o[k++] = 0; o[k++] = 0; } /* DC first scan */
    else { o[k++] = 0; o[k++] = 63; o[k++] = 0; }
    for (int i = 0; i < 16; i++) o[k++] = 0;
    o[k++] = 0xFF; o[k++] = 0xD9;
    return k;
}

static void test_limits(imt_decoder *d)
{
    uint8_t b[256];
    char det[256];
    imt_luma L;
    imt_decode_limits lim = default_limits();
    size_t n = craft(b, 0xC0, 65500, 65500);
    CHECK(decode_buf(d, b, n, IMT_PDQ_COMPAT, &lim, &L, det, NULL) == IMT_E_TOO_LARGE);
    CHECK(strstr(det, "65500x65500") != NULL);
    CHECK(L.width == 65500 && L.height == 65500);
    CHECK(decode_buf(d, b, n, IMT_PDQ_FAST, &lim, &L, det, NULL) == IMT_E_TOO_LARGE);
    lim.max_dimension = 1000;
    n = craft(b, 0xC0, 1001, 8);
    CHECK(decode_buf(d, b, n, IMT_PDQ_FAST, &lim, &L, det, NULL) == IMT_E_TOO_LARGE);
    n = craft(b, 0xC0, 1000, 8);
    imt_err e = decode_buf(d, b, n, IMT_PDQ_COMPAT, &lim, &L, det, NULL);
    CHECKF(e == IMT_OK, "%s [%s]", imt_err_name(e), det);
    lim = default_limits();
    lim.max_pixels = 999999;
    n = craft(b, 0xC0, 1000, 1000);
    CHECK(decode_buf(d, b, n, IMT_PDQ_COMPAT, &lim, &L, det, NULL) == IMT_E_TOO_LARGE);
    CHECK(strstr(det, "999999") != NULL);

    /* With the pixel limits off, libjpeg's memory bound still refuses the
     * 8.6 GB coefficient buffer of a 65500x65500 progressive image (before
     * allocating it: this runs under ASan in CI). */
    lim.max_pixels = 0;
    lim.max_dimension = 0;
    n = craft(b, 0xC2, 65500, 65500);
    e = decode_buf(d, b, n, IMT_PDQ_FAST, &lim, &L, det, NULL);
    CHECKF(e == IMT_E_TOO_LARGE, "%s [%s]", imt_err_name(e), det);
    CHECK(strstr(det, "memory") != NULL);

    /* Deadline in the past. */
    const char *path = tu_shared("vectors/pdq/images/bridge-mods/aaa-orig.jpg");
    REQUIRE(path != NULL);
    size_t fn;
    uint8_t *buf = tu_read_file(path, &fn);
    REQUIRE(buf != NULL);
    lim = default_limits();
    lim.deadline_ms = 1;
    CHECK(decode_buf(d, buf, fn, IMT_PDQ_COMPAT, &lim, &L, det, NULL) == IMT_E_TIMEOUT);
    CHECK(strstr(det, "time") != NULL);
    CHECK(decode_buf(d, buf, fn, IMT_PDQ_FAST, &lim, &L, det, NULL) == IMT_E_TIMEOUT);
    /* and the same decoder is fine afterwards */
    lim.deadline_ms = 0;
    CHECK(decode_buf(d, buf, fn, IMT_PDQ_COMPAT, &lim, &L, det, NULL) == IMT_OK);
    CHECK(L.rows == 512 && L.cols == 512);
    free(buf);
}

/* ---- unsupported kinds ---------------------------------------------------- */
static void test_unsupported(imt_decoder *d)
{
    uint8_t b[256];
    char det[256];
    imt_luma L;
    imt_decode_limits lim = default_limits();
    size_t n = craft(b, 0xC3, 64, 64); /* lossless */
    CHECK(decode_buf(d, b, n, IMT_PDQ_COMPAT, &lim, &L, det, NULL) == IMT_E_UNSUPPORTED);
    CHECK(strstr(det, "libjpeg: ") == det);
    n = craft(b, 0xC0, 64, 64);
    b[4 + 67 + 4] = 12; /* SOF precision: 12-bit */
    CHECK(decode_buf(d, b, n, IMT_PDQ_FAST, &lim, &L, det, NULL) == IMT_E_UNSUPPORTED);
    CHECK(strstr(det, "12") != NULL);
}

/* ---- hostile corpora -------------------------------------------------------- */
static int is_jpeg_name(const char *s)
{
    size_t l = strlen(s);
    return (l > 4 && (!strcasecmp(s + l - 4, ".jpg") || !strcasecmp(s + l - 4, ".jpe"))) ||
           (l > 5 && !strcasecmp(s + l - 5, ".jpeg"));
}

static int run_dir(imt_decoder *d, const char *dir, int only_jpeg_names)
{
    DIR *dp = opendir(dir);
    if (!dp) return 0;
    struct dirent *de;
    int count = 0;
    char path[4096], det[256];
    imt_decode_limits lim = default_limits();
    while ((de = readdir(dp)) != NULL) {
        if (de->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (only_jpeg_names && !is_jpeg_name(de->d_name)) continue;
        size_t n;
        uint8_t *buf = tu_read_file(path, &n);
        if (!buf) continue; /* a directory */
        if (n >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF) {
            /* the outcome stock libjpeg gives under the decoder's spec; fast
             * mode must agree with it too (its DC-only early stop reads
             * less, but no file of these corpora decodes differently) */
            int partial = 0;
            imt_err want = oracle_outcome(buf, n, &partial);
            for (int mode = 0; mode < 2; mode++) {
                imt_luma L;
                imt_err e = decode_buf(d, buf, n, (imt_pdq_mode)mode, &lim, &L, det, NULL);
                CHECKF(e == want, "%s, mode %d: %s, libjpeg says %s [%s]", path, mode,
                       imt_err_name(e), imt_err_name(want), det);
                if (e == IMT_OK) {
                    CHECK(L.pix != NULL && L.rows > 0 && L.cols > 0);
                    if (L.partial) CHECK(strncmp(det, "libjpeg: ", 9) == 0);
                } else {
                    CHECKF(det[0] != '\0', "%s: empty detail", path);
                }
            }
            count++;
        }
        free(buf);
    }
    closedir(dp);
    return count;
}

static void test_corpora(imt_decoder *d)
{
    const char *a = tu_shared("corpus/malformed/jpeg_imagetestsuite/ImageTestSuite");
    const char *b = tu_shared("corpus/malformed/go_fuzz_corpus");
    const char *c = tu_shared("corpus/malformed/pillow");
    REQUIRE(a && b && c);
    int n = run_dir(d, a, 0);
    CHECKF(n >= 60, "only %d JPEGs in the image test suite", n);
    char sub[4096];
    snprintf(sub, sizeof sub, "%s/jpeg/corpus", b);
    n = run_dir(d, sub, 0);
    CHECKF(n >= 100, "only %d go-fuzz JPEG seeds under %s", n, sub);
    snprintf(sub, sizeof sub, "%s/images", c);
    n = run_dir(d, sub, 1);
    CHECKF(n >= 10, "only %d Pillow JPEGs", n);
}

/* ---- synthetic images through libjpeg's encoder ------------------------------ */
static int enc_optimize; /* optimised Huffman tables instead of the standard ones */

static uint8_t *encode(int w, int h, int comps, int progressive, int quality,
                       unsigned long *size)
{
    struct jpeg_compress_struct cc;
    struct jpeg_error_mgr je;
    cc.err = jpeg_std_error(&je);
    jpeg_create_compress(&cc);
    unsigned char *mem = NULL;
    jpeg_mem_dest(&cc, &mem, size);
    cc.image_width = (JDIMENSION)w;
    cc.image_height = (JDIMENSION)h;
    cc.input_components = comps;
    cc.in_color_space = comps == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&cc);
    jpeg_set_quality(&cc, quality, TRUE);
    if (progressive) jpeg_simple_progression(&cc);
    cc.optimize_coding = enc_optimize ? TRUE : FALSE;
    jpeg_start_compress(&cc, TRUE);
    uint8_t *row = malloc((size_t)w * (size_t)comps);
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            double dx = x - w / 2.0, dy = y - h / 3.0;
            int v = (int)(128 + 100 * sin(sqrt(dx * dx + dy * dy) / 40.0)) ^ ((x / 64 + y / 64) & 1 ? 0x20 : 0);
            for (int k = 0; k < comps; k++)
                row[(size_t)x * comps + k] = (uint8_t)(k == 0 ? v : k == 1 ? (x * 255) / w : (y * 255) / h);
        }
        JSAMPROW rp = row;
        jpeg_write_scanlines(&cc, &rp, 1);
    }
    jpeg_finish_compress(&cc);
    jpeg_destroy_compress(&cc);
    free(row);
    return mem;
}

static void test_progressive_early_stop(void)
{
    unsigned long nb = 0, np = 0;
    uint8_t *base = encode(3024, 3024, 3, 0, 90, &nb);
    uint8_t *prog = encode(3024, 3024, 3, 1, 90, &np);
    REQUIRE(base && prog);
    imt_decoder *d1 = NULL, *d2 = NULL;
    REQUIRE(imt__decoder_create(&d1) == IMT_OK);
    imt_decode_limits lim = default_limits();
    char det[256];
    imt_luma a, b, c;
    size_t used_b, used_p, used_full;
    REQUIRE(decode_buf(d1, base, nb, IMT_PDQ_FAST, &lim, &a, det, &used_b) == IMT_OK);
    size_t na = (size_t)a.rows * (size_t)a.cols;
    float *pa = malloc(na * sizeof *pa);
    REQUIRE(pa != NULL);
    memcpy(pa, a.pix, na * sizeof *pa);
    REQUIRE(decode_buf(d1, prog, np, IMT_PDQ_FAST, &lim, &b, det, &used_p) == IMT_OK);
    CHECK(!b.partial);
    /* 1/8 scale: the output is the DC of each block, the same coefficients
     * in both files, so the planes are identical. */
    CHECK(b.rows == a.rows && b.cols == a.cols);
    CHECK(a.rows == 378 && a.cols == 378); /* 1/8: 3024 / 8 = 378, the least short side */
    if (b.rows == a.rows && b.cols == a.cols)
        CHECK(memcmp(pa, b.pix, na * sizeof *pa) == 0);
    CHECK(used_b == nb);
    /* libjpeg's standard progression completes the DC (its refinement
     * scan) after about 60% of the bytes; the rest is never read. */
    CHECKF(used_p < np * 3 / 4, "early stop read %zu of %lu bytes", used_p, np);

    /* Without the early stop: the same plane, every byte read. */
    setenv("IMT_JPEG_FULL_SCANS", "1", 1);
    REQUIRE(imt__decoder_create(&d2) == IMT_OK);
    REQUIRE(decode_buf(d2, prog, np, IMT_PDQ_FAST, &lim, &c, det, &used_full) == IMT_OK);
    unsetenv("IMT_JPEG_FULL_SCANS");
    CHECK(used_full == np);
    if (c.rows == a.rows && c.cols == a.cols)
        CHECK(memcmp(pa, c.pix, na * sizeof *pa) == 0);
    else
        CHECK(0);

    /* A progressive file cut after its DC scans still gives that image. */
    REQUIRE(decode_buf(d1, prog, used_p + 1000 < np ? used_p + 1000 : np, IMT_PDQ_FAST, &lim,
                       &b, det, NULL) == IMT_OK);
    CHECK(memcmp(pa, b.pix, na * sizeof *pa) == 0);

    /* Grey JPEG: compat luma is the sample value. */
    unsigned long ng = 0;
    uint8_t *grey = encode(300, 200, 1, 0, 85, &ng);
    REQUIRE(decode_buf(d1, grey, ng, IMT_PDQ_COMPAT, &lim, &a, det, NULL) == IMT_OK);
    CHECK(a.rows == 200 && a.cols == 300);
    CHECK(all_integral(a.pix, (size_t)a.rows * (size_t)a.cols));

    free(pa);
    free(base);
    free(prog);
    free(grey);
    imt__decoder_free(d1);
    imt__decoder_free(d2);
}

/* ---- state between files ------------------------------------------------------
 * A Motion-JPEG frame carries no DHT: the decoder must use the standard
 * Huffman tables (JPEG Annex K), not the previous file's. The oracle is the
 * same frame with its tables, as libjpeg's encoder wrote them (it writes
 * the Annex K tables when not optimising), decoded by a fresh decoder. A
 * file without a DQT is corrupt, also after a file that had one. */
static size_t strip_marker(const uint8_t *in, size_t n, uint8_t marker, uint8_t *out)
{
    size_t i = 2, k = 2;
    memcpy(out, in, 2);
    while (i + 4 <= n && in[i] == 0xFF) {
        uint8_t m = in[i + 1];
        size_t len = 2 + ((size_t)in[i + 2] << 8 | in[i + 3]);
        if (m == 0xDA) break; /* SOS: the rest is scan data */
        if (m != marker) {
            memcpy(out + k, in + i, len);
            k += len;
        }
        i += len;
    }
    memcpy(out + k, in + i, n - i);
    return k + n - i;
}

static void test_state_between_files(void)
{
    unsigned long nf = 0, no = 0;
    uint8_t *frame = encode(320, 240, 3, 0, 85, &nf);
    enc_optimize = 1;
    uint8_t *other = encode(200, 300, 3, 0, 60, &no); /* its own, optimised tables */
    enc_optimize = 0;
    REQUIRE(frame && other);
    uint8_t *mjpg = malloc(nf), *nodqt = malloc(nf);
    REQUIRE(mjpg && nodqt);
    size_t nm = strip_marker(frame, nf, 0xC4, mjpg);
    size_t nq = strip_marker(frame, nf, 0xDB, nodqt);
    REQUIRE(nm < nf && nq < nf);
    imt_decode_limits lim = default_limits();
    char det[256];
    for (int mode = 0; mode < 2; mode++) {
        imt_decoder *fresh = NULL, *used = NULL;
        REQUIRE(imt__decoder_create(&fresh) == IMT_OK);
        REQUIRE(imt__decoder_create(&used) == IMT_OK);
        imt_luma a, b, c;
        REQUIRE(decode_buf(fresh, frame, nf, (imt_pdq_mode)mode, &lim, &a, det, NULL) == IMT_OK);
        size_t na = (size_t)a.rows * (size_t)a.cols;
        float *pa = malloc(na * sizeof *pa);
        REQUIRE(pa);
        memcpy(pa, a.pix, na * sizeof *pa);
        imt__decoder_free(fresh);
        REQUIRE(imt__decoder_create(&fresh) == IMT_OK);
        imt_err e = decode_buf(fresh, mjpg, nm, (imt_pdq_mode)mode, &lim, &b, det, NULL);
        CHECKF(e == IMT_OK && !b.partial, "mode %d: frame without DHT alone: %s [%s]", mode,
               imt_err_name(e), det);
        if (e == IMT_OK)
            CHECK(b.rows == a.rows && b.cols == a.cols && memcmp(pa, b.pix, na * sizeof *pa) == 0);
        REQUIRE(decode_buf(used, other, no, (imt_pdq_mode)mode, &lim, &c, det, NULL) == IMT_OK);
        e = decode_buf(used, mjpg, nm, (imt_pdq_mode)mode, &lim, &b, det, NULL);
        CHECKF(e == IMT_OK && !b.partial, "mode %d: frame without DHT after another JPEG: %s [%s]",
               mode, imt_err_name(e), det);
        if (e == IMT_OK)
            CHECKF(b.rows == a.rows && b.cols == a.cols &&
                       memcmp(pa, b.pix, na * sizeof *pa) == 0,
                   "mode %d: frame without DHT decoded with the previous file's tables", mode);
        /* no DQT: an error alone and after a file with quantisation tables */
        imt__decoder_free(fresh);
        REQUIRE(imt__decoder_create(&fresh) == IMT_OK);
        e = decode_buf(fresh, nodqt, nq, (imt_pdq_mode)mode, &lim, &b, det, NULL);
        CHECKF(e == IMT_E_CORRUPT && strstr(det, "Quantization table 0x00 was not defined"),
               "mode %d: no DQT alone: %s [%s]", mode, imt_err_name(e), det);
        REQUIRE(decode_buf(used, other, no, (imt_pdq_mode)mode, &lim, &c, det, NULL) == IMT_OK);
        e = decode_buf(used, nodqt, nq, (imt_pdq_mode)mode, &lim, &b, det, NULL);
        CHECKF(e == IMT_E_CORRUPT && strstr(det, "Quantization table 0x00 was not defined"),
               "mode %d: no DQT after another JPEG: %s [%s]", mode, imt_err_name(e), det);
        free(pa);
        imt__decoder_free(fresh);
        imt__decoder_free(used);
    }
    free(frame);
    free(other);
    free(mjpg);
    free(nodqt);
}

/* ---- thin images ------------------------------------------------------------
 * Issue 9 item 11: a 1xN JPEG was too-small in fast mode only. The
 * reference stretches an image with a side over 512 to 512x512 (CImg
 * resize), so a thin side does not matter then; with both sides at most
 * 512, a side under 5 is too small for PDQ in both modes. The expected
 * plane comes from libjpeg decoding the file with its defaults (what
 * ImageMagick does), resized by nearest neighbour here. */
static float *reference_plane(const uint8_t *p, size_t n, int *rows, int *cols)
{
    struct jpeg_decompress_struct d;
    struct jpeg_error_mgr je;
    d.err = jpeg_std_error(&je);
    jpeg_create_decompress(&d);
    jpeg_mem_src(&d, p, (unsigned long)n);
    REQUIRE(jpeg_read_header(&d, TRUE) == JPEG_HEADER_OK);
    jpeg_start_decompress(&d);
    int W = (int)d.output_width, H = (int)d.output_height, C = d.output_components;
    uint8_t *img = malloc((size_t)W * (size_t)H * (size_t)C);
    REQUIRE(img);
    while ((int)d.output_scanline < H) {
        JSAMPROW r = img + (size_t)d.output_scanline * (size_t)W * (size_t)C;
        jpeg_read_scanlines(&d, &r, 1);
    }
    jpeg_finish_decompress(&d);
    jpeg_destroy_decompress(&d);
    int big = W > 512 || H > 512;
    *cols = big ? 512 : W;
    *rows = big ? 512 : H;
    int grey = 1;
    for (size_t i = 0; C == 3 && i < (size_t)W * (size_t)H; i++)
        if (img[3 * i] != img[3 * i + 1] || img[3 * i + 1] != img[3 * i + 2]) grey = 0;
    float *out = malloc((size_t)*rows * (size_t)*cols * sizeof *out);
    REQUIRE(out);
    for (int y = 0; y < *rows; y++)
        for (int x = 0; x < *cols; x++) {
            size_t sy = (size_t)y * (size_t)H / (size_t)*rows, sx = (size_t)x * (size_t)W / (size_t)*cols;
            const uint8_t *px = img + (sy * (size_t)W + sx) * (size_t)C;
            out[(size_t)y * (size_t)*cols + (size_t)x] =
                C == 1 || grey ? (float)px[0]
                               : 0.299f * px[0] + 0.587f * px[1] + 0.114f * px[2];
        }
    free(img);
    return out;
}

static void test_thin_images(void)
{
    static const struct {
        int w, h, comps;
        imt_err want;
    } cases[] = {
        {1, 600, 1, IMT_OK}, {3, 700, 3, IMT_OK}, {700, 2, 3, IMT_OK}, {4, 513, 1, IMT_OK},
        {1, 300, 1, IMT_E_TOO_SMALL}, {512, 4, 3, IMT_E_TOO_SMALL},
    };
    imt_hasher *h[2];
    for (int m = 0; m < 2; m++) {
        imt_hash_opts o;
        imt_hash_opts_init(&o);
        o.mode = (imt_pdq_mode)m;
        REQUIRE(imt_hasher_create(&h[m], &o) == IMT_OK);
    }
    imt_decoder *d = NULL;
    REQUIRE(imt__decoder_create(&d) == IMT_OK);
    imt_decode_limits lim = default_limits();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned long n = 0;
        uint8_t *p = encode(cases[i].w, cases[i].h, cases[i].comps, 0, 90, &n);
        REQUIRE(p);
        imt_hash_result r[2];
        for (int m = 0; m < 2; m++) {
            imt_hash_memory(h[m], p, n, &r[m]);
            CHECKF(r[m].status == cases[i].want, "%dx%d, mode %d: %s, want %s", cases[i].w,
                   cases[i].h, m, imt_err_name(r[m].status), imt_err_name(cases[i].want));
        }
        if (cases[i].want == IMT_OK)
            CHECKF(r[0].status == IMT_OK && r[1].status == IMT_OK &&
                       memcmp(r[0].pdq, r[1].pdq, sizeof r[0].pdq[0]) == 0 &&
                       r[0].quality == r[1].quality,
                   "%dx%d: fast and compat hash differ", cases[i].w, cases[i].h);
        int rows, cols;
        float *want = reference_plane(p, n, &rows, &cols);
        for (int m = 0; m < 2; m++) {
            imt_luma L;
            char det[256];
            REQUIRE(decode_buf(d, p, n, (imt_pdq_mode)m, &lim, &L, det, NULL) == IMT_OK);
            if (cases[i].want == IMT_OK || m == 1)
                CHECKF(L.rows == rows && L.cols == cols &&
                           memcmp(L.pix, want, (size_t)rows * (size_t)cols * sizeof *want) == 0,
                       "%dx%d mode %d: plane %dx%d differs from libjpeg's, resized %dx%d",
                       cases[i].w, cases[i].h, m, L.rows, L.cols, rows, cols);
        }
        free(want);
        free(p);
    }
    imt__decoder_free(d);
    imt_hasher_free(h[0]);
    imt_hasher_free(h[1]);
}

/* ---- allocation failures ------------------------------------------------------ */
static long fail_after = -1, n_alloc = 0;
static void *t_malloc(void *o, size_t s)
{
    (void)o;
    if (fail_after >= 0 && n_alloc++ >= fail_after) return NULL;
    return malloc(s);
}
static void *t_realloc(void *o, void *p, size_t s)
{
    (void)o;
    if (fail_after >= 0 && n_alloc++ >= fail_after) return NULL;
    return realloc(p, s);
}
static void t_free(void *o, void *p)
{
    (void)o;
    free(p);
}

static void test_alloc_failures(void)
{
    const char *path = tu_shared("vectors/pdq/images/misc-images/wee.jpg");
    REQUIRE(path != NULL);
    size_t n;
    uint8_t *buf = tu_read_file(path, &n);
    REQUIRE(buf != NULL);
    imt_allocator al = {t_malloc, t_realloc, t_free, NULL};
    REQUIRE(imt_set_allocator(&al) == IMT_OK);
    int ok = 0;
    for (long k = 0; k < 40 && !ok; k++) {
        for (int mode = 0; mode < 2; mode++) {
            fail_after = k;
            n_alloc = 0;
            imt_decoder *d = NULL;
            imt_err e = imt__decoder_create(&d);
            if (e == IMT_OK) {
                imt_luma L;
                char det[256];
                imt_decode_limits lim = default_limits();
                e = decode_buf(d, buf, n, (imt_pdq_mode)mode, &lim, &L, det, NULL);
                CHECKF(e == IMT_OK || e == IMT_E_NOMEM, "fail at %ld: %s", k, imt_err_name(e));
                if (e == IMT_OK && mode == 1) ok = 1;
                imt__decoder_free(d);
            } else {
                CHECK(e == IMT_E_NOMEM);
            }
        }
    }
    fail_after = -1;
    CHECK(ok);
    imt_set_allocator(NULL);
    free(buf);
}

int main(void)
{
    if (!tu_shared("vectors/pdq/images")) return tu_skip("../shared/vectors absent");
    imt_decoder *d = NULL;
    REQUIRE(imt__decoder_create(&d) == IMT_OK);
    test_vectors(d);
    test_truncation(d, "vectors/pdq/images/bridge-mods/aaa-orig.jpg");
    test_truncation(d, "vectors/pdq/images/misc-images/small.jpg");
    CHECK(g_trunc_corrupt > 0);
    test_limits(d);
    test_unsupported(d);
    test_corpora(d);
    /* After all of that, one decoder still decodes exactly what a fresh one does. */
    {
        imt_decoder *f = NULL;
        REQUIRE(imt__decoder_create(&f) == IMT_OK);
        const char *path = tu_shared("vectors/pdq/images/misc-images/modes/CMYK.jpg");
        size_t n;
        uint8_t *buf = tu_read_file(path, &n);
        REQUIRE(buf != NULL);
        imt_decode_limits lim = default_limits();
        char det[256];
        imt_luma a, b;
        REQUIRE(decode_buf(d, buf, n, IMT_PDQ_COMPAT, &lim, &a, det, NULL) == IMT_OK);
        REQUIRE(decode_buf(f, buf, n, IMT_PDQ_COMPAT, &lim, &b, det, NULL) == IMT_OK);
        CHECK(a.rows == b.rows && a.cols == b.cols &&
              memcmp(a.pix, b.pix, (size_t)a.rows * (size_t)a.cols * sizeof(float)) == 0);
        free(buf);
        imt__decoder_free(f);
    }
    imt__decoder_free(d);
    test_progressive_early_stop();
    test_state_between_files();
    test_thin_images();
    test_alloc_failures();
    return tu_done("test_decode_jpeg");
}
