/* place.c - the placement dispatcher: options, the algorithm table,
 * effective loads (shared expert column), shared-expert reservation,
 * timing, checks, metadata and lower bounds. See moesim/place.h and
 * place/algos.h. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "place/algos.h"

void ms_place_opts_default(ms_place_opts *o) {
    memset(o, 0, sizeof *o);
    o->algo = "eplb";
    o->shared_expert = false;
    o->shared_replicas = 0;
    o->redundant = UINT32_MAX;
    o->groups = 0;
    o->axis = 'r';
    o->hot_n = 0;
    o->tail_alpha = 2.0;
    o->coact_weight = 1.0;
    o->time_limit_s = 10.0;
    o->seed = 0;
    o->threads = 0;
    o->shared_load = -1.0;
    o->top_k = 0;
    o->lp_bound = true;
}

typedef struct algo_entry {
    const char *name;
    ms_place_algo_fn fn;
} algo_entry;

static const algo_entry algos[] = {
    {"contiguous", ms_place_contiguous},
    {"round-robin", ms_place_round_robin},
    {"pair", ms_place_pair},
    {"replicate", ms_place_replicate},
    {"eplb", ms_place_eplb},
    {"one-per-gpu", ms_place_one_per_gpu},
    {"tail", ms_place_tail},
    {"coact", ms_place_coact},
    {"balance", ms_place_balance},
    {"balance-coact", ms_place_balance_coact},
    {"hot-tier", ms_place_hot_tier},
    {"greedy-cost", ms_place_greedy_cost},
    {"ilp", ms_place_ilp},
};
#define N_ALGOS (sizeof algos / sizeof algos[0])

const char *const *ms_place_algorithms(void) {
    static const char *const names[] = {"contiguous", "round-robin", "pair",    "replicate",     "eplb",
                                        "one-per-gpu", "tail",       "coact",   "balance",       "balance-coact",
                                        "hot-tier",    "greedy-cost", "ilp",    NULL};
    _Static_assert(sizeof names / sizeof names[0] == N_ALGOS + 1, "algorithm list and table disagree");
    return names;
}

uint32_t ms_place_free_slots(const ms_place_ctx *ctx) {
    const ms_placement *p = ctx->p;
    uint32_t n = 0;
    for (uint32_t s = 0; s < p->n_phys; s++) n += p->phy2log[s] < 0;
    return n;
}

uint32_t ms_place_extra(const ms_place_ctx *ctx) {
    uint32_t f = ms_place_free_slots(ctx), e = ctx->p->n_routed;
    uint32_t room = f > e ? f - e : 0;
    return ctx->opts->redundant < room ? ctx->opts->redundant : room;
}

ms_status ms_place_effective_loads(const ms_place_input *in, const ms_place_opts *opts, ms_loads **out,
                                   ms_error *err) {
    *out = NULL;
    if (!in || !in->loads || !in->loads->w) return ms_error_set(err, MS_E_INPUT, "no expert loads given");
    const ms_loads *ld = in->loads;
    const ms_stats *sx = in->stats;
    if (sx && (sx->n_experts != ld->n_experts || sx->n_layers != ld->n_layers || !sx->layers))
        return ms_error_set(err, MS_E_INPUT, "statistics (%u layers x %u experts) disagree with loads (%u x %u)",
                            sx->n_layers, sx->n_experts, ld->n_layers, ld->n_experts);
    for (size_t i = 0; i < (size_t)ld->n_layers * ld->n_experts; i++)
        if (!(ld->w[i] >= 0) || !isfinite(ld->w[i]))
            return ms_error_set(err, MS_E_INPUT, "load of layer %zu expert %zu is %g; loads must be finite and >= 0",
                                i / ld->n_experts, i % ld->n_experts, ld->w[i]);
    if (opts->shared_expert && opts->shared_load >= 0 && !isfinite(opts->shared_load))
        return ms_error_set(err, MS_E_INPUT, "shared expert load must be finite");
    uint32_t cols = ld->n_experts + (opts->shared_expert ? 1 : 0);
    ms_loads *l;
    ms_status st = ms_loads_new(ld->n_layers, cols, &l, err);
    if (st != MS_OK) return st;
    for (uint32_t i = 0; i < ld->n_layers; i++) {
        const double *src = ld->w + (size_t)i * ld->n_experts;
        double *dst = l->w + (size_t)i * cols;
        memcpy(dst, src, ld->n_experts * sizeof *dst);
        if (!opts->shared_expert) continue;
        double sum = 0, mx = 0;
        for (uint32_t e = 0; e < ld->n_experts; e++) {
            sum += src[e];
            if (src[e] > mx) mx = src[e];
        }
        if (sx) dst[ld->n_experts] = (double)sx->layers[i].tokens;
        else if (opts->shared_load >= 0) dst[ld->n_experts] = opts->shared_load;
        else if (opts->top_k > 0) dst[ld->n_experts] = sum / opts->top_k;
        else dst[ld->n_experts] = mx;
    }
    *out = l;
    return MS_OK;
}

/* Device of the shared expert's replica i (moe-balance's rule). */
static uint32_t shared_device(const ms_cluster *c, uint32_t i) {
    return (i % c->rows) * c->cols + (i % c->cols);
}

static ms_status reserve_shared(ms_placement *p, uint32_t k, ms_error *err) {
    const ms_cluster *c = &p->cluster;
    uint32_t spd = c->slots_per_device;
    for (uint32_t i = 0; i < k; i++) {
        uint32_t d = shared_device(c, i), s = 0;
        while (s < spd && p->phy2log[d * spd + s] >= 0) s++;
        if (s == spd)
            return ms_error_set(err, MS_E_INPUT,
                                "%u shared expert replicas do not fit: device %u (row %u, column %u) would need more than %u slots",
                                k, d, d / c->cols, d % c->cols, spd);
        for (uint32_t l = 0; l < p->n_layers; l++) p->phy2log[(size_t)l * p->n_phys + d * spd + s] = (int32_t)p->n_routed;
    }
    return MS_OK;
}

/* The analytic bound of one layer (see ms_place_run in place.h). */
static double analytic_bound(const ms_place_ctx *ctx, uint32_t layer, uint32_t extra) {
    const ms_placement *p = ctx->p;
    const ms_loads *ld = ctx->in->loads;
    const double *w = ld->w + (size_t)layer * ld->n_experts;
    uint32_t devs = ms_cluster_devices(&p->cluster), spd = p->cluster.slots_per_device;
    double total = 0, mx = 0;
    for (uint32_t e = 0; e < ld->n_experts; e++) total += w[e];
    for (uint32_t e = 0; e < p->n_routed; e++)
        if (w[e] > mx) mx = w[e];
    uint32_t spread = extra + 1 < devs ? extra + 1 : devs;
    double b = total / devs;
    if (mx / spread > b) b = mx / spread;
    if (p->has_shared) {
        uint32_t k = ctx->opts->shared_replicas;
        for (uint32_t d = 0; d < devs; d++) {
            uint32_t n = 0;
            for (uint32_t s = 0; s < spd; s++) n += p->phy2log[d * spd + s] == (int32_t)p->n_routed;
            double share = w[p->n_routed] * n / k;
            if (share > b) b = share;
        }
    }
    return b;
}

static void fill_params(ms_placement *p, const ms_place_opts *o) {
    json_t *j = json_object();
    if (!j) return;
    json_object_set_new(j, "rows", json_integer(o->cluster.rows));
    json_object_set_new(j, "cols", json_integer(o->cluster.cols));
    json_object_set_new(j, "slots_per_device", json_integer(o->cluster.slots_per_device));
    json_object_set_new(j, "groups", json_integer(o->groups));
    json_object_set_new(j, "shared_expert", json_boolean(o->shared_expert));
    if (o->shared_expert) {
        json_object_set_new(j, "shared_replicas", json_integer(o->shared_replicas));
        if (o->shared_load >= 0) json_object_set_new(j, "shared_load", json_real(o->shared_load));
        if (o->top_k) json_object_set_new(j, "top_k", json_integer(o->top_k));
    }
    json_object_set_new(j, "redundant", o->redundant == UINT32_MAX ? json_string("fill") : json_integer(o->redundant));
    char axis[2] = {o->axis ? o->axis : 'r', 0};
    json_object_set_new(j, "axis", json_string(axis));
    json_object_set_new(j, "hot_n", json_integer(o->hot_n));
    json_object_set_new(j, "tail_alpha", json_real(o->tail_alpha));
    json_object_set_new(j, "coact_weight", json_real(o->coact_weight));
    json_object_set_new(j, "time_limit_s", json_real(o->time_limit_s));
    json_object_set_new(j, "seed", json_integer((json_int_t)o->seed));
    json_object_set_new(j, "lp_bound", json_boolean(o->lp_bound));
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!s) return;
    if (strlen(s) < sizeof p->params) strcpy(p->params, s);
    free(s);
}

static uint64_t loads_digest(const ms_loads *l) {
    uint64_t h = ms_fnv1a(MS_FNV_OFFSET, &l->n_layers, sizeof l->n_layers);
    h = ms_fnv1a(h, &l->n_experts, sizeof l->n_experts);
    return ms_fnv1a(h, l->w, (size_t)l->n_layers * l->n_experts * sizeof *l->w);
}

ms_status ms_place_run(const ms_place_input *in, const ms_place_opts *opts, ms_placement **out, ms_error *err) {
    *out = NULL;
    if (!in || !in->loads) return ms_error_set(err, MS_E_INPUT, "no expert loads given");
    if (!opts || !opts->algo) return ms_error_set(err, MS_E_INPUT, "no placement algorithm given");
    const algo_entry *a = NULL;
    for (size_t i = 0; i < N_ALGOS; i++)
        if (strcmp(opts->algo, algos[i].name) == 0) a = &algos[i];
    if (!a) {
        char list[512] = "";
        for (size_t i = 0; i < N_ALGOS; i++) {
            if (i) strncat(list, ", ", sizeof list - strlen(list) - 1);
            strncat(list, algos[i].name, sizeof list - strlen(list) - 1);
        }
        return ms_error_set(err, MS_E_INPUT, "unknown placement algorithm '%s' (known: %s)", opts->algo, list);
    }
    ms_status st = ms_cluster_check(&opts->cluster, err);
    if (st != MS_OK) return st;
    ms_place_opts o = *opts;
    const ms_cluster *c = &o.cluster;
    const ms_loads *ld = in->loads;
    if (ld->n_layers == 0 || ld->n_experts == 0 || !ld->w) return ms_error_set(err, MS_E_INPUT, "the load matrix is empty");
    uint32_t E = ld->n_experts;
    if (o.shared_expert) {
        if (o.shared_replicas == 0) o.shared_replicas = c->rows;
    } else {
        o.shared_replicas = 0;
    }
    uint64_t need = (uint64_t)E + o.shared_replicas;
    if (need > ms_cluster_slots(c))
        return ms_error_set(err, MS_E_INPUT,
                            "slot budget too small: %ux%u devices x %u slots = %u slots < %u routed experts%s%u shared replicas",
                            c->rows, c->cols, c->slots_per_device, ms_cluster_slots(c), E, " + ", o.shared_replicas);
    uint32_t room = ms_cluster_slots(c) - (uint32_t)need;
    if (o.redundant != UINT32_MAX && o.redundant > room)
        return ms_error_set(err, MS_E_INPUT, "%u redundant replicas requested but only %u free slots remain after one per expert",
                            o.redundant, room);

    ms_loads *eff = NULL;
    ms_placement *p = NULL;
    double *bounds = NULL;
    st = ms_place_effective_loads(in, &o, &eff, err);
    if (st != MS_OK) return st;
    st = ms_placement_new(ld->n_layers, c, E, o.shared_expert, &p, err);
    if (st != MS_OK) goto fail;
    if (o.shared_expert && (st = reserve_shared(p, o.shared_replicas, err)) != MS_OK) goto fail;

    ms_place_input ein = *in;
    ein.loads = eff;
    ms_place_ctx ctx = {&ein, &o, p};
    uint32_t extra = ms_place_extra(&ctx); /* before the algorithm fills the free slots */
    /* bounds first: they see the placement as the algorithm gets it */
    bounds = ms_alloc_array(p->n_layers, sizeof *bounds, err);
    if (!bounds) {
        st = MS_E_NOMEM;
        goto fail;
    }
    double sum_b = 0;
    for (uint32_t l = 0; l < p->n_layers; l++) {
        double b = analytic_bound(&ctx, l, extra);
        double lp = o.lp_bound ? ms_place_lower_bound(&ctx, l) : NAN;
        if (!isnan(lp) && lp > b) b = lp;
        bounds[l] = b;
        sum_b += b;
    }
    double t0 = ms_now();
    st = a->fn(&ctx, err);
    p->runtime_s = ms_now() - t0;
    if (st != MS_OK) {
        if (err && err->msg[0] == '\0') ms_error_set(err, st, "placement algorithm '%s' failed", a->name);
        goto fail;
    }
    /* the algorithm must not have moved the shared replicas */
    if (o.shared_expert) {
        for (uint32_t l = 0; l < p->n_layers; l++)
            for (uint32_t s = 0; s < p->n_phys; s++)
                if ((p->phy2log[(size_t)l * p->n_phys + s] == (int32_t)E) != (p->phy2log[s] == (int32_t)E)) {
                    st = ms_error_set(err, MS_E_INTERNAL, "algorithm '%s' moved the shared expert (layer %u slot %u)", a->name,
                                      l, s);
                    goto fail;
                }
    }
    if (!p->log2phy && (st = ms_placement_index(p, err)) != MS_OK) goto fail;
    if ((st = ms_placement_check(p, err)) != MS_OK) {
        char msg[MS_ERROR_MAX];
        snprintf(msg, sizeof msg, "%s", err ? err->msg : "");
        st = ms_error_set(err, MS_E_INTERNAL, "algorithm '%s' produced an invalid placement: %s", a->name, msg);
        goto fail;
    }
    /* replica budget, objective */
    double sum_o = 0;
    for (uint32_t l = 0; l < p->n_layers; l++) {
        uint64_t routed = 0;
        for (uint32_t e = 0; e < E; e++) routed += p->logcnt[(size_t)l * p->n_logical + e];
        if (routed > (uint64_t)E + extra) {
            st = ms_error_set(err, MS_E_INTERNAL, "algorithm '%s' placed %llu routed replicas in layer %u; budget %u", a->name,
                              (unsigned long long)routed, l, E + extra);
            goto fail;
        }
        sum_o += ms_placement_max_device_load(p, eff, l);
    }
    p->layer_bound = bounds;
    bounds = NULL;
    p->lower_bound = sum_b / p->n_layers;
    if (isnan(p->objective)) p->objective = sum_o / p->n_layers;
    snprintf(p->algorithm, sizeof p->algorithm, "%s", a->name);
    fill_params(p, &o);
    p->trace_digest = in->digest ? in->digest : loads_digest(ld);
    ms_loads_free(eff);
    *out = p;
    return MS_OK;
fail:
    ms_free(bounds);
    ms_placement_free(p);
    ms_loads_free(eff);
    return st;
}
