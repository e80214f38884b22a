/* engine/container/pdf.c -- the images a PDF embeds, read with qpdf's C API
 * (qpdf-c.h): a library that reads PDF structure and stream data, never a
 * renderer (nothing is drawn, no fonts, no content streams run).
 *
 * Why qpdf (README "Containers"): it hands out a stream's raw bytes (a
 * DCTDecode stream is a whole JPEG file, so the picture is hashed from the
 * very bytes the PDF holds, digests included), it reads damaged files with
 * recovery, it catches its own C++ exceptions at the C boundary, and it
 * needs no rendering stack. Poppler's C API (glib) exposes images only as
 * rendered cairo surfaces of a page; MuPDF is not in Debian as a shared
 * library with a stable ABI.
 *
 * Every object number 1..trailer /Size-1 (generation 0) is visited, so an
 * image no page uses is found too; an image object with another generation
 * (rewritten by an incremental update) is missed (README). */
#include "container.h"

#include <qpdf/qpdf-c.h>

#include <stdlib.h>
#include <string.h>

/* The filter chain of a stream dictionary: its last filter's name (the one
 * applied first when the image was written is last to be undone), and how
 * many there are. */
static const char *last_filter(qpdf_data q, qpdf_oh dict, int *n)
{
    qpdf_oh f = qpdf_oh_get_key(q, dict, "/Filter");
    const char *name = NULL;
    *n = 0;
    if (qpdf_oh_is_name(q, f)) {
        name = qpdf_oh_get_name(q, f);
        *n = 1;
    } else if (qpdf_oh_is_array(q, f)) {
        int k = qpdf_oh_get_array_n_items(q, f);
        if (k > 0) {
            qpdf_oh last = qpdf_oh_get_array_item(q, f, k - 1);
            if (qpdf_oh_is_name(q, last)) name = qpdf_oh_get_name(q, last);
            qpdf_oh_release(q, last);
        }
        *n = k;
    }
    qpdf_oh_release(q, f);
    return name;
}

imt_err imt__pdf_images(const uint8_t *pdf, size_t len, uint64_t max_objects,
                        const volatile int *stop, imt__pdf_image_fn fn, void *ctx,
                        char *note, size_t cap)
{
    imt_err err = IMT_OK;
    qpdf_data q = qpdf_init();
    if (!q) return IMT_E_NOMEM;
    qpdf_silence_errors(q);
    qpdf_set_suppress_warnings(q, QPDF_TRUE);
    if (qpdf_read_memory(q, "pdf", (const char *)pdf, (unsigned long long)len, NULL) &
        QPDF_ERRORS) {
        qpdf_error e = qpdf_get_error(q);
        int pw = e && qpdf_get_error_code(q, e) == qpdf_e_password;
        imt__set_detail(note, cap, pw ? "the PDF is encrypted with a password: its images "
                                        "were not examined (%s)"
                                      : "not a readable PDF: %s",
                        e ? qpdf_get_error_full_text(q, e) : "unknown error");
        err = pw ? IMT_E_ENCRYPTED : IMT_E_CORRUPT;
        goto cleanup;
    }
    qpdf_oh tr = qpdf_get_trailer(q);
    qpdf_oh sz = qpdf_oh_get_key(q, tr, "/Size");
    long long n = qpdf_oh_is_integer(q, sz) ? qpdf_oh_get_int_value(q, sz) : 0;
    qpdf_oh_release(q, sz);
    qpdf_oh_release(q, tr);
    if (n < 0) n = 0;
    if ((uint64_t)n > max_objects) {
        imt__set_detail(note, cap, "the PDF declares %lld objects: only the first %llu were "
                        "searched for images", n, (unsigned long long)max_objects);
        n = (long long)max_objects;
    }
    for (long long id = 1; id < n; id++) {
        if (stop && *stop) { err = IMT_E_INTERRUPTED; break; }
        qpdf_oh oh = qpdf_get_object_by_id(q, (int)id, 0);
        if (!qpdf_oh_is_stream(q, oh)) {
            qpdf_oh_release(q, oh);
            qpdf_has_error(q); /* clears a recorded error */
            continue;
        }
        qpdf_oh dict = qpdf_oh_get_dict(q, oh);
        qpdf_oh st = qpdf_oh_get_key(q, dict, "/Subtype");
        int image = qpdf_oh_is_name_and_equals(q, st, "/Image");
        qpdf_oh_release(q, st);
        if (!image) {
            qpdf_oh_release(q, dict);
            qpdf_oh_release(q, oh);
            continue;
        }
        int nf;
        const char *f = last_filter(q, dict, &nf);
        qpdf_oh_release(q, dict);
        char why[160] = "";
        unsigned char *buf = NULL;
        size_t blen = 0;
        QPDF_BOOL filtered = QPDF_FALSE;
        if (f && !strcmp(f, "/DCTDecode")) {
            /* A lone DCTDecode: the raw stream is the JPEG file. Under other
             * filters, undo those (qpdf decodes general filters, not DCT). */
            if (qpdf_oh_get_stream_data(q, oh, nf == 1 ? qpdf_dl_none : qpdf_dl_generalized,
                                        &filtered, &buf, &blen) & QPDF_ERRORS) {
                qpdf_error e = qpdf_get_error(q);
                imt__set_detail(why, sizeof why, "the image stream could not be read: %s",
                                e ? qpdf_get_error_full_text(q, e) : "unknown error");
                err = fn(ctx, (int)id, "jpg", IMT_E_CORRUPT, why, NULL, 0);
            } else if (nf > 1 && !filtered) {
                imt__set_detail(why, sizeof why, "a JPEG under %d filters qpdf cannot undo: "
                                "not hashed", nf - 1);
                err = fn(ctx, (int)id, "jpg", IMT_E_UNSUPPORTED, why, NULL, 0);
            } else {
                err = fn(ctx, (int)id, "jpg", IMT_OK, "", buf, blen);
            }
            free(buf); /* qpdf allocates with malloc */
        } else if (f && !strcmp(f, "/JPXDecode")) {
            err = fn(ctx, (int)id, "jp2", IMT_E_UNSUPPORTED,
                     "a JPEG 2000 image (JPXDecode): not decoded", NULL, 0);
        } else {
            imt__set_detail(why, sizeof why, "image samples (%s%s), not a picture file: "
                            "not hashed", f ? "filter " : "no filter", f ? f + 1 : "");
            err = fn(ctx, (int)id, "img", IMT_E_UNSUPPORTED, why, NULL, 0);
        }
        qpdf_oh_release(q, oh);
        if (err) break;
    }
cleanup:
    qpdf_cleanup(&q);
    return err;
}
