/*
 * moesim/gen.h - synthetic routing traces.
 *
 * Real traces at DeepSeek-V3 scale (58 MoE layers x 256 experts, top-8) are
 * not available, so moesim makes believable ones. The router model, per MoE
 * layer l and token t:
 *
 *   score[e] = w_l[e] + drift_l(t)[e] + beta * [e in cluster_l(topic(t))] + G[e]
 *
 *  - w_l: log popularity (Zipf, log-normal or fitted to a real trace), each
 *    layer with its own random permutation of the experts;
 *  - drift: every `drift_window` tokens (global token order) each log weight
 *    takes a mean-reverting random-walk step of std `drift`;
 *  - topics: the experts of each layer are split into `n_topics` latent
 *    clusters; each token carries a topic (kept along a request, switching
 *    with probability `topic_switch` per token) whose cluster gets a log boost
 *    `topic_strength`: experts of one cluster are chosen together;
 *  - G: standard Gumbel noise, so the top-k of the scores is a draw of k
 *    experts without replacement from softmax(log weights) (Plackett-Luce);
 *  - group-limited routing (DeepSeek-V2/V3, n_groups > 1): the experts form
 *    n_groups equal groups scored by the sum of their top-2 scores (V3) or
 *    their top score (V2); the token's top_k come from the best topk_groups
 *    groups only.
 *  - shift (optional): from a given request on, the popularity, drift and
 *    clusters of each layer are relabelled by a seeded permutation, so the
 *    hot experts change abruptly while the skew stays the same.
 * The choices are stored in rank order; with n_ranked > top_k the next-best
 * experts follow (routed_experts_ranked). Prompt and output lengths are
 * log-normal (or resampled from a fitted trace).
 *
 * Everything is a function of the seed: same options -> same trace, whatever
 * the number of threads.
 */
#ifndef MOESIM_GEN_H
#define MOESIM_GEN_H

#include <stdbool.h>
#include "moesim/common.h"
#include "moesim/trace.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How a group is scored in group-limited routing. */
typedef enum ms_gen_group_score {
    MS_GROUP_TOP2_SUM = 0, /* DeepSeek-V3 (noaux_tc): sum of the group's two best scores */
    MS_GROUP_MAX = 1       /* DeepSeek-V2 (group_limited_greedy): the group's best score */
} ms_gen_group_score;

typedef enum ms_gen_skew_kind {
    MS_SKEW_UNIFORM = 0,   /* all experts equally popular */
    MS_SKEW_ZIPF = 1,      /* popularity of the r-th expert ~ r^-param */
    MS_SKEW_LOGNORMAL = 2  /* log popularity ~ N(0, param^2) */
} ms_gen_skew_kind;

typedef struct ms_gen_skew {
    ms_gen_skew_kind kind;
    double param;          /* Zipf exponent s >= 0, or log-normal sigma >= 0 */
} ms_gen_skew;

/* Parses "uniform", "zipf:S" or "lognormal:SIGMA" (S, SIGMA finite, 0..20).
 * Fails MS_E_INPUT with a message naming the text. */
ms_status ms_gen_skew_parse(const char *s, ms_gen_skew *out, ms_error *err);

/* Writes "zipf:1.1" etc. into buf (always NUL-terminated). */
void ms_gen_skew_format(const ms_gen_skew *s, char *buf, size_t len);

/* A model preset: the routed-expert shape of a published MoE model. */
typedef struct ms_gen_preset {
    const char *name;
    uint32_t n_layers;     /* MoE layers (dense layers excluded) */
    uint32_t n_experts;    /* routed experts per layer (shared experts excluded) */
    uint32_t top_k;
    uint32_t n_groups;     /* expert groups for group-limited routing (1 = none) */
    uint32_t topk_groups;  /* groups a token may use */
    ms_gen_group_score group_score;
    ms_gen_skew skew;      /* default popularity skew (see gen.c for the reasoning) */
    const char *source;    /* where the numbers come from */
} ms_gen_preset;

/* Number of presets and the i-th one (NULL when i is out of range). */
size_t ms_gen_preset_count(void);
const ms_gen_preset *ms_gen_preset_at(size_t i);
/* The preset called name, or NULL (and MS_E_INPUT listing the known names). */
const ms_gen_preset *ms_gen_preset_find(const char *name, ms_error *err);

/* A load profile to fit: per layer, the share of token-expert assignments
 * each expert received, plus the (prompt, output) lengths of the requests. */
typedef struct ms_gen_profile {
    uint32_t n_layers, n_experts, top_k;
    double *share;           /* [n_layers][n_experts], each layer sums to 1 */
    uint64_t n_requests;     /* 0 when lengths are unknown (a load matrix) */
    uint32_t *prompt_len;    /* [n_requests] */
    uint32_t *output_len;    /* [n_requests] */
    char label[256];
} ms_gen_profile;

/* Measures a trace: per-layer assignment shares over all rows, and request
 * lengths. Fails MS_E_INPUT when a layer has no assignments, MS_E_NOMEM. */
ms_status ms_gen_profile_from_trace(const ms_trace *t, ms_gen_profile **out, ms_error *err);

/* A profile from a load matrix (lengths unknown); top_k is recorded as given
 * (0 = unknown). Fails MS_E_INPUT when a layer sums to zero. */
ms_status ms_gen_profile_from_loads(const ms_loads *l, uint32_t top_k, const char *label,
                                    ms_gen_profile **out, ms_error *err);
void ms_gen_profile_free(ms_gen_profile *p);

typedef struct ms_gen_opts {
    /* shape */
    uint32_t n_layers, n_experts, top_k;
    uint32_t n_groups, topk_groups;  /* n_groups <= 1: no group limit */
    ms_gen_group_score group_score;
    uint32_t n_ranked;               /* 0, or > top_k: ranked choices per token */
    /* requests and lengths */
    uint64_t n_requests;             /* >= 1 */
    uint64_t total_tokens;           /* > 0: lengths rescaled to sum to this (>= n_requests) */
    double prompt_mean, prompt_sigma;  /* log-normal: arithmetic mean, sigma of log */
    double output_mean, output_sigma;  /* output_mean 0: prefill only */
    uint32_t max_len;                /* cap on prompt and on output length */
    bool lengths_from_profile;       /* resample (P, D) pairs of profile's requests */
    /* router */
    ms_gen_skew skew;
    const ms_gen_profile *profile;   /* not NULL: fit per-layer popularity to it */
    uint32_t fit_iters;              /* calibration rounds (default 5) */
    uint32_t n_topics;               /* latent clusters (0 or 1 = none) */
    double topic_strength;           /* log boost of the token's cluster */
    double topic_switch;             /* per-token probability of a new topic */
    double drift;                    /* std of a log-weight step per window (0 = none) */
    uint32_t drift_window;           /* tokens per drift step */
    /* an abrupt shift (a tenant change): from request shift_request on (file
     * order = arrival order; 0 = no shift), each layer l's log weights, drift
     * and topic clusters move to other experts by the permutation
     * ms_trace_draw_permutation(shift_seed, l, n_experts), the one
     * TRACE@permute=SHIFT_SEED applies. Earlier requests are the same as
     * without a shift. */
    uint64_t shift_request;
    uint64_t shift_seed;
    /* execution */
    uint64_t seed;
    int threads;                     /* 0 = all */
    ms_progress_fn progress;         /* called with (layers done, layers) */
    void *progress_ctx;
} ms_gen_opts;

/* Defaults: no shape (set it or apply a preset), 1 request, prompt mean 512
 * sigma 1.0, output mean 256 sigma 0.8, max_len 16384, lognormal:0.3, 8
 * topics of strength 1.0 switching 1/64, drift 0.02 per 4096 tokens,
 * fit_iters 5, seed 1. */
void ms_gen_opts_default(ms_gen_opts *o);

/* Copies a preset's shape and default skew into o. */
void ms_gen_opts_apply_preset(ms_gen_opts *o, const ms_gen_preset *p);

/* Checks the options; MS_E_INPUT with a message naming the bad option
 * (zero layers/experts/top_k, top_k > experts, experts > 65536, groups not
 * dividing experts, topk_groups * group size < top_k, n_ranked in 1..top_k or
 * > experts, n_requests 0, total_tokens < n_requests, shift_request >=
 * n_requests, negative or non-finite parameters, ...). */
ms_status ms_gen_opts_check(const ms_gen_opts *o, ms_error *err);

/* Generates a trace (validated with ms_trace_finish). With a profile, each
 * target layer takes the profile layer at the same relative depth; when the
 * expert counts agree the expert ids keep their loads, otherwise the sorted
 * load curve is resampled to n_experts and spread over a random permutation;
 * shares above 1/top_k (impossible without replacement) are capped. Then the
 * log weights are calibrated by simulation so that the expected per-expert
 * loads match. Fails MS_E_INPUT on bad options, MS_E_NOMEM. */
ms_status ms_gen_trace(const ms_gen_opts *o, ms_trace **out, ms_error *err);

/* The per-expert shares that ms_gen_trace fits layer `layer` to (the
 * profile layer at the same depth, resampled and capped as described
 * above); shares has n_experts entries. MS_E_INPUT without a profile or on a
 * bad shape or layer; MS_E_NOMEM. */
ms_status ms_gen_target_shares(const ms_gen_opts *o, uint32_t layer, double *shares, ms_error *err);

/* Per-layer summary of a trace's loads over all rows: max/mean ratio and
 * share of the hottest ceil(10%) experts. Arrays have n_layers entries.
 * Fails MS_E_NOMEM. */
ms_status ms_gen_layer_skew(const ms_trace *t, double *max_mean, double *hot10, ms_error *err);

/* The same two numbers for one layer's shares (or counts) of n experts. */
void ms_gen_skew_of_loads(const double *loads, uint32_t n, double *max_mean, double *hot10);

#ifdef __cplusplus
}
#endif
#endif
