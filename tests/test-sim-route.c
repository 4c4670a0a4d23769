/* test-sim-route.c - replica routing policies on crafted cases, capacity
 * with drop / reroute (ranked and proxy), conservation of assignments, and
 * the batch plans (per request, prefill packing, continuous decode
 * batching, data-parallel ranks). */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moesim/place.h"
#include "moesim/sim.h"
#include "moesim/trace.h"

static ms_trace *mk_trace_r(uint32_t layers, uint32_t experts, uint32_t k, uint32_t ranked, uint64_t nreq,
                            const uint32_t *ntok, const uint32_t *nprompt, const uint16_t *ids, const uint16_t *rk) {
    uint64_t n = 0;
    for (uint64_t r = 0; r < nreq; r++) n += ntok[r];
    ms_trace *t = NULL;
    ms_error err = {0};
    assert_int_equal(ms_trace_new(layers, experts, k, ranked, nreq, n, &t, &err), MS_OK);
    for (uint64_t r = 0; r < nreq; r++) {
        t->tok_offset[r + 1] = t->tok_offset[r] + ntok[r];
        t->n_prompt[r] = nprompt ? nprompt[r] : ntok[r];
        t->n_output[r] = ntok[r] - t->n_prompt[r];
    }
    memcpy(t->experts, ids, (size_t)layers * n * k * sizeof(uint16_t));
    if (ranked) memcpy(t->ranked, rk, (size_t)layers * n * ranked * sizeof(uint16_t));
    assert_int_equal(ms_trace_finish(t, &err), MS_OK);
    return t;
}

static ms_trace *mk_trace(uint32_t layers, uint32_t experts, uint32_t k, uint64_t nreq, const uint32_t *ntok,
                          const uint16_t *ids) {
    return mk_trace_r(layers, experts, k, 0, nreq, ntok, NULL, ids, NULL);
}

static ms_placement *mk_place(uint32_t rows, uint32_t cols, uint32_t spd, uint32_t routed, bool shared,
                              const int32_t *phy2log) {
    ms_cluster c = {rows, cols, spd};
    ms_placement *p = NULL;
    ms_error err = {0};
    assert_int_equal(ms_placement_new(1, &c, routed, shared, &p, &err), MS_OK);
    memcpy(p->phy2log, phy2log, p->n_phys * sizeof(int32_t));
    assert_int_equal(ms_placement_index(p, &err), MS_OK);
    return p;
}

typedef struct loads_ctx {
    double load[64];
    uint32_t n;
} loads_ctx;

static void grab(void *ctx, const ms_sim_step *st) {
    loads_ctx *c = ctx;
    c->n = st->n_devices;
    for (uint32_t d = 0; d < st->n_devices && d < 64; d++) c->load[d] = st->load[d];
}

static ms_sim_result *run(const ms_trace *t, const ms_placement *p, const ms_sim_opts *o, const ms_batch_opts *bo,
                          loads_ctx *lc) {
    ms_batch_opts b;
    ms_batch_opts_default(&b);
    if (bo) b = *bo;
    ms_batch_plan *plan = NULL;
    ms_error err = {0};
    assert_int_equal(ms_batch_plan_build(t, &b, ms_cluster_devices(&p->cluster), &plan, &err), MS_OK);
    ms_sim_hooks h = {grab, lc};
    ms_sim_result *r = NULL;
    ms_status st = ms_sim_run(t, plan, p, o, lc ? &h : NULL, &r, &err);
    if (st != MS_OK) fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(st, MS_OK);
    ms_batch_plan_free(plan);
    return r;
}

static void opts_mesh(ms_sim_opts *o, ms_route r) {
    ms_sim_opts_default(o);
    o->route = r;
    o->capacity_factor = 0;
    o->origin = MS_ORIGIN_DP;
    o->threads = 1;
}

/* 1 row x 4 devices, 1 slot: e0 on devices 0 and 1, e1 on device 2, e2 on
 * device 3. */
static const int32_t P14[4] = {0, 0, 1, 2};

static void test_least_loaded(void **state) {
    (void)state;
    /* tokens: [1,0] [0,2] [0,2] [0,2]: e0 goes to the replica whose device
     * has the fewer assignments so far: t0 -> dev 0 (tie: first), t1 -> dev 1,
     * t2 -> dev 0, t3 -> dev 1 */
    uint32_t nt[1] = {4};
    uint16_t ids[8] = {1, 0, 0, 2, 0, 2, 0, 2};
    ms_trace *t = mk_trace(1, 3, 2, 1, nt, ids);
    ms_placement *p = mk_place(1, 4, 1, 3, false, P14);
    ms_sim_opts o;
    opts_mesh(&o, MS_ROUTE_LEAST_LOADED);
    loads_ctx lc = {0};
    ms_sim_result *r = run(t, p, &o, NULL, &lc);
    assert_true(lc.load[0] == 2 && lc.load[1] == 2 && lc.load[2] == 1 && lc.load[3] == 3);
    ms_sim_result_free(r);
    /* round-robin alternates 0, 1, 0, 1 too; balanced-replicas (no
     * capacity) keeps every e0 on the first replica */
    opts_mesh(&o, MS_ROUTE_ROUND_ROBIN);
    r = run(t, p, &o, NULL, &lc);
    assert_true(lc.load[0] == 2 && lc.load[1] == 2);
    ms_sim_result_free(r);
    opts_mesh(&o, MS_ROUTE_BALANCED);
    r = run(t, p, &o, NULL, &lc);
    assert_true(lc.load[0] == 4 && lc.load[1] == 0);
    ms_sim_result_free(r);
    ms_trace_free(t);
    ms_placement_free(p);
}

static void test_least_loaded_counts_whole_device(void **state) {
    (void)state;
    /* 1 x 2 devices, 2 slots: device 0 holds e0 and e1, device 1 holds e0'
     * and e2. Tokens [1,0]: e1 loads device 0 first, so e0 goes to device 1
     * (least loaded by device, not by replica) */
    int32_t ph[4] = {0, 1, 0, 2};
    ms_placement *p = mk_place(1, 2, 2, 3, false, ph);
    uint32_t nt[1] = {1};
    uint16_t ids[2] = {1, 0};
    ms_trace *t = mk_trace(1, 3, 2, 1, nt, ids);
    ms_sim_opts o;
    opts_mesh(&o, MS_ROUTE_LEAST_LOADED);
    loads_ctx lc = {0};
    ms_sim_result *r = run(t, p, &o, NULL, &lc);
    assert_true(lc.load[0] == 1 && lc.load[1] == 1);
    ms_sim_result_free(r);
    ms_trace_free(t);
    ms_placement_free(p);
}

static void test_random_seeded(void **state) {
    (void)state;
    uint32_t nt[1] = {400};
    uint16_t ids[800];
    for (int i = 0; i < 400; i++) ids[2 * i] = 0, ids[2 * i + 1] = 1;
    ms_trace *t = mk_trace(1, 3, 2, 1, nt, ids);
    ms_placement *p = mk_place(1, 4, 1, 3, false, P14);
    ms_sim_opts o;
    opts_mesh(&o, MS_ROUTE_RANDOM);
    o.seed = 3;
    loads_ctx a = {0}, b = {0}, c = {0};
    ms_sim_result *r = run(t, p, &o, NULL, &a);
    ms_sim_result_free(r);
    r = run(t, p, &o, NULL, &b);
    ms_sim_result_free(r);
    o.seed = 4;
    r = run(t, p, &o, NULL, &c);
    ms_sim_result_free(r);
    assert_true(a.load[0] == b.load[0]);             /* same seed, same draws */
    assert_true(a.load[0] + a.load[1] == 400);       /* e0 on its two replicas */
    assert_true(a.load[0] > 150 && a.load[0] < 250); /* roughly even */
    assert_true(c.load[0] + c.load[1] == 400);
    ms_trace_free(t);
    ms_placement_free(p);
}

static void test_row_local(void **state) {
    (void)state;
    /* 2 rows x 1 col x 2 slots: device 0 (row 0) holds e0 and e1, device 1
     * (row 1) holds e0. A request of 6 tokens choosing e0 stays in its own
     * row unless own-row load > (1 + slack) x the least load + 1. */
    int32_t ph[4] = {0, 1, 0, -1};
    ms_placement *p = mk_place(2, 1, 2, 2, false, ph);
    uint32_t nt[2] = {6, 6};
    uint16_t ids[12] = {0};
    ms_trace *t = mk_trace(1, 2, 1, 2, nt, ids); /* request 0 on device 0, request 1 on device 1 */
    ms_sim_opts o;
    opts_mesh(&o, MS_ROUTE_ROW_LOCAL);
    ms_batch_opts bo;
    ms_batch_opts_default(&bo);
    loads_ctx lc[2];
    memset(lc, 0, sizeof lc);
    /* slack 10: own 0 -> own; own 1 <= 11*0+1 -> own; own 2 > 1 -> row 1;
     * then own 2, 3, 4 <= 11*1+1 -> own: (5, 1), and mirrored for request 1 */
    o.row_local_slack = 10;
    o.threads = 1;
    loads_ctx *cur = &lc[0];
    ms_sim_result *r = run(t, p, &o, &bo, cur);
    /* the hook saw batch 1 last */
    assert_true(cur->load[0] == 1 && cur->load[1] == 5);
    assert_true(r->records[0].max_load == 5 && r->records[0].mean_load == 3);
    ms_sim_result_free(r);
    /* slack 0: own 0, 1 -> own; 2 > 1 -> other; 2 <= 2 -> own; 3 > 2 -> other; 3 <= 3 -> own */
    o.row_local_slack = 0;
    r = run(t, p, &o, &bo, cur);
    assert_true(cur->load[0] == 2 && cur->load[1] == 4);
    assert_true(r->records[0].max_load == 4);
    ms_sim_result_free(r);
    /* least-loaded ignores rows: 3 and 3 */
    opts_mesh(&o, MS_ROUTE_LEAST_LOADED);
    r = run(t, p, &o, &bo, cur);
    assert_true(cur->load[0] == 3 && cur->load[1] == 3);
    ms_sim_result_free(r);
    /* average-rows evaluates row-local once per origin row: loads averaged */
    opts_mesh(&o, MS_ROUTE_ROW_LOCAL);
    o.origin = MS_ORIGIN_AVERAGE_ROWS;
    o.row_local_slack = 10;
    r = run(t, p, &o, &bo, cur);
    assert_true(cur->load[0] == 3 && cur->load[1] == 3); /* (5,1) and (1,5) averaged */
    assert_true(r->records[0].max_load == 3);
    ms_sim_result_free(r);
    ms_trace_free(t);
    ms_placement_free(p);
}

/* Reroute to the next-ranked expert when the trace carries ranks; to the
 * documented proxy when it does not. */
static void test_reroute_ranked_and_proxy(void **state) {
    (void)state;
    /* 2 x 2 devices x 2 slots: e0 on slots 0, 4 (devices 0, 2); e3 on slot 1
     * (device 0); e1 on slot 2 (device 1); e2 on slot 6 (device 3).
     * Instances: 0: e0@dev0, 1: e0@dev2, 2: e1@dev1, 3: e2@dev3, 4: e3@dev0 */
    int32_t ph[8] = {0, 3, 1, -1, 0, -1, 2, -1};
    ms_placement *p = mk_place(2, 2, 2, 4, false, ph);
    uint32_t nt[1] = {2};
    uint16_t ids[4] = {0, 1, 0, 1};
    uint16_t rk[8] = {0, 1, 3, 2, 0, 1, 3, 2};
    ms_trace *tr = mk_trace_r(1, 4, 2, 4, 1, nt, NULL, ids, rk);
    ms_trace *tp = mk_trace(1, 4, 2, 1, nt, ids);
    ms_sim_opts o;
    opts_mesh(&o, MS_ROUTE_LEAST_LOADED);
    o.capacity_factor = 0.5; /* floor(0.5 * 2 * 2 / 5) = 0 -> 1 */
    o.overflow = MS_OVERFLOW_REROUTE;
    loads_ctx lc = {0};
    /* ranked: t1's e1 is full -> next ranked not used: e3 (device 0) */
    ms_sim_result *r = run(tr, p, &o, NULL, &lc);
    assert_int_equal(r->records[0].rerouted, 1);
    assert_int_equal(r->records[0].dropped, 0);
    /* t0: e0 -> dev 0, e1 -> dev 1; t1: e0 -> dev 2 (dev 0's replica full),
     * e1 -> e3 on dev 0 */
    assert_true(lc.load[0] == 2 && lc.load[1] == 1 && lc.load[2] == 1 && lc.load[3] == 0);
    ms_sim_result_free(r);
    /* proxy: devices of e1's replicas (device 1) hold nothing else; then the
     * least-filled instance anywhere: instance 3 (e2 on device 3) */
    r = run(tp, p, &o, NULL, &lc);
    assert_int_equal(r->records[0].rerouted, 1);
    assert_true(lc.load[0] == 1 && lc.load[1] == 1 && lc.load[2] == 1 && lc.load[3] == 1);
    ms_sim_result_free(r);
    /* drop instead */
    o.overflow = MS_OVERFLOW_DROP;
    r = run(tp, p, &o, NULL, &lc);
    assert_int_equal(r->records[0].dropped, 1);
    assert_int_equal(r->records[0].assignments, 3);
    ms_sim_result_free(r);
    ms_trace_free(tr);
    ms_trace_free(tp);
    ms_placement_free(p);
}

/* Every assignment lands exactly once or is counted dropped, for every
 * route, overflow policy, capacity and batch mode; with no capacity each
 * device gets exactly the assignments of the experts it hosts alone. */
static void test_conservation(void **state) {
    (void)state;
    ms_rng rng;
    ms_rng_seed(&rng, 11);
    uint32_t E = 24, k = 3, nreq = 25, nt[25], np[25];
    uint64_t n = 0;
    for (uint32_t r = 0; r < nreq; r++) {
        nt[r] = 2 + (uint32_t)ms_rng_below(&rng, 40);
        np[r] = 1 + (uint32_t)ms_rng_below(&rng, nt[r] - 1);
        n += nt[r];
    }
    uint16_t *ids = malloc(sizeof(uint16_t) * 2 * n * k);
    uint16_t *rk = malloc(sizeof(uint16_t) * 2 * n * 6);
    for (uint64_t i = 0; i < 2 * n; i++) {
        uint16_t perm[24];
        for (int e = 0; e < 24; e++) perm[e] = (uint16_t)e;
        for (int e = 0; e < 6; e++) { /* 6 distinct, skewed to low ids */
            int j = e + (int)ms_rng_below(&rng, ms_rng_below(&rng, 2) ? 6 : (uint64_t)(24 - e));
            uint16_t tmp = perm[e];
            perm[e] = perm[j];
            perm[j] = tmp;
        }
        for (int j = 0; j < 6; j++) rk[i * 6 + j] = perm[j];
        for (uint32_t j = 0; j < k; j++) ids[i * k + j] = perm[j];
    }
    ms_trace *tr = mk_trace_r(2, E, k, 6, nreq, nt, np, ids, rk);
    ms_trace *tp = mk_trace_r(2, E, k, 0, nreq, nt, np, ids, NULL);
    /* 2 x 3 x 5 = 30 slots: 24 experts + 6 replicas of 0..5 */
    int32_t ph[30];
    for (int s = 0; s < 30; s++) ph[s] = s < 24 ? s : s - 24;
    ms_placement *p = mk_place(2, 3, 5, E, false, ph);
    ms_route routes[6] = {MS_ROUTE_SPLIT, MS_ROUTE_ROUND_ROBIN, MS_ROUTE_RANDOM, MS_ROUTE_LEAST_LOADED,
                          MS_ROUTE_ROW_LOCAL, MS_ROUTE_BALANCED};
    ms_overflow ovs[3] = {MS_OVERFLOW_ACCEPT, MS_OVERFLOW_DROP, MS_OVERFLOW_REROUTE};
    double cfs[3] = {0, 0.8, 1.5};
    ms_batch_mode modes[3] = {MS_BATCH_PER_REQUEST, MS_BATCH_PREFILL, MS_BATCH_DECODE};
    ms_hw_preset hw;
    ms_model_preset mp;
    ms_error err = {0};
    assert_int_equal(ms_hw_preset_load("h100-sxm", &hw, &err), MS_OK);
    assert_int_equal(ms_model_preset_load("mixtral-8x7b", &mp, &err), MS_OK);
    for (int ti = 0; ti < 2; ti++)
        for (int mi = 0; mi < 3; mi++)
            for (int ri = 0; ri < 6; ri++)
                for (int vi = 0; vi < 3; vi++)
                    for (int ci = 0; ci < 3; ci++)
                        for (int cm = 0; cm < 2; cm++) {
                            if (routes[ri] == MS_ROUTE_SPLIT && cm == 0) continue;
                            ms_sim_opts o;
                            ms_sim_opts_default(&o);
                            o.cost_model = cm ? MS_COST_ROOFLINE : MS_COST_MESH;
                            o.origin = cm ? MS_ORIGIN_DP : MS_ORIGIN_ROUND_ROBIN;
                            o.hw = &hw;
                            o.model = &mp;
                            o.route = routes[ri];
                            o.overflow = ovs[vi];
                            o.capacity_factor = cfs[ci];
                            ms_batch_opts bo;
                            ms_batch_opts_default(&bo);
                            bo.mode = modes[mi];
                            bo.batch_tokens = 50;
                            bo.decode_batch = 4;
                            const ms_trace *t = ti ? tr : tp;
                            ms_sim_result *r = run(t, p, &o, &bo, NULL);
                            uint64_t rows = 0;
                            for (uint32_t q = 0; q < nreq; q++)
                                rows += mi == 0 ? nt[q] : mi == 1 ? np[q] : nt[q] - np[q];
                            assert_int_equal(r->summary.tokens, rows);
                            assert_int_equal(r->summary.assignments + r->summary.dropped, 2 * rows * k);
                            if (ovs[vi] != MS_OVERFLOW_REROUTE) assert_int_equal(r->summary.rerouted, 0);
                            if (ovs[vi] == MS_OVERFLOW_ACCEPT || cfs[ci] == 0 || routes[ri] == MS_ROUTE_SPLIT)
                                assert_int_equal(r->summary.dropped, 0);
                            double tot = 0;
                            for (uint64_t i = 0; i < r->n_records; i++)
                                tot += r->records[i].mean_load * 6;
                            assert_true(fabs(tot - (double)r->summary.assignments) < 1e-6);
                            ms_sim_result_free(r);
                        }
    /* no capacity, experts 6..23 have one replica: device loads from the trace */
    ms_sim_opts o;
    opts_mesh(&o, MS_ROUTE_LEAST_LOADED);
    o.layer = 1;
    ms_batch_opts bo;
    ms_batch_opts_default(&bo);
    bo.mode = MS_BATCH_PREFILL;
    bo.batch_tokens = 1000000; /* one batch */
    loads_ctx lc = {0};
    ms_sim_result *r = run(tp, p, &o, &bo, &lc);
    assert_int_equal(r->n_records, 1);
    double want[6] = {0};
    double rep = 0; /* experts 0..5 land on one of their two devices */
    for (uint32_t q = 0; q < nreq; q++)
        for (uint64_t i = tp->tok_offset[q]; i < tp->tok_offset[q] + np[q]; i++)
            for (uint32_t j = 0; j < k; j++) {
                uint16_t e = ms_trace_row(tp, 1, i)[j];
                if (e >= 6) want[e / 5] += 1;
                else rep += 1;
            }
    double got_rep = 0;
    for (int d = 0; d < 6; d++) {
        got_rep += lc.load[d] - want[d];
        assert_true(lc.load[d] >= want[d]);
    }
    assert_true(fabs(got_rep - rep) < 1e-9);
    ms_sim_result_free(r);
    ms_trace_free(tr);
    ms_trace_free(tp);
    ms_placement_free(p);
    free(ids);
    free(rk);
}

/* ------------------------------------------------------------ batches */

static void test_batches(void **state) {
    (void)state;
    /* requests: rows 5 (3 prompt), 2 (2), 4 (1), 0, 6 (6) */
    uint32_t nt[5] = {5, 2, 4, 0, 6}, np[5] = {3, 2, 1, 0, 6};
    uint16_t ids[17] = {0};
    ms_trace *t = mk_trace_r(1, 2, 1, 0, 5, nt, np, ids, NULL);
    ms_batch_opts bo;
    ms_batch_opts_default(&bo);
    ms_batch_plan *pl = NULL;
    ms_error err = {0};
    /* per request: 4 batches (the empty request skipped), all rows, DP round-robin */
    assert_int_equal(ms_batch_plan_build(t, &bo, 3, &pl, &err), MS_OK);
    assert_int_equal(pl->n_batches, 4);
    assert_int_equal(pl->off[1], 5);
    assert_int_equal(pl->tok[5], 5); /* request 1 starts at token 5 */
    assert_int_equal(pl->origin[0], 0);
    assert_int_equal(pl->origin[5], 1);
    assert_int_equal(pl->origin[7], 2);
    assert_int_equal(pl->origin[11], 0);
    assert_int_equal(pl->n_tokens, 17);
    ms_batch_plan_free(pl);
    /* prefill: prompt rows only (3+2+1+6 = 12), budget 4: a batch closes
     * once it holds >= 4 rows; requests never split */
    bo.mode = MS_BATCH_PREFILL;
    bo.batch_tokens = 4;
    assert_int_equal(ms_batch_plan_build(t, &bo, 2, &pl, &err), MS_OK);
    assert_int_equal(pl->n_tokens, 12);
    uint8_t seen[17] = {0};
    for (uint64_t b = 0; b < pl->n_batches; b++) {
        uint64_t sz = pl->off[b + 1] - pl->off[b];
        if (b + 1 < pl->n_batches) assert_true(sz >= 4);
        /* without its last request the batch would be under budget */
        for (uint64_t i = pl->off[b]; i < pl->off[b + 1]; i++) {
            uint32_t tk = pl->tok[i];
            assert_false(seen[tk]);
            seen[tk] = 1;
            /* a prompt row */
            uint32_t r = 0;
            while (!(tk >= t->tok_offset[r] && tk < t->tok_offset[r + 1])) r++;
            assert_true(tk - t->tok_offset[r] < np[r]);
        }
    }
    ms_batch_plan_free(pl);
    /* the order depends on the seed, the content does not */
    bo.seed = 99;
    assert_int_equal(ms_batch_plan_build(t, &bo, 2, &pl, &err), MS_OK);
    assert_int_equal(pl->n_tokens, 12);
    ms_batch_plan_free(pl);
    /* decode: decode rows 2 (req 0), 3 (req 2) with 1 slot: each step one
     * row; 5 steps; with 2 slots: 3 steps of sizes 2, 2, 1 */
    bo.mode = MS_BATCH_DECODE;
    bo.decode_batch = 1;
    assert_int_equal(ms_batch_plan_build(t, &bo, 2, &pl, &err), MS_OK);
    assert_int_equal(pl->n_batches, 5);
    ms_batch_plan_free(pl);
    bo.decode_batch = 2;
    assert_int_equal(ms_batch_plan_build(t, &bo, 2, &pl, &err), MS_OK);
    assert_int_equal(pl->n_batches, 3);
    assert_int_equal(pl->off[1] - pl->off[0], 2);
    assert_int_equal(pl->off[2] - pl->off[1], 2);
    assert_int_equal(pl->off[3] - pl->off[2], 1);
    /* each step takes the next row of each request, in order */
    for (uint64_t b = 0; b + 1 < pl->n_batches; b++)
        for (uint64_t i = pl->off[b]; i < pl->off[b + 1]; i++) {
            bool found_next = false;
            for (uint64_t j = pl->off[b + 1]; j < pl->off[b + 2 <= pl->n_batches ? b + 2 : b + 1]; j++)
                found_next |= pl->tok[j] == pl->tok[i] + 1 && pl->origin[j] == pl->origin[i];
            uint32_t tk = pl->tok[i];
            bool last = tk + 1 == t->tok_offset[1] || tk + 1 == t->tok_offset[3];
            assert_true(found_next || last);
        }
    ms_batch_plan_free(pl);
    /* continuous batching: 1 slot, 3 requests of decode rows: a finished
     * request is replaced at the next step */
    bo.decode_batch = 64;
    assert_int_equal(ms_batch_plan_build(t, &bo, 2, &pl, &err), MS_OK);
    assert_int_equal(pl->n_batches, 3); /* the longest request has 3 decode rows */
    ms_batch_plan_free(pl);
    /* errors */
    bo.decode_batch = 0;
    assert_int_equal(ms_batch_plan_build(t, &bo, 2, &pl, &err), MS_E_INPUT);
    bo.decode_batch = 2;
    assert_int_equal(ms_batch_plan_build(t, &bo, 0, &pl, &err), MS_E_INPUT);
    ms_trace_free(t);
    /* a prefill-only trace has no decode rows */
    uint32_t nt2[1] = {3};
    ms_trace *t2 = mk_trace(1, 2, 1, 1, nt2, ids);
    assert_int_equal(ms_batch_plan_build(t2, &bo, 2, &pl, &err), MS_E_INPUT);
    assert_non_null(strstr(err.msg, "decode"));
    ms_trace_free(t2);
}

/* mixed steps (continuous batching) in trace order, worked by hand: rows 5
 * (3 prompt), 2 (2), 4 (1), 0, 6 (6); 2 running requests, 4 prompt tokens
 * per step */
static void test_mixed_batches(void **state) {
    (void)state;
    uint32_t nt[5] = {5, 2, 4, 0, 6}, np[5] = {3, 2, 1, 0, 6};
    uint16_t ids[17] = {0};
    ms_trace *t = mk_trace_r(1, 2, 1, 0, 5, nt, np, ids, NULL);
    ms_batch_opts bo;
    ms_batch_opts_default(&bo);
    bo.mode = MS_BATCH_MIXED;
    bo.order = MS_ORDER_TRACE;
    bo.decode_batch = 2;
    bo.batch_tokens = 4;
    ms_batch_plan *pl = NULL;
    ms_error err = {0};
    assert_int_equal(ms_batch_plan_build(t, &bo, 2, &pl, &err), MS_OK);
    /* step 0: r0's prompt (r1 would pass the budget); step 1: r1's prompt
     * (no decode rows: it leaves), r2's prompt, r0's first decode row;
     * step 2: full, r0 and r2 decode (r0 leaves); step 3: r4's prompt alone
     * (6 > 4 but nothing else prefills), r2 decodes; step 4: r2's last row */
    const uint32_t want_off[6] = {0, 3, 7, 9, 16, 17};
    const uint32_t want_tok[17] = {0, 1, 2, 5, 6, 7, 3, 4, 8, 11, 12, 13, 14, 15, 16, 9, 10};
    assert_int_equal(pl->n_batches, 5);
    assert_int_equal(pl->n_tokens, 17);
    for (int b = 0; b <= 5; b++) assert_int_equal(pl->off[b], want_off[b]);
    for (int i = 0; i < 17; i++) assert_int_equal(pl->tok[i], want_tok[i]);
    /* DP round-robin at admission: r0 -> 0, r1 -> 1, r2 -> 0, r4 -> 1 */
    assert_int_equal(pl->origin[0], 0);
    assert_int_equal(pl->origin[3], 1);
    assert_int_equal(pl->origin[5], 0);
    assert_int_equal(pl->origin[6], 0);  /* r0 keeps its rank while decoding */
    assert_int_equal(pl->origin[9], 1);
    assert_int_equal(pl->origin[16], 0); /* r2's last row */
    ms_batch_plan_free(pl);
    /* zero budgets are refused */
    bo.batch_tokens = 0;
    assert_int_equal(ms_batch_plan_build(t, &bo, 2, &pl, &err), MS_E_INPUT);
    bo.batch_tokens = 4;
    bo.decode_batch = 0;
    assert_int_equal(ms_batch_plan_build(t, &bo, 2, &pl, &err), MS_E_INPUT);
    ms_trace_free(t);
}

/* mixed steps on random requests: every row once; a prompt whole in one
 * step; decode rows in order, one per step, in the steps right after it;
 * at most decode_batch running; the prompt budget kept unless one prompt
 * fills the step alone; requests admitted in arrival order */
static void test_mixed_properties(void **state) {
    (void)state;
    ms_rng rng;
    ms_rng_seed(&rng, 21);
    for (int trial = 0; trial < 20; trial++) {
        uint32_t nreq = 1 + (uint32_t)ms_rng_below(&rng, 30), nt[30], np[30], n = 0;
        for (uint32_t r = 0; r < nreq; r++) {
            nt[r] = (uint32_t)ms_rng_below(&rng, 12);
            np[r] = nt[r] ? (uint32_t)ms_rng_below(&rng, nt[r] + 1) : 0;
            n += nt[r];
        }
        if (n == 0) continue;
        uint16_t *ids = calloc(n, sizeof *ids);
        ms_trace *t = mk_trace_r(1, 2, 1, 0, nreq, nt, np, ids, NULL);
        ms_batch_opts bo;
        ms_batch_opts_default(&bo);
        bo.mode = MS_BATCH_MIXED;
        bo.order = trial % 2 ? MS_ORDER_SEEDED : MS_ORDER_TRACE;
        bo.seed = (uint64_t)trial;
        bo.decode_batch = 1 + (uint32_t)ms_rng_below(&rng, 4);
        bo.batch_tokens = 1 + (uint32_t)ms_rng_below(&rng, 10);
        ms_batch_plan *pl = NULL;
        ms_error err = {0};
        assert_int_equal(ms_batch_plan_build(t, &bo, 3, &pl, &err), MS_OK);
        assert_int_equal(pl->n_tokens, n);
        uint64_t *step_of = malloc(n * sizeof *step_of);
        for (uint32_t i = 0; i < n; i++) step_of[i] = UINT64_MAX;
        for (uint64_t b = 0; b < pl->n_batches; b++) {
            assert_true(pl->off[b + 1] > pl->off[b]);
            uint64_t ptok = 0, pfirst = UINT64_MAX;
            uint32_t prompts = 0;
            for (uint64_t i = pl->off[b]; i < pl->off[b + 1]; i++) {
                uint32_t tk = pl->tok[i], r = 0;
                assert_int_equal(step_of[tk], UINT64_MAX);
                step_of[tk] = b;
                while (!(tk >= t->tok_offset[r] && tk < t->tok_offset[r + 1])) r++;
                if (tk - t->tok_offset[r] < np[r]) {
                    ptok++;
                    if (pfirst != r) prompts++, pfirst = r;
                }
            }
            if (prompts > 1) assert_true(ptok <= bo.batch_tokens);
        }
        uint64_t last_admit = 0;
        for (uint64_t q = 0; q < nreq; q++) {
            /* arrival order: trace order, or the one the seed shuffles to (not checked) */
            uint32_t r = (uint32_t)q;
            if (nt[r] == 0) continue;
            uint64_t f = t->tok_offset[r];
            /* a request without prompt rows decodes from the step it enters */
            uint64_t admit = step_of[f], first_dec = admit + (np[r] ? 1 : 0);
            for (uint32_t k = 1; k < np[r]; k++) assert_int_equal(step_of[f + k], step_of[f]);
            for (uint32_t k = np[r]; k < nt[r]; k++) assert_int_equal(step_of[f + k], first_dec + (k - np[r]));
            if (bo.order == MS_ORDER_TRACE && np[r]) {
                assert_true(admit >= last_admit);
                last_admit = admit;
            }
        }
        /* running requests per step (admitted earlier, rows left) */
        for (uint64_t b = 0; b < pl->n_batches; b++) {
            uint32_t running = 0;
            for (uint32_t r = 0; r < nreq; r++) {
                if (nt[r] == np[r]) continue;
                uint64_t f = t->tok_offset[r], admit = step_of[f], last = step_of[f + nt[r] - 1];
                running += b >= admit && b <= last; /* a slot from admission to the last row */
            }
            assert_true(running <= bo.decode_batch);
        }
        free(step_of);
        ms_batch_plan_free(pl);
        ms_trace_free(t);
        free(ids);
    }
}

static void test_dp_least_loaded(void **state) {
    (void)state;
    /* requests of 10, 1, 1, 1 rows on 2 devices: least-loaded puts the first
     * on device 0 and the next three on device 1 (per-request: cumulative) */
    uint32_t nt[4] = {10, 1, 1, 1};
    uint16_t ids[13] = {0};
    ms_trace *t = mk_trace(1, 2, 1, 4, nt, ids);
    ms_batch_opts bo;
    ms_batch_opts_default(&bo);
    bo.dp = MS_DP_LEAST_LOADED;
    ms_batch_plan *pl = NULL;
    ms_error err = {0};
    assert_int_equal(ms_batch_plan_build(t, &bo, 2, &pl, &err), MS_OK);
    assert_int_equal(pl->origin[0], 0);
    assert_int_equal(pl->origin[10], 1);
    assert_int_equal(pl->origin[11], 1);
    assert_int_equal(pl->origin[12], 1);
    ms_batch_plan_free(pl);
    bo.dp = MS_DP_ROUND_ROBIN;
    assert_int_equal(ms_batch_plan_build(t, &bo, 2, &pl, &err), MS_OK);
    assert_int_equal(pl->origin[11], 0);
    ms_batch_plan_free(pl);
    ms_trace_free(t);
}

/* A batch gives the same record whatever range of the plan it is simulated
 * in (random routing draws per plan batch number); ranges out of the plan or
 * empty are refused. */
static void test_batch_range(void **state) {
    (void)state;
    ms_rng rng;
    ms_rng_seed(&rng, 5);
    uint32_t nt[6] = {7, 30, 3, 18, 11, 25}, n = 0;
    for (int r = 0; r < 6; r++) n += nt[r];
    uint16_t *ids = malloc(sizeof(uint16_t) * 2 * n * 2);
    for (uint32_t i = 0; i < 2 * n; i++) {
        ids[2 * i] = (uint16_t)ms_rng_below(&rng, 3);
        ids[2 * i + 1] = (uint16_t)(3 + ms_rng_below(&rng, 3));
    }
    ms_trace *t = mk_trace(2, 6, 2, 6, nt, ids);
    const int32_t ph[8] = {0, 1, 2, 3, 4, 5, 0, 3};
    ms_placement *p = mk_place(2, 2, 2, 6, false, ph);
    ms_batch_opts b;
    ms_batch_opts_default(&b);
    ms_batch_plan *plan = NULL;
    ms_error err = {0};
    assert_int_equal(ms_batch_plan_build(t, &b, 4, &plan, &err), MS_OK);
    assert_int_equal(plan->n_batches, 6);
    ms_hw_preset hw;
    ms_model_preset mp;
    assert_int_equal(ms_hw_preset_load("h100-sxm", &hw, &err), MS_OK);
    assert_int_equal(ms_model_preset_load("deepseek-v3", &mp, &err), MS_OK);
    for (int model = 0; model < 2; model++) {
        ms_sim_opts o;
        opts_mesh(&o, MS_ROUTE_RANDOM);
        o.seed = 9;
        if (model) {
            o.cost_model = MS_COST_ROOFLINE;
            o.hw = &hw;
            o.model = &mp;
        }
        ms_sim_result *full = NULL, *a = NULL, *c = NULL;
        assert_int_equal(ms_sim_run(t, plan, p, &o, NULL, &full, &err), MS_OK);
        o.batch_end = 2;
        assert_int_equal(ms_sim_run(t, plan, p, &o, NULL, &a, &err), MS_OK);
        o.batch_begin = 2;
        o.batch_end = 0;
        assert_int_equal(ms_sim_run(t, plan, p, &o, NULL, &c, &err), MS_OK);
        assert_int_equal(a->n_records + c->n_records, full->n_records);
        assert_int_equal(a->summary.batches, 2);
        assert_int_equal(c->summary.tokens, plan->off[6] - plan->off[2]);
        assert_memory_equal(a->records, full->records, a->n_records * sizeof *a->records);
        assert_memory_equal(c->records, full->records + a->n_records, c->n_records * sizeof *c->records);
        assert_int_equal(c->records[0].batch, 2);
        ms_sim_result_free(full);
        ms_sim_result_free(a);
        ms_sim_result_free(c);
        ms_sim_result *r = NULL;
        o.batch_begin = 6;
        assert_int_equal(ms_sim_run(t, plan, p, &o, NULL, &r, &err), MS_E_INPUT);
        o.batch_begin = 0;
        o.batch_end = 7;
        assert_int_equal(ms_sim_run(t, plan, p, &o, NULL, &r, &err), MS_E_INPUT);
        assert_non_null(strstr(err.msg, "batch range"));
    }
    ms_batch_plan_free(plan);
    ms_placement_free(p);
    ms_trace_free(t);
    free(ids);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_least_loaded),
        cmocka_unit_test(test_least_loaded_counts_whole_device),
        cmocka_unit_test(test_random_seeded),
        cmocka_unit_test(test_row_local),
        cmocka_unit_test(test_reroute_ranked_and_proxy),
        cmocka_unit_test(test_conservation),
        cmocka_unit_test(test_batches),
        cmocka_unit_test(test_dp_least_loaded),
        cmocka_unit_test(test_batch_range),
        cmocka_unit_test(test_mixed_batches),
        cmocka_unit_test(test_mixed_properties),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
