/* engine/index/detect.c -- the one list-format detector: the format names,
 * and what an input is when --format is not given. It decides from the
 * head of the file (SQLite magic; JSON: VICS or our export; else the first
 * data line of a text list) and never guesses: input that two formats
 * could read differently is an error that asks for --format. */
#include "index.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* How far the first data line is looked for (comments and blank lines
 * before it): the text parser's longest line. */
#define DETECT_HEAD (1u << 20)

static const char *const format_names[IF__COUNT + 1] = {
    [IF_AUTO] = "auto",         [IF_PDQ_CSV] = "pdq-csv",     [IF_TE] = "te",
    [IF_MD5SUM] = "md5sum",     [IF_SHA1SUM] = "sha1sum",     [IF_SHA256SUM] = "sha256sum",
    [IF_HASHDEEP] = "hashdeep", [IF_HEX] = "hex",             [IF_PDQ_HEX] = "pdq-hex",
    [IF_MD5_HEX] = "md5-hex",   [IF_SHA1_HEX] = "sha1-hex",   [IF_SHA256_HEX] = "sha256-hex",
    [IF_VICS] = "vics",         [IF_NSRL] = "nsrl",           [IF_JSONL] = "jsonl",
    [IF_VPDQ] = "vpdq",         [IF__COUNT] = NULL};

const char *const *imt_index_formats(void)
{
    return format_names;
}

const char *imt__idx_format_name(imt__idx_format f)
{
    return (unsigned)f < IF__COUNT ? format_names[f] : "unknown";
}

int imt__idx_format_by_name(const char *n, imt__idx_format *f)
{
    for (int i = 0; i < IF__COUNT; i++)
        if (!strcmp(n, format_names[i])) {
            *f = (imt__idx_format)i;
            return 1;
        }
    /* aliases */
    if (!strcmp(n, "vics-1") || !strcmp(n, "vics-2") || !strcmp(n, "caid")) {
        *f = IF_VICS;
        return 1;
    }
    if (!strcmp(n, "threatexchange")) {
        *f = IF_TE;
        return 1;
    }
    return 0;
}

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static size_t hex_run(const char *s)
{
    size_t n = 0;
    while (is_hex(s[n])) n++;
    return n;
}

/* An integer 0..100 (a PDQ quality) spanning [s, s+n) after blanks. */
static int is_quality(const char *s, size_t n)
{
    while (n && (*s == ' ' || *s == '\t')) s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
    if (!n || n > 3) return 0;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (s[i] - '0');
    }
    return v <= 100;
}

imt_err imt__idx_detect_line(imt__idx_sink *s, const char *line, uint64_t lineno, imt__idx_format *f)
{
    if (!strncmp(line, "%%%% HASHDEEP", 13)) {
        *f = IF_HASHDEEP;
        return IMT_OK;
    }
    if (!strncasecmp(line, "pdq", 3) && (line[3] == ' ' || line[3] == '\t')) {
        *f = IF_TE;
        return IMT_OK;
    }
    if (!strncasecmp(line, "hash,", 5) || !strncasecmp(line, "hash\t", 5) || !strcasecmp(line, "hash")) {
        *f = IF_PDQ_CSV;
        return IMT_OK;
    }
    size_t h = hex_run(line);
    const char *rest = line + h;
    if (h == 64 && *rest == ',') {
        /* hash,quality[,...]: a SHA-256 CSV ("hash,name") would read as PDQ */
        const char *q = rest + 1;
        size_t qn = strcspn(q, ",");
        if (is_quality(q, qn)) {
            *f = IF_PDQ_CSV;
            return IMT_OK;
        }
        return imt__idx_sink_fail_at(s, lineno, IMT_E_PARSE,
                                "64 hex digits and a comma, but no PDQ quality (0..100) after "
                                "it: PDQ or SHA-256? name the format with --format");
    }
    if (h == 64 && (*rest == ' ' || *rest == '\t')) {
        /* sha256sum writes exactly "  " or " *" before the name; anything
         * else (a tab: hash<TAB>quality<TAB>name is a PDQ list) is not it */
        if (rest[0] == ' ' && (rest[1] == ' ' || rest[1] == '*') && rest[2] && rest[2] != ' ' &&
            rest[2] != '\t') {
            *f = IF_SHA256SUM;
            return IMT_OK;
        }
        return imt__idx_sink_fail_at(s, lineno, IMT_E_PARSE,
                                "64 hex digits followed by %s: a PDQ list (hash, quality, name) "
                                "or a SHA-256 list? name it with --format (pdq-csv reads comma- "
                                "and tab-separated PDQ lists; sha256sum needs '<hash>  <name>')",
                                *rest == '\t' ? "a tab" : "blanks other than sha256sum's");
    }
    if (h && (*rest == ' ' || *rest == '\t')) {
        while (*rest == ' ' || *rest == '\t') rest++;
        if (*rest) {
            if (h == 32) *f = IF_MD5SUM;
            else if (h == 40) *f = IF_SHA1SUM;
            else
                return imt__idx_sink_fail_at(s, lineno, IMT_E_HASH_LENGTH,
                                        "a %zu-digit hash followed by a name: not md5sum, "
                                        "sha1sum or sha256sum output", h);
            return IMT_OK;
        }
    }
    if (h && !*rest) {
        if (h == 32) *f = IF_MD5_HEX;
        else if (h == 40) *f = IF_SHA1_HEX;
        else if (h == 64)
            return imt__idx_sink_fail_at(s, lineno, IMT_E_PARSE,
                                    "a list of 64-digit hex hashes may be PDQ or SHA-256; "
                                    "name it with --format pdq-hex or sha256-hex");
        else
            return imt__idx_sink_fail_at(s, lineno, IMT_E_HASH_LENGTH,
                                    "a %zu-digit hex hash is none of PDQ (64), MD5 (32), "
                                    "SHA-1 (40), SHA-256 (64)", h);
        return IMT_OK;
    }
    return imt__idx_sink_fail_at(s, lineno, IMT_E_PARSE, "cannot tell the list format; name it with --format");
}

/* SQLite, JSON (VICS, or our export by its first key), else text (AUTO). */
static imt__idx_format sniff(const uint8_t *b, size_t n)
{
    if (n >= 16 && memcmp(b, "SQLite format 3", 16) == 0) return IF_NSRL;
    size_t i = 0;
    if (n >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF) i = 3;
    while (i < n && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n')) i++;
    if (i < n && b[i] == '[') return IF_VICS; /* JSON, the wrong shape: said so */
    if (i < n && b[i] == '{') {
        static const char tag[] = "{\"imgtriage-export\"";
        if (n - i >= sizeof tag - 1 && memcmp(b + i, tag, sizeof tag - 1) == 0) return IF_JSONL;
        return IF_VICS;
    }
    return IF_AUTO;
}

imt_err imt__idx_detect(imt__idx_sink *s, int fd, imt__idx_format *f)
{
    imt_err err = IMT_OK;
    if (*f != IF_AUTO) return IMT_OK;
    char *head = imt__malloc(DETECT_HEAD + 1);
    if (!head) return IMT_E_NOMEM;
    size_t n = 0;
    while (n < DETECT_HEAD) {
        ssize_t r = pread(fd, head + n, DETECT_HEAD - n, (off_t)n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            err = imt__idx_sink_fail(s, IMT_E_IO, "read error: %s", strerror(errno));
            goto cleanup;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    head[n] = '\0';
    *f = sniff((const uint8_t *)head, n);
    if (*f != IF_AUTO) goto cleanup;
    /* the first data line: not blank, not a '#' comment (hashdeep's '##') */
    char *p = head, *end = head + n;
    uint64_t lineno = 0;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl && n == DETECT_HEAD) break; /* cut by the head: not judged */
        char *e = nl ? nl : end;
        lineno++;
        if (e > p && e[-1] == '\r') e--;
        *e = '\0';
        if (memchr(p, '\0', (size_t)(e - p))) {
            err = imt__idx_sink_fail_at(s, lineno, IMT_E_PARSE, "the line holds a NUL byte: not a text list");
            goto cleanup;
        }
        char *t = p;
        if (lineno == 1 && (unsigned char)t[0] == 0xEF && (unsigned char)t[1] == 0xBB &&
            (unsigned char)t[2] == 0xBF)
            t += 3;
        while (*t == ' ' || *t == '\t') t++;
        size_t tl = strlen(t);
        while (tl && (t[tl - 1] == ' ' || t[tl - 1] == '\t')) t[--tl] = '\0';
        p = nl ? nl + 1 : end;
        if (!*t || *t == '#') continue;
        err = imt__idx_detect_line(s, t, lineno, f);
        goto cleanup;
    }
    if (lineno == 0 || p >= end) {
        /* blank lines and comments only: the text parser says so */
        *f = IF_AUTO;
        goto cleanup;
    }
    err = imt__idx_sink_fail(s, IMT_E_PARSE, "no hash in the first %u bytes; name the format with --format",
                        DETECT_HEAD);
cleanup:
    imt__free(head);
    return err;
}
