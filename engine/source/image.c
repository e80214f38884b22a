/* engine/source/image.c -- one disk image opened read-only: a raw file, a
 * split raw set (.001, .002, ...), an E01 set through libewf, or a block
 * device; its bytes by offset, its acquisition metadata, and TSK's view of
 * it (TSK_IMG_TYPE_EXTERNAL over our own reader, so that a corrupt E01
 * chunk or a missing segment is an error naming the image region, never
 * silently zeros).
 *
 * Why our own reader rather than TSK's ewf/raw support: each worker opens
 * its own imt__img (TSK's image cache lock would serialise a shared one),
 * and libewf hands back a chunk whose checksum fails as if it were good
 * data unless the caller checks the checksum-error list after each read. */
#include "source.h"

#include <errno.h>
#include <fcntl.h>
#include <libewf.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <tsk/libtsk.h>
#include <unistd.h>

#define MAX_SPLIT 10000 /* .001 .. .9999 */

typedef struct seg {
    int fd;
    uint64_t start, size;
} seg;

struct imt__img {
    imt__img_kind kind;
    uint64_t size;
    seg *segs;                /* raw, split, device */
    size_t n_segs;
    libewf_handle_t *ewf;
    uint32_t bps;             /* E01 bytes per sector */
    imt__img_meta meta;
    char last_error[256];     /* the last failed read, for TSK's callers */
};

const char *imt__img_kind_name(imt__img_kind k)
{
    switch (k) {
    case IMT__IMG_RAW: return "raw";
    case IMT__IMG_SPLIT: return "split-raw";
    case IMT__IMG_EWF: return "e01";
    case IMT__IMG_DEVICE: return "block-device";
    }
    return "unknown";
}

static int has(const uint8_t *b, size_t n, size_t off, const char *magic, size_t ml)
{
    return off + ml <= n && memcmp(b + off, magic, ml) == 0;
}

static unsigned le16(const uint8_t *p) { return (unsigned)p[0] | (unsigned)p[1] << 8; }
static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A DOS partition table: the boot signature, and four entries that look
 * like entries (status 0 or 0x80; at least one used, each used one with a
 * start and a length). A FAT boot sector has the signature too: it is
 * recognised as FAT first. */
static int dos_table(const uint8_t *b, size_t n)
{
    if (n < 512 || b[510] != 0x55 || b[511] != 0xAA) return 0;
    int used = 0;
    for (int i = 0; i < 4; i++) {
        const uint8_t *e = b + 446 + 16 * i;
        if (e[0] != 0 && e[0] != 0x80) return 0;
        if (e[4] == 0) continue;
        if (le32(e + 8) == 0 || le32(e + 12) == 0) return 0;
        used++;
    }
    return used > 0;
}

static int fs_superblock(const uint8_t *b, size_t n)
{
    if (has(b, n, 3, "NTFS    ", 8) || has(b, n, 3, "EXFAT   ", 8)) return 1;
    if (n >= 512 && b[510] == 0x55 && b[511] == 0xAA &&
        (has(b, n, 54, "FAT1", 4) || has(b, n, 82, "FAT32   ", 8))) {
        unsigned bps = le16(b + 11);
        return bps == 512 || bps == 1024 || bps == 2048 || bps == 4096;
    }
    if (n >= 1084 && le16(b + 1080) == 0xEF53 && le32(b + 1024 + 24) <= 6 &&
        le32(b + 1024) != 0)
        return 1; /* ext2/3/4: magic, a sane block size, some inodes */
    if ((has(b, n, 1024, "H+", 2) && le16(b + 1026) == 4) ||
        (has(b, n, 1024, "HX", 2) && le16(b + 1026) == 5))
        return 1;
    if (has(b, n, 32, "NXSB", 4)) return 1;
    if (has(b, n, 0x8001, "CD001", 5)) return 1;
    return 0;
}

int imt__img_sniff(const char *path, int is_blockdev, imt__img_kind *kind)
{
    enum { N = 0x8800 };
    uint8_t *b = imt__malloc(N);
    int fd = -1, r = 0;
    if (!b) return 0;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) goto done;
    ssize_t n = 0;
    while (n < N) {
        ssize_t k = pread(fd, b + n, (size_t)(N - n), n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        n += k;
    }
    if (n <= 0) {
        /* an empty or unreadable device is still what the user named */
        r = is_blockdev;
        if (r) *kind = IMT__IMG_DEVICE;
        goto done;
    }
    if (has(b, (size_t)n, 0, "EVF\x09\x0d\x0a\xff\x00", 8)) {
        *kind = IMT__IMG_EWF;
        r = 1;
        goto done;
    }
    if (is_blockdev) {
        *kind = IMT__IMG_DEVICE;
        r = 1;
        goto done;
    }
    if (imt_sniff(b, (size_t)n) != IMT_FMT_UNKNOWN) goto done; /* a picture */
    if (has(b, (size_t)n, 512, "EFI PART", 8) || has(b, (size_t)n, 4096, "EFI PART", 8) ||
        fs_superblock(b, (size_t)n) || dos_table(b, (size_t)n)) {
        size_t pl = strlen(path);
        *kind = pl > 4 && strcmp(path + pl - 4, ".001") == 0 ? IMT__IMG_SPLIT : IMT__IMG_RAW;
        r = 1;
    }
done:
    if (fd >= 0) close(fd);
    imt__free(b);
    return r;
}

static void ewf_detail(libewf_error_t **e, const char *what, char *detail, size_t cap)
{
    char msg[200] = "";
    if (e && *e) {
        libewf_error_sprint(*e, msg, sizeof msg);
        libewf_error_free(e);
        for (char *p = msg; *p; p++)
            if (*p == '\n') *p = ' ';
    }
    imt__set_detail(detail, cap, "%s%s%s", what, msg[0] ? ": " : "", msg);
}

static void ewf_header(libewf_handle_t *h, const char *id, char *out, size_t cap)
{
    libewf_error_t *e = NULL;
    out[0] = '\0';
    if (libewf_handle_get_utf8_header_value(h, (const uint8_t *)id, strlen(id), (uint8_t *)out,
                                            cap, &e) != 1)
        out[0] = '\0';
    if (e) libewf_error_free(&e);
}

static imt_err open_ewf(imt__img *img, const char *path, char *detail, size_t cap)
{
    libewf_error_t *e = NULL;
    char **names = NULL;
    int n = 0;
    imt_err err = IMT_OK;
    if (libewf_glob(path, strlen(path), LIBEWF_FORMAT_UNKNOWN, &names, &n, &e) != 1 || n < 1) {
        ewf_detail(&e, "cannot find the E01 segments", detail, cap);
        return IMT_E_IO;
    }
    if (libewf_handle_initialize(&img->ewf, &e) != 1) {
        ewf_detail(&e, "libewf", detail, cap);
        err = IMT_E_NOMEM;
        goto cleanup;
    }
    if (libewf_handle_open(img->ewf, names, n, LIBEWF_OPEN_READ, &e) != 1) {
        ewf_detail(&e, "cannot open the E01", detail, cap);
        err = IMT_E_IO;
        goto cleanup;
    }
    size64_t ms = 0;
    if (libewf_handle_get_media_size(img->ewf, &ms, &e) != 1 ||
        libewf_handle_get_bytes_per_sector(img->ewf, &img->bps, &e) != 1) {
        ewf_detail(&e, "cannot read the E01's media size", detail, cap);
        err = IMT_E_IO;
        goto cleanup;
    }
    /* A chunk whose checksum fails is listed; reads check the list
     * (ewf_pread) and turn it into an error. */
    img->size = ms;
    if (img->bps == 0) img->bps = 512;
    imt__img_meta *m = &img->meta;
    ewf_header(img->ewf, "case_number", m->case_number, sizeof m->case_number);
    ewf_header(img->ewf, "evidence_number", m->evidence_number, sizeof m->evidence_number);
    ewf_header(img->ewf, "examiner_name", m->examiner, sizeof m->examiner);
    ewf_header(img->ewf, "description", m->description, sizeof m->description);
    ewf_header(img->ewf, "notes", m->notes, sizeof m->notes);
    ewf_header(img->ewf, "acquiry_date", m->acquiry_date, sizeof m->acquiry_date);
    ewf_header(img->ewf, "system_date", m->system_date, sizeof m->system_date);
    ewf_header(img->ewf, "acquiry_software_version", m->acquiry_software,
               sizeof m->acquiry_software);
    ewf_header(img->ewf, "acquiry_operating_system", m->acquiry_os, sizeof m->acquiry_os);
    m->has_md5 = libewf_handle_get_md5_hash(img->ewf, m->md5, 16, &e) == 1;
    if (e) libewf_error_free(&e);
    m->has_sha1 = libewf_handle_get_sha1_hash(img->ewf, m->sha1, 20, &e) == 1;
    if (e) libewf_error_free(&e);
    m->segments = (unsigned)n;
cleanup:
    libewf_glob_free(names, n, &e);
    if (e) libewf_error_free(&e);
    return err;
}

static imt_err add_seg(imt__img *img, int fd, uint64_t size)
{
    seg *ns = imt__realloc(img->segs, (img->n_segs + 1) * sizeof *ns);
    if (!ns) return IMT_E_NOMEM;
    img->segs = ns;
    ns[img->n_segs].fd = fd;
    ns[img->n_segs].start = img->size;
    ns[img->n_segs].size = size;
    img->n_segs++;
    img->size += size;
    return IMT_OK;
}

static int open_ro(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOATIME);
    if (fd < 0 && errno == EPERM) fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    return fd;
}

static imt_err open_raw(imt__img *img, const char *path, char *detail, size_t cap)
{
    imt_err err = IMT_OK;
    size_t pl = strlen(path);
    char *name = imt__malloc(pl + 8);
    if (!name) return IMT_E_NOMEM;
    memcpy(name, path, pl + 1);
    for (unsigned i = 1; i <= MAX_SPLIT; i++) {
        if (img->kind == IMT__IMG_SPLIT)
            snprintf(name + pl - 3, 8, "%03u", i);
        int fd = open_ro(name);
        if (fd < 0) {
            if (i > 1 && errno == ENOENT) break; /* the set ends */
            imt__set_detail(detail, cap, "cannot open %s: %s", i > 1 ? "a segment" : "the image",
                            strerror(errno));
            err = IMT_E_IO;
            break;
        }
        struct stat st;
        uint64_t size = 0;
        if (fstat(fd, &st) != 0) {
            close(fd);
            err = IMT_E_IO;
            break;
        }
        if (S_ISBLK(st.st_mode)) {
            off_t end = lseek(fd, 0, SEEK_END);
            size = end > 0 ? (uint64_t)end : 0;
        } else {
            size = (uint64_t)st.st_size;
        }
        err = add_seg(img, fd, size);
        if (err) {
            close(fd);
            break;
        }
        if (img->kind != IMT__IMG_SPLIT) break;
    }
    imt__free(name);
    return err;
}

imt_err imt__img_open(imt__img **out, const char *path, imt__img_kind kind, char *detail,
                      size_t cap)
{
    imt_err err;
    *out = NULL;
    imt__img *img = imt__calloc(1, sizeof *img);
    if (!img) return IMT_E_NOMEM;
    img->kind = kind;
    err = kind == IMT__IMG_EWF ? open_ewf(img, path, detail, cap) : open_raw(img, path, detail, cap);
    if (err) {
        imt__img_close(img);
        return err;
    }
    img->meta.segments = kind == IMT__IMG_EWF ? img->meta.segments : (unsigned)img->n_segs;
    *out = img;
    return IMT_OK;
}

void imt__img_close(imt__img *img)
{
    if (!img) return;
    for (size_t i = 0; i < img->n_segs; i++) close(img->segs[i].fd);
    imt__free(img->segs);
    if (img->ewf) {
        libewf_error_t *e = NULL;
        libewf_handle_close(img->ewf, &e);
        if (e) libewf_error_free(&e);
        libewf_handle_free(&img->ewf, &e);
        if (e) libewf_error_free(&e);
    }
    imt__free(img);
}

uint64_t imt__img_size(const imt__img *img) { return img->size; }

void imt__img_get_meta(const imt__img *img, imt__img_meta *m) { *m = img->meta; }

const char *imt__img_last_error(const imt__img *img) { return img->last_error; }

static imt_err raw_pread(imt__img *img, uint64_t off, uint8_t *buf, size_t len, size_t *got,
                         char *detail, size_t cap)
{
    size_t done = 0;
    while (done < len && off + done < img->size) {
        uint64_t o = off + done;
        size_t s = 0; /* the segment holding o (few segments: linear) */
        while (s + 1 < img->n_segs && o >= img->segs[s].start + img->segs[s].size) s++;
        const seg *g = &img->segs[s];
        uint64_t in = o - g->start, room = g->size - in;
        size_t want = len - done;
        if (want > room) want = (size_t)room;
        ssize_t k = pread(g->fd, buf + done, want, (off_t)in);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            *got = done;
            imt__set_detail(detail, cap,
                            "image bytes %llu..%llu cannot be read: %s",
                            (unsigned long long)o, (unsigned long long)(o + want - 1),
                            k < 0 ? strerror(errno) : "the segment is shorter than it was");
            return IMT_E_IO;
        }
        done += (size_t)k;
    }
    *got = done;
    return IMT_OK;
}

static imt_err ewf_pread(imt__img *img, uint64_t off, uint8_t *buf, size_t len, size_t *got,
                         char *detail, size_t cap)
{
    libewf_error_t *e = NULL;
    *got = 0;
    if (off >= img->size) return IMT_OK;
    if (len > img->size - off) len = (size_t)(img->size - off);
    ssize_t k = libewf_handle_read_random(img->ewf, buf, len, (off64_t)off, &e);
    if (k < 0) {
        char what[120];
        snprintf(what, sizeof what, "image bytes %llu..%llu cannot be read",
                 (unsigned long long)off, (unsigned long long)(off + len - 1));
        ewf_detail(&e, what, detail, cap);
        return IMT_E_IO;
    }
    /* Every chunk whose checksum failed is listed (libewf merges repeats),
     * and a re-read of one comes from its cache as zeros with no new entry:
     * so check this read against the whole list, not just its growth. */
    uint32_t n = 0;
    if (libewf_handle_get_number_of_checksum_errors(img->ewf, &n, &e) != 1) n = 0;
    if (e) libewf_error_free(&e);
    for (uint32_t i = 0; i < n; i++) {
        uint64_t start = 0, count = 0;
        if (libewf_handle_get_checksum_error(img->ewf, i, &start, &count, &e) != 1) {
            if (e) libewf_error_free(&e);
            continue;
        }
        uint64_t bad = start * img->bps, bad_end = (start + count) * img->bps;
            if (bad_end <= off || bad >= off + (uint64_t)k) continue;
        *got = bad > off ? (size_t)(bad - off) : 0;
        imt__set_detail(detail, cap,
                        "image bytes %llu..%llu: a corrupt E01 chunk (checksum mismatch)",
                        (unsigned long long)bad, (unsigned long long)(bad_end - 1));
        return IMT_E_IO;
    }
    if (e) libewf_error_free(&e);
    *got = (size_t)k;
    return IMT_OK;
}

imt_err imt__img_pread(imt__img *img, uint64_t off, void *buf, size_t len, size_t *got,
                       char *detail, size_t cap)
{
    imt_err err = img->ewf ? ewf_pread(img, off, buf, len, got, detail, cap)
                           : raw_pread(img, off, buf, len, got, detail, cap);
    if (err && detail && detail != img->last_error)
        imt__set_detail(img->last_error, sizeof img->last_error, "%s", detail);
    return err;
}

static imt_err io_pread(void *ctx, uint64_t off, void *buf, size_t cap, size_t *got)
{
    imt__img *img = ctx;
    return imt__img_pread(img, off, buf, cap, got, img->last_error, sizeof img->last_error);
}

imt__io imt__img_io(imt__img *img)
{
    imt__io io;
    io.pread = io_pread;
    io.ctx = img;
    io.size = img->size;
    return io;
}

/* ---- TSK's view ------------------------------------------------------- */

typedef struct tsk_ext {
    TSK_IMG_INFO info;        /* first: TSK casts between the two */
    imt__img *img;
} tsk_ext;

static ssize_t ext_read(TSK_IMG_INFO *i, TSK_OFF_T off, char *buf, size_t len)
{
    tsk_ext *x = (tsk_ext *)i;
    size_t got = 0;
    if (off < 0) return -1;
    imt_err e = imt__img_pread(x->img, (uint64_t)off, buf, len, &got, x->img->last_error,
                               sizeof x->img->last_error);
    if (e) {
        tsk_error_reset();
        tsk_error_set_errno(TSK_ERR_IMG_READ);
        tsk_error_set_errstr("%s", x->img->last_error);
        return -1;
    }
    return (ssize_t)got;
}

static void ext_close(TSK_IMG_INFO *i) { imt__free(i); }

static void ext_stat(TSK_IMG_INFO *i, FILE *f)
{
    (void)i;
    (void)f;
}

/* The Sleuth Kit's allocator, replaced (tsk_malloc is called through the
 * PLT from inside libtsk, so this definition is the one it gets): TSK
 * allocates, zeroes and fills whatever size some hostile metadata claims
 * (an ext4 inline-data inode claiming hundreds of megabytes, read again at
 * every lookup: 8.4 GB resident for a 58 KB image the fuzz smoke made).
 * No single buffer TSK needs for an image is larger than the image (a
 * folder's bytes, a block, an attribute) or a small fixed size, so on a
 * thread that opened images one allocation above twice the largest of
 * them (at least 64 MiB) is refused as TSK's own calloc failure would be:
 * a per-file or per-folder error, never the process's memory. Threads
 * that opened no image (0) are not limited. */
static _Thread_local uint64_t tsk_cap;

__attribute__((visibility("default"))) void *tsk_malloc(size_t len); /* libtsk's own */
void *tsk_malloc(size_t len)
{
    if (tsk_cap && len > tsk_cap) {
        tsk_error_reset();
        tsk_error_set_errno(TSK_ERR_AUX_MALLOC);
        tsk_error_set_errstr("tsk_malloc: %zu bytes asked for, more than twice the image "
                             "(refused: damaged or hostile metadata)", len);
        return NULL;
    }
    void *p = calloc(len, 1);
    if (!p) {
        tsk_error_reset();
        tsk_error_set_errno(TSK_ERR_AUX_MALLOC);
        tsk_error_set_errstr("tsk_malloc: %s (%zu requested)", strerror(errno), len);
    }
    return p;
}

void *imt__img_tsk(imt__img *img)
{
    uint64_t cap = img->size > UINT64_MAX / 2 ? UINT64_MAX : img->size * 2;
    if (cap < ((uint64_t)64 << 20)) cap = (uint64_t)64 << 20;
    if (cap > tsk_cap) tsk_cap = cap;
    tsk_ext *x = imt__calloc(1, sizeof *x);
    if (!x) return NULL;
    x->img = img;
    TSK_IMG_INFO *i = tsk_img_open_external(x, (TSK_OFF_T)img->size, 512, ext_read, ext_close,
                                            ext_stat);
    if (!i) imt__free(x);
    return i;
}

imt_err imt__img_md5(imt__img *img, uint8_t md5[16], const volatile int *stop, char *detail,
                     size_t cap)
{
    enum { CHUNK = 1 << 20 };
    imt_err err = IMT_OK;
    uint8_t *buf = imt__malloc(CHUNK);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (!buf || !c || EVP_DigestInit_ex(c, EVP_md5(), NULL) != 1) {
        err = IMT_E_NOMEM;
        goto cleanup;
    }
    for (uint64_t off = 0; off < img->size;) {
        if (stop && *stop) {
            err = IMT_E_INTERRUPTED;
            goto cleanup;
        }
        size_t got = 0, want = CHUNK;
        if (want > img->size - off) want = (size_t)(img->size - off);
        err = imt__img_pread(img, off, buf, want, &got, detail, cap);
        if (err) goto cleanup;
        if (got == 0) {
            imt__set_detail(detail, cap, "the image ends at byte %llu, before its size",
                            (unsigned long long)off);
            err = IMT_E_IO;
            goto cleanup;
        }
        EVP_DigestUpdate(c, buf, got);
        off += got;
    }
    EVP_DigestFinal_ex(c, md5, NULL);
cleanup:
    EVP_MD_CTX_free(c);
    imt__free(buf);
    return err;
}
