/* engine/common/text.h -- internal: a growable text buffer with the JSON
 * and CSV escapers every report line is built with (a line is built whole,
 * then written with one fwrite, so a killed scan leaves whole lines). Every
 * writer (reports, index export, CLI) escapes strings with these. */
#ifndef IMT_TEXT_H
#define IMT_TEXT_H

#include "common/common.h"

typedef struct imt__buf {
    char *p;
    size_t len, cap;
    int oom;               /* sticky: an append failed */
} imt__buf;

void imt__buf_free(imt__buf *b);
void imt__buf_put(imt__buf *b, const void *s, size_t n);
void imt__buf_puts(imt__buf *b, const char *s);
void imt__buf_printf(imt__buf *b, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* A JSON string literal of s; invalid UTF-8 bytes as \udcXX (lossless). */
void imt__buf_json_str(imt__buf *b, const char *s);
/* A CSV field of s, always quoted; control bytes and invalid UTF-8 as \xNN
 * and '\' as '\\' (lossless), '"' doubled; a field starting with = + - @
 * or ' gets a leading ' (no spreadsheet formula; drop one ' to undo). */
void imt__buf_csv_str(imt__buf *b, const char *s);
/* s escaped as XML 1.0 text or attribute value (& < > " ' as entities;
 * tab, LF, CR as character references). What XML 1.0 cannot hold (other
 * C0 controls, U+FFFE/U+FFFF, bytes that are not UTF-8) becomes U+FFFD:
 * returns 1 then, and the writer keeps the exact bytes beside it (hex). */
int imt__buf_xml_str(imt__buf *b, const char *s);
/* s for a person in HTML text or a quoted attribute: & < > " ' as
 * entities; control bytes and invalid UTF-8 as \xNN and '\' as '\\' (the
 * CSV convention: lossless, and nothing invisible). */
void imt__buf_html_str(imt__buf *b, const char *s);
/* Lowercase hex of n bytes. */
void imt__buf_hex(imt__buf *b, const uint8_t *d, size_t n);
/* UTC ISO 8601 with nanoseconds: 2024-01-02T03:04:05.123456789Z */
void imt__buf_time(imt__buf *b, int64_t s, int32_t ns);

#endif
