/* engine/index/parse_vics.c -- Project VIC VICS JSON (1.x: "odata.metadata",
 * value[] of cases with Media[]; 2.0: "@odata.context", value[] of media)
 * and our own JSON-lines export, parsed streaming with yajl. The input is
 * fed one line at a time so every callback knows its line number. */
#include "index.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yajl/yajl_parse.h>

enum ctx {
    C_OTHER = 0, C_ROOT, C_VALUE_ARR, C_ITEM, C_MEDIA_ARR, C_MEDIA, C_ALT_ARR, C_ALT
};

enum field {
    F_NONE = 0, F_MD5, F_SHA1, F_SHA256, F_PDQ, F_QUALITY, F_CATEGORY, F_LABEL, F_ID,
    F_VALUE, F_MEDIA, F_ALT, F_HASHNAME, F_HASHVALUE, F_ODATA1, F_ODATA2, F_EXPORT
};

#define MAXDEPTH 64
#define FLEN 160

typedef struct media {
    int active;
    uint64_t line;
    char md5[FLEN], sha1[FLEN], sha256[FLEN], pdq[FLEN];
    uint64_t l_md5, l_sha1, l_sha256, l_pdq;
    int quality;
    int32_t category;
    char label[256], id[256];
    char alt_name[64], alt_value[FLEN];
    uint64_t l_alt;
    int is_header;
    int had_media;
} media;

typedef struct vstate {
    idx_sink *s;
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
        v->err = idx_sink_fail_at(v->s, v->line, IMT_E_JSON_SHAPE, "%s%s", fmt, a ? a : "");
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

/* ---- emitting a media object ------------------------------------------ */
static imt_err emit(vstate *v, media *m)
{
    idx_sink *s = v->s;
    idx_rec r;
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
        imt_err e = idx_parse_hex(f[i].txt, n, f[i].out, f[i].nb);
        if (e == IMT_E_HASH_LENGTH)
            return idx_sink_bad(s, f[i].line, e, "%s must have %zu hex digits, '%.80s' has %zu",
                                f[i].what, 2 * f[i].nb, f[i].txt, n);
        if (e != IMT_OK)
            return idx_sink_bad(s, f[i].line, e, "%s '%.80s' has a character that is not hex",
                                f[i].what, f[i].txt);
        r.kinds |= (uint8_t)f[i].kb;
    }
    if (!r.kinds)
        return idx_sink_bad(s, m->line, IMT_E_JSON_SHAPE,
                            "a media object without MD5, SHA1, SHA256 or PDQ");
    return idx_sink_add(s, &r, m->label, m->id);
}

static void media_begin(vstate *v, media *m)
{
    memset(m, 0, sizeof *m);
    m->active = 1;
    m->line = v->line;
    m->quality = -1;
    m->category = -1;
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
                v->err = idx_sink_bad(v->s, v->line, IMT_E_PARSE, "quality '%s' is not 0..100", tmp);
            return v->err == IMT_OK;
        }
        m->quality = (int)iv;
        return 1;
    case F_CATEGORY:
        if (is_int) {
            if (iv < 0 || iv > INT32_MAX) {
                if (v->err == IMT_OK)
                    v->err = idx_sink_bad(v->s, v->line, IMT_E_PARSE, "category %s is out of range", tmp);
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
                v->err = idx_sink_bad(v->s, v->line, IMT_E_PARSE, "category '%s' is not a number", tmp);
            return v->err == IMT_OK;
        }
        return 1;
    case F_LABEL:
        if (is_string) copy_str(m->label, sizeof m->label, (const unsigned char *)txt, n);
        return 1;
    case F_ID:
        if (n != 4 || memcmp(txt, "null", 4) || is_string)
            copy_str(m->id, sizeof m->id, (const unsigned char *)txt, n);
        return 1;
    case F_EXPORT:
        m->is_header = 1;
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
            return push(v, C_ITEM);
        }
        return push(v, C_ROOT);
    }
    int c = v->ctx[v->depth - 1];
    if (c == C_VALUE_ARR) {
        media_begin(v, &v->m[0]);
        return push(v, C_ITEM);
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
    if ((c == C_ITEM || c == C_MEDIA) && (f == F_MD5 || f == F_SHA1 || f == F_SHA256 || f == F_PDQ))
        return shape(v, "a hash must be a JSON string", NULL);
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

/* yajl's allocator hooks, so its memory goes through imt__malloc too. */
static void *ya_malloc(void *ctx, size_t n)
{
    (void)ctx;
    return imt__malloc(n);
}
static void *ya_realloc(void *ctx, void *p, size_t n)
{
    (void)ctx;
    return imt__realloc(p, n);
}
static void ya_free(void *ctx, void *p)
{
    (void)ctx;
    imt__free(p);
}

imt_err idx_parse_vics(idx_sink *s, int fd, idx_format f, char *actual, size_t cap)
{
    imt_err err = IMT_OK;
    yajl_alloc_funcs af = {ya_malloc, ya_realloc, ya_free, NULL};
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
    y = yajl_alloc(&callbacks, &af, v);
    if (!y) {
        err = IMT_E_NOMEM;
        goto cleanup;
    }
    yajl_config(y, yajl_dont_validate_strings, 0);
    if (v->jsonl) yajl_config(y, yajl_allow_multiple_values, 1);
    size_t len = 0, pos = 0;
    int eof = 0, ended_nl = 0;
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
                err = idx_sink_fail(s, IMT_E_IO, "read error: %s", strerror(errno));
                goto cleanup;
            }
            if (r == 0) eof = 1;
            len += (size_t)r;
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
            err = idx_sink_fail_at(s, v->line, IMT_E_PARSE, "invalid JSON: %s", mm ? mm : "?");
            if (msg) yajl_free_error(y, msg);
            goto cleanup;
        }
        pos += n;
        ended_nl = nl != NULL;
        if (nl) v->line++;
    }
    if (yajl_complete_parse(y) != yajl_status_ok) {
        if (v->err != IMT_OK) err = v->err;
        else err = idx_sink_fail_at(s, v->line > 1 && ended_nl ? v->line - 1 : v->line, IMT_E_PARSE, "the JSON ends early");
        goto cleanup;
    }
    if (v->err != IMT_OK) {
        err = v->err;
        goto cleanup;
    }
    if (!v->jsonl && !v->saw_value) {
        err = idx_sink_fail(s, IMT_E_JSON_SHAPE,
                            "no \"value\" array: not a VICS file (1.x: odata.metadata + value[] "
                            "of cases with Media[]; 2.0: @odata.context + value[] of media)");
        goto cleanup;
    }
    snprintf(actual, cap, "%s", v->jsonl ? "jsonl" : v->version == 2 ? "vics-2" : "vics-1");
cleanup:
    if (y) yajl_free(y);
    imt__free(buf);
    imt__free(v);
    return err;
}
