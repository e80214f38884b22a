/* engine/decode/decode.h -- bytes -> luma plane ready for the PDQ stage.
 *
 * Decoders pull file bytes from an imt_reader (so that the caller can
 * digest every byte in the same read pass), check every limit before they
 * allocate, and never call exit(): libjpeg and libpng errors come back via
 * setjmp/longjmp as IMT_E_CORRUPT or IMT_E_TRUNCATED with a detail sentence.
 */
#ifndef IMT_DECODE_H
#define IMT_DECODE_H

#include "common/common.h"

/* A pull source of file bytes. pull() sets data and len to the next chunk,
 * *len == 0 at end of file; the chunk stays valid until the next pull.
 * Errors (IMT_E_IO, IMT_E_TIMEOUT, IMT_E_INTERRUPTED) end decoding. */
typedef struct imt_reader {
    imt_err (*pull)(void *ctx, const uint8_t **data, size_t *len);
    void *ctx;
} imt_reader;

typedef struct imt_decode_limits {
    uint64_t max_pixels;     /* width*height above this: IMT_E_TOO_LARGE */
    uint32_t max_dimension;  /* either side above this: IMT_E_TOO_LARGE */
    uint64_t deadline_ms;    /* imt__now_ms() past this: IMT_E_TIMEOUT; 0 = none */
} imt_decode_limits;

/* The decoder's output. */
typedef struct imt_luma {
    float *pix;              /* rows*cols floats, row-major, owned by the decoder,
                                valid until the next decode; the PDQ stage may
                                overwrite it (it is the reference's buffer 1) */
    int rows, cols;
    uint32_t width, height;  /* the image as stored (set once the header is read,
                                also when decoding fails later) */
    int partial;             /* data ended early or had recoverable errors, but
                                an image came out (the reference hashes such
                                files too); detail says why */
} imt_luma;

typedef struct imt_decoder imt_decoder;

imt_err imt__decoder_create(imt_decoder **out);
void imt__decoder_free(imt_decoder *d);

/* Decode an image of format fmt from r into out.
 *
 * mode IMT_PDQ_COMPAT: out->pix is exactly the reference's float luma: the
 *   full decode (libjpeg islow IDCT, fancy upsampling; PNG 8-bit samples,
 *   alpha ignored), a nearest-neighbour resize to 512x512 when a side is over
 *   512 (source index floor(i*src/512) on each axis, as CImg), then
 *   0.299R+0.587G+0.114B in float (grey: the value itself).
 * mode IMT_PDQ_FAST: a luma plane of whatever size the decoder chose (about
 *   the least resolution the hash needs), as cheaply as possible.
 * Memory stays O(width) for both: rows are streamed, never the whole image,
 * except libjpeg's whole-image coefficient buffer for progressive JPEGs,
 * capped per file (jpeg.c IMT_JPEG_MEM_CAP; over it: IMT_E_TOO_LARGE).
 * On error, detail[cap] gets the reason ("libjpeg: Premature end of JPEG
 * file", "PNG claims 100000x100000 pixels, over --max-pixels 1073741824"). */
imt_err imt__decode_luma(imt_decoder *d, imt_format fmt, const imt_reader *r,
                         imt_pdq_mode mode, const imt_decode_limits *lim,
                         imt_luma *out, char *detail, size_t cap);

/* Per-format entry points behind imt__decode_luma; same contract. Each keeps
 * its state (and reusable buffers) in the decoder's slot for it. */
typedef struct imt_jpeg_state imt_jpeg_state;
typedef struct imt_png_state imt_png_state;
imt_err imt__jpeg_decode(imt_jpeg_state **st, const imt_reader *r, imt_pdq_mode mode,
                         const imt_decode_limits *lim, imt_luma *out,
                         char *detail, size_t cap);
void imt__jpeg_state_free(imt_jpeg_state *st);
imt_err imt__png_decode(imt_png_state **st, const imt_reader *r, imt_pdq_mode mode,
                        const imt_decode_limits *lim, imt_luma *out,
                        char *detail, size_t cap);
void imt__png_state_free(imt_png_state *st);
typedef struct imt_bmp_state imt_bmp_state;
imt_err imt__bmp_decode(imt_bmp_state **st, const imt_reader *r, imt_pdq_mode mode,
                        const imt_decode_limits *lim, imt_luma *out,
                        char *detail, size_t cap);
void imt__bmp_state_free(imt_bmp_state *st);
typedef struct imt_tiff_state imt_tiff_state;
imt_err imt__tiff_decode(imt_tiff_state **st, const imt_reader *r, imt_pdq_mode mode,
                         const imt_decode_limits *lim, imt_luma *out,
                         char *detail, size_t cap);
void imt__tiff_state_free(imt_tiff_state *st);
/* The pages after the first of the file the last imt__tiff_decode read, in
 * order, each decoded as the first: fn gets the page (1 = the second), the
 * number of pages, the status, the plane (valid during the call) and the
 * reason; it returns 0 to stop. IMT_E_INVALID when no file is kept. */
typedef int (*imt_page_fn)(void *ctx, int page, int pages, imt_err st, const imt_luma *luma,
                           char *detail);
imt_err imt__tiff_pages(imt_tiff_state *st, const imt_decode_limits *lim, imt_page_fn fn,
                        void *ctx);
typedef struct imt_webp_state imt_webp_state;
imt_err imt__webp_decode(imt_webp_state **st, const imt_reader *r, imt_pdq_mode mode,
                         const imt_decode_limits *lim, imt_luma *out,
                         char *detail, size_t cap);
void imt__webp_state_free(imt_webp_state *st);
typedef struct imt_gif_state imt_gif_state;
imt_err imt__gif_decode(imt_gif_state **st, const imt_reader *r, imt_pdq_mode mode,
                        const imt_decode_limits *lim, imt_luma *out,
                        char *detail, size_t cap);
void imt__gif_state_free(imt_gif_state *st);
typedef struct imt_heif_state imt_heif_state; /* HEIF/HEIC and AVIF (heif.c) */
imt_err imt__heif_decode(imt_heif_state **st, const imt_reader *r, imt_pdq_mode mode,
                         const imt_decode_limits *lim, imt_luma *out,
                         char *detail, size_t cap);
void imt__heif_state_free(imt_heif_state *st);
/* thumbcache.c: the pictures of a Windows thumbcache_*.db as the file
 * streams past (one entry's data buffered at a time). fn gets each entry
 * with data: its bytes when status is IMT_OK (valid during the call), NULL
 * when it is too large for max_data, cut short by the end of the file, or
 * memory ran out. */
typedef struct imt_tc_entry {
    uint64_t hash;           /* the entry hash (ThumbnailCacheId) */
    uint64_t offset, size;   /* the data's bytes within the file */
    uint32_t index;          /* among the entries with data, from 0 */
    imt_err status;
} imt_tc_entry;
typedef void (*imt_tc_fn)(void *ctx, const imt_tc_entry *e, const uint8_t *data);
typedef struct imt_tcache imt_tcache;
imt_err imt__tc_create(imt_tcache **out);
void imt__tc_free(imt_tcache *t);
void imt__tc_begin(imt_tcache *t, size_t max_data, imt_tc_fn fn, void *ctx);
void imt__tc_feed(imt_tcache *t, const uint8_t *p, size_t n); /* the next bytes, in order */
void imt__tc_end(imt_tcache *t);                              /* the end of the file */
uint32_t imt__tc_version(const imt_tcache *t);
size_t imt__tc_entries(const imt_tcache *t);

/* thumbsdb.c: the thumbnails of a Windows Thumbs.db (an OLE2 compound file,
 * read whole from memory by its own OLE2 reader): fn gets each picture stream the
 * "Catalog" stream lists, its JPEG when status is IMT_OK (valid during the
 * call). Returns 1 when the file is a Thumbs.db (has a catalog), else 0;
 * why: what was wrong with it, if anything ("" when nothing). */
typedef struct imt_tdb_entry {
    uint64_t id;             /* the catalog id (the stream's name reversed) */
    uint64_t size;           /* the picture's bytes */
    uint32_t index;          /* among the catalog's entries, from 0 */
    imt_err status;
} imt_tdb_entry;
typedef void (*imt_tdb_fn)(void *ctx, const imt_tdb_entry *e, const uint8_t *data);
int imt__thumbsdb_read(const uint8_t *file, size_t len, size_t max_data, imt_tdb_fn fn,
                       void *ctx, char *why, size_t cap);

/* heif_hevc.c: the HEVC decoder heif.c gives libheif (by this id): libde265
 * with a check that every coding block was decoded. */
#define IMT__HEIF_HEVC_ID "imgtriage-libde265"
struct heif_decoder_plugin;
const struct heif_decoder_plugin *imt__heif_hevc_plugin(void);
/* The primary image's thumbnails in the file the last imt__heif_decode read
 * (whatever it returned); 0 when none or unreadable. */
int imt__heif_thumbnail_count(imt_heif_state *st);
/* Thumbnail index of that file as a luma plane, as imt__heif_decode gives
 * the primary (same contract; out->pix valid until the next decode). */
imt_err imt__heif_thumbnail_luma(imt_heif_state *st, int index, const imt_decode_limits *lim,
                                 imt_luma *out, char *detail, size_t cap);

/* Dispatch for the formats that keep thumbnails as items (HEIF/AVIF): the
 * count in the file the last imt__decode_luma of fmt read, and one as a
 * luma plane. 0 / IMT_E_UNSUPPORTED for other formats. */
int imt__decode_thumbnail_count(imt_decoder *d, imt_format fmt);
/* TIFF: the pages after the first of the last file decoded (imt__tiff_pages);
 * other formats have none (IMT_E_UNSUPPORTED, fn not called). */
imt_err imt__decode_pages(imt_decoder *d, imt_format fmt, const imt_decode_limits *lim,
                          imt_page_fn fn, void *ctx);
imt_err imt__decode_thumbnail(imt_decoder *d, imt_format fmt, int index,
                              const imt_decode_limits *lim, imt_luma *out, char *detail,
                              size_t cap);

/* ---- embedded pictures (embedded.c) ---- */
typedef struct imt_embedded_ref {
    imt_subitem_kind kind;
    uint32_t index;
    uint64_t offset, size;   /* within the file; size >= 4 */
} imt_embedded_ref;

/* The pictures a JPEG's leading marker segments point to (EXIF IFD1
 * thumbnail, MPF images after the first), from the file's first n bytes
 * p[0..n) (segments past n are not read). At most max; returns the count.
 * Ranges may lie beyond n (MPF images follow the main image) and beyond
 * the file: the caller checks what it can collect. */
size_t imt__jpeg_embedded(const uint8_t *p, size_t n, imt_embedded_ref *out, size_t max);

/* ---- leaf helpers the format decoders share (limits.c, resample.c,
 * buffer.c) ---- */
/* A scratch buffer of at least bytes: *p is replaced (its contents are not
 * kept) when *cap is smaller or *p is NULL. IMT_E_NOMEM past SIZE_MAX. */
imt_err imt__grow(void **p, size_t *cap, uint64_t bytes);
/* Every byte of r into *buf (grown from first bytes by doubling; *cap its
 * size), *n the count. IMT_E_TOO_LARGE past max bytes, IMT_E_NOMEM, or the
 * reader's error. */
imt_err imt__slurp(const imt_reader *r, uint8_t **buf, size_t *cap, uint64_t max,
                   size_t first, size_t *n);

/* The PDQ stage's least side (hash.h: IMT_E_TOO_SMALL below it); decode
 * does not include hash, so it is repeated here. */
#define IMT_DECODE_MIN_SIDE 5

/* Check a claimed size against the limits; fills detail. */
imt_err imt__check_dims(uint64_t w, uint64_t h, const imt_decode_limits *lim,
                        const char *what, char *detail, size_t cap);

/* The reference's nearest-neighbour map (CImg resize, interpolation 1):
 * map[i] = floor(i*src/dst) for i in [0, dst). */
void imt__nn_map(int src, int dst, int *map);

/* The compat-mode output size of one side: 512 when either side is over 512
 * (CImg resizes both axes to 512x512, aspect ignored), else the side. */
int imt__compat_side(uint32_t side, uint32_t w, uint32_t h);

/* Reference luma coefficients, as floats (0.299f etc.). */
extern const float imt__luma_r, imt__luma_g, imt__luma_b;

#endif
