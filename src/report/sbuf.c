/* sbuf.c - growable text buffer (see sbuf.h). */
#include "report/sbuf.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ms_sbuf_init(ms_sbuf *b) { memset(b, 0, sizeof *b); }

void ms_sbuf_free(ms_sbuf *b) {
    free(b->s);
    memset(b, 0, sizeof *b);
}

void ms_sbuf_reset(ms_sbuf *b) {
    b->len = 0;
    b->failed = false;
    if (b->s) b->s[0] = '\0';
}

static bool reserve(ms_sbuf *b, size_t extra) {
    if (b->failed) return false;
    if (extra > SIZE_MAX / 2 - b->len) {
        b->failed = true;
        return false;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s) {
        b->failed = true;
        return false;
    }
    b->s = s;
    b->cap = cap;
    return true;
}

void ms_sbuf_putn(ms_sbuf *b, const char *s, size_t n) {
    if (!reserve(b, n)) return;
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void ms_sbuf_puts(ms_sbuf *b, const char *s) {
    if (s) ms_sbuf_putn(b, s, strlen(s));
}

void ms_sbuf_printf(ms_sbuf *b, const char *fmt, ...) {
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        ms_sbuf_putn(b, small, (size_t)n);
        return;
    }
    if (!reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void ms_sbuf_put_xml(ms_sbuf *b, const char *s) {
    if (!s) return;
    const char *run = s;
    for (; *s; s++) {
        const char *rep = NULL;
        switch (*s) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default:
            if ((unsigned char)*s < 0x20 && *s != '\n' && *s != '\t') rep = " ";
        }
        if (rep) {
            ms_sbuf_putn(b, run, (size_t)(s - run));
            ms_sbuf_puts(b, rep);
            run = s + 1;
        }
    }
    ms_sbuf_putn(b, run, (size_t)(s - run));
}

void ms_sbuf_put_num(ms_sbuf *b, double v, int sig) {
    if (!isfinite(v) || v == 0) {
        ms_sbuf_puts(b, "0");
        return;
    }
    char buf[64];
    snprintf(buf, sizeof buf, "%.*g", sig, v);
    if (strcmp(buf, "-0") == 0) strcpy(buf, "0");
    ms_sbuf_puts(b, buf);
}

void ms_sbuf_put_coord(ms_sbuf *b, double v) {
    if (!isfinite(v)) v = 0;
    double r = round(v * 100.0) / 100.0;
    if (r == 0) r = 0; /* no -0 */
    char buf[64];
    snprintf(buf, sizeof buf, "%.2f", r);
    char *dot = strchr(buf, '.');
    if (dot) {
        char *end = buf + strlen(buf) - 1;
        while (end > dot && *end == '0') *end-- = '\0';
        if (end == dot) *end = '\0';
    }
    if (strcmp(buf, "-0") == 0) strcpy(buf, "0");
    ms_sbuf_puts(b, buf);
}

ms_status ms_sbuf_status(const ms_sbuf *b, ms_error *err) {
    if (b->failed) return ms_error_set(err, MS_E_NOMEM, "out of memory while formatting text");
    return MS_OK;
}
