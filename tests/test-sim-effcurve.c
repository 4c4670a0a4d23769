/* test-sim-effcurve.c - the roofline model with a measured efficiency curve
 * (the "efficiency_curve" of `moesim calibrate`): the preset reader, the
 * log-linear interpolation, and expert compute per instance computed by hand
 * for a 2-point curve (clamped ends, a point between, split routing's
 * fractional counts, two micro-batches). */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moesim/place.h"
#include "moesim/sim.h"
#include "moesim/trace.h"

static void near(double got, double want, double rel) {
    double tol = rel * (fabs(want) > 1 ? fabs(want) : 1);
    if (fabs(got - want) > tol) fail_msg("got %.17g, want %.17g", got, want);
}

static ms_trace *mk_trace(uint32_t experts, uint64_t nreq, const uint32_t *ntok, const uint16_t *ids) {
    uint64_t n = 0;
    for (uint64_t r = 0; r < nreq; r++) n += ntok[r];
    ms_trace *t = NULL;
    ms_error err = {0};
    assert_int_equal(ms_trace_new(1, experts, 1, 0, nreq, n, &t, &err), MS_OK);
    for (uint64_t r = 0; r < nreq; r++) {
        t->tok_offset[r + 1] = t->tok_offset[r] + ntok[r];
        t->n_prompt[r] = ntok[r];
    }
    memcpy(t->experts, ids, n * sizeof(uint16_t));
    assert_int_equal(ms_trace_finish(t, &err), MS_OK);
    return t;
}

static ms_placement *mk_place(uint32_t rows, uint32_t cols, uint32_t spd, uint32_t routed, const int32_t *phy2log) {
    ms_cluster c = {rows, cols, spd};
    ms_placement *p = NULL;
    ms_error err = {0};
    assert_int_equal(ms_placement_new(1, &c, routed, false, &p, &err), MS_OK);
    memcpy(p->phy2log, phy2log, p->n_phys * sizeof(int32_t));
    assert_int_equal(ms_placement_index(p, &err), MS_OK);
    return p;
}

/* 300 FLOP/us at BF16 (peak 3e-4 TFLOPS, mfu 1), 1e6 B/us HBM, and the
 * curve: 1 token per expert -> 0.2 of peak, 4 tokens -> 0.6. */
static void hw_curve(ms_hw_preset *hw) {
    memset(hw, 0, sizeof *hw);
    strcpy(hw->name, "curve");
    hw->peak_tflops_bf16 = 3e-4;
    hw->peak_tflops_fp8 = 3e-4;
    hw->mfu = 1;
    hw->hbm_tb_s = 1;
    hw->hbm_util = 1;
    hw->memory_gb = 1;
    hw->nvlink_gb_s = 1;
    hw->nvlink_latency_us = 2;
    hw->nvlink_efficiency = 1;
    hw->nic_gb_s = 1;
    hw->net_latency_us = 5;
    hw->net_efficiency = 1;
    hw->eff_n = 2;
    hw->eff_tokens[0] = 1;
    hw->eff_tokens[1] = 4;
    hw->eff_value[0] = 0.2;
    hw->eff_value[1] = 0.6;
}

/* h = 10, i = 5: 2*3*10*5 = 300 expert FLOPs per token (1 us at 300 FLOP/us
 * and efficiency 1), 300 weight bytes; 100 dense parameters: 200 FLOPs per
 * token. */
static void model_small(ms_model_preset *m) {
    memset(m, 0, sizeof *m);
    strcpy(m->name, "tiny");
    m->hidden = 10;
    m->moe_intermediate = 5;
    m->routed_experts = 2;
    m->top_k = 1;
    m->moe_layers = 1;
    m->expert_weight_bytes = 2;
    m->dense_params_per_layer = 100;
    m->dispatch_bytes = 14;
    m->combine_bytes = 20;
}

/* eff(t) = 0.2 + 0.4 * log(t) / log(4) between 1 and 4 */
static double eff_hand(double t) {
    if (t <= 1) return 0.2;
    if (t >= 4) return 0.6;
    return 0.2 + 0.4 * log(t) / log(4.0);
}

static void test_interpolation(void **state) {
    (void)state;
    ms_hw_preset hw;
    hw_curve(&hw);
    near(ms_hw_efficiency(&hw, 0), 0.2, 1e-15);
    near(ms_hw_efficiency(&hw, 0.5), 0.2, 1e-15);
    near(ms_hw_efficiency(&hw, 1), 0.2, 1e-15);
    near(ms_hw_efficiency(&hw, 2), 0.4, 1e-15); /* log-midpoint of 1 and 4 */
    near(ms_hw_efficiency(&hw, 3), 0.2 + 0.4 * 0.79248125036057815, 1e-15);
    near(ms_hw_efficiency(&hw, 4), 0.6, 1e-15);
    near(ms_hw_efficiency(&hw, 1000), 0.6, 1e-15);
    assert_true(ms_hw_efficiency(&hw, NAN) == 0.2);
    /* more points: each segment on its own */
    hw.eff_n = 3;
    hw.eff_tokens[2] = 64;
    hw.eff_value[2] = 0.9;
    near(ms_hw_efficiency(&hw, 2), 0.4, 1e-15);
    near(ms_hw_efficiency(&hw, 16), 0.75, 1e-15); /* log-midpoint of 4 and 64 */
    near(ms_hw_efficiency(&hw, 64), 0.9, 1e-15);
    /* one point: flat; none: mfu */
    hw.eff_n = 1;
    near(ms_hw_efficiency(&hw, 100), 0.2, 1e-15);
    hw.eff_n = 0;
    hw.mfu = 0.55;
    near(ms_hw_efficiency(&hw, 100), 0.55, 1e-15);
}

typedef struct cap {
    double comp[2], dense[2];
} cap;

static void on_step(void *ctx, const ms_sim_step *st) {
    cap *c = ctx;
    for (uint32_t d = 0; d < 2; d++) {
        c->comp[d] = st->compute_us[d];
        c->dense[d] = st->dense_us[d];
    }
}

static ms_sim_result *run(const ms_trace *t, const ms_placement *p, const ms_sim_opts *o, cap *cp) {
    ms_batch_opts bo;
    ms_batch_opts_default(&bo);
    ms_batch_plan *plan = NULL;
    ms_error err = {0};
    assert_int_equal(ms_batch_plan_build(t, &bo, ms_cluster_devices(&p->cluster), &plan, &err), MS_OK);
    ms_sim_hooks h = {on_step, cp};
    ms_sim_result *r = NULL;
    ms_status st = ms_sim_run(t, plan, p, o, cp ? &h : NULL, &r, &err);
    if (st != MS_OK) fail_msg("%s", err.msg);
    ms_batch_plan_free(plan);
    return r;
}

static void opts_roof(ms_sim_opts *o, const ms_hw_preset *hw, const ms_model_preset *m, ms_route route) {
    ms_sim_opts_default(o);
    o->cost_model = MS_COST_ROOFLINE;
    o->route = route;
    o->origin = MS_ORIGIN_DP;
    o->hw = hw;
    o->model = m;
    o->threads = 1;
}

/* 1 x 2 grid, one slot each: e0 on device 0, e1 on device 1. Requests (one
 * batch each, DP round-robin: request r starts on device r mod 2):
 *  r0: 5 tokens, 4 on e0, 1 on e1: device 0 computes 4 assignments in
 *      4 / 0.6 us, device 1 one in 1 / 0.2 = 5 us; the flat mfu 1 gives 4;
 *  r1: 16 tokens on e1: past the curve's end, 16 / 0.6;
 *  r2: 2 tokens on e0: 2 / 0.4 = 5 (between the points). */
static void test_hand_compute(void **state) {
    (void)state;
    ms_hw_preset hw;
    ms_model_preset m;
    hw_curve(&hw);
    model_small(&m);
    uint32_t nt[3] = {5, 16, 2};
    uint16_t ids[23] = {0, 0, 1, 0, 0, /* r0 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* r1 */ 0, 0};
    ms_trace *t = mk_trace(2, 3, nt, ids);
    int32_t ph[2] = {0, 1};
    ms_placement *p = mk_place(1, 2, 1, 2, ph);
    ms_sim_opts o;
    opts_roof(&o, &hw, &m, MS_ROUTE_LEAST_LOADED);
    cap cp = {{0, 0}, {0, 0}};
    ms_sim_result *r = run(t, p, &o, &cp);
    assert_int_equal(r->n_records, 3);
    /* expert bytes 300 + 40 n are well below a microsecond: compute-bound */
    near(r->records[0].compute_us, 4 / 0.6, 1e-12);
    near(r->records[1].compute_us, 16 / 0.6, 1e-12);
    near(r->records[2].compute_us, 5, 1e-12);
    /* the dense work keeps the flat mfu: 200 FLOPs per token at 300 FLOP/us */
    near(r->records[0].dense_us, 5 * 200.0 / 300, 1e-12);
    near(r->records[1].dense_us, 16 * 200.0 / 300, 1e-12);
    /* the last record's devices (hook, one thread, batches in order) */
    near(cp.comp[0], 5, 1e-12);
    near(cp.comp[1], 0, 0);
    ms_sim_result_free(r);
    /* per device of r0 */
    uint32_t nt0[1] = {5};
    ms_trace *t0 = mk_trace(2, 1, nt0, ids);
    r = run(t0, p, &o, &cp);
    near(cp.comp[0], 4 / 0.6, 1e-12);
    near(cp.comp[1], 1 / 0.2, 1e-12);
    ms_sim_result_free(r);

    /* without the curve: n assignments at mfu 1 take n us */
    hw.eff_n = 0;
    r = run(t, p, &o, NULL);
    near(r->records[0].compute_us, 4, 1e-12);
    near(r->records[1].compute_us, 16, 1e-12);
    near(r->records[2].compute_us, 2, 1e-12);
    ms_sim_result_free(r);
    hw.eff_n = 2;

    /* two micro-batches: the curve applies to each half's count. 4 tokens on
     * e0: one pass 4 / 0.6; halves of 2: 2 x 2 / 0.4 = 10 */
    uint32_t nt4[1] = {4};
    uint16_t id4[4] = {0, 0, 0, 0};
    ms_trace *t4 = mk_trace(2, 1, nt4, id4);
    r = run(t4, p, &o, NULL);
    near(r->records[0].compute_us, 4 / 0.6, 1e-12);
    ms_sim_result_free(r);
    o.overlap = MS_OVERLAP_TWO_MICRO_BATCH;
    r = run(t4, p, &o, NULL);
    near(r->records[0].compute_us, 10, 1e-12);
    ms_sim_result_free(r);
    ms_trace_free(t4);
    ms_trace_free(t0);
    ms_trace_free(t);
    ms_placement_free(p);
}

/* split routing: e0 has a replica on each device; 3 tokens on e0 put 1.5 on
 * each instance: 1.5 / eff(1.5) on each device. 5 tokens: 2.5 each. */
static void test_split_fractional(void **state) {
    (void)state;
    ms_hw_preset hw;
    ms_model_preset m;
    hw_curve(&hw);
    model_small(&m);
    uint32_t nt[2] = {3, 5};
    uint16_t ids[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    ms_trace *t = mk_trace(2, 2, nt, ids);
    int32_t ph[4] = {0, 1, 0, 1};
    ms_placement *p = mk_place(1, 2, 2, 2, ph);
    ms_sim_opts o;
    opts_roof(&o, &hw, &m, MS_ROUTE_SPLIT);
    cap cp = {{0, 0}, {0, 0}};
    ms_sim_result *r = run(t, p, &o, &cp);
    near(r->records[0].compute_us, 1.5 / eff_hand(1.5), 1e-12);
    near(r->records[1].compute_us, 2.5 / eff_hand(2.5), 1e-12);
    near(cp.comp[0], 2.5 / eff_hand(2.5), 1e-12);
    near(cp.comp[1], 2.5 / eff_hand(2.5), 1e-12);
    ms_sim_result_free(r);
    ms_trace_free(t);
    ms_placement_free(p);
}

static const char *FIGS =
    "\"peak_tflops_bf16\": {\"value\": 0.0003, \"source\": \"s\"}, \"peak_tflops_fp8\": {\"value\": 0.0003, "
    "\"source\": \"s\"}, \"mfu\": {\"value\": 1, \"source\": \"s\"}, \"hbm_tb_s\": {\"value\": 1, \"source\": \"s\"}, "
    "\"hbm_util\": {\"value\": 1, \"source\": \"s\"}, \"memory_gb\": {\"value\": 1, \"source\": \"s\"}, "
    "\"nvlink_gb_s\": {\"value\": 1, \"source\": \"s\"}, \"nvlink_latency_us\": {\"value\": 2, \"source\": \"s\"}, "
    "\"nvlink_efficiency\": {\"value\": 1, \"source\": \"s\"}, \"nic_gb_s\": {\"value\": 1, \"source\": \"s\"}, "
    "\"net_latency_us\": {\"value\": 5, \"source\": \"s\"}, \"net_efficiency\": {\"value\": 1, \"source\": \"s\"}";

static ms_status load_with(const char *curve, ms_hw_preset *hw, ms_error *err) {
    char path[512], text[4096];
    tu_tmp_path("effcurve", ".json", path, sizeof path);
    snprintf(text, sizeof text, "{\"name\": \"c\", %s%s%s}", FIGS, curve ? ", \"efficiency_curve\": " : "",
             curve ? curve : "");
    tu_write_file(path, text, strlen(text));
    ms_status st = ms_hw_preset_load(path, hw, err);
    remove(path);
    return st;
}

static void test_preset_file(void **state) {
    (void)state;
    ms_hw_preset hw;
    ms_error err = {0};
    assert_int_equal(load_with(NULL, &hw, &err), MS_OK);
    assert_int_equal(hw.eff_n, 0);
    /* calibrate's layout: extra keys are fine */
    if (load_with("{\"source\": \"measured\", \"shape\": \"x\", \"tokens_per_expert\": [1, 4], \"tflops\": [1, 3], "
                  "\"efficiency\": [0.2, 0.6], \"forward_ms\": [1, 1]}",
                  &hw, &err) != MS_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(hw.eff_n, 2);
    assert_true(hw.eff_tokens[0] == 1 && hw.eff_tokens[1] == 4 && hw.eff_value[0] == 0.2 && hw.eff_value[1] == 0.6);
    near(ms_hw_efficiency(&hw, 2), 0.4, 1e-15);
    /* bad curves: one-line errors naming the file and the field */
    static const char *const bad[] = {
        "[1, 2]",
        "{\"tokens_per_expert\": [1, 4], \"efficiency\": [0.2, 0.6]}",               /* no source */
        "{\"source\": \"s\", \"tokens_per_expert\": [1, 4]}",                          /* no efficiency */
        "{\"source\": \"s\", \"tokens_per_expert\": [1, 4], \"efficiency\": [0.2]}",   /* lengths */
        "{\"source\": \"s\", \"tokens_per_expert\": [], \"efficiency\": []}",          /* empty */
        "{\"source\": \"s\", \"tokens_per_expert\": [4, 1], \"efficiency\": [0.2, 0.6]}", /* decreasing */
        "{\"source\": \"s\", \"tokens_per_expert\": [1, 1], \"efficiency\": [0.2, 0.6]}", /* repeated */
        "{\"source\": \"s\", \"tokens_per_expert\": [0, 1], \"efficiency\": [0.2, 0.6]}", /* zero tokens */
        "{\"source\": \"s\", \"tokens_per_expert\": [1, 4], \"efficiency\": [0.2, 1.5]}", /* above 1 */
        "{\"source\": \"s\", \"tokens_per_expert\": [1, 4], \"efficiency\": [0, 0.6]}",   /* zero */
        "{\"source\": \"s\", \"tokens_per_expert\": [1, \"4\"], \"efficiency\": [0.2, 0.6]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err.msg[0] = '\0';
        if (load_with(bad[i], &hw, &err) != MS_E_INPUT) fail_msg("accepted %s", bad[i]);
        assert_non_null(strstr(err.msg, "efficiency_curve"));
        assert_null(strchr(err.msg, '\n'));
    }
    /* 65 points: too many */
    char big[4096] = "{\"source\": \"s\", \"tokens_per_expert\": [";
    for (int i = 1; i <= 65; i++) snprintf(big + strlen(big), sizeof big - strlen(big), "%s%d", i > 1 ? "," : "", i);
    strcat(big, "], \"efficiency\": [");
    for (int i = 1; i <= 65; i++) snprintf(big + strlen(big), sizeof big - strlen(big), "%s0.5", i > 1 ? "," : "");
    strcat(big, "]}");
    assert_int_equal(load_with(big, &hw, &err), MS_E_INPUT);
}

/* The simulator refuses a curve set by hand out of range. */
static void test_bad_curve_in_struct(void **state) {
    (void)state;
    ms_hw_preset hw;
    ms_model_preset m;
    hw_curve(&hw);
    model_small(&m);
    uint32_t nt[1] = {2};
    uint16_t ids[2] = {0, 1};
    ms_trace *t = mk_trace(2, 1, nt, ids);
    int32_t ph[2] = {0, 1};
    ms_placement *p = mk_place(1, 2, 1, 2, ph);
    ms_batch_opts bo;
    ms_batch_opts_default(&bo);
    ms_batch_plan *plan = NULL;
    ms_error err = {0};
    assert_int_equal(ms_batch_plan_build(t, &bo, 2, &plan, &err), MS_OK);
    ms_sim_opts o;
    opts_roof(&o, &hw, &m, MS_ROUTE_LEAST_LOADED);
    ms_sim_result *r = NULL;
    hw.eff_value[1] = 1.5;
    assert_int_equal(ms_sim_run(t, plan, p, &o, NULL, &r, &err), MS_E_INPUT);
    hw.eff_value[1] = 0.6;
    hw.eff_tokens[1] = 1;
    assert_int_equal(ms_sim_run(t, plan, p, &o, NULL, &r, &err), MS_E_INPUT);
    hw.eff_tokens[1] = 4;
    hw.eff_n = MS_HW_EFF_MAX + 1;
    assert_int_equal(ms_sim_run(t, plan, p, &o, NULL, &r, &err), MS_E_INPUT);
    hw.eff_n = 2;
    assert_int_equal(ms_sim_run(t, plan, p, &o, NULL, &r, &err), MS_OK);
    ms_sim_result_free(r);
    ms_batch_plan_free(plan);
    ms_trace_free(t);
    ms_placement_free(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_interpolation),    cmocka_unit_test(test_hand_compute),
        cmocka_unit_test(test_split_fractional), cmocka_unit_test(test_preset_file),
        cmocka_unit_test(test_bad_curve_in_struct),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
