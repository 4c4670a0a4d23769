/* ref.c - the functional MoE forward: token by token, expert by expert,
 * plain loops with double accumulators. Slow on purpose; the truth the
 * optimized forward is tested against. */
#include "moesim/moe.h"

#include <math.h>
#include <string.h>

static inline double wget(ms_moe_dtype dt, const void *block, uint64_t i) {
    return (double)ms_moe_weight_get(dt, block, i);
}

/* acc[H] += scale * W2 (silu(G x) * (U x)) for one SwiGLU MLP of
 * intermediate n: w13 [2n][H] (gate rows, then up rows), w2 [H][n].
 * h is scratch of 2n doubles. */
static void swiglu_mlp(ms_moe_dtype dt, const void *w13, const void *w2, uint32_t H, uint32_t n, const float *x,
                       double scale, double *h, double *acc) {
    for (uint64_t r = 0; r < 2 * (uint64_t)n; r++) {
        double s = 0;
        for (uint32_t j = 0; j < H; j++) s += wget(dt, w13, r * H + j) * (double)x[j];
        h[r] = s;
    }
    for (uint32_t i = 0; i < n; i++) {
        double g = h[i], u = h[n + i];
        h[i] = g / (1.0 + exp(-g)) * u; /* silu(gate) * up */
    }
    for (uint32_t o = 0; o < H; o++) {
        double s = 0;
        for (uint32_t i = 0; i < n; i++) s += wget(dt, w2, (uint64_t)o * n + i) * h[i];
        acc[o] += scale * s;
    }
}

ms_status ms_moe_forward_ref(const ms_moe_layer *l, const float *x, uint32_t n_tokens, const uint32_t *ids,
                             const float *weights, float *y, ms_moe_fwd_stats *stats, ms_error *err) {
    const ms_moe_config *c = &l->cfg;
    uint32_t H = c->hidden, I = c->inter, E = c->n_experts, K = c->top_k;
    uint32_t Is = c->n_shared * c->shared_inter;
    for (uint64_t i = 0; i < (uint64_t)n_tokens * K; i++)
        if (ids[i] >= E)
            return ms_error_set(err, MS_E_INPUT, "routing: token %llu chooses expert %u (experts: %u)",
                                (unsigned long long)(i / K), ids[i], E);
    uint32_t hmax = I > Is ? I : Is;
    double *h = ms_alloc_array(2 * (size_t)hmax, sizeof(double), err);
    double *acc = ms_alloc_array(H, sizeof(double), err);
    uint32_t *taken = ms_calloc_array(E, sizeof(uint32_t), err);
    if (!h || !acc || !taken) {
        ms_free(h);
        ms_free(acc);
        ms_free(taken);
        return MS_E_NOMEM;
    }
    uint32_t cap = ms_moe_capacity(c, n_tokens);
    size_t el = c->dtype == MS_MOE_BF16 ? 2 : 4;
    uint64_t dropped = 0, kept = 0;
    for (uint32_t t = 0; t < n_tokens; t++) {
        const float *xt = x + (uint64_t)t * H;
        memset(acc, 0, H * sizeof(double));
        for (uint32_t k = 0; k < K; k++) {
            uint32_t e = ids[(uint64_t)t * K + k];
            /* capacity: the first `cap` assignments of e in (token, k) order */
            if (taken[e] >= cap) {
                dropped++;
                continue;
            }
            taken[e]++;
            kept++;
            const uint8_t *w13 = (const uint8_t *)l->w13 + (uint64_t)e * 2 * I * H * el;
            const uint8_t *w2 = (const uint8_t *)l->w2 + (uint64_t)e * H * I * el;
            swiglu_mlp(c->dtype, w13, w2, H, I, xt, weights[(uint64_t)t * K + k], h, acc);
        }
        if (Is) swiglu_mlp(c->dtype, l->sh_w13, l->sh_w2, H, Is, xt, 1.0, h, acc);
        for (uint32_t o = 0; o < H; o++) y[(uint64_t)t * H + o] = (float)acc[o];
    }
    if (stats) {
        memset(stats, 0, sizeof *stats);
        stats->assignments = kept;
        stats->dropped = dropped;
        for (uint32_t e = 0; e < E; e++) {
            if (taken[e] > stats->max_load) stats->max_load = taken[e];
            stats->active_experts += taken[e] > 0;
        }
    }
    ms_free(h);
    ms_free(acc);
    ms_free(taken);
    return MS_OK;
}
