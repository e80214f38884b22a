/* tests/test_video.c -- video hashing (engine/video through imt_hash_*)
 * against the reference's vpdq-hash-video output, and bad input.
 *
 * tests/data/video/videos/ holds small slideshows made by make.sh with
 * ffmpeg from the public PDQ vector images (H.264, HEVC, VP9, MPEG-4 part 2,
 * FLV1 in MP4, MKV, WebM, AVI, FLV and MPEG-TS); ref/NAME.txt is the
 * reference's hash file of each (ref/README says how it was made). Every
 * frame must be sampled at the same timestamp with the same frame number,
 * and hashes of quality >= 80 within 10 bits (upstream's rule for a port);
 * this build follows the reference's pixel path, so they are identical in
 * practice and the test prints how many are. */
#include "testutil.h"
#include "video/video.h"

#include <math.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#define DATA IMT_SOURCE_DIR "/tests/data/video"

static const char *const videos[] = {
    "known1.mp4",   "known2.mp4",     "copy_hevc.mp4",  "copy_vp9.webm",   "copy_rescaled.mkv",
    "copy_trimmed.ts", "copy_fps25.avi", "unrelated1.mp4", "unrelated2.flv"};

typedef struct ref_frame {
    unsigned long long number;
    int quality;
    char hex[65];
    char ts[32];
} ref_frame;

static size_t load_ref(const char *name, ref_frame *out, size_t cap)
{
    char path[512], base[128];
    snprintf(base, sizeof base, "%s", name);
    char *dot = strrchr(base, '.');
    if (dot) *dot = 0;
    snprintf(path, sizeof path, DATA "/ref/%s.txt", base);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = 0;
    while (n < cap && fscanf(f, "%llu,%d,%64[0-9a-f],%31s", &out[n].number, &out[n].quality,
                             out[n].hex, out[n].ts) == 4)
        n++;
    fclose(f);
    return n;
}

static imt_format expect_format(const char *name)
{
    const char *e = strrchr(name, '.');
    if (!strcmp(e, ".mp4")) return IMT_FMT_MP4;
    if (!strcmp(e, ".webm") || !strcmp(e, ".mkv")) return IMT_FMT_MATROSKA;
    if (!strcmp(e, ".ts")) return IMT_FMT_MPEGTS;
    if (!strcmp(e, ".avi")) return IMT_FMT_AVI;
    if (!strcmp(e, ".flv")) return IMT_FMT_FLV;
    return IMT_FMT_UNKNOWN;
}

static void test_reference(imt_hasher *h, imt_hasher *hm)
{
    size_t total = 0, identical = 0, compared = 0;
    for (size_t v = 0; v < sizeof videos / sizeof videos[0]; v++) {
        ref_frame ref[64];
        size_t nref = load_ref(videos[v], ref, 64);
        CHECKF(nref > 0, "%s: no reference frames", videos[v]);
        char path[512];
        snprintf(path, sizeof path, DATA "/videos/%s", videos[v]);
        imt_hash_result r;
        imt_err e = imt_hash_file(h, path, &r);
        CHECKF(e == IMT_OK, "%s: %s %s", videos[v], imt_err_name(e), r.detail);
        CHECKF(r.format == expect_format(videos[v]), "%s: format %s", videos[v],
               imt_format_name(r.format));
        CHECK(!r.has_pdq && r.width == 256 + (strstr(videos[v], "rescaled") ? 128 : 0));
        CHECKF(r.n_frames == nref, "%s: %zu frames, reference %zu", videos[v], r.n_frames,
               nref);
        for (size_t i = 0; i < r.n_frames && i < nref; i++) {
            const imt_video_frame *f = &r.frames[i];
            char ts[32], hx[65];
            snprintf(ts, sizeof ts, "%.3f", f->timestamp);
            imt_pdq_to_hex(&f->pdq, hx);
            CHECKF(!strcmp(ts, ref[i].ts), "%s frame %zu: at %s, reference %s", videos[v], i,
                   ts, ref[i].ts);
            CHECKF(f->number == ref[i].number, "%s frame %zu: number %llu, reference %llu",
                   videos[v], i, (unsigned long long)f->number, ref[i].number);
            imt_pdq rp;
            REQUIRE(imt_pdq_from_hex(&rp, ref[i].hex, 64) == IMT_OK);
            int d = imt_pdq_distance(&f->pdq, &rp);
            total++;
            if (ref[i].quality >= 80) {
                compared++;
                CHECKF(d <= 10, "%s frame %zu: %d bits from the reference", videos[v], i, d);
            }
            if (d == 0 && f->quality == ref[i].quality) identical++;
        }
        /* the same bytes from memory: the same frames */
        size_t len;
        unsigned char *buf = tu_read_file(path, &len);
        REQUIRE(buf);
        size_t n = r.n_frames;
        imt_video_frame *keep = malloc(n * sizeof *keep);
        REQUIRE(keep);
        memcpy(keep, r.frames, n * sizeof *keep);
        e = imt_hash_memory(hm, buf, len, &r);
        CHECKF(e == IMT_OK && r.n_frames == n && !memcmp(keep, r.frames, n * sizeof *keep),
               "%s: from memory %s, %zu frames", videos[v], imt_err_name(e), r.n_frames);
        free(keep);
        free(buf);
    }
    printf("reference: %zu frames, %zu of quality >= 80 compared, %zu identical in hash and "
           "quality\n", total, compared, identical);
    CHECK(total >= 90 && compared >= 80);
}

/* Bad input: a named error or a partial result, never a crash. */
static void test_bad(imt_hasher *h)
{
    char path[512];
    snprintf(path, sizeof path, DATA "/videos/known1.mp4");
    size_t len;
    unsigned char *buf = tu_read_file(path, &len);
    REQUIRE(buf && len > 4096);
    imt_hash_result r;

    /* truncated at many points: the moov of this MP4 is at the end, so
     * most cuts lose the index: corrupt or truncated, never a crash */
    for (size_t cut = 0; cut <= 20; cut++) {
        size_t n = len * cut / 20;
        imt_err e = imt_hash_memory(h, buf, n, &r);
        if (n == 0) CHECK(e == IMT_E_EMPTY);
        else if (n < len) CHECKF(e != IMT_OK || r.n_frames > 0, "cut %zu", n);
        else CHECK(e == IMT_OK && r.n_frames == 12);
        if (e != IMT_OK) CHECKF(r.detail[0] && !r.n_frames, "cut %zu: %s", n, imt_err_name(e));
    }
    /* garbage after a valid head: every 4 KiB block after the first hit */
    unsigned char *bad = malloc(len);
    REQUIRE(bad);
    memcpy(bad, buf, len);
    for (size_t i = 4096; i < len; i += 4096) bad[i] ^= 0x5a, bad[i + 1] ^= 0xa5;
    imt_err e = imt_hash_memory(h, bad, len, &r);
    CHECKF(e == IMT_OK || e == IMT_E_CORRUPT || e == IMT_E_TRUNCATED, "garbled: %s",
           imt_err_name(e));
    free(bad);
    free(buf);

    /* absurd dimensions: the AVI's stream header says 60000x60000 */
    snprintf(path, sizeof path, DATA "/videos/copy_fps25.avi");
    buf = tu_read_file(path, &len);
    REQUIRE(buf);
    int patched = 0;
    for (size_t i = 0; i + 20 < len && i < 4096; i++) {
        if (!memcmp(buf + i, "strf", 4)) {
            uint8_t *bi = buf + i + 8; /* BITMAPINFOHEADER: size, width, height */
            bi[4] = 0x60, bi[5] = 0xea, bi[6] = 0, bi[7] = 0;
            bi[8] = 0x60, bi[9] = 0xea, bi[10] = 0, bi[11] = 0;
            patched = 1;
            break;
        }
    }
    CHECK(patched);
    e = imt_hash_memory(h, buf, len, &r);
    CHECKF(e == IMT_E_TOO_LARGE || e == IMT_OK, "60000x60000 AVI: %s %s", imt_err_name(e),
           r.detail);
    printf("60000x60000 AVI header: %s (%s)\n", imt_err_name(e), r.detail);
    free(buf);

    /* a zero-length file and a video signature with nothing behind it */
    e = imt_hash_memory(h, "\x1a\x45\xdf\xa3", 4, &r);
    CHECKF(e == IMT_E_CORRUPT && r.format == IMT_FMT_MATROSKA, "EBML head only: %s",
           imt_err_name(e));
    e = imt_hash_memory(h, "\0\0\0\x14" "ftypisom\0\0\0\0isom", 20, &r);
    CHECKF(e == IMT_E_CORRUPT && r.format == IMT_FMT_MP4, "ftyp only: %s", imt_err_name(e));
}

/* Bounded: the time budget, the frame cap, seconds per hash. */
static void test_limits(void)
{
    char path[512];
    snprintf(path, sizeof path, DATA "/videos/known2.mp4");
    imt_hash_opts o;
    imt_hash_opts_init(&o);
    o.max_video_frames = 3;
    imt_hasher *h;
    REQUIRE(imt_hasher_create(&h, &o) == IMT_OK);
    imt_hash_result r;
    imt_err e = imt_hash_file(h, path, &r);
    CHECKF(e == IMT_OK && r.n_frames == 3 && r.partial && r.frames[2].timestamp == 2.0,
           "cap 3: %s %zu", imt_err_name(e), r.n_frames);
    imt_hasher_free(h);

    imt_hash_opts_init(&o);
    o.seconds_per_hash = 2.5; /* frames at 0, 2.5, 5, ... (10 fps: exact) */
    REQUIRE(imt_hasher_create(&h, &o) == IMT_OK);
    e = imt_hash_file(h, path, &r);
    CHECKF(e == IMT_OK && r.n_frames == 5, "2.5 s: %s %zu", imt_err_name(e), r.n_frames);
    for (size_t i = 0; i < r.n_frames; i++) {
        CHECK(fabs(r.frames[i].timestamp - 2.5 * (double)i) < 1e-6);
        CHECK(r.frames[i].number == 25 * i / 1);
    }
    imt_hasher_free(h);

    o.seconds_per_hash = 1;
    o.time_budget_ms = 1; /* decoding 12 s of video takes longer than 1 ms */
    REQUIRE(imt_hasher_create(&h, &o) == IMT_OK);
    usleep(2000);
    e = imt_hash_file(h, path, &r);
    CHECKF(e == IMT_E_TIMEOUT || e == IMT_OK, "1 ms budget: %s", imt_err_name(e));
    printf("1 ms budget: %s (%s)\n", imt_err_name(e), r.detail);
    imt_hasher_free(h);

    /* a frame over the limits is refused before the decoder opens */
    imt_hash_opts_init(&o);
    o.max_dimension = 200;
    REQUIRE(imt_hasher_create(&h, &o) == IMT_OK);
    e = imt_hash_file(h, path, &r);
    CHECKF(e == IMT_E_TOO_LARGE && strstr(r.detail, "256x192") && r.n_frames == 0,
           "max-dimension 200: %s %s", imt_err_name(e), r.detail);
    imt_hasher_free(h);
    imt_hash_opts_init(&o);
    o.max_pixels = 256 * 192 - 1;
    REQUIRE(imt_hasher_create(&h, &o) == IMT_OK);
    e = imt_hash_file(h, path, &r);
    CHECKF(e == IMT_E_TOO_LARGE, "max-pixels: %s %s", imt_err_name(e), r.detail);
    imt_hasher_free(h);

    o.seconds_per_hash = 0;
    CHECK(imt_hasher_create(&h, &o) == IMT_E_INVALID);
}

/* Variable frame rate: one frame per second by presentation time, the
 * first at or after each whole second, its number its index among the
 * frames; the oracle is ffprobe's list of the frames' times (ref/vfr.pts). */
static void test_vfr(imt_hasher *h)
{
    FILE *f = fopen(DATA "/ref/vfr.pts", "r");
    REQUIRE(f);
    double pts[512];
    size_t n = 0;
    while (n < 512 && fscanf(f, "%lf", &pts[n]) == 1) n++;
    fclose(f);
    REQUIRE(n > 50);
    imt_hash_result r;
    REQUIRE(imt_hash_file(h, DATA "/vfr/vfr.mkv", &r) == IMT_OK);
    size_t k = 0;
    for (size_t sec = 0; sec < 6; sec++) {
        size_t i = 0;
        while (i < n && pts[i] < (double)sec - 1e-9) i++;
        if (i == n) break;
        REQUIRE(k < r.n_frames);
        CHECKF(fabs(r.frames[k].timestamp - pts[i]) < 1e-6 && r.frames[k].number == i,
               "second %zu: frame %llu at %.3f, expected %zu at %.3f", sec,
               (unsigned long long)r.frames[k].number, r.frames[k].timestamp, i, pts[i]);
        k++;
    }
    CHECKF(k == r.n_frames && k == 6, "%zu frames, expected %zu", r.n_frames, k);
}

/* A short batch gives its idle workers to the video decoders (codec
 * threads): the frames must not change. */
typedef struct one {
    imt_video_frame f[64];
    size_t n;
    imt_err st;
} one;

static int keep_record(void *ctx, const imt_scan_record *rec)
{
    one *o = ctx;
    if (!rec->hash) return 0;
    o->st = rec->hash->status;
    o->n = rec->hash->n_frames < 64 ? rec->hash->n_frames : 64;
    memcpy(o->f, rec->hash->frames, o->n * sizeof o->f[0]);
    return 0;
}

static void test_threads(void)
{
    static const char *const names[] = {"copy_hevc.mp4", "copy_vp9.webm", "copy_fps25.avi"};
    imt_hasher *h;
    REQUIRE(imt_hasher_create(&h, NULL) == IMT_OK);
    for (size_t i = 0; i < 3; i++) {
        char path[512];
        snprintf(path, sizeof path, DATA "/videos/%s", names[i]);
        imt_hash_result r;
        REQUIRE(imt_hash_file(h, path, &r) == IMT_OK);
        imt_scan_opts so;
        imt_scan_opts_init(&so);
        so.threads = 4; /* one file, four workers: four decoder threads */
        one o;
        memset(&o, 0, sizeof o);
        const char *paths[] = {path};
        CHECK(imt_scan_run(NULL, paths, 1, &so, keep_record, &o, NULL, 0) == IMT_OK);
        CHECKF(o.st == IMT_OK && o.n == r.n_frames && !memcmp(o.f, r.frames, o.n * sizeof o.f[0]),
               "%s: %zu frames with decoder threads, %zu without", names[i], o.n, r.n_frames);
    }
    imt_hasher_free(h);
}

static void test_sniff(void)
{
    static const struct { const char *bytes; size_t n; imt_format f; } t[] = {
        {"\0\0\0\x18" "ftypmp42\0\0\0\0mp42isom", 24, IMT_FMT_MP4},
        {"\0\0\0\x14" "ftypqt  \0\0\0\0qt  ", 20, IMT_FMT_MP4},
        {"\0\0\0\x18" "ftypheic\0\0\0\0mif1heic", 24, IMT_FMT_HEIF},
        {"\0\0\0\x18" "ftypcrx \0\0\0\0crx isom", 24, IMT_FMT_UNKNOWN},
        {"\x1a\x45\xdf\xa3\x01\0\0\0", 8, IMT_FMT_MATROSKA},
        {"RIFF\0\0\0\0AVI LIST", 16, IMT_FMT_AVI},
        {"RIFF\0\0\0\0WEBPVP8 ", 16, IMT_FMT_WEBP},
        {"\x30\x26\xb2\x75\x8e\x66\xcf\x11\xa6\xd9\x00\xaa\x00\x62\xce\x6c", 16, IMT_FMT_ASF},
        {"FLV\x01\x05\0\0\0\x09", 9, IMT_FMT_FLV},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        CHECKF(imt_sniff(t[i].bytes, t[i].n) == t[i].f, "case %zu: %s", i,
               imt_format_name(imt_sniff(t[i].bytes, t[i].n)));
    unsigned char ts[600];
    memset(ts, 0xff, sizeof ts);
    ts[0] = ts[188] = ts[376] = 0x47;
    CHECK(imt_sniff(ts, sizeof ts) == IMT_FMT_MPEGTS);
    CHECK(imt_sniff(ts, 300) == IMT_FMT_UNKNOWN);
    ts[376] = 0;
    CHECK(imt_sniff(ts, sizeof ts) == IMT_FMT_UNKNOWN);
    CHECK(imt_format_is_video(IMT_FMT_MPEGTS) && !imt_format_is_video(IMT_FMT_HEIF));
    CHECK(!strcmp(imt_format_name(IMT_FMT_MATROSKA), "matroska"));
}

int main(void)
{
    test_sniff();
    imt_hasher *h, *hm;
    imt_hash_opts o;
    imt_hash_opts_init(&o);
    o.digests = IMT_DIGEST_ALL;
    REQUIRE(imt_hasher_create(&h, &o) == IMT_OK);
    REQUIRE(imt_hasher_create(&hm, NULL) == IMT_OK);
    test_reference(h, hm);
    test_bad(h);
    test_limits();
    test_threads();
    test_vfr(h);
    imt_hasher_free(h);
    imt_hasher_free(hm);
    return tu_done("test_video");
}
