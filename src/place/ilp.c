/* ilp.c - exact placement by integer programming (GLPK) and the LP lower
 * bound on the maximum device load.
 *
 * The split program, per layer (E routed experts with loads w_e; devices d
 * with cap_d free slots, after the shared expert's reserved replicas, and
 * c_d = the shared load those replicas put on d):
 *     minimise z
 *     x[e][d] in {0,1}        a replica of e on d (at most one per device)
 *     y[e][d] >= 0            the share of e's load that d serves
 *     y[e][d] <= w_e x[e][d]
 *     sum_d y[e][d] = w_e
 *     sum_d x[e][d] >= 1      (every expert has a slot, even with no load)
 *     sum_e x[e][d] <= cap_d
 *     sum_e,d x[e][d] <= E + extra   (the replica budget)
 *     sum_e y[e][d] + c_d <= z
 * Its shares y are free ("split" load sharing: a router may send any
 * fraction of an expert's tokens to each replica): the continuous
 * relaxation of EPLB's model of a replica, where every replica serves
 * exactly w_e / n_e. Its optimum is a lower bound for every placement under
 * EPLB's measure (ms_placement_max_device_load), but an optimal x of the
 * split program can be poor once the load is split evenly (on
 * DeepSeek-V2-Lite layer 10, 2x8 GPUs x 6 slots: split optimum 35312 =
 * total / devices, the same x with even splits 45052, while replicate gets
 * 35402). So:
 *
 *  - `ilp` solves the even program: the split program plus, for every
 *    expert, binaries c[e][k] (k = 1..K, K = min(devices, extra + 1))
 *    choosing its replica count, sum_k c[e][k] = 1, sum_d x[e][d] =
 *    sum_k k c[e][k], and y[e][d] pinned to w_e / k when x[e][d] = c[e][k] =
 *    1 by  y >= (w_e/k)(x + c - 1)  and  y <= w_e/k + (w_e - w_e/k)(1 - c).
 *    Its optimum is the best maximum device load under even splits (what
 *    ms_placement_max_device_load measures, shared load included): p->objective
 *    is the mean over layers of the solution's value.
 *  - ms_place_lower_bound solves the LP relaxation of the split program and
 *    returns the larger of its value and ms_putil_count_bound (which needs no
 *    GLPK and includes the relaxation's water-filling value; the relaxation
 *    alone is little more than total load / devices). Instances larger than
 *    LP_MAX_CELLS expert-device pairs skip the LP.
 *
 * GLPK calls abort() on API misuse, so sizes are validated first, an error
 * hook longjmps back (the environment is then freed with glp_free_env),
 * terminal output is off, and the solves are time-limited
 * (opts->time_limit_s over all layers, shared evenly among the layers left).
 * A heuristic solution (replicate counts + longest-processing-time packing)
 * is handed to the branch-and-bound at its first heuristic callback, so a
 * time-limited run always has an integer solution; the best found is
 * returned.
 */
#include <math.h>
#include <string.h>

#include "place/place_util.h"

/* expert x device pairs the integer program may have (2 columns and about
 * 7 nonzeros each) */
#define ILP_MAX_CELLS 40000u
/* expert x device x replica-count triples of the even program (2 rows each) */
#define ILP_MAX_TRIPLES 100000u
/* ... and the LP of ms_place_lower_bound, which ms_place_run solves for
 * every algorithm and layer: kept to instances that solve in milliseconds */
#define LP_MAX_CELLS 4096u

#ifdef MOESIM_HAVE_GLPK
#include <glpk.h>
#include <setjmp.h>

typedef struct ilp_model {
    uint32_t E, D;      /* experts, devices with a free slot */
    uint32_t *dev;      /* [D] device ids */
    double *cap;        /* [D] free slots */
    double *c;          /* [D] shared load on the device */
    double cmax_all;    /* largest shared load on any device */
    double budget;      /* E + extra */
    uint32_t K;         /* even program: replica counts 1..K (0 = split program) */
    const double *w;    /* [E] */
    /* triplets, 1-based for GLPK */
    int *ia, *ja;
    double *ar;
    double *heur;       /* [ncols + 1] heuristic solution (1-based) or unused */
    int heur_ok, heur_given;
    double heur_z;
    jmp_buf jb;
} ilp_model;

/* column numbers (1-based): x[e][a] = 1 + e*D + a, y[e][a] = 1 + E*D + e*D + a,
 * c[e][k-1] = 1 + 2*E*D + e*K + k-1, z last */
static int col_x(const ilp_model *m, uint32_t e, uint32_t a) { return (int)(1 + (size_t)e * m->D + a); }
static int col_y(const ilp_model *m, uint32_t e, uint32_t a) {
    return (int)(1 + (size_t)m->E * m->D + (size_t)e * m->D + a);
}
static int col_c(const ilp_model *m, uint32_t e, uint32_t k) {
    return (int)(1 + 2 * (size_t)m->E * m->D + (size_t)e * m->K + (k - 1));
}
static int col_z(const ilp_model *m) { return (int)(1 + 2 * (size_t)m->E * m->D + (size_t)m->E * m->K); }

static void ilp_error_hook(void *info) { longjmp(((ilp_model *)info)->jb, 1); }

static void ilp_callback(glp_tree *tree, void *info) {
    ilp_model *m = info;
    if (glp_ios_reason(tree) == GLP_IHEUR && m->heur_ok && !m->heur_given) {
        m->heur_given = 1;
        glp_ios_heur_sol(tree, m->heur);
    }
}

/* Builds the program into lp (integer x when mip; the even program when
 * m->K > 0). Runs between setjmp and longjmp: allocates nothing itself. */
static void ilp_build(ilp_model *m, glp_prob *lp, int mip) {
    uint32_t E = m->E, D = m->D;
    int ncols = col_z(m);
    glp_set_obj_dir(lp, GLP_MIN);
    glp_add_cols(lp, ncols);
    for (uint32_t e = 0; e < E; e++)
        for (uint32_t a = 0; a < D; a++) {
            int cx = col_x(m, e, a), cy = col_y(m, e, a);
            glp_set_col_bnds(lp, cx, GLP_DB, 0.0, 1.0);
            if (mip) glp_set_col_kind(lp, cx, GLP_BV);
            if (m->w[e] > 0.0) glp_set_col_bnds(lp, cy, GLP_DB, 0.0, m->w[e]);
            else glp_set_col_bnds(lp, cy, GLP_FX, 0.0, 0.0);
        }
    for (uint32_t e = 0; e < E; e++)
        for (uint32_t kk = 1; kk <= m->K; kk++) {
            glp_set_col_bnds(lp, col_c(m, e, kk), GLP_DB, 0.0, 1.0);
            if (mip) glp_set_col_kind(lp, col_c(m, e, kk), GLP_BV);
        }
    glp_set_col_bnds(lp, col_z(m), GLP_LO, m->cmax_all, 0.0);
    glp_set_obj_coef(lp, col_z(m), 1.0);
    size_t k = 0;
    int r;
    /* y - w x <= 0 */
    r = glp_add_rows(lp, (int)(E * D));
    for (uint32_t e = 0; e < E; e++)
        for (uint32_t a = 0; a < D; a++, r++) {
            glp_set_row_bnds(lp, r, GLP_UP, 0.0, 0.0);
            k++, m->ia[k] = r, m->ja[k] = col_y(m, e, a), m->ar[k] = 1.0;
            if (m->w[e] > 0.0) k++, m->ia[k] = r, m->ja[k] = col_x(m, e, a), m->ar[k] = -m->w[e];
        }
    /* sum_d y = w_e ; sum_d x >= 1 */
    r = glp_add_rows(lp, (int)(2 * E));
    for (uint32_t e = 0; e < E; e++, r += 2) {
        glp_set_row_bnds(lp, r, GLP_FX, m->w[e], m->w[e]);
        glp_set_row_bnds(lp, r + 1, GLP_LO, 1.0, 0.0);
        for (uint32_t a = 0; a < D; a++) {
            k++, m->ia[k] = r, m->ja[k] = col_y(m, e, a), m->ar[k] = 1.0;
            k++, m->ia[k] = r + 1, m->ja[k] = col_x(m, e, a), m->ar[k] = 1.0;
        }
    }
    /* per device: sum_e x <= cap ; sum_e y - z <= -c */
    r = glp_add_rows(lp, (int)(2 * D));
    for (uint32_t a = 0; a < D; a++, r += 2) {
        glp_set_row_bnds(lp, r, GLP_UP, 0.0, m->cap[a]);
        glp_set_row_bnds(lp, r + 1, GLP_UP, 0.0, -m->c[a]);
        for (uint32_t e = 0; e < E; e++) {
            k++, m->ia[k] = r, m->ja[k] = col_x(m, e, a), m->ar[k] = 1.0;
            k++, m->ia[k] = r + 1, m->ja[k] = col_y(m, e, a), m->ar[k] = 1.0;
        }
        k++, m->ia[k] = r + 1, m->ja[k] = col_z(m), m->ar[k] = -1.0;
    }
    /* budget */
    r = glp_add_rows(lp, 1);
    glp_set_row_bnds(lp, r, GLP_UP, 0.0, m->budget);
    for (uint32_t e = 0; e < E; e++)
        for (uint32_t a = 0; a < D; a++) k++, m->ia[k] = r, m->ja[k] = col_x(m, e, a), m->ar[k] = 1.0;
    if (m->K > 0) {
        /* sum_k c = 1 ; sum_d x - sum_k k c = 0 */
        r = glp_add_rows(lp, (int)(2 * E));
        for (uint32_t e = 0; e < E; e++, r += 2) {
            glp_set_row_bnds(lp, r, GLP_FX, 1.0, 1.0);
            glp_set_row_bnds(lp, r + 1, GLP_FX, 0.0, 0.0);
            for (uint32_t kk = 1; kk <= m->K; kk++) {
                k++, m->ia[k] = r, m->ja[k] = col_c(m, e, kk), m->ar[k] = 1.0;
                k++, m->ia[k] = r + 1, m->ja[k] = col_c(m, e, kk), m->ar[k] = -(double)kk;
            }
            for (uint32_t a = 0; a < D; a++) k++, m->ia[k] = r + 1, m->ja[k] = col_x(m, e, a), m->ar[k] = 1.0;
        }
        /* y pinned to w/k: y - (w/k) x - (w/k) c >= -w/k ; y + (w - w/k) c <= w
         * (for k = 1 the upper row is y <= w: dropped) */
        for (uint32_t e = 0; e < E; e++) {
            double we = m->w[e];
            if (!(we > 0.0)) continue; /* y fixed at 0 */
            for (uint32_t kk = 1; kk <= m->K; kk++) {
                double q = we / kk;
                uint32_t nrow = kk > 1 ? 2 : 1;
                r = glp_add_rows(lp, (int)(nrow * D));
                for (uint32_t a = 0; a < D; a++, r += (int)nrow) {
                    glp_set_row_bnds(lp, r, GLP_LO, -q, 0.0);
                    k++, m->ia[k] = r, m->ja[k] = col_y(m, e, a), m->ar[k] = 1.0;
                    k++, m->ia[k] = r, m->ja[k] = col_x(m, e, a), m->ar[k] = -q;
                    k++, m->ia[k] = r, m->ja[k] = col_c(m, e, kk), m->ar[k] = -q;
                    if (kk > 1) {
                        glp_set_row_bnds(lp, r + 1, GLP_UP, 0.0, we);
                        k++, m->ia[k] = r + 1, m->ja[k] = col_y(m, e, a), m->ar[k] = 1.0;
                        k++, m->ia[k] = r + 1, m->ja[k] = col_c(m, e, kk), m->ar[k] = we - q;
                    }
                }
            }
        }
    }
    glp_load_matrix(lp, (int)k, m->ia, m->ja, m->ar);
}

static size_t ilp_nonzeros(uint32_t E, uint32_t D, uint32_t K) {
    return 7 * (size_t)E * D + D + 1 + (size_t)E * (2 * K + D) + 5 * (size_t)E * D * K;
}

/* Fills the model's device list, capacities and shared loads for `layer`.
 * Returns the number of devices with a free slot. */
static uint32_t ilp_devices(const ms_place_ctx *ctx, uint32_t layer, ilp_model *m, int only_shape) {
    const ms_placement *p = ctx->p;
    uint32_t nd = ms_cluster_devices(&p->cluster), spd = p->cluster.slots_per_device, D = 0;
    const int32_t *row = p->phy2log + (size_t)layer * p->n_phys;
    int32_t shared = p->has_shared ? (int32_t)p->n_routed : -2;
    uint32_t ns = 0;
    for (uint32_t s = 0; s < p->n_phys; s++) ns += row[s] == shared;
    double ls = ms_putil_shared_load(ctx, layer);
    m->cmax_all = 0.0;
    for (uint32_t d = 0; d < nd; d++) {
        uint32_t f = 0, sh = 0;
        for (uint32_t s = 0; s < spd; s++) {
            int32_t v = row[d * spd + s];
            sh += v == shared;
            /* a finished placement (lower bound): every non-shared slot is
             * free for the routed experts */
            f += only_shape ? v != shared : v < 0;
        }
        double c = ns ? ls * sh / ns : 0.0;
        if (c > m->cmax_all) m->cmax_all = c;
        if (f) {
            if (m->dev) {
                m->dev[D] = d;
                m->cap[D] = f;
                m->c[D] = c;
            }
            D++;
        }
    }
    return D;
}

/* Heuristic: replicate counts (capped at D) within the budget, then LPT
 * with even splits; fills m->heur (1-based) and m->heur_z. */
static void ilp_heuristic(ilp_model *m, uint32_t extra, uint32_t *cnt, uint32_t *heap, uint32_t *order, double *key,
                          double *dl, double *capleft) {
    uint32_t E = m->E, D = m->D;
    int ncols = col_z(m);
    for (int i = 0; i <= ncols; i++) m->heur[i] = 0.0;
    ms_putil_counts_greedy(m->w, E, extra, D, cnt, heap);
    for (uint32_t a = 0; a < D; a++) {
        dl[a] = m->c[a];
        capleft[a] = m->cap[a];
    }
    for (uint32_t e = 0; e < E; e++) key[e] = m->w[e] / cnt[e];
    ms_putil_order_desc(key, E, order);
    m->heur_ok = 1;
    for (uint32_t e = 0; e < E && m->K; e++) {
        if (cnt[e] > m->K) m->heur_ok = 0;
        else m->heur[col_c(m, e, cnt[e])] = 1.0;
    }
    for (uint32_t k = 0; k < E && m->heur_ok; k++) {
        uint32_t e = order[k];
        for (uint32_t r = 0; r < cnt[e]; r++) {
            uint32_t best = UINT32_MAX;
            for (uint32_t a = 0; a < D; a++) {
                if (capleft[a] < 1.0 || m->heur[col_x(m, e, a)] > 0.5) continue;
                if (best == UINT32_MAX || dl[a] < dl[best]) best = a;
            }
            if (best == UINT32_MAX) {
                m->heur_ok = 0;
                break;
            }
            m->heur[col_x(m, e, best)] = 1.0;
            m->heur[col_y(m, e, best)] = key[e];
            dl[best] += key[e];
            capleft[best] -= 1.0;
        }
    }
    double z = m->cmax_all;
    for (uint32_t a = 0; a < D; a++)
        if (dl[a] > z) z = dl[a];
    m->heur[ncols] = z;
    m->heur_z = z;
}

typedef struct ilp_work {
    ilp_model m;
    uint32_t *cnt, *heap, *order;
    double *key, *dl, *capleft, *sol;
} ilp_work;

static void ilp_work_free(ilp_work *w) {
    ms_free(w->m.dev);
    ms_free(w->m.cap);
    ms_free(w->m.c);
    ms_free(w->m.ia);
    ms_free(w->m.ja);
    ms_free(w->m.ar);
    ms_free(w->m.heur);
    ms_free(w->cnt);
    ms_free(w->heap);
    ms_free(w->order);
    ms_free(w->key);
    ms_free(w->dl);
    ms_free(w->capleft);
    ms_free(w->sol);
}

static ms_status ilp_work_alloc(ilp_work *w, uint32_t E, uint32_t nd, uint32_t K, ms_error *err) {
    memset(w, 0, sizeof *w);
    size_t nz = ilp_nonzeros(E, nd, K) + 1, ncols = 2 * (size_t)E * nd + (size_t)E * K + 2;
    w->m.dev = ms_alloc_array(nd, sizeof *w->m.dev, err);
    w->m.cap = ms_alloc_array(nd, sizeof *w->m.cap, err);
    w->m.c = ms_alloc_array(nd, sizeof *w->m.c, err);
    w->m.ia = ms_alloc_array(nz, sizeof *w->m.ia, err);
    w->m.ja = ms_alloc_array(nz, sizeof *w->m.ja, err);
    w->m.ar = ms_alloc_array(nz, sizeof *w->m.ar, err);
    w->m.heur = ms_alloc_array(ncols, sizeof *w->m.heur, err);
    w->sol = ms_alloc_array(ncols, sizeof *w->sol, err);
    w->cnt = ms_alloc_array(E, sizeof *w->cnt, err);
    w->heap = ms_alloc_array(E, sizeof *w->heap, err);
    w->order = ms_alloc_array(E, sizeof *w->order, err);
    w->key = ms_alloc_array(E, sizeof *w->key, err);
    w->dl = ms_alloc_array(nd, sizeof *w->dl, err);
    w->capleft = ms_alloc_array(nd, sizeof *w->capleft, err);
    if (!w->m.dev || !w->m.cap || !w->m.c || !w->m.ia || !w->m.ja || !w->m.ar || !w->m.heur || !w->sol || !w->cnt ||
        !w->heap || !w->order || !w->key || !w->dl || !w->capleft) {
        ilp_work_free(w);
        return MS_E_NOMEM;
    }
    return MS_OK;
}

/* Solves one layer. On success sol[1..ncols] holds the chosen solution and
 * *z its objective; *status_out: 0 = optimal, 1 = feasible (time limit),
 * 2 = heuristic only. Returns MS_E_INTERNAL when GLPK fails. */
static ms_status ilp_solve(ilp_work *w, double time_s, int mip, double *z, int *status_out, ms_error *err) {
    ilp_model *m = &w->m;
    int ncols = col_z(m);
    glp_prob *volatile lp = NULL;
    if (setjmp(m->jb)) {
        glp_free_env();
        return ms_error_set(err, MS_E_INTERNAL, "ilp: GLPK failed on a %u x %u program", m->E, m->D);
    }
    glp_error_hook(ilp_error_hook, m);
    glp_term_out(GLP_OFF);
    lp = glp_create_prob();
    ilp_build(m, lp, mip);
    glp_smcp sp;
    glp_init_smcp(&sp);
    sp.msg_lev = GLP_MSG_OFF;
    sp.presolve = GLP_OFF;
    double t0 = ms_now();
    if (time_s > 0) sp.tm_lim = (int)fmin(time_s * 1000.0, 2e9);
    int rc = glp_simplex(lp, &sp);
    int lp_ok = rc == 0 && glp_get_status(lp) == GLP_OPT;
    if (!mip) {
        *z = lp_ok ? glp_get_obj_val(lp) : NAN;
        *status_out = lp_ok ? 0 : 2;
        glp_delete_prob(lp);
        return MS_OK;
    }
    int have = 0;
    *status_out = 2;
    if (lp_ok) {
        glp_iocp ip;
        glp_init_iocp(&ip);
        ip.msg_lev = GLP_MSG_OFF;
        ip.presolve = GLP_OFF;
        ip.cb_func = ilp_callback;
        ip.cb_info = m;
        double left = time_s - (ms_now() - t0);
        ip.tm_lim = (int)fmin(fmax(left, 0.001) * 1000.0, 2e9);
        m->heur_given = 0;
        rc = glp_intopt(lp, &ip);
        int ms = glp_mip_status(lp);
        if ((rc == 0 || rc == GLP_ETMLIM || rc == GLP_EMIPGAP || rc == GLP_ESTOP) && (ms == GLP_OPT || ms == GLP_FEAS)) {
            double v = glp_mip_obj_val(lp);
            if (!m->heur_ok || v <= m->heur_z) {
                for (int j = 1; j <= ncols; j++) w->sol[j] = glp_mip_col_val(lp, j);
                *z = v;
                have = 1;
                *status_out = ms == GLP_OPT ? 0 : 1;
            }
        }
    }
    glp_delete_prob(lp);
    if (!have) {
        if (!m->heur_ok) return ms_error_set(err, MS_E_INTERNAL, "ilp: no integer solution found");
        for (int j = 1; j <= ncols; j++) w->sol[j] = m->heur[j];
        *z = m->heur_z;
    }
    return MS_OK;
}

/* Contract: ilp (see the file comment). Fails MS_E_INPUT when the program
 * would exceed ILP_MAX_CELLS / ILP_MAX_TRIPLES or loads do not fit;
 * MS_E_INTERNAL when GLPK fails and no heuristic solution exists;
 * MS_E_NOMEM. */
ms_status ms_place_ilp(const ms_place_ctx *ctx, ms_error *err) {
    ms_status st = ms_putil_check_input(ctx, "ilp", err);
    if (st != MS_OK) return st;
    ms_placement *p = ctx->p;
    uint32_t E = p->n_routed, nd = ms_cluster_devices(&p->cluster);
    uint32_t extra = ms_putil_extra(ctx);
    uint32_t K = extra + 1 < nd ? extra + 1 : nd;
    if ((uint64_t)E * nd > ILP_MAX_CELLS || (uint64_t)E * nd * K > ILP_MAX_TRIPLES)
        return ms_error_set(err, MS_E_INPUT,
                            "ilp is for small instances: %u experts x %u devices x %u replica counts exceeds its limits "
                            "(%u expert-device pairs, %u triples); use eplb, replicate or search",
                            E, nd, K, ILP_MAX_CELLS, ILP_MAX_TRIPLES);
    double tl = ctx->opts->time_limit_s;
    if (!(tl > 0.0) || !isfinite(tl)) tl = 10.0;
    ilp_work w;
    st = ilp_work_alloc(&w, E, nd, K, err);
    if (st != MS_OK) return st;
    double t0 = ms_now();
    for (uint32_t l = 0; l < p->n_layers; l++) {
        ilp_model *m = &w.m;
        m->E = E;
        m->w = ms_putil_layer_loads(ctx, l);
        m->D = ilp_devices(ctx, l, m, 0);
        m->budget = (double)E + extra;
        m->K = K < m->D ? K : m->D;
        if (m->D == 0) {
            st = ms_error_set(err, MS_E_INPUT, "ilp: layer %u has no free slot", l);
            break;
        }
        ilp_heuristic(m, extra, w.cnt, w.heap, w.order, w.key, w.dl, w.capleft);
        double left = tl - (ms_now() - t0);
        double share = left / (p->n_layers - l);
        if (share < 0.001) share = 0.001;
        double z = NAN;
        int how = 2;
        st = ilp_solve(&w, share, 1, &z, &how, err);
        if (st != MS_OK) break;
        for (uint32_t e = 0; e < E; e++)
            for (uint32_t a = 0; a < m->D; a++)
                if (w.sol[col_x(m, e, a)] > 0.5 && ms_putil_put(p, l, m->dev[a], (int32_t)e) != 0) {
                    st = ms_error_set(err, MS_E_INTERNAL, "ilp: device %u over capacity in layer %u", m->dev[a], l);
                    goto out;
                }
        ms_putil_sort_device_slots(p, l);
    }
out:
    glp_free_env();
    ilp_work_free(&w);
    return st;
}

/* Contract (algos.h): the larger of the LP relaxation's value and the
 * combinatorial bound; the combinatorial bound alone when the instance is
 * larger than LP_MAX_CELLS or GLPK fails; NAN only when memory runs out. */
double ms_place_lower_bound(const ms_place_ctx *ctx, uint32_t layer) {
    const ms_placement *p = ctx->p;
    if (!ctx->in || !ctx->in->loads || layer >= p->n_layers || layer >= ctx->in->loads->n_layers) return NAN;
    double cb = ms_putil_count_bound(ctx, layer);
    uint32_t E = p->n_routed, nd = ms_cluster_devices(&p->cluster);
    if ((uint64_t)E * nd > LP_MAX_CELLS) return cb;
    ilp_work w;
    if (ilp_work_alloc(&w, E, nd, 0, NULL) != MS_OK) return cb;
    ilp_model *m = &w.m;
    m->E = E;
    m->w = ms_putil_layer_loads(ctx, layer);
    m->D = ilp_devices(ctx, layer, m, 1);
    m->budget = (double)E + ms_putil_extra(ctx);
    m->K = 0;
    double z = NAN;
    int how = 2;
    if (m->D > 0 && ilp_solve(&w, 0.0, 0, &z, &how, NULL) != MS_OK) z = NAN;
    glp_free_env();
    ilp_work_free(&w);
    if (isnan(z)) return cb;
    return isnan(cb) || z > cb ? z : cb;
}

#else /* no GLPK */

/* Contract: MS_E_UNSUPPORTED (this build has no GLPK). */
ms_status ms_place_ilp(const ms_place_ctx *ctx, ms_error *err) {
    (void)ctx;
    return ms_error_set(err, MS_E_UNSUPPORTED,
                        "ilp needs GLPK, which this build lacks (install libglpk-dev and rebuild with "
                        "-DMOESIM_WITH_GLPK=ON); use eplb, replicate or search instead");
}

/* Contract (algos.h): without GLPK no LP is solved; the combinatorial bound
 * (ms_putil_count_bound) is still returned, NAN only when memory runs out. */
double ms_place_lower_bound(const ms_place_ctx *ctx, uint32_t layer) {
    const ms_placement *p = ctx->p;
    if (!ctx->in || !ctx->in->loads || layer >= p->n_layers || layer >= ctx->in->loads->n_layers) return NAN;
    return ms_putil_count_bound(ctx, layer);
}

#endif
