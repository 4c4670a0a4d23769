/* test-place-ilp.c - the GLPK placement against brute force on tiny
 * instances (every placement, even splits: ilp's optimum; free splits: a
 * bound the lower bounds must respect), the lower bounds against the
 * optimum, and the edges (time limit, size limit). Without GLPK: ilp must
 * fail MS_E_UNSUPPORTED. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moesim/place.h"
#include "place/algos.h"

#ifdef MOESIM_HAVE_GLPK

/* ------------------------------------------------------- brute force */

/* Minimum over every assignment of a nonempty device set to each expert
 * (at most cap[d] experts per device, at most `budget` replicas in all) of
 * the best maximum device load with free splits: by max-flow/min-cut that
 * is max(max_d c_d, max over device subsets U of (sum of the loads of the
 * experts whose devices all lie in U + sum_{d in U} c_d) / |U|). Also the
 * best with even splits (w_e / replicas on each), into *even. */
typedef struct bf {
    uint32_t E, D, budget;
    const double *w;
    const double *c;
    const uint32_t *cap;
    uint32_t *sub; /* [E] device subset bitmask */
    double best, best_even;
} bf;

static void bf_eval(bf *b) {
    uint32_t used[8] = {0}, reps = 0;
    for (uint32_t e = 0; e < b->E; e++)
        for (uint32_t d = 0; d < b->D; d++)
            if (b->sub[e] >> d & 1) {
                used[d]++;
                reps++;
            }
    if (reps > b->budget) return;
    for (uint32_t d = 0; d < b->D; d++)
        if (used[d] > b->cap[d]) return;
    double z = 0;
    for (uint32_t d = 0; d < b->D; d++)
        if (b->c[d] > z) z = b->c[d];
    for (uint32_t U = 1; U < (1u << b->D); U++) {
        double s = 0;
        uint32_t n = 0;
        for (uint32_t d = 0; d < b->D; d++)
            if (U >> d & 1) {
                s += b->c[d];
                n++;
            }
        for (uint32_t e = 0; e < b->E; e++)
            if ((b->sub[e] & ~U) == 0) s += b->w[e];
        if (s / n > z) z = s / n;
    }
    if (z < b->best) b->best = z;
    double ze = 0;
    for (uint32_t d = 0; d < b->D; d++) {
        double s = b->c[d];
        for (uint32_t e = 0; e < b->E; e++)
            if (b->sub[e] >> d & 1) s += b->w[e] / __builtin_popcount(b->sub[e]);
        if (s > ze) ze = s;
    }
    if (ze < b->best_even) b->best_even = ze;
}

static void bf_rec(bf *b, uint32_t e) {
    if (e == b->E) {
        bf_eval(b);
        return;
    }
    for (uint32_t s = 1; s < (1u << b->D); s++) {
        b->sub[e] = s;
        bf_rec(b, e + 1);
    }
}

static void brute(uint32_t E, uint32_t D, const double *w, const double *c, const uint32_t *cap, uint32_t budget,
                  double *best, double *best_even) {
    uint32_t sub[8];
    bf b = {E, D, budget, w, c, cap, sub, INFINITY, INFINITY};
    bf_rec(&b, 0);
    *best = b.best;
    *best_even = b.best_even;
}

/* Runs ilp; returns its objective (the maximum device load with even
 * splits, shared load included). */
static double run_ilp(const ms_loads *l, ms_place_opts *o, ms_placement **out) {
    ms_place_input in = {l, NULL, 0};
    ms_error err = {0};
    ms_status st = ms_place_run(&in, o, out, &err);
    if (st != MS_OK) fprintf(stderr, "ilp: %s\n", err.msg);
    assert_int_equal(st, MS_OK);
    return (*out)->objective;
}

static void test_brute_force(void **state) {
    (void)state;
    ms_rng r;
    ms_rng_seed(&r, 2024);
    struct {
        uint32_t rows, cols, spd, E;
        int shared;
    } shapes[] = {
        {2, 1, 3, 5, 0}, /* the brief's instance: 5 experts, 2x1 devices, 3 slots */
        {1, 3, 2, 4, 0}, /* 3 devices: 7 subsets per expert */
        {2, 1, 3, 4, 1}, /* shared expert on both devices (one per row) */
        {1, 2, 4, 5, 0},
    };
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++)
        for (int iter = 0; iter < 6; iter++) {
            uint32_t E = shapes[k].E, D = shapes[k].rows * shapes[k].cols, spd = shapes[k].spd;
            double w[8];
            for (uint32_t e = 0; e < E; e++) w[e] = (double)(1 + ms_rng_below(&r, 100));
            if (iter == 0) w[0] = 400; /* one very hot expert */
            if (iter == 1) w[E - 1] = 0; /* an unused expert still needs a slot */
            ms_place_opts o;
            tu_place_opts(&o, "ilp", shapes[k].rows, shapes[k].cols, spd);
            o.time_limit_s = 30;
            double c[8] = {0};
            uint32_t cap[8];
            for (uint32_t d = 0; d < D; d++) cap[d] = spd;
            if (shapes[k].shared) {
                o.shared_expert = true;
                o.shared_load = 60; /* 30 on each of the rows' devices */
                for (uint32_t d = 0; d < D; d++) {
                    c[d] = 30;
                    cap[d] = spd - 1;
                }
            }
            uint32_t free_slots = 0;
            for (uint32_t d = 0; d < D; d++) free_slots += cap[d];
            uint32_t room = free_slots - E;
            if (iter == 2 && room > 0) o.redundant = 1;
            uint32_t extra = o.redundant < room ? o.redundant : room;
            ms_loads *l = tu_loads(1, E, w);
            ms_placement *p;
            double z = run_ilp(l, &o, &p);
            double best, best_even;
            brute(E, D, w, c, cap, E + extra, &best, &best_even);
            if (getenv("ILP_VERBOSE") || fabs(z - best_even) > 1e-6 * (1 + best_even))
                fprintf(stderr, "shape %zu iter %d: ilp %.9g brute force even %.9g split %.9g\n", k, iter, z,
                        best_even, best);
            /* the even-split optimum, reached by the placement itself */
            assert_true(fabs(z - best_even) <= 1e-6 * (1 + best_even));
            double ev = ms_placement_max_device_load(p, l, 0) + (shapes[k].shared ? 30.0 : 0.0);
            assert_true(fabs(ev - z) <= 1e-6 * (1 + z));
            /* free splits can only do better; the bounds never exceed them */
            assert_true(best <= best_even + 1e-9);
            assert_true(p->lower_bound <= best + 1e-6);
            ms_placement_free(p);
            ms_loads_free(l);
        }
}

/* Direct calls of the bound: a case where the replica-count bound is tight
 * and stronger than total/devices and than max load / (extra + 1). */
static void test_lower_bound(void **state) {
    (void)state;
    const double w[4] = {100, 90, 1, 1};
    ms_loads *l = tu_loads(1, 4, w);
    ms_place_opts o;
    tu_place_opts(&o, "ilp", 2, 2, 2);
    o.redundant = 2;
    ms_placement *p;
    ms_error err = {0};
    assert_int_equal(ms_placement_new(1, &o.cluster, 4, false, &p, &err), MS_OK);
    ms_place_input in = {l, NULL, 0};
    ms_place_ctx ctx = {&in, &o, p};
    /* n = (2, 2, 1, 1) -> 50; total/4 = 48; 100/3 = 33.3 */
    double b = ms_place_lower_bound(&ctx, 0);
    assert_float_equal(b, 50.0, 1e-9);
    ms_placement_free(p);
    /* and the ilp reaches it */
    double z = run_ilp(l, &o, &p);
    assert_float_equal(z, 50.0, 1e-6);
    assert_float_equal(p->lower_bound, 50.0, 1e-6);
    ms_placement_free(p);
    ms_loads_free(l);
}

/* A larger instance under a short time limit still returns a valid
 * placement whose objective is no better than the bound (no timing assert). */
static void test_time_limit(void **state) {
    (void)state;
    double w[48];
    ms_rng r;
    ms_rng_seed(&r, 5);
    for (int e = 0; e < 48; e++) w[e] = 1 + (double)ms_rng_below(&r, 1000);
    ms_loads *l = tu_loads(2, 24, w);
    ms_place_opts o;
    tu_place_opts(&o, "ilp", 2, 4, 4);
    o.time_limit_s = 0.3;
    ms_placement *p;
    double z = run_ilp(l, &o, &p);
    assert_true(isfinite(z));
    assert_true(p->lower_bound <= z + 1e-6);
    for (uint32_t lay = 0; lay < 2; lay++) {
        uint32_t total = 0;
        for (uint32_t e = 0; e < 24; e++) {
            assert_true(p->logcnt[lay * 24 + e] >= 1);
            total += p->logcnt[lay * 24 + e];
        }
        assert_true(total <= 32);
    }
    ms_placement_free(p);
    ms_loads_free(l);
}

static void test_too_large(void **state) {
    (void)state;
    double *w = calloc(256, sizeof *w);
    for (int e = 0; e < 256; e++) w[e] = e + 1;
    ms_loads *l = tu_loads(1, 256, w);
    ms_place_opts o;
    tu_place_opts(&o, "ilp", 16, 16, 2); /* 256 x 256 pairs */
    ms_place_input in = {l, NULL, 0};
    ms_placement *p = NULL;
    ms_error err = {0};
    assert_int_equal(ms_place_run(&in, &o, &p, &err), MS_E_INPUT);
    assert_non_null(strstr(err.msg, "small instances"));
    assert_null(p);
    ms_loads_free(l);
    free(w);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_brute_force),
        cmocka_unit_test(test_lower_bound),
        cmocka_unit_test(test_time_limit),
        cmocka_unit_test(test_too_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#else /* no GLPK */

static void test_unsupported(void **state) {
    (void)state;
    const double w[4] = {4, 3, 2, 1};
    ms_loads *l = tu_loads(1, 4, w);
    ms_place_opts o;
    tu_place_opts(&o, "ilp", 1, 2, 2);
    ms_place_input in = {l, NULL, 0};
    ms_placement *p = NULL;
    ms_error err = {0};
    assert_int_equal(ms_place_run(&in, &o, &p, &err), MS_E_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "GLPK"));
    ms_loads_free(l);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_unsupported)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#endif
