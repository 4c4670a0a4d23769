/* cmd_deploy.c - moesim deploy: analytic comparison of whole deployments. */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "moesim/deploy.h"

static const char *usage_text =
    "usage: moesim deploy [--preset NAME|FILE] [options]\n"
    "\n"
    "An analytic model of a whole MoE deployment on GPUs of one type, for any plan\n"
    "TP x PP x EP x DP: memory per GPU (weights, KV cache, activations, communication\n"
    "buffers) with a clear refusal when it does not fit, the micro-batch, time per layer\n"
    "on its slowest GPU split into compute, memory and communication (TP all-reduce, EP\n"
    "all-to-all) with and without overlap, pipeline schedule, throughput, latency,\n"
    "energy per token (compute, memory, NVLink, network, idle) and a verdict comparing\n"
    "the plans. Formulas: docs/MODEL.md, 'Deployments'.\n"
    "\n"
    "presets (presets/deploy/):\n"
    "  --preset NAME       seed-4layer: seed experiment 1, 16 H100s, baseline TP=8 x PP=2\n"
    "                      vs the method EP=16 (one expert per GPU per layer, overlap);\n"
    "                      seed-61layer: seed experiment 2, 3904 H100s, one expert per\n"
    "                      GPU (PP=61 x EP=64) vs TP=8 x DP=8 x PP=61;\n"
    "                      deepseek-v2-lite-a100: DeepSeek-V2-Lite prefill on A100s, one GPU\n"
    "                      per replica to EP=64 (for --site-power); or a .json path\n"
    "\n"
    "plans (replace the preset's):\n"
    "  --plan SPEC         NAME:tp=8,pp=2,ep=1,dp=1,overlap=0,eff=0.9,imbalance=1,\n"
    "                      dispatch_bytes=2 (repeat to compare; every key optional)\n"
    "  --tp N --pp N --ep N --dp N   one plan named 'custom'\n"
    "  applied to every plan:\n"
    "  --overlap on|off    communication overlapped with compute across micro-batches\n"
    "  --overlap-eff E     share of the shorter of kernels and communication hidden (0..1)\n"
    "  --imbalance X       max/mean expert load over EP ranks (>= 1; routing skew)\n"
    "  --dispatch-bytes B  bytes per dispatched value (e.g. 1 for FP8 dispatch)\n"
    "\n"
    "hardware:\n"
    "  --gpu NAME          hardware preset (presets/hw: seed-h100, h100-sxm, h200, h800,\n"
    "                      a100, b200) or .json path\n"
    "  --energy NAME       energy coefficients (presets/energy-NAME.json; default: --gpu's)\n"
    "  --coef KEY=VALUE    override one energy coefficient (repeat; see moesim power --help)\n"
    "  --gpus-per-node N   NVLink domain (default 8)\n"
    "  --gpus N            every plan must use exactly N GPUs (equal hardware; 0 = any;\n"
    "                      default: the preset's)\n"
    "  --mem-reserve GB    per GPU, for the runtime (default 0)\n"
    "\n"
    "model (override the preset's):\n"
    "  --layers N --dense-layers N --hidden N --heads N --head-dim N --kv-heads N\n"
    "  --experts N --top-k K --expert-hidden N --expert-matrices 2|3 --shared-experts N\n"
    "  --dense-hidden N --vocab N --precision fp32|bf16|fp16|fp8\n"
    "\n"
    "workload:\n"
    "  --phase prefill|decode   prefill: process every sequence once; decode: one step of\n"
    "                      concurrent sequences at context --seq-len\n"
    "  --sequences N --seq-len N\n"
    "  --micro-batch N     sequences per micro-batch, a multiple of dp x ep (whole\n"
    "                      sequences per attention group; default: the fastest that fits)\n"
    "  --chunk N           prefill: tokens of each sequence per micro-batch (chunked\n"
    "                      prefill, causal only; default: the fastest that fits)\n"
    "  --no-causal         full (non-causal) attention scores\n"
    "  --no-flash          materialise the S x S score matrix\n"
    "\n"
    "site budget (which plan serves the most tokens/s on a power budget):\n"
    "  --site-power LIST   site budgets in MW at the wall: GPUs + node overhead, x PUE\n"
    "                      (e.g. 10,100,1000). For each plan: the whole replicas the budget\n"
    "                      powers, their tokens/s and energy per token, and the winner,\n"
    "                      for a balanced expert load (imbalance 1) and for the skew (the\n"
    "                      plans' --imbalance or --imbalance-from). Plans need not use\n"
    "                      equal GPUs (the budget is the common ground; --gpus still\n"
    "                      applies) and plans that do not fit get no replica\n"
    "  --provision P       measured (default): a replica's GPUs provisioned for their\n"
    "                      computed peak draw (each at most TDP; with skew the larger of\n"
    "                      the balanced and skewed peaks); tdp: for nameplate TDP\n"
    "  --imbalance-from TRACE  the skew measured from a trace for each plan's EP degree:\n"
    "                      max/mean expert load over its EP ranks, mean over windows and\n"
    "                      layers (the trace needs the model's expert count)\n"
    "  --imbalance-layout L  contiguous (default) or round-robin experts on EP ranks\n"
    "  --imbalance-window N  tokens per window (default: the plan's tokens per EP group\n"
    "                      per micro-batch; the whole trace if shorter)\n"
    "  --ep-sweep          add plans epN (tp = pp = dp = 1, overlap on) for every power of\n"
    "                      two dividing the experts and for the experts themselves\n"
    "\n"
    "output:\n"
    "  --allow-unfit       report plans that do not fit instead of failing (exit 0)\n"
    "  --format F          table (default), json or csv (one line per plan; with\n"
    "                      --site-power, one line per case, plan and site)\n"
    "  -o FILE             write there (atomically) instead of stdout\n"
    "\n"
    "exit status: 0 success, 2 bad input or a plan that does not fit, 1 internal error\n"
    "\n"
    "examples:\n"
    "  moesim deploy --preset seed-4layer\n"
    "  moesim deploy --preset seed-61layer --format json -o seed61.json\n"
    "  moesim deploy --preset seed-4layer --gpu h100-sxm --imbalance 1.5\n"
    "  moesim deploy --preset seed-4layer --plan tp8:tp=8,pp=2 --plan ep16:ep=16,overlap=1 \\\n"
    "      --plan ep8dp2:ep=8,dp=2,overlap=1\n"
    "  moesim deploy --preset seed-4layer --site-power 10,100,1000 --imbalance 1.5\n"
    "  moesim deploy --preset deepseek-v2-lite-a100 --site-power 10,100,1000 \\\n"
    "      --imbalance-from ../shared/data/deepseek-v2-lite-puffin --format json\n";

enum {
    O_PRESET = 256, O_PLAN, O_TP, O_PP, O_EP, O_DP, O_OVERLAP, O_EFF, O_IMB, O_DISP, O_GPU, O_ENERGY, O_COEF, O_GPN,
    O_GPUS, O_RESERVE, O_LAYERS, O_DENSE, O_HIDDEN, O_HEADS, O_HEADDIM, O_KVH, O_EXPERTS, O_TOPK, O_EHID, O_EMAT,
    O_SHARED, O_DHID, O_VOCAB, O_PREC, O_PHASE, O_SEQS, O_SEQLEN, O_MICRO, O_CHUNK, O_NOCAUSAL, O_NOFLASH, O_UNFIT, O_FORMAT,
    O_SITE, O_PROV, O_IMB_FROM, O_IMB_LAYOUT, O_IMB_WIN, O_EP_SWEEP
};

#define MAX_COEF 32

static void table(FILE *fp, const ms_deploy_preset *ps, const ms_deploy_hw *hw, const ms_deploy_result *r, uint32_t n,
                  const char *verdict) {
    const ms_deploy_model *m = &ps->model;
    const ms_deploy_workload *w = &ps->workload;
    const ms_hw_preset *g = &hw->gpu;
    double tot, act;
    ms_deploy_params(m, &tot, &act);
    fprintf(fp, "deploy     %s%s%s\n", ps->name, ps->description[0] ? ": " : "", ps->description);
    fprintf(fp, "model      %s: %u layers (%u dense), d %u, %u heads x %u (kv %u), %u experts top-%u, expert hidden %u "
                "(%u matrices), %s; %.4g B params, %.4g B active per token\n",
            m->name, m->layers, m->dense_layers, m->hidden, m->heads, m->head_dim, m->kv_heads ? m->kv_heads : m->heads,
            m->experts, m->top_k, m->expert_hidden, m->expert_matrices, ms_precision_name(m->precision), tot / 1e9,
            act / 1e9);
    fprintf(fp, "hardware   %s: %g TFLOPS x %g MFU, %g TB/s x %g, %g GB, NVLink %g GB/s x %g, NIC %g GB/s x %g, %u GPUs "
                "per node; energy %s (net %.4g pJ/bit)\n",
            g->name, m->precision == MS_PREC_FP8 ? g->peak_tflops_fp8 : g->peak_tflops_bf16, g->mfu, g->hbm_tb_s,
            g->hbm_util, g->memory_gb, g->nvlink_gb_s, g->nvlink_efficiency, g->nic_gb_s, g->net_efficiency,
            hw->gpus_per_node, hw->energy.name, ms_energy_net_pj_per_bit(&hw->energy));
    fprintf(fp, "workload   %s: %llu sequences x %llu tokens%s\n\n", w->phase == MS_DEPLOY_PREFILL ? "prefill" : "decode",
            (unsigned long long)w->sequences, (unsigned long long)w->seq_len,
            w->phase == MS_DEPLOY_PREFILL ? "" : " of context, one new token each per step");
    fprintf(fp, "%-34s", "");
    for (uint32_t i = 0; i < n; i++) fprintf(fp, " %14s", r[i].plan.name);
    fprintf(fp, "\n");
#define ROW(label, fmt, expr)                                           \
    do {                                                                \
        fprintf(fp, "%-34s", label);                                    \
        for (uint32_t i = 0; i < n; i++) {                              \
            const ms_deploy_result *x = &r[i];                          \
            (void)x;                                                    \
            fprintf(fp, " " fmt, expr);                                 \
        }                                                               \
        fprintf(fp, "\n");                                              \
    } while (0)
#define ROWF(label, expr) ROW(label, "%14.4g", x->fits ? (expr) : NAN)
    char plan_s[16][32];
    for (uint32_t i = 0; i < n && i < 16; i++)
        snprintf(plan_s[i], sizeof plan_s[i], "%ux%ux%ux%u", r[i].plan.tp, r[i].plan.pp, r[i].plan.ep, r[i].plan.dp);
    ROW("GPUs", "%14u", x->gpus);
    ROW("tp x pp x ep x dp", "%14s", plan_s[x - r]);
    ROW("overlap (efficiency)", "%14s", x->plan.overlap ? "yes" : "no");
    ROW("expert imbalance (max/mean)", "%14.4g", x->plan.ep > 1 ? x->plan.imbalance : 1.0);
    ROW("fits in memory", "%14s", x->fits ? "yes" : "NO");
    ROW("memory per GPU, GB", "%14.4g", x->mem.total / 1e9);
    ROW("  weights", "%14.4g", x->mem.weights / 1e9);
    ROW("  KV cache", "%14.4g", x->mem.kv / 1e9);
    ROW("  activations", "%14.4g", x->mem.activations / 1e9);
    ROW("  communication buffers", "%14.4g", x->mem.comm_buffers / 1e9);
    ROW("  capacity", "%14.4g", x->mem.capacity / 1e9);
    ROW("whole batch at once, GB/GPU", "%14.4g", x->mem.whole_batch_total / 1e9);
    ROW("micro-batch (sequences)", "%14llu", (unsigned long long)x->micro_batch);
    if (w->phase == MS_DEPLOY_PREFILL) ROW("chunk (tokens per sequence)", "%14llu", (unsigned long long)x->chunk);
    ROW("micro-batches", "%14llu", (unsigned long long)x->n_micro);
    if (w->phase == MS_DEPLOY_DECODE) ROW("concurrent sequences", "%14llu", (unsigned long long)x->concurrency);
    for (int k = 0; k < 2; k++) {
        bool moe = k == 0;
        if (moe ? !r[0].moe.present : !r[0].dense.present) continue;
        fprintf(fp, "%s layer, ms per micro-batch (slowest GPU)\n", moe ? "MoE" : "dense");
#define L(f) (moe ? x->moe.f : x->dense.f) * 1e3
        ROWF("  compute", L(t_compute));
        ROWF("  memory", L(t_memory));
        ROWF("  kernels (roofline)", L(t_kernels));
        ROWF("  TP all-reduce", L(t_tp));
        ROWF("  EP all-to-all", L(t_ep));
        ROWF("  without overlap", L(t_no_overlap));
        ROWF("  with overlap", L(t_overlap));
        ROWF("  used by the plan", L(t_layer));
#undef L
    }
    ROWF("PP send per boundary, ms", x->t_p2p * 1e3);
    ROWF("slowest stage, ms", x->stage_s * 1e3);
    ROWF("latency, ms", x->latency_s * 1e3);
    ROWF("pipeline bubble (fill, drain, uneven stages), %", 100 * x->bubble);
    ROWF("total time, s", x->total_s);
    ROWF("throughput, tokens/s", x->tokens_per_s);
    ROWF("time per token, us", x->time_per_token_s * 1e6);
    ROWF("energy per token, J", x->j_per_token);
    ROWF("  compute, %", x->total_j > 0 ? 100 * x->energy_j[MS_PART_COMPUTE] / x->total_j : 0);
    ROWF("  memory, %", x->total_j > 0 ? 100 * x->energy_j[MS_PART_MEMORY] / x->total_j : 0);
    ROWF("  communication, %",
         x->total_j > 0 ? 100 * (x->energy_j[MS_PART_NVLINK] + x->energy_j[MS_PART_NETWORK]) / x->total_j : 0);
    ROWF("  idle (static + waiting), %",
         x->total_j > 0 ? 100 * (x->energy_j[MS_PART_STATIC] + x->energy_j[MS_PART_WAIT]) / x->total_j : 0);
    ROWF("average power, kW", x->avg_w / 1e3);
    ROWF("peak power, kW", x->peak_w / 1e3);
    ROWF("total energy, kWh", x->total_j / 3.6e6);
#undef ROWF
#undef ROW
    fprintf(fp, "\n%s", verdict);
}

static void csv(FILE *fp, const ms_deploy_result *r, uint32_t n) {
    fprintf(fp, "plan,tp,pp,ep,dp,gpus,overlap,overlap_eff,imbalance,fits,mem_gb,weights_gb,kv_gb,activations_gb,"
                "buffers_gb,capacity_gb,whole_batch_gb,micro_batch,chunk,micro_batches,concurrency,moe_compute_s,"
                "moe_memory_s,moe_kernels_s,moe_tp_s,moe_ep_s,moe_no_overlap_s,moe_overlap_s,moe_layer_s,"
                "dense_layer_s,stage_s,latency_s,bubble,total_s,tokens,tokens_per_s,time_per_token_s,j_per_token,"
                "compute_j,memory_j,nvlink_j,network_j,static_j,wait_j,avg_w,peak_w\n");
    for (uint32_t i = 0; i < n; i++) {
        const ms_deploy_result *x = &r[i];
        fprintf(fp, "%s,%u,%u,%u,%u,%u,%d,%.17g,%.17g,%d,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%llu,%llu,%llu,%llu",
                x->plan.name, x->plan.tp, x->plan.pp, x->plan.ep, x->plan.dp, x->gpus, x->plan.overlap,
                x->plan.overlap_eff, x->plan.imbalance, x->fits, x->mem.total / 1e9, x->mem.weights / 1e9,
                x->mem.kv / 1e9, x->mem.activations / 1e9, x->mem.comm_buffers / 1e9, x->mem.capacity / 1e9,
                x->mem.whole_batch_total / 1e9, (unsigned long long)x->micro_batch, (unsigned long long)x->chunk,
                (unsigned long long)x->n_micro,
                (unsigned long long)x->concurrency);
        const double v[] = {x->moe.t_compute, x->moe.t_memory, x->moe.t_kernels, x->moe.t_tp, x->moe.t_ep,
                            x->moe.t_no_overlap, x->moe.t_overlap, x->moe.t_layer, x->dense.t_layer, x->stage_s,
                            x->latency_s, x->bubble, x->total_s, x->tokens, x->tokens_per_s, x->time_per_token_s,
                            x->j_per_token, x->energy_j[0], x->energy_j[1], x->energy_j[2], x->energy_j[3],
                            x->energy_j[4], x->energy_j[5], x->avg_w, x->peak_w};
        for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) fprintf(fp, ",%.17g", v[k]);
        fprintf(fp, "\n");
    }
}

static json_t *hw_json(const ms_deploy_hw *hw) {
    const ms_hw_preset *g = &hw->gpu;
    json_t *o = json_object();
    json_object_set_new(o, "gpu", json_string(g->name));
    json_object_set_new(o, "peak_tflops_bf16", json_real(g->peak_tflops_bf16));
    json_object_set_new(o, "peak_tflops_fp8", json_real(g->peak_tflops_fp8));
    json_object_set_new(o, "mfu", json_real(g->mfu));
    json_object_set_new(o, "hbm_tb_s", json_real(g->hbm_tb_s));
    json_object_set_new(o, "hbm_util", json_real(g->hbm_util));
    json_object_set_new(o, "memory_gb", json_real(g->memory_gb));
    json_object_set_new(o, "nvlink_gb_s", json_real(g->nvlink_gb_s));
    json_object_set_new(o, "nic_gb_s", json_real(g->nic_gb_s));
    json_object_set_new(o, "gpus_per_node", json_integer(hw->gpus_per_node));
    json_object_set_new(o, "mem_reserve_gb", json_real(hw->mem_reserve_gb));
    json_object_set_new(o, "energy", ms_energy_json(&hw->energy));
    return o;
}

static int set_u32(const char *cmd, const char *opt, const char *s, uint32_t *dst) {
    return cli_parse_u32(cmd, opt, s, dst);
}

static void site_table(FILE *fp, const ms_deploy_hw *hw, const ms_deploy_site *s) {
    const ms_energy_coeffs *c = &hw->energy;
    fprintf(fp, "\nsite budget: whole replicas of each plan (GPUs provisioned for %s + %g W/GPU node overhead, x PUE "
                "%g); skewed case: %s\n",
            s->opts.provision == MS_PROVISION_TDP ? "their TDP" : "their measured peak draw (at most TDP)",
            c->node_overhead_w, c->pue, s->skew_source);
    fprintf(fp, "%-9s %-14s %6s %7s %4s %11s %12s %10s |", "case", "plan", "GPUs", "imb", "fits", "replica kW",
            "tok/s each", "J/tok wall");
    for (uint32_t j = 0; j < s->opts.n_sites; j++) fprintf(fp, " %9g MW: replicas   tokens/s", s->opts.site_mw[j]);
    fprintf(fp, "\n");
    bool skew = false;
    for (uint32_t i = 0; i < s->n_plans; i++) skew |= s->plans[MS_SITE_SKEWED][i].imbalance != 1.0;
    for (int k = 0; k < (skew ? MS_SITE_CASES : 1); k++)
        for (uint32_t i = 0; i < s->n_plans; i++) {
            const ms_deploy_site_plan *x = &s->plans[k][i];
            fprintf(fp, "%-9s %-14s %6u %7.4g %4s %11.4g %12.4g %10.4g |", ms_site_case_name(k), x->r.plan.name,
                    x->r.gpus, x->imbalance, x->r.fits ? "yes" : "NO", x->replica_site_w / 1e3,
                    x->r.fits ? x->r.tokens_per_s : NAN, x->r.fits ? x->site_j_per_token : NAN);
            for (uint32_t j = 0; j < s->opts.n_sites; j++) {
                const ms_site_fit *f = &x->fit[j];
                fprintf(fp, " %22llu %10.4g%s", (unsigned long long)f->replicas, f->tokens_per_s,
                        s->winner[k][j] == (int32_t)i ? "*" : " ");
            }
            fprintf(fp, "\n");
        }
    char v[4096];
    ms_deploy_site_verdict(s, v, sizeof v);
    fprintf(fp, "(* = the most tokens/s at that site)\n\n%s", v);
}

static void site_csv(FILE *fp, const ms_deploy_site *s) {
    fprintf(fp, "case,plan,tp,pp,ep,dp,gpus,fits,imbalance,window_tokens,replica_tokens_per_s,j_per_token,"
                "site_j_per_token,avg_w,peak_w,replica_gpu_w,replica_site_w,site_mw,replicas,site_gpus,tokens_per_s,"
                "tokens_per_s_per_mw,used_mw,winner\n");
    for (int k = 0; k < MS_SITE_CASES; k++)
        for (uint32_t i = 0; i < s->n_plans; i++)
            for (uint32_t j = 0; j < s->opts.n_sites; j++) {
                const ms_deploy_site_plan *x = &s->plans[k][i];
                const ms_site_fit *f = &x->fit[j];
                fprintf(fp, "%s,%s,%u,%u,%u,%u,%u,%d,%.17g,%llu,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%llu,%llu,"
                            "%.17g,%.17g,%.17g,%d\n",
                        ms_site_case_name(k), x->r.plan.name, x->r.plan.tp, x->r.plan.pp, x->r.plan.ep, x->r.plan.dp,
                        x->r.gpus, x->r.fits, x->imbalance, (unsigned long long)x->window, x->r.tokens_per_s,
                        x->r.j_per_token, x->site_j_per_token, x->r.avg_w, x->r.peak_w, x->replica_gpu_w,
                        x->replica_site_w, f->site_mw, (unsigned long long)f->replicas, (unsigned long long)f->gpus,
                        f->tokens_per_s, f->tokens_per_s_per_mw, f->used_mw, s->winner[k][j] == (int32_t)i);
            }
}

/* the comparison (and, when s is not NULL, the site budget) in the format asked for */
static int report(const char *cmd, const ms_deploy_preset *ps, const ms_deploy_hw *hwp,
                       const ms_deploy_plan *plans, uint32_t n_plans, bool unfit, const ms_deploy_site *s,
                       cli_format fmt, const char *out) {
    const ms_deploy_model *m = &ps->model;
    const ms_deploy_workload *w = &ps->workload;
    const ms_deploy_hw *hw = hwp;
    ms_error err = {0};
    ms_deploy_result res[MS_DEPLOY_MAX_PLANS];
    int rc = 0;
    for (uint32_t i = 0; i < n_plans; i++) {
        if (ms_deploy_evaluate(m, w, hw, &plans[i], &res[i], &err) != MS_OK) return cli_fail(cmd, &err);
        if (!res[i].fits && !unfit) {
            fprintf(stderr, "moesim %s: error: %s\n", cmd, res[i].why);
            rc = 2;
        }
    }
    if (rc) return rc;
    char verdict[8192];
    ms_deploy_verdict(res, n_plans, verdict, sizeof verdict);
    ms_afile f;
    rc = cli_open_output(cmd, out, &f);
    if (rc) return rc;
    if (fmt == CLI_TABLE) {
        table(f.fp, ps, hw, res, n_plans, verdict);
        if (s) site_table(f.fp, hw, s);
    } else if (fmt == CLI_CSV) {
        if (s) site_csv(f.fp, s);
        else csv(f.fp, res, n_plans);
    } else {
        json_t *root = json_object();
        json_object_set_new(root, "command", json_string("deploy"));
        json_object_set_new(root, "preset", json_string(ps->name));
        json_object_set_new(root, "model", ms_deploy_model_json(m));
        json_object_set_new(root, "hardware", hw_json(hw));
        json_t *wj = json_object();
        json_object_set_new(wj, "phase", json_string(w->phase == MS_DEPLOY_PREFILL ? "prefill" : "decode"));
        json_object_set_new(wj, "sequences", json_integer((json_int_t)w->sequences));
        json_object_set_new(wj, "seq_len", json_integer((json_int_t)w->seq_len));
        json_object_set_new(wj, "micro_batch", json_integer((json_int_t)w->micro_batch));
        json_object_set_new(wj, "chunk", json_integer((json_int_t)w->chunk));
        json_object_set_new(wj, "causal", json_boolean(w->causal));
        json_object_set_new(wj, "flash", json_boolean(w->flash));
        json_object_set_new(root, "workload", wj);
        json_t *pa = json_array();
        for (uint32_t i = 0; i < n_plans; i++) json_array_append_new(pa, ms_deploy_result_json(&res[i]));
        json_object_set_new(root, "plans", pa);
        json_object_set_new(root, "verdict", json_string(verdict));
        if (s) {
            char sv[4096];
            ms_deploy_site_verdict(s, sv, sizeof sv);
            json_t *sj = ms_deploy_site_json(s);
            json_object_set_new(sj, "verdict", json_string(sv));
            json_object_set_new(root, "site_budget", sj);
        }
        char *txt = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
        json_decref(root);
        if (!txt) {
            ms_afile_abort(&f);
            ms_error_set(&err, MS_E_NOMEM, "out of memory writing JSON");
            return cli_fail(cmd, &err);
        }
        fprintf(f.fp, "%s\n", txt);
        free(txt);
    }
    return cli_commit_output(cmd, &f);
}

int cmd_deploy(int argc, char **argv) {
    static const struct option lo[] = {
        {"preset", required_argument, 0, O_PRESET},     {"plan", required_argument, 0, O_PLAN},
        {"tp", required_argument, 0, O_TP},             {"pp", required_argument, 0, O_PP},
        {"ep", required_argument, 0, O_EP},             {"dp", required_argument, 0, O_DP},
        {"overlap", required_argument, 0, O_OVERLAP},   {"overlap-eff", required_argument, 0, O_EFF},
        {"imbalance", required_argument, 0, O_IMB},     {"dispatch-bytes", required_argument, 0, O_DISP},
        {"gpu", required_argument, 0, O_GPU},           {"energy", required_argument, 0, O_ENERGY},
        {"coef", required_argument, 0, O_COEF},         {"gpus-per-node", required_argument, 0, O_GPN},
        {"gpus", required_argument, 0, O_GPUS},         {"mem-reserve", required_argument, 0, O_RESERVE},
        {"layers", required_argument, 0, O_LAYERS},     {"dense-layers", required_argument, 0, O_DENSE},
        {"hidden", required_argument, 0, O_HIDDEN},     {"heads", required_argument, 0, O_HEADS},
        {"head-dim", required_argument, 0, O_HEADDIM},  {"kv-heads", required_argument, 0, O_KVH},
        {"experts", required_argument, 0, O_EXPERTS},   {"top-k", required_argument, 0, O_TOPK},
        {"expert-hidden", required_argument, 0, O_EHID}, {"expert-matrices", required_argument, 0, O_EMAT},
        {"shared-experts", required_argument, 0, O_SHARED}, {"dense-hidden", required_argument, 0, O_DHID},
        {"vocab", required_argument, 0, O_VOCAB},       {"precision", required_argument, 0, O_PREC},
        {"phase", required_argument, 0, O_PHASE},       {"sequences", required_argument, 0, O_SEQS},
        {"seq-len", required_argument, 0, O_SEQLEN},    {"micro-batch", required_argument, 0, O_MICRO},
        {"chunk", required_argument, 0, O_CHUNK},      {"no-causal", no_argument, 0, O_NOCAUSAL},      {"no-flash", no_argument, 0, O_NOFLASH},
        {"allow-unfit", no_argument, 0, O_UNFIT},       {"format", required_argument, 0, O_FORMAT},
        {"output", required_argument, 0, 'o'},          {"help", no_argument, 0, 'h'},
        {"site-power", required_argument, 0, O_SITE},   {"provision", required_argument, 0, O_PROV},
        {"imbalance-from", required_argument, 0, O_IMB_FROM}, {"imbalance-layout", required_argument, 0, O_IMB_LAYOUT},
        {"imbalance-window", required_argument, 0, O_IMB_WIN}, {"ep-sweep", no_argument, 0, O_EP_SWEEP},
        {0, 0, 0, 0}};
    const char *cmd = "deploy";
    /* first pass: the preset, so that options override it */
    const char *preset = NULL;
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, ":o:h", lo, NULL)) != -1) {
        if (ch == 'h') {
            cli_print_help(usage_text);
            return 0;
        }
        if (ch == O_PRESET) preset = optarg;
    }
    ms_error err = {0};
    ms_deploy_preset ps;
    if (preset) {
        if (ms_deploy_preset_load(preset, &ps, &err) != MS_OK) return cli_fail(cmd, &err);
    } else {
        memset(&ps, 0, sizeof ps);
        ms_deploy_model_default(&ps.model);
        ms_deploy_workload_default(&ps.workload);
        snprintf(ps.name, sizeof ps.name, "custom");
        snprintf(ps.model.name, sizeof ps.model.name, "custom");
        ps.gpus_per_node = 8;
    }
    const char *gpu = ps.gpu[0] ? ps.gpu : NULL, *energy = ps.energy[0] ? ps.energy : NULL;
    const char *gpu_cli = NULL, *energy_cli = NULL;
    const char *coefs[MAX_COEF];
    int n_coef = 0;
    ms_deploy_plan plans[MS_DEPLOY_MAX_PLANS];
    uint32_t n_plans = 0;
    bool custom = false, unfit = false, set_overlap = false, set_eff = false, set_imb = false, set_disp = false;
    ms_deploy_plan cp;
    ms_deploy_plan_default(&cp);
    snprintf(cp.name, sizeof cp.name, "custom");
    bool overlap = false;
    double eff = 0, imb = 0, disp = 0, reserve = 0;
    cli_format fmt = CLI_TABLE;
    const char *out = NULL, *skew_trace = NULL;
    uint64_t u64;
    ms_site_opts so;
    memset(&so, 0, sizeof so);
    ms_skew sk;
    ms_skew_default(&sk);
    sk.imbalance = 0; /* each plan's own */
    bool ep_sweep = false, set_gpus = false;
    ms_deploy_model *m = &ps.model;
    ms_deploy_workload *w = &ps.workload;
    optind = 1;
    while ((ch = getopt_long(argc, argv, ":o:h", lo, NULL)) != -1) {
        switch (ch) {
        case O_PRESET: break;
        case O_PLAN:
            if (n_plans >= MS_DEPLOY_MAX_PLANS) return cli_usage(cmd, "at most %d plans", MS_DEPLOY_MAX_PLANS);
            if (ms_deploy_plan_parse(optarg, &plans[n_plans], &err) != MS_OK) return cli_usage(cmd, "%s", err.msg);
            n_plans++;
            break;
        case O_TP: custom = true; if (set_u32(cmd, "--tp", optarg, &cp.tp)) return 2; break;
        case O_PP: custom = true; if (set_u32(cmd, "--pp", optarg, &cp.pp)) return 2; break;
        case O_EP: custom = true; if (set_u32(cmd, "--ep", optarg, &cp.ep)) return 2; break;
        case O_DP: custom = true; if (set_u32(cmd, "--dp", optarg, &cp.dp)) return 2; break;
        case O_OVERLAP:
            if (strcmp(optarg, "on") == 0) overlap = true;
            else if (strcmp(optarg, "off") == 0) overlap = false;
            else return cli_usage(cmd, "--overlap expects on or off, got '%s'", optarg);
            set_overlap = true;
            break;
        case O_EFF: if (cli_parse_double(cmd, "--overlap-eff", optarg, &eff)) return 2; set_eff = true; break;
        case O_IMB:
            if (cli_parse_double(cmd, "--imbalance", optarg, &imb)) return 2;
            if (!(imb >= 1))
                return cli_usage(cmd, "--imbalance is max/mean expert load over EP ranks: at least 1, got '%s'", optarg);
            set_imb = true;
            break;
        case O_DISP: if (cli_parse_double(cmd, "--dispatch-bytes", optarg, &disp)) return 2; set_disp = true; break;
        case O_GPU: gpu = gpu_cli = optarg; break;
        case O_ENERGY: energy_cli = optarg; break;
        case O_COEF:
            if (n_coef >= MAX_COEF) return cli_usage(cmd, "at most %d --coef", MAX_COEF);
            coefs[n_coef++] = optarg;
            break;
        case O_GPN: if (set_u32(cmd, "--gpus-per-node", optarg, &ps.gpus_per_node)) return 2; break;
        case O_GPUS: if (set_u32(cmd, "--gpus", optarg, &ps.gpus)) return 2; set_gpus = true; break;
        case O_SITE:
            if (cli_parse_list(cmd, "--site-power", optarg, so.site_mw, MS_SITE_MAX, &so.n_sites)) return 2;
            for (uint32_t i = 0; i < so.n_sites; i++)
                if (!(so.site_mw[i] > 0)) return cli_usage(cmd, "--site-power: %g MW is not a positive budget", so.site_mw[i]);
            break;
        case O_PROV:
            if (ms_provision_parse(optarg, &so.provision, &err) != MS_OK) return cli_usage(cmd, "%s", err.msg);
            break;
        case O_IMB_FROM: skew_trace = optarg; break;
        case O_IMB_LAYOUT:
            if (ms_ep_layout_parse(optarg, &sk.layout, &err) != MS_OK) return cli_usage(cmd, "%s", err.msg);
            break;
        case O_IMB_WIN:
            if (cli_parse_u64(cmd, "--imbalance-window", optarg, &u64)) return 2;
            if (!u64) return cli_usage(cmd, "--imbalance-window must be at least 1 token");
            sk.window = u64;
            break;
        case O_EP_SWEEP: ep_sweep = true; break;
        case O_RESERVE:
            if (cli_parse_double(cmd, "--mem-reserve", optarg, &reserve)) return 2;
            if (reserve < 0) return cli_usage(cmd, "--mem-reserve must be >= 0");
            break;
        case O_LAYERS: if (set_u32(cmd, "--layers", optarg, &m->layers)) return 2; break;
        case O_DENSE: if (set_u32(cmd, "--dense-layers", optarg, &m->dense_layers)) return 2; break;
        case O_HIDDEN: if (set_u32(cmd, "--hidden", optarg, &m->hidden)) return 2; break;
        case O_HEADS: if (set_u32(cmd, "--heads", optarg, &m->heads)) return 2; break;
        case O_HEADDIM: if (set_u32(cmd, "--head-dim", optarg, &m->head_dim)) return 2; break;
        case O_KVH: if (set_u32(cmd, "--kv-heads", optarg, &m->kv_heads)) return 2; break;
        case O_EXPERTS: if (set_u32(cmd, "--experts", optarg, &m->experts)) return 2; break;
        case O_TOPK: if (set_u32(cmd, "--top-k", optarg, &m->top_k)) return 2; break;
        case O_EHID: if (set_u32(cmd, "--expert-hidden", optarg, &m->expert_hidden)) return 2; break;
        case O_EMAT: if (set_u32(cmd, "--expert-matrices", optarg, &m->expert_matrices)) return 2; break;
        case O_SHARED: if (set_u32(cmd, "--shared-experts", optarg, &m->shared_experts)) return 2; break;
        case O_DHID: if (set_u32(cmd, "--dense-hidden", optarg, &m->dense_hidden)) return 2; break;
        case O_VOCAB: if (set_u32(cmd, "--vocab", optarg, &m->vocab)) return 2; break;
        case O_PREC:
            if (ms_precision_parse(optarg, &m->precision, &err) != MS_OK) return cli_usage(cmd, "%s", err.msg);
            break;
        case O_PHASE:
            if (strcmp(optarg, "prefill") == 0) w->phase = MS_DEPLOY_PREFILL;
            else if (strcmp(optarg, "decode") == 0) w->phase = MS_DEPLOY_DECODE;
            else return cli_usage(cmd, "--phase expects prefill or decode, got '%s'", optarg);
            break;
        case O_SEQS:
            if (cli_parse_u64(cmd, "--sequences", optarg, &u64)) return 2;
            w->sequences = u64;
            break;
        case O_SEQLEN:
            if (cli_parse_u64(cmd, "--seq-len", optarg, &u64)) return 2;
            w->seq_len = u64;
            break;
        case O_MICRO:
            if (cli_parse_u64(cmd, "--micro-batch", optarg, &u64)) return 2;
            w->micro_batch = u64;
            break;
        case O_CHUNK:
            if (cli_parse_u64(cmd, "--chunk", optarg, &u64)) return 2;
            w->chunk = u64;
            break;
        case O_NOCAUSAL: w->causal = false; break;
        case O_NOFLASH: w->flash = false; break;
        case O_UNFIT: unfit = true; break;
        case O_FORMAT: if (cli_parse_format(cmd, optarg, &fmt)) return 2; break;
        case 'o': out = optarg; break;
        case ':': return cli_usage(cmd, "option %s needs a value", argv[optind - 1]);
        default: return cli_usage(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage(cmd, "unexpected argument '%s'", argv[optind]);
    if (!gpu) return cli_usage(cmd, "no hardware: give --preset or --gpu");
    if (energy_cli) energy = energy_cli;
    else if (gpu_cli) energy = NULL; /* the GPU's own coefficients */
    if (!m->layers) return cli_usage(cmd, "no model: give --preset or --layers, --hidden, --heads, ...");
    if (custom) {
        if (n_plans >= MS_DEPLOY_MAX_PLANS) return cli_usage(cmd, "at most %d plans", MS_DEPLOY_MAX_PLANS);
        plans[n_plans++] = cp;
    }
    if (n_plans == 0) {
        for (uint32_t i = 0; i < ps.n_plans; i++) plans[i] = ps.plans[i];
        n_plans = ps.n_plans;
    }
    if (ep_sweep) {
        if (m->layers == m->dense_layers || !m->experts) return cli_usage(cmd, "--ep-sweep needs MoE layers");
        for (uint32_t e = 1; e <= m->experts; e = e < m->experts && e * 2 > m->experts ? m->experts : e * 2) {
            if (m->experts % e) continue;
            if (n_plans >= MS_DEPLOY_MAX_PLANS) return cli_usage(cmd, "at most %d plans", MS_DEPLOY_MAX_PLANS);
            ms_deploy_plan *p = &plans[n_plans++];
            ms_deploy_plan_default(p);
            snprintf(p->name, sizeof p->name, "ep%u", e);
            p->ep = e;
            p->overlap = true;
            if (e == m->experts) break;
        }
    }
    if (n_plans == 0) return cli_usage(cmd, "no plan: give --plan or --tp/--pp/--ep/--dp");
    bool site = so.n_sites > 0;
    if (skew_trace && set_imb) return cli_usage(cmd, "give --imbalance or --imbalance-from, not both");
    if (!site && (skew_trace || ep_sweep || sk.window))
        return cli_usage(cmd, "--imbalance-from, --imbalance-window and --ep-sweep need --site-power");
    if (site && !set_gpus) ps.gpus = 0; /* the budget, not equal GPUs, makes the comparison fair */
    if (site) unfit = true;
    for (uint32_t i = 0; i < n_plans; i++) {
        if (set_overlap) plans[i].overlap = overlap;
        if (set_eff) plans[i].overlap_eff = eff;
        if (set_imb) plans[i].imbalance = imb;
        if (set_disp) plans[i].dispatch_bytes = disp;
        uint64_t g = (uint64_t)plans[i].tp * plans[i].pp * plans[i].ep * plans[i].dp;
        if (ps.gpus && g != ps.gpus)
            return cli_usage(cmd, "plan %s uses %llu GPUs, not the %u of the comparison (equal hardware)",
                             plans[i].name, (unsigned long long)g, ps.gpus);
    }
    ms_deploy_hw hw;
    memset(&hw, 0, sizeof hw);
    hw.gpus_per_node = ps.gpus_per_node;
    hw.mem_reserve_gb = reserve;
    if (ms_hw_preset_load(gpu, &hw.gpu, &err) != MS_OK) return cli_fail(cmd, &err);
    if (ms_energy_load(energy ? energy : hw.gpu.name, &hw.energy, &err) != MS_OK) return cli_fail(cmd, &err);
    for (int i = 0; i < n_coef; i++)
        if (ms_energy_set_str(&hw.energy, coefs[i], &err) != MS_OK) return cli_usage(cmd, "%s", err.msg);
    if (ms_energy_check(&hw.energy, &err) != MS_OK) return cli_usage(cmd, "%s", err.msg);
    ms_deploy_site *st_site = NULL;
    if (site) {
        ms_trace *trace = NULL;
        if (skew_trace) {
            cli_trace_opts to = {0, 0, 0};
            int rc = cli_load_trace(cmd, (char **)&skew_trace, 1, &to, &trace);
            if (rc) return rc;
            sk.trace = trace;
        }
        ms_status st = ms_deploy_site_run(m, w, &hw, plans, n_plans, &so, &sk, &st_site, &err);
        ms_trace_free(trace);
        sk.trace = NULL;
        if (st != MS_OK) return cli_fail(cmd, &err);
    }
    int rc = report(cmd, &ps, &hw, plans, n_plans, unfit, st_site, fmt, out);
    ms_deploy_site_free(st_site);
    return rc;
}
