/* engine/common/text.c -- the text buffer and the lossless escapers of
 * reports, index export and the CLI (imt_json_write_str). */
#include "text.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void imt__buf_free(imt__buf *b)
{
    imt__free(b->p);
    memset(b, 0, sizeof *b);
}

static int grow(imt__buf *b, size_t add)
{
    if (b->oom) return 0;
    if (add > SIZE_MAX - b->len - 1) {
        b->oom = 1;
        return 0;
    }
    size_t need = b->len + add + 1;
    if (need <= b->cap) return 1;
    size_t nc = b->cap ? b->cap : 512;
    while (nc < need) {
        if (nc > SIZE_MAX / 2) {
            b->oom = 1;
            return 0;
        }
        nc *= 2;
    }
    char *np = imt__realloc(b->p, nc);
    if (!np) {
        b->oom = 1;
        return 0;
    }
    b->p = np;
    b->cap = nc;
    return 1;
}

void imt__buf_put(imt__buf *b, const void *s, size_t n)
{
    if (!grow(b, n)) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void imt__buf_puts(imt__buf *b, const char *s)
{
    imt__buf_put(b, s, strlen(s));
}

void imt__buf_printf(imt__buf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) {
        imt__buf_put(b, tmp, (size_t)n);
        return;
    }
    if (!grow(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. Reads
 * past s[0] only while the bytes are continuation bytes (never past NUL). */
static int utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if ((s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && s[1] < 0xA0) return 0;  /* overlong */
        if (c == 0xED && s[1] >= 0xA0) return 0; /* surrogates */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if ((s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && s[1] < 0x90) return 0;
        if (c == 0xF4 && s[1] >= 0x90) return 0;
        return 4;
    }
    return 0;
}

void imt__buf_json_str(imt__buf *b, const char *str)
{
    const unsigned char *s = (const unsigned char *)(str ? str : "");
    imt__buf_put(b, "\"", 1);
    while (*s) {
        unsigned c = *s;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            imt__buf_put(b, e, 2);
            s++;
        } else if (c < 0x20 || c == 0x7f) {
            switch (c) {
            case '\n': imt__buf_puts(b, "\\n"); break;
            case '\r': imt__buf_puts(b, "\\r"); break;
            case '\t': imt__buf_puts(b, "\\t"); break;
            default: imt__buf_printf(b, "\\u%04x", c);
            }
            s++;
        } else {
            int n = utf8_len(s);
            if (n == 0) {
                imt__buf_printf(b, "\\udc%02x", c);
                s++;
            } else {
                imt__buf_put(b, s, (size_t)n);
                s += n;
            }
        }
    }
    imt__buf_put(b, "\"", 1);
}

void imt__buf_csv_str(imt__buf *b, const char *str)
{
    const unsigned char *s = (const unsigned char *)(str ? str : "");
    imt__buf_put(b, "\"", 1);
    /* A spreadsheet runs a cell starting with = + - @ as a formula (OWASP's
     * CSV injection): such a cell gets a leading ', and so does one that
     * starts with ' itself, so that dropping one leading ' gives the name
     * back exactly. */
    if (*s == '=' || *s == '+' || *s == '-' || *s == '@' || *s == '\'') imt__buf_put(b, "'", 1);
    while (*s) {
        unsigned c = *s;
        if (c == '"') {
            imt__buf_puts(b, "\"\"");
            s++;
        } else if (c == '\\') {
            imt__buf_puts(b, "\\\\");
            s++;
        } else if (c < 0x20 || c == 0x7f) {
            imt__buf_printf(b, "\\x%02x", c);
            s++;
        } else {
            int n = utf8_len(s);
            if (n == 0) {
                imt__buf_printf(b, "\\x%02x", c);
                s++;
            } else {
                imt__buf_put(b, s, (size_t)n);
                s += n;
            }
        }
    }
    imt__buf_put(b, "\"", 1);
}

/* XML 1.0 forbids C0 controls but tab, LF, CR; and U+FFFE, U+FFFF. */
static int xml_forbidden(const unsigned char *s, int n)
{
    if (n == 1) return s[0] < 0x20 && s[0] != '\t' && s[0] != '\n' && s[0] != '\r';
    return n == 3 && s[0] == 0xEF && s[1] == 0xBF && (s[2] == 0xBE || s[2] == 0xBF);
}

/* The five characters markup gives meaning to, as entities (XML and HTML
 * alike). Returns 1 when c was one of them and was written. */
static int put_markup_entity(imt__buf *b, unsigned c)
{
    const char *e = c == '<'    ? "&lt;"
                    : c == '>'  ? "&gt;"
                    : c == '&'  ? "&amp;"
                    : c == '"'  ? "&quot;"
                    : c == '\'' ? "&#39;"
                                : NULL;
    if (e) imt__buf_puts(b, e);
    return e != NULL;
}

int imt__buf_xml_str(imt__buf *b, const char *str)
{
    const unsigned char *s = (const unsigned char *)(str ? str : "");
    int lossy = 0;
    while (*s) {
        unsigned c = *s;
        int n = utf8_len(s);
        if (n == 0 || xml_forbidden(s, n)) {
            imt__buf_puts(b, "\xEF\xBF\xBD"); /* U+FFFD */
            lossy = 1;
            s += n ? n : 1;
            continue;
        }
        if (c == '\t' || c == '\n' || c == '\r')
            /* as references, so that parsers keep them (attribute values
             * and CR are normalised otherwise) */
            imt__buf_printf(b, "&#%u;", c);
        else if (!put_markup_entity(b, c))
            imt__buf_put(b, s, (size_t)n);
        s += n;
    }
    return lossy;
}

void imt__buf_html_str(imt__buf *b, const char *str)
{
    const unsigned char *s = (const unsigned char *)(str ? str : "");
    while (*s) {
        unsigned c = *s;
        int n = utf8_len(s);
        if (n == 0 || c < 0x20 || c == 0x7f) {
            imt__buf_printf(b, "\\x%02x", c);
            s++;
            continue;
        }
        if (c == '\\')
            imt__buf_puts(b, "\\\\");
        else if (!put_markup_entity(b, c))
            imt__buf_put(b, s, (size_t)n);
        s += n;
    }
}

void imt__buf_hex(imt__buf *b, const uint8_t *d, size_t n)
{
    static const char hx[] = "0123456789abcdef";
    if (!grow(b, 2 * n)) return;
    for (size_t i = 0; i < n; i++) {
        b->p[b->len++] = hx[d[i] >> 4];
        b->p[b->len++] = hx[d[i] & 15];
    }
    b->p[b->len] = '\0';
}

void imt__buf_time(imt__buf *b, int64_t s, int32_t ns)
{
    time_t t = (time_t)s;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        imt__buf_printf(b, "\"@%lld.%09d\"", (long long)s, (int)ns);
        return;
    }
    imt__buf_printf(b, "\"%04d-%02d-%02dT%02d:%02d:%02d.%09dZ\"", tm.tm_year + 1900,
                    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)ns);
}

int imt_json_write_str(FILE *f, const char *s)
{
    imt__buf b = {0};
    imt__buf_json_str(&b, s);
    int rc = (b.oom || fwrite(b.p, 1, b.len, f) != b.len) ? -1 : 0;
    imt__buf_free(&b);
    return rc;
}

int imt_csv_write_str(FILE *f, const char *s)
{
    imt__buf b = {0};
    imt__buf_csv_str(&b, s);
    int rc = (b.oom || fwrite(b.p, 1, b.len, f) != b.len) ? -1 : 0;
    imt__buf_free(&b);
    return rc;
}
