/* engine/report/end.c -- the end of a report: the summary record (counts,
 * scan errors apart from findings, hits per list, first hit, priority) and
 * the human summary for stderr, both from the pure summary (summary.c). */
#include "report.h"

#include <string.h>

imt_err imt_report_end(imt_report *r, imt_err scan_status, imt_report_summary *sum)
{
    if (!r || !r->began || r->ended) return IMT_E_INVALID;
    r->ended = 1;
    imt__buf *b = &r->line;
    imt__buf expl = {0};
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    /* Complete only when nothing kept it from being so: the exit status and
     * the summary agree (issue 9 item 11). */
    int complete = scan_status == IMT_OK && r->sum.errors == 0 && !r->write_failed &&
                   !r->image_failures;
    /* A preview that stopped before reading every file is not a complete
     * scan; nor is one of a disk image, whose unallocated space it did not
     * carve. */
    int preview_cut = r->is_preview && (r->preview.stopped_by != IMT_PREVIEW_COMPLETE ||
                                        !r->preview.enumeration_complete ||
                                        r->preview.uncarved_areas);
    if (preview_cut) complete = 0;
    imt_err overall = r->write_failed        ? IMT_E_WRITE
                      : scan_status != IMT_OK ? scan_status
                      : complete              ? IMT_OK
                      : preview_cut && !r->sum.errors ? IMT_E_INTERRUPTED
                                              : IMT_E_IO;
    char why[160] = "";
    /* A failed write stops the scan too: say that, not "stopped". */
    if (r->write_failed)
        imt__set_detail(why, sizeof why, "the report could not be written: %s",
                        strerror(r->write_errno));
    else if (scan_status == IMT_E_INTERRUPTED)
        imt__set_detail(why, sizeof why, "stopped before the end");
    else if (scan_status != IMT_OK)
        imt__set_detail(why, sizeof why, "the scan failed: %s", imt_strerror(scan_status));
    else if (preview_cut)
        imt__set_detail(why, sizeof why, "a preview, stopped by %s: %llu of %llu files read%s%s",
                        imt_preview_stop_name(r->preview.stopped_by),
                        (unsigned long long)r->preview.examined_files,
                        (unsigned long long)r->preview.enumerated_files,
                        r->preview.enumeration_complete ? "" : " (listing incomplete)",
                        r->preview.uncarved_areas ? "; unallocated space not carved" : "");
    else if (r->sum.errors)
        imt__set_detail(why, sizeof why, "%llu %s could not be read",
                        (unsigned long long)r->sum.errors, r->sum.errors == 1 ? "entry" : "entries");
    else if (r->image_failures)
        imt__set_detail(why, sizeof why, "%s", r->image_failure);
    r->priority = imt__priority(&r->sum, &expl);
    if (r->is_preview) imt__preview_explain(&expl, &r->preview);

    imt__buf_printf(b, "%s{\"record\":\"summary\",\"complete\":%s,\"scan_status\":\"%s\",",
                    r->o.format == IMT_REPORT_CSV ? "# " : "", complete ? "true" : "false",
                    imt_err_name(overall));
    if (!complete) {
        imt__buf_puts(b, "\"incomplete_reason\":");
        imt__buf_json_str(b, why);
        imt__buf_puts(b, ",");
    }
    imt__buf_puts(b, "\"end_time\":");
    imt__buf_time(b, (int64_t)now.tv_sec, (int32_t)now.tv_nsec);
    imt__buf_printf(b, ",\"elapsed_s\":%.3f,\"device\":",
                    (double)(imt__now_ms() - r->t0_ms) / 1000.0);
    imt__put_str_or_null(b, r->o.device);
    imt__buf_puts(b, ",\"case\":");
    imt__put_str_or_null(b, r->o.case_id);
    imt__buf_printf(b, ",\"entries\":%llu,\"files\":%llu,\"images\":%llu,\"bytes\":%llu,"
                    "\"hit_items\":%llu,\"hit_files\":%llu,\"distinct_known_items\":%llu,"
                    "\"known_good_files\":%llu,\"low_quality_images\":%llu,"
                    "\"scan_errors\":%llu,\"types\":{",
                    (unsigned long long)r->sum.entries, (unsigned long long)r->sum.files,
                    (unsigned long long)r->sum.images, (unsigned long long)r->sum.bytes,
                    (unsigned long long)(r->sum.n_seized + r->sum.unkeyed_hits),
                    (unsigned long long)r->sum.hit_files, (unsigned long long)r->sum.n_items,
                    (unsigned long long)r->sum.known_good_files, (unsigned long long)r->sum.low_quality,
                    (unsigned long long)r->sum.errors);
    int first = 1;
    for (int t = 0; t < IMT_ENTRY__COUNT; t++) {
        if (!r->sum.by_type[t]) continue;
        imt__buf_printf(b, "%s\"%s\":%llu", first ? "" : ",", imt_entry_type_name((imt_entry_type)t),
                        (unsigned long long)r->sum.by_type[t]);
        first = 0;
    }
    /* Scan errors (what kept the scan from being complete) apart from
     * findings about files (corrupt, unsupported-format, vanished, ...). */
    for (int pass = 0; pass < 2; pass++) {
        const uint64_t *cnt = pass ? r->sum.find_by_status : r->sum.err_by_status;
        imt__buf_puts(b, pass ? "},\"findings_by_kind\":{" : "},\"errors_by_kind\":{");
        first = 1;
        for (int e = 0; e < IMT_E__COUNT; e++) {
            if (!cnt[e] || imt__is_plain_outcome((imt_err)e)) continue;
            imt__buf_printf(b, "%s\"%s\":%llu", first ? "" : ",", imt_err_name((imt_err)e),
                            (unsigned long long)cnt[e]);
            first = 0;
        }
    }
    if (r->sum.containers || r->sum.members || r->sum.encrypted_containers) {
        imt__buf_printf(b, "},\"containers\":{\"expanded\":%llu,\"members\":%llu,"
                        "\"encrypted\":%llu,\"limits\":{",
                        (unsigned long long)r->sum.containers, (unsigned long long)r->sum.members,
                        (unsigned long long)r->sum.encrypted_containers);
        first = 1;
        for (int i = 0; i < IMT_CLIMIT__COUNT; i++) {
            if (!r->sum.limits[i]) continue;
            imt__buf_printf(b, "%s\"%s\":%llu", first ? "" : ",", imt_container_limit_name(i),
                            (unsigned long long)r->sum.limits[i]);
            first = 0;
        }
        imt__buf_puts(b, "}");
    }
    imt__buf_puts(b, "},\"hits_by_list\":[");
    imt__summary_sort(&r->sum);
    for (size_t i = 0; i < r->sum.n_cats; i++) {
        const imt__hitcat *c = &r->sum.cats[i];
        imt__buf_printf(b, "%s{\"list_id\":%u,\"list\":", i ? "," : "", (unsigned)c->list_id);
        imt__buf_json_str(b, c->list);
        imt__buf_puts(b, ",\"scheme\":");
        imt__buf_json_str(b, c->scheme);
        if (c->category >= 0) imt__buf_printf(b, ",\"category\":%d", (int)c->category);
        else imt__buf_puts(b, ",\"category\":null");
        if (c->label[0]) {
            imt__buf_puts(b, ",\"category_label\":");
            imt__buf_json_str(b, c->label);
        }
        imt__buf_printf(b, ",\"known_good\":%s,\"files\":%llu}", c->known_good ? "true" : "false",
                        (unsigned long long)c->files);
    }
    imt__buf_puts(b, "]");
    if (r->sum.first_hit) {
        imt__buf_printf(b, ",\"first_hit\":%s,\"first_hit_after_s\":%.3f", r->sum.first_hit,
                        r->sum.first_hit_after);
    }
    if (r->sum.have_hit_mtime) {
        imt__buf_puts(b, ",\"earliest_hit_mtime\":");
        imt__buf_time(b, r->sum.earliest_hit_mtime, r->sum.earliest_hit_mtime_ns);
    }
    imt__buf_printf(b, ",\"priority\":%.3f,\"priority_explanation\":", r->priority);
    imt__buf_json_str(b, expl.p ? expl.p : "");
    if (r->is_preview) imt__preview_summary_json(b, &r->preview);
    imt__buf_puts(b, "}\n");
    imt_err err = imt__report_flush(r);

    /* The human summary for stderr. */
    imt__buf *s = &r->summary_text;
    s->len = 0;
    imt__buf_printf(s, "device %s%s%s: %s%s%s\n", r->o.device ? r->o.device : "(unnamed)",
                    r->o.case_id ? ", case " : "", r->o.case_id ? r->o.case_id : "",
                    complete ? "scan complete" : "SCAN INCOMPLETE", complete ? "" : ": ", why);
    imt__buf_printf(s, "  %llu entries, %llu files read (%.1f MB), %llu images hashed, "
                    "%llu known-good, %llu low-quality\n", (unsigned long long)r->sum.entries,
                    (unsigned long long)r->sum.files, (double)r->sum.bytes / 1e6,
                    (unsigned long long)r->sum.images, (unsigned long long)r->sum.known_good_files,
                    (unsigned long long)r->sum.low_quality);
    imt__buf_printf(s, "  %llu scan errors", (unsigned long long)r->sum.errors);
    first = 1;
    for (int e = 0; e < IMT_E__COUNT; e++) {
        if (!r->sum.err_by_status[e] || imt__is_plain_outcome((imt_err)e)) continue;
        imt__buf_printf(s, "%s%s %llu", first ? "; by kind: " : ", ", imt_err_name((imt_err)e),
                        (unsigned long long)r->sum.err_by_status[e]);
        first = 0;
    }
    first = 1;
    for (int e = 0; e < IMT_E__COUNT; e++) {
        if (!r->sum.find_by_status[e] || imt__is_plain_outcome((imt_err)e)) continue;
        imt__buf_printf(s, "%s%s %llu", first ? "\n  findings: " : ", ",
                        imt_err_name((imt_err)e), (unsigned long long)r->sum.find_by_status[e]);
        first = 0;
    }
    if (r->sum.containers || r->sum.members || r->sum.encrypted_containers) {
        imt__buf_printf(s, "\n  containers: %llu expanded, %llu members, %llu encrypted "
                        "(not examined)", (unsigned long long)r->sum.containers,
                        (unsigned long long)r->sum.members,
                        (unsigned long long)r->sum.encrypted_containers);
        first = 1;
        for (int i = 0; i < IMT_CLIMIT__COUNT; i++) {
            if (!r->sum.limits[i]) continue;
            imt__buf_printf(s, "%s%s %llu", first ? "; stopped by a limit: " : ", ",
                            imt_container_limit_name(i), (unsigned long long)r->sum.limits[i]);
            first = 0;
        }
    }
    imt__buf_printf(s, "\n  hits: %llu files, %llu distinct seized items, %llu distinct known items\n",
                    (unsigned long long)r->sum.hit_files,
                    (unsigned long long)(r->sum.n_seized + r->sum.unkeyed_hits),
                    (unsigned long long)r->sum.n_items);
    for (size_t i = 0; i < r->sum.n_cats; i++) {
        const imt__hitcat *c = &r->sum.cats[i];
        imt__buf_printf(s, "    list %u \"%s\" (%s) category ", (unsigned)c->list_id, c->list,
                        c->scheme);
        if (c->category >= 0) imt__buf_printf(s, "%d", (int)c->category);
        else imt__buf_puts(s, "-");
        if (c->label[0]) imt__buf_printf(s, " \"%s\"", c->label);
        imt__buf_printf(s, "%s: %llu files\n", c->known_good ? " [known-good]" : "",
                        (unsigned long long)c->files);
    }
    if (r->sum.first_hit)
        imt__buf_printf(s, "  first hit after %.1f s: %s\n", r->sum.first_hit_after, r->sum.first_hit);
    if (r->is_preview) imt__preview_text(s, &r->preview);
    imt__buf_printf(s, "  %s\n", expl.p ? expl.p : "");
    imt__buf_free(&expl);

    if (sum) {
        memset(sum, 0, sizeof *sum);
        sum->entries = r->sum.entries;
        sum->files = r->sum.files;
        sum->images = r->sum.images;
        sum->bytes = r->sum.bytes;
        sum->hit_files = r->sum.hit_files;
        sum->known_good_files = r->sum.known_good_files;
        sum->errors = r->sum.errors;
        sum->distinct_items = r->sum.n_items;
        sum->priority = r->priority;
        sum->complete = complete;
    }
    return err;
}

imt_err imt_report_preview(imt_report *r, const imt_preview_stats *st)
{
    if (!r || !st || r->ended) return IMT_E_INVALID;
    r->is_preview = 1;
    r->preview = *st;
    return IMT_OK;
}

const char *imt_report_summary_text(imt_report *r)
{
    if (!r || !r->summary_text.p || r->summary_text.oom) return "";
    return r->summary_text.p;
}
