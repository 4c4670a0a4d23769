/* test-gen.c - the synthetic trace generator: presets, shapes, determinism,
 * the router against Plackett-Luce probabilities computed here, group-limited
 * routing, ranked choices, skew, drift, lengths, and --fit on the real traces
 * (skipped when ../shared/data is absent). Loads are counted here, not with
 * the generator's own helpers. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gen/gen_internal.h"
#include "moesim/gen.h"
#include "moesim/trace.h"

static void small_opts(ms_gen_opts *o, const char *model, uint64_t requests, uint64_t tokens) {
    ms_error err = {0};
    ms_gen_opts_default(o);
    const ms_gen_preset *p = ms_gen_preset_find(model, &err);
    assert_non_null(p);
    ms_gen_opts_apply_preset(o, p);
    o->n_requests = requests;
    o->total_tokens = tokens;
}

static ms_trace *gen_ok(const ms_gen_opts *o) {
    ms_trace *t = NULL;
    ms_error err = {0};
    ms_status st = ms_gen_trace(o, &t, &err);
    if (st != MS_OK) fprintf(stderr, "gen: %s\n", err.msg);
    assert_int_equal(st, MS_OK);
    assert_non_null(t);
    return t;
}

/* counts[l][e] over all tokens */
static uint64_t *count_loads(const ms_trace *t) {
    uint64_t *c = calloc((size_t)t->n_layers * t->n_experts, sizeof *c);
    assert_non_null(c);
    for (uint32_t l = 0; l < t->n_layers; l++)
        for (uint64_t tok = 0; tok < t->n_tokens; tok++) {
            const uint16_t *row = ms_trace_row(t, l, tok);
            for (uint32_t j = 0; j < t->top_k; j++) c[(size_t)l * t->n_experts + row[j]]++;
        }
    return c;
}

static int cmp_desc_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x > y ? -1 : x < y;
}

/* max/mean and share of the ceil(E/10) hottest, from counts */
static void skew_of(const uint64_t *c, uint32_t E, double *mm, double *hot) {
    uint64_t *s = malloc(E * sizeof *s);
    assert_non_null(s);
    memcpy(s, c, E * sizeof *s);
    qsort(s, E, sizeof *s, cmp_desc_u64);
    double sum = 0, h = 0;
    for (uint32_t e = 0; e < E; e++) sum += (double)s[e];
    for (uint32_t e = 0; e < (E + 9) / 10; e++) h += (double)s[e];
    *mm = (double)s[0] / (sum / E);
    *hot = h / sum;
    free(s);
}

static void test_presets(void **state) {
    (void)state;
    struct {
        const char *name;
        uint32_t L, E, K, G, TG;
    } want[] = {{"deepseek-v3", 58, 256, 8, 8, 4},
                {"deepseek-v2-lite", 26, 64, 6, 1, 1},
                {"llama4-maverick", 24, 128, 1, 1, 1},
                {"qwen3-235b-a22b", 94, 128, 8, 1, 1},
                {"mixtral-8x7b", 32, 8, 2, 1, 1}};
    ms_error err = {0};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const ms_gen_preset *p = ms_gen_preset_find(want[i].name, &err);
        assert_non_null(p);
        assert_int_equal(p->n_layers, want[i].L);
        assert_int_equal(p->n_experts, want[i].E);
        assert_int_equal(p->top_k, want[i].K);
        assert_int_equal(p->n_groups, want[i].G);
        assert_int_equal(p->topk_groups, want[i].TG);
        assert_non_null(strstr(p->source, "config.json"));
    }
    assert_null(ms_gen_preset_find("gpt-5", &err));
    assert_int_equal(err.status, MS_E_INPUT);
    assert_non_null(strstr(err.msg, "gpt-5"));
    assert_non_null(strstr(err.msg, "deepseek-v3"));
    assert_true(ms_gen_preset_count() >= 5);
    assert_null(ms_gen_preset_at(ms_gen_preset_count()));
}

static void test_skew_parse(void **state) {
    (void)state;
    ms_gen_skew s;
    ms_error err = {0};
    assert_int_equal(ms_gen_skew_parse("zipf:1.1", &s, &err), MS_OK);
    assert_int_equal(s.kind, MS_SKEW_ZIPF);
    assert_true(fabs(s.param - 1.1) < 1e-12);
    assert_int_equal(ms_gen_skew_parse("lognormal:1.5", &s, &err), MS_OK);
    assert_int_equal(s.kind, MS_SKEW_LOGNORMAL);
    assert_int_equal(ms_gen_skew_parse("uniform", &s, &err), MS_OK);
    assert_int_equal(s.kind, MS_SKEW_UNIFORM);
    const char *bad[] = {"zipf", "zipf:", "zipf:x", "zipf:-1", "zipf:1e9", "pareto:1", "lognormal:nan", "zipf:1 "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(ms_gen_skew_parse(bad[i], &s, &err), MS_E_INPUT);
    char buf[32];
    s.kind = MS_SKEW_ZIPF;
    s.param = 1.25;
    ms_gen_skew_format(&s, buf, sizeof buf);
    assert_string_equal(buf, "zipf:1.25");
}

/* ids in range, distinct per token, ranked prefix equals top_k, lengths add up */
static void check_shape(const ms_trace *t, uint32_t L, uint32_t E, uint32_t K, uint32_t R) {
    assert_int_equal(t->n_layers, L);
    assert_int_equal(t->n_experts, E);
    assert_int_equal(t->top_k, K);
    assert_int_equal(t->n_ranked, R);
    assert_int_equal(t->tok_offset[0], 0);
    for (uint64_t r = 0; r < t->n_requests; r++) {
        uint64_t rows = t->tok_offset[r + 1] - t->tok_offset[r];
        assert_true(rows >= 1);
        assert_int_equal(rows, (uint64_t)t->n_prompt[r] + t->n_output[r]);
        assert_true(t->n_prompt[r] >= 1);
        assert_int_equal(t->request_id[r], (int64_t)r);
    }
    assert_int_equal(t->tok_offset[t->n_requests], t->n_tokens);
    uint8_t *seen = calloc(E, 1);
    for (uint32_t l = 0; l < L; l++)
        for (uint64_t tok = 0; tok < t->n_tokens; tok++) {
            const uint16_t *row = ms_trace_row(t, l, tok);
            memset(seen, 0, E);
            for (uint32_t j = 0; j < K; j++) {
                assert_true(row[j] < E);
                assert_false(seen[row[j]]);
                seen[row[j]] = 1;
            }
            if (R) {
                const uint16_t *rk = t->ranked + ((size_t)l * t->n_tokens + tok) * R;
                assert_memory_equal(rk, row, K * sizeof *row);
                for (uint32_t j = K; j < R; j++) {
                    assert_true(rk[j] < E);
                    assert_false(seen[rk[j]]);
                    seen[rk[j]] = 1;
                }
            }
        }
    free(seen);
}

static void test_shapes_and_ranked(void **state) {
    (void)state;
    ms_gen_opts o;
    small_opts(&o, "deepseek-v3", 7, 1500);
    o.n_layers = 4;
    o.n_ranked = 20;
    ms_trace *t = gen_ok(&o);
    assert_int_equal(t->n_requests, 7);
    assert_int_equal(t->n_tokens, 1500);
    check_shape(t, 4, 256, 8, 20);
    ms_trace_free(t);
    /* ranked beyond the allowed groups (4 x 32 = 128 experts) */
    o.n_ranked = 200;
    o.n_layers = 2;
    o.total_tokens = 300;
    t = gen_ok(&o);
    check_shape(t, 2, 256, 8, 200);
    ms_trace_free(t);
    small_opts(&o, "qwen3-235b-a22b", 5, 1000);
    o.n_layers = 3;
    o.n_ranked = 128; /* every expert ranked */
    t = gen_ok(&o);
    check_shape(t, 3, 128, 8, 128);
    ms_trace_free(t);
    small_opts(&o, "mixtral-8x7b", 3, 400);
    t = gen_ok(&o);
    check_shape(t, 32, 8, 2, 0);
    ms_trace_free(t);
}

static void test_determinism(void **state) {
    (void)state;
    ms_gen_opts o;
    small_opts(&o, "deepseek-v3", 6, 2000);
    o.n_layers = 6;
    o.n_ranked = 12;
    o.threads = 1;
    ms_trace *a = gen_ok(&o);
    o.threads = 2;
    ms_trace *b = gen_ok(&o);
    assert_int_equal(a->digest, b->digest);
    size_t ev = (size_t)a->n_layers * a->n_tokens * a->top_k;
    assert_memory_equal(a->experts, b->experts, ev * sizeof *a->experts);
    assert_memory_equal(a->ranked, b->ranked, ev / a->top_k * a->n_ranked * sizeof *a->ranked);
    o.seed = 2;
    ms_trace *c = gen_ok(&o);
    assert_int_not_equal(a->digest, c->digest);
    ms_trace_free(a);
    ms_trace_free(b);
    ms_trace_free(c);
}

/* Every token's top_k lies in at most topk_groups groups (DeepSeek-V3 and
 * V2 presets, the SIMD 8-group path and the plain one). */
static void test_group_limited(void **state) {
    (void)state;
    const char *models[] = {"deepseek-v3", "deepseek-v2"};
    for (int m = 0; m < 2; m++) {
        for (int variant = 0; variant < 2; variant++) {
            ms_gen_opts o;
            small_opts(&o, models[m], 4, 3000);
            o.n_layers = 3;
            if (variant) { /* a non-8 group count takes the plain C path */
                o.n_groups = 4;
                o.topk_groups = 2;
            }
            ms_trace *t = gen_ok(&o);
            uint32_t gs = t->n_experts / o.n_groups, max_used = 0;
            for (uint32_t l = 0; l < t->n_layers; l++)
                for (uint64_t tok = 0; tok < t->n_tokens; tok++) {
                    const uint16_t *row = ms_trace_row(t, l, tok);
                    uint64_t mask = 0;
                    for (uint32_t j = 0; j < t->top_k; j++) mask |= 1ull << (row[j] / gs);
                    uint32_t used = (uint32_t)__builtin_popcountll(mask);
                    assert_true(used <= o.topk_groups);
                    if (used > max_used) max_used = used;
                }
            assert_true(max_used >= 2); /* not degenerate */
            ms_trace_free(t);
        }
    }
}

static float *gumbel_table(void) {
    float *g = malloc(GEN_GUMBEL_N * sizeof *g);
    assert_non_null(g);
    gen_gumbel_table(g);
    return g;
}

/* Plain top-k is Plackett-Luce: P(e first) = p_e and
 * P(e in top 2) = p_e + sum_{j != e} p_j p_e / (1 - p_j). */
static void test_plackett_luce_plain(void **state) {
    (void)state;
    double p[4] = {0.1, 0.2, 0.3, 0.4}, logw[4];
    for (int e = 0; e < 4; e++) logw[e] = log(p[e]);
    gen_layer_cfg c = {.n_experts = 4, .top_k = 2, .n_ranked = 2, .n_groups = 1, .topk_groups = 1, .n_topics = 1};
    uint64_t n = 200000;
    uint16_t *out = malloc(n * 2 * sizeof *out);
    ms_error err = {0};
    assert_int_equal(gen_route_layer(&c, logw, NULL, n, 42, out, NULL, NULL, &err), MS_OK);
    double first[4] = {0}, in2[4] = {0};
    for (uint64_t t = 0; t < n; t++) {
        first[out[2 * t]] += 1.0 / n;
        in2[out[2 * t]] += 1.0 / n;
        in2[out[2 * t + 1]] += 1.0 / n;
    }
    for (int e = 0; e < 4; e++) {
        double want = p[e];
        for (int j = 0; j < 4; j++)
            if (j != e) want += p[j] * p[e] / (1 - p[j]);
        assert_true(fabs(first[e] - p[e]) < 0.006);  /* std <= 0.0011 */
        assert_true(fabs(in2[e] - want) < 0.006);
    }
    free(out);
}

/* Grouped routing with every group allowed is top-k of (log w + Gumbel),
 * so the same Plackett-Luce probabilities hold; and the SIMD path makes the
 * same choices as the plain C one. */
static void test_grouped_matches_plackett_luce(void **state) {
    (void)state;
    float *gum = gumbel_table();
    double logw[16];
    double p[16], sum = 0;
    for (int e = 0; e < 16; e++) sum += (p[e] = 1.0 + e % 5);
    for (int e = 0; e < 16; e++) logw[e] = log(p[e] /= sum);
    gen_layer_cfg c = {.n_experts = 16, .top_k = 2, .n_ranked = 2, .n_groups = 8, .topk_groups = 8,
                       .group_score = MS_GROUP_TOP2_SUM, .n_topics = 1, .gumbel = gum};
    uint64_t n = 200000;
    uint16_t *a = malloc(n * 2 * sizeof *a), *b = malloc(n * 2 * sizeof *b);
    ms_error err = {0};
    assert_int_equal(gen_route_layer(&c, logw, NULL, n, 7, a, NULL, NULL, &err), MS_OK);
    c.force_scalar = true;
    assert_int_equal(gen_route_layer(&c, logw, NULL, n, 7, b, NULL, NULL, &err), MS_OK);
    assert_memory_equal(a, b, n * 2 * sizeof *a);
    double first[16] = {0}, in2[16] = {0};
    for (uint64_t t = 0; t < n; t++) {
        first[a[2 * t]] += 1.0 / n;
        in2[a[2 * t]] += 1.0 / n;
        in2[a[2 * t + 1]] += 1.0 / n;
    }
    for (int e = 0; e < 16; e++) {
        double want = p[e];
        for (int j = 0; j < 16; j++)
            if (j != e) want += p[j] * p[e] / (1 - p[j]);
        assert_true(fabs(first[e] - p[e]) < 0.005);
        assert_true(fabs(in2[e] - want) < 0.006);
    }
    free(a);
    free(b);
    free(gum);
}

/* Group scoring: group 0 has one strong expert and three useless ones; the
 * other groups two good ones each. With one group allowed and top-1, the
 * "max" rule (DeepSeek-V2) makes the choice the global argmax, so expert 0
 * wins with probability e^3 / (e^3 + 6 e^2 + 9 e^-20); the "top-2 sum" rule
 * (DeepSeek-V3) practically never picks group 0. SIMD and C paths agree on
 * both, with 8 groups and topics on. */
static void test_group_score_rules(void **state) {
    (void)state;
    float *gum = gumbel_table();
    double logw[32];
    for (int e = 0; e < 32; e++) {
        int g = e / 4, i = e % 4;
        logw[e] = g == 0 ? (i == 0 ? 3.0 : -20.0) : g < 4 ? (i < 2 ? 2.0 : -20.0) : -INFINITY;
    }
    uint8_t cluster[32];
    for (int e = 0; e < 32; e++) cluster[e] = (uint8_t)(e % 2);
    uint64_t n = 100000;
    uint8_t *topics = calloc(n, 1); /* all topic 0 with strength 0: no effect */
    uint16_t *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    for (int rule = 0; rule < 2; rule++) {
        gen_layer_cfg c = {.n_experts = 32, .top_k = 1, .n_ranked = 1, .n_groups = 8, .topk_groups = 1,
                           .group_score = rule ? MS_GROUP_MAX : MS_GROUP_TOP2_SUM, .n_topics = 2,
                           .topic_strength = 0, .cluster = cluster, .gumbel = gum};
        ms_error err = {0};
        assert_int_equal(gen_route_layer(&c, logw, topics, n, 11, a, NULL, NULL, &err), MS_OK);
        c.force_scalar = true;
        assert_int_equal(gen_route_layer(&c, logw, topics, n, 11, b, NULL, NULL, &err), MS_OK);
        assert_memory_equal(a, b, n * sizeof *a);
        double share0 = 0;
        for (uint64_t t = 0; t < n; t++) {
            share0 += a[t] == 0;
            assert_true(a[t] < 16); /* -inf experts never chosen */
        }
        share0 /= n;
        double want = exp(3) / (exp(3) + 6 * exp(2) + 9 * exp(-20));
        if (rule) assert_true(fabs(share0 - want) < 0.01); /* std 0.0015 */
        else assert_true(share0 < 0.001);
    }
    free(a);
    free(b);
    free(topics);
    free(gum);
}

static double mean_max_mean(const ms_trace *t) {
    uint64_t *c = count_loads(t);
    double acc = 0;
    for (uint32_t l = 0; l < t->n_layers; l++) {
        double mm, hot;
        skew_of(c + (size_t)l * t->n_experts, t->n_experts, &mm, &hot);
        acc += mm;
    }
    free(c);
    return acc / t->n_layers;
}

static void test_skew_effect(void **state) {
    (void)state;
    double prev = 0;
    double s_values[] = {0.0, 0.6, 1.0, 1.4};
    for (int i = 0; i < 4; i++) {
        ms_gen_opts o;
        ms_gen_opts_default(&o);
        o.n_layers = 4;
        o.n_experts = 64;
        o.top_k = 4;
        o.n_requests = 10;
        o.total_tokens = 20000;
        o.drift = 0;
        o.skew.kind = MS_SKEW_ZIPF;
        o.skew.param = s_values[i];
        ms_trace *t = gen_ok(&o);
        double mm = mean_max_mean(t);
        if (i == 0) assert_true(mm < 1.3); /* uniform: only noise and topics */
        assert_true(mm > prev * 1.2);
        prev = mm;
        ms_trace_free(t);
    }
}

/* Per-window loads vary more with drift: std over windows of each expert's
 * window count, averaged over experts. */
static double window_spread(const ms_trace *t, uint32_t win) {
    uint32_t E = t->n_experts, nw = (uint32_t)(t->n_tokens / win);
    double *cnt = calloc((size_t)nw * E, sizeof *cnt), spread = 0;
    for (uint32_t w = 0; w < nw; w++)
        for (uint64_t tok = (uint64_t)w * win; tok < (uint64_t)(w + 1) * win; tok++) {
            const uint16_t *row = ms_trace_row(t, 0, tok);
            for (uint32_t j = 0; j < t->top_k; j++) cnt[(size_t)w * E + row[j]]++;
        }
    for (uint32_t e = 0; e < E; e++) {
        double m = 0, v = 0;
        for (uint32_t w = 0; w < nw; w++) m += cnt[(size_t)w * E + e] / nw;
        for (uint32_t w = 0; w < nw; w++) v += pow(cnt[(size_t)w * E + e] - m, 2) / nw;
        spread += sqrt(v) / (m > 0 ? m : 1) / E;
    }
    free(cnt);
    return spread;
}

static void test_drift(void **state) {
    (void)state;
    ms_gen_opts o;
    ms_gen_opts_default(&o);
    o.n_layers = 1;
    o.n_experts = 32;
    o.top_k = 4;
    o.n_requests = 40;
    o.total_tokens = 80000;
    o.n_topics = 0;
    o.drift = 0;
    ms_trace *still = gen_ok(&o);
    o.drift = 0.3;
    o.drift_window = 2000;
    ms_trace *moving = gen_ok(&o);
    double a = window_spread(still, 4000), b = window_spread(moving, 4000);
    /* without drift the spread is multinomial noise: about sqrt(1/500) */
    assert_true(a < 0.07);
    assert_true(b > 2 * a);
    ms_trace_free(still);
    ms_trace_free(moving);
}

static void test_lengths(void **state) {
    (void)state;
    ms_gen_opts o;
    small_opts(&o, "mixtral-8x7b", 2000, 0);
    o.n_layers = 1;
    o.prompt_mean = 300;
    o.output_mean = 100;
    ms_trace *t = gen_ok(&o);
    double mp = 0, md = 0;
    for (uint64_t r = 0; r < t->n_requests; r++) {
        mp += (double)t->n_prompt[r] / t->n_requests;
        md += (double)t->n_output[r] / t->n_requests;
        assert_true(t->n_prompt[r] >= 1 && t->n_prompt[r] <= o.max_len);
        assert_true(t->n_output[r] >= 1);
    }
    assert_true(fabs(mp / 300 - 1) < 0.1);
    assert_true(fabs(md / 100 - 1) < 0.1);
    ms_trace_free(t);
    /* exact totals, prefill only */
    o.n_requests = 37;
    o.total_tokens = 12345;
    o.output_mean = 0;
    t = gen_ok(&o);
    assert_int_equal(t->n_tokens, 12345);
    for (uint64_t r = 0; r < t->n_requests; r++) assert_int_equal(t->n_output[r], 0);
    ms_trace_free(t);
    /* as many tokens as requests: one each */
    o.output_mean = 50;
    o.total_tokens = 37;
    t = gen_ok(&o);
    for (uint64_t r = 0; r < t->n_requests; r++) assert_int_equal(t->tok_offset[r + 1] - t->tok_offset[r], 1);
    ms_trace_free(t);
}

static void test_bad_options(void **state) {
    (void)state;
    ms_gen_opts base, o;
    small_opts(&base, "deepseek-v3", 2, 100);
    ms_error err = {0};
    ms_trace *t = NULL;
#define BAD(stmt)                                                      \
    do {                                                               \
        o = base;                                                      \
        stmt;                                                          \
        assert_int_equal(ms_gen_trace(&o, &t, &err), MS_E_INPUT);      \
        assert_null(t);                                                \
        assert_true(strlen(err.msg) > 0);                              \
    } while (0)
    BAD(o.n_requests = 0);
    BAD(o.total_tokens = 1);
    BAD(o.top_k = 0);
    BAD(o.top_k = 300);
    BAD(o.n_experts = 100000);
    BAD(o.n_groups = 7);
    BAD(o.topk_groups = 9);
    BAD(o.topk_groups = 0);
    BAD(o.n_ranked = 8);
    BAD(o.n_ranked = 257);
    BAD(o.prompt_mean = 0);
    BAD(o.prompt_sigma = -1);
    BAD(o.drift = NAN);
    BAD(o.n_topics = 65);
    BAD(o.topic_switch = 2);
    BAD(o.skew.param = -1);
    BAD(o.lengths_from_profile = true);
#undef BAD
    o = base;
    o.n_groups = 8;
    o.topk_groups = 1;
    o.top_k = 33; /* one group of 32 cannot hold 33 */
    assert_int_equal(ms_gen_opts_check(&o, &err), MS_E_INPUT);
}

static void test_profile_resample_and_cap(void **state) {
    (void)state;
    ms_loads *l = NULL;
    ms_error err = {0};
    assert_int_equal(ms_loads_new(2, 4, &l, &err), MS_OK);
    double w[8] = {40, 30, 20, 10, 90, 5, 5, 0};
    memcpy(l->w, w, sizeof w);
    ms_gen_profile *p = NULL;
    assert_int_equal(ms_gen_profile_from_loads(l, 1, "m", &p, &err), MS_OK);
    ms_gen_opts o;
    ms_gen_opts_default(&o);
    o.profile = p;
    o.n_layers = 4;
    o.n_experts = 16;
    o.top_k = 1;
    double s[16];
    /* layer 0 maps to profile layer 0: max/mean 1.6 kept, four copies of each share / 4 */
    assert_int_equal(ms_gen_target_shares(&o, 0, s, &err), MS_OK);
    double sum = 0, mx = 0;
    int n_at[4] = {0};
    for (int e = 0; e < 16; e++) {
        sum += s[e];
        mx = s[e] > mx ? s[e] : mx;
        for (int k = 0; k < 4; k++) n_at[k] += fabs(s[e] - w[k] / 100 / 4) < 1e-12;
    }
    assert_true(fabs(sum - 1) < 1e-12);
    assert_true(fabs(mx * 16 - 1.6) < 1e-9);
    for (int k = 0; k < 4; k++) assert_int_equal(n_at[k], 4);
    /* layer 3 maps to profile layer 1 (0.9 on one expert, 0.225 on each of
     * its four copies); top-8 caps shares at 1/8 */
    o.top_k = 8;
    assert_int_equal(ms_gen_target_shares(&o, 3, s, &err), MS_OK);
    sum = 0;
    mx = 0;
    for (int e = 0; e < 16; e++) {
        sum += s[e];
        mx = s[e] > mx ? s[e] : mx;
    }
    assert_true(fabs(sum - 1) < 1e-12);
    assert_true(fabs(mx - 0.125) < 1e-12);
    /* and a generated trace follows the capped target: the hottest experts
     * of that layer are chosen by (nearly) every token */
    o.n_requests = 4;
    o.total_tokens = 4000;
    o.drift = 0;
    ms_trace *t = gen_ok(&o);
    uint64_t *c = count_loads(t);
    uint64_t hottest = 0;
    for (int e = 0; e < 16; e++) hottest = c[3 * 16 + e] > hottest ? c[3 * 16 + e] : hottest;
    assert_true(hottest > 0.85 * 4000 && hottest <= 4000);
    free(c);
    ms_trace_free(t);
    ms_gen_profile_free(p);
    ms_loads_free(l);
}

static void test_write_and_reload(void **state) {
    (void)state;
    ms_gen_opts o;
    small_opts(&o, "deepseek-v3", 3, 200);
    o.n_layers = 2;
    o.n_ranked = 10;
    ms_trace *t = gen_ok(&o);
    char dir[512];
    tu_tmp_path("gen-rt", "", dir, sizeof dir);
    ms_error err = {0};
    assert_int_equal(ms_trace_write_npz_dir(t, dir, false, NULL, NULL, &err), MS_OK);
    const char *paths[1] = {dir};
    ms_trace_load_opts lo = {0};
    ms_trace *u = NULL;
    assert_int_equal(ms_trace_load(paths, 1, &lo, &u, &err), MS_OK);
    assert_int_equal(u->n_tokens, t->n_tokens);
    assert_int_equal(u->n_ranked, 10);
    assert_int_equal(u->n_experts, 256);
    assert_int_equal(u->digest, t->digest);
    assert_memory_equal(u->ranked, t->ranked, (size_t)2 * t->n_tokens * 10 * sizeof *t->ranked);
    ms_trace_free(u);
    ms_trace_free(t);
}

/* --fit on a real trace: per layer, max/mean and the hottest-10% share of
 * the generated trace (same size, lengths resampled) within 10% of the real
 * trace's, counted here from both traces. */
static void fit_check(const char *name, uint32_t experts) {
    char dir[512];
    if (!tu_data_dir(name, dir, sizeof dir)) return;
    const char *paths[1] = {dir};
    ms_trace_load_opts lo = {.n_experts = experts};
    ms_trace *real = NULL;
    ms_error err = {0};
    assert_int_equal(ms_trace_load(paths, 1, &lo, &real, &err), MS_OK);
    ms_gen_profile *p = NULL;
    assert_int_equal(ms_gen_profile_from_trace(real, &p, &err), MS_OK);
    ms_gen_opts o;
    ms_gen_opts_default(&o); /* what `moesim gen --fit` sets */
    o.n_layers = p->n_layers;
    o.n_experts = p->n_experts;
    o.top_k = p->top_k;
    o.profile = p;
    o.n_requests = p->n_requests;
    o.lengths_from_profile = true;
    o.drift = 0;
    ms_trace *t = gen_ok(&o);
    uint64_t *cr = count_loads(real), *cg = count_loads(t);
    double worst_mm = 0, worst_hot = 0;
    for (uint32_t l = 0; l < real->n_layers; l++) {
        double mm_r, hot_r, mm_g, hot_g;
        skew_of(cr + (size_t)l * real->n_experts, real->n_experts, &mm_r, &hot_r);
        skew_of(cg + (size_t)l * t->n_experts, t->n_experts, &mm_g, &hot_g);
        worst_mm = fmax(worst_mm, fabs(mm_g / mm_r - 1));
        worst_hot = fmax(worst_hot, fabs(hot_g / hot_r - 1));
    }
    printf("fit %s: %llu tokens, worst layer max/mean off %.1f%%, hottest-10%% share off %.1f%%\n", name,
           (unsigned long long)t->n_tokens, 100 * worst_mm, 100 * worst_hot);
    assert_true(worst_mm < 0.10);
    assert_true(worst_hot < 0.10);
    free(cr);
    free(cg);
    ms_trace_free(t);
    ms_trace_free(real);
    ms_gen_profile_free(p);
}

static void test_fit_real_traces(void **state) {
    (void)state;
    char buf[512];
    if (!tu_data_dir("deepseek-v2-lite-puffin", buf, sizeof buf) && !tu_data_dir("llama4-maverick-mmlu", buf, sizeof buf))
        skip();
    fit_check("deepseek-v2-lite-puffin", 0);
    fit_check("llama4-maverick-mmlu", 128);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_presets),
        cmocka_unit_test(test_skew_parse),
        cmocka_unit_test(test_shapes_and_ranked),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_group_limited),
        cmocka_unit_test(test_plackett_luce_plain),
        cmocka_unit_test(test_grouped_matches_plackett_luce),
        cmocka_unit_test(test_group_score_rules),
        cmocka_unit_test(test_skew_effect),
        cmocka_unit_test(test_drift),
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_profile_resample_and_cap),
        cmocka_unit_test(test_write_and_reload),
        cmocka_unit_test(test_fit_real_traces),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
