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
 * their records are made from the listing, as imt_scan_run makes them. */
#include "triage.h"
#include "scan/scan.h"

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
    uint64_t t0;
    imt_scan_progress base, last;
    const char *const *paths;  /* the caller's PATHs */
    size_t n_paths;
} run;

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

static int account(run *R, int cls, const imt__tfile *f, const imt_scan_record *rec)
{
    imt_preview_stats *st = R->st;
    imt_preview_class_stats *k = &st->cls[cls];
    k->examined++;
    k->examined_bytes += f->size;
    if (rec->hash && rec->hash->has_pdq) k->pictures++;
    int hit = 0;
    for (size_t i = 0; i < rec->n_matches; i++)
        if (rec->matches[i].disposition == IMT_DISP_ALERT) hit = 1;
    if (hit) {
        k->hit_files++;
        st->hit_files++;
        if (!st->have_first_hit) {
            st->have_first_hit = 1;
            st->first_hit_ms = imt__now_ms() - R->t0;
        }
    } else if (!st->have_first_hit) {
        st->files_before_first_hit++;
    }
    if (R->on_record(R->ctx, rec)) {
        R->user_stop = 1;
        return 1;
    }
    if (hit && R->to->stop_after_hits && st->hit_files >= R->to->stop_after_hits) {
        R->hit_stop = 1;
        return 1;
    }
    return 0;
}

/* A listed file that is no longer the regular file listed: not read. */
static int changed_record(run *R, size_t i)
{
    const imt__tfile *f = &R->b.f[i];
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
        uint64_t my = seq++;
        if (e.type == IMT_ENTRY_FILE && e.status == IMT_OK && !e.repeat && e.have_stat) {
            imt__tfile f;
            f.key = imt__triage_key(to.seed, e.path);
            f.seq = my;
            f.dev = (uint64_t)e.st.st_dev;
            f.ino = (uint64_t)e.st.st_ino;
            f.size = (uint64_t)e.st.st_size;
            f.path = e.path;
            int c = (int)imt_triage_classify(e.path);
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
    R.b.state = imt__calloc(chunk, 1);
    if (!bpaths || !R.b.state) { err = IMT_E_NOMEM; goto cleanup; }
    so.skip = run_skip;
    so.progress = run_progress;
    so.ctx = &R;
    so.stop = &w.stop;
    so.hash.stop = &w.stop;
    long ncpu = so.threads > 0 ? so.threads : sysconf(_SC_NPROCESSORS_ONLN);
    size_t step = (size_t)(ncpu > 0 ? ncpu : 1); /* doubled before its first use */
    if (step > chunk) step = chunk;
    for (int c = 0; c < IMT_CLASS__COUNT && !w.stop && !R.user_stop && !R.hit_stop; c++) {
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
                for (size_t i = 0; i < m; i++) bpaths[i] = v[at + i].path;
                memset(R.b.state, 0, m);
                R.b.f = v + at;
                R.b.m = m;
                R.b.cls = c;
                R.b.next_skip = R.b.next_rec = 0;
                memset(&R.last, 0, sizeof R.last);
                char det[256];
                imt_err se = imt_scan_run(idx, bpaths, m, &so, run_record, &R, det, sizeof det);
                R.base.entries += R.last.entries;
                R.base.files += R.last.files;
                R.base.images += R.last.images;
                R.base.bytes += R.last.bytes;
                R.base.hits += R.last.hits;
                R.base.errors += R.last.errors;
                if (se != IMT_OK && se != IMT_E_INTERRUPTED) {
                    imt__set_detail(detail, cap, "%s", det[0] ? det : imt_strerror(se));
                    err = se;
                    goto cleanup;
                }
                /* Changed files after the last record of a batch read whole. */
                if (se == IMT_OK && !R.user_stop && !R.hit_stop)
                    for (size_t i = R.b.next_rec; i < m; i++)
                        if (R.b.state[i] == 2 && changed_record(&R, i)) break;
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
