/* scale.c - energy and power with model size, expert granularity sweeps,
 * trend fits and the site power wall (see moesim/deploy.h and
 * docs/MODEL.md, "Scaling"). */
#include "moesim/deploy.h"

#include <jansson.h>
#include <math.h>
#include <string.h>

void ms_scale_opts_default(ms_scale_opts *o) {
    memset(o, 0, sizeof *o);
    o->gpus_per_node = 8;
    o->precision = MS_PREC_BF16;
    o->experts = 64;
    o->top_k = 2;
    o->expert_matrices = 3;
    o->aspect = 96;
    o->expert_ratio = 0.5;
    o->vocab = 0;
    o->kv_ratio = 0.125;
    static const double sizes[] = {1e9, 3e9, 1e10, 3e10, 1e11, 3e11, 1e12, 3e12};
    o->n_sizes = sizeof sizes / sizeof sizes[0];
    memcpy(o->sizes, sizes, sizeof sizes);
    o->sweep_total = 1e12;
    static const uint32_t sw[] = {8, 16, 32, 64, 128, 256, 512, 1024};
    o->n_sweep = sizeof sw / sizeof sw[0];
    memcpy(o->sweep_experts, sw, sizeof sw);
    o->decode_batch = 256;
    o->context = 2048;
    o->mem_usable = 0.9;
    o->overlap_eff = 0.9;
    o->train_bytes_per_param = 16;
    o->train_seq = 4096;
    o->train_batch_tokens = 4194304;
    o->train_tokens = 1e12;
    o->n_sites = 3;
    o->site_mw[0] = 10;
    o->site_mw[1] = 100;
    o->site_mw[2] = 1000;
    o->provision = MS_PROVISION_MEASURED;
    o->wall_days = 90;
    o->tokens_per_param = 20;
    o->demand_tokens_per_s = 1e6;
    ms_skew_default(&o->skew);
}

/* ------------------------------------------------------------------ fits */

static ms_status fit_xy(const double *x, const double *y, size_t n, bool logs, ms_fit *out, ms_error *err) {
    memset(out, 0, sizeof *out);
    if (n < 2) return ms_error_set(err, MS_E_INPUT, "a fit needs at least 2 points, got %zu", n);
    double sx = 0, sy = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i]) || !isfinite(y[i]) || (logs && (x[i] <= 0 || y[i] <= 0)))
            return ms_error_set(err, MS_E_INPUT, "fit: point %zu (%g, %g) is not usable%s", i, x[i], y[i],
                                logs ? " (a power law needs positive values)" : "");
        sx += logs ? log(x[i]) : x[i];
        sy += logs ? log(y[i]) : y[i];
    }
    double mx = sx / n, my = sy / n, sxx = 0, sxy = 0, syy = 0;
    for (size_t i = 0; i < n; i++) {
        double dx = (logs ? log(x[i]) : x[i]) - mx, dy = (logs ? log(y[i]) : y[i]) - my;
        sxx += dx * dx;
        sxy += dx * dy;
        syy += dy * dy;
    }
    if (!(sxx > 0)) return ms_error_set(err, MS_E_INPUT, "fit: every x is the same");
    double b = sxy / sxx, a = my - b * mx;
    double ssr = 0;
    for (size_t i = 0; i < n; i++) {
        double xi = logs ? log(x[i]) : x[i], yi = logs ? log(y[i]) : y[i];
        double r = yi - (a + b * xi);
        ssr += r * r;
    }
    out->n = (uint32_t)n;
    out->b = b;
    out->a = logs ? exp(a) : a;
    out->r2 = syy > 0 ? 1.0 - ssr / syy : (ssr <= 0 ? 1.0 : 0.0);
    /* R^2 of the predictions in y itself */
    double my2 = 0, st = 0, sr = 0;
    for (size_t i = 0; i < n; i++) my2 += y[i];
    my2 /= n;
    for (size_t i = 0; i < n; i++) {
        double pred = logs ? out->a * pow(x[i], b) : a + b * x[i];
        st += (y[i] - my2) * (y[i] - my2);
        sr += (y[i] - pred) * (y[i] - pred);
    }
    out->r2_linear_space = st > 0 ? 1.0 - sr / st : (sr <= 0 ? 1.0 : 0.0);
    return MS_OK;
}

ms_status ms_fit_linear(const double *x, const double *y, size_t n, ms_fit *out, ms_error *err) {
    return fit_xy(x, y, n, false, out, err);
}

ms_status ms_fit_power_law(const double *x, const double *y, size_t n, ms_fit *out, ms_error *err) {
    return fit_xy(x, y, n, true, out, err);
}

/* ---------------------------------------------------------------- models */

typedef struct shape {
    double L, d, E, k, f;
    double w_att, w_exp, w_gate;
    double total, active;        /* with embeddings when vocab > 0 */
    double nonexp;               /* weights outside routed experts */
} shape;

static void make_shape(const ms_scale_opts *o, double L, double d, double E, double k, double f, shape *s) {
    s->L = L;
    s->d = d;
    s->E = E;
    s->k = k;
    s->f = f;
    s->w_att = 2.0 * d * d + 2.0 * d * (o->kv_ratio * d);
    s->w_exp = (double)o->expert_matrices * d * f;
    s->w_gate = d * E;
    double emb = 2.0 * o->vocab * d;
    s->nonexp = L * (s->w_att + s->w_gate) + emb;
    s->total = s->nonexp + L * E * s->w_exp;
    s->active = s->nonexp + L * k * s->w_exp;
}

static void family_dims(const ms_scale_opts *o, double d, double *L, double *f) {
    *L = fmax(2.0, round(d / o->aspect));
    *f = fmax(64.0, round(o->expert_ratio * d / 64.0) * 64.0);
}

typedef struct hwc {
    double peak, bw, nv, net, mem, b;
} hwc;

static void hw_consts(const ms_scale_opts *o, hwc *h) {
    const ms_hw_preset *g = &o->gpu;
    double tf = o->precision == MS_PREC_FP8 ? g->peak_tflops_fp8
                : o->precision == MS_PREC_FP32 ? g->peak_tflops_bf16 / 2.0
                                               : g->peak_tflops_bf16;
    h->peak = tf * 1e12 * g->mfu;
    h->bw = g->hbm_tb_s * 1e12 * g->hbm_util;
    h->nv = g->nvlink_gb_s * 1e9 * g->nvlink_efficiency;
    h->net = g->nic_gb_s * 1e9 * g->net_efficiency;
    h->mem = g->memory_gb * 1e9 * o->mem_usable;
    h->b = ms_precision_bytes(o->precision);
}

/* split of all-to-all bytes over G GPUs (uniform destinations) */
static void link_split(const ms_scale_opts *o, double G, double bytes, double *intra, double *inter) {
    double gpn = fmin(G, (double)o->gpus_per_node);
    *intra = bytes * (gpn - 1.0) / G;
    *inter = bytes * (G - gpn) / G;
}

/* EP ranks of a model with E experts on G GPUs: the largest divisor of E
 * not above G (whole experts per rank, an even layout) */
static uint32_t ep_ranks(double E, double G) {
    uint32_t e = (uint32_t)E, r = (uint32_t)fmin(E, fmax(1.0, G));
    while (r > 1 && e % r) r--;
    return r;
}

/* the work of one GPU in a run */
typedef struct gwork {
    double flops, bytes, intra, inter;
} gwork;

/* energy and time of a run on n[0] GPUs doing g[0] and n[1] doing g[1]
 * (the hot EP rank's GPUs and the others; n[1] = 0 when balanced): parts[]
 * J (idle power of the GPUs that finish early is waiting), returns the time
 * of the slowest; *peak_w = every GPU busy at once, each at most TDP */
static double run_cost(const ms_scale_opts *o, const hwc *h, const double n[2], const gwork g[2], double alpha_s,
                       double parts[MS_PART_COUNT], double *peak_w) {
    const ms_energy_coeffs *c = &o->energy;
    double t[2] = {0, 0}, pk = 0;
    memset(parts, 0, MS_PART_COUNT * sizeof parts[0]);
    for (int i = 0; i < 2; i++) {
        if (!(n[i] > 0)) continue;
        const gwork *x = &g[i];
        double tk = fmax(x->flops / h->peak, x->bytes / h->bw);
        double tc = x->intra > 0 || x->inter > 0 ? alpha_s + fmax(x->intra / h->nv, x->inter / h->net) : 0;
        t[i] = fmax(tk, tc) + (1.0 - o->overlap_eff) * fmin(tk, tc);
        double ec = x->flops * c->pj_per_flop[o->precision] * 1e-12, em = x->bytes * 8.0 * c->hbm_pj_per_bit * 1e-12;
        double ev = x->intra * 8.0 * c->nvlink_pj_per_bit * 1e-12;
        double en = x->inter * 8.0 * ms_energy_net_pj_per_bit(c) * 1e-12;
        parts[MS_PART_COMPUTE] += n[i] * ec;
        parts[MS_PART_MEMORY] += n[i] * em;
        parts[MS_PART_NVLINK] += n[i] * ev;
        parts[MS_PART_NETWORK] += n[i] * en;
        parts[MS_PART_STATIC] += n[i] * c->idle_w * t[i];
        double p = c->idle_w;
        if (tk > 0) p += (ec + em) / tk;
        if (tc > 0) p += (ev + en) / tc;
        pk += n[i] * fmin(p, c->tdp_w);
    }
    double T = fmax(t[0], t[1]);
    for (int i = 0; i < 2; i++)
        if (n[i] > 0) parts[MS_PART_WAIT] += n[i] * c->idle_w * (T - t[i]);
    *peak_w = pk;
    return T;
}

/* GPU counts of the hot rank and of the others, and their expert loads
 * relative to the mean, for imbalance x over R ranks of G GPUs */
static void hot_cold(double G, double R, double x, double n[2], double y[2]) {
    if (R <= 1 || x <= 1) {
        n[0] = G, n[1] = 0, y[0] = y[1] = 1;
        return;
    }
    n[0] = G / R, n[1] = G - G / R;
    y[0] = x, y[1] = (R - x) / (R - 1.0);
}

static double gpus_for(double bytes, double per_gpu) { return fmax(1.0, ceil(bytes / per_gpu)); }

/* training on G GPUs at imbalance x: per token time, energy parts (J/token), peak */
static double train_cost(const ms_scale_opts *o, const hwc *h, const shape *s, double G, double x,
                         double parts[MS_PART_COUNT], double *peak_w, double *flops_out) {
    double b = h->b, L = s->L, d = s->d;
    double flops = 6.0 * s->active + 6.0 * L * o->train_seq * d, f_exp = 6.0 * L * s->k * s->w_exp;
    /* weights re-read in forward, backward-data and backward-weight per micro-batch (one sequence per GPU),
     * optimizer state read and written once per step, activations written and read (34 d bytes per layer
     * in 16-bit, Korthikanti et al. 2022) */
    /* a step holds at least one sequence per GPU */
    double step_tokens = fmax(o->train_batch_tokens, G * o->train_seq);
    double bytes = 3.0 * s->total * b / (G * o->train_seq) +
                   2.0 * o->train_bytes_per_param * s->total / step_tokens + 68.0 * L * d * (b / 2.0);
    double a2a = 3.0 * 2.0 * L * s->k * d * b;
    double grad = G > 1 ? 2.0 * (G - 1.0) * s->nonexp * b / step_tokens : 0;
    double ai, ao, gi, go;
    link_split(o, G, a2a, &ai, &ao);
    link_split(o, G, grad, &gi, &go);
    /* the hot rank computes x times the mean expert FLOPs and sends x times the all-to-all */
    double n[2], y[2];
    hot_cold(G, ep_ranks(s->E, G), x, n, y);
    gwork g[2];
    for (int i = 0; i < 2; i++) {
        g[i].flops = (flops - f_exp + y[i] * f_exp) / G;
        g[i].bytes = bytes / G;
        g[i].intra = (y[i] * ai + gi) / G;
        g[i].inter = (y[i] * ao + go) / G;
    }
    double t = run_cost(o, h, n, g, 0, parts, peak_w);
    if (flops_out) *flops_out = flops;
    return t;
}

/* where the skewed case takes its imbalance for (EP ranks, window):
 * opts->skew's given value, or measured from its trace (memoised) */
#define SKEW_MEMO 64
typedef struct skewer {
    const ms_scale_opts *o;
    uint32_t n_memo;
    struct {
        uint32_t ranks;
        uint64_t win;
        double x;
    } memo[SKEW_MEMO];
} skewer;

static ms_status skew_value(skewer *k, uint32_t ranks, uint64_t window, double *x, ms_error *err) {
    const ms_skew *sk = &k->o->skew;
    if (ranks <= 1) {
        *x = 1.0;
        return MS_OK;
    }
    if (!sk->trace) {
        *x = fmin(sk->imbalance, (double)ranks); /* one rank cannot carry more than all the load */
        return MS_OK;
    }
    uint64_t win = sk->window ? sk->window : window;
    if (!win || win > sk->trace->n_tokens) win = sk->trace->n_tokens;
    for (uint32_t i = 0; i < k->n_memo; i++)
        if (k->memo[i].ranks == ranks && k->memo[i].win == win) {
            *x = k->memo[i].x;
            return MS_OK;
        }
    ms_status rc = ms_ep_imbalance(sk->trace, ranks, win, sk->layout, x, err);
    if (rc == MS_OK && k->n_memo < SKEW_MEMO) {
        k->memo[k->n_memo].ranks = ranks;
        k->memo[k->n_memo].win = win;
        k->memo[k->n_memo++].x = *x;
    }
    return rc;
}

/* one model at the skew of k (NULL: balanced) */
static ms_status point_eval(const ms_scale_opts *o, skewer *sk, uint32_t layers, uint32_t hidden, uint32_t experts,
                            uint32_t top_k, uint32_t expert_hidden, ms_scale_point *out, ms_error *err) {
    memset(out, 0, sizeof *out);
    if (!layers || !hidden || !experts || !top_k || !expert_hidden || top_k > experts)
        return ms_error_set(err, MS_E_INPUT, "scale: layers, hidden, experts, top_k (<= experts) and expert_hidden "
                                             "must be positive");
    hwc h;
    hw_consts(o, &h);
    shape s;
    make_shape(o, layers, hidden, experts, top_k, expert_hidden, &s);
    if (s.w_exp * h.b > h.mem || s.w_att * h.b > h.mem)
        return ms_error_set(err, MS_E_INPUT, "scale: one expert or one attention block (%.3g GB) exceeds a GPU",
                            fmax(s.w_exp, s.w_att) * h.b / 1e9);
    out->layers = layers;
    out->hidden = hidden;
    out->experts = experts;
    out->top_k = top_k;
    out->expert_hidden = expert_hidden;
    out->total_params = s.total;
    out->active_params = s.active;
    out->skew_known = true;
    const ms_energy_coeffs *c = &o->energy;
    /* inference: decode_batch sequences at context tokens, one token each per step */
    double B = o->decode_batch, S = o->context, b = h.b, L = s.L, d = s.d;
    double kv_tok = 2.0 * L * o->kv_ratio * d * b;
    double Gi = gpus_for(s.total * b + B * S * kv_tok, h.mem);
    /* the training run: the fewest GPUs that hold weights, gradients and optimizer state */
    double Gt = gpus_for(o->train_bytes_per_param * s.total, h.mem);
    out->gpus_infer = (uint32_t)Gi;
    out->gpus_train = (uint32_t)Gt;
    out->ep_ranks_infer = ep_ranks(s.E, Gi);
    out->ep_ranks_train = ep_ranks(s.E, Gt);
    out->infer_imbalance = out->train_imbalance = 1.0;
    if (sk) {
        ms_status st = skew_value(sk, out->ep_ranks_infer, o->decode_batch, &out->infer_imbalance, err);
        if (st == MS_OK)
            st = skew_value(sk, out->ep_ranks_train, (uint64_t)(out->ep_ranks_train * o->train_seq),
                            &out->train_imbalance, err);
        if (st != MS_OK) return st;
    }
    double flops = B * (2.0 * s.active + 4.0 * L * S * d), f_exp = B * 2.0 * L * s.k * s.w_exp;
    double bytes_ne = s.nonexp * b + B * S * kv_tok + B * L * 4.0 * d * b;
    double intra = 0, inter = 0;
    if (Gi > 1) link_split(o, Gi, 2.0 * B * L * s.k * d * b, &intra, &inter);
    double alpha = Gi > 1 ? 2.0 * L * (inter > 0 ? o->gpu.net_latency_us : o->gpu.nvlink_latency_us) * 1e-6 : 0;
    /* the hot rank computes and sends x times the mean; its experts are touched by x times the tokens */
    double n[2], y[2];
    hot_cold(Gi, out->ep_ranks_infer, out->infer_imbalance, n, y);
    gwork g[2];
    for (int i = 0; i < 2; i++) {
        double touched = s.E * (1.0 - pow(1.0 - s.k / s.E, y[i] * B));
        g[i].flops = (flops - f_exp + y[i] * f_exp) / Gi;
        g[i].bytes = (bytes_ne + L * touched * s.w_exp * b) / Gi;
        g[i].intra = y[i] * intra / Gi;
        g[i].inter = y[i] * inter / Gi;
    }
    double parts[MS_PART_COUNT], pk;
    double step = run_cost(o, &h, n, g, alpha, parts, &pk);
    out->infer_step_s = step;
    out->infer_tokens_per_s = B / step;
    double e = 0;
    for (int k = 0; k < MS_PART_COUNT; k++) {
        out->infer_parts[k] = parts[k] / B;
        e += parts[k];
    }
    out->infer_j_per_token = e / B;
    out->infer_avg_w = e / step;
    out->infer_peak_w = pk;
    out->infer_site_w = ms_site_wall_w(c, Gi, pk);
    double tt = train_cost(o, &h, &s, Gt, out->train_imbalance, parts, &pk, &out->train_flops_per_token);
    e = 0;
    for (int k = 0; k < MS_PART_COUNT; k++) {
        out->train_parts[k] = parts[k];
        e += parts[k];
    }
    out->train_j_per_token = e;
    out->train_avg_w = e / tt;
    out->train_peak_w = pk;
    out->train_site_w = ms_site_wall_w(c, Gt, pk);
    out->budget_j = e * o->train_tokens;
    out->budget_days = tt * o->train_tokens / 86400.0;
    out->budget_site_j = (out->budget_j + Gt * c->node_overhead_w * tt * o->train_tokens) * c->pue;
    return MS_OK;
}

ms_status ms_scale_point_eval(const ms_scale_opts *o, uint32_t layers, uint32_t hidden, uint32_t experts,
                              uint32_t top_k, uint32_t expert_hidden, ms_scale_point *out, ms_error *err) {
    return point_eval(o, NULL, layers, hidden, experts, top_k, expert_hidden, out, err);
}

static double family_total(const ms_scale_opts *o, double d) {
    double L, f;
    family_dims(o, d, &L, &f);
    shape s;
    make_shape(o, L, d, o->experts, o->top_k, f, &s);
    return s.total;
}

/* the family's hidden size closest (in log) to target total parameters */
static double solve_hidden(const ms_scale_opts *o, double target) {
    double best = 64, bd = INFINITY;
    for (double d = 64; d <= 131072; d += 64) {
        double dev = fabs(log(family_total(o, d)) - log(target));
        if (dev < bd) {
            bd = dev;
            best = d;
        }
    }
    return best;
}

void ms_scale_result_free(ms_scale_result *r) {
    if (!r) return;
    ms_free(r->points);
    ms_free(r->skew_points);
    ms_free(r->trends);
    for (int k = 0; k < MS_SITE_CASES; k++)
        for (uint32_t j = 0; j < MS_SITE_MAX; j++) ms_free(r->sites[k][j].fits);
    ms_free(r);
}

/* does the skew apply to a model of E experts (a trace measures its own expert count only) */
static bool skew_known(const ms_scale_opts *o, double E) {
    return !o->skew.trace || (uint32_t)E == o->skew.trace->n_experts;
}

static ms_status add_point(const ms_scale_opts *o, skewer *sk, ms_scale_result *r, uint32_t cap, const char *sweep,
                           double target, double L, double d, double E, double k, double f, ms_error *err) {
    if (r->n_points >= cap) return ms_error_set(err, MS_E_INTERNAL, "scale: too many points");
    ms_scale_point *p = &r->points[r->n_points], *q = &r->skew_points[r->n_points];
    uint32_t u[5] = {(uint32_t)L, (uint32_t)d, (uint32_t)E, (uint32_t)k, (uint32_t)f};
    ms_status st = point_eval(o, NULL, u[0], u[1], u[2], u[3], u[4], p, err);
    if (st != MS_OK) return st;
    if (skew_known(o, E)) {
        st = point_eval(o, sk, u[0], u[1], u[2], u[3], u[4], q, err);
        if (st != MS_OK) return st;
    } else {
        *q = *p;
        q->skew_known = false;
    }
    snprintf(p->sweep, sizeof p->sweep, "%s", sweep);
    snprintf(q->sweep, sizeof q->sweep, "%s", sweep);
    p->target = q->target = target;
    r->n_points++;
    return MS_OK;
}

/* wall power of one inference replica of point x (balanced point b) in case k
 * as provisioned: the skewed case carries balanced batches too, so its
 * measured provision is the larger of the two peaks */
static double replica_site_w(const ms_scale_opts *o, const ms_scale_point *b, const ms_scale_point *x, int k) {
    const ms_energy_coeffs *c = &o->energy;
    double meas = k == MS_SITE_SKEWED ? fmax(b->infer_peak_w, x->infer_peak_w) : b->infer_peak_w;
    return ms_site_wall_w(c, x->gpus_infer, ms_site_provisioned_w(c, o->provision, x->gpus_infer, meas));
}

static ms_status fit_point(const ms_scale_opts *o, const ms_scale_point *b, const ms_scale_point *x, int k,
                           double site_mw, ms_site_fit *f, ms_error *err) {
    if (!x->skew_known) {
        memset(f, 0, sizeof *f);
        f->site_mw = site_mw;
        return MS_OK;
    }
    return ms_site_fit_eval(site_mw, replica_site_w(o, b, x, k), x->gpus_infer, x->infer_tokens_per_s, f, err);
}

/* GPUs a site of P W powers for training shape s at imbalance x: at TDP
 * floor(P / ((TDP + overhead) PUE)); measured, the largest count whose
 * training draw (skewed: the larger of the balanced and skewed peaks) fits
 * at the wall, found by bisection from the TDP count (always feasible) */
static double train_gpus(const ms_scale_opts *o, const hwc *h, const shape *s, double P, double x) {
    const ms_energy_coeffs *c = &o->energy;
    double lo = floor(P / ((c->tdp_w + c->node_overhead_w) * c->pue));
    if (o->provision == MS_PROVISION_TDP) return lo;
    double hi = floor(P / ms_site_wall_w(c, 1, c->idle_w)) + 1; /* infeasible */
    while (hi - lo > 1) {
        double G = floor((lo + hi) / 2), parts[MS_PART_COUNT], pb, px = 0;
        train_cost(o, h, s, G, 1.0, parts, &pb, NULL);
        if (x > 1) train_cost(o, h, s, G, x, parts, &px, NULL);
        if (ms_site_wall_w(c, G, fmax(pb, px)) <= P) lo = G;
        else hi = G;
    }
    return lo;
}

/* the largest family model trainable in wall_days on the GPUs a site of
 * w->site_mw powers, in case k */
static ms_status train_wall(const ms_scale_opts *o, skewer *sk, int k, ms_scale_wall *w, ms_error *err) {
    hwc h;
    hw_consts(o, &h);
    const ms_energy_coeffs *c = &o->energy;
    double P = w->site_mw * 1e6;
    double Gtdp = floor(P / ((c->tdp_w + c->node_overhead_w) * c->pue));
    w->gpus_tdp = (uint32_t)fmin(Gtdp, 4294967295.0);
    w->gpus = w->gpus_tdp;
    w->imbalance = 1.0;
    for (double d = 64; d <= 131072 && Gtdp >= 1; d += 64) {
        double L, f;
        family_dims(o, d, &L, &f);
        shape s;
        make_shape(o, L, d, o->experts, o->top_k, f, &s);
        if (s.w_exp * h.b > h.mem || s.w_att * h.b > h.mem) break;
        double x = 1.0;
        if (k == MS_SITE_SKEWED) {
            uint32_t R = ep_ranks(s.E, Gtdp);
            ms_status st = skew_value(sk, R, (uint64_t)(R * o->train_seq), &x, err);
            if (st != MS_OK) return st;
        }
        double G = train_gpus(o, &h, &s, P, x);
        if (o->train_bytes_per_param * s.total > G * h.mem) break; /* grows with d */
        double parts[MS_PART_COUNT], pk;
        double t = train_cost(o, &h, &s, G, x, parts, &pk, NULL);
        double D = o->tokens_per_param * s.total;
        double days = t * D / 86400.0;
        if (days > o->wall_days) break; /* training time grows with d */
        ms_status st = point_eval(o, k == MS_SITE_SKEWED ? sk : NULL, (uint32_t)L, (uint32_t)d, o->experts,
                                  o->top_k, (uint32_t)f, &w->compute, err);
        if (st != MS_OK) return st;
        snprintf(w->compute.sweep, sizeof w->compute.sweep, "wall");
        w->compute_found = true;
        w->gpus = (uint32_t)fmin(G, 4294967295.0);
        w->imbalance = x;
        w->compute_days = days;
        double e = 0;
        for (int i = 0; i < MS_PART_COUNT; i++) e += parts[i];
        w->compute_energy_j = e * D;
        w->compute_site_j = (e * D + G * c->node_overhead_w * t * D) * c->pue;
    }
    w->memory_max_params = w->gpus * h.mem / o->train_bytes_per_param;
    return MS_OK;
}

/* every site in every case: replicas of each point, winners, serving and
 * training walls */
static ms_status site_answers(const ms_scale_opts *o, skewer *sk, ms_scale_result *r, ms_error *err) {
    r->n_sites = o->n_sites;
    for (int k = 0; k < MS_SITE_CASES; k++)
        for (uint32_t j = 0; j < o->n_sites; j++) {
            ms_scale_site *z = &r->sites[k][j];
            z->site_mw = o->site_mw[j];
            z->fits = ms_calloc_array(r->n_points ? r->n_points : 1, sizeof *z->fits, err);
            if (!z->fits) return MS_E_NOMEM;
            z->best_tokens = z->best_size = z->best_sweep = z->best_quality = -1;
            const ms_scale_point *pts = k == MS_SITE_SKEWED ? r->skew_points : r->points;
            double top = 0;
            for (uint32_t i = 0; i < r->n_points; i++) {
                ms_status st = fit_point(o, &r->points[i], &pts[i], k, z->site_mw, &z->fits[i], err);
                if (st != MS_OK) return st;
                const ms_site_fit *f = &z->fits[i];
                if (!f->replicas) continue;
                bool size = strcmp(pts[i].sweep, "size") == 0;
                int32_t *best[3] = {&z->best_tokens, size ? &z->best_size : &z->best_sweep, NULL};
                for (int b = 0; best[b]; b++)
                    if (*best[b] < 0 || f->tokens_per_s > z->fits[*best[b]].tokens_per_s) *best[b] = (int32_t)i;
                if (f->tokens_per_s >= o->demand_tokens_per_s) top = fmax(top, pts[i].total_params);
            }
            /* quality: the most total parameters serving the demand; models within 1% of it (one size,
             * rounded: the fixed-total sweeps) are equal, the one serving more tokens/s wins */
            for (uint32_t i = 0; i < r->n_points; i++) {
                const ms_site_fit *f = &z->fits[i];
                int32_t q = z->best_quality;
                if (f->replicas && f->tokens_per_s >= o->demand_tokens_per_s && pts[i].total_params >= top / 1.01 &&
                    (q < 0 || f->tokens_per_s > z->fits[q].tokens_per_s))
                    z->best_quality = (int32_t)i;
            }
            z->train.site_mw = z->site_mw;
            ms_status st = train_wall(o, sk, k, &z->train, err);
            if (st != MS_OK) return st;
        }
    /* the serving wall: scan the family's hidden sizes once, every site at each */
    hwc h;
    hw_consts(o, &h);
    for (double d = 64; d <= 131072; d += 64) {
        double L, f;
        family_dims(o, d, &L, &f);
        shape s;
        make_shape(o, L, d, o->experts, o->top_k, f, &s);
        if (s.w_exp * h.b > h.mem || s.w_att * h.b > h.mem) break;
        ms_scale_point p[MS_SITE_CASES];
        for (int k = 0; k < MS_SITE_CASES; k++) {
            ms_status st = point_eval(o, k == MS_SITE_SKEWED ? sk : NULL, (uint32_t)L, (uint32_t)d, o->experts,
                                      o->top_k, (uint32_t)f, &p[k], err);
            if (st != MS_OK) return st;
            snprintf(p[k].sweep, sizeof p[k].sweep, "serve");
        }
        for (int k = 0; k < MS_SITE_CASES; k++)
            for (uint32_t j = 0; j < o->n_sites; j++) {
                ms_scale_site *z = &r->sites[k][j];
                ms_site_fit fit;
                ms_status st = fit_point(o, &p[0], &p[k], k, z->site_mw, &fit, err);
                if (st != MS_OK) return st;
                if (fit.replicas && fit.tokens_per_s >= o->demand_tokens_per_s) {
                    z->serve_found = true;
                    z->serve = p[k];
                    z->serve_fit = fit;
                }
            }
    }
    return MS_OK;
}

ms_status ms_scale_run(const ms_scale_opts *o, ms_scale_result **out, ms_error *err) {
    *out = NULL;
    if (o->n_sizes > 32 || o->n_sweep > 32 || o->n_sites > MS_SITE_MAX)
        return ms_error_set(err, MS_E_INPUT, "scale: at most 32 sizes, 32 sweep points and %d sites", MS_SITE_MAX);
    if (!o->experts || !o->top_k || o->top_k > o->experts || (o->expert_matrices != 2 && o->expert_matrices != 3))
        return ms_error_set(err, MS_E_INPUT, "scale: experts, top_k (<= experts) and expert_matrices (2 or 3) are "
                                             "inconsistent");
    if (!(o->aspect > 0) || !(o->expert_ratio > 0) || !(o->kv_ratio > 0 && o->kv_ratio <= 1) ||
        !(o->mem_usable > 0 && o->mem_usable <= 1) || !(o->overlap_eff >= 0 && o->overlap_eff <= 1) ||
        !o->decode_batch || !o->context || !(o->train_bytes_per_param > 0) || !(o->train_seq > 0) ||
        !(o->train_batch_tokens > 0) || !(o->train_tokens >= 0) || !(o->wall_days > 0) || !(o->tokens_per_param > 0))
        return ms_error_set(err, MS_E_INPUT, "scale: an option is out of range");
    for (uint32_t i = 0; i < o->n_sizes; i++)
        if (!(o->sizes[i] >= 1e6 && o->sizes[i] <= 1e15))
            return ms_error_set(err, MS_E_INPUT, "scale: size %g is outside 1e6..1e15 parameters", o->sizes[i]);
    for (uint32_t i = 0; i < o->n_sites; i++)
        if (!(o->site_mw[i] > 0) || !isfinite(o->site_mw[i]))
            return ms_error_set(err, MS_E_INPUT, "scale: site power %g MW must be a positive number", o->site_mw[i]);
    if (!(o->demand_tokens_per_s > 0) || !isfinite(o->demand_tokens_per_s))
        return ms_error_set(err, MS_E_INPUT, "scale: demand %g tokens/s must be a positive number",
                            o->demand_tokens_per_s);
    if (!o->skew.trace && !(o->skew.imbalance >= 1 && isfinite(o->skew.imbalance)))
        return ms_error_set(err, MS_E_INPUT, "scale: imbalance %g must be at least 1 (max/mean)", o->skew.imbalance);
    if (o->skew.trace && o->skew.trace->n_experts != o->experts)
        return ms_error_set(err, MS_E_INPUT,
                            "scale: the skew trace %s has %u experts per layer, the family %u (give --experts %u)",
                            o->skew.trace->label, o->skew.trace->n_experts, o->experts, o->skew.trace->n_experts);
    if (ms_energy_check(&o->energy, err) != MS_OK) return MS_E_INPUT;
    if (!(o->gpu.peak_tflops_bf16 > 0 && o->gpu.memory_gb > 0 && o->gpu.hbm_tb_s > 0 && o->gpu.mfu > 0 &&
          o->gpu.hbm_util > 0 && o->gpu.nvlink_gb_s > 0 && o->gpu.nic_gb_s > 0 && o->gpus_per_node))
        return ms_error_set(err, MS_E_INPUT, "scale: hardware %s is missing a figure", o->gpu.name);
    ms_scale_result *r = ms_calloc_array(1, sizeof *r, err);
    if (!r) return MS_E_NOMEM;
    skewer sk;
    memset(&sk, 0, sizeof sk);
    sk.o = o;
    uint32_t cap = o->n_sizes + 2 * o->n_sweep;
    r->points = ms_calloc_array(cap ? cap : 1, sizeof *r->points, err);
    r->skew_points = ms_calloc_array(cap ? cap : 1, sizeof *r->skew_points, err);
    r->trends = ms_calloc_array(16, sizeof *r->trends, err);
    ms_status st = (!r->points || !r->skew_points || !r->trends) ? MS_E_NOMEM : MS_OK;
    /* the size family */
    for (uint32_t i = 0; i < o->n_sizes && st == MS_OK; i++) {
        double d = solve_hidden(o, o->sizes[i]), L, f;
        family_dims(o, d, &L, &f);
        st = add_point(o, &sk, r, cap, "size", o->sizes[i], L, d, o->experts, o->top_k, f, err);
    }
    uint32_t n_size = r->n_points;
    /* fixed total weights, more and smaller experts */
    if (st == MS_OK && o->sweep_total > 0) {
        double d = solve_hidden(o, o->sweep_total), L, f0;
        family_dims(o, d, &L, &f0);
        for (int mode = 0; mode < 2 && st == MS_OK; mode++) {
            for (uint32_t i = 0; i < o->n_sweep && st == MS_OK; i++) {
                double E = o->sweep_experts[i];
                if (E < 1) continue;
                double f = fmax(1.0, round(f0 * o->experts / E));
                double k = mode == 0 ? fmin((double)o->top_k, E) : (double)o->top_k * E / o->experts;
                if (mode == 1 && (k < 1 || k != floor(k))) continue; /* active params cannot stay fixed */
                st = add_point(o, &sk, r, cap, mode == 0 ? "experts-fixed-k" : "experts-scaled-k", o->sweep_total, L,
                               d, E, k, f, err);
            }
        }
    }
    /* trends over the size family */
    if (st == MS_OK && n_size >= 2) {
        static const char *metrics[] = {"infer_j_per_token", "train_j_per_token", "gpus_train", "infer_peak_w",
                                        "train_peak_w", "budget_j", "infer_avg_w"};
        double x[32], y[32];
        for (size_t mi = 0; mi < sizeof metrics / sizeof metrics[0] && st == MS_OK; mi++) {
            for (int xa = 0; xa < 2 && st == MS_OK; xa++) {
                for (uint32_t i = 0; i < n_size; i++) {
                    const ms_scale_point *p = &r->points[i];
                    x[i] = xa == 0 ? p->total_params : p->active_params;
                    y[i] = mi == 0 ? p->infer_j_per_token
                           : mi == 1 ? p->train_j_per_token
                           : mi == 2 ? p->gpus_train
                           : mi == 3 ? p->infer_peak_w
                           : mi == 4 ? p->train_peak_w
                           : mi == 5 ? p->budget_j
                                     : p->infer_avg_w;
                }
                if (r->n_trends >= 16) break;
                ms_scale_trend *t = &r->trends[r->n_trends];
                snprintf(t->metric, sizeof t->metric, "%s", metrics[mi]);
                snprintf(t->x, sizeof t->x, "%s", xa == 0 ? "total" : "active");
                ms_error e2 = {0};
                if (ms_fit_linear(x, y, n_size, &t->linear, &e2) != MS_OK ||
                    ms_fit_power_law(x, y, n_size, &t->power, &e2) != MS_OK)
                    continue; /* e.g. every size mapped to one model */
                t->power_wins = t->power.r2_linear_space > t->linear.r2;
                r->n_trends++;
            }
        }
    }
    /* the site budget: serving and training walls, balanced and skewed */
    if (st == MS_OK) st = site_answers(o, &sk, r, err);
    if (st != MS_OK) {
        ms_scale_result_free(r);
        return st;
    }
    if (o->skew.trace)
        snprintf(r->skew_source, sizeof r->skew_source,
                 "measured from %.160s: max/mean expert load over each model's EP ranks (%s layout), mean over windows "
                 "of %s and layers",
                 o->skew.trace->label, ms_ep_layout_name(o->skew.layout),
                 o->skew.window ? "the given tokens" : "a decode step (inference) or EP ranks x a sequence (training)");
    else
        snprintf(r->skew_source, sizeof r->skew_source, "given: imbalance %g (at most the EP ranks)",
                 o->skew.imbalance);
    *out = r;
    return MS_OK;
}

static json_t *parts_json(const double *p) {
    json_t *o = json_object();
    for (int k = 0; k < MS_PART_COUNT; k++) json_object_set_new(o, ms_power_part_name((ms_power_part)k), json_real(p[k]));
    return o;
}

static json_t *point_json(const ms_scale_point *p) {
    json_t *o = json_object();
    json_object_set_new(o, "sweep", json_string(p->sweep));
    json_object_set_new(o, "target_params", json_real(p->target));
    json_object_set_new(o, "layers", json_integer(p->layers));
    json_object_set_new(o, "hidden", json_integer(p->hidden));
    json_object_set_new(o, "experts", json_integer(p->experts));
    json_object_set_new(o, "top_k", json_integer(p->top_k));
    json_object_set_new(o, "expert_hidden", json_integer(p->expert_hidden));
    json_object_set_new(o, "total_params", json_real(p->total_params));
    json_object_set_new(o, "active_params", json_real(p->active_params));
    json_object_set_new(o, "gpus_infer", json_integer(p->gpus_infer));
    json_object_set_new(o, "infer_step_s", json_real(p->infer_step_s));
    json_object_set_new(o, "infer_tokens_per_s", json_real(p->infer_tokens_per_s));
    json_object_set_new(o, "infer_j_per_token", json_real(p->infer_j_per_token));
    json_object_set_new(o, "infer_avg_w", json_real(p->infer_avg_w));
    json_object_set_new(o, "infer_peak_w", json_real(p->infer_peak_w));
    json_object_set_new(o, "infer_site_w", json_real(p->infer_site_w));
    json_object_set_new(o, "infer_parts_j_per_token", parts_json(p->infer_parts));
    json_object_set_new(o, "gpus_train", json_integer(p->gpus_train));
    json_object_set_new(o, "train_flops_per_token", json_real(p->train_flops_per_token));
    json_object_set_new(o, "train_j_per_token", json_real(p->train_j_per_token));
    json_object_set_new(o, "train_avg_w", json_real(p->train_avg_w));
    json_object_set_new(o, "train_peak_w", json_real(p->train_peak_w));
    json_object_set_new(o, "train_site_w", json_real(p->train_site_w));
    json_object_set_new(o, "train_parts_j_per_token", parts_json(p->train_parts));
    json_object_set_new(o, "budget_j", json_real(p->budget_j));
    json_object_set_new(o, "budget_days", json_real(p->budget_days));
    json_object_set_new(o, "budget_site_j", json_real(p->budget_site_j));
    return o;
}

static json_t *fit_json(const ms_fit *f) {
    json_t *o = json_object();
    json_object_set_new(o, "a", json_real(f->a));
    json_object_set_new(o, "b", json_real(f->b));
    json_object_set_new(o, "r2", json_real(f->r2));
    json_object_set_new(o, "r2_linear_space", json_real(f->r2_linear_space));
    return o;
}

static json_t *wall_json(const ms_scale_wall *w) {
    json_t *o2 = json_object();
    json_object_set_new(o2, "site_mw", json_real(w->site_mw));
    json_object_set_new(o2, "gpus", json_integer(w->gpus));
    json_object_set_new(o2, "gpus_tdp", json_integer(w->gpus_tdp));
    json_object_set_new(o2, "memory_max_params", json_real(w->memory_max_params));
    json_object_set_new(o2, "imbalance", json_real(w->imbalance));
    if (w->compute_found) {
        json_object_set_new(o2, "compute_model", point_json(&w->compute));
        json_object_set_new(o2, "compute_days", json_real(w->compute_days));
        json_object_set_new(o2, "compute_energy_j", json_real(w->compute_energy_j));
        json_object_set_new(o2, "compute_site_j", json_real(w->compute_site_j));
    } else {
        json_object_set_new(o2, "compute_model", json_null());
    }
    return o2;
}

/* a point index as {index, sweep, total_params, active_params, tokens_per_s} or null */
static json_t *pick_json(const ms_scale_site *z, const ms_scale_point *pts, int32_t i) {
    if (i < 0) return json_null();
    json_t *o = json_object();
    json_object_set_new(o, "index", json_integer(i));
    json_object_set_new(o, "sweep", json_string(pts[i].sweep));
    json_object_set_new(o, "total_params", json_real(pts[i].total_params));
    json_object_set_new(o, "active_params", json_real(pts[i].active_params));
    json_object_set_new(o, "replicas", json_integer((json_int_t)z->fits[i].replicas));
    json_object_set_new(o, "tokens_per_s", json_real(z->fits[i].tokens_per_s));
    return o;
}

static json_t *site_json(const ms_scale_result *r, const ms_scale_opts *o) {
    json_t *root = json_object();
    json_object_set_new(root, "provision", json_string(ms_provision_name(o->provision)));
    json_object_set_new(root, "demand_tokens_per_s", json_real(o->demand_tokens_per_s));
    json_object_set_new(root, "quality_proxy", json_string("total_params"));
    json_object_set_new(root, "skew_source", json_string(r->skew_source));
    json_t *cases = json_array();
    for (int k = 0; k < MS_SITE_CASES; k++) {
        const ms_scale_point *pts = k == MS_SITE_SKEWED ? r->skew_points : r->points;
        json_t *cj = json_object();
        json_object_set_new(cj, "case", json_string(ms_site_case_name(k)));
        json_t *pa = json_array();
        for (uint32_t i = 0; i < r->n_points; i++) {
            const ms_scale_point *p = &pts[i];
            json_t *pj = json_object();
            json_object_set_new(pj, "index", json_integer(i));
            json_object_set_new(pj, "sweep", json_string(p->sweep));
            json_object_set_new(pj, "total_params", json_real(p->total_params));
            json_object_set_new(pj, "active_params", json_real(p->active_params));
            json_object_set_new(pj, "experts", json_integer(p->experts));
            json_object_set_new(pj, "skew_known", json_boolean(p->skew_known));
            json_object_set_new(pj, "gpus_per_replica", json_integer(p->gpus_infer));
            json_object_set_new(pj, "ep_ranks", json_integer(p->ep_ranks_infer));
            json_object_set_new(pj, "imbalance", p->skew_known ? json_real(p->infer_imbalance) : json_null());
            json_object_set_new(pj, "replica_tokens_per_s",
                                p->skew_known ? json_real(p->infer_tokens_per_s) : json_null());
            json_object_set_new(pj, "replica_peak_w", p->skew_known ? json_real(p->infer_peak_w) : json_null());
            json_t *fa = json_array();
            for (uint32_t j = 0; j < r->n_sites; j++) json_array_append_new(fa, ms_site_fit_json(&r->sites[k][j].fits[i]));
            json_object_set_new(pj, "sites", fa);
            json_array_append_new(pa, pj);
        }
        json_object_set_new(cj, "points", pa);
        json_t *sa = json_array();
        for (uint32_t j = 0; j < r->n_sites; j++) {
            const ms_scale_site *z = &r->sites[k][j];
            json_t *sj = json_object();
            json_object_set_new(sj, "site_mw", json_real(z->site_mw));
            json_object_set_new(sj, "best_tokens", pick_json(z, pts, z->best_tokens));
            json_object_set_new(sj, "best_size", pick_json(z, pts, z->best_size));
            json_object_set_new(sj, "best_sweep", pick_json(z, pts, z->best_sweep));
            json_object_set_new(sj, "best_quality", pick_json(z, pts, z->best_quality));
            if (z->serve_found) {
                json_t *sv = point_json(&z->serve);
                json_object_set_new(sv, "imbalance", json_real(z->serve.infer_imbalance));
                json_object_set_new(sv, "fit", ms_site_fit_json(&z->serve_fit));
                json_object_set_new(sj, "serving_limit", sv);
            } else {
                json_object_set_new(sj, "serving_limit", json_null());
            }
            json_object_set_new(sj, "training_limit", wall_json(&z->train));
            json_array_append_new(sa, sj);
        }
        json_object_set_new(cj, "sites", sa);
        json_array_append_new(cases, cj);
    }
    json_object_set_new(root, "cases", cases);
    return root;
}

json_t *ms_scale_result_json(const ms_scale_result *r, const ms_scale_opts *o) {
    json_t *root = json_object();
    json_t *opt = json_object();
    json_object_set_new(opt, "gpu", json_string(o->gpu.name));
    json_object_set_new(opt, "energy", ms_energy_json(&o->energy));
    json_object_set_new(opt, "precision", json_string(ms_precision_name(o->precision)));
    json_object_set_new(opt, "experts", json_integer(o->experts));
    json_object_set_new(opt, "top_k", json_integer(o->top_k));
    json_object_set_new(opt, "expert_matrices", json_integer(o->expert_matrices));
    json_object_set_new(opt, "aspect", json_real(o->aspect));
    json_object_set_new(opt, "expert_ratio", json_real(o->expert_ratio));
    json_object_set_new(opt, "kv_ratio", json_real(o->kv_ratio));
    json_object_set_new(opt, "vocab", json_integer(o->vocab));
    json_object_set_new(opt, "decode_batch", json_integer(o->decode_batch));
    json_object_set_new(opt, "context", json_integer(o->context));
    json_object_set_new(opt, "mem_usable", json_real(o->mem_usable));
    json_object_set_new(opt, "overlap_eff", json_real(o->overlap_eff));
    json_object_set_new(opt, "train_bytes_per_param", json_real(o->train_bytes_per_param));
    json_object_set_new(opt, "train_seq", json_real(o->train_seq));
    json_object_set_new(opt, "train_batch_tokens", json_real(o->train_batch_tokens));
    json_object_set_new(opt, "train_tokens", json_real(o->train_tokens));
    json_object_set_new(opt, "wall_days", json_real(o->wall_days));
    json_object_set_new(opt, "tokens_per_param", json_real(o->tokens_per_param));
    json_object_set_new(opt, "provision", json_string(ms_provision_name(o->provision)));
    json_object_set_new(opt, "demand_tokens_per_s", json_real(o->demand_tokens_per_s));
    json_object_set_new(opt, "imbalance", o->skew.trace ? json_null() : json_real(o->skew.imbalance));
    json_object_set_new(opt, "imbalance_trace", o->skew.trace ? json_string(o->skew.trace->label) : json_null());
    json_object_set_new(opt, "imbalance_layout", json_string(ms_ep_layout_name(o->skew.layout)));
    json_object_set_new(opt, "imbalance_window", json_integer((json_int_t)o->skew.window));
    json_object_set_new(root, "options", opt);
    json_t *pts = json_array();
    for (uint32_t i = 0; i < r->n_points; i++) json_array_append_new(pts, point_json(&r->points[i]));
    json_object_set_new(root, "points", pts);
    json_t *tr = json_array();
    for (uint32_t i = 0; i < r->n_trends; i++) {
        const ms_scale_trend *t = &r->trends[i];
        json_t *o2 = json_object();
        json_object_set_new(o2, "metric", json_string(t->metric));
        json_object_set_new(o2, "x", json_string(t->x));
        json_object_set_new(o2, "linear", fit_json(&t->linear));
        json_object_set_new(o2, "power_law", fit_json(&t->power));
        json_object_set_new(o2, "better", json_string(t->power_wins ? "power_law" : "linear"));
        json_array_append_new(tr, o2);
    }
    json_object_set_new(root, "trends", tr);
    json_t *wl = json_array();
    for (uint32_t i = 0; i < r->n_sites; i++) json_array_append_new(wl, wall_json(&r->sites[MS_SITE_BALANCED][i].train));
    json_object_set_new(root, "power_wall", wl);
    json_object_set_new(root, "site_budget", site_json(r, o));
    return root;
}
