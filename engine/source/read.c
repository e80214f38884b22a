/* engine/source/read.c -- a worker's view of files inside images: its own
 * image, TSK image and file-system handles (kept while it reads files of
 * the same partition or APFS volume, since opening an NTFS or ext4 file
 * system reads its metadata), and a file's data stream as an imt_stream
 * read through TSK (deleted files included: TSK reads the blocks their
 * metadata names). */
#include "source.h"

#include <stdio.h>
#include <string.h>
#include <tsk/libtsk.h>

struct imt__sreader {
    char *image;
    imt__img_kind kind;
    imt__img *img;
    TSK_IMG_INFO *ti;
    TSK_FS_INFO *fs;
    void *pool;               /* an APFS volume's container (apfs.cpp) */
    uint64_t part_off, vol_block;
    int fs_type;
    TSK_FS_FILE *file;
    const TSK_FS_ATTR *attr;
    uint64_t off, size;
    imt__runs_view rv;        /* carved items: image runs */
    imt__io io;
    char err[256];
};

imt_err imt__sreader_create(imt__sreader **out)
{
    *out = imt__calloc(1, sizeof **out);
    return *out ? IMT_OK : IMT_E_NOMEM;
}

static void close_fs(imt__sreader *r)
{
    if (r->pool) imt__apfs_vol_close(r->fs);
    else if (r->fs) tsk_fs_close(r->fs);
    r->fs = NULL;
    imt__apfs_pool_close(r->pool);
    r->pool = NULL;
}

/* e's file system as the enumerator opened it: at its partition's offset,
 * or its APFS volume (container at that offset, volume by its block). */
static TSK_FS_INFO *open_fs(imt__sreader *r, const imt__sentry *e)
{
    tsk_error_reset();
    if (!e->vol_block)
        return tsk_fs_open_img(r->ti, (TSK_OFF_T)e->loc.part_offset,
                               (TSK_FS_TYPE_ENUM)e->fs_type);
    r->pool = imt__apfs_pool_open(r->ti, e->loc.part_offset);
    return r->pool ? imt__apfs_vol_open(r->pool, e->vol_block) : NULL;
}

static void close_img(imt__sreader *r)
{
    close_fs(r);
    if (r->ti) tsk_img_close(r->ti);
    r->ti = NULL;
    imt__img_close(r->img);
    r->img = NULL;
    imt__free(r->image);
    r->image = NULL;
}

void imt__sreader_free(imt__sreader *r)
{
    if (!r) return;
    imt__sreader_end(r);
    close_img(r);
    imt__free(r);
}

void imt__sreader_end(imt__sreader *r)
{
    if (r->file) tsk_fs_file_close(r->file);
    r->file = NULL;
    r->attr = NULL;
}

/* cap bytes at off of the open attribute (random access: containers in
 * images are read through this). */
static imt_err attr_pread(void *ctx, uint64_t off, void *buf, size_t cap, size_t *got)
{
    imt__sreader *r = ctx;
    *got = 0;
    if (off >= r->size || !cap) return IMT_OK;
    if (cap > r->size - off) cap = (size_t)(r->size - off);
    char *le = (char *)imt__img_last_error(r->img);
    le[0] = '\0';
    tsk_error_reset();
    ssize_t k = tsk_fs_attr_read(r->attr, (TSK_OFF_T)off, buf, cap, TSK_FS_FILE_READ_FLAG_NONE);
    /* TSK may return a full count after a failed image read (it fills the
     * block it could not read): an error set during the call, or a failed
     * read of ours, is a failed read whatever the count. */
    int failed = tsk_error_get_errno() != 0 || le[0];
    if (k == 0 && !failed) {
        /* Past NTFS's initialised size: TSK returns nothing, Windows reads
         * zeros, and so do we. */
        memset(buf, 0, cap);
        k = (ssize_t)cap;
    }
    if (k <= 0 || failed) {
        const char *m = tsk_error_get();
        imt__set_detail(r->err, sizeof r->err, "%s", le[0] ? le : m && m[0] ? m : "read failed");
        return IMT_E_IO;
    }
    *got = (size_t)k;
    return IMT_OK;
}

/* cap bytes at off of a carved item (its image runs). */
static imt_err runs_item_pread(void *ctx, uint64_t off, void *buf, size_t cap, size_t *got)
{
    imt__sreader *r = ctx;
    *got = 0;
    if (off >= r->size) return IMT_OK;
    if (cap > r->size - off) cap = (size_t)(r->size - off);
    imt_err err = r->io.pread(r->io.ctx, off, buf, cap, got);
    if (err) imt__set_detail(r->err, sizeof r->err, "%s", imt__img_last_error(r->img));
    return err;
}

static imt_err attr_read(void *ctx, void *buf, size_t cap, size_t *got)
{
    imt__sreader *r = ctx;
    imt_err err = attr_pread(r, r->off, buf, cap, got);
    if (!err) r->off += *got;
    return err;
}

static imt_err io_read(void *ctx, void *buf, size_t cap, size_t *got)
{
    imt__sreader *r = ctx;
    imt_err err = runs_item_pread(r, r->off, buf, cap, got);
    if (!err) r->off += *got;
    return err;
}

imt__io imt__sreader_io(imt__sreader *r)
{
    imt__io io;
    io.pread = r->file ? attr_pread : runs_item_pread;
    io.ctx = r;
    io.size = r->size;
    return io;
}

const char *imt__sreader_error(const imt__sreader *r) { return r->err; }

imt_err imt__sreader_begin(imt__sreader *r, const imt__sentry *e, imt_stream *st,
                           char *detail, size_t cap)
{
    imt_err err;
    imt__sreader_end(r);
    r->err[0] = '\0';
    if (!r->image || strcmp(r->image, e->loc.image) != 0 || r->kind != e->img_kind) {
        close_img(r);
        r->image = imt__strdup(e->loc.image);
        if (!r->image) return IMT_E_NOMEM;
        r->kind = e->img_kind;
        err = imt__img_open(&r->img, e->loc.image, e->img_kind, detail, cap);
        if (err) {
            close_img(r);
            return err;
        }
        r->ti = imt__img_tsk(r->img);
        if (!r->ti) {
            close_img(r);
            return IMT_E_NOMEM;
        }
    }
    r->off = 0;
    r->size = e->size;
    st->ctx = r;
    st->size = e->size;
    if (e->carved) {
        r->rv.img = r->img;
        r->rv.runs = e->loc.runs;
        r->rv.n = e->loc.n_runs;
        r->rv.size = e->size;
        r->io = imt__runs_io(&r->rv);
        st->read = io_read;
        return IMT_OK;
    }
    if (!r->fs || r->part_off != e->loc.part_offset || r->fs_type != e->fs_type ||
        r->vol_block != e->vol_block) {
        close_fs(r);
        r->fs = open_fs(r, e);
        if (!r->fs) {
            imt__set_detail(detail, cap, "cannot open the file system again: %s",
                            tsk_error_get() ? tsk_error_get() : "no detail");
            close_fs(r);
            return IMT_E_IO;
        }
        r->part_off = e->loc.part_offset;
        r->fs_type = e->fs_type;
        r->vol_block = e->vol_block;
    }
    tsk_error_reset();
    r->file = tsk_fs_file_open_meta(r->fs, NULL, (TSK_INUM_T)e->loc.meta_addr);
    if (r->file)
        r->attr = e->has_attr ? tsk_fs_file_attr_get_type(r->file,
                                                          (TSK_FS_ATTR_TYPE_ENUM)e->attr_type,
                                                          e->attr_id, 1)
                              : tsk_fs_file_attr_get(r->file);
    if (!r->file || (!r->attr && e->size)) {
        const char *m = tsk_error_get();
        imt__set_detail(detail, cap, "cannot open its content: %s", m && m[0] ? m : "no detail");
        imt__sreader_end(r);
        return IMT_E_IO;
    }
    if (!r->attr) r->size = st->size = 0;
    st->read = attr_read;
    return IMT_OK;
}
