/* tests/test_preview.c -- the preview (engine/triage): the hypergeometric
 * bound against a brute-force oracle (Pascal's triangle), the coverage of
 * its 95% statement by simulation (thousands of seeded samples, also drawn
 * through the preview's own keyed order), the path classes, the spilled
 * listing, and a generated device: known pictures (altered copies of the
 * shared PDQ vectors, listed from the reference hasher's CSV) in user
 * folders among thousands of system files, found after reading a handful of
 * files where walk order reads thousands first; each record equal to the
 * full scan's; a device with none gives the stated bound. */
#include "testutil.h"
#include "triage/triage.h"

#include <math.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the bound against Pascal's triangle -------------------------------- */
enum { PN = 41 };
static long double C[PN][PN];

static void test_bound_oracle(void)
{
    for (int a = 0; a < PN; a++) {
        C[a][0] = C[a][a] = 1;
        for (int b = 1; b < a; b++) C[a][b] = C[a - 1][b - 1] + C[a - 1][b];
    }
    static const int Ns[] = {1, 5, 12, 25, 40};
    int cases = 0, ambiguous = 0;
    for (size_t t = 0; t < sizeof Ns / sizeof Ns[0]; t++) {
        int N = Ns[t];
        for (int n = 0; n <= N; n++)
            for (int x = 0; x <= n && x <= 6; x++) {
                int want = -1, near = 0;
                for (int K = x; K <= N - (n - x); K++) {
                    long double cdf = 0;
                    for (int j = 0; j <= x; j++)
                        if (j <= K && n - j <= N - K) cdf += C[K][j] * C[N - K][n - j];
                    cdf /= C[N][n];
                    if (fabsl(cdf - 0.05L) < 1e-9L) near = 1;
                    if (cdf > 0.05L) want = K;
                }
                uint64_t got = 0;
                REQUIRE(imt_triage_bound((uint64_t)N, (uint64_t)n, (uint64_t)x, 0.95, &got) ==
                        IMT_OK);
                cases++;
                if (near) { ambiguous++; continue; } /* a tie at exactly 5%: either */
                CHECKF((int)got == want, "N=%d n=%d x=%d: bound %llu, oracle %d", N, n, x,
                       (unsigned long long)got, want);
            }
    }
    fprintf(stderr, "bound: %d cases against Pascal's triangle (%d exact ties skipped)\n",
            cases, ambiguous);
    uint64_t u;
    CHECK(imt_triage_bound(10, 11, 0, 0.95, &u) == IMT_E_INVALID);
    CHECK(imt_triage_bound(10, 5, 6, 0.95, &u) == IMT_E_INVALID);
    CHECK(imt_triage_bound(10, 5, 0, 1.0, &u) == IMT_E_INVALID);
    /* n = N: exact; n = 0: nothing known */
    CHECK(imt_triage_bound(1000, 1000, 7, 0.95, &u) == IMT_OK && u == 7);
    CHECK(imt_triage_bound(1000, 0, 0, 0.95, &u) == IMT_OK && u == 1000);
    /* No hit among n << N: the rule of three, 3N/n, a little above the
     * exact bound (-ln 0.05 = 2.996 for sampling with replacement). */
    CHECK(imt_triage_bound(100000, 1000, 0, 0.95, &u) == IMT_OK && u >= 290 && u <= 300);
    CHECK(imt_triage_bound(1000000, 100, 0, 0.95, &u) == IMT_OK && u >= 29000 && u <= 30000);
}

/* ---- coverage by simulation -------------------------------------------- */
static uint64_t rng_state;
static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Draw n of N without replacement (K marked: items 0..K-1), T times; the
 * share of draws whose bound holds K. */
static double coverage(uint32_t N, uint32_t K, uint32_t n, int T, double *mean_u)
{
    uint32_t *v = malloc(N * sizeof *v);
    int ok = 0;
    double su = 0;
    for (int t = 0; t < T; t++) {
        for (uint32_t i = 0; i < N; i++) v[i] = i;
        uint32_t x = 0;
        for (uint32_t i = 0; i < n; i++) { /* partial Fisher-Yates */
            uint32_t j = i + (uint32_t)(rnd() % (N - i));
            uint32_t tmp = v[i];
            v[i] = v[j];
            v[j] = tmp;
            x += v[i] < K;
        }
        uint64_t u = 0;
        imt_triage_bound(N, n, x, 0.95, &u);
        ok += K <= u;
        su += (double)u;
    }
    free(v);
    if (mean_u) *mean_u = su / T;
    return (double)ok / T;
}

typedef struct keyed {
    uint64_t key;
    uint32_t i;
} keyed;

static int keyed_cmp(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    return x->key < y->key ? -1 : x->key > y->key;
}

static void test_coverage(void)
{
    rng_state = 42;
    static const struct { uint32_t N, K, n; } cf[] = {
        {1000, 5, 100}, {1000, 30, 50}, {5000, 3, 1000}, {200, 20, 20}, {10000, 1, 300},
        {10000, 100, 500}, {300, 0, 30}};
    const int T = 4000;
    double tol = 3.0 * sqrt(0.95 * 0.05 / T);
    for (size_t c = 0; c < sizeof cf / sizeof cf[0]; c++) {
        double mu;
        double cov = coverage(cf[c].N, cf[c].K, cf[c].n, T, &mu);
        fprintf(stderr, "coverage N=%u K=%u n=%u: %.4f (mean bound %.1f)\n", cf[c].N, cf[c].K,
                cf[c].n, cov, mu);
        CHECKF(cov >= 0.95 - tol, "N=%u K=%u n=%u: the 95%% bound held in %.4f of %d draws",
               cf[c].N, cf[c].K, cf[c].n, cov, T);
        /* not a bound that holds by being useless: far below N */
        CHECKF(mu < 0.5 * cf[c].N, "mean bound %.1f of N=%u", mu, cf[c].N);
    }
    /* Where the discreteness is small, the bound is tight: it misses now
     * and then (a bound of N would never miss). */
    double cov = coverage(10000, 100, 500, T, NULL);
    CHECKF(cov < 0.99, "coverage %.4f: not a 95%% bound but a looser one", cov);

    /* The preview's own order: device t's files are read in the order of
     * imt__triage_key(seed t, path); the first n form the sample. */
    enum { DN = 500, DK = 60, Dn = 100, DT = 3000 };
    static char paths[DN][40];
    keyed kv[DN];
    for (int i = 0; i < DN; i++) snprintf(paths[i], sizeof paths[i], "dev/Users/u/DCIM/IMG_%04d.jpg", i);
    int ok = 0, misses_exact = 0;
    for (int t = 0; t < DT; t++) {
        /* a different set of known files per device, from another generator */
        rng_state = 1000 + (uint64_t)t;
        unsigned char known[DN] = {0};
        for (int k = 0; k < DK;) {
            uint32_t j = (uint32_t)(rnd() % DN);
            if (!known[j]) { known[j] = 1; k++; }
        }
        for (int i = 0; i < DN; i++) {
            kv[i].key = imt__triage_key((uint64_t)t + 1, paths[i]);
            kv[i].i = (uint32_t)i;
        }
        qsort(kv, DN, sizeof *kv, keyed_cmp);
        uint32_t x = 0;
        for (int i = 0; i < Dn; i++) x += known[kv[i].i];
        uint64_t u = 0;
        imt_triage_bound(DN, Dn, x, 0.95, &u);
        ok += DK <= (int)u;
        misses_exact += DK > (int)u;
    }
    double dc = (double)ok / DT;
    fprintf(stderr, "coverage through the seeded order (N=%d K=%d n=%d): %.4f\n", DN, DK, Dn, dc);
    CHECKF(dc >= 0.95 - 3.0 * sqrt(0.95 * 0.05 / DT), "seeded order: coverage %.4f", dc);
    CHECK(misses_exact > 0); /* the order is random, not one that always finds them */

    /* The same seed, the same order (a rerun reads the same files); another
     * seed, another order. */
    CHECK(imt__triage_key(1, "a/b.jpg") == imt__triage_key(1, "a/b.jpg"));
    CHECK(imt__triage_key(1, "a/b.jpg") != imt__triage_key(2, "a/b.jpg"));
}

/* ---- classes ------------------------------------------------------------ */
static void test_classes(void)
{
    static const struct { const char *path; imt_triage_class c; } t[] = {
        {"ex/Users/bob/Pictures/a.JPG", IMT_CLASS_USER_MEDIA},
        {"ex/sdcard/DCIM/Camera/IMG_1.heic", IMT_CLASS_USER_MEDIA},
        {"ex/data/WhatsApp/Media/WhatsApp Images/IMG-1.jpeg", IMT_CLASS_USER_MEDIA},
        {"ex/Users/bob/AppData/Local/Google/Chrome/User Data/Default/Cache/f_0001", IMT_CLASS_USER_OTHER},
        {"ex/Users/bob/AppData/Local/Microsoft/Windows/Explorer/thumbcache_256.db", IMT_CLASS_USER_OTHER},
        {"ex/$Recycle.Bin/S-1-5-21/$RABC.png", IMT_CLASS_USER_MEDIA},
        {"ex/home/bob/.local/share/Trash/files/x.mp4", IMT_CLASS_USER_MEDIA},
        {"ex/home/bob/Downloads/setup.exe", IMT_CLASS_USER_OTHER},
        {"ex/data/misc/x.png", IMT_CLASS_MEDIA},
        {"ex/data/misc/notes.txt", IMT_CLASS_OTHER},
        {"ex/Windows/System32/x.dll", IMT_CLASS_SYSTEM_OTHER},
        {"ex/usr/share/icons/hicolor/a.png", IMT_CLASS_SYSTEM_MEDIA},
        {"ex/Program Files/App/splash.bmp", IMT_CLASS_SYSTEM_MEDIA},
        {"a.jpg", IMT_CLASS_MEDIA},
        {".jpg", IMT_CLASS_OTHER},
        {"ex/DCIM", IMT_CLASS_OTHER}, /* a file named DCIM is not in a DCIM folder */
        /* a person's home folder is user content, a system folder in it not */
        {"ex/Users/bob/stuff/a.png", IMT_CLASS_USER_MEDIA},
        {"ex/Users/bob/notes.txt", IMT_CLASS_USER_OTHER},
        {"ex/home/bob/x.mp4", IMT_CLASS_USER_MEDIA},
        {"ex/Users/bob/AppData/Local/Temp/x.jpg", IMT_CLASS_SYSTEM_MEDIA},
        {"ex/home/bob/.cache/x.png", IMT_CLASS_SYSTEM_MEDIA},
        {"ex/Users/Default/x.jpg", IMT_CLASS_MEDIA},
        {"ex/Users/x.jpg", IMT_CLASS_MEDIA}, /* not in anyone's home */
        {"ex/Documents and Settings/bob/a.gif", IMT_CLASS_USER_MEDIA},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        imt_triage_class c = imt_triage_classify(t[i].path);
        CHECKF(c == t[i].c, "%s: %s, want %s", t[i].path, imt_triage_class_name(c),
               imt_triage_class_name(t[i].c));
    }
    /* Files of disk images: the path inside the image; deleted and orphan
     * files a class of their own whatever their folder. */
    CHECK(imt_triage_classify_image("!p1/Users/bob/Pictures/a.jpg", IMT_ALLOC_ALLOCATED) ==
          IMT_CLASS_USER_MEDIA);
    CHECK(imt_triage_classify_image("!p1/Windows/System32/a.jpg", IMT_ALLOC_DELETED) ==
          IMT_CLASS_DELETED_MEDIA);
    CHECK(imt_triage_classify_image("!p1/Users/bob/Pictures/a.txt", IMT_ALLOC_ORPHAN) ==
          IMT_CLASS_DELETED_OTHER);
    CHECK(imt_triage_classify_image("!p2/x.dll", IMT_ALLOC_DELETED) == IMT_CLASS_DELETED_OTHER);
    /* The read order: deleted right after the user classes of their kind. */
    static const imt_triage_class order[] = {
        IMT_CLASS_USER_MEDIA, IMT_CLASS_DELETED_MEDIA, IMT_CLASS_MEDIA, IMT_CLASS_USER_OTHER,
        IMT_CLASS_DELETED_OTHER, IMT_CLASS_SYSTEM_MEDIA, IMT_CLASS_OTHER, IMT_CLASS_SYSTEM_OTHER};
    for (int i = 0; i < IMT_CLASS__COUNT; i++) CHECK(imt_triage_class_at(i) == order[i]);
    CHECK(imt_triage_class_at(IMT_CLASS__COUNT) == IMT_CLASS__COUNT && imt_triage_class_at(-1) == IMT_CLASS__COUNT);
    CHECK(!strcmp(imt_triage_class_name(IMT_CLASS_DELETED_MEDIA), "deleted-media"));
}

/* ---- the listing spills and comes back whole, in key order -------------- */
static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_spool(void)
{
    enum { N = 20000 };
    imt__spool *sp = NULL;
    REQUIRE(imt__spool_open(&sp, "/tmp", 4096) == IMT_OK); /* tiny: spills at once */
    static uint64_t keys[IMT_CLASS__COUNT][N];
    size_t nk[IMT_CLASS__COUNT] = {0};
    char path[64];
    for (int i = 0; i < N; i++) {
        snprintf(path, sizeof path, "dev/d%03d/file-%05d.bin", i % 97, i);
        /* every fifth with a blob (a disk image's entry): i % 13 + 1 bytes */
        unsigned char blob[16];
        for (int k = 0; k < 16; k++) blob[k] = (unsigned char)(i * 7 + k);
        imt__tfile f = {imt__triage_key(7, path), (uint64_t)i, 1, (uint64_t)i, (uint64_t)i, path,
                        i % 5 ? NULL : blob, i % 5 ? 0 : (size_t)(i % 13 + 1)};
        int c = i % 3 == 0 ? 0 : i % 3 == 1 ? 2 : 5;
        REQUIRE(imt__spool_add(sp, c, &f) == IMT_OK);
        keys[c][nk[c]++] = f.key;
    }
    for (int c = 0; c < IMT_CLASS__COUNT; c++) {
        qsort(keys[c], nk[c], sizeof keys[c][0], u64_cmp); /* the order wanted */
        REQUIRE(imt__spool_class_begin(sp, c) == IMT_OK);
        uint64_t last = 0, seen = 0, sum_seq = 0, want_sum = 0;
        int ordered = 1;
        for (;;) {
            const imt__tfile *v;
            size_t n;
            REQUIRE(imt__spool_class_next(sp, &v, &n) == IMT_OK);
            if (!n) break;
            for (size_t i = 0; i < n; i++) {
                if ((seen && v[i].key < last) || seen >= nk[c] || keys[c][seen] != v[i].key)
                    ordered = 0;
                last = v[i].key;
                seen++;
                sum_seq += v[i].seq;
                snprintf(path, sizeof path, "dev/d%03d/file-%05d.bin", (int)(v[i].seq % 97),
                         (int)v[i].seq);
                CHECK(!strcmp(path, v[i].path) && v[i].ino == v[i].seq);
                int want_blob = v[i].seq % 5 == 0, blob_ok = 1;
                if (want_blob) {
                    const unsigned char *b = v[i].blob;
                    blob_ok = b && v[i].blob_len == v[i].seq % 13 + 1;
                    for (size_t k = 0; blob_ok && k < v[i].blob_len; k++)
                        blob_ok = b[k] == (unsigned char)(v[i].seq * 7 + k);
                } else blob_ok = !v[i].blob && !v[i].blob_len;
                CHECKF(blob_ok, "record %llu: its blob", (unsigned long long)v[i].seq);
            }
        }
        for (int i = 0; i < N; i++)
            if ((c == 0 && i % 3 == 0) || (c == 2 && i % 3 == 1) || (c == 5 && i % 3 == 2))
                want_sum += (uint64_t)i;
        CHECKF(seen == nk[c] && ordered && sum_seq == want_sum,
               "class %d: %llu of %zu back, ordered %d", c, (unsigned long long)seen, nk[c], ordered);
    }
    imt__spool_free(sp);
}


/* ---- a generated device ------------------------------------------------- */
static char root[256];

static int sh(const char *cmd)
{
    int rc = system(cmd);
    if (rc != 0) fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
    return rc;
}

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    fputs(text, f);
    fclose(f);
}

/* A record as a line of its result: what must equal between runs. */
typedef struct recs {
    char **line;               /* by seq */
    size_t n;
    uint64_t files, files_before_hit;
    int hit_seen;
    uint64_t hits;
    int stop_after;            /* return non-zero after this many records (0: never) */
    uint64_t seen;
} recs;

static int collect(void *ctx, const imt_scan_record *r)
{
    recs *R = ctx;
    char buf[1024], hex[65] = "";
    const imt_hash_result *h = r->hash;
    if (h && h->has_pdq) {
        imt_pdq_to_hex(&h->pdq[0], hex);
    }
    int hit = 0;
    for (size_t i = 0; i < r->n_matches; i++) hit |= r->matches[i].disposition == IMT_DISP_ALERT;
    char md5[33] = "";
    for (int i = 0; h && i < 16; i++) snprintf(md5 + 2 * i, 3, "%02x", h->md5[i]);
    snprintf(buf, sizeof buf, "%s|%d|%d|%d|%s|%s|%s|%zu|%d|%llu|%s", r->path, (int)r->type,
             (int)r->status, r->scan_error, r->detail, md5, hex, r->n_matches, hit,
             (unsigned long long)r->size, r->hardlink_of ? r->hardlink_of : "");
    if (r->seq >= R->n) {
        size_t nn = (size_t)r->seq + 1024;
        R->line = realloc(R->line, nn * sizeof *R->line);
        for (size_t i = R->n; i < nn; i++) R->line[i] = NULL;
        R->n = nn;
    }
    CHECKF(!R->line[r->seq], "seq %llu twice", (unsigned long long)r->seq);
    free(R->line[r->seq]);
    R->line[r->seq] = strdup(buf);
    if (r->hash) {
        if (!R->hit_seen && !hit) R->files_before_hit++;
        R->files++;
    }
    if (hit) {
        R->hit_seen = 1;
        R->hits++;
    }
    return R->stop_after && ++R->seen >= (uint64_t)R->stop_after;
}

static void recs_free(recs *R)
{
    for (size_t i = 0; i < R->n; i++) free(R->line[i]);
    free(R->line);
    memset(R, 0, sizeof *R);
}

/* Every record of b equals a's record of the same seq. */
static int same_records(const recs *a, const recs *b, int whole)
{
    int bad = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (!b->line[i]) continue;
        if (i >= a->n || !a->line[i] || strcmp(a->line[i], b->line[i])) {
            if (bad++ < 3)
                fprintf(stderr, "seq %zu differs:\n  full    %s\n  preview %s\n", i,
                        i < a->n && a->line[i] ? a->line[i] : "(none)", b->line[i]);
        }
    }
    for (size_t i = 0; whole && i < a->n; i++)
        if (a->line[i] && (i >= b->n || !b->line[i]) && bad++ < 3)
            fprintf(stderr, "seq %zu missing from the preview: %s\n", i, a->line[i]);
    return bad == 0;
}

static int make_device(void)
{
    const char *imgs = tu_shared("vectors/pdq/images");
    const char *csv = tu_shared("vectors/pdq/observed/cpp-shipped-imagemagick.csv");
    if (!imgs || !csv) return 0;
    if (system("command -v convert >/dev/null 2>&1") != 0) {
        fprintf(stderr, "ImageMagick's convert is missing (scripts/setup.sh installs it)\n");
        return 0;
    }
    snprintf(root, sizeof root, "/tmp/imt-preview-XXXXXX");
    REQUIRE(mkdtemp(root));
    char cmd[4096], p[1024];
    /* System and program folders first in walk order ('P' < 'U' < 'W'). */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && mkdir -p dev none && cd dev && "
             "for d in $(seq -w 1 40); do mkdir -p \"Program Files/app$d\"; "
             "  (cd \"Program Files/app$d\" && for f in $(seq -w 1 50); do echo \"lib $d $f\" > lib$f.dll; done); done && "
             "for d in $(seq -w 1 20); do mkdir -p Windows/System32/drv$d; "
             "  (cd Windows/System32/drv$d && for f in $(seq -w 1 50); do echo \"drv $d $f\" > d$f.sys; done); done && "
             "mkdir -p Users/bob/Pictures Users/bob/Downloads 'Users/bob/AppData/Roaming/Telegram Desktop/tdata' "
             "  Users/bob/Documents && "
             "for f in $(seq -w 1 100); do echo \"note $f\" > Users/bob/Documents/n$f.txt; done && "
             "cp -a Windows ../none/ && cp -a 'Program Files' ../none/",
             root);
    REQUIRE(sh(cmd) == 0);
    /* Known pictures, altered (resized, recompressed); unknown ones beside. */
    static const char *const conv[][2] = {
        {"bridge-mods/aaa-orig.jpg", "Users/bob/Pictures/holiday.jpg"},
        {"reg-test-input/labelme-subset/q0291.jpg", "Users/bob/Downloads/img0291.jpg"},
        {"reg-test-input/pen-and-coaster.png",
         "Users/bob/AppData/Roaming/Telegram Desktop/tdata/photo.jpg"},
        {"reg-test-input/labelme-subset/q0122.jpg", "Users/bob/Pictures/a.jpg"},
        {"reg-test-input/labelme-subset/q0746.jpg", "Users/bob/Pictures/b.jpg"},
        {"reg-test-input/labelme-subset/q1050.jpg", "Users/bob/Downloads/c.jpg"},
        {"reg-test-input/labelme-subset/q2821.jpg", "Users/bob/Pictures/d.jpg"}};
    for (size_t i = 0; i < sizeof conv / sizeof conv[0]; i++) {
        snprintf(cmd, sizeof cmd, "convert '%s/%s' -resize 90%% -quality 90 '%s/dev/%s'", imgs,
                 conv[i][0], root, conv[i][1]);
        REQUIRE(sh(cmd) == 0);
    }
    /* The list: the reference hasher's hashes of the three originals. */
    snprintf(cmd, sizeof cmd,
             "grep -E ',(bridge-mods/aaa-orig\\.jpg|reg-test-input/labelme-subset/q0291\\.jpg|"
             "reg-test-input/pen-and-coaster\\.png)$' '%s' > '%s/list.csv' && "
             "[ $(wc -l < '%s/list.csv') -eq 3 ] && "
             "'%s' index import -q --create --name known '%s/idx' '%s/list.csv'",
             csv, root, root, IMT_CLI, root, root);
    REQUIRE(sh(cmd) == 0);
    snprintf(p, sizeof p, "%s/dev/Users/bob/Documents/readme.txt", root);
    put(p, "not a picture\n");
    return 1;
}

/* 0 when it ran; tu_skip's status when its data or tool is missing. */
static int test_device(void)
{
    if (!make_device()) return tu_skip("the shared PDQ vectors or ImageMagick's convert");
    char dev[300], none[300], ip[300], det[256];
    snprintf(dev, sizeof dev, "%s/dev", root);
    snprintf(none, sizeof none, "%s/none", root);
    snprintf(ip, sizeof ip, "%s/idx", root);
    imt_index *idx = NULL;
    imt_index_opts io;
    imt_index_opts_init(&io);
    io.read_only = 1;
    REQUIRE(imt_index_open(&idx, ip, &io) == IMT_OK);
    const char *paths[] = {dev};
    imt_scan_opts so;
    imt_scan_opts_init(&so);
    so.threads = 2;
    imt_triage_opts to;
    imt_triage_opts_init(&to);

    /* The full scan, in walk order. */
    recs full = {0};
    REQUIRE(imt_scan_run(idx, paths, 1, &so, collect, &full, det, sizeof det) == IMT_OK);
    CHECKF(full.hits == 3, "the full scan finds the 3 known pictures (%llu)",
           (unsigned long long)full.hits);
    fprintf(stderr, "device: %llu files; the full scan reads %llu files before its first hit\n",
            (unsigned long long)full.files, (unsigned long long)full.files_before_hit);
    CHECK(full.files_before_hit >= 2000);

    /* The preview finds them after a handful of files: the user pictures
     * (3 known, 4 not) come first. */
    for (int threads = 1; threads <= 2; threads++) {
        recs pv = {0};
        imt_preview_stats st;
        so.threads = threads;
        to.stop_after_hits = 3;
        REQUIRE(imt_triage_run(idx, paths, 1, &so, &to, collect, &pv, &st, det, sizeof det) ==
                IMT_OK);
        CHECKF(st.stopped_by == IMT_PREVIEW_HITS && st.hit_files == 3 && pv.hits == 3,
               "stopped by %s, %llu hits (%llu seen)", imt_preview_stop_name(st.stopped_by),
               (unsigned long long)st.hit_files, (unsigned long long)pv.hits);
        CHECKF(st.have_first_hit && st.files_before_first_hit <= 4 && pv.files_before_hit <= 4,
               "first hit after %llu files", (unsigned long long)st.files_before_first_hit);
        CHECKF(st.examined_files <= 7 && st.cls[IMT_CLASS_USER_MEDIA].enumerated == 7,
               "read %llu files", (unsigned long long)st.examined_files);
        CHECK(st.cls[IMT_CLASS_SYSTEM_OTHER].enumerated == 3000 &&
              st.cls[IMT_CLASS_SYSTEM_OTHER].examined == 0 &&
              st.cls[IMT_CLASS_SYSTEM_OTHER].upper95 == 3000);
        CHECK(st.enumeration_complete && st.enumerated_files == full.files);
        CHECK(same_records(&full, &pv, 0));
        recs_free(&pv);
    }
    /* Read whole: every record equals the full scan's; bounds are exact.
     * Again with the listing spilled to temporary files (4 KiB in memory). */
    for (int spill = 0; spill < 2; spill++) {
        recs pv = {0};
        imt_preview_stats st;
        to.stop_after_hits = 0;
        to.memory_bytes = spill ? 4096 : (size_t)64 << 20;
        REQUIRE(imt_triage_run(idx, paths, 1, &so, &to, collect, &pv, &st, det, sizeof det) ==
                IMT_OK);
        CHECK(st.stopped_by == IMT_PREVIEW_COMPLETE && st.examined_files == full.files);
        CHECK(same_records(&full, &pv, 1));
        CHECK(st.upper95 == 3 && fabs(st.estimate - 3.0) < 1e-9);
        CHECK(pv.files_before_hit <= 4); /* the user pictures first, spilled or not */
        recs_free(&pv);
    }
    to.memory_bytes = (size_t)64 << 20;
    /* A device with none, read in part (stopped after 600 records): each
     * class's bound is the rule-of-three statement for what was read. */
    {
        recs pv = {0};
        imt_preview_stats st;
        const char *np[] = {none};
        pv.stop_after = 600;
        imt_err e = imt_triage_run(idx, np, 1, &so, &to, collect, &pv, &st, det, sizeof det);
        CHECK(e == IMT_E_INTERRUPTED && st.stopped_by == IMT_PREVIEW_INTERRUPTED);
        CHECK(st.hit_files == 0 && st.examined_files == 600 && st.enumerated_files == 3000);
        for (int c = 0; c < IMT_CLASS__COUNT; c++) {
            const imt_preview_class_stats *k = &st.cls[c];
            if (!k->enumerated) continue;
            double r3 = 3.0 * (double)k->enumerated / (double)k->examined;
            CHECKF(k->examined > 0 && k->upper95 > 0 && (double)k->upper95 <= r3 &&
                   (double)k->upper95 >= 0.8 * r3 - 1,
                   "class %s: %llu of %llu read, bound %llu, 3N/n %.1f",
                   imt_triage_class_name((imt_triage_class)c), (unsigned long long)k->examined,
                   (unsigned long long)k->enumerated, (unsigned long long)k->upper95, r3);
        }
        recs_free(&pv);
    }
    /* The temporary files may not go into the evidence. */
    {
        recs pv = {0};
        imt_preview_stats st;
        to.tmpdir = dev;
        CHECK(imt_triage_run(idx, paths, 1, &so, &to, collect, &pv, &st, det, sizeof det) ==
              IMT_E_INVALID);
        CHECK(strstr(det, "inside the evidence") != NULL && pv.seen == 0);
        to.tmpdir = NULL;
        recs_free(&pv);
    }
    recs_free(&full);
    imt_index_close(idx);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    sh(cmd);
    return 0;
}

int main(void)
{
    test_bound_oracle();
    test_coverage();
    test_classes();
    test_spool();
    int dev = test_device();
    if (dev && !tu_failures) return dev; /* skipped (77), or failed under CI=true (1) */
    return tu_done("test_preview");
}
