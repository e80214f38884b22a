/* engine/scan/match.c -- one hashed item's matches as a record carries
 * them (imt_scan_run's files and members, imgtriage carve's items through
 * imt_matcher): digests first (a known-good item gets no PDQ search), then
 * the PDQ hash unless its quality is below the minimum, a video's known
 * videos and frames, each embedded picture; each membership one match,
 * with its list's fields, at most max_matches kept (the gravest). */
#include "scan.h"

#include <stdlib.h>
#include <string.h>

int imt__list_cmp(const void *a, const void *b)
{
    uint32_t x = ((const imt_list_info *)a)->id, y = ((const imt_list_info *)b)->id;
    return x < y ? -1 : x > y;
}

/* L->v is sorted by id: a file with many memberships costs log(lists) each. */
const imt_list_info *imt__find_list(const imt__lists *L, uint32_t id)
{
    imt_list_info key;
    key.id = id;
    return L->n ? bsearch(&key, L->v, L->n, sizeof *L->v, imt__list_cmp) : NULL;
}

/* Room for one more match in s (max: the cap). */
static imt_err grow_matches(imt__matches *s, size_t max)
{
    if (s->n_matches < s->cap) return IMT_OK;
    size_t nc = s->cap ? s->cap * 2 : 4, b1, b2;
    if (nc > max) nc = max;
    if (!imt__mul_ok(nc, sizeof *s->matches, &b1) || !imt__mul_ok(nc, sizeof *s->strs, &b2))
        return IMT_E_NOMEM;
    imt_scan_match *nm = imt__realloc(s->matches, b1);
    if (!nm) return IMT_E_NOMEM;
    s->matches = nm;
    char **ns = imt__realloc(s->strs, b2);
    if (!ns) return IMT_E_NOMEM;
    s->strs = ns;
    s->cap = nc;
    return IMT_OK;
}

/* How much a match says about a file, for the cap on matches kept: an
 * alerting match above every other (by its category's severity), then an
 * informational one, then one of a known-good list. */
static int match_rank(imt_disposition d, const char *scheme, int32_t category)
{
    if (d == IMT_DISP_ALERT) return 1000 + imt__severity(scheme, category);
    return d == IMT_DISP_INFO ? 100 : 0;
}

/* At the cap, a match of rank r is kept only in place of a kept match of
 * lower rank (the last of the lowest goes, so what was kept first stays):
 * so the cap never drops an alert, or a graver category, for a lesser one
 * (the hit and the priority follow the matches kept). 1: room was made or
 * there was room; 0: the match is omitted. Either way what is not kept is
 * counted in omitted. */
static int make_room(imt__matches *s, size_t max, int r)
{
    if (s->n_matches < max) return 1;
    size_t v = SIZE_MAX;
    int low = 0;
    for (size_t k = 0; k < s->n_matches; k++) {
        const imt_scan_match *m = &s->matches[k];
        int mr = match_rank(m->disposition, m->scheme, m->category);
        if (v == SIZE_MAX || mr <= low) {
            v = k;
            low = mr;
        }
    }
    s->omitted++;
    if (v == SIZE_MAX || low >= r) return 0;
    imt__free(s->strs[v]);
    memmove(s->matches + v, s->matches + v + 1, (s->n_matches - v - 1) * sizeof *s->matches);
    memmove(s->strs + v, s->strs + v + 1, (s->n_matches - v - 1) * sizeof *s->strs);
    s->n_matches--;
    return 1;
}

static int is_video_list(const imt_list_info *li)
{
    return li && li->format && !strcmp(li->format, "vpdq");
}

/* A match's list fields from its list (NULL: a list the inventory lacks). */
static void list_fields(imt_scan_match *o, const imt_list_info *li)
{
    o->list = li && li->name ? li->name : "";
    o->list_version = li && li->version ? li->version : "";
    o->scheme = li && li->scheme ? li->scheme : "";
    o->known_good = li ? li->known_good : 0;
}

/* Append the memberships of ms[0..n) to s, flattened, up to max. frame > 0:
 * the matches of a video's frame with known pictures: memberships of lists
 * of known videos are left to the video matcher, and an (entry, list)
 * matched by an earlier frame is not repeated. */
static imt_err add_matches_frame(imt__matches *s, const imt__lists *L, const imt_match *ms, size_t n,
                                 size_t max, uint32_t frame, int32_t subitem)
{
    for (size_t i = 0; i < n; i++) {
        const imt_match *m = &ms[i];
        for (size_t j = 0; j < m->n_members; j++) {
            const imt_membership *mb = &m->members[j];
            const imt_list_info *li = imt__find_list(L, mb->list_id);
            if (frame) {
                if (is_video_list(li)) continue;
                int seen = 0;
                for (size_t k = 0; k < s->n_matches && !seen; k++)
                    seen = s->matches[k].frame && s->matches[k].entry == m->entry &&
                           s->matches[k].list_id == mb->list_id;
                if (seen) continue;
            }
            if (mb->disposition == IMT_DISP_IGNORE) s->known_good = 1;
            if (!make_room(s, max, match_rank(mb->disposition, li && li->scheme ? li->scheme : "",
                                              mb->category)))
                continue;
            imt_err e = grow_matches(s, max);
            if (e) return e;
            const char *lab = mb->category_label ? mb->category_label : "";
            const char *ext = mb->external_id ? mb->external_id : "";
            size_t ll = strlen(lab), el = strlen(ext);
            char *str = imt__malloc(ll + el + 2);
            if (!str) return IMT_E_NOMEM;
            memcpy(str, lab, ll + 1);
            memcpy(str + ll + 1, ext, el + 1);
            imt_scan_match *o = &s->matches[s->n_matches];
            memset(o, 0, sizeof *o);
            o->frame = frame;
            s->strs[s->n_matches++] = str;
            o->kind = m->kind;
            o->distance = m->distance;
            o->variant = m->variant;
            o->entry = m->entry;
            o->list_id = mb->list_id;
            list_fields(o, li);
            o->category = mb->category;
            o->category_label = str;
            o->external_id = str + ll + 1;
            o->disposition = mb->disposition;
            o->subitem = subitem;
        }
    }
    return IMT_OK;
}

static imt_err add_matches(imt__matches *s, const imt__lists *L, const imt_match *ms, size_t n,
                           size_t max)
{
    return add_matches_frame(s, L, ms, n, max, 0, -1);
}

/* A known video matched: one match of kind vpdq, with its percentages and
 * the time ranges of the scanned video that match it. */
static imt_err add_video_match(imt__matches *s, const imt__lists *L, const imt_vpdq_match *v, size_t max,
                               const imt_video_frame *frames)
{
    if (v->disposition == IMT_DISP_IGNORE) s->known_good = 1;
    const imt_list_info *li = imt__find_list(L, v->list_id);
    if (!make_room(s, max, match_rank(v->disposition, li && li->scheme ? li->scheme : "", v->category)))
        return IMT_OK;
    imt_err e = grow_matches(s, max);
    if (e) return e;
    const imt_video_frame *fr = frames;
    /* runs of consecutive sampled frames */
    size_t nr = 0;
    for (size_t i = 0; i < v->n_frames; i++)
        if (i == 0 || v->frames[i] != v->frames[i - 1] + 1) nr++;
    size_t el = strlen(v->video), bytes = nr * 2 * sizeof(double) + el + 2;
    char *blk = imt__malloc(bytes);
    if (!blk) return IMT_E_NOMEM;
    double *rg = (double *)(void *)blk;
    size_t r = 0;
    for (size_t i = 0; i < v->n_frames; i++) {
        double t = fr[v->frames[i]].timestamp;
        if (i == 0 || v->frames[i] != v->frames[i - 1] + 1) {
            rg[2 * r] = rg[2 * r + 1] = t;
            r++;
        } else {
            rg[2 * r - 1] = t;
        }
    }
    char *str = blk + nr * 2 * sizeof(double);
    str[0] = 0;
    memcpy(str + 1, v->video, el + 1);
    imt_scan_match *o = &s->matches[s->n_matches];
    s->strs[s->n_matches++] = blk;
    memset(o, 0, sizeof *o);
    o->kind = IMT_KIND_VPDQ;
    o->distance = v->min_distance;
    o->variant = IMT_DIH_ORIGINAL;
    o->entry = v->entry;
    o->list_id = v->list_id;
    list_fields(o, li);
    o->category = v->category;
    o->category_label = str;
    o->external_id = str + 1;
    o->disposition = v->disposition;
    o->subitem = -1;
    o->query_pct = v->query_pct;
    o->compared_pct = v->compared_pct;
    o->ranges = rg;
    o->n_ranges = nr;
    return IMT_OK;
}


/* Digests first: a file on a known-good list needs no PDQ search. */
imt_err imt__match(imt__matches *s, imt_cursor *c, const imt__lists *L, const imt_scan_opts *o,
                   const imt_hash_result *r)
{
    imt_err err = IMT_OK;
    const imt_match *m;
    size_t n;
    imt__matches_reset(s);
    static const struct { unsigned bit; imt_hash_kind kind; } dk[] = {
        {IMT_DIGEST_MD5, IMT_KIND_MD5}, {IMT_DIGEST_SHA1, IMT_KIND_SHA1},
        {IMT_DIGEST_SHA256, IMT_KIND_SHA256}};
    for (size_t k = 0; c && k < 3; k++) {
        if (!(r->digests & dk[k].bit)) continue;
        const uint8_t *d = k == 0 ? r->md5 : k == 1 ? r->sha1 : r->sha256;
        IMT_TRY(imt_query_digest(c, dk[k].kind, d, &m, &n));
        IMT_TRY(add_matches(s, L, m, n, o->max_matches));
    }
    if (s->known_good) return IMT_OK;
    if (r->has_pdq) {
        if (r->quality < o->min_quality) {
            s->low_quality = 1;
        } else if (c) {
            IMT_TRY(imt_query_pdq(c, r->pdq, r->n_pdq, o->pdq_distance, &m, &n));
            IMT_TRY(add_matches(s, L, m, n, o->max_matches));
        }
    }
    /* A video: the known videos it matches (vPDQ), then each frame (each
     * distinct hash once, at its earliest frame) against known pictures. */
    if (c && r->n_frames) {
        const imt_vpdq_match *vm;
        size_t nv;
        IMT_TRY(imt_query_vpdq(c, r->frames, r->n_frames, &o->vpdq, &vm, &nv));
        for (size_t i = 0; i < nv; i++) IMT_TRY(add_video_match(s, L, &vm[i], o->max_matches, r->frames));
        for (size_t i = 0; i < r->n_frames; i++) {
            const imt_video_frame *f = &r->frames[i];
            if (f->quality < o->min_quality) continue;
            int dup = 0;
            for (size_t k = 0; k < i && !dup; k++)
                dup = r->frames[k].quality >= o->min_quality &&
                      !memcmp(r->frames[k].pdq.bytes, f->pdq.bytes, 32);
            if (dup) continue;
            IMT_TRY(imt_query_pdq(c, &f->pdq, 1, o->pdq_distance, &m, &n));
            IMT_TRY(add_matches_frame(s, L, m, n, o->max_matches, (uint32_t)i + 1, -1));
        }
    }
    /* Embedded pictures: each matched with all 8 variants, its matches
     * tagged with its index; only the file's digests make it known-good. */
    for (size_t i = 0; c && i < r->n_sub; i++) {
        const imt_subitem *u = &r->sub[i];
        if (!u->has_pdq || u->quality < o->min_quality) continue;
        int kg = s->known_good;
        IMT_TRY(imt_query_pdq(c, u->pdq, IMT_DIH__COUNT, o->pdq_distance, &m, &n));
        IMT_TRY(add_matches_frame(s, L, m, n, o->max_matches, 0, (int32_t)i));
        s->known_good = kg;
    }
cleanup:
    return err;
}


void imt__matches_reset(imt__matches *s)
{
    for (size_t i = 0; i < s->n_matches; i++) imt__free(s->strs[i]);
    s->n_matches = s->omitted = 0;
    s->known_good = s->low_quality = 0;
}

void imt__matches_free(imt__matches *s)
{
    imt__matches_reset(s);
    imt__free(s->matches);
    imt__free(s->strs);
    memset(s, 0, sizeof *s);
}

void imt__matches_record(const imt__matches *s, imt_scan_record *r)
{
    r->known_good = s->known_good;
    r->pdq_low_quality = s->low_quality;
    r->matches = s->matches;
    r->n_matches = s->n_matches;
    r->matches_omitted = s->omitted;
}

imt_err imt__lists_load(imt__lists *L, imt_index *idx)
{
    L->v = NULL;
    L->n = imt_index_list_count(idx);
    if (!L->n) return IMT_OK;
    L->v = imt__calloc(L->n, sizeof *L->v);
    if (!L->v) return IMT_E_NOMEM;
    for (size_t i = 0; i < L->n; i++) {
        imt_err e = imt_index_list_get(idx, i, &L->v[i]);
        if (e) {
            imt__free(L->v);
            L->v = NULL;
            L->n = 0;
            return e;
        }
    }
    qsort(L->v, L->n, sizeof *L->v, imt__list_cmp);
    return IMT_OK;
}

/* ---- the public matcher ------------------------------------------------- */
struct imt_matcher {
    imt_cursor *c;
    imt__lists L;
    imt_scan_opts o;
    imt__matches mt;
};

imt_err imt_matcher_open(imt_matcher **out, imt_index *idx, const imt_scan_opts *opts)
{
    if (!out) return IMT_E_INVALID;
    *out = NULL;
    imt_matcher *m = imt__calloc(1, sizeof *m);
    if (!m) return IMT_E_NOMEM;
    if (opts) m->o = *opts;
    else imt_scan_opts_init(&m->o);
    if (m->o.pdq_distance < 0 || m->o.pdq_distance > 256 || m->o.min_quality < 0 ||
        m->o.min_quality > 101) {
        imt__free(m);
        return IMT_E_INVALID;
    }
    imt_err e = IMT_OK;
    if (idx) {
        e = imt__lists_load(&m->L, idx);
        if (!e) e = imt_cursor_open(&m->c, idx);
    }
    if (e) {
        imt_matcher_close(m);
        return e;
    }
    *out = m;
    return IMT_OK;
}

imt_err imt_matcher_match(imt_matcher *m, const imt_hash_result *r, imt_scan_record *rec)
{
    if (!m || !r || !rec) return IMT_E_INVALID;
    imt_err e = imt__match(&m->mt, m->c, &m->L, &m->o, r);
    if (e) imt__matches_reset(&m->mt);
    imt__matches_record(&m->mt, rec);
    return e;
}

void imt_matcher_close(imt_matcher *m)
{
    if (!m) return;
    imt__matches_free(&m->mt);
    imt_cursor_close(m->c);
    imt__free(m->L.v);
    imt__free(m);
}
