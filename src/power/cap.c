/* cap.c - power caps: the clock a device runs at under a per-GPU limit and
 * row or cluster budgets (see moesim/power.h, "power caps", and
 * docs/MODEL.md). */
#include "moesim/power.h"

#include <math.h>

#include "moesim/sim.h"

void ms_power_cap_none(ms_power_cap *cap) {
    cap->gpu_w = INFINITY;
    cap->row_w = INFINITY;
    cap->cluster_w = INFINITY;
}

bool ms_power_cap_active(const ms_power_cap *cap) {
    return isfinite(cap->gpu_w) || isfinite(cap->row_w) || isfinite(cap->cluster_w);
}

static ms_status check_one(const char *what, double w, double floor_w, ms_error *err) {
    if (isnan(w) || !(w > 0))
        return ms_error_set(err, MS_E_INPUT, "power cap: the %s must be a positive number of watts", what);
    if (isfinite(w) && !(w > floor_w))
        return ms_error_set(err, MS_E_INPUT,
                            "power cap: the %s of %g W is not above the %g W its GPUs draw idle (no clock can meet it)",
                            what, w, floor_w);
    return MS_OK;
}

ms_status ms_power_cap_check(const ms_power_cap *cap, const ms_energy_coeffs *c, uint32_t n_devices, uint32_t cols,
                             ms_error *err) {
    if (n_devices == 0 || cols == 0 || n_devices % cols != 0)
        return ms_error_set(err, MS_E_INPUT, "power cap: %u devices do not form rows of %u", n_devices, cols);
    ms_status st = check_one("per-GPU cap", cap->gpu_w, c->idle_w, err);
    if (st == MS_OK) st = check_one("row budget", cap->row_w, c->idle_w * cols, err);
    if (st == MS_OK) st = check_one("cluster budget", cap->cluster_w, c->idle_w * n_devices, err);
    return st;
}

double ms_power_at_clock(const ms_energy_coeffs *c, double comp_w, double mem_w, double f) {
    return c->idle_w + comp_w * pow(f, c->freq_exponent) + mem_w * f;
}

double ms_power_cap_clock(const ms_energy_coeffs *c, double cap_w, double comp_w, double mem_w) {
    if (!(ms_power_at_clock(c, comp_w, mem_w, 1.0) > cap_w)) return 1.0;
    const double fmin = c->min_clock, a = c->freq_exponent;
    if (ms_power_at_clock(c, comp_w, mem_w, fmin) >= cap_w) return fmin;
    /* P is convex and increasing on [fmin, 1] with P(fmin) < cap < P(1):
     * Newton's method from f = 1 decreases monotonically to the root */
    double f = 1.0;
    for (int it = 0; it < 100; it++) {
        double fa1 = pow(f, a - 1.0);
        double g = c->idle_w + comp_w * fa1 * f + mem_w * f - cap_w;
        double dg = a * comp_w * fa1 + mem_w;
        double nf = f - g / dg;
        if (nf < fmin) nf = fmin;
        if (fabs(nf - f) <= 1e-12 * f) return nf;
        f = nf;
    }
    return f;
}

/* Holds devices [a, b) to a budget: the largest ceiling g in [fmin, 1] with
 * sum P(min(clock_d, g)) <= budget (to 2^-60) lowers their clocks. Returns 0,
 * or b - a when even min_clock everywhere exceeds the budget (then every
 * device runs at min_clock and the group counts as not met). */
static uint32_t apply_budget(const ms_energy_coeffs *c, double budget, uint32_t a, uint32_t b, const double *comp_w,
                             const double *mem_w, double *clock) {
    double sum = 0;
    for (uint32_t d = a; d < b; d++) sum += ms_power_at_clock(c, comp_w[d], mem_w[d], clock[d]);
    if (!(sum > budget)) return 0;
    const double fmin = c->min_clock;
    double at_min = 0;
    for (uint32_t d = a; d < b; d++) at_min += ms_power_at_clock(c, comp_w[d], mem_w[d], fmin);
    if (at_min >= budget) {
        for (uint32_t d = a; d < b; d++) clock[d] = fmin;
        return b - a;
    }
    double lo = fmin, hi = 1.0;
    /* bisection on the ceiling: the sum is continuous and increasing in g */
    for (int it = 0; it < 60; it++) {
        double g = 0.5 * (lo + hi), s = 0;
        for (uint32_t d = a; d < b; d++) s += ms_power_at_clock(c, comp_w[d], mem_w[d], clock[d] < g ? clock[d] : g);
        if (s > budget) hi = g;
        else lo = g;
    }
    for (uint32_t d = a; d < b; d++) clock[d] = clock[d] < lo ? clock[d] : lo;
    return 0;
}

uint32_t ms_power_cap_clocks(const ms_energy_coeffs *c, const ms_power_cap *cap, uint32_t n_devices, uint32_t cols,
                             const double *comp_w, const double *mem_w, double *clock) {
    uint32_t unmet = 0;
    for (uint32_t d = 0; d < n_devices; d++) {
        clock[d] = 1.0;
        if (isfinite(cap->gpu_w) && (comp_w[d] > 0 || mem_w[d] > 0)) {
            clock[d] = ms_power_cap_clock(c, cap->gpu_w, comp_w[d], mem_w[d]);
            unmet += ms_power_at_clock(c, comp_w[d], mem_w[d], clock[d]) > cap->gpu_w * (1 + 1e-9);
        }
    }
    if (isfinite(cap->row_w) && cols > 0)
        for (uint32_t r0 = 0; r0 + cols <= n_devices; r0 += cols)
            unmet += apply_budget(c, cap->row_w, r0, r0 + cols, comp_w, mem_w, clock);
    if (isfinite(cap->cluster_w)) unmet += apply_budget(c, cap->cluster_w, 0, n_devices, comp_w, mem_w, clock);
    return unmet;
}

ms_status ms_power_throttle_init(ms_power_throttle *t, const ms_energy_coeffs *c, const ms_power_cap *cap,
                                 ms_precision precision, uint32_t n_devices, uint32_t cols, ms_sim_throttle *out,
                                 ms_error *err) {
    if (ms_energy_check(c, err) != MS_OK) return MS_E_INPUT;
    if (ms_power_cap_check(cap, c, n_devices, cols, err) != MS_OK) return MS_E_INPUT;
    if ((unsigned)precision >= MS_PREC_COUNT) return ms_error_set(err, MS_E_INPUT, "power caps: bad precision");
    t->coeffs = *c;
    t->cap = *cap;
    t->precision = precision;
    t->cols = cols;
    out->clocks = ms_power_throttle_clocks;
    out->ctx = t;
    return MS_OK;
}

uint32_t ms_power_throttle_clocks(void *ctx, uint32_t n, const double *busy_us, const double *flops,
                                  const double *hbm_bytes, double *clock, double *scratch) {
    const ms_power_throttle *t = ctx;
    const ms_energy_coeffs *c = &t->coeffs;
    double *comp_w = scratch, *mem_w = scratch + n;
    /* J per FLOP and per byte over seconds: pJ x 1e-12 / (us x 1e-6) */
    const double kf = c->pj_per_flop[t->precision] * 1e-6, kb = 8.0 * c->hbm_pj_per_bit * 1e-6;
    for (uint32_t d = 0; d < n; d++) {
        double b = busy_us[d];
        comp_w[d] = b > 0 ? flops[d] * kf / b : 0;
        mem_w[d] = b > 0 ? hbm_bytes[d] * kb / b : 0;
    }
    return ms_power_cap_clocks(c, &t->cap, n, t->cols, comp_w, mem_w, clock);
}
