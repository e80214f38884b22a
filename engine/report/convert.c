/* engine/report/convert.c -- a JSONL report re-emitted in another format
 * (imgtriage report): the header and summary lines are found in a first
 * pass, then every record line is read back into the scan's record struct
 * (facts.c: imt__record_from_json) and handed to the format's writer, so no
 * writer parses a report itself. Memory: one line at a time, plus what a
 * writer keeps (the HTML page its hit rows and chart buckets). */
#include "report.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Every string of a parsed tree back to the bytes that were written. */
static void unescape_tree(yajl_val v)
{
    if (!v) return;
    if (YAJL_IS_STRING(v)) {
        imt__json_unescape(v->u.string);
    } else if (YAJL_IS_OBJECT(v)) {
        for (size_t i = 0; i < v->u.object.len; i++) {
            imt__json_unescape((char *)v->u.object.keys[i]);
            unescape_tree(v->u.object.values[i]);
        }
    } else if (YAJL_IS_ARRAY(v)) {
        for (size_t i = 0; i < v->u.array.len; i++) unescape_tree(v->u.array.values[i]);
    }
}

static yajl_val parse_line(const char *line, const char *kind)
{
    char ebuf[128];
    yajl_val v = yajl_tree_parse(line, ebuf, sizeof ebuf);
    const char *rec = v ? imt__jstr(v, "record") : NULL;
    if (!rec || strcmp(rec, kind) != 0) {
        yajl_tree_free(v);
        return NULL;
    }
    unescape_tree(v);
    return v;
}

static const imt__writer *writer_of(int format)
{
    switch (format) {
    case IMT_REPORT_JSONL: return &imt__writer_jsonl;
    case IMT_REPORT_CSV: return &imt__writer_csv;
    case IMT_REPORT_DFXML: return &imt__writer_dfxml;
    case IMT_REPORT_VICS: return &imt__writer_vics;
    case IMT_REPORT_HTML: return &imt__writer_html;
    default: return NULL;
    }
}

imt_err imt_report_convert(const char *in_path, FILE *out, const imt_report_opts *opts,
                           char *detail, size_t cap)
{
    char dummy[8];
    if (!detail || !cap) { detail = dummy; cap = sizeof dummy; }
    detail[0] = '\0';
    if (!in_path || !out || !opts) return IMT_E_INVALID;
    const imt__writer *w = writer_of((int)opts->format);
    if (!w) {
        imt__set_detail(detail, cap, "unknown report format%s", "");
        return IMT_E_INVALID;
    }
    imt_err err = IMT_OK;
    imt__conv c;
    memset(&c, 0, sizeof c);
    c.out = out;
    c.format = (int)opts->format;
    c.hits_only = opts->hits_only;
    c.why = detail;
    c.cap = cap;
    char *line = NULL, *header_line = NULL, *summary_line = NULL, *copy = NULL;
    size_t lcap = 0;
    ssize_t n;
    uint64_t lineno = 0;
    int began = 0;
    imt__jrecord jr = {0};
    yajl_val v = NULL;
    FILE *in = fopen(in_path, "r");
    if (!in) {
        imt__set_detail(detail, cap, "cannot open the report: %s", strerror(errno));
        return IMT_E_IO;
    }
    /* Pass 1: the header (first line) and the summary (a last whole line). */
    n = getline(&line, &lcap, in);
    if (n <= 0 || line[n - 1] != '\n' || strlen(line) != (size_t)n ||
        !(c.header = parse_line(line, "header"))) {
        imt__set_detail(detail, cap, "%s does not start with an imgtriage JSONL report header",
                        in_path);
        err = IMT_E_PARSE;
        goto cleanup;
    }
    header_line = imt__strdup(line);
    if (!header_line) { err = IMT_E_NOMEM; goto cleanup; }
    yajl_val fv = imt__jget(c.header, "report_format", yajl_t_number);
    c.version = fv ? (int)YAJL_GET_INTEGER(fv) : 0;
    if (c.version < 1 || c.version > IMT__REPORT_FORMAT_VERSION) {
        imt__set_detail(detail, cap, "%s: a report format this version does not read",
                        in_path);
        err = IMT_E_PARSE;
        goto cleanup;
    }
    while ((n = getline(&line, &lcap, in)) > 0) {
        if (line[n - 1] == '\n' && strlen(line) == (size_t)n &&
            !strncmp(line, "{\"record\":\"summary\"", 19)) {
            imt__free(summary_line);
            summary_line = imt__strdup(line);
            if (!summary_line) { err = IMT_E_NOMEM; goto cleanup; }
        }
    }
    if (summary_line && !(c.summary = parse_line(summary_line, "summary"))) {
        imt__set_detail(detail, cap, "%s: its summary record does not parse", in_path);
        err = IMT_E_PARSE;
        goto cleanup;
    }
    c.header_line = header_line;
    c.summary_line = summary_line;
    if (fseek(in, 0, SEEK_SET) != 0 || getline(&line, &lcap, in) <= 0) {
        imt__set_detail(detail, cap, "cannot read the report twice (a regular file is "
                        "needed): %s", strerror(errno));
        err = IMT_E_IO;
        goto cleanup;
    }
    lineno = 1;
    began = 1;
    IMT_TRY(w->begin(&c));
    /* Pass 2: the records, in order. A torn last line (a killed scan) ends them. */
    while ((n = getline(&line, &lcap, in)) > 0) {
        lineno++;
        if (line[n - 1] != '\n') break;
        if (strncmp(line, "{\"record\":\"file\"", 16) != 0) continue;
        if (strlen(line) != (size_t)n) { /* a NUL byte: not a line we wrote */
            imt__set_detail(detail, cap, "%s:%llu: a NUL byte in a record", in_path,
                            (unsigned long long)lineno);
            err = IMT_E_PARSE;
            goto cleanup;
        }
        /* parse a copy: yajl's strings are unescaped in place, and a
         * writer may want the raw line */
        imt__free(copy);
        if (!(copy = imt__strdup(line))) { err = IMT_E_NOMEM; goto cleanup; }
        v = parse_line(copy, "file");
        if (!v || imt__record_from_json(v, &jr) != IMT_OK) {
            imt__set_detail(detail, cap, "%s:%llu: not a record this version reads", in_path,
                            (unsigned long long)lineno);
            err = IMT_E_PARSE;
            goto cleanup;
        }
        c.record_line = line;
        if (!c.hits_only || imt__record_has_hit(&jr.rec)) IMT_TRY(w->record(&c, &jr.rec));
        imt__jrecord_clear(&jr);
        yajl_tree_free(v);
        v = NULL;
    }
    if (ferror(in)) {
        imt__set_detail(detail, cap, "cannot read the report: %s", strerror(errno));
        err = IMT_E_IO;
    }
cleanup:
    if (began) {
        c.failed = err != IMT_OK;
        imt_err e2 = w->end(&c);
        if (!err) err = e2;
    }
    if (!err && fflush(out) != 0) {
        imt__set_detail(detail, cap, "cannot write the output: %s", strerror(errno));
        err = IMT_E_WRITE;
    }
    if (err == IMT_E_NOMEM && !detail[0]) imt__set_detail(detail, cap, "out of memory%s", "");
    imt__jrecord_clear(&jr);
    yajl_tree_free(v);
    yajl_tree_free(c.header);
    yajl_tree_free(c.summary);
    imt__buf_free(&c.b);
    imt__free(header_line);
    imt__free(summary_line);
    imt__free(copy);
    free(line);
    fclose(in);
    return err;
}

static char *dup_or_null(const char *s, int *oom)
{
    if (!s) return NULL;
    char *d = imt__strdup(s);
    if (!d) *oom = 1;
    return d;
}

imt_err imt_report_inputs_read(imt_report_inputs *out, const char *path)
{
    if (!out || !path) return IMT_E_INVALID;
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "r");
    if (!f) return IMT_E_IO;
    char *line = NULL;
    size_t lcap = 0;
    imt_err err = IMT_OK;
    yajl_val h = NULL;
    if (getline(&line, &lcap, f) <= 0 || !(h = parse_line(line, "header"))) {
        err = IMT_E_PARSE;
        goto cleanup;
    }
    yajl_val ps = imt__jget(h, "paths", yajl_t_array);
    const char *ip[] = {"index", "path", NULL};
    yajl_val iv = yajl_tree_get(h, ip, yajl_t_string);
    int oom = 0;
    out->index_path = dup_or_null(iv ? iv->u.string : NULL, &oom);
    size_t np = ps ? ps->u.array.len : 0;
    if (np) {
        out->paths = imt__calloc(np, sizeof *out->paths);
        if (!out->paths) oom = 1;
        for (size_t i = 0; out->paths && i < np; i++) {
            yajl_val p = ps->u.array.values[i];
            if (!YAJL_IS_STRING(p)) continue;
            out->paths[out->n_paths++] = dup_or_null(p->u.string, &oom);
        }
    }
    if (oom) err = IMT_E_NOMEM;
cleanup:
    if (err) imt_report_inputs_free(out);
    yajl_tree_free(h);
    free(line);
    fclose(f);
    return err;
}

void imt_report_inputs_free(imt_report_inputs *in)
{
    if (!in) return;
    for (size_t i = 0; i < in->n_paths; i++) imt__free(in->paths[i]);
    imt__free(in->paths);
    imt__free(in->index_path);
    memset(in, 0, sizeof *in);
}
