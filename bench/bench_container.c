/* bench/bench_container.c -- photos inside a ZIP against the same photos as
 * files, scanned in one run (imt_scan_run, no index: read, digests, decode,
 * PDQ with the 8 dihedral variants, as a scan does).
 *
 *   usage: bench_container [PHOTO_DIR] [--threads N] [--reps R]
 *
 * PHOTO_DIR: a folder of JPEGs (scripts/fetch-photos.sh fetches real ones);
 * without it, 48 photos of 1600x1200 are made with ImageMagick (plasma,
 * fixed seeds). The ZIP is made by zip(1) (deflate, as photo archives
 * usually are) in a temporary folder. Prints members/s and MB/s (photo
 * bytes) for both, and the ratio; best of R runs (default 3) after a
 * warm-up, so the files are in the page cache: the CPU pipeline is measured.
 */
#include "imgtriage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct tally {
    unsigned long long items, bytes;
} tally;

static int on_rec(void *ctx, const imt_scan_record *r)
{
    tally *t = ctx;
    /* the photos: walked files, or the ZIP's members (not the ZIP itself) */
    if (r->hash && !r->container.expanded && r->hash->format == IMT_FMT_JPEG) {
        t->items++;
        t->bytes += r->hash->file_size;
    }
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double run(const char *path, int threads, tally *t)
{
    imt_scan_opts o;
    imt_scan_opts_init(&o);
    o.threads = threads;
    memset(t, 0, sizeof *t);
    double t0 = now_s();
    imt_err e = imt_scan_run(NULL, &path, 1, &o, on_rec, t, NULL, 0);
    double dt = now_s() - t0;
    if (e) {
        fprintf(stderr, "bench_container: scan of %s failed: %s\n", path, imt_strerror(e));
        exit(1);
    }
    return dt;
}

int main(int argc, char **argv)
{
    const char *dir = NULL;
    int threads = 1, reps = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else dir = argv[i];
    }
    if (threads < 1) threads = 1;
    if (reps < 1) reps = 1;
    imt_tune_allocator();
    char tmp[] = "/tmp/imt-bench-cont-XXXXXX", cmd[16384], photos[256], zip[256];
    if (!mkdtemp(tmp)) return 1;
    if (!dir) {
        snprintf(photos, sizeof photos, "%s/photos", tmp);
        snprintf(cmd, sizeof cmd, "mkdir -p %s && for s in $(seq 1 48); do convert -size "
                 "1600x1200 -seed $s plasma: -quality 90 %s/p$s.jpg || exit 1; done",
                 photos, photos);
        fprintf(stderr, "bench_container: making 48 photos with ImageMagick...\n");
        if (system(cmd) != 0) return 1;
        dir = photos;
    }
    snprintf(zip, sizeof zip, "%s/photos.zip", tmp);
    snprintf(cmd, sizeof cmd, "cd '%s' && zip -q -r '%s' . -i '*.jpg' '*.JPG' '*.jpeg'", dir,
             zip);
    if (system(cmd) != 0) {
        fprintf(stderr, "bench_container: zip failed (is zip installed?)\n");
        return 1;
    }
    tally tf, tz;
    double bf = 1e30, bz = 1e30;
    run(dir, threads, &tf); /* warm-up */
    run(zip, threads, &tz);
    for (int r = 0; r < reps; r++) {
        double a = run(dir, threads, &tf), b = run(zip, threads, &tz);
        if (a < bf) bf = a;
        if (b < bz) bz = b;
    }
    printf("bench_container: %d thread(s), best of %d\n", threads, reps);
    printf("  files  %4llu photos %8.1f MB  %7.3f s  %7.1f photos/s  %7.1f MB/s\n", tf.items,
           (double)tf.bytes / 1e6, bf, (double)tf.items / bf, (double)tf.bytes / 1e6 / bf);
    printf("  zip    %4llu members%7.1f MB  %7.3f s  %7.1f members/s %6.1f MB/s\n", tz.items,
           (double)tz.bytes / 1e6, bz, (double)tz.items / bz, (double)tz.bytes / 1e6 / bz);
    printf("  zip / files throughput: %.2f\n", bf / bz);
    if (tf.items != tz.items) printf("  WARNING: %llu files but %llu members\n", tf.items, tz.items);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    return 0;
}
