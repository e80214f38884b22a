/* tests/test_scan_e2e.c -- the scan end to end: an index built from
 * generated images, a "seized device" folder with altered copies of them
 * (resized + recompressed, flipped, rotated under a non-UTF-8 name, renamed
 * to .dat) among unrelated images and other files, hard links, a symlink
 * loop, a FIFO, an unreadable folder, a file deleted mid-scan, a truncated
 * and a corrupt JPEG, a flat (low-quality) image, and a known-good file.
 * The report must find every planted copy, name every other case, and be
 * the same whatever the thread count or an interruption. The unreadable
 * folder is checked through the CLI run as an unprivileged user. */
#include "scantest.h"

#include <jpeglib.h>
#include <pwd.h>
#include <grp.h>
#include <sys/wait.h>

static char root[256], dev[300], idxdir[300];

typedef struct img {
    int w, h;
    unsigned char *rgb;
} img;

/* Structured content PDQ hashes robustly: value noise (random levels on a
 * coarse grid, bilinearly interpolated) in two octaves per channel, so the
 * low DCT frequencies the hash keeps carry real energy; seed picks it. */
static double lerp(double a, double b, double t) { return a + (b - a) * t; }

static img synth(unsigned seed, int w, int h)
{
    img m = {w, h, malloc((size_t)w * h * 3)};
    enum { G1 = 9, G2 = 17 };
    static double g1[3][G1][G1], g2[3][G2][G2];
    unsigned s = seed * 2654435761u + 12345u;
    for (int c = 0; c < 3; c++) {
        for (int i = 0; i < G1; i++)
            for (int j = 0; j < G1; j++) {
                s = s * 1103515245u + 12345u;
                g1[c][i][j] = (double)((s >> 16) % 256);
            }
        for (int i = 0; i < G2; i++)
            for (int j = 0; j < G2; j++) {
                s = s * 1103515245u + 12345u;
                g2[c][i][j] = (double)((s >> 16) % 256) - 128;
            }
    }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double u1 = (double)x * (G1 - 1) / w, v1 = (double)y * (G1 - 1) / h;
            double u2 = (double)x * (G2 - 1) / w, v2 = (double)y * (G2 - 1) / h;
            int i1 = (int)v1, j1 = (int)u1, i2 = (int)v2, j2 = (int)u2;
            for (int c = 0; c < 3; c++) {
                double a = lerp(lerp(g1[c][i1][j1], g1[c][i1][j1 + 1], u1 - j1),
                                lerp(g1[c][i1 + 1][j1], g1[c][i1 + 1][j1 + 1], u1 - j1), v1 - i1);
                double b = lerp(lerp(g2[c][i2][j2], g2[c][i2][j2 + 1], u2 - j2),
                                lerp(g2[c][i2 + 1][j2], g2[c][i2 + 1][j2 + 1], u2 - j2), v2 - i2);
                double v = a + 0.4 * b;
                m.rgb[((size_t)y * w + x) * 3 + c] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    return m;
}

static img flat(int w, int h)
{
    img m = {w, h, malloc((size_t)w * h * 3)};
    memset(m.rgb, 120, (size_t)w * h * 3);
    return m;
}

static img half(const img *a)
{
    img m = {a->w / 2, a->h / 2, malloc((size_t)(a->w / 2) * (a->h / 2) * 3)};
    for (int y = 0; y < m.h; y++)
        for (int x = 0; x < m.w; x++)
            for (int c = 0; c < 3; c++) {
                int s = 0;
                for (int dy = 0; dy < 2; dy++)
                    for (int dx = 0; dx < 2; dx++)
                        s += a->rgb[((size_t)(2 * y + dy) * a->w + 2 * x + dx) * 3 + c];
                m.rgb[((size_t)y * m.w + x) * 3 + c] = (unsigned char)((s + 2) / 4);
            }
    return m;
}

static img flipx(const img *a)
{
    img m = {a->w, a->h, malloc((size_t)a->w * a->h * 3)};
    for (int y = 0; y < a->h; y++)
        for (int x = 0; x < a->w; x++)
            memcpy(&m.rgb[((size_t)y * a->w + x) * 3], &a->rgb[((size_t)y * a->w + a->w - 1 - x) * 3], 3);
    return m;
}

static img rot90(const img *a)
{
    img m = {a->h, a->w, malloc((size_t)a->w * a->h * 3)};
    for (int y = 0; y < m.h; y++)
        for (int x = 0; x < m.w; x++)
            memcpy(&m.rgb[((size_t)y * m.w + x) * 3],
                   &a->rgb[((size_t)(a->h - 1 - x) * a->w + y) * 3], 3);
    return m;
}

static void write_jpeg(const char *path, const img *m, int quality)
{
    FILE *f = fopen(path, "wb");
    REQUIRE(f != NULL);
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    c.image_width = (JDIMENSION)m->w;
    c.image_height = (JDIMENSION)m->h;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, quality, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)&m->rgb[(size_t)c.next_scanline * m->w * 3];
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    REQUIRE(fclose(f) == 0);
}

static char *P(const char *fmt, const char *a)
{
    static char b[8][700];
    static int k = 0;
    char *o = b[k++ & 7];
    snprintf(o, sizeof b[0], fmt, a);
    return o;
}

static void md5_hex(const char *path, char out[33])
{
    imt_hash_opts o;
    imt_hash_opts_init(&o);
    o.digests = IMT_DIGEST_MD5;
    o.pdq = 0;
    imt_hasher *h;
    REQUIRE(imt_hasher_create(&h, &o) == IMT_OK);
    imt_hash_result r;
    imt_hash_file(h, path, &r);
    REQUIRE(r.digests & IMT_DIGEST_MD5);
    for (int i = 0; i < 16; i++) sprintf(out + 2 * i, "%02x", r.md5[i]);
    imt_hasher_free(h);
}

static void build(void)
{
    strcpy(root, "/tmp/imt-e2e-XXXXXX");
    REQUIRE(mkdtemp(root) != NULL);
    REQUIRE(chmod(root, 0755) == 0);
    snprintf(dev, sizeof dev, "%s/device", root);
    snprintf(idxdir, sizeof idxdir, "%s/index", root);
    const char *dirs[] = {"known", "device", "device/DCIM", "device/misc", "device/system",
                          "device/locked", "device/junk"};
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
        char p[600];
        snprintf(p, sizeof p, "%s/%s", root, dirs[i]);
        REQUIRE(mkdir(p, 0755) == 0);
    }

    /* Known images and the lists. */
    img k[4];
    FILE *csv = fopen(P("%s/known/known.csv", root), "w");
    REQUIRE(csv != NULL);
    imt_hasher *h;
    imt_hash_opts ho;
    imt_hash_opts_init(&ho);
    REQUIRE(imt_hasher_create(&h, &ho) == IMT_OK);
    for (int i = 0; i < 4; i++) {
        k[i] = synth((unsigned)i + 1, 320, 240);
        char p[600];
        snprintf(p, sizeof p, "%s/known/k%d.jpg", root, i);
        write_jpeg(p, &k[i], 92);
        imt_hash_result r;
        REQUIRE(imt_hash_file(h, p, &r) == IMT_OK);
        CHECKF(r.quality >= 50, "known image %d has quality %d", i, r.quality);
        char hx[65];
        imt_pdq_to_hex(&r.pdq[0], hx);
        fprintf(csv, "%s,%d,k%d.jpg\n", hx, r.quality, i);
    }
    /* The flat image's hash is listed too: it must still not match. */
    img fl = flat(200, 200);
    write_jpeg(P("%s/known/flat.jpg", root), &fl, 90);
    imt_hash_result fr;
    REQUIRE(imt_hash_file(h, P("%s/known/flat.jpg", root), &fr) == IMT_OK);
    CHECK(fr.quality < 50);
    char fhx[65];
    imt_pdq_to_hex(&fr.pdq[0], fhx);
    fprintf(csv, "%s,%d,flat.jpg\n", fhx, fr.quality);
    REQUIRE(fclose(csv) == 0);
    imt_hasher_free(h);

    /* The device. */
    img a = half(&k[0]);
    write_jpeg(P("%s/DCIM/IMG_0001.jpg", dev), &a, 70);       /* resized + recompressed */
    img b = flipx(&k[1]);
    write_jpeg(P("%s/DCIM/IMG_0002.jpg", dev), &b, 85);       /* flipped */
    img c = rot90(&k[3]);
    write_jpeg(P("%s/misc/\xff\xfe-rot.jpg", dev), &c, 80);   /* rotated, odd name */
    size_t len;
    unsigned char *raw = tu_read_file(P("%s/known/k2.jpg", root), &len);
    REQUIRE(raw);
    st_write(P("%s/misc/cache0001.dat", dev), raw, len);      /* exact copy, renamed */
    free(raw);
    REQUIRE(link(P("%s/DCIM/IMG_0001.jpg", dev), P("%s/misc/hardlink.jpg", dev)) == 0);
    for (int i = 0; i < 3; i++) {                             /* unrelated images */
        img u = synth(100u + (unsigned)i, 300, 200);
        char p[600];
        snprintf(p, sizeof p, "%s/DCIM/holiday%d.jpg", dev, i);
        write_jpeg(p, &u, 88);
        if (i == 0) {
            /* truncated: the first 60% of another unrelated photo */
            unsigned char *t = tu_read_file(p, &len);
            REQUIRE(t);
            st_write(P("%s/junk/truncated.jpg", dev), t, len * 6 / 10);
            free(t);
        }
        free(u.rgb);
    }
    st_write(P("%s/junk/corrupt.jpg", dev), "\xff\xd8\xff\xdb garbage garbage garbage", 28);
    write_jpeg(P("%s/junk/flat.jpg", dev), &fl, 75);
    st_write(P("%s/system/readme.txt", dev), "a known-good system file\n", 25);
    st_write(P("%s/locked/hidden.jpg", dev), "x", 1);
    st_write(P("%s/junk/vanishing.jpg", dev), "gone soon", 9);
    REQUIRE(symlink("loopB", P("%s/junk/loopA", dev)) == 0);
    REQUIRE(symlink("loopA", P("%s/junk/loopB", dev)) == 0);
    REQUIRE(symlink("../..", P("%s/junk/up", dev)) == 0);
    REQUIRE(mkfifo(P("%s/junk/pipe", dev), 0644) == 0);
    REQUIRE(chmod(P("%s/locked", dev), 0) == 0);
    free(a.rgb);
    free(b.rgb);
    free(c.rgb);
    free(fl.rgb);

    /* Lists: the PDQ list, an MD5 list with the renamed copy, a known-good
     * MD5 list holding the system file. */
    char md5[33];
    md5_hex(P("%s/misc/cache0001.dat", dev), md5);
    FILE *f = fopen(P("%s/known/known.md5", root), "w");
    fprintf(f, "%s  k2.jpg\n", md5);
    fclose(f);
    md5_hex(P("%s/system/readme.txt", dev), md5);
    f = fopen(P("%s/known/good.md5", root), "w");
    fprintf(f, "%s  readme.txt\n", md5);
    fclose(f);
    imt_index_opts io;
    imt_index_opts_init(&io);
    io.read_only = 0;
    io.create = 1;
    imt_index *idx = NULL;
    REQUIRE(imt_index_open(&idx, idxdir, &io) == IMT_OK);
    imt_import_opts im;
    imt_import_opts_init(&im);
    im.name = "test-known";
    im.format = "pdq-csv";
    im.category = 1;
    im.scheme = "caid";
    CHECKF(imt_index_import(idx, P("%s/known/known.csv", root), &im, NULL) == IMT_OK, "%s",
           imt_index_last_error(idx));
    im.name = "test-known"; /* the same name as the PDQ list: kept apart by id */
    im.format = "md5sum";
    CHECKF(imt_index_import(idx, P("%s/known/known.md5", root), &im, NULL) == IMT_OK, "%s",
           imt_index_last_error(idx));
    imt_import_opts_init(&im);
    im.name = "test-good";
    im.format = "md5sum";
    im.known_good = 1;
    CHECKF(imt_index_import(idx, P("%s/known/good.md5", root), &im, NULL) == IMT_OK, "%s",
           imt_index_last_error(idx));
    imt_index_close(idx);
    for (int i = 0; i < 4; i++) free(k[i].rgb);
}

/* The file deleted mid-scan: after the walk found it, before it is read. */
static int vanish(void *ctx, const char *path, imt_entry_type t)
{
    (void)ctx;
    (void)t;
    if (strstr(path, "vanishing.jpg")) CHECK(unlink(path) == 0);
    return 0;
}

static const char *rec(const st_report *r, const char *rel)
{
    char lit[700];
    snprintf(lit, sizeof lit, "\"%s/%s\"", dev, rel);
    const char *l = st_line(r, lit);
    CHECKF(l != NULL, "no record for %s", rel);
    return l;
}

static void check_report(const st_report *r, int vanished_checked)
{
    const char *l;
    l = rec(r, "DCIM/IMG_0001.jpg");
    CHECK(st_has(l, "\"kind\":\"pdq\"") && st_has(l, "\"list\":\"test-known\"") &&
          st_has(l, "\"variant\":\"original\"") && st_has(l, "\"category\":1"));
    /* A left-right mirror: the reference calls that variant flipY (its flipX
     * negates odd DCT rows: an upside-down flip). */
    l = rec(r, "DCIM/IMG_0002.jpg");
    CHECK(st_has(l, "\"kind\":\"pdq\"") && st_has(l, "\"variant\":\"flipy\""));
    l = rec(r, "misc/\\udcff\\udcfe-rot.jpg");
    /* The file is the known image turned clockwise (rot90 above); the
     * variant that turns it back is the reference's rotate90, whose
     * definition test_hash checks against the reference's dihedral hashes. */
    CHECK(st_has(l, "\"kind\":\"pdq\"") && st_has(l, "\"variant\":\"rotate90\""));
    l = rec(r, "misc/cache0001.dat");
    CHECK(st_has(l, "\"format\":\"jpeg\"") && st_has(l, "\"kind\":\"md5\"") &&
          st_has(l, "\"kind\":\"pdq\",\"distance\":0,"));
    l = rec(r, "misc/hardlink.jpg");
    CHECK(st_has(l, "\"type\":\"hardlink\"") && st_has(l, "DCIM/IMG_0001.jpg\""));
    for (int i = 0; i < 3; i++) {
        char rel[64];
        snprintf(rel, sizeof rel, "DCIM/holiday%d.jpg", i);
        l = rec(r, rel);
        CHECK(st_has(l, "\"status\":\"ok\"") && st_has(l, "\"matches\":[]"));
    }
    l = rec(r, "junk/truncated.jpg");
    /* 60% of a baseline JPEG still yields an image: hashed, flagged partial
     * (as the reference does; README). */
    CHECK(st_has(l, "\"status\":\"ok\"") && st_has(l, "\"partial\":true") &&
          st_has(l, "Premature end") && st_has(l, "\"pdq\":"));
    l = rec(r, "junk/corrupt.jpg");
    /* FF D8, then a DQT marker whose length field (" g" = 0x2067 = 8295
     * bytes) runs past the 28-byte file: the data ends early. */
    CHECK(st_has(l, "\"status\":\"truncated\"") && !st_has(l, "\"pdq\":"));
    l = rec(r, "junk/flat.jpg");
    CHECK(st_has(l, "\"pdq_matching\":\"skipped: quality") && st_has(l, "\"matches\":[]"));
    l = rec(r, "system/readme.txt");
    CHECK(st_has(l, "\"known_good\":true") && st_has(l, "\"list\":\"test-good\""));
    l = rec(r, "junk/loopA");
    CHECK(st_has(l, "\"type\":\"symlink\"") && st_has(l, "\"link_target\":\"loopB\""));
    l = rec(r, "junk/up");
    CHECK(st_has(l, "\"type\":\"symlink\""));
    l = rec(r, "junk/pipe");
    CHECK(st_has(l, "\"type\":\"fifo\""));
    if (vanished_checked) {
        l = rec(r, "junk/vanishing.jpg");
        CHECK(st_has(l, "\"status\":\"not-found\"") && st_has(l, "vanished"));
    }
    /* 4 planted copies (IMG_0001's hard link is not read again and is not a
     * second hit); 5 distinct known index entries: the renamed copy matches
     * both its MD5 entry and its PDQ entry, which the lists keep apart. */
    yajl_val s = st_summary(r);
    REQUIRE(s);
    const char *hp[] = {"hit_files", NULL}, *dp[] = {"distinct_known_items", NULL},
               *kp[] = {"known_good_files", NULL}, *pp[] = {"priority", NULL};
    yajl_val v = yajl_tree_get(s, hp, yajl_t_number);
    CHECKF(v && YAJL_GET_INTEGER(v) == 4, "hit_files %lld", v ? YAJL_GET_INTEGER(v) : -1);
    v = yajl_tree_get(s, dp, yajl_t_number);
    CHECKF(v && YAJL_GET_INTEGER(v) == 5, "distinct %lld", v ? YAJL_GET_INTEGER(v) : -1);
    v = yajl_tree_get(s, kp, yajl_t_number);
    CHECK(v && YAJL_GET_INTEGER(v) == 1);
    /* caid category 1 weighs 10: 4 seized pictures with hits (the renamed
     * copy's two entries are one picture found) -> 40, plus the density */
    v = yajl_tree_get(s, pp, yajl_t_number);
    CHECK(v && YAJL_GET_DOUBLE(v) > 40.0 && YAJL_GET_DOUBLE(v) < 41.0);
    /* Two lists share the name "test-known": every per-list figure is keyed
     * by list id (issue 9 item 5): the PDQ list (id 1) has 4 files, the MD5
     * list (id 2) 1, the known-good list (id 3) 1. */
    const char *hl[] = {"hits_by_list", NULL};
    v = yajl_tree_get(s, hl, yajl_t_array);
    CHECKF(v && v->u.array.len == 3, "hits_by_list has %zu rows", v ? v->u.array.len : 0);
    static const long long want_files[3] = {4, 1, 1};
    for (size_t i = 0; v && i < v->u.array.len && i < 3; i++) {
        yajl_val row = v->u.array.values[i];
        const char *ip[] = {"list_id", NULL}, *fp[] = {"files", NULL}, *np[] = {"list", NULL};
        yajl_val id = yajl_tree_get(row, ip, yajl_t_number);
        yajl_val fi = yajl_tree_get(row, fp, yajl_t_number);
        yajl_val nm = yajl_tree_get(row, np, yajl_t_string);
        CHECKF(id && YAJL_GET_INTEGER(id) == (long long)i + 1, "row %zu: list_id", i);
        CHECKF(fi && YAJL_GET_INTEGER(fi) == want_files[i], "row %zu: files %lld", i,
               fi ? YAJL_GET_INTEGER(fi) : -1);
        CHECK(nm && !strcmp(nm->u.string, i < 2 ? "test-known" : "test-good"));
    }
    yajl_tree_free(s);
}

static void scan_lib(imt_index *idx, int threads, imt_scan_skip_fn skip, st_report *r)
{
    const char *paths[] = {dev};
    memset(r, 0, sizeof *r);
    FILE *f = open_memstream(&r->text, &r->len);
    imt_report *rep = NULL;
    REQUIRE(imt_report_create(&rep, f, NULL) == IMT_OK);
    imt_scan_opts so;
    imt_scan_opts_init(&so);
    so.threads = threads;
    so.batch_files = 4;
    so.skip = skip;
    REQUIRE(imt_report_begin(rep, idx, paths, 1, &so) == IMT_OK);
    char detail[256];
    r->scan_status = imt_scan_run(idx, paths, 1, &so, imt_report_record, rep, detail, sizeof detail);
    CHECK(r->scan_status == IMT_OK);
    CHECK(imt_report_end(rep, r->scan_status, &r->sum) == IMT_OK);
    imt_report_free(rep);
    fclose(f);
}

/* The CLI as an unprivileged user (when root): the locked folder is then
 * really unreadable. Exit status 1: known material found. */
static void test_cli_unprivileged(void)
{
    char out[600];
    snprintf(out, sizeof out, "%s/cli.jsonl", root);
    /* LMDB readers take a lock in the index folder. */
    char cmd[900];
    snprintf(cmd, sizeof cmd, "chmod -R a+rwX '%s'", idxdir);
    REQUIRE(system(cmd) == 0);
    REQUIRE(chmod(root, 0777) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        if (st_drop_root() != 0) _exit(99);
        execl(IMT_CLI, IMT_CLI, "scan", "--index", idxdir, "--out", out, "--quiet",
              "--device", "e2e", "--threads", "2", dev, (char *)NULL);
        _exit(98);
    }
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    REQUIRE(WIFEXITED(st));
    if (WEXITSTATUS(st) == 99) {
        st_subskip("cannot drop privileges for the unreadable folder and the exit status 1");
        return;
    }
    CHECKF(WEXITSTATUS(st) == 1, "exit status %d", WEXITSTATUS(st));
    st_report r;
    memset(&r, 0, sizeof r);
    size_t len;
    r.text = (char *)tu_read_file(out, &len);
    REQUIRE(r.text);
    r.text = realloc(r.text, len + 1);
    r.text[len] = '\0';
    r.len = len;
    const char *l = rec(&r, "locked");
    CHECK(st_has(l, "\"type\":\"dir\"") && st_has(l, "\"status\":\"unreadable\""));
    CHECK(strstr(r.text, "hidden.jpg") == NULL);
    CHECK(strstr(r.text, "\"scan_errors\":1,") != NULL);
    check_report(&r, 0);
    free(r.text);
}

/* A list made from the reference hasher's own output (an independent
 * source: Meta's pdq-photo-hasher with ImageMagick, over the reference
 * images), matched by a compat-mode scan of those images: every JPEG and PNG
 * the reference hashed with quality >= 50 must match its listed hash at
 * distance 0 as itself (variant original); lower quality ones are kept but
 * not matched; WebP (not decoded here) and the reference's all-zero failure
 * rows match nothing. */
static void test_reference_list(void)
{
    const char *csv = tu_shared("vectors/pdq/observed/cpp-shipped-imagemagick.csv");
    const char *images = tu_shared("vectors/pdq/images");
    if (!csv || !images) {
        st_subskip("the reference hasher's CSV and images (../shared/vectors/pdq) are missing");
        return;
    }
    char list[600], refidx[600], line[512];
    snprintf(list, sizeof list, "%s/reference.csv", root);
    snprintf(refidx, sizeof refidx, "%s/refidx", root);
    typedef struct row { char hash[65], name[256]; int quality; } row;
    static row rows[128];
    int n = 0;
    FILE *in = fopen(csv, "r"), *out = fopen(list, "w");
    REQUIRE(in && out);
    while (n < 128 && fgets(line, sizeof line, in)) {
        row *r = &rows[n];
        if (sscanf(line, "%64[0-9a-f],%d,%255[^\n]", r->hash, &r->quality, r->name) != 3) continue;
        n++;
        if (!strcmp(r->hash, "0000000000000000000000000000000000000000000000000000000000000000"))
            continue; /* the reference's "could not hash" */
        int dup = 0; /* the same hash twice in a list is a duplicate record */
        for (int i = 0; i < n - 1; i++) dup |= !strcmp(rows[i].hash, r->hash);
        if (!dup) fprintf(out, "%s,%d,%s\n", r->hash, r->quality, r->name);
    }
    fclose(in);
    REQUIRE(fclose(out) == 0);
    CHECKF(n == 50, "%d reference rows", n);

    imt_index_opts io;
    imt_index_opts_init(&io);
    io.read_only = 0;
    io.create = 1;
    imt_index *idx = NULL;
    REQUIRE(imt_index_open(&idx, refidx, &io) == IMT_OK);
    imt_import_opts im;
    imt_import_opts_init(&im);
    im.name = "reference";
    im.format = "pdq-csv";
    CHECKF(imt_index_import(idx, list, &im, NULL) == IMT_OK, "%s", imt_index_last_error(idx));
    imt_index_close(idx);
    imt_index_opts_init(&io);
    REQUIRE(imt_index_open(&idx, refidx, &io) == IMT_OK);

    const char *paths[] = {images};
    st_report r;
    memset(&r, 0, sizeof r);
    FILE *f = open_memstream(&r.text, &r.len);
    imt_report *rep = NULL;
    REQUIRE(imt_report_create(&rep, f, NULL) == IMT_OK);
    imt_scan_opts so;
    imt_scan_opts_init(&so);
    so.threads = 2;
    so.hash.mode = IMT_PDQ_COMPAT;
    REQUIRE(imt_report_begin(rep, idx, paths, 1, &so) == IMT_OK);
    CHECK(imt_scan_run(idx, paths, 1, &so, imt_report_record, rep, NULL, 0) == IMT_OK);
    CHECK(imt_report_end(rep, IMT_OK, &r.sum) == IMT_OK);
    imt_report_free(rep);
    fclose(f);
    imt_index_close(idx);

    int matched = 0, lowq = 0, undecoded = 0;
    for (int i = 0; i < n; i++) {
        char lit[800];
        snprintf(lit, sizeof lit, "\"%s/%s\"", images, rows[i].name);
        const char *l = st_line(&r, lit);
        CHECKF(l != NULL, "no record for %s", rows[i].name);
        if (!l) continue;
        if (!strcmp(rows[i].hash, "0000000000000000000000000000000000000000000000000000000000000000")) {
            CHECKF(st_has(l, "\"matches\":[]"), "%s matched", rows[i].name);
            undecoded++;
        } else if (rows[i].quality < 50) {
            CHECKF(st_has(l, "\"pdq_matching\":\"skipped: quality") && st_has(l, "\"matches\":[]"),
                   "%s (quality %d) was matched", rows[i].name, rows[i].quality);
            lowq++;
        } else {
            char want[200];
            snprintf(want, sizeof want, "\"pdq\":\"%s\"", rows[i].hash);
            CHECKF(st_has(l, want), "%s: the compat hash is not the reference's %s",
                   rows[i].name, rows[i].hash);
            CHECKF(st_has(l, "\"kind\":\"pdq\",\"distance\":0,\"variant\":\"original\"") &&
                   st_has(l, "\"list\":\"reference\""),
                   "%s does not match the reference list at distance 0", rows[i].name);
            matched++;
        }
    }
    /* 50 rows: 41 JPEG/PNG and 5 WebP of quality >= 50, 3 low-quality, and
     * the reference's all-zero "could not read" row of a README */
    CHECKF(matched == 46 && lowq == 3 && undecoded == 1, "matched %d, low quality %d, other %d",
           matched, lowq, undecoded);
    free(r.text);
}

int main(void)
{
    build();
    /* The CLI first: this process has not started OpenMP threads yet. */
    test_cli_unprivileged();

    imt_index_opts io;
    imt_index_opts_init(&io);
    imt_index *idx = NULL;
    REQUIRE(imt_index_open(&idx, idxdir, &io) == IMT_OK);
    st_report r1, r2;
    scan_lib(idx, 2, vanish, &r1);
    check_report(&r1, 1);

    /* Threads 1 and 2 give the same records (the vanished file is gone now,
     * so compare two fresh runs). */
    scan_lib(idx, 1, NULL, &r2);
    st_report r3;
    scan_lib(idx, 2, NULL, &r3);
    char *a = st_records(&r2), *b = st_records(&r3);
    CHECK(strlen(a) > 1000 && strcmp(a, b) == 0);
    yajl_val sa = st_summary(&r2), sb = st_summary(&r3);
    CHECK(st_json_equal(sa, sb, st_time_keys));
    yajl_tree_free(sa);
    yajl_tree_free(sb);

    /* Interrupted after 5 records, resumed: the same records and summary. */
    const char *paths[] = {dev};
    char part[600];
    snprintf(part, sizeof part, "%s/part.jsonl", root);
    st_report cut, res;
    CHECK(st_scan(idx, paths, 1, 2, 4, 5, NULL, part, 0, IMT_REPORT_JSONL, &cut) ==
          IMT_E_INTERRUPTED);
    CHECK(st_scan(idx, paths, 1, 2, 4, 0, part, NULL, 0, IMT_REPORT_JSONL, &res) == IMT_OK);
    char *c = st_records(&res), *full;
    st_report fr;
    st_scan(idx, paths, 1, 2, 4, 0, NULL, NULL, 0, IMT_REPORT_JSONL, &fr);
    full = st_records(&fr);
    CHECK(strcmp(c, full) == 0);
    sa = st_summary(&res);
    sb = st_summary(&fr);
    CHECK(st_json_equal(sa, sb, st_time_keys));
    yajl_tree_free(sa);
    yajl_tree_free(sb);

    free(a);
    free(b);
    free(c);
    free(full);
    free(r1.text);
    free(r2.text);
    free(r3.text);
    free(cut.text);
    free(res.text);
    free(fr.text);
    imt_index_close(idx);
    test_reference_list();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "chmod -R u+rwx '%s'; rm -rf '%s'", root, root);
    if (getenv("IMT_KEEP_TMP")) printf("kept %s\n", root);
    else if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
    return tu_done("test_scan_e2e");
}
