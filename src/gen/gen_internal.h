/* gen_internal.h - the per-layer router of the synthetic trace generator,
 * shared by gen.c (orchestration) and router.c (sampling, calibration). */
#ifndef MOESIM_GEN_INTERNAL_H
#define MOESIM_GEN_INTERNAL_H

#include "moesim/gen.h"

/* Most expert groups supported by group-limited routing. */
#define GEN_MAX_GROUPS 64u

/* Entries of the quantised Gumbel table (16-bit indices). */
#define GEN_GUMBEL_N 65536u

/* What the router of one layer needs; everything read-only. */
typedef struct gen_layer_cfg {
    uint32_t n_experts, top_k, n_ranked;  /* n_ranked: choices produced per token (>= top_k) */
    uint32_t n_groups, topk_groups;       /* n_groups <= 1: plain top-k */
    ms_gen_group_score group_score;
    uint32_t n_topics;                    /* >= 1 */
    double topic_strength;
    const uint8_t *cluster;               /* [n_experts] cluster of each expert (< n_topics) */
    const float *gumbel;                  /* [GEN_GUMBEL_N] Gumbel quantiles (grouped routing) */
    double drift;                         /* 0: none */
    uint32_t drift_window;
    const uint32_t *shift_perm;           /* NULL: no shift; else from token shift_token on, expert
                                           * shift_perm[e] takes e's log weight, drift and cluster */
    uint64_t shift_token;
    bool force_scalar;                    /* tests: skip the SIMD path (same output) */
} gen_layer_cfg;

/* Fills table[GEN_GUMBEL_N] with -log(-log((i + 0.5) / N)). */
void gen_gumbel_table(float *table);

/* Derives an independent 64-bit seed from seed and two labels. */
uint64_t gen_seed_mix(uint64_t seed, uint64_t a, uint64_t b);

/* Routes tokens 0..n_tokens-1 (topic of token t: topics[t] < n_topics)
 * through one layer with log weights logw[n_experts] (-INFINITY = never
 * chosen unless nothing else is left), relabelled by c->shift_perm from
 * c->shift_token on (the tokens before it are routed as without a shift). Writes, for each token, top_k ids to
 * out_k[t * top_k ..] (if not NULL) and n_ranked ids in rank order to
 * out_r[t * n_ranked ..] (if not NULL), and adds the top_k choices to
 * counts[n_experts] (if not NULL). Draws from a stream seeded by `seed` only.
 * Fails MS_E_NOMEM. */
ms_status gen_route_layer(const gen_layer_cfg *c, const double *logw, const uint8_t *topics,
                          uint64_t n_tokens, uint64_t seed, uint16_t *out_k, uint16_t *out_r,
                          uint64_t *counts, ms_error *err);

/* Calibrates log weights so that routing (without drift) gives each expert
 * the share target[e] (sum 1, each <= 1/top_k) of the top_k choices:
 * `iters` rounds, each routing a sample (n_cal/8, n_cal/4, n_cal/2, then
 * n_cal tokens with topics cal_topics[0..]) and multiplying each weight by
 * target / measured share. Experts with target 0 get -INFINITY. Writes the
 * weights after the last correction to logw. Fails MS_E_NOMEM. */
ms_status gen_fit_layer(const gen_layer_cfg *c, const double *target, uint32_t iters,
                        const uint8_t *cal_topics, uint64_t n_cal, uint64_t seed, double *logw,
                        ms_error *err);

#endif
