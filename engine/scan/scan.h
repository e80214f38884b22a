/* engine/scan/scan.h -- the evidence walker behind imt_scan_run and
 * imt_scan_estimate.
 *
 * The walker yields every record-producing entry (regular files, hard links,
 * symlinks, special files, directories that cannot be entered) in the sorted
 * depth-first order documented in imgtriage.h. It never follows a symlink
 * below a path argument, never opens anything but directories, and holds
 * each directory it is inside of open (as a reference-counted descriptor), so
 * that files can be opened relative to it long after the walker moved on:
 * the scan hashes a batch of files after walking them.
 */
#ifndef IMT_SCAN_H
#define IMT_SCAN_H

#include "common/common.h"

#include <sys/stat.h>

/* An open directory shared by the walker and the entries found in it. The
 * count is only touched by the walking thread (workers only read fd). */
typedef struct imt__dirref {
    int fd;
    unsigned refs;
} imt__dirref;

void imt__dirref_release(imt__dirref *d);

/* One entry. Owns path, link_target and hardlink_of (heap) and a reference
 * on dir; release with imt__wentry_clear. */
typedef struct imt__wentry {
    char *path;              /* full path as walked */
    imt__dirref *dir;        /* the directory holding it; NULL: name is a path */
    const char *name;        /* what to open relative to dir (points into path) */
    imt_entry_type type;
    imt_err status;          /* IMT_OK, or why the walker could not go on here */
    int is_root;             /* one of the PATH arguments itself */
    int repeat;              /* a PATH argument inside (or the same as) another
                                one: reported, not read or walked again */
    char detail[160];
    int have_stat;
    struct stat st;
    char *link_target;
    char *hardlink_of;
} imt__wentry;

void imt__wentry_clear(imt__wentry *e);

/* Open evidence name (relative to dirfd, or AT_FDCWD) read-only, with
 * O_NOATIME where permitted, O_CLOEXEC and O_NOCTTY added to flags
 * (O_NOFOLLOW, O_NONBLOCK, O_DIRECTORY as the caller needs). evidence.c. */
int imt__open_evidence(int dirfd, const char *name, int flags);

/* A record's lstat fields (size, inode, dev, mode, uid, gid, nlink, mtime,
 * ctime) from st: the scan's records and the preview's unread entries. */
void imt__record_stat(imt_scan_record *r, const struct stat *st);

/* imt_hash_stream, with the same bytes' random access (rio, may be NULL):
 * a video is decoded through rio (libav seeks), everything else reads the
 * stream. hashfile.c. */
imt_err imt__hash_stream_io(imt_hasher *h, const imt_stream *st, const imt__io *rio,
                            imt_hash_result *res);

typedef struct imt__walk imt__walk;

/* Start walking paths (copied). stop as in imt_scan_opts. */
imt_err imt__walk_open(imt__walk **out, const char *const *paths, size_t n,
                       int one_file_system, const volatile int *stop);
void imt__walk_close(imt__walk *w);

/* The next entry in walk order into *e (cleared first); *done = 1 at the end
 * (or when *stop is set). Errors: IMT_E_NOMEM only -- a folder that cannot
 * be read is an entry, not an error. */
imt_err imt__walk_next(imt__walk *w, imt__wentry *e, int *done);

/* imt_scan_run over entries of disk images its caller enumerated (the
 * preview, engine/triage): each v[i] is taken (freed, set to NULL) whether
 * or not it was read; records in v's order, each made by the same code as
 * a full scan's record of that entry (seq counts from 0 in this call).
 * opts->skip is asked as in imt_scan_run. scan.c. */
struct imt__sentry;
imt_err imt__scan_entries(imt_index *idx, struct imt__sentry **v, size_t n,
                          const imt_scan_opts *opts, imt_scan_record_fn on_record, void *ctx,
                          char *detail, size_t cap);

/* Decoder threads for videos from now on (hashfile.c): the scan gives the
 * workers it has no file for to the videos of a short batch. Results do
 * not depend on it (libavcodec's threads give the same frames). */
void imt__hasher_set_video_threads(imt_hasher *h, int n);

/* ---- matching one hashed item (match.c) --------------------------------- */

/* The index's lists, sorted by id (a membership's list fields). */
typedef struct imt__lists {
    imt_list_info *v;
    size_t n;
} imt__lists;

imt_err imt__lists_load(imt__lists *L, imt_index *idx);
int imt__list_cmp(const void *a, const void *b);
const imt_list_info *imt__find_list(const imt__lists *L, uint32_t id);

/* One item's matches: list fields borrowed from the index (valid while it
 * is open), label and external id owned (strs). */
typedef struct imt__matches {
    imt_scan_match *matches;
    char **strs;
    size_t n_matches, cap, omitted;
    int known_good, low_quality;
} imt__matches;

/* Match hash result r (c NULL: no index, nothing matches): what was there
 * before is dropped first. */
imt_err imt__match(imt__matches *s, imt_cursor *c, const imt__lists *L, const imt_scan_opts *o,
                   const imt_hash_result *r);
void imt__matches_reset(imt__matches *s);  /* no matches; arrays kept */
void imt__matches_free(imt__matches *s);
/* r's known_good, pdq_low_quality, matches, n_matches, matches_omitted */
void imt__matches_record(const imt__matches *s, imt_scan_record *r);

#endif
