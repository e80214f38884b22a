/* tests/test_video_match.c -- known videos: vPDQ hash files imported into an
 * index, a device of videos scanned against it.
 *
 * The known videos are the reference's own hash files of known1.mp4 and
 * known2.mp4 (tests/data/video/ref, made by vpdq-hash-video); the device is
 * tests/data/video/videos: the known videos, copies re-encoded (H.264 to
 * HEVC, to VP9), rescaled, trimmed and frame-rate changed, and two unrelated
 * slideshows (make.sh made them all with ffmpeg). Expected:
 *   - each copy matches its known video and nothing else, the unrelated ones
 *     nothing; the decisions equal the reference matcher's (ref/match.txt:
 *     match-hashes-brute's percentages, thresholds 80 % query, 0 % compared);
 *   - the percentages equal a brute-force count here (every query frame
 *     against every known frame, exact duplicates once, quality >= 50,
 *     distance <= 31: python-threatexchange's vPDQ matcher), which the
 *     engine gets through the MIH index instead;
 *   - a frame that matches a known PICTURE (a pdq-csv list) is a hit too;
 *   - thresholds are options; bad hash files are refused with file:line. */
#include "imgtriage.h"
#include "report/report.h"
#include "testutil.h"

#include <math.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DATA IMT_SOURCE_DIR "/tests/data/video"

typedef struct kframe {
    imt_pdq pdq;
    int quality;
} kframe;

static size_t load_ref(const char *name, kframe *out, size_t cap)
{
    char path[512];
    snprintf(path, sizeof path, DATA "/ref/%s.txt", name);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = 0;
    unsigned long long fr;
    char hex[65], ts[32];
    int q;
    while (n < cap && fscanf(f, "%llu,%d,%64[0-9a-f],%31s", &fr, &q, hex, ts) == 4) {
        REQUIRE(imt_pdq_from_hex(&out[n].pdq, hex, 64) == IMT_OK);
        out[n++].quality = q;
    }
    fclose(f);
    return n;
}

/* Brute force: distinct hashes of quality >= 50 on both sides. */
static size_t distinct(const imt_pdq *h, const int *q, size_t n, imt_pdq *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (q[i] < 50) continue;
        int dup = 0;
        for (size_t j = 0; j < k && !dup; j++) dup = !memcmp(&out[j], &h[i], sizeof out[j]);
        if (!dup) out[k++] = h[i];
    }
    return k;
}

static void brute(const imt_video_frame *qf, size_t nq, const kframe *kf, size_t nk, double *qp,
                  double *cp)
{
    imt_pdq qh[64], kh[64], uq[64], uk[64];
    int qq[64], kq[64];
    REQUIRE(nq <= 64 && nk <= 64);
    for (size_t i = 0; i < nq; i++) qh[i] = qf[i].pdq, qq[i] = qf[i].quality;
    for (size_t i = 0; i < nk; i++) kh[i] = kf[i].pdq, kq[i] = kf[i].quality;
    size_t a = distinct(qh, qq, nq, uq), b = distinct(kh, kq, nk, uk);
    size_t qm = 0, km = 0;
    for (size_t i = 0; i < a; i++) {
        int hit = 0;
        for (size_t j = 0; j < b && !hit; j++) hit = imt_pdq_distance(&uq[i], &uk[j]) <= 31;
        qm += hit;
    }
    for (size_t j = 0; j < b; j++) {
        int hit = 0;
        for (size_t i = 0; i < a && !hit; i++) hit = imt_pdq_distance(&uq[i], &uk[j]) <= 31;
        km += hit;
    }
    *qp = a ? (double)qm * 100.0 / (double)a : 0;
    *cp = b ? (double)km * 100.0 / (double)b : 0;
}

/* The reference matcher's decision for (query, known): ref/match.txt. */
static int ref_decision(const char *query, const char *known)
{
    FILE *f = fopen(DATA "/ref/match.txt", "r");
    REQUIRE(f);
    char q[64], k[64];
    double qp, kp;
    int d = -1;
    while (fscanf(f, "%63s %63s %lf %lf", q, k, &qp, &kp) == 4)
        if (!strcmp(q, query) && !strcmp(k, known)) d = qp >= 80.0 && kp >= 0.0;
    fclose(f);
    REQUIRE(d >= 0);
    return d;
}

typedef struct seen {
    int records;
    int checked;
    kframe known[2][64];
    size_t nknown[2];
    int pictures; /* frame matches on the picture list */
} seen;

static const char *base_of(const char *path, char *buf, size_t cap)
{
    const char *b = strrchr(path, '/');
    snprintf(buf, cap, "%s", b ? b + 1 : path);
    char *dot = strrchr(buf, '.');
    if (dot) *dot = 0;
    return buf;
}

static int on_record(void *ctx, const imt_scan_record *rec)
{
    seen *s = ctx;
    if (!rec->hash || rec->type != IMT_ENTRY_FILE) return 0;
    s->records++;
    char name[128];
    base_of(rec->path, name, sizeof name);
    const imt_hash_result *h = rec->hash;
    CHECKF(rec->status == IMT_OK && h->n_frames >= 7, "%s: %s, %zu frames", name,
           imt_err_name(rec->status), h->n_frames);
    const char *kn[2] = {"known1", "known2"};
    for (int k = 0; k < 2; k++) {
        int want = ref_decision(name, kn[k]);
        const imt_scan_match *got = NULL;
        for (size_t i = 0; i < rec->n_matches; i++)
            if (rec->matches[i].kind == IMT_KIND_VPDQ && !strcmp(rec->matches[i].external_id, kn[k]))
                got = &rec->matches[i];
        CHECKF(!!got == want, "%s vs %s: matched %d, the reference %d", name, kn[k], !!got, want);
        double qp, cp;
        brute(h->frames, h->n_frames, s->known[k], s->nknown[k], &qp, &cp);
        if (got) {
            CHECKF(got->query_pct == qp && got->compared_pct == cp,
                   "%s vs %s: %.2f %% / %.2f %%, brute force %.2f / %.2f", name, kn[k],
                   got->query_pct, got->compared_pct, qp, cp);
            CHECK(got->query_pct >= 80.0 && got->n_ranges >= 1 && got->ranges[0] >= 0 &&
                  got->ranges[2 * got->n_ranges - 1] <= h->frames[h->n_frames - 1].timestamp);
            CHECK(got->disposition == IMT_DISP_ALERT && !strcmp(got->list, "known videos"));
            printf("%-14s matches %s: query %.2f %%, compared %.2f %%, %zu range(s) from %.3f s\n",
                   name, kn[k], got->query_pct, got->compared_pct, got->n_ranges, got->ranges[0]);
        } else {
            CHECKF(qp < 80.0, "%s vs %s: brute force %.2f %% but no match", name, kn[k], qp);
        }
        s->checked++;
    }
    for (size_t i = 0; i < rec->n_matches; i++) {
        const imt_scan_match *m = &rec->matches[i];
        if (m->kind == IMT_KIND_PDQ) {
            CHECK(m->frame >= 1 && m->frame <= h->n_frames && !strcmp(m->list, "pictures"));
            s->pictures++;
        }
    }
    if (!strncmp(name, "unrelated", 9)) CHECKF(rec->n_matches == 0, "%s: %zu matches", name,
                                               rec->n_matches);
    /* the JSONL record carries the frames and the video matches, and reads
     * back (facts.c) into the same record: re-emitted byte for byte */
    imt__buf b = {0}, b2 = {0};
    imt__put_record_json(&b, rec);
    REQUIRE(b.p);
    CHECK(strstr(b.p, "\"frames\":[{\"frame\":0,") && (!rec->n_matches || strstr(b.p, "\"ranges\":[[")));
    char *copy = strdup(b.p);
    yajl_val v = yajl_tree_parse(copy, NULL, 0);
    imt__jrecord jr;
    memset(&jr, 0, sizeof jr);
    CHECKF(v && imt__record_from_json(v, &jr) == IMT_OK, "%s: not read back", name);
    if (v && jr.rec.path) {
        imt__put_record_json(&b2, &jr.rec);
        CHECKF(b2.p && !strcmp(b.p, b2.p), "%s: re-emitted\n%s\ndiffers from\n%s", name,
               b2.p ? b2.p : "", b.p);
        CHECK(jr.hash.n_frames == h->n_frames);
    }
    imt__jrecord_clear(&jr);
    yajl_tree_free(v);
    free(copy);
    imt__buf_free(&b);
    imt__buf_free(&b2);
    return 0;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    fputs(text, f);
    fclose(f);
}

int main(void)
{
    char dir[256], idxdir[300], kdir[300], path[400], cmd[1200];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/imt_vmatch_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    REQUIRE(mkdtemp(dir));
    snprintf(idxdir, sizeof idxdir, "%s/idx", dir);
    snprintf(kdir, sizeof kdir, "%s/known", dir);
    REQUIRE(mkdir(kdir, 0700) == 0);
    snprintf(cmd, sizeof cmd, "cp " DATA "/ref/known1.txt " DATA "/ref/known2.txt %s/", kdir);
    REQUIRE(system(cmd) == 0);

    seen s;
    memset(&s, 0, sizeof s);
    s.nknown[0] = load_ref("known1", s.known[0], 64);
    s.nknown[1] = load_ref("known2", s.known[1], 64);
    REQUIRE(s.nknown[0] == 12 && s.nknown[1] == 12);

    imt_index_opts io;
    imt_index_opts_init(&io);
    io.read_only = 0;
    io.create = 1;
    imt_index *idx;
    REQUIRE(imt_index_open(&idx, idxdir, &io) == IMT_OK);
    imt_import_opts im;
    imt_import_opts_init(&im);
    im.name = "known videos";
    imt_import_stats st;
    imt_err e = imt_index_import(idx, kdir, &im, &st);
    CHECKF(e == IMT_OK && st.records == 24 && !strcmp(st.format, "vpdq"), "import: %s %s",
           imt_err_name(e), imt_index_last_error(idx));

    /* a known picture: the reference's hash of known1's frame at 6 s */
    char csv[512], line[256];
    snprintf(csv, sizeof csv, "%s/pictures.csv", dir);
    {
        FILE *f = fopen(DATA "/ref/known1.txt", "r");
        REQUIRE(f);
        char l[256] = "";
        for (int i = 0; i < 7 && fgets(l, sizeof l, f); i++) {}
        fclose(f);
        char hex[65];
        REQUIRE(sscanf(l, "%*d,%*d,%64[0-9a-f]", hex) == 1 && strstr(l, ",6.000"));
        snprintf(line, sizeof line, "%s,100,q0291.jpg\n", hex);
    }
    write_file(csv, line);
    imt_import_opts_init(&im);
    im.name = "pictures";
    e = imt_index_import(idx, csv, &im, &st);
    CHECKF(e == IMT_OK, "pictures: %s", imt_index_last_error(idx));

    /* bad hash files: file:line, nothing imported */
    snprintf(path, sizeof path, "%s/bad.txt", dir);
    write_file(path, "0,100,d0f8f0cec0f4a84f0e37022a278f67f0b36e2ec5b6623e1d33e6239c4e9c9b22,0.000\n"
                     "10,101,d0f8f0cec0f4a84f0e37022a278f67f0b36e2ec5b6623e1d33e6239c4e9c9b22,1.000\n");
    imt_import_opts_init(&im);
    im.format = "vpdq";
    e = imt_index_import(idx, path, &im, &st);
    CHECKF(e == IMT_E_PARSE && strstr(imt_index_last_error(idx), "bad.txt:2:"), "bad: %s %s",
           imt_err_name(e), imt_index_last_error(idx));
    write_file(path, "\n");
    e = imt_index_import(idx, path, &im, &st);
    CHECKF(e == IMT_E_EMPTY, "empty: %s %s", imt_err_name(e), imt_index_last_error(idx));
    /* auto-detected, with an id */
    write_file(path, "0,100,0000f0cec0f4a84f0e37022a278f67f0b36e2ec5b6623e1d33e6239c4e9c9b22,0.000\n");
    imt_import_opts_init(&im);
    im.video_id = "solo";
    e = imt_index_import(idx, path, &im, &st);
    CHECKF(e == IMT_OK && !strcmp(st.format, "vpdq"), "solo: %s %s", imt_err_name(e),
           imt_index_last_error(idx));
    imt_index_close(idx);

    /* the device, scanned */
    io.read_only = 1;
    io.create = 0;
    REQUIRE(imt_index_open(&idx, idxdir, &io) == IMT_OK);
    imt_scan_opts so;
    imt_scan_opts_init(&so);
    so.threads = 2;
    const char *paths[] = {DATA "/videos"};
    char detail[256];
    e = imt_scan_run(idx, paths, 1, &so, on_record, &s, detail, sizeof detail);
    CHECKF(e == IMT_OK, "scan: %s", detail);
    CHECK(s.records == 9 && s.checked == 18);
    /* known1, and its hevc, rescaled and fps25 copies, hold the picture */
    CHECKF(s.pictures == 4, "%d frame matches on the picture list", s.pictures);

    /* thresholds are options: with compared >= 100 % the trimmed copy
     * (80 % of known2's distinct frames) no longer matches */
    imt_cursor *c;
    REQUIRE(imt_cursor_open(&c, idx) == IMT_OK);
    imt_hasher *h;
    REQUIRE(imt_hasher_create(&h, NULL) == IMT_OK);
    imt_hash_result r;
    REQUIRE(imt_hash_file(h, DATA "/videos/copy_trimmed.ts", &r) == IMT_OK);
    imt_vpdq_opts vo;
    imt_vpdq_opts_init(&vo);
    const imt_vpdq_match *vm;
    size_t nv;
    REQUIRE(imt_query_vpdq(c, r.frames, r.n_frames, &vo, &vm, &nv) == IMT_OK);
    CHECK(nv == 1 && !strcmp(vm[0].video, "known2") && vm[0].compared_pct == 80.0 &&
          vm[0].known_frames == 5 && vm[0].known_matched == 4);
    vo.compared_pct = 100;
    REQUIRE(imt_query_vpdq(c, r.frames, r.n_frames, &vo, &vm, &nv) == IMT_OK);
    CHECK(nv == 0);
    vo.compared_pct = 0;
    vo.distance = 0; /* re-encoded: few frames are bit-identical */
    REQUIRE(imt_query_vpdq(c, r.frames, r.n_frames, &vo, &vm, &nv) == IMT_OK);
    CHECK(nv == 0 || vm[0].query_pct < 100);
    imt_hasher_free(h);
    imt_cursor_close(c);
    imt_index_close(idx);

    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return tu_done("test_video_match");
}
