/* report_input.c - reads result files for the report and detects their kind
 * from their keys. Tolerant: keys a file lacks are left NAN/empty and the
 * report leaves out what needs them. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report/report_internal.h"
#include "report/sbuf.h"

/* ------------------------------------------------------------ helpers */

static char *dupstr(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d) memcpy(d, s, n + 1);
    return d;
}

static bool jnum(const json_t *o, const char *key, double *out) {
    json_t *v = json_object_get(o, key);
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return true;
    }
    return false;
}

static double jnum_or(const json_t *o, const char *key) {
    double v;
    return jnum(o, key, &v) ? v : NAN;
}

/* First of keys found as a number in o, else NAN. */
static double jnum_any(const json_t *o, const char *const *keys) {
    double v;
    for (; *keys; keys++)
        if (jnum(o, *keys, &v)) return v;
    return NAN;
}

/* A number, or an object's "mean"/"value" (e.g. imbalance: {mean: ...}). */
static double jmean(const json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    if (json_is_number(v)) return json_number_value(v);
    if (json_is_object(v)) {
        static const char *const k[] = {"mean", "value", NULL};
        return jnum_any(v, k);
    }
    return NAN;
}

/* Searches o and the objects inside it (depth-first in file order, to depth
 * 2) for the first key of `keys` holding a number. */
static double jfind(const json_t *o, const char *const *keys, int depth) {
    if (!json_is_object(o)) return NAN;
    double v = jnum_any(o, keys);
    if (isfinite(v) || depth <= 0) return v;
    const char *k;
    json_t *c;
    json_object_foreach((json_t *)o, k, c) {
        if (!json_is_object(c)) continue;
        v = jfind(c, keys, depth - 1);
        if (isfinite(v)) return v;
    }
    return NAN;
}

/* o[key] when o is an object and it is a string, else dflt. */
static const char *jstr_in(const json_t *o, const char *key, const char *dflt) {
    json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : dflt;
}

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static void digest_of(const json_t *o, char out[24]) {
    out[0] = '\0';
    static const char *const keys[] = {"trace_digest", "digest", NULL};
    for (const char *const *k = keys; *k; k++) {
        json_t *v = json_object_get(o, *k);
        if (json_is_string(v)) {
            snprintf(out, 24, "%s", json_string_value(v));
            return;
        }
    }
    json_t *m = json_object_get(o, "metadata");
    if (json_is_object(m)) digest_of(m, out);
    if (!out[0]) {
        json_t *t = json_object_get(o, "trace");
        json_t *d = json_is_object(t) ? json_object_get(t, "digest") : NULL;
        if (json_is_string(d)) snprintf(out, 24, "%s", json_string_value(d));
    }
    if (!out[0]) {
        json_t *i = json_object_get(o, "inputs");
        if (json_is_object(i)) {
            json_t *v = json_object_get(i, "trace_digest");
            if (json_is_string(v)) snprintf(out, 24, "%s", json_string_value(v));
        }
    }
}

/* Appends "key=value; " for the scalar members of o (strings, numbers,
 * booleans), prefixing nested objects' keys with "parent.". */
static void scalars(ms_sbuf *b, const json_t *o, const char *prefix, int depth) {
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v) {
        char key[160];
        snprintf(key, sizeof key, "%s%s%s", prefix ? prefix : "", prefix ? "." : "", k);
        if (json_is_string(v)) {
            ms_sbuf_printf(b, "%s%s=%s", b->len ? "; " : "", key, json_string_value(v));
        } else if (json_is_integer(v)) {
            ms_sbuf_printf(b, "%s%s=%lld", b->len ? "; " : "", key, (long long)json_integer_value(v));
        } else if (json_is_real(v)) {
            ms_sbuf_printf(b, "%s%s=%.6g", b->len ? "; " : "", key, json_real_value(v));
        } else if (json_is_boolean(v)) {
            ms_sbuf_printf(b, "%s%s=%s", b->len ? "; " : "", key, json_is_true(v) ? "true" : "false");
        } else if (json_is_object(v) && depth > 0) {
            scalars(b, v, key, depth - 1);
        }
    }
}

static double *num_array(const json_t *a, size_t n) {
    double *v = ms_alloc_array(n ? n : 1, sizeof *v, NULL);
    if (!v) return NULL;
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_array_get(a, i);
        v[i] = json_is_number(x) ? json_number_value(x) : NAN;
    }
    return v;
}

static ms_status nomem(ms_error *err) { return ms_error_set(err, MS_E_NOMEM, "out of memory"); }

/* ------------------------------------------------------------ stats */

static void stats_free(rp_stats *s) {
    if (!s) return;
    free(s->load);
    free(s->ltokens);
    free(s->ratio);
    free(s->cv);
    free(s->hot10);
    free(s->pair_off);
    free(s->pair_a);
    free(s->pair_b);
    free(s->pair_n);
    free(s->coact);
    free(s);
}

static rp_stats *stats_alloc(uint32_t L, uint32_t E, size_t npairs) {
    rp_stats *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->L = L;
    s->E = E;
    s->load = ms_calloc_array((size_t)L * E, sizeof *s->load, NULL);
    s->ltokens = ms_calloc_array(L, sizeof(double), NULL);
    s->ratio = ms_calloc_array(L, sizeof(double), NULL);
    s->cv = ms_calloc_array(L, sizeof(double), NULL);
    s->hot10 = ms_calloc_array(L, sizeof(double), NULL);
    s->pair_off = ms_calloc_array((size_t)L + 1, sizeof(size_t), NULL);
    s->pair_a = ms_calloc_array(npairs ? npairs : 1, sizeof(uint32_t), NULL);
    s->pair_b = ms_calloc_array(npairs ? npairs : 1, sizeof(uint32_t), NULL);
    s->pair_n = ms_calloc_array(npairs ? npairs : 1, sizeof(double), NULL);
    if (!s->load || !s->ltokens || !s->ratio || !s->cv || !s->hot10 || !s->pair_off || !s->pair_a || !s->pair_b ||
        !s->pair_n) {
        stats_free(s);
        return NULL;
    }
    return s;
}

static ms_status read_stats(const json_t *root, const char *path, rp_input *in, ms_error *err) {
    json_t *per = json_object_get(root, "per_layer");
    size_t L = json_array_size(per);
    if (L == 0 || L > 100000) return ms_error_set(err, MS_E_INPUT, "%s: per_layer is empty", path);
    json_t *l0 = json_array_get(per, 0);
    size_t E = json_array_size(json_object_get(l0, "expert_load"));
    if (E == 0 || E > 65536) return ms_error_set(err, MS_E_INPUT, "%s: per_layer[0].expert_load is empty", path);
    size_t npairs = 0;
    for (size_t l = 0; l < L; l++) npairs += json_array_size(json_object_get(json_array_get(per, l), "top_pairs"));
    rp_stats *s = stats_alloc((uint32_t)L, (uint32_t)E, npairs);
    if (!s) return nomem(err);
    double v;
    s->K = jnum(root, "top_k", &v) ? (uint32_t)v : 0;
    s->tokens = jnum(root, "tokens", &v) ? (uint64_t)v : 0;
    s->requests = jnum(root, "requests", &v) ? (uint64_t)v : 0;
    json_t *ph = json_object_get(root, "phase");
    snprintf(s->phase, sizeof s->phase, "%s", json_is_string(ph) ? json_string_value(ph) : "");
    digest_of(root, s->digest);
    size_t np = 0;
    for (size_t l = 0; l < L; l++) {
        json_t *o = json_array_get(per, l);
        json_t *el = json_object_get(o, "expert_load");
        if (!json_is_object(o) || json_array_size(el) != E) {
            stats_free(s);
            return ms_error_set(err, MS_E_INPUT, "%s: per_layer[%zu].expert_load has %zu entries, wanted %zu", path, l,
                                json_array_size(el), E);
        }
        double total = 0, mx = 0;
        for (size_t e = 0; e < E; e++) {
            json_t *x = json_array_get(el, e);
            double y = json_is_number(x) ? json_number_value(x) : NAN;
            if (!isfinite(y) || y < 0) {
                stats_free(s);
                return ms_error_set(err, MS_E_INPUT, "%s: per_layer[%zu].expert_load[%zu] is not a load", path, l, e);
            }
            s->load[l * E + e] = y;
            total += y;
            mx = fmax(mx, y);
        }
        s->ltokens[l] = jnum(o, "tokens", &v) ? v : (s->K ? total / s->K : NAN);
        s->ratio[l] = jnum(o, "max_mean_ratio", &v) ? v : (total > 0 ? mx / (total / (double)E) : NAN);
        s->cv[l] = jnum_or(o, "cv");
        s->hot10[l] = jnum_or(o, "hot10_share");
        s->pair_off[l] = np;
        json_t *pairs = json_object_get(o, "top_pairs");
        for (size_t i = 0; i < json_array_size(pairs); i++) {
            json_t *p = json_array_get(pairs, i);
            json_t *a = json_array_get(p, 0), *b = json_array_get(p, 1), *n = json_array_get(p, 2);
            if (!json_is_integer(a) || !json_is_integer(b) || !json_is_number(n)) continue;
            json_int_t ai = json_integer_value(a), bi = json_integer_value(b);
            if (ai < 0 || bi < 0 || (size_t)ai >= E || (size_t)bi >= E) continue;
            s->pair_a[np] = (uint32_t)ai;
            s->pair_b[np] = (uint32_t)bi;
            s->pair_n[np] = json_number_value(n);
            np++;
        }
    }
    s->pair_off[L] = np;
    in->stats = s;
    ms_sbuf b;
    ms_sbuf_init(&b);
    ms_sbuf_printf(&b, "%zu layers x %zu experts, top-%u; %llu tokens (%s), %llu requests", L, E, s->K,
                   (unsigned long long)s->tokens, s->phase[0] ? s->phase : "?", (unsigned long long)s->requests);
    if (jnum(root, "window", &v)) ms_sbuf_printf(&b, "; window %.0f", v);
    in->info = b.s;
    return MS_OK;
}

ms_status rp_stats_from(const ms_stats *st, rp_stats **out, ms_error *err) {
    size_t npairs = 0;
    for (uint32_t l = 0; l < st->n_layers; l++) npairs += st->layers[l].n_top_pairs;
    rp_stats *s = stats_alloc(st->n_layers, st->n_experts, npairs);
    if (!s) return nomem(err);
    uint32_t E = st->n_experts;
    s->K = st->top_k;
    s->tokens = st->tokens;
    s->requests = st->n_requests;
    snprintf(s->phase, sizeof s->phase, "%s", ms_phase_name(st->phase));
    snprintf(s->digest, sizeof s->digest, "%016llx", (unsigned long long)st->digest);
    bool coact = st->n_layers > 0 && st->layers[0].coact;
    size_t cells;
    if (coact && !ms_mul_overflow((size_t)E * E, st->n_layers, &cells)) {
        s->coact = ms_alloc_array(cells, sizeof(double), NULL);
        if (!s->coact) {
            stats_free(s);
            return nomem(err);
        }
    }
    size_t np = 0;
    for (uint32_t l = 0; l < st->n_layers; l++) {
        const ms_layer_stats *ls = &st->layers[l];
        for (uint32_t e = 0; e < E; e++) s->load[(size_t)l * E + e] = (double)ls->expert_load[e];
        s->ltokens[l] = (double)ls->tokens;
        s->ratio[l] = ls->max_mean_ratio;
        s->cv[l] = ls->cv;
        s->hot10[l] = ls->hot10_share;
        s->pair_off[l] = np;
        for (uint32_t i = 0; i < ls->n_top_pairs; i++, np++) {
            s->pair_a[np] = ls->top_pairs[i].a;
            s->pair_b[np] = ls->top_pairs[i].b;
            s->pair_n[np] = (double)ls->top_pairs[i].count;
        }
        if (s->coact)
            for (size_t i = 0; i < (size_t)E * E; i++)
                s->coact[(size_t)l * E * E + i] = ls->coact ? (double)ls->coact[i] : NAN;
    }
    s->pair_off[st->n_layers] = np;
    *out = s;
    return MS_OK;
}

/* ------------------------------------------------------------- runs */

static void run_clear(rp_run *r) {
    free(r->label);
    free(r->details);
    free(r->r_imb);
    free(r->r_lt);
    free(r->r_intra);
    free(r->r_inter);
    free(r->r_layer);
    free(r->r_batch);
    free(r->r_dev);
    free(r->pl_layer);
    free(r->pl_imb);
    free(r->pl_lt);
    free(r->pfile);
    free(r->route);
    free(r->hw);
    free(r->batch);
    memset(r, 0, sizeof *r);
}

static bool is_summary(const json_t *o) {
    return json_is_object(o) && (json_is_object(json_object_get(o, "imbalance")) ||
                                 json_is_object(json_object_get(o, "layer_us")));
}

static bool has_run(const json_t *o) {
    return json_is_object(o) && (is_summary(json_object_get(o, "summary")) || is_summary(o));
}

static void dist5(const json_t *d, double out[5]) {
    static const char *const k[5] = {"mean", "p50", "p95", "p99", "max"};
    for (int i = 0; i < 5; i++) out[i] = json_is_object(d) ? jnum_or(d, k[i]) : NAN;
    if (json_is_number(d)) out[0] = json_number_value(d);
}

static void grid_of(const json_t *o, uint32_t *rows, uint32_t *cols) {
    double r, c;
    const json_t *srcs[5] = {o, json_object_get(o, "cluster"), json_object_get(o, "placement"),
                             json_object_get(o, "inputs"), json_object_get(o, "options")};
    for (int i = 0; i < 5; i++) {
        if (!json_is_object(srcs[i])) continue;
        if (jnum(srcs[i], "rows", &r) && jnum(srcs[i], "cols", &c) && r >= 1 && c >= 1 && r * c <= 1e6) {
            *rows = (uint32_t)r;
            *cols = (uint32_t)c;
            return;
        }
        json_t *cl = json_object_get(srcs[i], "cluster");
        if (json_is_object(cl) && jnum(cl, "rows", &r) && jnum(cl, "cols", &c) && r >= 1 && c >= 1 && r * c <= 1e6) {
            *rows = (uint32_t)r;
            *cols = (uint32_t)c;
            return;
        }
    }
}

static ms_status parse_run(const json_t *o, const char *fallback, const json_t *parent, rp_run *r, ms_error *err) {
    memset(r, 0, sizeof *r);
    const json_t *s = is_summary(json_object_get(o, "summary")) ? json_object_get(o, "summary") : o;
    dist5(json_object_get(s, "imbalance"), r->imb);
    dist5(json_object_get(s, "layer_us"), r->lt);
    r->tps = jnum_or(s, "tokens_per_second");
    r->intra = jnum_or(s, "intra_row_bytes");
    r->inter = jnum_or(s, "inter_row_bytes");
    r->dropped = jnum_or(s, "dropped_tokens");
    r->rerouted = jnum_or(s, "rerouted_tokens");
    r->dispatch = jnum_or(s, "dispatch_us");
    r->compute = jnum_or(s, "compute_us");
    r->combine = jnum_or(s, "combine_us");
    static const char *const ekeys[] = {"energy_per_token_j", "joules_per_token", "energy_per_token", NULL};
    r->energy_tok = jfind(o, ekeys, 2);
    digest_of(o, r->digest);
    if (!r->digest[0] && parent) digest_of(parent, r->digest);
    grid_of(o, &r->rows, &r->cols);
    if (!r->rows && parent) grid_of(parent, &r->rows, &r->cols);

    /* label: label/name, else algorithm (or placement file) / route, else fallback */
    ms_sbuf b;
    ms_sbuf_init(&b);
    const char *lab = NULL;
    static const char *const lkeys[] = {"label", "name", "run", NULL};
    for (const char *const *k = lkeys; *k && !lab; k++)
        if (json_is_string(json_object_get(o, *k))) lab = json_string_value(json_object_get(o, *k));
    if (lab) {
        ms_sbuf_puts(&b, lab);
    } else {
        const json_t *pl = json_object_get(o, "placement");
        const char *alg = jstr_in(o, "algorithm", NULL);
        if (!alg) alg = jstr_in(pl, "algorithm", NULL);
        if (!alg && json_is_string(pl)) alg = base_name(json_string_value(pl));
        if (!alg) alg = jstr_in(pl, "file", NULL);
        const char *route = jstr_in(o, "route", NULL);
        if (!route) route = jstr_in(json_object_get(o, "options"), "route", NULL);
        if (!route && parent) route = jstr_in(json_object_get(parent, "options"), "route", NULL);
        if (alg) ms_sbuf_puts(&b, alg);
        if (route) ms_sbuf_printf(&b, "%s%s", b.len ? " / " : "", route);
        if (!b.len) ms_sbuf_puts(&b, fallback);
    }
    r->label = b.s ? b.s : dupstr(fallback);
    {
        /* what produced it: simulate keeps the file in placement.file and the
         * route in options; compare has both on the run, options on the parent */
        const json_t *pl = json_object_get(o, "placement");
        const json_t *op = json_object_get(o, "options"), *pop = parent ? json_object_get(parent, "options") : NULL;
        const char *pf = json_is_string(pl) ? json_string_value(pl) : jstr_in(pl, "file", NULL);
        const char *route = jstr_in(o, "route", NULL);
        if (!route) route = jstr_in(op, "route", NULL);
        if (!route) route = jstr_in(pop, "route", NULL);
        const char *hw = jstr_in(op, "hw", NULL), *batch = jstr_in(op, "batch", NULL);
        if (!hw) hw = jstr_in(pop, "hw", NULL);
        if (!batch) batch = jstr_in(pop, "batch", NULL);
        if ((pf && !(r->pfile = dupstr(pf))) || (route && !(r->route = dupstr(route))) ||
            (hw && !(r->hw = dupstr(hw))) || (batch && !(r->batch = dupstr(batch))))
            return nomem(err);
    }
    ms_sbuf_init(&b);
    {
        const json_t *pl = json_object_get(o, "placement");
        if (json_is_string(pl)) ms_sbuf_printf(&b, "placement=%s", json_string_value(pl));
        else if (json_is_object(pl)) scalars(&b, pl, "placement", 0);
    }
    const char *const dk[] = {"inputs", "options", "config", "params", NULL};
    size_t before = b.len;
    for (const char *const *k = dk; *k; k++) {
        json_t *v = json_object_get(o, *k);
        if (json_is_object(v)) scalars(&b, v, NULL, 1);
    }
    if (b.len == before && parent) {
        for (const char *const *k = dk; *k; k++) {
            json_t *v = json_object_get(parent, *k);
            if (json_is_object(v)) scalars(&b, v, NULL, 1);
        }
        const char *route = jstr_in(o, "route", NULL);
        if (route) ms_sbuf_printf(&b, "%sroute=%s", b.len ? "; " : "", route);
    }
    if (!b.len) { /* top-level scalar strings only */
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)o, k, v) {
            if (json_is_string(v) && strcmp(k, "label") != 0)
                ms_sbuf_printf(&b, "%s%s=%s", b.len ? "; " : "", k, json_string_value(v));
        }
    }
    r->details = b.s;
    if (b.failed || !r->label) return nomem(err);

    json_t *recs = json_object_get(o, "records");
    size_t n = json_array_size(recs);
    if (n) {
        r->r_imb = ms_alloc_array(n, sizeof(double), NULL);
        r->r_lt = ms_alloc_array(n, sizeof(double), NULL);
        r->r_intra = ms_alloc_array(n, sizeof(double), NULL);
        r->r_inter = ms_alloc_array(n, sizeof(double), NULL);
        r->r_layer = ms_alloc_array(n, sizeof(int64_t), NULL);
        r->r_batch = ms_alloc_array(n, sizeof(int64_t), NULL);
        if (!r->r_imb || !r->r_lt || !r->r_intra || !r->r_inter || !r->r_layer || !r->r_batch) return nomem(err);
        size_t nd = json_array_size(json_object_get(json_array_get(recs, 0), "device_load"));
        if (nd && nd <= 1000000) {
            size_t cells;
            if (!ms_mul_overflow(n, nd, &cells)) r->r_dev = ms_alloc_array(cells, sizeof(double), NULL);
            if (!r->r_dev) return nomem(err);
            r->n_dev = (uint32_t)nd;
        }
        for (size_t i = 0; i < n; i++) {
            json_t *x = json_array_get(recs, i);
            r->r_imb[i] = jmean(x, "imbalance");
            r->r_lt[i] = jmean(x, "layer_us");
            r->r_intra[i] = jnum_or(x, "intra_row_bytes");
            r->r_inter[i] = jnum_or(x, "inter_row_bytes");
            double v;
            r->r_layer[i] = jnum(x, "layer", &v) ? (int64_t)v : 0;
            r->r_batch[i] = jnum(x, "batch", &v) ? (int64_t)v : (int64_t)i;
            if (r->r_dev) {
                json_t *d = json_object_get(x, "device_load");
                for (size_t k = 0; k < nd; k++) {
                    json_t *y = json_array_get(d, k);
                    r->r_dev[i * nd + k] = json_is_number(y) ? json_number_value(y) : NAN;
                }
            }
        }
        r->n_rec = n;
    }
    json_t *pl = json_object_get(o, "per_layer");
    size_t m = json_array_size(pl);
    if (m) {
        r->pl_layer = ms_alloc_array(m, sizeof(double), NULL);
        r->pl_imb = ms_alloc_array(m, sizeof(double), NULL);
        r->pl_lt = ms_alloc_array(m, sizeof(double), NULL);
        if (!r->pl_layer || !r->pl_imb || !r->pl_lt) return nomem(err);
        for (size_t i = 0; i < m; i++) {
            json_t *x = json_array_get(pl, i);
            double v;
            r->pl_layer[i] = jnum(x, "layer", &v) ? v : (double)i;
            r->pl_imb[i] = jmean(x, "imbalance");
            r->pl_lt[i] = jmean(x, "layer_us");
        }
        r->n_pl = m;
    }
    return MS_OK;
}

static const json_t *run_list(const json_t *root) {
    if (json_is_array(root)) return root;
    static const char *const keys[] = {"runs", "results", "comparisons", "entries", "rows", "placements", NULL};
    for (const char *const *k = keys; *k; k++) {
        json_t *a = json_object_get(root, *k);
        if (json_array_size(a) && has_run(json_array_get(a, 0))) return a;
    }
    return NULL;
}

static ms_status read_runs(const json_t *root, const json_t *list, const char *path, rp_input *in, ms_error *err) {
    size_t n = list ? json_array_size(list) : 1;
    in->runs = calloc(n, sizeof *in->runs);
    if (!in->runs) return nomem(err);
    for (size_t i = 0; i < n; i++) {
        const json_t *o = list ? json_array_get(list, i) : root;
        if (!has_run(o)) continue;
        char fb[300];
        if (list) snprintf(fb, sizeof fb, "%s #%zu", base_name(path), i + 1);
        else snprintf(fb, sizeof fb, "%s", base_name(path));
        ms_status st = parse_run(o, fb, list ? root : NULL, &in->runs[in->n_runs], err);
        in->n_runs++;
        if (st != MS_OK) return st;
    }
    if (!in->n_runs) return ms_error_set(err, MS_E_INPUT, "%s: no run with a summary in it", path);
    return MS_OK;
}

/* ------------------------------------------------------------ power */

static int part_of(const char *k) {
    if (strstr(k, "share") || strstr(k, "frac") || strstr(k, "pct")) return -1;
    if (strncmp(k, "comp", 4) == 0 || strncmp(k, "flop", 4) == 0) return 0;
    if (strncmp(k, "mem", 3) == 0 || strncmp(k, "hbm", 3) == 0 || strncmp(k, "dram", 4) == 0) return 1;
    if (strncmp(k, "comm", 4) == 0 || strncmp(k, "net", 3) == 0 || strncmp(k, "link", 4) == 0 ||
        strncmp(k, "nvlink", 6) == 0)
        return 2;
    if (strncmp(k, "idle", 4) == 0 || strncmp(k, "static", 6) == 0 || strncmp(k, "wait", 4) == 0) return 3;
    return -1;
}

static bool breakdown_from(const json_t *o, double parts[4]) {
    int found = 0;
    double p[4] = {NAN, NAN, NAN, NAN};
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v) {
        int i = part_of(k);
        if (i < 0) continue;
        double x = NAN;
        if (json_is_number(v)) x = json_number_value(v);
        else if (json_is_object(v)) {
            static const char *const jk[] = {"j", "joules", "energy_j", "value", NULL};
            x = jnum_any(v, jk);
        }
        if (isfinite(x)) {
            p[i] = isfinite(p[i]) ? p[i] + x : x;
            found++;
        }
    }
    if (found < 2) return false;
    memcpy(parts, p, sizeof p);
    return true;
}

static const json_t *find_key(const json_t *o, const char *const *keys, int depth) {
    if (!json_is_object(o)) return NULL;
    for (const char *const *k = keys; *k; k++) {
        json_t *v = json_object_get(o, *k);
        if (v) return v;
    }
    if (depth <= 0) return NULL;
    const char *k;
    json_t *c;
    json_object_foreach((json_t *)o, k, c) {
        const json_t *f = find_key(c, keys, depth - 1);
        if (f) return f;
    }
    return NULL;
}

static bool looks_like_power(const json_t *root) {
    const json_t *runs = json_object_get(root, "runs");
    const json_t *r0 = json_array_get(runs, 0);
    if (json_is_object(r0) && !has_run(r0) &&
        (json_object_get(r0, "energy_per_token_j") || json_object_get(r0, "parts")))
        return true;
    static const char *const keys[] = {"timeline", "power_timeline", "cluster_timeline", "breakdown",
                                       "energy_breakdown", "energy_per_token_j", "peak_power_w",
                                       "average_power_w", "parts", NULL};
    return find_key(root, keys, 1) != NULL;
}

static double time_ms(const json_t *o) {
    static const struct {
        const char *k;
        double scale;
    } tk[] = {{"t_ms", 1}, {"time_ms", 1}, {"start_ms", 1}, {"t_us", 1e-3}, {"time_us", 1e-3},
              {"start_us", 1e-3}, {"t_s", 1e3}, {"time_s", 1e3}, {"start_s", 1e3}, {"t", 1}};
    double v;
    for (size_t i = 0; i < sizeof tk / sizeof tk[0]; i++)
        if (jnum(o, tk[i].k, &v)) return v * tk[i].scale;
    return NAN;
}

static double power_w(const json_t *o) {
    static const struct {
        const char *k;
        double scale;
    } pk[] = {{"cluster_w", 1}, {"power_w", 1}, {"cluster_power_w", 1}, {"watts", 1}, {"w", 1},
              {"power_kw", 1e3}, {"cluster_kw", 1e3}, {"power_mw", 1e6}};
    double v;
    for (size_t i = 0; i < sizeof pk / sizeof pk[0]; i++)
        if (jnum(o, pk[i].k, &v)) return v * pk[i].scale;
    return NAN;
}

static char *dupn(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* moesim power's label of a simulated run: "FILE (ALGO, route R, MODE
 * batches, hw HW, model M)". Fills what it finds; false on out of memory. */
static bool power_label_parse(const char *label, rp_power *p) {
    size_t n = strlen(label);
    if (n < 4 || label[n - 1] != ')') return true;
    const char *open = NULL;
    for (const char *q = strstr(label, " ("); q; q = strstr(q + 1, " ("))
        if (strstr(q, ", route ")) open = q; /* the last " (" before the fields */
    if (!open || open == label) return true;
    if (!p->pfile && !(p->pfile = dupn(label, (size_t)(open - label)))) return false;
    /* fields separated by ", " inside the parentheses */
    const char *f = open + 2, *end = label + n - 1;
    while (f < end) {
        const char *sep = strstr(f, ", ");
        if (!sep || sep > end) sep = end;
        size_t len = (size_t)(sep - f);
        char **dst = NULL;
        const char *val = NULL;
        size_t vlen = 0;
        if (len > 6 && strncmp(f, "route ", 6) == 0) dst = &p->route, val = f + 6, vlen = len - 6;
        else if (len > 3 && strncmp(f, "hw ", 3) == 0) dst = &p->hw, val = f + 3, vlen = len - 3;
        else if (len > 8 && strncmp(sep - 8, " batches", 8) == 0) dst = &p->batch, val = f, vlen = len - 8;
        if (dst && !*dst && !(*dst = dupn(val, vlen))) return false;
        f = sep + 2;
    }
    return true;
}

/* One power result (root: the object holding its figures). */
static ms_status read_power_one(const json_t *root, const char *label, rp_power *p, ms_error *err) {
    p->label = dupstr(label);
    {
        /* the run it prices: explicit keys, else moesim power's label */
        const json_t *pl = json_object_get(root, "placement");
        const json_t *op = json_object_get(root, "options");
        const char *pf = json_is_string(pl) ? json_string_value(pl) : jstr_in(pl, "file", NULL);
        const char *route = jstr_in(root, "route", jstr_in(op, "route", NULL));
        const char *hw = jstr_in(root, "hw", jstr_in(op, "hw", NULL));
        const char *batch = jstr_in(root, "batch", jstr_in(op, "batch", NULL));
        if ((pf && !(p->pfile = dupstr(pf))) || (route && !(p->route = dupstr(route))) ||
            (hw && !(p->hw = dupstr(hw))) || (batch && !(p->batch = dupstr(batch))))
            return nomem(err);
        const char *l = jstr_in(root, "label", NULL);
        if (l && !power_label_parse(l, p)) return nomem(err);
    }
    static const char *const ek[] = {"energy_per_token_j", "joules_per_token", "energy_per_token", NULL};
    static const char *const ak[] = {"average_power_w", "avg_power_w", "mean_power_w", "avg_w", NULL};
    static const char *const pk[] = {"peak_power_w", "peak_cluster_power_w", "max_power_w", "peak_w", NULL};
    static const char *const tk[] = {"energy_j", "total_energy_j", "total_j", NULL};
    p->energy_tok = jfind(root, ek, 2);
    p->avg_w = jfind(root, ak, 2);
    p->peak_w = jfind(root, pk, 2);
    p->total_j = jfind(root, tk, 2);
    for (int i = 0; i < 4; i++) p->parts[i] = NAN;
    static const char *const bk[] = {"parts", "breakdown", "energy_breakdown", "energy_j_by_part", "energy", NULL};
    const json_t *bd = find_key(root, bk, 1);
    if (json_is_object(bd)) breakdown_from(bd, p->parts);
    static const char *const tlk[] = {"timeline", "power_timeline", "cluster_timeline", NULL};
    const json_t *tl = find_key(root, tlk, 1);
    if (json_is_object(tl)) { /* {t_us: [...], power_w: [...]} or {cluster: [...]} */
        const json_t *inner = json_object_get(tl, "cluster");
        if (json_is_array(inner)) tl = inner;
    }
    size_t n = json_array_size(tl);
    if (n) {
        p->t_ms = ms_alloc_array(n, sizeof(double), NULL);
        p->p_w = ms_alloc_array(n, sizeof(double), NULL);
        if (!p->t_ms || !p->p_w) return nomem(err);
        for (size_t i = 0; i < n; i++) {
            json_t *x = json_array_get(tl, i);
            if (json_is_array(x)) {
                json_t *a = json_array_get(x, 0), *b = json_array_get(x, 1);
                p->t_ms[i] = json_is_number(a) ? json_number_value(a) : NAN;
                p->p_w[i] = json_is_number(b) ? json_number_value(b) : NAN;
            } else {
                p->t_ms[i] = time_ms(x);
                p->p_w[i] = power_w(x);
            }
        }
        p->n_t = n;
    } else if (json_is_object(tl)) {
        static const char *const tks[] = {"t_ms", "time_ms", "t_us", "time_us", "start_s", "t_s", NULL};
        static const double scl[] = {1, 1, 1e-3, 1e-3, 1e3, 1e3};
        static const char *const pks[] = {"power_w", "cluster_w", "watts", "avg_w", NULL};
        for (int i = 0; tks[i] && !p->n_t; i++) {
            json_t *ta = json_object_get(tl, tks[i]);
            for (int j = 0; pks[j] && json_array_size(ta); j++) {
                json_t *pa = json_object_get(tl, pks[j]);
                size_t m = json_array_size(pa) < json_array_size(ta) ? json_array_size(pa) : json_array_size(ta);
                if (!m) continue;
                p->t_ms = num_array(ta, m);
                p->p_w = num_array(pa, m);
                if (!p->t_ms || !p->p_w) return nomem(err);
                for (size_t k = 0; k < m; k++) p->t_ms[k] *= scl[i];
                p->n_t = m;
                break;
            }
        }
    }
    if (!p->label) return nomem(err);
    return MS_OK;
}

static ms_status read_power(const json_t *root, const char *path, rp_input *in, ms_error *err) {
    const json_t *runs = json_object_get(root, "runs");
    size_t n = json_is_array(runs) ? json_array_size(runs) : 0;
    in->power = calloc(n ? n : 1, sizeof *in->power);
    if (!in->power) return nomem(err);
    for (size_t i = 0; i < (n ? n : 1); i++) {
        const json_t *o = n ? json_array_get(runs, i) : root;
        char lab[300];
        const char *l = jstr_in(o, "label", NULL);
        if (l) snprintf(lab, sizeof lab, "%s", l);
        else if (n > 1) snprintf(lab, sizeof lab, "%s #%zu", base_name(path), i + 1);
        else snprintf(lab, sizeof lab, "%s", base_name(path));
        in->n_power++;
        ms_status st = read_power_one(o, lab, &in->power[i], err);
        if (st != MS_OK) return st;
    }
    ms_sbuf b;
    ms_sbuf_init(&b);
    static const char *const dk[] = {"inputs", "options", "config", "params", NULL};
    for (const char *const *k = dk; *k; k++) {
        json_t *v = json_object_get(root, *k);
        if (json_is_object(v)) scalars(&b, v, NULL, 1);
    }
    const char *mode = jstr_in(root, "mode", NULL), *prec = jstr_in(root, "precision", NULL);
    if (mode) ms_sbuf_printf(&b, "%smode=%s", b.len ? "; " : "", mode);
    if (prec) ms_sbuf_printf(&b, "%sprecision=%s", b.len ? "; " : "", prec);
    in->info = b.s;
    if (b.failed) return nomem(err);
    return MS_OK;
}

/* ------------------------------------------------------------ scale */

static const json_t *scale_list(const json_t *root, const char **xkey) {
    static const char *const lk[] = {"models", "points", "family", "rows", "results", "scale", NULL};
    static const char *const xk[] = {"total_params", "params_total", "total_parameters", "params", "n_params",
                                     "parameters", NULL};
    for (const char *const *k = lk; *k; k++) {
        json_t *a = json_is_array(root) && k == lk ? (json_t *)root : json_object_get(root, *k);
        json_t *o = json_array_get(a, 0);
        if (!json_is_object(o)) continue;
        for (const char *const *x = xk; *x; x++) {
            if (json_is_number(json_object_get(o, *x))) {
                *xkey = *x;
                return a;
            }
        }
    }
    return NULL;
}

/* A power figure of a scaling point: a name with "power", or an average or
 * site power ending in _w/_kw/_mw/_gw. */
static bool power_key(const char *k) {
    return strstr(k, "power") || strstr(k, "avg") || strstr(k, "site");
}

static double unit_scale(const char *k, char *unit, size_t ulen) {
    size_t n = strlen(k);
    if (n > 3 && strcmp(k + n - 3, "_mw") == 0) return snprintf(unit, ulen, "W"), 1e6;
    if (n > 3 && strcmp(k + n - 3, "_kw") == 0) return snprintf(unit, ulen, "W"), 1e3;
    if (n > 3 && strcmp(k + n - 3, "_gw") == 0) return snprintf(unit, ulen, "W"), 1e9;
    if (n > 2 && strcmp(k + n - 2, "_w") == 0) return snprintf(unit, ulen, "W"), 1;
    return 0;
}

static ms_status read_scale(const json_t *root, const json_t *list, const char *xkey, const char *path,
                            rp_input *in, ms_error *err) {
    rp_scale *s = calloc(1, sizeof *s);
    if (!s) return nomem(err);
    in->scale = s;
    s->label = dupstr(base_name(path));
    snprintf(s->xname, sizeof s->xname, "%s", xkey);
    snprintf(s->yunit, sizeof s->yunit, "W");
    size_t n = json_array_size(list);
    json_t *o0 = json_array_get(list, 0);
    const char *k;
    json_t *v;
    size_t ns = 0;
    json_object_foreach(o0, k, v) {
        char u[8];
        if (json_is_number(v) && power_key(k) && unit_scale(k, u, sizeof u) > 0) ns++;
    }
    s->series = calloc(ns ? ns : 1, sizeof *s->series);
    if (!s->series || !s->label) return nomem(err);
    json_object_foreach(o0, k, v) {
        char u[8];
        double scl;
        if (!json_is_number(v) || !power_key(k) || (scl = unit_scale(k, u, sizeof u)) <= 0) continue;
        rp_series *se = &s->series[s->n_series++];
        se->name = dupstr(k);
        se->x = ms_alloc_array(n, sizeof(double), NULL);
        se->y = ms_alloc_array(n, sizeof(double), NULL);
        if (!se->name || !se->x || !se->y) return nomem(err);
        /* points of several sweeps (e.g. size, experts-...): keep the first sweep's */
        const char *sw0 = jstr_in(o0, "sweep", NULL);
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            json_t *o = json_array_get(list, i);
            const char *sw = jstr_in(o, "sweep", NULL);
            if (sw0 && (!sw || strcmp(sw, sw0) != 0)) continue;
            se->x[m] = jnum_or(o, xkey);
            se->y[m] = jnum_or(o, k) * scl;
            m++;
        }
        se->n = m;
    }
    static const char *const wk[] = {"power_wall", "power_walls", "walls", "wall", NULL};
    const json_t *walls = find_key(root, wk, 1);
    if (json_is_object(walls)) {
        json_t *inner = json_object_get(walls, "limits");
        if (json_is_array(inner)) walls = inner;
    }
    size_t nw = json_is_array(walls) ? json_array_size(walls) : json_is_object(walls) ? 1 : 0;
    if (nw) {
        s->wall_y = ms_alloc_array(nw, sizeof(double), NULL);
        s->wall_label = calloc(nw, sizeof(char *));
        if (!s->wall_y || !s->wall_label) return nomem(err);
        for (size_t i = 0; i < nw; i++) {
            const json_t *w = json_is_array(walls) ? json_array_get(walls, i) : walls;
            double y = NAN;
            json_object_foreach((json_t *)w, k, v) {
                char u[8];
                double scl;
                if (json_is_number(v) && (strstr(k, "limit") || strstr(k, "site") || strstr(k, "budget")) &&
                    (scl = unit_scale(k, u, sizeof u)) > 0) {
                    y = json_number_value(v) * scl;
                    break;
                }
            }
            if (!isfinite(y)) continue;
            double params = NAN;
            bool trainable = false;
            const json_t *cm = json_object_get(w, "compute_model");
            if (json_is_object(cm) && jnum(cm, "total_params", &params)) trainable = true;
            else
                json_object_foreach((json_t *)w, k, v) {
                    if (json_is_number(v) && strstr(k, "param")) {
                        params = json_number_value(v);
                        break;
                    }
                }
            char lab[160], pb[48];
            if (y >= 1e6) snprintf(lab, sizeof lab, "%.4g MW limit", y / 1e6);
            else snprintf(lab, sizeof lab, "%.4g kW limit", y / 1e3);
            if (isfinite(params)) {
                if (params >= 1e12) snprintf(pb, sizeof pb, "%.3gT", params / 1e12);
                else if (params >= 1e9) snprintf(pb, sizeof pb, "%.3gB", params / 1e9);
                else snprintf(pb, sizeof pb, "%.3gM", params / 1e6);
                size_t l = strlen(lab);
                snprintf(lab + l, sizeof lab - l, ": largest %s %s params", trainable ? "trainable" : "model", pb);
            }
            s->wall_y[s->n_walls] = y;
            s->wall_label[s->n_walls] = dupstr(lab);
            if (!s->wall_label[s->n_walls]) return nomem(err);
            s->n_walls++;
        }
    }
    if (!s->n_series) return ms_error_set(err, MS_E_INPUT, "%s: scaling points have no power figures", path);
    return MS_OK;
}

/* ------------------------------------------------------------ replay */

/* Strict readers of a replay file's keys: each error names the file and the
 * key's place, e.g. "runs[2].summary.total_us". */
static ms_status bad_key(ms_error *err, const char *path, const char *at, const char *key, const char *what) {
    return ms_error_set(err, MS_E_INPUT, "%s: %s%s%s %s", path, at, *at ? "." : "", key, what);
}

/* o[key] as an integer >= 0. */
static ms_status get_count(const json_t *o, const char *key, const char *path, const char *at, uint64_t *out,
                           ms_error *err) {
    const json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return bad_key(err, path, at, key, "is not a count (an integer >= 0)");
    *out = (uint64_t)json_integer_value(v);
    return MS_OK;
}

/* o[key] as a finite number >= 0; with null_ok, null reads as NAN. */
static ms_status get_amount(const json_t *o, const char *key, bool null_ok, const char *path, const char *at,
                            double *out, ms_error *err) {
    const json_t *v = json_object_get(o, key);
    if (null_ok && json_is_null(v)) {
        *out = NAN;
        return MS_OK;
    }
    double x = json_is_number(v) ? json_number_value(v) : NAN;
    if (!(x >= 0) || !isfinite(x))
        return bad_key(err, path, at, key, null_ok ? "is not a number >= 0 or null" : "is not a number >= 0");
    *out = x;
    return MS_OK;
}

/* o[key] as an interval {"n": N > 0, "unit": "steps" | "tokens"}. */
static ms_status get_span(const json_t *o, const char *key, const char *path, const char *at, ms_span *out,
                          ms_error *err) {
    const json_t *v = json_object_get(o, key), *n = json_object_get(v, "n");
    const char *u = jstr_in(v, "unit", "");
    bool steps = strcmp(u, "steps") == 0, tokens = strcmp(u, "tokens") == 0;
    if (!json_is_integer(n) || json_integer_value(n) <= 0 || (!steps && !tokens))
        return bad_key(err, path, at, key, "is not an interval ({\"n\": N > 0, \"unit\": \"steps\" or \"tokens\"})");
    *out = (ms_span){(uint64_t)json_integer_value(n), tokens ? MS_SPAN_TOKENS : MS_SPAN_STEPS};
    return MS_OK;
}

static void replay_free(rp_replay *p) {
    if (!p) return;
    for (size_t i = 0; i < p->n; i++) {
        free(p->runs[i].ev);
        free(p->runs[i].step);
        free(p->runs[i].imb);
    }
    free(p->runs);
    free(p->trace);
    free(p);
}

/* summary.before/after of run `at`: *split = before.steps when both are
 * there and after.steps > 0, else -1; the mean imbalance after it. */
static ms_status read_split(const json_t *s, const char *path, const char *at, int64_t *split, double *imb_after,
                            ms_error *err) {
    const json_t *b = json_object_get(s, "before"), *a = json_object_get(s, "after");
    *split = -1;
    *imb_after = NAN;
    if (!b && !a) return MS_OK;
    char bat[96], aat[96];
    snprintf(bat, sizeof bat, "%s.before", at);
    snprintf(aat, sizeof aat, "%s.after", at);
    if (!json_is_object(b) || !json_is_object(a))
        return ms_error_set(err, MS_E_INPUT, "%s: %s.before and .after are not both objects", path, at);
    uint64_t nb, na;
    double ib;
    ms_status st = get_count(b, "steps", path, bat, &nb, err);
    if (st == MS_OK) st = get_count(a, "steps", path, aat, &na, err);
    if (st == MS_OK) st = get_amount(b, "imbalance", true, path, bat, &ib, err);
    if (st == MS_OK) st = get_amount(a, "imbalance", true, path, aat, imb_after, err);
    if (st == MS_OK && na > 0) *split = (int64_t)nb;
    return st;
}

static ms_status read_replay_events(const json_t *o, const char *path, const char *at, rp_rrun *r, ms_error *err) {
    const json_t *ev = json_object_get(o, "events");
    if (!json_is_array(ev)) return bad_key(err, path, at, "events", "is not a list");
    size_t n = json_array_size(ev);
    if (n != r->replacements)
        return ms_error_set(err, MS_E_INPUT, "%s: %s has %zu events but summary.replacements is %llu", path, at, n,
                            (unsigned long long)r->replacements);
    r->ev = calloc(n ? n : 1, sizeof *r->ev);
    if (!r->ev) return nomem(err);
    for (size_t k = 0; k < n; k++) {
        const json_t *e = json_array_get(ev, k);
        char eat[96];
        snprintf(eat, sizeof eat, "%s.events[%zu]", at, k);
        if (!json_is_object(e)) return ms_error_set(err, MS_E_INPUT, "%s: %s is not an object", path, eat);
        rp_revent *x = &r->ev[k];
        ms_status st = get_count(e, "point", path, eat, &x->point, err);
        if (st == MS_OK) st = get_count(e, "effective", path, eat, &x->effective, err);
        if (st == MS_OK) st = get_count(e, "replicas_moved", path, eat, &x->moved, err);
        if (st == MS_OK) st = get_amount(e, "bytes", false, path, eat, &x->bytes, err);
        if (st != MS_OK) return st;
        if (x->effective < x->point)
            return ms_error_set(err, MS_E_INPUT, "%s: %s takes effect (step %llu) before its decision (step %llu)",
                                path, eat, (unsigned long long)x->effective, (unsigned long long)x->point);
        r->n_ev++;
    }
    return MS_OK;
}

static ms_status read_replay_steps(const json_t *o, const char *path, const char *at, rp_rrun *r, ms_error *err) {
    const json_t *steps = json_object_get(o, "steps");
    if (!steps) return MS_OK; /* --no-steps */
    if (!json_is_array(steps)) return bad_key(err, path, at, "steps", "is not a list");
    size_t n = json_array_size(steps);
    r->step = ms_alloc_array(n ? n : 1, sizeof *r->step, NULL);
    r->imb = ms_alloc_array(n ? n : 1, sizeof *r->imb, NULL);
    if (!r->step || !r->imb) return nomem(err);
    for (size_t k = 0; k < n; k++) {
        const json_t *x = json_array_get(steps, k);
        char sat[96];
        snprintf(sat, sizeof sat, "%s.steps[%zu]", at, k);
        if (!json_is_object(x)) return ms_error_set(err, MS_E_INPUT, "%s: %s is not an object", path, sat);
        uint64_t step;
        ms_status st = get_count(x, "step", path, sat, &step, err);
        if (st == MS_OK) st = get_amount(x, "imbalance", true, path, sat, &r->imb[k], err);
        if (st != MS_OK) return st;
        if (k && (double)step <= r->step[k - 1])
            return ms_error_set(err, MS_E_INPUT, "%s: %s.step %llu does not follow step %.0f", path, sat,
                                (unsigned long long)step, r->step[k - 1]);
        r->step[k] = (double)step;
        r->n_steps++;
    }
    return MS_OK;
}

/* runs[i] of a replay file; *split as read_split. */
static ms_status read_replay_run(const json_t *o, size_t i, const char *path, rp_rrun *r, int64_t *split,
                                 ms_error *err) {
    char at[48], sat[64];
    snprintf(at, sizeof at, "runs[%zu]", i);
    snprintf(sat, sizeof sat, "runs[%zu].summary", i);
    if (!json_is_object(o)) return ms_error_set(err, MS_E_INPUT, "%s: %s is not an object", path, at);
    ms_error perr = {0};
    const char *pol = jstr_in(o, "policy", NULL), *mig = jstr_in(o, "migration", NULL);
    if (!pol) return bad_key(err, path, at, "policy", "is missing");
    if (ms_rebalance_parse(pol, &r->policy, &perr) != MS_OK)
        return ms_error_set(err, MS_E_INPUT, "%s: %s.policy: %s", path, at, perr.msg);
    if (!mig) return bad_key(err, path, at, "migration", "is missing");
    if (ms_migration_parse(mig, &r->migration, &perr) != MS_OK)
        return ms_error_set(err, MS_E_INPUT, "%s: %s.migration: %s", path, at, perr.msg);
    ms_status st = get_span(o, "every", path, at, &r->every, err);
    if (st == MS_OK) st = get_span(o, "window", path, at, &r->window, err);
    if (st != MS_OK) return st;
    r->max_moves = -1;
    if (json_object_get(o, "max_moves")) {
        uint64_t m;
        if ((st = get_count(o, "max_moves", path, at, &m, err)) != MS_OK) return st;
        r->max_moves = (int64_t)(m > INT64_MAX ? INT64_MAX : m);
    } else if (r->policy == MS_REBALANCE_INCREMENTAL) {
        return bad_key(err, path, at, "max_moves", "is missing (an incremental run's copies per decision)");
    }
    const json_t *s = json_object_get(o, "summary");
    if (!json_is_object(s)) return bad_key(err, path, at, "summary", "is not an object");
    st = get_count(s, "replacements", path, sat, &r->replacements, err);
    if (st == MS_OK) st = get_count(s, "replicas_moved", path, sat, &r->moved, err);
    if (st == MS_OK) st = get_amount(s, "bytes_moved", false, path, sat, &r->bytes, err);
    if (st == MS_OK) st = get_amount(s, "serve_us", false, path, sat, &r->serve_us, err);
    if (st == MS_OK) st = get_amount(s, "migration_us", false, path, sat, &r->migration_us, err);
    if (st == MS_OK) st = get_amount(s, "total_us", false, path, sat, &r->total_us, err);
    if (st == MS_OK) st = get_amount(s, "imbalance", true, path, sat, &r->imbalance, err);
    if (st == MS_OK) st = read_split(s, path, sat, split, &r->imbalance_after, err);
    if (st == MS_OK) st = read_replay_events(o, path, at, r, err);
    if (st == MS_OK) st = read_replay_steps(o, path, at, r, err);
    return st;
}

/* moesim replay --format json: {"format": "moesim-replay", "trace": {"label", ...},
 * "options": {"after_request": N | null, ...}, "runs": [...]}. */
static ms_status read_replay(const json_t *root, const char *path, rp_input *in, ms_error *err) {
    rp_replay *p = calloc(1, sizeof *p);
    if (!p) return nomem(err);
    in->replay = p;
    const json_t *tr = json_object_get(root, "trace"), *opt = json_object_get(root, "options");
    const char *label = jstr_in(tr, "label", NULL);
    if (!label) return bad_key(err, path, "trace", "label", "is missing (a replay names its trace)");
    if (!(p->trace = dupstr(label))) return nomem(err);
    digest_of(root, p->digest);
    if (opt && !json_is_object(opt)) return bad_key(err, path, "", "options", "is not an object");
    const json_t *ar = json_object_get(opt, "after_request");
    p->after_request = -1;
    if (ar && !json_is_null(ar)) {
        if (!json_is_integer(ar) || json_integer_value(ar) < 0)
            return bad_key(err, path, "options", "after_request", "is not a request number or null");
        p->after_request = (int64_t)json_integer_value(ar);
    }
    const json_t *runs = json_object_get(root, "runs");
    size_t n = json_array_size(runs);
    if (!json_is_array(runs) || !n) return ms_error_set(err, MS_E_INPUT, "%s: a replay without runs", path);
    p->runs = calloc(n, sizeof *p->runs);
    if (!p->runs) return nomem(err);
    int64_t first_split = -1;
    for (size_t i = 0; i < n; i++) {
        int64_t split;
        p->n++;
        ms_status st = read_replay_run(json_array_get(runs, i), i, path, &p->runs[i], &split, err);
        if (st != MS_OK) return st;
        if (i == 0) first_split = split;
    }
    p->split_step = p->after_request >= 0 ? first_split : -1;
    ms_sbuf b;
    ms_sbuf_init(&b);
    ms_sbuf_printf(&b, "replay of %s: %zu runs, migration %s", p->trace, p->n, ms_migration_name(p->runs[0].migration));
    if (p->split_step >= 0)
        ms_sbuf_printf(&b, "; split at request %lld (step %lld)", (long long)p->after_request,
                       (long long)p->split_step);
    in->info = b.s;
    return b.failed ? nomem(err) : MS_OK;
}

/* ------------------------------------------------------- tables */

static void table_free(rp_table *t) {
    if (!t) return;
    for (size_t i = 0; i < t->n_cols; i++) free(t->head[i]);
    for (size_t i = 0; i < t->n_rows * t->n_cols; i++) free(t->cell[i]);
    free(t->head);
    free(t->cell);
    free(t);
}

static char *cell_text(const json_t *v) {
    char buf[64];
    if (json_is_string(v)) return dupstr(json_string_value(v));
    if (json_is_integer(v)) snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v)) snprintf(buf, sizeof buf, "%.6g", json_real_value(v));
    else if (json_is_boolean(v)) snprintf(buf, sizeof buf, "%s", json_is_true(v) ? "true" : "false");
    else buf[0] = '\0';
    return dupstr(buf);
}

/* Rows of objects -> table; columns from the first row (at most 40 columns, 2000 rows). */
static ms_status table_from_rows(const json_t *rows, rp_table **out, ms_error *err) {
    rp_table *t = calloc(1, sizeof *t);
    if (!t) return nomem(err);
    json_t *o0 = json_array_get(rows, 0);
    size_t nc = json_object_size(o0) > 40 ? 40 : json_object_size(o0);
    size_t nr = json_array_size(rows) > 2000 ? 2000 : json_array_size(rows);
    t->head = calloc(nc ? nc : 1, sizeof(char *));
    t->cell = calloc((nc ? nc : 1) * (nr ? nr : 1), sizeof(char *));
    if (!t->head || !t->cell) {
        table_free(t);
        return nomem(err);
    }
    t->n_cols = nc;
    t->n_rows = nr;
    const char *k;
    json_t *v;
    size_t c = 0;
    json_object_foreach(o0, k, v) {
        if (c >= nc) break;
        t->head[c++] = dupstr(k);
    }
    for (size_t r = 0; r < nr; r++) {
        json_t *o = json_array_get(rows, r);
        for (c = 0; c < nc; c++) t->cell[r * nc + c] = cell_text(json_object_get(o, t->head[c]));
    }
    *out = t;
    return MS_OK;
}

static ms_status table_from_scalars(const json_t *root, rp_table **out, ms_error *err) {
    rp_table *t = calloc(1, sizeof *t);
    if (!t) return nomem(err);
    t->n_cols = 2;
    size_t cap = 64;
    t->head = calloc(2, sizeof(char *));
    t->cell = calloc(cap * 2, sizeof(char *));
    if (!t->head || !t->cell) {
        table_free(t);
        return nomem(err);
    }
    t->head[0] = dupstr("key");
    t->head[1] = dupstr("value");
    /* top level and one level down */
    const char *k, *k2;
    json_t *v, *v2;
    json_object_foreach((json_t *)root, k, v) {
        if (t->n_rows >= cap) break;
        if (json_is_number(v) || json_is_string(v) || json_is_boolean(v)) {
            t->cell[t->n_rows * 2] = dupstr(k);
            t->cell[t->n_rows * 2 + 1] = cell_text(v);
            t->n_rows++;
        } else if (json_is_object(v)) {
            json_object_foreach(v, k2, v2) {
                if (t->n_rows >= cap) break;
                if (!(json_is_number(v2) || json_is_string(v2) || json_is_boolean(v2))) continue;
                char key[200];
                snprintf(key, sizeof key, "%s.%s", k, k2);
                t->cell[t->n_rows * 2] = dupstr(key);
                t->cell[t->n_rows * 2 + 1] = cell_text(v2);
                t->n_rows++;
            }
        }
    }
    *out = t;
    return MS_OK;
}

/* ------------------------------------------------------------ entry */

void rp_input_clear(rp_input *in) {
    free(in->path);
    free(in->label);
    stats_free(in->stats);
    ms_placement_free(in->placement);
    for (size_t i = 0; i < in->n_runs; i++) run_clear(&in->runs[i]);
    free(in->runs);
    for (size_t i = 0; i < in->n_power; i++) {
        free(in->power[i].label);
        free(in->power[i].t_ms);
        free(in->power[i].p_w);
        free(in->power[i].pfile);
        free(in->power[i].route);
        free(in->power[i].hw);
        free(in->power[i].batch);
    }
    free(in->power);
    if (in->scale) {
        free(in->scale->label);
        for (size_t i = 0; i < in->scale->n_series; i++) {
            free(in->scale->series[i].name);
            free(in->scale->series[i].x);
            free(in->scale->series[i].y);
        }
        free(in->scale->series);
        for (size_t i = 0; i < in->scale->n_walls; i++) free(in->scale->wall_label[i]);
        free(in->scale->wall_label);
        free(in->scale->wall_y);
        free(in->scale);
    }
    if (in->pareto) {
        for (size_t i = 0; i < in->pareto->n; i++) {
            free(in->pareto->pts[i].label);
            free(in->pareto->pts[i].source);
        }
        free(in->pareto->pts);
        free(in->pareto->axes);
        free(in->pareto);
    }
    replay_free(in->replay);
    table_free(in->table);
    free(in->info);
    memset(in, 0, sizeof *in);
}

/* place --pareto: {"pareto": {"axes": [...], ...}, "points": [{label, source, front, layer_us_mean,
 * layer_us_p99, peak_w, energy_per_token_j}, ...]} */
static ms_status read_pareto(const json_t *root, const char *path, rp_input *in, ms_error *err) {
    const json_t *pts = json_object_get(root, "points"), *meta = json_object_get(root, "pareto");
    size_t n = json_array_size(pts);
    if (!n) return ms_error_set(err, MS_E_INPUT, "%s: a Pareto answer without points", path);
    rp_pareto *p = calloc(1, sizeof *p);
    if (!p) return nomem(err);
    in->pareto = p;
    p->pts = calloc(n, sizeof *p->pts);
    if (!p->pts) return nomem(err);
    ms_sbuf b;
    ms_sbuf_init(&b);
    const json_t *axes = json_object_get(meta, "axes");
    for (size_t i = 0; i < json_array_size(axes); i++)
        if (json_is_string(json_array_get(axes, i)))
            ms_sbuf_printf(&b, "%s%s", b.len ? ", " : "", json_string_value(json_array_get(axes, i)));
    p->axes = b.s ? b.s : dupstr("");
    if (!p->axes) return nomem(err);
    for (size_t i = 0; i < n; i++) {
        const json_t *o = json_array_get(pts, i);
        if (!json_is_object(o)) return ms_error_set(err, MS_E_INPUT, "%s: Pareto point %zu is not an object", path, i);
        rp_ppoint *x = &p->pts[p->n++];
        x->label = dupstr(jstr_in(o, "label", "point"));
        x->source = dupstr(jstr_in(o, "source", "algorithm"));
        if (!x->label || !x->source) return nomem(err);
        x->front = json_is_true(json_object_get(o, "front"));
        x->t_us = jnum_or(o, "layer_us_mean");
        x->p99_us = jnum_or(o, "layer_us_p99");
        x->peak_w = jnum_or(o, "peak_w");
        x->energy_tok = jnum_or(o, "energy_per_token_j");
    }
    char info[256];
    size_t nf = 0;
    for (size_t i = 0; i < p->n; i++) nf += p->pts[i].front;
    snprintf(info, sizeof info, "Pareto answer on %s: %zu points, %zu on the front; trace %s", p->axes, p->n, nf,
             jstr_in(meta, "trace_digest", "?"));
    in->info = dupstr(info);
    return in->info ? MS_OK : nomem(err);
}

static bool is_peer_placement(const json_t *root) {
    if (!json_is_object(root) || !json_object_size(root)) return false;
    json_t *a = json_object_get(root, "0");
    return json_is_array(a) && json_is_object(json_array_get(a, 0)) &&
           json_object_get(json_array_get(a, 0), "device") != NULL;
}

ms_status rp_read_file(const char *path, rp_input *in, ms_error *err) {
    memset(in, 0, sizeof *in);
    in->path = dupstr(path);
    in->label = dupstr(base_name(path));
    if (!in->path || !in->label) return nomem(err);
    uint8_t *buf = NULL;
    size_t len = 0;
    ms_status st = ms_file_read_all(path, &buf, &len, err);
    if (st != MS_OK) return st;
    json_error_t je;
    json_t *root = json_loadb((const char *)buf, len, 0, &je);
    free(buf);
    if (!root)
        return ms_error_set(err, MS_E_INPUT, "%s: not JSON (line %d, column %d: %s)", path, je.line, je.column,
                            je.text);
    if (!json_is_object(root) && !json_is_array(root)) {
        json_decref(root);
        return ms_error_set(err, MS_E_INPUT, "%s: expected a JSON object or list", path);
    }
    const char *xkey = NULL;
    const json_t *list;
    json_t *fmt = json_object_get(root, "format");
    if ((json_is_string(fmt) && strcmp(json_string_value(fmt), "moesim-placement") == 0) ||
        json_object_get(root, "physical_to_logical_map") || is_peer_placement(root)) {
        in->kind = MS_REPORT_PLACEMENT;
        json_decref(root);
        st = ms_placement_read_json(path, NULL, 0, &in->placement, err);
        if (st != MS_OK) return st;
        char info[256];
        const ms_placement *p = in->placement;
        snprintf(info, sizeof info, "%s; %u x %u devices x %u slots; %u layers, %u logical experts", p->algorithm,
                 p->cluster.rows, p->cluster.cols, p->cluster.slots_per_device, p->n_layers, p->n_logical);
        in->info = dupstr(info);
        return MS_OK;
    }
    if (json_is_string(fmt) && strcmp(json_string_value(fmt), "moesim-replay") == 0) {
        in->kind = MS_REPORT_REPLAY;
        st = read_replay(root, path, in, err);
    } else if (json_array_size(json_object_get(root, "per_layer")) &&
        json_is_array(json_object_get(json_array_get(json_object_get(root, "per_layer"), 0), "expert_load"))) {
        in->kind = MS_REPORT_STATS;
        st = read_stats(root, path, in, err);
    } else if (json_is_object(json_object_get(root, "sweep")) && json_is_array(json_object_get(root, "rows"))) {
        in->kind = MS_REPORT_SWEEP;
        json_t *rows = json_object_get(root, "rows");
        st = json_array_size(rows) ? table_from_rows(rows, &in->table, err)
                                   : ms_error_set(err, MS_E_INPUT, "%s: sweep has no rows", path);
        if (st == MS_OK) {
            ms_sbuf b;
            ms_sbuf_init(&b);
            scalars(&b, json_object_get(root, "sweep"), NULL, 0);
            in->info = b.s;
        }
    } else if (json_is_object(json_object_get(root, "pareto")) && json_is_array(json_object_get(root, "points"))) {
        in->kind = MS_REPORT_PARETO;
        st = read_pareto(root, path, in, err);
    } else if (looks_like_power(root) && !has_run(root)) {
        in->kind = MS_REPORT_POWER;
        st = read_power(root, path, in, err);
    } else if (has_run(root)) {
        in->kind = MS_REPORT_SIM;
        st = read_runs(root, NULL, path, in, err);
    } else if ((list = run_list(root)) != NULL) {
        in->kind = MS_REPORT_COMPARE;
        st = read_runs(root, list, path, in, err);
    } else if ((list = scale_list(root, &xkey)) != NULL) {
        in->kind = MS_REPORT_SCALE;
        st = read_scale(root, list, xkey, path, in, err);
    } else if (json_is_object(root)) {
        in->kind = MS_REPORT_OTHER;
        st = table_from_scalars(root, &in->table, err);
    } else {
        st = ms_error_set(err, MS_E_INPUT, "%s: a JSON list the report does not know", path);
    }
    if (st == MS_OK && (in->kind == MS_REPORT_SIM || in->kind == MS_REPORT_COMPARE)) {
        ms_sbuf b;
        ms_sbuf_init(&b);
        if (in->runs[0].digest[0]) ms_sbuf_printf(&b, "trace %s", in->runs[0].digest);
        for (size_t i = 0; i < in->n_runs && i < 1; i++)
            if (in->runs[i].details) ms_sbuf_printf(&b, "%s%s", b.len ? "; " : "", in->runs[i].details);
        in->info = b.s;
    }
    json_decref(root);
    return st;
}
