/* tests/test_thumbcache.c -- Windows thumbnail caches (engine/decode/
 * thumbcache.c, thumbsdb.c; collected by engine/scan/hashfile.c).
 *
 * Files: tests/data/thumbcache (make.sh: ImageMagick makes the pictures,
 * cachegen.py writes thumbcache_*.db in formats 20, 21 and 32 and an OLE2
 * Thumbs.db from the published layouts, the reference hasher hashes each
 * picture file alone: ref.csv). Checked:
 *  - every cached picture is a sub-item with its kind, entry id, status,
 *    and (compat) exactly the reference's hash and quality of the picture
 *    file it holds; fast within 10 bits; a thumbcache entry's offset and
 *    size are where that picture's bytes are in the cache;
 *  - the deleted entry is not listed, the damaged one is passed over and the
 *    entries after it still found; a Thumbs.db catalog record without its
 *    stream is listed as not-found;
 *  - the same list whatever the read size (the parser sees the file in
 *    pieces of 1, 7, 4093 bytes), every truncation a record, never a crash;
 *  - a scan with the pictures' hashes in the index matches every entry. */
#include "decode/decode.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#define DATA IMT_SOURCE_DIR "/tests/data/thumbcache/"

static void ref_hash(const char *file, imt_pdq *out, int *quality)
{
    char hex[65];
    REQUIRE(tu_ref_csv(DATA "ref.csv", file, hex, quality));
    REQUIRE(imt_pdq_from_hex(out, hex, 64) == IMT_OK);
}

typedef struct want {
    uint64_t id;
    const char *picture;   /* NULL: listed, not hashed */
    imt_err status;
} want;

static imt_hasher *make(imt_pdq_mode mode)
{
    imt_hash_opts o;
    imt_hash_opts_init(&o);
    o.mode = mode;
    imt_hasher *h = NULL;
    REQUIRE(imt_hasher_create(&h, &o) == IMT_OK);
    return h;
}

/* The sub-items of r against the expected list. */
static void check_list(const char *file, const imt_hash_result *r, imt_subitem_kind kind,
                       const want *w, size_t n, int compat, const uint8_t *cache)
{
    CHECKF(r->status == IMT_E_NOT_IMAGE, "%s: %s", file, imt_err_name(r->status));
    CHECKF(r->n_sub == n && r->sub_omitted == 0, "%s: %zu sub-items (%zu omitted), want %zu",
           file, r->n_sub, r->sub_omitted, n);
    for (size_t i = 0; i < n && i < r->n_sub; i++) {
        const imt_subitem *u = &r->sub[i];
        CHECKF(u->kind == kind && u->index == i && u->entry_id == w[i].id,
               "%s #%zu: kind %d index %u id %llx", file, i, (int)u->kind, u->index,
               (unsigned long long)u->entry_id);
        CHECKF(u->status == w[i].status, "%s #%zu: %s (%s)", file, i, imt_err_name(u->status),
               u->detail);
        if (!w[i].picture) continue;
        CHECKF(u->has_pdq, "%s #%zu: no hash", file, i);
        imt_pdq ref;
        int q;
        ref_hash(w[i].picture, &ref, &q);
        int d = imt_pdq_distance(&u->pdq[0], &ref);
        if (compat)
            CHECKF(d == 0 && u->quality == q, "%s #%zu (%s): distance %d, quality %d vs %d",
                   file, i, w[i].picture, d, u->quality, q);
        else
            CHECKF(d <= 10, "%s #%zu (%s): fast is %d bits from the reference", file, i,
                   w[i].picture, d);
        if (cache) { /* the entry's bytes are the picture file's */
            char path[512];
            snprintf(path, sizeof path, DATA "%s", w[i].picture);
            size_t pn = 0;
            uint8_t *p = tu_read_file(path, &pn);
            REQUIRE(p != NULL);
            CHECKF(u->size == pn && !memcmp(cache + u->offset, p, pn),
                   "%s #%zu: offset %llu size %llu are not %s", file, i,
                   (unsigned long long)u->offset, (unsigned long long)u->size, w[i].picture);
            free(p);
        }
    }
}

static const want W256[] = {{0x1111aaaa2222bbbbull, "p1.jpg", IMT_OK},
                            {0x3333cccc4444ddddull, "p2.png", IMT_OK},
                            {0x5555eeee6666ffffull, "p3.bmp", IMT_OK},
                            {0x77770000888899ull, "p4.jpg", IMT_OK}};
static const want W96[] = {{0xa1, "p3.bmp", IMT_OK}, {0xa2, "p1.jpg", IMT_OK}};
static const want W32[] = {{0xb1, "p2.png", IMT_OK}};
static const want WDB[] = {{1, "p1.jpg", IMT_OK},
                           {2, "p3.jpg", IMT_OK},
                           {5, NULL, IMT_E_NOT_FOUND},
                           {12, "p4.jpg", IMT_OK}};

static const struct {
    const char *file;
    imt_subitem_kind kind;
    const want *w;
    size_t n;
    imt_format fmt;
} CASES[] = {
    {"thumbcache_256.db", IMT_SUB_THUMBCACHE_ENTRY, W256, 4, IMT_FMT_THUMBCACHE},
    {"thumbcache_96.db", IMT_SUB_THUMBCACHE_ENTRY, W96, 2, IMT_FMT_THUMBCACHE},
    {"thumbcache_32.db", IMT_SUB_THUMBCACHE_ENTRY, W32, 1, IMT_FMT_THUMBCACHE},
    {"Thumbs.db", IMT_SUB_THUMBSDB_ENTRY, WDB, 4, IMT_FMT_OLE2},
};

static void test_lists(void)
{
    imt_hasher *hc = make(IMT_PDQ_COMPAT), *hf = make(IMT_PDQ_FAST);
    for (size_t c = 0; c < sizeof CASES / sizeof *CASES; c++) {
        char path[512];
        snprintf(path, sizeof path, DATA "%s", CASES[c].file);
        size_t n = 0;
        uint8_t *bytes = tu_read_file(path, &n);
        REQUIRE(bytes != NULL);
        int is_tc = CASES[c].fmt == IMT_FMT_THUMBCACHE;
        imt_hash_result r;
        imt_hash_file(hc, path, &r);
        CHECKF(r.format == CASES[c].fmt, "%s: format %s", CASES[c].file,
               imt_format_name(r.format));
        check_list(CASES[c].file, &r, CASES[c].kind, CASES[c].w, CASES[c].n, 1,
                   is_tc ? bytes : NULL);
        imt_hash_file(hf, path, &r);
        check_list(CASES[c].file, &r, CASES[c].kind, CASES[c].w, CASES[c].n, 0, NULL);
        free(bytes);
    }
    /* an OLE2 file without a catalog (an Office document, say) */
    {
        imt_hash_result o2;
        imt_hash_file(hc, DATA "other.ole", &o2);
        CHECKF(o2.format == IMT_FMT_OLE2 && o2.status == IMT_E_NOT_IMAGE && o2.n_sub == 0 &&
                   strstr(o2.detail, "without a Thumbs.db catalog") != NULL,
               "other.ole: %s, %zu sub-items, %s", imt_err_name(o2.status), o2.n_sub, o2.detail);
    }
    /* embedded pictures off: the cache is not read */
    imt_hash_opts o;
    imt_hash_opts_init(&o);
    o.embedded = 0;
    imt_hasher *h0 = NULL;
    REQUIRE(imt_hasher_create(&h0, &o) == IMT_OK);
    imt_hash_result r;
    imt_hash_file(h0, DATA "thumbcache_256.db", &r);
    CHECK(r.n_sub == 0 && r.status == IMT_E_NOT_IMAGE);
    imt_hasher_free(h0);
    imt_hasher_free(hc);
    imt_hasher_free(hf);
}

/* ---- read sizes and truncation ------------------------------------------- */
typedef struct piece {
    const uint8_t *p;
    size_t n, pos, k;
} piece;

static imt_err piece_read(void *ctx, void *buf, size_t room, size_t *got)
{
    piece *s = ctx;
    size_t k = s->n - s->pos;
    if (k > s->k) k = s->k;
    if (k > room) k = room;
    memcpy(buf, s->p + s->pos, k);
    s->pos += k;
    *got = k;
    return IMT_OK;
}

static int same_list(const imt_hash_result *a, const imt_hash_result *b)
{
    if (a->n_sub != b->n_sub || a->status != b->status) return 0;
    for (size_t i = 0; i < a->n_sub; i++) {
        const imt_subitem *x = &a->sub[i], *y = &b->sub[i];
        if (x->entry_id != y->entry_id || x->offset != y->offset || x->size != y->size ||
            x->status != y->status || x->has_pdq != y->has_pdq ||
            (x->has_pdq && memcmp(&x->pdq[0], &y->pdq[0], sizeof x->pdq[0])))
            return 0;
    }
    return 1;
}

static void test_pieces_truncation(void)
{
    imt_hasher *h = make(IMT_PDQ_COMPAT), *g = make(IMT_PDQ_COMPAT);
    for (size_t c = 0; c < sizeof CASES / sizeof *CASES; c++) {
        char path[512];
        snprintf(path, sizeof path, DATA "%s", CASES[c].file);
        size_t n = 0;
        uint8_t *b = tu_read_file(path, &n);
        REQUIRE(b != NULL);
        imt_hash_result whole, r;
        imt_hash_memory(h, b, n, &whole);
        const size_t ks[] = {9, 4093, 65537}; /* the first piece is sniffed */
        for (size_t i = 0; i < 3; i++) {
            piece s = {b, n, 0, ks[i]};
            imt_stream st = {piece_read, &s, 0};
            imt_hash_stream(g, &st, &r);
            CHECKF(same_list(&whole, &r), "%s read %zu bytes at a time: another list",
                   CASES[c].file, ks[i]);
        }
        /* every truncation: a record, sub-items within the whole list */
        for (size_t cut = 0; cut < n; cut += n / 151 + 1) {
            imt_hash_memory(h, b, cut, &r);
            CHECKF(r.n_sub <= CASES[c].n, "%s cut at %zu: %zu sub-items", CASES[c].file, cut,
                   r.n_sub);
            for (size_t i = 0; i < r.n_sub; i++)
                CHECKF(r.sub[i].status != IMT_OK || r.sub[i].has_pdq, "%s cut %zu #%zu",
                       CASES[c].file, cut, i);
        }
        free(b);
    }
    /* A thumbcache cut inside p2's data: p1 hashed, p2 truncated. */
    size_t n = 0;
    uint8_t *b = tu_read_file(DATA "thumbcache_256.db", &n);
    REQUIRE(b != NULL);
    imt_hash_result whole, r;
    imt_hash_memory(g, b, n, &whole);
    REQUIRE(whole.n_sub == 4);
    size_t cut = (size_t)(whole.sub[1].offset + whole.sub[1].size / 2);
    imt_hash_memory(h, b, cut, &r);
    CHECKF(r.n_sub == 2 && r.sub[0].status == IMT_OK && r.sub[1].status == IMT_E_TRUNCATED,
           "cut in p2: %zu sub-items, #1 %s", r.n_sub,
           r.n_sub > 1 ? imt_err_name(r.sub[1].status) : "-");
    free(b);
    imt_hasher_free(h);
    imt_hasher_free(g);
}

/* A format 21 cache of n copies of p3.jpg (ids 0x100 + i), written here
 * from the layout (cachegen.py's, in C): more entries than
 * IMT_MAX_SUBITEMS, for the list bound and the report's read-back. */
static void write_many(const char *path, int n)
{
    size_t pn = 0;
    uint8_t *p = tu_read_file(DATA "p3.jpg", &pn);
    REQUIRE(p != NULL);
    FILE *f = fopen(path, "wb");
    REQUIRE(f != NULL);
    uint8_t h[48] = "CMMM";
    h[4] = 21;
    h[8] = 1;
    h[16] = 24;
    fwrite(h, 1, 24, f);
    for (int i = 0; i < n; i++) {
        uint32_t size = 48 + (uint32_t)pn;
        memset(h, 0, sizeof h);
        memcpy(h, "CMMM", 4);
        for (int k = 0; k < 4; k++) {
            h[4 + k] = (uint8_t)(size >> (8 * k));
            h[24 + k] = (uint8_t)(pn >> (8 * k));
        }
        h[8] = (uint8_t)i;
        h[9] = 1; /* id 0x100 + i */
        fwrite(h, 1, 48, f);
        fwrite(p, 1, pn, f);
    }
    fclose(f);
    free(p);
}

static void test_many(void)
{
    char path[] = "/tmp/imt_tcmany_XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    write_many(path, 12);
    imt_hasher *h = make(IMT_PDQ_COMPAT);
    imt_hash_result r;
    imt_hash_file(h, path, &r);
    CHECKF(r.n_sub == 12 && r.sub_omitted == 0, "%zu sub-items, %zu omitted", r.n_sub,
           r.sub_omitted);
    imt_pdq ref;
    int q;
    ref_hash("p3.jpg", &ref, &q);
    for (size_t i = 0; i < r.n_sub; i++)
        CHECKF(r.sub[i].entry_id == 0x100 + i && r.sub[i].status == IMT_OK &&
                   imt_pdq_distance(&r.sub[i].pdq[0], &ref) == 0,
               "entry %zu: id %llx %s", i, (unsigned long long)r.sub[i].entry_id,
               imt_err_name(r.sub[i].status));
    imt_hasher_free(h);
    unlink(path);
}

/* ---- the scan: every entry matched ---------------------------------------- */
static void test_scan(void)
{
    char dir[] = "/tmp/imt_thumbcache_XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    char cmd[8192], idx[100], ev[100], list[100], out[100];
    snprintf(idx, sizeof idx, "%s/idx", dir);
    snprintf(ev, sizeof ev, "%s/ev", dir);
    snprintf(list, sizeof list, "%s/known.csv", dir);
    snprintf(out, sizeof out, "%s/report.jsonl", dir);
    REQUIRE(mkdir(ev, 0755) == 0);
    FILE *f = fopen(list, "w");
    REQUIRE(f != NULL);
    const char *pics[] = {"p1.jpg", "p2.png", "p3.bmp", "p4.jpg", "p3.jpg"};
    for (size_t i = 0; i < 5; i++) {
        imt_pdq p;
        int q;
        char hx[65];
        ref_hash(pics[i], &p, &q);
        imt_pdq_to_hex(&p, hx);
        fprintf(f, "%s,%d\n", hx, q);
    }
    fclose(f);
    snprintf(cmd, sizeof cmd,
             "cp '" DATA "thumbcache_256.db' '" DATA "Thumbs.db' '%s/' && "
             "'%s' index create '%s' >/dev/null && '%s' index import '%s' '%s' >/dev/null && "
             "'%s' scan -x '%s' -t 1 -o '%s' '%s' 2>/dev/null; test $? -eq 1",
             ev, IMT_CLI, idx, IMT_CLI, idx, list, IMT_CLI, idx, out, ev);
    CHECKF(system(cmd) == 0, "scan did not report a hit: %s", cmd);
    size_t n = 0;
    char *rep = (char *)tu_read_file(out, &n);
    REQUIRE(rep != NULL);
    int seen = 0;
    for (char *line = rep; line && *line;) {
        char *end = strchr(line, '\n');
        if (end) *end = '\0';
        yajl_val v = yajl_tree_parse(line, NULL, 0);
        const char *pth[] = {"path", NULL}, *mp[] = {"matches", NULL}, *ep[] = {"embedded", NULL};
        yajl_val path = v ? yajl_tree_get(v, pth, yajl_t_string) : NULL;
        if (path && strstr(path->u.string, ".db")) {
            int db = strstr(path->u.string, "Thumbs.db") != NULL;
            yajl_val m = yajl_tree_get(v, mp, yajl_t_array);
            yajl_val e = yajl_tree_get(v, ep, yajl_t_array);
            int hit[8] = {0};
            for (size_t i = 0; m && i < m->u.array.len; i++) {
                yajl_val k = yajl_tree_get(m->u.array.values[i], ep, yajl_t_number);
                if (k && YAJL_GET_INTEGER(k) >= 0 && YAJL_GET_INTEGER(k) < 8)
                    hit[YAJL_GET_INTEGER(k)] = 1;
            }
            CHECKF(e && e->u.array.len == 4, "%s: embedded list", path->u.string);
            for (int i = 0; i < 4; i++)
                CHECKF(hit[i] == !(db && i == 2), "%s: entry %d %s", path->u.string, i,
                       hit[i] ? "matched" : "not matched");
            seen++;
        }
        yajl_tree_free(v);
        if (end) *end = '\n';
        line = end ? end + 1 : NULL;
    }
    CHECK(seen == 2);
    CHECK(strstr(rep, "\"hit_files\":2") != NULL);
    free(rep);
    /* A cache of 12 entries through the report's read-back (imgtriage report
     * jsonl re-emits each record as read): its whole list survives. */
    char many[200], conv[200];
    snprintf(many, sizeof many, "%s/many.db", ev);
    snprintf(conv, sizeof conv, "%s/conv.jsonl", dir);
    write_many(many, 12);
    snprintf(cmd, sizeof cmd,
             "'%s' scan -x '%s' -t 1 -o '%s.2' '%s' >/dev/null 2>&1; test $? -eq 1 && "
             "'%s' report jsonl '%s.2' -o '%s' 2>/dev/null && "
             "grep -F 'many.db' '%s.2' > '%s.a' && grep -F 'many.db' '%s' > '%s.b' && "
             "cmp -s '%s.a' '%s.b' && test $(grep -o thumbcache-entry '%s.b' | wc -l) -eq 12",
             IMT_CLI, idx, out, ev, IMT_CLI, out, conv, out, out, conv, conv, out, conv, conv);
    CHECKF(system(cmd) == 0, "a 12-entry cache's record is not re-emitted whole: %s", cmd);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

/* The generated Thumbs.db through libolecf (an OLE2 reader independent of
 * cachegen.py's writer and thumbsdb.c's reader), in a program of its own
 * (tests/olecf_check.c): libewf, which the library links, exports its own
 * old copy of libbfio's functions, and libolecf's calls bound to those. */
static int test_olecf(void)
{
#ifdef IMT_TEST_OLECF_CHECK
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' '%s'", IMT_TEST_OLECF_CHECK, DATA);
    int st = system(cmd);
    CHECKF(st == 0, "libolecf does not read the generated Thumbs.db as written (%s: %d)", cmd, st);
    return 1;
#else
    return 0;
#endif
}

int main(void)
{
    int olecf = test_olecf();
    test_lists();
    test_pieces_truncation();
    test_many();
    test_scan();
    int r = tu_done("test_thumbcache");
    if (r == 0 && !olecf)
        return tu_skip("libolecf (libolecf-dev) absent: the generated Thumbs.db was not "
                       "checked with an independent OLE2 reader");
    return r;
}
