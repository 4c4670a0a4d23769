/* test-sim-roofline.c - the roofline cost model: hand-computed expert
 * compute, dense work, dispatch and combine per link class, bytes, the
 * two-micro-batch schedule, the per-device hook, split routing, and the
 * least-loaded fast path against the generic loop. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moesim/place.h"
#include "moesim/sim.h"
#include "moesim/trace.h"

static ms_trace *mk_trace(uint32_t layers, uint32_t experts, uint32_t k, uint64_t nreq, const uint32_t *ntok,
                          const uint16_t *ids) {
    uint64_t n = 0;
    for (uint64_t r = 0; r < nreq; r++) n += ntok[r];
    ms_trace *t = NULL;
    ms_error err = {0};
    assert_int_equal(ms_trace_new(layers, experts, k, 0, nreq, n, &t, &err), MS_OK);
    for (uint64_t r = 0; r < nreq; r++) {
        t->tok_offset[r + 1] = t->tok_offset[r] + ntok[r];
        t->n_prompt[r] = ntok[r];
    }
    memcpy(t->experts, ids, (size_t)layers * n * k * sizeof(uint16_t));
    assert_int_equal(ms_trace_finish(t, &err), MS_OK);
    return t;
}

static ms_placement *mk_place(uint32_t rows, uint32_t cols, uint32_t spd, uint32_t routed, bool shared,
                              const int32_t *phy2log) {
    ms_cluster c = {rows, cols, spd};
    ms_placement *p = NULL;
    ms_error err = {0};
    assert_int_equal(ms_placement_new(1, &c, routed, shared, &p, &err), MS_OK);
    memcpy(p->phy2log, phy2log, p->n_phys * sizeof(int32_t));
    assert_int_equal(ms_placement_index(p, &err), MS_OK);
    return p;
}

static void near(double got, double want, double rel) {
    double tol = rel * (fabs(want) > 1 ? fabs(want) : 1);
    if (fabs(got - want) > tol) fail_msg("got %.17g, want %.17g", got, want);
}

/* Round figures: 1e6 FLOP/us at BF16, 1e6 B/us HBM, 1000 B/us on both link
 * classes, latencies 2 (NVLink) and 5 (network) us. */
static void hw_round(ms_hw_preset *hw) {
    memset(hw, 0, sizeof *hw);
    strcpy(hw->name, "test");
    hw->peak_tflops_bf16 = 1;
    hw->peak_tflops_fp8 = 2;
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
}

/* h = 10, i = 5, BF16 weights, 100 dense parameters, no shared expert:
 * dispatch 10 + 4 * ceil(10/128) = 14 bytes, combine 20 bytes. */
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

typedef struct cap_ctx {
    double load[4], busy[4], idle[4], flops[4], hbm[4], send_inter[4], recv_inter[4], send_intra[4];
    int calls;
} cap_ctx;

static void capture(void *ctx, const ms_sim_step *st) {
    cap_ctx *c = ctx;
    c->calls++;
    for (uint32_t d = 0; d < st->n_devices && d < 4; d++) {
        c->load[d] = st->load[d];
        c->busy[d] = st->busy_us[d];
        c->idle[d] = st->idle_us[d];
        c->flops[d] = st->flops[d];
        c->hbm[d] = st->hbm_bytes[d];
        c->send_inter[d] = st->send_inter_bytes[d];
        c->recv_inter[d] = st->recv_inter_bytes[d];
        c->send_intra[d] = st->send_intra_bytes[d];
    }
}

static ms_sim_result *run_hooked(const ms_trace *t, const ms_placement *p, const ms_sim_opts *o,
                                 const ms_batch_opts *bo, cap_ctx *cap) {
    ms_batch_plan *plan = NULL;
    ms_error err = {0};
    assert_int_equal(ms_batch_plan_build(t, bo, ms_cluster_devices(&p->cluster), &plan, &err), MS_OK);
    ms_sim_hooks h = {capture, cap};
    ms_sim_result *r = NULL;
    ms_status st = ms_sim_run(t, plan, p, o, cap ? &h : NULL, &r, &err);
    if (st != MS_OK) fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(st, MS_OK);
    ms_batch_plan_free(plan);
    return r;
}

/* 2 rows x 1 column, one slot each: e0 on device 0, e1 on device 1. Three
 * tokens of one request (on device 0) all choose e1: across rows. */
static void test_hand_roofline(void **state) {
    (void)state;
    ms_hw_preset hw;
    ms_model_preset m;
    hw_round(&hw);
    model_small(&m);
    uint32_t nt[1] = {3};
    uint16_t ids[3] = {1, 1, 1};
    ms_trace *t = mk_trace(1, 2, 1, 1, nt, ids);
    int32_t ph[2] = {0, 1};
    ms_placement *p = mk_place(2, 1, 1, 2, false, ph);
    ms_sim_opts o;
    ms_sim_opts_default(&o);
    o.cost_model = MS_COST_ROOFLINE;
    o.route = MS_ROUTE_LEAST_LOADED;
    o.origin = MS_ORIGIN_DP;
    o.hw = &hw;
    o.model = &m;
    ms_batch_opts bo;
    ms_batch_opts_default(&bo);
    cap_ctx cap = {0};
    ms_sim_result *r = run_hooked(t, p, &o, &bo, &cap);
    const ms_sim_record *x = &r->records[0];
    /* experts on device 1: FLOPs 3 * 2*3*10*5 = 900 -> 0.0009 us; bytes
     * 3*10*5*2 + 3 * 4*10 = 420 -> 0.00042 us: compute-bound, 0.0009 */
    near(x->compute_us, 0.0009, 1e-12);
    /* dense on device 0: 3 * 2 * 100 = 600 FLOPs -> 0.0006; 200 bytes -> 0.0002 */
    near(x->dense_us, 0.0006, 1e-12);
    /* network: 3 messages each way: 5 + 3*14/1000 and 5 + 3*20/1000 */
    near(x->dispatch_us, 5.042, 1e-12);
    near(x->combine_us, 5.06, 1e-12);
    near(x->layer_us, 0.0006 + 5.042 + 0.0009 + 5.06, 1e-12);
    near(x->inter_bytes, 3 * (14 + 20), 1e-12);
    near(x->intra_bytes, 0, 0);
    near(x->imbalance, 2, 1e-12);
    /* per device */
    assert_int_equal(cap.calls, 1);
    near(cap.load[0], 0, 0);
    near(cap.load[1], 3, 0);
    near(cap.flops[0], 600, 1e-12);
    near(cap.flops[1], 900, 1e-12);
    near(cap.hbm[0], 200, 1e-12);
    near(cap.hbm[1], 420, 1e-12);
    near(cap.send_inter[0], 3 * 14, 1e-12); /* dispatch out */
    near(cap.send_inter[1], 3 * 20, 1e-12); /* combine back */
    near(cap.recv_inter[1], 3 * 14, 1e-12);
    near(cap.busy[0], 0.0006, 1e-12);
    near(cap.idle[1], x->layer_us - 0.0009, 1e-12);
    near(r->summary.gpu_utilisation, (0.0006 + 0.0009) / (2 * x->layer_us), 1e-12);
    near(r->summary.tokens_per_second, 3 / (x->layer_us * 1e-6), 1e-12);
    ms_sim_result_free(r);

    /* FP8 weights: 1 byte per weight and the FP8 peak (2e6 FLOP/us) */
    m.expert_weight_bytes = 1;
    r = run_hooked(t, p, &o, &bo, NULL);
    near(r->records[0].compute_us, 0.00045, 1e-12); /* 900 / 2e6; bytes 150 + 120 -> 0.00027 */
    ms_sim_result_free(r);
    m.expert_weight_bytes = 2;

    /* memory-bound: a big expert read for one token: i = 5000 -> FLOPs
     * 300000 (0.3 us) vs bytes 300000 + 40 (0.30004 us) */
    m.moe_intermediate = 5000;
    uint32_t nt1[1] = {1};
    uint16_t id1[1] = {1};
    ms_trace *t1 = mk_trace(1, 2, 1, 1, nt1, id1);
    r = run_hooked(t1, p, &o, &bo, NULL);
    near(r->records[0].compute_us, 0.30004, 1e-12);
    ms_sim_result_free(r);
    ms_trace_free(t1);
    m.moe_intermediate = 5;

    /* within a row: the same on a 1 x 2 grid uses NVLink (latency 2) */
    ms_placement *p2 = mk_place(1, 2, 1, 2, false, ph);
    r = run_hooked(t, p2, &o, &bo, NULL);
    near(r->records[0].dispatch_us, 2.042, 1e-12);
    near(r->records[0].intra_bytes, 102, 1e-12);
    near(r->records[0].inter_bytes, 0, 0);
    ms_sim_result_free(r);
    ms_placement_free(p2);
    ms_trace_free(t);
    ms_placement_free(p);
}

/* A token whose experts all sit on its own device sends nothing; two
 * experts on one device cost one message (as DeepEP sends). */
static void test_messages_per_device(void **state) {
    (void)state;
    ms_hw_preset hw;
    ms_model_preset m;
    hw_round(&hw);
    model_small(&m);
    /* 1 row x 2 cols x 2 slots: e0, e1 on device 0; e2, e3 on device 1 */
    int32_t ph[4] = {0, 1, 2, 3};
    ms_placement *p = mk_place(1, 2, 2, 4, false, ph);
    uint32_t nt[1] = {2};
    uint16_t ids[4] = {0, 1, 2, 3}; /* token 0 -> device 0 only; token 1 -> device 1 twice */
    ms_trace *t = mk_trace(1, 4, 2, 1, nt, ids);
    ms_sim_opts o;
    ms_sim_opts_default(&o);
    o.cost_model = MS_COST_ROOFLINE;
    o.route = MS_ROUTE_ROUND_ROBIN;
    o.hw = &hw;
    o.model = &m;
    ms_batch_opts bo;
    ms_batch_opts_default(&bo);
    ms_sim_result *r = run_hooked(t, p, &o, &bo, NULL);
    near(r->records[0].intra_bytes, 1 * (14 + 20), 1e-12);
    near(r->records[0].dispatch_us, 2 + 14 / 1000.0, 1e-12);
    ms_sim_result_free(r);
    ms_trace_free(t);
    ms_placement_free(p);
}

static void test_two_micro_batches(void **state) {
    (void)state;
    ms_hw_preset hw;
    ms_model_preset m;
    hw_round(&hw);
    model_small(&m);
    uint32_t nt[1] = {4};
    uint16_t ids[4] = {1, 1, 1, 1};
    ms_trace *t = mk_trace(1, 2, 1, 1, nt, ids);
    int32_t ph[2] = {0, 1};
    ms_placement *p = mk_place(2, 1, 1, 2, false, ph);
    ms_sim_opts o;
    ms_sim_opts_default(&o);
    o.cost_model = MS_COST_ROOFLINE;
    o.route = MS_ROUTE_LEAST_LOADED;
    o.hw = &hw;
    o.model = &m;
    o.overlap = MS_OVERLAP_TWO_MICRO_BATCH;
    ms_batch_opts bo;
    ms_batch_opts_default(&bo);
    ms_sim_result *r = run_hooked(t, p, &o, &bo, NULL);
    /* each half of 2 tokens: dense 400 FLOPs -> 0.0004; dispatch 5 + 0.028;
     * experts 600 FLOPs -> 0.0006 (bytes 380 -> 0.00038); combine 5 + 0.04.
     * Streams: dense a [0, .0004], dense b [.0004, .0008]; dispatch a
     * [.0004, 5.0284], dispatch b [5.0284, 10.0564]; experts a [5.0284,
     * 5.029], experts b [10.0564, 10.057]; combine a [10.0564, 15.0964],
     * combine b [15.0964, 20.1364]. */
    const ms_sim_record *x = &r->records[0];
    near(x->layer_us, 20.1364, 1e-12);
    near(x->dispatch_us, 2 * 5.028, 1e-12);
    near(x->compute_us, 2 * 0.0006, 1e-12);
    near(x->dense_us, 2 * 0.0004, 1e-12);
    assert_int_equal(x->assignments, 4);
    ms_sim_result_free(r);
    /* without overlap: one batch of 4 */
    o.overlap = MS_OVERLAP_NONE;
    r = run_hooked(t, p, &o, &bo, NULL);
    near(r->records[0].layer_us, 0.0008 + 5.056 + 0.0012 + 5.08, 1e-12);
    ms_sim_result_free(r);
    ms_trace_free(t);
    ms_placement_free(p);
}

/* split: 1/replicas of every token on every replica. */
static void test_split(void **state) {
    (void)state;
    ms_hw_preset hw;
    ms_model_preset m;
    hw_round(&hw);
    model_small(&m);
    /* 1 x 4, one slot: e0 on devices 0, 1, 2; e1 on device 3 */
    int32_t ph[4] = {0, 0, 0, 1};
    ms_placement *p = mk_place(1, 4, 1, 2, false, ph);
    uint32_t nt[1] = {3};
    uint16_t ids[3] = {0, 0, 1};
    ms_trace *t = mk_trace(1, 2, 1, 1, nt, ids);
    ms_sim_opts o;
    ms_sim_opts_default(&o);
    o.cost_model = MS_COST_ROOFLINE;
    o.route = MS_ROUTE_SPLIT;
    o.hw = &hw;
    o.model = &m;
    ms_batch_opts bo;
    ms_batch_opts_default(&bo);
    cap_ctx cap = {0};
    ms_sim_result *r = run_hooked(t, p, &o, &bo, &cap);
    /* loads: devices 0..2 get 2/3 each, device 3 gets 1: max 1, mean 3/4 */
    near(cap.load[0], 2.0 / 3, 1e-12);
    near(cap.load[3], 1, 1e-12);
    near(r->records[0].imbalance, 1 / 0.75, 1e-12);
    assert_int_equal(r->records[0].assignments, 3);
    /* messages from device 0: tokens 0, 1 send 1/3 to devices 1 and 2 each,
     * token 2 sends 1 to device 3: 2*2/3 + 1 = 7/3 messages */
    near(r->records[0].intra_bytes, 7.0 / 3 * 34, 1e-12);
    ms_sim_result_free(r);
    ms_trace_free(t);
    ms_placement_free(p);
}

/* The least-loaded fast path equals the generic loop, with capacity, drops,
 * reroutes and a shared expert. */
static void test_ll_fast_equals_generic(void **state) {
    (void)state;
    ms_hw_preset hw;
    ms_model_preset m;
    ms_error err = {0};
    hw_round(&hw);
    model_small(&m);
    ms_rng rng;
    ms_rng_seed(&rng, 77);
    uint32_t E = 40, k = 4, nreq = 30, nt[30];
    uint64_t n = 0;
    for (uint32_t r = 0; r < nreq; r++) n += nt[r] = 1 + (uint32_t)ms_rng_below(&rng, 100);
    uint16_t *ids = malloc(sizeof(uint16_t) * 2 * n * k);
    for (uint64_t i = 0; i < 2 * n; i++)
        for (uint32_t j = 0; j < k; j++) {
            uint16_t e;
            bool again;
            do {
                e = (uint16_t)(ms_rng_below(&rng, 3) ? ms_rng_below(&rng, 8) : ms_rng_below(&rng, E));
                again = false;
                for (uint32_t q = 0; q < j; q++) again |= ids[i * k + q] == e;
            } while (again);
            ids[i * k + j] = e;
        }
    ms_trace *t = mk_trace(2, E, k, nreq, nt, ids);
    /* 4 x 4 x 4 = 64 slots: 40 experts, the shared expert (id 40) once per
     * row, then 20 replicas (experts 0..7 up to four times) */
    int32_t ph[64];
    for (int s = 0, next = 0; s < 64; s++) ph[s] = s % 16 == 0 ? 40 : next < 40 ? next++ : s % 8;
    ms_placement *p = mk_place(4, 4, 4, E, true, ph);
    assert_int_equal(ms_placement_check(p, &err), MS_OK);
    double cfs[3] = {0, 1.0, 1.3};
    ms_overflow ovs[3] = {MS_OVERFLOW_ACCEPT, MS_OVERFLOW_DROP, MS_OVERFLOW_REROUTE};
    for (int ci = 0; ci < 3; ci++)
        for (int vi = 0; vi < 3; vi++)
            for (int bm = 0; bm < 2; bm++) {
                ms_sim_opts o;
                ms_sim_opts_default(&o);
                o.cost_model = MS_COST_ROOFLINE;
                o.route = MS_ROUTE_LEAST_LOADED;
                o.capacity_factor = cfs[ci];
                o.overflow = ovs[vi];
                o.hw = &hw;
                o.model = &m;
                ms_batch_opts bo;
                ms_batch_opts_default(&bo);
                bo.mode = bm ? MS_BATCH_PREFILL : MS_BATCH_PER_REQUEST;
                bo.batch_tokens = 200;
                bo.dp = MS_DP_LEAST_LOADED;
                ms_sim_result *a = run_hooked(t, p, &o, &bo, NULL);
                o.roof_generic = true;
                ms_sim_result *b = run_hooked(t, p, &o, &bo, NULL);
                assert_int_equal(a->n_records, b->n_records);
                assert_memory_equal(a->records, b->records, a->n_records * sizeof(ms_sim_record));
                /* conservation: every choice (and the shared expert) lands once or is dropped */
                assert_int_equal(a->summary.assignments + a->summary.dropped, (uint64_t)2 * n * (k + 1));
                ms_sim_result_free(a);
                ms_sim_result_free(b);
            }
    ms_trace_free(t);
    ms_placement_free(p);
    free(ids);
}

static void test_presets_in_roofline(void **state) {
    (void)state;
    ms_hw_preset hw;
    ms_model_preset m;
    ms_error err = {0};
    if (ms_hw_preset_load("h100-sxm", &hw, &err) != MS_OK) {
        fprintf(stderr, "%s\n", err.msg);
        fail();
    }
    assert_int_equal(ms_model_preset_load("deepseek-v3", &m, &err), MS_OK);
    near(m.dispatch_bytes, 7168 + 4 * 56, 0); /* FP8 + one fp32 scale per 128 */
    near(m.combine_bytes, 2 * 7168, 0);
    /* one DeepSeek-V3 token on one expert of an H100: 6*7168*2048 FLOPs at
     * 1979 TFLOPS x 0.6 vs 3*7168*2048 bytes + 4*7168 at 3.35 TB/s x 0.8 */
    uint32_t nt[1] = {1};
    uint16_t ids[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    ms_trace *t = mk_trace(1, 8, 8, 1, nt, ids);
    int32_t ph[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    ms_placement *p = mk_place(1, 8, 1, 8, false, ph);
    ms_sim_opts o;
    ms_sim_opts_default(&o);
    o.cost_model = MS_COST_ROOFLINE;
    o.route = MS_ROUTE_LEAST_LOADED;
    o.hw = &hw;
    o.model = &m;
    ms_batch_opts bo;
    ms_batch_opts_default(&bo);
    ms_sim_result *r = run_hooked(t, p, &o, &bo, NULL);
    double tf = 6.0 * 7168 * 2048 / (1979e12 * 0.6) * 1e6;
    double tb = (3.0 * 7168 * 2048 + 4.0 * 7168) / (3.35e12 * 0.8) * 1e6;
    near(r->records[0].compute_us, tf > tb ? tf : tb, 1e-12);
    ms_sim_result_free(r);
    ms_trace_free(t);
    ms_placement_free(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_roofline),
        cmocka_unit_test(test_messages_per_device),
        cmocka_unit_test(test_two_micro_batches),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_ll_fast_equals_generic),
        cmocka_unit_test(test_presets_in_roofline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
