/* engine/report/vics.c -- Project VIC VICS 2.0 case export: one case (the
 * report's) whose Media[] holds one media object per distinct file content
 * (keyed by MD5, else SHA-1, else SHA-256: VICS lists a hash once), with
 * every path that held it (hard links too) in MediaFiles[], so that an
 * examiner continues in Griffeye Analyze or IPED, and `imgtriage index
 * import` reads it back.
 *
 * Category is Project VIC's: it comes only from a match on a list of the
 * projectvic scheme (the most severe alerting one, else informational,
 * else ignorable), and IsPrecategorized says so. A hit on a list of another
 * scheme (custom, caid) gets no Category: its numbers mean something else,
 * and a wrong VICS category is worse than none.
 *
 * Memory: the media objects and their paths are kept until the end (one
 * per distinct file read), then written in first-seen order. */
#include "report.h"

#include <string.h>

typedef struct vmedia {
    uint8_t key[33];           /* key[0]: digest kind, then the digest */
    imt_hash_result h;
    uint64_t size;
    int32_t category;          /* -1: none */
    int cat_rank;
    char **paths;
    uint8_t *unalloc;          /* per path: a carved item (not a file) */
    size_t n_paths, cap_paths;
} vmedia;

/* A path already listed, for the hard links that name it later. */
typedef struct pent {
    const char *path;          /* owned by its media's paths[] */
    size_t media;
} pent;

typedef struct vstate {
    vmedia *m;
    size_t n, cap;
    size_t *slots;             /* open addressing: media index + 1, 0 empty */
    size_t nslots;
    pent *pt;                  /* open addressing by path; path NULL empty */
    size_t npt, npt_slots;
} vstate;

static uint64_t str_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    while (*s) h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

static int pt_rehash(vstate *s, size_t nslots)
{
    pent *np = imt__calloc(nslots, sizeof *np);
    if (!np) return 0;
    for (size_t i = 0; i < s->npt_slots; i++) {
        if (!s->pt[i].path) continue;
        size_t j = (size_t)str_hash(s->pt[i].path) & (nslots - 1);
        while (np[j].path) j = (j + 1) & (nslots - 1);
        np[j] = s->pt[i];
    }
    imt__free(s->pt);
    s->pt = np;
    s->npt_slots = nslots;
    return 1;
}

/* The media index holding path, or (size_t)-1. */
static size_t pt_find(const vstate *s, const char *path)
{
    size_t j = (size_t)str_hash(path) & (s->npt_slots - 1);
    for (; s->pt[j].path; j = (j + 1) & (s->npt_slots - 1))
        if (!strcmp(s->pt[j].path, path)) return s->pt[j].media;
    return (size_t)-1;
}

static int pt_add(vstate *s, const char *path, size_t media)
{
    if (2 * (s->npt + 1) > s->npt_slots && !pt_rehash(s, 2 * s->npt_slots)) return 0;
    size_t j = (size_t)str_hash(path) & (s->npt_slots - 1);
    while (s->pt[j].path) j = (j + 1) & (s->npt_slots - 1);
    s->pt[j] = (pent){path, media};
    s->npt++;
    return 1;
}

/* Add path to media v (index mi). */
static imt_err add_path(vstate *s, vmedia *v, size_t mi, const char *path, int unalloc)
{
    if (v->n_paths == v->cap_paths) {
        size_t nc = v->cap_paths ? v->cap_paths * 2 : 2, bytes;
        if (!imt__mul_ok(nc, sizeof *v->paths, &bytes)) return IMT_E_NOMEM;
        char **np = imt__realloc(v->paths, bytes);
        if (!np) return IMT_E_NOMEM;
        v->paths = np;
        uint8_t *nu = imt__realloc(v->unalloc, nc);
        if (!nu) return IMT_E_NOMEM;
        v->unalloc = nu;
        v->cap_paths = nc;
    }
    v->unalloc[v->n_paths] = unalloc != 0;
    if (!(v->paths[v->n_paths] = imt__strdup(path))) return IMT_E_NOMEM;
    v->n_paths++;
    return pt_add(s, v->paths[v->n_paths - 1], mi) ? IMT_OK : IMT_E_NOMEM;
}

static uint64_t key_hash(const uint8_t *k)
{
    uint64_t x;
    memcpy(&x, k + 1, 8); /* a digest's bytes are already uniform */
    return x ^ k[0];
}

static int make_key(const imt_hash_result *h, uint8_t *k)
{
    memset(k, 0, 33);
    if (h->digests & IMT_DIGEST_MD5) { k[0] = 1; memcpy(k + 1, h->md5, 16); }
    else if (h->digests & IMT_DIGEST_SHA1) { k[0] = 2; memcpy(k + 1, h->sha1, 20); }
    else if (h->digests & IMT_DIGEST_SHA256) { k[0] = 3; memcpy(k + 1, h->sha256, 32); }
    else return 0;
    return 1;
}

static int rehash(vstate *s, size_t nslots)
{
    size_t *ns = imt__calloc(nslots, sizeof *ns);
    if (!ns) return 0;
    for (size_t i = 0; i < s->n; i++) {
        size_t j = (size_t)key_hash(s->m[i].key) & (nslots - 1);
        while (ns[j]) j = (j + 1) & (nslots - 1);
        ns[j] = i + 1;
    }
    imt__free(s->slots);
    s->slots = ns;
    s->nslots = nslots;
    return 1;
}

static imt_err vics_begin(imt__conv *c)
{
    vstate *s = imt__calloc(1, sizeof *s);
    if (!s || !rehash(s, 1024) || !pt_rehash(s, 1024)) {
        if (s) imt__free(s->slots);
        imt__free(s);
        return IMT_E_NOMEM;
    }
    c->st = s;
    return IMT_OK;
}

/* The rank of a match as the source of a VICS category (0: none). */
static int cat_rank(const imt_scan_match *m)
{
    if (strcmp(m->scheme, "projectvic") != 0 || m->category < 0) return 0;
    int d = m->disposition == IMT_DISP_ALERT ? 3 : m->disposition == IMT_DISP_INFO ? 2 : 1;
    return d * 100 + imt__severity(m->scheme, m->category);
}

static imt_err vics_record(imt__conv *c, const imt_scan_record *r)
{
    vstate *s = c->st;
    uint8_t key[33];
    if (r->type == IMT_ENTRY_HARDLINK && r->hardlink_of) {
        /* another name of a file read earlier: one more MediaFile of it */
        size_t mi = pt_find(s, r->hardlink_of);
        return mi == (size_t)-1 ? IMT_OK : add_path(s, &s->m[mi], mi, r->path, 0);
    }
    if (!r->hash || !make_key(r->hash, key)) return IMT_OK;
    size_t j = (size_t)key_hash(key) & (s->nslots - 1);
    while (s->slots[j] && memcmp(s->m[s->slots[j] - 1].key, key, 33)) j = (j + 1) & (s->nslots - 1);
    vmedia *v;
    if (s->slots[j]) {
        v = &s->m[s->slots[j] - 1];
    } else {
        if (s->n == s->cap) {
            size_t nc = s->cap ? s->cap * 2 : 256, bytes;
            if (!imt__mul_ok(nc, sizeof *s->m, &bytes)) return IMT_E_NOMEM;
            vmedia *nm = imt__realloc(s->m, bytes);
            if (!nm) return IMT_E_NOMEM;
            s->m = nm;
            s->cap = nc;
        }
        v = &s->m[s->n];
        memset(v, 0, sizeof *v);
        memcpy(v->key, key, 33);
        v->h = *r->hash;
        v->size = r->hash->file_size;
        v->category = -1;
        s->slots[j] = ++s->n;
        if (2 * s->n > s->nslots && !rehash(s, 2 * s->nslots)) return IMT_E_NOMEM;
    }
    for (size_t i = 0; i < r->n_matches; i++) {
        int rk = cat_rank(&r->matches[i]);
        if (rk > v->cat_rank) {
            v->cat_rank = rk;
            v->category = r->matches[i].category;
        }
    }
    return add_path(s, v, (size_t)(v - s->m), r->path, r->carved != NULL);
}

static void put_media(imt__buf *b, const vmedia *v, size_t id)
{
    const imt_hash_result *h = &v->h;
    imt__buf_printf(b, "{\"MediaID\":%zu", id);
    if (v->category >= 0) imt__buf_printf(b, ",\"Category\":%d", (int)v->category);
    if (h->digests & IMT_DIGEST_MD5) {
        imt__buf_puts(b, ",\"MD5\":\"");
        imt__buf_hex(b, h->md5, 16);
        imt__buf_puts(b, "\"");
    }
    if (h->digests & IMT_DIGEST_SHA1) {
        imt__buf_puts(b, ",\"SHA1\":\"");
        imt__buf_hex(b, h->sha1, 20);
        imt__buf_puts(b, "\"");
    }
    imt__buf_printf(b, ",\"MediaSize\":%llu,\"IsPrecategorized\":%s,\"MediaFiles\":[",
                    (unsigned long long)v->size, v->category >= 0 ? "true" : "false");
    for (size_t i = 0; i < v->n_paths; i++) {
        const char *p = v->paths[i], *slash = strrchr(p, '/');
        imt__buf_puts(b, i ? ",{\"FileName\":" : "{\"FileName\":");
        imt__buf_json_str(b, slash ? slash + 1 : p);
        imt__buf_puts(b, ",\"FilePath\":");
        if (slash) {
            /* the folder, with its '/' (json_str needs a string: cut a copy) */
            size_t n = (size_t)(slash - p) + 1;
            char *dir = imt__malloc(n + 1);
            if (!dir) { b->oom = 1; return; }
            memcpy(dir, p, n);
            dir[n] = '\0';
            imt__buf_json_str(b, dir);
            imt__free(dir);
        } else {
            imt__buf_puts(b, "\"\"");
        }
        imt__buf_puts(b, v->unalloc[i] ? ",\"Unallocated\":true}" : ",\"Unallocated\":false}");
    }
    imt__buf_puts(b, "]");
    int alt = 0;
    if (h->has_pdq) {
        char hx[IMT_PDQ_HEX_LEN + 1];
        imt_pdq_to_hex(&h->pdq[0], hx);
        imt__buf_printf(b, ",\"AlternativeHashes\":[{\"HashName\":\"PDQ\",\"HashValue\":\"%s\"}", hx);
        alt = 1;
    }
    if (h->digests & IMT_DIGEST_SHA256) {
        imt__buf_puts(b, alt ? ",{" : ",\"AlternativeHashes\":[{");
        imt__buf_puts(b, "\"HashName\":\"SHA256\",\"HashValue\":\"");
        imt__buf_hex(b, h->sha256, 32);
        imt__buf_puts(b, "\"}");
        alt = 1;
    }
    if (alt) imt__buf_puts(b, "]");
    imt__buf_puts(b, "}");
}

static imt_err vics_end(imt__conv *c)
{
    vstate *s = c->st;
    imt_err err = IMT_OK;
    if (!s) return IMT_OK;
    if (!c->failed) {
        imt__buf *b = &c->b;
        const char *cs = imt__jstr(c->header, "case"), *ver = imt__jstr(c->header, "version");
        imt__buf_puts(b, "{\"@odata.context\":\"http://github.com/VICSDATAMODEL/ProjectVic/"
                         "DataModels/2.0.xml/US/$metadata#Cases\",\"value\":[{\"CaseNumber\":");
        imt__put_str_or_null(b, cs);
        imt__buf_puts(b, ",\"SourceApplicationName\":\"imgtriage\",\"SourceApplicationVersion\":");
        imt__put_str_or_null(b, ver);
        imt__buf_puts(b, ",\"Media\":[\n");
        for (size_t i = 0; i < s->n && !err; i++) {
            put_media(b, &s->m[i], i + 1);
            imt__buf_puts(b, i + 1 < s->n ? ",\n" : "\n");
            err = imt__conv_flush(c);
        }
        if (!err) {
            imt__buf_puts(b, "]}]}\n");
            err = imt__conv_flush(c);
        }
    }
    for (size_t i = 0; i < s->n; i++) {
        for (size_t k = 0; k < s->m[i].n_paths; k++) imt__free(s->m[i].paths[k]);
        imt__free(s->m[i].paths);
        imt__free(s->m[i].unalloc);
    }
    imt__free(s->m);
    imt__free(s->slots);
    imt__free(s->pt);
    imt__free(s);
    c->st = NULL;
    return err;
}

const imt__writer imt__writer_vics = {vics_begin, vics_record, vics_end};
