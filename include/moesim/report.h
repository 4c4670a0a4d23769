/*
 * moesim/report.h - stage 6: a self-contained HTML report of results.
 *
 * A report collects result files that the other commands write and turns
 * them into one HTML page (inline SVG charts and CSS, no scripts, no network)
 * plus, optionally, every chart as a standalone SVG file. Each file's kind is
 * detected from its keys:
 *  - stats      `moesim stats --format json` (per_layer[].expert_load ...);
 *  - placement  `moesim place -o FILE` (moesim, SGLang or moe-balance JSON);
 *  - sim        `moesim simulate --format json` (summary{imbalance, layer_us,
 *               ...}, optional records[] with per-device loads);
 *  - compare    `moesim compare --format json` (a list of such runs);
 *  - power      `moesim power --format json` (energy breakdown, timeline);
 *  - scale      `moesim scale --format json` (model family, power wall);
 *  - sweep      `moesim sweep -o FILE.json` (rows of a parameter grid);
 *  - pareto     `moesim place --algo search --pareto AXES -o FILE.json` (points
 *               with layer time, peak power, energy per token, front or not);
 *  - replay     `moesim replay --format json` ("format": "moesim-replay": runs
 *               per re-placement policy and interval with their events and
 *               steps), read strictly;
 *  - other      any other JSON object: its top-level numbers are tabulated.
 * Sections whose inputs are missing are left out; keys a file lacks are
 * skipped. A trace (loaded by the caller) can be added as statistics with
 * its full co-activation matrices.
 *
 * The same inputs and options always give the same bytes.
 */
#ifndef MOESIM_REPORT_H
#define MOESIM_REPORT_H

#include <stdbool.h>
#include <stdio.h>
#include "moesim/common.h"
#include "moesim/stats.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ms_report_kind {
    MS_REPORT_STATS = 0,
    MS_REPORT_PLACEMENT,
    MS_REPORT_SIM,
    MS_REPORT_COMPARE,
    MS_REPORT_POWER,
    MS_REPORT_SCALE,
    MS_REPORT_SWEEP,
    MS_REPORT_PARETO,
    MS_REPORT_REPLAY,
    MS_REPORT_OTHER
} ms_report_kind;

/* "stats", "placement", "sim", ... Never NULL. */
const char *ms_report_kind_name(ms_report_kind k);

typedef struct ms_report ms_report;

typedef struct ms_report_opts {
    const char *title;     /* page title (default "moesim report") */
    int64_t layer;         /* layer of the device heatmaps, load profile and co-activation
                              matrix; -1 (default) = the layer with the largest expert
                              max/mean ratio in the statistics the report uses (the first
                              with co-activation matrices, else the first), else 0 */
    uint32_t coact_max;    /* hottest experts shown in the co-activation matrix (default 48) */
} ms_report_opts;

/* Defaults as documented above. */
void ms_report_opts_default(ms_report_opts *o);

/* An empty report. MS_E_NOMEM. */
ms_status ms_report_new(ms_report **out, ms_error *err);
void ms_report_free(ms_report *r);

/* Reads a result file, detects its kind (written to *kind when not NULL)
 * and keeps what the report needs. Fails MS_E_IO when unreadable,
 * MS_E_INPUT (naming the file) when it is not JSON, not an object or list,
 * or a recognised kind is malformed (e.g. a placement that fails its
 * invariants); MS_E_NOMEM. */
ms_status ms_report_add_file(ms_report *r, const char *path, ms_report_kind *kind, ms_error *err);

/* Adds statistics computed by the caller (e.g. from a trace given on the
 * command line), copying the loads and, when present, the co-activation
 * matrices. label names it in the report. MS_E_NOMEM. */
ms_status ms_report_add_stats(ms_report *r, const ms_stats *s, const char *label, ms_error *err);

/* Number of inputs added so far. */
size_t ms_report_input_count(const ms_report *r);

/* Writes the HTML page to fp. MS_E_INPUT when nothing was added or the
 * layer option is out of range for every input; MS_E_IO on a write error;
 * MS_E_NOMEM. */
ms_status ms_report_write_html(const ms_report *r, const ms_report_opts *o, FILE *fp, ms_error *err);

/* Writes every chart of the page as DIR/NN-name.svg (DIR created; each file
 * atomically) and stores the number written in *count (may be NULL).
 * Errors as ms_report_write_html, MS_E_IO when DIR cannot be made. */
ms_status ms_report_write_svgs(const ms_report *r, const ms_report_opts *o, const char *dir, size_t *count,
                               ms_error *err);

#ifdef __cplusplus
}
#endif
#endif
