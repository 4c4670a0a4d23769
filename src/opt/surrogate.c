/* surrogate.c - the per-layer surrogate objective of `search` with
 * incremental move evaluation (see surrogate.h). */
#include "opt/surrogate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ power mode */

/* Per window and device: the state (T expert time in SG_ROOF units and X
 * assignments, both x SG_SCALE; N active instances) and the derived figures
 * (fixed point): throttled expert and dense time (us x SG_SCALE), compute and
 * memory power at the clock (W x PW_WSCALE), FLOP and HBM energy at the
 * clock (J x PW_JSCALE). A row's aggregate: the sums of the powers and
 * energies and the maxima of the times. */
enum { V_TE = 0, V_TD = 1, V_PA = 2, V_PM = 3, V_EF = 4, V_EM = 5, PW_NV = 6 };
#define PW_WSCALE 4294967296.0    /* 2^32 per W */
#define PW_JSCALE 1099511627776.0 /* 2^40 per J */

typedef struct pw_dev {
    int64_t T, X, N;
    int64_t v[PW_NV];
} pw_dev;

/* scratch: per-device figures [D], row aggregates [R][PW_NV], row pointers
 * [R], row factors [R] */
typedef struct pw_ws {
    pw_dev *dev;
    int64_t *row;
    const int64_t **rp;
    double *gr;
} pw_ws;

static void pw_ws_free(pw_ws *w) {
    ms_free(w->dev);
    ms_free(w->row);
    ms_free((void *)w->rp);
    ms_free(w->gr);
    memset(w, 0, sizeof *w);
}

static ms_status pw_ws_init(pw_ws *w, uint32_t D, uint32_t R, ms_error *err) {
    w->dev = ms_calloc_array(D, sizeof *w->dev, err);
    w->row = ms_calloc_array((size_t)R * PW_NV, sizeof *w->row, err);
    w->rp = ms_calloc_array(R, sizeof *w->rp, err);
    w->gr = ms_calloc_array(R, sizeof *w->gr, err);
    if (!w->dev || !w->row || !w->rp || !w->gr) {
        pw_ws_free(w);
        return MS_E_NOMEM;
    }
    return MS_OK;
}

/* f in [fmin, 1] with (1 - r) f^a + r f = q (0 < q < 1): Newton's method
 * from 1 (convex and increasing: it decreases monotonically to the root). */
static double clock_newton(double r, double q, double a, double fmin) {
    double f = 1.0;
    for (int it = 0; it < 100; it++) {
        double fa1 = pow(f, a - 1.0);
        double g = (1.0 - r) * fa1 * f + r * f - q, dg = a * (1.0 - r) * fa1 + r;
        double nf = f - g / dg;
        if (nf < fmin) nf = fmin;
        if (fabs(nf - f) <= 1e-13 * f) return nf;
        f = nf;
    }
    return f;
}

/* Table layout: [0] = fmin^alpha, then f at r = i / (NR - 1), u = j / (NQ - 1)
 * where q = qmin(r) + u (1 - qmin(r)), qmin(r) = (1 - r) fmin^alpha + r fmin. */
double *sg_clock_table_new(double alpha, double fmin) {
    double *t = ms_alloc_array(1 + (size_t)SG_CLOCK_NR * SG_CLOCK_NQ, sizeof *t, NULL);
    if (!t) return NULL;
    t[0] = pow(fmin, alpha);
    for (uint32_t i = 0; i < SG_CLOCK_NR; i++) {
        double r = (double)i / (SG_CLOCK_NR - 1), qmin = (1 - r) * t[0] + r * fmin;
        for (uint32_t j = 0; j < SG_CLOCK_NQ; j++) {
            double u = (double)j / (SG_CLOCK_NQ - 1), q = qmin + u * (1 - qmin);
            t[1 + (size_t)i * SG_CLOCK_NQ + j] = j == 0 ? fmin : j + 1 == SG_CLOCK_NQ ? 1.0 : clock_newton(r, q, alpha, fmin);
        }
    }
    return t;
}

double sg_clock(const sg_power *pw, double C, double M, double K) {
    double P = C + M, fmin = pw->min_clock, a = pw->alpha;
    if (!(P > K)) return 1.0;
    if (!(K > 0)) return fmin;
    double r = M / P, q = K / P;
    const double *t = pw->clock_tab;
    double fa = t ? t[0] : pow(fmin, a), qmin = (1 - r) * fa + r * fmin;
    if (q <= qmin) return fmin;
    if (!t) return clock_newton(r, q, a, fmin);
    double x = r * (SG_CLOCK_NR - 1), y = (q - qmin) / (1 - qmin) * (SG_CLOCK_NQ - 1);
    uint32_t i = x >= SG_CLOCK_NR - 1 ? SG_CLOCK_NR - 2 : (uint32_t)x;
    uint32_t j = y >= SG_CLOCK_NQ - 1 ? SG_CLOCK_NQ - 2 : (uint32_t)y;
    double dx = x - i, dy = y - j;
    const double *t0 = t + 1 + (size_t)i * SG_CLOCK_NQ + j, *t1 = t0 + SG_CLOCK_NQ;
    double f = (1 - dx) * ((1 - dy) * t0[0] + dy * t0[1]) + dx * ((1 - dy) * t1[0] + dy * t1[1]);
    /* one Newton step on the interpolated value */
    double fa1 = pow(f, a - 1.0);
    f -= ((1.0 - r) * fa1 * f + r * f - q) / (a * (1.0 - r) * fa1 + r);
    return f < fmin ? fmin : f > 1 ? 1 : f;
}

/* The derived figures of device dev in window b from its T, X, N. */
static void pw_derive(const sg_params *p, const sg_data *d, uint32_t b, uint32_t dev, pw_dev *x) {
    const sg_power *pw = p->pw;
    size_t di = (size_t)b * ms_cluster_devices(&p->cl) + dev;
    double te = (double)x->T / SG_SCALE, td = d->dense_us ? d->dense_us[di] : 0, t = te + td;
    if (!(t > 0)) {
        memset(x->v, 0, sizeof x->v);
        return;
    }
    double xa = (double)x->X / SG_SCALE;
    double ef = xa * pw->tok_flop_j + (d->dense_fj ? d->dense_fj[di] : 0);
    double em = xa * pw->tok_hbm_j + (double)x->N * pw->inst_hbm_j + (d->dense_mj ? d->dense_mj[di] : 0);
    double ts = t * 1e-6, C = ef / ts, M = em / ts, f = 1, fa = 1;
    if (isfinite(pw->gpu_w)) {
        f = sg_clock(pw, C, M, pw->gpu_w - pw->idle_w);
        if (f < 1) fa = pow(f, pw->alpha);
    }
    x->v[V_TE] = llround(te / f * SG_SCALE);
    x->v[V_TD] = llround(td / f * SG_SCALE);
    x->v[V_PA] = llround(C * fa * PW_WSCALE);
    x->v[V_PM] = llround(M * f * PW_WSCALE);
    x->v[V_EF] = llround(ef * (fa / f) * PW_JSCALE);
    x->v[V_EM] = llround(em * PW_JSCALE);
}

/* Adds one device's figures to a row aggregate (zeroed first). */
static inline void pw_row_add(int64_t *agg, const int64_t *v) {
    agg[V_PA] += v[V_PA];
    agg[V_PM] += v[V_PM];
    agg[V_EF] += v[V_EF];
    agg[V_EM] += v[V_EM];
    if (v[V_TE] > agg[V_TE]) agg[V_TE] = v[V_TE];
    if (v[V_TD] > agg[V_TD]) agg[V_TD] = v[V_TD];
}

/* A window's time (us), power (W) and energy (J) from its row aggregates rp[R]. */
static void pw_metrics(const sg_params *p, const int64_t *const *rp, double *gr, double m[3]) {
    const sg_power *pw = p->pw;
    uint32_t R = p->cl.rows, C = p->cl.cols, D = R * C;
    double sa = 0, sm = 0;
    for (uint32_t r = 0; r < R; r++) {
        double A = (double)rp[r][V_PA] / PW_WSCALE, M = (double)rp[r][V_PM] / PW_WSCALE, g = 1, ga = 1;
        if (isfinite(pw->row_w) && C * pw->idle_w + A + M > pw->row_w) {
            g = sg_clock(pw, A, M, pw->row_w - C * pw->idle_w);
            ga = pow(g, pw->alpha);
        }
        gr[r] = g;
        sa += A * ga;
        sm += M * g;
    }
    double gc = 1, gca = 1;
    if (isfinite(pw->cluster_w) && D * pw->idle_w + sa + sm > pw->cluster_w) {
        gc = sg_clock(pw, sa, sm, pw->cluster_w - D * pw->idle_w);
        gca = pow(gc, pw->alpha);
    }
    double te = 0, td = 0, e = 0;
    for (uint32_t r = 0; r < R; r++) {
        double g = gr[r] * gc;
        double a = (double)rp[r][V_TE] / SG_SCALE / g, b = (double)rp[r][V_TD] / SG_SCALE / g;
        if (a > te) te = a;
        if (b > td) td = b;
        double ef = (double)rp[r][V_EF] / PW_JSCALE;
        e += (g < 1 ? ef * pow(g, pw->alpha - 1) : ef) + (double)rp[r][V_EM] / PW_JSCALE;
    }
    m[0] = te + td;
    m[1] = D * pw->idle_w + sa * gca + sm * gc;
    m[2] = e + pw->idle_w * D * m[0] * 1e-6;
}

/* Derives every device of window b (T, X, N set in devs[D]), aggregates the
 * rows into row[R][PW_NV] and returns the metrics. cache (may be NULL):
 * the window's devices as last derived (N < 0: none), whose figures are
 * reused where T, X and N are the same (the figures are a function of
 * them); store writes the new ones there. */
static void pw_window(const sg_params *p, const sg_data *d, uint32_t b, pw_dev *devs, int64_t *row, pw_ws *w,
                      pw_dev *cache, bool store, double m[3]) {
    uint32_t R = p->cl.rows, C = p->cl.cols;
    for (uint32_t r = 0; r < R; r++) {
        int64_t *agg = row + (size_t)r * PW_NV;
        memset(agg, 0, PW_NV * sizeof *agg);
        for (uint32_t q = r * C; q < (r + 1) * C; q++) {
            pw_dev *x = &devs[q];
            if (cache && cache[q].N == x->N && cache[q].T == x->T && cache[q].X == x->X)
                memcpy(x->v, cache[q].v, sizeof x->v);
            else
                pw_derive(p, d, b, q, x);
            if (cache && store) cache[q] = *x;
            pw_row_add(agg, x->v);
        }
        w->rp[r] = agg;
    }
    pw_metrics(p, w->rp, w->gr, m);
}

/* A window's scalar: the weighted metrics over their norms. */
static inline double pw_combine(const sg_power *pw, const double m[3]) {
    return pw->w[0] * m[0] / pw->norm[0] + pw->w[1] * m[1] / pw->norm[1] + pw->w[2] * m[2] / pw->norm[2];
}

static double aggregate(double tail, const double *x, uint32_t B, double *scratch);

/* The metrics' aggregates (xm: [3][B]) and the weighted value. */
static double pw_value(const sg_params *p, const double *xm, uint32_t B, double *scratch, double agg[3]) {
    const sg_power *pw = p->pw;
    const double tails[3] = {p->tail, pw->peak_tail, 0};
    double v = 0;
    for (int k = 0; k < 3; k++) {
        agg[k] = aggregate(tails[k], xm + (size_t)k * B, B, scratch);
        v += pw->w[k] * agg[k] / pw->norm[k];
    }
    return v;
}

/* Scratch for least-loaded windows. */
typedef struct ll_ws {
    double *load;      /* [D] assignments */
    double *cost;      /* [D] units */
    double *alloc;     /* [P] per replica */
    uint32_t *idx;     /* [P] sort scratch */
    double *lv;        /* [P] sort scratch */
    uint32_t *dv;      /* [P] devices of one expert's replicas */
    uint32_t *eoff;    /* [E] token mode: an expert's first entry in alloc */
    uint32_t *sdev;    /* [P] device of each slot */
    uint64_t *nzoff;   /* [B + 1] into nz */
    uint32_t *nz;      /* each window's experts with assignments, by descending training load */
    uint32_t argmax;   /* device with the largest value in the last window */
    uint32_t *nact;    /* [D] power mode: active instances */
    pw_ws pw;          /* power mode scratch */
} ll_ws;

struct sg_state {
    sg_params prm;
    sg_data dat;
    uint32_t D, S, P, E, R, Dp, B;
    int32_t *slot;      /* [P] */
    uint32_t *nrep;     /* [E] */
    uint32_t *reps;     /* [E][P] each expert's slots, ascending */
    uint32_t *devcnt;   /* [D][E] replicas of e on device d */
    int64_t *tree;      /* [B][2 Dp] max-trees of device loads (leaves at Dp + d) */
    double *wb;         /* [B] window weight: value = max leaf * wb */
    uint32_t *cap;      /* [B] balanced capacity */
    int64_t *tr;        /* [E] traffic per expert (fixed point) */
    int64_t tr_sum;
    double tr_scale;    /* traffic_weight / (SG_SCALE * routed assignments) */
    double *xb, *xnew, *scratch; /* [B] */
    double value;
    /* move scratch */
    uint32_t nt;
    int32_t te[2];
    uint32_t *nl[2];    /* [P] new replica lists of the touched experts */
    uint32_t nn[2];
    uint32_t naff;
    uint32_t *aff;      /* [D] affected devices */
    uint32_t *affpos;   /* [D] position in aff, valid when affstamp[d] == stamp */
    uint32_t *affstamp; /* [D] */
    uint32_t stamp;
    int64_t *delta, *saved; /* [D] by aff position */
    uint32_t *rowcnt;   /* [R] */
    uint16_t *ring;     /* [R][R] */
    int64_t trnew[2];
    /* SG_LEAST */
    const uint32_t **lists; /* [E] each expert's replica list (reps, or a move's new list) */
    ll_ws ll;
    /* power mode: per window and device the state and figures, per window
     * and row the aggregates, per window the metrics (current, after a move);
     * move scratch: new figures of the affected devices (by aff position),
     * their X and N deltas, which changed, the rows touched */
    pw_dev *pwd;        /* [B][D] (SG_LEAST: the figures last derived, a cache) */
    int64_t *pra;       /* [B][R][PW_NV] (not SG_LEAST) */
    double *xm, *xn;    /* [3][B] */
    double agg[3];
    pw_ws pws;
    int64_t *dx, *dn;   /* [D] */
    uint8_t *chg;       /* [D] */
    uint32_t *rowstamp, *rowlist; /* [R] */
    uint32_t rstamp;
};

/* SG_LEAST with power objectives: window b's cache of derived figures, else NULL */
static pw_dev *ll_cache(sg_state *s, uint32_t b) { return s->pwd ? s->pwd + (size_t)b * s->D : NULL; }

/* ------------------------------------------------------------ loads */

static inline uint32_t window_cap(const sg_params *p, uint32_t ntok) {
    if (p->route != SG_BALANCED || !(p->cf > 0) || p->n_inst == 0) return UINT32_MAX;
    double v = floor(p->cf * (double)ntok * p->keff / p->n_inst);
    if (v < 1) v = 1;
    if (v >= (double)UINT32_MAX) return UINT32_MAX;
    return (uint32_t)v;
}

static inline double inst_assign(const sg_params *p, uint32_t c, uint32_t n, uint32_t r, uint32_t cap) {
    switch (p->route) {
    case SG_SPLIT: return (double)c / n;
    case SG_RR: return (double)((c + n - 1 - r) / n);
    case SG_LEAST: return (double)c / n; /* not used: SG_LEAST water-fills */
    case SG_BALANCED: {
        uint64_t C = cap, cc = c;
        if ((uint64_t)n * C >= cc) {
            uint64_t lo = (uint64_t)r * C;
            if (lo >= cc) return 0;
            uint64_t x = cc - lo;
            return (double)(x < C ? x : C);
        }
        uint64_t ov = cc - (uint64_t)n * C;
        return (double)(C + (ov + n - 1 - r) / n);
    }
    }
    return 0;
}

static inline double unit_of(const sg_params *p, double x) {
    if (x <= 0) return 0;
    switch (p->unit) {
    case SG_ASSIGN: return x;
    case SG_MESH: return ceil(x / p->chunk) * p->unit_us;
    case SG_ROOF: {
        double a = x * p->tok_flops_us, b = p->inst_bytes_us + x * p->tok_bytes_us;
        return a > b ? a : b;
    }
    }
    return x;
}

static inline int64_t inst_fixed(const sg_params *p, uint32_t c, uint32_t n, uint32_t r, uint32_t cap) {
    if (c == 0) return 0;
    return llround(unit_of(p, inst_assign(p, c, n, r, cap)) * SG_SCALE);
}

double sg_instance_load(const sg_params *prm, uint32_t c, uint32_t n, uint32_t r, uint32_t ntok) {
    if (n == 0 || r >= n) return 0;
    return unit_of(prm, inst_assign(prm, c, n, r, window_cap(prm, ntok)));
}

static double window_weight(const sg_params *p, const sg_data *d, uint32_t b) {
    if (p->time_weights) return 1.0 / SG_SCALE;
    uint64_t a = 0;
    for (uint32_t e = 0; e < p->n_logical; e++) a += d->cnt[(size_t)b * p->n_logical + e];
    if (a == 0) return 0;
    return (double)ms_cluster_devices(&p->cl) / ((double)a * SG_SCALE);
}

static int cmp_desc(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Mean of x, or the mean of the worst ceil(tail B), summed in a fixed order
 * so that equal inputs give equal bits. */
static double aggregate(double tail, const double *x, uint32_t B, double *scratch) {
    if (B == 0) return 0;
    if (!(tail > 0)) {
        double s = 0;
        for (uint32_t b = 0; b < B; b++) s += x[b];
        return s / B;
    }
    uint32_t m = (uint32_t)ceil(tail * B);
    if (m < 1) m = 1;
    if (m > B) m = B;
    memcpy(scratch, x, B * sizeof *x);
    /* three-way quickselect: afterwards scratch[0..m) holds the m largest */
    uint32_t lo = 0, hi = B;
    while (hi - lo > 1) {
        double piv = scratch[lo + (hi - lo) / 2];
        uint32_t lt = lo, i = lo, gt = hi;
        while (i < gt) {
            double v = scratch[i];
            if (v > piv) {
                scratch[i++] = scratch[lt];
                scratch[lt++] = v;
            } else if (v < piv) {
                scratch[i] = scratch[--gt];
                scratch[gt] = v;
            } else {
                i++;
            }
        }
        /* [lo, lt) > piv, [lt, gt) == piv, [gt, hi) < piv */
        if (m <= lt) hi = lt;
        else if (m <= gt) break;
        else lo = gt;
    }
    qsort(scratch, m, sizeof *scratch, cmp_desc);
    double s = 0;
    for (uint32_t b = 0; b < m; b++) s += scratch[b];
    return s / m;
}

static void ring_fill(uint16_t *ring, uint32_t R) {
    for (uint32_t a = 0; a < R; a++)
        for (uint32_t b = 0; b < R; b++) {
            uint32_t d = a > b ? a - b : b - a;
            ring[(size_t)a * R + b] = (uint16_t)(d < R - d ? d : R - d);
        }
}

/* Traffic of expert e with replica slots list[0..n). rowcnt has R entries. */
static int64_t traffic_of(const sg_params *p, const sg_data *d, const uint16_t *ring, uint32_t *rowcnt, uint32_t e,
                          const uint32_t *list, uint32_t n) {
    if (p->traffic == SG_TR_NONE || !d->orow || !(p->traffic_weight > 0) || n == 0 || (int32_t)e == p->shared_id ||
        e >= p->n_routed)
        return 0;
    uint32_t R = p->cl.rows, S = p->cl.slots_per_device, C = p->cl.cols;
    memset(rowcnt, 0, R * sizeof *rowcnt);
    for (uint32_t i = 0; i < n; i++) rowcnt[list[i] / S / C]++;
    double sum = 0;
    for (uint32_t r = 0; r < R; r++) {
        double w = d->orow[(size_t)r * p->n_logical + e];
        if (w <= 0) continue;
        double cross = 0;
        switch (p->traffic) {
        case SG_TR_NONE: break;
        case SG_TR_CROSS: cross = (double)(n - rowcnt[r]) / n; break;
        case SG_TR_ROWLOCAL: cross = rowcnt[r] ? 0.0 : 1.0; break;
        case SG_TR_HOPS: {
            uint64_t h = 0;
            for (uint32_t q = 0; q < R; q++) h += (uint64_t)rowcnt[q] * ring[(size_t)q * R + r];
            cross = (double)h / n;
            break;
        }
        }
        sum += w * cross;
    }
    return llround(sum * SG_SCALE);
}

static double traffic_scale(const sg_params *p, const sg_data *d) {
    if (p->traffic == SG_TR_NONE || !d->orow || !(p->traffic_weight > 0)) return 0;
    double tot = 0;
    for (uint32_t r = 0; r < p->cl.rows; r++)
        for (uint32_t e = 0; e < p->n_routed; e++) tot += d->orow[(size_t)r * p->n_logical + e];
    return tot > 0 ? p->traffic_weight / (SG_SCALE * tot) : 0;
}

static ms_status check_inputs(const sg_params *prm, const sg_data *dat, const int32_t *slots, ms_error *err) {
    if (ms_cluster_check(&prm->cl, err) != MS_OK) return MS_E_INPUT;
    if (prm->n_logical == 0 || prm->n_routed > prm->n_logical || prm->n_logical > 65535)
        return ms_error_set(err, MS_E_INPUT, "surrogate: bad expert counts");
    if (prm->shared_id >= 0 && (uint32_t)prm->shared_id >= prm->n_logical)
        return ms_error_set(err, MS_E_INPUT, "surrogate: shared expert id out of range");
    if (prm->unit == SG_MESH && !(prm->chunk > 0)) return ms_error_set(err, MS_E_INPUT, "surrogate: chunk must be > 0");
    if (dat->B == 0 || !dat->cnt || !dat->ntok) return ms_error_set(err, MS_E_INPUT, "surrogate: no windows");
    if (prm->pw) {
        const sg_power *pw = prm->pw;
        if (prm->unit != SG_ROOF) return ms_error_set(err, MS_E_INPUT, "surrogate: power objectives need roofline units");
        for (int k = 0; k < 3; k++)
            if (!(pw->w[k] >= 0) || !(pw->norm[k] > 0))
                return ms_error_set(err, MS_E_INPUT, "surrogate: power weights must be >= 0 and norms > 0");
        if (!(pw->peak_tail > 0 && pw->peak_tail <= 1) || !(pw->alpha >= 1) ||
            !(pw->min_clock > 0 && pw->min_clock <= 1))
            return ms_error_set(err, MS_E_INPUT, "surrogate: bad power coefficients");
    }
    uint32_t P = ms_cluster_slots(&prm->cl);
    for (uint32_t s = 0; s < P; s++)
        if (slots[s] < -1 || slots[s] >= (int32_t)prm->n_logical)
            return ms_error_set(err, MS_E_INPUT, "surrogate: slot %u holds id %d out of range", s, slots[s]);
    return MS_OK;
}

/* ------------------------------------------------------------ least-loaded */


/* Puts c units on the devices dev[0..n) (loads L), lowest first, so that the
 * devices that receive any end level: alloc[i] for each. lv, idx: scratch. */
static void waterfill(const double *L, const uint32_t *dev, uint32_t n, double c, double *alloc, double *lv,
                      uint32_t *idx) {
    for (uint32_t i = 0; i < n; i++) { /* insertion sort by load, ties by position */
        double li = L[dev[i]];
        uint32_t j = i;
        while (j > 0 && lv[j - 1] > li) {
            lv[j] = lv[j - 1];
            idx[j] = idx[j - 1];
            j--;
        }
        lv[j] = li;
        idx[j] = i;
    }
    double sum = 0, h = 0;
    uint32_t k = 0;
    while (k < n) {
        sum += lv[k];
        k++;
        h = (c + sum) / k;
        if (k == n || h <= lv[k]) break;
    }
    for (uint32_t i = 0; i < n; i++) alloc[i] = 0;
    for (uint32_t q = 0; q < k; q++) {
        double a = h - lv[q];
        alloc[idx[q]] = a > 0 ? a : 0;
    }
}

/* Experts by descending total assignments over the windows, ties by id. */
static ms_status expert_order(const sg_params *p, const sg_data *d, uint32_t *order, ms_error *err) {
    uint32_t E = p->n_logical;
    uint64_t *tot = ms_calloc_array(E, sizeof *tot, err);
    if (!tot) return MS_E_NOMEM;
    for (uint32_t b = 0; b < d->B; b++)
        for (uint32_t e = 0; e < E; e++) tot[e] += d->cnt[(size_t)b * E + e];
    for (uint32_t i = 0; i < E; i++) { /* insertion sort: a few hundred experts, once per state */
        uint32_t j = i;
        while (j > 0 && tot[order[j - 1]] < tot[i]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    ms_free(tot);
    return MS_OK;
}

static void ll_ws_free(ll_ws *w) {
    ms_free(w->load);
    ms_free(w->cost);
    ms_free(w->alloc);
    ms_free(w->idx);
    ms_free(w->lv);
    ms_free(w->dv);
    ms_free(w->eoff);
    ms_free(w->sdev);
    ms_free(w->nzoff);
    ms_free(w->nz);
    ms_free(w->nact);
    pw_ws_free(&w->pw);
    memset(w, 0, sizeof *w);
}

/* Scratch plus, per window, the experts it uses in the global order. */
static ms_status ll_ws_init(ll_ws *w, const sg_params *p, const sg_data *d, ms_error *err) {
    uint32_t D = ms_cluster_devices(&p->cl), P = ms_cluster_slots(&p->cl), E = p->n_logical;
    memset(w, 0, sizeof *w);
    w->load = ms_alloc_array(D, sizeof *w->load, err);
    w->cost = ms_alloc_array(D, sizeof *w->cost, err);
    w->alloc = ms_alloc_array(P + 1, sizeof *w->alloc, err);
    w->idx = ms_alloc_array(P + 1, sizeof *w->idx, err);
    w->lv = ms_alloc_array(P + 1, sizeof *w->lv, err);
    w->dv = ms_alloc_array(P + 1, sizeof *w->dv, err);
    w->eoff = ms_alloc_array(E, sizeof *w->eoff, err);
    w->sdev = ms_alloc_array(P, sizeof *w->sdev, err);
    w->nzoff = ms_alloc_array((size_t)d->B + 1, sizeof *w->nzoff, err);
    uint32_t *order = ms_alloc_array(E, sizeof *order, err);
    if (!w->load || !w->cost || !w->alloc || !w->idx || !w->lv || !w->dv || !w->eoff || !w->sdev || !w->nzoff ||
        !order)
        goto nomem;
    if (p->pw && ((w->nact = ms_calloc_array(D, sizeof *w->nact, err)) == NULL ||
                  pw_ws_init(&w->pw, D, p->cl.rows, err) != MS_OK))
        goto nomem;
    for (uint32_t q = 0; q < P; q++) w->sdev[q] = q / p->cl.slots_per_device;
    if (expert_order(p, d, order, err) != MS_OK) goto nomem;
    uint64_t n = 0;
    for (size_t i = 0; i < (size_t)d->B * E; i++) n += d->cnt[i] != 0;
    w->nz = ms_alloc_array(n ? n : 1, sizeof *w->nz, err);
    if (!w->nz) goto nomem;
    n = 0;
    for (uint32_t b = 0; b < d->B; b++) {
        w->nzoff[b] = n;
        for (uint32_t i = 0; i < E; i++)
            if (d->cnt[(size_t)b * E + order[i]]) w->nz[n++] = order[i];
    }
    w->nzoff[d->B] = n;
    ms_free(order);
    return MS_OK;
nomem:
    ms_free(order);
    ll_ws_free(w);
    return MS_E_NOMEM;
}

/* The value of window b (max device load in units, weighted) when experts
 * have the replica lists `lists` (nrep each). Only the experts the window
 * uses are visited. */
static double window_least(const sg_params *p, const sg_data *d, uint32_t b, const uint32_t *const *lists,
                           const uint32_t *nrep, double wb, ll_ws *w, pw_dev *cache, bool store, double *m) {
    uint32_t D = ms_cluster_devices(&p->cl), E = p->n_logical;
    const uint32_t *sdev = w->sdev;
    const uint32_t *cnt = d->cnt + (size_t)b * E;
    const uint32_t *nz = w->nz + w->nzoff[b], nnz = (uint32_t)(w->nzoff[b + 1] - w->nzoff[b]);
    memset(w->load, 0, D * sizeof *w->load);
    bool tokens = d->aoff && d->aoff[b + 1] > d->aoff[b];
    if (tokens) { /* the simulator's least-loaded routing, token by token */
        uint32_t off = 0;
        for (uint32_t i = 0; i < nnz; i++) {
            w->eoff[nz[i]] = off;
            off += nrep[nz[i]];
        }
        memset(w->alloc, 0, off * sizeof *w->alloc);
        double *load = w->load;
        for (uint64_t a = d->aoff[b]; a < d->aoff[b + 1]; a++) {
            uint32_t e = d->aid[a], n = nrep[e];
            const uint32_t *li = lists[e];
            uint32_t best = 0, bd = sdev[li[0]];
            for (uint32_t r = 1; r < n; r++) {
                uint32_t dd = sdev[li[r]];
                if (load[dd] < load[bd]) {
                    bd = dd;
                    best = r;
                }
            }
            load[bd] += 1;
            w->alloc[w->eoff[e] + best] += 1;
        }
    } else {
        for (uint32_t i = 0; i < nnz; i++) {
            uint32_t e = nz[i];
            if (nrep[e] == 1) w->load[sdev[lists[e][0]]] += cnt[e];
        }
    }
    for (int pass = 0; !tokens && pass < 2; pass++) {
        uint32_t off = 0;
        for (uint32_t i = 0; i < nnz; i++) {
            uint32_t e = nz[i], n = nrep[e];
            if (n < 2) continue;
            double *al = w->alloc + off;
            off += n;
            uint32_t *dv = w->dv;
            for (uint32_t r = 0; r < n; r++) dv[r] = sdev[lists[e][r]];
            if (pass) /* take it off again, re-fill given the others */
                for (uint32_t r = 0; r < n; r++) w->load[dv[r]] -= al[r];
            waterfill(w->load, dv, n, cnt[e], al, w->lv, w->idx);
            for (uint32_t r = 0; r < n; r++) w->load[dv[r]] += al[r];
        }
    }
    double mx = -1;
    w->argmax = 0;
    const double *v = w->load;
    bool pw = p->pw != NULL;
    if (p->unit != SG_ASSIGN) {
        memset(w->cost, 0, D * sizeof *w->cost);
        if (pw) memset(w->nact, 0, D * sizeof *w->nact);
        uint32_t off = 0;
        for (uint32_t i = 0; i < nnz; i++) {
            uint32_t e = nz[i], n = nrep[e];
            if (n == 1 && !tokens) {
                w->cost[sdev[lists[e][0]]] += unit_of(p, cnt[e]);
                if (pw) w->nact[sdev[lists[e][0]]]++;
                continue;
            }
            for (uint32_t r = 0; r < n; r++) {
                w->cost[sdev[lists[e][r]]] += unit_of(p, w->alloc[off + r]);
                if (pw && w->alloc[off + r] > 0) w->nact[sdev[lists[e][r]]]++;
            }
            off += n;
        }
        v = w->cost;
    }
    for (uint32_t dd = 0; dd < D; dd++)
        if (v[dd] > mx) {
            mx = v[dd];
            w->argmax = dd;
        }
    if (!pw) return mx * SG_SCALE * wb;
    for (uint32_t dd = 0; dd < D; dd++) {
        w->pw.dev[dd].T = llround(w->cost[dd] * SG_SCALE);
        w->pw.dev[dd].X = llround(w->load[dd] * SG_SCALE);
        w->pw.dev[dd].N = w->nact[dd];
    }
    pw_window(p, d, b, w->pw.dev, w->pw.row, &w->pw, cache, store, m);
    return pw_combine(p->pw, m);
}

/* ------------------------------------------------------------ full value */

double sg_full_value(const sg_params *prm, const sg_data *dat, const int32_t *slots) {
    if (check_inputs(prm, dat, slots, NULL) != MS_OK) return NAN;
    uint32_t P = ms_cluster_slots(&prm->cl), D = ms_cluster_devices(&prm->cl), E = prm->n_logical;
    uint32_t S = prm->cl.slots_per_device, R = prm->cl.rows;
    uint32_t *rank = ms_alloc_array(P, sizeof *rank, NULL), *n = ms_calloc_array(E, sizeof *n, NULL);
    uint32_t *list = ms_alloc_array(P, sizeof *list, NULL), *rowcnt = ms_alloc_array(R, sizeof *rowcnt, NULL);
    int64_t *load = ms_alloc_array(D, sizeof *load, NULL);
    double *x = ms_alloc_array(dat->B, sizeof *x, NULL), *scr = ms_alloc_array(dat->B, sizeof *scr, NULL);
    uint16_t *ring = ms_alloc_array((size_t)R * R, sizeof *ring, NULL);
    double *xm = prm->pw ? ms_alloc_array((size_t)3 * dat->B, sizeof *xm, NULL) : NULL;
    pw_ws pws = {0};
    double v = NAN;
    if (!rank || !n || !list || !rowcnt || !load || !x || !scr || !ring || (prm->pw && !xm)) goto out;
    if (prm->pw && prm->route != SG_LEAST && pw_ws_init(&pws, D, R, NULL) != MS_OK) goto out;
    ring_fill(ring, R);
    for (uint32_t s = 0; s < P; s++)
        if (slots[s] >= 0) rank[s] = n[slots[s]]++;
    if (prm->route == SG_LEAST) {
        ll_ws w;
        const uint32_t **lists = ms_alloc_array(E, sizeof *lists, NULL);
        uint32_t *flat = ms_alloc_array(P + 1, sizeof *flat, NULL);
        bool ok = lists && flat && ll_ws_init(&w, prm, dat, NULL) == MS_OK;
        if (ok) {
            uint32_t off = 0;
            for (uint32_t e = 0; e < E; e++) {
                lists[e] = flat + off;
                off += n[e];
            }
            for (uint32_t s = 0; s < P; s++)
                if (slots[s] >= 0) flat[lists[slots[s]] - flat + rank[s]] = s;
            for (uint32_t b = 0; b < dat->B; b++) {
                double m[3];
                x[b] = window_least(prm, dat, b, lists, n, window_weight(prm, dat, b), &w, NULL, false, m);
                for (int k = 0; prm->pw && k < 3; k++) xm[(size_t)k * dat->B + b] = m[k];
            }
            ll_ws_free(&w);
        }
        ms_free(lists);
        ms_free(flat);
        if (!ok) goto out;
    }
    for (uint32_t b = 0; prm->pw && prm->route != SG_LEAST && b < dat->B; b++) {
        uint32_t cap = window_cap(prm, dat->ntok[b]);
        memset(pws.dev, 0, D * sizeof *pws.dev);
        for (uint32_t s = 0; s < P; s++) {
            int32_t e = slots[s];
            uint32_t c = e < 0 ? 0 : dat->cnt[(size_t)b * E + e];
            if (!c) continue;
            double a = inst_assign(prm, c, n[e], rank[s], cap);
            pw_dev *dv = &pws.dev[s / S];
            dv->T += inst_fixed(prm, c, n[e], rank[s], cap);
            dv->X += llround(a * SG_SCALE);
            dv->N += a > 0;
        }
        double m[3];
        pw_window(prm, dat, b, pws.dev, pws.row, &pws, NULL, false, m);
        for (int k = 0; k < 3; k++) xm[(size_t)k * dat->B + b] = m[k];
    }
    for (uint32_t b = 0; !prm->pw && prm->route != SG_LEAST && b < dat->B; b++) {
        uint32_t cap = window_cap(prm, dat->ntok[b]);
        memset(load, 0, D * sizeof *load);
        for (uint32_t s = 0; s < P; s++) {
            int32_t e = slots[s];
            if (e < 0) continue;
            load[s / S] += inst_fixed(prm, dat->cnt[(size_t)b * E + e], n[e], rank[s], cap);
        }
        int64_t mx = load[0];
        for (uint32_t d = 1; d < D; d++)
            if (load[d] > mx) mx = load[d];
        x[b] = (double)mx * window_weight(prm, dat, b);
    }
    double agg[3];
    v = prm->pw ? pw_value(prm, xm, dat->B, scr, agg) : aggregate(prm->tail, x, dat->B, scr);
    double ts = traffic_scale(prm, dat);
    if (ts > 0) {
        int64_t tot = 0;
        for (uint32_t e = 0; e < E; e++) {
            uint32_t m = 0;
            for (uint32_t s = 0; s < P; s++)
                if (slots[s] == (int32_t)e) list[m++] = s;
            tot += traffic_of(prm, dat, ring, rowcnt, e, list, m);
        }
        v += (double)tot * ts;
    }
out:
    ms_free(rank);
    ms_free(n);
    ms_free(list);
    ms_free(rowcnt);
    ms_free(load);
    ms_free(x);
    ms_free(scr);
    ms_free(ring);
    ms_free(xm);
    pw_ws_free(&pws);
    return v;
}

/* ------------------------------------------------------------ state */

void sg_free(sg_state *s) {
    if (!s) return;
    void *p[] = {s->slot, s->nrep, s->reps, s->devcnt, s->tree, s->wb, s->cap, s->tr, s->xb, s->xnew, s->scratch,
                 s->nl[0], s->nl[1], s->aff, s->affpos, s->affstamp, s->delta, s->saved, s->rowcnt, s->ring,
                 (void *)s->lists, s->pwd, s->pra, s->xm, s->xn, s->dx, s->dn, s->chg, s->rowstamp, s->rowlist};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) ms_free(p[i]);
    ll_ws_free(&s->ll);
    pw_ws_free(&s->pws);
    ms_free(s);
}

static inline void tree_up(int64_t *t, uint32_t leaf) {
    for (uint32_t j = leaf >> 1; j; j >>= 1) {
        int64_t a = t[2 * j], b = t[2 * j + 1], m = a > b ? a : b;
        if (t[j] == m) break;
        t[j] = m;
    }
}

/* The value of window scalars x (load objectives) or metrics xm (power
 * objectives: their aggregates go to agg) plus the traffic term. */
static double current_value(sg_state *s, const double *x, const double *xm, int64_t tr_sum, double *agg) {
    double v = s->prm.pw ? pw_value(&s->prm, xm, s->B, s->scratch, agg) : aggregate(s->prm.tail, x, s->B, s->scratch);
    return v + (double)tr_sum * s->tr_scale;
}

ms_status sg_new(const sg_params *prm, const sg_data *dat, const int32_t *slots, sg_state **out, ms_error *err) {
    *out = NULL;
    ms_status st = check_inputs(prm, dat, slots, err);
    if (st != MS_OK) return st;
    sg_state *s = ms_calloc_array(1, sizeof *s, err);
    if (!s) return MS_E_NOMEM;
    s->prm = *prm;
    s->dat = *dat;
    s->D = ms_cluster_devices(&prm->cl);
    s->S = prm->cl.slots_per_device;
    s->P = ms_cluster_slots(&prm->cl);
    s->E = prm->n_logical;
    s->R = prm->cl.rows;
    s->B = dat->B;
    s->Dp = 1;
    while (s->Dp < s->D) s->Dp <<= 1;
    int ok = 1;
#define A_(f, n) ok &= (s->f = ms_calloc_array((n), sizeof *s->f, err)) != NULL
    A_(slot, s->P);
    A_(nrep, s->E);
    A_(reps, (size_t)s->E * s->P);
    A_(devcnt, (size_t)s->D * s->E);
    A_(tree, (size_t)s->B * 2 * s->Dp);
    A_(wb, s->B);
    A_(cap, s->B);
    A_(tr, s->E);
    A_(xb, s->B);
    A_(xnew, s->B);
    A_(scratch, s->B);
    A_(nl[0], s->P);
    A_(nl[1], s->P);
    A_(aff, s->D);
    A_(affpos, s->D);
    A_(affstamp, s->D);
    A_(delta, s->D);
    A_(saved, s->D);
    A_(rowcnt, s->R);
    A_(ring, (size_t)s->R * s->R);
    A_(lists, s->E);
    if (prm->pw) {
        A_(pwd, (size_t)s->B * s->D);
        if (prm->route != SG_LEAST) A_(pra, (size_t)s->B * s->R * PW_NV);
        else if (ok)
            for (size_t i = 0; i < (size_t)s->B * s->D; i++) s->pwd[i].N = -1; /* nothing cached */
        A_(xm, (size_t)3 * s->B);
        A_(xn, (size_t)3 * s->B);
        A_(dx, s->D);
        A_(dn, s->D);
        A_(chg, s->D);
        A_(rowstamp, s->R);
        A_(rowlist, s->R);
        if (ok) ok = pw_ws_init(&s->pws, s->D, s->R, err) == MS_OK;
    }
#undef A_
    if (ok && prm->route == SG_LEAST) ok = ll_ws_init(&s->ll, prm, dat, err) == MS_OK;
    if (!ok) {
        sg_free(s);
        return MS_E_NOMEM;
    }
    ring_fill(s->ring, s->R);
    memcpy(s->slot, slots, s->P * sizeof *slots);
    for (uint32_t p = 0; p < s->P; p++) {
        int32_t e = slots[p];
        if (e < 0) continue;
        s->reps[(size_t)e * s->P + s->nrep[e]++] = p;
        s->devcnt[(size_t)(p / s->S) * s->E + e]++;
    }
    for (uint32_t e = 0; e < s->E; e++) s->lists[e] = s->reps + (size_t)e * s->P;
    for (uint32_t b = 0; b < s->B; b++) {
        s->wb[b] = window_weight(prm, dat, b);
        s->cap[b] = window_cap(prm, dat->ntok[b]);
        if (prm->route == SG_LEAST) {
            double m[3];
            s->xb[b] = window_least(prm, dat, b, s->lists, s->nrep, s->wb[b], &s->ll, ll_cache(s, b), true, m);
            for (int k = 0; prm->pw && k < 3; k++) s->xm[(size_t)k * s->B + b] = m[k];
            continue;
        }
        if (prm->pw) {
            pw_dev *dv = s->pwd + (size_t)b * s->D;
            const uint32_t *cnt = dat->cnt + (size_t)b * s->E;
            for (uint32_t e = 0; e < s->E; e++) {
                if (!cnt[e]) continue;
                for (uint32_t r = 0; r < s->nrep[e]; r++) {
                    double a = inst_assign(prm, cnt[e], s->nrep[e], r, s->cap[b]);
                    pw_dev *x = &dv[s->reps[(size_t)e * s->P + r] / s->S];
                    x->T += inst_fixed(prm, cnt[e], s->nrep[e], r, s->cap[b]);
                    x->X += llround(a * SG_SCALE);
                    x->N += a > 0;
                }
            }
            double m[3];
            pw_window(prm, dat, b, dv, s->pra + (size_t)b * s->R * PW_NV, &s->pws, NULL, false, m);
            for (int k = 0; k < 3; k++) s->xm[(size_t)k * s->B + b] = m[k];
            s->xb[b] = pw_combine(prm->pw, m);
            continue;
        }
        int64_t *t = s->tree + (size_t)b * 2 * s->Dp;
        for (uint32_t d = 0; d < s->Dp; d++) t[s->Dp + d] = d < s->D ? 0 : -1;
        const uint32_t *cnt = dat->cnt + (size_t)b * s->E;
        for (uint32_t e = 0; e < s->E; e++) {
            if (!cnt[e]) continue;
            for (uint32_t r = 0; r < s->nrep[e]; r++)
                t[s->Dp + s->reps[(size_t)e * s->P + r] / s->S] += inst_fixed(prm, cnt[e], s->nrep[e], r, s->cap[b]);
        }
        for (uint32_t j = s->Dp - 1; j >= 1; j--) t[j] = t[2 * j] > t[2 * j + 1] ? t[2 * j] : t[2 * j + 1];
        s->xb[b] = (double)t[1] * s->wb[b];
    }
    s->tr_scale = traffic_scale(prm, dat);
    if (s->tr_scale > 0)
        for (uint32_t e = 0; e < s->E; e++) {
            s->tr[e] = traffic_of(prm, dat, s->ring, s->rowcnt, e, s->reps + (size_t)e * s->P, s->nrep[e]);
            s->tr_sum += s->tr[e];
        }
    s->value = current_value(s, s->xb, s->xm, s->tr_sum, s->agg);
    *out = s;
    return MS_OK;
}

double sg_value(const sg_state *s) { return s->value; }


void sg_metrics(const sg_state *s, double m[3]) {
    for (int k = 0; k < 3; k++) m[k] = s->prm.pw ? s->agg[k] : 0;
}
const int32_t *sg_slots(const sg_state *s) { return s->slot; }
uint32_t sg_nrep(const sg_state *s, uint32_t e) { return e < s->E ? s->nrep[e] : 0; }

uint32_t sg_argmax_device(sg_state *s, uint32_t b) {
    if (s->prm.route == SG_LEAST) {
        double m[3];
        window_least(&s->prm, &s->dat, b, s->lists, s->nrep, s->wb[b], &s->ll, ll_cache(s, b), false, m);
        return s->ll.argmax;
    }
    if (s->prm.pw) { /* the longest throttled expert time (lowest index on ties) */
        const pw_dev *dv = s->pwd + (size_t)b * s->D;
        uint32_t best = 0;
        for (uint32_t d = 1; d < s->D; d++)
            if (dv[d].v[V_TE] > dv[best].v[V_TE]) best = d;
        return best;
    }
    const int64_t *t = s->tree + (size_t)b * 2 * s->Dp;
    uint32_t j = 1;
    while (j < s->Dp) j = t[2 * j] >= t[2 * j + 1] ? 2 * j : 2 * j + 1;
    return j - s->Dp;
}

double sg_window_value(const sg_state *s, uint32_t b) { return b < s->B ? s->xb[b] : 0; }

static bool movable(const sg_state *s, int32_t e) {
    return e >= 0 && (uint32_t)e < s->prm.n_routed && e != s->prm.shared_id;
}

bool sg_move_ok(const sg_state *s, const sg_move *m) {
    if (m->a >= s->P) return false;
    uint32_t da = m->a / s->S;
    int32_t ea = s->slot[m->a];
    if (m->kind == SG_SWAP) {
        if (m->b >= s->P) return false;
        uint32_t db = m->b / s->S;
        int32_t eb = s->slot[m->b];
        if (da == db || ea == eb) return false;
        if (ea >= 0 && !movable(s, ea)) return false;
        if (eb >= 0 && !movable(s, eb)) return false;
        if (!s->prm.allow_dup) {
            if (ea >= 0 && s->devcnt[(size_t)db * s->E + ea]) return false;
            if (eb >= 0 && s->devcnt[(size_t)da * s->E + eb]) return false;
        }
        return true;
    }
    if (!movable(s, ea) || s->nrep[ea] < 2) return false;
    if (!movable(s, m->e) || m->e == ea) return false;
    if (!s->prm.allow_dup && s->devcnt[(size_t)da * s->E + m->e]) return false;
    return true;
}

/* new list = old without `rm` (UINT32_MAX: none) with `add` inserted (UINT32_MAX: none), ascending */
static uint32_t list_edit(const uint32_t *old, uint32_t n, uint32_t rm, uint32_t add, uint32_t *out) {
    uint32_t k = 0;
    bool added = add == UINT32_MAX;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t v = old[i];
        if (v == rm) continue;
        if (!added && add < v) {
            out[k++] = add;
            added = true;
        }
        out[k++] = v;
    }
    if (!added) out[k++] = add;
    return k;
}

static void aff_add(sg_state *s, uint32_t d) {
    if (s->affstamp[d] == s->stamp) return;
    s->affstamp[d] = s->stamp;
    s->affpos[d] = s->naff;
    s->aff[s->naff++] = d;
}

static void prepare(sg_state *s, const sg_move *m) {
    s->nt = 0;
    if (++s->stamp == 0) {
        memset(s->affstamp, 0, s->D * sizeof *s->affstamp);
        s->stamp = 1;
    }
    s->naff = 0;
    int32_t ea = s->slot[m->a];
    if (m->kind == SG_SWAP) {
        int32_t eb = s->slot[m->b];
        if (ea >= 0) {
            s->te[s->nt] = ea;
            s->nn[s->nt] = list_edit(s->reps + (size_t)ea * s->P, s->nrep[ea], m->a, m->b, s->nl[s->nt]);
            s->nt++;
        }
        if (eb >= 0) {
            s->te[s->nt] = eb;
            s->nn[s->nt] = list_edit(s->reps + (size_t)eb * s->P, s->nrep[eb], m->b, m->a, s->nl[s->nt]);
            s->nt++;
        }
    } else {
        s->te[0] = ea;
        s->nn[0] = list_edit(s->reps + (size_t)ea * s->P, s->nrep[ea], m->a, UINT32_MAX, s->nl[0]);
        s->te[1] = m->e;
        s->nn[1] = list_edit(s->reps + (size_t)m->e * s->P, s->nrep[m->e], UINT32_MAX, m->a, s->nl[1]);
        s->nt = 2;
    }
    for (uint32_t t = 0; t < s->nt; t++) {
        uint32_t e = (uint32_t)s->te[t];
        const uint32_t *old = s->reps + (size_t)e * s->P;
        for (uint32_t r = 0; r < s->nrep[e]; r++) aff_add(s, old[r] / s->S);
        for (uint32_t r = 0; r < s->nn[t]; r++) aff_add(s, s->nl[t][r] / s->S);
    }
    for (uint32_t t = 0; t < s->nt; t++) {
        uint32_t e = (uint32_t)s->te[t];
        s->trnew[t] = s->tr_scale > 0 ? traffic_of(&s->prm, &s->dat, s->ring, s->rowcnt, e, s->nl[t], s->nn[t]) : 0;
    }
}

/* Per window: the deltas of the affected devices; commit or evaluate. */
static void run_windows(sg_state *s, bool commit, double *xout) {
    const uint32_t Dp = s->Dp, S = s->S, P = s->P, E = s->E, naff = s->naff;
    for (uint32_t b = 0; b < s->B; b++) {
        const uint32_t *cnt = s->dat.cnt + (size_t)b * E;
        uint32_t cap = s->cap[b];
        bool any = false;
        for (uint32_t i = 0; i < naff; i++) s->delta[i] = 0;
        for (uint32_t t = 0; t < s->nt; t++) {
            uint32_t e = (uint32_t)s->te[t], c = cnt[e];
            if (!c) continue;
            const uint32_t *old = s->reps + (size_t)e * P;
            uint32_t no = s->nrep[e], nw = s->nn[t];
            for (uint32_t r = 0; r < no; r++) s->delta[s->affpos[old[r] / S]] -= inst_fixed(&s->prm, c, no, r, cap);
            for (uint32_t r = 0; r < nw; r++)
                s->delta[s->affpos[s->nl[t][r] / S]] += inst_fixed(&s->prm, c, nw, r, cap);
            any = true;
        }
        if (!any) {
            xout[b] = s->xb[b];
            continue;
        }
        int64_t *tr = s->tree + (size_t)b * 2 * Dp;
        for (uint32_t i = 0; i < naff; i++) {
            if (!s->delta[i]) continue;
            uint32_t leaf = Dp + s->aff[i];
            s->saved[i] = tr[leaf];
            tr[leaf] += s->delta[i];
            tree_up(tr, leaf);
        }
        xout[b] = (double)tr[1] * s->wb[b];
        if (commit) continue;
        for (uint32_t i = 0; i < naff; i++) {
            if (!s->delta[i]) continue;
            uint32_t leaf = Dp + s->aff[i];
            tr[leaf] = s->saved[i];
            tree_up(tr, leaf);
        }
    }
}

/* Power mode: per window, the affected devices' new T, X, N and figures,
 * the touched rows' aggregates, the metrics (into xm [3][B] and the window
 * scalars into xout); commit writes the new state. */
static void run_windows_pw(sg_state *s, bool commit, double *xout, double *xm) {
    const uint32_t S = s->S, P = s->P, E = s->E, D = s->D, R = s->R, C = s->prm.cl.cols, B = s->B, naff = s->naff;
    const sg_params *prm = &s->prm;
    pw_dev *nd = s->pws.dev;
    for (uint32_t b = 0; b < B; b++) {
        const uint32_t *cnt = s->dat.cnt + (size_t)b * E;
        uint32_t cap = s->cap[b];
        bool any = false;
        for (uint32_t i = 0; i < naff; i++) s->delta[i] = s->dx[i] = s->dn[i] = 0;
        for (uint32_t t = 0; t < s->nt; t++) {
            uint32_t e = (uint32_t)s->te[t], c = cnt[e];
            if (!c) continue;
            const uint32_t *old = s->reps + (size_t)e * P;
            uint32_t no = s->nrep[e], nw = s->nn[t];
            for (uint32_t r = 0; r < no; r++) {
                uint32_t i = s->affpos[old[r] / S];
                double a = inst_assign(prm, c, no, r, cap);
                s->delta[i] -= inst_fixed(prm, c, no, r, cap);
                s->dx[i] -= llround(a * SG_SCALE);
                s->dn[i] -= a > 0;
            }
            for (uint32_t r = 0; r < nw; r++) {
                uint32_t i = s->affpos[s->nl[t][r] / S];
                double a = inst_assign(prm, c, nw, r, cap);
                s->delta[i] += inst_fixed(prm, c, nw, r, cap);
                s->dx[i] += llround(a * SG_SCALE);
                s->dn[i] += a > 0;
            }
            any = true;
        }
        if (!any) {
            if (xout != s->xb) xout[b] = s->xb[b];
            if (xm != s->xm)
                for (int k = 0; k < 3; k++) xm[(size_t)k * B + b] = s->xm[(size_t)k * B + b];
            continue;
        }
        pw_dev *cur = s->pwd + (size_t)b * D;
        if (++s->rstamp == 0) {
            memset(s->rowstamp, 0, R * sizeof *s->rowstamp);
            s->rstamp = 1;
        }
        uint32_t nrl = 0;
        for (uint32_t i = 0; i < naff; i++) {
            s->chg[i] = s->delta[i] || s->dx[i] || s->dn[i];
            if (!s->chg[i]) continue;
            uint32_t d = s->aff[i];
            nd[i] = cur[d];
            nd[i].T += s->delta[i];
            nd[i].X += s->dx[i];
            nd[i].N += s->dn[i];
            pw_derive(prm, &s->dat, b, d, &nd[i]);
            uint32_t r = d / C;
            if (s->rowstamp[r] != s->rstamp) {
                s->rowstamp[r] = s->rstamp;
                s->rowlist[nrl++] = r;
            }
        }
        int64_t *rows = s->pra + (size_t)b * R * PW_NV;
        for (uint32_t r = 0; r < R; r++) s->pws.rp[r] = rows + (size_t)r * PW_NV;
        for (uint32_t q = 0; q < nrl; q++) {
            uint32_t r = s->rowlist[q];
            int64_t *agg = s->pws.row + (size_t)q * PW_NV;
            memset(agg, 0, PW_NV * sizeof *agg);
            for (uint32_t d = r * C; d < (r + 1) * C; d++) {
                bool mine = s->affstamp[d] == s->stamp && s->chg[s->affpos[d]];
                pw_row_add(agg, mine ? nd[s->affpos[d]].v : cur[d].v);
            }
            s->pws.rp[r] = agg;
        }
        double m[3];
        pw_metrics(prm, s->pws.rp, s->pws.gr, m);
        for (int k = 0; k < 3; k++) xm[(size_t)k * B + b] = m[k];
        xout[b] = pw_combine(prm->pw, m);
        if (!commit) continue;
        for (uint32_t i = 0; i < naff; i++)
            if (s->chg[i]) cur[s->aff[i]] = nd[i];
        for (uint32_t q = 0; q < nrl; q++)
            memcpy(rows + (size_t)s->rowlist[q] * PW_NV, s->pws.row + (size_t)q * PW_NV, PW_NV * sizeof(int64_t));
    }
}

/* SG_LEAST: every window with the move's new lists in place (then put back). */
static void least_windows(sg_state *s, double *xout, double *xm) {
    uint32_t keep[2];
    for (uint32_t t = 0; t < s->nt; t++) {
        uint32_t e = (uint32_t)s->te[t];
        keep[t] = s->nrep[e];
        s->nrep[e] = s->nn[t];
        s->lists[e] = s->nl[t];
    }
    for (uint32_t b = 0; b < s->B; b++) {
        /* a window where the touched experts have no assignments does not change */
        const uint32_t *cnt = s->dat.cnt + (size_t)b * s->E;
        bool touched = false;
        for (uint32_t t = 0; t < s->nt; t++) touched |= cnt[s->te[t]] != 0;
        double m[3];
        if (touched) {
            xout[b] = window_least(&s->prm, &s->dat, b, s->lists, s->nrep, s->wb[b], &s->ll, ll_cache(s, b),
                                   xout == s->xb, m);
        } else {
            xout[b] = s->xb[b];
            for (int k = 0; s->prm.pw && k < 3; k++) m[k] = s->xm[(size_t)k * s->B + b];
        }
        for (int k = 0; s->prm.pw && k < 3; k++) xm[(size_t)k * s->B + b] = m[k];
    }
    for (uint32_t t = 0; t < s->nt; t++) {
        uint32_t e = (uint32_t)s->te[t];
        s->nrep[e] = keep[t];
        s->lists[e] = s->reps + (size_t)e * s->P;
    }
}

double sg_eval(sg_state *s, const sg_move *m) {
    prepare(s, m);
    if (s->prm.route == SG_LEAST) least_windows(s, s->xnew, s->xn);
    else if (s->prm.pw) run_windows_pw(s, false, s->xnew, s->xn);
    else run_windows(s, false, s->xnew);
    int64_t trs = s->tr_sum;
    for (uint32_t t = 0; t < s->nt; t++) trs += s->trnew[t] - s->tr[s->te[t]];
    double agg[3];
    return current_value(s, s->xnew, s->xn, trs, agg);
}

void sg_apply(sg_state *s, const sg_move *m) {
    prepare(s, m);
    if (s->prm.route == SG_LEAST) least_windows(s, s->xb, s->xm);
    else if (s->prm.pw) run_windows_pw(s, true, s->xb, s->xm);
    else run_windows(s, true, s->xb);
    for (uint32_t t = 0; t < s->nt; t++) {
        uint32_t e = (uint32_t)s->te[t];
        s->tr_sum += s->trnew[t] - s->tr[e];
        s->tr[e] = s->trnew[t];
    }
    /* device replica counts and slots */
    int32_t ea = s->slot[m->a];
    uint32_t da = m->a / s->S;
    if (m->kind == SG_SWAP) {
        int32_t eb = s->slot[m->b];
        uint32_t db = m->b / s->S;
        if (ea >= 0) {
            s->devcnt[(size_t)da * s->E + ea]--;
            s->devcnt[(size_t)db * s->E + ea]++;
        }
        if (eb >= 0) {
            s->devcnt[(size_t)db * s->E + eb]--;
            s->devcnt[(size_t)da * s->E + eb]++;
        }
        s->slot[m->a] = eb;
        s->slot[m->b] = ea;
    } else {
        s->devcnt[(size_t)da * s->E + ea]--;
        s->devcnt[(size_t)da * s->E + m->e]++;
        s->slot[m->a] = m->e;
    }
    for (uint32_t t = 0; t < s->nt; t++) {
        uint32_t e = (uint32_t)s->te[t];
        memcpy(s->reps + (size_t)e * s->P, s->nl[t], s->nn[t] * sizeof(uint32_t));
        s->nrep[e] = s->nn[t];
    }
    s->value = current_value(s, s->xb, s->xm, s->tr_sum, s->agg);
}
