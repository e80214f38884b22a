/* engine/triage/preview.c -- imt_triage_run: list the evidence (metadata
 * only), then read its regular files class by class, each class in seeded
 * random order, through imt_scan_run a batch of file PATHs at a time, until
 * the budget, the hit limit or the end.
 *
 * Why through imt_scan_run: each file's record is then made by the same
 * code as in a full scan (open relative to nothing but its own path,
 * O_NOFOLLOW below a PATH is not needed since every PATH given is the file
 * itself: the skip callback claims anything the walker finds that is not
 * the listed regular file, and a record whose device and inode differ from
 * the listing is replaced by one saying the file changed after it was
 * listed). Only seq is rewritten, to the file's walk position, so a record
 * equals the full scan's. Entries that are not regular files need no read:
 * their records are made from the listing, as imt_scan_run makes them.
 *
 * A PATH that is a disk image is listed through the source's enumeration
 * (engine/source, without carving: the areas a full scan would carve are
 * counted and reported), each file's entry packed whole into the spool, and
 * read back through imt__scan_entries: the scan's workers and TSK handles
 * over that very entry, so its record (location, allocation status, byte
 * runs) is the full scan's. Its entries with nothing to read get their
 * records from the same call at listing time. */
#include "triage.h"
#include "scan/scan.h"
#include "source/source.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void imt_triage_opts_init(imt_triage_opts *o)
{
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->seed = 1;
    o->memory_bytes = (size_t)64 << 20;
    o->chunk_files = 256;
}

/* ---- the clock: a watcher thread sets the scan's stop flag ------------- */
typedef struct watch {
    volatile int stop;         /* what imt_scan_run and the walker poll */
    const volatile int *user;  /* the caller's stop flag (may be NULL) */
    uint64_t deadline_ms;      /* 0: none */
    int budget_hit, user_hit;
    int quit;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} watch;

static void *watch_main(void *arg)
{
    watch *w = arg;
    pthread_mutex_lock(&w->mu);
    while (!w->quit) {
        if (w->user && *w->user) {
            w->user_hit = 1;
            w->stop = 1;
        }
        if (w->deadline_ms && imt__now_ms() >= w->deadline_ms) {
            w->budget_hit = 1;
            w->stop = 1;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* ---- records ---------------------------------------------------------- */
static int entry_is_scan_error(const imt__wentry *e)
{
    imt_err s = e->status;
    if (s == IMT_E_IO || s == IMT_E_NOMEM || s == IMT_E_INTERNAL || s == IMT_E_DB ||
        s == IMT_E_INDEX_CORRUPT || s == IMT_E_INDEX_CHANGED)
        return 1;
    return e->is_root && s == IMT_E_NOT_FOUND;
}

/* The record of an entry that is not read, as imt_scan_run makes it. */
static void entry_record(const imt__wentry *e, uint64_t seq, imt_scan_record *r)
{
    memset(r, 0, sizeof *r);
    r->seq = seq;
    r->path = e->path;
    r->type = e->type;
    r->status = e->status;
    r->scan_error = entry_is_scan_error(e);
    r->detail = e->detail;
    r->have_stat = e->have_stat;
    if (e->have_stat) imt__record_stat(r, &e->st);
    r->link_target = e->link_target;
    r->hardlink_of = e->hardlink_of;
}

/* One batch of listed files being read through imt_scan_run. */
typedef struct batch {
    const imt__tfile *f;
    size_t m;
    int cls;
    unsigned char *state;      /* per file: 0 not seen, 1 accepted, 2 changed,
                                  3 record emitted */
    size_t next_skip, next_rec;
} batch;

typedef struct run {
    imt_scan_record_fn on_record;
    void *ctx;
    imt_preview_stats *st;
    const imt_triage_opts *to;
    const imt_scan_opts *so;
    watch *w;
    batch b;
    int hit_stop, user_stop;
    int hit_pending;           /* the hit limit was reached: stop at the next
                                  walked file's record (a container's members
                                  come out first) */
    uint64_t t0;
    /* the last file accounted: a container's members are counted with it */
    int last_cls;
    uint64_t last_seq;
    int last_hit;
    /* files of disk images in the current batch, read by imt__scan_entries */
    const imt__tfile **ib;
    size_t ib_n, ib_next;
    /* entries of a disk image not read (their records made by the scan) */
    const uint64_t *useq;
    size_t u_next;
    imt_scan_progress base, last;
    const char *const *paths;  /* the caller's PATHs */
    size_t n_paths;
} run;

/* A batch's scan ended with se: its progress goes into the totals; an
 * error other than a stop is the run's (detail from det). */
static imt_err batch_done(run *R, imt_err se, const char *det, char *detail, size_t cap)
{
    R->base.entries += R->last.entries;
    R->base.files += R->last.files;
    R->base.images += R->last.images;
    R->base.bytes += R->last.bytes;
    R->base.hits += R->last.hits;
    R->base.errors += R->last.errors;
    if (se == IMT_OK || se == IMT_E_INTERRUPTED) return IMT_OK;
    imt__set_detail(detail, cap, "%s", det[0] ? det : imt_strerror(se));
    return se;
}

static int run_skip(void *ctx, const char *path, imt_entry_type type)
{
    run *R = ctx;
    batch *b = &R->b;
    if (b->next_skip < b->m && !strcmp(path, b->f[b->next_skip].path)) {
        size_t i = b->next_skip++;
        if (type == IMT_ENTRY_FILE) {
            b->state[i] = 1;
            return 0;
        }
        b->state[i] = 2;
    }
    return 1; /* not the listed regular file (a folder's content, a link) */
}

static int rec_has_hit(const imt_scan_record *rec)
{
    for (size_t i = 0; i < rec->n_matches; i++)
        if (rec->matches[i].disposition == IMT_DISP_ALERT) return 1;
    return 0;
}

/* The file last accounted has a hit (its own, or a member's). */
static void count_hit(run *R)
{
    imt_preview_stats *st = R->st;
    if (R->last_hit) return;
    R->last_hit = 1;
    st->cls[R->last_cls].hit_files++;
    st->hit_files++;
    if (!st->have_first_hit) {
        st->have_first_hit = 1;
        st->first_hit_ms = imt__now_ms() - R->t0;
        st->files_before_first_hit--; /* counted before its hit was seen */
    }
    if (R->to->stop_after_hits && st->hit_files >= R->to->stop_after_hits)
        R->hit_pending = 1;
}

/* Before the record of the next listed file: stop here when the hit limit
 * was reached (after the members of the file that reached it). */
static int hit_stop_now(run *R)
{
    if (!R->hit_pending) return 0;
    R->hit_stop = 1;
    return 1;
}

static int account(run *R, int cls, const imt__tfile *f, const imt_scan_record *rec)
{
    imt_preview_stats *st = R->st;
    imt_preview_class_stats *k = &st->cls[cls];
    k->examined++;
    k->examined_bytes += f->size;
    if (rec->hash && rec->hash->has_pdq) k->pictures++;
    R->last_cls = cls;
    R->last_seq = rec->seq;
    R->last_hit = 0;
    if (!st->have_first_hit) st->files_before_first_hit++;
    if (rec_has_hit(rec)) count_hit(R);
    if (R->on_record(R->ctx, rec)) {
        R->user_stop = 1;
        return 1;
    }
    return 0;
}

/* A member of a container (of the file accounted last): its record, with
 * the container's seq (a preview's seq is the listed file's position; the
 * full scan numbers members after their container); a hit in it is a hit
 * of that file. */
static int member_record(run *R, const imt_scan_record *rec)
{
    imt_scan_record r = *rec;
    r.seq = R->last_seq;
    if (rec_has_hit(rec)) count_hit(R);
    if (R->on_record(R->ctx, &r)) {
        R->user_stop = 1;
        return 1;
    }
    return 0;
}

/* A listed file that is no longer the regular file listed: not read. */
static int changed_record(run *R, size_t i)
{
    const imt__tfile *f = &R->b.f[i];
    if (hit_stop_now(R)) return 1;
    struct stat st;
    imt_scan_record r;
    memset(&r, 0, sizeof r);
    r.seq = f->seq;
    r.path = f->path;
    r.type = IMT_ENTRY_FILE;
    if (lstat(f->path, &st) != 0 && errno == ENOENT) {
        r.status = IMT_E_NOT_FOUND;
        r.detail = "vanished before it was read";
    } else {
        r.status = IMT_E_IO;
        r.scan_error = 1;
        r.detail = "changed after it was listed (now a link, a folder or another file): "
                   "not read";
    }
    R->b.state[i] = 3;
    return account(R, R->b.cls, f, &r);
}

static int run_record(void *ctx, const imt_scan_record *rec)
{
    run *R = ctx;
    batch *b = &R->b;
    if (rec->skipped) return 0;
    if (rec->container.depth > 0) return member_record(R, rec);
    if (hit_stop_now(R)) return 1;
    /* Records come in batch order; the changed ones in between first. */
    while (b->next_rec < b->m && b->state[b->next_rec] != 1) {
        if (b->state[b->next_rec] == 2 && changed_record(R, b->next_rec)) return 1;
        b->next_rec++;
    }
    if (b->next_rec >= b->m || strcmp(rec->path, b->f[b->next_rec].path) != 0)
        return 0; /* not one of ours (cannot happen: everything else is skipped) */
    size_t i = b->next_rec++;
    const imt__tfile *f = &b->f[i];
    b->state[i] = 3;
    if (rec->have_stat && (rec->inode != f->ino || rec->dev != f->dev)) {
        b->state[i] = 2;
        return changed_record(R, i);
    }
    imt_scan_record r = *rec;
    r.seq = f->seq;
    /* Each file here is a PATH of imt_scan_run, where a vanished PATH is a
     * scan error; in the full scan it is a finding, unless the user named
     * the file itself. */
    if (r.status == IMT_E_NOT_FOUND && r.scan_error) {
        int named = 0;
        for (size_t k = 0; k < R->n_paths && !named; k++) named = !strcmp(R->paths[k], r.path);
        r.scan_error = named;
    }
    return account(R, b->cls, f, &r);
}

static void run_progress(void *ctx, const imt_scan_progress *p)
{
    run *R = ctx;
    R->last = *p;
    if (!R->so->progress) return;
    imt_scan_progress q = R->base;
    q.entries += p->entries;
    q.files += p->files;
    q.images += p->images;
    q.bytes += p->bytes;
    q.hits += p->hits;
    q.errors += p->errors;
    q.elapsed_ms = imt__now_ms() - R->t0;
    R->so->progress(R->so->ctx, &q);
}

/* The part of a walked path below the PATH argument it was found under:
 * the folders holding the evidence (an analyst's home, a case folder named
 * Downloads) say nothing about it. A PATH that is itself a file keeps its
 * name. */
static const char *below_path(const char *path, const char *const *paths, size_t n)
{
    size_t best = 0;
    int found = 0;
    for (size_t k = 0; k < n; k++) {
        size_t l = strlen(paths[k]);
        while (l > 0 && paths[k][l - 1] == '/') l--; /* "/" is 0 bytes long */
        if (strncmp(path, paths[k], l) != 0 || (path[l] != '/' && path[l] != '\0')) continue;
        if (!found || l > best) best = l;
        found = 1;
    }
    if (!found) return path;
    if (path[best] == '/') return path + best;
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* ---- files of disk images ----------------------------------------------
 * The listing keeps each file's entry as the enumeration made it (packed
 * into the spool beside its path), so that the record made when it is read
 * is the full scan's: same location, allocation status, byte runs, times. */

/* A packed entry: the struct with its pointers meaningless, the lengths of
 * its strings, the strings (each with its NUL), its byte runs. */
typedef struct packhdr {
    imt__sentry e;
    uint32_t len[4];           /* image, part_type, fs_type, stream */
    uint32_t has_stream;
    uint32_t pad;
} packhdr;

static size_t slen(const char *s)
{
    return s ? strlen(s) : 0;
}

/* Pack e into *buf (grown; *cap its size); *n the bytes. */
static imt_err pack_entry(const imt__sentry *e, char **buf, size_t *cap, size_t *n)
{
    packhdr h;
    memset(&h, 0, sizeof h);
    h.e = *e;
    const char *str[4] = {e->loc.image, e->loc.part_type, e->loc.fs_type, e->loc.stream};
    size_t need = sizeof h, runs = e->loc.n_runs * sizeof(imt_byte_run);
    for (int i = 0; i < 4; i++) {
        size_t l = slen(str[i]);
        if (l > UINT32_MAX - 1) return IMT_E_INVALID;
        h.len[i] = (uint32_t)l;
        need += l + 1;
    }
    h.has_stream = e->loc.stream != NULL;
    need += runs;
    if (need > *cap) {
        char *nb = imt__realloc(*buf, need);
        if (!nb) return IMT_E_NOMEM;
        *buf = nb;
        *cap = need;
    }
    char *p = *buf;
    memcpy(p, &h, sizeof h);
    p += sizeof h;
    for (int i = 0; i < 4; i++) {
        if (h.len[i]) memcpy(p, str[i], h.len[i]);
        p[h.len[i]] = '\0';
        p += h.len[i] + 1;
    }
    if (runs) memcpy(p, e->loc.runs, runs);
    *n = need;
    return IMT_OK;
}

/* The entry of a listed file of a disk image, as the enumeration made it. */
static imt_err unpack_entry(const imt__tfile *f, imt__sentry **out)
{
    packhdr h;
    *out = NULL;
    if (f->blob_len < sizeof h) return IMT_E_INTERNAL;
    memcpy(&h, f->blob, sizeof h);
    const char *p = (const char *)f->blob + sizeof h;
    size_t sl = 0;
    for (int i = 0; i < 4; i++) sl += (size_t)h.len[i] + 1;
    size_t runs = h.e.loc.n_runs * sizeof(imt_byte_run);
    if (f->blob_len != sizeof h + sl + runs) return IMT_E_INTERNAL;
    imt__sentry *e = imt__calloc(1, sizeof *e);
    if (!e) return IMT_E_NOMEM;
    *e = h.e;
    e->path = imt__strdup(f->path);
    e->strs = imt__malloc(sl);
    e->runs = runs ? imt__malloc(runs) : NULL;
    if (!e->path || !e->strs || (runs && !e->runs)) {
        imt__sentry_free(e);
        return IMT_E_NOMEM;
    }
    memcpy(e->strs, p, sl);
    const char **dst[4] = {&e->loc.image, &e->loc.part_type, &e->loc.fs_type, &e->loc.stream};
    char *q = e->strs;
    for (int i = 0; i < 4; i++) {
        *dst[i] = q;
        q += h.len[i] + 1;
    }
    if (!h.has_stream) e->loc.stream = NULL;
    if (runs) memcpy(e->runs, p + sl, runs);
    e->loc.runs = e->runs;
    *out = e;
    return IMT_OK;
}

/* The records of a disk image's files read in this batch, in list order. */
static int img_record(void *ctx, const imt_scan_record *rec)
{
    run *R = ctx;
    if (rec->skipped) return 0;
    if (rec->container.depth > 0) return member_record(R, rec);
    if (hit_stop_now(R)) return 1;
    if (R->ib_next >= R->ib_n || strcmp(rec->path, R->ib[R->ib_next]->path) != 0)
        return 0; /* not one of ours (cannot happen) */
    const imt__tfile *f = R->ib[R->ib_next++];
    imt_scan_record r = *rec;
    r.seq = f->seq;
    return account(R, R->b.cls, f, &r);
}

/* Entries of a disk image that are not read (a deleted name with no
 * metadata, a partition not enumerated, an absurd size): their records as
 * the scan makes them, with their listing positions. */
static int unread_record(void *ctx, const imt_scan_record *rec)
{
    run *R = ctx;
    imt_scan_record r = *rec;
    r.seq = R->useq[R->u_next++];
    if (R->on_record(R->ctx, &r)) {
        R->user_stop = 1;
        return 1;
    }
    return 0;
}

static imt_err flush_unread(run *R, imt_index *idx, const imt_scan_opts *lo, imt__sentry **u,
                            const uint64_t *useq, size_t *n, char *detail, size_t cap)
{
    R->useq = useq;
    R->u_next = 0;
    char det[256] = "";
    imt_err err = imt__scan_entries(idx, u, *n, lo, unread_record, R, det, sizeof det);
    *n = 0;
    if (err == IMT_E_INTERRUPTED) err = IMT_OK; /* the caller's stop: seen by it */
    if (err) imt__set_detail(detail, cap, "%s", det[0] ? det : imt_strerror(err));
    return err;
}

/* List the files of the disk image at path (kind: what it sniffed as):
 * the source's enumeration with no carving; readable files go to the spool
 * with their packed entry, the other entries' records are made at once. */
static imt_err list_image(run *R, imt_index *idx, imt__spool *sp, const char *path,
                          imt__img_kind kind, uint64_t *seq, const volatile int *stop,
                          const imt_scan_opts *so, char *detail, size_t cap)
{
    enum { UCAP = 64 };
    imt_err err = IMT_OK;
    imt__enum *en = NULL;
    imt__sentry *e = NULL, *u[UCAP];
    uint64_t useq[UCAP];
    size_t nu = 0, bcap = 0, bn = 0;
    char *buf = NULL;
    imt__src_limits lim;
    imt__src_limits_init(&lim);
    lim.no_carve = 1;
    imt_scan_opts lo = *so; /* records of entries not read: nothing to stop */
    lo.skip = NULL;
    lo.progress = NULL;
    lo.stop = NULL;
    lo.hash.stop = NULL;
    size_t plen = strlen(path);
    IMT_TRY(imt__enum_open(&en, path, kind, &lim, stop));
    for (;;) {
        IMT_TRY(imt__enum_next(en, &e));
        if (!e) break;
        uint64_t my = (*seq)++;
        if (e->type == IMT_ENTRY_FILE && e->status == IMT_OK && e->readable && !e->carved) {
            IMT_TRY(pack_entry(e, &buf, &bcap, &bn));
            imt__tfile f;
            memset(&f, 0, sizeof f);
            f.key = imt__triage_key(R->to->seed, e->path);
            f.seq = my;
            f.ino = e->loc.meta_addr;
            f.size = e->size;
            f.path = e->path;
            f.blob = buf;
            f.blob_len = bn;
            const char *in_fs = strncmp(e->path, path, plen) == 0 ? e->path + plen : e->path;
            int c = (int)imt_triage_classify_image(in_fs, e->loc.alloc);
            err = imt__spool_add(sp, c, &f);
            if (err) {
                imt__set_detail(detail, cap, "cannot hold the listing: %s", imt_strerror(err));
                goto cleanup;
            }
            R->st->cls[c].enumerated++;
            R->st->cls[c].enumerated_bytes += f.size;
            imt__sentry_free(e);
            e = NULL;
            continue;
        }
        useq[nu] = my;
        u[nu++] = e;
        e = NULL;
        if (nu == UCAP) IMT_TRY(flush_unread(R, idx, &lo, u, useq, &nu, detail, cap));
        if (R->user_stop) break;
    }
    if (nu) IMT_TRY(flush_unread(R, idx, &lo, u, useq, &nu, detail, cap));
    uint64_t areas = 0, bytes = 0;
    if (!e && !(stop && *stop) && !R->user_stop) imt__enum_uncarved(en, &areas, &bytes);
    R->st->disk_images++;
    R->st->uncarved_areas += areas;
    R->st->uncarved_bytes += bytes;
cleanup:
    for (size_t i = 0; i < nu; i++) imt__sentry_free(u[i]);
    imt__sentry_free(e);
    imt__enum_close(en);
    imt__free(buf);
    return err;
}

/* Is dir (resolved) inside one of the folder PATHs (device and inode of
 * each folder from dir up to "/")? */
static int inside_paths(const char *dir, const char *const *paths, size_t n)
{
    char *rp = realpath(dir, NULL);
    if (!rp) return 0;
    int in = 0;
    for (;;) {
        struct stat a;
        if (stat(rp, &a) == 0)
            for (size_t i = 0; i < n && !in; i++) {
                struct stat b;
                if (stat(paths[i], &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
                    in = 1;
            }
        char *slash = strrchr(rp, '/');
        if (in || !slash || !strcmp(rp, "/")) break;
        if (slash == rp) slash[1] = '\0';
        else *slash = '\0';
    }
    free(rp);
    return in;
}

imt_err imt_triage_run(imt_index *idx, const char *const *paths, size_t n_paths,
                       const imt_scan_opts *scan, const imt_triage_opts *topts,
                       imt_scan_record_fn on_record, void *ctx, imt_preview_stats *stats,
                       char *detail, size_t cap)
{
    imt_err err = IMT_OK;
    imt_scan_opts so;
    imt_triage_opts to;
    imt__walk *wk = NULL;
    imt__spool *sp = NULL;
    imt__wentry e;
    watch w;
    pthread_t th;
    int th_started = 0;
    const char **bpaths = NULL;
    imt__tfile *ff = NULL;      /* a batch's files of folders */
    const imt__tfile **ib = NULL; /* its files of disk images */
    imt__sentry **ents = NULL;
    run R;
    memset(&e, 0, sizeof e);
    memset(&w, 0, sizeof w);
    memset(&R, 0, sizeof R);
    if (detail && cap) detail[0] = '\0';
    if (!on_record || !stats || (n_paths && !paths)) return IMT_E_INVALID;
    if (scan) so = *scan;
    else imt_scan_opts_init(&so);
    if (topts) to = *topts;
    else imt_triage_opts_init(&to);
    if (so.skip) {
        imt__set_detail(detail, cap, "a preview cannot skip entries (resume one with a full scan)");
        return IMT_E_INVALID;
    }
    size_t chunk = to.chunk_files ? to.chunk_files : 256;
    if (chunk > 65536) chunk = 65536;
    const char *tmpdir = to.tmpdir;
    if (!tmpdir || !tmpdir[0]) tmpdir = getenv("TMPDIR");
    if (!tmpdir || !tmpdir[0]) tmpdir = "/tmp";
    if (inside_paths(tmpdir, paths, n_paths)) {
        imt__set_detail(detail, cap, "the temporary folder %s is inside the evidence: set "
                        "TMPDIR elsewhere", tmpdir);
        return IMT_E_INVALID;
    }

    memset(stats, 0, sizeof *stats);
    stats->budget_ms = to.budget_ms;
    stats->stop_after_hits = to.stop_after_hits;
    stats->seed = to.seed;
    R.t0 = imt__now_ms();
    R.on_record = on_record;
    R.ctx = ctx;
    R.st = stats;
    R.to = &to;
    R.so = scan ? scan : &so;
    R.w = &w;
    R.paths = paths;
    R.n_paths = n_paths;
    w.user = so.stop;
    w.deadline_ms = to.budget_ms ? R.t0 + to.budget_ms : 0;
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    if (pthread_create(&th, NULL, watch_main, &w) != 0) {
        imt__set_detail(detail, cap, "cannot start the clock thread");
        err = IMT_E_NOMEM;
        goto cleanup;
    }
    th_started = 1;

    /* 1. List: metadata only. Regular files go to the spool by class; the
     * other entries' records are final already. */
    IMT_TRY(imt__spool_open(&sp, tmpdir, to.memory_bytes));
    IMT_TRY(imt__walk_open(&wk, paths, n_paths, so.one_file_system, &w.stop));
    uint64_t seq = 0;
    for (;;) {
        int done = 0;
        IMT_TRY(imt__walk_next(wk, &e, &done));
        if (done) break;
        imt__img_kind kind;
        if (e.is_root && !e.repeat && e.status == IMT_OK &&
            (e.type == IMT_ENTRY_FILE || e.type == IMT_ENTRY_BLOCKDEV) &&
            imt__img_sniff(e.path, e.type == IMT_ENTRY_BLOCKDEV, &kind)) {
            /* a disk image: its files, as the full scan's source gives them */
            IMT_TRY(list_image(&R, idx, sp, e.path, kind, &seq, &w.stop, &so, detail, cap));
            imt__wentry_clear(&e);
            if (R.user_stop) break;
            continue;
        }
        uint64_t my = seq++;
        if (e.type == IMT_ENTRY_FILE && e.status == IMT_OK && !e.repeat && e.have_stat) {
            imt__tfile f;
            memset(&f, 0, sizeof f);
            f.key = imt__triage_key(to.seed, e.path);
            f.seq = my;
            f.dev = (uint64_t)e.st.st_dev;
            f.ino = (uint64_t)e.st.st_ino;
            f.size = (uint64_t)e.st.st_size;
            f.path = e.path;
            int c = (int)imt_triage_classify(below_path(e.path, paths, n_paths));
            err = imt__spool_add(sp, c, &f);
            if (err) {
                imt__set_detail(detail, cap, "cannot hold the listing (temporary files in %s): %s",
                                tmpdir, imt_strerror(err));
                goto cleanup;
            }
            stats->cls[c].enumerated++;
            stats->cls[c].enumerated_bytes += f.size;
        } else {
            imt_scan_record r;
            entry_record(&e, my, &r);
            if (on_record(ctx, &r)) {
                R.user_stop = 1;
                break;
            }
        }
        imt__wentry_clear(&e);
    }
    stats->enumeration_complete = !w.stop && !R.user_stop;
    stats->enumerate_ms = imt__now_ms() - R.t0;
    imt__walk_close(wk);
    wk = NULL;

    /* 2. Read, class by class, each in its seeded random order. */
    bpaths = imt__calloc(chunk, sizeof *bpaths);
    ff = imt__calloc(chunk, sizeof *ff);
    ib = imt__calloc(chunk, sizeof *ib);
    ents = imt__calloc(chunk, sizeof *ents);
    R.b.state = imt__calloc(chunk, 1);
    if (!bpaths || !ff || !ib || !ents || !R.b.state) { err = IMT_E_NOMEM; goto cleanup; }
    so.skip = run_skip;
    so.progress = run_progress;
    so.ctx = &R;
    so.stop = &w.stop;
    so.hash.stop = &w.stop;
    imt_scan_opts io = so; /* files of disk images: entries, nothing to skip */
    io.skip = NULL;
    long ncpu = so.threads > 0 ? so.threads : sysconf(_SC_NPROCESSORS_ONLN);
    size_t step = (size_t)(ncpu > 0 ? ncpu : 1); /* doubled before its first use */
    if (step > chunk) step = chunk;
    for (int ci = 0; ci < IMT_CLASS__COUNT && !w.stop && !R.user_stop && !R.hit_stop; ci++) {
        int c = (int)imt_triage_class_at(ci);
        IMT_TRY(imt__spool_class_begin(sp, c));
        for (;;) {
            const imt__tfile *v;
            size_t n;
            IMT_TRY(imt__spool_class_next(sp, &v, &n));
            if (!n) break;
            for (size_t at = 0, m = 0; at < n && !w.stop && !R.user_stop && !R.hit_stop; at += m) {
                /* Records come out when their batch is done: small batches
                 * first (a first hit among big videos is not held back by
                 * 255 others), doubling up to chunk. */
                step = step * 2 > chunk ? chunk : step * 2;
                m = n - at < step ? n - at : step;
                /* the batch's files of folders through imt_scan_run, then
                 * those of disk images through imt__scan_entries */
                size_t mf = 0, mi = 0;
                for (size_t i = 0; i < m; i++) {
                    if (v[at + i].blob) ib[mi++] = &v[at + i];
                    else ff[mf++] = v[at + i];
                }
                R.b.cls = c;
                char det[256] = "";
                imt_err se = IMT_OK;
                if (mi) {
                    for (size_t i = 0; i < mi && !err; i++) err = unpack_entry(ib[i], &ents[i]);
                    if (err) {
                        for (size_t i = 0; i < mi; i++) imt__sentry_free(ents[i]), ents[i] = NULL;
                        imt__set_detail(detail, cap, "cannot read the listing back: %s",
                                        imt_strerror(err));
                        goto cleanup;
                    }
                    R.ib = ib;
                    R.ib_n = mi;
                    R.ib_next = 0;
                    memset(&R.last, 0, sizeof R.last);
                    se = imt__scan_entries(idx, ents, mi, &io, img_record, &R, det, sizeof det);
                    if ((err = batch_done(&R, se, det, detail, cap)) != IMT_OK) goto cleanup;
                    if (R.hit_pending) R.hit_stop = 1;
                    if (!mf || w.stop || R.user_stop || R.hit_stop) continue;
                }
                for (size_t i = 0; i < mf; i++) bpaths[i] = ff[i].path;
                memset(R.b.state, 0, mf);
                R.b.f = ff;
                R.b.m = mf;
                R.b.next_skip = R.b.next_rec = 0;
                memset(&R.last, 0, sizeof R.last);
                se = imt_scan_run(idx, bpaths, mf, &so, run_record, &R, det, sizeof det);
                if ((err = batch_done(&R, se, det, detail, cap)) != IMT_OK) goto cleanup;
                /* Changed files after the last record of a batch read whole. */
                if (se == IMT_OK && !R.user_stop && !R.hit_stop)
                    for (size_t i = R.b.next_rec; i < mf; i++)
                        if (R.b.state[i] == 2 && changed_record(&R, i)) break;
                if (R.hit_pending) R.hit_stop = 1;
            }
            if (w.stop || R.user_stop || R.hit_stop) break;
        }
    }

cleanup:
    if (th_started) {
        pthread_mutex_lock(&w.mu);
        w.quit = 1;
        pthread_cond_signal(&w.cv);
        pthread_mutex_unlock(&w.mu);
        pthread_join(th, NULL);
    }
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    imt__wentry_clear(&e);
    imt__walk_close(wk);
    imt__spool_free(sp);
    imt__free(bpaths);
    imt__free(ff);
    imt__free(ib);
    imt__free(ents);
    imt__free(R.b.state);
    stats->elapsed_ms = imt__now_ms() - R.t0;
    imt__preview_finish(stats);
    if (R.user_stop || w.user_hit) stats->stopped_by = IMT_PREVIEW_INTERRUPTED;
    else if (R.hit_stop) stats->stopped_by = IMT_PREVIEW_HITS;
    else if (w.budget_hit && stats->examined_files < stats->enumerated_files)
        stats->stopped_by = IMT_PREVIEW_BUDGET;
    else if (w.budget_hit && !stats->enumeration_complete)
        stats->stopped_by = IMT_PREVIEW_BUDGET;
    else stats->stopped_by = IMT_PREVIEW_COMPLETE;
    if (!err && stats->stopped_by == IMT_PREVIEW_INTERRUPTED) {
        err = IMT_E_INTERRUPTED;
        imt__set_detail(detail, cap, "stopped on request");
    }
    if (err == IMT_E_NOMEM && detail && cap && !detail[0])
        imt__set_detail(detail, cap, "out of memory");
    return err;
}
