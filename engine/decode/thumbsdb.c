/* engine/decode/thumbsdb.c -- the thumbnails of a Windows Thumbs.db
 * (Windows 98 to XP, and later Windows on network folders).
 *
 * A Thumbs.db is an OLE2 compound file ([MS-CFB]), read here from memory
 * (the file gathered whole, at most the caller's bound). Debian's two
 * readers were tried first and both leak on damaged files (LeakSanitizer,
 * within a minute of fuzzing the seeds in tests/fuzz/seeds/thumbsdb):
 * libolecf 20181231 in libolecf_io_handle_read_ssat, libgsf 1.14.50 a
 * directory entry's name; a leak per damaged file is unbounded memory over
 * a disk of Office documents (all OLE2), so the few structures a Thumbs.db
 * needs are read by this file instead: the header, the FAT (from the
 * header's DIFAT and the DIFAT chain), the directory, the mini FAT and the
 * mini stream. Every sector number is checked against the file, every
 * chain is cut at as many steps as the file has sectors (a loop is an
 * error), every size against the file's size. test_thumbcache checks the
 * streams read here against libolecf's on the generated Thumbs.db.
 *
 * Inside a Thumbs.db:
 *   - "Catalog": a header (its own size, 16; version; entry count;
 *     thumbnail width and height; little-endian) and one record per
 *     thumbnail: its size, the entry id, a FILETIME and the original file
 *     name (UTF-16, NUL-terminated).
 *   - one stream per entry, named by the id's decimal digits reversed (id
 *     12 -> "21"), holding a small header (its own size first; 12 or 24
 *     bytes seen) and then the picture, a JPEG.
 * Every catalog record is checked against the stream's bounds; a record
 * whose stream is missing, too large or without a picture is reported with
 * that status, not skipped. At most TDB_MAX_RECORDS records are read. */
#include "decode.h"

#include <stdio.h>
#include <string.h>

#define TDB_MAX_RECORDS 65536u
#define TDB_MAX_CATALOG ((size_t)16 << 20)

#define CFB_FREE 0xFFFFFFFFu
#define CFB_END 0xFFFFFFFEu
#define CFB_NONE 0xFFFFFFFFu

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

typedef struct cfb {
    const uint8_t *f;
    size_t len;
    size_t ss;              /* sector size */
    size_t nsec;            /* sectors the file holds (the last may be short) */
    uint32_t *fat;
    size_t nfat;            /* entries */
    uint32_t *minifat;
    size_t nminifat;
    uint8_t *dir;           /* the directory stream */
    size_t ndir;            /* entries */
    uint8_t *mini;          /* the mini stream (the root entry's data) */
    size_t mini_len;
} cfb;

/* The bytes of a regular chain from start, at most size bytes (all of them:
 * a chain shorter than size is an error), into a fresh buffer. */
static imt_err read_chain(const cfb *c, uint32_t start, size_t size, uint8_t **out)
{
    *out = NULL;
    uint8_t *b = imt__malloc(size ? size : 1);
    if (!b) return IMT_E_NOMEM;
    size_t got = 0, steps = 0;
    uint32_t s = start;
    while (got < size) {
        if (s >= c->nsec || s >= c->nfat || ++steps > c->nsec) {
            imt__free(b);
            return IMT_E_CORRUPT;
        }
        size_t off = ((size_t)s + 1) * c->ss;
        size_t k = size - got < c->ss ? size - got : c->ss;
        if (off > c->len || c->len - off < k) {
            imt__free(b);
            return IMT_E_CORRUPT;
        }
        memcpy(b + got, c->f + off, k);
        got += k;
        s = c->fat[s];
    }
    *out = b;
    return IMT_OK;
}

/* A chain's length in sectors (0 on a loop or a sector outside the file). */
static size_t chain_len(const cfb *c, uint32_t start)
{
    size_t n = 0;
    for (uint32_t s = start; s != CFB_END; s = c->fat[s]) {
        if (s >= c->nsec || s >= c->nfat || ++n > c->nsec) return 0;
    }
    return n;
}

static void cfb_free(cfb *c)
{
    imt__free(c->fat);
    imt__free(c->minifat);
    imt__free(c->dir);
    imt__free(c->mini);
}

/* Header, FAT, directory, mini FAT and mini stream. */
static imt_err cfb_open(cfb *c, const uint8_t *f, size_t len, char *why, size_t cap)
{
    memset(c, 0, sizeof *c);
    c->f = f;
    c->len = len;
    if (len < 512 || memcmp(f, "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 8)) {
        imt__set_detail(why, cap, "no OLE2 header");
        return IMT_E_CORRUPT;
    }
    unsigned shift = le16(f + 30);
    if ((shift != 9 && shift != 12) || le16(f + 32) != 6 || le16(f + 28) != 0xFFFE) {
        imt__set_detail(why, cap, "OLE2 header with unknown sector sizes");
        return IMT_E_CORRUPT;
    }
    c->ss = (size_t)1 << shift;
    c->nsec = len > c->ss ? (len - c->ss + c->ss - 1) / c->ss : 0;
    uint32_t nfatsec = le32(f + 44), dir0 = le32(f + 48), mf0 = le32(f + 60),
             nmf = le32(f + 64), difat = le32(f + 68), ndifat = le32(f + 72);
    if (nfatsec == 0 || nfatsec > c->nsec || ndifat > c->nsec || nmf > c->nsec) {
        imt__set_detail(why, cap, "OLE2 header with impossible table sizes");
        return IMT_E_CORRUPT;
    }
    /* the FAT: sector numbers from the header's 109 DIFAT entries, then the
     * DIFAT chain (each sector: ss/4 - 1 entries and the next sector) */
    size_t per = c->ss / 4;
    c->nfat = (size_t)nfatsec * per;
    c->fat = imt__malloc(c->nfat * sizeof *c->fat);
    if (!c->fat) return IMT_E_NOMEM;
    size_t k = 0;
    uint32_t d = difat;
    size_t di = 0, dsteps = 0;
    const uint8_t *dsec = f + 76;
    size_t dn = 109;
    while (k < nfatsec) {
        if (di == dn) { /* the next DIFAT sector */
            if (d >= c->nsec || ++dsteps > ndifat) goto bad_fat;
            dsec = f + ((size_t)d + 1) * c->ss;
            if ((size_t)(dsec - f) + c->ss > len) goto bad_fat;
            dn = per - 1;
            di = 0;
            d = le32(dsec + 4 * dn);
        }
        uint32_t fs = le32(dsec + 4 * di++);
        if (fs >= c->nsec || ((size_t)fs + 1) * c->ss + c->ss > len) goto bad_fat;
        const uint8_t *p = f + ((size_t)fs + 1) * c->ss;
        for (size_t i = 0; i < per; i++) c->fat[k * per + i] = le32(p + 4 * i);
        k++;
    }
    /* the directory */
    size_t nd = chain_len(c, dir0);
    if (!nd) {
        imt__set_detail(why, cap, "OLE2 directory chain broken");
        return IMT_E_CORRUPT;
    }
    imt_err e = read_chain(c, dir0, nd * c->ss, &c->dir);
    if (e) return e;
    c->ndir = nd * c->ss / 128;
    if (c->dir[66] != 5) {
        imt__set_detail(why, cap, "OLE2 directory without its root entry");
        return IMT_E_CORRUPT;
    }
    /* the mini FAT and the mini stream (the root entry's data) */
    if (nmf) {
        size_t n = chain_len(c, mf0);
        if (n < nmf) {
            imt__set_detail(why, cap, "OLE2 mini FAT chain broken");
            return IMT_E_CORRUPT;
        }
        uint8_t *m = NULL;
        if ((e = read_chain(c, mf0, (size_t)nmf * c->ss, &m))) return e;
        c->nminifat = (size_t)nmf * per;
        c->minifat = imt__malloc(c->nminifat * sizeof *c->minifat);
        if (!c->minifat) {
            imt__free(m);
            return IMT_E_NOMEM;
        }
        for (size_t i = 0; i < c->nminifat; i++) c->minifat[i] = le32(m + 4 * i);
        imt__free(m);
    }
    uint64_t rs = le32(c->dir + 120);
    if (shift == 12) rs |= (uint64_t)le32(c->dir + 124) << 32;
    if (rs > len) {
        imt__set_detail(why, cap, "OLE2 mini stream larger than the file");
        return IMT_E_CORRUPT;
    }
    if (rs) {
        if ((e = read_chain(c, le32(c->dir + 116), (size_t)rs, &c->mini))) {
            if (e == IMT_E_CORRUPT) imt__set_detail(why, cap, "OLE2 mini stream chain broken");
            return e;
        }
        c->mini_len = (size_t)rs;
    }
    return IMT_OK;
bad_fat:
    imt__set_detail(why, cap, "OLE2 allocation table outside the file");
    return IMT_E_CORRUPT;
}

static uint8_t upper(uint8_t ch) { return ch >= 'a' && ch <= 'z' ? (uint8_t)(ch - 32) : ch; }

/* The root-level stream named name (ASCII): its directory entry, or -1.
 * The root's children are a binary tree of siblings; every entry is
 * visited at most once. */
static long find_stream(const cfb *c, const char *name)
{
    size_t want = strlen(name);
    uint32_t stack[256];
    size_t sp = 0;
    uint8_t *seen = imt__calloc(c->ndir ? c->ndir : 1, 1);
    if (!seen) return -1;
    long found = -1;
    uint32_t first = le32(c->dir + 76);
    if (first != CFB_NONE) stack[sp++] = first;
    while (sp && found < 0) {
        uint32_t i = stack[--sp];
        if (i >= c->ndir || seen[i]) continue;
        seen[i] = 1;
        const uint8_t *e = c->dir + (size_t)i * 128;
        uint16_t nl = le16(e + 64);
        if (e[66] == 2 && nl == 2 * (want + 1)) {
            size_t k = 0;
            while (k < want && e[2 * k + 1] == 0 && upper(e[2 * k]) == upper((uint8_t)name[k]))
                k++; /* [MS-CFB] compares names in upper case */
            if (k == want && !e[2 * k] && !e[2 * k + 1]) found = (long)i;
        }
        uint32_t l = le32(e + 68), r = le32(e + 72);
        if (l != CFB_NONE && sp < 256) stack[sp++] = l;
        if (r != CFB_NONE && sp < 256) stack[sp++] = r;
    }
    imt__free(seen);
    return found;
}

/* The whole stream of directory entry i, at most max bytes. */
static uint8_t *read_stream(const cfb *c, long i, size_t max, size_t *n, imt_err *st)
{
    const uint8_t *e = c->dir + (size_t)i * 128;
    uint64_t size = le32(e + 120);
    if (c->ss == 4096) size |= (uint64_t)le32(e + 124) << 32;
    uint32_t start = le32(e + 116);
    *n = size > SIZE_MAX ? SIZE_MAX : (size_t)size;
    if (size > max) {
        *st = IMT_E_TOO_LARGE;
        return NULL;
    }
    if (size > c->len) {
        *st = IMT_E_CORRUPT;
        return NULL;
    }
    uint8_t *b = NULL;
    if (size >= 4096) { /* the mini stream cutoff */
        *st = read_chain(c, start, (size_t)size, &b);
        return b;
    }
    b = imt__malloc(size ? (size_t)size : 1);
    if (!b) {
        *st = IMT_E_NOMEM;
        return NULL;
    }
    size_t got = 0, steps = 0;
    uint32_t s = start;
    while (got < size) {
        if (s >= c->nminifat || ++steps > c->nminifat || ((size_t)s + 1) * 64 > c->mini_len) {
            imt__free(b);
            *st = IMT_E_CORRUPT;
            return NULL;
        }
        size_t k = size - got < 64 ? (size_t)size - got : 64;
        memcpy(b + got, c->mini + (size_t)s * 64, k);
        got += k;
        s = c->minifat[s];
    }
    *st = IMT_OK;
    return b;
}

/* The picture inside an entry stream: after the header whose size leads
 * it, else at the first JPEG SOI within the first 64 bytes. */
static int find_picture(const uint8_t *s, size_t n, size_t *at)
{
    if (n >= 12) {
        uint32_t hl = le32(s);
        if (hl >= 12 && hl <= 64 && hl + 3 <= n && s[hl] == 0xFF && s[hl + 1] == 0xD8) {
            *at = hl;
            return 1;
        }
    }
    for (size_t i = 0; i + 3 <= n && i <= 64; i++)
        if (s[i] == 0xFF && s[i + 1] == 0xD8 && s[i + 2] == 0xFF) {
            *at = i;
            return 1;
        }
    return 0;
}

int imt__thumbsdb_read(const uint8_t *file, size_t len, size_t max_data, imt_tdb_fn fn,
                       void *ctx, char *why, size_t cap)
{
    cfb c;
    uint8_t *cat = NULL;
    int is_thumbs = 0;
    why[0] = '\0';
    imt_err e = cfb_open(&c, file, len, why, cap);
    if (e) {
        if (e == IMT_E_NOMEM) imt__set_detail(why, cap, "out of memory");
        goto cleanup;
    }
    long ci = find_stream(&c, "Catalog");
    if (ci < 0) goto cleanup;
    size_t cn = 0;
    cat = read_stream(&c, ci, TDB_MAX_CATALOG, &cn, &e);
    if (!cat || cn < 16) {
        imt__set_detail(why, cap, "its catalog is %s",
                        !cat ? imt_strerror(e) : "shorter than its header");
        goto cleanup;
    }
    is_thumbs = 1;
    size_t at = le16(cat); /* the header's own size */
    if (at < 16 || at > cn) at = 16;
    uint32_t count = le32(cat + 4), index = 0;
    while (at + 16 <= cn && index < count) {
        if (index == TDB_MAX_RECORDS) {
            imt__set_detail(why, cap, "only the first %u catalog records read", TDB_MAX_RECORDS);
            break;
        }
        uint32_t rl = le32(cat + at);
        uint32_t id = le32(cat + at + 4);
        if (rl < 16 || rl > cn - at) {
            imt__set_detail(why, cap, "catalog record %u of %u is damaged: the rest not read",
                            index, count);
            break;
        }
        at += rl;
        /* the stream: the id's digits reversed */
        char name[16], rev[16];
        int k = snprintf(name, sizeof name, "%u", (unsigned)id);
        for (int i = 0; i < k; i++) rev[i] = name[k - 1 - i];
        rev[k] = '\0';
        imt_tdb_entry en = {id, 0, index++, IMT_OK};
        long si = find_stream(&c, rev);
        if (si < 0) {
            en.status = IMT_E_NOT_FOUND;
            fn(ctx, &en, NULL);
            continue;
        }
        size_t sn = 0;
        uint8_t *sb = read_stream(&c, si, max_data, &sn, &en.status);
        size_t pic = 0;
        if (sb && !find_picture(sb, sn, &pic)) en.status = IMT_E_NOT_IMAGE;
        en.size = sb ? sn - pic : sn;
        fn(ctx, &en, sb && en.status == IMT_OK ? sb + pic : NULL);
        imt__free(sb);
    }
    if (index < count && !why[0])
        imt__set_detail(why, cap, "its catalog lists %u records but holds %u", count, index);
cleanup:
    imt__free(cat);
    cfb_free(&c);
    return is_thumbs;
}
