/* test-moe-router.c - router properties (softmax top-k renormalised;
 * DeepSeek-V3 group-limited sigmoid with selection bias), the bias update by
 * hand, the bias update flattening load on a skewed synthetic router, router
 * traces written and read back, and the option parsers. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "moesim/moe.h"

static float *rand_logits(uint32_t T, uint32_t E, uint64_t seed, double scale) {
    float *l = malloc((size_t)T * E * sizeof(float));
    ms_rng r;
    ms_rng_seed(&r, seed);
    for (size_t i = 0; i < (size_t)T * E; i++) l[i] = (float)(scale * ms_rng_normal(&r));
    return l;
}

static ms_moe_config softmax_cfg(uint32_t E, uint32_t K) {
    ms_moe_config c;
    assert_int_equal(ms_moe_config_preset("16x16", &c, NULL), MS_OK);
    c.n_experts = E;
    c.top_k = K;
    return c;
}

static ms_moe_config v3_cfg(void) {
    ms_moe_config c;
    assert_int_equal(ms_moe_config_preset("deepseek-v3", &c, NULL), MS_OK);
    return c;
}

static void test_softmax(void **state) {
    (void)state;
    ms_moe_config c = softmax_cfg(8, 2);
    const uint32_t T = 500;
    float *lg = rand_logits(T, 8, 1, 2.0);
    uint32_t *ids = malloc(T * 2 * sizeof *ids);
    float *w = malloc(T * 2 * sizeof *w);
    ms_moe_route_select(&c, NULL, lg, T, ids, w);
    for (uint32_t t = 0; t < T; t++) {
        const float *l = lg + t * 8;
        /* brute force: the two largest logits */
        uint32_t b0 = 0;
        for (uint32_t e = 1; e < 8; e++)
            if (l[e] > l[b0]) b0 = e;
        uint32_t b1 = b0 == 0 ? 1 : 0;
        for (uint32_t e = 0; e < 8; e++)
            if (e != b0 && l[e] > l[b1]) b1 = e;
        assert_int_equal(ids[2 * t], b0);
        assert_int_equal(ids[2 * t + 1], b1);
        assert_float_equal(w[2 * t] + w[2 * t + 1], 1.0, 1e-6);
        /* renormalised softmax of the two: w0/w1 = exp(l0 - l1) */
        assert_float_equal(w[2 * t] / w[2 * t + 1], exp((double)l[b0] - l[b1]), 1e-4 * exp((double)l[b0] - l[b1]));
    }
    /* without renormalisation the weights are the plain softmax probabilities */
    c.norm_topk = false;
    ms_moe_route_select(&c, NULL, lg, 1, ids, w);
    double z = 0;
    for (uint32_t e = 0; e < 8; e++) z += exp(lg[e]);
    assert_float_equal(w[0], exp(lg[ids[0]]) / z, 1e-6);
    /* ties break toward the lower id */
    float flat[8] = {0};
    c.norm_topk = true;
    ms_moe_route_select(&c, NULL, flat, 1, ids, w);
    assert_int_equal(ids[0], 0);
    assert_int_equal(ids[1], 1);
    assert_float_equal(w[0], 0.5, 1e-7);
    /* NaN logits never win and never break the selection */
    float nanl[8] = {NAN, 1, NAN, 3, NAN, NAN, NAN, NAN};
    ms_moe_route_select(&c, NULL, nanl, 1, ids, w);
    assert_int_equal(ids[0], 3);
    assert_int_equal(ids[1], 1);
    /* a selection bias changes the choice; the weight stays softmax of the logits */
    float bias[8] = {0, 0, 0, 0, 0, 0, 0, 10};
    float l2[8] = {3, 2, 1, 0, 0, 0, 0, 0};
    ms_moe_route_select(&c, bias, l2, 1, ids, w);
    assert_int_equal(ids[0], 7);
    assert_int_equal(ids[1], 0);
    assert_float_equal(w[0] / w[1], exp(0.0 - 3.0), 1e-6);
    free(lg);
    free(ids);
    free(w);
}

static void test_group_limited(void **state) {
    (void)state;
    ms_moe_config c = v3_cfg();
    const uint32_t T = 300, E = 256, K = 8, per = 32;
    float *lg = rand_logits(T, E, 2, 1.5);
    uint32_t *ids = malloc(T * K * sizeof *ids);
    float *w = malloc(T * K * sizeof *w);
    float *bias = calloc(E, sizeof *bias);
    ms_rng r;
    ms_rng_seed(&r, 5);
    for (uint32_t e = 0; e < E; e++) bias[e] = (float)(0.3 * (ms_rng_uniform(&r) - 0.5));
    ms_moe_route_select(&c, bias, lg, T, ids, w);
    for (uint32_t t = 0; t < T; t++) {
        const float *l = lg + (size_t)t * E;
        uint32_t groups[8] = {0}, ngroups = 0;
        double sum = 0, ssum = 0;
        for (uint32_t k = 0; k < K; k++) {
            uint32_t e = ids[t * K + k];
            assert_true(e < E);
            for (uint32_t q = 0; q < k; q++) assert_true(ids[t * K + q] != e); /* distinct */
            if (!groups[e / per]++) ngroups++;
            sum += w[t * K + k];
            ssum += 1 / (1 + exp(-(double)l[e]));
        }
        assert_true(ngroups <= 4); /* chosen experts lie in <= topk_group groups */
        assert_float_equal(sum, 2.5, 1e-5); /* normalised, times the scaling factor */
        /* each weight = sigmoid score (not score + bias) / sum * 2.5 */
        for (uint32_t k = 0; k < K; k++) {
            double s = 1 / (1 + exp(-(double)l[ids[t * K + k]]));
            assert_float_equal(w[t * K + k], s / ssum * 2.5, 1e-5);
        }
        /* brute force: group scores (top-2 sum of s + bias), 4 best groups,
         * then the best 8 experts inside them */
        double gs[8];
        for (uint32_t g = 0; g < 8; g++) {
            double b1 = -1e9, b2 = -1e9;
            for (uint32_t e = g * per; e < (g + 1) * per; e++) {
                double v = 1 / (1 + exp(-(double)l[e])) + bias[e];
                if (v > b1) {
                    b2 = b1;
                    b1 = v;
                } else if (v > b2) b2 = v;
            }
            gs[g] = b1 + b2;
        }
        int kept[8] = {0};
        for (int j = 0; j < 4; j++) {
            int best = -1;
            for (int g = 0; g < 8; g++)
                if (!kept[g] && (best < 0 || gs[g] > gs[best])) best = g;
            kept[best] = 1;
        }
        for (uint32_t k = 0; k < K; k++) assert_true(kept[ids[t * K + k] / per]);
        /* the 8th choice beats every unchosen expert of a kept group */
        double last = 1 / (1 + exp(-(double)l[ids[t * K + K - 1]])) + bias[ids[t * K + K - 1]];
        for (uint32_t e = 0; e < E; e++) {
            if (!kept[e / per]) continue;
            int chosen = 0;
            for (uint32_t k = 0; k < K; k++) chosen |= ids[t * K + k] == e;
            if (!chosen) assert_true(1 / (1 + exp(-(double)l[e])) + bias[e] <= last + 1e-6);
        }
    }
    /* a bias that shifts every expert equally changes nothing */
    uint32_t *ids2 = malloc(T * K * sizeof *ids2);
    float *w2 = malloc(T * K * sizeof *w2);
    float *bias2 = malloc(E * sizeof *bias2);
    for (uint32_t e = 0; e < E; e++) bias2[e] = bias[e] + 0.25f;
    ms_moe_route_select(&c, bias2, lg, T, ids2, w2);
    /* (float rounding of s + b can flip exact near-ties; random logits have none) */
    assert_memory_equal(ids, ids2, T * K * sizeof *ids);
    assert_memory_equal(w, w2, T * K * sizeof *w);
    /* a big bias on expert 200 pulls it (and its group) into every token;
     * its weight is its sigmoid score, not score + bias */
    bias2[200] = 5.0f;
    ms_moe_route_select(&c, bias2, lg, T, ids2, w2);
    for (uint32_t t = 0; t < T; t++) {
        assert_int_equal(ids2[t * K], 200);
        double s200 = 1 / (1 + exp(-(double)lg[(size_t)t * E + 200])), ssum = 0;
        for (uint32_t k = 0; k < K; k++) ssum += 1 / (1 + exp(-(double)lg[(size_t)t * E + ids2[t * K + k]]));
        assert_float_equal(w2[t * K], s200 / ssum * 2.5, 1e-5);
    }
    free(lg);
    free(ids);
    free(w);
    free(ids2);
    free(w2);
    free(bias);
    free(bias2);
}

static void test_bias_update_by_hand(void **state) {
    (void)state;
    ms_moe_config c = softmax_cfg(4, 1);
    uint32_t ids[4] = {0, 0, 0, 1}; /* loads 3 1 0 0, mean 1 */
    float bias[4] = {0, 0, 0, 0.5f};
    uint32_t load[4];
    ms_moe_bias_update(&c, bias, ids, 4, 0.1f, load);
    assert_int_equal(load[0], 3);
    assert_int_equal(load[1], 1);
    assert_int_equal(load[2], 0);
    assert_float_equal(bias[0], -0.1, 1e-7);
    assert_float_equal(bias[1], 0.0, 1e-7); /* at the mean: sign 0 */
    assert_float_equal(bias[2], 0.1, 1e-7);
    assert_float_equal(bias[3], 0.6, 1e-7);
    assert_int_equal(ms_moe_capacity(&c, 4), UINT32_MAX);
    c.capacity_factor = 1.25;
    assert_int_equal(ms_moe_capacity(&c, 4), 2);  /* ceil(1.25 * 4 / 4) */
    assert_int_equal(ms_moe_capacity(&c, 0), 1);  /* at least one */
    assert_int_equal(ms_moe_capacity(&c, 13), 5); /* ceil(16.25 / 4) */
}

/* The bias update flattens load on a skewed router; without it the skew stays. */
static void test_bias_flattens_load(void **state) {
    (void)state;
    ms_moe_rtrace_opts o;
    ms_moe_rtrace_opts_default(&o);
    o.cfg.hidden = 128;
    o.steps = 150;
    o.tokens_per_step = 256;
    o.gamma = 0.01f;
    o.skew = 1.0; /* strongly skewed */
    ms_moe_rtrace *on, *off;
    ms_error err = {0};
    assert_int_equal(ms_moe_router_trace(&o, &on, &err), MS_OK);
    o.gamma = 0;
    assert_int_equal(ms_moe_router_trace(&o, &off, &err), MS_OK);
    double mean = on->mean_load;
    assert_float_equal(mean, 256.0 * 8 / 256, 1e-12);
    /* step 0 is identical (bias still zero) */
    assert_int_equal(on->max_load[0], off->max_load[0]);
    double first = on->max_load[0] / mean, late_on = 0, late_off = 0;
    for (uint32_t s = 130; s < 150; s++) {
        late_on += on->max_load[s] / mean / 20;
        late_off += off->max_load[s] / mean / 20;
    }
    print_message("max/mean load: step 0 %.2f; steps 130-149 with update %.2f, without %.2f\n", first, late_on,
                  late_off);
    assert_true(first > 4);            /* skewed to begin with */
    assert_true(late_off > 0.8 * first); /* stays skewed without the update */
    assert_true(late_on < 0.5 * first);  /* flattened with it */
    /* the trace holds the choices: load recomputed from it matches */
    const ms_trace *t = on->trace;
    assert_int_equal(t->n_requests, 150);
    assert_int_equal(t->n_tokens, 150 * 256);
    assert_int_equal(t->top_k, 8);
    uint32_t load[256] = {0}, mx = 0;
    for (uint64_t tok = 0; tok < 256; tok++)
        for (uint32_t k = 0; k < 8; k++) load[ms_trace_row(t, 0, 149 * 256 + tok)[k]]++;
    for (int e = 0; e < 256; e++)
        if (load[e] > mx) mx = load[e];
    assert_int_equal(mx, on->max_load[149]);
    /* written as npz and read back: same digest */
    char dir[512];
    tu_tmp_path("rtrace", "", dir, sizeof dir);
    assert_int_equal(ms_trace_write_npz_dir(t, dir, true, NULL, NULL, &err), MS_OK);
    const char *paths[1] = {dir};
    ms_trace *back;
    ms_trace_load_opts lo = {0};
    lo.n_experts = 256;
    assert_int_equal(ms_trace_load(paths, 1, &lo, &back, &err), MS_OK);
    assert_int_equal(back->digest, t->digest);
    ms_trace_free(back);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    tu_run(cmd, NULL, 0);
    /* same options, same trace */
    ms_moe_rtrace *again;
    o.gamma = 0.01f;
    assert_int_equal(ms_moe_router_trace(&o, &again, &err), MS_OK);
    assert_int_equal(again->trace->digest, on->trace->digest);
    ms_moe_rtrace_free(again);
    ms_moe_rtrace_free(on);
    ms_moe_rtrace_free(off);
    o.steps = 0;
    assert_int_equal(ms_moe_router_trace(&o, &on, &err), MS_E_INPUT);
}

/* ms_moe_route: logits through BLAS (or loops) + selection = brute force */
static void test_route_logits(void **state) {
    (void)state;
    ms_moe_config c = softmax_cfg(8, 2);
    c.hidden = 40;
    c.inter = 8;
    ms_moe_layer *l;
    ms_error err = {0};
    assert_int_equal(ms_moe_layer_new(&c, 3, &l, &err), MS_OK);
    float x[3 * 40];
    for (int i = 0; i < 120; i++) x[i] = (float)sin(i * 0.7);
    float lg[24];
    ms_moe_router_logits(l, x, 3, lg);
    for (int t = 0; t < 3; t++)
        for (int e = 0; e < 8; e++) {
            double s = 0;
            for (int j = 0; j < 40; j++) s += (double)x[t * 40 + j] * l->router_w[e * 40 + j];
            assert_float_equal(lg[t * 8 + e], s, 1e-5);
        }
    ms_moe_layer_free(l);
}

static void test_parsers(void **state) {
    (void)state;
    uint32_t v[64], n;
    ms_error err = {0};
    assert_int_equal(ms_moe_parse_list("1..1024", v, 64, &n, &err), MS_OK);
    assert_int_equal(n, 11);
    assert_int_equal(v[10], 1024);
    assert_int_equal(ms_moe_parse_list("3,5..20,7", v, 64, &n, &err), MS_OK);
    assert_int_equal(n, 5); /* 3, 5, 10, 20, 7 */
    assert_int_equal(v[1], 5);
    assert_int_equal(v[2], 10);
    assert_int_equal(v[3], 20);
    assert_int_equal(v[4], 7);
    const char *bad[] = {"", "0", "1,,2", "a", "4..2", "1..", "..4", "-1", "99999999999", "1.5", "1,"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(ms_moe_parse_list(bad[i], v, 64, &n, &err), MS_E_INPUT);
    assert_int_equal(ms_moe_parse_list("1,2,3", v, 2, &n, &err), MS_E_INPUT);
    ms_moe_dtype d;
    assert_int_equal(ms_moe_dtype_parse("bf16", &d, &err), MS_OK);
    assert_int_equal(d, MS_MOE_BF16);
    assert_int_equal(ms_moe_dtype_parse("fp16", &d, &err), MS_E_INPUT);
    ms_moe_threading th;
    assert_int_equal(ms_moe_threading_parse("blas", &th, &err), MS_OK);
    assert_int_equal(th, MS_MOE_THREADS_BLAS);
    assert_int_equal(ms_moe_threading_parse("x", &th, &err), MS_E_INPUT);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_softmax),           cmocka_unit_test(test_group_limited),
        cmocka_unit_test(test_bias_update_by_hand), cmocka_unit_test(test_bias_flattens_load),
        cmocka_unit_test(test_route_logits),      cmocka_unit_test(test_parsers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
