/* bench/bench_image.c -- the engine's read rate of a disk image (raw or
 * E01) through engine/source's reader, in 1 MiB reads, as the scan's
 * workers and --verify-image read it. bench/bench_image.sh compares it with
 * `cat` and `ewfexport` of the same image in the same run.
 *   usage: bench_image IMAGE [REPS]   prints: MB/s of the best of REPS */
#include "source/source.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_image IMAGE [REPS]\n");
        return 2;
    }
    int reps = argc > 2 ? atoi(argv[2]) : 3;
    imt__img_kind kind;
    struct stat st;
    if (stat(argv[1], &st) != 0 || !imt__img_sniff(argv[1], S_ISBLK(st.st_mode), &kind)) {
        fprintf(stderr, "bench_image: %s is not a disk image\n", argv[1]);
        return 2;
    }
    enum { CHUNK = 1 << 20 };
    char *buf = malloc(CHUNK), detail[256];
    double best = 1e30;
    uint64_t size = 0;
    for (int r = 0; r < reps + 1 && buf; r++) { /* the first run warms the cache */
        imt__img *img;
        if (imt__img_open(&img, argv[1], kind, detail, sizeof detail) != IMT_OK) {
            fprintf(stderr, "bench_image: %s\n", detail);
            return 1;
        }
        size = imt__img_size(img);
        double t0 = now_s();
        for (uint64_t off = 0; off < size;) {
            size_t got = 0;
            if (imt__img_pread(img, off, buf, CHUNK, &got, detail, sizeof detail) != IMT_OK ||
                !got) {
                fprintf(stderr, "bench_image: %s\n", detail);
                return 1;
            }
            off += got;
        }
        double t = now_s() - t0;
        if (r && t < best) best = t;
        imt__img_close(img);
    }
    free(buf);
    printf("%.1f\n", (double)size / 1e6 / best);
    return 0;
}
