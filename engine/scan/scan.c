/* engine/scan/scan.c -- imt_scan_run: walk in sorted order into batches,
 * hash and match a batch on OpenMP workers, emit its records in order.
 *
 * Why batches: output order must not depend on the thread count, and memory
 * must not grow with the tree. The walker (one thread) fills a batch; the
 * workers take files from it dynamically (each with its own hasher and index
 * cursor); the calling thread then emits the batch in walk order. Walking and
 * emitting cost microseconds per entry against milliseconds to read and
 * decode an image, so the serial parts stay in the noise. */
#include "scan.h"
#include "source/source.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef IMT_HAVE_OPENMP
#include <omp.h>
#endif

typedef struct slot {
    imt__wentry e;
    imt__sentry *se;         /* a file inside a disk image (e then unused) */
    int skipped;
    int needs_hash;
    int done;
    int read;                /* opened and read: res is valid */
    imt_err status;          /* the record's status */
    const char *detail;      /* into e.detail or res.detail */
    imt_hash_result res;
    int known_good, low_quality;
    imt_subitem *subs;       /* res.sub copied (the hasher's is reused) */
    imt_scan_match *matches; /* strings: list fields borrowed from the index,
                                label and external id owned (strs) */
    char **strs;
    size_t n_matches, cap, omitted;
} slot;

/* A file to hash in this batch and its size, to hash the largest first. */
typedef struct job {
    off_t size;
    size_t slot;
} job;

static int job_cmp(const void *a, const void *b)
{
    const job *x = a, *y = b;
    if (x->size != y->size) return x->size > y->size ? -1 : 1;
    return x->slot < y->slot ? -1 : x->slot > y->slot; /* ties: walk order */
}

typedef struct lists {
    imt_list_info *v;
    size_t n;
} lists;

void imt_scan_opts_init(imt_scan_opts *o)
{
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->threads = 0;
    imt_hash_opts_init(&o->hash);
    o->hash.dihedral = 1;
    o->hash.digests = IMT_DIGEST_MD5 | IMT_DIGEST_SHA1;
    o->one_file_system = 0;
    o->pdq_distance = IMT_PDQ_MATCH_DISTANCE;
    o->min_quality = IMT_PDQ_MIN_QUALITY;
    o->max_matches = 100;
    o->batch_files = 256;
}

static void slot_clear(slot *s)
{
    imt__wentry_clear(&s->e);
    imt__sentry_free(s->se);
    for (size_t i = 0; i < s->n_matches; i++) imt__free(s->strs[i]);
    imt__free(s->matches);
    imt__free(s->strs);
    imt__free(s->subs);
    memset(s, 0, sizeof *s);
}

static int list_cmp(const void *a, const void *b)
{
    uint32_t x = ((const imt_list_info *)a)->id, y = ((const imt_list_info *)b)->id;
    return x < y ? -1 : x > y;
}

/* L->v is sorted by id: a file with many memberships costs log(lists) each. */
static const imt_list_info *find_list(const lists *L, uint32_t id)
{
    imt_list_info key;
    key.id = id;
    return L->n ? bsearch(&key, L->v, L->n, sizeof *L->v, list_cmp) : NULL;
}

/* Append the memberships of ms[0..n) to s, flattened, up to max. */
static imt_err add_matches(slot *s, const lists *L, const imt_match *ms, size_t n,
                           size_t max)
{
    for (size_t i = 0; i < n; i++) {
        const imt_match *m = &ms[i];
        for (size_t j = 0; j < m->n_members; j++) {
            const imt_membership *mb = &m->members[j];
            const imt_list_info *li = find_list(L, mb->list_id);
            if (mb->disposition == IMT_DISP_IGNORE) s->known_good = 1;
            if (s->n_matches >= max) {
                s->omitted++;
                continue;
            }
            if (s->n_matches == s->cap) {
                size_t nc = s->cap ? s->cap * 2 : 4, b1, b2;
                if (nc > max) nc = max;
                if (!imt__mul_ok(nc, sizeof *s->matches, &b1) ||
                    !imt__mul_ok(nc, sizeof *s->strs, &b2))
                    return IMT_E_NOMEM;
                imt_scan_match *nm = imt__realloc(s->matches, b1);
                if (!nm) return IMT_E_NOMEM;
                s->matches = nm;
                char **ns = imt__realloc(s->strs, b2);
                if (!ns) return IMT_E_NOMEM;
                s->strs = ns;
                s->cap = nc;
            }
            const char *lab = mb->category_label ? mb->category_label : "";
            const char *ext = mb->external_id ? mb->external_id : "";
            size_t ll = strlen(lab), el = strlen(ext);
            char *str = imt__malloc(ll + el + 2);
            if (!str) return IMT_E_NOMEM;
            memcpy(str, lab, ll + 1);
            memcpy(str + ll + 1, ext, el + 1);
            imt_scan_match *o = &s->matches[s->n_matches];
            s->strs[s->n_matches++] = str;
            o->kind = m->kind;
            o->distance = m->distance;
            o->variant = m->variant;
            o->entry = m->entry;
            o->list_id = mb->list_id;
            o->list = li && li->name ? li->name : "";
            o->list_version = li && li->version ? li->version : "";
            o->scheme = li && li->scheme ? li->scheme : "";
            o->known_good = li ? li->known_good : 0;
            o->category = mb->category;
            o->category_label = str;
            o->external_id = str + ll + 1;
            o->disposition = mb->disposition;
            o->subitem = -1;
        }
    }
    return IMT_OK;
}

/* Digests first: a file on a known-good list needs no PDQ search. */
static imt_err match(slot *s, imt_cursor *c, const lists *L, const imt_scan_opts *o)
{
    imt_err err = IMT_OK;
    const imt_match *m;
    size_t n;
    const imt_hash_result *r = &s->res;
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
    /* Embedded pictures: each matched with all 8 variants, its matches
     * tagged with its index; only the file's digests make it known-good. */
    for (size_t i = 0; c && i < r->n_sub; i++) {
        const imt_subitem *u = &r->sub[i];
        if (!u->has_pdq || u->quality < o->min_quality) continue;
        size_t from = s->n_matches;
        int kg = s->known_good;
        IMT_TRY(imt_query_pdq(c, u->pdq, IMT_DIH__COUNT, o->pdq_distance, &m, &n));
        IMT_TRY(add_matches(s, L, m, n, o->max_matches));
        s->known_good = kg;
        for (size_t k = from; k < s->n_matches; k++) s->matches[k].subitem = (int32_t)i;
    }
cleanup:
    return err;
}

static int finish(slot *s, imt_cursor *c, const lists *L, const imt_scan_opts *o);

/* One file: open relative to its folder, hash, match. Runs on a worker.
 * Returns 0 when a stop request cut the file short (it has no record). */
static int work(slot *s, imt_hasher *h, imt_cursor *c, const lists *L,
                 const imt_scan_opts *o)
{
    int dirfd = s->e.dir ? s->e.dir->fd : AT_FDCWD;
    int fd = imt__open_evidence(dirfd, s->e.name, O_NONBLOCK | (s->e.dir ? O_NOFOLLOW : 0));
    if (fd < 0) {
        int en = errno;
        s->status = en == ENOENT ? IMT_E_NOT_FOUND : IMT_E_IO;
        if (en == ENOENT)
            imt__set_detail(s->e.detail, sizeof s->e.detail, "vanished before it was read");
        else if (en == ELOOP)
            imt__set_detail(s->e.detail, sizeof s->e.detail,
                            "replaced by a symbolic link before it was read: not followed");
        else
            imt__set_detail(s->e.detail, sizeof s->e.detail, "cannot open: %s", strerror(en));
        s->detail = s->e.detail;
        return 1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        s->status = IMT_E_IO;
        imt__set_detail(s->e.detail, sizeof s->e.detail,
                        "no longer a regular file when opened: not read");
        s->detail = s->e.detail;
        return 1;
    }
    /* Report the file that was read (it may have been replaced since lstat). */
    s->e.st = st;
    imt_hash_fd(h, fd, &s->res);
    close(fd);
    return finish(s, c, L, o);
}

/* A file inside a disk image: read through the worker's own image and TSK
 * handles (rd). */
static int work_image(slot *s, imt_hasher *h, imt__sreader *rd, imt_cursor *c,
                      const lists *L, const imt_scan_opts *o)
{
    imt_stream st;
    imt__sentry *e = s->se;
    imt_err err = imt__sreader_begin(rd, e, &st, e->detail, sizeof e->detail);
    if (err) {
        s->status = err == IMT_E_NOMEM ? IMT_E_NOMEM : IMT_E_IO;
        s->detail = e->detail;
        return 1;
    }
    imt_hash_stream(h, &st, &s->res);
    if (s->res.status == IMT_E_IO) {
        size_t l = strlen(s->res.detail);
        imt__set_detail(s->res.detail + l, sizeof s->res.detail - l, ": %s",
                        imt__sreader_error(rd));
    }
    imt__sreader_end(rd);
    return finish(s, c, L, o);
}

/* After the read: keep the sub-items, match. 0 when a stop request cut the
 * file short (it has no record). */
static int finish(slot *s, imt_cursor *c, const lists *L, const imt_scan_opts *o)
{
    if (s->res.status == IMT_E_INTERRUPTED) return 0;
    if (s->res.n_sub) {
        /* res.sub is the hasher's, reused by its next file: keep a copy */
        s->subs = imt__malloc(s->res.n_sub * sizeof *s->subs);
        if (s->subs) memcpy(s->subs, s->res.sub, s->res.n_sub * sizeof *s->subs);
        else s->res.n_sub = 0;
        s->res.sub = s->subs;
    }
    s->read = 1;
    s->status = s->res.status;
    s->detail = s->res.detail;
    if (s->res.status == IMT_E_IO || s->res.status == IMT_E_NOMEM) return 1;
    imt_err e = match(s, c, L, o);
    if (e) {
        s->status = e;
        imt__set_detail(s->e.detail, sizeof s->e.detail, "index lookup failed: %s",
                        imt_strerror(e));
        s->detail = s->e.detail;
    }
    return 1;
}

/* Does this entry keep the scan from being complete? Something could not be
 * read (a file, a folder, a PATH argument that does not exist or vanished
 * before it was read) or looked up. A finding about a file's content, or a
 * file below a PATH deleted during the scan, is not. */
static int is_scan_error(const slot *s)
{
    imt_err e = s->status;
    if (s->se && s->se->scan_error) return 1;
    if (e == IMT_E_IO || e == IMT_E_NOMEM || e == IMT_E_INTERNAL || e == IMT_E_DB ||
        e == IMT_E_INDEX_CORRUPT || e == IMT_E_INDEX_CHANGED)
        return 1;
    return s->e.is_root && e == IMT_E_NOT_FOUND;
}

static void to_record(const slot *s, uint64_t seq, imt_scan_record *r)
{
    memset(r, 0, sizeof *r);
    r->seq = seq;
    r->path = s->se ? s->se->path : s->e.path;
    r->type = s->se ? s->se->type : s->e.type;
    r->skipped = s->skipped;
    if (s->skipped) return;
    r->status = s->status;
    r->scan_error = is_scan_error(s);
    r->detail = s->detail ? s->detail : "";
    if (s->se) {
        const imt__sentry *e = s->se;
        r->loc = &e->loc;
        r->have_stat = e->type == IMT_ENTRY_FILE && e->status != IMT_E_NOT_FOUND;
        r->size = e->size;
        r->inode = e->loc.meta_addr;
        r->mode = e->mode;
        r->uid = e->uid;
        r->gid = e->gid;
        r->nlink = e->nlink;
        r->mtime_s = e->mtime_s;
        r->mtime_ns = e->mtime_ns;
        r->ctime_s = e->ctime_s;
        r->ctime_ns = e->ctime_ns;
        r->hash = s->read ? &s->res : NULL;
        r->known_good = s->known_good;
        r->pdq_low_quality = s->low_quality;
        r->matches = s->matches;
        r->n_matches = s->n_matches;
        r->matches_omitted = s->omitted;
        return;
    }
    r->have_stat = s->e.have_stat;
    if (r->have_stat) {
        const struct stat *st = &s->e.st;
        r->size = (uint64_t)st->st_size;
        r->inode = (uint64_t)st->st_ino;
        r->dev = (uint64_t)st->st_dev;
        r->mode = (uint32_t)st->st_mode;
        r->uid = (uint32_t)st->st_uid;
        r->gid = (uint32_t)st->st_gid;
        r->nlink = (uint32_t)st->st_nlink;
        r->mtime_s = (int64_t)st->st_mtim.tv_sec;
        r->mtime_ns = (int32_t)st->st_mtim.tv_nsec;
        r->ctime_s = (int64_t)st->st_ctim.tv_sec;
        r->ctime_ns = (int32_t)st->st_ctim.tv_nsec;
    }
    r->link_target = s->e.link_target;
    r->hardlink_of = s->e.hardlink_of;
    r->hash = s->read ? &s->res : NULL;
    r->known_good = s->known_good;
    r->pdq_low_quality = s->low_quality;
    r->matches = s->matches;
    r->n_matches = s->n_matches;
    r->matches_omitted = s->omitted;
}

/* The entries of the walk, with each PATH argument whose bytes sniff as a
 * disk image (or a block device) replaced by the entries of the image, in
 * the image's order (engine/source). */
typedef struct source {
    imt__walk *w;
    imt__enum *en;
    const volatile int *stop;
} source;

static imt_err source_next(source *src, slot *s, int *done)
{
    imt_err err = IMT_OK;
    for (;;) {
        if (src->en) {
            IMT_TRY(imt__enum_next(src->en, &s->se));
            if (s->se) {
                *done = 0;
                return IMT_OK;
            }
            imt__enum_close(src->en);
            src->en = NULL;
        }
        IMT_TRY(imt__walk_next(src->w, &s->e, done));
        if (*done) return IMT_OK;
        imt__img_kind kind;
        if (s->e.is_root && !s->e.repeat && s->e.status == IMT_OK &&
            (s->e.type == IMT_ENTRY_FILE || s->e.type == IMT_ENTRY_BLOCKDEV) &&
            imt__img_sniff(s->e.path, s->e.type == IMT_ENTRY_BLOCKDEV, &kind)) {
            IMT_TRY(imt__enum_open(&src->en, s->e.path, kind, NULL, src->stop));
            imt__wentry_clear(&s->e);
            continue;
        }
        return IMT_OK;
    }
cleanup:
    return err;
}

static int threads_for(const imt_scan_opts *o)
{
    int t = o->threads;
#ifdef IMT_HAVE_OPENMP
    if (t <= 0) t = omp_get_max_threads();
#else
    t = 1;
#endif
    return t < 1 ? 1 : t;
}

imt_err imt_scan_run(imt_index *idx, const char *const *paths, size_t n_paths,
                     const imt_scan_opts *opts, imt_scan_record_fn on_record, void *ctx,
                     char *detail, size_t cap)
{
    imt_err err = IMT_OK;
    imt_scan_opts o;
    imt__walk *w = NULL;
    source src = {NULL, NULL, NULL};
    imt__sreader **rds = NULL;
    imt_hasher **hs = NULL;
    imt_cursor **cs = NULL;
    slot *slots = NULL;
    job *order = NULL;
    lists L = {NULL, 0};
    int nt = 0, stopped = 0;
    size_t batch;
    uint64_t seq = 0;
    imt_scan_progress prog;
    uint64_t t0 = imt__now_ms();
    memset(&prog, 0, sizeof prog);
    if (detail && cap) detail[0] = '\0';

    if (!on_record || (n_paths && !paths)) return IMT_E_INVALID;
    if (opts) o = *opts;
    else imt_scan_opts_init(&o);
    if (o.pdq_distance < 0 || o.pdq_distance > 256 || o.min_quality < 0 ||
        o.min_quality > 101) {
        imt__set_detail(detail, cap, "PDQ distance must be 0..256 and quality 0..100");
        return IMT_E_INVALID;
    }
    if (!o.hash.stop) o.hash.stop = o.stop; /* a signal does not wait for a huge file */
    batch = o.batch_files ? o.batch_files : 256;
    if (batch > 65536) batch = 65536;
    nt = threads_for(&o);

    if (idx) {
        L.n = imt_index_list_count(idx);
        if (L.n) {
            L.v = imt__calloc(L.n, sizeof *L.v);
            if (!L.v) { err = IMT_E_NOMEM; goto cleanup; }
            for (size_t i = 0; i < L.n; i++) IMT_TRY(imt_index_list_get(idx, i, &L.v[i]));
            qsort(L.v, L.n, sizeof *L.v, list_cmp);
        }
    }
    hs = imt__calloc((size_t)nt, sizeof *hs);
    cs = imt__calloc((size_t)nt, sizeof *cs);
    rds = imt__calloc((size_t)nt, sizeof *rds);
    slots = imt__calloc(batch, sizeof *slots);
    order = imt__calloc(batch, sizeof *order);
    if (!hs || !cs || !rds || !slots || !order) { err = IMT_E_NOMEM; goto cleanup; }
    for (int t = 0; t < nt; t++) {
        IMT_TRY(imt__sreader_create(&rds[t]));
        err = imt_hasher_create(&hs[t], &o.hash);
        if (err) {
            imt__set_detail(detail, cap, "cannot create a hasher: %s", imt_strerror(err));
            goto cleanup;
        }
        if (idx) {
            err = imt_cursor_open(&cs[t], idx);
            if (err) {
                imt__set_detail(detail, cap, "cannot read the index: %s",
                                imt_index_last_error(idx));
                goto cleanup;
            }
        }
    }
    IMT_TRY(imt__walk_open(&w, paths, n_paths, o.one_file_system, o.stop));
    src.w = w;
    src.stop = o.stop;

    for (;;) {
        size_t n = 0;
        int done = 0;
        while (n < batch) {
            slot *s = &slots[n];
            IMT_TRY(source_next(&src, s, &done));
            if (done) break;
            n++;
            if (s->se) {
                s->status = s->se->status;
                s->detail = s->se->detail;
                if (o.skip && o.skip(o.ctx, s->se->path, s->se->type)) s->skipped = 1;
                else if (s->se->readable && s->se->status == IMT_OK) s->needs_hash = 1;
                continue;
            }
            s->status = s->e.status;
            s->detail = s->e.detail;
            if (o.skip && o.skip(o.ctx, s->e.path, s->e.type)) s->skipped = 1;
            else if (s->e.type == IMT_ENTRY_FILE && s->e.status == IMT_OK && !s->e.repeat)
                s->needs_hash = 1;
        }
        if (n == 0) {
            if (o.stop && *o.stop) stopped = 1;
            break;
        }

        /* Hash the largest files first: with dynamic scheduling the batch then
         * ends on small files, not on one thread still reading a big one while
         * the others wait. Records are emitted in walk order regardless. */
        long cnt = 0;
        for (size_t i = 0; i < n; i++)
            if (slots[i].needs_hash) {
                order[cnt].size = slots[i].se ? (off_t)slots[i].se->size : slots[i].e.st.st_size;
                order[cnt++].slot = i;
            }
        qsort(order, (size_t)cnt, sizeof *order, job_cmp);
#ifdef IMT_HAVE_OPENMP
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
#endif
        for (long i = 0; i < cnt; i++) {
            slot *s = &slots[order[i].slot];
            if (!s->needs_hash || (o.stop && *o.stop)) continue;
            int t = 0;
#ifdef IMT_HAVE_OPENMP
            t = omp_get_thread_num();
#endif
            s->done = s->se ? work_image(s, hs[t], rds[t], cs[t], &L, &o)
                            : work(s, hs[t], cs[t], &L, &o);
        }

        for (size_t i = 0; i < n && !stopped; i++) {
            slot *s = &slots[i];
            if (s->needs_hash && !s->done) {
                stopped = 1; /* asked to stop: emit only a prefix */
                break;
            }
            imt_scan_record rec;
            to_record(s, seq++, &rec);
            prog.entries++;
            if (s->read) {
                prog.files++;
                prog.bytes += s->res.file_size;
                if (s->res.has_pdq) prog.images++;
            }
            if (rec.scan_error) prog.errors++;
            for (size_t k = 0; k < s->n_matches; k++)
                if (s->matches[k].disposition == IMT_DISP_ALERT) {
                    prog.hits++;
                    break;
                }
            if (on_record(ctx, &rec)) stopped = 1;
        }
        for (size_t i = 0; i < n; i++) slot_clear(&slots[i]);
        prog.elapsed_ms = imt__now_ms() - t0;
        if (o.progress) o.progress(o.ctx, &prog);
        if (stopped || done) break;
    }
    if (stopped || (o.stop && *o.stop)) {
        err = IMT_E_INTERRUPTED;
        imt__set_detail(detail, cap, "stopped on request after %llu entries",
                        (unsigned long long)seq);
    }

cleanup:
    if (err == IMT_E_NOMEM && detail && cap && !detail[0])
        imt__set_detail(detail, cap, "out of memory");
    if (slots)
        for (size_t i = 0; i < batch; i++) slot_clear(&slots[i]);
    imt__free(slots);
    imt__free(order);
    for (int t = 0; hs && t < nt; t++) imt_hasher_free(hs[t]);
    for (int t = 0; cs && t < nt; t++) imt_cursor_close(cs[t]);
    for (int t = 0; rds && t < nt; t++) imt__sreader_free(rds[t]);
    imt__free(hs);
    imt__free(cs);
    imt__free(rds);
    imt__free(L.v);
    imt__enum_close(src.en);
    imt__walk_close(w);
    return err;
}

imt_err imt_scan_estimate(const char *const *paths, size_t n_paths, int one_file_system,
                          const volatile int *stop, uint64_t *files, uint64_t *bytes)
{
    imt_err err = IMT_OK;
    imt__walk *w = NULL;
    imt__wentry e;
    uint64_t nf = 0, nb = 0;
    int done = 0;
    memset(&e, 0, sizeof e);
    IMT_TRY(imt__walk_open(&w, paths, n_paths, one_file_system, stop));
    for (;;) {
        IMT_TRY(imt__walk_next(w, &e, &done));
        if (done) break;
        if (e.type == IMT_ENTRY_FILE && e.have_stat) {
            nf++;
            nb += (uint64_t)e.st.st_size;
        }
        imt__wentry_clear(&e);
    }
    if (stop && *stop) err = IMT_E_INTERRUPTED;
cleanup:
    imt__wentry_clear(&e);
    imt__walk_close(w);
    if (files) *files = nf;
    if (bytes) *bytes = nb;
    return err;
}
