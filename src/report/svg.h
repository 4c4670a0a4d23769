/* svg.h - a small chart library that writes SVG: line charts (and CDFs,
 * with marks of events on the x axis, rings around points and a strip of
 * bars beneath), bar charts (grouped or stacked, with marked bars), and
 * heatmaps (device grids, co-activation matrices). Every chart has a title,
 * axes with ticks, units and labels, and a legend where there is more than
 * one series.
 *
 * Build a chart with ms_chart_new and the setters (each copies what it is
 * given), then ms_chart_render appends the SVG text to a buffer. The same
 * chart always renders to the same bytes: numbers are formatted with fixed
 * precision and nothing depends on time, locale settings or addresses.
 * Setters never fail loudly: on out-of-memory the chart remembers it and
 * ms_chart_render returns MS_E_NOMEM. */
#ifndef MOESIM_REPORT_SVG_H
#define MOESIM_REPORT_SVG_H

#include <stdbool.h>
#include <stddef.h>
#include "moesim/common.h"
#include "report/sbuf.h"

typedef enum ms_chart_kind {
    MS_CHART_LINE = 0,   /* series of (x, y) points joined by lines (or steps) */
    MS_CHART_BAR = 1,    /* categories along x, one bar per series (grouped or stacked) */
    MS_CHART_HEATMAP = 2 /* a matrix of coloured cells with a colour bar */
} ms_chart_kind;

typedef struct ms_chart ms_chart;

/* A new chart of `kind` titled `title` (copied), 640 x 360 pixels. NULL
 * when out of memory. */
ms_chart *ms_chart_new(ms_chart_kind kind, const char *title);
void ms_chart_free(ms_chart *c);

/* Pixel size (clamped to 160..4000). */
void ms_chart_set_size(ms_chart *c, int width, int height);
/* A second line under the title (small, grey), e.g. the data source. */
void ms_chart_set_note(ms_chart *c, const char *note);
/* Axis titles; unit (may be NULL/"") is shown in parentheses. log = log10
 * scale (line charts; non-positive values are then left out). */
void ms_chart_set_x_axis(ms_chart *c, const char *label, const char *unit, bool log);
void ms_chart_set_y_axis(ms_chart *c, const char *label, const char *unit, bool log);
/* Forces an axis range (NAN = automatic for that end). */
void ms_chart_set_x_range(ms_chart *c, double lo, double hi);
void ms_chart_set_y_range(ms_chart *c, double lo, double hi);

/* Line charts: a series of n points (x NULL = 0, 1, 2, ...). step draws a
 * staircase (for CDFs); points draws a marker on every point (n <= 64). */
void ms_chart_add_line(ms_chart *c, const char *name, const double *x, const double *y, size_t n, bool step,
                       bool points);
/* Line charts: the empirical CDF of v[0..n) as a staircase, y in [0, 1];
 * more than 512 values are thinned to 512 evenly spaced ranks (plus the
 * largest). Non-finite values are ignored. */
void ms_chart_add_cdf(ms_chart *c, const char *name, const double *v, size_t n);
/* Reference lines across the plot with a label, e.g. a power wall. */
void ms_chart_add_vline(ms_chart *c, double x, const char *label);
void ms_chart_add_hline(ms_chart *c, double y, const char *label);
/* Line charts: a mark on the x axis at x in the colour of series `series`
 * (an index in the order added), e.g. an event: a triangle above the plot
 * and, unless the chart has more than 40 of them, a thin line across the
 * plot (and the strip); `tip` (may be NULL) is its tooltip. Marks of several
 * series at one x stand side by side. Each renders as one element of class
 * "xmark". Ignored at render time when series is out of range. */
void ms_chart_add_xmark(ms_chart *c, size_t series, double x, const char *tip);
/* Line charts: a ring around the point (x, y) in the colour of series
 * `series`, e.g. the best point of a curve; tip (may be NULL) its tooltip.
 * Each renders as one element of class "ring". */
void ms_chart_add_ring(ms_chart *c, size_t series, double x, double y, const char *tip);
/* Line charts: a strip of bars beneath the plot, sharing its x axis, height
 * pixels tall (16..1000; the chart grows by it plus a gap), with its own
 * linear y axis from 0 titled label (unit). */
void ms_chart_set_strip(ms_chart *c, int height, const char *label, const char *unit);
/* A bar of the strip at x, value y (>= 0; others are left out), in the colour
 * of series `series`; bars of different series at one x stand side by side.
 * tip (may be NULL) is its tooltip. */
void ms_chart_add_strip_bar(ms_chart *c, size_t series, double x, double y, const char *tip);
/* Draws series `series` (an index in the order added; others are ignored)
 * in palette colour k and its dash (ms_chart_color(k)) instead of its own,
 * so that a name keeps its colour across charts. */
void ms_chart_set_series_color(ms_chart *c, size_t series, size_t k);

/* Bar charts: category names (copied) and one value per category per
 * series. stacked puts the series on top of each other. */
void ms_chart_set_categories(ms_chart *c, const char *const *names, size_t n);
void ms_chart_add_bars(ms_chart *c, const char *name, const double *v, size_t n);
void ms_chart_set_stacked(ms_chart *c, bool stacked);
/* Marks categories (mark[i] != 0) of the first series: drawn in an accent
 * colour, listed in the legend as mark_label. */
void ms_chart_set_marks(ms_chart *c, const unsigned char *mark, size_t n, const char *mark_label);

/* Heatmaps: rows x cols values, row-major (NAN = empty cell), optional row
 * and column labels (NULL = indices), and the colour bar's title. */
void ms_chart_set_matrix(ms_chart *c, size_t rows, size_t cols, const double *v,
                         const char *const *row_labels, const char *const *col_labels, const char *value_label);
/* Writes each cell's value inside it when the cells are large enough. */
void ms_chart_set_cell_values(ms_chart *c, bool show);

/* Number of series (lines or bar series) added so far. */
size_t ms_chart_series_count(const ms_chart *c);

/* Appends the chart as an <svg> element to out. standalone adds the XML
 * declaration and namespace for a file of its own. id (may be NULL) becomes
 * the element id and prefixes internal ids. MS_E_NOMEM when a setter or the
 * rendering ran out of memory; MS_E_INPUT when the chart has nothing to draw
 * (no series, no categories or no matrix). */
ms_status ms_chart_render(const ms_chart *c, ms_sbuf *out, bool standalone, const char *id, ms_error *err);

/* Colour of series i (hex "#rrggbb"); the palette is colour-blind safe and
 * repeats after 8 with dashes. Never NULL. */
const char *ms_chart_color(size_t i);

/* "Nice" axis ticks for [lo, hi]: step 1, 2 or 5 x 10^k giving about
 * `target` ticks; writes at most max ticks into t and returns the count.
 * lo and hi are widened outwards to the first and last tick. */
size_t ms_chart_nice_ticks(double *lo, double *hi, int target, double *t, size_t max);
/* Formats a tick value for a given tick step: enough decimals for the step,
 * thousands as k, M, G, T. */
void ms_chart_format_tick(char *buf, size_t len, double v, double step);

#endif
