/* tests/test_bombs.c -- decompression bombs and the per-file time budget.
 *
 * Each bomb is built here, at test time, by our own code (a run-length
 * deflate encoder for PNG, libjpeg plus byte surgery for JPEG), written to a
 * temporary file and hashed by a fresh copy of this program (fork + exec, so
 * that its peak RSS is the hashing alone). The parent reads the result from
 * a pipe and the child's peak RSS from wait4(): every bomb must either hash
 * or stop with a named error, and stay under a memory bound far below what
 * decoding the whole image would need.
 *
 *   png-dims       a PNG claiming 100000x100000 pixels     -> too-large (max_pixels)
 *   png-dims-nolim the same with no pixel limit            -> streams: corrupt (the
 *                                                             zlib data ends), O(width) memory
 *   png-idat       20000x20000 grey whose IDAT inflates from ~2.5 MB to 400 MB
 *                                                          -> hashes, O(width) memory
 *   png-extra      64x64 whose zlib stream inflates to 256 MB, far past the image
 *                                                          -> hashes (libpng skips the rest)
 *   jpeg-dims      a JPEG claiming 65500x65500             -> too-large (max_pixels)
 *   jpeg-dims-nolim the same with no limit, 3 s budget     -> hashes (partial) or timeout,
 *                                                             O(width) memory
 *   jpeg-prog-dims a progressive JPEG claiming 30000x30000 (under max_pixels; its
 *                  coefficient buffer alone would be 1.7 GB) -> too-large, no allocation
 *   jpeg-prog-12000 a progressive grey JPEG claiming 12000x12000: its coefficients
 *                  take 288 MB, over the 256 MiB budget     -> too-large, no allocation
 *   jpeg-prog-11000 the same at 11000x11000 (242 MB, within the budget)
 *                                                          -> decodes, peak under the
 *                                                             budget plus the usual bound
 *   jpeg-scans     a 1024x1024 progressive JPEG with 3000 scans
 *                                                          -> corrupt "too many scans"
 *                                                             (both modes: fast mode decodes
 *                                                             it at 3/8, every scan read)
 *   timeout        a 1 ms budget on the no-limit JPEG      -> timeout, reported per file
 *   bmp-dims       a BMP claiming 100000x100000 pixels     -> too-large (max_pixels)
 *   bmp-nolim      a 1-bit BMP claiming 30000x30000, no pixel data, no limit
 *                                                          -> hashes (partial), O(width)
 *   bmp-rle-dims   an RLE8 BMP claiming 20000x20000 (under max_pixels; its index plane
 *                  would be 400 MB)                        -> too-large, no allocation
 *   tiff-dims      a TIFF claiming 100000x100000           -> too-large (max_pixels)
 *   tiff-dims-nolim the same with no limit                 -> corrupt (the deflate data
 *                                                             ends), O(width) memory
 *   tiff-strip     20000x20000 grey, one deflate strip inflating from ~2.5 MB to 400 MB
 *                                                          -> hashes, O(width) memory
 *   gif-screen     a GIF whose logical screen is 65535x65535 (one 64x64 frame)
 *                                                          -> too-large (max_pixels); with
 *                                                             no limit: hashes, small memory
 *   gif-frame      a 16000x16000 GIF frame of one colour, ~200 KB of LZW
 *                                                          -> hashes, O(width) memory
 *   gif-redo       an 8000x8000 frame, then an 8001x8001 one: the first is decoded
 *                  again for the larger volume           -> hashes, O(width) memory
 *   webp-canvas    an animated WebP whose VP8X canvas is 2^24 x 2^24
 *                                                          -> too-large (a side; with no
 *                                                             limit libwebp refuses it: corrupt)
 *   webp-canvas-60000 the same at 60000x60000, no limits   -> too-large (libwebp's memory)
 *   webp-lossy-dims a lossy WebP frame header claiming 16383x16383
 *                                                          -> compat: too-large (the RGB
 *                                                             output, 805 MB); fast: scaled,
 *                                                             streams: truncated/corrupt
 *   webp-lossless-dims a lossless header claiming 16384x16384 -> too-large, both modes
 *   heif-grid-60000 a HEIC grid of four 64x64 tiles declaring a 60000x60000 canvas
 *                  under a 128x128 'ispe' (tests/data/heif/make.sh)
 *                                                          -> too-large from the grid
 *                                                             header, with and without
 *                                                             limits, no allocation
 *   heif-grid-10000 the same declaring 10000x10000 (under the limits; libheif would
 *                  allocate the canvas and leave all but the tiles uninitialised)
 *                                                          -> corrupt "tiles cover 128x128"
 *                                                             from the headers, no allocation;
 *                                                             too-large at --max-dimension 5000
 */
#include "imgtriage.h"
#include "testutil.h"

#include <errno.h>
#include <gif_lib.h>
#include <jpeglib.h>
#include <webp/encode.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

/* Memory a streaming hash may use above the child's own baseline: decoder
 * rows, the 512x512 plane, libjpeg/libpng state. Under ASan, shadow memory
 * and redzones roughly double that (the child runs with a 16 MB quarantine). */
#define BOUND_MB (UNDER_ASAN ? 160 : 64)
/* A progressive (multi-scan) JPEG needs libjpeg's whole-image coefficient
 * buffer; engine/decode/jpeg.c caps it at IMT_JPEG_MEM_CAP (256 MiB). A bomb
 * that may use it is allowed that much more (set around its call). */
static int g_extra_mb;

/* ---- small byte buffer ---------------------------------------------------- */
typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        size_t c = b->cap ? b->cap : 4096;
        while (c < b->n + n) c *= 2;
        b->p = realloc(b->p, c);
        REQUIRE(b->p != NULL);
        b->cap = c;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void put8(buf *b, unsigned v)
{
    uint8_t c = (uint8_t)v;
    put(b, &c, 1);
}

static uint32_t le32_of(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put32be(buf *b, uint32_t v)
{
    uint8_t c[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    put(b, c, 4);
}

/* ---- a deflate encoder for long runs (RFC 1951, fixed Huffman) ------------
 * Enough to build bombs without zlib: a run of n copies of byte v is one
 * literal and matches of length 258 at distance 1 (13 bits per 258 bytes). */
typedef struct bits {
    buf *out;
    uint32_t acc;
    int nbits;
} bits;

static void bits_put(bits *w, uint32_t v, int n) /* LSB first */
{
    for (int i = 0; i < n; i++) {
        w->acc |= ((v >> i) & 1u) << w->nbits;
        if (++w->nbits == 8) {
            put8(w->out, w->acc);
            w->acc = 0;
            w->nbits = 0;
        }
    }
}

static void huff_put(bits *w, uint32_t code, int n) /* Huffman codes: MSB first */
{
    for (int i = n - 1; i >= 0; i--) bits_put(w, (code >> i) & 1u, 1);
}

static void lit(bits *w, unsigned v)
{
    if (v < 144) huff_put(w, 0x30 + v, 8);
    else huff_put(w, 0x190 + (v - 144), 9);
}

typedef struct zrun {
    bits w;
    uint32_t a, b; /* Adler-32 */
} zrun;

static void z_begin(zrun *z, buf *out)
{
    memset(z, 0, sizeof *z);
    z->w.out = out;
    z->a = 1;
    put8(out, 0x78);
    put8(out, 0x01);
    bits_put(&z->w, 1, 1); /* BFINAL: one block */
    bits_put(&z->w, 1, 2); /* BTYPE 01: fixed Huffman */
}

static void z_run(zrun *z, unsigned v, uint64_t n)
{
    if (n == 0) return;
    lit(&z->w, v);
    uint64_t left = n - 1;
    while (left >= 258) {
        huff_put(&z->w, 0xC5, 8); /* length code 285 = 258 */
        huff_put(&z->w, 0, 5);    /* distance code 0 = 1 */
        left -= 258;
    }
    while (left--) lit(&z->w, v);
    /* Adler-32 of the run in closed form: after k more bytes a grows by k*v,
     * so b grows by n*a + v*n(n+1)/2 (exact in 64 bits for n < 2^32). */
    REQUIRE(n < ((uint64_t)1 << 32));
    uint64_t a = z->a, b = z->b;
    b = (b + (n % 65521u) * a + (uint64_t)v * ((n * (n + 1) / 2) % 65521u)) % 65521u;
    a = (a + (n % 65521u) * v) % 65521u;
    z->a = (uint32_t)a;
    z->b = (uint32_t)b;
}

static void z_end(zrun *z)
{
    huff_put(&z->w, 0, 7); /* end of block (256) */
    if (z->w.nbits) bits_put(&z->w, 0, 8 - z->w.nbits);
    put32be(z->w.out, (z->b << 16) | z->a);
}

/* ---- PNG ------------------------------------------------------------------- */
static uint32_t crc_tab[256];

static uint32_t crc32_of(const uint8_t *p, size_t n, uint32_t c)
{
    if (!crc_tab[1])
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t x = i;
            for (int k = 0; k < 8; k++) x = (x & 1) ? 0xEDB88320u ^ (x >> 1) : x >> 1;
            crc_tab[i] = x;
        }
    c = ~c;
    for (size_t i = 0; i < n; i++) c = crc_tab[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return ~c;
}

static void png_chunk(buf *b, const char *type, const uint8_t *d, size_t n)
{
    put32be(b, (uint32_t)n);
    size_t at = b->n;
    put(b, type, 4);
    if (n) put(b, d, n);
    put32be(b, crc32_of(b->p + at, n + 4, 0));
}

/* A greyscale 8-bit PNG w x h whose zlib stream holds `raw` zero bytes (the
 * image needs h*(w+1); more is a stream running past the image). */
static void png_bomb(buf *b, uint32_t w, uint32_t h, uint64_t raw)
{
    put(b, "\x89PNG\r\n\x1a\n", 8);
    uint8_t ihdr[13];
    buf t = {ihdr, 0, sizeof ihdr};
    put32be(&t, w);
    put32be(&t, h);
    uint8_t rest[5] = {8, 0, 0, 0, 0}; /* depth 8, grey, deflate, filter 0, no interlace */
    memcpy(ihdr + 8, rest, 5);
    png_chunk(b, "IHDR", ihdr, 13);
    buf z = {0};
    zrun zr;
    z_begin(&zr, &z);
    z_run(&zr, 0, raw);
    z_end(&zr);
    for (size_t off = 0; off < z.n; off += 1u << 20) {
        size_t n = z.n - off < (1u << 20) ? z.n - off : (1u << 20);
        png_chunk(b, "IDAT", z.p + off, n);
    }
    free(z.p);
    png_chunk(b, "IEND", NULL, 0);
}

/* ---- BMP and TIFF ------------------------------------------------------------ */
static void put16le(buf *b, unsigned v)
{
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    put(b, x, 2);
}

static void put32le(buf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(b, x, 4);
}

/* A V3 BMP header for w x h at bpp (2-entry grey palette when bpp is 1, 256
 * when 8), followed by `data` bytes of zeros; bfSize is the file's size. */
static void bmp_bomb(buf *b, int32_t w, int32_t h, int bpp, uint32_t comp, size_t data)
{
    uint32_t ncol = bpp == 1 ? 2 : bpp == 8 ? 256 : 0, off = 54 + 4 * ncol;
    put(b, "BM", 2);
    put32le(b, off + (uint32_t)data);
    put32le(b, 0);
    put32le(b, off);
    put32le(b, 40);
    put32le(b, (uint32_t)w);
    put32le(b, (uint32_t)h);
    put16le(b, 1);
    put16le(b, (unsigned)bpp);
    put32le(b, comp);
    for (int i = 0; i < 5; i++) put32le(b, 0);
    for (uint32_t i = 0; i < ncol; i++) put32le(b, i * 0x010101u);
    for (size_t i = 0; i < data; i++) put8(b, 0);
}

/* A little-endian TIFF, w x h 8-bit grey in one deflate strip whose zlib
 * stream holds `raw` zero bytes. */
/* The time budget of the bombs that must decode ("ok"): 400 MP and more,
 * which under ASan on a loaded machine took over 60 s (tiff-strip, gif-*:
 * "status timeout, expected ok"). They check peak memory, not speed. */
#define SLOW_OK_MS 600000

static void tiff_bomb(buf *b, uint32_t w, uint32_t h, uint64_t raw)
{
    buf z = {0};
    zrun zr;
    z_begin(&zr, &z);
    z_run(&zr, 0, raw);
    z_end(&zr);
    put(b, "II*\0", 4);
    uint32_t ifd = 8 + (uint32_t)z.n + (z.n & 1);
    put32le(b, ifd);
    put(b, z.p, z.n);
    if (z.n & 1) put8(b, 0);
    static const uint16_t tags[] = {256, 257, 258, 259, 262, 273, 277, 278, 279};
    uint32_t vals[] = {w, h, 8, 8, 1, 8, 1, h, (uint32_t)z.n};
    put16le(b, 9);
    for (int i = 0; i < 9; i++) {
        int isshort = tags[i] == 258 || tags[i] == 259 || tags[i] == 262 || tags[i] == 277;
        put16le(b, tags[i]);
        put16le(b, isshort ? 3 : 4);
        put32le(b, 1);
        if (isshort) {
            put16le(b, vals[i]);
            put16le(b, 0);
        } else {
            put32le(b, vals[i]);
        }
    }
    put32le(b, 0);
    free(z.p);
}

/* ---- JPEG ------------------------------------------------------------------ */
/* Encode a w x h grey pattern (or flat grey) with libjpeg, progressive when asked. */
static void jpeg_encode(buf *out, int w, int h, int progressive, int flat)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    unsigned char *mem = NULL;
    unsigned long len = 0;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &mem, &len);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = 1;
    c.in_color_space = JCS_GRAYSCALE;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 90, TRUE);
    if (progressive) jpeg_simple_progression(&c);
    jpeg_start_compress(&c, TRUE);
    unsigned char *row = malloc((size_t)w);
    REQUIRE(row != NULL);
    while (c.next_scanline < c.image_height) {
        for (int x = 0; x < w; x++)
            row[x] = flat ? 128 : (unsigned char)((x * 7 + (int)c.next_scanline * 3) ^ (x >> 4));
        JSAMPROW r = row;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    free(row);
    put(out, mem, len);
    free(mem);
}

/* Offset of the n-th (0-based) marker `m` in a JPEG, walking segments. */
static size_t jpeg_find(const buf *j, uint8_t m, int nth)
{
    size_t i = 2;
    while (i + 4 <= j->n) {
        REQUIRE(j->p[i] == 0xFF);
        uint8_t mk = j->p[i + 1];
        if (mk == m && nth-- == 0) return i;
        if (mk == 0xD9) break;
        size_t seg = (size_t)j->p[i + 2] << 8 | j->p[i + 3];
        i += 2 + seg;
        if (mk == 0xDA) { /* entropy data up to the next non-RST marker */
            while (i + 1 < j->n && !(j->p[i] == 0xFF && j->p[i + 1] != 0 &&
                                     (j->p[i + 1] < 0xD0 || j->p[i + 1] > 0xD7)))
                i++;
        }
    }
    return 0;
}

/* A 16x16 grey JPEG (baseline, or progressive) whose SOF is patched to
 * claim w x h. */
static void jpeg_dims_bomb(buf *out, uint16_t w, uint16_t h, int progressive)
{
    jpeg_encode(out, 16, 16, progressive, 0);
    size_t sof = jpeg_find(out, progressive ? 0xC2 : 0xC0, 0);
    REQUIRE(sof != 0);
    out->p[sof + 5] = (uint8_t)(h >> 8);
    out->p[sof + 6] = (uint8_t)h;
    out->p[sof + 7] = (uint8_t)(w >> 8);
    out->p[sof + 8] = (uint8_t)w;
}

/* A progressive 1024x1024 flat grey JPEG whose last scan (an AC refinement,
 * a few bytes of EOB runs) is repeated until the file holds `scans` scans:
 * small on disk, yet every scan is a pass over all 16384 blocks. */
static void jpeg_scans_bomb(buf *out, int scans)
{
    buf j = {0};
    jpeg_encode(&j, 1024, 1024, 1, 1);
    int have = 0;
    while (jpeg_find(&j, 0xDA, have)) have++;
    REQUIRE(have >= 2);
    size_t last = jpeg_find(&j, 0xDA, have - 1);
    size_t eoi = j.n - 2;
    REQUIRE(j.p[eoi] == 0xFF && j.p[eoi + 1] == 0xD9);
    put(out, j.p, eoi);
    for (int k = have; k < scans; k++) put(out, j.p + last, eoi - last);
    put(out, "\xff\xd9", 2);
    free(j.p);
}

/* ---- GIF -------------------------------------------------------------------- */
/* LZW (min code size 8) of a run of n pixels of value v, as GIF sub-blocks:
 * the run's strings v, vv, vvv, ... get codes v, 258, 259, ...; a clear code
 * when the table is full. The code width follows the decoder's rule: it
 * grows once the next free code passes 2^width. */
typedef struct lzw {
    buf *out;
    uint8_t block[255];
    int nblock;
    uint32_t acc;
    int nbits, size;
} lzw;

static void lzw_byte(lzw *z, uint8_t b)
{
    z->block[z->nblock++] = b;
    if (z->nblock == 255) {
        put8(z->out, 255);
        put(z->out, z->block, 255);
        z->nblock = 0;
    }
}

static void lzw_code(lzw *z, unsigned code)
{
    z->acc |= (uint32_t)code << z->nbits;
    z->nbits += z->size;
    while (z->nbits >= 8) {
        lzw_byte(z, (uint8_t)z->acc);
        z->acc >>= 8;
        z->nbits -= 8;
    }
}

static void gif_run(buf *out, unsigned v, uint64_t n)
{
    lzw z = {out, {0}, 0, 0, 0, 9};
    put8(out, 8); /* LZW minimum code size */
    unsigned next = 258;
    uint64_t maxlen = 1;
    lzw_code(&z, 256);
    while (n > 0) {
        uint64_t len = maxlen < n ? maxlen : n;
        lzw_code(&z, len == 1 ? v : (unsigned)(256 + len));
        n -= len;
        if (n == 0) break;
        next++; /* the encoder adds (string + next pixel) */
        if (len == maxlen) maxlen++;
        if (next > (1u << z.size) && z.size < 12) z.size++;
        if (next == 4096) {
            lzw_code(&z, 256);
            z.size = 9;
            next = 258;
            maxlen = 1;
        }
    }
    lzw_code(&z, 257);
    if (z.nbits) lzw_byte(&z, (uint8_t)z.acc);
    if (z.nblock) {
        put8(out, (unsigned)z.nblock);
        put(out, z.block, (size_t)z.nblock);
    }
    put8(out, 0);
}

/* A GIF with screen sw x sh and one fw x fh frame of palette index 1 (a
 * two-colour global table: black, red); with f2w > 0 a second frame of
 * f2w x f2h follows. */
static void gif_bomb2(buf *b, unsigned sw, unsigned sh, unsigned fw, unsigned fh,
                      unsigned f2w, unsigned f2h);
static void gif_bomb(buf *b, unsigned sw, unsigned sh, unsigned fw, unsigned fh)
{
    gif_bomb2(b, sw, sh, fw, fh, 0, 0);
}

static void gif_frame(buf *b, unsigned fw, unsigned fh);

static void gif_bomb2(buf *b, unsigned sw, unsigned sh, unsigned fw, unsigned fh,
                      unsigned f2w, unsigned f2h)
{
    put(b, "GIF89a", 6);
    put16le(b, sw);
    put16le(b, sh);
    put8(b, 0x80); /* global table of 2 entries */
    put8(b, 0);
    put8(b, 0);
    put(b, "\0\0\0\xff\0\0", 6);
    gif_frame(b, fw, fh);
    if (f2w) gif_frame(b, f2w, f2h);
    put8(b, 0x3b);
}

static void gif_frame(buf *b, unsigned fw, unsigned fh)
{
    put8(b, 0x2c);
    put16le(b, 0);
    put16le(b, 0);
    put16le(b, fw);
    put16le(b, fh);
    put8(b, 0);
    gif_run(b, 1, (uint64_t)fw * fh);
}

/* ---- WebP ------------------------------------------------------------------- */
/* A 64x64 WebP made by libwebp (lossy or lossless), its frame header then
 * patched to claim w x h. */
static void webp_dims_bomb(buf *out, int lossless, unsigned w, unsigned h)
{
    uint8_t rgb[64 * 64 * 3];
    for (int i = 0; i < 64 * 64 * 3; i++) rgb[i] = (uint8_t)(i * 7 ^ i >> 5);
    uint8_t *enc = NULL;
    size_t n = lossless ? WebPEncodeLosslessRGB(rgb, 64, 64, 64 * 3, &enc)
                        : WebPEncodeRGB(rgb, 64, 64, 64 * 3, 80, &enc);
    REQUIRE(n > 30 && enc != NULL);
    if (lossless) {
        REQUIRE(!memcmp(enc + 12, "VP8L", 4) && enc[20] == 0x2f);
        uint32_t hdr = le32_of(enc + 21);
        hdr = (hdr & ~(uint32_t)0x0fffffff) | ((w - 1) & 0x3fff) | ((h - 1) & 0x3fff) << 14;
        enc[21] = (uint8_t)hdr, enc[22] = (uint8_t)(hdr >> 8);
        enc[23] = (uint8_t)(hdr >> 16), enc[24] = (uint8_t)(hdr >> 24);
    } else {
        REQUIRE(!memcmp(enc + 12, "VP8 ", 4) && enc[23] == 0x9d && enc[24] == 0x01 &&
                enc[25] == 0x2a);
        enc[26] = (uint8_t)w, enc[27] = (uint8_t)(w >> 8 & 0x3f);
        enc[28] = (uint8_t)h, enc[29] = (uint8_t)(h >> 8 & 0x3f);
    }
    put(out, enc, n);
    WebPFree(enc);
}

/* An animated WebP: VP8X with a w x h canvas, ANIM, and one ANMF frame
 * holding a real 64x64 lossy image. */
static void webp_canvas_bomb(buf *out, uint32_t w, uint32_t h)
{
    buf frame = {0};
    webp_dims_bomb(&frame, 0, 64, 64); /* a valid 64x64 file */
    const uint8_t *vp8 = frame.p + 12;  /* its "VP8 " chunk */
    size_t vp8_len = frame.n - 12;
    buf body = {0};
    put(&body, "VP8X", 4);
    put32le(&body, 10);
    put8(&body, 0x02); /* animation */
    put8(&body, 0), put8(&body, 0), put8(&body, 0);
    put16le(&body, (w - 1) & 0xffff), put8(&body, (w - 1) >> 16);
    put16le(&body, (h - 1) & 0xffff), put8(&body, (h - 1) >> 16);
    put(&body, "ANIM", 4);
    put32le(&body, 6);
    put32le(&body, 0), put16le(&body, 0);
    put(&body, "ANMF", 4);
    put32le(&body, (uint32_t)(16 + vp8_len));
    put16le(&body, 0), put8(&body, 0); /* x/2 */
    put16le(&body, 0), put8(&body, 0); /* y/2 */
    put16le(&body, 63), put8(&body, 0);
    put16le(&body, 63), put8(&body, 0);
    put16le(&body, 100), put8(&body, 0); /* duration */
    put8(&body, 0);
    put(&body, vp8, vp8_len);
    put(out, "RIFF", 4);
    put32le(out, (uint32_t)(4 + body.n));
    put(out, "WEBP", 4);
    put(out, body.p, body.n);
    free(body.p);
    free(frame.p);
}

/* ---- the child: hash one file, print the result ---------------------------- */
/* A field of /proc/self/status in kB (VmRSS, VmHWM), -1 if unreadable. VmHWM
 * belongs to the process image and starts afresh at exec, unlike
 * ru_maxrss, which Linux carries across exec from the forking parent. */
static long proc_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, field, n) && line[n] == ':') {
            v = strtol(line + n + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

static int child_main(char **argv)
{
    /* argv: --child PATH MODE MAX_PIXELS MAX_DIM BUDGET_MS */
    imt_hash_opts o;
    imt_hash_opts_init(&o);
    o.mode = strcmp(argv[3], "compat") == 0 ? IMT_PDQ_COMPAT : IMT_PDQ_FAST;
    o.max_pixels = strtoull(argv[4], NULL, 10);
    o.max_dimension = (uint32_t)strtoul(argv[5], NULL, 10);
    o.time_budget_ms = (uint32_t)strtoul(argv[6], NULL, 10);
    o.digests = IMT_DIGEST_SHA256;
    imt_hasher *h = NULL;
    if (imt_hasher_create(&h, &o) != IMT_OK) return 3;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    long base_kb = ru.ru_maxrss, hwm0_kb = proc_kb("VmHWM");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    imt_hash_result r;
    imt_hash_file(h, argv[2], &r);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    printf("%s %u %u %d %u %ld %ld %ld %ld %s\n", imt_err_name(r.status), r.width, r.height,
           r.has_pdq, r.digests, ms, base_kb, hwm0_kb, proc_kb("VmHWM"), r.detail);
    imt_hasher_free(h);
    return 0;
}

typedef struct outcome {
    char status[32];
    unsigned width, height, digests;
    int has_pdq;
    long ms, base_kb, peak_kb; /* ru_maxrss: before hashing (child), after (wait4) */
    long hwm0_kb, hwm_kb;       /* VmHWM before and after hashing */
    char detail[300];
} outcome;

static const char *g_self;

static int run_child(const char *path, const char *mode, uint64_t max_pixels,
                     uint32_t max_dim, uint32_t budget_ms, outcome *oc)
{
    int fd[2];
    REQUIRE(pipe(fd) == 0);
    char a_px[32], a_dim[32], a_bud[32];
    snprintf(a_px, sizeof a_px, "%llu", (unsigned long long)max_pixels);
    snprintf(a_dim, sizeof a_dim, "%u", (unsigned)max_dim);
    snprintf(a_bud, sizeof a_bud, "%u", (unsigned)budget_ms);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        close(fd[1]);
        /* A small quarantine so that ASan's retained frees don't count. */
        setenv("ASAN_OPTIONS", "quarantine_size_mb=16:detect_leaks=1", 1);
        char *args[] = {(char *)g_self, "--child", (char *)path, (char *)mode,
                        a_px, a_dim, a_bud, NULL};
        execv(g_self, args);
        _exit(127);
    }
    close(fd[1]);
    char line[512] = "";
    size_t n = 0;
    ssize_t r;
    while (n < sizeof line - 1 && (r = read(fd[0], line + n, sizeof line - 1 - n)) > 0)
        n += (size_t)r;
    line[n] = '\0';
    close(fd[0]);
    int status = 0;
    struct rusage ru;
    REQUIRE(wait4(pid, &status, 0, &ru) == pid);
    memset(oc, 0, sizeof *oc);
    oc->peak_kb = ru.ru_maxrss;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "child for %s died: status 0x%x\n", path, status);
        return 0;
    }
    int off = 0;
    if (sscanf(line, "%31s %u %u %d %u %ld %ld %ld %ld %n", oc->status, &oc->width,
               &oc->height, &oc->has_pdq, &oc->digests, &oc->ms, &oc->base_kb, &oc->hwm0_kb,
               &oc->hwm_kb, &off) < 9)
        return 0;
    snprintf(oc->detail, sizeof oc->detail, "%s", line + off);
    size_t dl = strlen(oc->detail);
    if (dl && oc->detail[dl - 1] == '\n') oc->detail[dl - 1] = '\0';
    return 1;
}

static char g_dir[256];

static const char *write_tmp(const char *name, const buf *b)
{
    static char path[8][512];
    static int slot;
    char *p = path[slot++ & 7];
    snprintf(p, sizeof path[0], "%s/%s", g_dir, name);
    FILE *f = fopen(p, "wb");
    REQUIRE(f != NULL);
    REQUIRE(fwrite(b->p, 1, b->n, f) == b->n);
    REQUIRE(fclose(f) == 0);
    return p;
}

/* Hash path in a child; check the status is one of `allowed` (a
 * space-separated list of error names), that a non-ok status's detail
 * holds detail_has, and the memory bound. */
static void bomb(const char *name, const char *path, const char *mode, uint64_t max_pixels,
                 uint32_t max_dim, uint32_t budget_ms, const char *allowed,
                 const char *detail_has, double full_mb)
{
    outcome oc;
    int ok = run_child(path, mode, max_pixels, max_dim, budget_ms, &oc);
    CHECKF(ok, "%s (%s): the child crashed or printed nothing", name, mode);
    if (!ok) return;
    /* Two measures of the hashing's peak memory: VmHWM of the child's own
     * image, and wait4's ru_maxrss above the child's ru_maxrss at start. */
    long grew_mb = (oc.hwm_kb - oc.hwm0_kb) / 1024;
    long grew_ru_mb = (oc.peak_kb - oc.base_kb) / 1024;
    int bound = BOUND_MB + g_extra_mb;
    printf("%-15s %-6s %-10s %5ux%-5u %5ld ms  peak +%ld MB (VmHWM %ld MB, ru_maxrss %ld MB; "
           "bound +%d MB; whole image %.0f MB)  %s\n",
           name, mode, oc.status, oc.width, oc.height, oc.ms, grew_mb, oc.hwm_kb / 1024,
           oc.peak_kb / 1024, bound, full_mb, oc.detail);
    CHECKF(oc.hwm0_kb > 0 && oc.hwm_kb >= oc.hwm0_kb, "%s: VmHWM unreadable", name);
    CHECKF(grew_ru_mb < bound, "%s (%s): ru_maxrss grew by %ld MB, bound %d MB", name,
           mode, grew_ru_mb, bound);
    char want[128];
    snprintf(want, sizeof want, " %s ", allowed);
    char got[40];
    snprintf(got, sizeof got, " %s ", oc.status);
    CHECKF(strstr(want, got) != NULL, "%s (%s): status %s, expected one of: %s (%s)", name,
           mode, oc.status, allowed, oc.detail);
    CHECKF(grew_mb < bound, "%s (%s): VmHWM grew by %ld MB, bound %d MB", name, mode,
           grew_mb, bound);
    if (detail_has && strcmp(oc.status, "ok") != 0)
        CHECKF(strstr(oc.detail, detail_has) != NULL, "%s (%s): detail \"%s\" lacks \"%s\"",
               name, mode, oc.detail, detail_has);
    if (strcmp(oc.status, "ok") != 0)
        CHECKF(oc.detail[0] != '\0', "%s (%s): no reason given", name, mode);
    CHECKF(oc.digests == IMT_DIGEST_SHA256, "%s (%s): digests missing", name, mode);
    if (strcmp(oc.status, "ok") == 0) CHECKF(oc.has_pdq, "%s: ok without a hash", name);
}

/* This build decodes PNG and JPEG: a tiny valid file of the format must
 * hash. A child that crashes or does not hash it is a failure (it used to
 * skip that format's bombs, so a decoder crash passed). */
static void require_decodes(const char *path)
{
    outcome oc;
    int ok = run_child(path, "fast", 0, 0, 0, &oc);
    REQUIRE(ok);
    CHECKF(strcmp(oc.status, "ok") == 0, "%s: %s (%s)", path, oc.status, oc.detail);
}

int main(int argc, char **argv)
{
    if (argc >= 7 && strcmp(argv[1], "--child") == 0) return child_main(argv);
    g_self = "/proc/self/exe";
    static char self[4096];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sl > 0) {
        self[sl] = '\0';
        g_self = self;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/imt_bombs_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    REQUIRE(mkdtemp(g_dir) != NULL);
    const char *modes[2] = {"fast", "compat"};
    const uint64_t defpx = (uint64_t)1 << 30;
    const uint32_t defdim = 100000;

    /* ---- PNG -------------------------------------------------------------- */
    buf small = {0};
    png_bomb(&small, 32, 32, 32 * 33);
    const char *small_png = write_tmp("small.png", &small);
    require_decodes(small_png);
    {
        buf b1 = {0}, b2 = {0}, b3 = {0};
        png_bomb(&b1, 100000, 100000, 16 * 100001);
        const char *p1 = write_tmp("png-dims.png", &b1);
        png_bomb(&b2, 20000, 20000, (uint64_t)20000 * 20001);
        const char *p2 = write_tmp("png-idat.png", &b2);
        png_bomb(&b3, 64, 64, (uint64_t)256 << 20);
        const char *p3 = write_tmp("png-extra.png", &b3);
        printf("png-idat: %zu bytes inflating to %llu\n", b2.n,
               (unsigned long long)20000 * 20001);
        for (int m = 0; m < 2; m++) {
            bomb("png-dims", p1, modes[m], defpx, defdim, 60000, "too-large", "100000x100000",
                 1e10 / 1048576.0);
            /* complete file (IEND present) whose zlib stream ends after 16
             * rows: libpng's "Not enough image data", corrupt, not truncated */
            bomb("png-dims-nolim", p1, modes[m], 0, 0, 60000, "corrupt", "Not enough image data",
                 1e10 / 1048576.0);
            bomb("png-idat", p2, modes[m], defpx, defdim, 60000, "ok", NULL, 4e8 / 1048576.0);
            /* data past the image is a benign error for libpng (skipped,
             * as ImageMagick does): the image hashes */
            bomb("png-extra", p3, modes[m], defpx, defdim, 60000, "ok", NULL, 256.0);
        }
        free(b1.p);
        free(b2.p);
        free(b3.p);
    }
    free(small.p);

    /* ---- BMP and TIFF ----------------------------------------------------- */
    {
        buf sb = {0}, st = {0}, b1 = {0}, b2 = {0}, b3 = {0}, t1 = {0}, t2 = {0};
        bmp_bomb(&sb, 16, 16, 24, 0, 16 * 48);
        require_decodes(write_tmp("small.bmp", &sb));
        tiff_bomb(&st, 16, 16, 256);
        require_decodes(write_tmp("small.tif", &st));
        bmp_bomb(&b1, 100000, 100000, 24, 0, 4096);
        const char *q1 = write_tmp("bmp-dims.bmp", &b1);
        bmp_bomb(&b2, 30000, 30000, 1, 0, 0);
        const char *q2 = write_tmp("bmp-nolim.bmp", &b2);
        bmp_bomb(&b3, 20000, 20000, 8, 1, 4096);
        const char *q3 = write_tmp("bmp-rle-dims.bmp", &b3);
        tiff_bomb(&t1, 100000, 100000, 16 * 100000);
        const char *r1 = write_tmp("tiff-dims.tif", &t1);
        tiff_bomb(&t2, 20000, 20000, (uint64_t)20000 * 20000);
        const char *r2 = write_tmp("tiff-strip.tif", &t2);
        printf("tiff-strip: %zu bytes inflating to %llu\n", t2.n,
               (unsigned long long)20000 * 20000);
        for (int m = 0; m < 2; m++) {
            bomb("bmp-dims", q1, modes[m], defpx, defdim, 60000, "too-large", "100000x100000",
                 1e10 * 3 / 1048576.0);
            bomb("bmp-nolim", q2, modes[m], 0, 0, SLOW_OK_MS, "ok", NULL, 9e8 * 3 / 1048576.0);
            bomb("bmp-rle-dims", q3, modes[m], defpx, defdim, 60000, "too-large",
                 "index plane", 4e8 / 1048576.0);
            bomb("tiff-dims", r1, modes[m], defpx, defdim, 60000, "too-large", "100000x100000",
                 1e10 / 1048576.0);
            bomb("tiff-dims-nolim", r1, modes[m], 0, 0, 60000, "corrupt", "libtiff",
                 1e10 / 1048576.0);
            bomb("tiff-strip", r2, modes[m], defpx, defdim, SLOW_OK_MS, "ok", NULL, 4e8 / 1048576.0);
        }
        free(sb.p);
        free(st.p);
        free(b1.p);
        free(b2.p);
        free(b3.p);
        free(t1.p);
        free(t2.p);
    }

    /* ---- JPEG ------------------------------------------------------------- */
    buf tiny = {0};
    jpeg_encode(&tiny, 16, 16, 0, 0);
    const char *tiny_jpg = write_tmp("tiny.jpg", &tiny);
    free(tiny.p);
    require_decodes(tiny_jpg);
    {
        buf j1 = {0}, j2 = {0}, j3 = {0}, j4 = {0}, j5 = {0};
        jpeg_dims_bomb(&j1, 65500, 65500, 0);
        const char *q1 = write_tmp("jpeg-dims.jpg", &j1);
        jpeg_scans_bomb(&j2, 3000);
        const char *q2 = write_tmp("jpeg-scans.jpg", &j2);
        printf("jpeg-scans: %zu bytes\n", j2.n);
        /* Progressive: libjpeg keeps every coefficient of the image (2 bytes
         * per pixel for grey), so a claim under the pixel limit must still be
         * refused before that buffer is allocated. */
        jpeg_dims_bomb(&j3, 30000, 30000, 1);
        const char *q3 = write_tmp("jpeg-prog-dims.jpg", &j3);
        for (int m = 0; m < 2; m++) {
            bomb("jpeg-dims", q1, modes[m], defpx, defdim, 60000, "too-large", "65500x65500",
                 65500.0 * 65500.0 / 1048576.0);
            /* No size limit: a streaming decoder keeps O(width) memory; a 3 s
             * budget ends the 4.3-gigapixel decode where it is too slow. */
            bomb("jpeg-dims-nolim", q1, modes[m], 0, 0, 3000, "ok timeout", NULL,
                 65500.0 * 65500.0 / 1048576.0);
        }
        for (int m = 0; m < 2; m++)
            bomb("jpeg-prog-dims", q3, modes[m], defpx, defdim, 60000, "too-large", NULL,
                 30000.0 * 30000.0 * 2 / 1048576.0);
        /* Issue 9 item 10: a 775 KB progressive 12000x12000 JPEG took 288 MB
         * (and up to 1 GiB per thread at the default pixel limit). Over the
         * coefficient budget: too-large before allocating, both modes. */
        jpeg_dims_bomb(&j4, 12000, 12000, 1);
        const char *q4 = write_tmp("jpeg-prog-12000.jpg", &j4);
        jpeg_dims_bomb(&j5, 11000, 11000, 1);
        const char *q5 = write_tmp("jpeg-prog-11000.jpg", &j5);
        for (int m = 0; m < 2; m++)
            bomb("jpeg-prog-12000", q4, modes[m], defpx, defdim, 60000, "too-large",
                 "more memory than the limit of 268435456 bytes",
                 12000.0 * 12000.0 * 2 / 1048576.0);
        /* Within the budget: decoded (the data ends early: partial), and
         * the peak is the budget plus the usual streaming bound. */
        g_extra_mb = 256;
        for (int m = 0; m < 2; m++)
            bomb("jpeg-prog-11000", q5, modes[m], defpx, defdim, 60000, "ok", NULL,
                 11000.0 * 11000.0 * 2 / 1048576.0);
        g_extra_mb = 0;
        /* Fast mode stops after the DC scans only at 1/8 scale; 1024x1024
         * decodes at 3/8 (short side >= 378), reading every scan as compat
         * mode does. */
        bomb("jpeg-scans", q2, "fast", defpx, defdim, 60000, "corrupt", "too many scans",
             2.0);
        bomb("jpeg-scans", q2, "compat", defpx, defdim, 60000, "corrupt", "too many scans",
             2.0);

        /* The time budget: 1 ms cannot decode 65500x65500. */
        for (int m = 0; m < 2; m++)
            bomb("timeout", q1, modes[m], 0, 0, 1, "timeout", "time budget",
                 65500.0 * 65500.0 / 1048576.0);
        free(j1.p);
        free(j2.p);
        free(j3.p);
        free(j4.p);
        free(j5.p);
    }

    /* ---- GIF -------------------------------------------------------------- */
    {
        buf g0 = {0}, g1 = {0}, g2 = {0};
        gif_bomb(&g0, 64, 64, 64, 64);
        const char *p0 = write_tmp("small.gif", &g0);
        require_decodes(p0);
        gif_bomb(&g1, 65535, 65535, 64, 64);
        const char *p1 = write_tmp("gif-screen.gif", &g1);
        gif_bomb(&g2, 16000, 16000, 16000, 16000);
        const char *p2 = write_tmp("gif-frame.gif", &g2);
        printf("gif-frame: %zu bytes for 16000x16000 pixels\n", g2.n);
        /* A second frame one pixel larger each way: the first frame is
         * decoded again (the volume grows) from the copy of the file's
         * start; memory stays O(width). */
        buf g3 = {0};
        gif_bomb2(&g3, 8001, 8001, 8000, 8000, 8001, 8001);
        const char *p3 = write_tmp("gif-redo.gif", &g3);
        free(g3.p);
        for (int m = 0; m < 2; m++) {
            bomb("gif-redo", p3, modes[m], defpx, defdim, SLOW_OK_MS, "ok", NULL,
                 8001.0 * 8001.0 * 3 / 1048576.0);
            bomb("gif-screen", p1, modes[m], defpx, defdim, 60000, "too-large",
                 "GIF logical screen claims 65535x65535", 65535.0 * 65535.0 * 3 / 1048576.0);
            bomb("gif-screen-nolim", p1, modes[m], 0, 0, SLOW_OK_MS, "ok", NULL,
                 65535.0 * 65535.0 * 3 / 1048576.0);
            bomb("gif-frame", p2, modes[m], defpx, defdim, SLOW_OK_MS, "ok", NULL,
                 16000.0 * 16000.0 * 3 / 1048576.0);
        }
        free(g0.p);
        free(g1.p);
        free(g2.p);
    }

    /* ---- WebP ------------------------------------------------------------- */
    {
        buf w0 = {0}, w1 = {0}, w2 = {0}, w3 = {0};
        webp_dims_bomb(&w0, 0, 64, 64);
        require_decodes(write_tmp("small.webp", &w0));
        webp_canvas_bomb(&w1, 64, 64); /* the bomb's structure is a valid animation */
        require_decodes(write_tmp("small-anim.webp", &w1));
        w1.n = 0;
        webp_canvas_bomb(&w1, 1u << 24, 1u << 24);
        const char *q1 = write_tmp("webp-canvas.webp", &w1);
        buf w4 = {0};
        webp_canvas_bomb(&w4, 60000, 60000); /* under libwebp's 2^32 pixels */
        const char *q4 = write_tmp("webp-canvas-60000.webp", &w4);
        webp_dims_bomb(&w2, 0, 16383, 16383);
        const char *q2 = write_tmp("webp-lossy-dims.webp", &w2);
        webp_dims_bomb(&w3, 1, 16384, 16384);
        const char *q3 = write_tmp("webp-lossless-dims.webp", &w3);
        double canvas_mb = 16777216.0 * 16777216.0 * 3 / 1048576.0;
        double lossy_mb = 16383.0 * 16383.0 * 3 / 1048576.0;
        for (int m = 0; m < 2; m++) {
            bomb("webp-canvas", q1, modes[m], defpx, defdim, 60000, "too-large",
                 "WebP canvas claims 16777216x16777216", canvas_mb);
            /* libwebp refuses a canvas of 2^32 pixels or more itself */
            bomb("webp-canvas-nolim", q1, modes[m], 0, 0, 60000, "corrupt", "libwebp",
                 canvas_mb);
            bomb("webp-canvas-60000", q4, modes[m], 0, 0, 60000, "too-large", "would need",
                 60000.0 * 60000.0 * 3 / 1048576.0);
            bomb("webp-lossless-dims", q3, modes[m], defpx, defdim, 60000, "too-large",
                 "would need", 16384.0 * 16384.0 * 8 / 1048576.0);
        }
        bomb("webp-lossy-dims", q2, "compat", defpx, defdim, 60000, "too-large", "would need",
             lossy_mb);
        /* fast mode decodes through the scaler, row by row: the data ends */
        bomb("webp-lossy-dims", q2, "fast", defpx, defdim, 60000, "truncated corrupt", NULL,
             lossy_mb);
        free(w0.p);
        free(w1.p);
        free(w2.p);
        free(w3.p);
        free(w4.p);
    }

    /* ---- HEIF grids ---------------------------------------------------------- */
    {
        const char *g60 = IMT_SOURCE_DIR "/tests/data/heif/bomb-grid-60000.heic";
        const char *g10 = IMT_SOURCE_DIR "/tests/data/heif/bomb-grid-10000.heic";
        require_decodes(IMT_SOURCE_DIR "/tests/data/heif/odd.heic");
        for (int m = 0; m < 2; m++) {
            bomb("heif-grid-60000", g60, modes[m], defpx, defdim, 60000, "too-large",
                 "grid claims 60000x60000", 60000.0 * 60000.0 * 1.5 / 1048576.0);
            bomb("heif-grid-60000", g60, modes[m], 0, 0, 60000, "too-large",
                 "grid claims 60000x60000", 60000.0 * 60000.0 * 1.5 / 1048576.0);
            bomb("heif-grid-10000", g10, modes[m], defpx, 5000, 60000, "too-large",
                 "grid claims 10000x10000", 1e8 * 1.5 / 1048576.0);
        }
        /* Within the limits, but four 64x64 tiles cannot cover 10000x10000:
         * refused from the headers (it decoded at 165 MB to a canvas of
         * uninitialised memory before). */
        for (int m = 0; m < 2; m++)
            bomb("heif-grid-10000", g10, modes[m], defpx, defdim, 60000, "corrupt",
                 "tiles cover 128x128", 1e8 * 1.5 / 1048576.0);
    }

    /* Clean up the temporary files. */
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    return tu_done("test_bombs");
}
