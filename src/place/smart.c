/* smart.c - one-per-gpu (seeds 001/003/004), tail and coact (seed 002's
 * "more promising strategies").
 *
 * one-per-gpu: at most one routed expert per GPU per layer (the shared
 * expert's reserved replicas may share a GPU with it when the GPU has a slot
 * for both). With E routed experts and G GPUs that have a free slot:
 *  - E > G: MS_E_INPUT (one expert per GPU cannot hold them all). The seeds'
 *    "E > G: replicate experts across GPUs" only makes sense for G > E,
 *    which is the next case.
 *  - E <= G: every expert gets its own GPU and min(G - E, extra) more GPUs
 *    host replicas of the experts with the highest load per replica (the
 *    `replicate` rule); the other slots stay empty.
 *  - Topology: rows are nodes on a ring (the mesh model's data-parallel
 *    axis), tokens start evenly in every row and each token sends one
 *    message per destination row along the shortest ring path (half each
 *    way at distance rows/2). Instances are assigned to rows to minimise the
 *    largest number of messages on any directed row-to-row link: a greedy
 *    pass (descending load per instance, to the row whose message count
 *    grows least, rows without a replica of the expert first), then
 *    improving swaps of two instances between rows (first improvement, in a
 *    fixed order, bounded work) on the exact link objective, tie-broken by
 *    the total message count. Messages to a row: for its instances in
 *    descending load, each adds its load per replica minus its largest
 *    co-activation (tokens choosing both, scaled by both replica shares)
 *    with an instance before it in the row - an upper bound on the
 *    tokens that choose at least one expert of the row; without
 *    co-activation statistics simply the summed load. Replicas of one expert
 *    are never put in one row while a row without it has room.
 *
 * tail: replica counts from the tail of the per-window load instead of the
 * mean: t_e = win_mean + alpha x win_std (opts->tail_alpha >= 0) or win_p95
 * (alpha < 0), from the trace's window statistics (the mean loads when
 * there are none); the extra replicas go one by one to the largest
 * t_e / replicas; then longest-processing-time packing of the instances
 * (t_e / replicas, descending) onto the least-loaded device with a free slot,
 * one replica of an expert per device while possible.
 *
 * coact: replica counts as `replicate` (largest mean load per replica); then
 * instances in descending load per replica, each
 *  1. to a row: among rows with a free slot (rows without the expert first)
 *     whose load is within the largest instance load of the least-loaded
 *     such row, the one minimising row load - coact_weight x affinity, where
 *     affinity = tokens choosing both this expert and one in the row (each
 *     scaled by replica shares): keeps co-selected experts in one row,
 *     spreads replicas over rows, and keeps row loads balanced;
 *  2. to a device of that row: the one minimising mean + 2 std of its
 *     per-window load after adding the instance (covariances of the
 *     per-window loads: experts that peak together are kept apart); without
 *     windows, the least-loaded device.
 * It needs co-activation statistics (a trace).
 */
#include <math.h>
#include <string.h>

#include "place/place_util.h"

/* ============================================================ one-per-gpu */

typedef struct opg {
    uint32_t R, E, n;      /* rows, experts, instances */
    const uint64_t *coact; /* [E][E] or NULL */
    const double *w;       /* [E] loads */
    const uint32_t *cnt;   /* [E] replicas */
    uint32_t *inst_e;      /* [n] expert of instance */
    uint32_t *row_of;      /* [n] row of instance */
    uint32_t *cap;         /* [R] devices with a free slot per row */
    uint32_t *fill;        /* [R] instances in row */
    uint32_t **members;    /* [R] -> instance lists (capacity cap[r]) */
    uint32_t *mem_store;
    double *T;             /* [R] messages to row */
    double *K;             /* [R] kernel g(u)/R, u = 0..R-1 */
    double *Lf, *Lb;       /* [R] directed link loads */
} opg;

static double inst_load(const opg *o, uint32_t i) { return o->w[o->inst_e[i]] / o->cnt[o->inst_e[i]]; }

/* Messages to a row holding instances `m` (k of them): descending load
 * order, each minus its largest overlap with an earlier one. */
static double row_messages(const opg *o, const uint32_t *m, uint32_t k) {
    double s = 0.0;
    for (uint32_t a = 0; a < k; a++) {
        uint32_t ea = o->inst_e[m[a]];
        double la = inst_load(o, m[a]), best = 0.0;
        for (uint32_t b = 0; b < k && o->coact; b++) {
            if (b == a) continue;
            double lb = inst_load(o, m[b]);
            /* "before" = larger load, ties by lower instance index */
            if (lb < la || (lb == la && m[b] > m[a])) continue;
            uint32_t eb = o->inst_e[m[b]];
            if (eb == ea) continue;
            double ov = (double)o->coact[(size_t)ea * o->E + eb] / ((double)o->cnt[ea] * o->cnt[eb]);
            if (ov > best) best = ov;
        }
        if (best > la) best = la;
        s += la - best;
    }
    return s;
}

static void links_from_T(const opg *o, const double *T, double *Lf, double *Lb) {
    uint32_t R = o->R;
    for (uint32_t j = 0; j < R; j++) {
        double f = 0.0, b = 0.0;
        for (uint32_t r = 0; r < R; r++) {
            f += T[r] * o->K[(r + R - j) % R];
            b += T[r] * o->K[(j + 1 + R - r) % R];
        }
        Lf[j] = f;
        Lb[j] = b;
    }
}

/* max directed link load if T[ra] += da and T[rb] += db */
static double max_link_delta(const opg *o, uint32_t ra, double da, uint32_t rb, double db) {
    uint32_t R = o->R;
    double mx = 0.0;
    for (uint32_t j = 0; j < R; j++) {
        double f = o->Lf[j] + da * o->K[(ra + R - j) % R] + db * o->K[(rb + R - j) % R];
        double b = o->Lb[j] + da * o->K[(j + 1 + R - ra) % R] + db * o->K[(j + 1 + R - rb) % R];
        if (f > mx) mx = f;
        if (b > mx) mx = b;
    }
    return mx;
}

static int row_has_expert(const opg *o, uint32_t r, uint32_t e, uint32_t skip_inst) {
    for (uint32_t k = 0; k < o->fill[r]; k++) {
        uint32_t i = o->members[r][k];
        if (i != skip_inst && o->inst_e[i] == e) return 1;
    }
    return 0;
}

/* Greedy row assignment then bounded swap search. */
static void opg_assign_rows(opg *o) {
    uint32_t R = o->R;
    memset(o->fill, 0, R * sizeof *o->fill);
    for (uint32_t r = 0; r < R; r++) o->T[r] = 0.0;
    /* instances are already in descending load order */
    for (uint32_t i = 0; i < o->n; i++) {
        uint32_t e = o->inst_e[i], best = UINT32_MAX;
        double best_t = 0.0;
        for (int pass = 0; pass < 2 && best == UINT32_MAX; pass++)
            for (uint32_t r = 0; r < R; r++) {
                if (o->fill[r] >= o->cap[r] || (pass == 0 && row_has_expert(o, r, e, UINT32_MAX))) continue;
                o->members[r][o->fill[r]] = i;
                double t = row_messages(o, o->members[r], o->fill[r] + 1);
                if (best == UINT32_MAX || t < best_t) {
                    best = r;
                    best_t = t;
                }
            }
        /* capacity sums to >= n, so a row is always found */
        o->members[best][o->fill[best]++] = i;
        o->row_of[i] = best;
        o->T[best] = best_t;
    }
    if (R < 2) return;
    links_from_T(o, o->T, o->Lf, o->Lb);
    double cur = max_link_delta(o, 0, 0.0, 0, 0.0), cur_sum = 0.0;
    for (uint32_t r = 0; r < R; r++) cur_sum += o->T[r];
    /* swaps: work bound keeps huge clusters fast; deterministic */
    uint64_t work = 0, budget = 50000000ULL;
    int improved = 1;
    while (improved && work < budget) {
        improved = 0;
        for (uint32_t a = 0; a < o->n && work < budget; a++)
            for (uint32_t b = a + 1; b < o->n && work < budget; b++) {
                uint32_t ra = o->row_of[a], rb = o->row_of[b];
                if (ra == rb) continue;
                uint32_t ea = o->inst_e[a], eb = o->inst_e[b];
                if (ea == eb) continue;
                if (row_has_expert(o, rb, ea, b) || row_has_expert(o, ra, eb, a)) continue;
                /* evaluate rows with a and b exchanged */
                uint32_t ka = o->fill[ra], kb = o->fill[rb], pa = 0, pb = 0;
                for (uint32_t k = 0; k < ka; k++)
                    if (o->members[ra][k] == a) pa = k;
                for (uint32_t k = 0; k < kb; k++)
                    if (o->members[rb][k] == b) pb = k;
                o->members[ra][pa] = b;
                o->members[rb][pb] = a;
                double ta = row_messages(o, o->members[ra], ka), tb = row_messages(o, o->members[rb], kb);
                double da = ta - o->T[ra], db = tb - o->T[rb];
                double mx = max_link_delta(o, ra, da, rb, db), sum = cur_sum + da + db;
                work += (uint64_t)ka * ka + (uint64_t)kb * kb + 2ULL * R;
                double eps = 1e-9 * (cur > 1.0 ? cur : 1.0);
                if (mx < cur - eps || (mx <= cur + eps && sum < cur_sum - eps)) {
                    o->row_of[a] = rb;
                    o->row_of[b] = ra;
                    o->T[ra] = ta;
                    o->T[rb] = tb;
                    links_from_T(o, o->T, o->Lf, o->Lb);
                    cur = max_link_delta(o, 0, 0.0, 0, 0.0);
                    cur_sum = 0.0;
                    for (uint32_t r = 0; r < R; r++) cur_sum += o->T[r];
                    work += (uint64_t)R * R;
                    improved = 1;
                } else {
                    o->members[ra][pa] = a;
                    o->members[rb][pb] = b;
                }
            }
    }
}

/* Contract: one-per-gpu (see the file comment). Fails MS_E_INPUT when a
 * layer has more routed experts than devices with a free slot; MS_E_NOMEM. */
ms_status ms_place_one_per_gpu(const ms_place_ctx *ctx, ms_error *err) {
    ms_status st = ms_putil_check_input(ctx, "one-per-gpu", err);
    if (st != MS_OK) return st;
    ms_placement *p = ctx->p;
    uint32_t R = p->cluster.rows, C = p->cluster.cols, nd = R * C, E = p->n_routed;
    const ms_stats *s = ctx->in->stats;
    opg o;
    memset(&o, 0, sizeof o);
    o.R = R;
    o.E = E;
    uint32_t *free_ = ms_alloc_array(nd, sizeof *free_, err);
    uint32_t *cnt = ms_alloc_array(E, sizeof *cnt, err);
    uint32_t *heap = ms_alloc_array(nd > E ? nd : E, sizeof *heap, err);
    double *key = ms_alloc_array(nd, sizeof *key, err);
    uint32_t *tmp_e = ms_alloc_array(nd, sizeof *tmp_e, err);
    o.inst_e = ms_alloc_array(nd, sizeof *o.inst_e, err);
    o.row_of = ms_alloc_array(nd, sizeof *o.row_of, err);
    o.cap = ms_alloc_array(R, sizeof *o.cap, err);
    o.fill = ms_alloc_array(R, sizeof *o.fill, err);
    o.members = ms_alloc_array(R, sizeof *o.members, err);
    o.mem_store = ms_alloc_array(nd, sizeof *o.mem_store, err);
    o.T = ms_alloc_array(R, sizeof *o.T, err);
    o.K = ms_alloc_array(R, sizeof *o.K, err);
    o.Lf = ms_alloc_array(R, sizeof *o.Lf, err);
    o.Lb = ms_alloc_array(R, sizeof *o.Lb, err);
    if (!free_ || !cnt || !heap || !key || !tmp_e || !o.inst_e || !o.row_of || !o.cap || !o.fill || !o.members ||
        !o.mem_store || !o.T || !o.K || !o.Lf || !o.Lb) {
        st = MS_E_NOMEM;
        goto done;
    }
    /* ring kernel: K[u] = g(u) / R (see file comment) */
    {
        uint32_t m = (R - 1) / 2; /* longest distance strictly below R/2 */
        for (uint32_t u = 0; u < R; u++) {
            double g = 0.0;
            if (u >= 1) {
                if (u <= m) g += (double)(m - u + 1);
                if (R % 2 == 0 && u <= R / 2) g += 0.5;
            }
            o.K[u] = g / R;
        }
    }
    o.cnt = cnt;
    for (uint32_t l = 0; l < p->n_layers && st == MS_OK; l++) {
        const double *w = ms_putil_layer_loads(ctx, l);
        o.w = w;
        o.coact = s ? s->layers[l].coact : NULL;
        ms_putil_free_slots(p, l, free_);
        uint32_t ga = 0;
        for (uint32_t d = 0; d < nd; d++) ga += free_[d] > 0;
        if (ga < E) {
            st = ms_error_set(err, MS_E_INPUT,
                              "one-per-gpu puts at most one routed expert on a GPU: %u routed experts need at least %u "
                              "devices with a free slot, the %ux%u cluster has %u; use more devices or another "
                              "algorithm (replicate, eplb)",
                              E, E, R, C, ga);
            break;
        }
        uint32_t extra = ms_putil_extra(ctx);
        if (extra > ga - E) extra = ga - E;
        ms_putil_counts_greedy(w, E, extra, 0, cnt, heap);
        /* instances in descending load per replica (ties: lower id) */
        double *pe = key; /* per-expert key, first E entries */
        for (uint32_t e = 0; e < E; e++) pe[e] = w[e] / cnt[e];
        ms_putil_order_desc(pe, E, tmp_e);
        o.n = 0;
        for (uint32_t k = 0; k < E; k++)
            for (uint32_t r = 0; r < cnt[tmp_e[k]]; r++) o.inst_e[o.n++] = tmp_e[k];
        uint32_t off = 0;
        for (uint32_t r = 0; r < R; r++) {
            o.cap[r] = 0;
            for (uint32_t c = 0; c < C; c++) o.cap[r] += free_[r * C + c] > 0;
            o.members[r] = o.mem_store + off;
            off += o.cap[r];
        }
        opg_assign_rows(&o);
        /* inside each row: instances in descending load to the row's devices
         * with a free slot, in column order */
        for (uint32_t r = 0; r < R; r++) {
            uint32_t c = 0;
            for (uint32_t i = 0; i < o.n; i++) {
                if (o.row_of[i] != r) continue;
                while (c < C && free_[r * C + c] == 0) c++;
                /* c < C: the row's capacity was respected */
                (void)ms_putil_put(p, l, r * C + c, (int32_t)o.inst_e[i]);
                c++;
            }
        }
    }
done:
    ms_free(free_);
    ms_free(cnt);
    ms_free(heap);
    ms_free(key);
    ms_free(tmp_e);
    ms_free(o.inst_e);
    ms_free(o.row_of);
    ms_free(o.cap);
    ms_free(o.fill);
    ms_free(o.members);
    ms_free(o.mem_store);
    ms_free(o.T);
    ms_free(o.K);
    ms_free(o.Lf);
    ms_free(o.Lb);
    return st;
}

/* ================================================================= tail */

/* Contract: tail (see the file comment). Without window statistics it uses
 * the mean loads. Fails MS_E_INPUT on a tail_alpha that is not finite or
 * loads that do not fit; MS_E_NOMEM. */
ms_status ms_place_tail(const ms_place_ctx *ctx, ms_error *err) {
    ms_status st = ms_putil_check_input(ctx, "tail", err);
    if (st != MS_OK) return st;
    const ms_place_opts *o = ctx->opts;
    if (!isfinite(o->tail_alpha))
        return ms_error_set(err, MS_E_INPUT, "tail: alpha must be a finite number (got %g)", o->tail_alpha);
    ms_placement *p = ctx->p;
    uint32_t nd = ms_cluster_devices(&p->cluster), spd = p->cluster.slots_per_device, E = p->n_routed;
    const ms_stats *s = ctx->in->stats;
    double *t = ms_alloc_array(E, sizeof *t, err), *dl = ms_alloc_array(nd, sizeof *dl, err);
    double *key = ms_alloc_array(E, sizeof *key, err);
    uint32_t *cnt = ms_alloc_array(E, sizeof *cnt, err), *heap = ms_alloc_array(E, sizeof *heap, err);
    uint32_t *order = ms_alloc_array(E, sizeof *order, err), *free_ = ms_alloc_array(nd, sizeof *free_, err);
    int32_t *items = ms_alloc_array((size_t)nd * spd, sizeof *items, err);
    uint32_t *nitems = ms_alloc_array(nd, sizeof *nitems, err);
    if (!t || !dl || !key || !cnt || !heap || !order || !free_ || !items || !nitems) {
        st = MS_E_NOMEM;
        goto done;
    }
    for (uint32_t l = 0; l < p->n_layers && st == MS_OK; l++) {
        const double *w = ms_putil_layer_loads(ctx, l);
        const ms_layer_stats *ls = s ? &s->layers[l] : NULL;
        int windows = ls && ls->n_windows > 0 && ls->win_mean && ls->win_std && ls->win_p95;
        double shared_each = 0.0;
        const int32_t *row = p->phy2log + (size_t)l * p->n_phys;
        uint32_t ns = 0;
        for (uint32_t q = 0; q < p->n_phys; q++) ns += p->has_shared && row[q] == (int32_t)p->n_routed;
        if (windows) {
            for (uint32_t e = 0; e < E; e++)
                t[e] = o->tail_alpha >= 0.0 ? ls->win_mean[e] + o->tail_alpha * ls->win_std[e] : ls->win_p95[e];
            double wt = ls->n_windows > 1 || ls->tokens > s->window ? (double)s->window : (double)ls->tokens;
            if (ns) shared_each = wt / ns; /* every token of a window chooses it: no variance */
        } else {
            for (uint32_t e = 0; e < E; e++) t[e] = w[e];
            if (ns) shared_each = ms_putil_shared_load(ctx, l) / ns;
        }
        uint32_t nfree = ms_putil_free_slots(p, l, free_);
        uint32_t extra = ms_putil_extra(ctx);
        if (nfree < E + extra) {
            st = ms_error_set(err, MS_E_INPUT, "layer %u: %u free slots for %u routed experts + %u replicas", l, nfree,
                              E, extra);
            break;
        }
        ms_putil_counts_greedy(t, E, extra, 0, cnt, heap);
        for (uint32_t d = 0; d < nd; d++) {
            dl[d] = 0.0;
            nitems[d] = 0;
            for (uint32_t q = 0; q < spd; q++)
                if (ns && row[d * spd + q] == (int32_t)p->n_routed) dl[d] += shared_each;
        }
        for (uint32_t e = 0; e < E; e++) key[e] = t[e] / cnt[e];
        ms_putil_order_desc(key, E, order);
        for (uint32_t k = 0; k < E; k++) {
            uint32_t e = order[k];
            for (uint32_t r = 0; r < cnt[e]; r++) {
                uint32_t best = UINT32_MAX;
                for (int dup = 0; dup < 2 && best == UINT32_MAX; dup++)
                    for (uint32_t d = 0; d < nd; d++) {
                        if (free_[d] == 0) continue;
                        if (!dup) {
                            int holds = 0;
                            for (uint32_t j = 0; j < nitems[d]; j++) holds |= items[(size_t)d * spd + j] == (int32_t)e;
                            if (holds) continue;
                        }
                        if (best == UINT32_MAX || dl[d] < dl[best]) best = d;
                    }
                if (best == UINT32_MAX) {
                    st = ms_error_set(err, MS_E_INTERNAL, "layer %u: no free slot left for expert %u", l, e);
                    goto done;
                }
                (void)ms_putil_put(p, l, best, (int32_t)e);
                free_[best]--;
                items[(size_t)best * spd + nitems[best]++] = (int32_t)e;
                dl[best] += key[e];
            }
        }
    }
done:
    ms_free(t);
    ms_free(dl);
    ms_free(key);
    ms_free(cnt);
    ms_free(heap);
    ms_free(order);
    ms_free(free_);
    ms_free(items);
    ms_free(nitems);
    return st;
}

/* ================================================================ coact */

/* Covariance of the per-window loads of experts a and b (population). */
static double win_cov(const ms_layer_stats *ls, uint32_t E, uint32_t a, uint32_t b) {
    uint32_t W = ls->n_windows;
    if (W < 2 || !ls->win_load || !ls->win_mean) return 0.0;
    double ma = ls->win_mean[a], mb = ls->win_mean[b], s = 0.0;
    for (uint32_t k = 0; k < W; k++)
        s += ((double)ls->win_load[(size_t)k * E + a] - ma) * ((double)ls->win_load[(size_t)k * E + b] - mb);
    return s / W;
}

/* Contract: coact (see the file comment). Fails MS_E_INPUT without
 * co-activation statistics or with a negative coact weight; MS_E_NOMEM. */
ms_status ms_place_coact(const ms_place_ctx *ctx, ms_error *err) {
    ms_status st = ms_putil_check_input(ctx, "coact", err);
    if (st != MS_OK) return st;
    const ms_place_opts *o = ctx->opts;
    ms_placement *p = ctx->p;
    const ms_stats *s = ctx->in->stats;
    if (!s) return ms_error_set(err, MS_E_INPUT, "coact needs co-activation statistics: give a trace, not a load matrix");
    for (uint32_t l = 0; l < p->n_layers; l++)
        if (!s->layers[l].coact)
            return ms_error_set(err, MS_E_INPUT, "coact needs co-activation statistics (layer %u has none)", l);
    if (!(o->coact_weight >= 0.0) || !isfinite(o->coact_weight))
        return ms_error_set(err, MS_E_INPUT, "coact: coact weight must be a finite number >= 0 (got %g)",
                            o->coact_weight);
    uint32_t R = p->cluster.rows, C = p->cluster.cols, nd = R * C, spd = p->cluster.slots_per_device, E = p->n_routed;
    double *m = ms_alloc_array(E, sizeof *m, err), *key = ms_alloc_array(E, sizeof *key, err);
    double *var = ms_alloc_array(E, sizeof *var, err);
    double *dmu = ms_alloc_array(nd, sizeof *dmu, err), *dvar = ms_alloc_array(nd, sizeof *dvar, err);
    double *rl = ms_alloc_array(R, sizeof *rl, err), *aff = ms_alloc_array(R, sizeof *aff, err);
    uint32_t *cnt = ms_alloc_array(E, sizeof *cnt, err), *heap = ms_alloc_array(E, sizeof *heap, err);
    uint32_t *order = ms_alloc_array(E, sizeof *order, err), *free_ = ms_alloc_array(nd, sizeof *free_, err);
    uint32_t *rfree = ms_alloc_array(R, sizeof *rfree, err);
    int32_t *items = ms_alloc_array((size_t)nd * spd, sizeof *items, err);
    uint32_t *nitems = ms_alloc_array(nd, sizeof *nitems, err);
    uint8_t *rowhas = ms_alloc_array((size_t)R * E, 1, err);
    if (!m || !key || !var || !dmu || !dvar || !rl || !aff || !cnt || !heap || !order || !free_ || !rfree || !items ||
        !nitems || !rowhas) {
        st = MS_E_NOMEM;
        goto done;
    }
    for (uint32_t l = 0; l < p->n_layers && st == MS_OK; l++) {
        const double *w = ms_putil_layer_loads(ctx, l);
        const ms_layer_stats *ls = &s->layers[l];
        int windows = ls->n_windows >= 2 && ls->win_load && ls->win_mean;
        /* one unit for everything: per-window tokens when windows exist */
        double sumw = 0.0, summ = 0.0;
        for (uint32_t e = 0; e < E; e++) sumw += w[e];
        for (uint32_t e = 0; e < E; e++) {
            m[e] = windows ? ls->win_mean[e] : w[e];
            summ += m[e];
            var[e] = windows ? win_cov(ls, E, e, e) : 0.0;
        }
        double unit = sumw > 0.0 ? summ / sumw : 1.0; /* loads -> m units */
        /* co-activation counts are in the statistics' own tokens: scale them
         * to m by the diagonal (= load) */
        double csum = 0.0;
        for (uint32_t e = 0; e < E; e++) csum += (double)ls->coact[(size_t)e * E + e];
        double cunit = csum > 0.0 ? summ / csum : 0.0;
        const int32_t *row = p->phy2log + (size_t)l * p->n_phys;
        uint32_t ns = 0;
        for (uint32_t q = 0; q < p->n_phys; q++) ns += p->has_shared && row[q] == (int32_t)p->n_routed;
        double shared_each = ns ? ms_putil_shared_load(ctx, l) * unit / ns : 0.0;
        uint32_t nfree = ms_putil_free_slots(p, l, free_);
        uint32_t extra = ms_putil_extra(ctx);
        if (nfree < E + extra) {
            st = ms_error_set(err, MS_E_INPUT, "layer %u: %u free slots for %u routed experts + %u replicas", l, nfree,
                              E, extra);
            break;
        }
        ms_putil_counts_greedy(w, E, extra, 0, cnt, heap);
        memset(rl, 0, R * sizeof *rl);
        memset(rfree, 0, R * sizeof *rfree);
        memset(rowhas, 0, (size_t)R * E);
        for (uint32_t d = 0; d < nd; d++) {
            dmu[d] = 0.0;
            dvar[d] = 0.0;
            nitems[d] = 0;
            for (uint32_t q = 0; q < spd; q++)
                if (ns && row[d * spd + q] == (int32_t)p->n_routed) dmu[d] += shared_each;
            rl[d / C] += dmu[d];
            rfree[d / C] += free_[d];
        }
        double maxinst = 0.0;
        for (uint32_t e = 0; e < E; e++) {
            key[e] = m[e] / cnt[e];
            if (key[e] > maxinst) maxinst = key[e];
        }
        ms_putil_order_desc(key, E, order);
        for (uint32_t k = 0; k < E; k++) {
            uint32_t e = order[k];
            for (uint32_t rep = 0; rep < cnt[e]; rep++) {
                /* 1. the row */
                for (uint32_t r = 0; r < R; r++) aff[r] = 0.0;
                for (uint32_t d = 0; d < nd; d++)
                    for (uint32_t j = 0; j < nitems[d]; j++) {
                        uint32_t f = (uint32_t)items[(size_t)d * spd + j];
                        if (f == e) continue;
                        aff[d / C] += (double)ls->coact[(size_t)e * E + f] * cunit / ((double)cnt[e] * cnt[f]);
                    }
                uint32_t br = UINT32_MAX;
                for (int pass = 0; pass < 2 && br == UINT32_MAX; pass++) {
                    double minl = INFINITY;
                    for (uint32_t r = 0; r < R; r++)
                        if (rfree[r] && (pass || !rowhas[(size_t)r * E + e]) && rl[r] < minl) minl = rl[r];
                    double bv = 0.0;
                    for (uint32_t r = 0; r < R; r++) {
                        if (!rfree[r] || (!pass && rowhas[(size_t)r * E + e])) continue;
                        if (rl[r] > minl + maxinst) continue;
                        double v = rl[r] - o->coact_weight * aff[r];
                        if (br == UINT32_MAX || v < bv) {
                            br = r;
                            bv = v;
                        }
                    }
                }
                /* 2. the device */
                uint32_t bd = UINT32_MAX;
                double bdv = 0.0;
                for (int dup = 0; dup < 2 && bd == UINT32_MAX; dup++)
                    for (uint32_t c = 0; c < C; c++) {
                        uint32_t d = br * C + c;
                        if (!free_[d]) continue;
                        double cov = 0.0;
                        int holds = 0;
                        for (uint32_t j = 0; j < nitems[d]; j++) {
                            uint32_t f = (uint32_t)items[(size_t)d * spd + j];
                            holds |= f == e;
                            if (windows) cov += win_cov(ls, E, e, f) / ((double)cnt[e] * cnt[f]);
                        }
                        if (holds && !dup) continue;
                        double nv = dvar[d] + var[e] / ((double)cnt[e] * cnt[e]) + 2.0 * cov;
                        double v = dmu[d] + key[e] + 2.0 * sqrt(nv > 0.0 ? nv : 0.0);
                        if (bd == UINT32_MAX || v < bdv) {
                            bd = d;
                            bdv = v;
                        }
                    }
                /* br has a free slot, so bd was found */
                double cov = 0.0;
                for (uint32_t j = 0; j < nitems[bd] && windows; j++) {
                    uint32_t f = (uint32_t)items[(size_t)bd * spd + j];
                    cov += win_cov(ls, E, e, f) / ((double)cnt[e] * cnt[f]);
                }
                dvar[bd] += var[e] / ((double)cnt[e] * cnt[e]) + 2.0 * cov;
                dmu[bd] += key[e];
                rl[br] += key[e];
                rfree[br]--;
                free_[bd]--;
                rowhas[(size_t)br * E + e] = 1;
                items[(size_t)bd * spd + nitems[bd]++] = (int32_t)e;
                (void)ms_putil_put(p, l, bd, (int32_t)e);
            }
        }
    }
done:
    ms_free(m);
    ms_free(key);
    ms_free(var);
    ms_free(dmu);
    ms_free(dvar);
    ms_free(rl);
    ms_free(aff);
    ms_free(cnt);
    ms_free(heap);
    ms_free(order);
    ms_free(free_);
    ms_free(rfree);
    ms_free(items);
    ms_free(nitems);
    ms_free(rowhas);
    return st;
}
