/*
 * moesim/deploy.h - stage 5: analytic models of whole deployments and of
 * scaling with model size.
 *
 * ms_deploy_*: one MoE transformer (attention + dense or MoE FFN per layer)
 * served on TP x PP x EP x DP GPUs of one type. For a workload (prefill of
 * B sequences of S tokens, or decode steps at context S) it checks memory per
 * GPU (weights, KV cache, activations, communication buffers), picks the
 * micro-batch, prices each layer on its slowest GPU as compute, memory
 * (rooflines per kernel) and communication (TP all-reduce, EP all-to-all,
 * PP send), with and without overlap, schedules the pipeline, and prices
 * energy with the power model (moesim/power.h). docs/MODEL.md gives every
 * formula.
 *
 * ms_scale_*: a family of MoE models from about 1B to several T parameters
 * and sweeps at fixed total weights with more, smaller experts; for each the
 * GPUs to hold it, energy and power for inference and training, trend fits
 * and the site power wall.
 */
#ifndef MOESIM_DEPLOY_H
#define MOESIM_DEPLOY_H

#include <stdbool.h>
#include <stdio.h>
#include "moesim/common.h"
#include "moesim/power.h"
#include "moesim/sim.h"

#ifdef __cplusplus
extern "C" {
#endif

struct json_t;

/* ------------------------------------------------------------- inputs */

typedef struct ms_deploy_model {
    char name[64];
    uint32_t layers;          /* all transformer layers */
    uint32_t dense_layers;    /* the first dense_layers have a dense FFN, the rest are MoE */
    uint32_t hidden;          /* d: token dimension */
    uint32_t heads, head_dim; /* query heads x head dimension */
    uint32_t kv_heads;        /* key/value heads (= heads for multi-head attention) */
    uint32_t experts;         /* routed experts per MoE layer */
    uint32_t top_k;           /* experts per token */
    uint32_t expert_hidden;   /* f: expert MLP hidden size */
    uint32_t expert_matrices; /* 2 (up, down) or 3 (gate, up, down) */
    uint32_t shared_experts;  /* experts every token uses (size expert_hidden) */
    uint32_t dense_hidden;    /* FFN hidden size of the dense layers */
    uint32_t vocab;           /* 0 = embeddings not modelled */
    ms_precision precision;   /* weights, activations and compute */
} ms_deploy_model;

typedef enum ms_deploy_phase { MS_DEPLOY_PREFILL = 0, MS_DEPLOY_DECODE = 1 } ms_deploy_phase;

typedef struct ms_deploy_workload {
    ms_deploy_phase phase;
    uint64_t sequences;    /* prefill: sequences to process; decode: concurrent sequences wanted */
    uint64_t seq_len;      /* prefill: tokens per sequence; decode: context length */
    uint64_t micro_batch;  /* sequences per micro-batch, a multiple of dp x ep (whole sequences per
                              attention group); 0 = the fastest that fits */
    uint64_t chunk;        /* prefill: tokens of each sequence per micro-batch (chunked prefill; the
                              KV of earlier chunks stays resident); 0 = the fastest that fits */
    bool causal;           /* prefill attention is causal (half the score FLOPs) */
    bool flash;            /* fused attention: no S x S score matrix in memory */
} ms_deploy_workload;

typedef struct ms_deploy_plan {
    char name[64];
    uint32_t tp, pp, ep, dp;  /* GPUs = tp * pp * ep * dp */
    bool overlap;             /* communication overlapped with compute (micro-batches interleave) */
    double overlap_eff;       /* share of the shorter of (kernels, communication) hidden: 0..1 */
    double imbalance;         /* max / mean expert load over EP ranks (>= 1) */
    double dispatch_bytes;    /* bytes per dispatched value (0 = the model's precision) */
} ms_deploy_plan;

typedef struct ms_deploy_hw {
    ms_hw_preset gpu;        /* moesim/sim.h */
    ms_energy_coeffs energy;
    uint32_t gpus_per_node;  /* NVLink domain size */
    double mem_reserve_gb;   /* per GPU, for the runtime (CUDA context, allocator slack) */
} ms_deploy_hw;

/* Defaults: no name, precision bf16, expert_matrices 2, kv_heads = heads when
 * 0 at check time. Workload: prefill, causal, flash, micro_batch 0. Plan:
 * tp = pp = ep = dp = 1, no overlap, overlap_eff 0.9, imbalance 1.
 * Hardware: 8 GPUs per node, 0 reserve (gpu and energy must be loaded). */
void ms_deploy_model_default(ms_deploy_model *m);
void ms_deploy_workload_default(ms_deploy_workload *w);
void ms_deploy_plan_default(ms_deploy_plan *p);

/* Checks a model (positive sizes, dense_layers <= layers, top_k <= experts,
 * expert_matrices 2 or 3, kv_heads dividing heads). MS_E_INPUT. */
ms_status ms_deploy_model_check(const ms_deploy_model *m, ms_error *err);

/* Parameter counts (embeddings excluded unless vocab > 0): total, and active
 * per token (top_k routed + shared experts). Cannot fail. */
void ms_deploy_params(const ms_deploy_model *m, double *total, double *active);

/* ------------------------------------------------------------ results */

/* One layer kind (MoE or dense) on one GPU for one micro-batch. */
typedef struct ms_deploy_layer {
    bool present;
    double flops, hbm_bytes, nvlink_bytes, net_bytes; /* the slowest GPU */
    double t_compute;     /* FLOPs / (peak x MFU), attention + FFN */
    double t_memory;      /* HBM bytes / (bandwidth x utilisation) */
    double t_kernels;     /* sum over kernels of max(compute, memory) */
    double t_kernels_mean;/* the same at the mean expert load (no imbalance) */
    double t_tp, t_ep;    /* TP all-reduce, EP dispatch + combine */
    double t_comm;        /* t_tp + t_ep */
    double t_no_overlap;  /* t_kernels + t_comm */
    double t_overlap;     /* max + (1 - eff) min of (t_kernels, t_comm) */
    double t_layer;       /* the one the plan uses */
} ms_deploy_layer;

typedef struct ms_deploy_memory {
    /* bytes on the fullest GPU */
    double weights, kv, activations, comm_buffers, reserve, total, capacity;
    double whole_batch_total;   /* the same with the whole workload as one micro-batch */
} ms_deploy_memory;

typedef struct ms_deploy_result {
    ms_deploy_plan plan;
    uint32_t gpus;
    bool fits;
    char why[1024];           /* when !fits: what does not fit and what would */
    uint64_t micro_batch;     /* sequences per micro-batch */
    uint64_t chunk;           /* prefill: tokens of each sequence per micro-batch */
    uint64_t n_micro;         /* micro-batches (prefill) or per decode step */
    uint64_t concurrency;     /* decode: sequences served at once (<= workload sequences) */
    ms_deploy_memory mem;
    ms_deploy_layer moe, dense;
    uint32_t max_stage_layers;
    double t_p2p;             /* PP send per micro-batch and stage boundary */
    double stage_s;           /* slowest stage, per micro-batch */
    double pipeline_s;        /* one micro-batch through every stage */
    double total_s;           /* prefill: the whole workload; decode: one step */
    double tokens;            /* tokens produced in total_s */
    double tokens_per_s;
    double latency_s;         /* prefill: one micro-batch through the model; decode: one step */
    double time_per_token_s;  /* total_s / tokens */
    double bubble;            /* 1 - mean GPU busy share */
    double total_params, active_params;
    /* energy (power model over the run) */
    double energy_j[MS_PART_COUNT];
    double total_j, j_per_token, avg_w, peak_w;
} ms_deploy_result;

/* Evaluates plan on hw for model and workload. Fails MS_E_INPUT (message
 * naming the plan) when the plan cannot be expressed: a degree of 0, heads,
 * kv_heads, expert_hidden or dense_hidden not divisible by tp, experts and ep
 * not dividing one another, more stages than layers, a micro-batch larger
 * than the workload or not a multiple of dp x ep, a chunk longer than the
 * sequence (or any chunk with non-causal attention), overlap_eff outside
 * 0..1, imbalance < 1 or > ep. A plan
 * that is expressible but does not fit in memory returns MS_OK with
 * out->fits = false and out->why saying what needs how much (and, for a
 * forced micro-batch, the largest that would fit). MS_E_NOMEM. */
ms_status ms_deploy_evaluate(const ms_deploy_model *m, const ms_deploy_workload *w, const ms_deploy_hw *hw,
                             const ms_deploy_plan *plan, ms_deploy_result *out, ms_error *err);

/* A plain-language verdict comparing results (every plan, which wins on
 * throughput and on energy per token, and why: the dominant terms) written
 * to buf (NUL-terminated, truncated to len). Cannot fail. */
void ms_deploy_verdict(const ms_deploy_result *r, size_t n, char *buf, size_t len);

/* JSON object of one result (plan, memory, layers, times, energy). */
struct json_t *ms_deploy_result_json(const ms_deploy_result *r);
struct json_t *ms_deploy_model_json(const ms_deploy_model *m);

/* --------------------------------------------------------------- presets */

#define MS_DEPLOY_MAX_PLANS 16

/* A deployment preset: presets/deploy/NAME.json or a path. */
typedef struct ms_deploy_preset {
    char name[64];
    char description[512];
    char gpu[64];            /* hardware preset name */
    char energy[64];         /* energy preset name ("" = gpu's) */
    uint32_t gpus_per_node;
    uint32_t gpus;           /* the GPU count every plan must use (0 = any) */
    ms_deploy_model model;
    ms_deploy_workload workload;
    uint32_t n_plans;
    ms_deploy_plan plans[MS_DEPLOY_MAX_PLANS];
} ms_deploy_preset;

/* Loads a preset. Numbers may be plain or {"value": x, "source": "..."}.
 * Fails MS_E_INPUT naming the file and field on anything missing or wrong,
 * MS_E_INPUT for an unknown name (listing the file looked for), MS_E_IO for an
 * unreadable path. */
ms_status ms_deploy_preset_load(const char *name_or_path, ms_deploy_preset *out, ms_error *err);

/* Parses "NAME:tp=8,pp=2,ep=1,dp=1,overlap=0,eff=0.9,imbalance=1" (every key
 * optional, NAME optional) into a plan starting from the defaults. MS_E_INPUT. */
ms_status ms_deploy_plan_parse(const char *spec, ms_deploy_plan *out, ms_error *err);

/* ----------------------------------------------------------- site budget
 *
 * A site of P MW counted at the wall: GPUs + node overhead (host CPUs, fans,
 * switches, NICs), times PUE. It powers whole replicas of a deployment;
 * docs/MODEL.md, "Site budget", gives every formula. */

#define MS_SITE_MAX 8

/* How a site provisions a replica's GPUs: for their measured peak draw (the
 * deployment's computed busy power, each GPU at most its TDP; the default:
 * a site that knows its workload provisions for it and caps GPUs against
 * surprises) or for their nameplate TDP. */
typedef enum ms_provision { MS_PROVISION_MEASURED = 0, MS_PROVISION_TDP = 1 } ms_provision;

/* "measured", "tdp". Never NULL. */
const char *ms_provision_name(ms_provision p);
/* Parses "measured" or "tdp". MS_E_INPUT otherwise. */
ms_status ms_provision_parse(const char *s, ms_provision *out, ms_error *err);

/* Wall power of `gpus` GPUs that draw gpu_w together:
 * (gpu_w + gpus x node_overhead_w) x pue. Cannot fail. */
double ms_site_wall_w(const ms_energy_coeffs *c, double gpus, double gpu_w);

/* The GPU power a site provisions for a replica: measured_w (its computed
 * peak) or gpus x tdp_w. Cannot fail. */
double ms_site_provisioned_w(const ms_energy_coeffs *c, ms_provision p, double gpus, double measured_w);

/* Whole replicas of one deployment that a site powers. */
typedef struct ms_site_fit {
    double site_mw;
    double replica_site_w;       /* wall power of one replica */
    uint32_t replica_gpus;
    uint64_t replicas;           /* floor(site / replica_site_w) */
    uint64_t gpus;               /* replicas x replica_gpus */
    double tokens_per_s;         /* replicas x one replica's */
    double tokens_per_s_per_mw;  /* tokens_per_s / site_mw */
    double used_mw;              /* replicas x replica_site_w, MW */
} ms_site_fit;

/* Fits replicas of replica_site_w W (replica_gpus GPUs, replica_tokens_per_s
 * each) into site_mw: replicas = floor(site / replica), a quotient within a
 * relative 1e-9 below an integer counting as that integer (rounding in the
 * power sums), at most 2^53. Fails MS_E_INPUT when site_mw or replica_site_w
 * is not a positive finite number or the tokens/s is negative or not finite. */
ms_status ms_site_fit_eval(double site_mw, double replica_site_w, uint32_t replica_gpus, double replica_tokens_per_s,
                           ms_site_fit *out, ms_error *err);

/* The fit as a JSON object (site_mw, replicas, gpus, replica_site_w,
 * tokens_per_s, tokens_per_s_per_mw, used_mw). NULL when out of memory. */
struct json_t *ms_site_fit_json(const ms_site_fit *f);

/* Where EP ranks' experts go when measuring skew from a trace: contiguous
 * (expert e on rank e / ceil(E / ranks), as expert-parallel frameworks shard)
 * or round-robin (e mod ranks); the placement code's `contiguous` and
 * `round-robin` (moesim/place.h). */
typedef enum ms_ep_layout { MS_EP_CONTIGUOUS = 0, MS_EP_ROUND_ROBIN = 1 } ms_ep_layout;

/* "contiguous", "round-robin". Never NULL. */
const char *ms_ep_layout_name(ms_ep_layout l);
/* MS_E_INPUT unless "contiguous" or "round-robin". */
ms_status ms_ep_layout_parse(const char *s, ms_ep_layout *out, ms_error *err);

/* Expert-load imbalance over `ranks` EP ranks measured on trace t: the
 * experts placed on the ranks by layout (ms_place_run's contiguous or
 * round-robin on 1 x ranks devices); for each window of `window` consecutive
 * rows (trace order; the last partial window dropped unless it is the only
 * one; 0 or more rows than t has: the whole trace) and each layer, max rank
 * load / mean rank load in token-expert assignments; the result is the mean
 * over (window, layer). ranks > experts means replicas of every expert
 * sharing its load: ranks must then be a multiple of the experts, and the
 * measure is taken over the experts. Memory: one layers x experts table.
 * Fails MS_E_INPUT when ranks is 0, exceeds the experts without being a
 * multiple, or t has no rows; MS_E_NOMEM. */
ms_status ms_ep_imbalance(const ms_trace *t, uint32_t ranks, uint64_t window, ms_ep_layout layout, double *out,
                          ms_error *err);

/* Where the skewed case of a site answer takes its imbalance. */
typedef struct ms_skew {
    double imbalance;        /* a given max/mean (>= 1); deploy: 0 = each plan's own */
    const ms_trace *trace;   /* when not NULL: measured from it for each EP degree */
    ms_ep_layout layout;     /* experts on EP ranks, for the trace */
    uint64_t window;         /* tokens per window; 0 = the deployment's tokens per EP group per micro-batch */
} ms_skew;

/* imbalance 1 (deploy: 0), no trace, contiguous, window 0. Cannot fail. */
void ms_skew_default(ms_skew *s);

/* The two cases of every site answer. */
enum { MS_SITE_BALANCED = 0, MS_SITE_SKEWED = 1, MS_SITE_CASES = 2 };

/* "balanced", "skewed". Never NULL. */
const char *ms_site_case_name(int c);

typedef struct ms_site_opts {
    uint32_t n_sites;
    double site_mw[MS_SITE_MAX];
    ms_provision provision;
} ms_site_opts;

/* One plan of a deployment study in one case. */
typedef struct ms_deploy_site_plan {
    ms_deploy_result r;          /* the plan evaluated at this case's imbalance */
    double imbalance;            /* applied (1 when ep = 1) */
    uint64_t window;             /* tokens per window it was measured on (0: not measured) */
    double replica_gpu_w;        /* GPU power provisioned per replica */
    double replica_site_w;       /* the same at the wall */
    double site_j_per_token;     /* (average GPU power + node overhead) x PUE / tokens/s */
    ms_site_fit fit[MS_SITE_MAX];
} ms_deploy_site_plan;

typedef struct ms_deploy_site {
    ms_site_opts opts;
    uint32_t n_plans;
    char skew_source[400];       /* how the skewed case got its imbalance */
    ms_deploy_site_plan plans[MS_SITE_CASES][MS_DEPLOY_MAX_PLANS];
    int32_t winner[MS_SITE_CASES][MS_SITE_MAX]; /* most tokens/s (first on ties); -1: no plan gets a replica */
} ms_deploy_site;

/* Which of plans[0..n) serves the most tokens per second on each site of
 * so, for a balanced EP load (imbalance 1) and for the skew sk (trace: each
 * plan's imbalance measured at its EP degree, windows of sk->window tokens
 * or, when 0, of the balanced plan's tokens per EP group per micro-batch;
 * else sk->imbalance for every plan, or each plan's own when 0). Plans that
 * do not fit in memory get no replica. A replica's provisioned GPU power is
 * its peak draw (the skewed case: the larger of its balanced and skewed
 * peaks, as a site must carry both kinds of batch) or gpus x TDP. Fails MS_E_INPUT on no plan, more than
 * MS_DEPLOY_MAX_PLANS, no site, more than MS_SITE_MAX, a site that is not
 * positive, an imbalance below 1 or above a plan's ep, a trace whose expert
 * count differs from the model's, and as ms_deploy_evaluate; MS_E_NOMEM. */
ms_status ms_deploy_site_run(const ms_deploy_model *m, const ms_deploy_workload *w, const ms_deploy_hw *hw,
                             const ms_deploy_plan *plans, uint32_t n_plans, const ms_site_opts *so,
                             const ms_skew *sk, ms_deploy_site **out, ms_error *err);
void ms_deploy_site_free(ms_deploy_site *s);

/* A plain-language answer per site: the winner in each case, its margin over
 * the runner-up, and whether the skew changes the winner. Written to buf
 * (NUL-terminated, truncated to len). Cannot fail. */
void ms_deploy_site_verdict(const ms_deploy_site *s, char *buf, size_t len);

/* JSON of the study: provision, sites, skew source, and per case the plans
 * (imbalance, replica power, per-site replicas and tokens/s) and winners. */
struct json_t *ms_deploy_site_json(const ms_deploy_site *s);

/* ----------------------------------------------------------------- scale */

/* A least-squares fit: linear y = a + b x, or power law y = a x^b (fit of
 * ln y on ln x). r2 is the coefficient of determination in the space of the
 * fit (linear: y; power law: ln y); r2_linear_space, for the power law, of
 * its predictions against y. */
typedef struct ms_fit {
    double a, b, r2, r2_linear_space;
    uint32_t n;
} ms_fit;

/* MS_E_INPUT when n < 2, x has no spread, or (power law) a value is <= 0. */
ms_status ms_fit_linear(const double *x, const double *y, size_t n, ms_fit *out, ms_error *err);
ms_status ms_fit_power_law(const double *x, const double *y, size_t n, ms_fit *out, ms_error *err);

typedef struct ms_scale_opts {
    ms_hw_preset gpu;
    ms_energy_coeffs energy;
    uint32_t gpus_per_node;
    ms_precision precision;      /* weights and compute (bf16) */
    /* the family: L = max(2, round(d / aspect)), f = expert_ratio d (multiple of 64) */
    uint32_t experts, top_k, expert_matrices;
    double aspect, expert_ratio;
    uint32_t vocab;
    double kv_ratio;             /* kv heads / heads (GQA; 0.125) */
    uint32_t n_sizes;
    double sizes[32];            /* target total parameters */
    double sweep_total;          /* total parameters of the expert sweeps (0 = none) */
    uint32_t n_sweep;
    uint32_t sweep_experts[32];
    /* inference: decode, batch sequences at context tokens */
    uint32_t decode_batch, context;
    double mem_usable;           /* share of GPU memory usable (0.9) */
    double overlap_eff;          /* as in ms_deploy_plan (0.9) */
    /* training */
    double train_bytes_per_param;/* weights + gradients + Adam moments (16) */
    double train_seq;            /* sequence length (4096) */
    double train_batch_tokens;   /* tokens per optimizer step (4M; at least train_seq per GPU) */
    double train_tokens;         /* the token budget (1e12) */
    /* site budget (the power wall) */
    uint32_t n_sites;
    double site_mw[MS_SITE_MAX];
    ms_provision provision;      /* GPUs at their measured peak draw (default) or at TDP */
    double wall_days;            /* training time allowed (90) */
    double tokens_per_param;     /* training tokens per total parameter (20) */
    double demand_tokens_per_s;  /* serving wall: tokens/s the site must serve (1e6) */
    /* the skewed case: a given imbalance (1 = balanced twice) or one measured
     * from a trace for each model's EP degree (windows: decode_batch tokens
     * for inference, EP ranks x train_seq for training) */
    ms_skew skew;
} ms_scale_opts;

/* Defaults as documented (A100 and its energy must still be loaded by the
 * caller): 64 experts, top-2, 3 matrices, aspect 96, expert ratio 0.5, vocab
 * 0, kv_ratio 0.125, sizes 1e9, 3e9, ..., 3e12, sweep at 1e12 over 8..1024
 * experts, batch 256 at 2048 context, usable 0.9, eff 0.9, 16 B/param,
 * seq 4096, 4M tokens/step, 1e12 tokens, sites 10/100/1000 MW provisioned
 * for measured draw, 90 days, 20 tokens/param, demand 1e6 tokens/s, skew
 * imbalance 1 (no trace, contiguous layout). */
void ms_scale_opts_default(ms_scale_opts *o);

typedef struct ms_scale_point {
    char sweep[24];              /* "size", "experts-fixed-k", "experts-scaled-k" */
    double target;               /* the size asked for (size sweep) */
    uint32_t layers, hidden, experts, top_k, expert_hidden;
    double total_params, active_params;
    /* inference (decode) */
    uint32_t gpus_infer;
    double infer_step_s, infer_tokens_per_s, infer_j_per_token, infer_avg_w, infer_peak_w, infer_site_w;
    double infer_parts[MS_PART_COUNT]; /* J per token by part (wait = 0: balanced) */
    /* training */
    uint32_t gpus_train;
    double train_flops_per_token, train_j_per_token, train_avg_w, train_peak_w, train_site_w;
    double train_parts[MS_PART_COUNT];
    double budget_j, budget_days;      /* train_tokens on gpus_train GPUs (GPU energy) */
    double budget_site_j;              /* the same at the site: + node overhead, x PUE */
    /* expert-load skew applied: EP ranks (the largest divisor of the experts
     * not above the GPUs) and max/mean expert load over them (1 = balanced) */
    uint32_t ep_ranks_infer, ep_ranks_train;
    double infer_imbalance, train_imbalance;
    bool skew_known;                   /* false: the trace's expert count differs (skewed case only) */
} ms_scale_point;

typedef struct ms_scale_trend {
    char metric[40];
    char x[16];                  /* "total" or "active" */
    ms_fit linear, power;
    bool power_wins;             /* power law R^2 (in y) beats the linear R^2 */
} ms_scale_trend;

typedef struct ms_scale_wall {
    double site_mw;
    uint32_t gpus;               /* GPUs the site powers for the compute-wall model as provisioned
                                    (at TDP: for any model; gpus_tdp when no model trains) */
    uint32_t gpus_tdp;           /* GPUs the site powers at TDP + overhead, x PUE */
    double memory_max_params;    /* parameters whose training state fits `gpus` GPUs */
    ms_scale_point compute;      /* largest family model trainable in wall_days on them */
    bool compute_found;
    double compute_days, compute_energy_j; /* GPU energy of that training run */
    double compute_site_j;                 /* the same at the site: + node overhead, x PUE */
    double imbalance;                      /* applied to that training run (1 = balanced) */
} ms_scale_wall;

/* One site in one case (balanced or skewed): what it serves and trains. */
typedef struct ms_scale_site {
    double site_mw;
    ms_site_fit *fits;           /* [n_points]: whole replicas of each point's inference deployment
                                    (none where the skew is unknown) */
    int32_t best_tokens;         /* the point serving the most tokens/s, any sweep (-1: none) */
    int32_t best_size;           /* the same within the size family */
    int32_t best_sweep;          /* the same within the fixed-total expert sweeps */
    int32_t best_quality;        /* the most total parameters among points serving >= demand (points
                                    within 1% of it count as equal: the most tokens/s among them) */
    bool serve_found;
    ms_scale_point serve;        /* serving wall: the largest family model (hidden searched in steps
                                    of 64) whose replicas serve >= demand */
    ms_site_fit serve_fit;
    ms_scale_wall train;         /* training wall: the largest family model trainable in wall_days */
} ms_scale_site;

typedef struct ms_scale_result {
    uint32_t n_points;
    ms_scale_point *points;      /* balanced */
    ms_scale_point *skew_points; /* [n_points]: the same models at the skew */
    uint32_t n_trends;
    ms_scale_trend *trends;
    uint32_t n_sites;
    ms_scale_site sites[MS_SITE_CASES][MS_SITE_MAX];
    char skew_source[400];
} ms_scale_result;

/* One model of the family's shape: evaluates GPUs, energy and power. Fails
 * MS_E_INPUT when a size is 0 or the model cannot be placed on any count of
 * GPUs (e.g. one expert larger than a GPU). */
ms_status ms_scale_point_eval(const ms_scale_opts *o, uint32_t layers, uint32_t hidden, uint32_t experts,
                              uint32_t top_k, uint32_t expert_hidden, ms_scale_point *out, ms_error *err);

/* The whole study. MS_E_INPUT on bad options (a site, demand or imbalance
 * that is not positive / below 1, a skew trace whose expert count differs
 * from the family's); MS_E_NOMEM. */
ms_status ms_scale_run(const ms_scale_opts *o, ms_scale_result **out, ms_error *err);
void ms_scale_result_free(ms_scale_result *r);

struct json_t *ms_scale_result_json(const ms_scale_result *r, const ms_scale_opts *o);

#ifdef __cplusplus
}
#endif
#endif
