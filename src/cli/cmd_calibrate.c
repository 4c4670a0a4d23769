/* cmd_calibrate.c - moesim calibrate: measure this machine's MoE operator
 * (effective FLOP/s against tokens per expert, sgemm peak, memory copy
 * bandwidth) and write a hardware preset the simulator reads. */
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "moesim/moe.h"

#define CMD "calibrate"
#define MAX_POINTS 64

static const char *usage_text =
    "usage: moesim calibrate [-o FILE] [options]\n"
    "\n"
    "Measures this machine and writes a hardware preset (presets/hw layout, every\n"
    "figure {\"value\", \"source\"}, \"source\": \"measured by moesim calibrate\"):\n"
    "  peak_tflops_*   the best square cblas_sgemm (fp32; no faster CPU GEMM here)\n"
    "  mfu             optimized MoE forward / peak at the largest tokens-per-expert\n"
    "  hbm_tb_s        memcpy bandwidth; nvlink/nic figures stand in with it (one host)\n"
    "  efficiency_curve  tokens_per_expert[], tflops[], efficiency[], forward_ms[]:\n"
    "                  what a small batch really costs on this machine\n"
    "plus machine, BLAS, threads and the date. Load it with --hw FILE, or write it to\n"
    "presets/hw/NAME.json and load it with --hw NAME; the roofline model then prices\n"
    "each expert instance at the curve's efficiency for its token count.\n"
    "\n"
    "options:\n"
    "  --shape S              deepseek-v3 (default), seed, mixtral or HxI\n"
    "  --tokens-per-expert L  default 1..1024 (doubling)\n"
    "  --experts E            experts in the measured layer (default 2)\n"
    "  --top-k K              default min(2, E)\n"
    "  --dtype D              bf16 (default: serving storage) or fp32\n"
    "  --threads N            default: all cores\n"
    "  --threading M          auto (default), tiles or blas\n"
    "  --name NAME            preset name (default local)\n"
    "  --peak-size N          square sgemm size for the peak (default 2048)\n"
    "  --min-time S  --reps N  repetitions per point (0.2 s, 5 runs; best counts)\n"
    "  --clock C              wall (default) or cpu: process CPU seconds / threads, an\n"
    "                         estimate of idle-machine time when others load the cores\n"
    "  --format F             json (default: the preset), table or csv (the curve)\n"
    "  -o FILE                write there (atomically) instead of stdout\n"
    "  --quiet | --progress   progress bar and summary off / bar always\n"
    "\n"
    "example:\n"
    "  moesim calibrate -o presets/hw/local.json\n"
    "  moesim simulate TRACE --placement p.json --cost-model roofline --hw local\n";

int cmd_calibrate(int argc, char **argv) {
    enum {
        O_SHAPE = 256, O_LIST, O_EXPERTS, O_TOPK, O_DTYPE, O_THREADS, O_THREADING, O_NAME, O_PEAK, O_MINTIME,
        O_REPS, O_FORMAT, O_QUIET, O_PROGRESS, O_CLOCK
    };
    static const struct option longopts[] = {
        {"shape", required_argument, 0, O_SHAPE},     {"tokens-per-expert", required_argument, 0, O_LIST},
        {"experts", required_argument, 0, O_EXPERTS}, {"top-k", required_argument, 0, O_TOPK},
        {"dtype", required_argument, 0, O_DTYPE},     {"threads", required_argument, 0, O_THREADS},
        {"threading", required_argument, 0, O_THREADING}, {"name", required_argument, 0, O_NAME},
        {"peak-size", required_argument, 0, O_PEAK},  {"min-time", required_argument, 0, O_MINTIME},
        {"reps", required_argument, 0, O_REPS},       {"format", required_argument, 0, O_FORMAT},
        {"quiet", no_argument, 0, O_QUIET},           {"progress", no_argument, 0, O_PROGRESS},
        {"clock", required_argument, 0, O_CLOCK},     {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *shape = "deepseek-v3", *list = "1..1024", *name = "local", *out = NULL;
    uint32_t experts = 2, top_k = 0, threads = 0, peak_n = 2048, reps = 5;
    double min_time = 0.2;
    ms_moe_dtype dtype = MS_MOE_BF16;
    ms_moe_threading threading = MS_MOE_THREADS_AUTO;
    cli_format fmt = CLI_JSON;
    int progress = 0;
    bool cpu_clock = false;
    ms_error err = {0};
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
        switch (c) {
        case O_SHAPE: shape = optarg; break;
        case O_LIST: list = optarg; break;
        case O_EXPERTS: if (cli_parse_u32(CMD, "--experts", optarg, &experts)) return 2; break;
        case O_TOPK: if (cli_parse_u32(CMD, "--top-k", optarg, &top_k)) return 2; break;
        case O_DTYPE:
            if (ms_moe_dtype_parse(optarg, &dtype, &err) != MS_OK) return cli_usage(CMD, "%s", err.msg);
            break;
        case O_THREADS: if (cli_parse_u32(CMD, "--threads", optarg, &threads)) return 2; break;
        case O_THREADING:
            if (ms_moe_threading_parse(optarg, &threading, &err) != MS_OK) return cli_usage(CMD, "%s", err.msg);
            break;
        case O_NAME: name = optarg; break;
        case O_PEAK: if (cli_parse_u32(CMD, "--peak-size", optarg, &peak_n)) return 2; break;
        case O_MINTIME: if (cli_parse_double(CMD, "--min-time", optarg, &min_time)) return 2; break;
        case O_REPS: if (cli_parse_u32(CMD, "--reps", optarg, &reps)) return 2; break;
        case O_FORMAT: if (cli_parse_format(CMD, optarg, &fmt)) return 2; break;
        case O_CLOCK:
            if (strcmp(optarg, "wall") == 0) cpu_clock = false;
            else if (strcmp(optarg, "cpu") == 0) cpu_clock = true;
            else return cli_usage(CMD, "--clock must be wall or cpu, got '%s'", optarg);
            break;
        case 'o': out = optarg; break;
        case O_QUIET: progress = -1; break;
        case O_PROGRESS: progress = 1; break;
        case 'h': cli_print_help(usage_text); return 0;
        default: return cli_usage(CMD, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage(CMD, "unexpected argument '%s'", argv[optind]);
    if (threads > 1024) return cli_usage(CMD, "--threads %u is too many", threads);
    if (peak_n == 0 || peak_n > 16384) return cli_usage(CMD, "--peak-size must be 1..16384");
    if (!(min_time >= 0 && min_time <= 600)) return cli_usage(CMD, "--min-time must be 0..600 seconds");
    if (reps == 0 || reps > 1000) return cli_usage(CMD, "--reps must be 1..1000");
    if (!*name || strlen(name) > 63) return cli_usage(CMD, "--name must be 1..63 characters");

    ms_moe_curve_opts o;
    ms_moe_curve_opts_default(&o);
    if (ms_moe_config_preset(shape, &o.cfg, &err) != MS_OK) return cli_fail(CMD, &err);
    uint32_t pts[MAX_POINTS], n_pts;
    if (ms_moe_parse_list(list, pts, MAX_POINTS, &n_pts, &err) != MS_OK) return cli_fail(CMD, &err);
    o.cfg.n_experts = experts;
    o.cfg.top_k = top_k ? top_k : (experts < 2 ? experts : 2);
    o.cfg.router = MS_MOE_ROUTER_SOFTMAX;
    o.cfg.n_shared = 0;
    o.cfg.dtype = dtype;
    if (ms_moe_config_check(&o.cfg, &err) != MS_OK) return cli_fail(CMD, &err);
    o.tokens_per_expert = pts;
    o.n_points = n_pts;
    o.threads = (int)threads;
    o.threading = threading;
    o.min_seconds = min_time;
    o.max_reps = (int)reps;
    o.cpu_clock = cpu_clock;
    int nth = threads ? (int)threads : ms_thread_count();

    double peak = 0, bw = 0;
    if (ms_moe_measure_peak(peak_n, nth, (int)reps, cpu_clock, &peak, &err) != MS_OK) return cli_fail(CMD, &err);
    if (ms_moe_measure_copy_bw(256, 3, cpu_clock, &bw, &err) != MS_OK) return cli_fail(CMD, &err);
    ms_moe_point *res = ms_alloc_array(n_pts, sizeof *res, &err);
    if (!res) return cli_fail(CMD, &err);
    cli_progress bar;
    cli_progress_init(&bar, "calibrate", progress);
    o.progress = cli_progress_fn;
    o.progress_ctx = &bar;
    ms_status st = ms_moe_measure_curve(&o, res, &err);
    cli_progress_done(&bar);
    /* the peak again after the curve: the better of the two counts, so a
     * moment of contention does not shrink the yardstick */
    double peak2 = 0;
    if (st == MS_OK) st = ms_moe_measure_peak(peak_n, nth, (int)reps, cpu_clock, &peak2, &err);
    if (peak2 > peak) peak = peak2;
    if (st != MS_OK) {
        ms_free(res);
        return cli_fail(CMD, &err);
    }
    char machine[512], blas[256], date[32];
    ms_moe_machine_describe(machine, sizeof machine);
    ms_moe_blas_describe(blas, sizeof blas);
    time_t now = time(NULL);
    struct tm tmv;
    gmtime_r(&now, &tmv);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tmv);
    double mem_gb = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE) / 1e9;
    ms_moe_calib_info info = {name, machine, blas,   date, shape,  &o.cfg,   nth,
                              threading, peak, peak_n, bw, mem_gb, cpu_clock};

    ms_afile f;
    int rc = cli_open_output(CMD, out, &f);
    if (rc) {
        ms_free(res);
        return rc;
    }
    if (fmt == CLI_JSON) {
        json_t *j = ms_moe_calib_json(&info, res, n_pts);
        if (!j) {
            ms_afile_abort(&f);
            ms_free(res);
            ms_error_set(&err, MS_E_NOMEM, "out of memory building the preset");
            return cli_fail(CMD, &err);
        }
        json_dumpf(j, f.fp, JSON_INDENT(1) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
        fputc('\n', f.fp);
        json_decref(j);
    } else if (fmt == CLI_CSV) {
        fprintf(f.fp, "tokens_per_expert,forward_ms,tflops,efficiency\n");
        for (uint32_t i = 0; i < n_pts; i++)
            fprintf(f.fp, "%u,%.6f,%.6f,%.4f\n", res[i].tokens_per_expert, res[i].opt_s * 1e3, res[i].gflops / 1e3,
                    res[i].gflops / peak);
    } else {
        fprintf(f.fp, "calibrate: %s; BLAS %s; %d threads\n", machine, blas, nth);
        fprintf(f.fp, "sgemm peak %.1f GFLOP/s (%u^3 fp32), memcpy %.1f GB/s, memory %.1f GB\n", peak, peak_n, bw,
                mem_gb);
        fprintf(f.fp, "%10s %11s %9s %10s\n", "tok/expert", "forward ms", "GFLOP/s", "efficiency");
        for (uint32_t i = 0; i < n_pts; i++)
            fprintf(f.fp, "%10u %11.3f %9.1f %9.1f%%\n", res[i].tokens_per_expert, res[i].opt_s * 1e3, res[i].gflops,
                    100 * res[i].gflops / peak);
    }
    rc = cli_commit_output(CMD, &f);
    if (rc == 0 && progress >= 0 && fmt == CLI_JSON && out && strcmp(out, "-") != 0)
        fprintf(stderr,
                "calibrate: peak %.1f GFLOP/s, MoE forward %.0f%% of it at %u tokens/expert, %.0f%% at %u -> %s\n",
                peak, 100 * res[n_pts - 1].gflops / peak, res[n_pts - 1].tokens_per_expert, 100 * res[0].gflops / peak,
                res[0].tokens_per_expert, out);
    ms_free(res);
    return rc;
}
