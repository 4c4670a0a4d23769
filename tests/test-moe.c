/* test-moe.c - the MoE forward: optimized == functional reference within the
 * stated tolerance (max|opt-ref| <= 1e-4 max|ref|, fp32 and bf16 storage) on
 * random and crafted routings (empty experts, all tokens on one expert,
 * capacity overflow), a hand-computed layer, numpy as independent truth for
 * the DeepSeek-V3 router and the whole layer, and the C GEMM. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "moesim/moe.h"
#include "moe/moe_internal.h"
#include "moesim/sim.h"
#include <jansson.h>

#define TOL 1e-4

static ms_moe_config small_cfg(ms_moe_dtype dt) {
    ms_moe_config c;
    assert_int_equal(ms_moe_config_preset("64x48", &c, NULL), MS_OK);
    c.n_experts = 8;
    c.top_k = 2;
    c.n_shared = 1;
    c.shared_inter = 40;
    c.dtype = dt;
    return c;
}

static float *rand_x(uint32_t T, uint32_t H, uint64_t seed) {
    float *x = malloc((size_t)T * H * sizeof(float));
    assert_non_null(x);
    ms_rng r;
    ms_rng_seed(&r, seed);
    for (size_t i = 0; i < (size_t)T * H; i++) x[i] = (float)(2 * ms_rng_uniform(&r) - 1);
    return x;
}

static double max_abs(const float *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i]));
    return m;
}

static double rel_diff(const float *a, const float *b, size_t n) {
    double d = 0;
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    double m = max_abs(b, n);
    return m > 0 ? d / m : d;
}

/* Runs the reference and the optimized forward (several threading modes and
 * tiles) on the same routing; asserts agreement and equal stats. */
static void compare(const ms_moe_layer *l, const float *x, uint32_t T, const uint32_t *ids, const float *w,
                    ms_moe_fwd_stats *ref_stats) {
    size_t n = (size_t)T * l->cfg.hidden;
    float *yr = malloc(n * sizeof(float) + 1), *yo = malloc(n * sizeof(float) + 1);
    ms_error err = {0};
    ms_moe_fwd_stats sr, so;
    assert_int_equal(ms_moe_forward_ref(l, x, T, ids, w, yr, &sr, &err), MS_OK);
    struct {
        ms_moe_threading th;
        uint32_t tile;
        int threads;
        bool no_small;
    } modes[] = {{MS_MOE_THREADS_AUTO, 0, 0, false}, {MS_MOE_THREADS_TILES, 16, 2, false},
                 {MS_MOE_THREADS_TILES, 7, 3, true}, {MS_MOE_THREADS_BLAS, 0, 2, true},
                 {MS_MOE_THREADS_BLAS, 24, 1, false}, {MS_MOE_THREADS_AUTO, 0, 0, true}};
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        ms_moe_ws_opts o = {modes[m].threads, modes[m].th, modes[m].tile, modes[m].no_small, m > 0};
        ms_moe_workspace *ws;
        /* a workspace bigger than needed, reused twice */
        assert_int_equal(ms_moe_workspace_new(&l->cfg, T + 5, &o, &ws, &err), MS_OK);
        for (int rep = 0; rep < 2; rep++) {
            memset(yo, 0x7f, n * sizeof(float)); /* garbage: every output must be written */
            assert_int_equal(ms_moe_forward(l, ws, x, T, ids, w, yo, &so, &err), MS_OK);
            double rd = rel_diff(yo, yr, n);
            if (!(rd <= TOL)) fail_msg("mode %zu: rel diff %g > %g", m, rd, TOL);
            assert_int_equal(so.assignments, sr.assignments);
            assert_int_equal(so.dropped, sr.dropped);
            assert_int_equal(so.max_load, sr.max_load);
            assert_int_equal(so.active_experts, sr.active_experts);
        }
        ms_moe_workspace_free(ws);
    }
    if (ref_stats) *ref_stats = sr;
    free(yr);
    free(yo);
}

static void test_random_routed(void **state) {
    (void)state;
    for (int dt = 0; dt < 2; dt++) {
        ms_moe_config c = small_cfg((ms_moe_dtype)dt);
        for (int router = 0; router < 2; router++) {
            c.router = (ms_moe_router_kind)router;
            c.n_group = 4;
            c.topk_group = 2;
            c.routed_scaling = router ? 2.5f : 1.0f;
            ms_moe_layer *l;
            ms_error err = {0};
            assert_int_equal(ms_moe_layer_new(&c, 11, &l, &err), MS_OK);
            uint32_t T = 37;
            float *x = rand_x(T, c.hidden, 5);
            uint32_t ids[37 * 2];
            float w[37 * 2];
            assert_int_equal(ms_moe_route(l, x, T, ids, w, &err), MS_OK);
            ms_moe_fwd_stats st;
            compare(l, x, T, ids, w, &st);
            assert_int_equal(st.assignments, T * 2);
            assert_int_equal(st.dropped, 0);
            free(x);
            ms_moe_layer_free(l);
        }
    }
}

static void test_empty_and_one_expert(void **state) {
    (void)state;
    ms_moe_config c = small_cfg(MS_MOE_F32);
    c.n_shared = 0;
    ms_moe_layer *l;
    ms_error err = {0};
    assert_int_equal(ms_moe_layer_new(&c, 3, &l, &err), MS_OK);
    uint32_t T = 20;
    float *x = rand_x(T, c.hidden, 9);
    uint32_t ids[40];
    float w[40];
    /* only experts 0 and 3 used: six experts empty */
    for (uint32_t t = 0; t < T; t++) {
        ids[2 * t] = t % 2 ? 3 : 0;
        ids[2 * t + 1] = t % 2 ? 0 : 3;
        w[2 * t] = 0.7f;
        w[2 * t + 1] = 0.3f;
    }
    ms_moe_fwd_stats st;
    compare(l, x, T, ids, w, &st);
    assert_int_equal(st.active_experts, 2);
    assert_int_equal(st.max_load, 20);
    ms_moe_layer_free(l);

    /* all tokens to one expert, K = 1, bf16, with a shared expert */
    c = small_cfg(MS_MOE_BF16);
    c.top_k = 1;
    assert_int_equal(ms_moe_layer_new(&c, 4, &l, &err), MS_OK);
    for (uint32_t t = 0; t < T; t++) {
        ids[t] = 5;
        w[t] = 1.0f;
    }
    compare(l, x, T, ids, w, &st);
    assert_int_equal(st.active_experts, 1);
    assert_int_equal(st.max_load, 20);
    /* zero tokens: nothing to do, no failure */
    compare(l, x, 0, ids, w, &st);
    assert_int_equal(st.assignments, 0);
    ms_moe_layer_free(l);
    free(x);
}

static void test_capacity_overflow(void **state) {
    (void)state;
    ms_moe_config c = small_cfg(MS_MOE_F32);
    c.n_shared = 0;
    c.capacity_factor = 1.0; /* T=16, K=2, E=8: C = ceil(16*2/8) = 4 */
    ms_moe_layer *l;
    ms_error err = {0};
    assert_int_equal(ms_moe_layer_new(&c, 21, &l, &err), MS_OK);
    assert_int_equal(ms_moe_capacity(&c, 16), 4);
    uint32_t T = 16;
    float *x = rand_x(T, c.hidden, 13);
    uint32_t ids[32];
    float w[32];
    /* every token: expert 1 first, then expert (t % 8 == 1 ? 2 : t % 8) */
    for (uint32_t t = 0; t < T; t++) {
        ids[2 * t] = 1;
        ids[2 * t + 1] = t % 8 == 1 ? 2 : t % 8;
        w[2 * t] = 0.6f;
        w[2 * t + 1] = 0.4f;
    }
    /* expected by hand: expert 1 asked 16 times, keeps tokens 0..3 -> 12 dropped;
     * second choices: e0 {0,8}, e2 {1,2,9,10}, e3..e7 two each: all fit */
    ms_moe_fwd_stats st;
    compare(l, x, T, ids, w, &st);
    assert_int_equal(st.dropped, 12);
    assert_int_equal(st.assignments, 20);
    assert_int_equal(st.max_load, 4);

    /* capacity 1, three tokens all to expert 2 (K=1): tokens 1 and 2 dropped -> y exactly 0 */
    c.top_k = 1;
    c.capacity_factor = 0.1;
    ms_moe_layer *l1;
    assert_int_equal(ms_moe_layer_new(&c, 21, &l1, &err), MS_OK);
    assert_int_equal(ms_moe_capacity(&c, 3), 1);
    uint32_t id3[3] = {2, 2, 2};
    float w3[3] = {1, 1, 1};
    float y[3 * 64];
    ms_moe_workspace *ws;
    assert_int_equal(ms_moe_workspace_new(&c, 3, NULL, &ws, &err), MS_OK);
    assert_int_equal(ms_moe_forward(l1, ws, x, 3, id3, w3, y, &st, &err), MS_OK);
    assert_int_equal(st.dropped, 2);
    assert_true(max_abs(y, 64) > 0);
    for (int i = 64; i < 3 * 64; i++) assert_true(y[i] == 0.0f);
    compare(l1, x, 3, id3, w3, NULL);
    ms_moe_workspace_free(ws);
    ms_moe_layer_free(l1);
    ms_moe_layer_free(l);
    free(x);
}

/* bf16 storage vs the same model in fp32: differs by the weight rounding
 * only (about 2^-9 relative per weight), within 1e-2 of max|y|. */
static void test_bf16_vs_fp32(void **state) {
    (void)state;
    ms_moe_config c32 = small_cfg(MS_MOE_F32), c16 = small_cfg(MS_MOE_BF16);
    ms_moe_layer *l32, *l16;
    ms_error err = {0};
    assert_int_equal(ms_moe_layer_new(&c32, 77, &l32, &err), MS_OK);
    assert_int_equal(ms_moe_layer_new(&c16, 77, &l16, &err), MS_OK);
    /* same seed -> bf16 weights are the fp32 ones rounded */
    for (uint64_t i = 0; i < 1000; i++) {
        float a = ((float *)l32->w13)[i], b = ms_moe_bf16_to_f32(((uint16_t *)l16->w13)[i]);
        assert_true(fabsf(a - b) <= fabsf(a) * (1.0f / 256));
    }
    uint32_t T = 24;
    float *x = rand_x(T, c32.hidden, 1);
    uint32_t ids[48];
    float w[48];
    assert_int_equal(ms_moe_route(l32, x, T, ids, w, &err), MS_OK);
    float *y32 = malloc(T * 64 * sizeof(float)), *y16 = malloc(T * 64 * sizeof(float));
    ms_moe_workspace *w32, *w16;
    assert_int_equal(ms_moe_workspace_new(&c32, T, NULL, &w32, &err), MS_OK);
    assert_int_equal(ms_moe_workspace_new(&c16, T, NULL, &w16, &err), MS_OK);
    assert_int_equal(ms_moe_forward(l32, w32, x, T, ids, w, y32, NULL, &err), MS_OK);
    assert_int_equal(ms_moe_forward(l16, w16, x, T, ids, w, y16, NULL, &err), MS_OK);
    double rd = rel_diff(y16, y32, (size_t)T * 64);
    assert_true(rd <= 1e-2);
    assert_true(rd > 1e-6); /* bf16 really is used */
    /* a workspace for fp32 refuses a bf16 layer */
    assert_int_equal(ms_moe_forward(l16, w32, x, T, ids, w, y16, NULL, &err), MS_E_INPUT);
    ms_moe_workspace_free(w32);
    ms_moe_workspace_free(w16);
    ms_moe_layer_free(l32);
    ms_moe_layer_free(l16);
    free(x);
    free(y32);
    free(y16);
}

/* A layer small enough to compute by hand: H=2, I=1, E=2, K=1, no shared. */
static void test_hand_computed(void **state) {
    (void)state;
    ms_moe_config c;
    assert_int_equal(ms_moe_config_preset("2x1", &c, NULL), MS_OK);
    c.n_experts = 2;
    c.top_k = 1;
    ms_moe_layer *l;
    ms_error err = {0};
    assert_int_equal(ms_moe_layer_new(&c, 1, &l, &err), MS_OK);
    float *g = l->w13, *w2 = l->w2;
    /* expert 1: gate [1, 2], up [3, -1], down [[0.5], [-2]] */
    float e1_13[4] = {1, 2, 3, -1}, e1_2[2] = {0.5f, -2};
    memcpy(g + 4, e1_13, sizeof e1_13);
    memcpy(w2 + 2, e1_2, sizeof e1_2);
    float x[2] = {1, 0.5f}; /* gate = 2, up = 2.5, silu(2) = 2/(1+e^-2) */
    uint32_t ids[1] = {1};
    float w[1] = {0.8f};
    double a = 2.0 / (1.0 + exp(-2.0)) * 2.5;
    double want[2] = {0.8 * 0.5 * a, 0.8 * -2 * a};
    float y[2];
    assert_int_equal(ms_moe_forward_ref(l, x, 1, ids, w, y, NULL, &err), MS_OK);
    assert_float_equal(y[0], want[0], 1e-6);
    assert_float_equal(y[1], want[1], 1e-6);
    ms_moe_workspace *ws;
    assert_int_equal(ms_moe_workspace_new(&c, 1, NULL, &ws, &err), MS_OK);
    assert_int_equal(ms_moe_forward(l, ws, x, 1, ids, w, y, NULL, &err), MS_OK);
    assert_float_equal(y[0], want[0], 1e-5);
    assert_float_equal(y[1], want[1], 1e-5);
    /* bad input: id out of range, too many tokens */
    ids[0] = 2;
    assert_int_equal(ms_moe_forward(l, ws, x, 1, ids, w, y, NULL, &err), MS_E_INPUT);
    assert_non_null(strstr(err.msg, "expert 2"));
    assert_int_equal(ms_moe_forward_ref(l, x, 1, ids, w, y, NULL, &err), MS_E_INPUT);
    ids[0] = 0;
    assert_int_equal(ms_moe_forward(l, ws, x, 2, ids, w, y, NULL, &err), MS_E_INPUT);
    ms_moe_workspace_free(ws);
    ms_moe_layer_free(l);
}

/* numpy as independent truth: a DeepSeek-V3-style layer (sigmoid router with
 * bias, 8 groups of 4, 3 kept, top-4, scaling 2.5, one shared expert). */
static void test_numpy_layer(void **state) {
    (void)state;
    if (!tu_have_numpy()) {
        skip();
        return;
    }
    ms_moe_config c;
    assert_int_equal(ms_moe_config_preset("32x24", &c, NULL), MS_OK);
    c.n_experts = 32;
    c.top_k = 4;
    c.router = MS_MOE_ROUTER_SIGMOID_GROUP;
    c.n_group = 8;
    c.topk_group = 3;
    c.routed_scaling = 2.5f;
    c.n_shared = 1;
    c.shared_inter = 16;
    ms_moe_layer *l;
    ms_error err = {0};
    assert_int_equal(ms_moe_layer_new(&c, 8, &l, &err), MS_OK);
    ms_rng r;
    ms_rng_seed(&r, 3);
    for (uint32_t e = 0; e < 32; e++) l->bias[e] = (float)(0.2 * (ms_rng_uniform(&r) - 0.5));
    const uint32_t T = 50;
    float *x = rand_x(T, 32, 17);
    uint32_t ids[50 * 4];
    float w[50 * 4];
    assert_int_equal(ms_moe_route(l, x, T, ids, w, &err), MS_OK);
    float *y = malloc(T * 32 * sizeof(float));
    ms_moe_workspace *ws;
    assert_int_equal(ms_moe_workspace_new(&c, T, NULL, &ws, &err), MS_OK);
    assert_int_equal(ms_moe_forward(l, ws, x, T, ids, w, y, NULL, &err), MS_OK);
    char dir[512], path[600];
    tu_tmp_path("moe-np", "", dir, sizeof dir);
    assert_int_equal(ms_mkdir_p(dir, &err), MS_OK);
#define DUMP(name, ptr, bytes)                                  \
    snprintf(path, sizeof path, "%s/%s.bin", dir, name);        \
    tu_write_file(path, ptr, bytes)
    DUMP("x", x, T * 32 * 4);
    DUMP("rw", l->router_w, 32 * 32 * 4);
    DUMP("bias", l->bias, 32 * 4);
    DUMP("w13", l->w13, 32 * 48 * 32 * 4);
    DUMP("w2", l->w2, 32 * 32 * 24 * 4);
    DUMP("sw13", l->sh_w13, 32 * 32 * 4);
    DUMP("sw2", l->sh_w2, 32 * 16 * 4);
    DUMP("ids", ids, T * 4 * 4);
    DUMP("y", y, T * 32 * 4);
#undef DUMP
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 - '%s' 2>&1 <<'PY'\n"
             "import sys, numpy as np\n"
             "d = sys.argv[1]\n"
             "ld = lambda n, *s: np.fromfile(f'{d}/{n}.bin', dtype=np.float32).astype(np.float64).reshape(s)\n"
             "T, H, I, E, K, G, TG, Is = 50, 32, 24, 32, 4, 8, 3, 16\n"
             "x = ld('x', T, H); rw = ld('rw', E, H); b = ld('bias', E)\n"
             "w13 = ld('w13', E, 2*I, H); w2 = ld('w2', E, H, I); s13 = ld('sw13', 2*Is, H); s2 = ld('sw2', H, Is)\n"
             "ids = np.fromfile(f'{d}/ids.bin', dtype=np.uint32).reshape(T, K)\n"
             "y = np.fromfile(f'{d}/y.bin', dtype=np.float32).reshape(T, H)\n"
             "s = 1 / (1 + np.exp(-(x @ rw.T))); c = s + b\n"
             "gs = np.sort(c.reshape(T, G, E // G), axis=2)[:, :, -2:].sum(axis=2)\n"
             "silu = lambda z: z / (1 + np.exp(-z))\n"
             "mlp = lambda v, a, d: d @ (silu(a[:len(a)//2] @ v) * (a[len(a)//2:] @ v))\n"
             "bad = 0\n"
             "for t in range(T):\n"
             "    grp = np.argsort(-gs[t], kind='stable')[:TG]\n"
             "    m = np.full(E, -np.inf); idx = np.concatenate([np.arange(g*(E//G), (g+1)*(E//G)) for g in grp])\n"
             "    m[idx] = c[t, idx]\n"
             "    top = np.argsort(-m, kind='stable')[:K]\n"
             "    if list(top) != list(ids[t]): print('token', t, 'ids', ids[t], 'numpy', top); bad += 1\n"
             "    wt = s[t, top] / s[t, top].sum() * 2.5\n"
             "    ref = sum(wt[j] * mlp(x[t], w13[top[j]], w2[top[j]]) for j in range(K)) + mlp(x[t], s13, s2)\n"
             "    err = np.abs(ref - y[t]).max() / max(np.abs(ref).max(), 1e-30)\n"
             "    if err > 1e-4: print('token', t, 'rel err', err); bad += 1\n"
             "print('bad', bad)\n"
             "sys.exit(1 if bad else 0)\n"
             "PY",
             dir);
    char out[8192];
    int rc = tu_run(cmd, out, sizeof out);
    if (rc != 0) fail_msg("numpy check failed (%d): %s", rc, out);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    tu_run(cmd, NULL, 0);
    ms_moe_workspace_free(ws);
    ms_moe_layer_free(l);
    free(x);
    free(y);
}

static void test_c_gemm(void **state) {
    (void)state;
    const uint32_t m = 5, n = 67, k = 300, lda = 301, ldb = 303, ldc = 70;
    float *a = rand_x(m, lda, 1), *b = rand_x(n, ldb, 2), *c = rand_x(m, ldc, 3), *c2 = malloc(m * ldc * 4);
    memcpy(c2, c, m * ldc * 4);
    for (int beta = 0; beta < 2; beta++) {
        float *cc = beta ? c2 : c;
        float *orig = rand_x(m, ldc, 3);
        ms_moe_sgemm_nt_c(m, n, k, a, lda, b, ldb, (float)beta, cc, ldc);
        for (uint32_t i = 0; i < m; i++)
            for (uint32_t j = 0; j < ldc; j++) {
                if (j >= n) { /* untouched */
                    assert_true(cc[i * ldc + j] == orig[i * ldc + j]);
                    continue;
                }
                double s = beta ? orig[i * ldc + j] : 0;
                for (uint32_t q = 0; q < k; q++) s += (double)a[i * lda + q] * b[j * ldb + q];
                assert_float_equal(cc[i * ldc + j], s, 1e-4);
            }
        free(orig);
    }
    /* the dispatching wrapper agrees */
    ms_moe_sgemm_nt(m, n, k, a, lda, b, ldb, 0.0f, c2, ldc);
    ms_moe_sgemm_nt_c(m, n, k, a, lda, b, ldb, 0.0f, c, ldc);
    for (uint32_t i = 0; i < m; i++)
        for (uint32_t j = 0; j < n; j++) assert_float_equal(c[i * ldc + j], c2[i * ldc + j], 1e-4);
    /* the direct small-M kernel (fp32 and bf16 weights, k with a tail) */
    uint16_t *b16 = malloc((size_t)n * ldb * sizeof *b16);
    float *a8 = rand_x(MS_MOE_SMALL_M, lda, 4), *c8 = malloc((size_t)MS_MOE_SMALL_M * ldc * sizeof *c8);
    for (size_t i = 0; i < (size_t)n * ldb; i++) b16[i] = ms_moe_f32_to_bf16(b[i]);
    for (uint32_t mm = 1; mm <= MS_MOE_SMALL_M; mm++)
        for (int bf = 0; bf < 2; bf++) {
            if (!ms_moe_small_gemm(mm, n, k, a8, lda, bf ? (const void *)b16 : (const void *)b,
                                   bf ? MS_MOE_BF16 : MS_MOE_F32, ldb, c8, ldc)) {
                print_message("no AVX2/FMA: small-M kernel not tested\n");
                continue;
            }
            for (uint32_t i = 0; i < mm; i++)
                for (uint32_t j = 0; j < n; j++) {
                    double s = 0;
                    for (uint32_t q = 0; q < k; q++)
                        s += (double)a8[i * lda + q] * (bf ? ms_moe_bf16_to_f32(b16[j * ldb + q]) : b[j * ldb + q]);
                    assert_float_equal(c8[i * ldc + j], s, 1e-4);
                }
        }
    assert_int_equal(ms_moe_small_gemm(MS_MOE_SMALL_M + 1, n, k, a8, lda, b, MS_MOE_F32, ldb, c8, ldc), 0);
    free(b16);
    free(a8);
    free(c8);
    free(a);
    free(b);
    free(c);
    free(c2);
}

static void test_config(void **state) {
    (void)state;
    ms_moe_config c;
    ms_error err = {0};
    assert_int_equal(ms_moe_config_preset("deepseek-v3", &c, &err), MS_OK);
    assert_int_equal(c.hidden, 7168);
    assert_int_equal(c.inter, 2048);
    assert_int_equal(c.n_experts, 256);
    assert_int_equal(ms_moe_config_check(&c, &err), MS_OK);
    assert_int_equal(ms_moe_layer_weight_bytes(&c), 4ull * 3 * 7168 * 2048 * 257);
    assert_int_equal(ms_moe_config_preset("mixtral", &c, &err), MS_OK);
    assert_int_equal(c.inter, 14336);
    assert_int_equal(ms_moe_config_preset("seed", &c, &err), MS_OK);
    assert_int_equal(c.hidden, 8192);
    assert_int_equal(ms_moe_config_preset("7168x2048", &c, &err), MS_OK);
    assert_int_equal(c.hidden, 7168);
    const char *bad[] = {"x", "0x5", "5x0", "abc", "5x", "x5", "5x5x", "5y5", "99999999x2", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(ms_moe_config_preset(bad[i], &c, &err), MS_E_INPUT);
    assert_int_equal(ms_moe_config_preset(NULL, &c, &err), MS_E_INPUT);
    ms_moe_config_preset("deepseek-v3", &c, NULL);
    c.n_group = 7; /* 256 % 7 != 0 */
    assert_int_equal(ms_moe_config_check(&c, &err), MS_E_INPUT);
    c.n_group = 8;
    c.topk_group = 1;
    c.top_k = 33; /* one group of 32 cannot supply 33 */
    assert_int_equal(ms_moe_config_check(&c, &err), MS_E_INPUT);
    c.top_k = 8;
    c.topk_group = 4;
    c.capacity_factor = NAN;
    assert_int_equal(ms_moe_config_check(&c, &err), MS_E_INPUT);
    /* bf16 round trip, rounding to nearest even */
    assert_true(ms_moe_bf16_to_f32(ms_moe_f32_to_bf16(1.5f)) == 1.5f);
    assert_int_equal(ms_moe_f32_to_bf16(1.0f + 1.0f / 256), 0x3f80); /* tie -> even */
    assert_int_equal(ms_moe_f32_to_bf16(1.0f + 3.0f / 256), 0x3f82);
    assert_true(isnan(ms_moe_bf16_to_f32(ms_moe_f32_to_bf16(NAN))));
}

/* The calibrate preset is a hardware preset the simulator loads. */
static void test_calib_preset(void **state) {
    (void)state;
    ms_moe_config c;
    assert_int_equal(ms_moe_config_preset("deepseek-v3", &c, NULL), MS_OK);
    c.n_experts = 2;
    c.top_k = 2;
    ms_moe_point pts[3] = {
        {1, 1, 0, 0.01, 8.8, -1, -1}, {16, 16, 0, 0.03, 90, -1, -1}, {256, 256, 0, 0.25, 180, -1, -1}};
    ms_moe_calib_info in = {"unit", "AMD EPYC, 2 cores", "OpenBLAS", "2025-01-01T00:00:00Z", "deepseek-v3", &c, 2,
                            MS_MOE_THREADS_TILES, 200.0, 2048, 30.0, 23.0, false};
    json_t *j = ms_moe_calib_json(&in, pts, 3);
    assert_non_null(j);
    char path[512];
    tu_tmp_path("hw", ".json", path, sizeof path);
    assert_int_equal(json_dump_file(j, path, JSON_INDENT(1)), 0);
    json_decref(j);
    ms_hw_preset hw;
    ms_error err = {0};
    if (ms_hw_preset_load(path, &hw, &err) != MS_OK) fail_msg("%s", err.msg);
    assert_string_equal(hw.name, "unit");
    assert_float_equal(hw.peak_tflops_bf16, 0.2, 1e-12);
    assert_float_equal(hw.mfu, 180.0 / 200.0, 1e-12); /* efficiency at the largest point */
    assert_float_equal(hw.hbm_tb_s, 0.03, 1e-12);
    assert_float_equal(hw.memory_gb, 23.0, 1e-12);
    /* and the curve is there */
    json_error_t je;
    json_t *back = json_load_file(path, 0, &je);
    json_t *cur = json_object_get(back, "efficiency_curve");
    assert_int_equal(json_array_size(json_object_get(cur, "tokens_per_expert")), 3);
    assert_float_equal(json_real_value(json_array_get(json_object_get(cur, "efficiency"), 1)), 90.0 / 200, 1e-12);
    assert_string_equal(json_string_value(json_object_get(back, "source")), "measured by moesim calibrate");
    json_decref(back);
    remove(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),          cmocka_unit_test(test_hand_computed),
        cmocka_unit_test(test_c_gemm),          cmocka_unit_test(test_random_routed),
        cmocka_unit_test(test_empty_and_one_expert), cmocka_unit_test(test_capacity_overflow),
        cmocka_unit_test(test_bf16_vs_fp32),    cmocka_unit_test(test_numpy_layer),
        cmocka_unit_test(test_calib_preset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
