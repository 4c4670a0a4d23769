/*
 * moesim/stats.h - stage 2: expert load statistics of a trace.
 *
 * Per layer and phase (prefill rows, decode rows, or all): load counts,
 * max/mean and min/mean, coefficient of variation, hottest-10% share,
 * never-chosen experts, per-window variability and co-activation.
 */
#ifndef MOESIM_STATS_H
#define MOESIM_STATS_H

#include <stdbool.h>
#include <stdio.h>
#include "moesim/common.h"
#include "moesim/trace.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ms_phase {
    MS_PHASE_ALL = 0,
    MS_PHASE_PREFILL = 1,
    MS_PHASE_DECODE = 2
} ms_phase;

/* "all", "prefill", "decode". */
const char *ms_phase_name(ms_phase p);
/* Parses a phase name; MS_E_INPUT if unknown. */
ms_status ms_phase_parse(const char *s, ms_phase *out, ms_error *err);

typedef struct ms_pair {
    uint16_t a, b;     /* a < b */
    uint64_t count;    /* tokens that chose both */
} ms_pair;

typedef struct ms_layer_stats {
    uint32_t layer;
    uint64_t tokens;            /* rows of this phase */
    uint64_t *expert_load;      /* [n_experts] token-expert assignments */
    double mean, max_mean_ratio, min_mean_ratio, cv, hot10_share;
    uint32_t never_chosen;
    uint32_t hottest;           /* expert id with the largest load */
    /* windows of `window` consecutive tokens of this phase (in trace order);
     * the last partial window is dropped unless it is the only one */
    uint32_t n_windows;
    double *win_mean;           /* [n_experts] mean load per window */
    double *win_std;            /* [n_experts] population std over windows */
    double *win_p95;            /* [n_experts] 95th percentile (nearest rank) */
    uint64_t *win_load;         /* [n_windows][n_experts] per-window loads */
    /* co-activation, when requested: coact[i*n_experts+j] tokens choosing
     * both i and j (symmetric, diagonal = load) */
    uint64_t *coact;
    uint32_t n_top_pairs;
    ms_pair *top_pairs;         /* strongest pairs, descending count, ties by (a, b) */
} ms_layer_stats;

typedef struct ms_stats {
    uint32_t n_layers, n_experts, top_k;
    uint64_t n_requests;
    uint64_t tokens;            /* rows of this phase (per layer) */
    ms_phase phase;
    uint32_t window;            /* tokens per window */
    uint64_t digest;            /* of the trace */
    ms_layer_stats *layers;     /* [n_layers] */
} ms_stats;

typedef struct ms_stats_opts {
    ms_phase phase;
    uint32_t window;            /* tokens per window (default 1024); 0 = no windows */
    bool coact;                 /* compute co-activation matrices */
    uint32_t top_pairs;         /* pairs to list per layer (default 10) */
    int threads;                /* 0 = all */
} ms_stats_opts;

void ms_stats_opts_default(ms_stats_opts *o);

/* Computes statistics. MS_E_INPUT when the phase has no rows (e.g. decode on
 * a prefill-only trace); MS_E_NOMEM. */
ms_status ms_stats_compute(const ms_trace *t, const ms_stats_opts *o, ms_stats **out, ms_error *err);
void ms_stats_free(ms_stats *s);

/* Mean loads [layers][experts] as a load matrix (token counts). */
ms_status ms_stats_to_loads(const ms_stats *s, ms_loads **out, ms_error *err);

/* Writers. json: top level layers, experts, top_k, tokens, requests, phase,
 * window, digest, and per layer layer, tokens, expert_load, max_mean_ratio,
 * min_mean_ratio, cv, hot10_share, never_chosen, windows{...}, top_pairs.
 * csv: one line per (layer, expert). table: a per-layer summary for people.
 * MS_E_IO on write failure. */
ms_status ms_stats_write_json(const ms_stats *s, FILE *fp, ms_error *err);
ms_status ms_stats_write_csv(const ms_stats *s, FILE *fp, ms_error *err);
ms_status ms_stats_write_table(const ms_stats *s, FILE *fp, ms_error *err);

#ifdef __cplusplus
}
#endif
#endif
