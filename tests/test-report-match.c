/* test-report-match.c - the report's summary matches power results to
 * simulated runs by placement file and route (moesim power's labels, or
 * explicit keys), never across hardware or batch modes; and compare files
 * with per-(batch, layer) records give the distributions and worst-batch
 * heatmaps. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moesim/report.h"

static void write_text(const char *path, const char *text) { tu_write_file(path, text, strlen(text)); }

static char *html_of(ms_report *r) {
    ms_report_opts o;
    ms_report_opts_default(&o);
    char *text = NULL;
    size_t len = 0;
    ms_error err = {0};
    FILE *fp = open_memstream(&text, &len);
    ms_status st = ms_report_write_html(r, &o, fp, &err);
    fclose(fp);
    if (st != MS_OK) fail_msg("%s", err.msg);
    return text;
}

/* The energy-per-token cell (7th column) of the summary row labelled lab. */
static void energy_cell(const char *html, const char *lab, char *out, size_t len) {
    char key[200];
    snprintf(key, sizeof key, "<tr><td class=\"l\">%s</td>", lab);
    const char *p = strstr(html, key);
    if (!p) fail_msg("no summary row '%s'", lab);
    p += strlen(key);
    for (int i = 0; i < 5; i++) {
        p = strstr(p, "</td>");
        assert_non_null(p);
        p += 5;
    }
    assert_true(strncmp(p, "<td>", 4) == 0);
    p += 4;
    const char *e = strstr(p, "</td>");
    assert_non_null(e);
    snprintf(out, len, "%.*s", (int)(e - p), p);
}

static void expect_energy(const char *html, const char *lab, const char *want) {
    char got[64];
    energy_cell(html, lab, got, sizeof got);
    if (strcmp(got, want) != 0) fail_msg("%s: energy per token '%s', wanted '%s'", lab, got, want);
}

#define SUMMARY(imb)                                                                                                  \
    "\"summary\": {\"imbalance\": {\"mean\": " imb ", \"p50\": 1, \"p95\": 1, \"p99\": 1, \"max\": 1}, "              \
    "\"layer_us\": {\"mean\": 10, \"p50\": 10, \"p95\": 10, \"p99\": 10, \"max\": 10}}"

/* A compare file of 3 placements x 2 routes (as moesim compare writes it:
 * placement path, algorithm, route on each run; hw and batch in options). */
static const char *COMPARE =
    "{\"command\": \"compare\", \"trace\": {\"digest\": \"00000000000000ab\"}, \"options\": {\"cost_model\": "
    "\"roofline\", \"batch\": \"prefill\", \"hw\": \"h100-sxm\"}, \"runs\": ["
    "{\"placement\": \"out/a.json\", \"algorithm\": \"alga\", \"route\": \"round-robin\", " SUMMARY("1.1") "},"
    "{\"placement\": \"out/a.json\", \"algorithm\": \"alga\", \"route\": \"least-loaded\", " SUMMARY("1.2") "},"
    "{\"placement\": \"out/b.json\", \"algorithm\": \"algb\", \"route\": \"round-robin\", " SUMMARY("1.3") "},"
    "{\"placement\": \"out/b.json\", \"algorithm\": \"algb\", \"route\": \"least-loaded\", " SUMMARY("1.4") "},"
    "{\"placement\": \"out/c.json\", \"algorithm\": \"algc\", \"route\": \"round-robin\", " SUMMARY("1.5") "},"
    "{\"placement\": \"out/c.json\", \"algorithm\": \"algc\", \"route\": \"least-loaded\", " SUMMARY("1.6") "}]}";

/* moesim power's JSON: b first, then a, least-loaded; c on other hardware;
 * the file of a given by another path (same name). */
static const char *POWER =
    "{\"command\": \"power\", \"mode\": \"trace\", \"runs\": ["
    "{\"energy_j\": 10, \"energy_per_token_j\": 0.5, \"label\": \"out/b.json (algb, route least-loaded, prefill "
    "batches, hw h100-sxm, model deepseek-v3)\"},"
    "{\"energy_j\": 10, \"energy_per_token_j\": 0.25, \"label\": \"./elsewhere/a.json (alga, route least-loaded, "
    "prefill batches, hw h100-sxm, model deepseek-v3)\"},"
    "{\"energy_j\": 10, \"energy_per_token_j\": 0.125, \"label\": \"out/c.json (algc, route least-loaded, prefill "
    "batches, hw a100, model deepseek-v3)\"},"
    "{\"energy_j\": 10, \"energy_per_token_j\": 0.0625, \"label\": \"out/c.json (algc, route round-robin, decode "
    "batches, hw h100-sxm, model deepseek-v3)\"}]}";

static void test_match_by_file_and_route(void **state) {
    (void)state;
    char cpath[512], ppath[512];
    tu_tmp_path("match-cmp", ".json", cpath, sizeof cpath);
    tu_tmp_path("match-pow", ".json", ppath, sizeof ppath);
    write_text(cpath, COMPARE);
    write_text(ppath, POWER);
    ms_report *r = NULL;
    ms_error err = {0};
    ms_report_kind k;
    assert_int_equal(ms_report_new(&r, &err), MS_OK);
    assert_int_equal(ms_report_add_file(r, cpath, &k, &err), MS_OK);
    assert_int_equal(k, MS_REPORT_COMPARE);
    assert_int_equal(ms_report_add_file(r, ppath, &k, &err), MS_OK);
    assert_int_equal(k, MS_REPORT_POWER);
    char *h = html_of(r);
    expect_energy(h, "algb / least-loaded", "0.5");
    expect_energy(h, "alga / least-loaded", "0.25"); /* same file name, the only power result with it */
    expect_energy(h, "alga / round-robin", "n/a");   /* no power run with that route */
    expect_energy(h, "algb / round-robin", "n/a");
    expect_energy(h, "algc / least-loaded", "n/a"); /* other hardware */
    expect_energy(h, "algc / round-robin", "n/a");  /* decode batches, not prefill */
    free(h);
    ms_report_free(r);

    /* two power results for files named a.json in different directories:
     * the exact path decides, the name alone does not */
    char p2[512];
    tu_tmp_path("match-pow2", ".json", p2, sizeof p2);
    write_text(p2, "{\"runs\": [{\"energy_per_token_j\": 0.75, \"energy_j\": 1, \"label\": \"x/a.json (alga, route "
                   "least-loaded, prefill batches, hw h100-sxm, model m)\"}, {\"energy_per_token_j\": 0.375, "
                   "\"energy_j\": 1, \"label\": \"y/a.json (alga, route least-loaded, prefill batches, hw h100-sxm, "
                   "model m)\"}, {\"energy_per_token_j\": 2, \"energy_j\": 1, \"placement\": \"out/a.json\", "
                   "\"route\": \"round-robin\"}]}");
    assert_int_equal(ms_report_new(&r, &err), MS_OK);
    assert_int_equal(ms_report_add_file(r, cpath, &k, &err), MS_OK);
    assert_int_equal(ms_report_add_file(r, p2, &k, &err), MS_OK);
    h = html_of(r);
    expect_energy(h, "alga / least-loaded", "n/a"); /* ambiguous by name */
    expect_energy(h, "alga / round-robin", "2");    /* explicit keys */
    free(h);
    ms_report_free(r);
    remove(cpath);
    remove(ppath);
    remove(p2);
}

/* A simulate file and one power result: the old rule (only one of each)
 * still holds, and a simulate file's placement.file + options.route match. */
static void test_simulate_and_power(void **state) {
    (void)state;
    char spath[512], ppath[512];
    tu_tmp_path("match-sim", ".json", spath, sizeof spath);
    tu_tmp_path("match-pow", ".json", ppath, sizeof ppath);
    write_text(spath, "{\"command\": \"simulate\", \"placement\": {\"file\": \"p.json\", \"algorithm\": \"hand\"}, "
                      "\"options\": {\"route\": \"least-loaded\", \"hw\": \"h100-sxm\", \"batch\": \"prefill\"}, " SUMMARY(
                          "1.25") "}");
    write_text(ppath, "{\"runs\": [{\"energy_per_token_j\": 0.03125, \"energy_j\": 1, \"label\": \"q.json (hand, "
                      "route least-loaded, prefill batches, hw h100-sxm, model m)\"}, {\"energy_per_token_j\": 4, "
                      "\"energy_j\": 1, \"label\": \"p.json (hand, route least-loaded, prefill batches, hw "
                      "h100-sxm, model m)\"}]}");
    ms_report *r = NULL;
    ms_error err = {0};
    assert_int_equal(ms_report_new(&r, &err), MS_OK);
    assert_int_equal(ms_report_add_file(r, spath, NULL, &err), MS_OK);
    assert_int_equal(ms_report_add_file(r, ppath, NULL, &err), MS_OK);
    char *h = html_of(r);
    expect_energy(h, "hand / least-loaded", "4");
    free(h);
    ms_report_free(r);
    remove(spath);
    remove(ppath);
}

/* compare --details: records on every run give the CDFs and one worst-batch
 * heatmap per run, on the grid the run's "cluster" gives. */
static void test_compare_records(void **state) {
    (void)state;
    char cpath[512];
    tu_tmp_path("match-det", ".json", cpath, sizeof cpath);
    write_text(cpath,
               "{\"command\": \"compare\", \"options\": {\"batch\": \"prefill\"}, \"runs\": ["
               "{\"placement\": \"a.json\", \"algorithm\": \"alga\", \"cluster\": {\"rows\": 2, \"cols\": 1, "
               "\"slots_per_device\": 1}, \"route\": \"least-loaded\", " SUMMARY("1.2") ", \"records\": ["
               "{\"batch\": 0, \"layer\": 0, \"imbalance\": 1.5, \"layer_us\": 7, \"device_load\": [3, 1]},"
               "{\"batch\": 1, \"layer\": 0, \"imbalance\": 1.2, \"layer_us\": 5, \"device_load\": [6, 4]}]},"
               "{\"placement\": \"b.json\", \"algorithm\": \"algb\", \"cluster\": {\"rows\": 2, \"cols\": 1, "
               "\"slots_per_device\": 1}, \"route\": \"least-loaded\", " SUMMARY("1.1") ", \"records\": ["
               "{\"batch\": 0, \"layer\": 0, \"imbalance\": 1.0, \"layer_us\": 4, \"device_load\": [2, 2]},"
               "{\"batch\": 1, \"layer\": 0, \"imbalance\": 1.25, \"layer_us\": 6, \"device_load\": [5, 3]}]}]}");
    ms_report *r = NULL;
    ms_error err = {0};
    ms_report_kind k;
    assert_int_equal(ms_report_new(&r, &err), MS_OK);
    assert_int_equal(ms_report_add_file(r, cpath, &k, &err), MS_OK);
    assert_int_equal(k, MS_REPORT_COMPARE);
    char *h = html_of(r);
    assert_non_null(strstr(h, "<section id=\"distributions\">"));
    assert_non_null(strstr(h, "<section id=\"grid\">"));
    assert_non_null(strstr(h, "alga / least-loaded: worst batch"));
    assert_non_null(strstr(h, "algb / least-loaded: worst batch"));
    /* the worst (batch, layer): a's batch 0 (1.5), b's batch 1 (1.25) */
    assert_non_null(strstr(h, "batch 0, layer 0; imbalance 1.500"));
    assert_non_null(strstr(h, "batch 1, layer 0; imbalance 1.250"));
    /* the grid is 2 rows x 1 column: row labels 0 and 1, one column */
    assert_non_null(strstr(h, "row 1"));
    free(h);
    ms_report_free(r);
    remove(cpath);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_by_file_and_route),
        cmocka_unit_test(test_simulate_and_power),
        cmocka_unit_test(test_compare_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
