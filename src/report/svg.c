/* svg.c - SVG charts: line (and CDF), bar, heatmap. See svg.h. */
#include "report/svg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct series {
    char *name;
    double *x, *y;
    size_t n;
    bool step, points;
    size_t color; /* palette index (its own index unless set) */
} series;

/* A mark on the x axis or a bar of the strip, tied to a series' colour. */
typedef struct xitem {
    size_t series;
    double x, y;
    char *tip;
} xitem;

typedef struct refline {
    bool vertical;
    double v;
    char *label;
} refline;

struct ms_chart {
    ms_chart_kind kind;
    char *title, *note;
    int w, h;
    char *xlabel, *xunit, *ylabel, *yunit;
    bool xlog, ylog;
    double xlo, xhi, ylo, yhi;
    series *s;
    size_t ns;
    refline *ref;
    size_t nref;
    xitem *xm, *sb, *rg; /* x marks, strip bars, rings */
    size_t nxm, nsb, nrg;
    int strip_h;        /* 0 = no strip */
    char *slabel, *sunit;
    char **cats;
    size_t ncat;
    unsigned char *mark;
    size_t nmark;
    char *mark_label;
    bool stacked;
    size_t mr, mc;
    double *m;
    char **rl, **cl;
    char *vlabel;
    bool cellvals;
    bool failed;
};

#define FONT "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\""
#define CHAR_W 7.2 /* average advance of a 12px sans-serif character (DejaVu Sans is wide), pixels */
#define MAX_LABEL 28

/* ------------------------------------------------------------ helpers */

static char *dup_str(ms_chart *c, const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (!d) {
        c->failed = true;
        return NULL;
    }
    memcpy(d, s, n + 1);
    return d;
}

static double *dup_doubles(ms_chart *c, const double *v, size_t n) {
    double *d = ms_alloc_array(n ? n : 1, sizeof *d, NULL);
    if (!d) {
        c->failed = true;
        return NULL;
    }
    if (n) memcpy(d, v, n * sizeof *d);
    return d;
}

static void set_str(ms_chart *c, char **dst, const char *s) {
    free(*dst);
    *dst = dup_str(c, s);
}

static size_t utf8_len(const char *s) {
    size_t n = 0;
    for (; s && *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) n++;
    return n;
}

static double text_w(const char *s, double size) { return (double)utf8_len(s) * CHAR_W * size / 12.0; }

/* Writes s, shortened to at most max characters with an ellipsis, escaped. */
static void put_label(ms_sbuf *b, const char *s, size_t max) {
    if (utf8_len(s) <= max) {
        ms_sbuf_put_xml(b, s);
        return;
    }
    size_t chars = 0, i = 0;
    for (; s[i]; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            if (chars == max - 1) break;
            chars++;
        }
    }
    char *t = malloc(i + 1);
    if (!t) {
        b->failed = true;
        return;
    }
    memcpy(t, s, i);
    t[i] = '\0';
    ms_sbuf_put_xml(b, t);
    ms_sbuf_puts(b, "\xe2\x80\xa6");
    free(t);
}

static const char *const palette[8] = {"#0072B2", "#E69F00", "#009E73", "#CC79A7",
                                       "#56B4E9", "#D55E00", "#7F7F7F", "#000000"};
#define ACCENT "#D55E00"

const char *ms_chart_color(size_t i) { return palette[i % 8]; }

static const char *dash_of(size_t i) {
    switch ((i / 8) % 3) {
    case 1: return " stroke-dasharray=\"6 3\"";
    case 2: return " stroke-dasharray=\"2 2\"";
    default: return "";
    }
}

/* ------------------------------------------------------------- ticks */

size_t ms_chart_nice_ticks(double *lo, double *hi, int target, double *t, size_t max) {
    double a = *lo, b = *hi;
    if (!isfinite(a) || !isfinite(b)) a = 0, b = 1;
    if (a > b) {
        double x = a;
        a = b;
        b = x;
    }
    if (!(b > a)) {
        double d = a == 0 ? 1 : fabs(a) * 0.1;
        a -= a == 0 ? 0 : d;
        b += d;
    }
    if (target < 2) target = 2;
    double raw = (b - a) / target;
    double mag = pow(10, floor(log10(raw)));
    double f = raw / mag;
    double step = (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
    double s = floor(a / step + 1e-9) * step, e = ceil(b / step - 1e-9) * step;
    size_t n = (size_t)llround((e - s) / step) + 1;
    if (n > max) n = max;
    for (size_t i = 0; i < n; i++) {
        t[i] = s + (double)i * step;
        if (fabs(t[i]) < step * 1e-9) t[i] = 0;
    }
    *lo = s;
    *hi = e;
    return n;
}

void ms_chart_format_tick(char *buf, size_t len, double v, double step) {
    static const char *const suf[] = {"", "k", "M", "G", "T", "P", "E"};
    step = fabs(step);
    if (!isfinite(v) || (step > 0 && fabs(v) < step * 1e-9) || v == 0) {
        snprintf(buf, len, "0");
        return;
    }
    double x = fabs(v) > step ? fabs(v) : step, scale = 1;
    int k = 0;
    while (x >= 1000 && k < 6) {
        x /= 1000;
        scale *= 1000;
        k++;
    }
    double rel = step > 0 ? step / scale : 1;
    int dec = rel >= 1 ? 0 : (int)ceil(-log10(rel) - 1e-9);
    if (dec < 0) dec = 0;
    if (dec > 9) dec = 9;
    snprintf(buf, len, "%.*f%s", dec, v / scale, suf[k]);
    if (strncmp(buf, "-0", 2) == 0) {
        /* "-0" or "-0.00": all zero digits? then drop the sign */
        bool zero = true;
        for (const char *p = buf + 1; *p; p++)
            if (*p >= '1' && *p <= '9') zero = false;
        if (zero) memmove(buf, buf + 1, strlen(buf));
    }
}

/* A value with 3 significant digits and a k/M/G/T suffix (bar and cell labels). */
static void sig_label(char *buf, size_t len, double v) {
    static const char *const suf[] = {"", "k", "M", "G", "T", "P", "E"};
    double a = fabs(v);
    int k = 0;
    while (a >= 999.5 && k < 6) {
        a /= 1000;
        v /= 1000;
        k++;
    }
    snprintf(buf, len, "%.3g%s", v, suf[k]);
    if (strcmp(buf, "-0") == 0) snprintf(buf, len, "0");
}

/* Log ticks: decades between lo and hi (10^k), plus 2 and 5 when the range
 * spans few decades. lo/hi widened to decades. */
static size_t log_ticks(double *lo, double *hi, double *t, size_t max) {
    double a = floor(log10(*lo) + 1e-9), b = ceil(log10(*hi) - 1e-9);
    if (b <= a) b = a + 1;
    size_t n = 0;
    bool fine = b - a <= 2;
    for (double d = a; d <= b + 1e-9 && n < max; d += 1) {
        double base = pow(10, d);
        t[n++] = base;
        if (fine && d < b - 1e-9) {
            if (n < max) t[n++] = 2 * base;
            if (n < max) t[n++] = 5 * base;
        }
    }
    *lo = pow(10, a);
    *hi = pow(10, b);
    return n;
}

/* ------------------------------------------------------------- setters */

ms_chart *ms_chart_new(ms_chart_kind kind, const char *title) {
    ms_chart *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->kind = kind;
    c->w = 640;
    c->h = 360;
    c->xlo = c->xhi = c->ylo = c->yhi = NAN;
    c->title = dup_str(c, title ? title : "");
    if (c->failed) {
        ms_chart_free(c);
        return NULL;
    }
    return c;
}

static void free_strs(char **v, size_t n) {
    if (!v) return;
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

void ms_chart_free(ms_chart *c) {
    if (!c) return;
    free(c->title);
    free(c->note);
    free(c->xlabel);
    free(c->xunit);
    free(c->ylabel);
    free(c->yunit);
    for (size_t i = 0; i < c->ns; i++) {
        free(c->s[i].name);
        free(c->s[i].x);
        free(c->s[i].y);
    }
    free(c->s);
    for (size_t i = 0; i < c->nref; i++) free(c->ref[i].label);
    free(c->ref);
    for (size_t i = 0; i < c->nxm; i++) free(c->xm[i].tip);
    free(c->xm);
    for (size_t i = 0; i < c->nsb; i++) free(c->sb[i].tip);
    free(c->sb);
    for (size_t i = 0; i < c->nrg; i++) free(c->rg[i].tip);
    free(c->rg);
    free(c->slabel);
    free(c->sunit);
    free_strs(c->cats, c->ncat);
    free(c->mark);
    free(c->mark_label);
    free(c->m);
    free_strs(c->rl, c->mr);
    free_strs(c->cl, c->mc);
    free(c->vlabel);
    free(c);
}

void ms_chart_set_size(ms_chart *c, int width, int height) {
    c->w = width < 160 ? 160 : width > 4000 ? 4000 : width;
    c->h = height < 160 ? 160 : height > 4000 ? 4000 : height;
}

void ms_chart_set_note(ms_chart *c, const char *note) { set_str(c, &c->note, note); }

void ms_chart_set_x_axis(ms_chart *c, const char *label, const char *unit, bool log) {
    set_str(c, &c->xlabel, label);
    set_str(c, &c->xunit, unit);
    c->xlog = log;
}

void ms_chart_set_y_axis(ms_chart *c, const char *label, const char *unit, bool log) {
    set_str(c, &c->ylabel, label);
    set_str(c, &c->yunit, unit);
    c->ylog = log;
}

void ms_chart_set_x_range(ms_chart *c, double lo, double hi) {
    c->xlo = lo;
    c->xhi = hi;
}

void ms_chart_set_y_range(ms_chart *c, double lo, double hi) {
    c->ylo = lo;
    c->yhi = hi;
}

static series *new_series(ms_chart *c, const char *name) {
    series *s = realloc(c->s, (c->ns + 1) * sizeof *s);
    if (!s) {
        c->failed = true;
        return NULL;
    }
    c->s = s;
    series *n = &c->s[c->ns];
    memset(n, 0, sizeof *n);
    n->name = dup_str(c, name ? name : "");
    n->color = c->ns;
    c->ns++;
    return n;
}

void ms_chart_add_line(ms_chart *c, const char *name, const double *x, const double *y, size_t n, bool step,
                       bool points) {
    series *s = new_series(c, name);
    if (!s) return;
    s->y = dup_doubles(c, y, n);
    s->x = ms_alloc_array(n ? n : 1, sizeof *s->x, NULL);
    if (!s->x) {
        c->failed = true;
        return;
    }
    for (size_t i = 0; i < n; i++) s->x[i] = x ? x[i] : (double)i;
    s->n = s->y ? n : 0;
    s->step = step;
    s->points = points && n <= 64;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void ms_chart_add_cdf(ms_chart *c, const char *name, const double *v, size_t n) {
    double *sorted = ms_alloc_array(n ? n : 1, sizeof *sorted, NULL);
    if (!sorted) {
        c->failed = true;
        return;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(v[i])) sorted[m++] = v[i];
    qsort(sorted, m, sizeof *sorted, cmp_double);
    size_t k = m > 512 ? 512 : m;
    double *x = ms_alloc_array(k + 1, sizeof *x, NULL), *y = ms_alloc_array(k + 1, sizeof *y, NULL);
    if (!x || !y) {
        c->failed = true;
        free(sorted);
        free(x);
        free(y);
        return;
    }
    if (m) {
        x[0] = sorted[0];
        y[0] = 0;
        for (size_t j = 0; j < k; j++) {
            size_t r = m > 512 ? (size_t)(((j + 1) * (uint64_t)m + k - 1) / k) - 1 : j;
            x[j + 1] = sorted[r];
            y[j + 1] = (double)(r + 1) / (double)m;
        }
    }
    ms_chart_add_line(c, name, x, y, m ? k + 1 : 0, true, false);
    free(sorted);
    free(x);
    free(y);
}

static void add_ref(ms_chart *c, bool vertical, double v, const char *label) {
    refline *r = realloc(c->ref, (c->nref + 1) * sizeof *r);
    if (!r) {
        c->failed = true;
        return;
    }
    c->ref = r;
    c->ref[c->nref].vertical = vertical;
    c->ref[c->nref].v = v;
    c->ref[c->nref].label = dup_str(c, label ? label : "");
    c->nref++;
}

void ms_chart_add_vline(ms_chart *c, double x, const char *label) { add_ref(c, true, x, label); }
void ms_chart_add_hline(ms_chart *c, double y, const char *label) { add_ref(c, false, y, label); }

static void add_xitem(ms_chart *c, xitem **v, size_t *n, size_t si, double x, double y, const char *tip) {
    xitem *t = realloc(*v, (*n + 1) * sizeof *t);
    if (!t) {
        c->failed = true;
        return;
    }
    *v = t;
    t[*n] = (xitem){si, x, y, dup_str(c, tip)};
    (*n)++;
}

void ms_chart_add_xmark(ms_chart *c, size_t si, double x, const char *tip) {
    add_xitem(c, &c->xm, &c->nxm, si, x, NAN, tip);
}

void ms_chart_add_ring(ms_chart *c, size_t si, double x, double y, const char *tip) {
    add_xitem(c, &c->rg, &c->nrg, si, x, y, tip);
}

void ms_chart_set_strip(ms_chart *c, int height, const char *label, const char *unit) {
    c->strip_h = height < 16 ? 16 : height > 1000 ? 1000 : height;
    set_str(c, &c->slabel, label);
    set_str(c, &c->sunit, unit);
}

void ms_chart_add_strip_bar(ms_chart *c, size_t si, double x, double y, const char *tip) {
    add_xitem(c, &c->sb, &c->nsb, si, x, y, tip);
}

void ms_chart_set_series_color(ms_chart *c, size_t si, size_t k) {
    if (si < c->ns) c->s[si].color = k;
}

static char **dup_strs(ms_chart *c, const char *const *names, size_t n, const char *fallback_fmt) {
    char **v = calloc(n ? n : 1, sizeof *v);
    if (!v) {
        c->failed = true;
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (names && names[i]) {
            v[i] = dup_str(c, names[i]);
        } else {
            char buf[32];
            snprintf(buf, sizeof buf, fallback_fmt, i);
            v[i] = dup_str(c, buf);
        }
    }
    return v;
}

void ms_chart_set_categories(ms_chart *c, const char *const *names, size_t n) {
    free_strs(c->cats, c->ncat);
    c->ncat = 0;
    c->cats = dup_strs(c, names, n, "%zu");
    if (c->cats) c->ncat = n;
}

void ms_chart_add_bars(ms_chart *c, const char *name, const double *v, size_t n) {
    series *s = new_series(c, name);
    if (!s) return;
    s->y = dup_doubles(c, v, n);
    s->n = s->y ? n : 0;
}

void ms_chart_set_stacked(ms_chart *c, bool stacked) { c->stacked = stacked; }

void ms_chart_set_marks(ms_chart *c, const unsigned char *mark, size_t n, const char *mark_label) {
    free(c->mark);
    c->nmark = 0;
    c->mark = malloc(n ? n : 1);
    if (!c->mark) {
        c->failed = true;
        return;
    }
    if (n) memcpy(c->mark, mark, n);
    c->nmark = n;
    set_str(c, &c->mark_label, mark_label ? mark_label : "marked");
}

void ms_chart_set_matrix(ms_chart *c, size_t rows, size_t cols, const double *v,
                         const char *const *row_labels, const char *const *col_labels, const char *value_label) {
    free(c->m);
    free_strs(c->rl, c->mr);
    free_strs(c->cl, c->mc);
    c->m = NULL;
    c->rl = c->cl = NULL;
    c->mr = c->mc = 0;
    size_t n;
    if (ms_mul_overflow(rows, cols, &n)) {
        c->failed = true;
        return;
    }
    c->m = dup_doubles(c, v, n);
    c->rl = dup_strs(c, row_labels, rows, "%zu");
    c->cl = dup_strs(c, col_labels, cols, "%zu");
    if (c->m && c->rl && c->cl) {
        c->mr = rows;
        c->mc = cols;
    } else {
        free(c->m);
        free_strs(c->rl, rows);
        free_strs(c->cl, cols);
        c->m = NULL;
        c->rl = c->cl = NULL;
    }
    set_str(c, &c->vlabel, value_label);
}

void ms_chart_set_cell_values(ms_chart *c, bool show) { c->cellvals = show; }

size_t ms_chart_series_count(const ms_chart *c) { return c->ns; }

/* ------------------------------------------------------------ drawing */

typedef struct frame {
    double x0, x1, y0, y1; /* plot area: x0 left, x1 right, y0 top, y1 bottom */
} frame;

static void axis_title(char *buf, size_t len, const char *label, const char *unit) {
    if (unit && *unit) snprintf(buf, len, "%s (%s)", label ? label : "", unit);
    else snprintf(buf, len, "%s", label ? label : "");
}

static void text(ms_sbuf *b, double x, double y, const char *anchor, const char *extra, const char *s) {
    ms_sbuf_puts(b, "<text x=\"");
    ms_sbuf_put_coord(b, x);
    ms_sbuf_puts(b, "\" y=\"");
    ms_sbuf_put_coord(b, y);
    ms_sbuf_printf(b, "\" text-anchor=\"%s\"%s%s>", anchor, extra && *extra ? " " : "", extra ? extra : "");
    ms_sbuf_put_xml(b, s);
    ms_sbuf_puts(b, "</text>\n");
}

static void line(ms_sbuf *b, double x1, double y1, double x2, double y2, const char *attrs) {
    ms_sbuf_puts(b, "<line x1=\"");
    ms_sbuf_put_coord(b, x1);
    ms_sbuf_puts(b, "\" y1=\"");
    ms_sbuf_put_coord(b, y1);
    ms_sbuf_puts(b, "\" x2=\"");
    ms_sbuf_put_coord(b, x2);
    ms_sbuf_puts(b, "\" y2=\"");
    ms_sbuf_put_coord(b, y2);
    ms_sbuf_printf(b, "\" %s/>\n", attrs);
}

static void rect(ms_sbuf *b, double x, double y, double w, double h, const char *fill, const char *extra) {
    ms_sbuf_puts(b, "<rect x=\"");
    ms_sbuf_put_coord(b, x);
    ms_sbuf_puts(b, "\" y=\"");
    ms_sbuf_put_coord(b, y);
    ms_sbuf_puts(b, "\" width=\"");
    ms_sbuf_put_coord(b, w < 0 ? 0 : w);
    ms_sbuf_puts(b, "\" height=\"");
    ms_sbuf_put_coord(b, h < 0 ? 0 : h);
    ms_sbuf_printf(b, "\" fill=\"%s\"%s%s", fill, extra && *extra ? " " : "", extra ? extra : "");
}

static void header(const ms_chart *c, ms_sbuf *b, bool standalone, const char *id, int h) {
    if (standalone) ms_sbuf_puts(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    ms_sbuf_puts(b, "<svg xmlns=\"http://www.w3.org/2000/svg\"");
    if (id) {
        ms_sbuf_puts(b, " id=\"");
        ms_sbuf_put_xml(b, id);
        ms_sbuf_puts(b, "\"");
    }
    ms_sbuf_printf(b, " class=\"chart\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" " FONT
                      " font-size=\"12\">\n",
                   c->w, h, c->w, h);
    ms_sbuf_puts(b, "<title>");
    ms_sbuf_put_xml(b, c->title);
    ms_sbuf_puts(b, "</title>\n");
    ms_sbuf_printf(b, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", c->w, h);
    text(b, 12, 20, "start", "font-size=\"14\" font-weight=\"bold\" fill=\"#222222\"", c->title);
    if (c->note) text(b, 12, 37, "start", "font-size=\"11\" fill=\"#666666\"", c->note);
}

static double top_margin(const ms_chart *c) { return c->note ? 52 : 36; }

/* Legend entries at the right of the plot. kind: 0 line, 1 box. */
typedef struct legend_item {
    const char *name;
    const char *color;
    const char *dash;
    int kind;
} legend_item;

static double legend_width(const legend_item *it, size_t n, double maxw) {
    double w = 0;
    for (size_t i = 0; i < n; i++) {
        double t = text_w(it[i].name, 11);
        if (t > w) w = t;
    }
    w += 36;
    return w > maxw ? maxw : w;
}

static void draw_legend(ms_sbuf *b, const legend_item *it, size_t n, double x, double y, double w) {
    size_t maxc = (size_t)((w - 34) / (CHAR_W * 11.0 / 12.0) + 0.5);
    if (maxc < 4) maxc = 4;
    for (size_t i = 0; i < n; i++) {
        double yy = y + 8 + (double)i * 18;
        if (it[i].kind == 0) {
            char attrs[160];
            snprintf(attrs, sizeof attrs, "stroke=\"%s\" stroke-width=\"2.5\"%s", it[i].color, it[i].dash);
            line(b, x, yy, x + 22, yy, attrs);
        } else {
            rect(b, x + 4, yy - 6, 14, 12, it[i].color, "");
            ms_sbuf_puts(b, "/>\n");
        }
        ms_sbuf_puts(b, "<text x=\"");
        ms_sbuf_put_coord(b, x + 28);
        ms_sbuf_puts(b, "\" y=\"");
        ms_sbuf_put_coord(b, yy + 4);
        ms_sbuf_puts(b, "\" font-size=\"11\" fill=\"#222222\">");
        put_label(b, it[i].name, maxc);
        ms_sbuf_puts(b, "</text>\n");
    }
}

typedef struct axis {
    double lo, hi;
    bool log;
    double t[64];
    size_t nt;
    double step;
} axis;

static double map(const axis *a, double v, double p0, double p1) {
    double f;
    if (a->log) f = (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo));
    else f = (v - a->lo) / (a->hi - a->lo);
    return p0 + f * (p1 - p0);
}

static void make_axis(axis *a, double lo, double hi, bool log, double force_lo, double force_hi, int target) {
    a->log = log;
    if (isfinite(force_lo)) lo = force_lo;
    if (isfinite(force_hi)) hi = force_hi;
    if (log) {
        if (!(lo > 0)) lo = hi > 0 ? hi / 10 : 1;
        if (!(hi > 0)) hi = lo * 10;
        if (hi <= lo) hi = lo * 10;
        a->lo = lo;
        a->hi = hi;
        a->nt = log_ticks(&a->lo, &a->hi, a->t, 64);
        a->step = 0;
        return;
    }
    if (!isfinite(lo) || !isfinite(hi)) lo = 0, hi = 1;
    a->lo = lo;
    a->hi = hi;
    a->nt = ms_chart_nice_ticks(&a->lo, &a->hi, target, a->t, 64);
    a->step = a->nt > 1 ? a->t[1] - a->t[0] : 1;
    if (isfinite(force_lo)) a->lo = force_lo;
    if (isfinite(force_hi)) a->hi = force_hi;
    /* keep only ticks inside a forced range */
    size_t k = 0;
    for (size_t i = 0; i < a->nt; i++)
        if (a->t[i] >= a->lo - 1e-9 * fabs(a->step) && a->t[i] <= a->hi + 1e-9 * fabs(a->step)) a->t[k++] = a->t[i];
    a->nt = k;
    if (!(a->hi > a->lo)) a->hi = a->lo + 1;
}

static void tick_label(const axis *a, double v, char *buf, size_t len) {
    ms_chart_format_tick(buf, len, v, a->log ? v : a->step);
}

static double max_tick_w(const axis *a) {
    double w = 0;
    char buf[48];
    for (size_t i = 0; i < a->nt; i++) {
        tick_label(a, a->t[i], buf, sizeof buf);
        double t = text_w(buf, 11);
        if (t > w) w = t;
    }
    return w;
}

static void draw_y_axis(ms_sbuf *b, const axis *ya, const frame *f, const char *label, const char *unit) {
    char buf[48];
    for (size_t i = 0; i < ya->nt; i++) {
        double y = map(ya, ya->t[i], f->y1, f->y0);
        line(b, f->x0, y, f->x1, y, "stroke=\"#e4e4e4\" stroke-width=\"1\"");
        line(b, f->x0 - 4, y, f->x0, y, "stroke=\"#444444\" stroke-width=\"1\"");
        tick_label(ya, ya->t[i], buf, sizeof buf);
        text(b, f->x0 - 7, y + 4, "end", "font-size=\"11\" fill=\"#333333\"", buf);
    }
    char title[256];
    axis_title(title, sizeof title, label, unit);
    double cy = (f->y0 + f->y1) / 2;
    ms_sbuf_puts(b, "<text x=\"14\" y=\"");
    ms_sbuf_put_coord(b, cy);
    ms_sbuf_puts(b, "\" text-anchor=\"middle\" transform=\"rotate(-90 14 ");
    ms_sbuf_put_coord(b, cy);
    ms_sbuf_puts(b, ")\" fill=\"#222222\">");
    ms_sbuf_put_xml(b, title);
    ms_sbuf_puts(b, "</text>\n");
    line(b, f->x0, f->y0, f->x0, f->y1, "stroke=\"#444444\" stroke-width=\"1\"");
}

static void draw_x_title(const ms_chart *c, ms_sbuf *b, const frame *f, double y) {
    char title[256];
    axis_title(title, sizeof title, c->xlabel, c->xunit);
    text(b, (f->x0 + f->x1) / 2, y, "middle", "fill=\"#222222\"", title);
}

static void clip_def(ms_sbuf *b, const char *pfx, const frame *f) {
    ms_sbuf_puts(b, "<defs><clipPath id=\"");
    ms_sbuf_put_xml(b, pfx);
    ms_sbuf_puts(b, "-clip\"><rect x=\"");
    ms_sbuf_put_coord(b, f->x0 - 1);
    ms_sbuf_puts(b, "\" y=\"");
    ms_sbuf_put_coord(b, f->y0 - 1);
    ms_sbuf_puts(b, "\" width=\"");
    ms_sbuf_put_coord(b, f->x1 - f->x0 + 2);
    ms_sbuf_puts(b, "\" height=\"");
    ms_sbuf_put_coord(b, f->y1 - f->y0 + 2);
    ms_sbuf_puts(b, "\"/></clipPath></defs>\n");
}

static bool usable(const axis *a, double v) { return isfinite(v) && (!a->log || v > 0); }

/* A <title> tooltip of s, when there is one. */
static void put_tip(ms_sbuf *b, const char *s) {
    if (!s || !*s) return;
    ms_sbuf_puts(b, "<title>");
    ms_sbuf_put_xml(b, s);
    ms_sbuf_puts(b, "</title>");
}

#define MARK_W 6      /* pixels between the marks (and strip bars) of series at one x */
#define MARK_LINES 40 /* most x marks drawn with a line across the plot */

/* Pixel offsets per series of its x marks and strip bars: the series that
 * have some stand side by side, MARK_W apart, in series order, centred on
 * the x they mark. NULL when out of memory. */
static double *mark_shifts(const ms_chart *c) {
    double *shift = calloc(c->ns ? c->ns : 1, sizeof *shift);
    if (!shift) return NULL;
    for (size_t i = 0; i < c->nxm; i++)
        if (c->xm[i].series < c->ns) shift[c->xm[i].series] = 1;
    for (size_t i = 0; i < c->nsb; i++)
        if (c->sb[i].series < c->ns) shift[c->sb[i].series] = 1;
    double m = 0;
    for (size_t i = 0; i < c->ns; i++) m += shift[i];
    double rank = 0;
    for (size_t i = 0; i < c->ns; i++) {
        bool has = shift[i] > 0;
        shift[i] = (rank - (m - 1) / 2) * MARK_W;
        rank += has;
    }
    return shift;
}

/* The strip's bars in frame sf, MARK_W - 1 pixels wide, offset by shift. */
static void draw_strip_bars(const ms_chart *c, ms_sbuf *b, const axis *xa, const axis *sa, const frame *sf,
                            const double *shift) {
    for (size_t i = 0; i < c->nsb; i++) {
        const xitem *t = &c->sb[i];
        if (t->series >= c->ns || !usable(xa, t->x) || !(t->y >= 0 && isfinite(t->y))) continue;
        double x = map(xa, t->x, sf->x0, sf->x1) + shift[t->series] - (MARK_W - 1) / 2.0;
        double y = map(sa, t->y, sf->y1, sf->y0);
        rect(b, x, y, MARK_W - 1, sf->y1 - y, ms_chart_color(c->s[t->series].color), "");
        ms_sbuf_puts(b, ">");
        put_tip(b, t->tip);
        ms_sbuf_puts(b, "</rect>\n");
    }
}

static ms_status render_line(const ms_chart *c, ms_sbuf *b, bool standalone, const char *id, ms_error *err) {
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    size_t points = 0;
    for (size_t i = 0; i < c->ns; i++)
        for (size_t j = 0; j < c->s[i].n; j++) {
            double x = c->s[i].x[j], y = c->s[i].y[j];
            if (!isfinite(x) || !isfinite(y) || (c->xlog && x <= 0) || (c->ylog && y <= 0)) continue;
            points++;
            xlo = fmin(xlo, x), xhi = fmax(xhi, x), ylo = fmin(ylo, y), yhi = fmax(yhi, y);
        }
    if (!points) return ms_error_set(err, MS_E_INPUT, "chart '%s' has no data to draw", c->title);
    for (size_t i = 0; i < c->nref; i++) {
        double v = c->ref[i].v;
        if (!isfinite(v)) continue;
        if (c->ref[i].vertical && (!c->xlog || v > 0)) xlo = fmin(xlo, v), xhi = fmax(xhi, v);
        if (!c->ref[i].vertical && (!c->ylog || v > 0)) ylo = fmin(ylo, v), yhi = fmax(yhi, v);
    }
    double shi = 0; /* the strip's largest bar */
    const xitem *const items3[3] = {c->xm, c->sb, c->rg};
    const size_t n3[3] = {c->nxm, c->nsb, c->nrg};
    for (int pass = 0; pass < 3; pass++)
        for (size_t i = 0; i < n3[pass]; i++) {
            const xitem *t = &items3[pass][i];
            bool y_ok = isfinite(t->y) && (pass == 1 ? t->y >= 0 : !c->ylog || t->y > 0);
            if (!isfinite(t->x) || (c->xlog && t->x <= 0) || (pass && !y_ok)) continue;
            xlo = fmin(xlo, t->x), xhi = fmax(xhi, t->x);
            if (pass == 1) shi = fmax(shi, t->y);
            if (pass == 2) ylo = fmin(ylo, t->y), yhi = fmax(yhi, t->y);
        }
    if (!c->ylog && ylo > 0 && ylo < 0.5 * yhi) ylo = 0; /* start at zero when it is near */
    axis xa, ya, sa;
    make_axis(&xa, xlo, xhi, c->xlog, c->xlo, c->xhi, 8);
    make_axis(&ya, ylo, yhi, c->ylog, c->ylo, c->yhi, 6);
    make_axis(&sa, 0, shi > 0 ? shi : 1, false, 0, NAN, 2);

    legend_item items[64];
    size_t nit = 0;
    for (size_t i = 0; i < c->ns && nit < 64; i++)
        items[nit++] = (legend_item){c->s[i].name, ms_chart_color(c->s[i].color), dash_of(c->s[i].color), 0};
    bool legend = c->ns > 1;
    frame f;
    f.x0 = 30 + fmax(max_tick_w(&ya), c->strip_h ? max_tick_w(&sa) : 0) + 10;
    f.y0 = top_margin(c);
    f.y1 = c->h - 44;
    double lw = legend ? legend_width(items, nit, c->w * 0.34) : 0;
    f.x1 = c->w - 16 - (legend ? lw + 8 : 0);
    if (f.x1 - f.x0 < 60) f.x1 = f.x0 + 60;
    /* the strip beneath the plot; the x axis goes under it */
    frame sf = {f.x0, f.x1, f.y1 + 12, f.y1 + 12 + c->strip_h};
    double bottom = c->strip_h ? sf.y1 : f.y1;
    int h = c->h + (c->strip_h ? c->strip_h + 12 : 0);
    double *shift = mark_shifts(c);
    if (!shift) return ms_error_set(err, MS_E_NOMEM, "out of memory while drawing chart '%s'", c->title);

    header(c, b, standalone, id, h);
    char pfx[96];
    snprintf(pfx, sizeof pfx, "%s", id ? id : "chart");
    clip_def(b, pfx, &f);
    draw_y_axis(b, &ya, &f, c->ylabel, c->yunit);
    if (c->strip_h) draw_y_axis(b, &sa, &sf, c->slabel, c->sunit);
    char buf[48];
    for (size_t i = 0; i < xa.nt; i++) {
        double x = map(&xa, xa.t[i], f.x0, f.x1);
        line(b, x, f.y0, x, f.y1, "stroke=\"#f0f0f0\" stroke-width=\"1\"");
        if (c->strip_h) line(b, x, sf.y0, x, sf.y1, "stroke=\"#f0f0f0\" stroke-width=\"1\"");
        line(b, x, bottom, x, bottom + 4, "stroke=\"#444444\" stroke-width=\"1\"");
        tick_label(&xa, xa.t[i], buf, sizeof buf);
        text(b, x, bottom + 17, "middle", "font-size=\"11\" fill=\"#333333\"", buf);
    }
    line(b, f.x0, f.y1, f.x1, f.y1, "stroke=\"#444444\" stroke-width=\"1\"");
    if (c->strip_h) line(b, f.x0, sf.y1, f.x1, sf.y1, "stroke=\"#444444\" stroke-width=\"1\"");
    draw_x_title(c, b, &f, h - 8);
    draw_strip_bars(c, b, &xa, &sa, &sf, shift);

    ms_sbuf_puts(b, "<g clip-path=\"url(#");
    ms_sbuf_put_xml(b, pfx);
    ms_sbuf_puts(b, "-clip)\" fill=\"none\" stroke-linejoin=\"round\">\n");
    for (size_t i = 0; i < c->ns; i++) {
        const series *s = &c->s[i];
        bool open = false;
        double py = 0;
        size_t drawn = 0;
        for (size_t j = 0; j < s->n; j++) {
            if (!usable(&xa, s->x[j]) || !usable(&ya, s->y[j])) continue;
            double x = map(&xa, s->x[j], f.x0, f.x1), y = map(&ya, s->y[j], f.y1, f.y0);
            if (!open) {
                /* earlier series drawn wider, so a later one on top of it leaves it visible */
                double sw = c->ns > 1 && c->ns <= 3 ? 2 + 1.2 * (double)(c->ns - 1 - i) : 2;
                ms_sbuf_printf(b, "<path stroke=\"%s\" stroke-width=\"%.1f\"%s d=\"M", ms_chart_color(s->color), sw,
                               dash_of(s->color));
                ms_sbuf_put_coord(b, x);
                ms_sbuf_puts(b, " ");
                ms_sbuf_put_coord(b, y);
                open = true;
            } else if (s->step) {
                ms_sbuf_puts(b, "H");
                ms_sbuf_put_coord(b, x);
                if (y != py) {
                    ms_sbuf_puts(b, "V");
                    ms_sbuf_put_coord(b, y);
                }
            } else {
                ms_sbuf_puts(b, "L");
                ms_sbuf_put_coord(b, x);
                ms_sbuf_puts(b, " ");
                ms_sbuf_put_coord(b, y);
            }
            py = y;
            drawn++;
        }
        if (open) ms_sbuf_puts(b, "\"/>\n");
        /* a lone point has no line: its marker shows it */
        if (s->points || drawn == 1) {
            for (size_t j = 0; j < s->n; j++) {
                if (!usable(&xa, s->x[j]) || !usable(&ya, s->y[j])) continue;
                ms_sbuf_puts(b, "<circle cx=\"");
                ms_sbuf_put_coord(b, map(&xa, s->x[j], f.x0, f.x1));
                ms_sbuf_puts(b, "\" cy=\"");
                ms_sbuf_put_coord(b, map(&ya, s->y[j], f.y1, f.y0));
                ms_sbuf_printf(b, "\" r=\"3\" fill=\"%s\"/>\n", ms_chart_color(s->color));
            }
        }
    }
    ms_sbuf_puts(b, "</g>\n");
    for (size_t i = 0; i < c->nref; i++) {
        const refline *r = &c->ref[i];
        const axis *a = r->vertical ? &xa : &ya;
        if (!usable(a, r->v)) continue;
        if (r->vertical) {
            double x = map(&xa, r->v, f.x0, f.x1);
            line(b, x, f.y0, x, f.y1, "stroke=\"#C00000\" stroke-width=\"1.5\" stroke-dasharray=\"5 4\"");
            text(b, x - 4, f.y0 + 12 + 14 * (double)(i % 3), "end", "font-size=\"11\" fill=\"#C00000\"", r->label);
        } else {
            double y = map(&ya, r->v, f.y1, f.y0);
            line(b, f.x0, y, f.x1, y, "stroke=\"#C00000\" stroke-width=\"1.5\" stroke-dasharray=\"5 4\"");
            text(b, f.x1 - 4, y - 5, "end", "font-size=\"11\" fill=\"#C00000\"", r->label);
        }
    }
    for (size_t i = 0; i < c->nxm; i++) {
        const xitem *t = &c->xm[i];
        if (t->series >= c->ns || !usable(&xa, t->x)) continue;
        const char *col = ms_chart_color(c->s[t->series].color);
        double x = map(&xa, t->x, f.x0, f.x1) + shift[t->series];
        ms_sbuf_puts(b, "<g class=\"xmark\">");
        put_tip(b, t->tip);
        if (c->nxm <= MARK_LINES) {
            char attrs[96];
            snprintf(attrs, sizeof attrs, "stroke=\"%s\" stroke-width=\"1\" stroke-opacity=\"0.45\"", col);
            line(b, x, f.y0, x, bottom, attrs);
        }
        ms_sbuf_puts(b, "<path d=\"M");
        ms_sbuf_put_coord(b, x - MARK_W / 2.0);
        ms_sbuf_puts(b, " ");
        ms_sbuf_put_coord(b, f.y0 - 7);
        ms_sbuf_printf(b, "h%dl-%g 7z\" fill=\"%s\"/></g>\n", MARK_W, MARK_W / 2.0, col);
    }
    free(shift);
    for (size_t i = 0; i < c->nrg; i++) {
        const xitem *t = &c->rg[i];
        if (t->series >= c->ns || !usable(&xa, t->x) || !usable(&ya, t->y)) continue;
        ms_sbuf_puts(b, "<g class=\"ring\">");
        put_tip(b, t->tip);
        ms_sbuf_puts(b, "<circle cx=\"");
        ms_sbuf_put_coord(b, map(&xa, t->x, f.x0, f.x1));
        ms_sbuf_puts(b, "\" cy=\"");
        ms_sbuf_put_coord(b, map(&ya, t->y, f.y1, f.y0));
        ms_sbuf_printf(b, "\" r=\"7\" fill=\"none\" stroke=\"%s\" stroke-width=\"2.5\"/></g>\n",
                       ms_chart_color(c->s[t->series].color));
    }
    if (legend) draw_legend(b, items, nit, f.x1 + 12, f.y0, lw);
    ms_sbuf_puts(b, "</svg>\n");
    return MS_OK;
}

/* Every k-th category label so that labels of width lw fit in bands of width band. */
static size_t label_every(size_t n, double band, double lw) {
    static const size_t steps[] = {1, 2, 4, 5, 8, 10, 16, 20, 25, 32, 50, 64, 100, 128, 200, 250, 500, 1000};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        if (band * (double)steps[i] >= lw + 6) return steps[i];
    return n ? n : 1;
}

static ms_status render_bar(const ms_chart *c, ms_sbuf *b, bool standalone, const char *id, ms_error *err) {
    size_t n = c->ncat;
    if (!n || !c->ns) return ms_error_set(err, MS_E_INPUT, "chart '%s' has no bars to draw", c->title);
    double lo = 0, hi = 0;
    for (size_t k = 0; k < n; k++) {
        double pos = 0, neg = 0;
        for (size_t i = 0; i < c->ns; i++) {
            double v = k < c->s[i].n ? c->s[i].y[k] : NAN;
            if (!isfinite(v)) continue;
            if (c->stacked) {
                if (v >= 0) pos += v;
                else neg += v;
            } else {
                hi = fmax(hi, v);
                lo = fmin(lo, v);
            }
        }
        if (c->stacked) hi = fmax(hi, pos), lo = fmin(lo, neg);
    }
    if (hi == lo) hi = lo + 1;
    axis ya;
    make_axis(&ya, lo, hi, false, c->ylo, c->yhi, 6);

    legend_item items[66];
    size_t nit = 0;
    for (size_t i = 0; i < c->ns && nit < 64; i++)
        items[nit++] = (legend_item){c->s[i].name, ms_chart_color(c->s[i].color), "", 1};
    bool marks = c->mark && c->nmark;
    if (marks) items[nit++] = (legend_item){c->mark_label, ACCENT, "", 1};
    bool legend = c->ns > 1 || marks;

    double maxlab = 0;
    for (size_t k = 0; k < n; k++) {
        double t = text_w(c->cats[k], 11);
        if (t > maxlab) maxlab = t;
    }
    if (maxlab > MAX_LABEL * CHAR_W) maxlab = MAX_LABEL * CHAR_W;
    frame f;
    f.x0 = 30 + max_tick_w(&ya) + 10;
    f.y0 = top_margin(c);
    double lw = legend ? legend_width(items, nit, c->w * 0.34) : 0;
    f.x1 = c->w - 16 - (legend ? lw + 8 : 0);
    if (f.x1 - f.x0 < 60) f.x1 = f.x0 + 60;
    double band = (f.x1 - f.x0) / (double)n;
    bool rotate = n <= 40 && maxlab + 6 > band;
    double bottom = rotate ? 30 + maxlab * 0.6 : 44;
    f.y1 = c->h - bottom;
    if (f.y1 - f.y0 < 60) f.y1 = f.y0 + 60;
    int h = (int)ceil(f.y1 + bottom);
    if (h < c->h) h = c->h;

    header(c, b, standalone, id, h);
    draw_y_axis(b, &ya, &f, c->ylabel, c->yunit);
    double base = map(&ya, 0 < ya.lo ? ya.lo : 0 > ya.hi ? ya.hi : 0, f.y1, f.y0);
    double inner = band * (n > 64 ? 0.9 : 0.78);
    size_t bars = n * (c->stacked ? 1 : c->ns);
    bool values = bars <= 16 && inner / (c->stacked ? 1 : (double)c->ns) >= 34;
    char buf[48];
    for (size_t k = 0; k < n; k++) {
        double cx = f.x0 + band * ((double)k + 0.5);
        double pos = 0, neg = 0;
        for (size_t i = 0; i < c->ns; i++) {
            double v = k < c->s[i].n ? c->s[i].y[k] : NAN;
            if (!isfinite(v)) continue;
            double bw, bx, ytop, ybot;
            if (c->stacked) {
                bw = inner;
                bx = cx - inner / 2;
                double from = v >= 0 ? pos : neg, to = from + v;
                if (v >= 0) pos = to;
                else neg = to;
                ytop = map(&ya, fmax(from, to), f.y1, f.y0);
                ybot = map(&ya, fmin(from, to), f.y1, f.y0);
            } else {
                bw = inner / (double)c->ns;
                bx = cx - inner / 2 + bw * (double)i;
                ytop = map(&ya, v >= 0 ? v : 0, f.y1, f.y0);
                ybot = map(&ya, v >= 0 ? 0 : v, f.y1, f.y0);
                if (v >= 0) ytop = fmin(ytop, base), ybot = base;
            }
            const char *fill = ms_chart_color(c->s[i].color);
            if (i == 0 && marks && k < c->nmark && c->mark[k]) fill = ACCENT;
            rect(b, bx, ytop, bw > 1.2 ? bw - (n > 64 ? 0 : 0.6) : bw, ybot - ytop, fill, "");
            ms_sbuf_puts(b, "><title>");
            ms_sbuf_put_xml(b, c->cats[k]);
            if (c->ns > 1) {
                ms_sbuf_puts(b, " / ");
                ms_sbuf_put_xml(b, c->s[i].name);
            }
            ms_sbuf_puts(b, ": ");
            ms_sbuf_put_num(b, v, 6);
            ms_sbuf_puts(b, "</title></rect>\n");
            if (values) {
                sig_label(buf, sizeof buf, v);
                if (c->stacked) {
                    if (ybot - ytop >= 14) text(b, bx + bw / 2, (ytop + ybot) / 2 + 4, "middle", "font-size=\"10\" fill=\"#ffffff\"", buf);
                } else {
                    text(b, bx + bw / 2, ytop - 4, "middle", "font-size=\"10\" fill=\"#333333\"", buf);
                }
            }
        }
    }
    line(b, f.x0, base, f.x1, base, "stroke=\"#444444\" stroke-width=\"1\"");
    size_t every = rotate ? 1 : label_every(n, band, maxlab);
    for (size_t k = 0; k < n; k += every) {
        double cx = f.x0 + band * ((double)k + 0.5);
        line(b, cx, f.y1, cx, f.y1 + 3, "stroke=\"#444444\" stroke-width=\"1\"");
        if (rotate) {
            ms_sbuf_puts(b, "<text x=\"");
            ms_sbuf_put_coord(b, cx + 3);
            ms_sbuf_puts(b, "\" y=\"");
            ms_sbuf_put_coord(b, f.y1 + 14);
            ms_sbuf_puts(b, "\" text-anchor=\"end\" font-size=\"11\" fill=\"#333333\" transform=\"rotate(-35 ");
            ms_sbuf_put_coord(b, cx + 3);
            ms_sbuf_puts(b, " ");
            ms_sbuf_put_coord(b, f.y1 + 14);
            ms_sbuf_puts(b, ")\">");
            put_label(b, c->cats[k], MAX_LABEL);
            ms_sbuf_puts(b, "</text>\n");
        } else {
            ms_sbuf_puts(b, "<text x=\"");
            ms_sbuf_put_coord(b, cx);
            ms_sbuf_puts(b, "\" y=\"");
            ms_sbuf_put_coord(b, f.y1 + 17);
            ms_sbuf_puts(b, "\" text-anchor=\"middle\" font-size=\"11\" fill=\"#333333\">");
            put_label(b, c->cats[k], MAX_LABEL);
            ms_sbuf_puts(b, "</text>\n");
        }
    }
    draw_x_title(c, b, &f, h - 8);
    if (legend) draw_legend(b, items, nit, f.x1 + 12, f.y0, lw);
    ms_sbuf_puts(b, "</svg>\n");
    return MS_OK;
}

/* viridis, 9 stops */
static const unsigned char viridis[9][3] = {{68, 1, 84},    {71, 44, 122},  {59, 81, 139},
                                            {44, 113, 142}, {33, 144, 140}, {39, 173, 129},
                                            {92, 200, 99},  {170, 220, 50}, {253, 231, 37}};

static void colormap(double f, char *buf, size_t len, bool *dark) {
    if (!isfinite(f) || f < 0) f = 0;
    if (f > 1) f = 1;
    double p = f * 8;
    int i = (int)floor(p);
    if (i >= 8) i = 7;
    double t = p - i;
    int rgb[3];
    for (int k = 0; k < 3; k++) rgb[k] = (int)lround(viridis[i][k] + t * (viridis[i + 1][k] - viridis[i][k]));
    snprintf(buf, len, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
    if (dark) *dark = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] < 140;
}

static ms_status render_heatmap(const ms_chart *c, ms_sbuf *b, bool standalone, const char *id, ms_error *err) {
    size_t R = c->mr, C = c->mc;
    if (!R || !C) return ms_error_set(err, MS_E_INPUT, "chart '%s' has no matrix to draw", c->title);
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < R * C; i++)
        if (isfinite(c->m[i])) lo = fmin(lo, c->m[i]), hi = fmax(hi, c->m[i]);
    if (!isfinite(lo)) lo = 0, hi = 1;
    if (isfinite(c->ylo)) lo = c->ylo;
    if (isfinite(c->yhi)) hi = c->yhi;
    if (!(hi > lo)) hi = lo + (lo == 0 ? 1 : fabs(lo) * 0.1);

    double rlw = 0, clw = 0;
    for (size_t r = 0; r < R; r++) rlw = fmax(rlw, text_w(c->rl[r], 11));
    for (size_t k = 0; k < C; k++) clw = fmax(clw, text_w(c->cl[k], 11));
    if (rlw > 20 * CHAR_W) rlw = 20 * CHAR_W;
    axis ca;
    make_axis(&ca, lo, hi, false, lo, hi, 5);
    double cbw = 14 + 8 + max_tick_w(&ca) + 22; /* colour bar, tick labels, rotated title */
    frame f;
    f.x0 = 30 + rlw + 8;
    f.y0 = top_margin(c);
    double availw = c->w - f.x0 - 16 - cbw - 12, availh = c->h - f.y0 - 44;
    double cell = fmin(availw / (double)C, availh / (double)R);
    if (cell > 72) cell = 72;
    if (cell < 1) cell = 1;
    f.x1 = f.x0 + cell * (double)C;
    f.y1 = f.y0 + cell * (double)R;
    int h = (int)ceil(f.y1 + 44);
    if (h < 160) h = 160;
    header(c, b, standalone, id, h);
    bool vals = c->cellvals && cell >= 26;
    char col[16], buf[48];
    double fs = fmin(11, cell / 3.2);
    for (size_t r = 0; r < R; r++)
        for (size_t k = 0; k < C; k++) {
            double v = c->m[r * C + k];
            bool dark = true;
            if (isfinite(v)) colormap((v - lo) / (hi - lo), col, sizeof col, &dark);
            else snprintf(col, sizeof col, "#f2f2f2");
            rect(b, f.x0 + cell * (double)k, f.y0 + cell * (double)r, cell + (cell > 3 ? -0.5 : 0.2),
                 cell + (cell > 3 ? -0.5 : 0.2), col, "");
            ms_sbuf_puts(b, "><title>");
            ms_sbuf_put_xml(b, c->rl[r]);
            ms_sbuf_puts(b, ", ");
            ms_sbuf_put_xml(b, c->cl[k]);
            ms_sbuf_puts(b, ": ");
            if (isfinite(v)) ms_sbuf_put_num(b, v, 6);
            else ms_sbuf_puts(b, "none");
            ms_sbuf_puts(b, "</title></rect>\n");
            if (vals && isfinite(v)) {
                sig_label(buf, sizeof buf, v);
                if (text_w(buf, fs) < cell - 2) {
                    char attrs[64];
                    snprintf(attrs, sizeof attrs, "font-size=\"%.1f\" fill=\"%s\"", fs, dark ? "#ffffff" : "#111111");
                    text(b, f.x0 + cell * ((double)k + 0.5), f.y0 + cell * ((double)r + 0.5) + fs / 3, "middle", attrs,
                         buf);
                }
            }
        }
    /* row labels */
    size_t rev = label_every(R, cell, 11);
    for (size_t r = 0; r < R; r += rev) {
        ms_sbuf_puts(b, "<text x=\"");
        ms_sbuf_put_coord(b, f.x0 - 5);
        ms_sbuf_puts(b, "\" y=\"");
        ms_sbuf_put_coord(b, f.y0 + cell * ((double)r + 0.5) + 4);
        ms_sbuf_puts(b, "\" text-anchor=\"end\" font-size=\"11\" fill=\"#333333\">");
        put_label(b, c->rl[r], 20);
        ms_sbuf_puts(b, "</text>\n");
    }
    size_t cev = label_every(C, cell, clw);
    for (size_t k = 0; k < C; k += cev) {
        ms_sbuf_puts(b, "<text x=\"");
        ms_sbuf_put_coord(b, f.x0 + cell * ((double)k + 0.5));
        ms_sbuf_puts(b, "\" y=\"");
        ms_sbuf_put_coord(b, f.y1 + 15);
        ms_sbuf_puts(b, "\" text-anchor=\"middle\" font-size=\"11\" fill=\"#333333\">");
        put_label(b, c->cl[k], MAX_LABEL);
        ms_sbuf_puts(b, "</text>\n");
    }
    draw_x_title(c, b, &f, f.y1 + 34);
    char title[256];
    axis_title(title, sizeof title, c->ylabel, c->yunit);
    double cy = (f.y0 + f.y1) / 2;
    ms_sbuf_puts(b, "<text x=\"14\" y=\"");
    ms_sbuf_put_coord(b, cy);
    ms_sbuf_puts(b, "\" text-anchor=\"middle\" transform=\"rotate(-90 14 ");
    ms_sbuf_put_coord(b, cy);
    ms_sbuf_puts(b, ")\" fill=\"#222222\">");
    ms_sbuf_put_xml(b, title);
    ms_sbuf_puts(b, "</text>\n");

    /* colour bar: at least 100 px tall */
    double bx = f.x1 + 16, by0 = f.y0, by1 = fmax(f.y1, f.y0 + 100);
    if (by1 + 44 > h) by1 = h - 44;
    char pfx[96];
    snprintf(pfx, sizeof pfx, "%s", id ? id : "chart");
    ms_sbuf_puts(b, "<defs><linearGradient id=\"");
    ms_sbuf_put_xml(b, pfx);
    ms_sbuf_puts(b, "-grad\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">");
    for (int i = 0; i <= 8; i++) {
        colormap(i / 8.0, col, sizeof col, NULL);
        ms_sbuf_printf(b, "<stop offset=\"%.3f\" stop-color=\"%s\"/>", i / 8.0, col);
    }
    ms_sbuf_puts(b, "</linearGradient></defs>\n");
    ms_sbuf_puts(b, "<rect x=\"");
    ms_sbuf_put_coord(b, bx);
    ms_sbuf_puts(b, "\" y=\"");
    ms_sbuf_put_coord(b, by0);
    ms_sbuf_puts(b, "\" width=\"14\" height=\"");
    ms_sbuf_put_coord(b, by1 - by0);
    ms_sbuf_puts(b, "\" fill=\"url(#");
    ms_sbuf_put_xml(b, pfx);
    ms_sbuf_puts(b, "-grad)\" stroke=\"#888888\" stroke-width=\"0.5\"/>\n");
    for (size_t i = 0; i < ca.nt; i++) {
        double y = by1 - (ca.t[i] - lo) / (hi - lo) * (by1 - by0);
        line(b, bx + 14, y, bx + 18, y, "stroke=\"#444444\" stroke-width=\"1\"");
        ms_chart_format_tick(buf, sizeof buf, ca.t[i], ca.step);
        text(b, bx + 21, y + 4, "start", "font-size=\"11\" fill=\"#333333\"", buf);
    }
    if (c->vlabel) {
        double tx = bx + 21 + max_tick_w(&ca) + 12, ty = (by0 + by1) / 2;
        ms_sbuf_puts(b, "<text x=\"");
        ms_sbuf_put_coord(b, tx);
        ms_sbuf_puts(b, "\" y=\"");
        ms_sbuf_put_coord(b, ty);
        ms_sbuf_puts(b, "\" text-anchor=\"middle\" font-size=\"11\" fill=\"#222222\" transform=\"rotate(-90 ");
        ms_sbuf_put_coord(b, tx);
        ms_sbuf_puts(b, " ");
        ms_sbuf_put_coord(b, ty);
        ms_sbuf_puts(b, ")\">");
        ms_sbuf_put_xml(b, c->vlabel);
        ms_sbuf_puts(b, "</text>\n");
    }
    ms_sbuf_puts(b, "</svg>\n");
    return MS_OK;
}

ms_status ms_chart_render(const ms_chart *c, ms_sbuf *out, bool standalone, const char *id, ms_error *err) {
    if (c->failed) return ms_error_set(err, MS_E_NOMEM, "out of memory while building chart '%s'", c->title);
    ms_status st;
    switch (c->kind) {
    case MS_CHART_LINE: st = render_line(c, out, standalone, id, err); break;
    case MS_CHART_BAR: st = render_bar(c, out, standalone, id, err); break;
    case MS_CHART_HEATMAP: st = render_heatmap(c, out, standalone, id, err); break;
    default: return ms_error_set(err, MS_E_INTERNAL, "unknown chart kind");
    }
    if (st != MS_OK) return st;
    return ms_sbuf_status(out, err);
}
