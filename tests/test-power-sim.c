/* test-power-sim.c - power caps through the simulator and the power model:
 * caps that never bind give today's records bit for bit, a tighter cap never
 * shortens a layer (random cases, with and without two-micro-batch overlap),
 * energy parts still sum to the total, and a two-device case computed by
 * hand (per-GPU cap and cluster budget) through ms_sim_run and
 * ms_power_compute. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moesim/place.h"
#include "moesim/power.h"
#include "moesim/sim.h"
#include "moesim/stats.h"
#include "moesim/trace.h"

static void near(double got, double want, double rel) {
    double tol = rel * (fabs(want) > 1 ? fabs(want) : 1);
    if (!(fabs(got - want) <= tol)) fail_msg("got %.17g, want %.17g", got, want);
}

/* nreq requests of ntok[r] tokens, layers x tokens x k ids */
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

/* A skewed random trace of nreq requests (1..maxtok tokens each). */
static ms_trace *rand_trace(ms_rng *g, uint32_t layers, uint32_t E, uint32_t k, uint32_t nreq, uint32_t maxtok) {
    uint32_t *nt = malloc(nreq * sizeof *nt);
    uint64_t n = 0;
    for (uint32_t r = 0; r < nreq; r++) n += nt[r] = 1 + (uint32_t)ms_rng_below(g, maxtok);
    uint16_t *ids = malloc(sizeof(uint16_t) * layers * n * k);
    for (uint64_t i = 0; i < layers * n; i++)
        for (uint32_t j = 0; j < k; j++) {
            uint16_t e;
            bool again;
            do {
                double u = ms_rng_uniform(g);
                e = (uint16_t)(u * u * E);
                again = false;
                for (uint32_t q = 0; q < j; q++) again |= ids[i * k + q] == e;
            } while (again);
            ids[i * k + j] = e;
        }
    ms_trace *t = mk_trace(layers, E, k, nreq, nt, ids);
    free(nt);
    free(ids);
    return t;
}

static ms_placement *place_of(const ms_trace *t, const char *algo, uint32_t rows, uint32_t cols, uint32_t spd) {
    ms_stats_opts so;
    ms_stats_opts_default(&so);
    ms_stats *s = NULL;
    ms_error err = {0};
    assert_int_equal(ms_stats_compute(t, &so, &s, &err), MS_OK);
    ms_loads *l = tu_stats_loads(s);
    ms_place_opts po;
    tu_place_opts(&po, algo, rows, cols, spd);
    ms_placement *p = tu_place_ok(l, s, &po);
    ms_loads_free(l);
    ms_stats_free(s);
    return p;
}

static ms_sim_result *run(const ms_trace *t, const ms_batch_plan *plan, const ms_placement *p, const ms_sim_opts *o,
                          const ms_sim_hooks *h) {
    ms_sim_result *r = NULL;
    ms_error err = {0};
    ms_status st = ms_sim_run(t, plan, p, o, h, &r, &err);
    if (st != MS_OK) fail_msg("%s", err.msg);
    return r;
}

static void presets(ms_hw_preset *hw, ms_model_preset *m, ms_energy_coeffs *c) {
    ms_error err = {0};
    assert_int_equal(ms_hw_preset_load("h100-sxm", hw, &err), MS_OK);
    assert_int_equal(ms_model_preset_load("deepseek-v2-lite", m, &err), MS_OK);
    assert_int_equal(ms_energy_load("h100-sxm", c, &err), MS_OK);
}

/* every field of two records equal (struct padding aside) */
static void rec_equal(const ms_sim_record *a, const ms_sim_record *b) {
    assert_true(a->batch == b->batch && a->layer == b->layer && a->tokens == b->tokens);
    assert_true(a->assignments == b->assignments && a->dropped == b->dropped && a->rerouted == b->rerouted);
    assert_true(a->max_load == b->max_load && a->mean_load == b->mean_load && a->imbalance == b->imbalance);
    assert_true(a->dense_us == b->dense_us && a->dispatch_us == b->dispatch_us && a->compute_us == b->compute_us);
    assert_true(a->combine_us == b->combine_us && a->layer_us == b->layer_us && a->busy_us == b->busy_us);
    assert_true(a->intra_bytes == b->intra_bytes && a->inter_bytes == b->inter_bytes);
    assert_true(a->throttled_us == b->throttled_us && a->clock_mean == b->clock_mean);
    assert_true(a->clock_min == b->clock_min && a->cap_unmet == b->cap_unmet);
}

/* Caps that never bind (INFINITY, or finite far above any demand) run the
 * throttled path with every clock 1: the records equal the unthrottled ones
 * bit for bit (their throttle fields are 0, 1, 1, 0 in both). */
static void test_infinite_cap_is_today(void **state) {
    (void)state;
    ms_hw_preset hw;
    ms_model_preset m;
    ms_energy_coeffs c;
    presets(&hw, &m, &c);
    ms_rng g;
    ms_rng_seed(&g, 5);
    ms_trace *t = rand_trace(&g, 3, 64, 6, 24, 300);
    ms_placement *p = place_of(t, "eplb", 2, 4, 10);
    ms_error err = {0};
    ms_route routes[3] = {MS_ROUTE_LEAST_LOADED, MS_ROUTE_ROUND_ROBIN, MS_ROUTE_SPLIT};
    for (int ri = 0; ri < 3; ri++)
        for (int ov = 0; ov < 2; ov++)
            for (int ci = 0; ci < 2; ci++) {
                ms_sim_opts o;
                ms_sim_opts_default(&o);
                o.cost_model = MS_COST_ROOFLINE;
                o.origin = MS_ORIGIN_DP;
                o.route = routes[ri];
                o.overlap = ov ? MS_OVERLAP_TWO_MICRO_BATCH : MS_OVERLAP_NONE;
                o.hw = &hw;
                o.model = &m;
                ms_batch_opts bo;
                ms_batch_opts_default(&bo);
                bo.mode = MS_BATCH_PREFILL;
                bo.batch_tokens = 1000;
                ms_batch_plan *plan = NULL;
                assert_int_equal(ms_batch_plan_build(t, &bo, 8, &plan, &err), MS_OK);
                ms_sim_result *a = run(t, plan, p, &o, NULL);
                ms_power_cap cap;
                ms_power_cap_none(&cap);
                if (ci) cap.gpu_w = cap.row_w = cap.cluster_w = 1e12;
                ms_power_throttle th;
                ms_sim_throttle st;
                assert_int_equal(ms_power_throttle_init(&th, &c, &cap, MS_PREC_BF16, 8, 4, &st, &err), MS_OK);
                o.throttle = &st;
                ms_sim_result *b = run(t, plan, p, &o, NULL);
                assert_int_equal(a->n_records, b->n_records);
                for (uint64_t i = 0; i < a->n_records; i++) rec_equal(&a->records[i], &b->records[i]);
                assert_true(b->summary.throttled && !a->summary.throttled);
                assert_true(b->summary.throttled_us == 0 && b->summary.clock_min == 1 && b->summary.cap_unmet == 0);
                assert_true(a->summary.layer_us.mean == b->summary.layer_us.mean);
                assert_true(a->summary.total_us == b->summary.total_us);
                assert_null(a->dev_clock_mean);
                for (uint32_t d = 0; d < 8; d++) assert_true(b->dev_clock_mean[d] == 1 && b->dev_clock_min[d] == 1);
                ms_sim_result_free(a);
                ms_sim_result_free(b);
                ms_batch_plan_free(plan);
            }
    ms_trace_free(t);
    ms_placement_free(p);
}

/* layer time of every record under cap (NULL = uncapped) into lt[] */
static void layer_times(const ms_trace *t, const ms_batch_plan *plan, const ms_placement *p, ms_sim_opts o,
                        const ms_energy_coeffs *c, const ms_power_cap *cap, double *lt, double *thr, uint64_t *n) {
    ms_power_throttle th;
    ms_sim_throttle st;
    ms_error err = {0};
    if (cap) {
        assert_int_equal(ms_power_throttle_init(&th, c, cap, MS_PREC_BF16, ms_cluster_devices(&p->cluster),
                                                p->cluster.cols, &st, &err),
                         MS_OK);
        o.throttle = &st;
    }
    ms_sim_result *r = run(t, plan, p, &o, NULL);
    *n = r->n_records;
    for (uint64_t i = 0; i < r->n_records; i++) {
        lt[i] = r->records[i].layer_us;
        if (thr) thr[i] = r->records[i].throttled_us;
        assert_true(r->records[i].clock_min >= c->min_clock * (1 - 1e-12) && r->records[i].clock_min <= 1);
        assert_true(r->records[i].throttled_us >= 0);
    }
    ms_sim_result_free(r);
}

/* Tightening a limit never shortens a layer: the per-GPU cap alone, the
 * cluster budget alone (with a fixed per-GPU cap), a row budget alone, and
 * all limits scaled together; and a capped layer is never shorter than the
 * uncapped one, by exactly its throttled time. (Tightening only the per-GPU
 * cap while a budget binds may speed other devices up: see
 * test_budget_redistribution.) */
static void test_tighter_never_shortens(void **state) {
    (void)state;
    ms_hw_preset hw;
    ms_model_preset m;
    ms_energy_coeffs c;
    presets(&hw, &m, &c);
    ms_rng g;
    ms_rng_seed(&g, 11);
    ms_error err = {0};
    double *a = malloc(4096 * sizeof(double)), *b = malloc(4096 * sizeof(double)), *u = malloc(4096 * sizeof(double));
    double *th = malloc(4096 * sizeof(double));
    uint64_t binding = 0;
    for (int trial = 0; trial < 12; trial++) {
        ms_trace *t = rand_trace(&g, 2, 64, 6, 16, 400);
        ms_placement *p = place_of(t, trial % 2 ? "replicate" : "eplb", 2, 4, 10);
        ms_sim_opts o;
        ms_sim_opts_default(&o);
        o.cost_model = MS_COST_ROOFLINE;
        o.origin = MS_ORIGIN_DP;
        o.route = trial % 3 == 0 ? MS_ROUTE_ROUND_ROBIN : MS_ROUTE_LEAST_LOADED;
        o.overlap = trial % 2 ? MS_OVERLAP_TWO_MICRO_BATCH : MS_OVERLAP_NONE;
        o.hw = &hw;
        o.model = &m;
        ms_batch_opts bo;
        ms_batch_opts_default(&bo);
        bo.mode = MS_BATCH_PREFILL;
        bo.batch_tokens = 800;
        ms_batch_plan *plan = NULL;
        assert_int_equal(ms_batch_plan_build(t, &bo, 8, &plan, &err), MS_OK);
        uint64_t n, n2;
        layer_times(t, plan, p, o, &c, NULL, u, NULL, &n);
        for (int kind = 0; kind < 4; kind++) {
            ms_power_cap hi, lo;
            ms_power_cap_none(&hi);
            double gw = 120 + 400 * ms_rng_uniform(&g);
            if (kind == 0) hi.gpu_w = gw;
            if (kind == 1) hi.gpu_w = gw + 200, hi.cluster_w = 8 * (100 + 300 * ms_rng_uniform(&g));
            if (kind == 2) hi.row_w = 4 * (100 + 300 * ms_rng_uniform(&g));
            if (kind == 3) hi.gpu_w = gw, hi.row_w = 4 * (100 + 400 * ms_rng_uniform(&g)),
                           hi.cluster_w = 8 * (100 + 300 * ms_rng_uniform(&g));
            lo = hi;
            double s = 0.6 + 0.35 * ms_rng_uniform(&g);
            if (kind == 0) lo.gpu_w = 71 + (hi.gpu_w - 71) * s;
            if (kind == 1) lo.cluster_w = 8 * 71 + (hi.cluster_w - 8 * 71) * s;
            if (kind == 2) lo.row_w = 4 * 71 + (hi.row_w - 4 * 71) * s;
            if (kind == 3) lo.gpu_w *= s, lo.row_w *= s, lo.cluster_w *= s;
            if (lo.gpu_w <= 71) lo.gpu_w = 71;
            layer_times(t, plan, p, o, &c, &hi, a, th, &n2);
            assert_int_equal(n, n2);
            for (uint64_t i = 0; i < n; i++) {
                assert_true(a[i] >= u[i]);
                near(a[i] - u[i], th[i], 1e-9);
                binding += a[i] > u[i];
            }
            layer_times(t, plan, p, o, &c, &lo, b, NULL, &n2);
            for (uint64_t i = 0; i < n; i++)
                if (!(b[i] >= a[i])) fail_msg("trial %d kind %d record %llu: %.17g < %.17g", trial, kind,
                                              (unsigned long long)i, b[i], a[i]);
        }
        ms_batch_plan_free(plan);
        ms_trace_free(t);
        ms_placement_free(p);
    }
    assert_true(binding > 0); /* the caps did bind */
    free(a);
    free(b);
    free(u);
    free(th);
}

/* Budgets redistribute: with a cluster budget binding, a tighter per-GPU cap
 * on a power-dense device frees budget that the others' common ceiling
 * takes. Two devices, alpha 2, idle 10 W, no memory power: device 0 at
 * 400 W dynamic, device 1 at 100 W; budget 270 W. Without a per-GPU cap:
 * 20 + 500 g^2 = 270 -> g = sqrt(0.5) for both. Per-GPU cap 110 W: device 0
 * 10 + 400 f^2 = 110 -> f = 0.5; then 110 + 10 + 100 g^2 <= 270 holds at
 * g = 1, so device 1 runs faster than before. */
static void test_budget_redistribution(void **state) {
    (void)state;
    ms_energy_coeffs c;
    memset(&c, 0, sizeof c);
    c.freq_exponent = 2;
    c.min_clock = 0.1;
    c.idle_w = 10;
    c.tdp_w = 1000;
    c.pue = 1;
    double comp[2] = {400, 100}, mem[2] = {0, 0}, clk[2];
    ms_power_cap cap;
    ms_power_cap_none(&cap);
    cap.cluster_w = 270;
    ms_power_cap_clocks(&c, &cap, 2, 2, comp, mem, clk);
    near(clk[0], sqrt(0.5), 1e-12);
    near(clk[1], sqrt(0.5), 1e-12);
    cap.gpu_w = 110;
    ms_power_cap_clocks(&c, &cap, 2, 2, comp, mem, clk);
    near(clk[0], 0.5, 1e-12);
    assert_true(clk[1] == 1.0);
}

/* the power phases of a run and, per device, the FLOP energy expected under
 * its clock and the highest compute power (idle + FLOP and HBM energy over
 * the throttled busy time) */
typedef struct hook {
    ms_power_phases *ph;
    const ms_energy_coeffs *c;
    uint64_t nl;
    double flop_j, max_compute_w;
    int failed;
} hook;

static void on_step(void *ctx, const ms_sim_step *s) {
    hook *k = ctx;
    ms_error err = {0};
    uint64_t i = s->rec->batch * k->nl + s->rec->layer;
    if (ms_power_phases_set_sim(k->ph, i, s, &err) != MS_OK) k->failed = 1;
    const ms_energy_coeffs *c = k->c;
    for (uint32_t d = 0; d < s->n_devices; d++) {
        double f = s->clock ? s->clock[d] : 1, e = s->flops[d] * c->pj_per_flop[MS_PREC_BF16] * 1e-12;
        k->flop_j += e * pow(f, c->freq_exponent - 1);
        if (s->busy_us[d] > 0) {
            double w = c->idle_w + (e * pow(f, c->freq_exponent - 1) + s->hbm_bytes[d] * 8 * c->hbm_pj_per_bit * 1e-12) /
                                       (s->busy_us[d] * 1e-6);
            if (w > k->max_compute_w) k->max_compute_w = w;
        }
    }
}

/* Energy under caps: the parts still sum to the total, FLOP energy is
 * FLOPs x pJ x clock^(alpha - 1) per device, static + wait = idle x devices
 * x wall, and a tighter per-GPU cap lowers compute energy while it lengthens
 * the run; a met cap bounds every device's compute power. */
static void test_energy_parts_under_caps(void **state) {
    (void)state;
    ms_hw_preset hw;
    ms_model_preset m;
    ms_energy_coeffs c;
    presets(&hw, &m, &c);
    ms_rng g;
    ms_rng_seed(&g, 21);
    ms_error err = {0};
    ms_trace *t = rand_trace(&g, 2, 64, 6, 20, 400);
    ms_placement *p = place_of(t, "eplb", 2, 4, 10);
    ms_batch_opts bo;
    ms_batch_opts_default(&bo);
    bo.mode = MS_BATCH_PREFILL;
    bo.batch_tokens = 1000;
    ms_batch_plan *plan = NULL;
    assert_int_equal(ms_batch_plan_build(t, &bo, 8, &plan, &err), MS_OK);
    double prev_compute = INFINITY, prev_wall = 0;
    double caps[4] = {INFINITY, 400, 250, 150};
    for (int ov = 0; ov < 2; ov++)
        for (int ci = 0; ci < 4; ci++) {
            ms_sim_opts o;
            ms_sim_opts_default(&o);
            o.cost_model = MS_COST_ROOFLINE;
            o.origin = MS_ORIGIN_DP;
            o.route = MS_ROUTE_LEAST_LOADED;
            o.overlap = ov ? MS_OVERLAP_TWO_MICRO_BATCH : MS_OVERLAP_NONE;
            o.hw = &hw;
            o.model = &m;
            ms_power_cap cap;
            ms_power_cap_none(&cap);
            cap.gpu_w = caps[ci];
            ms_power_throttle th;
            ms_sim_throttle st;
            assert_int_equal(ms_power_throttle_init(&th, &c, &cap, MS_PREC_BF16, 8, 4, &st, &err), MS_OK);
            o.throttle = &st;
            o.threads = 1; /* the hook sums */
            hook k = {NULL, &c, 2, 0, 0, 0};
            assert_int_equal(ms_power_phases_new(8, plan->n_batches * 2, &k.ph, &err), MS_OK);
            ms_sim_hooks hh = {on_step, &k};
            ms_sim_result *r = run(t, plan, p, &o, &hh);
            assert_false(k.failed);
            k.ph->tokens = (double)r->summary.tokens;
            ms_power_result *pr = NULL;
            assert_int_equal(ms_power_compute(k.ph, &c, &pr, &err), MS_OK);
            double sum = 0;
            for (int q = 0; q < MS_PART_COUNT; q++) sum += pr->energy_j[q];
            near(sum, pr->total_j, 1e-12);
            near(pr->energy_j[MS_PART_COMPUTE], k.flop_j, 1e-12);
            near(pr->energy_j[MS_PART_STATIC] + pr->energy_j[MS_PART_WAIT], c.idle_w * 8 * pr->wall_s, 1e-9);
            near(pr->wall_s, r->summary.total_us * 1e-6, 1e-12);
            if (ci > 0) {
                assert_true(pr->energy_j[MS_PART_COMPUTE] <= prev_compute * (1 + 1e-12));
                assert_true(pr->wall_s >= prev_wall * (1 - 1e-12));
            }
            /* with one micro-batch the effective clock is the clock: a met cap holds */
            if (isfinite(caps[ci]) && !ov && r->summary.cap_unmet == 0)
                assert_true(k.max_compute_w <= caps[ci] * (1 + 1e-9));
            if (ci == 3) {
                assert_true(r->summary.throttled_us > 0);
                assert_true(r->summary.clock_min < 1);
            }
            prev_compute = pr->energy_j[MS_PART_COMPUTE];
            prev_wall = pr->wall_s;
            ms_power_result_free(pr);
            ms_power_phases_free(k.ph);
            ms_sim_result_free(r);
        }
    ms_batch_plan_free(plan);
    ms_trace_free(t);
    ms_placement_free(p);
}

/* Two devices by hand. Hardware: 1e6 FLOP/us, 1e6 B/us HBM, NVLink 1000
 * B/us with 2 us latency. Model: h 10, i 5 (300 FLOPs and 300 weight bytes
 * per expert, 40 activation bytes per token), 100 dense parameters, BF16.
 * One request of 10 tokens starts on device 0 (dense: 2000 FLOPs, 200
 * bytes -> 0.002 us) and every token chooses e1 on device 1 (3000 FLOPs,
 * 700 bytes -> 0.003 us). Energy: 100 pJ/FLOP, 0.375 pJ/bit HBM, links
 * free, idle 10 W, alpha 2. Full clock: device 0 draws 10 + 100 + 0.3 W,
 * device 1 10 + 100 + 0.7 W. A 60 W cap: 100 f^2 + m f = 50, f = (-m +
 * sqrt(m^2 + 20000)) / 200. A 100 W cluster budget: one ceiling g with
 * 20 + 200 g^2 + g = 100. */
static void test_two_devices_by_hand(void **state) {
    (void)state;
    ms_hw_preset hw;
    memset(&hw, 0, sizeof hw);
    strcpy(hw.name, "test");
    hw.peak_tflops_bf16 = 1;
    hw.peak_tflops_fp8 = 2;
    hw.mfu = 1;
    hw.hbm_tb_s = 1;
    hw.hbm_util = 1;
    hw.memory_gb = 1;
    hw.nvlink_gb_s = 1;
    hw.nvlink_latency_us = 2;
    hw.nvlink_efficiency = 1;
    hw.nic_gb_s = 1;
    hw.net_latency_us = 5;
    hw.net_efficiency = 1;
    ms_model_preset m;
    memset(&m, 0, sizeof m);
    strcpy(m.name, "tiny");
    m.hidden = 10;
    m.moe_intermediate = 5;
    m.routed_experts = 2;
    m.top_k = 1;
    m.moe_layers = 1;
    m.expert_weight_bytes = 2;
    m.dense_params_per_layer = 100;
    m.dispatch_bytes = 14;
    m.combine_bytes = 20;
    ms_energy_coeffs c;
    memset(&c, 0, sizeof c);
    strcpy(c.name, "test");
    c.pj_per_flop[MS_PREC_BF16] = 100;
    c.hbm_pj_per_bit = 0.375;
    c.freq_exponent = 2;
    c.min_clock = 0.1;
    c.idle_w = 10;
    c.tdp_w = 1000;
    c.pue = 1;
    uint32_t nt[1] = {10};
    uint16_t ids[10] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    ms_trace *t = mk_trace(1, 2, 1, 1, nt, ids);
    ms_cluster cl = {1, 2, 1};
    ms_placement *p = NULL;
    ms_error err = {0};
    assert_int_equal(ms_placement_new(1, &cl, 2, false, &p, &err), MS_OK);
    p->phy2log[0] = 0;
    p->phy2log[1] = 1;
    assert_int_equal(ms_placement_index(p, &err), MS_OK);
    ms_batch_opts bo;
    ms_batch_opts_default(&bo);
    ms_batch_plan *plan = NULL;
    assert_int_equal(ms_batch_plan_build(t, &bo, 2, &plan, &err), MS_OK);
    double disp = 2 + 10 * 14 / 1000.0, comb = 2 + 10 * 20 / 1000.0;
    for (int mode = 0; mode < 2; mode++) {
        ms_power_cap cap;
        ms_power_cap_none(&cap);
        double f0, f1;
        if (mode == 0) {
            cap.gpu_w = 60;
            f0 = (-0.3 + sqrt(0.09 + 20000)) / 200;
            f1 = (-0.7 + sqrt(0.49 + 20000)) / 200;
        } else {
            cap.cluster_w = 100;
            f0 = f1 = (-1 + sqrt(1 + 4 * 200 * 80)) / 400;
        }
        ms_power_throttle th;
        ms_sim_throttle st;
        assert_int_equal(ms_power_throttle_init(&th, &c, &cap, MS_PREC_BF16, 2, 2, &st, &err), MS_OK);
        ms_sim_opts o;
        ms_sim_opts_default(&o);
        o.cost_model = MS_COST_ROOFLINE;
        o.origin = MS_ORIGIN_DP;
        o.route = MS_ROUTE_LEAST_LOADED;
        o.hw = &hw;
        o.model = &m;
        o.throttle = &st;
        hook k = {NULL, &c, 1, 0, 0, 0};
        assert_int_equal(ms_power_phases_new(2, 1, &k.ph, &err), MS_OK);
        ms_sim_hooks hh = {on_step, &k};
        ms_sim_result *r = run(t, plan, p, &o, &hh);
        const ms_sim_record *x = &r->records[0];
        near(x->dense_us, 0.002 / f0, 1e-12);
        near(x->compute_us, 0.003 / f1, 1e-12);
        near(x->dispatch_us, disp, 1e-12);
        near(x->combine_us, comb, 1e-12);
        near(x->layer_us, 0.002 / f0 + disp + 0.003 / f1 + comb, 1e-12);
        near(x->throttled_us, 0.002 / f0 + 0.003 / f1 - 0.005, 1e-9);
        near(x->clock_min, f0 < f1 ? f0 : f1, 1e-12);
        near(x->clock_mean, (f0 + f1) / 2, 1e-12);
        assert_int_equal(x->cap_unmet, 0);
        near(r->dev_clock_mean[0], f0, 1e-12);
        near(r->dev_clock_min[1], f1, 1e-12);
        near(r->summary.throttled_share, 1, 0);
        /* the power model: FLOP energy x f, the busy times / f */
        ms_power_result *pr = NULL;
        assert_int_equal(ms_power_compute(k.ph, &c, &pr, &err), MS_OK);
        near(pr->energy_j[MS_PART_COMPUTE], 2e-7 * f0 + 3e-7 * f1, 1e-12);
        near(pr->energy_j[MS_PART_MEMORY], (200 + 700) * 8 * 0.375e-12, 1e-12);
        near(pr->wall_s, x->layer_us * 1e-6, 1e-12);
        near(pr->dev_active_s[0], (0.002 / f0 + disp + comb) * 1e-6, 1e-12); /* computes, then communicates */
        /* busiest power: idle + compute power at the clock = P(f) */
        double p0 = 10 + 100 * f0 * f0 + 0.3 * f0, p1 = 10 + 100 * f1 * f1 + 0.7 * f1;
        near(pr->dev_peak_w[0], p0, 1e-9);
        near(pr->dev_peak_w[1], p1, 1e-9);
        near(pr->peak_w, p0 + p1, 1e-9);
        if (mode == 0) {
            near(p0, 60, 1e-9);
            near(p1, 60, 1e-9);
        } else {
            near(p0 + p1, 100, 1e-9);
        }
        double sum = 0;
        for (int q = 0; q < MS_PART_COUNT; q++) sum += pr->energy_j[q];
        near(sum, pr->total_j, 1e-12);
        ms_power_result_free(pr);
        ms_power_phases_free(k.ph);
        ms_sim_result_free(r);
    }
    /* the mesh model has no FLOPs: caps are refused */
    ms_power_throttle th;
    ms_sim_throttle st;
    ms_power_cap cap;
    ms_power_cap_none(&cap);
    cap.gpu_w = 60;
    assert_int_equal(ms_power_throttle_init(&th, &c, &cap, MS_PREC_BF16, 2, 2, &st, &err), MS_OK);
    ms_sim_opts o;
    ms_sim_opts_default(&o);
    o.throttle = &st;
    ms_sim_result *r = NULL;
    assert_int_equal(ms_sim_run(t, plan, p, &o, NULL, &r, &err), MS_E_INPUT);
    assert_non_null(strstr(err.msg, "roofline"));
    /* a cap below idle cannot be met */
    cap.gpu_w = 5;
    assert_int_equal(ms_power_throttle_init(&th, &c, &cap, MS_PREC_BF16, 2, 2, &st, &err), MS_E_INPUT);
    ms_batch_plan_free(plan);
    ms_trace_free(t);
    ms_placement_free(p);
}

/* clock arrays in phases: validated, read from JSON, default 1 */
static void test_phase_clocks(void **state) {
    (void)state;
    ms_error err = {0};
    char path[512];
    tu_tmp_path("clock", ".json", path, sizeof path);
    const char *js = "{\"devices\": 2, \"phases\": [{\"wall_s\": 1, \"compute_s\": [1, 0.5], \"flops\": [1e12, 1e12], "
                     "\"hbm_bytes\": [0, 0], \"nvlink_bytes\": [0, 0], \"net_bytes\": [0, 0], \"clock\": [0.5, 1]}]}";
    tu_write_file(path, js, strlen(js));
    ms_power_phases *ph = NULL;
    assert_int_equal(ms_power_phases_read_json(path, &ph, &err), MS_OK);
    ms_energy_coeffs c;
    assert_int_equal(ms_energy_load("h100-sxm", &c, &err), MS_OK);
    ms_power_result *pr = NULL;
    assert_int_equal(ms_power_compute(ph, &c, &pr, &err), MS_OK);
    double e = 1e12 * c.pj_per_flop[MS_PREC_BF16] * 1e-12;
    near(pr->energy_j[MS_PART_COMPUTE], e * pow(0.5, c.freq_exponent - 1) + e, 1e-12);
    ms_power_result_free(pr);
    ms_power_phase v;
    ms_power_phases_get(ph, 0, &v);
    ((double *)v.clock)[1] = 1.5;
    assert_int_equal(ms_power_compute(ph, &c, &pr, &err), MS_E_INPUT);
    assert_non_null(strstr(err.msg, "clock"));
    ms_power_phases_free(ph);
    const char *js2 = "{\"devices\": 1, \"phases\": [{\"wall_s\": 1, \"compute_s\": [1], \"flops\": [1], "
                      "\"hbm_bytes\": [0], \"nvlink_bytes\": [0], \"net_bytes\": [0]}]}";
    tu_write_file(path, js2, strlen(js2));
    assert_int_equal(ms_power_phases_read_json(path, &ph, &err), MS_OK);
    ms_power_phases_get(ph, 0, &v);
    assert_true(v.clock[0] == 1.0);
    ms_power_phases_free(ph);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_infinite_cap_is_today),
        cmocka_unit_test(test_tighter_never_shortens),
        cmocka_unit_test(test_budget_redistribution),
        cmocka_unit_test(test_energy_parts_under_caps),
        cmocka_unit_test(test_two_devices_by_hand),
        cmocka_unit_test(test_phase_clocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
