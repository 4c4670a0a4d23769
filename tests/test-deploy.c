/* test-deploy.c - the deployment model: every term on a tiny hand-computed
 * model, FLOP conservation across plans, refusals, monotonicity in
 * imbalance and overlap, the seed presets. */
#include "testutil.h"

#include <math.h>
#include <string.h>
#include "moesim/deploy.h"

#define NEAR(a, b) assert_true(fabs((double)(a) - (double)(b)) <= 1e-9 * fmax(1.0, fabs((double)(b))))

/* d 4, 2 heads x 2 (q = kv = 4), 2 experts top-1 of hidden 8 (2 matrices), BF16 */
static ms_deploy_model tiny(void) {
    ms_deploy_model m;
    ms_deploy_model_default(&m);
    snprintf(m.name, sizeof m.name, "tiny");
    m.layers = 1;
    m.hidden = 4;
    m.heads = 2;
    m.head_dim = 2;
    m.experts = 2;
    m.top_k = 1;
    m.expert_hidden = 8;
    return m;
}

/* a GPU of 1000 FLOP/s, 100 B/s HBM, 1 kB, 1 B/s links without latency */
static ms_deploy_hw tiny_hw(void) {
    ms_deploy_hw hw;
    memset(&hw, 0, sizeof hw);
    ms_hw_preset *g = &hw.gpu;
    snprintf(g->name, sizeof g->name, "tiny");
    g->peak_tflops_bf16 = 1e-9;
    g->peak_tflops_fp8 = 2e-9;
    g->mfu = 1;
    g->hbm_tb_s = 1e-10;
    g->hbm_util = 1;
    g->memory_gb = 1e-6;
    g->nvlink_gb_s = 1e-9;
    g->nvlink_efficiency = 1;
    g->nic_gb_s = 1e-9;
    g->net_efficiency = 0.5;
    hw.gpus_per_node = 8;
    ms_energy_coeffs *c = &hw.energy;
    snprintf(c->name, sizeof c->name, "tiny");
    c->pj_per_flop[MS_PREC_BF16] = 1e12; /* 1 J per FLOP: easy sums */
    c->hbm_pj_per_bit = 0;
    c->freq_exponent = 2;
    c->min_clock = 0.25;
    c->idle_w = 100;
    c->tdp_w = 1e9;
    c->pue = 1;
    return hw;
}

static void test_params(void **state) {
    (void)state;
    ms_deploy_model m = tiny();
    double tot, act;
    ms_deploy_params(&m, &tot, &act);
    /* attention 4 x 4 x 4 = 64, gate 8, experts 2 x (2 x 4 x 8) = 128 */
    NEAR(tot, 64 + 8 + 128);
    NEAR(act, 64 + 8 + 64);
    ms_deploy_preset ps;
    ms_error err = {0};
    assert_int_equal(ms_deploy_preset_load("seed-4layer", &ps, &err), MS_OK);
    ms_deploy_params(&ps.model, &tot, &act);
    double d = 8192, f = 32768;
    NEAR(tot, 4 * (4 * d * d + d * 16 + 16 * 2 * d * f));
    NEAR(act, 4 * (4 * d * d + d * 16 + 2 * 2 * d * f));
    assert_int_equal(ms_deploy_preset_load("seed-61layer", &ps, &err), MS_OK);
    ms_deploy_params(&ps.model, &tot, &act);
    d = 7168;
    double q = 128 * 128;
    NEAR(tot, 61 * 4 * d * q + 3 * 2 * d * 18432 + 58 * (d * 64 + 64 * 2 * d * 2048));
    /* seed 004: 58.72 MB per expert in BF16 */
    NEAR(2 * d * 2048 * 2, 58720256);
}

/* one GPU, one sequence of 4 tokens, no chunking: every term by hand */
static void test_one_gpu_by_hand(void **state) {
    (void)state;
    ms_deploy_model m = tiny();
    ms_deploy_hw hw = tiny_hw();
    ms_deploy_workload w;
    ms_deploy_workload_default(&w);
    w.sequences = 1;
    w.seq_len = 4;
    w.micro_batch = 1;
    w.chunk = 4;
    ms_deploy_plan p;
    ms_deploy_plan_default(&p);
    ms_deploy_result r;
    ms_error err = {0};
    assert_int_equal(ms_deploy_evaluate(&m, &w, &hw, &p, &r, &err), MS_OK);
    assert_true(r.fits);
    /* attention FLOPs: projections 2 x 4 x 64 = 512, scores 4 x 4 x 4 x 0.5 x 4 = 128, gate 2 x 4 x 8 = 64 */
    double fa = 512 + 128 + 64;
    /* experts: 4 assignments x 2 x 64 = 512 */
    double ff = 512;
    NEAR(r.moe.flops, fa + ff);
    NEAR(r.moe.t_compute, (fa + ff) / 1000);
    /* attention HBM: weights 128 + activations 4 x 2 x (8 + 24 + 8) = 320 + prefix K,V 4 x 0.5 x 8 x 2 = 32
     * + gate weights 16 = 496; FFN: touched experts 2 (1 - e^-2) x 128 + 4 x 2 x (8 + 16) = 192 */
    double ba = 496, bf = 2 * (1 - exp(-2.0)) * 128 + 192;
    NEAR(r.moe.hbm_bytes, ba + bf);
    NEAR(r.moe.t_memory, (ba + bf) / 100);
    NEAR(r.moe.t_kernels, fmax(fa / 1000, ba / 100) + fmax(ff / 1000, bf / 100));
    NEAR(r.moe.t_comm, 0);
    NEAR(r.total_s, r.moe.t_kernels);
    NEAR(r.tokens, 4);
    NEAR(r.tokens_per_s, 4 / r.moe.t_kernels);
    /* memory: weights 128 + 2 x (128 + 8) = 400, KV 1 x 4 x 8 x 2 = 64,
     * activations max(4 x 2 x 24, 4 x 2 x 16) + 4 x 4 x 2 = 224 */
    NEAR(r.mem.weights, 400);
    NEAR(r.mem.kv, 64);
    NEAR(r.mem.activations, 224);
    NEAR(r.mem.comm_buffers, 0);
    NEAR(r.mem.total, 688);
    /* energy: 1 J per FLOP + 100 W idle over the run */
    NEAR(r.energy_j[MS_PART_COMPUTE], fa + ff);
    NEAR(r.energy_j[MS_PART_STATIC] + r.energy_j[MS_PART_WAIT], 100 * r.total_s);
    NEAR(r.j_per_token, (fa + ff + 100 * r.total_s) / 4);
    /* the same with 600 bytes of memory: refused, with the reason */
    hw.gpu.memory_gb = 6e-7;
    assert_int_equal(ms_deploy_evaluate(&m, &w, &hw, &p, &r, &err), MS_OK);
    assert_false(r.fits);
    assert_non_null(strstr(r.why, "6.88e-07 GB per GPU"));
    assert_non_null(strstr(r.why, "> 6e-07 GB"));
    /* weights alone too big: says so */
    hw.gpu.memory_gb = 3e-7;
    w.micro_batch = 0;
    w.chunk = 0;
    assert_int_equal(ms_deploy_evaluate(&m, &w, &hw, &p, &r, &err), MS_OK);
    assert_false(r.fits);
    assert_non_null(strstr(r.why, "weights alone"));
}

/* TP and EP communication by hand */
static void test_comm_by_hand(void **state) {
    (void)state;
    ms_deploy_model m = tiny();
    m.heads = 2;
    ms_deploy_hw hw = tiny_hw();
    hw.gpu.memory_gb = 1;
    ms_deploy_workload w;
    ms_deploy_workload_default(&w);
    w.sequences = 2;
    w.seq_len = 4;
    w.micro_batch = 2;
    w.chunk = 4;
    ms_deploy_plan p;
    ms_deploy_plan_default(&p);
    p.tp = 2;
    ms_deploy_result r;
    ms_error err = {0};
    assert_int_equal(ms_deploy_evaluate(&m, &w, &hw, &p, &r, &err), MS_OK);
    /* 8 tokens in one group: two ring all-reduces, each sends 2 (1/2) 8 x 4 x 2 = 64 B over 1 B/s NVLink */
    NEAR(r.moe.t_tp, 2 * 64.0);
    NEAR(r.moe.nvlink_bytes, 2 * 64.0);
    NEAR(r.moe.t_no_overlap, r.moe.t_kernels + 128);
    /* EP = 2 inside a node: 4 tokens per GPU, one copy each, half stays: 4 x 4 x 2 / 2 = 16 B per phase */
    p.tp = 1;
    p.ep = 2;
    assert_int_equal(ms_deploy_evaluate(&m, &w, &hw, &p, &r, &err), MS_OK);
    NEAR(r.moe.t_ep, 2 * 16.0);
    NEAR(r.moe.nvlink_bytes, 32);
    NEAR(r.moe.net_bytes, 0);
    /* one GPU per node: everything crosses the network (1 B/s x 0.5) */
    hw.gpus_per_node = 1;
    assert_int_equal(ms_deploy_evaluate(&m, &w, &hw, &p, &r, &err), MS_OK);
    NEAR(r.moe.t_ep, 2 * 16.0 / 0.5);
    NEAR(r.moe.net_bytes, 32);
    /* overlap: max + (1 - eff) min */
    p.overlap = true;
    p.overlap_eff = 1;
    assert_int_equal(ms_deploy_evaluate(&m, &w, &hw, &p, &r, &err), MS_OK);
    NEAR(r.moe.t_overlap, fmax(r.moe.t_kernels, r.moe.t_comm));
    NEAR(r.moe.t_layer, r.moe.t_overlap);
    p.overlap_eff = 0.5;
    assert_int_equal(ms_deploy_evaluate(&m, &w, &hw, &p, &r, &err), MS_OK);
    NEAR(r.moe.t_overlap,
         fmax(r.moe.t_kernels, r.moe.t_comm) + 0.5 * fmin(r.moe.t_kernels, r.moe.t_comm));
    assert_true(r.moe.t_overlap <= r.moe.t_no_overlap);
}

/* the plan may not change the work: FLOPs per token of a layer agree */
static void test_flops_conserved(void **state) {
    (void)state;
    ms_deploy_preset ps;
    ms_error err = {0};
    assert_int_equal(ms_deploy_preset_load("seed-4layer", &ps, &err), MS_OK);
    ms_deploy_hw hw;
    memset(&hw, 0, sizeof hw);
    hw.gpus_per_node = 8;
    assert_int_equal(ms_hw_preset_load(ps.gpu, &hw.gpu, &err), MS_OK);
    assert_int_equal(ms_energy_load(ps.energy, &hw.energy, &err), MS_OK);
    static const char *specs[] = {"a:tp=8,pp=2", "b:ep=16,overlap=1", "c:ep=8,dp=2", "d:tp=2,ep=8", "e:tp=4,pp=2,dp=2"};
    double per_token = 0;
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        ms_deploy_plan p;
        assert_int_equal(ms_deploy_plan_parse(specs[i], &p, &err), MS_OK);
        ms_deploy_result r;
        assert_int_equal(ms_deploy_evaluate(&ps.model, &ps.workload, &hw, &p, &r, &err), MS_OK);
        assert_true(r.fits);
        double stage_gpus = (double)p.tp * p.ep * p.dp;
        double x = r.moe.flops * stage_gpus / ((double)r.micro_batch * r.chunk);
        if (i == 0) per_token = x;
        else NEAR(x, per_token);
        NEAR(r.tokens, 1024.0 * 10000);
    }
    /* 2 x active params of a layer + causal scores 4 x S x 0.5 x q */
    double d = 8192, f = 32768;
    NEAR(per_token, 2 * (4 * d * d + 16 * d + 2 * 2 * d * f) + 4 * 10000 * 0.5 * d);
}

static void test_seed_presets(void **state) {
    (void)state;
    static const char *names[] = {"seed-4layer", "seed-61layer"};
    for (int k = 0; k < 2; k++) {
        ms_deploy_preset ps;
        ms_error err = {0};
        assert_int_equal(ms_deploy_preset_load(names[k], &ps, &err), MS_OK);
        assert_int_equal(ps.n_plans, 2);
        ms_deploy_hw hw;
        memset(&hw, 0, sizeof hw);
        hw.gpus_per_node = ps.gpus_per_node;
        assert_int_equal(ms_hw_preset_load(ps.gpu, &hw.gpu, &err), MS_OK);
        assert_int_equal(ms_energy_load(ps.energy, &hw.energy, &err), MS_OK);
        ms_deploy_result r[2];
        for (int i = 0; i < 2; i++) {
            assert_int_equal(ps.plans[i].tp * ps.plans[i].pp * ps.plans[i].ep * ps.plans[i].dp, ps.gpus);
            assert_int_equal(ms_deploy_evaluate(&ps.model, &ps.workload, &hw, &ps.plans[i], &r[i], &err), MS_OK);
            assert_true(r[i].fits);
            /* the 10M-token batch does not fit at once: micro-batched */
            assert_true(r[i].mem.whole_batch_total > r[i].mem.capacity);
            assert_true(r[i].n_micro > 1);
            assert_true(r[i].mem.total <= r[i].mem.capacity);
            double parts = 0;
            for (int j = 0; j < MS_PART_COUNT; j++) parts += r[i].energy_j[j];
            NEAR(parts, r[i].total_j);
            NEAR(r[i].j_per_token * r[i].tokens, r[i].total_j);
        }
        assert_string_equal(ps.plans[1].name, "method");
        /* the method hides its communication; the baseline does not */
        assert_true(r[1].plan.overlap && !r[0].plan.overlap);
        char v[4096];
        ms_deploy_verdict(r, 2, v, sizeof v);
        assert_non_null(strstr(v, "Verdict:"));
        assert_non_null(strstr(v, "wins on throughput"));
    }
}

/* more expert imbalance never helps: throughput down, energy per token up */
static void test_imbalance_monotone(void **state) {
    (void)state;
    ms_deploy_preset ps;
    ms_error err = {0};
    assert_int_equal(ms_deploy_preset_load("seed-4layer", &ps, &err), MS_OK);
    ms_deploy_hw hw;
    memset(&hw, 0, sizeof hw);
    hw.gpus_per_node = 8;
    assert_int_equal(ms_hw_preset_load("h100-sxm", &hw.gpu, &err), MS_OK);
    assert_int_equal(ms_energy_load("h100-sxm", &hw.energy, &err), MS_OK);
    ms_deploy_workload w = ps.workload;
    w.micro_batch = 16;
    w.chunk = 2500;
    ms_deploy_plan p = ps.plans[1];
    double prev_t = INFINITY, prev_e = 0;
    for (double imb = 1; imb <= 8; imb *= 1.5) {
        p.imbalance = imb;
        ms_deploy_result r;
        assert_int_equal(ms_deploy_evaluate(&ps.model, &w, &hw, &p, &r, &err), MS_OK);
        assert_true(r.fits);
        assert_true(r.tokens_per_s <= prev_t * (1 + 1e-12));
        assert_true(r.j_per_token >= prev_e * (1 - 1e-12));
        prev_t = r.tokens_per_s;
        prev_e = r.j_per_token;
    }
    /* the baseline (ep 1) is immune: every GPU holds a slice of every expert */
    ms_deploy_result a, b;
    p = ps.plans[0];
    assert_int_equal(ms_deploy_evaluate(&ps.model, &w, &hw, &p, &a, &err), MS_OK);
    p.imbalance = 4;
    assert_int_equal(ms_deploy_evaluate(&ps.model, &w, &hw, &p, &b, &err), MS_OK);
    NEAR(a.tokens_per_s, b.tokens_per_s);
}

static void test_refusals(void **state) {
    (void)state;
    ms_deploy_preset ps;
    ms_error err = {0};
    assert_int_equal(ms_deploy_preset_load("seed-4layer", &ps, &err), MS_OK);
    ms_deploy_hw hw;
    memset(&hw, 0, sizeof hw);
    hw.gpus_per_node = 8;
    assert_int_equal(ms_hw_preset_load(ps.gpu, &hw.gpu, &err), MS_OK);
    assert_int_equal(ms_energy_load(ps.energy, &hw.energy, &err), MS_OK);
    ms_deploy_result r;
    /* the whole batch as one micro-batch: refused, says how many would fit */
    ms_deploy_workload w = ps.workload;
    w.micro_batch = 1024;
    w.chunk = 10000;
    assert_int_equal(ms_deploy_evaluate(&ps.model, &w, &hw, &ps.plans[0], &r, &err), MS_OK);
    assert_false(r.fits);
    assert_non_null(strstr(r.why, "at most"));
    assert_non_null(strstr(r.why, "baseline"));
    /* plans that cannot be expressed */
    static const char *bad[] = {"x:tp=3", "x:ep=3", "x:pp=5", "x:imbalance=17,ep=16"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ms_deploy_plan p;
        assert_int_equal(ms_deploy_plan_parse(bad[i], &p, &err), MS_OK);
        assert_int_equal(ms_deploy_evaluate(&ps.model, &ps.workload, &hw, &p, &r, &err), MS_E_INPUT);
        assert_non_null(strstr(err.msg, "plan x"));
    }
    ms_deploy_plan p = ps.plans[1];
    w = ps.workload;
    w.micro_batch = 8; /* not a multiple of ep 16 */
    assert_int_equal(ms_deploy_evaluate(&ps.model, &w, &hw, &p, &r, &err), MS_E_INPUT);
    assert_non_null(strstr(err.msg, "multiple"));
    w.micro_batch = 0;
    w.chunk = 20000;
    assert_int_equal(ms_deploy_evaluate(&ps.model, &w, &hw, &p, &r, &err), MS_E_INPUT);
    /* decode: the KV cache of 1024 x 10000 tokens does not fit 16 x 64 GB; fewer run at once */
    w = ps.workload;
    w.phase = MS_DEPLOY_DECODE;
    assert_int_equal(ms_deploy_evaluate(&ps.model, &w, &hw, &p, &r, &err), MS_OK);
    assert_true(r.fits);
    assert_true(r.concurrency > 0 && r.concurrency < 1024);
    assert_true(r.mem.whole_batch_total > r.mem.capacity);
}

static void test_plan_parse(void **state) {
    (void)state;
    ms_deploy_plan p;
    ms_error err = {0};
    assert_int_equal(ms_deploy_plan_parse("big:tp=8,pp=2,ep=4,dp=3,overlap=1,eff=0.5,imbalance=1.5", &p, &err), MS_OK);
    assert_string_equal(p.name, "big");
    assert_int_equal(p.tp * 1000 + p.pp * 100 + p.ep * 10 + p.dp, 8000 + 200 + 40 + 3);
    assert_true(p.overlap);
    NEAR(p.overlap_eff, 0.5);
    NEAR(p.imbalance, 1.5);
    assert_int_equal(ms_deploy_plan_parse("tp=2", &p, &err), MS_OK);
    assert_int_equal(p.tp, 2);
    assert_int_equal(ms_deploy_plan_parse("x:tp=0", &p, &err), MS_E_INPUT);
    assert_int_equal(ms_deploy_plan_parse("x:foo=1", &p, &err), MS_E_INPUT);
    assert_int_equal(ms_deploy_plan_parse("x:tp=1.5", &p, &err), MS_E_INPUT);
    assert_int_equal(ms_deploy_plan_parse("x:overlap=2", &p, &err), MS_E_INPUT);
    assert_int_equal(ms_deploy_plan_parse("justaname", &p, &err), MS_E_INPUT);
    ms_deploy_preset ps;
    assert_int_equal(ms_deploy_preset_load("no-such-preset", &ps, &err), MS_E_INPUT);
    assert_non_null(strstr(err.msg, "no-such-preset"));
    char path[512];
    tu_tmp_path("deploy", ".json", path, sizeof path);
    const char *txt = "{\"gpu\": \"h100-sxm\", \"model\": {\"layers\": 2, \"hidden\": 8, \"heads\": 2, \"head_dim\": 4,"
                      " \"experts\": 4, \"top_k\": 9, \"expert_hidden\": 8}, \"workload\": {\"sequences\": 1, "
                      "\"seq_len\": 4}}";
    tu_write_file(path, txt, strlen(txt));
    assert_int_equal(ms_deploy_preset_load(path, &ps, &err), MS_E_INPUT);
    assert_non_null(strstr(err.msg, "top_k"));
    remove(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params),          cmocka_unit_test(test_one_gpu_by_hand),
        cmocka_unit_test(test_comm_by_hand),    cmocka_unit_test(test_flops_conserved),
        cmocka_unit_test(test_seed_presets),    cmocka_unit_test(test_imbalance_monotone),
        cmocka_unit_test(test_refusals),        cmocka_unit_test(test_plan_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
