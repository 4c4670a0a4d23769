/* router.c - top-k routing (Mixtral softmax, DeepSeek-V3 sigmoid with
 * group-limited selection and selection bias) and the auxiliary-loss-free
 * bias update. Plain code shared by both forward implementations. */
#include "moesim/moe.h"

#include <assert.h>
#include <math.h>
#include <string.h>

#include "moe/moe_internal.h"

void ms_moe_router_logits(const ms_moe_layer *l, const float *x, uint32_t n_tokens, float *logits) {
    const ms_moe_config *c = &l->cfg;
    if (n_tokens == 0) return;
#ifdef MOESIM_HAVE_BLAS
    ms_moe_sgemm_nt(n_tokens, c->n_experts, c->hidden, x, c->hidden, l->router_w, c->hidden, 0.0f, logits,
                    c->n_experts);
#else
    for (uint32_t t = 0; t < n_tokens; t++)
        for (uint32_t e = 0; e < c->n_experts; e++) {
            const float *xr = x + (uint64_t)t * c->hidden, *wr = l->router_w + (uint64_t)e * c->hidden;
            double s = 0;
            for (uint32_t j = 0; j < c->hidden; j++) s += (double)xr[j] * wr[j];
            logits[(uint64_t)t * c->n_experts + e] = (float)s;
        }
#endif
}

/* NaN sorts below everything, so a total order always exists. */
static inline float key(float v) { return isnan(v) ? -INFINITY : v; }

/* (a, ia) comes strictly before (b, ib) in the order: score descending,
 * then id ascending. */
static inline int before(float a, uint32_t ia, float b, uint32_t ib) { return a > b || (a == b && ia < ib); }

static void select_softmax(const ms_moe_config *c, const float *bias, const float *lg, uint32_t *ids, float *w) {
    uint32_t E = c->n_experts, K = c->top_k;
    float mx = -INFINITY;
    for (uint32_t e = 0; e < E; e++) mx = fmaxf(mx, key(lg[e]));
    double z = 0;
    for (uint32_t e = 0; e < E; e++) z += exp((double)key(lg[e]) - mx);
    /* selection scores: logits + bias, computed on the fly */
    float prev = 0;
    uint32_t iprev = 0;
    double sum = 0;
    for (uint32_t j = 0; j < K; j++) {
        uint32_t cur = UINT32_MAX;
        float curv = 0;
        for (uint32_t e = 0; e < E; e++) {
            float v = key(lg[e] + (bias ? bias[e] : 0.0f));
            if (j > 0 && !before(prev, iprev, v, e)) continue;
            if (cur == UINT32_MAX || before(v, e, curv, cur)) {
                cur = e;
                curv = v;
            }
        }
        assert(cur != UINT32_MAX);
        ids[j] = cur;
        prev = curv;
        iprev = cur;
        double p = isfinite(mx) ? exp((double)key(lg[cur]) - mx) / z : 1.0 / E;
        w[j] = (float)p;
        sum += p;
    }
    for (uint32_t j = 0; j < K; j++) {
        double v = c->norm_topk && sum > 0 ? w[j] / sum : w[j];
        w[j] = (float)(v * c->routed_scaling);
    }
}

static inline float sigmoidf_(float x) { return (float)(1.0 / (1.0 + exp(-(double)x))); }

/* Selection score c_e = sigmoid(logit) + bias, from the cache when there is one. */
static inline float sel_score(const float *cache, const float *lg, const float *bias, uint32_t e) {
    if (cache) return cache[e];
    return key(sigmoidf_(lg[e]) + (bias ? bias[e] : 0.0f));
}

static void select_group(const ms_moe_config *c, const float *bias, const float *lg, uint32_t *ids, float *w) {
    uint32_t E = c->n_experts, K = c->top_k, G = c->n_group, per = E / G, TG = c->topk_group;
    float cbuf[MS_MOE_SCORE_CACHE];
    const float *cache = NULL;
    if (E <= MS_MOE_SCORE_CACHE) {
        for (uint32_t e = 0; e < E; e++) cbuf[e] = key(sigmoidf_(lg[e]) + (bias ? bias[e] : 0.0f));
        cache = cbuf;
    }
    /* group score: the sum of the group's two best selection scores */
    float gs[MS_MOE_MAX_GROUPS];
    for (uint32_t g = 0; g < G; g++) {
        float b1 = -INFINITY, b2 = -INFINITY;
        for (uint32_t e = g * per; e < (g + 1) * per; e++) {
            float v = sel_score(cache, lg, bias, e);
            if (v > b1) {
                b2 = b1;
                b1 = v;
            } else if (v > b2) b2 = v;
        }
        gs[g] = key(b1 + b2);
    }
    /* the TG best groups, by repeated ordered argmax */
    uint32_t gsel[MS_MOE_MAX_TOPK_GROUP];
    float gprev = 0;
    uint32_t giprev = 0;
    for (uint32_t j = 0; j < TG; j++) {
        uint32_t cur = UINT32_MAX;
        float curv = 0;
        for (uint32_t g = 0; g < G; g++) {
            if (j > 0 && !before(gprev, giprev, gs[g], g)) continue;
            if (cur == UINT32_MAX || before(gs[g], g, curv, cur)) {
                cur = g;
                curv = gs[g];
            }
        }
        assert(cur != UINT32_MAX);
        gsel[j] = cur;
        gprev = curv;
        giprev = cur;
    }
    /* top-k of c among the experts of the kept groups */
    float prev = 0;
    uint32_t iprev = 0;
    double sum = 0;
    for (uint32_t j = 0; j < K; j++) {
        uint32_t cur = UINT32_MAX;
        float curv = 0;
        for (uint32_t q = 0; q < TG; q++) {
            uint32_t g = gsel[q];
            for (uint32_t e = g * per; e < (g + 1) * per; e++) {
                float v = sel_score(cache, lg, bias, e);
                if (j > 0 && !before(prev, iprev, v, e)) continue;
                if (cur == UINT32_MAX || before(v, e, curv, cur)) {
                    cur = e;
                    curv = v;
                }
            }
        }
        assert(cur != UINT32_MAX);
        ids[j] = cur;
        prev = curv;
        iprev = cur;
        float s = sigmoidf_(lg[cur]); /* the weight uses the score without the bias */
        w[j] = s;
        sum += s;
    }
    for (uint32_t j = 0; j < K; j++) {
        double v = c->norm_topk ? w[j] / (sum + 1e-20) : w[j];
        w[j] = (float)(v * c->routed_scaling);
    }
}

void ms_moe_route_select(const ms_moe_config *c, const float *bias, const float *logits, uint32_t n_tokens,
                         uint32_t *ids, float *weights) {
    assert(ms_moe_config_check(c, NULL) == MS_OK);
    for (uint32_t t = 0; t < n_tokens; t++) {
        const float *lg = logits + (uint64_t)t * c->n_experts;
        uint32_t *id = ids + (uint64_t)t * c->top_k;
        float *w = weights + (uint64_t)t * c->top_k;
        if (c->router == MS_MOE_ROUTER_SIGMOID_GROUP) select_group(c, bias, lg, id, w);
        else select_softmax(c, bias, lg, id, w);
    }
}

ms_status ms_moe_route(const ms_moe_layer *l, const float *x, uint32_t n_tokens, uint32_t *ids, float *weights,
                       ms_error *err) {
    float *lg = ms_alloc_array((size_t)n_tokens * l->cfg.n_experts + 1, sizeof(float), err);
    if (!lg) return MS_E_NOMEM;
    ms_moe_router_logits(l, x, n_tokens, lg);
    ms_moe_route_select(&l->cfg, l->bias, lg, n_tokens, ids, weights);
    ms_free(lg);
    return MS_OK;
}

void ms_moe_count_load(const ms_moe_config *c, const uint32_t *ids, uint32_t n_tokens, uint32_t *load) {
    memset(load, 0, (size_t)c->n_experts * sizeof *load);
    for (uint64_t i = 0; i < (uint64_t)n_tokens * c->top_k; i++)
        if (ids[i] < c->n_experts) load[ids[i]]++;
}

void ms_moe_bias_update(const ms_moe_config *c, float *bias, const uint32_t *ids, uint32_t n_tokens, float gamma,
                        uint32_t *load) {
    double mean = (double)n_tokens * c->top_k / c->n_experts;
    ms_moe_count_load(c, ids, n_tokens, load);
    for (uint32_t e = 0; e < c->n_experts; e++) {
        double d = mean - (double)load[e];
        bias[e] += gamma * (float)((d > 0) - (d < 0));
    }
}
