/* eplb.c - DeepSeek's Expert Parallelism Load Balancer (deepseek-ai/EPLB,
 * eplb.py: rebalance_experts) reimplemented in C, output-identical.
 *
 * Mapping: nodes = cluster rows, GPUs = rows x cols (GPU id = device id),
 * physical experts = every free slot, groups = opts->groups. The
 * hierarchical policy applies when groups > 0 and groups % rows == 0 (pack
 * expert groups to nodes, replicate within each node, pack the node's
 * physical experts to its GPUs); otherwise the global policy, which is the
 * hierarchical one with one group and one node.
 *
 * Faithfulness: loads, loads divided by replica counts and pack sums are
 * float32 as in the reference (which calls weight.float()); sorts are
 * descending with ties broken by the lower index; the least-loaded pack and
 * the expert with the largest load per replica are the lowest-indexed on
 * ties (Python's min() / torch.max(dim) semantics). Heaps ordered by
 * (value, index) give exactly those choices in O(log n); the sort is a
 * stable radix sort on the float bits, so equal loads keep index order.
 *
 * Extension (no effect without a shared expert): the reference packs an
 * equal number of physical experts on every GPU. When the shared expert's
 * replicas are reserved first, GPUs have unequal free slots; packs then take
 * per-GPU capacities (= free slots) and nodes replicate into their own free
 * slot count. With equal capacities this is exactly the reference.
 */
#include <math.h>
#include <string.h>

#include "place/algos.h"

/* --------------------------------------------------------------- heaps */

/* A binary heap of (key, index) entries. A min heap puts the smallest key
 * on top, a max heap the largest; ties always go to the smaller index. */
typedef struct hent {
    float key;
    uint32_t idx;
} hent;

static inline int hmin_before(hent a, hent b) { return a.key < b.key || (a.key == b.key && a.idx < b.idx); }
static inline int hmax_before(hent a, hent b) { return a.key > b.key || (a.key == b.key && a.idx < b.idx); }

#define HEAP_DOWN(NAME, BEFORE)                                                   \
    static void NAME(hent *h, uint32_t n, uint32_t i) {                           \
        hent x = h[i];                                                            \
        for (;;) {                                                                \
            uint32_t l = 2 * i + 1;                                               \
            if (l >= n) break;                                                    \
            uint32_t b = (l + 1 < n && BEFORE(h[l + 1], h[l])) ? l + 1 : l;       \
            if (!BEFORE(h[b], x)) break;                                          \
            h[i] = h[b];                                                          \
            i = b;                                                                \
        }                                                                         \
        h[i] = x;                                                                 \
    }
HEAP_DOWN(hmin_down, hmin_before)
HEAP_DOWN(hmax_down, hmax_before)

/* ------------------------------------------------------------- sorting */

/* Indices 0..n-1 by w descending, ties by the lower index: a stable LSD
 * radix sort (4 passes of 8 bits) on the order-preserving bit pattern of
 * non-negative floats, complemented for descending order. */
static void sort_desc(const float *w, uint32_t n, uint32_t *order, uint32_t *tmp, uint32_t *kbuf, uint32_t *ktmp) {
    for (uint32_t i = 0; i < n; i++) {
        uint32_t b;
        float f = w[i] + 0.0f; /* -0 -> +0 */
        memcpy(&b, &f, sizeof b);
        kbuf[i] = ~b;
        order[i] = i;
    }
    uint32_t *src = order, *dst = tmp, *ks = kbuf, *kd = ktmp;
    for (int shift = 0; shift < 32; shift += 8) {
        uint32_t cnt[257] = {0};
        for (uint32_t i = 0; i < n; i++) cnt[((ks[i] >> shift) & 255) + 1]++;
        if (cnt[((ks[0] >> shift) & 255) + 1] == n) continue; /* all equal in this digit */
        for (int d = 0; d < 256; d++) cnt[d + 1] += cnt[d];
        for (uint32_t i = 0; i < n; i++) {
            uint32_t pos = cnt[(ks[i] >> shift) & 255]++;
            dst[pos] = src[i];
            kd[pos] = ks[i];
        }
        uint32_t *t = src; src = dst; dst = t;
        t = ks; ks = kd; kd = t;
    }
    if (src != order) memcpy(order, src, n * sizeof *order);
}

/* ----------------------------------------------------- the three steps */

typedef struct eplb_work {
    uint32_t *order, *tmp, *kbuf, *ktmp; /* [max n] sorting scratch */
    hent *heap;                          /* [max n] */
} eplb_work;

/* balanced_packing for one row: n items of weight w into num_packs packs,
 * pack k holding exactly cap[k] items (sum cap = n). */
static void balanced_packing(const float *w, uint32_t n, uint32_t num_packs, const uint32_t *cap,
                             uint32_t *pack_index, uint32_t *rank_in_pack, uint32_t *pack_items, eplb_work *wk) {
    bool all_one = true;
    for (uint32_t k = 0; k < num_packs && all_one; k++) all_one = cap[k] == 1;
    if (all_one) { /* the reference's groups_per_pack == 1 shortcut */
        for (uint32_t i = 0; i < n; i++) {
            pack_index[i] = i;
            rank_in_pack[i] = 0;
        }
        return;
    }
    sort_desc(w, n, wk->order, wk->tmp, wk->kbuf, wk->ktmp);
    hent *h = wk->heap;
    uint32_t hn = 0;
    for (uint32_t k = 0; k < num_packs; k++) {
        pack_items[k] = 0;
        if (cap[k] > 0) h[hn++] = (hent){0.0f, k}; /* ascending index: already a heap */
    }
    for (uint32_t t = 0; t < n; t++) {
        uint32_t g = wk->order[t];
        uint32_t pack = h[0].idx;
        pack_index[g] = pack;
        rank_in_pack[g] = pack_items[pack];
        h[0].key = h[0].key + w[g]; /* float32 sum, as the reference */
        if (++pack_items[pack] == cap[pack]) h[0] = h[--hn];
        if (hn) hmin_down(h, hn, 0);
    }
}

/* replicate_experts for one row: num_log experts of weight w into num_phy
 * physical experts (num_phy >= num_log). */
static void replicate_experts(const float *w, uint32_t num_log, uint32_t num_phy, uint32_t *phy2log,
                              uint32_t *rank, uint32_t *logcnt, eplb_work *wk) {
    hent *h = wk->heap;
    for (uint32_t i = 0; i < num_log; i++) {
        phy2log[i] = i;
        rank[i] = 0;
        logcnt[i] = 1;
        h[i] = (hent){w[i], i}; /* w / 1 */
    }
    if (num_phy == num_log) return;
    for (uint32_t i = num_log / 2; i-- > 0;) hmax_down(h, num_log, i);
    for (uint32_t i = num_log; i < num_phy; i++) {
        uint32_t e = h[0].idx;
        phy2log[i] = e;
        rank[i] = logcnt[e];
        logcnt[e]++;
        h[0].key = w[e] / (float)logcnt[e];
        hmax_down(h, num_log, 0);
    }
}

/* ----------------------------------------------------------- the driver */

ms_status ms_place_eplb(const ms_place_ctx *ctx, ms_error *err) {
    const ms_place_opts *o = ctx->opts;
    ms_placement *p = ctx->p;
    const ms_loads *ld = ctx->in->loads;
    const ms_cluster *c = &p->cluster;
    uint32_t E = p->n_routed, spd = c->slots_per_device, gpus = ms_cluster_devices(c);
    uint32_t nfree = ms_place_free_slots(ctx);
    if (ms_place_extra(ctx) != nfree - E)
        return ms_error_set(err, MS_E_INPUT,
                            "eplb fills every free slot (%u slots for %u experts): leave out --redundant or set it to %u",
                            nfree, E, nfree - E);
    bool hier = o->groups > 0 && o->groups % c->rows == 0;
    uint32_t groups = hier ? o->groups : 1, nodes = hier ? c->rows : 1, gpn = gpus / nodes;
    if (hier && E % groups != 0)
        return ms_error_set(err, MS_E_INPUT, "eplb: %u routed experts cannot be split into %u equal groups", E, groups);
    uint32_t group_size = E / groups, groups_per_node = groups / nodes, epn = E / nodes;

    /* free slots per GPU (identical in every layer) */
    ms_status st = MS_E_NOMEM;
    uint32_t *cap = ms_calloc_array(gpus, sizeof *cap, err);
    uint32_t *cap_off = ms_calloc_array((size_t)gpus + 1, sizeof *cap_off, err);
    uint32_t *free_slot = ms_alloc_array(nfree ? nfree : 1, sizeof *free_slot, err);
    uint32_t *node_phys = ms_calloc_array(nodes, sizeof *node_phys, err);
    uint32_t *gcap = ms_alloc_array(nodes, sizeof *gcap, err); /* groups per node */
    uint32_t maxn = E > nfree ? E : nfree;
    if (maxn < gpus) maxn = gpus;
    eplb_work wk = {ms_alloc_array(maxn, sizeof(uint32_t), err), ms_alloc_array(maxn, sizeof(uint32_t), err),
                    ms_alloc_array(maxn, sizeof(uint32_t), err), ms_alloc_array(maxn, sizeof(uint32_t), err),
                    ms_alloc_array(maxn, sizeof(hent), err)};
    float *w = ms_alloc_array(E, sizeof *w, err);
    float *tpg = ms_alloc_array(groups, sizeof *tpg, err);
    uint32_t *gpi = ms_alloc_array(groups, sizeof *gpi, err), *grip = ms_alloc_array(groups, sizeof *grip, err);
    uint32_t *pack_items = ms_alloc_array(gpus > groups ? gpus : groups, sizeof *pack_items, err);
    uint32_t *log2mlog = ms_alloc_array(E, sizeof *log2mlog, err), *mlog2log = ms_alloc_array(E, sizeof *mlog2log, err);
    float *tpm = ms_alloc_array(E, sizeof *tpm, err);            /* tokens_per_mlog, node-major */
    uint32_t *mlogcnt = ms_alloc_array(E, sizeof *mlogcnt, err); /* node-major */
    uint32_t *phy2mlog = ms_alloc_array(nfree ? nfree : 1, sizeof(uint32_t), err);
    uint32_t *phyrank = ms_alloc_array(nfree ? nfree : 1, sizeof(uint32_t), err);
    float *tpp = ms_alloc_array(nfree ? nfree : 1, sizeof(float), err);
    uint32_t *pi = ms_alloc_array(nfree ? nfree : 1, sizeof(uint32_t), err);
    uint32_t *rip = ms_alloc_array(nfree ? nfree : 1, sizeof(uint32_t), err);
    int32_t *slot_rank = ms_alloc_array((size_t)p->n_layers * p->n_phys, sizeof(int32_t), err);
    if (!cap || !cap_off || !free_slot || !node_phys || !gcap || !wk.order || !wk.tmp || !wk.kbuf || !wk.ktmp || !wk.heap || !w || !tpg || !gpi ||
        !grip || !pack_items || !log2mlog || !mlog2log || !tpm || !mlogcnt || !phy2mlog || !phyrank || !tpp || !pi ||
        !rip || !slot_rank)
        goto done;

    {
        const int32_t *row0 = p->phy2log; /* reserved slots are the same in every layer */
        uint32_t k = 0;
        for (uint32_t g = 0; g < gpus; g++) {
            cap_off[g] = k;
            for (uint32_t s = 0; s < spd; s++)
                if (row0[g * spd + s] < 0) free_slot[k++] = g * spd + s;
            cap[g] = k - cap_off[g];
            node_phys[g / gpn] += cap[g];
        }
        cap_off[gpus] = k;
    }
    for (uint32_t n = 0; n < nodes; n++)
        if (node_phys[n] < epn) {
            st = ms_error_set(err, MS_E_INPUT, "eplb: row %u has %u free slots for its %u experts", n, node_phys[n], epn);
            goto done;
        }
    for (size_t i = 0; i < (size_t)p->n_layers * p->n_phys; i++) slot_rank[i] = -1;
    for (uint32_t n = 0; n < nodes; n++) gcap[n] = groups_per_node;

    for (uint32_t l = 0; l < p->n_layers; l++) {
        const double *wl = ld->w + (size_t)l * ld->n_experts;
        for (uint32_t e = 0; e < E; e++) w[e] = (float)wl[e];
        /* Step 1: pack groups to nodes */
        for (uint32_t g = 0; g < groups; g++) {
            float s = 0.0f;
            for (uint32_t j = 0; j < group_size; j++) s = s + w[g * group_size + j];
            tpg[g] = s;
        }
        balanced_packing(tpg, groups, nodes, gcap, gpi, grip, pack_items, &wk);
        for (uint32_t e = 0; e < E; e++) {
            uint32_t g = e / group_size;
            log2mlog[e] = (gpi[g] * groups_per_node + grip[g]) * group_size + e % group_size;
            mlog2log[log2mlog[e]] = e;
        }
        for (uint32_t m = 0; m < E; m++) tpm[m] = w[mlog2log[m]];
        /* Steps 2 and 3 per node */
        int32_t *prow = p->phy2log + (size_t)l * p->n_phys;
        int32_t *rrow = slot_rank + (size_t)l * p->n_phys;
        for (uint32_t n = 0; n < nodes; n++) {
            uint32_t np = node_phys[n];
            const float *tn = tpm + (size_t)n * epn;
            uint32_t *cn = mlogcnt + (size_t)n * epn;
            replicate_experts(tn, epn, np, phy2mlog, phyrank, cn, &wk);
            for (uint32_t q = 0; q < np; q++) tpp[q] = tn[phy2mlog[q]] / (float)cn[phy2mlog[q]];
            balanced_packing(tpp, np, gpn, cap + (size_t)n * gpn, pi, rip, pack_items, &wk);
            for (uint32_t q = 0; q < np; q++) {
                uint32_t gpu = n * gpn + pi[q];
                uint32_t slot = free_slot[cap_off[gpu] + rip[q]];
                prow[slot] = (int32_t)mlog2log[n * epn + phy2mlog[q]];
                rrow[slot] = (int32_t)phyrank[q];
            }
        }
    }
    /* log2phy in EPLB's rank order (the shared expert keeps slot order) */
    st = ms_placement_index(p, err);
    if (st != MS_OK) goto done;
    for (uint32_t l = 0; l < p->n_layers; l++) {
        const int32_t *prow = p->phy2log + (size_t)l * p->n_phys;
        const int32_t *rrow = slot_rank + (size_t)l * p->n_phys;
        for (uint32_t s = 0; s < p->n_phys; s++)
            if (rrow[s] >= 0) {
                int32_t *r = p->log2phy + ((size_t)l * p->n_logical + (size_t)prow[s]) * p->max_replicas;
                r[rrow[s]] = (int32_t)s;
            }
    }
    st = MS_OK;
done:
    ms_free(cap);
    ms_free(cap_off);
    ms_free(free_slot);
    ms_free(node_phys);
    ms_free(gcap);
    ms_free(wk.order);
    ms_free(wk.tmp);
    ms_free(wk.kbuf);
    ms_free(wk.ktmp);
    ms_free(wk.heap);
    ms_free(w);
    ms_free(tpg);
    ms_free(gpi);
    ms_free(grip);
    ms_free(pack_items);
    ms_free(log2mlog);
    ms_free(mlog2log);
    ms_free(tpm);
    ms_free(mlogcnt);
    ms_free(phy2mlog);
    ms_free(phyrank);
    ms_free(tpp);
    ms_free(pi);
    ms_free(rip);
    ms_free(slot_rank);
    return st;
}
