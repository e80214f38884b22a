/* engine/source/source.h -- where bytes come from when they are not files
 * in a folder: disk images (raw, split raw, E01, block devices), their
 * volume systems and file systems (The Sleuth Kit), every file in them
 * (allocated, deleted, orphan, NTFS alternate data streams).
 *
 * Layers: image.c (open an image read-only, its bytes, its acquisition
 * metadata, TSK's view of it) -> fs.c (enumerate partitions and files on a
 * producer thread into a bounded queue; unallocated runs for the carver)
 * -> read.c (a worker's own handles: a file's content as an imt_stream).
 * Nothing here knows about scans or reports: scan.c asks for entries and
 * readers and builds records. */
#ifndef IMT_SOURCE_H
#define IMT_SOURCE_H

#include "common/common.h"

/* ---- image.c ---------------------------------------------------------- */

typedef enum imt__img_kind {
    IMT__IMG_RAW = 0,      /* one raw file: a disk, partition or ISO image */
    IMT__IMG_SPLIT = 1,    /* raw in pieces NAME.001, NAME.002, ... */
    IMT__IMG_EWF = 2,      /* EnCase E01 (all segments, through libewf) */
    IMT__IMG_DEVICE = 3    /* a block device node, opened O_RDONLY */
} imt__img_kind;

const char *imt__img_kind_name(imt__img_kind k);

/* Does the file (or block device) at path hold a disk image? Sniffed from
 * its bytes: an E01 signature, a GPT header, a DOS partition table, a file
 * system superblock TSK reads (NTFS, FAT, exFAT, ext2/3/4, HFS+, ISO 9660,
 * APFS). A file whose bytes sniff as a picture format is not an image.
 * Returns 1 and sets *kind, or 0. Never writes anything. */
int imt__img_sniff(const char *path, int is_blockdev, imt__img_kind *kind);

/* Acquisition metadata of an E01 (empty strings when absent). */
typedef struct imt__img_meta {
    char case_number[128], evidence_number[128], examiner[128], description[256],
        notes[256], acquiry_date[64], system_date[64], acquiry_software[64],
        acquiry_os[64];
    int has_md5, has_sha1;
    uint8_t md5[16], sha1[20];
    unsigned segments;     /* files the image was read from */
} imt__img_meta;

typedef struct imt__img imt__img;

/* Open the image at path read-only (kind from imt__img_sniff). Each caller
 * (the enumerator, each worker) opens its own: libewf and TSK handles are
 * not shared between threads. detail gets a sentence on failure. */
imt_err imt__img_open(imt__img **out, const char *path, imt__img_kind kind, char *detail,
                      size_t cap);
void imt__img_close(imt__img *img);
uint64_t imt__img_size(const imt__img *img);
void imt__img_get_meta(const imt__img *img, imt__img_meta *m);

/* Read len bytes at off. A region that cannot be read (an I/O error, an E01
 * chunk whose checksum fails, a missing segment) is IMT_E_IO with detail
 * naming the image byte range; *got then says how many bytes before it
 * were good. Reads past the end return fewer bytes. */
imt_err imt__img_pread(imt__img *img, uint64_t off, void *buf, size_t len, size_t *got,
                       char *detail, size_t cap);

/* The image as an imt__io (ctx is img). */
imt__io imt__img_io(imt__img *img);

/* TSK's view of the image (TSK_IMG_TYPE_EXTERNAL over imt__img_pread), an
 * opaque TSK_IMG_INFO *; closing it (tsk_img_close) leaves img open. NULL
 * on failure. The last read error is kept in img (imt__img_last_error). */
void *imt__img_tsk(imt__img *img);
const char *imt__img_last_error(const imt__img *img);

/* Recompute the MD5 of the whole image (what an E01 stores). stop may be
 * NULL. IMT_E_IO (detail) when a region cannot be read. */
imt_err imt__img_md5(imt__img *img, uint8_t md5[16], const volatile int *stop,
                     char *detail, size_t cap);

/* ---- fs.c ------------------------------------------------------------- */

/* One entry found in an image: a file's data stream (the default one, or an
 * NTFS alternate data stream), a partition or region that could not be
 * enumerated, or the image itself when it cannot be opened. Owns every
 * string and the runs; free with imt__sentry_free. */
typedef struct imt__sentry {
    char *path;              /* "IMAGE!pN[!vK]/path/in/fs[:stream]" */
    imt_entry_type type;     /* FILE, or DIR for a partition not enumerated,
                                UNKNOWN for an image or region error */
    imt_err status;
    int scan_error;          /* keeps the scan from being complete */
    char detail[200];
    int readable;            /* a file whose content is to be hashed */
    uint64_t size;
    uint32_t mode, uid, gid, nlink;
    int64_t mtime_s, ctime_s;
    int32_t mtime_ns, ctime_ns;
    imt_location loc;        /* strings point into this entry */
    char *strs;              /* loc.image, part_type, fs_type, stream,
                                volume_name */
    imt_byte_run *runs;
    /* how a worker finds the content again */
    int fs_type;             /* TSK_FS_TYPE_ENUM */
    uint32_t attr_type;
    uint16_t attr_id;
    int has_attr;
    uint64_t vol_block;      /* an APFS volume's file: its superblock's block
                                in the container at loc.part_offset; 0 = the
                                file system at loc.part_offset */
    int carved;              /* content is loc.runs of the image, no fs */
    imt_carve_hit hit;       /* carved: offset = image offset of the first
                                byte, length, format, how it ended */
    imt__img_kind img_kind;
    /* (the preview keeps entries packed, engine/triage/preview.c pack_entry:
     * a new pointer member must be packed there too) */
} imt__sentry;

void imt__sentry_free(imt__sentry *e);

/* Limits against hostile images. */
typedef struct imt__src_limits {
    uint64_t max_entries;    /* per partition (default 50,000,000) */
    size_t max_runs;         /* byte runs kept per record (default 64) */
    uint64_t max_check_blocks; /* blocks checked per deleted file for
                                  reallocation (default 65536) */
    int no_carve;            /* metadata only (the preview's listing): no
                                unallocated space is carved; what was left
                                is counted (imt__enum_uncarved) */
} imt__src_limits;

/* The defaults above (no_carve 0). fs.c. */
void imt__src_limits_init(imt__src_limits *lim);

typedef struct imt__enum imt__enum;

/* Start enumerating the image at path (a producer thread with its own
 * handles, feeding a bounded queue of entries in the image's order: the
 * same on every run). stop as in imt_scan_opts. */
imt_err imt__enum_open(imt__enum **out, const char *path, imt__img_kind kind,
                       const imt__src_limits *lim, const volatile int *stop);
/* The next entry (caller owns it), or *e = NULL at the end. IMT_E_NOMEM
 * only; everything the image holds back is an entry. */
imt_err imt__enum_next(imt__enum *en, imt__sentry **e);
void imt__enum_close(imt__enum *en);
/* With no_carve, after the end (*e = NULL): the areas the full scan would
 * carve and did not here (file systems' unallocated blocks, each counted as
 * one area of unknown size; space outside file systems, with its bytes). */
void imt__enum_uncarved(const imt__enum *en, uint64_t *areas, uint64_t *bytes);

/* The file system at byte off of a TSK image (TSK_IMG_INFO *), as a
 * TSK_FS_INFO *, or NULL with TSK's error set. */
void *imt__fs_open(void *tsk_img, uint64_t off);

/* ---- apfs.cpp: APFS through TSK's pool layer --------------------------
 * Every call catches TSK's C++ exceptions (they would end the process when
 * crossing C frames): NULL or an error instead, with TSK's error set. */

/* The APFS container at byte off of a TSK image: a TSK_POOL_INFO * (its
 * volumes in num_vols / vol_list), or NULL. */
void *imt__apfs_pool_open(void *tsk_img, uint64_t off);
void imt__apfs_pool_close(void *pool);
/* The volume of pool whose superblock is at container block vol_block, as a
 * TSK_FS_INFO * (type apfs; block addresses are the container's), or NULL.
 * Close with imt__apfs_vol_close (it closes the volume's image too) before
 * closing the pool. Encrypted volumes are not opened by the callers: TSK
 * needs their password. */
void *imt__apfs_vol_open(void *pool, uint64_t vol_block);
void imt__apfs_vol_close(void *fs);
/* The container's free blocks (its space manager, read by TSK) as image
 * runs (file_offset: the logical offset in the free space), at most
 * max_runs (*capped set when there were more), none past limit bytes from
 * the container's start; *out is the caller's (imt__free). IMT_E_CORRUPT
 * (TSK's error set) when TSK cannot read the space manager. */
imt_err imt__apfs_free_runs(void *pool, uint64_t limit, uint64_t max_runs, imt_byte_run **out,
                            size_t *n_out, int *capped);

/* Unallocated space handed to the carver: an imt__io over the logical
 * concatenation of image byte runs (unallocated blocks of a file system,
 * space outside partitions), and the map back from a logical offset to the
 * image offset. The runs are borrowed. */
typedef struct imt__runs_view {
    imt__img *img;
    const imt_byte_run *runs; /* file_offset = logical offset; sorted */
    size_t n;
    uint64_t size;
} imt__runs_view;
imt__io imt__runs_io(imt__runs_view *v);
/* Image offset of logical offset off, and the bytes contiguous from it in
 * the image; 0 when off is past the end. */
uint64_t imt__runs_map(const imt__runs_view *v, uint64_t off, uint64_t *img_off);

/* A carver's hit h (offset: logical offset in v) : queue an entry (alloc
 * carved, image runs mapped back through v, the hit kept with its offset
 * made the image offset). Called on the enumerating thread from the
 * carver's hook in fs.c. IMT_E_INTERRUPTED when the consumer is gone. */
imt_err imt__enum_carved(imt__enum *en, const imt__runs_view *v, const imt_carve_hit *h);

/* ---- read.c ------------------------------------------------------------ */

/* A worker's reader: its own image, TSK image and file system handles,
 * kept while it reads files of the same partition. */
typedef struct imt__sreader imt__sreader;
imt_err imt__sreader_create(imt__sreader **out);
void imt__sreader_free(imt__sreader *r);

/* Open e's content as a stream (st valid until imt__sreader_end). On
 * failure a sentence in detail. */
imt_err imt__sreader_begin(imt__sreader *r, const imt__sentry *e, imt_stream *st,
                           char *detail, size_t cap);
void imt__sreader_end(imt__sreader *r);
/* The content opened by imt__sreader_begin as an imt__io (random access;
 * size = the entry's size), valid until imt__sreader_end: containers inside
 * images are expanded through it. */
imt__io imt__sreader_io(imt__sreader *r);
/* Why the last stream read failed (the image region or TSK's sentence). */
const char *imt__sreader_error(const imt__sreader *r);

#endif
