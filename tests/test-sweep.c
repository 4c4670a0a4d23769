/* test-sweep.c - the sweep engine with a fake evaluator: same bytes for any
 * thread count, every point evaluated exactly once, journal resume after a
 * stop, a SIGKILL, a torn or corrupted line and duplicates; refusals; the
 * output formats; the spec parser. */
#include "testutil.h"

#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "moesim/sweep.h"

#define NPTS 50

typedef struct fake {
    atomic_int calls[NPTS];
    atomic_int total;
    int kill_at;        /* raise SIGKILL on this evaluation count (0 = never) */
    int fail_index;     /* return MS_E_IO for this point (-1 = never) */
} fake;

static const char *const cols[] = {"point", "square", "text"};
static const bool numeric[] = {true, true, false};

static ms_status fake_eval(void *ctx, uint64_t index, char **cells, ms_error *err) {
    fake *f = ctx;
    int n = atomic_fetch_add(&f->total, 1) + 1;
    if (f->kill_at && n >= f->kill_at) {
        /* SIGKILL reaches the other worker threads a moment later: they must
         * not finish a point in that moment, or the journal holds more than
         * the points finished before the kill */
        if (n == f->kill_at) raise(SIGKILL);
        for (;;) pause();
    }
    if ((int)index == f->fail_index) return ms_error_set(err, MS_E_IO, "point %d cannot be read", (int)index);
    atomic_fetch_add(&f->calls[index], 1);
    snprintf(cells[0], MS_SWEEP_CELL, "%" PRIu64, index);
    snprintf(cells[1], MS_SWEEP_CELL, "%" PRIu64, index * index);
    /* a comma, a quote and a newline: CSV must quote them */
    snprintf(cells[2], MS_SWEEP_CELL, index % 5 == 0 ? "a,\"b\"\nc" : "t%" PRIu64, index);
    return MS_OK;
}

static void fake_init(fake *f, ms_sweep_evaluator *ev) {
    memset(f, 0, sizeof *f);
    f->fail_index = -1;
    ev->n_columns = 3;
    ev->columns = cols;
    ev->numeric = numeric;
    ev->eval = fake_eval;
    ev->ctx = f;
}

/* Runs a sweep and returns its CSV (malloc'd); asserts success. */
static char *run_csv(fake *f, const ms_sweep_evaluator *ev, int threads, const char *journal, bool resume,
                     uint64_t stop_after, ms_sweep_result **keep) {
    ms_sweep_opts o;
    ms_sweep_opts_default(&o);
    o.threads = threads;
    o.journal = journal;
    o.resume = resume;
    o.stop_after = stop_after;
    o.spec_digest = 0x1234;
    ms_sweep_result *r = NULL;
    ms_error err = {0};
    ms_status st = ms_sweep_run(NPTS, ev, &o, &r, &err);
    if (st != MS_OK) fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(st, MS_OK);
    (void)f;
    char *text = NULL;
    if (r->done == NPTS) {
        size_t len = 0;
        FILE *fp = open_memstream(&text, &len);
        assert_int_equal(ms_sweep_write_csv(r, ev, fp, &err), MS_OK);
        fclose(fp);
    }
    if (keep) *keep = r;
    else ms_sweep_result_free(r);
    return text;
}

static size_t count_lines(const char *path) {
    FILE *fp = fopen(path, "r");
    if (!fp) return 0;
    size_t n = 0;
    int c;
    while ((c = fgetc(fp)) != EOF) n += c == '\n';
    fclose(fp);
    return n;
}

static void test_threads_same_bytes_once_each(void **state) {
    (void)state;
    fake f;
    ms_sweep_evaluator ev;
    fake_init(&f, &ev);
    char *one = run_csv(&f, &ev, 1, NULL, false, 0, NULL);
    for (int i = 0; i < NPTS; i++) assert_int_equal(atomic_load(&f.calls[i]), 1);
    fake_init(&f, &ev);
    char *four = run_csv(&f, &ev, 4, NULL, false, 0, NULL);
    for (int i = 0; i < NPTS; i++) assert_int_equal(atomic_load(&f.calls[i]), 1);
    assert_string_equal(one, four);
    /* hand-checked rows: header, point 1, and the quoted point 5 */
    assert_non_null(strstr(one, "point,square,text\n0,0,\"a,\"\"b\"\"\nc\"\n1,1,t1\n"));
    assert_non_null(strstr(one, "\n49,2401,t49\n"));
    free(one);
    free(four);
}

static void test_json_output(void **state) {
    (void)state;
    fake f;
    ms_sweep_evaluator ev;
    fake_init(&f, &ev);
    ms_sweep_result *r = NULL;
    free(run_csv(&f, &ev, 2, NULL, false, 0, &r));
    char *text = NULL;
    size_t len = 0;
    ms_error err = {0};
    FILE *fp = open_memstream(&text, &len);
    assert_int_equal(ms_sweep_write_json(r, &ev, 0xabc, fp, &err), MS_OK);
    fclose(fp);
    assert_non_null(strstr(text, "\"sweep\": {\"points\": 50, \"spec_digest\": \"0000000000000abc\"}"));
    assert_non_null(strstr(text, "{\"point\": 7, \"square\": 49, \"text\": \"t7\"}"));
    assert_non_null(strstr(text, "\"text\": \"a,\\\"b\\\"\\nc\""));
    /* python parses it and sees 50 rows */
    char path[512], cmd[1024], out[256];
    tu_tmp_path("sweep", ".json", path, sizeof path);
    tu_write_file(path, text, len);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); "
             "print(len(d[\"rows\"]), sum(r[\"square\"] for r in d[\"rows\"]))' %s",
             path);
    if (tu_run("/usr/bin/python3 -c 1 >/dev/null 2>&1", NULL, 0) == 0) {
        assert_int_equal(tu_run(cmd, out, sizeof out), 0);
        assert_string_equal(out, "50 40425\n"); /* sum of i^2, i < 50 */
    }
    remove(path);
    free(text);
    ms_sweep_result_free(r);
}

static void test_stop_and_resume(void **state) {
    (void)state;
    fake f;
    ms_sweep_evaluator ev;
    fake_init(&f, &ev);
    char *ref = run_csv(&f, &ev, 1, NULL, false, 0, NULL);
    char journal[512];
    tu_tmp_path("sweep", ".journal", journal, sizeof journal);
    fake_init(&f, &ev);
    ms_sweep_result *r = NULL;
    assert_null(run_csv(&f, &ev, 3, journal, false, 7, &r));
    assert_int_equal(r->done, 7);
    assert_int_equal(atomic_load(&f.total), 7);
    ms_sweep_result_free(r);
    assert_int_equal(count_lines(journal), 1 + 7);
    /* without --resume the journal is refused, untouched */
    ms_sweep_opts o;
    ms_sweep_opts_default(&o);
    o.journal = journal;
    o.spec_digest = 0x1234;
    ms_error err = {0};
    assert_int_equal(ms_sweep_run(NPTS, &ev, &o, &r, &err), MS_E_INPUT);
    ms_sweep_result_free(r);
    assert_non_null(strstr(err.msg, "--resume"));
    /* another spec's journal is refused */
    o.resume = true;
    o.spec_digest = 0x9999;
    assert_int_equal(ms_sweep_run(NPTS, &ev, &o, &r, &err), MS_E_INPUT);
    ms_sweep_result_free(r);
    assert_non_null(strstr(err.msg, "another sweep"));
    /* resume: only the 43 missing points run; same bytes */
    fake_init(&f, &ev);
    char *res = run_csv(&f, &ev, 2, journal, true, 0, &r);
    assert_int_equal(r->resumed, 7);
    assert_int_equal(r->evaluated, NPTS - 7);
    assert_int_equal(atomic_load(&f.total), NPTS - 7);
    ms_sweep_result_free(r);
    assert_string_equal(ref, res);
    /* resuming a finished sweep evaluates nothing */
    fake_init(&f, &ev);
    free(res);
    res = run_csv(&f, &ev, 2, journal, true, 0, NULL);
    assert_int_equal(atomic_load(&f.total), 0);
    assert_string_equal(ref, res);
    remove(journal);
    free(ref);
    free(res);
}

static void test_sigkill_then_resume(void **state) {
    (void)state;
    fake f;
    ms_sweep_evaluator ev;
    fake_init(&f, &ev);
    char *ref = run_csv(&f, &ev, 1, NULL, false, 0, NULL);
    char journal[512];
    tu_tmp_path("sweep-kill", ".journal", journal, sizeof journal);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* the child dies on its 20th evaluation, mid-sweep, 2 threads */
        fake_init(&f, &ev);
        f.kill_at = 20;
        ms_sweep_opts o;
        ms_sweep_opts_default(&o);
        o.threads = 2;
        o.journal = journal;
        o.spec_digest = 0x1234;
        ms_sweep_result *r = NULL;
        ms_sweep_run(NPTS, &ev, &o, &r, NULL);
        _exit(3); /* not reached */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    size_t kept = count_lines(journal) - 1;
    assert_true(kept >= 1 && kept <= 19);
    fake_init(&f, &ev);
    ms_sweep_result *r = NULL;
    char *res = run_csv(&f, &ev, 3, journal, true, 0, &r);
    assert_int_equal(r->resumed, kept);
    assert_int_equal(atomic_load(&f.total), NPTS - (int)kept); /* nothing finished is redone */
    for (int i = 0; i < NPTS; i++) assert_true(atomic_load(&f.calls[i]) <= 1);
    ms_sweep_result_free(r);
    assert_string_equal(ref, res);
    remove(journal);
    free(ref);
    free(res);
}

static void append(const char *path, const char *text) {
    FILE *fp = fopen(path, "a");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void test_torn_corrupt_duplicate_lines(void **state) {
    (void)state;
    fake f;
    ms_sweep_evaluator ev;
    fake_init(&f, &ev);
    char *ref = run_csv(&f, &ev, 1, NULL, false, 0, NULL);
    char journal[512];
    tu_tmp_path("sweep-torn", ".journal", journal, sizeof journal);
    free(run_csv(&f, &ev, 1, journal, false, 5, NULL)); /* points 0..4 */
    /* a duplicate of point 2 (valid checksum), a line with a wrong checksum
     * for point 9 (ignored, recomputed), and a torn tail */
    const char *row2 = "[\"2\",\"4\",\"t2\"]";
    char line[256];
    snprintf(line, sizeof line, "2 %016" PRIx64 " %s\n", ms_sweep_line_checksum(2, row2), row2);
    append(journal, line);
    append(journal, "9 0000000000000000 [\"9\",\"666\",\"bad\"]\n");
    append(journal, "12 00ab [\"12\",\"1");
    fake_init(&f, &ev);
    ms_sweep_result *r = NULL;
    char *res = run_csv(&f, &ev, 2, journal, true, 0, &r);
    assert_int_equal(r->resumed, 5);
    assert_int_equal(r->ignored_lines, 3);
    assert_int_equal(atomic_load(&f.calls[9]), 1);
    assert_int_equal(atomic_load(&f.calls[2]), 0);
    assert_int_equal(atomic_load(&f.total), NPTS - 5);
    ms_sweep_result_free(r);
    assert_string_equal(ref, res);
    /* the journal now ends cleanly: every line after the header is whole */
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(ms_file_read_all(journal, &buf, &len, NULL), MS_OK);
    assert_true(len > 0 && buf[len - 1] == '\n');
    assert_null(strstr((char *)buf, "00ab"));
    free(buf);
    remove(journal);
    free(ref);
    free(res);
}

static void test_failure_keeps_finished(void **state) {
    (void)state;
    fake f;
    ms_sweep_evaluator ev;
    fake_init(&f, &ev);
    f.fail_index = 30;
    char journal[512];
    tu_tmp_path("sweep-fail", ".journal", journal, sizeof journal);
    ms_sweep_opts o;
    ms_sweep_opts_default(&o);
    o.threads = 1;
    o.journal = journal;
    ms_sweep_result *r = NULL;
    ms_error err = {0};
    assert_int_equal(ms_sweep_run(NPTS, &ev, &o, &r, &err), MS_E_IO);
    assert_non_null(strstr(err.msg, "point 30"));
    assert_int_equal(r->done, 30);
    ms_sweep_result_free(r);
    assert_int_equal(count_lines(journal), 31);
    /* bad arguments */
    assert_int_equal(ms_sweep_run(0, &ev, NULL, &r, &err), MS_E_INPUT);
    ms_sweep_evaluator none = ev;
    none.n_columns = 0;
    assert_int_equal(ms_sweep_run(5, &none, NULL, &r, &err), MS_E_INPUT);
    remove(journal);
}

static void test_row_cells(void **state) {
    (void)state;
    char **c = ms_sweep_row_cells("[\"a\",\"\",\"x,y\"]", 3);
    assert_non_null(c);
    assert_string_equal(c[0], "a");
    assert_string_equal(c[1], "");
    assert_string_equal(c[2], "x,y");
    ms_free(c);
    assert_null(ms_sweep_row_cells("[\"a\"]", 3));
    assert_null(ms_sweep_row_cells("[1,2,3]", 3));
    assert_null(ms_sweep_row_cells("not json", 1));
}

static ms_status parse(const char *text, ms_sweep_spec **s, ms_error *err) {
    return ms_sweep_spec_parse(text, strlen(text), "spec.json", s, err);
}

static void test_spec(void **state) {
    (void)state;
    ms_sweep_spec *s = NULL;
    ms_error err = {0};
    const char *good =
        "{\"traces\": [\"a\", {\"path\": \"b\", \"label\": \"B\", \"split\": 0.5}], \"algorithms\": [\"eplb\", "
        "{\"algo\": \"replicate\", \"label\": \"rep\"}, \"pair\"], \"routes\": [\"round-robin\", \"least-loaded\"], "
        "\"clusters\": [\"2x8\", {\"rows\": 4, \"cols\": 4}], \"slots\": [4, 6, 8], \"batches\": [1024, "
        "{\"mode\": \"decode\", \"batch\": 32}], \"options\": {\"cost_model\": \"mesh\"}}";
    assert_int_equal(parse(good, &s, &err), MS_OK);
    assert_int_equal(ms_sweep_spec_points(s), 2 * 3 * 2 * 2 * 3 * 2);
    char buf[256];
    /* last point: every index at its maximum */
    ms_sweep_spec_describe(s, 143, buf, sizeof buf);
    assert_string_equal(buf, "trace=B algo=pair route=least-loaded cluster=4x4 slots=8 batch=decode:32");
    /* point 1: batches innermost */
    ms_sweep_spec_describe(s, 1, buf, sizeof buf);
    assert_string_equal(buf, "trace=a algo=eplb route=round-robin cluster=2x8 slots=4 batch=decode:32");
    /* point 2*3 = slots index 1 after the batches... (batches x slots = 6 per cluster) */
    ms_sweep_spec_describe(s, 6, buf, sizeof buf);
    assert_string_equal(buf, "trace=a algo=eplb route=round-robin cluster=4x4 slots=4 batch=prefill:1024");
    uint64_t d1 = ms_sweep_spec_digest(s);
    ms_sweep_spec_free(s);
    /* the digest ignores key order and whitespace, but not values */
    const char *reordered =
        "{\"options\": {\"cost_model\": \"mesh\"},\"batches\": [1024, {\"batch\": 32, \"mode\": \"decode\"}], "
        "\"traces\": [\"a\", {\"label\": \"B\", \"path\": \"b\", \"split\": 0.5}], \"algorithms\": [\"eplb\", "
        "{\"label\": \"rep\", \"algo\": \"replicate\"}, \"pair\"], \"routes\": [\"round-robin\", \"least-loaded\"], "
        "\"clusters\": [\"2x8\", {\"cols\": 4, \"rows\": 4}], \"slots\": [4, 6, 8]}";
    assert_int_equal(parse(reordered, &s, &err), MS_OK);
    assert_true(ms_sweep_spec_digest(s) == d1);
    ms_sweep_spec_free(s);
    assert_int_equal(parse("{\"traces\": [\"a\"], \"clusters\": [\"2x8\"], \"slots\": [5]}", &s, &err), MS_OK);
    assert_true(ms_sweep_spec_digest(s) != d1);
    assert_int_equal(ms_sweep_spec_points(s), 1); /* defaults: eplb, one route, one batch */
    ms_sweep_spec_free(s);

    static const struct {
        const char *text, *needle;
    } bad[] = {
        {"[1]", "object"},
        {"{\"traces\": [\"a\"], \"slots\": [4]}", "clusters"},
        {"{\"traces\": [\"a\"], \"clusters\": [\"2y8\"], \"slots\": [4]}", "clusters[0]"},
        {"{\"traces\": [\"a\"], \"clusters\": [\"2x8\"], \"slots\": [0]}", "slots[0]"},
        {"{\"traces\": [\"a\"], \"clusters\": [\"2x8\"], \"slots\": [4], \"routes\": [\"sideways\"]}", "routes[0]"},
        {"{\"traces\": [\"a\"], \"clusters\": [\"2x8\"], \"slots\": [4], \"algorithms\": [\"magic\"]}", "magic"},
        {"{\"traces\": [\"a\"], \"clusters\": [\"2x8\"], \"slots\": [4], \"colour\": 1}", "colour"},
        {"{\"traces\": [{\"path\": \"a\", \"split\": 2}], \"clusters\": [\"2x8\"], \"slots\": [4]}", "traces[0]"},
        {"{\"traces\": [\"a\"], \"clusters\": [\"2x8\"], \"slots\": [4], \"batches\": [{\"mode\": \"x\"}]}",
         "batches[0]"},
        {"{\"traces\": [\"a\"], \"clusters\": [\"2x8\"], \"slots\": [4], \"options\": {\"overflow\": \"y\"}}",
         "options.overflow"},
        {"{}", "no points"},
        {"{\"traces\": [", "not JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ms_error_clear(&err);
        assert_int_equal(parse(bad[i].text, &s, &err), MS_E_INPUT);
        assert_null(s);
        if (!strstr(err.msg, bad[i].needle)) fail_msg("case %zu: '%s' lacks '%s'", i, err.msg, bad[i].needle);
        assert_non_null(strstr(err.msg, "spec.json"));
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_same_bytes_once_each),
        cmocka_unit_test(test_json_output),
        cmocka_unit_test(test_stop_and_resume),
        cmocka_unit_test(test_sigkill_then_resume),
        cmocka_unit_test(test_torn_corrupt_duplicate_lines),
        cmocka_unit_test(test_failure_keeps_finished),
        cmocka_unit_test(test_row_cells),
        cmocka_unit_test(test_spec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
