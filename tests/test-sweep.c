/* test-sweep.c - the sweep engine with a fake evaluator: same bytes for any
 * thread count, every point evaluated exactly once, journal resume after a
 * stop, a SIGKILL, a torn or corrupted line and duplicates; refusals; the
 * output formats; the spec parser; replay points on a small generated trace
 * (their count, static equal to ms_replay_run, no copies equal to static,
 * the oracle a bound, same bytes for any thread count, bad replay blocks). */
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

#include "moesim/gen.h"
#include "moesim/online.h"
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

/* ------------------------------------------------------- replay points */

/* A small DeepSeek-V2-Lite-shaped trace (3 layers, 64 experts, top-6, 24
 * prefill requests whose popularity shifts at request 12) written to dir. */
static void write_shifted_trace(char *dir, size_t len) {
    ms_error err = {0};
    ms_gen_opts o;
    ms_gen_opts_default(&o);
    const ms_gen_preset *p = ms_gen_preset_find("deepseek-v2-lite", &err);
    assert_non_null(p);
    ms_gen_opts_apply_preset(&o, p);
    o.n_layers = 3;
    o.n_requests = 24;
    o.prompt_mean = 40;
    o.output_mean = 0;
    o.shift_request = 12;
    o.shift_seed = 3;
    o.seed = 5;
    o.threads = 1;
    ms_trace *t = NULL;
    assert_int_equal(ms_gen_trace(&o, &t, &err), MS_OK);
    tu_tmp_path("sweep-replay", "", dir, len);
    assert_int_equal(ms_trace_write_npz_dir(t, dir, false, NULL, NULL, &err), MS_OK);
    ms_trace_free(t);
}

/* The cell of column `name` in row i of a finished sweep (malloc'd). */
static char *cell_of(const ms_sweep_result *r, const ms_sweep_evaluator *ev, uint64_t i, const char *name) {
    char **cells = ms_sweep_row_cells(r->rows[i], ev->n_columns);
    assert_non_null(cells);
    char *out = NULL;
    for (size_t c = 0; c < ev->n_columns && !out; c++)
        if (strcmp(ev->columns[c], name) == 0) out = strdup(cells[c]);
    ms_free(cells);
    if (!out) fail_msg("no column '%s'", name);
    return out;
}

static double num_of(const ms_sweep_result *r, const ms_sweep_evaluator *ev, uint64_t i, const char *name) {
    char *c = cell_of(r, ev, i, name);
    char *end;
    double v = strtod(c, &end);
    if (!*c || *end) fail_msg("row %" PRIu64 " %s = '%s' is not a number", i, name, c);
    free(c);
    return v;
}

static bool cell_is(const ms_sweep_result *r, const ms_sweep_evaluator *ev, uint64_t i, const char *name,
                    const char *want) {
    char *c = cell_of(r, ev, i, name);
    bool same = strcmp(c, want) == 0;
    free(c);
    return same;
}

/* The sweep of spec on `threads` threads, its CSV into *csv. */
static ms_sweep_result *sweep_spec(ms_sweep_spec *s, int threads, ms_sweep_evaluator *ev, char **csv) {
    ms_sweep_spec_evaluator(s, 1, ev);
    ms_sweep_opts o;
    ms_sweep_opts_default(&o);
    o.threads = threads;
    o.spec_digest = ms_sweep_spec_digest(s);
    ms_sweep_result *r = NULL;
    ms_error err = {0};
    ms_status st = ms_sweep_run(ms_sweep_spec_points(s), ev, &o, &r, &err);
    if (st != MS_OK) fail_msg("sweep: %s", err.msg);
    size_t len = 0;
    FILE *fp = open_memstream(csv, &len);
    assert_int_equal(ms_sweep_write_csv(r, ev, fp, &err), MS_OK);
    fclose(fp);
    return r;
}

static void test_replay_points(void **state) {
    (void)state;
    char dir[512], text[2048];
    write_shifted_trace(dir, sizeof dir);
    /* runs: static; per interval (2) x window (2) x migration (2): incremental
     * with 0 and 16 copies, the oracle: 1 + 8 x 3 = 25 */
    snprintf(text, sizeof text,
             "{\"traces\": [{\"path\": \"%s\", \"label\": \"syn\"}], \"clusters\": [\"2x4\"], \"slots\": [10], "
             "\"batches\": [\"per-request\"], \"routes\": [\"least-loaded\"], \"options\": {\"model\": "
             "\"deepseek-v2-lite\"}, \"replay\": {\"policies\": [\"static\", \"incremental\", \"oracle\"], "
             "\"every\": [3, \"6steps\"], \"window\": [0, 4], \"max_moves\": [0, 16], \"migration\": [\"stall\", "
             "\"overlap\"], \"after_request\": 12}}",
             dir);
    ms_sweep_spec *s = NULL;
    ms_error err = {0};
    assert_int_equal(parse(text, &s, &err), MS_OK);
    assert_int_equal(ms_sweep_spec_points(s), 25);
    char buf[512];
    ms_sweep_spec_describe(s, 0, buf, sizeof buf);
    assert_string_equal(buf, "trace=syn init=eplb route=least-loaded cluster=2x4 slots=10 batch=per-request "
                             "policy=static");
    ms_sweep_spec_describe(s, 24, buf, sizeof buf);
    assert_string_equal(buf, "trace=syn init=eplb route=least-loaded cluster=2x4 slots=10 batch=per-request "
                             "policy=oracle every=6 steps window=4 steps migration=overlap");
    ms_sweep_evaluator ev;
    char *one = NULL, *two = NULL;
    ms_sweep_result *r = sweep_spec(s, 1, &ev, &one);
    ms_sweep_result_free(sweep_spec(s, 2, &ev, &two));
    assert_string_equal(one, two); /* same bytes on two threads */
    assert_non_null(strstr(one, ",policy,every,every_unit,window,window_unit,max_moves,migration,"));
    assert_null(strstr(one, "decide")); /* no wall time in the output */

    /* point 0 (static) is ms_replay_run of static on the same inputs */
    const char *paths[1] = {dir};
    ms_trace_load_opts lo = {0};
    ms_trace *t = NULL;
    assert_int_equal(ms_trace_load(paths, 1, &lo, &t, &err), MS_OK);
    ms_batch_opts bo;
    ms_batch_opts_default(&bo);
    bo.order = MS_ORDER_TRACE;
    ms_batch_plan *plan = NULL;
    assert_int_equal(ms_batch_plan_build(t, &bo, 8, &plan, &err), MS_OK);
    ms_place_opts po;
    tu_place_opts(&po, "eplb", 2, 4, 10);
    po.lp_bound = false;
    ms_placement *init = NULL;
    assert_int_equal(ms_replay_initial_placement(t, plan, (ms_span){3, MS_SPAN_STEPS}, &po, &init, &err), MS_OK);
    ms_sim_opts so;
    ms_sim_opts_default(&so);
    so.route = MS_ROUTE_LEAST_LOADED;
    so.keep_records = false;
    ms_model_preset m;
    ms_hw_preset hw;
    assert_int_equal(ms_model_preset_load("deepseek-v2-lite", &m, &err), MS_OK);
    assert_int_equal(ms_hw_preset_load("h100-sxm", &hw, &err), MS_OK);
    so.model = &m;
    ms_replay_opts ro;
    ms_replay_opts_default(&ro);
    ms_replay_opts_set_weights(&ro, &m);
    ro.hw = &hw;
    ro.after_step = ms_plan_first_step(t, plan, 12);
    ms_replay_result *st = NULL;
    assert_int_equal(ms_replay_run(t, plan, init, &so, &ro, &st, &err), MS_OK);
    char want[64];
    snprintf(want, sizeof want, "%.10g", st->summary.total_us);
    assert_true(cell_is(r, &ev, 0, "total_us", want));
    snprintf(want, sizeof want, "%.10g", st->summary.imbalance_after);
    assert_true(cell_is(r, &ev, 0, "imbalance_after", want));
    assert_true(cell_is(r, &ev, 0, "kind", "replay"));
    assert_true(cell_is(r, &ev, 0, "every", "") && cell_is(r, &ev, 0, "max_moves", "")); /* do not apply */
    assert_true(cell_is(r, &ev, 0, "replacements", "0"));
    assert_true(cell_is(r, &ev, 0, "error", ""));

    /* runs 1.. of each (interval, window, migration): incremental 0, incremental 16, oracle */
    for (uint64_t g = 0; g < 8; g++) {
        const uint64_t k0 = 1 + 3 * g, k16 = k0 + 1, orc = k0 + 2;
        assert_true(cell_is(r, &ev, k0, "policy", "incremental") && cell_is(r, &ev, k0, "max_moves", "0"));
        assert_true(cell_is(r, &ev, orc, "policy", "oracle") && cell_is(r, &ev, orc, "max_moves", ""));
        /* no copies: static, number for number */
        assert_true(num_of(r, &ev, k0, "total_us") == num_of(r, &ev, 0, "total_us"));
        assert_true(num_of(r, &ev, k0, "replicas_moved") == 0 && num_of(r, &ev, k0, "migration_us") == 0);
        assert_true(num_of(r, &ev, k0, "imbalance_mean") == num_of(r, &ev, 0, "imbalance_mean"));
        /* the oracle (given the incremental runs as rivals) is never slower */
        const double o = num_of(r, &ev, orc, "total_us");
        assert_true(o <= num_of(r, &ev, k0, "total_us") * (1 + 1e-12));
        assert_true(o <= num_of(r, &ev, k16, "total_us") * (1 + 1e-12));
        assert_true(num_of(r, &ev, orc, "decisions") > 0);
    }
    /* window 0 means the interval; 4 is 4 */
    assert_true(cell_is(r, &ev, 1, "window", "3") && cell_is(r, &ev, 4 + 3 + 3, "window", "4"));
    assert_true(cell_is(r, &ev, 13, "every", "6") && cell_is(r, &ev, 13, "every_unit", "steps"));
    assert_true(cell_is(r, &ev, 4, "migration", "overlap"));
    assert_true(num_of(r, &ev, 2, "replicas_moved") > 0); /* incremental 16 moves something after the shift */

    ms_replay_result_free(st);
    ms_placement_free(init);
    ms_batch_plan_free(plan);
    ms_trace_free(t);
    ms_sweep_result_free(r);
    ms_sweep_spec_free(s);
    free(one);
    free(two);

    /* axes that do not apply do not multiply: static and the oracle alone
     * take no window, budget or migration mode */
    snprintf(text, sizeof text,
             "{\"traces\": [\"%s\"], \"clusters\": [\"2x4\"], \"slots\": [10], \"replay\": {\"policies\": "
             "[\"oracle\", \"static\"], \"every\": [3, 6, \"100tokens\"], \"window\": [0, 4], \"max_moves\": [0, 8], "
             "\"migration\": [\"stall\", \"overlap\"]}}",
             dir);
    assert_int_equal(parse(text, &s, &err), MS_OK);
    assert_int_equal(ms_sweep_spec_points(s), 1 + 3);
    ms_sweep_spec_free(s);
    /* with algorithms, grid points come first */
    snprintf(text, sizeof text,
             "{\"traces\": [\"%s\"], \"algorithms\": [\"eplb\", \"replicate\"], \"clusters\": [\"2x4\"], \"slots\": "
             "[10], \"replay\": {\"policies\": \"periodic-eplb\", \"init\": [\"eplb\", \"replicate\"]}}",
             dir);
    assert_int_equal(parse(text, &s, &err), MS_OK);
    assert_int_equal(ms_sweep_spec_points(s), 2 + 2);
    ms_sweep_spec_describe(s, 1, buf, sizeof buf);
    assert_non_null(strstr(buf, "algo=replicate"));
    ms_sweep_spec_describe(s, 3, buf, sizeof buf);
    assert_non_null(strstr(buf, "init=replicate"));
    assert_non_null(strstr(buf, "policy=periodic-eplb every=100 steps window=100 steps migration=stall"));
    ms_sweep_spec_free(s);
    snprintf(text, sizeof text, "rm -rf '%s'", dir);
    assert_int_equal(tu_run(text, NULL, 0), 0);
}

static void test_replay_spec_errors(void **state) {
    (void)state;
#define RS(body) "{\"traces\": [\"a\"], \"clusters\": [\"2x8\"], \"slots\": [4], \"replay\": " body "}"
    static const struct {
        const char *text, *needle;
    } bad[] = {
        {RS("[1]"), "\"replay\" must be an object"},
        {RS("{\"policies\": [\"sometimes\"]}"), "replay.policies[0]: unknown re-placement policy 'sometimes'"},
        {RS("{\"policies\": [\"static\", \"static\"]}"), "replay.policies[1]: the same as [0]"},
        {RS("{\"policies\": []}"), "replay.policies must hold 1 to 16 entries"},
        {RS("{\"every\": [0]}"), "replay.every[0]: must be a positive integer"},
        {RS("{\"every\": [\"0tokens\"]}"), "replay.every[0]"},
        {RS("{\"every\": [2.5]}"), "replay.every[0]"},
        {RS("{\"every\": [\"20 apples\"]}"), "replay.every[0]"},
        {RS("{\"window\": [-3]}"), "replay.window[0]: must be a non-negative integer"},
        {RS("{\"max_moves\": [1.5]}"), "replay.max_moves[0]: must be an integer"},
        {RS("{\"max_moves\": [-1]}"), "replay.max_moves[0]"},
        {RS("{\"max_moves\": [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]}"), "replay.max_moves must hold 1 to 15"},
        {RS("{\"migration\": \"later\"}"), "replay.migration[0]: unknown migration mode 'later'"},
        {RS("{\"init\": \"magic\"}"), "replay.init[0]: unknown algorithm 'magic'"},
        {RS("{\"after_request\": -1}"), "replay.after_request must be an integer >= 0"},
        {RS("{\"variance_weight\": -0.5}"), "replay.variance_weight must be a number >= 0"},
        {RS("{\"groups\": \"4\"}"), "replay.groups"},
        {RS("{\"every\": [10], \"evry\": [20]}"), "replay: unknown key 'evry'"},
        {"{\"replay\": {}, \"scaling\": {\"sizes\": [1e9]}}", "\"replay\" needs traces"},
        {"{\"traces\": [\"a\"], \"clusters\": [\"2x8\"], \"slots\": [4], \"options\": {\"layer\": 3}, "
         "\"replay\": {}}",
         "options.layer"},
    };
#undef RS
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ms_sweep_spec *s = NULL;
        ms_error err = {0};
        assert_int_equal(parse(bad[i].text, &s, &err), MS_E_INPUT);
        assert_null(s);
        if (!strstr(err.msg, bad[i].needle)) fail_msg("case %zu: '%s' lacks '%s'", i, err.msg, bad[i].needle);
        assert_non_null(strstr(err.msg, "spec.json"));
    }
    /* the defaults: all four policies every 100 steps, 64 copies, stall, EPLB */
    ms_sweep_spec *s = NULL;
    ms_error err = {0};
    assert_int_equal(parse("{\"traces\": [\"a\"], \"clusters\": [\"2x8\"], \"slots\": [4], \"replay\": {}}", &s, &err),
                     MS_OK);
    assert_int_equal(ms_sweep_spec_points(s), 4);
    char buf[512];
    ms_sweep_spec_describe(s, 2, buf, sizeof buf);
    assert_non_null(strstr(buf, "init=eplb"));
    assert_non_null(strstr(buf, "policy=incremental every=100 steps window=100 steps max_moves=64 migration=stall"));
    ms_sweep_spec_free(s);
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
        cmocka_unit_test(test_replay_points),
        cmocka_unit_test(test_replay_spec_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
