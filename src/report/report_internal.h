/* report_internal.h - what the report keeps of each input (report_input.c
 * reads files into these; report.c turns them into charts and tables). */
#ifndef MOESIM_REPORT_INTERNAL_H
#define MOESIM_REPORT_INTERNAL_H

#include "moesim/online.h"
#include "moesim/place.h"
#include "moesim/report.h"

/* Expert statistics (from stats JSON or a trace). */
typedef struct rp_stats {
    uint32_t L, E, K;
    uint64_t tokens, requests;
    char phase[16];
    char digest[24];
    double *load;       /* [L][E] token-expert assignments */
    double *ltokens;    /* [L] tokens per layer */
    double *ratio;      /* [L] max/mean */
    double *cv;         /* [L] */
    double *hot10;      /* [L] */
    /* strongest co-activated pairs, per layer: pairs[pair_off[l] .. pair_off[l+1]) */
    size_t *pair_off;   /* [L + 1] */
    uint32_t *pair_a, *pair_b;
    double *pair_n;
    double *coact;      /* NULL or [L][E][E] full matrix (from a trace) */
} rp_stats;

/* One simulated run (a simulate file, or one entry of a compare file). */
typedef struct rp_run {
    char *label;
    char *details;      /* placement, route, presets, options as "key=value; ..." */
    char digest[24];
    /* summary (NAN when absent) */
    double imb[5];      /* mean, p50, p95, p99, max */
    double lt[5];       /* layer time, us */
    double tps, intra, inter, dropped, rerouted, dispatch, compute, combine, energy_tok;
    /* what produced it, for matching power results (NULL when unknown):
     * placement file, route, hardware preset, batch mode */
    char *pfile, *route, *hw, *batch;
    /* records (n_rec may be 0) */
    size_t n_rec;
    double *r_imb, *r_lt, *r_intra, *r_inter;
    int64_t *r_layer, *r_batch;
    uint32_t n_dev;     /* per-device loads per record, or 0 */
    double *r_dev;      /* [n_rec][n_dev] */
    uint32_t rows, cols;/* grid, 0 when unknown */
    /* per-layer aggregates given by the file (used when there are no records) */
    size_t n_pl;
    double *pl_layer, *pl_imb, *pl_lt;
} rp_run;

typedef struct rp_power {
    char *label;
    double energy_tok, avg_w, peak_w, total_j;
    /* breakdown in joules: compute, memory, communication, idle (NAN = absent) */
    double parts[4];
    size_t n_t;
    double *t_ms, *p_w; /* cluster power timeline */
    /* the simulated run it prices (NULL when unknown): from "placement",
     * "route", ... keys, else parsed from moesim power's label "FILE (ALGO,
     * route R, MODE batches, hw HW, model M)" */
    char *pfile, *route, *hw, *batch;
} rp_power;

typedef struct rp_series {
    char *name;
    size_t n;
    double *x, *y;
} rp_series;

typedef struct rp_scale {
    char *label;
    char xname[64];
    size_t n_series;
    rp_series *series;  /* power (or energy) against total parameters */
    char yunit[16];
    size_t n_walls;
    double *wall_y;     /* in yunit */
    char **wall_label;
} rp_scale;

/* A Pareto answer (place --pareto): its points. */
typedef struct rp_ppoint {
    char *label, *source;  /* source: search, init or algorithm */
    bool front;
    double t_us, p99_us, peak_w, energy_tok; /* NAN when absent */
} rp_ppoint;

typedef struct rp_pareto {
    char *axes;            /* "time, peak-power" */
    size_t n;
    rp_ppoint *pts;
} rp_pareto;

/* A replay file (moesim replay --format json): one run per policy, interval
 * and budget, with its re-placements and (unless --no-steps) its steps. */
typedef struct rp_revent {
    uint64_t point, effective; /* decision after `point` steps; first step it serves */
    uint64_t moved;            /* replicas copied */
    double bytes;
} rp_revent;

typedef struct rp_rrun {
    ms_rebalance policy;
    ms_span every, window;
    int64_t max_moves;         /* -1 when the run has none */
    ms_migration migration;
    uint64_t replacements, moved;
    double bytes, serve_us, migration_us, total_us;
    double imbalance;          /* mean over steps (NAN when null) */
    double imbalance_after;    /* from the split on (NAN without one) */
    size_t n_ev;
    rp_revent *ev;
    size_t n_steps;            /* 0 when written with --no-steps */
    double *step, *imb;        /* [n_steps]: step number, mean imbalance (NAN when null) */
} rp_rrun;

typedef struct rp_replay {
    char *trace;               /* the trace's label */
    char digest[24];
    int64_t after_request;     /* -1 = no split */
    int64_t split_step;        /* first step from the split on (-1 = none) */
    size_t n;
    rp_rrun *runs;
} rp_replay;

typedef struct rp_table {
    /* a generic table: columns and rows of text cells */
    size_t n_cols, n_rows;
    char **head;        /* [n_cols] */
    char **cell;        /* [n_rows][n_cols] */
} rp_table;

typedef struct rp_input {
    ms_report_kind kind;
    char *path;
    char *label;        /* file name without directories */
    rp_stats *stats;
    ms_placement *placement;
    size_t n_runs;
    rp_run *runs;
    size_t n_power;
    rp_power *power;    /* [n_power] */
    rp_scale *scale;
    rp_pareto *pareto;
    rp_replay *replay;
    rp_table *table;    /* sweep rows or other numbers */
    char *info;         /* a one-line description of the inputs that produced it */
} rp_input;

struct ms_report {
    size_t n;
    rp_input *in;
};

/* report_input.c */
void rp_input_clear(rp_input *in);
ms_status rp_read_file(const char *path, rp_input *in, ms_error *err);
ms_status rp_stats_from(const ms_stats *s, rp_stats **out, ms_error *err);

#endif
