/* tests/test_index_shared.c -- issue 11: duplicates inside one list. Two
 * media that share a PDQ hash but not an MD5 (a re-encoded copy, an MPF
 * picture and its cropped twin) are normal in Project VIC lists. They must
 * import as two entries with the same PDQ hash (imt_import_stats.pdq_shared),
 * in the same list and across lists, with no digest dropped: before, the
 * same list was refused whole ("holds a hash of an earlier record ... and a
 * hash that record lacks") and a second list's MD5 was silently not indexed.
 * A true repeat (every hash the same) stays one membership. The expected
 * answers are the media the test wrote; verify checks the structures, and
 * an export re-imported into a fresh index answers the same. */
#include "testutil.h"

#include <imgtriage.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmp[300];

/* hex of n bytes, every byte b */
static void fillhex(char *out, size_t n, unsigned b)
{
    for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", (b + 7 * (unsigned)i) & 255);
}

static void unhex(const char *h, uint8_t *d, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(h + 2 * i, "%2x", &v);
        d[i] = (uint8_t)v;
    }
}

typedef struct media {
    int id, cat;
    char md5[33], pdq[65];
} media;

static void write_vics(const char *path, const media *m, size_t n)
{
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    fprintf(f, "{\"@odata.context\":\"http://x/2.0.xml/Default/$metadata#Media\",\"value\":[");
    for (size_t i = 0; i < n; i++)
        fprintf(f,
                "%s{\"MediaID\":%d,\"Category\":%d,\"MD5\":\"%s\",\"AlternativeHashes\":"
                "[{\"HashName\":\"PDQ\",\"HashValue\":\"%s\"}]}",
                i ? "," : "", m[i].id, m[i].cat, m[i].md5, m[i].pdq);
    fprintf(f, "]}\n");
    fclose(f);
}

/* The MD5 of m must be found: one entry, one membership (list, MediaID). */
static void expect_md5(imt_cursor *c, const media *m, uint32_t list, const char *what)
{
    uint8_t d[16];
    unhex(m->md5, d, 16);
    const imt_match *r;
    size_t n;
    imt_err e = imt_query_digest(c, IMT_KIND_MD5, d, &r, &n);
    CHECKF(e == IMT_OK && n == 1, "%s: MD5 of media %d: %zu matches (%s), want 1", what, m->id, n,
           imt_strerror(e));
    if (e || n != 1) return;
    char ext[16];
    snprintf(ext, sizeof ext, "%d", m->id);
    CHECKF(r[0].n_members == 1 && r[0].members[0].list_id == list &&
               !strcmp(r[0].members[0].external_id, ext) && r[0].members[0].category == m->cat,
           "%s: MD5 of media %d: %zu memberships, the first list %u id '%s' category %d; want list %u "
           "id '%s' category %d",
           what, m->id, r[0].n_members, r[0].n_members ? (unsigned)r[0].members[0].list_id : 0u,
           r[0].n_members ? r[0].members[0].external_id : "",
           r[0].n_members ? (int)r[0].members[0].category : 0, (unsigned)list, ext, m->cat);
    CHECKF(r[0].kind == IMT_KIND_MD5, "%s: media %d matched as kind %d", what, m->id, (int)r[0].kind);
}

/* The PDQ hash hex must match exactly want entries at distance 0, whose
 * external ids are ids[] (any order). */
static void expect_pdq(imt_cursor *c, const char *hex, size_t want, const char *const *ids, const char *what)
{
    imt_pdq q;
    unhex(hex, q.bytes, 32);
    const imt_match *r;
    size_t n;
    imt_err e = imt_query_pdq(c, &q, 1, 0, &r, &n);
    CHECKF(e == IMT_OK && n == want, "%s: PDQ %.8s...: %zu matches (%s), want %zu", what, hex, n,
           imt_strerror(e), want);
    if (e || n != want) return;
    for (size_t k = 0; k < want; k++) {
        int seen = 0;
        for (size_t j = 0; j < n; j++)
            if (r[j].n_members == 1 && !strcmp(r[j].members[0].external_id, ids[k]) && r[j].distance == 0)
                seen = 1;
        CHECKF(seen, "%s: PDQ %.8s...: no match of media %s", what, hex, ids[k]);
    }
    CHECKF(n < 2 || r[0].entry != r[1].entry, "%s: one entry reported twice", what);
}

static void check_all(imt_index *idx, const media *a, const media *b, const char *what)
{
    imt_cursor *c = NULL;
    REQUIRE(imt_cursor_open(&c, idx) == IMT_OK);
    expect_md5(c, &a[0], 1, what);
    expect_md5(c, &a[1], 1, what);
    expect_md5(c, &a[2], 1, what);
    expect_md5(c, &b[0], 2, what);
    static const char *const p_ids[] = {"1", "2"}, *const q_ids[] = {"3", "9"};
    expect_pdq(c, a[0].pdq, 2, p_ids, what);
    expect_pdq(c, a[2].pdq, 2, q_ids, what);
    imt_cursor_close(c);
    CHECKF(imt_index_verify(idx) == IMT_OK, "%s: verify: %s", what, imt_index_last_error(idx));
}

int main(void)
{
    char dir[400], dir2[400], la[400], lb[400], lx[400];
    snprintf(tmp, sizeof tmp, "%s/imt_shared_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    REQUIRE(mkdtemp(tmp));
    snprintf(dir, sizeof dir, "%s/idx", tmp);
    snprintf(dir2, sizeof dir2, "%s/idx2", tmp);
    snprintf(la, sizeof la, "%s/a.json", tmp);
    snprintf(lb, sizeof lb, "%s/b.json", tmp);
    snprintf(lx, sizeof lx, "%s/x.jsonl", tmp);

    /* list 1: media 1 and 2 share PDQ P with other MD5s; media 3 has PDQ
     * Q; media 4 repeats media 1 exactly (one membership, counted).
     * list 2: media 9 shares Q with media 3, another MD5. */
    media a[4] = {{1, 1, "", ""}, {2, 1, "", ""}, {3, 2, "", ""}, {4, 1, "", ""}}, b[1] = {{9, 3, "", ""}};
    fillhex(a[0].md5, 16, 0x11);
    fillhex(a[1].md5, 16, 0x22);
    fillhex(a[2].md5, 16, 0x33);
    fillhex(b[0].md5, 16, 0x44);
    fillhex(a[0].pdq, 32, 0x50);
    memcpy(a[1].pdq, a[0].pdq, sizeof a[0].pdq);
    fillhex(a[2].pdq, 32, 0xA0);
    memcpy(b[0].pdq, a[2].pdq, sizeof a[2].pdq);
    a[3] = a[0];
    a[3].id = 1; /* a repeat: the same MediaID, hashes and category */
    write_vics(la, a, 4);
    write_vics(lb, b, 1);

    imt_index *idx = tu_index_rw(dir, 1);
    REQUIRE(idx);
    imt_import_opts io;
    imt_import_opts_init(&io);
    imt_import_stats st;
    imt_err e = imt_index_import(idx, la, &io, &st);
    CHECKF(e == IMT_OK, "list 1 refused: %s (%s)", imt_index_last_error(idx), imt_err_name(e));
    if (e == IMT_OK)
        CHECKF(st.records == 4 && st.new_entries == 3 && st.duplicates == 1 && st.pdq_shared == 1 &&
                   st.bad == 0,
               "list 1: %llu records, %llu new entries, %llu repeats, %llu sharing a PDQ, %llu bad; "
               "want 4, 3, 1, 1, 0",
               (unsigned long long)st.records, (unsigned long long)st.new_entries,
               (unsigned long long)st.duplicates, (unsigned long long)st.pdq_shared,
               (unsigned long long)st.bad);
    e = imt_index_import(idx, lb, &io, &st);
    CHECKF(e == IMT_OK, "list 2 refused: %s (%s)", imt_index_last_error(idx), imt_err_name(e));
    if (e == IMT_OK)
        CHECKF(st.records == 1 && st.new_entries == 1 && st.pdq_shared == 1 && st.merged == 0,
               "list 2: %llu records, %llu new entries, %llu sharing a PDQ, %llu merged; want 1, 1, 1, 0",
               (unsigned long long)st.records, (unsigned long long)st.new_entries,
               (unsigned long long)st.pdq_shared, (unsigned long long)st.merged);
    imt_index_stats is;
    imt_index_stats_get(idx, &is);
    CHECKF(is.entries == 4, "%llu entries, want 4", (unsigned long long)is.entries);
    check_all(idx, a, b, "imported");

    /* the export re-imports into a fresh index with the same answers */
    int fd = open(lx, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    REQUIRE(fd >= 0);
    imt_export_opts xo;
    imt_export_opts_init(&xo);
    CHECKF(imt_index_export(idx, fd, &xo) == IMT_OK, "export: %s", imt_index_last_error(idx));
    close(fd);
    imt_index_close(idx);
    imt_index *i2 = tu_index_rw(dir2, 1);
    REQUIRE(i2);
    e = imt_index_import(i2, lx, &io, &st);
    CHECKF(e == IMT_OK, "the export refused: %s (%s)", imt_index_last_error(i2), imt_err_name(e));
    if (e == IMT_OK) {
        imt_index_stats_get(i2, &is);
        CHECKF(is.entries == 4, "re-imported: %llu entries, want 4", (unsigned long long)is.entries);
        check_all(i2, a, b, "re-imported");
    }
    imt_index_close(i2);

    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    return tu_done("test_index_shared");
}
