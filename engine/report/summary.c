/* engine/report/summary.c -- the device summary as a pure function of the
 * records' facts: counts, hits per list, distinct known items and the
 * priority score. No I/O and no clock (the caller passes the time of a
 * hit), so tests/test_report.c checks it on made-up facts. */
#include "report.h"

#include <stdlib.h>
#include <string.h>

void imt__summary_free(imt__summary *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->n_cats; i++) {
        imt__free(s->cats[i].list);
        imt__free(s->cats[i].scheme);
        imt__free(s->cats[i].label);
    }
    imt__free(s->cats);
    imt__free(s->items);
    imt__free(s->seized);
    imt__free(s->first_hit);
    memset(s, 0, sizeof *s);
}

static size_t key_slot(const uint8_t key[20], size_t mask)
{
    uint64_t x;
    memcpy(&x, key, sizeof x);
    return (size_t)((x ^ (uint64_t)key[8] << 56) * 0x9E3779B97F4A7C15ull >> 7) & mask;
}

/* Add key to the set *tab (open addressing, at most half full), keeping
 * the highest weight seen for it. */
static imt_err note_key(imt__item **tab, size_t *n, size_t *cap, const uint8_t key[20],
                        int weight)
{
    if ((*n + 1) * 2 > *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        imt__item *ni = imt__calloc(nc, sizeof *ni);
        if (!ni) return IMT_E_NOMEM;
        for (size_t i = 0; i < *cap; i++) {
            if (!(*tab)[i].used) continue;
            size_t k = key_slot((*tab)[i].key, nc - 1);
            while (ni[k].used) k = (k + 1) & (nc - 1);
            ni[k] = (*tab)[i];
        }
        imt__free(*tab);
        *tab = ni;
        *cap = nc;
    }
    size_t mask = *cap - 1;
    imt__item *t = *tab;
    size_t k = key_slot(key, mask);
    while (t[k].used && memcmp(t[k].key, key, 20)) k = (k + 1) & mask;
    if (!t[k].used) {
        t[k].used = 1;
        memcpy(t[k].key, key, 20);
        t[k].weight = weight;
        (*n)++;
    } else if (weight > t[k].weight) {
        t[k].weight = weight;
    }
    return IMT_OK;
}

static imt_err note_cat(imt__summary *r, const imt_scan_match *m)
{
    const char *label = m->category_label ? m->category_label : "";
    for (size_t i = 0; i < r->n_cats; i++) {
        imt__hitcat *c = &r->cats[i];
        if (c->list_id == m->list_id && c->category == m->category &&
            !strcmp(c->label, label)) {
            c->files++;
            return IMT_OK;
        }
    }
    size_t bytes;
    if (!imt__mul_ok(r->n_cats + 1, sizeof *r->cats, &bytes)) return IMT_E_NOMEM;
    imt__hitcat *nc = imt__realloc(r->cats, bytes);
    if (!nc) return IMT_E_NOMEM;
    r->cats = nc;
    imt__hitcat *c = &r->cats[r->n_cats];
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
    const imt__hitcat *x = a, *y = b;
    if (x->list_id != y->list_id) return x->list_id < y->list_id ? -1 : 1;
    if (x->category != y->category) return x->category < y->category ? -1 : 1;
    return strcmp(x->label, y->label);
}

void imt__summary_sort(imt__summary *s)
{
    if (s->n_cats) qsort(s->cats, s->n_cats, sizeof *s->cats, hitcat_cmp);
}

int imt__is_plain_outcome(imt_err e)
{
    return e == IMT_OK || e == IMT_E_NOT_IMAGE || e == IMT_E_EMPTY;
}

imt_err imt__summary_add(imt__summary *r, const imt__rfacts *f, const char *path_json,
                         double now_s)
{
    imt_err err = IMT_OK;
    r->entries++;
    if ((unsigned)f->type < IMT_ENTRY__COUNT) r->by_type[f->type]++;
    if ((unsigned)f->status < IMT_E__COUNT)
        (f->scan_error ? r->err_by_status : r->find_by_status)[f->status]++;
    if (f->scan_error) r->errors++;
    if (f->read) {
        r->files++;
        r->bytes += f->read_bytes;
        if (f->has_pdq) r->images++;
    }
    if (f->known_good) r->known_good_files++;
    if (f->depth) r->members++;
    if (f->expanded) r->containers++;
    if (f->encrypted) r->encrypted_containers++;
    for (int i = 0; i < IMT_CLIMIT__COUNT; i++)
        if (f->limits & (1u << i)) r->limits[i]++;
    if (f->low_quality) r->low_quality++;
    int hit = 0, file_weight = 0;
    for (size_t i = 0; i < f->n_matches; i++) {
        const imt_scan_match *m = &f->matches[i];
        /* One file counts once per (list, category) however many entries. */
        int seen = 0;
        for (size_t j = 0; j < i; j++) {
            const imt_scan_match *p = &f->matches[j];
            if (p->list_id == m->list_id && p->category == m->category &&
                !strcmp(p->category_label, m->category_label))
                seen = 1;
        }
        if (!seen) IMT_TRY(note_cat(r, m));
        if (m->disposition != IMT_DISP_ALERT) continue;
        int w = imt__severity(m->scheme, m->category);
        if (!hit || w > file_weight) file_weight = w;
        hit = 1;
        uint8_t key[20] = {0};
        memcpy(key, &m->entry, sizeof m->entry);
        IMT_TRY(note_key(&r->items, &r->n_items, &r->items_cap, key, w));
    }
    if (hit) {
        /* One seized item per distinct content (byte-identical copies are
         * one picture found); a record without a digest is its own item. */
        uint8_t key[20] = {0};
        if (f->has_sha1) {
            memcpy(key, f->sha1, 20);
            IMT_TRY(note_key(&r->seized, &r->n_seized, &r->seized_cap, key, file_weight));
        } else {
            r->unkeyed_hits++;
            if (file_weight >= 0 && file_weight <= 10) r->unkeyed_by_w[file_weight]++;
        }
        r->hit_files++;
        if (!r->first_hit) {
            r->first_hit = imt__strdup(path_json);
            if (!r->first_hit) return IMT_E_NOMEM;
            r->first_hit_after = now_s;
        }
        if (f->have_mtime &&
            (!r->have_hit_mtime || f->mtime_s < r->earliest_hit_mtime ||
             (f->mtime_s == r->earliest_hit_mtime && f->mtime_ns < r->earliest_hit_mtime_ns))) {
            r->have_hit_mtime = 1;
            r->earliest_hit_mtime = f->mtime_s;
            r->earliest_hit_mtime_ns = f->mtime_ns;
        }
    }
cleanup:
    return err;
}

/* priority = S + D (README, "Priority score"). S counts what was found on
 * the device, not the shape of the lists: each distinct seized item (file
 * content) with an alerting match adds the severity weight of the most
 * severe category it matched, once, however many near-duplicate entries of
 * however many lists it matched and however many copies the device holds.
 * D, the hit density in 0..1, orders devices of equal S. The distinct
 * known items matched are a secondary figure, in the explanation and the
 * summary's "distinct_known_items". */
double imt__priority(const imt__summary *r, imt__buf *b)
{
    uint64_t by_w[11] = {0}, sum = 0;
    for (int w = 0; w <= 10; w++) {
        by_w[w] = r->unkeyed_by_w[w];
        sum += by_w[w] * (uint64_t)w;
    }
    for (size_t i = 0; i < r->seized_cap; i++) {
        if (!r->seized[i].used) continue;
        int w = r->seized[i].weight;
        if (w >= 0 && w <= 10) by_w[w]++;
        sum += (uint64_t)(w > 0 ? w : 0);
    }
    uint64_t n = (uint64_t)r->n_seized + r->unkeyed_hits;
    double density = r->files ? (double)r->hit_files / (double)r->files : 0.0;
    double p = (double)sum + density;
    imt__buf_printf(b, "priority %.3f = %llu (sum over %llu distinct seized items with hits of "
                    "the severity weight of the most severe category each matched:", p,
                    (unsigned long long)sum, (unsigned long long)n);
    int any = 0;
    for (int w = 10; w >= 0; w--) {
        if (!by_w[w]) continue;
        imt__buf_printf(b, "%s %llu x %d", any ? " +" : "", (unsigned long long)by_w[w], w);
        any = 1;
    }
    if (!any) imt__buf_puts(b, " none");
    imt__buf_printf(b, ") + %.3f (hit density: %llu files with hits / %llu files read); "
                    "%llu distinct known items matched",
                    density, (unsigned long long)r->hit_files, (unsigned long long)r->files,
                    (unsigned long long)r->n_items);
    /* Not in the score (nothing known was seen), but never silent. */
    if (r->encrypted_containers)
        imt__buf_printf(b, "; %llu encrypted %s not examined",
                        (unsigned long long)r->encrypted_containers,
                        r->encrypted_containers == 1 ? "container" : "containers");
    return p;
}

/* ---- a preview's summary (engine/triage): the numbers come from the
 * preview; these only write them. Kept apart from the priority formula. */

static void put_secs_or_null(imt__buf *b, int have, uint64_t ms)
{
    if (have) imt__buf_printf(b, "%.3f", (double)ms / 1000.0);
    else imt__buf_puts(b, "null");
}

void imt__preview_header_json(imt__buf *b, const imt_preview_stats *st)
{
    imt__buf_puts(b, ",\"preview\":{\"budget_s\":");
    put_secs_or_null(b, st->budget_ms != 0, st->budget_ms);
    imt__buf_puts(b, ",\"stop_after_hits\":");
    if (st->stop_after_hits) imt__buf_printf(b, "%llu", (unsigned long long)st->stop_after_hits);
    else imt__buf_puts(b, "null");
    imt__buf_printf(b, ",\"seed\":%llu,\"order\":\"likelihood class, then seeded random "
                    "within each class\",\"record_order\":\"read order (seq is the listing "
                    "position: the full scan's less the container members and carved items "
                    "before it; members follow their container with its seq)\"}",
                    (unsigned long long)st->seed);
}

void imt__preview_summary_json(imt__buf *b, const imt_preview_stats *st)
{
    imt__buf_printf(b, ",\"priority_is_preview\":true,\"preview\":{\"stopped_by\":\"%s\","
                    "\"budget_s\":", imt_preview_stop_name(st->stopped_by));
    put_secs_or_null(b, st->budget_ms != 0, st->budget_ms);
    imt__buf_puts(b, ",\"stop_after_hits\":");
    if (st->stop_after_hits) imt__buf_printf(b, "%llu", (unsigned long long)st->stop_after_hits);
    else imt__buf_puts(b, "null");
    imt__buf_printf(b, ",\"seed\":%llu,\"enumeration_complete\":%s,\"enumerate_s\":%.3f,"
                    "\"enumerated_files\":%llu,\"examined_files\":%llu,"
                    "\"examined_pictures\":%llu,\"hit_files\":%llu,\"files_before_first_hit\":",
                    (unsigned long long)st->seed, st->enumeration_complete ? "true" : "false",
                    (double)st->enumerate_ms / 1000.0,
                    (unsigned long long)st->enumerated_files,
                    (unsigned long long)st->examined_files,
                    (unsigned long long)st->examined_pictures,
                    (unsigned long long)st->hit_files);
    if (st->have_first_hit)
        imt__buf_printf(b, "%llu", (unsigned long long)st->files_before_first_hit);
    else imt__buf_puts(b, "null");
    imt__buf_puts(b, ",\"first_hit_after_s\":");
    put_secs_or_null(b, st->have_first_hit, st->first_hit_ms);
    imt__buf_printf(b, ",\"disk_images\":%llu,\"not_carved\":{\"areas\":%llu,"
                    "\"bytes_outside_file_systems\":%llu,\"note\":\"%s\"}",
                    (unsigned long long)st->disk_images, (unsigned long long)st->uncarved_areas,
                    (unsigned long long)st->uncarved_bytes,
                    st->uncarved_areas
                        ? "unallocated blocks of each file system and space outside file "
                          "systems were not carved: left to the full scan, outside the "
                          "bounds (which count listed files)"
                        : "");
    imt__buf_printf(b, ",\"estimated_hit_files\":%.3f,\"hit_files_upper95\":%llu,"
                    "\"bound\":\"per class: exact hypergeometric, one-sided 95%%; device: "
                    "the sum over classes, each read in part at 1-0.05/k (Bonferroni), "
                    "of the files listed\",\"classes\":[",
                    st->estimate, (unsigned long long)st->upper95);
    for (int i = 0; i < IMT_CLASS__COUNT; i++) {
        int c = (int)imt_triage_class_at(i);
        const imt_preview_class_stats *k = &st->cls[c];
        imt__buf_printf(b, "%s{\"class\":\"%s\",\"enumerated\":%llu,\"enumerated_bytes\":%llu,"
                        "\"examined\":%llu,\"examined_bytes\":%llu,\"pictures\":%llu,"
                        "\"hit_files\":%llu,\"estimated_hit_files\":%.3f,"
                        "\"hit_files_upper95\":%llu,\"rule_of_three\":",
                        i ? "," : "", imt_triage_class_name((imt_triage_class)c),
                        (unsigned long long)k->enumerated,
                        (unsigned long long)k->enumerated_bytes,
                        (unsigned long long)k->examined, (unsigned long long)k->examined_bytes,
                        (unsigned long long)k->pictures, (unsigned long long)k->hit_files,
                        k->estimate, (unsigned long long)k->upper95);
        if (k->examined && !k->hit_files)
            imt__buf_printf(b, "%.3f", 3.0 * (double)k->enumerated / (double)k->examined);
        else imt__buf_puts(b, "null");
        imt__buf_puts(b, "}");
    }
    imt__buf_puts(b, "]}");
}

void imt__preview_explain(imt__buf *b, const imt_preview_stats *st)
{
    imt__buf_printf(b, "; PREVIEW (stopped by %s%s): %llu of %llu files read, a seeded random "
                    "sample of each class; %llu with hits; estimated %.1f files with known "
                    "material on the device, at most %llu at 95%% confidence%s",
                    imt_preview_stop_name(st->stopped_by),
                    st->enumeration_complete ? "" : ", listing incomplete",
                    (unsigned long long)st->examined_files,
                    (unsigned long long)st->enumerated_files, (unsigned long long)st->hit_files,
                    st->estimate, (unsigned long long)st->upper95,
                    st->uncarved_areas ? " (unallocated space not carved)" : "");
}

void imt__preview_text(imt__buf *s, const imt_preview_stats *st)
{
    imt__buf_printf(s, "  PREVIEW, stopped by %s%s after %.1f s: %llu of %llu files read "
                    "(%llu pictures), %llu with hits",
                    imt_preview_stop_name(st->stopped_by),
                    st->enumeration_complete ? "" : " (listing incomplete)",
                    (double)st->elapsed_ms / 1000.0, (unsigned long long)st->examined_files,
                    (unsigned long long)st->enumerated_files,
                    (unsigned long long)st->examined_pictures,
                    (unsigned long long)st->hit_files);
    if (st->have_first_hit)
        imt__buf_printf(s, "; first hit after %llu files, %.1f s",
                        (unsigned long long)st->files_before_first_hit,
                        (double)st->first_hit_ms / 1000.0);
    imt__buf_puts(s, "\n");
    for (int i = 0; i < IMT_CLASS__COUNT; i++) {
        int c = (int)imt_triage_class_at(i);
        const imt_preview_class_stats *k = &st->cls[c];
        if (!k->enumerated) continue;
        imt__buf_printf(s, "    %-13s %llu of %llu read, %llu hits: ",
                        imt_triage_class_name((imt_triage_class)c),
                        (unsigned long long)k->examined, (unsigned long long)k->enumerated,
                        (unsigned long long)k->hit_files);
        if (k->examined == k->enumerated)
            imt__buf_printf(s, "read whole\n");
        else
            imt__buf_printf(s, "at most %llu files with known material (95%%)\n",
                            (unsigned long long)k->upper95);
    }
    imt__buf_printf(s, "  device: estimated %.1f files with known material, at most %llu "
                    "at 95%% confidence (unread files are not cleared)\n",
                    st->estimate, (unsigned long long)st->upper95);
    if (st->uncarved_areas)
        imt__buf_printf(s, "  NOT CARVED: %llu areas of %llu disk image(s) (the unallocated "
                        "blocks of each file system; %llu bytes outside file systems): left to "
                        "the full scan, not covered by the bounds\n",
                        (unsigned long long)st->uncarved_areas,
                        (unsigned long long)st->disk_images,
                        (unsigned long long)st->uncarved_bytes);
}
