/* engine/decode/jpeg.c -- JPEG -> luma plane through libjpeg-turbo (libjpeg62 API).
 *
 * Bytes come from the caller's imt_reader through our own jpeg_source_mgr;
 * libjpeg's errors come back through setjmp/longjmp (its default handler
 * calls exit()); warnings are counted and never printed. Each file gets a
 * fresh jpeg_decompress_struct (created and destroyed around it): libjpeg
 * keeps quantisation and Huffman tables across jpeg_abort_decompress, so a
 * reused one decodes a file without its own DHT (Motion-JPEG frames, which
 * rely on the standard tables) or DQT with the previous file's tables. The
 * big per-image blocks are per image in either case; what the fresh struct
 * adds is a few small allocations per file (bench_hash: no measurable
 * change). Our row buffers are reused: every element read is written first.
 *
 * Compat mode reproduces what the reference hasher sees: ImageMagick 6.9.11
 * `convert FILE pnm:-` read by CImg as uint8. ImageMagick's JPEG reader keeps
 * libjpeg's defaults (islow IDCT, fancy upsampling, block smoothing), stores
 * CMYK samples inverted (QuantumRange - v, for every CMYK/YCCK file, Adobe
 * marker or not) and converts them to sRGB when writing PNM; its PNM writer
 * picks PGM/PBM when every pixel has R == G == B, and CImg then reads one
 * channel, so the reference's luma is the grey value itself, not
 * 0.299R+0.587G+0.114B of it (those differ in float). We track that over
 * every decoded pixel. Only the rows and columns the nearest-neighbour
 * resize keeps are stored: memory is O(width) plus the 512x512 output.
 *
 * Fast mode decodes the least the hash needs: DCT scaling so that the short
 * side is at least IMT_JPEG_FAST_MIN_SIDE, the luma channel only (libjpeg skips
 * the chroma IDCT and upsampling for YCbCr -> grey), and for progressive
 * files at 1/8 scale it stops reading once every needed component's DC is
 * complete (the 1x1 IDCT reads only DC). Sides still far above what PDQ
 * samples are area-averaged while streaming.
 */
#include "decode.h"

#include <limits.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

/* Fast mode: decode so that the short side is at least IMT_JPEG_FAST_MIN_SIDE
 * (DCT scaling M/8), then area-average sides over IMT_JPEG_FAST_MAX_SIDE.
 * Measured (fast hash vs compat hash, reference PDQ, 34 vector JPEGs of
 * quality >= 80 and 24 photos): a minimum short side of 64/128/256/352/378/512
 * gives a worst vector distance of 80/34/12/12/8/10 (median 10/4/6/6/2/6).
 * 378 is the least that keeps every vector within 10 while 12 MP 4032x3024
 * photos still decode at 1/8 (3024/8 = 378), the cheapest scale. */
#ifndef IMT_JPEG_FAST_MIN_SIDE
#define IMT_JPEG_FAST_MIN_SIDE 378
#endif
#ifndef IMT_JPEG_FAST_MAX_SIDE
#define IMT_JPEG_FAST_MAX_SIDE 512
#endif
/* The progressive early stop accepts a DC whose last IMT_JPEG_DC_AL_MAX bits
 * (successive approximation) are still missing. 0: the early-stopped output
 * equals the full decode exactly. With libjpeg's standard progression (DC
 * sent with Al=1, refined after the first AC scans) that means reading about
 * 60% of the file; 1 would stop after the first scan, at the price of the DC
 * low bit (no change in hash distances measured, but no longer exact). */
#ifndef IMT_JPEG_DC_AL_MAX
#define IMT_JPEG_DC_AL_MAX 0
#endif

/* ImageMagick's limit (coders/jpeg.c MaxJPEGScans): a progressive file with
 * more scans is an error there, and each scan can cost a full image pass. */
#define IMT_JPEG_MAX_SCANS 1024

/* A progressive (or other multi-scan) file makes libjpeg keep the whole
 * image's DCT coefficients: 2 bytes each, 128 bytes per 8x8 block and
 * component (2 bytes a pixel for grey, 3 for 4:2:0 colour, 6 for 4:4:4),
 * in both modes (fast mode too reads the DC scans into that buffer). A
 * 775 KB 12000x12000 progressive file needed 288 MB, and the bound was
 * 1 GiB per thread. libjpeg's memory for one file is capped at
 * IMT_JPEG_MEM_CAP (or what the pixel limit implies for 4:4:4, if less);
 * a file over it is too-large before the buffer is allocated (libjpeg has
 * no backing store). 256 MiB takes progressive 4:2:0 colour up to ~85 MP.
 * Single-scan (baseline) files need only a few MCU rows: O(width). Fast
 * mode could do without the buffer by decoding only the DC scans itself;
 * libjpeg offers no way to. */
#define IMT_JPEG_MEM_SLACK ((uint64_t)64 << 20)
#define IMT_JPEG_MEM_CAP ((uint64_t)256 << 20)

struct imt_jpeg_state {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_error_mgr jerr;
    struct jpeg_source_mgr src;
    struct jpeg_progress_mgr prog;
    jmp_buf jb;

    /* per file */
    const imt_reader *rd;
    uint64_t deadline_ms;
    uint64_t bytes_in;          /* bytes handed to libjpeg */
    imt_err stop;               /* why we jumped out ourselves (read error, timeout) */
    int truncated;              /* a fake EOI was inserted */
    int n_warn;
    int started;                /* jpeg_start_decompress returned */
    int rows_out;               /* scanlines read */
    char warn[JMSG_LENGTH_MAX]; /* the first warning */
    char msg[JMSG_LENGTH_MAX];  /* the error */
    int early_stop;             /* fast mode may stop progressive files after DC */

    /* reusable buffers */
    uint8_t *row;
    size_t row_cap;
    float *pix;
    size_t pix_cap;
    uint8_t *keep;              /* compat: kept samples (1 or 3 per pixel) */
    size_t keep_cap;
    int *xmap;
    size_t xmap_cap;
    int *ymap;
    size_t ymap_cap;
    float *acc;                 /* fast: per output column sums */
    size_t acc_cap;
    uint8_t cmyk_lut[256 * 256]; /* ImageMagick's CMYK -> 8-bit sRGB, by (sample, K sample) */
    uint8_t fake_eoi[2];
};

/* ---- libjpeg callbacks ------------------------------------------------- */

static void on_error_exit(j_common_ptr c)
{
    imt_jpeg_state *st = (imt_jpeg_state *)c->client_data;
    (*c->err->format_message)(c, st->msg);
    longjmp(st->jb, 1);
}

static void on_emit_message(j_common_ptr c, int level)
{
    if (level >= 0) return; /* trace messages */
    imt_jpeg_state *st = (imt_jpeg_state *)c->client_data;
    if (st->n_warn++ == 0) (*c->err->format_message)(c, st->warn);
    c->err->num_warnings++;
}

static void on_output_message(j_common_ptr c) { (void)c; }

/* Stop decoding for a reason of ours (not libjpeg's). */
static void bail(imt_jpeg_state *st, imt_err why)
{
    st->stop = why;
    longjmp(st->jb, 1);
}

static void check_deadline(imt_jpeg_state *st)
{
    if (st->deadline_ms && imt__now_ms() > st->deadline_ms) bail(st, IMT_E_TIMEOUT);
}

static void on_progress(j_common_ptr c)
{
    imt_jpeg_state *st = (imt_jpeg_state *)c->client_data;
    check_deadline(st);
    if (st->cinfo.input_scan_number >= IMT_JPEG_MAX_SCANS) {
        snprintf(st->msg, sizeof st->msg, "too many scans (over %d)", IMT_JPEG_MAX_SCANS);
        bail(st, IMT_E_CORRUPT);
    }
}

static void src_init(j_decompress_ptr c) { (void)c; }

static boolean src_fill(j_decompress_ptr c)
{
    imt_jpeg_state *st = (imt_jpeg_state *)c->client_data;
    const uint8_t *data = NULL;
    size_t len = 0;
    if (!st->truncated) {
        imt_err e = st->rd->pull(st->rd->ctx, &data, &len);
        if (e != IMT_OK) bail(st, e);
        check_deadline(st);
    }
    if (len == 0) {
        /* End of data: as libjpeg's own sources (and ImageMagick's) do,
         * warn and insert an EOI so that what was decoded comes out. */
        if (st->bytes_in == 0) ERREXIT(c, JERR_INPUT_EMPTY);
        if (!st->truncated) WARNMS(c, JWRN_JPEG_EOF);
        st->truncated = 1;
        st->fake_eoi[0] = 0xFF;
        st->fake_eoi[1] = JPEG_EOI;
        data = st->fake_eoi;
        len = 2;
    } else {
        st->bytes_in += len;
    }
    c->src->next_input_byte = data;
    c->src->bytes_in_buffer = len;
    return TRUE;
}

static void src_skip(j_decompress_ptr c, long n)
{
    imt_jpeg_state *st = (imt_jpeg_state *)c->client_data;
    if (n <= 0) return;
    size_t left = (size_t)n;
    while (left > c->src->bytes_in_buffer) {
        left -= c->src->bytes_in_buffer;
        c->src->bytes_in_buffer = 0;
        src_fill(c);
        if (st->truncated) return; /* leave the fake EOI for the marker reader */
    }
    c->src->next_input_byte += left;
    c->src->bytes_in_buffer -= left;
}

static void src_term(j_decompress_ptr c) { (void)c; }

/* ---- state ------------------------------------------------------------- */

/* ImageMagick (Q16, non-HDRI) stores a CMYK JPEG sample s as the quantum
 * 65535 - 257*s, converts with red = QR - (QS*C*(QR-K) + K) in double,
 * rounds with ClampToQuantum (+0.5, truncate) and writes 8-bit PNM with
 * ScaleQuantumToChar. Tabulated by (s, k). */
static void build_cmyk_lut(uint8_t *lut)
{
    const double qr = 65535.0, qs = 1.0 / 65535.0;
    for (int s = 0; s < 256; s++) {
        for (int k = 0; k < 256; k++) {
            double cq = qr - 257.0 * s, kq = qr - 257.0 * k;
            double v = qr - (qs * cq * (qr - kq) + kq);
            unsigned q;
            if (v <= 0.0) q = 0;
            else if (v >= qr) q = 65535;
            else q = (unsigned)(v + 0.5);
            lut[s * 256 + k] = (uint8_t)(((q + 128u) - ((q + 128u) >> 8)) >> 8);
        }
    }
}

static imt_err state_create(imt_jpeg_state **out)
{
    imt_jpeg_state *st = imt__calloc(1, sizeof *st);
    if (!st) return IMT_E_NOMEM;
    build_cmyk_lut(st->cmyk_lut);
    const char *e = getenv("IMT_JPEG_FULL_SCANS");
    st->early_stop = !(e && *e && strcmp(e, "0") != 0);
    *out = st;
    return IMT_OK;
}

/* A fresh decompressor for one file: libjpeg state never outlives a file.
 * Returns IMT_E_NOMEM when libjpeg cannot allocate its own structures. */
static imt_err cinfo_create(imt_jpeg_state *st)
{
    memset(&st->cinfo, 0, sizeof st->cinfo);
    st->cinfo.err = jpeg_std_error(&st->jerr);
    st->jerr.error_exit = on_error_exit;
    st->jerr.emit_message = on_emit_message;
    st->jerr.output_message = on_output_message;
    st->cinfo.client_data = st;
    if (setjmp(st->jb)) {
        /* jpeg_create_decompress failed (out of memory): free what it got */
        jpeg_destroy_decompress(&st->cinfo);
        return IMT_E_NOMEM;
    }
    jpeg_create_decompress(&st->cinfo);
    st->cinfo.client_data = st;
    memset(&st->src, 0, sizeof st->src);
    st->src.init_source = src_init;
    st->src.fill_input_buffer = src_fill;
    st->src.skip_input_data = src_skip;
    st->src.resync_to_restart = jpeg_resync_to_restart;
    st->src.term_source = src_term;
    st->cinfo.src = &st->src;
    memset(&st->prog, 0, sizeof st->prog);
    st->prog.progress_monitor = on_progress;
    st->cinfo.progress = &st->prog;
    return IMT_OK;
}

void imt__jpeg_state_free(imt_jpeg_state *st)
{
    if (!st) return;
    imt__free(st->row);
    imt__free(st->pix);
    imt__free(st->keep);
    imt__free(st->xmap);
    imt__free(st->ymap);
    imt__free(st->acc);
    imt__free(st);
}

/* Grow *p to at least n elements of size sz. */
static imt_err grow(void **p, size_t *cap, size_t n, size_t sz)
{
    size_t bytes;
    if (!imt__mul_ok(n, sz, &bytes)) return IMT_E_TOO_LARGE;
    if (bytes <= *cap) return IMT_OK;
    void *q = imt__realloc(*p, bytes);
    if (!q) return IMT_E_NOMEM;
    *p = q;
    *cap = bytes;
    return IMT_OK;
}
#define GROW(ptr, capv, n) grow((void **)&(ptr), &(capv), (n), sizeof *(ptr))

/* ---- scanline readers --------------------------------------------------- */

static void read_row(imt_jpeg_state *st)
{
    JSAMPROW rows[1] = {st->row};
    if (jpeg_read_scanlines(&st->cinfo, rows, 1) != 1) {
        /* Only a suspending source returns 0; ours never suspends. */
        snprintf(st->msg, sizeof st->msg, "no scanline returned");
        bail(st, IMT_E_INTERNAL);
    }
    st->rows_out++;
}

/* Compat: every output row, streaming; keeps the nearest-neighbour samples
 * and whether every pixel so far is grey (R == G == B). */
static imt_err decode_compat(imt_jpeg_state *st, imt_luma *out)
{
    j_decompress_ptr c = &st->cinfo;
    imt_err err = IMT_OK;
    int W = (int)c->output_width, H = (int)c->output_height;
    int ncomp = c->output_components;
    int cols = imt__compat_side(c->output_width, c->output_width, c->output_height);
    int rows = imt__compat_side(c->output_height, c->output_width, c->output_height);
    int keep_ch = ncomp == 1 ? 1 : 3;
    int cmyk = c->out_color_space == JCS_CMYK;
    IMT_TRY(GROW(st->row, st->row_cap, (size_t)W * (size_t)ncomp));
    IMT_TRY(GROW(st->xmap, st->xmap_cap, (size_t)cols));
    IMT_TRY(GROW(st->ymap, st->ymap_cap, (size_t)rows));
    IMT_TRY(GROW(st->keep, st->keep_cap, (size_t)rows * (size_t)cols * (size_t)keep_ch));
    IMT_TRY(GROW(st->pix, st->pix_cap, (size_t)rows * (size_t)cols));
    imt__nn_map(W, cols, st->xmap);
    imt__nn_map(H, rows, st->ymap);

    int all_grey = ncomp == 3; /* CMYK images are never written as PGM */
    int next = 0; /* next output row to fill */
    for (int y = 0; y < H; y++) {
        read_row(st);
        uint8_t *p = st->row;
        if (cmyk) {
            /* ImageMagick's CMYK -> sRGB, in place into the first 3*W bytes. */
            const uint8_t *lut = st->cmyk_lut;
            for (int x = 0; x < W; x++) {
                const uint8_t *s = p + 4 * x;
                uint8_t r = lut[s[0] * 256 + s[3]], g = lut[s[1] * 256 + s[3]],
                        b = lut[s[2] * 256 + s[3]];
                p[3 * x] = r;
                p[3 * x + 1] = g;
                p[3 * x + 2] = b;
            }
        } else if (ncomp == 3 && all_grey) {
            for (int x = 0; x < W; x++) {
                const uint8_t *s = p + 3 * x;
                if (s[0] != s[1] || s[1] != s[2]) {
                    all_grey = 0;
                    break;
                }
            }
        }
        while (next < rows && st->ymap[next] == y) {
            uint8_t *k = st->keep + (size_t)next * (size_t)cols * (size_t)keep_ch;
            if (keep_ch == 1) {
                for (int i = 0; i < cols; i++) k[i] = p[st->xmap[i]];
            } else {
                for (int i = 0; i < cols; i++) {
                    const uint8_t *s = p + 3 * st->xmap[i];
                    k[3 * i] = s[0];
                    k[3 * i + 1] = s[1];
                    k[3 * i + 2] = s[2];
                }
            }
            next++;
        }
    }

    size_t n = (size_t)rows * (size_t)cols;
    float *dst = st->pix;
    if (keep_ch == 1 || all_grey) {
        for (size_t i = 0; i < n; i++) dst[i] = (float)st->keep[i * keep_ch];
    } else {
        const uint8_t *k = st->keep;
        for (size_t i = 0; i < n; i++) {
            /* The reference's expression: float coefficients times uint8
             * operands, left to right, no contraction (-ffp-contract=off). */
            float yv = imt__luma_r * k[3 * i] + imt__luma_g * k[3 * i + 1] +
                       imt__luma_b * k[3 * i + 2];
            dst[i] = yv;
        }
    }
    out->pix = st->pix;
    out->rows = rows;
    out->cols = cols;
cleanup:
    return err;
}

/* Fast: one luma value per pixel of the (scaled) output, area-averaged by
 * fx x fy boxes; cells at the right and bottom edges average what they hold. */
static imt_err decode_fast_rows(imt_jpeg_state *st, imt_luma *out)
{
    j_decompress_ptr c = &st->cinfo;
    imt_err err = IMT_OK;
    int W = (int)c->output_width, H = (int)c->output_height;
    int ncomp = c->output_components;
    int fx = W > IMT_JPEG_FAST_MAX_SIDE ? (W + IMT_JPEG_FAST_MAX_SIDE - 1) / IMT_JPEG_FAST_MAX_SIDE : 1;
    int fy = H > IMT_JPEG_FAST_MAX_SIDE ? (H + IMT_JPEG_FAST_MAX_SIDE - 1) / IMT_JPEG_FAST_MAX_SIDE : 1;
    int cols = (W + fx - 1) / fx, rows = (H + fy - 1) / fy;
    IMT_TRY(GROW(st->row, st->row_cap, (size_t)W * (size_t)ncomp));
    IMT_TRY(GROW(st->pix, st->pix_cap, (size_t)rows * (size_t)cols));
    IMT_TRY(GROW(st->acc, st->acc_cap, (size_t)cols));
    const uint8_t *lut = st->cmyk_lut;
    for (int oy = 0; oy < rows; oy++) {
        int y0 = oy * fy, ny = H - y0 < fy ? H - y0 : fy;
        float *dst = st->pix + (size_t)oy * (size_t)cols;
        if (fx == 1 && fy == 1 && ncomp == 1) {
            read_row(st);
            for (int x = 0; x < W; x++) dst[x] = (float)st->row[x];
            continue;
        }
        memset(st->acc, 0, (size_t)cols * sizeof *st->acc);
        for (int j = 0; j < ny; j++) {
            read_row(st);
            const uint8_t *p = st->row;
            for (int ox = 0, x = 0; ox < cols; ox++) {
                int xe = x + fx < W ? x + fx : W;
                float s = 0.0f;
                if (ncomp == 1) {
                    unsigned u = 0;
                    for (; x < xe; x++) u += p[x];
                    s = (float)u;
                } else if (ncomp == 4) {
                    for (; x < xe; x++) {
                        const uint8_t *q = p + 4 * x;
                        s += imt__luma_r * lut[q[0] * 256 + q[3]] +
                             imt__luma_g * lut[q[1] * 256 + q[3]] +
                             imt__luma_b * lut[q[2] * 256 + q[3]];
                    }
                } else {
                    for (; x < xe; x++) {
                        const uint8_t *q = p + 3 * x;
                        s += imt__luma_r * q[0] + imt__luma_g * q[1] + imt__luma_b * q[2];
                    }
                }
                st->acc[ox] += s;
            }
        }
        for (int ox = 0; ox < cols; ox++) {
            int nx = W - ox * fx < fx ? W - ox * fx : fx;
            dst[ox] = st->acc[ox] / (float)(nx * ny);
        }
    }
    out->pix = st->pix;
    out->rows = rows;
    out->cols = cols;
cleanup:
    return err;
}

/* The smallest M/8 scale keeping the short side >= IMT_JPEG_FAST_MIN_SIDE. */
static int fast_scale(uint32_t w, uint32_t h)
{
    uint32_t s = w < h ? w : h;
    for (int m = 1; m < 8; m++)
        if (((uint64_t)s * (uint64_t)m + 7) / 8 >= IMT_JPEG_FAST_MIN_SIDE) return m;
    return 8;
}

/* Whether the DC of every component the output needs is complete. */
static int dc_complete(j_decompress_ptr c)
{
    int need = c->out_color_space == JCS_GRAYSCALE && c->jpeg_color_space == JCS_YCbCr
                   ? 1 : c->num_components;
    if (!c->coef_bits) return 0;
    for (int ci = 0; ci < need; ci++)
        if (c->coef_bits[ci][0] < 0 || c->coef_bits[ci][0] > IMT_JPEG_DC_AL_MAX) return 0;
    return 1;
}

/* ---- entry point --------------------------------------------------------- */

static int is_unsupported(int code)
{
    return code == JERR_BAD_PRECISION || code == JERR_SOF_UNSUPPORTED ||
           code == JERR_ARITH_NOTIMPL || code == JERR_NOT_COMPILED ||
           code == JERR_NOTIMPL || code == JERR_CONVERSION_NOTIMPL;
}

/* Everything between the header and the last row; libjpeg errors longjmp
 * out of here to imt__jpeg_decode. */
static imt_err decode_body(imt_jpeg_state *st, imt_pdq_mode mode,
                           const imt_decode_limits *lim, imt_luma *out,
                           char *detail, size_t cap)
{
    imt_err err = IMT_OK;
    j_decompress_ptr c = &st->cinfo;
    jpeg_read_header(c, TRUE);
    out->width = c->image_width;
    out->height = c->image_height;
    IMT_TRY(imt__check_dims(c->image_width, c->image_height, lim, "JPEG", detail, cap));
    if (c->num_components != 1 && c->num_components != 3 && c->num_components != 4) {
        imt__set_detail(detail, cap, "JPEG with %d colour components", c->num_components);
        err = IMT_E_UNSUPPORTED;
        goto cleanup;
    }
    {
        uint64_t bound = (lim->max_pixels ? lim->max_pixels : (uint64_t)1 << 30) * 6u +
                         IMT_JPEG_MEM_SLACK;
        if (bound > IMT_JPEG_MEM_CAP) bound = IMT_JPEG_MEM_CAP;
        if (bound > (uint64_t)LONG_MAX) bound = (uint64_t)LONG_MAX;
        c->mem->max_memory_to_use = (long)bound;
    }

    /* A side under PDQ's minimum of 5 with the other over 512: compat mode
     * (the reference) stretches the image to 512x512 and hashes it, while
     * fast mode's plane would keep the thin side and be too-small. Such an
     * image has few pixels (at most 4 x max_dimension): decode it as compat
     * does, so that both modes give the same answer. */
    if ((c->image_width < IMT_DECODE_MIN_SIDE || c->image_height < IMT_DECODE_MIN_SIDE) &&
        (c->image_width > 512 || c->image_height > 512))
        mode = IMT_PDQ_COMPAT;

    int buffered = 0;
    if (mode == IMT_PDQ_COMPAT) {
        /* ImageMagick's settings: libjpeg's defaults, CMYK for YCCK. */
        if (c->jpeg_color_space == JCS_YCCK || c->jpeg_color_space == JCS_CMYK)
            c->out_color_space = JCS_CMYK;
    } else {
        int m = fast_scale(c->image_width, c->image_height);
        c->scale_num = (unsigned)m;
        c->scale_denom = 8;
        c->dct_method = JDCT_ISLOW;
        c->do_fancy_upsampling = FALSE;
        c->do_block_smoothing = FALSE;
        if (c->jpeg_color_space == JCS_YCCK || c->jpeg_color_space == JCS_CMYK)
            c->out_color_space = JCS_CMYK;
        else
            c->out_color_space = JCS_GRAYSCALE; /* from YCbCr: Y only, chroma skipped */
        buffered = m == 1 && st->early_stop && jpeg_has_multiple_scans(c);
        c->buffered_image = buffered ? TRUE : FALSE;
    }

    jpeg_start_decompress(c);
    st->started = 1;
    if (c->output_components != 1 && c->output_components != 3 && c->output_components != 4) {
        imt__set_detail(detail, cap, "JPEG output of %d components", c->output_components);
        err = IMT_E_UNSUPPORTED;
        goto cleanup;
    }
    if (mode == IMT_PDQ_COMPAT) {
        IMT_TRY(decode_compat(st, out));
    } else if (buffered) {
        /* Consume scans until the DC of the needed components is complete
         * (or the data ends), output that, and leave the rest unread. */
        for (;;) {
            int ret = jpeg_consume_input(c);
            if (ret == JPEG_REACHED_EOI) break;
            if (ret == JPEG_SUSPENDED) break; /* not with our source; be safe */
            on_progress((j_common_ptr)c);
            if (ret == JPEG_SCAN_COMPLETED && dc_complete(c)) break;
        }
        jpeg_start_output(c, c->input_scan_number);
        IMT_TRY(decode_fast_rows(st, out));
        jpeg_finish_output(c);
    } else {
        IMT_TRY(decode_fast_rows(st, out));
    }

    if (st->n_warn) {
        out->partial = 1;
        if (st->truncated)
            imt__set_detail(detail, cap, "libjpeg: Premature end of JPEG file");
        else if (st->n_warn > 1)
            imt__set_detail(detail, cap, "libjpeg: %s (and %d more warnings)", st->warn,
                            st->n_warn - 1);
        else
            imt__set_detail(detail, cap, "libjpeg: %s", st->warn);
    }

cleanup:
    return err;
}
imt_err imt__jpeg_decode(imt_jpeg_state **stp, const imt_reader *r, imt_pdq_mode mode,
                         const imt_decode_limits *lim, imt_luma *out,
                         char *detail, size_t cap)
{
    imt_err err = IMT_OK;
    if (!stp || !r || !lim || !out) return IMT_E_INVALID;
    if (!*stp) {
        err = state_create(stp);
        if (err != IMT_OK) {
            imt__set_detail(detail, cap, "out of memory creating the JPEG decoder");
            return err;
        }
    }
    imt_jpeg_state *st = *stp;
    j_decompress_ptr c = &st->cinfo;
    st->rd = r;
    st->deadline_ms = lim->deadline_ms;
    st->bytes_in = 0;
    st->stop = IMT_OK;
    st->truncated = 0;
    st->n_warn = 0;
    st->started = 0;
    st->rows_out = 0;
    st->warn[0] = st->msg[0] = '\0';
    err = cinfo_create(st);
    if (err != IMT_OK) {
        imt__set_detail(detail, cap, "out of memory creating the JPEG decoder");
        goto cleanup;
    }

    if (setjmp(st->jb) == 0) {
        err = decode_body(st, mode, lim, out, detail, cap);
    } else {
        int code = st->jerr.msg_code;
        if (st->stop == IMT_E_TIMEOUT) {
            err = IMT_E_TIMEOUT;
            imt__set_detail(detail, cap, "JPEG decoding over the time budget after %d of %u rows",
                            st->rows_out, (unsigned)c->output_height);
        } else if (st->stop != IMT_OK && st->stop != IMT_E_CORRUPT && st->stop != IMT_E_INTERNAL) {
            err = st->stop; /* the reader's error; the caller reports it */
            imt__set_detail(detail, cap, "read failed: %s", imt_strerror(err));
        } else if (st->stop != IMT_OK) {
            err = st->stop;
            imt__set_detail(detail, cap, "libjpeg: %s", st->msg);
        } else if (code == JERR_OUT_OF_MEMORY) {
            err = IMT_E_NOMEM;
            imt__set_detail(detail, cap, "libjpeg: %s", st->msg);
        } else if (code == JERR_NO_BACKING_STORE) {
            err = IMT_E_TOO_LARGE;
            imt__set_detail(detail, cap,
                            "libjpeg: a %ux%u multi-scan image needs more memory than the "
                            "limit of %ld bytes",
                            (unsigned)c->image_width, (unsigned)c->image_height,
                            (long)c->mem->max_memory_to_use);
        } else if (is_unsupported(code)) {
            err = IMT_E_UNSUPPORTED;
            imt__set_detail(detail, cap, "libjpeg: %s", st->msg);
        } else if (st->truncated) {
            err = IMT_E_TRUNCATED;
            imt__set_detail(detail, cap, "libjpeg: Premature end of JPEG file (%s)", st->msg);
        } else {
            err = IMT_E_CORRUPT;
            imt__set_detail(detail, cap, "libjpeg: %s", st->msg);
        }
    }

    /* Whatever state libjpeg is in (a finished image, an early stop, an
     * error), nothing of it is kept for the next file; trailing data is
     * left to the caller, which drains the reader for the digests. */
    jpeg_destroy_decompress(c);
cleanup:
    if (err != IMT_OK) {
        out->pix = NULL;
        out->rows = out->cols = 0;
        out->partial = 0;
    }
    return err;
}
