/* energy.c - precisions and energy coefficients (presets/energy-<gpu>.json). */
#include "moesim/power.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_util.h"
#include "moesim/sim.h"

const char *ms_precision_name(ms_precision p) {
    switch (p) {
    case MS_PREC_FP32: return "fp32";
    case MS_PREC_BF16: return "bf16";
    case MS_PREC_FP8: return "fp8";
    }
    return "?";
}

ms_status ms_precision_parse(const char *s, ms_precision *out, ms_error *err) {
    if (s && (strcmp(s, "fp32") == 0 || strcmp(s, "tf32") == 0)) *out = MS_PREC_FP32;
    else if (s && (strcmp(s, "bf16") == 0 || strcmp(s, "fp16") == 0)) *out = MS_PREC_BF16;
    else if (s && strcmp(s, "fp8") == 0) *out = MS_PREC_FP8;
    else return ms_error_set(err, MS_E_INPUT, "unknown precision '%s' (fp32, tf32, bf16, fp16, fp8)", s ? s : "");
    return MS_OK;
}

double ms_precision_bytes(ms_precision p) { return p == MS_PREC_FP32 ? 4.0 : p == MS_PREC_FP8 ? 1.0 : 2.0; }

/* key -> field */
typedef struct coef_key {
    const char *key;
    size_t off;
} coef_key;

#define OFF(f) offsetof(ms_energy_coeffs, f)
static const coef_key KEYS[] = {
    {"pj_per_flop_fp32", OFF(pj_per_flop) + sizeof(double) * MS_PREC_FP32},
    {"pj_per_flop_bf16", OFF(pj_per_flop) + sizeof(double) * MS_PREC_BF16},
    {"pj_per_flop_fp8", OFF(pj_per_flop) + sizeof(double) * MS_PREC_FP8},
    {"hbm_pj_per_bit", OFF(hbm_pj_per_bit)},
    {"nvlink_pj_per_bit", OFF(nvlink_pj_per_bit)},
    {"nic_pj_per_bit", OFF(nic_pj_per_bit)},
    {"switch_pj_per_bit", OFF(switch_pj_per_bit)},
    {"optics_pj_per_bit", OFF(optics_pj_per_bit)},
    {"switch_hops", OFF(switch_hops)},
    {"freq_exponent", OFF(freq_exponent)},
    {"min_clock", OFF(min_clock)},
    {"idle_w", OFF(idle_w)},
    {"tdp_w", OFF(tdp_w)},
    {"node_overhead_w", OFF(node_overhead_w)},
    {"pue", OFF(pue)},
};
#undef OFF
#define N_KEYS (sizeof KEYS / sizeof KEYS[0])

static double *field(ms_energy_coeffs *c, size_t k) { return (double *)((char *)c + KEYS[k].off); }

double ms_energy_net_pj_per_bit(const ms_energy_coeffs *c) {
    return 2.0 * c->nic_pj_per_bit + c->switch_hops * c->switch_pj_per_bit +
           (c->switch_hops + 1.0) * c->optics_pj_per_bit;
}

ms_status ms_energy_check(const ms_energy_coeffs *c, ms_error *err) {
    ms_energy_coeffs tmp = *c;
    for (size_t k = 0; k < N_KEYS; k++) {
        double v = *field(&tmp, k);
        if (!isfinite(v) || v < 0)
            return ms_error_set(err, MS_E_INPUT, "energy coefficient %s = %g must be finite and >= 0", KEYS[k].key, v);
    }
    if (c->pue < 1) return ms_error_set(err, MS_E_INPUT, "energy coefficient pue = %g must be >= 1", c->pue);
    if (c->freq_exponent < 1)
        return ms_error_set(err, MS_E_INPUT, "energy coefficient freq_exponent = %g must be >= 1", c->freq_exponent);
    if (!(c->min_clock > 0 && c->min_clock <= 1))
        return ms_error_set(err, MS_E_INPUT, "energy coefficient min_clock = %g must be in (0, 1]", c->min_clock);
    if (!(c->tdp_w > 0)) return ms_error_set(err, MS_E_INPUT, "energy coefficient tdp_w must be positive");
    if (c->idle_w >= c->tdp_w)
        return ms_error_set(err, MS_E_INPUT, "energy coefficients: idle_w %g must be below tdp_w %g", c->idle_w,
                            c->tdp_w);
    return MS_OK;
}

ms_status ms_energy_set(ms_energy_coeffs *c, const char *key, double value, ms_error *err) {
    for (size_t k = 0; k < N_KEYS; k++) {
        if (strcmp(KEYS[k].key, key) != 0) continue;
        if (!isfinite(value) || value < 0)
            return ms_error_set(err, MS_E_INPUT, "energy coefficient %s = %g must be finite and >= 0", key, value);
        if (strcmp(key, "pue") == 0 && value < 1)
            return ms_error_set(err, MS_E_INPUT, "energy coefficient pue = %g must be >= 1", value);
        if (strcmp(key, "freq_exponent") == 0 && value < 1)
            return ms_error_set(err, MS_E_INPUT, "energy coefficient freq_exponent = %g must be >= 1", value);
        if (strcmp(key, "min_clock") == 0 && !(value > 0 && value <= 1))
            return ms_error_set(err, MS_E_INPUT, "energy coefficient min_clock = %g must be in (0, 1]", value);
        *field(c, k) = value;
        return MS_OK;
    }
    char list[512] = "";
    for (size_t k = 0; k < N_KEYS; k++) {
        strncat(list, KEYS[k].key, sizeof list - strlen(list) - 1);
        if (k + 1 < N_KEYS) strncat(list, ", ", sizeof list - strlen(list) - 1);
    }
    return ms_error_set(err, MS_E_INPUT, "unknown energy coefficient '%s' (known: %s)", key, list);
}

ms_status ms_energy_set_str(ms_energy_coeffs *c, const char *a, ms_error *err) {
    const char *eq = a ? strchr(a, '=') : NULL;
    if (!eq || eq == a || eq[1] == '\0')
        return ms_error_set(err, MS_E_INPUT, "energy coefficient '%s' must be KEY=VALUE", a ? a : "");
    char key[64];
    size_t n = (size_t)(eq - a);
    if (n >= sizeof key) return ms_error_set(err, MS_E_INPUT, "energy coefficient name in '%s' is too long", a);
    memcpy(key, a, n);
    key[n] = '\0';
    char *end = NULL;
    double v = strtod(eq + 1, &end);
    if (!end || *end != '\0' || end == eq + 1)
        return ms_error_set(err, MS_E_INPUT, "energy coefficient '%s': '%s' is not a number", key, eq + 1);
    return ms_energy_set(c, key, v, err);
}

ms_status ms_energy_load(const char *name, ms_energy_coeffs *out, ms_error *err) {
    memset(out, 0, sizeof *out);
    char path[1024];
    json_t *root;
    ms_status st =
        ms_json_load_preset("energy", "energy-", "no energy coefficients for GPU", name, &root, path, sizeof path, err);
    if (st != MS_OK) return st;
    json_t *g = json_object_get(root, "gpu");
    snprintf(out->name, sizeof out->name, "%s", json_is_string(g) ? json_string_value(g) : name);
    for (size_t k = 0; k < N_KEYS && st == MS_OK; k++) {
        double v;
        st = ms_json_figure(root, path, KEYS[k].key, "coefficient", &v, err);
        if (st == MS_OK && ms_energy_set(out, KEYS[k].key, v, err) != MS_OK) st = ms_error_prefix(err, path);
    }
    json_decref(root);
    if (st == MS_OK && ms_energy_check(out, err) != MS_OK) st = ms_error_prefix(err, path);
    return st;
}

json_t *ms_energy_json(const ms_energy_coeffs *c) {
    json_t *o = json_object();
    if (!o) return NULL;
    ms_energy_coeffs tmp = *c;
    json_object_set_new(o, "gpu", json_string(c->name));
    for (size_t k = 0; k < N_KEYS; k++) json_object_set_new(o, KEYS[k].key, json_real(*field(&tmp, k)));
    json_object_set_new(o, "net_pj_per_bit", json_real(ms_energy_net_pj_per_bit(c)));
    return o;
}

double ms_energy_dynamic_j(const ms_energy_coeffs *c, ms_precision p, double flops, double hbm_bytes,
                           double nvlink_bytes, double net_bytes) {
    return 1e-12 * (flops * c->pj_per_flop[p] + 8.0 * hbm_bytes * c->hbm_pj_per_bit +
                    8.0 * nvlink_bytes * c->nvlink_pj_per_bit + 8.0 * net_bytes * ms_energy_net_pj_per_bit(c));
}
