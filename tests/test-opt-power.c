/* test-opt-power.c - the power objectives of `search`: the surrogate's clock
 * against the power stage's, its per-window time, power and energy against
 * the simulator and the power model (with and without a per-GPU cap, and a
 * cluster budget where no per-GPU cap binds), the search never worse than
 * its start on energy, peak-power, time-under-cap and mix, and the Pareto
 * answer holding no dominated point and covering the initial placement. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moesim/opt.h"
#include "moesim/place.h"
#include "moesim/power.h"
#include "moesim/sim.h"
#include "moesim/stats.h"
#include "moesim/trace.h"
#include "opt/surrogate.h"
#include "testutil.h"

static void near(double got, double want, double rel, const char *what) {
    if (!(fabs(got - want) <= rel * (fabs(want) > 1 ? fabs(want) : 1)))
        fail_msg("%s: got %.17g, want %.17g", what, got, want);
}

/* nreq requests of 1..maxlen tokens, skewed ids distinct per token */
static ms_trace *rand_trace(uint64_t seed, uint32_t layers, uint32_t E, uint32_t k, uint32_t nreq, uint32_t maxlen) {
    ms_rng r;
    ms_rng_seed(&r, seed);
    uint32_t *len = calloc(nreq, sizeof *len);
    uint64_t n = 0;
    for (uint32_t i = 0; i < nreq; i++) n += len[i] = 1 + (uint32_t)ms_rng_below(&r, maxlen);
    ms_trace *t = NULL;
    ms_error err = {0};
    assert_int_equal(ms_trace_new(layers, E, k, 0, nreq, n, &t, &err), MS_OK);
    for (uint32_t i = 0; i < nreq; i++) {
        t->tok_offset[i + 1] = t->tok_offset[i] + len[i];
        t->n_prompt[i] = len[i];
    }
    for (uint64_t i = 0; i < (uint64_t)layers * n; i++)
        for (uint32_t j = 0; j < k; j++) {
            uint16_t e;
            bool dup;
            do {
                double u = ms_rng_uniform(&r);
                e = (uint16_t)(u * u * u * E);
                dup = false;
                for (uint32_t q = 0; q < j; q++) dup |= t->experts[i * k + q] == e;
            } while (dup);
            t->experts[i * k + j] = e;
        }
    free(len);
    assert_int_equal(ms_trace_finish(t, &err), MS_OK);
    return t;
}

/* The surrogate's clock (tabulated + one Newton step, or Newton alone)
 * equals the power stage's root of idle + C f^alpha + M f = cap. */
static void test_clock(void **state) {
    (void)state;
    ms_energy_coeffs c;
    ms_error err = {0};
    assert_int_equal(ms_energy_load("h100-sxm", &c, &err), MS_OK);
    double *tab = sg_clock_table_new(c.freq_exponent, c.min_clock);
    assert_non_null(tab);
    sg_power pw;
    memset(&pw, 0, sizeof pw);
    pw.alpha = c.freq_exponent;
    pw.min_clock = c.min_clock;
    ms_rng r;
    ms_rng_seed(&r, 3);
    for (int i = 0; i < 20000; i++) {
        double C = 600 * ms_rng_uniform(&r), M = 200 * ms_rng_uniform(&r), cap = c.idle_w + 1 + 650 * ms_rng_uniform(&r);
        if (i % 7 == 0) M = 0;
        if (i % 11 == 0) C = 0;
        double want = ms_power_cap_clock(&c, cap, C, M);
        pw.clock_tab = tab;
        near(sg_clock(&pw, C, M, cap - c.idle_w), want, 1e-6, "tabulated clock");
        pw.clock_tab = NULL;
        near(sg_clock(&pw, C, M, cap - c.idle_w), want, 1e-10, "Newton clock");
    }
    ms_free(tab);
}

typedef struct hook {
    uint64_t nl;
    uint32_t D;
    double idle_w;
    const ms_energy_coeffs *c;
    double *power, *energy; /* [record]: idle + compute power of every device; compute + HBM energy */
} hook;

/* per record: sum over devices of idle + (FLOP x f^(alpha-1) + HBM energy) / busy, and that energy */
static void on_step(void *ctx, const ms_sim_step *s) {
    hook *h = ctx;
    uint64_t i = s->rec->batch * h->nl + s->rec->layer;
    double pw = 0, e = 0;
    for (uint32_t d = 0; d < s->n_devices; d++) {
        double f = s->clock ? s->clock[d] : 1;
        double ej = s->flops[d] * h->c->pj_per_flop[MS_PREC_BF16] * 1e-12 * pow(f, h->c->freq_exponent - 1) +
                    s->hbm_bytes[d] * 8 * h->c->hbm_pj_per_bit * 1e-12;
        pw += h->idle_w + (s->busy_us[d] > 0 ? ej / (s->busy_us[d] * 1e-6) : 0);
        e += ej;
    }
    h->power[i] = pw;
    h->energy[i] = e;
}

/* Per window, the surrogate's time (max dense + max expert compute,
 * throttled), power (every device at its compute power) and energy (compute
 * + HBM + idle over that time) equal what the simulator and the power
 * formulas give for the same batches: routes split and round-robin, no cap,
 * a per-GPU cap, and a cluster budget without a per-GPU cap (where the
 * surrogate's common clock scale is the simulator's common ceiling). */
static void test_surrogate_matches_sim(void **state) {
    (void)state;
    ms_hw_preset hw;
    ms_model_preset m;
    ms_energy_coeffs c;
    ms_error err = {0};
    assert_int_equal(ms_hw_preset_load("h100-sxm", &hw, &err), MS_OK);
    assert_int_equal(ms_model_preset_load("deepseek-v2-lite", &m, &err), MS_OK);
    assert_int_equal(ms_energy_load("h100-sxm", &c, &err), MS_OK);
    ms_trace *t = rand_trace(17, 1, 64, 6, 40, 300);
    ms_stats_opts sto;
    ms_stats_opts_default(&sto);
    ms_stats *stats = NULL;
    ms_loads *loads = NULL;
    assert_int_equal(ms_stats_compute(t, &sto, &stats, &err), MS_OK);
    assert_int_equal(ms_stats_to_loads(stats, &loads, &err), MS_OK);
    ms_place_opts po;
    tu_place_opts(&po, "eplb", 2, 4, 10);
    ms_placement *pe = tu_place_ok(loads, stats, &po), *p = NULL;
    /* replicas in ascending slot order (the surrogate's round-robin order) */
    assert_int_equal(ms_placement_new(1, &pe->cluster, pe->n_routed, false, &p, &err), MS_OK);
    memcpy(p->phy2log, pe->phy2log, p->n_phys * sizeof(int32_t));
    assert_int_equal(ms_placement_index(p, &err), MS_OK);
    ms_placement_free(pe);
    uint32_t D = 8, E = p->n_logical, P = p->n_phys;
    ms_batch_opts bo;
    ms_batch_opts_default(&bo);
    bo.mode = MS_BATCH_PREFILL;
    bo.batch_tokens = 1500;
    ms_batch_plan *plan = NULL;
    assert_int_equal(ms_batch_plan_build(t, &bo, D, &plan, &err), MS_OK);
    uint32_t B = (uint32_t)plan->n_batches;
    /* windows: counts per expert, and each device's dense work from first principles */
    uint32_t *cnt = calloc((size_t)B * E, sizeof *cnt), *ntok = calloc(B, sizeof *ntok);
    double *dense = calloc((size_t)3 * B * D, sizeof *dense);
    double pj = c.pj_per_flop[MS_PREC_BF16] * 1e-12, pb = 8 * c.hbm_pj_per_bit * 1e-12;
    double h = m.hidden, in = m.moe_intermediate, wb = m.expert_weight_bytes;
    double peak = hw.peak_tflops_bf16 * 1e6 * hw.mfu, hbm = hw.hbm_tb_s * 1e6 * hw.hbm_util; /* per us */
    double dparams = m.dense_params_per_layer + 3 * h * m.shared_intermediate * m.shared_experts;
    for (uint32_t b = 0; b < B; b++) {
        double ot[8] = {0};
        for (uint64_t q = plan->off[b]; q < plan->off[b + 1]; q++) {
            const uint16_t *ids = ms_trace_row(t, 0, plan->tok[q]);
            for (uint32_t j = 0; j < 6; j++) cnt[(size_t)b * E + ids[j]]++;
            ot[plan->origin[q]] += 1;
        }
        ntok[b] = (uint32_t)(plan->off[b + 1] - plan->off[b]);
        for (uint32_t d = 0; d < D; d++) {
            if (!ot[d]) continue;
            dense[(size_t)b * D + d] = fmax(ot[d] * 2 * dparams / peak, dparams * wb / hbm);
            dense[(size_t)B * D + b * D + d] = ot[d] * 2 * dparams * pj;
            dense[(size_t)2 * B * D + b * D + d] = dparams * wb * pb;
        }
    }
    double *tab = sg_clock_table_new(c.freq_exponent, c.min_clock);
    double *spow = calloc(B, sizeof *spow), *sene = calloc(B, sizeof *sene);
    const ms_route routes[2] = {MS_ROUTE_SPLIT, MS_ROUTE_ROUND_ROBIN};
    const sg_route sgr[2] = {SG_SPLIT, SG_RR};
    for (int ri = 0; ri < 2; ri++)
        for (int ci = 0; ci < 3; ci++) {
            ms_power_cap cap;
            ms_power_cap_none(&cap);
            if (ci == 1) cap.gpu_w = 260;
            if (ci == 2) cap.cluster_w = 8 * 230;
            ms_power_throttle th;
            ms_sim_throttle st;
            assert_int_equal(ms_power_throttle_init(&th, &c, &cap, MS_PREC_BF16, D, 4, &st, &err), MS_OK);
            ms_sim_opts so;
            ms_sim_opts_default(&so);
            so.cost_model = MS_COST_ROOFLINE;
            so.origin = MS_ORIGIN_DP;
            so.route = routes[ri];
            so.hw = &hw;
            so.model = &m;
            so.threads = 1;
            if (ci) so.throttle = &st;
            hook hk = {1, D, c.idle_w, &c, spow, sene};
            ms_sim_hooks hooks = {on_step, &hk};
            ms_sim_result *res = NULL;
            assert_int_equal(ms_sim_run(t, plan, p, &so, &hooks, &res, &err), MS_OK);
            if (ci) assert_true(res->summary.throttled_us > 0); /* the caps bind */
            for (int k = 0; k < 3; k++) {
                sg_params prm;
                memset(&prm, 0, sizeof prm);
                prm.cl = p->cluster;
                prm.n_routed = p->n_routed;
                prm.n_logical = E;
                prm.shared_id = -1;
                prm.route = sgr[ri];
                prm.keff = 6;
                prm.n_inst = P;
                prm.unit = SG_ROOF;
                prm.tok_flops_us = 6 * h * in / peak;
                prm.inst_bytes_us = 3 * h * in * wb / hbm;
                prm.tok_bytes_us = 4 * h / hbm;
                prm.time_weights = true;
                sg_power pw;
                memset(&pw, 0, sizeof pw);
                pw.tok_flop_j = 6 * h * in * pj;
                pw.tok_hbm_j = 4 * h * pb;
                pw.inst_hbm_j = 3 * h * in * wb * pb;
                pw.idle_w = c.idle_w;
                pw.alpha = c.freq_exponent;
                pw.min_clock = c.min_clock;
                pw.gpu_w = cap.gpu_w;
                pw.row_w = cap.row_w;
                pw.cluster_w = cap.cluster_w;
                pw.w[k] = 1;
                pw.norm[0] = pw.norm[1] = pw.norm[2] = 1;
                pw.peak_tail = 1;
                pw.clock_tab = tab;
                prm.pw = &pw;
                sg_data sd = {B, cnt, ntok, NULL, NULL, NULL, dense, dense + (size_t)B * D, dense + (size_t)2 * B * D};
                sg_state *s = NULL;
                assert_int_equal(sg_new(&prm, &sd, p->phy2log, &s, &err), MS_OK);
                double sum = 0;
                for (uint32_t b = 0; b < B; b++) {
                    const ms_sim_record *x = &res->records[b];
                    double tm = x->dense_us + x->compute_us, want = k == 0 ? tm : k == 1 ? spow[b]
                                                                              : sene[b] + c.idle_w * D * tm * 1e-6;
                    char what[64];
                    snprintf(what, sizeof what, "route %d cap %d metric %d window %u", ri, ci, k, b);
                    /* fixed point: times round at 2^-16 us, split shares at 2^-16 of an assignment */
                    near(sg_window_value(s, b), want, ri == 0 ? 1e-5 : 1e-6, what);
                    sum += want;
                }
                double agg[3];
                sg_metrics(s, agg);
                near(agg[k], sum / B, ri == 0 ? 1e-5 : 1e-6, "aggregate");
                sg_free(s);
            }
            ms_sim_result_free(res);
        }
    free(spow);
    free(sene);
    ms_free(tab);
    free(cnt);
    free(ntok);
    free(dense);
    ms_batch_plan_free(plan);
    ms_placement_free(p);
    ms_loads_free(loads);
    ms_stats_free(stats);
    ms_trace_free(t);
}

static void opts(ms_search_opts *o, ms_route route, ms_search_objective obj) {
    ms_search_opts_default(o);
    o->place.cluster = (ms_cluster){2, 2, 8};
    o->place.lp_bound = false;
    o->sim.route = route;
    o->sim.cost_model = MS_COST_ROOFLINE;
    o->objective = obj;
    o->batch.mode = MS_BATCH_PREFILL;
    o->batch.batch_tokens = 400;
    o->iterations = 3000;
    o->time_limit_s = 120;
    o->model_name = "deepseek-v2-lite";
    o->threads = 1;
    o->seed = 2;
}

/* The value of objective obj from metrics (mix over the init's). */
static double value_of(const ms_search_opts *o, const ms_search_metrics *m, const ms_search_metrics *m0) {
    switch (o->objective) {
    case MS_OBJ_ENERGY: return m->energy_per_token_j;
    case MS_OBJ_PEAK_POWER: return m->peak_w;
    case MS_OBJ_TIME_UNDER_CAP: return m->layer_us_mean;
    case MS_OBJ_MIX:
        return o->mix[0] * m->layer_us_mean / m0->layer_us_mean + o->mix[1] * m->peak_w / m0->peak_w +
               o->mix[2] * m->energy_per_token_j / m0->energy_per_token_j;
    default: return NAN;
    }
}

/* Every power objective: the result is never worse than the initial
 * placement, its reported objective is what the simulation and the power
 * model say (ms_search_evaluate, independently), and time-under-cap under a
 * binding cap is the capped layer time. */
static void test_search_power_not_worse(void **state) {
    (void)state;
    const struct {
        ms_route route;
        ms_search_objective obj;
        double gpu_cap, cluster_kw;
    } cases[] = {
        {MS_ROUTE_ROUND_ROBIN, MS_OBJ_ENERGY, NAN, INFINITY},
        {MS_ROUTE_SPLIT, MS_OBJ_PEAK_POWER, NAN, INFINITY},
        {MS_ROUTE_LEAST_LOADED, MS_OBJ_PEAK_POWER, NAN, INFINITY},
        {MS_ROUTE_ROUND_ROBIN, MS_OBJ_TIME_UNDER_CAP, 240, INFINITY},
        {MS_ROUTE_LEAST_LOADED, MS_OBJ_TIME_UNDER_CAP, INFINITY, 0.8},
        {MS_ROUTE_BALANCED, MS_OBJ_MIX, 300, INFINITY},
    };
    bool improved = false;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ms_trace *t = rand_trace(300 + i, 2, 24, 4, 50, 60);
        ms_search_opts o;
        opts(&o, cases[i].route, cases[i].obj);
        o.cap.gpu_w = cases[i].gpu_cap;
        o.cap.cluster_w = cases[i].cluster_kw * 1e3;
        o.cap_set = true;
        o.mix[0] = 0.5, o.mix[1] = 0.3, o.mix[2] = 0.2;
        ms_error err = {0};
        ms_placement *out = NULL, *init = NULL;
        ms_status st = ms_search_run(t, NULL, &o, &out, &err);
        if (st != MS_OK) fail_msg("case %zu: %s", i, err.msg);
        ms_stats_opts sto;
        ms_stats_opts_default(&sto);
        ms_stats *stats = NULL;
        ms_loads *loads = NULL;
        assert_int_equal(ms_stats_compute(t, &sto, &stats, &err), MS_OK);
        assert_int_equal(ms_stats_to_loads(stats, &loads, &err), MS_OK);
        ms_place_input in = {loads, stats, t->digest};
        ms_place_opts po = o.place;
        po.algo = "eplb";
        assert_int_equal(ms_place_run(&in, &po, &init, &err), MS_OK);
        ms_search_metrics m0, m1;
        assert_int_equal(ms_search_evaluate(t, init, &o, &m0, &err), MS_OK);
        assert_int_equal(ms_search_evaluate(t, out, &o, &m1, &err), MS_OK);
        double f0 = value_of(&o, &m0, &m0), f1 = value_of(&o, &m1, &m0);
        if (!(f1 <= f0 * (1 + 1e-12))) fail_msg("case %zu: %.9g worse than init %.9g", i, f1, f0);
        near(out->objective, f1, 1e-9, "reported objective");
        improved |= f1 < f0 * (1 - 1e-6);
        if (o.objective == MS_OBJ_TIME_UNDER_CAP) assert_true(m1.throttled_us > 0 || m0.throttled_us > 0);
        assert_int_equal(ms_placement_check(out, &err), MS_OK);
        ms_placement_free(out);
        ms_placement_free(init);
        ms_stats_free(stats);
        ms_loads_free(loads);
        ms_trace_free(t);
    }
    assert_true(improved); /* the search does find something */
}

static void test_power_options(void **state) {
    (void)state;
    ms_search_opts o;
    ms_search_opts_default(&o);
    ms_error err = {0};
    ms_search_objective ob;
    assert_int_equal(ms_search_objective_parse("peak-power", &ob, &err), MS_OK);
    assert_int_equal(ob, MS_OBJ_PEAK_POWER);
    assert_string_equal(ms_search_objective_name(MS_OBJ_TIME_UNDER_CAP), "time-under-cap");
    assert_int_equal(ms_search_opts_set(&o, "gpu-power-cap", "300", &err), MS_OK);
    assert_true(o.cap.gpu_w == 300 && o.cap_set);
    assert_int_equal(ms_search_opts_set(&o, "cluster-power-cap", "12.5", &err), MS_OK);
    assert_true(o.cap.cluster_w == 12500);
    assert_int_equal(ms_search_opts_set(&o, "row-power-cap", "none", &err), MS_OK);
    assert_true(isinf(o.cap.row_w));
    assert_int_equal(ms_search_opts_set(&o, "gpu-power-cap", "-3", &err), MS_E_INPUT);
    assert_int_equal(ms_search_opts_set(&o, "mix", "1,2,3", &err), MS_OK);
    assert_true(o.mix[1] == 2);
    assert_int_equal(ms_search_opts_set(&o, "mix", "0,0,0", &err), MS_E_INPUT);
    assert_int_equal(ms_search_opts_set(&o, "mix", "1,2", &err), MS_E_INPUT);
    /* power objectives need the roofline model */
    ms_trace *t = rand_trace(5, 1, 12, 2, 10, 10);
    opts(&o, MS_ROUTE_ROUND_ROBIN, MS_OBJ_ENERGY);
    o.sim.cost_model = MS_COST_MESH;
    ms_placement *out = NULL;
    assert_int_equal(ms_search_run(t, NULL, &o, &out, &err), MS_E_INPUT);
    assert_non_null(strstr(err.msg, "roofline"));
    assert_null(out);
    ms_trace_free(t);
}

/* A Pareto answer: no point on the front is dominated by any point, every
 * point off it is (checked here, independently of ms_pareto_dominates),
 * the front holds a point at least as good as the initial placement on
 * every axis, and each point's metrics are its simulation's. */
static bool dominated_by(const ms_search_metrics *a, const ms_search_metrics *b, const ms_pareto_axis *ax, uint32_t n) {
    /* b dominates a: b <= a everywhere, < somewhere */
    int le = 0, lt = 0;
    for (uint32_t i = 0; i < n; i++) {
        double x = ax[i] == MS_AXIS_TIME ? a->layer_us_mean : ax[i] == MS_AXIS_PEAK ? a->peak_w : a->energy_per_token_j;
        double y = ax[i] == MS_AXIS_TIME ? b->layer_us_mean : ax[i] == MS_AXIS_PEAK ? b->peak_w : b->energy_per_token_j;
        le += y <= x;
        lt += y < x;
    }
    return le == (int)n && lt > 0;
}

static void test_pareto(void **state) {
    (void)state;
    ms_error err = {0};
    ms_pareto_axis ax[3];
    uint32_t na = 0;
    assert_int_equal(ms_pareto_axes_parse("time,peak-power", ax, &na, &err), MS_OK);
    assert_true(na == 2 && ax[0] == MS_AXIS_TIME && ax[1] == MS_AXIS_PEAK);
    assert_int_equal(ms_pareto_axes_parse("energy,time,peak-power", ax, &na, &err), MS_OK);
    assert_int_equal(na, 3);
    const char *bad[] = {"time", "time,time", "time,", ",time", "time,watts", "", "time,energy,peak-power,time"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(ms_pareto_axes_parse(bad[i], ax, &na, &err), MS_E_INPUT);
    ms_trace *t = rand_trace(41, 2, 24, 4, 50, 60);
    ms_stats_opts sto;
    ms_stats_opts_default(&sto);
    sto.coact = true;
    ms_stats *stats = NULL;
    ms_loads *loads = NULL;
    assert_int_equal(ms_stats_compute(t, &sto, &stats, &err), MS_OK);
    assert_int_equal(ms_stats_to_loads(stats, &loads, &err), MS_OK);
    ms_place_input in = {loads, stats, t->digest};
    for (int three = 0; three < 2; three++) {
        ms_search_opts o;
        opts(&o, MS_ROUTE_LEAST_LOADED, MS_OBJ_MIX);
        o.iterations = 1500;
        ms_pareto_opts po;
        memset(&po, 0, sizeof po);
        assert_int_equal(ms_pareto_axes_parse(three ? "time,peak-power,energy" : "time,peak-power", po.axes,
                                              &po.n_axes, &err),
                         MS_OK);
        ms_pareto *pr = NULL;
        ms_status st = ms_pareto_run(t, &in, &o, &po, &pr, &err);
        if (st != MS_OK) fail_msg("%s", err.msg);
        size_t nsearch = 0, ninit = 0, nfront = 0;
        const ms_pareto_point *init = NULL;
        for (size_t i = 0; i < pr->n; i++) {
            const ms_pareto_point *x = &pr->pts[i];
            nsearch += strcmp(x->source, "search") == 0;
            if (strcmp(x->source, "init") == 0) ninit++, init = x;
            nfront += x->front;
            bool dom = false;
            for (size_t j = 0; j < pr->n; j++) dom |= j != i && dominated_by(&x->m, &pr->pts[j].m, po.axes, po.n_axes);
            assert_true(dom == !x->front);
            assert_int_equal(ms_placement_check(x->placement, &err), MS_OK);
        }
        assert_int_equal(nsearch, three ? 7 : 5);
        assert_int_equal(ninit, 1);
        assert_true(nfront >= 1 && pr->n > nsearch + 3); /* other algorithms too */
        bool covered = false;
        for (size_t i = 0; i < pr->n; i++) {
            if (!pr->pts[i].front) continue;
            bool ok = true;
            for (uint32_t a = 0; a < po.n_axes; a++)
                ok &= ms_pareto_axis_value(&pr->pts[i].m, po.axes[a]) <= ms_pareto_axis_value(&init->m, po.axes[a]);
            covered |= ok;
        }
        assert_true(covered);
        /* a point's metrics are its own simulation's */
        ms_search_metrics m;
        const ms_pareto_point *x = &pr->pts[pr->n - 1];
        assert_int_equal(ms_search_evaluate(t, x->placement, &o, &m, &err), MS_OK);
        assert_true(m.peak_w == x->m.peak_w && m.layer_us_mean == x->m.layer_us_mean &&
                    m.energy_per_token_j == x->m.energy_per_token_j);
        ms_pareto_free(pr);
    }
    ms_loads_free(loads);
    ms_stats_free(stats);
    ms_trace_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clock),
        cmocka_unit_test(test_surrogate_matches_sim),
        cmocka_unit_test(test_search_power_not_worse),
        cmocka_unit_test(test_power_options),
        cmocka_unit_test(test_pareto),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
