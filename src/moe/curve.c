/* curve.c - time of the optimized (and the functional) forward against
 * tokens per expert: the numbers behind moe-bench and calibrate. */
#include "moesim/moe.h"

#include <math.h>
#include <string.h>

#include "moe/moe_internal.h"

void ms_moe_curve_opts_default(ms_moe_curve_opts *o) {
    memset(o, 0, sizeof *o);
    ms_moe_config_preset("deepseek-v3", &o->cfg, NULL);
    o->cfg.router = MS_MOE_ROUTER_SOFTMAX;
    o->cfg.n_experts = 2;
    o->cfg.top_k = 2;
    o->cfg.n_shared = 0;
    o->cfg.shared_inter = 0;
    o->cfg.n_group = 1;
    o->cfg.topk_group = 1;
    o->cfg.routed_scaling = 1.0f;
    o->threading = MS_MOE_THREADS_AUTO;
    o->min_seconds = 0.2;
    o->max_reps = 5;
    o->seed = 1;
}

ms_status ms_moe_measure_curve(const ms_moe_curve_opts *o, ms_moe_point *points, ms_error *err) {
    ms_moe_config c = o->cfg;
    c.n_shared = 0;
    c.shared_inter = 0;
    c.capacity_factor = 0;
    if (c.router == MS_MOE_ROUTER_SIGMOID_GROUP) c.router = MS_MOE_ROUTER_SOFTMAX; /* routing is synthetic */
    ms_status st = ms_moe_config_check(&c, err);
    if (st != MS_OK) return st;
    if (o->n_points == 0 || !o->tokens_per_expert) return ms_error_set(err, MS_E_INPUT, "no tokens-per-expert points");
    const uint32_t E = c.n_experts, K = c.top_k;
    const uint64_t H = c.hidden, I = c.inter;
    uint32_t tmax = 0;
    for (uint32_t p = 0; p < o->n_points; p++) {
        uint64_t n = o->tokens_per_expert[p];
        if (n == 0 || n > (1u << 24))
            return ms_error_set(err, MS_E_INPUT, "tokens per expert %llu out of range 1..%u", (unsigned long long)n,
                                1u << 24);
        if ((n * E) % K != 0)
            return ms_error_set(err, MS_E_INPUT,
                                "%llu tokens per expert x %u experts is not a multiple of top-k %u",
                                (unsigned long long)n, E, K);
        uint64_t T = n * E / K;
        if (T > (1u << 24)) return ms_error_set(err, MS_E_INPUT, "%llu tokens is too many", (unsigned long long)T);
        if (T > tmax) tmax = (uint32_t)T;
    }
    ms_moe_layer *l = NULL;
    ms_moe_workspace *w = NULL;
    ms_moe_ws_opts wo = {o->threads, o->threading, o->tile, o->no_small_kernel, false};
    float *x = NULL, *y = NULL, *yr = NULL, *wt = NULL;
    uint32_t *ids = NULL;
    st = ms_moe_layer_new(&c, o->seed, &l, err);
    if (st == MS_OK) st = ms_moe_workspace_new(&c, tmax, &wo, &w, err);
    if (st == MS_OK) {
        x = ms_alloc_array((size_t)tmax * H, sizeof(float), err);
        y = ms_alloc_array((size_t)tmax * H, sizeof(float), err);
        ids = ms_alloc_array((size_t)tmax * K, sizeof(uint32_t), err);
        wt = ms_alloc_array((size_t)tmax * K, sizeof(float), err);
        if (!x || !y || !ids || !wt) st = MS_E_NOMEM;
    }
    if (st == MS_OK) {
        ms_rng r;
        ms_rng_seed(&r, o->seed ^ 0x9e3779b97f4a7c15ULL);
        for (size_t i = 0; i < (size_t)tmax * H; i++) x[i] = (float)((2.0 * ms_rng_uniform(&r) - 1.0) * sqrt(3.0));
        for (size_t i = 0; i < (size_t)tmax * K; i++) {
            ids[i] = (uint32_t)(i % E); /* token t takes (t*K + j) mod E */
            wt[i] = 1.0f / (float)K;
        }
    }
    const int nth = o->threads > 0 ? o->threads : ms_thread_count();
    for (uint32_t p = 0; p < o->n_points && st == MS_OK; p++) {
        ms_moe_point *pt = &points[p];
        memset(pt, 0, sizeof *pt);
        pt->tokens_per_expert = o->tokens_per_expert[p];
        uint32_t T = (uint32_t)((uint64_t)pt->tokens_per_expert * E / K);
        pt->n_tokens = T;
        pt->flops = 6.0 * (double)H * (double)I * (double)T * K;
        st = ms_moe_forward(l, w, x, T, ids, wt, y, NULL, err); /* warm-up */
        double best = 1e300, spent = 0;
        int reps = 0, max_reps = o->max_reps > 0 ? o->max_reps : 1;
        int min_reps = max_reps < 2 ? max_reps : 2;
        while (st == MS_OK && reps < max_reps && (reps < min_reps || spent < o->min_seconds)) {
            double t0 = ms_moe_clock(o->cpu_clock, nth);
            st = ms_moe_forward(l, w, x, T, ids, wt, y, NULL, err);
            double dt = ms_moe_clock(o->cpu_clock, nth) - t0;
            spent += dt;
            if (dt < best) best = dt;
            reps++;
        }
        if (st != MS_OK) break;
        pt->opt_s = best;
        pt->gflops = pt->flops / best / 1e9;
        pt->ref_s = -1;
        pt->max_rel_err = -1;
        if (o->reference_max && (uint64_t)T * K <= o->reference_max) {
            if (!yr) yr = ms_alloc_array((size_t)tmax * H, sizeof(float), err);
            if (!yr) {
                st = MS_E_NOMEM;
                break;
            }
            double t0 = ms_moe_clock(o->cpu_clock, 1);
            st = ms_moe_forward_ref(l, x, T, ids, wt, yr, NULL, err);
            pt->ref_s = ms_moe_clock(o->cpu_clock, 1) - t0;
            double md = 0, mr = 0;
            for (size_t i = 0; i < (size_t)T * H; i++) {
                md = fmax(md, fabs((double)y[i] - yr[i]));
                mr = fmax(mr, fabs((double)yr[i]));
            }
            pt->max_rel_err = mr > 0 ? md / mr : md;
        }
        if (o->progress) o->progress(o->progress_ctx, p + 1, o->n_points);
    }
    ms_free(x);
    ms_free(y);
    ms_free(yr);
    ms_free(ids);
    ms_free(wt);
    ms_moe_workspace_free(w);
    ms_moe_layer_free(l);
    return st;
}
