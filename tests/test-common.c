/* test-common.c - errors, allocator overflow checks, atomic files, rng. */
#include "testutil.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "moesim/common.h"

static void test_error_prefix_and_codes(void **state) {
    (void)state;
    ms_error err;
    ms_error_clear(&err);
    assert_int_equal(ms_error_set(&err, MS_E_INPUT, "bad %d", 7), MS_E_INPUT);
    ms_error_prefix(&err, "f.npz");
    assert_string_equal(err.msg, "f.npz: bad 7");
    assert_int_equal(ms_status_exit_code(MS_E_INPUT), 2);
    assert_int_equal(ms_status_exit_code(MS_E_IO), 2);
    assert_int_equal(ms_status_exit_code(MS_E_INTERNAL), 1);
    assert_int_equal(ms_status_exit_code(MS_E_NOMEM), 1);
    assert_int_equal(ms_status_exit_code(MS_OK), 0);
}

static void test_alloc_overflow(void **state) {
    (void)state;
    ms_error err = {0};
    assert_null(ms_alloc_array(SIZE_MAX / 2, 4, &err));
    assert_int_equal(err.status, MS_E_NOMEM);
    size_t out;
    assert_int_equal(ms_mul_overflow(SIZE_MAX, 2, &out), -1);
    assert_int_equal(ms_mul_overflow(3, 4, &out), 0);
    assert_int_equal(out, 12);
}

static void test_afile_commit_and_abort(void **state) {
    (void)state;
    char path[512];
    tu_tmp_path("afile", ".txt", path, sizeof path);
    ms_afile f;
    ms_error err = {0};
    assert_int_equal(ms_afile_open(&f, path, &err), MS_OK);
    fputs("half", f.fp);
    ms_afile_abort(&f);
    struct stat st;
    assert_int_not_equal(stat(path, &st), 0); /* nothing left behind */
    assert_int_equal(ms_afile_open(&f, path, &err), MS_OK);
    fputs("whole", f.fp);
    assert_int_equal(ms_afile_commit(&f, &err), MS_OK);
    uint8_t *buf;
    size_t len;
    assert_int_equal(ms_file_read_all(path, &buf, &len, &err), MS_OK);
    assert_int_equal(len, 5);
    assert_memory_equal(buf, "whole", 5);
    ms_free(buf);
    remove(path);
    assert_int_equal(ms_file_read_all(path, &buf, &len, &err), MS_E_IO);
}

static void test_rng_deterministic_and_uniform(void **state) {
    (void)state;
    ms_rng a, b;
    ms_rng_seed(&a, 42);
    ms_rng_seed(&b, 42);
    for (int i = 0; i < 100; i++) assert_true(ms_rng_next(&a) == ms_rng_next(&b));
    uint64_t hist[7] = {0};
    for (int i = 0; i < 70000; i++) hist[ms_rng_below(&a, 7)]++;
    for (int i = 0; i < 7; i++) assert_in_range(hist[i], 9500, 10500);
    double s = 0;
    for (int i = 0; i < 20000; i++) s += ms_rng_normal(&a);
    assert_true(s / 20000 > -0.05 && s / 20000 < 0.05);
    uint64_t v[10];
    for (int i = 0; i < 10; i++) v[i] = (uint64_t)i;
    ms_rng_shuffle_u64(&a, v, 10);
    uint64_t sum = 0;
    for (int i = 0; i < 10; i++) sum += v[i];
    assert_int_equal(sum, 45);
}

static void test_fnv_known_value(void **state) {
    (void)state;
    /* FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c (published test vector). */
    assert_true(ms_fnv1a(MS_FNV_OFFSET, "a", 1) == 0xaf63dc4c8601ec8cULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_prefix_and_codes),
        cmocka_unit_test(test_alloc_overflow),
        cmocka_unit_test(test_afile_commit_and_abort),
        cmocka_unit_test(test_rng_deterministic_and_uniform),
        cmocka_unit_test(test_fnv_known_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
