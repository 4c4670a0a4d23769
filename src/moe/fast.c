/* fast.c - the optimized CPU MoE forward.
 *
 *  1. dispatch: validate ids, count assignments per expert, apply the
 *     capacity (first C in token order), counting-sort the kept (token, k)
 *     pairs into contiguous per-expert blocks of "slots" (stable: token
 *     order inside a block); remember each (token, k)'s slot;
 *  2. gather: xg[slot] = x[token of slot] (one packed [slots][H] matrix);
 *  3. gate/up: per expert one GEMM hg[block] = xg[block] . W13_e^T with the
 *     fused [2I][H] weight (the shared expert: hs = x . W13_s^T on all
 *     tokens, no gather), split into units of `tile` weight rows (auto:
 *     the largest of 512, 256, 128, 64 that gives each thread 4 units);
 *     at <= 4 (fp32) or <= 8 (bf16) tokens a unit skips sgemm for a direct
 *     AVX2 kernel that reads the stored weights once (ms_moe_small_gemm);
 *  4. SwiGLU in place: hg[s][i] = w_s * silu(hg[s][i]) * hg[s][I+i] (the
 *     routing weight is folded in here, so the combine is a plain sum);
 *  5. down: yg[block] = hg[block][:, :I] . W2_e^T (shared: straight into y);
 *  6. combine, per token (no atomics): y[t] (+)= sum_k yg[slot(t,k)].
 *
 * Threading TILES: one OpenMP region, steps 3 and 5 as dynamic lists of
 * (expert, weight-row tile) units, biggest experts first, each a
 * single-threaded cblas_sgemm (the BLAS is set to 1 thread for the call and
 * restored). Threading BLAS: units one after another, each GEMM threaded by
 * the BLAS; elementwise steps by OpenMP. bf16 weights are widened to fp32
 * one tile at a time into a per-thread buffer right before its GEMM. */
#include "moesim/moe.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "moe/moe_internal.h"

#define NO_SLOT UINT32_MAX

typedef struct moe_unit {
    uint32_t e;  /* expert, or E for the shared expert */
    uint32_t r0; /* first weight row */
    uint32_t nr; /* rows */
} moe_unit;

struct ms_moe_workspace {
    ms_moe_config cfg;
    uint32_t max_tokens;
    uint64_t max_slots;
    int threads;
    ms_moe_threading threading;
    uint32_t tile;      /* weight rows per unit (0: auto per forward, UINT32_MAX: whole matrix) */
    bool force_parallel;
    uint32_t small_max; /* direct small-M kernel up to this many tokens per unit (0 = never) */
    uint64_t bytes;
    uint32_t *count;    /* [E] assignments asked */
    uint32_t *offset;   /* [E+1] first slot of each block */
    uint32_t *cursor;   /* [E] */
    uint64_t *order;    /* [E] (~count << 32 | e), sorted */
    uint32_t *slot_tok; /* [slots] */
    float *slot_w;      /* [slots] */
    uint32_t *tok_slot; /* [T*K] */
    float *xg, *hg, *yg; /* [slots][H], [slots][2I], [slots][H] */
    float *hs;          /* [T][2Is] */
    float *tilebuf;     /* [threads][tile_stride] (bf16 only) */
    uint64_t tile_stride;
    moe_unit *u1, *u2;  /* unit lists of steps 3 and 5 */
    uint64_t max_u1, max_u2;
};

static uint64_t ceil_div(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

void ms_moe_workspace_free(ms_moe_workspace *w) {
    if (!w) return;
    ms_free(w->count);
    ms_free(w->offset);
    ms_free(w->cursor);
    ms_free(w->order);
    ms_free(w->slot_tok);
    ms_free(w->slot_w);
    ms_free(w->tok_slot);
    ms_free(w->xg);
    ms_free(w->hg);
    ms_free(w->yg);
    ms_free(w->hs);
    ms_free(w->tilebuf);
    ms_free(w->u1);
    ms_free(w->u2);
    ms_free(w);
}

uint64_t ms_moe_workspace_bytes(const ms_moe_workspace *w) { return w ? w->bytes : 0; }

static void *ws_alloc(ms_moe_workspace *w, uint64_t n, size_t size, int *fail, ms_error *err) {
    if (n == 0) n = 1;
    void *p = ms_alloc_array(n, size, err);
    if (!p) *fail = 1;
    else w->bytes += n * size;
    return p;
}

ms_status ms_moe_workspace_new(const ms_moe_config *c, uint32_t max_tokens, const ms_moe_ws_opts *opts,
                               ms_moe_workspace **out, ms_error *err) {
    *out = NULL;
    ms_status st = ms_moe_config_check(c, err);
    if (st != MS_OK) return st;
    if (max_tokens == 0) return ms_error_set(err, MS_E_INPUT, "MoE workspace for 0 tokens");
    ms_moe_workspace *w = ms_calloc_array(1, sizeof *w, err);
    if (!w) return MS_E_NOMEM;
    w->cfg = *c;
    w->max_tokens = max_tokens;
    w->threads = opts && opts->threads > 0 ? opts->threads : ms_thread_count();
    w->threading = opts ? opts->threading : MS_MOE_THREADS_AUTO;
    if (w->threading == MS_MOE_THREADS_AUTO) w->threading = MS_MOE_THREADS_TILES;
    uint32_t tile = opts ? opts->tile : 0;
    w->tile = tile; /* 0: chosen per forward (TILES) */
    if (tile == 0) {
        if (w->threading == MS_MOE_THREADS_TILES) tile = MS_MOE_TILE_MIN; /* sizes the unit lists */
        else w->tile = tile = c->dtype == MS_MOE_BF16 ? MS_MOE_TILE_MAX : UINT32_MAX;
    }
    /* measured crossover against sgemm (docs/PERFORMANCE.md): fp32 4, bf16 8 */
    w->force_parallel = opts && opts->force_parallel;
    w->small_max = opts && opts->no_small_kernel ? 0 : (c->dtype == MS_MOE_BF16 ? MS_MOE_SMALL_M : 4);
    uint64_t H = c->hidden, I = c->inter, E = c->n_experts, K = c->top_k;
    uint64_t Is = (uint64_t)c->n_shared * c->shared_inter;
    uint64_t slots = (uint64_t)max_tokens * K;
    uint64_t cap = ms_moe_capacity(c, max_tokens);
    if (cap != UINT32_MAX && cap * E < slots) slots = cap * E; /* the capacity bounds the slots */
    w->max_slots = slots;
    if (slots >= UINT32_MAX) {
        ms_moe_workspace_free(w);
        return ms_error_set(err, MS_E_INPUT, "MoE workspace: %u tokens x top-k %u exceed 2^32 assignments",
                            max_tokens, c->top_k);
    }
    w->max_u1 = E * ceil_div(2 * I, tile) + (Is ? ceil_div(2 * Is, tile) : 0);
    w->max_u2 = (E + (Is ? 1 : 0)) * ceil_div(H, tile);
    int fail = 0;
    w->count = ws_alloc(w, E, sizeof(uint32_t), &fail, err);
    w->offset = ws_alloc(w, E + 1, sizeof(uint32_t), &fail, err);
    w->cursor = ws_alloc(w, E, sizeof(uint32_t), &fail, err);
    w->order = ws_alloc(w, E, sizeof(uint64_t), &fail, err);
    w->slot_tok = ws_alloc(w, slots, sizeof(uint32_t), &fail, err);
    w->slot_w = ws_alloc(w, slots, sizeof(float), &fail, err);
    w->tok_slot = ws_alloc(w, (uint64_t)max_tokens * K, sizeof(uint32_t), &fail, err);
    if (!fail) w->xg = ws_alloc(w, slots * H, sizeof(float), &fail, err);
    if (!fail) w->hg = ws_alloc(w, slots * 2 * I, sizeof(float), &fail, err);
    if (!fail) w->yg = ws_alloc(w, slots * H, sizeof(float), &fail, err);
    if (!fail && Is) w->hs = ws_alloc(w, (uint64_t)max_tokens * 2 * Is, sizeof(float), &fail, err);
    if (!fail && c->dtype == MS_MOE_BF16) {
        uint64_t width = H > I ? H : I;
        if (Is > width) width = Is;
        uint64_t rows = tile == UINT32_MAX ? (2 * I > H ? 2 * I : H) : (w->tile == 0 ? MS_MOE_TILE_MAX : tile);
        if (tile == UINT32_MAX && 2 * Is > rows) rows = 2 * Is;
        w->tile_stride = rows * width;
        int nbuf = w->threading == MS_MOE_THREADS_TILES ? w->threads : 1;
        w->tilebuf = ws_alloc(w, w->tile_stride * (uint64_t)nbuf, sizeof(float), &fail, err);
    }
    if (!fail) w->u1 = ws_alloc(w, w->max_u1, sizeof(moe_unit), &fail, err);
    if (!fail) w->u2 = ws_alloc(w, w->max_u2, sizeof(moe_unit), &fail, err);
    if (fail) {
        ms_moe_workspace_free(w);
        return ms_error_set(err, MS_E_NOMEM, "MoE workspace for %u tokens (%.3g GB) does not fit in memory",
                            max_tokens, (double)(slots * (2 * H + 2 * I) * 4) / 1e9);
    }
    *out = w;
    return MS_OK;
}

/* Appends the units covering `rows` weight rows of expert e, `tile` at a time. */
static void add_units(moe_unit *list, uint64_t *n, uint32_t e, uint64_t rows, uint64_t tile) {
    for (uint64_t r = 0; r < rows; r += tile)
        list[(*n)++] = (moe_unit){e, (uint32_t)r, (uint32_t)(rows - r < tile ? rows - r : tile)};
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Steps 3 and 5 of one unit on thread tid. */
static void run_unit_gate_up(const ms_moe_layer *l, ms_moe_workspace *w, const float *x, uint32_t T,
                             const moe_unit *u, int tid) {
    const ms_moe_config *c = &l->cfg;
    uint64_t H = c->hidden, I = c->inter, E = c->n_experts, Is = (uint64_t)c->n_shared * c->shared_inter;
    size_t el = c->dtype == MS_MOE_BF16 ? 2 : 4;
    const float *a;
    const uint8_t *wsrc;
    float *out;
    uint32_t m, ldc;
    if (u->e == E) {
        a = x;
        m = T;
        wsrc = (const uint8_t *)l->sh_w13 + (uint64_t)u->r0 * H * el;
        out = w->hs + u->r0;
        ldc = (uint32_t)(2 * Is);
    } else {
        a = w->xg + (uint64_t)w->offset[u->e] * H;
        m = w->offset[u->e + 1] - w->offset[u->e];
        wsrc = (const uint8_t *)l->w13 + ((uint64_t)u->e * 2 * I + u->r0) * H * el;
        out = w->hg + (uint64_t)w->offset[u->e] * 2 * I + u->r0;
        ldc = (uint32_t)(2 * I);
    }
    if (m <= w->small_max &&
        ms_moe_small_gemm(m, u->nr, (uint32_t)H, a, (uint32_t)H, wsrc, c->dtype, (uint32_t)H, out, ldc))
        return;
    const float *b = (const float *)(const void *)wsrc;
    if (c->dtype == MS_MOE_BF16) {
        float *tb = w->tilebuf + (uint64_t)tid * w->tile_stride;
        ms_moe_widen_bf16((const uint16_t *)(const void *)wsrc, tb, (uint64_t)u->nr * H);
        b = tb;
    }
    ms_moe_sgemm_nt(m, u->nr, (uint32_t)H, a, (uint32_t)H, b, (uint32_t)H, 0.0f, out, ldc);
}

static void run_unit_down(const ms_moe_layer *l, ms_moe_workspace *w, float *y, uint32_t T, const moe_unit *u,
                          int tid) {
    const ms_moe_config *c = &l->cfg;
    uint64_t H = c->hidden, I = c->inter, E = c->n_experts, Is = (uint64_t)c->n_shared * c->shared_inter;
    size_t el = c->dtype == MS_MOE_BF16 ? 2 : 4;
    const float *a;
    const uint8_t *wsrc;
    float *out;
    uint32_t m, kdim, lda;
    if (u->e == E) {
        a = w->hs;
        lda = (uint32_t)(2 * Is);
        m = T;
        kdim = (uint32_t)Is;
        wsrc = (const uint8_t *)l->sh_w2 + (uint64_t)u->r0 * Is * el;
        out = y + u->r0;
    } else {
        a = w->hg + (uint64_t)w->offset[u->e] * 2 * I;
        lda = (uint32_t)(2 * I);
        m = w->offset[u->e + 1] - w->offset[u->e];
        kdim = (uint32_t)I;
        wsrc = (const uint8_t *)l->w2 + ((uint64_t)u->e * H + u->r0) * I * el;
        out = w->yg + (uint64_t)w->offset[u->e] * H + u->r0;
    }
    if (m <= w->small_max && ms_moe_small_gemm(m, u->nr, kdim, a, lda, wsrc, c->dtype, kdim, out, (uint32_t)H)) return;
    const float *b = (const float *)(const void *)wsrc;
    if (c->dtype == MS_MOE_BF16) {
        float *tb = w->tilebuf + (uint64_t)tid * w->tile_stride;
        ms_moe_widen_bf16((const uint16_t *)(const void *)wsrc, tb, (uint64_t)u->nr * kdim);
        b = tb;
    }
    ms_moe_sgemm_nt(m, u->nr, kdim, a, lda, b, kdim, 0.0f, out, (uint32_t)H);
}

static inline void swiglu_row(float *h, uint32_t n, float wt) {
    for (uint32_t i = 0; i < n; i++) {
        float g = h[i];
        h[i] = wt * (g / (1.0f + expf(-g))) * h[n + i];
    }
}

static inline void gather_row(ms_moe_workspace *w, const float *x, uint64_t s, uint64_t H) {
    memcpy(w->xg + s * H, x + (uint64_t)w->slot_tok[s] * H, H * sizeof(float));
}

static inline void swiglu_any(ms_moe_workspace *w, uint64_t r, uint64_t S) {
    const ms_moe_config *c = &w->cfg;
    uint64_t I = c->inter, Is = (uint64_t)c->n_shared * c->shared_inter;
    if (r < S) swiglu_row(w->hg + r * 2 * I, (uint32_t)I, w->slot_w[r]);
    else swiglu_row(w->hs + (r - S) * 2 * Is, (uint32_t)Is, 1.0f);
}

static inline void combine_token(ms_moe_workspace *w, float *y, uint64_t t) {
    const ms_moe_config *c = &w->cfg;
    uint64_t H = c->hidden, K = c->top_k;
    float *yt = y + t * H;
    if (c->n_shared == 0) memset(yt, 0, H * sizeof(float));
    for (uint64_t k = 0; k < K; k++) {
        uint32_t s = w->tok_slot[t * K + k];
        if (s == NO_SLOT) continue;
        const float *ys = w->yg + (uint64_t)s * H;
        for (uint64_t o = 0; o < H; o++) yt[o] += ys[o];
    }
}

ms_status ms_moe_forward(const ms_moe_layer *l, ms_moe_workspace *w, const float *x, uint32_t n_tokens,
                         const uint32_t *ids, const float *weights, float *y, ms_moe_fwd_stats *stats,
                         ms_error *err) {
    const ms_moe_config *c = &l->cfg, *wc = &w->cfg;
    if (c->hidden != wc->hidden || c->inter != wc->inter || c->n_experts != wc->n_experts ||
        c->top_k != wc->top_k || c->n_shared != wc->n_shared || c->shared_inter != wc->shared_inter ||
        c->dtype != wc->dtype || c->capacity_factor != wc->capacity_factor)
        return ms_error_set(err, MS_E_INPUT, "MoE workspace was made for another layer shape");
    if (n_tokens > w->max_tokens)
        return ms_error_set(err, MS_E_INPUT, "MoE forward of %u tokens exceeds the workspace's %u", n_tokens,
                            w->max_tokens);
    const uint32_t E = c->n_experts, K = c->top_k;
    const uint64_t H = c->hidden, I = c->inter, Is = (uint64_t)c->n_shared * c->shared_inter;
    const uint64_t TK = (uint64_t)n_tokens * K;
    for (uint64_t i = 0; i < TK; i++)
        if (ids[i] >= E)
            return ms_error_set(err, MS_E_INPUT, "routing: token %llu chooses expert %u (experts: %u)",
                                (unsigned long long)(i / K), ids[i], E);

    /* 1. dispatch: counting sort with capacity */
    uint32_t cap = ms_moe_capacity(c, n_tokens);
    memset(w->count, 0, E * sizeof(uint32_t));
    for (uint64_t i = 0; i < TK; i++) w->count[ids[i]]++;
    w->offset[0] = 0;
    for (uint32_t e = 0; e < E; e++) {
        uint32_t kept = w->count[e] < cap ? w->count[e] : cap;
        w->offset[e + 1] = w->offset[e] + kept;
        w->cursor[e] = 0;
    }
    const uint64_t S = w->offset[E];
    uint64_t dropped = 0;
    for (uint64_t i = 0; i < TK; i++) {
        uint32_t e = ids[i];
        uint32_t kept = w->offset[e + 1] - w->offset[e];
        if (w->cursor[e] < kept) {
            uint32_t s = w->offset[e] + w->cursor[e]++;
            w->slot_tok[s] = (uint32_t)(i / K);
            w->slot_w[s] = weights[i];
            w->tok_slot[i] = s;
        } else {
            w->tok_slot[i] = NO_SLOT;
            dropped++;
        }
    }
    /* unit lists, biggest blocks first */
    uint32_t active = 0, max_load = 0;
    for (uint32_t e = 0; e < E; e++) {
        uint32_t n = w->offset[e + 1] - w->offset[e];
        if (n > max_load) max_load = n;
        if (n) w->order[active++] = ((uint64_t)(UINT32_MAX - n) << 32) | e;
    }
    qsort(w->order, active, sizeof(uint64_t), cmp_u64);
    uint64_t n1 = 0, n2 = 0;
    uint64_t tr = w->tile;
    if (tr == 0) {
        /* auto: the largest tile (fewer, bigger GEMMs pack the activations
         * fewer times) that still gives every thread 4 gate/up units */
        tr = MS_MOE_TILE_MAX;
        while (tr > MS_MOE_TILE_MIN) {
            uint64_t units = (uint64_t)active * ceil_div(2 * I, tr) + (Is && n_tokens ? ceil_div(2 * Is, tr) : 0);
            if (units >= 4 * (uint64_t)w->threads) break;
            tr /= 2;
        }
    }
    if (Is && n_tokens) {
        add_units(w->u1, &n1, E, 2 * Is, tr);
        add_units(w->u2, &n2, E, H, tr);
    }
    for (uint32_t q = 0; q < active; q++) {
        uint32_t e = (uint32_t)(w->order[q] & 0xffffffffu);
        add_units(w->u1, &n1, e, 2 * I, tr);
        add_units(w->u2, &n2, e, H, tr);
    }
    const uint64_t rows = S + (Is ? n_tokens : 0);
    /* tiny forwards run on one thread: a parallel region costs more than it
     * saves there, and far more on a loaded machine */
    double work = 2.0 * (double)S * 3.0 * (double)H * (double)I + (Is ? 6.0 * n_tokens * (double)H * Is : 0);
    const int nt = work < MS_MOE_SERIAL_FLOPS && !w->force_parallel ? 1 : w->threads;

    if (w->threading == MS_MOE_THREADS_TILES) {
        int prev = ms_moe_blas_set_threads(1);
        MS_OMP(omp parallel num_threads(nt))
        {
            int tid = ms_moe_thread_id();
            MS_OMP(omp for schedule(static))
            for (int64_t s = 0; s < (int64_t)S; s++) gather_row(w, x, (uint64_t)s, H);
            MS_OMP(omp for schedule(dynamic, 1))
            for (int64_t q = 0; q < (int64_t)n1; q++) run_unit_gate_up(l, w, x, n_tokens, &w->u1[q], tid);
            MS_OMP(omp for schedule(static))
            for (int64_t r = 0; r < (int64_t)rows; r++) swiglu_any(w, (uint64_t)r, S);
            MS_OMP(omp for schedule(dynamic, 1))
            for (int64_t q = 0; q < (int64_t)n2; q++) run_unit_down(l, w, y, n_tokens, &w->u2[q], tid);
            MS_OMP(omp for schedule(static))
            for (int64_t t = 0; t < (int64_t)n_tokens; t++) combine_token(w, y, (uint64_t)t);
        }
        ms_moe_blas_set_threads(prev);
    } else {
        int prev = ms_moe_blas_set_threads(nt);
        MS_OMP(omp parallel for schedule(static) num_threads(nt))
        for (int64_t s = 0; s < (int64_t)S; s++) gather_row(w, x, (uint64_t)s, H);
        for (uint64_t q = 0; q < n1; q++) run_unit_gate_up(l, w, x, n_tokens, &w->u1[q], 0);
        MS_OMP(omp parallel for schedule(static) num_threads(nt))
        for (int64_t r = 0; r < (int64_t)rows; r++) swiglu_any(w, (uint64_t)r, S);
        for (uint64_t q = 0; q < n2; q++) run_unit_down(l, w, y, n_tokens, &w->u2[q], 0);
        MS_OMP(omp parallel for schedule(static) num_threads(nt))
        for (int64_t t = 0; t < (int64_t)n_tokens; t++) combine_token(w, y, (uint64_t)t);
        ms_moe_blas_set_threads(prev);
    }
    if (stats) {
        memset(stats, 0, sizeof *stats);
        stats->assignments = S;
        stats->dropped = dropped;
        stats->max_load = max_load;
        stats->active_experts = active;
    }
    return MS_OK;
}
