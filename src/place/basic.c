/* basic.c - the baseline placements: contiguous, round-robin, pair
 * (greedy longest-processing-time packing, hottest with coldest) and
 * replicate (fill free slots with the expert of highest load per replica,
 * then pack as pair). All deterministic; ties go to the lower expert or
 * device index. The shared expert's replicas are already in place (see
 * algos.h); these fill the remaining free slots of each device. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "place/algos.h"

/* Free slots of every device, identical in every layer. */
typedef struct devslots {
    uint32_t devs, spd;
    uint32_t *nfree;   /* [devs] free slots */
    uint32_t *nshared; /* [devs] shared replicas */
} devslots;

static void devslots_free(devslots *d) {
    ms_free(d->nfree);
    ms_free(d->nshared);
}

static ms_status devslots_init(const ms_placement *p, devslots *d, ms_error *err) {
    d->devs = ms_cluster_devices(&p->cluster);
    d->spd = p->cluster.slots_per_device;
    d->nfree = ms_calloc_array(d->devs, sizeof *d->nfree, err);
    d->nshared = ms_calloc_array(d->devs, sizeof *d->nshared, err);
    if (!d->nfree || !d->nshared) {
        devslots_free(d);
        return MS_E_NOMEM;
    }
    for (uint32_t g = 0; g < d->devs; g++)
        for (uint32_t s = 0; s < d->spd; s++) {
            int32_t e = p->phy2log[g * d->spd + s];
            if (e < 0) d->nfree[g]++;
            else if ((uint32_t)e == p->n_routed) d->nshared[g]++;
        }
    return MS_OK;
}

/* Puts expert e into the lowest free slot of device g in row `row`.
 * The device must have one. */
static void put(int32_t *row, uint32_t spd, uint32_t g, uint32_t e) {
    for (uint32_t s = 0; s < spd; s++)
        if (row[g * spd + s] < 0) {
            row[g * spd + s] = (int32_t)e;
            return;
        }
}

static ms_status no_redundant(const ms_place_ctx *ctx, const char *name, ms_error *err) {
    uint32_t r = ctx->opts->redundant;
    if (r != UINT32_MAX && r != 0)
        return ms_error_set(err, MS_E_INPUT, "'%s' places every expert once; --redundant is for replicating algorithms", name);
    return MS_OK;
}

/* contiguous (stride = ceil(E / devices), target e / stride) or round-robin
 * (target e mod devices); a full target passes to the next device with a
 * free slot. */
static ms_status place_simple(const ms_place_ctx *ctx, bool contiguous, ms_error *err) {
    ms_status st = no_redundant(ctx, contiguous ? "contiguous" : "round-robin", err);
    if (st != MS_OK) return st;
    ms_placement *p = ctx->p;
    devslots d;
    if ((st = devslots_init(p, &d, err)) != MS_OK) return st;
    uint32_t E = p->n_routed, stride = (E + d.devs - 1) / d.devs;
    uint32_t *left = ms_alloc_array(d.devs, sizeof *left, err);
    if (!left) {
        devslots_free(&d);
        return MS_E_NOMEM;
    }
    for (uint32_t l = 0; l < p->n_layers; l++) {
        int32_t *row = p->phy2log + (size_t)l * p->n_phys;
        memcpy(left, d.nfree, d.devs * sizeof *left);
        for (uint32_t e = 0; e < E; e++) {
            uint32_t g = contiguous ? e / stride : e % d.devs;
            while (left[g] == 0) g = (g + 1) % d.devs; /* total free >= E */
            put(row, d.spd, g, e);
            left[g]--;
        }
    }
    ms_free(left);
    devslots_free(&d);
    return MS_OK;
}

ms_status ms_place_contiguous(const ms_place_ctx *ctx, ms_error *err) { return place_simple(ctx, true, err); }

ms_status ms_place_round_robin(const ms_place_ctx *ctx, ms_error *err) { return place_simple(ctx, false, err); }

/* ------------------------------------------------ replicate + LPT pack */

typedef struct rep_item {
    double w;      /* load of this replica */
    uint32_t e, r; /* expert, replica number */
} rep_item;

static int cmp_item(const void *a, const void *b) {
    const rep_item *x = a, *y = b;
    if (x->w != y->w) return x->w > y->w ? -1 : 1;
    if (x->e != y->e) return x->e < y->e ? -1 : 1;
    return x->r < y->r ? -1 : (x->r > y->r);
}

typedef struct dent {
    double key; /* load per replica */
    uint32_t e;
} dent;

static inline bool dent_before(dent a, dent b) { return a.key > b.key || (a.key == b.key && a.e < b.e); }

static void dent_down(dent *h, uint32_t n, uint32_t i) {
    dent x = h[i];
    for (;;) {
        uint32_t l = 2 * i + 1;
        if (l >= n) break;
        uint32_t b = (l + 1 < n && dent_before(h[l + 1], h[l])) ? l + 1 : l;
        if (!dent_before(h[b], x)) break;
        h[i] = h[b];
        i = b;
    }
    h[i] = x;
}

/* One replica each, then `extra` more, each to the expert with the largest
 * w / cnt (ties: lower id) among those with fewer than `cap` replicas; once
 * every expert has `cap`, without the cap. */
static void greedy_counts(const double *w, uint32_t E, uint32_t extra, uint32_t cap, uint32_t *cnt, dent *h) {
    for (uint32_t e = 0; e < E; e++) cnt[e] = 1;
    uint32_t x = 0;
    for (int pass = 0; pass < 2 && x < extra; pass++) {
        uint32_t n = 0;
        for (uint32_t e = 0; e < E; e++)
            if (pass || cnt[e] < cap) h[n++] = (dent){w[e] / cnt[e], e};
        for (uint32_t i = n / 2; i-- > 0;) dent_down(h, n, i);
        for (; x < extra && n > 0; x++) {
            uint32_t e = h[0].e;
            cnt[e]++;
            if (!pass && cnt[e] >= cap) h[0] = h[--n];
            else h[0].key = w[e] / cnt[e];
            if (n) dent_down(h, n, 0);
        }
    }
}

/* Replica counts (one each plus `extra` handed out greedily to the largest
 * load per replica, at most one replica per device while any expert has
 * room), then longest-processing-time packing: each replica, heaviest first,
 * goes to the least-loaded device that has room under an equal share
 * (ceil(items / devices), capped by its free slots) and does not hold the
 * expert yet, relaxing first the distinct-device rule, then the share. */
static ms_status replicate_pack(const ms_place_ctx *ctx, uint32_t extra, ms_error *err) {
    ms_placement *p = ctx->p;
    const ms_loads *ld = ctx->in->loads;
    devslots d;
    ms_status st = devslots_init(p, &d, err);
    if (st != MS_OK) return st;
    uint32_t E = p->n_routed, n_items = E + extra;
    uint32_t *cnt = ms_alloc_array(E, sizeof *cnt, err);
    dent *heap = ms_alloc_array(E, sizeof *heap, err);
    rep_item *items = ms_alloc_array(n_items, sizeof *items, err);
    double *load = ms_alloc_array(d.devs, sizeof *load, err);
    uint32_t *used = ms_alloc_array(d.devs, sizeof *used, err);
    uint32_t *share = ms_alloc_array(d.devs, sizeof *share, err);
    uint8_t *hold = ms_alloc_array((size_t)d.devs, E, err); /* [devs][E]: device holds expert */
    if (!cnt || !heap || !items || !load || !used || !share || !hold) {
        st = MS_E_NOMEM;
        goto done;
    }
    uint32_t eq = (n_items + d.devs - 1) / d.devs;
    for (uint32_t g = 0; g < d.devs; g++) share[g] = d.nfree[g] < eq ? d.nfree[g] : eq;
    for (uint32_t l = 0; l < p->n_layers; l++) {
        const double *w = ld->w + (size_t)l * ld->n_experts;
        int32_t *row = p->phy2log + (size_t)l * p->n_phys;
        greedy_counts(w, E, extra, d.devs, cnt, heap);
        uint32_t k = 0;
        for (uint32_t e = 0; e < E; e++)
            for (uint32_t r = 0; r < cnt[e]; r++) items[k++] = (rep_item){w[e] / cnt[e], e, r};
        qsort(items, n_items, sizeof *items, cmp_item);
        double ws = p->has_shared && ctx->opts->shared_replicas ? w[E] / ctx->opts->shared_replicas : 0;
        for (uint32_t g = 0; g < d.devs; g++) {
            load[g] = ws * d.nshared[g];
            used[g] = 0;
        }
        memset(hold, 0, (size_t)d.devs * E);
        for (uint32_t t = 0; t < n_items; t++) {
            uint32_t e = items[t].e;
            /* level 0: within the share on a device without e; 1: within the
             * share; 2: any free slot on a device without e; 3: any free slot */
            int pick = -1;
            for (int lv = 0; lv < 4 && pick < 0; lv++) {
                bool distinct = lv == 0 || lv == 2, in_share = lv < 2;
                for (uint32_t g = 0; g < d.devs; g++) {
                    if (used[g] >= d.nfree[g] || (in_share && used[g] >= share[g])) continue;
                    if (distinct && hold[(size_t)g * E + e]) continue;
                    if (pick < 0 || load[g] < load[pick]) pick = (int)g;
                }
            }
            /* total free >= n_items, so level 3 always finds a device */
            put(row, d.spd, (uint32_t)pick, e);
            used[pick]++;
            load[pick] += items[t].w;
            hold[(size_t)pick * E + e] = 1;
        }
    }
    st = MS_OK;
done:
    ms_free(cnt);
    ms_free(heap);
    ms_free(items);
    ms_free(load);
    ms_free(used);
    ms_free(share);
    ms_free(hold);
    devslots_free(&d);
    return st;
}

ms_status ms_place_pair(const ms_place_ctx *ctx, ms_error *err) {
    ms_status st = no_redundant(ctx, "pair", err);
    if (st != MS_OK) return st;
    return replicate_pack(ctx, 0, err);
}

ms_status ms_place_replicate(const ms_place_ctx *ctx, ms_error *err) {
    return replicate_pack(ctx, ms_place_extra(ctx), err);
}
