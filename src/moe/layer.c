/* layer.c - MoE layer shapes, parameters and bf16 conversions. */
#include "moesim/moe.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moe/moe_internal.h"

uint16_t ms_moe_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu)) return (uint16_t)((u >> 16) | 0x40u); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float ms_moe_bf16_to_f32(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float ms_moe_weight_get(ms_moe_dtype dt, const void *block, uint64_t i) {
    if (dt == MS_MOE_BF16) return ms_moe_bf16_to_f32(((const uint16_t *)block)[i]);
    return ((const float *)block)[i];
}

ms_status ms_moe_config_preset(const char *name, ms_moe_config *c, ms_error *err) {
    memset(c, 0, sizeof *c);
    c->router = MS_MOE_ROUTER_SOFTMAX;
    c->n_group = 1;
    c->topk_group = 1;
    c->routed_scaling = 1.0f;
    c->norm_topk = true;
    c->dtype = MS_MOE_F32;
    if (!name) return ms_error_set(err, MS_E_INPUT, "no MoE shape given");
    if (strcmp(name, "deepseek-v3") == 0) {
        *c = (ms_moe_config){.hidden = 7168, .inter = 2048, .n_experts = 256, .top_k = 8, .n_shared = 1,
                             .shared_inter = 2048, .router = MS_MOE_ROUTER_SIGMOID_GROUP, .n_group = 8,
                             .topk_group = 4, .routed_scaling = 2.5f, .norm_topk = true};
        return MS_OK;
    }
    if (strcmp(name, "mixtral") == 0) {
        c->hidden = 4096;
        c->inter = 14336;
        c->n_experts = 8;
        c->top_k = 2;
        return MS_OK;
    }
    if (strcmp(name, "seed") == 0) {
        c->hidden = 8192;
        c->inter = 32768;
        c->n_experts = 16;
        c->top_k = 2;
        return MS_OK;
    }
    /* HxI */
    char *end = NULL;
    const char *x = strchr(name, 'x');
    if (x && x != name && name[0] >= '0' && name[0] <= '9' && x[1] >= '0' && x[1] <= '9') {
        unsigned long h = strtoul(name, &end, 10);
        if (end == x) {
            unsigned long i = strtoul(x + 1, &end, 10);
            if (*end == '\0' && h > 0 && i > 0 && h <= MS_MOE_MAX_DIM && i <= MS_MOE_MAX_DIM) {
                c->hidden = (uint32_t)h;
                c->inter = (uint32_t)i;
                c->n_experts = 8;
                c->top_k = 2;
                return MS_OK;
            }
        }
    }
    return ms_error_set(err, MS_E_INPUT,
                        "unknown MoE shape '%s' (deepseek-v3, seed, mixtral, or HxI such as 7168x2048 with "
                        "1 <= H, I <= %u)",
                        name, (unsigned)MS_MOE_MAX_DIM);
}

ms_status ms_moe_config_check(const ms_moe_config *c, ms_error *err) {
    if (c->hidden == 0 || c->hidden > MS_MOE_MAX_DIM)
        return ms_error_set(err, MS_E_INPUT, "hidden size %u out of range 1..%u", c->hidden, (unsigned)MS_MOE_MAX_DIM);
    if (c->inter == 0 || c->inter > MS_MOE_MAX_DIM)
        return ms_error_set(err, MS_E_INPUT, "expert intermediate size %u out of range 1..%u", c->inter,
                            (unsigned)MS_MOE_MAX_DIM);
    if (c->n_experts == 0 || c->n_experts > 65535)
        return ms_error_set(err, MS_E_INPUT, "routed experts %u out of range 1..65535", c->n_experts);
    if (c->top_k == 0 || c->top_k > c->n_experts)
        return ms_error_set(err, MS_E_INPUT, "top-k %u out of range 1..%u (experts)", c->top_k, c->n_experts);
    if (c->n_shared > 64) return ms_error_set(err, MS_E_INPUT, "%u shared experts (at most 64)", c->n_shared);
    if (c->n_shared && (c->shared_inter == 0 || (uint64_t)c->shared_inter * c->n_shared > MS_MOE_MAX_DIM))
        return ms_error_set(err, MS_E_INPUT, "shared expert intermediate size %u x %u out of range", c->n_shared,
                            c->shared_inter);
    if (c->router != MS_MOE_ROUTER_SOFTMAX && c->router != MS_MOE_ROUTER_SIGMOID_GROUP)
        return ms_error_set(err, MS_E_INPUT, "unknown router kind %d", (int)c->router);
    if (c->router == MS_MOE_ROUTER_SIGMOID_GROUP) {
        if (c->n_group == 0 || c->n_group > MS_MOE_MAX_GROUPS || c->n_experts % c->n_group != 0 ||
            c->n_experts / c->n_group < 2)
            return ms_error_set(err, MS_E_INPUT,
                                "%u groups do not split %u experts into at most %u equal groups of at least 2",
                                c->n_group,
                                c->n_experts, (unsigned)MS_MOE_MAX_GROUPS);
        if (c->topk_group == 0 || c->topk_group > c->n_group || c->topk_group > MS_MOE_MAX_TOPK_GROUP)
            return ms_error_set(err, MS_E_INPUT, "groups kept %u out of range 1..%u", c->topk_group,
                                c->n_group < MS_MOE_MAX_TOPK_GROUP ? c->n_group : MS_MOE_MAX_TOPK_GROUP);
        if ((uint64_t)c->topk_group * (c->n_experts / c->n_group) < c->top_k)
            return ms_error_set(err, MS_E_INPUT, "%u kept groups of %u experts cannot supply top-k %u", c->topk_group,
                                c->n_experts / c->n_group, c->top_k);
    }
    if (!isfinite(c->routed_scaling) || c->routed_scaling <= 0)
        return ms_error_set(err, MS_E_INPUT, "routed scaling factor must be finite and > 0");
    if (!isfinite(c->capacity_factor) || c->capacity_factor > 1e6)
        return ms_error_set(err, MS_E_INPUT, "capacity factor must be finite (<= 0: none)");
    if (c->dtype != MS_MOE_F32 && c->dtype != MS_MOE_BF16)
        return ms_error_set(err, MS_E_INPUT, "unknown weight dtype %d", (int)c->dtype);
    return MS_OK;
}

uint64_t ms_moe_layer_weight_bytes(const ms_moe_config *c) {
    uint64_t el = c->dtype == MS_MOE_BF16 ? 2 : 4;
    uint64_t is = (uint64_t)c->n_shared * c->shared_inter;
    return el * 3 * (uint64_t)c->hidden * ((uint64_t)c->n_experts * c->inter + is);
}

/* One weight matrix [rows][cols], uniform in +-a, each row from its own
 * stream so the fill can run in parallel and still depend on the seed only. */
static void fill_block(ms_moe_dtype dt, void *block, uint64_t rows, uint32_t cols, double a, uint64_t seed,
                       uint32_t kind, int threads) {
    (void)threads;
    MS_OMP(omp parallel for schedule(static) num_threads(threads))
    for (int64_t r = 0; r < (int64_t)rows; r++) {
        uint64_t key[3] = {seed, kind, (uint64_t)r};
        ms_rng rng;
        ms_rng_seed(&rng, ms_fnv1a(MS_FNV_OFFSET, key, sizeof key));
        for (uint32_t j = 0; j < cols; j++) {
            double u = (double)(ms_rng_next(&rng) >> 11) * 0x1.0p-53; /* [0, 1) */
            float v = (float)((2.0 * u - 1.0) * a);
            if (dt == MS_MOE_BF16) ((uint16_t *)block)[(uint64_t)r * cols + j] = ms_moe_f32_to_bf16(v);
            else ((float *)block)[(uint64_t)r * cols + j] = v;
        }
    }
}

void ms_moe_layer_free(ms_moe_layer *l) {
    if (!l) return;
    ms_free(l->router_w);
    ms_free(l->bias);
    ms_free(l->w13);
    ms_free(l->w2);
    ms_free(l->sh_w13);
    ms_free(l->sh_w2);
    ms_free(l);
}

ms_status ms_moe_layer_new(const ms_moe_config *c, uint64_t seed, ms_moe_layer **out, ms_error *err) {
    *out = NULL;
    ms_status st = ms_moe_config_check(c, err);
    if (st != MS_OK) return st;
    ms_moe_layer *l = ms_calloc_array(1, sizeof *l, err);
    if (!l) return MS_E_NOMEM;
    l->cfg = *c;
    size_t el = c->dtype == MS_MOE_BF16 ? 2 : 4;
    uint64_t H = c->hidden, I = c->inter, E = c->n_experts, Is = (uint64_t)c->n_shared * c->shared_inter;
    l->router_w = ms_alloc_array(E * H, sizeof(float), err);
    l->bias = ms_calloc_array(E, sizeof(float), err);
    l->w13 = ms_alloc_array(E * 2 * I, H * el, err);
    l->w2 = ms_alloc_array(E * H, I * el, err);
    if (Is) {
        l->sh_w13 = ms_alloc_array(2 * Is, H * el, err);
        l->sh_w2 = ms_alloc_array(H, Is * el, err);
    }
    if (!l->router_w || !l->bias || !l->w13 || !l->w2 || (Is && (!l->sh_w13 || !l->sh_w2))) {
        ms_moe_layer_free(l);
        return ms_error_set(err, MS_E_NOMEM, "MoE layer of %.3g GB does not fit in memory",
                            (double)ms_moe_layer_weight_bytes(c) / 1e9);
    }
    int th = ms_thread_count();
    fill_block(MS_MOE_F32, l->router_w, E, (uint32_t)H, sqrt(3.0 / (double)H), seed, 0, th);
    fill_block(c->dtype, l->w13, E * 2 * I, (uint32_t)H, sqrt(3.0 / (double)H), seed, 1, th);
    fill_block(c->dtype, l->w2, E * H, (uint32_t)I, sqrt(3.0 / (double)I), seed, 2, th);
    if (Is) {
        fill_block(c->dtype, l->sh_w13, 2 * Is, (uint32_t)H, sqrt(3.0 / (double)H), seed, 3, th);
        fill_block(c->dtype, l->sh_w2, H, (uint32_t)Is, sqrt(3.0 / (double)Is), seed, 4, th);
    }
    *out = l;
    return MS_OK;
}

uint32_t ms_moe_capacity(const ms_moe_config *c, uint32_t n_tokens) {
    if (!(c->capacity_factor > 0)) return UINT32_MAX;
    double cap = ceil(c->capacity_factor * (double)n_tokens * (double)c->top_k / (double)c->n_experts);
    if (cap < 1) cap = 1;
    if (cap > (double)UINT32_MAX - 1) return UINT32_MAX;
    return (uint32_t)cap;
}
