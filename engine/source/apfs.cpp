/* engine/source/apfs.cpp -- APFS containers and their volumes through The
 * Sleuth Kit's pool layer, with every C++ exception caught.
 *
 * Why C++ in a C engine: TSK's APFS code is C++ and several of its C entry
 * points let exceptions out (tsk_pool_unallocated_runs throws on a damaged
 * space manager; tsk_pool_open_img and apfs_open catch runtime_error only,
 * not bad_alloc or out_of_range). An exception crossing our C frames ends
 * the process (std::terminate), so a hostile image could crash a scan. Each
 * call into the pool layer goes through a function here that catches
 * everything and returns NULL or an error instead, with TSK's error set.
 *
 * TSK 4.11 opens an APFS volume as tsk_fls does for -P apfs -B BLOCK: the
 * container (tsk_pool_open_img_sing at the partition's offset), an image
 * of the volume (pool->get_img_info(pool, block of its superblock)), then
 * tsk_fs_open_img(..., TSK_FS_TYPE_APFS) on that image (tsk_fs_open_pool is
 * declared in 4.11's header but not in its library). */
extern "C" {
#include "source.h"
}

#include <new>
#include <tsk/libtsk.h>

static void set_error(const char *what, const char *why)
{
    tsk_error_reset();
    tsk_error_set_errno(TSK_ERR_POOL_GENPOOL);
    tsk_error_set_errstr("%s: %s", what, why);
}

extern "C" void *imt__apfs_pool_open(void *tsk_img, uint64_t off)
{
    try {
        tsk_error_reset();
        return (void *)tsk_pool_open_img_sing((TSK_IMG_INFO *)tsk_img, (TSK_OFF_T)off,
                                              TSK_POOL_TYPE_APFS);
    } catch (const std::exception &e) {
        set_error("APFS container", e.what());
    } catch (...) {
        set_error("APFS container", "unknown exception");
    }
    return nullptr;
}

extern "C" void imt__apfs_pool_close(void *pool)
{
    if (!pool) return;
    try {
        tsk_pool_close((const TSK_POOL_INFO *)pool);
    } catch (...) {
    }
}

extern "C" void *imt__apfs_vol_open(void *pool, uint64_t vol_block)
{
    const TSK_POOL_INFO *p = (const TSK_POOL_INFO *)pool;
    TSK_IMG_INFO *vimg = nullptr;
    try {
        tsk_error_reset();
        vimg = p->get_img_info(p, (TSK_DADDR_T)vol_block);
        if (!vimg) return nullptr;
        /* the offset is unused: the volume's image knows its container */
        TSK_FS_INFO *fs = tsk_fs_open_img_decrypt(vimg, 0, TSK_FS_TYPE_APFS, "");
        if (fs) return fs;
    } catch (const std::exception &e) {
        set_error("APFS volume", e.what());
    } catch (...) {
        set_error("APFS volume", "unknown exception");
    }
    if (vimg) tsk_img_close(vimg);
    return nullptr;
}

extern "C" void imt__apfs_vol_close(void *fs)
{
    if (!fs) return;
    TSK_FS_INFO *f = (TSK_FS_INFO *)fs;
    TSK_IMG_INFO *vimg = f->img_info; /* the volume's image: ours to close */
    try {
        tsk_fs_close(f);
    } catch (...) {
    }
    tsk_img_close(vimg);
}

extern "C" imt_err imt__apfs_free_runs(void *pool, uint64_t limit, uint64_t max_runs,
                                       imt_byte_run **out, size_t *n_out, int *capped)
{
    const TSK_POOL_INFO *p = (const TSK_POOL_INFO *)pool;
    TSK_FS_ATTR_RUN *head = nullptr;
    *out = nullptr;
    *n_out = 0;
    *capped = 0;
    try {
        tsk_error_reset();
        head = tsk_pool_unallocated_runs(p);
    } catch (const std::bad_alloc &) {
        return IMT_E_NOMEM;
    } catch (const std::exception &e) {
        set_error("APFS free space", e.what());
        return IMT_E_CORRUPT;
    } catch (...) {
        set_error("APFS free space", "unknown exception");
        return IMT_E_CORRUPT;
    }
    if (!head) return tsk_error_get_errno() ? IMT_E_NOMEM : IMT_OK; /* none free */
    /* Image runs in the container's order; a hostile space manager's ranges
     * may overlap, go backwards or run past the container or the partition
     * (limit bytes from the container's start): those parts are dropped, so
     * each block is carved at most once and no offset overflows. */
    size_t cap = 0, n = 0;
    imt_byte_run *runs = nullptr;
    uint64_t bs = p->block_size, nblocks = p->num_blocks, next = 0, logical = 0;
    if (!bs) nblocks = 0;
    else if (nblocks > limit / bs) nblocks = limit / bs; /* the partition's end */
    imt_err err = IMT_OK;
    for (const TSK_FS_ATTR_RUN *r = head; r; r = r->next) {
        uint64_t a = r->addr, len = r->len;
        if (a < next) {
            if (len <= next - a) continue;
            len -= next - a;
            a = next;
        }
        if (a >= nblocks) break;
        if (len > nblocks - a) len = nblocks - a;
        if (!len) continue;
        if (n == max_runs) {
            *capped = 1;
            break;
        }
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            imt_byte_run *nr = (imt_byte_run *)imt__realloc(runs, nc * sizeof *nr);
            if (!nr) {
                err = IMT_E_NOMEM;
                break;
            }
            runs = nr;
            cap = nc;
        }
        runs[n].file_offset = logical;
        runs[n].img_offset = p->img_offset + a * bs;
        runs[n].len = len * bs;
        runs[n].sparse = 0;
        logical += len * bs;
        next = a + len;
        n++;
    }
    tsk_fs_attr_run_free(head);
    if (err) {
        imt__free(runs);
        return err;
    }
    *out = runs;
    *n_out = n;
    return IMT_OK;
}
