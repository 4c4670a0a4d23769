/* test-loads.c - load matrix CSV parsing and writing. */
#include "testutil.h"

#include <string.h>
#include "moesim/trace.h"

static ms_loads *parse_ok(const char *text) {
    ms_loads *l = NULL;
    ms_error err = {0};
    ms_status st = ms_loads_parse_csv(text, strlen(text), "t.csv", &l, &err);
    if (st != MS_OK) fprintf(stderr, "unexpected error: %s\n", err.msg);
    assert_int_equal(st, MS_OK);
    return l;
}

static void parse_bad(const char *text, const char *expect_in_msg) {
    ms_loads *l = NULL;
    ms_error err = {0};
    assert_int_equal(ms_loads_parse_csv(text, strlen(text), "t.csv", &l, &err), MS_E_INPUT);
    assert_null(l);
    if (!strstr(err.msg, expect_in_msg)) fprintf(stderr, "message '%s' lacks '%s'\n", err.msg, expect_in_msg);
    assert_non_null(strstr(err.msg, expect_in_msg));
}

static void test_plain_and_decimals(void **state) {
    (void)state;
    ms_loads *l = parse_ok("1,2,3\n4.5,1e2,+0.25\n");
    assert_int_equal(l->n_layers, 2);
    assert_int_equal(l->n_experts, 3);
    assert_true(l->w[0] == 1 && l->w[2] == 3 && l->w[3] == 4.5 && l->w[4] == 100 && l->w[5] == 0.25);
    ms_loads_free(l);
}

static void test_header_crlf_spaces_trailing_blank(void **state) {
    (void)state;
    ms_loads *l = parse_ok("expert_0,expert_1\r\n 7 , 8\r\n9,10\r\n\r\n\n");
    assert_int_equal(l->n_layers, 2);
    assert_int_equal(l->n_experts, 2);
    assert_true(l->w[0] == 7 && l->w[3] == 10);
    ms_loads_free(l);
    l = parse_ok("5283.281036,1654.87903"); /* no final newline */
    assert_int_equal(l->n_layers, 1);
    assert_true(l->w[1] == 1654.87903);
    ms_loads_free(l);
}

static void test_bad_inputs(void **state) {
    (void)state;
    parse_bad("", "no load rows");
    parse_bad("a,b\n", "no load rows");
    parse_bad("1,2\n3\n", "2:");              /* ragged rows name the line */
    parse_bad("1,2\n3,x\n", "2:3");          /* line and column */
    parse_bad("1,-2\n", "negative");
    parse_bad("1,nan\n", "not a number");
    parse_bad("1,inf\n", "not a number");
    parse_bad("1,,2\n", "not a number");
    parse_bad("1,2,\n", "not a number");
    parse_bad("1,2\n\n3,4\n", "blank line");
    parse_bad("1,0x10\n", "not a number");
    parse_bad("h1,h2\nh3,h4\n", "not a number"); /* only one header line */
    const char with_nul[] = "1,2\n3\0,4\n";
    ms_loads *l = NULL;
    ms_error err = {0};
    assert_int_equal(ms_loads_parse_csv(with_nul, sizeof with_nul - 1, "t", &l, &err), MS_E_INPUT);
}

static void test_write_read_roundtrip(void **state) {
    (void)state;
    ms_loads *l;
    ms_error err = {0};
    assert_int_equal(ms_loads_new(3, 4, &l, &err), MS_OK);
    for (int i = 0; i < 12; i++) l->w[i] = i * 1.25 + 1e-3;
    char path[512];
    tu_tmp_path("loads", ".csv", path, sizeof path);
    assert_int_equal(ms_loads_write_csv(l, path, &err), MS_OK);
    ms_loads *r;
    assert_int_equal(ms_loads_read_csv(path, &r, &err), MS_OK);
    assert_int_equal(r->n_layers, 3);
    assert_int_equal(r->n_experts, 4);
    for (int i = 0; i < 12; i++) assert_true(r->w[i] == l->w[i]);
    ms_loads_free(l);
    ms_loads_free(r);
    remove(path);
    assert_int_equal(ms_loads_read_csv(path, &r, &err), MS_E_IO);
}

static void test_reference_eplb_csv(void **state) {
    (void)state;
    char dir[512], path[600];
    if (!tu_ref_dir("eplb", dir, sizeof dir)) skip();
    snprintf(path, sizeof path, "%s/hier_2x4_s4.csv", dir);
    ms_loads *l;
    ms_error err = {0};
    assert_int_equal(ms_loads_read_csv(path, &l, &err), MS_OK);
    assert_true(l->n_layers >= 1 && l->n_experts == 24);
    assert_true(l->w[0] == 283.281036 && l->w[l->n_experts] == 1083.43323);
    ms_loads_free(l);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_and_decimals),
        cmocka_unit_test(test_header_crlf_spaces_trailing_blank),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_write_read_roundtrip),
        cmocka_unit_test(test_reference_eplb_csv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
