/* power.c - the power model over phases (see moesim/power.h). */
#include "moesim/power.h"

#include <jansson.h>
#include <math.h>
#include <string.h>

#include "moesim/sim.h"

enum { F_COMPUTE = 0, F_COMM = 1, F_FLOPS = 2, F_HBM = 3, F_NVLINK = 4, F_NET = 5, F_CLOCK = 6 };

static double *fld(const ms_power_phases *p, uint64_t i, int f) {
    return p->dev + ((size_t)i * MS_POWER_FIELDS + (size_t)f) * p->n_devices;
}

/* phase i's clocks: from v (n_devices values), or 1 when v is NULL */
static void set_clocks(ms_power_phases *p, uint64_t i, const double *v) {
    double *cl = fld(p, i, F_CLOCK);
    for (uint32_t d = 0; d < p->n_devices; d++) cl[d] = v ? v[d] : 1.0;
}

ms_status ms_power_phases_new(uint32_t n_devices, uint64_t n_phases, ms_power_phases **out, ms_error *err) {
    *out = NULL;
    if (n_devices == 0 || n_phases == 0)
        return ms_error_set(err, MS_E_INPUT, "power phases need at least one device and one phase");
    size_t cells;
    if (n_phases > SIZE_MAX / MS_POWER_FIELDS || ms_mul_overflow((size_t)n_phases * MS_POWER_FIELDS, n_devices, &cells))
        return ms_error_set(err, MS_E_NOMEM, "power phases: %llu phases x %u devices is too large",
                            (unsigned long long)n_phases, n_devices);
    ms_power_phases *p = ms_calloc_array(1, sizeof *p, err);
    if (!p) return MS_E_NOMEM;
    p->n_devices = n_devices;
    p->n_phases = n_phases;
    p->precision = MS_PREC_BF16;
    p->batch = ms_calloc_array(n_phases, sizeof *p->batch, err);
    p->layer = ms_calloc_array(n_phases, sizeof *p->layer, err);
    p->wall_s = ms_calloc_array(n_phases, sizeof *p->wall_s, err);
    p->dev = ms_calloc_array(cells, sizeof *p->dev, err);
    if (!p->batch || !p->layer || !p->wall_s || !p->dev) {
        ms_power_phases_free(p);
        return MS_E_NOMEM;
    }
    for (uint64_t i = 0; i < n_phases; i++) set_clocks(p, i, NULL);
    *out = p;
    return MS_OK;
}

void ms_power_phases_free(ms_power_phases *p) {
    if (!p) return;
    ms_free(p->batch);
    ms_free(p->layer);
    ms_free(p->wall_s);
    ms_free(p->dev);
    ms_free(p);
}

ms_status ms_power_phases_set(ms_power_phases *p, uint64_t i, const ms_power_phase *ph, ms_error *err) {
    if (i >= p->n_phases)
        return ms_error_set(err, MS_E_INPUT, "power phase %llu out of range (%llu phases)", (unsigned long long)i,
                            (unsigned long long)p->n_phases);
    if (!ph->compute_s || !ph->flops || !ph->hbm_bytes || !ph->nvlink_bytes || !ph->net_bytes)
        return ms_error_set(err, MS_E_INPUT, "power phase %llu lacks a per-device array", (unsigned long long)i);
    size_t nb = (size_t)p->n_devices * sizeof(double);
    p->batch[i] = ph->batch;
    p->layer[i] = ph->layer;
    p->wall_s[i] = ph->wall_s;
    memcpy(fld(p, i, F_COMPUTE), ph->compute_s, nb);
    if (ph->comm_s) memcpy(fld(p, i, F_COMM), ph->comm_s, nb);
    else memset(fld(p, i, F_COMM), 0, nb);
    memcpy(fld(p, i, F_FLOPS), ph->flops, nb);
    memcpy(fld(p, i, F_HBM), ph->hbm_bytes, nb);
    memcpy(fld(p, i, F_NVLINK), ph->nvlink_bytes, nb);
    memcpy(fld(p, i, F_NET), ph->net_bytes, nb);
    set_clocks(p, i, ph->clock);
    return MS_OK;
}

void ms_power_phases_get(const ms_power_phases *p, uint64_t i, ms_power_phase *out) {
    out->batch = p->batch[i];
    out->layer = p->layer[i];
    out->wall_s = p->wall_s[i];
    out->compute_s = fld(p, i, F_COMPUTE);
    out->comm_s = fld(p, i, F_COMM);
    out->flops = fld(p, i, F_FLOPS);
    out->hbm_bytes = fld(p, i, F_HBM);
    out->nvlink_bytes = fld(p, i, F_NVLINK);
    out->net_bytes = fld(p, i, F_NET);
    out->clock = fld(p, i, F_CLOCK);
}

ms_status ms_power_phases_set_sim(ms_power_phases *p, uint64_t i, const ms_sim_step *s, ms_error *err) {
    if (i >= p->n_phases)
        return ms_error_set(err, MS_E_INPUT, "power phase %llu out of range (%llu phases)", (unsigned long long)i,
                            (unsigned long long)p->n_phases);
    if (s->n_devices != p->n_devices)
        return ms_error_set(err, MS_E_INPUT, "simulation step has %u devices, the power phases %u", s->n_devices,
                            p->n_devices);
    if (!s->rec || !s->busy_us || !s->flops || !s->hbm_bytes || !s->send_intra_bytes || !s->send_inter_bytes)
        return ms_error_set(err, MS_E_INPUT,
                            "the simulation step carries no FLOPs or bytes per device (use --cost-model roofline)");
    p->batch[i] = s->rec->batch;
    p->layer[i] = s->rec->layer;
    p->wall_s[i] = s->rec->layer_us * 1e-6;
    double *cs = fld(p, i, F_COMPUTE), *cm = fld(p, i, F_COMM);
    for (uint32_t d = 0; d < p->n_devices; d++) {
        cs[d] = fmin(s->busy_us[d] * 1e-6, p->wall_s[i]); /* rounding in the simulator's schedule */
        cm[d] = ((s->dispatch_us ? s->dispatch_us[d] : 0) + (s->combine_us ? s->combine_us[d] : 0)) * 1e-6;
    }
    size_t nb = (size_t)p->n_devices * sizeof(double);
    memcpy(fld(p, i, F_FLOPS), s->flops, nb);
    memcpy(fld(p, i, F_HBM), s->hbm_bytes, nb);
    memcpy(fld(p, i, F_NVLINK), s->send_intra_bytes, nb);
    memcpy(fld(p, i, F_NET), s->send_inter_bytes, nb);
    set_clocks(p, i, s->clock);
    return MS_OK;
}

static ms_status read_arr(json_t *ph, const char *path, uint64_t i, const char *key, bool required, double *dst,
                         uint32_t n, ms_error *err) {
    json_t *a = json_object_get(ph, key);
    if (!a) {
        if (required) return ms_error_set(err, MS_E_INPUT, "%s: phase %llu: '%s' is missing", path,
                                          (unsigned long long)i, key);
        return MS_OK;
    }
    if (!json_is_array(a) || json_array_size(a) != n)
        return ms_error_set(err, MS_E_INPUT, "%s: phase %llu: '%s' must be an array of %u numbers", path,
                            (unsigned long long)i, key, n);
    for (uint32_t d = 0; d < n; d++) {
        json_t *v = json_array_get(a, d);
        if (!json_is_number(v))
            return ms_error_set(err, MS_E_INPUT, "%s: phase %llu: %s[%u] is not a number", path,
                                (unsigned long long)i, key, d);
        dst[d] = json_number_value(v);
    }
    return MS_OK;
}

ms_status ms_power_phases_read_json(const char *path, ms_power_phases **out, ms_error *err) {
    *out = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    ms_status st = ms_file_read_all(path, &buf, &len, err);
    if (st != MS_OK) return st;
    json_error_t je;
    json_t *root = json_loadb((const char *)buf, len, 0, &je);
    ms_free(buf);
    if (!root) return ms_error_set(err, MS_E_INPUT, "%s: line %d: %s", path, je.line, je.text);
    json_t *dv = json_object_get(root, "devices"), *phs = json_object_get(root, "phases");
    json_t *tk = json_object_get(root, "tokens"), *pr = json_object_get(root, "precision");
    ms_power_phases *p = NULL;
    if (!json_is_object(root) || !json_is_integer(dv) || json_integer_value(dv) < 1 ||
        json_integer_value(dv) > (1 << 24) || !json_is_array(phs) || json_array_size(phs) == 0) {
        st = ms_error_set(err, MS_E_INPUT, "%s: needs \"devices\" (1..2^24) and a non-empty \"phases\" array", path);
        goto done;
    }
    if (tk && !json_is_number(tk)) {
        st = ms_error_set(err, MS_E_INPUT, "%s: \"tokens\" must be a number", path);
        goto done;
    }
    st = ms_power_phases_new((uint32_t)json_integer_value(dv), json_array_size(phs), &p, err);
    if (st != MS_OK) goto done;
    if (pr && (!json_is_string(pr) || ms_precision_parse(json_string_value(pr), &p->precision, err) != MS_OK)) {
        st = ms_error_set(err, MS_E_INPUT, "%s: bad \"precision\" (fp32, bf16, fp16, fp8)", path);
        goto done;
    }
    p->tokens = tk ? json_number_value(tk) : 0;
    static const char *keys[MS_POWER_FIELDS] = {"compute_s", "comm_s", "flops", "hbm_bytes", "nvlink_bytes",
                                                "net_bytes", "clock"};
    for (uint64_t i = 0; i < p->n_phases && st == MS_OK; i++) {
        json_t *ph = json_array_get(phs, i);
        json_t *w = json_object_get(ph, "wall_s"), *b = json_object_get(ph, "batch"), *l = json_object_get(ph, "layer");
        if (!json_is_object(ph) || !json_is_number(w)) {
            st = ms_error_set(err, MS_E_INPUT, "%s: phase %llu needs a numeric wall_s", path, (unsigned long long)i);
            break;
        }
        if ((b && (!json_is_integer(b) || json_integer_value(b) < 0)) ||
            (l && (!json_is_integer(l) || json_integer_value(l) < 0 || json_integer_value(l) > UINT32_MAX))) {
            st = ms_error_set(err, MS_E_INPUT, "%s: phase %llu: batch and layer must be non-negative integers", path,
                              (unsigned long long)i);
            break;
        }
        p->wall_s[i] = json_number_value(w);
        p->batch[i] = b ? (uint64_t)json_integer_value(b) : 0;
        p->layer[i] = l ? (uint32_t)json_integer_value(l) : 0;
        for (int f = 0; f < MS_POWER_FIELDS && st == MS_OK; f++)
            st = read_arr(ph, path, i, keys[f], f != F_COMM && f != F_CLOCK, fld(p, i, f), p->n_devices, err);
    }
done:
    json_decref(root);
    if (st != MS_OK) {
        ms_power_phases_free(p);
        return st;
    }
    *out = p;
    return MS_OK;
}

const char *ms_power_part_name(ms_power_part p) {
    static const char *names[MS_PART_COUNT] = {"compute", "memory", "nvlink", "network", "static", "wait"};
    return (unsigned)p < MS_PART_COUNT ? names[p] : "?";
}

/* dynamic energy by part of device d in phase i; FLOPs at clock f < 1 cost
 * f^(alpha - 1) of their full-clock energy */
static void dyn_parts(const ms_power_phases *in, const ms_energy_coeffs *c, uint64_t i, uint32_t d, double e[4]) {
    double f = fld(in, i, F_CLOCK)[d];
    e[0] = fld(in, i, F_FLOPS)[d] * c->pj_per_flop[in->precision] * 1e-12;
    if (f < 1) e[0] *= pow(f, c->freq_exponent - 1.0);
    e[1] = fld(in, i, F_HBM)[d] * 8.0 * c->hbm_pj_per_bit * 1e-12;
    e[2] = fld(in, i, F_NVLINK)[d] * 8.0 * c->nvlink_pj_per_bit * 1e-12;
    e[3] = fld(in, i, F_NET)[d] * 8.0 * ms_energy_net_pj_per_bit(c) * 1e-12;
}

/* active time of device d in phase i: min(wall, compute + comm); a device with
 * dynamic energy but no time of its own is active for the whole phase */
static double active_time(const ms_power_phases *in, uint64_t i, uint32_t d, double dyn) {
    double wall = in->wall_s[i];
    double a = fld(in, i, F_COMPUTE)[d] + fld(in, i, F_COMM)[d];
    if (a > wall) a = wall;
    if (a <= 0 && dyn > 0) a = wall;
    return a;
}

/* the power of device d while it does its busiest activity: idle + compute
 * power (FLOPs and HBM over compute_s) or transfer power (bytes over
 * comm_s), both when the two overlap (compute + comm > wall); energy
 * without a time of its own is spread over the active time */
static double device_peak_w(const ms_power_phases *in, const ms_energy_coeffs *c, uint64_t i, uint32_t d,
                            const double e[4], double a) {
    double cs = fld(in, i, F_COMPUTE)[d], cm = fld(in, i, F_COMM)[d], wall = in->wall_s[i];
    double ek = e[0] + e[1], ec = e[2] + e[3];
    double pk = 0, pc = 0, spread = 0;
    if (cs > 0) pk = ek / cs;
    else spread += ek;
    if (cm > 0) pc = ec / cm;
    else spread += ec;
    if (spread > 0 && a > 0) {
        if (cs > 0) pk += spread / cs;
        else pk += spread / a;
    }
    bool overlapped = cs + cm > wall * (1 + 1e-9);
    return c->idle_w + (overlapped ? pk + pc : fmax(pk, pc));
}

void ms_power_device_phase(const ms_power_phases *in, const ms_energy_coeffs *c, uint64_t phase, uint32_t device,
                           double *active_s, double *active_w, double *dynamic_j) {
    double e[4];
    dyn_parts(in, c, phase, device, e);
    double dyn = e[0] + e[1] + e[2] + e[3];
    double a = active_time(in, phase, device, dyn);
    if (active_s) *active_s = a;
    if (active_w) *active_w = a > 0 ? c->idle_w + dyn / a : c->idle_w;
    if (dynamic_j) *dynamic_j = dyn;
}

void ms_power_result_free(ms_power_result *r) {
    if (!r) return;
    ms_free(r->dev_energy_j);
    ms_free(r->dev_active_s);
    ms_free(r->dev_wait_s);
    ms_free(r->dev_peak_w);
    ms_free(r->phase_start_s);
    ms_free(r->phase_avg_w);
    ms_free(r->phase_peak_w);
    ms_free(r->phase_energy_j);
    ms_free(r);
}

static ms_status check_phase(const ms_power_phases *in, uint64_t i, ms_error *err) {
    static const char *names[MS_POWER_FIELDS] = {"compute_s", "comm_s", "flops", "hbm_bytes", "nvlink_bytes",
                                                 "net_bytes", "clock"};
    double wall = in->wall_s[i];
    if (!isfinite(wall) || wall < 0)
        return ms_error_set(err, MS_E_INPUT, "power phase %llu: wall time %g is negative or not finite",
                            (unsigned long long)i, wall);
    for (int f = 0; f < MS_POWER_FIELDS; f++) {
        const double *v = fld(in, i, f);
        for (uint32_t d = 0; d < in->n_devices; d++)
            if (!isfinite(v[d]) || v[d] < 0)
                return ms_error_set(err, MS_E_INPUT, "power phase %llu, device %u: %s = %g is negative or not finite",
                                    (unsigned long long)i, d, names[f], v[d]);
    }
    const double *cs = fld(in, i, F_COMPUTE), *cl = fld(in, i, F_CLOCK);
    for (uint32_t d = 0; d < in->n_devices; d++)
        if (!(cl[d] > 0 && cl[d] <= 1))
            return ms_error_set(err, MS_E_INPUT, "power phase %llu, device %u: clock %g is outside (0, 1]",
                                (unsigned long long)i, d, cl[d]);
    for (uint32_t d = 0; d < in->n_devices; d++)
        if (cs[d] > wall * (1 + 1e-6) + 1e-15)
            return ms_error_set(err, MS_E_INPUT,
                                "power phase %llu, device %u: computes %g s, longer than the phase's wall time %g s",
                                (unsigned long long)i, d, cs[d], wall);
    return MS_OK;
}

ms_status ms_power_compute(const ms_power_phases *in, const ms_energy_coeffs *c, ms_power_result **out,
                           ms_error *err) {
    *out = NULL;
    if (ms_energy_check(c, err) != MS_OK) return MS_E_INPUT;
    if (!isfinite(in->tokens) || in->tokens < 0)
        return ms_error_set(err, MS_E_INPUT, "power phases: tokens %g is negative or not finite", in->tokens);
    for (uint64_t i = 0; i < in->n_phases; i++)
        if (check_phase(in, i, err) != MS_OK) return MS_E_INPUT;
    const uint32_t D = in->n_devices;
    const uint64_t P = in->n_phases;
    ms_power_result *r = ms_calloc_array(1, sizeof *r, err);
    if (!r) return MS_E_NOMEM;
    r->n_devices = D;
    r->n_phases = P;
    r->tokens = in->tokens;
    r->dev_energy_j = ms_calloc_array(D, sizeof(double), err);
    r->dev_active_s = ms_calloc_array(D, sizeof(double), err);
    r->dev_wait_s = ms_calloc_array(D, sizeof(double), err);
    r->dev_peak_w = ms_calloc_array(D, sizeof(double), err);
    r->phase_start_s = ms_calloc_array(P, sizeof(double), err);
    r->phase_avg_w = ms_calloc_array(P, sizeof(double), err);
    r->phase_peak_w = ms_calloc_array(P, sizeof(double), err);
    r->phase_energy_j = ms_calloc_array(P, sizeof(double), err);
    if (!r->dev_energy_j || !r->dev_active_s || !r->dev_wait_s || !r->dev_peak_w || !r->phase_start_s ||
        !r->phase_avg_w || !r->phase_peak_w || !r->phase_energy_j) {
        ms_power_result_free(r);
        return MS_E_NOMEM;
    }
    double t = 0;
    for (uint64_t i = 0; i < P; i++) {
        double wall = in->wall_s[i];
        double phase_e = 0, peak = 0;
        for (uint32_t d = 0; d < D; d++) {
            double e[4];
            dyn_parts(in, c, i, d, e);
            double dyn = e[0] + e[1] + e[2] + e[3];
            if (dyn > 0 && wall <= 0) {
                ms_power_result_free(r);
                return ms_error_set(err, MS_E_INPUT,
                                    "power phase %llu, device %u: energy without time (wall time is 0)",
                                    (unsigned long long)i, d);
            }
            double a = active_time(in, i, d, dyn);
            double wait = wall - a;
            double es = c->idle_w * a, ew = c->idle_w * wait;
            for (int k = 0; k < 4; k++) r->energy_j[k] += e[k];
            r->energy_j[MS_PART_STATIC] += es;
            r->energy_j[MS_PART_WAIT] += ew;
            double ed = dyn + es + ew;
            phase_e += ed;
            r->dev_energy_j[d] += ed;
            r->dev_active_s[d] += a;
            r->dev_wait_s[d] += wait;
            double pw = device_peak_w(in, c, i, d, e, a);
            if (wall > 0) {
                peak += pw;
                if (pw > r->dev_peak_w[d]) r->dev_peak_w[d] = pw;
                if (a > 0 && pw > c->tdp_w) r->over_tdp++;
            }
        }
        r->phase_start_s[i] = t;
        r->phase_energy_j[i] = phase_e;
        r->phase_avg_w[i] = wall > 0 ? phase_e / wall : 0;
        r->phase_peak_w[i] = peak;
        if (peak > r->peak_w) {
            r->peak_w = peak;
            r->peak_phase = i;
        }
        if (r->phase_avg_w[i] > r->peak_phase_avg_w) r->peak_phase_avg_w = r->phase_avg_w[i];
        t += wall;
    }
    r->wall_s = t;
    for (int k = 0; k < MS_PART_COUNT; k++) r->total_j += r->energy_j[k];
    r->avg_w = t > 0 ? r->total_j / t : 0;
    r->energy_per_token_j = in->tokens > 0 ? r->total_j / in->tokens : 0;
    double sum = 0, mx = 0;
    for (uint32_t d = 0; d < D; d++) {
        sum += r->dev_energy_j[d];
        if (r->dev_energy_j[d] > mx) mx = r->dev_energy_j[d];
        if (r->dev_peak_w[d] > r->max_device_w) r->max_device_w = r->dev_peak_w[d];
    }
    r->device_power_imbalance = sum > 0 ? mx / (sum / D) : 1.0;
    *out = r;
    return MS_OK;
}

static json_t *arr(const double *v, uint64_t n) {
    json_t *a = json_array();
    for (uint64_t i = 0; i < n; i++) json_array_append_new(a, json_real(v[i]));
    return a;
}

json_t *ms_power_result_json(const ms_power_result *r, bool timeline) {
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "devices", json_integer(r->n_devices));
    json_object_set_new(o, "phases", json_integer((json_int_t)r->n_phases));
    json_object_set_new(o, "wall_s", json_real(r->wall_s));
    json_object_set_new(o, "tokens", json_real(r->tokens));
    json_object_set_new(o, "energy_j", json_real(r->total_j));
    json_object_set_new(o, "energy_per_token_j", json_real(r->energy_per_token_j));
    json_object_set_new(o, "avg_w", json_real(r->avg_w));
    json_object_set_new(o, "peak_w", json_real(r->peak_w));
    json_object_set_new(o, "peak_phase", json_integer((json_int_t)r->peak_phase));
    json_object_set_new(o, "peak_phase_avg_w", json_real(r->peak_phase_avg_w));
    json_object_set_new(o, "max_device_w", json_real(r->max_device_w));
    json_object_set_new(o, "device_power_imbalance", json_real(r->device_power_imbalance));
    json_object_set_new(o, "over_tdp", json_integer((json_int_t)r->over_tdp));
    json_t *parts = json_object();
    for (int k = 0; k < MS_PART_COUNT; k++) {
        json_t *p = json_object();
        json_object_set_new(p, "j", json_real(r->energy_j[k]));
        json_object_set_new(p, "share", json_real(r->total_j > 0 ? r->energy_j[k] / r->total_j : 0));
        json_object_set_new(parts, ms_power_part_name((ms_power_part)k), p);
    }
    json_object_set_new(o, "parts", parts);
    double T = r->total_j > 0 ? r->total_j : 1;
    json_t *g = json_object();
    json_object_set_new(g, "compute", json_real(r->energy_j[MS_PART_COMPUTE] / T));
    json_object_set_new(g, "memory", json_real(r->energy_j[MS_PART_MEMORY] / T));
    json_object_set_new(g, "communication",
                        json_real((r->energy_j[MS_PART_NVLINK] + r->energy_j[MS_PART_NETWORK]) / T));
    json_object_set_new(g, "idle", json_real((r->energy_j[MS_PART_STATIC] + r->energy_j[MS_PART_WAIT]) / T));
    json_object_set_new(o, "shares", g);
    json_t *dv = json_object();
    json_object_set_new(dv, "energy_j", arr(r->dev_energy_j, r->n_devices));
    json_object_set_new(dv, "active_s", arr(r->dev_active_s, r->n_devices));
    json_object_set_new(dv, "wait_s", arr(r->dev_wait_s, r->n_devices));
    json_object_set_new(dv, "peak_w", arr(r->dev_peak_w, r->n_devices));
    json_object_set_new(o, "per_device", dv);
    if (timeline) {
        json_t *tl = json_object();
        json_object_set_new(tl, "start_s", arr(r->phase_start_s, r->n_phases));
        json_object_set_new(tl, "avg_w", arr(r->phase_avg_w, r->n_phases));
        json_object_set_new(tl, "peak_w", arr(r->phase_peak_w, r->n_phases));
        json_object_set_new(tl, "energy_j", arr(r->phase_energy_j, r->n_phases));
        json_object_set_new(o, "timeline", tl);
    }
    return o;
}
