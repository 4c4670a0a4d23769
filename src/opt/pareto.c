/* pareto.c - a Pareto answer of `search`: scalarised searches over the
 * axes, plus the initial placement and other algorithms, each simulated and
 * priced, then the non-dominated ones marked (see moesim/opt.h). */
#include "moesim/opt.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const axis_names[3] = {"time", "peak-power", "energy"};

const char *ms_pareto_axis_name(ms_pareto_axis a) { return (unsigned)a < 3 ? axis_names[a] : "?"; }

ms_status ms_pareto_axes_parse(const char *s, ms_pareto_axis axes[3], uint32_t *n, ms_error *err) {
    *n = 0;
    char buf[64];
    if (!s || strlen(s) >= sizeof buf) goto bad;
    strcpy(buf, s);
    for (char *p = buf;;) {
        char *e = strchr(p, ',');
        if (e) *e = '\0';
        int found = -1;
        for (int a = 0; a < 3; a++)
            if (strcmp(p, axis_names[a]) == 0) found = a;
        for (uint32_t i = 0; found >= 0 && i < *n; i++)
            if (axes[i] == (ms_pareto_axis)found) found = -1;
        if (found < 0 || *n == 3) goto bad;
        axes[(*n)++] = (ms_pareto_axis)found;
        if (!e) break;
        p = e + 1;
    }
    if (*n >= 2) return MS_OK;
bad:
    *n = 0;
    return ms_error_set(err, MS_E_INPUT,
                        "--pareto expects two or three distinct axes of time, peak-power, energy (e.g. "
                        "time,peak-power), got '%s'",
                        s ? s : "");
}

double ms_pareto_axis_value(const ms_search_metrics *m, ms_pareto_axis a) {
    switch (a) {
    case MS_AXIS_TIME: return m->layer_us_mean;
    case MS_AXIS_PEAK: return m->peak_w;
    case MS_AXIS_ENERGY: return m->energy_per_token_j;
    }
    return NAN;
}

bool ms_pareto_dominates(const ms_search_metrics *a, const ms_search_metrics *b, const ms_pareto_axis *axes,
                         uint32_t n) {
    bool better = false;
    for (uint32_t i = 0; i < n; i++) {
        double x = ms_pareto_axis_value(a, axes[i]), y = ms_pareto_axis_value(b, axes[i]);
        if (x > y) return false;
        better |= x < y;
    }
    return better;
}

void ms_pareto_free(ms_pareto *p) {
    if (!p) return;
    for (size_t i = 0; i < p->n; i++) ms_placement_free(p->pts[i].placement);
    ms_free(p->pts);
    ms_free(p->skipped);
    ms_free(p);
}

/* The weights of search k of n on the axes (mix over time, peak, energy). */
static void weights_of(const ms_pareto_opts *po, uint32_t k, uint32_t n, double mix[3]) {
    mix[0] = mix[1] = mix[2] = 0;
    if (po->n_axes == 2) {
        double w = 1.0 - (double)k / (n - 1);
        mix[po->axes[0]] = w;
        mix[po->axes[1]] = 1.0 - w;
        return;
    }
    /* three axes: corners, edge midpoints, centre, then repeated shifted thirds */
    static const double pts[7][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}, {0.5, 0.5, 0},
                                     {0.5, 0, 0.5}, {0, 0.5, 0.5}, {1.0 / 3, 1.0 / 3, 1.0 / 3}};
    const double *q = pts[k % 7];
    double sh = (double)(k / 7) * 0.1; /* beyond seven: nudged towards the centre */
    for (int a = 0; a < 3; a++) mix[po->axes[a]] = q[a] * (1 - sh) + sh / 3;
}

static ms_status add_point(ms_pareto *r, size_t cap, const char *label, const char *source, const double mix[3],
                           ms_placement *p, const ms_trace *t, const ms_search_opts *o, ms_error *err) {
    if (r->n >= cap) {
        ms_placement_free(p);
        return ms_error_set(err, MS_E_INTERNAL, "pareto: too many points");
    }
    ms_pareto_point *x = &r->pts[r->n];
    memset(x, 0, sizeof *x);
    snprintf(x->label, sizeof x->label, "%s", label);
    snprintf(x->source, sizeof x->source, "%s", source);
    if (mix) memcpy(x->mix, mix, sizeof x->mix);
    ms_status st = ms_search_evaluate(t, p, o, &x->m, err);
    if (st != MS_OK) {
        ms_placement_free(p);
        return st;
    }
    x->placement = p;
    r->n++;
    return MS_OK;
}

ms_status ms_pareto_run(const ms_trace *train, const ms_place_input *in, const ms_search_opts *o,
                        const ms_pareto_opts *po, ms_pareto **out, ms_error *err) {
    *out = NULL;
    if (!train || !in || !o || !po) return ms_error_set(err, MS_E_INPUT, "pareto: no trace, statistics or options");
    if (po->n_axes < 2 || po->n_axes > 3) return ms_error_set(err, MS_E_INPUT, "pareto: two or three axes");
    for (uint32_t i = 0; i < po->n_axes; i++)
        for (uint32_t j = 0; j < i; j++)
            if ((unsigned)po->axes[i] > 2 || po->axes[i] == po->axes[j])
                return ms_error_set(err, MS_E_INPUT, "pareto: the axes must be distinct");
    uint32_t ns = po->searches ? po->searches : po->n_axes == 2 ? 5 : 7;
    if (ns < 2 || ns > 64) return ms_error_set(err, MS_E_INPUT, "pareto: 2..64 searches");
    const char *const *algos = po->algos ? po->algos : ms_place_algorithms();
    size_t na = 0;
    while (algos[na]) na++;
    size_t cap = ns + na + 1;
    ms_pareto *r = ms_calloc_array(1, sizeof *r, err);
    if (!r) return MS_E_NOMEM;
    memcpy(r->axes, po->axes, sizeof r->axes);
    r->n_axes = po->n_axes;
    r->pts = ms_calloc_array(cap, sizeof *r->pts, err);
    r->skipped = ms_calloc_array(na + 1, sizeof *r->skipped, err);
    if (!r->pts || !r->skipped) {
        ms_pareto_free(r);
        return MS_E_NOMEM;
    }
    ms_status st = MS_OK;
    /* the initial placement, then the other algorithms */
    const char *init_algo = o->init ? NULL : o->init_algo ? o->init_algo : "eplb";
    if (o->init) {
        ms_placement *q = NULL;
        st = ms_placement_clone(o->init, &q, err);
        if (st == MS_OK) st = add_point(r, cap, o->init->algorithm[0] ? o->init->algorithm : "init", "init", NULL, q,
                                        train, o, err);
    }
    for (size_t i = 0; st == MS_OK && i < na; i++) {
        const char *a = algos[i];
        bool is_init = init_algo && strcmp(a, init_algo) == 0;
        if (strcmp(a, "search") == 0 || (!po->algos && strcmp(a, "ilp") == 0)) continue;
        ms_place_opts pl = o->place;
        pl.algo = a;
        ms_placement *q = NULL;
        ms_error e2 = {0};
        if (ms_place_run(in, &pl, &q, &e2) != MS_OK) {
            if (is_init) {
                if (err) *err = e2;
                st = e2.status;
                break;
            }
            snprintf(r->skipped[r->n_skipped++], sizeof r->skipped[0], "%.40s: %.200s", a, e2.msg);
            continue;
        }
        st = add_point(r, cap, a, is_init ? "init" : "algorithm", NULL, q, train, o, err);
    }
    if (st == MS_OK && init_algo) { /* an init not in the list */
        bool have = false;
        for (size_t i = 0; i < r->n; i++) have |= strcmp(r->pts[i].source, "init") == 0;
        if (!have) {
            ms_place_opts pl = o->place;
            pl.algo = init_algo;
            ms_placement *q = NULL;
            st = ms_place_run(in, &pl, &q, err);
            if (st == MS_OK) st = add_point(r, cap, init_algo, "init", NULL, q, train, o, err);
        }
    }
    /* the scalarised searches */
    for (uint32_t k = 0; st == MS_OK && k < ns; k++) {
        ms_search_opts so = *o;
        so.objective = MS_OBJ_MIX;
        weights_of(po, k, ns, so.mix);
        so.seed = o->seed + k;
        ms_placement *q = NULL;
        st = ms_search_run(train, in, &so, &q, err);
        if (st != MS_OK) break;
        char label[64] = "search", *w = label + strlen(label);
        for (int a = 0; a < 3; a++)
            if (so.mix[a] > 0 && (size_t)(w - label) < sizeof label - 24)
                w += snprintf(w, sizeof label - (size_t)(w - label), " %.3g %s", so.mix[a],
                              ms_pareto_axis_name((ms_pareto_axis)a));
        st = add_point(r, cap, label, "search", so.mix, q, train, o, err);
    }
    if (st != MS_OK) {
        ms_pareto_free(r);
        return st;
    }
    for (size_t i = 0; i < r->n; i++) {
        r->pts[i].front = true;
        for (size_t j = 0; j < r->n && r->pts[i].front; j++)
            if (j != i && ms_pareto_dominates(&r->pts[j].m, &r->pts[i].m, r->axes, r->n_axes)) r->pts[i].front = false;
    }
    *out = r;
    return MS_OK;
}
