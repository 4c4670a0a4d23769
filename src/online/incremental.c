/* incremental.c - the incremental re-placement (moesim/online.h,
 * ms_replay_incremental): a greedy, copy-bounded local search from the
 * placement in service.
 *
 * A device's value is its mean load per step under an even split over
 * replicas plus z standard deviations of it (per-step variances of the
 * experts' counts, divided by replicas squared): the busiest device of a step
 * is not the one with the largest mean when a hot expert with few replicas
 * swings from step to step, and replicas damp the swing. z = 0 (or no
 * variances) is EPLB's measure, the mean.
 *
 * Per layer the state is the slot -> expert map, each expert's replicas as a
 * list threaded through its slots, replica counts, device means, variances
 * and values, and the devices sorted by value and by mean. Every candidate
 * move changes the device of the largest value (otherwise the layer's
 * maximum cannot drop), so a layer's best move pairs each slot of that device
 * with other slots (swap, move, replicate its expert there) and with every
 * expert (re-purpose its slot), each priced on the devices it touches plus
 * the largest value among the others (the first untouched device in value
 * order). Targets are visited by ascending mean and the visit stops where a
 * bound on the gain (from means: a value is never below its mean) cannot
 * beat the best move found. The greedy loop applies the best move by gain
 * per copy over all layers, then refreshes only that layer. */
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
    uint32_t s1, s2;   /* swap/move: s1 on the top device, s2 elsewhere; re-purpose: slot s1 */
    uint32_t expert;   /* re-purpose: the expert slot s1 takes */
    uint32_t copies;
    double gain, ratio;
} move;

typedef struct layer_state {
    int32_t *exp;      /* [n_phys] slot -> expert, -1 empty */
    uint32_t *nxt;     /* [n_phys] next slot of the same expert, NONE at the end */
    uint32_t *head;    /* [L] first slot of each expert */
    uint32_t *cnt;     /* [L] */
    const double *w;   /* [L] mean load per step */
    const double *v;   /* [L] its variance (all 0 without variances) */
    double *mu, *var, *val; /* [D] device mean, variance, value */
    uint32_t *order;   /* [D] devices by value, descending (ties: lower id) */
    uint32_t *order_mu;/* [D] devices by mean, descending (ties: lower id) */
    uint8_t *written;  /* [n_phys] slots a move of this decision wrote: not written again
                          (a second write would waste the first copy) */
    move best;
} layer_state;

typedef struct ctx {
    uint32_t D, spd, n_phys, L, shared;
    double z;
} ctx;

/* per-thread scratch for pricing candidates */
typedef struct scratch {
    uint32_t *stamp, *touched, *has; /* [D] */
    double *dmu, *dvar;              /* [D] */
    uint32_t *on_top;                /* [L] experts on the top device (stamped) */
    double *give_floor;              /* [n_phys] see find_best */
    uint32_t st, nt;
} scratch;

static inline double value(const ctx *c, double mu, double var) { return mu + c->z * sqrt(var > 0 ? var : 0); }
static inline double share(const layer_state *ls, uint32_t e) { return ls->cnt[e] ? ls->w[e] / ls->cnt[e] : 0.0; }
static inline double vshare(const layer_state *ls, uint32_t e) {
    return ls->cnt[e] ? ls->v[e] / ((double)ls->cnt[e] * ls->cnt[e]) : 0.0;
}

/* insertion sort by key descending, ties by the lower device: D is small and
 * the order changes little between moves */
static void sort_by(uint32_t *order, const double *key, uint32_t D) {
    for (uint32_t i = 1; i < D; i++) {
        uint32_t d = order[i], j = i;
        while (j > 0) {
            uint32_t p = order[j - 1];
            if (key[p] > key[d] || (key[p] == key[d] && p < d)) break;
            order[j] = p;
            j--;
        }
        order[j] = d;
    }
}

static void recompute(const ctx *c, layer_state *ls) {
    for (uint32_t d = 0; d < c->D; d++) ls->mu[d] = ls->var[d] = 0;
    for (uint32_t s = 0; s < c->n_phys; s++)
        if (ls->exp[s] >= 0) {
            ls->mu[s / c->spd] += share(ls, (uint32_t)ls->exp[s]);
            ls->var[s / c->spd] += vshare(ls, (uint32_t)ls->exp[s]);
        }
    for (uint32_t d = 0; d < c->D; d++) ls->val[d] = value(c, ls->mu[d], ls->var[d]);
    sort_by(ls->order, ls->val, c->D);
    sort_by(ls->order_mu, ls->mu, c->D);
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

/* ---- pricing: deltas on touched devices, then the new maximum value */

static inline void begin(scratch *x) {
    x->st++;
    x->nt = 0;
}

static inline void add(scratch *x, uint32_t d, double dmu, double dvar) {
    if (x->stamp[d] != x->st) {
        x->stamp[d] = x->st;
        x->dmu[d] = 0;
        x->dvar[d] = 0;
        x->touched[x->nt++] = d;
    }
    x->dmu[d] += dmu;
    x->dvar[d] += dvar;
}

/* the largest value once the deltas apply; *touched_max the largest among
 * the touched devices alone */
static inline double new_max(const ctx *c, const layer_state *ls, const scratch *x, double *touched_max) {
    double m = -INFINITY, t = -INFINITY;
    for (uint32_t i = 0; i < c->D; i++) {
        uint32_t d = ls->order[i];
        if (x->stamp[d] != x->st) {
            m = ls->val[d];
            break;
        }
    }
    for (uint32_t i = 0; i < x->nt; i++) {
        const uint32_t d = x->touched[i];
        double v = value(c, ls->mu[d] + x->dmu[d], ls->var[d] + x->dvar[d]);
        if (v > t) t = v;
    }
    if (touched_max) *touched_max = t;
    return t > m ? t : m;
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

/* The layer's best move using at most max_copies copies (1 or 2).
 * Bounds used to skip candidates (a gain is M minus the new maximum, which is
 * at least the new value of any touched device, at least its new mean, and
 * at least the largest untouched value): a move leaves the top at its value
 * without the moved replica and d2 at a mean of at least mu2 + ua; a swap
 * keeps the sum of the two means, so one of them is at least (mu_top + mu2)
 * / 2, over two copies; a replication leaves its expert's devices at
 * rep_floor and d2 at a mean of at least mu2 + ua_up - (the largest share a
 * slot gives up); a slot that gives up its replica leaves its expert's other
 * devices at give_floor. One-copy candidates must beat the best gain (a tie
 * loses: same gain, same ratio); a swap may tie a one-copy move's ratio with
 * twice its gain. */
static void find_best(const ctx *c, layer_state *ls, scratch *x, uint32_t max_copies) {
    move best = {MV_NONE, 0, 0, 0, 0, 0, 0};
    const uint32_t top = ls->order[0], spd = c->spd, D = c->D;
    const double M = ls->val[top], mu_top = ls->mu[top], eps = 1e-9 * (M > 1 ? M : 1);
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
    begin(x);
    const uint32_t mark = x->st;
    for (uint32_t s = top * spd; s < (top + 1) * spd; s++)
        if (ls->exp[s] >= 0) x->on_top[ls->exp[s]] = mark;
    /* give_floor[s]: when slot s gives up its replica, the largest new value
     * of its expert's other devices (0 for an empty slot, INFINITY when it
     * cannot: the expert's last replica, or the shared expert's; a bound only
     * where nothing else lowers those devices); give_max:
     * the largest mean share a slot may give up */
    double give_max = 0;
    for (uint32_t s = 0; s < c->n_phys; s++) {
        const int32_t e = ls->exp[s];
        double f = 0;
        if (e >= 0 && ((uint32_t)e == c->shared || ls->cnt[e] < 2)) {
            f = INFINITY;
        } else if (e >= 0) {
            const double n = ls->cnt[e], u = ls->w[e] / n, du = ls->w[e] / (n - 1) - u;
            const double dv = ls->v[e] / ((n - 1) * (n - 1)) - ls->v[e] / (n * n);
            if (u > give_max) give_max = u;
            for (uint32_t r = ls->head[e]; r != NONE; r = ls->nxt[r]) {
                const uint32_t d = r / spd;
                double nv = value(c, ls->mu[d] + du, ls->var[d] + dv);
                if (r != s && nv > f) f = nv;
            }
        }
        x->give_floor[s] = f;
    }
#define RMIN (best.ratio > eps ? best.ratio : eps)
#define THR1 (M - RMIN)
#define THR2 (M - (2 * best.ratio > eps ? 2 * best.ratio : eps))
    const uint32_t second = D > 1 ? ls->order[1] : top;
    const double keep_ms = D > 1 ? ls->val[second] : 0;
    for (uint32_t s1 = top * spd; s1 < (top + 1) * spd; s1++) {
        if (ls->exp[s1] < 0 || (uint32_t)ls->exp[s1] == c->shared) continue;
        const bool s1_free = !ls->written[s1];
        const uint32_t a = (uint32_t)ls->exp[s1];
        const double ra = ls->cnt[a], ua = share(ls, a), ua_up = ls->w[a] / (ra + 1);
        const double va = vshare(ls, a), va_up = ls->v[a] / ((ra + 1) * (ra + 1));
        const double top_rm = value(c, mu_top - ua, ls->var[top] - va); /* the top without s1's replica */
        /* devices holding a, and their largest value once a has one more replica */
        begin(x);
        const uint32_t amark = x->st;
        for (uint32_t r = ls->head[a]; r != NONE; r = ls->nxt[r]) {
            x->has[r / spd] = amark;
            add(x, r / spd, ua_up - ua, va_up - va);
        }
        double rep_floor;
        (void)new_max(c, ls, x, &rep_floor);
        /* what the untouched devices keep: a move or swap leaves every device but
         * the top and d2, so the second by value unless d2 is that one; a
         * replication also lowers a's devices, so the first by value without a
         * (dr) stays unless it is d2 */
        uint32_t dr = top;
        for (uint32_t i = 1; i < D && dr == top; i++)
            if (x->has[ls->order[i]] != amark) dr = ls->order[i];
        const double keep_rep = dr != top ? ls->val[dr] : 0;
        /* when the untouched devices already cap every candidate at the best
         * ratio, only d2 = second or dr remain */
        const bool capped = M - keep_ms <= RMIN && (M - keep_ms) / 2 < RMIN && M - keep_rep <= RMIN;
        const uint32_t only[2] = {second, dr};
        for (uint32_t i = capped ? 2 : D; i-- > 0;) {
            const uint32_t d2 = capped ? only[i] : ls->order_mu[i];
            if (d2 == top || (capped && i == 0 && dr == second)) continue;
            const double mu2 = ls->mu[d2];
            bool move_ok = s1_free && M - top_rm > RMIN && M - (mu2 + ua) > RMIN;
            bool swap_ok = s1_free && max_copies >= 2 && (M - (mu_top + mu2) / 2) / 2 >= RMIN;
            bool rep_ok = M - rep_floor > RMIN && M - (mu2 + ua_up - give_max) > RMIN;
            if (!move_ok && !swap_ok && !rep_ok) {
                if (capped) continue;
                break; /* and so for every device of a larger mean */
            }
            move_ok &= d2 == second || M - keep_ms > RMIN;
            swap_ok &= d2 == second || (M - keep_ms) / 2 >= RMIN;
            rep_ok &= d2 == dr || M - keep_rep > RMIN;
            if (!move_ok && !swap_ok && !rep_ok) continue;
            if (x->has[d2] == amark) continue; /* d2 would hold a twice */
            for (uint32_t s2 = d2 * spd; s2 < (d2 + 1) * spd; s2++) {
                if (ls->written[s2]) continue;
                const int32_t bx = ls->exp[s2];
                if (bx >= 0 && ((uint32_t)bx == c->shared || (uint32_t)bx == a)) continue;
                if (bx < 0 && move_ok) { /* move a into the empty slot */
                    begin(x);
                    add(x, top, -ua, -va);
                    add(x, d2, ua, va);
                    double g = M - new_max(c, ls, x, NULL);
                    if (g > eps) consider(&best, MV_MOVE, s1, s2, NONE, 1, g);
                } else if (bx >= 0 && swap_ok && x->on_top[bx] != mark) {
                    const double ub = share(ls, (uint32_t)bx), vb = vshare(ls, (uint32_t)bx);
                    if (ub < ua && mu2 + ua - ub <= THR2 && mu_top - ua + ub <= THR2) {
                        begin(x);
                        add(x, top, ub - ua, vb - va);
                        add(x, d2, ua - ub, va - vb);
                        double g = M - new_max(c, ls, x, NULL);
                        if (g > eps) consider(&best, MV_SWAP, s1, s2, NONE, 2, g);
                    }
                }
                /* replicate a into s2 (its expert keeps another replica, or s2 is empty) */
                if (!rep_ok || (bx >= 0 && ls->cnt[bx] < 2)) continue;
                const double ux = bx >= 0 ? share(ls, (uint32_t)bx) : 0;
                if (mu2 + ua_up - ux >= THR1 || rep_floor >= THR1) continue;
                if (bx >= 0 && x->give_floor[s2] >= THR1) { /* a floor only where a's replication lowers none */
                    bool shared_dev = false;
                    for (uint32_t r = ls->head[bx]; r != NONE && !shared_dev; r = ls->nxt[r])
                        shared_dev = r != s2 && x->has[r / spd] == amark;
                    if (!shared_dev) continue;
                }
                begin(x);
                for (uint32_t r = ls->head[a]; r != NONE; r = ls->nxt[r]) add(x, r / spd, ua_up - ua, va_up - va);
                add(x, d2, ua_up, va_up);
                if (bx >= 0) {
                    const double n = ls->cnt[bx], vx = vshare(ls, (uint32_t)bx);
                    const double ux_down = ls->w[bx] / (n - 1), vx_down = ls->v[bx] / ((n - 1) * (n - 1));
                    add(x, d2, -ux, -vx);
                    for (uint32_t r = ls->head[bx]; r != NONE; r = ls->nxt[r])
                        if (r != s2) add(x, r / spd, ux_down - ux, vx_down - vx);
                }
                double g = M - new_max(c, ls, x, NULL);
                if (g > eps) consider(&best, MV_REPURPOSE, s2, NONE, a, 1, g);
            }
        }
        /* re-purpose s1 itself: a (kept elsewhere) gives its slot to another
         * expert b. The second device by value keeps its value unless it holds
         * b (then it drops) or a (then it rises): when that value already caps
         * the gain at the best, only the experts on it can help */
        if (ls->cnt[a] < 2 || !s1_free) continue;
        const double ua_down = ls->w[a] / (ra - 1), va_down = ls->v[a] / ((ra - 1) * (ra - 1));
        const bool second_caps = D > 1 && M - keep_ms <= RMIN;
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
            const double rb = ls->cnt[b], ub = share(ls, b), ub_up = ls->w[b] / (rb + 1);
            if (mu_top - ua + ub_up >= THR1) continue;
            const double vb = vshare(ls, b), vb_up = ls->v[b] / ((rb + 1) * (rb + 1));
            begin(x);
            add(x, top, ub_up - ua, vb_up - va);
            for (uint32_t r = ls->head[b]; r != NONE; r = ls->nxt[r]) add(x, r / spd, ub_up - ub, vb_up - vb);
            for (uint32_t r = ls->head[a]; r != NONE; r = ls->nxt[r])
                if (r != s1) add(x, r / spd, ua_down - ua, va_down - va);
            double g = M - new_max(c, ls, x, NULL);
            if (g > eps) consider(&best, MV_REPURPOSE, s1, NONE, b, 1, g);
        }
    }
#undef RMIN
#undef THR1
#undef THR2
    ls->best = best;
}

/* The layer's replica-count repair: the expert with the largest share per
 * replica (b) takes a slot from the expert that keeps the smallest share
 * after giving one up (a, two or more replicas), when that lowers the
 * largest share; of a's slots (not written, on a device without b) the one
 * whose re-purpose leaves the smallest maximum value, and only when that is
 * no larger than the current maximum. EPLB's replica counts minimise the
 * largest share; this step moves towards them one copy at a time and lets
 * a drifted placement drop replicas its experts no longer need. The move's
 * gain is the share reduction (ls->best), MV_NONE when there is none. */
static void find_count_move(const ctx *c, layer_state *ls, scratch *x) {
    move best = {MV_NONE, 0, 0, 0, 0, 0, 0};
    const uint32_t spd = c->spd;
    uint32_t b = NONE;
    double sb = 0;
    for (uint32_t e = 0; e < c->L; e++)
        if (e != c->shared && share(ls, e) > sb) sb = share(ls, e), b = e;
    if (b == NONE) {
        ls->best = best;
        return;
    }
    const double M = ls->val[ls->order[0]], eps = 1e-9 * (M > 1 ? M : 1);
    const double rb = ls->cnt[b], ub = sb, ub_up = ls->w[b] / (rb + 1), vb = vshare(ls, b),
                 vb_up = ls->v[b] / ((rb + 1) * (rb + 1));
    begin(x);
    const uint32_t bmark = x->st;
    for (uint32_t r = ls->head[b]; r != NONE; r = ls->nxt[r]) x->has[r / spd] = bmark;
    /* donors by the share they keep, smallest first: the first with an eligible slot */
    double floor_share = -1; /* donors already tried: (share, id) up to (floor_share, floor_e) */
    uint32_t floor_e = 0;
    for (;;) {
        uint32_t a = NONE;
        double sa = INFINITY;
        for (uint32_t e = 0; e < c->L; e++) {
            if (e == b || e == c->shared || ls->cnt[e] < 2) continue;
            double v = ls->w[e] / (ls->cnt[e] - 1);
            if ((v > floor_share || (v == floor_share && e > floor_e)) && v < sa) sa = v, a = e;
        }
        if (a == NONE || (ub_up > sa ? ub_up : sa) >= ub - eps) break; /* no donor lowers the largest share */
        const double ra = ls->cnt[a], ua = share(ls, a), va = vshare(ls, a);
        const double ua_down = ls->w[a] / (ra - 1), va_down = ls->v[a] / ((ra - 1) * (ra - 1));
        uint32_t pick_s = NONE;
        double pick_max = INFINITY;
        for (uint32_t s = ls->head[a]; s != NONE; s = ls->nxt[s]) {
            if (ls->written[s] || x->has[s / spd] == bmark) continue;
            begin(x);
            add(x, s / spd, ub_up - ua, vb_up - va);
            for (uint32_t r = ls->head[b]; r != NONE; r = ls->nxt[r]) add(x, r / spd, ub_up - ub, vb_up - vb);
            for (uint32_t r = ls->head[a]; r != NONE; r = ls->nxt[r])
                if (r != s) add(x, r / spd, ua_down - ua, va_down - va);
            double m = new_max(c, ls, x, NULL);
            if (m < pick_max) pick_max = m, pick_s = s;
        }
        if (pick_s != NONE && pick_max <= M + eps) {
            best.kind = MV_REPURPOSE;
            best.s1 = pick_s;
            best.expert = b;
            best.copies = 1;
            best.gain = best.ratio = ub - (ub_up > sa ? ub_up : sa);
            break;
        }
        floor_share = sa; /* try the next donor */
        floor_e = a;
        if (pick_s == NONE) continue;
        break; /* a donor slot exists but every one raises the maximum: leave it to the local search */
    }
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
    recompute(c, ls);
}

static void scratch_free(scratch *x) {
    ms_free(x->stamp);
    ms_free(x->touched);
    ms_free(x->has);
    ms_free(x->dmu);
    ms_free(x->dvar);
    ms_free(x->on_top);
    ms_free(x->give_floor);
}

static ms_status scratch_init(const ctx *c, scratch *x, ms_error *err) {
    memset(x, 0, sizeof *x);
    x->stamp = ms_calloc_array(c->D, sizeof *x->stamp, err);
    x->touched = ms_calloc_array(c->D, sizeof *x->touched, err);
    x->has = ms_calloc_array(c->D, sizeof *x->has, err);
    x->dmu = ms_calloc_array(c->D, sizeof *x->dmu, err);
    x->dvar = ms_calloc_array(c->D, sizeof *x->dvar, err);
    x->on_top = ms_calloc_array(c->L, sizeof *x->on_top, err);
    x->give_floor = ms_calloc_array(c->n_phys, sizeof *x->give_floor, err);
    if (!x->stamp || !x->touched || !x->has || !x->dmu || !x->dvar || !x->on_top || !x->give_floor) {
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

static bool same_shape(const ms_placement *p, const ms_loads *l) {
    return l && l->n_layers == p->n_layers && (l->n_experts == p->n_routed || l->n_experts == p->n_logical);
}

ms_status ms_replay_incremental(const ms_placement *cur, const ms_loads *mean, const ms_loads *var, double z,
                                uint32_t max_moves, ms_placement **out, uint32_t *copies, ms_error *err) {
    *out = NULL;
    if (copies) *copies = 0;
    if (!same_shape(cur, mean) || (var && (!same_shape(cur, var) || var->n_experts != mean->n_experts)))
        return ms_error_set(err, MS_E_INPUT, "incremental: loads of %u x %u do not match a placement of %u layers x %u "
                            "experts", mean ? mean->n_layers : 0, mean ? mean->n_experts : 0, cur->n_layers,
                            cur->n_routed);
    if (!(z >= 0) || !isfinite(z)) return ms_error_set(err, MS_E_INPUT, "incremental: the variance weight must be >= 0");
    if (!cur->log2phy) return ms_error_set(err, MS_E_INPUT, "incremental: the placement has no replica index");
    ms_status st = ms_placement_clone(cur, out, err);
    if (st != MS_OK) return st;
    ms_placement *p = *out;
    snprintf(p->algorithm, sizeof p->algorithm, "incremental");
    if (max_moves == 0) return MS_OK;

    ctx c = {ms_cluster_devices(&cur->cluster), cur->cluster.slots_per_device, cur->n_phys, cur->n_logical,
             cur->has_shared ? cur->n_routed : NONE, var ? z : 0};
    const uint32_t nl = cur->n_layers, D = c.D;
    /* the shared expert's load is 0 when the loads have routed columns only */
    double *wbuf = ms_calloc_array(2 * (size_t)nl * c.L, sizeof *wbuf, err);
    layer_state *ls = ms_calloc_array(nl, sizeof *ls, err);
    int32_t *ibuf = ms_alloc_array((size_t)nl * c.n_phys, sizeof *ibuf, err);
    uint8_t *wrbuf = ms_calloc_array((size_t)nl * c.n_phys, 1, err);
    const size_t per_u = c.n_phys + 2 * (size_t)c.L + 2 * (size_t)D;
    uint32_t *ubuf = ms_alloc_array((size_t)nl * per_u, sizeof *ubuf, err);
    double *dbuf = ms_alloc_array((size_t)nl * 3 * D, sizeof *dbuf, err);
    int nthreads = ms_thread_count();
    if (nthreads < 1) nthreads = 1;
    if ((uint32_t)nthreads > nl) nthreads = (int)nl;
    scratch *xs = ms_calloc_array((size_t)nthreads, sizeof *xs, err);
    st = wbuf && ls && ibuf && wrbuf && ubuf && dbuf && xs ? MS_OK : MS_E_NOMEM;
    for (int i = 0; i < nthreads && st == MS_OK; i++) st = scratch_init(&c, &xs[i], err);
    if (st == MS_OK) {
        for (uint32_t l = 0; l < nl; l++) {
            layer_state *L = &ls[l];
            double *w = wbuf + 2 * (size_t)l * c.L, *v = w + c.L;
            memcpy(w, mean->w + (size_t)l * mean->n_experts, mean->n_experts * sizeof *w);
            if (var) memcpy(v, var->w + (size_t)l * var->n_experts, var->n_experts * sizeof *v);
            L->w = w;
            L->v = v;
            L->exp = ibuf + (size_t)l * c.n_phys;
            L->written = wrbuf + (size_t)l * c.n_phys;
            memcpy(L->exp, cur->phy2log + (size_t)l * c.n_phys, c.n_phys * sizeof *L->exp);
            uint32_t *u = ubuf + (size_t)l * per_u;
            L->nxt = u;
            L->head = u + c.n_phys;
            L->cnt = u + c.n_phys + c.L;
            L->order = u + c.n_phys + 2 * (size_t)c.L;
            L->order_mu = L->order + D;
            L->mu = dbuf + (size_t)l * 3 * D;
            L->var = L->mu + D;
            L->val = L->var + D;
            for (uint32_t e = 0; e < c.L; e++) L->head[e] = NONE, L->cnt[e] = 0;
            for (uint32_t s = c.n_phys; s-- > 0;) /* lists in ascending slot order */
                if (L->exp[s] >= 0) list_insert(L, (uint32_t)L->exp[s], s);
            for (uint32_t d = 0; d < D; d++) L->order[d] = L->order_mu[d] = d;
            recompute(&c, L);
        }
        uint32_t budget = max_moves, made = 0;
        /* first the replica counts, then the local search */
        for (uint32_t l = 0; l < nl; l++) find_count_move(&c, &ls[l], &xs[0]);
        while (budget > 0) {
            int64_t b = pick(ls, nl);
            if (b < 0) break;
            apply(&c, &ls[b]);
            budget--;
            made++;
            find_count_move(&c, &ls[b], &xs[0]);
        }
        uint32_t first = budget < 2 ? budget : 2;
#ifdef MOESIM_HAVE_OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads)
#endif
        for (uint32_t l = 0; l < nl; l++) {
            int tid = 0;
#ifdef MOESIM_HAVE_OPENMP
            tid = omp_get_thread_num();
#endif
            if (first) find_best(&c, &ls[l], &xs[tid], first);
            else ls[l].best.kind = MV_NONE;
        }
        bool limited = first < 2;
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
    ms_free(dbuf);
    if (st != MS_OK) {
        ms_placement_free(*out);
        *out = NULL;
    }
    return st;
}
