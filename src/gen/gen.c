/* gen.c - synthetic routing traces: presets, options, fitted profiles,
 * request lengths, topics and the per-layer driver (see moesim/gen.h). */
#include "moesim/gen.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef MOESIM_HAVE_OPENMP
#include <omp.h>
#endif

#include "gen/gen_internal.h"

/* ------------------------------------------------------------ presets */

/* The routed-expert shape of published models, from each model's
 * config.json on Hugging Face (field names in the source strings). MoE layers
 * = num_hidden_layers minus dense layers (first_k_dense_replace for
 * DeepSeek, interleave_moe_layer_step for Llama 4). Shared experts are not
 * routed and not counted.
 *
 * Default skews (log-normal sigma of the popularity) were measured, not
 * guessed: with the default topics and drift, `moesim gen` gives per layer
 *  - lognormal:0.3 -> max/mean 1.5-2.5 (mean 1.9), hottest-10% share 0.17 at
 *    64 experts top-6, like the real DeepSeek-V2-Lite trace in
 *    ../shared/data (max/mean 1.5-2.2, hot-10% 0.15-0.18). Used for the
 *    load-balanced families (DeepSeek's bias balancing, Qwen3's global-batch
 *    balance loss), for want of public per-expert loads at their scale;
 *  - lognormal:1.5 -> max/mean 8-47 (mean 18), hot-10% 0.57 at 128 experts
 *    top-1, like the real Llama-4-Maverick trace (max/mean 10-30, hot-10%
 *    0.43-0.67);
 *  - Mixtral lognormal:0.2 (max/mean about 1.3 over 8 experts): the Mixtral
 *    paper (arXiv:2401.04088, section 5) reports no strong expert
 *    specialisation; Llama-4-Scout (no public trace) lognormal:0.5.
 * Use --skew or --fit for anything else. */
static const ms_gen_preset presets[] = {
    {"deepseek-v3", 58, 256, 8, 8, 4, MS_GROUP_TOP2_SUM, {MS_SKEW_LOGNORMAL, 0.3},
     "deepseek-ai/DeepSeek-V3 config.json: num_hidden_layers 61, first_k_dense_replace 3, "
     "n_routed_experts 256, num_experts_per_tok 8, n_group 8, topk_group 4, topk_method noaux_tc"},
    {"deepseek-r1", 58, 256, 8, 8, 4, MS_GROUP_TOP2_SUM, {MS_SKEW_LOGNORMAL, 0.3},
     "deepseek-ai/DeepSeek-R1 config.json: same architecture as DeepSeek-V3"},
    {"deepseek-v2", 59, 160, 6, 8, 3, MS_GROUP_MAX, {MS_SKEW_LOGNORMAL, 0.3},
     "deepseek-ai/DeepSeek-V2 config.json: num_hidden_layers 60, first_k_dense_replace 1, "
     "n_routed_experts 160, num_experts_per_tok 6, n_group 8, topk_group 3, topk_method group_limited_greedy"},
    {"deepseek-v2-lite", 26, 64, 6, 1, 1, MS_GROUP_TOP2_SUM, {MS_SKEW_LOGNORMAL, 0.3},
     "deepseek-ai/DeepSeek-V2-Lite config.json: num_hidden_layers 27, first_k_dense_replace 1, "
     "n_routed_experts 64, num_experts_per_tok 6, n_group 1, topk_group 1, topk_method greedy"},
    {"llama4-maverick", 24, 128, 1, 1, 1, MS_GROUP_TOP2_SUM, {MS_SKEW_LOGNORMAL, 1.5},
     "meta-llama/Llama-4-Maverick-17B-128E-Instruct config.json: num_hidden_layers 48, "
     "interleave_moe_layer_step 2, num_local_experts 128, num_experts_per_tok 1"},
    {"llama4-scout", 48, 16, 1, 1, 1, MS_GROUP_TOP2_SUM, {MS_SKEW_LOGNORMAL, 0.5},
     "meta-llama/Llama-4-Scout-17B-16E-Instruct config.json: num_hidden_layers 48, "
     "interleave_moe_layer_step 1, num_local_experts 16, num_experts_per_tok 1"},
    {"qwen3-235b-a22b", 94, 128, 8, 1, 1, MS_GROUP_TOP2_SUM, {MS_SKEW_LOGNORMAL, 0.3},
     "Qwen/Qwen3-235B-A22B config.json: num_hidden_layers 94, decoder_sparse_step 1, "
     "mlp_only_layers [], num_experts 128, num_experts_per_tok 8"},
    {"qwen3-30b-a3b", 48, 128, 8, 1, 1, MS_GROUP_TOP2_SUM, {MS_SKEW_LOGNORMAL, 0.3},
     "Qwen/Qwen3-30B-A3B config.json: num_hidden_layers 48, decoder_sparse_step 1, "
     "num_experts 128, num_experts_per_tok 8"},
    {"mixtral-8x7b", 32, 8, 2, 1, 1, MS_GROUP_TOP2_SUM, {MS_SKEW_LOGNORMAL, 0.2},
     "mistralai/Mixtral-8x7B-v0.1 config.json: num_hidden_layers 32, num_local_experts 8, "
     "num_experts_per_tok 2"},
    {"mixtral-8x22b", 56, 8, 2, 1, 1, MS_GROUP_TOP2_SUM, {MS_SKEW_LOGNORMAL, 0.2},
     "mistralai/Mixtral-8x22B-v0.1 config.json: num_hidden_layers 56, num_local_experts 8, "
     "num_experts_per_tok 2"},
};

size_t ms_gen_preset_count(void) { return sizeof presets / sizeof presets[0]; }

const ms_gen_preset *ms_gen_preset_at(size_t i) { return i < ms_gen_preset_count() ? &presets[i] : NULL; }

const ms_gen_preset *ms_gen_preset_find(const char *name, ms_error *err) {
    for (size_t i = 0; i < ms_gen_preset_count(); i++)
        if (strcmp(presets[i].name, name) == 0) return &presets[i];
    char known[512] = "";
    size_t used = 0;
    for (size_t i = 0; i < ms_gen_preset_count() && used < sizeof known; i++)
        used += (size_t)snprintf(known + used, sizeof known - used, "%s%s", i ? ", " : "", presets[i].name);
    ms_error_set(err, MS_E_INPUT, "unknown model '%s' (known: %s)", name, known);
    return NULL;
}

/* --------------------------------------------------------------- skew */

ms_status ms_gen_skew_parse(const char *s, ms_gen_skew *out, ms_error *err) {
    if (strcmp(s, "uniform") == 0) {
        out->kind = MS_SKEW_UNIFORM;
        out->param = 0;
        return MS_OK;
    }
    const char *colon = strchr(s, ':');
    ms_gen_skew_kind kind;
    if (colon && (size_t)(colon - s) == 4 && strncmp(s, "zipf", 4) == 0) kind = MS_SKEW_ZIPF;
    else if (colon && (size_t)(colon - s) == 9 && strncmp(s, "lognormal", 9) == 0) kind = MS_SKEW_LOGNORMAL;
    else
        return ms_error_set(err, MS_E_INPUT, "skew '%s': expected uniform, zipf:S or lognormal:SIGMA", s);
    char *end;
    errno = 0;
    double v = strtod(colon + 1, &end);
    if (colon[1] == '\0' || *end || errno || !isfinite(v) || v < 0 || v > 20)
        return ms_error_set(err, MS_E_INPUT, "skew '%s': the parameter must be a number from 0 to 20", s);
    out->kind = kind;
    out->param = v;
    return MS_OK;
}

void ms_gen_skew_format(const ms_gen_skew *s, char *buf, size_t len) {
    if (!len) return;
    switch (s->kind) {
    case MS_SKEW_ZIPF: snprintf(buf, len, "zipf:%g", s->param); break;
    case MS_SKEW_LOGNORMAL: snprintf(buf, len, "lognormal:%g", s->param); break;
    default: snprintf(buf, len, "uniform"); break;
    }
}

/* Count of loads >= the non-negative double whose bit pattern is bits
 * (non-negative doubles order like their bit patterns). */
static uint32_t count_at_least(const double *loads, uint32_t n, uint64_t bits) {
    double v;
    memcpy(&v, &bits, sizeof v);
    uint32_t c = 0;
    for (uint32_t e = 0; e < n; e++) c += loads[e] >= v;
    return c;
}

void ms_gen_skew_of_loads(const double *loads, uint32_t n, double *max_mean, double *hot10) {
    double sum = 0, mx = 0;
    for (uint32_t e = 0; e < n; e++) {
        sum += loads[e] > 0 ? loads[e] : 0;
        if (loads[e] > mx) mx = loads[e];
    }
    *max_mean = 0;
    *hot10 = 0;
    if (!(sum > 0) || n == 0) return;
    /* share of the ceil(n/10) largest: the h-th largest value v by binary
     * search over bit patterns, then everything above v plus ties */
    uint32_t h = (n + 9) / 10;
    uint64_t lo = 0, hi;
    memcpy(&hi, &mx, sizeof hi);
    while (lo < hi) { /* largest bits with count(>= bits) >= h */
        uint64_t mid = lo + (hi - lo + 1) / 2;
        if (count_at_least(loads, n, mid) >= h) lo = mid;
        else hi = mid - 1;
    }
    double v;
    memcpy(&v, &lo, sizeof v);
    double hot = 0;
    uint32_t above = 0;
    for (uint32_t e = 0; e < n; e++)
        if (loads[e] > v) {
            hot += loads[e];
            above++;
        }
    hot += (double)(h - above) * v;
    *max_mean = mx / (sum / n);
    *hot10 = hot / sum;
}

ms_status ms_gen_layer_skew(const ms_trace *t, double *max_mean, double *hot10, ms_error *err) {
    uint32_t E = t->n_experts;
    uint64_t *cnt = ms_alloc_array(E, sizeof *cnt, err);
    double *d = ms_alloc_array(E, sizeof *d, err);
    if (!cnt || !d) {
        ms_free(cnt);
        ms_free(d);
        return MS_E_NOMEM;
    }
    size_t per = (size_t)t->n_tokens * t->top_k;
    for (uint32_t l = 0; l < t->n_layers; l++) {
        memset(cnt, 0, E * sizeof *cnt);
        const uint16_t *x = t->experts + (size_t)l * per;
        for (size_t i = 0; i < per; i++) cnt[x[i]]++;
        for (uint32_t e = 0; e < E; e++) d[e] = (double)cnt[e];
        ms_gen_skew_of_loads(d, E, &max_mean[l], &hot10[l]);
    }
    ms_free(cnt);
    ms_free(d);
    return MS_OK;
}

/* ------------------------------------------------------------ profile */

void ms_gen_profile_free(ms_gen_profile *p) {
    if (!p) return;
    ms_free(p->share);
    ms_free(p->prompt_len);
    ms_free(p->output_len);
    ms_free(p);
}

static ms_gen_profile *profile_alloc(uint32_t L, uint32_t E, uint64_t n_req, ms_error *err) {
    ms_gen_profile *p = ms_calloc_array(1, sizeof *p, err);
    if (!p) return NULL;
    p->n_layers = L;
    p->n_experts = E;
    p->share = ms_calloc_array((size_t)L * E, sizeof *p->share, err);
    if (n_req) {
        p->prompt_len = ms_alloc_array(n_req, sizeof *p->prompt_len, err);
        p->output_len = ms_alloc_array(n_req, sizeof *p->output_len, err);
    }
    if (!p->share || (n_req && (!p->prompt_len || !p->output_len))) {
        ms_gen_profile_free(p);
        return NULL;
    }
    p->n_requests = n_req;
    return p;
}

ms_status ms_gen_profile_from_trace(const ms_trace *t, ms_gen_profile **out, ms_error *err) {
    *out = NULL;
    if (t->n_tokens == 0)
        return ms_error_set(err, MS_E_INPUT, "%s: the trace has no tokens to fit", t->label);
    ms_gen_profile *p = profile_alloc(t->n_layers, t->n_experts, t->n_requests, err);
    uint64_t *cnt = ms_calloc_array(t->n_experts, sizeof *cnt, err);
    if (!p || !cnt) {
        ms_gen_profile_free(p);
        ms_free(cnt);
        return MS_E_NOMEM;
    }
    p->top_k = t->top_k;
    snprintf(p->label, sizeof p->label, "%s", t->label);
    size_t per = (size_t)t->n_tokens * t->top_k;
    for (uint32_t l = 0; l < t->n_layers; l++) {
        memset(cnt, 0, t->n_experts * sizeof *cnt);
        const uint16_t *x = t->experts + (size_t)l * per;
        for (size_t i = 0; i < per; i++) cnt[x[i]]++;
        for (uint32_t e = 0; e < t->n_experts; e++)
            p->share[(size_t)l * t->n_experts + e] = (double)cnt[e] / (double)per;
    }
    for (uint64_t r = 0; r < t->n_requests; r++) {
        uint64_t rows = t->tok_offset[r + 1] - t->tok_offset[r];
        p->prompt_len[r] = t->n_prompt[r];
        p->output_len[r] = (uint32_t)(rows - t->n_prompt[r]);
    }
    ms_free(cnt);
    *out = p;
    return MS_OK;
}

ms_status ms_gen_profile_from_loads(const ms_loads *l, uint32_t top_k, const char *label,
                                    ms_gen_profile **out, ms_error *err) {
    *out = NULL;
    for (uint32_t i = 0; i < l->n_layers; i++) {
        double sum = 0;
        for (uint32_t e = 0; e < l->n_experts; e++) sum += l->w[(size_t)i * l->n_experts + e];
        if (!(sum > 0))
            return ms_error_set(err, MS_E_INPUT, "%s: layer %u has no load to fit", label ? label : "loads", i);
    }
    ms_gen_profile *p = profile_alloc(l->n_layers, l->n_experts, 0, err);
    if (!p) return MS_E_NOMEM;
    p->top_k = top_k;
    snprintf(p->label, sizeof p->label, "%s", label ? label : "loads");
    for (uint32_t i = 0; i < l->n_layers; i++) {
        const double *w = l->w + (size_t)i * l->n_experts;
        double sum = 0;
        for (uint32_t e = 0; e < l->n_experts; e++) sum += w[e];
        for (uint32_t e = 0; e < l->n_experts; e++) p->share[(size_t)i * l->n_experts + e] = w[e] / sum;
    }
    *out = p;
    return MS_OK;
}

/* ------------------------------------------------------------ options */

void ms_gen_opts_default(ms_gen_opts *o) {
    memset(o, 0, sizeof *o);
    o->n_groups = 1;
    o->topk_groups = 1;
    o->n_requests = 1;
    o->prompt_mean = 512;
    o->prompt_sigma = 1.0;
    o->output_mean = 256;
    o->output_sigma = 0.8;
    o->max_len = 16384;
    o->skew.kind = MS_SKEW_LOGNORMAL;
    o->skew.param = 0.3;
    o->fit_iters = 5;
    o->n_topics = 8;
    o->topic_strength = 1.0;
    o->topic_switch = 1.0 / 64;
    o->drift = 0.02;
    o->drift_window = 4096;
    o->seed = 1;
}

void ms_gen_opts_apply_preset(ms_gen_opts *o, const ms_gen_preset *p) {
    o->n_layers = p->n_layers;
    o->n_experts = p->n_experts;
    o->top_k = p->top_k;
    o->n_groups = p->n_groups;
    o->topk_groups = p->topk_groups;
    o->group_score = p->group_score;
    o->skew = p->skew;
}

static bool bad_num(double v, double lo, double hi) { return !isfinite(v) || v < lo || v > hi; }

ms_status ms_gen_opts_check(const ms_gen_opts *o, ms_error *err) {
    if (o->n_layers == 0 || o->n_experts == 0 || o->top_k == 0)
        return ms_error_set(err, MS_E_INPUT, "layers, experts and top-k must be positive (got %u, %u, %u)",
                            o->n_layers, o->n_experts, o->top_k);
    if (o->n_experts > 65536)
        return ms_error_set(err, MS_E_INPUT, "%u experts: at most 65536 are supported", o->n_experts);
    if (o->top_k > o->n_experts)
        return ms_error_set(err, MS_E_INPUT, "top-k %u exceeds the %u experts", o->top_k, o->n_experts);
    if (o->n_ranked != 0 && (o->n_ranked <= o->top_k || o->n_ranked > o->n_experts))
        return ms_error_set(err, MS_E_INPUT, "ranked choices %u must exceed top-k %u and not exceed %u experts",
                            o->n_ranked, o->top_k, o->n_experts);
    if (o->n_groups > GEN_MAX_GROUPS)
        return ms_error_set(err, MS_E_INPUT, "%u groups: at most %u are supported", o->n_groups, GEN_MAX_GROUPS);
    if (o->n_groups > 1) {
        if (o->n_experts % o->n_groups != 0)
            return ms_error_set(err, MS_E_INPUT, "%u groups do not divide %u experts", o->n_groups, o->n_experts);
        if (o->topk_groups == 0 || o->topk_groups > o->n_groups)
            return ms_error_set(err, MS_E_INPUT, "top groups %u must be 1..%u", o->topk_groups, o->n_groups);
        if ((uint64_t)o->topk_groups * (o->n_experts / o->n_groups) < o->top_k)
            return ms_error_set(err, MS_E_INPUT, "top-k %u exceeds the %u experts of %u groups", o->top_k,
                                o->topk_groups * (o->n_experts / o->n_groups), o->topk_groups);
    }
    if (o->n_requests == 0) return ms_error_set(err, MS_E_INPUT, "requests must be at least 1");
    if (o->total_tokens != 0 && o->total_tokens < o->n_requests)
        return ms_error_set(err, MS_E_INPUT, "tokens %llu fewer than requests %llu (each needs one)",
                            (unsigned long long)o->total_tokens, (unsigned long long)o->n_requests);
    if (bad_num(o->prompt_mean, 1, 1e7) || bad_num(o->prompt_sigma, 0, 10))
        return ms_error_set(err, MS_E_INPUT, "prompt mean must be 1..1e7 and its sigma 0..10");
    if (bad_num(o->output_mean, 0, 1e7) || bad_num(o->output_sigma, 0, 10))
        return ms_error_set(err, MS_E_INPUT, "output mean must be 0..1e7 and its sigma 0..10");
    if (o->max_len == 0) return ms_error_set(err, MS_E_INPUT, "max length must be at least 1");
    if (o->lengths_from_profile && (!o->profile || o->profile->n_requests == 0))
        return ms_error_set(err, MS_E_INPUT, "lengths from the fitted input asked for, but it has no requests");
    if (!o->profile && (o->skew.kind > MS_SKEW_LOGNORMAL || bad_num(o->skew.param, 0, 20)))
        return ms_error_set(err, MS_E_INPUT, "skew parameter must be 0..20");
    if (o->profile && o->fit_iters == 0) return ms_error_set(err, MS_E_INPUT, "fit iterations must be at least 1");
    if (o->n_topics > 64 || o->n_topics > o->n_experts)
        return ms_error_set(err, MS_E_INPUT, "topics %u: at most 64 and at most the %u experts", o->n_topics,
                            o->n_experts);
    if (bad_num(o->topic_strength, 0, 20) || bad_num(o->topic_switch, 0, 1))
        return ms_error_set(err, MS_E_INPUT, "topic strength must be 0..20 and topic switch 0..1");
    if (bad_num(o->drift, 0, 10)) return ms_error_set(err, MS_E_INPUT, "drift must be 0..10");
    if (o->drift > 0 && o->drift_window == 0) return ms_error_set(err, MS_E_INPUT, "drift window must be positive");
    if (o->shift_request >= o->n_requests)
        return ms_error_set(err, MS_E_INPUT, "shift at request %llu: there are only %llu requests (0..%llu)",
                            (unsigned long long)o->shift_request, (unsigned long long)o->n_requests,
                            (unsigned long long)o->n_requests - 1);
    return MS_OK;
}

/* ------------------------------------------------------------ lengths */

static uint32_t lognormal_len(ms_rng *r, double mean, double sigma, uint32_t lo, uint32_t hi) {
    double mu = log(mean) - 0.5 * sigma * sigma;
    double v = floor(exp(mu + sigma * ms_rng_normal(r)) + 0.5);
    if (!(v >= lo)) v = lo;
    if (v > hi) v = hi;
    return (uint32_t)v;
}

typedef struct frac_idx {
    double frac;
    uint64_t i;
} frac_idx;

static int cmp_frac(const void *a, const void *b) {
    const frac_idx *x = a, *y = b;
    if (x->frac != y->frac) return x->frac > y->frac ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* Scales rows[] (each >= 1) to sum exactly to total (>= n), keeping >= 1. */
static ms_status rescale_rows(uint64_t *rows, uint64_t n, uint64_t total, ms_error *err) {
    double sum = 0;
    for (uint64_t i = 0; i < n; i++) sum += (double)rows[i];
    frac_idx *fx = ms_alloc_array(n, sizeof *fx, err);
    if (!fx) return MS_E_NOMEM;
    uint64_t got = 0;
    for (uint64_t i = 0; i < n; i++) {
        double x = (double)rows[i] * (double)total / sum;
        double f = floor(x);
        rows[i] = f < 1 ? 1 : (uint64_t)f;
        fx[i].frac = f < 1 ? 0 : x - f;
        fx[i].i = i;
        got += rows[i];
    }
    qsort(fx, n, sizeof *fx, cmp_frac);
    for (uint64_t k = 0; got < total; k = (k + 1) % n, got++) rows[fx[k].i]++;
    /* too many (ones forced up): take from the largest, round-robin */
    while (got > total) {
        uint64_t best = 0;
        for (uint64_t i = 1; i < n; i++)
            if (rows[i] > rows[best]) best = i;
        uint64_t second = 1;
        for (uint64_t i = 0; i < n; i++)
            if (i != best && rows[i] > second) second = rows[i];
        uint64_t take = rows[best] - second;
        if (take == 0) take = 1;
        if (take > got - total) take = got - total;
        rows[best] -= take;
        got -= take;
    }
    ms_free(fx);
    return MS_OK;
}

/* Draws (prompt, output) lengths of every request into t's offsets. */
static ms_status make_lengths(const ms_gen_opts *o, uint32_t *np, uint32_t *nd, uint64_t *total,
                              ms_error *err) {
    ms_rng r;
    ms_rng_seed(&r, gen_seed_mix(o->seed, 1, 0));
    uint64_t n = o->n_requests;
    uint64_t *rows = ms_alloc_array(n, sizeof *rows, err);
    if (!rows) return MS_E_NOMEM;
    for (uint64_t i = 0; i < n; i++) {
        if (o->lengths_from_profile) {
            uint64_t j = ms_rng_below(&r, o->profile->n_requests);
            np[i] = o->profile->prompt_len[j];
            nd[i] = o->profile->output_len[j];
            if (np[i] + (uint64_t)nd[i] == 0) np[i] = 1;
        } else {
            np[i] = lognormal_len(&r, o->prompt_mean, o->prompt_sigma, 1, o->max_len);
            nd[i] = o->output_mean > 0 ? lognormal_len(&r, o->output_mean, o->output_sigma, 1, o->max_len) : 0;
        }
        rows[i] = (uint64_t)np[i] + nd[i];
    }
    ms_status st = MS_OK;
    if (o->total_tokens) {
        uint64_t *old = ms_alloc_array(n, sizeof *old, err);
        if (!old) {
            ms_free(rows);
            return MS_E_NOMEM;
        }
        memcpy(old, rows, n * sizeof *rows);
        st = rescale_rows(rows, n, o->total_tokens, err);
        for (uint64_t i = 0; st == MS_OK && i < n; i++) {
            if (rows[i] > UINT32_MAX) {
                st = ms_error_set(err, MS_E_INPUT, "request %llu would get %llu tokens: too many for one request",
                                  (unsigned long long)i, (unsigned long long)rows[i]);
                break;
            }
            if (nd[i] == 0 || rows[i] == 1) {
                np[i] = (uint32_t)rows[i];
                nd[i] = 0;
                continue;
            }
            double p = floor((double)rows[i] * np[i] / (double)old[i] + 0.5);
            if (p < 1) p = 1;
            if (p > (double)rows[i] - 1) p = (double)rows[i] - 1;
            np[i] = (uint32_t)p;
            nd[i] = (uint32_t)(rows[i] - np[i]);
        }
        ms_free(old);
    }
    *total = 0;
    for (uint64_t i = 0; i < n; i++) *total += rows[i];
    ms_free(rows);
    return st;
}

/* Topic of every token: each request starts with a random topic and
 * switches with probability sw per token. */
static void make_topics(uint8_t *topics, const uint64_t *off, uint64_t n_req, uint32_t C, double sw,
                        uint64_t seed) {
    ms_rng r;
    ms_rng_seed(&r, seed);
    uint64_t thr = sw >= 1.0 ? UINT64_MAX : (uint64_t)(sw * 18446744073709551616.0);
    for (uint64_t q = 0; q < n_req; q++) {
        uint8_t cur = (uint8_t)ms_rng_below(&r, C);
        for (uint64_t t = off[q]; t < off[q + 1]; t++) {
            if (t > off[q] && ms_rng_next(&r) < thr) cur = (uint8_t)ms_rng_below(&r, C);
            topics[t] = cur;
        }
    }
}

/* Topics of the calibration tokens: segments of the mean topic run length
 * (1 / sw) visit the topics in a shuffled order, each exactly once per C
 * segments, so the calibration sees them equally often (random topic
 * frequencies would bias the fitted weights of whole clusters). */
static void make_cal_topics(uint8_t *topics, uint64_t n, uint32_t C, double sw, uint64_t seed) {
    ms_rng r;
    ms_rng_seed(&r, seed);
    uint64_t seg = sw > 0 ? (uint64_t)(1.0 / sw + 0.5) : n;
    if (seg == 0) seg = 1;
    uint64_t order[256];
    uint32_t next = C;
    uint8_t cur = 0;
    for (uint64_t t = 0; t < n; t++) {
        if (t % seg == 0) {
            if (next == C) {
                for (uint32_t c = 0; c < C; c++) order[c] = c;
                ms_rng_shuffle_u64(&r, order, C);
                next = 0;
            }
            cur = (uint8_t)order[next++];
        }
        topics[t] = cur;
    }
}

/* ------------------------------------------------------ per-layer setup */

static int cmp_desc(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x > y ? -1 : x < y;
}

/* Caps shares at cap (sum stays 1): the excess goes to the uncapped experts
 * in proportion to their shares (uniformly if they have none). */
static void cap_shares(double *s, uint32_t E, double cap) {
    for (uint32_t round = 0; round <= E; round++) {
        double excess = 0, free_mass = 0;
        uint32_t free_n = 0;
        for (uint32_t e = 0; e < E; e++) {
            if (s[e] > cap) {
                excess += s[e] - cap;
                s[e] = cap;
            } else if (s[e] < cap) {
                free_mass += s[e];
                free_n++;
            }
        }
        if (excess <= 1e-15 || free_n == 0) return;
        for (uint32_t e = 0; e < E; e++) {
            if (s[e] >= cap) continue;
            s[e] += free_mass > 0 ? excess * s[e] / free_mass : excess / free_n;
        }
    }
}

/* Target shares of layer l: the profile layer at the same depth, resampled
 * to E experts when the counts differ, capped at 1/top_k. */
static void target_shares(const ms_gen_opts *o, uint32_t l, ms_rng *perm_rng, double *tgt, double *tmp,
                          uint64_t *perm) {
    const ms_gen_profile *p = o->profile;
    uint32_t E = o->n_experts, Es = p->n_experts;
    uint32_t ls = (uint32_t)((uint64_t)l * p->n_layers / o->n_layers);
    const double *src = p->share + (size_t)ls * Es;
    if (Es == E) {
        memcpy(tgt, src, E * sizeof *tgt);
    } else {
        /* cumulative share curve of the sorted loads, linearly interpolated */
        memcpy(tmp, src, Es * sizeof *tmp);
        qsort(tmp, Es, sizeof *tmp, cmp_desc);
        double prev_f = 0;
        for (uint32_t j = 0; j < E; j++) {
            double x = (double)(j + 1) * Es / E;
            uint32_t i = (uint32_t)x;
            double f = 0;
            for (uint32_t k = 0; k < i && k < Es; k++) f += tmp[k];
            if (i < Es) f += (x - i) * tmp[i];
            perm[j] = j;
            tmp[Es + j] = f - prev_f;
            prev_f = f;
        }
        ms_rng_shuffle_u64(perm_rng, perm, E);
        for (uint32_t j = 0; j < E; j++) tgt[perm[j]] = tmp[Es + j] > 0 ? tmp[Es + j] : 0;
        double sum = 0;
        for (uint32_t e = 0; e < E; e++) sum += tgt[e];
        for (uint32_t e = 0; e < E; e++) tgt[e] /= sum;
    }
    cap_shares(tgt, E, 1.0 / o->top_k);
}

ms_status ms_gen_target_shares(const ms_gen_opts *o, uint32_t layer, double *shares, ms_error *err) {
    if (!o->profile || layer >= o->n_layers || o->n_experts == 0 || o->top_k == 0 || o->top_k > o->n_experts)
        return ms_error_set(err, MS_E_INPUT, "target shares need a profile, a valid shape and layer < %u", o->n_layers);
    uint32_t E = o->n_experts, Es = o->profile->n_experts;
    double *tmp = ms_alloc_array((size_t)E + Es, sizeof *tmp, err);
    uint64_t *perm = ms_alloc_array(E, sizeof *perm, err);
    if (!tmp || !perm) {
        ms_free(tmp);
        ms_free(perm);
        return MS_E_NOMEM;
    }
    ms_rng r;
    ms_rng_seed(&r, gen_seed_mix(o->seed, 2, layer));
    target_shares(o, layer, &r, shares, tmp, perm);
    ms_free(tmp);
    ms_free(perm);
    return MS_OK;
}

/* Log weights of a layer from the skew, over a random permutation. */
static void skew_weights(const ms_gen_opts *o, ms_rng *r, double *logw, uint64_t *perm) {
    uint32_t E = o->n_experts;
    for (uint32_t e = 0; e < E; e++) perm[e] = e;
    ms_rng_shuffle_u64(r, perm, E);
    for (uint32_t j = 0; j < E; j++) {
        double w = 0;
        if (o->skew.kind == MS_SKEW_ZIPF) w = -o->skew.param * log((double)j + 1.0);
        else if (o->skew.kind == MS_SKEW_LOGNORMAL) w = o->skew.param * ms_rng_normal(r);
        logw[perm[j]] = w;
    }
}

typedef struct layer_job {
    const ms_gen_opts *o;
    const float *gumbel;
    const uint8_t *topics, *cal_topics;
    uint64_t n_cal;
    ms_trace *t;
} layer_job;

static ms_status gen_layer(const layer_job *j, uint32_t l, ms_error *err) {
    const ms_gen_opts *o = j->o;
    uint32_t E = o->n_experts;
    uint32_t Es = o->profile ? o->profile->n_experts : 0;
    double *logw = ms_alloc_array(E, sizeof *logw, err);
    double *tgt = ms_alloc_array(E, sizeof *tgt, err);
    double *tmp = ms_alloc_array((size_t)E + Es, sizeof *tmp, err);
    uint64_t *perm = ms_alloc_array(E, sizeof *perm, err);
    uint8_t *cluster = ms_calloc_array(E, 1, err);
    uint32_t *shift_perm = o->shift_request ? ms_alloc_array(E, sizeof *shift_perm, err) : NULL;
    ms_status st = MS_E_NOMEM;
    if (!logw || !tgt || !tmp || !perm || !cluster || (o->shift_request && !shift_perm)) goto done;

    gen_layer_cfg c = {0};
    c.n_experts = E;
    c.top_k = o->top_k;
    c.n_ranked = o->n_ranked > o->top_k ? o->n_ranked : o->top_k;
    c.n_groups = o->n_groups;
    c.topk_groups = o->topk_groups;
    c.group_score = o->group_score;
    c.n_topics = o->n_topics > 1 ? o->n_topics : 1;
    c.topic_strength = o->topic_strength;
    c.cluster = cluster;
    c.gumbel = j->gumbel;
    c.drift = o->drift;
    c.drift_window = o->drift_window;

    ms_rng r;
    ms_rng_seed(&r, gen_seed_mix(o->seed, 3, l));
    if (c.n_topics > 1) { /* clusters: a random partition into n_topics equal parts */
        for (uint32_t e = 0; e < E; e++) perm[e] = e;
        ms_rng_shuffle_u64(&r, perm, E);
        for (uint32_t i = 0; i < E; i++) cluster[perm[i]] = (uint8_t)(i % c.n_topics);
    }
    ms_rng_seed(&r, gen_seed_mix(o->seed, 2, l));
    if (o->profile) {
        target_shares(o, l, &r, tgt, tmp, perm);
        st = gen_fit_layer(&c, tgt, o->fit_iters, j->cal_topics, j->n_cal, gen_seed_mix(o->seed, 5, l), logw, err);
        if (st != MS_OK) goto done;
    } else {
        skew_weights(o, &r, logw, perm);
    }
    ms_trace *t = j->t;
    if (shift_perm) {
        ms_trace_draw_permutation(o->shift_seed, l, E, shift_perm);
        c.shift_perm = shift_perm;
        c.shift_token = t->tok_offset[o->shift_request];
    }
    st = gen_route_layer(&c, logw, j->topics, t->n_tokens, gen_seed_mix(o->seed, 4, l),
                         t->experts + (size_t)l * t->n_tokens * t->top_k,
                         t->ranked ? t->ranked + (size_t)l * t->n_tokens * t->n_ranked : NULL, NULL, err);
done:
    ms_free(logw);
    ms_free(tgt);
    ms_free(tmp);
    ms_free(perm);
    ms_free(cluster);
    ms_free(shift_perm);
    return st;
}

/* Tokens routed per calibration round of a fit. */
#define GEN_FIT_TOKENS 131072u

ms_status ms_gen_trace(const ms_gen_opts *o, ms_trace **out, ms_error *err) {
    *out = NULL;
    ms_status st = ms_gen_opts_check(o, err);
    if (st != MS_OK) return st;
    uint64_t n = o->n_requests;
    uint32_t *np = ms_alloc_array(n, sizeof *np, err);
    uint32_t *nd = ms_alloc_array(n, sizeof *nd, err);
    if (!np || !nd) {
        ms_free(np);
        ms_free(nd);
        return MS_E_NOMEM;
    }
    uint64_t total = 0;
    st = make_lengths(o, np, nd, &total, err);
    ms_trace *t = NULL;
    if (st == MS_OK)
        st = ms_trace_new(o->n_layers, o->n_experts, o->top_k, o->n_ranked, n, total, &t, err);
    if (st != MS_OK) {
        ms_free(np);
        ms_free(nd);
        return st;
    }
    t->tok_offset[0] = 0;
    for (uint64_t i = 0; i < n; i++) {
        t->n_prompt[i] = np[i];
        t->n_output[i] = nd[i];
        t->request_id[i] = (int64_t)i;
        t->tok_offset[i + 1] = t->tok_offset[i] + np[i] + nd[i];
    }
    ms_free(np);
    ms_free(nd);
    snprintf(t->source_dtype, sizeof t->source_dtype, "<i4");
    snprintf(t->label, sizeof t->label, "synthetic (seed %llu)", (unsigned long long)o->seed);

    uint32_t C = o->n_topics > 1 ? o->n_topics : 1;
    uint64_t n_cal = o->profile ? GEN_FIT_TOKENS : 0;
    float *gumbel = ms_alloc_array(GEN_GUMBEL_N, sizeof *gumbel, err);
    uint8_t *topics = C > 1 ? ms_alloc_array(t->n_tokens ? t->n_tokens : 1, 1, err) : NULL;
    uint8_t *cal_topics = C > 1 && n_cal ? ms_alloc_array(n_cal, 1, err) : NULL;
    if (!gumbel || (C > 1 && !topics) || (C > 1 && n_cal && !cal_topics)) {
        st = MS_E_NOMEM;
        goto done;
    }
    gen_gumbel_table(gumbel);
    if (C > 1) {
        make_topics(topics, t->tok_offset, n, C, o->topic_switch, gen_seed_mix(o->seed, 6, 0));
        if (n_cal) {
            make_cal_topics(cal_topics, n_cal, C, o->topic_switch, gen_seed_mix(o->seed, 7, 0));
        }
    }
    layer_job job = {o, gumbel, topics, cal_topics, n_cal, t};
    int nt = o->threads > 0 ? o->threads : ms_thread_count();
    long L = (long)o->n_layers;
    int failed = 0;
    uint64_t done_layers = 0;
    ms_error first = {0};
    (void)nt;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (long l = 0; l < L; l++) {
        int skip;
#pragma omp atomic read
        skip = failed;
        if (skip) continue;
        ms_error e = {0};
        if (gen_layer(&job, (uint32_t)l, &e) != MS_OK) {
#pragma omp critical(ms_gen_err)
            {
                if (!failed) first = e;
                failed = 1;
            }
        }
        uint64_t now;
#pragma omp atomic capture
        now = ++done_layers;
        if (o->progress) {
#pragma omp critical(ms_gen_progress)
            o->progress(o->progress_ctx, now, (uint64_t)L);
        }
    }
    if (failed) {
        if (err) *err = first;
        st = first.status ? first.status : MS_E_INTERNAL;
        goto done;
    }
    st = ms_trace_finish(t, err);
done:
    ms_free(gumbel);
    ms_free(topics);
    ms_free(cal_topics);
    if (st != MS_OK) ms_trace_free(t);
    else *out = t;
    return st;
}
