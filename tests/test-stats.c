/* test-stats.c - statistics on a hand-computed trace, and a brute-force
 * cross-check of co-activation on a random one. */
#include "testutil.h"

#include <math.h>
#include <string.h>
#include "moesim/stats.h"

/* 2 requests, 1 layer, 4 experts, top-2:
 * req0: prompt rows [0,1] [0,2] [1,0], decode row [3,0]; req1: prompt rows [2,3] [0,1]. */
static ms_trace *hand_trace(void) {
    ms_trace *t;
    ms_error err = {0};
    assert_int_equal(ms_trace_new(1, 4, 2, 0, 2, 6, &t, &err), MS_OK);
    static const uint16_t ids[] = {0, 1, 0, 2, 1, 0, 3, 0, 2, 3, 0, 1};
    memcpy(t->experts, ids, sizeof ids);
    t->tok_offset[0] = 0;
    t->tok_offset[1] = 4;
    t->tok_offset[2] = 6;
    t->n_prompt[0] = 3;
    t->n_output[0] = 1;
    t->n_prompt[1] = 2;
    assert_int_equal(ms_trace_finish(t, &err), MS_OK);
    return t;
}

static void test_all_phase(void **state) {
    (void)state;
    ms_trace *t = hand_trace();
    ms_stats_opts o;
    ms_stats_opts_default(&o);
    o.window = 2;
    ms_stats *s;
    ms_error err = {0};
    assert_int_equal(ms_stats_compute(t, &o, &s, &err), MS_OK);
    const ms_layer_stats *l = &s->layers[0];
    assert_int_equal(s->tokens, 6);
    assert_int_equal(l->expert_load[0], 5);
    assert_int_equal(l->expert_load[1], 3);
    assert_int_equal(l->expert_load[2], 2);
    assert_int_equal(l->expert_load[3], 2);
    assert_float_equal(l->max_mean_ratio, 5.0 / 3, 1e-12);
    assert_float_equal(l->min_mean_ratio, 2.0 / 3, 1e-12);
    assert_float_equal(l->cv, sqrt(1.5) / 3, 1e-12);
    assert_float_equal(l->hot10_share, 5.0 / 12, 1e-12);
    assert_int_equal(l->never_chosen, 0);
    assert_int_equal(l->hottest, 0);
    /* windows of 2 tokens: e0 loads 2,2,1 */
    assert_int_equal(l->n_windows, 3);
    assert_float_equal(l->win_mean[0], 5.0 / 3, 1e-12);
    assert_float_equal(l->win_std[0], sqrt(6.0 / 27), 1e-12);
    assert_float_equal(l->win_p95[0], 2, 1e-12);
    /* e3 loads 0,1,1 */
    assert_float_equal(l->win_mean[3], 2.0 / 3, 1e-12);
    /* co-activation: (0,1) x3, (0,2), (0,3), (2,3) once */
    assert_int_equal(l->coact[0 * 4 + 1], 3);
    assert_int_equal(l->coact[1 * 4 + 0], 3);
    assert_int_equal(l->coact[2 * 4 + 3], 1);
    assert_int_equal(l->coact[1 * 4 + 2], 0);
    assert_int_equal(l->coact[0], 5); /* diagonal = load */
    assert_int_equal(l->n_top_pairs, 4);
    assert_int_equal(l->top_pairs[0].a, 0);
    assert_int_equal(l->top_pairs[0].b, 1);
    assert_int_equal(l->top_pairs[0].count, 3);
    assert_int_equal(l->top_pairs[1].b, 2); /* ties broken by (a, b) */
    assert_int_equal(l->top_pairs[3].a, 2);
    ms_loads *loads;
    assert_int_equal(ms_stats_to_loads(s, &loads, &err), MS_OK);
    assert_true(loads->w[0] == 5 && loads->w[3] == 2);
    ms_loads_free(loads);
    ms_stats_free(s);
    ms_trace_free(t);
}

static void test_phases(void **state) {
    (void)state;
    ms_trace *t = hand_trace();
    ms_stats_opts o;
    ms_stats_opts_default(&o);
    ms_stats *s;
    ms_error err = {0};
    o.phase = MS_PHASE_PREFILL;
    assert_int_equal(ms_stats_compute(t, &o, &s, &err), MS_OK);
    assert_int_equal(s->tokens, 5);
    uint64_t want_p[4] = {4, 3, 2, 1};
    for (int e = 0; e < 4; e++) assert_int_equal(s->layers[0].expert_load[e], want_p[e]);
    assert_int_equal(s->layers[0].n_windows, 1); /* one partial window */
    ms_stats_free(s);
    o.phase = MS_PHASE_DECODE;
    assert_int_equal(ms_stats_compute(t, &o, &s, &err), MS_OK);
    assert_int_equal(s->tokens, 1);
    uint64_t want_d[4] = {1, 0, 0, 1};
    for (int e = 0; e < 4; e++) assert_int_equal(s->layers[0].expert_load[e], want_d[e]);
    assert_int_equal(s->layers[0].never_chosen, 2);
    assert_float_equal(s->layers[0].min_mean_ratio, 0, 0);
    ms_stats_free(s);
    t->n_prompt[0] = 4; /* now prefill only */
    assert_int_equal(ms_stats_compute(t, &o, &s, &err), MS_E_INPUT);
    assert_non_null(strstr(err.msg, "decode"));
    ms_trace_free(t);
}

static void test_random_coact_brute_force(void **state) {
    (void)state;
    ms_trace *t;
    ms_error err = {0};
    const uint32_t L = 3, E = 9, K = 3;
    const uint64_t N = 500;
    assert_int_equal(ms_trace_new(L, E, K, 0, 5, N, &t, &err), MS_OK);
    ms_rng rng;
    ms_rng_seed(&rng, 7);
    for (uint64_t i = 0; i < L * N * K; i++) t->experts[i] = (uint16_t)ms_rng_below(&rng, E);
    for (int r = 0; r <= 5; r++) t->tok_offset[r] = (uint64_t)r * 100;
    for (int r = 0; r < 5; r++) t->n_prompt[r] = 60;
    assert_int_equal(ms_trace_finish(t, &err), MS_OK);
    ms_stats_opts o;
    ms_stats_opts_default(&o);
    o.window = 64;
    ms_stats *s;
    assert_int_equal(ms_stats_compute(t, &o, &s, &err), MS_OK);
    for (uint32_t l = 0; l < L; l++) {
        uint64_t load[9] = {0}, co[81] = {0}, total = 0;
        for (uint64_t tok = 0; tok < N; tok++) {
            const uint16_t *ids = ms_trace_row(t, l, tok);
            for (uint32_t a = 0; a < K; a++) {
                load[ids[a]]++;
                for (uint32_t b = 0; b < K; b++)
                    if (a != b && ids[a] != ids[b]) co[ids[a] * E + ids[b]]++;
            }
        }
        for (uint32_t e = 0; e < E; e++) {
            assert_int_equal(s->layers[l].expert_load[e], load[e]);
            total += load[e];
            uint64_t wsum = 0;
            for (uint32_t w = 0; w < s->layers[l].n_windows; w++) wsum += s->layers[l].win_load[w * E + e];
            assert_float_equal(s->layers[l].win_mean[e], (double)wsum / s->layers[l].n_windows, 1e-9);
            for (uint32_t f = 0; f < E; f++)
                if (e != f) assert_int_equal(s->layers[l].coact[e * E + f], co[e * E + f]);
        }
        assert_int_equal(total, N * K); /* conservation */
        assert_int_equal(s->layers[l].n_windows, N / 64);
    }
    ms_stats_free(s);
    ms_trace_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_phase),
        cmocka_unit_test(test_phases),
        cmocka_unit_test(test_random_coact_brute_force),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
