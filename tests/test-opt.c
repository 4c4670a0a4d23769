/* test-opt.c - the `search` optimiser: its surrogate (incremental vs from
 * scratch, and against the simulator), never worse than its start,
 * determinism, invariants, and a tiny instance solved by brute force. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moesim/opt.h"
#include "moesim/place.h"
#include "moesim/sim.h"
#include "moesim/trace.h"
#include "opt/surrogate.h"
#include "testutil.h"

/* ------------------------------------------------------------ helpers */

/* A random trace: nreq requests of 1..maxlen prompt rows, ids drawn from a
 * skewed popularity (expert e with weight 1/(1+e)^s, shuffled per layer),
 * distinct within a token. */
static ms_trace *rand_trace(uint64_t seed, uint32_t layers, uint32_t E, uint32_t k, uint32_t nreq, uint32_t maxlen,
                            double skew) {
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
        t->n_output[i] = 0;
        t->request_id[i] = i;
    }
    double *w = calloc(E, sizeof *w);
    uint32_t *perm = calloc(E, sizeof *perm);
    for (uint32_t l = 0; l < layers; l++) {
        for (uint32_t e = 0; e < E; e++) perm[e] = e;
        for (uint32_t e = E; e > 1; e--) {
            uint32_t j = (uint32_t)ms_rng_below(&r, e), x = perm[e - 1];
            perm[e - 1] = perm[j];
            perm[j] = x;
        }
        for (uint32_t e = 0; e < E; e++) w[perm[e]] = pow(1.0 + e, -skew);
        for (uint64_t tok = 0; tok < n; tok++) {
            uint16_t *row = t->experts + ((size_t)l * n + tok) * k;
            for (uint32_t j = 0; j < k; j++) {
                for (;;) {
                    double tot = 0;
                    for (uint32_t e = 0; e < E; e++) tot += w[e];
                    double u = ms_rng_uniform(&r) * tot;
                    uint32_t e = 0;
                    while (e + 1 < E && u >= w[e]) u -= w[e++];
                    bool dup = false;
                    for (uint32_t q = 0; q < j; q++) dup |= row[q] == e;
                    if (!dup) {
                        row[j] = (uint16_t)e;
                        break;
                    }
                }
            }
        }
    }
    free(w);
    free(perm);
    free(len);
    assert_int_equal(ms_trace_finish(t, &err), MS_OK);
    return t;
}

/* A random valid slot array: every routed expert at least once, shared
 * replicas (if any) one per row in column 0's first slot... here simply the
 * first `shared` devices' slot 0; the rest random routed ids without putting
 * one expert twice on a device; `empty` slots left at -1. */
static void rand_slots(ms_rng *r, const ms_cluster *c, uint32_t E, int32_t shared_id, uint32_t shared, uint32_t empty,
                       int32_t *slots) {
    uint32_t S = c->slots_per_device, D = ms_cluster_devices(c), P = D * S;
    for (;;) {
        for (uint32_t s = 0; s < P; s++) slots[s] = -2;
        for (uint32_t i = 0; i < shared; i++) slots[(i % D) * S] = shared_id;
        uint32_t free_n = 0;
        for (uint32_t s = 0; s < P; s++) free_n += slots[s] == -2;
        /* empties */
        for (uint32_t i = 0; i < empty; i++) {
            uint32_t s;
            do s = (uint32_t)ms_rng_below(r, P);
            while (slots[s] != -2);
            slots[s] = -1;
        }
        bool ok = true;
        /* each expert once, then random fill */
        for (uint32_t e = 0; e < E && ok; e++) {
            uint32_t tries = 0, s;
            do s = (uint32_t)ms_rng_below(r, P);
            while (slots[s] != -2 && ++tries < 1000);
            if (slots[s] != -2) ok = false;
            else slots[s] = (int32_t)e;
        }
        for (uint32_t s = 0; s < P && ok; s++) {
            if (slots[s] != -2) continue;
            uint32_t tries = 0;
            for (;;) {
                uint32_t e = (uint32_t)ms_rng_below(r, E);
                bool dup = false;
                for (uint32_t q = (s / S) * S; q < (s / S + 1) * S; q++) dup |= slots[q] == (int32_t)e;
                if (!dup) {
                    slots[s] = (int32_t)e;
                    break;
                }
                if (++tries > 1000) {
                    ok = false;
                    break;
                }
            }
        }
        if (ok) return;
    }
}

/* Per-batch expert counts of a plan (+ the shared column), and assignment lists. */
typedef struct windows {
    uint32_t B;
    uint32_t *cnt, *ntok;
    uint64_t *aoff;
    uint16_t *aid;
    double *orow;
} windows;

static void windows_build(const ms_trace *t, const ms_batch_plan *pl, uint32_t layer, uint32_t n_logical, bool shared,
                          uint32_t rows, uint32_t cols, windows *w) {
    w->B = (uint32_t)pl->n_batches;
    w->cnt = calloc((size_t)w->B * n_logical, sizeof *w->cnt);
    w->ntok = calloc(w->B, sizeof *w->ntok);
    w->aoff = calloc(w->B + 1, sizeof *w->aoff);
    w->aid = calloc(pl->n_tokens * (t->top_k + 1) + 1, sizeof *w->aid);
    w->orow = calloc((size_t)rows * n_logical, sizeof *w->orow);
    uint64_t a = 0;
    for (uint32_t b = 0; b < w->B; b++) {
        w->aoff[b] = a;
        for (uint64_t pos = pl->off[b]; pos < pl->off[b + 1]; pos++) {
            const uint16_t *ids = ms_trace_row(t, layer, pl->tok[pos]);
            for (uint32_t j = 0; j < t->top_k; j++) {
                w->cnt[(size_t)b * n_logical + ids[j]]++;
                w->aid[a++] = ids[j];
                w->orow[(size_t)(pl->origin[pos] / cols) * n_logical + ids[j]] += 1;
            }
            if (shared) w->aid[a++] = (uint16_t)(n_logical - 1);
        }
        w->ntok[b] = (uint32_t)(pl->off[b + 1] - pl->off[b]);
        if (shared) w->cnt[(size_t)b * n_logical + n_logical - 1] = w->ntok[b];
    }
    w->aoff[w->B] = a;
}

static void windows_free(windows *w) {
    free(w->cnt);
    free(w->ntok);
    free(w->aoff);
    free(w->aid);
    free(w->orow);
}

/* ------------------------------------------------------------ surrogate */

/* The value after any sequence of moves equals a recompute from scratch, bit
 * for bit, and sg_eval predicts sg_apply's value. Many random configurations. */
static void test_incremental_equals_full(void **state) {
    (void)state;
    ms_rng r;
    ms_rng_seed(&r, 7);
    double *tab = sg_clock_table_new(2.4, 0.3);
    int npw = 0;
    for (int cfg = 0; cfg < 96; cfg++) {
        sg_params p;
        memset(&p, 0, sizeof p);
        p.cl.rows = 1 + (uint32_t)ms_rng_below(&r, 3);
        p.cl.cols = 1 + (uint32_t)ms_rng_below(&r, 4);
        p.cl.slots_per_device = 1 + (uint32_t)ms_rng_below(&r, 3);
        uint32_t D = ms_cluster_devices(&p.cl), P = ms_cluster_slots(&p.cl);
        if (D < 2) {
            p.cl.cols = 2;
            D = ms_cluster_devices(&p.cl);
            P = ms_cluster_slots(&p.cl);
        }
        bool shared = ms_rng_below(&r, 3) == 0 && P >= D + 2;
        uint32_t nshared = shared ? 1 + (uint32_t)ms_rng_below(&r, p.cl.rows) : 0;
        uint32_t empty = ms_rng_below(&r, 4) == 0 ? 1 : 0;
        uint32_t room = P - nshared - empty;
        if (room < 3) {
            shared = false;
            nshared = empty = 0;
            room = P;
        }
        if (room < 3) continue;
        uint32_t E = 2 + (uint32_t)ms_rng_below(&r, room - 2 > 6 ? 6 : room - 2);
        if (E < p.cl.slots_per_device) E = p.cl.slots_per_device; /* S distinct experts fit on a device */
        if (E > room) continue;
        p.n_routed = E;
        p.n_logical = E + (shared ? 1 : 0);
        p.shared_id = shared ? (int32_t)E : -1;
        p.route = (sg_route)(cfg % 4);
        p.cf = ms_rng_below(&r, 2) ? 1.0 + ms_rng_uniform(&r) : 0;
        p.keff = 3;
        p.n_inst = P - empty;
        p.unit = (sg_unit)((cfg / 4) % 3);
        p.chunk = 3;
        p.unit_us = 118;
        p.tok_flops_us = 0.7;
        p.inst_bytes_us = 5.5;
        p.tok_bytes_us = 0.1;
        p.tail = ms_rng_below(&r, 2) ? 0.0 : 0.2;
        p.time_weights = ms_rng_below(&r, 2);
        p.traffic = (sg_traffic)(ms_rng_below(&r, 4));
        p.traffic_weight = p.traffic ? ms_rng_uniform(&r) : 0;
        uint32_t B = 1 + (uint32_t)ms_rng_below(&r, 9);
        uint32_t *cnt = calloc((size_t)B * p.n_logical, sizeof *cnt), *ntok = calloc(B, sizeof *ntok);
        double *orow = calloc((size_t)p.cl.rows * p.n_logical, sizeof *orow);
        /* assignment lists for least-loaded (consistent with the counts) */
        uint64_t *aoff = calloc(B + 1, sizeof *aoff);
        uint16_t *aid = calloc((size_t)B * 40 * (p.n_logical + 1), sizeof *aid);
        uint64_t a = 0;
        for (uint32_t b = 0; b < B; b++) {
            ntok[b] = 1 + (uint32_t)ms_rng_below(&r, 40);
            aoff[b] = a;
            bool lists = cfg % 8 >= 4;
            for (uint32_t tk = 0; tk < ntok[b]; tk++) {
                uint32_t e = (uint32_t)ms_rng_below(&r, E);
                if (ms_rng_below(&r, 3) == 0) e = (uint32_t)ms_rng_below(&r, 2 < E ? 2 : E);
                cnt[(size_t)b * p.n_logical + e]++;
                if (lists) aid[a++] = (uint16_t)e;
                if (shared) {
                    cnt[(size_t)b * p.n_logical + E]++;
                    if (lists) aid[a++] = (uint16_t)E;
                }
            }
        }
        aoff[B] = a;
        for (size_t i = 0; i < (size_t)p.cl.rows * p.n_logical; i++) orow[i] = (double)ms_rng_below(&r, 50);
        /* power objectives on half the roofline configurations: random caps,
         * weights, norms, dense work, with and without the clock table */
        sg_power pw;
        double *dense = NULL;
        if (p.unit == SG_ROOF && ms_rng_below(&r, 2)) {
            memset(&pw, 0, sizeof pw);
            pw.tok_flop_j = 2e-4 * ms_rng_uniform(&r);
            pw.tok_hbm_j = 2e-5 * ms_rng_uniform(&r);
            pw.inst_hbm_j = 1e-3 * ms_rng_uniform(&r);
            pw.idle_w = 50;
            pw.alpha = 2.4;
            pw.min_clock = 0.3;
            pw.gpu_w = ms_rng_below(&r, 3) ? 80 + 500 * ms_rng_uniform(&r) : INFINITY;
            pw.row_w = ms_rng_below(&r, 2) ? p.cl.cols * (60 + 300 * ms_rng_uniform(&r)) : INFINITY;
            pw.cluster_w = ms_rng_below(&r, 2) ? D * (60 + 300 * ms_rng_uniform(&r)) : INFINITY;
            for (int k = 0; k < 3; k++) {
                pw.w[k] = ms_rng_below(&r, 3) ? ms_rng_uniform(&r) : 0;
                pw.norm[k] = 0.5 + ms_rng_uniform(&r) * 100;
            }
            pw.w[ms_rng_below(&r, 3)] += 0.1;
            pw.peak_tail = 0.05 + 0.95 * ms_rng_uniform(&r);
            pw.clock_tab = ms_rng_below(&r, 2) ? tab : NULL;
            p.pw = &pw;
            dense = calloc((size_t)3 * B * D, sizeof *dense);
            for (size_t i = 0; i < (size_t)B * D; i++)
                if (ms_rng_below(&r, 3)) {
                    dense[i] = 20 * ms_rng_uniform(&r);
                    dense[B * D + i] = 3e-3 * ms_rng_uniform(&r);
                    dense[2 * B * D + i] = 1e-3 * ms_rng_uniform(&r);
                }
        }
        sg_data d = {B,   cnt, ntok, orow, p.route == SG_LEAST ? aoff : NULL, aid, dense, dense ? dense + B * D : NULL,
                     dense ? dense + 2 * (size_t)B * D : NULL};
        int32_t *slots = calloc(P, sizeof *slots), *check = calloc(P, sizeof *check);
        rand_slots(&r, &p.cl, E, p.shared_id, nshared, empty, slots);
        sg_state *s = NULL;
        ms_error err = {0};
        assert_int_equal(sg_new(&p, &d, slots, &s, &err), MS_OK);
        assert_true(sg_value(s) == sg_full_value(&p, &d, slots));
        int applied = 0, valid = 0;
        for (int it = 0; it < 400; it++) {
            sg_move m;
            m.kind = ms_rng_below(&r, 3) == 0 ? SG_REPLICA : SG_SWAP;
            m.a = (uint32_t)ms_rng_below(&r, P);
            m.b = (uint32_t)ms_rng_below(&r, P);
            m.e = (int32_t)ms_rng_below(&r, E);
            if (!sg_move_ok(s, &m)) continue;
            valid++;
            memcpy(check, sg_slots(s), P * sizeof *check);
            if (m.kind == SG_SWAP) {
                int32_t x = check[m.a];
                check[m.a] = check[m.b];
                check[m.b] = x;
            } else {
                check[m.a] = m.e;
            }
            double v = sg_eval(s, &m), f = sg_full_value(&p, &d, check);
            assert_true(v == f);
            if (ms_rng_below(&r, 2)) {
                sg_apply(s, &m);
                applied++;
                assert_memory_equal(sg_slots(s), check, P * sizeof *check);
                assert_true(sg_value(s) == f);
            }
        }
        if (valid > 10 && applied == 0) fail_msg("cfg %d: %d valid moves, none applied", cfg, valid);
        /* shared replicas never moved, every routed expert still placed */
        const int32_t *fin = sg_slots(s);
        if (shared)
            for (uint32_t q = 0; q < P; q++) assert_true((fin[q] == p.shared_id) == (slots[q] == p.shared_id));
        for (uint32_t e = 0; e < E; e++) assert_true(sg_nrep(s, e) >= 1);
        sg_free(s);
        free(slots);
        free(check);
        free(cnt);
        free(ntok);
        free(orow);
        free(aoff);
        free(aid);
        free(dense);
        npw += p.pw != NULL;
    }
    assert_true(npw > 5);
    ms_free(tab);
}

/* Hand-computed instance loads. */
static void test_instance_loads(void **state) {
    (void)state;
    sg_params p;
    memset(&p, 0, sizeof p);
    p.cl = (ms_cluster){1, 2, 2};
    p.n_routed = p.n_logical = 3;
    p.shared_id = -1;
    p.unit = SG_ASSIGN;
    p.route = SG_SPLIT;
    assert_true(sg_instance_load(&p, 7, 2, 1, 10) == 3.5);
    p.route = SG_RR; /* 7 tokens over 3 replicas from replica 0: 3, 2, 2 */
    assert_true(sg_instance_load(&p, 7, 3, 0, 10) == 3);
    assert_true(sg_instance_load(&p, 7, 3, 1, 10) == 2);
    assert_true(sg_instance_load(&p, 7, 3, 2, 10) == 2);
    p.route = SG_BALANCED; /* capacity floor(2 * 10 tokens * keff 1 / 4 instances) = 5 */
    p.cf = 2;
    p.keff = 1;
    p.n_inst = 4;
    assert_true(sg_instance_load(&p, 7, 2, 0, 10) == 5);
    assert_true(sg_instance_load(&p, 7, 2, 1, 10) == 2);
    assert_true(sg_instance_load(&p, 13, 2, 0, 10) == 7); /* overflow 3: round-robin from replica 0 */
    assert_true(sg_instance_load(&p, 13, 2, 1, 10) == 6);
    p.cf = 0; /* no capacity: replica 0 takes everything */
    assert_true(sg_instance_load(&p, 13, 2, 0, 10) == 13);
    assert_true(sg_instance_load(&p, 13, 2, 1, 10) == 0);
    p.route = SG_SPLIT;
    p.unit = SG_MESH;
    p.chunk = 32;
    p.unit_us = 118;
    assert_true(sg_instance_load(&p, 33, 1, 0, 10) == 236);
    assert_true(sg_instance_load(&p, 0, 1, 0, 10) == 0);
    p.unit = SG_ROOF;
    p.tok_flops_us = 1;
    p.inst_bytes_us = 10;
    p.tok_bytes_us = 0.5;
    assert_true(sg_instance_load(&p, 4, 1, 0, 10) == 12); /* max(4, 10 + 2) */
    assert_true(sg_instance_load(&p, 40, 1, 0, 10) == 40);
}

/* The surrogate's per-window maximum device load equals the simulator's
 * max_load per (batch, layer) for the routes it models exactly: split,
 * round-robin, balanced-replicas (accept overflow) and least-loaded (token
 * by token). */
static void test_surrogate_matches_sim(void **state) {
    (void)state;
    ms_hw_preset hw;
    ms_model_preset model;
    ms_error err = {0};
    assert_int_equal(ms_hw_preset_load("h100-sxm", &hw, &err), MS_OK);
    assert_int_equal(ms_model_preset_load("deepseek-v2-lite", &model, &err), MS_OK);
    ms_rng r;
    ms_rng_seed(&r, 11);
    for (int cfg = 0; cfg < 12; cfg++) {
        uint32_t E = 6 + (uint32_t)ms_rng_below(&r, 5), k = 1 + (uint32_t)ms_rng_below(&r, 3);
        ms_trace *t = rand_trace(100 + cfg, 2, E, k, 40, 12, 1.0);
        ms_cluster c = {2, 2 + (uint32_t)ms_rng_below(&r, 2), 3};
        bool shared = cfg % 3 == 0;
        ms_placement *pl = NULL;
        assert_int_equal(ms_placement_new(1, &c, E, shared, &pl, &err), MS_OK);
        rand_slots(&r, &c, E, shared ? (int32_t)E : -1, shared ? 2 : 0, 0, pl->phy2log);
        assert_int_equal(ms_placement_index(pl, &err), MS_OK);
        ms_batch_opts bo;
        ms_batch_opts_default(&bo);
        bo.mode = MS_BATCH_PREFILL;
        bo.batch_tokens = 30;
        ms_batch_plan *plan = NULL;
        assert_int_equal(ms_batch_plan_build(t, &bo, ms_cluster_devices(&c), &plan, &err), MS_OK);
        const ms_route routes[4] = {MS_ROUTE_SPLIT, MS_ROUTE_ROUND_ROBIN, MS_ROUTE_BALANCED, MS_ROUTE_LEAST_LOADED};
        const sg_route sgr[4] = {SG_SPLIT, SG_RR, SG_BALANCED, SG_LEAST};
        for (int ri = 0; ri < 4; ri++) {
            ms_sim_opts so;
            ms_sim_opts_default(&so);
            so.route = routes[ri];
            so.cost_model = routes[ri] == MS_ROUTE_SPLIT ? MS_COST_ROOFLINE : MS_COST_MESH;
            if (so.cost_model == MS_COST_ROOFLINE) so.origin = MS_ORIGIN_DP;
            so.hw = &hw;
            so.model = &model;
            so.layer = 1;
            so.threads = 1;
            ms_sim_result *res = NULL;
            assert_int_equal(ms_sim_run(t, plan, pl, &so, NULL, &res, &err), MS_OK);
            windows w;
            windows_build(t, plan, 1, pl->n_logical, shared, c.rows, c.cols, &w);
            sg_params p;
            memset(&p, 0, sizeof p);
            p.cl = c;
            p.n_routed = E;
            p.n_logical = pl->n_logical;
            p.shared_id = shared ? (int32_t)E : -1;
            p.route = sgr[ri];
            p.cf = routes[ri] == MS_ROUTE_BALANCED ? 2.0 : 0;
            p.keff = k + (shared ? 1 : 0);
            p.n_inst = pl->n_phys;
            p.unit = SG_ASSIGN;
            p.time_weights = true;
            sg_data d = {w.B, w.cnt, w.ntok, NULL, w.aoff, w.aid, NULL, NULL, NULL};
            sg_state *s = NULL;
            assert_int_equal(sg_new(&p, &d, pl->phy2log, &s, &err), MS_OK);
            assert_int_equal(res->n_records, w.B);
            for (uint32_t b = 0; b < w.B; b++) {
                double sv = sg_window_value(s, b), mv = res->records[b].max_load;
                /* split sums fixed-point shares: 1/65536 of an assignment per instance at most */
                double tol = routes[ri] == MS_ROUTE_SPLIT ? pl->n_phys / SG_SCALE : 1e-9 * (1 + mv);
                if (fabs(sv - mv) > tol)
                    fail_msg("cfg %d route %s batch %u: surrogate %.9g simulator %.9g", cfg, ms_route_name(routes[ri]),
                             b, sv, mv);
            }
            sg_free(s);
            windows_free(&w);
            ms_sim_result_free(res);
        }
        ms_batch_plan_free(plan);
        ms_placement_free(pl);
        ms_trace_free(t);
    }
}

/* ------------------------------------------------------------ search */

static double sim_objective(const ms_trace *t, const ms_placement *p, const ms_search_opts *o) {
    ms_error err = {0};
    ms_batch_plan *plan = NULL;
    assert_int_equal(ms_batch_plan_build(t, &o->batch, ms_cluster_devices(&p->cluster), &plan, &err), MS_OK);
    ms_sim_opts so = o->sim;
    ms_hw_preset hw;
    ms_model_preset model;
    if (so.cost_model == MS_COST_ROOFLINE) {
        assert_int_equal(ms_hw_preset_load("h100-sxm", &hw, &err), MS_OK);
        assert_int_equal(ms_model_preset_load(o->model_name ? o->model_name : "deepseek-v2-lite", &model, &err),
                         MS_OK);
        so.hw = &hw;
        so.model = &model;
        so.origin = MS_ORIGIN_DP;
    }
    so.keep_records = false;
    ms_sim_result *res = NULL;
    ms_status st = ms_sim_run(t, plan, p, &so, NULL, &res, &err);
    if (st != MS_OK) fail_msg("sim: %s", err.msg);
    double v = ms_search_objective_value(&res->summary, o->objective);
    ms_sim_result_free(res);
    ms_batch_plan_free(plan);
    return v;
}

static void search_opts(ms_search_opts *o, ms_cluster c, ms_route route, ms_cost_model cm, ms_search_objective obj) {
    ms_search_opts_default(o);
    o->place.cluster = c;
    o->place.lp_bound = false;
    o->sim.route = route;
    o->sim.cost_model = cm;
    o->objective = obj;
    o->batch.mode = MS_BATCH_PREFILL;
    o->batch.batch_tokens = 64;
    o->iterations = 4000;
    o->time_limit_s = 120;
    o->model_name = "deepseek-v2-lite";
    o->threads = 1;
}

/* Never worse than the initial placement on the training objective; the
 * reported objective is what the simulator says; invariants hold. */
static void test_search_not_worse(void **state) {
    (void)state;
    const struct {
        ms_route route;
        ms_cost_model cm;
        ms_search_objective obj;
        const char *init;
        bool shared;
    } cases[] = {
        {MS_ROUTE_ROUND_ROBIN, MS_COST_ROOFLINE, MS_OBJ_IMBALANCE, "eplb", false},
        {MS_ROUTE_LEAST_LOADED, MS_COST_ROOFLINE, MS_OBJ_IMBALANCE, "replicate", true},
        {MS_ROUTE_SPLIT, MS_COST_ROOFLINE, MS_OBJ_IMBALANCE_P99, "eplb", false},
        {MS_ROUTE_BALANCED, MS_COST_MESH, MS_OBJ_MEAN, "eplb", false},
        {MS_ROUTE_ROW_LOCAL, MS_COST_ROOFLINE, MS_OBJ_P99, "balance", false},
        {MS_ROUTE_BALANCED, MS_COST_MESH, MS_OBJ_P95, "contiguous", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ms_trace *t = rand_trace(500 + i, 3, 12, 2, 60, 20, 1.2);
        ms_search_opts o;
        search_opts(&o, (ms_cluster){2, 2, 4}, cases[i].route, cases[i].cm, cases[i].obj);
        o.init_algo = cases[i].init;
        o.place.shared_expert = cases[i].shared;
        if (cases[i].cm == MS_COST_MESH) o.batch.mode = MS_BATCH_PER_REQUEST;
        ms_place_opts po = o.place;
        po.algo = cases[i].init;
        ms_error err = {0};
        ms_placement *out = NULL, *init = NULL;
        /* the initial placement by hand; every other case hands search these statistics */
        ms_stats_opts sto;
        ms_stats_opts_default(&sto);
        ms_stats *stats = NULL;
        ms_loads *loads = NULL;
        assert_int_equal(ms_stats_compute(t, &sto, &stats, &err), MS_OK);
        assert_int_equal(ms_stats_to_loads(stats, &loads, &err), MS_OK);
        ms_place_input in = {loads, stats, t->digest};
        assert_int_equal(ms_place_run(&in, &po, &init, &err), MS_OK);
        ms_status st = ms_search_run(t, i % 2 ? &in : NULL, &o, &out, &err);
        if (st != MS_OK) fail_msg("case %zu: %s", i, err.msg);
        double f0 = sim_objective(t, init, &o), f1 = sim_objective(t, out, &o);
        assert_true(f1 <= f0);
        assert_true(fabs(out->objective - f1) <= 1e-9 * (1 + fabs(f1)));
        /* invariants */
        assert_int_equal(ms_placement_check(out, &err), MS_OK);
        assert_string_equal(out->algorithm, "search");
        assert_true(out->trace_digest == t->digest);
        assert_true(out->runtime_s >= 0);
        assert_int_equal(out->n_layers, init->n_layers);
        for (uint32_t l = 0; l < out->n_layers; l++) {
            uint32_t f_out = 0, f_init = 0;
            for (uint32_t q = 0; q < out->n_phys; q++) {
                const int32_t a = out->phy2log[(size_t)l * out->n_phys + q], b = init->phy2log[(size_t)l * out->n_phys + q];
                f_out += a >= 0;
                f_init += b >= 0;
                if (cases[i].shared) assert_true((a == (int32_t)out->n_routed) == (b == (int32_t)out->n_routed));
            }
            assert_int_equal(f_out, f_init);
        }
        json_error_t je;
        json_t *pj = json_loads(out->params, 0, &je);
        assert_non_null(pj);
        assert_string_equal(json_string_value(json_object_get(pj, "chosen")) ? "ok" : "", "ok");
        assert_true(fabs(json_real_value(json_object_get(pj, "init_objective")) - f0) <= 1e-6 * (1 + f0));
        json_decref(pj);
        if (cases[i].obj == MS_OBJ_IMBALANCE || cases[i].obj == MS_OBJ_IMBALANCE_P99) {
            assert_true(out->lower_bound >= 1.0 && out->lower_bound <= out->objective + 1e-12);
        } else {
            assert_true(isnan(out->lower_bound));
        }
        ms_placement_free(out);
        ms_placement_free(init);
        ms_stats_free(stats);
        ms_loads_free(loads);
        ms_trace_free(t);
    }
}

/* Same seed and inputs: the same placement, with 1 or 2 threads. */
static void test_search_deterministic(void **state) {
    (void)state;
    ms_trace *t = rand_trace(901, 4, 10, 2, 50, 16, 1.0);
    ms_placement *a = NULL, *b = NULL, *c = NULL;
    ms_error err = {0};
    ms_search_opts o;
    search_opts(&o, (ms_cluster){2, 2, 3}, MS_ROUTE_LEAST_LOADED, MS_COST_ROOFLINE, MS_OBJ_IMBALANCE);
    o.seed = 5;
    assert_int_equal(ms_search_run(t, NULL, &o, &a, &err), MS_OK);
    o.threads = 2;
    assert_int_equal(ms_search_run(t, NULL, &o, &b, &err), MS_OK);
    o.seed = 6;
    assert_int_equal(ms_search_run(t, NULL, &o, &c, &err), MS_OK);
    assert_memory_equal(a->phy2log, b->phy2log, (size_t)a->n_layers * a->n_phys * sizeof(int32_t));
    assert_true(a->objective == b->objective);
    /* the iteration count is part of params; only the runtime may differ */
    assert_true(strstr(a->params, "\"stopped_by_time\":false") != NULL);
    (void)c; /* another seed may or may not find another placement; it must still run */
    ms_placement_free(a);
    ms_placement_free(b);
    ms_placement_free(c);
    ms_trace_free(t);
}

/* A tiny instance: 1 x 3 devices x 2 slots, 4 experts, round-robin routing,
 * one batch per request. Brute force over every placement search can reach
 * (all slots filled, each expert at least once, no expert twice on a device)
 * gives the optimum of the mean imbalance; search must find it. */
static void test_search_bruteforce(void **state) {
    (void)state;
    ms_trace *t = rand_trace(77, 1, 4, 1, 12, 9, 1.5);
    ms_cluster c = {1, 3, 2};
    ms_search_opts o;
    search_opts(&o, c, MS_ROUTE_ROUND_ROBIN, MS_COST_ROOFLINE, MS_OBJ_IMBALANCE);
    o.batch.mode = MS_BATCH_PER_REQUEST;
    o.iterations = 20000;
    ms_error err = {0};
    ms_placement *p = NULL;
    assert_int_equal(ms_placement_new(1, &c, 4, false, &p, &err), MS_OK);
    double best = INFINITY;
    uint32_t n_valid = 0;
    for (uint32_t code = 0; code < 4096; code++) {
        uint32_t x = code, seen = 0;
        for (int s = 0; s < 6; s++, x >>= 2) {
            p->phy2log[s] = (int32_t)(x & 3);
            seen |= 1u << (x & 3);
        }
        if (seen != 15) continue;
        bool dup = false;
        for (int d = 0; d < 3; d++) dup |= p->phy2log[2 * d] == p->phy2log[2 * d + 1];
        if (dup) continue;
        ms_free(p->log2phy);
        ms_free(p->logcnt);
        p->log2phy = NULL;
        p->logcnt = NULL;
        assert_int_equal(ms_placement_index(p, &err), MS_OK);
        double v = sim_objective(t, p, &o);
        n_valid++;
        if (v < best) best = v;
    }
    assert_true(n_valid > 100);
    ms_placement *out = NULL;
    assert_int_equal(ms_search_run(t, NULL, &o, &out, &err), MS_OK);
    double got = sim_objective(t, out, &o);
    if (fabs(got - best) > 1e-12) fail_msg("search %.12g, brute force %.12g", got, best);
    ms_placement_free(out);
    ms_placement_free(p);
    ms_trace_free(t);
}

/* Options by name, and bad input. */
static void test_options(void **state) {
    (void)state;
    ms_search_opts o;
    ms_search_opts_default(&o);
    ms_error err = {0};
    assert_int_equal(ms_search_opts_set(&o, "objective", "p99", &err), MS_OK);
    assert_int_equal(o.objective, MS_OBJ_P99);
    assert_int_equal(ms_search_opts_set(&o, "route", "least-loaded", &err), MS_OK);
    assert_int_equal(o.sim.route, MS_ROUTE_LEAST_LOADED);
    assert_int_equal(ms_search_opts_set(&o, "batch-tokens", "512", &err), MS_OK);
    assert_int_equal(o.batch.batch_tokens, 512);
    assert_int_equal(ms_search_opts_set(&o, "iterations", "12", &err), MS_OK);
    assert_int_equal(o.iterations, 12);
    assert_int_equal(ms_search_opts_set(&o, "objective", "fast", &err), MS_E_INPUT);
    assert_non_null(strstr(err.msg, "objective"));
    assert_int_equal(ms_search_opts_set(&o, "chains", "0", &err), MS_E_INPUT);
    assert_int_equal(ms_search_opts_set(&o, "iterations", "-3", &err), MS_E_INPUT);
    assert_int_equal(ms_search_opts_set(&o, "init", "search", &err), MS_E_INPUT);
    assert_int_equal(ms_search_opts_set(&o, "colour", "red", &err), MS_E_INPUT);
    for (const char *const *n = ms_search_option_names(); *n; n++) assert_true(strlen(*n) > 0);
    /* split routing needs the roofline model; a bad layer; a bad init */
    ms_trace *t = rand_trace(3, 2, 6, 2, 10, 5, 1.0);
    ms_placement *out = NULL;
    search_opts(&o, (ms_cluster){1, 2, 4}, MS_ROUTE_SPLIT, MS_COST_MESH, MS_OBJ_IMBALANCE);
    assert_int_equal(ms_search_run(t, NULL, &o, &out, &err), MS_E_INPUT);
    assert_null(out);
    search_opts(&o, (ms_cluster){1, 2, 4}, MS_ROUTE_ROUND_ROBIN, MS_COST_ROOFLINE, MS_OBJ_IMBALANCE);
    o.sim.layer = 2;
    assert_int_equal(ms_search_run(t, NULL, &o, &out, &err), MS_E_INPUT);
    o.sim.layer = -1;
    o.init_algo = "nonsense";
    assert_int_equal(ms_search_run(t, NULL, &o, &out, &err), MS_E_INPUT);
    o.init_algo = "eplb";
    o.place.cluster = (ms_cluster){1, 1, 2}; /* 2 slots for 6 experts */
    assert_int_equal(ms_search_run(t, NULL, &o, &out, &err), MS_E_INPUT);
    /* --layer: only that layer changes */
    search_opts(&o, (ms_cluster){1, 2, 4}, MS_ROUTE_ROUND_ROBIN, MS_COST_ROOFLINE, MS_OBJ_IMBALANCE);
    o.sim.layer = 1;
    assert_int_equal(ms_search_run(t, NULL, &o, &out, &err), MS_OK);
    ms_placement *init = NULL;
    o.sim.layer = -1;
    o.iterations = 1;
    o.chains = 1;
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
    assert_memory_equal(out->phy2log, init->phy2log, out->n_phys * sizeof(int32_t)); /* layer 0 untouched */
    ms_placement_free(init);
    ms_placement_free(out);
    ms_stats_free(stats);
    ms_loads_free(loads);
    ms_trace_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_instance_loads),
        cmocka_unit_test(test_incremental_equals_full),
        cmocka_unit_test(test_surrogate_matches_sim),
        cmocka_unit_test(test_search_not_worse),
        cmocka_unit_test(test_search_deterministic),
        cmocka_unit_test(test_search_bruteforce),
        cmocka_unit_test(test_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
