/* engine/backlog/export.c -- the ranked backlog for a case system: one
 * JSON array, JSON lines, or CSV with a header row. Strings go through
 * the reports' escapers (lossless; no spreadsheet formula in a CSV cell). */
#include "backlog/backlog.h"

#include <string.h>

static void put_result_json(imt__buf *b, const char *key, const imt_bl_result *r)
{
    imt__buf_printf(b, ",\"%s\":", key);
    if (!r->have) {
        imt__buf_puts(b, "null");
        return;
    }
    imt__buf_printf(b, "{\"complete\":%s,\"files\":%lld,\"hit_files\":%lld,\"hit_items\":%lld,"
                    "\"distinct_known_items\":%lld,\"priority\":%.3f",
                    r->complete ? "true" : "false", (long long)r->files,
                    (long long)r->hit_files, (long long)r->hit_items,
                    (long long)r->known_items, r->priority);
    if (r->preview) {
        imt__buf_puts(b, ",\"preview\":");
        imt__buf_puts(b, r->preview); /* JSON text the scan wrote */
    }
    imt__buf_puts(b, "}");
}

static void put_str_or_null(imt__buf *b, const char *s)
{
    if (s) imt__buf_json_str(b, s);
    else imt__buf_puts(b, "null");
}

static void put_json(imt__buf *b, const imt_bl_device *d, size_t rank)
{
    static const char *const groups[] = {"known-material", "not-previewed", "previewed-clean"};
    imt__buf_printf(b, "{\"rank\":%zu,\"id\":%lld,\"case\":", rank, (long long)d->id);
    imt__buf_json_str(b, d->case_id);
    imt__buf_puts(b, ",\"device\":");
    imt__buf_json_str(b, d->device);
    imt__buf_puts(b, ",\"received\":");
    put_str_or_null(b, d->received);
    imt__buf_puts(b, ",\"added\":");
    put_str_or_null(b, d->added);
    imt__buf_printf(b, ",\"state\":\"%s\",\"group\":\"%s\",\"sources\":[",
                    imt_bl_state_name(d->state), groups[d->group]);
    for (size_t i = 0; i < d->n_sources; i++) {
        if (i) imt__buf_puts(b, ",");
        imt__buf_json_str(b, d->sources[i]);
    }
    imt__buf_puts(b, "]");
    put_result_json(b, "preview", &d->preview);
    put_result_json(b, "scan", &d->scan);
    imt__buf_puts(b, ",\"preview_report\":");
    put_str_or_null(b, d->preview_report);
    imt__buf_puts(b, ",\"report\":");
    put_str_or_null(b, d->report);
    imt__buf_puts(b, ",\"worker\":");
    put_str_or_null(b, d->worker);
    imt__buf_printf(b, ",\"attempts\":%d,\"error\":", d->attempts);
    put_str_or_null(b, d->error);
    imt__buf_puts(b, "}");
}

static void csv_num(imt__buf *b, const imt_bl_result *r, int64_t v)
{
    if (r->have) imt__buf_printf(b, ",%lld", (long long)v);
    else imt__buf_puts(b, ",");
}

static void put_csv(imt__buf *b, const imt_bl_device *d, size_t rank)
{
    imt__buf_printf(b, "%zu,%lld,", rank, (long long)d->id);
    imt__buf_csv_str(b, d->case_id);
    imt__buf_puts(b, ",");
    imt__buf_csv_str(b, d->device);
    imt__buf_puts(b, ",");
    imt__buf_csv_str(b, d->received ? d->received : "");
    imt__buf_printf(b, ",%s", imt_bl_state_name(d->state));
    for (int k = 0; k < 2; k++) {
        const imt_bl_result *r = k ? &d->scan : &d->preview;
        csv_num(b, r, r->hit_files);
        csv_num(b, r, r->hit_items);
        csv_num(b, r, r->known_items);
        if (r->have) imt__buf_printf(b, ",%.3f", r->priority);
        else imt__buf_puts(b, ",");
    }
    imt__buf_puts(b, ",");
    imt__buf_csv_str(b, d->report ? d->report : "");
    imt__buf_puts(b, ",");
    imt__buf_csv_str(b, d->error ? d->error : "");
    imt__buf_puts(b, ",");
    {   /* one cell: the sources joined by newlines (written as \x0a) */
        imt__buf joined = {0};
        for (size_t i = 0; i < d->n_sources; i++) {
            if (i) imt__buf_puts(&joined, "\n");
            imt__buf_puts(&joined, d->sources[i]);
        }
        imt__buf_csv_str(b, joined.p ? joined.p : "");
        if (joined.oom) b->oom = 1;
        imt__buf_free(&joined);
    }
    imt__buf_puts(b, "\n");
}

imt_err imt_backlog_export(imt_backlog *bl, FILE *f, const char *format)
{
    if (!bl || !bl->db || !f || !format) return IMT_E_INVALID;
    int json = !strcmp(format, "json"), jsonl = !strcmp(format, "jsonl"),
        csv = !strcmp(format, "csv");
    if (!json && !jsonl && !csv)
        return imt__bl_fail(bl, IMT_E_INVALID, "unknown export format %s", format);
    imt_bl_device *v;
    size_t n;
    imt_err err = imt_backlog_devices(bl, &v, &n);
    if (err) return err;
    imt__buf b = {0};
    if (csv)
        imt__buf_puts(&b, "rank,id,case,device,received,state,preview_hit_files,"
                          "preview_hit_items,preview_known_items,preview_priority,hit_files,"
                          "hit_items,known_items,priority,report,error,sources\n");
    if (json) imt__buf_puts(&b, "[");
    for (size_t i = 0; i < n; i++) {
        if (csv) {
            put_csv(&b, &v[i], i + 1);
        } else {
            if (json && i) imt__buf_puts(&b, ",\n");
            put_json(&b, &v[i], i + 1);
            if (jsonl) imt__buf_puts(&b, "\n");
        }
    }
    if (json) imt__buf_puts(&b, "]\n");
    if (b.oom) err = IMT_E_NOMEM;
    else if (b.len && fwrite(b.p, 1, b.len, f) != b.len)
        err = imt__bl_fail(bl, IMT_E_WRITE, "the export could not be written");
    imt__buf_free(&b);
    imt_bl_devices_free(v, n);
    return err;
}
