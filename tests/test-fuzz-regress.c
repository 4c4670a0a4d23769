/* test-fuzz-regress.c - regressions for bugs found by the libFuzzer targets
 * fuzz/fuzz-jsonl.c, fuzz/fuzz-preset.c and fuzz/fuzz-sweep-spec.c (the
 * placement file ones live in test-placement.c). Each case failed before its
 * fix: by allocating far more memory than the input holds (checked here in a
 * child process under an address-space limit), by accepting a value that
 * the reader then truncated, or by undefined behaviour that the sanitizer
 * build reports. */
#define _XOPEN_SOURCE 700
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "moesim/sim.h"
#include "moesim/sweep.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

/* Result of a load run in a child process with at most extra_mb more
 * address space than it started with (no limit under ASan, whose shadow
 * memory needs terabytes of address space; its own checks apply there). */
typedef struct limited_result {
    ms_status st;
    char msg[MS_ERROR_MAX];
} limited_result;

static void jsonl_limited(const char *path, size_t extra_mb, limited_result *res) {
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fd[0]);
        limited_result r;
        memset(&r, 0, sizeof r);
        if (!UNDER_ASAN) {
            unsigned long pages = 0;
            FILE *fp = fopen("/proc/self/statm", "r");
            if (!fp || fscanf(fp, "%lu", &pages) != 1) _exit(3);
            fclose(fp);
            struct rlimit rl;
            rl.rlim_cur = rl.rlim_max = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)extra_mb << 20);
            if (setrlimit(RLIMIT_AS, &rl) != 0) _exit(3);
        }
        ms_error err = {0};
        ms_jsonl_trace j;
        r.st = ms_jsonl_trace_load(path, 0, &j, &err);
        if (r.st == MS_OK) ms_jsonl_trace_clear(&j);
        snprintf(r.msg, sizeof r.msg, "%s", err.msg);
        if (write(fd[1], &r, sizeof r) != (ssize_t)sizeof r) _exit(3);
        _exit(0);
    }
    close(fd[1]);
    memset(res, 0, sizeof *res);
    ssize_t got = read(fd[0], res, sizeof *res);
    close(fd[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (got != (ssize_t)sizeof *res || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("the loader's child process failed (status %d)", status);
}

/* A few lines naming layer 65535 among many one-layer batches made the
 * loader allocate a batches x 65536 table (92 MB for this 63 KB file) before
 * noticing that batch 0 has no line for layer 0. */
static void test_jsonl_sparse_layers(void **state) {
    (void)state;
    size_t cap = 1 << 17, n = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    n += (size_t)snprintf(text + n, cap - n, "{\"layer\": 65535, \"batch_id\": 0, \"topk_experts\": [[1]]}\n");
    for (int b = 1; b < 1400; b++)
        n += (size_t)snprintf(text + n, cap - n, "{\"layer\": 0, \"batch_id\": %d, \"topk_experts\": []}\n", b);
    assert_true(n < cap);
    char path[512];
    tu_tmp_path("sparse", ".jsonl", path, sizeof path);
    tu_write_file(path, text, n);
    free(text);
    limited_result r;
    jsonl_limited(path, 48, &r);
    if (r.st != MS_E_INPUT || !strstr(r.msg, "batch number 0") || !strstr(r.msg, "no line for layer 0"))
        fail_msg("expected batch 0 to lack layer 0, got %d: %s", r.st, r.msg);
    remove(path);

    /* the same shape, small: still names the first gap (batch 1, layer 1) */
    tu_tmp_path("sparse", ".jsonl", path, sizeof path);
    const char *small = "{\"layer\": 0, \"batch_id\": 5, \"topk_experts\": [[1]]}\n"
                        "{\"layer\": 1, \"batch_id\": 5, \"topk_experts\": [[1]]}\n"
                        "{\"layer\": 0, \"batch_id\": 6, \"topk_experts\": [[2]]}\n";
    tu_write_file(path, small, strlen(small));
    jsonl_limited(path, 48, &r);
    if (r.st != MS_E_INPUT || !strstr(r.msg, "batch number 1") || !strstr(r.msg, "no line for layer 1"))
        fail_msg("expected batch 1 to lack layer 1, got %d: %s", r.st, r.msg);
    remove(path);
}

static const char *model_text(const char *top_k, const char *hidden, char *buf, size_t len) {
    snprintf(buf, len,
             "{\"hidden\": {\"value\": %s, \"source\": \"t\"}, \"moe_intermediate\": {\"value\": 64, \"source\": \"t\"},"
             " \"routed_experts\": {\"value\": 8, \"source\": \"t\"}, \"top_k\": {\"value\": %s, \"source\": \"t\"},"
             " \"shared_experts\": {\"value\": 0, \"source\": \"t\"}, \"shared_intermediate\": {\"value\": 0, "
             "\"source\": \"t\"}, \"moe_layers\": {\"value\": 2, \"source\": \"t\"}, \"expert_weight_bytes\": "
             "{\"value\": 1, \"source\": \"t\"}, \"dense_params_per_layer\": {\"value\": 0, \"source\": \"t\"}}",
             hidden, top_k);
    return buf;
}

/* top_k 0.5 passed the range check (> 0) and truncated to 0 */
static void test_model_preset_whole_counts(void **state) {
    (void)state;
    char text[1024], path[512];
    ms_model_preset m;
    ms_error err = {0};
    tu_tmp_path("model", ".json", path, sizeof path);
    model_text("2", "128.0", text, sizeof text);
    tu_write_file(path, text, strlen(text));
    assert_int_equal(ms_model_preset_load(path, &m, &err), MS_OK);
    assert_int_equal(m.top_k, 2);
    assert_int_equal(m.hidden, 128);
    model_text("0.5", "128", text, sizeof text);
    tu_write_file(path, text, strlen(text));
    assert_int_equal(ms_model_preset_load(path, &m, &err), MS_E_INPUT);
    assert_non_null(strstr(err.msg, "top_k"));
    assert_non_null(strstr(err.msg, path));
    model_text("2", "127.5", text, sizeof text);
    tu_write_file(path, text, strlen(text));
    assert_int_equal(ms_model_preset_load(path, &m, &err), MS_E_INPUT);
    assert_non_null(strstr(err.msg, "hidden"));
    remove(path);
}

static ms_status spec(const char *text, ms_error *err) {
    ms_sweep_spec *s = NULL;
    ms_status st = ms_sweep_spec_parse(text, strlen(text), "spec.json", &s, err);
    if (st == MS_OK) assert_non_null(s);
    else assert_null(s);
    ms_sweep_spec_free(s);
    return st;
}

/* Seeds and the layer were converted from double to integers before their
 * range was checked: -3 or 1e30 is undefined behaviour (the sanitizer build
 * aborts) and 1e30 was even accepted. */
static void test_spec_number_ranges(void **state) {
    (void)state;
    ms_error err = {0};
    static const char *const ok[] = {
        "{\"traces\": [{\"path\": \"a\", \"split\": 0.5, \"seed\": 12345}], \"clusters\": [\"1x2\"], \"slots\": [2]}",
        "{\"traces\": [\"a\"], \"clusters\": [\"1x2\"], \"slots\": [2], \"algorithms\": [{\"algo\": \"eplb\", \"seed\": 9}]}",
        "{\"traces\": [\"a\"], \"clusters\": [\"1x2\"], \"slots\": [2], \"options\": {\"seed\": 1e15, \"layer\": 3}}",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (spec(ok[i], &err) != MS_OK) fail_msg("case %zu: %s", i, err.msg);
    static const struct {
        const char *text, *needle;
    } bad[] = {
        {"{\"traces\": [{\"path\": \"a\", \"split\": 0.5, \"seed\": -3}], \"clusters\": [\"1x2\"], \"slots\": [2]}",
         "traces[0]"},
        {"{\"traces\": [{\"path\": \"a\", \"split\": 0.5, \"seed\": 1e30}], \"clusters\": [\"1x2\"], \"slots\": [2]}",
         "traces[0]"},
        {"{\"traces\": [\"a\"], \"clusters\": [\"1x2\"], \"slots\": [2], \"algorithms\": [{\"algo\": \"eplb\", "
         "\"seed\": 1e30}]}",
         "algorithms[0]"},
        {"{\"traces\": [\"a\"], \"clusters\": [\"1x2\"], \"slots\": [2], \"options\": {\"seed\": -1}}", "options.seed"},
        {"{\"traces\": [\"a\"], \"clusters\": [\"1x2\"], \"slots\": [2], \"options\": {\"seed\": 1e30}}", "options.seed"},
        {"{\"traces\": [\"a\"], \"clusters\": [\"1x2\"], \"slots\": [2], \"options\": {\"layer\": 1e30}}",
         "options.layer"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ms_error_clear(&err);
        assert_int_equal(spec(bad[i].text, &err), MS_E_INPUT);
        if (!strstr(err.msg, bad[i].needle)) fail_msg("case %zu: '%s' lacks '%s'", i, err.msg, bad[i].needle);
    }
}

/* Six lists of 2048 entries: 2^66 points wrapped to 0 in 64 bits and the
 * spec was refused for having "no points" (other sizes wrap to a small count
 * and were accepted). */
static void test_spec_points_overflow(void **state) {
    (void)state;
    static const char *const keys[6] = {"traces", "algorithms", "routes", "clusters", "slots", "batches"};
    static const char *const items[6] = {"\"a\"", "\"eplb\"", "\"round-robin\"", "\"1x1\"", "1", "1"};
    size_t cap = 1 << 18, n = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    n += (size_t)snprintf(text + n, cap - n, "{");
    for (int k = 0; k < 6; k++) {
        n += (size_t)snprintf(text + n, cap - n, "%s\"%s\": [", k ? ", " : "", keys[k]);
        for (int i = 0; i < 2048; i++) n += (size_t)snprintf(text + n, cap - n, "%s%s", i ? "," : "", items[k]);
        n += (size_t)snprintf(text + n, cap - n, "]");
    }
    n += (size_t)snprintf(text + n, cap - n, "}");
    assert_true(n < cap);
    ms_error err = {0};
    assert_int_equal(spec(text, &err), MS_E_INPUT);
    if (!strstr(err.msg, "more than 10^8 points")) fail_msg("got '%s'", err.msg);
    free(text);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jsonl_sparse_layers),
        cmocka_unit_test(test_model_preset_whole_counts),
        cmocka_unit_test(test_spec_number_ranges),
        cmocka_unit_test(test_spec_points_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
