/*
 * moesim/moe.h - the MoE layer itself: router, dispatch, expert SwiGLU MLPs,
 * shared expert and weighted combine, in two implementations.
 *
 *  - The functional reference (ms_moe_forward_ref): plain loops, double
 *    accumulators, token by token. Obviously correct and slow; the truth for
 *    the tests.
 *  - The optimized CPU forward (ms_moe_forward): assignments counting-sorted
 *    by expert into contiguous blocks, activations gathered into one packed
 *    matrix, grouped GEMMs through cblas_sgemm (gate and up fused into one
 *    GEMM with the [2I x H] weight), SwiGLU in place, down GEMM, weighted
 *    combine; multi-threaded; every buffer lives in a workspace allocated once
 *    per shape (ms_moe_workspace_new). Experts with <= 4 (fp32) or <= 8
 *    (bf16) tokens skip sgemm for a direct AVX2+FMA kernel that reads each
 *    stored weight once (memory-bound regime). Without BLAS (MOESIM_HAVE_BLAS
 *    unset) the same path runs on a blocked C GEMM. Measurements and the
 *    reasons for each choice: docs/PERFORMANCE.md, "MoE operator".
 *
 * Layer definition (both implementations), for token t with input x_t [H]:
 *
 *   y_t = sum_{k < K, (t,k) kept} w_{t,k} * E_{e(t,k)}(x_t)  +  S(x_t)
 *   E_e(x) = W2_e (silu(G_e x) * (U_e x)),   silu(z) = z / (1 + exp(-z))
 *
 * where W13_e = [G_e; U_e] is [2I x H] (gate rows 0..I-1, then up rows),
 * W2_e is [H x I], row-major. S is the shared expert: n_shared experts of
 * intermediate size shared_inter are stored as ONE SwiGLU MLP of intermediate
 * n_shared * shared_inter (the sum of several SwiGLU MLPs is that MLP with
 * their gate/up rows and down columns concatenated, which is how DeepSeek-V3
 * builds it), applied to every token with weight 1.
 *
 * Weights are stored fp32 or bf16 (the upper 16 bits of an fp32, rounded to
 * nearest even). Activations and accumulators are fp32 (the reference: fp32
 * in, double accumulators). bf16 weights are widened exactly to fp32 tile by
 * tile, so both implementations see the same weight values and agree to fp32
 * rounding whatever the storage: the stated tolerance is
 *   max |y_opt - y_ref| <= 1e-4 * max |y_ref|   (fp32 and bf16 storage).
 * bf16 storage against the same model kept in fp32 differs by the weight
 * rounding (relative 2^-9 per weight): about 1e-2 of max |y| at most.
 *
 * Routing (ms_moe_route_select). Ties break toward the lower expert id.
 *  - MS_MOE_ROUTER_SOFTMAX (Mixtral): p = softmax(logits); choose the top-k of
 *    logits + bias; weights = p of the chosen, renormalised to sum 1 (with
 *    norm_topk; else the raw p), times routed_scaling (1 for Mixtral).
 *  - MS_MOE_ROUTER_SIGMOID_GROUP (DeepSeek-V3 "noaux_tc"): s = sigmoid(logits);
 *    c = s + bias (bias for selection only); the E experts form n_group equal
 *    groups, a group scores the sum of its two best c; the topk_group best
 *    groups are kept; choose the top-k of c among their experts; weights = s
 *    of the chosen (not c), divided by their sum (norm_topk), times
 *    routed_scaling.
 *  - Bias update ("dynamic gating adjustment", auxiliary-loss-free balancing):
 *    after a step, load_e = assignments to e, mean = T*K/E,
 *    bias_e += gamma * sign(mean - load_e).
 *
 * Capacity (capacity_factor > 0): each expert takes at most
 *   C = max(1, ceil(capacity_factor * T * K / E))
 * assignments per forward, the first C in token order (then k order); the
 * rest are dropped: they contribute nothing and the surviving weights of that
 * token are NOT renormalised (GShard/Switch semantics: the residual stream
 * carries the token). The shared expert is never capped.
 */
#ifndef MOESIM_MOE_H
#define MOESIM_MOE_H

#include <stdbool.h>
#include <stdint.h>
#include "moesim/common.h"
#include "moesim/trace.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ms_moe_router_kind {
    MS_MOE_ROUTER_SOFTMAX = 0,      /* Mixtral: softmax, top-k, renormalised */
    MS_MOE_ROUTER_SIGMOID_GROUP = 1 /* DeepSeek-V3: sigmoid + bias, group-limited top-k */
} ms_moe_router_kind;

typedef enum ms_moe_dtype { MS_MOE_F32 = 0, MS_MOE_BF16 = 1 } ms_moe_dtype;

/* How the optimized forward uses the cores. */
typedef enum ms_moe_threading {
    MS_MOE_THREADS_AUTO = 0,  /* TILES (measured faster here: docs/PERFORMANCE.md) */
    MS_MOE_THREADS_TILES = 1, /* OpenMP over (expert, weight tile) units, BLAS single-threaded */
    MS_MOE_THREADS_BLAS = 2   /* experts one after another, each GEMM threaded by BLAS */
} ms_moe_threading;

typedef struct ms_moe_config {
    uint32_t hidden;        /* H */
    uint32_t inter;         /* I of one routed expert */
    uint32_t n_experts;     /* E routed experts (<= 65535) */
    uint32_t top_k;         /* K <= E */
    uint32_t n_shared;      /* shared experts (0 = none) */
    uint32_t shared_inter;  /* I of one shared expert */
    ms_moe_router_kind router;
    uint32_t n_group;       /* sigmoid-group: groups (<= 1024, E % n_group == 0, E/n_group >= 2) */
    uint32_t topk_group;    /* sigmoid-group: groups kept (1..min(n_group, 64), enough experts for K) */
    float routed_scaling;   /* sigmoid-group: factor on the weights (2.5 for V3) */
    bool norm_topk;         /* renormalise the chosen weights to sum 1 */
    double capacity_factor; /* <= 0: no capacity */
    ms_moe_dtype dtype;     /* expert weight storage */
} ms_moe_config;

/* Fills c with a named layer shape:
 *  "deepseek-v3": H 7168, I 2048, E 256, K 8, 1 shared (I 2048), sigmoid-group
 *                 8 groups / 4 kept, scaling 2.5, normalised (config.json of
 *                 deepseek-ai/DeepSeek-V3);
 *  "mixtral":     H 4096, I 14336, E 8, K 2, softmax, no shared (Mixtral-8x7B);
 *  "seed":        H 8192, I 32768, E 16, K 2, softmax (seed 001: token
 *                 dimension 8192, MLP hidden 32768; seed 004: top-2 softmax);
 *  "HxI":         e.g. "7168x2048": softmax, E 8, K 2, no shared.
 * dtype fp32, no capacity. Fails MS_E_INPUT on an unknown name or a
 * malformed/zero HxI. */
ms_status ms_moe_config_preset(const char *name, ms_moe_config *c, ms_error *err);

/* Checks a configuration: sizes > 0, H and I <= 1<<20, K <= E <= 65535, groups
 * consistent, finite scaling and capacity. Fails MS_E_INPUT naming the field. */
ms_status ms_moe_config_check(const ms_moe_config *c, ms_error *err);

/* ------------------------------------------------------------------ layer */

/* A layer's parameters. Expert weights are one block per kind, element type
 * float (MS_MOE_F32) or uint16_t bf16 bits (MS_MOE_BF16):
 *   w13    [E][2I][H]      w2    [E][H][I]
 *   sh_w13 [2Is][H]        sh_w2 [H][Is]     with Is = n_shared * shared_inter
 * router_w [E][H] fp32; bias [E] fp32 selection bias (zero at creation). */
typedef struct ms_moe_layer {
    ms_moe_config cfg;
    float *router_w;
    float *bias;
    void *w13, *w2;
    void *sh_w13, *sh_w2;   /* NULL when n_shared == 0 */
} ms_moe_layer;

/* Allocates a layer and fills it from seed: expert and router weights
 * uniform in +-sqrt(3/fan_in) (unit-variance outputs for unit inputs), bias 0.
 * The same seed gives the same weights in fp32 and bf16 (bf16 = the fp32 value
 * rounded). Fails MS_E_INPUT on a bad config, MS_E_NOMEM when it does not fit. */
ms_status ms_moe_layer_new(const ms_moe_config *c, uint64_t seed, ms_moe_layer **out, ms_error *err);
void ms_moe_layer_free(ms_moe_layer *l);

/* Bytes of expert weights (routed + shared) in the layer's storage. */
uint64_t ms_moe_layer_weight_bytes(const ms_moe_config *c);

/* Weight element i of a block as fp32 (exact for both storages). */
float ms_moe_weight_get(ms_moe_dtype dt, const void *block, uint64_t i);

/* fp32 -> bf16 bits, round to nearest even (NaN stays NaN); bf16 -> fp32 exact. */
uint16_t ms_moe_f32_to_bf16(float f);
float ms_moe_bf16_to_f32(uint16_t b);

/* ----------------------------------------------------------------- router */

/* logits[T][E] = x[T][H] . router_w^T. BLAS when built with it, else plain
 * loops (double accumulators). Cannot fail. */
void ms_moe_router_logits(const ms_moe_layer *l, const float *x, uint32_t n_tokens, float *logits);

/* Chooses top_k experts per token from logits [T][E] and the selection bias
 * (NULL = zeros) as described at the top of this header. ids [T][K] in
 * descending order of the selection score; weights [T][K]. The config must
 * pass ms_moe_config_check (asserted). Cannot fail; no allocation. */
void ms_moe_route_select(const ms_moe_config *c, const float *bias, const float *logits, uint32_t n_tokens,
                         uint32_t *ids, float *weights);

/* Logits plus selection for n_tokens tokens of x [T][H]. Fails MS_E_NOMEM
 * (T x E logits are allocated per call). */
ms_status ms_moe_route(const ms_moe_layer *l, const float *x, uint32_t n_tokens, uint32_t *ids, float *weights,
                       ms_error *err);

/* Assignments per expert: load[E] (zeroed first) counts ids [T][K]. */
void ms_moe_count_load(const ms_moe_config *c, const uint32_t *ids, uint32_t n_tokens, uint32_t *load);

/* The auxiliary-loss-free bias update after one step with these choices:
 * bias_e += gamma * sign(T*K/E - load_e). load [E] (scratch, required)
 * receives the per-expert assignment counts. Cannot fail. */
void ms_moe_bias_update(const ms_moe_config *c, float *bias, const uint32_t *ids, uint32_t n_tokens, float gamma,
                        uint32_t *load);

/* Per-expert capacity for a forward over n_tokens tokens (UINT32_MAX when
 * capacity_factor <= 0). */
uint32_t ms_moe_capacity(const ms_moe_config *c, uint32_t n_tokens);

/* ---------------------------------------------------------------- forward */

typedef struct ms_moe_fwd_stats {
    uint64_t assignments; /* token-expert assignments computed */
    uint64_t dropped;     /* assignments dropped by capacity */
    uint32_t max_load;    /* most assignments computed by one expert */
    uint32_t active_experts;
} ms_moe_fwd_stats;

/* The functional reference. x [T][H], ids/weights [T][K] (a routing, e.g.
 * from ms_moe_route), y [T][H] written. stats may be NULL. Fails MS_E_INPUT
 * when an id is >= E, MS_E_NOMEM (one token's scratch is allocated per call). */
ms_status ms_moe_forward_ref(const ms_moe_layer *l, const float *x, uint32_t n_tokens, const uint32_t *ids,
                             const float *weights, float *y, ms_moe_fwd_stats *stats, ms_error *err);

typedef struct ms_moe_workspace ms_moe_workspace;

typedef struct ms_moe_ws_opts {
    int threads;                /* 0 = ms_thread_count() */
    ms_moe_threading threading; /* default AUTO */
    uint32_t tile;              /* weight rows per work unit; 0 = auto (a multiple of 16) */
    bool no_small_kernel;       /* always sgemm; default: a direct AVX2 kernel for <= 4 (fp32) or
                                   <= 8 (bf16) tokens on an expert, reading weights once */
    bool force_parallel;        /* use every thread even for forwards under 4 MFLOP (tests) */
} ms_moe_ws_opts;

/* Every buffer the optimized forward needs for up to max_tokens tokens of
 * this shape (packed activations [T*K][H], gate/up [T*K][2I], expert outputs
 * [T*K][H], shared buffers, sort arrays, per-thread bf16 tiles). opts may be
 * NULL (defaults). Fails MS_E_INPUT on a bad config or max_tokens 0,
 * MS_E_NOMEM when it does not fit. */
ms_status ms_moe_workspace_new(const ms_moe_config *c, uint32_t max_tokens, const ms_moe_ws_opts *opts,
                               ms_moe_workspace **out, ms_error *err);
void ms_moe_workspace_free(ms_moe_workspace *w);
/* Bytes the workspace holds. */
uint64_t ms_moe_workspace_bytes(const ms_moe_workspace *w);

/* The optimized forward: same contract and results (within the tolerance
 * above) as ms_moe_forward_ref. Allocates nothing. Fails MS_E_INPUT when
 * the layer's shape differs from the workspace's, n_tokens exceeds its
 * max_tokens, or an id is >= E. */
ms_status ms_moe_forward(const ms_moe_layer *l, ms_moe_workspace *w, const float *x, uint32_t n_tokens,
                         const uint32_t *ids, const float *weights, float *y, ms_moe_fwd_stats *stats,
                         ms_error *err);

/* ------------------------------------------------------------ measurement */

/* C = A . B^T for row-major A [M][K] (lda), B [N][K] (ldb), C [M][N] (ldc),
 * beta 0 or 1: cblas_sgemm when built with BLAS, else the blocked C GEMM.
 * Threads: whatever the BLAS is set to. Cannot fail. Exposed for tests. */
void ms_moe_sgemm_nt(uint32_t m, uint32_t n, uint32_t k, const float *a, uint32_t lda, const float *b, uint32_t ldb,
                     float beta, float *c, uint32_t ldc);

/* The blocked C GEMM itself (same contract), whether or not BLAS is built. */
void ms_moe_sgemm_nt_c(uint32_t m, uint32_t n, uint32_t k, const float *a, uint32_t lda, const float *b,
                       uint32_t ldb, float beta, float *c, uint32_t ldc);

/* "OpenBLAS 0.3.21 (Haswell kernels, pthread)" or "none (blocked C GEMM)". */
void ms_moe_blas_describe(char *buf, size_t len);
/* A one-line advice when the BLAS runs below this CPU's vector width
 * (OpenBLAS picking AVX2 kernels on an AVX-512 CPU it does not know, as
 * 0.3.21 does on AMD Zen 4/5), else "". Cannot fail. */
void ms_moe_blas_hint(char *buf, size_t len);
/* "AMD EPYC, 2 cores" from /proc/cpuinfo and sysconf. */
void ms_moe_machine_describe(char *buf, size_t len);

/* Sets the BLAS thread count (no-op without BLAS) and returns the previous
 * one (1 without BLAS). */
int ms_moe_blas_set_threads(int n);

/* The matrix-product peak of this machine: the best GFLOP/s of `reps` fp32
 * n x n x n products (C = A B^T, after one warm-up) with `threads` threads,
 * each rep timing both ways of using the cores: one BLAS call threaded by the
 * BLAS, and the product split in 256-column blocks over OpenMP threads with
 * single-threaded BLAS calls (what the TILES forward does). Without BLAS: the
 * C GEMM split the second way. cpu_clock: time with the process CPU clock
 * divided by threads (an estimate of idle-machine wall time on a shared one).
 * Fails MS_E_INPUT for n = 0, MS_E_NOMEM. */
ms_status ms_moe_measure_peak(uint32_t n, int threads, int reps, bool cpu_clock, double *gflops, ms_error *err);

typedef struct ms_moe_curve_opts {
    ms_moe_config cfg;          /* shape; n_experts and top_k are the bench's */
    const uint32_t *tokens_per_expert; /* the points */
    uint32_t n_points;
    int threads;                /* 0 = all */
    ms_moe_threading threading;
    uint32_t tile;              /* 0 = auto */
    bool no_small_kernel;       /* see ms_moe_ws_opts */
    bool cpu_clock;             /* time with CPU seconds / threads (see ms_moe_measure_peak) */
    double min_seconds;         /* after a warm-up, at least 2 runs, more until this much time (0.2) */
    int max_reps;               /* ... but at most this many runs (5); the best counts */
    uint32_t reference_max;     /* run the reference where T*K <= this (0 = never) */
    uint64_t seed;
    ms_progress_fn progress;    /* after each point; may be NULL */
    void *progress_ctx;
} ms_moe_curve_opts;

void ms_moe_curve_opts_default(ms_moe_curve_opts *o);

typedef struct ms_moe_point {
    uint32_t tokens_per_expert; /* every expert gets exactly this many assignments */
    uint32_t n_tokens;          /* T = tokens_per_expert * E / K */
    double flops;               /* 2 * 3 * H * I * T * K (routed experts only) */
    double opt_s;               /* best time of ms_moe_forward */
    double gflops;              /* flops / opt_s / 1e9 */
    double ref_s;               /* best time of ms_moe_forward_ref, < 0 when not run */
    double max_rel_err;         /* max|opt - ref| / max|ref| when ref ran, else -1 */
} ms_moe_point;

/* Builds a layer of the shape (no shared expert, no capacity) and times the
 * optimized forward (and the reference where asked) at each point. The
 * routing is synthetic and exact: token t takes experts (t*K + j) mod E, so
 * every expert gets tokens_per_expert assignments (E*n must be a multiple of
 * K). points[n_points] written. Fails MS_E_INPUT on a bad shape or point,
 * MS_E_NOMEM. */
ms_status ms_moe_measure_curve(const ms_moe_curve_opts *o, ms_moe_point *points, ms_error *err);


/* Parses a tokens-per-expert list: comma-separated integers ("1,8,256") and
 * doubling ranges "A..B" (A, 2A, 4A, ... up to B), e.g. "1..1024". Values
 * 1..1<<24, at most max_n of them, written to out. Fails MS_E_INPUT naming
 * the text. */
ms_status ms_moe_parse_list(const char *s, uint32_t *out, uint32_t max_n, uint32_t *n, ms_error *err);

/* Parses "fp32"/"bf16" and "auto"/"tiles"/"blas". MS_E_INPUT otherwise. */
ms_status ms_moe_dtype_parse(const char *s, ms_moe_dtype *out, ms_error *err);
ms_status ms_moe_threading_parse(const char *s, ms_moe_threading *out, ms_error *err);
const char *ms_moe_dtype_name(ms_moe_dtype d);
const char *ms_moe_threading_name(ms_moe_threading t);

/* ------------------------------------------------------------ calibration */

struct json_t; /* jansson */

typedef struct ms_moe_calib_info {
    const char *name;          /* preset name, e.g. "local" */
    const char *machine;       /* ms_moe_machine_describe */
    const char *blas;          /* ms_moe_blas_describe */
    const char *date;          /* ISO 8601 UTC */
    const char *shape;         /* e.g. "deepseek-v3" */
    const ms_moe_config *cfg;  /* the curve's shape */
    int threads;
    ms_moe_threading threading;
    double peak_gflops;        /* ms_moe_measure_peak */
    uint32_t peak_n;
    double mem_gb_s;           /* measured copy bandwidth, GB/s */
    double memory_gb;          /* host memory */
    bool cpu_clock;            /* timed with CPU seconds / threads (else wall) */
} ms_moe_calib_info;

/* A hardware preset (presets/hw layout, readable by ms_hw_preset_load) for
 * this machine from a measured curve: every figure {"value", "source"}, with
 * "source": "measured by moesim calibrate" at the top, peak = the measured
 * sgemm peak (fp32: the CPU has no faster bf16/fp8 GEMM here), mfu = the
 * efficiency at the largest tokens-per-expert point, hbm = measured copy
 * bandwidth, links = the same host memory (documented as such), plus
 * "efficiency_curve": {tokens_per_expert[], tflops[], efficiency[], ...}.
 * NULL when out of memory. The caller owns the reference. */
struct json_t *ms_moe_calib_json(const ms_moe_calib_info *info, const ms_moe_point *points, uint32_t n_points);

/* Copy bandwidth of this machine, GB/s (best of reps memcpy of `mb` MB with
 * all threads, counting read + write bytes; cpu_clock as in
 * ms_moe_measure_peak). Fails MS_E_NOMEM. */
ms_status ms_moe_measure_copy_bw(uint32_t mb, int reps, bool cpu_clock, double *gb_s, ms_error *err);

/* ----------------------------------------------------------- router traces */

/* A router driven by synthetic token embeddings, with the bias update, for
 * n_layers independent layers. Token embedding x = z + skew * m_l, z uniform
 * with unit variance per coordinate (fresh per token), m_l a fixed random
 * unit-variance direction per layer: the experts whose router row points
 * along m_l are hot, as in a trained model fed one domain. Each step routes
 * tokens_per_step fresh tokens per layer, records the choices, then applies
 * ms_moe_bias_update with gamma (0 = no update, the baseline). */
typedef struct ms_moe_rtrace_opts {
    ms_moe_config cfg;        /* hidden, n_experts, top_k, router kind, groups, scaling */
    uint32_t n_layers;        /* default 1 */
    uint32_t steps;           /* default 50 */
    uint32_t tokens_per_step; /* default 256 */
    float gamma;              /* default 0.01 */
    double skew;              /* default 0.5 */
    uint64_t seed;
} ms_moe_rtrace_opts;

/* Defaults above, shape = "deepseek-v3" with hidden 1024 (the router only). */
void ms_moe_rtrace_opts_default(ms_moe_rtrace_opts *o);

typedef struct ms_moe_rtrace {
    uint32_t steps, n_layers, n_experts;
    double mean_load;     /* tokens_per_step * K / E */
    uint32_t *max_load;   /* [steps][n_layers] before that step's update */
    uint32_t *min_load;   /* [steps][n_layers] */
    float *bias;          /* [n_layers][E] after the last step */
    ms_trace *trace;      /* one request per step (all rows prompt), n_layers layers */
} ms_moe_rtrace;

/* Runs it. Fails MS_E_INPUT on a bad config or zero steps/tokens/layers,
 * MS_E_NOMEM. Same options -> same trace, whatever the thread count. */
ms_status ms_moe_router_trace(const ms_moe_rtrace_opts *o, ms_moe_rtrace **out, ms_error *err);
void ms_moe_rtrace_free(ms_moe_rtrace *r);

#ifdef __cplusplus
}
#endif
#endif
