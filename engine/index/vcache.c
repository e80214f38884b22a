/* engine/index/vcache.c -- the verified-state record: what a full open-time
 * check of a read-only index found, kept OUTSIDE the index, so that the next
 * open of the same, unchanged file reads its meta and branch pages only
 * (docs/INDEX.md, "Opening: the verified-state record").
 *
 * Where: $XDG_CACHE_HOME/imgtriage/verified (an absolute XDG_CACHE_HOME),
 * else $HOME/.cache/imgtriage/verified; folders created 0700; one file per
 * data.mdb, named by its device and inode. A folder not owned by this user,
 * writable by others, a symbolic link, or inside the index is not used
 * (another user could plant a record there; no output lands in the index).
 * Every failure here means "no record": the open then checks everything.
 *
 * The key: device, inode, size, mtime and ctime (nanoseconds), the meta
 * page's txnid, last page and page size, and a SHA-256 of the meta pages,
 * every branch page and the small tables' leaves (pagecheck.c). Any write
 * through the file system changes ctime (utimensat restoring mtime sets
 * ctime too); any LMDB commit changes the meta page. Not seen: a change
 * that bypasses the file system (a raw write to the block device, media
 * decay) in a leaf page, or a file system without a real change time; the
 * docs say so, and IMGTRIAGE_FULL_CHECK=1 (or imt_index_opts.full_check)
 * checks everything. */
#include "index.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define VREC_MAGIC "IMTVREC1"
/* The file's timestamps must be this much older than the check that is
 * recorded: a write within one timestamp tick of the check (coarse clock:
 * a few ms; FAT: 2 s) could leave them unchanged. */
#define VREC_RACY_NS (2000000000ll)
#define VC_NAME (PATH_MAX + 48) /* a record's path: the folder, "/", 33 + 4 bytes */

int imt__idx_vcache_enabled(void)
{
    const char *e = getenv("IMGTRIAGE_FULL_CHECK");
    return !e || !*e || !strcmp(e, "0");
}

/* A folder we may trust: ours, a real folder, not writable by others. */
static int private_dir(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() &&
           !(st.st_mode & (S_IWGRP | S_IWOTH));
}

/* The record folder into out (PATH_MAX); create: make missing levels. 0 ok. */
static int vc_dir(char *out, int create)
{
    const char *x = getenv("XDG_CACHE_HOME");
    char base[PATH_MAX - 64];
    int n;
    if (x && x[0] == '/') n = snprintf(base, sizeof base, "%s", x);
    else {
        const char *h = getenv("HOME");
        if (!h || h[0] != '/') return -1;
        n = snprintf(base, sizeof base, "%s/.cache", h);
    }
    if (n < 0 || (size_t)n >= sizeof base) return -1;
    if (create && mkdir(base, 0700) != 0 && errno != EEXIST) return -1;
    snprintf(out, PATH_MAX, "%s/imgtriage", base);
    if (create && mkdir(out, 0700) != 0 && errno != EEXIST) return -1;
    if (!private_dir(out)) return -1;
    snprintf(out, PATH_MAX, "%s/imgtriage/verified", base);
    if (create && mkdir(out, 0700) != 0 && errno != EEXIST) return -1;
    return private_dir(out) ? 0 : -1;
}

static void vc_name(char *out, const char *dir, const imt__idx_vkey *k)
{
    snprintf(out, VC_NAME, "%s/%016llx-%016llx.rec", dir, (unsigned long long)k->dev,
             (unsigned long long)k->ino);
}

static int vc_sum(const imt__idx_vrec *r, uint8_t out[32])
{
    unsigned n = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(md, r, offsetof(imt__idx_vrec, check)) == 1 &&
             EVP_DigestFinal_ex(md, out, &n) == 1;
    EVP_MD_CTX_free(md);
    return ok ? 0 : -1;
}

/* Everything of the key but the structure hash, which the light walk
 * computes and the caller compares. */
static int key_matches(const imt__idx_vkey *a, const imt__idx_vkey *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime_s == b->mtime_s && a->mtime_ns == b->mtime_ns && a->ctime_s == b->ctime_s &&
           a->ctime_ns == b->ctime_ns && a->txnid == b->txnid && a->last_pgno == b->last_pgno &&
           a->psize == b->psize;
}

int imt__idx_vcache_load(const imt__idx_vkey *key, imt__idx_vrec *out)
{
    char dir[PATH_MAX], name[VC_NAME];
    uint8_t sum[32];
    if (vc_dir(dir, 0) != 0) return 0;
    vc_name(name, dir, key);
    int fd = open(name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return 0;
    struct stat st;
    ssize_t r = -1;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
        st.st_size == (off_t)sizeof *out)
        r = read(fd, out, sizeof *out);
    close(fd);
    if (r != (ssize_t)sizeof *out || memcmp(out->magic, VREC_MAGIC, 8) != 0 ||
        vc_sum(out, sum) != 0 || memcmp(sum, out->check, 32) != 0 || !key_matches(&out->key, key))
        return 0;
    return 1;
}

/* Non-zero when the folder c is dir or inside it (both resolved). */
static int inside(const char *c, const char *dir)
{
    char rc[PATH_MAX], rd[PATH_MAX];
    if (!realpath(c, rc) || !realpath(dir, rd)) return 1; /* unsure: do not write */
    size_t n = strlen(rd);
    if (n == 1) return 1;                                  /* the index is "/" */
    return !strncmp(rc, rd, n) && (rc[n] == '/' || rc[n] == '\0');
}

int imt__idx_vcache_store(const char *idxdir, imt__idx_vrec *rec)
{
    char dir[PATH_MAX], name[VC_NAME], tmp[VC_NAME + 32];
    memcpy(rec->magic, VREC_MAGIC, 8);
    rec->key.pad = 0;
    if (vc_sum(rec, rec->check) != 0) return 0;
    /* never create anything inside the index: look before making folders */
    char probe[PATH_MAX];
    const char *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
    snprintf(probe, sizeof probe, "%s", x && x[0] == '/' ? x : h ? h : "/");
    for (;;) {
        /* the nearest existing folder of the cache path */
        struct stat st;
        if (stat(probe, &st) == 0) break;
        char *sl = strrchr(probe, '/');
        if (!sl || sl == probe) {
            snprintf(probe, sizeof probe, "/");
            break;
        }
        *sl = '\0';
    }
    if (inside(probe, idxdir)) return 0;
    if (vc_dir(dir, 1) != 0 || inside(dir, idxdir)) return 0;
    vc_name(name, dir, &rec->key);
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", name, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return 0;
    ssize_t w = write(fd, rec, sizeof *rec);
    int ok = w == (ssize_t)sizeof *rec;
    ok = close(fd) == 0 && ok;
    if (ok && rename(tmp, name) == 0) return 1;
    unlink(tmp);
    return 0;
}

int imt__idx_vcache_racy(const imt__idx_vkey *k, int64_t checked_at_ns)
{
    int64_t m = k->mtime_s * 1000000000ll + k->mtime_ns;
    int64_t c = k->ctime_s * 1000000000ll + k->ctime_ns;
    int64_t t = m > c ? m : c;
    return t >= checked_at_ns - VREC_RACY_NS;
}

void imt__idx_vkey_from_stat(imt__idx_vkey *k, const struct stat *st)
{
    k->dev = (uint64_t)st->st_dev;
    k->ino = (uint64_t)st->st_ino;
    k->size = (uint64_t)st->st_size;
    k->mtime_s = (int64_t)st->st_mtim.tv_sec;
    k->mtime_ns = (int64_t)st->st_mtim.tv_nsec;
    k->ctime_s = (int64_t)st->st_ctim.tv_sec;
    k->ctime_ns = (int64_t)st->st_ctim.tv_nsec;
}

int imt__idx_vcache_stat(const char *path, imt__idx_vkey *k)
{
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    imt__idx_vkey_from_stat(k, &st);
    return 0;
}

int imt__idx_vcache_content(imt_index *idx)
{
    const imt__idx_vrec *r = &idx->vrec;
    /* the identity covers the header (with every segment's checksum) and
     * the delta checksum: the same identity, the same sums */
    if (!idx->vc_pages || !r->content_ok || idx->snap_txnid != r->key.txnid ||
        memcmp(r->identity, idx->identity, sizeof idx->identity) != 0)
        return 0;
    idx->vc_content = 1;
    idx->verified_at = r->content_at;
    return 1;
}

void imt__idx_vcache_after_open(imt_index *idx, const char *data)
{
    int fresh_content = idx->content_verified && !idx->vc_content;
    if (idx->vc_pages && !fresh_content) return; /* nothing new to record */
    imt__idx_vkey now = idx->vkey;
    /* the snapshot is the one checked, the file did not change while it
     * was checked, and its timestamps are older than the check */
    if (idx->snap_txnid != idx->vkey.txnid || imt__idx_vcache_stat(data, &now) != 0 ||
        memcmp(&now, &idx->vkey, sizeof now) != 0 || imt__idx_vcache_racy(&now, idx->vc_check_ns))
        return;
    imt__idx_vrec rec;
    memset(&rec, 0, sizeof rec);
    rec.key = idx->vkey;
    rec.pages_at = idx->vc_pages ? idx->vrec.pages_at : idx->vc_check_ns / 1000000000ll;
    if (fresh_content && idx->content_verified) {
        rec.content_ok = 1;
        rec.content_at = idx->verified_at;
        memcpy(rec.identity, idx->identity, sizeof idx->identity);
    } else if (idx->vc_content) {
        rec.content_ok = 1;
        rec.content_at = idx->vrec.content_at;
        memcpy(rec.identity, idx->vrec.identity, sizeof rec.identity);
    }
    idx->vc_stored = imt__idx_vcache_store(idx->path, &rec);
}
