/* preset.c - hardware and model presets for the roofline cost model, read
 * from presets/hw/NAME.json and presets/model/NAME.json. Every figure carries
 * its source: {"value": x, "source": "..."}. */
#include "moesim/sim.h"

#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_util.h"

#ifndef MOESIM_PRESET_DIR
#define MOESIM_PRESET_DIR "presets"
#endif

const char *ms_preset_dir(void) {
    const char *e = getenv("MOESIM_PRESET_DIR");
    return (e && *e) ? e : MOESIM_PRESET_DIR;
}

static ms_status open_preset(const char *kind, const char *name, json_t **root, char *path, size_t plen,
                             ms_error *err) {
    char prefix[16];
    snprintf(prefix, sizeof prefix, "%s/", kind);
    return ms_json_load_preset(kind, prefix, NULL, name, root, path, plen, err);
}

/* field {"value": number, "source": non-empty string}; min_ok = smallest allowed value */
static ms_status figure(json_t *root, const char *path, const char *key, bool required, double min_ok, bool strict_min,
                        double max_ok, double *out, ms_error *err) {
    if (!required && !json_object_get(root, key)) return MS_OK;
    double x;
    ms_status st = ms_json_figure(root, path, key, "figure", &x, err);
    if (st != MS_OK) return st;
    if (!(strict_min ? x > min_ok : x >= min_ok) || x > max_ok)
        return ms_error_set(err, MS_E_INPUT, "%s: '%s' = %g is out of range", path, key, x);
    *out = x;
    return MS_OK;
}

static void copy_name(json_t *root, const char *fallback, char *dst, size_t n) {
    json_t *nm = json_object_get(root, "name");
    const char *s = json_is_string(nm) ? json_string_value(nm) : fallback;
    snprintf(dst, n, "%s", s);
}

/* The optional "efficiency_curve" of a hardware preset (moesim calibrate):
 * {"source", "tokens_per_expert": [t...], "efficiency": [e...]}. */
static ms_status eff_curve(json_t *root, const char *path, ms_hw_preset *out, ms_error *err) {
    json_t *c = json_object_get(root, "efficiency_curve");
    if (!c) return MS_OK;
    const char *what = "efficiency_curve";
    if (!json_is_object(c)) return ms_error_set(err, MS_E_INPUT, "%s: '%s' must be an object", path, what);
    json_t *src = json_object_get(c, "source"), *tk = json_object_get(c, "tokens_per_expert"),
           *ev = json_object_get(c, "efficiency");
    if (!json_is_string(src) || json_string_length(src) == 0)
        return ms_error_set(err, MS_E_INPUT, "%s: '%s' has no source", path, what);
    if (!json_is_array(tk) || !json_is_array(ev))
        return ms_error_set(err, MS_E_INPUT, "%s: '%s' needs arrays 'tokens_per_expert' and 'efficiency'", path,
                            what);
    size_t n = json_array_size(tk);
    if (n == 0 || n > MS_HW_EFF_MAX || json_array_size(ev) != n)
        return ms_error_set(err, MS_E_INPUT,
                            "%s: '%s' has %zu tokens_per_expert and %zu efficiency values (need 1..%d of each, "
                            "as many)",
                            path, what, n, json_array_size(ev), MS_HW_EFF_MAX);
    for (size_t i = 0; i < n; i++) {
        json_t *a = json_array_get(tk, i), *b = json_array_get(ev, i);
        double t = json_is_number(a) ? json_number_value(a) : NAN, e = json_is_number(b) ? json_number_value(b) : NAN;
        if (!(t > 0 && t < 1e12) || (i > 0 && !(t > out->eff_tokens[i - 1])))
            return ms_error_set(err, MS_E_INPUT,
                                "%s: '%s' tokens_per_expert[%zu] must be a positive number above the one before",
                                path, what, i);
        if (!(e > 0 && e <= 1))
            return ms_error_set(err, MS_E_INPUT, "%s: '%s' efficiency[%zu] must be in (0, 1]", path, what, i);
        out->eff_tokens[i] = t;
        out->eff_value[i] = e;
    }
    out->eff_n = (uint32_t)n;
    return MS_OK;
}

double ms_hw_efficiency(const ms_hw_preset *hw, double tokens) {
    uint32_t n = hw->eff_n;
    if (n == 0 || n > MS_HW_EFF_MAX) return hw->mfu;
    const double *t = hw->eff_tokens, *e = hw->eff_value;
    if (!(tokens > t[0])) return e[0]; /* also NAN */
    if (tokens >= t[n - 1]) return e[n - 1];
    uint32_t lo = 0, hi = n - 1; /* t[lo] < tokens < t[hi] */
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (t[mid] <= tokens) lo = mid;
        else hi = mid;
    }
    double w = (log(tokens) - log(t[lo])) / (log(t[hi]) - log(t[lo]));
    return e[lo] + w * (e[hi] - e[lo]);
}

ms_status ms_hw_preset_load(const char *name_or_path, ms_hw_preset *out, ms_error *err) {
    char path[1024];
    json_t *root = NULL;
    memset(out, 0, sizeof *out);
    ms_status st = open_preset("hw", name_or_path, &root, path, sizeof path, err);
    if (st != MS_OK) return st;
    copy_name(root, name_or_path, out->name, sizeof out->name);
    const double BIG = 1e12;
    struct {
        const char *key;
        double *dst;
        double lo;
        bool strict;
        double hi;
        bool req;
    } f[] = {
        {"peak_tflops_bf16", &out->peak_tflops_bf16, 0, true, BIG, true},
        {"peak_tflops_fp8", &out->peak_tflops_fp8, 0, true, BIG, true},
        {"mfu", &out->mfu, 0, true, 1, true},
        {"hbm_tb_s", &out->hbm_tb_s, 0, true, BIG, true},
        {"hbm_util", &out->hbm_util, 0, true, 1, true},
        {"memory_gb", &out->memory_gb, 0, true, BIG, true},
        {"nvlink_gb_s", &out->nvlink_gb_s, 0, true, BIG, true},
        {"nvlink_latency_us", &out->nvlink_latency_us, 0, false, BIG, true},
        {"nvlink_efficiency", &out->nvlink_efficiency, 0, true, 1, true},
        {"nic_gb_s", &out->nic_gb_s, 0, true, BIG, true},
        {"net_latency_us", &out->net_latency_us, 0, false, BIG, true},
        {"net_efficiency", &out->net_efficiency, 0, true, 1, true},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0] && st == MS_OK; i++)
        st = figure(root, path, f[i].key, f[i].req, f[i].lo, f[i].strict, f[i].hi, f[i].dst, err);
    if (st == MS_OK) st = eff_curve(root, path, out, err);
    json_decref(root);
    return st;
}

ms_status ms_model_preset_load(const char *name_or_path, ms_model_preset *out, ms_error *err) {
    char path[1024];
    json_t *root = NULL;
    memset(out, 0, sizeof *out);
    ms_status st = open_preset("model", name_or_path, &root, path, sizeof path, err);
    if (st != MS_OK) return st;
    copy_name(root, name_or_path, out->name, sizeof out->name);
    double hidden = 0, inter = 0, routed = 0, topk = 0, nsh = 0, shi = 0, layers = 0;
    double disp = -1, comb = -1;
    const double BIG = 1e15;
    struct {
        const char *key;
        double *dst;
        double lo;
        bool strict;
        double hi;
        bool req;
    } f[] = {
        {"hidden", &hidden, 0, true, 1e7, true},
        {"moe_intermediate", &inter, 0, true, 1e7, true},
        {"routed_experts", &routed, 0, true, 65536, true},
        {"top_k", &topk, 0, true, 65536, true},
        {"shared_experts", &nsh, 0, false, 1024, true},
        {"shared_intermediate", &shi, 0, false, 1e7, true},
        {"moe_layers", &layers, 0, true, 1e5, true},
        {"expert_weight_bytes", &out->expert_weight_bytes, 0, true, 8, true},
        {"dense_params_per_layer", &out->dense_params_per_layer, 0, false, BIG, true},
        {"dispatch_bytes", &disp, 0, true, BIG, false},
        {"combine_bytes", &comb, 0, true, BIG, false},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0] && st == MS_OK; i++)
        st = figure(root, path, f[i].key, f[i].req, f[i].lo, f[i].strict, f[i].hi, f[i].dst, err);
    json_decref(root);
    if (st != MS_OK) return st;
    /* counts must be whole numbers: top_k 0.5 passed the range check and
     * truncated to 0 (found by fuzz/fuzz-preset.c) */
    for (size_t i = 0; i < 7; i++)
        if (*f[i].dst != floor(*f[i].dst))
            return ms_error_set(err, MS_E_INPUT, "%s: '%s' = %g must be a whole number", path, f[i].key, *f[i].dst);
    out->hidden = (uint32_t)hidden;
    out->moe_intermediate = (uint32_t)inter;
    out->routed_experts = (uint32_t)routed;
    out->top_k = (uint32_t)topk;
    out->shared_experts = (uint32_t)nsh;
    out->shared_intermediate = (uint32_t)shi;
    out->moe_layers = (uint32_t)layers;
    /* DeepEP's FP8 dispatch: h bytes plus one fp32 scale per 128 values;
     * combine returns BF16: 2h bytes */
    out->dispatch_bytes = disp > 0 ? disp : hidden + 4.0 * ((out->hidden + 127) / 128);
    out->combine_bytes = comb > 0 ? comb : 2.0 * hidden;
    return MS_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

char **ms_preset_list(const char *kind) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", ms_preset_dir(), kind);
    DIR *d = opendir(dir);
    if (!d) return NULL;
    char names[128][64];
    size_t n = 0, bytes = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < 128) {
        size_t l = strlen(de->d_name);
        if (l <= 5 || l - 5 >= 64 || strcmp(de->d_name + l - 5, ".json") != 0) continue;
        memcpy(names[n], de->d_name, l - 5);
        names[n][l - 5] = '\0';
        bytes += l - 4;
        n++;
    }
    closedir(d);
    if (n == 0) return NULL;
    char **out = ms_alloc_array(1, (n + 1) * sizeof(char *) + bytes, NULL);
    if (!out) return NULL;
    char *s = (char *)(out + n + 1);
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(names[i]) + 1;
        memcpy(s, names[i], l);
        out[i] = s;
        s += l;
    }
    out[n] = NULL;
    qsort(out, n, sizeof *out, cmp_str);
    return out;
}

const char *ms_model_preset_guess(uint32_t n_experts, uint32_t top_k) {
    if (n_experts == 64 && top_k == 6) return "deepseek-v2-lite";
    if (n_experts == 256 && top_k == 8) return "deepseek-v3";
    if (n_experts == 128 && top_k == 1) return "llama4-maverick";
    if (n_experts == 128 && top_k == 8) return "qwen3-235b-a22b";
    if (n_experts == 8 && top_k == 2) return "mixtral-8x7b";
    return NULL;
}
