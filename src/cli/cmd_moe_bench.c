/* cmd_moe_bench.c - moesim moe-bench: time the MoE operator (optimized and
 * functional) against tokens per expert and the BLAS peak; or write router
 * traces that show the bias update flattening expert load. */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "moesim/moe.h"

#define CMD "moe-bench"
#define MAX_POINTS 64

static const char *usage_text =
    "usage: moesim moe-bench [options]\n"
    "       moesim moe-bench --router-trace DIR [--steps N] [router options]\n"
    "\n"
    "Times the optimized MoE forward (tokens grouped by expert, fused gate/up GEMM,\n"
    "SwiGLU, down GEMM, weighted combine through BLAS) at each tokens-per-expert\n"
    "point, with GFLOP/s (2*3*H*I FLOPs per token-expert) and the fraction of the\n"
    "BLAS sgemm peak measured on this machine in the same run; the functional\n"
    "reference is timed where it is cheap (or everywhere with --reference), with\n"
    "the speed-up and the largest difference relative to max|y|.\n"
    "Every expert gets exactly the given number of tokens (synthetic routing).\n"
    "\n"
    "options:\n"
    "  --shape S              deepseek-v3 (7168x2048, default), seed (8192x32768),\n"
    "                         mixtral (4096x14336) or HxI\n"
    "  --tokens-per-expert L  list, e.g. 1,8,256 or 1..1024 (doubling); default\n"
    "                         1..1024 (1..256 for seed)\n"
    "  --experts E            experts in the layer (default 2; 1 for seed)\n"
    "  --top-k K              choices per token (default min(2, E))\n"
    "  --dtype D              fp32 (default) or bf16 weight storage\n"
    "  --threads N            threads (default: all cores)\n"
    "  --threading M          auto (default), tiles (OpenMP over expert tiles, BLAS\n"
    "                         single-threaded) or blas (one GEMM at a time, BLAS threads)\n"
    "  --tile N               weight rows per work unit (default: auto)\n"
    "  --no-small-kernel      sgemm even for <= 8 tokens on an expert (default: a direct\n"
    "                         AVX2 kernel reads fp32/bf16 weights once there)\n"
    "  --reference            time the functional version at every point (slow)\n"
    "  --reference-max N      ... else where tokens x top-k <= N (default 4; 0 = never)\n"
    "  --min-time S           after a warm-up, 2 runs, more until S seconds (default 0.2)\n"
    "  --reps N               ... but at most N runs (default 5; also the peak's); the\n"
    "                         best counts\n"
    "  --clock C              wall (default) or cpu: process CPU seconds / threads, an\n"
    "                         estimate of idle-machine time when others load the cores\n"
    "  --peak-size N          size of the square sgemm for the peak (default 2048;\n"
    "                         0 = skip)\n"
    "  --seed N               weights and inputs (default 1)\n"
    "  --format F             table (default), json or csv\n"
    "  -o FILE                write there (atomically) instead of stdout\n"
    "  --quiet | --progress   progress bar off / always\n"
    "\n"
    "router traces (--router-trace DIR): the router of --shape (deepseek-v3: sigmoid,\n"
    "8 groups, 4 kept, top-8 of 256; others: softmax) on synthetic token embeddings\n"
    "x = z + skew*m (m a fixed direction per layer), one request of --tokens rows\n"
    "per step, the bias update bias_e += gamma*sign(mean - load_e) after each step;\n"
    "writes DIR/req_NNNNNN.npz and prints max/mean load per step.\n"
    "  --steps N (50)  --tokens N (256)  --layers N (1)  --gamma G (0.01; 0 = no update)\n"
    "  --skew S (0.5)  --hidden N (router input size; default the shape's)\n"
    "  --experts / --top-k override the router's\n"
    "\n"
    "examples:\n"
    "  moesim moe-bench --tokens-per-expert 1,16,256 --dtype bf16\n"
    "  moesim moe-bench --shape 1024x512 --reference --format json\n"
    "  moesim moe-bench --router-trace /tmp/rt --steps 100\n";

typedef struct bench_args {
    const char *shape;
    const char *list;
    uint32_t experts, top_k, threads, tile, reference_max, reps, peak_n, hidden;
    bool reference, have_ref_max, no_small, cpu_clock;
    double min_time;
    uint64_t seed;
    ms_moe_dtype dtype;
    ms_moe_threading threading;
    cli_format fmt;
    const char *out;
    int progress;
    const char *rtrace;
    uint32_t steps, tokens, layers;
    double gamma, skew;
} bench_args;

static int run_router_trace(const bench_args *a) {
    ms_error err = {0};
    ms_moe_rtrace_opts o;
    ms_moe_rtrace_opts_default(&o);
    if (ms_moe_config_preset(a->shape, &o.cfg, &err) != MS_OK) return cli_fail(CMD, &err);
    if (a->hidden) o.cfg.hidden = a->hidden;
    if (a->experts) o.cfg.n_experts = a->experts;
    if (a->top_k) o.cfg.top_k = a->top_k;
    if (a->steps) o.steps = a->steps;
    if (a->tokens) o.tokens_per_step = a->tokens;
    if (a->layers) o.n_layers = a->layers;
    o.gamma = (float)a->gamma;
    o.skew = a->skew;
    o.seed = a->seed;
    ms_moe_rtrace *r;
    if (ms_moe_router_trace(&o, &r, &err) != MS_OK) return cli_fail(CMD, &err);
    cli_progress bar;
    cli_progress_init(&bar, "writing", a->progress);
    if (ms_trace_write_npz_dir(r->trace, a->rtrace, true, cli_progress_fn, &bar, &err) != MS_OK) {
        cli_progress_done(&bar);
        ms_moe_rtrace_free(r);
        return cli_fail(CMD, &err);
    }
    cli_progress_done(&bar);
    ms_afile f;
    int rc = cli_open_output(CMD, a->out, &f);
    if (rc) {
        ms_moe_rtrace_free(r);
        return rc;
    }
    uint32_t L = r->n_layers;
    /* per step: the worst layer's max and min load */
    if (a->fmt == CLI_JSON) {
        json_t *steps = json_array();
        for (uint32_t s = 0; s < r->steps; s++) {
            json_t *mx = json_array(), *mn = json_array();
            uint32_t worst = 0;
            for (uint32_t l = 0; l < L; l++) {
                json_array_append_new(mx, json_integer(r->max_load[(size_t)s * L + l]));
                json_array_append_new(mn, json_integer(r->min_load[(size_t)s * L + l]));
                if (r->max_load[(size_t)s * L + l] > worst) worst = r->max_load[(size_t)s * L + l];
            }
            json_array_append_new(steps, json_pack("{s:i, s:o, s:o, s:f}", "step", (int)s, "max_load", mx,
                                                   "min_load", mn, "max_over_mean", worst / r->mean_load));
        }
        json_t *root = json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:f, s:f, s:o}", "trace_dir",
                                 a->rtrace, "router",
                                 o.cfg.router == MS_MOE_ROUTER_SIGMOID_GROUP ? "sigmoid-group" : "softmax", "shape",
                                 a->shape, "hidden", (int)o.cfg.hidden, "experts", (int)o.cfg.n_experts, "top_k",
                                 (int)o.cfg.top_k, "layers", (int)L, "steps", (int)r->steps, "tokens_per_step",
                                 (int)o.tokens_per_step, "gamma", (double)o.gamma, "skew", o.skew, "mean_load",
                                 r->mean_load, "steps_load", steps);
        json_dumpf(root, f.fp, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
        fputc('\n', f.fp);
        json_decref(root);
    } else if (a->fmt == CLI_CSV) {
        fprintf(f.fp, "step,layer,max_load,min_load,mean_load,max_over_mean\n");
        for (uint32_t s = 0; s < r->steps; s++)
            for (uint32_t l = 0; l < L; l++)
                fprintf(f.fp, "%u,%u,%u,%u,%.6g,%.6g\n", s, l, r->max_load[(size_t)s * L + l],
                        r->min_load[(size_t)s * L + l], r->mean_load, r->max_load[(size_t)s * L + l] / r->mean_load);
    } else {
        fprintf(f.fp, "router trace: %s router, %u experts, top-%u, hidden %u, %u layer(s), %u tokens/step, "
                      "gamma %g, skew %g -> %s\n",
                o.cfg.router == MS_MOE_ROUTER_SIGMOID_GROUP ? "sigmoid-group" : "softmax", o.cfg.n_experts,
                o.cfg.top_k, o.cfg.hidden, L, o.tokens_per_step, (double)o.gamma, o.skew, a->rtrace);
        fprintf(f.fp, "%6s %10s %10s %10s %14s\n", "step", "max_load", "min_load", "mean_load", "max/mean");
        for (uint32_t s = 0; s < r->steps; s++) {
            uint32_t mx = 0, mn = UINT32_MAX;
            for (uint32_t l = 0; l < L; l++) {
                if (r->max_load[(size_t)s * L + l] > mx) mx = r->max_load[(size_t)s * L + l];
                if (r->min_load[(size_t)s * L + l] < mn) mn = r->min_load[(size_t)s * L + l];
            }
            fprintf(f.fp, "%6u %10u %10u %10.2f %14.3f\n", s, mx, mn, r->mean_load, mx / r->mean_load);
        }
        /* first step against the mean of the last (up to) 10 */
        uint32_t from = r->steps > 10 ? r->steps - 10 : 0;
        double late = 0, first = 0;
        for (uint32_t s = 0; s < r->steps; s++) {
            uint32_t mx = 0;
            for (uint32_t l = 0; l < L; l++)
                if (r->max_load[(size_t)s * L + l] > mx) mx = r->max_load[(size_t)s * L + l];
            if (s == 0) first = mx / r->mean_load;
            if (s >= from) late += mx / r->mean_load / (r->steps - from);
        }
        fprintf(f.fp, "max/mean load: step 0 %.3f, last %u steps %.3f\n", first, r->steps - from, late);
    }
    ms_moe_rtrace_free(r);
    return cli_commit_output(CMD, &f);
}

static int run_bench(const bench_args *a) {
    ms_error err = {0};
    ms_moe_curve_opts o;
    ms_moe_curve_opts_default(&o);
    ms_moe_config c;
    if (ms_moe_config_preset(a->shape, &c, &err) != MS_OK) return cli_fail(CMD, &err);
    bool seed_shape = strcmp(a->shape, "seed") == 0;
    uint32_t pts[MAX_POINTS], n_pts;
    if (ms_moe_parse_list(a->list ? a->list : (seed_shape ? "1..256" : "1..1024"), pts, MAX_POINTS, &n_pts, &err) !=
        MS_OK)
        return cli_fail(CMD, &err);
    c.n_experts = a->experts ? a->experts : (seed_shape ? 1 : 2);
    c.top_k = a->top_k ? a->top_k : (c.n_experts < 2 ? c.n_experts : 2);
    c.router = MS_MOE_ROUTER_SOFTMAX;
    c.n_shared = 0;
    c.dtype = a->dtype;
    o.cfg = c;
    o.tokens_per_expert = pts;
    o.n_points = n_pts;
    o.threads = (int)a->threads;
    o.threading = a->threading;
    o.tile = a->tile;
    o.no_small_kernel = a->no_small;
    o.cpu_clock = a->cpu_clock;
    o.min_seconds = a->min_time;
    o.max_reps = (int)a->reps;
    o.reference_max = a->reference ? UINT32_MAX : (a->have_ref_max ? a->reference_max : 4);
    o.seed = a->seed;
    if (ms_moe_config_check(&o.cfg, &err) != MS_OK) return cli_fail(CMD, &err);
    int threads = a->threads ? (int)a->threads : ms_thread_count();
    double peak = 0;
    if (a->peak_n && ms_moe_measure_peak(a->peak_n, threads, (int)a->reps, a->cpu_clock, &peak, &err) != MS_OK)
        return cli_fail(CMD, &err);
    ms_moe_point *res = ms_alloc_array(n_pts, sizeof *res, &err);
    if (!res) return cli_fail(CMD, &err);
    cli_progress bar;
    cli_progress_init(&bar, "moe-bench", a->progress);
    o.progress = cli_progress_fn;
    o.progress_ctx = &bar;
    ms_status st = ms_moe_measure_curve(&o, res, &err);
    cli_progress_done(&bar);
    /* the peak again after the curve; the better counts (contention only lowers it) */
    double peak2 = 0;
    if (st == MS_OK && a->peak_n)
        st = ms_moe_measure_peak(a->peak_n, threads, (int)a->reps, a->cpu_clock, &peak2, &err);
    if (peak2 > peak) peak = peak2;
    if (st != MS_OK) {
        ms_free(res);
        return cli_fail(CMD, &err);
    }
    char machine[512], blas[256];
    ms_moe_machine_describe(machine, sizeof machine);
    ms_moe_blas_describe(blas, sizeof blas);
    ms_afile f;
    int rc = cli_open_output(CMD, a->out, &f);
    if (rc) {
        ms_free(res);
        return rc;
    }
    const char *thr = ms_moe_threading_name(a->threading == MS_MOE_THREADS_AUTO ? MS_MOE_THREADS_TILES : a->threading);
    if (a->fmt == CLI_JSON) {
        json_t *arr = json_array();
        for (uint32_t i = 0; i < n_pts; i++) {
            const ms_moe_point *p = &res[i];
            json_t *o1 = json_pack("{s:i, s:i, s:f, s:f, s:f}", "tokens_per_expert", (int)p->tokens_per_expert,
                                   "tokens", (int)p->n_tokens, "gflop", p->flops / 1e9, "opt_ms", p->opt_s * 1e3,
                                   "gflops", p->gflops);
            json_object_set_new(o1, "frac_of_peak", peak > 0 ? json_real(p->gflops / peak) : json_null());
            json_object_set_new(o1, "ref_ms", p->ref_s >= 0 ? json_real(p->ref_s * 1e3) : json_null());
            json_object_set_new(o1, "speedup", p->ref_s >= 0 ? json_real(p->ref_s / p->opt_s) : json_null());
            json_object_set_new(o1, "max_rel_err", p->max_rel_err >= 0 ? json_real(p->max_rel_err) : json_null());
            json_array_append_new(arr, o1);
        }
        json_t *root = json_pack("{s:s, s:i, s:i, s:i, s:i, s:s, s:i, s:s, s:s, s:s}", "shape", a->shape, "hidden",
                                 (int)c.hidden, "moe_intermediate", (int)c.inter, "experts", (int)c.n_experts, "top_k",
                                 (int)c.top_k, "dtype", ms_moe_dtype_name(c.dtype), "threads", threads, "threading",
                                 thr, "machine", machine, "blas", blas);
        json_object_set_new(root, "peak_gflops", peak > 0 ? json_real(peak) : json_null());
        json_object_set_new(root, "peak_size", json_integer(a->peak_n));
        json_object_set_new(root, "clock", json_string(a->cpu_clock ? "cpu" : "wall"));
        json_object_set_new(root, "points", arr);
        json_dumpf(root, f.fp, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
        fputc('\n', f.fp);
        json_decref(root);
    } else if (a->fmt == CLI_CSV) {
        fprintf(f.fp, "shape,hidden,inter,experts,top_k,dtype,threads,tokens_per_expert,tokens,opt_ms,gflops,"
                      "frac_of_peak,ref_ms,speedup,max_rel_err\n");
        for (uint32_t i = 0; i < n_pts; i++) {
            const ms_moe_point *p = &res[i];
            fprintf(f.fp, "%s,%u,%u,%u,%u,%s,%d,%u,%u,%.6f,%.3f,", a->shape, c.hidden, c.inter, c.n_experts, c.top_k,
                    ms_moe_dtype_name(c.dtype), threads, p->tokens_per_expert, p->n_tokens, p->opt_s * 1e3,
                    p->gflops);
            if (peak > 0) fprintf(f.fp, "%.4f", p->gflops / peak);
            fputc(',', f.fp);
            if (p->ref_s >= 0) fprintf(f.fp, "%.6f,%.2f,%.3g\n", p->ref_s * 1e3, p->ref_s / p->opt_s, p->max_rel_err);
            else fprintf(f.fp, ",,\n");
        }
    } else {
        fprintf(f.fp, "moe-bench: %s expert %u x %u, %s weights, %u experts, top-%u, %d threads (%s), %s clock\n",
                a->shape, c.hidden, c.inter, ms_moe_dtype_name(c.dtype), c.n_experts, c.top_k, threads, thr,
                a->cpu_clock ? "cpu" : "wall");
        fprintf(f.fp, "machine: %s; BLAS: %s\n", machine, blas);
        char hint[512];
        ms_moe_blas_hint(hint, sizeof hint);
        if (*hint) fprintf(f.fp, "hint: %s\n", hint);
        if (peak > 0)
            fprintf(f.fp, "sgemm peak (%u^3 fp32, %d threads): %.1f GFLOP/s\n", a->peak_n, threads, peak);
        fprintf(f.fp, "\n%10s %7s %11s %9s %8s %11s %8s %9s\n", "tok/expert", "tokens", "opt ms", "GFLOP/s",
                "of peak", "ref ms", "speedup", "rel err");
        for (uint32_t i = 0; i < n_pts; i++) {
            const ms_moe_point *p = &res[i];
            fprintf(f.fp, "%10u %7u %11.3f %9.1f ", p->tokens_per_expert, p->n_tokens, p->opt_s * 1e3, p->gflops);
            if (peak > 0) fprintf(f.fp, "%7.1f%%", 100 * p->gflops / peak);
            else fprintf(f.fp, "%8s", "-");
            if (p->ref_s >= 0)
                fprintf(f.fp, " %11.1f %7.0fx %9.1e\n", p->ref_s * 1e3, p->ref_s / p->opt_s, p->max_rel_err);
            else fprintf(f.fp, " %11s %8s %9s\n", "-", "-", "-");
        }
    }
    ms_free(res);
    return cli_commit_output(CMD, &f);
}

int cmd_moe_bench(int argc, char **argv) {
    enum {
        O_SHAPE = 256, O_LIST, O_EXPERTS, O_TOPK, O_DTYPE, O_THREADS, O_THREADING, O_TILE, O_REF, O_REFMAX,
        O_MINTIME, O_REPS, O_PEAK, O_SEED, O_FORMAT, O_QUIET, O_PROGRESS, O_RTRACE, O_STEPS, O_TOKENS, O_LAYERS,
        O_GAMMA, O_SKEW, O_HIDDEN, O_NOSMALL, O_CLOCK
    };
    static const struct option longopts[] = {
        {"shape", required_argument, 0, O_SHAPE},       {"tokens-per-expert", required_argument, 0, O_LIST},
        {"experts", required_argument, 0, O_EXPERTS},   {"top-k", required_argument, 0, O_TOPK},
        {"dtype", required_argument, 0, O_DTYPE},       {"threads", required_argument, 0, O_THREADS},
        {"threading", required_argument, 0, O_THREADING}, {"tile", required_argument, 0, O_TILE},
        {"reference", no_argument, 0, O_REF},           {"reference-max", required_argument, 0, O_REFMAX},
        {"min-time", required_argument, 0, O_MINTIME},  {"reps", required_argument, 0, O_REPS},
        {"peak-size", required_argument, 0, O_PEAK},    {"seed", required_argument, 0, O_SEED},
        {"format", required_argument, 0, O_FORMAT},     {"quiet", no_argument, 0, O_QUIET},
        {"progress", no_argument, 0, O_PROGRESS},       {"router-trace", required_argument, 0, O_RTRACE},
        {"steps", required_argument, 0, O_STEPS},       {"tokens", required_argument, 0, O_TOKENS},
        {"layers", required_argument, 0, O_LAYERS},     {"gamma", required_argument, 0, O_GAMMA},
        {"skew", required_argument, 0, O_SKEW},         {"hidden", required_argument, 0, O_HIDDEN},
        {"no-small-kernel", no_argument, 0, O_NOSMALL}, {"clock", required_argument, 0, O_CLOCK},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    bench_args a = {.shape = "deepseek-v3", .reps = 5, .peak_n = 2048, .min_time = 0.2, .seed = 1,
                    .dtype = MS_MOE_F32, .threading = MS_MOE_THREADS_AUTO, .fmt = CLI_TABLE, .gamma = 0.01,
                    .skew = 0.5};
    ms_error err = {0};
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
        switch (c) {
        case O_SHAPE: a.shape = optarg; break;
        case O_LIST: a.list = optarg; break;
        case O_EXPERTS: if (cli_parse_u32(CMD, "--experts", optarg, &a.experts)) return 2; break;
        case O_TOPK: if (cli_parse_u32(CMD, "--top-k", optarg, &a.top_k)) return 2; break;
        case O_DTYPE:
            if (ms_moe_dtype_parse(optarg, &a.dtype, &err) != MS_OK) return cli_usage(CMD, "%s", err.msg);
            break;
        case O_THREADS: if (cli_parse_u32(CMD, "--threads", optarg, &a.threads)) return 2; break;
        case O_THREADING:
            if (ms_moe_threading_parse(optarg, &a.threading, &err) != MS_OK) return cli_usage(CMD, "%s", err.msg);
            break;
        case O_TILE: if (cli_parse_u32(CMD, "--tile", optarg, &a.tile)) return 2; break;
        case O_REF: a.reference = true; break;
        case O_NOSMALL: a.no_small = true; break;
        case O_CLOCK:
            if (strcmp(optarg, "wall") == 0) a.cpu_clock = false;
            else if (strcmp(optarg, "cpu") == 0) a.cpu_clock = true;
            else return cli_usage(CMD, "--clock must be wall or cpu, got '%s'", optarg);
            break;
        case O_REFMAX:
            if (cli_parse_u32(CMD, "--reference-max", optarg, &a.reference_max)) return 2;
            a.have_ref_max = true;
            break;
        case O_MINTIME: if (cli_parse_double(CMD, "--min-time", optarg, &a.min_time)) return 2; break;
        case O_REPS: if (cli_parse_u32(CMD, "--reps", optarg, &a.reps)) return 2; break;
        case O_PEAK: if (cli_parse_u32(CMD, "--peak-size", optarg, &a.peak_n)) return 2; break;
        case O_SEED: if (cli_parse_u64(CMD, "--seed", optarg, &a.seed)) return 2; break;
        case O_FORMAT: if (cli_parse_format(CMD, optarg, &a.fmt)) return 2; break;
        case 'o': a.out = optarg; break;
        case O_QUIET: a.progress = -1; break;
        case O_PROGRESS: a.progress = 1; break;
        case O_RTRACE: a.rtrace = optarg; break;
        case O_STEPS: if (cli_parse_u32(CMD, "--steps", optarg, &a.steps)) return 2; break;
        case O_TOKENS: if (cli_parse_u32(CMD, "--tokens", optarg, &a.tokens)) return 2; break;
        case O_LAYERS: if (cli_parse_u32(CMD, "--layers", optarg, &a.layers)) return 2; break;
        case O_GAMMA: if (cli_parse_double(CMD, "--gamma", optarg, &a.gamma)) return 2; break;
        case O_SKEW: if (cli_parse_double(CMD, "--skew", optarg, &a.skew)) return 2; break;
        case O_HIDDEN: if (cli_parse_u32(CMD, "--hidden", optarg, &a.hidden)) return 2; break;
        case 'h': cli_print_help(usage_text); return 0;
        default: return cli_usage(CMD, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage(CMD, "unexpected argument '%s'", argv[optind]);
    if (a.threads > 1024) return cli_usage(CMD, "--threads %u is too many", a.threads);
    if (!(a.min_time >= 0 && a.min_time <= 600)) return cli_usage(CMD, "--min-time must be 0..600 seconds");
    if (a.reps == 0 || a.reps > 1000) return cli_usage(CMD, "--reps must be 1..1000");
    if (a.peak_n > 16384) return cli_usage(CMD, "--peak-size must be at most 16384");
    if (a.rtrace) {
        if (!(a.gamma >= 0 && a.gamma <= 1e3) || !(a.skew >= 0 && a.skew <= 1e3))
            return cli_usage(CMD, "--gamma and --skew must be in 0..1000");
        if (a.steps > 1000000 || a.tokens > 1000000 || a.layers > 4096)
            return cli_usage(CMD, "--steps/--tokens at most 1000000, --layers at most 4096");
        return run_router_trace(&a);
    }
    return run_bench(&a);
}
