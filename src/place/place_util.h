/* place_util.h - small helpers shared by the placement algorithms of
 * balance.c, smart.c and ilp.c (internal). None of them allocates unless
 * it says so; none can fail unless it returns ms_status. */
#ifndef MOESIM_PLACE_UTIL_H
#define MOESIM_PLACE_UTIL_H

#include "place/algos.h"

/* Per-layer view of the loads the algorithms see (in->loads has one column
 * per logical expert: column n_routed is the shared expert's load). */
static inline const double *ms_putil_layer_loads(const ms_place_ctx *ctx, uint32_t layer) {
    const ms_loads *ld = ctx->in->loads;
    return ld->w + (size_t)layer * ld->n_experts;
}

/* Load of the shared expert in `layer` (0 without one, or when the load
 * matrix has only routed columns). Cannot fail. */
double ms_putil_shared_load(const ms_place_ctx *ctx, uint32_t layer);

/* Checks what every algorithm here relies on: loads present with n_layers =
 * p->n_layers and n_experts = n_routed or n_logical, finite non-negative
 * values; stats (when given) with n_layers/n_experts matching. `name` is the
 * algorithm's name for messages. MS_E_INPUT. */
ms_status ms_putil_check_input(const ms_place_ctx *ctx, const char *name, ms_error *err);

/* Routed replicas beyond one per expert the budget allows:
 * min(opts->redundant, slots not holding the shared expert - n_routed).
 * Unlike ms_place_extra it does not change as the algorithm fills slots, so
 * it may be called at any time (also on a finished placement). */
uint32_t ms_putil_extra(const ms_place_ctx *ctx);

/* Indices 0..n-1 sorted by w descending, ties by the lower index (a stable
 * sort, as Python's sorted(key=-w) gives). order must hold n items. */
void ms_putil_order_desc(const double *w, uint32_t n, uint32_t *order);

/* moe-balance's replica budget rule: one replica each, then `extra` more
 * handed out one each to the experts in descending load order (ties: lower
 * id), cycling. cnt[n]; order[n] receives the descending order. */
void ms_putil_counts_cycle(const double *w, uint32_t n, uint32_t extra, uint32_t *cnt, uint32_t *order);

/* The seed's `replicate` rule (EPLB's too): one replica each, then `extra`
 * more, each to the expert with the largest w / cnt (ties: lower id), never
 * beyond `cap` replicas of one expert (cap 0 = unlimited). Places fewer when
 * every expert is at its cap; returns how many extra replicas it handed out.
 * `heap` is scratch of n items. */
uint32_t ms_putil_counts_greedy(const double *w, uint32_t n, uint32_t extra, uint32_t cap, uint32_t *cnt,
                                uint32_t *heap);

/* Free slots per device of `layer` (slots holding -1) into free_[devices];
 * returns their sum. */
uint32_t ms_putil_free_slots(const ms_placement *p, uint32_t layer, uint32_t *free_);

/* Puts logical expert e into the lowest empty slot of device d in `layer`.
 * Returns 0, or -1 when the device has no empty slot (nothing written). */
int ms_putil_put(ms_placement *p, uint32_t layer, uint32_t d, int32_t e);

/* Reorders, on every device of `layer`, the routed experts among the slots
 * not holding the shared expert so that ids ascend and empty slots come last
 * (the shared replicas stay where they are). The peer numbers a device's
 * slots this way, and log2phy (ascending slots) then lists an expert's
 * replicas by ascending device. */
void ms_putil_sort_device_slots(ms_placement *p, uint32_t layer);

/* Shortest distance between positions a and b on a ring of n. */
static inline uint32_t ms_putil_ring_dist(uint32_t a, uint32_t b, uint32_t n) {
    uint32_t x = a > b ? a - b : b - a;
    return x < n - x ? x : n - x;
}

/* Combinatorial lower bound on the maximum device load of `layer` when every
 * routed expert may split its load freely over at most one replica per
 * device and the routed replicas number at most n_routed + extra: the
 * largest of (total load incl. the shared expert) / devices, the shared
 * expert's load per reserved replica, and max_e w_e / n_e where n_e are the
 * replica counts of the greedy rule above capped at `devices` (that greedy
 * minimises max_e w_e / n_e over every split of the budget, and any
 * placement with maximum device load z needs n_e >= w_e / z). Valid for
 * EPLB's even split as well (a special case). NAN on allocation failure. */
double ms_putil_count_bound(const ms_place_ctx *ctx, uint32_t layer);

#endif
