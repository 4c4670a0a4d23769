/* surrogate.h - the fast objective `search` anneals on (internal; see
 * moesim/opt.h). One state per layer: the slots of that layer, every
 * training window's per-expert assignment counts, and per window a max-tree
 * over device loads. Loads are fixed-point integers (SG_SCALE per unit), so
 * the value after any sequence of incremental moves equals a recompute from
 * scratch bit for bit. */
#ifndef MOESIM_OPT_SURROGATE_H
#define MOESIM_OPT_SURROGATE_H

#include <stdbool.h>
#include <stdint.h>

#include "moesim/common.h"
#include "moesim/place.h"

#define SG_SCALE 65536.0

/* How an expert's assignments of one window spread over its replicas
 * (replicas in ascending slot order, as ms_placement_index orders them). */
typedef enum sg_route {
    SG_SPLIT = 0,    /* c / n each (split; the approximation for least-loaded, row-local, random) */
    SG_RR = 1,       /* round-robin from replica 0: ceil((c - r) / n) */
    SG_BALANCED = 2, /* fill replica 0 up to the capacity, then 1, ...; the overflow round-robin */
    SG_LEAST = 3     /* least-loaded: token by token when the window lists its assignments
                        (sg_data.aid: exact), else single-replica experts first, then each replicated
                        expert water-filled onto its least-loaded replica devices (experts by
                        descending training load; a second pass re-fills each given the
                        others), which is where per-token least-loaded routing settles when
                        tokens arrive evenly mixed. Not incremental: a move recomputes every
                        window (O(windows x slots)) */
} sg_route;

/* What a device's load counts. */
typedef enum sg_unit {
    SG_ASSIGN = 0,   /* token-expert assignments */
    SG_MESH = 1,     /* mesh compute: unit_us x ceil(x / chunk) per instance */
    SG_ROOF = 2      /* roofline: max(x flops time, weight read + x activation time) per instance */
} sg_unit;

/* Power objectives (sg_params.pw): per window and device the state is the
 * expert time T (SG_ROOF units, fixed point), the assignments X (fixed
 * point) and the active instances N; with the window's dense time and
 * energy of the device (placement-independent: where tokens start) they give
 * its busy time t, FLOP energy E_f and HBM energy E_m at full clock, its
 * power C = E_f / t, M = E_m / t, and under a per-GPU cap G its clock f
 * (idle + C f^alpha + M f = G, sg_clock). A row or cluster budget scales the
 * clocks of its devices by one common factor g (idle x devices + sum C f^alpha
 * g^alpha + sum M f g = budget; exact when no per-GPU cap binds, where the
 * simulator's common ceiling is the same; rows first, then the cluster).
 * Window metrics: time = max_d dense_d / clock_d + max_d expert_d / clock_d
 * (us), power = idle x devices + sum_d C_d clock_d^alpha + M_d clock_d (W:
 * every device at its compute power at once, as ms_power's peak), energy =
 * sum_d E_f,d clock_d^(alpha - 1) + E_m,d + idle x devices x time (J). The
 * value: sum_k w[k] x aggregate_k / norm[k] + traffic, aggregates time: mean
 * (or the worst tail), power: mean of the worst ceil(peak_tail B) windows,
 * energy: mean. Derived per-device figures and row sums are fixed point, so
 * incremental moves equal a recompute from scratch bit for bit. */
typedef struct sg_power {
    double tok_flop_j;      /* FLOP energy of one assignment */
    double tok_hbm_j;       /* HBM energy of one assignment's activations */
    double inst_hbm_j;      /* HBM energy of an active instance's weight read */
    double idle_w, alpha, min_clock;
    double gpu_w, row_w, cluster_w; /* INFINITY = none */
    double w[3];            /* weights of time, peak power, energy */
    double norm[3];         /* their scales (> 0; 1 = raw figures) */
    double peak_tail;       /* (0, 1]: share of worst windows the power aggregate averages */
    const double *clock_tab;/* sg_clock_table_new(alpha, min_clock), or NULL: Newton's method */
} sg_power;

#define SG_CLOCK_NR 33  /* table rows: memory share of the dynamic power, 0..1 */
#define SG_CLOCK_NQ 129 /* table columns: the allowed share of it, from the min_clock floor to 1 */

/* The table sg_clock interpolates (1 + SG_CLOCK_NR x SG_CLOCK_NQ doubles), or
 * NULL when out of memory. Release with ms_free. */
double *sg_clock_table_new(double alpha, double min_clock);
/* The clock f in [min_clock, 1] with C f^alpha + M f = K (1 when C + M <= K,
 * min_clock when even that draws more): the table's bilinear value refined by
 * one Newton step, or Newton's method from 1 without a table. */
double sg_clock(const sg_power *pw, double C, double M, double K);

/* The row-crossing term. */
typedef enum sg_traffic {
    SG_TR_NONE = 0,
    SG_TR_CROSS = 1,    /* share of an expert's replicas outside the token's row */
    SG_TR_ROWLOCAL = 2, /* 1 when the expert has no replica in the token's row */
    SG_TR_HOPS = 3      /* mean ring distance from the token's row to the replicas' rows */
} sg_traffic;

typedef struct sg_params {
    ms_cluster cl;
    uint32_t n_logical;     /* columns of the counts; ids >= n_routed are not movable */
    uint32_t n_routed;
    int32_t shared_id;      /* the shared expert (its slots never move), or -1 */
    sg_route route;
    double cf;              /* SG_BALANCED: capacity factor (0 = no capacity: all to replica 0) */
    uint32_t keff;          /* assignments per token (top-k + 1 with a shared expert) */
    uint32_t n_inst;        /* filled slots (instances) of the layer: for the capacity */
    sg_unit unit;
    double chunk, unit_us;  /* SG_MESH */
    double tok_flops_us, inst_bytes_us, tok_bytes_us; /* SG_ROOF */
    double tail;            /* 0: mean over windows; else the mean of the worst ceil(tail B) */
    bool time_weights;      /* false: window value = max / mean device load; true: max (in units) */
    sg_traffic traffic;
    double traffic_weight;
    bool allow_dup;         /* moves may put two replicas of one expert on one device */
    const sg_power *pw;     /* power objectives (unit must be SG_ROOF), or NULL: the load objective */
} sg_params;

/* A layer's training windows (the caller keeps them alive). */
typedef struct sg_data {
    uint32_t B;
    const uint32_t *cnt;    /* [B][n_logical] assignments per expert (shared: tokens) */
    const uint32_t *ntok;   /* [B] tokens per window */
    const double *orow;     /* [rows][n_logical] assignments per origin row, or NULL */
    /* SG_LEAST, optional: window b's assignments in routing order (each token's
     * top-k, then the shared expert) are aid[aoff[b] .. aoff[b+1]); a window
     * with a list is routed token by token exactly as the simulator's
     * least-loaded policy does (replicas in ascending slot order, the least
     * loaded device first, ties to the earlier replica), the others are
     * water-filled. NULL = water-fill every window. */
    const uint64_t *aoff;   /* [B + 1] */
    const uint16_t *aid;
    /* power objectives: per window and device [B][D], the dense work of the
     * tokens that start there: time at full clock (us), FLOP and HBM energy
     * (J); NULL = none */
    const double *dense_us, *dense_fj, *dense_mj;
} sg_data;

typedef enum sg_kind { SG_SWAP = 0, SG_REPLICA = 1 } sg_kind;

/* SG_SWAP: exchange the experts of slots a and b (different devices; one may
 * be empty). SG_REPLICA: slot a's expert (which has >= 2 replicas) gives the
 * slot to expert e. */
typedef struct sg_move {
    sg_kind kind;
    uint32_t a, b;
    int32_t e;
} sg_move;

typedef struct sg_state sg_state;

/* Builds the state for one layer's slots [P] (copied). Loads are fixed-point
 * sums for SG_SPLIT, SG_RR and SG_BALANCED (moves update the touched devices
 * of every window's max-tree); SG_LEAST recomputes windows in doubles. Fails MS_E_INPUT on
 * ids out of range or a shape mismatch, MS_E_NOMEM. */
ms_status sg_new(const sg_params *prm, const sg_data *dat, const int32_t *slots, sg_state **out, ms_error *err);
void sg_free(sg_state *s);

double sg_value(const sg_state *s);
/* Power objectives: the aggregates of time, power and energy (before the
 * weights and norms); zeros otherwise. */
void sg_metrics(const sg_state *s, double m[3]);
const int32_t *sg_slots(const sg_state *s);
uint32_t sg_nrep(const sg_state *s, uint32_t e);
/* The device with the largest load in window b (lowest index on ties). */
uint32_t sg_argmax_device(sg_state *s, uint32_t b);
/* Window b's current value (its maximum device load, weighted). */
double sg_window_value(const sg_state *s, uint32_t b);
/* Whether the move is allowed in the current state. */
bool sg_move_ok(const sg_state *s, const sg_move *m);
/* The value after the move (the state is unchanged). The move must be ok. */
double sg_eval(sg_state *s, const sg_move *m);
/* Performs the move (must be ok). */
void sg_apply(sg_state *s, const sg_move *m);

/* The value of slots computed from scratch, without trees or incremental
 * state (a check for the incremental path). NAN on bad input or no memory. */
double sg_full_value(const sg_params *prm, const sg_data *dat, const int32_t *slots);

/* Load (in units, not scaled) of replica r of n holding c assignments of a
 * window of ntok tokens: exposed for tests. */
double sg_instance_load(const sg_params *prm, uint32_t c, uint32_t n, uint32_t r, uint32_t ntok);

#endif
