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

#include "container/container.h"

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
    imt_subitem *subs;       /* res.sub copied (the hasher's is reused) */
    imt_video_frame *frames; /* res.frames copied, likewise */
    imt__matches mt;         /* the matches of res */
    imt_container_info ci;   /* a member's place; a container's expansion */
    char *ci_note;           /* ci.note, owned */
    struct slot *members;    /* a walked container's member records, in order */
    size_t n_members, members_cap;
    uint64_t held;           /* bytes its member records hold (the budget) */
    int deferred;            /* over the held budget: expanded when emitted */
    uint64_t claimed_members;/* skipped: the member records claimed with it */
    int detail_at;           /* a member's detail: 1 in e.detail, 2 in res.detail
                                (members move when their array grows) */
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

static void slot_clear(slot *s);
static void slot_clear(slot *s)
{
    for (size_t i = 0; i < s->n_members; i++) slot_clear(&s->members[i]);
    imt__free(s->members);
    imt__free(s->ci_note);
    imt__wentry_clear(&s->e);
    imt__sentry_free(s->se);
    imt__matches_free(&s->mt);
    imt__free(s->subs);
    imt__free(s->frames);
    memset(s, 0, sizeof *s);
}

/* Keep a copy of the hasher's sub-items and video frames (reused by its
 * next file). */
static void keep_subs(slot *s)
{
    if (s->res.n_frames) {
        size_t b;
        s->frames = imt__mul_ok(s->res.n_frames, sizeof *s->frames, &b) ? imt__malloc(b) : NULL;
        if (s->frames) memcpy(s->frames, s->res.frames, b);
        else {
            s->res.n_frames = 0;
            s->res.status = IMT_E_NOMEM;
        }
        s->res.frames = s->frames;
    }
    if (!s->res.n_sub) return;
    s->subs = imt__malloc(s->res.n_sub * sizeof *s->subs);
    if (s->subs) memcpy(s->subs, s->res.sub, s->res.n_sub * sizeof *s->subs);
    else s->res.n_sub = 0;
    s->res.sub = s->subs;
}

/* ---- containers: members are records of their own -------------------------
 * A worker that read a container expands it (engine/container) and keeps
 * every member's record in its slot (s->members), in member order; they are
 * emitted right after the container's record. The records all workers hold
 * are bounded by containers.max_held_bytes (g_held, counted atomically): a
 * container that would hold more drops what it holds and is expanded again
 * when its turn to be emitted comes, on the emitting thread, each member
 * record emitted as soon as it is made. That second way runs the expansion
 * twice (first without hashing, for the facts each container's record
 * states before its members: how many follow, limits, encryption); both
 * ways give the same records, whatever thread or budget. */
typedef struct cinfo {
    size_t id;                 /* member ordinal, or IMT__CTOP */
    imt_container_info ci;
    char *note;
} cinfo;

typedef struct msink {
    slot *top;
    imt_hasher *h;
    imt_cursor *c;
    const imt__lists *L;
    const imt_scan_opts *o;
    uint64_t *held_total;      /* shared by the workers (atomic) */
    int mode;                  /* KEEP, FACTS or EMIT */
    size_t ordinal;            /* members handed out so far */
    /* FACTS: the expansion facts, by member ordinal; EMIT reads them */
    cinfo *infos;
    size_t n_infos, infos_cap, next_info;
    /* EMIT */
    imt_scan_record_fn on_record;
    void *ctx;
    uint64_t *seq;
    imt_scan_progress *prog;
    int stopped;
    int oom;                   /* a fact could not be kept: the expansion
                                  counts as failed for want of memory */
} msink;
enum { MS_KEEP, MS_FACTS, MS_EMIT };

/* The path of s's record: a file in a folder, or an entry of a disk image. */
static const char *slot_path(const slot *s)
{
    return s->se ? s->se->path : s->e.path;
}

/* What a kept member record holds beyond its slot in the array. */
static uint64_t slot_bytes(const slot *s)
{
    return strlen(s->e.path) + 1 + (s->ci_note ? strlen(s->ci_note) + 1 : 0) +
           s->res.n_sub * sizeof(imt_subitem) +
           s->mt.n_matches * (sizeof(imt_scan_match) + sizeof(char *) + 64);
}

/* 0 when out of memory (the note could not be kept). */
static int set_ci(slot *s, const imt_container_info *ci)
{
    imt_container_info keep = s->ci; /* a member's place stays */
    s->ci = *ci;
    s->ci.depth = keep.depth;
    s->ci.index = keep.index;
    s->ci.size = keep.size;
    s->ci.has_mtime = keep.has_mtime;
    s->ci.mtime_s = keep.mtime_s;
    s->ci.mtime_ns = keep.mtime_ns;
    imt__free(s->ci_note);
    s->ci_note = ci->note && ci->note[0] ? imt__strdup(ci->note) : NULL;
    s->ci.note = NULL;
    return !(ci->note && ci->note[0] && !s->ci_note);
}

static void count_record(imt_scan_progress *p, const slot *s, const imt_scan_record *rec);
static void to_record(const slot *s, uint64_t seq, imt_scan_record *r);

/* One member: hash its stream, match it; keep, or emit, its record. */
static imt_err sink_member(void *ctx, const imt__member *m, size_t *id)
{
    msink *k = ctx;
    *id = k->ordinal++;
    if (k->mode == MS_FACTS) return IMT_OK; /* container.c reads the stream on */
    slot ms;
    memset(&ms, 0, sizeof ms);
    ms.e.path = imt__strdup(m->path);
    if (!ms.e.path) return IMT_E_NOMEM;
    ms.e.type = IMT_ENTRY_FILE;
    ms.ci.depth = m->depth;
    ms.ci.index = m->index;
    ms.ci.size = m->size;
    ms.ci.has_mtime = m->has_mtime;
    ms.ci.mtime_s = m->mtime_s;
    ms.ci.mtime_ns = m->mtime_ns;
    if (m->status != IMT_OK) {
        ms.status = m->status;
        imt__set_detail(ms.e.detail, sizeof ms.e.detail, "%s", m->detail ? m->detail : "");
        ms.detail_at = 1;
    } else {
        imt_hash_stream(k->h, m->stream, &ms.res);
        if (ms.res.status == IMT_E_INTERRUPTED) {
            slot_clear(&ms);
            return IMT_E_INTERRUPTED;
        }
        if (m->cut && m->cut[0]) { /* a limit or a data error ended it */
            ms.res.has_pdq = 0;
            ms.res.n_pdq = 0;
            ms.res.n_sub = 0;
            imt__set_detail(ms.res.detail, sizeof ms.res.detail, "%s", m->cut);
        }
        keep_subs(&ms);
        ms.read = 1;
        ms.status = ms.res.status;
        ms.detail_at = 2;
        imt_err e = IMT_OK;
        if (ms.status != IMT_E_NOMEM) e = imt__match(&ms.mt, k->c, k->L, k->o, &ms.res);
        if (e) {
            ms.status = e;
            imt__set_detail(ms.e.detail, sizeof ms.e.detail, "index lookup failed: %s",
                            imt_strerror(e));
            ms.detail_at = 1;
        }
    }
    if (k->mode == MS_EMIT) {
        /* its expansion facts, found by the first pass */
        if (k->next_info < k->n_infos && k->infos[k->next_info].id == *id) {
            cinfo *x = &k->infos[k->next_info++];
            set_ci(&ms, &x->ci);
            if (x->note && !(ms.ci_note = imt__strdup(x->note))) {
                slot_clear(&ms);
                return IMT_E_NOMEM;
            }
        }
        imt_scan_record rec;
        to_record(&ms, (*k->seq)++, &rec);
        count_record(k->prog, &ms, &rec);
        int stop = k->on_record(k->ctx, &rec);
        slot_clear(&ms);
        if (stop) {
            k->stopped = 1;
            return IMT_E_INTERRUPTED;
        }
        return IMT_OK;
    }
    /* KEEP: in the worker's slot, within the shared budget (the record's
     * own allocations, and the array of slots as it grows) */
    slot *t = k->top;
    size_t nc = t->members_cap, bytes = 0;
    if (t->n_members == t->members_cap) {
        nc = t->members_cap ? t->members_cap * 2 : 16;
        if (!imt__mul_ok(nc, sizeof *t->members, &bytes)) nc = t->members_cap;
    }
    uint64_t b = slot_bytes(&ms) + (uint64_t)(nc - t->members_cap) * sizeof *t->members, now;
#ifdef IMT_HAVE_OPENMP
#pragma omp atomic capture
#endif
    now = *k->held_total += b;
    slot *nm = t->members;
    if (now <= k->o->containers.max_held_bytes && nc != t->members_cap)
        nm = imt__realloc(t->members, bytes);
    if (now > k->o->containers.max_held_bytes || nc == t->n_members || !nm) {
        /* over the budget (or no memory): expanded again when emitted */
#ifdef IMT_HAVE_OPENMP
#pragma omp atomic
#endif
        *k->held_total -= b;
        slot_clear(&ms);
        return IMT_E_BUSY;
    }
    t->members = nm;
    t->members_cap = nc;
    t->held += b;
    t->members[t->n_members++] = ms;
    return IMT_OK;
}

static void sink_info(void *ctx, size_t id, const imt_container_info *ci)
{
    msink *k = ctx;
    if (k->mode == MS_KEEP) {
        slot *s = id == IMT__CTOP ? k->top : id < k->top->n_members ? &k->top->members[id] : NULL;
        if (s && !set_ci(s, ci)) k->oom = 1;
        return;
    }
    if (k->mode != MS_FACTS) return;
    if (k->n_infos == k->infos_cap) {
        size_t nc = k->infos_cap ? k->infos_cap * 2 : 16, bytes;
        cinfo *ni = imt__mul_ok(nc, sizeof *ni, &bytes) ? imt__realloc(k->infos, bytes) : NULL;
        if (!ni) {
            k->oom = 1;
            return;
        }
        k->infos = ni;
        k->infos_cap = nc;
    }
    cinfo *x = &k->infos[k->n_infos++];
    x->id = id;
    x->ci = *ci;
    x->ci.note = NULL;
    x->note = ci->note && ci->note[0] ? imt__strdup(ci->note) : NULL;
    if (ci->note && ci->note[0] && !x->note) k->oom = 1;
}

static int cinfo_cmp(const void *a, const void *b)
{
    size_t x = ((const cinfo *)a)->id, y = ((const cinfo *)b)->id;
    return x < y ? -1 : x > y;
}

typedef struct fdio {
    int fd;
} fdio;

static imt_err fd_pread(void *ctx, uint64_t off, void *buf, size_t cap, size_t *got)
{
    const fdio *f = ctx;
    *got = 0;
    for (;;) {
        ssize_t n = pread(f->fd, buf, cap, (off_t)off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return IMT_E_IO;
        *got = (size_t)n;
        return IMT_OK;
    }
}

/* Expand the file s (its bytes: io) in KEEP mode, on a worker. */
static void expand_keep(slot *s, const imt__io *io, imt_hasher *h, imt_cursor *c,
                        const imt__lists *L, const imt_scan_opts *o, uint64_t *held)
{
    msink k;
    memset(&k, 0, sizeof k);
    k.top = s;
    k.h = h;
    k.c = c;
    k.L = L;
    k.o = o;
    k.held_total = held;
    k.mode = MS_KEEP;
    imt__csink sink = {sink_member, sink_info, &k};
    imt_err e = imt__container_expand(io, s->res.format, slot_path(s), &o->containers, o->stop,
                                      &sink);
    if (e == IMT_OK && k.oom) e = IMT_E_NOMEM;
    if (e == IMT_OK) return;
    /* drop what it holds: expanded again when emitted (BUSY), or no record
     * of it at all (a stop request, like a file cut short) */
    for (size_t i = 0; i < s->n_members; i++) slot_clear(&s->members[i]);
    imt__free(s->members);
    s->members = NULL;
    s->n_members = s->members_cap = 0;
#ifdef IMT_HAVE_OPENMP
#pragma omp atomic
#endif
    *held -= s->held;
    s->held = 0;
    if (e == IMT_E_INTERRUPTED) s->done = 0;
    else s->deferred = 1; /* IMT_E_BUSY, or out of memory here: try again there */
}

static int finish(slot *s, imt_cursor *c, const imt__lists *L, const imt_scan_opts *o);

/* One file: open relative to its folder, hash, match. Runs on a worker.
 * Returns 0 when a stop request cut the file short (it has no record). */
static int work(slot *s, imt_hasher *h, imt_cursor *c, const imt__lists *L,
                 const imt_scan_opts *o, uint64_t *held)
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
    if (s->res.status == IMT_E_INTERRUPTED) {
        close(fd);
        return 0;
    }
    keep_subs(s); /* res.sub and res.frames are the hasher's, reused by its next file */
    s->read = 1;
    s->status = s->res.status;
    s->detail = s->res.detail;
    if (s->res.status == IMT_E_IO || s->res.status == IMT_E_NOMEM) {
        close(fd);
        return 1;
    }
    imt_err e = imt__match(&s->mt, c, L, o, &s->res);
    if (e) {
        s->status = e;
        imt__set_detail(s->e.detail, sizeof s->e.detail, "index lookup failed: %s",
                        imt_strerror(e));
        s->detail = s->e.detail;
    }
    int done = 1;
    if (o->containers.enabled && imt_format_is_container(s->res.format)) {
        s->done = 1;
        fdio f = {fd};
        imt__io io = {fd_pread, &f, s->res.file_size};
        expand_keep(s, &io, h, c, L, o, held);
        done = s->done;
    }
    close(fd);
    return done;
}

/* A file inside a disk image (or a carved item): read through the worker's
 * own image and TSK handles (rd); a container is expanded as a folder's is,
 * its bytes read at random through rd (imt__sreader_io). */
static int work_image(slot *s, imt_hasher *h, imt__sreader *rd, imt_cursor *c,
                      const imt__lists *L, const imt_scan_opts *o, uint64_t *held)
{
    imt_stream st;
    imt__sentry *e = s->se;
    imt_err err = imt__sreader_begin(rd, e, &st, e->detail, sizeof e->detail);
    if (err) {
        s->status = err == IMT_E_NOMEM ? IMT_E_NOMEM : IMT_E_IO;
        s->detail = e->detail;
        return 1;
    }
    imt__io rio = imt__sreader_io(rd); /* a video seeks */
    imt__hash_stream_io(h, &st, &rio, &s->res);
    if (s->res.status == IMT_E_IO) {
        size_t l = strlen(s->res.detail);
        imt__set_detail(s->res.detail + l, sizeof s->res.detail - l, ": %s",
                        imt__sreader_error(rd));
    }
    /* A carved item that ended early is partial even when its decoder did
     * not notice (as imgtriage carve says). */
    if (e->carved && e->hit.truncated && s->res.status == IMT_OK && !s->res.partial) {
        s->res.partial = 1;
        imt__set_detail(s->res.detail, sizeof s->res.detail, "carved item truncated (%s)",
                        imt_carve_end_name(e->hit.end));
    }
    int done = finish(s, c, L, o);
    if (done && s->res.status != IMT_E_IO && s->res.status != IMT_E_NOMEM &&
        o->containers.enabled && imt_format_is_container(s->res.format)) {
        s->done = 1;
        expand_keep(s, &rio, h, c, L, o, held);
        done = s->done;
    }
    imt__sreader_end(rd);
    return done;
}

/* After the read: keep the sub-items and frames, match. 0 when a stop
 * request cut the file short (it has no record). */
static int finish(slot *s, imt_cursor *c, const imt__lists *L, const imt_scan_opts *o)
{
    if (s->res.status == IMT_E_INTERRUPTED) return 0;
    keep_subs(s);
    s->read = 1;
    s->status = s->res.status;
    s->detail = s->res.detail;
    if (s->res.status == IMT_E_IO || s->res.status == IMT_E_NOMEM) return 1;
    imt_err e = imt__match(&s->mt, c, L, o, &s->res);
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

void imt__record_stat(imt_scan_record *r, const struct stat *st)
{
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
    r->detail = s->detail_at == 1 ? s->e.detail : s->detail_at == 2 ? s->res.detail
              : s->detail ? s->detail : "";
    if (s->se) {
        const imt__sentry *e = s->se;
        r->loc = &e->loc;
        r->carved = e->carved ? &e->hit : NULL;
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
        imt__matches_record(&s->mt, r);
        r->container = s->ci; /* a container in an image: its expansion facts */
        r->container.note = s->ci_note ? s->ci_note : "";
        return;
    }
    r->have_stat = s->e.have_stat;
    if (r->have_stat) imt__record_stat(r, &s->e.st);
    r->link_target = s->e.link_target;
    r->hardlink_of = s->e.hardlink_of;
    r->hash = s->read ? &s->res : NULL;
    imt__matches_record(&s->mt, r);
    r->container = s->ci;
    r->container.note = s->ci_note ? s->ci_note : "";
}

static void count_record(imt_scan_progress *p, const slot *s, const imt_scan_record *rec)
{
    p->entries++;
    if (s->read) {
        p->files++;
        p->bytes += s->res.file_size;
        if (s->res.has_pdq) p->images++;
    }
    if (rec->scan_error) p->errors++;
    for (size_t k = 0; k < s->mt.n_matches; k++)
        if (s->mt.matches[k].disposition == IMT_DISP_ALERT) {
            p->hits++;
            break;
        }
}

/* A container whose members were not kept (over the budget): open it again
 * and expand it here, emitting each member's record as it is made. The
 * first pass (no hashing) finds the facts the container records state
 * before their members. Returns IMT_E_INTERRUPTED when stopped. */
static imt_err emit_deferred(slot *s, uint64_t *seq, imt_hasher *h, imt_cursor *c,
                             imt__sreader *rd, const imt__lists *L, const imt_scan_opts *o,
                             imt_scan_record_fn on_record, void *ctx, imt_scan_progress *prog)
{
    imt_err err = IMT_OK;
    msink k;
    memset(&k, 0, sizeof k);
    int fd = -1, have_io = 0, in_image = s->se != NULL;
    fdio f = {-1};
    imt__io io;
    memset(&io, 0, sizeof io);
    if (in_image) {
        /* a container inside a disk image: read again through the
         * emitting thread's own image handles (evidence images are not
         * expected to change; a read failure is noted as for a folder) */
        imt_stream ist;
        char d[200];
        if (imt__sreader_begin(rd, s->se, &ist, d, sizeof d) == IMT_OK) {
            io = imt__sreader_io(rd);
            have_io = 1;
        }
    } else {
        int dirfd = s->e.dir ? s->e.dir->fd : AT_FDCWD;
        fd = imt__open_evidence(dirfd, s->e.name, O_NONBLOCK | (s->e.dir ? O_NOFOLLOW : 0));
        struct stat st;
        if (fd >= 0 && fstat(fd, &st) == 0 && st.st_ino == s->e.st.st_ino &&
            st.st_size == s->e.st.st_size && st.st_mtim.tv_sec == s->e.st.st_mtim.tv_sec &&
            st.st_mtim.tv_nsec == s->e.st.st_mtim.tv_nsec) {
            f.fd = fd;
            io = (imt__io){fd_pread, &f, s->res.file_size};
            have_io = 1;
        }
    }
    if (!have_io) {
        imt_container_info ci;
        memset(&ci, 0, sizeof ci);
        ci.expanded = 1;
        ci.note = "the container changed or vanished before its members could be read "
                  "(it was read again to expand it): members not examined";
        set_ci(s, &ci);
        s->status = IMT_E_IO;
        goto emit_top;
    }
    k.top = s;
    k.h = h;
    k.c = c;
    k.L = L;
    k.o = o;
    k.mode = MS_FACTS;
    imt__csink sink = {sink_member, sink_info, &k};
    err = imt__container_expand(&io, s->res.format, slot_path(s), &o->containers, o->stop, &sink);
    if (!err && k.oom) err = IMT_E_NOMEM;
    if (err) goto cleanup; /* stopped (no record, as for a file cut short), or no memory */
    if (k.n_infos) qsort(k.infos, k.n_infos, sizeof *k.infos, cinfo_cmp);
    if (k.n_infos && k.infos[k.n_infos - 1].id == IMT__CTOP) {
        cinfo *x = &k.infos[k.n_infos - 1]; /* last: never an ordinal */
        set_ci(s, &x->ci);
        if (x->note && !(s->ci_note = imt__strdup(x->note))) { err = IMT_E_NOMEM; goto cleanup; }
    }
emit_top:;
    imt_scan_record rec;
    to_record(s, (*seq)++, &rec);
    count_record(prog, s, &rec);
    if (on_record(ctx, &rec)) { err = IMT_E_INTERRUPTED; goto cleanup; }
    if (!have_io || k.mode != MS_FACTS) goto cleanup;
    k.mode = MS_EMIT;
    k.ordinal = 0;
    k.on_record = on_record;
    k.ctx = ctx;
    k.seq = seq;
    k.prog = prog;
    imt__csink sink2 = {sink_member, sink_info, &k};
    err = imt__container_expand(&io, s->res.format, slot_path(s), &o->containers, o->stop, &sink2);
cleanup:
    for (size_t i = 0; i < k.n_infos; i++)
        imt__free(k.infos[i].note);
    imt__free(k.infos);
    if (fd >= 0) close(fd);
    if (in_image) imt__sreader_end(rd);
    return err;
}

/* The entries of the walk, with each PATH argument whose bytes sniff as a
 * disk image (or a block device) replaced by the entries of the image, in
 * the image's order (engine/source). */
typedef struct source {
    imt__walk *w;
    imt__enum *en;
    const volatile int *stop;
    imt__sentry **list;      /* imt__scan_entries: the caller's entries, taken */
    size_t n_list, at;
} source;

static imt_err source_next(source *src, slot *s, int *done)
{
    imt_err err = IMT_OK;
    if (src->list) {
        *done = src->at >= src->n_list;
        if (!*done) {
            s->se = src->list[src->at];
            src->list[src->at++] = NULL;
        }
        return IMT_OK;
    }
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

static imt_err scan_main(imt_index *idx, const char *const *paths, size_t n_paths,
                         imt__sentry **list, size_t n_list, const imt_scan_opts *opts,
                         imt_scan_record_fn on_record, void *ctx, char *detail, size_t cap)
{
    imt_err err = IMT_OK;
    imt_scan_opts o;
    imt__walk *w = NULL;
    source src = {NULL, NULL, NULL, list, n_list, 0};
    imt__sreader **rds = NULL;
    imt_hasher **hs = NULL;
    imt_cursor **cs = NULL;
    slot *slots = NULL;
    job *order = NULL;
    imt__lists L = {NULL, 0};
    int nt = 0, stopped = 0;
    size_t batch;
    uint64_t seq = 0, held = 0;
    imt_scan_progress prog;
    uint64_t t0 = imt__now_ms();
    memset(&prog, 0, sizeof prog);
    if (detail && cap) detail[0] = '\0';

    if (!on_record || (n_paths && !paths) || (n_list && !list)) return IMT_E_INVALID;
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

    if (idx) IMT_TRY(imt__lists_load(&L, idx));
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
    if (!list) IMT_TRY(imt__walk_open(&w, paths, n_paths, o.one_file_system, o.stop));
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
                int claimed = o.skip ? o.skip(o.ctx, s->se->path, s->se->type) : 0;
                if (claimed) {
                    s->skipped = 1; /* with its members' records, as for a folder's file */
                    s->claimed_members = claimed > 1 ? (uint64_t)claimed - 1 : 0;
                } else if (s->se->readable && s->se->status == IMT_OK)
                    s->needs_hash = 1;
                continue;
            }
            s->status = s->e.status;
            s->detail = s->e.detail;
            int claimed = o.skip ? o.skip(o.ctx, s->e.path, s->e.type) : 0;
            if (claimed) {
                s->skipped = 1;
                s->claimed_members = claimed > 1 ? (uint64_t)claimed - 1 : 0;
            } else if (s->e.type == IMT_ENTRY_FILE && s->e.status == IMT_OK && !s->e.repeat)
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
        /* fewer files than workers (the last batch, a few large videos):
         * the idle workers' share goes to the video decoders */
        for (int t = 0; t < nt; t++)
            imt__hasher_set_video_threads(hs[t], cnt > 0 && cnt < nt ? nt / (int)cnt : 1);
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
            s->done = s->se ? work_image(s, hs[t], rds[t], cs[t], &L, &o, &held)
                            : work(s, hs[t], cs[t], &L, &o, &held);
        }

        for (size_t i = 0; i < n && !stopped; i++) {
            slot *s = &slots[i];
            if (s->needs_hash && !s->done) {
                stopped = 1; /* asked to stop: emit only a prefix */
                break;
            }
            if (s->deferred) {
                imt_err e = emit_deferred(s, &seq, hs[0], cs[0], rds[0], &L, &o, on_record, ctx, &prog);
                if (e == IMT_E_INTERRUPTED) stopped = 1;
                else if (e) { err = e; goto cleanup; }
                continue;
            }
            imt_scan_record rec;
            to_record(s, seq++, &rec);
            seq += s->claimed_members;
            count_record(&prog, s, &rec);
            if (on_record(ctx, &rec)) stopped = 1;
            for (size_t m = 0; m < s->n_members && !stopped; m++) {
                to_record(&s->members[m], seq++, &rec);
                count_record(&prog, &s->members[m], &rec);
                if (on_record(ctx, &rec)) stopped = 1;
            }
        }
        for (size_t i = 0; i < n; i++) slot_clear(&slots[i]);
        held = 0; /* every slot's members were freed */
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
    for (size_t i = src.at; list && i < n_list; i++) {
        imt__sentry_free(list[i]);
        list[i] = NULL;
    }
    return err;
}

imt_err imt_scan_run(imt_index *idx, const char *const *paths, size_t n_paths,
                     const imt_scan_opts *opts, imt_scan_record_fn on_record, void *ctx,
                     char *detail, size_t cap)
{
    return scan_main(idx, paths, n_paths, NULL, 0, opts, on_record, ctx, detail, cap);
}

imt_err imt__scan_entries(imt_index *idx, struct imt__sentry **v, size_t n,
                          const imt_scan_opts *opts, imt_scan_record_fn on_record, void *ctx,
                          char *detail, size_t cap)
{
    if (!n) return IMT_OK;
    return scan_main(idx, NULL, 0, v, n, opts, on_record, ctx, detail, cap);
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
