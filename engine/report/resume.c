/* engine/report/resume.c -- continuing an interrupted report.
 *
 * Resume works on the report alone: the walk order is deterministic, so the
 * records of the interrupted run are the prefix of a full run's records.
 * imt_report_skip claims each walked entry whose path equals the next old
 * record's path; that record is then copied verbatim, and counted in the
 * summary from the facts read back from its members (facts.c), when the
 * scan emits the entry.
 *
 * A preview's report (engine/triage: its header holds "preview") has its
 * records in read order, not walk order: its file records are indexed by a
 * hash of their path (16 bytes each) and offset, and an entry is claimed
 * wherever the walk meets it, so a full scan reads only what the preview
 * did not. */
#include "report.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* Read the next old file record into next_line; old_eof at the end, at the
 * summary, or at a torn last line (a killed scan). */
static imt_err old_advance(imt_report *r)
{
    if (r->next_line || r->old_eof) return IMT_OK;
    size_t cap = 0;
    char *line = NULL;
    ssize_t n = getline(&line, &cap, r->old);
    if (n <= 0 || line[n - 1] != '\n' || strncmp(line, "{\"record\":\"file\"", 16) != 0) {
        free(line);
        r->old_eof = 1;
        return IMT_OK;
    }
    r->next_line = line;
    r->next_len = (size_t)n;
    return IMT_OK;
}

/* The raw JSON literal of the "path" member of one of our record lines. */
static int path_literal(const char *line, const char **start, size_t *len)
{
    const char *p = strstr(line, ",\"path\":\"");
    if (!p) return 0;
    p += 8;
    const char *q = p + 1;
    while (*q && *q != '"') q += (*q == '\\' && q[1]) ? 2 : 1;
    if (*q != '"') return 0;
    *start = p;
    *len = (size_t)(q + 1 - p);
    return 1;
}

struct imt__oldrec {
    uint64_t h;                /* FNV-1a of the path's JSON literal */
    uint64_t off;              /* where its line starts in the old report */
};

static uint64_t fnv64(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 0x100000001b3ull;
    return h;
}

static int oldrec_cmp(const void *a, const void *b)
{
    const struct imt__oldrec *x = a, *y = b;
    if (x->h != y->h) return x->h < y->h ? -1 : 1;
    return x->off < y->off ? -1 : x->off > y->off;
}

/* Index every whole file record of the preview report (after its header). */
static imt_err index_preview(imt_report *r)
{
    imt_err err = IMT_OK;
    char *line = NULL;
    size_t cap = 0, n = 0, ncap = 0;
    for (;;) {
        off_t at = ftello(r->old);
        ssize_t len = getline(&line, &cap, r->old);
        if (len <= 0 || line[len - 1] != '\n') break;
        if (strncmp(line, "{\"record\":\"file\"", 16) != 0) continue;
        const char *lit;
        size_t litlen;
        if (!path_literal(line, &lit, &litlen)) continue;
        if (n == ncap) {
            size_t nc = ncap ? ncap * 2 : 256, bytes;
            if (!imt__mul_ok(nc, sizeof *r->byhash, &bytes)) { err = IMT_E_NOMEM; goto cleanup; }
            struct imt__oldrec *nv = imt__realloc(r->byhash, bytes);
            if (!nv) { err = IMT_E_NOMEM; goto cleanup; }
            r->byhash = nv;
            ncap = nc;
        }
        r->byhash[n].h = fnv64(lit, litlen);
        r->byhash[n++].off = (uint64_t)at;
    }
    r->n_byhash = n;
    if (n > 1) qsort(r->byhash, n, sizeof *r->byhash, oldrec_cmp);
    r->old_eof = 1; /* nothing is read in walk order */
cleanup:
    free(line);
    return err;
}

/* Preview resume: the old record of this path literal, or NULL. The line
 * (getline's) is the caller's. */
static char *find_preview_line(imt_report *r, const char *lit, size_t litlen, size_t *len)
{
    uint64_t h = fnv64(lit, litlen);
    size_t lo = 0, hi = r->n_byhash;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->byhash[mid].h < h) lo = mid + 1;
        else hi = mid;
    }
    for (; lo < r->n_byhash && r->byhash[lo].h == h; lo++) {
        char *line = NULL;
        size_t cap = 0;
        if (fseeko(r->old, (off_t)r->byhash[lo].off, SEEK_SET) != 0) return NULL;
        ssize_t n = getline(&line, &cap, r->old);
        const char *l2;
        size_t l2len;
        if (n > 0 && path_literal(line, &l2, &l2len) && l2len == litlen &&
            !memcmp(l2, lit, litlen)) {
            *len = (size_t)n;
            return line;
        }
        free(line);
    }
    return NULL;
}

imt_err imt_report_resume(imt_report *r, const char *path)
{
    if (!r || !path || r->began || r->old) return IMT_E_INVALID;
    imt_err err = IMT_OK;
    char *line = NULL;
    size_t cap = 0;
    char ebuf[256];
    r->old = fopen(path, "r");
    if (!r->old) return imt__report_fail(r, IMT_E_IO, "cannot open the report to resume: %s", strerror(errno));
    r->old_path = imt__strdup(path);
    if (!r->old_path) { err = IMT_E_NOMEM; goto cleanup; }
    ssize_t n = getline(&line, &cap, r->old);
    if (n <= 0) {
        err = imt__report_fail(r, IMT_E_PARSE, "cannot resume: %s holds no report header", path);
        goto cleanup;
    }
    r->old_header = yajl_tree_parse(line, ebuf, sizeof ebuf);
    const char *kp[] = {"record", NULL}, *fp[] = {"report_format", NULL},
               *hp[] = {"options", "hits_only", NULL}, *op[] = {"options", "format", NULL};
    yajl_val rec = r->old_header ? yajl_tree_get(r->old_header, kp, yajl_t_string) : NULL;
    yajl_val fmt = r->old_header ? yajl_tree_get(r->old_header, fp, yajl_t_number) : NULL;
    if (!rec || strcmp(rec->u.string, "header") != 0 || !fmt ||
        YAJL_GET_INTEGER(fmt) != IMT__REPORT_FORMAT_VERSION) {
        err = imt__report_fail(r, IMT_E_PARSE,
                   "cannot resume: %s does not start with an imgtriage JSONL report header",
                   path);
        goto cleanup;
    }
    yajl_val ho = yajl_tree_get(r->old_header, hp, yajl_t_any);
    yajl_val of = yajl_tree_get(r->old_header, op, yajl_t_string);
    if ((ho && YAJL_IS_TRUE(ho)) || !of || strcmp(of->u.string, "jsonl") != 0) {
        err = imt__report_fail(r, IMT_E_INVALID,
                   "cannot resume from %s: only a full JSONL report (no --hits-only) can be "
                   "resumed", path);
        goto cleanup;
    }
    const char *pp[] = {"preview", NULL};
    if (yajl_tree_get(r->old_header, pp, yajl_t_object)) err = index_preview(r);
    else err = old_advance(r);
cleanup:
    free(line);
    return err;
}

/* A container's record is followed by its members' ("container":
 * {..."members":N}): claim it only with all N of them (a report cut inside
 * them expands the container again), appended to next_line. Returns 0 when
 * they are not all there (claims then stop: the walk reads the rest again). */
static int claim_members(imt_report *r, char **linep, size_t *lenp,
                         unsigned long long *claimed)
{
    *claimed = 0;
    /* (a '"' not preceded by '\\' is never inside a string: no path or
     * detail can hold this) */
    const char *c = strstr(*linep, ",\"container\":{\"expanded\":");
    const char *m = c ? strstr(c, ",\"members\":") : NULL;
    if (!m) return 1;
    unsigned long long n = strtoull(m + 11, NULL, 10);
    char *all = *linep;
    size_t len = *lenp;
    for (unsigned long long i = 0; i < n; i++) {
        size_t cap = 0;
        char *line = NULL;
        ssize_t k = getline(&line, &cap, r->old);
        if (k <= 0 || line[k - 1] != '\n' || strncmp(line, "{\"record\":\"file\"", 16) != 0 ||
            !strstr(line, ",\"member\":{\"depth\":")) {
            free(line);
            if (all != *linep) free(all);
            r->old_eof = 1; /* stop claiming: everything from here is read again */
            return 0;
        }
        char *na = malloc(len + (size_t)k + 1); /* freed as getline's lines are */
        if (!na) {
            free(line);
            if (all != *linep) free(all);
            r->old_eof = 1;
            return 0;
        }
        memcpy(na, all, len);
        memcpy(na + len, line, (size_t)k + 1);
        if (all != *linep) free(all);
        free(line);
        all = na;
        len += (size_t)k;
    }
    if (all != *linep) {
        free(*linep);
        *linep = all;
        *lenp = len;
    }
    *claimed = n;
    return 1;
}

int imt_report_skip(void *report, const char *path, imt_entry_type type)
{
    imt_report *r = report;
    (void)type;
    if (!r || !r->old) return 0;
    imt__buf *t = &r->tmp;
    char *pline = NULL;
    size_t plen = 0;
    unsigned long long members;
    if (r->byhash) {
        t->len = 0;
        imt__buf_json_str(t, path);
        if (t->oom || !(pline = find_preview_line(r, t->p, t->len, &plen))) return 0;
        /* the container's members follow its line in the old report */
        if (!claim_members(r, &pline, &plen, &members)) {
            free(pline);
            return 0;
        }
    } else {
        if (old_advance(r) != IMT_OK || !r->next_line) return 0;
        const char *lit;
        size_t litlen;
        if (!path_literal(r->next_line, &lit, &litlen)) return 0;
        t->len = 0;
        imt__buf_json_str(t, path);
        if (t->oom || t->len != litlen || memcmp(t->p, lit, litlen) != 0) return 0;
        if (!claim_members(r, &r->next_line, &r->next_len, &members)) return 0;
    }
    if (r->q_len == r->q_cap) {
        size_t nc = r->q_cap ? r->q_cap * 2 : 64, bytes;
        if (!imt__mul_ok(nc, sizeof *r->queue, &bytes)) {
            free(pline);
            return 0;
        }
        imt__pending *nq = imt__malloc(bytes);
        if (!nq) {
            free(pline);
            return 0;
        }
        for (size_t i = 0; i < r->q_len; i++) nq[i] = r->queue[(r->q_head + i) % r->q_cap];
        imt__free(r->queue);
        r->queue = nq;
        r->q_head = 0;
        r->q_cap = nc;
    }
    if (pline) {
        r->queue[(r->q_head + r->q_len++) % r->q_cap] = (imt__pending){pline, plen};
        return members < INT_MAX ? 1 + (int)members : INT_MAX;
    }
    r->queue[(r->q_head + r->q_len++) % r->q_cap] = (imt__pending){r->next_line, r->next_len};
    r->next_line = NULL;
    return members < INT_MAX ? 1 + (int)members : INT_MAX; /* the records claimed */
}

void imt__resume_free(imt_report *r)
{
    if (r->old) fclose(r->old);
    imt__free(r->old_path);
    yajl_tree_free(r->old_header);
    free(r->next_line); /* from getline() */
    for (size_t i = 0; i < r->q_len; i++) free(r->queue[(r->q_head + i) % r->q_cap].line);
    imt__free(r->queue);
    imt__free(r->byhash);
    r->byhash = NULL;
    r->n_byhash = 0;
    r->old = NULL;
    r->old_path = NULL;
    r->old_header = NULL;
    r->next_line = NULL;
    r->queue = NULL;
    r->q_len = r->q_cap = r->q_head = 0;
}

/* Count an old line's facts, read back from its members. */
static imt_err account_old(imt_report *r, const char *line)
{
    imt_err err = IMT_OK;
    char ebuf[128];
    imt_scan_match *ms = NULL;
    yajl_val v = yajl_tree_parse(line, ebuf, sizeof ebuf);
    if (!v)
        return imt__report_fail(r, IMT_E_PARSE, "cannot parse a record of the resumed report: %s",
                                 ebuf);
    imt__rfacts f;
    err = imt__facts_from_json(v, &f, &ms);
    if (err) {
        imt__report_fail(r, err, "a record of the resumed report is not one of ours: %s",
                         imt_strerror(err));
        goto cleanup;
    }
    const char *lit;
    size_t litlen;
    if (!path_literal(line, &lit, &litlen)) {
        err = imt__report_fail(r, IMT_E_PARSE, "a record of the resumed report has no path%s",
                               NULL);
        goto cleanup;
    }
    imt__buf *t = &r->tmp;
    t->len = 0;
    imt__buf_put(t, lit, litlen);
    if (t->oom) { err = IMT_E_NOMEM; goto cleanup; }
    IMT_TRY(imt__report_account(r, &f, t->p));
cleanup:
    imt__free(ms);
    yajl_tree_free(v);
    return err;
}

imt_err imt__resume_emit(imt_report *r, uint64_t seq)
{
    if (!r->q_len)
        return imt__report_fail(r, IMT_E_INTERNAL, "a resumed entry has no old record%s", NULL);
    imt__pending p = r->queue[r->q_head];
    r->q_head = (r->q_head + 1) % r->q_cap;
    r->q_len--;
    r->resumed++;
    imt_err err = IMT_OK;
    /* one line, or a container's line and its members' */
    for (char *l = p.line; !err && l < p.line + p.len;) {
        char *nl = memchr(l, '\n', (size_t)(p.line + p.len - l));
        if (!nl) break;
        *nl = '\0';
        err = account_old(r, l);
        *nl = '\n';
        l = nl + 1;
    }
    if (!err) {
        /* Verbatim: the options check made sure the format is the same
         * (full JSONL), so this is the line an uninterrupted run writes;
         * but for its seq: a preview's is the file's listing position,
         * which container members or carved items before it shift in the
         * full scan (seq: this scan's; its members' follow it). */
        static const char pre[] = "{\"record\":\"file\",\"seq\":";
        const size_t pl = sizeof pre - 1;
        for (char *l = p.line; l < p.line + p.len;) {
            char *nl = memchr(l, '\n', (size_t)(p.line + p.len - l));
            char *end = nl ? nl + 1 : p.line + p.len;
            char *q = l + pl;
            if ((size_t)(end - l) > pl && !memcmp(l, pre, pl)) {
                while (q < end && *q >= '0' && *q <= '9') q++;
                imt__buf_put(&r->line, l, pl);
                imt__buf_printf(&r->line, "%llu", (unsigned long long)seq++);
                imt__buf_put(&r->line, q, (size_t)(end - q));
            } else {
                imt__buf_put(&r->line, l, (size_t)(end - l));
            }
            l = end;
        }
        err = imt__report_flush(r);
    }
    free(p.line);
    return err;
}
