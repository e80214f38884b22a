/* tools/cli_outpath.c -- where a report may be written: never inside the
 * evidence or the index, never over an existing file before every check has
 * passed, never over an existing report without --force.
 *
 * Why device+inode and not path strings: a symlink, "..", a bind mount or a
 * hard link gives the same file many names. The output's folder is resolved
 * (realpath) and every folder from it up to "/" is compared by (st_dev,
 * st_ino) with each PATH and the index; an existing output file is compared
 * the same way with each PATH that is a file, and refused when it has other
 * hard links (one of them could be evidence the walk has not reached). */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int refuse(char *why, size_t cap, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static int refuse(char *why, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
    return -1;
}

/* The absolute path out names, symlinks resolved (malloc'd); NULL with why. */
static char *resolve(const char *out, char *why, size_t cap)
{
    struct stat ls;
    if (lstat(out, &ls) == 0 && S_ISLNK(ls.st_mode)) {
        char *r = realpath(out, NULL);
        struct stat fs;
        /* /dev/stdout on a pipe leads to "pipe:[N]", which has no path: a
         * pipe, socket or terminal holds no evidence, so it is written. */
        if (!r && stat(out, &fs) == 0 &&
            (S_ISFIFO(fs.st_mode) || S_ISSOCK(fs.st_mode) || S_ISCHR(fs.st_mode)))
            return strdup(out);
        if (!r)
            refuse(why, cap, "%s is a symbolic link that cannot be resolved: %s", out,
                   strerror(errno));
        return r;
    }
    const char *slash = strrchr(out, '/');
    const char *base = slash ? slash + 1 : out;
    if (!*base || !strcmp(base, ".") || !strcmp(base, "..")) {
        refuse(why, cap, "%s does not name a file", out);
        return NULL;
    }
    char *dir = slash ? strndup(out, (size_t)(slash - out) + (slash == out)) : strdup(".");
    if (!dir) {
        refuse(why, cap, "out of memory");
        return NULL;
    }
    char *rd = realpath(dir, NULL);
    if (!rd) {
        refuse(why, cap, "cannot resolve the folder %s: %s", dir, strerror(errno));
        free(dir);
        return NULL;
    }
    free(dir);
    size_t n = strlen(rd) + strlen(base) + 2;
    char *r = malloc(n);
    if (r) snprintf(r, n, "%s%s%s", rd, strcmp(rd, "/") ? "/" : "", base);
    else refuse(why, cap, "out of memory");
    free(rd);
    return r;
}

/* Is any folder from resolved's parent up to "/" the folder st? */
static int inside(const char *resolved, const struct stat *st)
{
    char *p = strdup(resolved);
    int found = 0;
    if (!p) return 1; /* refuse when unsure */
    for (;;) {
        char *slash = strrchr(p, '/');
        if (!slash) break;
        if (slash == p) slash[1] = '\0';
        else *slash = '\0';
        struct stat d;
        if (stat(p, &d) == 0 && d.st_dev == st->st_dev && d.st_ino == st->st_ino) {
            found = 1;
            break;
        }
        if (!strcmp(p, "/")) break;
    }
    free(p);
    return found;
}

/* Refuse when path (resolved; existing as *ost when ost) is inside or is one
 * of the PATHs or the index. */
static int protected_check(const char *what, const char *resolved, const struct stat *ost,
                           const char *const *paths, size_t n, const char *index_path,
                           char *why, size_t cap)
{
    for (size_t i = 0; i <= n; i++) {
        const char *p = i < n ? paths[i] : index_path;
        const char *kind = i < n ? "the evidence PATH" : "the index";
        struct stat ps;
        if (!p || stat(p, &ps) != 0) continue; /* nothing there to protect */
        if (ost && ost->st_dev == ps.st_dev && ost->st_ino == ps.st_ino)
            return refuse(why, cap, "%s %s is the same file as %s %s: refused", what,
                          resolved, kind, p);
        if (S_ISDIR(ps.st_mode) && inside(resolved, &ps))
            return refuse(why, cap, "%s %s is inside %s %s: refused (no output may land "
                          "in the evidence or the index)", what, resolved, kind, p);
    }
    return 0;
}

int cli_check_input_path(const char *what, const char *path, const char *const *paths,
                         size_t n, const char *index_path, char *why, size_t cap)
{
    char *r = resolve(path, why, cap);
    if (!r) return -1;
    struct stat st;
    int rc = protected_check(what, r, stat(r, &st) == 0 ? &st : NULL, paths, n, index_path,
                             why, cap);
    free(r);
    return rc;
}

int cli_open_output(const char *out, const char *const *paths, size_t n,
                    const char *index_path, int force, cli_output *o, char *why, size_t cap)
{
    memset(o, 0, sizeof *o);
    char *r = resolve(out, why, cap);
    if (!r) return -1;
    struct stat st;
    int exists = stat(r, &st) == 0; /* r has no symlink left but a pipe's */
    int rc = -1;
    if (exists) {
        if (S_ISDIR(st.st_mode)) {
            refuse(why, cap, "the report %s is a folder", r);
            goto done;
        }
        if (S_ISBLK(st.st_mode)) {
            refuse(why, cap, "the report %s is a block device: refused", r);
            goto done;
        }
        if (S_ISREG(st.st_mode) && st.st_nlink > 1) {
            refuse(why, cap, "the report %s has %lu hard links (another name may be evidence): "
                   "refused", r, (unsigned long)st.st_nlink);
            goto done;
        }
    }
    if (protected_check("the report", r, exists ? &st : NULL, paths, n, index_path, why,
                        cap) != 0)
        goto done;
    if (exists && S_ISREG(st.st_mode) && st.st_size > 0 && !force) {
        refuse(why, cap, "the report %s exists already: refused (--force overwrites it)", r);
        goto done;
    }
    o->resolved = r;
    o->existed = exists;
    if (exists) {
        o->dev = st.st_dev;
        o->ino = st.st_ino;
    }
    r = NULL;
    rc = 0;
done:
    free(r);
    return rc;
}

/* Open path for writing with no truncation yet; create it when it did not
 * exist (O_EXCL: nobody put something there since the checks). The file
 * opened must be the one checked. */
static int open_checked(const char *path, int existed, dev_t dev, ino_t ino, char *why,
                        size_t cap)
{
    struct stat ls;
    int is_link = lstat(path, &ls) == 0 && S_ISLNK(ls.st_mode); /* only to a pipe */
    int flags = O_WRONLY | O_CLOEXEC | O_NOCTTY | (is_link ? 0 : O_NOFOLLOW) |
                (existed ? 0 : O_CREAT | O_EXCL);
    int fd = open(path, flags, 0644);
    if (fd < 0) return refuse(why, cap, "cannot write %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || (existed && (st.st_dev != dev || st.st_ino != ino))) {
        close(fd);
        return refuse(why, cap, "%s changed while it was checked: refused", path);
    }
    if (S_ISREG(st.st_mode) && ftruncate(fd, 0) != 0) {
        int en = errno;
        close(fd);
        return refuse(why, cap, "cannot truncate %s: %s", path, strerror(en));
    }
    return fd;
}

FILE *cli_output_open(cli_output *o, int in_place, char *why, size_t cap)
{
    int fd;
    if (in_place) {
        /* Resuming in place: write beside it, rename over it at the end. A
         * stale temporary file of an earlier run is removed first: it lies
         * in the report's folder, which the checks put outside the evidence. */
        size_t n = strlen(o->resolved) + 16;
        o->tmp = malloc(n);
        if (!o->tmp) {
            refuse(why, cap, "out of memory");
            return NULL;
        }
        snprintf(o->tmp, n, "%s.resume-tmp", o->resolved);
        struct stat ts;
        if (lstat(o->tmp, &ts) == 0) {
            if (!S_ISREG(ts.st_mode) || ts.st_nlink > 1 || unlink(o->tmp) != 0) {
                refuse(why, cap, "cannot replace the stale %s: remove it", o->tmp);
                return NULL;
            }
        }
        fd = open_checked(o->tmp, 0, 0, 0, why, cap);
    } else {
        fd = open_checked(o->resolved, o->existed, o->dev, o->ino, why, cap);
    }
    if (fd < 0) return NULL;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        refuse(why, cap, "cannot write %s: %s", o->resolved, strerror(errno));
        close(fd);
    }
    return f;
}

void cli_output_free(cli_output *o)
{
    free(o->resolved);
    free(o->tmp);
    memset(o, 0, sizeof *o);
}
