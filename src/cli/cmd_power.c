/* cmd_power.c - moesim power: energy and power per device, per phase and for
 * the cluster; the cost of imbalance side by side. */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/sim_cli.h"
#include "moesim/power.h"
#include "moesim/sim.h"

static const char *usage_text =
    "usage: moesim power TRACE --placement A.json [--placement B.json ...] [simulate options] [power options]\n"
    "       moesim power --synthetic [--hw H] [--model M] [--cluster RxC] [--tokens N] [--hot N --hot-factor F]\n"
    "       moesim power --phases FILE.json [power options]\n"
    "\n"
    "Energy of every device in every phase (a (batch, layer) of the simulation):\n"
    "  compute = FLOPs x pJ/FLOP of the precision;  memory = HBM bytes x 8 x pJ/bit;\n"
    "  NVLink / network = bytes sent x 8 x pJ/bit (network: 2 NICs + switch hops + optics);\n"
    "  static = idle W x time active;  wait = idle W x time waiting for the slowest device.\n"
    "A device is active for min(wall, compute + communication) and draws idle W plus its\n"
    "dynamic energy spread over that time; the phase lasts as long as its slowest device.\n"
    "Reports the cluster's energy, energy per token, average and peak power, the breakdown\n"
    "(J and share), per-device energy and peak, and a power timeline; several runs side by\n"
    "side with the cost of imbalance relative to the first. Coefficients and their sources:\n"
    "presets/energy-<gpu>.json, docs/MODEL.md ('Power model').\n"
    "\n"
    "inputs (one of):\n"
    "  TRACE --placement A [--placement B ...]   simulate each placement over the very same\n"
    "                      batches with the roofline cost model (every 'moesim simulate'\n"
    "                      option applies: --batch, --route, --hw, --model, --overlap, ...)\n"
    "  --synthetic         no trace: one batch through the model's MoE layers, balanced vs\n"
    "                      a few hot GPUs: --cluster RxC (default 2x8), --tokens N (4096),\n"
    "                      --layers N (the model's MoE layers), --hot N (1), --hot-factor F\n"
    "                      (3: the hot GPUs' load over the mean), --hw, --model (deepseek-v3)\n"
    "  --phases FILE       phases as JSON: {devices, precision, tokens, phases: [{batch,\n"
    "                      layer, wall_s, compute_s[], comm_s[], flops[], hbm_bytes[],\n"
    "                      nvlink_bytes[], net_bytes[]}]}\n"
    "\n"
    "power options:\n"
    "  --energy NAME       coefficients (presets/energy-NAME.json or a path; default: the\n"
    "                      --hw preset's, h100-sxm)\n"
    "  --coef KEY=VALUE    override one coefficient (repeat): pj_per_flop_fp32,\n"
    "                      pj_per_flop_bf16, pj_per_flop_fp8, hbm_pj_per_bit,\n"
    "                      nvlink_pj_per_bit, nic_pj_per_bit, switch_pj_per_bit,\n"
    "                      optics_pj_per_bit, switch_hops, freq_exponent, min_clock, idle_w,\n"
    "                      tdp_w, node_overhead_w, pue\n"
    "  --gpu-power-cap W   per-GPU limit (default: the coefficients' tdp_w; none = no cap),\n"
    "  --row-power-cap KW, --cluster-power-cap KW   budgets of a row (node) and of all GPUs\n"
    "                      (trace mode; see moesim simulate --help): capped devices run at a\n"
    "                      lower clock, FLOP energy scales as clock^(freq_exponent - 1), and\n"
    "                      the throttled time, clocks and caps not met are reported\n"
    "  --precision P       of the FLOPs: bf16 (default; fp8 when the model's expert weights\n"
    "                      are 1 byte), fp8, fp32\n"
    "  --timeline          JSON: per phase, the cluster's average and peak power and every\n"
    "                      device's active time and mean power while active\n"
    "  --format F          table (default), json, or csv (the power timeline: one line per\n"
    "                      run and phase)\n"
    "  -o FILE             write there (atomically) instead of stdout\n"
    "\n"
    "exit status: 0 success, 2 bad input or usage, 1 internal error\n"
    "\n"
    "examples:\n"
    "  moesim power --synthetic --model deepseek-v3 --cluster 16x8 --hot 4 --hot-factor 4\n"
    "  moesim power ../shared/data/deepseek-v2-lite-puffin --placement eplb.json \\\n"
    "      --placement contiguous.json --batch prefill --route least-loaded --hw h100-sxm\n"
    "  moesim power TRACE --placement eplb.json --batch prefill --gpu-power-cap 300\n";

#define MAX_RUNS SIM_CLI_MAX_PLACEMENTS

typedef struct popts {
    const char *energy, *phases;
    const char *coefs[32];
    int n_coef;
    bool synthetic, timeline, prec_set;
    ms_precision prec;
    ms_power_synth syn;
    bool layers_set;
} popts;

/* power options taken out of argv; returns -1 to go on, or an exit code */
static int take_power_opts(const char *cmd, int argc, char **argv, popts *o, int *n_rest, char **rest) {
    *n_rest = 0;
    rest[(*n_rest)++] = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
#define OPT(name) (strcmp(a, name) == 0)
#define NEEDVAL()                                                                  \
    do {                                                                           \
        if (i + 1 >= argc) return cli_usage(cmd, "option %s needs a value", a);    \
        val = argv[++i];                                                           \
    } while (0)
        if (OPT("--help") || OPT("-h")) {
            cli_print_help(usage_text);
            return 0;
        } else if (OPT("--energy")) {
            NEEDVAL();
            o->energy = val;
        } else if (OPT("--coef")) {
            NEEDVAL();
            if (o->n_coef >= 32) return cli_usage(cmd, "at most 32 --coef");
            o->coefs[o->n_coef++] = val;
        } else if (OPT("--precision")) {
            NEEDVAL();
            ms_error err = {0};
            if (ms_precision_parse(val, &o->prec, &err) != MS_OK) return cli_usage(cmd, "%s", err.msg);
            o->prec_set = true;
        } else if (OPT("--timeline")) {
            o->timeline = true;
        } else if (OPT("--phases")) {
            NEEDVAL();
            o->phases = val;
        } else if (OPT("--synthetic")) {
            o->synthetic = true;
        } else if (OPT("--tokens")) {
            NEEDVAL();
            if (cli_parse_u64(cmd, a, val, &o->syn.tokens)) return 2;
        } else if (OPT("--layers")) {
            NEEDVAL();
            if (cli_parse_u32(cmd, a, val, &o->syn.layers)) return 2;
            o->layers_set = true;
        } else if (OPT("--hot")) {
            NEEDVAL();
            if (cli_parse_u32(cmd, a, val, &o->syn.hot)) return 2;
        } else if (OPT("--hot-factor")) {
            NEEDVAL();
            if (cli_parse_double(cmd, a, val, &o->syn.hot_factor)) return 2;
        } else {
            rest[(*n_rest)++] = argv[i];
        }
#undef OPT
#undef NEEDVAL
    }
    rest[*n_rest] = NULL;
    return -1;
}

typedef struct run {
    char label[256];
    ms_power_phases *ph;
    ms_power_result *res;
    ms_sim_result *sim;   /* trace mode: the simulation (summary, per-device clocks) */
} run;

typedef struct hookctx {
    ms_power_phases *ph;
    uint64_t nl, l0;
    int failed;
} hookctx;

static void on_step(void *ctx, const ms_sim_step *st) {
    hookctx *h = ctx;
    uint64_t i = st->rec->batch * h->nl + (st->rec->layer - h->l0);
    ms_error e = {0};
    if (ms_power_phases_set_sim(h->ph, i, st, &e) != MS_OK) h->failed = 1;
}

static void table(FILE *fp, const run *r, int n, const ms_energy_coeffs *c, ms_precision prec) {
    fprintf(fp, "energy     %s: %g pJ/FLOP (%s), HBM %g pJ/bit, NVLink %g pJ/bit, network %g pJ/bit, idle %g W, TDP "
                "%g W\n\n",
            c->name, c->pj_per_flop[prec], ms_precision_name(prec), c->hbm_pj_per_bit, c->nvlink_pj_per_bit,
            ms_energy_net_pj_per_bit(c), c->idle_w, c->tdp_w);
    for (int i = 0; i < n; i++) fprintf(fp, "run %c      %s\n", 'A' + i, r[i].label);
    fprintf(fp, "\n%-34s", "");
    for (int i = 0; i < n; i++) fprintf(fp, " %14c", 'A' + i);
    fprintf(fp, "\n");
#define ROW(label, fmt, expr)                          \
    do {                                               \
        fprintf(fp, "%-34s", label);                   \
        for (int i = 0; i < n; i++) {                  \
            const ms_power_result *x = r[i].res;       \
            fprintf(fp, " " fmt, expr);                \
        }                                              \
        fprintf(fp, "\n");                             \
    } while (0)
    ROW("devices", "%14u", x->n_devices);
    ROW("phases", "%14llu", (unsigned long long)x->n_phases);
    ROW("tokens", "%14.6g", x->tokens);
    ROW("wall time, s", "%14.6g", x->wall_s);
    ROW("energy, J", "%14.6g", x->total_j);
    ROW("energy per token, J", "%14.6g", x->energy_per_token_j);
    ROW("average power, W", "%14.6g", x->avg_w);
    ROW("peak cluster power, W", "%14.6g", x->peak_w);
    ROW("peak phase-average power, W", "%14.6g", x->peak_phase_avg_w);
    ROW("peak power of one device, W", "%14.6g", x->max_device_w);
    ROW("device energy max/mean", "%14.4f", x->device_power_imbalance);
    ROW("device-phases over TDP", "%14llu", (unsigned long long)x->over_tdp);
    if (n > 0 && r[0].sim && r[0].sim->summary.throttled) {
#define SROW(label, fmt, expr)                         \
    do {                                               \
        fprintf(fp, "%-34s", label);                   \
        for (int i = 0; i < n; i++) {                  \
            const ms_sim_summary *y = &r[i].sim->summary; \
            fprintf(fp, " " fmt, expr);                \
        }                                              \
        fprintf(fp, "\n");                             \
    } while (0)
        SROW("throttled per layer, us", "%14.6g", y->throttled_us);
        SROW("throttled (batch, layer), %", "%14.2f", 100 * y->throttled_share);
        SROW("clock mean", "%14.4f", y->clock_mean);
        SROW("clock min", "%14.4f", y->clock_min);
        SROW("caps not met", "%14llu", (unsigned long long)y->cap_unmet);
#undef SROW
    }
    for (int k = 0; k < MS_PART_COUNT; k++) {
        char lab[64];
        snprintf(lab, sizeof lab, "  %s, J", ms_power_part_name((ms_power_part)k));
        ROW(lab, "%14.6g", x->energy_j[k]);
    }
    ROW("share compute, %", "%14.2f", x->total_j > 0 ? 100 * x->energy_j[MS_PART_COMPUTE] / x->total_j : 0);
    ROW("share memory, %", "%14.2f", x->total_j > 0 ? 100 * x->energy_j[MS_PART_MEMORY] / x->total_j : 0);
    ROW("share communication, %", "%14.2f",
        x->total_j > 0 ? 100 * (x->energy_j[MS_PART_NVLINK] + x->energy_j[MS_PART_NETWORK]) / x->total_j : 0);
    ROW("share idle (static + wait), %", "%14.2f",
        x->total_j > 0 ? 100 * (x->energy_j[MS_PART_STATIC] + x->energy_j[MS_PART_WAIT]) / x->total_j : 0);
    if (n > 1) {
        const ms_power_result *a = r[0].res;
        fprintf(fp, "cost relative to A\n");
        ROW("  energy, J", "%14.6g", x->total_j - a->total_j);
        ROW("  energy, %", "%14.2f", a->total_j > 0 ? 100 * (x->total_j - a->total_j) / a->total_j : 0);
        ROW("  waiting energy, J", "%14.6g", x->energy_j[MS_PART_WAIT] - a->energy_j[MS_PART_WAIT]);
        ROW("  wall time, %", "%14.2f", a->wall_s > 0 ? 100 * (x->wall_s - a->wall_s) / a->wall_s : 0);
        ROW("  average power, W", "%14.6g", x->avg_w - a->avg_w);
        ROW("  peak power of one device, W", "%14.6g", x->max_device_w - a->max_device_w);
    }
#undef ROW
}

static void csv(FILE *fp, const run *r, int n) {
    fprintf(fp, "run,label,phase,batch,layer,start_s,wall_s,avg_w,peak_w,energy_j,clock_mean,clock_min\n");
    for (int i = 0; i < n; i++) {
        const ms_power_result *x = r[i].res;
        for (uint64_t p = 0; p < x->n_phases; p++) {
            ms_power_phase v;
            ms_power_phases_get(r[i].ph, p, &v);
            double cs = 0, cm = 1;
            for (uint32_t d = 0; d < r[i].ph->n_devices; d++) {
                cs += v.clock[d];
                if (v.clock[d] < cm) cm = v.clock[d];
            }
            fprintf(fp, "%c,\"%s\",%llu,%llu,%u,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g\n", 'A' + i, r[i].label,
                    (unsigned long long)p, (unsigned long long)r[i].ph->batch[p], r[i].ph->layer[p],
                    x->phase_start_s[p], r[i].ph->wall_s[p], x->phase_avg_w[p], x->phase_peak_w[p],
                    x->phase_energy_j[p], cs / r[i].ph->n_devices, cm);
        }
    }
}

static int finish(const char *cmd, run *r, int n, const ms_energy_coeffs *c, ms_precision prec, const popts *po,
                  cli_format fmt, const char *out, const char *mode, json_t *caps) {
    ms_error err = {0};
    for (int i = 0; i < n; i++)
        if (ms_power_compute(r[i].ph, c, &r[i].res, &err) != MS_OK) {
            json_decref(caps);
            return cli_fail(cmd, &err);
        }
    ms_afile f;
    int rc = cli_open_output(cmd, out, &f);
    if (rc) {
        json_decref(caps);
        return rc;
    }
    if (fmt == CLI_TABLE) {
        table(f.fp, r, n, c, prec);
    } else if (fmt == CLI_CSV) {
        csv(f.fp, r, n);
    } else {
        json_t *root = json_object();
        json_object_set_new(root, "command", json_string("power"));
        json_object_set_new(root, "mode", json_string(mode));
        json_object_set_new(root, "precision", json_string(ms_precision_name(prec)));
        json_object_set_new(root, "energy", ms_energy_json(c));
        if (caps) json_object_set_new(root, "power_caps", caps);
        caps = NULL;
        json_t *runs = json_array();
        for (int i = 0; i < n; i++) {
            json_t *o = ms_power_result_json(r[i].res, po->timeline);
            json_object_set_new(o, "label", json_string(r[i].label));
            if (po->timeline) {
                /* per device and phase: active seconds and mean power while active (idle W the rest) */
                json_t *as = json_array(), *aw = json_array();
                for (uint64_t k = 0; k < r[i].ph->n_phases; k++) {
                    json_t *ra = json_array(), *rw = json_array();
                    for (uint32_t d = 0; d < r[i].ph->n_devices; d++) {
                        double a, w;
                        ms_power_device_phase(r[i].ph, c, k, d, &a, &w, NULL);
                        json_array_append_new(ra, json_real(a));
                        json_array_append_new(rw, json_real(w));
                    }
                    json_array_append_new(as, ra);
                    json_array_append_new(aw, rw);
                }
                json_t *dt = json_object();
                json_object_set_new(dt, "active_s", as);
                json_object_set_new(dt, "active_w", aw);
                json_object_set_new(dt, "idle_w", json_real(c->idle_w));
                json_object_set_new(o, "device_timeline", dt);
            }
            if (r[i].sim && r[i].sim->summary.throttled) {
                const ms_sim_summary *y = &r[i].sim->summary;
                json_t *t = json_object();
                json_object_set_new(t, "throttled_us", json_real(y->throttled_us));
                json_object_set_new(t, "throttled_share", json_real(y->throttled_share));
                json_object_set_new(t, "clock_mean", json_real(y->clock_mean));
                json_object_set_new(t, "clock_min", json_real(y->clock_min));
                json_object_set_new(t, "cap_unmet", json_integer((json_int_t)y->cap_unmet));
                json_object_set_new(t, "device_clock", sim_cli_clocks_json(r[i].sim));
                json_object_set_new(o, "throttle", t);
            }
            if (i > 0) {
                const ms_power_result *a = r[0].res, *x = r[i].res;
                json_t *d = json_object();
                json_object_set_new(d, "energy_j", json_real(x->total_j - a->total_j));
                json_object_set_new(d, "wait_j", json_real(x->energy_j[MS_PART_WAIT] - a->energy_j[MS_PART_WAIT]));
                json_object_set_new(d, "wall_s", json_real(x->wall_s - a->wall_s));
                json_object_set_new(d, "avg_w", json_real(x->avg_w - a->avg_w));
                json_object_set_new(d, "peak_w", json_real(x->peak_w - a->peak_w));
                json_object_set_new(d, "max_device_w", json_real(x->max_device_w - a->max_device_w));
                json_object_set_new(o, "vs_first", d);
            }
            json_array_append_new(runs, o);
        }
        json_object_set_new(root, "runs", runs);
        char *s = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
        json_decref(root);
        if (!s) {
            ms_afile_abort(&f);
            ms_error_set(&err, MS_E_NOMEM, "out of memory writing JSON");
            return cli_fail(cmd, &err);
        }
        fprintf(f.fp, "%s\n", s);
        free(s);
    }
    json_decref(caps);
    return cli_commit_output(cmd, &f);
}

static int load_energy(const char *cmd, const popts *po, const char *hw_name, ms_energy_coeffs *c) {
    ms_error err = {0};
    if (ms_energy_load(po->energy ? po->energy : hw_name, c, &err) != MS_OK) return cli_fail(cmd, &err);
    for (int i = 0; i < po->n_coef; i++)
        if (ms_energy_set_str(c, po->coefs[i], &err) != MS_OK) return cli_usage(cmd, "%s", err.msg);
    if (ms_energy_check(c, &err) != MS_OK) return cli_usage(cmd, "%s", err.msg);
    return 0;
}

/* --synthetic and --phases: a few options of our own */
static int run_simple(const char *cmd, popts *po, int argc, char **argv) {
    static const struct option lo[] = {{"hw", required_argument, 0, 'H'},     {"model", required_argument, 0, 'M'},
                                       {"cluster", required_argument, 0, 'C'}, {"format", required_argument, 0, 'f'},
                                       {"output", required_argument, 0, 'o'}, {0, 0, 0, 0}};
    const char *hw_name = NULL, *model = "deepseek-v3", *out = NULL;
    cli_format fmt = CLI_TABLE;
    unsigned rows = 2, cols = 8;
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, ":o:", lo, NULL)) != -1) {
        switch (ch) {
        case 'H': hw_name = optarg; break;
        case 'M': model = optarg; break;
        case 'C': {
            char tail;
            if (sscanf(optarg, "%ux%u%c", &rows, &cols, &tail) != 2 || !rows || !cols)
                return cli_usage(cmd, "--cluster expects RxC, got '%s'", optarg);
            break;
        }
        case 'f': if (cli_parse_format(cmd, optarg, &fmt)) return 2; break;
        case 'o': out = optarg; break;
        case ':': return cli_usage(cmd, "option %s needs a value", argv[optind - 1]);
        default: return cli_usage(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage(cmd, "unexpected argument '%s'", argv[optind]);
    ms_error err = {0};
    ms_energy_coeffs c;
    run r[2];
    memset(r, 0, sizeof r);
    int n = 0, rc;
    ms_precision prec = po->prec_set ? po->prec : MS_PREC_BF16;
    if (po->phases) {
        if (po->synthetic) return cli_usage(cmd, "--phases and --synthetic exclude each other");
        if ((rc = load_energy(cmd, po, hw_name ? hw_name : "h100-sxm", &c))) return rc;
        if (ms_power_phases_read_json(po->phases, &r[0].ph, &err) != MS_OK) return cli_fail(cmd, &err);
        if (po->prec_set) r[0].ph->precision = po->prec;
        prec = r[0].ph->precision;
        snprintf(r[0].label, sizeof r[0].label, "%s", po->phases);
        n = 1;
        rc = finish(cmd, r, n, &c, prec, po, fmt, out, "phases", NULL);
    } else {
        ms_hw_preset hw;
        ms_model_preset mp;
        if (ms_hw_preset_load(hw_name ? hw_name : "h100-sxm", &hw, &err) != MS_OK) return cli_fail(cmd, &err);
        if (ms_model_preset_load(model, &mp, &err) != MS_OK) return cli_fail(cmd, &err);
        if (!po->prec_set) prec = mp.expert_weight_bytes <= 1 ? MS_PREC_FP8 : MS_PREC_BF16;
        if ((rc = load_energy(cmd, po, hw.name, &c))) return rc;
        ms_power_synth s = po->syn;
        s.rows = rows;
        s.cols = cols;
        if (!s.tokens) s.tokens = 4096;
        if (!po->layers_set) s.layers = mp.moe_layers;
        if (!s.hot) s.hot = 1;
        if (s.hot_factor == 0) s.hot_factor = 3;
        ms_power_synth bal = s;
        bal.hot_factor = 1;
        if (ms_power_synthetic(&bal, &hw, &mp, prec, &r[0].ph, &err) != MS_OK) return cli_usage(cmd, "%s", err.msg);
        if (ms_power_synthetic(&s, &hw, &mp, prec, &r[1].ph, &err) != MS_OK) {
            ms_power_phases_free(r[0].ph);
            return cli_usage(cmd, "%s", err.msg);
        }
        snprintf(r[0].label, sizeof r[0].label, "balanced: %s on %s, %ux%u devices, %llu tokens x %u layers",
                 mp.name, hw.name, rows, cols, (unsigned long long)s.tokens, s.layers);
        snprintf(r[1].label, sizeof r[1].label, "hot: the same with %u GPU%s at %g x the mean expert load", s.hot,
                 s.hot > 1 ? "s" : "", s.hot_factor);
        n = 2;
        rc = finish(cmd, r, n, &c, prec, po, fmt, out, "synthetic", NULL);
    }
    for (int i = 0; i < n; i++) {
        ms_power_phases_free(r[i].ph);
        ms_power_result_free(r[i].res);
    }
    return rc;
}

int cmd_power(int argc, char **argv) {
    const char *cmd = "power";
    popts po;
    memset(&po, 0, sizeof po);
    char **rest = ms_alloc_array((size_t)argc + 4, sizeof(char *), NULL);
    if (!rest) {
        fprintf(stderr, "moesim power: error: out of memory\n");
        return 1;
    }
    int n_rest = 0;
    int rc = take_power_opts(cmd, argc, argv, &po, &n_rest, rest);
    if (rc >= 0) {
        ms_free(rest);
        return rc;
    }
    if (po.synthetic || po.phases) {
        rc = run_simple(cmd, &po, n_rest, rest);
        ms_free(rest);
        return rc;
    }
    /* trace mode: the simulator with the roofline cost model */
    char **sargv = ms_alloc_array((size_t)n_rest + 4, sizeof(char *), NULL);
    if (!sargv) {
        ms_free(rest);
        fprintf(stderr, "moesim power: error: out of memory\n");
        return 1;
    }
    int sn = 0;
    sargv[sn++] = rest[0];
    sargv[sn++] = "--cost-model";
    sargv[sn++] = "roofline";
    for (int i = 1; i < n_rest; i++) sargv[sn++] = rest[i];
    sargv[sn] = NULL;
    sim_cli o;
    sim_inputs in;
    memset(&in, 0, sizeof in);
    rc = sim_cli_parse(cmd, usage_text, sn, sargv, &o, true);
    if (rc < 0 && o.so.cost_model != MS_COST_ROOFLINE)
        rc = cli_usage(cmd, "power needs FLOPs and bytes per device: --cost-model roofline (the default here)");
    if (rc < 0 && o.n_routes > 1) rc = cli_usage(cmd, "one --route at a time");
    if (rc < 0) rc = sim_cli_load(cmd, &o, &in);
    else if (rc == 0) rc = 2; /* cannot happen: --help was taken earlier */
    if (rc != 0) {
        sim_inputs_free(&in);
        ms_free(sargv);
        ms_free(rest);
        return rc;
    }
    ms_error err = {0};
    ms_energy_coeffs c;
    run r[MAX_RUNS];
    memset(r, 0, sizeof r);
    int n = 0;
    ms_precision prec = po.prec_set ? po.prec : (in.model.expert_weight_bytes <= 1 ? MS_PREC_FP8 : MS_PREC_BF16);
    rc = load_energy(cmd, &po, in.hw.name, &c);
    if (rc == 0) rc = sim_cli_caps(cmd, &o, &in, &c, &prec);
    uint64_t nl = o.so.layer >= 0 ? 1 : in.trace->n_layers, l0 = o.so.layer >= 0 ? (uint64_t)o.so.layer : 0;
    for (int i = 0; i < o.n_placements && rc == 0; i++) {
        uint32_t D = ms_cluster_devices(&in.pl[i]->cluster);
        if (ms_power_phases_new(D, in.plan->n_batches * nl, &r[i].ph, &err) != MS_OK) {
            rc = cli_fail(cmd, &err);
            break;
        }
        n = i + 1;
        r[i].ph->precision = prec;
        hookctx h = {r[i].ph, nl, l0, 0};
        ms_sim_hooks hooks = {on_step, &h};
        ms_sim_opts so = o.so;
        so.keep_records = false;
        ms_sim_result *res = NULL;
        if (ms_sim_run(in.trace, in.plan, in.pl[i], &so, &hooks, &res, &err) != MS_OK) {
            rc = cli_fail(cmd, &err);
            break;
        }
        r[i].ph->tokens = (double)res->summary.tokens;
        r[i].sim = res;
        if (h.failed) {
            ms_error_set(&err, MS_E_INTERNAL, "the simulator gave a step the power model cannot read");
            rc = cli_fail(cmd, &err);
            break;
        }
        snprintf(r[i].label, sizeof r[i].label, "%s (%s, route %s, %s batches, hw %s, model %s)", o.placements[i],
                 in.pl[i]->algorithm[0] ? in.pl[i]->algorithm : "placement", ms_route_name(o.so.route),
                 ms_batch_mode_name(o.bo.mode), in.hw.name, in.model.name);
    }
    if (rc == 0) rc = finish(cmd, r, n, &c, prec, &po, o.fmt, o.out, "trace", sim_cli_caps_json(&in));
    for (int i = 0; i < n; i++) {
        ms_power_phases_free(r[i].ph);
        ms_power_result_free(r[i].res);
        ms_sim_result_free(r[i].sim);
    }
    sim_inputs_free(&in);
    ms_free(sargv);
    ms_free(rest);
    return rc;
}
