/* bench/bench_carve.c -- carving throughput against a plain pass over the
 * same bytes, in the same run.
 *
 *   bench_carve [--mb N] [--reps R] [--file] PICTURE...
 *
 * Builds N MiB (default 512) in memory the way unallocated space looks:
 * runs of random bytes (about 70%), runs of zeros (about 25%) and the
 * PICTUREs planted in turn (JPEG, PNG, ...; their bytes are the rest),
 * then, best of R runs (default 3), on one thread, prints MB/s for:
 *   carve    imt__carve over the buffer (an imt__io reading from memory)
 *   memchr   memchr for 0xFF over the buffer (the cheapest signature scan)
 *   sum      one pass adding the buffer's 64-bit words (reading every byte)
 * and the ratios carve/memchr and carve/sum (of rates). With --file the
 * buffer is also written to a temporary file and carved with imt_carve_fd
 * against read() of the same file in 4 MiB chunks (page cache, warm). The
 * hits found are counted against the pictures planted. */
#include "imgtriage.h"
#include "source/carve.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

typedef struct counts {
    uint64_t hits, truncated, bytes;
} counts;

static int on_hit(void *ctx, const imt_carve_hit *h)
{
    counts *c = ctx;
    c->hits++;
    c->truncated += h->truncated != 0;
    c->bytes += h->length;
    return 0;
}

static unsigned char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = n > 0 ? malloc((size_t)n) : NULL;
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    *len = p ? (size_t)n : 0;
    return p;
}

int main(int argc, char **argv)
{
    size_t mb = 512;
    int reps = 3, use_file = 0, npics = 0;
    unsigned char *pic[64];
    size_t plen[64];
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--mb") && i + 1 < argc) mb = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--file")) use_file = 1;
        else if (npics < 64) {
            pic[npics] = read_all(argv[i], &plen[npics]);
            if (!pic[npics]) {
                fprintf(stderr, "bench_carve: cannot read %s\n", argv[i]);
                return 2;
            }
            npics++;
        }
    }
    if (mb < 1 || reps < 1) {
        fprintf(stderr, "usage: bench_carve [--mb N] [--reps R] [--file] PICTURE...\n");
        return 2;
    }
    size_t n = mb << 20;
    unsigned char *buf = malloc(n);
    if (!buf) return 2;
    size_t pos = 0, planted = 0, planted_bytes = 0;
    int k = 0;
    while (pos < n) {
        uint64_t r = next();
        size_t run = 4096 + (size_t)(r % (256 << 10));
        if (run > n - pos) run = n - pos;
        unsigned kind = (unsigned)(r >> 40) % 100;
        if (kind < 25) {
            memset(buf + pos, 0, run);
        } else {
            for (size_t i = 0; i + 8 <= run; i += 8) {
                uint64_t v = next();
                memcpy(buf + pos + i, &v, 8);
            }
            for (size_t i = run & ~(size_t)7; i < run; i++) buf[pos + i] = (unsigned char)next();
        }
        pos += run;
        if (npics && pos < n && (kind % 5) == 0 && plen[k % npics] <= n - pos) {
            memcpy(buf + pos, pic[k % npics], plen[k % npics]);
            pos += plen[k % npics];
            planted_bytes += plen[k % npics];
            planted++;
            k++;
        }
    }

    imt__memio mio;
    imt__io io;
    imt__memio_init(&mio, buf, n, &io);
    imt_carve_opts o;
    imt_carve_opts_init(&o);
    double best_carve = 1e30, best_memchr = 1e30, best_sum = 1e30;
    counts c = {0, 0, 0};
    imt_carve_stats st;
    volatile uint64_t sink = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        counts cc = {0, 0, 0};
        if (imt__carve(&io, &o, on_hit, &cc, &st) != IMT_OK) return 1;
        double t1 = now();
        if (t1 - t0 < best_carve) best_carve = t1 - t0;
        c = cc;
        t0 = now();
        uint64_t ff = 0;
        const unsigned char *p = buf, *end = buf + n;
        while ((p = memchr(p, 0xFF, (size_t)(end - p))) != NULL) {
            ff++;
            p++;
        }
        t1 = now();
        if (t1 - t0 < best_memchr) best_memchr = t1 - t0;
        sink += ff;
        t0 = now();
        uint64_t s = 0;
        for (size_t i = 0; i + 8 <= n; i += 8) {
            uint64_t v;
            memcpy(&v, buf + i, 8);
            s += v;
        }
        t1 = now();
        if (t1 - t0 < best_sum) best_sum = t1 - t0;
        sink += s;
    }
    double m = (double)n / 1e6;
    printf("bench_carve: %zu MiB (random ~70%%, zeros ~25%%, %zu pictures planted, %.1f MB), "
           "best of %d, 1 thread\n", mb, planted, planted_bytes / 1e6, reps);
    printf("  carve    %8.1f MB/s  (%llu hits, %llu truncated, %.1f MB carved; %llu candidates, "
           "%.2f bytes examined per byte)\n", m / best_carve, (unsigned long long)c.hits,
           (unsigned long long)c.truncated, c.bytes / 1e6, (unsigned long long)st.candidates,
           (double)st.examined / (double)n);
    printf("  memchr   %8.1f MB/s  (0xFF over the same bytes)\n", m / best_memchr);
    printf("  sum      %8.1f MB/s  (every 64-bit word)\n", m / best_sum);
    printf("  ratio    carve/memchr %.3f, carve/sum %.3f\n", best_memchr / best_carve,
           best_sum / best_carve);

    if (use_file) {
        char path[] = "/tmp/bench-carve-XXXXXX";
        int fd = mkstemp(path);
        if (fd < 0) return 2;
        unlink(path);
        for (size_t w = 0; w < n;) {
            ssize_t k2 = write(fd, buf + w, n - w);
            if (k2 <= 0) return 2;
            w += (size_t)k2;
        }
        double best_fd = 1e30, best_read = 1e30;
        unsigned char *rb = malloc((size_t)4 << 20);
        for (int r = 0; r < reps; r++) {
            double t0 = now();
            counts cc = {0, 0, 0};
            if (imt_carve_fd(fd, 0, NULL, on_hit, &cc, NULL) != IMT_OK) return 1;
            double t1 = now();
            if (t1 - t0 < best_fd) best_fd = t1 - t0;
            t0 = now();
            uint64_t s = 0;
            for (off_t off = 0;;) {
                ssize_t got = pread(fd, rb, (size_t)4 << 20, off);
                if (got <= 0) break;
                s += rb[0];
                off += got;
            }
            t1 = now();
            sink += s;
            if (t1 - t0 < best_read) best_read = t1 - t0;
        }
        printf("  file: carve (imt_carve_fd) %.1f MB/s, read() 4 MiB chunks %.1f MB/s, "
               "ratio %.3f\n", m / best_fd, m / best_read, best_read / best_fd);
        free(rb);
        close(fd);
    }
    free(buf);
    for (int i = 0; i < npics; i++) free(pic[i]);
    return sink == 42 ? 3 : 0;
}
