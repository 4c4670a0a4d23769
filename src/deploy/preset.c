/* preset.c - deployment presets (presets/deploy/NAME.json) and plan specs. */
#include "moesim/deploy.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_util.h"

/* a number, plain or {"value": x, "source": "..."}; absent -> *out unchanged
 * unless required */
static ms_status num(json_t *obj, const char *path, const char *sect, const char *key, bool required, double lo,
                     double hi, double *out, ms_error *err) {
    json_t *f = json_object_get(obj, key);
    if (!f) {
        if (required) return ms_error_set(err, MS_E_INPUT, "%s: %s.%s is missing", path, sect, key);
        return MS_OK;
    }
    if (json_is_object(f)) {
        json_t *s = json_object_get(f, "source");
        if (s && (!json_is_string(s) || json_string_length(s) == 0))
            return ms_error_set(err, MS_E_INPUT, "%s: %s.%s has an empty source", path, sect, key);
        f = json_object_get(f, "value");
    }
    if (!json_is_number(f))
        return ms_error_set(err, MS_E_INPUT, "%s: %s.%s must be a number or {\"value\": number, \"source\": ...}",
                            path, sect, key);
    double v = json_number_value(f);
    if (!(v >= lo && v <= hi))
        return ms_error_set(err, MS_E_INPUT, "%s: %s.%s = %g is out of range [%g, %g]", path, sect, key, v, lo, hi);
    *out = v;
    return MS_OK;
}

static ms_status u32(json_t *obj, const char *path, const char *sect, const char *key, bool required, double lo,
                     uint32_t *out, ms_error *err) {
    double v = *out;
    ms_status st = num(obj, path, sect, key, required, lo, 4294967295.0, &v, err);
    if (st != MS_OK) return st;
    if (v != floor(v)) return ms_error_set(err, MS_E_INPUT, "%s: %s.%s = %g must be an integer", path, sect, key, v);
    *out = (uint32_t)v;
    return MS_OK;
}

static ms_status boolean(json_t *obj, const char *path, const char *sect, const char *key, bool *out, ms_error *err) {
    json_t *f = json_object_get(obj, key);
    if (!f) return MS_OK;
    if (!json_is_boolean(f)) return ms_error_set(err, MS_E_INPUT, "%s: %s.%s must be true or false", path, sect, key);
    *out = json_is_true(f);
    return MS_OK;
}

static ms_status str(json_t *obj, const char *path, const char *sect, const char *key, char *dst, size_t n,
                     ms_error *err) {
    json_t *f = json_object_get(obj, key);
    if (!f) return MS_OK;
    if (!json_is_string(f) || json_string_length(f) >= n)
        return ms_error_set(err, MS_E_INPUT, "%s: %s.%s must be a string shorter than %zu", path, sect, key, n);
    snprintf(dst, n, "%s", json_string_value(f));
    return MS_OK;
}

#define TRY(x)                          \
    do {                                \
        if ((st = (x)) != MS_OK) goto done; \
    } while (0)

static ms_status load_model(json_t *o, const char *path, ms_deploy_model *m, ms_error *err) {
    ms_status st = MS_OK;
    const char *s = "model";
    char prec[16] = "";
    if (!json_is_object(o)) return ms_error_set(err, MS_E_INPUT, "%s: 'model' must be an object", path);
    TRY(str(o, path, s, "name", m->name, sizeof m->name, err));
    TRY(u32(o, path, s, "layers", true, 1, &m->layers, err));
    TRY(u32(o, path, s, "dense_layers", false, 0, &m->dense_layers, err));
    TRY(u32(o, path, s, "hidden", true, 1, &m->hidden, err));
    TRY(u32(o, path, s, "heads", true, 1, &m->heads, err));
    TRY(u32(o, path, s, "head_dim", true, 1, &m->head_dim, err));
    TRY(u32(o, path, s, "kv_heads", false, 0, &m->kv_heads, err));
    TRY(u32(o, path, s, "experts", false, 0, &m->experts, err));
    TRY(u32(o, path, s, "top_k", false, 0, &m->top_k, err));
    TRY(u32(o, path, s, "expert_hidden", false, 0, &m->expert_hidden, err));
    TRY(u32(o, path, s, "expert_matrices", false, 2, &m->expert_matrices, err));
    TRY(u32(o, path, s, "shared_experts", false, 0, &m->shared_experts, err));
    TRY(u32(o, path, s, "dense_hidden", false, 0, &m->dense_hidden, err));
    TRY(u32(o, path, s, "vocab", false, 0, &m->vocab, err));
    TRY(str(o, path, s, "precision", prec, sizeof prec, err));
    if (prec[0] && ms_precision_parse(prec, &m->precision, err) != MS_OK) st = ms_error_prefix(err, path);
done:
    return st;
}

static ms_status load_workload(json_t *o, const char *path, ms_deploy_workload *w, ms_error *err) {
    ms_status st = MS_OK;
    const char *s = "workload";
    char phase[16] = "";
    double v;
    if (!json_is_object(o)) return ms_error_set(err, MS_E_INPUT, "%s: 'workload' must be an object", path);
    TRY(str(o, path, s, "phase", phase, sizeof phase, err));
    if (phase[0]) {
        if (strcmp(phase, "prefill") == 0) w->phase = MS_DEPLOY_PREFILL;
        else if (strcmp(phase, "decode") == 0) w->phase = MS_DEPLOY_DECODE;
        else TRY(ms_error_set(err, MS_E_INPUT, "%s: workload.phase must be prefill or decode", path));
    }
    v = (double)w->sequences;
    TRY(num(o, path, s, "sequences", true, 1, 1e15, &v, err));
    w->sequences = (uint64_t)v;
    v = (double)w->seq_len;
    TRY(num(o, path, s, "seq_len", true, 1, 1e12, &v, err));
    w->seq_len = (uint64_t)v;
    v = (double)w->micro_batch;
    TRY(num(o, path, s, "micro_batch", false, 0, 1e15, &v, err));
    w->micro_batch = (uint64_t)v;
    TRY(boolean(o, path, s, "causal", &w->causal, err));
    TRY(boolean(o, path, s, "flash", &w->flash, err));
done:
    return st;
}

static ms_status load_plan(json_t *o, const char *path, uint32_t i, ms_deploy_plan *p, ms_error *err) {
    ms_status st = MS_OK;
    char s[32];
    snprintf(s, sizeof s, "plans[%u]", i);
    ms_deploy_plan_default(p);
    snprintf(p->name, sizeof p->name, "plan%u", i);
    if (!json_is_object(o)) return ms_error_set(err, MS_E_INPUT, "%s: %s must be an object", path, s);
    TRY(str(o, path, s, "name", p->name, sizeof p->name, err));
    TRY(u32(o, path, s, "tp", false, 1, &p->tp, err));
    TRY(u32(o, path, s, "pp", false, 1, &p->pp, err));
    TRY(u32(o, path, s, "ep", false, 1, &p->ep, err));
    TRY(u32(o, path, s, "dp", false, 1, &p->dp, err));
    TRY(boolean(o, path, s, "overlap", &p->overlap, err));
    TRY(num(o, path, s, "overlap_eff", false, 0, 1, &p->overlap_eff, err));
    TRY(num(o, path, s, "imbalance", false, 1, 1e6, &p->imbalance, err));
    TRY(num(o, path, s, "dispatch_bytes", false, 0, 8, &p->dispatch_bytes, err));
done:
    return st;
}

ms_status ms_deploy_preset_load(const char *name, ms_deploy_preset *out, ms_error *err) {
    memset(out, 0, sizeof *out);
    ms_deploy_model_default(&out->model);
    ms_deploy_workload_default(&out->workload);
    out->gpus_per_node = 8;
    char path[1024];
    json_t *root;
    ms_status st = ms_json_load_preset("deployment", "deploy/", NULL, name, &root, path, sizeof path, err);
    if (st != MS_OK) return st;
    snprintf(out->name, sizeof out->name, "%s", name);
    TRY(str(root, path, "preset", "name", out->name, sizeof out->name, err));
    TRY(str(root, path, "preset", "description", out->description, sizeof out->description, err));
    TRY(str(root, path, "preset", "gpu", out->gpu, sizeof out->gpu, err));
    TRY(str(root, path, "preset", "energy", out->energy, sizeof out->energy, err));
    if (!out->gpu[0]) TRY(ms_error_set(err, MS_E_INPUT, "%s: 'gpu' (a hardware preset name) is missing", path));
    TRY(u32(root, path, "preset", "gpus_per_node", false, 1, &out->gpus_per_node, err));
    TRY(u32(root, path, "preset", "gpus", false, 0, &out->gpus, err));
    json_t *m = json_object_get(root, "model"), *w = json_object_get(root, "workload"),
           *pl = json_object_get(root, "plans");
    if (!m || !w) TRY(ms_error_set(err, MS_E_INPUT, "%s: 'model' and 'workload' are required", path));
    TRY(load_model(m, path, &out->model, err));
    if (!out->model.name[0]) snprintf(out->model.name, sizeof out->model.name, "%s", out->name);
    TRY(load_workload(w, path, &out->workload, err));
    if (pl) {
        if (!json_is_array(pl) || json_array_size(pl) > MS_DEPLOY_MAX_PLANS)
            TRY(ms_error_set(err, MS_E_INPUT, "%s: 'plans' must be an array of at most %d plans", path,
                             MS_DEPLOY_MAX_PLANS));
        for (size_t i = 0; i < json_array_size(pl); i++)
            TRY(load_plan(json_array_get(pl, i), path, (uint32_t)i, &out->plans[i], err));
        out->n_plans = (uint32_t)json_array_size(pl);
    }
    if (ms_deploy_model_check(&out->model, err) != MS_OK) TRY(ms_error_prefix(err, path));
done:
    json_decref(root);
    return st;
}

ms_status ms_deploy_plan_parse(const char *spec, ms_deploy_plan *out, ms_error *err) {
    ms_deploy_plan_default(out);
    if (!spec || !*spec) return ms_error_set(err, MS_E_INPUT, "empty plan");
    char buf[256];
    if (strlen(spec) >= sizeof buf) return ms_error_set(err, MS_E_INPUT, "plan '%.40s...' is too long", spec);
    snprintf(buf, sizeof buf, "%s", spec);
    char *body = buf;
    char *colon = strchr(buf, ':');
    if (colon) {
        *colon = '\0';
        size_t nl = strlen(buf);
        if (!nl || nl >= sizeof out->name) return ms_error_set(err, MS_E_INPUT, "plan '%s': bad name", spec);
        memcpy(out->name, buf, nl + 1);
        body = colon + 1;
    } else if (!strchr(buf, '=')) {
        return ms_error_set(err, MS_E_INPUT, "plan '%s': expected NAME:key=value,... (keys tp, pp, ep, dp, overlap, "
                                             "eff, imbalance, dispatch_bytes)", spec);
    }
    char *save = NULL;
    for (char *kv = strtok_r(body, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq) return ms_error_set(err, MS_E_INPUT, "plan '%s': '%s' is not key=value", spec, kv);
        *eq = '\0';
        char *end = NULL;
        double v = strtod(eq + 1, &end);
        if (!end || *end || end == eq + 1 || !isfinite(v))
            return ms_error_set(err, MS_E_INPUT, "plan '%s': %s needs a number", spec, kv);
        bool integral = v == floor(v) && v >= 1 && v <= 1e7;
        if (strcmp(kv, "tp") == 0 || strcmp(kv, "pp") == 0 || strcmp(kv, "ep") == 0 || strcmp(kv, "dp") == 0) {
            if (!integral) return ms_error_set(err, MS_E_INPUT, "plan '%s': %s must be a positive integer", spec, kv);
            uint32_t *dst = kv[0] == 't' ? &out->tp : kv[0] == 'p' ? &out->pp : kv[0] == 'e' ? &out->ep : &out->dp;
            *dst = (uint32_t)v;
        } else if (strcmp(kv, "overlap") == 0) {
            if (v != 0 && v != 1) return ms_error_set(err, MS_E_INPUT, "plan '%s': overlap must be 0 or 1", spec);
            out->overlap = v == 1;
        } else if (strcmp(kv, "eff") == 0 || strcmp(kv, "overlap_eff") == 0) {
            if (v < 0 || v > 1) return ms_error_set(err, MS_E_INPUT, "plan '%s': eff must be in 0..1", spec);
            out->overlap_eff = v;
        } else if (strcmp(kv, "imbalance") == 0) {
            if (v < 1) return ms_error_set(err, MS_E_INPUT, "plan '%s': imbalance must be >= 1", spec);
            out->imbalance = v;
        } else if (strcmp(kv, "dispatch_bytes") == 0) {
            if (v < 0 || v > 8) return ms_error_set(err, MS_E_INPUT, "plan '%s': dispatch_bytes must be in 0..8", spec);
            out->dispatch_bytes = v;
        } else {
            return ms_error_set(err, MS_E_INPUT,
                                "plan '%s': unknown key '%s' (tp, pp, ep, dp, overlap, eff, imbalance, dispatch_bytes)",
                                spec, kv);
        }
    }
    return MS_OK;
}
