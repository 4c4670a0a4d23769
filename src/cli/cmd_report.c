/* cmd_report.c - moesim report: one self-contained HTML page from results. */
#include <getopt.h>
#include <jansson.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "moesim/report.h"
#include "moesim/stats.h"

static const char *usage_text =
    "usage: moesim report RESULTS... -o report.html [options]\n"
    "\n"
    "Writes one self-contained HTML page (inline SVG charts and CSS; no scripts, no\n"
    "network; opens from disk) from the JSON results of the other commands. Each file's\n"
    "kind is detected from its keys; sections whose inputs are missing are left out:\n"
    "  moesim stats --format json      expert load profile, hot experts, skew per layer,\n"
    "                                  strongest co-activated pairs\n"
    "  moesim place -o FILE            device-grid heatmaps of expected load per device\n"
    "                                  (with stats), replica counts, objective vs bound\n"
    "  moesim simulate/compare --format json   summary table (mean/p99 imbalance, p99\n"
    "                                  layer time, tokens/s), CDFs of per-batch imbalance\n"
    "                                  and layer time, per-layer charts, traffic inside vs\n"
    "                                  between rows, time split, worst-batch device grid\n"
    "  moesim power / scale --format json      power timeline, energy breakdown, scaling\n"
    "                                  curve with its power wall\n"
    "  moesim sweep -o FILE.json       the sweep's rows as a table\n"
    "  moesim replay --format json     imbalance per step with each policy's re-placements\n"
    "                                  marked and the bytes they copied; total time against\n"
    "                                  the re-placement interval, best interval marked\n"
    "A trace (directory of .npz or .npz files) may be given too: its statistics are\n"
    "computed with full co-activation matrices.\n"
    "\n"
    "options:\n"
    "  -o FILE            the HTML page (default: stdout), written atomically\n"
    "  --svg-dir DIR      also write every chart as DIR/NN-name.svg\n"
    "  --layer N          layer of the device grids, load profile and co-activation\n"
    "                     matrix (default: the layer with the most skewed expert loads)\n"
    "  --title TEXT       page title (default \"moesim report\")\n"
    "  --coact N          hottest experts in the co-activation matrix (default 48)\n"
    "  --experts N        routed experts per layer of trace inputs (default: from files)\n"
    "  --phase P          phase of trace inputs: all (default), prefill, decode\n"
    "  --format F         what is printed after writing -o FILE: table (default), json, csv\n"
    "  --quiet / --progress   progress bar off / always\n"
    "\n"
    "example:\n"
    "  moesim stats TRACE --format json -o stats.json\n"
    "  moesim place TRACE --algo eplb --rows 2 --cols 8 --slots 6 -o eplb.json\n"
    "  moesim report stats.json eplb.json sim.json -o report.html --svg-dir charts\n";

static bool is_trace(const char *path) {
    struct stat sb;
    size_t n = strlen(path);
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) return true;
    return n > 4 && strcmp(path + n - 4, ".npz") == 0;
}

int cmd_report(int argc, char **argv) {
    static const struct option longopts[] = {
        {"svg-dir", required_argument, 0, 'S'}, {"layer", required_argument, 0, 'l'},
        {"title", required_argument, 0, 'T'},   {"coact", required_argument, 0, 'c'},
        {"experts", required_argument, 0, 'e'}, {"phase", required_argument, 0, 'P'},
        {"format", required_argument, 0, 'f'},  {"quiet", no_argument, 0, 'q'},
        {"progress", no_argument, 0, 'p'},      {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *cmd = "report";
    ms_report_opts ro;
    ms_report_opts_default(&ro);
    cli_trace_opts to = {0};
    ms_stats_opts so;
    ms_stats_opts_default(&so);
    so.coact = true;
    cli_format fmt = CLI_TABLE;
    const char *outpath = NULL, *svgdir = NULL;
    uint32_t u;
    ms_error err = {0};
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'S': svgdir = optarg; break;
        case 'l': if (cli_parse_u32(cmd, "--layer", optarg, &u)) return 2; ro.layer = u; break;
        case 'T': ro.title = optarg; break;
        case 'c':
            if (cli_parse_u32(cmd, "--coact", optarg, &ro.coact_max)) return 2;
            if (ro.coact_max < 2 || ro.coact_max > 512) return cli_usage(cmd, "--coact must be 2..512");
            break;
        case 'e': if (cli_parse_u32(cmd, "--experts", optarg, &to.n_experts)) return 2; break;
        case 'P': if (ms_phase_parse(optarg, &so.phase, &err) != MS_OK) return cli_usage(cmd, "%s", err.msg); break;
        case 'f': if (cli_parse_format(cmd, optarg, &fmt)) return 2; break;
        case 'o': outpath = optarg; break;
        case 'q': to.progress = -1; break;
        case 'p': to.progress = 1; break;
        case 'h': cli_print_help(usage_text); return 0;
        default: return cli_usage(cmd, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc) return cli_usage(cmd, "no results given");
    ms_report *r = NULL;
    if (ms_report_new(&r, &err) != MS_OK) return cli_fail(cmd, &err);
    int rc = 0;
    int nin = argc - optind;
    ms_report_kind *kinds = ms_calloc_array((size_t)nin, sizeof *kinds, &err);
    if (!kinds) rc = cli_fail(cmd, &err);
    for (int i = 0; !rc && i < nin; i++) {
        char *path = argv[optind + i];
        if (is_trace(path)) {
            ms_trace *t = NULL;
            ms_stats *s = NULL;
            rc = cli_load_trace(cmd, &path, 1, &to, &t);
            if (!rc && ms_stats_compute(t, &so, &s, &err) != MS_OK) rc = cli_fail(cmd, &err);
            if (!rc && ms_report_add_stats(r, s, path, &err) != MS_OK) rc = cli_fail(cmd, &err);
            kinds[i] = MS_REPORT_STATS;
            ms_stats_free(s);
            ms_trace_free(t);
        } else if (ms_report_add_file(r, path, &kinds[i], &err) != MS_OK) {
            rc = cli_fail(cmd, &err);
        }
    }
    ms_afile f = {0};
    if (!rc) rc = cli_open_output(cmd, outpath, &f);
    if (!rc) {
        if (ms_report_write_html(r, &ro, f.fp, &err) != MS_OK) {
            ms_afile_abort(&f);
            rc = cli_fail(cmd, &err);
        } else {
            rc = cli_commit_output(cmd, &f);
        }
    }
    size_t nsvg = 0;
    if (!rc && svgdir && ms_report_write_svgs(r, &ro, svgdir, &nsvg, &err) != MS_OK) rc = cli_fail(cmd, &err);
    if (!rc && outpath && strcmp(outpath, "-") != 0) {
        if (fmt == CLI_JSON) {
            json_t *o = json_object(), *a = json_array();
            json_object_set_new(o, "report", json_string(outpath));
            json_object_set_new(o, "svg_files", json_integer((json_int_t)nsvg));
            for (int i = 0; i < nin; i++)
                json_array_append_new(a, json_pack("{s:s, s:s}", "path", argv[optind + i], "kind",
                                                   ms_report_kind_name(kinds[i])));
            json_object_set_new(o, "inputs", a);
            json_dumpf(o, stdout, JSON_INDENT(1));
            printf("\n");
            json_decref(o);
        } else if (fmt == CLI_CSV) {
            printf("path,kind\n");
            for (int i = 0; i < nin; i++) printf("%s,%s\n", argv[optind + i], ms_report_kind_name(kinds[i]));
        } else {
            for (int i = 0; i < nin; i++) printf("  %-10s %s\n", ms_report_kind_name(kinds[i]), argv[optind + i]);
            printf("report written to %s", outpath);
            if (svgdir) printf(" (%zu charts also in %s/)", nsvg, svgdir);
            printf("\n");
        }
    }
    ms_free(kinds);
    ms_report_free(r);
    return rc;
}
