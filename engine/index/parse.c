/* engine/index/parse.c -- line-based hash lists: PDQ CSV (pdq-photo-hasher,
 * HMA), ThreatExchange "pdq <hex>" lines, md5sum/sha1sum/sha256sum output,
 * hashdeep files and plain hex lists. Every bad line is reported as
 * file:line with its reason. */
#include "index.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MAX_LINE (1u << 20)

typedef struct lines {
    int fd;
    char *buf;
    size_t cap, len, pos;
    int eof;
    uint64_t lineno;
} lines;

/* Next line (NUL-terminated, CR/LF stripped) or NULL at the end; *err set
 * on a read error or an over-long line. */
static char *next_line(lines *l, imt__idx_sink *s, imt_err *err)
{
    *err = IMT_OK;
    for (;;) {
        char *nl = l->pos < l->len ? memchr(l->buf + l->pos, '\n', l->len - l->pos) : NULL;
        if (nl || (l->eof && l->pos < l->len)) {
            char *start = l->buf + l->pos;
            char *end = nl ? nl : l->buf + l->len;
            l->pos = (size_t)(end - l->buf) + (nl ? 1 : 0);
            if (end > start && end[-1] == '\r') end--;
            *end = '\0';
            l->lineno++;
            if (memchr(start, '\0', (size_t)(end - start))) {
                *err = imt__idx_sink_fail_at(s, l->lineno, IMT_E_PARSE, "the line holds a NUL byte: not a text list");
                return NULL;
            }
            return start;
        }
        if (l->eof) return NULL;
        if (l->pos) {
            memmove(l->buf, l->buf + l->pos, l->len - l->pos);
            l->len -= l->pos;
            l->pos = 0;
        }
        if (l->len + 1 >= l->cap) {
            if (l->cap >= MAX_LINE) {
                *err = imt__idx_sink_fail_at(s, l->lineno + 1, IMT_E_PARSE, "the line is longer than %u bytes",
                                        MAX_LINE);
                return NULL;
            }
            size_t cap = l->cap ? l->cap * 2 : 65536;
            char *p = imt__realloc(l->buf, cap + 1);
            if (!p) {
                *err = IMT_E_NOMEM;
                return NULL;
            }
            l->buf = p;
            l->cap = cap;
        }
        ssize_t r = read(l->fd, l->buf + l->len, l->cap - l->len);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            *err = imt__idx_sink_fail(s, IMT_E_IO, "read error: %s", strerror(errno));
            return NULL;
        }
        if (r == 0) l->eof = 1;
        l->len += (size_t)r;
    }
}

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = '\0';
    return s;
}

/* Report a hex field error with its kind's expected length. */
static imt_err bad_hex(imt__idx_sink *s, uint64_t line, imt_err e, const char *what,
                       const char *tok, size_t len, size_t nbytes)
{
    if (e == IMT_E_HASH_LENGTH)
        return imt__idx_sink_bad(s, line, e, "%s must have %zu hex digits, '%.*s' has %zu", what,
                            2 * nbytes, (int)(len > 80 ? 80 : len), tok, len);
    size_t i = 0;
    while (i < len && is_hex(tok[i])) i++;
    return imt__idx_sink_bad(s, line, e, "%s '%.*s': character %zu is not a hex digit", what,
                        (int)(len > 80 ? 80 : len), tok, i + 1);
}

/* Hex digit values, 16 for anything else: a table instead of imt_hex_decode's
 * branches, which mispredict on random digests (it took 15% of a digest
 * list's import); imt_hex_decode still gives the error of a bad field. */
static const uint8_t hexval[256] = {
#define H16(x) x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x
    H16(16), H16(16), H16(16),
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 16, 16, 16, 16, 16,
    16, 10, 11, 12, 13, 14, 15, 16, 16, 16, 16, 16, 16, 16, 16, 16, H16(16),
    16, 10, 11, 12, 13, 14, 15, 16, 16, 16, 16, 16, 16, 16, 16, 16, H16(16),
    H16(16), H16(16), H16(16), H16(16), H16(16), H16(16), H16(16), H16(16),
#undef H16
};

static int hex_fast(uint8_t *out, size_t nbytes, const char *hex, size_t len)
{
    if (len != 2 * nbytes) return 0;
    unsigned bad = 0;
    for (size_t i = 0; i < nbytes; i++) {
        unsigned hi = hexval[(unsigned char)hex[2 * i]], lo = hexval[(unsigned char)hex[2 * i + 1]];
        bad |= hi | lo;
        out[i] = (uint8_t)(hi << 4 | (lo & 15));
    }
    return !(bad & 16);
}

/* Parse one hex hash of nbytes into out; on error report and return it. */
static imt_err hex_field(imt__idx_sink *s, uint64_t line, const char *what, const char *tok,
                         size_t len, uint8_t *out, size_t nbytes, int *ok)
{
    if (hex_fast(out, nbytes, tok, len)) {
        *ok = 1;
        return IMT_OK;
    }
    imt_err e = imt_hex_decode(out, nbytes, tok, len);
    *ok = e == IMT_OK;
    if (e == IMT_OK) return IMT_OK;
    return bad_hex(s, line, e, what, tok, len, nbytes);
}

/* One hash field of kind k (KB_*) into its slot of r, named in errors. */
static imt_err kind_field(imt__idx_sink *s, uint64_t line, unsigned k, const char *tok,
                          size_t len, imt__idx_rec *r, int *ok)
{
    r->kinds = k;
    switch (k) {
    case KB_PDQ: return hex_field(s, line, "a PDQ hash", tok, len, r->pdq, 32, ok);
    case KB_MD5: return hex_field(s, line, "an MD5", tok, len, r->md5, 16, ok);
    case KB_SHA1: return hex_field(s, line, "a SHA-1", tok, len, r->sha1, 20, ok);
    default: return hex_field(s, line, "a SHA-256", tok, len, r->sha256, 32, ok);
    }
}

/* ---- hashdeep ---------------------------------------------------------- */
enum { HD_SIZE, HD_MD5, HD_SHA1, HD_SHA256, HD_OTHER, HD_NAME };
#define HD_MAXCOL 16

typedef struct hdspec {
    int n;
    int col[HD_MAXCOL];
} hdspec;

/* Parse a column line into *out; *out changes only when the line is valid
 * (with --skip-bad a bad column line is skipped and the previous spec, if
 * any, stays in force). */
static imt_err hashdeep_spec(imt__idx_sink *s, char *line, uint64_t lineno, hdspec *out, int *valid)
{
    /* "%%%% size,md5,sha256,filename" */
    char *p = trim(line + 4);
    hdspec spec, *sp = &spec;
    sp->n = 0;
    *valid = 0;
    int have_name = 0, have_hash = 0;
    while (*p) {
        char *c = strchr(p, ',');
        if (c) *c = '\0';
        char *t = trim(p);
        if (sp->n == HD_MAXCOL)
            return imt__idx_sink_bad(s, lineno, IMT_E_PARSE, "too many hashdeep columns");
        int k;
        if (!strcmp(t, "size")) k = HD_SIZE;
        else if (!strcmp(t, "md5")) k = HD_MD5, have_hash = 1;
        else if (!strcmp(t, "sha1")) k = HD_SHA1, have_hash = 1;
        else if (!strcmp(t, "sha256")) k = HD_SHA256, have_hash = 1;
        else if (!strcmp(t, "filename")) k = HD_NAME, have_name = 1;
        else if (!strcmp(t, "tiger") || !strcmp(t, "whirlpool")) k = HD_OTHER;
        else return imt__idx_sink_bad(s, lineno, IMT_E_PARSE, "unknown hashdeep column '%s'", t);
        sp->col[sp->n++] = k;
        if (!c) break;
        p = c + 1;
    }
    if (!have_name || !have_hash || sp->col[sp->n - 1] != HD_NAME)
        return imt__idx_sink_bad(s, lineno, IMT_E_PARSE,
                            "hashdeep column line needs md5, sha1 or sha256 and ends with filename");
    *out = spec;
    *valid = 1;
    return IMT_OK;
}

static imt_err hashdeep_line(imt__idx_sink *s, char *line, uint64_t lineno, const hdspec *sp)
{
    imt__idx_rec r;
    memset(&r, 0, sizeof r);
    r.quality = -1;
    r.category = -1;
    r.line = lineno;
    char *p = line, *name = "";
    for (int i = 0; i < sp->n; i++) {
        if (sp->col[i] == HD_NAME) {
            name = p; /* the rest: file names may hold commas */
            break;
        }
        char *c = strchr(p, ',');
        if (!c)
            return imt__idx_sink_bad(s, lineno, IMT_E_PARSE, "%d fields expected, found %d", sp->n, i + 1);
        *c = '\0';
        int ok = 1;
        imt_err e = IMT_OK;
        switch (sp->col[i]) {
        case HD_SIZE: {
            char *end;
            errno = 0;
            (void)strtoull(p, &end, 10);
            if (!*p || *end || errno)
                return imt__idx_sink_bad(s, lineno, IMT_E_PARSE, "file size '%.40s' is not a number", p);
            break;
        }
        case HD_MD5:
            e = hex_field(s, lineno, "an MD5", p, strlen(p), r.md5, 16, &ok);
            r.kinds |= KB_MD5;
            break;
        case HD_SHA1:
            e = hex_field(s, lineno, "a SHA-1", p, strlen(p), r.sha1, 20, &ok);
            r.kinds |= KB_SHA1;
            break;
        case HD_SHA256:
            e = hex_field(s, lineno, "a SHA-256", p, strlen(p), r.sha256, 32, &ok);
            r.kinds |= KB_SHA256;
            break;
        default: break;
        }
        if (!ok) return e;
        p = c + 1;
    }
    return imt__idx_sink_add(s, &r, "", name);
}

/* ---- one data line of the other formats -------------------------------- */
static imt_err data_line(imt__idx_sink *s, char *line, uint64_t lineno, imt__idx_format f)
{
    imt__idx_rec r;
    memset(&r, 0, sizeof r);
    r.quality = -1;
    r.category = -1;
    r.line = lineno;
    const char *ext = "";
    int ok = 1;
    imt_err e;
    switch (f) {
    case IF_PDQ_CSV: {
        /* hash,quality[,name] or the same separated by tabs: the first
         * separator after the hash is the line's */
        char *c1 = line + strcspn(line, ",\t");
        char sep = *c1;
        char *hash = line;
        if (*c1) *c1 = '\0';
        else c1 = NULL;
        hash = trim(hash);
        e = hex_field(s, lineno, "a PDQ hash", hash, strlen(hash), r.pdq, 32, &ok);
        if (!ok) return e;
        if (!c1) return imt__idx_sink_bad(s, lineno, IMT_E_PARSE, "expected 'hash,quality', no quality");
        char *q = c1 + 1, *c2 = strchr(q, sep);
        if (c2) *c2 = '\0';
        q = trim(q);
        char *end;
        errno = 0;
        long qv = strtol(q, &end, 10);
        if (!*q || *end || errno || qv < 0 || qv > 100)
            return imt__idx_sink_bad(s, lineno, IMT_E_PARSE, "quality '%.40s' is not an integer 0..100", q);
        r.quality = (int8_t)qv;
        r.kinds = KB_PDQ;
        if (c2) ext = c2 + 1;
        break;
    }
    case IF_TE: {
        char *p = trim(line);
        if (strncasecmp(p, "pdq", 3) || (p[3] != ' ' && p[3] != '\t'))
            return imt__idx_sink_bad(s, lineno, IMT_E_PARSE, "expected 'pdq <64 hex digits>'");
        p = trim(p + 4);
        size_t n = strcspn(p, " \t");
        char *rest = p[n] ? trim(p + n + 1) : p + n;
        p[n] = '\0';
        e = hex_field(s, lineno, "a PDQ hash", p, n, r.pdq, 32, &ok);
        if (!ok) return e;
        r.kinds = KB_PDQ;
        ext = rest;
        break;
    }
    case IF_MD5SUM:
    case IF_SHA1SUM:
    case IF_SHA256SUM: {
        char *p = line;
        int escaped = 0;
        if (*p == '\\') { /* GNU: a name with \ or newline is escaped */
            escaped = 1;
            p++;
        }
        size_t n = strcspn(p, " \t");
        if (!p[n]) {
            return imt__idx_sink_bad(s, lineno, IMT_E_PARSE, "expected '<hash>  <file name>'");
        }
        char *name = p + n + 1;
        p[n] = '\0';
        if (*name == ' ' || *name == '*') name++;
        if (escaped) {
            char *w = name;
            for (char *q = name; *q; q++) {
                if (*q == '\\' && q[1] == 'n') { *w++ = '\n'; q++; }
                else if (*q == '\\' && q[1] == '\\') { *w++ = '\\'; q++; }
                else *w++ = *q;
            }
            *w = '\0';
        }
        e = kind_field(s, lineno,
                       f == IF_MD5SUM ? KB_MD5 : f == IF_SHA1SUM ? KB_SHA1 : KB_SHA256, p, n,
                       &r, &ok);
        if (!ok) return e;
        ext = name;
        break;
    }
    case IF_PDQ_HEX:
    case IF_MD5_HEX:
    case IF_SHA1_HEX:
    case IF_SHA256_HEX: {
        char *p = trim(line);
        size_t n = strlen(p);
        e = kind_field(s, lineno,
                       f == IF_PDQ_HEX   ? KB_PDQ
                       : f == IF_MD5_HEX ? KB_MD5
                       : f == IF_SHA1_HEX ? KB_SHA1
                                          : KB_SHA256,
                       p, n, &r, &ok);
        if (!ok) return e;
        break;
    }
    default:
        return IMT_E_INTERNAL;
    }
    return imt__idx_sink_add(s, &r, "", ext);
}

imt_err imt__idx_parse_text(imt__idx_sink *s, int fd, imt__idx_format f, imt__idx_format *actual)
{
    imt_err err = IMT_OK;
    lines l;
    memset(&l, 0, sizeof l);
    l.fd = fd;
    hdspec sp;
    memset(&sp, 0, sizeof sp);
    int have_spec = 0;
    uint64_t data_lines = 0;
    char *line;
    while ((line = next_line(&l, s, &err)) != NULL) {
        char *t = line;
        if (l.lineno == 1 && (unsigned char)t[0] == 0xEF && (unsigned char)t[1] == 0xBB &&
            (unsigned char)t[2] == 0xBF)
            t += 3;
        char *tt = trim(t);
        if (!*tt) continue;
        if (tt[0] == '#') continue; /* comments (hashdeep's "##" lines too) */
        if (f == IF_AUTO) IMT_TRY(imt__idx_detect_line(s, tt, l.lineno, &f)); /* detect.c */
        if (f == IF_HEX) { /* length-typed: 32 md5, 40 sha1 */
            imt__idx_format g;
            IMT_TRY(imt__idx_detect_line(s, tt, l.lineno, &g));
            if (g != IF_MD5_HEX && g != IF_SHA1_HEX) {
                err = imt__idx_sink_fail_at(s, l.lineno, IMT_E_PARSE, "not a plain hex hash");
                goto cleanup;
            }
            f = g;
        }
        if (f == IF_HASHDEEP) {
            if (!strncmp(tt, "%%%%", 4)) {
                if (!strncmp(tt, "%%%% HASHDEEP", 13)) continue;
                int valid;
                IMT_TRY(hashdeep_spec(s, tt, l.lineno, &sp, &valid));
                if (valid) have_spec = 1;
                continue;
            }
            if (!strncmp(tt, "##", 2)) continue;
            if (!have_spec) {
                IMT_TRY(imt__idx_sink_bad(s, l.lineno, IMT_E_PARSE,
                                     "hashdeep data before the '%%%%%%%% size,...' column line"));
                continue;
            }
            data_lines++;
            IMT_TRY(hashdeep_line(s, tt, l.lineno, &sp));
            continue;
        }
        if (tt[0] == '#') continue; /* comments in hex and TE lists */
        if (f == IF_PDQ_CSV && data_lines == 0 &&
            (!strncasecmp(tt, "hash,", 5) || !strncasecmp(tt, "hash\t", 5) || !strcasecmp(tt, "hash"))) {
            continue; /* header */
        }
        data_lines++;
        IMT_TRY(data_line(s, tt, l.lineno, f));
    }
    if (err != IMT_OK) goto cleanup;
    if (f == IF_AUTO) {
        err = imt__idx_sink_fail(s, IMT_E_EMPTY, "the list holds no hash (only blank lines)");
        goto cleanup;
    }
cleanup:
    *actual = f;
    imt__free(l.buf);
    return err;
}
