/* engine/report/facts.c -- the facts of one record, taken from a scan
 * record or read back from the JSONL line record.c wrote for it.
 *
 * Why one definition: a resumed report must count its old records exactly
 * as the run that wrote them did. Each fact below is read from the member
 * put_record_json writes for it, and tests/test_report.c checks the round
 * trip record -> line -> facts for every kind of record. */
#include "report.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

void imt__facts_from_record(const imt_scan_record *rec, imt__rfacts *f)
{
    memset(f, 0, sizeof *f);
    f->type = rec->type;
    f->status = rec->status;
    f->scan_error = rec->scan_error;
    f->have_mtime = rec->have_stat;
    f->mtime_s = rec->mtime_s;
    f->mtime_ns = rec->mtime_ns;
    if (rec->hash) {
        f->read = 1;
        f->read_bytes = rec->hash->file_size;
        f->has_pdq = rec->hash->has_pdq;
        if (rec->hash->digests & IMT_DIGEST_SHA1) {
            f->has_sha1 = 1;
            memcpy(f->sha1, rec->hash->sha1, 20);
        }
    }
    f->known_good = rec->known_good;
    /* Written (and so counted) only for a file that was read. */
    f->low_quality = rec->pdq_low_quality && rec->hash && !rec->known_good;
    f->matches = rec->matches;
    f->n_matches = rec->n_matches;
    f->depth = rec->container.depth;
    f->expanded = rec->container.expanded;
    f->encrypted = rec->container.encrypted;
    f->limits = rec->container.limits;
}

/* Lowercase or uppercase hex of exactly n bytes. */
static int unhex(const char *s, uint8_t *d, size_t n)
{
    return s && imt_hex_decode(d, n, s, strlen(s)) == IMT_OK;
}

/* "member" and "container" (record.c's put_container_json) into c; the
 * note is borrowed from v. 0 on a malformed member. */
static int container_from_json(yajl_val v, imt_container_info *c);

static yajl_val member(yajl_val o, const char *key, yajl_type t)
{
    const char *p[] = {key, NULL};
    return yajl_tree_get(o, p, t);
}

/* yajl decodes our \udcXX (a byte that is not UTF-8, text.c) to the UTF-8
 * form of U+DCXX: ED B2/B3 xx, which valid UTF-8 never holds. Turn it back
 * into the byte, in place, so names and labels read back are the bytes that
 * were written (a resumed summary must not split a label in two). */
char *imt__json_unescape(char *s)
{
    unsigned char *r = (unsigned char *)s, *w = r;
    while (*r) {
        if (r[0] == 0xED && (r[1] == 0xB2 || r[1] == 0xB3) && (r[2] & 0xC0) == 0x80) {
            *w++ = (unsigned char)(((r[1] & 0x03) << 6) | (r[2] & 0x3F));
            r += 3;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
    return s;
}

static const char *str_member(yajl_val o, const char *key)
{
    yajl_val v = member(o, key, yajl_t_string);
    return v ? imt__json_unescape(v->u.string) : NULL;
}

static int true_member(yajl_val o, const char *key)
{
    yajl_val v = member(o, key, yajl_t_any);
    return v && YAJL_IS_TRUE(v);
}

/* "2024-01-02T03:04:05.123456789Z", as imt__buf_time writes it. */
static int parse_time(const char *t, int64_t *s, int32_t *ns)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int nsec = 0;
    if (!t || sscanf(t, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                     &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &nsec) != 7)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *s = (int64_t)timegm(&tm);
    *ns = (int32_t)nsec;
    return 1;
}

imt_err imt__facts_from_json(yajl_val v, imt__rfacts *f, imt_scan_match **out)
{
    memset(f, 0, sizeof *f);
    *out = NULL;
    const char *type = str_member(v, "type"), *status = str_member(v, "status");
    if (!type || !status) return IMT_E_PARSE;
    for (int t = 0; t < IMT_ENTRY__COUNT; t++)
        if (!strcmp(type, imt_entry_type_name((imt_entry_type)t))) f->type = (imt_entry_type)t;
    for (int e = 0; e < IMT_E__COUNT; e++)
        if (!strcmp(status, imt_err_name((imt_err)e))) f->status = (imt_err)e;
    f->scan_error = true_member(v, "scan_error");
    f->have_mtime = parse_time(str_member(v, "mtime"), &f->mtime_s, &f->mtime_ns);
    yajl_val rb = member(v, "read_bytes", yajl_t_number);
    if (rb) { /* written for every file that was read */
        f->read = 1;
        f->read_bytes = (uint64_t)YAJL_GET_INTEGER(rb);
        f->has_pdq = str_member(v, "pdq") != NULL; /* written iff has_pdq */
        f->has_sha1 = unhex(str_member(v, "sha1"), f->sha1, 20);
    }
    f->known_good = true_member(v, "known_good");
    const char *pm = str_member(v, "pdq_matching");
    f->low_quality = pm && !strncmp(pm, IMT__LOWQ_PREFIX, strlen(IMT__LOWQ_PREFIX));
    imt_container_info ci;
    if (!container_from_json(v, &ci)) return IMT_E_PARSE;
    f->depth = ci.depth;
    f->expanded = ci.expanded;
    f->encrypted = ci.encrypted;
    f->limits = ci.limits;
    yajl_val arr = member(v, "matches", yajl_t_array);
    if (!arr) return IMT_E_PARSE;
    size_t n = arr->u.array.len;
    if (!n) return IMT_OK;
    /* one block: the matches, then the time ranges of vpdq matches */
    size_t nranges = 0, bytes;
    for (size_t i = 0; i < n; i++) {
        yajl_val rg = member(arr->u.array.values[i], "ranges", yajl_t_array);
        if (rg) nranges += rg->u.array.len;
    }
    if (nranges > SIZE_MAX / (2 * sizeof(double)) / 2 ||
        !imt__mul_ok(n, sizeof(imt_scan_match), &bytes) ||
        bytes > SIZE_MAX - nranges * 2 * sizeof(double))
        return IMT_E_NOMEM;
    imt_scan_match *ms = imt__calloc(1, bytes + nranges * 2 * sizeof(double));
    if (!ms) return IMT_E_NOMEM;
    double *rgs = (double *)(void *)((char *)ms + bytes);
    for (size_t i = 0; i < n; i++) {
        yajl_val m = arr->u.array.values[i];
        imt_scan_match *o = &ms[i];
        const char *kind = str_member(m, "kind"), *var = str_member(m, "variant");
        for (int k = IMT_KIND_PDQ; kind && k <= IMT_KIND_SHA256; k++)
            if (!strcmp(kind, imt_hash_kind_name((imt_hash_kind)k))) o->kind = (imt_hash_kind)k;
        for (int d = 0; var && d < IMT_DIH__COUNT; d++)
            if (!strcmp(var, imt_dihedral_name((imt_dihedral)d))) o->variant = (imt_dihedral)d;
        yajl_val x = member(m, "distance", yajl_t_number);
        o->distance = x ? (int)YAJL_GET_INTEGER(x) : 0;
        x = member(m, "entry", yajl_t_number);
        o->entry = x ? (uint64_t)YAJL_GET_INTEGER(x) : 0;
        x = member(m, "list_id", yajl_t_number);
        o->list_id = x ? (uint32_t)YAJL_GET_INTEGER(x) : 0;
        x = member(m, "category", yajl_t_number);
        o->category = x ? (int32_t)YAJL_GET_INTEGER(x) : -1;
        x = member(m, "embedded", yajl_t_number);
        o->subitem = x ? (int32_t)YAJL_GET_INTEGER(x) : -1;
        const char *s;
        o->list = (s = str_member(m, "list")) ? s : "";
        o->list_version = (s = str_member(m, "list_version")) ? s : "";
        o->scheme = (s = str_member(m, "scheme")) ? s : "";
        o->category_label = (s = str_member(m, "category_label")) ? s : "";
        o->external_id = (s = str_member(m, "external_id")) ? s : "";
        o->known_good = true_member(m, "known_good");
        const char *dp = str_member(m, "disposition");
        o->disposition = !dp && o->known_good ? IMT_DISP_IGNORE : IMT_DISP_ALERT;
        x = member(m, "frame", yajl_t_number);
        o->frame = x && YAJL_GET_INTEGER(x) >= 0 && YAJL_GET_INTEGER(x) < UINT32_MAX
                       ? (uint32_t)YAJL_GET_INTEGER(x) + 1 : 0;
        if (kind && !strcmp(kind, imt_hash_kind_name(IMT_KIND_VPDQ))) {
            o->kind = IMT_KIND_VPDQ;
            x = member(m, "query_pct", yajl_t_number);
            o->query_pct = x ? YAJL_GET_DOUBLE(x) : 0;
            x = member(m, "compared_pct", yajl_t_number);
            o->compared_pct = x ? YAJL_GET_DOUBLE(x) : 0;
            yajl_val rg = member(m, "ranges", yajl_t_array);
            o->ranges = rgs;
            for (size_t k = 0; rg && k < rg->u.array.len; k++) {
                yajl_val pr = rg->u.array.values[k];
                if (!YAJL_IS_ARRAY(pr) || pr->u.array.len != 2 ||
                    !YAJL_IS_NUMBER(pr->u.array.values[0]) || !YAJL_IS_NUMBER(pr->u.array.values[1])) {
                    imt__free(ms);
                    return IMT_E_PARSE;
                }
                *rgs++ = YAJL_GET_DOUBLE(pr->u.array.values[0]);
                *rgs++ = YAJL_GET_DOUBLE(pr->u.array.values[1]);
                o->n_ranges++;
            }
        }
        for (int d = 0; dp && d < 3; d++)
            if (!strcmp(dp, imt_disposition_name((imt_disposition)d)))
                o->disposition = (imt_disposition)d;
    }
    f->matches = ms;
    f->n_matches = n;
    *out = ms;
    return IMT_OK;
}


static uint64_t u64_member(yajl_val o, const char *key, int *have)
{
    yajl_val x = member(o, key, yajl_t_number);
    if (have) *have = x != NULL;
    return x ? (uint64_t)YAJL_GET_INTEGER(x) : 0;
}

/* The "embedded" pictures of a record (record.c's put_embedded_json) into
 * sub[0..max): what a writer needs to re-emit them; the hash is the
 * original orientation's (the only one written). 0 on a malformed member. */
static int embedded_from_json(yajl_val v, imt_subitem *sub, size_t max, size_t *n)
{
    *n = 0;
    yajl_val arr = member(v, "embedded", yajl_t_array);
    if (!arr) return 1;
    for (size_t i = 0; i < arr->u.array.len && *n < max; i++) {
        yajl_val e = arr->u.array.values[i];
        imt_subitem *u = &sub[(*n)++];
        memset(u, 0, sizeof *u);
        const char *kind = str_member(e, "kind"), *st = str_member(e, "status");
        if (!kind || !st) return 0;
        for (int k = 1; k < IMT_SUB__COUNT; k++)
            if (!strcmp(kind, imt_subitem_kind_name((imt_subitem_kind)k)))
                u->kind = (imt_subitem_kind)k;
        u->status = IMT_E__COUNT;
        for (int k = 0; k < IMT_E__COUNT; k++)
            if (!strcmp(st, imt_err_name((imt_err)k))) u->status = (imt_err)k;
        if (!u->kind || u->status == IMT_E__COUNT) return 0;
        u->index = (uint32_t)u64_member(e, "index", NULL);
        u->offset = u64_member(e, "offset", NULL);
        u->size = u64_member(e, "size", NULL);
        const char *id = str_member(e, "entry_id");
        if (id) {
            char *end = NULL;
            unsigned long long x = strtoull(id, &end, 16);
            if (strlen(id) != 16 || *end) return 0;
            u->entry_id = x;
        }
        const char *d = str_member(e, "detail"), *fmt = str_member(e, "format");
        if (d) imt__set_detail(u->detail, sizeof u->detail, "%s", d);
        for (int k = 0; fmt && k < IMT_FMT__COUNT; k++)
            if (!strcmp(fmt, imt_format_name((imt_format)k))) u->format = (imt_format)k;
        u->width = (uint32_t)u64_member(e, "width", NULL);
        u->height = (uint32_t)u64_member(e, "height", NULL);
        const char *pdq = str_member(e, "pdq");
        if (pdq) {
            if (imt_pdq_from_hex(&u->pdq[0], pdq, strlen(pdq)) != IMT_OK) return 0;
            u->has_pdq = 1;
            u->quality = (int)u64_member(e, "quality", NULL);
        }
        int have;
        u->distance = (int)u64_member(e, "distance", &have);
        if (!have) u->distance = -1;
        u->differs = true_member(e, "differs");
    }
    return 1;
}

static int container_from_json(yajl_val v, imt_container_info *c)
{
    memset(c, 0, sizeof *c);
    c->note = "";
    yajl_val m = member(v, "member", yajl_t_object);
    if (m) {
        c->depth = (uint32_t)u64_member(m, "depth", NULL);
        c->index = u64_member(m, "index", NULL);
        c->size = u64_member(m, "size", NULL);
        const char *t = str_member(m, "mtime");
        if (t && !parse_time(t, &c->mtime_s, &c->mtime_ns)) return 0;
        c->has_mtime = t != NULL;
        if (!c->depth) return 0;
    }
    yajl_val x = member(v, "container", yajl_t_object);
    if (x) {
        c->expanded = true_member(x, "expanded");
        c->members = u64_member(x, "members", NULL);
        c->encrypted = u64_member(x, "encrypted", NULL);
        yajl_val l = member(x, "limits", yajl_t_array);
        for (size_t i = 0; l && i < l->u.array.len; i++) {
            yajl_val e = l->u.array.values[i];
            for (int k = 0; YAJL_IS_STRING(e) && k < IMT_CLIMIT__COUNT; k++)
                if (!strcmp(e->u.string, imt_container_limit_name(k))) c->limits |= 1u << k;
        }
        const char *n = str_member(x, "note");
        if (n) c->note = n;
    }
    return 1;
}

/* Whether the record's "flags" hold flag. */
static int has_flag(yajl_val v, const char *flag)
{
    yajl_val arr = member(v, "flags", yajl_t_array);
    for (size_t i = 0; arr && i < arr->u.array.len; i++) {
        yajl_val x = arr->u.array.values[i];
        if (YAJL_IS_STRING(x) && !strcmp(x->u.string, flag)) return 1;
    }
    return 0;
}

/* A video's "frames" (record.c's put_frames_json) into out->frames
 * (imt__malloc'd; imt__jrecord_clear frees it). 0 on a malformed member. */
static int frames_from_json(yajl_val v, imt__jrecord *out)
{
    yajl_val arr = member(v, "frames", yajl_t_array);
    if (!arr) return 1;
    imt_hash_result *h = &out->hash;
    size_t n = arr->u.array.len;
    if (!n) return 1;
    out->frames = imt__calloc(n, sizeof *out->frames);
    if (!out->frames) return 0;
    for (size_t i = 0; i < n; i++) {
        yajl_val e = arr->u.array.values[i];
        imt_video_frame *f = &out->frames[i];
        const char *pdq = str_member(e, "pdq");
        yajl_val ts = member(e, "timestamp", yajl_t_number);
        if (!pdq || !ts || imt_pdq_from_hex(&f->pdq, pdq, strlen(pdq)) != IMT_OK) return 0;
        f->number = u64_member(e, "frame", NULL);
        f->quality = (int)u64_member(e, "quality", NULL);
        f->timestamp = YAJL_GET_DOUBLE(ts);
    }
    h->frames = out->frames;
    h->n_frames = n;
    yajl_val d = member(v, "duration", yajl_t_number);
    h->duration = d ? YAJL_GET_DOUBLE(d) : 0;
    if (!h->has_pdq) h->partial = true_member(v, "partial");
    return 1;
}

void imt__jrecord_clear(imt__jrecord *r)
{
    imt__free(r->ms);
    imt__free(r->frames);
    r->ms = NULL;
    r->frames = NULL;
}

/* The "image" member (record.c's put_location_json) into out->loc. 0 on a
 * malformed member. */
static int location_from_json(yajl_val v, imt__jrecord *out)
{
    yajl_val o = member(v, "image", yajl_t_object);
    if (!o) return 1;
    imt_location *l = &out->loc;
    l->image = str_member(o, "path");
    l->part_type = str_member(o, "part_type");
    l->fs_type = str_member(o, "fs");
    l->stream = str_member(o, "stream");
    const char *al = str_member(o, "alloc");
    if (!l->image || !l->part_type || !l->fs_type || !al) return 0;
    int found = 0;
    for (int k = 0; k <= IMT_ALLOC_CARVED; k++)
        if (!strcmp(al, imt_alloc_status_name((imt_alloc_status)k))) {
            l->alloc = (imt_alloc_status)k;
            found = 1;
        }
    if (!found) return 0;
    l->partition = (int32_t)u64_member(o, "partition", NULL);
    l->part_offset = u64_member(o, "part_offset", NULL);
    l->part_length = u64_member(o, "part_length", NULL);
    l->volume = (int32_t)u64_member(o, "volume", NULL);
    l->volume_name = l->volume > 0 ? str_member(o, "volume_name") : NULL;
    if (l->volume > 0 && !l->volume_name) return 0;
    l->meta_addr = u64_member(o, "meta_addr", NULL);
    const char *t;
    if ((t = str_member(o, "atime")) && !parse_time(t, &l->atime_s, &l->atime_ns)) return 0;
    if ((t = str_member(o, "crtime")) && !parse_time(t, &l->crtime_s, &l->crtime_ns)) return 0;
    int have;
    l->first_offset = (int64_t)u64_member(o, "first_offset", &have);
    if (!have) l->first_offset = -1;
    yajl_val runs = member(o, "runs", yajl_t_array);
    for (size_t i = 0; runs && i < runs->u.array.len; i++) {
        yajl_val r = runs->u.array.values[i];
        if (!YAJL_IS_ARRAY(r) || r->u.array.len != 3) return 0;
        if (l->n_runs == IMT_MAX_BYTE_RUNS) return 0;
        imt_byte_run *br = &out->runs[l->n_runs++];
        yajl_val *x = r->u.array.values;
        if (!YAJL_IS_INTEGER(x[0]) || !YAJL_IS_INTEGER(x[2])) return 0;
        br->file_offset = (uint64_t)YAJL_GET_INTEGER(x[0]);
        br->len = (uint64_t)YAJL_GET_INTEGER(x[2]);
        if (YAJL_IS_NULL(x[1])) br->sparse = 1;
        else if (YAJL_IS_INTEGER(x[1])) br->img_offset = (uint64_t)YAJL_GET_INTEGER(x[1]);
        else return 0;
    }
    l->runs = out->runs;
    l->runs_omitted = (size_t)u64_member(o, "runs_omitted", NULL);
    l->overwritten = has_flag(v, "content-may-be-overwritten");
    out->rec.loc = l;
    return 1;
}

imt_err imt__record_from_json(yajl_val v, imt__jrecord *out)
{
    memset(out, 0, sizeof *out);
    imt__rfacts f;
    imt_err err = imt__facts_from_json(v, &f, &out->ms);
    if (err) return err;
    imt_scan_record *r = &out->rec;
    imt_hash_result *h = &out->hash;
    r->seq = u64_member(v, "seq", NULL);
    r->path = str_member(v, "path");
    if (!r->path) goto bad;
    r->type = f.type;
    r->status = f.status;
    r->scan_error = f.scan_error;
    r->detail = str_member(v, "detail");
    if (!r->detail) r->detail = "";
    int have;
    r->size = u64_member(v, "size", &have);
    if (have) { /* size, mtime, ctime, mode, uid, gid, inode, nlink: together */
        r->have_stat = 1;
        if (!parse_time(str_member(v, "mtime"), &r->mtime_s, &r->mtime_ns) ||
            !parse_time(str_member(v, "ctime"), &r->ctime_s, &r->ctime_ns))
            goto bad;
        const char *mode = str_member(v, "mode");
        char *end;
        if (!mode || !*mode) goto bad;
        r->mode = (uint32_t)strtoul(mode, &end, 8);
        if (*end) goto bad;
        r->uid = (uint32_t)u64_member(v, "uid", NULL);
        r->gid = (uint32_t)u64_member(v, "gid", NULL);
        r->inode = u64_member(v, "inode", NULL);
        r->nlink = (uint32_t)u64_member(v, "nlink", NULL);
    }
    r->link_target = str_member(v, "link_target");
    r->hardlink_of = str_member(v, "hardlink_of");
    if (!location_from_json(v, out)) goto bad;
    if (f.read) {
        r->hash = h;
        const char *fmt = str_member(v, "format");
        for (int i = 0; fmt && i < IMT_FMT__COUNT; i++)
            if (!strcmp(fmt, imt_format_name((imt_format)i))) h->format = (imt_format)i;
        h->file_size = f.read_bytes;
        h->width = (uint32_t)u64_member(v, "width", NULL);
        h->height = (uint32_t)u64_member(v, "height", NULL);
        const char *s;
        if ((s = str_member(v, "md5"))) {
            if (!unhex(s, h->md5, 16)) goto bad;
            h->digests |= IMT_DIGEST_MD5;
        }
        if ((s = str_member(v, "sha1"))) {
            if (!unhex(s, h->sha1, 20)) goto bad;
            h->digests |= IMT_DIGEST_SHA1;
        }
        if ((s = str_member(v, "sha256"))) {
            if (!unhex(s, h->sha256, 32)) goto bad;
            h->digests |= IMT_DIGEST_SHA256;
        }
        if ((s = str_member(v, "pdq"))) {
            if (imt_pdq_from_hex(&h->pdq[0], s, strlen(s)) != IMT_OK) goto bad;
            h->has_pdq = 1;
            h->n_pdq = 1;
            h->quality = (int)u64_member(v, "quality", NULL);
            h->partial = true_member(v, "partial");
        }
        h->changed = true_member(v, "changed_during_read");
        if (!frames_from_json(v, out)) goto bad;
        /* A thumbnail cache lists up to IMT_MAX_CACHE_ENTRIES pictures: more
         * than out->sub holds go after the matches in the one block out->ms
         * (which the caller frees). */
        imt_subitem *sub = out->sub;
        size_t max = IMT_MAX_SUBITEMS;
        yajl_val arr = member(v, "embedded", yajl_t_array);
        if (arr && arr->u.array.len > IMT_MAX_SUBITEMS) {
            max = arr->u.array.len < IMT_MAX_CACHE_ENTRIES ? arr->u.array.len
                                                           : IMT_MAX_CACHE_ENTRIES;
            size_t mb = f.n_matches * sizeof *f.matches;
            mb = (mb + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
            char *blk = imt__malloc(mb + max * sizeof *sub);
            if (!blk) {
                imt__free(out->ms);
                out->ms = NULL;
                return IMT_E_NOMEM;
            }
            if (f.n_matches) memcpy(blk, f.matches, f.n_matches * sizeof *f.matches);
            imt__free(out->ms);
            out->ms = (imt_scan_match *)(void *)blk;
            f.matches = out->ms;
            sub = (imt_subitem *)(void *)(blk + mb);
        }
        if (!embedded_from_json(v, sub, max, &h->n_sub)) goto bad;
        h->sub = sub;
        h->sub_omitted = (size_t)u64_member(v, "embedded_omitted", NULL);
        h->thumbnail_differs = has_flag(v, "thumbnail-differs");
    }
    yajl_val cv = imt__jget(v, "carved", yajl_t_object);
    if (cv) { /* a carved item: where it lies in path's bytes */
        imt_carve_hit *c = &out->carved;
        int ho, hl;
        c->offset = u64_member(cv, "offset", &ho);
        c->length = u64_member(cv, "length", &hl);
        const char *fmt = str_member(cv, "format"), *end = str_member(cv, "end");
        if (!ho || !hl || !fmt || !end) goto bad;
        for (int i = 0; i < IMT_FMT__COUNT; i++)
            if (!strcmp(fmt, imt_format_name((imt_format)i))) c->format = (imt_format)i;
        for (int i = IMT_CARVE_COMPLETE; i <= IMT_CARVE_BAD_STRUCTURE; i++)
            if (!strcmp(end, imt_carve_end_name((imt_carve_end)i))) c->end = (imt_carve_end)i;
        c->truncated = true_member(cv, "truncated");
        r->carved = c;
    }
    r->known_good = f.known_good;
    r->pdq_low_quality = f.low_quality;
    r->matches = f.matches;
    r->n_matches = f.n_matches;
    r->matches_omitted = (size_t)u64_member(v, "matches_omitted", NULL);
    if (!container_from_json(v, &r->container)) goto bad;
    return IMT_OK;
bad:
    imt__jrecord_clear(out);
    return IMT_E_PARSE;
}
