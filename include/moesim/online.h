/*
 * moesim/online.h - stage 5: placements that follow the traffic over time.
 *
 * A replay serves a trace in arrival order as a sequence of steps - the
 * batches of a batch plan (moesim/sim.h: prefill batches, decode steps, or
 * mixed steps of continuous batching; MS_ORDER_TRACE for the trace's request
 * order) - through a placement that may change at re-placement points, as
 * SGLang's and vLLM's EPLB rebalance while they serve:
 *  - MS_REBALANCE_STATIC: the initial placement throughout;
 *  - MS_REBALANCE_PERIODIC_EPLB: every `every` steps (or tokens) EPLB is run
 *    on the loads of the last `window` steps (tokens): a full re-placement;
 *  - MS_REBALANCE_INCREMENTAL: at each point at most max_moves replica
 *    copies: first towards EPLB's replica counts (the most loaded replica
 *    gains one from the expert that needs it least), then the moves that cut
 *    the expected maximum device load (optionally plus z standard
 *    deviations over the window's steps) the most per copy
 *    (ms_replay_incremental);
 *  - MS_REBALANCE_ORACLE: with hindsight, for each interval between points,
 *    the placement among a candidate set (the one it holds, the initial one,
 *    EPLB and the incremental search on the interval's own loads, and the
 *    placements given rivals hold there) that serves the interval fastest in the
 *    simulator; migration free: the bound no online policy beats.
 * Migration is priced (ms_migration_price): each replica that lands on a
 * device that did not hold that expert copies its weights from a device that
 * did (its own row's first: NVLink; else the network), and the copies take
 * the busiest device's link time. MS_MIGRATION_STALL: every device waits for
 * the copies before the next step, which the new placement serves.
 * MS_MIGRATION_OVERLAP: the copies run in the background, sharing the links
 * with the all-to-all: during a step of serving time T of which C is
 * all-to-all, a copy with R us of link time left advances by min(R, T) and
 * the step grows by C x min(1, R / T) (half the links each while both
 * run); the new placement serves from the step after the copy finishes, and
 * points met while a copy is in flight are skipped. docs/MODEL.md
 * ("Re-placement over time") gives the formulas.
 *
 * The expected maximum device load of a placement on a load matrix is the
 * sum over layers of ms_placement_max_device_load (EPLB's even split over
 * replicas); the loads of steps count every (token, layer, chosen expert) and,
 * with a shared expert, one more per token.
 */
#ifndef MOESIM_ONLINE_H
#define MOESIM_ONLINE_H

#include <stdbool.h>
#include "moesim/common.h"
#include "moesim/place.h"
#include "moesim/sim.h"
#include "moesim/trace.h"

#ifdef __cplusplus
extern "C" {
#endif

struct json_t;

typedef enum ms_rebalance {
    MS_REBALANCE_STATIC = 0,
    MS_REBALANCE_PERIODIC_EPLB = 1,
    MS_REBALANCE_INCREMENTAL = 2,
    MS_REBALANCE_ORACLE = 3
} ms_rebalance;
#define MS_REBALANCE_COUNT 4

typedef enum ms_migration { MS_MIGRATION_STALL = 0, MS_MIGRATION_OVERLAP = 1 } ms_migration;

/* "static", "periodic-eplb", "incremental", "oracle"; "stall", "overlap".
 * The parsers fail MS_E_INPUT listing the names. */
const char *ms_rebalance_name(ms_rebalance r);
const char *ms_migration_name(ms_migration m);
ms_status ms_rebalance_parse(const char *s, ms_rebalance *out, ms_error *err);
ms_status ms_migration_parse(const char *s, ms_migration *out, ms_error *err);

/* A length of serving: n steps, or the steps until n tokens were served. */
typedef enum ms_span_unit { MS_SPAN_STEPS = 0, MS_SPAN_TOKENS = 1 } ms_span_unit;
typedef struct ms_span {
    uint64_t n;
    ms_span_unit unit;
} ms_span;

/* Parses "N", "Nsteps" or "Ntokens" (N a positive integer, optionally with
 * a k or M multiplier: "200ktokens"). MS_E_INPUT otherwise. */
ms_status ms_span_parse(const char *s, ms_span *out, ms_error *err);
/* Writes "N steps" / "N tokens" into buf. Returns buf. */
const char *ms_span_format(const ms_span *s, char *buf, size_t len);

/* ------------------------------------------------------------ pieces */

/* The loads of the plan's steps [a, b) (a < b <= n_batches): out gets
 * n_layers rows of n_routed (+ 1 with a shared expert) columns: column e =
 * how often expert e was chosen, column n_routed (shared) = the steps'
 * tokens. Fails MS_E_INPUT on a bad range or n_routed below the trace's
 * experts; MS_E_NOMEM. */
ms_status ms_plan_loads(const ms_trace *t, const ms_batch_plan *plan, uint64_t a, uint64_t b, uint32_t n_routed,
                        bool has_shared, ms_loads **out, ms_error *err);

/* The first point after step `from` of a plan (from < n_batches): `span`
 * steps on, or the first step boundary at which span.n tokens were served
 * since `from`; at most n_batches and more than `from` (span.n > 0). Cannot
 * fail. */
uint64_t ms_plan_span_end(const ms_batch_plan *plan, uint64_t from, ms_span span);

/* The first step of the plan that serves a token of request `request` or of
 * a later one (the trace's request order): where statistics split for
 * ms_replay_opts.after_step. UINT64_MAX when no step does (request >=
 * n_requests included). Cannot fail. */
uint64_t ms_plan_first_step(const ms_trace *t, const ms_batch_plan *plan, uint64_t request);

/* Sum over layers of the maximum device load under an even split over
 * replicas (ms_placement_max_device_load). loads: one row per placement layer,
 * n_routed or n_logical columns. NAN when the shapes disagree. */
double ms_placement_expected_max(const ms_placement *p, const ms_loads *loads);

/* What moving from one placement to another copies. */
typedef struct ms_migration_cost {
    uint32_t moved;        /* replicas copied (over all layers) */
    uint32_t moved_inter;  /* of them from another row (network) */
    double bytes;          /* moved x their weight bytes */
    double inter_bytes;    /* the part that crosses rows */
    double copy_us;        /* the busiest device's link time: max over devices of
                              max(NVLink alpha + max(sent, received) / NVLink rate,
                                  network alpha + max(sent, received) / network rate) */
} ms_migration_cost;

/* Prices from -> to (same layers, cluster and logical experts, both indexed).
 * Per layer and device, every expert `to` holds there more often than `from`
 * does is one copy; its source is a device that holds it in `from`, in the
 * destination's row when one does (NVLink), else any row (network); among
 * those the one that has sent the least so far, ties to the lower device.
 * A routed expert weighs expert_bytes, the shared expert shared_bytes. Rates
 * are hw's NVLink and network bandwidth times their efficiencies. Fails
 * MS_E_INPUT on placements that do not match or a non-positive rate;
 * MS_E_NOMEM. */
ms_status ms_migration_price(const ms_placement *from, const ms_placement *to, double expert_bytes,
                             double shared_bytes, const ms_hw_preset *hw, ms_migration_cost *out, ms_error *err);

/* Per-step moments of the loads of steps [a, b): mean and variance over the
 * steps of each expert's count (population variance; shapes as
 * ms_plan_loads, the shared column from the steps' token counts). Fails as
 * ms_plan_loads. */
ms_status ms_plan_load_moments(const ms_trace *t, const ms_batch_plan *plan, uint64_t a, uint64_t b,
                               uint32_t n_routed, bool has_shared, ms_loads **mean, ms_loads **var, ms_error *err);

/* The incremental re-placement: from cur (indexed), at most max_moves
 * replica copies, in two phases sharing the budget. First the replica
 * counts: while some layer's expert b with the largest load per replica can
 * take a slot from an expert a with two or more replicas such that both end
 * below b's current share (EPLB's counts minimise the largest share), the
 * layer where that lowers the largest share the most gets it, in the slot of
 * a whose re-purpose leaves the smallest largest device value, and only when
 * that is no larger than the layer's current largest value. Then the local
 * search: one move at a time, the move with the largest reduction per copy
 * of the sum over layers of the largest device value, over every layer,
 * until no move reduces it or the budget is spent. A device's value is
 * mean + z x sqrt(variance) of its load per step with every expert's count
 * split evenly over its replicas (means from `mean`, variances from `var`
 * divided by replicas squared): with var NULL or z 0 it is the expected
 * maximum device load of EPLB's measure; with the variances it also prefers
 * replicas for experts whose count swings from step to step. Moves (the
 * shared expert's slots never change; a device never gets a second replica
 * of one expert; a slot is written at most once per decision):
 *  - swap: two slots on different devices exchange their experts (2 copies);
 *  - move: a replica goes to an empty slot of another device (1 copy);
 *  - re-purpose: a slot holding a replica of an expert with two or more (or
 *    an empty slot) takes another expert (1 copy).
 * Each candidate touches the device of the layer's largest value.
 * Deterministic. *out is a new indexed placement (cur's metadata, algorithm
 * "incremental"); *copies (may be NULL) receives the copies made (migration
 * may price fewer when a later move undid part of an earlier one). max_moves
 * 0 returns a copy of cur. Fails MS_E_INPUT when mean (or var) does not match
 * cur (rows = layers, columns n_routed or n_logical) or z is negative or not
 * finite; MS_E_NOMEM. */
ms_status ms_replay_incremental(const ms_placement *cur, const ms_loads *mean, const ms_loads *var, double z,
                                uint32_t max_moves, ms_placement **out, uint32_t *copies, ms_error *err);

/* ------------------------------------------------------------ replay */

typedef struct ms_replay_opts {
    ms_rebalance policy;
    ms_span every;            /* points: after each `every` steps, or once `every` more tokens
                                 were served (default 100 steps) */
    ms_span window;           /* a decision sees the last `window` steps / tokens before it
                                 (n 0 = the same as every; default) */
    uint32_t max_moves;       /* incremental: copies per decision (default 64) */
    double variance_weight;   /* incremental: z of ms_replay_incremental, on the window's
                                 per-step moments (default 0: the mean) */
    ms_migration migration;   /* default stall */
    uint32_t eplb_groups;     /* EPLB's expert groups (0 = global policy; default) */
    double expert_bytes;      /* weights of one routed expert in one layer (required, > 0) */
    double shared_bytes;      /* of the shared expert (0 = expert_bytes) */
    const ms_hw_preset *hw;   /* the links copies use (required) */
    uint32_t top_k;           /* the trace's top-k, passed to EPLB (0 = from the trace) */
    uint64_t after_step;      /* split the statistics: steps before / from this one
                                 (UINT64_MAX = no split; default) */
    /* oracle only: replays of online policies whose placements join the
     * candidates at every point (their steps must be the same plan's) */
    const struct ms_replay_result *const *rivals;
    uint32_t n_rivals;
} ms_replay_opts;

/* static, every 100 steps, window = every, 64 moves, stall, global EPLB,
 * no bytes or hw (must be set), no split, no rivals. */
void ms_replay_opts_default(ms_replay_opts *o);

/* The weights a migration copies, from a model preset (gate, up and down
 * projections): o->expert_bytes = 3 x hidden x moe_intermediate x
 * expert_weight_bytes; o->shared_bytes = 3 x hidden x shared_intermediate x
 * shared_experts x expert_weight_bytes, 0 without a shared expert. Cannot
 * fail. */
void ms_replay_opts_set_weights(ms_replay_opts *o, const ms_model_preset *m);

/* The initial placement of a replay without one given (replay --init, sweep
 * replay points): po->algo on the loads of the plan's first interval, steps
 * [0, ms_plan_span_end(plan, 0, first)), as if the engine had recorded them,
 * on po->cluster with po's other options (po->top_k 0 = the trace's; no
 * statistics, so algorithms that need co-activation fail). The placement's
 * digest is the trace's. Fails MS_E_INPUT on a plan without steps or a span
 * of 0, and as ms_plan_loads and ms_place_run; MS_E_NOMEM. */
ms_status ms_replay_initial_placement(const ms_trace *t, const ms_batch_plan *plan, ms_span first,
                                      const ms_place_opts *po, ms_placement **out, ms_error *err);

/* One step served. Times in microseconds. */
typedef struct ms_replay_step {
    uint64_t step;            /* batch number in the plan */
    uint32_t tokens;
    uint32_t version;         /* placement that served it (0 = the initial one) */
    double imbalance;         /* mean over layers of the (batch, layer) imbalance */
    double max_imbalance;     /* its worst layer */
    double layer_us;          /* mean over layers of the layer time */
    double serve_us;          /* sum over layers: the step's serving time */
    double comm_us;           /* of it, dispatch + combine (the all-to-all) */
    double migration_us;      /* what migration added: the stall before it, or the
                                 slowed all-to-all of a background copy */
    uint64_t assignments, dropped, rerouted;
} ms_replay_step;

/* One re-placement (a decision that copied something). */
typedef struct ms_replay_event {
    uint64_t point;           /* steps served before the decision */
    uint64_t effective;       /* first step the new placement serves; n_steps when the trace
                                 ended before its copies finished */
    uint32_t version;         /* the new placement's number */
    ms_migration_cost cost;
    double expected_before;   /* expected max device load of the old placement on the
                                 decision's loads (window; oracle: the interval's) */
    double expected_after;    /* of the new one */
    double imbalance_before;  /* mean step imbalance under the old placement */
    double imbalance_after;   /* under the new one, until the next re-placement */
    double decide_us;         /* wall time of the decision (machine-dependent) */
} ms_replay_event;

typedef struct ms_replay_summary {
    ms_rebalance policy;
    uint64_t steps, tokens;
    uint64_t decisions;       /* points where the policy was asked */
    uint64_t replacements;    /* decisions that copied something (events) */
    uint64_t skipped;         /* points met while a copy was in flight (overlap) */
    uint64_t moved, moved_inter;
    double bytes, inter_bytes;
    double serve_us;          /* sum of step serving times */
    double migration_us;      /* sum of what migration added (stalls + slowed steps) */
    double total_us;          /* serve_us + migration_us */
    double imbalance, max_imbalance, layer_us; /* means over steps */
    /* with after_step: the same means over steps before it and from it on */
    double imbalance_before, imbalance_after, layer_us_before, layer_us_after;
    double total_us_before, total_us_after;
    uint64_t steps_before, steps_after;
    uint64_t assignments, dropped, rerouted;
    double decide_us_mean, decide_us_max; /* machine-dependent */
} ms_replay_summary;

typedef struct ms_replay_result {
    ms_replay_summary summary;
    uint64_t n_steps;
    ms_replay_step *steps;    /* [n_steps], plan order */
    uint64_t n_events;
    ms_replay_event *events;
    uint32_t n_versions;
    ms_placement **versions;  /* [n_versions]: versions[0] is the initial placement */
} ms_replay_result;

/* Replays plan over init with policy o->policy, simulating every step with
 * sim (any cost model and routing ms_sim_run accepts; its layer and batch
 * range fields must be left at their defaults). Same inputs, same result
 * (but the decide_us timings), whatever the thread count. Fails MS_E_INPUT
 * when the placement does not fit the trace or plan (as ms_sim_run), on
 * spans of 0, expert bytes <= 0, no hw, sim.layer >= 0 or a batch range,
 * rivals for another plan; MS_E_NOMEM; errors of ms_sim_run/ms_place_run. */
ms_status ms_replay_run(const ms_trace *t, const ms_batch_plan *plan, const ms_placement *init,
                        const ms_sim_opts *sim, const ms_replay_opts *o, ms_replay_result **out, ms_error *err);
void ms_replay_result_free(ms_replay_result *r);

/* JSON: the summary, events and (when with_steps) steps of a result. NULL
 * when out of memory. */
struct json_t *ms_replay_summary_json(const ms_replay_summary *s);
struct json_t *ms_replay_event_json(const ms_replay_event *e);
struct json_t *ms_replay_step_json(const ms_replay_step *s);

#ifdef __cplusplus
}
#endif
#endif
