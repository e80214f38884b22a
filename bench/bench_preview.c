/* bench/bench_preview.c -- the preview (scan --budget) against a full scan
 * in walk order, in one run, on a generated device where known pictures sit
 * in user folders among many system and program files.
 *
 * The device (in $TMPDIR, removed at the end): S system files of B bytes
 * (random, so every byte is digested) under "Program Files" and "Windows"
 * (before "Users" in walk order), and under Users/ann/Pictures the three
 * known pictures (copies of shared PDQ vectors; the list is the reference
 * hasher's CSV lines for them) among twenty other pictures. Prints, for the
 * full scan and for the preview: the time to the first hit and files read
 * by then, and the time to the decision (full scan: its end; preview: all
 * three known pictures found, with --stop-after-hits 3, and the bound of
 * what it did not read), with the ratios. Both read from the page cache
 * (the device was just written): the ratio is the work saved, not disk
 * seeks.
 *
 * Usage: bench_preview [-s SYSTEM_FILES] [-b BYTES] [-t THREADS] SHARED_DIR */
#include "imgtriage.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct watch {
    double t0, first_hit, end;
    uint64_t files, files_at_hit, hits;
} watch;

static int on_rec(void *ctx, const imt_scan_record *r)
{
    watch *w = ctx;
    int hit = 0;
    for (size_t i = 0; i < r->n_matches; i++) hit |= r->matches[i].disposition == IMT_DISP_ALERT;
    if (r->hash) w->files++;
    if (hit && !w->hits++) {
        w->first_hit = now() - w->t0;
        w->files_at_hit = w->files;
    }
    return 0;
}

static int copy(const char *from, const char *to)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    char buf[65536];
    size_t n;
    int ok = a && b;
    while (ok && (n = fread(buf, 1, sizeof buf, a)) > 0) ok = fwrite(buf, 1, n, b) == n;
    if (a) fclose(a);
    if (b && fclose(b) != 0) ok = 0;
    return ok;
}

int main(int argc, char **argv)
{
    unsigned long nsys = 20000, bytes = 16384;
    int threads = 0, c;
    while ((c = getopt(argc, argv, "s:b:t:")) != -1) {
        if (c == 's') nsys = strtoul(optarg, NULL, 10);
        else if (c == 'b') bytes = strtoul(optarg, NULL, 10);
        else if (c == 't') threads = atoi(optarg);
        else return 2;
    }
    if (optind >= argc) {
        fprintf(stderr, "usage: bench_preview [-s SYSTEM_FILES] [-b BYTES] [-t THREADS] SHARED_DIR\n");
        return 2;
    }
    const char *shared = argv[optind];
    imt_tune_allocator();
    const char *td = getenv("TMPDIR");
    char root[512], dev[600], p[1200], cmd[2048];
    snprintf(root, sizeof root, "%s/bench-preview-XXXXXX", td && *td ? td : "/tmp");
    if (!mkdtemp(root)) { perror("mkdtemp"); return 1; }
    snprintf(dev, sizeof dev, "%s/dev", root);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/Users/ann/Pictures'", dev);
    if (system(cmd) != 0) return 1;
    /* System and program files: random bytes, 100 per folder. */
    char *buf = malloc(bytes);
    uint64_t x = 88172645463325252ull;
    for (unsigned long i = 0; i < nsys; i++) {
        if (i % 100 == 0) {
            snprintf(p, sizeof p, "%s/%s/d%05lu", dev, i < nsys / 2 ? "Program Files/app" : "Windows/System32", i / 100);
            snprintf(cmd, sizeof cmd, "mkdir -p '%s'", p);
            if (system(cmd) != 0) return 1;
        }
        for (unsigned long k = 0; k < bytes; k++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            buf[k] = (char)x;
        }
        snprintf(p, sizeof p, "%s/%s/d%05lu/f%07lu.dll", dev, i < nsys / 2 ? "Program Files/app" : "Windows/System32", i / 100, i);
        FILE *f = fopen(p, "wb");
        if (!f || fwrite(buf, 1, bytes, f) != bytes) return 1;
        fclose(f);
    }
    free(buf);
    static const char *const known[] = {"bridge-mods/aaa-orig.jpg",
                                        "reg-test-input/labelme-subset/q0291.jpg",
                                        "reg-test-input/pen-and-coaster.png"};
    static const char *const other[] = {"reg-test-input/labelme-subset/q0122.jpg",
                                        "reg-test-input/labelme-subset/q0746.jpg",
                                        "reg-test-input/labelme-subset/q1050.jpg",
                                        "reg-test-input/labelme-subset/q2821.jpg"};
    for (int i = 0; i < 3; i++) {
        char from[1024];
        snprintf(from, sizeof from, "%s/vectors/pdq/images/%s", shared, known[i]);
        snprintf(p, sizeof p, "%s/Users/ann/Pictures/known%d%s", dev, i, strrchr(known[i], '.'));
        if (!copy(from, p)) { fprintf(stderr, "cannot copy %s\n", from); return 1; }
    }
    for (int i = 0; i < 20; i++) {
        char from[1024];
        snprintf(from, sizeof from, "%s/vectors/pdq/images/%s", shared, other[i % 4]);
        snprintf(p, sizeof p, "%s/Users/ann/Pictures/other%02d.jpg", dev, i);
        if (!copy(from, p)) { fprintf(stderr, "cannot copy %s\n", from); return 1; }
    }
    snprintf(cmd, sizeof cmd,
             "grep -E ',(bridge-mods/aaa-orig\\.jpg|reg-test-input/labelme-subset/q0291\\.jpg|"
             "reg-test-input/pen-and-coaster\\.png)$' '%s/vectors/pdq/observed/cpp-shipped-imagemagick.csv'"
             " > '%s/list.csv'", shared, root);
    if (system(cmd) != 0) return 1;
    imt_index *idx = NULL;
    imt_index_opts io;
    imt_index_opts_init(&io);
    io.read_only = 0;
    io.create = 1;
    snprintf(p, sizeof p, "%s/idx", root);
    mkdir(p, 0700);
    if (imt_index_open(&idx, p, &io) != IMT_OK) { fprintf(stderr, "index: %s\n", imt_index_open_error()); return 1; }
    imt_import_opts im;
    imt_import_opts_init(&im);
    snprintf(p, sizeof p, "%s/list.csv", root);
    if (imt_index_import(idx, p, &im, NULL) != IMT_OK) { fprintf(stderr, "import: %s\n", imt_index_last_error(idx)); return 1; }

    const char *paths[] = {dev};
    imt_scan_opts so;
    imt_scan_opts_init(&so);
    so.threads = threads;
    char det[256];
    printf("device: %lu system files of %lu bytes, 3 known pictures among 23 in Users/ann/Pictures; threads %d (0 = all)\n",
           nsys, bytes, threads);

    /* Warm the page cache for both runs alike (one full read first). */
    watch w0 = {0};
    w0.t0 = now();
    imt_scan_run(idx, paths, 1, &so, on_rec, &w0, det, sizeof det);

    watch wf = {0};
    wf.t0 = now();
    imt_err e = imt_scan_run(idx, paths, 1, &so, on_rec, &wf, det, sizeof det);
    wf.end = now() - wf.t0;
    watch wp = {0};
    imt_triage_opts to;
    imt_triage_opts_init(&to);
    to.stop_after_hits = 3;
    imt_preview_stats st;
    wp.t0 = now();
    imt_err e2 = imt_triage_run(idx, paths, 1, &so, &to, on_rec, &wp, &st, det, sizeof det);
    wp.end = now() - wp.t0;
    if (e || e2 || wf.hits != 3 || wp.hits != 3) {
        fprintf(stderr, "unexpected: scan %s, preview %s, hits %llu / %llu\n", imt_strerror(e),
                imt_strerror(e2), (unsigned long long)wf.hits, (unsigned long long)wp.hits);
        return 1;
    }
    printf("full scan, walk order:  first hit after %8.3f s (%6llu files read), decision (end) after %8.3f s (%llu files)\n",
           wf.first_hit, (unsigned long long)wf.files_at_hit, wf.end, (unsigned long long)wf.files);
    printf("preview (--stop-after-hits 3): first hit after %8.3f s (%6llu files read), decision after %8.3f s (%llu files; listing %.3f s)\n",
           wp.first_hit, (unsigned long long)wp.files_at_hit, wp.end,
           (unsigned long long)wp.files, (double)st.enumerate_ms / 1000.0);
    printf("ratio full/preview: first hit %.1fx, decision %.1fx; preview bound on the unread: at most %llu files with known material (95%%)\n",
           wf.first_hit / wp.first_hit, wf.end / wp.end, (unsigned long long)st.upper95);
    imt_index_close(idx);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    return system(cmd) != 0;
}
