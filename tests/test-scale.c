/* test-scale.c - trend fits on exact laws, one scale point by hand, the
 * family, the expert sweeps and the power wall. */
#include "testutil.h"

#include <math.h>
#include <string.h>
#include "moesim/deploy.h"

#define NEAR(a, b) assert_true(fabs((double)(a) - (double)(b)) <= 1e-9 * fmax(1.0, fabs((double)(b))))
#define CLOSE(a, b, rel) assert_true(fabs((double)(a) - (double)(b)) <= (rel) * fabs((double)(b)))

static void test_fit_power_law(void **state) {
    (void)state;
    double x[6] = {1e9, 3e9, 1e10, 1e11, 1e12, 3e12}, y[6];
    static const double exps[] = {0.5, 0.7, 1.0, 1.3, 2.0};
    for (size_t k = 0; k < sizeof exps / sizeof exps[0]; k++) {
        for (int i = 0; i < 6; i++) y[i] = 3.5 * pow(x[i], exps[k]);
        ms_fit f;
        ms_error err = {0};
        assert_int_equal(ms_fit_power_law(x, y, 6, &f, &err), MS_OK);
        CLOSE(f.b, exps[k], 1e-9);
        CLOSE(f.a, 3.5, 1e-6);
        CLOSE(f.r2, 1.0, 1e-12);
        CLOSE(f.r2_linear_space, 1.0, 1e-9);
        ms_fit l;
        assert_int_equal(ms_fit_linear(x, y, 6, &l, &err), MS_OK);
        if (exps[k] == 1.0) CLOSE(l.r2, 1.0, 1e-9);
        else assert_true(l.r2 < 1.0 - 1e-6); /* a curve is not a line */
    }
}

static void test_fit_linear(void **state) {
    (void)state;
    double x[4] = {1, 2, 3, 4}, y[4] = {5, 7, 9, 11};
    ms_fit f;
    ms_error err = {0};
    assert_int_equal(ms_fit_linear(x, y, 4, &f, &err), MS_OK);
    NEAR(f.a, 3);
    NEAR(f.b, 2);
    NEAR(f.r2, 1);
    /* hand: y = 1, 3, 2 at x = 0, 1, 2: slope 0.5, intercept 1.5, R^2 = 0.25 */
    double x2[3] = {0, 1, 2}, y2[3] = {1, 3, 2};
    assert_int_equal(ms_fit_linear(x2, y2, 3, &f, &err), MS_OK);
    NEAR(f.b, 0.5);
    NEAR(f.a, 1.5);
    NEAR(f.r2, 0.25);
    assert_int_equal(ms_fit_linear(x, y, 1, &f, &err), MS_E_INPUT);
    double same[3] = {2, 2, 2};
    assert_int_equal(ms_fit_linear(same, y2, 3, &f, &err), MS_E_INPUT);
    y2[0] = 0;
    assert_int_equal(ms_fit_power_law(x2, y2, 3, &f, &err), MS_E_INPUT);
}

static void opts(ms_scale_opts *o) {
    ms_scale_opts_default(o);
    ms_error err = {0};
    assert_int_equal(ms_hw_preset_load("a100", &o->gpu, &err), MS_OK);
    assert_int_equal(ms_energy_load("a100", &o->energy, &err), MS_OK);
}

static void test_point_by_hand(void **state) {
    (void)state;
    ms_scale_opts o;
    opts(&o);
    ms_scale_point p;
    ms_error err = {0};
    uint32_t L = 10, d = 1024, E = 16, k = 2, f = 512;
    assert_int_equal(ms_scale_point_eval(&o, L, d, E, k, f, &p, &err), MS_OK);
    double att = 2.0 * d * d + 2.0 * d * (0.125 * d), exp_ = 3.0 * d * f, gate = (double)d * E;
    double total = L * (att + gate + E * exp_), active = L * (att + gate + k * exp_);
    NEAR(p.total_params, total);
    NEAR(p.active_params, active);
    NEAR(p.train_flops_per_token, 6 * active + 6.0 * L * 4096 * d);
    double mem = 80e9 * 0.9;
    assert_int_equal(p.gpus_train, (uint32_t)ceil(16 * total / mem));
    double kv = 256.0 * 2048 * 2 * L * 0.125 * d * 2;
    assert_int_equal(p.gpus_infer, (uint32_t)fmax(1, ceil((total * 2 + kv) / mem)));
    /* energy per token is at least its compute part: FLOPs x pJ */
    assert_true(p.train_j_per_token >= p.train_flops_per_token * o.energy.pj_per_flop[MS_PREC_BF16] * 1e-12);
    double s = 0;
    for (int i = 0; i < MS_PART_COUNT; i++) s += p.train_parts[i];
    NEAR(s, p.train_j_per_token);
    s = 0;
    for (int i = 0; i < MS_PART_COUNT; i++) s += p.infer_parts[i];
    NEAR(s, p.infer_j_per_token);
    NEAR(p.budget_j, p.train_j_per_token * 1e12);
    assert_true(p.infer_peak_w <= p.gpus_infer * o.energy.tdp_w * (1 + 1e-12));
    assert_true(p.budget_site_j >= p.budget_j);
    assert_int_equal(ms_scale_point_eval(&o, L, d, E, 17, f, &p, &err), MS_E_INPUT); /* top-k > experts */
}

static void test_run(void **state) {
    (void)state;
    ms_scale_opts o;
    opts(&o);
    ms_scale_result *r;
    ms_error err = {0};
    assert_int_equal(ms_scale_run(&o, &r, &err), MS_OK);
    uint32_t n_size = 0;
    for (uint32_t i = 0; i < r->n_points; i++) {
        const ms_scale_point *p = &r->points[i];
        if (strcmp(p->sweep, "size") == 0) {
            /* each size within a factor 1.3 of its target, and growing */
            assert_true(p->total_params > p->target / 1.3 && p->total_params < p->target * 1.3);
            if (n_size > 0) {
                const ms_scale_point *q = &r->points[i - 1];
                assert_true(p->total_params > q->total_params);
                assert_true(p->train_j_per_token > q->train_j_per_token);
                assert_true(p->gpus_train >= q->gpus_train);
            }
            n_size++;
        } else {
            /* sweeps keep the total weights (expert hidden rounded) */
            CLOSE(p->total_params, 1e12, 0.15);
            if (strcmp(p->sweep, "experts-scaled-k") == 0) assert_int_equal(p->top_k * 64, 2 * p->experts);
        }
    }
    assert_int_equal(n_size, 8);
    assert_true(r->n_points > 8);
    /* the scaled-k sweep keeps active parameters within 5% */
    double a0 = 0;
    for (uint32_t i = 0; i < r->n_points; i++)
        if (strcmp(r->points[i].sweep, "experts-scaled-k") == 0) {
            if (a0 == 0) a0 = r->points[i].active_params;
            CLOSE(r->points[i].active_params, a0, 0.05);
        }
    assert_true(a0 > 0);
    assert_true(r->n_trends >= 10);
    for (uint32_t i = 0; i < r->n_trends; i++) assert_true(r->trends[i].linear.n == 8);
    /* the power wall */
    assert_int_equal(r->n_sites, 3);
    double per_gpu = (o.energy.tdp_w + o.energy.node_overhead_w) * o.energy.pue;
    double prev = 0;
    for (uint32_t i = 0; i < 3; i++) {
        const ms_scale_wall *w = &r->sites[MS_SITE_BALANCED][i].train;
        assert_int_equal(w->gpus_tdp, (uint32_t)floor(o.site_mw[i] * 1e6 / per_gpu));
        assert_true(w->gpus >= w->gpus_tdp); /* measured draw is at most TDP */
        NEAR(w->memory_max_params, w->gpus * 80e9 * 0.9 / 16);
        assert_true(w->compute_found);
        assert_true(w->compute_days <= o.wall_days);
        assert_true(w->compute.total_params > prev);
        assert_true(16 * w->compute.total_params <= w->gpus * 80e9 * 0.9);
        prev = w->compute.total_params;
    }
    ms_scale_result_free(r);
    o.n_sizes = 40;
    assert_int_equal(ms_scale_run(&o, &r, &err), MS_E_INPUT);
    o.n_sizes = 1;
    o.sizes[0] = 10;
    assert_int_equal(ms_scale_run(&o, &r, &err), MS_E_INPUT);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fit_power_law),
        cmocka_unit_test(test_fit_linear),
        cmocka_unit_test(test_point_by_hand),
        cmocka_unit_test(test_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
