/* stats.c - expert load statistics per layer and phase. */
#include "moesim/stats.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *ms_phase_name(ms_phase p) {
    switch (p) {
    case MS_PHASE_PREFILL: return "prefill";
    case MS_PHASE_DECODE: return "decode";
    default: return "all";
    }
}

ms_status ms_phase_parse(const char *s, ms_phase *out, ms_error *err) {
    if (strcmp(s, "all") == 0) *out = MS_PHASE_ALL;
    else if (strcmp(s, "prefill") == 0) *out = MS_PHASE_PREFILL;
    else if (strcmp(s, "decode") == 0) *out = MS_PHASE_DECODE;
    else return ms_error_set(err, MS_E_INPUT, "phase must be all, prefill or decode, got '%s'", s);
    return MS_OK;
}

void ms_stats_opts_default(ms_stats_opts *o) {
    memset(o, 0, sizeof *o);
    o->phase = MS_PHASE_ALL;
    o->window = 1024;
    o->coact = true;
    o->top_pairs = 10;
}

/* A run of consecutive tokens [begin, end) belonging to the phase. */
typedef struct segment {
    uint64_t begin, end;
} segment;

static ms_status phase_segments(const ms_trace *t, ms_phase ph, segment **out, uint64_t *n_seg, uint64_t *tokens,
                                ms_error *err) {
    segment *s = ms_alloc_array(t->n_requests ? t->n_requests : 1, sizeof *s, err);
    if (!s) return MS_E_NOMEM;
    uint64_t n = 0, tok = 0;
    for (uint64_t r = 0; r < t->n_requests; r++) {
        uint64_t a = t->tok_offset[r], b = t->tok_offset[r + 1], mid = a + t->n_prompt[r];
        if (ph == MS_PHASE_PREFILL) b = mid;
        else if (ph == MS_PHASE_DECODE) a = mid;
        if (b > a) {
            s[n].begin = a;
            s[n].end = b;
            n++;
            tok += b - a;
        }
    }
    *out = s;
    *n_seg = n;
    *tokens = tok;
    return MS_OK;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int cmp_u64_desc(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x < y) - (x > y);
}

static int cmp_pair(const void *a, const void *b) {
    const ms_pair *x = a, *y = b;
    if (x->count != y->count) return x->count < y->count ? 1 : -1;
    if (x->a != y->a) return x->a < y->a ? -1 : 1;
    return (x->b > y->b) - (x->b < y->b);
}

/* Summary numbers of one load vector. */
static void summarize(ms_layer_stats *ls, uint32_t E) {
    uint64_t total = 0, mx = 0, mn = UINT64_MAX;
    uint32_t never = 0, hottest = 0;
    for (uint32_t e = 0; e < E; e++) {
        uint64_t v = ls->expert_load[e];
        total += v;
        if (v > mx) {
            mx = v;
            hottest = e;
        }
        if (v < mn) mn = v;
        if (v == 0) never++;
    }
    double mean = (double)total / E, var = 0;
    for (uint32_t e = 0; e < E; e++) {
        double d = (double)ls->expert_load[e] - mean;
        var += d * d;
    }
    ls->mean = mean;
    ls->max_mean_ratio = mean > 0 ? (double)mx / mean : 0;
    ls->min_mean_ratio = mean > 0 ? (double)mn / mean : 0;
    ls->cv = mean > 0 ? sqrt(var / E) / mean : 0;
    ls->never_chosen = never;
    ls->hottest = hottest;
    uint64_t *sorted = ms_alloc_array(E, sizeof *sorted, NULL);
    if (sorted) {
        memcpy(sorted, ls->expert_load, E * sizeof *sorted);
        qsort(sorted, E, sizeof *sorted, cmp_u64_desc);
        uint32_t hot = (E + 9) / 10; /* the hottest 10%, rounded up */
        uint64_t hs = 0;
        for (uint32_t i = 0; i < hot; i++) hs += sorted[i];
        ls->hot10_share = total ? (double)hs / (double)total : 0;
        ms_free(sorted);
    }
}

static ms_status layer_stats(const ms_trace *t, const ms_stats_opts *o, const segment *seg, uint64_t n_seg,
                             uint64_t tokens, uint32_t l, ms_layer_stats *ls, ms_error *err) {
    uint32_t E = t->n_experts, K = t->top_k;
    ls->layer = l;
    ls->tokens = tokens;
    ls->expert_load = ms_calloc_array(E, sizeof *ls->expert_load, err);
    if (!ls->expert_load) return MS_E_NOMEM;
    uint64_t window = o->window;
    if (window) {
        ls->n_windows = (uint32_t)(tokens / window ? tokens / window : 1);
        ls->win_load = ms_calloc_array((size_t)ls->n_windows * E, sizeof *ls->win_load, err);
        ls->win_mean = ms_calloc_array(E, sizeof(double), err);
        ls->win_std = ms_calloc_array(E, sizeof(double), err);
        ls->win_p95 = ms_calloc_array(E, sizeof(double), err);
        if (!ls->win_load || !ls->win_mean || !ls->win_std || !ls->win_p95) return MS_E_NOMEM;
    }
    if (o->coact) {
        ls->coact = ms_calloc_array((size_t)E * E, sizeof *ls->coact, err);
        if (!ls->coact) return MS_E_NOMEM;
    }
    uint64_t *load = ls->expert_load, *coact = ls->coact;
    uint64_t seen = 0;
    for (uint64_t s = 0; s < n_seg; s++) {
        for (uint64_t tok = seg[s].begin; tok < seg[s].end; tok++, seen++) {
            const uint16_t *ids = ms_trace_row(t, l, tok);
            uint64_t *win = NULL;
            if (window) {
                uint64_t w = seen / window;
                win = w < ls->n_windows ? ls->win_load + w * E : NULL;
            }
            for (uint32_t j = 0; j < K; j++) {
                load[ids[j]]++;
                if (win) win[ids[j]]++;
            }
            if (coact)
                for (uint32_t a = 0; a < K; a++)
                    for (uint32_t b = a + 1; b < K; b++)
                        if (ids[a] != ids[b]) {
                            coact[(size_t)ids[a] * E + ids[b]]++;
                            coact[(size_t)ids[b] * E + ids[a]]++;
                        }
        }
    }
    summarize(ls, E);
    if (window) {
        uint32_t W = ls->n_windows;
        double *col = ms_alloc_array(W, sizeof *col, err);
        if (!col) return MS_E_NOMEM;
        for (uint32_t e = 0; e < E; e++) {
            double sum = 0, sq = 0;
            for (uint32_t w = 0; w < W; w++) {
                col[w] = (double)ls->win_load[(size_t)w * E + e];
                sum += col[w];
            }
            double mean = sum / W;
            for (uint32_t w = 0; w < W; w++) sq += (col[w] - mean) * (col[w] - mean);
            qsort(col, W, sizeof *col, cmp_double);
            uint32_t rank = (uint32_t)ceil(0.95 * W); /* nearest rank, 1-based */
            ls->win_mean[e] = mean;
            ls->win_std[e] = sqrt(sq / W);
            ls->win_p95[e] = col[rank ? rank - 1 : 0];
        }
        ms_free(col);
    }
    if (coact) {
        for (uint32_t e = 0; e < E; e++) coact[(size_t)e * E + e] = load[e];
        uint32_t want = o->top_pairs;
        if (want) {
            /* keep the `want` strongest pairs with a small insertion-sorted buffer */
            ms_pair *top = ms_calloc_array(want + 1, sizeof *top, err);
            if (!top) return MS_E_NOMEM;
            uint32_t n = 0;
            for (uint32_t a = 0; a < E; a++)
                for (uint32_t b = a + 1; b < E; b++) {
                    uint64_t c = coact[(size_t)a * E + b];
                    if (c == 0 || (n == want && c <= top[n - 1].count)) continue;
                    ms_pair p = {(uint16_t)a, (uint16_t)b, c};
                    uint32_t i = n < want ? n++ : n - 1;
                    while (i > 0 && cmp_pair(&p, &top[i - 1]) < 0) {
                        top[i] = top[i - 1];
                        i--;
                    }
                    top[i] = p;
                }
            ls->top_pairs = top;
            ls->n_top_pairs = n;
        }
    }
    return MS_OK;
}

static void layer_free(ms_layer_stats *ls) {
    ms_free(ls->expert_load);
    ms_free(ls->win_mean);
    ms_free(ls->win_std);
    ms_free(ls->win_p95);
    ms_free(ls->win_load);
    ms_free(ls->coact);
    ms_free(ls->top_pairs);
}

void ms_stats_free(ms_stats *s) {
    if (!s) return;
    if (s->layers)
        for (uint32_t l = 0; l < s->n_layers; l++) layer_free(&s->layers[l]);
    ms_free(s->layers);
    ms_free(s);
}

ms_status ms_stats_compute(const ms_trace *t, const ms_stats_opts *opts, ms_stats **out, ms_error *err) {
    *out = NULL;
    ms_stats_opts defaults;
    ms_stats_opts_default(&defaults);
    const ms_stats_opts *o = opts ? opts : &defaults;
    segment *seg;
    uint64_t n_seg, tokens;
    ms_status st = phase_segments(t, o->phase, &seg, &n_seg, &tokens, err);
    if (st != MS_OK) return st;
    if (tokens == 0) {
        ms_free(seg);
        return ms_error_set(err, MS_E_INPUT, "%s: the trace has no %s rows", t->label, ms_phase_name(o->phase));
    }
    ms_stats *s = ms_calloc_array(1, sizeof *s, err);
    if (s) s->layers = ms_calloc_array(t->n_layers, sizeof *s->layers, err);
    if (!s || !s->layers) {
        ms_free(seg);
        ms_stats_free(s);
        return MS_E_NOMEM;
    }
    s->n_layers = t->n_layers;
    s->n_experts = t->n_experts;
    s->top_k = t->top_k;
    s->n_requests = t->n_requests;
    s->tokens = tokens;
    s->phase = o->phase;
    s->window = o->window;
    s->digest = t->digest;
    int failed = 0;
    ms_error first = {0};
    int threads = o->threads > 0 ? o->threads : ms_thread_count();
    (void)threads;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (long l = 0; l < (long)t->n_layers; l++) {
        ms_error e = {0};
        if (layer_stats(t, o, seg, n_seg, tokens, (uint32_t)l, &s->layers[l], &e) != MS_OK) {
#pragma omp critical(ms_stats_err)
            {
                if (!failed) first = e;
                failed = 1;
            }
        }
    }
    ms_free(seg);
    if (failed) {
        ms_stats_free(s);
        if (err) *err = first;
        return first.status;
    }
    *out = s;
    return MS_OK;
}

ms_status ms_stats_to_loads(const ms_stats *s, ms_loads **out, ms_error *err) {
    ms_status st = ms_loads_new(s->n_layers, s->n_experts, out, err);
    if (st != MS_OK) return st;
    for (uint32_t l = 0; l < s->n_layers; l++)
        for (uint32_t e = 0; e < s->n_experts; e++)
            (*out)->w[(size_t)l * s->n_experts + e] = (double)s->layers[l].expert_load[e];
    return MS_OK;
}

/* ------------------------------------------------------------ output */

static json_t *u64_array(const uint64_t *v, uint32_t n) {
    json_t *a = json_array();
    for (uint32_t i = 0; i < n; i++) json_array_append_new(a, json_integer((json_int_t)v[i]));
    return a;
}

static json_t *real_array(const double *v, uint32_t n) {
    json_t *a = json_array();
    for (uint32_t i = 0; i < n; i++) json_array_append_new(a, json_real(v[i]));
    return a;
}

ms_status ms_stats_write_json(const ms_stats *s, FILE *fp, ms_error *err) {
    char digest[17];
    snprintf(digest, sizeof digest, "%016llx", (unsigned long long)s->digest);
    json_t *root = json_object();
    json_object_set_new(root, "layers", json_integer(s->n_layers));
    json_object_set_new(root, "experts", json_integer(s->n_experts));
    json_object_set_new(root, "top_k", json_integer(s->top_k));
    json_object_set_new(root, "tokens", json_integer((json_int_t)s->tokens));
    json_object_set_new(root, "requests", json_integer((json_int_t)s->n_requests));
    json_object_set_new(root, "phase", json_string(ms_phase_name(s->phase)));
    json_object_set_new(root, "window", json_integer(s->window));
    json_object_set_new(root, "trace_digest", json_string(digest));
    json_t *per = json_array();
    for (uint32_t l = 0; l < s->n_layers; l++) {
        const ms_layer_stats *ls = &s->layers[l];
        json_t *o = json_object();
        json_object_set_new(o, "layer", json_integer(ls->layer));
        json_object_set_new(o, "tokens", json_integer((json_int_t)ls->tokens));
        json_object_set_new(o, "expert_load", u64_array(ls->expert_load, s->n_experts));
        json_object_set_new(o, "max_mean_ratio", json_real(ls->max_mean_ratio));
        json_object_set_new(o, "min_mean_ratio", json_real(ls->min_mean_ratio));
        json_object_set_new(o, "cv", json_real(ls->cv));
        json_object_set_new(o, "hot10_share", json_real(ls->hot10_share));
        json_object_set_new(o, "never_chosen", json_integer(ls->never_chosen));
        json_object_set_new(o, "hottest_expert", json_integer(ls->hottest));
        if (ls->win_mean) {
            json_t *w = json_object();
            json_object_set_new(w, "count", json_integer(ls->n_windows));
            json_object_set_new(w, "mean", real_array(ls->win_mean, s->n_experts));
            json_object_set_new(w, "std", real_array(ls->win_std, s->n_experts));
            json_object_set_new(w, "p95", real_array(ls->win_p95, s->n_experts));
            json_object_set_new(o, "windows", w);
        }
        if (ls->coact) {
            json_t *pairs = json_array();
            for (uint32_t i = 0; i < ls->n_top_pairs; i++) {
                json_t *p = json_array();
                json_array_append_new(p, json_integer(ls->top_pairs[i].a));
                json_array_append_new(p, json_integer(ls->top_pairs[i].b));
                json_array_append_new(p, json_integer((json_int_t)ls->top_pairs[i].count));
                json_array_append_new(pairs, p);
            }
            json_object_set_new(o, "top_pairs", pairs);
        }
        json_array_append_new(per, o);
    }
    json_object_set_new(root, "per_layer", per);
    int rc = json_dumpf(root, fp, JSON_INDENT(1));
    json_decref(root);
    fputc('\n', fp);
    if (rc != 0 || ferror(fp)) return ms_error_set(err, MS_E_IO, "writing statistics JSON failed");
    return MS_OK;
}

ms_status ms_stats_write_csv(const ms_stats *s, FILE *fp, ms_error *err) {
    fprintf(fp, "layer,expert,load,share,win_mean,win_std,win_p95\n");
    for (uint32_t l = 0; l < s->n_layers; l++) {
        const ms_layer_stats *ls = &s->layers[l];
        double total = ls->mean * s->n_experts;
        for (uint32_t e = 0; e < s->n_experts; e++) {
            fprintf(fp, "%u,%u,%llu,%.6g", ls->layer, e, (unsigned long long)ls->expert_load[e],
                    total > 0 ? (double)ls->expert_load[e] / total : 0.0);
            if (ls->win_mean) fprintf(fp, ",%.6g,%.6g,%.6g\n", ls->win_mean[e], ls->win_std[e], ls->win_p95[e]);
            else fprintf(fp, ",,,\n");
        }
    }
    if (ferror(fp)) return ms_error_set(err, MS_E_IO, "writing statistics CSV failed");
    return MS_OK;
}

ms_status ms_stats_write_table(const ms_stats *s, FILE *fp, ms_error *err) {
    fprintf(fp, "%llu requests, %llu %s rows, %u layers x %u experts, top-%u, windows of %u tokens\n\n",
            (unsigned long long)s->n_requests, (unsigned long long)s->tokens, ms_phase_name(s->phase), s->n_layers,
            s->n_experts, s->top_k, s->window);
    fprintf(fp, "%5s %9s %8s %8s %6s %7s %6s %7s %9s  %s\n", "layer", "tokens", "max/mean", "min/mean", "cv",
            "hot10%", "never", "hottest", "win_cv", "strongest pair");
    double sum_ratio = 0;
    for (uint32_t l = 0; l < s->n_layers; l++) {
        const ms_layer_stats *ls = &s->layers[l];
        /* mean over experts of the window std / window mean: how bursty a layer is */
        double wcv = 0;
        uint32_t nz = 0;
        if (ls->win_mean)
            for (uint32_t e = 0; e < s->n_experts; e++)
                if (ls->win_mean[e] > 0) {
                    wcv += ls->win_std[e] / ls->win_mean[e];
                    nz++;
                }
        char pair[64] = "-";
        if (ls->n_top_pairs)
            snprintf(pair, sizeof pair, "%u+%u (%llu)", ls->top_pairs[0].a, ls->top_pairs[0].b,
                     (unsigned long long)ls->top_pairs[0].count);
        fprintf(fp, "%5u %9llu %8.3f %8.3f %6.3f %6.1f%% %6u %7u %9.3f  %s\n", ls->layer,
                (unsigned long long)ls->tokens, ls->max_mean_ratio, ls->min_mean_ratio, ls->cv,
                100 * ls->hot10_share, ls->never_chosen, ls->hottest, nz ? wcv / nz : 0, pair);
        sum_ratio += ls->max_mean_ratio;
    }
    fprintf(fp, "\nmean max/mean over layers: %.3f\n", sum_ratio / s->n_layers);
    if (ferror(fp)) return ms_error_set(err, MS_E_IO, "writing statistics table failed");
    return MS_OK;
}
