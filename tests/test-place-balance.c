/* test-place-balance.c - moe-balance's initial placements (balance,
 * balance-coact, hot-tier, greedy-cost): exact equality with the peer's own
 * `balance` output on the real DeepSeek-V2-Lite trace, hand-computed small
 * cases, and invariants on random inputs. */
#include "testutil.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moesim/place.h"
#include "moesim/stats.h"
#include "moesim/trace.h"

/* --------------------------------------------------- the peer's output */

static void test_reference_balance(void **state) {
    (void)state;
    char dbuf[1024], rbuf[1024], path[1200];
    const char *data = tu_data_dir("deepseek-v2-lite-puffin", dbuf, sizeof dbuf);
    const char *ref = tu_ref_dir("moe-balance", rbuf, sizeof rbuf);
    if (!data || !ref) skip();
    ms_trace *t;
    ms_error err = {0};
    ms_trace_load_opts lo = {0};
    const char *paths[1] = {data};
    assert_int_equal(ms_trace_load(paths, 1, &lo, &t, &err), MS_OK);
    assert_int_equal(t->n_requests, 999);
    assert_true(t->n_layers > 10);
    assert_int_equal(t->n_experts, 64);
    /* loads of MoE layer index 10: token counts over all rows */
    double w[64] = {0};
    for (uint64_t tok = 0; tok < t->n_tokens; tok++) {
        const uint16_t *r = ms_trace_row(t, 10, tok);
        for (uint32_t j = 0; j < t->top_k; j++) w[r[j]] += 1.0;
    }
    /* spot checks against numpy (bincount of routed_experts[:,10,:]) */
    assert_true(w[0] == 8993 && w[16] == 17085 && w[53] == 3427);
    ms_trace_free(t);
    ms_loads *l = tu_loads(1, 64, w);
    ms_place_opts o;
    tu_place_opts(&o, "balance", 2, 8, 6);
    ms_placement *p = tu_place_ok(l, NULL, &o);
    tu_check_placement(p, &o, 64, 96, 96);

    snprintf(path, sizeof path, "%s/balance_dsv2lite_l10_2x8.placement.json", ref);
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    assert_non_null(root);
    assert_int_equal(json_object_size(root), 64);
    uint32_t mismatches = 0;
    for (uint32_t e = 0; e < 64; e++) {
        char key[16];
        snprintf(key, sizeof key, "%u", e);
        json_t *arr = json_object_get(root, key);
        assert_true(json_is_array(arr));
        int32_t slots[16];
        uint32_t n = tu_replicas(p, 0, e, slots);
        if (n != json_array_size(arr)) {
            fprintf(stderr, "expert %u: %u replicas, reference %zu\n", e, n, json_array_size(arr));
            mismatches++;
            continue;
        }
        for (uint32_t k = 0; k < n; k++) {
            json_t *r = json_array_get(arr, k);
            int dev = (int)json_integer_value(json_object_get(r, "device"));
            int row = (int)json_integer_value(json_object_get(r, "row"));
            int col = (int)json_integer_value(json_object_get(r, "col"));
            int slot = (int)json_integer_value(json_object_get(r, "slot"));
            assert_int_equal(dev, row * 8 + col);
            if (slots[k] / 6 != dev || slots[k] % 6 != slot) {
                fprintf(stderr, "expert %u replica %u: device %d slot %d, reference device %d slot %d\n", e, k,
                        slots[k] / 6, slots[k] % 6, dev, slot);
                mismatches++;
            }
        }
    }
    assert_int_equal(mismatches, 0);
    json_decref(root);

    /* the same input along columns: still a valid placement with the same budget */
    ms_placement_free(p);
    o.axis = 'c';
    p = tu_place_ok(l, NULL, &o);
    tu_check_placement(p, &o, 64, 96, 96);
    ms_placement_free(p);
    ms_loads_free(l);
}

/* ------------------------------------------------------ hand-computed */

/* 2x2 devices, 2 slots, loads 50 10 40 30 20 (extra 3 -> experts 0, 2, 3):
 * worked by hand in the comment of the expected phy2log. */
static void test_balance_by_hand(void **state) {
    (void)state;
    const double w[5] = {50, 10, 40, 30, 20};
    ms_loads *l = tu_loads(1, 5, w);
    ms_place_opts o;
    tu_place_opts(&o, "balance", 2, 2, 2);
    ms_placement *p = tu_place_ok(l, NULL, &o);
    /* e0 -> d0, then row 1 farthest column -> d3; e2 -> d1, d2; e3 -> d1 (40 < 50),
     * d2 (40 < 50); e4 -> row 0 (tie) d0 (d1 full); e1 -> row 1 (120 < 140) d3 */
    const int32_t expect[8] = {0, 4, 2, 3, 2, 3, 0, 1};
    for (int i = 0; i < 8; i++) assert_int_equal(p->phy2log[i], expect[i]);
    tu_check_placement(p, &o, 5, 8, 8);
    ms_placement_free(p);

    /* the budget rule with a smaller budget: --redundant 1 -> only expert 0 */
    o.redundant = 1;
    p = tu_place_ok(l, NULL, &o);
    assert_int_equal(p->logcnt[0], 2);
    for (uint32_t e = 1; e < 5; e++) assert_int_equal(p->logcnt[e], 1);
    tu_check_placement(p, &o, 5, 6, 6);
    ms_placement_free(p);

    /* the budget cycles: 1 expert, 1x2 devices x 3 slots, 5 extra -> 6 replicas */
    const double w1[3] = {5, 3, 1};
    ms_loads *l1 = tu_loads(1, 3, w1);
    tu_place_opts(&o, "balance", 1, 3, 3); /* 9 slots, extra 6: each expert twice more */
    p = tu_place_ok(l1, NULL, &o);
    for (uint32_t e = 0; e < 3; e++) assert_int_equal(p->logcnt[e], 3);
    /* every expert on three distinct devices */
    for (uint32_t e = 0; e < 3; e++) {
        int32_t s[4];
        uint32_t n = tu_replicas(p, 0, e, s);
        assert_int_equal(n, 3);
        assert_true(s[0] / 3 != s[1] / 3 && s[1] / 3 != s[2] / 3 && s[0] / 3 != s[2] / 3);
    }
    ms_placement_free(p);
    ms_loads_free(l1);
    ms_loads_free(l);
}

/* axis col on a 2x2 grid is balance on the transposed grid. */
static void test_balance_col_axis(void **state) {
    (void)state;
    const double w[5] = {50, 10, 40, 30, 20};
    ms_loads *l = tu_loads(1, 5, w);
    ms_place_opts o;
    tu_place_opts(&o, "balance", 2, 2, 2);
    o.axis = 'c';
    ms_placement *p = tu_place_ok(l, NULL, &o);
    /* transposing the row-axis result (devices 0 1 2 3 -> 0 2 1 3) */
    const int32_t expect[8] = {0, 4, 2, 3, 2, 3, 0, 1};
    const uint32_t tr[4] = {0, 2, 1, 3};
    for (uint32_t d = 0; d < 4; d++)
        for (uint32_t s = 0; s < 2; s++) assert_int_equal(p->phy2log[tr[d] * 2 + s], expect[d * 2 + s]);
    ms_placement_free(p);
    o.axis = 'x';
    ms_place_input in = {l, NULL, 0};
    ms_error err = {0};
    assert_int_equal(ms_place_run(&in, &o, &p, &err), MS_E_INPUT);
    assert_non_null(strstr(err.msg, "axis"));
    ms_loads_free(l);
}

/* With a shared expert the reserved replicas start their devices loaded. */
static void test_balance_shared(void **state) {
    (void)state;
    const double w[4] = {40, 30, 20, 10};
    ms_loads *l = tu_loads(1, 4, w);
    ms_place_opts o;
    tu_place_opts(&o, "balance", 2, 2, 2);
    o.shared_expert = true;
    o.shared_load = 100; /* per replica 50 on devices 0 and 3 */
    ms_placement *p = tu_place_ok(l, NULL, &o);
    tu_check_placement(p, &o, 4, 6, 6);
    /* devices 1 and 2 take the hottest experts first */
    assert_int_equal(p->phy2log[0], 4);
    assert_int_equal(p->phy2log[6], 4);
    int32_t s[4];
    tu_replicas(p, 0, 0, s);
    assert_true(s[0] / 2 == 1 || s[0] / 2 == 2);
    ms_placement_free(p);
    ms_loads_free(l);
}

/* hot-tier: the top hot_n experts are spread over the groups before anything
 * else, as evenly as possible. */
static void test_hot_tier(void **state) {
    (void)state;
    /* 4 rows x 1 col x 3 slots = 12 slots; 8 experts + 4 extra */
    const double w[8] = {100, 90, 80, 70, 10, 9, 8, 7};
    ms_loads *l = tu_loads(1, 8, w);
    ms_place_opts o;
    tu_place_opts(&o, "hot-tier", 4, 1, 3);
    ms_placement *p = tu_place_ok(l, NULL, &o);
    tu_check_placement(p, &o, 8, 12, 12);
    /* default hot_n = experts with extra replicas (0..3, two each): 8 hot
     * replicas over 4 rows -> exactly 2 per row */
    uint32_t hot_per_row[4] = {0};
    for (uint32_t s = 0; s < 12; s++)
        if (p->phy2log[s] >= 0 && p->phy2log[s] < 4) hot_per_row[s / 3]++;
    for (int r = 0; r < 4; r++) assert_int_equal(hot_per_row[r], 2);
    /* replicas of a hot expert in different rows */
    for (uint32_t e = 0; e < 4; e++) {
        int32_t s[4];
        assert_int_equal(tu_replicas(p, 0, e, s), 2);
        assert_true(s[0] / 3 != s[1] / 3);
    }
    ms_placement_free(p);
    ms_loads_free(l);
}

/* ---------------------------------------------------- random traces */

static void test_random_invariants(void **state) {
    (void)state;
    const char *algos[] = {"balance", "balance-coact", "hot-tier", "greedy-cost"};
    ms_rng r;
    ms_rng_seed(&r, 42);
    for (int iter = 0; iter < 40; iter++) {
        uint32_t E = 3 + (uint32_t)ms_rng_below(&r, 14), k = 1 + (uint32_t)ms_rng_below(&r, E < 4 ? E : 4);
        ms_trace *t = tu_random_trace(1000 + (uint64_t)iter, 2, E, k, 200 + ms_rng_below(&r, 300));
        ms_stats *s = tu_stats_coact(t, 50);
        ms_loads *l = tu_stats_loads(s);
        ms_place_opts o;
        uint32_t rows = 1 + (uint32_t)ms_rng_below(&r, 3), cols = 1 + (uint32_t)ms_rng_below(&r, 4);
        bool shared = ms_rng_below(&r, 2) == 1;
        uint32_t ns = shared ? rows : 0;
        uint32_t spd = (E + ns + rows * cols - 1) / (rows * cols) + (uint32_t)ms_rng_below(&r, 3);
        if (shared && spd < 2) spd = 2;
        for (size_t a = 0; a < sizeof algos / sizeof *algos; a++) {
            tu_place_opts(&o, algos[a], rows, cols, spd);
            o.shared_expert = shared;
            o.axis = ms_rng_below(&r, 2) ? 'r' : 'c';
            uint32_t room = rows * cols * spd - E - ns;
            o.redundant = ms_rng_below(&r, 3) == 0 ? UINT32_MAX : (uint32_t)ms_rng_below(&r, room + 1);
            uint32_t extra = o.redundant < room ? o.redundant : room;
            ms_placement *p = tu_place_ok(l, s, &o);
            tu_check_placement(p, &o, E, E + extra, E + extra);
            /* deterministic: same input, same bytes */
            ms_placement *q = tu_place_ok(l, s, &o);
            assert_memory_equal(p->phy2log, q->phy2log, (size_t)p->n_layers * p->n_phys * sizeof *p->phy2log);
            ms_placement_free(q);
            ms_placement_free(p);
        }
        ms_loads_free(l);
        ms_stats_free(s);
        ms_trace_free(t);
    }
}

/* balance-coact separates experts that are chosen together, where plain
 * balance puts them on one device; without statistics it fails clearly. */
static void test_balance_coact(void **state) {
    (void)state;
    /* 1 row x 2 cols x 2 slots; top-2: 50 tokens {0,1}, 50 tokens {2,3},
     * 1 token {0,2}: loads 51 50 51 50, order 0 2 1 3 */
    uint16_t ids[202];
    for (uint32_t tok = 0; tok < 101; tok++) {
        ids[tok * 2] = tok < 50 ? 0 : tok < 100 ? 2 : 0;
        ids[tok * 2 + 1] = tok < 50 ? 1 : tok < 100 ? 3 : 2;
    }
    ms_trace *t = tu_trace_from_rows(4, 2, ids, 101);
    ms_stats *s = tu_stats_coact(t, 0);
    ms_loads *l = tu_stats_loads(s);
    ms_error err = {0};
    ms_place_opts o;
    /* balance: 0 -> d0, 2 -> d1, 1 -> d0 (51 = 51, lower index), 3 -> d1 */
    tu_place_opts(&o, "balance", 1, 2, 2);
    ms_placement *p = tu_place_ok(l, s, &o);
    const int32_t plain[4] = {0, 1, 2, 3};
    for (int i = 0; i < 4; i++) assert_int_equal(p->phy2log[i], plain[i]);
    ms_placement_free(p);
    /* balance-coact: 1 -> d1 (d0 scores 51 + 50), 3 -> d0 (d1 scores 101 + 50) */
    o.algo = "balance-coact";
    p = tu_place_ok(l, s, &o);
    const int32_t coact[4] = {0, 3, 1, 2};
    for (int i = 0; i < 4; i++) assert_int_equal(p->phy2log[i], coact[i]);
    ms_placement_free(p);
    ms_place_input in = {l, NULL, 0};
    assert_int_equal(ms_place_run(&in, &o, &p, &err), MS_E_INPUT);
    assert_non_null(strstr(err.msg, "co-activation"));
    ms_loads_free(l);
    ms_stats_free(s);
    ms_trace_free(t);
}

/* greedy-cost: with equal compute everywhere it spreads an expert's
 * replicas over rows (the hop term), and balances compute. */
static void test_greedy_cost(void **state) {
    (void)state;
    /* 2 rows x 2 cols x 2 slots, 4 experts, extra 4: each expert twice */
    const double w[4] = {64, 64, 64, 64};
    ms_loads *l = tu_loads(1, 4, w);
    ms_place_opts o;
    tu_place_opts(&o, "greedy-cost", 2, 2, 2);
    ms_placement *p = tu_place_ok(l, NULL, &o);
    tu_check_placement(p, &o, 4, 8, 8);
    for (uint32_t e = 0; e < 4; e++) {
        int32_t s[4];
        assert_int_equal(tu_replicas(p, 0, e, s), 2);
        assert_true(s[0] / 4 != s[1] / 4); /* rows differ (4 slots per row) */
    }
    /* every device holds two instances */
    for (uint32_t d = 0; d < 4; d++) assert_true(p->phy2log[d * 2] >= 0 && p->phy2log[d * 2 + 1] >= 0);
    ms_placement_free(p);
    ms_loads_free(l);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_balance_by_hand),   cmocka_unit_test(test_balance_col_axis),
        cmocka_unit_test(test_balance_shared),    cmocka_unit_test(test_hot_tier),
        cmocka_unit_test(test_balance_coact),     cmocka_unit_test(test_greedy_cost),
        cmocka_unit_test(test_random_invariants), cmocka_unit_test(test_reference_balance),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
