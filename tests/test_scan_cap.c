/* tests/test_scan_cap.c -- the cap on matches kept per file
 * (imt_scan_opts.max_matches) never drops an alerting match, or a graver
 * category, for a lesser one: the hit and the priority follow the matches
 * kept. A picture (the PDQ reference image, its hash from the reference
 * hasher's CSV) matches three informational entries (Project VIC category
 * 3) at distances 1-3, then an alert of category 2 at 4 and one of
 * category 1 at 27; the index answers in order of distance, so a cap that
 * kept the first matches kept only informational ones and the file was no
 * hit. imt_matcher, the same matching for an item the caller hashed
 * (imgtriage carve), keeps the same. */
#include "testutil.h"

#include <imgtriage.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void unhex(const char *h, uint8_t *d, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(h + 2 * i, "%2x", &v);
        d[i] = (uint8_t)v;
    }
}

/* the hash with bits [from, from + n) flipped, as hex */
static void flipped(const uint8_t *h, int from, int n, char out[65])
{
    uint8_t x[32];
    memcpy(x, h, 32);
    for (int b = from; b < from + n; b++) x[b / 8] ^= (uint8_t)(1u << (b % 8));
    for (int i = 0; i < 32; i++) sprintf(out + 2 * i, "%02x", x[i]);
}

typedef struct got {
    size_t n, omitted, alerts, info;
    int cat_alert[4];
} got;

static int on_record(void *ctx, const imt_scan_record *r)
{
    got *g = ctx;
    g->n = r->n_matches;
    g->omitted = r->matches_omitted;
    for (size_t i = 0; i < r->n_matches; i++) {
        const imt_scan_match *m = &r->matches[i];
        if (m->disposition == IMT_DISP_ALERT) {
            if (g->alerts < 4) g->cat_alert[g->alerts] = m->category;
            g->alerts++;
        } else if (m->disposition == IMT_DISP_INFO) {
            g->info++;
        }
    }
    return 0;
}

static got scan(imt_index *idx, const char *pic, size_t max)
{
    got g;
    memset(&g, 0, sizeof g);
    imt_scan_opts so;
    imt_scan_opts_init(&so);
    so.max_matches = max;
    const char *paths[1] = {pic};
    imt_err e = imt_scan_run(idx, paths, 1, &so, on_record, &g, NULL, 0);
    CHECKF(e == IMT_OK, "scan with max_matches %zu: %s", max, imt_strerror(e));
    return g;
}

int main(void)
{
    const char *pic = tu_shared("vectors/pdq/images/bridge-mods/aaa-orig.jpg");
    const char *csv = tu_shared("vectors/pdq/observed/cpp-shipped-imagemagick.csv");
    if (!pic || !csv) return tu_skip("../shared/vectors/pdq (the PDQ reference images) is absent");
    char hex[65];
    int q;
    REQUIRE(tu_ref_csv(csv, "bridge-mods/aaa-orig.jpg", hex, &q));
    uint8_t ref[32];
    unhex(hex, ref, 32);

    char tmp[300], dir[400], list[400];
    snprintf(tmp, sizeof tmp, "%s/imt_cap_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    REQUIRE(mkdtemp(tmp));
    snprintf(dir, sizeof dir, "%s/idx", tmp);
    snprintf(list, sizeof list, "%s/vics.json", tmp);
    /* MediaID, category, bits flipped (distance from the reference hash;
     * the fast hash lands within 10 bits of it, so the order holds) */
    static const struct { int id, cat, from, n; } md[] = {
        {1, 3, 0, 1}, {2, 3, 8, 2}, {3, 3, 16, 3}, {4, 2, 24, 4}, {5, 1, 64, 27}};
    FILE *f = fopen(list, "w");
    REQUIRE(f);
    fprintf(f, "{\"@odata.context\":\"http://x/2.0.xml/Default/$metadata#Media\",\"value\":[");
    for (int i = 0; i < 5; i++) {
        char p[65];
        flipped(ref, md[i].from, md[i].n, p);
        fprintf(f,
                "%s{\"MediaID\":%d,\"Category\":%d,\"MD5\":\"%032x\",\"AlternativeHashes\":"
                "[{\"HashName\":\"PDQ\",\"HashValue\":\"%s\"}]}",
                i ? "," : "", md[i].id, md[i].cat, 0x1000 + i, p);
    }
    fprintf(f, "]}\n");
    fclose(f);

    imt_index *idx = tu_index_rw(dir, 1);
    imt_import_opts io;
    imt_import_opts_init(&io);
    imt_import_stats st;
    CHECKF(imt_index_import(idx, list, &io, &st) == IMT_OK, "import: %s", imt_index_last_error(idx));

    got g = scan(idx, pic, 100); /* no cap reached: all five */
    CHECKF(g.n == 5 && g.omitted == 0 && g.alerts == 2 && g.info == 3,
           "max 100: %zu kept, %zu omitted, %zu alerts, %zu info; want 5, 0, 2, 3", g.n, g.omitted, g.alerts,
           g.info);
    g = scan(idx, pic, 2); /* both alerts kept, the three informational omitted */
    CHECKF(g.n == 2 && g.omitted == 3 && g.alerts == 2, "max 2: %zu kept, %zu omitted, %zu alerts; want 2, 3, 2",
           g.n, g.omitted, g.alerts);
    CHECKF(g.alerts == 2 && ((g.cat_alert[0] == 2 && g.cat_alert[1] == 1) ||
                             (g.cat_alert[0] == 1 && g.cat_alert[1] == 2)),
           "max 2: alert categories %d, %d; want 2 and 1", g.cat_alert[0], g.cat_alert[1]);
    g = scan(idx, pic, 1); /* the gravest category */
    CHECKF(g.n == 1 && g.omitted == 4 && g.alerts == 1 && g.cat_alert[0] == 1,
           "max 1: %zu kept, %zu omitted, %zu alerts (category %d); want 1, 4, 1 (category 1)", g.n, g.omitted,
           g.alerts, g.cat_alert[0]);

    /* imt_matcher (what imgtriage carve matches its items with) keeps the
     * same matches for the same hash result */
    imt_hash_opts ho;
    imt_hash_opts_init(&ho);
    ho.dihedral = 1;
    imt_hasher *h = NULL;
    REQUIRE(imt_hasher_create(&h, &ho) == IMT_OK);
    imt_hash_result res;
    CHECK(imt_hash_file(h, pic, &res) == IMT_OK);
    imt_scan_opts so;
    imt_scan_opts_init(&so);
    for (size_t max = 1; max <= 2; max++) {
        so.max_matches = max;
        imt_matcher *mt = NULL;
        REQUIRE(imt_matcher_open(&mt, idx, &so) == IMT_OK);
        imt_scan_record rec;
        memset(&rec, 0, sizeof rec);
        CHECK(imt_matcher_match(mt, &res, &rec) == IMT_OK);
        got m;
        memset(&m, 0, sizeof m);
        on_record(&m, &rec);
        CHECKF(m.n == max && m.omitted == 5 - max && m.alerts == max && m.cat_alert[max - 1] == 1,
               "matcher, max %zu: %zu kept, %zu omitted, %zu alerts; want %zu, %zu, %zu with category 1",
               max, m.n, m.omitted, m.alerts, max, 5 - max, max);
        imt_matcher_close(mt);
    }
    imt_hasher_free(h);
    imt_index_close(idx);

    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    return tu_done("test_scan_cap");
}
