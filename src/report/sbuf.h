/* sbuf.h - a growable text buffer with a sticky out-of-memory flag, used by
 * the SVG charts, the HTML report and the sweep's row formatting.
 *
 * Appends never fail loudly: when memory runs out the buffer marks itself
 * failed, drops further text, and ms_sbuf_status reports MS_E_NOMEM once the
 * caller is done, so callers write straight-line code and check once. */
#ifndef MOESIM_REPORT_SBUF_H
#define MOESIM_REPORT_SBUF_H

#include <stdbool.h>
#include <stddef.h>
#include "moesim/common.h"

typedef struct ms_sbuf {
    char *s;      /* NUL-terminated text (NULL until something is appended) */
    size_t len;   /* bytes in s, without the NUL */
    size_t cap;
    bool failed;  /* an append ran out of memory: the text is incomplete */
} ms_sbuf;

/* An empty buffer. Cannot fail. */
void ms_sbuf_init(ms_sbuf *b);
/* Releases the text; the buffer is empty and usable again. */
void ms_sbuf_free(ms_sbuf *b);
/* Empties the text but keeps the memory (and clears the failed flag). */
void ms_sbuf_reset(ms_sbuf *b);
/* Appends printf-formatted text (C locale numbers as the process uses). */
void ms_sbuf_printf(ms_sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends n bytes / a NUL-terminated string. */
void ms_sbuf_putn(ms_sbuf *b, const char *s, size_t n);
void ms_sbuf_puts(ms_sbuf *b, const char *s);
/* Appends s with &, <, >, " and ' escaped for XML/HTML text and attributes;
 * control characters other than tab/newline become spaces. NULL = "". */
void ms_sbuf_put_xml(ms_sbuf *b, const char *s);
/* Appends a number with %.*g-style significant digits but never "-0",
 * "nan" or "inf" (those become "0"): coordinates and values in SVG. */
void ms_sbuf_put_num(ms_sbuf *b, double v, int sig);
/* Appends a coordinate rounded to 2 decimals, trailing zeros trimmed. */
void ms_sbuf_put_coord(ms_sbuf *b, double v);
/* MS_E_NOMEM (with a message) if any append failed, else MS_OK. */
ms_status ms_sbuf_status(const ms_sbuf *b, ms_error *err);

#endif
