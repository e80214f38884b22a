/* engine/index/parse_vics.c -- Project VIC VICS JSON (1.x: "odata.metadata",
 * value[] of cases with Media[]; 2.0: "@odata.context", value[] of media)
 * and our own JSON-lines export, parsed streaming with yajl. The input is
 * fed one line at a time so every callback knows its line number. */
#include "index.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yajl/yajl_parse.h>

enum ctx {
    C_OTHER = 0, C_ROOT, C_VALUE_ARR, C_ITEM, C_MEDIA_ARR, C_MEDIA, C_ALT_ARR, C_ALT,
    C_INV_ARR, C_INV, C_MEMB_ARR, C_MEMB /* our export: its list inventory, memberships */
};

enum field {
    F_NONE = 0, F_MD5, F_SHA1, F_SHA256, F_PDQ, F_QUALITY, F_CATEGORY, F_LABEL, F_ID,
    F_VALUE, F_MEDIA, F_ALT, F_HASHNAME, F_HASHVALUE, F_ODATA1, F_ODATA2, F_EXPORT, F_LISTS,
    F_L_ID, F_L_NAME, F_L_VERSION, F_L_FORMAT, F_L_SCHEME, F_L_GOOD, F_L_POLICY, F_L_SHA,
    F_L_TIME, F_L_ENTRIES, F_M_LIST
};

/* The export version this parser reads (export.c writes it). */
#define EXPORT_VERSION 2
/* Longest label or external id kept: a longer one is an error, never cut. */
#define SLEN (IDX_MAX_STR + 1)

#define MAXDEPTH 64
#define FLEN 160

typedef struct media { /* the large label and id last: media_begin clears
                          only their first byte */
    int active;
    uint64_t line;
    char md5[FLEN], sha1[FLEN], sha256[FLEN], pdq[FLEN];
    uint64_t l_md5, l_sha1, l_sha256, l_pdq;
    int quality;
    int32_t category;
    char alt_name[64], alt_value[FLEN];
    uint64_t l_alt;
    int is_header;
    int had_media;
    char label[SLEN], id[SLEN];
} media;

/* A membership of an export's entry, strings in vstate.mstr. */
typedef struct memb {
    int64_t list;           /* the exported list id; -1 until given */
    int32_t category;
    size_t label, id;       /* offsets into mstr */
} memb;

typedef struct vstate {
    imt__idx_sink *s;
    int inventory;          /* the export's header carried "lists" */
    uint32_t src[IDX_MAX_LISTS]; /* exported ids of the inventory's lists */
    size_t nsrc;
    imt__idx_list_meta lm;       /* the inventory list being read */
    uint32_t lm_seen;       /* bit per field read */
    memb *mb;               /* the current entry's memberships */
    size_t nmb, capmb;
    memb mcur;
    char *mstr;
    size_t nmstr, capmstr;
    int jsonl;
    int version;            /* 1 or 2 when seen */
    int depth;
    uint8_t ctx[MAXDEPTH];
    int field;              /* the key just read, in the innermost map */
    int saw_value;
    uint64_t line;
    imt_err err;            /* first error (stops the parse) */
    media m[2];             /* [0]: item level, [1]: Media[] level */
} vstate;

static media *cur_media(vstate *v)
{
    if (v->depth >= 1 && (v->ctx[v->depth - 1] == C_MEDIA || v->ctx[v->depth - 1] == C_ALT ||
                          v->ctx[v->depth - 1] == C_ALT_ARR)) {
        /* the innermost media: the Media[] level when inside it */
        for (int d = v->depth - 1; d >= 0; d--) {
            if (v->ctx[d] == C_MEDIA) return &v->m[1];
            if (v->ctx[d] == C_ITEM) return &v->m[0];
        }
    }
    if (v->depth >= 1 && v->ctx[v->depth - 1] == C_ITEM) return &v->m[0];
    for (int d = v->depth - 1; d >= 0; d--) {
        if (v->ctx[d] == C_MEDIA) return &v->m[1];
        if (v->ctx[d] == C_ITEM) return &v->m[0];
    }
    return NULL;
}

static int shape(vstate *v, const char *fmt, const char *a)
{
    if (v->err == IMT_OK)
        v->err = imt__idx_sink_fail_at(v->s, v->line, IMT_E_JSON_SHAPE, "%s%s", fmt, a ? a : "");
    return 0;
}

static int key_is(const unsigned char *k, size_t n, const char *name)
{
    return strlen(name) == n && strncasecmp((const char *)k, name, n) == 0;
}

static void copy_str(char *dst, size_t cap, const unsigned char *s, size_t n)
{
    if (n >= cap) n = cap - 1;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* Copy a JSON string, turning \udc80..\udcff (which yajl hands over as
 * ED B2 80 .. ED B3 BF) back into the single bytes 0x80..0xFF that our
 * writers escaped that way (common/text.h), so non-UTF-8 names and ids
 * come back exactly. Returns the length, or -1 when it does not fit cap. */
static long unesc(char *dst, size_t cap, const unsigned char *s, size_t n)
{
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c == 0xED && i + 2 < n && (s[i + 1] == 0xB2 || s[i + 1] == 0xB3) &&
            (s[i + 2] & 0xC0) == 0x80) {
            c = (unsigned char)(((s[i + 1] & 0x3) << 6) | (s[i + 2] & 0x3F));
            i += 2;
        }
        if (w + 1 >= cap) return -1;
        dst[w++] = (char)c;
    }
    dst[w] = '\0';
    return (long)w;
}

/* A string field into dst; a too-long one stops the import (truncating
 * would change an id). */
static int take_str(vstate *v, char *dst, size_t cap, const char *txt, size_t n, const char *what)
{
    if (unesc(dst, cap, (const unsigned char *)txt, n) >= 0) return 1;
    if (v->err == IMT_OK)
        v->err = imt__idx_sink_bad(v->s, v->line, IMT_E_PARSE, "%s is longer than %zu bytes", what, cap - 1);
    return v->err == IMT_OK;
}

/* Append a string to mstr; its offset in *off. */
static int mstr_add(vstate *v, const char *txt, size_t n, size_t *off)
{
    if (v->nmstr + n + 1 > v->capmstr) {
        size_t cap = v->capmstr ? v->capmstr : 1024;
        while (cap < v->nmstr + n + 1) cap *= 2;
        char *p = imt__realloc(v->mstr, cap);
        if (!p) {
            if (v->err == IMT_OK) v->err = IMT_E_NOMEM;
            return 0;
        }
        v->mstr = p;
        v->capmstr = cap;
    }
    long k = unesc(v->mstr + v->nmstr, n + 1, (const unsigned char *)txt, n);
    *off = v->nmstr;
    v->nmstr += (size_t)k + 1;
    return 1;
}

/* ---- emitting a media object ------------------------------------------ */
static imt_err emit(vstate *v, media *m)
{
    imt__idx_sink *s = v->s;
    imt__idx_rec r;
    memset(&r, 0, sizeof r);
    r.quality = (int8_t)m->quality;
    r.category = m->category;
    r.line = m->line;
    struct { const char *txt; uint64_t line; uint8_t *out; size_t nb; unsigned kb; const char *what; } f[4] = {
        {m->pdq, m->l_pdq, r.pdq, 32, KB_PDQ, "a PDQ hash"},
        {m->md5, m->l_md5, r.md5, 16, KB_MD5, "an MD5"},
        {m->sha1, m->l_sha1, r.sha1, 20, KB_SHA1, "a SHA-1"},
        {m->sha256, m->l_sha256, r.sha256, 32, KB_SHA256, "a SHA-256"},
    };
    for (int i = 0; i < 4; i++) {
        if (!f[i].txt[0]) continue;
        size_t n = strlen(f[i].txt);
        imt_err e = imt_hex_decode(f[i].out, f[i].nb, f[i].txt, n);
        if (e == IMT_E_HASH_LENGTH)
            return imt__idx_sink_bad(s, f[i].line, e, "%s must have %zu hex digits, '%.80s' has %zu",
                                f[i].what, 2 * f[i].nb, f[i].txt, n);
        if (e != IMT_OK)
            return imt__idx_sink_bad(s, f[i].line, e, "%s '%.80s' has a character that is not hex",
                                f[i].what, f[i].txt);
        r.kinds |= (uint8_t)f[i].kb;
    }
    if (!r.kinds)
        return imt__idx_sink_bad(s, m->line, IMT_E_JSON_SHAPE,
                            "a media object without MD5, SHA1, SHA256 or PDQ");
    if (!v->inventory) return imt__idx_sink_add(s, &r, m->label, m->id);
    /* an export with its inventory: the memberships are in lists[] */
    if (!v->nmb || v->nmb > 65535)
        return imt__idx_sink_bad(s, m->line, IMT_E_JSON_SHAPE, "an entry needs 1 to 65535 lists[] memberships");
    imt__idx_member_in *in = imt__malloc(v->nmb * sizeof *in);
    if (!in) return IMT_E_NOMEM;
    for (size_t i = 0; i < v->nmb; i++) {
        size_t slot = 0;
        while (slot < v->nsrc && v->src[slot] != v->mb[i].list) slot++;
        if (slot == v->nsrc) {
            imt__free(in);
            return imt__idx_sink_bad(s, m->line, IMT_E_JSON_SHAPE,
                                "a membership names list %lld, not in the export's \"lists\"",
                                (long long)v->mb[i].list);
        }
        in[i].slot = (uint32_t)slot;
        in[i].category = v->mb[i].category;
        in[i].label = v->mstr + v->mb[i].label;
        in[i].ext = v->mstr + v->mb[i].id;
    }
    imt_err e = imt__idx_sink_add_members(s, &r, v->nmb, in);
    imt__free(in);
    return e;
}

static void media_begin(vstate *v, media *m)
{
    memset(m, 0, offsetof(media, label));
    m->label[0] = m->id[0] = '\0';
    m->active = 1;
    m->line = v->line;
    m->quality = -1;
    m->category = -1;
}

/* ---- the inventory of an export ----------------------------------------- */
static int inv_scalar(vstate *v, int f, const char *txt, size_t n, int is_string, int is_int,
                      long long iv)
{
    imt__idx_list_meta *l = &v->lm;
    struct { int f; char *dst; size_t cap; } strs[] = {
        {F_L_NAME, l->name, sizeof l->name},       {F_L_VERSION, l->version, sizeof l->version},
        {F_L_FORMAT, l->format, sizeof l->format}, {F_L_SCHEME, l->scheme, sizeof l->scheme},
        {F_L_POLICY, l->policy, sizeof l->policy}, {F_L_SHA, l->file_sha256, sizeof l->file_sha256},
    };
    if (f == F_NONE) return 1;
    v->lm_seen |= 1u << (f - F_L_ID);
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        if (strs[i].f != f) continue;
        if (!is_string) return shape(v, "a list's name, version, format, scheme, policy and "
                                        "file_sha256 must be strings", NULL);
        return take_str(v, strs[i].dst, strs[i].cap, txt, n, "a list's field");
    }
    if (f == F_L_GOOD) {
        if (is_string || is_int || (n != 4 && n != 5)) return shape(v, "known_good must be true or false", NULL);
        l->known_good = n == 4;
        return 1;
    }
    if (!is_int || iv < 0) return shape(v, "a list's id, import_time and entries must be integers", NULL);
    if (f == F_L_ID) {
        if (iv < 1 || iv > UINT32_MAX) return shape(v, "a list id must be 1 or more", NULL);
        l->src_id = (uint32_t)iv;
    } else if (f == F_L_TIME) l->import_time = iv;
    else if (f == F_L_ENTRIES) l->entries = (uint64_t)iv;
    return 1;
}

/* The end of one list of the inventory: complete, or the import stops. */
static int inv_end(vstate *v)
{
    imt__idx_list_meta *l = &v->lm;
    uint32_t all = 0;
    for (int f = F_L_ID; f <= F_L_ENTRIES; f++) all |= 1u << (f - F_L_ID);
    if ((v->lm_seen & all) != all)
        return shape(v, "a list of the inventory needs id, name, version, format, scheme, "
                        "known_good, policy, file_sha256, import_time and entries", NULL);
    if (!imt__idx_policy_valid(l->policy)) return shape(v, "a list's policy is not a canonical policy: ", l->policy);
    size_t hl = strlen(l->file_sha256);
    if (hl != 64 || strspn(l->file_sha256, "0123456789abcdef") != 64)
        return shape(v, "a list's file_sha256 must be 64 lowercase hex digits", NULL);
    for (size_t i = 0; i < v->nsrc; i++)
        if (v->src[i] == l->src_id) return shape(v, "the inventory names a list id twice", NULL);
    if (v->nsrc >= IDX_MAX_LISTS) return shape(v, "too many lists in the inventory", NULL);
    imt_err e = imt__idx_sink_add_list(v->s, l);
    if (e != IMT_OK) {
        if (v->err == IMT_OK) v->err = e;
        return 0;
    }
    v->src[v->nsrc++] = l->src_id;
    return 1;
}

/* ---- callbacks ---------------------------------------------------------- */
static int scalar(vstate *v, const char *txt, size_t n, int is_string, int is_int, long long iv)
{
    int f = v->field;
    v->field = F_NONE;
    if (v->depth < 1) {
        if (v->jsonl) return shape(v, "a JSON line must be an object", NULL);
        return shape(v, "the top level must be an object", NULL);
    }
    int c = v->ctx[v->depth - 1];
    if (c == C_VALUE_ARR || c == C_MEDIA_ARR)
        return shape(v, c == C_VALUE_ARR ? "value[] must hold objects" : "Media[] must hold objects", NULL);
    if (c == C_ALT_ARR) return shape(v, "AlternativeHashes[] must hold objects", NULL);
    if (c == C_INV_ARR || c == C_MEMB_ARR) return shape(v, "\"lists\" must hold objects", NULL);
    if (c == C_INV) return inv_scalar(v, f, txt, n, is_string, is_int, iv);
    if (c == C_MEMB) {
        if (f == F_M_LIST) {
            if (!is_int || iv < 1 || iv > UINT32_MAX) return shape(v, "\"list\" must be a list id", NULL);
            v->mcur.list = iv;
        } else if (f == F_CATEGORY) {
            if (is_int && iv >= 0 && iv <= INT32_MAX) v->mcur.category = (int32_t)iv;
            else if (!is_string && n == 4 && !memcmp(txt, "null", 4)) v->mcur.category = -1;
            else return shape(v, "a membership's category must be a number or null", NULL);
        } else if (f == F_LABEL || f == F_ID) {
            if (!is_string) return shape(v, "a membership's label and id must be strings", NULL);
            return mstr_add(v, txt, n, f == F_LABEL ? &v->mcur.label : &v->mcur.id);
        }
        return 1;
    }
    media *m = cur_media(v);
    if (!m) return 1;
    char tmp[FLEN];
    copy_str(tmp, sizeof tmp, (const unsigned char *)txt, n);
    if (c == C_ALT) {
        if (f == F_HASHNAME) copy_str(m->alt_name, sizeof m->alt_name, (const unsigned char *)txt, n);
        else if (f == F_HASHVALUE) {
            copy_str(m->alt_value, sizeof m->alt_value, (const unsigned char *)txt, n);
            m->l_alt = v->line;
        }
        return 1;
    }
    if (c != C_ITEM && c != C_MEDIA) return 1;
    switch (f) {
    case F_MD5: case F_SHA1: case F_SHA256: case F_PDQ:
        if (!is_string) return shape(v, "a hash must be a JSON string", NULL);
        if (n == 0) return 1; /* empty: absent */
        {
            char *dst = f == F_MD5 ? m->md5 : f == F_SHA1 ? m->sha1 : f == F_SHA256 ? m->sha256 : m->pdq;
            uint64_t *ln = f == F_MD5 ? &m->l_md5 : f == F_SHA1 ? &m->l_sha1
                         : f == F_SHA256 ? &m->l_sha256 : &m->l_pdq;
            copy_str(dst, FLEN, (const unsigned char *)txt, n);
            *ln = v->line;
        }
        return 1;
    case F_QUALITY:
        if (!is_int || iv < 0 || iv > 100) {
            if (v->err == IMT_OK)
                v->err = imt__idx_sink_bad(v->s, v->line, IMT_E_PARSE, "quality '%s' is not 0..100", tmp);
            return v->err == IMT_OK;
        }
        m->quality = (int)iv;
        return 1;
    case F_CATEGORY:
        if (is_int) {
            if (iv < 0 || iv > INT32_MAX) {
                if (v->err == IMT_OK)
                    v->err = imt__idx_sink_bad(v->s, v->line, IMT_E_PARSE, "category %s is out of range", tmp);
                return v->err == IMT_OK;
            }
            m->category = (int32_t)iv;
        } else if (is_string) {
            char *end;
            long c2 = strtol(tmp, &end, 10);
            if (*tmp && !*end && c2 >= 0 && c2 <= INT32_MAX) m->category = (int32_t)c2;
            else copy_str(m->label, sizeof m->label, (const unsigned char *)txt, n);
        } else if (n != 4 || memcmp(txt, "null", 4)) {
            if (v->err == IMT_OK)
                v->err = imt__idx_sink_bad(v->s, v->line, IMT_E_PARSE, "category '%s' is not a number", tmp);
            return v->err == IMT_OK;
        }
        return 1;
    case F_LABEL:
        if (is_string) return take_str(v, m->label, sizeof m->label, txt, n, "a label");
        return 1;
    case F_ID:
        if (n != 4 || memcmp(txt, "null", 4) || is_string)
            return take_str(v, m->id, sizeof m->id, txt, n, "an id");
        return 1;
    case F_EXPORT:
        m->is_header = 1;
        if (!is_int || iv < 1)
            return shape(v, "\"imgtriage-export\" must be a version number", NULL);
        if (iv > EXPORT_VERSION) {
            if (v->err == IMT_OK)
                v->err = imt__idx_sink_fail_at(v->s, v->line, IMT_E_PARSE,
                                          "export version %lld is newer than this build reads (%d)",
                                          iv, EXPORT_VERSION);
            return 0;
        }
        return 1;
    case F_MEDIA:
        return shape(v, "Media must be an array", NULL);
    case F_ALT:
        if (n == 4 && !memcmp(txt, "null", 4)) return 1;
        return shape(v, "AlternativeHashes must be an array", NULL);
    default:
        return 1;
    }
}

static int cb_null(void *ctx)
{
    return scalar(ctx, "null", 4, 0, 0, 0);
}
static int cb_bool(void *ctx, int b)
{
    return scalar(ctx, b ? "true" : "false", b ? 4 : 5, 0, 0, 0);
}
static int cb_number(void *ctx, const char *s, size_t n)
{
    char tmp[32];
    int is_int = n < sizeof tmp;
    long long iv = 0;
    if (is_int) {
        memcpy(tmp, s, n);
        tmp[n] = '\0';
        char *end;
        errno = 0;
        iv = strtoll(tmp, &end, 10);
        is_int = !*end && !errno;
    }
    return scalar(ctx, s, n, 0, is_int, iv);
}
static int cb_string(void *ctx, const unsigned char *s, size_t n)
{
    return scalar(ctx, (const char *)s, n, 1, 0, 0);
}

static int push(vstate *v, int c)
{
    if (v->depth >= MAXDEPTH) return shape(v, "nested too deeply", NULL);
    v->ctx[v->depth++] = (uint8_t)c;
    return 1;
}

static int cb_start_map(void *ctx)
{
    vstate *v = ctx;
    int f = v->field;
    v->field = F_NONE;
    if (v->depth == 0) {
        if (v->jsonl) {
            media_begin(v, &v->m[0]);
            v->nmb = 0;
            v->nmstr = 0;
            return push(v, C_ITEM);
        }
        return push(v, C_ROOT);
    }
    int c = v->ctx[v->depth - 1];
    if (c == C_VALUE_ARR) {
        media_begin(v, &v->m[0]);
        return push(v, C_ITEM);
    }
    if (c == C_INV_ARR) {
        memset(&v->lm, 0, sizeof v->lm);
        v->lm_seen = 0;
        return push(v, C_INV);
    }
    if (c == C_MEMB_ARR) {
        size_t empty = 0;
        if (!v->nmstr && !mstr_add(v, "", 0, &empty)) return 0;
        v->mcur.list = -1;
        v->mcur.category = -1;
        v->mcur.label = v->mcur.id = empty; /* offset 0: "" */
        return push(v, C_MEMB);
    }
    if (c == C_MEDIA_ARR) {
        media_begin(v, &v->m[1]);
        return push(v, C_MEDIA);
    }
    if (c == C_ALT_ARR) {
        media *m = cur_media(v);
        if (m) {
            m->alt_name[0] = m->alt_value[0] = '\0';
        }
        return push(v, C_ALT);
    }
    if (c == C_ROOT && f == F_VALUE) return shape(v, "value must be an array", NULL);
    if ((c == C_ITEM || c == C_MEDIA) && (f == F_MD5 || f == F_SHA1 || f == F_SHA256 || f == F_PDQ))
        return shape(v, "a hash must be a JSON string", NULL);
    if ((c == C_ITEM || c == C_MEDIA || c == C_MEMB) && f == F_CATEGORY)
        return shape(v, "Category must be a number or a string, not an object", NULL);
    return push(v, C_OTHER);
}

static int cb_key(void *ctx, const unsigned char *k, size_t n)
{
    vstate *v = ctx;
    int c = v->depth ? v->ctx[v->depth - 1] : C_OTHER;
    v->field = F_NONE;
    if (c == C_ROOT) {
        if (key_is(k, n, "value")) v->field = F_VALUE;
        else if (key_is(k, n, "odata.metadata")) v->version = v->version ? v->version : 1;
        else if (key_is(k, n, "@odata.context")) v->version = 2;
    } else if (c == C_ITEM || c == C_MEDIA) {
        if (v->jsonl) {
            if (key_is(k, n, "md5")) v->field = F_MD5;
            else if (key_is(k, n, "sha1")) v->field = F_SHA1;
            else if (key_is(k, n, "sha256")) v->field = F_SHA256;
            else if (key_is(k, n, "pdq")) v->field = F_PDQ;
            else if (key_is(k, n, "quality")) v->field = F_QUALITY;
            else if (key_is(k, n, "category")) v->field = F_CATEGORY;
            else if (key_is(k, n, "label")) v->field = F_LABEL;
            else if (key_is(k, n, "id")) v->field = F_ID;
            else if (key_is(k, n, "imgtriage-export")) v->field = F_EXPORT;
            else if (key_is(k, n, "lists")) v->field = F_LISTS;
        } else {
            if (key_is(k, n, "MD5")) v->field = F_MD5;
            else if (key_is(k, n, "SHA1")) v->field = F_SHA1;
            else if (key_is(k, n, "SHA256")) v->field = F_SHA256;
            else if (key_is(k, n, "PDQ")) v->field = F_PDQ;
            else if (key_is(k, n, "Category")) v->field = F_CATEGORY;
            else if (key_is(k, n, "MediaID")) v->field = F_ID;
            else if (key_is(k, n, "AlternativeHashes")) v->field = F_ALT;
            else if (key_is(k, n, "Media") && c == C_ITEM) v->field = F_MEDIA;
        }
    } else if (c == C_INV) {
        static const struct { const char *k; int f; } keys[] = {
            {"id", F_L_ID}, {"name", F_L_NAME}, {"version", F_L_VERSION}, {"format", F_L_FORMAT},
            {"scheme", F_L_SCHEME}, {"known_good", F_L_GOOD}, {"policy", F_L_POLICY},
            {"file_sha256", F_L_SHA}, {"import_time", F_L_TIME}, {"entries", F_L_ENTRIES}};
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            if (strlen(keys[i].k) == n && !memcmp(k, keys[i].k, n)) v->field = keys[i].f;
    } else if (c == C_MEMB) {
        if (n == 4 && !memcmp(k, "list", 4)) v->field = F_M_LIST;
        else if (n == 8 && !memcmp(k, "category", 8)) v->field = F_CATEGORY;
        else if (n == 5 && !memcmp(k, "label", 5)) v->field = F_LABEL;
        else if (n == 2 && !memcmp(k, "id", 2)) v->field = F_ID;
    } else if (c == C_ALT) {
        if (key_is(k, n, "HashName")) v->field = F_HASHNAME;
        else if (key_is(k, n, "HashValue")) v->field = F_HASHVALUE;
    }
    return 1;
}

static int cb_end_map(void *ctx)
{
    vstate *v = ctx;
    if (!v->depth) return shape(v, "unbalanced JSON", NULL);
    int c = v->ctx[--v->depth];
    v->field = F_NONE;
    if (c == C_INV) return inv_end(v);
    if (c == C_MEMB) {
        if (v->mcur.list < 0) return shape(v, "a membership needs its \"list\"", NULL);
        if (v->nmb == v->capmb) {
            size_t cap = v->capmb ? 2 * v->capmb : 8;
            memb *p = imt__realloc(v->mb, cap * sizeof *p);
            if (!p) {
                if (v->err == IMT_OK) v->err = IMT_E_NOMEM;
                return 0;
            }
            v->mb = p;
            v->capmb = cap;
        }
        if (v->nmb >= 65536) return shape(v, "an entry has more than 65535 memberships", NULL);
        v->mb[v->nmb++] = v->mcur;
        return 1;
    }
    if (c == C_ALT) {
        media *m = cur_media(v);
        if (m && m->alt_value[0]) {
            if (!strcasecmp(m->alt_name, "PDQ")) {
                memcpy(m->pdq, m->alt_value, FLEN);
                m->l_pdq = m->l_alt;
            } else if (!strcasecmp(m->alt_name, "SHA256") || !strcasecmp(m->alt_name, "SHA-256")) {
                memcpy(m->sha256, m->alt_value, FLEN);
                m->l_sha256 = m->l_alt;
            }
        }
        return 1;
    }
    if (c == C_MEDIA) {
        imt_err e = emit(v, &v->m[1]);
        v->m[1].active = 0;
        if (e != IMT_OK && v->err == IMT_OK) v->err = e;
        return v->err == IMT_OK;
    }
    if (c == C_ITEM) {
        media *m = &v->m[0];
        m->active = 0;
        if (m->is_header) return 1;
        if (m->had_media && !m->md5[0] && !m->sha1[0] && !m->sha256[0] && !m->pdq[0]) return 1;
        imt_err e = emit(v, m);
        if (e != IMT_OK && v->err == IMT_OK) v->err = e;
        return v->err == IMT_OK;
    }
    return 1;
}

static int cb_start_array(void *ctx)
{
    vstate *v = ctx;
    int f = v->field;
    v->field = F_NONE;
    if (v->depth == 0) return shape(v, v->jsonl ? "a JSON line must be an object"
                                                : "the top level must be an object, not an array", NULL);
    int c = v->ctx[v->depth - 1];
    if (c == C_ROOT && f == F_VALUE) {
        v->saw_value = 1;
        return push(v, C_VALUE_ARR);
    }
    if (c == C_ITEM && f == F_MEDIA) {
        v->m[0].had_media = 1;
        return push(v, C_MEDIA_ARR);
    }
    if ((c == C_ITEM || c == C_MEDIA) && f == F_ALT) return push(v, C_ALT_ARR);
    if (c == C_ITEM && f == F_LISTS) {
        if (v->m[0].is_header) {
            if (v->inventory) return shape(v, "a second list inventory", NULL);
            v->inventory = 1;
            return push(v, C_INV_ARR);
        }
        if (v->inventory) return push(v, C_MEMB_ARR);
    }
    if ((c == C_ITEM || c == C_MEDIA) && (f == F_MD5 || f == F_SHA1 || f == F_SHA256 || f == F_PDQ))
        return shape(v, "a hash must be a JSON string", NULL);
    /* a category must never be dropped: an item without one alerts, which
     * would not be what a list grading it in an array meant */
    if ((c == C_ITEM || c == C_MEDIA || c == C_MEMB) && f == F_CATEGORY)
        return shape(v, "Category must be a number or a string, not an array", NULL);
    return push(v, C_OTHER);
}

static int cb_end_array(void *ctx)
{
    vstate *v = ctx;
    if (!v->depth) return shape(v, "unbalanced JSON", NULL);
    v->depth--;
    v->field = F_NONE;
    return 1;
}

static const yajl_callbacks callbacks = {
    cb_null, cb_bool, NULL, NULL, cb_number, cb_string,
    cb_start_map, cb_key, cb_end_map, cb_start_array, cb_end_array};

imt_err imt__idx_parse_vics(imt__idx_sink *s, int fd, imt__idx_format f, char *actual, size_t cap)
{
    imt_err err = IMT_OK;
    vstate *v = imt__calloc(1, sizeof *v);
    char *buf = imt__malloc(65536);
    yajl_handle y = NULL;
    if (!v || !buf) {
        err = IMT_E_NOMEM;
        goto cleanup;
    }
    v->s = s;
    v->jsonl = f == IF_JSONL;
    v->line = 1;
    /* yajl allocates with the system malloc, as LMDB and libjpeg do, not
     * through the library's hooks: it never checks for NULL (yajl_alloc
     * writes through a failed allocation; so do its buffers), so a hook
     * that fails (out of memory, a limit) crashed the import. */
    y = yajl_alloc(&callbacks, NULL, v);
    if (!y) {
        err = IMT_E_NOMEM;
        goto cleanup;
    }
    yajl_config(y, yajl_dont_validate_strings, 0);
    if (v->jsonl) yajl_config(y, yajl_allow_multiple_values, 1);
    size_t len = 0, pos = 0;
    int eof = 0, ended_nl = 0, bom_checked = 0;
    for (;;) {
        char *nl = pos < len ? memchr(buf + pos, '\n', len - pos) : NULL;
        if (!nl && !eof && (pos > 0 || len < 65536)) {
            /* refill: keep the unfed tail at the front */
            memmove(buf, buf + pos, len - pos);
            len -= pos;
            pos = 0;
            ssize_t r = read(fd, buf + len, 65536 - len);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) {
                err = imt__idx_sink_fail(s, IMT_E_IO, "read error: %s", strerror(errno));
                goto cleanup;
            }
            if (r == 0) eof = 1;
            len += (size_t)r;
            if (!bom_checked && (len >= 3 || eof)) {
                /* a UTF-8 byte order mark (Windows tools write one) */
                bom_checked = 1;
                if (len >= 3 && (uint8_t)buf[0] == 0xEF && (uint8_t)buf[1] == 0xBB && (uint8_t)buf[2] == 0xBF)
                    pos = 3;
            }
            continue;
        }
        /* feed up to and including the next newline, so callbacks know the
         * line (a line longer than the buffer is fed in pieces) */
        size_t n = nl ? (size_t)(nl - (buf + pos)) + 1 : len - pos;
        if (!n) break;
        yajl_status st = yajl_parse(y, (const unsigned char *)buf + pos, n);
        if (v->err != IMT_OK) {
            err = v->err;
            goto cleanup;
        }
        if (st != yajl_status_ok) {
            unsigned char *msg = yajl_get_error(y, 0, (const unsigned char *)buf + pos, n);
            char *mm = msg ? (char *)msg : NULL;
            if (mm) {
                size_t ml = strlen(mm);
                while (ml && (mm[ml - 1] == '\n' || mm[ml - 1] == ' ')) mm[--ml] = '\0';
            }
            err = imt__idx_sink_fail_at(s, v->line, IMT_E_PARSE, "invalid JSON: %s", mm ? mm : "?");
            if (msg) yajl_free_error(y, msg);
            goto cleanup;
        }
        pos += n;
        ended_nl = nl != NULL;
        if (nl) v->line++;
    }
    if (yajl_complete_parse(y) != yajl_status_ok) {
        if (v->err != IMT_OK) err = v->err;
        else err = imt__idx_sink_fail_at(s, v->line > 1 && ended_nl ? v->line - 1 : v->line, IMT_E_PARSE, "the JSON ends early");
        goto cleanup;
    }
    if (v->err != IMT_OK) {
        err = v->err;
        goto cleanup;
    }
    if (!v->jsonl && !v->saw_value) {
        err = imt__idx_sink_fail(s, IMT_E_JSON_SHAPE,
                            "no \"value\" array: not a VICS file (1.x: odata.metadata + value[] "
                            "of cases with Media[]; 2.0: @odata.context + value[] of media)");
        goto cleanup;
    }
    snprintf(actual, cap, "%s", v->jsonl ? "jsonl" : v->version == 2 ? "vics-2" : "vics-1");
cleanup:
    if (y) yajl_free(y);
    imt__free(buf);
    if (v) {
        imt__free(v->mb);
        imt__free(v->mstr);
    }
    imt__free(v);
    return err;
}
