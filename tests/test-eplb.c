/* test-eplb.c - EPLB must be output-identical to DeepSeek's reference
 * (deepseek-ai/EPLB rebalance_experts): its README example, the reference
 * outputs in ../shared/reference/eplb (skipped when absent), random inputs
 * against an independent numpy port of the reference (skipped without
 * numpy), plus properties and input errors. */
#include "testutil.h"

#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "moesim/place.h"

/* EPLB on a rows x cols grid of `slots` slots, `groups` expert groups, no LP bound. */
static void eplb_opts(ms_place_opts *o, uint32_t rows, uint32_t cols, uint32_t slots, uint32_t groups) {
    tu_place_opts(o, "eplb", rows, cols, slots);
    o->groups = groups;
    o->lp_bound = false;
}

static ms_placement *run_eplb(const ms_loads *ld, uint32_t rows, uint32_t cols, uint32_t slots, uint32_t groups,
                              ms_status want, ms_error *err) {
    ms_place_input in = {ld, NULL, 0};
    ms_place_opts o;
    eplb_opts(&o, rows, cols, slots, groups);
    ms_placement *p = NULL;
    ms_status st = ms_place_run(&in, &o, &p, err);
    if (st != want) fprintf(stderr, "ms_place_run: %s\n", err->msg);
    assert_int_equal(st, want);
    return p;
}

/* The README example of deepseek-ai/EPLB. */
static void test_readme_example(void **state) {
    (void)state;
    static const double w[2][12] = {{90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86},
                                    {20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27}};
    static const int32_t want[2][16] = {{5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1},
                                        {7, 10, 6, 8, 6, 11, 8, 9, 2, 4, 5, 1, 5, 0, 3, 1}};
    ms_loads *ld = tu_loads(2, 12, &w[0][0]);
    ms_error err = {0};
    ms_placement *p = run_eplb(ld, 2, 4, 2, 4, MS_OK, &err);
    assert_memory_equal(p->phy2log, want, sizeof want);
    /* logcnt counted by hand from the rows above */
    static const uint32_t cnt0[12] = {1, 2, 1, 1, 2, 2, 1, 1, 1, 1, 2, 1};
    static const uint32_t cnt1[12] = {1, 2, 1, 1, 1, 2, 2, 1, 2, 1, 1, 1};
    assert_memory_equal(p->logcnt, cnt0, sizeof cnt0);
    assert_memory_equal(p->logcnt + 12, cnt1, sizeof cnt1);
    assert_string_equal(p->algorithm, "eplb");
    assert_true(p->objective >= p->lower_bound);
    ms_placement_free(p);
    ms_loads_free(ld);
}

/* ------------------------------------------------ the reference outputs */

static int32_t jint(json_t *a, size_t i) { return (int32_t)json_integer_value(json_array_get(a, i)); }

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Compares p with an expected.json: phy2log and logcnt exactly, each
 * expert's log2phy as a set. */
static void compare_expected(const ms_placement *p, json_t *exp, const char *name) {
    json_t *ph = json_object_get(exp, "phy2log"), *lc = json_object_get(exp, "logcnt"),
           *lp = json_object_get(exp, "log2phy");
    assert_int_equal(json_array_size(ph), p->n_layers);
    for (uint32_t l = 0; l < p->n_layers; l++) {
        json_t *row = json_array_get(ph, l);
        assert_int_equal(json_array_size(row), p->n_phys);
        for (uint32_t s = 0; s < p->n_phys; s++)
            if (jint(row, s) != p->phy2log[(size_t)l * p->n_phys + s]) {
                fprintf(stderr, "%s: layer %u slot %u: expected %d, got %d\n", name, l, s, jint(row, s),
                        p->phy2log[(size_t)l * p->n_phys + s]);
                fail();
            }
        json_t *crow = json_array_get(lc, l), *lrow = json_array_get(lp, l);
        for (uint32_t e = 0; e < p->n_logical; e++) {
            uint32_t c = p->logcnt[(size_t)l * p->n_logical + e];
            assert_int_equal(jint(crow, e), c);
            json_t *ref = json_array_get(lrow, e);
            size_t cap = json_array_size(ref) + c + 1;
            int32_t *a = malloc(cap * sizeof *a), *b = malloc(cap * sizeof *b);
            uint32_t na = 0, nb = 0;
            for (size_t j = 0; j < json_array_size(ref); j++)
                if (jint(ref, j) >= 0) a[na++] = jint(ref, j);
            for (uint32_t j = 0; j < c; j++) b[nb++] = p->log2phy[((size_t)l * p->n_logical + e) * p->max_replicas + j];
            assert_int_equal(na, nb);
            qsort(a, na, sizeof *a, cmp_i32);
            qsort(b, nb, sizeof *b, cmp_i32);
            assert_memory_equal(a, b, na * sizeof *a);
            free(a);
            free(b);
        }
    }
}

static void test_reference_outputs(void **state) {
    (void)state;
    char dir[1024];
    if (!tu_ref_dir("eplb", dir, sizeof dir)) skip();
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    int cases = 0;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n < 5 || strcmp(de->d_name + n - 4, ".csv") != 0) continue;
        char csv[2048], js[2048];
        snprintf(csv, sizeof csv, "%s/%s", dir, de->d_name);
        snprintf(js, sizeof js, "%s/%.*s.expected.json", dir, (int)(n - 4), de->d_name);
        json_error_t je;
        json_t *exp = json_load_file(js, 0, &je);
        if (!exp) continue;
        ms_loads *ld;
        ms_error err = {0};
        assert_int_equal(ms_loads_read_csv(csv, &ld, &err), MS_OK);
        uint32_t rows = (uint32_t)json_integer_value(json_object_get(exp, "rows"));
        uint32_t cols = (uint32_t)json_integer_value(json_object_get(exp, "cols"));
        uint32_t slots = (uint32_t)json_integer_value(json_object_get(exp, "slots"));
        uint32_t groups = (uint32_t)json_integer_value(json_object_get(exp, "groups"));
        ms_placement *p = run_eplb(ld, rows, cols, slots, groups, MS_OK, &err);
        compare_expected(p, exp, de->d_name);
        cases++;
        ms_placement_free(p);
        ms_loads_free(ld);
        json_decref(exp);
    }
    closedir(d);
    assert_true(cases >= 4);
}

/* ------------------------------------- random inputs against numpy port */

/* An independent port of deepseek-ai/EPLB's eplb.py to numpy, float32 like
 * the reference: argsort(-w, stable) = torch's descending sort with ties by
 * index, argmax and Python's min take the first on ties. */
static const char *numpy_eplb =
    "import sys, json, functools\n"
    "import numpy as np\n"
    "f32 = np.float32\n"
    "def balanced_packing(weight, num_packs):\n"
    "    L, n = weight.shape\n"
    "    gpp = n // num_packs\n"
    "    if gpp == 1:\n"
    "        return np.tile(np.arange(n), (L, 1)), np.zeros((L, n), dtype=np.int64)\n"
    "    pi = np.full((L, n), -1); rip = np.full((L, n), -1)\n"
    "    for i in range(L):\n"
    "        pw = [f32(0)] * num_packs; items = [0] * num_packs\n"
    "        for g in np.argsort(-weight[i], kind='stable'):\n"
    "            pack = min((p for p in range(num_packs) if items[p] < gpp), key=pw.__getitem__)\n"
    "            pi[i, g] = pack; rip[i, g] = items[pack]\n"
    "            pw[pack] = f32(pw[pack] + weight[i, g]); items[pack] += 1\n"
    "    return pi, rip\n"
    "def replicate(weight, num_phy):\n"
    "    n, num_log = weight.shape\n"
    "    phy2log = np.tile(np.arange(num_phy), (n, 1)); rank = np.zeros((n, num_phy), dtype=np.int64)\n"
    "    logcnt = np.ones((n, num_log), dtype=np.int64); ar = np.arange(n)\n"
    "    for i in range(num_log, num_phy):\n"
    "        red = (weight / logcnt.astype(f32)).argmax(-1)\n"
    "        phy2log[:, i] = red; rank[:, i] = logcnt[ar, red]; logcnt[ar, red] += 1\n"
    "    return phy2log, rank, logcnt\n"
    "def inverse(perm):\n"
    "    inv = np.empty_like(perm)\n"
    "    for r in range(perm.shape[0]): inv[r, perm[r]] = np.arange(perm.shape[1])\n"
    "    return inv\n"
    "def hier(w, P, G, N, M):\n"
    "    L, E = w.shape; gs = E // G; gpn = G // N; ppg = P // M\n"
    "    tpg = np.array([[functools.reduce(lambda a, b: f32(a + b), w[l, g*gs:(g+1)*gs], f32(0))\n"
    "                     for g in range(G)] for l in range(L)], dtype=f32)\n"
    "    gpi, grip = balanced_packing(tpg, N)\n"
    "    log2mlog = (((gpi * gpn + grip) * gs)[:, :, None] + np.arange(gs)).reshape(L, -1)\n"
    "    mlog2log = inverse(log2mlog)\n"
    "    tpm = np.take_along_axis(w, mlog2log, -1).reshape(-1, E // N)\n"
    "    phy2mlog, phyrank, mlogcnt = replicate(tpm, P // N)\n"
    "    tpp = np.take_along_axis(tpm / mlogcnt.astype(f32), phy2mlog, -1)\n"
    "    pi, rip = balanced_packing(tpp, M // N)\n"
    "    pphy2phy = inverse(pi * ppg + rip)\n"
    "    pphy2mlog = np.take_along_axis(phy2mlog, pphy2phy, -1)\n"
    "    pphy2mlog = (pphy2mlog.reshape(L, N, -1) + np.arange(0, E, E // N).reshape(1, -1, 1)).reshape(L, -1)\n"
    "    return np.take_along_axis(mlog2log, pphy2mlog, -1), np.take_along_axis(mlogcnt.reshape(L, -1), log2mlog, -1)\n"
    "out = []\n"
    "for case in json.load(open(sys.argv[1])):\n"
    "    w = np.loadtxt(case['csv'], delimiter=',', dtype=np.float64, ndmin=2).astype(f32)\n"
    "    rows, cols, slots, groups = case['rows'], case['cols'], case['slots'], case['groups']\n"
    "    P, M = rows * cols * slots, rows * cols\n"
    "    if groups > 0 and groups % rows == 0: p2l, cnt = hier(w, P, groups, rows, M)\n"
    "    else: p2l, cnt = hier(w, P, 1, 1, M)\n"
    "    out.append({'phy2log': p2l.tolist(), 'logcnt': cnt.tolist()})\n"
    "print(json.dumps(out))\n";

#define N_SHAPES 10
#define N_REPS 2

static void test_random_against_numpy(void **state) {
    (void)state;
    if (!tu_have_numpy()) skip();
    char script[1024], list[1024], csv[N_SHAPES * N_REPS][1024];
    tu_tmp_path("eplb_ref", ".py", script, sizeof script);
    tu_write_file(script, numpy_eplb, strlen(numpy_eplb));
    static const struct {
        uint32_t rows, cols, slots, experts, groups;
    } shapes[N_SHAPES] = {
        {2, 4, 2, 12, 4},  /* README's shape */
        {1, 4, 3, 8, 0},   /* global */
        {2, 2, 1, 4, 2},   /* one slot per GPU: no replicas, packing shortcuts */
        {4, 2, 3, 16, 8},  /* hierarchical, 2 groups per node */
        {2, 4, 4, 24, 4},  /* like hier_2x4_s4 */
        {3, 2, 4, 18, 6},  /* three nodes */
        {2, 3, 5, 20, 0},  /* global, 5 slots */
        {4, 4, 2, 16, 4},  /* one group per node */
        {2, 4, 3, 16, 3},  /* 3 groups on 2 rows: global */
        {1, 1, 7, 5, 1},   /* one GPU */
    };
    ms_loads *lds[N_SHAPES * N_REPS];
    ms_rng r;
    ms_rng_seed(&r, 2024);
    json_t *cases = json_array();
    for (size_t c = 0; c < N_SHAPES * N_REPS; c++) {
        size_t k = c / N_REPS;
        uint32_t L = 3, E = shapes[k].experts;
        ms_error err = {0};
        assert_int_equal(ms_loads_new(L, E, &lds[c], &err), MS_OK);
        char *text = malloc((size_t)L * E * 20 + 1);
        size_t pos = 0;
        for (uint32_t i = 0; i < L * E; i++) {
            /* float32 values, distinct with overwhelming probability */
            float v = (float)(ms_rng_uniform(&r) * (c % 2 ? 5000.0 : 200.0));
            lds[c]->w[i] = v;
            pos += (size_t)sprintf(text + pos, "%.9g%s", (double)v, (i + 1) % E ? "," : "\n");
        }
        tu_tmp_path("eplb_in", ".csv", csv[c], sizeof csv[c]);
        tu_write_file(csv[c], text, pos);
        free(text);
        json_array_append_new(cases, json_pack("{s:s, s:i, s:i, s:i, s:i}", "csv", csv[c], "rows", (int)shapes[k].rows,
                                               "cols", (int)shapes[k].cols, "slots", (int)shapes[k].slots, "groups",
                                               (int)shapes[k].groups));
    }
    tu_tmp_path("eplb_cases", ".json", list, sizeof list);
    assert_int_equal(json_dump_file(cases, list, 0), 0);
    json_decref(cases);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s", script, list);
    static char out[1 << 21];
    assert_int_equal(tu_run(cmd, out, sizeof out), 0);
    json_error_t je;
    json_t *all = json_loads(out, 0, &je);
    assert_non_null(all);
    assert_int_equal(json_array_size(all), N_SHAPES * N_REPS);
    for (size_t c = 0; c < N_SHAPES * N_REPS; c++) {
        size_t k = c / N_REPS;
        ms_error err = {0};
        ms_placement *p = run_eplb(lds[c], shapes[k].rows, shapes[k].cols, shapes[k].slots, shapes[k].groups, MS_OK, &err);
        json_t *exp = json_array_get(all, c);
        json_t *ph = json_object_get(exp, "phy2log"), *lc = json_object_get(exp, "logcnt");
        for (uint32_t l = 0; l < p->n_layers; l++) {
            for (uint32_t s = 0; s < p->n_phys; s++)
                if (jint(json_array_get(ph, l), s) != p->phy2log[(size_t)l * p->n_phys + s]) {
                    fprintf(stderr, "case %zu layer %u slot %u: numpy %d, moesim %d\n", c, l, s,
                            jint(json_array_get(ph, l), s), p->phy2log[(size_t)l * p->n_phys + s]);
                    fail();
                }
            for (uint32_t e = 0; e < p->n_routed; e++)
                assert_int_equal(jint(json_array_get(lc, l), e), p->logcnt[(size_t)l * p->n_logical + e]);
        }
        ms_placement_free(p);
        ms_loads_free(lds[c]);
        remove(csv[c]);
    }
    json_decref(all);
    remove(list);
    remove(script);
}

/* ------------------------------------------------------------ properties */

static void test_properties_random(void **state) {
    (void)state;
    ms_rng r;
    ms_rng_seed(&r, 7);
    for (int it = 0; it < 60; it++) {
        uint32_t rows = 1 + (uint32_t)ms_rng_below(&r, 4), cols = 1 + (uint32_t)ms_rng_below(&r, 4);
        uint32_t slots = 1 + (uint32_t)ms_rng_below(&r, 4);
        uint32_t groups = rows * (1 + (uint32_t)ms_rng_below(&r, 3));
        uint32_t gsize = 1 + (uint32_t)ms_rng_below(&r, 3);
        uint32_t E = groups * gsize;
        if (E > rows * cols * slots) continue;
        bool hier = ms_rng_below(&r, 2) == 0;
        if (hier && E / rows > cols * slots) continue; /* a node could not hold its groups */
        uint32_t L = 2;
        ms_loads *ld;
        ms_error err = {0};
        assert_int_equal(ms_loads_new(L, E, &ld, &err), MS_OK);
        for (uint32_t i = 0; i < L * E; i++) ld->w[i] = (float)(ms_rng_uniform(&r) * 100.0);
        ms_placement *p = run_eplb(ld, rows, cols, slots, hier ? groups : 0, MS_OK, &err);
        ms_placement *q = run_eplb(ld, rows, cols, slots, hier ? groups : 0, MS_OK, &err);
        /* deterministic */
        assert_memory_equal(p->phy2log, q->phy2log, (size_t)L * p->n_phys * sizeof *p->phy2log);
        uint32_t P = p->n_phys, gpn_slots = cols * slots;
        for (uint32_t l = 0; l < L; l++) {
            const int32_t *row = p->phy2log + (size_t)l * P;
            const double *w = ld->w + (size_t)l * E;
            const uint32_t *cnt = p->logcnt + (size_t)l * E;
            for (uint32_t s = 0; s < P; s++) assert_true(row[s] >= 0); /* every slot filled */
            if (hier) {
                /* all replicas of an expert group live in one node, and each
                 * node holds groups / rows whole groups */
                for (uint32_t g = 0; g < groups; g++) {
                    int node = -1;
                    for (uint32_t s = 0; s < P; s++)
                        if ((uint32_t)row[s] / gsize == g) {
                            int n = (int)(s / gpn_slots);
                            if (node < 0) node = n;
                            assert_int_equal(node, n);
                        }
                }
            }
            /* replication is greedy: every extra replica went to an expert
             * whose load per replica was then the largest (within the
             * replica pool: one node when hierarchical) */
            for (uint32_t e = 0; e < E; e++) {
                if (cnt[e] < 2) continue;
                double before = w[e] / (cnt[e] - 1);
                for (uint32_t j = 0; j < E; j++) {
                    bool same_pool = true;
                    if (hier) {
                        int ne = -1, nj = -1;
                        for (uint32_t s = 0; s < P; s++) {
                            if ((uint32_t)row[s] == e) ne = (int)(s / gpn_slots);
                            if ((uint32_t)row[s] == j) nj = (int)(s / gpn_slots);
                        }
                        same_pool = ne == nj;
                    }
                    if (same_pool) assert_true(before * (1 + 1e-6) >= w[j] / cnt[j]);
                }
            }
            assert_true(ms_placement_max_device_load(p, ld, l) >= p->layer_bound[l] * (1 - 1e-12));
        }
        ms_placement_free(p);
        ms_placement_free(q);
        ms_loads_free(ld);
    }
}

static void test_errors(void **state) {
    (void)state;
    ms_loads *ld;
    ms_error err = {0};
    assert_int_equal(ms_loads_new(1, 12, &ld, &err), MS_OK);
    for (uint32_t e = 0; e < 12; e++) ld->w[e] = e + 1;
    /* 12 experts do not split into 8 groups (8 % 2 rows == 0: hierarchical) */
    assert_null(run_eplb(ld, 2, 4, 2, 8, MS_E_INPUT, &err));
    assert_non_null(strstr(err.msg, "groups"));
    /* too few slots */
    assert_null(run_eplb(ld, 2, 2, 2, 0, MS_E_INPUT, &err));
    assert_non_null(strstr(err.msg, "slot budget"));
    /* --redundant other than "fill all" */
    ms_place_input in = {ld, NULL, 0};
    ms_place_opts o;
    eplb_opts(&o, 2, 4, 2, 0);
    o.redundant = 2;
    ms_placement *p = NULL;
    assert_int_equal(ms_place_run(&in, &o, &p, &err), MS_E_INPUT);
    assert_non_null(strstr(err.msg, "redundant"));
    o.redundant = 4; /* = free slots - experts: accepted */
    assert_int_equal(ms_place_run(&in, &o, &p, &err), MS_OK);
    ms_placement_free(p);
    /* groups that are not a multiple of the rows fall back to global */
    ms_placement *g = run_eplb(ld, 2, 4, 2, 3, MS_OK, &err);
    ms_placement *g0 = run_eplb(ld, 2, 4, 2, 0, MS_OK, &err);
    assert_memory_equal(g->phy2log, g0->phy2log, 16 * sizeof(int32_t));
    ms_placement_free(g);
    ms_placement_free(g0);
    ms_loads_free(ld);
}

/* With the shared expert reserved (one replica per row), EPLB packs the
 * routed experts into the remaining, unequal free slots. */
static void test_shared_expert(void **state) {
    (void)state;
    ms_loads *ld;
    ms_error err = {0};
    assert_int_equal(ms_loads_new(2, 12, &ld, &err), MS_OK);
    for (uint32_t i = 0; i < 24; i++) ld->w[i] = (double)((i * 37) % 101 + 1);
    ms_place_input in = {ld, NULL, 0};
    ms_place_opts o;
    eplb_opts(&o, 2, 4, 2, 4);
    o.shared_expert = true;
    ms_placement *p = NULL;
    assert_int_equal(ms_place_run(&in, &o, &p, &err), MS_OK);
    assert_true(p->has_shared);
    assert_int_equal(p->n_logical, 13);
    for (uint32_t l = 0; l < 2; l++) {
        const int32_t *row = p->phy2log + (size_t)l * 16;
        /* replica 0 at row 0 col 0 (device 0, slot 0), replica 1 at row 1 col 1 (device 5) */
        assert_int_equal(row[0], 12);
        assert_int_equal(row[10], 12);
        for (uint32_t s = 0; s < 16; s++) assert_true(row[s] >= 0);
        assert_int_equal(p->logcnt[l * 13 + 12], 2);
    }
    ms_placement_free(p);
    ms_loads_free(ld);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readme_example),   cmocka_unit_test(test_reference_outputs),
        cmocka_unit_test(test_random_against_numpy), cmocka_unit_test(test_properties_random),
        cmocka_unit_test(test_errors),           cmocka_unit_test(test_shared_expert),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
