/* deploy.c - analytic model of a whole MoE deployment (see moesim/deploy.h
 * and docs/MODEL.md, "Deployments"). */
#include "moesim/deploy.h"

#include <jansson.h>
#include <math.h>
#include <string.h>

void ms_deploy_model_default(ms_deploy_model *m) {
    memset(m, 0, sizeof *m);
    m->expert_matrices = 2;
    m->precision = MS_PREC_BF16;
}

void ms_deploy_workload_default(ms_deploy_workload *w) {
    memset(w, 0, sizeof *w);
    w->phase = MS_DEPLOY_PREFILL;
    w->sequences = 1;
    w->seq_len = 1;
    w->causal = true;
    w->flash = true;
}

void ms_deploy_plan_default(ms_deploy_plan *p) {
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "plan");
    p->tp = p->pp = p->ep = p->dp = 1;
    p->overlap = false;
    p->overlap_eff = 0.9;
    p->imbalance = 1.0;
}

static uint32_t kvh(const ms_deploy_model *m) { return m->kv_heads ? m->kv_heads : m->heads; }

ms_status ms_deploy_model_check(const ms_deploy_model *m, ms_error *err) {
    const char *n = m->name[0] ? m->name : "model";
    if (!m->layers || !m->hidden || !m->heads || !m->head_dim)
        return ms_error_set(err, MS_E_INPUT, "%s: layers, hidden, heads and head_dim must be positive", n);
    if (m->dense_layers > m->layers)
        return ms_error_set(err, MS_E_INPUT, "%s: %u dense layers but only %u layers", n, m->dense_layers, m->layers);
    if (m->heads % kvh(m) != 0)
        return ms_error_set(err, MS_E_INPUT, "%s: kv_heads %u must divide heads %u", n, kvh(m), m->heads);
    if (m->expert_matrices != 2 && m->expert_matrices != 3)
        return ms_error_set(err, MS_E_INPUT, "%s: expert_matrices must be 2 (up, down) or 3 (gate, up, down)", n);
    if (m->layers > m->dense_layers) {
        if (!m->experts || !m->expert_hidden)
            return ms_error_set(err, MS_E_INPUT, "%s: MoE layers need experts and expert_hidden", n);
        if (!m->top_k || m->top_k > m->experts)
            return ms_error_set(err, MS_E_INPUT, "%s: top_k %u must be in 1..experts (%u)", n, m->top_k, m->experts);
    }
    if (m->dense_layers && !m->dense_hidden)
        return ms_error_set(err, MS_E_INPUT, "%s: dense layers need dense_hidden", n);
    return MS_OK;
}

/* per-layer weight counts */
static double w_att(const ms_deploy_model *m) {
    double d = m->hidden, q = (double)m->heads * m->head_dim, kv = (double)kvh(m) * m->head_dim;
    return 2.0 * d * q + 2.0 * d * kv;
}
static double w_exp(const ms_deploy_model *m) { return (double)m->expert_matrices * m->hidden * m->expert_hidden; }
static double w_dense(const ms_deploy_model *m) { return (double)m->expert_matrices * m->hidden * m->dense_hidden; }
static double w_gate(const ms_deploy_model *m) { return (double)m->hidden * m->experts; }

void ms_deploy_params(const ms_deploy_model *m, double *total, double *active) {
    double L = m->layers, Ld = m->dense_layers, Lm = L - Ld;
    double base = L * w_att(m) + Ld * w_dense(m) + Lm * w_gate(m) + 2.0 * m->vocab * (double)m->hidden;
    if (total) *total = base + Lm * ((double)m->experts + m->shared_experts) * w_exp(m);
    if (active) *active = base + Lm * ((double)m->top_k + m->shared_experts) * w_exp(m);
}

/* ---------------------------------------------------------------- costs */

typedef struct ctx {
    const ms_deploy_model *m;
    const ms_deploy_workload *w;
    const ms_deploy_hw *hw;
    const ms_deploy_plan *p;
    double b, bd;          /* bytes per value, per dispatched value */
    double A;              /* attention groups per stage: dp * ep */
    double eg;             /* experts per GPU per MoE layer */
    double iota;           /* imbalance that applies (1 when ep = 1) */
    double peak_flops, hbm_bw, nv_bw, net_bw;
    uint32_t gpn;
    bool prefill;
} ctx;

/* A micro-batch: g whole sequences per attention group (A g sequences in
 * all), c tokens of each (prefill chunk; 1 in decode). */
typedef struct mb {
    double g, c;
} mb;

/* work of one layer on one GPU for one micro-batch; x = the GPU's expert
 * load relative to the mean */
typedef struct lcost {
    double flops, bytes, nv, net;
    double c_att, m_att, c_ffn, m_ffn;
    double t_kernels, t_tp, t_ep, t_comm, t_no, t_ov, t_layer;
} lcost;

static void layer_cost(const ctx *c, bool moe, mb u, double x, lcost *o) {
    const ms_deploy_model *m = c->m;
    const ms_deploy_plan *p = c->p;
    memset(o, 0, sizeof *o);
    double tp = p->tp, d = m->hidden, b = c->b, S = (double)c->w->seq_len;
    double Ta = u.g * u.c, T = Ta * c->A;
    double q = (double)m->heads * m->head_dim, kv = (double)kvh(m) * m->head_dim;
    double cf = c->w->causal ? 0.5 : 1.0;
    /* attention kernel (projections, scores against the context, gate) */
    double fa = 2.0 * Ta * w_att(m) / tp;
    double ba = w_att(m) * b / tp + Ta * b * (2.0 * d + 2.0 * (q + 2.0 * kv) / tp + 2.0 * q / tp);
    if (c->prefill) {
        /* chunk of c tokens against the sequence's prefix: on average c x S x cf scores */
        fa += u.g * 4.0 * u.c * S * cf * q / tp;
        ba += u.g * S * cf * 2.0 * kv / tp * b; /* K, V of the prefix streamed from HBM */
        if (!c->w->flash) ba += 2.0 * u.g * u.c * S * cf * m->heads / tp * b;
    } else {
        fa += Ta * 4.0 * S * q / tp;
        ba += Ta * S * 2.0 * kv / tp * b;
    }
    if (moe) {
        fa += 2.0 * Ta * w_gate(m) / tp;
        ba += w_gate(m) * b / tp;
    }
    /* FFN kernel */
    double ff = 0, bf = 0, mats1 = (double)m->expert_matrices - 1.0;
    if (moe) {
        double asg = x * T * m->top_k / ((double)p->dp * p->ep);
        double touched = c->eg * (1.0 - exp(-asg / c->eg));
        ff = 2.0 * asg * w_exp(m) / tp;
        bf = touched * w_exp(m) * b / tp + asg * b * (2.0 * d + 2.0 * mats1 * m->expert_hidden / tp);
        if (m->shared_experts) {
            ff += 2.0 * Ta * m->shared_experts * w_exp(m) / tp;
            bf += m->shared_experts * (w_exp(m) * b / tp + Ta * b * (2.0 * d + 2.0 * mats1 * m->expert_hidden / tp));
        }
    } else {
        ff = 2.0 * Ta * w_dense(m) / tp;
        bf = w_dense(m) * b / tp + Ta * b * (2.0 * d + 2.0 * mats1 * m->dense_hidden / tp);
    }
    o->flops = fa + ff;
    o->bytes = ba + bf;
    o->c_att = fa / c->peak_flops;
    o->m_att = ba / c->hbm_bw;
    o->c_ffn = ff / c->peak_flops;
    o->m_ffn = bf / c->hbm_bw;
    o->t_kernels = fmax(o->c_att, o->m_att) + fmax(o->c_ffn, o->m_ffn);
    const ms_hw_preset *g = &c->hw->gpu;
    /* TP: two ring all-reduces of the group's activations per layer */
    if (p->tp > 1) {
        double sent = 2.0 * (tp - 1.0) / tp * Ta * d * b;
        bool nvl = p->tp <= c->gpn;
        double alpha = (nvl ? g->nvlink_latency_us : g->net_latency_us) * 1e-6;
        o->t_tp = 2.0 * (2.0 * (tp - 1.0) * alpha + sent / (nvl ? c->nv_bw : c->net_bw));
        if (nvl) o->nv += 2.0 * sent;
        else o->net += 2.0 * sent;
    }
    /* EP: dispatch + combine all-to-all; EP ranks at stride tp, r_node of them per node */
    if (moe && p->ep > 1) {
        double ep = p->ep;
        double r_node = p->tp >= c->gpn ? 1.0 : fmin(ep, (double)(c->gpn / p->tp));
        if (r_node < 1) r_node = 1;
        double copies = Ta * m->top_k / tp;
        double fin = (r_node - 1.0) / ep, fout = (ep - r_node) / ep;
        double bytes_phase[2] = {copies * d * c->bd, copies * d * b};
        for (int ph = 0; ph < 2; ph++) {
            double in = x * bytes_phase[ph] * fin, out = x * bytes_phase[ph] * fout;
            double alpha = (out > 0 ? g->net_latency_us : g->nvlink_latency_us) * 1e-6;
            o->t_ep += alpha + fmax(in / c->nv_bw, out / c->net_bw);
            o->nv += in;
            o->net += out;
        }
    }
    o->t_comm = o->t_tp + o->t_ep;
    o->t_no = o->t_kernels + o->t_comm;
    double hi = fmax(o->t_kernels, o->t_comm), lo = fmin(o->t_kernels, o->t_comm);
    o->t_ov = hi + (1.0 - p->overlap_eff) * lo;
    o->t_layer = p->overlap ? o->t_ov : o->t_no;
}

/* layers of stage s: [s L / pp, (s + 1) L / pp); dense layers first */
static void stage_layers(const ctx *c, uint32_t s, uint32_t *n_dense, uint32_t *n_moe) {
    uint64_t L = c->m->layers, P = c->p->pp;
    uint32_t lo = (uint32_t)(s * L / P), hi = (uint32_t)((s + 1) * L / P);
    uint32_t Ld = c->m->dense_layers;
    uint32_t dn = 0;
    if (lo < Ld) dn = (hi < Ld ? hi : Ld) - lo;
    *n_dense = dn;
    *n_moe = (hi - lo) - dn;
}

static double p2p_time(const ctx *c, mb u, double *nv, double *net) {
    if (c->p->pp <= 1) return 0;
    double X = u.g * u.c * c->m->hidden * c->b / c->p->tp;
    double gps = (double)c->p->tp * c->p->ep * c->p->dp;
    bool nvl = gps < c->gpn;
    const ms_hw_preset *g = &c->hw->gpu;
    if (nv) *nv = nvl ? X : 0;
    if (net) *net = nvl ? 0 : X;
    return (nvl ? g->nvlink_latency_us : g->net_latency_us) * 1e-6 + X / (nvl ? c->nv_bw : c->net_bw);
}

/* memory of the fullest GPU for micro-batch u and (decode) conc_g
 * concurrent sequences per attention group */
static void memory(const ctx *c, mb u, double conc_g, ms_deploy_memory *out) {
    const ms_deploy_model *m = c->m;
    const ms_deploy_plan *p = c->p;
    double tp = p->tp, d = m->hidden, b = c->b, S = (double)c->w->seq_len;
    double Ta = u.g * u.c, T = Ta * c->A;
    double q = (double)m->heads * m->head_dim, kv = (double)kvh(m) * m->head_dim;
    double inflight = p->overlap ? 2.0 : 1.0;
    double mats1 = (double)m->expert_matrices - 1.0;
    memset(out, 0, sizeof *out);
    out->total = -1;
    for (uint32_t s = 0; s < p->pp; s++) {
        uint32_t nd, nm;
        stage_layers(c, s, &nd, &nm);
        double nl = nd + nm;
        double wts = nl * w_att(m) * b / tp + nd * w_dense(m) * b / tp +
                     nm * (c->eg * w_exp(m) + w_gate(m) + m->shared_experts * w_exp(m)) * b / tp;
        if (m->vocab && s == 0) wts += (double)m->vocab * d * b / tp;
        if (m->vocab && s + 1 == p->pp) wts += (double)m->vocab * d * b / tp;
        /* KV: prefill keeps the whole sequences of the micro-batches in flight
         * (later chunks attend to earlier ones); decode every concurrent one */
        double kvb = c->prefill ? inflight * nl * u.g * S * 2.0 * kv / tp * b : nl * conc_g * S * 2.0 * kv / tp * b;
        double act_att = Ta * b * (2.0 * d + (q + 2.0 * kv) / tp + q / tp);
        if (c->prefill && !c->w->flash) act_att += u.g * u.c * S * m->heads / tp * b;
        double act_ffn = 0;
        if (nm) {
            double asg = c->iota * T * m->top_k / ((double)p->dp * p->ep);
            act_ffn = asg * b * (2.0 * d + mats1 * m->expert_hidden / tp) +
                      m->shared_experts * Ta * b * mats1 * m->expert_hidden / tp;
        }
        if (nd) act_ffn = fmax(act_ffn, Ta * b * (2.0 * d + mats1 * m->dense_hidden / tp));
        double act = inflight * (fmax(act_att, act_ffn) + Ta * d * b);
        double buf = 0;
        if (nm && p->ep > 1) {
            double copies = Ta * m->top_k / tp;
            buf += copies * d * (c->bd + c->iota * c->bd + c->iota * b + b);
        }
        if (p->tp > 1) buf += Ta * d * b;
        if (p->pp > 1) buf += 2.0 * Ta * d * b / tp;
        buf *= inflight;
        double reserve = c->hw->mem_reserve_gb * 1e9;
        double tot = wts + kvb + act + buf + reserve;
        if (tot > out->total) {
            out->weights = wts;
            out->kv = kvb;
            out->activations = act;
            out->comm_buffers = buf;
            out->reserve = reserve;
            out->total = tot;
        }
    }
    out->capacity = c->hw->gpu.memory_gb * 1e9;
}

static bool fits_at(const ctx *c, mb u, double conc_g) {
    ms_deploy_memory mm;
    memory(c, u, conc_g, &mm);
    return mm.total <= mm.capacity;
}

/* schedule of micro-batch u: stage times with the hot GPU */
typedef struct sched {
    double stage_max, pipeline, p2p;
    lcost moe, dense;           /* hot GPU */
} sched;

static void schedule(const ctx *c, mb u, sched *o) {
    memset(o, 0, sizeof *o);
    layer_cost(c, true, u, c->iota, &o->moe);
    layer_cost(c, false, u, 1.0, &o->dense);
    o->p2p = p2p_time(c, u, NULL, NULL);
    double pf = c->p->overlap ? (1.0 - c->p->overlap_eff) : 1.0;
    for (uint32_t s = 0; s < c->p->pp; s++) {
        uint32_t nd, nm;
        stage_layers(c, s, &nd, &nm);
        double t = nd * o->dense.t_layer + nm * o->moe.t_layer + (s + 1 < c->p->pp ? pf * o->p2p : 0);
        o->pipeline += t;
        if (t > o->stage_max) o->stage_max = t;
    }
}

/* decode: the largest g (sequences per attention group per micro-batch, pp
 * micro-batches per step) that fits, up to limit_g */
static uint64_t max_decode_g(const ctx *c, uint64_t limit_g) {
    uint64_t lo = 0, hi = limit_g;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo + 1) / 2;
        mb u = {(double)mid, 1};
        if (fits_at(c, u, (double)mid * c->p->pp)) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

static double n_micro(const ctx *c, mb u) {
    return ceil((double)c->w->sequences / (c->A * u.g)) * ceil((double)c->w->seq_len / u.c);
}

static double prefill_total(const ctx *c, mb u, sched *s) {
    schedule(c, u, s);
    return s->pipeline + (n_micro(c, u) - 1.0) * s->stage_max;
}

static void gb(char *buf, size_t n, const ms_deploy_memory *mm) {
    snprintf(buf, n,
             "%.4g GB per GPU (weights %.4g, KV %.4g, activations %.4g, buffers %.4g, reserve %.4g) > %.4g GB",
             mm->total / 1e9, mm->weights / 1e9, mm->kv / 1e9, mm->activations / 1e9, mm->comm_buffers / 1e9,
             mm->reserve / 1e9, mm->capacity / 1e9);
}

static ms_status check_plan(const ctx *c, ms_error *err) {
    const ms_deploy_plan *p = c->p;
    const ms_deploy_model *m = c->m;
    const char *n = p->name;
    if (!p->tp || !p->pp || !p->ep || !p->dp)
        return ms_error_set(err, MS_E_INPUT, "plan %s: tp, pp, ep and dp must be at least 1", n);
    uint64_t g = (uint64_t)p->tp * p->pp * p->ep * p->dp;
    if (g > (1u << 22)) return ms_error_set(err, MS_E_INPUT, "plan %s: %llu GPUs is too many", n, (unsigned long long)g);
    if (m->heads % p->tp || kvh(m) % p->tp)
        return ms_error_set(err, MS_E_INPUT, "plan %s: tp %u must divide heads %u and kv_heads %u", n, p->tp, m->heads,
                            kvh(m));
    bool has_moe = m->layers > m->dense_layers;
    if (has_moe && m->expert_hidden % p->tp)
        return ms_error_set(err, MS_E_INPUT, "plan %s: tp %u must divide expert_hidden %u", n, p->tp, m->expert_hidden);
    if (m->dense_layers && m->dense_hidden % p->tp)
        return ms_error_set(err, MS_E_INPUT, "plan %s: tp %u must divide dense_hidden %u", n, p->tp, m->dense_hidden);
    if (has_moe && m->experts % p->ep && p->ep % m->experts)
        return ms_error_set(err, MS_E_INPUT,
                            "plan %s: ep %u and experts %u must divide one another (experts per GPU, or replicas "
                            "per expert)",
                            n, p->ep, m->experts);
    if (p->pp > m->layers)
        return ms_error_set(err, MS_E_INPUT, "plan %s: %u pipeline stages for %u layers", n, p->pp, m->layers);
    if (!(p->overlap_eff >= 0 && p->overlap_eff <= 1))
        return ms_error_set(err, MS_E_INPUT, "plan %s: overlap efficiency %g must be in 0..1", n, p->overlap_eff);
    if (!(p->imbalance >= 1) || (p->ep > 1 && p->imbalance > p->ep))
        return ms_error_set(err, MS_E_INPUT, "plan %s: imbalance %g must be in 1..ep (%u)", n, p->imbalance, p->ep);
    if (!(p->dispatch_bytes >= 0) || p->dispatch_bytes > 8)
        return ms_error_set(err, MS_E_INPUT, "plan %s: dispatch bytes %g must be in 0..8", n, p->dispatch_bytes);
    uint64_t A = (uint64_t)p->dp * p->ep;
    if (c->w->micro_batch % A)
        return ms_error_set(err, MS_E_INPUT,
                            "plan %s: micro-batch of %llu sequences is not a multiple of dp x ep = %llu (whole "
                            "sequences per attention group)",
                            n, (unsigned long long)c->w->micro_batch, (unsigned long long)A);
    if (c->w->sequences < A)
        return ms_error_set(err, MS_E_INPUT,
                            "plan %s: %llu sequences cannot occupy dp x ep = %llu attention groups (give each at least "
                            "one)",
                            n, (unsigned long long)c->w->sequences, (unsigned long long)A);
    return MS_OK;
}

/* energy of the run through the power model: one phase, every GPU */
static ms_status energy(const ctx *c, mb u, double M, double wall, double tokens, ms_deploy_result *r,
                        ms_error *err) {
    const ms_deploy_plan *p = c->p;
    uint32_t G = p->tp * p->pp * p->ep * p->dp, per_stage = p->tp * p->ep * p->dp;
    ms_power_phases *ph = NULL;
    ms_status st = ms_power_phases_new(G, 1, &ph, err);
    if (st != MS_OK) return st;
    ph->precision = c->m->precision;
    ph->tokens = tokens;
    ph->wall_s[0] = wall;
    ms_power_phase v;
    ms_power_phases_get(ph, 0, &v);
    double *cs = (double *)v.compute_s, *cm = (double *)v.comm_s, *fl = (double *)v.flops, *hb = (double *)v.hbm_bytes,
           *nv = (double *)v.nvlink_bytes, *nt = (double *)v.net_bytes;
    /* in each EP group one GPU carries imbalance x the mean expert load, the others share the rest */
    double xs[2] = {c->iota, p->ep > 1 ? (p->ep - c->iota) / (p->ep - 1.0) : 1.0};
    lcost mo[2], de;
    layer_cost(c, true, u, xs[0], &mo[0]);
    layer_cost(c, true, u, xs[1], &mo[1]);
    layer_cost(c, false, u, 1.0, &de);
    double pnv = 0, pnet = 0;
    double tp2p = p2p_time(c, u, &pnv, &pnet);
    double pf = p->overlap ? (1.0 - p->overlap_eff) : 1.0;
    for (uint32_t s = 0; s < p->pp; s++) {
        uint32_t nd, nm;
        stage_layers(c, s, &nd, &nm);
        for (uint32_t j = 0; j < per_stage; j++) {
            uint32_t e = (j / p->tp) % p->ep;
            const lcost *L = &mo[e == 0 ? 0 : 1];
            uint32_t dv = s * per_stage + j;
            bool send = s + 1 < p->pp;
            cs[dv] = fmin(wall, M * (nd * de.t_kernels + nm * L->t_kernels));
            cm[dv] = M * (nd * (de.t_layer - de.t_kernels) + nm * (L->t_layer - L->t_kernels) + (send ? pf * tp2p : 0));
            fl[dv] = M * (nd * de.flops + nm * L->flops);
            hb[dv] = M * (nd * de.bytes + nm * L->bytes);
            nv[dv] = M * (nd * de.nv + nm * L->nv + (send ? pnv : 0));
            nt[dv] = M * (nd * de.net + nm * L->net + (send ? pnet : 0));
        }
    }
    ms_power_result *pr = NULL;
    st = ms_power_compute(ph, &c->hw->energy, &pr, err);
    if (st == MS_OK) {
        memcpy(r->energy_j, pr->energy_j, sizeof r->energy_j);
        r->total_j = pr->total_j;
        r->j_per_token = pr->energy_per_token_j;
        r->avg_w = pr->avg_w;
        /* peak: every GPU running its kernels, with its transfers spread over
         * their whole duration (alongside the kernels when overlapped), each
         * at most its TDP */
        const ms_energy_coeffs *ec = &c->hw->energy;
        double peak = 0;
        for (uint32_t s = 0; s < p->pp; s++) {
            uint32_t nd, nm;
            stage_layers(c, s, &nd, &nm);
            for (uint32_t j = 0; j < per_stage; j++) {
                uint32_t e = (j / p->tp) % p->ep;
                const lcost *L = &mo[e == 0 ? 0 : 1];
                uint32_t dv = s * per_stage + j;
                bool send = s + 1 < p->pp;
                double tk = M * (nd * de.t_kernels + nm * L->t_kernels);
                double tc = M * (nd * de.t_comm + nm * L->t_comm + (send ? tp2p : 0));
                double ek = ms_energy_dynamic_j(ec, c->m->precision, fl[dv], hb[dv], 0, 0);
                double em = ms_energy_dynamic_j(ec, c->m->precision, 0, 0, nv[dv], nt[dv]);
                double pk = tk > 0 ? ek / tk : 0, pc = tc > 0 ? em / tc : 0;
                peak += fmin(ec->tdp_w, ec->idle_w + (p->overlap ? pk + pc : fmax(pk, pc))); /* a board limit */
            }
        }
        r->peak_w = peak;
    }
    ms_power_result_free(pr);
    ms_power_phases_free(ph);
    return st;
}

ms_status ms_deploy_evaluate(const ms_deploy_model *m, const ms_deploy_workload *w, const ms_deploy_hw *hw,
                             const ms_deploy_plan *plan, ms_deploy_result *out, ms_error *err) {
    memset(out, 0, sizeof *out);
    out->plan = *plan;
    if (ms_deploy_model_check(m, err) != MS_OK) return MS_E_INPUT;
    if (!w->sequences || !w->seq_len)
        return ms_error_set(err, MS_E_INPUT, "workload: sequences and seq_len must be positive");
    if (w->micro_batch > w->sequences)
        return ms_error_set(err, MS_E_INPUT, "workload: micro-batch of %llu sequences is larger than the %llu sequences",
                            (unsigned long long)w->micro_batch, (unsigned long long)w->sequences);
    if (w->chunk > w->seq_len)
        return ms_error_set(err, MS_E_INPUT, "workload: chunk of %llu tokens is longer than the sequences (%llu)",
                            (unsigned long long)w->chunk, (unsigned long long)w->seq_len);
    if (w->chunk && w->chunk < w->seq_len && (w->phase != MS_DEPLOY_PREFILL || !w->causal))
        return ms_error_set(err, MS_E_INPUT, "workload: chunked prefill needs causal attention in the prefill phase");
    const ms_hw_preset *g = &hw->gpu;
    if (!(g->peak_tflops_bf16 > 0 && g->mfu > 0 && g->hbm_tb_s > 0 && g->hbm_util > 0 && g->memory_gb > 0 &&
          g->nvlink_gb_s > 0 && g->nic_gb_s > 0 && g->nvlink_efficiency > 0 && g->net_efficiency > 0))
        return ms_error_set(err, MS_E_INPUT, "hardware %s: a figure is missing or not positive", g->name);
    if (!hw->gpus_per_node) return ms_error_set(err, MS_E_INPUT, "hardware: gpus_per_node must be positive");
    if (ms_energy_check(&hw->energy, err) != MS_OK) return MS_E_INPUT;
    ctx c = {0};
    c.m = m;
    c.w = w;
    c.hw = hw;
    c.p = plan;
    c.prefill = w->phase == MS_DEPLOY_PREFILL;
    if (check_plan(&c, err) != MS_OK) return MS_E_INPUT;
    c.b = ms_precision_bytes(m->precision);
    c.bd = plan->dispatch_bytes > 0 ? plan->dispatch_bytes : c.b;
    c.A = (double)plan->dp * plan->ep;
    c.eg = (m->experts && plan->ep <= m->experts) ? (double)m->experts / plan->ep : 1.0;
    c.iota = plan->ep > 1 ? plan->imbalance : 1.0;
    double tf = m->precision == MS_PREC_FP8 ? g->peak_tflops_fp8
                : m->precision == MS_PREC_FP32 ? g->peak_tflops_bf16 / 2.0
                                               : g->peak_tflops_bf16;
    c.peak_flops = tf * 1e12 * g->mfu;
    c.hbm_bw = g->hbm_tb_s * 1e12 * g->hbm_util;
    c.nv_bw = g->nvlink_gb_s * 1e9 * g->nvlink_efficiency;
    c.net_bw = g->nic_gb_s * 1e9 * g->net_efficiency;
    c.gpn = hw->gpus_per_node;
    out->gpus = plan->tp * plan->pp * plan->ep * plan->dp;
    ms_deploy_params(m, &out->total_params, &out->active_params);
    for (uint32_t s = 0; s < plan->pp; s++) {
        uint32_t nd, nm;
        stage_layers(&c, s, &nd, &nm);
        if (nd + nm > out->max_stage_layers) out->max_stage_layers = nd + nm;
    }
    double B = (double)w->sequences, S = (double)w->seq_len;
    uint64_t gmax = w->sequences / (uint64_t)c.A; /* whole sequences per attention group */
    mb whole_u = {B / c.A, c.prefill ? S : 1};
    ms_deploy_memory whole;
    memory(&c, whole_u, B / c.A, &whole);
    char msg[400];
    mb u = {0, 0};
    double conc_g = 0, M = 0;
    if (c.prefill) {
        uint64_t g0 = w->micro_batch ? w->micro_batch / (uint64_t)c.A : 0;
        if (g0 && w->chunk) {
            u.g = (double)g0;
            u.c = (double)w->chunk;
        } else {
            /* the fastest (sequences per group, chunk) that fits */
            double best = INFINITY;
            for (uint64_t gg = g0 ? g0 : 1; gg <= (g0 ? g0 : gmax);
                 gg = gg < 4096 ? gg + 1 : (gg * 2 > gmax && gg < gmax ? gmax : gg * 2)) {
                bool any = false;
                for (uint64_t nch = 1; nch <= w->seq_len; nch *= 2) {
                    uint64_t ck = w->chunk ? w->chunk : (w->seq_len + nch - 1) / nch;
                    mb cand = {(double)gg, (double)ck};
                    if (fits_at(&c, cand, cand.g)) {
                        any = true;
                        sched s;
                        double t = prefill_total(&c, cand, &s);
                        if (t < best) {
                            best = t;
                            u = cand;
                        }
                    }
                    if (w->chunk || !w->causal) break;
                }
                if (!any) break; /* memory grows with gg */
            }
            if (u.g == 0 && (g0 || w->chunk)) { /* a forced value that never fits: report it */
                u.g = g0 ? (double)g0 : 1;
                u.c = w->chunk ? (double)w->chunk : S;
            }
        }
        if (u.g > 0) M = n_micro(&c, u);
        conc_g = u.g;
    } else {
        /* decode: pp micro-batches per step (a full pipeline) */
        if (w->micro_batch) {
            u.g = (double)(w->micro_batch / (uint64_t)c.A);
            u.c = 1;
            M = ceil(B / (c.A * u.g));
            conc_g = u.g * M;
        } else {
            uint64_t gfit = max_decode_g(&c, (gmax + plan->pp - 1) / plan->pp);
            if (gfit) {
                u.g = (double)gfit;
                u.c = 1;
                M = fmin((double)plan->pp, ceil(B / (c.A * u.g)));
                conc_g = fmin(u.g * M, (double)gmax);
            }
        }
    }
    out->mem.whole_batch_total = whole.total;
    if (u.g <= 0) {
        ms_deploy_memory one;
        mb u1 = {1, c.prefill ? 1 : 1};
        memory(&c, u1, 1, &one);
        gb(msg, sizeof msg, &one);
        out->mem = one;
        out->mem.whole_batch_total = whole.total;
        out->fits = false;
        snprintf(out->why, sizeof out->why,
                 "plan %s does not fit even one sequence per attention group and micro-batch: %s%s", plan->name, msg,
                 one.weights > one.capacity ? "; the weights alone do not fit: raise tp, pp or ep" : "");
        return MS_OK;
    }
    memory(&c, u, conc_g, &out->mem);
    out->mem.whole_batch_total = whole.total;
    out->micro_batch = (uint64_t)(u.g * c.A);
    out->chunk = (uint64_t)u.c;
    out->n_micro = (uint64_t)M;
    out->concurrency = (uint64_t)(conc_g * c.A);
    if (out->mem.total > out->mem.capacity) {
        gb(msg, sizeof msg, &out->mem);
        out->fits = false;
        uint64_t lo = 0;
        if (c.prefill) { /* the largest micro-batch that fits at this chunk */
            uint64_t hi = (uint64_t)u.g;
            while (lo < hi) {
                uint64_t mid = lo + (hi - lo + 1) / 2;
                mb t = {(double)mid, u.c};
                if (fits_at(&c, t, t.g)) lo = mid;
                else hi = mid - 1;
            }
            lo *= (uint64_t)c.A;
        } else {
            lo = max_decode_g(&c, gmax) * (uint64_t)c.A * plan->pp;
        }
        if (lo)
            snprintf(out->why, sizeof out->why, "plan %s with %llu sequences per micro-batch needs %s; at most %llu %s",
                     plan->name, (unsigned long long)out->micro_batch, msg, (unsigned long long)lo,
                     c.prefill ? "sequences per micro-batch fit" : "concurrent sequences fit (KV cache)");
        else
            snprintf(out->why, sizeof out->why, "plan %s with %llu sequences per micro-batch needs %s", plan->name,
                     (unsigned long long)out->micro_batch, msg);
        return MS_OK;
    }
    out->fits = true;
    sched s;
    schedule(&c, u, &s);
    out->moe.present = m->layers > m->dense_layers;
    out->dense.present = m->dense_layers > 0;
    const lcost *src[2] = {&s.moe, &s.dense};
    ms_deploy_layer *dst[2] = {&out->moe, &out->dense};
    lcost mean_moe;
    layer_cost(&c, true, u, 1.0, &mean_moe);
    out->moe.t_kernels_mean = mean_moe.t_kernels;
    out->dense.t_kernels_mean = s.dense.t_kernels;
    for (int k = 0; k < 2; k++) {
        dst[k]->flops = src[k]->flops;
        dst[k]->hbm_bytes = src[k]->bytes;
        dst[k]->nvlink_bytes = src[k]->nv;
        dst[k]->net_bytes = src[k]->net;
        dst[k]->t_compute = src[k]->c_att + src[k]->c_ffn;
        dst[k]->t_memory = src[k]->m_att + src[k]->m_ffn;
        dst[k]->t_kernels = src[k]->t_kernels;
        dst[k]->t_tp = src[k]->t_tp;
        dst[k]->t_ep = src[k]->t_ep;
        dst[k]->t_comm = src[k]->t_comm;
        dst[k]->t_no_overlap = src[k]->t_no;
        dst[k]->t_overlap = src[k]->t_ov;
        dst[k]->t_layer = src[k]->t_layer;
    }
    out->t_p2p = s.p2p;
    out->stage_s = s.stage_max;
    out->pipeline_s = s.pipeline;
    if (c.prefill) {
        out->total_s = s.pipeline + (M - 1.0) * s.stage_max;
        out->tokens = B * S;
        out->latency_s = s.pipeline;
    } else {
        out->total_s = fmax(M * s.stage_max, s.pipeline);
        out->tokens = conc_g * c.A;
        out->latency_s = out->total_s;
    }
    out->tokens_per_s = out->total_s > 0 ? out->tokens / out->total_s : 0;
    out->time_per_token_s = out->tokens > 0 ? out->total_s / out->tokens : 0;
    /* busy share: every stage works M micro-batches of its own time */
    double busy = 0, pf = plan->overlap ? (1.0 - plan->overlap_eff) : 1.0;
    for (uint32_t st = 0; st < plan->pp; st++) {
        uint32_t nd, nm;
        stage_layers(&c, st, &nd, &nm);
        busy += M * (nd * s.dense.t_layer + nm * s.moe.t_layer + (st + 1 < plan->pp ? pf * s.p2p : 0));
    }
    out->bubble = out->total_s > 0 ? 1.0 - busy / (plan->pp * out->total_s) : 0;
    if (out->bubble < 0) out->bubble = 0;
    return energy(&c, u, M, out->total_s, out->tokens, out, err);
}

/* ------------------------------------------------------------- verdict */

static const char *bound(const ms_deploy_layer *l) { return l->t_compute >= l->t_memory ? "compute" : "memory"; }

void ms_deploy_verdict(const ms_deploy_result *r, size_t n, char *buf, size_t len) {
    size_t u = 0;
#define PUT(...)                                                                  \
    do {                                                                          \
        if (u < len) {                                                            \
            int k_ = snprintf(buf + u, len - u, __VA_ARGS__);                     \
            if (k_ > 0) u += (size_t)k_;                                          \
        }                                                                         \
    } while (0)
    if (len) buf[0] = '\0';
    int best_t = -1, best_e = -1, n_fit = 0;
    for (size_t i = 0; i < n; i++) {
        const ms_deploy_result *x = &r[i];
        if (!x->fits) {
            PUT("%s does not fit: %s.\n", x->plan.name, x->why);
            continue;
        }
        n_fit++;
        if (best_t < 0 || x->tokens_per_s > r[best_t].tokens_per_s) best_t = (int)i;
        if (best_e < 0 || x->j_per_token < r[best_e].j_per_token) best_e = (int)i;
        const ms_deploy_layer *L = x->moe.present ? &x->moe : &x->dense;
        double hidden = L->t_no_overlap - L->t_layer;
        PUT("%s (tp %u x pp %u x ep %u x dp %u = %u GPUs): %.4g tokens/s, %.3g J/token, %.1f of %.1f GB per GPU; "
            "%s layer %.3g ms on its slowest GPU = kernels %.3g ms (%s-bound) + communication %.3g ms "
            "(TP %.3g, EP %.3g)%s",
            x->plan.name, x->plan.tp, x->plan.pp, x->plan.ep, x->plan.dp, x->gpus, x->tokens_per_s, x->j_per_token,
            x->mem.total / 1e9, x->mem.capacity / 1e9, x->moe.present ? "MoE" : "dense", L->t_layer * 1e3,
            L->t_kernels * 1e3, bound(L), L->t_comm * 1e3, L->t_tp * 1e3, L->t_ep * 1e3,
            x->plan.overlap ? "" : ", not overlapped");
        if (x->plan.overlap) PUT(", %.3g ms of it hidden by overlap", hidden * 1e3);
        PUT("; pipeline bubble %.1f%%", 100.0 * x->bubble);
        if (x->mem.whole_batch_total > x->mem.capacity)
            PUT("; the whole batch at once would need %.4g GB per GPU, so it runs as %llu micro-batches of %llu "
                "sequences x %llu tokens",
                x->mem.whole_batch_total / 1e9, (unsigned long long)x->n_micro, (unsigned long long)x->micro_batch,
                (unsigned long long)x->chunk);
        PUT(".\n");
    }
    if (n_fit >= 2) {
        /* compare the winner with the runner-up on throughput */
        int second = -1;
        for (size_t i = 0; i < n; i++)
            if (r[i].fits && (int)i != best_t && (second < 0 || r[i].tokens_per_s > r[second].tokens_per_s))
                second = (int)i;
        const ms_deploy_result *a = &r[best_t], *b = &r[second];
        double ratio = b->tokens_per_s > 0 ? a->tokens_per_s / b->tokens_per_s : INFINITY;
        PUT("Verdict: %s wins on throughput, %.3gx %s", a->plan.name, ratio, b->plan.name);
        if (a->gpus != b->gpus) PUT(" (on %u vs %u GPUs: not equal hardware)", a->gpus, b->gpus);
        /* the reason: where the runner-up loses GPU time per token, split into
         * kernels at the mean load, waiting on the hottest GPU, exposed
         * communication and pipeline bubble */
        const ms_deploy_layer *La = a->moe.present ? &a->moe : &a->dense;
        const ms_deploy_layer *Lb = b->moe.present ? &b->moe : &b->dense;
        double ta = a->time_per_token_s * a->gpus, tb = b->time_per_token_s * b->gpus;
        double sa = La->t_layer > 0 ? ta * (1 - a->bubble) / La->t_layer : 0;
        double sb = Lb->t_layer > 0 ? tb * (1 - b->bubble) / Lb->t_layer : 0;
        double d_k = Lb->t_kernels_mean * sb - La->t_kernels_mean * sa;
        /* waiting on a hot GPU is a reason only where the runner-up has EP ranks to unbalance */
        double d_i = b->plan.ep > 1 ? (Lb->t_kernels - Lb->t_kernels_mean) * sb - (La->t_kernels - La->t_kernels_mean) * sa
                                    : -INFINITY;
        double d_c = (Lb->t_layer - Lb->t_kernels) * sb - (La->t_layer - La->t_kernels) * sa;
        double d_b = b->bubble * tb - a->bubble * ta;
        double mx = fmax(fmax(d_k, d_i), fmax(d_c, d_b));
        if (a->gpus != b->gpus) { /* per GPU-time reasons do not compare unequal hardware */
            PUT(": per GPU, %s serves %.4g tokens/s and %s %.4g", a->plan.name, a->tokens_per_s / a->gpus,
                b->plan.name, b->tokens_per_s / b->gpus);
        } else if (ratio < 1.02) {
            PUT(": the two are within 2%%, both %s-bound", bound(La));
        } else if (mx == d_i) {
            PUT(": %s's hottest GPU carries %.3gx the mean expert load, so its MoE kernels take %.3g ms instead of "
                "%.3g and the other GPUs wait; %s%s",
                b->plan.name, b->plan.imbalance, Lb->t_kernels * 1e3, Lb->t_kernels_mean * 1e3, a->plan.name,
                a->plan.ep > 1 ? " suffers less from it" : " shards every expert over its GPUs, so routing skew does "
                                                           "not unbalance them");
        } else if (mx == d_c) {
            PUT(": %s pays for communication it does not hide (%.3g of %.3g ms per layer), %s hides or avoids it",
                b->plan.name, (Lb->t_layer - Lb->t_kernels) * 1e3, Lb->t_layer * 1e3, a->plan.name);
        } else if (mx == d_b) {
            PUT(": %s idles in its pipeline bubble (%.1f%% vs %.1f%%: fill, drain and unequal stages)", b->plan.name,
                100 * b->bubble, 100 * a->bubble);
        } else {
            if (Lb->t_kernels_mean > 1.05 * Lb->t_compute)
                PUT(": %s spends more GPU time per token in kernels: some of its kernels are memory-bound (%.3g of "
                    "%.3g ms per layer beyond the compute time), re-reading weights or KV cache for fewer tokens",
                    b->plan.name, (Lb->t_kernels_mean - Lb->t_compute) * 1e3, Lb->t_kernels_mean * 1e3);
            else
                PUT(": %s spends more GPU time per token in kernels (more FLOPs per token)", b->plan.name);
        }
        PUT(". ");
        const ms_deploy_result *e = &r[best_e];
        if (best_e == best_t)
            PUT("It also uses the least energy per token (%.4g vs %.4g J).\n", a->j_per_token, b->j_per_token);
        else
            PUT("%s uses the least energy per token (%.4g J vs %.4g J for %s).\n", e->plan.name, e->j_per_token,
                a->j_per_token, a->plan.name);
    } else if (n_fit == 0) {
        PUT("Verdict: no plan fits.\n");
    }
#undef PUT
}

/* ---------------------------------------------------------------- JSON */

static json_t *layer_json(const ms_deploy_layer *l) {
    json_t *o = json_object();
    json_object_set_new(o, "flops", json_real(l->flops));
    json_object_set_new(o, "hbm_bytes", json_real(l->hbm_bytes));
    json_object_set_new(o, "nvlink_bytes", json_real(l->nvlink_bytes));
    json_object_set_new(o, "net_bytes", json_real(l->net_bytes));
    json_object_set_new(o, "compute_s", json_real(l->t_compute));
    json_object_set_new(o, "memory_s", json_real(l->t_memory));
    json_object_set_new(o, "kernels_s", json_real(l->t_kernels));
    json_object_set_new(o, "tp_s", json_real(l->t_tp));
    json_object_set_new(o, "ep_s", json_real(l->t_ep));
    json_object_set_new(o, "comm_s", json_real(l->t_comm));
    json_object_set_new(o, "no_overlap_s", json_real(l->t_no_overlap));
    json_object_set_new(o, "overlap_s", json_real(l->t_overlap));
    json_object_set_new(o, "layer_s", json_real(l->t_layer));
    return o;
}

json_t *ms_deploy_model_json(const ms_deploy_model *m) {
    json_t *o = json_object();
    double tot, act;
    ms_deploy_params(m, &tot, &act);
    json_object_set_new(o, "name", json_string(m->name));
    json_object_set_new(o, "layers", json_integer(m->layers));
    json_object_set_new(o, "dense_layers", json_integer(m->dense_layers));
    json_object_set_new(o, "hidden", json_integer(m->hidden));
    json_object_set_new(o, "heads", json_integer(m->heads));
    json_object_set_new(o, "head_dim", json_integer(m->head_dim));
    json_object_set_new(o, "kv_heads", json_integer(kvh(m)));
    json_object_set_new(o, "experts", json_integer(m->experts));
    json_object_set_new(o, "top_k", json_integer(m->top_k));
    json_object_set_new(o, "expert_hidden", json_integer(m->expert_hidden));
    json_object_set_new(o, "expert_matrices", json_integer(m->expert_matrices));
    json_object_set_new(o, "shared_experts", json_integer(m->shared_experts));
    json_object_set_new(o, "dense_hidden", json_integer(m->dense_hidden));
    json_object_set_new(o, "vocab", json_integer(m->vocab));
    json_object_set_new(o, "precision", json_string(ms_precision_name(m->precision)));
    json_object_set_new(o, "total_params", json_real(tot));
    json_object_set_new(o, "active_params", json_real(act));
    return o;
}

json_t *ms_deploy_result_json(const ms_deploy_result *r) {
    json_t *o = json_object();
    const ms_deploy_plan *p = &r->plan;
    json_t *pj = json_object();
    json_object_set_new(pj, "name", json_string(p->name));
    json_object_set_new(pj, "tp", json_integer(p->tp));
    json_object_set_new(pj, "pp", json_integer(p->pp));
    json_object_set_new(pj, "ep", json_integer(p->ep));
    json_object_set_new(pj, "dp", json_integer(p->dp));
    json_object_set_new(pj, "overlap", json_boolean(p->overlap));
    json_object_set_new(pj, "overlap_eff", json_real(p->overlap_eff));
    json_object_set_new(pj, "imbalance", json_real(p->imbalance));
    json_object_set_new(o, "plan", pj);
    json_object_set_new(o, "gpus", json_integer(r->gpus));
    json_object_set_new(o, "fits", json_boolean(r->fits));
    if (!r->fits) json_object_set_new(o, "why", json_string(r->why));
    json_t *mj = json_object();
    json_object_set_new(mj, "weights_gb", json_real(r->mem.weights / 1e9));
    json_object_set_new(mj, "kv_gb", json_real(r->mem.kv / 1e9));
    json_object_set_new(mj, "activations_gb", json_real(r->mem.activations / 1e9));
    json_object_set_new(mj, "comm_buffers_gb", json_real(r->mem.comm_buffers / 1e9));
    json_object_set_new(mj, "reserve_gb", json_real(r->mem.reserve / 1e9));
    json_object_set_new(mj, "total_gb", json_real(r->mem.total / 1e9));
    json_object_set_new(mj, "capacity_gb", json_real(r->mem.capacity / 1e9));
    json_object_set_new(mj, "whole_batch_gb", json_real(r->mem.whole_batch_total / 1e9));
    json_object_set_new(o, "memory", mj);
    json_object_set_new(o, "total_params", json_real(r->total_params));
    json_object_set_new(o, "active_params", json_real(r->active_params));
    if (!r->fits) return o;
    json_object_set_new(o, "micro_batch", json_integer((json_int_t)r->micro_batch));
    json_object_set_new(o, "chunk", json_integer((json_int_t)r->chunk));
    json_object_set_new(o, "micro_batches", json_integer((json_int_t)r->n_micro));
    json_object_set_new(o, "concurrency", json_integer((json_int_t)r->concurrency));
    json_object_set_new(o, "max_stage_layers", json_integer(r->max_stage_layers));
    if (r->moe.present) json_object_set_new(o, "moe_layer", layer_json(&r->moe));
    if (r->dense.present) json_object_set_new(o, "dense_layer", layer_json(&r->dense));
    json_object_set_new(o, "p2p_s", json_real(r->t_p2p));
    json_object_set_new(o, "stage_s", json_real(r->stage_s));
    json_object_set_new(o, "pipeline_s", json_real(r->pipeline_s));
    json_object_set_new(o, "total_s", json_real(r->total_s));
    json_object_set_new(o, "tokens", json_real(r->tokens));
    json_object_set_new(o, "tokens_per_s", json_real(r->tokens_per_s));
    json_object_set_new(o, "latency_s", json_real(r->latency_s));
    json_object_set_new(o, "time_per_token_s", json_real(r->time_per_token_s));
    json_object_set_new(o, "bubble", json_real(r->bubble));
    json_t *ej = json_object();
    for (int k = 0; k < MS_PART_COUNT; k++)
        json_object_set_new(ej, ms_power_part_name((ms_power_part)k), json_real(r->energy_j[k]));
    json_object_set_new(o, "energy_j", ej);
    json_object_set_new(o, "total_j", json_real(r->total_j));
    json_object_set_new(o, "j_per_token", json_real(r->j_per_token));
    json_object_set_new(o, "avg_w", json_real(r->avg_w));
    json_object_set_new(o, "peak_w", json_real(r->peak_w));
    return o;
}
