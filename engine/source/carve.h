/* engine/source/carve.h -- internal: where bytes come from. This module is
 * below scan: a source hands the pipeline readers (imt__io, imt_stream)
 * over the bytes of an item, whatever holds them.
 *
 * Files of the module, leaves first:
 *   carve.c   the carver: pictures found by signature and structure in a
 *             byte range (unallocated space, unpartitioned space, a memory
 *             dump), and slices of a range as items of their own.
 *
 * The carver reads the range front to back in large chunks into one buffer
 * of chunk + IMT__CARVE_LOOKAHEAD bytes (memory is constant in the chunk
 * size). Each candidate signature is walked through its format's structure:
 *   JPEG  SOI + a marker segment, the segments (jumped over by their length:
 *         an EXIF thumbnail's SOI/EOI inside APP1 is never seen), then the
 *         entropy-coded data (stuffed 0xFF00, RST markers and fill bytes
 *         skipped) up to the next marker, progressive scans included, to EOI;
 *   PNG   the signature, IHDR first, every chunk's length (< 2^31) and CRC,
 *         to IEND;
 *   GIF   header, logical screen, colour tables, extension and image blocks
 *         with their sub-blocks, to the trailer;
 *   WebP  RIFF size, WEBP, a VP8/VP8L/VP8X first chunk, the chunk list;
 *   BMP   the file and info headers (sizes, planes, depth, compression);
 *         the length from bfSize, or from the rows when bfSize is short.
 * A candidate whose structure is wrong before it is "committed" (JPEG: its
 * first scan; PNG: a good IHDR; GIF: its first image; WebP: its first chunk;
 * BMP: its headers) is rejected and the scan goes on one byte after its
 * signature. The uncommitted walk looks at most IMT__CARVE_EXAMINE bytes and
 * IMT__CARVE_LOOKAHEAD ahead of its start (past either it commits: no random
 * bytes get that far), so a rejected candidate costs a bounded amount of
 * work whatever follows it. A committed candidate is a hit: complete when
 * its end marker (EOI, IEND, trailer, RIFF size) is reached; truncated when
 * it runs off the range, past the maximum carve length, or into a bad
 * structure (then it ends where the bad structure begins). After a hit the
 * scan goes on after its end, so every byte is looked at a bounded number
 * of times: linear work, counted in imt_carve_stats. One exception goes
 * back: a PNG chunk with a wrong CRC ends its item before the chunk (so
 * that a picture written over the rest is found), though its CRC read the
 * whole chunk; the scan may go back over such chunks for at most the
 * range's size in all (past that an item ends after its bad chunk), so
 * bytes are examined at most about three times and read at most twice.
 *
 * Results depend only on the bytes and imt_carve_opts.max_length and
 * formats: not on the chunk size or on how the io splits its reads. */
#ifndef IMT_SOURCE_CARVE_H
#define IMT_SOURCE_CARVE_H

#include "common/common.h"

/* How far ahead of its start an uncommitted candidate may look, and how
 * many bytes it may examine, before it commits. */
#define IMT__CARVE_LOOKAHEAD ((size_t)1 << 20)
#define IMT__CARVE_EXAMINE 1024u
/* The smallest chunk accepted (tests use tiny chunks to put a chunk
 * boundary at every offset of a planted picture). */
#define IMT__CARVE_MIN_CHUNK 16u

/* Carve range (offsets in hits are offsets in range), calling fn for every
 * hit in offset order; fn returns non-zero to stop (then IMT_E_INTERRUPTED).
 * Returns IMT_OK, IMT_E_INTERRUPTED (fn or *opts->stop), IMT_E_NOMEM, or
 * IMT_E_IO when a read of range failed (stats->bytes_scanned says how far
 * the carve got; the hits before it were reported). fn may read range
 * (hashing a hit): the carver holds its own copy of the bytes. */
imt_err imt__carve(const imt__io *range, const imt_carve_opts *opts, imt_carve_fn fn,
                   void *ctx, imt_carve_stats *stats);

/* A slice [off, off + len) of a range as an item of its own: an imt__io
 * (offsets from the slice's start) and a sequential imt_stream (for
 * imt_hash_stream; size = len), both reading through range. The slice
 * holds the state; it must outlive the io and stream made from it, and
 * range must outlive the slice. Reads past the range's end give the bytes
 * there are (a stream with size set then ends early: partial). */
typedef struct imt__slice {
    const imt__io *range;
    uint64_t off, len, pos;
} imt__slice;

void imt__slice_init(imt__slice *s, const imt__io *range, uint64_t off, uint64_t len);
void imt__carve_io(imt__slice *s, imt__io *out);
void imt__carve_stream(imt__slice *s, imt_stream *out);

/* An imt__io over bytes in memory (not copied), for tests and fuzzing. */
typedef struct imt__memio {
    const uint8_t *p;
    size_t len;
} imt__memio;
void imt__memio_init(imt__memio *m, const void *p, size_t len, imt__io *out);

#endif
