/* test-sim-jsonl.c - moe-balance's JSONL trace reader, and the presets
 * (every preset file loads, every figure has a source, bad files fail). */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moesim/sim.h"
#include "moesim/trace.h"

static const char *write_tmp(const char *text, const char *suffix, char *buf, size_t len) {
    tu_tmp_path("jsonl", suffix, buf, len);
    tu_write_file(buf, text, strlen(text));
    return buf;
}

static void test_jsonl_read(void **state) {
    (void)state;
    char path[512];
    /* two batches (requests), two layers, lines in any order, blank line */
    const char *text =
        "{\"layer\": 0, \"batch_id\": 7, \"topk_experts\": [[1, 2], [3, 0]], \"origin_rows\": [0, 1], \"request_id\": 70}\n"
        "{\"layer\": 1, \"batch_id\": 7, \"topk_experts\": [[2, 1], [0, 3]], \"origin_rows\": [1, 1]}\n"
        "\n"
        "{\"layer\": 1, \"batch_id\": \"b\", \"topk_experts\": [[5, 4]], \"origin_rows\": [0], \"topk_weights\": [[0.5, 0.5]]}\r\n"
        "{\"layer\": 0, \"batch_id\": \"b\", \"topk_experts\": [[4, 5]], \"origin_rows\": [1]}\n";
    write_tmp(text, ".jsonl", path, sizeof path);
    ms_jsonl_trace j;
    ms_error err = {0};
    assert_int_equal(ms_jsonl_trace_load(path, 0, &j, &err), MS_OK);
    const ms_trace *t = j.trace;
    assert_int_equal(t->n_layers, 2);
    assert_int_equal(t->n_requests, 2);
    assert_int_equal(t->n_tokens, 3);
    assert_int_equal(t->top_k, 2);
    assert_int_equal(t->n_experts, 6);
    assert_int_equal(t->request_id[0], 70);
    assert_int_equal(t->tok_offset[1], 2);
    assert_int_equal(ms_trace_row(t, 0, 1)[0], 3);
    assert_int_equal(ms_trace_row(t, 1, 0)[0], 2);
    assert_int_equal(ms_trace_row(t, 0, 2)[0], 4);
    assert_int_equal(ms_trace_row(t, 1, 2)[1], 4);
    assert_non_null(j.origin_rows);
    assert_int_equal(j.origin_rows[0 * 3 + 1], 1);
    assert_int_equal(j.origin_rows[1 * 3 + 0], 1);
    assert_int_equal(j.origin_rows[1 * 3 + 2], 0);
    ms_jsonl_trace_clear(&j);
    /* declared expert count */
    assert_int_equal(ms_jsonl_trace_load(path, 64, &j, &err), MS_OK);
    assert_int_equal(j.trace->n_experts, 64);
    ms_jsonl_trace_clear(&j);
    assert_int_equal(ms_jsonl_trace_load(path, 5, &j, &err), MS_E_INPUT); /* id 5 >= 5 */
}

static void expect_bad(const char *text, const char *what) {
    char path[512];
    write_tmp(text, ".jsonl", path, sizeof path);
    ms_jsonl_trace j;
    ms_error err = {0};
    ms_status st = ms_jsonl_trace_load(path, 0, &j, &err);
    if (st != MS_E_INPUT || !strstr(err.msg, what) || !strstr(err.msg, path))
        fail_msg("expected an input error with '%s', got %d: %s", what, st, err.msg);
}

static void test_jsonl_errors(void **state) {
    (void)state;
    expect_bad("{\"layer\": 0, \"batch_id\": 1, \"topk_experts\": [[1, 2]]\n", "line 1");
    expect_bad("{\"layer\": 0, \"batch_id\": 1, \"topk_experts\": [[1, 2]]}\n[1]\n", "line 2");
    expect_bad("{\"batch_id\": 1, \"topk_experts\": [[1, 2]]}\n", "layer");
    expect_bad("{\"layer\": 0, \"topk_experts\": [[1, 2]]}\n", "batch_id");
    expect_bad("{\"layer\": 0, \"batch_id\": 1, \"topk_experts\": [[1, 2], [3]]}\n", "same length");
    expect_bad("{\"layer\": 0, \"batch_id\": 1, \"topk_experts\": [[1, -2]]}\n", "expert id");
    expect_bad("{\"layer\": 0, \"batch_id\": 1, \"topk_experts\": [[1, 2]]}\n"
               "{\"layer\": 0, \"batch_id\": 1, \"topk_experts\": [[1, 2]]}\n",
               "twice");
    expect_bad("{\"layer\": 0, \"batch_id\": 1, \"topk_experts\": [[1, 2]]}\n"
               "{\"layer\": 1, \"batch_id\": 1, \"topk_experts\": [[1, 2], [2, 3]]}\n",
               "tokens");
    expect_bad("{\"layer\": 1, \"batch_id\": 1, \"topk_experts\": [[1, 2]]}\n", "layer 0");
    expect_bad("{\"layer\": 0, \"batch_id\": 1, \"topk_experts\": [[1, 2]], \"origin_rows\": [0]}\n"
               "{\"layer\": 0, \"batch_id\": 2, \"topk_experts\": [[1, 2]]}\n",
               "origin_rows");
    expect_bad("{\"layer\": 0, \"batch_id\": 1, \"topk_experts\": [[1, 2]], \"origin_rows\": [0, 1]}\n",
               "origin_rows");
    expect_bad("\n\n", "no records");
    ms_jsonl_trace j;
    ms_error err = {0};
    assert_int_equal(ms_jsonl_trace_load("/nonexistent/x.jsonl", 0, &j, &err), MS_E_IO);
}

/* The JSONL and the npz route give the same simulation (via origin rows
 * from the file). */
static void test_jsonl_simulates(void **state) {
    (void)state;
    char path[512];
    const char *text = "{\"layer\": 0, \"batch_id\": 0, \"topk_experts\": [[0, 1], [0, 2], [1, 2]], "
                       "\"origin_rows\": [0, 1, 0]}\n";
    write_tmp(text, ".jsonl", path, sizeof path);
    ms_jsonl_trace j;
    ms_error err = {0};
    assert_int_equal(ms_jsonl_trace_load(path, 0, &j, &err), MS_OK);
    ms_cluster c = {2, 2, 1};
    ms_placement *p = NULL;
    assert_int_equal(ms_placement_new(1, &c, 3, false, &p, &err), MS_OK);
    int32_t ph[4] = {0, 1, 0, 2};
    memcpy(p->phy2log, ph, sizeof ph);
    assert_int_equal(ms_placement_index(p, &err), MS_OK);
    ms_batch_opts bo;
    ms_batch_opts_default(&bo);
    ms_batch_plan *plan = NULL;
    assert_int_equal(ms_batch_plan_build(j.trace, &bo, 4, &plan, &err), MS_OK);
    ms_sim_opts o;
    ms_sim_opts_default(&o);
    o.mesh_coeffs[0] = 1, o.mesh_coeffs[1] = 10, o.mesh_coeffs[2] = 100, o.mesh_coeffs[3] = 1000;
    o.origin = MS_ORIGIN_TRACE;
    o.origin_rows = j.origin_rows;
    ms_sim_result *r = NULL;
    assert_int_equal(ms_sim_run(j.trace, plan, p, &o, NULL, &r, &err), MS_OK);
    /* the rows 0, 1, 0 are round-robin's: see test-sim-mesh's hand case */
    assert_true(r->records[0].layer_us == 2260);
    ms_sim_result_free(r);
    /* a row outside the grid */
    j.origin_rows[1] = 5;
    assert_int_equal(ms_sim_run(j.trace, plan, p, &o, NULL, &r, &err), MS_E_INPUT);
    ms_batch_plan_free(plan);
    ms_placement_free(p);
    ms_jsonl_trace_clear(&j);
}

static void test_presets(void **state) {
    (void)state;
    ms_error err = {0};
    const char *kinds[2] = {"hw", "model"};
    size_t seen[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        char **names = ms_preset_list(kinds[k]);
        assert_non_null(names);
        for (size_t i = 0; names[i]; i++, seen[k]++) {
            if (k == 0) {
                ms_hw_preset hw;
                if (ms_hw_preset_load(names[i], &hw, &err) != MS_OK) fail_msg("%s", err.msg);
                assert_true(hw.mfu > 0 && hw.mfu <= 1);
                assert_true(hw.peak_tflops_fp8 >= hw.peak_tflops_bf16);
            } else {
                ms_model_preset m;
                if (ms_model_preset_load(names[i], &m, &err) != MS_OK) fail_msg("%s", err.msg);
                assert_true(m.hidden > 0 && m.moe_intermediate > 0);
                /* the simulator can guess it back from experts and top-k */
                assert_string_equal(ms_model_preset_guess(m.routed_experts, m.top_k), names[i]);
            }
        }
        ms_free(names);
    }
    assert_true(seen[0] >= 6); /* seed-h100, h100-sxm, h800, h200, a100, b200 */
    assert_true(seen[1] >= 5); /* deepseek-v3, deepseek-v2-lite, llama4-maverick, qwen3, mixtral */
    ms_hw_preset hw;
    assert_int_equal(ms_hw_preset_load("seed-h100", &hw, &err), MS_OK);
    assert_true(hw.peak_tflops_bf16 == 400 && hw.mfu == 0.6 && hw.hbm_tb_s == 1.8 && hw.hbm_util == 0.8 &&
                hw.memory_gb == 64);
    assert_int_equal(ms_hw_preset_load("no-such-gpu", &hw, &err), MS_E_INPUT);
    assert_int_equal(ms_hw_preset_load("../etc", &hw, &err), MS_E_IO);
    /* a figure without a source, a fraction above 1 */
    char path[512];
    write_tmp("{\"name\": \"x\", \"peak_tflops_bf16\": {\"value\": 1}}", ".json", path, sizeof path);
    assert_int_equal(ms_hw_preset_load(path, &hw, &err), MS_E_INPUT);
    assert_non_null(strstr(err.msg, "source"));
    char text[2048];
    snprintf(text, sizeof text,
             "{\"peak_tflops_bf16\": {\"value\": 1, \"source\": \"s\"}, \"peak_tflops_fp8\": {\"value\": 1, "
             "\"source\": \"s\"}, \"mfu\": {\"value\": 1.5, \"source\": \"s\"}}");
    write_tmp(text, ".json", path, sizeof path);
    assert_int_equal(ms_hw_preset_load(path, &hw, &err), MS_E_INPUT);
    assert_non_null(strstr(err.msg, "mfu"));
    write_tmp("not json", ".json", path, sizeof path);
    assert_int_equal(ms_hw_preset_load(path, &hw, &err), MS_E_INPUT);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jsonl_read),
        cmocka_unit_test(test_jsonl_errors),
        cmocka_unit_test(test_jsonl_simulates),
        cmocka_unit_test(test_presets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
