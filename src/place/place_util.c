/* place_util.c - helpers shared by balance.c, smart.c and ilp.c. See
 * place_util.h. */
#include "place/place_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double ms_putil_shared_load(const ms_place_ctx *ctx, uint32_t layer) {
    const ms_placement *p = ctx->p;
    const ms_loads *ld = ctx->in->loads;
    if (!p->has_shared || ld->n_experts <= p->n_routed) return 0.0;
    return ms_putil_layer_loads(ctx, layer)[p->n_routed];
}

ms_status ms_putil_check_input(const ms_place_ctx *ctx, const char *name, ms_error *err) {
    const ms_placement *p = ctx->p;
    const ms_loads *ld = ctx->in ? ctx->in->loads : NULL;
    if (!ld || !ld->w) return ms_error_set(err, MS_E_INPUT, "%s: no expert loads given", name);
    if (ld->n_layers != p->n_layers)
        return ms_error_set(err, MS_E_INPUT, "%s: loads have %u layers, the placement %u", name, ld->n_layers,
                            p->n_layers);
    if (ld->n_experts != p->n_routed && ld->n_experts != p->n_logical)
        return ms_error_set(err, MS_E_INPUT, "%s: loads have %u experts per layer, expected %u", name, ld->n_experts,
                            p->n_logical);
    for (size_t i = 0; i < (size_t)ld->n_layers * ld->n_experts; i++)
        if (!(ld->w[i] >= 0.0) || !isfinite(ld->w[i]))
            return ms_error_set(err, MS_E_INPUT, "%s: load of layer %zu expert %zu is %g (need a finite value >= 0)",
                                name, i / ld->n_experts, i % ld->n_experts, ld->w[i]);
    const ms_stats *s = ctx->in->stats;
    if (s && (s->n_layers != p->n_layers || s->n_experts != p->n_routed || !s->layers))
        return ms_error_set(err, MS_E_INPUT, "%s: statistics cover %u layers x %u experts, the loads %u x %u", name,
                            s->n_layers, s->n_experts, p->n_layers, p->n_routed);
    return MS_OK;
}

uint32_t ms_putil_extra(const ms_place_ctx *ctx) {
    const ms_placement *p = ctx->p;
    int32_t shared = p->has_shared ? (int32_t)p->n_routed : -2;
    uint32_t f = 0;
    for (uint32_t s = 0; s < p->n_phys; s++) f += p->phy2log[s] != shared;
    uint32_t room = f > p->n_routed ? f - p->n_routed : 0;
    return ctx->opts->redundant < room ? ctx->opts->redundant : room;
}

/* ------------------------------------------------------------- sorting */

/* (w descending, index ascending): a total order on indices. */
static int before(const double *w, uint32_t a, uint32_t b) {
    if (w[a] != w[b]) return w[a] > w[b];
    return a < b;
}

static void sift_down(const double *w, uint32_t *h, uint32_t n, uint32_t i) {
    /* max-heap by "comes later" so heap sort yields ascending "before" order */
    for (;;) {
        uint32_t l = 2 * i + 1, m = i;
        if (l < n && before(w, h[m], h[l])) m = l;
        if (l + 1 < n && before(w, h[m], h[l + 1])) m = l + 1;
        if (m == i) return;
        uint32_t t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

void ms_putil_order_desc(const double *w, uint32_t n, uint32_t *order) {
    /* heap sort on the total order (w desc, index asc): the keys are all
     * distinct as pairs, so the result equals a stable sort's */
    for (uint32_t i = 0; i < n; i++) order[i] = i;
    if (n < 2) return;
    for (uint32_t i = n / 2; i-- > 0;) sift_down(w, order, n, i);
    for (uint32_t k = n - 1; k > 0; k--) {
        uint32_t t = order[0];
        order[0] = order[k];
        order[k] = t;
        sift_down(w, order, k, 0);
    }
}

void ms_putil_counts_cycle(const double *w, uint32_t n, uint32_t extra, uint32_t *cnt, uint32_t *order) {
    for (uint32_t e = 0; e < n; e++) cnt[e] = 1;
    if (n == 0) return;
    ms_putil_order_desc(w, n, order);
    for (uint32_t i = 0; i < extra; i++) cnt[order[i % n]]++;
}

/* max-heap of experts by (w/cnt desc, id asc) */
static int ratio_before(const double *w, const uint32_t *cnt, uint32_t a, uint32_t b) {
    double ra = w[a] / cnt[a], rb = w[b] / cnt[b];
    if (ra != rb) return ra > rb;
    return a < b;
}

static void ratio_down(const double *w, const uint32_t *cnt, uint32_t *h, uint32_t n, uint32_t i) {
    for (;;) {
        uint32_t l = 2 * i + 1, m = i;
        if (l < n && ratio_before(w, cnt, h[l], h[m])) m = l;
        if (l + 1 < n && ratio_before(w, cnt, h[l + 1], h[m])) m = l + 1;
        if (m == i) return;
        uint32_t t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

uint32_t ms_putil_counts_greedy(const double *w, uint32_t n, uint32_t extra, uint32_t cap, uint32_t *cnt,
                                uint32_t *heap) {
    for (uint32_t e = 0; e < n; e++) {
        cnt[e] = 1;
        heap[e] = e;
    }
    uint32_t hn = n;
    if (cap == 1) hn = 0;
    for (uint32_t i = hn / 2; i-- > 0;) ratio_down(w, cnt, heap, hn, i);
    uint32_t given = 0;
    while (given < extra && hn > 0) {
        uint32_t e = heap[0];
        cnt[e]++;
        given++;
        if (cap && cnt[e] >= cap) heap[0] = heap[--hn];
        if (hn) ratio_down(w, cnt, heap, hn, 0);
    }
    return given;
}

/* ------------------------------------------------------------- slots */

uint32_t ms_putil_free_slots(const ms_placement *p, uint32_t layer, uint32_t *free_) {
    uint32_t spd = p->cluster.slots_per_device, nd = ms_cluster_devices(&p->cluster), total = 0;
    const int32_t *row = p->phy2log + (size_t)layer * p->n_phys;
    for (uint32_t d = 0; d < nd; d++) {
        uint32_t f = 0;
        for (uint32_t s = 0; s < spd; s++) f += row[d * spd + s] < 0;
        free_[d] = f;
        total += f;
    }
    return total;
}

int ms_putil_put(ms_placement *p, uint32_t layer, uint32_t d, int32_t e) {
    uint32_t spd = p->cluster.slots_per_device;
    int32_t *row = p->phy2log + (size_t)layer * p->n_phys + (size_t)d * spd;
    for (uint32_t s = 0; s < spd; s++)
        if (row[s] < 0) {
            row[s] = e;
            return 0;
        }
    return -1;
}

void ms_putil_sort_device_slots(ms_placement *p, uint32_t layer) {
    uint32_t spd = p->cluster.slots_per_device, nd = ms_cluster_devices(&p->cluster);
    int32_t shared = p->has_shared ? (int32_t)p->n_routed : -2;
    for (uint32_t d = 0; d < nd; d++) {
        int32_t *row = p->phy2log + (size_t)layer * p->n_phys + (size_t)d * spd;
        /* insertion sort over the non-shared positions: routed ids ascending,
         * empties (-1) last */
        for (uint32_t i = 0; i < spd; i++) {
            if (row[i] == shared) continue;
            for (uint32_t j = i + 1; j < spd; j++) {
                if (row[j] == shared) continue;
                int32_t a = row[i], b = row[j];
                int swap = (a < 0 && b >= 0) || (a >= 0 && b >= 0 && b < a);
                if (swap) {
                    row[i] = b;
                    row[j] = a;
                }
            }
        }
    }
}

/* ---------------------------------------------------------- the bound */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double ms_putil_count_bound(const ms_place_ctx *ctx, uint32_t layer) {
    const ms_placement *p = ctx->p;
    uint32_t E = p->n_routed, nd = ms_cluster_devices(&p->cluster), spd = p->cluster.slots_per_device;
    const double *w = ms_putil_layer_loads(ctx, layer);
    const int32_t *row = p->phy2log + (size_t)layer * p->n_phys;
    int32_t shared = p->has_shared ? (int32_t)p->n_routed : -2;
    double ls = ms_putil_shared_load(ctx, layer);
    uint32_t ns = 0, dfree = 0;
    for (uint32_t s = 0; s < p->n_phys; s++) ns += row[s] == shared;
    double routed = 0.0;
    for (uint32_t e = 0; e < E; e++) routed += w[e];
    double lb = (routed + (ns ? ls : 0.0)) / nd;
    if (ns && ls / ns > lb) lb = ls / ns;
    /* water-filling: the routed load can only go to devices with a slot for
     * it, on top of their shared load c_d: the smallest z with
     * sum over those devices of max(0, z - c_d) >= routed total (this is
     * essentially the LP relaxation's value). */
    double *cf = ms_alloc_array(nd, sizeof *cf, NULL);
    if (!cf) return NAN;
    for (uint32_t d = 0; d < nd; d++) {
        uint32_t f = 0, sh = 0;
        for (uint32_t s = 0; s < spd; s++) {
            f += row[d * spd + s] != shared; /* every non-shared slot may hold a routed expert */
            sh += row[d * spd + s] == shared;
        }
        if (f) cf[dfree++] = ns ? ls * sh / ns : 0.0;
    }
    qsort(cf, dfree, sizeof *cf, cmp_double);
    if (dfree == 0) {
        ms_free(cf);
        return lb;
    }
    {
        double acc = 0.0; /* sum of the k lowest c */
        for (uint32_t k = 1; k <= dfree; k++) {
            acc += cf[k - 1];
            double z = (routed + acc) / k; /* level if only the k lowest are filled */
            if (k == dfree || z <= cf[k]) {
                if (z > lb) lb = z;
                break;
            }
        }
    }
    ms_free(cf);
    uint32_t *cnt = ms_alloc_array(E, sizeof *cnt, NULL), *heap = ms_alloc_array(E, sizeof *heap, NULL);
    if (!cnt || !heap) {
        ms_free(cnt);
        ms_free(heap);
        return NAN;
    }
    uint32_t extra = ms_putil_extra(ctx);
    ms_putil_counts_greedy(w, E, extra, dfree, cnt, heap);
    for (uint32_t e = 0; e < E; e++) {
        double r = w[e] / cnt[e];
        if (r > lb) lb = r;
    }
    ms_free(cnt);
    ms_free(heap);
    return lb;
}
