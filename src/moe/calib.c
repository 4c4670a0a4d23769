/* calib.c - option parsers of the MoE tools and the hardware preset that
 * `moesim calibrate` writes from a measured curve. */
#include "moesim/moe.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "moe/moe_internal.h"

#define LIST_MAX_VALUE (1u << 24)

static int parse_num(const char *s, size_t len, uint32_t *out) {
    if (len == 0 || len > 9) return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v == 0 || v > LIST_MAX_VALUE) return -1;
    *out = (uint32_t)v;
    return 0;
}

ms_status ms_moe_parse_list(const char *s, uint32_t *out, uint32_t max_n, uint32_t *n, ms_error *err) {
    *n = 0;
    if (!s || !*s) return ms_error_set(err, MS_E_INPUT, "empty tokens-per-expert list");
    const char *p = s;
    while (1) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *dots = NULL;
        for (size_t i = 0; i + 1 < len; i++)
            if (p[i] == '.' && p[i + 1] == '.') {
                dots = p + i;
                break;
            }
        uint32_t a, b;
        if (dots) {
            if (parse_num(p, (size_t)(dots - p), &a) || parse_num(dots + 2, len - (size_t)(dots - p) - 2, &b) || b < a)
                return ms_error_set(err, MS_E_INPUT,
                                    "bad tokens-per-expert range '%.*s' in '%s' (A..B with 1 <= A <= B <= %u)",
                                    (int)len, p, s, LIST_MAX_VALUE);
            for (uint64_t v = a; v <= b; v *= 2) {
                if (*n >= max_n)
                    return ms_error_set(err, MS_E_INPUT, "tokens-per-expert list '%s' has more than %u values", s,
                                        max_n);
                out[(*n)++] = (uint32_t)v;
            }
        } else {
            if (parse_num(p, len, &a))
                return ms_error_set(err, MS_E_INPUT, "bad tokens-per-expert value '%.*s' in '%s' (1..%u)", (int)len,
                                    p, s, LIST_MAX_VALUE);
            if (*n >= max_n)
                return ms_error_set(err, MS_E_INPUT, "tokens-per-expert list '%s' has more than %u values", s, max_n);
            out[(*n)++] = a;
        }
        if (!end) break;
        p = end + 1;
    }
    return MS_OK;
}

ms_status ms_moe_dtype_parse(const char *s, ms_moe_dtype *out, ms_error *err) {
    if (s && strcmp(s, "fp32") == 0) *out = MS_MOE_F32;
    else if (s && strcmp(s, "bf16") == 0) *out = MS_MOE_BF16;
    else return ms_error_set(err, MS_E_INPUT, "unknown dtype '%s' (fp32, bf16)", s ? s : "");
    return MS_OK;
}

ms_status ms_moe_threading_parse(const char *s, ms_moe_threading *out, ms_error *err) {
    if (s && strcmp(s, "auto") == 0) *out = MS_MOE_THREADS_AUTO;
    else if (s && strcmp(s, "tiles") == 0) *out = MS_MOE_THREADS_TILES;
    else if (s && strcmp(s, "blas") == 0) *out = MS_MOE_THREADS_BLAS;
    else return ms_error_set(err, MS_E_INPUT, "unknown threading '%s' (auto, tiles, blas)", s ? s : "");
    return MS_OK;
}

const char *ms_moe_dtype_name(ms_moe_dtype d) { return d == MS_MOE_BF16 ? "bf16" : "fp32"; }

const char *ms_moe_threading_name(ms_moe_threading t) {
    switch (t) {
    case MS_MOE_THREADS_TILES: return "tiles";
    case MS_MOE_THREADS_BLAS: return "blas";
    default: return "auto";
    }
}

ms_status ms_moe_measure_copy_bw(uint32_t mb, int reps, bool cpu_clock, double *gb_s, ms_error *err) {
    *gb_s = 0;
    if (mb == 0) mb = 1;
    if (reps <= 0) reps = 1;
    size_t n = (size_t)mb << 20;
    char *a = ms_alloc_array(n, 1, err), *b = ms_alloc_array(n, 1, err);
    if (!a || !b) {
        ms_free(a);
        ms_free(b);
        return MS_E_NOMEM;
    }
    memset(a, 1, n);
    memset(b, 2, n);
    int th = ms_thread_count();
    (void)th;
    double best = 1e300;
    const size_t chunk = (size_t)1 << 20;
    for (int r = 0; r < reps + 1; r++) {
        double t0 = ms_moe_clock(cpu_clock, th);
        MS_OMP(omp parallel for schedule(static) num_threads(th))
        for (int64_t q = 0; q < (int64_t)(n / chunk); q++) memcpy(b + (size_t)q * chunk, a + (size_t)q * chunk, chunk);
        double dt = ms_moe_clock(cpu_clock, th) - t0;
        if (r > 0 && dt < best) best = dt;
    }
    *gb_s = 2.0 * (double)n / best / 1e9;
    ms_free(a);
    ms_free(b);
    return MS_OK;
}

static json_t *fig(double v, const char *src) { return json_pack("{s:f, s:s}", "value", v, "source", src); }

json_t *ms_moe_calib_json(const ms_moe_calib_info *in, const ms_moe_point *pts, uint32_t n) {
    json_t *o = json_object();
    if (!o) return NULL;
    char buf[1024];
    double peak_tf = in->peak_gflops / 1e3;
    /* efficiency at the largest point */
    double eff_big = 0;
    uint32_t big = 0;
    for (uint32_t i = 0; i < n; i++)
        if (pts[i].tokens_per_expert >= big) {
            big = pts[i].tokens_per_expert;
            eff_big = in->peak_gflops > 0 ? pts[i].gflops / in->peak_gflops : 0;
        }
    if (eff_big > 1) eff_big = 1;
    if (eff_big <= 0) eff_big = 1e-6;
    int ok = 1;
    ok &= !json_object_set_new(o, "name", json_string(in->name ? in->name : "local"));
    ok &= !json_object_set_new(o, "source", json_string("measured by moesim calibrate"));
    ok &= !json_object_set_new(o, "date", json_string(in->date ? in->date : ""));
    ok &= !json_object_set_new(o, "machine", json_string(in->machine ? in->machine : ""));
    ok &= !json_object_set_new(o, "blas", json_string(in->blas ? in->blas : ""));
    ok &= !json_object_set_new(o, "threads", json_integer(in->threads));
    ok &= !json_object_set_new(o, "clock", json_string(in->cpu_clock ? "cpu seconds / threads (estimate of an idle "
                                                                       "machine's wall time)"
                                                                     : "wall"));
    snprintf(buf, sizeof buf,
             "measured by moesim calibrate: best cblas_sgemm %ux%ux%u fp32 with %d threads; this CPU build has no "
             "faster bf16 GEMM, so the bf16 figure is the fp32 one",
             in->peak_n, in->peak_n, in->peak_n, in->threads);
    ok &= !json_object_set_new(o, "peak_tflops_bf16", fig(peak_tf, buf));
    ok &= !json_object_set_new(o, "peak_tflops_fp8", fig(peak_tf, "measured by moesim calibrate: no fp8 GEMM on "
                                                                  "this CPU, the fp32 sgemm peak stands in"));
    snprintf(buf, sizeof buf,
             "measured by moesim calibrate: optimized MoE forward (%s, %ux%u expert, %u tokens per expert) / "
             "sgemm peak; smaller batches: efficiency_curve",
             in->shape ? in->shape : "", in->cfg->hidden, in->cfg->inter, big);
    ok &= !json_object_set_new(o, "mfu", fig(eff_big, buf));
    ok &= !json_object_set_new(o, "hbm_tb_s", fig(in->mem_gb_s / 1e3, "measured by moesim calibrate: memcpy "
                                                                      "bandwidth (read + write bytes), all threads"));
    ok &= !json_object_set_new(o, "hbm_util", fig(1.0, "measured by moesim calibrate: the figure is already the "
                                                       "achieved bandwidth"));
    ok &= !json_object_set_new(o, "memory_gb", fig(in->memory_gb, "measured by moesim calibrate: physical memory "
                                                                  "(sysconf)"));
    const char *link = "measured by moesim calibrate: one host has no device link; transfers between its "
                       "'devices' are memory copies, so the memcpy bandwidth stands in";
    ok &= !json_object_set_new(o, "nvlink_gb_s", fig(in->mem_gb_s, link));
    ok &= !json_object_set_new(o, "nvlink_latency_us", fig(0.0, "measured by moesim calibrate: no link start-up "
                                                                "on one host"));
    ok &= !json_object_set_new(o, "nvlink_efficiency", fig(1.0, link));
    ok &= !json_object_set_new(o, "nic_gb_s", fig(in->mem_gb_s, link));
    ok &= !json_object_set_new(o, "net_latency_us", fig(0.0, "measured by moesim calibrate: no network on one host"));
    ok &= !json_object_set_new(o, "net_efficiency", fig(1.0, link));
    json_t *curve = json_object(), *tpe = json_array(), *tf = json_array(), *ef = json_array(), *ms = json_array();
    if (!curve || !tpe || !tf || !ef || !ms) ok = 0;
    for (uint32_t i = 0; ok && i < n; i++) {
        ok &= !json_array_append_new(tpe, json_integer(pts[i].tokens_per_expert));
        ok &= !json_array_append_new(tf, json_real(pts[i].gflops / 1e3));
        double e = in->peak_gflops > 0 ? pts[i].gflops / in->peak_gflops : 0;
        ok &= !json_array_append_new(ef, json_real(e < 1 ? e : 1));
        ok &= !json_array_append_new(ms, json_real(pts[i].opt_s * 1e3));
    }
    if (curve) {
        snprintf(buf, sizeof buf,
                 "measured by moesim calibrate: optimized MoE forward (gather, gate/up GEMM, SwiGLU, down GEMM, "
                 "combine) on %u experts of %ux%u, top-%u, %s weights, every expert getting exactly "
                 "tokens_per_expert tokens; tflops counts 2*3*H*I FLOPs per token-expert; "
                 "efficiency = tflops / peak, capped at 1",
                 in->cfg->n_experts, in->cfg->hidden, in->cfg->inter, in->cfg->top_k,
                 ms_moe_dtype_name(in->cfg->dtype));
        ok &= !json_object_set_new(curve, "source", json_string(buf));
        ok &= !json_object_set_new(curve, "shape", json_string(in->shape ? in->shape : ""));
        ok &= !json_object_set_new(curve, "hidden", json_integer(in->cfg->hidden));
        ok &= !json_object_set_new(curve, "moe_intermediate", json_integer(in->cfg->inter));
        ok &= !json_object_set_new(curve, "experts", json_integer(in->cfg->n_experts));
        ok &= !json_object_set_new(curve, "top_k", json_integer(in->cfg->top_k));
        ok &= !json_object_set_new(curve, "dtype", json_string(ms_moe_dtype_name(in->cfg->dtype)));
        ok &= !json_object_set_new(curve, "threading", json_string(ms_moe_threading_name(
                                                         in->threading == MS_MOE_THREADS_AUTO ? MS_MOE_THREADS_TILES
                                                                                              : in->threading)));
        ok &= !json_object_set_new(curve, "peak_tflops", json_real(peak_tf));
        ok &= !json_object_set_new(curve, "tokens_per_expert", tpe);
        ok &= !json_object_set_new(curve, "tflops", tf);
        ok &= !json_object_set_new(curve, "efficiency", ef);
        ok &= !json_object_set_new(curve, "forward_ms", ms);
        ok &= !json_object_set_new(o, "efficiency_curve", curve);
    } else {
        json_decref(tpe);
        json_decref(tf);
        json_decref(ef);
        json_decref(ms);
    }
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}
