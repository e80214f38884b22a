/* tests/test_report.c -- engine/report's pure parts: the facts of a record
 * survive the round trip record -> JSONL line -> facts (what resume relies
 * on), and the summary and priority score follow README's table. */
#include "report/report.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

static int same_facts(const imt__rfacts *a, const imt__rfacts *b)
{
    if (a->type != b->type || a->status != b->status || a->scan_error != b->scan_error ||
        a->have_mtime != b->have_mtime || a->read != b->read ||
        a->read_bytes != b->read_bytes || a->has_pdq != b->has_pdq ||
        a->known_good != b->known_good || a->low_quality != b->low_quality ||
        a->n_matches != b->n_matches || a->has_sha1 != b->has_sha1 ||
        (a->has_sha1 && memcmp(a->sha1, b->sha1, 20)))
        return 0;
    if (a->have_mtime && (a->mtime_s != b->mtime_s || a->mtime_ns != b->mtime_ns)) return 0;
    for (size_t i = 0; i < a->n_matches; i++) {
        const imt_scan_match *x = &a->matches[i], *y = &b->matches[i];
        if (x->kind != y->kind || x->distance != y->distance ||
            (x->kind == IMT_KIND_PDQ && x->variant != y->variant) || x->entry != y->entry ||
            x->list_id != y->list_id || x->category != y->category ||
            x->known_good != y->known_good || x->disposition != y->disposition ||
            strcmp(x->list, y->list) || strcmp(x->list_version, y->list_version) ||
            strcmp(x->scheme, y->scheme) || strcmp(x->category_label, y->category_label) ||
            strcmp(x->external_id, y->external_id))
            return 0;
    }
    return 1;
}

/* Write rec through the public writer, read its facts back, compare. */
static void round_trip(const char *what, const imt_scan_record *rec)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    imt_report *r = NULL;
    REQUIRE(imt_report_create(&r, f, NULL) == IMT_OK);
    REQUIRE(imt_report_begin(r, NULL, NULL, 0, NULL) == IMT_OK);
    CHECK(imt_report_record(r, rec) == 0);
    imt_report_free(r);
    fclose(f);
    const char *line = strstr(text, "\n{\"record\":\"file\"");
    REQUIRE(line);
    yajl_val v = yajl_tree_parse(line + 1, NULL, 0);
    CHECKF(v != NULL, "%s: line does not parse", what);
    imt__rfacts want, got;
    imt_scan_match *ms = NULL;
    imt__facts_from_record(rec, &want);
    CHECKF(v && imt__facts_from_json(v, &got, &ms) == IMT_OK && same_facts(&want, &got),
           "%s: facts differ after the round trip: %s", what, line + 1);
    imt__free(ms);
    yajl_tree_free(v);
    /* The whole record read back (imgtriage report) writes the same line. */
    const char *end = strchr(line + 1, '\n');
    REQUIRE(end);
    v = yajl_tree_parse(line + 1, NULL, 0);
    imt__jrecord jr;
    imt__buf b = {0};
    CHECKF(v && imt__record_from_json(v, &jr) == IMT_OK, "%s: the record is not read back", what);
    if (v && jr.rec.path) imt__put_record_json(&b, &jr.rec);
    CHECKF(b.len == (size_t)(end - line) && !memcmp(b.p, line + 1, b.len),
           "%s: re-emitted\n%s\ndiffers from\n%.*s", what, b.p ? b.p : "", (int)(end - line),
           line + 1);
    imt__buf_free(&b);
    imt__jrecord_clear(&jr);
    yajl_tree_free(v);
    free(text);
}

static void test_round_trip(void)
{
    imt_hash_result h;
    memset(&h, 0, sizeof h);
    h.format = IMT_FMT_JPEG;
    h.file_size = 12345;
    h.width = 64;
    h.height = 48;
    h.has_pdq = 1;
    h.n_pdq = 1;
    h.quality = 30;
    h.digests = IMT_DIGEST_MD5;
    imt_scan_match m[3];
    memset(m, 0, sizeof m);
    m[0] = (imt_scan_match){IMT_KIND_PDQ, 7, IMT_DIH_ROTATE90, 42, 3, "same name", "v1", "projectvic",
                            0, 1, "Category 1", "ext-\xff-id", IMT_DISP_ALERT, -1, 0, 0, 0, NULL, 0};
    m[1] = (imt_scan_match){IMT_KIND_MD5, 0, IMT_DIH_ORIGINAL, 9, 4, "same name", "", "caid",
                            0, -1, "", "", IMT_DISP_INFO, -1, 0, 0, 0, NULL, 0};
    m[2] = (imt_scan_match){IMT_KIND_SHA1, 0, IMT_DIH_ORIGINAL, 11, 5, "nsrl", "2024.03", "custom",
                            1, -1, "", "", IMT_DISP_IGNORE, -1, 0, 0, 0, NULL, 0};
    imt_scan_record rec;
    memset(&rec, 0, sizeof rec);
    rec.path = "dir/low-quality.jpg";
    rec.type = IMT_ENTRY_FILE;
    rec.have_stat = 1;
    rec.size = 12345;
    rec.mtime_s = 1700000000;
    rec.mtime_ns = 123456789;
    rec.hash = &h;
    rec.pdq_low_quality = 1;
    rec.detail = "";
    round_trip("low quality, no match", &rec);
    /* every member record.c writes, at once */
    rec.detail = "libjpeg: Premature end of JPEG file; \x01 not UTF-8: \xfe";
    rec.status = IMT_E_TRUNCATED;
    rec.ctime_s = -5;
    rec.ctime_ns = 7;
    rec.mode = 0100640;
    rec.uid = 1000;
    rec.gid = 44;
    rec.inode = 1234567890123ull;
    rec.nlink = 2;
    rec.seq = 99;
    h.partial = 1;
    h.changed = 1;
    h.digests = IMT_DIGEST_MD5 | IMT_DIGEST_SHA1 | IMT_DIGEST_SHA256;
    for (int i = 0; i < 32; i++) h.sha256[i] = (uint8_t)(i * 7), h.md5[i % 16] = (uint8_t)i,
                                 h.sha1[i % 20] = (uint8_t)(255 - i);
    rec.matches = m;
    rec.n_matches = 3;
    rec.matches_omitted = 5;
    round_trip("every member: partial, changed, three digests, omitted matches", &rec);
    rec.type = IMT_ENTRY_HARDLINK;
    rec.hash = NULL;
    rec.hardlink_of = "dir/first name";
    rec.n_matches = 0;
    rec.matches_omitted = 0;
    round_trip("hard link", &rec);
    rec.type = IMT_ENTRY_SYMLINK;
    rec.hardlink_of = NULL;
    rec.link_target = "../\xff target";
    rec.status = IMT_OK;
    rec.detail = "";
    round_trip("symbolic link", &rec);
    rec.link_target = NULL;
    rec.hash = &h;
    h.partial = h.changed = 0;
    h.digests = IMT_DIGEST_MD5;
    rec.type = IMT_ENTRY_FILE;
    rec.seq = 0;
    rec.ctime_s = rec.mtime_s;
    rec.ctime_ns = rec.mtime_ns;
    rec.pdq_low_quality = 0;
    h.quality = 90;
    rec.matches = m;
    rec.n_matches = 2;
    round_trip("two matches, shared list name, an external id", &rec);
    rec.known_good = 1;
    rec.matches = m + 2;
    rec.n_matches = 1;
    h.has_pdq = 0;
    round_trip("known-good", &rec);
    memset(&rec, 0, sizeof rec);
    rec.path = "/missing";
    rec.type = IMT_ENTRY_UNKNOWN;
    rec.status = IMT_E_NOT_FOUND;
    rec.scan_error = 1;
    rec.detail = "cannot stat the path: No such file or directory";
    round_trip("scan error", &rec);
    rec.scan_error = 0;
    rec.type = IMT_ENTRY_DIR;
    rec.status = IMT_E_IO;
    round_trip("unreadable folder", &rec);
}

static imt__rfacts file_facts(const imt_scan_match *m, size_t n)
{
    imt__rfacts f;
    memset(&f, 0, sizeof f);
    f.type = IMT_ENTRY_FILE;
    f.read = 1;
    f.read_bytes = 100;
    f.has_pdq = 1;
    f.matches = m;
    f.n_matches = n;
    return f;
}

/* README: Project VIC 1 -> 10, 2 -> 5, 3 -> 2, 0 -> 0, other 1; CAID 1 -> 10,
 * 2 -> 7, 3 -> 4, other 1; other schemes 1; priority = sum over distinct
 * alerting items of their highest weight + files with hits / files read. */
static void test_priority(void)
{
    CHECK(imt__severity("projectvic", 1) == 10 && imt__severity("projectvic", 2) == 5 &&
          imt__severity("projectvic", 3) == 2 && imt__severity("projectvic", 0) == 0 &&
          imt__severity("projectvic", 9) == 1 && imt__severity("caid", 1) == 10 &&
          imt__severity("caid", 2) == 7 && imt__severity("caid", 3) == 4 &&
          imt__severity("caid", -1) == 1 && imt__severity("custom", 1) == 1);
    imt_scan_match a[2], b[1], c[1];
    memset(a, 0, sizeof a);
    /* File 1: entry 1 on a VIC list (cat 2) and a CAID list (cat 2): weight 7. */
    a[0] = (imt_scan_match){IMT_KIND_PDQ, 3, IMT_DIH_ORIGINAL, 1, 1, "L", "", "projectvic", 0,
                            2, "", "", IMT_DISP_ALERT, -1, 0, 0, 0, NULL, 0};
    a[1] = (imt_scan_match){IMT_KIND_PDQ, 3, IMT_DIH_ORIGINAL, 1, 2, "L", "", "caid", 0, 2,
                            "", "", IMT_DISP_ALERT, -1, 0, 0, 0, NULL, 0};
    /* File 2: entry 1 again (not a new item) and nothing else. */
    b[0] = a[0];
    /* File 3: only an informational match: not a hit. */
    c[0] = (imt_scan_match){IMT_KIND_MD5, 0, IMT_DIH_ORIGINAL, 5, 3, "info", "", "custom", 0,
                            -1, "", "", IMT_DISP_INFO, -1, 0, 0, 0, NULL, 0};
    imt__summary s;
    memset(&s, 0, sizeof s);
    imt__rfacts f1 = file_facts(a, 2), f2 = file_facts(b, 1), f3 = file_facts(c, 1),
                f4 = file_facts(NULL, 0);
    CHECK(imt__summary_add(&s, &f1, "\"a\"", 1.5) == IMT_OK);
    CHECK(imt__summary_add(&s, &f2, "\"b\"", 2.0) == IMT_OK);
    CHECK(imt__summary_add(&s, &f3, "\"c\"", 2.5) == IMT_OK);
    CHECK(imt__summary_add(&s, &f4, "\"d\"", 3.0) == IMT_OK);
    CHECK(s.files == 4 && s.hit_files == 2 && s.n_items == 1);
    CHECK(s.first_hit && !strcmp(s.first_hit, "\"a\"") && s.first_hit_after == 1.5);
    imt__buf b1 = {0};
    double p = imt__priority(&s, &b1);
    /* Two seized items with hits (the files carry no digest, so each is its
     * own): file 1 weighs 7 (its most severe category), file 2 weighs 5. */
    CHECKF(p == 12.5, "%f", p);
    CHECKF(b1.p && !strcmp(b1.p, "priority 12.500 = 12 (sum over 2 distinct seized items with "
                                 "hits of the severity weight of the most severe category each "
                                 "matched: 1 x 7 + 1 x 5) + 0.500 (hit density: 2 files with "
                                 "hits / 4 files read); 1 distinct known items matched"),
           "%s", b1.p ? b1.p : "");
    /* Lists 1 and 2 share the name "L": two rows, by id. */
    imt__summary_sort(&s);
    CHECK(s.n_cats == 3 && s.cats[0].list_id == 1 && s.cats[0].files == 2 &&
          s.cats[1].list_id == 2 && s.cats[1].files == 1 && s.cats[2].list_id == 3);
    imt__buf_free(&b1);
    imt__summary_free(&s);
}

static imt_scan_match caid_match(uint64_t entry, uint32_t list, int32_t cat)
{
    return (imt_scan_match){.kind = IMT_KIND_PDQ, .distance = 4, .variant = IMT_DIH_ORIGINAL,
                            .entry = entry, .list_id = list, .list = "L", .list_version = "",
                            .scheme = "caid", .category = cat, .category_label = "",
                            .external_id = "", .disposition = IMT_DISP_ALERT, .subitem = -1};
}

static double priority_of(const imt__summary *s)
{
    imt__buf b = {0};
    double p = imt__priority(s, &b);
    imt__buf_free(&b);
    return p;
}

/* Issue 16: the priority counts what was found on the device, not the shape
 * of the lists. Expected values worked by hand from README's formula
 * (S = sum over distinct seized contents with hits of the weight of the
 * most severe category each matched; D = files with hits / files read). */
static void test_priority_not_gamed(void)
{
    enum { NEAR = 150, COPIES = 40 };
    static imt_scan_match m[NEAR];
    imt__summary s;
    /* One picture matching 11 near-duplicate entries of one CAID A list,
     * beside one clean file: 1 item x 10 + 1/2 = 10.5 (it was 110.5). */
    for (uint64_t i = 0; i < NEAR; i++) m[i] = caid_match(1000 + i, 1, 1);
    memset(&s, 0, sizeof s);
    imt__rfacts f = file_facts(m, 11), clean = file_facts(NULL, 0);
    f.has_sha1 = 1;
    memset(f.sha1, 0xab, 20);
    CHECK(imt__summary_add(&s, &f, "\"x\"", 1) == IMT_OK);
    CHECK(imt__summary_add(&s, &clean, "\"y\"", 1) == IMT_OK);
    CHECKF(priority_of(&s) == 10.5, "11 near-duplicates: %f", priority_of(&s));
    CHECK(s.n_items == 11 && s.n_seized == 1);
    imt__summary_free(&s);
    /* 150 near-duplicates: the same 10.5, whatever max_matches kept. */
    memset(&s, 0, sizeof s);
    f.n_matches = NEAR;
    CHECK(imt__summary_add(&s, &f, "\"x\"", 1) == IMT_OK);
    CHECK(imt__summary_add(&s, &clean, "\"y\"", 1) == IMT_OK);
    CHECKF(priority_of(&s) == 10.5, "150 near-duplicates: %f", priority_of(&s));
    CHECK(s.n_items == NEAR);
    imt__summary_free(&s);
    /* The most severe category decides, wherever it sits among the
     * matches: C (4) entries, then one A (10) on another list: 10 + 1/1. */
    for (uint64_t i = 0; i < 5; i++) m[i] = caid_match(2000 + i, 2, 3);
    m[5] = caid_match(3000, 3, 1);
    memset(&s, 0, sizeof s);
    f.n_matches = 6;
    CHECK(imt__summary_add(&s, &f, "\"x\"", 1) == IMT_OK);
    CHECKF(priority_of(&s) == 11.0, "mixed categories: %f", priority_of(&s));
    imt__summary_free(&s);
    /* A device of 40 byte-identical copies of one category B picture and 10
     * clean files: one item, 7 + 40/50 = 7.8; an altered copy (another
     * content) of the same picture is a second item: 14 + 41/51. */
    m[0] = caid_match(4000, 1, 2);
    memset(&s, 0, sizeof s);
    f.n_matches = 1;
    for (int i = 0; i < COPIES; i++) CHECK(imt__summary_add(&s, &f, "\"c\"", 1) == IMT_OK);
    for (int i = 0; i < 10; i++) CHECK(imt__summary_add(&s, &clean, "\"n\"", 1) == IMT_OK);
    CHECKF(priority_of(&s) == 7.8, "copies: %f", priority_of(&s));
    CHECK(s.hit_files == COPIES && s.n_seized == 1 && s.n_items == 1);
    imt__rfacts g = f;
    g.sha1[19] ^= 1;
    CHECK(imt__summary_add(&s, &g, "\"d\"", 1) == IMT_OK);
    CHECKF(priority_of(&s) == 14.0 + 41.0 / 51.0, "altered copy: %f", priority_of(&s));
    CHECK(s.n_seized == 2 && s.n_items == 1);
    imt__summary_free(&s);
    /* Many distinct pictures each matching one entry still add up: 3 x 10. */
    memset(&s, 0, sizeof s);
    for (int i = 0; i < 3; i++) {
        imt__rfacts h = file_facts(&m[10 + i], 1);
        m[10 + i] = caid_match(5000 + (uint64_t)i, 1, 1);
        h.has_sha1 = 1;
        memset(h.sha1, i + 1, 20);
        CHECK(imt__summary_add(&s, &h, "\"p\"", 1) == IMT_OK);
    }
    CHECKF(priority_of(&s) == 31.0, "distinct pictures: %f", priority_of(&s));
    imt__summary_free(&s);
}

int main(void)
{
    test_round_trip();
    test_priority();
    test_priority_not_gamed();
    return tu_done("test_report");
}
