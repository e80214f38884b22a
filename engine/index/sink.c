/* engine/index/sink.c -- where a parser's records go: the records (each
 * with only the hashes of the kinds it has), their memberships, a string
 * arena for labels and ids, the lists of an export's inventory, bad-record
 * counting and the error text. A parser needs only this file, detect.c and
 * common/ (no LMDB writer), so it can be fuzzed and benchmarked alone. */
#include "index.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

imt_err imt__idx_sink_fail_at(imt__idx_sink *s, uint64_t line, imt_err e, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(s->err, s->errcap, "%s:%llu: %s", s->path, (unsigned long long)line, msg);
    return e;
}

const char *imt__idx_sink_path(const imt__idx_sink *s)
{
    return s->path;
}

void imt__idx_sink_set_version(imt__idx_sink *s, const char *v)
{
    snprintf(s->version, sizeof s->version, "%s", v);
}

static imt_err arena_add(imt__idx_sink *s, const char *str, uint32_t *off, uint32_t *last)
{
    if (!str || !*str) {
        *off = 0;
        return IMT_OK;
    }
    if (*last && strcmp(s->str + *last, str) == 0) {
        *off = *last;
        return IMT_OK;
    }
    size_t len = strlen(str) + 1; /* at most IDX_MAX_STR + 1: add checked it */
    if (s->nstr == 0) len++;      /* offset 0 is "": the arena starts with a NUL */
    if (s->nstr + len > UINT32_MAX) return IMT_E_TOO_LARGE;
    if (s->nstr + len > s->capstr) {
        size_t cap = s->capstr ? s->capstr : 4096;
        while (cap < s->nstr + len) cap *= 2;
        char *p = imt__realloc(s->str, cap);
        if (!p) return IMT_E_NOMEM;
        s->str = p;
        s->capstr = cap;
    }
    if (s->nstr == 0) {
        s->str[0] = '\0';
        s->nstr = 1;
        len--;
    }
    memcpy(s->str + s->nstr, str, len - 1);
    s->str[s->nstr + len - 1] = '\0';
    *off = (uint32_t)s->nstr;
    *last = *off;
    s->nstr += len;
    return IMT_OK;
}

static const size_t kind_len[4] = {32, 16, 20, 32}; /* PDQ, MD5, SHA-1, SHA-256 */

imt_err imt__idx_sink_add_members(imt__idx_sink *s, const imt__idx_rec *r, size_t n, const imt__idx_member_in *m)
{
    imt_err err = IMT_OK;
    if (!n || n > 65535) return IMT_E_INTERNAL;
    /* a longer label or id is refused, never cut: it would change an id */
    for (size_t i = 0; i < n; i++) {
        size_t ll = m[i].label ? strlen(m[i].label) : 0, el = m[i].ext ? strlen(m[i].ext) : 0;
        if (ll > IDX_MAX_STR || el > IDX_MAX_STR)
            return imt__idx_sink_bad(s, r->line, IMT_E_PARSE, "a %s of %zu bytes: longer than %u",
                                ll > IDX_MAX_STR ? "label" : "name or id", ll > IDX_MAX_STR ? ll : el,
                                IDX_MAX_STR);
    }
    if (s->flush && s->n) {
        /* flush before a buffer would grow past the batch's budget: the
         * capacities then settle, and the batch never holds more */
        size_t grow = 0, sl = 0;
        for (size_t i = 0; i < n; i++)
            sl += (m[i].label ? strlen(m[i].label) + 1 : 0) + (m[i].ext ? strlen(m[i].ext) + 1 : 0);
        if (s->n == s->cap) grow += s->cap * sizeof *s->recs;
        if (s->nmem + n > s->capmem) grow += (s->capmem > n ? s->capmem : n) * sizeof *s->mem;
        if (s->nhb + 100 > s->caphb) grow += s->caphb;
        if (s->nstr + sl + 1 > s->capstr) grow += s->capstr > sl ? s->capstr : sl;
        if (grow && imt__idx_sink_bytes(s) + grow > s->batch_bytes) {
            err = s->flush(s->flush_opaque, s);
            if (err) {
                s->flush_failed = 1;
                return err;
            }
            imt__idx_sink_reset(s);
        }
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024, bytes;
        if (!imt__mul_ok(cap, sizeof *s->recs, &bytes)) return IMT_E_NOMEM;
        imt__idx_srec *p = imt__realloc(s->recs, bytes);
        if (!p) return IMT_E_NOMEM;
        s->recs = p;
        s->cap = cap;
    }
    if (s->nmem + n > s->capmem) {
        size_t cap = s->capmem ? s->capmem : 1024, bytes;
        while (cap < s->nmem + n) cap *= 2;
        if (!imt__mul_ok(cap, sizeof *s->mem, &bytes)) return IMT_E_NOMEM;
        imt__idx_smem *p = imt__realloc(s->mem, bytes);
        if (!p) return IMT_E_NOMEM;
        s->mem = p;
        s->capmem = cap;
    }
    if (s->nhb + 100 > s->caphb) { /* 100: all four kinds */
        size_t cap = s->caphb ? s->caphb : 16384;
        while (cap < s->nhb + 100) {
            if (cap > SIZE_MAX / 2) return IMT_E_NOMEM;
            cap *= 2;
        }
        uint8_t *p = imt__realloc(s->hb, cap);
        if (!p) return IMT_E_NOMEM;
        s->hb = p;
        s->caphb = cap;
    }
    if (s->n >= IDX_MAX_ENTRIES || s->nmem + n > UINT32_MAX) return IMT_E_TOO_LARGE;
    imt__idx_srec *d = &s->recs[s->n];
    d->line = r->line;
    d->kinds = r->kinds;
    d->quality = r->quality;
    d->hash = s->nhb;
    d->mem = (uint32_t)s->nmem;
    d->nmem = (uint16_t)n;
    const uint8_t *h[4] = {r->pdq, r->md5, r->sha1, r->sha256};
    size_t hn = 0;
    for (int k = 0; k < 4; k++)
        if (r->kinds & (1u << k)) {
            memcpy(s->hb + s->nhb + hn, h[k], kind_len[k]);
            hn += kind_len[k];
        }
    for (size_t i = 0; i < n; i++) {
        imt__idx_smem *sm = &s->mem[s->nmem + i];
        if (m[i].slot >= (s->nlists ? s->nlists : 1)) return IMT_E_INTERNAL;
        sm->slot = m[i].slot;
        sm->category = m[i].category < 0 ? s->def_cat : m[i].category;
        IMT_TRY(arena_add(s, m[i].label, &sm->label, &s->last_label));
        IMT_TRY(arena_add(s, m[i].ext, &sm->ext, &s->last_ext));
    }
    s->nhb += hn;
    s->nmem += n;
    s->n++;
    s->total++;
    if (s->progress && (s->total & 65535) == 0) s->progress(s->progress_opaque, s->total);
cleanup:
    return err;
}

const char *imt__idx_sink_str(const imt__idx_sink *s, uint32_t off)
{
    return off && s->str ? s->str + off : "";
}

size_t imt__idx_sink_bytes(const imt__idx_sink *s)
{
    return s->cap * sizeof *s->recs + s->caphb + s->capmem * sizeof *s->mem + s->capstr;
}

void imt__idx_sink_reset(imt__idx_sink *s)
{
    s->n = 0;
    s->nhb = 0;
    s->nmem = 0;
    s->nstr = 0;
    s->last_label = 0;
    s->last_ext = 0;
}

void imt__idx_sink_free(imt__idx_sink *s)
{
    imt__free(s->recs);
    imt__free(s->hb);
    imt__free(s->mem);
    imt__free(s->lists);
    imt__free(s->str);
    s->recs = NULL;
    s->hb = NULL;
    s->mem = NULL;
    s->lists = NULL;
    s->str = NULL;
}

imt_err imt__idx_sink_add(imt__idx_sink *s, const imt__idx_rec *r, const char *label, const char *ext)
{
    imt__idx_member_in m = {0, r->category, label, ext};
    return imt__idx_sink_add_members(s, r, 1, &m);
}

imt_err imt__idx_sink_add_list(imt__idx_sink *s, const imt__idx_list_meta *m)
{
    if (s->nlists >= IDX_MAX_LISTS) return IMT_E_TOO_LARGE;
    if ((s->nlists & (s->nlists - 1)) == 0) { /* 0, 1, 2, 4, ...: double */
        imt__idx_list_meta *p = imt__realloc(s->lists, (s->nlists ? 2 * s->nlists : 1) * sizeof *p);
        if (!p) return IMT_E_NOMEM;
        s->lists = p;
    }
    s->lists[s->nlists++] = *m;
    return IMT_OK;
}

static imt_err sink_badv(imt__idx_sink *s, uint64_t line, imt_err e, const char *fmt, va_list ap)
{
    char msg[256];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (!s->skip_bad) {
        if (line) snprintf(s->err, s->errcap, "%s:%llu: %s", s->path, (unsigned long long)line, msg);
        else snprintf(s->err, s->errcap, "%s: %s", s->path, msg);
        return e;
    }
    if (s->bad < IMT_IMPORT_BAD_EXAMPLES) {
        char *ex = s->examples[s->bad];
        int k = snprintf(ex, sizeof s->examples[0], "%s:%llu: ", s->path, (unsigned long long)line);
        if (k >= 0 && (size_t)k < sizeof s->examples[0])
            snprintf(ex + k, sizeof s->examples[0] - (size_t)k, "%.*s", (int)(sizeof s->examples[0] - (size_t)k - 1), msg);
    }
    s->bad++;
    return IMT_OK;
}

imt_err imt__idx_sink_bad(imt__idx_sink *s, uint64_t line, imt_err e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    imt_err r = sink_badv(s, line, e, fmt, ap);
    va_end(ap);
    return r;
}

imt_err imt__idx_sink_fail(imt__idx_sink *s, imt_err e, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(s->err, s->errcap, "%s: %s", s->path, msg);
    return e;
}

