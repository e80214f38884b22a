/*
 * imgtriage.h -- the one public header of libimgtriage.
 *
 * imgtriage triages seized media for known imagery: it decodes JPEG, PNG,
 * HEIF/HEIC and AVIF files, computes PDQ perceptual hashes (256 bits, Meta's
 * open standard) and cryptographic digests (MD5, SHA-1, SHA-256) of the file
 * bytes, and matches them against an index of known hashes.
 *
 * Conventions (see STYLE.md):
 *  - every function that can fail returns an imt_err; IMT_OK is 0;
 *  - handles are created through an out-parameter and freed with *_free,
 *    which accepts NULL;
 *  - option structs are filled with defaults by *_opts_init() first, so that
 *    fields added later keep their defaults in old callers;
 *  - a handle is used by one thread at a time unless its comment says it may
 *    be shared;
 *  - the library never calls exit() or abort() and never trusts input bytes.
 */
#ifndef IMGTRIAGE_H
#define IMGTRIAGE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h> /* FILE, for the report writer */

#ifdef __cplusplus
extern "C" {
#endif

#if defined(IMT_BUILDING_LIBRARY) && defined(__GNUC__)
#define IMT_API __attribute__((visibility("default")))
#else
#define IMT_API
#endif

#define IMT_VERSION_MAJOR 0
#define IMT_VERSION_MINOR 1
#define IMT_VERSION_PATCH 0
#define IMT_VERSION_STRING "0.1.0"

/** The library's version string, e.g. "0.1.0". Never NULL. */
IMT_API const char *imt_version(void);

/* ------------------------------------------------------------------------
 * Errors. Values are fixed once released; new ones are appended.
 * ---------------------------------------------------------------------- */
typedef enum imt_err {
    IMT_OK = 0,
    IMT_E_NOMEM = 1,         /* out of memory */
    IMT_E_INVALID = 2,       /* invalid argument (a caller bug) */
    IMT_E_IO = 3,            /* the file could not be read */
    IMT_E_NOT_FOUND = 4,     /* the file does not exist (or vanished) */
    IMT_E_EMPTY = 5,         /* the file is empty */
    IMT_E_NOT_IMAGE = 6,     /* not a recognised image format */
    IMT_E_UNSUPPORTED = 7,   /* an image format this build does not decode */
    IMT_E_CORRUPT = 8,       /* the image data is invalid */
    IMT_E_TRUNCATED = 9,     /* the image data ends early */
    IMT_E_TOO_LARGE = 10,    /* over a configured limit (size, pixels, side) */
    IMT_E_TIMEOUT = 11,      /* over the per-file time budget */
    IMT_E_INTERNAL = 12,     /* a library bug; please report it */
    IMT_E_INTERRUPTED = 13,  /* stopped on request */
    IMT_E_TOO_SMALL = 14,    /* image too small to hash (side < 5 pixels) */
    IMT_E_INDEX_FORMAT = 15, /* not an imgtriage index, or an unknown version */
    IMT_E_INDEX_CORRUPT = 16,/* the index failed a consistency check */
    IMT_E_PARSE = 17,        /* a hash list could not be parsed */
    IMT_E_DUPLICATE = 18,    /* a duplicate entry or list */
    IMT_E_EXISTS = 19,       /* the object to create exists already */
    IMT_E_READONLY = 20,     /* write attempted on a read-only handle */
    IMT_E_DB = 21,           /* the database layer (LMDB/SQLite) failed */
    IMT_E_HASH_LENGTH = 22,  /* a hash in a list has the wrong number of digits */
    IMT_E_NOT_HEX = 23,      /* a hash in a list has a character that is not hex */
    IMT_E_JSON_SHAPE = 24,   /* valid JSON, but not the structure the format needs */
    IMT_E_BUSY = 25,         /* the index has open cursors (import needs none) */
    IMT_E_INDEX_CHANGED = 26,/* the index changed since it was opened: open it again */
    IMT_E_WRITE = 27,        /* an output (a report) could not be written */
    IMT_E__COUNT             /* not an error: the number of codes */
} imt_err;

/** A one-sentence description of err. Never NULL (unknown codes included). */
IMT_API const char *imt_strerror(imt_err err);

/** A short stable token for err, used in reports: "ok", "out-of-memory",
 *  "unreadable", "not-found", "empty", "not-an-image", "unsupported-format",
 *  "corrupt", "truncated", "too-large", "timeout", ... Never NULL. */
IMT_API const char *imt_err_name(imt_err err);

/* ------------------------------------------------------------------------
 * Memory. Every allocation the library itself makes goes through these
 * hooks (those inside libjpeg, LMDB and OpenSSL do not; libpng's do).
 * ---------------------------------------------------------------------- */
typedef struct imt_allocator {
    void *(*malloc_fn)(void *opaque, size_t size);
    void *(*realloc_fn)(void *opaque, void *ptr, size_t size);
    void (*free_fn)(void *opaque, void *ptr);
    void *opaque;
} imt_allocator;

/** Install allocation hooks for the whole process; NULL restores malloc.
 *  Call it before any other imt_ function and while no thread uses the
 *  library. Returns IMT_E_INVALID if a function pointer is missing. */
IMT_API imt_err imt_set_allocator(const imt_allocator *alloc);

/* ------------------------------------------------------------------------
 * Formats, sniffed from the first bytes of a file (never the name).
 * ---------------------------------------------------------------------- */
typedef enum imt_format {
    IMT_FMT_UNKNOWN = 0, /* not an image we recognise */
    IMT_FMT_JPEG = 1,
    IMT_FMT_PNG = 2,
    IMT_FMT_GIF = 3,
    IMT_FMT_BMP = 4,
    IMT_FMT_WEBP = 5,
    IMT_FMT_TIFF = 6,
    IMT_FMT_HEIF = 7,
    IMT_FMT_AVIF = 8,
    IMT_FMT_JXL = 9,
    IMT_FMT__COUNT
} imt_format;

/** Minimum number of leading bytes imt_sniff() needs to decide. */
#define IMT_SNIFF_BYTES 32

/** Identify the format of data from its magic bytes. len may be short. */
IMT_API imt_format imt_sniff(const void *data, size_t len);

/** "jpeg", "png", "gif", ... ; "unknown" for IMT_FMT_UNKNOWN. Never NULL. */
IMT_API const char *imt_format_name(imt_format fmt);

/** Non-zero when this build decodes fmt (JPEG, PNG, HEIF, AVIF). */
IMT_API int imt_format_decodable(imt_format fmt);

/* ------------------------------------------------------------------------
 * PDQ hashes.
 *
 * A hash is 256 bits. bytes[] holds it as a big-endian 256-bit number, so
 * that printing bytes[0..31] in hex gives the reference hasher's string, and
 * bit k of the reference (coefficient k > median) is bit (k & 7) of
 * bytes[31 - k / 8].
 * ---------------------------------------------------------------------- */
typedef struct imt_pdq {
    uint8_t bytes[32];
} imt_pdq;

#define IMT_PDQ_HEX_LEN 64

/** Write the 64 hex digits and a NUL into out[IMT_PDQ_HEX_LEN + 1]. */
IMT_API void imt_pdq_to_hex(const imt_pdq *h, char *out);

/** Parse exactly 64 hex digits (either case). IMT_E_PARSE otherwise. */
IMT_API imt_err imt_pdq_from_hex(imt_pdq *h, const char *hex, size_t len);

/** Decode exactly 2*nbytes hex digits (either case) of hex[0..len) into
 *  out[0..nbytes): the one hex decoder of digests (MD5, SHA-1, SHA-256) and
 *  PDQ hashes. Returns IMT_OK, IMT_E_HASH_LENGTH when len != 2*nbytes, or
 *  IMT_E_NOT_HEX at a character that is not a hex digit (out is then
 *  partly written). Thread-safe; no allocation. */
IMT_API imt_err imt_hex_decode(uint8_t *out, size_t nbytes, const char *hex, size_t len);

/** Hamming distance between two hashes, 0..256. */
IMT_API int imt_pdq_distance(const imt_pdq *a, const imt_pdq *b);

/** The 8 dihedral variants, in the reference's order. */
typedef enum imt_dihedral {
    IMT_DIH_ORIGINAL = 0,
    IMT_DIH_ROTATE90 = 1,
    IMT_DIH_ROTATE180 = 2,
    IMT_DIH_ROTATE270 = 3,
    IMT_DIH_FLIPX = 4,
    IMT_DIH_FLIPY = 5,
    IMT_DIH_FLIP_PLUS1 = 6,
    IMT_DIH_FLIP_MINUS1 = 7,
    IMT_DIH__COUNT = 8
} imt_dihedral;

/** "original", "rotate90", ..., "flip-minus1". Never NULL. */
IMT_API const char *imt_dihedral_name(imt_dihedral d);

/** Upstream's advice: match at distance <= 31, ignore quality < 50. */
#define IMT_PDQ_MATCH_DISTANCE 31
#define IMT_PDQ_MIN_QUALITY 50

/* ------------------------------------------------------------------------
 * Hashing files.
 * ---------------------------------------------------------------------- */
typedef enum imt_pdq_mode {
    /* Decode no more pixels than the hash needs (JPEG DCT scaling, luma
     * only, early stop on progressive scans; PNG rows streamed). Within
     * Hamming distance 10 of the reference for images of quality >= 80. */
    IMT_PDQ_FAST = 0,
    /* The reference pipeline exactly: full decode, nearest-neighbour resize
     * of a side over 512 to 512x512, float arithmetic in the same order.
     * Bit-identical to the reference hasher's hash and quality. */
    IMT_PDQ_COMPAT = 1
} imt_pdq_mode;

/** Digest selection bits for imt_hash_opts.digests. */
#define IMT_DIGEST_MD5 1u
#define IMT_DIGEST_SHA1 2u
#define IMT_DIGEST_SHA256 4u
#define IMT_DIGEST_ALL 7u

typedef struct imt_hash_opts {
    imt_pdq_mode mode;       /* default IMT_PDQ_FAST */
    int dihedral;            /* non-zero: also the 7 other dihedral hashes; default 0 */
    unsigned digests;        /* IMT_DIGEST_* bits over the file bytes; default 0 */
    int pdq;                 /* non-zero: decode and PDQ-hash images; default 1 */
    uint64_t max_file_bytes; /* larger files: digests only, PDQ too-large; default 2 GiB */
    uint64_t max_pixels;     /* width*height over this: too-large; default 2^30 */
    uint32_t max_dimension;  /* a side over this: too-large; default 100000 */
    uint32_t time_budget_ms; /* decode+hash time per file; 0 = none; default 60000 */
    const volatile int *stop;/* when non-NULL and *stop becomes non-zero (a signal
                                handler may set it), hashing stops before the next
                                256 KiB chunk with IMT_E_INTERRUPTED; default NULL */
    int embedded;            /* non-zero: also hash the pictures embedded in the file
                                (imt_subitem); default 1 */
} imt_hash_opts;

/** Fill opts with the defaults documented above. */
IMT_API void imt_hash_opts_init(imt_hash_opts *opts);

/** A picture inside a file, hashed as a sub-item of it. The one list of
 *  sub-items for every kind: embedded thumbnails and previews now; pages,
 *  frames, cache entries and archive members use the same struct (kinds are
 *  appended, values fixed once released). A match on a sub-item is a match
 *  on its file. Plain value, no pointers. */
typedef enum imt_subitem_kind {
    IMT_SUB_EXIF_THUMBNAIL = 1, /* JPEG APP1 Exif: IFD1's JPEGInterchangeFormat */
    IMT_SUB_MPF_IMAGE = 2,      /* JPEG APP2 MPF: a further image (large preview, ...) */
    IMT_SUB_HEIF_THUMBNAIL = 3  /* HEIF/AVIF: a 'thmb' item of the primary image */
} imt_subitem_kind;

/** "exif-thumbnail", "mpf-image", "heif-thumbnail"; "unknown" otherwise.
 *  Never NULL. */
IMT_API const char *imt_subitem_kind_name(imt_subitem_kind k);

/** The most sub-items one result holds; more are counted in sub_omitted. */
#define IMT_MAX_SUBITEMS 8

typedef struct imt_subitem {
    imt_subitem_kind kind;
    uint32_t index;          /* MPF: its MP entry (1 = the second image); HEIF:
                                the thumbnail's number (0 = the first); else 0 */
    uint64_t offset, size;   /* its bytes within the file; 0, 0 when it is not one
                                byte range (a HEIF thumbnail item) */
    imt_format format;       /* sniffed from those bytes */
    imt_err status;          /* IMT_OK when hashed; else detail says why */
    uint32_t width, height;
    int has_pdq;             /* pdq[] and quality valid */
    imt_pdq pdq[IMT_DIH__COUNT]; /* always all 8 dihedral variants */
    int quality;
    int distance;            /* least distance from any of its 8 variants to the
                                file's own hash; -1 when either has none */
    int differs;             /* distance > IMT_PDQ_MATCH_DISTANCE: the picture
                                shows something else than the file (edited after
                                the thumbnail was made, or a planted preview) */
    char detail[128];
} imt_subitem;

/** Result of hashing one file. Caller-owned value; its one pointer, sub,
 *  is borrowed from the hasher and valid until the next call on it: copy
 *  the imt_subitem values to keep them. */
typedef struct imt_hash_result {
    imt_err status;          /* IMT_OK if the PDQ hash (when asked) was made */
    imt_format format;       /* sniffed format */
    uint32_t width, height;  /* as stored in the file; 0 when unknown */
    uint64_t file_size;      /* bytes read */
    int has_pdq;             /* pdq[] and quality are valid */
    int n_pdq;               /* 1, or 8 with dihedral */
    imt_pdq pdq[IMT_DIH__COUNT]; /* indexed by imt_dihedral */
    int quality;             /* PDQ quality 0..100 */
    unsigned digests;        /* which of md5/sha1/sha256 hold digests */
    uint8_t md5[16];
    uint8_t sha1[20];
    uint8_t sha256[32];
    int partial;             /* the image data ended early or had recoverable
                                errors; the hash covers what could be decoded
                                (as the reference hasher does); detail says why */
    char detail[256];        /* why status is not IMT_OK, or the partial-decode
                                warning: "libjpeg: Premature end of JPEG file" */
    int changed;             /* the file changed while it was read (its size,
                                mtime or ctime differ after the read): the
                                digests cover exactly file_size bytes, the
                                size when it was opened (or fewer if it shrank);
                                detail says so (after any other reason) */
    const imt_subitem *sub;  /* embedded pictures (imt_hash_opts.embedded), in
                                file order; NULL when none. Borrowed: see above */
    size_t n_sub;
    size_t sub_omitted;      /* found beyond IMT_MAX_SUBITEMS */
    int thumbnail_differs;   /* some sub-item has differs set */
} imt_hash_result;

/** A per-thread hashing context: holds decoder state and scratch buffers
 *  so that hashing many files allocates nothing per file. Not shareable:
 *  create one per thread. */
typedef struct imt_hasher imt_hasher;

/** Create a hasher. opts may be NULL for defaults; it is copied. */
IMT_API imt_err imt_hasher_create(imt_hasher **out, const imt_hash_opts *opts);

/** Free a hasher. NULL is a no-op. */
IMT_API void imt_hasher_free(imt_hasher *h);

/** Hash the file at path (opened read-only, O_NOATIME where permitted).
 *  res is always filled (status, detail). Returns res->status.
 *  Digests are computed over every byte even when decoding fails. */
IMT_API imt_err imt_hash_file(imt_hasher *h, const char *path, imt_hash_result *res);

/** As imt_hash_file, reading from an open descriptor (not closed). */
IMT_API imt_err imt_hash_fd(imt_hasher *h, int fd, imt_hash_result *res);

/** As imt_hash_file, over bytes in memory (not copied, not kept). */
IMT_API imt_err imt_hash_memory(imt_hasher *h, const void *data, size_t len,
                                imt_hash_result *res);

/** A pull stream of bytes to hash: a file inside a disk image, a member of
 *  an archive, anything that is not a descriptor. read fills buf with up to
 *  cap bytes and sets *got (0 at the end); it returns IMT_OK, or the error
 *  that ended the stream (IMT_E_IO for a failed read; the hash result then
 *  says "read failed after N bytes"). It is called on the hasher's thread
 *  only, never with cap above 256 KiB. */
typedef struct imt_stream {
    imt_err (*read)(void *ctx, void *buf, size_t cap, size_t *got);
    void *ctx;
    uint64_t size;           /* the bytes the stream should hold; 0 = unknown.
                                When set, no more are read (limits use it
                                before decoding), and a stream that ends
                                early is flagged partial with a note */
} imt_stream;

/** As imt_hash_file, over a stream (read to its end or size). */
IMT_API imt_err imt_hash_stream(imt_hasher *h, const imt_stream *stream,
                                imt_hash_result *res);

/** The last error of h as a sentence naming the cause; "" if none. Valid
 *  until the next call on h. Never NULL. */
IMT_API const char *imt_hasher_last_error(const imt_hasher *h);

/** Tune the C library's allocator for hashing many images: with glibc,
 *  keep blocks up to 512 MiB in the heap (M_MMAP_THRESHOLD) and do not
 *  trim it below 1 GiB (M_TRIM_THRESHOLD). libjpeg allocates and frees its
 *  per-image buffers (for a progressive JPEG, the whole coefficient array)
 *  for every image; served by mmap/munmap, every image pays for fresh
 *  zeroed pages: measured 10.5 s -> 4.5 s on 72 photos with 1 thread, and
 *  threads scale. The cost: freed memory stays mapped (about 120 MB per
 *  thread). Process-wide, so the library never does it by itself: call it
 *  once, early, before other threads start (the imgtriage CLI does). A
 *  no-op without glibc. */
IMT_API void imt_tune_allocator(void);

/* ------------------------------------------------------------------------
 * Known-hash index (engine/index) -- see the index section below.
 * ---------------------------------------------------------------------- */
/* IMT-INDEX-API */
typedef struct imt_index imt_index;   /* an open index; see imt_index_open */
typedef struct imt_cursor imt_cursor; /* a per-thread reader of an index */

typedef enum imt_hash_kind {
    IMT_KIND_PDQ = 1,
    IMT_KIND_MD5 = 2,
    IMT_KIND_SHA1 = 3,
    IMT_KIND_SHA256 = 4
} imt_hash_kind;

/** "pdq", "md5", "sha1", "sha256". Never NULL. */
IMT_API const char *imt_hash_kind_name(imt_hash_kind k);

typedef struct imt_index_opts {
    int read_only;        /* non-zero: open for reading only (default 1) */
    int create;           /* non-zero: create the index if absent (default 0) */
    uint64_t map_size;    /* LMDB map size in bytes; 0 = default (64 GiB) */
    int exclusive;        /* with create: IMT_E_EXISTS if an index is there (default 0) */
    int skip_content_check; /* non-zero: do not check the searched PDQ arrays against
                               their stored checksums at open (faster on a cold, large
                               index); imt_index_stats.content_verified is then 0 and a
                               report must say so (default 0: checked) */
} imt_index_opts;

IMT_API void imt_index_opts_init(imt_index_opts *opts);

/** Open the index at path (a directory). The handle may be shared by every
 *  thread for reading; each thread queries through its own imt_cursor.
 *  Unless opts->skip_content_check, the PDQ arrays queries search are read
 *  once and checked against their stored checksums (which the identity
 *  covers): IMT_E_INDEX_CORRUPT if they differ. A read-only open of an index
 *  whose lock.mdb this process cannot write runs without LMDB's lock; reads
 *  then fail with IMT_E_INDEX_CHANGED once a writer has committed. */
IMT_API imt_err imt_index_open(imt_index **out, const char *path,
                               const imt_index_opts *opts);

/** Why the calling thread's last failed imt_index_open failed, as a
 *  sentence naming the path; "" after a success. Never NULL. */
IMT_API const char *imt_index_open_error(void);

/** Close an index (all cursors must be closed first). NULL is a no-op. */
IMT_API void imt_index_close(imt_index *idx);

/** The last error on idx as a sentence ("line 12 of x.csv: ..."); "" if none. */
IMT_API const char *imt_index_last_error(const imt_index *idx);

/** One imported hash list. Strings are borrowed from the index and stay
 *  valid until it is closed. */
typedef struct imt_list_info {
    uint32_t id;            /* stable within the index */
    const char *name;       /* as given at import */
    const char *version;    /* as given at import, or found in the list (NSRL) */
    const char *format;     /* "pdq-csv", "md5sum", "vics-1", "nsrl-rdsv3", ... */
    const char *file_sha256;/* digest of the imported file, hex */
    const char *scheme;     /* category scheme: "projectvic", "caid", "custom" */
    int64_t import_time;    /* Unix seconds */
    int known_good;         /* non-zero: a known-good list (e.g. NSRL) */
    uint64_t entries;       /* hashes it contributed */
    const char *policy;     /* category policy, canonical: which categories
                               alert, inform or are ignored, e.g.
                               "alert=none,1-2 info=3+ ignore=0" */
} imt_list_info;

IMT_API size_t imt_index_list_count(const imt_index *idx);
IMT_API imt_err imt_index_list_get(const imt_index *idx, size_t i, imt_list_info *out);

/** A digest identifying the index content (meta records, which hold the
 *  checksums of the searched PDQ arrays, and list inventory), written into
 *  every scan's audit record: 64 hex digits and a NUL. It stands for the
 *  bytes searched when imt_index_stats.content_verified is 1. */
IMT_API imt_err imt_index_identity(const imt_index *idx, char out[65]);

/** What a match against one list membership means for the examiner, from the
 *  list's category policy (its scheme's table, or one given at import). */
typedef enum imt_disposition {
    IMT_DISP_ALERT = 0,  /* known material: the file is a hit */
    IMT_DISP_INFO = 1,   /* informational: reported, not a hit */
    IMT_DISP_IGNORE = 2  /* known-good or non-pertinent (NSRL, VIC 0): the
                            file is marked known-good, never a hit */
} imt_disposition;

/** "alert", "info", "ignore". Never NULL. */
IMT_API const char *imt_disposition_name(imt_disposition d);

/** Membership of a matched entry in one list. */
typedef struct imt_membership {
    uint32_t list_id;
    int32_t category;        /* as given by the list; -1 when none */
    const char *category_label; /* the list's own label text, or "" */
    const char *external_id; /* e.g. the VICS MediaID, or "" */
    imt_disposition disposition; /* what this membership means */
} imt_membership;

typedef struct imt_match {
    imt_hash_kind kind;      /* what matched */
    uint64_t entry;          /* entry id within the index */
    int distance;            /* PDQ Hamming distance; 0 for digests */
    imt_dihedral variant;    /* which query variant matched (PDQ) */
    imt_pdq pdq;             /* the indexed PDQ hash (PDQ matches) */
    int quality;             /* its quality at import, -1 when unknown */
    const imt_membership *members; /* lists holding the entry */
    size_t n_members;
    size_t query;            /* index of the query in a batch (0 for single) */
} imt_match;

/** A reader of idx for one thread at a time, on the handle's snapshot:
 *  IMT_E_INDEX_CHANGED if another process has committed to the index since
 *  idx was opened (open it again); a cursor opened before keeps answering
 *  from the snapshot. Close with imt_cursor_close before imt_index_close. */
IMT_API imt_err imt_cursor_open(imt_cursor **out, imt_index *idx);
IMT_API void imt_cursor_close(imt_cursor *c);

/** Every indexed PDQ hash within Hamming distance radius (0..256) of any of
 *  the nq query hashes (nq = 1, or 8 dihedral variants in imt_dihedral
 *  order). Exact: nothing within the radius is missed. Each entry is
 *  reported once, with its smallest distance over the variants. Results are
 *  borrowed from the cursor, valid until its next query. */
IMT_API imt_err imt_query_pdq(imt_cursor *c, const imt_pdq *q, int nq, int radius,
                              const imt_match **out, size_t *n);

/** Exact lookup of an MD5 (16 bytes), SHA-1 (20) or SHA-256 (32) digest. */
IMT_API imt_err imt_query_digest(imt_cursor *c, imt_hash_kind kind,
                                 const uint8_t *digest, const imt_match **out,
                                 size_t *n);

/** Every match of nqueries queries in one call: q holds nqueries * nvar
 *  hashes (nvar = 1, or 8 dihedral variants per query, in imt_dihedral
 *  order). Results are ordered by query, then distance, then entry; each
 *  carries its query's index in match.query. Same rules as imt_query_pdq. */
IMT_API imt_err imt_query_pdq_batch(imt_cursor *c, const imt_pdq *q, size_t nqueries,
                                    int nvar, int radius, const imt_match **out,
                                    size_t *n);

/** How PDQ queries search the compacted segment. AUTO picks per query from
 *  the expected work (multi-index hashing for small radii, a SIMD scan of
 *  every hash for large ones); the others force one method (tests, bench).
 *  Every method gives the same, exact results. */
typedef enum imt_search_method {
    IMT_SEARCH_AUTO = 0,
    IMT_SEARCH_MIH = 1,
    IMT_SEARCH_SCAN = 2
} imt_search_method;

IMT_API void imt_cursor_set_method(imt_cursor *c, imt_search_method m);

/** Work counters of a cursor since it was opened. */
typedef struct imt_query_counters {
    uint64_t queries;     /* query hashes searched (variants count one each) */
    uint64_t candidates;  /* hashes whose full distance was computed */
    uint64_t buckets;     /* MIH buckets probed */
    uint64_t scans;       /* queries answered by scanning every hash */
} imt_query_counters;

IMT_API void imt_cursor_counters(const imt_cursor *c, imt_query_counters *out);

/* ---- building an index ------------------------------------------------ */

/** Options of imt_index_import. Strings are copied. */
typedef struct imt_import_opts {
    const char *name;       /* list name; default (NULL): the file's base name */
    const char *version;    /* list version; default "" (NSRL: its VERSION row) */
    const char *format;     /* NULL or "auto": detected; else one of
                               imt_index_formats() */
    const char *scheme;     /* category scheme; NULL: "projectvic" for VICS,
                               "custom" otherwise; "caid" for CAID lists */
    int known_good;         /* -1 (default): by format (NSRL good, others bad);
                               0 known-bad; 1 known-good */
    int32_t category;       /* category of records that give none; default -1 */
    const char *policy;     /* category policy over the scheme's default
                               (README's table): terms "DISP=CATS" separated
                               by blanks, DISP alert, info or ignore, CATS
                               comma-separated N, N-M, N+, none (no category)
                               or * (all); later terms win. NULL: the default */
    int skip_bad;           /* non-zero: skip bad records, count them, import
                               the rest; default 0: the first one fails all */
    int again;              /* non-zero: import a file whose SHA-256 is on a
                               list already; default 0: IMT_E_DUPLICATE, the
                               error naming that list (matches would count
                               twice) */
    int compact;            /* -1 (default): when the delta segment is large;
                               0: never; 1: always */
    int64_t import_time;    /* Unix seconds to record; 0 (default): now */
    /* Called about every 65536 records read (from the importing thread). */
    void (*progress)(void *opaque, uint64_t records);
    void *progress_opaque;
    /* Called (with progress_opaque, from the importing thread) as the import
     * reaches each step: "parsed" (the file is read, nothing written), then
     * inside the write transaction "begin", "entries", "digests", "delta",
     * "compact" (only when it compacts) and "commit" (all written, about to
     * commit: until the commit returns, a crash leaves the index as it
     * was), then "done". NULL: none. */
    void (*stage)(void *opaque, const char *step);
    /* Bytes the import's own buffers may hold (records read, not yet
     * merged, and the batch's sort and lookup arrays): the list is read and
     * merged in batches of about a quarter of it, all in the one write
     * transaction; the digests of every batch but the last are sorted into
     * runs in unnamed temporary files in $TMPDIR (else /tmp), merged at the
     * end. The result is the same for every budget. Not counted: LMDB's
     * dirty pages (it writes them to the file past 512 MiB) and 36 bytes
     * per new PDQ hash. With more than one batch "begin" comes before
     * "parsed". 0: the default, IMT_IMPORT_MEMORY_DEFAULT (1 GiB); at
     * least IMT_IMPORT_MEMORY_MIN. */
    uint64_t memory_budget;
} imt_import_opts;
#define IMT_IMPORT_MEMORY_DEFAULT (1ull << 30)
#define IMT_IMPORT_MEMORY_MIN (4ull << 20)

IMT_API void imt_import_opts_init(imt_import_opts *opts);

#define IMT_IMPORT_BAD_EXAMPLES 4

typedef struct imt_import_stats {
    uint32_t list_id;       /* the new list (the first of them); 0 unless
                               the import was committed */
    uint32_t lists;         /* lists created: 1, or an export's inventory */
    char format[24];        /* the format read ("pdq-csv", "vics-2", ...) */
    uint64_t records;       /* good records read */
    uint64_t new_entries;   /* entries created */
    uint64_t merged;        /* records that joined an entry already indexed */
    uint64_t bad;           /* bad records skipped (skip_bad) */
    char bad_examples[IMT_IMPORT_BAD_EXAMPLES][256]; /* "file:line: reason" */
    int compacted;          /* non-zero: the PDQ segments were rebuilt */
    /* Records repeating an earlier record of the same list (every hash the
     * same): one membership, not an error. The first category and label
     * stay unless the repeat's are more severe by the list's policy
     * (alert > info > ignore); the first external id stays. */
    uint64_t duplicates;
    uint64_t conflicts;     /* of those, with another category or label */
    char conflict_example[256]; /* the first conflict, "file:line: ..." */
    uint64_t batches;       /* batches merged (1 unless over the budget) */
} imt_import_stats;

/** Import the hash list at path into idx (opened with read_only = 0) as one
 *  new list, in one transaction: on any error (or a crash, or SIGKILL) the
 *  index keeps exactly its previous content. Without skip_bad the first bad
 *  record fails the import with its code (IMT_E_PARSE, IMT_E_HASH_LENGTH,
 *  IMT_E_NOT_HEX, IMT_E_DUPLICATE, IMT_E_JSON_SHAPE, IMT_E_EMPTY,
 *  IMT_E_TRUNCATED, IMT_E_DB ...) and imt_index_last_error names file:line.
 *  One case differs: the list was committed but re-reading the handle's
 *  snapshot then failed (out of memory): the error is returned with
 *  stats->list_id non-zero (the list is in the index) and idx must be
 *  closed and reopened. No cursor may be open on idx. stats may be NULL. */
IMT_API imt_err imt_index_import(imt_index *idx, const char *path,
                                 const imt_import_opts *opts, imt_import_stats *stats);

/** Rebuild the PDQ search structures so the delta segment is empty. */
IMT_API imt_err imt_index_compact(imt_index *idx);

/** The import format names, NULL-terminated. */
IMT_API const char *const *imt_index_formats(void);

/** Figures about an index; strings borrowed until it is closed. */
typedef struct imt_index_stats {
    uint32_t format_version;
    const char *tool_version;  /* the imgtriage version that created it */
    int64_t created;           /* Unix seconds */
    uint64_t generation;       /* imports and compactions committed */
    uint64_t entries;          /* distinct entries */
    uint64_t pdq, md5, sha1, sha256; /* entries holding each kind */
    uint64_t memberships;
    uint64_t pdq_main;         /* PDQ hashes in the compacted segment */
    uint64_t pdq_delta;        /* PDQ hashes in the delta segment */
    int mih_tables;            /* 0 when the compacted segment is empty */
    int mih_bits[32];          /* substring width of each table */
    uint64_t file_bytes;       /* size of the data file */
    int content_verified;      /* 1: at open, the searched PDQ arrays (compacted and
                                  delta) matched their stored checksums, so the identity
                                  stands for the bytes searched; 0: not checked
                                  (skip_content_check): say "content not verified" */
} imt_index_stats;

IMT_API imt_err imt_index_stats_get(const imt_index *idx, imt_index_stats *out);

/** Check every structure against the entries: header, list inventory and
 *  counts, each entry record, the digest tables both ways, the PDQ arrays,
 *  every MIH bucket's content and the stored checksums. IMT_OK, or
 *  IMT_E_INDEX_CORRUPT with the first problem in imt_index_last_error. */
IMT_API imt_err imt_index_verify(imt_index *idx);

typedef struct imt_export_opts {
    const char *format;     /* "jsonl" (default: every field, re-importable),
                               "pdq-csv", "te", "md5sum", "sha1sum",
                               "sha256sum", "pdq-hex", "md5-hex", "sha1-hex",
                               "sha256-hex" */
    int64_t list_id;        /* only entries of this list; -1 (default): all */
} imt_export_opts;

IMT_API void imt_export_opts_init(imt_export_opts *opts);

/** Write entries to the descriptor fd (not closed), in entry order. */
IMT_API imt_err imt_index_export(imt_index *idx, int fd, const imt_export_opts *opts);

/* ------------------------------------------------------------------------
 * Scanning (engine/scan): walk evidence, hash every regular file once,
 * match against an index, hand one record per entry to the caller in a
 * deterministic order (sorted walk order, whatever the thread count).
 *
 * Walking: every path argument is walked depth-first, the entries of each
 * directory in byte order of their names (so the record order is the order
 * of the full paths with '/' sorting before every other byte). A path
 * argument that is a symbolic link is followed (the user named it); nothing
 * inside is. Files are opened read-only with O_NOATIME where permitted,
 * relative to their directory's descriptor (so paths longer than PATH_MAX
 * work). FIFOs, sockets and devices are reported, never opened. Memory is
 * bounded: one directory listing per level of the current path, one batch
 * of files, and the identities of files with several hard links.
 * ---------------------------------------------------------------------- */

/** What a walked entry is. Values are fixed once released. */
typedef enum imt_entry_type {
    IMT_ENTRY_FILE = 0,      /* a regular file: read, digested, decoded */
    IMT_ENTRY_HARDLINK = 1,  /* another name of a regular file read earlier in
                                this scan (hardlink_of): not read again */
    IMT_ENTRY_SYMLINK = 2,   /* a symbolic link: reported, never followed */
    IMT_ENTRY_DIR = 3,       /* a directory: reported only when it could not
                                be read, loops, is on another file system, or
                                is a PATH argument inside (or the same as)
                                another one: then it is walked once, under
                                the other, and the record's detail says so
                                (a repeated file PATH likewise: not read) */
    IMT_ENTRY_FIFO = 4,      /* FIFOs, sockets, devices: reported, never opened */
    IMT_ENTRY_SOCKET = 5,
    IMT_ENTRY_CHARDEV = 6,
    IMT_ENTRY_BLOCKDEV = 7,
    IMT_ENTRY_UNKNOWN = 8,   /* vanished before its type could be read, or odd */
    IMT_ENTRY__COUNT
} imt_entry_type;

/** "file", "hardlink", "symlink", "dir", "fifo", "socket", "chardev",
 *  "blockdev", "unknown". Never NULL. */
IMT_API const char *imt_entry_type_name(imt_entry_type t);

/** One match of a file against the index, flattened per list membership
 *  (an entry held by two lists gives two matches). Strings are borrowed:
 *  valid during the record callback only. */
typedef struct imt_scan_match {
    imt_hash_kind kind;        /* md5, sha1, sha256 or pdq */
    int distance;              /* PDQ Hamming distance; 0 for digests */
    imt_dihedral variant;      /* PDQ: which variant of the file matched */
    uint64_t entry;            /* the index entry */
    uint32_t list_id;
    const char *list;          /* list name */
    const char *list_version;
    const char *scheme;        /* category scheme of the list */
    int known_good;            /* the list is a known-good list (NSRL) */
    int32_t category;          /* -1 when none */
    const char *category_label;/* "" when none */
    const char *external_id;   /* "" when none */
    imt_disposition disposition; /* only IMT_DISP_ALERT makes a hit */
    int32_t subitem;           /* -1: the file's own hash or digests; else the
                                  index in hash->sub of the embedded picture
                                  whose PDQ matched (a hit on it is a hit on
                                  the file) */
} imt_scan_match;

/** The record of one walked entry. Everything it points to is borrowed:
 *  valid during the record callback only. */
/** Where a file inside a disk image lies (engine/source): set on records of
 *  files read from an image (path "IMAGE!pN/path/in/fs"), NULL for files
 *  of a folder. Strings are borrowed like the record's. */
typedef enum imt_alloc_status {
    IMT_ALLOC_ALLOCATED = 0, /* name and metadata allocated */
    IMT_ALLOC_DELETED = 1,   /* name or metadata unallocated */
    IMT_ALLOC_ORPHAN = 2,    /* metadata with no name (TSK's $OrphanFiles) */
    IMT_ALLOC_CARVED = 3     /* found by signature in unallocated space */
} imt_alloc_status;

/** "allocated", "deleted", "orphan", "carved". Never NULL. */
IMT_API const char *imt_alloc_status_name(imt_alloc_status s);

/** Byte runs kept per record (more are counted in runs_omitted). */
#define IMT_MAX_BYTE_RUNS 64

typedef struct imt_byte_run {
    uint64_t file_offset;    /* offset in the file's content */
    uint64_t img_offset;     /* offset in the image (0 when sparse) */
    uint64_t len;
    int sparse;              /* a hole: reads as zeros, no image bytes */
} imt_byte_run;

typedef struct imt_location {
    const char *image;       /* the image: the PATH argument as given */
    int32_t partition;       /* N of "!pN": allocated partitions counted
                                from 1 in volume-system order; 0 = the
                                image holds one file system, no table */
    uint64_t part_offset;    /* the partition's first byte in the image */
    uint64_t part_length;
    const char *part_type;   /* the volume system's description, or "" */
    const char *fs_type;     /* "ntfs", "fat32", "ext4", "iso9660", ... */
    uint64_t meta_addr;      /* inode / MFT entry number */
    const char *stream;      /* NTFS alternate data stream name, or NULL */
    imt_alloc_status alloc;
    int overwritten;         /* deleted, and some of its blocks are allocated
                                again: content-may-be-overwritten */
    int64_t atime_s, crtime_s; /* also in the image's file system (mtime and
                                  ctime are the record's); 0 = not held */
    int32_t atime_ns, crtime_ns;
    int64_t first_offset;    /* image offset of the content's first byte;
                                -1 when none (empty, resident in metadata,
                                or starts with a hole) */
    const imt_byte_run *runs;
    size_t n_runs;
    size_t runs_omitted;     /* runs past the recorded ones */
} imt_location;

typedef struct imt_scan_record {
    uint64_t seq;              /* position in walk order, from 0 */
    const char *path;          /* the path as walked: raw bytes, may exceed
                                  PATH_MAX, may be invalid UTF-8 */
    imt_entry_type type;
    int skipped;               /* the caller's skip callback claimed this entry
                                  (resume): nothing below is filled */
    imt_err status;            /* IMT_OK, or why the entry could not be fully
                                  processed (IMT_E_IO unreadable, NOT_FOUND
                                  vanished, CORRUPT, TRUNCATED, ...) */
    int scan_error;            /* non-zero: this entry keeps the scan from
                                  being complete (something could not be read:
                                  an unreadable file or folder, a PATH
                                  argument that does not exist, a failed
                                  index lookup). A finding about the file
                                  (corrupt, not-an-image, a file deleted
                                  during the scan) is not a scan error. */
    const char *detail;        /* a sentence on status, a note, or "" */
    int have_stat;             /* the fields below hold lstat() values */
    uint64_t size, inode, dev;
    uint32_t mode, uid, gid, nlink;
    int64_t mtime_s, ctime_s;  /* Unix seconds and nanoseconds */
    int32_t mtime_ns, ctime_ns;
    const char *link_target;   /* symlinks: the target text (not followed) */
    const char *hardlink_of;   /* hard links: the path read earlier */
    const imt_hash_result *hash; /* files that were read: digests, format,
                                  dimensions, PDQ; NULL otherwise */
    int known_good;            /* a digest is on a known-good list: PDQ
                                  matching was skipped */
    int pdq_low_quality;       /* PDQ quality below the minimum: kept, not
                                  matched (upstream's advice) */
    const imt_scan_match *matches;
    size_t n_matches;
    size_t matches_omitted;    /* matches over imt_scan_opts.max_matches */
    const imt_location *loc;   /* files inside a disk image; NULL otherwise */
} imt_scan_record;

/** Progress counters, cumulative since the start of imt_scan_run. */
typedef struct imt_scan_progress {
    uint64_t entries;          /* records emitted (skipped ones included) */
    uint64_t files;            /* regular files read */
    uint64_t images;           /* of them, with a PDQ hash */
    uint64_t bytes;            /* bytes read */
    uint64_t hits;             /* records with a match on a list that is not
                                  known-good */
    uint64_t errors;           /* entries with scan_error set */
    uint64_t elapsed_ms;
} imt_scan_progress;

/** Called once per entry, in walk order, from the thread that called
 *  imt_scan_run. Return 0 to go on, non-zero to stop the scan (it then
 *  returns IMT_E_INTERRUPTED). */
typedef int (*imt_scan_record_fn)(void *ctx, const imt_scan_record *rec);

/** Optional: called in walk order as entries are found, before any work on
 *  them. Non-zero claims the entry: it is not read and its record comes with
 *  skipped = 1 (used to resume a scan). */
typedef int (*imt_scan_skip_fn)(void *ctx, const char *path, imt_entry_type type);

/** Optional: called after every batch of records, from the calling thread. */
typedef void (*imt_scan_progress_fn)(void *ctx, const imt_scan_progress *p);

typedef struct imt_scan_opts {
    int threads;               /* workers; 0 = all cores, 1 = serial (default 0) */
    imt_hash_opts hash;        /* defaults: imt_hash_opts_init, with dihedral = 1
                                  and digests = MD5|SHA1 */
    int one_file_system;       /* do not enter other file systems (default 0) */
    int pdq_distance;          /* PDQ match radius (default IMT_PDQ_MATCH_DISTANCE) */
    int min_quality;           /* lower PDQ quality is not matched (default
                                  IMT_PDQ_MIN_QUALITY) */
    size_t max_matches;        /* matches kept per file (default 100) */
    size_t batch_files;        /* files hashed per batch (default 256) */
    const volatile int *stop;  /* when non-NULL and *stop becomes non-zero (a
                                  signal handler may set it), the scan stops
                                  within a 256 KiB chunk of each file in
                                  progress (hash.stop defaults to it); the records
                                  emitted are a prefix of a full scan's */
    imt_scan_skip_fn skip;     /* optional, see above */
    imt_scan_progress_fn progress; /* optional, see above */
    void *ctx;                 /* passed to skip and progress */
} imt_scan_opts;

/** Fill opts with the defaults documented above. */
IMT_API void imt_scan_opts_init(imt_scan_opts *opts);

/** Scan the n_paths paths (files or directories, in the order given).
 *  idx may be NULL (no matching). on_record receives every record in walk
 *  order, whatever opts->threads. Returns IMT_OK when the walk completed
 *  (entries that could not be read are records, not errors),
 *  IMT_E_INTERRUPTED when stopped (by *opts->stop or on_record), or the
 *  error that prevented scanning (IMT_E_NOMEM, IMT_E_INVALID). detail, when
 *  not NULL, gets a sentence on the failure ([cap] bytes).
 *  OpenMP threads are used inside; the callbacks run on the calling thread. */
IMT_API imt_err imt_scan_run(imt_index *idx, const char *const *paths, size_t n_paths,
                             const imt_scan_opts *opts, imt_scan_record_fn on_record,
                             void *ctx, char *detail, size_t cap);

/** Count the regular files and bytes under paths without reading them
 *  (lstat only; the same walk as imt_scan_run), for a progress ETA. stop as
 *  in imt_scan_opts; may be NULL. Safe to run in another thread at the same
 *  time as a scan. */
IMT_API imt_err imt_scan_estimate(const char *const *paths, size_t n_paths,
                                  int one_file_system, const volatile int *stop,
                                  uint64_t *files, uint64_t *bytes);

/* ------------------------------------------------------------------------
 * Reports (engine/report): the JSONL / CSV writer of scan records, the
 * device summary and its priority score.
 * ---------------------------------------------------------------------- */
typedef enum imt_report_format {
    IMT_REPORT_JSONL = 0,      /* header record, one record per entry, summary */
    IMT_REPORT_CSV = 1,        /* one row per entry and match; header and
                                  summary as '#'-prefixed JSON lines */
    /* Written only by imt_report_convert (from a JSONL report): */
    IMT_REPORT_DFXML = 2,      /* DFXML 2.0 (fileobjects; PDQ and matches in
                                  the imgtriage namespace) */
    IMT_REPORT_VICS = 3,       /* Project VIC VICS 2.0 case export (JSON) */
    IMT_REPORT_HTML = 4        /* one self-contained page for people */
} imt_report_format;

typedef struct imt_report_opts {
    imt_report_format format;  /* default JSONL */
    int hits_only;             /* only entries with a match (default 0) */
    const char *command_line;  /* for the audit header; may be NULL */
    const char *device;        /* device name (--device); may be NULL */
    const char *case_id;       /* case identifier (--case); may be NULL */
    const char *index_path;    /* as given by the user; may be NULL */
    int verify_images;         /* imt_report_begin recomputes the MD5 of each
                                  PATH that is a disk image and compares it
                                  with the hash an E01 stores; a mismatch or
                                  an unreadable image makes the scan
                                  incomplete (default 0) */
} imt_report_opts;

IMT_API void imt_report_opts_init(imt_report_opts *opts);

/** Writes one scan's report to a stream. Used by one thread at a time. */
typedef struct imt_report imt_report;

/** Create a report writing to out (not closed by the report). opts is
 *  copied (strings too). */
IMT_API imt_err imt_report_create(imt_report **out, FILE *f, const imt_report_opts *opts);
IMT_API void imt_report_free(imt_report *r);

/** Continue the interrupted scan whose JSONL report is at path: checks that
 *  it scanned the same paths with the same options and index, then, through
 *  imt_report_skip, claims the entries it already holds, copying their
 *  records unchanged, so that the new report equals an uninterrupted one
 *  (times aside). Call before imt_report_begin. IMT_E_PARSE / IMT_E_INVALID
 *  with imt_report_last_error() saying why otherwise. */
IMT_API imt_err imt_report_resume(imt_report *r, const char *path);

/** Write the header record: tool version, command line, times, host, user,
 *  options, the paths, and the index identity and lists (idx may be NULL). */
IMT_API imt_err imt_report_begin(imt_report *r, const imt_index *idx,
                                 const char *const *paths, size_t n_paths,
                                 const imt_scan_opts *opts);

/** An imt_scan_skip_fn: pass it with the report as ctx. */
IMT_API int imt_report_skip(void *report, const char *path, imt_entry_type type);

/** An imt_scan_record_fn: pass it with the report as ctx. Returns non-zero
 *  (stopping the scan) when writing fails. */
IMT_API int imt_report_record(void *report, const imt_scan_record *rec);

/** The device summary so far. */
typedef struct imt_report_summary {
    uint64_t entries, files, images, bytes, hit_files, known_good_files;
    uint64_t errors;           /* entries that prevented a complete scan
                                  (unreadable files and folders) */
    uint64_t distinct_items;   /* distinct known index entries matched */
    double priority;           /* see imt_report_priority_text */
    int complete;              /* set by imt_report_end: the scan ran to its
                                  end (scan_status IMT_OK), no entry is a
                                  scan error and the report was written */
} imt_report_summary;

/** Write the summary record (scan_status: what imt_scan_run returned) and
 *  flush. Fills sum when not NULL. */
IMT_API imt_err imt_report_end(imt_report *r, imt_err scan_status,
                               imt_report_summary *sum);

/** The human device summary (several lines, for stderr) and the one-line
 *  explanation of the priority score. Borrowed, valid until the next call
 *  on r. Never NULL. */
IMT_API const char *imt_report_summary_text(imt_report *r);

/** The last error of r as a sentence; "" if none. Never NULL. */
IMT_API const char *imt_report_last_error(const imt_report *r);

/** Convert the JSONL report at in_path into opts->format (any of
 *  imt_report_format; opts->hits_only keeps the records with a hit), written
 *  to out, without rescanning: records are read back into the scan
 *  writer's record struct. The file is read twice (it must be a regular
 *  file). JSONL and CSV need a report of the current report format. detail
 *  (cap bytes, may be NULL) gets a sentence on a failure: IMT_E_IO,
 *  IMT_E_PARSE (not a report, with the line), IMT_E_INVALID, IMT_E_WRITE,
 *  IMT_E_NOMEM. */
IMT_API imt_err imt_report_convert(const char *in_path, FILE *out, const imt_report_opts *opts,
                                   char *detail, size_t cap);

/** From the header of the JSONL report at path: the PATHs it scanned and
 *  its index path (NULL if none), so that a caller can keep a converted
 *  report out of the evidence and the index. Free with
 *  imt_report_inputs_free. */
typedef struct imt_report_inputs {
    char **paths;
    size_t n_paths;
    char *index_path;
} imt_report_inputs;
IMT_API imt_err imt_report_inputs_read(imt_report_inputs *out, const char *path);
IMT_API void imt_report_inputs_free(imt_report_inputs *in);

/** Write s as a JSON string literal. Bytes that are not valid UTF-8 become
 *  \udcXX (Python's surrogateescape), so the original bytes can be
 *  recovered exactly. Returns 0, or -1 on a write error. */
IMT_API int imt_json_write_str(FILE *f, const char *s);

/** Write s as a CSV field, always quoted: '"' doubled, '\\' as '\\\\', and
 *  control bytes (terminal escapes included) and bytes that are not valid
 *  UTF-8 as \\xNN, as in scan reports; a field starting with = + - @ or '
 *  gets a leading ' so that no spreadsheet runs it as a formula (lossless:
 *  drop one leading '). 0, or -1 on a write error. */
IMT_API int imt_csv_write_str(FILE *f, const char *s);

#ifdef __cplusplus
}
#endif
#endif /* IMGTRIAGE_H */
