/* loads.c - load matrices [layers x experts] and their CSV form. */
#include "moesim/trace.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

ms_status ms_loads_new(uint32_t n_layers, uint32_t n_experts, ms_loads **out, ms_error *err) {
    *out = NULL;
    if (n_layers == 0 || n_experts == 0)
        return ms_error_set(err, MS_E_INPUT, "load matrix needs at least one layer and one expert");
    ms_loads *l = ms_calloc_array(1, sizeof *l, err);
    if (!l) return MS_E_NOMEM;
    l->w = ms_calloc_array((size_t)n_layers * n_experts, sizeof *l->w, err);
    if (!l->w) {
        ms_free(l);
        return MS_E_NOMEM;
    }
    l->n_layers = n_layers;
    l->n_experts = n_experts;
    *out = l;
    return MS_OK;
}

void ms_loads_free(ms_loads *l) {
    if (!l) return;
    ms_free(l->w);
    ms_free(l);
}

/* A field is a plain decimal number: [+]digits[.digits][(e|E)[+-]digits]
 * (no sign other than '+', no nan/inf/hex). Returns 1 and the value if so. */
static int parse_number(const char *s, size_t n, double *out) {
    size_t i = 0, digits = 0;
    if (i < n && s[i] == '+') i++;
    while (i < n && s[i] >= '0' && s[i] <= '9') i++, digits++;
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++, digits++;
    }
    if (digits == 0) return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        size_t ed = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++, ed++;
        if (ed == 0) return 0;
    }
    if (i != n || n >= 64) return 0;
    char buf[64];
    memcpy(buf, s, n);
    buf[n] = '\0';
    errno = 0;
    double v = strtod(buf, NULL);
    if (!isfinite(v)) return 0;
    *out = v;
    return 1;
}

static int is_blank_line(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
    return 1;
}

ms_status ms_loads_parse_csv(const char *text, size_t len, const char *label, ms_loads **out, ms_error *err) {
    *out = NULL;
    const char *name = label ? label : "loads";
    double *vals = NULL;
    size_t n_vals = 0, cap = 0;
    uint32_t cols = 0, rows = 0;
    ms_status st = MS_OK;
    size_t pos = 0;
    uint64_t line_no = 0;
    int seen_data = 0, trailing_blank = 0, had_header = 0;
    while (pos < len && st == MS_OK) {
        size_t end = pos;
        while (end < len && text[end] != '\n') end++;
        const char *line = text + pos;
        size_t n = end - pos;
        pos = end + 1;
        line_no++;
        if (n && line[n - 1] == '\r') n--;
        if (memchr(line, '\0', n)) {
            st = ms_error_set(err, MS_E_INPUT, "%s:%llu: NUL byte in text", name, (unsigned long long)line_no);
            break;
        }
        if (is_blank_line(line, n)) {
            trailing_blank = 1;
            continue;
        }
        if (trailing_blank && seen_data) { /* only trailing blank lines are allowed */
            st = ms_error_set(err, MS_E_INPUT, "%s:%llu: data after a blank line", name, (unsigned long long)line_no);
            break;
        }
        uint32_t col = 0;
        size_t f = 0;
        int header = 0;
        while (f <= n && st == MS_OK) {
            size_t g = f;
            while (g < n && line[g] != ',') g++;
            size_t a = f, b = g;
            while (a < b && (line[a] == ' ' || line[a] == '\t')) a++;
            while (b > a && (line[b - 1] == ' ' || line[b - 1] == '\t')) b--;
            double v;
            if (!parse_number(line + a, b - a, &v)) {
                if (!seen_data && !had_header && col == 0) {
                    header = had_header = 1; /* first line's first field not a number: a header */
                    break;
                }
                if (b > a && line[a] == '-')
                    st = ms_error_set(err, MS_E_INPUT, "%s:%llu:%zu: negative load '%.*s'", name,
                                      (unsigned long long)line_no, a + 1, (int)(b - a < 32 ? b - a : 32), line + a);
                else
                    st = ms_error_set(err, MS_E_INPUT, "%s:%llu:%zu: '%.*s' is not a number", name,
                                      (unsigned long long)line_no, a + 1, (int)(b - a < 32 ? b - a : 32), line + a);
                break;
            }
            if (col >= 65536) {
                st = ms_error_set(err, MS_E_INPUT, "%s:%llu: more than 65536 experts", name,
                                  (unsigned long long)line_no);
                break;
            }
            if (n_vals == cap) {
                size_t nc = cap ? cap * 2 : 256;
                double *nv = ms_realloc_array(vals, nc, sizeof *nv, err);
                if (!nv) {
                    st = MS_E_NOMEM;
                    break;
                }
                vals = nv;
                cap = nc;
            }
            vals[n_vals++] = v;
            col++;
            f = g + 1;
        }
        if (st != MS_OK || header) continue;
        if (rows == 0) cols = col;
        else if (col != cols) {
            st = ms_error_set(err, MS_E_INPUT, "%s:%llu: %u values, but the first row has %u", name,
                              (unsigned long long)line_no, col, cols);
            break;
        }
        if (rows == UINT32_MAX) {
            st = ms_error_set(err, MS_E_INPUT, "%s: too many rows", name);
            break;
        }
        rows++;
        seen_data = 1;
    }
    if (st == MS_OK && rows == 0) st = ms_error_set(err, MS_E_INPUT, "%s: no load rows", name);
    ms_loads *l = NULL;
    if (st == MS_OK) st = ms_loads_new(rows, cols, &l, err);
    if (st == MS_OK) memcpy(l->w, vals, (size_t)rows * cols * sizeof *vals);
    ms_free(vals);
    if (st != MS_OK) return st;
    *out = l;
    return MS_OK;
}

ms_status ms_loads_read_csv(const char *path, ms_loads **out, ms_error *err) {
    uint8_t *buf;
    size_t len;
    *out = NULL;
    ms_status st = ms_file_read_all(path, &buf, &len, err);
    if (st != MS_OK) return st;
    st = ms_loads_parse_csv((const char *)buf, len, path, out, err);
    ms_free(buf);
    return st;
}

ms_status ms_loads_write_csv(const ms_loads *l, const char *path, ms_error *err) {
    ms_afile f;
    ms_status st = ms_afile_open(&f, path, err);
    if (st != MS_OK) return st;
    for (uint32_t i = 0; i < l->n_layers; i++) {
        for (uint32_t e = 0; e < l->n_experts; e++)
            fprintf(f.fp, e ? ",%.9g" : "%.9g", l->w[(size_t)i * l->n_experts + e]);
        fputc('\n', f.fp);
    }
    return ms_afile_commit(&f, err);
}
