/* engine/index/parse_vpdq.c -- vPDQ hash files (one known video each) into
 * the sink and a list of videos (index.h, "known videos").
 *
 * The format is what vpdq-hash-video writes (vpdqio.cpp): one line per
 * sampled frame, FRAME,QUALITY,PDQ_HEX,TIMESTAMP (decimal frame number,
 * quality 0..100, 64 hex digits, seconds). The reference's reader takes
 * the first four comma-separated fields of every line and dies on anything
 * else; here a bad line is a bad record (file:line: reason), blank lines
 * are skipped, and a file without a frame is an error (the reference's
 * "Empty hash file"). A folder is read as one list of videos: its regular
 * files in name order, each a video named by its file name without the
 * extension (what vpdq-hash-video -d names them after). */
#include "index.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A hash file is small (a line per sampled second): read whole, at most this. */
#define VPDQ_MAX_FILE ((size_t)256 << 20)
#define VPDQ_MAX_FILES 1000000

void imt__idx_videos_free(imt__idx_videos *v)
{
    if (!v) return;
    for (size_t i = 0; i < v->n; i++) imt__free(v->v[i].id);
    imt__free(v->v);
    imt__free(v->f);
    memset(v, 0, sizeof *v);
}

/* One line: FRAME,QUALITY,HEX,TIMESTAMP. 0 and a reason when malformed. */
static int parse_line(char *line, uint8_t pdq[32], int *quality, double *ts, const char **why)
{
    char *f[4];
    char *p = line;
    for (int i = 0; i < 4; i++) {
        f[i] = p;
        char *c = strchr(p, ',');
        if (i < 3) {
            if (!c) {
                *why = "not FRAME,QUALITY,PDQ_HEX,TIMESTAMP";
                return 0;
            }
            *c = 0;
            p = c + 1;
        } else if (c) {
            *c = 0; /* the reference ignores further fields */
        }
    }
    char *end;
    errno = 0;
    unsigned long long fr = strtoull(f[0], &end, 10);
    (void)fr;
    if (!*f[0] || *end || errno || f[0][0] == '-') {
        *why = "the frame number is not a number";
        return 0;
    }
    long q = strtol(f[1], &end, 10);
    if (!*f[1] || *end || q < 0 || q > 100) {
        *why = "the quality is not a number from 0 to 100";
        return 0;
    }
    *quality = (int)q;
    if (strlen(f[2]) != 64) {
        *why = "the PDQ hash has not 64 hex digits";
        return 0;
    }
    if (imt_hex_decode(pdq, 32, f[2], 64) != IMT_OK) {
        *why = "the PDQ hash is not hex";
        return 0;
    }
    double t = strtod(f[3], &end);
    if (!*f[3] || *end || !isfinite(t) || t < 0) {
        *why = "the timestamp is not a number of seconds";
        return 0;
    }
    *ts = t;
    return 1;
}

static imt_err read_all(imt__idx_sink *s, int fd, char **out, size_t *len)
{
    struct stat st;
    if (fstat(fd, &st) != 0) return imt__idx_sink_fail(s, IMT_E_IO, "%s", strerror(errno));
    if ((uint64_t)st.st_size > VPDQ_MAX_FILE)
        return imt__idx_sink_fail(s, IMT_E_TOO_LARGE, "a vPDQ hash file over %zu bytes",
                                  VPDQ_MAX_FILE);
    size_t cap = (size_t)st.st_size + 1, n = 0;
    char *b = imt__malloc(cap);
    if (!b) return IMT_E_NOMEM;
    for (;;) {
        if (n + 1 >= cap) break;
        ssize_t r = pread(fd, b + n, cap - 1 - n, (off_t)n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            imt__free(b);
            return imt__idx_sink_fail(s, IMT_E_IO, "read error: %s", strerror(errno));
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    b[n] = 0;
    *out = b;
    *len = n;
    return IMT_OK;
}

static imt_err add_video(imt__idx_videos *v, const char *id)
{
    if (v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 8;
        imt__idx_video *p = imt__realloc(v->v, nc * sizeof *p);
        if (!p) return IMT_E_NOMEM;
        v->v = p;
        v->cap = nc;
    }
    char *d = imt__strdup(id);
    if (!d) return IMT_E_NOMEM;
    v->v[v->n].id = d;
    v->v[v->n].first = v->nf;
    v->v[v->n].n = 0;
    v->n++;
    return IMT_OK;
}

static imt_err add_frame(imt__idx_videos *v, const uint8_t pdq[32], int q, double ts)
{
    if (v->nf == v->capf) {
        size_t nc = v->capf ? v->capf * 2 : 256;
        imt__idx_vframe *p = imt__realloc(v->f, nc * sizeof *p);
        if (!p) return IMT_E_NOMEM;
        v->f = p;
        v->capf = nc;
    }
    imt__idx_vframe *f = &v->f[v->nf++];
    memcpy(f->pdq, pdq, 32);
    f->quality = (int8_t)q;
    f->ts = ts;
    v->v[v->n - 1].n++;
    return IMT_OK;
}

/* One hash file (fd) as the video id. */
static imt_err parse_file(imt__idx_sink *s, int fd, const char *id, imt__idx_videos *out)
{
    imt_err err = IMT_OK;
    char *buf = NULL;
    size_t len = 0;
    if (!*id || strlen(id) > 400)
        return imt__idx_sink_fail(s, IMT_E_PARSE, "a video id of %zu bytes (1 to 400)",
                                  strlen(id));
    IMT_TRY(read_all(s, fd, &buf, &len));
    IMT_TRY(add_video(out, id));
    uint64_t lineno = 0;
    char *p = buf;
    while (p < buf + len) {
        char *nl = memchr(p, '\n', (size_t)(buf + len - p));
        char *line = p;
        if (nl) *nl = 0;
        p = nl ? nl + 1 : buf + len;
        lineno++;
        size_t ll = strlen(line);
        if (ll != (size_t)((nl ? nl : buf + len) - line)) {
            IMT_TRY(imt__idx_sink_bad(s, lineno, IMT_E_PARSE, "a NUL byte in the line"));
            continue;
        }
        while (ll && (line[ll - 1] == '\r' || line[ll - 1] == ' ')) line[--ll] = 0;
        if (!ll) continue;
        uint8_t pdq[32];
        int q;
        double ts;
        const char *why = "";
        if (!parse_line(line, pdq, &q, &ts, &why)) {
            IMT_TRY(imt__idx_sink_bad(s, lineno, IMT_E_PARSE, "%s", why));
            continue;
        }
        imt__idx_rec r;
        memset(&r, 0, sizeof r);
        r.kinds = KB_PDQ;
        r.quality = (int8_t)q;
        r.category = s->def_cat;
        r.line = lineno;
        memcpy(r.pdq, pdq, 32);
        IMT_TRY(imt__idx_sink_add(s, &r, "", id));
        IMT_TRY(add_frame(out, pdq, q, ts));
    }
    if (out->v[out->n - 1].n == 0)
        err = imt__idx_sink_fail(s, IMT_E_EMPTY, "no frame in the vPDQ hash file");
cleanup:
    imt__free(buf);
    return err;
}

int imt__idx_vpdq_sniff(int fd)
{
    char b[512];
    ssize_t n = pread(fd, b, sizeof b - 1, 0);
    if (n <= 0) return 0;
    b[n] = 0;
    char *nl = strchr(b, '\n');
    if (!nl && n == (ssize_t)sizeof b - 1) return 0;
    if (nl) *nl = 0;
    size_t ll = strlen(b);
    while (ll && b[ll - 1] == '\r') b[--ll] = 0;
    uint8_t pdq[32];
    int q;
    double ts;
    const char *why;
    /* exactly four fields, the third 64 hex digits: no other format has it */
    int commas = 0;
    for (char *c = b; *c; c++) commas += *c == ',';
    return commas == 3 && parse_line(b, pdq, &q, &ts, &why);
}

static int strcmp_ptr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The folder's regular files, sorted by name. */
static imt_err list_dir(imt__idx_sink *s, const char *dir, char ***names, size_t *n)
{
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return imt__idx_sink_fail(s, IMT_E_IO, "cannot read the folder: %s", strerror(errno));
    imt_err err = IMT_OK;
    size_t cap = 0;
    struct dirent *e;
    int dfd = dirfd(d);
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        struct stat st;
        if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (*n == VPDQ_MAX_FILES) {
            err = imt__idx_sink_fail(s, IMT_E_TOO_LARGE, "over %d files", VPDQ_MAX_FILES);
            break;
        }
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            char **p = imt__realloc(*names, nc * sizeof *p);
            if (!p) {
                err = IMT_E_NOMEM;
                break;
            }
            *names = p;
            cap = nc;
        }
        if (!((*names)[*n] = imt__strdup(e->d_name))) {
            err = IMT_E_NOMEM;
            break;
        }
        (*n)++;
    }
    closedir(d);
    if (!err && *n == 0) err = imt__idx_sink_fail(s, IMT_E_EMPTY, "no hash file in the folder");
    if (!err) qsort(*names, *n, sizeof **names, strcmp_ptr);
    return err;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++) imt__free(names[i]);
    imt__free(names);
}

imt_err imt__idx_vpdq_dir_sha256(imt__idx_sink *s, const char *dir, char out[65])
{
    char **names;
    size_t n;
    imt_err err = list_dir(s, dir, &names, &n);
    if (err) return err;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    char *buf = NULL;
    if (!md) {
        err = IMT_E_NOMEM;
        goto cleanup;
    }
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    for (size_t i = 0; i < n; i++) {
        size_t pl = strlen(dir) + strlen(names[i]) + 2;
        char *path = imt__malloc(pl);
        if (!path) {
            err = IMT_E_NOMEM;
            goto cleanup;
        }
        snprintf(path, pl, "%s/%s", dir, names[i]);
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        imt__free(path);
        if (fd < 0) {
            err = imt__idx_sink_fail(s, IMT_E_IO, "%s: %s", names[i], strerror(errno));
            goto cleanup;
        }
        size_t len;
        err = read_all(s, fd, &buf, &len);
        close(fd);
        if (err) goto cleanup;
        EVP_DigestUpdate(md, names[i], strlen(names[i]) + 1);
        uint8_t l8[8];
        for (int k = 0; k < 8; k++) l8[k] = (uint8_t)((uint64_t)len >> (8 * k));
        EVP_DigestUpdate(md, l8, 8);
        EVP_DigestUpdate(md, buf, len);
        imt__free(buf);
        buf = NULL;
    }
    unsigned char dg[32];
    unsigned dn;
    EVP_DigestFinal_ex(md, dg, &dn);
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", dg[i]);
cleanup:
    imt__free(buf);
    EVP_MD_CTX_free(md);
    free_names(names, n);
    return err;
}

/* The video id a file name gives: without its last extension. */
static char *id_of(const char *name)
{
    const char *b = strrchr(name, '/');
    b = b ? b + 1 : name;
    char *id = imt__strdup(b);
    if (!id) return NULL;
    char *dot = strrchr(id, '.');
    if (dot && dot != id) *dot = 0;
    return id;
}

imt_err imt__idx_parse_vpdq(imt__idx_sink *s, const char *path, int fd, const char *id,
                            imt__idx_videos *out)
{
    imt_err err = IMT_OK;
    if (fd >= 0) {
        char *own = id ? NULL : id_of(path);
        if (!id && !own) return IMT_E_NOMEM;
        err = parse_file(s, fd, id ? id : own, out);
        imt__free(own);
        return err;
    }
    char **names;
    size_t n;
    IMT_TRY(list_dir(s, path, &names, &n));
    const char *dirpath = s->path;
    char *fpath = NULL;
    for (size_t i = 0; i < n && !err; i++) {
        size_t pl = strlen(path) + strlen(names[i]) + 2;
        imt__free(fpath);
        fpath = imt__malloc(pl);
        char *vid = fpath ? id_of(names[i]) : NULL;
        if (!fpath || !vid) {
            imt__free(vid);
            err = IMT_E_NOMEM;
            break;
        }
        snprintf(fpath, pl, "%s/%s", path, names[i]);
        s->path = fpath; /* errors name the file */
        int ffd = open(fpath, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (ffd < 0) err = imt__idx_sink_fail(s, IMT_E_IO, "%s", strerror(errno));
        else {
            err = parse_file(s, ffd, vid, out);
            close(ffd);
        }
        imt__free(vid);
    }
    s->path = dirpath; /* the message, made already, keeps the file's name */
    imt__free(fpath);
    free_names(names, n);
    if (!err && out->n > 1) {
        /* two files giving one id (a.txt, a.csv) would be one video */
        char **ids = imt__malloc(out->n * sizeof *ids);
        if (!ids) return IMT_E_NOMEM;
        for (size_t i = 0; i < out->n; i++) ids[i] = out->v[i].id;
        qsort(ids, out->n, sizeof *ids, strcmp_ptr);
        for (size_t i = 1; i < out->n && !err; i++)
            if (!strcmp(ids[i], ids[i - 1]))
                err = imt__idx_sink_fail(s, IMT_E_DUPLICATE,
                                         "two hash files give the video id '%s'", ids[i]);
        imt__free(ids);
    }
cleanup:
    return err;
}
