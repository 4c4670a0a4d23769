/* test-report.c - the SVG chart library (ticks, number formats, escaping,
 * well-formed and deterministic output) and the report (kind detection,
 * hand-computed device loads, sections present only with their inputs,
 * errors naming the file). */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moesim/place.h"
#include "moesim/report.h"
#include "report/sbuf.h"
#include "report/svg.h"

static size_t count(const char *hay, const char *needle) {
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle)) n++;
    return n;
}

static bool have_python(void) { return tu_run("/usr/bin/python3 -c 1 >/dev/null 2>&1", NULL, 0) == 0; }

/* Parses text as XML with python's expat; returns 0 when well-formed. */
static int xml_ok(const char *text) {
    char path[512], cmd[1024];
    tu_tmp_path("svg", ".svg", path, sizeof path);
    tu_write_file(path, text, strlen(text));
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c 'import sys,xml.etree.ElementTree as E; E.parse(sys.argv[1])' %s 2>&1", path);
    char out[2048];
    int rc = tu_run(cmd, out, sizeof out);
    if (rc != 0) fprintf(stderr, "xml: %s\n", out);
    remove(path);
    return rc;
}

static void test_ticks_and_formats(void **state) {
    (void)state;
    double t[64], lo = 0, hi = 9.3;
    size_t n = ms_chart_nice_ticks(&lo, &hi, 5, t, 64);
    /* range 9.3 / 5 = 1.86 -> step 2: 0 2 4 6 8 10 */
    assert_int_equal(n, 6);
    assert_true(lo == 0 && hi == 10 && t[1] == 2 && t[5] == 10);
    lo = 1.004, hi = 1.231;
    n = ms_chart_nice_ticks(&lo, &hi, 6, t, 64);
    /* 0.227 / 6 = 0.0378 -> step 0.05: 1.00 .. 1.25 */
    assert_int_equal(n, 6);
    assert_true(fabs(t[0] - 1.0) < 1e-12 && fabs(t[5] - 1.25) < 1e-12);
    lo = hi = 5; /* a flat range still gets ticks around it */
    n = ms_chart_nice_ticks(&lo, &hi, 5, t, 64);
    assert_true(n >= 2 && lo < 5 && hi > 5);
    char b[32];
    ms_chart_format_tick(b, sizeof b, 1500, 500);
    assert_string_equal(b, "1.5k");
    ms_chart_format_tick(b, sizeof b, 2e9, 1e9);
    assert_string_equal(b, "2G");
    ms_chart_format_tick(b, sizeof b, 0.25, 0.05);
    assert_string_equal(b, "0.25");
    ms_chart_format_tick(b, sizeof b, 1.05, 0.05);
    assert_string_equal(b, "1.05");
    ms_chart_format_tick(b, sizeof b, -1e-17, 0.5);
    assert_string_equal(b, "0");
    ms_chart_format_tick(b, sizeof b, 400, 100);
    assert_string_equal(b, "400");
    ms_sbuf s;
    ms_sbuf_init(&s);
    ms_sbuf_put_coord(&s, 12.345);
    ms_sbuf_puts(&s, " ");
    ms_sbuf_put_coord(&s, -0.001);
    ms_sbuf_puts(&s, " ");
    ms_sbuf_put_coord(&s, 7.1);
    ms_sbuf_puts(&s, " ");
    ms_sbuf_put_xml(&s, "a<b & \"c\" 'd'>");
    assert_string_equal(s.s, "12.35 0 7.1 a&lt;b &amp; &quot;c&quot; &#39;d&#39;&gt;");
    ms_sbuf_free(&s);
}

static ms_chart *line_chart(void) {
    ms_chart *c = ms_chart_new(MS_CHART_LINE, "Latency <p99> & more");
    ms_chart_set_note(c, "a note");
    ms_chart_set_x_axis(c, "layer", NULL, false);
    ms_chart_set_y_axis(c, "time", "µs", false);
    double x[3] = {0, 1, 2}, y1[3] = {10, 20, 15}, y2[3] = {12, 11, 30};
    ms_chart_add_line(c, "eplb", x, y1, 3, false, true);
    ms_chart_add_line(c, "smart \"x\"", x, y2, 3, false, false);
    ms_chart_add_hline(c, 25, "limit");
    return c;
}

static void test_line_chart(void **state) {
    (void)state;
    ms_chart *c = line_chart();
    ms_sbuf a, b;
    ms_sbuf_init(&a);
    ms_sbuf_init(&b);
    ms_error err = {0};
    assert_int_equal(ms_chart_render(c, &a, true, "c1", &err), MS_OK);
    ms_chart_free(c);
    c = line_chart();
    assert_int_equal(ms_chart_render(c, &b, true, "c1", &err), MS_OK);
    ms_chart_free(c);
    assert_string_equal(a.s, b.s); /* deterministic */
    assert_int_equal(count(a.s, "<path "), 2);
    assert_int_equal(count(a.s, "<circle "), 3); /* markers on the first series only */
    assert_non_null(strstr(a.s, "Latency &lt;p99&gt; &amp; more"));
    assert_non_null(strstr(a.s, "time (µs)"));
    assert_non_null(strstr(a.s, ">limit</text>"));
    assert_non_null(strstr(a.s, "smart &quot;x&quot;"));
    /* y ticks 10..30 step 5 include "30" */
    assert_non_null(strstr(a.s, ">30</text>"));
    if (have_python()) assert_int_equal(xml_ok(a.s), 0);
    ms_sbuf_free(&a);
    ms_sbuf_free(&b);
    /* nothing to draw */
    c = ms_chart_new(MS_CHART_LINE, "empty");
    ms_sbuf_init(&a);
    assert_int_equal(ms_chart_render(c, &a, false, NULL, &err), MS_E_INPUT);
    ms_chart_free(c);
    ms_sbuf_free(&a);
}

static void test_cdf_thinning(void **state) {
    (void)state;
    enum { N = 5000 };
    double *v = malloc(N * sizeof *v);
    for (int i = 0; i < N; i++) v[i] = (double)((i * 7919) % N); /* 0..N-1 shuffled */
    ms_chart *c = ms_chart_new(MS_CHART_LINE, "cdf");
    ms_chart_add_cdf(c, "x", v, N);
    ms_sbuf s;
    ms_sbuf_init(&s);
    ms_error err = {0};
    assert_int_equal(ms_chart_render(c, &s, false, "cdf", &err), MS_OK);
    const char *d = strstr(s.s, " d=\"M");
    assert_non_null(d);
    const char *end = strchr(d + 4, '"');
    size_t steps = 0;
    for (const char *p = d; p < end; p++) steps += *p == 'H';
    assert_true(steps >= 500 && steps <= 512); /* 512 ranks kept (repeats of a value merge) */
    ms_chart_free(c);
    ms_sbuf_free(&s);
    free(v);
}

static void test_bar_and_heatmap(void **state) {
    (void)state;
    ms_chart *c = ms_chart_new(MS_CHART_BAR, "loads");
    const char *names[4] = {"e0", "e1", "e2", "e3"};
    double v[4] = {4, 3, 2, 1}, w[4] = {1, 1, 1, 1};
    unsigned char mark[4] = {1, 0, 0, 0};
    ms_chart_set_categories(c, names, 4);
    ms_chart_add_bars(c, "load", v, 4);
    ms_chart_add_bars(c, "other", w, 4);
    ms_chart_set_stacked(c, true);
    ms_chart_set_marks(c, mark, 4, "hot");
    ms_sbuf s;
    ms_sbuf_init(&s);
    ms_error err = {0};
    assert_int_equal(ms_chart_render(c, &s, true, "b", &err), MS_OK);
    assert_int_equal(count(s.s, "<title>e"), 8);         /* one tooltip per bar segment */
    assert_int_equal(count(s.s, "fill=\"#D55E00\"><title>e0"), 1); /* the marked bar */
    assert_non_null(strstr(s.s, ">hot</text>"));
    if (have_python()) assert_int_equal(xml_ok(s.s), 0);
    ms_chart_free(c);
    ms_sbuf_reset(&s);

    c = ms_chart_new(MS_CHART_HEATMAP, "grid");
    double m[6] = {1, 2, 3, 4, 5, NAN};
    ms_chart_set_matrix(c, 2, 3, m, NULL, NULL, "load");
    ms_chart_set_cell_values(c, true);
    assert_int_equal(ms_chart_render(c, &s, true, "h", &err), MS_OK);
    assert_int_equal(count(s.s, "<title>"), 1 + 6); /* chart title + one per cell */
    assert_non_null(strstr(s.s, "<title>1, 1: 5</title>"));
    assert_non_null(strstr(s.s, "<title>1, 2: none</title>"));
    /* lowest value darkest (viridis start), highest brightest */
    assert_non_null(strstr(s.s, "fill=\"#440154\"><title>0, 0: 1</title>"));
    assert_non_null(strstr(s.s, "fill=\"#fde725\"><title>1, 1: 5</title>"));
    if (have_python()) assert_int_equal(xml_ok(s.s), 0);
    ms_chart_free(c);
    ms_sbuf_free(&s);
}

/* ---------------------------------------------------------- report */

static void write_text(const char *path, const char *text) { tu_write_file(path, text, strlen(text)); }

/* Stats of 1 layer, 3 experts, loads 6 4 2. */
static const char *stats_json =
    "{\"layers\": 1, \"experts\": 3, \"top_k\": 1, \"tokens\": 12, \"requests\": 2, \"phase\": \"all\", "
    "\"window\": 0, \"trace_digest\": \"00000000000000aa\", \"per_layer\": [{\"layer\": 0, \"tokens\": 12, "
    "\"expert_load\": [6, 4, 2], \"max_mean_ratio\": 1.5, \"min_mean_ratio\": 0.5, \"cv\": 0.4, \"hot10_share\": "
    "0.5, \"never_chosen\": 0, \"top_pairs\": [[0, 1, 3], [1, 2, 1]]}]}";

static const char *sim_json =
    "{\"command\": \"simulate\", \"trace\": {\"digest\": \"00000000000000aa\"}, \"placement\": {\"file\": "
    "\"p.json\", \"rows\": 1, \"cols\": 2, \"algorithm\": \"hand\"}, \"options\": {\"route\": \"least-loaded\", "
    "\"hw\": \"h100-sxm\"}, \"summary\": {\"imbalance\": {\"mean\": 1.25, \"p50\": 1.2, \"p95\": 1.4, \"p99\": "
    "1.5, \"max\": 1.5}, \"layer_us\": {\"mean\": 100, \"p50\": 90, \"p95\": 150, \"p99\": 160, \"max\": 170}, "
    "\"tokens_per_second\": 123456, \"dropped_tokens\": 0, \"rerouted_tokens\": 0, \"intra_row_bytes\": 1000, "
    "\"inter_row_bytes\": 3000, \"dispatch_us\": 20, \"compute_us\": 50, \"combine_us\": 30}, \"records\": ["
    "{\"batch\": 0, \"layer\": 0, \"imbalance\": 1.1, \"layer_us\": 90, \"device_load\": [11, 9]},"
    "{\"batch\": 1, \"layer\": 0, \"imbalance\": 1.5, \"layer_us\": 160, \"device_load\": [3, 1]}]}";

static void make_placement(const char *path) {
    ms_cluster cl = {1, 2, 2};
    ms_placement *p = NULL;
    ms_error err = {0};
    assert_int_equal(ms_placement_new(1, &cl, 3, false, &p, &err), MS_OK);
    /* device 0: experts 0, 1; device 1: experts 0, 2 */
    int32_t slots[4] = {0, 1, 0, 2};
    memcpy(p->phy2log, slots, sizeof slots);
    snprintf(p->algorithm, sizeof p->algorithm, "hand");
    assert_int_equal(ms_placement_index(p, &err), MS_OK);
    assert_int_equal(ms_placement_write_json(p, path, &err), MS_OK);
    ms_placement_free(p);
}

static char *html_of(ms_report *r, int64_t layer, ms_status *st, ms_error *err) {
    ms_report_opts o;
    ms_report_opts_default(&o);
    o.layer = layer;
    char *text = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&text, &len);
    *st = ms_report_write_html(r, &o, fp, err);
    fclose(fp);
    return text;
}

/* Standalone SVGs of r: one per chart of its page (`charts`), each well-formed. */
static void check_svgs(const ms_report *r, size_t charts) {
    char dir[512];
    tu_tmp_path("rep-svg", "", dir, sizeof dir);
    ms_report_opts o;
    ms_report_opts_default(&o);
    ms_error err = {0};
    size_t nsvg = 0;
    assert_int_equal(ms_report_write_svgs(r, &o, dir, &nsvg, &err), MS_OK);
    assert_int_equal(nsvg, charts);
    char cmd[1200], out[64];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c 'import glob,sys,xml.etree.ElementTree as E; fs=glob.glob(sys.argv[1]+\"/*.svg\"); "
             "[E.parse(f) for f in fs]; print(len(fs))' %s",
             dir);
    if (have_python()) {
        assert_int_equal(tu_run(cmd, out, sizeof out), 0);
        assert_int_equal(atoi(out), (int)nsvg);
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    tu_run(cmd, NULL, 0);
}

static void test_report_sections(void **state) {
    (void)state;
    char sp[512], pp[512], mp[512];
    tu_tmp_path("rep-stats", ".json", sp, sizeof sp);
    tu_tmp_path("rep-place", ".json", pp, sizeof pp);
    tu_tmp_path("rep-sim", ".json", mp, sizeof mp);
    write_text(sp, stats_json);
    make_placement(pp);
    write_text(mp, sim_json);
    ms_report *r = NULL;
    ms_error err = {0};
    ms_report_kind k;
    assert_int_equal(ms_report_new(&r, &err), MS_OK);
    assert_int_equal(ms_report_add_file(r, sp, &k, &err), MS_OK);
    assert_int_equal(k, MS_REPORT_STATS);
    /* only stats: no sections that need runs */
    ms_status st;
    char *h = html_of(r, -1, &st, &err);
    assert_int_equal(st, MS_OK);
    assert_non_null(strstr(h, "id=\"experts\""));
    assert_null(strstr(h, "id=\"distributions\""));
    assert_null(strstr(h, "id=\"grid\""));
    free(h);
    assert_int_equal(ms_report_add_file(r, pp, &k, &err), MS_OK);
    assert_int_equal(k, MS_REPORT_PLACEMENT);
    assert_int_equal(ms_report_add_file(r, mp, &k, &err), MS_OK);
    assert_int_equal(k, MS_REPORT_SIM);
    h = html_of(r, 0, &st, &err);
    assert_int_equal(st, MS_OK);
    /* expected loads by hand: expert 0 (6) has two replicas: 3 each;
     * device 0 = 3 + 4 = 7, device 1 = 3 + 2 = 5 */
    assert_non_null(strstr(h, "<title>row 0, 0: 7</title>"));
    assert_non_null(strstr(h, "<title>row 0, 1: 5</title>"));
    assert_non_null(strstr(h, "max/mean 1.167")); /* 7 / 6 */
    /* worst batch: record 1 (imbalance 1.5), loads 3 and 1 */
    assert_non_null(strstr(h, "batch 1, layer 0; imbalance 1.500"));
    assert_non_null(strstr(h, "<title>row 0, 0: 3</title>"));
    /* summary numbers and the run's label */
    assert_non_null(strstr(h, "hand / least-loaded"));
    assert_non_null(strstr(h, "<td>123.5k</td>"));
    assert_non_null(strstr(h, "75.0%")); /* inter-row share 3000 / 4000 */
    for (const char *id = "summary\0grid\0distributions\0layers\0traffic\0experts\0"; *id; id += strlen(id) + 1) {
        char needle[64];
        snprintf(needle, sizeof needle, "<section id=\"%s\">", id);
        if (!strstr(h, needle)) fail_msg("section %s missing", id);
    }
    assert_null(strstr(h, "<script"));
    assert_int_equal(count(h, "<svg "), count(h, "</svg>"));
    /* same inputs, same bytes */
    char *h2 = html_of(r, 0, &st, &err);
    assert_string_equal(h, h2);
    free(h2);
    /* the layer option is checked */
    h2 = html_of(r, 5, &st, &err);
    assert_int_equal(st, MS_E_INPUT);
    assert_non_null(strstr(err.msg, "--layer 5"));
    free(h2);
    check_svgs(r, count(h, "<figure>"));
    free(h);
    ms_report_free(r);
    remove(sp);
    remove(pp);
    remove(mp);
}

static void test_report_kinds_and_errors(void **state) {
    (void)state;
    char p[512];
    tu_tmp_path("rep-kind", ".json", p, sizeof p);
    ms_report *r = NULL;
    ms_error err = {0};
    ms_report_kind k;
    assert_int_equal(ms_report_new(&r, &err), MS_OK);
    static const struct {
        const char *text;
        ms_report_kind kind;
    } cases[] = {
        {"{\"runs\": [{\"algorithm\": \"eplb\", \"route\": \"split\", \"summary\": {\"imbalance\": {\"mean\": 1.1}}},"
         "{\"algorithm\": \"x\", \"route\": \"split\", \"summary\": {\"imbalance\": {\"mean\": 1.3}}}]}",
         MS_REPORT_COMPARE},
        {"{\"energy_j\": 10, \"energy_per_token_j\": 0.5, \"avg_w\": 700, \"peak_w\": 900, \"parts\": {\"compute\": "
         "{\"j\": 5}, \"memory\": {\"j\": 2}, \"nvlink\": {\"j\": 1}, \"network\": {\"j\": 1}, \"static\": {\"j\": 0.5}, "
         "\"wait\": {\"j\": 0.5}}, \"timeline\": {\"start_s\": [0, 0.001, 0.002], \"avg_w\": [700, 900, 500]}}",
         MS_REPORT_POWER},
        {"{\"points\": [{\"sweep\": \"size\", \"total_params\": 1e9, \"train_site_w\": 1e5}, {\"sweep\": \"size\", "
         "\"total_params\": 1e10, \"train_site_w\": 1e6}], \"power_wall\": [{\"site_mw\": 10, \"compute_model\": "
         "{\"total_params\": 5e11}}]}",
         MS_REPORT_SCALE},
        {"{\"sweep\": {\"points\": 1}, \"columns\": [\"a\"], \"rows\": [{\"a\": 1}]}", MS_REPORT_SWEEP},
        {"{\"speed\": 3, \"name\": \"x\"}", MS_REPORT_OTHER},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_text(p, cases[i].text);
        assert_int_equal(ms_report_add_file(r, p, &k, &err), MS_OK);
        assert_int_equal(k, cases[i].kind);
    }
    ms_status st;
    char *h = html_of(r, -1, &st, &err);
    assert_int_equal(st, MS_OK);
    assert_non_null(strstr(h, "<section id=\"power\">"));
    assert_non_null(strstr(h, "10 MW limit: largest trainable 500B params"));
    assert_non_null(strstr(h, "Energy breakdown"));
    /* energy parts grouped: compute 5/10, memory 2/10, communication 2/10, idle 1/10 */
    assert_non_null(strstr(h, "<td class=\"r\">50.0%</td><td class=\"r\">20.0%</td><td class=\"r\">20.0%</td>"
                              "<td class=\"r\">10.0%</td>"));
    assert_non_null(strstr(h, "<section id=\"tables\">"));
    assert_non_null(strstr(h, "eplb / split"));
    free(h);
    /* errors name the file */
    write_text(p, "{not json");
    assert_int_equal(ms_report_add_file(r, p, &k, &err), MS_E_INPUT);
    assert_non_null(strstr(err.msg, p));
    write_text(p, "42");
    assert_int_equal(ms_report_add_file(r, p, &k, &err), MS_E_INPUT);
    write_text(p, "{\"per_layer\": [{\"expert_load\": [1, -2]}]}");
    assert_int_equal(ms_report_add_file(r, p, &k, &err), MS_E_INPUT);
    assert_non_null(strstr(err.msg, "expert_load[1]"));
    write_text(p, "{\"format\": \"moesim-placement\", \"devices\": 2}");
    assert_int_equal(ms_report_add_file(r, p, &k, &err), MS_E_INPUT);
    assert_int_equal(ms_report_add_file(r, "/nonexistent/x.json", &k, &err), MS_E_IO);
    assert_int_equal(ms_report_input_count(r), 5);
    ms_report_free(r);
    /* an empty report is refused */
    assert_int_equal(ms_report_new(&r, &err), MS_OK);
    h = html_of(r, -1, &st, &err);
    assert_int_equal(st, MS_E_INPUT);
    free(h);
    ms_report_free(r);
    remove(p);
}

/* ---------------------------------------------------------- replay */

/* A run of a hand-written replay: 6 steps of imbalance 1.1 .. 1.6, one
 * re-placement of 2 GB at each step of at[0..n), the split after step 3. */
static void replay_run(ms_sbuf *b, const char *policy, int every, int moves, double total_us, const int *at, int n) {
    ms_sbuf_printf(b, "%s{\"policy\": \"%s\", \"every\": {\"n\": %d, \"unit\": \"steps\"}, \"window\": {\"n\": %d, "
                      "\"unit\": \"steps\"}, ",
                   b->s && b->s[b->len - 1] == '}' ? ", " : "", policy, every, every);
    if (moves >= 0) ms_sbuf_printf(b, "\"max_moves\": %d, ", moves);
    ms_sbuf_printf(b, "\"migration\": \"stall\", \"summary\": {\"steps\": 6, \"replacements\": %d, \"replicas_moved\": "
                      "%d, \"bytes_moved\": %g, \"serve_us\": %g, \"migration_us\": %g, \"total_us\": %g, "
                      "\"imbalance\": 1.35, \"before\": {\"steps\": 3, \"imbalance\": 1.2}, \"after\": {\"steps\": 3, "
                      "\"imbalance\": 1.5}}, \"comparison\": {}, \"events\": [",
                   n, 10 * n, 2e9 * n, total_us - 10.0 * n, 10.0 * n, total_us);
    for (int i = 0; i < n; i++)
        ms_sbuf_printf(b, "%s{\"point\": %d, \"effective\": %d, \"replicas_moved\": 10, \"bytes\": 2e9}", i ? ", " : "",
                       at[i], at[i]);
    ms_sbuf_puts(b, "], \"steps\": [");
    for (int k = 0; k < 6; k++)
        ms_sbuf_printf(b, "%s{\"step\": %d, \"tokens\": 8, \"imbalance\": %.1f}", k ? ", " : "", k, 1.1 + 0.1 * k);
    ms_sbuf_puts(b, "]}");
}

/* Static, then every 2 and 4 steps: periodic-eplb best at 2 (1040 us against
 * 1050), incremental best at 4 (930 against 950); the oracle every 2; 8
 * re-placements in all. The trace label needs escaping. */
static char *replay_json(void) {
    static const int at2[2] = {2, 4}, at4[1] = {4};
    ms_sbuf b;
    ms_sbuf_init(&b);
    ms_sbuf_puts(&b, "{\"format\": \"moesim-replay\", \"command\": \"replay\", "
                     "\"trace\": {\"label\": \"a<b>&\\\"c\\\"\", \"requests\": 10, \"digest\": \"00000000000000bb\"}, "
                     "\"options\": {\"after_request\": 5}, \"runs\": [");
    replay_run(&b, "static", 2, -1, 1000, NULL, 0);
    replay_run(&b, "periodic-eplb", 2, -1, 1040, at2, 2);
    replay_run(&b, "incremental", 2, 8, 950, at2, 2);
    replay_run(&b, "oracle", 2, -1, 900, at2, 2);
    replay_run(&b, "periodic-eplb", 4, -1, 1050, at4, 1);
    replay_run(&b, "incremental", 4, 8, 930, at4, 1);
    ms_sbuf_puts(&b, "]}");
    assert_false(b.failed);
    return b.s;
}

/* text with the first `from` replaced by `to` (which must be there), new. */
static char *replaced(const char *text, const char *from, const char *to) {
    const char *p = strstr(text, from);
    assert_non_null(p);
    size_t a = (size_t)(p - text), nf = strlen(from), nt = strlen(to), n = strlen(text);
    char *out = malloc(n - nf + nt + 1);
    memcpy(out, text, a);
    memcpy(out + a, to, nt);
    memcpy(out + a + nt, p + nf, n - a - nf + 1);
    return out;
}

static void test_report_replay(void **state) {
    (void)state;
    char p[512];
    tu_tmp_path("rep-replay", ".json", p, sizeof p);
    char *json = replay_json();
    write_text(p, json);
    ms_report *r = NULL;
    ms_error err = {0};
    ms_report_kind k;
    assert_int_equal(ms_report_new(&r, &err), MS_OK);
    assert_int_equal(ms_report_add_file(r, p, &k, &err), MS_OK);
    assert_int_equal(k, MS_REPORT_REPLAY);
    assert_string_equal(ms_report_kind_name(k), "replay");
    ms_status st;
    char *h = html_of(r, -1, &st, &err);
    assert_int_equal(st, MS_OK);
    assert_non_null(strstr(h, "<section id=\"replay\">"));
    assert_non_null(strstr(h, "<section id=\"how-often\">"));
    assert_non_null(strstr(h, "Imbalance over time, re-placing every 2 steps"));
    assert_non_null(strstr(h, "Imbalance over time, re-placing every 4 steps"));
    assert_non_null(strstr(h, "Total time against the re-placement interval"));
    /* one mark per re-placement, one ring per policy's best interval */
    assert_int_equal(count(h, "class=\"xmark\""), 8);
    assert_int_equal(count(h, "class=\"ring\""), 2);
    assert_non_null(strstr(h, "best for periodic-eplb: every 2 steps, 1.04 ms"));
    assert_non_null(strstr(h, "best for incremental: every 4 steps, 0.93 ms"));
    assert_non_null(strstr(h, "Best interval: periodic-eplb every 2 steps (1.04 ms); incremental every 4 steps "
                              "(0.93 ms)."));
    assert_int_equal(count(h, "<td class=\"l\">best</td>"), 2);
    /* the split and the table: mean imbalance after it, saved against static */
    assert_non_null(strstr(h, ">from request 5</text>"));
    assert_non_null(strstr(h, "mean imbalance from request 5"));
    assert_non_null(strstr(h, "<td>0.07</td>")); /* incremental every 4 saves 1000 - 930 us */
    /* the label escaped everywhere */
    assert_null(strstr(h, "a<b>"));
    assert_non_null(strstr(h, "a&lt;b&gt;&amp;&quot;c&quot;"));
    assert_int_equal(count(h, "<svg "), count(h, "</svg>"));
    char *h2 = html_of(r, -1, &st, &err);
    assert_string_equal(h, h2); /* same input, same bytes */
    free(h2);
    check_svgs(r, 3);
    free(h);

    /* malformed replays are refused, naming the file and the key */
    static const struct {
        const char *from, *to, *msg;
    } bad[] = {
        {"\"policy\": \"oracle\"", "\"policy\": \"sometimes\"", "runs[3].policy"},
        {"\"total_us\": 1040", "\"total_us\": \"fast\"", "runs[1].summary.total_us"},
        {"\"replacements\": 1", "\"replacements\": 3", "runs[4] has 1 events but summary.replacements is 3"},
        {"\"label\": ", "\"name\": ", "trace.label"},
        {"\"every\": {\"n\": 4", "\"every\": {\"n\": 0", "runs[4].every"},
        {"\"max_moves\": 8, ", "", "runs[2].max_moves"},
        {"{\"step\": 1,", "{\"step\": 0,", "steps[1].step 0 does not follow"},
        {"\"effective\": 4", "\"effective\": 3", "takes effect (step 3) before its decision (step 4)"},
        {"\"runs\": [", "\"runs\": [], \"x\": [", "a replay without runs"},
        {"\"after_request\": 5", "\"after_request\": -5", "options.after_request"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *t = replaced(json, bad[i].from, bad[i].to);
        write_text(p, t);
        free(t);
        assert_int_equal(ms_report_add_file(r, p, &k, &err), MS_E_INPUT);
        if (!strstr(err.msg, bad[i].msg) || !strstr(err.msg, p)) fail_msg("case %zu: %s", i, err.msg);
    }
    assert_int_equal(ms_report_input_count(r), 1);
    free(json);
    ms_report_free(r);
    remove(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ticks_and_formats),
        cmocka_unit_test(test_line_chart),
        cmocka_unit_test(test_cdf_thinning),
        cmocka_unit_test(test_bar_and_heatmap),
        cmocka_unit_test(test_report_sections),
        cmocka_unit_test(test_report_kinds_and_errors),
        cmocka_unit_test(test_report_replay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
