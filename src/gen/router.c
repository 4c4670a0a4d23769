/* router.c - the synthetic router of one MoE layer (see moesim/gen.h).
 *
 * Two samplers draw from the same model, top-k of (log weight + Gumbel):
 *  - plain top-k (no groups): sequential draws without replacement in
 *    proportion to exp(log weight), which is exactly the order of the
 *    Gumbel-perturbed scores (Plackett-Luce). Draws come from Walker/Vose
 *    alias tables (one per topic), repeats are rejected; after many
 *    rejections (one expert holding most of the mass) the next choice is
 *    drawn exactly by a linear scan. About top_k draws per token.
 *  - group-limited routing needs every expert's score (group scores are sums
 *    of top-2 scores), so it perturbs all of them with Gumbel noise from a
 *    65536-entry quantile table (16 random bits per expert) and selects.
 */
#include "gen/gen_internal.h"

#include <math.h>
#include <string.h>
/* SSE2 (every x86-64) speeds up grouped routing; the plain C code makes the
 * same choices. -DMOESIM_NO_SIMD builds without it (tests compare both). */
#if defined(__SSE2__) && !defined(MOESIM_NO_SIMD)
#define GEN_SIMD 1
#include <emmintrin.h>
#endif

void gen_gumbel_table(float *table) {
    for (uint32_t i = 0; i < GEN_GUMBEL_N; i++) {
        double u = ((double)i + 0.5) / (double)GEN_GUMBEL_N;
        table[i] = (float)(-log(-log(u)));
    }
}

/* wyrand: a 64-bit generator of one multiply per draw, for the hot loops
 * (alias draws, 16 Gumbel bits per expert); seeded from the layer's ms_rng. */
static inline uint64_t wy_next(uint64_t *st) {
    *st += 0xa0761d6478bd642fULL;
    __uint128_t t = (__uint128_t)*st * (*st ^ 0xe7037ed1a0b428dbULL);
    return (uint64_t)(t >> 64) ^ (uint64_t)t;
}

static uint64_t splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t gen_seed_mix(uint64_t seed, uint64_t a, uint64_t b) {
    uint64_t x = seed ^ 0x6a09e667f3bcc909ULL;
    uint64_t h = splitmix(&x);
    x = h ^ (a * 0xc2b2ae3d27d4eb4fULL);
    h = splitmix(&x);
    x = h ^ (b * 0x165667b19e3779f9ULL);
    return splitmix(&x);
}

/* Mean reversion per drift step: the log weights wander around their base
 * with a stationary std of about drift / sqrt(2 * DRIFT_THETA). */
#define DRIFT_THETA 0.01

typedef struct router {
    const gen_layer_cfg *c;
    uint32_t E, K, R, C;
    bool grouped;
    double *base;       /* [E] log weight + drift */
    double *drift;      /* [E] */
    double *p;          /* [C][E] normalised probabilities (plain sampler) */
    uint32_t *thr;      /* [C][E] alias thresholds (plain sampler) */
    uint16_t *alias;    /* [C][E] */
    uint32_t *stack;    /* [E] alias construction */
    double *q;          /* [E] alias construction */
    float *wf;          /* [C][E] log weights (grouped sampler, transposed) */
    float *score;       /* [E] scores (transposed) */
    uint8_t *gsel;      /* [n_groups] */
    uint32_t *mark;     /* [E] stamp of the token that chose it */
    uint32_t stamp;
    uint64_t wy;        /* wyrand state of the hot loops */
    uint32_t *cand;     /* [E + 16] candidate experts */
    float *cscore;      /* [E + 16] candidate scores */
    uint16_t *cid;      /* [E + 8] candidate ids (8-group SIMD path) */
    uint16_t *cpos;     /* [E + 8] candidate score positions */
    uint16_t *lut_id;   /* [256][8] group ids set in a mask, times the group size */
    uint16_t *lut_pos;  /* [256][8] the same groups as row offsets */
    uint8_t *lut_cnt;   /* [256] bits set */
    int64_t *bk;        /* [R] selection buffer keys */
    uint32_t *bi;       /* [R] selection buffer ids */
    uint16_t slot[17];  /* ranks of up to 16 candidates */
    int32_t k32[16], i32[16];
    uint16_t *choice;   /* [R] this token's choices */
    const uint8_t *cluster; /* [E] cluster of each expert: c->cluster, after a shift shift_cluster */
    double *shift_w;    /* [E] log weights after the shift (with c->shift_perm) */
    double *shift_tmp;  /* [E] */
    uint8_t *shift_cluster; /* [E] */
} router;

static void router_free(router *r) {
    ms_free(r->base);
    ms_free(r->drift);
    ms_free(r->p);
    ms_free(r->thr);
    ms_free(r->alias);
    ms_free(r->stack);
    ms_free(r->q);
    ms_free(r->wf);
    ms_free(r->score);
    ms_free(r->gsel);
    ms_free(r->cand);
    ms_free(r->mark);
    ms_free(r->cscore);
    ms_free(r->cid);
    ms_free(r->cpos);
    ms_free(r->lut_id);
    ms_free(r->lut_pos);
    ms_free(r->lut_cnt);
    ms_free(r->bk);
    ms_free(r->bi);
    ms_free(r->choice);
    ms_free(r->shift_w);
    ms_free(r->shift_tmp);
    ms_free(r->shift_cluster);
    memset(r, 0, sizeof *r);
}

static ms_status router_init(router *r, const gen_layer_cfg *c, ms_error *err) {
    memset(r, 0, sizeof *r);
    r->c = c;
    r->E = c->n_experts;
    r->K = c->top_k;
    r->R = c->n_ranked > c->top_k ? c->n_ranked : c->top_k;
    r->C = c->n_topics ? c->n_topics : 1;
    r->grouped = c->n_groups > 1;
    size_t ce = (size_t)r->C * r->E;
    r->base = ms_alloc_array(r->E, sizeof *r->base, err);
    r->drift = ms_calloc_array(r->E, sizeof *r->drift, err);
    r->mark = ms_calloc_array(r->E, sizeof *r->mark, err);
    r->bk = ms_alloc_array(r->R, sizeof *r->bk, err);
    r->bi = ms_alloc_array(r->R, sizeof *r->bi, err);
    r->choice = ms_alloc_array(r->R, sizeof *r->choice, err);
    bool ok = r->base && r->drift && r->mark && r->bk && r->bi && r->choice;
    r->cluster = c->cluster;
    if (c->shift_perm) {
        r->shift_w = ms_alloc_array(r->E, sizeof *r->shift_w, err);
        r->shift_tmp = ms_alloc_array(r->E, sizeof *r->shift_tmp, err);
        r->shift_cluster = ms_calloc_array(r->E, 1, err);
        ok = ok && r->shift_w && r->shift_tmp && r->shift_cluster;
    }
    if (r->grouped) {
        r->wf = ms_alloc_array(ce, sizeof *r->wf, err);
        r->score = ms_alloc_array(r->E, sizeof *r->score, err);
        r->gsel = ms_alloc_array(c->n_groups, sizeof *r->gsel, err);
        r->cand = ms_alloc_array((size_t)r->E + 16, sizeof *r->cand, err);
        r->cscore = ms_alloc_array((size_t)r->E + 16, sizeof *r->cscore, err);
        ok = ok && r->wf && r->score && r->gsel && r->cand && r->cscore;
        if (ok && c->n_groups == 8) {
            r->cid = ms_alloc_array((size_t)r->E + 8, sizeof *r->cid, err);
            r->cpos = ms_alloc_array((size_t)r->E + 8, sizeof *r->cpos, err);
            r->lut_id = ms_calloc_array(256 * 8, sizeof *r->lut_id, err);
            r->lut_pos = ms_calloc_array(256 * 8, sizeof *r->lut_pos, err);
            r->lut_cnt = ms_calloc_array(256, sizeof *r->lut_cnt, err);
            ok = r->cid && r->cpos && r->lut_id && r->lut_pos && r->lut_cnt;
            for (uint32_t m = 0; ok && m < 256; m++)
                for (uint32_t g = 0; g < 8; g++)
                    if (m >> g & 1) {
                        r->lut_id[8 * m + r->lut_cnt[m]] = (uint16_t)(g * (r->E / 8));
                        r->lut_pos[8 * m + r->lut_cnt[m]] = (uint16_t)g;
                        r->lut_cnt[m]++;
                    }
        }
    } else {
        r->p = ms_alloc_array(ce, sizeof *r->p, err);
        r->thr = ms_alloc_array(ce, sizeof *r->thr, err);
        r->alias = ms_alloc_array(ce, sizeof *r->alias, err);
        r->stack = ms_alloc_array(r->E, sizeof *r->stack, err);
        r->q = ms_alloc_array(r->E, sizeof *r->q, err);
        ok = ok && r->p && r->thr && r->alias && r->stack && r->q;
    }
    if (!ok) {
        router_free(r);
        return MS_E_NOMEM;
    }
    return MS_OK;
}

/* Vose's alias method over p[E] (sums to 1): thr/alias such that drawing a
 * uniform column i and keeping it when 32 random bits < thr[i] (else taking
 * alias[i]) picks e with probability p[e] (to within 2^-32). */
static void build_alias(router *r, const double *p, uint32_t *thr, uint16_t *alias) {
    uint32_t E = r->E, *st = r->stack;
    uint32_t ns = 0, nl = E; /* small ids grow from the front, large from the back */
    for (uint32_t e = 0; e < E; e++) {
        r->q[e] = p[e] * E;
        if (r->q[e] < 1.0) st[ns++] = e;
        else st[--nl] = e;
    }
    while (ns > 0 && nl < E) {
        uint32_t s = st[--ns], l = st[nl++];
        double qs = r->q[s];
        thr[s] = qs <= 0 ? 0 : (uint32_t)(qs * 4294967296.0 >= 4294967295.0 ? 4294967295.0 : qs * 4294967296.0);
        alias[s] = (uint16_t)l;
        r->q[l] = (r->q[l] + qs) - 1.0;
        if (r->q[l] < 1.0) st[ns++] = l;
        else st[--nl] = l;
    }
    /* leftovers (exactly 1 up to rounding) keep themselves */
    while (ns > 0) {
        uint32_t s = st[--ns];
        thr[s] = 4294967295u;
        alias[s] = (uint16_t)s;
    }
    while (nl < E) {
        uint32_t l = st[nl++];
        thr[l] = 4294967295u;
        alias[l] = (uint16_t)l;
    }
}

/* Recomputes the per-topic tables from logw + drift. */
static void router_rebuild(router *r, const double *logw) {
    uint32_t E = r->E, C = r->C;
    double m = -INFINITY;
    for (uint32_t e = 0; e < E; e++) {
        r->base[e] = isinf(logw[e]) ? -INFINITY : logw[e] + r->drift[e];
        if (r->base[e] > m) m = r->base[e];
    }
    if (isinf(m)) { /* nothing has weight: every expert equally likely */
        for (uint32_t e = 0; e < E; e++) r->base[e] = 0;
        m = 0;
    }
    double beta = C > 1 ? r->c->topic_strength : 0.0;
    for (uint32_t c = 0; c < C; c++) {
        if (r->grouped) {
            float *w = r->wf + (size_t)c * E; /* transposed: see route_grouped */
            uint32_t G = r->c->n_groups, gs = E / G;
            for (uint32_t e = 0; e < E; e++) {
                double x = r->base[e] - m + (C > 1 && r->cluster[e] == c ? beta : 0.0);
                w[(size_t)(e % gs) * G + e / gs] = isinf(x) ? -INFINITY : (float)x;
            }
        } else {
            double *p = r->p + (size_t)c * E, sum = 0;
            for (uint32_t e = 0; e < E; e++) {
                double x = r->base[e] - m + (C > 1 && r->cluster[e] == c ? beta : 0.0);
                p[e] = isinf(x) ? 0.0 : exp(x);
                sum += p[e];
            }
            for (uint32_t e = 0; e < E; e++) p[e] /= sum;
            build_alias(r, p, r->thr + (size_t)c * E, r->alias + (size_t)c * E);
        }
    }
}

/* The shift: expert perm[e] takes over e's log weight, drift and cluster;
 * returns the log weights to route with from now on. */
static const double *router_shift(router *r, const double *logw) {
    const uint32_t *perm = r->c->shift_perm;
    for (uint32_t e = 0; e < r->E; e++) {
        r->shift_w[perm[e]] = logw[e];
        r->shift_tmp[perm[e]] = r->drift[e];
        if (r->C > 1) r->shift_cluster[perm[e]] = r->cluster[e];
    }
    memcpy(r->drift, r->shift_tmp, r->E * sizeof *r->drift);
    r->cluster = r->shift_cluster;
    router_rebuild(r, r->shift_w);
    return r->shift_w;
}

static void router_drift_step(router *r, ms_rng *drng) {
    double s = r->c->drift;
    for (uint32_t e = 0; e < r->E; e++) r->drift[e] = (1.0 - DRIFT_THETA) * r->drift[e] + s * ms_rng_normal(drng);
}

static void next_stamp(router *r) {
    if (++r->stamp == 0) {
        memset(r->mark, 0, r->E * sizeof *r->mark);
        r->stamp = 1;
    }
}

/* One exact draw among the experts not yet marked, in proportion to p (or
 * uniformly when they all have zero weight). */
static uint32_t exact_draw(router *r, const double *p, ms_rng *rng) {
    uint32_t E = r->E, left = 0;
    double mass = 0;
    for (uint32_t e = 0; e < E; e++)
        if (r->mark[e] != r->stamp) {
            mass += p[e];
            left++;
        }
    if (mass > 1e-300) {
        double u = ms_rng_uniform(rng) * mass, acc = 0;
        uint32_t last = E;
        for (uint32_t e = 0; e < E; e++)
            if (r->mark[e] != r->stamp && p[e] > 0) {
                acc += p[e];
                last = e;
                if (u < acc) return e;
            }
        return last; /* rounding: u landed on the total */
    }
    uint64_t k = ms_rng_below(rng, left);
    for (uint32_t e = 0; e < E; e++)
        if (r->mark[e] != r->stamp && k-- == 0) return e;
    return 0; /* not reached: left > 0 because R <= E */
}

static void route_plain(router *r, uint32_t topic, ms_rng *rng) {
    uint32_t E = r->E, R = r->R, n = 0, tries = 0, limit = 4 * R + 16;
    const uint32_t *thr = r->thr + (size_t)topic * E;
    const uint16_t *alias = r->alias + (size_t)topic * E;
    next_stamp(r);
    while (n < R) {
        uint32_t e;
        if (tries < limit) {
            uint64_t x = wy_next(&r->wy);
            uint32_t i = (uint32_t)(((x >> 32) * E) >> 32), a = alias[i];
            uint32_t keep = 0u - (uint32_t)((uint32_t)x < thr[i]); /* branch-free select */
            e = (i & keep) | (a & ~keep);
            tries++;
            if (r->mark[e] == r->stamp) continue;
        } else {
            e = exact_draw(r, r->p + (size_t)topic * E, rng);
        }
        r->mark[e] = r->stamp;
        r->choice[n++] = (uint16_t)e;
    }
}

/* Order-preserving map of a float to a signed int: a < b iff key(a) < key(b). */
static inline int32_t float_key(float f) {
    int32_t i;
    memcpy(&i, &f, sizeof i);
    return i ^ (int32_t)((uint32_t)(i >> 31) & 0x7fffffffu);
}

/* Unique ranking key of expert e with score v: higher score first, then the
 * lower id. */
static inline int64_t expert_key(float v, uint32_t e) { return (int64_t)float_key(v) * 65536 + (65535 - e); }

/* Group ranking key: the score's order with the low 6 bits replaced by the
 * inverted group id (no ties; the lower id wins near-ties). */
static inline int32_t group_key(float v, uint32_t g) {
    return (int32_t)(((uint32_t)float_key(v) & ~63u) | (63u - g));
}

/* Writes the m best of the n candidates (ids r->cand[k], scores
 * r->cscore[k]) to out in rank order (m <= n): higher score first, then the
 * lower id. Up to 16 candidates: each one's rank is counted against all 16
 * slots (padding never counts), without branches; more: insertion into a
 * sorted buffer. */
static void select_top(router *r, uint32_t n, uint32_t m, uint16_t *out) {
    const uint32_t *id = r->cand;
    const float *sc = r->cscore;
    if (n <= 16) {
        int32_t *key = r->k32, *iv = r->i32;
        for (uint32_t k = 0; k < 16; k++) {
            key[k] = k < n ? float_key(sc[k]) : INT32_MIN; /* below any score's key, even -inf */
            iv[k] = k < n ? (int32_t)id[k] : INT32_MAX;
        }
        uint16_t *slot = r->slot; /* [16 + 1]: ranks >= m land in slot[m] */
#if defined(GEN_SIMD)
        __m128i K[4], I[4];
        for (uint32_t v = 0; v < 4; v++) {
            K[v] = _mm_loadu_si128((const __m128i *)(key + 4 * v));
            I[v] = _mm_loadu_si128((const __m128i *)(iv + 4 * v));
        }
        for (uint32_t k = 0; k < n; k++) {
            __m128i bk = _mm_set1_epi32(key[k]), bi = _mm_set1_epi32(iv[k]), acc = _mm_setzero_si128();
            for (uint32_t v = 0; v < 4; v++) {
                __m128i gt = _mm_cmpgt_epi32(K[v], bk);
                __m128i tie = _mm_and_si128(_mm_cmpeq_epi32(K[v], bk), _mm_cmpgt_epi32(bi, I[v]));
                acc = _mm_sub_epi32(acc, _mm_or_si128(gt, tie));
            }
            acc = _mm_add_epi32(acc, _mm_shuffle_epi32(acc, 0x4e));
            acc = _mm_add_epi32(acc, _mm_shuffle_epi32(acc, 0xb1));
            uint32_t above = (uint32_t)_mm_cvtsi128_si32(acc);
            slot[above < m ? above : m] = (uint16_t)id[k];
        }
#else
        for (uint32_t k = 0; k < n; k++) {
            uint32_t above = 0;
            for (uint32_t j = 0; j < 16; j++) above += (key[j] > key[k]) | ((key[j] == key[k]) & (iv[j] < iv[k]));
            slot[above < m ? above : m] = (uint16_t)id[k];
        }
#endif
        memcpy(out, slot, m * sizeof *out);
        return;
    }
    int64_t *bk = r->bk;
    uint32_t *bi = r->bi, cnt = 0;
    for (uint32_t k = 0; k < n; k++) {
        int64_t key = expert_key(sc[k], id[k]);
        uint32_t pos;
        if (cnt < m) pos = cnt++;
        else if (key > bk[m - 1]) pos = m - 1;
        else continue;
        while (pos > 0 && bk[pos - 1] < key) {
            bk[pos] = bk[pos - 1];
            bi[pos] = bi[pos - 1];
            pos--;
        }
        bk[pos] = key;
        bi[pos] = id[k];
    }
    for (uint32_t k = 0; k < m; k++) out[k] = (uint16_t)bi[k];
}

/* Grouped routing keeps scores (and log weights) transposed: expert
 * e = g * gs + i sits at [i * G + g], so that the per-group scans run over
 * contiguous rows of G. Random bits: 16 per expert in storage order, 4 per
 * 64-bit draw. */

/* Candidates among the chosen groups (sel) scoring >= theta, lowering theta
 * until there are at least m; fills r->cand / r->ckey, returns the count. */
static uint32_t collect_candidates(router *r, const float *s, uint32_t G, uint32_t gs, float theta, uint32_t m) {
    uint32_t n = 0;
    for (uint32_t round = 0;; round++) {
        if (round >= 8 || !(theta > -1e30f)) theta = -INFINITY;
        n = 0;
        for (uint32_t g = 0; g < G; g++) {
            if (!r->gsel[g]) continue;
            for (uint32_t i = 0; i < gs; i++) {
                float v = s[(size_t)i * G + g];
                r->cand[n] = g * gs + i;
                r->cscore[n] = v;
                n += v >= theta;
            }
        }
        if (n >= m || theta == -INFINITY) return n;
        theta -= 1.0f;
    }
}

/* Appends the ranked choices beyond the allowed groups: the best m2 of the
 * other experts. */
static void rank_rest(router *r, const float *s, uint32_t G, uint32_t gs, uint32_t m1) {
    uint32_t n = 0;
    for (uint32_t g = 0; g < G; g++) {
        if (r->gsel[g]) continue;
        for (uint32_t i = 0; i < gs; i++) {
            r->cand[n] = g * gs + i;
            r->cscore[n++] = s[(size_t)i * G + g];
        }
    }
    select_top(r, n, r->R - m1, r->choice + m1);
}

/* Any number of groups, plain C. */
static void route_grouped(router *r, uint32_t topic) {
    const gen_layer_cfg *c = r->c;
    uint32_t E = r->E, R = r->R, G = c->n_groups, gs = E / G, tg = c->topk_groups;
    const float *w = r->wf + (size_t)topic * E, *gum = c->gumbel;
    float *s = r->score;
    uint32_t j = 0;
    for (; j + 4 <= E; j += 4) {
        uint64_t x = wy_next(&r->wy);
        s[j] = w[j] + gum[x & 0xffff];
        s[j + 1] = w[j + 1] + gum[(x >> 16) & 0xffff];
        s[j + 2] = w[j + 2] + gum[(x >> 32) & 0xffff];
        s[j + 3] = w[j + 3] + gum[x >> 48];
    }
    if (j < E) {
        uint64_t x = wy_next(&r->wy);
        for (; j < E; j++, x >>= 16) s[j] = w[j] + gum[x & 0xffff];
    }
    /* best and second best of each group, G independent branch-free chains */
    float t1[GEN_MAX_GROUPS], t2[GEN_MAX_GROUPS];
    int32_t key[GEN_MAX_GROUPS];
    for (uint32_t g = 0; g < G; g++) t1[g] = t2[g] = -INFINITY;
    for (uint32_t i = 0; i < gs; i++) {
        const float *row = s + (size_t)i * G;
        for (uint32_t g = 0; g < G; g++) {
            float v = row[g], b = t1[g], lo = v < b ? v : b;
            t2[g] = lo > t2[g] ? lo : t2[g];
            t1[g] = v > b ? v : b;
        }
    }
    bool use_max = c->group_score == MS_GROUP_MAX || gs < 2;
    for (uint32_t g = 0; g < G; g++) {
        if (gs < 2) t2[g] = t1[g];
        key[g] = group_key(use_max ? t1[g] : t1[g] + t2[g], g);
    }
    /* the topk_groups best groups; theta = their lowest second-best score,
     * which 2 * topk_groups allowed experts reach */
    float theta = INFINITY;
    for (uint32_t g = 0; g < G; g++) {
        uint32_t above = 0;
        for (uint32_t h = 0; h < G; h++) above += key[h] > key[g];
        r->gsel[g] = above < tg;
        theta = r->gsel[g] && t2[g] < theta ? t2[g] : theta;
    }
    uint32_t allowed = tg * gs, m1 = R < allowed ? R : allowed;
    uint32_t n = collect_candidates(r, s, G, gs, theta, m1);
    select_top(r, n, m1, r->choice);
    if (R > m1) rank_rest(r, s, G, gs, m1);
}

#if defined(GEN_SIMD)
/* The same for exactly 8 groups (DeepSeek-V2/V3) with SSE2: the same random
 * bits, scores and choices as route_grouped, about three times faster. */
static void route_grouped8(router *r, uint32_t topic) {
    const gen_layer_cfg *c = r->c;
    uint32_t E = r->E, R = r->R, gs = E / 8, tg = c->topk_groups;
    const float *w = r->wf + (size_t)topic * E, *gum = c->gumbel;
    float *s = r->score;
    __m128 a1l = _mm_set1_ps(-INFINITY), a1h = a1l, a2l = a1l, a2h = a1l;
    for (uint32_t i = 0; i < gs; i++) {
        const float *wr = w + (size_t)i * 8;
        uint64_t x = wy_next(&r->wy), y = wy_next(&r->wy);
        __m128 vl = _mm_add_ps(_mm_loadu_ps(wr), _mm_set_ps(gum[x >> 48], gum[(x >> 32) & 0xffff],
                                                             gum[(x >> 16) & 0xffff], gum[x & 0xffff]));
        __m128 vh = _mm_add_ps(_mm_loadu_ps(wr + 4), _mm_set_ps(gum[y >> 48], gum[(y >> 32) & 0xffff],
                                                                 gum[(y >> 16) & 0xffff], gum[y & 0xffff]));
        _mm_storeu_ps(s + (size_t)i * 8, vl);
        _mm_storeu_ps(s + (size_t)i * 8 + 4, vh);
        a2l = _mm_max_ps(a2l, _mm_min_ps(vl, a1l));
        a1l = _mm_max_ps(a1l, vl);
        a2h = _mm_max_ps(a2h, _mm_min_ps(vh, a1h));
        a1h = _mm_max_ps(a1h, vh);
    }
    float t1[8], t2[8];
    int32_t key[8];
    _mm_storeu_ps(t1, a1l);
    _mm_storeu_ps(t1 + 4, a1h);
    _mm_storeu_ps(t2, a2l);
    _mm_storeu_ps(t2 + 4, a2h);
    bool use_max = c->group_score == MS_GROUP_MAX || gs < 2;
    for (uint32_t g = 0; g < 8; g++) {
        if (gs < 2) t2[g] = t1[g];
        key[g] = group_key(use_max ? t1[g] : t1[g] + t2[g], g);
    }
    __m128i k0 = _mm_loadu_si128((const __m128i *)key), k1 = _mm_loadu_si128((const __m128i *)(key + 4));
    float theta = INFINITY;
    uint32_t selmask = 0;
    for (uint32_t g = 0; g < 8; g++) {
        __m128i b = _mm_set1_epi32(key[g]);
        uint32_t gt = (uint32_t)_mm_movemask_ps(_mm_castsi128_ps(_mm_cmpgt_epi32(k0, b))) |
                      (uint32_t)_mm_movemask_ps(_mm_castsi128_ps(_mm_cmpgt_epi32(k1, b))) << 4;
        gt = gt - ((gt >> 1) & 0x55u); /* popcount of 8 bits without a libgcc call */
        gt = (gt & 0x33u) + ((gt >> 2) & 0x33u);
        gt = (gt + (gt >> 4)) & 0x0fu;
        uint32_t sel = gt < tg;
        r->gsel[g] = (uint8_t)sel;
        selmask |= sel << g;
        theta = sel && t2[g] < theta ? t2[g] : theta;
    }
    uint32_t allowed = tg * gs, m1 = R < allowed ? R : allowed, n = 0;
    /* as in collect_candidates: theta steps down (up to 8 times) until m1
     * candidates reach it; the plain loop takes over after that */
    for (uint32_t round = 0; round < 8 && theta > -1e30f; round++, theta -= 1.0f) {
        /* branch-free compaction: per row, the 8-bit mask of chosen groups
         * scoring >= theta indexes tables of the matching expert ids and
         * score positions; all 8 lanes are stored, n advances by the count */
        __m128 th = _mm_set1_ps(theta);
        n = 0;
        for (uint32_t i = 0; i < gs; i++) {
            const float *row = s + (size_t)i * 8;
            uint32_t m = ((uint32_t)_mm_movemask_ps(_mm_cmpge_ps(_mm_loadu_ps(row), th)) |
                          (uint32_t)_mm_movemask_ps(_mm_cmpge_ps(_mm_loadu_ps(row + 4), th)) << 4) & selmask;
            __m128i ids = _mm_add_epi16(_mm_loadu_si128((const __m128i *)(r->lut_id + 8 * m)),
                                        _mm_set1_epi16((short)i));
            __m128i pos = _mm_add_epi16(_mm_loadu_si128((const __m128i *)(r->lut_pos + 8 * m)),
                                        _mm_set1_epi16((short)(i * 8)));
            _mm_storeu_si128((__m128i *)(r->cid + n), ids);
            _mm_storeu_si128((__m128i *)(r->cpos + n), pos);
            n += r->lut_cnt[m];
        }
        if (n >= m1) break;
    }
    if (n >= m1)
        for (uint32_t k = 0; k < n; k++) {
            r->cand[k] = r->cid[k];
            r->cscore[k] = s[r->cpos[k]];
        }
    else n = collect_candidates(r, s, 8, gs, -INFINITY, m1);
    select_top(r, n, m1, r->choice);
    if (R > m1) rank_rest(r, s, 8, gs, m1);
}
#endif

ms_status gen_route_layer(const gen_layer_cfg *c, const double *logw, const uint8_t *topics,
                          uint64_t n_tokens, uint64_t seed, uint16_t *out_k, uint16_t *out_r,
                          uint64_t *counts, ms_error *err) {
    router r;
    ms_status st = router_init(&r, c, err);
    if (st != MS_OK) return st;
    ms_rng rng, drng;
    ms_rng_seed(&rng, seed);
    ms_rng_seed(&drng, gen_seed_mix(seed, 0xd71f7, 0));
    r.wy = ms_rng_next(&rng);
    router_rebuild(&r, logw);
    uint32_t K = r.K, R = r.R;
    bool drift = c->drift > 0 && c->drift_window > 0;
    const double *w = logw;
    for (uint64_t t = 0; t < n_tokens; t++) {
        if (drift && t > 0 && t % c->drift_window == 0) {
            router_drift_step(&r, &drng);
            router_rebuild(&r, w);
        }
        if (c->shift_perm && t == c->shift_token) w = router_shift(&r, w);
        uint32_t topic = r.C > 1 ? topics[t] : 0;
        if (r.grouped) {
#if defined(GEN_SIMD)
            if (c->n_groups == 8 && !c->force_scalar) route_grouped8(&r, topic);
            else
#endif
                route_grouped(&r, topic);
        }
        else route_plain(&r, topic, &rng);
        if (out_k)
            for (uint32_t j = 0; j < K; j++) out_k[t * K + j] = r.choice[j];
        if (out_r)
            for (uint32_t j = 0; j < R; j++) out_r[t * R + j] = r.choice[j];
        if (counts)
            for (uint32_t j = 0; j < K; j++) counts[r.choice[j]]++;
    }
    router_free(&r);
    return MS_OK;
}

ms_status gen_fit_layer(const gen_layer_cfg *c, const double *target, uint32_t iters,
                        const uint8_t *cal_topics, uint64_t n_cal, uint64_t seed, double *logw,
                        ms_error *err) {
    uint32_t E = c->n_experts, K = c->top_k;
    gen_layer_cfg nodrift = *c;
    nodrift.drift = 0;
    nodrift.n_ranked = c->top_k;
    nodrift.shift_perm = NULL;
    double *s = ms_alloc_array(E, sizeof *s, err);
    uint64_t *counts = ms_alloc_array(E, sizeof *counts, err);
    if (!s || !counts) {
        ms_free(s);
        ms_free(counts);
        return MS_E_NOMEM;
    }
    double *w = logw;
    for (uint32_t e = 0; e < E; e++) w[e] = target[e] > 0 ? log(target[e]) : -INFINITY;
    ms_status st = MS_OK;
    for (uint32_t it = 0; it < iters; it++) {
        /* rounds route n_cal/8, /4, /2, then n_cal tokens: coarse corrections
         * first, the last ones precise */
        uint32_t shift = it < 3 ? 3 - it : 0;
        uint64_t n = n_cal >> shift;
        if (n == 0) n = n_cal;
        double m = -INFINITY;
        for (uint32_t e = 0; e < E; e++)
            if (w[e] > m) m = w[e];
        for (uint32_t e = 0; e < E; e++) w[e] -= isinf(w[e]) ? 0 : m;
        memset(counts, 0, E * sizeof *counts);
        st = gen_route_layer(&nodrift, w, cal_topics, n, gen_seed_mix(seed, it, 0), NULL, NULL, counts, err);
        if (st != MS_OK) break;
        double total = (double)n * K, floor_share = 0.5 / total;
        for (uint32_t e = 0; e < E; e++) s[e] = (double)counts[e] / total;
        for (uint32_t e = 0; e < E; e++) {
            if (!(target[e] > 0)) continue;
            double step = log(target[e] / (s[e] > floor_share ? s[e] : floor_share));
            w[e] += step > 2 ? 2 : step < -2 ? -2 : step;
        }
    }
    ms_free(s);
    ms_free(counts);
    return st;
}
