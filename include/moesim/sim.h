/*
 * moesim/sim.h - stage 4: trace-driven simulation of expert-parallel serving.
 *
 * Given a routing trace (moesim/trace.h) and a placement (moesim/place.h),
 * the simulator forms batches as a serving engine would (per request,
 * prefill packed to a token budget, or decode with continuous batching),
 * routes every (token, layer, chosen expert) to one replica of that expert,
 * applies a per-slot capacity, and prices each (batch, layer) with a cost
 * model:
 *  - MS_COST_MESH: the calibrated model of moe-balance (the public Python
 *    simulator of seed 002), reproduced number for number;
 *  - MS_COST_ROOFLINE: expert compute as a roofline of FLOPs and weight
 *    bytes, dispatch/combine all-to-all with an alpha-beta model per link
 *    class, from a hardware preset and a model preset (presets/).
 * docs/MODEL.md explains every formula and every preset figure.
 *
 * Definitions used everywhere:
 *  - a routing event is one (token, layer, chosen expert);
 *  - the load of a device in one (batch, layer) is the number of token-expert
 *    assignments computed on it; imbalance = max device load / mean device
 *    load (mean over all devices of the cluster); 1 when nothing landed;
 *  - percentiles are nearest-rank: pX is the ceil(X/100 * n)-th smallest.
 */
#ifndef MOESIM_SIM_H
#define MOESIM_SIM_H

#include <stdbool.h>
#include <stdio.h>
#include "moesim/common.h"
#include "moesim/place.h"
#include "moesim/trace.h"

#ifdef __cplusplus
extern "C" {
#endif

struct json_t; /* jansson's object type (jansson.h) */

/* ------------------------------------------------------------ enums */

typedef enum ms_cost_model { MS_COST_MESH = 0, MS_COST_ROOFLINE = 1 } ms_cost_model;

typedef enum ms_batch_mode {
    MS_BATCH_PER_REQUEST = 0, /* one batch per request: all of its rows */
    MS_BATCH_PREFILL = 1,     /* prompt rows of shuffled requests packed to batch_tokens */
    MS_BATCH_DECODE = 2,      /* decode rows, decode_batch requests at a time */
    MS_BATCH_MIXED = 3        /* serving steps of continuous batching: prompts of the requests
                                 admitted in the step plus one decode row of each running one */
} ms_batch_mode;

/* The order in which requests arrive (prefill, decode and mixed batching). */
typedef enum ms_order {
    MS_ORDER_SEEDED = 0,      /* a seeded shuffle of the requests (batch seed) */
    MS_ORDER_TRACE = 1        /* the trace's request order (file name order) */
} ms_order;

typedef enum ms_route {
    MS_ROUTE_SPLIT = 0,        /* every replica gets 1/replicas of the token (EPLB's assumption) */
    MS_ROUTE_ROUND_ROBIN = 1,  /* per-expert counter over its replicas, reset per batch */
    MS_ROUTE_RANDOM = 2,       /* uniform replica, seeded */
    MS_ROUTE_LEAST_LOADED = 3, /* replica whose device has the least load so far in the batch */
    MS_ROUTE_ROW_LOCAL = 4,    /* least-loaded replica in the token's row unless it is past the slack */
    MS_ROUTE_BALANCED = 5      /* moe-balance's balanced-replicas: first replica below capacity */
} ms_route;

typedef enum ms_overflow {
    MS_OVERFLOW_ACCEPT = 0,  /* the slot takes the token anyway (balanced-replicas: round-robin) */
    MS_OVERFLOW_REROUTE = 1, /* next-ranked expert, or the documented proxy when there are no ranks */
    MS_OVERFLOW_DROP = 2     /* the assignment is dropped and counted */
} ms_overflow;

typedef enum ms_origin {
    MS_ORIGIN_AVERAGE_ROWS = 0, /* mesh: evaluate with every token in row r, for each r; average */
    MS_ORIGIN_ROUND_ROBIN = 1,  /* mesh: token i of a batch starts in row i mod rows */
    MS_ORIGIN_RANDOM = 2,       /* mesh: rows drawn with the seed (per batch and token) */
    MS_ORIGIN_DP = 3,           /* the row/device of the token's data-parallel rank (batch plan) */
    MS_ORIGIN_TRACE = 4         /* rows given with the trace (JSONL origin_rows) */
} ms_origin;

typedef enum ms_dp { MS_DP_ROUND_ROBIN = 0, MS_DP_LEAST_LOADED = 1 } ms_dp;

typedef enum ms_overlap { MS_OVERLAP_NONE = 0, MS_OVERLAP_TWO_MICRO_BATCH = 1 } ms_overlap;

typedef enum ms_mesh_table {
    MS_MESH_TABLE_REFERENCE = 0, /* the measured table as published (96.183 at best, E_col=2) */
    MS_MESH_TABLE_CORRECTED = 1  /* that one value replaced by the mean of its neighbours */
} ms_mesh_table;

/* Names ("mesh", "per-request", "least-loaded", ...) and parsers. The parsers
 * fail MS_E_INPUT with a message listing the accepted names. Names never NULL. */
const char *ms_cost_model_name(ms_cost_model m);
const char *ms_batch_mode_name(ms_batch_mode m);
const char *ms_order_name(ms_order o);
const char *ms_route_name(ms_route r);
const char *ms_overflow_name(ms_overflow o);
const char *ms_origin_name(ms_origin o);
const char *ms_dp_name(ms_dp d);
const char *ms_overlap_name(ms_overlap o);
const char *ms_mesh_table_name(ms_mesh_table t);
ms_status ms_cost_model_parse(const char *s, ms_cost_model *out, ms_error *err);
ms_status ms_batch_mode_parse(const char *s, ms_batch_mode *out, ms_error *err);
ms_status ms_order_parse(const char *s, ms_order *out, ms_error *err);
ms_status ms_route_parse(const char *s, ms_route *out, ms_error *err);
ms_status ms_overflow_parse(const char *s, ms_overflow *out, ms_error *err);
ms_status ms_origin_parse(const char *s, ms_origin *out, ms_error *err);
ms_status ms_dp_parse(const char *s, ms_dp *out, ms_error *err);
ms_status ms_overlap_parse(const char *s, ms_overlap *out, ms_error *err);
ms_status ms_mesh_table_parse(const char *s, ms_mesh_table *out, ms_error *err);

/* ------------------------------------------------------ mesh coefficients */

/* The measured dispatch table of moe-balance (us), E_col = 1..8, for the
 * best, average and worst hop cases (best[1] = 96.183 as published). */
extern const double ms_mesh_table_best[8];
extern const double ms_mesh_table_avg[8];
extern const double ms_mesh_table_worst[8];

/* Fits (A, B, C, D) of T = A + B*E_col + C*avg_hop + D*max_hop to the table
 * for a ring of `rows` rows (hops 0, (rows-1)/2 and rows/2): the minimum-norm
 * least-squares solution (one-sided Jacobi SVD, singular values below
 * eps * 24 * s_max treated as zero, as numpy.linalg.lstsq does). For rows = 2
 * and the reference table: 22.8939, 6.17522, 35.0797, 35.0797. Fails
 * MS_E_INPUT when rows is 0. */
ms_status ms_mesh_fit(uint32_t rows, ms_mesh_table table, double coeffs[4], ms_error *err);

/* Minimum-norm least-squares solution of the m x n system a x = b (a is
 * row-major, n <= 16) by one-sided Jacobi SVD; rcond < 0 means
 * eps * max(m, n). Writes x[n] and returns the numerical rank, or -1 when
 * n is 0 or above 16 or m is 0. Exposed for tests. */
int ms_lstsq_min_norm(const double *a, const double *b, size_t m, size_t n, double rcond, double *x);

/* ---------------------------------------------------------------- presets */

/* Most points of a hardware preset's efficiency curve. */
#define MS_HW_EFF_MAX 64

/* A GPU and its links. Bandwidths are per GPU and per direction. */
typedef struct ms_hw_preset {
    char name[64];
    double peak_tflops_bf16;   /* dense */
    double peak_tflops_fp8;    /* dense; = bf16 figure where there is no FP8 */
    double mfu;                /* achievable fraction of peak, 0..1 */
    double hbm_tb_s;           /* HBM bandwidth, TB/s (1e12 bytes/s) */
    double hbm_util;           /* achievable fraction of it */
    double memory_gb;          /* HBM capacity, GB (1e9 bytes) */
    double nvlink_gb_s;        /* NVLink per GPU per direction, GB/s */
    double nvlink_latency_us;  /* per message class start-up (alpha) */
    double nvlink_efficiency;  /* achievable fraction of nvlink_gb_s */
    double nic_gb_s;           /* network (between rows) per GPU per direction, GB/s */
    double net_latency_us;
    double net_efficiency;
    /* Measured efficiency of expert compute against tokens per expert
     * instance (the "efficiency_curve" that `moesim calibrate` writes):
     * eff_n points, eff_tokens positive and strictly increasing, eff_value in
     * (0, 1]. eff_n = 0: no curve, expert compute runs at mfu. */
    uint32_t eff_n;
    double eff_tokens[MS_HW_EFF_MAX];
    double eff_value[MS_HW_EFF_MAX];
} ms_hw_preset;

/* Efficiency (fraction of peak) of one expert instance that computes
 * `tokens` token-expert assignments in one (micro-)batch: hw's efficiency
 * curve interpolated linearly in log(tokens) between its points and clamped
 * to its first and last values outside them (tokens <= 0: the first); hw->mfu
 * when the preset has no curve. Never fails. */
double ms_hw_efficiency(const ms_hw_preset *hw, double tokens);

/* A model's MoE layer as the cost model sees it. */
typedef struct ms_model_preset {
    char name[64];
    uint32_t hidden;              /* h */
    uint32_t moe_intermediate;    /* i: per routed expert */
    uint32_t routed_experts;
    uint32_t top_k;
    uint32_t shared_experts;      /* run on every token (0 if none) */
    uint32_t shared_intermediate; /* i of one shared expert */
    uint32_t moe_layers;
    double expert_weight_bytes;   /* bytes per expert weight (1 = FP8, 2 = BF16) */
    double dense_params_per_layer;/* attention (and other per-token dense) weights of one MoE layer */
    double dispatch_bytes;        /* per token message: FP8 h + one fp32 scale per 128 values */
    double combine_bytes;         /* per token message: BF16 2h */
} ms_model_preset;

/* Directory of the preset files: $MOESIM_PRESET_DIR if set, else the source
 * tree's presets/ compiled in. Never NULL. */
const char *ms_preset_dir(void);

/* Loads a hardware preset by name (presets/hw/NAME.json) or path (anything
 * with a '/' or ending in .json). Every figure is {"value": x, "source":
 * "..."}; a missing source, a missing or non-positive value, or a fraction
 * above 1 fails MS_E_INPUT naming the file and field; MS_E_IO if unreadable.
 * An optional "efficiency_curve" {"source", "tokens_per_expert": [...],
 * "efficiency": [...]} (as `moesim calibrate` writes it) fills eff_*; it
 * fails MS_E_INPUT unless it has a source, 1..MS_HW_EFF_MAX points of equal
 * count, tokens positive and strictly increasing, efficiencies in (0, 1]. */
ms_status ms_hw_preset_load(const char *name_or_path, ms_hw_preset *out, ms_error *err);
/* The same for model presets (presets/model/NAME.json). dispatch_bytes and
 * combine_bytes are derived from hidden when the file does not give them. */
ms_status ms_model_preset_load(const char *name_or_path, ms_model_preset *out, ms_error *err);
/* Names of the presets found under ms_preset_dir()/hw or /model, sorted,
 * NULL-terminated, in one allocation (release with ms_free); NULL if none. */
char **ms_preset_list(const char *kind /* "hw" or "model" */);
/* The model preset name matching a trace's expert count and top-k
 * (64/6: deepseek-v2-lite, 256/8: deepseek-v3, 128/1: llama4-maverick,
 * 128/8: qwen3-235b-a22b, 8/2: mixtral-8x7b), or NULL. */
const char *ms_model_preset_guess(uint32_t n_experts, uint32_t top_k);

/* The roofline's work constants for a hardware and a model preset (see
 * docs/MODEL.md, "The roofline cost model"): peak P = the FP8 peak when
 * expert weights are 1 byte, else BF16. placed_shared: the placement holds
 * the shared expert (else it is dense work on every token). */
typedef struct ms_roofline {
    double peak_per_us;      /* P, FLOP/us */
    double flops_per_us;     /* P x MFU */
    double hbm_per_us;       /* HBM bandwidth x utilisation, bytes/us */
    double expert_flops_tok; /* FLOPs of one assignment: 2 x 3 h i */
    double expert_wbytes;    /* an expert instance's weight bytes: 3 h i x bytes per weight */
    double act_bytes_tok;    /* activation bytes of one assignment: 4 h (BF16 in and out) */
    double dense_flops_tok;  /* dense FLOPs per token starting on a device */
    double dense_bytes;      /* dense weight bytes read by a device with tokens */
} ms_roofline;

/* Fills r. Cannot fail. */
void ms_roofline_init(const ms_hw_preset *hw, const ms_model_preset *m, bool placed_shared, ms_roofline *r);

/* ---------------------------------------------------------------- batches */

typedef struct ms_batch_opts {
    ms_batch_mode mode;
    uint32_t batch_tokens;   /* prefill budget (default 4096); mixed: prompt tokens admitted per step */
    uint32_t decode_batch;   /* concurrent decode requests (default 64); mixed: running requests */
    ms_dp dp;                /* how requests are spread over devices */
    ms_order order;          /* arrival order for prefill, decode and mixed (default seeded) */
    uint64_t seed;           /* the seeded order */
} ms_batch_opts;

/* per-request, 4096 batch tokens, 64 decode slots, DP round-robin, seeded order, seed 0. */
void ms_batch_opts_default(ms_batch_opts *o);

/* The batches of a run: batch b holds tokens tok[off[b] .. off[b+1]-1]
 * (trace token indices), each starting on device origin[..] (its request's
 * data-parallel rank). Batches never hold a token twice; requests without
 * rows of the phase are skipped. */
typedef struct ms_batch_plan {
    ms_batch_mode mode;
    uint32_t n_devices;
    uint64_t n_batches;
    uint64_t n_tokens;     /* entries of tok (sum of batch sizes) */
    uint64_t *off;         /* [n_batches + 1] */
    uint32_t *tok;         /* [n_tokens] */
    uint32_t *origin;      /* [n_tokens] device */
} ms_batch_plan;

/* Forms the batches (see ms_batch_mode and docs/MODEL.md):
 *  - per-request: requests in trace order, all rows; DP rank round-robin by
 *    request, or least-loaded = the device with the fewest tokens so far;
 *  - prefill: requests shuffled with seed, prompt rows appended until the
 *    batch holds >= batch_tokens (a request is never split; the last batch
 *    may be smaller); DP round-robin over requests, or least-loaded = device
 *    with the fewest tokens in this batch;
 *  - decode: the same shuffled order; decode_batch slots, each step takes the
 *    next decode row of every active request; a finished request's slot is
 *    refilled before the next step; DP rank chosen when a request enters
 *    (round-robin, or the device with the fewest active requests);
 *  - mixed (continuous batching as vLLM/SGLang schedule it, without chunked
 *    prefill): requests wait in arrival order; each step first admits
 *    waiting requests while fewer than decode_batch run and the step's
 *    prompt tokens are below batch_tokens (a longer prompt enters alone),
 *    whole prompts in that step; then every request admitted in an earlier
 *    step adds its next decode row (prompt rows first in the batch, then
 *    decode rows in admission order). A request leaves after its last row;
 *    DP rank as for decode.
 * prefill, decode and mixed take requests in o->order: shuffled with seed,
 * or the trace's order (per-request is always the trace's order).
 * Fails MS_E_INPUT when the trace has no rows of the phase, n_devices is 0,
 * batch_tokens/decode_batch is 0, or the trace has 2^32 tokens or more;
 * MS_E_NOMEM. */
ms_status ms_batch_plan_build(const ms_trace *t, const ms_batch_opts *o, uint32_t n_devices,
                              ms_batch_plan **out, ms_error *err);
void ms_batch_plan_free(ms_batch_plan *p);

/* -------------------------------------------------------------- simulation */

/* Clock throttling (power caps) for the roofline cost model, supplied by a
 * later stage (moesim/power.h: ms_power_throttle) so that the simulator
 * does not depend on it. Called once per (micro-)batch, after routing and
 * before the phase maxima, with every device's compute busy time at full
 * clock (dense + experts, us), FLOPs and HBM bytes of that (micro-)batch;
 * writes every device's clock fraction in (0, 1] to clock and returns how
 * many devices could not be held to their limits. scratch holds 2 x
 * n_devices doubles the callback may use. Called from several threads at
 * once: it must only read ctx. */
typedef struct ms_sim_throttle {
    uint32_t (*clocks)(void *ctx, uint32_t n_devices, const double *busy_us, const double *flops,
                       const double *hbm_bytes, double *clock, double *scratch);
    void *ctx;
} ms_sim_throttle;

typedef struct ms_sim_opts {
    ms_cost_model cost_model;   /* default MS_COST_MESH */
    ms_route route;             /* default MS_ROUTE_BALANCED */
    double capacity_factor;     /* F: a slot takes at most max(1, floor(F * fair share)), fair
                                   share = assignments of the batch (of each micro-batch) /
                                   instances; <= 0 = no capacity; NAN (default) = 2 for
                                   balanced-replicas, else none; split ignores it */
    ms_overflow overflow;       /* default MS_OVERFLOW_ACCEPT */
    ms_origin origin;           /* default MS_ORIGIN_AVERAGE_ROWS (mesh); roofline uses DP */
    int64_t layer;              /* -1 (default) = every layer, else that layer only */
    double row_local_slack;     /* row-local spills when own-row load > (1+s)*best + 1 (0.25) */
    ms_overlap overlap;         /* roofline only */
    uint64_t seed;              /* random routing, random origin rows */
    int threads;                /* 0 = all cores; results do not depend on it */
    ms_mesh_table mesh_table;   /* which table to fit (reference) */
    double mesh_coeffs[4];      /* NAN (default) = fit to mesh_table for the cluster's rows */
    double mesh_expert_us;      /* 118: us per chunk of tokens on one expert instance */
    uint32_t mesh_chunk;        /* 32: tokens per chunk */
    const ms_hw_preset *hw;     /* roofline: required */
    const ms_model_preset *model;/* roofline: required; mesh: message bytes (NULL = no bytes) */
    const uint16_t *origin_rows;/* MS_ORIGIN_TRACE: [n_layers][n_tokens] rows, else NULL */
    const ms_sim_throttle *throttle; /* roofline: clocks under power caps; NULL (default) = full
                                   clock. A device's dense and expert compute take time / clock
                                   before the phase maxima and the schedule; communication is
                                   not throttled */
    uint64_t batch_begin;       /* simulate the plan's batches [batch_begin, batch_end) only */
    uint64_t batch_end;         /* 0 (default) = to the last batch; records keep the plan's
                                   batch numbers, and a batch gives the same record whatever
                                   range it is simulated in */
    bool keep_records;          /* keep every (batch, layer) record in the result (true) */
    bool mesh_generic;          /* tests: skip the small-mesh fast paths (same numbers) */
    bool roof_generic;          /* tests: skip the roofline least-loaded fast path (same numbers) */
} ms_sim_opts;

/* Sets every field to the default written beside it (hw, model, origin_rows NULL). */
void ms_sim_opts_default(ms_sim_opts *o);

/* One (batch, layer). Times in microseconds; bytes summed over devices. */
typedef struct ms_sim_record {
    uint64_t batch;
    uint32_t layer;
    uint32_t tokens;           /* tokens in the batch */
    uint64_t assignments;      /* token-expert assignments that landed */
    uint64_t dropped;          /* assignments dropped by capacity */
    uint64_t rerouted;         /* assignments moved to another expert by capacity */
    double max_load, mean_load, imbalance;
    double dense_us;           /* roofline: slowest device's attention + shared work */
    double dispatch_us, compute_us, combine_us;
    double layer_us;           /* mesh: mean over origin rows of the sum; roofline: schedule */
    double intra_bytes, inter_bytes; /* dispatch + combine, inside rows / between rows */
    double busy_us;            /* sum over devices of compute busy time (dense + experts) */
    /* with a throttle (else 0, 1, 1, 0): */
    double throttled_us;       /* layer_us - the layer time at full clock (>= 0) */
    double clock_mean, clock_min; /* over devices, of each device's effective clock */
    uint32_t cap_unmet;        /* devices (per micro-batch) whose limits could not be met */
} ms_sim_record;

/* Per-device view of one (batch, layer), given to ms_sim_hooks.step. Arrays
 * have n_devices entries and live until the callback returns. */
typedef struct ms_sim_step {
    const ms_sim_record *rec;
    uint32_t n_devices;
    const double *load;          /* token-expert assignments computed there */
    const double *origin_tokens; /* tokens whose attention runs there (roofline) */
    const double *dense_us, *compute_us, *dispatch_us, *combine_us;
    const double *busy_us;       /* dense + compute */
    const double *idle_us;       /* layer_us - busy_us */
    const double *flops;         /* expert + dense FLOPs */
    const double *hbm_bytes;     /* weight and activation bytes read/written */
    const double *send_intra_bytes, *send_inter_bytes, *recv_intra_bytes, *recv_inter_bytes;
    const double *clock;         /* effective clock: busy time at full clock / busy_us (1 when
                                    the device did not compute); NULL without a throttle */
} ms_sim_step;

typedef struct ms_sim_hooks {
    /* Called once per (batch, layer), possibly from several threads at once
     * (set opts.threads = 1 for one thread, then layer by layer, batches in
     * order). Mesh: dispatch/combine arrays hold the layer's values on every
     * device, flops/hbm_bytes are 0. */
    void (*step)(void *ctx, const ms_sim_step *step);
    void *ctx;
} ms_sim_hooks;

typedef struct ms_dist {
    double mean, p50, p95, p99, max;
} ms_dist;

typedef struct ms_sim_summary {
    uint64_t batches, layers, records;
    uint64_t tokens;        /* token slots over batches (each counted once, not per layer) */
    uint64_t events;        /* routing events simulated */
    uint64_t assignments, dropped, rerouted;
    ms_dist imbalance, layer_us, batch_us;
    double dense_us, dispatch_us, compute_us, combine_us; /* means over records */
    double total_us;        /* sum of batch latencies */
    double tokens_per_second;
    double gpu_utilisation; /* sum of device busy time / (devices * total time) */
    double intra_bytes, inter_bytes;
    double coeffs[4];       /* mesh (A, B, C, D) used */
    double capacity_factor; /* the one applied (0 = none) */
    double eval_seconds;    /* wall time of ms_sim_run */
    /* power caps (opts.throttle; else false, 0, 0, 1, 1, 0) */
    bool throttled;         /* a throttle was applied */
    double throttled_us;    /* mean over records of layer_us - layer time at full clock */
    double throttled_share; /* share of records where some device ran below full clock */
    double clock_mean, clock_min; /* over records and devices, of the effective clock */
    uint64_t cap_unmet;     /* sum of the records' cap_unmet */
} ms_sim_summary;

typedef struct ms_sim_result {
    ms_sim_summary summary;
    uint64_t n_records;
    ms_sim_record *records;  /* batch-major: [batch][evaluated layer]; NULL unless keep_records */
    uint32_t n_devices;
    double *dev_clock_mean;  /* [n_devices] mean over records of the device's effective clock, */
    double *dev_clock_min;   /* [n_devices] and its minimum; both NULL without a throttle */
} ms_sim_result;

/* Simulates plan over placement p. The placement has one layer (used for
 * every trace layer) or as many as the trace; its routed experts cover the
 * trace's ids; a shared expert in the placement is chosen by every token as
 * one more assignment. Mesh needs a route other than split. Without a
 * throttle the results are those of a simulation at full clock, bit for bit.
 * Fails MS_E_INPUT on those mismatches, a throttle with the mesh model, a layer out of range, a batch range that is empty or
 * outside the plan, a plan made for another device
 * count, missing presets for roofline, origin TRACE without origin_rows;
 * MS_E_NOMEM. Same inputs -> same result, whatever the thread count. */
ms_status ms_sim_run(const ms_trace *t, const ms_batch_plan *plan, const ms_placement *p,
                     const ms_sim_opts *o, const ms_sim_hooks *hooks, ms_sim_result **out,
                     ms_error *err);
void ms_sim_result_free(ms_sim_result *r);

/* The summary as a JSON object (jansson; the caller owns the reference):
 * imbalance, layer_us, batch_us {mean,p50,p95,p99,max}, tokens_per_second,
 * dropped_tokens, rerouted_tokens, inter_row_bytes, intra_row_bytes, ...;
 * for mesh also mean, p95, p99 (of layer time), dispatch_us, compute_us,
 * combine_us, records, coeffs. NULL only when out of memory. */
struct json_t *ms_sim_summary_json(const ms_sim_summary *s, ms_cost_model model);

/* One record as a JSON object, with per-device arrays when step is given
 * (and its throttle figures with device_clock when step->clock is set). The
 * summary's JSON has throttled_us, throttled_share, clock_mean, clock_min and
 * cap_unmet when it was throttled. */
struct json_t *ms_sim_record_json(const ms_sim_record *r, const ms_sim_step *step);

/* ------------------------------------------------------------ JSONL traces */

/* A trace read from moe-balance's JSONL format: one JSON object per line with
 * layer, batch_id, topk_experts [tokens][k], and optionally origin_rows
 * [tokens], topk_weights, request_id. Requests are the distinct batch_ids in
 * order of first appearance; layers 0..max layer; every (batch, layer) must
 * appear exactly once with the same token count in every layer. */
typedef struct ms_jsonl_trace {
    ms_trace *trace;
    uint16_t *origin_rows;   /* [n_layers][n_tokens], or NULL when no line had them */
} ms_jsonl_trace;

/* Reads path. n_experts 0 = largest id + 1. Blank lines are skipped. Fails
 * MS_E_IO if unreadable, MS_E_INPUT naming the file and line on malformed
 * JSON, missing or mistyped fields, ragged top-k, ids out of range, missing
 * or repeated (batch, layer) pairs, origin_rows on some lines but not others;
 * MS_E_NOMEM. */
ms_status ms_jsonl_trace_load(const char *path, uint32_t n_experts, ms_jsonl_trace *out, ms_error *err);
void ms_jsonl_trace_clear(ms_jsonl_trace *j);

#ifdef __cplusplus
}
#endif
#endif
