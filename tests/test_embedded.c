/* tests/test_embedded.c -- pictures embedded in a JPEG (engine/decode/embedded.c,
 * engine/scan/hashfile.c, the scan's matching and the JSONL report).
 *
 * Files: tests/data/embedded (make.sh: ImageMagick makes the pictures,
 * jpegembed.py writes the EXIF APP1 / MPF APP2 segments; ref.csv is the
 * reference hasher's output on each picture alone). Independent checks:
 *  - the EXIF thumbnail's bytes are the ones libexif extracts (when this
 *    test is built with libexif) and, always, the bytes of thumb.jpg that
 *    make.sh embedded;
 *  - the sub-item hashes (compat) equal the reference's hash of the
 *    embedded file alone; the main hash equals the reference's of the file;
 *  - done-when: cropped.jpg (cropped after capture, the original's EXIF
 *    thumbnail kept) is flagged thumbnail-differs and its thumbnail matches
 *    the original's reference hash, in a scan against an index holding only
 *    that hash: the file is a hit through its thumbnail;
 *  - the parser on hand-made and hostile segments: only in-bounds ranges. */
#include "decode/decode.h"
#include "imgtriage.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef IMT_TEST_LIBEXIF
#include <libexif/exif-data.h>
#endif

#define DATA IMT_SOURCE_DIR "/tests/data/embedded/"

static int ref_hash(const char *file, imt_pdq *out, int *quality)
{
    char hex[65];
    REQUIRE(tu_ref_csv(DATA "ref.csv", file, hex, quality));
    REQUIRE(imt_pdq_from_hex(out, hex, 64) == IMT_OK);
    return 1;
}

static void check_same(const imt_pdq *a, int qa, const char *file)
{
    imt_pdq r;
    int q;
    ref_hash(file, &r, &q);
    int d = imt_pdq_distance(a, &r);
    CHECKF(d == 0 && qa == q, "%s: distance %d to the reference, quality %d vs %d", file, d, qa,
           q);
}

/* ---- the parser ------------------------------------------------------------ */
static void test_parser(void)
{
    size_t n = 0, nt = 0;
    uint8_t *p = tu_read_file(DATA "cropped.jpg", &n);
    uint8_t *t = tu_read_file(DATA "thumb.jpg", &nt);
    REQUIRE(p && t);
    imt_embedded_ref r[8];
    size_t k = imt__jpeg_embedded(p, n, r, 8);
    CHECK(k == 1);
    CHECK(r[0].kind == IMT_SUB_EXIF_THUMBNAIL && r[0].size == nt);
    CHECK(r[0].offset + r[0].size <= n && !memcmp(p + r[0].offset, t, nt));

#ifdef IMT_TEST_LIBEXIF
    ExifData *ed = exif_data_new_from_data(p, (unsigned)n);
    REQUIRE(ed != NULL);
    CHECKF(ed->size == r[0].size && !memcmp(ed->data, p + r[0].offset, ed->size),
           "libexif: %u bytes", ed->size);
    exif_data_unref(ed);
#endif

    /* Every truncation and every single-byte change of the header
     * segments: ranges stay inside what the parser was given for the EXIF
     * thumbnail (inside its APP1), and nothing is read past n (ASan). */
    size_t hdr = r[0].offset + r[0].size + 64;
    for (size_t cut = 0; cut <= hdr && cut <= n; cut++) {
        uint8_t *c = malloc(cut ? cut : 1);
        REQUIRE(c != NULL);
        memcpy(c, p, cut);
        size_t m = imt__jpeg_embedded(c, cut, r, 8);
        for (size_t i = 0; i < m; i++)
            if (r[i].kind == IMT_SUB_EXIF_THUMBNAIL)
                CHECKF(r[i].offset + r[i].size <= cut, "cut %zu: range past the data", cut);
        free(c);
    }
    uint8_t *c = malloc(n);
    REQUIRE(c != NULL);
    for (size_t i = 2; i < 120; i++) {
        for (int v = 0; v < 256; v += 51) {
            memcpy(c, p, n);
            c[i] = (uint8_t)v;
            size_t m = imt__jpeg_embedded(c, n, r, 8);
            for (size_t j = 0; j < m; j++)
                if (r[j].kind == IMT_SUB_EXIF_THUMBNAIL)
                    CHECK(r[j].offset + r[j].size <= n && c[r[j].offset] == 0xFF &&
                          c[r[j].offset + 1] == 0xD8);
        }
    }
    free(c);
    /* A thumbnail pointing outside its APP1 is refused. */
    static const uint8_t bad[] = {
        0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x3C, 'E', 'x', 'i', 'f', 0, 0,
        'M', 'M', 0, 42, 0, 0, 0, 8,                 /* TIFF, IFD0 at 8 */
        0, 0, 0, 0, 0, 10,                           /* IFD0: 0 entries, IFD1 at 10 */
        0, 2, 0x02, 0x01, 0, 4, 0, 0, 0, 1, 0, 0, 0x10, 0, /* offset 4096 */
        0x02, 0x02, 0, 4, 0, 0, 0, 1, 0, 0, 0, 100,  /* length 100 */
        0, 0, 0, 0, 0xFF, 0xD8, 0xFF, 0xD9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xD9};
    CHECK(imt__jpeg_embedded(bad, sizeof bad, r, 8) == 0);
    CHECK(imt__jpeg_embedded(NULL, 0, r, 8) == 0);
    free(p);
    free(t);
}

/* ---- hashing ---------------------------------------------------------------- */
static void hash(imt_hasher *h, const char *file, imt_hash_result *r)
{
    char path[512];
    snprintf(path, sizeof path, DATA "%s", file);
    imt_hash_file(h, path, r);
    REQUIRE(r->status == IMT_OK);
}

static void test_hashing(void)
{
    imt_hash_opts o;
    imt_hash_opts_init(&o);
    CHECK(o.embedded == 1);
    o.mode = IMT_PDQ_COMPAT;
    imt_hasher *h = NULL;
    REQUIRE(imt_hasher_create(&h, &o) == IMT_OK);
    imt_hash_result r;

    hash(h, "original.jpg", &r);
    CHECK(r.n_sub == 0 && r.sub == NULL && !r.thumbnail_differs);

    hash(h, "unedited.jpg", &r);
    check_same(&r.pdq[0], r.quality, "unedited.jpg");
    REQUIRE(r.n_sub == 1);
    CHECK(r.sub[0].kind == IMT_SUB_EXIF_THUMBNAIL && r.sub[0].status == IMT_OK);
    CHECK(r.sub[0].width == 160 && r.sub[0].height == 120 && r.sub[0].format == IMT_FMT_JPEG);
    check_same(&r.sub[0].pdq[0], r.sub[0].quality, "thumb.jpg");
    CHECKF(!r.sub[0].differs && !r.thumbnail_differs && r.sub[0].distance >= 0 &&
               r.sub[0].distance <= IMT_PDQ_MATCH_DISTANCE,
           "unedited: distance %d", r.sub[0].distance);

    /* Done-when: cropped after capture, the original thumbnail kept. */
    hash(h, "cropped.jpg", &r);
    check_same(&r.pdq[0], r.quality, "cropped.jpg");
    REQUIRE(r.n_sub == 1);
    check_same(&r.sub[0].pdq[0], r.sub[0].quality, "thumb.jpg");
    CHECKF(r.sub[0].differs && r.thumbnail_differs &&
               r.sub[0].distance > IMT_PDQ_MATCH_DISTANCE,
           "cropped: distance %d", r.sub[0].distance);
    imt_pdq orig;
    int oq;
    ref_hash("original.jpg", &orig, &oq);
    int d = imt_pdq_distance(&r.sub[0].pdq[0], &orig);
    CHECKF(d <= IMT_PDQ_MATCH_DISTANCE, "thumbnail %d bits from the original", d);
    /* The differs flag looks at all 8 variants of the thumbnail. */
    for (int v = 0; v < IMT_DIH__COUNT; v++)
        CHECK(imt_pdq_distance(&r.sub[0].pdq[v], &r.pdq[0]) >= r.sub[0].distance);

    /* MPF: the second image, after the main one. */
    hash(h, "mpf.jpg", &r);
    REQUIRE(r.n_sub == 1);
    CHECK(r.sub[0].kind == IMT_SUB_MPF_IMAGE && r.sub[0].index == 1);
    CHECK(r.sub[0].width == 320 && r.sub[0].height == 240);
    check_same(&r.sub[0].pdq[0], r.sub[0].quality, "preview.jpg");
    CHECK(r.thumbnail_differs);

    /* Without digests (nothing else reads past the main image) and from
     * memory: the same. */
    size_t n = 0;
    uint8_t *p = tu_read_file(DATA "mpf.jpg", &n);
    REQUIRE(p != NULL);
    imt_hash_result m;
    REQUIRE(imt_hash_memory(h, p, n, &m) == IMT_OK);
    CHECK(m.n_sub == 1 && m.sub[0].status == IMT_OK &&
          !memcmp(m.sub[0].pdq, r.sub[0].pdq, sizeof m.sub[0].pdq));
    /* Cut inside the preview: truncated, the main image still hashed. */
    REQUIRE(imt_hash_memory(h, p, n - 100, &m) == IMT_OK);
    CHECK(m.n_sub == 1 && m.sub[0].status == IMT_E_TRUNCATED && !m.sub[0].has_pdq);
    CHECK(!m.thumbnail_differs);
    free(p);

    /* Off: no sub-items. */
    imt_hasher_free(h);
    o.embedded = 0;
    REQUIRE(imt_hasher_create(&h, &o) == IMT_OK);
    hash(h, "cropped.jpg", &r);
    CHECK(r.n_sub == 0 && !r.thumbnail_differs);
    imt_hasher_free(h);
}

/* ---- the scan: a hit through the thumbnail ---------------------------------- */
static void test_scan(void)
{
    char dir[] = "/tmp/imt_embedded_XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    char cmd[8192], idx[100], ev[100], list[100], out[100];
    snprintf(idx, sizeof idx, "%s/idx", dir);
    snprintf(ev, sizeof ev, "%s/ev", dir);
    snprintf(list, sizeof list, "%s/known.csv", dir);
    snprintf(out, sizeof out, "%s/report.jsonl", dir);
    REQUIRE(mkdir(ev, 0755) == 0);
    imt_pdq orig;
    int oq;
    ref_hash("original.jpg", &orig, &oq);
    char hx[65];
    imt_pdq_to_hex(&orig, hx);
    FILE *f = fopen(list, "w");
    REQUIRE(f != NULL);
    fprintf(f, "%s,%d\n", hx, oq);
    fclose(f);
    snprintf(cmd, sizeof cmd,
             "cp '" DATA "cropped.jpg' '%s/' && '%s' index create '%s' >/dev/null && "
             "'%s' index import '%s' '%s' >/dev/null && "
             "'%s' scan -x '%s' -t 1 -o '%s' '%s' 2>/dev/null; test $? -eq 1",
             ev, IMT_CLI, idx, IMT_CLI, idx, list, IMT_CLI, idx, out, ev);
    CHECKF(system(cmd) == 0, "scan did not report a hit: %s", cmd);
    size_t n = 0;
    char *rep = (char *)tu_read_file(out, &n);
    REQUIRE(rep != NULL);
    char *line = strstr(rep, "\"record\":\"file\"");
    REQUIRE(line != NULL);
    char *end = strchr(line, '\n');
    if (end) *end = '\0';
    CHECK(strstr(line, "\"flags\":[\"thumbnail-differs\"]") != NULL);
    CHECK(strstr(line, "\"embedded\":[{\"kind\":\"exif-thumbnail\"") != NULL);
    CHECK(strstr(line, "\"differs\":true") != NULL);
    CHECK(strstr(line, "\"disposition\":\"alert\"") != NULL);
    CHECK(strstr(line, "\"embedded\":0}") != NULL); /* the match names the thumbnail */
    if (end) *end = '\n';
    CHECK(strstr(rep, "\"hit_files\":1") != NULL);
    free(rep);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

int main(void)
{
    test_parser();
    test_hashing();
    test_scan();
    return tu_done("test_embedded");
}
