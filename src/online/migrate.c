/* migrate.c - what a re-placement copies and what it costs, the loads of a
 * range of steps, names and spans (see moesim/online.h). */
#include "moesim/online.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const rebalance_names[] = {"static", "periodic-eplb", "incremental", "oracle"};
static const char *const migration_names[] = {"stall", "overlap"};

const char *ms_rebalance_name(ms_rebalance r) {
    return (unsigned)r < MS_REBALANCE_COUNT ? rebalance_names[r] : "?";
}

const char *ms_migration_name(ms_migration m) { return (unsigned)m < 2 ? migration_names[m] : "?"; }

ms_status ms_rebalance_parse(const char *s, ms_rebalance *out, ms_error *err) {
    for (int i = 0; s && i < MS_REBALANCE_COUNT; i++)
        if (strcmp(s, rebalance_names[i]) == 0) {
            *out = (ms_rebalance)i;
            return MS_OK;
        }
    return ms_error_set(err, MS_E_INPUT,
                        "unknown re-placement policy '%s' (expected one of: static, periodic-eplb, incremental, oracle)",
                        s ? s : "");
}

ms_status ms_migration_parse(const char *s, ms_migration *out, ms_error *err) {
    for (int i = 0; s && i < 2; i++)
        if (strcmp(s, migration_names[i]) == 0) {
            *out = (ms_migration)i;
            return MS_OK;
        }
    return ms_error_set(err, MS_E_INPUT, "unknown migration mode '%s' (expected stall or overlap)", s ? s : "");
}

ms_status ms_span_parse(const char *s, ms_span *out, ms_error *err) {
    if (!s || !*s || *s == '-' || *s == '+')
        return ms_error_set(err, MS_E_INPUT, "'%s' is not a span (N, Nsteps or Ntokens, N > 0)", s ? s : "");
    errno = 0;
    char *end;
    unsigned long long n = strtoull(s, &end, 10);
    if (end == s || errno) return ms_error_set(err, MS_E_INPUT, "'%s' is not a span (N, Nsteps or Ntokens)", s);
    uint64_t mult = 1;
    if (*end == 'k') mult = 1000, end++;
    else if (*end == 'M') mult = 1000000, end++;
    ms_span_unit unit = MS_SPAN_STEPS;
    if (*end == '\0' || strcmp(end, "steps") == 0 || strcmp(end, "step") == 0) unit = MS_SPAN_STEPS;
    else if (strcmp(end, "tokens") == 0 || strcmp(end, "token") == 0) unit = MS_SPAN_TOKENS;
    else return ms_error_set(err, MS_E_INPUT, "'%s': a span is N, Nsteps or Ntokens (k and M multiply)", s);
    if (n == 0) return ms_error_set(err, MS_E_INPUT, "'%s': a span must be positive", s);
    if (n > UINT64_MAX / mult) return ms_error_set(err, MS_E_INPUT, "'%s': span too large", s);
    out->n = n * mult;
    out->unit = unit;
    return MS_OK;
}

const char *ms_span_format(const ms_span *s, char *buf, size_t len) {
    snprintf(buf, len, "%llu %s", (unsigned long long)s->n, s->unit == MS_SPAN_TOKENS ? "tokens" : "steps");
    return buf;
}

ms_status ms_plan_loads(const ms_trace *t, const ms_batch_plan *plan, uint64_t a, uint64_t b, uint32_t n_routed,
                        bool has_shared, ms_loads **out, ms_error *err) {
    *out = NULL;
    if (a >= b || b > plan->n_batches)
        return ms_error_set(err, MS_E_INPUT, "step range [%llu, %llu) outside the plan's %llu steps",
                            (unsigned long long)a, (unsigned long long)b, (unsigned long long)plan->n_batches);
    if (n_routed < t->n_experts)
        return ms_error_set(err, MS_E_INPUT, "loads of %u experts asked for a trace of %u", n_routed, t->n_experts);
    uint32_t cols = n_routed + (has_shared ? 1u : 0u);
    ms_status st = ms_loads_new(t->n_layers, cols, out, err);
    if (st != MS_OK) return st;
    const uint64_t p0 = plan->off[a], p1 = plan->off[b];
    const uint32_t k = t->top_k;
    for (uint32_t l = 0; l < t->n_layers; l++) {
        double *w = (*out)->w + (size_t)l * cols;
        const uint16_t *base = t->experts + (size_t)l * t->n_tokens * k;
        for (uint64_t pos = p0; pos < p1; pos++) {
            const uint16_t *ids = base + (size_t)plan->tok[pos] * k;
            for (uint32_t j = 0; j < k; j++) w[ids[j]] += 1.0;
        }
        if (has_shared) w[n_routed] = (double)(p1 - p0);
    }
    return MS_OK;
}

uint64_t ms_plan_span_end(const ms_batch_plan *plan, uint64_t from, ms_span span) {
    const uint64_t nb = plan->n_batches;
    if (span.unit == MS_SPAN_STEPS) return nb - from > span.n ? from + span.n : nb;
    uint64_t b = from + 1;
    while (b < nb && plan->off[b] - plan->off[from] < span.n) b++;
    return b;
}

uint64_t ms_plan_first_step(const ms_trace *t, const ms_batch_plan *plan, uint64_t request) {
    if (request >= t->n_requests) return UINT64_MAX;
    const uint64_t tok = t->tok_offset[request];
    for (uint64_t b = 0; b < plan->n_batches; b++)
        for (uint64_t i = plan->off[b]; i < plan->off[b + 1]; i++)
            if (plan->tok[i] >= tok) return b;
    return UINT64_MAX;
}

ms_status ms_plan_load_moments(const ms_trace *t, const ms_batch_plan *plan, uint64_t a, uint64_t b,
                               uint32_t n_routed, bool has_shared, ms_loads **mean, ms_loads **var, ms_error *err) {
    *mean = *var = NULL;
    ms_loads *step = NULL;
    ms_status st = ms_plan_loads(t, plan, a, a + 1 <= b ? a + 1 : b, n_routed, has_shared, &step, err);
    if (st != MS_OK) return st;
    const uint32_t cols = step->n_experts, L = t->n_layers, k = t->top_k;
    const size_t cells = (size_t)L * cols;
    st = ms_loads_new(L, cols, mean, err);
    if (st == MS_OK) st = ms_loads_new(L, cols, var, err);
    if (st != MS_OK) {
        ms_loads_free(step);
        ms_loads_free(*mean);
        *mean = NULL;
        return st;
    }
    double *sum = (*mean)->w, *sq = (*var)->w, *cnt = step->w;
    for (uint64_t s = a; s < b; s++) {
        if (s > a) { /* the first step was counted by ms_plan_loads */
            memset(cnt, 0, cells * sizeof *cnt);
            const uint64_t p0 = plan->off[s], p1 = plan->off[s + 1];
            for (uint32_t l = 0; l < L; l++) {
                double *w = cnt + (size_t)l * cols;
                const uint16_t *base = t->experts + (size_t)l * t->n_tokens * k;
                for (uint64_t pos = p0; pos < p1; pos++) {
                    const uint16_t *ids = base + (size_t)plan->tok[pos] * k;
                    for (uint32_t j = 0; j < k; j++) w[ids[j]] += 1.0;
                }
                if (has_shared) w[n_routed] = (double)(p1 - p0);
            }
        }
        for (size_t i = 0; i < cells; i++) {
            sum[i] += cnt[i];
            sq[i] += cnt[i] * cnt[i];
        }
    }
    const double n = (double)(b - a);
    for (size_t i = 0; i < cells; i++) {
        sum[i] /= n;
        double v = sq[i] / n - sum[i] * sum[i];
        sq[i] = v > 0 ? v : 0;
    }
    ms_loads_free(step);
    return MS_OK;
}

double ms_placement_expected_max(const ms_placement *p, const ms_loads *loads) {
    if (!loads || loads->n_layers != p->n_layers) return NAN;
    double sum = 0;
    for (uint32_t l = 0; l < p->n_layers; l++) sum += ms_placement_max_device_load(p, loads, l);
    return sum;
}

ms_status ms_migration_price(const ms_placement *from, const ms_placement *to, double expert_bytes,
                             double shared_bytes, const ms_hw_preset *hw, ms_migration_cost *out, ms_error *err) {
    memset(out, 0, sizeof *out);
    if (from->n_layers != to->n_layers || from->n_phys != to->n_phys || from->n_logical != to->n_logical ||
        from->cluster.rows != to->cluster.rows || from->cluster.cols != to->cluster.cols ||
        from->cluster.slots_per_device != to->cluster.slots_per_device || from->has_shared != to->has_shared)
        return ms_error_set(err, MS_E_INPUT, "migration: the two placements differ in layers, grid or experts");
    if (!from->log2phy || !from->logcnt)
        return ms_error_set(err, MS_E_INPUT, "migration: the source placement has no replica index");
    const double nv = hw->nvlink_gb_s * hw->nvlink_efficiency * 1e3, net = hw->nic_gb_s * hw->net_efficiency * 1e3;
    if (!(nv > 0) || !(net > 0))
        return ms_error_set(err, MS_E_INPUT, "migration: hardware preset '%s' has a zero link rate", hw->name);
    if (!(expert_bytes > 0)) return ms_error_set(err, MS_E_INPUT, "migration: expert bytes must be positive");
    if (!(shared_bytes > 0)) shared_bytes = expert_bytes;
    const uint32_t D = ms_cluster_devices(&from->cluster), spd = from->cluster.slots_per_device;
    const uint32_t cols = from->cluster.cols, L = from->n_logical, maxr = from->max_replicas;
    const uint32_t shared = from->has_shared ? from->n_routed : UINT32_MAX;
    /* held[d * L + e]: replicas of e on d in `from`, consumed as `to` keeps them */
    uint32_t *held = ms_calloc_array((size_t)D * L, sizeof *held, err);
    double *sent = ms_calloc_array(4 * (size_t)D, sizeof *sent, err); /* [d][send in, send out, recv in, recv out] */
    if (!held || !sent) {
        ms_free(held);
        ms_free(sent);
        return MS_E_NOMEM;
    }
    for (uint32_t l = 0; l < from->n_layers; l++) {
        const int32_t *fp = from->phy2log + (size_t)l * from->n_phys, *tp = to->phy2log + (size_t)l * to->n_phys;
        for (uint32_t s = 0; s < from->n_phys; s++)
            if (fp[s] >= 0) held[(size_t)(s / spd) * L + (uint32_t)fp[s]]++;
        for (uint32_t s = 0; s < to->n_phys; s++) {
            if (tp[s] < 0) continue;
            const uint32_t e = (uint32_t)tp[s], d = s / spd, row = d / cols;
            if (held[(size_t)d * L + e]) {
                held[(size_t)d * L + e]--;
                continue;
            }
            /* a copy: the source in d's row that has sent the least, else any row's */
            const int32_t *reps = from->log2phy + ((size_t)l * L + e) * maxr;
            const uint32_t nrep = from->logcnt[(size_t)l * L + e];
            uint32_t best = UINT32_MAX, best_inter = 1;
            for (uint32_t r = 0; r < nrep; r++) {
                const uint32_t src = (uint32_t)reps[r] / spd, inter = src / cols != row;
                if (best == UINT32_MAX || inter < best_inter ||
                    (inter == best_inter && (sent[4 * (size_t)src + inter] < sent[4 * (size_t)best + inter] ||
                                             (sent[4 * (size_t)src + inter] == sent[4 * (size_t)best + inter] &&
                                              src < best)))) {
                    best = src;
                    best_inter = inter;
                }
            }
            if (best == UINT32_MAX) { /* every logical expert has a replica in an indexed, checked placement */
                ms_free(held);
                ms_free(sent);
                return ms_error_set(err, MS_E_INPUT, "migration: layer %u expert %u has no replica to copy from", l, e);
            }
            const double by = e == shared ? shared_bytes : expert_bytes;
            sent[4 * (size_t)best + best_inter] += by;
            sent[4 * (size_t)d + 2 + best_inter] += by;
            out->moved++;
            out->bytes += by;
            if (best_inter) {
                out->moved_inter++;
                out->inter_bytes += by;
            }
        }
        /* what `to` did not keep stays counted: clear the rest for the next layer */
        for (uint32_t s = 0; s < from->n_phys; s++)
            if (fp[s] >= 0) held[(size_t)(s / spd) * L + (uint32_t)fp[s]] = 0;
    }
    for (uint32_t d = 0; d < D; d++) {
        const double *x = sent + 4 * (size_t)d;
        double in = x[0] > x[2] ? x[0] : x[2], ex = x[1] > x[3] ? x[1] : x[3];
        double t_in = in > 0 ? hw->nvlink_latency_us + in / nv : 0, t_ex = ex > 0 ? hw->net_latency_us + ex / net : 0;
        double t = t_in > t_ex ? t_in : t_ex;
        if (t > out->copy_us) out->copy_us = t;
    }
    ms_free(held);
    ms_free(sent);
    return MS_OK;
}
