/* test-online.c - re-placement over time (moesim/online.h): spans, step
 * loads against a naive count, migration priced by hand, the incremental
 * search against brute force and its copy budget, and replays: static equals
 * the plain simulation, K = 0 equals static, moved bytes = replicas x expert
 * bytes, the oracle never slower than the policies it is given, tokens
 * conserved across re-placements, same inputs same results, background
 * copies switching placements only when done, and a shift followed. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moesim/online.h"
#include "moesim/place.h"
#include "moesim/sim.h"

#define NEAR(a, b) assert_true(fabs((double)(a) - (double)(b)) <= 1e-9 * fmax(1.0, fabs((double)(b))))

/* nreq requests of `prompt` + `decode` rows; expert popularity Zipf-like over
 * a per-layer permutation that changes from request `shift` on */
static ms_trace *shifted_trace(uint64_t seed, uint32_t layers, uint32_t E, uint32_t k, uint32_t nreq,
                               uint32_t prompt, uint32_t decode, uint32_t shift) {
    uint64_t per = prompt + decode, n = (uint64_t)nreq * per;
    ms_trace *t = NULL;
    ms_error err = {0};
    assert_int_equal(ms_trace_new(layers, E, k, 0, nreq, n, &t, &err), MS_OK);
    for (uint32_t r = 0; r < nreq; r++) {
        t->tok_offset[r + 1] = t->tok_offset[r] + per;
        t->n_prompt[r] = prompt;
        t->n_output[r] = decode;
        t->request_id[r] = r;
    }
    ms_rng rng;
    ms_rng_seed(&rng, seed);
    uint16_t perm[2][64][64];
    for (int v = 0; v < 2; v++)
        for (uint32_t l = 0; l < layers; l++) {
            for (uint32_t e = 0; e < E; e++) perm[v][l][e] = (uint16_t)e;
            for (uint32_t e = E - 1; e > 0; e--) {
                uint32_t j = (uint32_t)ms_rng_below(&rng, e + 1);
                uint16_t x = perm[v][l][e];
                perm[v][l][e] = perm[v][l][j];
                perm[v][l][j] = x;
            }
        }
    for (uint32_t l = 0; l < layers; l++)
        for (uint64_t tok = 0; tok < n; tok++) {
            int v = tok / per >= shift;
            uint16_t *row = t->experts + ((uint64_t)l * n + tok) * k;
            for (uint32_t j = 0; j < k; j++) {
                uint16_t e;
                int dup;
                do {
                    double u = ms_rng_uniform(&rng);
                    uint32_t rank = (uint32_t)(u * u * u * E);
                    if (rank >= E) rank = E - 1;
                    e = perm[v][l][rank];
                    dup = 0;
                    for (uint32_t q = 0; q < j; q++) dup |= row[q] == e;
                } while (dup);
                row[j] = e;
            }
        }
    assert_int_equal(ms_trace_finish(t, &err), MS_OK);
    return t;
}

static ms_placement *eplb_on(const ms_trace *t, uint32_t rows, uint32_t cols, uint32_t spd, bool shared) {
    ms_stats_opts so;
    ms_stats_opts_default(&so);
    ms_stats *st = NULL;
    ms_error err = {0};
    assert_int_equal(ms_stats_compute(t, &so, &st, &err), MS_OK);
    ms_loads *l = tu_stats_loads(st);
    ms_place_opts po;
    tu_place_opts(&po, "eplb", rows, cols, spd);
    po.shared_expert = shared;
    po.lp_bound = false;
    po.top_k = t->top_k;
    ms_placement *p = tu_place_ok(l, st, &po);
    ms_loads_free(l);
    ms_stats_free(st);
    return p;
}

static void test_spans(void **state) {
    (void)state;
    ms_span s;
    ms_error err = {0};
    assert_int_equal(ms_span_parse("100", &s, &err), MS_OK);
    assert_true(s.n == 100 && s.unit == MS_SPAN_STEPS);
    assert_int_equal(ms_span_parse("20steps", &s, &err), MS_OK);
    assert_true(s.n == 20 && s.unit == MS_SPAN_STEPS);
    assert_int_equal(ms_span_parse("200ktokens", &s, &err), MS_OK);
    assert_true(s.n == 200000 && s.unit == MS_SPAN_TOKENS);
    assert_int_equal(ms_span_parse("3Mtokens", &s, &err), MS_OK);
    assert_true(s.n == 3000000);
    char buf[32];
    assert_string_equal(ms_span_format(&s, buf, sizeof buf), "3000000 tokens");
    const char *bad[] = {"", "0", "-5", "5x", "tokens", "12 steps", "99999999999999999999", "+3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(ms_span_parse(bad[i], &s, &err), MS_E_INPUT);
    ms_rebalance r;
    assert_int_equal(ms_rebalance_parse("periodic-eplb", &r, &err), MS_OK);
    assert_int_equal(r, MS_REBALANCE_PERIODIC_EPLB);
    assert_int_equal(ms_rebalance_parse("eplb", &r, &err), MS_E_INPUT);
    assert_non_null(strstr(err.msg, "incremental"));
    ms_migration m;
    assert_int_equal(ms_migration_parse("overlap", &m, &err), MS_OK);
    assert_int_equal(ms_migration_parse("async", &m, &err), MS_E_INPUT);
}

static void test_plan_loads(void **state) {
    (void)state;
    ms_trace *t = shifted_trace(1, 3, 16, 2, 12, 5, 3, 100);
    ms_batch_opts bo;
    ms_batch_opts_default(&bo);
    bo.mode = MS_BATCH_DECODE;
    bo.decode_batch = 4;
    bo.order = MS_ORDER_TRACE;
    ms_batch_plan *plan = NULL;
    ms_error err = {0};
    assert_int_equal(ms_batch_plan_build(t, &bo, 4, &plan, &err), MS_OK);
    ms_loads *l = NULL;
    uint64_t a = 1, b = plan->n_batches - 1;
    assert_int_equal(ms_plan_loads(t, plan, a, b, 16, true, &l, &err), MS_OK);
    assert_int_equal(l->n_experts, 17);
    for (uint32_t layer = 0; layer < 3; layer++) {
        double naive[16] = {0};
        for (uint64_t i = plan->off[a]; i < plan->off[b]; i++)
            for (uint32_t j = 0; j < 2; j++) naive[ms_trace_row(t, layer, plan->tok[i])[j]] += 1;
        for (uint32_t e = 0; e < 16; e++) assert_true(l->w[layer * 17 + e] == naive[e]);
        assert_true(l->w[layer * 17 + 16] == (double)(plan->off[b] - plan->off[a]));
    }
    ms_loads_free(l);
    assert_int_equal(ms_plan_loads(t, plan, 3, 3, 16, false, &l, &err), MS_E_INPUT);
    assert_int_equal(ms_plan_loads(t, plan, 0, plan->n_batches + 1, 16, false, &l, &err), MS_E_INPUT);
    assert_int_equal(ms_plan_loads(t, plan, 0, 1, 8, false, &l, &err), MS_E_INPUT);
    ms_batch_plan_free(plan);
    ms_trace_free(t);
}

static ms_placement *grid(uint32_t rows, uint32_t cols, uint32_t spd, uint32_t routed, bool shared,
                          const int32_t *phy) {
    ms_cluster c = {rows, cols, spd};
    ms_placement *p = NULL;
    ms_error err = {0};
    assert_int_equal(ms_placement_new(1, &c, routed, shared, &p, &err), MS_OK);
    memcpy(p->phy2log, phy, p->n_phys * sizeof *phy);
    assert_int_equal(ms_placement_index(p, &err), MS_OK);
    return p;
}

/* NVLink 100 GB/s x 0.5 = 50e3 bytes/us, alpha 2 us; network 10 GB/s x 0.5,
 * alpha 5 us */
static ms_hw_preset links(void) {
    ms_hw_preset hw;
    memset(&hw, 0, sizeof hw);
    snprintf(hw.name, sizeof hw.name, "links");
    hw.nvlink_gb_s = 100;
    hw.nvlink_efficiency = 0.5;
    hw.nvlink_latency_us = 2;
    hw.nic_gb_s = 10;
    hw.net_efficiency = 0.5;
    hw.net_latency_us = 5;
    return hw;
}

static void test_migration_by_hand(void **state) {
    (void)state;
    ms_hw_preset hw = links();
    ms_error err = {0};
    ms_migration_cost c;
    /* 2 rows x 2 devices x 1 slot; experts 0..3, and a replica of 0 on device 3 */
    const int32_t from_phy[4] = {0, 1, 2, 0};
    ms_placement *from = grid(2, 2, 1, 3, false, from_phy);
    /* same: nothing moves */
    assert_int_equal(ms_migration_price(from, from, 1e6, 0, &hw, &c, &err), MS_OK);
    assert_int_equal(c.moved, 0);
    assert_true(c.copy_us == 0 && c.bytes == 0);
    /* devices 0 and 1 (row 0) swap: two NVLink copies, each device sends and
     * receives 1 MB: 2 + 1e6 / 5e4 = 22 us */
    const int32_t swap_phy[4] = {1, 0, 2, 0};
    ms_placement *swap = grid(2, 2, 1, 3, false, swap_phy);
    assert_int_equal(ms_migration_price(from, swap, 1e6, 0, &hw, &c, &err), MS_OK);
    assert_int_equal(c.moved, 2);
    assert_int_equal(c.moved_inter, 0);
    NEAR(c.bytes, 2e6);
    NEAR(c.copy_us, 22.0);
    /* device 2 (row 1) takes expert 0: device 3 holds it in row 1 -> NVLink,
     * not the network; expert 2 goes to device 3 from device 2... no: device
     * 3 keeps nothing of 2; it gets 2 from device 2 (same row) */
    const int32_t row_phy[4] = {0, 1, 0, 2};
    ms_placement *row = grid(2, 2, 1, 3, false, row_phy);
    assert_int_equal(ms_migration_price(from, row, 1e6, 0, &hw, &c, &err), MS_OK);
    assert_int_equal(c.moved, 2);
    assert_int_equal(c.moved_inter, 0);
    /* device 1 (row 0) takes expert 2, held only in row 1: network,
     * 5 + 1e6 / 5e3 = 205 us */
    const int32_t net_phy[4] = {0, 2, 2, 0};
    ms_placement *net = grid(2, 2, 1, 3, false, net_phy);
    /* expert 1 vanishes: not a valid placement, so give expert 1 device 3 */
    ms_placement_free(net);
    const int32_t net2_phy[4] = {0, 2, 2, 1};
    net = grid(2, 2, 1, 3, false, net2_phy);
    assert_int_equal(ms_migration_price(from, net, 1e6, 0, &hw, &c, &err), MS_OK);
    /* device 1 gets 2 from device 2 (network), device 3 gets 1 from device 1 (network) */
    assert_int_equal(c.moved, 2);
    assert_int_equal(c.moved_inter, 2);
    NEAR(c.inter_bytes, 2e6);
    NEAR(c.copy_us, 205.0);
    /* mismatched grids are refused */
    const int32_t other_phy[8] = {0, 1, 2, 0, 0, 1, 2, 0};
    ms_placement *other = grid(2, 2, 2, 3, false, other_phy);
    assert_int_equal(ms_migration_price(from, other, 1e6, 0, &hw, &c, &err), MS_E_INPUT);
    assert_int_equal(ms_migration_price(from, swap, 0, 0, &hw, &c, &err), MS_E_INPUT);
    ms_placement_free(from);
    ms_placement_free(swap);
    ms_placement_free(row);
    ms_placement_free(net);
    ms_placement_free(other);
}

/* Sum over layers of the largest device value mean + z sqrt(variance), each
 * expert's mean and variance split over its replicas (var NULL: z = 0):
 * the incremental search's objective, computed here from scratch. */
static double value_of(const ms_placement *q, const ms_loads *mean, const ms_loads *var, double z) {
    double sum = 0;
    const uint32_t spd = q->cluster.slots_per_device, D = ms_cluster_devices(&q->cluster);
    for (uint32_t l = 0; l < q->n_layers; l++) {
        double mu[64] = {0}, vr[64] = {0}, best = 0;
        for (uint32_t s = 0; s < q->n_phys; s++) {
            int32_t e = q->phy2log[(size_t)l * q->n_phys + s];
            if (e < 0 || (uint32_t)e >= mean->n_experts) continue;
            double n = q->logcnt[(size_t)l * q->n_logical + (uint32_t)e];
            mu[s / spd] += mean->w[(size_t)l * mean->n_experts + (uint32_t)e] / n;
            if (var) vr[s / spd] += var->w[(size_t)l * var->n_experts + (uint32_t)e] / (n * n);
        }
        for (uint32_t d = 0; d < D; d++) {
            double v = mu[d] + (var ? z * sqrt(vr[d]) : 0);
            if (v > best) best = v;
        }
        sum += best;
    }
    return sum;
}

typedef struct objective {
    const ms_loads *mean, *var;
    double z;
} objective;

/* q = p with slot s holding e and, when x is a slot, x emptied; its
 * objective, or INFINITY when that is not a placement (an expert lost its
 * last replica). */
static double variant(const ms_placement *p, ms_placement *q, const objective *l, uint32_t s, int32_t e, int64_t x) {
    ms_error err = {0};
    memcpy(q->phy2log, p->phy2log, p->n_phys * sizeof(int32_t));
    q->phy2log[s] = e;
    if (x >= 0) q->phy2log[x] = -1;
    ms_free(q->log2phy);
    ms_free(q->logcnt);
    q->log2phy = NULL;
    q->logcnt = NULL;
    assert_int_equal(ms_placement_index(q, &err), MS_OK);
    if (ms_placement_check(q, &err) != MS_OK) return INFINITY;
    return value_of(q, l->mean, l->var, l->z);
}

/* Every placement one copy away from p - a slot (not the shared expert's)
 * takes an expert its device does not hold, the slot's old expert keeping a
 * replica elsewhere; or a replica moves into an empty slot of a device
 * without it - and the best expected maximum among them and p. */
static double brute_one_copy(const ms_placement *p, const objective *l) {
    double best = value_of(p, l->mean, l->var, l->z);
    const uint32_t spd = p->cluster.slots_per_device;
    const int32_t sh = p->has_shared ? (int32_t)p->n_routed : -2;
    ms_placement *q = NULL;
    ms_error err = {0};
    assert_int_equal(ms_placement_clone(p, &q, &err), MS_OK);
    for (uint32_t s = 0; s < p->n_phys; s++) {
        const int32_t old = p->phy2log[s];
        if (old == sh) continue;
        for (int32_t e = 0; e < (int32_t)p->n_logical; e++) {
            if (e == sh || e == old) continue;
            bool dup = false;
            for (uint32_t y = (s / spd) * spd; y < (s / spd + 1) * spd; y++) dup |= p->phy2log[y] == e;
            if (dup) continue;
            double v = variant(p, q, l, s, e, -1);
            if (v < best) best = v;
            if (old >= 0) continue;
            for (uint32_t x = 0; x < p->n_phys; x++) /* a move into the empty slot s */
                if (p->phy2log[x] == e) {
                    v = variant(p, q, l, s, e, x);
                    if (v < best) best = v;
                }
        }
    }
    ms_placement_free(q);
    return best;
}

/* The largest load per replica of a routed expert (EPLB's count objective)
 * plus a fraction for how many experts share it, so that a repair of one of
 * several tied experts shows as a decrease. */
static double max_share(const ms_placement *q, const ms_loads *l) {
    double m = 0;
    int ties = 0;
    for (uint32_t e = 0; e < q->n_routed; e++) {
        double v = l->w[e] / q->logcnt[e];
        if (v > m + 1e-12) m = v, ties = 1;
        else if (v > m - 1e-12) ties++;
    }
    return m + 1e-6 * ties;
}

static void test_incremental(void **state) {
    (void)state;
    int count_moves = 0;
    ms_rng rng;
    ms_rng_seed(&rng, 7);
    ms_error err = {0};
    for (int trial = 0; trial < 150; trial++) {
        /* 2 x 3 devices, 2 slots, 8 routed experts (+ shared in odd trials), some slots empty */
        bool shared = trial % 2;
        ms_cluster c = {2, 3, 2};
        ms_placement *p = NULL;
        assert_int_equal(ms_placement_new(1, &c, 8, shared, &p, &err), MS_OK);
        uint32_t s = 0;
        if (shared) p->phy2log[0] = 8, p->phy2log[8] = 8; /* device 0 and device 4 */
        for (uint32_t e = 0; e < 8; e++) {
            while (p->phy2log[s] != -1) s++;
            p->phy2log[s++] = (int32_t)e;
        }
        for (; s < 12; s++)
            if (p->phy2log[s] == -1 && ms_rng_below(&rng, 3)) {
                int32_t e = (int32_t)ms_rng_below(&rng, 8);
                bool dup = false;
                for (uint32_t x = (s / 2) * 2; x < (s / 2 + 1) * 2; x++) dup |= p->phy2log[x] == e;
                if (!dup) p->phy2log[s] = e;
            }
        assert_int_equal(ms_placement_index(p, &err), MS_OK);
        assert_int_equal(ms_placement_check(p, &err), MS_OK);
        ms_loads *l = NULL;
        assert_int_equal(ms_loads_new(1, p->n_logical, &l, &err), MS_OK);
        for (uint32_t e = 0; e < p->n_logical; e++) l->w[e] = floor(100 * pow(ms_rng_uniform(&rng), 3)) + 1;
        double before = ms_placement_expected_max(p, l);
        /* K = 0: the same placement */
        ms_placement *q = NULL;
        uint32_t copies = 99;
        assert_int_equal(ms_replay_incremental(p, l, NULL, 0, 0, &q, &copies, &err), MS_OK);
        assert_int_equal(copies, 0);
        assert_memory_equal(q->phy2log, p->phy2log, p->n_phys * sizeof(int32_t));
        ms_placement_free(q);
        /* K = 1: a replica-count repair (the largest share per replica drops and the
         * objective does not rise), or, when there is none, as good as the best
         * single copy found by brute force */
        assert_int_equal(ms_replay_incremental(p, l, NULL, 0, 1, &q, &copies, &err), MS_OK);
        assert_true(copies <= 1);
        objective obj = {l, NULL, 0};
        double one = ms_placement_expected_max(q, l), brute = brute_one_copy(p, &obj);
        NEAR(one, value_of(q, l, NULL, 0));
        if (max_share(q, l) < max_share(p, l) - 1e-12) {
            count_moves++;
            assert_true(one <= before + 1e-9);
            assert_true(brute <= one + 1e-9);
        } else {
            NEAR(one, brute);
        }
        ms_placement_free(q);
        /* with per-step variances and z = 2: the same against brute force on that objective */
        ms_loads *var = NULL;
        assert_int_equal(ms_loads_new(1, p->n_logical, &var, &err), MS_OK);
        for (uint32_t e = 0; e < p->n_logical; e++) var->w[e] = l->w[e] * (ms_rng_uniform(&rng) * 4);
        assert_int_equal(ms_replay_incremental(p, l, var, 2.0, 1, &q, &copies, &err), MS_OK);
        objective objv = {l, var, 2.0};
        if (max_share(q, l) < max_share(p, l) - 1e-12)
            assert_true(value_of(q, l, var, 2.0) <= value_of(p, l, var, 2.0) + 1e-9);
        else
            NEAR(value_of(q, l, var, 2.0), brute_one_copy(p, &objv));
        ms_placement_free(q);
        assert_int_equal(ms_replay_incremental(p, l, var, 2.0, 6, &q, &copies, &err), MS_OK);
        assert_true(value_of(q, l, var, 2.0) <= value_of(p, l, var, 2.0) + 1e-9);
        ms_placement_free(q);
        assert_int_equal(ms_replay_incremental(p, l, var, -1, 6, &q, &copies, &err), MS_E_INPUT);
        ms_loads_free(var);
        /* larger budgets: never worse, never more copies than allowed, the
         * copies are what the migration prices, the shared expert stays */
        double prev = one;
        for (uint32_t K = 2; K <= 8; K += 3) {
            assert_int_equal(ms_replay_incremental(p, l, NULL, 0, K, &q, &copies, &err), MS_OK);
            assert_true(copies <= K);
            double v = ms_placement_expected_max(q, l);
            assert_true(v <= before + 1e-9);
            assert_true(v <= prev + 1e-9 || K == 2); /* K = 2 may spend both copies on one swap */
            prev = v;
            ms_hw_preset hw = links();
            ms_migration_cost mc;
            assert_int_equal(ms_migration_price(p, q, 10, 0, &hw, &mc, &err), MS_OK);
            assert_true(mc.moved <= copies); /* a later move may undo part of an earlier one */
            for (uint32_t x = 0; x < p->n_phys; x++)
                if (p->phy2log[x] == 8) assert_int_equal(q->phy2log[x], 8);
            for (uint32_t d = 0; d < 6; d++) /* no device holds an expert twice */
                assert_true(q->phy2log[2 * d] < 0 || q->phy2log[2 * d] != q->phy2log[2 * d + 1]);
            ms_placement_free(q);
        }
        ms_loads_free(l);
        ms_placement_free(p);
    }
    assert_true(count_moves > 0 && count_moves < 150); /* both branches were exercised */
    /* loads of the wrong shape */
    const int32_t phy[4] = {0, 1, 2, 0};
    ms_placement *p = grid(2, 2, 1, 3, false, phy);
    ms_loads *l = NULL;
    assert_int_equal(ms_loads_new(1, 5, &l, &err), MS_OK);
    ms_placement *q = NULL;
    assert_int_equal(ms_replay_incremental(p, l, NULL, 0, 4, &q, NULL, &err), MS_E_INPUT);
    ms_loads_free(l);
    ms_placement_free(p);
}

/* ---------------------------------------------------------- replays */

typedef struct fixture {
    ms_trace *t;
    ms_batch_plan *plan;
    ms_placement *init;
    ms_hw_preset hw;
    ms_model_preset model;
    ms_sim_opts so;
    ms_replay_opts ro;
} fixture;

static void fixture_init(fixture *f, ms_cost_model cm, ms_route route, bool shared) {
    memset(f, 0, sizeof *f);
    /* 60 requests, popularity shifts at request 30; the placement fits the first half */
    f->t = shifted_trace(11, 2, 32, 4, 60, 24, 8, 30);
    ms_trace *first = NULL;
    ms_error err = {0};
    uint64_t idx[30];
    for (int i = 0; i < 30; i++) idx[i] = (uint64_t)i;
    assert_int_equal(ms_trace_select(f->t, idx, 30, &first, &err), MS_OK);
    f->init = eplb_on(first, 2, 4, 6, shared);
    ms_trace_free(first);
    ms_batch_opts bo;
    ms_batch_opts_default(&bo);
    bo.mode = MS_BATCH_MIXED;
    bo.order = MS_ORDER_TRACE;
    bo.decode_batch = 8;
    bo.batch_tokens = 64;
    assert_int_equal(ms_batch_plan_build(f->t, &bo, 8, &f->plan, &err), MS_OK);
    assert_int_equal(ms_hw_preset_load("h100-sxm", &f->hw, &err), MS_OK);
    assert_int_equal(ms_model_preset_load("deepseek-v3", &f->model, &err), MS_OK);
    ms_sim_opts_default(&f->so);
    f->so.cost_model = cm;
    f->so.route = route;
    f->so.origin = MS_ORIGIN_DP;
    f->so.hw = &f->hw;
    f->so.model = &f->model;
    f->so.threads = 2;
    ms_replay_opts_default(&f->ro);
    f->ro.every.n = 10;
    f->ro.max_moves = 12;
    f->ro.expert_bytes = 3.0 * 7168 * 2048;
    f->ro.hw = &f->hw;
}

static void fixture_free(fixture *f) {
    ms_trace_free(f->t);
    ms_batch_plan_free(f->plan);
    ms_placement_free(f->init);
}

static ms_replay_result *replay(const fixture *f, ms_rebalance policy) {
    ms_replay_opts ro = f->ro;
    ro.policy = policy;
    ms_replay_result *r = NULL;
    ms_error err = {0};
    ms_status st = ms_replay_run(f->t, f->plan, f->init, &f->so, &ro, &r, &err);
    if (st != MS_OK) fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(st, MS_OK);
    return r;
}

static void assert_same_steps(const ms_replay_result *a, const ms_replay_result *b) {
    assert_int_equal(a->n_steps, b->n_steps);
    for (uint64_t i = 0; i < a->n_steps; i++) {
        ms_replay_step x = a->steps[i], y = b->steps[i];
        assert_memory_equal(&x, &y, sizeof x);
    }
}

static void test_static_is_simulate(void **state) {
    (void)state;
    fixture f;
    fixture_init(&f, MS_COST_ROOFLINE, MS_ROUTE_LEAST_LOADED, true);
    ms_replay_result *r = replay(&f, MS_REBALANCE_STATIC);
    ms_sim_result *sr = NULL;
    ms_error err = {0};
    assert_int_equal(ms_sim_run(f.t, f.plan, f.init, &f.so, NULL, &sr, &err), MS_OK);
    assert_int_equal(r->n_steps, f.plan->n_batches);
    assert_int_equal(r->n_events, 0);
    assert_int_equal(r->n_versions, 1);
    NEAR(r->summary.serve_us, sr->summary.total_us);
    assert_true(r->summary.migration_us == 0);
    NEAR(r->summary.imbalance, sr->summary.imbalance.mean);
    for (uint64_t s = 0; s < r->n_steps; s++) {
        double imb = 0;
        for (uint32_t l = 0; l < 2; l++) imb += sr->records[s * 2 + l].imbalance;
        NEAR(r->steps[s].imbalance, imb / 2);
        assert_int_equal(r->steps[s].tokens, f.plan->off[s + 1] - f.plan->off[s]);
    }
    ms_sim_result_free(sr);
    ms_replay_result_free(r);
    fixture_free(&f);
}

static void test_zero_moves_is_static(void **state) {
    (void)state;
    for (int m = 0; m < 2; m++) {
        fixture f;
        fixture_init(&f, m ? MS_COST_MESH : MS_COST_ROOFLINE, m ? MS_ROUTE_BALANCED : MS_ROUTE_ROUND_ROBIN, m);
        if (m) f.so.origin = MS_ORIGIN_AVERAGE_ROWS;
        ms_replay_result *st = replay(&f, MS_REBALANCE_STATIC);
        f.ro.max_moves = 0;
        ms_replay_result *inc = replay(&f, MS_REBALANCE_INCREMENTAL);
        assert_same_steps(st, inc);
        assert_int_equal(inc->n_events, 0);
        assert_true(inc->summary.decisions > 0);
        assert_true(inc->summary.total_us == st->summary.total_us);
        ms_replay_result_free(st);
        ms_replay_result_free(inc);
        fixture_free(&f);
    }
}

static void test_moved_bytes_and_conservation(void **state) {
    (void)state;
    fixture f;
    fixture_init(&f, MS_COST_ROOFLINE, MS_ROUTE_LEAST_LOADED, false);
    f.so.capacity_factor = 1.2;
    f.so.overflow = MS_OVERFLOW_DROP;
    for (int pol = MS_REBALANCE_PERIODIC_EPLB; pol <= MS_REBALANCE_INCREMENTAL; pol++) {
        ms_replay_result *r = replay(&f, (ms_rebalance)pol);
        assert_true(r->n_events > 0);
        uint64_t moved = 0;
        for (uint64_t e = 0; e < r->n_events; e++) {
            const ms_replay_event *ev = &r->events[e];
            NEAR(ev->cost.bytes, ev->cost.moved * f.ro.expert_bytes);
            assert_true(ev->cost.moved > 0 && ev->cost.copy_us > 0);
            if (pol == MS_REBALANCE_INCREMENTAL) assert_true(ev->cost.moved <= f.ro.max_moves);
            assert_true(ev->effective == ev->point); /* stall */
            NEAR(r->steps[ev->point].migration_us, ev->cost.copy_us);
            moved += ev->cost.moved;
        }
        assert_int_equal(r->summary.moved, moved);
        NEAR(r->summary.bytes, moved * f.ro.expert_bytes);
        /* every routing event lands or is dropped, whatever placement serves it */
        assert_int_equal(r->summary.assignments + r->summary.dropped, f.t->n_tokens * f.t->top_k * f.t->n_layers);
        assert_int_equal(r->summary.tokens, f.t->n_tokens);
        NEAR(r->summary.total_us, r->summary.serve_us + r->summary.migration_us);
        ms_replay_result_free(r);
    }
    fixture_free(&f);
}

static void test_oracle_bound(void **state) {
    (void)state;
    fixture f;
    fixture_init(&f, MS_COST_ROOFLINE, MS_ROUTE_LEAST_LOADED, false);
    ms_replay_result *rv[3] = {replay(&f, MS_REBALANCE_STATIC), replay(&f, MS_REBALANCE_PERIODIC_EPLB),
                               replay(&f, MS_REBALANCE_INCREMENTAL)};
    ms_replay_opts ro = f.ro;
    ro.policy = MS_REBALANCE_ORACLE;
    ro.rivals = (const ms_replay_result *const *)rv;
    ro.n_rivals = 3;
    ms_replay_result *o = NULL;
    ms_error err = {0};
    assert_int_equal(ms_replay_run(f.t, f.plan, f.init, &f.so, &ro, &o, &err), MS_OK);
    assert_true(o->summary.migration_us == 0);
    /* per interval (points every 10 steps, shared by all: stall mode) */
    for (uint64_t a = 0; a < o->n_steps; a += 10) {
        uint64_t b = a + 10 < o->n_steps ? a + 10 : o->n_steps;
        double ov = 0;
        for (uint64_t s = a; s < b; s++) ov += o->steps[s].serve_us;
        for (int i = 0; i < 3; i++) {
            double x = 0;
            for (uint64_t s = a; s < b; s++) x += rv[i]->steps[s].serve_us;
            assert_true(ov <= x * (1 + 1e-12));
        }
    }
    for (int i = 0; i < 3; i++) assert_true(o->summary.total_us <= rv[i]->summary.total_us);
    /* alone it still never loses to static */
    ms_replay_result *alone = replay(&f, MS_REBALANCE_ORACLE);
    assert_true(alone->summary.serve_us <= rv[0]->summary.serve_us);
    ms_replay_result_free(alone);
    ms_replay_result_free(o);
    for (int i = 0; i < 3; i++) ms_replay_result_free(rv[i]);
    fixture_free(&f);
}

static void test_deterministic(void **state) {
    (void)state;
    fixture f;
    fixture_init(&f, MS_COST_ROOFLINE, MS_ROUTE_RANDOM, true);
    f.so.seed = 5;
    f.ro.every.unit = MS_SPAN_TOKENS;
    f.ro.every.n = 300;
    f.ro.window.n = 600;
    f.ro.window.unit = MS_SPAN_TOKENS;
    for (int pol = 0; pol < MS_REBALANCE_COUNT; pol++) {
        ms_replay_result *a = replay(&f, (ms_rebalance)pol);
        f.so.threads = 1;
        ms_replay_result *b = replay(&f, (ms_rebalance)pol);
        f.so.threads = 2;
        assert_same_steps(a, b);
        assert_int_equal(a->n_events, b->n_events);
        for (uint64_t e = 0; e < a->n_events; e++) {
            ms_replay_event x = a->events[e], y = b->events[e];
            x.decide_us = y.decide_us = 0;
            assert_memory_equal(&x, &y, sizeof x);
        }
        for (uint32_t v = 0; v < a->n_versions; v++)
            assert_memory_equal(a->versions[v]->phy2log, b->versions[v]->phy2log,
                                (size_t)a->versions[v]->n_layers * a->versions[v]->n_phys * sizeof(int32_t));
        ms_replay_result_free(a);
        ms_replay_result_free(b);
    }
    fixture_free(&f);
}

static void test_overlap(void **state) {
    (void)state;
    fixture f;
    fixture_init(&f, MS_COST_ROOFLINE, MS_ROUTE_LEAST_LOADED, false);
    f.ro.migration = MS_MIGRATION_OVERLAP;
    f.ro.policy = MS_REBALANCE_PERIODIC_EPLB;
    /* slow links: copies outlast several steps */
    f.hw.nic_gb_s = 0.5;
    f.hw.nvlink_gb_s = 2;
    ms_replay_result *r = replay(&f, MS_REBALANCE_PERIODIC_EPLB);
    assert_true(r->n_events > 0);
    for (uint64_t e = 0; e < r->n_events; e++) {
        const ms_replay_event *ev = &r->events[e];
        assert_true(ev->effective > ev->point);
        /* the old placement serves until the copy's link time is covered by served steps */
        double served = 0;
        for (uint64_t s = ev->point; s < ev->effective && s < r->n_steps; s++) {
            assert_true(r->steps[s].version != ev->version);
            assert_true(r->steps[s].migration_us <= r->steps[s].comm_us * (1 + 1e-12));
            served += r->steps[s].serve_us;
        }
        if (ev->effective < r->n_steps) {
            assert_true(served >= ev->cost.copy_us * (1 - 1e-12));
            assert_int_equal(r->steps[ev->effective].version, ev->version);
        }
    }
    assert_true(r->summary.skipped > 0);
    assert_true(r->summary.migration_us > 0);
    ms_replay_result_free(r);
    fixture_free(&f);
}

/* after the shift, a policy that follows the loads beats the placement
 * made for the first half */
static void test_follows_shift(void **state) {
    (void)state;
    fixture f;
    fixture_init(&f, MS_COST_ROOFLINE, MS_ROUTE_LEAST_LOADED, false);
    /* the first step that serves a request >= 30 */
    uint64_t split = 0;
    uint64_t first_tok = f.t->tok_offset[30];
    while (split < f.plan->n_batches) {
        bool hit = false;
        for (uint64_t i = f.plan->off[split]; i < f.plan->off[split + 1]; i++) hit |= f.plan->tok[i] >= first_tok;
        if (hit) break;
        split++;
    }
    f.ro.after_step = split;
    f.ro.max_moves = 24;
    ms_replay_result *st = replay(&f, MS_REBALANCE_STATIC), *pe = replay(&f, MS_REBALANCE_PERIODIC_EPLB),
                     *inc = replay(&f, MS_REBALANCE_INCREMENTAL), *orc = replay(&f, MS_REBALANCE_ORACLE);
    assert_true(st->summary.steps_after > 0 && st->summary.steps_before > 0);
    assert_int_equal(st->summary.steps_after + st->summary.steps_before, st->n_steps);
    assert_true(pe->summary.imbalance_after < st->summary.imbalance_after);
    assert_true(inc->summary.imbalance_after < st->summary.imbalance_after);
    assert_true(inc->summary.bytes < pe->summary.bytes);
    assert_true(orc->summary.serve_us <= st->summary.serve_us);
    ms_replay_result_free(st);
    ms_replay_result_free(pe);
    ms_replay_result_free(inc);
    ms_replay_result_free(orc);
    fixture_free(&f);
}

static void test_bad_options(void **state) {
    (void)state;
    fixture f;
    fixture_init(&f, MS_COST_ROOFLINE, MS_ROUTE_LEAST_LOADED, false);
    ms_replay_result *r = NULL;
    ms_error err = {0};
    ms_replay_opts ro = f.ro;
    ro.every.n = 0;
    assert_int_equal(ms_replay_run(f.t, f.plan, f.init, &f.so, &ro, &r, &err), MS_E_INPUT);
    ro = f.ro;
    ro.expert_bytes = 0;
    assert_int_equal(ms_replay_run(f.t, f.plan, f.init, &f.so, &ro, &r, &err), MS_E_INPUT);
    ro = f.ro;
    ro.hw = NULL;
    assert_int_equal(ms_replay_run(f.t, f.plan, f.init, &f.so, &ro, &r, &err), MS_E_INPUT);
    ms_sim_opts so = f.so;
    so.layer = 1;
    assert_int_equal(ms_replay_run(f.t, f.plan, f.init, &so, &f.ro, &r, &err), MS_E_INPUT);
    assert_null(r);
    fixture_free(&f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spans),
        cmocka_unit_test(test_plan_loads),
        cmocka_unit_test(test_migration_by_hand),
        cmocka_unit_test(test_incremental),
        cmocka_unit_test(test_static_is_simulate),
        cmocka_unit_test(test_zero_moves_is_static),
        cmocka_unit_test(test_moved_bytes_and_conservation),
        cmocka_unit_test(test_oracle_bound),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_overlap),
        cmocka_unit_test(test_follows_shift),
        cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
