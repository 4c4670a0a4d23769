/* test-sim-mesh.c - the mesh (moe-balance) cost model: the coefficient fit,
 * hand-computed cases for every term, balanced-replicas with its capacity and
 * overflow counter, the fast paths against the generic loop, and the
 * equivalence with moe-balance's own numbers on the reference case. */
#include "testutil.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moesim/place.h"
#include "moesim/sim.h"
#include "moesim/trace.h"

/* ------------------------------------------------------------ helpers */

/* One layer per entry of ids ([layers][tokens][k]); requests of ntok[r] rows. */
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
        t->request_id[r] = (int64_t)r;
    }
    memcpy(t->experts, ids, (size_t)layers * n * k * sizeof(uint16_t));
    assert_int_equal(ms_trace_finish(t, &err), MS_OK);
    return t;
}

static ms_placement *mk_place(uint32_t rows, uint32_t cols, uint32_t spd, uint32_t routed, bool shared,
                              const int32_t *phy2log) {
    ms_cluster c = {rows, cols, spd};
    ms_placement *p = NULL;
    ms_error err = {0};
    assert_int_equal(ms_placement_new(1, &c, routed, shared, &p, &err), MS_OK);
    memcpy(p->phy2log, phy2log, p->n_phys * sizeof(int32_t));
    assert_int_equal(ms_placement_index(p, &err), MS_OK);
    assert_int_equal(ms_placement_check(p, &err), MS_OK);
    return p;
}

static ms_sim_result *run(const ms_trace *t, const ms_placement *p, const ms_sim_opts *o, const ms_batch_opts *bo) {
    ms_batch_opts b;
    ms_batch_opts_default(&b);
    if (bo) b = *bo;
    ms_batch_plan *plan = NULL;
    ms_error err = {0};
    assert_int_equal(ms_batch_plan_build(t, &b, ms_cluster_devices(&p->cluster), &plan, &err), MS_OK);
    ms_sim_result *r = NULL;
    ms_status st = ms_sim_run(t, plan, p, o, NULL, &r, &err);
    if (st != MS_OK) fprintf(stderr, "ms_sim_run: %s\n", err.msg);
    assert_int_equal(st, MS_OK);
    ms_batch_plan_free(plan);
    return r;
}

static void near(double got, double want, double rel) {
    double tol = rel * (fabs(want) > 1 ? fabs(want) : 1);
    if (fabs(got - want) > tol) fail_msg("got %.17g, want %.17g", got, want);
}

/* ------------------------------------------------------------ fit */

static void test_fit_rows2(void **state) {
    (void)state;
    double co[4];
    ms_error err = {0};
    assert_int_equal(ms_mesh_fit(2, MS_MESH_TABLE_REFERENCE, co, &err), MS_OK);
    /* the peer's published coefficients (expected_*.json "coeffs") */
    near(co[0], 22.893895833333318, 1e-12);
    near(co[1], 6.175222222222214, 1e-12);
    near(co[2], 35.07968750000001, 1e-12);
    near(co[3], 35.07968750000001, 1e-12);
    assert_int_equal(ms_mesh_fit(0, MS_MESH_TABLE_REFERENCE, co, &err), MS_E_INPUT);
}

/* Independent truth: with avg_hop = max_hop in every row the system is
 * [1, E, h] with C + D = c; the minimum-norm split is C = D = c / 2, and the
 * 3-column system is solved by its normal equations (Cramer's rule). */
static void fit3(uint32_t rows, bool corrected, double out[4]) {
    double best[8];
    memcpy(best, ms_mesh_table_best, sizeof best);
    if (corrected) best[1] = (best[0] + best[2]) / 2;
    const double *tab[3] = {best, ms_mesh_table_avg, ms_mesh_table_worst};
    double h[3] = {0, (rows - 1) / 2.0, rows / 2.0};
    double M[3][3] = {{0}}, v[3] = {0};
    for (int c = 0; c < 3; c++)
        for (int e = 0; e < 8; e++) {
            double x[3] = {1, e + 1.0, h[c]};
            for (int i = 0; i < 3; i++) {
                v[i] += x[i] * tab[c][e];
                for (int j = 0; j < 3; j++) M[i][j] += x[i] * x[j];
            }
        }
    double det = M[0][0] * (M[1][1] * M[2][2] - M[1][2] * M[2][1]) - M[0][1] * (M[1][0] * M[2][2] - M[1][2] * M[2][0]) +
                 M[0][2] * (M[1][0] * M[2][1] - M[1][1] * M[2][0]);
    double s[3];
    for (int col = 0; col < 3; col++) {
        double N[3][3];
        memcpy(N, M, sizeof N);
        for (int i = 0; i < 3; i++) N[i][col] = v[i];
        s[col] = (N[0][0] * (N[1][1] * N[2][2] - N[1][2] * N[2][1]) - N[0][1] * (N[1][0] * N[2][2] - N[1][2] * N[2][0]) +
                  N[0][2] * (N[1][0] * N[2][1] - N[1][1] * N[2][0])) /
                 det;
    }
    out[0] = s[0];
    out[1] = s[1];
    out[2] = out[3] = s[2] / 2;
}

static void test_fit_matches_reduced_system(void **state) {
    (void)state;
    ms_error err = {0};
    for (uint32_t rows = 1; rows <= 16; rows++)
        for (int corr = 0; corr < 2; corr++) {
            double co[4], want[4];
            assert_int_equal(ms_mesh_fit(rows, corr ? MS_MESH_TABLE_CORRECTED : MS_MESH_TABLE_REFERENCE, co, &err),
                             MS_OK);
            fit3(rows, corr, want);
            for (int i = 0; i < 4; i++) near(co[i], want[i], 1e-9);
        }
    /* the corrected table changes B (the slip sits at E_col = 2) */
    double ref[4], cor[4];
    ms_mesh_fit(2, MS_MESH_TABLE_REFERENCE, ref, &err);
    ms_mesh_fit(2, MS_MESH_TABLE_CORRECTED, cor, &err);
    assert_true(cor[1] > ref[1] + 1);
}

static void test_lstsq(void **state) {
    (void)state;
    /* full rank: exact solution of a consistent system */
    double a[6 * 3], b[6], x[3], want[3] = {1.5, -2.0, 0.25};
    for (int i = 0; i < 6; i++) {
        a[i * 3 + 0] = 1;
        a[i * 3 + 1] = i;
        a[i * 3 + 2] = i * i - 3;
        b[i] = want[0] * a[i * 3] + want[1] * a[i * 3 + 1] + want[2] * a[i * 3 + 2];
    }
    assert_int_equal(ms_lstsq_min_norm(a, b, 6, 3, -1, x), 3);
    for (int i = 0; i < 3; i++) near(x[i], want[i], 1e-12);
    /* rank deficient: two equal columns share the coefficient equally */
    double a2[4 * 2] = {1, 1, 2, 2, 3, 3, 4, 4}, b2[4] = {2, 4, 6, 8}, x2[2];
    assert_int_equal(ms_lstsq_min_norm(a2, b2, 4, 2, -1, x2), 1);
    near(x2[0], 1, 1e-12);
    near(x2[1], 1, 1e-12);
    assert_int_equal(ms_lstsq_min_norm(a2, b2, 4, 0, -1, x2), -1);
}

/* ------------------------------------------------------------ hand-computed */

/* 2 rows x 2 cols, 1 slot: e0 on devices 0 and 2 (instances 0, 1), e1 on
 * device 1 (instance 2), e2 on device 3 (instance 3). Device d: row d / 2,
 * column d % 2. One request of 3 tokens, top-2: [0,1], [0,2], [1,2]. */
static const int32_t P4[4] = {0, 1, 0, 2};

static void test_hand_terms(void **state) {
    (void)state;
    const uint32_t nt[1] = {3};
    const uint16_t ids[6] = {0, 1, 0, 2, 1, 2};
    ms_trace *t = mk_trace(1, 3, 2, 1, nt, ids);
    ms_placement *p = mk_place(2, 2, 1, 3, false, P4);
    ms_sim_opts o;
    ms_sim_opts_default(&o);
    o.mesh_coeffs[0] = 1, o.mesh_coeffs[1] = 10, o.mesh_coeffs[2] = 100, o.mesh_coeffs[3] = 1000;
    for (int generic = 0; generic < 2; generic++) {
        o.mesh_generic = generic;
        /* capacity floor(2 * 3 * 2 / 4) = 3: every e0 goes to instance 0.
         * Per token (E_col, U, rows): t0 (1, 2, {0,0}); t1 (1, 2, {0,1});
         * t2 (2, 2, {0,1}). Origin 0: T_d = 11, 1061, 1071; T_c = 21, 1071,
         * 1071. Origin 1: T_d = 1111, 1061, 1071; T_c = 1121, 1071, 1071.
         * Compute: devices 0, 1, 3 hold 2 tokens: 118 x ceil(2/32) = 118. */
        o.origin = MS_ORIGIN_AVERAGE_ROWS;
        ms_sim_result *r = run(t, p, &o, NULL);
        assert_int_equal(r->n_records, 1);
        const ms_sim_record *x = &r->records[0];
        near(x->dispatch_us, (1071 + 1111) / 2.0, 1e-12);
        near(x->combine_us, (1071 + 1121) / 2.0, 1e-12);
        near(x->compute_us, 118, 1e-12);
        near(x->layer_us, ((1071 + 118 + 1071) + (1111 + 118 + 1121)) / 2.0, 1e-12);
        near(x->imbalance, 2.0 / 1.5, 1e-12);
        assert_int_equal(x->assignments, 6);
        near(r->summary.layer_us.mean, 2305, 1e-12);
        near(r->summary.layer_us.p95, 2305, 1e-12);
        ms_sim_result_free(r);
        /* round-robin: token i in row i mod 2 -> t0 at 0, t1 at 1, t2 at 0 */
        o.origin = MS_ORIGIN_ROUND_ROBIN;
        r = run(t, p, &o, NULL);
        near(r->records[0].dispatch_us, 1071, 1e-12);
        near(r->records[0].combine_us, 1071, 1e-12);
        near(r->records[0].layer_us, 2260, 1e-12);
        ms_sim_result_free(r);
        /* dp: the request is on device 0 (row 0) -> every token in row 0 */
        o.origin = MS_ORIGIN_DP;
        r = run(t, p, &o, NULL);
        near(r->records[0].layer_us, 1071 + 118 + 1071, 1e-12);
        ms_sim_result_free(r);
    }
    ms_trace_free(t);
    ms_placement_free(p);
}

static void test_hand_compute_chunks(void **state) {
    (void)state;
    /* 33 tokens all on e1 (device 1): ceil(33/32) = 2 chunks -> 236 us; e0's
     * 33 go to instance 0 (capacity floor(2*33*2/4) = 33) -> 236 */
    uint32_t nt[1] = {33};
    uint16_t ids[66];
    for (int i = 0; i < 33; i++) {
        ids[2 * i] = 0;
        ids[2 * i + 1] = 1;
    }
    ms_trace *t = mk_trace(1, 3, 2, 1, nt, ids);
    ms_placement *p = mk_place(2, 2, 1, 3, false, P4);
    ms_sim_opts o;
    ms_sim_opts_default(&o);
    o.mesh_coeffs[0] = o.mesh_coeffs[1] = o.mesh_coeffs[2] = o.mesh_coeffs[3] = 0;
    ms_sim_result *r = run(t, p, &o, NULL);
    near(r->records[0].compute_us, 236, 1e-12);
    near(r->records[0].layer_us, 236, 1e-12);
    near(r->records[0].imbalance, 33.0 / (66.0 / 4), 1e-12);
    ms_sim_result_free(r);
    /* other chunk sizes and times */
    o.mesh_expert_us = 10;
    o.mesh_chunk = 8; /* ceil(33/8) = 5 */
    r = run(t, p, &o, NULL);
    near(r->records[0].compute_us, 50, 1e-12);
    ms_sim_result_free(r);
    ms_trace_free(t);
    ms_placement_free(p);
}

/* Hop distances on a ring of 5 rows, E_col with a column hit three times. */
static void test_hand_ring_and_ecol(void **state) {
    (void)state;
    /* 5 rows x 2 cols x 2 slots: experts 0..4 on column 0 of rows 0..4 (slot
     * 0), experts 5..7 on devices 1, 3, 5 (column 1, rows 0, 1, 2). One token
     * choosing 5, 6, 7, 4: rows 0, 1, 2, 4; columns 1, 1, 1, 0: E_col = 3,
     * U = 4. From origin row 0, ring hops are 0, 1, 2, 1 (4 -> 0 wraps):
     * avg 1, max 2. */
    int32_t ph[20];
    for (int i = 0; i < 20; i++) ph[i] = -1;
    for (int r = 0; r < 5; r++) ph[(r * 2) * 2] = r; /* device 2r, slot 0 */
    ph[(1) * 2] = 5;                                 /* device 1 */
    ph[(3) * 2] = 6;                                 /* device 3 */
    ph[(5) * 2] = 7;                                 /* device 5 */
    ms_placement *p = mk_place(5, 2, 2, 8, false, ph);
    uint32_t nt[1] = {1};
    uint16_t ids[4] = {5, 6, 7, 4};
    ms_trace *t = mk_trace(1, 8, 4, 1, nt, ids);
    ms_sim_opts o;
    ms_sim_opts_default(&o);
    o.mesh_coeffs[0] = 0, o.mesh_coeffs[1] = 1, o.mesh_coeffs[2] = 1000, o.mesh_coeffs[3] = 1000000;
    o.mesh_expert_us = 0;
    o.origin = MS_ORIGIN_DP; /* request 0 on device 0: row 0 */
    ms_sim_result *r = run(t, p, &o, NULL);
    near(r->records[0].dispatch_us, 3 + 1000 * 1.0 + 1000000 * 2, 1e-12);
    near(r->records[0].combine_us, 4 + 1000 * 1.0 + 1000000 * 2, 1e-12);
    ms_sim_result_free(r);
    /* average over the 5 origin rows: hop lists from rows 0..4 */
    o.origin = MS_ORIGIN_AVERAGE_ROWS;
    r = run(t, p, &o, NULL);
    double sd = 0;
    uint32_t rows[4] = {0, 1, 2, 4};
    for (int org = 0; org < 5; org++) {
        double sum = 0, mx = 0;
        for (int q = 0; q < 4; q++) {
            int dd = abs((int)rows[q] - org), h = dd < 5 - dd ? dd : 5 - dd;
            sum += h;
            if (h > mx) mx = h;
        }
        sd += 3 + 1000 * sum / 4 + 1000000 * mx;
    }
    near(r->records[0].dispatch_us, sd / 5, 1e-12);
    ms_sim_result_free(r);
    ms_trace_free(t);
    ms_placement_free(p);
}

/* balanced-replicas: the first replica below capacity, then the overflow
 * counter going round-robin; drop and reroute instead of it. */
static void test_balanced_capacity(void **state) {
    (void)state;
    uint32_t nt[1] = {6};
    uint16_t ids[12];
    for (int i = 0; i < 6; i++) {
        ids[2 * i] = 0;
        ids[2 * i + 1] = 1;
    }
    ms_trace *t = mk_trace(1, 3, 2, 1, nt, ids);
    ms_placement *p = mk_place(2, 2, 1, 3, false, P4);
    ms_sim_opts o;
    ms_sim_opts_default(&o);
    o.capacity_factor = 0.5; /* floor(0.5 * 6 * 2 / 4) = 1 */
    for (int generic = 0; generic < 2; generic++) {
        o.mesh_generic = generic;
        o.overflow = MS_OVERFLOW_ACCEPT;
        ms_sim_result *r = run(t, p, &o, NULL);
        /* e0: t0 -> inst 0, t1 -> inst 1, then overflow 0,1,0,1 -> 3 and 3
         * (devices 0 and 2); e1: 6 on device 1 */
        const ms_sim_record *x = &r->records[0];
        assert_int_equal(x->assignments, 12);
        assert_int_equal(x->dropped, 0);
        near(x->max_load, 6, 0);
        near(x->imbalance, 6 / 3.0, 1e-12);
        ms_sim_result_free(r);
        o.overflow = MS_OVERFLOW_DROP;
        r = run(t, p, &o, NULL);
        assert_int_equal(r->records[0].assignments, 3);
        assert_int_equal(r->records[0].dropped, 9);
        assert_int_equal(r->summary.dropped, 9);
        ms_sim_result_free(r);
        o.overflow = MS_OVERFLOW_REROUTE;
        r = run(t, p, &o, NULL);
        /* t1's e1 -> e2 (instance 3, the only one left); then nothing */
        assert_int_equal(r->records[0].assignments, 4);
        assert_int_equal(r->records[0].rerouted, 1);
        assert_int_equal(r->records[0].dropped, 8);
        ms_sim_result_free(r);
    }
    /* capacity 0 = none: every e0 on its first replica */
    o.overflow = MS_OVERFLOW_ACCEPT;
    o.capacity_factor = 0;
    ms_sim_result *r = run(t, p, &o, NULL);
    near(r->records[0].max_load, 6, 0);
    near(r->records[0].compute_us, 118, 0);
    ms_sim_result_free(r);
    ms_trace_free(t);
    ms_placement_free(p);
}

/* The small-mesh fast paths give exactly what the generic loop gives. */
static void test_fast_equals_generic(void **state) {
    (void)state;
    ms_rng rng;
    ms_rng_seed(&rng, 42);
    const uint32_t shapes[3][3] = {{2, 8, 6}, {4, 4, 3}, {8, 8, 1}};
    for (int sh = 0; sh < 3; sh++) {
        uint32_t rows = shapes[sh][0], cols = shapes[sh][1], spd = shapes[sh][2], D = rows * cols;
        uint32_t E = D * spd * 2 / 3, k = 6, nreq = 40;
        int32_t *ph = malloc(sizeof(int32_t) * D * spd);
        for (uint32_t s = 0; s < D * spd; s++) ph[s] = s < E ? (int32_t)s : (int32_t)ms_rng_below(&rng, E);
        ms_placement *p = mk_place(rows, cols, spd, E, false, ph);
        uint32_t nt[40];
        uint64_t n = 0;
        for (uint32_t r = 0; r < nreq; r++) n += nt[r] = 1 + (uint32_t)ms_rng_below(&rng, 60);
        uint16_t *ids = malloc(sizeof(uint16_t) * 2 * n * k);
        for (uint64_t i = 0; i < 2 * n; i++) {
            for (uint32_t j = 0; j < k; j++) {
                uint16_t e;
                bool again;
                do { /* mostly distinct, a repeat now and then */
                    e = (uint16_t)(ms_rng_below(&rng, 8) ? ms_rng_below(&rng, E / 3) : ms_rng_below(&rng, E));
                    again = false;
                    for (uint32_t q = 0; q < j; q++) again |= ids[i * k + q] == e;
                    if (ms_rng_below(&rng, 50) == 0) again = false;
                } while (again);
                ids[i * k + j] = e;
            }
        }
        ms_trace *t = mk_trace(2, E, k, nreq, nt, ids);
        ms_route routes[4] = {MS_ROUTE_BALANCED, MS_ROUTE_LEAST_LOADED, MS_ROUTE_ROUND_ROBIN, MS_ROUTE_ROW_LOCAL};
        ms_origin origins[3] = {MS_ORIGIN_AVERAGE_ROWS, MS_ORIGIN_ROUND_ROBIN, MS_ORIGIN_RANDOM};
        ms_overflow ovs[2] = {MS_OVERFLOW_ACCEPT, MS_OVERFLOW_DROP};
        for (int ri = 0; ri < 4; ri++)
            for (int oi = 0; oi < 3; oi++)
                for (int vi = 0; vi < 2; vi++) {
                    ms_sim_opts o;
                    ms_sim_opts_default(&o);
                    o.route = routes[ri];
                    o.origin = origins[oi];
                    o.overflow = ovs[vi];
                    o.capacity_factor = 1.0;
                    o.seed = 9;
                    ms_sim_result *a = run(t, p, &o, NULL);
                    o.mesh_generic = true;
                    ms_sim_result *b = run(t, p, &o, NULL);
                    assert_int_equal(a->n_records, b->n_records);
                    for (uint64_t i = 0; i < a->n_records; i++) {
                        const ms_sim_record *x = &a->records[i], *y = &b->records[i];
                        near(x->layer_us, y->layer_us, 1e-12);
                        near(x->dispatch_us, y->dispatch_us, 1e-12);
                        near(x->combine_us, y->combine_us, 1e-12);
                        near(x->compute_us, y->compute_us, 1e-12);
                        near(x->imbalance, y->imbalance, 1e-12);
                        assert_int_equal(x->assignments, y->assignments);
                        assert_int_equal(x->dropped, y->dropped);
                    }
                    ms_sim_result_free(a);
                    ms_sim_result_free(b);
                }
        ms_trace_free(t);
        ms_placement_free(p);
        free(ids);
        free(ph);
    }
}

/* Results do not depend on the thread count. */
static void test_threads_same(void **state) {
    (void)state;
    ms_rng rng;
    ms_rng_seed(&rng, 5);
    uint32_t nreq = 300, nt[300], E = 32, k = 4;
    uint64_t n = 0;
    for (uint32_t r = 0; r < nreq; r++) n += nt[r] = 1 + (uint32_t)ms_rng_below(&rng, 200);
    uint16_t *ids = malloc(sizeof(uint16_t) * 3 * n * k);
    for (uint64_t i = 0; i < 3 * n * k; i++) ids[i] = (uint16_t)ms_rng_below(&rng, E);
    ms_trace *t = mk_trace(3, E, k, nreq, nt, ids);
    int32_t ph[48];
    for (int s = 0; s < 48; s++) ph[s] = s < 32 ? s : s - 32;
    ms_placement *p = mk_place(2, 4, 6, E, false, ph);
    ms_sim_opts o;
    ms_sim_opts_default(&o);
    o.threads = 1;
    ms_sim_result *a = run(t, p, &o, NULL);
    o.threads = 3;
    ms_sim_result *b = run(t, p, &o, NULL);
    assert_memory_equal(&a->summary.layer_us, &b->summary.layer_us, sizeof(ms_dist));
    assert_memory_equal(&a->summary.imbalance, &b->summary.imbalance, sizeof(ms_dist));
    assert_true(a->summary.intra_bytes == b->summary.intra_bytes);
    assert_memory_equal(a->records, b->records, a->n_records * sizeof(ms_sim_record));
    ms_sim_result_free(a);
    ms_sim_result_free(b);
    ms_trace_free(t);
    ms_placement_free(p);
    free(ids);
}

static void test_errors(void **state) {
    (void)state;
    uint32_t nt[1] = {2};
    uint16_t ids[4] = {0, 1, 1, 2};
    ms_trace *t = mk_trace(1, 3, 2, 1, nt, ids);
    ms_placement *p = mk_place(2, 2, 1, 3, false, P4);
    ms_batch_opts bo;
    ms_batch_opts_default(&bo);
    ms_batch_plan *plan = NULL;
    ms_error err = {0};
    assert_int_equal(ms_batch_plan_build(t, &bo, 4, &plan, &err), MS_OK);
    ms_sim_opts o;
    ms_sim_opts_default(&o);
    ms_sim_result *r = NULL;
    o.route = MS_ROUTE_SPLIT;
    assert_int_equal(ms_sim_run(t, plan, p, &o, NULL, &r, &err), MS_E_INPUT);
    o.route = MS_ROUTE_BALANCED;
    o.layer = 3;
    assert_int_equal(ms_sim_run(t, plan, p, &o, NULL, &r, &err), MS_E_INPUT);
    assert_non_null(strstr(err.msg, "layer 3"));
    o.layer = -1;
    o.origin = MS_ORIGIN_TRACE;
    assert_int_equal(ms_sim_run(t, plan, p, &o, NULL, &r, &err), MS_E_INPUT);
    o.origin = MS_ORIGIN_AVERAGE_ROWS;
    o.overlap = MS_OVERLAP_TWO_MICRO_BATCH;
    assert_int_equal(ms_sim_run(t, plan, p, &o, NULL, &r, &err), MS_E_INPUT);
    o.overlap = MS_OVERLAP_NONE;
    o.cost_model = MS_COST_ROOFLINE; /* no presets */
    assert_int_equal(ms_sim_run(t, plan, p, &o, NULL, &r, &err), MS_E_INPUT);
    o.cost_model = MS_COST_MESH;
    /* a plan for another device count */
    ms_batch_plan *plan8 = NULL;
    assert_int_equal(ms_batch_plan_build(t, &bo, 8, &plan8, &err), MS_OK);
    assert_int_equal(ms_sim_run(t, plan8, p, &o, NULL, &r, &err), MS_E_INPUT);
    /* a placement with fewer experts than the trace */
    int32_t ph2[4] = {0, 1, 0, 1};
    ms_placement *p2 = mk_place(2, 2, 1, 2, false, ph2);
    assert_int_equal(ms_sim_run(t, plan, p2, &o, NULL, &r, &err), MS_E_INPUT);
    assert_null(r);
    ms_placement_free(p2);
    ms_batch_plan_free(plan8);
    ms_batch_plan_free(plan);
    ms_trace_free(t);
    ms_placement_free(p);
    /* names round-trip */
    ms_route rt;
    assert_int_equal(ms_route_parse("least-loaded", &rt, &err), MS_OK);
    assert_int_equal(rt, MS_ROUTE_LEAST_LOADED);
    assert_string_equal(ms_route_name(MS_ROUTE_BALANCED), "balanced-replicas");
    assert_int_equal(ms_route_parse("fastest", &rt, &err), MS_E_INPUT);
    assert_non_null(strstr(err.msg, "row-local"));
}

/* ------------------------------------------------------------ reference */

static void check_reference(const ms_sim_summary *s, const char *path) {
    json_error_t je;
    json_t *e = json_load_file(path, 0, &je);
    assert_non_null(e);
    near(s->layer_us.mean, json_real_value(json_object_get(e, "mean")), 1e-6);
    near(s->layer_us.p95, json_real_value(json_object_get(e, "p95")), 1e-6);
    near(s->layer_us.p99, json_real_value(json_object_get(e, "p99")), 1e-6);
    near(s->dispatch_us, json_real_value(json_object_get(e, "max_dispatch_mean")), 1e-6);
    near(s->compute_us, json_real_value(json_object_get(e, "max_compute_mean")), 1e-6);
    near(s->combine_us, json_real_value(json_object_get(e, "max_combine_mean")), 1e-6);
    assert_int_equal(s->records, json_integer_value(json_object_get(e, "records")));
    json_t *co = json_object_get(e, "coeffs");
    for (int i = 0; i < 4; i++) near(s->coeffs[i], json_real_value(json_array_get(co, (size_t)i)), 1e-9);
    json_decref(e);
}

static void test_reference_equivalence(void **state) {
    (void)state;
    char dbuf[1024], rbuf[1024], path[2048];
    const char *data = tu_data_dir("deepseek-v2-lite-puffin", dbuf, sizeof dbuf);
    const char *ref = tu_ref_dir("moe-balance", rbuf, sizeof rbuf);
    if (!data || !ref) skip();
    ms_error err = {0};
    ms_trace *t = NULL;
    const char *paths[1] = {data};
    ms_trace_load_opts lo = {0};
    assert_int_equal(ms_trace_load(paths, 1, &lo, &t, &err), MS_OK);
    snprintf(path, sizeof path, "%s/balance_dsv2lite_l10_2x8.placement.json", ref);
    ms_placement *p = NULL;
    assert_int_equal(ms_placement_read_json(path, NULL, t->n_experts, &p, &err), MS_OK);
    ms_sim_opts o;
    ms_sim_opts_default(&o);
    o.layer = 10;
    o.capacity_factor = 2;
    const char *modes[2] = {"average-rows", "round-robin"};
    for (int generic = 0; generic < 2; generic++)
        for (int m = 0; m < 2; m++) {
            o.origin = m == 0 ? MS_ORIGIN_AVERAGE_ROWS : MS_ORIGIN_ROUND_ROBIN;
            o.mesh_generic = generic;
            ms_sim_result *r = run(t, p, &o, NULL);
            snprintf(path, sizeof path, "%s/expected_%s.json", ref, modes[m]);
            check_reference(&r->summary, path);
            ms_sim_result_free(r);
        }
    ms_placement_free(p);
    ms_trace_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fit_rows2),
        cmocka_unit_test(test_fit_matches_reduced_system),
        cmocka_unit_test(test_lstsq),
        cmocka_unit_test(test_hand_terms),
        cmocka_unit_test(test_hand_compute_chunks),
        cmocka_unit_test(test_hand_ring_and_ecol),
        cmocka_unit_test(test_balanced_capacity),
        cmocka_unit_test(test_fast_equals_generic),
        cmocka_unit_test(test_threads_same),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_reference_equivalence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
