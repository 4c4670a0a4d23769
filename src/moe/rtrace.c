/* rtrace.c - routing traces from a router with the auxiliary-loss-free
 * bias update, driven by synthetic token embeddings. */
#include "moesim/moe.h"

#include <math.h>
#include <string.h>

void ms_moe_rtrace_opts_default(ms_moe_rtrace_opts *o) {
    memset(o, 0, sizeof *o);
    ms_moe_config_preset("deepseek-v3", &o->cfg, NULL);
    o->cfg.hidden = 1024;
    o->n_layers = 1;
    o->steps = 50;
    o->tokens_per_step = 256;
    o->gamma = 0.01f;
    o->skew = 0.5;
    o->seed = 1;
}

void ms_moe_rtrace_free(ms_moe_rtrace *r) {
    if (!r) return;
    ms_free(r->max_load);
    ms_free(r->min_load);
    ms_free(r->bias);
    ms_trace_free(r->trace);
    ms_free(r);
}

static void uniform_fill(float *v, uint64_t n, double a, uint64_t k0, uint64_t k1, uint64_t k2) {
    uint64_t key[3] = {k0, k1, k2};
    ms_rng r;
    ms_rng_seed(&r, ms_fnv1a(MS_FNV_OFFSET, key, sizeof key));
    for (uint64_t i = 0; i < n; i++) v[i] = (float)((2.0 * ms_rng_uniform(&r) - 1.0) * a);
}

ms_status ms_moe_router_trace(const ms_moe_rtrace_opts *o, ms_moe_rtrace **out, ms_error *err) {
    *out = NULL;
    ms_status st = ms_moe_config_check(&o->cfg, err);
    if (st != MS_OK) return st;
    if (o->steps == 0 || o->tokens_per_step == 0 || o->n_layers == 0 || o->n_layers > 4096)
        return ms_error_set(err, MS_E_INPUT, "router trace needs steps, tokens per step and 1..4096 layers > 0");
    if (!isfinite(o->gamma) || o->gamma < 0 || !isfinite(o->skew) || o->skew < 0 || o->skew > 1e3)
        return ms_error_set(err, MS_E_INPUT, "router trace: gamma and skew must be finite and >= 0");
    const ms_moe_config *c = &o->cfg;
    const uint32_t E = c->n_experts, K = c->top_k, T = o->tokens_per_step, L = o->n_layers;
    const uint64_t H = c->hidden;
    if ((uint64_t)o->steps * T > (1ull << 32))
        return ms_error_set(err, MS_E_INPUT, "router trace of %llu tokens is too large",
                            (unsigned long long)o->steps * T);
    ms_moe_rtrace *r = ms_calloc_array(1, sizeof *r, err);
    if (!r) return MS_E_NOMEM;
    r->steps = o->steps;
    r->n_layers = L;
    r->n_experts = E;
    r->mean_load = (double)T * K / E;
    r->max_load = ms_calloc_array((size_t)o->steps * L, sizeof(uint32_t), err);
    r->min_load = ms_calloc_array((size_t)o->steps * L, sizeof(uint32_t), err);
    r->bias = ms_calloc_array((size_t)L * E, sizeof(float), err);
    float *rw = ms_alloc_array((size_t)L * E, H * sizeof(float), err);
    float *dir = ms_alloc_array((size_t)L, H * sizeof(float), err);
    float *x = ms_alloc_array(T, H * sizeof(float), err);
    float *lg = ms_alloc_array(T, (size_t)E * sizeof(float), err);
    uint32_t *ids = ms_alloc_array(T, (size_t)K * sizeof(uint32_t), err);
    float *wt = ms_alloc_array(T, (size_t)K * sizeof(float), err);
    uint32_t *load = ms_alloc_array(E, sizeof(uint32_t), err);
    if (!r->max_load || !r->min_load || !r->bias || !rw || !dir || !x || !lg || !ids || !wt || !load) st = MS_E_NOMEM;
    if (st == MS_OK) st = ms_trace_new(L, E, K, 0, o->steps, (uint64_t)o->steps * T, &r->trace, err);
    if (st == MS_OK) {
        ms_trace *tr = r->trace;
        for (uint32_t s = 0; s < o->steps; s++) {
            tr->tok_offset[s] = (uint64_t)s * T;
            tr->n_prompt[s] = T;
            tr->n_output[s] = 0;
            tr->request_id[s] = s;
        }
        tr->tok_offset[o->steps] = (uint64_t)o->steps * T;
        snprintf(tr->source_dtype, sizeof tr->source_dtype, "<u2");
        snprintf(tr->label, sizeof tr->label, "router trace (synthetic embeddings, gamma %g, skew %g, seed %llu)",
                 (double)o->gamma, o->skew, (unsigned long long)o->seed);
        for (uint32_t ly = 0; ly < L; ly++) {
            uniform_fill(rw + (size_t)ly * E * H, (uint64_t)E * H, sqrt(3.0 / (double)H), o->seed, 1, ly);
            uniform_fill(dir + (size_t)ly * H, H, sqrt(3.0), o->seed, 2, ly);
        }
        for (uint32_t s = 0; s < o->steps; s++) {
            for (uint32_t ly = 0; ly < L; ly++) {
                ms_moe_layer lay;
                memset(&lay, 0, sizeof lay);
                lay.cfg = *c;
                lay.router_w = rw + (size_t)ly * E * H;
                float *bias = r->bias + (size_t)ly * E;
                uniform_fill(x, (uint64_t)T * H, sqrt(3.0), o->seed, 3 + (uint64_t)ly, s);
                const float *d = dir + (size_t)ly * H;
                for (uint64_t t = 0; t < T; t++)
                    for (uint64_t j = 0; j < H; j++) x[t * H + j] += (float)o->skew * d[j];
                ms_moe_router_logits(&lay, x, T, lg);
                ms_moe_route_select(c, bias, lg, T, ids, wt);
                uint16_t *row = tr->experts + ((uint64_t)ly * tr->n_tokens + (uint64_t)s * T) * K;
                for (uint64_t i = 0; i < (uint64_t)T * K; i++) row[i] = (uint16_t)ids[i];
                ms_moe_bias_update(c, bias, ids, T, o->gamma, load);
                uint32_t mx = 0, mn = UINT32_MAX;
                for (uint32_t e = 0; e < E; e++) {
                    if (load[e] > mx) mx = load[e];
                    if (load[e] < mn) mn = load[e];
                }
                r->max_load[(size_t)s * L + ly] = mx;
                r->min_load[(size_t)s * L + ly] = mn;
            }
        }
        st = ms_trace_finish(tr, err);
    }
    ms_free(rw);
    ms_free(dir);
    ms_free(x);
    ms_free(lg);
    ms_free(ids);
    ms_free(wt);
    ms_free(load);
    if (st != MS_OK) {
        ms_moe_rtrace_free(r);
        return st;
    }
    *out = r;
    return MS_OK;
}
