/* engine/report/header.c -- the report handle and the audit header: tool,
 * version, command line, start time, host, user, device, case, the scan's
 * paths and options, and the index identity and lists. A resumed report
 * must describe the same scan: its header's paths, options and index
 * identity are compared with this one's before anything is written. */
#include "report.h"
#include "source/source.h"

#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

void imt_report_opts_init(imt_report_opts *o)
{
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->format = IMT_REPORT_JSONL;
}

const char *imt_report_last_error(const imt_report *r)
{
    return r ? r->last_error : "";
}

static char *dup_or_null(const char *s, int *oom)
{
    if (!s) return NULL;
    char *d = imt__strdup(s);
    if (!d) *oom = 1;
    return d;
}

imt_err imt_report_create(imt_report **out, FILE *f, const imt_report_opts *opts)
{
    if (!out || !f) return IMT_E_INVALID;
    *out = NULL;
    imt_report *r = imt__calloc(1, sizeof *r);
    if (!r) return IMT_E_NOMEM;
    r->f = f;
    if (opts) r->o = *opts;
    else imt_report_opts_init(&r->o);
    int oom = 0;
    r->cmdline = dup_or_null(r->o.command_line, &oom);
    r->device = dup_or_null(r->o.device, &oom);
    r->case_id = dup_or_null(r->o.case_id, &oom);
    r->index_path = dup_or_null(r->o.index_path, &oom);
    r->o.command_line = r->cmdline;
    r->o.device = r->device;
    r->o.case_id = r->case_id;
    r->o.index_path = r->index_path;
    if (oom || (r->o.format != IMT_REPORT_JSONL && r->o.format != IMT_REPORT_CSV)) {
        imt_report_free(r);
        return oom ? IMT_E_NOMEM : IMT_E_INVALID;
    }
    clock_gettime(CLOCK_REALTIME, &r->start);
    r->t0_ms = imt__now_ms();
    *out = r;
    return IMT_OK;
}

void imt_report_free(imt_report *r)
{
    if (!r) return;
    imt__free(r->cmdline);
    imt__free(r->device);
    imt__free(r->case_id);
    imt__free(r->index_path);
    imt__buf_free(&r->line);
    imt__buf_free(&r->tmp);
    imt__buf_free(&r->summary_text);
    imt__summary_free(&r->sum);
    imt__resume_free(r);
    imt__free(r);
}

static const char *mode_name(imt_pdq_mode m)
{
    return m == IMT_PDQ_COMPAT ? "compat" : "fast";
}

static void put_options(imt__buf *b, const imt_scan_opts *o, const imt_report_opts *ro)
{
    const imt_hash_opts *h = &o->hash;
    imt__buf_printf(b, "{\"mode\":\"%s\",\"dihedral\":%s,\"digests\":[", mode_name(h->mode),
                    h->dihedral ? "true" : "false");
    int first = 1;
    static const char *const dn[] = {"md5", "sha1", "sha256"};
    for (int k = 0; k < 3; k++)
        if (h->digests & (1u << k)) {
            imt__buf_printf(b, "%s\"%s\"", first ? "" : ",", dn[k]);
            first = 0;
        }
    imt__buf_printf(b, "],\"pdq\":%s,\"pdq_distance\":%d,\"min_quality\":%d,"
                    "\"one_file_system\":%s,\"max_matches\":%llu,\"max_pixels\":%llu,"
                    "\"max_dimension\":%u,\"max_file_size\":%llu,\"time_budget_ms\":%u,"
                    "\"containers\":{\"enabled\":%s,\"max_depth\":%u,\"max_members\":%llu,"
                    "\"max_expanded_bytes\":%llu,\"max_ratio\":%u,\"max_buffer\":%llu},"
                    "\"seconds_per_hash\":%.6g,\"vpdq\":{\"distance\":%d,\"min_quality\":%d,"
                    "\"query_pct\":%.6g,\"compared_pct\":%.6g},"
                    "\"hits_only\":%s,\"format\":\"%s\"}",
                    h->pdq ? "true" : "false", o->pdq_distance, o->min_quality,
                    o->one_file_system ? "true" : "false",
                    (unsigned long long)o->max_matches, (unsigned long long)h->max_pixels,
                    (unsigned)h->max_dimension, (unsigned long long)h->max_file_bytes,
                    (unsigned)h->time_budget_ms, o->containers.enabled ? "true" : "false",
                    (unsigned)o->containers.max_depth,
                    (unsigned long long)o->containers.max_members,
                    (unsigned long long)o->containers.max_total_bytes,
                    (unsigned)o->containers.max_ratio,
                    (unsigned long long)o->containers.max_buffer,
                    h->seconds_per_hash, o->vpdq.distance,
                    o->vpdq.min_quality, o->vpdq.query_pct, o->vpdq.compared_pct,
                    ro->hits_only ? "true" : "false",
                    ro->format == IMT_REPORT_CSV ? "csv" : "jsonl");
}

/* The header's "paths", "options" and "index" members, also used to check
 * that a resumed report scanned the same way. */
static void put_scan_identity(imt__buf *b, const imt_report *r, const imt_index *idx,
                              const char *const *paths, size_t n,
                              const imt_scan_opts *o)
{
    imt__buf_puts(b, "\"paths\":[");
    for (size_t i = 0; i < n; i++) {
        if (i) imt__buf_puts(b, ",");
        imt__buf_json_str(b, paths[i]);
    }
    imt__buf_puts(b, "],\"options\":");
    put_options(b, o, &r->o);
    imt__buf_puts(b, ",\"index\":");
    if (!idx) {
        imt__buf_puts(b, "null");
        return;
    }
    char ident[65] = "";
    if (imt_index_identity(idx, ident) != IMT_OK) ident[0] = '\0';
    imt__buf_puts(b, "{\"path\":");
    imt__put_str_or_null(b, r->o.index_path);
    imt__buf_puts(b, ",\"identity\":");
    imt__buf_json_str(b, ident);
    /* Whether the identity stands for the bytes searched: the open checked
     * the searched PDQ arrays against their stored checksums. */
    imt_index_stats st;
    int verified = imt_index_stats_get(idx, &st) == IMT_OK && st.content_verified;
    imt__buf_printf(b, ",\"content_verified\":%s", verified ? "true" : "false");
    /* what it rests on: a read at this open, or the verified-state record of
     * an earlier one on this machine (the file unchanged since: device,
     * inode, size, mtime, ctime, LMDB meta and branch pages); and whether
     * the open checked every page or the structure, the leaves by the record */
    imt__buf_printf(b, ",\"content_verified_by\":%s",
                    !verified ? "null" : st.content_from_record ? "\"record\"" : "\"open\"");
    imt__buf_puts(b, ",\"content_verified_at\":");
    if (verified && st.verified_at) imt__buf_time(b, st.verified_at, 0);
    else imt__buf_puts(b, "null");
    imt__buf_printf(b, ",\"pages_checked\":\"%s\"",
                    st.pages_from_record ? "structure, leaves by the record" : "all");
    imt__buf_puts(b, ",\"lists\":[");
    size_t nl = imt_index_list_count(idx);
    for (size_t i = 0; i < nl; i++) {
        imt_list_info li;
        if (imt_index_list_get(idx, i, &li) != IMT_OK) continue;
        imt__buf_printf(b, "%s{\"id\":%u,\"name\":", i ? "," : "", (unsigned)li.id);
        imt__buf_json_str(b, li.name);
        imt__buf_puts(b, ",\"version\":");
        imt__buf_json_str(b, li.version);
        imt__buf_puts(b, ",\"format\":");
        imt__buf_json_str(b, li.format);
        imt__buf_puts(b, ",\"scheme\":");
        imt__buf_json_str(b, li.scheme);
        imt__buf_puts(b, ",\"policy\":");
        imt__buf_json_str(b, li.policy ? li.policy : "");
        imt__buf_puts(b, ",\"file_sha256\":");
        imt__buf_json_str(b, li.file_sha256);
        imt__buf_printf(b, ",\"import_time\":%lld,\"known_good\":%s,\"entries\":%llu}",
                        (long long)li.import_time, li.known_good ? "true" : "false",
                        (unsigned long long)li.entries);
    }
    imt__buf_puts(b, "]}");
}

static void put_hex_member(imt__buf *b, const char *key, const uint8_t *d, size_t n)
{
    imt__buf_printf(b, ",\"%s\":\"", key);
    imt__buf_hex(b, d, n);
    imt__buf_puts(b, "\"");
}

static void put_meta_str(imt__buf *b, const char *key, const char *v)
{
    if (!v[0]) return;
    imt__buf_printf(b, ",\"%s\":", key);
    imt__buf_json_str(b, v);
}

/* One PATH that is a disk image: its kind, size, the acquisition metadata
 * an E01 holds, and with verify_images its recomputed MD5 against the
 * stored one. */
static void put_image(imt__buf *b, imt_report *r, const char *path, imt__img_kind kind)
{
    char detail[200] = "";
    imt__img *img = NULL;
    imt__buf_puts(b, "{\"path\":");
    imt__buf_json_str(b, path);
    imt__buf_printf(b, ",\"kind\":\"%s\"", imt__img_kind_name(kind));
    imt_err err = imt__img_open(&img, path, kind, detail, sizeof detail);
    if (err) {
        imt__buf_puts(b, ",\"error\":");
        imt__buf_json_str(b, detail[0] ? detail : imt_strerror(err));
        if (r->o.verify_images && !r->image_failures++)
            imt__set_detail(r->image_failure, sizeof r->image_failure,
                            "the image %s cannot be verified: %s", path, detail);
        imt__buf_puts(b, "}");
        return;
    }
    imt__img_meta m;
    imt__img_get_meta(img, &m);
    imt__buf_printf(b, ",\"size\":%llu,\"segments\":%u",
                    (unsigned long long)imt__img_size(img), m.segments);
    put_meta_str(b, "case_number", m.case_number);
    put_meta_str(b, "evidence_number", m.evidence_number);
    put_meta_str(b, "examiner", m.examiner);
    put_meta_str(b, "description", m.description);
    put_meta_str(b, "notes", m.notes);
    put_meta_str(b, "acquiry_date", m.acquiry_date);
    put_meta_str(b, "system_date", m.system_date);
    put_meta_str(b, "acquiry_software", m.acquiry_software);
    put_meta_str(b, "acquiry_os", m.acquiry_os);
    if (m.has_md5) put_hex_member(b, "stored_md5", m.md5, 16);
    if (m.has_sha1) put_hex_member(b, "stored_sha1", m.sha1, 20);
    if (r->o.verify_images) {
        uint8_t md5[16];
        const char *res;
        detail[0] = '\0';
        err = imt__img_md5(img, md5, r->scan_opts.stop, detail, sizeof detail);
        if (err) {
            res = "unreadable";
        } else {
            put_hex_member(b, "computed_md5", md5, 16);
            res = !m.has_md5 ? "no-stored-hash" : memcmp(md5, m.md5, 16) ? "mismatch" : "match";
        }
        imt__buf_printf(b, ",\"verify\":\"%s\"", res);
        if (err) {
            imt__buf_puts(b, ",\"verify_error\":");
            imt__buf_json_str(b, detail);
        }
        if ((err || !strcmp(res, "mismatch")) && !r->image_failures++)
            imt__set_detail(r->image_failure, sizeof r->image_failure, err
                            ? "the image %s cannot be verified: %s"
                            : "the image %s does not match its stored MD5 (--verify-image)%s",
                            path, err ? detail : "");
    }
    imt__img_close(img);
    imt__buf_puts(b, "}");
}

/* "images": the PATHs that are disk images (only when there are some). */
static void put_images(imt__buf *b, imt_report *r, const char *const *paths, size_t n)
{
    int first = 1;
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        imt__img_kind kind;
        if (stat(paths[i], &st) != 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) ||
            !imt__img_sniff(paths[i], S_ISBLK(st.st_mode), &kind))
            continue;
        imt__buf_puts(b, first ? ",\"images\":[" : ",");
        first = 0;
        put_image(b, r, paths[i], kind);
    }
    if (!first) imt__buf_puts(b, "]");
}

imt_err imt_report_begin(imt_report *r, const imt_index *idx, const char *const *paths,
                         size_t n, const imt_scan_opts *opts)
{
    if (!r || (n && !paths) || r->began) return IMT_E_INVALID;
    imt_err err = IMT_OK;
    imt__buf *b = &r->line;
    imt_scan_opts def;
    if (!opts) {
        imt_scan_opts_init(&def);
        opts = &def;
    }
    r->scan_opts = *opts;
    r->began = 1;

    /* A resumed report must describe the same scan. */
    if (r->old_header) {
        imt__buf *t = &r->tmp;
        t->len = 0;
        imt__buf_puts(t, "{");
        put_scan_identity(t, r, idx, paths, n, opts);
        imt__buf_puts(t, "}");
        if (t->oom) return imt__report_fail(r, IMT_E_NOMEM, "out of memory%s", NULL);
        yajl_val now = yajl_tree_parse(t->p, NULL, 0);
        if (!now) return imt__report_fail(r, IMT_E_INTERNAL, "cannot parse our own header%s", NULL);
        static const char *const keys[] = {"paths", "options", "index"};
        const char *bad = NULL;
        for (int k = 0; k < 3 && !bad; k++) {
            const char *path[] = {keys[k], NULL};
            yajl_val x = yajl_tree_get(now, path, yajl_t_any);
            yajl_val y = yajl_tree_get(r->old_header, path, yajl_t_any);
            if (k == 2 && x && y && YAJL_IS_OBJECT(x) && YAJL_IS_OBJECT(y)) {
                /* The index is the same by content, wherever it lives now. */
                const char *ip[] = {"identity", NULL};
                x = yajl_tree_get(x, ip, yajl_t_any);
                y = yajl_tree_get(y, ip, yajl_t_any);
            }
            if (!imt__json_equal(x, y)) bad = keys[k];
        }
        yajl_tree_free(now);
        if (bad)
            return imt__report_fail(r, IMT_E_INVALID,
                        "cannot resume: the interrupted report's %s differ from this scan's",
                        bad);
    }

    const char *pfx = r->o.format == IMT_REPORT_CSV ? "# " : "";
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
    struct passwd pw, *pwp = NULL;
    char pwbuf[1024];
    const char *user = NULL;
    if (getpwuid_r(geteuid(), &pw, pwbuf, sizeof pwbuf, &pwp) == 0 && pwp) user = pw.pw_name;

    imt__buf_printf(b, "%s{\"record\":\"header\",\"tool\":\"imgtriage\",\"version\":\"%s\","
                    "\"report_format\":%d,\"command_line\":", pfx, imt_version(),
                    IMT__REPORT_FORMAT_VERSION);
    imt__put_str_or_null(b, r->o.command_line);
    imt__buf_puts(b, ",\"start_time\":");
    imt__buf_time(b, (int64_t)r->start.tv_sec, (int32_t)r->start.tv_nsec);
    imt__buf_puts(b, ",\"host\":");
    imt__buf_json_str(b, host);
    imt__buf_puts(b, ",\"user\":");
    imt__put_str_or_null(b, user);
    imt__buf_printf(b, ",\"uid\":%u,\"device\":", (unsigned)geteuid());
    imt__put_str_or_null(b, r->o.device);
    imt__buf_puts(b, ",\"case\":");
    imt__put_str_or_null(b, r->o.case_id);
    imt__buf_puts(b, ",");
    put_scan_identity(b, r, idx, paths, n, opts);
    put_images(b, r, paths, n);
    if (r->old_path) {
        imt__buf_puts(b, ",\"resumed_from\":");
        imt__buf_json_str(b, r->old_path);
    }
    if (r->is_preview) imt__preview_header_json(b, &r->preview);
    imt__buf_puts(b, "}\n");
    if (r->o.format == IMT_REPORT_CSV)
        imt__buf_puts(b, IMT__CSV_COLUMNS);
    IMT_TRY(imt__report_flush(r));
cleanup:
    return err;
}
