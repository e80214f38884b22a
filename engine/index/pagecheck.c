/* engine/index/pagecheck.c -- validating the page graph of data.mdb before
 * LMDB maps it.
 *
 * LMDB 0.9.24 (Debian 12's liblmdb0) trusts what the file says: a page
 * number is only compared with the meta page's last page, node offsets and
 * key sizes are not compared with the page size, an overflow page's run
 * length is not compared with the file, and a few inconsistencies hit
 * assert() (abort) rather than returning MDB_CORRUPTED. A damaged index
 * would then kill the process with SIGBUS (a read past the end of the file
 * but inside the map), SIGSEGV or SIGABRT. Before mdb_env_open, this file
 * reads the two meta pages and walks every B-tree LMDB can reach from the
 * meta page it will use, and refuses the file unless every page LMDB may
 * touch keeps its reads inside the file. It reads leaf pages (nearly all
 * of the file) in runs of adjacent pages with pread, and the rest through
 * a read-only map of exactly the file's size (not LMDB's, which runs past
 * the end), only at offsets already shown to lie inside it.
 *
 * What is checked (layouts from libraries/liblmdb/mdb.c at LMDB_0.9.24):
 *  - both meta pages: P_META, magic, version, the same page size (a power
 *    of two LMDB could have written); the one with the larger txnid is the
 *    one LMDB reads (mdb_env_pick_meta), and as transactions read meta
 *    page (txnid & 1), the parity of its txnid must match; its last page
 *    lies in the file;
 *  - every branch page: its number, its type for its level (md_depth), its
 *    lower/upper bounds, at least 2 keys (LMDB asserts that), every node
 *    and key inside the page, every child in 2..last page and reached once;
 *  - every leaf page read in full: the same, every value inside the page or,
 *    for F_BIGDATA, an overflow run whose head page says P_OVERFLOW, whose
 *    length holds the value and ends by the last page; no F_DUPDATA (no
 *    table of ours is DUPSORT); F_SUBDATA records (the main DB's named
 *    tables) are walked in turn;
 *  - every tree's record count (what mdb_stat reports, and allocations are
 *    sized by) equals its leaf nodes;
 *  - with a writable handle, the free-page DB too, with its page lists
 *    (sorted, in range, never a page that a tree uses).
 *
 * Every leaf page is read in full, the big tables' too: LMDB follows a
 * node's F_DUPDATA flag without looking at the table's flags (mdb_cursor_set
 * -> mdb_xcursor_init1 with no xcursor: SIGSEGV) and descends from any page
 * whose flags say P_BRANCH, so checking a leaf's header alone does not make
 * it safe to hand to LMDB. Cost at 10M entries (2.2 GB, 147k leaf pages),
 * page cache warm, 2-vCPU VM: 0.17 s (through the map instead: 0.55 s, page
 * faults and TLB misses). A writable open also reads the free-page DB and
 * its lists.
 *
 * A light check (imt__idx_pagecheck_ex with a matching verified-state
 * record, vcache.c) checks the meta pages, every branch page, the main
 * DB's leaves and the leaf of each one-page table as above, but only claims
 * the leaves of the big tables (in range, reached once) without reading
 * them: the record says they passed a full check and the file is unchanged
 * since. Both modes hash the same pages (the metas, the branch pages, the
 * small leaves) into the structure hash the record holds; a light check
 * whose hash differs from the record's is thrown away for a full one. */
#include "index.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- LMDB 0.9 on-disk layout (native byte order; pgno_t = size_t) ------- */
#define ZS ((unsigned)sizeof(size_t))
#define PAGEHDRSZ (ZS + 8u)          /* mp_pgno, mp_pad, mp_flags, mp_lower, mp_upper */
#define PG_FLAGS (ZS + 2u)
#define PG_LOWER (ZS + 4u)
#define PG_UPPER (ZS + 6u)           /* mp_pages (uint32) overlays lower/upper */
#define P_BRANCH 0x01u
#define P_LEAF 0x02u
#define P_OVERFLOW 0x04u
#define P_META 0x08u
#define P_DIRTY 0x10u                /* cleared before a page is written */
#define P_KEEP 0x8000u               /* likewise */
#define NODESIZE 8u                  /* mn_lo, mn_hi, mn_flags, mn_ksize */
#define F_BIGDATA 0x01u
#define F_SUBDATA 0x02u
#define F_DUPDATA 0x04u
#define DB_SIZE (8u + 5u * ZS)       /* MDB_db */
#define DB_FLAGS 4u
#define DB_DEPTH 6u
#define DB_ENTRIES (8u + 3u * ZS)
#define DB_ROOT (8u + 4u * ZS)
#define META_MAGIC 0u                /* offsets in MDB_meta, after the page header */
#define META_VERSION 4u
#define META_DBS (8u + 2u * ZS)      /* after mm_address, mm_mapsize */
#define META_LASTPG (META_DBS + 2u * DB_SIZE)
#define META_TXNID (META_LASTPG + ZS)
#define META_END (META_TXNID + ZS)
#define MDB_MAGIC 0xBEEFC0DEu
#define MDB_DATA_VERSION 1u
#define MAX_PAGESIZE 0x8000u         /* PAGEBASE = 0 */
#define MIN_PAGESIZE 512u
#define CURSOR_STACK 32u             /* LMDB's deepest tree */
#define DB_DUPFLAGS (MDB_DUPSORT | MDB_DUPFIXED | MDB_INTEGERDUP | MDB_REVERSEDUP)

#define MAX_TABLES 64                /* named tables the main DB may hold */
#define PC_BATCH (256u << 10)        /* bytes of leaf pages read at once */

typedef struct pc_table {
    char name[32];
    uint64_t root, entries;
    unsigned depth;
    unsigned flags;
} pc_table;

typedef struct pc {
    const char *dir;                 /* the index folder, for messages */
    char *err;                       /* the caller's error buffer */
    size_t errlen;
    int fd;
    uint64_t fsize;
    uint64_t npg;                    /* pages 0 .. npg-1 form the snapshot */
    unsigned psize;
    int write;
    uint64_t txnid;
    const uint8_t *map;              /* the file, read-only, exactly fsize bytes */
    uint8_t *seen;                   /* one bit per page: reached already */
    /* the tree being walked */
    const char *db;
    unsigned depth;
    int is_main, is_free;
    uint64_t entries;                /* leaf nodes of the tree so far */
    pc_table tables[MAX_TABLES];
    size_t ntables;
    uint64_t pages_read;
    uint8_t *batch;                  /* runs of leaf pages read with pread */
    unsigned batch_pages;
    uint64_t *kids;                  /* the children of a bottom branch page */
    /* the structure hash (vcache.c): meta pages, branch pages, and the
     * leaves of the main DB and of tables of one page; the same in both
     * modes, so a full check can record what a light one compares */
    EVP_MD_CTX *md;
    int light;                       /* leaves of big tables: claimed, not read */
    int big;                         /* the tree being walked has branch pages */
} pc;

static uint16_t rd16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

static uint32_t rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static uint64_t rdz(const uint8_t *p)
{
    size_t v;
    memcpy(&v, p, sizeof v);
    return (uint64_t)v;
}

static uint64_t pgno_invalid(void)
{
    return (uint64_t)(size_t)-1;
}

static void pc_err(pc *c, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void pc_err(pc *c, const char *fmt, ...)
{
    if (!c->err || !c->errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
}

/* Record "page N (table): what" as the error; returns CORRUPT. */
static imt_err pc_fail(pc *c, uint64_t pgno, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static imt_err pc_fail(pc *c, uint64_t pgno, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    pc_err(c, "%s: data.mdb is damaged: page %llu (%s): %s", c->dir,
                (unsigned long long)pgno, c->db ? c->db : "meta", what);
    return IMT_E_INDEX_CORRUPT;
}

/* Claim page p for the tree being walked: in range and reached only once. */
static imt_err pc_claim(pc *c, uint64_t p, uint64_t from, const char *what)
{
    if (p < 2 || p >= c->npg)
        return pc_fail(c, from, "%s page %llu is outside pages 2..%llu", what,
                       (unsigned long long)p, (unsigned long long)(c->npg - 1));
    if (c->seen[p >> 3] & (1u << (p & 7)))
        return pc_fail(c, from, "%s page %llu is reached twice", what, (unsigned long long)p);
    c->seen[p >> 3] |= (uint8_t)(1u << (p & 7));
    return IMT_OK;
}

/* Check the overflow run of an F_BIGDATA value of size dsz at ov. */
static imt_err pc_overflow(pc *c, uint64_t from, uint64_t ov, uint64_t dsz, uint64_t *pages)
{
    imt_err err = IMT_OK;
    IMT_TRY(pc_claim(c, ov, from, "overflow"));
    const uint8_t *h = c->map + ov * c->psize;
    if (rdz(h) != ov) return pc_fail(c, ov, "overflow page says it is page %llu",
                                     (unsigned long long)rdz(h));
    unsigned fl = rd16(h + PG_FLAGS) & ~(P_DIRTY | P_KEEP);
    if (fl != P_OVERFLOW) return pc_fail(c, ov, "overflow page has flags 0x%x", fl);
    uint64_t n = rd32(h + PG_LOWER);
    if (n < 1 || n > c->npg - ov)
        return pc_fail(c, ov, "overflow run of %llu pages ends past page %llu",
                       (unsigned long long)n, (unsigned long long)(c->npg - 1));
    if (dsz > n * c->psize - PAGEHDRSZ)
        return pc_fail(c, ov, "a value of %llu bytes does not fit its %llu overflow pages",
                       (unsigned long long)dsz, (unsigned long long)n);
    for (uint64_t q = ov + 1; q < ov + n; q++) IMT_TRY(pc_claim(c, q, ov, "overflow"));
    *pages = n;
cleanup:
    return err;
}

/* A free-page list: (n, pgno[n]) in native size_t, pgnos descending. */
static imt_err pc_freelist(pc *c, uint64_t from, const uint8_t *v, uint64_t dsz)
{
    imt_err err = IMT_OK;
    if (dsz < ZS || dsz % ZS || rdz(v) != dsz / ZS - 1)
        return pc_fail(c, from, "a free-page list of %llu bytes is malformed",
                       (unsigned long long)dsz);
    uint64_t n = dsz / ZS - 1, prev = 0;
    for (uint64_t i = 1; i <= n; i++) {
        uint64_t p = rdz(v + i * ZS);
        if (i > 1 && p >= prev) return pc_fail(c, from, "a free-page list is not sorted");
        IMT_TRY(pc_claim(c, p, from, "free"));
        prev = p;
    }
cleanup:
    return err;
}

/* Check leaf node i of page pg (psize bytes at b); record named tables. */
static imt_err pc_leaf_node(pc *c, uint64_t pg, const uint8_t *b, unsigned i, unsigned upper)
{
    imt_err err = IMT_OK;
    unsigned ps = c->psize;
    unsigned off = rd16(b + PAGEHDRSZ + 2 * i);
    if (off < upper || off > ps - NODESIZE)
        return pc_fail(c, pg, "node %u at offset %u is outside the page", i, off);
    const uint8_t *nd = b + off;
    unsigned fl = rd16(nd + 4), ks = rd16(nd + 6);
    uint64_t dsz = (uint64_t)rd16(nd) | (uint64_t)rd16(nd + 2) << 16;
    if (ks > ps - NODESIZE - off) return pc_fail(c, pg, "node %u: its key runs past the page", i);
    unsigned dat = off + NODESIZE + ks;
    unsigned allowed = c->is_main ? F_SUBDATA : F_BIGDATA;
    if (fl & ~allowed) return pc_fail(c, pg, "node %u has flags 0x%x", i, fl);
    if (c->is_free && (ks != ZS || rdz(nd + NODESIZE) > c->txnid))
        return pc_fail(c, pg, "node %u: not a free-list key (a txnid up to %llu)", i,
                       (unsigned long long)c->txnid);
    if (fl & F_BIGDATA) {
        if (ZS > ps - dat) return pc_fail(c, pg, "node %u: its overflow page number runs past the page", i);
        uint64_t pages = 0;
        uint64_t ov = rdz(nd + NODESIZE + ks);
        IMT_TRY(pc_overflow(c, pg, ov, dsz, &pages));
        if (c->is_free) IMT_TRY(pc_freelist(c, pg, c->map + ov * ps + PAGEHDRSZ, dsz));
        return IMT_OK;
    }
    if (dsz > ps - dat) return pc_fail(c, pg, "node %u: its value runs past the page", i);
    if (c->is_free) return pc_freelist(c, pg, nd + NODESIZE + ks, dsz);
    if (fl & F_SUBDATA) {
        if (dsz != DB_SIZE) return pc_fail(c, pg, "node %u: a table record of %llu bytes", i,
                                           (unsigned long long)dsz);
        if (c->ntables == MAX_TABLES) return pc_fail(c, pg, "more than %d tables", MAX_TABLES);
        const uint8_t *db = nd + NODESIZE + ks;
        pc_table *t = &c->tables[c->ntables++];
        size_t nl = ks < sizeof t->name - 1 ? ks : sizeof t->name - 1;
        for (size_t j = 0; j < nl; j++) {
            char ch = (char)nd[NODESIZE + j];
            t->name[j] = ch >= 0x20 && ch < 0x7f ? ch : '?';
        }
        t->name[nl] = '\0';
        t->flags = rd16(db + DB_FLAGS);
        t->depth = rd16(db + DB_DEPTH);
        t->root = rdz(db + DB_ROOT);
        t->entries = rdz(db + DB_ENTRIES);
    }
cleanup:
    return err;
}

static imt_err pc_walk(pc *c, uint64_t pg, unsigned lv, uint64_t from);

/* Read pages [pg, pg + n) (n <= c->batch_pages) into c->batch. */
static imt_err pc_read_run(pc *c, uint64_t pg, size_t n)
{
    uint8_t *p = c->batch;
    uint64_t off = pg * c->psize;
    size_t len = n * c->psize;
    while (len) {
        ssize_t r = pread(c->fd, p, len, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            pc_err(c, "%s: cannot read data.mdb at offset %llu: %s", c->dir,
                        (unsigned long long)off, r < 0 ? strerror(errno) : "end of file");
            return IMT_E_IO;
        }
        p += r;
        len -= (size_t)r;
        off += (uint64_t)r;
    }
    return IMT_OK;
}

/* Check page pg (claimed already, psize bytes at b) at level lv of the
 * current tree (leaves at level depth-1), and below it. */
static imt_err pc_page(pc *c, uint64_t pg, unsigned lv, const uint8_t *b)
{
    imt_err err = IMT_OK;
    int leaf = lv + 1 == c->depth;
    c->pages_read++;
    if (c->md && (!leaf || !c->big) && EVP_DigestUpdate(c->md, b, c->psize) != 1)
        return IMT_E_INTERNAL;
    if (rdz(b) != pg) return pc_fail(c, pg, "the page says it is page %llu",
                                     (unsigned long long)rdz(b));
    unsigned fl = rd16(b + PG_FLAGS) & ~(P_DIRTY | P_KEEP);
    if (fl != (leaf ? P_LEAF : P_BRANCH))
        return pc_fail(c, pg, "a %s page at level %u of %u has flags 0x%x",
                       leaf ? "leaf" : "branch", lv + 1, c->depth, fl);
    unsigned ps = c->psize, lower = rd16(b + PG_LOWER), upper = rd16(b + PG_UPPER);
    if (lower < PAGEHDRSZ || (lower - PAGEHDRSZ) % 2 || lower > upper || upper > ps)
        return pc_fail(c, pg, "free space bounds %u..%u do not fit a page of %u bytes",
                       lower, upper, ps);
    unsigned n = (lower - PAGEHDRSZ) / 2;
    /* LMDB asserts two keys per branch page (except in the free DB) and
     * never leaves an empty leaf in a tree */
    if (n < (leaf ? 1u : c->is_free ? 1u : 2u))
        return pc_fail(c, pg, "a %s page with %u keys", leaf ? "leaf" : "branch", n);
    if (leaf) {
        c->entries += n;
        for (unsigned i = 0; i < n; i++) IMT_TRY(pc_leaf_node(c, pg, b, i, upper));
        return IMT_OK;
    }
    /* the children; those of a bottom branch are leaves, collected to be
     * read in runs (one bottom branch at a time: c->kids is not reentered) */
    int bottom = lv + 2 == c->depth;
    if (!bottom && c->light) {
        /* branch pages are scattered over the file, and a cold disk
         * answers one read at a time in about a millisecond: ask for all
         * the children first, so the reads overlap (checked below) */
        for (unsigned i = 0; i < n; i++) {
            unsigned off = rd16(b + PAGEHDRSZ + 2 * i);
            if (off < upper || off > ps - NODESIZE) break;
            const uint8_t *nd = b + off;
            uint64_t kid = (uint64_t)rd16(nd) | (uint64_t)rd16(nd + 2) << 16;
            if (ZS == 8) kid |= (uint64_t)rd16(nd + 4) << 32;
            if (kid < c->npg)
                (void)posix_fadvise(c->fd, (off_t)(kid * ps), (off_t)ps, POSIX_FADV_WILLNEED);
        }
    }
    for (unsigned i = 0; i < n; i++) {
        unsigned off = rd16(b + PAGEHDRSZ + 2 * i);
        if (off < upper || off > ps - NODESIZE)
            return pc_fail(c, pg, "node %u at offset %u is outside the page", i, off);
        const uint8_t *nd = b + off;
        unsigned ks = rd16(nd + 6);
        if (ks > ps - NODESIZE - off)
            return pc_fail(c, pg, "node %u: its key runs past the page", i);
        uint64_t kid = (uint64_t)rd16(nd) | (uint64_t)rd16(nd + 2) << 16;
        if (ZS == 8) kid |= (uint64_t)rd16(nd + 4) << 32;
        if (bottom) {
            IMT_TRY(pc_claim(c, kid, pg, "leaf"));
            c->kids[i] = kid;
        } else {
            IMT_TRY(pc_walk(c, kid, lv + 1, pg));
        }
    }
    if (!bottom) return IMT_OK;
    /* a light check (the record vouches for the leaves): claimed above
     * (in range, reached once), not read */
    if (c->light && c->big) return IMT_OK;
    const uint64_t *kids = c->kids;
    /* Leaves: most of the file. Runs of adjacent pages with one pread
     * each (LMDB appends, so a bulk-built table's leaves are mostly
     * adjacent) cost a third of touching them through the map. */
    for (unsigned i = 0; i < n;) {
        unsigned j = i + 1;
        while (j < n && j - i < c->batch_pages && kids[j] == kids[j - 1] + 1) j++;
        IMT_TRY(pc_read_run(c, kids[i], j - i));
        for (unsigned k = i; k < j; k++)
            IMT_TRY(pc_page(c, kids[k], lv + 1, c->batch + (size_t)(k - i) * ps));
        i = j;
    }
cleanup:
    return err;
}

/* Claim page pg and check its subtree; from: the parent, for messages. */
static imt_err pc_walk(pc *c, uint64_t pg, unsigned lv, uint64_t from)
{
    imt_err err = IMT_OK;
    IMT_TRY(pc_claim(c, pg, from, lv + 1 == c->depth ? "leaf" : "branch"));
    IMT_TRY(pc_page(c, pg, lv, c->map + pg * c->psize));
cleanup:
    return err;
}

/* Walk a tree; its record says it holds `entries` records, which callers
 * of mdb_stat size allocations by: it must be the count of leaf nodes. */
static imt_err pc_tree(pc *c, const char *name, uint64_t root, unsigned depth, unsigned flags,
                       uint64_t entries)
{
    imt_err err = IMT_OK;
    c->db = name;
    if (flags & DB_DUPFLAGS)
        return pc_fail(c, root, "the table has flags 0x%x (no table of an index has duplicates)",
                       flags);
    if (root == pgno_invalid()) {
        if (depth != 0 || entries != 0)
            return pc_fail(c, root, "an empty table of depth %u with %llu records", depth,
                           (unsigned long long)entries);
        return IMT_OK;
    }
    if (depth < 1 || depth > CURSOR_STACK)
        return pc_fail(c, root, "a table of depth %u", depth);
    c->depth = depth;
    c->entries = 0;
    c->big = depth > 1 && !c->is_main;
    IMT_TRY(pc_walk(c, root, 0, root));
    if (!(c->light && c->big) && c->entries != entries)
        return pc_fail(c, root, "the table says it has %llu records, its leaves hold %llu",
                       (unsigned long long)entries, (unsigned long long)c->entries);
cleanup:
    return err;
}

/* Read and check meta page i (at offset off); returns its MDB_meta. */
static imt_err pc_meta(pc *c, int i, uint64_t off, const uint8_t **out)
{
    if (c->fsize < off + PAGEHDRSZ + META_END) {
        pc_err(c, "%s: not an imgtriage index (data.mdb is too short for an LMDB file)",
                    c->dir);
        return IMT_E_INDEX_FORMAT;
    }
    const uint8_t *m = c->map + off, *mm = m + PAGEHDRSZ;
    if (!(rd16(m + PG_FLAGS) & P_META) || rd32(mm + META_MAGIC) != MDB_MAGIC) {
        pc_err(c, "%s: not an imgtriage index (data.mdb is not an LMDB file)",
                    c->dir);
        return IMT_E_INDEX_FORMAT;
    }
    if (rd32(mm + META_VERSION) != MDB_DATA_VERSION) {
        pc_err(c, "%s: not an imgtriage index (LMDB data version %u)", c->dir,
                    (unsigned)rd32(mm + META_VERSION));
        return IMT_E_INDEX_FORMAT;
    }
    if (rdz(m) != (uint64_t)i) return pc_fail(c, (uint64_t)i, "the meta page says it is page %llu",
                                             (unsigned long long)rdz(m));
    uint32_t ps = rd32(mm + META_DBS); /* mm_psize = mm_dbs[FREE_DBI].md_pad */
    if (ps < MIN_PAGESIZE || ps > MAX_PAGESIZE || (ps & (ps - 1)))
        return pc_fail(c, (uint64_t)i, "a page size of %u bytes", (unsigned)ps);
    if (i == 1 && ps != c->psize)
        return pc_fail(c, 1, "page size %u, meta page 0 says %u", (unsigned)ps, c->psize);
    c->psize = ps;
    *out = m;
    return IMT_OK;
}

/* Walk every tree from meta mm; with sum, hash the structure (both meta
 * pages m0 and m1, then what pc_page hashes, in walk order) into it. */
static imt_err pc_all(pc *c, const uint8_t *mm, const uint8_t *m0, const uint8_t *m1, int write,
                      uint8_t *sum)
{
    imt_err err = IMT_OK;
    unsigned n = 0;
    if (sum) {
        c->md = EVP_MD_CTX_new();
        if (!c->md) return IMT_E_NOMEM;
        if (EVP_DigestInit_ex(c->md, EVP_sha256(), NULL) != 1 ||
            EVP_DigestUpdate(c->md, m0, PAGEHDRSZ + META_END) != 1 ||
            EVP_DigestUpdate(c->md, m1, PAGEHDRSZ + META_END) != 1) {
            err = IMT_E_INTERNAL;
            goto cleanup;
        }
    }
    c->seen[0] = 3; /* the meta pages */
    const uint8_t *fdb = mm + META_DBS, *mdb = mm + META_DBS + DB_SIZE;
    c->is_main = 1;
    IMT_TRY(pc_tree(c, "main", rdz(mdb + DB_ROOT), rd16(mdb + DB_DEPTH), rd16(mdb + DB_FLAGS),
                    rdz(mdb + DB_ENTRIES)));
    c->is_main = 0;
    for (size_t i = 0; i < c->ntables; i++) {
        const pc_table *t = &c->tables[i];
        if (t->flags) {
            c->db = t->name;
            err = pc_fail(c, t->root, "the table has flags 0x%x", t->flags);
            goto cleanup;
        }
        IMT_TRY(pc_tree(c, t->name, t->root, t->depth, 0, t->entries));
    }
    if (write) {
        /* LMDB reads the free-page DB only to allocate pages */
        c->is_free = 1;
        IMT_TRY(pc_tree(c, "free", rdz(fdb + DB_ROOT), rd16(fdb + DB_DEPTH),
                        rd16(fdb + DB_FLAGS), rdz(fdb + DB_ENTRIES)));
    }
    if (sum && EVP_DigestFinal_ex(c->md, sum, &n) != 1) err = IMT_E_INTERNAL;
cleanup:
    EVP_MD_CTX_free(c->md);
    c->md = NULL;
    c->is_main = c->is_free = 0;
    return err;
}

imt_err imt__idx_pagecheck(const char *dir, int write, imt__idx_pagecheck_info *info, char *errbuf,
                      size_t errlen)
{
    return imt__idx_pagecheck_ex(dir, write, 0, info, errbuf, errlen);
}

imt_err imt__idx_pagecheck_ex(const char *dir, int write, int use_record,
                              imt__idx_pagecheck_info *info, char *errbuf, size_t errlen)
{
    imt_err err = IMT_OK;
    char *data = NULL;
    pc *c = imt__calloc(1, sizeof *c);
    const uint8_t *m0, *m1;
    if (!c) return IMT_E_NOMEM;
    c->dir = dir;
    c->err = errbuf;
    c->errlen = errlen;
    c->write = write;
    c->fd = -1;
    memset(info, 0, sizeof *info);
    size_t dl = strlen(dir) + 16;
    data = imt__malloc(dl);
    if (!data) {
        err = IMT_E_NOMEM;
        goto cleanup;
    }
    snprintf(data, dl, "%s/data.mdb", dir);
    c->fd = open(data, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (c->fd < 0 || fstat(c->fd, &st) != 0) {
        int e = errno;
        pc_err(c, "%s: cannot read data.mdb: %s", dir, strerror(e));
        err = e == ENOENT ? IMT_E_NOT_FOUND : IMT_E_IO;
        goto cleanup;
    }
    c->fsize = (uint64_t)st.st_size;
    info->file_size = c->fsize;
    if (c->fsize == 0) {
        /* LMDB writes a new environment into an empty file */
        info->empty = 1;
        goto cleanup;
    }
    if (c->fsize > SIZE_MAX) {
        pc_err(c, "%s: data.mdb is too large for this platform", dir);
        err = IMT_E_TOO_LARGE;
        goto cleanup;
    }
    /* Our own map of exactly the file, read only at offsets a check has
     * shown to be inside it (metas, branch pages, overflow heads). */
    void *mp = mmap(NULL, (size_t)c->fsize, PROT_READ, MAP_SHARED, c->fd, 0);
    if (mp == MAP_FAILED) {
        int e = errno;
        pc_err(c, "%s: cannot map data.mdb: %s", dir, strerror(e));
        err = e == ENOMEM ? IMT_E_NOMEM : IMT_E_IO;
        goto cleanup;
    }
    c->map = mp;
    IMT_TRY(pc_meta(c, 0, 0, &m0));
    IMT_TRY(pc_meta(c, 1, c->psize, &m1));
    /* the meta LMDB reads: the later one, meta 0 on a tie */
    uint64_t t0 = rdz(m0 + PAGEHDRSZ + META_TXNID), t1 = rdz(m1 + PAGEHDRSZ + META_TXNID);
    const uint8_t *mm = (t1 > t0 ? m1 : m0) + PAGEHDRSZ;
    c->txnid = t1 > t0 ? t1 : t0;
    if ((c->txnid & 1) != (t1 > t0)) {
        /* transaction N writes meta page N % 2, and LMDB's transactions
         * read meta page (txnid & 1), not the one it picked at open */
        err = pc_fail(c, t1 > t0, "meta page %d holds transaction %llu", (int)(t1 > t0),
                      (unsigned long long)c->txnid);
        goto cleanup;
    }
    uint64_t last = rdz(mm + META_LASTPG);
    if (last < 1 || last >= c->fsize / c->psize) {
        c->db = NULL;
        err = pc_fail(c, t1 > t0, "its last page %llu is past the end of the file "
                      "(%llu bytes: data.mdb is truncated)", (unsigned long long)last,
                      (unsigned long long)c->fsize);
        goto cleanup;
    }
    c->npg = last + 1;
    c->batch_pages = PC_BATCH / c->psize ? PC_BATCH / c->psize : 1;
    c->batch = imt__malloc((size_t)c->batch_pages * c->psize);
    c->kids = imt__calloc(c->psize / 2, sizeof *c->kids);
    if (!c->batch || !c->kids) {
        err = IMT_E_NOMEM;
        goto cleanup;
    }
    info->psize = c->psize;
    info->last_pgno = last;
    c->seen = imt__calloc((size_t)(c->npg / 8 + 1), 1);
    if (!c->seen) {
        err = IMT_E_NOMEM;
        goto cleanup;
    }
    if (use_record == 3 && !write) {
        /* the light walk without a record: for the fuzz target, which
         * cannot make a record match a hostile file */
        c->light = 1;
        err = pc_all(c, mm, m0, m1, write, info->key.structure);
        if (err) goto cleanup;
        info->pages_read = c->pages_read;
        goto cleanup;
    }
    if (use_record && !write) {
        imt__idx_vkey *k = &info->key;
        imt__idx_vkey_from_stat(k, &st); /* its size is c->fsize */
        k->txnid = c->txnid;
        k->last_pgno = last;
        k->psize = c->psize;
        if (use_record == 2 && imt__idx_vcache_load(k, &info->rec)) {
            /* the record matches the file's identity: check and hash the
             * structure only; a hash unlike the record's means a change
             * the identity missed: check everything */
            c->light = 1;
            err = pc_all(c, mm, m0, m1, write, info->key.structure);
            if (err == IMT_OK && !memcmp(info->key.structure, info->rec.key.structure, 32)) {
                info->from_record = 1;
                info->pages_read = c->pages_read;
                goto cleanup;
            }
            c->light = 0;
            c->pages_read = 0;
            c->ntables = 0;
            memset(c->seen, 0, (size_t)(c->npg / 8 + 1));
        }
    }
    err = pc_all(c, mm, m0, m1, write, use_record && !write ? info->key.structure : NULL);
    if (err) goto cleanup;
    info->pages_read = c->pages_read;
cleanup:
    imt__free(data);
    if (c->fd >= 0) close(c->fd);
    if (c->map) munmap((void *)c->map, (size_t)c->fsize);
    imt__free(c->batch);
    imt__free(c->kids);
    imt__free(c->seen);
    imt__free(c);
    return err;
}
