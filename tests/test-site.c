/* test-site.c - the site budget: replicas by hand (floor), wall power, EP
 * imbalance on hand-made traces and recomputed directly on the real
 * DeepSeek-V2-Lite trace, the deployment study (replicas, winners as an
 * independent argmax, monotone in budget and in imbalance, refusals) and the
 * site answers of `scale`. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "moesim/deploy.h"

#define NEAR(a, b) assert_true(fabs((double)(a) - (double)(b)) <= 1e-9 * fmax(1.0, fabs((double)(b))))

static void test_fit_by_hand(void **state) {
    (void)state;
    ms_site_fit f;
    ms_error err = {0};
    /* 1 MW / 250 kW = 4 replicas exactly; 1 MW / 300 kW = 3.33 -> 3 */
    assert_int_equal(ms_site_fit_eval(1, 250e3, 8, 1000, &f, &err), MS_OK);
    assert_int_equal(f.replicas, 4);
    assert_int_equal(f.gpus, 32);
    NEAR(f.tokens_per_s, 4000);
    NEAR(f.tokens_per_s_per_mw, 4000);
    NEAR(f.used_mw, 1.0);
    assert_int_equal(ms_site_fit_eval(1, 300e3, 8, 1000, &f, &err), MS_OK);
    assert_int_equal(f.replicas, 3);
    NEAR(f.tokens_per_s, 3000);
    NEAR(f.used_mw, 0.9);
    /* 10 MW / (10 MW / 7): 7, not 6.999...; a replica larger than the site: none */
    assert_int_equal(ms_site_fit_eval(10, 10e6 / 7.0, 1, 1, &f, &err), MS_OK);
    assert_int_equal(f.replicas, 7);
    assert_int_equal(ms_site_fit_eval(0.5, 600e3, 1, 1, &f, &err), MS_OK);
    assert_int_equal(f.replicas, 0);
    NEAR(f.tokens_per_s, 0);
    /* bad input */
    static const double bad_site[] = {0, -1, NAN, INFINITY};
    for (size_t i = 0; i < sizeof bad_site / sizeof bad_site[0]; i++)
        assert_int_equal(ms_site_fit_eval(bad_site[i], 1e3, 1, 1, &f, &err), MS_E_INPUT);
    assert_int_equal(ms_site_fit_eval(1, 0, 1, 1, &f, &err), MS_E_INPUT);
    assert_int_equal(ms_site_fit_eval(1, -5, 1, 1, &f, &err), MS_E_INPUT);
    assert_int_equal(ms_site_fit_eval(1, 1e3, 1, -1, &f, &err), MS_E_INPUT);
    /* wall power and provisioning by hand */
    ms_energy_coeffs c;
    memset(&c, 0, sizeof c);
    c.node_overhead_w = 400;
    c.pue = 1.25;
    c.tdp_w = 700;
    NEAR(ms_site_wall_w(&c, 8, 3000), (3000 + 8 * 400) * 1.25);
    NEAR(ms_site_provisioned_w(&c, MS_PROVISION_TDP, 8, 3000), 8 * 700);
    NEAR(ms_site_provisioned_w(&c, MS_PROVISION_MEASURED, 8, 3000), 3000);
    ms_provision p;
    assert_int_equal(ms_provision_parse("tdp", &p, &err), MS_OK);
    assert_int_equal(p, MS_PROVISION_TDP);
    assert_int_equal(ms_provision_parse("nameplate", &p, &err), MS_E_INPUT);
}

/* more budget never fewer tokens/s: random replica sizes, sites in order */
static void test_fit_monotone(void **state) {
    (void)state;
    ms_rng r;
    ms_rng_seed(&r, 7);
    ms_error err = {0};
    for (int t = 0; t < 2000; t++) {
        double rw = 1e3 + ms_rng_uniform(&r) * 1e7, tps = ms_rng_uniform(&r) * 1e6;
        double a = 0.01 + ms_rng_uniform(&r) * 100, b = a * (1 + ms_rng_uniform(&r));
        ms_site_fit fa, fb;
        assert_int_equal(ms_site_fit_eval(a, rw, 4, tps, &fa, &err), MS_OK);
        assert_int_equal(ms_site_fit_eval(b, rw, 4, tps, &fb, &err), MS_OK);
        assert_true(fb.replicas >= fa.replicas && fb.tokens_per_s >= fa.tokens_per_s);
        assert_true(fa.used_mw <= a * (1 + 1e-9));
        /* floor: one more replica would not fit */
        assert_true((fa.replicas + 1) * rw > a * 1e6 * (1 - 1e-9));
    }
}

/* a trace of one request: tokens[w][i] = expert of token i in window w (1 layer, top-1) */
static ms_trace *hand_trace(uint32_t E, uint32_t n, const uint16_t *ids) {
    ms_trace *t = NULL;
    ms_error err = {0};
    assert_int_equal(ms_trace_new(1, E, 1, 0, 1, n, &t, &err), MS_OK);
    t->tok_offset[1] = n;
    t->n_prompt[0] = n;
    memcpy(t->experts, ids, n * sizeof *ids);
    assert_int_equal(ms_trace_finish(t, &err), MS_OK);
    return t;
}

static void test_imbalance_by_hand(void **state) {
    (void)state;
    /* 4 experts; window 1 loads (3, 1, 0, 0), window 2 loads (1, 1, 1, 1) */
    static const uint16_t ids[8] = {0, 0, 1, 0, 0, 1, 2, 3};
    ms_trace *t = hand_trace(4, 8, ids);
    ms_error err = {0};
    double x;
    /* 2 ranks, contiguous {0,1} {2,3}: window 1: 4 / 2 = 2; window 2: 2 / 2 = 1; mean 1.5 */
    assert_int_equal(ms_ep_imbalance(t, 2, 4, MS_EP_CONTIGUOUS, &x, &err), MS_OK);
    NEAR(x, 1.5);
    /* round-robin {0,2} {1,3}: window 1: 3 / 2; window 2: 1 -> 1.25 */
    assert_int_equal(ms_ep_imbalance(t, 2, 4, MS_EP_ROUND_ROBIN, &x, &err), MS_OK);
    NEAR(x, 1.25);
    /* 4 ranks: 3 / 1 and 1 -> 2; 8 ranks (2 replicas of each expert): the same */
    assert_int_equal(ms_ep_imbalance(t, 4, 4, MS_EP_CONTIGUOUS, &x, &err), MS_OK);
    NEAR(x, 2);
    assert_int_equal(ms_ep_imbalance(t, 8, 4, MS_EP_CONTIGUOUS, &x, &err), MS_OK);
    NEAR(x, 2);
    /* the whole trace as one window: loads (4, 2, 1, 1), 2 ranks: 6 / 4 */
    assert_int_equal(ms_ep_imbalance(t, 2, 0, MS_EP_CONTIGUOUS, &x, &err), MS_OK);
    NEAR(x, 1.5);
    assert_int_equal(ms_ep_imbalance(t, 2, 1000, MS_EP_CONTIGUOUS, &x, &err), MS_OK);
    NEAR(x, 1.5);
    /* one rank: 1 */
    assert_int_equal(ms_ep_imbalance(t, 1, 4, MS_EP_CONTIGUOUS, &x, &err), MS_OK);
    NEAR(x, 1);
    /* refusals: no ranks, 6 ranks for 4 experts */
    assert_int_equal(ms_ep_imbalance(t, 0, 4, MS_EP_CONTIGUOUS, &x, &err), MS_E_INPUT);
    assert_int_equal(ms_ep_imbalance(t, 6, 4, MS_EP_CONTIGUOUS, &x, &err), MS_E_INPUT);
    ms_ep_layout l;
    assert_int_equal(ms_ep_layout_parse("round-robin", &l, &err), MS_OK);
    assert_int_equal(l, MS_EP_ROUND_ROBIN);
    assert_int_equal(ms_ep_layout_parse("random", &l, &err), MS_E_INPUT);
    ms_trace_free(t);
}

/* the real trace: ms_ep_imbalance against a direct count over its rows */
static void test_imbalance_real(void **state) {
    (void)state;
    char buf[1024];
    const char *dir = tu_data_dir("deepseek-v2-lite-puffin", buf, sizeof buf);
    if (!dir) skip();
    ms_trace *t = NULL;
    ms_error err = {0};
    ms_trace_load_opts lo = {0};
    assert_int_equal(ms_trace_load(&dir, 1, &lo, &t, &err), MS_OK);
    uint32_t E = t->n_experts, L = t->n_layers;
    static const uint32_t ranks[] = {2, 8, 16, 64};
    static const uint64_t wins[] = {256, 4096};
    double prev[2] = {1, 1};
    for (size_t ri = 0; ri < sizeof ranks / sizeof ranks[0]; ri++)
        for (size_t wi = 0; wi < 2; wi++) {
            uint32_t R = ranks[ri];
            uint64_t W = wins[wi], nw = t->n_tokens / W;
            double *load = calloc(R, sizeof *load), sum = 0;
            uint64_t n = 0;
            for (uint64_t w = 0; w < nw; w++)
                for (uint32_t l = 0; l < L; l++) {
                    memset(load, 0, R * sizeof *load);
                    for (uint64_t tok = w * W; tok < (w + 1) * W; tok++) {
                        const uint16_t *row = ms_trace_row(t, l, tok);
                        for (uint32_t j = 0; j < t->top_k; j++) load[row[j] / (E / R)] += 1;
                    }
                    double mx = 0;
                    for (uint32_t g = 0; g < R; g++) mx = fmax(mx, load[g]);
                    sum += mx / ((double)W * t->top_k / R);
                    n++;
                }
            free(load);
            double x;
            assert_int_equal(ms_ep_imbalance(t, R, W, MS_EP_CONTIGUOUS, &x, &err), MS_OK);
            NEAR(x, sum / n);
            assert_true(x >= 1 && x <= R);
            /* more ranks, more skew (fewer experts averaging each rank) */
            assert_true(x >= prev[wi]);
            prev[wi] = x;
        }
    ms_trace_free(t);
}

static ms_deploy_hw hw_of(const ms_deploy_preset *ps) {
    ms_deploy_hw hw;
    ms_error err = {0};
    memset(&hw, 0, sizeof hw);
    hw.gpus_per_node = ps->gpus_per_node;
    assert_int_equal(ms_hw_preset_load(ps->gpu, &hw.gpu, &err), MS_OK);
    assert_int_equal(ms_energy_load(ps->energy[0] ? ps->energy : ps->gpu, &hw.energy, &err), MS_OK);
    return hw;
}

static ms_site_opts sites3(ms_provision p) {
    ms_site_opts so;
    memset(&so, 0, sizeof so);
    so.n_sites = 3;
    so.site_mw[0] = 10;
    so.site_mw[1] = 100;
    so.site_mw[2] = 1000;
    so.provision = p;
    return so;
}

/* replicas = floor(site / wall power of one replica), winner = argmax, both
 * recomputed here; more budget never serves less */
static void check_study(const ms_deploy_site *s, const ms_deploy_hw *hw) {
    const ms_energy_coeffs *c = &hw->energy;
    for (int k = 0; k < MS_SITE_CASES; k++) {
        for (uint32_t j = 0; j < s->opts.n_sites; j++) {
            int32_t best = -1;
            double bt = -1;
            for (uint32_t i = 0; i < s->n_plans; i++) {
                const ms_deploy_site_plan *x = &s->plans[k][i];
                const ms_deploy_site_plan *b = &s->plans[MS_SITE_BALANCED][i];
                double gpu_w = s->opts.provision == MS_PROVISION_TDP ? x->r.gpus * c->tdp_w
                               : k == MS_SITE_BALANCED               ? b->r.peak_w
                                                                     : fmax(b->r.peak_w, x->r.peak_w);
                double rw = (gpu_w + x->r.gpus * c->node_overhead_w) * c->pue;
                NEAR(x->replica_site_w, rw);
                const ms_site_fit *f = &x->fit[j];
                uint64_t want = x->r.fits ? (uint64_t)floor(s->opts.site_mw[j] * 1e6 / rw * (1 + 1e-12)) : 0;
                assert_int_equal(f->replicas, want);
                NEAR(f->tokens_per_s, want * (x->r.fits ? x->r.tokens_per_s : 0));
                if (j > 0) assert_true(f->tokens_per_s >= x->fit[j - 1].tokens_per_s);
                if (f->replicas && f->tokens_per_s > bt) {
                    bt = f->tokens_per_s;
                    best = (int32_t)i;
                }
            }
            assert_int_equal(s->winner[k][j], best);
        }
    }
}

static void test_deploy_study(void **state) {
    (void)state;
    ms_deploy_preset ps;
    ms_error err = {0};
    assert_int_equal(ms_deploy_preset_load("seed-4layer", &ps, &err), MS_OK);
    ms_deploy_hw hw = hw_of(&ps);
    for (int pv = 0; pv < 2; pv++) {
        ms_site_opts so = sites3(pv ? MS_PROVISION_TDP : MS_PROVISION_MEASURED);
        ms_skew sk;
        ms_skew_default(&sk);
        /* more imbalance never serves more, at any site */
        double prev[MS_DEPLOY_MAX_PLANS][MS_SITE_MAX];
        static const double grid[] = {1, 1.1, 1.25, 1.5, 2, 3, 4, 8, 16};
        for (size_t g = 0; g < sizeof grid / sizeof grid[0]; g++) {
            sk.imbalance = grid[g];
            ms_deploy_site *s = NULL;
            assert_int_equal(ms_deploy_site_run(&ps.model, &ps.workload, &hw, ps.plans, ps.n_plans, &so, &sk, &s, &err),
                             MS_OK);
            check_study(s, &hw);
            for (uint32_t i = 0; i < s->n_plans; i++)
                for (uint32_t j = 0; j < so.n_sites; j++) {
                    double t = s->plans[MS_SITE_SKEWED][i].fit[j].tokens_per_s;
                    assert_true(t <= s->plans[MS_SITE_BALANCED][i].fit[j].tokens_per_s);
                    if (g) assert_true(t <= prev[i][j]);
                    prev[i][j] = t;
                }
            /* the TP baseline has no EP skew: identical in both cases */
            NEAR(s->plans[MS_SITE_SKEWED][0].fit[0].tokens_per_s, s->plans[MS_SITE_BALANCED][0].fit[0].tokens_per_s);
            NEAR(s->plans[MS_SITE_SKEWED][0].imbalance, 1);
            NEAR(s->plans[MS_SITE_SKEWED][1].imbalance, grid[g]);
            if (pv == 1) /* at TDP both plans use 16 GPUs: the same replicas, the faster wins */
                assert_int_equal(s->plans[MS_SITE_BALANCED][0].fit[0].replicas,
                                 s->plans[MS_SITE_BALANCED][1].fit[0].replicas);
            char v[4096];
            ms_deploy_site_verdict(s, v, sizeof v);
            assert_non_null(strstr(v, "At 10 MW"));
            ms_deploy_site_free(s);
        }
    }
    /* refusals: no site, a zero or negative site, imbalance below 1 or above ep, too many sites */
    ms_site_opts so = sites3(MS_PROVISION_MEASURED);
    ms_skew sk;
    ms_skew_default(&sk);
    ms_deploy_site *s = NULL;
    so.site_mw[1] = 0;
    assert_int_equal(ms_deploy_site_run(&ps.model, &ps.workload, &hw, ps.plans, 2, &so, &sk, &s, &err), MS_E_INPUT);
    so.site_mw[1] = -3;
    assert_int_equal(ms_deploy_site_run(&ps.model, &ps.workload, &hw, ps.plans, 2, &so, &sk, &s, &err), MS_E_INPUT);
    so = sites3(MS_PROVISION_MEASURED);
    so.n_sites = 0;
    assert_int_equal(ms_deploy_site_run(&ps.model, &ps.workload, &hw, ps.plans, 2, &so, &sk, &s, &err), MS_E_INPUT);
    so.n_sites = MS_SITE_MAX + 1;
    assert_int_equal(ms_deploy_site_run(&ps.model, &ps.workload, &hw, ps.plans, 2, &so, &sk, &s, &err), MS_E_INPUT);
    so = sites3(MS_PROVISION_MEASURED);
    sk.imbalance = 0.5;
    assert_int_equal(ms_deploy_site_run(&ps.model, &ps.workload, &hw, ps.plans, 2, &so, &sk, &s, &err), MS_E_INPUT);
    sk.imbalance = NAN;
    assert_int_equal(ms_deploy_site_run(&ps.model, &ps.workload, &hw, ps.plans, 2, &so, &sk, &s, &err), MS_E_INPUT);
    sk.imbalance = 17; /* above ep 16 */
    assert_int_equal(ms_deploy_site_run(&ps.model, &ps.workload, &hw, ps.plans, 2, &so, &sk, &s, &err), MS_E_INPUT);
    assert_null(s);
    /* a trace whose expert count differs from the model's */
    static const uint16_t ids[4] = {0, 1, 2, 3};
    ms_trace *t = hand_trace(4, 4, ids);
    ms_skew_default(&sk);
    sk.trace = t;
    assert_int_equal(ms_deploy_site_run(&ps.model, &ps.workload, &hw, ps.plans, 2, &so, &sk, &s, &err), MS_E_INPUT);
    assert_non_null(strstr(err.msg, "experts"));
    ms_trace_free(t);
}

/* the V2-Lite preset with the skew of its own trace */
static void test_deploy_trace(void **state) {
    (void)state;
    char buf[1024];
    const char *dir = tu_data_dir("deepseek-v2-lite-puffin", buf, sizeof buf);
    if (!dir) skip();
    ms_deploy_preset ps;
    ms_error err = {0};
    assert_int_equal(ms_deploy_preset_load("deepseek-v2-lite-a100", &ps, &err), MS_OK);
    ms_deploy_hw hw = hw_of(&ps);
    ms_trace *t = NULL;
    ms_trace_load_opts lo = {0};
    assert_int_equal(ms_trace_load(&dir, 1, &lo, &t, &err), MS_OK);
    ms_site_opts so = sites3(MS_PROVISION_MEASURED);
    ms_skew sk;
    ms_skew_default(&sk);
    sk.trace = t;
    ms_deploy_site *s = NULL;
    assert_int_equal(ms_deploy_site_run(&ps.model, &ps.workload, &hw, ps.plans, ps.n_plans, &so, &sk, &s, &err), MS_OK);
    check_study(s, &hw);
    for (uint32_t i = 0; i < s->n_plans; i++) {
        const ms_deploy_site_plan *x = &s->plans[MS_SITE_SKEWED][i];
        if (x->r.plan.ep == 1) {
            NEAR(x->imbalance, 1);
            continue;
        }
        /* measured at the plan's own EP degree and micro-batch */
        const ms_deploy_result *b = &s->plans[MS_SITE_BALANCED][i].r;
        uint64_t win = b->micro_batch / b->plan.dp * b->chunk;
        if (win > t->n_tokens) win = t->n_tokens;
        assert_int_equal(x->window, win);
        double want;
        assert_int_equal(ms_ep_imbalance(t, x->r.plan.ep, win, MS_EP_CONTIGUOUS, &want, &err), MS_OK);
        NEAR(x->imbalance, want);
        assert_true(x->imbalance > 1);
        for (uint32_t j = 0; j < so.n_sites; j++)
            assert_true(x->fit[j].tokens_per_s < s->plans[MS_SITE_BALANCED][i].fit[j].tokens_per_s);
    }
    ms_deploy_site_free(s);
    ms_trace_free(t);
}

static void scale_opts(ms_scale_opts *o) {
    ms_scale_opts_default(o);
    ms_error err = {0};
    assert_int_equal(ms_hw_preset_load("a100", &o->gpu, &err), MS_OK);
    assert_int_equal(ms_energy_load("a100", &o->energy, &err), MS_OK);
}

static void test_scale_sites(void **state) {
    (void)state;
    ms_scale_opts o;
    scale_opts(&o);
    o.skew.imbalance = 1.5;
    ms_error err = {0};
    const ms_energy_coeffs *c = &o.energy;
    for (int pv = 0; pv < 2; pv++) {
        o.provision = pv ? MS_PROVISION_TDP : MS_PROVISION_MEASURED;
        ms_scale_result *r = NULL;
        assert_int_equal(ms_scale_run(&o, &r, &err), MS_OK);
        assert_int_equal(r->n_sites, 3);
        for (int k = 0; k < MS_SITE_CASES; k++) {
            const ms_scale_point *pts = k ? r->skew_points : r->points;
            for (uint32_t j = 0; j < 3; j++) {
                const ms_scale_site *z = &r->sites[k][j];
                int32_t best = -1, qual = -1;
                double top = 0;
                for (uint32_t i = 0; i < r->n_points; i++) {
                    const ms_scale_point *p = &pts[i];
                    double gw = pv ? p->gpus_infer * c->tdp_w
                                   : fmax(r->points[i].infer_peak_w, k ? p->infer_peak_w : 0);
                    double rw = (gw + p->gpus_infer * c->node_overhead_w) * c->pue;
                    const ms_site_fit *f = &z->fits[i];
                    NEAR(f->replica_site_w, rw);
                    assert_int_equal(f->replicas, (uint64_t)floor(o.site_mw[j] * 1e6 / rw * (1 + 1e-12)));
                    NEAR(f->tokens_per_s, f->replicas * p->infer_tokens_per_s);
                    if (j) assert_true(f->tokens_per_s >= r->sites[k][j - 1].fits[i].tokens_per_s);
                    if (k) { /* skew never serves more; at most the ranks */
                        assert_true(f->tokens_per_s <= r->sites[0][j].fits[i].tokens_per_s);
                        NEAR(p->infer_imbalance, fmin(1.5, p->ep_ranks_infer));
                    }
                    if (f->replicas && (best < 0 || f->tokens_per_s > z->fits[best].tokens_per_s)) best = (int32_t)i;
                    if (f->tokens_per_s >= o.demand_tokens_per_s) top = fmax(top, p->total_params);
                }
                for (uint32_t i = 0; i < r->n_points; i++)
                    if (z->fits[i].tokens_per_s >= o.demand_tokens_per_s && pts[i].total_params >= top / 1.01 &&
                        (qual < 0 || z->fits[i].tokens_per_s > z->fits[qual].tokens_per_s))
                        qual = (int32_t)i;
                assert_int_equal(z->best_tokens, best);
                assert_int_equal(z->best_quality, qual);
                /* the serving wall serves the demand and is at least the best listed family model */
                assert_true(z->serve_found);
                assert_true(z->serve_fit.tokens_per_s >= o.demand_tokens_per_s);
                if (z->best_size >= 0 && z->fits[z->best_size].tokens_per_s >= o.demand_tokens_per_s)
                    assert_true(z->serve.total_params >= pts[z->best_size].total_params);
                /* the training wall on the GPUs the site powers */
                const ms_scale_wall *w = &z->train;
                double g_tdp = floor(o.site_mw[j] * 1e6 / ((c->tdp_w + c->node_overhead_w) * c->pue));
                assert_int_equal(w->gpus_tdp, (uint32_t)g_tdp);
                if (pv) assert_int_equal(w->gpus, w->gpus_tdp);
                else assert_true(w->gpus >= w->gpus_tdp);
                assert_true(w->compute_found && w->compute_days <= o.wall_days);
                assert_true(16 * w->compute.total_params <= w->gpus * 80e9 * 0.9);
                if (j) assert_true(w->compute.total_params > r->sites[k][j - 1].train.compute.total_params);
                if (k) assert_true(w->compute.total_params <= r->sites[0][j].train.compute.total_params);
            }
        }
        ms_scale_result_free(r);
    }
    /* bad input */
    ms_scale_result *r = NULL;
    o.site_mw[0] = 0;
    assert_int_equal(ms_scale_run(&o, &r, &err), MS_E_INPUT);
    o.site_mw[0] = 10;
    o.demand_tokens_per_s = 0;
    assert_int_equal(ms_scale_run(&o, &r, &err), MS_E_INPUT);
    o.demand_tokens_per_s = 1e6;
    o.skew.imbalance = 0.9;
    assert_int_equal(ms_scale_run(&o, &r, &err), MS_E_INPUT);
    o.skew.imbalance = 1;
    static const uint16_t ids[4] = {0, 1, 2, 3};
    ms_trace *t = hand_trace(4, 4, ids);
    o.skew.trace = t; /* 4 experts, the family 64 */
    assert_int_equal(ms_scale_run(&o, &r, &err), MS_E_INPUT);
    assert_null(r);
    ms_trace_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fit_by_hand),        cmocka_unit_test(test_fit_monotone),
        cmocka_unit_test(test_imbalance_by_hand),  cmocka_unit_test(test_imbalance_real),
        cmocka_unit_test(test_deploy_study),       cmocka_unit_test(test_deploy_trace),
        cmocka_unit_test(test_scale_sites),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
