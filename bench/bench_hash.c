/* bench/bench_hash.c -- PDQ hashing throughput of JPEG photos.
 *
 *   bench_hash DIR [--threads N] [--largest K] [--reps R]
 *
 * Over the JPEG files in DIR (the K largest when --largest is given), all
 * read into memory first (reading is excluded from every figure), prints
 * images/s and MB/s (of JPEG bytes) on one thread and on N threads for:
 *   fast    imt_hash_memory, IMT_PDQ_FAST   (decode + PDQ)
 *   compat  imt_hash_memory, IMT_PDQ_COMPAT (decode + PDQ)
 *   floor   libjpeg-turbo alone decoding each file at 1/8 scale to
 *           greyscale into a row buffer, nothing else: the least any
 *           JPEG-decoding hasher must spend
 * and the ratios fast/floor and fast/compat (of times, best of R runs).
 * If DIR/progressive/ holds JPEGs (scripts/fetch-photos.sh makes them), it
 * also times fast mode on them with and without the DC-only early stop.
 * Last, the Hamming distance between the fast and the compat hash of every
 * file (histogram; max and median over files of compat quality >= 80).
 * Per format: the WebP, GIF, TIFF, BMP, HEIF and AVIF files in DIR get one
 * table, fast and compat against the library's own plain decode of the
 * same files in this program, on one thread: libwebp WebPDecodeRGB (an
 * animation's first frame through WebPDemux); giflib DGifSlurp (every
 * frame); libtiff reading every row or tile of the first page
 * (TIFFReadScanline / TIFFReadTile / TIFFReadEncodedStrip); libheif
 * heif_decode_image of the primary image to YCbCr 4:2:0 with its default
 * decoders (for HEIC libheif's own libde265 plugin, so the row shows what
 * imgtriage's checked HEVC decoder, heif_hevc.c, costs); BMP has no
 * library: one pass summing the file's bytes (a BMP row costs about its
 * bytes). (bench_tiffbmp's TIFF/BMP rows moved here.) A DIR without JPEGs
 * gives only this table.
 * When the PDQ stage is not built (it returns IMT_E_INTERNAL), the fast and
 * compat figures are decode-only and the distance section is skipped. */
#include "imgtriage.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <gif_lib.h>
#include <jpeglib.h>
#include <libheif/heif.h>
#include <tiffio.h>
#include <webp/decode.h>
#include <webp/demux.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <setjmp.h>

#ifdef IMT_HAVE_OPENMP
#include <omp.h>
#endif

typedef struct file {
    char *name;
    unsigned char *data;
    size_t len;
} file;

typedef struct set {
    file *f;
    size_t n;
    double bytes;
} set;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    if (fseek(fp, 0, SEEK_END) != 0) { fclose(fp); return NULL; }
    long sz = ftell(fp);
    if (sz <= 0) { fclose(fp); return NULL; }
    rewind(fp);
    unsigned char *b = malloc((size_t)sz);
    if (b && fread(b, 1, (size_t)sz, fp) != (size_t)sz) { free(b); b = NULL; }
    fclose(fp);
    *len = (size_t)sz;
    return b;
}

static int by_size_desc(const void *a, const void *b)
{
    const file *x = a, *y = b;
    return x->len < y->len ? 1 : x->len > y->len ? -1 : strcmp(x->name, y->name);
}

/* The files of format fmt in dir (sniffed), the largest `largest` of them
 * (0 = all). */
static set load_fmt(const char *dir, size_t largest, imt_format fmt)
{
    set s = {NULL, 0, 0};
    DIR *dp = opendir(dir);
    if (!dp) return s;
    size_t cap = 0;
    struct dirent *de;
    char path[4096];
    while ((de = readdir(dp)) != NULL) {
        if (de->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        size_t len;
        unsigned char *b = slurp(path, &len);
        if (!b) continue;
        if (imt_sniff(b, len) != fmt) { free(b); continue; }
        if (s.n == cap) {
            cap = cap ? cap * 2 : 64;
            file *nf = realloc(s.f, cap * sizeof *nf);
            if (!nf) { free(b); break; }
            s.f = nf;
        }
        s.f[s.n].name = strdup(de->d_name);
        s.f[s.n].data = b;
        s.f[s.n].len = len;
        s.n++;
    }
    closedir(dp);
    if (s.n) qsort(s.f, s.n, sizeof *s.f, by_size_desc);
    if (largest && s.n > largest) {
        for (size_t i = largest; i < s.n; i++) { free(s.f[i].name); free(s.f[i].data); }
        s.n = largest;
    }
    for (size_t i = 0; i < s.n; i++) s.bytes += (double)s.f[i].len;
    return s;
}

static set load_dir(const char *dir, size_t largest)
{
    return load_fmt(dir, largest, IMT_FMT_JPEG);
}

/* ---- the libraries' own decodes of WebP and GIF ---------------------------- */
static int webp_plain(const file *in)
{
    int w = 0, h = 0;
    WebPBitstreamFeatures f;
    if (WebPGetFeatures(in->data, in->len, &f) != VP8_STATUS_OK) return 0;
    if (!f.has_animation) {
        uint8_t *rgb = WebPDecodeRGB(in->data, in->len, &w, &h);
        WebPFree(rgb);
        return rgb != NULL;
    }
    WebPData wd = {in->data, in->len};
    WebPDemuxer *d = WebPDemux(&wd);
    WebPIterator it;
    int ok = 0;
    if (d && WebPDemuxGetFrame(d, 1, &it)) {
        uint8_t *rgb = WebPDecodeRGB(it.fragment.bytes, it.fragment.size, &w, &h);
        ok = rgb != NULL;
        WebPFree(rgb);
        WebPDemuxReleaseIterator(&it);
    }
    WebPDemuxDelete(d);
    return ok;
}

typedef struct memrd {
    const file *f;
    size_t pos;
} memrd;

static int gif_mem_read(GifFileType *g, GifByteType *buf, int len)
{
    memrd *m = g->UserData;
    size_t k = m->f->len - m->pos;
    if (k > (size_t)len) k = (size_t)len;
    memcpy(buf, m->f->data + m->pos, k);
    m->pos += k;
    return (int)k;
}

static int gif_plain(const file *in)
{
    memrd m = {in, 0};
    int err = 0;
    GifFileType *g = DGifOpen(&m, gif_mem_read, &err);
    if (!g) return 0;
    int ok = DGifSlurp(g) == GIF_OK;
    DGifCloseFile(g, &err);
    return ok;
}

/* ---- libtiff from memory ---- */
typedef struct mem {
    const unsigned char *d;
    toff_t n, pos;
} mem;

static tmsize_t m_read(thandle_t h, void *b, tmsize_t n)
{
    mem *m = (mem *)h;
    toff_t k = m->n - m->pos;
    if ((toff_t)n < k) k = (toff_t)n;
    memcpy(b, m->d + m->pos, (size_t)k);
    m->pos += k;
    return (tmsize_t)k;
}
static tmsize_t m_write(thandle_t h, void *b, tmsize_t n)
{
    (void)h;
    (void)b;
    (void)n;
    return -1;
}
static toff_t m_seek(thandle_t h, toff_t off, int wh)
{
    mem *m = (mem *)h;
    m->pos = (wh == SEEK_CUR ? m->pos : wh == SEEK_END ? m->n : 0) + off;
    if (m->pos > m->n) m->pos = m->n;
    return m->pos;
}
static int m_close(thandle_t h)
{
    (void)h;
    return 0;
}
static toff_t m_size(thandle_t h) { return ((mem *)h)->n; }
static int m_map(thandle_t h, void **b, toff_t *n)
{
    *b = (void *)((mem *)h)->d;
    *n = ((mem *)h)->n;
    return 1;
}
static void m_unmap(thandle_t h, void *b, toff_t n)
{
    (void)h;
    (void)b;
    (void)n;
}

static unsigned long tiff_floor(const file *f)
{
    mem m = {f->data, f->len, 0};
    TIFF *t = TIFFClientOpen("bench", "r", (thandle_t)&m, m_read, m_write, m_seek, m_close,
                             m_size, m_map, m_unmap);
    if (!t) return 0;
    unsigned long sum = 0;
    uint32_t h = 0, w = 0;
    uint16_t photo = 0, comp = 1;
    TIFFGetField(t, TIFFTAG_IMAGELENGTH, &h);
    TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &w);
    TIFFGetFieldDefaulted(t, TIFFTAG_COMPRESSION, &comp);
    if (TIFFGetField(t, TIFFTAG_PHOTOMETRIC, &photo) && photo == PHOTOMETRIC_YCBCR &&
        comp == COMPRESSION_JPEG)
        TIFFSetField(t, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);
    if (TIFFIsTiled(t)) {
        tmsize_t ts = TIFFTileSize(t);
        uint32_t tw = 0, th = 0;
        uint16_t planar = 1, spp = 1;
        TIFFGetField(t, TIFFTAG_TILEWIDTH, &tw);
        TIFFGetField(t, TIFFTAG_TILELENGTH, &th);
        TIFFGetFieldDefaulted(t, TIFFTAG_PLANARCONFIG, &planar);
        TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLESPERPIXEL, &spp);
        unsigned char *b = malloc((size_t)ts);
        for (uint32_t y = 0; b && y < h; y += th)
            for (uint32_t x = 0; x < w; x += tw)
                for (uint16_t s = 0; s < (planar == PLANARCONFIG_SEPARATE ? spp : 1); s++)
                    if (TIFFReadTile(t, b, x, y, 0, s) > 0) sum += b[0];
        free(b);
    } else {
        uint16_t planar = 1, spp = 1;
        TIFFGetFieldDefaulted(t, TIFFTAG_PLANARCONFIG, &planar);
        TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLESPERPIXEL, &spp);
        if (planar == PLANARCONFIG_SEPARATE) {
            tmsize_t ss = TIFFStripSize(t);
            unsigned char *b = malloc((size_t)ss);
            for (uint32_t s = 0; b && s < TIFFNumberOfStrips(t); s++)
                if (TIFFReadEncodedStrip(t, s, b, ss) > 0) sum += b[0];
            free(b);
        } else {
            unsigned char *b = malloc((size_t)TIFFScanlineSize(t));
            for (uint32_t y = 0; b && y < h; y++)
                if (TIFFReadScanline(t, b, y, 0) > 0) sum += b[0];
            free(b);
        }
    }
    TIFFClose(t);
    return sum;
}

static unsigned long bmp_floor(const file *f)
{
    unsigned long sum = 0;
    for (size_t i = 0; i < f->len; i++) sum += f->data[i];
    return sum;
}

static int heif_plain(const file *in)
{
    struct heif_context *ctx = heif_context_alloc();
    struct heif_image_handle *hd = NULL;
    struct heif_image *img = NULL;
    int ok = ctx && heif_context_read_from_memory_without_copy(ctx, in->data, in->len, NULL)
                            .code == heif_error_Ok &&
             heif_context_get_primary_image_handle(ctx, &hd).code == heif_error_Ok &&
             heif_decode_image(hd, &img, heif_colorspace_YCbCr, heif_chroma_420, NULL).code ==
                 heif_error_Ok;
    if (img) heif_image_release(img);
    if (hd) heif_image_handle_release(hd);
    if (ctx) heif_context_free(ctx);
    return ok;
}

static volatile unsigned long g_sink;

/* Seconds for one pass of kind (0 fast, 1 compat, 2 the library) over s on
 * one thread, best of reps. */
static double run_fmt(const set *s, imt_format fmt, int kind, int reps)
{
    double best = 1e300;
    imt_hasher *h = NULL;
    if (kind < 2) {
        imt_hash_opts o;
        imt_hash_opts_init(&o);
        o.mode = kind == 0 ? IMT_PDQ_FAST : IMT_PDQ_COMPAT;
        o.time_budget_ms = 0;
        if (imt_hasher_create(&h, &o) != IMT_OK) return 0;
    }
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        for (size_t i = 0; i < s->n; i++) {
            if (kind == 2) {
                if (fmt == IMT_FMT_WEBP) webp_plain(&s->f[i]);
                else if (fmt == IMT_FMT_GIF) gif_plain(&s->f[i]);
                else if (fmt == IMT_FMT_TIFF) g_sink += tiff_floor(&s->f[i]);
                else if (fmt == IMT_FMT_BMP) g_sink += bmp_floor(&s->f[i]);
                else heif_plain(&s->f[i]);
            } else {
                imt_hash_result res;
                imt_hash_memory(h, s->f[i].data, s->f[i].len, &res);
            }
        }
        double t = now_s() - t0;
        if (t < best) best = t;
    }
    imt_hasher_free(h);
    return best;
}

static void format_rows(const char *dir, size_t largest, int reps)
{
    static const struct {
        imt_format fmt;
        const char *name, *lib;
    } fm[] = {{IMT_FMT_WEBP, "WebP", "libwebp WebPDecodeRGB"},
              {IMT_FMT_GIF, "GIF", "giflib DGifSlurp"},
              {IMT_FMT_TIFF, "TIFF", "libtiff rows/tiles"},
              {IMT_FMT_BMP, "BMP", "byte pass (no library)"},
              {IMT_FMT_HEIF, "HEIF", "libheif decode"},
              {IMT_FMT_AVIF, "AVIF", "libheif decode"}};
    int header = 0;
    for (size_t k = 0; k < sizeof fm / sizeof fm[0]; k++) {
        set s = load_fmt(dir, largest, fm[k].fmt);
        if (!s.n) continue;
        double t[3];
        for (int m = 0; m < 3; m++) t[m] = run_fmt(&s, fm[k].fmt, m, reps);
        if (!header) {
            printf("per format, 1 thread, best of %d (img/s; time ratios to the library):\n",
                   reps);
            printf("  %-5s %5s %7s %9s %9s %9s  %-24s %8s %8s %8s\n", "fmt", "files", "MB",
                   "fast", "compat", "library", "library is", "fast/lib", "comp/lib",
                   "fast/cmp");
            header = 1;
        }
        printf("  %-5s %5zu %7.1f %9.1f %9.1f %9.1f  %-24s %8.3f %8.3f %8.3f\n", fm[k].name, s.n,
               s.bytes / 1e6, s.n / t[0], s.n / t[1], s.n / t[2], fm[k].lib, t[0] / t[2],
               t[1] / t[2], t[0] / t[1]);
        for (size_t i = 0; i < s.n; i++) {
            free(s.f[i].name);
            free(s.f[i].data);
        }
        free(s.f);
    }
}

/* ---- the floor: libjpeg at 1/8 to greyscale ------------------------------ */
typedef struct floor_err {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
} floor_err;

static void floor_error_exit(j_common_ptr c) { longjmp(((floor_err *)c->err)->jb, 1); }
static void floor_emit(j_common_ptr c, int level) { (void)c; (void)level; }

typedef struct floor_ctx {
    struct jpeg_decompress_struct cinfo;
    floor_err jerr;
    unsigned char *row;
    size_t row_cap;
} floor_ctx;

static void floor_init(floor_ctx *f)
{
    memset(f, 0, sizeof *f);
    f->cinfo.err = jpeg_std_error(&f->jerr.pub);
    f->jerr.pub.error_exit = floor_error_exit;
    f->jerr.pub.emit_message = floor_emit;
    jpeg_create_decompress(&f->cinfo);
}

static void floor_free(floor_ctx *f)
{
    jpeg_destroy_decompress(&f->cinfo);
    free(f->row);
}

static int floor_decode(floor_ctx *f, const file *in)
{
    j_decompress_ptr c = &f->cinfo;
    if (setjmp(f->jerr.jb)) {
        jpeg_abort_decompress(c);
        return 0;
    }
    jpeg_mem_src(c, in->data, (unsigned long)in->len);
    jpeg_read_header(c, TRUE);
    c->scale_num = 1;
    c->scale_denom = 8;
    c->do_fancy_upsampling = FALSE;
    c->do_block_smoothing = FALSE;
    if (c->jpeg_color_space != JCS_CMYK && c->jpeg_color_space != JCS_YCCK)
        c->out_color_space = JCS_GRAYSCALE;
    jpeg_start_decompress(c);
    size_t need = (size_t)c->output_width * (size_t)c->output_components;
    if (need > f->row_cap) {
        free(f->row);
        f->row = malloc(need);
        f->row_cap = f->row ? need : 0;
        if (!f->row) { jpeg_abort_decompress(c); return 0; }
    }
    JSAMPROW rows[1] = {f->row};
    while (c->output_scanline < c->output_height) jpeg_read_scanlines(c, rows, 1);
    jpeg_finish_decompress(c);
    return 1;
}

/* ---- runs ------------------------------------------------------------------ */
enum { M_FAST, M_COMPAT, M_FLOOR };

static int pdq_available = 1;

/* Seconds for one pass over s with `threads` threads (each with its own
 * hasher or libjpeg object), best of reps. */
static double run_pass(const set *s, int kind, int threads, int reps)
{
    double best = 1e300;
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
#ifdef IMT_HAVE_OPENMP
#pragma omp parallel num_threads(threads)
#endif
        {
            imt_hasher *h = NULL;
            floor_ctx fl;
            if (kind == M_FLOOR) floor_init(&fl);
            else {
                imt_hash_opts o;
                imt_hash_opts_init(&o);
                o.mode = kind == M_FAST ? IMT_PDQ_FAST : IMT_PDQ_COMPAT;
                o.time_budget_ms = 0;
                if (imt_hasher_create(&h, &o) != IMT_OK) h = NULL;
            }
#ifdef IMT_HAVE_OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
            for (long i = 0; i < (long)s->n; i++) {
                if (kind == M_FLOOR) {
                    floor_decode(&fl, &s->f[i]);
                } else if (h) {
                    imt_hash_result res;
                    imt_err e = imt_hash_memory(h, s->f[i].data, s->f[i].len, &res);
                    if (e == IMT_E_INTERNAL) pdq_available = 0;
                }
            }
            if (kind == M_FLOOR) floor_free(&fl);
            imt_hasher_free(h);
        }
        (void)threads;
        double t = now_s() - t0;
        if (t < best) best = t;
    }
    return best;
}

static void print_row(const char *what, const set *s, double t1, double tn, int threads)
{
    printf("  %-22s 1 thread: %8.1f img/s %8.1f MB/s   %2d threads: %8.1f img/s %8.1f MB/s\n",
           what, s->n / t1, s->bytes / 1e6 / t1, threads, s->n / tn, s->bytes / 1e6 / tn);
}

static int cmp_int(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

static void distances(const set *s)
{
    imt_hash_opts o;
    imt_hasher *hf = NULL, *hc = NULL;
    imt_hash_opts_init(&o);
    o.time_budget_ms = 0;
    o.mode = IMT_PDQ_FAST;
    if (imt_hasher_create(&hf, &o) != IMT_OK) return;
    o.mode = IMT_PDQ_COMPAT;
    if (imt_hasher_create(&hc, &o) != IMT_OK) { imt_hasher_free(hf); return; }
    int hist[9] = {0}; /* 0,1,2,3-4,5-6,7-10,11-15,16-31,32+ */
    int *q80 = malloc(s->n * sizeof *q80);
    size_t nq = 0, failed = 0;
    for (size_t i = 0; i < s->n; i++) {
        imt_hash_result a, b;
        if (imt_hash_memory(hf, s->f[i].data, s->f[i].len, &a) != IMT_OK ||
            imt_hash_memory(hc, s->f[i].data, s->f[i].len, &b) != IMT_OK) {
            failed++;
            continue;
        }
        int d = imt_pdq_distance(&a.pdq[0], &b.pdq[0]);
        int k = d == 0 ? 0 : d == 1 ? 1 : d == 2 ? 2 : d <= 4 ? 3 : d <= 6 ? 4 : d <= 10 ? 5
              : d <= 15 ? 6 : d <= 31 ? 7 : 8;
        hist[k]++;
        if (b.quality >= 80 && q80) q80[nq++] = d;
    }
    static const char *lab[9] = {"0", "1", "2", "3-4", "5-6", "7-10", "11-15", "16-31", "32+"};
    printf("fast vs compat Hamming distance over %zu files (%zu failed):\n", s->n, failed);
    for (int k = 0; k < 9; k++) printf("  %-6s %5d\n", lab[k], hist[k]);
    if (nq) {
        qsort(q80, nq, sizeof *q80, cmp_int);
        printf("  compat quality >= 80: %zu files, median %d, max %d\n", nq, q80[nq / 2],
               q80[nq - 1]);
    }
    free(q80);
    imt_hasher_free(hf);
    imt_hasher_free(hc);
}

int main(int argc, char **argv)
{
    /* As the imgtriage CLI does: big per-image blocks of libjpeg stay in the
     * heap instead of fresh mmap pages per image; every mode and the floor
     * get the same setting. */
    imt_tune_allocator();
    /* libheif's plugins live while some heif_init is outstanding: the
     * library's hashers init and deinit it, so the plain decode keeps its
     * own for the program's life. */
    heif_init(NULL);
    const char *dir = NULL;
    int threads = 1, reps = 3;
    size_t largest = 0;
#ifdef IMT_HAVE_OPENMP
    threads = omp_get_num_procs();
#endif
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--largest") && i + 1 < argc) largest = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (argv[i][0] != '-' && !dir) dir = argv[i];
        else {
            fprintf(stderr, "usage: %s DIR [--threads N] [--largest K] [--reps R]\n", argv[0]);
            return 2;
        }
    }
    if (!dir) {
        fprintf(stderr, "usage: %s DIR [--threads N] [--largest K] [--reps R]\n", argv[0]);
        return 2;
    }
    if (threads < 1) threads = 1;
    if (reps < 1) reps = 1;
    format_rows(dir, largest, reps);
    set s = load_dir(dir, largest);
    if (s.n == 0) {
        printf("bench_hash: no JPEG files in %s\n", dir);
        return 0;
    }
    printf("bench_hash: %zu JPEGs, %.1f MB, in memory (reading not timed); best of %d; "
           "imgtriage %s\n", s.n, s.bytes / 1e6, reps, imt_version());

    double t[3][2];
    for (int k = 0; k < 3; k++) {
        t[k][0] = run_pass(&s, k, 1, reps);
        t[k][1] = threads > 1 ? run_pass(&s, k, threads, reps) : t[k][0];
    }
    if (!pdq_available)
        printf("NOTE: the PDQ stage is not built in this tree: fast/compat are decode-only\n");
    print_row("fast", &s, t[M_FAST][0], t[M_FAST][1], threads);
    print_row("compat", &s, t[M_COMPAT][0], t[M_COMPAT][1], threads);
    print_row("floor (libjpeg 1/8 grey)", &s, t[M_FLOOR][0], t[M_FLOOR][1], threads);
    printf("  time ratios: fast/floor %.3f (1 thread) %.3f (%d threads); "
           "fast/compat %.3f (1 thread) %.3f (%d threads)\n",
           t[M_FAST][0] / t[M_FLOOR][0], t[M_FAST][1] / t[M_FLOOR][1], threads,
           t[M_FAST][0] / t[M_COMPAT][0], t[M_FAST][1] / t[M_COMPAT][1], threads);

    char pdir[4096];
    snprintf(pdir, sizeof pdir, "%s/progressive", dir);
    set p = load_dir(pdir, largest);
    if (p.n) {
        double with = run_pass(&p, M_FAST, 1, reps);
        setenv("IMT_JPEG_FULL_SCANS", "1", 1);
        double without = run_pass(&p, M_FAST, 1, reps);
        unsetenv("IMT_JPEG_FULL_SCANS");
        double fl = run_pass(&p, M_FLOOR, 1, reps);
        printf("progressive copies (%zu files, %.1f MB), 1 thread:\n", p.n, p.bytes / 1e6);
        printf("  fast, DC-only early stop  %8.1f img/s\n", p.n / with);
        printf("  fast, all scans           %8.1f img/s   (early stop speedup %.2fx)\n",
               p.n / without, without / with);
        printf("  floor (libjpeg 1/8 grey)  %8.1f img/s   (fast/floor %.3f)\n", p.n / fl,
               with / fl);
    }
    if (pdq_available) distances(&s);
    else printf("distances: skipped (no PDQ stage)\n");
    return 0;
}
