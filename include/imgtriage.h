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
    IMT_E_ENCRYPTED = 28,    /* encrypted (an archive member, an archive's
                                directory, a PDF): not examined */
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
    /* Containers (engine/container): never decoded as a picture; a scan
     * expands them and makes each member an item of its own. */
    IMT_FMT_ZIP = 10,    /* also OOXML, ODF, EPUB, UFDR, JAR, APK */
    IMT_FMT_RAR = 11,
    IMT_FMT_7Z = 12,
    IMT_FMT_TAR = 13,    /* POSIX ustar / GNU: "ustar" at offset 257 */
    IMT_FMT_GZIP = 14,
    IMT_FMT_BZIP2 = 15,
    IMT_FMT_XZ = 16,
    IMT_FMT_ZSTD = 17,
    IMT_FMT_CPIO = 18,   /* the ASCII kinds (odc, newc, crc) */
    IMT_FMT_PDF = 19,    /* its embedded images are its members */
    /* Video containers (engine/video, FFmpeg's libav*): hashed as vPDQ. */
    IMT_FMT_MP4 = 20,      /* ISO-BMFF video: MP4, MOV, 3GP, M4V */
    IMT_FMT_MATROSKA = 21, /* Matroska, WebM (EBML) */
    IMT_FMT_AVI = 22,      /* RIFF AVI */
    IMT_FMT_ASF = 23,      /* ASF: WMV, WMA */
    IMT_FMT_FLV = 24,      /* Flash video */
    IMT_FMT_MPEGTS = 25,   /* MPEG transport stream (188- or 192-byte packets) */
    IMT_FMT_THUMBCACHE = 26, /* Windows thumbcache_*.db: its pictures are sub-items */
    IMT_FMT_OLE2 = 27,       /* OLE2 compound file (Thumbs.db: its pictures are sub-items) */
    IMT_FMT__COUNT
} imt_format;

/** Minimum number of leading bytes imt_sniff() needs to decide (TAR's
 *  magic is at offset 257; an MPEG transport stream is told by the sync
 *  byte of three packets in a row, 392 bytes with 192-byte packets). */
#define IMT_SNIFF_BYTES 512

/** Identify the format of data from its magic bytes. len may be short. */
IMT_API imt_format imt_sniff(const void *data, size_t len);

/** "jpeg", "png", "gif", ... ; "unknown" for IMT_FMT_UNKNOWN. Never NULL. */
IMT_API const char *imt_format_name(imt_format fmt);

/** Non-zero when this build decodes fmt (JPEG, PNG, HEIF, AVIF). */
IMT_API int imt_format_decodable(imt_format fmt);

/** Non-zero when fmt is a container (IMT_FMT_ZIP .. IMT_FMT_PDF): hashing
 *  one reports IMT_E_NOT_IMAGE; a scan expands it into its members. */
IMT_API int imt_format_is_container(imt_format fmt);
/** Non-zero for the video containers (IMT_FMT_MP4 .. IMT_FMT_MPEGTS). */
IMT_API int imt_format_is_video(imt_format fmt);

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
    double seconds_per_hash; /* video: one frame per this many seconds (vPDQ's
                                --seconds-per-hash); default 1 */
    uint32_t max_video_frames; /* video: frames hashed at most (more: the
                                result is flagged partial); default 36000 */
    int video_threads;       /* video: decoder threads per file; default 1 (the
                                scan raises it when files are fewer than workers) */
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
    IMT_SUB_HEIF_THUMBNAIL = 3, /* HEIF/AVIF: a 'thmb' item of the primary image */
    IMT_SUB_THUMBCACHE_ENTRY = 4, /* thumbcache_*.db: a cache entry's picture */
    IMT_SUB_THUMBSDB_ENTRY = 5,   /* Thumbs.db: a catalogued thumbnail stream */
    IMT_SUB_TIFF_PAGE = 6,        /* TIFF: a page after the first (index: its number,
                                     1 = the second); not compared with the file's
                                     own hash (distance -1, never differs) */
    IMT_SUB__COUNT
} imt_subitem_kind;

/** "exif-thumbnail", "mpf-image", "heif-thumbnail", "thumbcache-entry",
 *  "thumbsdb-entry", "tiff-page"; "unknown" otherwise.
 *  Never NULL. */
IMT_API const char *imt_subitem_kind_name(imt_subitem_kind k);

/** The most sub-items one result holds; more are counted in sub_omitted. */
#define IMT_MAX_SUBITEMS 8
/** The most thumbnail-cache entries (thumbcache_*.db, Thumbs.db) or TIFF
 *  pages one result holds, in place of IMT_MAX_SUBITEMS: a cache holds
 *  thousands of pictures.
 *  About 0.5 KB each (8 MB at the bound, grown as found, kept by the hasher
 *  for its next file); more, and those the time budget leaves unhashed, are
 *  counted in sub_omitted. */
#define IMT_MAX_CACHE_ENTRIES 16384

typedef struct imt_subitem {
    imt_subitem_kind kind;
    uint32_t index;          /* MPF: its MP entry (1 = the second image); HEIF:
                                the thumbnail's number (0 = the first); a cache:
                                the entry's position (0 = the first); TIFF: the
                                page (1 = the second); else 0 */
    uint64_t offset, size;   /* its bytes within the file; 0, 0 when it is not one
                                byte range (a HEIF thumbnail item, a Thumbs.db
                                stream: size is the picture's bytes) */
    uint64_t entry_id;       /* thumbcache: the entry hash (ThumbnailCacheId);
                                Thumbs.db: the catalog id; else 0 */
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

/** One sampled frame of a video (vPDQ's feature: frame number, quality,
 *  PDQ hash, timestamp). Plain value. */
typedef struct imt_video_frame {
    uint64_t number;         /* frames presented before it in the stream */
    double timestamp;        /* presentation time, seconds from the stream's start */
    imt_pdq pdq;             /* the frame's PDQ hash (original orientation) */
    int quality;             /* 0..100 */
} imt_video_frame;

/** Result of hashing one file. Caller-owned value; its pointers, sub and
 *  frames, are borrowed from the hasher and valid until the next call on
 *  it: copy the values to keep them. */
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
    size_t sub_omitted;      /* found beyond IMT_MAX_SUBITEMS (IMT_MAX_CACHE_ENTRIES
                                for a cache), or left unhashed by the time budget */
    int thumbnail_differs;   /* some sub-item has differs set */
    const imt_video_frame *frames; /* a video's sampled frames in time order
                                (format imt_format_is_video); NULL otherwise.
                                Borrowed: see above. has_pdq is 0 for video */
    size_t n_frames;
    double duration;         /* video: seconds, from the container; 0 unknown */
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

/* ------------------------------------------------------------------------
 * Carving (engine/source/carve.c): pictures found by signature and
 * structure in bytes no file owns (unallocated space, a memory dump).
 * JPEG, PNG, GIF, WebP and BMP are carved; engine/source/carve.h describes
 * each walk. Linear in the bytes: after a hit the carve goes on after its
 * end, after a rejected signature one byte after it.
 * ---------------------------------------------------------------------- */
typedef struct imt_carve_opts {
    uint64_t max_length;     /* a hit longer than this ends here, truncated;
                                default 64 MiB */
    size_t chunk_bytes;      /* bytes read at a time; default 4 MiB (memory:
                                this plus 1 MiB). Results do not depend on it */
    unsigned formats;        /* bits (1u << imt_format) to carve; default all
                                of JPEG, PNG, GIF, WebP, BMP */
    const volatile int *stop;/* when non-NULL and *stop becomes non-zero, the
                                carve stops with IMT_E_INTERRUPTED */
} imt_carve_opts;

IMT_API void imt_carve_opts_init(imt_carve_opts *opts);

/** How a hit ended. */
typedef enum imt_carve_end {
    IMT_CARVE_COMPLETE = 0,  /* its end marker (EOI, IEND, trailer, sizes) */
    IMT_CARVE_RANGE_END = 1, /* ran off the end of the bytes carved */
    IMT_CARVE_MAX_LENGTH = 2,/* longer than max_length: cut there */
    IMT_CARVE_BAD_STRUCTURE = 3 /* a bad marker, chunk or CRC after a good
                                start: ends where it begins */
} imt_carve_end;

/** "complete", "range-end", "max-length", "bad-structure". Never NULL. */
IMT_API const char *imt_carve_end_name(imt_carve_end e);

/** One carved item: offset and length within the bytes carved. */
typedef struct imt_carve_hit {
    uint64_t offset, length;
    imt_format format;       /* from the structure walked */
    int truncated;           /* end != IMT_CARVE_COMPLETE: hash it as partial */
    imt_carve_end end;
} imt_carve_hit;

/** Work counters of one carve (a test asserts linearity on them). */
typedef struct imt_carve_stats {
    uint64_t bytes_scanned;  /* bytes the carve got through */
    uint64_t bytes_read;     /* bytes read from the source (each once) */
    uint64_t examined;       /* bytes looked at by signature checks and walks */
    uint64_t candidates;     /* signatures walked */
    uint64_t hits;
} imt_carve_stats;

/** Called for every hit in offset order; non-zero stops the carve. */
typedef int (*imt_carve_fn)(void *ctx, const imt_carve_hit *hit);

/** Carve the bytes of fd (read with pread, never written; offsets from its
 *  start, size from fstat, or size when it is not 0: a device node). stats
 *  may be NULL. IMT_OK; IMT_E_INTERRUPTED (fn or opts->stop); IMT_E_IO when
 *  a read failed (stats->bytes_scanned says where); IMT_E_NOMEM. */
IMT_API imt_err imt_carve_fd(int fd, uint64_t size, const imt_carve_opts *opts,
                             imt_carve_fn fn, void *ctx, imt_carve_stats *stats);

/** Tune the C library's allocator for hashing many images: with glibc,
 *  keep blocks up to 512 MiB in the heap (M_MMAP_THRESHOLD), do not
 *  trim it below 1 GiB (M_TRIM_THRESHOLD), and use one arena for all
 *  threads (M_ARENA_MAX: in a thread's arena, whose heaps hold at most
 *  64 MiB, a block grown by realloc, as The Sleuth Kit grows a folder's
 *  names, leaves every heap it moved out of resident: a disk image's folder
 *  of a million names peaked at 8.5 GB, 290 MB with one arena). libjpeg allocates and frees its
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
    IMT_KIND_SHA256 = 4,
    IMT_KIND_VPDQ = 5        /* a known video, matched by its frames (vPDQ) */
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
    int full_check;         /* non-zero: check every page and the content even when
                               the verified-state record says this file passed both
                               unchanged (as the environment IMGTRIAGE_FULL_CHECK=1
                               does); the record is refreshed (default 0) */
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

/** A reader of idx for one thread at a time, on the handle's snapshot,
 *  also when another process has committed since idx was opened: the
 *  handle keeps read transactions begun with its own for its cursors (as
 *  many as the machine has CPUs, 4 to 64; a closed cursor's is reused).
 *  IMT_E_INDEX_CHANGED when none is left and another process has
 *  committed, or, for an index opened without a lock (read-only media),
 *  after any commit: open it again. A cursor keeps answering from the
 *  snapshot while others commit (with a lock). Close with
 *  imt_cursor_close before imt_index_close. */
IMT_API imt_err imt_cursor_open(imt_cursor **out, imt_index *idx);
IMT_API void imt_cursor_close(imt_cursor *c);

/** Every indexed PDQ hash within Hamming distance radius (0..256) of any of
 *  the nq query hashes (nq = 1, or 8 dihedral variants in imt_dihedral
 *  order). Exact: nothing within the radius is missed. Each entry is
 *  reported once, with its smallest distance over the variants. Results are
 *  borrowed from the cursor, valid until its next query. */
IMT_API imt_err imt_query_pdq(imt_cursor *c, const imt_pdq *q, int nq, int radius,
                              const imt_match **out, size_t *n);

/** Matching a video against the known videos (imported from vPDQ hash
 *  files), as vPDQ matches: frames of quality below min_quality dropped and
 *  exact-duplicate hashes counted once on both sides; a query frame matches
 *  a known video when one of its frames is within distance; the query-match
 *  % is the share of the query's frames that match the known video, the
 *  compared-match % the share of the known video's frames matched by some
 *  query frame; a known video is reported when both reach their thresholds.
 *  Defaults as python-threatexchange's vPDQ index (the matcher of Meta's
 *  Hasher-Matcher-Actioner): distance 31, quality 50, query 80 %, compared
 *  0 %. */
typedef struct imt_vpdq_opts {
    int distance;            /* 0..256; default IMT_PDQ_MATCH_DISTANCE (31) */
    int min_quality;         /* default IMT_PDQ_MIN_QUALITY (50) */
    double query_pct;        /* default 80 */
    double compared_pct;     /* default 0 */
} imt_vpdq_opts;

IMT_API void imt_vpdq_opts_init(imt_vpdq_opts *o);

/** A known video matched by a query video. */
typedef struct imt_vpdq_match {
    uint32_t list_id;
    const char *video;       /* the known video's id */
    int32_t category;        /* its list's category for it; -1 none */
    imt_disposition disposition;
    uint64_t entry;          /* the lowest index entry among its matched frames */
    uint32_t query_frames;   /* distinct query hashes of quality >= min_quality */
    uint32_t query_matched;  /* of them, within distance of one of its frames */
    uint32_t known_frames;   /* its distinct hashes of quality >= min_quality */
    uint32_t known_matched;  /* of them, within distance of a query frame */
    double query_pct, compared_pct; /* 100 * matched / frames */
    int min_distance;        /* the closest frame pair */
    const uint32_t *frames;  /* the query frames (indices into the query, in
                                order) that match it */
    size_t n_frames;
} imt_vpdq_match;

/** The known videos a video (n sampled frames, e.g. imt_hash_result.frames)
 *  matches; every frame is looked up through the PDQ search (exact: no
 *  frame pair within the distance is missed), then each known video holding
 *  a matched hash is scored. opts NULL: the defaults. Results are ordered by
 *  list id, then video id, and borrowed from the cursor until its next
 *  query. */
IMT_API imt_err imt_query_vpdq(imt_cursor *c, const imt_video_frame *frames, size_t n,
                               const imt_vpdq_opts *opts, const imt_vpdq_match **out,
                               size_t *n_out);

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

/** How PDQ queries search each compacted level. AUTO picks per level and query from
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
    const char *name;       /* list name, at most 511 bytes (longer:
                               IMT_E_INVALID); default (NULL): the file's
                               base name */
    const char *version;    /* list version, at most 255 bytes; default ""
                               (NSRL: its VERSION row) */
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
    int compact;            /* -1 (default): when the delta segment is large,
                               it becomes a compacted level (merged with the
                               smaller levels); 0: never; 1: always, and all
                               levels into one */
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
    /* vPDQ hash files (format "vpdq"): the known video's id when the path
     * is one file; NULL (default): its file name without the extension
     * (a folder of hash files: always each file's). */
    const char *video_id;
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
    /* Records whose PDQ hash an entry holds already but whose MD5, SHA-1 or
     * SHA-256 differs from that entry's (a re-encoded copy, a cropped twin):
     * each is an entry of its own (counted in new_entries), so the query
     * for that PDQ hash reports both and no digest is lost. */
    uint64_t pdq_shared;
    uint64_t pdq_written;   /* PDQ hashes written into compacted levels (the
                               rebuilt level's size; 0 without compaction) */
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

/** Rebuild the PDQ search structures as one compacted level (level 0): the
 *  delta segment and the other levels are merged into it. */
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
    uint64_t pdq_main;         /* PDQ hashes in the compacted levels, all of them */
    uint64_t pdq_delta;        /* PDQ hashes in the delta segment */
    int mih_tables;            /* of level 0; 0 when it is empty */
    int mih_bits[32];          /* substring width of each table of level 0 */
    uint64_t file_bytes;       /* size of the data file */
    int content_verified;      /* 1: at open, the searched PDQ arrays (compacted and
                                  delta) matched their stored checksums, so the identity
                                  stands for the bytes searched; 0: not checked
                                  (skip_content_check): say "content not verified" */
    int pdq_levels;            /* compacted levels (0 when none holds a hash) */
    uint64_t pdq_level[9];     /* hashes in level 0, 1, ... (largest first) */
    int content_from_record;   /* 1: content_verified rests on the verified-state record:
                                  this machine read and checked the arrays at
                                  verified_at and the file is unchanged since (device,
                                  inode, size, mtime, ctime, LMDB meta and branch pages);
                                  0: read at this open (or not verified) */
    int64_t verified_at;       /* Unix seconds of that check (0: not verified) */
    int pages_from_record;     /* 1: the open's page check read the meta and branch pages
                                  only, the leaves being unchanged since a full check
                                  recorded in the verified-state record; 0: every page */
    uint64_t open_pages_read;  /* pages the open's page check read */
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
    uint32_t frame;            /* a video's PDQ match on a known picture: 1 +
                                  the index in hash->frames of the frame (the
                                  earliest with that hash); 0 otherwise */
    /* kind IMT_KIND_VPDQ, a known video (external_id: its id): */
    double query_pct;          /* share of this video's frames matching it */
    double compared_pct;       /* share of its frames this video matches */
    const double *ranges;      /* the matched time ranges of this video, as
                                  n_ranges [start, end] pairs in seconds (runs
                                  of consecutive sampled frames that match) */
    size_t n_ranges;
} imt_scan_match;

/* Containers (engine/container): a walked file that sniffs as a container
 * (IMT_FMT_ZIP .. IMT_FMT_PDF) is expanded, and each regular member becomes a
 * record of its own, emitted right after its container's, in member order,
 * with the path "outer.zip!inner/a.jpg" ("a.zip!b.7z!c.jpg" nested; a gzip,
 * bzip2, xz or zstd file that holds no archive has one member named after
 * the file without its suffix; a PDF's images are "doc.pdf!obj12.jpg"). */

/** Bits of imt_container_info.limits: a limit of imt_container_opts that
 *  stopped (or prevented) an expansion. */
#define IMT_CLIMIT_TOTAL_BYTES 1u /* member bytes of one walked file, all depths */
#define IMT_CLIMIT_MEMBERS 2u     /* member records of one walked file, all depths */
#define IMT_CLIMIT_DEPTH 4u       /* a container nested deeper than max_depth */
#define IMT_CLIMIT_RATIO 8u       /* member bytes over max_ratio x the container's size */
#define IMT_CLIMIT_BUFFER 16u     /* a nested container over max_buffer bytes */
#define IMT_CLIMIT_PDF_SIZE 32u   /* a PDF over max_buffer bytes (read whole) */
#define IMT_CLIMIT__COUNT 6

/** "total-bytes", "members", "depth", "ratio", "buffer", "pdf-size" for bit
 *  number 0..IMT_CLIMIT__COUNT-1; "unknown" otherwise. Never NULL. */
IMT_API const char *imt_container_limit_name(int bit);

/** What a record says about containers. Zero for a plain walked file. */
typedef struct imt_container_info {
    /* A member's place (depth 0: an entry of the walk, the rest unused). */
    uint32_t depth;            /* 1: a member of a walked file; 2: of a member, ... */
    uint64_t index;            /* its position among its container's entries, from 0 */
    uint64_t size;             /* its size as the archive states it (read_bytes
                                  is what was read) */
    int has_mtime;             /* mtime as the archive stores it (none: unset) */
    int64_t mtime_s;
    int32_t mtime_ns;
    /* A container (walked or a member) that was expanded. */
    int expanded;              /* it sniffed as a container: members follow */
    uint64_t members;          /* member records that follow it (all depths) */
    uint64_t encrypted;        /* its encrypted entries (members whose records say
                                  "encrypted", or 1 for an encrypted directory or
                                  PDF): their content was not examined */
    unsigned limits;           /* IMT_CLIMIT_* bits that stopped its expansion */
    const char *note;          /* why the expansion stopped or failed; "" */
} imt_container_info;

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
    const char *fs_type;     /* "ntfs", "fat32", "ext4", "iso9660", "apfs", ... */
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
    int32_t volume;          /* K of "!vK": an APFS volume, counted from 1 in
                                its container's order; 0 = none */
    const char *volume_name; /* that volume's name, or NULL */
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
    imt_container_info container; /* a member's place; a container's expansion */
    const imt_carve_hit *carved; /* a carved item (imgtriage carve): where in
                                  path's bytes it lies, its format by structure
                                  and how it ended; NULL for a file */
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
 *  skipped = 1 (used to resume a scan). The value is the number of records
 *  claimed: 1, or 1 + N for a container whose N member records the caller
 *  holds too (seq then moves on by 1 + N). */
typedef int (*imt_scan_skip_fn)(void *ctx, const char *path, imt_entry_type type);

/** Optional: called after every batch of records, from the calling thread. */
typedef void (*imt_scan_progress_fn)(void *ctx, const imt_scan_progress *p);

/** Limits of container expansion (README "Containers"). Each one that trips
 *  is reported on the container's record (imt_container_info.limits). */
typedef struct imt_container_opts {
    int enabled;               /* expand containers (default 1) */
    uint32_t max_depth;        /* nesting levels expanded (default 8) */
    uint64_t max_members;      /* member records per walked file (default 100000) */
    uint64_t max_total_bytes;  /* member bytes read per walked file, all depths
                                  (default 16 GiB) */
    uint32_t max_ratio;        /* a container whose members hold more than this
                                  times its own size (and over 64 MiB) stops
                                  (default 200) */
    uint64_t max_buffer;       /* a nested container is held in memory to be
                                  expanded, a PDF is read whole: at most this
                                  many bytes (default 64 MiB) */
    uint64_t max_held_bytes;   /* member records held per scan until their batch
                                  is emitted; a container that would hold more
                                  is expanded again when emitted (default 64 MiB) */
} imt_container_opts;

typedef struct imt_scan_opts {
    int threads;               /* workers; 0 = all cores, 1 = serial (default 0) */
    imt_hash_opts hash;        /* defaults: imt_hash_opts_init, with dihedral = 1
                                  and digests = MD5|SHA1 */
    int one_file_system;       /* do not enter other file systems (default 0) */
    int pdq_distance;          /* PDQ match radius (default IMT_PDQ_MATCH_DISTANCE) */
    int min_quality;           /* lower PDQ quality is not matched (default
                                  IMT_PDQ_MIN_QUALITY) */
    imt_vpdq_opts vpdq;        /* videos: matching against known videos
                                  (imt_vpdq_opts_init's defaults); a frame
                                  below min_quality is not matched with known
                                  pictures either */
    size_t max_matches;        /* matches kept per file (default 100); over
                                  it the gravest are kept (alerts by their
                                  category's severity, then informational,
                                  then known-good), never an alert dropped
                                  for a lesser match; the rest are counted
                                  in matches_omitted */
    size_t batch_files;        /* files hashed per batch (default 256) */
    const volatile int *stop;  /* when non-NULL and *stop becomes non-zero (a
                                  signal handler may set it), the scan stops
                                  within a 256 KiB chunk of each file in
                                  progress (hash.stop defaults to it); the records
                                  emitted are a prefix of a full scan's */
    imt_scan_skip_fn skip;     /* optional, see above */
    imt_scan_progress_fn progress; /* optional, see above */
    void *ctx;                 /* passed to skip and progress */
    imt_container_opts containers; /* see above */
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

/** Matching one item that the caller hashed itself (imgtriage carve's
 *  carved items) exactly as imt_scan_run matches a file: digests first (a
 *  known-good item gets no PDQ search), then the PDQ hash unless its quality
 *  is below opts->min_quality, a video's known videos and frames, each
 *  embedded picture; one match per membership, at most opts->max_matches
 *  kept (the gravest). Only opts' matching fields are used (pdq_distance,
 *  min_quality, vpdq, max_matches); NULL: the defaults. idx NULL: nothing
 *  matches. One thread at a time; close before the index. */
typedef struct imt_matcher imt_matcher;
IMT_API imt_err imt_matcher_open(imt_matcher **out, imt_index *idx, const imt_scan_opts *opts);
/** Fill rec's known_good, pdq_low_quality, matches, n_matches and
 *  matches_omitted for hash result r (borrowed from the matcher until its
 *  next call); an index error is returned with no matches. */
IMT_API imt_err imt_matcher_match(imt_matcher *m, const imt_hash_result *r, imt_scan_record *rec);
IMT_API void imt_matcher_close(imt_matcher *m);

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

/** An imt_scan_skip_fn: pass it with the report as ctx. A container's old
 *  record is claimed only with all its member records (1 + N returned). */
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

/* ---- the backlog: a queue of devices ranked by preview (engine/backlog) --
 * A SQLite database on local disk: one row per device and an append-only
 * log of every state change. Several processes may share it (WAL, busy
 * timeout): a device is claimed in one transaction with a lease, renewed
 * while it is worked on; a device whose lease expired is claimable again.
 * The library runs no scans: the caller runs them (as child processes) and
 * hands back their reports. An imt_backlog handle is used by one thread. */
typedef struct imt_backlog imt_backlog;

typedef enum imt_bl_state {
    IMT_BL_QUEUED = 0,         /* waiting for its preview */
    IMT_BL_PREVIEWING = 1,     /* a worker holds it for its preview */
    IMT_BL_PREVIEWED = 2,      /* preview done: waiting for its full scan */
    IMT_BL_SCANNING = 3,       /* a worker holds it for its full scan */
    IMT_BL_DONE = 4,           /* the full scan completed */
    IMT_BL_FAILED = 5,         /* the full scan could not complete (see error) */
    IMT_BL__COUNT
} imt_bl_state;

typedef enum imt_bl_phase { IMT_BL_PREVIEW = 0, IMT_BL_SCAN = 1 } imt_bl_phase;

/** What a report's summary says (a preview's or a full scan's). */
typedef struct imt_bl_result {
    int have;                  /* a summary was read */
    int complete;
    int64_t files, hit_files, hit_items, known_items;
    double priority;
    char *preview;             /* the summary's "preview" object (JSON), or NULL */
    char *reason;              /* its "incomplete_reason", or NULL */
} imt_bl_result;

/** One device row (strings owned by the row; imt_bl_devices_free). */
typedef struct imt_bl_device {
    int64_t id;
    char *case_id, *device, *received, *added;
    char **sources;
    size_t n_sources;
    imt_bl_state state;
    imt_bl_result preview, scan;
    char *preview_report, *report; /* set when first claimed */
    char *worker, *error;
    int64_t lease_until_ms;    /* Unix ms; 0 when not held */
    int attempts;              /* runs that ended without a summary */
    int group;                 /* rank group: 0 known material, 1 unpreviewed, 2 clean */
} imt_bl_device;

IMT_API const char *imt_bl_state_name(imt_bl_state s);

/** Open (create: make it, with its tables, if it does not exist) the
 *  backlog database at path. Refused on a network file system (NFS, CIFS,
 *  FUSE: SQLite's locking is not safe there). On a failure *out (unless
 *  NULL for want of memory) holds a handle carrying only the reason, for
 *  imt_backlog_error; close it with imt_backlog_close. */
IMT_API imt_err imt_backlog_open(imt_backlog **out, const char *path, int create);
IMT_API void imt_backlog_close(imt_backlog *bl);
/** A sentence on the last failure (never NULL). */
IMT_API const char *imt_backlog_error(const imt_backlog *bl);

/** Add a device (state queued; logged as by who). received: an ISO 8601
 *  date or time, or NULL for now. IMT_E_EXISTS when the case already holds
 *  a device of that name. *id_out (may be NULL) gets its id. */
IMT_API imt_err imt_backlog_add(imt_backlog *bl, const char *who, const char *case_id,
                                const char *device, const char *received,
                                const char *const *sources, size_t n_sources, int64_t *id_out);

/** Every device, ranked (README, "Backlog"): devices with known material
 *  first by priority, then those not yet previewed by waiting time, then
 *  the previewed-clean ones by waiting time. */
IMT_API imt_err imt_backlog_devices(imt_backlog *bl, imt_bl_device **out, size_t *n);
/** One device by id ("3" or "#3") or by name (case_id may be NULL when the
 *  name is unique). IMT_E_NOT_FOUND, or IMT_E_DUPLICATE when ambiguous. */
IMT_API imt_err imt_backlog_find(imt_backlog *bl, const char *case_id, const char *name,
                                 imt_bl_device *out);
IMT_API void imt_bl_device_clear(imt_bl_device *d);
IMT_API void imt_bl_devices_free(imt_bl_device *v, size_t n);

/** Claim the next piece of work for who, with a lease of lease_ms: a
 *  preview (queued devices, by waiting time) while any device waits for
 *  one; once none does and no preview is in progress, a full scan in rank
 *  order. A device held by a worker whose lease has expired is claimed
 *  again (and logged so). Report paths are set under reports_dir on first
 *  claim and kept. *got = 1 with *out filled, or 0; *pending gets the
 *  devices not yet done or failed (0: nothing left for anyone). */
IMT_API imt_err imt_backlog_claim(imt_backlog *bl, const char *who, int64_t lease_ms,
                                  const char *reports_dir, imt_bl_device *out,
                                  imt_bl_phase *phase, int *got, int64_t *pending);
/** Extend who's lease on device id. IMT_E_NOT_FOUND when who no longer
 *  holds it (expired and claimed by another): stop working on it. */
IMT_API imt_err imt_backlog_renew(imt_backlog *bl, int64_t id, const char *who,
                                  int64_t lease_ms);
/** Give device id back unworked (interrupted): its state before the claim. */
IMT_API imt_err imt_backlog_release(imt_backlog *bl, int64_t id, const char *who,
                                    const char *why);
/** The work on device id ended: read the summary of its report for phase.
 *  Preview: previewed. Full scan: done if complete, else failed with the
 *  summary's reason. No summary (the scan crashed): attempts + 1 and back
 *  to the queue, failed after 3. With holder set, only while holder holds
 *  the lease (IMT_E_NOT_FOUND otherwise); NULL (ingesting results of a
 *  batch system: backlog sync) in any state but done. note: logged. */
IMT_API imt_err imt_backlog_finish(imt_backlog *bl, int64_t id, const char *who,
                                   const char *holder, imt_bl_phase phase,
                                   const char *report, const char *note);

/** Counts by state and the hits so far (files with hits, from each
 *  device's latest result). */
IMT_API imt_err imt_backlog_counts(imt_backlog *bl, int64_t counts[IMT_BL__COUNT],
                                   int64_t *hit_files);

/** The log (every state change, in order; device id 0: all devices) to f
 *  as lines "TIME WHO DEVICE FROM -> TO: WHAT" (text), or JSON lines. */
IMT_API imt_err imt_backlog_log_write(imt_backlog *bl, int64_t id, FILE *f, int json);
/** Log a note on device id (0: the whole backlog) without a change of
 *  state (e.g. "submitted to Slurm as job 12"). */
IMT_API imt_err imt_backlog_note(imt_backlog *bl, const char *who, int64_t id, const char *what);
/** A setting kept in the backlog (e.g. the Slurm shared folder): set
 *  (value NULL removes it) and get (*out NULL when unset; imt_backlog_free_string). */
IMT_API imt_err imt_backlog_set(imt_backlog *bl, const char *key, const char *value);
IMT_API imt_err imt_backlog_get(imt_backlog *bl, const char *key, char **out);
IMT_API void imt_backlog_free_string(char *s);
/** Without a database: the summary of the JSONL report at path (r->have 0
 *  when it has none, e.g. a scan killed mid-way; clear with
 *  imt_bl_result_clear), and the ranking of v[0..n) in place (each
 *  device's group set), as imt_backlog_devices ranks: for batch tasks that
 *  work from report files on shared storage. */
IMT_API imt_err imt_bl_read_summary(const char *path, imt_bl_result *r);
IMT_API void imt_bl_result_clear(imt_bl_result *r);
IMT_API void imt_bl_rank(imt_bl_device *v, size_t n);
/** The ranked devices to f: format "json" (one JSON array), "jsonl", or
 *  "csv" (a header row; strings escaped as in scan reports). */
IMT_API imt_err imt_backlog_export(imt_backlog *bl, FILE *f, const char *format);

/* ------------------------------------------------------------------------
 * Preview (engine/triage): a time-boxed scan that reads likely places
 * first and states what it did not read. The evidence is enumerated first
 * (metadata only, the same walk as imt_scan_run); every regular file gets a
 * class from its path (imt_triage_classify); classes are read in the order
 * of imt_triage_class, and within a class in a seeded random order (a
 * keyed hash of the path), so the files read of a class are a simple random
 * sample of it. Each file's record is the record a full scan gives it (its
 * seq is its walk position); records come in read order, entries that are
 * not regular files (links, special files, unreadable folders) first.
 * ---------------------------------------------------------------------- */

/** Likelihood classes, read in the order imt_triage_class_at gives.
 *  "media": pictures and videos by file-name extension; "user": under a
 *  user-content folder (DCIM, Pictures, Downloads, Desktop, Documents,
 *  messaging-app media, browser and thumbnail caches, recycle bins);
 *  "system": under a system or program folder and no user-content folder;
 *  "deleted": a deleted or orphan file of a disk image's file system
 *  (whatever its folder). Values are fixed once released. */
typedef enum imt_triage_class {
    IMT_CLASS_USER_MEDIA = 0,
    IMT_CLASS_MEDIA = 1,
    IMT_CLASS_USER_OTHER = 2,
    IMT_CLASS_SYSTEM_MEDIA = 3,
    IMT_CLASS_OTHER = 4,
    IMT_CLASS_SYSTEM_OTHER = 5,
    IMT_CLASS_DELETED_MEDIA = 6,
    IMT_CLASS_DELETED_OTHER = 7,
    IMT_CLASS__COUNT
} imt_triage_class;

/** "user-media", "media", "user-other", "system-media", "other",
 *  "system-other", "deleted-media", "deleted-other". Never NULL. */
IMT_API const char *imt_triage_class_name(imt_triage_class c);

/** The class read i-th (0 <= i < IMT_CLASS__COUNT): user-media,
 *  deleted-media, media, user-other, deleted-other, system-media, other,
 *  system-other. Out of range: IMT_CLASS__COUNT. */
IMT_API imt_triage_class imt_triage_class_at(int i);

/** The class of a file from its path alone (no I/O). */
IMT_API imt_triage_class imt_triage_classify(const char *path);

/** The class of a file of a disk image: deleted-media or deleted-other when
 *  alloc is deleted or orphan, else imt_triage_classify of its path inside
 *  the image (fs_path: the part after the image's path, "!pN/...", so the
 *  folders holding the image file do not count). */
IMT_API imt_triage_class imt_triage_classify_image(const char *fs_path,
                                                   imt_alloc_status alloc);

/** The exact one-sided upper confidence bound on K, the number of files
 *  with known material among N, when x of a simple random sample of n of
 *  them (without replacement) have it: the largest K with
 *  P(X <= x | N, K, n) > 1 - confidence (hypergeometric). With x = 0 and
 *  n << N it is close to the rule of three, 3N/n at 95%. n = N gives x;
 *  n = 0 gives N. IMT_E_INVALID when x > n, n > N or confidence is not in
 *  (0, 1). */
IMT_API imt_err imt_triage_bound(uint64_t N, uint64_t n, uint64_t x, double confidence,
                                 uint64_t *upper);

/** Per class: what was listed, what was read, and the estimate. */
typedef struct imt_preview_class_stats {
    uint64_t enumerated;       /* regular files listed in the class */
    uint64_t enumerated_bytes;
    uint64_t examined;         /* of them, read: their record has the result */
    uint64_t examined_bytes;
    uint64_t pictures;         /* of the examined, with a PDQ hash */
    uint64_t hit_files;        /* of the examined, with an alerting match */
    double estimate;           /* hit_files * enumerated / examined (0 if none read) */
    uint64_t upper95;          /* imt_triage_bound(enumerated, examined, hit_files, 0.95) */
} imt_preview_class_stats;

/** Why a preview stopped. */
typedef enum imt_preview_stop {
    IMT_PREVIEW_COMPLETE = 0,  /* every listed file was read */
    IMT_PREVIEW_BUDGET = 1,    /* the time budget ran out */
    IMT_PREVIEW_HITS = 2,      /* stop_after_hits files with hits were found */
    IMT_PREVIEW_INTERRUPTED = 3/* stopped by *stop or the record callback */
} imt_preview_stop;

/** "complete", "budget", "hits", "interrupted". Never NULL. */
IMT_API const char *imt_preview_stop_name(imt_preview_stop s);

typedef struct imt_preview_stats {
    imt_preview_stop stopped_by;
    int enumeration_complete;  /* the listing ended before the budget */
    uint64_t budget_ms;        /* 0: none */
    uint64_t stop_after_hits;  /* 0: none */
    uint64_t seed;
    uint64_t enumerated_files, examined_files, examined_pictures, hit_files;
    uint64_t files_before_first_hit; /* files read before the first file with a
                                  hit (valid when have_first_hit) */
    int have_first_hit;
    uint64_t enumerate_ms, first_hit_ms, elapsed_ms;
    double estimate;           /* sum of the classes' estimates */
    uint64_t upper95;          /* files with known material on the device, at
                                  most, at 95% confidence jointly: the classes
                                  read in part each at 1 - 0.05/k (Bonferroni
                                  over those k classes), plus the hits of the
                                  classes read whole */
    uint64_t disk_images;      /* PATHs listed through their file systems */
    uint64_t uncarved_areas;   /* what a full scan of those carves and the
                                  preview does not look at: each file
                                  system's unallocated blocks (one area each,
                                  size not measured: that takes a pass over
                                  its allocation map) and each region outside
                                  file systems (volume-system gaps, partitions
                                  with no file system recognised) */
    uint64_t uncarved_bytes;   /* the bytes of those regions outside file
                                  systems */
    imt_preview_class_stats cls[IMT_CLASS__COUNT];
} imt_preview_stats;

typedef struct imt_triage_opts {
    uint64_t budget_ms;        /* stop when this much time has passed since the
                                  start (listing included); 0: no budget */
    uint64_t stop_after_hits;  /* stop after this many files with hits; 0: no */
    uint64_t seed;             /* the order within a class (default 1: a rerun
                                  reads in the same order) */
    size_t memory_bytes;       /* listing held in memory before it spills to
                                  unnamed temporary files (default 64 MiB) */
    const char *tmpdir;        /* for those files; NULL: $TMPDIR, else /tmp.
                                  Refused (IMT_E_INVALID) inside a PATH */
    size_t chunk_files;        /* files per read batch (default 256) */
} imt_triage_opts;

IMT_API void imt_triage_opts_init(imt_triage_opts *opts);

/** Run a preview of paths (as imt_scan_run; scan->skip is not supported and
 *  must be NULL). on_record receives every record, in read order; stats
 *  (required) gets the counts and bounds, also when the preview stopped
 *  early. Returns IMT_OK when it ran to its end, the budget or the hit
 *  limit (stats->stopped_by says which), IMT_E_INTERRUPTED when stopped by
 *  *scan->stop or on_record, or the error that prevented it. */
IMT_API imt_err imt_triage_run(imt_index *idx, const char *const *paths, size_t n_paths,
                               const imt_scan_opts *scan, const imt_triage_opts *topts,
                               imt_scan_record_fn on_record, void *ctx,
                               imt_preview_stats *stats, char *detail, size_t cap);

/* ------------------------------------------------------------------------
 * Block hashes of known files (engine/index/blocks.c) and block sampling of
 * a raw disk image (engine/triage/sample.c): Garfinkel and McCarrin's
 * method (DFRWS 2015). Known files are cut into 4 KiB blocks at their start;
 * blocks that cannot tell one file from another (non-probative) are
 * dropped; the rest are stored in the index's "blocks" sub-database (a key
 * of 8 bytes of each block's MD5). A sample reads random places of an image
 * and looks up the 4 KiB at each 512-byte alignment a file could start on.
 * ---------------------------------------------------------------------- */
#define IMT_BLOCK_SIZE 4096

/** Why a block is not stored (IMT_BLOCK_PROBATIVE: it is). Values fixed. */
typedef enum imt_block_verdict {
    IMT_BLOCK_PROBATIVE = 0,
    IMT_BLOCK_FEW_VALUES = 1,   /* fewer than 16 distinct byte values (zeros,
                                   fill, whitespace) */
    IMT_BLOCK_RAMP = 2,         /* 16-, 32- or 64-bit words rising or falling by
                                   a constant step (tables, counters) */
    IMT_BLOCK_LOW_ENTROPY = 3,  /* byte entropy below 5 bits per byte */
    IMT_BLOCK_REPEATING = 4,    /* fewer than 64 distinct 32-bit words */
    IMT_BLOCK_SHARED = 5,       /* in more than one known file (at commit) */
    IMT_BLOCK__COUNT
} imt_block_verdict;

/** "probative", "few-values", "ramp", "low-entropy", "repeating", "shared". */
IMT_API const char *imt_block_verdict_name(imt_block_verdict v);

/** The verdict on one 4 KiB block by its content alone (not SHARED). */
IMT_API imt_block_verdict imt_block_classify(const uint8_t *block);

/** The lookup key of a 4 KiB block: the first 8 bytes of its MD5, big-endian. */
IMT_API uint64_t imt_block_key(const uint8_t *block);

/** Known files' blocks gathered in memory (16 bytes per kept block), then
 *  written to an index at once (the shared ones dropped). */
typedef struct imt_blockset imt_blockset;

typedef struct imt_blockset_stats {
    uint64_t files;             /* files added */
    uint64_t blocks;            /* their whole 4 KiB blocks (a tail shorter than
                                   4 KiB is not a block: slack follows it) */
    uint64_t dropped[IMT_BLOCK__COUNT]; /* by verdict; [PROBATIVE] unused */
    uint64_t repeats;           /* blocks repeating one kept already (in the same
                                   file, or in a copy of it: the same MD5) */
    uint64_t stored;            /* blocks written to the index */
    uint64_t db_bytes;          /* pages of the "blocks" sub-database */
    double bytes_per_block;     /* db_bytes / its records (blocks and files) */
} imt_blockset_stats;

IMT_API imt_err imt_blockset_create(imt_blockset **out);
IMT_API void imt_blockset_free(imt_blockset *bs);

/** Add known file file_id (name, digests and size for the report; read from
 *  fd, which stays open, from offset 0 to size). IMT_E_IO when it cannot be
 *  read. */
IMT_API imt_err imt_blockset_add_fd(imt_blockset *bs, uint32_t file_id, const char *name,
                                    int fd, uint64_t size, const uint8_t md5[16],
                                    const uint8_t sha1[20]);

/** Write the blockset into idx (opened for writing, no cursor open) under
 *  list_id: blocks in more than one file dropped, the rest stored with their
 *  file's record. One LMDB transaction. stats may be NULL. */
IMT_API imt_err imt_index_add_blocks(imt_index *idx, imt_blockset *bs, uint32_t list_id,
                                     imt_blockset_stats *stats);

/** A stored block's place. */
typedef struct imt_block_hit {
    uint32_t list_id, file_id, block; /* block: its index in the file */
} imt_block_hit;

/** A known file of the blocks sub-database. name is borrowed (valid until
 *  the next call on the reader). */
typedef struct imt_block_file {
    uint32_t list_id, file_id;
    uint64_t size;
    uint8_t md5[16], sha1[20];
    uint32_t blocks, stored;    /* whole blocks; of them stored (probative) */
    const char *name;
} imt_block_file;

/** Reads the blocks sub-database (its own read transaction; close it before
 *  the index). IMT_E_NOT_FOUND when the index holds no block hashes. */
typedef struct imt_block_reader imt_block_reader;
IMT_API imt_err imt_block_reader_open(imt_block_reader **out, imt_index *idx);
IMT_API void imt_block_reader_close(imt_block_reader *r);
/** *found = 1 and *hit filled when key is stored. */
IMT_API imt_err imt_block_lookup(imt_block_reader *r, uint64_t key, imt_block_hit *hit,
                                 int *found);
IMT_API imt_err imt_block_file_get(imt_block_reader *r, uint32_t list_id, uint32_t file_id,
                                   imt_block_file *out);
/** Files and stored blocks in the sub-database. */
IMT_API imt_err imt_block_reader_counts(imt_block_reader *r, uint64_t *files, uint64_t *blocks);

/** P(at least one of n positions drawn without replacement from P holds one
 *  of M marked ones) = 1 - C(P - M, n) / C(P, n): the chance that n samples
 *  of an image with P sample positions find a collection whose stored blocks
 *  cover M of them. */
IMT_API double imt_sample_detect_probability(uint64_t P, uint64_t M, uint64_t n);

typedef struct imt_sample_opts {
    uint64_t samples;           /* positions to read (required) */
    uint64_t seed;              /* default 1 */
    uint64_t budget_ms;         /* 0: none; else stop after the round that runs
                                   past it: the positions are dealt at random
                                   into rounds (each read in offset order), so
                                   the rounds read are a random sample too */
    const volatile int *stop;   /* optional, as in imt_scan_opts */
} imt_sample_opts;
IMT_API void imt_sample_opts_init(imt_sample_opts *o);

/** One sampled block found in the index: where, and which known block. */
typedef struct imt_sample_hit {
    uint64_t offset;            /* in the image, of the 4 KiB block */
    imt_block_hit at;
} imt_sample_hit;

typedef struct imt_sample_result {
    uint64_t image_size;
    uint64_t positions;         /* P: 4 KiB-aligned sample positions */
    uint64_t samples;           /* positions read (whole rounds) */
    int budget_hit;             /* stopped by budget_ms before all were read */
    uint64_t lookups;           /* blocks looked up (8 per position, fewer at the end) */
    uint64_t bytes_read;
    uint64_t elapsed_ms;
    imt_sample_hit *hits;       /* in offset order; owned by the result */
    size_t n_hits;
} imt_sample_result;

/** Sample the raw image at path (a file or block device, only read): n
 *  distinct positions p = 4096 k drawn at random (seeded), read in offset
 *  order; at each, the 4 KiB blocks starting at p, p + 512, ..., p + 3584
 *  are looked up, so a known file starting on any 512-byte boundary has
 *  each of its stored blocks found by exactly one position. Free the result
 *  with imt_sample_result_free. detail gets a sentence on failure. */
IMT_API imt_err imt_sample_image(imt_index *idx, const char *path, const imt_sample_opts *o,
                                 imt_sample_result *res, char *detail, size_t cap);
IMT_API void imt_sample_result_free(imt_sample_result *res);

/** Is the whole known file (size bytes, md5) at offset start of the image
 *  at path? *match = 1 when the MD5 of those bytes equals md5 (a contiguous
 *  file found by a block hit, confirmed). IMT_E_IO when unreadable. */
IMT_API imt_err imt_sample_confirm(const char *path, uint64_t start, uint64_t size,
                                   const uint8_t md5[16], int *match);

/** A file of a disk image's file system whose bytes hold a sampled block
 *  (imt_sample_locate). Strings are borrowed during the callback. */
typedef struct imt_sample_located {
    size_t hit;                 /* index into the offsets given */
    const char *path;           /* "IMAGE!pN/path", as a full scan names it */
    imt_alloc_status alloc;     /* allocated, deleted or orphan */
    uint64_t size;
    uint64_t file_offset;       /* where in the file the block's first byte is */
    int read_ok;                /* its content was read whole: md5 is set */
    uint8_t md5[16];
} imt_sample_located;
typedef int (*imt_sample_located_fn)(void *ctx, const imt_sample_located *l);

/** Locate sampled blocks through the file systems of the disk image at path
 *  (only read): every file the source's enumeration lists (allocated,
 *  deleted, orphan; no carving) whose byte runs hold one of offsets[0..n)
 *  (image offsets of blocks' first bytes) is read whole through its file
 *  system and its MD5 computed; cb gets one call per (file, offset), in the
 *  image's order (a non-zero return stops: IMT_E_INTERRUPTED). A file is
 *  read at most once. Fragmented files are found wherever their fragments
 *  lie; an offset in runs past the IMT_MAX_BYTE_RUNS a record keeps is not.
 *  IMT_E_UNSUPPORTED when path is not a disk image; stop as in
 *  imt_scan_opts. */
IMT_API imt_err imt_sample_locate(const char *path, const uint64_t *offsets, size_t n,
                                  imt_sample_located_fn cb, void *ctx,
                                  const volatile int *stop, char *detail, size_t cap);

/** Mark r as the report of a preview: before imt_report_begin (the header
 *  then holds "preview" with the settings) and again, with the final stats,
 *  before imt_report_end (the summary then holds "preview" with the counts
 *  and bounds per class, and the priority says it is a preview). st is
 *  copied. */
IMT_API imt_err imt_report_preview(imt_report *r, const imt_preview_stats *st);

#ifdef __cplusplus
}
#endif
#endif /* IMGTRIAGE_H */
