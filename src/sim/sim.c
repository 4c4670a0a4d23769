/* sim.c - the trace-driven simulator: replica routing with capacity, and the
 * mesh (moe-balance) and roofline cost models. See moesim/sim.h and
 * docs/MODEL.md.
 *
 * Layout for speed: the placement is turned into flat instance tables per
 * layer (expert -> first instance and replica count; instance -> device, row,
 * column), the counters live in a per-thread workspace allocated once and
 * reset per (batch, layer), and the routing loop is specialised per policy
 * and cost model (compile-time constants inside each copy), with the tables
 * held in restrict-qualified locals. Work items are (layer, chunk of
 * batches) with chunks fixed by token count, so the results never depend on
 * the number of threads. */
#include "moesim/sim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef MOESIM_HAVE_OPENMP
#include <omp.h>
#endif

#define NONE UINT32_MAX
#define CHUNK_TOKENS 16384u
#define ALWAYS_INLINE inline __attribute__((always_inline))

void ms_sim_opts_default(ms_sim_opts *o) {
    memset(o, 0, sizeof *o);
    o->cost_model = MS_COST_MESH;
    o->route = MS_ROUTE_BALANCED;
    o->capacity_factor = NAN;
    o->overflow = MS_OVERFLOW_ACCEPT;
    o->origin = MS_ORIGIN_AVERAGE_ROWS;
    o->layer = -1;
    o->row_local_slack = 0.25;
    o->overlap = MS_OVERLAP_NONE;
    o->seed = 0;
    o->threads = 0;
    o->mesh_table = MS_MESH_TABLE_REFERENCE;
    for (int i = 0; i < 4; i++) o->mesh_coeffs[i] = NAN;
    o->mesh_expert_us = 118.0;
    o->mesh_chunk = 32;
    o->keep_records = true;
}

/* ------------------------------------------------------------ tables */

typedef struct ex_t {
    uint32_t first, nrep; /* an expert's instances: first .. first + nrep - 1 */
} ex_t;

typedef struct ltab {
    uint32_t n_inst;
    ex_t *ex;               /* [n_logical] */
    uint32_t *inst_dev;     /* [n_inst] */
    uint32_t *inst_row;     /* [n_inst] */
    uint32_t *inst_col;     /* [n_inst] */
    uint32_t *inst_exp;     /* [n_inst] */
    uint32_t *dev_off;      /* [D + 1] into dev_inst */
    uint32_t *dev_inst;     /* [n_inst] instances of each device, ascending */
    struct minfo *mi;       /* [n_inst] packed terms for small meshes, or NULL */
    struct dinfo *di;       /* [n_inst + 1] device and row of each instance (one padding entry) */
} ltab;

typedef struct dinfo {
    uint32_t dev, row;
} dinfo;

/* Small meshes (rows <= 8, cols <= 8, devices <= 64): per instance, its
 * device as a bit, its column as an 8-bit lane increment, and its ring
 * distance to every origin row in 8-bit lanes, so a token's E_col, U and hop
 * sums are a few adds and ors (tokens with <= 15 destinations: no lane can
 * overflow). */
typedef struct minfo {
    uint64_t devbit;
    uint64_t colinc;
    uint64_t hopvec;
    uint32_t colsh;
    uint32_t rowbit;
} minfo;
#define SMALL_MAX_ND 15

typedef struct simctx {
    const ms_trace *t;
    const ms_batch_plan *plan;
    const ms_placement *p;
    const ms_sim_opts *o;
    const ms_sim_hooks *hooks;
    uint32_t D, rows, cols, n_logical, k, shared_id; /* shared_id = NONE without one */
    uint32_t max_inst;
    uint32_t *dev_row, *dev_col;
    uint16_t *ring;          /* [rows * rows] ring distance */
    ltab *tabs;
    uint32_t n_tabs;
    double cf;               /* applied capacity factor, 0 = none */
    double A, B, C, Dc;
    bool mesh, avg_rows, per_row_routing, split, small;
    uint8_t *maxtab;         /* small meshes: [256][8] max ring distance of a row set to each row */
    uint64_t rowdevs[8];     /* small meshes: the devices of each row as bits */
    /* roofline constants, per microsecond */
    double expert_flops_tok, expert_wbytes, act_bytes_tok;
    double flops_per_us, hbm_per_us;
    /* the hardware's efficiency curve (hw->eff_n > 0): expert compute of an
     * instance with n assignments takes n x expert_flops_tok / (peak_per_us x
     * efficiency(n)); us_tok[n] caches expert_flops_tok / (peak_per_us x
     * efficiency(n)) for whole n < n_us_tok (beyond it the curve is flat) */
    const ms_hw_preset *eff_hw;
    double peak_per_us;
    double *us_tok;
    uint32_t n_us_tok;
    double dense_flops_tok, dense_bytes;
    double bw_us[2], alpha_us[2]; /* [0] within a row (NVLink), [1] between rows (network) */
    double disp_bytes, comb_bytes;
} simctx;

static void ltabs_free(ltab *tabs, uint32_t n) {
    if (!tabs) return;
    for (uint32_t i = 0; i < n; i++) {
        ms_free(tabs[i].ex);
        ms_free(tabs[i].inst_dev);
        ms_free(tabs[i].inst_row);
        ms_free(tabs[i].inst_col);
        ms_free(tabs[i].inst_exp);
        ms_free(tabs[i].dev_off);
        ms_free(tabs[i].dev_inst);
        ms_free(tabs[i].mi);
        ms_free(tabs[i].di);
    }
    ms_free(tabs);
}

/* Instances are numbered by expert id ascending, then in the placement's
 * replica order (log2phy), as moe-balance numbers them. */
static ms_status ltab_build(const ms_placement *p, uint32_t layer, uint32_t D, const uint16_t *ring, bool small,
                            ltab *T, ms_error *err) {
    uint32_t nlog = p->n_logical, spd = p->cluster.slots_per_device, maxr = p->max_replicas;
    uint32_t cols = p->cluster.cols;
    const uint32_t *cnt = p->logcnt + (size_t)layer * nlog;
    const int32_t *l2p = p->log2phy + (size_t)layer * nlog * maxr;
    uint32_t n = 0;
    for (uint32_t e = 0; e < nlog; e++) n += cnt[e];
    size_t nn = n ? n : 1;
    T->n_inst = n;
    T->ex = ms_alloc_array(nlog, sizeof *T->ex, err);
    T->inst_dev = ms_alloc_array(nn, sizeof(uint32_t), err);
    T->inst_row = ms_alloc_array(nn, sizeof(uint32_t), err);
    T->inst_col = ms_alloc_array(nn, sizeof(uint32_t), err);
    T->inst_exp = ms_alloc_array(nn, sizeof(uint32_t), err);
    T->dev_off = ms_calloc_array((size_t)D + 1, sizeof(uint32_t), err);
    T->dev_inst = ms_alloc_array(nn, sizeof(uint32_t), err);
    if (!T->ex || !T->inst_dev || !T->inst_row || !T->inst_col || !T->inst_exp || !T->dev_off || !T->dev_inst)
        return MS_E_NOMEM;
    uint32_t i = 0;
    for (uint32_t e = 0; e < nlog; e++) {
        T->ex[e].first = i;
        T->ex[e].nrep = cnt[e];
        for (uint32_t r = 0; r < cnt[e]; r++, i++) {
            uint32_t d = (uint32_t)l2p[(size_t)e * maxr + r] / spd;
            T->inst_dev[i] = d;
            T->inst_row[i] = d / cols;
            T->inst_col[i] = d % cols;
            T->inst_exp[i] = e;
            T->dev_off[d + 1]++;
        }
    }
    for (uint32_t d = 0; d < D; d++) T->dev_off[d + 1] += T->dev_off[d];
    uint32_t *fill = ms_alloc_array(D ? D : 1, sizeof(uint32_t), err);
    if (!fill) return MS_E_NOMEM;
    memcpy(fill, T->dev_off, D * sizeof(uint32_t));
    for (uint32_t j = 0; j < n; j++) T->dev_inst[fill[T->inst_dev[j]]++] = j;
    ms_free(fill);
    T->di = ms_calloc_array((size_t)n + 1, sizeof *T->di, err);
    if (!T->di) return MS_E_NOMEM;
    for (uint32_t j = 0; j < n; j++) {
        T->di[j].dev = T->inst_dev[j];
        T->di[j].row = T->inst_row[j];
    }
    if (small) {
        uint32_t rows = p->cluster.rows;
        T->mi = ms_calloc_array(nn, sizeof *T->mi, err);
        if (!T->mi) return MS_E_NOMEM;
        for (uint32_t j = 0; j < n; j++) {
            minfo *m = &T->mi[j];
            m->devbit = 1ull << T->inst_dev[j];
            m->colsh = 8 * T->inst_col[j];
            m->colinc = 1ull << m->colsh;
            m->rowbit = 1u << T->inst_row[j];
            for (uint32_t o = 0; o < rows; o++)
                m->hopvec |= (uint64_t)ring[(size_t)T->inst_row[j] * rows + o] << (8 * o);
        }
    }
    return MS_OK;
}

/* ------------------------------------------------------------ workspace */

typedef struct ws {
    uint32_t *cnt;                     /* [max_inst] assignments per instance */
    uint32_t *inst_stamp;              /* [max_inst] */
    double *fcnt;                      /* [max_inst] split only */
    uint32_t *load, *dev_stamp;        /* [D] */
    double *fload, *tokw;              /* [D] split only */
    uint32_t *touched;                 /* [D] split only */
    uint32_t *col_cnt;                 /* [cols] zero between tokens */
    uint32_t *row_stamp, *row_slot, *row_list, *row_cnt; /* [rows] a token's destination rows */
    uint32_t *rr, *ovf;                /* [n_logical] */
    uint32_t *m4;                      /* [D][4] messages: send intra, send inter, recv intra, recv inter */
    uint32_t *otok_u;                  /* [D] tokens originating */
    double *msg[4];                    /* [D] the same as doubles (split writes them directly) */
    double *otok;                      /* [D] */
    double *maxd, *maxc;               /* [rows] mesh maxima per origin row */
    uint32_t *dest, *extra;            /* [k + 1], [n_logical] rerouted experts of a token */
    /* per-device outputs (summed over micro-batches) */
    double *o_load, *o_otok, *o_dense, *o_comp, *o_disp, *o_comb, *o_busy, *o_idle, *o_flops, *o_hbm;
    double *o_msg[4];
    /* throttle (opts.throttle): one micro-batch's per-device dense and expert
     * time, busy time, FLOPs, HBM bytes and clocks, 2 x D scratch for the
     * callback, the dense and expert time at full clock summed over
     * micro-batches, and the effective clock handed to the step */
    double *t_dense, *t_comp, *t_busy, *t_flops, *t_hbm, *t_clock, *t_scratch, *o_fdense, *o_fcomp, *o_clock;
    uint32_t unmet;
    uint32_t stamp;
    ms_rng rng, orng;
    /* per span results */
    uint64_t assigned, dropped, rerouted;
    double mesh_intra, mesh_inter; /* message counts (mesh) */
} ws;

static void ws_free(ws *w) {
    if (!w) return;
    void *ptrs[] = {w->cnt,      w->inst_stamp, w->fcnt,     w->load,     w->dev_stamp, w->fload,   w->tokw,
                    w->touched,  w->row_stamp,  w->col_cnt,  w->rr,       w->ovf,       w->m4,      w->otok_u,
                    w->msg[0],   w->msg[1],     w->msg[2],   w->msg[3],   w->otok,      w->row_slot, w->row_list,
                    w->maxd,     w->maxc,       w->dest,     w->row_cnt,     w->extra,    w->o_load,    w->o_otok,  w->o_dense,
                    w->o_comp,   w->o_disp,     w->o_comb,   w->o_busy,   w->o_idle,    w->o_flops, w->o_hbm,
                    w->o_msg[0], w->o_msg[1],   w->o_msg[2], w->o_msg[3], w->t_dense, w->t_comp, w->t_busy,
                    w->t_flops,  w->t_hbm,      w->t_clock,  w->t_scratch, w->o_fdense, w->o_fcomp, w->o_clock};
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++) ms_free(ptrs[i]);
    ms_free(w);
}

static ws *ws_new(const simctx *c, ms_error *err) {
    ws *w = ms_calloc_array(1, sizeof *w, err);
    if (!w) return NULL;
    size_t I = c->max_inst ? c->max_inst : 1, D = c->D, L = c->n_logical, R = c->rows;
    int ok = 1;
#define A_(f, n) ok &= (w->f = ms_calloc_array((n), sizeof *w->f, err)) != NULL
    A_(cnt, I + 1); /* one padding slot: the two-replica fast path reads cnt[first + 1] */
    A_(inst_stamp, I);
    A_(fcnt, I);
    A_(load, D);
    A_(dev_stamp, D);
    A_(fload, D);
    A_(tokw, D);
    A_(touched, D);
    A_(col_cnt, c->cols);
    A_(row_stamp, R);
    A_(row_slot, R);
    A_(row_list, R);
    A_(row_cnt, R);
    A_(rr, L);
    A_(ovf, L);
    A_(m4, 4 * D);
    A_(otok_u, D);
    for (int i = 0; i < 4; i++) {
        A_(msg[i], D);
        A_(o_msg[i], D);
    }
    A_(otok, D);
    A_(maxd, R);
    A_(maxc, R);
    A_(dest, (size_t)c->k + 1);
    A_(extra, L);
    A_(o_load, D);
    A_(o_otok, D);
    A_(o_dense, D);
    A_(o_comp, D);
    A_(o_disp, D);
    A_(o_comb, D);
    A_(o_busy, D);
    A_(o_idle, D);
    A_(o_flops, D);
    A_(o_hbm, D);
    if (c->o->throttle) {
        A_(t_dense, D);
        A_(t_comp, D);
        A_(t_busy, D);
        A_(t_flops, D);
        A_(t_hbm, D);
        A_(t_clock, D);
        A_(t_scratch, 2 * D);
        A_(o_fdense, D);
        A_(o_fcomp, D);
        A_(o_clock, D);
    }
#undef A_
    if (!ok) {
        ws_free(w);
        return NULL;
    }
    w->stamp = 1;
    return w;
}

static void __attribute__((noinline)) stamps_wrapped(const simctx *c, ws *w) {
    memset(w->inst_stamp, 0, (c->max_inst ? c->max_inst : 1) * sizeof(uint32_t));
    memset(w->dev_stamp, 0, c->D * sizeof(uint32_t));
    memset(w->row_stamp, 0, c->rows * sizeof(uint32_t));
    w->stamp = 1;
}

static ALWAYS_INLINE uint32_t next_stamp(const simctx *c, ws *w) {
    if (__builtin_expect(++w->stamp == 0, 0)) stamps_wrapped(c, w);
    return w->stamp;
}

static void ws_reset(const simctx *c, const ltab *T, ws *w) {
    memset(w->cnt, 0, T->n_inst * sizeof(uint32_t));
    memset(w->load, 0, c->D * sizeof(uint32_t));
    if (c->split) {
        memset(w->fcnt, 0, T->n_inst * sizeof(double));
        memset(w->fload, 0, c->D * sizeof(double));
        for (int i = 0; i < 4; i++) memset(w->msg[i], 0, c->D * sizeof(double));
        memset(w->otok, 0, c->D * sizeof(double));
    }
    if (c->o->route == MS_ROUTE_ROUND_ROBIN) memset(w->rr, 0, c->n_logical * sizeof(uint32_t));
    if (c->o->route == MS_ROUTE_BALANCED) memset(w->ovf, 0, c->n_logical * sizeof(uint32_t));
    if (!c->mesh && !c->split) {
        memset(w->m4, 0, 4 * (size_t)c->D * sizeof(uint32_t));
        memset(w->otok_u, 0, c->D * sizeof(uint32_t));
    }
    if (c->mesh)
        for (uint32_t r = 0; r < c->rows; r++) w->maxd[r] = w->maxc[r] = 0;
    w->assigned = w->dropped = w->rerouted = 0;
    w->mesh_intra = w->mesh_inter = 0;
}

/* ------------------------------------------------------------ routing */

typedef struct tokctx {
    const uint16_t *ids;     /* the token's top-k */
    uint32_t k;
    uint32_t orow;
    uint32_t n_extra;        /* rerouted experts so far (in ws->extra) */
    uint64_t tok;
    uint32_t layer;
} tokctx;

static bool token_uses(const ws *w, const tokctx *tc, uint32_t e) {
    for (uint32_t j = 0; j < tc->k; j++)
        if (tc->ids[j] == e) return true;
    for (uint32_t j = 0; j < tc->n_extra; j++)
        if (w->extra[j] == e) return true;
    return false;
}

/* Routes that keep device loads while routing (the others derive them from
 * the instance counts afterwards). */
static inline bool route_needs_load(ms_route r) { return r == MS_ROUTE_LEAST_LOADED || r == MS_ROUTE_ROW_LOCAL; }

/* The replica of e below capacity whose device has the least load so far
 * (routes that keep device loads) or that has the fewest assignments (the
 * others); ties: placement order. NONE if all are full. */
static uint32_t best_free_replica(const simctx *c, const ltab *T, const ws *w, uint32_t e, uint32_t cap) {
    uint32_t f = T->ex[e].first, n = T->ex[e].nrep, best = NONE, bl = UINT32_MAX;
    bool by_dev = route_needs_load(c->o->route);
    for (uint32_t r = 0; r < n; r++) {
        uint32_t i = f + r;
        if (w->cnt[i] >= cap) continue;
        uint32_t l = by_dev ? w->load[T->inst_dev[i]] : w->cnt[i];
        if (best == NONE || l < bl) {
            best = i;
            bl = l;
        }
    }
    return best;
}

/* The assignment of token tc to expert e found the policy's pick `pick` at
 * capacity: another replica below capacity, else the overflow policy. */
static uint32_t __attribute__((noinline)) overflow_slow(const simctx *c, const ltab *T, ws *w, tokctx *tc,
                                                        uint32_t e, uint32_t pick, uint32_t cap) {
    const ms_sim_opts *o = c->o;
    if (o->route != MS_ROUTE_BALANCED) {
        uint32_t alt = best_free_replica(c, T, w, e, cap);
        if (alt != NONE) return alt;
    }
    switch (o->overflow) {
    case MS_OVERFLOW_ACCEPT:
        if (o->route == MS_ROUTE_BALANCED) { /* the per-expert overflow counter, mod replicas */
            uint32_t r = w->ovf[e];
            w->ovf[e] = r + 1 == T->ex[e].nrep ? 0 : r + 1;
            return T->ex[e].first + r;
        }
        return pick;
    case MS_OVERFLOW_DROP:
        w->dropped++;
        return NONE;
    case MS_OVERFLOW_REROUTE:
        break;
    }
    if (e == c->shared_id) { /* the shared expert has no next choice */
        w->dropped++;
        return NONE;
    }
    const ms_trace *t = c->t;
    if (t->ranked && t->n_ranked > t->top_k) {
        const uint16_t *rk = t->ranked + ((uint64_t)tc->layer * t->n_tokens + tc->tok) * t->n_ranked;
        for (uint32_t j = t->top_k; j < t->n_ranked; j++) {
            uint32_t e2 = rk[j];
            if (e2 >= c->n_logical || e2 == c->shared_id || token_uses(w, tc, e2)) continue;
            uint32_t alt = best_free_replica(c, T, w, e2, cap);
            if (alt == NONE) continue;
            w->extra[tc->n_extra++] = e2;
            w->rerouted++;
            return alt;
        }
        w->dropped++;
        return NONE;
    }
    /* Proxy without ranks: the least-filled instance below capacity among
     * those hosted on the devices of e's replicas (the token travels there
     * anyway), else among all instances; never the shared expert nor an
     * expert the token already uses. Ties: lowest instance number. */
    uint32_t best = NONE;
    uint32_t f = T->ex[e].first, n = T->ex[e].nrep;
    for (uint32_t r = 0; r < n; r++) {
        uint32_t d = T->inst_dev[f + r];
        for (uint32_t q = T->dev_off[d]; q < T->dev_off[d + 1]; q++) {
            uint32_t i = T->dev_inst[q], e2 = T->inst_exp[i];
            if (w->cnt[i] >= cap || e2 == e || e2 == c->shared_id || token_uses(w, tc, e2)) continue;
            if (best == NONE || w->cnt[i] < w->cnt[best] || (w->cnt[i] == w->cnt[best] && i < best)) best = i;
        }
    }
    if (best == NONE)
        for (uint32_t i = 0; i < T->n_inst; i++) {
            uint32_t e2 = T->inst_exp[i];
            if (w->cnt[i] >= cap || e2 == e || e2 == c->shared_id || token_uses(w, tc, e2)) continue;
            if (best == NONE || w->cnt[i] < w->cnt[best]) best = i;
        }
    if (best == NONE) {
        w->dropped++;
        return NONE;
    }
    w->extra[tc->n_extra++] = T->inst_exp[best];
    w->rerouted++;
    return best;
}

/* The tables a routing loop reads, in restrict-qualified locals. */
typedef struct hot {
    const ex_t *restrict ex;
    const uint32_t *restrict idev;
    const uint32_t *restrict irow;
    const uint32_t *restrict icol;
    uint32_t *restrict cnt;
    uint32_t *restrict load;
    double slack;
    bool accept;    /* overflow accept: a lone full replica takes the token anyway */
} hot;

static ALWAYS_INLINE uint32_t route_one(const simctx *c, const ltab *T, ws *w, const hot *h, tokctx *tc, uint32_t e,
                                        const ms_route route, uint32_t cap) {
    const uint32_t f = h->ex[e].first, n = h->ex[e].nrep;
    uint32_t inst = f;
    if (route == MS_ROUTE_BALANCED && n == 1 && h->accept) return f; /* full or not, it lands here */
    if (n > 1) {
        switch (route) {
        case MS_ROUTE_BALANCED: {
            for (uint32_t r = 0; r < n; r++)
                if (h->cnt[f + r] < cap) return f + r;
            return overflow_slow(c, T, w, tc, e, f, cap);
        }
        case MS_ROUTE_LEAST_LOADED: {
            uint32_t bl = h->load[h->idev[f]];
            for (uint32_t r = 1; r < n; r++) {
                uint32_t l = h->load[h->idev[f + r]];
                if (l < bl) {
                    bl = l;
                    inst = f + r;
                }
            }
            break;
        }
        case MS_ROUTE_ROUND_ROBIN: inst = f + (w->rr[e]++ % n); break;
        case MS_ROUTE_RANDOM: inst = f + (uint32_t)ms_rng_below(&w->rng, n); break;
        case MS_ROUTE_ROW_LOCAL: {
            uint32_t own = NONE, ol = 0, gl = h->load[h->idev[f]];
            for (uint32_t r = 0; r < n; r++) {
                uint32_t l = h->load[h->idev[f + r]];
                if (l < gl) {
                    gl = l;
                    inst = f + r;
                }
                if (h->irow[f + r] == tc->orow && (own == NONE || l < ol)) {
                    own = f + r;
                    ol = l;
                }
            }
            if (own != NONE && (double)ol <= (1.0 + h->slack) * gl + 1.0) inst = own;
            break;
        }
        case MS_ROUTE_SPLIT: break;
        }
    }
    if (__builtin_expect(h->cnt[inst] < cap, 1)) return inst;
    return overflow_slow(c, T, w, tc, e, inst, cap);
}

/* E_col of a token whose destinations repeat an instance (the same expert
 * chosen twice): distinct instances per column, max. */
static uint32_t __attribute__((noinline)) mesh_ecol_dups(const ltab *T, ws *w, uint32_t nd) {
    uint32_t ecol = 0;
    for (uint32_t q = 0; q < nd; q++) {
        uint32_t i = w->dest[q], seen = 0;
        for (uint32_t p = 0; p < q; p++) seen |= w->dest[p] == i;
        if (seen) continue;
        uint32_t cc = 1;
        for (uint32_t p = 0; p < q; p++) {
            uint32_t j = w->dest[p], first = 1;
            for (uint32_t x = 0; x < p; x++) first &= w->dest[x] != j;
            cc += first & (T->inst_col[j] == T->inst_col[i]);
        }
        ecol = cc > ecol ? cc : ecol;
    }
    return ecol;
}

static inline uint32_t popcount64(uint64_t x) {
    x = x - ((x >> 1) & 0x5555555555555555ULL);
    x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
    return (uint32_t)((x * 0x0101010101010101ULL) >> 56);
}

/* origin row of the token at plan position pos, number i in its batch */
static ALWAYS_INLINE uint32_t origin_row(const simctx *c, ws *w, ms_origin mode, uint64_t pos, uint32_t *rr,
                                         uint32_t layer, uint32_t fixed) {
    switch (mode) {
    case MS_ORIGIN_AVERAGE_ROWS: return fixed;
    case MS_ORIGIN_ROUND_ROBIN: { /* token i of the batch: row i mod rows, kept as a running counter */
        uint32_t r = *rr;
        *rr = r + 1 == c->rows ? 0 : r + 1;
        return r;
    }
    case MS_ORIGIN_RANDOM: return (uint32_t)ms_rng_below(&w->orng, c->rows);
    case MS_ORIGIN_DP: return c->dev_row[c->plan->origin[pos]];
    case MS_ORIGIN_TRACE: return c->o->origin_rows[(uint64_t)layer * c->t->n_tokens + c->plan->tok[pos]];
    }
    return 0;
}

/* Routes the tokens at plan positions [a, b) of `layer` (the batch starts at
 * position bstart) and accumulates the cost model's per-token terms. */
/* Prices one token on a small mesh (at most 8 rows) from its packed summary:
 * byte o of hv is the sum of hops from origin row o to its nd destinations,
 * rm the set of destination rows (maxtab gives the longest hop), dm the set of
 * destination devices, ecol its E_col. Raises the dispatch/combine maxima of
 * every origin row (allrows) or, in slot 0, of origin row orow, and counts its
 * messages inside and between rows. The generic loop and the mesh fast path
 * both price tokens through here, so they agree by construction. */
static inline void mesh_small_token(const simctx *c, double *restrict maxd, double *restrict maxc, bool allrows,
                                    uint32_t orow, uint64_t hv, uint32_t rm, uint64_t dm, uint32_t nd,
                                    uint32_t ecol, double *intra, double *inter) {
    const double A = c->A, B = c->B, C = c->C, Dc = c->Dc;
    const uint32_t U = popcount64(dm);
    const double bd = A + B * ecol, bc = A + B * U;
    const uint32_t first = allrows ? 0 : orow, last = allrows ? c->rows : orow + 1;
    for (uint32_t o = first; o < last; o++) {
        const uint32_t sum = (uint32_t)(hv >> (8 * o)) & 255u, mx = c->maxtab[rm * 8 + o];
        const double avg = (double)sum / nd, hm = Dc * mx;
        const double td = bd + C * avg + hm, tcb = bc + C * avg + hm;
        const uint32_t slot = allrows ? o : 0;
        maxd[slot] = td > maxd[slot] ? td : maxd[slot];
        maxc[slot] = tcb > maxc[slot] ? tcb : maxc[slot];
    }
    const double in = allrows ? (double)U / c->rows : (double)popcount64(dm & c->rowdevs[orow]);
    *intra += in;
    *inter += U - in;
}

static ALWAYS_INLINE void route_span_t(const simctx *c, const ltab *T, ws *w, uint32_t layer, uint64_t a, uint64_t b,
                                       uint64_t bstart, uint32_t cap, uint32_t fixed_row, const ms_route route,
                                       const int mesh, const int small) {
    const ms_trace *t = c->t;
    const uint32_t k = c->k, shared = c->shared_id, R = c->rows;
    const uint32_t *restrict tokv = c->plan->tok;
    const uint32_t *restrict orig = c->plan->origin;
    const uint16_t *restrict base = t->experts + (size_t)layer * t->n_tokens * k;
    const uint32_t *restrict drow = c->dev_row;
    const uint16_t *restrict ring = c->ring;
    uint32_t *restrict dest = w->dest;
    uint32_t *restrict m4 = w->m4;
    uint32_t *restrict otok = w->otok_u;
    uint32_t *restrict dstamp = w->dev_stamp;
    uint32_t *restrict istamp = w->inst_stamp;
    uint32_t *restrict colc = w->col_cnt;
    uint32_t *restrict rstamp = w->row_stamp;
    uint32_t *restrict rslot = w->row_slot;
    uint32_t *restrict rlist = w->row_list;
    uint32_t *restrict rcnt = w->row_cnt;
    double *restrict maxd = w->maxd;
    double *restrict maxc = w->maxc;
    const hot h = {T->ex,   T->inst_dev, T->inst_row, T->inst_col, w->cnt, w->load, c->o->row_local_slack,
                   c->o->overflow == MS_OVERFLOW_ACCEPT};
    const ms_origin omode = c->o->origin;
    const bool allrows = c->avg_rows && !c->per_row_routing;
    const double A = c->A, B = c->B, C = c->C, Dc = c->Dc;
    const minfo *restrict mi = T->mi;
    double intra = 0, inter = 0;
    uint64_t assigned = 0;
    uint32_t rr_row = (uint32_t)((a - bstart) % R);
    tokctx tc;
    tc.k = k;
    tc.layer = layer;
    for (uint64_t pos = a; pos < b; pos++) {
        tc.tok = tokv[pos];
        tc.ids = base + (size_t)tc.tok * k;
        tc.n_extra = 0;
        const uint32_t odev = orig[pos];
        tc.orow = mesh ? origin_row(c, w, omode, pos, &rr_row, layer, fixed_row) : drow[odev];
        uint32_t nd = 0;
        /* small meshes: the token's terms accumulate as it is routed */
        uint32_t st = 0, rm = 0, ecol = 0, dup = 0;
        uint64_t dm = 0, cv = 0, hv = 0;
        if (mesh && small) st = next_stamp(c, w);
#define LAND(inst_)                                                                                          \
    do {                                                                                                     \
        const uint32_t i_ = (inst_);                                                                         \
        h.cnt[i_]++;                                                                                         \
        if (route_needs_load(route)) h.load[h.idev[i_]]++;                                                   \
        dest[nd++] = i_;                                                                                     \
        if (mesh && small) {                                                                                 \
            const minfo *m_ = &mi[i_];                                                                       \
            dup |= istamp[i_] == st;                                                                         \
            istamp[i_] = st;                                                                                 \
            dm |= m_->devbit;                                                                                \
            cv += m_->colinc;                                                                                \
            const uint32_t cc_ = (uint32_t)(cv >> m_->colsh) & 255u;                                         \
            ecol = cc_ > ecol ? cc_ : ecol;                                                                  \
            hv += m_->hopvec;                                                                                \
            rm |= m_->rowbit;                                                                                \
        }                                                                                                    \
    } while (0)
        for (uint32_t j = 0; j < k; j++) {
            uint32_t inst = route_one(c, T, w, &h, &tc, tc.ids[j], route, cap);
            if (inst == NONE) continue;
            LAND(inst);
        }
        if (shared != NONE) {
            uint32_t inst = route_one(c, T, w, &h, &tc, shared, route, cap);
            if (inst != NONE) LAND(inst);
        }
#undef LAND
        assigned += nd;
        if (mesh && small) {
            if (nd == 0) continue;
            if (__builtin_expect(dup, 0)) ecol = mesh_ecol_dups(T, w, nd);
            mesh_small_token(c, maxd, maxc, allrows, tc.orow, hv, rm, dm, nd, ecol, &intra, &inter);
        } else if (mesh) {
            if (nd == 0) continue;
            /* E_col: distinct instances per column (max); U: distinct
             * devices; the rows of the destinations as a multiset */
            st = next_stamp(c, w);
            uint32_t U = 0, in = 0, nrw = 0;
            for (uint32_t q = 0; q < nd; q++) {
                const uint32_t i = dest[q], d = h.idev[i], r = h.irow[i];
                dup |= istamp[i] == st;
                istamp[i] = st;
                if (dstamp[d] != st) {
                    dstamp[d] = st;
                    U++;
                    in += r == tc.orow;
                }
                const uint32_t cc = ++colc[h.icol[i]];
                ecol = cc > ecol ? cc : ecol;
                if (rstamp[r] != st) {
                    rstamp[r] = st;
                    rslot[r] = nrw;
                    rlist[nrw] = r;
                    rcnt[nrw++] = 0;
                }
                rcnt[rslot[r]]++;
            }
            for (uint32_t q = 0; q < nd; q++) colc[h.icol[dest[q]]] = 0;
            if (__builtin_expect(dup, 0)) ecol = mesh_ecol_dups(T, w, nd);
            const double bd = A + B * ecol, bc = A + B * U;
            if (allrows) {
                for (uint32_t o = 0; o < R; o++) {
                    uint32_t sum = 0, mx = 0;
                    for (uint32_t s = 0; s < nrw; s++) {
                        const uint32_t x = ring[(size_t)rlist[s] * R + o];
                        sum += rcnt[s] * x;
                        mx = x > mx ? x : mx;
                    }
                    const double avg = (double)sum / nd, hm = Dc * mx;
                    const double td = bd + C * avg + hm, tcb = bc + C * avg + hm;
                    maxd[o] = td > maxd[o] ? td : maxd[o];
                    maxc[o] = tcb > maxc[o] ? tcb : maxc[o];
                }
                const double inr = (double)U / R;
                intra += inr;
                inter += U - inr;
            } else {
                const uint16_t *rd = ring + (size_t)tc.orow * R;
                uint32_t sum = 0, mx = 0;
                for (uint32_t s = 0; s < nrw; s++) {
                    const uint32_t x = rd[rlist[s]];
                    sum += rcnt[s] * x;
                    mx = x > mx ? x : mx;
                }
                const double avg = (double)sum / nd, hm = Dc * mx;
                const double td = bd + C * avg + hm, tcb = bc + C * avg + hm;
                maxd[0] = td > maxd[0] ? td : maxd[0];
                maxc[0] = tcb > maxc[0] ? tcb : maxc[0];
                intra += in;
                inter += U - in;
            }
        } else {
            /* roofline: one message per distinct destination device other
             * than the origin, classed by row */
            otok[odev]++;
            st = next_stamp(c, w);
            const uint32_t orow = tc.orow;
            for (uint32_t q = 0; q < nd; q++) {
                uint32_t d = h.idev[dest[q]];
                if (dstamp[d] == st || d == odev) continue;
                dstamp[d] = st;
                uint32_t cls = drow[d] != orow;
                m4[4 * (size_t)odev + cls]++;
                m4[4 * (size_t)d + 2 + cls]++;
            }
        }
    }
    w->assigned += assigned;
    w->mesh_intra += intra;
    w->mesh_inter += inter;
}

/* The reference configuration (mesh on a small grid, balanced-replicas,
 * overflow accept: moe-balance's own), which a placement search evaluates
 * over and over: nothing can be dropped or rerouted, so the loop is written
 * out with every table in a register-friendly local. */
static void __attribute__((noinline)) small_balanced_accept(const simctx *c, const ltab *T, ws *w, uint32_t layer,
                                                            uint64_t a, uint64_t b, uint64_t bstart, uint32_t cap,
                                                            uint32_t fixed_row) {
    const ms_trace *t = c->t;
    const uint32_t k = c->k, shared = c->shared_id, R = c->rows;
    const uint32_t *restrict tokv = c->plan->tok;
    const uint16_t *restrict base = t->experts + (size_t)layer * t->n_tokens * k;
    const ex_t *restrict ex = T->ex;
    const minfo *restrict mi = T->mi;
    uint32_t *restrict cnt = w->cnt;
    uint32_t *restrict ovf = w->ovf;
    uint32_t *restrict dest = w->dest;
    double *restrict maxd = w->maxd;
    double *restrict maxc = w->maxc;
    const ms_origin omode = c->o->origin;
    const bool allrows = c->avg_rows;
    double intra = 0, inter = 0;
    uint64_t assigned = 0;
    uint32_t rr_row = (uint32_t)((a - bstart) % R);
    for (uint64_t pos = a; pos < b; pos++) {
        const uint16_t *ids = base + (size_t)tokv[pos] * k;
        const uint32_t orow = origin_row(c, w, omode, pos, &rr_row, layer, fixed_row);
        uint64_t dm = 0, cv = 0, hv = 0;
        uint32_t rm = 0, dup = 0, nd = 0;
#define STEP(e_)                                                                                             \
    do {                                                                                                     \
        const uint32_t e = (e_);                                                                             \
        const ex_t x = ex[e];                                                                                \
        uint32_t i = x.first;                                                                                \
        if (x.nrep <= 2) { /* branch-free for one or two replicas (cnt has one padding slot) */              \
            const uint32_t two = x.nrep == 2, f0 = cnt[i] >= cap, f1 = cnt[i + 1] >= cap;                    \
            if (__builtin_expect(two & f0 & f1, 0)) { /* both full: the overflow counter */                  \
                const uint32_t r = ovf[e];                                                                   \
                ovf[e] = r ^ 1u;                                                                             \
                i += r;                                                                                      \
            } else {                                                                                         \
                i += two & f0;                                                                               \
            }                                                                                                \
        } else {                                                                                             \
            uint32_t r = 0;                                                                                  \
            while (r < x.nrep && cnt[i + r] >= cap) r++;                                                     \
            if (r == x.nrep) { /* all full: the per-expert overflow counter, mod replicas */                \
                r = ovf[e];                                                                                  \
                ovf[e] = r + 1 == x.nrep ? 0 : r + 1;                                                        \
            }                                                                                                \
            i += r;                                                                                          \
        }                                                                                                    \
        cnt[i]++;                                                                                            \
        const minfo *m = &mi[i];                                                                             \
        if (dm & m->devbit) /* a device seen before: the same instance again? */                             \
            for (uint32_t q = 0; q < nd; q++) dup |= dest[q] == i;                                           \
        dest[nd++] = i;                                                                                      \
        dm |= m->devbit;                                                                                     \
        cv += m->colinc;                                                                                     \
        hv += m->hopvec;                                                                                     \
        rm |= m->rowbit;                                                                                     \
    } while (0)
        for (uint32_t j = 0; j < k; j++) STEP(ids[j]);
        if (shared != NONE) STEP(shared);
#undef STEP
        /* E_col = the largest 8-bit lane of cv: count the thresholds passed */
        uint32_t ecol = 1;
        while ((cv + (128u - (ecol + 1)) * 0x0101010101010101ULL) & 0x8080808080808080ULL) ecol++;
        assigned += nd;
        if (__builtin_expect(dup, 0)) ecol = mesh_ecol_dups(T, w, nd);
        mesh_small_token(c, maxd, maxc, allrows, orow, hv, rm, dm, nd, ecol, &intra, &inter);
    }
    w->assigned += assigned;
    w->mesh_intra += intra;
    w->mesh_inter += inter;
}

/* Roofline with least-loaded routing, the configuration the speed target is
 * set for: branch-free choice between two replicas, the token's messages
 * counted as it is routed. Same results as the generic loop. */
static void __attribute__((noinline)) roof_ll_fast(const simctx *c, const ltab *T, ws *w, uint32_t layer, uint64_t a,
                                                   uint64_t b, uint64_t bstart, uint32_t cap, uint32_t fixed_row) {
    (void)bstart;
    (void)fixed_row;
    const ms_trace *t = c->t;
    const uint32_t k = c->k, shared = c->shared_id;
    const uint32_t *restrict tokv = c->plan->tok;
    const uint32_t *restrict orig = c->plan->origin;
    const uint16_t *restrict base = t->experts + (size_t)layer * t->n_tokens * k;
    const uint32_t *restrict drow = c->dev_row;
    const ex_t *restrict ex = T->ex;
    const dinfo *restrict di = T->di;
    uint32_t *restrict cnt = w->cnt;
    uint32_t *restrict load = w->load;
    uint32_t *restrict m4 = w->m4;
    uint32_t *restrict otok = w->otok_u;
    uint32_t *restrict dstamp = w->dev_stamp;
    const uint64_t dropped0 = w->dropped;
    tokctx tc;
    tc.k = k;
    tc.layer = layer;
    for (uint64_t pos = a; pos < b; pos++) {
        const uint32_t tok = tokv[pos];
        const uint16_t *ids = base + (size_t)tok * k;
        const uint32_t odev = orig[pos], orow = drow[odev];
        const uint32_t st = next_stamp(c, w);
        dstamp[odev] = st; /* the origin needs no message */
        uint32_t s_all = 0, s_out = 0;
        tc.tok = tok;
        tc.ids = ids;
        tc.orow = orow;
        tc.n_extra = 0;
#define STEP(e_)                                                                                             \
    do {                                                                                                     \
        const uint32_t e = (e_);                                                                             \
        const ex_t x = ex[e];                                                                                \
        uint32_t i = x.first;                                                                                \
        if (x.nrep <= 2) {                                                                                   \
            const uint32_t l0 = load[di[i].dev], l1 = load[di[i + 1].dev];                                   \
            i += (x.nrep == 2) & (l1 < l0);                                                                  \
        } else {                                                                                             \
            uint32_t bl = load[di[i].dev], f = i;                                                            \
            for (uint32_t r = 1; r < x.nrep; r++) {                                                          \
                const uint32_t l = load[di[f + r].dev];                                                      \
                if (l < bl) {                                                                                \
                    bl = l;                                                                                  \
                    i = f + r;                                                                               \
                }                                                                                            \
            }                                                                                                \
        }                                                                                                    \
        if (__builtin_expect(cnt[i] >= cap, 0)) {                                                            \
            i = overflow_slow(c, T, w, &tc, e, i, cap);                                                      \
            if (i == NONE) break;                                                                            \
        }                                                                                                    \
        cnt[i]++;                                                                                            \
        const uint32_t d = di[i].dev, cls = di[i].row != orow;                                               \
        load[d]++;                                                                                           \
        const uint32_t newd = dstamp[d] != st;                                                               \
        dstamp[d] = st;                                                                                      \
        s_all += newd;                                                                                       \
        s_out += newd & cls;                                                                                 \
        m4[4 * (size_t)d + 2 + cls] += newd;                                                                 \
    } while (0)
        for (uint32_t j = 0; j < k; j++) STEP(ids[j]);
        if (shared != NONE) STEP(shared);
#undef STEP
        m4[4 * (size_t)odev] += s_all - s_out;
        m4[4 * (size_t)odev + 1] += s_out;
        otok[odev]++;
    }
    /* every choice lands unless capacity dropped it */
    w->assigned += (b - a) * (k + (shared != NONE)) - (w->dropped - dropped0);
}

#define ROUTE_FN(name, route, mesh, small)                                                                    \
    static void __attribute__((noinline)) name(const simctx *c, const ltab *T, ws *w, uint32_t l, uint64_t a, \
                                               uint64_t b, uint64_t bs, uint32_t cap, uint32_t fr) {           \
        route_span_t(c, T, w, l, a, b, bs, cap, fr, route, mesh, small);                                      \
    }
ROUTE_FN(small_balanced, MS_ROUTE_BALANCED, 1, 1)
ROUTE_FN(small_ll, MS_ROUTE_LEAST_LOADED, 1, 1)
ROUTE_FN(small_rr, MS_ROUTE_ROUND_ROBIN, 1, 1)
ROUTE_FN(small_rand, MS_ROUTE_RANDOM, 1, 1)
ROUTE_FN(small_rowlocal, MS_ROUTE_ROW_LOCAL, 1, 1)
ROUTE_FN(mesh_balanced, MS_ROUTE_BALANCED, 1, 0)
ROUTE_FN(mesh_ll, MS_ROUTE_LEAST_LOADED, 1, 0)
ROUTE_FN(mesh_rr, MS_ROUTE_ROUND_ROBIN, 1, 0)
ROUTE_FN(mesh_rand, MS_ROUTE_RANDOM, 1, 0)
ROUTE_FN(mesh_rowlocal, MS_ROUTE_ROW_LOCAL, 1, 0)
ROUTE_FN(roof_balanced, MS_ROUTE_BALANCED, 0, 0)
ROUTE_FN(roof_ll, MS_ROUTE_LEAST_LOADED, 0, 0)
ROUTE_FN(roof_rr, MS_ROUTE_ROUND_ROBIN, 0, 0)
ROUTE_FN(roof_rand, MS_ROUTE_RANDOM, 0, 0)
ROUTE_FN(roof_rowlocal, MS_ROUTE_ROW_LOCAL, 0, 0)

typedef void (*route_fn)(const simctx *, const ltab *, ws *, uint32_t, uint64_t, uint64_t, uint64_t, uint32_t,
                         uint32_t);

/* split: every replica of a chosen expert takes 1/replicas of the token; the
 * token sends min(1, summed share) of a message to each device it touches. */
static void route_span_split(const simctx *c, const ltab *T, ws *w, uint32_t layer, uint64_t a, uint64_t b) {
    const ms_trace *t = c->t;
    uint32_t k = c->k;
    for (uint64_t pos = a; pos < b; pos++) {
        uint64_t tk = c->plan->tok[pos];
        const uint16_t *ids = ms_trace_row(t, layer, tk);
        uint32_t odev = c->plan->origin[pos], orow = c->dev_row[odev], nt = 0;
        uint32_t st = next_stamp(c, w);
        for (uint32_t j = 0; j <= k; j++) {
            uint32_t e;
            if (j < k) e = ids[j];
            else if (c->shared_id != NONE) e = c->shared_id;
            else break;
            uint32_t f = T->ex[e].first, n = T->ex[e].nrep;
            double share = 1.0 / n;
            for (uint32_t r = 0; r < n; r++) {
                uint32_t i = f + r, d = T->inst_dev[i];
                w->fcnt[i] += share;
                w->fload[d] += share;
                if (w->dev_stamp[d] != st) {
                    w->dev_stamp[d] = st;
                    w->tokw[d] = 0;
                    w->touched[nt++] = d;
                }
                w->tokw[d] += share;
            }
            w->assigned++;
        }
        w->otok[odev] += 1;
        for (uint32_t q = 0; q < nt; q++) {
            uint32_t d = w->touched[q];
            if (d == odev) continue;
            double m = w->tokw[d] < 1.0 ? w->tokw[d] : 1.0;
            uint32_t cls = c->dev_row[d] != orow;
            w->msg[cls][odev] += m;
            w->msg[2 + cls][d] += m;
        }
    }
}

static void route_span(const simctx *c, const ltab *T, ws *w, uint32_t layer, uint64_t a, uint64_t b, uint64_t bs,
                       uint32_t cap, uint32_t fr) {
    if (c->split) {
        route_span_split(c, T, w, layer, a, b);
        return;
    }
    static const route_fn fns[3][5] = {
        {roof_balanced, roof_ll, roof_rr, roof_rand, roof_rowlocal},
        {mesh_balanced, mesh_ll, mesh_rr, mesh_rand, mesh_rowlocal},
        {small_balanced, small_ll, small_rr, small_rand, small_rowlocal},
    };
    int model = !c->mesh ? 0 : c->small ? 2 : 1, ri;
    switch (c->o->route) {
    case MS_ROUTE_BALANCED: ri = 0; break;
    case MS_ROUTE_LEAST_LOADED: ri = 1; break;
    case MS_ROUTE_ROUND_ROBIN: ri = 2; break;
    case MS_ROUTE_RANDOM: ri = 3; break;
    default: ri = 4; break;
    }
    if (model == 2 && ri == 0 && c->o->overflow == MS_OVERFLOW_ACCEPT && !c->per_row_routing)
        small_balanced_accept(c, T, w, layer, a, b, bs, cap, fr);
    else if (model == 0 && ri == 1 && !c->o->roof_generic)
        roof_ll_fast(c, T, w, layer, a, b, bs, cap, fr);
    else
        fns[model][ri](c, T, w, layer, a, b, bs, cap, fr);
    if (!c->mesh) { /* integer message and token counters -> the doubles the cost model reads */
        for (uint32_t d = 0; d < c->D; d++) {
            for (int i = 0; i < 4; i++) w->msg[i][d] = w->m4[4 * (size_t)d + i];
            w->otok[d] = w->otok_u[d];
        }
    }
}

/* ------------------------------------------------------------ costs */

typedef struct phase_t {
    double dense, disp, comp, comb; /* slowest device of each phase */
} phase_t;

static inline double inst_count(const simctx *c, const ws *w, uint32_t i) {
    return c->split ? w->fcnt[i] : (double)w->cnt[i];
}

/* Mesh: per device, mesh_expert_us x sum over its instances of
 * ceil(count / chunk). Returns the maximum; adds per-device compute and load
 * to the outputs. */
static double mesh_compute(const simctx *c, const ltab *T, ws *w) {
    double mx = 0, us = c->o->mesh_expert_us;
    uint32_t chunk = c->o->mesh_chunk;
    for (uint32_t d = 0; d < c->D; d++) {
        uint64_t chunks = 0, ld = 0;
        for (uint32_t q = T->dev_off[d]; q < T->dev_off[d + 1]; q++) {
            uint32_t n = w->cnt[T->dev_inst[q]];
            ld += n;
            chunks += (n + (uint64_t)chunk - 1) / chunk;
        }
        double s = us * (double)chunks;
        w->o_comp[d] += s;
        w->o_load[d] += (double)ld;
        if (s > mx) mx = s;
    }
    return mx;
}

/* Roofline: microseconds of expert FLOPs f of an instance with n assignments. */
static inline double expert_flop_us(const simctx *c, double n, double f) {
    if (!c->eff_hw) return f / c->flops_per_us;
    if (n < (double)c->n_us_tok && n == floor(n)) return n * c->us_tok[(uint32_t)n];
    return f / (c->peak_per_us * ms_hw_efficiency(c->eff_hw, n));
}

/* Roofline: per-device times of one micro-batch; adds them to the outputs
 * and returns the phase maxima. With a throttle, each device's dense and
 * expert time is divided by its clock before the maxima, and *full gets the
 * maxima at full clock (without one, *full is the same as the result). */
static phase_t roof_costs(const simctx *c, const ltab *T, ws *w, phase_t *full) {
    phase_t ph = {0, 0, 0, 0};
    const bool thr = c->o->throttle != NULL;
    for (uint32_t d = 0; d < c->D; d++) {
        double comp = 0, flops = 0, hbm = 0, ld = 0;
        for (uint32_t q = T->dev_off[d]; q < T->dev_off[d + 1]; q++) {
            double n = inst_count(c, w, T->dev_inst[q]);
            if (n <= 0) continue;
            double f = n * c->expert_flops_tok, by = c->expert_wbytes + n * c->act_bytes_tok;
            double tf = expert_flop_us(c, n, f), tb = by / c->hbm_per_us;
            comp += tf > tb ? tf : tb;
            flops += f;
            hbm += by;
            ld += n;
        }
        double dense = 0, ot = w->otok[d];
        if (ot > 0) {
            double f = ot * c->dense_flops_tok, by = c->dense_bytes;
            double tf = f / c->flops_per_us, tb = by / c->hbm_per_us;
            dense = tf > tb ? tf : tb;
            flops += f;
            hbm += by;
        }
        double disp = 0, comb = 0;
        for (int cls = 0; cls < 2; cls++) {
            double s = w->msg[cls][d], r = w->msg[2 + cls][d];
            if (s + r <= 0) continue;
            double m = s > r ? s : r;
            double td = c->alpha_us[cls] + m * c->disp_bytes / c->bw_us[cls];
            double tc = c->alpha_us[cls] + m * c->comb_bytes / c->bw_us[cls];
            if (td > disp) disp = td;
            if (tc > comb) comb = tc;
        }
        w->o_load[d] += ld;
        w->o_otok[d] += ot;
        w->o_disp[d] += disp;
        w->o_comb[d] += comb;
        w->o_flops[d] += flops;
        w->o_hbm[d] += hbm;
        /* dispatch goes origin -> expert, combine comes back: a device sends
         * dispatch bytes for its messages and combine bytes for those it got */
        w->o_msg[0][d] += w->msg[0][d] * c->disp_bytes + w->msg[2][d] * c->comb_bytes;
        w->o_msg[1][d] += w->msg[1][d] * c->disp_bytes + w->msg[3][d] * c->comb_bytes;
        w->o_msg[2][d] += w->msg[2][d] * c->disp_bytes + w->msg[0][d] * c->comb_bytes;
        w->o_msg[3][d] += w->msg[3][d] * c->disp_bytes + w->msg[1][d] * c->comb_bytes;
        if (disp > ph.disp) ph.disp = disp;
        if (comb > ph.comb) ph.comb = comb;
        if (thr) {
            w->t_dense[d] = dense;
            w->t_comp[d] = comp;
            w->t_busy[d] = dense + comp;
            w->t_flops[d] = flops;
            w->t_hbm[d] = hbm;
            continue;
        }
        w->o_dense[d] += dense;
        w->o_comp[d] += comp;
        if (dense > ph.dense) ph.dense = dense;
        if (comp > ph.comp) ph.comp = comp;
    }
    *full = ph;
    if (!thr) return ph;
    const ms_sim_throttle *th = c->o->throttle;
    w->unmet += th->clocks(th->ctx, c->D, w->t_busy, w->t_flops, w->t_hbm, w->t_clock, w->t_scratch);
    for (uint32_t d = 0; d < c->D; d++) {
        double f = w->t_clock[d], dense = w->t_dense[d], comp = w->t_comp[d];
        if (dense > full->dense) full->dense = dense;
        if (comp > full->comp) full->comp = comp;
        w->o_fdense[d] += dense;
        w->o_fcomp[d] += comp;
        if (f < 1) {
            dense /= f;
            comp /= f;
        }
        w->o_dense[d] += dense;
        w->o_comp[d] += comp;
        if (dense > ph.dense) ph.dense = dense;
        if (comp > ph.comp) ph.comp = comp;
    }
    return ph;
}

/* Two micro-batches a, b on two streams (compute: dense a, dense b, experts
 * a, experts b; communication: dispatch a, dispatch b, combine a, combine b),
 * each micro-batch's phases in order. Returns the finish time. */
static double two_mb_schedule(phase_t a, phase_t b) {
    double dn_a = a.dense, dn_b = dn_a + b.dense;
    double dp_a = dn_a + a.disp;
    double dp_b = (dn_b > dp_a ? dn_b : dp_a) + b.disp;
    double cp_a = (dp_a > dn_b ? dp_a : dn_b) + a.comp;
    double cp_b = (dp_b > cp_a ? dp_b : cp_a) + b.comp;
    double cb_a = (cp_a > dp_b ? cp_a : dp_b) + a.comb;
    double cb_b = (cp_b > cb_a ? cp_b : cb_a) + b.comb;
    return cb_b;
}

static void out_reset(const simctx *c, ws *w) {
    size_t n = c->D * sizeof(double);
    memset(w->o_load, 0, n);
    memset(w->o_comp, 0, n);
    if (c->mesh) return; /* the mesh model never writes the others */
    if (w->o_fdense) {
        memset(w->o_fdense, 0, n);
        memset(w->o_fcomp, 0, n);
    }
    w->unmet = 0;
    double *arrs[] = {w->o_otok, w->o_dense, w->o_disp, w->o_comb, w->o_flops,
                      w->o_hbm,  w->o_msg[0], w->o_msg[1], w->o_msg[2], w->o_msg[3]};
    for (size_t i = 0; i < sizeof arrs / sizeof arrs[0]; i++) memset(arrs[i], 0, n);
}

static uint32_t capacity_for(const simctx *c, const ltab *T, uint64_t ntok) {
    if (c->cf <= 0 || T->n_inst == 0) return UINT32_MAX;
    uint32_t keff = c->k + (c->shared_id != NONE ? 1 : 0);
    double v = floor(c->cf * (double)ntok * keff / T->n_inst);
    if (v < 1) v = 1;
    if (v >= (double)UINT32_MAX) return UINT32_MAX;
    return (uint32_t)v;
}

static uint64_t mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Seeds the random streams of (batch, layer): routing draws per (batch,
 * layer); origin rows per batch (the same rows in every layer). */
static void seed_streams(const simctx *c, ws *w, uint64_t bi, uint32_t layer) {
    if (c->o->route == MS_ROUTE_RANDOM) ms_rng_seed(&w->rng, mix64(c->o->seed ^ mix64(bi * 0x10001ULL + layer)));
    if (c->mesh && c->o->origin == MS_ORIGIN_RANDOM)
        ms_rng_seed(&w->orng, mix64(c->o->seed ^ mix64(bi ^ 0x6f726967696eULL)));
}

/* Evaluates batch bi in layer `layer` into rec (and the per-device outputs). */
static void eval_batch(const simctx *c, const ltab *T, ws *w, uint64_t bi, uint32_t layer, ms_sim_record *rec) {
    const ms_batch_plan *pl = c->plan;
    uint64_t a = pl->off[bi], b = pl->off[bi + 1], n = b - a;
    memset(rec, 0, sizeof *rec);
    rec->batch = bi;
    rec->layer = layer;
    rec->tokens = (uint32_t)n;
    out_reset(c, w);
    if (c->mesh) {
        /* average-rows: one routing, hops for every origin row (or, for
         * row-local routing, one full evaluation per origin row); other
         * modes: one evaluation with each token's own row */
        const uint32_t R = c->rows, nr = c->per_row_routing ? R : 1, ndiv = c->avg_rows ? R : 1;
        double sum_layer = 0, sum_d = 0, sum_c = 0, sum_comp = 0, intra = 0, inter = 0;
        uint64_t assigned = 0, dropped = 0, rerouted = 0;
        for (uint32_t r = 0; r < nr; r++) {
            ws_reset(c, T, w);
            seed_streams(c, w, bi, layer);
            route_span(c, T, w, layer, a, b, a, capacity_for(c, T, n), r);
            double comp = mesh_compute(c, T, w);
            assigned += w->assigned;
            dropped += w->dropped;
            rerouted += w->rerouted;
            if (c->avg_rows && !c->per_row_routing) {
                for (uint32_t o = 0; o < R; o++) {
                    sum_layer += w->maxd[o] + comp + w->maxc[o];
                    sum_d += w->maxd[o];
                    sum_c += w->maxc[o];
                }
                sum_comp += comp * R;
            } else {
                sum_layer += w->maxd[0] + comp + w->maxc[0];
                sum_d += w->maxd[0];
                sum_c += w->maxc[0];
                sum_comp += comp;
            }
            intra += w->mesh_intra;
            inter += w->mesh_inter;
        }
        const double rn = (double)ndiv, pr = (double)nr;
        rec->assignments = (uint64_t)llround(assigned / pr);
        rec->dropped = (uint64_t)llround(dropped / pr);
        rec->rerouted = (uint64_t)llround(rerouted / pr);
        rec->layer_us = sum_layer / rn;
        rec->dispatch_us = sum_d / rn;
        rec->combine_us = sum_c / rn;
        rec->compute_us = sum_comp / rn;
        double bytes = c->disp_bytes + c->comb_bytes;
        rec->intra_bytes = intra / pr * bytes;
        rec->inter_bytes = inter / pr * bytes;
        for (uint32_t d = 0; d < c->D; d++) {
            if (nr > 1) {
                w->o_comp[d] /= pr;
                w->o_load[d] /= pr;
            }
            w->o_disp[d] = rec->dispatch_us;
            w->o_comb[d] = rec->combine_us;
        }
    } else {
        phase_t ph[2], full[2];
        int nmb = c->o->overlap == MS_OVERLAP_TWO_MICRO_BATCH ? 2 : 1;
        uint64_t mid = nmb == 2 ? a + (n + 1) / 2 : b;
        seed_streams(c, w, bi, layer);
        for (int m = 0; m < nmb; m++) {
            uint64_t s = m == 0 ? a : mid, e = m == 0 ? mid : b;
            ws_reset(c, T, w);
            route_span(c, T, w, layer, s, e, a, capacity_for(c, T, e - s), 0);
            ph[m] = roof_costs(c, T, w, &full[m]);
            rec->assignments += w->assigned;
            rec->dropped += w->dropped;
            rec->rerouted += w->rerouted;
        }
        if (nmb == 1) {
            rec->dense_us = ph[0].dense;
            rec->dispatch_us = ph[0].disp;
            rec->compute_us = ph[0].comp;
            rec->combine_us = ph[0].comb;
            rec->layer_us = ph[0].dense + ph[0].disp + ph[0].comp + ph[0].comb;
            if (c->o->throttle)
                rec->throttled_us = rec->layer_us - (full[0].dense + full[0].disp + full[0].comp + full[0].comb);
        } else {
            rec->dense_us = ph[0].dense + ph[1].dense;
            rec->dispatch_us = ph[0].disp + ph[1].disp;
            rec->compute_us = ph[0].comp + ph[1].comp;
            rec->combine_us = ph[0].comb + ph[1].comb;
            rec->layer_us = two_mb_schedule(ph[0], ph[1]);
            if (c->o->throttle) rec->throttled_us = rec->layer_us - two_mb_schedule(full[0], full[1]);
        }
        if (rec->throttled_us < 0) rec->throttled_us = 0; /* rounding */
        double intra = 0, inter = 0;
        for (uint32_t d = 0; d < c->D; d++) {
            intra += w->o_msg[0][d];
            inter += w->o_msg[1][d];
        }
        rec->intra_bytes = intra;
        rec->inter_bytes = inter;
    }
    double mx = 0, tot = 0, busy = 0;
    for (uint32_t d = 0; d < c->D; d++) {
        double l = w->o_load[d];
        tot += l;
        if (l > mx) mx = l;
        w->o_busy[d] = w->o_dense[d] + w->o_comp[d];
        double idle = rec->layer_us - w->o_busy[d];
        w->o_idle[d] = idle > 0 ? idle : 0;
        busy += w->o_busy[d];
    }
    rec->max_load = mx;
    rec->mean_load = tot / c->D;
    rec->imbalance = rec->mean_load > 0 ? mx / rec->mean_load : 1.0;
    rec->busy_us = busy;
    rec->clock_mean = rec->clock_min = 1;
    if (w->o_clock) { /* the effective clock of each device: busy at full clock / busy */
        double sum = 0, mn = 1;
        for (uint32_t d = 0; d < c->D; d++) {
            double fb = w->o_fdense[d] + w->o_fcomp[d]; /* summed as o_busy is: equal when never throttled */
            double f = w->o_busy[d] > 0 && fb < w->o_busy[d] ? fb / w->o_busy[d] : 1.0;
            w->o_clock[d] = f;
            sum += f;
            if (f < mn) mn = f;
        }
        rec->clock_mean = sum / c->D;
        rec->clock_min = mn;
        rec->cap_unmet = w->unmet;
    }
    if (c->hooks && c->hooks->step) {
        ms_sim_step stp = {rec,       c->D,      w->o_load,  w->o_otok,  w->o_dense,  w->o_comp,   w->o_disp,
                           w->o_comb, w->o_busy, w->o_idle,  w->o_flops, w->o_hbm,    w->o_msg[0], w->o_msg[1],
                           w->o_msg[2], w->o_msg[3], w->o_clock};
        c->hooks->step(c->hooks->ctx, &stp);
    }
}

/* ------------------------------------------------------------ run */

typedef struct item {
    uint32_t li;             /* index into the evaluated layers */
    uint64_t b0, b1;         /* batches */
} item;

typedef struct item_sum {
    uint64_t assignments, dropped, rerouted, events;
    double dense, disp, comp, comb, intra, inter, busy;
    /* throttle */
    uint64_t n_throttled, unmet;
    double throttled, clock_sum, clock_min;
} item_sum;

static double pct(const double *sorted, uint64_t n, double q) {
    if (n == 0) return 0;
    double r = ceil(q * (double)n);
    uint64_t k = r < 1 ? 1 : (uint64_t)r;
    if (k > n) k = n;
    return sorted[k - 1];
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static ms_status dist_of(const double *v, uint64_t n, ms_dist *out, ms_error *err) {
    memset(out, 0, sizeof *out);
    if (n == 0) return MS_OK;
    double *s = ms_alloc_array(n, sizeof *s, err);
    if (!s) return MS_E_NOMEM;
    memcpy(s, v, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_double);
    double sum = 0;
    for (uint64_t i = 0; i < n; i++) sum += v[i];
    out->mean = sum / (double)n;
    out->p50 = pct(s, n, 0.50);
    out->p95 = pct(s, n, 0.95);
    out->p99 = pct(s, n, 0.99);
    out->max = s[n - 1];
    ms_free(s);
    return MS_OK;
}

void ms_sim_result_free(ms_sim_result *r) {
    if (!r) return;
    ms_free(r->records);
    ms_free(r->dev_clock_mean);
    ms_free(r->dev_clock_min);
    ms_free(r);
}

void ms_roofline_init(const ms_hw_preset *hw, const ms_model_preset *m, bool placed_shared, ms_roofline *r) {
    double h = m->hidden, i = m->moe_intermediate, bw = m->expert_weight_bytes;
    double peak = bw <= 1.0 ? hw->peak_tflops_fp8 : hw->peak_tflops_bf16;
    r->peak_per_us = peak * 1e12 / 1e6;
    r->flops_per_us = peak * 1e12 * hw->mfu / 1e6;
    r->hbm_per_us = hw->hbm_tb_s * 1e12 * hw->hbm_util / 1e6;
    r->expert_flops_tok = 2.0 * 3.0 * h * i;
    r->expert_wbytes = 3.0 * h * i * bw;
    r->act_bytes_tok = 4.0 * h; /* BF16 token in and out */
    double shared_params = placed_shared ? 0.0 : 3.0 * h * m->shared_intermediate * m->shared_experts;
    r->dense_flops_tok = 2.0 * (m->dense_params_per_layer + shared_params);
    r->dense_bytes = (m->dense_params_per_layer + shared_params) * bw;
}

static ms_status setup(simctx *c, ms_error *err) {
    const ms_trace *t = c->t;
    const ms_placement *p = c->p;
    const ms_sim_opts *o = c->o;
    ms_status st = ms_cluster_check(&p->cluster, err);
    if (st != MS_OK) return ms_error_prefix(err, "placement");
    c->D = ms_cluster_devices(&p->cluster);
    c->rows = p->cluster.rows;
    c->cols = p->cluster.cols;
    if (c->plan->n_devices != c->D)
        return ms_error_set(err, MS_E_INPUT, "the batches were planned for %u devices, the placement has %u",
                            c->plan->n_devices, c->D);
    if (p->n_layers != 1 && p->n_layers != t->n_layers)
        return ms_error_set(err, MS_E_INPUT, "the placement has %u layers, the trace %u (need 1 or %u)", p->n_layers,
                            t->n_layers, t->n_layers);
    if (t->n_experts > p->n_routed)
        return ms_error_set(err, MS_E_INPUT, "the trace has %u routed experts, the placement only %u", t->n_experts,
                            p->n_routed);
    if (!p->log2phy || !p->logcnt)
        return ms_error_set(err, MS_E_INPUT, "the placement has no replica index (ms_placement_index)");
    st = ms_placement_check(p, err);
    if (st != MS_OK) return ms_error_prefix(err, "placement");
    if (o->layer >= 0 && (uint64_t)o->layer >= t->n_layers)
        return ms_error_set(err, MS_E_INPUT, "layer %lld out of range: the trace has %u layers (0..%u)",
                            (long long)o->layer, t->n_layers, t->n_layers - 1);
    c->mesh = o->cost_model == MS_COST_MESH;
    c->split = o->route == MS_ROUTE_SPLIT;
    if (c->mesh && c->split)
        return ms_error_set(err, MS_E_INPUT, "the mesh cost model needs whole tokens per replica: route split is "
                                             "only available with the roofline model");
    if (c->mesh && o->overlap != MS_OVERLAP_NONE)
        return ms_error_set(err, MS_E_INPUT, "overlap modes apply to the roofline model only");
    if (c->mesh && o->throttle)
        return ms_error_set(err, MS_E_INPUT, "power caps need the roofline cost model (the mesh model has no FLOPs or "
                                             "bytes per device)");
    if (o->throttle && !o->throttle->clocks) return ms_error_set(err, MS_E_INPUT, "throttle without a function");
    if (o->origin == MS_ORIGIN_TRACE) {
        if (!o->origin_rows)
            return ms_error_set(err, MS_E_INPUT, "origin rows 'trace' needs a trace that carries origin_rows (JSONL)");
        for (uint64_t i = 0; i < (uint64_t)t->n_layers * t->n_tokens; i++)
            if (o->origin_rows[i] >= c->rows)
                return ms_error_set(err, MS_E_INPUT, "origin row %u (layer %llu, token %llu) outside the %u rows",
                                    o->origin_rows[i], (unsigned long long)(i / t->n_tokens),
                                    (unsigned long long)(i % t->n_tokens), c->rows);
    }
    if (!(o->row_local_slack >= 0))
        return ms_error_set(err, MS_E_INPUT, "row-local slack must be >= 0");
    c->k = t->top_k;
    c->n_logical = p->n_logical;
    c->shared_id = p->has_shared ? p->n_routed : NONE;
    c->avg_rows = c->mesh && o->origin == MS_ORIGIN_AVERAGE_ROWS;
    c->per_row_routing = c->avg_rows && o->route == MS_ROUTE_ROW_LOCAL;
    double cf = o->capacity_factor;
    if (isnan(cf)) cf = o->route == MS_ROUTE_BALANCED ? 2.0 : 0.0;
    if (!isfinite(cf)) return ms_error_set(err, MS_E_INPUT, "capacity factor must be finite");
    c->cf = cf > 0 && !c->split ? cf : 0;

    c->dev_row = ms_alloc_array(c->D, sizeof(uint32_t), err);
    c->dev_col = ms_alloc_array(c->D, sizeof(uint32_t), err);
    c->ring = ms_alloc_array((size_t)c->rows * c->rows, sizeof(uint16_t), err);
    if (!c->dev_row || !c->dev_col || !c->ring) return MS_E_NOMEM;
    for (uint32_t d = 0; d < c->D; d++) {
        c->dev_row[d] = d / c->cols;
        c->dev_col[d] = d % c->cols;
    }
    for (uint32_t a = 0; a < c->rows; a++)
        for (uint32_t b = 0; b < c->rows; b++) {
            uint32_t dd = a > b ? a - b : b - a;
            c->ring[(size_t)a * c->rows + b] = (uint16_t)(dd < c->rows - dd ? dd : c->rows - dd);
        }
    c->small = c->mesh && !o->mesh_generic && c->rows <= 8 && c->cols <= 8 && c->D <= 64 &&
               t->top_k + (p->has_shared ? 1u : 0u) <= SMALL_MAX_ND;
    if (c->small) {
        c->maxtab = ms_calloc_array(256 * 8, 1, err);
        if (!c->maxtab) return MS_E_NOMEM;
        for (uint32_t m = 0; m < (1u << c->rows); m++)
            for (uint32_t o2 = 0; o2 < c->rows; o2++) {
                uint32_t mx = 0;
                for (uint32_t r = 0; r < c->rows; r++)
                    if ((m >> r) & 1u && c->ring[(size_t)r * c->rows + o2] > mx) mx = c->ring[(size_t)r * c->rows + o2];
                c->maxtab[m * 8 + o2] = (uint8_t)mx;
            }
        for (uint32_t d = 0; d < c->D; d++) c->rowdevs[c->dev_row[d]] |= 1ull << d;
    }
    c->n_tabs = p->n_layers;
    c->tabs = ms_calloc_array(c->n_tabs, sizeof(ltab), err);
    if (!c->tabs) return MS_E_NOMEM;
    for (uint32_t l = 0; l < c->n_tabs; l++) {
        if (o->layer >= 0 && c->n_tabs > 1 && l != (uint32_t)o->layer) continue;
        st = ltab_build(p, l, c->D, c->ring, c->small, &c->tabs[l], err);
        if (st != MS_OK) return st;
        if (c->tabs[l].n_inst > c->max_inst) c->max_inst = c->tabs[l].n_inst;
    }

    if (c->mesh) {
        if (isnan(o->mesh_coeffs[0]) || isnan(o->mesh_coeffs[1]) || isnan(o->mesh_coeffs[2]) ||
            isnan(o->mesh_coeffs[3])) {
            double co[4];
            st = ms_mesh_fit(c->rows, o->mesh_table, co, err);
            if (st != MS_OK) return st;
            c->A = co[0], c->B = co[1], c->C = co[2], c->Dc = co[3];
        } else {
            c->A = o->mesh_coeffs[0], c->B = o->mesh_coeffs[1], c->C = o->mesh_coeffs[2], c->Dc = o->mesh_coeffs[3];
        }
        if (!(o->mesh_expert_us >= 0) || o->mesh_chunk == 0)
            return ms_error_set(err, MS_E_INPUT, "mesh: expert time must be >= 0 and the chunk positive");
        if (o->model) {
            c->disp_bytes = o->model->dispatch_bytes;
            c->comb_bytes = o->model->combine_bytes;
        }
    } else {
        const ms_hw_preset *hw = o->hw;
        const ms_model_preset *m = o->model;
        if (!hw || !m) return ms_error_set(err, MS_E_INPUT, "the roofline model needs a hardware and a model preset");
        ms_roofline rf;
        ms_roofline_init(hw, m, p->has_shared, &rf);
        c->flops_per_us = rf.flops_per_us;
        c->hbm_per_us = rf.hbm_per_us;
        c->expert_flops_tok = rf.expert_flops_tok;
        c->expert_wbytes = rf.expert_wbytes;
        c->act_bytes_tok = rf.act_bytes_tok;
        c->dense_flops_tok = rf.dense_flops_tok;
        c->dense_bytes = rf.dense_bytes;
        c->bw_us[0] = hw->nvlink_gb_s * 1e9 * hw->nvlink_efficiency / 1e6;
        c->bw_us[1] = hw->nic_gb_s * 1e9 * hw->net_efficiency / 1e6;
        c->alpha_us[0] = hw->nvlink_latency_us;
        c->alpha_us[1] = hw->net_latency_us;
        c->disp_bytes = m->dispatch_bytes;
        c->comb_bytes = m->combine_bytes;
        if (!(c->flops_per_us > 0) || !(c->hbm_per_us > 0) || !(c->bw_us[0] > 0) || !(c->bw_us[1] > 0))
            return ms_error_set(err, MS_E_INPUT, "hardware preset '%s' has a zero rate", hw->name);
        if (hw->eff_n > 0) {
            if (hw->eff_n > MS_HW_EFF_MAX)
                return ms_error_set(err, MS_E_INPUT, "hardware preset '%s': efficiency curve of %u points (at most %d)",
                                    hw->name, hw->eff_n, MS_HW_EFF_MAX);
            for (uint32_t q = 0; q < hw->eff_n; q++)
                if (!(hw->eff_value[q] > 0 && hw->eff_value[q] <= 1) || !(hw->eff_tokens[q] > 0) ||
                    (q > 0 && !(hw->eff_tokens[q] > hw->eff_tokens[q - 1])))
                    return ms_error_set(err, MS_E_INPUT,
                                        "hardware preset '%s': efficiency curve point %u is out of range", hw->name, q);
            c->eff_hw = hw;
            c->peak_per_us = rf.peak_per_us;
            double last = hw->eff_tokens[hw->eff_n - 1];
            c->n_us_tok = last < 65535 ? (uint32_t)ceil(last) + 1 : 65536;
            c->us_tok = ms_alloc_array(c->n_us_tok, sizeof(double), err);
            if (!c->us_tok) return MS_E_NOMEM;
            for (uint32_t q = 0; q < c->n_us_tok; q++)
                c->us_tok[q] = c->expert_flops_tok / (c->peak_per_us * ms_hw_efficiency(hw, (double)q));
        }
    }
    return MS_OK;
}

ms_status ms_sim_run(const ms_trace *t, const ms_batch_plan *plan, const ms_placement *p, const ms_sim_opts *o,
                     const ms_sim_hooks *hooks, ms_sim_result **out, ms_error *err) {
    *out = NULL;
    double t0 = ms_now();
    simctx c;
    memset(&c, 0, sizeof c);
    c.t = t;
    c.plan = plan;
    c.p = p;
    c.o = o;
    c.hooks = hooks;
    ms_status st = MS_OK;
    ms_sim_result *res = NULL;
    item *items = NULL;
    item_sum *sums = NULL;
    double *lat = NULL, *imb = NULL, *bat = NULL, *dclk = NULL; /* dclk: [item][2][D] clock sums and minima */
    ws **wss = NULL;
    int nthreads = 1;

    st = setup(&c, err);
    if (st != MS_OK) goto done;

    uint32_t nl = o->layer >= 0 ? 1 : t->n_layers;
    uint32_t l0 = o->layer >= 0 ? (uint32_t)o->layer : 0;
    /* the batches simulated: [bb, bb + nb) of the plan */
    uint64_t bb = o->batch_begin, be = o->batch_end ? o->batch_end : plan->n_batches;
    if (be > plan->n_batches || bb >= be) {
        st = ms_error_set(err, MS_E_INPUT, "batch range [%llu, %llu) outside the plan's %llu batches",
                          (unsigned long long)bb, (unsigned long long)be, (unsigned long long)plan->n_batches);
        goto done;
    }
    uint64_t nb = be - bb, nrec = (uint64_t)nl * nb;
    /* chunks of consecutive batches with >= CHUNK_TOKENS tokens (fixed, so
     * results do not depend on the thread count) */
    uint64_t nchunks = 0;
    for (uint64_t b = bb, acc = 0; b < be; b++) {
        acc += plan->off[b + 1] - plan->off[b];
        if (acc >= CHUNK_TOKENS || b + 1 == be) {
            nchunks++;
            acc = 0;
        }
    }
    uint64_t nitems = nchunks * nl;
    items = ms_alloc_array(nitems ? nitems : 1, sizeof *items, err);
    sums = ms_calloc_array(nitems ? nitems : 1, sizeof *sums, err);
    lat = ms_alloc_array(nrec ? nrec : 1, sizeof *lat, err);
    imb = ms_alloc_array(nrec ? nrec : 1, sizeof *imb, err);
    bat = ms_calloc_array(nb ? nb : 1, sizeof *bat, err);
    res = ms_calloc_array(1, sizeof *res, err);
    if (!items || !sums || !lat || !imb || !bat || !res) {
        st = MS_E_NOMEM;
        goto done;
    }
    res->n_devices = c.D;
    if (o->throttle) {
        dclk = ms_alloc_array(nitems ? nitems : 1, 2 * (size_t)c.D * sizeof(double), err);
        res->dev_clock_mean = ms_alloc_array(c.D, sizeof(double), err);
        res->dev_clock_min = ms_alloc_array(c.D, sizeof(double), err);
        if (!dclk || !res->dev_clock_mean || !res->dev_clock_min) {
            st = MS_E_NOMEM;
            goto done;
        }
    }
    if (o->keep_records) {
        res->records = ms_alloc_array(nrec ? nrec : 1, sizeof *res->records, err);
        if (!res->records) {
            st = MS_E_NOMEM;
            goto done;
        }
    }
    res->n_records = o->keep_records ? nrec : 0;
    {
        uint64_t it = 0;
        for (uint32_t li = 0; li < nl; li++) {
            uint64_t start = bb;
            for (uint64_t b = bb, acc = 0; b < be; b++) {
                acc += plan->off[b + 1] - plan->off[b];
                if (acc >= CHUNK_TOKENS || b + 1 == be) {
                    items[it].li = li;
                    items[it].b0 = start;
                    items[it].b1 = b + 1;
                    it++;
                    start = b + 1;
                    acc = 0;
                }
            }
        }
    }
    nthreads = o->threads > 0 ? o->threads : ms_thread_count();
    if (nthreads < 1) nthreads = 1;
    if ((uint64_t)nthreads > nitems) nthreads = nitems ? (int)nitems : 1;
    wss = ms_calloc_array((size_t)nthreads, sizeof *wss, err);
    if (!wss) {
        st = MS_E_NOMEM;
        goto done;
    }
    for (int i = 0; i < nthreads; i++) {
        wss[i] = ws_new(&c, err);
        if (!wss[i]) {
            st = MS_E_NOMEM;
            goto done;
        }
    }

#ifdef MOESIM_HAVE_OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads)
#endif
    for (uint64_t it = 0; it < nitems; it++) {
        int tid = 0;
#ifdef MOESIM_HAVE_OPENMP
        tid = omp_get_thread_num();
#endif
        ws *w = wss[tid];
        const item *I = &items[it];
        uint32_t layer = l0 + I->li;
        const ltab *T = &c.tabs[c.n_tabs == 1 ? 0 : layer];
        item_sum *S = &sums[it];
        double *csum = dclk ? dclk + it * 2 * c.D : NULL, *cmin = csum ? csum + c.D : NULL;
        if (csum)
            for (uint32_t d = 0; d < c.D; d++) {
                csum[d] = 0;
                cmin[d] = 1;
            }
        S->clock_min = 1;
        for (uint64_t b = I->b0; b < I->b1; b++) {
            ms_sim_record rec;
            eval_batch(&c, T, w, b, layer, &rec);
            uint64_t ri = (b - bb) * nl + I->li;
            lat[ri] = rec.layer_us;
            imb[ri] = rec.imbalance;
            if (res->records) res->records[ri] = rec;
            S->assignments += rec.assignments;
            S->dropped += rec.dropped;
            S->rerouted += rec.rerouted;
            S->events += (uint64_t)rec.tokens * c.k;
            S->dense += rec.dense_us;
            S->disp += rec.dispatch_us;
            S->comp += rec.compute_us;
            S->comb += rec.combine_us;
            S->intra += rec.intra_bytes;
            S->inter += rec.inter_bytes;
            S->busy += rec.busy_us;
            if (!csum) continue;
            S->throttled += rec.throttled_us;
            S->n_throttled += rec.clock_min < 1;
            S->unmet += rec.cap_unmet;
            S->clock_sum += rec.clock_mean;
            if (rec.clock_min < S->clock_min) S->clock_min = rec.clock_min;
            for (uint32_t d = 0; d < c.D; d++) {
                double f = w->o_clock[d];
                csum[d] += f;
                if (f < cmin[d]) cmin[d] = f;
            }
        }
    }

    ms_sim_summary *s = &res->summary;
    s->batches = nb;
    s->layers = nl;
    s->records = nrec;
    s->tokens = plan->off[be] - plan->off[bb];
    double busy = 0;
    s->clock_mean = s->clock_min = 1;
    if (dclk) {
        s->throttled = true;
        double thr = 0, csum = 0;
        uint64_t nthr = 0;
        for (uint32_t d = 0; d < c.D; d++) {
            res->dev_clock_mean[d] = 0;
            res->dev_clock_min[d] = 1;
        }
        for (uint64_t it = 0; it < nitems; it++) {
            const item_sum *S = &sums[it];
            const double *cs = dclk + it * 2 * c.D, *cm = cs + c.D;
            thr += S->throttled;
            csum += S->clock_sum;
            nthr += S->n_throttled;
            s->cap_unmet += S->unmet;
            if (S->clock_min < s->clock_min) s->clock_min = S->clock_min;
            for (uint32_t d = 0; d < c.D; d++) {
                res->dev_clock_mean[d] += cs[d];
                if (cm[d] < res->dev_clock_min[d]) res->dev_clock_min[d] = cm[d];
            }
        }
        if (nrec) {
            s->throttled_us = thr / (double)nrec;
            s->throttled_share = (double)nthr / (double)nrec;
            s->clock_mean = csum / (double)nrec;
            for (uint32_t d = 0; d < c.D; d++) res->dev_clock_mean[d] /= (double)nrec;
        }
    }
    for (uint64_t it = 0; it < nitems; it++) {
        const item_sum *S = &sums[it];
        s->assignments += S->assignments;
        s->dropped += S->dropped;
        s->rerouted += S->rerouted;
        s->events += S->events;
        s->dense_us += S->dense;
        s->dispatch_us += S->disp;
        s->compute_us += S->comp;
        s->combine_us += S->comb;
        s->intra_bytes += S->intra;
        s->inter_bytes += S->inter;
        busy += S->busy;
    }
    if (nrec) {
        s->dense_us /= (double)nrec;
        s->dispatch_us /= (double)nrec;
        s->compute_us /= (double)nrec;
        s->combine_us /= (double)nrec;
    }
    for (uint64_t b = 0; b < nb; b++)
        for (uint32_t li = 0; li < nl; li++) bat[b] += lat[b * nl + li];
    for (uint64_t b = 0; b < nb; b++) s->total_us += bat[b];
    st = dist_of(imb, nrec, &s->imbalance, err);
    if (st == MS_OK) st = dist_of(lat, nrec, &s->layer_us, err);
    if (st == MS_OK) st = dist_of(bat, nb, &s->batch_us, err);
    if (st != MS_OK) goto done;
    s->tokens_per_second = s->total_us > 0 ? (double)s->tokens / (s->total_us * 1e-6) : 0;
    s->gpu_utilisation = s->total_us > 0 ? busy / ((double)c.D * s->total_us) : 0;
    s->coeffs[0] = c.A, s->coeffs[1] = c.B, s->coeffs[2] = c.C, s->coeffs[3] = c.Dc;
    s->capacity_factor = c.cf;
    s->eval_seconds = ms_now() - t0;

done:
    if (wss)
        for (int i = 0; i < nthreads; i++) ws_free(wss[i]);
    ms_free(wss);
    ms_free(items);
    ms_free(sums);
    ms_free(lat);
    ms_free(imb);
    ms_free(bat);
    ms_free(dclk);
    ms_free(c.dev_row);
    ms_free(c.dev_col);
    ms_free(c.ring);
    ms_free(c.maxtab);
    ms_free(c.us_tok);
    ltabs_free(c.tabs, c.n_tabs);
    if (st != MS_OK) {
        ms_sim_result_free(res);
        return st;
    }
    *out = res;
    return MS_OK;
}
