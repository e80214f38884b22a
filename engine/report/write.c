/* engine/report/write.c -- the leaf helpers every other file of the module
 * uses (and that use none of them): the error setter, writing a built line,
 * counting a record into the summary, JSON equality. */
#include "report.h"

#include <errno.h>
#include <string.h>

imt_err imt__report_fail(imt_report *r, imt_err e, const char *fmt, const char *arg)
{
    imt__set_detail(r->last_error, sizeof r->last_error, fmt, arg ? arg : "");
    return e;
}

void imt__put_str_or_null(imt__buf *b, const char *s)
{
    if (s) imt__buf_json_str(b, s);
    else imt__buf_puts(b, "null");
}

imt_err imt__report_flush(imt_report *r)
{
    imt__buf *b = &r->line;
    if (b->oom) {
        imt__buf_free(b);
        return imt__report_fail(r, IMT_E_NOMEM, "out of memory building a report line%s", NULL);
    }
    if (b->len && (fwrite(b->p, 1, b->len, r->f) != b->len || fflush(r->f) != 0)) {
        r->write_failed = 1;
        r->write_errno = errno;
        return imt__report_fail(r, IMT_E_WRITE, "cannot write the report: %s", strerror(errno));
    }
    b->len = 0;
    return IMT_OK;
}

imt_err imt__report_account(imt_report *r, const imt__rfacts *f, const char *path_json)
{
    return imt__summary_add(&r->sum, f, path_json, (double)(imt__now_ms() - r->t0_ms) / 1000.0);
}

int imt__json_equal(yajl_val a, yajl_val b)
{
    if (!a || !b) return a == b;
    if (a->type != b->type) return 0;
    switch (a->type) {
    case yajl_t_string: return !strcmp(a->u.string, b->u.string);
    case yajl_t_number: return !strcmp(a->u.number.r, b->u.number.r);
    case yajl_t_object:
        if (a->u.object.len != b->u.object.len) return 0;
        for (size_t i = 0; i < a->u.object.len; i++) {
            const char *k[] = {a->u.object.keys[i], NULL};
            if (!imt__json_equal(a->u.object.values[i], yajl_tree_get(b, k, yajl_t_any))) return 0;
        }
        return 1;
    case yajl_t_array:
        if (a->u.array.len != b->u.array.len) return 0;
        for (size_t i = 0; i < a->u.array.len; i++)
            if (!imt__json_equal(a->u.array.values[i], b->u.array.values[i])) return 0;
        return 1;
    default: return 1; /* true, false, null */
    }
}
