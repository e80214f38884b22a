/* engine/report/html.c -- one self-contained HTML page for people: device
 * and case, the audit facts, the priority and its explanation, hits by
 * list and category, a sortable table of hits, errors and findings by kind,
 * and inline SVG charts (hits and pictures over the files' modification
 * times, hits by category, the folders holding most hits).
 *
 * Hostile input: every string (names from the evidence, list names, ids,
 * labels, the command line) goes through imt__buf_html_str; numbers are
 * printed by us or are yajl-validated JSON numbers. The page loads nothing:
 * its Content-Security-Policy (default-src 'none') admits only its own
 * style and script, by SHA-256, so a name that slipped through could
 * neither run nor fetch anything; there are no inline event handlers and
 * no style attributes. Pictures are never embedded.
 *
 * Memory: the hit table rows, the error rows (first ERR_ROWS), the
 * modification times of pictures and hits, and the hit folders. */
#include "report.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ERR_ROWS 500
#define TIME_BINS 24
#define TOP_FOLDERS 10

static const char CSS[] =
    "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em auto;max-width:75em;color:#111;"
    "padding:0 1em}h1{font-size:1.6em;margin:.2em 0}h2{font-size:1.2em;margin-top:1.6em;"
    "border-bottom:1px solid #ccc}table{border-collapse:collapse;margin:.5em 0}"
    "td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}"
    "th{background:#f0f0f0}td.n,th.num{text-align:right}td.p{min-width:22em;word-break:break-all;"
    "font-family:monospace}th button{font:inherit;font-weight:bold;border:0;background:none;"
    "cursor:pointer;padding:0}th[aria-sort=ascending] button::after{content:' \\25B2'}"
    "th[aria-sort=descending] button::after{content:' \\25BC'}.prio{font-size:1.4em}"
    ".bad{color:#a00;font-weight:bold}.ok{color:#060}.charts{display:flex;flex-wrap:wrap;"
    "gap:1.5em}figure{margin:0}figcaption{font-weight:bold}dl{display:grid;"
    "grid-template-columns:max-content auto;gap:.1em 1em}dt{font-weight:bold}dd{margin:0;"
    "word-break:break-all}.note{color:#555}svg text{font:11px sans-serif}"
    "@media print{th button::after{content:''}body{max-width:none}}";

static const char JS[] =
    "(function(){var ts=document.querySelectorAll('table.sortable');"
    "Array.prototype.forEach.call(ts,function(t){var hs=t.tHead.rows[0].cells;"
    "Array.prototype.forEach.call(hs,function(th,i){var b=th.querySelector('button');"
    "if(!b)return;b.addEventListener('click',function(){var tb=t.tBodies[0];"
    "var rows=Array.prototype.slice.call(tb.rows);"
    "var d=th.getAttribute('aria-sort')==='ascending'?-1:1;"
    "Array.prototype.forEach.call(hs,function(h){h.removeAttribute('aria-sort');});"
    "th.setAttribute('aria-sort',d>0?'ascending':'descending');"
    "var num=th.classList.contains('num');rows.sort(function(a,c){"
    "var x=a.cells[i].textContent,y=c.cells[i].textContent;if(num){x=parseFloat(x);"
    "y=parseFloat(y);if(isNaN(x))x=-1e300;if(isNaN(y))y=-1e300;return (x-y)*d;}"
    "return x<y?-d:x>y?d:0;});rows.forEach(function(r){tb.appendChild(r);});});});});"
    "document.documentElement.setAttribute('data-sortable','1');})();";

typedef struct folder {
    char *name;
    uint64_t hits;
} folder;

typedef struct hstate {
    imt__buf rows, errs;       /* the hit table's and the error table's rows */
    uint64_t n_rows, n_errs, n_errs_all, n_hit_files;
    int64_t *pic_t, *hit_t;    /* mtimes (s) of pictures and of hit files */
    size_t n_pic, cap_pic, n_hit, cap_hit;
    folder *f;
    size_t n_f, cap_f;
} hstate;

static int push_t(int64_t **a, size_t *n, size_t *cap, int64_t t)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 1024, bytes;
        if (!imt__mul_ok(nc, sizeof **a, &bytes)) return 0;
        int64_t *na = imt__realloc(*a, bytes);
        if (!na) return 0;
        *a = na;
        *cap = nc;
    }
    (*a)[(*n)++] = t;
    return 1;
}

static void esc(imt__buf *b, const char *s)
{
    imt__buf_html_str(b, s ? s : "");
}

/* A JSON value of the header or summary as text. */
static void put_jval(imt__buf *b, yajl_val v)
{
    if (!v || YAJL_IS_NULL(v)) imt__buf_puts(b, "&#8212;");
    else if (YAJL_IS_STRING(v)) esc(b, v->u.string);
    else if (YAJL_IS_NUMBER(v)) esc(b, v->u.number.r);
    else if (YAJL_IS_TRUE(v)) imt__buf_puts(b, "yes");
    else if (YAJL_IS_FALSE(v)) imt__buf_puts(b, "no");
    else if (YAJL_IS_ARRAY(v)) {
        for (size_t i = 0; i < v->u.array.len; i++) {
            if (i) imt__buf_puts(b, ", ");
            put_jval(b, v->u.array.values[i]);
        }
    } else if (YAJL_IS_OBJECT(v)) {
        for (size_t i = 0; i < v->u.object.len; i++) {
            if (i) imt__buf_puts(b, "; ");
            esc(b, v->u.object.keys[i]);
            imt__buf_puts(b, ": ");
            put_jval(b, v->u.object.values[i]);
        }
    }
}

static void put_dd(imt__buf *b, const char *term, yajl_val v)
{
    imt__buf_puts(b, "<dt>");
    esc(b, term);
    imt__buf_puts(b, "</dt><dd>");
    put_jval(b, v);
    imt__buf_puts(b, "</dd>\n");
}

static void put_hash_src(imt__buf *b, const char *kind, const char *text)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    unsigned char b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
    if (!EVP_Digest(text, strlen(text), md, &n, EVP_sha256(), NULL)) {
        b->oom = 1; /* cannot happen with OpenSSL's own SHA-256; never a weaker policy */
        return;
    }
    EVP_EncodeBlock(b64, md, (int)n);
    imt__buf_printf(b, "%s 'sha256-%s'", kind, (const char *)b64);
}

static imt_err html_begin(imt__conv *c)
{
    hstate *s = imt__calloc(1, sizeof *s);
    if (!s) return IMT_E_NOMEM;
    c->st = s;
    return IMT_OK;
}

static imt_err add_folder(hstate *s, const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) + 1 : 0;
    for (size_t i = 0; i < s->n_f; i++)
        if (strlen(s->f[i].name) == n && !memcmp(s->f[i].name, path, n)) {
            s->f[i].hits++;
            return IMT_OK;
        }
    if (s->n_f == s->cap_f) {
        size_t nc = s->cap_f ? s->cap_f * 2 : 64, bytes;
        if (!imt__mul_ok(nc, sizeof *s->f, &bytes)) return IMT_E_NOMEM;
        folder *nf = imt__realloc(s->f, bytes);
        if (!nf) return IMT_E_NOMEM;
        s->f = nf;
        s->cap_f = nc;
    }
    char *name = imt__malloc(n + 1);
    if (!name) return IMT_E_NOMEM;
    memcpy(name, path, n);
    name[n] = '\0';
    s->f[s->n_f++] = (folder){name, 1};
    return IMT_OK;
}

static imt_err html_record(imt__conv *c, const imt_scan_record *r)
{
    hstate *s = c->st;
    int hit = imt__record_has_hit(r);
    if (r->hash && r->hash->has_pdq && r->have_stat &&
        !push_t(&s->pic_t, &s->n_pic, &s->cap_pic, r->mtime_s))
        return IMT_E_NOMEM;
    if (hit) {
        s->n_hit_files++;
        if (r->have_stat && !push_t(&s->hit_t, &s->n_hit, &s->cap_hit, r->mtime_s))
            return IMT_E_NOMEM;
        imt_err e = add_folder(s, r->path);
        if (e) return e;
        for (size_t i = 0; i < r->n_matches; i++) {
            const imt_scan_match *m = &r->matches[i];
            imt__buf *b = &s->rows;
            imt__buf_puts(b, "<tr><td class=\"p\">");
            esc(b, r->path);
            imt__buf_printf(b, "</td><td>%s</td><td>%s", imt_err_name(r->status),
                            imt_hash_kind_name(m->kind));
            /* a match on an embedded picture (EXIF thumbnail, MPF image) */
            if (m->subitem >= 0 && r->hash && (size_t)m->subitem < r->hash->n_sub)
                imt__buf_printf(b, " of its %s",
                                imt_subitem_kind_name(r->hash->sub[m->subitem].kind));
            else if (m->subitem >= 0)
                imt__buf_puts(b, " of an embedded picture");
            imt__buf_puts(b, "</td>");
            if (m->kind == IMT_KIND_PDQ)
                imt__buf_printf(b, "<td class=\"n\">%d</td><td>%s</td>", m->distance,
                                imt_dihedral_name(m->variant));
            else
                imt__buf_puts(b, "<td class=\"n\">0</td><td>exact</td>");
            imt__buf_puts(b, "<td>");
            if (c->version >= 2) /* format 1 reports carry no list ids */
                imt__buf_printf(b, "%u: ", (unsigned)m->list_id);
            esc(b, m->list);
            imt__buf_puts(b, " (");
            esc(b, m->scheme);
            imt__buf_puts(b, ")</td><td class=\"n\">");
            if (m->category >= 0) imt__buf_printf(b, "%d", (int)m->category);
            else imt__buf_puts(b, "&#8212;");
            if (m->category_label && m->category_label[0]) {
                imt__buf_puts(b, " ");
                esc(b, m->category_label);
            }
            imt__buf_printf(b, "</td><td>%s</td><td>", imt_disposition_name(m->disposition));
            esc(b, m->external_id);
            imt__buf_puts(b, "</td></tr>\n");
            s->n_rows++;
        }
    }
    if (r->scan_error || !imt__is_plain_outcome(r->status)) {
        s->n_errs_all++;
        if (s->n_errs < ERR_ROWS) {
            imt__buf *b = &s->errs;
            imt__buf_puts(b, "<tr><td class=\"p\">");
            esc(b, r->path);
            imt__buf_printf(b, "</td><td>%s</td><td>%s</td><td>", imt_err_name(r->status),
                            r->scan_error ? "scan error" : "finding");
            esc(b, r->detail);
            imt__buf_puts(b, "</td></tr>\n");
            s->n_errs++;
        }
    }
    if (s->rows.oom || s->errs.oom) return IMT_E_NOMEM;
    return IMT_OK;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int cmp_folder(const void *a, const void *b)
{
    const folder *x = a, *y = b;
    if (x->hits != y->hits) return x->hits < y->hits ? 1 : -1;
    return strcmp(x->name, y->name);
}

static void put_date(imt__buf *b, int64_t t, int with_time)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm)) {
        imt__buf_printf(b, "@%lld", (long long)t);
        return;
    }
    imt__buf_printf(b, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    if (with_time) imt__buf_printf(b, " %02d:%02d:%02d", tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Pictures (grey) and hits (red) per bin of modification time. */
static void chart_times(imt__buf *b, hstate *s)
{
    imt__buf_puts(b, "<figure id=\"chart-mtime\"><figcaption>Pictures and hits by the files' "
                     "modification time (UTC)</figcaption>\n");
    if (!s->n_pic && !s->n_hit) {
        imt__buf_puts(b, "<p class=\"note\">No pictures with a modification time.</p></figure>\n");
        return;
    }
    if (s->n_pic) qsort(s->pic_t, s->n_pic, sizeof *s->pic_t, cmp_i64);
    if (s->n_hit) qsort(s->hit_t, s->n_hit, sizeof *s->hit_t, cmp_i64);
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    if (s->n_pic) { lo = s->pic_t[0]; hi = s->pic_t[s->n_pic - 1]; }
    if (s->n_hit) {
        if (s->hit_t[0] < lo) lo = s->hit_t[0];
        if (s->hit_t[s->n_hit - 1] > hi) hi = s->hit_t[s->n_hit - 1];
    }
    /* unsigned arithmetic: a report may hold any 64-bit times */
    uint64_t span = (uint64_t)hi - (uint64_t)lo, width = span / TIME_BINS + 1;
    int wt = span < 2 * 86400; /* a short span: the times of day tell more */
    uint64_t pic[TIME_BINS] = {0}, hit[TIME_BINS] = {0}, mx = 1;
    for (size_t i = 0; i < s->n_pic; i++) pic[((uint64_t)s->pic_t[i] - (uint64_t)lo) / width]++;
    for (size_t i = 0; i < s->n_hit; i++) hit[((uint64_t)s->hit_t[i] - (uint64_t)lo) / width]++;
    for (int i = 0; i < TIME_BINS; i++) if (pic[i] > mx) mx = pic[i];
    for (int i = 0; i < TIME_BINS; i++) if (hit[i] > mx) mx = hit[i];
    const int W = 24, H = 160;
    imt__buf_printf(b, "<svg role=\"img\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">"
                       "<title>pictures and hits over modification time</title>\n",
                    TIME_BINS * W + 60, H + 50, TIME_BINS * W + 60, H + 50);
    for (int i = 0; i < TIME_BINS; i++) {
        int x = 40 + i * W, hp = (int)(pic[i] * H / mx), hh = (int)(hit[i] * H / mx);
        imt__buf_printf(b, "<rect class=\"bar-pictures\" x=\"%d\" y=\"%d\" width=\"%d\" "
                           "height=\"%d\" fill=\"#bbb\"><title>", x, 10 + H - hp, W / 2, hp);
        put_date(b, (int64_t)((uint64_t)lo + width * (uint64_t)i), wt);
        imt__buf_printf(b, ": %llu pictures</title></rect>", (unsigned long long)pic[i]);
        imt__buf_printf(b, "<rect class=\"bar-hits\" x=\"%d\" y=\"%d\" width=\"%d\" "
                           "height=\"%d\" fill=\"#c00\"><title>", x + W / 2, 10 + H - hh,
                        W / 2 - 2, hh);
        put_date(b, (int64_t)((uint64_t)lo + width * (uint64_t)i), wt);
        imt__buf_printf(b, ": %llu hits</title></rect>\n", (unsigned long long)hit[i]);
    }
    imt__buf_printf(b, "<text x=\"0\" y=\"18\">%llu</text><text x=\"0\" y=\"%d\">0</text>"
                       "<text x=\"40\" y=\"%d\">", (unsigned long long)mx, H + 10, H + 28);
    put_date(b, lo, wt);
    imt__buf_printf(b, "</text><text x=\"%d\" y=\"%d\" text-anchor=\"end\">", 40 + TIME_BINS * W,
                    H + 28);
    put_date(b, hi, wt);
    imt__buf_printf(b, "</text><rect x=\"40\" y=\"%d\" width=\"10\" height=\"10\" fill=\"#bbb\"/>"
                       "<text x=\"54\" y=\"%d\">pictures</text><rect x=\"130\" y=\"%d\" "
                       "width=\"10\" height=\"10\" fill=\"#c00\"/><text x=\"144\" y=\"%d\">files "
                       "with hits</text></svg></figure>\n", H + 36, H + 45, H + 36, H + 45);
}

/* Horizontal bars: labels (raw strings, NUL-separated in labels) and counts. */
static void hbars(imt__buf *b, const char *id, const char *caption, imt__buf *labels,
                  const size_t *offs, const uint64_t *v, size_t n, const char *fill)
{
    uint64_t mx = 1;
    for (size_t i = 0; i < n; i++) if (v[i] > mx) mx = v[i];
    imt__buf_printf(b, "<figure id=\"%s\"><figcaption>", id);
    imt__buf_puts(b, caption);
    imt__buf_puts(b, "</figcaption>\n");
    if (!n) {
        imt__buf_puts(b, "<p class=\"note\">None.</p></figure>\n");
        return;
    }
    imt__buf_printf(b, "<svg role=\"img\" width=\"620\" height=\"%zu\" viewBox=\"0 0 620 %zu\">"
                       "<title>", 22 * n + 6, 22 * n + 6);
    imt__buf_puts(b, caption);
    imt__buf_puts(b, "</title>\n");
    for (size_t i = 0; i < n; i++) {
        const char *label = labels->p + offs[i];
        int w = (int)(v[i] * 300 / mx);
        imt__buf_printf(b, "<text x=\"0\" y=\"%zu\">", 22 * i + 16);
        /* long labels: the end of a path says most (cut the raw bytes at a
         * character start, then escape) */
        size_t len = strlen(label), k = 0;
        if (len > 48) {
            k = len - 45;
            while (k < len && ((unsigned char)label[k] & 0xC0) == 0x80) k++;
            imt__buf_puts(b, "&#8230;");
        }
        esc(b, label + k);
        imt__buf_printf(b, "</text><rect x=\"300\" y=\"%zu\" width=\"%d\" height=\"16\" "
                           "fill=\"%s\"><title>%llu</title></rect><text x=\"%d\" y=\"%zu\">"
                           "%llu</text>\n", 22 * i + 4, w ? w : 1, fill,
                        (unsigned long long)v[i], 306 + w, 22 * i + 16, (unsigned long long)v[i]);
    }
    imt__buf_puts(b, "</svg></figure>\n");
}

static void chart_categories(imt__buf *b, yajl_val sum)
{
    yajl_val rows = imt__jget(sum, "hits_by_list", yajl_t_array);
    size_t n = 0, offs[64];
    uint64_t v[64];
    imt__buf labels = {0};
    for (size_t i = 0; rows && i < rows->u.array.len && n < 64; i++) {
        yajl_val r = rows->u.array.values[i];
        yajl_val kg = imt__jget(r, "known_good", yajl_t_any);
        if (kg && YAJL_IS_TRUE(kg)) continue;
        yajl_val f = imt__jget(r, "files", yajl_t_number);
        yajl_val cat = imt__jget(r, "category", yajl_t_number);
        const char *list = imt__jstr(r, "list"), *label = imt__jstr(r, "label");
        offs[n] = labels.len;
        imt__buf_puts(&labels, list ? list : "");
        imt__buf_printf(&labels, " cat. %s", cat ? cat->u.number.r : "none");
        if (label) {
            imt__buf_puts(&labels, " ");
            imt__buf_puts(&labels, label);
        }
        imt__buf_put(&labels, "", 1); /* keep the NUL: labels are C strings */
        v[n++] = f ? (uint64_t)YAJL_GET_INTEGER(f) : 0;
    }
    if (labels.oom) b->oom = 1;
    else hbars(b, "chart-categories", "Files with hits by list and category", &labels, offs, v, n,
               "#c00");
    imt__buf_free(&labels);
}

static void chart_folders(imt__buf *b, hstate *s)
{
    if (s->n_f) qsort(s->f, s->n_f, sizeof *s->f, cmp_folder);
    size_t n = s->n_f < TOP_FOLDERS ? s->n_f : TOP_FOLDERS, offs[TOP_FOLDERS];
    uint64_t v[TOP_FOLDERS];
    imt__buf labels = {0};
    for (size_t i = 0; i < n; i++) {
        offs[i] = labels.len;
        imt__buf_puts(&labels, s->f[i].name);
        imt__buf_put(&labels, "", 1);
        v[i] = s->f[i].hits;
    }
    if (labels.oom) b->oom = 1;
    else hbars(b, "chart-folders", "Folders holding the most files with hits", &labels, offs, v,
               n, "#a50");
    imt__buf_free(&labels);
}

static void put_counts(imt__buf *b, const char *caption, yajl_val o)
{
    imt__buf_printf(b, "<h3>%s</h3>\n", caption);
    if (!o || !YAJL_IS_OBJECT(o) || !o->u.object.len) {
        imt__buf_puts(b, "<p class=\"note\">None.</p>\n");
        return;
    }
    imt__buf_puts(b, "<table><thead><tr><th>kind</th><th class=\"num\">entries</th></tr></thead>"
                     "<tbody>\n");
    for (size_t i = 0; i < o->u.object.len; i++) {
        imt__buf_puts(b, "<tr><td>");
        esc(b, o->u.object.keys[i]);
        imt__buf_puts(b, "</td><td class=\"n\">");
        put_jval(b, o->u.object.values[i]);
        imt__buf_puts(b, "</td></tr>\n");
    }
    imt__buf_puts(b, "</tbody></table>\n");
}

static void put_page(imt__conv *c, hstate *s)
{
    imt__buf *b = &c->b;
    yajl_val h = c->header, sum = c->summary;
    const char *dev = imt__jstr(h, "device"), *cs = imt__jstr(h, "case");
    imt__buf_puts(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
                     "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; ");
    put_hash_src(b, "script-src", JS);
    imt__buf_puts(b, "; ");
    put_hash_src(b, "style-src", CSS);
    imt__buf_puts(b, "; img-src 'none'; connect-src 'none'; font-src 'none'; media-src 'none'; "
                     "object-src 'none'; frame-src 'none'; base-uri 'none'; form-action 'none'\">\n"
                     "<meta name=\"referrer\" content=\"no-referrer\">\n"
                     "<meta name=\"generator\" content=\"imgtriage\">\n<title>imgtriage report: ");
    esc(b, dev ? dev : "(no device name)");
    if (cs) {
        imt__buf_puts(b, ", case ");
        esc(b, cs);
    }
    imt__buf_printf(b, "</title>\n<style>%s</style>\n</head><body>\n<header><h1>Device ", CSS);
    esc(b, dev ? dev : "(no device name)");
    imt__buf_puts(b, "</h1><p>Case: <strong>");
    esc(b, cs ? cs : "(none given)");
    imt__buf_puts(b, "</strong></p>\n");
    yajl_val cp = sum ? imt__jget(sum, "complete", yajl_t_any) : NULL;
    if (!sum)
        imt__buf_puts(b, "<p class=\"bad\" id=\"status\">SCAN INCOMPLETE: the report has no "
                         "summary (the scan was interrupted); figures below count the records "
                         "present.</p>\n");
    else if (!cp || !YAJL_IS_TRUE(cp))
        imt__buf_puts(b, "<p class=\"bad\" id=\"status\">SCAN INCOMPLETE: see the scan status "
                         "and errors below.</p>\n");
    else
        imt__buf_puts(b, "<p class=\"ok\" id=\"status\">Scan complete.</p>\n");
    imt__buf_puts(b, "</header>\n<section id=\"priority\"><h2>Priority</h2>\n");
    if (sum) {
        imt__buf_puts(b, "<p class=\"prio\">Priority <strong>");
        put_jval(b, imt__jget(sum, "priority", yajl_t_any));
        imt__buf_puts(b, "</strong></p><p>");
        put_jval(b, imt__jget(sum, "priority_explanation", yajl_t_any));
        imt__buf_puts(b, "</p>\n<dl>\n");
        static const char *keys[] = {"entries", "files", "images", "bytes", "hit_files",
                                     "distinct_known_items", "known_good_files",
                                     "low_quality_images", "scan_errors", "first_hit",
                                     "first_hit_after_s", "earliest_hit_mtime"};
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            put_dd(b, keys[i], imt__jget(sum, keys[i], yajl_t_any));
        imt__buf_puts(b, "</dl>\n");
    } else {
        imt__buf_printf(b, "<p>No summary: %llu files with hits among the records present.</p>\n",
                        (unsigned long long)s->n_hit_files);
    }
    imt__buf_puts(b, "</section>\n<section id=\"charts\"><h2>Charts</h2><div class=\"charts\">\n");
    chart_times(b, s);
    if (sum) chart_categories(b, sum);
    chart_folders(b, s);
    imt__buf_puts(b, "</div></section>\n<section id=\"lists\"><h2>Hits by list and category</h2>\n");
    yajl_val rows = sum ? imt__jget(sum, "hits_by_list", yajl_t_array) : NULL;
    if (!rows || !rows->u.array.len) {
        imt__buf_puts(b, "<p class=\"note\">No matches.</p>\n");
    } else {
        imt__buf_puts(b, "<table id=\"by-list\"><thead><tr><th>list id</th><th>list</th>"
                         "<th>scheme</th><th>category</th><th>label</th><th>known-good</th>"
                         "<th class=\"num\">files</th></tr></thead><tbody>\n");
        for (size_t i = 0; i < rows->u.array.len; i++) {
            yajl_val r = rows->u.array.values[i];
            static const char *k[] = {"list_id", "list", "scheme", "category", "label",
                                      "known_good", "files"};
            imt__buf_puts(b, "<tr>");
            for (size_t j = 0; j < 7; j++) {
                imt__buf_puts(b, j == 6 ? "<td class=\"n\">" : "<td>");
                put_jval(b, imt__jget(r, k[j], yajl_t_any));
                imt__buf_puts(b, "</td>");
            }
            imt__buf_puts(b, "</tr>\n");
        }
        imt__buf_puts(b, "</tbody></table>\n");
    }
    imt__buf_printf(b, "</section>\n<section id=\"hits\"><h2>Hits (%llu files, %llu matches)"
                       "</h2>\n", (unsigned long long)s->n_hit_files,
                    (unsigned long long)s->n_rows);
    if (!s->n_rows) {
        imt__buf_puts(b, "<p class=\"note\">No file matched an alerting list.</p>\n");
    } else {
        imt__buf_puts(b, "<p class=\"note\">One row per match of a file with a hit; click a "
                         "column to sort. No picture is shown.</p>\n<table id=\"hit-table\" "
                         "class=\"sortable\"><thead><tr>");
        static const char *cols[] = {"path", "status", "kind", "distance", "variant", "list",
                                     "category", "disposition", "external id"};
        for (size_t j = 0; j < 9; j++)
            imt__buf_printf(b, "<th%s><button type=\"button\">%s</button></th>",
                            j == 3 || j == 6 ? " class=\"num\"" : "", cols[j]);
        imt__buf_puts(b, "</tr></thead><tbody>\n");
        imt__buf_put(b, s->rows.p, s->rows.len);
        imt__buf_puts(b, "</tbody></table>\n");
    }
    imt__buf_puts(b, "</section>\n<section id=\"errors\"><h2>Errors and findings</h2>\n");
    if (sum) {
        put_counts(b, "Scan errors by kind (the scan could not read these)",
                   imt__jget(sum, "errors_by_kind", yajl_t_any));
        put_counts(b, "Findings by kind (about the files: corrupt, truncated, ...)",
                   imt__jget(sum, "findings_by_kind", yajl_t_any));
    }
    if (s->n_errs) {
        imt__buf_printf(b, "<table id=\"error-table\" class=\"sortable\"><caption>%llu entries "
                           "%s</caption><thead><tr><th><button type=\"button\">path</button></th>"
                           "<th><button type=\"button\">status</button></th><th><button "
                           "type=\"button\">kind</button></th><th>detail</th></tr></thead>"
                           "<tbody>\n", (unsigned long long)s->n_errs_all,
                        s->n_errs < s->n_errs_all ? "(the first ones shown)" : "");
        imt__buf_put(b, s->errs.p, s->errs.len);
        imt__buf_puts(b, "</tbody></table>\n");
    }
    imt__buf_puts(b, "</section>\n<section id=\"audit\"><h2>Audit</h2>\n<dl>\n");
    static const char *hk[] = {"tool", "version", "report_format", "command_line", "start_time",
                               "host", "user", "uid", "paths", "resumed_from"};
    for (size_t i = 0; i < sizeof hk / sizeof hk[0]; i++)
        if (imt__jget(h, hk[i], yajl_t_any)) put_dd(b, hk[i], imt__jget(h, hk[i], yajl_t_any));
    if (sum) {
        static const char *sk[] = {"end_time", "elapsed_s", "scan_status", "types"};
        for (size_t i = 0; i < sizeof sk / sizeof sk[0]; i++)
            put_dd(b, sk[i], imt__jget(sum, sk[i], yajl_t_any));
    }
    yajl_val opts = imt__jget(h, "options", yajl_t_object);
    for (size_t i = 0; opts && i < opts->u.object.len; i++) {
        imt__buf_puts(b, "<dt>option ");
        esc(b, opts->u.object.keys[i]);
        imt__buf_puts(b, "</dt><dd>");
        put_jval(b, opts->u.object.values[i]);
        imt__buf_puts(b, "</dd>\n");
    }
    yajl_val idx = imt__jget(h, "index", yajl_t_object);
    if (idx) {
        put_dd(b, "index path", imt__jget(idx, "path", yajl_t_any));
        put_dd(b, "index identity", imt__jget(idx, "identity", yajl_t_any));
    } else {
        imt__buf_puts(b, "<dt>index</dt><dd>none (an inventory without matching)</dd>\n");
    }
    imt__buf_puts(b, "</dl>\n");
    yajl_val lists = idx ? imt__jget(idx, "lists", yajl_t_array) : NULL;
    if (lists && lists->u.array.len) {
        static const char *lk[] = {"id", "name", "version", "format", "scheme", "known_good",
                                   "policy", "entries", "import_time", "file_sha256"};
        imt__buf_puts(b, "<table id=\"index-lists\"><caption>The index's lists</caption><thead>"
                         "<tr>");
        for (size_t j = 0; j < sizeof lk / sizeof lk[0]; j++)
            imt__buf_printf(b, "<th>%s</th>", lk[j]);
        imt__buf_puts(b, "</tr></thead><tbody>\n");
        for (size_t i = 0; i < lists->u.array.len; i++) {
            imt__buf_puts(b, "<tr>");
            for (size_t j = 0; j < sizeof lk / sizeof lk[0]; j++) {
                imt__buf_puts(b, "<td>");
                put_jval(b, imt__jget(lists->u.array.values[i], lk[j], yajl_t_any));
                imt__buf_puts(b, "</td>");
            }
            imt__buf_puts(b, "</tr>\n");
        }
        imt__buf_puts(b, "</tbody></table>\n");
    }
    imt__buf_printf(b, "</section>\n<footer><p class=\"note\">Written by imgtriage report html "
                       "from the JSONL report; names are shown escaped: \\xNN for a byte that "
                       "is a control character or not UTF-8, \\\\ for a backslash.</p></footer>\n"
                       "<script>%s</script>\n</body></html>\n", JS);
}

static imt_err html_end(imt__conv *c)
{
    hstate *s = c->st;
    imt_err err = IMT_OK;
    if (!s) return IMT_OK;
    if (!c->failed) {
        put_page(c, s);
        err = imt__conv_flush(c);
    }
    imt__buf_free(&s->rows);
    imt__buf_free(&s->errs);
    imt__free(s->pic_t);
    imt__free(s->hit_t);
    for (size_t i = 0; i < s->n_f; i++) imt__free(s->f[i].name);
    imt__free(s->f);
    imt__free(s);
    c->st = NULL;
    return err;
}

const imt__writer imt__writer_html = {html_begin, html_record, html_end};
