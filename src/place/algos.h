/* algos.h - internal contract between the placement dispatcher (place.c) and
 * the algorithms. Each algorithm fills the placement for every layer. */
#ifndef MOESIM_PLACE_ALGOS_H
#define MOESIM_PLACE_ALGOS_H

#include "moesim/place.h"

/* Everything an algorithm may read, as ms_place_run hands it over:
 *  - in->loads is the effective load matrix (ms_place_effective_loads): one
 *    column per logical expert, p->n_logical of them, so with a shared expert
 *    column p->n_routed holds its load. in->stats is the caller's (NULL
 *    without a trace; its n_experts = p->n_routed). in->digest as given.
 *  - p is allocated with n_routed/has_shared set and, when has_shared, the
 *    shared expert's opts->shared_replicas replicas already in their slots
 *    (moe-balance's rule, identical in every layer, shared_replicas resolved
 *    to rows when it was 0); every other slot is empty (-1).
 * The algorithm writes the routed experts 0..n_routed-1 into empty slots of
 * p->phy2log for every layer, never moving the shared replicas; each routed
 * expert needs at least one slot, slots may stay empty, and it must place at
 * most ms_place_extra(ctx) replicas beyond one per expert. It may set
 * p->objective (else the mean max device load is used). ms_place_run then
 * indexes (only when p->log2phy is still NULL: an algorithm with its own
 * replica order, like EPLB's ranks, calls ms_placement_index and reorders
 * each expert's log2phy entries itself), checks, times and labels it.
 * Return MS_E_INPUT (with a message) for options the algorithm cannot
 * honour. */
typedef struct ms_place_ctx {
    const ms_place_input *in;
    const ms_place_opts *opts;
    ms_placement *p;
} ms_place_ctx;

typedef ms_status (*ms_place_algo_fn)(const ms_place_ctx *ctx, ms_error *err);

/* place.c helpers for the algorithms. */
/* Empty slots per layer once the shared expert's replicas are reserved. */
uint32_t ms_place_free_slots(const ms_place_ctx *ctx);
/* Routed replicas beyond one per expert the algorithm may place:
 * min(opts->redundant, ms_place_free_slots - n_routed). */
uint32_t ms_place_extra(const ms_place_ctx *ctx);

/* basic.c */
ms_status ms_place_contiguous(const ms_place_ctx *ctx, ms_error *err);
ms_status ms_place_round_robin(const ms_place_ctx *ctx, ms_error *err);
ms_status ms_place_pair(const ms_place_ctx *ctx, ms_error *err);
ms_status ms_place_replicate(const ms_place_ctx *ctx, ms_error *err);
/* eplb.c */
ms_status ms_place_eplb(const ms_place_ctx *ctx, ms_error *err);
/* balance.c: moe-balance's initial placements */
ms_status ms_place_balance(const ms_place_ctx *ctx, ms_error *err);
ms_status ms_place_balance_coact(const ms_place_ctx *ctx, ms_error *err);
ms_status ms_place_hot_tier(const ms_place_ctx *ctx, ms_error *err);
ms_status ms_place_greedy_cost(const ms_place_ctx *ctx, ms_error *err);
/* smart.c */
ms_status ms_place_one_per_gpu(const ms_place_ctx *ctx, ms_error *err);
ms_status ms_place_tail(const ms_place_ctx *ctx, ms_error *err);
ms_status ms_place_coact(const ms_place_ctx *ctx, ms_error *err);
/* ilp.c (GLPK; MS_E_UNSUPPORTED without it) */
ms_status ms_place_ilp(const ms_place_ctx *ctx, ms_error *err);
/* Lower bound (LP relaxation) on the maximum device load of `layer` for
 * this slot budget. ms_place_run calls it, when opts->lp_bound, BEFORE the
 * algorithm runs: ctx->p is as an algorithm receives it (shared replicas
 * reserved, every other slot empty), so ms_place_extra(ctx) is the budget.
 * NAN when it has nothing to offer; ms_place_run reports the larger of this
 * and its analytic bound. Should return within a fraction of a second. */
double ms_place_lower_bound(const ms_place_ctx *ctx, uint32_t layer);

#endif
