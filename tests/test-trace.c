/* test-trace.c - the trace loader against numpy-written fixtures, bad
 * inputs, building, selecting, splitting and writing traces. */
#include "testutil.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "moesim/trace.h"

static char fixdir[512];
static json_t *expected;

static int setup(void **state) {
    (void)state;
    if (!tu_have_numpy()) return 0;
    tu_tmp_path("trace-fx", "", fixdir, sizeof fixdir);
    char cmd[2048];
    static char out[65536];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/tools/make_trace_fixtures.py %s", tu_src_dir(), fixdir);
    if (tu_run(cmd, out, sizeof out) != 0) return -1;
    json_error_t je;
    expected = json_loads(out, 0, &je);
    return expected ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    json_decref(expected);
    return 0;
}

static ms_status load(const char *sub, uint32_t experts, ms_trace **t, ms_error *err) {
    char path[700];
    snprintf(path, sizeof path, "%s/%s", fixdir, sub);
    const char *paths[1] = {path};
    ms_trace_load_opts o = {.n_experts = experts};
    return ms_trace_load(paths, 1, &o, t, err);
}

static void test_good_directory(void **state) {
    (void)state;
    if (!expected) skip();
    ms_trace *t;
    ms_error err = {0};
    assert_int_equal(load("good", 0, &t, &err), MS_OK);
    assert_int_equal(t->n_requests, 4);
    assert_int_equal(t->n_layers, 3);
    assert_int_equal(t->top_k, 2);
    assert_int_equal(t->n_tokens, 5 + 7 + 8 + 2);
    assert_int_equal(t->n_short_rows, 1);
    assert_int_equal(t->request_id[2], 102);
    assert_int_equal(t->n_prompt[1], 3);
    assert_int_equal(t->n_output[2], 2);
    assert_string_equal(t->source_dtype, "<i4");
    json_t *loads = json_object_get(expected, "loads");
    for (uint32_t l = 0; l < 3; l++) {
        uint64_t cnt[8] = {0};
        for (uint64_t tok = 0; tok < t->n_tokens; tok++)
            for (uint32_t j = 0; j < 2; j++) cnt[ms_trace_row(t, l, tok)[j]]++;
        for (uint32_t e = 0; e < 8; e++)
            assert_int_equal(cnt[e], json_integer_value(json_array_get(json_array_get(loads, l), e)));
    }
    /* the expert count may be declared larger than the largest id, never smaller */
    ms_trace *t16;
    assert_int_equal(load("good", 16, &t16, &err), MS_OK);
    assert_int_equal(t16->n_experts, 16);
    assert_true(t16->digest != t->digest);
    ms_trace_free(t16);
    assert_int_equal(load("good", 4, &t16, &err), MS_E_INPUT);
    assert_non_null(strstr(err.msg, "outside [0, 4)"));
    ms_trace_free(t);
}

static void test_exotic_dtype_order(void **state) {
    (void)state;
    if (!expected) skip();
    ms_trace *t;
    ms_error err = {0};
    assert_int_equal(load("exotic", 8, &t, &err), MS_OK);
    assert_string_equal(t->source_dtype, ">i2");
    json_t *ex = json_object_get(expected, "exotic");
    /* numpy's C-order [row][layer][k] vs our layer-major */
    for (uint32_t row = 0; row < 4; row++)
        for (uint32_t l = 0; l < 3; l++)
            for (uint32_t j = 0; j < 2; j++)
                assert_int_equal(ms_trace_row(t, l, row)[j],
                                 json_integer_value(json_array_get(ex, (row * 3 + l) * 2 + j)));
    ms_trace_free(t);
}

static void expect_bad(const char *sub, const char *needle) {
    ms_trace *t = NULL;
    ms_error err = {0};
    ms_status st = load(sub, 0, &t, &err);
    if (st == MS_OK || !strstr(err.msg, needle))
        fprintf(stderr, "%s: status %d, message '%s', wanted '%s'\n", sub, st, err.msg, needle);
    assert_int_equal(ms_status_exit_code(st), 2);
    assert_null(t);
    assert_non_null(strstr(err.msg, needle));
    assert_non_null(strstr(err.msg, sub)); /* names the file */
}

static void test_bad_inputs(void **state) {
    (void)state;
    if (!expected) skip();
    expect_bad("bad_rows", "rows");
    expect_bad("bad_float", "integers");
    expect_bad("bad_missing", "routed_experts");
    expect_bad("bad_missing_prompt", "prompt_token_ids");
    expect_bad("bad_negative", "routed_experts");
    expect_bad("bad_topk0", "top_k");
    expect_bad("bad_twod", "3-D");
    expect_bad("bad_huge", "routed_experts");
    expect_bad("bad_layers", "layers");
    expect_bad("bad_empty", "no .npz");
    expect_bad("does_not_exist", "does_not_exist");
}

static ms_trace *random_trace(uint32_t L, uint32_t E, uint32_t K, uint32_t R, uint64_t reqs, uint64_t seed) {
    ms_rng rng;
    ms_rng_seed(&rng, seed);
    uint64_t *rows = calloc(reqs, sizeof *rows), n = 0;
    for (uint64_t r = 0; r < reqs; r++) n += rows[r] = 1 + ms_rng_below(&rng, 20);
    ms_trace *t;
    ms_error err = {0};
    assert_int_equal(ms_trace_new(L, E, K, R, reqs, n, &t, &err), MS_OK);
    uint64_t pos = 0;
    for (uint64_t r = 0; r < reqs; r++) {
        t->tok_offset[r] = pos;
        t->n_prompt[r] = (uint32_t)ms_rng_below(&rng, rows[r] + 1);
        t->n_output[r] = (uint32_t)(rows[r] - t->n_prompt[r]);
        t->request_id[r] = (int64_t)(1000 + r);
        pos += rows[r];
    }
    t->tok_offset[reqs] = pos;
    for (uint64_t i = 0; i < (uint64_t)L * n * K; i++) t->experts[i] = (uint16_t)ms_rng_below(&rng, E);
    for (uint64_t i = 0; R && i < (uint64_t)L * n; i++)
        for (uint32_t j = 0; j < R; j++)
            t->ranked[i * R + j] = j < K ? t->experts[i * K + j] : (uint16_t)ms_rng_below(&rng, E);
    assert_int_equal(ms_trace_finish(t, &err), MS_OK);
    free(rows);
    return t;
}

static void test_write_and_reload(void **state) {
    (void)state;
    ms_trace *t = random_trace(4, 300, 3, 5, 17, 11), *back;
    char dir[512];
    tu_tmp_path("trace-rt", "", dir, sizeof dir);
    ms_error err = {0};
    for (int compress = 0; compress < 2; compress++) {
        assert_int_equal(ms_trace_write_npz_dir(t, dir, compress, NULL, NULL, &err), MS_OK);
        const char *paths[1] = {dir};
        assert_int_equal(ms_trace_load(paths, 1, NULL, &back, &err), MS_OK);
        assert_int_equal(back->n_experts, 300); /* from num_experts */
        assert_int_equal(back->n_ranked, 5);
        assert_true(back->digest == t->digest);
        assert_memory_equal(back->ranked, t->ranked, 4 * t->n_tokens * 5 * 2);
        assert_memory_equal(back->request_id, t->request_id, 17 * 8);
        ms_trace_free(back);
    }
    if (tu_have_numpy()) { /* numpy reads what we wrote */
        char cmd[1200], out[256];
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/python3 -c \"import numpy as np,glob; fs=sorted(glob.glob('%s/*.npz')); "
                 "print(sum(np.load(f)['routed_experts'].shape[0] for f in fs), len(fs))\"", dir);
        assert_int_equal(tu_run(cmd, out, sizeof out), 0);
        char want[64];
        snprintf(want, sizeof want, "%llu 17\n", (unsigned long long)t->n_tokens);
        assert_string_equal(out, want);
    }
    ms_trace_free(t);
}

static void test_select_and_split(void **state) {
    (void)state;
    ms_trace *t = random_trace(2, 10, 2, 0, 30, 3), *a, *b;
    ms_error err = {0};
    assert_int_equal(ms_trace_split(t, 0.7, 99, &a, &b, &err), MS_OK);
    assert_int_equal(a->n_requests, 21);
    assert_int_equal(b->n_requests, 9);
    assert_int_equal(a->n_tokens + b->n_tokens, t->n_tokens);
    /* every request lands in exactly one part, with its rows intact */
    int seen[30] = {0};
    ms_trace *parts[2] = {a, b};
    for (int p = 0; p < 2; p++)
        for (uint64_t r = 0; r < parts[p]->n_requests; r++) {
            uint64_t orig = (uint64_t)(parts[p]->request_id[r] - 1000);
            seen[orig]++;
            uint64_t rows = parts[p]->tok_offset[r + 1] - parts[p]->tok_offset[r];
            assert_int_equal(rows, t->tok_offset[orig + 1] - t->tok_offset[orig]);
            for (uint32_t l = 0; l < 2; l++)
                assert_memory_equal(ms_trace_row(parts[p], l, parts[p]->tok_offset[r]),
                                    ms_trace_row(t, l, t->tok_offset[orig]), rows * 2 * 2);
        }
    for (int r = 0; r < 30; r++) assert_int_equal(seen[r], 1);
    ms_trace *a2, *b2; /* same seed, same split */
    assert_int_equal(ms_trace_split(t, 0.7, 99, &a2, &b2, &err), MS_OK);
    assert_true(a2->digest == a->digest && b2->digest == b->digest);
    assert_int_equal(ms_trace_check_compatible(a, b, &err), MS_OK);
    ms_trace *other = random_trace(3, 10, 2, 0, 3, 3);
    assert_int_equal(ms_trace_check_compatible(a, other, &err), MS_E_INPUT);
    assert_non_null(strstr(err.msg, "layers"));
    uint64_t badidx = 30;
    ms_trace *s;
    assert_int_equal(ms_trace_select(t, &badidx, 1, &s, &err), MS_E_INPUT);
    ms_trace_free(other);
    ms_trace_free(a);
    ms_trace_free(b);
    ms_trace_free(a2);
    ms_trace_free(b2);
    ms_trace_free(t);
}

static void test_new_rejects_bad_shapes(void **state) {
    (void)state;
    ms_trace *t;
    ms_error err = {0};
    assert_int_equal(ms_trace_new(1, 70000, 1, 0, 1, 1, &t, &err), MS_E_INPUT);
    assert_int_equal(ms_trace_new(0, 8, 1, 0, 1, 1, &t, &err), MS_E_INPUT);
    assert_int_equal(ms_trace_new(1, 8, 0, 0, 1, 1, &t, &err), MS_E_INPUT);
    assert_int_not_equal(ms_trace_new(65535, 8, 65535, 0, 1, UINT64_MAX / 2, &t, &err), MS_OK);
    assert_int_equal(ms_trace_new(1, 8, 2, 1, 1, 1, &t, &err), MS_E_INPUT); /* ranked < top_k */
    assert_int_equal(ms_trace_new(1, 8, 2, 0, 1, 2, &t, &err), MS_OK);
    t->experts[3] = 8;
    t->tok_offset[1] = 2;
    assert_int_equal(ms_trace_finish(t, &err), MS_E_INPUT);
    ms_trace_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_directory),
        cmocka_unit_test(test_exotic_dtype_order),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_write_and_reload),
        cmocka_unit_test(test_select_and_split),
        cmocka_unit_test(test_new_rejects_bad_shapes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
