/* engine/container/container.h -- expanding containers (archives,
 * compressed files, PDF images) into members, without extracting anything.
 *
 * The module sits below scan and above common and decode (sniffing): it
 * never hashes. It reads a container through an imt__io (a folder file, a
 * file in a disk image, a buffered member) and hands each member, in order,
 * to the caller's sink as a pull stream (imt_stream); the sink hashes and
 * keeps it. A member that is itself a container is held in memory while the
 * sink reads it (bounded: imt_container_opts.max_buffer for every buffer of
 * one walked file together) and expanded after it, depth first, so records
 * come out as container, its members, each nested container's members right
 * after it.
 *
 * Files, leaves first: pdf.c (a PDF's image streams, qpdf's C API), then
 * container.c (libarchive over the io; the limits; the recursion).
 */
#ifndef IMT_CONTAINER_H
#define IMT_CONTAINER_H

#include "common/common.h"

/* One member, as the sink sees it. Everything is borrowed for the call. */
typedef struct imt__member {
    const char *path;          /* "outer.zip!inner/a.jpg" */
    uint32_t depth;            /* 1: in the walked file */
    uint64_t index;            /* position among its container's entries */
    uint64_t size;             /* as the container states it (0: unknown) */
    int has_mtime;
    int64_t mtime_s;
    int32_t mtime_ns;
    imt_err status;            /* IMT_OK: stream holds its bytes; otherwise it
                                  cannot be read (IMT_E_ENCRYPTED, ...), and
                                  detail says why */
    const char *detail;
    const imt_stream *stream;  /* when status is IMT_OK */
    const char *cut;           /* read after hashing the stream: non-empty
                                  when a limit or a data error cut it short
                                  (the stream returned an error), the sentence
                                  for the member's record */
} imt__member;

#define IMT__CTOP ((size_t)-1) /* the id of the walked container itself */

typedef struct imt__csink {
    /* Hash and keep m (called in member order). *id gets the handle info()
     * takes for this member. A non-OK return stops the expansion and is
     * returned by imt__container_expand (IMT_E_NOMEM, IMT_E_INTERRUPTED, or
     * whatever the sink uses to say "stop": IMT_E_BUSY in scan.c). */
    imt_err (*member)(void *ctx, const imt__member *m, size_t *id);
    /* The expansion facts of the container id (IMT__CTOP: the walked file;
     * else a member handed out before), called once after its members.
     * ci->note is borrowed for the call. */
    void (*info)(void *ctx, size_t id, const imt_container_info *ci);
    void *ctx;
} imt__csink;

/* Expand the container io (its format fmt, sniffed; its record's path) into
 * sink, with the limits o; stop as in imt_scan_opts. Returns IMT_OK (a
 * container that cannot be read is a note, not an error) or the sink's
 * error, or IMT_E_INTERRUPTED. Deterministic: the same bytes and options
 * give the same calls. */
imt_err imt__container_expand(const imt__io *io, imt_format fmt, const char *path,
                              const imt_container_opts *o, const volatile int *stop,
                              const imt__csink *sink);

void imt__container_opts_init(imt_container_opts *o);

/* ---- pdf.c ---------------------------------------------------------------
 * The images of a PDF held in memory, in object-number order: for each image
 * XObject, fn gets its object number, and either its bytes as a picture file
 * (a DCTDecode stream is a JPEG file; status IMT_OK, kind "jpg") or a status
 * and a reason it is not one (JPXDecode, image samples). Returns IMT_OK,
 * IMT_E_ENCRYPTED (a password is needed: note says so), IMT_E_CORRUPT (not
 * a readable PDF: note says why), or fn's error. */
typedef imt_err (*imt__pdf_image_fn)(void *ctx, int obj, const char *ext, imt_err status,
                                     const char *why, const uint8_t *data, size_t len);
imt_err imt__pdf_images(const uint8_t *pdf, size_t len, uint64_t max_objects,
                        const volatile int *stop, imt__pdf_image_fn fn, void *ctx,
                        char *note, size_t cap);

#endif
