/* cmd_stats.c - moesim stats: expert load statistics of a trace. */
#include <getopt.h>
#include <math.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "moesim/stats.h"

static const char *usage_text =
    "usage: moesim stats TRACE... [options]\n"
    "\n"
    "Per layer and phase: expert load counts (token-expert assignments), max/mean and\n"
    "min/mean ratios, coefficient of variation, share of the hottest 10%% of experts\n"
    "(rounded up), never-chosen experts, per-window variability (mean, std, p95 of\n"
    "each expert's load over windows of N consecutive tokens) and the co-activation\n"
    "matrix (tokens choosing both experts) with its strongest pairs.\n"
    "\n"
    "options:\n"
    "  --phase P          all (default), prefill (prompt rows) or decode (output rows)\n"
    "  --window N         tokens per window (default 1024; 0 = no windows)\n"
    "  --pairs N          strongest co-activated pairs to list per layer (default 10)\n"
    "  --no-coact         skip the co-activation matrix\n"
    "  --vs TRACE2        compare with a second trace (same layers/experts/top-k):\n"
    "                     per layer max/mean of both and the total variation distance\n"
    "                     between their normalised load vectors\n"
    "  --loads-csv FILE   also write the load matrix [layers x experts] as CSV (EPLB's\n"
    "                     weight input)\n"
    "  --experts N        routed experts per layer (default: from the files)\n"
    "  --threads N        worker threads (default: all cores)\n"
    "  --format F         table (default), json or csv (one line per layer and expert)\n"
    "  -o FILE            write there (atomically) instead of stdout\n"
    "  --quiet / --progress   progress bar off / always\n"
    "\n"
    "examples:\n"
    "  moesim stats ../shared/data/deepseek-v2-lite-puffin\n"
    "  moesim stats ../shared/data/llama4-maverick-mmlu --experts 128 --phase decode --format json -o s.json\n";

static int compare(const ms_stats *a, const ms_stats *b, const char *la, const char *lb, FILE *fp) {
    fprintf(fp, "\n%5s %12s %12s %10s\n", "layer", "max/mean A", "max/mean B", "TV dist");
    double sum = 0;
    for (uint32_t l = 0; l < a->n_layers; l++) {
        double ta = 0, tb = 0, tv = 0;
        for (uint32_t e = 0; e < a->n_experts; e++) {
            ta += (double)a->layers[l].expert_load[e];
            tb += (double)b->layers[l].expert_load[e];
        }
        for (uint32_t e = 0; e < a->n_experts; e++)
            tv += fabs((double)a->layers[l].expert_load[e] / ta - (double)b->layers[l].expert_load[e] / tb);
        tv /= 2;
        sum += tv;
        fprintf(fp, "%5u %12.3f %12.3f %10.4f\n", l, a->layers[l].max_mean_ratio, b->layers[l].max_mean_ratio, tv);
    }
    fprintf(fp, "A = %s\nB = %s\nmean total variation distance: %.4f\n", la, lb, sum / a->n_layers);
    return 0;
}

int cmd_stats(int argc, char **argv) {
    static const struct option longopts[] = {
        {"phase", required_argument, 0, 'P'},   {"window", required_argument, 0, 'w'},
        {"pairs", required_argument, 0, 'n'},   {"no-coact", no_argument, 0, 'C'},
        {"vs", required_argument, 0, 'v'},      {"loads-csv", required_argument, 0, 'L'},
        {"experts", required_argument, 0, 'e'}, {"threads", required_argument, 0, 't'},
        {"format", required_argument, 0, 'f'},  {"quiet", no_argument, 0, 'q'},
        {"progress", no_argument, 0, 'p'},      {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *cmd = "stats";
    cli_trace_opts to = {0};
    ms_stats_opts so;
    ms_stats_opts_default(&so);
    cli_format fmt = CLI_TABLE;
    const char *outpath = NULL, *vs = NULL, *loads_csv = NULL;
    uint32_t u;
    ms_error err = {0};
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'P': if (ms_phase_parse(optarg, &so.phase, &err) != MS_OK) return cli_usage(cmd, "%s", err.msg); break;
        case 'w': if (cli_parse_u32(cmd, "--window", optarg, &so.window)) return 2; break;
        case 'n': if (cli_parse_u32(cmd, "--pairs", optarg, &so.top_pairs)) return 2; break;
        case 'C': so.coact = false; break;
        case 'v': vs = optarg; break;
        case 'L': loads_csv = optarg; break;
        case 'e': if (cli_parse_u32(cmd, "--experts", optarg, &to.n_experts)) return 2; break;
        case 't': if (cli_parse_u32(cmd, "--threads", optarg, &u)) return 2; to.threads = so.threads = (int)u; break;
        case 'f': if (cli_parse_format(cmd, optarg, &fmt)) return 2; break;
        case 'o': outpath = optarg; break;
        case 'q': to.progress = -1; break;
        case 'p': to.progress = 1; break;
        case 'h': cli_print_help(usage_text); return 0;
        default: return cli_usage(cmd, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc) return cli_usage(cmd, "no trace given");
    if (so.top_pairs > 100000) return cli_usage(cmd, "--pairs %u is too many", so.top_pairs);
    ms_trace *t = NULL, *t2 = NULL;
    ms_stats *s = NULL, *s2 = NULL;
    ms_afile f = {0};
    int rc = cli_load_trace(cmd, argv + optind, argc - optind, &to, &t);
    if (!rc && vs) {
        char *vp[1] = {(char *)vs};
        rc = cli_load_trace(cmd, vp, 1, &to, &t2);
        if (!rc && ms_trace_check_compatible(t, t2, &err) != MS_OK) rc = cli_fail(cmd, &err);
    }
    if (!rc && ms_stats_compute(t, &so, &s, &err) != MS_OK) rc = cli_fail(cmd, &err);
    if (!rc && t2 && ms_stats_compute(t2, &so, &s2, &err) != MS_OK) rc = cli_fail(cmd, &err);
    if (!rc && loads_csv) {
        ms_loads *l = NULL;
        if (ms_stats_to_loads(s, &l, &err) != MS_OK || ms_loads_write_csv(l, loads_csv, &err) != MS_OK)
            rc = cli_fail(cmd, &err);
        ms_loads_free(l);
    }
    if (!rc) rc = cli_open_output(cmd, outpath, &f);
    if (!rc) {
        ms_status st = fmt == CLI_JSON  ? ms_stats_write_json(s, f.fp, &err)
                       : fmt == CLI_CSV ? ms_stats_write_csv(s, f.fp, &err)
                                        : ms_stats_write_table(s, f.fp, &err);
        if (st == MS_OK && s2 && fmt == CLI_TABLE) compare(s, s2, t->label, t2->label, f.fp);
        if (st != MS_OK) {
            ms_afile_abort(&f);
            rc = cli_fail(cmd, &err);
        } else {
            rc = cli_commit_output(cmd, &f);
        }
    }
    ms_stats_free(s);
    ms_stats_free(s2);
    ms_trace_free(t);
    ms_trace_free(t2);
    return rc;
}
