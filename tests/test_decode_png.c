/* tests/test_decode_png.c -- the PNG decoder (engine/decode/png.c).
 *
 * Golden values come from outside our code: the reference hasher's CSV for
 * the vector PNGs, PngSuite's own naming for its broken files, and planes
 * computed here from pixels the test itself wrote with libpng. */
#include "decode/decode.h"
#include "hash/hash.h"
#include "testutil.h"

#include <dirent.h>
#include <png.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- a memory reader delivering chunks of a chosen size ------------------ */
typedef struct memsrc {
    const uint8_t *d;
    size_t n, pos, step;
    imt_err fail_at_end; /* returned instead of EOF when set */
} memsrc;

static imt_err mem_pull(void *ctx, const uint8_t **data, size_t *len)
{
    memsrc *m = ctx;
    size_t k = m->n - m->pos;
    if (k == 0 && m->fail_at_end) return m->fail_at_end;
    if (k > m->step) k = m->step;
    *data = m->d + m->pos;
    *len = k;
    m->pos += k;
    return IMT_OK;
}

static imt_decode_limits default_limits(void)
{
    imt_decode_limits l = {(uint64_t)1 << 30, 100000, 0};
    return l;
}

/* Decode with a fresh decoder; the plane is copied into *plane (malloc). */
static imt_err decode(const uint8_t *d, size_t n, size_t step, imt_pdq_mode mode,
                      const imt_decode_limits *lim, imt_luma *out, float **plane,
                      char *detail, size_t cap)
{
    imt_decoder *dec = NULL;
    if (imt__decoder_create(&dec) != IMT_OK) return IMT_E_NOMEM;
    memsrc m = {d, n, 0, step, IMT_OK};
    imt_reader r = {mem_pull, &m};
    detail[0] = '\0';
    imt_err e = imt__decode_luma(dec, IMT_FMT_PNG, &r, mode, lim, out, detail, cap);
    if (plane) {
        *plane = NULL;
        if (e == IMT_OK) {
            size_t k = (size_t)out->rows * (size_t)out->cols;
            *plane = malloc(k * sizeof(float));
            memcpy(*plane, out->pix, k * sizeof(float));
        }
    }
    imt__decoder_free(dec);
    return e;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- PNG writing: libpng for real content, a tiny deflater for zeros ----- */
typedef struct buf {
    uint8_t *d;
    size_t n, cap;
} buf;

static void buf_put(buf *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 4096;
        b->d = realloc(b->d, b->cap);
        REQUIRE(b->d != NULL);
    }
    memcpy(b->d + b->n, p, n);
    b->n += n;
}

static void png_write_buf(png_structp png, png_bytep data, size_t len)
{
    buf_put(png_get_io_ptr(png), data, len);
}
static void png_flush_buf(png_structp png) { (void)png; }

/* Encode w x h pixels (bytes per row = rowbytes, already packed for the bit
 * depth) as a PNG in memory. pal: n_pal RGB entries for palette images. */
static buf write_png(uint32_t w, uint32_t h, int depth, int ctype, int interlace,
                     const uint8_t *pixels, size_t rowbytes, const png_color *pal,
                     int n_pal, double gamma)
{
    buf b = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    REQUIRE(png && info);
    if (setjmp(png_jmpbuf(png))) REQUIRE(!"libpng write failed");
    png_set_write_fn(png, &b, png_write_buf, png_flush_buf);
    png_set_IHDR(png, info, w, h, depth, ctype,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (pal) png_set_PLTE(png, info, pal, n_pal);
    if (gamma > 0) png_set_gAMA(png, info, gamma);
    png_set_compression_level(png, 1);
    png_write_info(png, info);
    if (depth == 16) png_set_swap(png); /* our 16-bit test samples are little-endian */
    int passes = png_set_interlace_handling(png);
    for (int p = 0; p < passes; p++)
        for (uint32_t y = 0; y < h; y++)
            png_write_row(png, pixels + (size_t)y * rowbytes);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return b;
}

static uint32_t crc_table[256];
static uint32_t crc32_of(const uint8_t *p, size_t n)
{
    if (!crc_table[1])
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
            crc_table[i] = c;
        }
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) c = crc_table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

static void put_be32(buf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    buf_put(b, x, 4);
}

static void put_chunk(buf *b, const char *type, const uint8_t *data, uint32_t len)
{
    put_be32(b, len);
    size_t start = b->n;
    buf_put(b, type, 4);
    if (len) buf_put(b, data, len);
    put_be32(b, crc32_of(b->d + start, 4 + (size_t)len));
}

static void put_ihdr(buf *b, uint32_t w, uint32_t h, int depth, int ctype, int interlace)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    buf_put(b, sig, 8);
    uint8_t ihdr[13] = {(uint8_t)(w >> 24), (uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w,
                        (uint8_t)(h >> 24), (uint8_t)(h >> 16), (uint8_t)(h >> 8), (uint8_t)h,
                        (uint8_t)depth, (uint8_t)ctype, 0, 0, (uint8_t)interlace};
    put_chunk(b, "IHDR", ihdr, 13);
}

/* A zlib stream of n zero bytes, by hand: one fixed-Huffman block of a
 * literal 0 and (length 258, distance 1) copies, about 1:159. */
typedef struct bits {
    buf *b;
    uint32_t acc;
    int nb;
} bits;

static void bits_put(bits *w, uint32_t v, int n)
{
    w->acc |= v << w->nb;
    w->nb += n;
    while (w->nb >= 8) {
        uint8_t byte = (uint8_t)w->acc;
        buf_put(w->b, &byte, 1);
        w->acc >>= 8;
        w->nb -= 8;
    }
}

static void bits_huff(bits *w, uint32_t code, int len) /* Huffman codes go MSB first */
{
    uint32_t r = 0;
    for (int i = 0; i < len; i++) r |= ((code >> i) & 1u) << (len - 1 - i);
    bits_put(w, r, len);
}

static void zlib_zeros(buf *b, uint64_t n)
{
    uint8_t hdr[2] = {0x78, 0x01};
    buf_put(b, hdr, 2);
    bits w = {b, 0, 0};
    bits_put(&w, 1, 1); /* BFINAL */
    bits_put(&w, 1, 2); /* fixed Huffman */
    uint64_t left = n;
    if (left) {
        bits_huff(&w, 0x30, 8); /* literal 0 */
        left--;
    }
    while (left >= 258) {
        bits_huff(&w, 0xc5, 8); /* length 258: symbol 285 */
        bits_huff(&w, 0, 5);    /* distance 1 */
        left -= 258;
    }
    while (left--) bits_huff(&w, 0x30, 8);
    bits_huff(&w, 0, 7); /* end of block */
    if (w.nb) bits_put(&w, 0, 8 - w.nb);
    put_be32(b, (uint32_t)((n % 65521u) << 16 | 1u)); /* Adler-32 of zeros */
}

/* An all-black 8-bit grey PNG of w x h, its zlib stream followed by extra
 * zero bytes (an IDAT that inflates past the image). */
static buf zero_png(uint32_t w, uint32_t h, int interlace, uint64_t extra)
{
    buf b = {0}, z = {0};
    put_ihdr(&b, w, h, 8, 0, interlace);
    uint64_t n = 0;
    if (!interlace) n = (uint64_t)h * (1 + (uint64_t)w);
    else
        for (int p = 0; p < 7; p++) {
            uint64_t c = PNG_PASS_COLS(w, p), r = PNG_PASS_ROWS(h, p);
            if (c && r) n += r * (1 + c);
        }
    zlib_zeros(&z, n + extra);
    for (size_t off = 0; off < z.n; off += 1u << 20) {
        size_t k = z.n - off < (1u << 20) ? z.n - off : (1u << 20);
        put_chunk(&b, "IDAT", z.d + off, (uint32_t)k);
    }
    put_chunk(&b, "IEND", NULL, 0);
    free(z.d);
    return b;
}

/* ---- counting allocator ---------------------------------------------------- */
static long alloc_live, alloc_count, alloc_fail_at = -1;
static size_t alloc_bytes, alloc_peak;

static void *cnt_malloc(void *o, size_t n)
{
    (void)o;
    if (alloc_fail_at >= 0 && alloc_count++ == alloc_fail_at) return NULL;
    size_t *p = malloc(n + 16);
    if (!p) return NULL;
    p[0] = n;
    alloc_live++;
    alloc_bytes += n;
    if (alloc_bytes > alloc_peak) alloc_peak = alloc_bytes;
    return (char *)p + 16;
}
static void cnt_free(void *o, void *q)
{
    (void)o;
    if (!q) return;
    size_t *p = (size_t *)((char *)q - 16);
    alloc_live--;
    alloc_bytes -= p[0];
    free(p);
}
static void *cnt_realloc(void *o, void *q, size_t n)
{
    if (!q) return cnt_malloc(o, n);
    void *r = cnt_malloc(o, n);
    if (!r) return NULL;
    size_t old = ((size_t *)((char *)q - 16))[0];
    memcpy(r, q, old < n ? old : n);
    cnt_free(o, q);
    return r;
}
static const imt_allocator counting = {cnt_malloc, cnt_realloc, cnt_free, NULL};

/* ---- tests ------------------------------------------------------------------ */

/* The vector PNGs: both modes give the reference's plane, so the hash must be
 * the reference hasher's own output (observed CSV), bit for bit. */
static void test_vectors(void)
{
    static const struct {
        const char *path;
        uint32_t w, h;
    } v[] = {
        {"misc-images/c.png", 1432, 812},
        {"misc-images/modes/1.png", 1600, 1004},
        {"misc-images/modes/L.png", 1600, 1004},
        {"misc-images/modes/LA.png", 1600, 1004},
        {"misc-images/modes/P.png", 1600, 1004},
        {"misc-images/modes/RGBA.png", 1600, 1004},
        {"reg-test-input/pen-and-coaster.png", 924, 735},
    };
    const char *csv = tu_shared("vectors/pdq/observed/cpp-shipped-imagemagick.csv");
    REQUIRE(csv != NULL);
    size_t csv_len;
    char *ref = (char *)tu_read_file(csv, &csv_len);
    REQUIRE(ref != NULL);
    ref = realloc(ref, csv_len + 1);
    ref[csv_len] = '\0';
    imt_pdq_ctx *pc = NULL;
    REQUIRE(imt__pdq_ctx_create(&pc) == IMT_OK);
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char rel[256];
        snprintf(rel, sizeof rel, "vectors/pdq/images/%s", v[i].path);
        const char *p = tu_shared(rel);
        CHECKF(p != NULL, "%s missing", rel);
        if (!p) continue;
        size_t n;
        uint8_t *d = tu_read_file(p, &n);
        REQUIRE(d != NULL);
        /* the reference line: HASH,QUALITY,PATH */
        char want[IMT_PDQ_HEX_LEN + 1] = "";
        int want_q = -1;
        for (char *line = ref; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
            char *c1 = strchr(line, ','), *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
            size_t plen = strlen(v[i].path);
            if (c2 && strncmp(c2 + 1, v[i].path, plen) == 0 &&
                (c2[1 + plen] == '\n' || c2[1 + plen] == '\0')) {
                memcpy(want, line, IMT_PDQ_HEX_LEN);
                want_q = atoi(c1 + 1);
            }
        }
        CHECKF(want[0], "%s not in the reference CSV", v[i].path);
        for (int mode = 0; mode < 2; mode++) {
            imt_luma out;
            char det[256];
            imt_decode_limits lim = default_limits();
            float *plane = NULL;
            imt_err e = decode(d, n, mode ? 4096 : 65536, (imt_pdq_mode)mode, &lim, &out, &plane,
                               det, sizeof det);
            CHECKF(e == IMT_OK, "%s mode %d: %s (%s)", v[i].path, mode, imt_err_name(e), det);
            if (e != IMT_OK) continue;
            CHECK(out.width == v[i].w && out.height == v[i].h);
            CHECK(out.rows == 512 && out.cols == 512);
            CHECK(out.partial == 0);
            imt_pdq h[IMT_DIH__COUNT];
            int q = -1;
            REQUIRE(imt__pdq_hash_luma(pc, plane, out.rows, out.cols, 0, h, &q) == IMT_OK);
            char hex[IMT_PDQ_HEX_LEN + 1];
            imt_pdq_to_hex(&h[0], hex);
            CHECKF(strcmp(hex, want) == 0 && q == want_q, "%s mode %d: %s,%d, reference %s,%d",
                   v[i].path, mode, hex, q, want, want_q);
            free(plane);
        }
        free(d);
    }
    imt__pdq_ctx_free(pc);
    free(ref);
}

/* PngSuite's deliberately broken files and the error each must give. */
static const struct {
    const char *name;
    imt_err err;
    const char *detail; /* a substring of the detail */
} pngsuite_bad[] = {
    {"xc1n0g08.png", IMT_E_CORRUPT, "Invalid color type"},
    {"xc9n2c08.png", IMT_E_CORRUPT, "Invalid color type"},
    {"xcrn0g04.png", IMT_E_CORRUPT, "corrupted by ASCII conversion"},
    {"xcsn0g01.png", IMT_E_CORRUPT, "IDAT: CRC error"},
    {"xd0n2c08.png", IMT_E_CORRUPT, "Invalid bit depth"},
    {"xd3n2c08.png", IMT_E_CORRUPT, "Invalid bit depth"},
    {"xd9n2c08.png", IMT_E_CORRUPT, "Invalid bit depth"},
    {"xdtn0g01.png", IMT_E_CORRUPT, "IEND: out of place"}, /* no IDAT at all */
    {"xhdn0g08.png", IMT_E_CORRUPT, "IHDR: CRC error"},
    {"xlfn0g04.png", IMT_E_CORRUPT, "corrupted by ASCII conversion"},
    {"xs1n0g01.png", IMT_E_CORRUPT, "Not a PNG file"},
    {"xs2n0g01.png", IMT_E_CORRUPT, "Not a PNG file"},
    {"xs4n0g01.png", IMT_E_CORRUPT, "Not a PNG file"},
    {"xs7n0g01.png", IMT_E_CORRUPT, "corrupted by ASCII conversion"},
};

static void test_pngsuite(const char dir[2048])
{
    DIR *dd = opendir(dir);
    REQUIRE(dd != NULL);
    struct dirent *de;
    int good = 0, bad = 0;
    while ((de = readdir(dd)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l < 5 || strcmp(de->d_name + l - 4, ".png") != 0) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        size_t n;
        uint8_t *d = tu_read_file(path, &n);
        REQUIRE(d != NULL);
        for (int mode = 0; mode < 2; mode++) {
            imt_luma out;
            char det[256];
            imt_decode_limits lim = default_limits();
            imt_err e = decode(d, n, mode ? 1 : 7, (imt_pdq_mode)mode, &lim, &out, NULL, det,
                               sizeof det);
            if (de->d_name[0] == 'x') {
                size_t k = 0;
                while (k < sizeof pngsuite_bad / sizeof pngsuite_bad[0] &&
                       strcmp(pngsuite_bad[k].name, de->d_name) != 0)
                    k++;
                CHECKF(k < sizeof pngsuite_bad / sizeof pngsuite_bad[0], "%s not in the table",
                       de->d_name);
                if (k == sizeof pngsuite_bad / sizeof pngsuite_bad[0]) continue;
                CHECKF(e == pngsuite_bad[k].err && strstr(det, pngsuite_bad[k].detail) &&
                           strncmp(det, "libpng: ", 8) == 0,
                       "%s: %s (%s)", de->d_name, imt_err_name(e), det);
                bad += mode == 0;
            } else {
                CHECKF(e == IMT_OK, "%s: %s (%s)", de->d_name, imt_err_name(e), det);
                CHECK(out.width == be32(d + 16) && out.height == be32(d + 20));
                CHECK(out.cols == (int)out.width && out.rows == (int)out.height); /* all <= 512 */
                good += mode == 0;
            }
        }
        free(d);
    }
    closedir(dd);
    CHECKF(good == 161 && bad == 14, "PngSuite: %d good, %d bad files", good, bad);
}

/* Interlaced and plain encodings of the same pixels give the same plane. */
static void test_pngsuite_interlace(const char dir[2048])
{
    static const char *pairs[] = {
        "0g01", "0g02", "0g04", "0g08", "0g16", "2c08", "2c16", "3p01",
        "3p02", "3p04", "3p08", "4a08", "4a16", "6a08", "6a16"};
    static const char *sizes[] = {"s01", "s02", "s03", "s04", "s05", "s06", "s07", "s08",
                                  "s09", "s32", "s33", "s34", "s35", "s36", "s37", "s38",
                                  "s39", "s40"};
    static const char *sfx[] = {"3p01", "3p01", "3p01", "3p01", "3p02", "3p02", "3p02", "3p02",
                                "3p02", "3p04", "3p04", "3p04", "3p04", "3p04", "3p04", "3p04",
                                "3p04", "3p04"};
    int n_pairs = 0;
    for (size_t i = 0; i < 15 + 18; i++) {
        char a[4096], b[4096];
        if (i < 15) {
            snprintf(a, sizeof a, "%s/basi%s.png", dir, pairs[i]);
            snprintf(b, sizeof b, "%s/basn%s.png", dir, pairs[i]);
        } else {
            snprintf(a, sizeof a, "%s/%si%s.png", dir, sizes[i - 15], sfx[i - 15]);
            snprintf(b, sizeof b, "%s/%sn%s.png", dir, sizes[i - 15], sfx[i - 15]);
        }
        size_t na, nb;
        uint8_t *da = tu_read_file(a, &na), *db = tu_read_file(b, &nb);
        CHECKF(da && db, "%s / %s missing", a, b);
        for (int mode = 0; da && db && mode < 2; mode++) {
            imt_luma oa, ob;
            float *pa, *pb;
            char det[256];
            imt_decode_limits lim = default_limits();
            imt_err ea = decode(da, na, 4096, (imt_pdq_mode)mode, &lim, &oa, &pa, det, sizeof det);
            imt_err eb = decode(db, nb, 4096, (imt_pdq_mode)mode, &lim, &ob, &pb, det, sizeof det);
            CHECK(ea == IMT_OK && eb == IMT_OK);
            if (ea == IMT_OK && eb == IMT_OK) {
                CHECK(oa.rows == ob.rows && oa.cols == ob.cols);
                CHECKF(memcmp(pa, pb, (size_t)oa.rows * (size_t)oa.cols * sizeof(float)) == 0,
                       "%s differs from %s", a, b);
                n_pairs += mode == 0;
            }
            free(pa);
            free(pb);
        }
        free(da);
        free(db);
    }
    CHECK(n_pairs == 33);
}

/* Pixels we write ourselves, in every colour model, interlaced or not, at
 * sizes that shrink, stretch or keep each axis: the plane must be the
 * reference's (nearest-neighbour map, float luma or the grey value). */
static uint32_t rng_state = 12345;
static uint32_t rnd(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return rng_state >> 8;
}

static void test_generated(void)
{
    static const uint32_t dims[][2] = {{700, 300}, {300, 700}, {1030, 9}, {9, 1030},
                                       {513, 513}, {37, 41},   {512, 512}, {5, 5}};
    /* ctype, depth */
    static const int models[][2] = {{0, 1}, {0, 2}, {0, 4}, {0, 8}, {0, 16}, {2, 8}, {2, 16},
                                     {3, 1}, {3, 2}, {3, 4}, {3, 8}, {4, 8}, {4, 16}, {6, 8},
                                     {6, 16}};
    for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++) {
        for (size_t mi = 0; mi < sizeof models / sizeof models[0]; mi++) {
            uint32_t w = dims[di][0], h = dims[di][1];
            int ct = models[mi][0], depth = models[mi][1];
            int chans = ct == 0 ? 1 : ct == 2 ? 3 : ct == 3 ? 1 : ct == 4 ? 2 : 4;
            size_t rowbytes = ((size_t)w * (size_t)chans * (size_t)depth + 7) / 8;
            uint8_t *px = calloc((size_t)h, rowbytes);
            uint8_t *rgb = malloc((size_t)w * h * 3); /* expected 8-bit RGB (or grey in [0]) */
            png_color pal[256];
            int npal = 1 << (depth < 8 ? depth : 8);
            for (int k = 0; k < npal; k++) {
                pal[k].red = (png_byte)rnd();
                pal[k].green = (png_byte)rnd();
                pal[k].blue = (png_byte)rnd();
            }
            for (uint32_t y = 0; y < h; y++)
                for (uint32_t x = 0; x < w; x++) {
                    uint8_t *o = rgb + ((size_t)y * w + x) * 3;
                    uint8_t *row = px + (size_t)y * rowbytes;
                    if (depth < 8) {
                        unsigned v = rnd() & ((1u << depth) - 1);
                        size_t bit = (size_t)x * (size_t)depth;
                        row[bit / 8] |= (uint8_t)(v << (8 - depth - bit % 8));
                        if (ct == 3) {
                            o[0] = pal[v].red, o[1] = pal[v].green, o[2] = pal[v].blue;
                        } else {
                            o[0] = o[1] = o[2] = (uint8_t)(v * (255u / ((1u << depth) - 1)));
                        }
                        continue;
                    }
                    for (int c = 0; c < chans; c++) {
                        unsigned v = rnd() & (depth == 16 ? 0xffffu : 0xffu);
                        if (depth == 16) {
                            row[((size_t)x * chans + c) * 2] = (uint8_t)v; /* swapped on write */
                            row[((size_t)x * chans + c) * 2 + 1] = (uint8_t)(v >> 8);
                        } else {
                            row[(size_t)x * chans + c] = (uint8_t)v;
                        }
                        uint8_t v8 = (uint8_t)(depth == 16 ? v / 257u : v);
                        if (ct == 3) {
                            o[0] = pal[v8].red, o[1] = pal[v8].green, o[2] = pal[v8].blue;
                        } else if (c < 3 && (ct == 2 || ct == 6)) {
                            o[c] = v8;
                        } else if (c == 0) {
                            o[0] = o[1] = o[2] = v8;
                        }
                    }
                }
            int grey = ct == 0 || ct == 4;
            int oc = (w > 512 || h > 512) ? 512 : (int)w, orr = (w > 512 || h > 512) ? 512 : (int)h;
            float *want = malloc((size_t)oc * orr * sizeof(float));
            for (int i = 0; i < orr; i++)
                for (int j = 0; j < oc; j++) {
                    uint32_t sy = (uint32_t)((uint64_t)i * h / (uint64_t)orr),
                             sx = (uint32_t)((uint64_t)j * w / (uint64_t)oc);
                    const uint8_t *p = rgb + ((size_t)sy * w + sx) * 3;
                    want[(size_t)i * oc + j] =
                        grey ? (float)p[0] : 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2];
                }
            for (int il = 0; il < 2; il++) {
                buf b = write_png(w, h, depth, ct, il, px, rowbytes, ct == 3 ? pal : NULL, npal, 0);
                for (int mode = 0; mode < 2; mode++) {
                    imt_luma out;
                    float *plane;
                    char det[256];
                    imt_decode_limits lim = default_limits();
                    imt_err e = decode(b.d, b.n, 1000 + di * 7, (imt_pdq_mode)mode, &lim, &out,
                                       &plane, det, sizeof det);
                    CHECKF(e == IMT_OK, "%ux%u ct %d depth %d il %d: %s (%s)", w, h, ct, depth, il,
                           imt_err_name(e), det);
                    if (e != IMT_OK) continue;
                    CHECK(out.rows == orr && out.cols == oc);
                    CHECKF(memcmp(plane, want, (size_t)oc * orr * sizeof(float)) == 0,
                           "%ux%u ct %d depth %d interlace %d mode %d: plane differs", w, h, ct,
                           depth, il, mode);
                    free(plane);
                }
                free(b.d);
            }
            free(want);
            free(px);
            free(rgb);
        }
    }
}

/* All pixels grey in an RGB PNG: ImageMagick writes a PGM, so the plane is
 * the grey value, not the float luma of (v, v, v). A gamma of 1.0 makes a
 * colour PNG linear RGB, written to the PPM converted to sRGB, but an all-grey
 * one keeps its values. */
static void test_grey_rgb_and_gamma(void)
{
    uint32_t w = 16, h = 16;
    uint8_t px[16 * 16 * 3];
    for (int i = 0; i < 16 * 16; i++) px[3 * i] = px[3 * i + 1] = px[3 * i + 2] = (uint8_t)(i * 7);
    for (int g = 0; g < 2; g++) {
        buf b = write_png(w, h, 8, 2, 0, px, 48, NULL, 0, g ? 1.0 : 0);
        imt_luma out;
        float *plane;
        char det[256];
        imt_decode_limits lim = default_limits();
        REQUIRE(decode(b.d, b.n, 4096, IMT_PDQ_COMPAT, &lim, &out, &plane, det, sizeof det) ==
                IMT_OK);
        int ok = 1;
        for (int i = 0; i < 256; i++) ok &= plane[i] == (float)(uint8_t)(i * 7);
        CHECKF(ok, "all-grey RGB (gamma %d) is not read as grey values", g);
        free(plane);
        free(b.d);
    }
    /* one red pixel makes it colour; with gamma 1.0 the others get the sRGB
     * curve: 126 (linear) is 187 in sRGB, 1.055*(126/255)^(1/2.4)-0.055 */
    px[0] = 255;
    px[1] = px[2] = 0;
    buf b = write_png(w, h, 8, 2, 0, px, 48, NULL, 0, 1.0);
    imt_luma out;
    float *plane;
    char det[256];
    imt_decode_limits lim = default_limits();
    REQUIRE(decode(b.d, b.n, 4096, IMT_PDQ_COMPAT, &lim, &out, &plane, det, sizeof det) == IMT_OK);
    float want = 0.299f * 187 + 0.587f * 187 + 0.114f * 187; /* pixel 18 = 126 */
    CHECKF(plane[18] == want, "gamma 1.0: %g, want %g", plane[18], want);
    CHECK(plane[0] == 0.299f * 255 + 0.587f * 0 + 0.114f * 0); /* 255 stays 255 */
    free(plane);
    free(b.d);
}

/* The outcome stock libpng's simplified API gives for a PNG: an image, or
 * an error that is truncated when libpng ran out of data, else corrupt;
 * over the default limits, too-large. */
static imt_err png_oracle(const uint8_t *d, size_t n)
{
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    imt_err r = IMT_OK;
    if (!png_image_begin_read_from_memory(&im, d, n)) goto fail;
    if (im.width > 100000 || im.height > 100000 ||
        (uint64_t)im.width * im.height > ((uint64_t)1 << 30)) {
        png_image_free(&im);
        return IMT_E_TOO_LARGE;
    }
    im.format = PNG_FORMAT_RGB;
    {
        size_t sz = PNG_IMAGE_SIZE(im);
        void *px = malloc(sz ? sz : 1);
        REQUIRE(px);
        int ok = png_image_finish_read(&im, NULL, px, 0, NULL);
        free(px);
        if (!ok) goto fail;
    }
    png_image_free(&im);
    /* The simplified API stops after the image; ImageMagick (and so the
     * decoder, README) also reads the trailing chunks: no IEND, truncated. */
    if (!memmem(d, n, "\0\0\0\0IEND\xae\x42\x60\x82", 12)) return IMT_E_TRUNCATED;
    return r;
fail:
    r = strstr(im.message, "end of data") || strstr(im.message, "Read Error")
            ? IMT_E_TRUNCATED : IMT_E_CORRUPT;
    png_image_free(&im);
    return r;
}

/* Every PNG of the hostile corpora decodes or gives a named error, with a
 * detail; never a crash (this runs under ASan+UBSan too). */
static int walk(const char *dir, int *n_ok, int *n_err)
{
    DIR *dd = opendir(dir);
    if (!dd) return 0;
    struct dirent *de;
    int files = 0;
    while ((de = readdir(dd)) != NULL) {
        if (de->d_name[0] == '.') continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        struct stat st;
        if (lstat(path, &st) != 0) continue;
        if (S_ISDIR(st.st_mode)) {
            files += walk(path, n_ok, n_err);
            continue;
        }
        size_t l = strlen(de->d_name);
        if (!S_ISREG(st.st_mode) || l < 5 || strcmp(de->d_name + l - 4, ".png") != 0) continue;
        size_t n;
        uint8_t *d = tu_read_file(path, &n);
        if (!d) continue;
        files++;
        imt_luma out;
        char det[256];
        imt_decode_limits lim = default_limits();
        imt_err e = decode(d, n, 65536, IMT_PDQ_FAST, &lim, &out, NULL, det, sizeof det);
        imt_err want = png_oracle(d, n);
        CHECKF(e == want, "%s: %s, libpng says %s [%s]", path, imt_err_name(e),
               imt_err_name(want), det);
        if (e == IMT_OK) {
            (*n_ok)++;
            CHECK(out.rows >= 1 && out.rows <= 512 && out.cols >= 1 && out.cols <= 512);
        } else {
            (*n_err)++;
            CHECKF(det[0], "%s: %s without a detail", path, imt_err_name(e));
        }
        free(d);
    }
    closedir(dd);
    return files;
}

static void test_corpora(void)
{
    static const char *dirs[] = {"corpus/malformed/libpng_testpngs",
                                 "corpus/malformed/go_fuzz_corpus/png",
                                 "corpus/malformed/pillow/images"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        const char *d = tu_shared(dirs[i]);
        CHECKF(d != NULL, "%s missing", dirs[i]);
        if (!d) continue;
        int ok = 0, err = 0;
        int files = walk(d, &ok, &err);
        printf("  %s: %d PNGs, %d decoded, %d named errors\n", dirs[i], files, ok, err);
        CHECK(files > 0 && ok > 0);
    }
}

/* A header claiming 100000x100000 is refused before anything is allocated
 * for the image; a side over --max-dimension is refused by libpng's user
 * limit and still reported as too large. */
static void test_limits(void)
{
    static const uint32_t claims[][2] = {{100000, 100000}, {200000, 10}, {10, 3000000}};
    for (size_t i = 0; i < 3; i++) {
        buf b = {0};
        put_ihdr(&b, claims[i][0], claims[i][1], 8, 2, 0);
        buf z = {0};
        zlib_zeros(&z, 1000); /* libpng stops at the IDAT header: never inflated */
        put_chunk(&b, "IDAT", z.d, (uint32_t)z.n);
        free(z.d);
        put_chunk(&b, "IEND", NULL, 0);
        imt_luma out;
        char det[256];
        imt_decode_limits lim = default_limits();
        REQUIRE(imt_set_allocator(&counting) == IMT_OK);
        alloc_peak = alloc_bytes = 0;
        imt_err e = decode(b.d, b.n, 4096, IMT_PDQ_FAST, &lim, &out, NULL, det, sizeof det);
        REQUIRE(imt_set_allocator(NULL) == IMT_OK);
        char want[64];
        snprintf(want, sizeof want, "%ux%u", claims[i][0], claims[i][1]);
        CHECKF(e == IMT_E_TOO_LARGE && strstr(det, want), "%s: %s (%s)", want, imt_err_name(e),
               det);
        CHECKF(alloc_peak < (256u << 10), "%s: %zu bytes allocated at the peak", want, alloc_peak);
        CHECK(alloc_live == 0);
        free(b.d);
    }
}

/* Peak RSS growth of decoding b in a forked child, in KiB (-1 on failure). */
static long child_rss_growth(const buf *b, imt_err *status, int *rows, int *cols)
{
    int fd[2];
    REQUIRE(pipe(fd) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(fd[0]);
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        long before = ru.ru_maxrss;
        imt_luma out;
        char det[256];
        imt_decode_limits lim = {0, 0, 0}; /* raised: no pixel or side limit */
        imt_err e = decode(b->d, b->n, 256u << 10, IMT_PDQ_FAST, &lim, &out, NULL, det, sizeof det);
        getrusage(RUSAGE_SELF, &ru);
        long r[4] = {ru.ru_maxrss - before, (long)e, out.rows, out.cols};
        if (write(fd[1], r, sizeof r) != (ssize_t)sizeof r) _exit(1);
        _exit(0);
    }
    close(fd[1]);
    long r[4] = {-1, IMT_E_INTERNAL, 0, 0};
    ssize_t got = read(fd[0], r, sizeof r);
    close(fd[0]);
    int ws;
    waitpid(pid, &ws, 0);
    CHECK(got == (ssize_t)sizeof r && WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
    *status = (imt_err)r[1];
    *rows = (int)r[2];
    *cols = (int)r[3];
    return r[0];
}

/* Huge but cheap: 20000x20000 (400 MB of pixels, 2.5 MB of file), plain and
 * interlaced, decode in O(width) memory; so does an IDAT whose stream
 * inflates to 400 MB past a 64x64 image. */
static void test_bounded_memory(void)
{
    static const struct {
        uint32_t w, h;
        int il;
        uint64_t extra;
        imt_err want;
    } cases[] = {
        {20000, 20000, 0, 0, IMT_OK},
        {20000, 20000, 1, 0, IMT_OK},
        {64, 64, 0, (uint64_t)400 << 20, IMT_OK},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        buf b = zero_png(cases[i].w, cases[i].h, cases[i].il, cases[i].extra);
        imt_err e;
        int rows, cols;
        long kib = child_rss_growth(&b, &e, &rows, &cols);
        printf("  %ux%u%s%s: %s, peak RSS +%ld KiB (PNG %zu bytes)\n", cases[i].w, cases[i].h,
               cases[i].il ? " interlaced" : "", cases[i].extra ? " + 400 MB inflate" : "",
               imt_err_name(e), kib, b.n);
        CHECKF(e == cases[i].want, "case %zu: %s", i, imt_err_name(e));
        if (e == IMT_OK) {
            int side = cases[i].w > 512 ? 512 : (int)cases[i].w;
            CHECK(rows == side && cols == side);
        }
        /* a row of 20000 bytes, the 512x512 output and libpng/zlib state:
         * well under 16 MiB, while the image is 400 MB */
        CHECKF(kib >= 0 && kib < 16 * 1024, "case %zu: peak RSS grew by %ld KiB", i, kib);
        free(b.d);
    }
}

/* Cut a vector PNG short anywhere: ImageMagick returns no image for any such
 * file, so neither do we: IMT_E_TRUNCATED with a detail, never a crash. */
static void test_truncated(void)
{
    const char *p = tu_shared("vectors/pdq/images/reg-test-input/pen-and-coaster.png");
    REQUIRE(p != NULL);
    size_t n;
    uint8_t *d = tu_read_file(p, &n);
    REQUIRE(d != NULL);
    size_t cuts[] = {0, 1, 8, 16, 20, 33, 41, 100, 1000, 50000, n / 3, n / 2, n - 100,
                     n - 13, n - 12, n - 8, n - 4, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        for (int mode = 0; mode < 2; mode++) {
            imt_luma out;
            char det[256];
            imt_decode_limits lim = default_limits();
            imt_err e = decode(d, cuts[i], 4093, (imt_pdq_mode)mode, &lim, &out, NULL, det,
                               sizeof det);
            CHECKF(e == IMT_E_TRUNCATED && strncmp(det, "libpng: ", 8) == 0,
                   "cut at %zu of %zu: %s (%s)", cuts[i], n, imt_err_name(e), det);
            CHECK(out.pix == NULL && out.partial == 0);
            if (cuts[i] > 24) CHECK(out.width == 924 && out.height == 735);
        }
    }
    /* a read error from the source is passed through */
    memsrc m = {d, n / 2, 0, 4096, IMT_E_IO};
    imt_reader r = {mem_pull, &m};
    imt_decoder *dec = NULL;
    REQUIRE(imt__decoder_create(&dec) == IMT_OK);
    imt_luma out;
    char det[256];
    imt_decode_limits lim = default_limits();
    CHECK(imt__decode_luma(dec, IMT_FMT_PNG, &r, IMT_PDQ_FAST, &lim, &out, det, sizeof det) ==
          IMT_E_IO);
    /* a deadline already past */
    m = (memsrc){d, n, 0, 4096, IMT_OK};
    lim.deadline_ms = 1;
    CHECK(imt__decode_luma(dec, IMT_FMT_PNG, &r, IMT_PDQ_FAST, &lim, &out, det, sizeof det) ==
          IMT_E_TIMEOUT);
    CHECK(det[0] != '\0');
    /* the decoder is still usable after errors, and reuses its buffers */
    m = (memsrc){d, n, 0, 4096, IMT_OK};
    lim.deadline_ms = 0;
    CHECK(imt__decode_luma(dec, IMT_FMT_PNG, &r, IMT_PDQ_FAST, &lim, &out, det, sizeof det) ==
          IMT_OK);
    imt__decoder_free(dec);
    free(d);
}

/* Fail allocation N for N = 0, 1, 2, ...: every path returns IMT_OK or
 * IMT_E_NOMEM and frees everything (libpng's and zlib's allocations go
 * through the same hooks). */
static void test_alloc_failures(const char dir[2048])
{
    static const char *files[] = {"basi6a08.png", "g10n3p04.png", "basn0g16.png", "tbbn3p08.png"};
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, files[f]);
        size_t n;
        uint8_t *d = tu_read_file(path, &n);
        REQUIRE(d != NULL);
        int succeeded = 0, failures = 0;
        for (long k = 0; k < 200 && !succeeded; k++) {
            REQUIRE(imt_set_allocator(&counting) == IMT_OK);
            alloc_count = 0;
            alloc_fail_at = k;
            alloc_live = 0;
            imt_luma out;
            char det[256];
            imt_decode_limits lim = default_limits();
            imt_err e = decode(d, n, 64, IMT_PDQ_COMPAT, &lim, &out, NULL, det, sizeof det);
            long live = alloc_live;
            alloc_fail_at = -1;
            REQUIRE(imt_set_allocator(NULL) == IMT_OK);
            CHECKF(e == IMT_OK || e == IMT_E_NOMEM, "%s, failing allocation %ld: %s (%s)",
                   files[f], k, imt_err_name(e), det);
            CHECKF(live == 0, "%s, failing allocation %ld: %ld blocks leaked", files[f], k, live);
            if (e == IMT_OK) succeeded = alloc_count <= k; /* no failure was injected */
            else failures++;
        }
        CHECKF(succeeded && failures > 3, "%s: %d injected failures, success %d", files[f],
               failures, succeeded);
        free(d);
    }
}

int main(void)
{
    const char *p = tu_shared("corpus/malformed/pngsuite/png");
    if (!p || !tu_shared("vectors/pdq/images")) return tu_skip("../shared corpus absent");
    char suite[2048]; /* tu_shared's buffers are reused */
    REQUIRE(strlen(p) < sizeof suite);
    memcpy(suite, p, strlen(p) + 1);
    test_vectors();
    test_pngsuite(suite);
    test_pngsuite_interlace(suite);
    test_generated();
    test_grey_rgb_and_gamma();
    test_corpora();
    test_limits();
    test_bounded_memory();
    test_truncated();
    test_alloc_failures(suite);
    return tu_done("test_decode_png");
}
