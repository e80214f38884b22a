/* bench/bench_tiffbmp.c -- hashing throughput of TIFF and BMP files, per
 * format, against the library's own decode of the same files.
 *
 *   bench_tiffbmp DIR [--reps R]
 *
 * Every .tif/.tiff/.bmp file of DIR is read into memory first (reading is
 * excluded). Per format, on one thread, best of R runs, prints images/s and
 * MB/s (of file bytes) for:
 *   fast     imt_hash_memory, IMT_PDQ_FAST   (decode + PDQ)
 *   compat   imt_hash_memory, IMT_PDQ_COMPAT (decode + PDQ)
 *   floor    TIFF: libtiff alone reading every row or tile of the first
 *            page (TIFFReadScanline / TIFFReadTile) from memory, nothing
 *            else; BMP: one pass summing the file's bytes (no library
 *            decodes BMP; a BMP row costs about its bytes)
 * and the ratio fast/floor (of times). (These are this helper's formats;
 * the per-format rows of bench_hash belong to the merged tree.) */
#include "imgtriage.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <tiffio.h>

typedef struct file {
    char *name;
    unsigned char *data;
    size_t len;
} file;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
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

static int is_tiff(const char *n)
{
    size_t k = strlen(n);
    return (k > 4 && !strcasecmp(n + k - 4, ".tif")) || (k > 5 && !strcasecmp(n + k - 5, ".tiff"));
}

static int is_bmp(const char *n)
{
    size_t k = strlen(n);
    return k > 4 && !strcasecmp(n + k - 4, ".bmp");
}

static volatile unsigned long g_sink;

/* Best-of-reps seconds for one pass over the files of one format. what:
 * 0 fast, 1 compat, 2 floor. */
static double run(file *fs, int nf, int tiff, int what, int reps, imt_hasher *hf, imt_hasher *hc,
                  int *failed)
{
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        for (int i = 0; i < nf; i++) {
            if (is_tiff(fs[i].name) != tiff) continue;
            if (what == 2) {
                g_sink += tiff ? tiff_floor(&fs[i]) : bmp_floor(&fs[i]);
            } else {
                imt_hash_result res;
                imt_hash_memory(what ? hc : hf, fs[i].data, fs[i].len, &res);
                if (res.status != IMT_OK) (*failed)++;
            }
        }
        double t = now() - t0;
        if (t < best) best = t;
    }
    return best;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_tiffbmp DIR [--reps R]\n");
        return 2;
    }
    int reps = 3;
    for (int i = 2; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
    if (reps < 1) reps = 1;
    TIFFSetErrorHandler(NULL);
    TIFFSetWarningHandler(NULL);
    DIR *d = opendir(argv[1]);
    if (!d) {
        perror(argv[1]);
        return 2;
    }
    file *fs = NULL;
    int nf = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!is_tiff(e->d_name) && !is_bmp(e->d_name)) continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", argv[1], e->d_name);
        FILE *f = fopen(p, "rb");
        if (!f) continue;
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        fs = realloc(fs, sizeof *fs * (size_t)(nf + 1));
        fs[nf].name = strdup(e->d_name);
        fs[nf].data = malloc((size_t)n + 1);
        fs[nf].len = fread(fs[nf].data, 1, (size_t)n, f);
        fclose(f);
        nf++;
    }
    closedir(d);
    imt_hash_opts o;
    imt_hash_opts_init(&o);
    imt_hasher *hf = NULL, *hc = NULL;
    o.mode = IMT_PDQ_FAST;
    if (imt_hasher_create(&hf, &o) != IMT_OK) return 1;
    o.mode = IMT_PDQ_COMPAT;
    if (imt_hasher_create(&hc, &o) != IMT_OK) return 1;
    printf("bench_tiffbmp %s: best of %d, 1 thread\n", argv[1], reps);
    printf("%-5s %5s %9s %-7s %10s %9s %9s\n", "fmt", "files", "MB", "path", "images/s", "MB/s",
           "x floor");
    for (int tiff = 1; tiff >= 0; tiff--) {
        int n = 0;
        double mb = 0;
        for (int i = 0; i < nf; i++)
            if (is_tiff(fs[i].name) == tiff) {
                n++;
                mb += fs[i].len / 1048576.0;
            }
        if (!n) continue;
        int failed = 0;
        double tf = run(fs, nf, tiff, 0, reps, hf, hc, &failed);
        double tc = run(fs, nf, tiff, 1, reps, hf, hc, &failed);
        double tl = run(fs, nf, tiff, 2, reps, hf, hc, &failed);
        const char *names[3] = {"fast", "compat", tiff ? "libtiff" : "bytesum"};
        double ts[3] = {tf, tc, tl};
        for (int k = 0; k < 3; k++)
            printf("%-5s %5d %9.1f %-7s %10.1f %9.1f %9.2f\n", tiff ? "tiff" : "bmp", n, mb,
                   names[k], n / ts[k], mb / ts[k], ts[k] / tl);
        if (failed) printf("  (%d hashes failed)\n", failed / reps);
    }
    imt_hasher_free(hf);
    imt_hasher_free(hc);
    for (int i = 0; i < nf; i++) {
        free(fs[i].name);
        free(fs[i].data);
    }
    free(fs);
    return 0;
}
