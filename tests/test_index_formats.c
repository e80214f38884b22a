/* tests/test_index_formats.c -- every list format imports from its sample
 * in tests/data/index, round-trips through export, and every malformed
 * variant in tests/data/index/bad fails with its named error at its
 * file:line, leaving the index as it was (or, with skip_bad, imports the
 * rest). NSRL databases are made here from tests/data/index/nsrl.sql. */
#include "imgtriage.h"
#include "testutil.h"

#include <fcntl.h>
#include <lmdb.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp[300];
static int seq;

static const char *data(const char *rel)
{
    static char b[4][600];
    static int k;
    char *p = b[k++ & 3];
    snprintf(p, 600, "%s/tests/data/index/%s", IMT_SOURCE_DIR, rel);
    return p;
}

static imt_index *fresh(void)
{
    char dir[400];
    snprintf(dir, sizeof dir, "%s/idx%d", tmp, seq++);
    imt_index_opts o;
    imt_index_opts_init(&o);
    o.read_only = 0;
    o.create = 1;
    imt_index *idx = NULL;
    REQUIRE(imt_index_open(&idx, dir, &o) == IMT_OK);
    return idx;
}

static char *slurp(const char *path, size_t *n)
{
    char *p = (char *)tu_read_file(path, n);
    REQUIRE(p);
    p = realloc(p, *n + 1);
    p[*n] = 0;
    return p;
}

static void export_to(imt_index *idx, const char *fmt, int64_t list, const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    REQUIRE(fd >= 0);
    imt_export_opts eo;
    imt_export_opts_init(&eo);
    eo.format = fmt;
    eo.list_id = list;
    imt_err e = imt_index_export(idx, fd, &eo);
    CHECKF(e == IMT_OK, "export %s: %s", fmt, imt_index_last_error(idx));
    close(fd);
}

/* Text without its first line (the export header names the index). */
static const char *body(const char *s)
{
    const char *nl = strchr(s, '\n');
    return nl ? nl + 1 : s;
}

/* Text without '#' comment lines. */
static void strip_comments(char *s)
{
    char *w = s;
    for (char *r = s; *r;) {
        char *nl = strchr(r, '\n');
        size_t len = nl ? (size_t)(nl - r) + 1 : strlen(r);
        if (*r != '#') {
            memmove(w, r, len);
            w += len;
        }
        r += len;
    }
    *w = 0;
}

static void make_nsrl(const char *db)
{
    size_t n;
    char *sql = slurp(data("nsrl.sql"), &n);
    unlink(db);
    sqlite3 *h;
    REQUIRE(sqlite3_open(db, &h) == SQLITE_OK);
    char *msg = NULL;
    int rc = sqlite3_exec(h, sql, NULL, NULL, &msg);
    CHECKF(rc == SQLITE_OK, "nsrl.sql: %s", msg ? msg : "?");
    sqlite3_free(msg);
    sqlite3_close(h);
    free(sql);
}

typedef struct good {
    const char *file, *format, *want_format, *native;
    uint64_t records;
    int known_good;
} good;

static const good goods[] = {
    {"pdq.csv", NULL, "pdq-csv", "pdq-csv", 5, 0},
    {"te.txt", NULL, "te", "te", 4, 0},
    {"md5sum.txt", NULL, "md5sum", "md5sum", 5, 0},
    {"sha1sum.txt", NULL, "sha1sum", "sha1sum", 4, 0},
    {"sha256sum.txt", NULL, "sha256sum", "sha256sum", 3, 0},
    {"hashdeep.txt", NULL, "hashdeep", NULL, 4, 0},
    {"md5.hex", NULL, "md5-hex", "md5-hex", 3, 0},
    {"md5.hex", "hex", "md5-hex", "md5-hex", 3, 0},
    {"pdq.hex", "pdq-hex", "pdq-hex", "pdq-hex", 3, 0},
    {"bad/pdq_tab.txt", "pdq-csv", "pdq-csv", NULL, 3, 0},
    {"vics1.json", NULL, "vics-1", NULL, 3, 0},
    {"vics2.json", NULL, "vics-2", NULL, 4, 0},
    {"vics_bom.json", NULL, "vics-2", NULL, 4, 0}, /* a UTF-8 byte order mark */
    {"@nsrl", NULL, "nsrl-rdsv3", NULL, 5, 1},
};

static void good_formats(void)
{
    char nsrl[400], e1[400], e2[400];
    snprintf(nsrl, sizeof nsrl, "%s/nsrl.db", tmp);
    make_nsrl(nsrl);
    for (size_t i = 0; i < sizeof goods / sizeof goods[0]; i++) {
        const good *g = &goods[i];
        const char *path = g->file[0] == '@' ? nsrl : data(g->file);
        imt_index *a = fresh(), *b = fresh();
        imt_import_opts io;
        imt_import_opts_init(&io);
        io.format = g->format;
        imt_import_stats st;
        imt_err e = imt_index_import(a, path, &io, &st);
        CHECKF(e == IMT_OK, "%s: %s", g->file, imt_index_last_error(a));
        CHECKF(st.records == g->records && !strcmp(st.format, g->want_format),
               "%s: %llu records as %s", g->file, (unsigned long long)st.records, st.format);
        imt_list_info li;
        REQUIRE(imt_index_list_get(a, 0, &li) == IMT_OK);
        CHECKF(li.known_good == g->known_good && li.entries == g->records, "%s: list info", g->file);
        CHECK(imt_index_verify(a) == IMT_OK);
        /* jsonl round trip: A -> E1 -> B -> E2, E1 == E2 */
        snprintf(e1, sizeof e1, "%s/e1.jsonl", tmp);
        snprintf(e2, sizeof e2, "%s/e2.jsonl", tmp);
        export_to(a, "jsonl", 1, e1);
        imt_import_opts_init(&io);
        e = imt_index_import(b, e1, &io, &st);
        CHECKF(e == IMT_OK && st.records == g->records && !strcmp(st.format, "jsonl"),
               "%s: re-import of the export: %s", g->file, imt_index_last_error(b));
        export_to(b, "jsonl", 1, e2);
        size_t n1, n2;
        char *t1 = slurp(e1, &n1), *t2 = slurp(e2, &n2);
        CHECKF(strcmp(body(t1), body(t2)) == 0, "%s: jsonl round trip differs:\n%s---\n%s",
               g->file, t1, t2);
        free(t1);
        free(t2);
        /* the list's own format gives the sample back */
        if (g->native) {
            export_to(a, g->native, -1, e1);
            size_t no, ne;
            char *orig = slurp(path, &no), *exp = slurp(e1, &ne);
            strip_comments(orig);
            CHECKF(strcmp(orig, exp) == 0, "%s: %s export differs:\n%s---\n%s", g->file,
                   g->native, orig, exp);
            free(orig);
            free(exp);
        }
        imt_index_close(a);
        imt_index_close(b);
    }
}

/* What the samples hold, read back through queries. */
static void contents(void)
{
    char nsrl[400];
    snprintf(nsrl, sizeof nsrl, "%s/nsrl.db", tmp);
    imt_index *idx = fresh();
    imt_import_opts io;
    imt_import_opts_init(&io);
    imt_import_stats st;
    CHECK(imt_index_import(idx, data("vics1.json"), &io, &st) == IMT_OK);
    io.scheme = "caid";
    CHECK(imt_index_import(idx, data("vics2.json"), &io, &st) == IMT_OK);
    CHECK(st.merged == 1 && st.new_entries == 3);
    imt_import_opts_init(&io);
    CHECK(imt_index_import(idx, nsrl, &io, &st) == IMT_OK);
    CHECK(st.records == 5);
    imt_index_close(idx);
    /* reopen read-only: the inventory */
    char dir[400];
    snprintf(dir, sizeof dir, "%s/idx%d", tmp, seq - 1);
    REQUIRE(imt_index_open(&idx, dir, NULL) == IMT_OK);
    CHECK(imt_index_list_count(idx) == 3);
    imt_list_info li;
    imt_index_list_get(idx, 0, &li);
    CHECK(!strcmp(li.scheme, "projectvic") && !strcmp(li.format, "vics-1") && !li.known_good &&
          !strcmp(li.name, "vics1.json"));
    imt_index_list_get(idx, 1, &li);
    CHECK(!strcmp(li.scheme, "caid") && !strcmp(li.format, "vics-2"));
    imt_index_list_get(idx, 2, &li);
    CHECK(li.known_good && !strcmp(li.version, "2024.03.1") && !strcmp(li.format, "nsrl-rdsv3"));
    imt_cursor *c;
    REQUIRE(imt_cursor_open(&c, idx) == IMT_OK);
    const imt_match *m;
    size_t n;
    /* md5("sample-1") is in both VICS lists: one entry, two memberships */
    uint8_t d[32];
    static const char md5_1[] = "9a79e2fee965907e2b9df462c0d65c0b";
    for (int i = 0; i < 16; i++) {
        unsigned v;
        sscanf(md5_1 + 2 * i, "%2x", &v);
        d[i] = (uint8_t)v;
    }
    CHECK(imt_query_digest(c, IMT_KIND_MD5, d, &m, &n) == IMT_OK && n == 1);
    if (n == 1) {
        CHECK(m[0].n_members == 2);
        CHECK(m[0].members[0].list_id == 1 && m[0].members[0].category == 1 &&
              !strcmp(m[0].members[0].external_id, "1"));
        CHECK(m[0].members[1].list_id == 2 && m[0].members[1].category == 1 &&
              !strcmp(m[0].members[1].external_id, "10"));
    }
    /* the PDQ from AlternativeHashes, found at distance 0 and near */
    size_t pn;
    char *p = slurp(data("vics1.json"), &pn);
    static const char needle[] = "\"PDQ\", \"HashValue\": \"";
    char *at = strstr(p, needle);
    REQUIRE(at);
    imt_pdq q;
    REQUIRE(imt_pdq_from_hex(&q, at + sizeof needle - 1, 64) == IMT_OK);
    free(p);
    q.bytes[3] ^= 0x11;
    CHECK(imt_query_pdq(c, &q, 1, 31, &m, &n) == IMT_OK && n == 1 && n && m[0].distance == 2 &&
          m[0].members[0].category == 1);
    /* the category given as text keeps its label: vics2.json's MediaID 12,
     * "Category":"B", read as no numeric category with the label "B" (so
     * CAID's policy alerts on it: an ungraded item is never cleared) */
    static const char sha1_12[] = "13878e0d9761ea83aa9a7c9fed583d9865a9d165";
    for (int i = 0; i < 20; i++) {
        unsigned v;
        sscanf(sha1_12 + 2 * i, "%2x", &v);
        d[i] = (uint8_t)v;
    }
    CHECK(imt_query_digest(c, IMT_KIND_SHA1, d, &m, &n) == IMT_OK && n == 1);
    if (n == 1) {
        CHECK(m[0].n_members == 1 && m[0].members[0].list_id == 2 &&
              m[0].members[0].category == -1 && !strcmp(m[0].members[0].category_label, "B") &&
              !strcmp(m[0].members[0].external_id, "12") &&
              m[0].members[0].disposition == IMT_DISP_ALERT);
    }
    imt_cursor_close(c);
    CHECK(imt_index_verify(idx) == IMT_OK);
    imt_index_close(idx);
}

/* Category policies: each scheme's default, overrides, a bad policy, and an
 * index of format 2 (list records without a policy) read with the default
 * and upgraded to format 3 by its next import. */
static void policies(void)
{
    char nsrl[400], dir[400];
    snprintf(nsrl, sizeof nsrl, "%s/nsrl.db", tmp);
    imt_index *idx = fresh();
    snprintf(dir, sizeof dir, "%s/idx%d", tmp, seq - 1);
    imt_import_opts io;
    imt_import_stats st;
    struct { const char *file, *scheme, *policy; int good; const char *want; } c[] = {
        {"vics1.json", NULL, NULL, -1, "alert=none,1-2 info=3+ ignore=0"},
        {"vics2.json", "caid", NULL, -1, "alert=none,1-3 info=0,4+"},
        {"md5sum.txt", NULL, NULL, -1, "alert=none,0+"},
        {"@nsrl", NULL, NULL, -1, "ignore=none,0+"},
        {"sha1sum.txt", NULL, NULL, 1, "ignore=none,0+"},
        {"pdq.csv", NULL, "info=3-99 ignore=0 alert=7", -1, "alert=none,1-2,7,100+ info=3-6,8-99 ignore=0"},
        {"te.txt", "projectvic", "alert=* info=none", -1, "alert=0+ info=none"},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        imt_import_opts_init(&io);
        io.scheme = c[i].scheme;
        io.policy = c[i].policy;
        io.known_good = c[i].good;
        const char *path = c[i].file[0] == '@' ? nsrl : data(c[i].file);
        imt_err e = imt_index_import(idx, path, &io, &st);
        CHECKF(e == IMT_OK, "%s: %s", c[i].file, imt_index_last_error(idx));
        imt_list_info li;
        REQUIRE(imt_index_list_get(idx, i, &li) == IMT_OK);
        CHECKF(!strcmp(li.policy, c[i].want), "%s: policy '%s', want '%s'", c[i].file, li.policy,
               c[i].want);
    }
    /* a bad policy: refused, the index unchanged */
    static const char *const badp[] = {"alert=1-", "alert", "warn=1", "alert=x", "alert=2-1",
                                       "alert=1,", "alert=", "info=99999999999"};
    for (size_t i = 0; i < sizeof badp / sizeof badp[0]; i++) {
        imt_import_opts_init(&io);
        io.policy = badp[i];
        imt_err e = imt_index_import(idx, data("sha256sum.txt"), &io, &st);
        CHECKF(e == IMT_E_INVALID && strstr(imt_index_last_error(idx), "category policy"),
               "policy '%s': %s (%s)", badp[i], imt_err_name(e), imt_index_last_error(idx));
    }
    CHECK(imt_index_list_count(idx) == sizeof c / sizeof c[0]);
    imt_index_close(idx);

    /* format 2: rewrite the header's version and drop every list's policy */
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta, lists;
    REQUIRE(mdb_env_create(&env) == 0);
    mdb_env_set_maxdbs(env, 16);
    REQUIRE(mdb_env_open(env, dir, 0, 0644) == 0);
    REQUIRE(mdb_txn_begin(env, NULL, 0, &txn) == 0);
    REQUIRE(mdb_dbi_open(txn, "meta", 0, &meta) == 0 && mdb_dbi_open(txn, "lists", 0, &lists) == 0);
    MDB_val k = {6, (void *)"header"}, d;
    REQUIRE(mdb_get(txn, meta, &k, &d) == 0);
    unsigned char hdr[1024];
    REQUIRE(d.mv_size <= sizeof hdr);
    memcpy(hdr, d.mv_data, d.mv_size);
    uint32_t two = 2;
    memcpy(hdr + 8, &two, 4);
    d.mv_data = hdr;
    REQUIRE(mdb_put(txn, meta, &k, &d, 0) == 0);
    for (uint32_t id = 1; id <= sizeof c / sizeof c[0]; id++) {
        unsigned char key[4] = {0, 0, 0, (unsigned char)id}, rec[4096];
        MDB_val lk = {4, key};
        REQUIRE(mdb_get(txn, lists, &lk, &d) == 0 && d.mv_size <= sizeof rec);
        memcpy(rec, d.mv_data, d.mv_size);
        size_t n = d.mv_size - 1; /* drop the last string: the policy */
        while (n > 24 && rec[n - 1]) n--;
        MDB_val nd = {n, rec};
        REQUIRE(mdb_put(txn, lists, &lk, &nd, 0) == 0);
    }
    REQUIRE(mdb_txn_commit(txn) == 0);
    mdb_env_close(env);
    imt_err oe = imt_index_open(&idx, dir, NULL);
    CHECKF(oe == IMT_OK, "format 2: %s", imt_index_open_error());
    if (oe != IMT_OK) return;
    imt_index_stats is;
    imt_index_stats_get(idx, &is);
    CHECK(is.format_version == 2);
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        imt_list_info li;
        imt_index_list_get(idx, i, &li);
        const char *want = c[i].policy ? (i == 5 ? "alert=none,0+" : "alert=none,1-2 info=3+ ignore=0")
                                       : c[i].want;
        CHECKF(!strcmp(li.policy, want), "format 2, list %zu: policy '%s', want '%s'", i, li.policy, want);
    }
    CHECK(imt_index_verify(idx) == IMT_OK);
    imt_index_close(idx);
    imt_index_opts oo;
    imt_index_opts_init(&oo);
    oo.read_only = 0;
    REQUIRE(imt_index_open(&idx, dir, &oo) == IMT_OK);
    imt_import_opts_init(&io);
    CHECK(imt_index_import(idx, data("sha256sum.txt"), &io, &st) == IMT_OK);
    imt_index_stats_get(idx, &is);
    CHECK(is.format_version == 5); /* a write upgrades it to the current format */
    CHECK(imt_index_verify(idx) == IMT_OK);
    imt_index_close(idx);
}

/* Text without the export header's identity of the exported index. */
static void drop_identity(char *t)
{
    char *at = strstr(t, "\"index\":\"");
    REQUIRE(at && strlen(at) > 75 && at[73] == '"' && at[74] == ',');
    memmove(at, at + 75, strlen(at + 75) + 1);
}

/* The memberships of the entry holding MD5 hex in list `list` (one
 * expected): its category and external id. */
static int md5_member(imt_index *idx, const char *hex, uint32_t list, int32_t *cat, char *ext,
                      size_t cap)
{
    uint8_t d[16];
    for (int i = 0; i < 16; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        d[i] = (uint8_t)v;
    }
    imt_cursor *c = NULL;
    const imt_match *m = NULL;
    size_t n = 0;
    int found = 0;
    REQUIRE(imt_cursor_open(&c, idx) == IMT_OK);
    CHECK(imt_query_digest(c, IMT_KIND_MD5, d, &m, &n) == IMT_OK && n == 1);
    for (size_t i = 0; n == 1 && i < m[0].n_members; i++)
        if (m[0].members[i].list_id == list) {
            found++;
            *cat = m[0].members[i].category;
            snprintf(ext, cap, "%s", m[0].members[i].external_id);
        }
    imt_cursor_close(c);
    return found;
}

/* Issue 11: a record repeating an earlier record of the same list (same
 * hashes) is one membership, counted, not an error (it failed the whole
 * list with "duplicate"); conflicting categories keep the most severe by
 * the list's policy whatever the order; the earlier external id stays. */
static void in_list_duplicates(void)
{
    imt_index *idx = fresh();
    imt_import_opts io;
    imt_import_opts_init(&io);
    imt_import_stats st;
    int32_t cat = -9;
    char ext[64];
    CHECKF(imt_index_import(idx, data("dup/md5_dup.txt"), &io, &st) == IMT_OK, "md5_dup: %s",
           imt_index_last_error(idx));
    CHECK(st.records == 4 && st.new_entries == 3 && st.duplicates == 1 && st.conflicts == 0 &&
          st.bad == 0);
    CHECK(md5_member(idx, "415290769594460e2e485922904f345d", st.list_id, &cat, ext, sizeof ext) == 1 &&
          !strcmp(ext, "b"));
    CHECK(imt_index_import(idx, data("dup/pdq_dup.csv"), &io, &st) == IMT_OK);
    CHECK(st.records == 3 && st.new_entries == 2 && st.duplicates == 1);
    CHECK(imt_index_import(idx, data("dup/vics_dup.json"), &io, &st) == IMT_OK);
    CHECK(st.duplicates == 1 && st.conflicts == 0 && st.new_entries == 0 && st.merged == 2);
    CHECKF(imt_index_verify(idx) == IMT_OK, "verify: %s", imt_index_last_error(idx));
    imt_index_close(idx);
    /* conflicts: projectvic: 1-2 alert, 3 info, 0 ignore */
    const char *files[2] = {"dup/vics_conflict.json", "dup/vics_conflict_rev.json"};
    for (int f = 0; f < 2; f++) {
        idx = fresh();
        CHECKF(imt_index_import(idx, data(files[f]), &io, &st) == IMT_OK, "%s: %s", files[f],
               imt_index_last_error(idx));
        CHECK(st.records == 6 && st.new_entries == 3 && st.duplicates == 3 && st.conflicts == 2);
        CHECKF(strstr(st.conflict_example, files[f] + 4) && strstr(st.conflict_example, f ? ":7: " : ":5: "),
               "%s: conflict example '%s'", files[f], st.conflict_example);
        CHECK(md5_member(idx, "9dd4e461268c8034f5c8564e155c67a6", st.list_id, &cat, ext, sizeof ext) == 1 &&
              cat == 1 && !strcmp(ext, f ? "3" : "1"));
        CHECK(md5_member(idx, "415290769594460e2e485922904f345d", st.list_id, &cat, ext, sizeof ext) == 1 &&
              cat == 3 && !strcmp(ext, f ? "4" : "2"));
        CHECK(md5_member(idx, "fbade9e36a3f36d3d676c1b808451dd7", st.list_id, &cat, ext, sizeof ext) == 1 &&
              cat == 2);
        imt_list_info li;
        CHECK(imt_index_list_get(idx, 0, &li) == IMT_OK && li.entries == 3);
        CHECKF(imt_index_verify(idx) == IMT_OK, "verify: %s", imt_index_last_error(idx));
        imt_index_close(idx);
    }
}

/* export -> import into a fresh index -> export: byte for byte the same
 * (but the exporting index's identity), with the list inventory: names,
 * versions, schemes, policies, known-good flags, formats, file digests,
 * import times; non-UTF-8 names come back as bytes. */
static void roundtrip(void)
{
    char nsrl[400], odd[400], e1[400], e2[400], e3[400];
    snprintf(nsrl, sizeof nsrl, "%s/nsrl.db", tmp);
    snprintf(odd, sizeof odd, "%s/odd.md5", tmp);
    snprintf(e1, sizeof e1, "%s/rt1.jsonl", tmp);
    snprintf(e2, sizeof e2, "%s/rt2.jsonl", tmp);
    snprintf(e3, sizeof e3, "%s/rt3.jsonl", tmp);
    /* md5sum lines whose names hold an invalid UTF-8 byte, a control
     * byte, a quote, a backslash and a newline (GNU escaping) */
    static const char oddtxt[] =
        "00000000000000000000000000000001  bad\xff\xfe name\n"
        "00000000000000000000000000000002  ctl\x01\x7f \"q\"\n"
        "\\00000000000000000000000000000003  a\\\\b\\nc\n"
        "00000000000000000000000000000004  \xc3\xa9t\xc3\xa9\n";
    FILE *f = fopen(odd, "wb");
    REQUIRE(f);
    fputs(oddtxt, f);
    fclose(f);
    imt_index *a = fresh(), *b = fresh();
    imt_import_opts io;
    imt_import_stats st;
    struct { const char *file, *name, *version, *scheme, *policy; int good; int32_t cat; } l[] = {
        {"vics1.json", NULL, NULL, NULL, NULL, -1, -1},
        {"vics2.json", "CAID \"force\" list", "2024-1", "caid", "alert=4", -1, -1},
        {"@nsrl", NULL, NULL, NULL, NULL, -1, -1},
        {"md5sum.txt", "mine", "v1.2", NULL, NULL, 1, -1},
        {"@odd", "odd\xff names", NULL, "projectvic", NULL, -1, 5},
        {"pdq.csv", NULL, NULL, NULL, "info=*", -1, -1},
    };
    size_t nl = sizeof l / sizeof l[0];
    for (size_t i = 0; i < nl; i++) {
        imt_import_opts_init(&io);
        io.name = l[i].name;
        io.version = l[i].version;
        io.scheme = l[i].scheme;
        io.policy = l[i].policy;
        io.known_good = l[i].good;
        io.category = l[i].cat;
        io.import_time = 1700000000 + (int64_t)i;
        const char *path = !strcmp(l[i].file, "@nsrl") ? nsrl : !strcmp(l[i].file, "@odd") ? odd
                                                                                         : data(l[i].file);
        CHECKF(imt_index_import(a, path, &io, &st) == IMT_OK, "%s: %s", l[i].file,
               imt_index_last_error(a));
    }
    export_to(a, "jsonl", -1, e1);
    imt_import_opts_init(&io);
    imt_err e = imt_index_import(b, e1, &io, &st);
    CHECKF(e == IMT_OK && st.lists == nl && st.list_id == 1, "re-import: %s (%s)", imt_err_name(e),
           imt_index_last_error(b));
    export_to(b, "jsonl", -1, e2);
    size_t n1, n2;
    char *t1 = slurp(e1, &n1), *t2 = slurp(e2, &n2);
    drop_identity(t1);
    drop_identity(t2);
    CHECKF(strcmp(t1, t2) == 0, "whole-index export round trip differs:\n%s---\n%s", t1, t2);
    /* the inventories are equal field by field */
    REQUIRE(imt_index_list_count(b) == nl);
    for (size_t i = 0; i < nl; i++) {
        imt_list_info x, y;
        imt_index_list_get(a, i, &x);
        imt_index_list_get(b, i, &y);
        CHECKF(x.id == y.id && !strcmp(x.name, y.name) && !strcmp(x.version, y.version) &&
               !strcmp(x.format, y.format) && !strcmp(x.file_sha256, y.file_sha256) &&
               !strcmp(x.scheme, y.scheme) && x.import_time == y.import_time &&
               x.known_good == y.known_good && x.entries == y.entries && !strcmp(x.policy, y.policy),
               "list %zu: '%s' %s %s %s vs '%s' %s %s %s", i, x.name, x.format, x.scheme, x.policy,
               y.name, y.format, y.scheme, y.policy);
    }
    /* known-good stays known-good: an NSRL hash is ignored, not alerted */
    imt_cursor *c;
    REQUIRE(imt_cursor_open(&c, b) == IMT_OK);
    const imt_match *m;
    size_t n;
    uint8_t d[16];
    static const char md5_odd1[] = "00000000000000000000000000000001";
    memset(d, 0, sizeof d);
    d[15] = 1;
    (void)md5_odd1;
    CHECK(imt_query_digest(c, IMT_KIND_MD5, d, &m, &n) == IMT_OK && n == 1);
    if (n == 1) {
        CHECK(m[0].n_members == 1 && m[0].members[0].list_id == 5 &&
              !strcmp(m[0].members[0].external_id, "bad\xff\xfe name") &&
              m[0].members[0].category == 5 && m[0].members[0].disposition == IMT_DISP_INFO);
    }
    d[15] = 2;
    CHECK(imt_query_digest(c, IMT_KIND_MD5, d, &m, &n) == IMT_OK && n == 1 &&
          !strcmp(m[0].members[0].external_id, "ctl\x01\x7f \"q\""));
    d[15] = 3;
    CHECK(imt_query_digest(c, IMT_KIND_MD5, d, &m, &n) == IMT_OK && n == 1 &&
          !strcmp(m[0].members[0].external_id, "a\\b\nc"));
    /* the first NSRL row's SHA-1 (nsrl.sql) */
    imt_list_info g;
    imt_index_list_get(b, 2, &g);
    CHECK(g.known_good && !strcmp(g.format, "nsrl-rdsv3"));
    imt_index_list_get(b, 3, &g);
    CHECK(g.known_good && !strcmp(g.name, "mine") && !strcmp(g.policy, "ignore=none,0+"));
    imt_cursor_close(c);
    CHECK(imt_index_verify(b) == IMT_OK);
    free(t1);
    free(t2);
    /* one list's export: that list, its fields kept, in a fresh index */
    imt_index *cx = fresh();
    export_to(a, "jsonl", 2, e3);
    imt_import_opts_init(&io);
    CHECK(imt_index_import(cx, e3, &io, &st) == IMT_OK && st.lists == 1);
    imt_list_info x, y;
    imt_index_list_get(a, 1, &x);
    imt_index_list_get(cx, 0, &y);
    CHECK(!strcmp(x.name, y.name) && !strcmp(x.policy, y.policy) && !strcmp(x.scheme, "caid") &&
          !strcmp(y.scheme, "caid") && !strcmp(y.format, "vics-2") && y.entries == x.entries &&
          !strcmp(x.file_sha256, y.file_sha256));
    imt_index_close(cx);
    /* a whole-index export takes no per-list option */
    cx = fresh();
    imt_import_opts_init(&io);
    io.name = "x";
    e = imt_index_import(cx, e1, &io, &st);
    CHECKF(e == IMT_E_INVALID && imt_index_list_count(cx) == 0, "options on a whole export: %s",
           imt_err_name(e));
    imt_index_close(cx);
    imt_index_close(a);
    imt_index_close(b);
}

typedef struct bad {
    const char *file, *format;
    imt_err err;
    int line; /* the message starts "file:line: "; 0: no line */
} bad;

static const bad bads[] = {
    {"bad/pdq_short.csv", NULL, IMT_E_HASH_LENGTH, 2},
    {"bad/pdq_nonhex.csv", NULL, IMT_E_NOT_HEX, 3},
    {"bad/pdq_quality.csv", NULL, IMT_E_PARSE, 2},
    {"bad/empty.txt", NULL, IMT_E_EMPTY, 0},
    {"bad/blank.txt", NULL, IMT_E_EMPTY, 0},
    {"bad/md5_short.txt", NULL, IMT_E_HASH_LENGTH, 2},
    {"bad/sha1_nonhex.txt", NULL, IMT_E_NOT_HEX, 2},
    {"bad/te_bad.txt", NULL, IMT_E_PARSE, 3},
    {"bad/hashdeep_nospec.txt", NULL, IMT_E_PARSE, 2},
    {"bad/hashdeep_short.txt", NULL, IMT_E_HASH_LENGTH, 4},
    {"bad/pdq64.hex", NULL, IMT_E_PARSE, 1},
    /* ambiguous: never a guess (a tab-separated PDQ list read as sha256sum) */
    {"bad/pdq_tab.txt", NULL, IMT_E_PARSE, 1},
    {"bad/sha256_csv.txt", NULL, IMT_E_PARSE, 2},
    {"bad/sha256_onespace.txt", NULL, IMT_E_PARSE, 1},
    {"bad/pdq_short.csv", "md5sum", IMT_E_PARSE, 1},
    {"pdq.csv", "vics", IMT_E_PARSE, 1},
    {"bad/vics_notarray.json", NULL, IMT_E_JSON_SHAPE, 3},
    {"bad/vics_novalue.json", NULL, IMT_E_JSON_SHAPE, 0},
    {"bad/vics_md5len.json", NULL, IMT_E_HASH_LENGTH, 4},
    {"bad/vics_hashnum.json", NULL, IMT_E_JSON_SHAPE, 3},
    {"bad/vics_truncated.json", NULL, IMT_E_PARSE, 3},
    {"bad/vics_syntax.json", NULL, IMT_E_PARSE, 3},
    /* shares the MD5 of line 3's record but not its SHA-1: not a repeat */
    {"bad/vics_dup_mixed.json", NULL, IMT_E_DUPLICATE, 5},
    {"bad/vics_toparray.json", NULL, IMT_E_JSON_SHAPE, 1},
    /* a Category the list gives but we cannot read: never dropped */
    {"bad/vics_catarray.json", NULL, IMT_E_JSON_SHAPE, 4},
    {"bad/vics_catobject.json", NULL, IMT_E_JSON_SHAPE, 4},
    {"bad/no-such-file", NULL, IMT_E_NOT_FOUND, 0},
    {"pdq.csv", "no-such-format", IMT_E_INVALID, 0},
    {"@truncated", NULL, IMT_E_TRUNCATED, 0},
};

static void bad_formats(void)
{
    /* a base list, so "unchanged" is checked on a non-empty index */
    imt_index *idx = fresh();
    imt_import_opts io;
    imt_import_opts_init(&io);
    imt_import_stats st;
    REQUIRE(imt_index_import(idx, data("md5sum.txt"), &io, &st) == IMT_OK);
    char id0[65], id1[65], trunc[400], nsrl[400];
    imt_index_identity(idx, id0);
    snprintf(nsrl, sizeof nsrl, "%s/nsrl.db", tmp);
    snprintf(trunc, sizeof trunc, "%s/truncated.db", tmp);
    size_t n;
    unsigned char *db = tu_read_file(nsrl, &n);
    REQUIRE(db && n > 4096);
    FILE *f = fopen(trunc, "wb");
    REQUIRE(f);
    fwrite(db, 1, n - 1000, f);
    fclose(f);
    for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
        const bad *b = &bads[i];
        const char *path = b->file[0] == '@' ? trunc : data(b->file);
        imt_import_opts_init(&io);
        io.format = b->format;
        imt_err e = imt_index_import(idx, path, &io, &st);
        const char *msg = imt_index_last_error(idx);
        CHECKF(e == b->err, "%s: got %s (%s), want %s", b->file, imt_err_name(e), msg,
               imt_err_name(b->err));
        char want[700];
        if (b->line) {
            snprintf(want, sizeof want, "%s:%d: ", path, b->line);
            CHECKF(strstr(msg, want) != NULL, "%s: message '%s' lacks '%s'", b->file, msg, want);
            if (strstr(b->file, "pdq_tab") || strstr(b->file, "sha256_"))
                CHECKF(strstr(msg, "--format") != NULL, "%s: '%s' does not ask for --format", b->file, msg);
        }
        if (e != IMT_E_INVALID) CHECKF(strstr(msg, path) != NULL, "%s: message '%s' lacks the file", b->file, msg);
        imt_index_identity(idx, id1);
        CHECKF(!strcmp(id0, id1) && imt_index_list_count(idx) == 1, "%s: the index changed", b->file);
    }
    /* skip_bad: the good lines go in, the bad are counted with examples */
    imt_import_opts_init(&io);
    io.skip_bad = 1;
    CHECK(imt_index_import(idx, data("bad/vics_dup_mixed.json"), &io, &st) == IMT_OK);
    CHECK(st.records == 2 && st.bad == 1 && strstr(st.bad_examples[0], "vics_dup_mixed.json:5: duplicate"));
    CHECK(imt_index_import(idx, data("bad/pdq_nonhex.csv"), &io, &st) == IMT_OK);
    CHECK(st.records == 2 && st.bad == 1 && strstr(st.bad_examples[0], "pdq_nonhex.csv:3:"));
    CHECK(imt_index_import(idx, data("bad/vics_md5len.json"), &io, &st) == IMT_OK);
    CHECK(st.records == 1 && st.bad == 1);
    CHECK(imt_index_list_count(idx) == 4);
    /* a file name longer than a membership keeps: refused at its line,
     * never cut (it was cut to 65534 bytes silently) */
    {
        char lp[400];
        snprintf(lp, sizeof lp, "%s/longname.md5", tmp);
        FILE *lf = fopen(lp, "w");
        REQUIRE(lf);
        fprintf(lf, "00000000000000000000000000000007  short\n00000000000000000000000000000008  ");
        for (int i = 0; i < 70000; i++) fputc('n', lf);
        fputc('\n', lf);
        fclose(lf);
        imt_import_opts_init(&io);
        char idl0[65], idl1[65];
        imt_index_identity(idx, idl0);
        imt_err le = imt_index_import(idx, lp, &io, &st);
        imt_index_identity(idx, idl1);
        CHECKF(le == IMT_E_PARSE && strstr(imt_index_last_error(idx), "longname.md5:2: a name or id of 70000 bytes"),
               "long name: %s (%s)", imt_err_name(le), imt_index_last_error(idx));
        CHECK(!strcmp(idl0, idl1));
    }
    /* a corrupt (not truncated) database: a named error, no crash */
    memset(db + 4096, 0xA5, n - 4096);
    f = fopen(trunc, "wb");
    REQUIRE(f);
    fwrite(db, 1, n, f);
    fclose(f);
    imt_import_opts_init(&io);
    imt_err e = imt_index_import(idx, trunc, &io, &st);
    CHECKF(e == IMT_E_CORRUPT || e == IMT_E_DB || e == IMT_E_PARSE || e == IMT_E_HASH_LENGTH ||
           e == IMT_E_NOT_HEX, "corrupt db: %s", imt_err_name(e));
    CHECK(imt_index_verify(idx) == IMT_OK);
    free(db);
    imt_index_close(idx);
}

int main(void)
{
    snprintf(tmp, sizeof tmp, "%s/test_index_formats.XXXXXX", IMT_BINARY_DIR);
    REQUIRE(mkdtemp(tmp));
    good_formats();
    contents();
    policies();
    roundtrip();
    bad_formats();
    in_list_duplicates();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (!getenv("KEEP") && tu_failures == 0 && system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", tmp);
    return tu_done("test_index_formats");
}
