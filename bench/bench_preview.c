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
 * seeks. Then the same tree in a FAT32 disk image (mkfs.vfat, mtools'
 * mcopy; skipped with a line saying so when they are missing), both runs
 * again: the preview lists it through The Sleuth Kit first, the full scan
 * walks it in TSK's order while reading.
 *
 * Then the block table (index import-files --blocks): K MiB of known files
 * (random content, 256 KiB each) stored, the bytes per stored block from
 * LMDB's page counts, and lookups/s on one thread of keys that miss (what a
 * sample mostly is) and keys that hit, against hashing the 4 KiB blocks
 * (what each lookup of a sample also costs).
 *
 * Usage: bench_preview [-s SYSTEM_FILES] [-b BYTES] [-t THREADS] [-k KNOWN_MIB]
 *                      SHARED_DIR */
#include "imgtriage.h"

#include <fcntl.h>
#include <getopt.h>
#include <stdint.h>
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

static int blocks_bench(const char *root, unsigned long mib)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/bidx", root);
    mkdir(p, 0700);
    imt_index *idx = NULL;
    imt_index_opts io;
    imt_index_opts_init(&io);
    io.read_only = 0;
    io.create = 1;
    if (imt_index_open(&idx, p, &io) != IMT_OK) return 1;
    imt_blockset *bs = NULL;
    if (imt_blockset_create(&bs) != IMT_OK) return 1;
    unsigned long nfiles = mib * 4;
    size_t fsz = 256 * 1024;
    uint8_t *buf = malloc(fsz);
    uint64_t *keys = malloc(nfiles * (fsz / 4096) * sizeof *keys), nk = 0, x = 0x9E3779B97F4A7C15ull;
    snprintf(p, sizeof p, "%s/known.bin", root);
    double th = 0;
    for (unsigned long f = 0; f < nfiles; f++) {
        for (size_t i = 0; i < fsz; i++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            buf[i] = (uint8_t)(x >> 24);
        }
        double t = now();
        for (size_t b = 0; b < fsz / 4096; b++) keys[nk++] = imt_block_key(buf + b * 4096);
        th += now() - t;
        FILE *o = fopen(p, "wb");
        if (!o || fwrite(buf, 1, fsz, o) != fsz || fclose(o) != 0) return 1;
        int fd = open(p, O_RDONLY);
        uint8_t md5[16] = {0}, sha1[20] = {0};
        md5[0] = (uint8_t)f, md5[1] = (uint8_t)(f >> 8); /* distinct files */
        if (fd < 0 || imt_blockset_add_fd(bs, (uint32_t)f + 1, "k", fd, fsz, md5, sha1)) return 1;
        close(fd);
    }
    imt_blockset_stats st;
    double t0 = now();
    if (imt_index_add_blocks(idx, bs, 1, &st) != IMT_OK) return 1;
    double tc = now() - t0;
    imt_blockset_free(bs);
    imt_block_reader *br = NULL;
    if (imt_block_reader_open(&br, idx) != IMT_OK) return 1;
    imt_block_hit h;
    int fnd, okall = 1;
    t0 = now();
    for (uint64_t i = 0; i < nk; i++) {
        imt_block_lookup(br, keys[(i * 7919) % nk], &h, &fnd);
        okall &= fnd;
    }
    double thit = now() - t0;
    t0 = now();
    uint64_t misses = 0;
    for (uint64_t i = 0; i < nk; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        imt_block_lookup(br, x, &h, &fnd);
        misses += !fnd;
    }
    double tmiss = now() - t0;
    imt_block_reader_close(br);
    imt_index_close(idx);
    free(buf);
    free(keys);
    printf("blocks: %lu MiB of known files, %llu blocks stored in %.2f s; table %.1f MB, %.1f bytes per stored block\n",
           mib, (unsigned long long)st.stored, tc, st.db_bytes / 1e6, st.bytes_per_block);
    printf("lookups (one thread): %.0f/s hitting%s, %.0f/s missing; hashing the 4 KiB blocks (MD5): %.0f/s\n",
           (double)nk / thit, okall ? "" : " (SOME MISSED)", (double)misses / tmiss, (double)nk / th);
    return !okall;
}

/* The full scan in walk order and the preview (--stop-after-hits 3) of dev
 * (a folder or a disk image), after one full read to warm the page cache. */
static int run_case(imt_index *idx, const char *dev, const imt_scan_opts *sop, const char *label)
{
    const char *paths[] = {dev};
    char det[256];
    imt_scan_opts so = *sop;

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
    /* (the full scan of an image also carves: a carved copy is a hit too) */
    if (e || e2 || wf.hits < 3 || wp.hits != 3) {
        fprintf(stderr, "unexpected: scan %s, preview %s, hits %llu / %llu\n", imt_strerror(e),
                imt_strerror(e2), (unsigned long long)wf.hits, (unsigned long long)wp.hits);
        return 1;
    }
    printf("%s: full scan, walk order:  first hit after %8.3f s (%6llu files read), decision (end) after %8.3f s (%llu files)\n",
           label, wf.first_hit, (unsigned long long)wf.files_at_hit, wf.end, (unsigned long long)wf.files);
    printf("%s: preview (--stop-after-hits 3): first hit after %8.3f s (%6llu files read), decision after %8.3f s (%llu files; listing %.3f s)\n",
           label, wp.first_hit, (unsigned long long)wp.files_at_hit, wp.end,
           (unsigned long long)wp.files, (double)st.enumerate_ms / 1000.0);
    printf("%s: ratio full/preview: first hit %.1fx, decision %.1fx; preview bound on the unread: at most %llu files with known material (95%%)\n",
           label, wf.first_hit / wp.first_hit, wf.end / wp.end, (unsigned long long)st.upper95);
    return 0;
}

int main(int argc, char **argv)
{
    unsigned long nsys = 20000, bytes = 16384;
    int threads = 0, c;
    unsigned long known_mib = 64;
    while ((c = getopt(argc, argv, "s:b:t:k:")) != -1) {
        if (c == 'k') { known_mib = strtoul(optarg, NULL, 10); continue; }
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
    char root[512], dev[600], p[1200], cmd[8192];
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

    imt_scan_opts so;
    imt_scan_opts_init(&so);
    so.threads = threads;
    printf("device: %lu system files of %lu bytes, 3 known pictures among 23 in Users/ann/Pictures; threads %d (0 = all)\n",
           nsys, bytes, threads);
    if (run_case(idx, dev, &so, "folder")) return 1;
    /* The same tree in a FAT32 image (mkfs.vfat and mtools; 4 KiB clusters),
     * system folders copied first so that they come first in walk order. */
    char img[700];
    snprintf(img, sizeof img, "%s/dev.img", root);
    unsigned long kib = (unsigned long)((nsys * ((bytes + 4095) / 4096 * 4096) + (8ul << 20)) / 1024 * 11 / 10) + 65536;
    snprintf(cmd, sizeof cmd,
             "command -v mkfs.vfat >/dev/null && command -v mcopy >/dev/null && "
             "mkfs.vfat -C -F 32 -s 8 '%s' %lu >/dev/null && mcopy -s -i '%s' '%s/Program Files' "
             "'%s/Windows' ::/ && mcopy -s -i '%s' '%s/Users' ::/",
             img, kib, img, dev, dev, img, dev);
    double t_img = now();
    if (system(cmd) != 0)
        printf("disk image: not measured (mkfs.vfat and mtools' mcopy are needed)\n");
    else {
        printf("disk image: the same tree in FAT32 (%.0f MB, made in %.1f s)\n",
               (double)kib / 1024.0, now() - t_img);
        if (run_case(idx, img, &so, "disk image")) return 1;
    }
    imt_index_close(idx);
    if (blocks_bench(root, known_mib)) return 1;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    return system(cmd) != 0;
}
