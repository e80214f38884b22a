/* engine/backlog/ingest.c -- what a finished (or cut short) report says:
 * its summary record, the last line a scan writes. A report without one
 * (the scan was killed, or crashed) has no result: the device goes back to
 * the queue and is resumed from the records that report holds. */
#include "backlog/backlog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#define TAIL_MAX (8u << 20) /* a summary line is far shorter */

void imt__bl_result_clear(imt_bl_result *r)
{
    imt__free(r->preview);
    imt__free(r->reason);
    memset(r, 0, sizeof *r);
}

static int64_t num(yajl_val o, const char *key)
{
    const char *p[] = {key, NULL};
    yajl_val v = yajl_tree_get(o, p, yajl_t_number);
    return v && YAJL_IS_INTEGER(v) ? YAJL_GET_INTEGER(v) : -1;
}

/* The text of the JSON value that starts at p (an object), or NULL. */
static char *object_text(const char *p)
{
    int depth = 0, in_str = 0;
    for (const char *q = p; *q; q++) {
        if (in_str) {
            if (*q == '\\' && q[1]) q++;
            else if (*q == '"') in_str = 0;
        } else if (*q == '"') {
            in_str = 1;
        } else if (*q == '{' || *q == '[') {
            depth++;
        } else if (*q == '}' || *q == ']') {
            if (--depth == 0) {
                size_t n = (size_t)(q - p) + 1;
                char *s = imt__malloc(n + 1);
                if (s) {
                    memcpy(s, p, n);
                    s[n] = 0;
                }
                return s;
            }
        }
    }
    return NULL;
}

imt_err imt__bl_read_summary(const char *path, imt_bl_result *r)
{
    memset(r, 0, sizeof *r);
    FILE *f = fopen(path, "rb");
    if (!f) return IMT_OK;
    imt_err err = IMT_OK;
    char *buf = NULL;
    yajl_val v = NULL;
    if (fseeko(f, 0, SEEK_END) != 0) goto cleanup;
    off_t size = ftello(f);
    if (size <= 0) goto cleanup;
    size_t n = (size_t)(size > (off_t)TAIL_MAX ? TAIL_MAX : size);
    if (fseeko(f, size - (off_t)n, SEEK_SET) != 0) goto cleanup;
    buf = imt__malloc(n + 1);
    if (!buf) {
        err = IMT_E_NOMEM;
        goto cleanup;
    }
    if (fread(buf, 1, n, f) != n) goto cleanup;
    buf[n] = 0;
    /* A whole last line: a killed writer leaves a line without its end. */
    if (buf[n - 1] != '\n') goto cleanup;
    buf[n - 1] = 0;
    char *line = strrchr(buf, '\n');
    line = line ? line + 1 : buf;
    if (!strncmp(line, "# ", 2)) line += 2; /* a CSV report's summary */
    if (strncmp(line, "{\"record\":\"summary\"", 19)) goto cleanup;
    v = yajl_tree_parse(line, NULL, 0);
    if (!v || !YAJL_IS_OBJECT(v)) goto cleanup;
    const char *cp[] = {"complete", NULL}, *pp[] = {"priority", NULL};
    r->have = 1;
    r->complete = YAJL_IS_TRUE(yajl_tree_get(v, cp, yajl_t_true));
    r->files = num(v, "files");
    r->hit_files = num(v, "hit_files");
    r->hit_items = num(v, "hit_items");
    r->known_items = num(v, "distinct_known_items");
    yajl_val pr = yajl_tree_get(v, pp, yajl_t_number);
    r->priority = pr ? YAJL_GET_DOUBLE(pr) : 0.0;
    const char *rp[] = {"incomplete_reason", NULL};
    yajl_val why = yajl_tree_get(v, rp, yajl_t_string);
    if (why && !(r->reason = imt__strdup(YAJL_GET_STRING(why)))) err = IMT_E_NOMEM;
    const char *pv = strstr(line, ",\"preview\":{");
    if (pv) r->preview = object_text(pv + 11);
cleanup:
    if (v) yajl_tree_free(v);
    imt__free(buf);
    fclose(f);
    return err;
}

imt_err imt_bl_read_summary(const char *path, imt_bl_result *r)
{
    if (!path || !r) return IMT_E_INVALID;
    return imt__bl_read_summary(path, r);
}

void imt_bl_result_clear(imt_bl_result *r)
{
    if (r) imt__bl_result_clear(r);
}
