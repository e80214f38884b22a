/* engine/report/record.c -- one line per entry: the JSONL record (every
 * fact facts.c reads back, under the member it reads it from) and the CSV
 * rows (one per match), and imt_report_record, which counts the record's
 * facts and writes it. A line is built whole, then written with one fwrite
 * and flushed, so a killed scan leaves whole lines. */
#include "report.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void put_match_json(imt__buf *b, const imt_scan_match *m)
{
    imt__buf_printf(b, "{\"kind\":\"%s\"", imt_hash_kind_name(m->kind));
    if (m->kind == IMT_KIND_PDQ)
        imt__buf_printf(b, ",\"distance\":%d,\"variant\":\"%s\"", m->distance,
                        imt_dihedral_name(m->variant));
    imt__buf_printf(b, ",\"list_id\":%u,\"list\":", (unsigned)m->list_id);
    imt__buf_json_str(b, m->list);
    imt__buf_puts(b, ",\"list_version\":");
    imt__buf_json_str(b, m->list_version);
    imt__buf_puts(b, ",\"scheme\":");
    imt__buf_json_str(b, m->scheme);
    if (m->category >= 0) imt__buf_printf(b, ",\"category\":%d", (int)m->category);
    else imt__buf_puts(b, ",\"category\":null");
    if (m->category_label && m->category_label[0]) {
        imt__buf_puts(b, ",\"category_label\":");
        imt__buf_json_str(b, m->category_label);
    }
    if (m->external_id && m->external_id[0]) {
        imt__buf_puts(b, ",\"external_id\":");
        imt__buf_json_str(b, m->external_id);
    }
    imt__buf_printf(b, ",\"known_good\":%s,\"disposition\":\"%s\",\"entry\":%llu",
                    m->known_good ? "true" : "false", imt_disposition_name(m->disposition),
                    (unsigned long long)m->entry);
    if (m->subitem >= 0) imt__buf_printf(b, ",\"embedded\":%d", (int)m->subitem);
    if (m->frame) imt__buf_printf(b, ",\"frame\":%u", (unsigned)(m->frame - 1));
    if (m->kind == IMT_KIND_VPDQ) {
        imt__buf_printf(b, ",\"query_pct\":%.2f,\"compared_pct\":%.2f,\"ranges\":[",
                        m->query_pct, m->compared_pct);
        for (size_t i = 0; i < m->n_ranges; i++)
            imt__buf_printf(b, "%s[%.3f,%.3f]", i ? "," : "", m->ranges[2 * i],
                            m->ranges[2 * i + 1]);
        imt__buf_puts(b, "]");
    }
    imt__buf_puts(b, "}");
}

/* A video's sampled frames, as vPDQ has them (frame, quality, pdq,
 * timestamp); facts.c reads them back. */
static void put_frames_json(imt__buf *b, const imt_hash_result *h)
{
    imt__buf_printf(b, ",\"duration\":%.3f,\"frames\":[", h->duration);
    for (size_t i = 0; i < h->n_frames; i++) {
        const imt_video_frame *f = &h->frames[i];
        char hx[IMT_PDQ_HEX_LEN + 1];
        imt_pdq_to_hex(&f->pdq, hx);
        imt__buf_printf(b, "%s{\"frame\":%llu,\"quality\":%d,\"pdq\":\"%s\",\"timestamp\":%.3f}",
                        i ? "," : "", (unsigned long long)f->number, f->quality, hx,
                        f->timestamp);
    }
    imt__buf_puts(b, "]");
    if (h->partial) imt__buf_puts(b, ",\"partial\":true");
}

/* The embedded pictures (sub-items) of a file: where, what, their hash, how
 * far it is from the file's own, and the matches of each (also in the
 * record's "matches", tagged "embedded": i). */
static void put_embedded_json(imt__buf *b, const imt_scan_record *rec)
{
    const imt_hash_result *h = rec->hash;
    imt__buf_puts(b, ",\"embedded\":[");
    for (size_t i = 0; i < h->n_sub; i++) {
        const imt_subitem *u = &h->sub[i];
        if (i) imt__buf_puts(b, ",");
        imt__buf_printf(b, "{\"kind\":\"%s\",\"index\":%u,\"offset\":%llu,\"size\":%llu,"
                        "\"status\":\"%s\"", imt_subitem_kind_name(u->kind), (unsigned)u->index,
                        (unsigned long long)u->offset, (unsigned long long)u->size,
                        imt_err_name(u->status));
        if (u->entry_id) imt__buf_printf(b, ",\"entry_id\":\"%016llx\"", (unsigned long long)u->entry_id);
        if (u->detail[0]) {
            imt__buf_puts(b, ",\"detail\":");
            imt__buf_json_str(b, u->detail);
        }
        if (u->format) imt__buf_printf(b, ",\"format\":\"%s\"", imt_format_name(u->format));
        if (u->width) imt__buf_printf(b, ",\"width\":%u,\"height\":%u", u->width, u->height);
        if (u->has_pdq) {
            char hx[IMT_PDQ_HEX_LEN + 1];
            imt_pdq_to_hex(&u->pdq[0], hx);
            imt__buf_printf(b, ",\"pdq\":\"%s\",\"quality\":%d", hx, u->quality);
        }
        if (u->distance >= 0)
            imt__buf_printf(b, ",\"distance\":%d,\"differs\":%s", u->distance,
                            u->differs ? "true" : "false");
        imt__buf_puts(b, ",\"matches\":[");
        int first = 1;
        for (size_t k = 0; k < rec->n_matches; k++) {
            if (rec->matches[k].subitem != (int32_t)i) continue;
            if (!first) imt__buf_puts(b, ",");
            first = 0;
            put_match_json(b, &rec->matches[k]);
        }
        imt__buf_puts(b, "]}");
    }
    imt__buf_puts(b, "]");
    if (h->sub_omitted)
        imt__buf_printf(b, ",\"embedded_omitted\":%llu", (unsigned long long)h->sub_omitted);
}

/* Containers: a member's place ("member") and a container's expansion
 * ("container"); facts.c reads both back. */
static void put_container_json(imt__buf *b, const imt_scan_record *rec)
{
    const imt_container_info *c = &rec->container;
    if (c->depth) {
        imt__buf_printf(b, ",\"member\":{\"depth\":%u,\"index\":%llu,\"size\":%llu",
                        (unsigned)c->depth, (unsigned long long)c->index,
                        (unsigned long long)c->size);
        if (c->has_mtime) {
            imt__buf_puts(b, ",\"mtime\":");
            imt__buf_time(b, c->mtime_s, c->mtime_ns);
        }
        imt__buf_puts(b, "}");
    }
    if (!c->expanded && !c->limits && !c->encrypted) return;
    imt__buf_printf(b, ",\"container\":{\"expanded\":%s,\"members\":%llu,\"encrypted\":%llu,"
                    "\"limits\":[", c->expanded ? "true" : "false",
                    (unsigned long long)c->members, (unsigned long long)c->encrypted);
    int first = 1;
    for (int i = 0; i < IMT_CLIMIT__COUNT; i++) {
        if (!(c->limits & (1u << i))) continue;
        imt__buf_printf(b, "%s\"%s\"", first ? "" : ",", imt_container_limit_name(i));
        first = 0;
    }
    imt__buf_puts(b, "]");
    if (c->note && c->note[0]) {
        imt__buf_puts(b, ",\"note\":");
        imt__buf_json_str(b, c->note);
    }
    imt__buf_puts(b, "}");
}

/* Where a file inside a disk image lies (engine/source): facts.c reads
 * every member back. */
static void put_location_json(imt__buf *b, const imt_location *l)
{
    imt__buf_puts(b, ",\"image\":{\"path\":");
    imt__buf_json_str(b, l->image);
    imt__buf_printf(b, ",\"partition\":%d,\"part_offset\":%llu,\"part_length\":%llu,"
                    "\"part_type\":", (int)l->partition, (unsigned long long)l->part_offset,
                    (unsigned long long)l->part_length);
    imt__buf_json_str(b, l->part_type ? l->part_type : "");
    imt__buf_puts(b, ",\"fs\":");
    imt__buf_json_str(b, l->fs_type ? l->fs_type : "");
    if (l->volume > 0) {
        imt__buf_printf(b, ",\"volume\":%d,\"volume_name\":", (int)l->volume);
        imt__buf_json_str(b, l->volume_name ? l->volume_name : "");
    }
    imt__buf_printf(b, ",\"meta_addr\":%llu", (unsigned long long)l->meta_addr);
    if (l->stream) {
        imt__buf_puts(b, ",\"stream\":");
        imt__buf_json_str(b, l->stream);
    }
    imt__buf_printf(b, ",\"alloc\":\"%s\"", imt_alloc_status_name(l->alloc));
    if (l->atime_s || l->atime_ns) {
        imt__buf_puts(b, ",\"atime\":");
        imt__buf_time(b, l->atime_s, l->atime_ns);
    }
    if (l->crtime_s || l->crtime_ns) {
        imt__buf_puts(b, ",\"crtime\":");
        imt__buf_time(b, l->crtime_s, l->crtime_ns);
    }
    if (l->first_offset >= 0)
        imt__buf_printf(b, ",\"first_offset\":%lld", (long long)l->first_offset);
    imt__buf_puts(b, ",\"runs\":[");
    for (size_t i = 0; i < l->n_runs; i++) {
        const imt_byte_run *r = &l->runs[i];
        imt__buf_printf(b, "%s[%llu,", i ? "," : "", (unsigned long long)r->file_offset);
        if (r->sparse) imt__buf_puts(b, "null");
        else imt__buf_printf(b, "%llu", (unsigned long long)r->img_offset);
        imt__buf_printf(b, ",%llu]", (unsigned long long)r->len);
    }
    imt__buf_puts(b, "]");
    if (l->runs_omitted)
        imt__buf_printf(b, ",\"runs_omitted\":%llu", (unsigned long long)l->runs_omitted);
    imt__buf_puts(b, "}");
}

static void put_flags_json(imt__buf *b, int thumbnail_differs, int overwritten)
{
    if (!thumbnail_differs && !overwritten) return;
    imt__buf_printf(b, ",\"flags\":[%s%s%s]", thumbnail_differs ? "\"thumbnail-differs\"" : "",
                    thumbnail_differs && overwritten ? "," : "",
                    overwritten ? "\"content-may-be-overwritten\"" : "");
}

void imt__put_record_json(imt__buf *b, const imt_scan_record *rec)
{
    imt__buf_printf(b, "{\"record\":\"file\",\"seq\":%llu,\"path\":",
                    (unsigned long long)rec->seq);
    imt__buf_json_str(b, rec->path);
    imt__buf_printf(b, ",\"type\":\"%s\",\"status\":\"%s\"", imt_entry_type_name(rec->type),
                    imt_err_name(rec->status));
    if (rec->scan_error) imt__buf_puts(b, ",\"scan_error\":true");
    if (rec->detail && rec->detail[0]) {
        imt__buf_puts(b, ",\"detail\":");
        imt__buf_json_str(b, rec->detail);
    }
    if (rec->have_stat) {
        imt__buf_printf(b, ",\"size\":%llu,\"mtime\":", (unsigned long long)rec->size);
        imt__buf_time(b, rec->mtime_s, rec->mtime_ns);
        imt__buf_puts(b, ",\"ctime\":");
        imt__buf_time(b, rec->ctime_s, rec->ctime_ns);
        imt__buf_printf(b, ",\"mode\":\"%04o\",\"uid\":%u,\"gid\":%u,\"inode\":%llu,"
                        "\"nlink\":%u", (unsigned)(rec->mode & 07777), (unsigned)rec->uid,
                        (unsigned)rec->gid, (unsigned long long)rec->inode,
                        (unsigned)rec->nlink);
    }
    if (rec->link_target) {
        imt__buf_puts(b, ",\"link_target\":");
        imt__buf_json_str(b, rec->link_target);
    }
    if (rec->hardlink_of) {
        imt__buf_puts(b, ",\"hardlink_of\":");
        imt__buf_json_str(b, rec->hardlink_of);
    }
    if (rec->carved) {
        const imt_carve_hit *c = rec->carved;
        imt__buf_printf(b, ",\"carved\":{\"offset\":%llu,\"length\":%llu,\"format\":\"%s\","
                        "\"truncated\":%s,\"end\":\"%s\"}", (unsigned long long)c->offset,
                        (unsigned long long)c->length, imt_format_name(c->format),
                        c->truncated ? "true" : "false", imt_carve_end_name(c->end));
    }
    if (rec->loc) put_location_json(b, rec->loc);
    int ow = rec->loc && rec->loc->overwritten;
    const imt_hash_result *h = rec->hash;
    if (h) {
        imt__buf_printf(b, ",\"format\":\"%s\",\"read_bytes\":%llu", imt_format_name(h->format),
                        (unsigned long long)h->file_size);
        if (h->width) imt__buf_printf(b, ",\"width\":%u,\"height\":%u", h->width, h->height);
        if (h->digests & IMT_DIGEST_MD5) {
            imt__buf_puts(b, ",\"md5\":\"");
            imt__buf_hex(b, h->md5, 16);
            imt__buf_puts(b, "\"");
        }
        if (h->digests & IMT_DIGEST_SHA1) {
            imt__buf_puts(b, ",\"sha1\":\"");
            imt__buf_hex(b, h->sha1, 20);
            imt__buf_puts(b, "\"");
        }
        if (h->digests & IMT_DIGEST_SHA256) {
            imt__buf_puts(b, ",\"sha256\":\"");
            imt__buf_hex(b, h->sha256, 32);
            imt__buf_puts(b, "\"");
        }
        if (h->has_pdq) {
            char hx[IMT_PDQ_HEX_LEN + 1];
            imt_pdq_to_hex(&h->pdq[0], hx);
            imt__buf_printf(b, ",\"pdq\":\"%s\",\"quality\":%d", hx, h->quality);
            if (h->partial) imt__buf_puts(b, ",\"partial\":true");
        }
        if (h->changed) imt__buf_puts(b, ",\"changed_during_read\":true");
        put_flags_json(b, h->thumbnail_differs, ow);
        if (h->n_sub) put_embedded_json(b, rec);
        if (h->n_frames) put_frames_json(b, h);
    } else {
        put_flags_json(b, 0, ow);
    }
    put_container_json(b, rec);
    if (rec->known_good)
        imt__buf_puts(b, ",\"known_good\":true,\"pdq_matching\":\"" IMT__KNOWN_GOOD_SKIP "\"");
    else if (rec->pdq_low_quality && h)
        imt__buf_printf(b, ",\"pdq_matching\":\"" IMT__LOWQ_PREFIX "%d is below the minimum\"",
                        h->quality);
    imt__buf_puts(b, ",\"matches\":[");
    for (size_t i = 0; i < rec->n_matches; i++) {
        if (i) imt__buf_puts(b, ",");
        put_match_json(b, &rec->matches[i]);
    }
    imt__buf_puts(b, "]");
    if (rec->matches_omitted)
        imt__buf_printf(b, ",\"matches_omitted\":%llu", (unsigned long long)rec->matches_omitted);
    imt__buf_puts(b, "}\n");
}

void imt__put_record_csv(imt__buf *b, const imt_scan_record *rec)
{
    size_t rows = rec->n_matches ? rec->n_matches : 1;
    const imt_hash_result *h = rec->hash;
    for (size_t i = 0; i < rows; i++) {
        imt__buf_csv_str(b, rec->path);
        imt__buf_printf(b, ",%s,%s,", imt_entry_type_name(rec->type), imt_err_name(rec->status));
        imt__buf_csv_str(b, rec->detail);
        imt__buf_puts(b, ",");
        if (rec->have_stat) {
            imt__buf_printf(b, "%llu,", (unsigned long long)rec->size);
            imt__buf_time(b, rec->mtime_s, rec->mtime_ns);
            imt__buf_puts(b, ",");
            imt__buf_time(b, rec->ctime_s, rec->ctime_ns);
        } else {
            imt__buf_puts(b, ",,");
        }
        if (h) {
            imt__buf_printf(b, ",%s,", imt_format_name(h->format));
            if (h->width) imt__buf_printf(b, "%u,%u", h->width, h->height);
            else imt__buf_puts(b, ",");
            imt__buf_puts(b, ",");
            if (h->digests & IMT_DIGEST_MD5) imt__buf_hex(b, h->md5, 16);
            imt__buf_puts(b, ",");
            if (h->digests & IMT_DIGEST_SHA1) imt__buf_hex(b, h->sha1, 20);
            imt__buf_puts(b, ",");
            if (h->digests & IMT_DIGEST_SHA256) imt__buf_hex(b, h->sha256, 32);
            imt__buf_puts(b, ",");
            if (h->has_pdq) {
                char hx[IMT_PDQ_HEX_LEN + 1];
                imt_pdq_to_hex(&h->pdq[0], hx);
                imt__buf_printf(b, "%s,%d", hx, h->quality);
            } else {
                imt__buf_puts(b, ",");
            }
        } else {
            imt__buf_puts(b, ",,,,,,,,");
        }
        imt__buf_printf(b, ",%d,", rec->known_good ? 1 : 0);
        if (rec->n_matches) {
            const imt_scan_match *m = &rec->matches[i];
            imt__buf_printf(b, "%s,", imt_hash_kind_name(m->kind));
            imt__buf_csv_str(b, m->list);
            imt__buf_puts(b, ",");
            imt__buf_csv_str(b, m->scheme);
            if (m->category >= 0) imt__buf_printf(b, ",%d,", (int)m->category);
            else imt__buf_puts(b, ",,");
            imt__buf_csv_str(b, m->category_label);
            imt__buf_puts(b, ",");
            imt__buf_csv_str(b, m->external_id);
            if (m->kind == IMT_KIND_PDQ)
                imt__buf_printf(b, ",%d,%s,", m->distance, imt_dihedral_name(m->variant));
            else
                imt__buf_puts(b, ",0,,");
        } else {
            imt__buf_puts(b, ",,,,,,,,");
        }
        if (rec->hardlink_of) imt__buf_csv_str(b, rec->hardlink_of);
        imt__buf_puts(b, ",");
        if (rec->link_target) imt__buf_csv_str(b, rec->link_target);
        /* flags; and for a match on an embedded picture, which one */
        imt__buf_puts(b, h && h->thumbnail_differs ? ",thumbnail-differs," : ",,");
        if (rec->n_matches && rec->matches[i].subitem >= 0 && h &&
            (size_t)rec->matches[i].subitem < h->n_sub) {
            const imt_subitem *u = &h->sub[rec->matches[i].subitem];
            imt__buf_printf(b, "%s#%u@%llu", imt_subitem_kind_name(u->kind), (unsigned)u->index,
                            (unsigned long long)u->offset);
        }
        imt__buf_puts(b, "\n");
    }
}

int imt_report_record(void *report, const imt_scan_record *rec)
{
    imt_report *r = report;
    imt_err err = IMT_OK;
    if (!r || !rec || !r->began || r->ended) return 1;
    if (rec->skipped) return imt__resume_emit(r, rec->seq) != IMT_OK;
    imt__buf *t = &r->tmp;
    t->len = 0;
    imt__buf_json_str(t, rec->path);
    if (t->oom) {
        imt__report_fail(r, IMT_E_NOMEM, "out of memory%s", NULL);
        return 1;
    }
    imt__rfacts f;
    imt__facts_from_record(rec, &f);
    err = imt__report_account(r, &f, t->p);
    if (err) {
        imt__report_fail(r, err, "cannot count a record: %s", imt_strerror(err));
        return 1;
    }
    if (r->o.hits_only && !imt__record_has_hit(rec)) return 0;
    if (r->o.format == IMT_REPORT_CSV) imt__put_record_csv(&r->line, rec);
    else imt__put_record_json(&r->line, rec);
    return imt__report_flush(r) != IMT_OK;
}


/* ---- conversion: the JSONL and CSV writers over records read back -------- */
static imt_err jsonl_begin(imt__conv *c)
{
    const char *h = c->header_line;
    /* The options' last members, as header.c writes them (a '"' not preceded
     * by '\\' is never inside a string, so this cannot match a path). */
    const char *opt = strstr(h, ",\"hits_only\":false,\"format\":\"jsonl\"}");
    if (c->format == IMT_REPORT_CSV) imt__buf_puts(&c->b, "# ");
    if (opt && (c->hits_only || c->format == IMT_REPORT_CSV)) {
        imt__buf_put(&c->b, h, (size_t)(opt - h));
        imt__buf_printf(&c->b, ",\"hits_only\":%s,\"format\":\"%s\"}",
                        c->hits_only ? "true" : "false",
                        c->format == IMT_REPORT_CSV ? "csv" : "jsonl");
        imt__buf_puts(&c->b, opt + strlen(",\"hits_only\":false,\"format\":\"jsonl\"}"));
    } else {
        imt__buf_puts(&c->b, h);
    }
    if (c->format == IMT_REPORT_CSV)
        imt__buf_puts(&c->b, IMT__CSV_COLUMNS);
    return imt__conv_flush(c);
}

static imt_err jsonl_record(imt__conv *c, const imt_scan_record *rec)
{
    /* An older report's records hold less than this version writes (format
     * 1: no list_id, no scan_error): they are copied as they are. Its CSV
     * rows are whole (CSV has neither column). */
    if (c->format == IMT_REPORT_JSONL && c->version != IMT__REPORT_FORMAT_VERSION)
        imt__buf_puts(&c->b, c->record_line);
    else if (c->format == IMT_REPORT_CSV) imt__put_record_csv(&c->b, rec);
    else imt__put_record_json(&c->b, rec);
    return imt__conv_flush(c);
}

static imt_err jsonl_end(imt__conv *c)
{
    if (c->failed || !c->summary_line) return IMT_OK;
    if (c->format == IMT_REPORT_CSV) imt__buf_puts(&c->b, "# ");
    imt__buf_puts(&c->b, c->summary_line);
    return imt__conv_flush(c);
}

const imt__writer imt__writer_jsonl = {jsonl_begin, jsonl_record, jsonl_end};
const imt__writer imt__writer_csv = {jsonl_begin, jsonl_record, jsonl_end};
