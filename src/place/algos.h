/* algos.h - internal contract between the placement dispatcher (place.c) and
 * the algorithms. Each algorithm fills the placement for every layer. */
#ifndef MOESIM_PLACE_ALGOS_H
#define MOESIM_PLACE_ALGOS_H

#include "moesim/place.h"

/* Everything an algorithm may read. `p` is allocated with every slot empty
 * (-1), has_shared/n_routed set; the algorithm writes p->phy2log for every
 * layer (ms_place_run then indexes and checks it, so it need not). */
typedef struct ms_place_ctx {
    const ms_place_input *in;
    const ms_place_opts *opts;
    ms_placement *p;
} ms_place_ctx;

typedef ms_status (*ms_place_algo_fn)(const ms_place_ctx *ctx, ms_error *err);

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
/* LP lower bound on the maximum device load of `layer` for this slot
 * budget: NAN when GLPK is absent (the analytic bound is used then). */
double ms_place_lower_bound(const ms_place_ctx *ctx, uint32_t layer);

#endif
