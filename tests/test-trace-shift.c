/* test-trace-shift.c - traces whose expert popularity shifts: concatenation
 * (order, conservation, ranked choices, incompatible shapes, overflow), the
 * per-layer permutation of expert ids (counts moved by the permutation,
 * co-activation structure kept) and `gen --shift` (the requests before the
 * shift unchanged, the popularity after it moved by the same permutation,
 * whatever the thread count). Counts are taken here with plain loops. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "moesim/gen.h"
#include "moesim/trace.h"

/* A trace of n_req requests of lens[r] tokens (prompt = half, rounded up),
 * random distinct ids per token; with R > 0 ranked choices whose first K
 * are the routed ones. Request ids are rid0 + r. */
static ms_trace *make_trace(uint64_t seed, uint32_t L, uint32_t E, uint32_t K, uint32_t R, uint64_t n_req,
                            const uint64_t *lens, int64_t rid0, const char *label) {
    uint64_t T = 0;
    for (uint64_t r = 0; r < n_req; r++) T += lens[r];
    ms_trace *t;
    ms_error err = {0};
    assert_int_equal(ms_trace_new(L, E, K, R, n_req, T, &t, &err), MS_OK);
    for (uint64_t r = 0, pos = 0; r < n_req; r++) {
        t->tok_offset[r] = pos;
        t->n_prompt[r] = (uint32_t)((lens[r] + 1) / 2);
        t->n_output[r] = (uint32_t)(lens[r] - t->n_prompt[r]);
        t->request_id[r] = rid0 + (int64_t)r;
        pos += lens[r];
    }
    t->tok_offset[n_req] = T;
    ms_rng rng;
    ms_rng_seed(&rng, seed);
    uint32_t W = R ? R : K;
    uint16_t *row = malloc(W * sizeof *row);
    assert_non_null(row);
    for (uint32_t l = 0; l < L; l++)
        for (uint64_t tok = 0; tok < T; tok++) {
            for (uint32_t j = 0; j < W; j++) {
                int dup;
                do {
                    double u = ms_rng_uniform(&rng); /* skewed: low ids favoured */
                    row[j] = (uint16_t)(u * u * E);
                    dup = 0;
                    for (uint32_t q = 0; q < j; q++) dup |= row[q] == row[j];
                } while (dup);
            }
            memcpy(t->experts + ((size_t)l * T + tok) * K, row, K * sizeof *row);
            if (R) memcpy(t->ranked + ((size_t)l * T + tok) * R, row, R * sizeof *row);
        }
    free(row);
    snprintf(t->label, sizeof t->label, "%s", label);
    assert_int_equal(ms_trace_finish(t, &err), MS_OK);
    return t;
}

/* counts[e] of layer l over tokens [from, to) */
static void count_layer(const ms_trace *t, uint32_t l, uint64_t from, uint64_t to, uint64_t *counts) {
    memset(counts, 0, t->n_experts * sizeof *counts);
    for (uint64_t tok = from; tok < to; tok++)
        for (uint32_t j = 0; j < t->top_k; j++) counts[ms_trace_row(t, l, tok)[j]]++;
}

/* ------------------------------------------------------------- permute */

static void test_permutation_is_seeded_bijection(void **state) {
    (void)state;
    uint32_t a[64], b[64], c[64];
    ms_trace_draw_permutation(7, 0, 64, a);
    ms_trace_draw_permutation(7, 0, 64, b);
    assert_memory_equal(a, b, sizeof a);
    int seen[64] = {0};
    for (int e = 0; e < 64; e++) {
        assert_true(a[e] < 64);
        seen[a[e]]++;
    }
    for (int e = 0; e < 64; e++) assert_int_equal(seen[e], 1);
    ms_trace_draw_permutation(7, 1, 64, b);  /* another layer */
    ms_trace_draw_permutation(8, 0, 64, c);  /* another seed */
    assert_memory_not_equal(a, b, sizeof a);
    assert_memory_not_equal(a, c, sizeof a);
    uint32_t one[1] = {5};
    ms_trace_draw_permutation(3, 2, 1, one);
    assert_int_equal(one[0], 0);
}

static void test_permute_moves_counts(void **state) {
    (void)state;
    const uint32_t L = 4, E = 16, K = 3, R = 5;
    uint64_t lens[3] = {40, 25, 60};
    ms_trace *t = make_trace(11, L, E, K, R, 3, lens, 100, "orig");
    ms_trace *p, *p2;
    ms_error err = {0};
    assert_int_equal(ms_trace_permute_experts(t, 7, &p, &err), MS_OK);
    assert_int_equal(ms_trace_permute_experts(t, 7, &p2, &err), MS_OK);
    assert_true(p->digest == p2->digest);
    assert_true(p->digest != t->digest);
    assert_string_equal(p->label, "orig@permute=7");
    /* everything but the ids is unchanged */
    assert_int_equal(p->n_layers, L);
    assert_int_equal(p->n_experts, E);
    assert_int_equal(p->top_k, K);
    assert_int_equal(p->n_ranked, R);
    assert_int_equal(p->n_requests, 3);
    assert_int_equal(p->n_tokens, t->n_tokens);
    assert_memory_equal(p->tok_offset, t->tok_offset, 4 * sizeof *t->tok_offset);
    assert_memory_equal(p->n_prompt, t->n_prompt, 3 * sizeof *t->n_prompt);
    assert_memory_equal(p->n_output, t->n_output, 3 * sizeof *t->n_output);
    assert_memory_equal(p->request_id, t->request_id, 3 * sizeof *t->request_id);
    uint64_t co[16], cp[16];
    uint32_t perm[16];
    int moved_hottest = 0;
    for (uint32_t l = 0; l < L; l++) {
        ms_trace_draw_permutation(7, l, E, perm);
        count_layer(t, l, 0, t->n_tokens, co);
        count_layer(p, l, 0, p->n_tokens, cp);
        uint32_t ho = 0, hp = 0;
        for (uint32_t e = 0; e < E; e++) {
            assert_int_equal(cp[perm[e]], co[e]);
            if (co[e] > co[ho]) ho = e;
            if (cp[e] > cp[hp]) hp = e;
        }
        moved_hottest += hp != ho;
        /* the structure of choices is kept: two slots share an expert after
         * the relabelling iff they did before; ranked still extends routed */
        const uint16_t *x = t->ranked + (size_t)l * t->n_tokens * R, *y = p->ranked + (size_t)l * t->n_tokens * R;
        for (uint64_t i = 0; i < t->n_tokens * R; i += 7)
            for (uint64_t j = 0; j < t->n_tokens * R; j += 5) assert_int_equal(x[i] == x[j], y[i] == y[j]);
        for (uint64_t tok = 0; tok < p->n_tokens; tok++)
            assert_memory_equal(ms_trace_row(p, l, tok), y + tok * R, K * sizeof *y);
    }
    assert_true(moved_hottest > 0);
    ms_trace_free(p);
    ms_trace_free(p2);
    ms_trace_free(t);
}

/* -------------------------------------------------------------- concat */

static void test_concat_order_and_conservation(void **state) {
    (void)state;
    uint64_t la[2] = {5, 3}, lb[3] = {4, 1, 6};
    ms_trace *a = make_trace(1, 3, 8, 2, 4, 2, la, 10, "A");
    ms_trace *b = make_trace(2, 3, 12, 2, 4, 3, lb, 20, "B");
    a->source_bytes = 100;
    b->source_bytes = 50;
    a->n_short_rows = 1;
    ms_trace *c;
    ms_error err = {0};
    assert_int_equal(ms_trace_concat(a, b, &c, &err), MS_OK);
    assert_int_equal(c->n_requests, 5);
    assert_int_equal(c->n_tokens, 19);
    assert_int_equal(c->n_experts, 12); /* the larger */
    assert_int_equal(c->n_ranked, 4);
    assert_int_equal(c->source_bytes, 150);
    assert_int_equal(c->n_short_rows, 1);
    assert_string_equal(c->label, "A+B");
    /* the expected trace, built directly */
    ms_trace *x;
    assert_int_equal(ms_trace_new(3, 12, 2, 4, 5, 19, &x, &err), MS_OK);
    uint64_t off[6] = {0, 5, 8, 12, 13, 19};
    int64_t rid[5] = {10, 11, 20, 21, 22};
    uint32_t np[5] = {3, 2, 2, 1, 3};
    for (int r = 0; r < 5; r++) {
        x->tok_offset[r] = off[r];
        x->request_id[r] = rid[r];
        x->n_prompt[r] = np[r];
        x->n_output[r] = (uint32_t)(off[r + 1] - off[r]) - np[r];
    }
    x->tok_offset[5] = 19;
    for (uint32_t l = 0; l < 3; l++)
        for (uint64_t tok = 0; tok < 19; tok++) {
            const ms_trace *src = tok < 8 ? a : b;
            uint64_t st = tok < 8 ? tok : tok - 8;
            memcpy(x->experts + ((size_t)l * 19 + tok) * 2, ms_trace_row(src, l, st), 2 * sizeof(uint16_t));
            memcpy(x->ranked + ((size_t)l * 19 + tok) * 4, src->ranked + ((size_t)l * src->n_tokens + st) * 4,
                   4 * sizeof(uint16_t));
        }
    assert_int_equal(ms_trace_finish(x, &err), MS_OK);
    assert_memory_equal(c->tok_offset, x->tok_offset, 6 * sizeof *x->tok_offset);
    assert_memory_equal(c->request_id, x->request_id, 5 * sizeof *x->request_id);
    assert_memory_equal(c->n_prompt, x->n_prompt, 5 * sizeof *x->n_prompt);
    assert_memory_equal(c->n_output, x->n_output, 5 * sizeof *x->n_output);
    assert_memory_equal(c->experts, x->experts, 3 * 19 * 2 * sizeof(uint16_t));
    assert_memory_equal(c->ranked, x->ranked, 3 * 19 * 4 * sizeof(uint16_t));
    assert_true(c->digest == x->digest);
    /* tokens and per-expert loads are conserved */
    uint64_t ca[12], cb[12], cc[12];
    for (uint32_t l = 0; l < 3; l++) {
        count_layer(a, l, 0, a->n_tokens, ca);
        count_layer(b, l, 0, b->n_tokens, cb);
        count_layer(c, l, 0, c->n_tokens, cc);
        for (uint32_t e = 0; e < 12; e++) assert_int_equal(cc[e], (e < 8 ? ca[e] : 0) + cb[e]);
    }
    ms_trace_free(x);
    ms_trace_free(c);
    ms_trace_free(b);
    ms_trace_free(a);
}

static void test_concat_ranked_dropped_and_labels(void **state) {
    (void)state;
    uint64_t l1[1] = {6};
    ms_trace *a = make_trace(3, 2, 8, 2, 4, 1, l1, 0, "");
    ms_trace *b = make_trace(4, 2, 8, 2, 0, 1, l1, 0, "");
    ms_trace *d = make_trace(5, 2, 8, 2, 3, 1, l1, 0, "");
    memset(a->label, 'a', sizeof a->label - 1);
    memset(b->label, 'b', sizeof b->label - 1);
    ms_trace *c;
    ms_error err = {0};
    assert_int_equal(ms_trace_concat(a, b, &c, &err), MS_OK);
    assert_int_equal(c->n_ranked, 0);
    assert_null(c->ranked);
    assert_int_equal(strlen(c->label), sizeof c->label - 1); /* truncated, terminated */
    assert_int_equal(c->label[0], 'a');
    ms_trace_free(c);
    assert_int_equal(ms_trace_concat(a, d, &c, &err), MS_OK); /* widths 4 and 3 */
    assert_int_equal(c->n_ranked, 0);
    ms_trace_free(c);
    snprintf(a->label, sizeof a->label, "x");
    assert_int_equal(ms_trace_concat(a, b, &c, &err), MS_OK);
    assert_int_equal(strncmp(c->label, "x+bbb", 5), 0);
    assert_int_equal(strlen(c->label), sizeof c->label - 1);
    ms_trace_free(c);
    ms_trace_free(a);
    ms_trace_free(b);
    ms_trace_free(d);
}

static void test_concat_refuses(void **state) {
    (void)state;
    uint64_t l1[1] = {4};
    ms_trace *a = make_trace(1, 3, 8, 2, 0, 1, l1, 0, "A");
    ms_trace *layers = make_trace(2, 4, 8, 2, 0, 1, l1, 0, "L4");
    ms_trace *topk = make_trace(3, 3, 8, 3, 0, 1, l1, 0, "K3");
    ms_trace *c = (ms_trace *)1;
    ms_error err = {0};
    assert_int_equal(ms_trace_concat(a, layers, &c, &err), MS_E_INPUT);
    assert_null(c);
    assert_non_null(strstr(err.msg, "layers"));
    assert_non_null(strstr(err.msg, "L4"));
    assert_int_equal(ms_trace_concat(topk, a, &c, &err), MS_E_INPUT);
    assert_non_null(strstr(err.msg, "top_k"));
    /* sizes that overflow are refused before anything is read */
    ms_trace big = *a;
    big.n_requests = UINT64_MAX;
    assert_int_equal(ms_trace_concat(a, &big, &c, &err), MS_E_NOMEM);
    big = *a;
    big.n_tokens = UINT64_MAX - 1;
    assert_int_equal(ms_trace_concat(&big, a, &c, &err), MS_E_NOMEM);
    big.n_tokens = UINT64_MAX / 8;
    assert_int_equal(ms_trace_concat(&big, a, &c, &err), MS_E_NOMEM);
    assert_null(c);
    ms_trace_free(a);
    ms_trace_free(layers);
    ms_trace_free(topk);
}

/* ---------------------------------------------------------- gen --shift */

static void shift_opts(ms_gen_opts *o) {
    ms_gen_opts_default(o);
    o->n_layers = 3;
    o->n_experts = 32;
    o->top_k = 4;
    o->n_ranked = 6;
    o->n_requests = 200;
    o->total_tokens = 120000;
    o->skew.kind = MS_SKEW_LOGNORMAL;
    o->skew.param = 1.0;
    o->seed = 4;
}

static ms_trace *gen_ok(const ms_gen_opts *o) {
    ms_trace *t = NULL;
    ms_error err = {0};
    ms_status st = ms_gen_trace(o, &t, &err);
    if (st != MS_OK) fprintf(stderr, "gen: %s\n", err.msg);
    assert_int_equal(st, MS_OK);
    return t;
}

static double tv_distance(const uint64_t *a, const uint64_t *b, uint32_t n) {
    double sa = 0, sb = 0, d = 0;
    for (uint32_t e = 0; e < n; e++) sa += (double)a[e], sb += (double)b[e];
    for (uint32_t e = 0; e < n; e++) d += fabs((double)a[e] / sa - (double)b[e] / sb);
    return d / 2;
}

/* Checks the shifted trace s against the unshifted u: identical before the
 * shift token, and after it each layer's loads are those of u moved by the
 * permutation (up to sampling noise), far from u's own. */
static void check_shift(const ms_trace *u, const ms_trace *s, uint64_t shift_req, uint64_t seed, double max_tv_moved,
                        double min_tv_unmoved) {
    uint64_t T = u->n_tokens, T0 = u->tok_offset[shift_req];
    uint32_t E = u->n_experts, K = u->top_k, R = u->n_ranked;
    assert_int_equal(s->n_tokens, T);
    assert_memory_equal(s->tok_offset, u->tok_offset, (u->n_requests + 1) * sizeof *u->tok_offset);
    uint64_t *cu = malloc(E * sizeof *cu), *cs = malloc(E * sizeof *cs), *moved = malloc(E * sizeof *moved);
    uint32_t *perm = malloc(E * sizeof *perm);
    assert_true(cu && cs && moved && perm);
    for (uint32_t l = 0; l < u->n_layers; l++) {
        assert_memory_equal(ms_trace_row(s, l, 0), ms_trace_row(u, l, 0), T0 * K * sizeof(uint16_t));
        if (R)
            assert_memory_equal(s->ranked + (size_t)l * T * R, u->ranked + (size_t)l * T * R, T0 * R * sizeof(uint16_t));
        assert_memory_not_equal(ms_trace_row(s, l, T0), ms_trace_row(u, l, T0), (T - T0) * K * sizeof(uint16_t));
        ms_trace_draw_permutation(seed, l, E, perm);
        count_layer(u, l, T0, T, cu);
        count_layer(s, l, T0, T, cs);
        for (uint32_t e = 0; e < E; e++) moved[perm[e]] = cu[e];
        double tv_moved = tv_distance(cs, moved, E), tv_u = tv_distance(cs, cu, E);
        if (tv_moved > max_tv_moved || tv_u < min_tv_unmoved)
            fprintf(stderr, "layer %u: TV to the moved loads %.3f, to the unmoved %.3f\n", l, tv_moved, tv_u);
        assert_true(tv_moved <= max_tv_moved);
        assert_true(tv_u >= min_tv_unmoved);
    }
    free(cu);
    free(cs);
    free(moved);
    free(perm);
}

static void test_gen_shift_plain(void **state) {
    (void)state;
    ms_gen_opts o;
    shift_opts(&o);
    ms_trace *u = gen_ok(&o);
    o.shift_request = 120;
    o.shift_seed = 9;
    o.threads = 1;
    ms_trace *s1 = gen_ok(&o);
    o.threads = 2;
    ms_trace *s2 = gen_ok(&o);
    assert_true(s1->digest == s2->digest);
    assert_memory_equal(s1->ranked, s2->ranked, (size_t)3 * s1->n_tokens * 6 * sizeof(uint16_t));
    check_shift(u, s1, 120, 9, 0.06, 0.25);
    ms_error err = {0};
    o.shift_request = o.n_requests;
    assert_int_equal(ms_gen_opts_check(&o, &err), MS_E_INPUT);
    assert_non_null(strstr(err.msg, "shift"));
    ms_trace_free(u);
    ms_trace_free(s1);
    ms_trace_free(s2);
}

static void test_gen_shift_grouped(void **state) {
    (void)state;
    /* DeepSeek-V3 routing: groups are fixed blocks of ids, so the moved
     * popularity meets other groups; the loads still follow it closely */
    ms_gen_opts o;
    ms_error err = {0};
    ms_gen_opts_default(&o);
    ms_gen_opts_apply_preset(&o, ms_gen_preset_find("deepseek-v3", &err));
    o.n_layers = 2;
    o.n_requests = 50;
    o.total_tokens = 60000;
    o.skew.param = 1.0;
    ms_trace *u = gen_ok(&o);
    o.shift_request = 10;
    o.shift_seed = 3;
    ms_trace *s = gen_ok(&o);
    check_shift(u, s, 10, 3, 0.1, 0.3);
    ms_trace_free(u);
    ms_trace_free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_permutation_is_seeded_bijection),
        cmocka_unit_test(test_permute_moves_counts),
        cmocka_unit_test(test_concat_order_and_conservation),
        cmocka_unit_test(test_concat_ranked_dropped_and_labels),
        cmocka_unit_test(test_concat_refuses),
        cmocka_unit_test(test_gen_shift_plain),
        cmocka_unit_test(test_gen_shift_grouped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
