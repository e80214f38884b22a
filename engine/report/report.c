/* engine/report/report.c -- the scan report: an audit header, one line per
 * entry (JSONL or CSV), the device summary with its priority score, and
 * resuming from an interrupted report.
 *
 * Resume works on the report alone: the walk order is deterministic, so the
 * records of the interrupted run are the prefix of a full run's records.
 * imt_report_skip claims each walked entry whose path equals the next old
 * record's path; that record is then copied verbatim (and counted in the
 * summary from its own fields) when the scan emits the entry. */
#include "common/text.h"

#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

/* 2: records carry "scan_error", matches "list_id"; the summary keys
 * hits_by_list by list id and splits findings_by_kind from errors_by_kind. */
#define REPORT_FORMAT_VERSION 2

/* Matched files per (list id, category, label): lists are told apart by id,
 * never by name (two lists may share a name). */
typedef struct hitcat {
    uint32_t list_id;
    char *list, *scheme, *label;
    int32_t category;
    int known_good;
    uint64_t files;
} hitcat;

/* Distinct known items: index entry -> highest severity weight seen. */
typedef struct item {
    uint64_t entry;
    int weight;
    int used;
} item;

/* A claimed old record waiting for its turn to be emitted. */
typedef struct pending {
    char *line;            /* with its newline */
    size_t len;
} pending;

struct imt_report {
    FILE *f;
    imt_report_opts o;
    char *cmdline, *device, *case_id, *index_path;
    char last_error[512];
    int began, ended;
    int write_failed;      /* a record could not be written */
    int write_errno;       /* why */
    struct timespec start;
    uint64_t t0_ms;
    imt__buf line, tmp;
    imt_scan_opts scan_opts;

    /* summary */
    uint64_t entries, files, images, bytes, hit_files, known_good_files, errors,
        low_quality;
    uint64_t by_type[IMT_ENTRY__COUNT];
    uint64_t err_by_status[IMT_E__COUNT];  /* records that are scan errors */
    uint64_t find_by_status[IMT_E__COUNT]; /* findings about the others */
    hitcat *cats;
    size_t n_cats;
    item *items;
    size_t n_items, items_cap;
    char *first_hit;       /* JSON literal of its path */
    double first_hit_after;
    int64_t earliest_hit_mtime;
    int32_t earliest_hit_mtime_ns;
    int have_hit_mtime;
    double priority;
    imt__buf summary_text;

    /* resume */
    FILE *old;
    char *old_path;
    yajl_val old_header;
    char *next_line;       /* the next unclaimed old record */
    size_t next_len;
    int old_eof;
    pending *queue;
    size_t q_head, q_len, q_cap;
    uint64_t resumed;
};

void imt_report_opts_init(imt_report_opts *o)
{
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->format = IMT_REPORT_JSONL;
}

static imt_err fail(imt_report *r, imt_err e, const char *fmt, const char *arg)
{
    imt__set_detail(r->last_error, sizeof r->last_error, fmt, arg ? arg : "");
    return e;
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
    for (size_t i = 0; i < r->n_cats; i++) {
        imt__free(r->cats[i].list);
        imt__free(r->cats[i].scheme);
        imt__free(r->cats[i].label);
    }
    imt__free(r->cats);
    imt__free(r->items);
    imt__free(r->first_hit);
    if (r->old) fclose(r->old);
    imt__free(r->old_path);
    yajl_tree_free(r->old_header);
    free(r->next_line); /* from getline() */
    for (size_t i = 0; i < r->q_len; i++) free(r->queue[(r->q_head + i) % r->q_cap].line);
    imt__free(r->queue);
    imt__free(r);
}

/* ---- severity and priority -------------------------------------------- */

/* Severity weight of one membership. Known-good lists weigh nothing. The
 * Project VIC (VICS) and CAID schemes put their gravest category first;
 * lists of other schemes weigh 1 per item. The table is in README. */
static int severity(const char *scheme, int32_t cat, int known_good)
{
    if (known_good) return 0;
    if (scheme && !strcmp(scheme, "projectvic")) {
        switch (cat) {
        case 0: return 0;  /* non-pertinent */
        case 1: return 10;
        case 2: return 5;
        case 3: return 2;
        default: return 1;
        }
    }
    if (scheme && !strcmp(scheme, "caid")) {
        switch (cat) {
        case 1: return 10; /* category A */
        case 2: return 7;  /* B */
        case 3: return 4;  /* C */
        default: return 1;
        }
    }
    return 1;
}

static imt_err note_item(imt_report *r, uint64_t entry, int weight)
{
    if ((r->n_items + 1) * 2 > r->items_cap) {
        size_t nc = r->items_cap ? r->items_cap * 2 : 64;
        item *ni = imt__calloc(nc, sizeof *ni);
        if (!ni) return IMT_E_NOMEM;
        for (size_t i = 0; i < r->items_cap; i++) {
            if (!r->items[i].used) continue;
            size_t k = (size_t)(r->items[i].entry * 0x9E3779B97F4A7C15ull >> 7) & (nc - 1);
            while (ni[k].used) k = (k + 1) & (nc - 1);
            ni[k] = r->items[i];
        }
        imt__free(r->items);
        r->items = ni;
        r->items_cap = nc;
    }
    size_t mask = r->items_cap - 1;
    size_t k = (size_t)(entry * 0x9E3779B97F4A7C15ull >> 7) & mask;
    while (r->items[k].used && r->items[k].entry != entry) k = (k + 1) & mask;
    if (!r->items[k].used) {
        r->items[k].used = 1;
        r->items[k].entry = entry;
        r->items[k].weight = weight;
        r->n_items++;
    } else if (weight > r->items[k].weight) {
        r->items[k].weight = weight;
    }
    return IMT_OK;
}

static imt_err note_cat(imt_report *r, const imt_scan_match *m)
{
    const char *label = m->category_label ? m->category_label : "";
    for (size_t i = 0; i < r->n_cats; i++) {
        hitcat *c = &r->cats[i];
        if (c->list_id == m->list_id && c->category == m->category &&
            !strcmp(c->label, label)) {
            c->files++;
            return IMT_OK;
        }
    }
    size_t bytes;
    if (!imt__mul_ok(r->n_cats + 1, sizeof *r->cats, &bytes)) return IMT_E_NOMEM;
    hitcat *nc = imt__realloc(r->cats, bytes);
    if (!nc) return IMT_E_NOMEM;
    r->cats = nc;
    hitcat *c = &r->cats[r->n_cats];
    memset(c, 0, sizeof *c);
    c->list = imt__strdup(m->list ? m->list : "");
    c->scheme = imt__strdup(m->scheme ? m->scheme : "");
    c->label = imt__strdup(label);
    if (!c->list || !c->scheme || !c->label) {
        imt__free(c->list);
        imt__free(c->scheme);
        imt__free(c->label);
        return IMT_E_NOMEM;
    }
    c->list_id = m->list_id;
    c->category = m->category;
    c->known_good = m->known_good;
    c->files = 1;
    r->n_cats++;
    return IMT_OK;
}

static int hitcat_cmp(const void *a, const void *b)
{
    const hitcat *x = a, *y = b;
    if (x->list_id != y->list_id) return x->list_id < y->list_id ? -1 : 1;
    if (x->category != y->category) return x->category < y->category ? -1 : 1;
    return strcmp(x->label, y->label);
}

/* Outcomes of a file that are not findings about it as an error. */
static int is_plain_outcome(imt_err e)
{
    return e == IMT_OK || e == IMT_E_NOT_IMAGE || e == IMT_E_EMPTY;
}

/* Count one record into the summary. path_json: its path as a JSON literal. */
static imt_err account(imt_report *r, const imt_scan_record *rec, const char *path_json)
{
    imt_err err = IMT_OK;
    r->entries++;
    if ((unsigned)rec->type < IMT_ENTRY__COUNT) r->by_type[rec->type]++;
    if ((unsigned)rec->status < IMT_E__COUNT)
        (rec->scan_error ? r->err_by_status : r->find_by_status)[rec->status]++;
    if (rec->scan_error) r->errors++;
    if (rec->hash) {
        r->files++;
        r->bytes += rec->hash->file_size;
        if (rec->hash->has_pdq) r->images++;
    }
    if (rec->known_good) r->known_good_files++;
    if (rec->pdq_low_quality) r->low_quality++;
    int hit = 0;
    for (size_t i = 0; i < rec->n_matches; i++) {
        const imt_scan_match *m = &rec->matches[i];
        /* One file counts once per (list, category) however many entries. */
        int seen = 0;
        for (size_t j = 0; j < i; j++) {
            const imt_scan_match *p = &rec->matches[j];
            if (p->list_id == m->list_id && p->category == m->category &&
                !strcmp(p->category_label, m->category_label))
                seen = 1;
        }
        if (!seen) IMT_TRY(note_cat(r, m));
        if (m->disposition != IMT_DISP_ALERT) continue;
        hit = 1;
        IMT_TRY(note_item(r, m->entry, severity(m->scheme, m->category, 0)));
    }
    if (hit) {
        r->hit_files++;
        if (!r->first_hit) {
            r->first_hit = imt__strdup(path_json);
            if (!r->first_hit) return IMT_E_NOMEM;
            r->first_hit_after = (double)(imt__now_ms() - r->t0_ms) / 1000.0;
        }
        if (rec->have_stat &&
            (!r->have_hit_mtime || rec->mtime_s < r->earliest_hit_mtime ||
             (rec->mtime_s == r->earliest_hit_mtime && rec->mtime_ns < r->earliest_hit_mtime_ns))) {
            r->have_hit_mtime = 1;
            r->earliest_hit_mtime = rec->mtime_s;
            r->earliest_hit_mtime_ns = rec->mtime_ns;
        }
    }
cleanup:
    return err;
}

/* The priority and its one-line explanation into b. */
static double priority(imt_report *r, imt__buf *b)
{
    uint64_t by_w[11] = {0}, other = 0, sum = 0;
    for (size_t i = 0; i < r->items_cap; i++) {
        if (!r->items[i].used) continue;
        int w = r->items[i].weight;
        if (w >= 0 && w <= 10) by_w[w]++;
        else other++;
        sum += (uint64_t)(w > 0 ? w : 0);
    }
    double density = r->files ? (double)r->hit_files / (double)r->files : 0.0;
    double p = (double)sum + density;
    imt__buf_printf(b, "priority %.3f = %llu (sum over %llu distinct known items of their "
                    "category severity weight:", p, (unsigned long long)sum,
                    (unsigned long long)r->n_items);
    int any = 0;
    for (int w = 10; w >= 0; w--) {
        if (!by_w[w]) continue;
        imt__buf_printf(b, "%s %llu x %d", any ? " +" : "", (unsigned long long)by_w[w], w);
        any = 1;
    }
    if (!any) imt__buf_puts(b, " none");
    imt__buf_printf(b, ") + %.3f (hit density: %llu files with hits / %llu files read)",
                    density, (unsigned long long)r->hit_files, (unsigned long long)r->files);
    (void)other;
    return p;
}

/* ---- writing ---------------------------------------------------------- */

static imt_err flush_line(imt_report *r)
{
    imt__buf *b = &r->line;
    if (b->oom) {
        imt__buf_free(b);
        return fail(r, IMT_E_NOMEM, "out of memory building a report line%s", NULL);
    }
    if (b->len && (fwrite(b->p, 1, b->len, r->f) != b->len || fflush(r->f) != 0)) {
        r->write_failed = 1;
        r->write_errno = errno;
        return fail(r, IMT_E_WRITE, "cannot write the report: %s", strerror(errno));
    }
    b->len = 0;
    return IMT_OK;
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
                    "\"hits_only\":%s,\"format\":\"%s\"}",
                    h->pdq ? "true" : "false", o->pdq_distance, o->min_quality,
                    o->one_file_system ? "true" : "false",
                    (unsigned long long)o->max_matches, (unsigned long long)h->max_pixels,
                    (unsigned)h->max_dimension, (unsigned long long)h->max_file_bytes,
                    (unsigned)h->time_budget_ms, ro->hits_only ? "true" : "false",
                    ro->format == IMT_REPORT_CSV ? "csv" : "jsonl");
}

static void put_str_or_null(imt__buf *b, const char *s)
{
    if (s) imt__buf_json_str(b, s);
    else imt__buf_puts(b, "null");
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
    put_str_or_null(b, r->o.index_path);
    imt__buf_puts(b, ",\"identity\":");
    imt__buf_json_str(b, ident);
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
        imt__buf_puts(b, ",\"file_sha256\":");
        imt__buf_json_str(b, li.file_sha256);
        imt__buf_printf(b, ",\"import_time\":%lld,\"known_good\":%s,\"entries\":%llu}",
                        (long long)li.import_time, li.known_good ? "true" : "false",
                        (unsigned long long)li.entries);
    }
    imt__buf_puts(b, "]}");
}

static int json_equal(yajl_val a, yajl_val b);

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
        if (t->oom) return fail(r, IMT_E_NOMEM, "out of memory%s", NULL);
        yajl_val now = yajl_tree_parse(t->p, NULL, 0);
        if (!now) return fail(r, IMT_E_INTERNAL, "cannot parse our own header%s", NULL);
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
            if (!json_equal(x, y)) bad = keys[k];
        }
        yajl_tree_free(now);
        if (bad)
            return fail(r, IMT_E_INVALID,
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
                    REPORT_FORMAT_VERSION);
    put_str_or_null(b, r->o.command_line);
    imt__buf_puts(b, ",\"start_time\":");
    imt__buf_time(b, (int64_t)r->start.tv_sec, (int32_t)r->start.tv_nsec);
    imt__buf_puts(b, ",\"host\":");
    imt__buf_json_str(b, host);
    imt__buf_puts(b, ",\"user\":");
    put_str_or_null(b, user);
    imt__buf_printf(b, ",\"uid\":%u,\"device\":", (unsigned)geteuid());
    put_str_or_null(b, r->o.device);
    imt__buf_puts(b, ",\"case\":");
    put_str_or_null(b, r->o.case_id);
    imt__buf_puts(b, ",");
    put_scan_identity(b, r, idx, paths, n, opts);
    if (r->old_path) {
        imt__buf_puts(b, ",\"resumed_from\":");
        imt__buf_json_str(b, r->old_path);
    }
    imt__buf_puts(b, "}\n");
    if (r->o.format == IMT_REPORT_CSV)
        imt__buf_puts(b, "path,type,status,detail,size,mtime,ctime,format,width,height,"
                         "md5,sha1,sha256,pdq,quality,known_good,match_kind,list,scheme,"
                         "category,category_label,external_id,distance,variant,"
                         "hardlink_of,link_target\n");
    IMT_TRY(flush_line(r));
cleanup:
    return err;
}

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
    imt__buf_printf(b, ",\"known_good\":%s,\"disposition\":\"%s\",\"entry\":%llu}",
                    m->known_good ? "true" : "false", imt_disposition_name(m->disposition),
                    (unsigned long long)m->entry);
}

static void put_record_json(imt__buf *b, const imt_scan_record *rec)
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
    }
    if (rec->known_good)
        imt__buf_puts(b, ",\"known_good\":true,\"pdq_matching\":\"skipped: known-good file\"");
    else if (rec->pdq_low_quality && h)
        imt__buf_printf(b, ",\"pdq_matching\":\"skipped: quality %d is below the minimum\"",
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

static void put_record_csv(imt__buf *b, const imt_scan_record *rec)
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
        imt__buf_puts(b, "\n");
    }
}

static int has_hit(const imt_scan_record *rec)
{
    for (size_t i = 0; i < rec->n_matches; i++)
        if (rec->matches[i].disposition == IMT_DISP_ALERT) return 1;
    return 0;
}

/* ---- resume ----------------------------------------------------------- */

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

imt_err imt_report_resume(imt_report *r, const char *path)
{
    if (!r || !path || r->began || r->old) return IMT_E_INVALID;
    imt_err err = IMT_OK;
    char *line = NULL;
    size_t cap = 0;
    char ebuf[256];
    r->old = fopen(path, "r");
    if (!r->old) return fail(r, IMT_E_IO, "cannot open the report to resume: %s", strerror(errno));
    r->old_path = imt__strdup(path);
    if (!r->old_path) { err = IMT_E_NOMEM; goto cleanup; }
    ssize_t n = getline(&line, &cap, r->old);
    if (n <= 0) {
        err = fail(r, IMT_E_PARSE, "cannot resume: %s holds no report header", path);
        goto cleanup;
    }
    r->old_header = yajl_tree_parse(line, ebuf, sizeof ebuf);
    const char *kp[] = {"record", NULL}, *fp[] = {"report_format", NULL},
               *hp[] = {"options", "hits_only", NULL}, *op[] = {"options", "format", NULL};
    yajl_val rec = r->old_header ? yajl_tree_get(r->old_header, kp, yajl_t_string) : NULL;
    yajl_val fmt = r->old_header ? yajl_tree_get(r->old_header, fp, yajl_t_number) : NULL;
    if (!rec || strcmp(rec->u.string, "header") != 0 || !fmt ||
        YAJL_GET_INTEGER(fmt) != REPORT_FORMAT_VERSION) {
        err = fail(r, IMT_E_PARSE,
                   "cannot resume: %s does not start with an imgtriage JSONL report header",
                   path);
        goto cleanup;
    }
    yajl_val ho = yajl_tree_get(r->old_header, hp, yajl_t_any);
    yajl_val of = yajl_tree_get(r->old_header, op, yajl_t_string);
    if ((ho && YAJL_IS_TRUE(ho)) || !of || strcmp(of->u.string, "jsonl") != 0) {
        err = fail(r, IMT_E_INVALID,
                   "cannot resume from %s: only a full JSONL report (no --hits-only) can be "
                   "resumed", path);
        goto cleanup;
    }
    err = old_advance(r);
cleanup:
    free(line);
    return err;
}

static int json_equal(yajl_val a, yajl_val b)
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
            if (!json_equal(a->u.object.values[i], yajl_tree_get(b, k, yajl_t_any))) return 0;
        }
        return 1;
    case yajl_t_array:
        if (a->u.array.len != b->u.array.len) return 0;
        for (size_t i = 0; i < a->u.array.len; i++)
            if (!json_equal(a->u.array.values[i], b->u.array.values[i])) return 0;
        return 1;
    default: return 1; /* true, false, null */
    }
}

int imt_report_skip(void *report, const char *path, imt_entry_type type)
{
    imt_report *r = report;
    (void)type;
    if (!r || !r->old) return 0;
    if (old_advance(r) != IMT_OK || !r->next_line) return 0;
    const char *lit;
    size_t litlen;
    if (!path_literal(r->next_line, &lit, &litlen)) return 0;
    imt__buf *t = &r->tmp;
    t->len = 0;
    imt__buf_json_str(t, path);
    if (t->oom || t->len != litlen || memcmp(t->p, lit, litlen) != 0) return 0;
    if (r->q_len == r->q_cap) {
        size_t nc = r->q_cap ? r->q_cap * 2 : 64, bytes;
        if (!imt__mul_ok(nc, sizeof *r->queue, &bytes)) return 0;
        pending *nq = imt__malloc(bytes);
        if (!nq) return 0;
        for (size_t i = 0; i < r->q_len; i++) nq[i] = r->queue[(r->q_head + i) % r->q_cap];
        imt__free(r->queue);
        r->queue = nq;
        r->q_head = 0;
        r->q_cap = nc;
    }
    r->queue[(r->q_head + r->q_len++) % r->q_cap] = (pending){r->next_line, r->next_len};
    r->next_line = NULL;
    return 1;
}

static imt_err parse_time(yajl_val v, int64_t *s, int32_t *ns)
{
    const char *t = YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : NULL;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int nsec = 0;
    if (!t || sscanf(t, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                     &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &nsec) != 7)
        return IMT_E_PARSE;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *s = (int64_t)timegm(&tm);
    *ns = (int32_t)nsec;
    return IMT_OK;
}

static const char *get_str(yajl_val o, const char *key)
{
    const char *p[] = {key, NULL};
    yajl_val v = yajl_tree_get(o, p, yajl_t_string);
    return v ? v->u.string : NULL;
}

/* Rebuild from an old line what account() needs, and count it. */
static imt_err account_old(imt_report *r, const char *line)
{
    imt_err err = IMT_OK;
    char ebuf[128];
    imt_scan_match *ms = NULL;
    yajl_val v = yajl_tree_parse(line, ebuf, sizeof ebuf);
    if (!v) return fail(r, IMT_E_PARSE, "cannot parse a record of the resumed report: %s", ebuf);
    imt_scan_record rec;
    imt_hash_result h;
    memset(&rec, 0, sizeof rec);
    memset(&h, 0, sizeof h);
    const char *type = get_str(v, "type"), *status = get_str(v, "status");
    for (int t = 0; type && t < IMT_ENTRY__COUNT; t++)
        if (!strcmp(type, imt_entry_type_name((imt_entry_type)t))) rec.type = (imt_entry_type)t;
    for (int e = 0; status && e < IMT_E__COUNT; e++)
        if (!strcmp(status, imt_err_name((imt_err)e))) rec.status = (imt_err)e;
    const char *mp[] = {"mtime", NULL}, *rp[] = {"read_bytes", NULL}, *kg[] = {"known_good", NULL},
               *ma[] = {"matches", NULL};
    yajl_val mt = yajl_tree_get(v, mp, yajl_t_string);
    if (mt && parse_time(mt, &rec.mtime_s, &rec.mtime_ns) == IMT_OK) rec.have_stat = 1;
    yajl_val rb = yajl_tree_get(v, rp, yajl_t_number);
    if (rb) {
        h.file_size = (uint64_t)YAJL_GET_INTEGER(rb);
        h.has_pdq = get_str(v, "pdq") != NULL;
        rec.hash = &h;
    }
    const char *se[] = {"scan_error", NULL};
    yajl_val sev = yajl_tree_get(v, se, yajl_t_any);
    rec.scan_error = sev && YAJL_IS_TRUE(sev);
    yajl_val k = yajl_tree_get(v, kg, yajl_t_any);
    rec.known_good = k && YAJL_IS_TRUE(k);
    const char *pm = get_str(v, "pdq_matching");
    rec.pdq_low_quality = pm && strstr(pm, "quality") != NULL;
    yajl_val arr = yajl_tree_get(v, ma, yajl_t_array);
    if (arr && arr->u.array.len) {
        ms = imt__calloc(arr->u.array.len, sizeof *ms);
        if (!ms) { err = IMT_E_NOMEM; goto cleanup; }
        for (size_t i = 0; i < arr->u.array.len; i++) {
            yajl_val m = arr->u.array.values[i];
            const char *cp[] = {"category", NULL}, *ep[] = {"entry", NULL},
                       *gp[] = {"known_good", NULL};
            yajl_val c = yajl_tree_get(m, cp, yajl_t_number);
            yajl_val en = yajl_tree_get(m, ep, yajl_t_number);
            yajl_val g = yajl_tree_get(m, gp, yajl_t_any);
            const char *lst = get_str(m, "list"), *sch = get_str(m, "scheme"),
                       *lab = get_str(m, "category_label");
            ms[i].list = lst ? lst : "";
            ms[i].scheme = sch ? sch : "";
            ms[i].category_label = lab ? lab : "";
            ms[i].external_id = "";
            ms[i].category = c ? (int32_t)YAJL_GET_INTEGER(c) : -1;
            ms[i].entry = en ? (uint64_t)YAJL_GET_INTEGER(en) : 0;
            const char *lp[] = {"list_id", NULL};
            yajl_val li = yajl_tree_get(m, lp, yajl_t_number);
            ms[i].list_id = li ? (uint32_t)YAJL_GET_INTEGER(li) : 0;
            ms[i].known_good = g && YAJL_IS_TRUE(g);
            const char *dp = get_str(m, "disposition");
            ms[i].disposition = dp && !strcmp(dp, "info")     ? IMT_DISP_INFO
                                : dp && !strcmp(dp, "ignore") ? IMT_DISP_IGNORE
                                : dp                          ? IMT_DISP_ALERT
                                : ms[i].known_good            ? IMT_DISP_IGNORE
                                                              : IMT_DISP_ALERT;
        }
        rec.matches = ms;
        rec.n_matches = arr->u.array.len;
    }
    const char *lit;
    size_t litlen;
    if (!path_literal(line, &lit, &litlen)) {
        err = fail(r, IMT_E_PARSE, "a record of the resumed report has no path%s", NULL);
        goto cleanup;
    }
    imt__buf *t = &r->tmp;
    t->len = 0;
    imt__buf_put(t, lit, litlen);
    if (t->oom) { err = IMT_E_NOMEM; goto cleanup; }
    IMT_TRY(account(r, &rec, t->p));
cleanup:
    imt__free(ms);
    yajl_tree_free(v);
    return err;
}

/* ---- records ---------------------------------------------------------- */

int imt_report_record(void *report, const imt_scan_record *rec)
{
    imt_report *r = report;
    imt_err err = IMT_OK;
    if (!r || !rec || !r->began || r->ended) return 1;
    if (rec->skipped) {
        if (!r->q_len) {
            fail(r, IMT_E_INTERNAL, "a resumed entry has no old record%s", NULL);
            return 1;
        }
        pending p = r->queue[r->q_head];
        r->q_head = (r->q_head + 1) % r->q_cap;
        r->q_len--;
        r->resumed++;
        err = account_old(r, p.line);
        if (!err) {
            /* Verbatim: the options check made sure the format is the same
             * (full JSONL), so this is the line an uninterrupted run writes. */
            imt__buf_put(&r->line, p.line, p.len);
            err = flush_line(r);
        }
        free(p.line);
        return err != IMT_OK;
    }
    imt__buf *t = &r->tmp;
    t->len = 0;
    imt__buf_json_str(t, rec->path);
    if (t->oom) {
        fail(r, IMT_E_NOMEM, "out of memory%s", NULL);
        return 1;
    }
    err = account(r, rec, t->p);
    if (err) {
        fail(r, err, "cannot count a record: %s", imt_strerror(err));
        return 1;
    }
    if (r->o.hits_only && !has_hit(rec)) return 0;
    if (r->o.format == IMT_REPORT_CSV) put_record_csv(&r->line, rec);
    else put_record_json(&r->line, rec);
    return flush_line(r) != IMT_OK;
}

/* ---- summary ---------------------------------------------------------- */

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
    int complete = scan_status == IMT_OK && r->errors == 0 && !r->write_failed;
    imt_err overall = r->write_failed        ? IMT_E_WRITE
                      : scan_status != IMT_OK ? scan_status
                      : complete              ? IMT_OK
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
    else if (r->errors)
        imt__set_detail(why, sizeof why, "%llu %s could not be read",
                        (unsigned long long)r->errors, r->errors == 1 ? "entry" : "entries");
    r->priority = priority(r, &expl);

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
    put_str_or_null(b, r->o.device);
    imt__buf_puts(b, ",\"case\":");
    put_str_or_null(b, r->o.case_id);
    imt__buf_printf(b, ",\"entries\":%llu,\"files\":%llu,\"images\":%llu,\"bytes\":%llu,"
                    "\"hit_files\":%llu,\"distinct_known_items\":%llu,"
                    "\"known_good_files\":%llu,\"low_quality_images\":%llu,"
                    "\"scan_errors\":%llu,\"types\":{",
                    (unsigned long long)r->entries, (unsigned long long)r->files,
                    (unsigned long long)r->images, (unsigned long long)r->bytes,
                    (unsigned long long)r->hit_files, (unsigned long long)r->n_items,
                    (unsigned long long)r->known_good_files, (unsigned long long)r->low_quality,
                    (unsigned long long)r->errors);
    int first = 1;
    for (int t = 0; t < IMT_ENTRY__COUNT; t++) {
        if (!r->by_type[t]) continue;
        imt__buf_printf(b, "%s\"%s\":%llu", first ? "" : ",", imt_entry_type_name((imt_entry_type)t),
                        (unsigned long long)r->by_type[t]);
        first = 0;
    }
    /* Scan errors (what kept the scan from being complete) apart from
     * findings about files (corrupt, unsupported-format, vanished, ...). */
    for (int pass = 0; pass < 2; pass++) {
        const uint64_t *cnt = pass ? r->find_by_status : r->err_by_status;
        imt__buf_puts(b, pass ? "},\"findings_by_kind\":{" : "},\"errors_by_kind\":{");
        first = 1;
        for (int e = 0; e < IMT_E__COUNT; e++) {
            if (!cnt[e] || is_plain_outcome((imt_err)e)) continue;
            imt__buf_printf(b, "%s\"%s\":%llu", first ? "" : ",", imt_err_name((imt_err)e),
                            (unsigned long long)cnt[e]);
            first = 0;
        }
    }
    imt__buf_puts(b, "},\"hits_by_list\":[");
    if (r->n_cats) qsort(r->cats, r->n_cats, sizeof *r->cats, hitcat_cmp);
    for (size_t i = 0; i < r->n_cats; i++) {
        const hitcat *c = &r->cats[i];
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
    if (r->first_hit) {
        imt__buf_printf(b, ",\"first_hit\":%s,\"first_hit_after_s\":%.3f", r->first_hit,
                        r->first_hit_after);
    }
    if (r->have_hit_mtime) {
        imt__buf_puts(b, ",\"earliest_hit_mtime\":");
        imt__buf_time(b, r->earliest_hit_mtime, r->earliest_hit_mtime_ns);
    }
    imt__buf_printf(b, ",\"priority\":%.3f,\"priority_explanation\":", r->priority);
    imt__buf_json_str(b, expl.p ? expl.p : "");
    imt__buf_puts(b, "}\n");
    imt_err err = flush_line(r);

    /* The human summary for stderr. */
    imt__buf *s = &r->summary_text;
    s->len = 0;
    imt__buf_printf(s, "device %s%s%s: %s%s%s\n", r->o.device ? r->o.device : "(unnamed)",
                    r->o.case_id ? ", case " : "", r->o.case_id ? r->o.case_id : "",
                    complete ? "scan complete" : "SCAN INCOMPLETE", complete ? "" : ": ", why);
    imt__buf_printf(s, "  %llu entries, %llu files read (%.1f MB), %llu images hashed, "
                    "%llu known-good, %llu low-quality\n", (unsigned long long)r->entries,
                    (unsigned long long)r->files, (double)r->bytes / 1e6,
                    (unsigned long long)r->images, (unsigned long long)r->known_good_files,
                    (unsigned long long)r->low_quality);
    imt__buf_printf(s, "  %llu scan errors", (unsigned long long)r->errors);
    first = 1;
    for (int e = 0; e < IMT_E__COUNT; e++) {
        if (!r->err_by_status[e] || is_plain_outcome((imt_err)e)) continue;
        imt__buf_printf(s, "%s%s %llu", first ? "; by kind: " : ", ", imt_err_name((imt_err)e),
                        (unsigned long long)r->err_by_status[e]);
        first = 0;
    }
    first = 1;
    for (int e = 0; e < IMT_E__COUNT; e++) {
        if (!r->find_by_status[e] || is_plain_outcome((imt_err)e)) continue;
        imt__buf_printf(s, "%s%s %llu", first ? "\n  findings: " : ", ",
                        imt_err_name((imt_err)e), (unsigned long long)r->find_by_status[e]);
        first = 0;
    }
    imt__buf_printf(s, "\n  hits: %llu files, %llu distinct known items\n",
                    (unsigned long long)r->hit_files, (unsigned long long)r->n_items);
    for (size_t i = 0; i < r->n_cats; i++) {
        const hitcat *c = &r->cats[i];
        imt__buf_printf(s, "    list %u \"%s\" (%s) category ", (unsigned)c->list_id, c->list,
                        c->scheme);
        if (c->category >= 0) imt__buf_printf(s, "%d", (int)c->category);
        else imt__buf_puts(s, "-");
        if (c->label[0]) imt__buf_printf(s, " \"%s\"", c->label);
        imt__buf_printf(s, "%s: %llu files\n", c->known_good ? " [known-good]" : "",
                        (unsigned long long)c->files);
    }
    if (r->first_hit)
        imt__buf_printf(s, "  first hit after %.1f s: %s\n", r->first_hit_after, r->first_hit);
    imt__buf_printf(s, "  %s\n", expl.p ? expl.p : "");
    imt__buf_free(&expl);

    if (sum) {
        memset(sum, 0, sizeof *sum);
        sum->entries = r->entries;
        sum->files = r->files;
        sum->images = r->images;
        sum->bytes = r->bytes;
        sum->hit_files = r->hit_files;
        sum->known_good_files = r->known_good_files;
        sum->errors = r->errors;
        sum->distinct_items = r->n_items;
        sum->priority = r->priority;
        sum->complete = complete;
    }
    return err;
}

const char *imt_report_summary_text(imt_report *r)
{
    if (!r || !r->summary_text.p || r->summary_text.oom) return "";
    return r->summary_text.p;
}
