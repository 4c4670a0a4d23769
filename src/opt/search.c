/* search.c - `search`: simulated annealing of placements on a surrogate of
 * the simulation, then full simulations of the best candidates. See
 * moesim/opt.h; the surrogate is opt/surrogate.c. */
#include "moesim/opt.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef MOESIM_HAVE_OPENMP
#include <omp.h>
#endif

#include "moesim/stats.h"
#include "opt/surrogate.h"

#define MAX_PLANS 16
#define MAX_CHAINS 16
/* peak-power surrogate: the mean of the worst tenth of the windows (the
 * simulation's objective is the single worst (batch, layer); the mean of a
 * tail gives the annealing a slope and generalises to other requests) */
#define PEAK_TAIL 0.1

/* ------------------------------------------------------------ options */

static const char *const obj_names[] = {"mean",   "p95",        "p99",            "imbalance", "imbalance-p99",
                                        "energy", "peak-power", "time-under-cap", "mix"};

const char *ms_search_objective_name(ms_search_objective o) {
    return (unsigned)o < sizeof obj_names / sizeof obj_names[0] ? obj_names[o] : "?";
}

ms_status ms_search_objective_parse(const char *s, ms_search_objective *out, ms_error *err) {
    for (unsigned i = 0; i < sizeof obj_names / sizeof obj_names[0]; i++)
        if (s && strcmp(s, obj_names[i]) == 0) {
            *out = (ms_search_objective)i;
            return MS_OK;
        }
    return ms_error_set(err, MS_E_INPUT,
                        "unknown objective '%s' (mean, p95, p99, imbalance, imbalance-p99, energy, peak-power, "
                        "time-under-cap, mix)",
                        s ? s : "");
}

void ms_search_opts_default(ms_search_opts *o) {
    memset(o, 0, sizeof *o);
    o->init = NULL;
    o->init_algo = "eplb";
    ms_place_opts_default(&o->place);
    ms_batch_opts_default(&o->batch);
    ms_sim_opts_default(&o->sim);
    o->objective = MS_OBJ_IMBALANCE;
    o->time_limit_s = 10.0;
    o->iterations = 0;
    o->chains = 2;
    o->traffic_weight = -1;
    o->min_windows = 64;
    o->seed = 0;
    o->threads = 0;
    ms_power_cap_none(&o->cap);
    o->cap.gpu_w = NAN;
    o->mix[0] = 1;
}

static const char *const opt_names[] = {"init",         "objective",    "iterations",      "chains",
                                        "traffic-weight", "min-windows", "cost-model",      "batch",
                                        "batch-tokens", "decode-batch", "dp",              "route",
                                        "row-local-slack", "capacity-factor", "overflow",  "origin-rows",
                                        "mesh-table",   "hw",           "model",           "overlap",
                                        "sim-seed",     "energy",       "gpu-power-cap",   "row-power-cap",
                                        "cluster-power-cap", "mix",     NULL};

const char *const *ms_search_option_names(void) { return opt_names; }

static ms_status parse_num(const char *name, const char *v, double lo, double *out, ms_error *err) {
    char *end = NULL;
    double x = v ? strtod(v, &end) : NAN;
    if (!v || !*v || *end || !isfinite(x) || x < lo)
        return ms_error_set(err, MS_E_INPUT, "--%s expects a number >= %g, got '%s'", name, lo, v ? v : "");
    *out = x;
    return MS_OK;
}

/* W (kilo false) or kW, > 0, or "none" (INFINITY) */
static ms_status parse_cap(const char *name, const char *v, bool kilo, double *out, ms_error *err) {
    if (v && strcmp(v, "none") == 0) {
        *out = INFINITY;
        return MS_OK;
    }
    char *end = NULL;
    double x = v ? strtod(v, &end) : NAN;
    if (!v || !*v || *end || !isfinite(x) || !(x > 0))
        return ms_error_set(err, MS_E_INPUT, "--%s expects a positive number of %s or none, got '%s'", name,
                            kilo ? "kW" : "W", v ? v : "");
    *out = kilo ? x * 1e3 : x;
    return MS_OK;
}

static ms_status parse_u64(const char *name, const char *v, uint64_t lo, uint64_t hi, uint64_t *out, ms_error *err) {
    char *end = NULL;
    if (!v || !*v || *v == '-') goto bad;
    unsigned long long x = strtoull(v, &end, 10);
    if (*end || x < lo || x > hi) goto bad;
    *out = x;
    return MS_OK;
bad:
    return ms_error_set(err, MS_E_INPUT, "--%s expects an integer in %llu..%llu, got '%s'", name,
                        (unsigned long long)lo, (unsigned long long)hi, v ? v : "");
}

ms_status ms_search_opts_set(ms_search_opts *o, const char *name, const char *value, ms_error *err) {
    uint64_t u = 0;
    double x = 0;
    ms_status st = MS_OK;
    if (!name) return ms_error_set(err, MS_E_INPUT, "no option name");
    if (strcmp(name, "init") == 0) {
        if (!value || !*value) return ms_error_set(err, MS_E_INPUT, "--init expects an algorithm name");
        if (strcmp(value, "search") == 0) return ms_error_set(err, MS_E_INPUT, "--init cannot be search itself");
        o->init_algo = value;
    } else if (strcmp(name, "objective") == 0) {
        st = ms_search_objective_parse(value, &o->objective, err);
    } else if (strcmp(name, "iterations") == 0) {
        if ((st = parse_u64(name, value, 0, UINT64_MAX / 2, &u, err)) == MS_OK) o->iterations = u;
    } else if (strcmp(name, "chains") == 0) {
        if ((st = parse_u64(name, value, 1, MAX_CHAINS, &u, err)) == MS_OK) o->chains = (uint32_t)u;
    } else if (strcmp(name, "traffic-weight") == 0) {
        if ((st = parse_num(name, value, 0, &x, err)) == MS_OK) o->traffic_weight = x;
    } else if (strcmp(name, "min-windows") == 0) {
        if ((st = parse_u64(name, value, 1, 1u << 20, &u, err)) == MS_OK) o->min_windows = (uint32_t)u;
    } else if (strcmp(name, "cost-model") == 0) {
        st = ms_cost_model_parse(value, &o->sim.cost_model, err);
    } else if (strcmp(name, "batch") == 0) {
        st = ms_batch_mode_parse(value, &o->batch.mode, err);
    } else if (strcmp(name, "batch-tokens") == 0) {
        if ((st = parse_u64(name, value, 1, UINT32_MAX, &u, err)) == MS_OK) o->batch.batch_tokens = (uint32_t)u;
    } else if (strcmp(name, "decode-batch") == 0) {
        if ((st = parse_u64(name, value, 1, UINT32_MAX, &u, err)) == MS_OK) o->batch.decode_batch = (uint32_t)u;
    } else if (strcmp(name, "dp") == 0) {
        st = ms_dp_parse(value, &o->batch.dp, err);
    } else if (strcmp(name, "route") == 0) {
        st = ms_route_parse(value, &o->sim.route, err);
    } else if (strcmp(name, "row-local-slack") == 0) {
        if ((st = parse_num(name, value, 0, &x, err)) == MS_OK) o->sim.row_local_slack = x;
    } else if (strcmp(name, "capacity-factor") == 0) {
        if ((st = parse_num(name, value, 0, &x, err)) == MS_OK) o->sim.capacity_factor = x;
    } else if (strcmp(name, "overflow") == 0) {
        st = ms_overflow_parse(value, &o->sim.overflow, err);
    } else if (strcmp(name, "origin-rows") == 0) {
        if ((st = ms_origin_parse(value, &o->sim.origin, err)) == MS_OK) o->origin_set = true;
    } else if (strcmp(name, "mesh-table") == 0) {
        st = ms_mesh_table_parse(value, &o->sim.mesh_table, err);
    } else if (strcmp(name, "hw") == 0) {
        if (!value || !*value) return ms_error_set(err, MS_E_INPUT, "--hw expects a preset name or path");
        o->hw_name = value;
    } else if (strcmp(name, "model") == 0) {
        if (!value || !*value) return ms_error_set(err, MS_E_INPUT, "--model expects a preset name or path");
        o->model_name = value;
    } else if (strcmp(name, "sim-seed") == 0) {
        if ((st = parse_u64(name, value, 0, UINT64_MAX, &u, err)) == MS_OK) o->batch.seed = o->sim.seed = u;
    } else if (strcmp(name, "overlap") == 0) {
        st = ms_overlap_parse(value, &o->sim.overlap, err);
    } else if (strcmp(name, "energy") == 0) {
        if (!value || !*value) return ms_error_set(err, MS_E_INPUT, "--energy expects a preset name or path");
        o->energy_name = value;
        o->cap_set = true;
    } else if (strcmp(name, "gpu-power-cap") == 0) {
        if ((st = parse_cap(name, value, false, &o->cap.gpu_w, err)) == MS_OK) o->cap_set = true;
    } else if (strcmp(name, "row-power-cap") == 0) {
        if ((st = parse_cap(name, value, true, &o->cap.row_w, err)) == MS_OK) o->cap_set = true;
    } else if (strcmp(name, "cluster-power-cap") == 0) {
        if ((st = parse_cap(name, value, true, &o->cap.cluster_w, err)) == MS_OK) o->cap_set = true;
    } else if (strcmp(name, "mix") == 0) {
        double w[3];
        char tail;
        if (!value || sscanf(value, "%lf,%lf,%lf%c", &w[0], &w[1], &w[2], &tail) != 3 || !(w[0] >= 0) ||
            !(w[1] >= 0) || !(w[2] >= 0) || !(w[0] + w[1] + w[2] > 0) || !isfinite(w[0] + w[1] + w[2]))
            return ms_error_set(err, MS_E_INPUT,
                                "--mix expects three weights >= 0, not all 0: time,peak-power,energy (got '%s')",
                                value ? value : "");
        memcpy(o->mix, w, sizeof w);
    } else {
        return ms_error_set(err, MS_E_INPUT, "unknown search option '%s'", name);
    }
    return st;
}

double ms_search_objective_value(const ms_sim_summary *s, ms_search_objective o) {
    switch (o) {
    case MS_OBJ_MEAN: return s->layer_us.mean;
    case MS_OBJ_P95: return s->layer_us.p95;
    case MS_OBJ_P99: return s->layer_us.p99;
    case MS_OBJ_IMBALANCE: return s->imbalance.mean;
    case MS_OBJ_IMBALANCE_P99: return s->imbalance.p99;
    case MS_OBJ_TIME_UNDER_CAP: return s->layer_us.mean;
    case MS_OBJ_ENERGY:
    case MS_OBJ_PEAK_POWER:
    case MS_OBJ_MIX: return NAN;
    }
    return NAN;
}

static bool obj_is_imbalance(ms_search_objective o) { return o == MS_OBJ_IMBALANCE || o == MS_OBJ_IMBALANCE_P99; }
/* objectives priced by the power model */
static bool obj_needs_power(ms_search_objective o) {
    return o == MS_OBJ_ENERGY || o == MS_OBJ_PEAK_POWER || o == MS_OBJ_MIX;
}
/* objectives with a power surrogate */
static bool obj_is_power(ms_search_objective o) { return obj_needs_power(o) || o == MS_OBJ_TIME_UNDER_CAP; }

/* ------------------------------------------------------------ helpers */

static uint64_t mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y ? 1 : 0;
}

/* mean, or the nearest-rank q-quantile (ceil(q n)-th smallest) of v[0..n) (sorted in place) */
static double stat_of(double *v, uint64_t n, double q) {
    if (n == 0) return NAN;
    if (q <= 0) {
        double s = 0;
        for (uint64_t i = 0; i < n; i++) s += v[i];
        return s / (double)n;
    }
    qsort(v, n, sizeof *v, cmp_double);
    uint64_t k = (uint64_t)ceil(q * (double)n);
    if (k < 1) k = 1;
    if (k > n) k = n;
    return v[k - 1];
}

static double obj_quantile(ms_search_objective o) {
    switch (o) {
    case MS_OBJ_P95: return 0.95;
    case MS_OBJ_P99:
    case MS_OBJ_IMBALANCE_P99: return 0.99;
    default: return 0;
    }
}

/* Per evaluated layer li: the objective over that layer's records. */
static void layer_values(const ms_sim_result *r, uint32_t nl, ms_search_objective o, double *out, double *buf) {
    uint64_t nb = nl ? r->n_records / nl : 0;
    bool imb = obj_is_imbalance(o);
    for (uint32_t li = 0; li < nl; li++) {
        for (uint64_t b = 0; b < nb; b++) {
            const ms_sim_record *x = &r->records[b * nl + li];
            buf[b] = imb ? x->imbalance : x->layer_us;
        }
        out[li] = stat_of(buf, nb, obj_quantile(o));
    }
}

/* ------------------------------------------------------------ per layer */

typedef struct layer_job {
    uint32_t layer;
    double budget_s;        /* wall time this layer may take */
    /* results */
    ms_status st;
    ms_error err;
    uint64_t iters;         /* moves tried */
    bool stopped;           /* the time ran out */
    double sg_init, sg_best;
    uint32_t windows;
} layer_job;

typedef struct shared_ctx {
    const ms_trace *t;
    const ms_search_opts *o;
    const ms_sim_opts *so;
    const ms_placement *init;
    const ms_batch_plan *const *plans;
    uint32_t n_plans;
    sg_params base;        /* everything but n_inst */
    uint64_t iters;        /* per layer */
    uint32_t chains;
    double deadline;       /* absolute */
    int32_t **cand;        /* [chains] -> [n_layers * P] */
    /* power objectives: the surrogate's coefficients (norms set per layer),
     * every window's dense work per device [B][D] (the same in every layer:
     * where tokens start), and the energy of one crossing assignment (J) */
    sg_power pw;
    const double *dense_us, *dense_fj, *dense_mj;
    double cross_j;
    /* objectives priced by the power model: the initial placement's simulated
     * metrics per evaluated layer [nl][3] (time mean, peak W, energy J over
     * the nb0 batches), the surrogate's norms; NULL = the surrogate's own */
    const double *lm0;
    uint32_t l0;
    uint64_t nb0;
} shared_ctx;

static uint32_t origin_row_of(const shared_ctx *c, const ms_batch_plan *pl, uint64_t pos, uint64_t bstart,
                              uint32_t layer, bool *known) {
    const ms_cluster *cl = &c->init->cluster;
    *known = true;
    switch (c->so->origin) {
    case MS_ORIGIN_DP: return pl->origin[pos] / cl->cols;
    case MS_ORIGIN_ROUND_ROBIN: return (uint32_t)((pos - bstart) % cl->rows);
    case MS_ORIGIN_TRACE:
        if (c->so->origin_rows) return c->so->origin_rows[(uint64_t)layer * c->t->n_tokens + pl->tok[pos]];
        break;
    default: break;
    }
    *known = false;
    return 0;
}

typedef struct layer_data {
    uint32_t B;
    uint32_t *cnt, *ntok;
    double *orow, *tot;
    uint64_t *aoff;   /* least-loaded: windows small enough to route token by token */
    uint16_t *aid;
} layer_data;

/* Windows with at most this many assignments per device are routed token by
 * token by the least-loaded surrogate (exact); larger ones are water-filled. */
#define TOKEN_WINDOW_PER_DEVICE 32

static void layer_data_free(layer_data *d) {
    ms_free(d->aoff);
    ms_free(d->aid);
    ms_free(d->cnt);
    ms_free(d->ntok);
    ms_free(d->orow);
    ms_free(d->tot);
}

static ms_status layer_data_build(const shared_ctx *c, uint32_t layer, layer_data *d, ms_error *err) {
    const ms_trace *t = c->t;
    const ms_placement *p = c->init;
    uint32_t E = p->n_logical, R = p->cluster.rows, k = t->top_k;
    memset(d, 0, sizeof *d);
    uint64_t B = 0;
    for (uint32_t i = 0; i < c->n_plans; i++) B += c->plans[i]->n_batches;
    d->B = (uint32_t)B;
    d->cnt = ms_calloc_array(B * E, sizeof *d->cnt, err);
    d->ntok = ms_calloc_array(B, sizeof *d->ntok, err);
    d->orow = ms_calloc_array((size_t)R * E, sizeof *d->orow, err);
    d->tot = ms_calloc_array(E, sizeof *d->tot, err);
    if (!d->cnt || !d->ntok || !d->orow || !d->tot) return MS_E_NOMEM;
    bool any_origin = false;
    uint64_t w = 0;
    for (uint32_t i = 0; i < c->n_plans; i++) {
        const ms_batch_plan *pl = c->plans[i];
        for (uint64_t b = 0; b < pl->n_batches; b++, w++) {
            uint32_t *cnt = d->cnt + w * E;
            for (uint64_t pos = pl->off[b]; pos < pl->off[b + 1]; pos++) {
                const uint16_t *ids = ms_trace_row(t, layer, pl->tok[pos]);
                for (uint32_t j = 0; j < k; j++) cnt[ids[j]]++;
                if (i == 0) {
                    bool known;
                    uint32_t row = origin_row_of(c, pl, pos, pl->off[b], layer, &known);
                    if (known && row < R) {
                        any_origin = true;
                        for (uint32_t j = 0; j < k; j++) d->orow[(size_t)row * E + ids[j]] += 1;
                    }
                }
            }
            uint64_t n = pl->off[b + 1] - pl->off[b];
            d->ntok[w] = (uint32_t)n;
            if (p->has_shared) cnt[p->n_routed] = (uint32_t)n;
            for (uint32_t e = 0; e < E; e++) d->tot[e] += cnt[e];
        }
    }
    if (!any_origin) {
        ms_free(d->orow);
        d->orow = NULL;
    }
    if (c->base.route != SG_LEAST) return MS_OK;
    /* assignment lists of the small windows, in the simulator's routing order */
    uint32_t keff = k + (p->has_shared ? 1 : 0), D = ms_cluster_devices(&p->cluster);
    uint64_t na = 0;
    for (uint32_t b = 0; b < d->B; b++)
        if ((uint64_t)d->ntok[b] * keff <= (uint64_t)TOKEN_WINDOW_PER_DEVICE * D) na += (uint64_t)d->ntok[b] * keff;
    if (na == 0) return MS_OK;
    d->aoff = ms_alloc_array((size_t)d->B + 1, sizeof *d->aoff, err);
    d->aid = ms_alloc_array(na, sizeof *d->aid, err);
    if (!d->aoff || !d->aid) return MS_E_NOMEM;
    w = 0;
    uint64_t a = 0;
    for (uint32_t i = 0; i < c->n_plans; i++) {
        const ms_batch_plan *pl = c->plans[i];
        for (uint64_t b = 0; b < pl->n_batches; b++, w++) {
            d->aoff[w] = a;
            if ((uint64_t)d->ntok[w] * keff > (uint64_t)TOKEN_WINDOW_PER_DEVICE * D) continue;
            for (uint64_t pos = pl->off[b]; pos < pl->off[b + 1]; pos++) {
                const uint16_t *ids = ms_trace_row(t, layer, pl->tok[pos]);
                for (uint32_t j = 0; j < k; j++) d->aid[a++] = ids[j];
                if (p->has_shared) d->aid[a++] = (uint16_t)p->n_routed;
            }
        }
    }
    d->aoff[w] = a;
    return MS_OK;
}

/* A random move; false when none was found in a few tries. */
static bool propose(sg_state *s, const shared_ctx *c, const double *tot, uint32_t B, ms_rng *rng, sg_move *m) {
    const ms_cluster *cl = &c->init->cluster;
    uint32_t S = cl->slots_per_device, D = ms_cluster_devices(cl), P = D * S;
    uint32_t nr = c->init->n_routed;
    for (int tries = 0; tries < 8; tries++) {
        uint64_t r = ms_rng_below(rng, 100);
        if (r < 45 && D > 1) { /* from the busiest device of a bad window */
            uint32_t b1 = (uint32_t)ms_rng_below(rng, B), b2 = (uint32_t)ms_rng_below(rng, B);
            uint32_t b = sg_window_value(s, b1) >= sg_window_value(s, b2) ? b1 : b2;
            uint32_t d1 = sg_argmax_device(s, b);
            uint32_t d2 = (uint32_t)ms_rng_below(rng, D - 1);
            if (d2 >= d1) d2++;
            m->kind = SG_SWAP;
            m->a = d1 * S + (uint32_t)ms_rng_below(rng, S);
            m->b = d2 * S + (uint32_t)ms_rng_below(rng, S);
            m->e = -1;
        } else if (r < 80 && D > 1) {
            m->kind = SG_SWAP;
            m->a = (uint32_t)ms_rng_below(rng, P);
            m->b = (uint32_t)ms_rng_below(rng, P);
            m->e = -1;
        } else {
            m->kind = SG_REPLICA;
            m->a = (uint32_t)ms_rng_below(rng, P);
            m->b = 0;
            int32_t best = -1;
            double bv = -1;
            for (int j = 0; j < 3; j++) { /* tournament: the most load per replica */
                uint32_t e = (uint32_t)ms_rng_below(rng, nr);
                double v = tot[e] / (sg_nrep(s, e) + 1.0);
                if (v > bv) {
                    bv = v;
                    best = (int32_t)e;
                }
            }
            m->e = best;
        }
        if (sg_move_ok(s, m)) return true;
    }
    return false;
}

/* One annealing chain from the state's current slots: geometric cooling from
 * tscale x half the mean worsening of random moves down to 1/1000 of that.
 * The best slots go to best; returns the best value. */
static double anneal(sg_state *s, const shared_ctx *c, const layer_data *d, uint64_t iters, double deadline,
                     uint64_t seed, double tscale, int32_t *best, uint32_t P, layer_job *job) {
    ms_rng rng;
    ms_rng_seed(&rng, seed);
    double cur = sg_value(s), bestv = cur;
    memcpy(best, sg_slots(s), P * sizeof *best);
    if (ms_now() >= deadline) {
        job->stopped = true;
        return bestv;
    }
    double sum = 0;
    uint32_t npos = 0;
    sg_move m;
    for (int i = 0; i < 64; i++) {
        if ((i & 7) == 7 && ms_now() >= deadline) break;
        if (!propose(s, c, d->tot, d->B, &rng, &m)) continue;
        double dv = sg_eval(s, &m) - cur;
        if (dv > 0) {
            sum += dv;
            npos++;
        }
    }
    double T0 = tscale * (npos ? 0.5 * sum / npos : 1e-6 * (fabs(cur) + 1e-9));
    double Tend = T0 * 1e-3, T = T0;
    double f = iters > 1 ? pow(Tend / T0, 1.0 / (double)(iters - 1)) : 1.0;
    uint64_t it = 0;
    for (; it < iters; it++, T *= f) {
        if ((it & 15) == 0 && ms_now() > deadline) {
            job->stopped = true;
            break;
        }
        if (!propose(s, c, d->tot, d->B, &rng, &m)) continue;
        double v = sg_eval(s, &m), dv = v - cur;
        if (dv <= 0 || ms_rng_uniform(&rng) < exp(-dv / T)) {
            sg_apply(s, &m);
            cur = sg_value(s);
            if (cur < bestv) {
                bestv = cur;
                memcpy(best, sg_slots(s), P * sizeof *best);
            }
        }
    }
    job->iters += it;
    return bestv;
}

/* Least-loaded surrogates cost a full pass over the windows per move. For
 * least-loaded and row-local routing with large windows, even chains anneal on
 * the incremental split surrogate only; odd chains anneal on it for this share
 * of their time (all their iterations), then refine on the least-loaded
 * surrogate (1/LEAST_ITER_DIV of the iterations, cooler). The simulation then
 * picks. With only small (token by token) windows every chain anneals on the
 * least-loaded surrogate for all its iterations. */
#define LEAST_TIME_SHARE 0.5
#define LEAST_ITER_DIV 8

static void search_layer(const shared_ctx *c, layer_job *job) {
    double start = ms_now();
    double deadline = start + job->budget_s;
    if (deadline > c->deadline) deadline = c->deadline;
    const ms_placement *p = c->init;
    uint32_t P = p->n_phys, l = job->layer;
    if (start >= deadline) { /* no time left for this layer: it keeps the initial placement */
        job->stopped = true;
        return;
    }
    layer_data d;
    job->st = layer_data_build(c, l, &d, &job->err);
    if (job->st != MS_OK) {
        layer_data_free(&d);
        return;
    }
    job->windows = d.B;
    sg_params prm = c->base;
    const int32_t *init = p->phy2log + (size_t)l * P;
    prm.n_inst = 0;
    for (uint32_t q = 0; q < P; q++) prm.n_inst += init[q] >= 0;
    sg_data sd = {d.B, d.cnt, d.ntok, d.orow, d.aoff, d.aid, c->dense_us, c->dense_fj, c->dense_mj};
    /* the traffic weight is relative to the initial surrogate value */
    double tw = prm.traffic_weight;
    prm.traffic_weight = 0;
    sg_power lpw;
    sg_state *s = NULL;
    job->st = sg_new(&prm, &sd, init, &s, &job->err);
    if (job->st == MS_OK && prm.pw) {
        /* power: each metric over the initial placement's (the value is then the sum of the weights) */
        lpw = *prm.pw;
        double m[3];
        sg_metrics(s, m);
        if (c->lm0) { /* the simulated figures: the surrogate then weighs changes as the simulation's objective does */
            const double *x = c->lm0 + (size_t)(l - c->l0) * 3;
            m[0] = x[0];
            m[1] = x[1];
            m[2] = x[2] / (double)c->nb0; /* per window */
        }
        for (int k = 0; k < 3; k++) lpw.norm[k] = m[k] > 0 ? m[k] : 1;
        prm.pw = &lpw;
        sg_free(s);
        s = NULL;
        job->st = sg_new(&prm, &sd, init, &s, &job->err);
    }
    /* energy: a crossing assignment costs cross_j, against the initial energy per window */
    double phys = 0;
    if (job->st == MS_OK && prm.pw && lpw.w[2] > 0 && c->cross_j > 0 && sd.orow && c->o->traffic_weight < 0) {
        double tot = 0;
        for (uint32_t r = 0; r < p->cluster.rows; r++)
            for (uint32_t e = 0; e < p->n_routed; e++) tot += sd.orow[(size_t)r * p->n_logical + e];
        phys = lpw.w[2] * c->cross_j * tot / ((double)c->plans[0]->n_batches * lpw.norm[2]);
    }
    if (job->st == MS_OK && (tw > 0 || phys > 0) && sd.orow) {
        prm.traffic_weight = tw * fabs(sg_value(s)) + phys;
        sg_free(s);
        s = NULL;
        job->st = sg_new(&prm, &sd, init, &s, &job->err);
    }
    if (job->st != MS_OK) {
        sg_free(s);
        layer_data_free(&d);
        return;
    }
    job->sg_init = job->sg_best = sg_value(s);
    sg_free(s);
    s = NULL;
    /* least-loaded: when every window is small enough to be routed token by
     * token, the split surrogate says little (whole tokens, a few per device):
     * every chain anneals on the least-loaded surrogate itself */
    bool all_tokens = d.aoff && d.aoff[d.B] > 0;
    for (uint32_t b = 0; all_tokens && b < d.B; b++) all_tokens = d.aoff[b + 1] > d.aoff[b] || d.ntok[b] == 0;
    bool two = prm.route == SG_LEAST && !all_tokens;
    sg_params pa = prm;
    pa.route = SG_SPLIT;
    uint64_t per = c->iters / c->chains;
    if (per < 1) per = 1;
    for (uint32_t j = 0; j < c->chains && job->st == MS_OK; j++) {
        /* each chain starts from the initial placement and gets its share of the remaining time */
        double now = ms_now(), dl = now + (deadline - now) / (c->chains - j);
        uint64_t seed = mix64(c->o->seed ^ mix64(((uint64_t)l << 20) + j + 1));
        int32_t *best = c->cand[j] + (size_t)l * P;
        double bv;
        if (two && j % 2 == 0) { /* even chains: the split surrogate only */
            job->st = sg_new(&pa, &sd, init, &s, &job->err);
            if (job->st != MS_OK) break;
            anneal(s, c, &d, per, dl, seed, 1.0, best, P, job);
            sg_free(s);
            s = NULL;
            job->st = sg_new(&prm, &sd, best, &s, &job->err); /* its value on the least-loaded surrogate */
            if (job->st != MS_OK) break;
            bv = sg_value(s);
        } else if (two) { /* odd chains: split, then least-loaded */
            job->st = sg_new(&pa, &sd, init, &s, &job->err);
            if (job->st != MS_OK) break;
            anneal(s, c, &d, per, now + (dl - now) * LEAST_TIME_SHARE, seed, 1.0, best, P, job);
            sg_free(s);
            s = NULL;
            job->st = sg_new(&prm, &sd, best, &s, &job->err);
            if (job->st != MS_OK) break;
            uint64_t pb = per / LEAST_ITER_DIV > 0 ? per / LEAST_ITER_DIV : 1;
            bv = anneal(s, c, &d, pb, dl, mix64(seed), 0.3, best, P, job);
        } else {
            job->st = sg_new(&prm, &sd, init, &s, &job->err);
            if (job->st != MS_OK) break;
            bv = anneal(s, c, &d, per, dl, seed, 1.0, best, P, job);
        }
        if (bv < job->sg_best) job->sg_best = bv;
        sg_free(s);
        s = NULL;
    }
    sg_free(s);
    layer_data_free(&d);
}

/* ------------------------------------------------------------ bounds */

/* Lower bound on every (batch, layer)'s imbalance: max(total / D, the hottest
 * expert's assignments over the most replicas it can get, the shared expert's
 * per replica) / (total / D); whole tokens round up unless routing splits. */
static ms_status imbalance_bounds(const ms_trace *t, const ms_batch_plan *pl, const ms_placement *p, bool split,
                                  uint32_t l0, uint32_t nl, double *lb /* [batches][nl] */, ms_error *err) {
    uint32_t E = p->n_logical, D = ms_cluster_devices(&p->cluster), k = t->top_k;
    uint32_t *cnt = ms_alloc_array(E, sizeof *cnt, err);
    if (!cnt) return MS_E_NOMEM;
    for (uint32_t li = 0; li < nl; li++) {
        uint32_t l = l0 + li;
        const int32_t *ph = p->phy2log + (size_t)(p->n_layers == 1 ? 0 : l) * p->n_phys;
        uint32_t routed = 0, shared = 0;
        for (uint32_t s = 0; s < p->n_phys; s++) {
            if (ph[s] < 0) continue;
            if (p->has_shared && (uint32_t)ph[s] == p->n_routed) shared++;
            else routed++;
        }
        uint32_t extra = routed > p->n_routed ? routed - p->n_routed : 0;
        double m = 1.0 + extra < D ? 1.0 + extra : D;
        for (uint64_t b = 0; b < pl->n_batches; b++) {
            memset(cnt, 0, E * sizeof *cnt);
            uint64_t n = pl->off[b + 1] - pl->off[b], tot = 0;
            for (uint64_t pos = pl->off[b]; pos < pl->off[b + 1]; pos++) {
                const uint16_t *ids = ms_trace_row(t, l, pl->tok[pos]);
                for (uint32_t j = 0; j < k; j++) cnt[ids[j]]++;
            }
            uint32_t mx = 0;
            for (uint32_t e = 0; e < p->n_routed && e < E; e++) {
                tot += cnt[e];
                if (cnt[e] > mx) mx = cnt[e];
            }
            if (p->has_shared) tot += n;
            double mean = (double)tot / D, v = mean, x = (double)mx / m;
            if (!split) {
                v = ceil(v);
                x = ceil(x);
            }
            if (x > v) v = x;
            if (p->has_shared && shared) {
                double y = (double)n / shared;
                if (!split) y = ceil(y);
                if (y > v) v = y;
            }
            lb[b * nl + li] = mean > 0 ? v / mean : 1.0;
        }
    }
    ms_free(cnt);
    return MS_OK;
}

/* ------------------------------------------------------------ driver */

/* The simulation as the search runs it: the options resolved as moesim
 * simulate resolves them, the presets, and the power model's coefficients
 * and caps (so points into the struct: it must not be copied). */
typedef struct resolved {
    ms_sim_opts so;
    ms_hw_preset hw;
    ms_model_preset model;
    bool power;                /* energy coefficients loaded */
    ms_energy_coeffs energy;
    ms_precision prec;
    ms_power_cap cap;          /* as applied (gpu_w NAN -> tdp_w) */
    ms_power_throttle thr;
    ms_sim_throttle throttle;
} resolved;

static ms_status resolve(const ms_trace *train, const ms_search_opts *o, const ms_cluster *cl, bool power, resolved *r,
                         ms_error *err) {
    memset(r, 0, sizeof *r);
    r->so = o->sim;
    ms_sim_opts *so = &r->so;
    if (so->cost_model == MS_COST_ROOFLINE) {
        if (o->origin_set && so->origin != MS_ORIGIN_DP)
            return ms_error_set(err, MS_E_INPUT, "--origin-rows applies to --cost-model mesh (roofline tokens start "
                                                 "on their data-parallel device)");
        so->origin = MS_ORIGIN_DP;
    } else {
        if (so->overlap != MS_OVERLAP_NONE)
            return ms_error_set(err, MS_E_INPUT, "--overlap applies to --cost-model roofline");
        if (so->route == MS_ROUTE_SPLIT)
            return ms_error_set(err, MS_E_INPUT, "--route split needs --cost-model roofline (the mesh model prices "
                                                 "whole tokens per replica)");
        if (power)
            return ms_error_set(err, MS_E_INPUT, "power objectives and caps need --cost-model roofline (the mesh "
                                                 "model has no FLOPs or bytes per device)");
    }
    if (so->layer >= 0 && (uint64_t)so->layer >= train->n_layers)
        return ms_error_set(err, MS_E_INPUT, "--layer %lld out of range: the trace has %u layers",
                            (long long)so->layer, train->n_layers);
    ms_status st;
    if (!so->model) {
        const char *mn = o->model_name ? o->model_name : ms_model_preset_guess(train->n_experts, train->top_k);
        if (mn) {
            if ((st = ms_model_preset_load(mn, &r->model, err)) != MS_OK) return st;
            so->model = &r->model;
        } else if (so->cost_model == MS_COST_ROOFLINE) {
            return ms_error_set(err, MS_E_INPUT, "no model preset matches %u experts, top-%u: give --model",
                                train->n_experts, train->top_k);
        }
    }
    if (!so->hw && (so->cost_model == MS_COST_ROOFLINE || o->hw_name)) {
        if ((st = ms_hw_preset_load(o->hw_name ? o->hw_name : "h100-sxm", &r->hw, err)) != MS_OK) return st;
        so->hw = &r->hw;
    }
    so->keep_records = true;
    so->threads = o->threads;
    so->throttle = NULL;
    if (!power) return MS_OK;
    if (o->energy) r->energy = *o->energy;
    else if ((st = ms_energy_load(o->energy_name ? o->energy_name : so->hw->name, &r->energy, err)) != MS_OK)
        return st;
    r->power = true;
    r->prec = so->model->expert_weight_bytes <= 1 ? MS_PREC_FP8 : MS_PREC_BF16;
    r->cap = o->cap;
    if (isnan(r->cap.gpu_w)) r->cap.gpu_w = r->energy.tdp_w;
    if (ms_power_cap_active(&r->cap)) {
        st = ms_power_throttle_init(&r->thr, &r->energy, &r->cap, r->prec, ms_cluster_devices(cl), cl->cols,
                                    &r->throttle, err);
        if (st != MS_OK) return st;
        so->throttle = &r->throttle;
    }
    return MS_OK;
}

typedef struct phase_hook {
    ms_power_phases *ph;
    uint64_t nl, l0;
    int failed;
} phase_hook;

static void phase_step(void *ctx, const ms_sim_step *st) {
    phase_hook *h = ctx;
    ms_error e = {0};
    if (ms_power_phases_set_sim(h->ph, st->rec->batch * h->nl + (st->rec->layer - h->l0), st, &e) != MS_OK)
        h->failed = 1;
}

/* Simulates p on pl; with pres, also prices it with the power model. */
static ms_status simulate(const ms_trace *t, const ms_batch_plan *pl, ms_placement *p, const resolved *r,
                          ms_sim_result **res, ms_power_result **pres, ms_error *err) {
    *res = NULL;
    if (pres) *pres = NULL;
    ms_status st = MS_OK;
    if (!p->log2phy && (st = ms_placement_index(p, err)) != MS_OK) return st;
    if (!pres) return ms_sim_run(t, pl, p, &r->so, NULL, res, err);
    uint64_t nl = r->so.layer >= 0 ? 1 : t->n_layers, l0 = r->so.layer >= 0 ? (uint64_t)r->so.layer : 0;
    phase_hook h = {NULL, nl, l0, 0};
    st = ms_power_phases_new(ms_cluster_devices(&p->cluster), pl->n_batches * nl, &h.ph, err);
    if (st != MS_OK) return st;
    h.ph->precision = r->prec;
    ms_sim_hooks hooks = {phase_step, &h};
    st = ms_sim_run(t, pl, p, &r->so, &hooks, res, err);
    if (st == MS_OK && h.failed)
        st = ms_error_set(err, MS_E_INTERNAL, "search: the simulator gave a step the power model cannot read");
    if (st == MS_OK) {
        h.ph->tokens = (double)(*res)->summary.tokens;
        st = ms_power_compute(h.ph, &r->energy, pres, err);
    }
    ms_power_phases_free(h.ph);
    if (st != MS_OK) {
        ms_sim_result_free(*res);
        *res = NULL;
    }
    return st;
}

/* Scores simulated candidates: the objective and its value per evaluated
 * layer. Power objectives read the power result: time = mean layer time,
 * peak = the highest phase peak, energy = per token (per layer: joules);
 * mix weighs each over the first candidate scored (the initial placement). */
typedef struct scorer {
    ms_search_objective obj;
    double mix[3];
    uint32_t nl;
    double *buf;        /* [batches] */
    double *lm;         /* [nl][3] scratch */
    double *lm0;        /* [nl][3] the initial placement's */
    double m0[3];
    bool have0;
} scorer;

static void score(scorer *sc, const ms_sim_result *res, const ms_power_result *pr, double *f, double *lv) {
    uint32_t nl = sc->nl;
    if (!obj_needs_power(sc->obj)) {
        *f = ms_search_objective_value(&res->summary, sc->obj);
        layer_values(res, nl, sc->obj, lv, sc->buf);
        return;
    }
    uint64_t nb = nl ? res->n_records / nl : 0;
    double m[3] = {res->summary.layer_us.mean, pr->peak_w, pr->energy_per_token_j};
    for (uint32_t li = 0; li < nl; li++) {
        double t = 0, pk = 0, e = 0;
        for (uint64_t b = 0; b < nb; b++) {
            uint64_t i = b * nl + li;
            t += res->records[i].layer_us;
            if (pr->phase_peak_w[i] > pk) pk = pr->phase_peak_w[i];
            e += pr->phase_energy_j[i];
        }
        double *x = sc->lm + (size_t)li * 3;
        x[0] = nb ? t / (double)nb : 0;
        x[1] = pk;
        x[2] = e;
    }
    if (!sc->have0) {
        memcpy(sc->m0, m, sizeof m);
        memcpy(sc->lm0, sc->lm, (size_t)nl * 3 * sizeof(double));
        sc->have0 = true;
    }
    int k = sc->obj == MS_OBJ_PEAK_POWER ? 1 : 2;
    if (sc->obj != MS_OBJ_MIX) {
        *f = m[k];
        for (uint32_t li = 0; li < nl; li++) lv[li] = sc->lm[(size_t)li * 3 + k];
        return;
    }
    *f = 0;
    for (int q = 0; q < 3; q++) *f += sc->mix[q] * m[q] / (sc->m0[q] > 0 ? sc->m0[q] : 1);
    for (uint32_t li = 0; li < nl; li++) {
        lv[li] = 0;
        for (int q = 0; q < 3; q++) {
            double z = sc->lm0[(size_t)li * 3 + q];
            lv[li] += sc->mix[q] * sc->lm[(size_t)li * 3 + q] / (z > 0 ? z : 1);
        }
    }
}

/* Simulates and scores candidate q. */
static ms_status eval_cand(const ms_trace *t, const ms_batch_plan *pl, ms_placement *q, const resolved *r, scorer *sc,
                           double *f, double *lv, ms_error *err) {
    ms_sim_result *res = NULL;
    ms_power_result *pr = NULL;
    ms_status st = simulate(t, pl, q, r, &res, obj_needs_power(sc->obj) ? &pr : NULL, err);
    if (st == MS_OK) score(sc, res, pr, f, lv);
    ms_sim_result_free(res);
    ms_power_result_free(pr);
    return st;
}

/* A copy of init whose searched layers take the slots of cand (re-indexed:
 * replicas in ascending slot order). */
static ms_status placement_from(const ms_placement *init, const int32_t *slots, ms_placement **out, ms_error *err) {
    ms_placement *q = NULL;
    ms_status st = ms_placement_new(init->n_layers, &init->cluster, init->n_routed, init->has_shared, &q, err);
    if (st != MS_OK) return st;
    memcpy(q->phy2log, slots, (size_t)init->n_layers * init->n_phys * sizeof *slots);
    st = ms_placement_index(q, err);
    if (st != MS_OK) {
        ms_placement_free(q);
        return st;
    }
    *out = q;
    return MS_OK;
}

ms_status ms_search_evaluate(const ms_trace *t, const ms_placement *p, const ms_search_opts *o,
                             ms_search_metrics *out, ms_error *err) {
    memset(out, 0, sizeof *out);
    if (!t || !p || !o) return ms_error_set(err, MS_E_INPUT, "search: no trace, placement or options");
    resolved rs;
    ms_status st = resolve(t, o, &p->cluster, true, &rs, err);
    if (st != MS_OK) return st;
    ms_batch_plan *plan = NULL;
    ms_placement *q = NULL;
    ms_sim_result *res = NULL;
    ms_power_result *pr = NULL;
    st = ms_batch_plan_build(t, &o->batch, ms_cluster_devices(&p->cluster), &plan, err);
    if (st == MS_OK) st = ms_placement_clone(p, &q, err);
    if (st == MS_OK) st = simulate(t, plan, q, &rs, &res, &pr, err);
    if (st == MS_OK) {
        const ms_sim_summary *s = &res->summary;
        out->layer_us_mean = s->layer_us.mean;
        out->layer_us_p99 = s->layer_us.p99;
        out->imbalance_mean = s->imbalance.mean;
        out->peak_w = pr->peak_w;
        out->energy_per_token_j = pr->energy_per_token_j;
        out->energy_j = pr->total_j;
        out->throttled_us = s->throttled_us;
        out->clock_min = s->clock_min;
    }
    ms_power_result_free(pr);
    ms_sim_result_free(res);
    ms_placement_free(q);
    ms_batch_plan_free(plan);
    return st;
}

ms_status ms_search_run(const ms_trace *train, const ms_place_input *in, const ms_search_opts *o,
                        ms_placement **out, ms_error *err) {
    *out = NULL;
    double t0 = ms_now();
    if (!train || !o) return ms_error_set(err, MS_E_INPUT, "search: no trace or options");
    if (!(o->time_limit_s > 0) || !isfinite(o->time_limit_s))
        return ms_error_set(err, MS_E_INPUT, "search: the time limit must be a positive number of seconds");
    if (o->chains < 1 || o->chains > MAX_CHAINS)
        return ms_error_set(err, MS_E_INPUT, "search: chains must be 1..%d", MAX_CHAINS);
    if ((unsigned)o->objective > MS_OBJ_MIX) return ms_error_set(err, MS_E_INPUT, "search: bad objective");
    if (o->objective == MS_OBJ_MIX &&
        !(o->mix[0] >= 0 && o->mix[1] >= 0 && o->mix[2] >= 0 && o->mix[0] + o->mix[1] + o->mix[2] > 0))
        return ms_error_set(err, MS_E_INPUT, "search: the mix weights must be >= 0 and not all 0");

    resolved rs;
    ms_status st = resolve(train, o, o->init ? &o->init->cluster : &o->place.cluster,
                           obj_is_power(o->objective) || o->cap_set, &rs, err);
    if (st != MS_OK) return st;
    const ms_sim_opts so = rs.so;

    /* the initial placement */
    ms_placement *init = NULL, *best = NULL;
    ms_stats *stats = NULL;
    ms_loads *loads = NULL;
    ms_batch_plan *plans[MAX_PLANS] = {0};
    uint32_t n_plans = 0;
    ms_sim_result *res = NULL;
    int32_t *cand[MAX_CHAINS + 1] = {0};
    layer_job *jobs = NULL;
    double *vals = NULL, *buf = NULL, *lb = NULL, *dense = NULL, *clock_tab = NULL;
    scorer sc = {o->objective, {o->mix[0], o->mix[1], o->mix[2]}, 0, NULL, NULL, NULL, {0, 0, 0}, false};
    if (o->init) {
        st = ms_placement_clone(o->init, &init, err);
    } else {
        ms_place_input pin = {0};
        if (in) {
            pin = *in;
        } else {
            ms_stats_opts sto;
            ms_stats_opts_default(&sto);
            sto.threads = o->threads;
            sto.coact = strcmp(o->init_algo, "coact") == 0 || strcmp(o->init_algo, "balance-coact") == 0;
            st = ms_stats_compute(train, &sto, &stats, err);
            if (st == MS_OK) st = ms_stats_to_loads(stats, &loads, err);
            pin.loads = loads;
            pin.stats = stats;
            pin.digest = train->digest;
        }
        if (st == MS_OK) {
            ms_place_opts po = o->place;
            po.algo = o->init_algo ? o->init_algo : "eplb";
            if (strcmp(po.algo, "search") == 0) st = ms_error_set(err, MS_E_INPUT, "--init cannot be search itself");
            else st = ms_place_run(&pin, &po, &init, err);
        }
    }
    if (st != MS_OK) goto out;
    if (init->n_layers != train->n_layers || init->n_routed < train->n_experts) {
        st = ms_error_set(err, MS_E_INPUT,
                          "search: the initial placement has %u layers and %u routed experts, the trace %u and %u",
                          init->n_layers, init->n_routed, train->n_layers, train->n_experts);
        goto out;
    }
    if (!init->log2phy && (st = ms_placement_index(init, err)) != MS_OK) goto out;
    const ms_cluster *cl = &init->cluster;
    uint32_t D = ms_cluster_devices(cl), P = init->n_phys, L = init->n_layers;

    /* batches: the plan evaluated, plus other request orders for the surrogate */
    st = ms_batch_plan_build(train, &o->batch, D, &plans[0], err);
    if (st != MS_OK) goto out;
    n_plans = 1;
    uint64_t nwin = plans[0]->n_batches;
    if (o->batch.mode != MS_BATCH_PER_REQUEST)
        while (nwin < o->min_windows && n_plans < MAX_PLANS) {
            ms_batch_opts bo = o->batch;
            bo.seed = mix64(o->batch.seed + n_plans);
            st = ms_batch_plan_build(train, &bo, D, &plans[n_plans], err);
            if (st != MS_OK) goto out;
            nwin += plans[n_plans++]->n_batches;
        }

    /* the initial placement, simulated */
    uint32_t l0 = so.layer >= 0 ? (uint32_t)so.layer : 0, nl = so.layer >= 0 ? 1 : L;
    uint32_t nc = o->chains;
    uint64_t nb = plans[0]->n_batches;
    vals = ms_alloc_array((size_t)(nc + 2) * nl, sizeof *vals, err); /* [candidate][layer] */
    buf = ms_alloc_array(nb ? nb : 1, sizeof *buf, err);
    sc.nl = nl;
    sc.buf = buf;
    sc.lm = ms_alloc_array((size_t)nl * 3, sizeof(double), err);
    sc.lm0 = ms_alloc_array((size_t)nl * 3, sizeof(double), err);
    if (!vals || !buf || !sc.lm || !sc.lm0) {
        st = MS_E_NOMEM;
        goto out;
    }
    double te = ms_now(), f_init;
    st = eval_cand(train, plans[0], init, &rs, &sc, &f_init, vals, err);
    if (st != MS_OK) goto out;
    double t_eval = ms_now() - te;

    /* the surrogate's parameters */
    shared_ctx c;
    memset(&c, 0, sizeof c);
    c.t = train;
    c.o = o;
    c.so = &so;
    c.init = init;
    c.plans = (const ms_batch_plan *const *)plans;
    c.n_plans = n_plans;
    c.chains = nc;
    sg_params *bp = &c.base;
    bp->cl = *cl;
    bp->n_logical = init->n_logical;
    bp->n_routed = init->n_routed;
    bp->shared_id = init->has_shared ? (int32_t)init->n_routed : -1;
    switch (so.route) {
    case MS_ROUTE_ROUND_ROBIN: bp->route = SG_RR; break;
    case MS_ROUTE_BALANCED: bp->route = SG_BALANCED; break;
    case MS_ROUTE_LEAST_LOADED:
    case MS_ROUTE_ROW_LOCAL: bp->route = SG_LEAST; break;
    default: bp->route = SG_SPLIT; break;
    }
    double cf = so.capacity_factor;
    if (isnan(cf)) cf = so.route == MS_ROUTE_BALANCED ? 2.0 : 0.0;
    bp->cf = cf > 0 ? cf : 0;
    bp->keff = train->top_k + (init->has_shared ? 1 : 0);
    bool imb = obj_is_imbalance(o->objective);
    ms_roofline rf;
    if (imb) {
        bp->unit = SG_ASSIGN;
    } else if (so.cost_model == MS_COST_MESH) {
        bp->unit = SG_MESH;
        bp->chunk = so.mesh_chunk ? so.mesh_chunk : 32;
        bp->unit_us = so.mesh_expert_us;
    } else {
        bp->unit = SG_ROOF;
        ms_roofline_init(so.hw, so.model, init->has_shared, &rf);
        bp->tok_flops_us = rf.expert_flops_tok / rf.flops_per_us;
        bp->inst_bytes_us = rf.expert_wbytes / rf.hbm_per_us;
        bp->tok_bytes_us = rf.act_bytes_tok / rf.hbm_per_us;
    }
    if (obj_is_power(o->objective)) {
        /* the power surrogate: coefficients, caps, weights (norms per layer) */
        const ms_energy_coeffs *ec = &rs.energy;
        double pj = ec->pj_per_flop[rs.prec] * 1e-12, pb = 8.0 * ec->hbm_pj_per_bit * 1e-12;
        sg_power *pw = &c.pw;
        pw->tok_flop_j = rf.expert_flops_tok * pj;
        pw->tok_hbm_j = rf.act_bytes_tok * pb;
        pw->inst_hbm_j = rf.expert_wbytes * pb;
        pw->idle_w = ec->idle_w;
        pw->alpha = ec->freq_exponent;
        pw->min_clock = ec->min_clock;
        pw->gpu_w = rs.cap.gpu_w;
        pw->row_w = rs.cap.row_w;
        pw->cluster_w = rs.cap.cluster_w;
        double wt = o->objective == MS_OBJ_MIX ? o->mix[0] : o->objective == MS_OBJ_TIME_UNDER_CAP;
        double wp = o->objective == MS_OBJ_MIX ? o->mix[1] : o->objective == MS_OBJ_PEAK_POWER;
        double we = o->objective == MS_OBJ_MIX ? o->mix[2] : o->objective == MS_OBJ_ENERGY;
        pw->w[0] = wt, pw->w[1] = wp, pw->w[2] = we;
        pw->norm[0] = pw->norm[1] = pw->norm[2] = 1;
        pw->peak_tail = PEAK_TAIL;
        clock_tab = sg_clock_table_new(pw->alpha, pw->min_clock);
        if (!clock_tab) {
            st = ms_error_set(err, MS_E_NOMEM, "search: out of memory");
            goto out;
        }
        pw->clock_tab = clock_tab;
        bp->pw = pw;
        if (obj_needs_power(o->objective)) {
            c.lm0 = sc.lm0;
            c.l0 = l0;
            c.nb0 = nb;
        }
        /* a crossing assignment: its dispatch and combine bytes over the network instead of NVLink */
        c.cross_j = (so.model->dispatch_bytes + so.model->combine_bytes) * 8.0 *
                    (ms_energy_net_pj_per_bit(ec) - ec->nvlink_pj_per_bit) * 1e-12;
        if (c.cross_j < 0) c.cross_j = 0;
        /* the dense work of every window on every device: where its tokens start */
        uint64_t B = 0;
        for (uint32_t i = 0; i < n_plans; i++) B += plans[i]->n_batches;
        dense = ms_calloc_array((size_t)3 * B * D, sizeof *dense, err);
        if (!dense) {
            st = MS_E_NOMEM;
            goto out;
        }
        double *dus = dense, *dfj = dense + B * D, *dmj = dense + 2 * B * D;
        uint64_t w = 0;
        for (uint32_t i = 0; i < n_plans; i++)
            for (uint64_t b = 0; b < plans[i]->n_batches; b++, w++) {
                for (uint64_t q = plans[i]->off[b]; q < plans[i]->off[b + 1]; q++) dfj[w * D + plans[i]->origin[q]] += 1;
                for (uint32_t dd = 0; dd < D; dd++) {
                    double ot = dfj[w * D + dd];
                    if (ot <= 0) continue;
                    double tf = ot * rf.dense_flops_tok / rf.flops_per_us, tb = rf.dense_bytes / rf.hbm_per_us;
                    dus[w * D + dd] = tf > tb ? tf : tb;
                    dfj[w * D + dd] = ot * rf.dense_flops_tok * pj;
                    dmj[w * D + dd] = rf.dense_bytes * pb;
                }
            }
        c.dense_us = dus;
        c.dense_fj = dfj;
        c.dense_mj = dmj;
    }
    bp->tail = obj_quantile(o->objective) > 0 ? 1.0 - obj_quantile(o->objective) : 0;
    bp->time_weights = !imb;
    if (so.cost_model == MS_COST_MESH) bp->traffic = SG_TR_HOPS;
    else bp->traffic = so.route == MS_ROUTE_ROW_LOCAL ? SG_TR_ROWLOCAL : SG_TR_CROSS;
    bp->traffic_weight = o->traffic_weight >= 0 ? o->traffic_weight : (imb ? 0.0 : 0.1);
    if (o->traffic_weight < 0 && obj_is_power(o->objective)) /* relative: the time part only */
        bp->traffic_weight = bp->pw->w[0] > 0 ? 0.1 * bp->pw->w[0] / (bp->pw->w[0] + bp->pw->w[1] + bp->pw->w[2]) : 0;
    bp->allow_dup = false;
    c.iters = o->iterations ? o->iterations : (uint64_t)P * 400 < 20000 ? 20000 : (uint64_t)P * 400;

    /* time: the search ends early enough to simulate the candidates */
    double reserve = (nc + 2.5) * t_eval * 1.25 + 0.02 * o->time_limit_s;
    c.deadline = t0 + o->time_limit_s - reserve;
    for (uint32_t j = 0; j < nc; j++) {
        cand[j] = ms_alloc_array((size_t)L * P, sizeof(int32_t), err);
        if (!cand[j]) {
            st = MS_E_NOMEM;
            goto out;
        }
        memcpy(cand[j], init->phy2log, (size_t)L * P * sizeof(int32_t));
    }
    c.cand = cand;
    jobs = ms_calloc_array(nl, sizeof *jobs, err);
    if (!jobs) {
        st = MS_E_NOMEM;
        goto out;
    }
    int nth = o->threads > 0 ? o->threads : ms_thread_count();
    if (nth < 1) nth = 1;
    if ((uint32_t)nth > nl) nth = (int)nl;
    double now = ms_now(), per_layer = (c.deadline - now) * nth / nl;
    for (uint32_t li = 0; li < nl; li++) {
        jobs[li].layer = l0 + li;
        jobs[li].budget_s = per_layer;
    }
    bool searched = c.deadline > now;
    if (searched) {
#ifdef MOESIM_HAVE_OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(nth)
#endif
        for (uint32_t li = 0; li < nl; li++) search_layer(&c, &jobs[li]);
        for (uint32_t li = 0; li < nl; li++)
            if (jobs[li].st != MS_OK) {
                st = jobs[li].st;
                if (err) *err = jobs[li].err;
                goto out;
            }
    }

    /* full evaluation: every chain's best, then the per-layer best of all */
    double fbest = f_init;
    int bestj = -1; /* -1 = init */
    uint32_t evaluated = 1;
    bool have[MAX_CHAINS + 2] = {true};
    double fval[MAX_CHAINS + 2] = {f_init};
    for (uint32_t j = 0; searched && j < nc; j++) {
        if (ms_now() + t_eval * 1.1 > t0 + o->time_limit_s) break;
        ms_placement *q = NULL;
        if ((st = placement_from(init, cand[j], &q, err)) != MS_OK) goto out;
        st = eval_cand(train, plans[0], q, &rs, &sc, &fval[j + 1], vals + (size_t)(j + 1) * nl, err);
        ms_placement_free(q);
        if (st != MS_OK) goto out;
        have[j + 1] = true;
        evaluated++;
        if (fval[j + 1] < fbest) {
            fbest = fval[j + 1];
            bestj = (int)j;
        }
    }
    /* composite: per layer the candidate (init = index 0) with the best layer value */
    cand[nc] = ms_alloc_array((size_t)L * P, sizeof(int32_t), err);
    if (!cand[nc]) {
        st = MS_E_NOMEM;
        goto out;
    }
    memcpy(cand[nc], init->phy2log, (size_t)L * P * sizeof(int32_t));
    uint32_t sources = 0; /* bit j: some layer takes candidate j (0 = init) */
    for (uint32_t li = 0; li < nl; li++) {
        uint32_t bj = 0;
        for (uint32_t j = 1; j <= nc; j++)
            if (have[j] && vals[(size_t)j * nl + li] < vals[(size_t)bj * nl + li]) bj = j;
        sources |= 1u << bj;
        if (bj > 0) {
            size_t off = (size_t)(l0 + li) * P;
            memcpy(cand[nc] + off, cand[bj - 1] + off, P * sizeof(int32_t));
        }
    }
    bool differs = (sources & (sources - 1)) != 0;
    /* only worth simulating when it mixes candidates */
    if (differs && ms_now() + t_eval * 1.1 <= t0 + o->time_limit_s) {
        ms_placement *q = NULL;
        if ((st = placement_from(init, cand[nc], &q, err)) != MS_OK) goto out;
        double f;
        st = eval_cand(train, plans[0], q, &rs, &sc, &f, vals + (size_t)(nc + 1) * nl, err);
        ms_placement_free(q);
        if (st != MS_OK) goto out;
        evaluated++;
        if (f < fbest) {
            fbest = f;
            bestj = (int)nc;
        }
    }

    if (bestj < 0) {
        st = ms_placement_clone(init, &best, err);
    } else {
        st = placement_from(init, cand[bestj], &best, err);
    }
    if (st != MS_OK) goto out;

    /* metadata */
    snprintf(best->algorithm, sizeof best->algorithm, "search");
    /* layer_bound: the initial algorithm's bounds on each layer's maximum
     * device load (the slot budget is the same); lower_bound: a bound on the
     * search objective (imbalance only, when capacity cannot drop or move
     * assignments) */
    ms_free(best->layer_bound);
    best->layer_bound = NULL;
    best->lower_bound = NAN;
    if (init->layer_bound) {
        best->layer_bound = ms_alloc_array(L, sizeof(double), err);
        if (!best->layer_bound) {
            st = MS_E_NOMEM;
            goto out;
        }
        memcpy(best->layer_bound, init->layer_bound, L * sizeof(double));
    }
    if (imb && (bp->cf == 0 || so.route == MS_ROUTE_SPLIT || so.overflow == MS_OVERFLOW_ACCEPT)) {
        lb = ms_alloc_array(nb * nl > 0 ? nb * nl : 1, sizeof *lb, err);
        if (!lb) {
            st = MS_E_NOMEM;
            goto out;
        }
        st = imbalance_bounds(train, plans[0], best, so.route == MS_ROUTE_SPLIT, l0, nl, lb, err);
        if (st != MS_OK) goto out;
        best->lower_bound = stat_of(lb, nb * nl, obj_quantile(o->objective));
    }
    uint64_t iters = 0;
    bool stopped = !searched;
    double sgi = 0, sgb = 0;
    uint32_t windows = 0;
    for (uint32_t li = 0; li < nl; li++) {
        iters += jobs[li].iters;
        stopped |= jobs[li].stopped;
        sgi += jobs[li].sg_init / nl;
        sgb += jobs[li].sg_best / nl;
        windows = jobs[li].windows;
    }
    const char *chosen = bestj < 0 ? "init" : bestj == (int)nc ? "per-layer" : "chain";
    snprintf(best->params, sizeof best->params,
             "{\"init\":\"%s\",\"objective\":\"%s\",\"cost_model\":\"%s\",\"route\":\"%s\",\"batch\":\"%s\","
             "\"layers\":%u,\"windows\":%u,\"chains\":%u,\"iterations\":%llu,\"seed\":%llu,\"time_limit_s\":%g,"
             "\"stopped_by_time\":%s,\"surrogate_init\":%.6g,\"surrogate_best\":%.6g,\"simulations\":%u,"
             "\"init_objective\":%.9g,\"chosen\":\"%s\"}",
             o->init ? (o->init->algorithm[0] ? o->init->algorithm : "given") : o->init_algo, ms_search_objective_name(o->objective),
             ms_cost_model_name(so.cost_model), ms_route_name(so.route), ms_batch_mode_name(o->batch.mode), nl,
             windows, nc, (unsigned long long)iters, (unsigned long long)o->seed, o->time_limit_s,
             stopped ? "true" : "false", sgi, sgb, evaluated, f_init, chosen);
    size_t pl = strlen(best->params);
    if (rs.power && pl > 0 && pl + 120 < sizeof best->params) { /* the coefficients and caps simulated with */
        char g[24] = "null", rw[24] = "null", cw[24] = "null";
        if (isfinite(rs.cap.gpu_w)) snprintf(g, sizeof g, "%.6g", rs.cap.gpu_w);
        if (isfinite(rs.cap.row_w)) snprintf(rw, sizeof rw, "%.6g", rs.cap.row_w);
        if (isfinite(rs.cap.cluster_w)) snprintf(cw, sizeof cw, "%.6g", rs.cap.cluster_w);
        snprintf(best->params + pl - 1, sizeof best->params - pl + 1,
                 ",\"energy\":\"%.20s\",\"gpu_cap_w\":%s,\"row_cap_w\":%s,\"cluster_cap_w\":%s}", rs.energy.name, g,
                 rw, cw);
    }
    best->objective = fbest;
    best->trace_digest = train->digest;
    best->runtime_s = ms_now() - t0;
    *out = best;
    best = NULL;
out:
    ms_sim_result_free(res);
    ms_placement_free(best);
    ms_placement_free(init);
    ms_stats_free(stats);
    ms_loads_free(loads);
    for (uint32_t i = 0; i < n_plans; i++) ms_batch_plan_free(plans[i]);
    for (uint32_t j = 0; j <= MAX_CHAINS; j++) ms_free(cand[j]);
    ms_free(jobs);
    ms_free(vals);
    ms_free(buf);
    ms_free(lb);
    ms_free(dense);
    ms_free(clock_tab);
    ms_free(sc.lm);
    ms_free(sc.lm0);
    return st;
}
