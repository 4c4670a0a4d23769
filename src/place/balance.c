/* balance.c - moe-balance's initial placements: balance (--axis row|col),
 * balance-coact, hot-tier, and greedy-cost.
 *
 * moe-balance (the public Python simulator of seed 002) starts its search
 * from these. What they do, as reverse-engineered from the peer's output
 * (../shared/reference/moe-balance/balance_dsv2lite_l10_2x8.placement.json,
 * reproduced exactly by tests/test-place-balance.c):
 *
 *  - Replica budget: one slot per routed expert; the `extra` free slots
 *    (ms_place_extra) go one each to the experts in descending load order
 *    (ties: lower id), cycling. The shared expert's replicas were reserved
 *    before (ms_place_run, row i mod rows, column i mod cols).
 *  - Experts are taken in descending load order (ties: lower id), each with
 *    all of its replicas in turn. A replica goes to the least-loaded group
 *    (a row for axis 'r', a column for 'c'; ties: lower index), groups that
 *    do not hold the expert yet first; inside it to the least-loaded device
 *    with a free slot that does not hold the expert yet; ties go to the
 *    device farthest (ring distance along the other axis) from the expert's
 *    replicas already placed, then to the lower index. When the group has no
 *    such device the next group is tried; as a last resort a device that
 *    already holds the expert.
 *  - A device's (and group's) load grows by the expert's whole load per
 *    replica placed - the peer's "placed frequency" - not by the load per
 *    replica: only this reproduces the reference (with load / replicas the
 *    first difference is expert 25, on device 14 instead of 10). The shared
 *    expert's replicas start their device (and group) at its load / replicas
 *    (moesim's choice; the reference has no shared expert).
 *  - Output: on every device the routed experts occupy its slots in
 *    ascending id order, which is how the peer numbers slots; log2phy then
 *    lists an expert's replicas by ascending device, as the peer's file does.
 *
 * balance-coact adds, inside the group, coact_weight x (tokens that chose
 * both this expert and one already on the device, summed over the device's
 * experts) to the device's load when choosing; it needs co-activation
 * statistics (a trace). hot-tier first places the replicas of the hot_n
 * hottest experts (default: those that received extra replicas, else one per
 * group) so that every group receives as many hot replicas as possible
 * evenly (group with the fewest hot replicas first, then least loaded), then
 * the rest as balance.
 *
 * greedy-cost places replica instances one at a time (descending tokens per
 * instance) on the device where the modelled layer time grows least; see
 * greedy_cost_layer for the model and its proxies.
 */
#include <math.h>
#include <string.h>

#include "place/place_util.h"

/* ------------------------------------------------------------ the state */

typedef struct bal {
    ms_placement *p;
    uint32_t R, C, spd, nd, E;
    int by_col;        /* groups are columns */
    uint32_t G, I;     /* groups, devices per group */
    double *dl;        /* [nd] device load */
    double *gl;        /* [G] group load */
    uint32_t *free_;   /* [nd] free slots */
    uint32_t *hot;     /* [G] hot replicas per group */
    int32_t *items;    /* [nd][spd] routed experts placed on a device */
    uint32_t *nitems;  /* [nd] */
    uint32_t *cnt;     /* [E] replicas wanted */
    uint32_t *order;   /* [E] descending load */
    uint32_t *off;     /* [E+1] offsets into inst */
    uint32_t *inst;    /* [E + extra] devices of each expert's placed replicas */
    uint32_t *nplaced; /* [E] */
    uint32_t *gorder;  /* [G] scratch */
    /* balance-coact */
    const uint64_t *coact; /* [E][E] or NULL */
    double coact_w;
} bal;

static void bal_free(bal *b) {
    ms_free(b->dl);
    ms_free(b->gl);
    ms_free(b->free_);
    ms_free(b->hot);
    ms_free(b->items);
    ms_free(b->nitems);
    ms_free(b->cnt);
    ms_free(b->order);
    ms_free(b->off);
    ms_free(b->inst);
    ms_free(b->nplaced);
    ms_free(b->gorder);
}

static ms_status bal_init(bal *b, const ms_place_ctx *ctx, char axis, ms_error *err) {
    memset(b, 0, sizeof *b);
    ms_placement *p = ctx->p;
    b->p = p;
    b->R = p->cluster.rows;
    b->C = p->cluster.cols;
    b->spd = p->cluster.slots_per_device;
    b->nd = b->R * b->C;
    b->E = p->n_routed;
    b->by_col = axis == 'c';
    b->G = b->by_col ? b->C : b->R;
    b->I = b->by_col ? b->R : b->C;
    uint32_t ninst = b->E + ms_putil_extra(ctx);
    b->dl = ms_alloc_array(b->nd, sizeof *b->dl, err);
    b->gl = ms_alloc_array(b->G, sizeof *b->gl, err);
    b->free_ = ms_alloc_array(b->nd, sizeof *b->free_, err);
    b->hot = ms_alloc_array(b->G, sizeof *b->hot, err);
    b->items = ms_alloc_array((size_t)b->nd * b->spd, sizeof *b->items, err);
    b->nitems = ms_alloc_array(b->nd, sizeof *b->nitems, err);
    b->cnt = ms_alloc_array(b->E, sizeof *b->cnt, err);
    b->order = ms_alloc_array(b->E, sizeof *b->order, err);
    b->off = ms_alloc_array((size_t)b->E + 1, sizeof *b->off, err);
    b->inst = ms_alloc_array(ninst, sizeof *b->inst, err);
    b->nplaced = ms_alloc_array(b->E, sizeof *b->nplaced, err);
    b->gorder = ms_alloc_array(b->G, sizeof *b->gorder, err);
    if (!b->dl || !b->gl || !b->free_ || !b->hot || !b->items || !b->nitems || !b->cnt || !b->order || !b->off ||
        !b->inst || !b->nplaced || !b->gorder) {
        bal_free(b);
        return MS_E_NOMEM;
    }
    return MS_OK;
}

static inline uint32_t dev_group(const bal *b, uint32_t d) { return b->by_col ? d % b->C : d / b->C; }
static inline uint32_t dev_inner(const bal *b, uint32_t d) { return b->by_col ? d / b->C : d % b->C; }
static inline uint32_t group_dev(const bal *b, uint32_t g, uint32_t i) {
    return b->by_col ? i * b->C + g : g * b->C + i;
}

/* Resets the per-layer state: free slots, shared loads, replica counts by
 * the budget rule, descending order. MS_E_INPUT when the free slots cannot
 * hold the budget (the dispatcher prevents it). */
static ms_status bal_layer_start(bal *b, const ms_place_ctx *ctx, uint32_t l, ms_error *err) {
    ms_placement *p = b->p;
    const double *w = ms_putil_layer_loads(ctx, l);
    uint32_t nfree = ms_putil_free_slots(p, l, b->free_);
    uint32_t extra = ms_putil_extra(ctx);
    if (nfree < b->E + extra)
        return ms_error_set(err, MS_E_INPUT, "layer %u: %u free slots for %u routed experts + %u replicas", l, nfree,
                            b->E, extra);
    double ls = ms_putil_shared_load(ctx, l);
    const int32_t *row = p->phy2log + (size_t)l * p->n_phys;
    uint32_t ns = 0;
    for (uint32_t s = 0; s < p->n_phys; s++) ns += p->has_shared && row[s] == (int32_t)p->n_routed;
    memset(b->gl, 0, b->G * sizeof *b->gl);
    memset(b->hot, 0, b->G * sizeof *b->hot);
    for (uint32_t d = 0; d < b->nd; d++) {
        b->dl[d] = 0.0;
        b->nitems[d] = 0;
        for (uint32_t s = 0; s < b->spd; s++)
            if (ns && row[d * b->spd + s] == (int32_t)p->n_routed) b->dl[d] += ls / ns;
        b->gl[dev_group(b, d)] += b->dl[d];
    }
    ms_putil_counts_cycle(w, b->E, extra, b->cnt, b->order);
    b->off[0] = 0;
    for (uint32_t e = 0; e < b->E; e++) {
        b->off[e + 1] = b->off[e] + b->cnt[e];
        b->nplaced[e] = 0;
    }
    return MS_OK;
}

static int dev_holds(const bal *b, uint32_t d, uint32_t e) {
    const int32_t *it = b->items + (size_t)d * b->spd;
    for (uint32_t k = 0; k < b->nitems[d]; k++)
        if (it[k] == (int32_t)e) return 1;
    return 0;
}

static int group_holds(const bal *b, uint32_t g, uint32_t e) {
    for (uint32_t k = 0; k < b->nplaced[e]; k++)
        if (dev_group(b, b->inst[b->off[e] + k]) == g) return 1;
    return 0;
}

/* Smallest ring distance, along the inner axis, from device d to the
 * expert's replicas placed so far (0 when none). */
static uint32_t inner_spread(const bal *b, uint32_t d, uint32_t e) {
    uint32_t best = UINT32_MAX, n = b->nplaced[e];
    if (n == 0) return 0;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t x = ms_putil_ring_dist(dev_inner(b, d), dev_inner(b, b->inst[b->off[e] + k]), b->I);
        if (x < best) best = x;
    }
    return best;
}

static double coact_penalty(const bal *b, uint32_t d, uint32_t e) {
    if (!b->coact || b->coact_w == 0.0) return 0.0;
    const int32_t *it = b->items + (size_t)d * b->spd;
    double s = 0.0;
    for (uint32_t k = 0; k < b->nitems[d]; k++) s += (double)b->coact[(size_t)e * b->E + (uint32_t)it[k]];
    return b->coact_w * s;
}

/* The best device of group g for expert e (free slot; not holding e unless
 * allow_dup), or UINT32_MAX. Key: (load [+ coact penalty], -spread, index). */
static uint32_t best_in_group(const bal *b, uint32_t g, uint32_t e, int allow_dup) {
    uint32_t best = UINT32_MAX, best_sp = 0;
    double best_v = 0.0;
    for (uint32_t i = 0; i < b->I; i++) {
        uint32_t d = group_dev(b, g, i);
        if (b->free_[d] == 0 || (!allow_dup && dev_holds(b, d, e))) continue;
        double v = b->dl[d] + coact_penalty(b, d, e);
        uint32_t sp = inner_spread(b, d, e);
        if (best == UINT32_MAX || v < best_v || (v == best_v && (sp > best_sp || (sp == best_sp && d < best)))) {
            best = d;
            best_v = v;
            best_sp = sp;
        }
    }
    return best;
}

static void bal_commit(bal *b, uint32_t l, uint32_t d, uint32_t e, double add, int is_hot) {
    int rc = ms_putil_put(b->p, l, d, (int32_t)e);
    (void)rc; /* free_ tracks the empty slots, so this cannot fail */
    b->free_[d]--;
    b->items[(size_t)d * b->spd + b->nitems[d]++] = (int32_t)e;
    b->inst[b->off[e] + b->nplaced[e]++] = d;
    b->dl[d] += add;
    b->gl[dev_group(b, d)] += add;
    if (is_hot) b->hot[dev_group(b, d)]++;
}

/* Sorts the groups into gorder by (not holding e first, [hot count,] load,
 * index). Insertion sort: G is small. */
static void order_groups(bal *b, uint32_t e, int by_hot) {
    for (uint32_t g = 0; g < b->G; g++) {
        uint32_t j = g;
        int hg = group_holds(b, g, e);
        while (j > 0) {
            uint32_t h = b->gorder[j - 1];
            int hh = group_holds(b, h, e);
            int later;
            if (hh != hg) later = hh > hg;
            else if (by_hot && b->hot[h] != b->hot[g]) later = b->hot[h] > b->hot[g];
            else if (b->gl[h] != b->gl[g]) later = b->gl[h] > b->gl[g];
            else later = h > g;
            if (!later) break;
            b->gorder[j] = h;
            j--;
        }
        b->gorder[j] = g;
    }
}

/* Places one replica of e; 0 or -1 when no slot is left (cannot happen once
 * bal_layer_start checked the budget). */
static int place_one(bal *b, uint32_t l, uint32_t e, double add, int by_hot) {
    order_groups(b, e, by_hot);
    for (int allow_dup = 0; allow_dup < 2; allow_dup++)
        for (uint32_t k = 0; k < b->G; k++) {
            uint32_t d = best_in_group(b, b->gorder[k], e, allow_dup);
            if (d != UINT32_MAX) {
                bal_commit(b, l, d, e, add, by_hot);
                return 0;
            }
        }
    return -1;
}

static ms_status place_rest(bal *b, uint32_t l, const double *w, const uint8_t *done, ms_error *err) {
    for (uint32_t k = 0; k < b->E; k++) {
        uint32_t e = b->order[k];
        if (done && done[e]) continue;
        for (uint32_t r = 0; r < b->cnt[e]; r++)
            if (place_one(b, l, e, w[e], 0) != 0)
                return ms_error_set(err, MS_E_INTERNAL, "layer %u: no free slot left for expert %u", l, e);
    }
    ms_putil_sort_device_slots(b->p, l);
    return MS_OK;
}

typedef enum { BAL_PLAIN, BAL_COACT, BAL_HOT } bal_kind;

static ms_status run_balance(const ms_place_ctx *ctx, bal_kind kind, const char *name, ms_error *err) {
    ms_status st = ms_putil_check_input(ctx, name, err);
    if (st != MS_OK) return st;
    const ms_place_opts *o = ctx->opts;
    char axis = o->axis ? o->axis : 'r';
    if (axis != 'r' && axis != 'c')
        return ms_error_set(err, MS_E_INPUT, "%s: axis must be row or col (got '%c')", name, axis);
    const ms_stats *s = ctx->in->stats;
    if (kind == BAL_COACT) {
        if (!s)
            return ms_error_set(err, MS_E_INPUT,
                                "%s needs co-activation statistics: give a trace, not a load matrix", name);
        for (uint32_t l = 0; l < ctx->p->n_layers; l++)
            if (!s->layers[l].coact)
                return ms_error_set(err, MS_E_INPUT, "%s needs co-activation statistics (layer %u has none)", name, l);
        if (!(o->coact_weight >= 0.0) || !isfinite(o->coact_weight))
            return ms_error_set(err, MS_E_INPUT, "%s: coact weight must be a finite number >= 0 (got %g)", name,
                                o->coact_weight);
    }
    bal b;
    st = bal_init(&b, ctx, axis, err);
    if (st != MS_OK) return st;
    uint8_t *done = NULL;
    if (kind == BAL_HOT) {
        done = ms_calloc_array(b.E, 1, err);
        if (!done) {
            bal_free(&b);
            return MS_E_NOMEM;
        }
    }
    for (uint32_t l = 0; l < ctx->p->n_layers && st == MS_OK; l++) {
        st = bal_layer_start(&b, ctx, l, err);
        if (st != MS_OK) break;
        const double *w = ms_putil_layer_loads(ctx, l);
        if (kind == BAL_COACT) {
            b.coact = s->layers[l].coact;
            b.coact_w = o->coact_weight;
        }
        if (kind == BAL_HOT) {
            memset(done, 0, b.E);
            uint32_t hn = o->hot_n;
            if (hn == 0) {
                for (uint32_t e = 0; e < b.E; e++) hn += b.cnt[e] > 1;
                if (hn == 0) hn = b.G;
            }
            if (hn > b.E) hn = b.E;
            for (uint32_t k = 0; k < hn; k++) {
                uint32_t e = b.order[k];
                done[e] = 1;
                for (uint32_t r = 0; r < b.cnt[e]; r++)
                    if (place_one(&b, l, e, w[e], 1) != 0) {
                        st = ms_error_set(err, MS_E_INTERNAL, "layer %u: no free slot left for expert %u", l, e);
                        break;
                    }
                if (st != MS_OK) break;
            }
            if (st != MS_OK) break;
        }
        st = place_rest(&b, l, w, done, err);
    }
    ms_free(done);
    bal_free(&b);
    return st;
}

/* Contract: moe-balance's `balance` placement (see the file comment); axis
 * from opts->axis ('r' default, 'c'). Fails MS_E_INPUT on a bad axis or
 * loads that do not fit the placement; MS_E_NOMEM. */
ms_status ms_place_balance(const ms_place_ctx *ctx, ms_error *err) {
    return run_balance(ctx, BAL_PLAIN, "balance", err);
}

/* Contract: balance with a co-activation penalty inside the group. Fails
 * MS_E_INPUT without co-activation statistics or with a negative weight. */
ms_status ms_place_balance_coact(const ms_place_ctx *ctx, ms_error *err) {
    return run_balance(ctx, BAL_COACT, "balance-coact", err);
}

/* Contract: the hot_n hottest experts' replicas spread evenly over the
 * groups first, then balance. Fails like balance. */
ms_status ms_place_hot_tier(const ms_place_ctx *ctx, ms_error *err) {
    return run_balance(ctx, BAL_HOT, "hot-tier", err);
}

/* ------------------------------------------------------------ greedy-cost */

/* The mesh cost model's terms (issue 4): compute 118 us x ceil(tokens / 32)
 * per expert instance; per-hop dispatch coefficients C = D = 35.0797 us (the
 * minimum-norm fit for 2 rows; used for every row count as the proxy's
 * scale). */
#define GC_US_PER_CHUNK 118.0
#define GC_CHUNK 32.0
#define GC_US_PER_HOP (35.0797 + 35.0797)

/* Tokens per batch the model assumes when no window statistics exist: the
 * loads are scaled so that the mean routed expert receives this many. */
#define GC_TOKENS_PER_EXPERT 64.0

static double chunk_cost(double tokens) { return tokens > 0.0 ? GC_US_PER_CHUNK * ceil(tokens / GC_CHUNK - 1e-9) : 0.0; }

/* Mean over origin rows o (uniform) of the ring distance from o to the
 * nearest row in `rows_of` (n of them). */
static double mean_nearest_hop(const uint32_t *rows_of, uint32_t n, uint32_t R) {
    if (n == 0 || R <= 1) return 0.0;
    double s = 0.0;
    for (uint32_t o = 0; o < R; o++) {
        uint32_t best = UINT32_MAX;
        for (uint32_t k = 0; k < n; k++) {
            uint32_t x = ms_putil_ring_dist(o, rows_of[k], R);
            if (x < best) best = x;
        }
        s += best;
    }
    return s / R;
}

/* greedy-cost for one layer. Model (a proxy of the peer's mesh model, on
 * one "batch" of expected tokens):
 *   time = max_d Tc(d) + 2 x (C + D) x H
 * Tc(d) = sum over the instances on d of 118 us x ceil(t / 32), t = the
 * expert's expected tokens per batch / its replicas (EPLB's even split);
 * H = token-weighted mean over experts of the mean (over uniformly spread
 * origin rows) ring distance to the expert's nearest replica row: dispatch
 * and combine each cost (C + D) per hop as in the fitted model with
 * avg_hop = max_hop. Expected tokens per batch: the per-window mean loads
 * (stats) when available, else the loads scaled so that the mean routed
 * expert receives GC_TOKENS_PER_EXPERT tokens. The shared expert's
 * replicas add their compute to their devices (its hops are fixed). Not
 * modelled: the B x E_col and B x U terms (instances per column, devices
 * per token) and the per-token maxima (the proxy uses means over tokens).
 * Instances go in descending tokens-per-instance order (ties: lower id);
 * each to the device with a free slot (not holding the expert yet, unless
 * none is left) minimising the growth of `time`, ties by the smaller
 * resulting Tc(d), then the lower device index. */
static ms_status greedy_cost_layer(const ms_place_ctx *ctx, uint32_t l, bal *b, double *tok, uint32_t *rows_of,
                                   ms_error *err) {
    ms_placement *p = ctx->p;
    const double *w = ms_putil_layer_loads(ctx, l);
    uint32_t E = b->E, R = b->R;
    const ms_stats *s = ctx->in->stats;
    const ms_layer_stats *ls = s ? &s->layers[l] : NULL;
    double scale;
    int windows = ls && ls->win_mean && ls->n_windows > 0;
    double sum = 0.0;
    for (uint32_t e = 0; e < E; e++) sum += w[e];
    if (windows) {
        for (uint32_t e = 0; e < E; e++) tok[e] = ls->win_mean[e];
        /* the shared expert: every token of a window */
        double wt = ls->n_windows > 1 || ls->tokens > s->window ? (double)s->window : (double)ls->tokens;
        tok[E] = p->has_shared ? wt : 0.0;
    } else {
        scale = sum > 0.0 ? GC_TOKENS_PER_EXPERT * E / sum : 0.0;
        for (uint32_t e = 0; e < E; e++) tok[e] = w[e] * scale;
        tok[E] = ms_putil_shared_load(ctx, l) * scale;
    }
    /* reuse bal's state: dl = Tc(d) */
    ms_status st = bal_layer_start(b, ctx, l, err);
    if (st != MS_OK) return st;
    const int32_t *row = p->phy2log + (size_t)l * p->n_phys;
    uint32_t ns = 0;
    for (uint32_t q = 0; q < p->n_phys; q++) ns += p->has_shared && row[q] == (int32_t)p->n_routed;
    for (uint32_t d = 0; d < b->nd; d++) {
        b->dl[d] = 0.0;
        for (uint32_t q = 0; q < b->spd; q++)
            if (ns && row[d * b->spd + q] == (int32_t)p->n_routed) b->dl[d] += chunk_cost(tok[E] / ns);
    }
    double tot = 0.0, maxtc = 0.0;
    for (uint32_t e = 0; e < E; e++) tot += tok[e];
    for (uint32_t d = 0; d < b->nd; d++)
        if (b->dl[d] > maxtc) maxtc = b->dl[d];
    /* instance order: tokens per instance descending (ties: lower id) */
    double *key = ms_alloc_array(E, sizeof *key, err);
    if (!key) return MS_E_NOMEM;
    for (uint32_t e = 0; e < E; e++) key[e] = tok[e] / b->cnt[e];
    ms_putil_order_desc(key, E, b->order);
    for (uint32_t k = 0; k < E; k++) {
        uint32_t e = b->order[k];
        double c = chunk_cost(key[e]);
        double wgt = tot > 0.0 ? tok[e] / tot : 0.0;
        for (uint32_t r = 0; r < b->cnt[e]; r++) {
            uint32_t n = b->nplaced[e];
            for (uint32_t j = 0; j < n; j++) rows_of[j] = b->inst[b->off[e] + j] / b->C;
            double h_old = n ? mean_nearest_hop(rows_of, n, R) : 0.0;
            uint32_t best = UINT32_MAX;
            double best_delta = 0.0, best_tc = 0.0;
            for (int allow_dup = 0; allow_dup < 2 && best == UINT32_MAX; allow_dup++)
                for (uint32_t d = 0; d < b->nd; d++) {
                    if (b->free_[d] == 0 || (!allow_dup && dev_holds(b, d, e))) continue;
                    rows_of[n] = d / b->C;
                    double h_new = mean_nearest_hop(rows_of, n + 1, R);
                    double tc = b->dl[d] + c;
                    double delta = (tc > maxtc ? tc - maxtc : 0.0) +
                                   GC_US_PER_HOP * 2.0 * wgt * (n ? h_new - h_old : h_new);
                    if (best == UINT32_MAX || delta < best_delta - 1e-12 ||
                        (fabs(delta - best_delta) <= 1e-12 && (tc < best_tc || (tc == best_tc && d < best)))) {
                        best = d;
                        best_delta = delta;
                        best_tc = tc;
                    }
                }
            if (best == UINT32_MAX) {
                ms_free(key);
                return ms_error_set(err, MS_E_INTERNAL, "layer %u: no free slot left for expert %u", l, e);
            }
            bal_commit(b, l, best, e, c, 0);
            if (b->dl[best] > maxtc) maxtc = b->dl[best];
        }
    }
    ms_free(key);
    ms_putil_sort_device_slots(p, l);
    return MS_OK;
}

/* Contract: greedy-cost (see greedy_cost_layer for the cost proxy). Leaves
 * p->objective to ms_place_run (the mean maximum device load, comparable
 * with the bound). Fails MS_E_INPUT on loads that do not fit; MS_E_NOMEM. */
ms_status ms_place_greedy_cost(const ms_place_ctx *ctx, ms_error *err) {
    ms_status st = ms_putil_check_input(ctx, "greedy-cost", err);
    if (st != MS_OK) return st;
    bal b;
    st = bal_init(&b, ctx, 'r', err);
    if (st != MS_OK) return st;
    double *tok = ms_alloc_array((size_t)b.E + 1, sizeof *tok, err);
    uint32_t *rows_of = ms_alloc_array((size_t)b.E + ms_putil_extra(ctx) + 2, sizeof *rows_of, err);
    if (!tok || !rows_of) st = MS_E_NOMEM;
    for (uint32_t l = 0; l < ctx->p->n_layers && st == MS_OK; l++) st = greedy_cost_layer(ctx, l, &b, tok, rows_of, err);
    ms_free(tok);
    ms_free(rows_of);
    bal_free(&b);
    return st;
}
