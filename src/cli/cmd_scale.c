/* cmd_scale.c - moesim scale: energy and power with MoE model size. */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "moesim/deploy.h"

static const char *usage_text =
    "usage: moesim scale [options]\n"
    "\n"
    "How energy and power grow with MoE model size, on GPUs of one type (A100 by default,\n"
    "for a fair comparison). A family of models from about 1B to several T parameters\n"
    "(hidden d; layers L = max(2, round(d / aspect)); E experts of hidden f = ratio x d;\n"
    "top-k), plus sweeps at fixed total weights with more, smaller experts (top-k fixed,\n"
    "or scaled so active parameters stay fixed). For each: GPUs to hold it, inference\n"
    "(decode) energy per token, average and peak power, training energy per token\n"
    "(6 N_active + 6 L S d FLOPs) and for a token budget; power-law and linear fits\n"
    "against total and active parameters; and the power wall: the largest model a site\n"
    "of 10, 100, 1000 MW can serve and train, balanced and under expert-load skew.\n"
    "Formulas: docs/MODEL.md, 'Scaling' and 'Site budget'.\n"
    "\n"
    "hardware:\n"
    "  --gpu NAME          hardware preset (default a100; presets/hw or a .json path)\n"
    "  --energy NAME       energy coefficients (default: the GPU's)\n"
    "  --coef KEY=VALUE    override one energy coefficient (repeat; e.g. pue=1.5)\n"
    "  --gpus-per-node N   NVLink domain (default 8)\n"
    "  --precision P       bf16 (default), fp8, fp32\n"
    "family:\n"
    "  --sizes LIST        target total parameters (default 1e9,3e9,1e10,3e10,1e11,3e11,1e12,3e12)\n"
    "  --experts N         experts per layer (64)      --top-k K        experts per token (2)\n"
    "  --expert-ratio R    expert hidden / d (0.5)     --aspect A       d / layers (96)\n"
    "  --expert-matrices M 2 or 3 (gated, default)     --kv-ratio R     kv heads / heads (0.125)\n"
    "  --vocab N           embedding rows (0: not modelled)\n"
    "  --sweep-total N     total parameters of the expert sweeps (1e12; 0 = none)\n"
    "  --sweep-experts LIST  experts per layer in the sweeps (8,16,...,1024)\n"
    "inference:\n"
    "  --decode-batch B    concurrent sequences per step (256)\n"
    "  --context S         context tokens (2048)\n"
    "  --mem-usable X      share of GPU memory usable (0.9)\n"
    "  --overlap-eff E     communication hidden behind compute (0.9)\n"
    "training:\n"
    "  --train-bytes-per-param B   weights + gradients + Adam moments (16)\n"
    "  --train-seq S       sequence length (4096)\n"
    "  --train-batch-tokens N      tokens per optimizer step (4194304)\n"
    "  --train-tokens N    token budget (1e12)\n"
    "site budget (the power wall):\n"
    "  --site-power LIST   site budgets in MW at the wall: GPUs + node overhead, x PUE\n"
    "                      (10,100,1000; --sites is the same). For each: the replicas of\n"
    "                      every model's inference deployment the budget powers and the\n"
    "                      tokens/s they serve, the model serving the most, the largest\n"
    "                      (by total parameters) serving --demand, the serving wall (the\n"
    "                      largest family model serving --demand) and the training wall\n"
    "                      (the largest family model trainable in --days)\n"
    "  --provision P       measured (default): GPUs provisioned for their computed peak\n"
    "                      draw (at most TDP), as a site that knows its workload and caps\n"
    "                      its GPUs does; tdp: for nameplate TDP\n"
    "  --demand TOK/S      tokens/s the site must serve (1e6)\n"
    "  --days D            training time allowed (90)\n"
    "  --tokens-per-param T  training tokens per total parameter (20)\n"
    "expert-load skew (every site answer is given balanced and skewed):\n"
    "  --imbalance X       max/mean expert load over EP ranks (>= 1; at most the ranks)\n"
    "  --imbalance-from TRACE  measure it from a trace for each model's EP ranks (the\n"
    "                      largest divisor of the experts not above its GPUs); the trace\n"
    "                      needs the family's expert count (TRACE@train/@eval accepted)\n"
    "  --imbalance-layout L  contiguous (default) or round-robin experts on EP ranks\n"
    "  --imbalance-window N  tokens per window (default: a decode step for inference, EP\n"
    "                      ranks x a sequence for training; the whole trace if shorter)\n"
    "output:\n"
    "  --format F          table (default), json, or csv (one line per model; with\n"
    "                      --site-power, one line per case, site and model)\n"
    "  -o FILE             write there (atomically) instead of stdout\n"
    "\n"
    "exit status: 0 success, 2 bad input or usage, 1 internal error\n"
    "\n"
    "examples:\n"
    "  moesim scale\n"
    "  moesim scale --gpu h100-sxm --sizes 1e10,1e11,1e12 --format csv -o scale.csv\n"
    "  moesim scale --site-power 10,100,1000 --imbalance-from ../shared/data/deepseek-v2-lite-puffin\n"
    "  moesim scale --site-power 100 --provision tdp --imbalance 1.5 --demand 1e7 --format json\n";

enum {
    O_GPU = 256, O_ENERGY, O_COEF, O_GPN, O_PREC, O_SIZES, O_EXPERTS, O_TOPK, O_RATIO, O_ASPECT, O_MATS, O_KV, O_VOCAB,
    O_SWT, O_SWE, O_DB, O_CTX, O_MEMU, O_EFF, O_TBPP, O_TSEQ, O_TBT, O_TT, O_SITES, O_DAYS, O_TPP, O_FORMAT,
    O_PROV, O_DEMAND, O_IMB, O_IMB_FROM, O_IMB_LAYOUT, O_IMB_WIN
};

static const char *fmt_params(double p, char *buf, size_t n) {
    if (p >= 1e12) snprintf(buf, n, "%.4gT", p / 1e12);
    else if (p >= 1e9) snprintf(buf, n, "%.3gB", p / 1e9);
    else snprintf(buf, n, "%.3gM", p / 1e6);
    return buf;
}

static bool skew_on(const ms_scale_opts *o) { return o->skew.trace || o->skew.imbalance != 1.0; }

/* "0.97B (size, L x d)" */
static const char *model_label(const ms_scale_point *p, char *buf, size_t n) {
    char a[16], b[16];
    snprintf(buf, n, "%s total / %s active (%s, %u x %u, %u experts top-%u)", fmt_params(p->total_params, a, sizeof a),
             fmt_params(p->active_params, b, sizeof b), p->sweep, p->layers, p->hidden, p->experts, p->top_k);
    return buf;
}

static void pick_line(FILE *fp, const char *what, const ms_scale_site *z, const ms_scale_point *pts, int32_t i) {
    char m[160];
    if (i < 0) {
        fprintf(fp, "    %-34s none\n", what);
        return;
    }
    const ms_site_fit *f = &z->fits[i];
    fprintf(fp, "    %-34s %s: %llu replicas x %u GPUs, %.4g tokens/s\n", what, model_label(&pts[i], m, sizeof m),
            (unsigned long long)f->replicas, f->replica_gpus, f->tokens_per_s);
}

static void site_table(FILE *fp, const ms_scale_result *r, const ms_scale_opts *o) {
    const ms_energy_coeffs *c = &o->energy;
    bool sk = skew_on(o);
    if (!r->n_sites) return;
    fprintf(fp, "\npower wall: what a site budget serves and trains (GPUs provisioned for %s + %g W/GPU node "
                "overhead, x PUE %g)\n",
            o->provision == MS_PROVISION_TDP ? "their TDP" : "their measured peak draw (at most TDP)",
            c->node_overhead_w, c->pue);
    if (sk) fprintf(fp, "skewed case: %s\n", r->skew_source);
    for (int k = 0; k < (sk ? MS_SITE_CASES : 1); k++) {
        const ms_scale_point *pts = k == MS_SITE_SKEWED ? r->skew_points : r->points;
        fprintf(fp, "\n%s: one inference replica (decode of %u sequences) and whole replicas per site\n",
                k == MS_SITE_SKEWED ? "skewed" : "balanced (imbalance 1)", o->decode_batch);
        fprintf(fp, "%-17s %8s %8s %5s %5s %6s %9s %9s |", "sweep", "total", "active", "E", "GPUs", "imb", "wall kW",
                "tok/s");
        for (uint32_t j = 0; j < r->n_sites; j++) fprintf(fp, " %9g MW: replicas tokens/s", r->sites[k][j].site_mw);
        fprintf(fp, "\n");
        for (uint32_t i = 0; i < r->n_points; i++) {
            const ms_scale_point *p = &pts[i];
            char a[16], b[16];
            fprintf(fp, "%-17s %8s %8s %5u %5u ", p->sweep, fmt_params(p->total_params, a, sizeof a),
                    fmt_params(p->active_params, b, sizeof b), p->experts, p->gpus_infer);
            if (!p->skew_known) {
                fprintf(fp, "%6s %9s %9s | not measured (the trace has other experts)\n", "n/a", "", "");
                continue;
            }
            fprintf(fp, "%6.3f %9.4g %9.4g |", p->infer_imbalance, r->sites[k][0].fits[i].replica_site_w / 1e3,
                    p->infer_tokens_per_s);
            for (uint32_t j = 0; j < r->n_sites; j++) {
                const ms_site_fit *f = &r->sites[k][j].fits[i];
                fprintf(fp, " %22llu %9.4g", (unsigned long long)f->replicas, f->tokens_per_s);
            }
            fprintf(fp, "\n");
        }
    }
    for (uint32_t j = 0; j < r->n_sites; j++) {
        fprintf(fp, "\nat %g MW:\n", r->sites[0][j].site_mw);
        for (int k = 0; k < (sk ? MS_SITE_CASES : 1); k++) {
            const ms_scale_site *z = &r->sites[k][j];
            const ms_scale_point *pts = k == MS_SITE_SKEWED ? r->skew_points : r->points;
            char m[160], line[64];
            fprintf(fp, "  %s\n", k == MS_SITE_SKEWED ? "skewed" : "balanced");
            pick_line(fp, "most tokens/s:", z, pts, z->best_tokens);
            pick_line(fp, "most tokens/s, fixed-total sweeps:", z, pts, z->best_sweep);
            snprintf(line, sizeof line, "largest serving >= %.3g tokens/s:", o->demand_tokens_per_s);
            pick_line(fp, line, z, pts, z->best_quality);
            if (z->serve_found)
                fprintf(fp, "    %-34s %s: %llu replicas x %u GPUs, %.4g tokens/s\n", "serving wall (family):",
                        model_label(&z->serve, m, sizeof m), (unsigned long long)z->serve_fit.replicas,
                        z->serve_fit.replica_gpus, z->serve_fit.tokens_per_s);
            else
                fprintf(fp, "    %-34s no family model serves %.3g tokens/s\n", "serving wall (family):",
                        o->demand_tokens_per_s);
            const ms_scale_wall *w = &z->train;
            char a[16];
            if (w->compute_found)
                fprintf(fp, "    %-34s %s in %.3g days on %u GPUs (imbalance %.3g), %.4g GWh at the site; its "
                            "training state would fit %s parameters\n",
                        "training wall (family):", model_label(&w->compute, m, sizeof m), w->compute_days, w->gpus,
                        w->imbalance, w->compute_site_j / 3.6e12, fmt_params(w->memory_max_params, a, sizeof a));
            else
                fprintf(fp, "    %-34s no family model trains in %g days\n", "training wall (family):", o->wall_days);
        }
    }
}

static void table(FILE *fp, const ms_scale_result *r, const ms_scale_opts *o) {
    fprintf(fp, "scale      GPU %s (%g TFLOPS x %g, %g TB/s x %g, %g GB), energy %s (idle %g W, TDP %g W, +%g W/GPU "
                "node, PUE %g), %s\n",
            o->gpu.name, o->precision == MS_PREC_FP8 ? o->gpu.peak_tflops_fp8 : o->gpu.peak_tflops_bf16, o->gpu.mfu,
            o->gpu.hbm_tb_s, o->gpu.hbm_util, o->gpu.memory_gb, o->energy.name, o->energy.idle_w, o->energy.tdp_w,
            o->energy.node_overhead_w, o->energy.pue, ms_precision_name(o->precision));
    fprintf(fp, "family     %u experts top-%u, expert hidden %g d, L = d / %g, %u matrices, kv/heads %g; inference: "
                "decode %u sequences at %u context; training: %g B/param, seq %g, %g tokens/step, budget %g tokens\n\n",
            o->experts, o->top_k, o->expert_ratio, o->aspect, o->expert_matrices, o->kv_ratio, o->decode_batch,
            o->context, o->train_bytes_per_param, o->train_seq, o->train_batch_tokens, o->train_tokens);
    fprintf(fp, "%-17s %4s %6s %5s %4s %6s %7s %7s | %6s %9s %9s %9s %9s | %6s %9s %9s %9s %8s\n", "sweep", "L", "d",
            "E", "k", "f", "total", "active", "GPUs", "inf J/tok", "inf kW", "peak kW", "tok/s", "GPUs", "trn J/tok",
            "trn kW", "budgetMWh", "days");
    for (uint32_t i = 0; i < r->n_points; i++) {
        const ms_scale_point *p = &r->points[i];
        char a[16], b[16];
        fprintf(fp, "%-17s %4u %6u %5u %4u %6u %7s %7s | %6u %9.4g %9.4g %9.4g %9.4g | %6u %9.4g %9.4g %9.4g %8.4g\n",
                p->sweep, p->layers, p->hidden, p->experts, p->top_k, p->expert_hidden,
                fmt_params(p->total_params, a, sizeof a), fmt_params(p->active_params, b, sizeof b), p->gpus_infer,
                p->infer_j_per_token, p->infer_avg_w / 1e3, p->infer_peak_w / 1e3, p->infer_tokens_per_s,
                p->gpus_train, p->train_j_per_token, p->train_avg_w / 1e3, p->budget_j / 3.6e9, p->budget_days);
    }
    fprintf(fp, "\ntrends over the size family (linear y = a + b x; power law y = a x^b)\n");
    fprintf(fp, "%-20s %-7s %12s %8s | %10s %9s %9s | %s\n", "metric", "vs", "linear b", "R2", "exponent", "R2(log)",
            "R2(y)", "better");
    for (uint32_t i = 0; i < r->n_trends; i++) {
        const ms_scale_trend *t = &r->trends[i];
        fprintf(fp, "%-20s %-7s %12.4g %8.4f | %10.4f %9.4f %9.4f | %s\n", t->metric, t->x, t->linear.b, t->linear.r2,
                t->power.b, t->power.r2, t->power.r2_linear_space, t->power_wins ? "power law" : "linear");
    }
    site_table(fp, r, o);
}

static void csv(FILE *fp, const ms_scale_result *r) {
    fprintf(fp, "sweep,target_params,layers,hidden,experts,top_k,expert_hidden,total_params,active_params,gpus_infer,"
                "infer_step_s,infer_tokens_per_s,infer_j_per_token,infer_avg_w,infer_peak_w,infer_site_w,gpus_train,"
                "train_flops_per_token,train_j_per_token,train_avg_w,train_peak_w,train_site_w,budget_j,budget_days,"
                "budget_site_j\n");
    for (uint32_t i = 0; i < r->n_points; i++) {
        const ms_scale_point *p = &r->points[i];
        fprintf(fp,
                "%s,%.17g,%u,%u,%u,%u,%u,%.17g,%.17g,%u,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%u,%.17g,%.17g,%.17g,%.17g,"
                "%.17g,%.17g,%.17g,%.17g\n",
                p->sweep, p->target, p->layers, p->hidden, p->experts, p->top_k, p->expert_hidden, p->total_params,
                p->active_params, p->gpus_infer, p->infer_step_s, p->infer_tokens_per_s, p->infer_j_per_token,
                p->infer_avg_w, p->infer_peak_w, p->infer_site_w, p->gpus_train, p->train_flops_per_token,
                p->train_j_per_token, p->train_avg_w, p->train_peak_w, p->train_site_w, p->budget_j, p->budget_days,
                p->budget_site_j);
    }
}

static void site_csv(FILE *fp, const ms_scale_result *r) {
    fprintf(fp, "case,site_mw,index,sweep,total_params,active_params,experts,top_k,skew_known,gpus_per_replica,"
                "ep_ranks,imbalance,replica_tokens_per_s,replica_peak_w,replica_site_w,replicas,gpus,tokens_per_s,"
                "tokens_per_s_per_mw,used_mw\n");
    for (int k = 0; k < MS_SITE_CASES; k++) {
        const ms_scale_point *pts = k == MS_SITE_SKEWED ? r->skew_points : r->points;
        for (uint32_t j = 0; j < r->n_sites; j++)
            for (uint32_t i = 0; i < r->n_points; i++) {
                const ms_scale_point *p = &pts[i];
                const ms_site_fit *f = &r->sites[k][j].fits[i];
                fprintf(fp, "%s,%.17g,%u,%s,%.17g,%.17g,%u,%u,%d,%u,%u,", ms_site_case_name(k), f->site_mw, i,
                        p->sweep, p->total_params, p->active_params, p->experts, p->top_k, p->skew_known,
                        p->gpus_infer, p->ep_ranks_infer);
                if (p->skew_known)
                    fprintf(fp, "%.17g,%.17g,%.17g,%.17g,", p->infer_imbalance, p->infer_tokens_per_s,
                            p->infer_peak_w, f->replica_site_w);
                else
                    fprintf(fp, ",,,,");
                fprintf(fp, "%llu,%llu,%.17g,%.17g,%.17g\n", (unsigned long long)f->replicas,
                        (unsigned long long)f->gpus, f->tokens_per_s, f->tokens_per_s_per_mw, f->used_mw);
            }
    }
}

int cmd_scale(int argc, char **argv) {
    static const struct option lo[] = {
        {"gpu", required_argument, 0, O_GPU},
        {"energy", required_argument, 0, O_ENERGY},
        {"coef", required_argument, 0, O_COEF},
        {"gpus-per-node", required_argument, 0, O_GPN},
        {"precision", required_argument, 0, O_PREC},
        {"sizes", required_argument, 0, O_SIZES},
        {"experts", required_argument, 0, O_EXPERTS},
        {"top-k", required_argument, 0, O_TOPK},
        {"expert-ratio", required_argument, 0, O_RATIO},
        {"aspect", required_argument, 0, O_ASPECT},
        {"expert-matrices", required_argument, 0, O_MATS},
        {"kv-ratio", required_argument, 0, O_KV},
        {"vocab", required_argument, 0, O_VOCAB},
        {"sweep-total", required_argument, 0, O_SWT},
        {"sweep-experts", required_argument, 0, O_SWE},
        {"decode-batch", required_argument, 0, O_DB},
        {"context", required_argument, 0, O_CTX},
        {"mem-usable", required_argument, 0, O_MEMU},
        {"overlap-eff", required_argument, 0, O_EFF},
        {"train-bytes-per-param", required_argument, 0, O_TBPP},
        {"train-seq", required_argument, 0, O_TSEQ},
        {"train-batch-tokens", required_argument, 0, O_TBT},
        {"train-tokens", required_argument, 0, O_TT},
        {"sites", required_argument, 0, O_SITES},
        {"site-power", required_argument, 0, O_SITES},
        {"provision", required_argument, 0, O_PROV},
        {"demand", required_argument, 0, O_DEMAND},
        {"imbalance", required_argument, 0, O_IMB},
        {"imbalance-from", required_argument, 0, O_IMB_FROM},
        {"imbalance-layout", required_argument, 0, O_IMB_LAYOUT},
        {"imbalance-window", required_argument, 0, O_IMB_WIN},
        {"days", required_argument, 0, O_DAYS},
        {"tokens-per-param", required_argument, 0, O_TPP},
        {"format", required_argument, 0, O_FORMAT},
        {"output", required_argument, 0, 'o'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *cmd = "scale";
    ms_scale_opts o;
    ms_scale_opts_default(&o);
    const char *gpu = "a100", *energy = NULL, *out = NULL, *skew_trace = NULL;
    bool site_rows = false;
    uint64_t u64;
    const char *coefs[32];
    int n_coef = 0;
    cli_format fmt = CLI_TABLE;
    ms_error err = {0};
    double list[32];
    uint32_t n;
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, ":o:h", lo, NULL)) != -1) {
        switch (ch) {
        case 'h':
            cli_print_help(usage_text);
            return 0;
        case 'o': out = optarg; break;
        case O_GPU: gpu = optarg; break;
        case O_ENERGY: energy = optarg; break;
        case O_COEF:
            if (n_coef >= 32) return cli_usage(cmd, "at most 32 --coef");
            coefs[n_coef++] = optarg;
            break;
        case O_GPN: if (cli_parse_u32(cmd, "--gpus-per-node", optarg, &o.gpus_per_node)) return 2; break;
        case O_PREC:
            if (ms_precision_parse(optarg, &o.precision, &err) != MS_OK) return cli_usage(cmd, "%s", err.msg);
            break;
        case O_SIZES:
            if (cli_parse_list(cmd, "--sizes", optarg, o.sizes, 32, &o.n_sizes)) return 2;
            break;
        case O_EXPERTS: if (cli_parse_u32(cmd, "--experts", optarg, &o.experts)) return 2; break;
        case O_TOPK: if (cli_parse_u32(cmd, "--top-k", optarg, &o.top_k)) return 2; break;
        case O_RATIO: if (cli_parse_double(cmd, "--expert-ratio", optarg, &o.expert_ratio)) return 2; break;
        case O_ASPECT: if (cli_parse_double(cmd, "--aspect", optarg, &o.aspect)) return 2; break;
        case O_MATS: if (cli_parse_u32(cmd, "--expert-matrices", optarg, &o.expert_matrices)) return 2; break;
        case O_KV: if (cli_parse_double(cmd, "--kv-ratio", optarg, &o.kv_ratio)) return 2; break;
        case O_VOCAB: if (cli_parse_u32(cmd, "--vocab", optarg, &o.vocab)) return 2; break;
        case O_SWT: if (cli_parse_double(cmd, "--sweep-total", optarg, &o.sweep_total)) return 2; break;
        case O_SWE:
            if (cli_parse_list(cmd, "--sweep-experts", optarg, list, 32, &n)) return 2;
            for (uint32_t i = 0; i < n; i++) {
                if (list[i] < 1 || list[i] > 65536 || list[i] != floor(list[i]))
                    return cli_usage(cmd, "--sweep-experts: %g is not an expert count in 1..65536", list[i]);
                o.sweep_experts[i] = (uint32_t)list[i];
            }
            o.n_sweep = n;
            break;
        case O_DB: if (cli_parse_u32(cmd, "--decode-batch", optarg, &o.decode_batch)) return 2; break;
        case O_CTX: if (cli_parse_u32(cmd, "--context", optarg, &o.context)) return 2; break;
        case O_MEMU: if (cli_parse_double(cmd, "--mem-usable", optarg, &o.mem_usable)) return 2; break;
        case O_EFF: if (cli_parse_double(cmd, "--overlap-eff", optarg, &o.overlap_eff)) return 2; break;
        case O_TBPP:
            if (cli_parse_double(cmd, "--train-bytes-per-param", optarg, &o.train_bytes_per_param)) return 2;
            break;
        case O_TSEQ: if (cli_parse_double(cmd, "--train-seq", optarg, &o.train_seq)) return 2; break;
        case O_TBT: if (cli_parse_double(cmd, "--train-batch-tokens", optarg, &o.train_batch_tokens)) return 2; break;
        case O_TT: if (cli_parse_double(cmd, "--train-tokens", optarg, &o.train_tokens)) return 2; break;
        case O_SITES:
            if (cli_parse_list(cmd, "--site-power", optarg, o.site_mw, MS_SITE_MAX, &o.n_sites)) return 2;
            for (uint32_t i = 0; i < o.n_sites; i++)
                if (!(o.site_mw[i] > 0)) return cli_usage(cmd, "--site-power: %g MW is not a positive budget", o.site_mw[i]);
            site_rows = true;
            break;
        case O_PROV:
            if (ms_provision_parse(optarg, &o.provision, &err) != MS_OK) return cli_usage(cmd, "%s", err.msg);
            break;
        case O_DEMAND:
            if (cli_parse_double(cmd, "--demand", optarg, &o.demand_tokens_per_s)) return 2;
            if (!(o.demand_tokens_per_s > 0)) return cli_usage(cmd, "--demand must be positive tokens/s");
            break;
        case O_IMB:
            if (cli_parse_double(cmd, "--imbalance", optarg, &o.skew.imbalance)) return 2;
            if (!(o.skew.imbalance >= 1))
                return cli_usage(cmd, "--imbalance is max/mean expert load over EP ranks: at least 1, got '%s'", optarg);
            break;
        case O_IMB_FROM: skew_trace = optarg; break;
        case O_IMB_LAYOUT:
            if (ms_ep_layout_parse(optarg, &o.skew.layout, &err) != MS_OK) return cli_usage(cmd, "%s", err.msg);
            break;
        case O_IMB_WIN:
            if (cli_parse_u64(cmd, "--imbalance-window", optarg, &u64)) return 2;
            if (!u64) return cli_usage(cmd, "--imbalance-window must be at least 1 token");
            o.skew.window = u64;
            break;
        case O_DAYS: if (cli_parse_double(cmd, "--days", optarg, &o.wall_days)) return 2; break;
        case O_TPP: if (cli_parse_double(cmd, "--tokens-per-param", optarg, &o.tokens_per_param)) return 2; break;
        case O_FORMAT: if (cli_parse_format(cmd, optarg, &fmt)) return 2; break;
        case ':': return cli_usage(cmd, "option %s needs a value", argv[optind - 1]);
        default: return cli_usage(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage(cmd, "unexpected argument '%s'", argv[optind]);
    if (ms_hw_preset_load(gpu, &o.gpu, &err) != MS_OK) return cli_fail(cmd, &err);
    if (ms_energy_load(energy ? energy : o.gpu.name, &o.energy, &err) != MS_OK) return cli_fail(cmd, &err);
    for (int i = 0; i < n_coef; i++)
        if (ms_energy_set_str(&o.energy, coefs[i], &err) != MS_OK) return cli_usage(cmd, "%s", err.msg);
    if (skew_trace && o.skew.imbalance != 1.0) return cli_usage(cmd, "give --imbalance or --imbalance-from, not both");
    ms_trace *trace = NULL;
    if (skew_trace) {
        cli_trace_opts to = {0, 0, 0};
        int rc = cli_load_trace(cmd, (char **)&skew_trace, 1, &to, &trace);
        if (rc) return rc;
        o.skew.trace = trace;
    }
    ms_scale_result *r = NULL;
    ms_status st = ms_scale_run(&o, &r, &err);
    if (st != MS_OK) {
        ms_trace_free(trace);
        return cli_fail(cmd, &err);
    }
    ms_afile f;
    int rc = cli_open_output(cmd, out, &f);
    if (rc) {
        ms_scale_result_free(r);
        ms_trace_free(trace);
        return rc;
    }
    if (fmt == CLI_TABLE) {
        table(f.fp, r, &o);
    } else if (fmt == CLI_CSV) {
        if (site_rows) site_csv(f.fp, r);
        else csv(f.fp, r);
    } else {
        json_t *root = ms_scale_result_json(r, &o);
        json_object_set_new(root, "command", json_string("scale"));
        char *s = root ? json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(17) | JSON_SORT_KEYS) : NULL;
        json_decref(root);
        if (!s) {
            ms_afile_abort(&f);
            ms_scale_result_free(r);
            ms_trace_free(trace);
            ms_error_set(&err, MS_E_NOMEM, "out of memory writing JSON");
            return cli_fail(cmd, &err);
        }
        fprintf(f.fp, "%s\n", s);
        free(s);
    }
    ms_scale_result_free(r);
    ms_trace_free(trace);
    return cli_commit_output(cmd, &f);
}
