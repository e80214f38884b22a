/* bench/bench_index.c -- the known-hash index against a brute-force blocked
 * SIMD scan of the same hashes, in one run.
 *
 * Generates N hashes (random, or noisy copies of a few thousand centres),
 * imports them as a PDQ CSV, then prints: import rate, bytes per entry on
 * disk, open time, queries/s single-thread and all-threads at r = 31 and
 * r = 63 with candidates verified per query, and the same figures for the
 * baseline scan. Queries: half are indexed hashes with 0..40 bits flipped,
 * half unrelated random hashes.
 *
 * Usage: bench_index [-n N] [-q QUERIES] [-t THREADS] [-R REPS] [-d random|clustered|both|md5|md5hex]
 *                    [--dir DIR] [--keep] [--reuse] [--memory-budget MIB] [--deltas K]
 *
 * After the import, K (default 1) imports of a 1% delta each (new random
 * hashes): time against the full import's, PDQ hashes written into
 * compacted levels, the levels after. The baseline scans every hash (all
 * levels and the delta).
 *
 * -d md5: digest-only import instead: an N-line md5sum list imported by a
 * child process with --memory-budget MIB (if given) and with the default:
 * records/s, peak RSS growth (VmHWM), batches, bytes per entry on disk.
 *
 * The open figures come first: cold (data.mdb evicted from the page cache
 * with posix_fadvise) and warm, with the full open-time check (every page,
 * the content), with the verified-state record the full check wrote (meta
 * and branch pages; the content by the record), and without the content
 * check (skip_content_check), each followed by the first 1,000 queries at
 * r = 31. The records go to DIR.vcache (XDG_CACHE_HOME). -d md5/md5hex:
 * 1,000 digest queries after a full-check open and a record open, cold and
 * warm, against one pass over the list.
 *
 * The query figures come after a cold open (data.mdb evicted first, then
 * opened as the CLI opens it), the normal case on a lab machine; the line
 * after the open says how much of the file the kernel mapped in 2 MiB
 * pages (engine/index/index.c: prefault_arrays).
 *
 * -R: each figure is the best of REPS runs, index and baseline interleaved.
 * --reuse opens the index left in DIR by an earlier --keep run with the same
 * -n and -d (the hashes are generated again, deterministically, for the
 * queries) instead of importing again (-d md5hex too: its list is kept
 * as DIR.hex). */
#include "index/index.h"

#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef IMT_HAVE_OPENMP
#include <omp.h>
#endif

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void rand_hash(imt_pdq *h)
{
    for (int i = 0; i < 32; i += 8) {
        uint64_t r = rnd();
        memcpy(h->bytes + i, &r, 8);
    }
}

static void flip(imt_pdq *h, int k)
{
    for (int i = 0; i < k; i++) {
        int b = (int)(rnd() % 256);
        h->bytes[b >> 3] ^= (uint8_t)(1u << (b & 7));
    }
}

static int nthreads = 1;
static int reps = 1; /* each figure is the best of reps runs (a shared machine) */
static int ndeltas = 1; /* 1% delta imports after the full import (--deltas) */
#define QB 64

typedef struct res {
    double qps;
    double cand;
    double buckets;
    double matches;
    double scan_share;
} res;

/* Index queries: every query through imt_query_pdq, threads each with
 * their own cursor over a static share of the queries. */
static res run_index(imt_index *idx, const imt_pdq *q, size_t nq, int radius, int threads)
{
    res r = {0, 0, 0, 0, 0};
    uint64_t cand = 0, buckets = 0, matches = 0, scans = 0, errors = 0;
    double t0 = now();
#ifdef IMT_HAVE_OPENMP
#pragma omp parallel num_threads(threads) reduction(+ : cand, buckets, matches, scans, errors)
#endif
    {
        imt_cursor *c;
        if (imt_cursor_open(&c, idx) != IMT_OK) errors++;
        else {
            int tid = 0, nt = 1;
#ifdef IMT_HAVE_OPENMP
            tid = omp_get_thread_num();
            nt = omp_get_num_threads();
#endif
            /* batches of QB queries, as the baseline; a batch is searched
             * query by query with MIH, or in one blocked pass by the scan */
            for (size_t b = (size_t)tid * QB; b < nq; b += (size_t)nt * QB) {
                const imt_match *m;
                size_t n, k = nq - b < QB ? nq - b : QB;
                if (imt_query_pdq_batch(c, &q[b], k, 1, radius, &m, &n) != IMT_OK) errors++;
                matches += n;
            }
            imt_query_counters qc;
            imt_cursor_counters(c, &qc);
            cand += qc.candidates;
            buckets += qc.buckets;
            scans += qc.scans;
            imt_cursor_close(c);
        }
    }
    (void)threads;
    double t = now() - t0;
    if (errors) fprintf(stderr, "bench: %llu query errors\n", (unsigned long long)errors);
    r.qps = (double)nq / t;
    r.cand = (double)cand / (double)nq;
    r.buckets = (double)buckets / (double)nq;
    r.matches = (double)matches / (double)nq;
    r.scan_share = (double)scans / (double)nq;
    return r;
}

static res run_brute(const uint8_t *arr, size_t n, const imt_pdq *q, size_t nq, int radius,
                     int threads);

/* Drop data.mdb's pages from the page cache (clean pages only: the index
 * was closed and synced), so that the next open reads from the disk. */
static int evict_file(const char *p)
{
    int fd = open(p, O_RDONLY);
    if (fd < 0) return -1;
    int rc = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
    return rc;
}

static int evict(const char *dir)
{
    char p[700];
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    return evict_file(p);
}

/* What the open-time content check costs, page cache warm and cold, and
 * what a cold open costs the first queries: open with the check (default)
 * and with skip_content_check, each followed by the query set at r = 31 on
 * one thread. The baseline is the unchecked open in the same run. */
static void wait_racy(const char *data);
static long proc_kb_in(const char *file, const char *field);
static void open_costs(const char *dir, const imt_pdq *q, size_t nq)
{
    {
        char p[700];
        snprintf(p, sizeof p, "%s/data.mdb", dir);
        wait_racy(p);
    }
    /* the baseline cold: read data.mdb from the disk (the hashes are in
     * it) and scan the array for the queries */
    {
        char p[700];
        snprintf(p, sizeof p, "%s/data.mdb", dir);
        if (evict(dir) != 0) printf("(cannot evict %s from the page cache)\n", dir);
        double t0 = now();
        int fd = open(p, O_RDONLY);
        static char buf[1 << 20];
        ssize_t n;
        uint64_t tot = 0;
        while (fd >= 0 && (n = read(fd, buf, sizeof buf)) > 0) tot += (uint64_t)n;
        if (fd >= 0) close(fd);
        double tr = now() - t0;
        imt_index *idx = NULL;
        if (imt_index_open(&idx, dir, NULL) != IMT_OK) exit(2);
        res b = run_brute(idx->view.seg[0].pdq, idx->view.seg[0].n, q, nq, 31, 1); /* level 0 */
        printf("brute force cold: read %.0f MB in %.2f s, then %.0f queries/s: %zu queries in %.2f s "
               "(%.0f/s, 1 thread)\n", tot / 1e6, tr, b.qps, nq, tr + nq / b.qps, nq / (tr + nq / b.qps));
        imt_index_close(idx);
    }
    /* the first 1,000 queries of a fresh open */
    size_t nf = nq < 1000 ? nq : 1000;
    static const char *how[3] = {"full check", "verified-state record", "content not checked"};
    for (int cold = 1; cold >= 0; cold--)
        for (int mode = 0; mode < 3; mode++) {
            /* -R: the rep with the least open + queries time */
            double to = 0;
            res r = {0, 0, 0, 0, 0};
            imt_index_stats s;
            for (int rp = 0; rp < reps; rp++) {
                imt_index_opts o;
                imt_index_opts_init(&o);
                o.full_check = mode == 0; /* and refreshes the record the next open uses */
                o.skip_content_check = mode == 2;
                if (cold && evict(dir) != 0) printf("(cannot evict %s from the page cache)\n", dir);
                imt_index *idx = NULL;
                double t0 = now();
                if (imt_index_open(&idx, dir, &o) != IMT_OK) exit(2);
                double to1 = now() - t0;
                res r1 = run_index(idx, q, nf, 31, 1);
                if (!rp || to1 + nf / r1.qps < to + nf / r.qps) {
                    to = to1;
                    r = r1;
                    imt_index_stats_get(idx, &s);
                }
                imt_index_close(idx);
            }
            printf("open %s, %-22s: %9.1f ms (%llu pages checked%s), then first %zu queries %.0f/s "
                   "(r = 31, 1 thread; %s%s); open + queries %.0f/s\n",
                   cold ? "cold" : "warm", how[mode], to * 1e3,
                   (unsigned long long)s.open_pages_read, s.pages_from_record ? ", leaves by the record" : "",
                   nf, r.qps, s.content_verified ? "verified" : "not verified",
                   s.content_from_record ? " by the record" : "", nf / (to + nf / r.qps));
        }
}

/* The baseline: a blocked scan of the flat array, 8 queries per kernel call
 * and QB queries per block of hashes (the block stays in L2). */
#define HB 4096
static res run_brute(const uint8_t *arr, size_t n, const imt_pdq *q, size_t nq, int radius,
                     int threads)
{
    res r = {0, 0, 0, 0, 0};
    imt__idx_scan_fn scan = imt__idx_scan_impl();
    uint64_t matches = 0;
    double t0 = now();
    size_t nbatches = (nq + QB - 1) / QB;
#ifdef IMT_HAVE_OPENMP
#pragma omp parallel num_threads(threads) reduction(+ : matches)
#endif
    {
        uint32_t *oi = malloc(HB * 8 * sizeof *oi);
        uint16_t *od = malloc(HB * 8 * sizeof *od);
#ifdef IMT_HAVE_OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
        for (size_t b = 0; b < nbatches; b++) {
            size_t q0 = b * QB, q1 = q0 + QB < nq ? q0 + QB : nq;
            for (size_t h = 0; h < n; h += HB) {
                size_t hn = n - h < HB ? n - h : HB;
                for (size_t j = q0; j < q1; j += 8) {
                    int k = (int)(q1 - j < 8 ? q1 - j : 8);
                    matches += scan(arr + h * 32, hn, q[j].bytes, k, radius, oi, od);
                }
            }
        }
        free(oi);
        free(od);
    }
    (void)threads;
    double t = now() - t0;
    r.qps = (double)nq / t;
    r.cand = (double)n;
    r.matches = (double)matches / (double)nq;
    return r;
}

static void dataset(const char *kind, size_t N, size_t nq, const char *dir, int keep, int reuse)
{
    printf("== %s: N = %zu, %zu queries (half near indexed hashes, 0..40 bits flipped; "
           "half unrelated), %d threads\n", kind, N, nq, nthreads);
    char csv[600], cmd[700];
    snprintf(csv, sizeof csv, "%s.csv", dir);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    struct stat sb;
    reuse = reuse && stat(dir, &sb) == 0;
    if (!reuse && system(cmd) != 0) return;
    imt_pdq *all = malloc(N * sizeof *all), *q = malloc(nq * sizeof *q);
    if (!all || !q) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    int clustered = !strcmp(kind, "clustered");
    size_t ncent = 5000;
    imt_pdq cent[5000];
    for (size_t i = 0; i < ncent; i++) rand_hash(&cent[i]);
    for (size_t i = 0; i < N; i++) {
        if (clustered) {
            all[i] = cent[rnd() % ncent];
            flip(&all[i], 1 + (int)(rnd() % 32));
        } else rand_hash(&all[i]);
    }
    for (size_t i = 0; i < nq; i++) {
        if (i & 1) rand_hash(&q[i]);
        else {
            q[i] = all[rnd() % N];
            flip(&q[i], (int)(rnd() % 41));
        }
    }
    imt_index *idx;
    imt_import_stats st = {0};
    double t0, ti = 0;
    if (reuse) {
        printf("import: skipped (--reuse: the index in %s, built by an earlier run)\n", dir);
        free(all);
        goto opened;
    }
    FILE *f = fopen(csv, "w");
    if (!f) {
        perror(csv);
        exit(2);
    }
    char hex[65];
    for (size_t i = 0; i < N; i++) {
        imt_pdq_to_hex(&all[i], hex);
        fprintf(f, "%s,%d\n", hex, (int)(i % 101));
    }
    fclose(f);
    free(all);

    imt_index_opts o;
    imt_index_opts_init(&o);
    o.read_only = 0;
    o.create = 1;
    if (imt_index_open(&idx, dir, &o) != IMT_OK) {
        fprintf(stderr, "%s\n", imt_index_open_error());
        exit(2);
    }
    imt_import_opts io;
    imt_import_opts_init(&io);
    /* clustered copies may repeat: merged as in-list repeats */
    t0 = now();
    imt_err e = imt_index_import(idx, csv, &io, &st);
    ti = now() - t0;
    if (e) {
        fprintf(stderr, "import: %s\n", imt_index_last_error(idx));
        exit(2);
    }
    /* 1% deltas: N / 100 new hashes each into the index just built (a
     * weekly list update); each becomes a compacted level when the delta
     * passes 65,536 hashes, merged with the smaller levels (the cascade),
     * so the hashes rewritten per delta stay a small multiple of it */
    {
        size_t nd = N / 100;
        double tsum = 0;
        uint64_t wsum = 0;
        for (int di = 0; di < ndeltas; di++) {
            f = fopen(csv, "w");
            if (!f) exit(2);
            for (size_t i = 0; i < nd; i++) {
                imt_pdq h;
                rand_hash(&h);
                imt_pdq_to_hex(&h, hex);
                fprintf(f, "%s,%d\n", hex, (int)(i % 101));
            }
            fclose(f);
            imt_import_stats sd;
            imt_import_opts_init(&io);
            io.again = 1;
            double td = now();
            if (imt_index_import(idx, csv, &io, &sd) != IMT_OK) {
                fprintf(stderr, "delta import: %s\n", imt_index_last_error(idx));
                exit(2);
            }
            td = now() - td;
            tsum += td;
            wsum += sd.pdq_written;
            imt_index_stats s1;
            imt_index_stats_get(idx, &s1);
            printf("delta import %d: %zu records (1%%) in %.2f s, %.0f records/s (the full import: "
                   "%.0f/s, %.1f s); %llu PDQ hashes written into a level (%.2f x the delta); "
                   "levels now", di + 1, nd, td, (double)nd / td, (double)st.records / ti, ti,
                   (unsigned long long)sd.pdq_written, (double)sd.pdq_written / (double)nd);
            for (int l = 0; l < s1.pdq_levels; l++) printf(" %llu", (unsigned long long)s1.pdq_level[l]);
            printf(", delta %llu\n", (unsigned long long)s1.pdq_delta);
        }
        if (ndeltas > 1)
            printf("deltas: %d x 1%% in %.2f s (%.2f s each, %.3f x the full import's time); "
                   "%.2f hashes written per delta hash\n", ndeltas, tsum, tsum / ndeltas,
                   tsum / ndeltas / ti, (double)wsum / ((double)nd * ndeltas));
    }
    imt_index_close(idx);
    unlink(csv);
opened:
    open_costs(dir, q, nq);
    if (getenv("BENCH_OPEN_ONLY")) return; /* the open figures only */
    /* the steady state after a cold open, the normal case in a lab
     * (evidence streamed through the page cache evicts the index): the
     * open reads the arrays in again, in 2 MiB pages where the kernel
     * and file system allow (engine/index/index.c: prefault_arrays) */
    if (evict(dir) != 0) printf("(cannot evict %s from the page cache)\n", dir);
    t0 = now();
    if (imt_index_open(&idx, dir, NULL) != IMT_OK) exit(2);
    double to = now() - t0;
    imt_index_stats s;
    imt_index_stats_get(idx, &s);
    if (!reuse)
        printf("import: %.0f records/s (%.1f s for %llu records, %llu repeats merged; "
               "parse, write, MIH build, fsync)\n", (double)st.records / ti, ti,
               (unsigned long long)st.records, (unsigned long long)st.duplicates);
    printf("disk: %.1f bytes per entry (%llu bytes); MIH: %d tables of", (double)s.file_bytes /
           (double)s.entries, (unsigned long long)s.file_bytes, s.mih_tables);
    for (int t = 0; t < s.mih_tables; t++) printf(" %d", s.mih_bits[t]);
    printf(" bits\nopen (cold): %.3f ms; file pages mapped whole as 2 MiB: %ld MB\n", to * 1e3,
           proc_kb_in("/proc/self/smaps_rollup", "FilePmdMapped") / 1024);
    /* the baseline scans every hash the index holds, all levels and the
     * delta, as one flat array */
    const imt__idx_view *v = &idx->view;
    size_t nall = (size_t)v->compacted + v->delta_n, k0 = 0;
    uint8_t *flat = malloc(nall ? nall * 32 : 1);
    if (!flat) exit(2);
    for (int sg = 0; sg < v->nseg; sg++) {
        memcpy(flat + k0 * 32, v->seg[sg].pdq, (size_t)v->seg[sg].n * 32);
        k0 += v->seg[sg].n;
    }
    for (size_t ch = 0; ch < v->nchunks; ch++) {
        memcpy(flat + k0 * 32, v->dpdq[ch], (size_t)v->dcount[ch] * 32);
        k0 += v->dcount[ch];
    }
    printf("levels:");
    for (int l = 0; l < s.pdq_levels; l++) printf(" %llu", (unsigned long long)s.pdq_level[l]);
    printf(", delta %llu\n", (unsigned long long)s.pdq_delta);
    printf("%-6s %-8s %-12s %12s %12s %14s %12s %10s %8s\n", "radius", "threads", "method",
           "queries/s", "per core", "cand./query", "buckets/q", "matches/q", "scanned");
    int radii[2] = {31, 63};
    for (int ri = 0; ri < 2; ri++) {
        int thr[2] = {1, nthreads};
        for (int ti2 = 0; ti2 < (nthreads > 1 ? 2 : 1); ti2++) {
            res a = {0, 0, 0, 0, 0}, b = a;
            /* interleaved, so that a burst of load hits both alike */
            for (int k = 0; k < reps; k++) {
                res x = run_index(idx, q, nq, radii[ri], thr[ti2]);
                res y = run_brute(flat, nall, q, nq, radii[ri], thr[ti2]);
                if (x.qps > a.qps) a = x;
                if (y.qps > b.qps) b = y;
            }
            printf("%-6d %-8d %-12s %12.0f %12.0f %14.0f %12.0f %10.2f %7.0f%%\n", radii[ri],
                   thr[ti2], "index", a.qps, a.qps / thr[ti2], a.cand, a.buckets, a.matches,
                   100 * a.scan_share);
            printf("%-6d %-8d %-12s %12.0f %12.0f %14.0f %12s %10.2f %8s\n", radii[ri], thr[ti2],
                   "brute-force", b.qps, b.qps / thr[ti2], b.cand, "", b.matches, "");
            printf("%-6d %-8d %-12s %11.1fx\n", radii[ri], thr[ti2], "ratio", a.qps / b.qps);
            if (a.matches != b.matches)
                printf("MISMATCH: index %.4f matches/query, brute force %.4f\n", a.matches, b.matches);
        }
    }
    /* what the levels cost a query: a copy of the index compacted into one
     * level, interleaved with this one and the baseline (r = 31, 1 thread) */
    if (s.pdq_levels > 1) {
        char one[700], cp[1500];
        snprintf(one, sizeof one, "%s.one", dir);
        snprintf(cp, sizeof cp, "rm -rf '%s' && cp -r '%s' '%s'", one, dir, one);
        imt_index *i1 = NULL;
        imt_index_opts o1;
        imt_index_opts_init(&o1);
        o1.read_only = 0;
        if (system(cp) == 0 && imt_index_open(&i1, one, &o1) == IMT_OK) {
            double tc = now();
            imt_err ce = imt_index_compact(i1);
            tc = now() - tc;
            imt_index_close(i1);
            i1 = NULL;
            /* opened as the index above was: cold */
            if (ce == IMT_OK && evict(one) == 0 && imt_index_open(&i1, one, NULL) == IMT_OK) {
                res a = {0, 0, 0, 0, 0}, b = a, y = a;
                for (int k = 0; k < reps; k++) {
                    res x1 = run_index(idx, q, nq, 31, 1), x2 = run_index(i1, q, nq, 31, 1);
                    res x3 = run_brute(flat, nall, q, nq, 31, 1);
                    if (x1.qps > a.qps) a = x1;
                    if (x2.qps > b.qps) b = x2;
                    if (x3.qps > y.qps) y = x3;
                }
                printf("r = 31, 1 thread, interleaved: %d levels %.0f queries/s (%.1fx brute force), "
                       "compacted into one (--compact, %.1f s) %.0f/s (%.1fx), brute force %.0f/s; "
                       "levels/one %.2f\n", s.pdq_levels, a.qps, a.qps / y.qps, tc, b.qps,
                       b.qps / y.qps, y.qps, a.qps / b.qps);
                imt_index_close(i1);
            }
        }
        snprintf(cp, sizeof cp, "rm -rf '%s'", one);
        if (system(cp) != 0) fprintf(stderr, "cannot remove %s\n", one);
    }
    imt_index_close(idx);
    free(flat);
    free(q);
    if (!keep && system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
}

static long proc_kb_in(const char *file, const char *field)
{
    FILE *f = fopen(file, "r");
    char line[256];
    long v = -1;
    size_t fl = strlen(field);
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, field, fl) && line[fl] == ':') v = strtol(line + fl + 1, NULL, 10);
    fclose(f);
    return v;
}

static long proc_kb(const char *field)
{
    return proc_kb_in("/proc/self/status", field);
}

static double t_import0;
static void stage_cb(void *opaque, const char *name)
{
    (void)opaque;
    if (!getenv("BENCH_STAGES")) return;
    fprintf(stderr, "  stage %-8s at %6.2f s (VmHWM %ld MB)\n", name, now() - t_import0, proc_kb("VmHWM") / 1024);
}

/* Bytes per entry of each sub-database: pages x page size / entries. */
static void db_bytes(imt_index *idx, FILE *f)
{
    static const char *names[] = {"entries", "md5", "sha1", "sha256", "cls", "seg", "lists", "meta"};
    MDB_dbi dbis[] = {idx->db_entries, idx->db_md5, idx->db_sha1, idx->db_sha256, idx->db_cls,
                      idx->db_seg, idx->db_lists, idx->db_meta};
    MDB_txn *txn;
    MDB_stat es;
    if (mdb_txn_begin(idx->env, NULL, MDB_RDONLY, &txn)) return;
    mdb_env_stat(idx->env, &es);
    imt_index_stats s;
    imt_index_stats_get(idx, &s);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        MDB_stat ms;
        if (mdb_stat(txn, dbis[i], &ms)) continue;
        uint64_t b = (uint64_t)(ms.ms_branch_pages + ms.ms_leaf_pages + ms.ms_overflow_pages) * es.ms_psize;
        if (ms.ms_entries)
            fprintf(f, "  %-8s %11zu records, %7zu branch + %9zu leaf + %7zu overflow pages: %6.2f bytes per entry\n",
                    names[i], ms.ms_entries, ms.ms_branch_pages, ms.ms_leaf_pages, ms.ms_overflow_pages,
                    s.entries ? (double)b / (double)s.entries : 0.0);
    }
    mdb_txn_abort(txn);
}


/* The verified-state record (engine/index/vcache.c) is only written for a
 * file whose mtime and ctime are over 2 s older than the check: wait. */
static void wait_racy(const char *data)
{
    struct stat st;
    struct timespec ts;
    if (stat(data, &st) != 0 || clock_gettime(CLOCK_REALTIME, &ts) != 0) return;
    double t = (double)st.st_ctim.tv_sec + st.st_ctim.tv_nsec * 1e-9;
    double m = (double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec * 1e-9;
    double age = (double)ts.tv_sec + ts.tv_nsec * 1e-9 - (t > m ? t : m);
    if (age < 2.5) usleep((useconds_t)((2.5 - age) * 1e6));
}

/* 1,000 digest queries (500 of the list's, 500 absent) in a fresh open,
 * data.mdb evicted from the page cache (cold) and not (warm); the baseline
 * is the brute force: one pass over the list file (evicted too when cold)
 * looking each line up in a table of the queries. */
static void digest_queries(const char *dir, const char *list, size_t N)
{
    enum { NQ = 1000 };
    static uint8_t q[NQ][16];
    FILE *f = fopen(list, "r");
    if (!f) return;
    char line[200];
    for (int i = 0; i < NQ; i++) {
        if (i & 1) {
            for (int j = 0; j < 16; j++) q[i][j] = (uint8_t)rnd();
            continue;
        }
        size_t at = (size_t)(rnd() % N);
        if (fseeko(f, (off_t)at * 33, SEEK_SET) != 0 || !fgets(line, sizeof line, f) ||
            imt_hex_decode(q[i], 16, line, 32) != IMT_OK)
            memset(q[i], 0, 16);
    }
    fclose(f);
    /* the queries in an open-addressing table for the baseline */
    static int tab[4096];
    memset(tab, -1, sizeof tab);
    for (int i = 0; i < NQ; i++) {
        uint32_t hsh;
        memcpy(&hsh, q[i], 4);
        size_t s = hsh & 4095;
        while (tab[s] >= 0) s = (s + 1) & 4095;
        tab[s] = i;
    }
    char dpath[700];
    snprintf(dpath, sizeof dpath, "%s/data.mdb", dir);
    /* the record needs a file older than its racy window */
    wait_racy(dpath);
    for (int run = 0; run < 4; run++) {
        int cold = run < 2, full = !(run & 1);
        if (cold) evict_file(dpath);
        imt_index_opts o;
        imt_index_opts_init(&o);
        o.full_check = full; /* and refreshes the record the next open uses */
        double t0 = now();
        imt_index *idx = NULL;
        if (imt_index_open(&idx, dir, &o) != IMT_OK) return;
        double to = now() - t0;
        imt_index_stats ist;
        imt_index_stats_get(idx, &ist);
        imt_cursor *c;
        if (imt_cursor_open(&c, idx) != IMT_OK) exit(2);
        size_t hits = 0;
        double t1 = now();
        for (int i = 0; i < NQ; i++) {
            const imt_match *m;
            size_t n;
            if (imt_query_digest(c, IMT_KIND_MD5, q[i], &m, &n) != IMT_OK) exit(2);
            hits += n;
        }
        double tq = now() - t1;
        imt_cursor_close(c);
        imt_index_close(idx);
        /* the baseline */
        if (cold) evict_file(list);
        double t2 = now();
        size_t bh = 0;
        FILE *lf = fopen(list, "r");
        static char buf[1 << 20];
        if (lf) setvbuf(lf, buf, _IOFBF, sizeof buf);
        while (lf && fgets(line, sizeof line, lf)) {
            uint8_t d[16];
            if (imt_hex_decode(d, 16, line, 32) != IMT_OK) continue;
            uint32_t hsh;
            memcpy(&hsh, d, 4);
            for (size_t s = hsh & 4095; tab[s] >= 0; s = (s + 1) & 4095)
                if (!memcmp(q[tab[s]], d, 16)) {
                    bh++;
                    break;
                }
        }
        if (lf) fclose(lf);
        double tb = now() - t2;
        printf("digests %s, %s: open %.1f ms (%llu pages checked), then %d queries in %.3f s "
               "(%.0f/s, %zu found); open + queries %.0f/s; brute force (one pass over the list) "
               "%.2f s (%.0f/s, %zu found): %.0fx\n", cold ? "cold" : "warm",
               ist.pages_from_record ? "record" : "full check", to * 1e3,
               (unsigned long long)ist.open_pages_read, NQ, tq, NQ / tq, hits, NQ / (to + tq), tb,
               NQ / tb, bh, tb / (to + tq));
    }
}

/* -d md5: an N-line md5sum list (random digests, 20-byte names); -d
 * md5hex: N bare MD5 digests (an NSRL-like digest-only list: compact
 * entries), generated once as DIR.hex and kept for later runs. Each is
 * imported into a fresh index by a child process for each budget:
 * records/s, peak RSS growth of the import (VmHWM), bytes per entry on
 * disk (and per sub-database). BENCH_STAGES=1 prints the import's stages
 * with their times. */
static void digests(size_t N, const char *dir, uint64_t budget, int bare, int keep, int reuse)
{
    char list[700], cmd[800];
    snprintf(list, sizeof list, bare ? "%s.hex" : "%s.md5", dir);
    printf("== %s list: N = %zu lines\n", bare ? "md5-hex (digest-only)" : "md5sum", N);
    struct stat lsb;
    if (!bare || stat(list, &lsb) != 0 || (uint64_t)lsb.st_size != (uint64_t)N * 33) {
        FILE *f = fopen(list, "w");
        if (!f) {
            perror(list);
            exit(2);
        }
        for (size_t i = 0; i < N; i++) {
            uint64_t a = rnd(), b = rnd();
            if (bare) fprintf(f, "%016llx%016llx\n", (unsigned long long)a, (unsigned long long)b);
            else
                fprintf(f, "%016llx%016llx  img/%012zu.jpg\n", (unsigned long long)a,
                        (unsigned long long)b, i);
        }
        fclose(f);
    } else {
        printf("(reusing %s)\n", list);
        for (size_t i = 0; i < 2 * N; i++) rnd(); /* the delta below must be new digests */
    }
    /* the 1% delta: N / 100 new digests */
    char dlist[720];
    snprintf(dlist, sizeof dlist, "%s.delta", list);
    FILE *df = fopen(dlist, "w");
    if (!df) exit(2);
    for (size_t i = 0; i < N / 100; i++) {
        uint64_t a = rnd(), b = rnd();
        fprintf(df, "%016llx%016llx\n", (unsigned long long)a, (unsigned long long)b);
    }
    fclose(df);
    uint64_t budgets[2] = {budget, 0};
    int nb = budget ? 2 : 1;
    char dpath[720];
    struct stat dsb;
    snprintf(dpath, sizeof dpath, "%s/data.mdb", dir);
    if (bare && reuse && stat(dpath, &dsb) == 0) {
        printf("import: skipped (--reuse: the index in %s, built by an earlier --keep run)\n", dir);
        nb = 0;
    }
    for (int k = 0; k < nb; k++) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) exit(2);
        int fd[2];
        if (pipe(fd) != 0) exit(2);
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            close(fd[0]);
            imt_index_opts o;
            imt_index_opts_init(&o);
            o.read_only = 0;
            o.create = 1;
            imt_index *idx;
            if (imt_index_open(&idx, dir, &o) != IMT_OK) _exit(2);
            imt_import_opts io;
            imt_import_opts_init(&io);
            io.memory_budget = budgets[k];
            io.stage = stage_cb;
            imt_import_stats st;
            long h0 = proc_kb("VmHWM");
            struct rusage ru0, ru1;
            getrusage(RUSAGE_SELF, &ru0);
            double t0 = t_import0 = now();
            imt_err e = imt_index_import(idx, list, &io, &st);
            double ti = now() - t0;
            getrusage(RUSAGE_SELF, &ru1);
            double cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
                         (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) * 1e-6;
            fprintf(stderr, "  import CPU time (user + sys): %.2f s, %.0f records per CPU second\n", cpu,
                    (double)st.records / cpu);
            long h1 = proc_kb("VmHWM");
            if (e) {
                fprintf(stderr, "import: %s\n", imt_index_last_error(idx));
                _exit(2);
            }
            imt_index_stats s;
            imt_index_stats_get(idx, &s);
            char out[300];
            int n = snprintf(out, sizeof out, "%.0f %.2f %ld %ld %llu %.1f\n", (double)st.records / ti,
                             ti, h0, h1, (unsigned long long)st.batches,
                             (double)s.file_bytes / (double)s.entries);
            if (write(fd[1], out, (size_t)n) != n) _exit(2);
            db_bytes(idx, stderr);
            if (k == nb - 1) {
                imt_import_opts_init(&io);
                io.format = bare ? "md5-hex" : NULL;
                io.stage = NULL;
                imt_import_stats sd;
                double td = now();
                if (imt_index_import(idx, dlist, &io, &sd) != IMT_OK) _exit(2);
                td = now() - td;
                imt_index_stats_get(idx, &s);
                fprintf(stderr, "delta import: %llu records (1%%) in %.2f s, %.0f records/s (the full "
                        "import: %.0f/s); then %.1f bytes per entry on disk\n",
                        (unsigned long long)sd.records, td, (double)sd.records / td,
                        (double)st.records / ti, (double)s.file_bytes / (double)s.entries);
            }
            imt_index_close(idx);
            _exit(0);
        }
        close(fd[1]);
        char buf[300] = "";
        ssize_t n = read(fd[0], buf, sizeof buf - 1);
        close(fd[0]);
        int status = 0;
        waitpid(pid, &status, 0);
        double rate, ti, bpe;
        long h0, h1;
        unsigned long long batches;
        if (n <= 0 || sscanf(buf, "%lf %lf %ld %ld %llu %lf", &rate, &ti, &h0, &h1, &batches, &bpe) != 6) {
            fprintf(stderr, "the import child failed\n");
            exit(2);
        }
        char bud[32];
        if (budgets[k]) snprintf(bud, sizeof bud, "%llu MiB", (unsigned long long)(budgets[k] >> 20));
        else snprintf(bud, sizeof bud, "default");
        printf("budget %-9s: %.0f records/s (%.1f s), peak RSS +%ld MB (VmHWM %ld MB), %llu "
               "batches, %.1f bytes per entry on disk\n", bud, rate, ti, (h1 - h0) / 1024, h1 / 1024,
               batches, bpe);
    }
    digest_queries(dir, list, N);
    unlink(dlist);
    if (!bare) unlink(list);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (!keep && system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
}

int main(int argc, char **argv)
{
    size_t N = 1000000, nq = 2000;
    const char *dist = "both", *dir = NULL;
    int keep = 0, reuse = 0;
#ifdef IMT_HAVE_OPENMP
    nthreads = omp_get_max_threads();
#endif
    static const struct option lo[] = {{"dir", 1, 0, 'D'}, {"keep", 0, 0, 'k'},
                                      {"reuse", 0, 0, 'r'}, {"memory-budget", 1, 0, 'M'},
                                      {"deltas", 1, 0, 'E'},
                                      {0, 0, 0, 0}};
    uint64_t budget = 0;
    int c;
    while ((c = getopt_long(argc, argv, "n:q:t:d:R:", lo, NULL)) != -1) {
        switch (c) {
        case 'n': N = strtoull(optarg, NULL, 10); break;
        case 'q': nq = strtoull(optarg, NULL, 10); break;
        case 't': nthreads = atoi(optarg); break;
        case 'R': reps = atoi(optarg); break;
        case 'd': dist = optarg; break;
        case 'D': dir = optarg; break;
        case 'k': keep = 1; break;
        case 'r': reuse = keep = 1; break;
        case 'M': budget = strtoull(optarg, NULL, 10) << 20; break;
        case 'E': ndeltas = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: bench_index [-n N] [-q QUERIES] [-t THREADS] [-R REPS] "
                            "[-d random|clustered|both|md5|md5hex] [--dir DIR] [--keep] [--reuse] "
                            "[--memory-budget MIB] [--deltas K]\n");
            return 2;
        }
    }
    if (N < 1000 || nq < 8 || nthreads < 1 || reps < 1 || ndeltas < 0) return 2;
    char d[600];
    snprintf(d, sizeof d, "%s", dir ? dir : "/tmp/bench_index.idx");
    unsigned f = imt__cpu_features();
    printf("bench_index: kernel %s\n", (f & IMT_CPU_AVX512) ? "avx512-vpopcntdq"
                                        : (f & IMT_CPU_AVX2) ? "avx2" : "portable");
    /* the opens' verified-state records in a folder of the bench's own */
    char vc[640];
    snprintf(vc, sizeof vc, "%s.vcache", d);
    setenv("XDG_CACHE_HOME", vc, 1);
    unsetenv("IMGTRIAGE_FULL_CHECK");
    if (!strcmp(dist, "md5")) digests(N, d, budget, 0, keep, 0);
    if (!strcmp(dist, "md5hex")) digests(N, d, budget, 1, keep, reuse);
    if (!strcmp(dist, "random") || !strcmp(dist, "both")) dataset("random", N, nq, d, keep, reuse);
    if (!strcmp(dist, "clustered") || !strcmp(dist, "both")) dataset("clustered", N, nq, d, keep, reuse);
    return 0;
}
