/* site.c - the site budget: wall power of replicas, how many a site of P MW
 * powers, expert-load skew over EP ranks measured from a trace, and which
 * deployment serves the most tokens per second (see moesim/deploy.h and
 * docs/MODEL.md, "Site budget"). */
#include "moesim/deploy.h"

#include <jansson.h>
#include <math.h>
#include <string.h>

const char *ms_provision_name(ms_provision p) { return p == MS_PROVISION_TDP ? "tdp" : "measured"; }

ms_status ms_provision_parse(const char *s, ms_provision *out, ms_error *err) {
    if (strcmp(s, "measured") == 0) *out = MS_PROVISION_MEASURED;
    else if (strcmp(s, "tdp") == 0) *out = MS_PROVISION_TDP;
    else return ms_error_set(err, MS_E_INPUT, "provision must be measured or tdp, got '%s'", s);
    return MS_OK;
}

double ms_site_wall_w(const ms_energy_coeffs *c, double gpus, double gpu_w) {
    return (gpu_w + gpus * c->node_overhead_w) * c->pue;
}

double ms_site_provisioned_w(const ms_energy_coeffs *c, ms_provision p, double gpus, double measured_w) {
    return p == MS_PROVISION_TDP ? gpus * c->tdp_w : measured_w;
}

ms_status ms_site_fit_eval(double site_mw, double replica_site_w, uint32_t replica_gpus, double replica_tokens_per_s,
                           ms_site_fit *out, ms_error *err) {
    memset(out, 0, sizeof *out);
    out->site_mw = site_mw;
    out->replica_site_w = replica_site_w;
    out->replica_gpus = replica_gpus;
    if (!(site_mw > 0) || !isfinite(site_mw))
        return ms_error_set(err, MS_E_INPUT, "site power %g MW must be a positive number", site_mw);
    if (!(replica_site_w > 0) || !isfinite(replica_site_w))
        return ms_error_set(err, MS_E_INPUT, "replica power %g W must be a positive number", replica_site_w);
    if (!(replica_tokens_per_s >= 0) || !isfinite(replica_tokens_per_s))
        return ms_error_set(err, MS_E_INPUT, "replica throughput %g tokens/s must be a non-negative number",
                            replica_tokens_per_s);
    double q = site_mw * 1e6 / replica_site_w, n = floor(q);
    if (n + 1.0 - q <= 1e-9 * q) n += 1.0; /* q is an integer up to rounding */
    n = fmin(n, 9007199254740992.0);
    out->replicas = (uint64_t)n;
    out->gpus = out->replicas * replica_gpus;
    out->tokens_per_s = n * replica_tokens_per_s;
    out->tokens_per_s_per_mw = out->tokens_per_s / site_mw;
    out->used_mw = n * replica_site_w / 1e6;
    return MS_OK;
}

/* ------------------------------------------------------------------ skew */

const char *ms_ep_layout_name(ms_ep_layout l) { return l == MS_EP_ROUND_ROBIN ? "round-robin" : "contiguous"; }

ms_status ms_ep_layout_parse(const char *s, ms_ep_layout *out, ms_error *err) {
    if (strcmp(s, "contiguous") == 0) *out = MS_EP_CONTIGUOUS;
    else if (strcmp(s, "round-robin") == 0) *out = MS_EP_ROUND_ROBIN;
    else return ms_error_set(err, MS_E_INPUT, "EP layout must be contiguous or round-robin, got '%s'", s);
    return MS_OK;
}

void ms_skew_default(ms_skew *s) {
    memset(s, 0, sizeof *s);
    s->imbalance = 1.0;
    s->layout = MS_EP_CONTIGUOUS;
}

const char *ms_site_case_name(int c) { return c == MS_SITE_SKEWED ? "skewed" : "balanced"; }

ms_status ms_ep_imbalance(const ms_trace *t, uint32_t ranks, uint64_t window, ms_ep_layout layout, double *out,
                          ms_error *err) {
    *out = NAN;
    uint32_t E = t->n_experts, L = t->n_layers;
    if (!ranks) return ms_error_set(err, MS_E_INPUT, "EP imbalance: at least one rank");
    if (ranks > E) {
        if (ranks % E)
            return ms_error_set(err, MS_E_INPUT,
                                "EP imbalance: %u ranks for %u experts is neither a divisor nor a multiple", ranks, E);
        ranks = E; /* the replicas of an expert share its load evenly */
    }
    if (!t->n_tokens || !L) return ms_error_set(err, MS_E_INPUT, "EP imbalance: the trace %s has no rows", t->label);
    if (ranks == 1) {
        *out = 1.0;
        return MS_OK;
    }
    uint64_t W = window && window < t->n_tokens ? window : t->n_tokens, n_win = t->n_tokens / W;
    /* the layout: the placement code's contiguous or round-robin on 1 x ranks devices (they ignore loads) */
    ms_loads *wl = NULL;
    ms_placement *p = NULL;
    ms_status st = ms_loads_new(L, E, &wl, err);
    if (st == MS_OK) {
        for (size_t i = 0; i < (size_t)L * E; i++) wl->w[i] = 1.0;
        ms_place_opts po;
        ms_place_opts_default(&po);
        po.algo = layout == MS_EP_ROUND_ROBIN ? "round-robin" : "contiguous";
        po.cluster.rows = 1;
        po.cluster.cols = ranks;
        po.cluster.slots_per_device = (E + ranks - 1) / ranks;
        po.redundant = 0;
        po.lp_bound = false;
        po.threads = 1;
        ms_place_input in = {wl, NULL, t->digest};
        st = ms_place_run(&in, &po, &p, err);
    }
    if (st == MS_OK) {
        /* windows of W consecutive rows (the last partial one dropped unless it is the only one):
         * per layer, max rank load / mean rank load in token-expert assignments */
        double sum = 0;
        uint64_t n = 0;
        for (uint64_t w = 0; w < n_win; w++)
            for (uint32_t l = 0; l < L; l++) {
                double *row = wl->w + (size_t)l * E;
                memset(row, 0, E * sizeof *row);
                for (uint64_t tok = w * W; tok < (w + 1) * W; tok++) {
                    const uint16_t *ids = ms_trace_row(t, l, tok);
                    for (uint32_t j = 0; j < t->top_k; j++) row[ids[j]] += 1.0;
                }
                double tot = (double)W * t->top_k;
                sum += ms_placement_max_device_load(p, wl, l) / (tot / ranks);
                n++;
            }
        *out = fmax(1.0, n ? sum / (double)n : 1.0);
    }
    ms_placement_free(p);
    ms_loads_free(wl);
    return st;
}

/* ------------------------------------------------------- deployment study */

void ms_deploy_site_free(ms_deploy_site *s) { ms_free(s); }

static ms_status check_sites(const ms_site_opts *so, ms_error *err) {
    if (so->n_sites == 0 || so->n_sites > MS_SITE_MAX)
        return ms_error_set(err, MS_E_INPUT, "site budget: 1 to %d sites, got %u", MS_SITE_MAX, so->n_sites);
    for (uint32_t i = 0; i < so->n_sites; i++)
        if (!(so->site_mw[i] > 0) || !isfinite(so->site_mw[i]))
            return ms_error_set(err, MS_E_INPUT, "site power %g MW must be a positive number", so->site_mw[i]);
    return MS_OK;
}

/* tokens of one EP group in one micro-batch of a fitting result */
static uint64_t ep_group_tokens(const ms_deploy_workload *w, const ms_deploy_result *r) {
    uint64_t seqs = r->micro_batch / r->plan.dp;
    return w->phase == MS_DEPLOY_PREFILL ? seqs * r->chunk : seqs;
}

/* the skewed case's imbalance of plan p (balanced result b) */
static ms_status skew_of(const ms_deploy_model *m, const ms_deploy_workload *w, const ms_deploy_plan *p,
                         const ms_deploy_result *b, const ms_skew *sk, double *x, uint64_t *window, ms_error *err) {
    *window = 0;
    if (p->ep <= 1 || m->layers == m->dense_layers) {
        *x = 1.0;
        return MS_OK;
    }
    if (!sk->trace) {
        *x = sk->imbalance > 0 ? sk->imbalance : p->imbalance;
        return MS_OK;
    }
    uint64_t win = sk->window ? sk->window : b->fits ? ep_group_tokens(w, b) : 0;
    if (!win || win > sk->trace->n_tokens) win = sk->trace->n_tokens;
    *window = win;
    ms_status st = ms_ep_imbalance(sk->trace, p->ep, win, sk->layout, x, err);
    return st == MS_OK ? MS_OK : ms_error_prefix(err, p->name);
}

ms_status ms_deploy_site_run(const ms_deploy_model *m, const ms_deploy_workload *w, const ms_deploy_hw *hw,
                             const ms_deploy_plan *plans, uint32_t n_plans, const ms_site_opts *so,
                             const ms_skew *sk, ms_deploy_site **out, ms_error *err) {
    *out = NULL;
    if (n_plans == 0 || n_plans > MS_DEPLOY_MAX_PLANS)
        return ms_error_set(err, MS_E_INPUT, "site budget: 1 to %d plans, got %u", MS_DEPLOY_MAX_PLANS, n_plans);
    if (check_sites(so, err) != MS_OK) return MS_E_INPUT;
    if (!sk->trace && sk->imbalance != 0 && !(sk->imbalance >= 1 && isfinite(sk->imbalance)))
        return ms_error_set(err, MS_E_INPUT, "site budget: imbalance %g must be at least 1 (max/mean)", sk->imbalance);
    if (sk->trace && m->layers > m->dense_layers && sk->trace->n_experts != m->experts)
        return ms_error_set(err, MS_E_INPUT,
                            "site budget: the skew trace %s has %u experts per layer, the model %u (the imbalance "
                            "over EP ranks needs the same experts)",
                            sk->trace->label, sk->trace->n_experts, m->experts);
    ms_deploy_site *s = ms_calloc_array(1, sizeof *s, err);
    if (!s) return MS_E_NOMEM;
    s->opts = *so;
    s->n_plans = n_plans;
    const ms_energy_coeffs *c = &hw->energy;
    ms_status st = MS_OK;
    for (uint32_t i = 0; i < n_plans && st == MS_OK; i++) {
        ms_deploy_site_plan *pb = &s->plans[MS_SITE_BALANCED][i], *ps = &s->plans[MS_SITE_SKEWED][i];
        ms_deploy_plan p = plans[i];
        p.imbalance = 1.0;
        st = ms_deploy_evaluate(m, w, hw, &p, &pb->r, err);
        if (st != MS_OK) break;
        pb->imbalance = 1.0;
        st = skew_of(m, w, &plans[i], &pb->r, sk, &ps->imbalance, &ps->window, err);
        if (st != MS_OK) break;
        p.imbalance = ps->imbalance;
        st = ms_deploy_evaluate(m, w, hw, &p, &ps->r, err);
        if (st != MS_OK) break;
        /* the skewed site carries balanced batches too: provision the larger peak */
        pb->replica_gpu_w = ms_site_provisioned_w(c, so->provision, pb->r.gpus, pb->r.peak_w);
        ps->replica_gpu_w = ms_site_provisioned_w(c, so->provision, ps->r.gpus, fmax(pb->r.peak_w, ps->r.peak_w));
        for (int k = 0; k < MS_SITE_CASES && st == MS_OK; k++) {
            ms_deploy_site_plan *x = &s->plans[k][i];
            x->replica_site_w = ms_site_wall_w(c, x->r.gpus, x->replica_gpu_w);
            x->site_j_per_token =
                x->r.fits && x->r.tokens_per_s > 0 ? ms_site_wall_w(c, x->r.gpus, x->r.avg_w) / x->r.tokens_per_s : 0;
            for (uint32_t j = 0; j < so->n_sites && st == MS_OK; j++) {
                if (x->r.fits) {
                    st = ms_site_fit_eval(so->site_mw[j], x->replica_site_w, x->r.gpus, x->r.tokens_per_s, &x->fit[j],
                                          err);
                } else {
                    memset(&x->fit[j], 0, sizeof x->fit[j]);
                    x->fit[j].site_mw = so->site_mw[j];
                    x->fit[j].replica_site_w = x->replica_site_w;
                    x->fit[j].replica_gpus = x->r.gpus;
                }
            }
        }
    }
    if (st != MS_OK) {
        ms_free(s);
        return st;
    }
    for (int k = 0; k < MS_SITE_CASES; k++)
        for (uint32_t j = 0; j < so->n_sites; j++) {
            int32_t best = -1;
            for (uint32_t i = 0; i < n_plans; i++) {
                const ms_site_fit *f = &s->plans[k][i].fit[j];
                if (f->replicas && (best < 0 || f->tokens_per_s > s->plans[k][best].fit[j].tokens_per_s))
                    best = (int32_t)i;
            }
            s->winner[k][j] = best;
        }
    if (sk->trace)
        snprintf(s->skew_source, sizeof s->skew_source,
                 "measured from %.160s: max/mean expert load over each plan's EP ranks (%s layout), mean over windows of "
                 "%s and layers",
                 sk->trace->label, ms_ep_layout_name(sk->layout),
                 sk->window ? "the given tokens" : "its tokens per EP group per micro-batch");
    else if (sk->imbalance > 0)
        snprintf(s->skew_source, sizeof s->skew_source, "given: imbalance %g on every plan with ep > 1", sk->imbalance);
    else
        snprintf(s->skew_source, sizeof s->skew_source, "each plan's own imbalance");
    *out = s;
    return MS_OK;
}

/* does any plan's skewed case differ from its balanced one */
static bool any_skew(const ms_deploy_site *s) {
    for (uint32_t i = 0; i < s->n_plans; i++)
        if (s->plans[MS_SITE_SKEWED][i].imbalance != 1.0) return true;
    return false;
}

void ms_deploy_site_verdict(const ms_deploy_site *s, char *buf, size_t len) {
    size_t u = 0;
#define PUT(...)                                              \
    do {                                                      \
        if (u < len) {                                        \
            int k_ = snprintf(buf + u, len - u, __VA_ARGS__); \
            if (k_ > 0) u += (size_t)k_;                      \
        }                                                     \
    } while (0)
    if (len) buf[0] = '\0';
    int cases = any_skew(s) ? MS_SITE_CASES : 1;
    for (uint32_t j = 0; j < s->opts.n_sites; j++) {
        PUT("At %g MW (GPUs provisioned for %s)", s->opts.site_mw[j],
            s->opts.provision == MS_PROVISION_TDP ? "their TDP" : "their measured peak draw");
        for (int k = 0; k < cases; k++) {
            int32_t b = s->winner[k][j], b0 = s->winner[MS_SITE_BALANCED][j];
            PUT("%s", k == MS_SITE_BALANCED ? (cases > 1 ? ", balanced: " : ": ") : ". With skew, ");
            if (b < 0) {
                PUT("no plan gets a whole replica");
                continue;
            }
            const ms_deploy_site_plan *x = &s->plans[k][b];
            const ms_site_fit *f = &x->fit[j];
            PUT("%s %sserves the most, %.4g tokens/s (%llu replicas x %u GPU%s, %.4g tokens/s per MW, %.3g J/token at "
                "the wall)",
                x->r.plan.name, k == MS_SITE_SKEWED && b == b0 ? "still " : "", f->tokens_per_s,
                (unsigned long long)f->replicas, x->r.gpus, x->r.gpus == 1 ? "" : "s", f->tokens_per_s_per_mw,
                x->site_j_per_token);
            int32_t second = -1;
            for (uint32_t i = 0; i < s->n_plans; i++)
                if ((int32_t)i != b && s->plans[k][i].fit[j].replicas &&
                    (second < 0 || s->plans[k][i].fit[j].tokens_per_s > s->plans[k][second].fit[j].tokens_per_s))
                    second = (int32_t)i;
            if (second >= 0 && s->plans[k][second].fit[j].tokens_per_s > 0)
                PUT(", %.4gx %s", f->tokens_per_s / s->plans[k][second].fit[j].tokens_per_s,
                    s->plans[k][second].r.plan.name);
            if (k == MS_SITE_SKEWED && b0 >= 0 && s->plans[MS_SITE_SKEWED][b0].imbalance == 1.0) {
                PUT("; %s has no expert-load skew (ep %u)", s->plans[MS_SITE_SKEWED][b0].r.plan.name,
                    s->plans[MS_SITE_SKEWED][b0].r.plan.ep);
            } else if (k == MS_SITE_SKEWED && b0 >= 0) {
                const ms_site_fit *f0 = &s->plans[MS_SITE_BALANCED][b0].fit[j],
                                  *f1 = &s->plans[MS_SITE_SKEWED][b0].fit[j];
                PUT("; %s%s at imbalance %.3g %s %.1f%% of its balanced tokens/s", b0 != b ? "the skew changes the winner: " : "",
                    s->plans[MS_SITE_SKEWED][b0].r.plan.name, s->plans[MS_SITE_SKEWED][b0].imbalance,
                    b0 != b ? "loses" : "costs it",
                    f0->tokens_per_s > 0 ? 100.0 * (1.0 - f1->tokens_per_s / f0->tokens_per_s) : 0.0);
            }
        }
        PUT(".\n");
    }
#undef PUT
}

json_t *ms_site_fit_json(const ms_site_fit *f) {
    json_t *o = json_object();
    json_object_set_new(o, "site_mw", json_real(f->site_mw));
    json_object_set_new(o, "replicas", json_integer((json_int_t)f->replicas));
    json_object_set_new(o, "gpus", json_integer((json_int_t)f->gpus));
    json_object_set_new(o, "replica_site_w", json_real(f->replica_site_w));
    json_object_set_new(o, "tokens_per_s", json_real(f->tokens_per_s));
    json_object_set_new(o, "tokens_per_s_per_mw", json_real(f->tokens_per_s_per_mw));
    json_object_set_new(o, "used_mw", json_real(f->used_mw));
    return o;
}

json_t *ms_deploy_site_json(const ms_deploy_site *s) {
    json_t *root = json_object();
    json_object_set_new(root, "provision", json_string(ms_provision_name(s->opts.provision)));
    json_t *sm = json_array();
    for (uint32_t j = 0; j < s->opts.n_sites; j++) json_array_append_new(sm, json_real(s->opts.site_mw[j]));
    json_object_set_new(root, "sites_mw", sm);
    json_object_set_new(root, "skew_source", json_string(s->skew_source));
    json_t *cases = json_array();
    for (int k = 0; k < MS_SITE_CASES; k++) {
        json_t *cj = json_object();
        json_object_set_new(cj, "case", json_string(ms_site_case_name(k)));
        json_t *pa = json_array();
        for (uint32_t i = 0; i < s->n_plans; i++) {
            const ms_deploy_site_plan *x = &s->plans[k][i];
            json_t *o = json_object();
            json_object_set_new(o, "name", json_string(x->r.plan.name));
            json_object_set_new(o, "tp", json_integer(x->r.plan.tp));
            json_object_set_new(o, "pp", json_integer(x->r.plan.pp));
            json_object_set_new(o, "ep", json_integer(x->r.plan.ep));
            json_object_set_new(o, "dp", json_integer(x->r.plan.dp));
            json_object_set_new(o, "gpus", json_integer(x->r.gpus));
            json_object_set_new(o, "fits", json_boolean(x->r.fits));
            json_object_set_new(o, "imbalance", json_real(x->imbalance));
            json_object_set_new(o, "window_tokens", json_integer((json_int_t)x->window));
            json_object_set_new(o, "micro_batch", json_integer((json_int_t)x->r.micro_batch));
            json_object_set_new(o, "replica_tokens_per_s", json_real(x->r.tokens_per_s));
            json_object_set_new(o, "j_per_token", json_real(x->r.j_per_token));
            json_object_set_new(o, "site_j_per_token", json_real(x->site_j_per_token));
            json_object_set_new(o, "avg_w", json_real(x->r.avg_w));
            json_object_set_new(o, "peak_w", json_real(x->r.peak_w));
            json_object_set_new(o, "replica_gpu_w", json_real(x->replica_gpu_w));
            json_object_set_new(o, "replica_site_w", json_real(x->replica_site_w));
            json_t *fa = json_array();
            for (uint32_t j = 0; j < s->opts.n_sites; j++) json_array_append_new(fa, ms_site_fit_json(&x->fit[j]));
            json_object_set_new(o, "sites", fa);
            json_array_append_new(pa, o);
        }
        json_object_set_new(cj, "plans", pa);
        json_t *wa = json_array();
        for (uint32_t j = 0; j < s->opts.n_sites; j++) {
            json_t *o = json_object();
            int32_t b = s->winner[k][j];
            json_object_set_new(o, "site_mw", json_real(s->opts.site_mw[j]));
            json_object_set_new(o, "plan", b >= 0 ? json_string(s->plans[k][b].r.plan.name) : json_null());
            json_object_set_new(o, "index", json_integer(b));
            json_object_set_new(o, "tokens_per_s", json_real(b >= 0 ? s->plans[k][b].fit[j].tokens_per_s : 0));
            json_array_append_new(wa, o);
        }
        json_object_set_new(cj, "winners", wa);
        json_array_append_new(cases, cj);
    }
    json_object_set_new(root, "cases", cases);
    return root;
}
