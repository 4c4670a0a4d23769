/* test-place-smart.c - one-per-gpu, tail and coact: crafted cases whose
 * answer is known, and invariants on random inputs. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moesim/place.h"
#include "moesim/stats.h"
#include "moesim/trace.h"

/* ---------------------------------------------------------- one-per-gpu */

static void test_one_per_gpu_replicas(void **state) {
    (void)state;
    /* 4 experts on 2x4 GPUs: 4 spare GPUs go to the largest load per
     * replica: 80 -> 40 (e0), tie 40/40 -> e0 (26.7), e1 (20), e0 (20) */
    const double w[4] = {80, 40, 20, 10};
    ms_loads *l = tu_loads(1, 4, w);
    ms_place_opts o;
    tu_place_opts(&o, "one-per-gpu", 2, 4, 2);
    ms_placement *p = tu_place_ok(l, NULL, &o);
    const uint32_t want[4] = {4, 2, 1, 1};
    for (uint32_t e = 0; e < 4; e++) assert_int_equal(p->logcnt[e], want[e]);
    /* exactly one routed expert per GPU, the second slot empty */
    for (uint32_t d = 0; d < 8; d++) {
        uint32_t n = (p->phy2log[d * 2] >= 0) + (p->phy2log[d * 2 + 1] >= 0);
        assert_int_equal(n, 1);
    }
    /* e1's two replicas in different rows, e0's four two per row */
    int32_t s[8];
    tu_replicas(p, 0, 1, s);
    assert_true(s[0] / 8 != s[1] / 8);
    tu_replicas(p, 0, 0, s);
    uint32_t row0 = 0;
    for (int i = 0; i < 4; i++) row0 += s[i] / 8 == 0;
    assert_int_equal(row0, 2);
    ms_placement_free(p);

    /* --redundant 0: one GPU each, the rest idle */
    o.redundant = 0;
    p = tu_place_ok(l, NULL, &o);
    for (uint32_t e = 0; e < 4; e++) assert_int_equal(p->logcnt[e], 1);
    ms_placement_free(p);

    /* E > G: a clear input error */
    tu_place_opts(&o, "one-per-gpu", 1, 3, 4);
    ms_place_input in = {l, NULL, 0};
    ms_error err = {0};
    assert_int_equal(ms_place_run(&in, &o, &p, &err), MS_E_INPUT);
    assert_non_null(strstr(err.msg, "one-per-gpu"));
    assert_non_null(strstr(err.msg, "4 routed experts"));
    ms_loads_free(l);
}

/* Topology: experts chosen together land in one row, so each token sends
 * one message to one row instead of two. */
static void test_one_per_gpu_topology(void **state) {
    (void)state;
    /* 4 experts, top-2; tokens alternate {0,3} and {1,2}; 2 rows x 2 cols */
    uint16_t ids[400];
    for (int t = 0; t < 200; t++) {
        ids[2 * t] = t % 2 ? 0 : 1;
        ids[2 * t + 1] = t % 2 ? 3 : 2;
    }
    ms_trace *t = tu_trace_from_rows(4, 2, ids, 200);
    ms_stats *s = tu_stats_coact(t, 50);
    ms_loads *l = tu_stats_loads(s);
    ms_place_opts o;
    tu_place_opts(&o, "one-per-gpu", 2, 2, 1);
    ms_placement *p = tu_place_ok(l, s, &o);
    int32_t s0[2], s1[2], s2[2], s3[2];
    tu_replicas(p, 0, 0, s0);
    tu_replicas(p, 0, 1, s1);
    tu_replicas(p, 0, 2, s2);
    tu_replicas(p, 0, 3, s3);
    assert_int_equal(s0[0] / 2, s3[0] / 2); /* same row */
    assert_int_equal(s1[0] / 2, s2[0] / 2);
    assert_true(s0[0] / 2 != s1[0] / 2);
    ms_placement_free(p);
    /* without co-activation (loads only) it is still a valid one-per-GPU layout */
    p = tu_place_ok(l, NULL, &o);
    for (uint32_t d = 0; d < 4; d++) assert_true(p->phy2log[d] >= 0);
    ms_placement_free(p);
    ms_loads_free(l);
    ms_stats_free(s);
    ms_trace_free(t);
}

/* ----------------------------------------------------------------- tail */

/* 10 windows of 100 tokens, top-1: e3 = 35 and e2 = 5 every window; e1
 * alternates 0/60 and e0 = 60 - e1. Means 30 30 5 35; stds 30 30 0 0. */
static ms_trace *bursty_trace(void) {
    uint16_t ids[1000];
    for (int w = 0; w < 10; w++) {
        int e1 = w % 2 ? 60 : 0;
        uint16_t *r = ids + w * 100;
        int k = 0;
        for (int i = 0; i < 35; i++) r[k++] = 3;
        for (int i = 0; i < 5; i++) r[k++] = 2;
        for (int i = 0; i < e1; i++) r[k++] = 1;
        while (k < 100) r[k++] = 0;
    }
    return tu_trace_from_rows(4, 1, ids, 1000);
}

static void test_tail(void **state) {
    (void)state;
    ms_trace *t = bursty_trace();
    ms_stats *s = tu_stats_coact(t, 100);
    assert_int_equal(s->layers[0].n_windows, 10);
    ms_loads *l = tu_stats_loads(s);
    ms_error err = {0};
    ms_place_opts o;
    /* 1 row x 3 GPUs x 2 slots: 4 experts + 2 extra */
    tu_place_opts(&o, "tail", 1, 3, 2);
    o.tail_alpha = 2.0; /* tails 90 90 5 35 -> e0, e1 replicated */
    ms_placement *p = tu_place_ok(l, s, &o);
    const uint32_t tail_cnt[4] = {2, 2, 1, 1};
    for (uint32_t e = 0; e < 4; e++) assert_int_equal(p->logcnt[e], tail_cnt[e]);
    for (uint32_t e = 0; e < 2; e++) {
        int32_t sl[2];
        tu_replicas(p, 0, e, sl);
        assert_true(sl[0] / 2 != sl[1] / 2);
    }
    tu_check_placement(p, &o, 4, 6, 6);
    ms_placement_free(p);
    o.tail_alpha = -1.0; /* p95: 60 60 5 35 -> the same */
    p = tu_place_ok(l, s, &o);
    for (uint32_t e = 0; e < 4; e++) assert_int_equal(p->logcnt[e], tail_cnt[e]);
    ms_placement_free(p);
    /* the mean (no statistics: loads 300 300 50 350) replicates e3 then e0 */
    p = tu_place_ok(l, NULL, &o);
    const uint32_t mean_cnt[4] = {2, 1, 1, 2};
    for (uint32_t e = 0; e < 4; e++) assert_int_equal(p->logcnt[e], mean_cnt[e]);
    ms_placement_free(p);
    o.tail_alpha = NAN;
    ms_place_input in = {l, s, 0};
    assert_int_equal(ms_place_run(&in, &o, &p, &err), MS_E_INPUT);
    ms_loads_free(l);
    ms_stats_free(s);
    ms_trace_free(t);
}

/* ---------------------------------------------------------------- coact */

/* Pairs {0,1} and {2,3} are chosen together; the pairs alternate between
 * windows of 20 and 80 tokens. coact keeps each pair in one row and puts
 * the two experts of a pair (which peak together) on different devices. */
static void test_coact(void **state) {
    (void)state;
    uint16_t ids[2000];
    for (int w = 0; w < 10; w++) {
        int a = w % 2 ? 20 : 80;
        for (int i = 0; i < 100; i++) {
            uint16_t *r = ids + (w * 100 + i) * 2;
            r[0] = i < a ? 0 : 2;
            r[1] = i < a ? 1 : 3;
        }
    }
    ms_trace *t = tu_trace_from_rows(4, 2, ids, 1000);
    ms_stats *s = tu_stats_coact(t, 100);
    ms_loads *l = tu_stats_loads(s);
    ms_error err = {0};
    ms_place_opts o;
    tu_place_opts(&o, "coact", 2, 2, 2);
    o.redundant = 0;
    ms_placement *p = tu_place_ok(l, s, &o);
    int32_t s0[2], s1[2], s2[2], s3[2];
    tu_replicas(p, 0, 0, s0);
    tu_replicas(p, 0, 1, s1);
    tu_replicas(p, 0, 2, s2);
    tu_replicas(p, 0, 3, s3);
    assert_int_equal(s0[0] / 4, s1[0] / 4); /* same row (4 slots per row) */
    assert_int_equal(s2[0] / 4, s3[0] / 4);
    assert_true(s0[0] / 4 != s2[0] / 4);
    assert_true(s0[0] / 2 != s1[0] / 2); /* different devices */
    assert_true(s2[0] / 2 != s3[0] / 2);
    ms_placement_free(p);
    /* with replicas: each expert's two replicas in different rows */
    o.redundant = UINT32_MAX;
    p = tu_place_ok(l, s, &o);
    for (uint32_t e = 0; e < 4; e++) {
        int32_t sl[2];
        assert_int_equal(tu_replicas(p, 0, e, sl), 2);
        assert_true(sl[0] / 4 != sl[1] / 4);
    }
    ms_placement_free(p);
    /* no statistics: a clear error */
    ms_place_input in = {l, NULL, 0};
    assert_int_equal(ms_place_run(&in, &o, &p, &err), MS_E_INPUT);
    assert_non_null(strstr(err.msg, "co-activation"));
    ms_loads_free(l);
    ms_stats_free(s);
    ms_trace_free(t);
}

/* ------------------------------------------------------ random inputs */

static void test_random_invariants(void **state) {
    (void)state;
    const char *algos[] = {"one-per-gpu", "tail", "coact"};
    ms_rng r;
    ms_rng_seed(&r, 7);
    for (int iter = 0; iter < 40; iter++) {
        uint32_t E = 2 + (uint32_t)ms_rng_below(&r, 15), k = 1 + (uint32_t)ms_rng_below(&r, E < 4 ? E : 4);
        ms_trace *t = tu_random_trace(500 + (uint64_t)iter, 2, E, k, 100 + ms_rng_below(&r, 400));
        ms_stats *s = tu_stats_coact(t, 40);
        ms_loads *l = tu_stats_loads(s);
        ms_error err = {0};
        uint32_t rows = 1 + (uint32_t)ms_rng_below(&r, 4), cols = 1 + (uint32_t)ms_rng_below(&r, 4);
        bool shared = ms_rng_below(&r, 2) == 1;
        uint32_t nd = rows * cols, ns = shared ? rows : 0;
        uint32_t spd = (E + ns + nd - 1) / nd + (uint32_t)ms_rng_below(&r, 3);
        if (shared && spd < 2) spd = 2;
        for (size_t a = 0; a < sizeof algos / sizeof *algos; a++) {
            ms_place_opts o;
            tu_place_opts(&o, algos[a], rows, cols, spd);
            o.shared_expert = shared;
            o.tail_alpha = ms_rng_below(&r, 2) ? 1.5 : -1.0;
            uint32_t room = nd * spd - E - ns;
            o.redundant = ms_rng_below(&r, 3) == 0 ? UINT32_MAX : (uint32_t)ms_rng_below(&r, room + 1);
            uint32_t extra = o.redundant < room ? o.redundant : room;
            const ms_stats *use = ms_rng_below(&r, 4) == 0 && a != 2 ? NULL : s;
            ms_place_input in = {l, use, 0};
            ms_placement *p = NULL;
            ms_status st = ms_place_run(&in, &o, &p, &err);
            if (a == 0) {
                /* devices with a free slot once the shared replicas are in */
                uint32_t ga = 0;
                for (uint32_t d = 0; d < nd; d++) {
                    uint32_t sh = 0;
                    for (uint32_t i = 0; i < ns; i++) sh += tu_shared_dev(&o.cluster, i) == d;
                    ga += sh < spd;
                }
                if (ga < E) {
                    assert_int_equal(st, MS_E_INPUT);
                    continue;
                }
                assert_int_equal(st, MS_OK);
                uint32_t ex = extra < ga - E ? extra : ga - E;
                tu_check_placement(p, &o, E, E + ex, E + extra);
                for (uint32_t lay = 0; lay < 2; lay++)
                    for (uint32_t d = 0; d < nd; d++) {
                        uint32_t n = 0;
                        for (uint32_t q = 0; q < spd; q++) {
                            int32_t e = p->phy2log[lay * p->n_phys + d * spd + q];
                            n += e >= 0 && e < (int32_t)E;
                        }
                        assert_true(n <= 1);
                    }
            } else {
                if (st != MS_OK) fprintf(stderr, "%s: %s\n", algos[a], err.msg);
                assert_int_equal(st, MS_OK);
                tu_check_placement(p, &o, E, E + extra, E + extra);
            }
            ms_placement *q = NULL;
            assert_int_equal(ms_place_run(&in, &o, &q, &err), MS_OK);
            assert_memory_equal(p->phy2log, q->phy2log, (size_t)p->n_layers * p->n_phys * sizeof *p->phy2log);
            ms_placement_free(q);
            ms_placement_free(p);
        }
        ms_loads_free(l);
        ms_stats_free(s);
        ms_trace_free(t);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_per_gpu_replicas), cmocka_unit_test(test_one_per_gpu_topology),
        cmocka_unit_test(test_tail),                 cmocka_unit_test(test_coact),
        cmocka_unit_test(test_random_invariants),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
