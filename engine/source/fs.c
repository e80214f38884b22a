/* engine/source/fs.c -- every file in a disk image, in the image's order:
 * volume system (DOS, GPT, ... through TSK) -> each allocated partition's
 * file system (or one file system filling the image) -> our walk of its
 * folders (walk_names: TSK's order, each folder's inode checked before TSK
 * loads it) over allocated and unallocated names, orphans included -> one
 * entry per data stream (NTFS alternate data streams are entries of their
 * own).
 *
 * Why a producer thread: a directory may hold millions of names and the
 * consumer reads at its own pace. The walk runs on a
 * thread of its own with its own image handles and hands entries over a
 * bounded queue, so the memory held here is QCAP entries whatever the
 * image holds (TSK itself holds one directory's names at a time). The
 * order is TSK's, which depends only on the image: records come out the
 * same on every run and with any number of workers.
 *
 * Hostile images: the walk refuses folder loops, cross-linked folders,
 * absurd depth and folders claiming more than the file system holds, each
 * as an entry (walk_names); a partition yields at most max_entries entries,
 * then an error entry; sizes are the file system's, read through TSK, which
 * refuses runs outside the file system. */
#include "source.h"

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <tsk/libtsk.h>
#include <unistd.h>

#define QCAP 1024

struct imt__enum {
    char *path;
    imt__img_kind kind;
    imt__src_limits lim;
    const volatile int *stop;
    pthread_t th;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv_put, cv_get;
    imt__sentry *q[QCAP];
    size_t head, count;
    int finished, cancel;
    imt_err err;              /* IMT_E_NOMEM from the producer */
    /* producer state */
    imt__img *img;
    TSK_FS_INFO *fs;
    int part_no;
    uint64_t part_off, part_len;
    char part_type[64], fs_type[32];
    uint64_t n_in_part;
    int capped;
    uint64_t uncarved_areas, uncarved_bytes; /* no_carve: what was left */
    int probing;              /* in the APFS probe's child: entries are dropped */
    int vol_no;               /* APFS volume K ("!vK"), 0 outside one */
    uint64_t vol_block;
    char vol_name[256];
};

const char *imt_alloc_status_name(imt_alloc_status s)
{
    switch (s) {
    case IMT_ALLOC_ALLOCATED: return "allocated";
    case IMT_ALLOC_DELETED: return "deleted";
    case IMT_ALLOC_ORPHAN: return "orphan";
    case IMT_ALLOC_CARVED: return "carved";
    }
    return "unknown";
}

void imt__sentry_free(imt__sentry *e)
{
    if (!e) return;
    imt__free(e->path);
    imt__free(e->strs);
    imt__free(e->runs);
    imt__free(e);
}

static int cancelled(imt__enum *en)
{
    return en->cancel || (en->stop && *en->stop);
}

/* Hand e to the consumer; 0, or -1 when the consumer is gone (e freed). */
static int push(imt__enum *en, imt__sentry *e)
{
    if (en->probing) { /* the child of apfs_probe: nobody reads them (and
                          the queue's lock may be a copy held by a thread
                          the child does not have) */
        imt__sentry_free(e);
        return 0;
    }
    pthread_mutex_lock(&en->mu);
    while (en->count == QCAP && !en->cancel) pthread_cond_wait(&en->cv_put, &en->mu);
    if (en->cancel) {
        pthread_mutex_unlock(&en->mu);
        imt__sentry_free(e);
        return -1;
    }
    en->q[(en->head + en->count) % QCAP] = e;
    en->count++;
    pthread_cond_signal(&en->cv_get);
    pthread_mutex_unlock(&en->mu);
    return 0;
}

/* A new entry with its path "IMAGE[!pN[!vK][/rel[name]]][:stream]" and
 * strings. */
static imt__sentry *new_entry(imt__enum *en, int with_part, const char *rel, const char *name,
                              const char *stream)
{
    imt__sentry *e = imt__calloc(1, sizeof *e);
    if (!e) return NULL;
    const char *img = en->path;
    size_t il = strlen(img), rl = rel ? strlen(rel) : 0, nl = name ? strlen(name) : 0,
           sl = stream ? strlen(stream) : 0;
    size_t cap = il + rl + nl + sl + 48;
    e->path = imt__malloc(cap);
    size_t pl = strlen(en->part_type), fl = strlen(en->fs_type), vl = strlen(en->vol_name);
    e->strs = imt__malloc(il + pl + fl + sl + vl + 5);
    if (!e->path || !e->strs) {
        imt__sentry_free(e);
        return NULL;
    }
    char vol[16] = "";
    if (en->vol_no) snprintf(vol, sizeof vol, "!v%d", en->vol_no);
    if (with_part)
        snprintf(e->path, cap, "%s!p%d%s%s%s%s%s%s", img, en->part_no, vol,
                 rel || name ? "/" : "", rel ? rel : "", name ? name : "", stream ? ":" : "",
                 stream ? stream : "");
    else
        snprintf(e->path, cap, "%s", img);
    char *s = e->strs;
    memcpy(s, img, il + 1);
    e->loc.image = s;
    s += il + 1;
    memcpy(s, en->part_type, pl + 1);
    e->loc.part_type = s;
    s += pl + 1;
    memcpy(s, en->fs_type, fl + 1);
    e->loc.fs_type = s;
    s += fl + 1;
    if (stream) {
        memcpy(s, stream, sl + 1);
        e->loc.stream = s;
        s += sl + 1;
    }
    if (en->vol_no) {
        memcpy(s, en->vol_name, vl + 1);
        e->loc.volume_name = s;
        e->loc.volume = en->vol_no;
        e->vol_block = en->vol_block;
    }
    e->loc.partition = en->part_no;
    e->loc.part_offset = en->part_off;
    e->loc.part_length = en->part_len;
    e->loc.first_offset = -1;
    e->img_kind = en->kind;
    e->type = IMT_ENTRY_FILE;
    return e;
}

/* An entry that is not a file: the image, a partition, a region. */
static int push_problem(imt__enum *en, int with_part, imt_entry_type type, imt_err st,
                        int scan_error, const char *fmt, const char *arg)
{
    imt__sentry *e = new_entry(en, with_part, NULL, NULL, NULL);
    if (!e) {
        en->err = IMT_E_NOMEM;
        return -1;
    }
    e->type = type;
    e->status = st;
    e->scan_error = scan_error;
    imt__set_detail(e->detail, sizeof e->detail, fmt, arg);
    return push(en, e);
}

static const char *tsk_msg(void)
{
    const char *m = tsk_error_get();
    return m && m[0] ? m : "no detail";
}

/* Keep the attribute's runs (at most max_runs), the first byte's image
 * offset, and whether any block of a deleted file is allocated again. */
static imt_err take_runs(imt__enum *en, imt__sentry *e, const TSK_FS_ATTR *a, int deleted)
{
    const TSK_FS_INFO *fs = en->fs;
    uint64_t bs = fs->block_size, checked = 0, size = (uint64_t)a->size;
    if (!(a->flags & TSK_FS_ATTR_NONRES)) return IMT_OK; /* resident: in metadata */
    size_t max = en->lim.max_runs, n = 0;
    for (const TSK_FS_ATTR_RUN *r = a->nrd.run; r; r = r->next) {
        uint64_t foff = (uint64_t)r->offset * bs, len = (uint64_t)r->len * bs;
        if (foff >= size) break;
        if (len > size - foff) len = size - foff;
        int sparse = (r->flags & (TSK_FS_ATTR_RUN_FLAG_SPARSE | TSK_FS_ATTR_RUN_FLAG_FILLER)) != 0;
        uint64_t ioff = sparse ? 0 : en->part_off + (uint64_t)r->addr * bs;
        if (foff == 0 && !sparse) e->loc.first_offset = (int64_t)ioff;
        if (deleted && !sparse && !e->loc.overwritten) {
            for (uint64_t k = 0; k < r->len && checked < en->lim.max_check_blocks; k++, checked++)
                if (fs->block_getflags((TSK_FS_INFO *)fs, r->addr + k) & TSK_FS_BLOCK_FLAG_ALLOC) {
                    e->loc.overwritten = 1;
                    break;
                }
        }
        if (n == max) {
            e->loc.runs_omitted++;
            continue;
        }
        if (!e->runs) {
            e->runs = imt__calloc(max ? max : 1, sizeof *e->runs);
            if (!e->runs) return IMT_E_NOMEM;
        }
        e->runs[n].file_offset = foff;
        e->runs[n].img_offset = ioff;
        e->runs[n].len = len;
        e->runs[n].sparse = sparse;
        n++;
    }
    e->loc.runs = e->runs;
    e->loc.n_runs = n;
    return IMT_OK;
}

/* The bytes a file system spans. An APFS volume's block_count is the
 * blocks it uses, not the space its files may take (they share the
 * container's): for APFS, the container's size. */
static uint64_t fs_bytes_of(const TSK_FS_INFO *fs)
{
    uint64_t blocks = TSK_FS_TYPE_ISAPFS(fs->ftype) ? (uint64_t)fs->last_block + 1
                                                    : (uint64_t)fs->block_count;
    return blocks * fs->block_size;
}

/* A size no file system of this size can hold: beyond twice the file
 * system (sparse files may exceed it, not by that much in evidence). */
static int absurd_size(const imt__enum *en, TSK_OFF_T size)
{
    uint64_t fs_bytes = fs_bytes_of(en->fs);
    return fs_bytes && size > 0 && (uint64_t)size / 2 > fs_bytes;
}

static int is_default_stream(const TSK_FS_ATTR *a)
{
    return !a->name || !a->name[0] || strcmp(a->name, "$Data") == 0;
}

/* One data stream of f: default (stream NULL) or named. */
static int push_stream(imt__enum *en, TSK_FS_FILE *f, const char *dir, const TSK_FS_ATTR *a,
                       const char *stream, imt_alloc_status alloc, int overwritten)
{
    const TSK_FS_META *m = f->meta;
    imt__sentry *e = new_entry(en, 1, dir, f->name->name, stream);
    if (!e) goto nomem;
    e->loc.meta_addr = m->addr;
    e->loc.alloc = alloc;
    e->loc.overwritten = overwritten;
    e->loc.atime_s = m->atime;
    e->loc.atime_ns = (int32_t)m->atime_nano;
    e->loc.crtime_s = m->crtime;
    e->loc.crtime_ns = (int32_t)m->crtime_nano;
    e->size = a ? (uint64_t)(a->size > 0 ? a->size : 0) : (uint64_t)(m->size > 0 ? m->size : 0);
    e->mode = (uint32_t)m->mode;
    e->uid = (uint32_t)m->uid;
    e->gid = (uint32_t)m->gid;
    e->nlink = (uint32_t)m->nlink;
    e->mtime_s = m->mtime;
    e->mtime_ns = (int32_t)m->mtime_nano;
    e->ctime_s = m->ctime;
    e->ctime_ns = (int32_t)m->ctime_nano;
    e->fs_type = (int)en->fs->ftype;
    if (a) {
        e->attr_type = (uint32_t)a->type;
        e->attr_id = a->id;
        e->has_attr = 1;
        if (take_runs(en, e, a, alloc != IMT_ALLOC_ALLOCATED)) goto nomem;
    }
    /* A size no file system of this size can hold (beyond twice the file
     * system: sparse files may exceed it, not by that much in evidence) is
     * damage or hostility: reading it as holes could take hours. */
    uint64_t fs_bytes = fs_bytes_of(en->fs);
    if (absurd_size(en, (TSK_OFF_T)e->size)) {
        e->status = IMT_E_TOO_LARGE;
        e->scan_error = 1;
        imt__set_detail(e->detail, sizeof e->detail,
                        "claims %llu bytes, more than twice its file system (%llu): not read",
                        (unsigned long long)e->size, (unsigned long long)fs_bytes);
        return push(en, e);
    }
    e->readable = 1;
    return push(en, e);
nomem:
    imt__sentry_free(e);
    en->err = IMT_E_NOMEM;
    return -1;
}

/* One name of a folder (TSK's walk callback until the walk became ours:
 * the same contract). dir is the folder's path, "" or "a/b/". */
static TSK_WALK_RET_ENUM visit_name(imt__enum *en, TSK_FS_FILE *f, const char *dir)
{
    if (cancelled(en)) return TSK_WALK_STOP;
    if (!f->name || !f->name->name) return TSK_WALK_CONT;
    const char *nm = f->name->name;
    if (strcmp(nm, ".") == 0 || strcmp(nm, "..") == 0) return TSK_WALK_CONT;
    if (++en->n_in_part > en->lim.max_entries) {
        en->capped = 1;
        return TSK_WALK_STOP;
    }
    int orphan = strncmp(dir, "$OrphanFiles", 12) == 0;
    int name_unalloc = (f->name->flags & TSK_FS_NAME_FLAG_UNALLOC) != 0;
    if (!f->meta) {
        if (f->name->type != TSK_FS_NAME_TYPE_REG) return TSK_WALK_CONT;
        /* A deleted name whose metadata is gone: nothing to read. */
        imt__sentry *e = new_entry(en, 1, dir, nm, NULL);
        if (!e) {
            en->err = IMT_E_NOMEM;
            return TSK_WALK_ERROR;
        }
        e->loc.meta_addr = f->name->meta_addr;
        e->loc.alloc = orphan ? IMT_ALLOC_ORPHAN : IMT_ALLOC_DELETED;
        e->fs_type = (int)en->fs->ftype;
        e->status = IMT_E_NOT_FOUND;
        imt__set_detail(e->detail, sizeof e->detail,
                        "a deleted name whose metadata is gone: no content to read");
        return push(en, e) ? TSK_WALK_STOP : TSK_WALK_CONT;
    }
    const TSK_FS_META *m = f->meta;
    int meta_unalloc = (m->flags & TSK_FS_META_FLAG_UNALLOC) != 0;
    imt_alloc_status alloc = orphan ? IMT_ALLOC_ORPHAN
                             : name_unalloc || meta_unalloc ? IMT_ALLOC_DELETED
                                                            : IMT_ALLOC_ALLOCATED;
    /* A deleted name whose metadata belongs to a file again. */
    int overwritten = alloc != IMT_ALLOC_ALLOCATED && !meta_unalloc;
    int is_reg = m->type == TSK_FS_META_TYPE_REG;
    if (!is_reg && m->type != TSK_FS_META_TYPE_DIR) return TSK_WALK_CONT; /* virtual, links */
    if (is_reg && absurd_size(en, m->size))
        /* before TSK loads its block list: for an ext2/3 inode claiming
         * gigabytes that list is built one block at a time, each append
         * walking the list (quadratic: minutes for a 20 KB image) */
        return push_stream(en, f, dir, NULL, NULL, alloc, overwritten) ? TSK_WALK_STOP
                                                                       : TSK_WALK_CONT;
    if (TSK_FS_TYPE_ISNTFS(en->fs->ftype)) {
        int n = tsk_fs_file_attr_getsize(f);
        const TSK_FS_ATTR *def = NULL;
        for (int i = 0; i < n; i++) {
            const TSK_FS_ATTR *a = tsk_fs_file_attr_get_idx(f, i);
            if (!a || a->type != TSK_FS_ATTR_TYPE_NTFS_DATA) continue;
            if (is_default_stream(a)) {
                if (!def) def = a;
                continue;
            }
            if (push_stream(en, f, dir, a, a->name, alloc, overwritten)) return TSK_WALK_STOP;
        }
        if (is_reg && push_stream(en, f, dir, def, NULL, alloc, overwritten))
            return TSK_WALK_STOP;
        return TSK_WALK_CONT;
    }
    if (!is_reg) return TSK_WALK_CONT;
    const TSK_FS_ATTR *a = tsk_fs_file_attr_get(f);
    tsk_error_reset();
    return push_stream(en, f, dir, a, NULL, alloc, overwritten) ? TSK_WALK_STOP : TSK_WALK_CONT;
}


/* ---- the directory walk ----------------------------------------------
 * Ours, not tsk_fs_dir_walk(RECURSE): TSK opens a folder (and, for an
 * ext2/3 inode, builds its whole block list, one tsk_fs_attr_append_run per
 * block, each walking the list: quadratic) before anything of ours runs, so
 * a folder inode claiming gigabytes held a scan for minutes. Here each
 * folder's inode is looked at first (tsk_fs_file_open_meta / file_add_meta
 * load the inode only; the block list is loaded when the content is read)
 * and a folder is refused, as an entry of its own, when it claims more
 * bytes than its file system or the image holds, when it is already on the
 * path (a loop) or was walked already (cross-linked folders: each walked
 * once, or a folder linked twice at each level would be walked 2^depth
 * times), or when the path is deeper than WALK_MAX_DEPTH or longer than
 * WALK_MAX_PATH. The walk goes on with the next name.
 *
 * The order is tsk_fs_dir_walk's (TSK 4.11.1, fs_dir.c), so records are
 * those of before: depth first, each name before its folder's names; the
 * root folder's names in TSK's priority order (prioritizeDirNames below);
 * a name's inode loaded as TSK does (file_add_meta on a TSK_FS_FILE whose
 * name points into the folder's names, no sequence check); the same
 * conditions to go into a folder. Differences, on damaged images only: a
 * folder that cannot be opened is an entry (TSK skipped it silently; a
 * deleted folder's names being gone is normal and stays silent); a path
 * beyond TSK's 128 levels or 4096 bytes is walked (TSK dropped the rest of
 * the folder holding it); loops, cross-links and absurd sizes are entries.
 *
 * $OrphanFiles: TSK lists the unallocated inodes that no name reaches, so
 * it needs the inodes reached by deleted names (fs->list_inum_named); left
 * empty it makes them with a tsk_fs_dir_walk of its own, unguarded. The
 * walk gathers them as TSK's would (names with unallocated metadata,
 * outside $OrphanFiles) and hands them over before opening $OrphanFiles.
 * (TSK would also count the names under root folders that sort after
 * $OrphanFiles: "pagefile*" and "hiberfil*", files in practice.) TSK
 * walks by itself inside opening $OrphanFiles: into unallocated orphan
 * folders (to leave their names out; on ext2/3/4 an unallocated folder
 * inode claiming more than the file system holds makes walk_enter list no
 * orphans and say so, as TSK would load its block list quadratically), and on FAT
 * and exFAT its inode walk's tsk_fs_dir_walk of the whole tree (to find the
 * folders' sectors; a FAT folder's size comes from its cluster chain, so
 * the ext2 block-list case does not arise there).
 *
 * Memory: one TSK_FS_DIR (every name of the folder) per level of the
 * current path, a path of at most WALK_MAX_PATH bytes, the walked folders'
 * inode numbers (16 bytes per folder), the deleted names' inode numbers
 * (TSK's list, as before); nothing per file. */
#define WALK_MAX_DEPTH 1024
#define WALK_MAX_PATH 32768

typedef struct wlevel {
    TSK_FS_DIR *dir;
    size_t *order;            /* the root's names in TSK's order, else NULL */
    size_t i;                 /* next position */
    size_t plen;              /* length of the path of this folder's names */
    TSK_INUM_T addr;
} wlevel;

typedef struct walker {
    imt__enum *en;
    TSK_FS_INFO *fs;
    wlevel *lv;
    size_t depth, cap;
    char *path;
    size_t pcap;
    uint64_t *seen;           /* open addressing: inode + 1, 0 = empty */
    size_t nseen, seencap;
    TSK_LIST *named;          /* inodes reached by deleted names */
    int save_named;
    uint64_t dir_bound;       /* the most bytes a folder may claim */
} walker;

/* TSK 4.11.1's prioritizeDirNames: the root's names whose start matches a
 * user folder first, then the rest, then "Windows" and "$Orphan", then
 * "pagefile" and "hiberfil"; each class in the folder's order. */
static int root_class(const char *n)
{
    static const struct { const char *p; int c; } pr[] = {
        {"Users", 0},   {"Documents and Settings", 0}, {"home", 0},    {"ProgramData", 0},
        {"Windows", 2}, {"$Orphan", 2},                {"pagefile", 3}, {"hiberfil", 3}};
    if (!n) return 1;
    for (size_t k = 0; k < sizeof pr / sizeof pr[0]; k++)
        if (strncasecmp(n, pr[k].p, strlen(pr[k].p)) == 0) return pr[k].c;
    return 1;
}

static int seen_has(const walker *w, TSK_INUM_T a)
{
    if (!w->seencap) return 0;
    uint64_t k = (uint64_t)a + 1;
    for (size_t h = (size_t)(k * 0x9E3779B97F4A7C15ull) & (w->seencap - 1);; h = (h + 1) & (w->seencap - 1)) {
        if (w->seen[h] == k) return 1;
        if (!w->seen[h]) return 0;
    }
}

static int seen_add(walker *w, TSK_INUM_T a)
{
    if (2 * (w->nseen + 1) > w->seencap) { /* load at most 1/2 */
        size_t nc = w->seencap ? 2 * w->seencap : 64;
        uint64_t *ns = imt__calloc(nc, sizeof *ns);
        if (!ns) return -1;
        for (size_t j = 0; j < w->seencap; j++) {
            uint64_t k = w->seen[j];
            if (!k) continue;
            size_t h = (size_t)(k * 0x9E3779B97F4A7C15ull) & (nc - 1);
            while (ns[h]) h = (h + 1) & (nc - 1);
            ns[h] = k;
        }
        imt__free(w->seen);
        w->seen = ns;
        w->seencap = nc;
    }
    uint64_t k = (uint64_t)a + 1;
    size_t h = (size_t)(k * 0x9E3779B97F4A7C15ull) & (w->seencap - 1);
    while (w->seen[h]) {
        if (w->seen[h] == k) return 0;
        h = (h + 1) & (w->seencap - 1);
    }
    w->seen[h] = k;
    w->nseen++;
    return 0;
}

/* A folder the walk does not go into, as an entry: its path, inode and
 * status; a scan error when names are missing from the scan because of it
 * (not for a deleted folder: its space is carved anyway; not for a loop or
 * a cross-link: its names are listed under another path). -1: stop. */
static int push_dir_problem(walker *w, const char *dir, const char *name, TSK_INUM_T addr,
                            int deleted, int scan_error, imt_err st, const char *fmt, ...)
{
    imt__enum *en = w->en;
    imt__sentry *e = new_entry(en, 1, dir[0] ? dir : NULL, name && name[0] ? name : NULL, NULL);
    if (!e) {
        en->err = IMT_E_NOMEM;
        return -1;
    }
    e->type = IMT_ENTRY_DIR;
    e->status = st;
    e->scan_error = scan_error && !deleted;
    e->loc.meta_addr = addr;
    e->loc.alloc = strncmp(dir, "$OrphanFiles", 12) == 0 ? IMT_ALLOC_ORPHAN
                   : deleted                            ? IMT_ALLOC_DELETED
                                                        : IMT_ALLOC_ALLOCATED;
    e->fs_type = (int)en->fs->ftype;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->detail, sizeof e->detail, fmt, ap);
    va_end(ap);
    return push(en, e);
}

/* Open folder addr (its name ends the path at w->path[plen..]) as the next
 * level. 0 also when it is refused (an entry says why); -1: stop. */
/* The first unallocated folder inode claiming more than bound bytes. */
typedef struct unalloc_dir_check {
    uint64_t bound;
    TSK_INUM_T inum;
    uint64_t size;
} unalloc_dir_check;

static TSK_WALK_RET_ENUM unalloc_dir_cb(TSK_FS_FILE *f, void *ptr)
{
    unalloc_dir_check *c = ptr;
    if (f->meta && f->meta->type == TSK_FS_META_TYPE_DIR && f->meta->size > 0 &&
        (uint64_t)f->meta->size > c->bound) {
        c->inum = f->meta->addr;
        c->size = (uint64_t)f->meta->size;
        return TSK_WALK_STOP;
    }
    return TSK_WALK_CONT;
}

static int walk_enter(walker *w, const char *name, TSK_INUM_T addr, TSK_OFF_T size, int deleted,
                      size_t plen)
{
    imt__enum *en = w->en;
    char *dir = w->path;
    dir[plen] = '\0';
    for (size_t k = 0; k < w->depth; k++)
        if (w->lv[k].addr == addr)
            return push_dir_problem(w, dir, name, addr, deleted, 0, IMT_E_CORRUPT,
                                    "a folder loop: inode %llu is a folder above it on the "
                                    "path; not walked again",
                                    (unsigned long long)addr);
    if (seen_has(w, addr))
        /* its names were listed under the first path that reached it */
        return push_dir_problem(w, dir, name, addr, deleted, 0, IMT_E_CORRUPT,
                                "a cross-linked folder: inode %llu was walked already under "
                                "another name; not walked again",
                                (unsigned long long)addr);
    size_t nl = strlen(name);
    if (w->depth >= WALK_MAX_DEPTH || plen + nl + 2 > WALK_MAX_PATH)
        return push_dir_problem(w, dir, name, addr, deleted, 1, IMT_E_TOO_LARGE,
                                "not walked: the folder is deeper than %d levels or its path "
                                "longer than %d bytes",
                                WALK_MAX_DEPTH, WALK_MAX_PATH);
    if (size > 0 && (uint64_t)size > w->dir_bound)
        /* before TSK loads its block list (quadratic for an ext2/3 inode) */
        return push_dir_problem(w, dir, name, addr, deleted, 1, IMT_E_TOO_LARGE,
                                "a folder claiming %llu bytes, more than its file system and "
                                "image hold (%llu): not walked",
                                (unsigned long long)size, (unsigned long long)w->dir_bound);
    if (addr == TSK_FS_ORPHANDIR_INUM(w->fs) && TSK_FS_TYPE_ISEXT(w->fs->ftype)) {
        /* Opening $OrphanFiles, TSK walks every unallocated folder inode
         * (to leave out the names they hold) and loads its block list
         * first: quadratic for one claiming an absurd size, where we
         * cannot refuse it. So look at those inodes' sizes first. */
        unalloc_dir_check c = {w->dir_bound, 0, 0};
        tsk_error_reset();
        tsk_fs_meta_walk(w->fs, w->fs->first_inum, w->fs->last_inum,
                         TSK_FS_META_FLAG_UNALLOC | TSK_FS_META_FLAG_USED, unalloc_dir_cb, &c);
        tsk_error_reset();
        if (c.inum)
            return push_dir_problem(w, dir, name, addr, 0, 1, IMT_E_TOO_LARGE,
                                    "orphan files not listed: unallocated folder inode %llu "
                                    "claims %llu bytes, more than its file system and image "
                                    "hold (%llu), and The Sleuth Kit's orphan search would "
                                    "walk it",
                                    (unsigned long long)c.inum, (unsigned long long)c.size,
                                    (unsigned long long)w->dir_bound);
    }
    if (seen_add(w, addr)) goto nomem;
    if (addr == TSK_FS_ORPHANDIR_INUM(w->fs) && !w->fs->list_inum_named && w->save_named) {
        /* never empty, or TSK walks the tree itself; the root is reached
         * by a name ("." and ".." in TSK's own list) */
        if (tsk_list_add(&w->named, w->fs->root_inum)) goto nomem;
        w->fs->list_inum_named = w->named;
        w->named = NULL;
        w->save_named = 0;
    }
    if (w->depth == w->cap) {
        size_t nc = w->cap ? 2 * w->cap : 16;
        wlevel *nlv = imt__realloc(w->lv, nc * sizeof *nlv);
        if (!nlv) goto nomem;
        w->lv = nlv;
        w->cap = nc;
    }
    if (plen + nl + 2 > w->pcap) {
        size_t nc = w->pcap;
        while (plen + nl + 2 > nc) nc *= 2;
        char *np = imt__realloc(w->path, nc);
        if (!np) goto nomem;
        w->path = dir = np;
        w->pcap = nc;
    }
    tsk_error_reset();
    TSK_FS_DIR *d = tsk_fs_dir_open_meta(w->fs, addr);
    if (!d) {
        if (deleted) { /* a deleted folder's blocks reused: normal */
            tsk_error_reset();
            return 0;
        }
        char msg[160];
        snprintf(msg, sizeof msg, "%s", tsk_msg());
        tsk_error_reset();
        return push_dir_problem(w, dir, name, addr, 0, 1, IMT_E_IO,
                                "a folder whose names cannot be read: %s", msg);
    }
    wlevel *l = &w->lv[w->depth];
    memset(l, 0, sizeof *l);
    l->dir = d;
    l->addr = addr;
    if (plen || nl) { /* the root's names have the path "" */
        memcpy(dir + plen, name, nl);
        dir[plen + nl] = '/';
        dir[plen + nl + 1] = '\0';
        l->plen = plen + nl + 1;
    }
    if (addr == w->fs->root_inum && d->names_used) {
        l->order = imt__malloc(d->names_used * sizeof *l->order);
        if (!l->order) {
            tsk_fs_dir_close(d);
            goto nomem;
        }
        size_t n = 0;
        for (int c = 0; c < 4; c++)
            for (size_t j = 0; j < d->names_used; j++)
                if (root_class(d->names[j].name) == c) l->order[n++] = j;
    }
    w->depth++;
    return 0;
nomem:
    en->err = IMT_E_NOMEM;
    return -1;
}

/* Whether tsk_fs_dir_walk(RECURSE) goes into the folder named by f. */
static int walks_into(const TSK_FS_FILE *f)
{
    const TSK_FS_NAME *n = f->name;
    const TSK_FS_META *m = f->meta;
    return (TSK_FS_IS_DIR_NAME(n->type) || n->type == TSK_FS_NAME_TYPE_UNDEF) && m &&
           TSK_FS_IS_DIR_META(m->type) &&
           ((n->flags & TSK_FS_NAME_FLAG_ALLOC) ||
            ((n->flags & TSK_FS_NAME_FLAG_UNALLOC) && (m->flags & TSK_FS_META_FLAG_UNALLOC))) &&
           !TSK_FS_ISDOT(n->name);
}

/* The next name of the innermost folder: visited, then walked into. */
static int walk_step(walker *w)
{
    wlevel *l = &w->lv[w->depth - 1];
    if (l->i == l->dir->names_used) {
        tsk_fs_dir_close(l->dir);
        imt__free(l->order);
        w->depth--;
        return 0;
    }
    TSK_FS_NAME *nm = &l->dir->names[l->order ? l->order[l->i] : l->i];
    l->i++;
    if (!nm->name) return 0;
    w->path[l->plen] = '\0';
    /* a TSK_FS_FILE as tsk_fs_file_alloc makes it (calloc: TSK frees it) */
    TSK_FS_FILE *f = calloc(1, sizeof *f);
    if (!f) {
        w->en->err = IMT_E_NOMEM;
        return -1;
    }
    f->tag = TSK_FS_FILE_TAG;
    f->fs_info = w->fs;
    f->name = nm;
    if (nm->meta_addr || (nm->flags & TSK_FS_NAME_FLAG_ALLOC)) {
        if (w->fs->file_add_meta(w->fs, f, nm->meta_addr)) tsk_error_reset();
    }
    int ret = visit_name(w->en, f, w->path) == TSK_WALK_CONT ? 0 : -1;
    if (!ret && w->save_named && f->meta && (f->meta->flags & TSK_FS_META_FLAG_UNALLOC) &&
        strncmp(w->path, "$OrphanFiles", 12) != 0 &&
        tsk_list_add(&w->named, f->meta->addr)) {
        w->en->err = IMT_E_NOMEM;
        ret = -1;
    }
    int into = !ret && walks_into(f);
    TSK_OFF_T size = into ? f->meta->size : 0;
    int deleted = !(nm->flags & TSK_FS_NAME_FLAG_ALLOC);
    f->name = NULL; /* the folder's, not ours */
    tsk_fs_file_close(f);
    if (into && !cancelled(w->en))
        ret = walk_enter(w, nm->name, nm->meta_addr, size, deleted, l->plen);
    return ret;
}

/* Every name of en->fs, as tsk_fs_dir_walk(ALLOC | UNALLOC | RECURSE)
 * from the root listed them. -1: stop (en->err, cancelled, or the
 * consumer gone); problems of the image are entries. */
static int walk_names(imt__enum *en)
{
    TSK_FS_INFO *fs = en->fs;
    walker w;
    memset(&w, 0, sizeof w);
    w.en = en;
    w.fs = fs;
    w.save_named = fs->list_inum_named == NULL;
    uint64_t fs_bytes = (uint64_t)fs->block_count * fs->block_size;
    uint64_t isz = imt__img_size(en->img);
    uint64_t img_bytes = isz > en->part_off ? isz - en->part_off : 0;
    w.dir_bound = fs_bytes && fs_bytes < img_bytes ? fs_bytes : img_bytes;
    w.pcap = 256;
    w.path = imt__malloc(w.pcap);
    if (!w.path) {
        en->err = IMT_E_NOMEM;
        return -1;
    }
    w.path[0] = '\0';
    int ret = 0;
    /* the root's inode first: TSK would load its block list to list it */
    tsk_error_reset();
    TSK_FS_FILE *root = tsk_fs_file_open_meta(fs, NULL, fs->root_inum);
    if (!root || !root->meta) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s", tsk_msg());
        tsk_error_reset();
        ret = push_dir_problem(&w, "", NULL, fs->root_inum, 0, 1, IMT_E_IO,
                               "the root folder cannot be read: %s", msg);
    } else {
        ret = walk_enter(&w, "", fs->root_inum, root->meta->size, 0, 0);
    }
    /* The root refused: no $OrphanFiles either (as before). Listing every
     * unallocated inode as an orphan would run TSK's orphan search, which
     * on a damaged ext4 allocates and zeroes what each inline-data inode
     * claims: 8 GB and 27 s on a fuzzed 80 KB image. */
    tsk_fs_file_close(root);
    while (!ret && w.depth) {
        if (cancelled(en)) {
            ret = -1;
            break;
        }
        ret = walk_step(&w);
    }
    while (w.depth) {
        w.depth--;
        tsk_fs_dir_close(w.lv[w.depth].dir);
        imt__free(w.lv[w.depth].order);
    }
    if (w.named) tsk_list_free(w.named);
    imt__free(w.lv);
    imt__free(w.path);
    imt__free(w.seen);
    return ret || en->capped ? -1 : 0;
}

static void fs_name(TSK_FS_TYPE_ENUM t, char *out, size_t cap)
{
    const char *n = tsk_fs_type_toname(t);
    snprintf(out, cap, "%s", n ? n : "unknown");
}

/* ---- the carver's hook ---------------------------------------------------
 * Space no file system accounts for (the volume system's unallocated
 * parts, a partition or image whose file system does not open) and the
 * unallocated blocks of every file system are handed to the carver
 * (carve.c) as an imt__io over the logical concatenation of their image
 * runs; each hit (logical offset, length) comes back through
 * imt__enum_carved, which maps it to image runs and queues an entry read
 * straight from the image. The carve runs here, on the enumerating thread,
 * after the partition's files: its entries come in the image's order
 * whatever the number of workers. */
#include "source/carve.h"

static imt_err runs_pread(void *ctx, uint64_t off, void *buf, size_t cap, size_t *got);

typedef struct carve_ctx {
    imt__enum *en;
    const imt__runs_view *v;
    imt_err err;
} carve_ctx;

static int carve_hit(void *ctx, const imt_carve_hit *h)
{
    carve_ctx *c = ctx;
    c->err = imt__enum_carved(c->en, c->v, h);
    return c->err != IMT_OK;
}

/* Carve io (whose runs view is v), then report a carve that could not read
 * its range as a region error. -1 when the scan is to stop. */
static int run_carver(imt__enum *en, const imt__io *io, const imt__runs_view *v,
                      const char *what)
{
    imt_carve_opts o;
    imt_carve_opts_init(&o);
    o.stop = en->stop;
    carve_ctx c = {en, v, IMT_OK};
    imt_carve_stats st;
    imt_err err = imt__carve(io, &o, carve_hit, &c, &st);
    if (c.err == IMT_E_NOMEM || err == IMT_E_NOMEM) {
        en->err = IMT_E_NOMEM;
        return -1;
    }
    if (err == IMT_E_INTERRUPTED || cancelled(en)) return -1;
    if (err != IMT_OK) {
        char d[160];
        snprintf(d, sizeof d, "%s: carving stopped after %llu of %llu bytes (a read failed)",
                 what, (unsigned long long)st.bytes_scanned, (unsigned long long)io->size);
        return push_problem(en, 1, IMT_ENTRY_DIR, IMT_E_IO, 1, "%s", d);
    }
    return 0;
}

/* len bytes of the image at off, carved as one range. */
static int hand_to_carver(imt__enum *en, uint64_t off, uint64_t len)
{
    uint64_t isz = imt__img_size(en->img);
    if (off >= isz) return 0;
    if (len > isz - off) len = isz - off; /* a partition table naming more than there is */
    imt_byte_run r[1] = {{0, off, len, 0}};
    imt__runs_view v = {en->img, r, 1, len};
    if (!len) return 0;
    if (en->lim.no_carve) {
        en->uncarved_areas++;
        en->uncarved_bytes += len;
        return 0;
    }
    imt__io io = imt__runs_io(&v);
    return run_carver(en, &io, &v, "space outside file systems");
}

/* The unallocated blocks of en->fs as one logical range, found while the
 * carver reads it front to back (its reads only move forward): the blocks
 * are looked up as the reads need them and merged into runs; runs that end
 * more than KEEP_BACK before the last read are dropped (a hit is at most
 * max_length long and reported before the carver reads more than its
 * window past its end), so memory is bounded by KEEP_BACK / block size
 * runs whatever the file system holds. The size comes from a first pass
 * over the same flags. */
#define KEEP_BACK(o) ((o)->max_length + (o)->chunk_bytes + IMT__CARVE_LOOKAHEAD + 4096)

typedef struct ublocks {
    imt__enum *en;
    TSK_FS_INFO *fs;
    uint64_t bs, next, last;  /* next block to look at, last block */
    imt_byte_run *runs;       /* file_offset: logical offset; ascending */
    size_t n, cap;
    uint64_t lend, keep_back;
    imt__runs_view v;
    int failed;               /* NOMEM */
} ublocks;

static int unalloc_block(TSK_FS_INFO *fs, uint64_t b)
{
    return (fs->block_getflags(fs, (TSK_DADDR_T)b) & TSK_FS_BLOCK_FLAG_UNALLOC) != 0;
}

/* Find runs until they cover logical offset need (or the blocks end). */
static int ub_extend(ublocks *u, uint64_t need, uint64_t keep)
{
    while (u->lend < need && u->next <= u->last) {
        if (cancelled(u->en)) return -1;
        uint64_t b = u->next++;
        if (!unalloc_block(u->fs, b)) continue;
        uint64_t io = u->en->part_off + b * u->bs;
        imt_byte_run *l = u->n ? &u->runs[u->n - 1] : NULL;
        if (l && l->img_offset + l->len == io) {
            l->len += u->bs;
        } else {
            if (u->n == u->cap) {
                size_t k = 0; /* drop the runs no hit can reach */
                while (k < u->n && u->runs[k].file_offset + u->runs[k].len <= keep) k++;
                if (k) {
                    memmove(u->runs, u->runs + k, (u->n - k) * sizeof *u->runs);
                    u->n -= k;
                }
            }
            if (u->n == u->cap) {
                size_t nc = u->cap ? u->cap * 2 : 256;
                imt_byte_run *nr = imt__realloc(u->runs, nc * sizeof *nr);
                if (!nr) {
                    u->failed = 1;
                    return -1;
                }
                u->runs = nr;
                u->cap = nc;
            }
            u->runs[u->n++] = (imt_byte_run){u->lend, io, u->bs, 0};
        }
        u->lend += u->bs;
    }
    u->v.runs = u->runs;
    u->v.n = u->n;
    return 0;
}

static imt_err ub_pread(void *ctx, uint64_t off, void *buf, size_t cap, size_t *got)
{
    ublocks *u = ctx;
    *got = 0;
    uint64_t keep = off > u->keep_back ? off - u->keep_back : 0;
    if (ub_extend(u, off + cap, keep))
        return u->failed ? IMT_E_NOMEM : IMT_E_INTERRUPTED;
    return runs_pread(&u->v, off, buf, cap, got);
}

static int carve_unalloc(imt__enum *en)
{
    TSK_FS_INFO *fs = en->fs;
    if (!fs->block_getflags || !fs->block_size) return 0;
    ublocks u;
    memset(&u, 0, sizeof u);
    u.en = en;
    u.fs = fs;
    u.bs = fs->block_size;
    u.last = fs->last_block_act < fs->last_block ? fs->last_block_act : fs->last_block;
    u.next = fs->first_block;
    uint64_t total = 0;
    for (uint64_t b = u.next; b <= u.last; b++) {
        if ((b & 0xFFFF) == 0 && cancelled(en)) return -1;
        if (unalloc_block(fs, b)) total += u.bs;
    }
    tsk_error_reset();
    if (!total) return 0;
    imt_carve_opts o;
    imt_carve_opts_init(&o);
    u.keep_back = KEEP_BACK(&o);
    u.v.img = en->img;
    u.v.size = total;
    imt__io io = {ub_pread, &u, total};
    int r = run_carver(en, &io, &u.v, "unallocated blocks");
    if (u.failed) {
        en->err = IMT_E_NOMEM;
        r = -1;
    }
    imt__free(u.runs);
    return r;
}

imt_err imt__enum_carved(imt__enum *en, const imt__runs_view *v, const imt_carve_hit *h)
{
    uint64_t off = h->offset, len = h->length;
    int truncated = h->truncated;
    imt__sentry *e = new_entry(en, 1, NULL, NULL, NULL);
    if (!e) return IMT_E_NOMEM;
    char name[64];
    uint64_t first = 0;
    imt__runs_map(v, off, &first);
    /* named by the image offset of its first byte: unique in the image */
    snprintf(name, sizeof name, "/carved@%llu", (unsigned long long)first);
    size_t pl = strlen(e->path), nl = strlen(name);
    char *np = imt__realloc(e->path, pl + nl + 1);
    e->runs = imt__calloc(en->lim.max_runs ? en->lim.max_runs : 1, sizeof *e->runs);
    if (!np || !e->runs) {
        if (np) e->path = np;
        imt__sentry_free(e);
        return IMT_E_NOMEM;
    }
    e->path = np;
    memcpy(e->path + pl, name, nl + 1);
    size_t n = 0;
    for (uint64_t done = 0; done < len && n < en->lim.max_runs;) {
        uint64_t io, room = imt__runs_map(v, off + done, &io);
        if (!room) break;
        if (room > len - done) room = len - done;
        e->runs[n++] = (imt_byte_run){done, io, room, 0};
        done += room;
    }
    e->loc.runs = e->runs;
    e->loc.n_runs = n;
    e->loc.alloc = IMT_ALLOC_CARVED;
    e->loc.first_offset = n ? (int64_t)e->runs[0].img_offset : -1;
    e->size = len;
    e->carved = 1;
    e->hit = *h;
    e->hit.offset = first;
    e->readable = 1;
    if (truncated)
        imt__set_detail(e->detail, sizeof e->detail, "carved: the item ends early");
    return push(en, e) ? IMT_E_INTERRUPTED : IMT_OK;
}

/* Why not TSK_FS_TYPE_DETECT: it also probes for YAFFS2, which reads
 * spare areas across the whole image (slow, and a damaged region far away
 * then fails the partition). The types tried, in this order, are those
 * with a superblock at a known place. APFS is not among them: TSK opens it
 * through its pool layer (do_apfs, apfs.cpp), a volume at a time. */
void *imt__fs_open(void *tsk_img, uint64_t off)
{
    static const TSK_FS_TYPE_ENUM types[] = {
        TSK_FS_TYPE_NTFS_DETECT, TSK_FS_TYPE_FAT_DETECT, TSK_FS_TYPE_EXT_DETECT,
        TSK_FS_TYPE_HFS_DETECT, TSK_FS_TYPE_ISO9660_DETECT, TSK_FS_TYPE_FFS_DETECT};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        tsk_error_reset();
        TSK_FS_INFO *fs = tsk_fs_open_img(tsk_img, (TSK_OFF_T)off, types[i]);
        if (fs) return fs;
    }
    tsk_error_reset();
    tsk_error_set_errno(TSK_ERR_FS_UNSUPTYPE);
    tsk_error_set_errstr("NTFS, FAT, exFAT, ext2/3/4, HFS+, ISO 9660 and UFS do not open it");
    return NULL;
}

/* TSK's walk of en->fs's names (its partition, or an APFS volume), and the
 * entries saying how it ended. */
static int walk_fs(imt__enum *en, int with_part)
{
    char *le = (char *)imt__img_last_error(en->img);
    en->n_in_part = 0;
    en->capped = 0;
    tsk_error_reset();
    int r = walk_names(en);
    int ret = 0;
    if (en->err || cancelled(en)) {
        ret = -1;
    } else if (en->capped) {
        char n[32];
        snprintf(n, sizeof n, "%llu", (unsigned long long)en->lim.max_entries);
        ret = push_problem(en, with_part, IMT_ENTRY_DIR, IMT_E_TOO_LARGE, 1,
                           "enumeration stopped after %s entries (the limit per partition)", n);
    } else if (r) {
        ret = push_problem(en, with_part, IMT_ENTRY_DIR, IMT_E_IO, 1,
                           "enumeration stopped early: %s", le[0] ? le : tsk_msg());
    } else if (le[0]) {
        /* TSK went on past a metadata block it could not read: names may
         * be missing. */
        ret = push_problem(en, with_part, IMT_ENTRY_DIR, IMT_E_IO, 1,
                           "enumerated, but some of its metadata could not be read: %s", le);
    }
    return ret;
}

/* At most this many free extents of an APFS container are carved (32 MiB
 * of runs); TSK lists them all before we see them. */
#define MAX_POOL_RUNS ((uint64_t)1 << 20)

/* The free blocks of an APFS container (its space manager, as TSK reads
 * it), carved as one range after its volumes' files. The volumes share
 * them, so they are the container's, not a volume's: records of partition
 * N, fs "apfs", no volume. */
static int carve_pool(imt__enum *en, void *pool)
{
    char *le = (char *)imt__img_last_error(en->img);
    le[0] = '\0';
    imt_byte_run *runs = NULL;
    size_t n = 0;
    int capped = 0;
    imt_err err = imt__apfs_free_runs(pool, en->part_len, MAX_POOL_RUNS, &runs, &n, &capped);
    if (err == IMT_E_NOMEM) {
        en->err = err;
        return -1;
    }
    if (err)
        return push_problem(en, 1, IMT_ENTRY_DIR, IMT_E_CORRUPT, 1,
                            "the APFS container's free space is not carved: its space manager "
                            "cannot be read (%s)",
                            le[0] ? le : tsk_msg());
    int r = 0;
    if (capped) {
        char m[32];
        snprintf(m, sizeof m, "%llu", (unsigned long long)MAX_POOL_RUNS);
        r = push_problem(en, 1, IMT_ENTRY_DIR, IMT_E_TOO_LARGE, 1,
                         "the APFS container's free space is in more than %s extents: the "
                         "rest is not carved",
                         m);
    }
    if (!r && n) {
        imt__runs_view v = {en->img, runs, n, runs[n - 1].file_offset + runs[n - 1].len};
        imt__io io = imt__runs_io(&v);
        r = run_carver(en, &io, &v, "unallocated blocks");
    }
    imt__free(runs);
    return r;
}

/* ---- APFS in a child first ---------------------------------------------
 * The Sleuth Kit 4.11's APFS code reads out of bounds on hostile containers
 * (SIGSEGV in its object-map and b-tree code: 3 of 127 containers with a
 * few bytes of their metadata changed and checksums fixed; README, "Scanning
 * disk images"). Its exceptions are caught (apfs.cpp); its crashes cannot
 * be. So a child process first asks TSK everything the enumeration will
 * ask of it (the container, each volume, the walk of its names by the
 * enumeration's own walk_names with each file's attributes, its entries
 * dropped, the free blocks), and the container is enumerated here
 * only when that child finished: TSK's answers are a function of the bytes,
 * which are read again the same. The child uses only this thread's own
 * handles (the image, TSK's view of it; fork copies no other thread) and
 * ends with _exit, running nothing of the parent's. Costs a second walk of
 * the volumes' metadata. A host process that ignores SIGCHLD loses the
 * child's status (waitpid fails): the container is then a record saying
 * so, not read. 0: the child finished; else why in why. */
static void probe_child(imt__enum *en, TSK_IMG_INFO *ti, uint64_t off, uint64_t len)
{
    en->probing = 1;
    /* a crash ends the child by its signal, whatever handlers were set */
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &sa, NULL);
    void *pool = imt__apfs_pool_open(ti, off);
    if (!pool) _exit(0); /* the parent sees the same failure */
    const TSK_POOL_INFO *p = pool;
    for (int i = 0; i < p->num_vols; i++) {
        if (p->vol_list[i].flags & TSK_POOL_VOLUME_FLAG_ENCRYPTED) continue;
        TSK_FS_INFO *fs = imt__apfs_vol_open(pool, p->vol_list[i].block);
        if (!fs) continue;
        en->fs = fs; /* the enumeration's own walk: the same calls into TSK */
        walk_names(en);
        en->fs = NULL;
        imt__apfs_vol_close(fs);
    }
    imt_byte_run *runs = NULL;
    size_t n = 0;
    int capped = 0;
    imt__apfs_free_runs(pool, len, MAX_POOL_RUNS, &runs, &n, &capped);
    _exit(0);
}

static int apfs_probe(imt__enum *en, TSK_IMG_INFO *ti, char *why, size_t cap)
{
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(why, cap, "no process to read it in first (fork failed)");
        return -1;
    }
    if (pid == 0) probe_child(en, ti, en->part_off, en->part_len);
    int st = 0;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) break;
        if (r < 0) {
            snprintf(why, cap, "its reading process was lost");
            return -1;
        }
        if (cancelled(en)) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            snprintf(why, cap, "interrupted");
            return -1;
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return 0;
    if (WIFSIGNALED(st))
        snprintf(why, cap, "The Sleuth Kit crashed reading it (signal %d)", WTERMSIG(st));
    else
        snprintf(why, cap, "The Sleuth Kit failed reading it (exit status %d)",
                 WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return -1;
}

/* An APFS container at en->part_off (NXSB at byte 32 of its first block):
 * each volume's files (paths IMAGE!pN!vK/...), then its free blocks carved.
 * 1 when there is no container there; else as do_fs. A container TSK cannot
 * open is carved whole, like a partition whose file system does not open;
 * an encrypted volume, or one that does not open, is an entry saying so
 * (TSK would need the volume's password: none is asked for). */
static int do_apfs(imt__enum *en, TSK_IMG_INFO *ti, int with_part)
{
    char magic[4];
    size_t got = 0;
    if (imt__img_pread(en->img, en->part_off + 32, magic, sizeof magic, &got, NULL, 0) ||
        got != sizeof magic || memcmp(magic, "NXSB", 4) != 0)
        return 1;
    char *le = (char *)imt__img_last_error(en->img);
    snprintf(en->fs_type, sizeof en->fs_type, "apfs");
    char why[96];
    if (apfs_probe(en, ti, why, sizeof why)) {
        if (cancelled(en)) return -1;
        int pr = push_problem(en, with_part, IMT_ENTRY_DIR, IMT_E_CORRUPT, 1,
                              "not enumerated: an APFS container %s; its bytes are carved",
                              why);
        if (pr) return pr;
        return hand_to_carver(en, en->part_off, en->part_len);
    }
    le[0] = '\0';
    void *pool = imt__apfs_pool_open(ti, en->part_off);
    if (!pool) {
        int pr = push_problem(en, with_part, IMT_ENTRY_DIR, le[0] ? IMT_E_IO : IMT_E_CORRUPT, 1,
                              "not enumerated: an APFS container The Sleuth Kit cannot open "
                              "(%s); its bytes are carved",
                              le[0] ? le : tsk_msg());
        if (pr) return pr;
        return hand_to_carver(en, en->part_off, en->part_len);
    }
    const TSK_POOL_INFO *p = pool;
    int ret = 0;
    for (int i = 0; i < p->num_vols && !ret; i++) {
        const TSK_POOL_VOLUME_INFO *v = &p->vol_list[i];
        if (cancelled(en)) {
            ret = -1;
            break;
        }
        en->vol_no = i + 1;
        en->vol_block = v->block;
        snprintf(en->vol_name, sizeof en->vol_name, "%s", v->desc ? v->desc : "");
        if (v->flags & TSK_POOL_VOLUME_FLAG_ENCRYPTED) {
            ret = push_problem(en, with_part, IMT_ENTRY_DIR, IMT_E_ENCRYPTED, 1,
                               "not enumerated: an encrypted APFS volume (The Sleuth Kit needs "
                               "its password)%s",
                               "");
            continue;
        }
        le[0] = '\0';
        en->fs = imt__apfs_vol_open(pool, v->block);
        if (!en->fs) {
            ret = push_problem(en, with_part, IMT_ENTRY_DIR, le[0] ? IMT_E_IO : IMT_E_CORRUPT, 1,
                               "not enumerated: the APFS volume does not open (%s)",
                               le[0] ? le : tsk_msg());
            continue;
        }
        ret = walk_fs(en, with_part);
        imt__apfs_vol_close(en->fs);
        en->fs = NULL;
    }
    en->vol_no = 0;
    en->vol_block = 0;
    en->vol_name[0] = '\0';
    if (!ret && en->lim.no_carve) en->uncarved_areas++; /* the preview leaves it */
    else if (!ret) ret = carve_pool(en, pool);
    imt__apfs_pool_close(pool);
    return ret;
}

/* One file system at off (a partition, or the whole image). */
static int do_fs(imt__enum *en, TSK_IMG_INFO *ti, int with_part)
{
    en->fs_type[0] = '\0';
    char *le = (char *)imt__img_last_error(en->img);
    le[0] = '\0';
    tsk_error_reset();
    en->fs = imt__fs_open(ti, en->part_off);
    if (!en->fs) {
        char why[160];
        snprintf(why, sizeof why, "%s", tsk_msg());
        int ar = do_apfs(en, ti, with_part);
        if (ar != 1) return ar;
        int pr = le[0] ? push_problem(en, with_part, IMT_ENTRY_DIR, IMT_E_IO, 1,
                                      "not enumerated: the file system cannot be read (%s)", le)
                       : push_problem(en, with_part, IMT_ENTRY_DIR, IMT_E_UNSUPPORTED, 0,
                                      "not enumerated: no file system recognised (%s, nor an "
                                      "APFS container); its bytes are carved",
                                      why);
        if (pr) return pr;
        return hand_to_carver(en, en->part_off, en->part_len);
    }
    fs_name(en->fs->ftype, en->fs_type, sizeof en->fs_type);
    int ret = walk_fs(en, with_part);
    if (!ret && en->lim.no_carve) en->uncarved_areas++;
    else if (!ret && carve_unalloc(en)) ret = -1;
    tsk_fs_close(en->fs);
    en->fs = NULL;
    return ret;
}

static void produce(imt__enum *en)
{
    char detail[200] = "";
    TSK_IMG_INFO *ti = NULL;
    TSK_VS_INFO *vs = NULL;
    imt_err err = imt__img_open(&en->img, en->path, en->kind, detail, sizeof detail);
    if (err == IMT_E_NOMEM) {
        en->err = err;
        return;
    }
    if (err) {
        push_problem(en, 0, IMT_ENTRY_UNKNOWN, IMT_E_IO, 1, "cannot open the disk image: %s",
                     detail);
        return;
    }
    ti = imt__img_tsk(en->img);
    if (!ti) {
        en->err = IMT_E_NOMEM;
        goto cleanup;
    }
    tsk_error_reset();
    vs = tsk_vs_open(ti, 0, TSK_VS_TYPE_DETECT);
    if (!vs) {
        en->part_no = 0;
        en->part_off = 0;
        en->part_len = imt__img_size(en->img);
        en->part_type[0] = '\0';
        do_fs(en, ti, 1);
        goto cleanup;
    }
    int n = 0;
    for (TSK_PNUM_T i = 0; i < vs->part_count && !cancelled(en) && !en->err; i++) {
        const TSK_VS_PART_INFO *p = tsk_vs_part_get(vs, i);
        if (p && (p->flags & TSK_VS_PART_FLAG_UNALLOC)) {
            /* space outside partitions: partition 0 */
            en->part_no = 0;
            en->part_off = (uint64_t)p->start * vs->block_size;
            en->part_len = (uint64_t)p->len * vs->block_size;
            snprintf(en->part_type, sizeof en->part_type, "%s", p->desc ? p->desc : "");
            en->fs_type[0] = '\0';
            if (hand_to_carver(en, en->part_off, en->part_len)) break;
        }
        if (!p || !(p->flags & TSK_VS_PART_FLAG_ALLOC)) continue;
        en->part_no = ++n;
        en->part_off = (uint64_t)p->start * vs->block_size;
        en->part_len = (uint64_t)p->len * vs->block_size;
        snprintf(en->part_type, sizeof en->part_type, "%s", p->desc ? p->desc : "");
        if (do_fs(en, ti, 1)) break;
    }
cleanup:
    if (vs) tsk_vs_close(vs);
    if (ti) tsk_img_close(ti);
    imt__img_close(en->img);
    en->img = NULL;
}

static void *producer(void *arg)
{
    imt__enum *en = arg;
    produce(en);
    pthread_mutex_lock(&en->mu);
    en->finished = 1;
    pthread_cond_broadcast(&en->cv_get);
    pthread_mutex_unlock(&en->mu);
    return NULL;
}

void imt__src_limits_init(imt__src_limits *lim)
{
    memset(lim, 0, sizeof *lim);
    lim->max_entries = 50000000;
    lim->max_runs = IMT_MAX_BYTE_RUNS;
    lim->max_check_blocks = 65536;
}

imt_err imt__enum_open(imt__enum **out, const char *path, imt__img_kind kind,
                       const imt__src_limits *lim, const volatile int *stop)
{
    *out = NULL;
    imt__enum *en = imt__calloc(1, sizeof *en);
    if (!en) return IMT_E_NOMEM;
    en->path = imt__strdup(path);
    if (!en->path) {
        imt__free(en);
        return IMT_E_NOMEM;
    }
    en->kind = kind;
    en->stop = stop;
    if (lim) en->lim = *lim;
    else imt__src_limits_init(&en->lim);
    pthread_mutex_init(&en->mu, NULL);
    pthread_cond_init(&en->cv_put, NULL);
    pthread_cond_init(&en->cv_get, NULL);
    if (pthread_create(&en->th, NULL, producer, en) != 0) {
        imt__enum_close(en);
        return IMT_E_NOMEM;
    }
    en->started = 1;
    *out = en;
    return IMT_OK;
}

imt_err imt__enum_next(imt__enum *en, imt__sentry **e)
{
    *e = NULL;
    pthread_mutex_lock(&en->mu);
    while (en->count == 0 && !en->finished) pthread_cond_wait(&en->cv_get, &en->mu);
    if (en->count) {
        *e = en->q[en->head];
        en->head = (en->head + 1) % QCAP;
        en->count--;
        pthread_cond_signal(&en->cv_put);
    }
    imt_err err = *e ? IMT_OK : en->err;
    pthread_mutex_unlock(&en->mu);
    return err;
}

void imt__enum_uncarved(const imt__enum *en, uint64_t *areas, uint64_t *bytes)
{
    /* read after the producer finished (imt__enum_next saw the end under
     * the lock): no race */
    *areas = en->uncarved_areas;
    *bytes = en->uncarved_bytes;
}

void imt__enum_close(imt__enum *en)
{
    if (!en) return;
    if (en->started) {
        pthread_mutex_lock(&en->mu);
        en->cancel = 1;
        pthread_cond_broadcast(&en->cv_put);
        pthread_mutex_unlock(&en->mu);
        pthread_join(en->th, NULL);
    }
    while (en->count) {
        imt__sentry_free(en->q[en->head]);
        en->head = (en->head + 1) % QCAP;
        en->count--;
    }
    pthread_mutex_destroy(&en->mu);
    pthread_cond_destroy(&en->cv_put);
    pthread_cond_destroy(&en->cv_get);
    imt__free(en->path);
    imt__free(en);
}

/* ---- unallocated space for the carver --------------------------------- */

uint64_t imt__runs_map(const imt__runs_view *v, uint64_t off, uint64_t *img_off)
{
    size_t lo = 0, hi = v->n;
    while (lo < hi) { /* the last run starting at or before off */
        size_t mid = lo + (hi - lo) / 2;
        if (v->runs[mid].file_offset <= off) lo = mid + 1;
        else hi = mid;
    }
    if (lo == 0) return 0;
    const imt_byte_run *r = &v->runs[lo - 1];
    if (off - r->file_offset >= r->len) return 0;
    *img_off = r->img_offset + (off - r->file_offset);
    return r->len - (off - r->file_offset);
}

static imt_err runs_pread(void *ctx, uint64_t off, void *buf, size_t cap, size_t *got)
{
    imt__runs_view *v = ctx;
    size_t done = 0;
    *got = 0;
    while (done < cap) {
        uint64_t io, room = imt__runs_map(v, off + done, &io);
        if (!room) break;
        size_t want = cap - done, k = 0;
        if (want > room) want = (size_t)room;
        imt_err err = imt__img_pread(v->img, io, (uint8_t *)buf + done, want, &k, NULL, 0);
        done += k;
        if (err) {
            *got = done;
            return err;
        }
        if (k < want) break;
    }
    *got = done;
    return IMT_OK;
}

imt__io imt__runs_io(imt__runs_view *v)
{
    imt__io io;
    io.pread = runs_pread;
    io.ctx = v;
    io.size = v->size;
    return io;
}
