/* engine/triage/triage.h -- internal: the preview (time-boxed, likely places
 * first, a random sample within each class) above engine/scan.
 *
 * Files of the module, leaves first:
 *   classify.c  the likelihood class of a path (pure)
 *   bound.c     the hypergeometric bound and the per-class estimates (pure)
 *   spool.c     the listing of regular files per class: in memory up to a
 *               budget, then in unnamed temporary files; read back class by
 *               class in seeded random order with bounded memory
 *   preview.c   imt_triage_run: list, then read in that order through
 *               imt_scan_run, a batch of files at a time
 */
#ifndef IMT_TRIAGE_H
#define IMT_TRIAGE_H

#include "common/common.h"

/* ---- bound.c ----------------------------------------------------------- */
/* Fill each class's estimate and upper95, and the device's estimate and
 * joint bound, from the counts. */
void imt__preview_finish(imt_preview_stats *st);

/* ---- spool.c ----------------------------------------------------------- */
/* One listed regular file. */
typedef struct imt__tfile {
    uint64_t key;              /* the seeded random order within its class */
    uint64_t seq;              /* its position in walk order */
    uint64_t dev, ino, size;
    const char *path;          /* NUL-terminated, owned by the spool */
    const void *blob;          /* a file of a disk image: its entry, packed
                                  (preview.c); NULL for a folder's file */
    size_t blob_len;
} imt__tfile;

typedef struct imt__spool imt__spool;

/* tmpdir: where spilled lists go (created unnamed there: O_TMPFILE, else
 * mkstemp and unlink). memory: bytes held before spilling. */
imt_err imt__spool_open(imt__spool **out, const char *tmpdir, size_t memory);
void imt__spool_free(imt__spool *s);
imt_err imt__spool_add(imt__spool *s, int cls, const imt__tfile *f);

/* The files of class cls in key order, a run at a time: *v (borrowed until
 * the next call) gets *n files; *n = 0 at the end of the class. Memory stays
 * within about the budget given to open (a spilled class is split into
 * buckets by key first). */
imt_err imt__spool_class_begin(imt__spool *s, int cls);
imt_err imt__spool_class_next(imt__spool *s, const imt__tfile **v, size_t *n);

/* The seeded key of a path: a keyed 64-bit hash (a random permutation of
 * the paths for each seed, independent of walk order). */
uint64_t imt__triage_key(uint64_t seed, const char *path);

#endif
