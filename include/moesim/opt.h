/*
 * moesim/opt.h - stage 5: placement optimisation against the simulator.
 *
 * `search` improves a placement (the output of any placement algorithm) for
 * the very simulation it will later be judged by. Per layer it runs simulated
 * annealing over two kinds of moves:
 *  - slot swap: exchange the experts of two slots on different devices;
 *  - replica move: take a replica from an expert that has two or more and
 *    give its slot to another expert (the number of filled slots is kept);
 * scored by a fast surrogate computed on the training batches (the batches
 * the simulator forms, plus the same requests in other orders until there
 * are min_windows of them): per batch the maximum device load under the
 * chosen routing, weighted (by 1 / mean load for the imbalance objectives),
 * averaged (or the mean of the worst batches for the p95/p99 objectives),
 * plus, with a weight, the share of assignments that cross rows. Split,
 * round-robin and balanced-replicas spread an expert's assignments over its
 * replicas exactly as the simulator does (random as split); a move touches
 * two experts, so it updates only the devices that hold them, in a max-tree
 * per batch, never recomputing. Least-loaded and row-local routing are
 * modelled by routing each small batch token by token (exactly the
 * simulator's least-loaded) and by water-filling large ones; that costs a
 * pass over the batches per move, so with large batches the even chains
 * anneal on the split surrogate only and the odd ones spend half their time
 * on it, then refine on the least-loaded one (when every batch is small, all
 * chains anneal on the least-loaded one). The device load counts assignments (imbalance
 * objectives), mesh compute chunks or roofline expert time (time
 * objectives). Then the best placement of each chain, and the initial one,
 * are simulated with ms_sim_run on the training batches; per layer the best
 * is kept, the combination is simulated too, and the result is never worse
 * than the initial placement on the training objective (the initial
 * placement is returned when nothing beats it).
 *
 * Power objectives (energy, peak-power, time-under-cap, mix; roofline cost
 * model only) anneal on a surrogate of the device power as well
 * (opt/surrogate.h, "power objectives"): per window and device the expert
 * time, assignments and active instances, updated by a move for the devices
 * it touches; with the dense work of the tokens starting there they give the
 * device's busy time, FLOP and HBM energy, its power at full clock and its
 * clock under the per-GPU cap (a tabulated root of idle + C f^alpha + M f =
 * cap, refined by one Newton step), and per row the sums that scale the clocks
 * under a row or cluster budget; per window the cluster's power (peak-power),
 * the energy with idle power over the layer time (energy), and the throttled
 * dense + expert time (time-under-cap). Candidates are then simulated with the
 * caps and priced by the power model (ms_power_compute), as for the other
 * objectives. The ILP (place --algo ilp) cannot take these objectives: it
 * minimises the maximum device load, a linear program, while a device's
 * power is energy over time (a ratio), its clock under a cap the root of a
 * polynomial, and the cluster's peak a sum of such ratios; with every slot
 * filled and no cap the only placement-dependent terms of the energy are the
 * idle power of waiting devices (the ILP's max-load objective, up to the
 * dense and communication times it does not model), the weight reads of
 * replicas that receive tokens, and the row-crossing traffic.
 *
 * Determinism: every layer and chain draws from its own seed, and layers are
 * searched independently, so the same inputs and seed give the same
 * placement whatever the thread count, as long as the iteration budget (not
 * the time limit) ends the search. When the time limit cuts a chain short
 * the result depends on the machine's speed; the metadata says so.
 */
#ifndef MOESIM_OPT_H
#define MOESIM_OPT_H

#include <stdbool.h>
#include "moesim/common.h"
#include "moesim/place.h"
#include "moesim/power.h"
#include "moesim/sim.h"
#include "moesim/trace.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ms_search_objective {
    MS_OBJ_MEAN = 0,          /* mean of the simulated layer time */
    MS_OBJ_P95 = 1,           /* p95 of the layer time (nearest rank over records) */
    MS_OBJ_P99 = 2,           /* p99 of the layer time */
    MS_OBJ_IMBALANCE = 3,     /* mean imbalance (max / mean device load per (batch, layer)) */
    MS_OBJ_IMBALANCE_P99 = 4, /* p99 of the imbalance */
    MS_OBJ_ENERGY = 5,        /* energy per token (J): the power model on the simulation */
    MS_OBJ_PEAK_POWER = 6,    /* the highest (batch, layer) instantaneous cluster power (W, ms_power's peak_w) */
    MS_OBJ_TIME_UNDER_CAP = 7,/* mean layer time with the caps applied (throttled clocks) */
    MS_OBJ_MIX = 8            /* mix[0] x layer time + mix[1] x peak power + mix[2] x energy per
                                 token, each over the initial placement's value */
} ms_search_objective;

/* "mean", "p95", "p99", "imbalance", "imbalance-p99", "energy", "peak-power",
 * "time-under-cap", "mix"; never NULL. */
const char *ms_search_objective_name(ms_search_objective o);
/* Parses one of those names; MS_E_INPUT listing them otherwise. */
ms_status ms_search_objective_parse(const char *s, ms_search_objective *out, ms_error *err);

typedef struct ms_search_opts {
    /* The initial placement: `init` when not NULL (it must match the trace's
     * layers and experts and place.cluster), else ms_place_run with
     * place.algo = init_algo on the training trace's statistics. place also
     * carries the cluster, shared expert and replica budget (redundant). */
    const ms_placement *init;
    const char *init_algo;        /* default "eplb" */
    ms_place_opts place;
    /* What is simulated: the same options as `moesim simulate`. sim.hw and
     * sim.model may be NULL: they are then loaded from hw_name (default
     * h100-sxm, roofline only) and model_name (default: guessed from the
     * trace's experts and top-k). sim.layer >= 0 optimises that layer only
     * (the others keep the initial placement). */
    ms_batch_opts batch;
    ms_sim_opts sim;
    const char *hw_name, *model_name;
    ms_search_objective objective;  /* default MS_OBJ_IMBALANCE */
    bool origin_set;              /* sim.origin was given (ms_search_opts_set sets it): roofline
                                     then insists on MS_ORIGIN_DP, as moesim simulate does */
    /* Search effort. */
    double time_limit_s;          /* wall-clock cap for the whole call (default 10) */
    uint64_t iterations;          /* moves tried per layer over all chains (0 = auto: 400 x slots
                                     per layer, at least 20000; chains that refine on the
                                     least-loaded surrogate add 1/8 of theirs there); the time
                                     limit may stop earlier */
    uint32_t chains;              /* independent annealing chains per layer (default 2) */
    double traffic_weight;        /* surrogate: weight of the share of assignments crossing rows
                                     (hops for the mesh model), relative to the initial placement's
                                     surrogate value (default -1: 0 for the imbalance objectives and
                                     peak-power, 0.1 for the time objectives, time-under-cap and
                                     mix's time part; energy and mix's energy part price each
                                     crossing assignment at its dispatch + combine bytes x (network
                                     - NVLink) pJ/bit) */
    uint32_t min_windows;         /* surrogate: extra batch plans (other request orders of the
                                     training requests) until there are this many batches
                                     (default 64; at most 16 plans; per-request batching has one) */
    uint64_t seed;
    int threads;                  /* 0 = all cores */
    /* Power (roofline only). Energy coefficients: `energy` when not NULL, else
     * energy_name, else presets/energy-<hw preset name>.json; loaded when the
     * objective is a power objective or a cap was set (cap_set). Caps apply to
     * every simulation of the search (ms_power_throttle); cap.gpu_w NAN
     * (default) = the coefficients' tdp_w, which never binds the roofline. */
    const ms_energy_coeffs *energy;
    const char *energy_name;
    ms_power_cap cap;
    bool cap_set;
    double mix[3];                /* MS_OBJ_MIX: weights of time, peak power, energy (>= 0, not all 0) */
} ms_search_opts;

/* Defaults: init NULL, init_algo "eplb", place/batch/sim at their own
 * defaults (place.cluster must be set), hw_name/model_name NULL, objective
 * imbalance, time_limit_s 10, iterations auto, chains 2, traffic_weight -1,
 * min_windows 64, seed 0, threads 0, energy NULL, cap {NAN, INFINITY,
 * INFINITY} unset, mix {1, 0, 0}. */
void ms_search_opts_default(ms_search_opts *o);

/* Sets one option from text, by its command-line name without dashes:
 * init, objective, iterations, chains, traffic-weight, min-windows,
 * cost-model, batch, batch-tokens, decode-batch, dp, route, row-local-slack,
 * capacity-factor, overflow, origin-rows, mesh-table, hw, model, overlap,
 * sim-seed (batch.seed and sim.seed: simulate's --seed), energy,
 * gpu-power-cap (W or none), row-power-cap, cluster-power-cap (kW or none),
 * mix (three weights "T,P,E").
 * Values are parsed as `moesim simulate` parses them (the strings hw, model
 * and init are kept by pointer). MS_E_INPUT naming the option on a bad value
 * or an unknown name. */
ms_status ms_search_opts_set(ms_search_opts *o, const char *name, const char *value, ms_error *err);
/* The names ms_search_opts_set knows, NULL-terminated. */
const char *const *ms_search_option_names(void);

/* Runs the search on the training trace `train`. in: the statistics the
 * initial algorithm sees (NULL = computed from train: all rows, windows of
 * 1024 tokens, co-activation when the algorithm needs it). The result has the
 * initial placement's layers and slot budget (filled slots per layer, the
 * shared expert's slots untouched). Its metadata: algorithm "search"; params
 * (JSON: init, objective, route, cost model, batch mode, layers, surrogate
 * windows, chains, moves tried, seed, time limit, whether the time limit cut
 * the search, surrogate values before and after, simulations run, the initial
 * placement's training objective, and which candidate was kept: init, chain
 * or per-layer); objective = the training objective (ms_search_objective_value
 * of ms_sim_run on the training batches); lower_bound = a lower bound on that
 * objective for the imbalance objectives (per batch: the largest of the mean
 * device load, the hottest expert's assignments over the most replicas the
 * budget allows it, and the shared expert's per replica, rounded up to whole
 * assignments unless routing splits, over the mean device load; NAN for the
 * time objectives and when capacity can drop or move assignments);
 * layer_bound = the initial algorithm's per-layer bounds on the maximum device
 * load (same budget); runtime_s = the whole call; trace_digest = train's.
 * The result's training objective is <= the initial placement's: the initial
 * placement is simulated first and returned when no candidate beats it, also
 * when the time limit leaves no room to simulate candidates. The time limit
 * covers everything but cannot undercut one simulation of the initial
 * placement. Fails MS_E_INPUT on options the simulator or the initial
 * algorithm rejects, a trace without rows of the batch mode's phase, an init
 * that does not match the trace; MS_E_NOMEM; MS_E_UNSUPPORTED as ms_place_run. */
ms_status ms_search_run(const ms_trace *train, const ms_place_input *in, const ms_search_opts *o,
                        ms_placement **out, ms_error *err);

/* Objective value of a finished simulation: the summary's layer_us mean, p95
 * or p99 (time-under-cap: the mean), or imbalance mean or p99; NAN for the
 * objectives that need the power model (energy, peak-power, mix: see
 * ms_search_evaluate). */
double ms_search_objective_value(const ms_sim_summary *s, ms_search_objective o);

/* What one placement costs on a trace, simulated as the search simulates
 * (o's batches, simulation options and caps, the power model with o's
 * energy coefficients): */
typedef struct ms_search_metrics {
    double layer_us_mean, layer_us_p99;
    double imbalance_mean;
    double peak_w;             /* highest (batch, layer) instantaneous cluster power */
    double energy_per_token_j;
    double energy_j;
    double throttled_us;       /* mean per record (0 without caps) */
    double clock_min;
} ms_search_metrics;

/* Simulates p on t's batches (o->batch) with o's simulation options, presets
 * and caps, and prices it with the power model. Fails as ms_search_run on
 * bad options (MS_E_INPUT also for the mesh model: it has no FLOPs), an
 * unreadable preset, a placement that does not fit t; MS_E_NOMEM. */
ms_status ms_search_evaluate(const ms_trace *t, const ms_placement *p, const ms_search_opts *o,
                             ms_search_metrics *out, ms_error *err);

/* ------------------------------------------------------------ Pareto */

/* The axes of a Pareto answer (all minimised). */
typedef enum ms_pareto_axis {
    MS_AXIS_TIME = 0,   /* mean layer time (with the caps), us */
    MS_AXIS_PEAK = 1,   /* peak cluster power, W */
    MS_AXIS_ENERGY = 2  /* energy per token, J */
} ms_pareto_axis;

/* "time", "peak-power", "energy"; never NULL. */
const char *ms_pareto_axis_name(ms_pareto_axis a);
/* Parses "A,B" or "A,B,C" (distinct axes: time, peak-power, energy) into
 * axes[3]; *n gets 2 or 3. MS_E_INPUT naming the axes otherwise. */
ms_status ms_pareto_axes_parse(const char *s, ms_pareto_axis axes[3], uint32_t *n, ms_error *err);

/* The value of metrics m on axis a. */
double ms_pareto_axis_value(const ms_search_metrics *m, ms_pareto_axis a);
/* true when a is no worse than b on every axis and better on one. */
bool ms_pareto_dominates(const ms_search_metrics *a, const ms_search_metrics *b, const ms_pareto_axis *axes,
                         uint32_t n);

typedef struct ms_pareto_opts {
    ms_pareto_axis axes[3];
    uint32_t n_axes;            /* 2 or 3 */
    uint32_t searches;          /* scalarised searches (>= 2; 0 = default: 5 for two axes, 7 for three) */
    const char *const *algos;   /* other algorithms placed and evaluated as points (NULL-terminated; NULL =
                                   every algorithm of ms_place_algorithms() but ilp); those that fail are
                                   listed as skipped */
} ms_pareto_opts;

typedef struct ms_pareto_point {
    char label[64];             /* "search 0.75 time + 0.25 peak-power", "eplb", ... */
    char source[16];            /* "search", "init" (o's initial placement) or "algorithm" */
    double mix[3];              /* search points: the weights of time, peak power, energy */
    ms_search_metrics m;
    bool front;                 /* not dominated by any point on the axes */
    ms_placement *placement;
} ms_pareto_point;

typedef struct ms_pareto {
    ms_pareto_axis axes[3];
    uint32_t n_axes;
    size_t n;
    ms_pareto_point *pts;
    size_t n_skipped;
    char (*skipped)[256];       /* "algorithm: reason" */
} ms_pareto;

/* Placements along a Pareto front on the training trace: search with the
 * mix objective (each axis over the initial placement's value) for weights
 * spread over the axes (two axes: 1, 0.75, 0.5, 0.25, 0 on the first and the
 * rest on the second, or as many as po->searches; three: the corners, edge
 * midpoints and centre of the simplex), plus the initial placement and every
 * other algorithm's (po->algos) placed on in's statistics, each simulated
 * and priced as ms_search_evaluate does (o's options and caps); then each
 * point is marked front when no other point dominates it on po's axes. Every
 * search runs with o's options (its time limit and iterations each; seeds
 * o->seed + k). The front holds a point at least as good as the initial
 * placement on every axis (the initial placement, or one that dominates it).
 * Fails MS_E_INPUT on bad axes, fewer than 2 searches, in NULL, and as
 * ms_search_run; MS_E_NOMEM. */
ms_status ms_pareto_run(const ms_trace *train, const ms_place_input *in, const ms_search_opts *o,
                        const ms_pareto_opts *po, ms_pareto **out, ms_error *err);
void ms_pareto_free(ms_pareto *p);

#ifdef __cplusplus
}
#endif
#endif
