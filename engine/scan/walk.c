/* engine/scan/walk.c -- the evidence walker: sorted depth-first, never
 * following symlinks, descriptor-relative (no PATH_MAX limit), bounded
 * memory (one listing per level of the current path).
 *
 * Why descriptors: a path may be longer than PATH_MAX, and a folder renamed
 * during the walk must not redirect us elsewhere; openat() on the folder we
 * listed gets exactly the entries of that listing. */
#include "scan.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct dent {
    const char *name;
    unsigned char dtype;
} dent;

typedef struct frame {
    imt__dirref *dir;
    char *names;           /* NUL-separated names of the listing */
    dent *ents;            /* sorted by name bytes */
    size_t n, next;
    size_t path_len;       /* length of the folder's path in w->path */
    dev_t dev;
    ino_t ino;
} frame;

/* One first-seen name per (dev, ino) of files with several links. */
typedef struct link_slot {
    dev_t dev;
    ino_t ino;
    char *path;            /* NULL: empty slot */
} link_slot;

struct imt__walk {
    char **roots;
    long *repeat_of;       /* per root: the PATH covering it, or -1 */
    size_t n_roots, next_root;
    int one_fs;
    const volatile int *stop;
    dev_t root_dev;
    frame *stack;
    size_t depth, cap;
    char *path;
    size_t path_len, path_cap;
    link_slot *links;
    size_t n_links, links_cap; /* cap is a power of two (or 0) */
};

void imt__dirref_release(imt__dirref *d)
{
    if (!d) return;
    if (--d->refs == 0) {
        close(d->fd);
        imt__free(d);
    }
}

void imt__wentry_clear(imt__wentry *e)
{
    if (!e) return;
    imt__free(e->path);
    imt__free(e->link_target);
    imt__free(e->hardlink_of);
    imt__dirref_release(e->dir);
    memset(e, 0, sizeof *e);
}

static imt_err path_set_len(imt__walk *w, size_t len, const char *add, size_t add_len)
{
    size_t need;
    if (len > SIZE_MAX - add_len - 2) return IMT_E_NOMEM;
    need = len + add_len + 2;
    if (need > w->path_cap) {
        size_t nc = w->path_cap ? w->path_cap : 256;
        while (nc < need) {
            if (nc > SIZE_MAX / 2) return IMT_E_NOMEM;
            nc *= 2;
        }
        char *np = imt__realloc(w->path, nc);
        if (!np) return IMT_E_NOMEM;
        w->path = np;
        w->path_cap = nc;
    }
    if (add) {
        /* "/" as a folder path: its children are "/x", not "//x". */
        if (!(len == 1 && w->path[0] == '/')) w->path[len++] = '/';
        memcpy(w->path + len, add, add_len);
        len += add_len;
    }
    w->path[len] = '\0';
    w->path_len = len;
    return IMT_OK;
}

static int cmp_dent(const void *a, const void *b)
{
    return strcmp(((const dent *)a)->name, ((const dent *)b)->name);
}

/* List the folder open on fd into a new frame (fd is owned by the frame
 * from here on, whatever happens). A listing that fails part way keeps what
 * was read, and *list_errno says why. */
static imt_err push_frame(imt__walk *w, int fd, const struct stat *st, int *list_errno)
{
    imt_err err = IMT_OK;
    char *names = NULL;
    dent *ents = NULL;
    size_t used = 0, cap = 0, n = 0;
    DIR *d = NULL;
    imt__dirref *ref = NULL;
    *list_errno = 0;

    ref = imt__malloc(sizeof *ref);
    if (!ref) {
        close(fd);
        return IMT_E_NOMEM;
    }
    ref->fd = fd;
    ref->refs = 1;

    if (w->depth == w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 16, bytes;
        if (!imt__mul_ok(nc, sizeof *w->stack, &bytes)) { err = IMT_E_NOMEM; goto cleanup; }
        frame *ns = imt__realloc(w->stack, bytes);
        if (!ns) { err = IMT_E_NOMEM; goto cleanup; }
        w->stack = ns;
        w->cap = nc;
    }

    int dfd = dup(fd);
    if (dfd < 0 || !(d = fdopendir(dfd))) {
        *list_errno = errno;
        if (dfd >= 0) close(dfd);
    } else {
        for (;;) {
            errno = 0;
            struct dirent *de = readdir(d);
            if (!de) {
                *list_errno = errno;
                break;
            }
            const char *nm = de->d_name;
            if (nm[0] == '.' && (nm[1] == '\0' || (nm[1] == '.' && nm[2] == '\0'))) continue;
            size_t len = strlen(nm) + 1;
            if (used + len > cap) {
                size_t nc = cap ? cap : 4096;
                while (nc < used + len) nc *= 2;
                char *nn = imt__realloc(names, nc);
                if (!nn) { err = IMT_E_NOMEM; goto cleanup; }
                names = nn;
                cap = nc;
            }
            memcpy(names + used, nm, len);
            used += len;
            n++;
        }
        closedir(d);
        d = NULL;
    }
    if (n) {
        ents = imt__calloc(n, sizeof *ents);
        if (!ents) { err = IMT_E_NOMEM; goto cleanup; }
        /* d_type is not kept: lstat decides, and a name that vanished before
         * its lstat is reported with type "unknown" rather than a guess. */
        size_t off = 0;
        for (size_t i = 0; i < n; i++) {
            ents[i].name = names + off;
            off += strlen(names + off) + 1;
        }
        qsort(ents, n, sizeof *ents, cmp_dent);
    }
    frame *f = &w->stack[w->depth++];
    f->dir = ref;
    f->names = names;
    f->ents = ents;
    f->n = n;
    f->next = 0;
    f->path_len = w->path_len;
    f->dev = st->st_dev;
    f->ino = st->st_ino;
    return IMT_OK;

cleanup:
    if (d) closedir(d);
    imt__free(names);
    imt__free(ents);
    imt__dirref_release(ref);
    return err;
}

static void pop_frame(imt__walk *w)
{
    frame *f = &w->stack[--w->depth];
    imt__dirref_release(f->dir);
    imt__free(f->names);
    imt__free(f->ents);
}

static size_t link_hash(dev_t dev, ino_t ino)
{
    uint64_t h = (uint64_t)ino * 0x9E3779B97F4A7C15ull ^ (uint64_t)dev * 0xC2B2AE3D27D4EB4Full;
    return (size_t)(h ^ (h >> 29));
}

/* The first path seen for (dev, ino), or NULL after recording path as it. */
static imt_err link_check(imt__walk *w, const struct stat *st, const char *path,
                          const char **first)
{
    *first = NULL;
    if (w->links_cap) {
        size_t mask = w->links_cap - 1;
        for (size_t i = link_hash(st->st_dev, st->st_ino) & mask;; i = (i + 1) & mask) {
            link_slot *s = &w->links[i];
            if (!s->path) break;
            if (s->dev == st->st_dev && s->ino == st->st_ino) {
                *first = s->path;
                return IMT_OK;
            }
        }
    }
    if ((w->n_links + 1) * 2 > w->links_cap) {
        size_t nc = w->links_cap ? w->links_cap * 2 : 64;
        link_slot *ns = imt__calloc(nc, sizeof *ns);
        if (!ns) return IMT_E_NOMEM;
        for (size_t j = 0; j < w->links_cap; j++) {
            link_slot *o = &w->links[j];
            if (!o->path) continue;
            size_t k = link_hash(o->dev, o->ino) & (nc - 1);
            while (ns[k].path) k = (k + 1) & (nc - 1);
            ns[k] = *o;
        }
        imt__free(w->links);
        w->links = ns;
        w->links_cap = nc;
    }
    char *copy = imt__strdup(path);
    if (!copy) return IMT_E_NOMEM;
    size_t mask = w->links_cap - 1, i = link_hash(st->st_dev, st->st_ino) & mask;
    while (w->links[i].path) i = (i + 1) & mask;
    w->links[i].dev = st->st_dev;
    w->links[i].ino = st->st_ino;
    w->links[i].path = copy;
    w->n_links++;
    return IMT_OK;
}

static imt_err set_errno_status(imt__wentry *e, int en, const char *what)
{
    e->status = (en == ENOENT || en == ENOTDIR) ? IMT_E_NOT_FOUND : IMT_E_IO;
    imt__set_detail(e->detail, sizeof e->detail, "%s: %s", what, strerror(en));
    return IMT_OK;
}

/* Fill e for a non-directory from its lstat (or stat, for path arguments). */
static imt_err classify(imt__walk *w, imt__wentry *e, int dirfd, const struct stat *st)
{
    e->have_stat = 1;
    e->st = *st;
    mode_t m = st->st_mode;
    if (S_ISREG(m)) {
        e->type = IMT_ENTRY_FILE;
        if (st->st_nlink > 1) {
            const char *first;
            imt_err err = link_check(w, st, e->path, &first);
            if (err) return err;
            if (first) {
                e->type = IMT_ENTRY_HARDLINK;
                e->hardlink_of = imt__strdup(first);
                if (!e->hardlink_of) return IMT_E_NOMEM;
            }
        }
    } else if (S_ISLNK(m)) {
        e->type = IMT_ENTRY_SYMLINK;
        size_t cap = (st->st_size > 0 && st->st_size < 65536) ? (size_t)st->st_size + 1 : 4096;
        e->link_target = imt__malloc(cap);
        if (!e->link_target) return IMT_E_NOMEM;
        ssize_t n = readlinkat(dirfd, e->name, e->link_target, cap - 1);
        if (n < 0) {
            set_errno_status(e, errno, "cannot read the link");
            e->link_target[0] = '\0';
        } else {
            e->link_target[n] = '\0';
        }
    } else if (S_ISFIFO(m)) {
        e->type = IMT_ENTRY_FIFO;
    } else if (S_ISSOCK(m)) {
        e->type = IMT_ENTRY_SOCKET;
    } else if (S_ISCHR(m)) {
        e->type = IMT_ENTRY_CHARDEV;
    } else if (S_ISBLK(m)) {
        e->type = IMT_ENTRY_BLOCKDEV;
    } else {
        e->type = IMT_ENTRY_UNKNOWN;
    }
    if (e->type >= IMT_ENTRY_FIFO && e->type <= IMT_ENTRY_BLOCKDEV)
        imt__set_detail(e->detail, sizeof e->detail, "not a regular file: not opened");
    return IMT_OK;
}

/* Which PATH arguments repeat another: the same file or folder by another
 * name (a later one repeats the earlier), or anything inside a folder that
 * is a PATH too (whatever the order). Compared by device and inode from the
 * argument (symlinks resolved, as the walk follows a PATH that is a link)
 * up to "/", so "..", symlinks and bind mounts are seen through. A PATH
 * that cannot be resolved repeats nothing. */
typedef struct root_id {
    dev_t dev;
    ino_t ino;
    size_t index;
    int is_dir;
} root_id;

static int root_id_cmp(const void *a, const void *b)
{
    const root_id *x = a, *y = b;
    if (x->dev != y->dev) return x->dev < y->dev ? -1 : 1;
    if (x->ino != y->ino) return x->ino < y->ino ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* The first PATH (lowest index) that is (dev, ino), or NULL. */
static const root_id *first_root(const root_id *ids, size_t n, dev_t dev, ino_t ino)
{
    size_t lo = 0, hi = n;
    while (lo < hi) { /* the first element not below (dev, ino, 0) */
        size_t mid = lo + (hi - lo) / 2;
        if (ids[mid].dev < dev || (ids[mid].dev == dev && ids[mid].ino < ino)) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && ids[lo].dev == dev && ids[lo].ino == ino ? &ids[lo] : NULL;
}

static imt_err find_repeats(imt__walk *w)
{
    imt_err err = IMT_OK;
    size_t n = w->n_roots, m = 0, dirs = 0;
    root_id *ids = imt__calloc(n ? n : 1, sizeof *ids);
    for (size_t i = 0; i < n; i++) w->repeat_of[i] = -1;
    if (!ids) return IMT_E_NOMEM;
    /* Sorted identities: n log n, so a --files-from list of 100,000 files
     * costs a stat each, not 10^10 comparisons. */
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (stat(w->roots[i], &st) != 0) continue;
        ids[m++] = (root_id){st.st_dev, st.st_ino, i, S_ISDIR(st.st_mode) != 0};
        dirs += S_ISDIR(st.st_mode) != 0;
    }
    qsort(ids, m, sizeof *ids, root_id_cmp);
    for (size_t k = 0; k < m; k++) {
        const root_id *f = first_root(ids, m, ids[k].dev, ids[k].ino);
        if (f->index != ids[k].index) w->repeat_of[ids[k].index] = (long)f->index;
    }
    /* Inside a folder PATH: only worth the folders above each PATH when some
     * PATH is a folder. */
    for (size_t k = 0; dirs && k < m; k++) {
        size_t i = ids[k].index;
        if (w->repeat_of[i] >= 0) continue;
        char *rp = realpath(w->roots[i], NULL); /* system malloc: free() */
        if (!rp && errno == ENOMEM) {
            err = IMT_E_NOMEM;
            goto done;
        }
        if (!rp) continue;
        for (;;) {
            char *slash = strrchr(rp, '/');
            if (!slash || !strcmp(rp, "/")) break;
            if (slash == rp) slash[1] = '\0';
            else *slash = '\0';
            struct stat st;
            const root_id *d;
            if (stat(rp, &st) == 0 && (d = first_root(ids, m, st.st_dev, st.st_ino)) &&
                d->is_dir && d->index != i) {
                w->repeat_of[i] = (long)d->index;
                break;
            }
        }
        free(rp);
    }
    /* Name the PATH that is read: the outermost (no cycles: containment
     * points outwards, sameness to the first of its names). */
    for (size_t i = 0; i < n; i++) {
        long j = w->repeat_of[i];
        for (size_t k = 0; j >= 0 && w->repeat_of[j] >= 0 && k < n; k++) j = w->repeat_of[j];
        w->repeat_of[i] = j;
    }
done:
    imt__free(ids);
    return err;
}

imt_err imt__walk_open(imt__walk **out, const char *const *paths, size_t n,
                       int one_file_system, const volatile int *stop)
{
    if (!out || (n && !paths)) return IMT_E_INVALID;
    *out = NULL;
    imt_err err = IMT_OK;
    imt__walk *w = imt__calloc(1, sizeof *w);
    if (!w) return IMT_E_NOMEM;
    w->one_fs = one_file_system;
    w->stop = stop;
    if (n) {
        w->roots = imt__calloc(n, sizeof *w->roots);
        if (!w->roots) { err = IMT_E_NOMEM; goto cleanup; }
    }
    for (size_t i = 0; i < n; i++) {
        if (!paths[i] || !paths[i][0]) { err = IMT_E_INVALID; goto cleanup; }
        w->roots[i] = imt__strdup(paths[i]);
        if (!w->roots[i]) { err = IMT_E_NOMEM; goto cleanup; }
        w->n_roots++;
        /* "dir/" and "dir" walk the same: no doubled slashes in paths. */
        size_t len = strlen(w->roots[i]);
        while (len > 1 && w->roots[i][len - 1] == '/') w->roots[i][--len] = '\0';
    }
    if (n) {
        w->repeat_of = imt__calloc(n, sizeof *w->repeat_of);
        if (!w->repeat_of) { err = IMT_E_NOMEM; goto cleanup; }
        IMT_TRY(find_repeats(w));
    }
    *out = w;
    return IMT_OK;
cleanup:
    imt__walk_close(w);
    return err;
}

void imt__walk_close(imt__walk *w)
{
    if (!w) return;
    while (w->depth) pop_frame(w);
    for (size_t i = 0; i < w->n_roots; i++) imt__free(w->roots[i]);
    imt__free(w->roots);
    imt__free(w->repeat_of);
    imt__free(w->stack);
    imt__free(w->path);
    for (size_t i = 0; i < w->links_cap; i++) imt__free(w->links[i].path);
    imt__free(w->links);
    imt__free(w);
}

/* Open and list the folder at w->path (named name relative to dirfd), or
 * say in e why not. *entered = 1 when a frame was pushed; e->type stays
 * IMT_ENTRY__COUNT when there is nothing to report. */
static imt_err enter_dir(imt__walk *w, imt__wentry *e, int dirfd, const char *name,
                         const struct stat *st)
{
    e->type = IMT_ENTRY_DIR;
    e->have_stat = 1;
    e->st = *st;
    if (w->depth && w->one_fs && st->st_dev != w->root_dev) {
        imt__set_detail(e->detail, sizeof e->detail,
                        "on another file system: not entered (--one-file-system)");
        return IMT_OK;
    }
    for (size_t i = 0; i < w->depth; i++) {
        if (w->stack[i].dev == st->st_dev && w->stack[i].ino == st->st_ino) {
            imt__set_detail(e->detail, sizeof e->detail,
                            "the same folder as an enclosing one (a loop): not entered");
            return IMT_OK;
        }
    }
    int fd = imt__open_evidence(dirfd, name, O_DIRECTORY | (w->depth ? O_NOFOLLOW : 0));
    if (fd < 0) return set_errno_status(e, errno, "cannot open the folder");
    struct stat fst;
    if (fstat(fd, &fst) != 0) {
        int en = errno;
        close(fd);
        return set_errno_status(e, en, "cannot stat the folder");
    }
    if (fst.st_dev != st->st_dev || fst.st_ino != st->st_ino) {
        /* Replaced between lstat and open: what we opened is not what we saw. */
        close(fd);
        e->status = IMT_E_NOT_FOUND;
        imt__set_detail(e->detail, sizeof e->detail, "the folder changed while walked");
        return IMT_OK;
    }
    if (w->depth == 0) w->root_dev = fst.st_dev;
    int lerr;
    imt_err err = push_frame(w, fd, &fst, &lerr);
    if (err) return err;
    if (lerr) {
        set_errno_status(e, lerr, "cannot list the folder (entries listed so far are walked)");
        e->status = IMT_E_IO;
        return IMT_OK;
    }
    e->type = IMT_ENTRY__COUNT; /* entered: nothing to report */
    return IMT_OK;
}

static imt_err entry_path(imt__walk *w, imt__wentry *e, size_t name_len)
{
    e->path = imt__malloc(w->path_len + 1);
    if (!e->path) return IMT_E_NOMEM;
    memcpy(e->path, w->path, w->path_len + 1);
    e->name = e->path + (w->path_len - name_len);
    return IMT_OK;
}

imt_err imt__walk_next(imt__walk *w, imt__wentry *e, int *done)
{
    imt_err err = IMT_OK;
    memset(e, 0, sizeof *e);
    *done = 0;
    for (;;) {
        if (w->stop && *w->stop) {
            *done = 1;
            return IMT_OK;
        }
        struct stat st;
        if (w->depth == 0) {
            if (w->next_root == w->n_roots) {
                *done = 1;
                return IMT_OK;
            }
            size_t ri = w->next_root++;
            const char *root = w->roots[ri];
            size_t rl = strlen(root);
            IMT_TRY(path_set_len(w, 0, NULL, rl)); /* room for the root */
            memcpy(w->path, root, rl + 1);
            w->path_len = rl;
            IMT_TRY(entry_path(w, e, w->path_len));
            e->name = e->path; /* relative to the working directory */
            e->is_root = 1;
            if (stat(root, &st) != 0) {
                e->type = IMT_ENTRY_UNKNOWN;
                return set_errno_status(e, errno, "cannot stat the path");
            }
            if (w->repeat_of[ri] >= 0) {
                e->repeat = 1;
                e->have_stat = 1;
                e->st = st;
                e->type = S_ISDIR(st.st_mode) ? IMT_ENTRY_DIR
                          : S_ISREG(st.st_mode) ? IMT_ENTRY_FILE
                                                : IMT_ENTRY_UNKNOWN;
                imt__set_detail(e->detail, sizeof e->detail,
                                "the same as or inside the PATH argument '%s': read there once",
                                w->roots[w->repeat_of[ri]]);
                return IMT_OK;
            }
            if (S_ISDIR(st.st_mode)) {
                IMT_TRY(enter_dir(w, e, AT_FDCWD, root, &st));
                if (e->type == IMT_ENTRY__COUNT) {
                    imt__wentry_clear(e);
                    continue;
                }
                return IMT_OK;
            }
            return classify(w, e, AT_FDCWD, &st);
        }
        frame *f = &w->stack[w->depth - 1];
        if (f->next == f->n) {
            pop_frame(w);
            continue;
        }
        const char *name = f->ents[f->next++].name;
        size_t nl = strlen(name);
        IMT_TRY(path_set_len(w, f->path_len, name, nl));
        IMT_TRY(entry_path(w, e, nl));
        int dfd = f->dir->fd;
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            e->type = IMT_ENTRY_UNKNOWN;
            return set_errno_status(e, errno, "cannot lstat");
        }
        if (S_ISDIR(st.st_mode)) {
            IMT_TRY(enter_dir(w, e, dfd, name, &st));
            if (e->type == IMT_ENTRY__COUNT) {
                imt__wentry_clear(e);
                continue;
            }
            return IMT_OK;
        }
        e->dir = f->dir;
        f->dir->refs++;
        return classify(w, e, dfd, &st);
    }
cleanup:
    imt__wentry_clear(e);
    return err;
}

const char *imt_entry_type_name(imt_entry_type t)
{
    static const char *const names[IMT_ENTRY__COUNT] = {
        "file", "hardlink", "symlink", "dir", "fifo", "socket", "chardev", "blockdev",
        "unknown"};
    if ((int)t < 0 || t >= IMT_ENTRY__COUNT) return "unknown";
    return names[t];
}
