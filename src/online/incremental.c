/* incremental.c - the incremental re-placement (moesim/online.h,
 * ms_replay_incremental): a greedy, copy-bounded local search from the
 * placement in service.
 *
 * Per layer the state is the slot -> expert map, each expert's replicas as a
 * list threaded through its slots, replica counts, the device loads under an
 * even split and the devices sorted by load. Every candidate move changes the
 * busiest device (otherwise the layer's maximum cannot drop), so a layer's
 * best move is found by pairing each slot of that device with every other
 * slot (swap, move, replicate its expert there) and with every expert
 * (re-purpose its slot): a few thousand candidates, each priced on the few
 * devices it touches plus the largest load among the others (the first
 * untouched device in load order). The greedy loop applies the best move by
 * gain per copy over all layers, then refreshes only that layer. */
#include "moesim/online.h"

#include <math.h>
#include <string.h>
#ifdef MOESIM_HAVE_OPENMP
#include <omp.h>
#endif

#define NONE UINT32_MAX

typedef enum mv_kind { MV_NONE = 0, MV_SWAP, MV_MOVE, MV_REPURPOSE } mv_kind;

typedef struct move {
    mv_kind kind;
    uint32_t s1, s2;   /* swap/move: s1 on the busiest device, s2 elsewhere; re-purpose: slot s1 */
    uint32_t expert;   /* re-purpose: the expert slot s1 takes */
    uint32_t copies;
    double gain, ratio;
} move;

typedef struct layer_state {
    int32_t *exp;      /* [n_phys] slot -> expert, -1 empty */
    uint32_t *nxt;     /* [n_phys] next slot of the same expert, NONE at the end */
    uint32_t *head;    /* [L] first slot of each expert */
    uint32_t *cnt;     /* [L] */
    const double *w;   /* [L] loads (NULL row entries: 0) */
    double *load;      /* [D] */
    uint32_t *order;   /* [D] devices by load, descending (ties: lower id) */
    uint8_t *written;  /* [n_phys] slots a move of this decision wrote: not written again
                          (a second write would waste the first copy) */
    move best;
} layer_state;

typedef struct ctx {
    uint32_t D, spd, n_phys, L, routed_cols, shared;
} ctx;

/* per-thread scratch for pricing candidates */
typedef struct scratch {
    uint32_t *stamp, *touched, *has; /* [D] */
    double *delta;                   /* [D] */
    uint32_t *on_top;                /* [L] experts on the busiest device (stamped) */
    double *give_floor;              /* [n_phys] see find_best */
    uint32_t st, nt;
} scratch;

static inline double share(const layer_state *ls, uint32_t e) {
    return ls->cnt[e] ? ls->w[e] / ls->cnt[e] : 0.0;
}

static void sort_devices(const ctx *c, layer_state *ls) {
    /* insertion sort: D is small and the order changes little between moves */
    for (uint32_t i = 1; i < c->D; i++) {
        uint32_t d = ls->order[i], j = i;
        while (j > 0) {
            uint32_t p = ls->order[j - 1];
            if (ls->load[p] > ls->load[d] || (ls->load[p] == ls->load[d] && p < d)) break;
            ls->order[j] = p;
            j--;
        }
        ls->order[j] = d;
    }
}

static void recompute_loads(const ctx *c, layer_state *ls) {
    for (uint32_t d = 0; d < c->D; d++) ls->load[d] = 0;
    for (uint32_t s = 0; s < c->n_phys; s++)
        if (ls->exp[s] >= 0) ls->load[s / c->spd] += share(ls, (uint32_t)ls->exp[s]);
    sort_devices(c, ls);
}

static void list_remove(layer_state *ls, uint32_t e, uint32_t s) {
    uint32_t *p = &ls->head[e];
    while (*p != s) p = &ls->nxt[*p];
    *p = ls->nxt[s];
    ls->cnt[e]--;
}

static void list_insert(layer_state *ls, uint32_t e, uint32_t s) {
    ls->nxt[s] = ls->head[e];
    ls->head[e] = s;
    ls->cnt[e]++;
}

/* ---- pricing: deltas on touched devices, then the new maximum */

static inline void begin(scratch *x) {
    x->st++;
    x->nt = 0;
}

static inline void add(scratch *x, uint32_t d, double v) {
    if (x->stamp[d] != x->st) {
        x->stamp[d] = x->st;
        x->delta[d] = 0;
        x->touched[x->nt++] = d;
    }
    x->delta[d] += v;
}

static inline double new_max(const ctx *c, const layer_state *ls, const scratch *x) {
    double m = -INFINITY;
    for (uint32_t i = 0; i < c->D; i++) {
        uint32_t d = ls->order[i];
        if (x->stamp[d] != x->st) {
            m = ls->load[d];
            break;
        }
    }
    for (uint32_t i = 0; i < x->nt; i++) {
        double v = ls->load[x->touched[i]] + x->delta[x->touched[i]];
        if (v > m) m = v;
    }
    return m;
}

static inline bool device_has(const ctx *c, const layer_state *ls, uint32_t d, uint32_t e) {
    for (uint32_t s = d * c->spd; s < (d + 1) * c->spd; s++)
        if (ls->exp[s] == (int32_t)e) return true;
    return false;
}

static inline void consider(move *best, mv_kind kind, uint32_t s1, uint32_t s2, uint32_t e, uint32_t copies,
                            double gain) {
    double ratio = gain / copies;
    if (ratio > best->ratio || (ratio == best->ratio && gain > best->gain)) {
        best->kind = kind;
        best->s1 = s1;
        best->s2 = s2;
        best->expert = e;
        best->copies = copies;
        best->gain = gain;
        best->ratio = ratio;
    }
}

/* The layer's best move using at most max_copies copies (1 or 2). Targets
 * are visited by ascending device load, so the loop stops at the first
 * device whose load alone rules out beating the best move found so far:
 * a move adds the whole share there, a swap adds a positive difference, a
 * replication leaves at least the new loads of the expert's devices and the
 * target's load minus the largest share a slot can give up. */
static void find_best(const ctx *c, layer_state *ls, scratch *x, uint32_t max_copies) {
    move best = {MV_NONE, 0, 0, 0, 0, 0, 0};
    
    const uint32_t top = ls->order[0], spd = c->spd, D = c->D;
    const double M = ls->load[top], eps = 1e-9 * (M > 1 ? M : 1);
    if (!(M > 0)) {
        ls->best = best;
        return;
    }
    if (x->st > UINT32_MAX / 2) { /* marks are stamp values: restart them well before they wrap */
        memset(x->stamp, 0, D * sizeof *x->stamp);
        memset(x->has, 0, D * sizeof *x->has);
        memset(x->on_top, 0, c->L * sizeof *x->on_top);
        x->st = 0;
    }
    /* experts on the busiest device; the largest share a slot may give up */
    begin(x);
    const uint32_t mark = x->st;
    for (uint32_t s = top * spd; s < (top + 1) * spd; s++)
        if (ls->exp[s] >= 0) x->on_top[ls->exp[s]] = mark;
    /* give_floor[s]: when slot s gives up its replica, the largest new load
     * of its expert's other devices (0 for an empty slot, INFINITY when it
     * cannot: the expert's last replica, or the shared expert's) */
    double give_max = 0;
    for (uint32_t s = 0; s < c->n_phys; s++) {
        const int32_t e = ls->exp[s];
        double f = 0;
        if (e >= 0 && ((uint32_t)e == c->shared || ls->cnt[e] < 2)) f = INFINITY;
        else if (e >= 0) {
            const double u = share(ls, (uint32_t)e), up = ls->w[e] / (ls->cnt[e] - 1) - u;
            if (u > give_max) give_max = u;
            for (uint32_t r = ls->head[e]; r != NONE; r = ls->nxt[r])
                if (r != s && ls->load[r / spd] + up > f) f = ls->load[r / spd] + up;
        }
        x->give_floor[s] = f;
    }
#define THR1 (M - (best.ratio > eps ? best.ratio : eps))
#define THR2 (M - (2 * best.ratio > eps ? 2 * best.ratio : eps))
    for (uint32_t s1 = top * spd; s1 < (top + 1) * spd; s1++) {
        if (ls->exp[s1] < 0 || (uint32_t)ls->exp[s1] == c->shared) continue;
        const bool s1_free = !ls->written[s1];
        const uint32_t a = (uint32_t)ls->exp[s1];
        const double ua = share(ls, a), ua_up = ls->w[a] / (ls->cnt[a] + 1);
        /* devices holding a, and their loads once a has one more replica */
        begin(x);
        const uint32_t amark = x->st;
        double rep_floor = 0;
        for (uint32_t r = ls->head[a]; r != NONE; r = ls->nxt[r]) x->has[r / spd] = amark;
        for (uint32_t r = ls->head[a]; r != NONE; r = ls->nxt[r]) {
            double v = ls->load[r / spd] - (ua - ua_up);
            if (v > rep_floor) rep_floor = v;
        }
        /* what the untouched devices keep: a move or swap leaves every device but
         * the top and d2, so the second busiest unless d2 is that one; a
         * replication also lowers a's devices, so the busiest device without a
         * (dr) stays unless it is d2 */
        const uint32_t second = D > 1 ? ls->order[1] : top;
        uint32_t dr = top;
        for (uint32_t i = 1; i < D && dr == top; i++)
            if (x->has[ls->order[i]] != amark) dr = ls->order[i];
        const double keep_ms = D > 1 ? ls->load[second] : 0, keep_rep = dr != top ? ls->load[dr] : 0;
        /* when the untouched devices already cap every candidate at the best
         * ratio, only d2 = second (moves, swaps) or dr (replications) remain */
        const double r0 = best.ratio > eps ? best.ratio : eps;
        const bool capped = M - keep_ms <= r0 && (M - keep_ms) / 2 < r0 && M - keep_rep <= r0;
        const uint32_t only[2] = {second, dr};
        for (uint32_t i = capped ? 2 : D; i-- > 0;) {
            const uint32_t d2 = capped ? only[i] : ls->order[i];
            if (d2 == top || (capped && i == 0 && dr == second)) continue;
            const double L2 = ls->load[d2];
            /* upper bounds on what a candidate at d2 gains: a move leaves the top at
             * M - ua and d2 at L2 + ua; a swap leaves max(M - ua + ub, L2 + ua - ub) >=
             * (M + L2) / 2 over two copies; a replication leaves its expert's devices
             * at rep_floor and d2 at L2 + ua_up - (the share it gives up). A one-copy
             * candidate must beat the best gain (a tie loses: same gain, same ratio);
             * a swap may tie a one-copy move's ratio with twice its gain. */
            const double rmin = best.ratio > eps ? best.ratio : eps;
            bool move_ok = s1_free && ua > rmin && M - L2 - ua > rmin;
            bool swap_ok = s1_free && max_copies >= 2 && (M - L2) / 4 >= rmin;
            bool rep_ok = M - rep_floor > rmin && M - (L2 + ua_up - give_max) > rmin;
            if (!move_ok && !swap_ok && !rep_ok) {
                if (capped) continue;
                break; /* so is every busier device */
            }
            move_ok &= d2 == second || M - keep_ms > rmin;
            swap_ok &= d2 == second || (M - keep_ms) / 2 >= rmin;
            rep_ok &= d2 == dr || M - keep_rep > rmin;
            if (!move_ok && !swap_ok && !rep_ok) continue;
            if (x->has[d2] == amark) continue; /* d2 would hold a twice */
            for (uint32_t s2 = d2 * spd; s2 < (d2 + 1) * spd; s2++) {
                if (ls->written[s2]) continue;
                const int32_t bx = ls->exp[s2];
                if (bx >= 0 && ((uint32_t)bx == c->shared || (uint32_t)bx == a)) continue;
                if (bx < 0 && move_ok) { /* move a into the empty slot */
                    begin(x);
                    add(x, top, -ua);
                    add(x, d2, ua);
                    double g = M - new_max(c, ls, x);
                    if (g > eps) consider(&best, MV_MOVE, s1, s2, NONE, 1, g);
                } else if (bx >= 0 && swap_ok && x->on_top[bx] != mark) {
                    const double ub = share(ls, (uint32_t)bx);
                    if (ub < ua && L2 + ua - ub <= THR2 && M - ua + ub <= THR2) {
                        begin(x);
                        add(x, top, ub - ua);
                        add(x, d2, ua - ub);
                        double g = M - new_max(c, ls, x);
                        if (g > eps) consider(&best, MV_SWAP, s1, s2, NONE, 2, g);
                    }
                }
                /* replicate a into s2 (its expert keeps another replica, or s2 is empty) */
                if (!rep_ok || (bx >= 0 && ls->cnt[bx] < 2)) continue;
                const double ux = bx >= 0 ? share(ls, (uint32_t)bx) : 0;
                if (L2 + ua_up - ux >= THR1 || rep_floor >= THR1 || x->give_floor[s2] >= THR1) continue;
                begin(x);
                for (uint32_t r = ls->head[a]; r != NONE; r = ls->nxt[r]) add(x, r / spd, ua_up - ua);
                add(x, d2, ua_up - ux);
                if (bx >= 0) {
                    const double ux_down = ls->w[bx] / (ls->cnt[bx] - 1);
                    for (uint32_t r = ls->head[bx]; r != NONE; r = ls->nxt[r])
                        if (r != s2) add(x, r / spd, ux_down - ux);
                }
                double g = M - new_max(c, ls, x);
                if (g > eps) consider(&best, MV_REPURPOSE, s2, NONE, a, 1, g);
            }
        }
        /* re-purpose s1 itself: a (kept elsewhere) gives its slot to another
         * expert b. The second busiest device keeps its load unless it holds
         * b (then it drops) or a (then it rises): when that load already caps
         * the gain at the best, only the experts on it can help */
        if (ls->cnt[a] < 2 || !s1_free) continue;
        const double ua_down = ls->w[a] / (ls->cnt[a] - 1);
        const double rb = best.ratio > eps ? best.ratio : eps;
        const bool second_caps = D > 1 && M - keep_ms <= rb;
        if (second_caps && x->has[second] == amark) continue;
        uint32_t n_b = c->L, cand[64];
        const bool only_second = second_caps && spd <= 64;
        if (only_second) {
            n_b = 0;
            for (uint32_t q = second * spd; q < (second + 1) * spd; q++)
                if (ls->exp[q] >= 0) cand[n_b++] = (uint32_t)ls->exp[q];
        }
        for (uint32_t bi = 0; bi < n_b; bi++) {
            const uint32_t b = only_second ? cand[bi] : bi;
            if (b == a || b == c->shared || x->on_top[b] == mark) continue;
            const double ub = share(ls, b), ub_up = ls->w[b] / (ls->cnt[b] + 1);
            if (M - ua + ub_up >= THR1) continue;
            begin(x);
            add(x, top, ub_up - ua);
            for (uint32_t r = ls->head[b]; r != NONE; r = ls->nxt[r]) add(x, r / spd, ub_up - ub);
            for (uint32_t r = ls->head[a]; r != NONE; r = ls->nxt[r])
                if (r != s1) add(x, r / spd, ua_down - ua);
            double g = M - new_max(c, ls, x);
            if (g > eps) consider(&best, MV_REPURPOSE, s1, NONE, b, 1, g);
        }
    }
#undef THR1
#undef THR2
    ls->best = best;
}

static void apply(const ctx *c, layer_state *ls) {
    const move *m = &ls->best;
    ls->written[m->s1] = 1;
    if (m->kind != MV_REPURPOSE) ls->written[m->s2] = 1;
    if (m->kind == MV_SWAP) {
        uint32_t a = (uint32_t)ls->exp[m->s1], b = (uint32_t)ls->exp[m->s2];
        list_remove(ls, a, m->s1);
        list_remove(ls, b, m->s2);
        ls->exp[m->s1] = (int32_t)b;
        ls->exp[m->s2] = (int32_t)a;
        list_insert(ls, b, m->s1);
        list_insert(ls, a, m->s2);
    } else if (m->kind == MV_MOVE) {
        uint32_t a = (uint32_t)ls->exp[m->s1];
        list_remove(ls, a, m->s1);
        ls->exp[m->s1] = -1;
        ls->exp[m->s2] = (int32_t)a;
        list_insert(ls, a, m->s2);
    } else if (m->kind == MV_REPURPOSE) {
        if (ls->exp[m->s1] >= 0) list_remove(ls, (uint32_t)ls->exp[m->s1], m->s1);
        ls->exp[m->s1] = (int32_t)m->expert;
        list_insert(ls, m->expert, m->s1);
    }
    recompute_loads(c, ls);
}

static void scratch_free(scratch *x) {
    ms_free(x->stamp);
    ms_free(x->touched);
    ms_free(x->has);
    ms_free(x->delta);
    ms_free(x->on_top);
    ms_free(x->give_floor);
}

static ms_status scratch_init(const ctx *c, scratch *x, ms_error *err) {
    memset(x, 0, sizeof *x);
    x->stamp = ms_calloc_array(c->D, sizeof *x->stamp, err);
    x->touched = ms_calloc_array(c->D, sizeof *x->touched, err);
    x->has = ms_calloc_array(c->D, sizeof *x->has, err);
    x->delta = ms_calloc_array(c->D, sizeof *x->delta, err);
    x->on_top = ms_calloc_array(c->L, sizeof *x->on_top, err);
    x->give_floor = ms_calloc_array(c->n_phys, sizeof *x->give_floor, err);
    if (!x->stamp || !x->touched || !x->has || !x->delta || !x->on_top || !x->give_floor) {
        scratch_free(x);
        return MS_E_NOMEM;
    }
    return MS_OK;
}

/* The best move over layers by ratio (ties: larger gain, lower layer), or -1. */
static int64_t pick(const layer_state *ls, uint32_t n) {
    int64_t b = -1;
    for (uint32_t l = 0; l < n; l++) {
        const move *m = &ls[l].best;
        if (m->kind == MV_NONE) continue;
        if (b < 0 || m->ratio > ls[b].best.ratio || (m->ratio == ls[b].best.ratio && m->gain > ls[b].best.gain))
            b = l;
    }
    return b;
}

ms_status ms_replay_incremental(const ms_placement *cur, const ms_loads *loads, uint32_t max_moves,
                                ms_placement **out, uint32_t *copies, ms_error *err) {
    *out = NULL;
    if (copies) *copies = 0;
    if (!loads || loads->n_layers != cur->n_layers ||
        (loads->n_experts != cur->n_routed && loads->n_experts != cur->n_logical))
        return ms_error_set(err, MS_E_INPUT, "incremental: loads of %u x %u do not match a placement of %u layers x %u "
                            "experts", loads ? loads->n_layers : 0, loads ? loads->n_experts : 0, cur->n_layers,
                            cur->n_routed);
    if (!cur->log2phy) return ms_error_set(err, MS_E_INPUT, "incremental: the placement has no replica index");
    ms_status st = ms_placement_clone(cur, out, err);
    if (st != MS_OK) return st;
    ms_placement *p = *out;
    snprintf(p->algorithm, sizeof p->algorithm, "incremental");
    if (max_moves == 0) return MS_OK;

    ctx c = {ms_cluster_devices(&cur->cluster), cur->cluster.slots_per_device, cur->n_phys, cur->n_logical,
             loads->n_experts, cur->has_shared ? cur->n_routed : NONE};
    const uint32_t nl = cur->n_layers;
    /* the shared expert's load is 0 when the loads have routed columns only */
    double *wbuf = ms_calloc_array((size_t)nl * c.L, sizeof *wbuf, err);
    layer_state *ls = ms_calloc_array(nl, sizeof *ls, err);
    int32_t *ibuf = ms_alloc_array((size_t)nl * c.n_phys, sizeof *ibuf, err);
    uint8_t *wrbuf = ms_calloc_array((size_t)nl * c.n_phys, 1, err);
    uint32_t *ubuf = ms_alloc_array((size_t)nl * (c.n_phys + 2 * (size_t)c.L + c.D), sizeof *ubuf, err);
    double *lbuf = ms_alloc_array((size_t)nl * c.D, sizeof *lbuf, err);
    int nthreads = ms_thread_count();
    if (nthreads < 1) nthreads = 1;
    if ((uint32_t)nthreads > nl) nthreads = (int)nl;
    scratch *xs = ms_calloc_array((size_t)nthreads, sizeof *xs, err);
    st = wbuf && ls && ibuf && wrbuf && ubuf && lbuf && xs ? MS_OK : MS_E_NOMEM;
    for (int i = 0; i < nthreads && st == MS_OK; i++) st = scratch_init(&c, &xs[i], err);
    if (st == MS_OK) {
        for (uint32_t l = 0; l < nl; l++) {
            layer_state *L = &ls[l];
            double *w = wbuf + (size_t)l * c.L;
            memcpy(w, loads->w + (size_t)l * loads->n_experts, loads->n_experts * sizeof *w);
            L->w = w;
            L->exp = ibuf + (size_t)l * c.n_phys;
            L->written = wrbuf + (size_t)l * c.n_phys;
            memcpy(L->exp, cur->phy2log + (size_t)l * c.n_phys, c.n_phys * sizeof *L->exp);
            uint32_t *u = ubuf + (size_t)l * (c.n_phys + 2 * (size_t)c.L + c.D);
            L->nxt = u;
            L->head = u + c.n_phys;
            L->cnt = u + c.n_phys + c.L;
            L->order = u + c.n_phys + 2 * (size_t)c.L;
            L->load = lbuf + (size_t)l * c.D;
            for (uint32_t e = 0; e < c.L; e++) L->head[e] = NONE, L->cnt[e] = 0;
            for (uint32_t s = c.n_phys; s-- > 0;) /* lists in ascending slot order */
                if (L->exp[s] >= 0) list_insert(L, (uint32_t)L->exp[s], s);
            for (uint32_t d = 0; d < c.D; d++) L->order[d] = d;
            recompute_loads(&c, L);
        }
        uint32_t budget = max_moves, first = budget < 2 ? budget : 2;
#ifdef MOESIM_HAVE_OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads)
#endif
        for (uint32_t l = 0; l < nl; l++) {
            int tid = 0;
#ifdef MOESIM_HAVE_OPENMP
            tid = omp_get_thread_num();
#endif
            find_best(&c, &ls[l], &xs[tid], first);
        }
        bool limited = first < 2;
        uint32_t made = 0;
        while (budget > 0) {
            int64_t b = pick(ls, nl);
            if (b < 0) break;
            apply(&c, &ls[b]);
            budget -= ls[b].best.copies;
            made += ls[b].best.copies;
            if (budget == 1 && !limited) { /* only single copies fit now: every layer's best again */
                limited = true;
                for (uint32_t l = 0; l < nl; l++)
                    if ((int64_t)l != b) find_best(&c, &ls[l], &xs[0], 1);
            }
            if (budget > 0) find_best(&c, &ls[b], &xs[0], budget < 2 ? budget : 2);
        }
        if (copies) *copies = made;
        for (uint32_t l = 0; l < nl; l++)
            memcpy(p->phy2log + (size_t)l * c.n_phys, ls[l].exp, c.n_phys * sizeof *ls[l].exp);
        ms_free(p->log2phy);
        ms_free(p->logcnt);
        p->log2phy = NULL;
        p->logcnt = NULL;
        st = ms_placement_index(p, err);
        if (st == MS_OK) st = ms_placement_check(p, err);
    }
    if (xs)
        for (int i = 0; i < nthreads; i++) scratch_free(&xs[i]);
    ms_free(xs);
    ms_free(wbuf);
    ms_free(ls);
    ms_free(ibuf);
    ms_free(wrbuf);
    ms_free(ubuf);
    ms_free(lbuf);
    if (st != MS_OK) {
        ms_placement_free(*out);
        *out = NULL;
    }
    return st;
}
