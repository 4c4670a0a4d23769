/* spec.c - a sweep's grid from SPEC.json and the evaluator that places and
 * simulates one point, or replays a trace through re-placement policies,
 * with the library. See moesim/sweep.h. */
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "moesim/deploy.h"
#include "moesim/online.h"
#include "moesim/place.h"
#include "moesim/power.h"
#include "moesim/sim.h"
#include "moesim/stats.h"
#include "moesim/sweep.h"

/* ---------------------------------------------------------- columns */

/* Every column; those from C_POLICY to C_TOTAL_AFTER exist only in specs
 * with replay points (other specs keep their columns, byte for byte). */
enum {
    C_POINT, C_KIND, C_TRACE, C_ALGO, C_ROUTE, C_ROWS, C_COLS, C_SLOTS, C_BATCH, C_OBJ, C_LB, C_BATCHES, C_TOKENS,
    C_IMB_MEAN, C_IMB_P50, C_IMB_P95, C_IMB_P99, C_IMB_MAX, C_LT_MEAN, C_LT_P95, C_LT_P99, C_BT_P99, C_TPS,
    C_DROPPED, C_REROUTED, C_INTRA, C_INTER, C_UTIL, C_TOTAL_PARAMS, C_ACTIVE_PARAMS, C_GPUS_INFER, C_INFER_J,
    C_INFER_W, C_GPUS_TRAIN, C_TRAIN_J, C_TRAIN_SITE_W, C_POLICY, C_EVERY, C_EVERY_UNIT, C_WINDOW, C_WINDOW_UNIT,
    C_MAX_MOVES, C_MIGRATION, C_DECISIONS, C_REPLACEMENTS, C_SKIPPED, C_MOVED, C_MOVED_INTER, C_BYTES_MOVED,
    C_BYTES_MOVED_INTER, C_SERVE_US, C_MIGRATION_US, C_TOTAL_US, C_IMB_BEFORE, C_IMB_AFTER, C_TOTAL_BEFORE,
    C_TOTAL_AFTER, C_ERROR, C_COUNT
};

static const char *const column_names[C_COUNT] = {
    "point", "kind", "trace", "algorithm", "route", "rows", "cols", "slots", "batch",
    "placement_objective", "placement_lower_bound", "batches", "tokens", "imbalance_mean", "imbalance_p50",
    "imbalance_p95", "imbalance_p99", "imbalance_max", "layer_us_mean", "layer_us_p95", "layer_us_p99",
    "batch_us_p99", "tokens_per_second", "dropped", "rerouted", "intra_row_bytes", "inter_row_bytes",
    "gpu_utilisation", "total_params", "active_params", "gpus_infer", "infer_j_per_token", "infer_avg_w",
    "gpus_train", "train_j_per_token", "train_site_w", "policy", "every", "every_unit", "window", "window_unit",
    "max_moves", "migration", "decisions", "replacements", "skipped", "replicas_moved", "replicas_moved_inter_row",
    "bytes_moved", "bytes_moved_inter_row", "serve_us", "migration_us", "total_us", "imbalance_before",
    "imbalance_after", "total_us_before", "total_us_after", "error"};

static const bool column_numeric[C_COUNT] = {
    true, false, false, false, false, true, true, true, false, true, true, true, true, true, true, true, true,
    true, true, true, true, true, true, true, true, true, true, true, true, true, true, true, true, true, true,
    true, false, true, false, true, false, true, false, true, true, true, true, true, true, true, true, true,
    true, true, true, true, true, false};

typedef struct sw_trace {
    char *label, *path, *eval_path;
    double split;
    uint64_t split_seed;
    uint32_t experts;
    ms_phase phase;
    /* loaded on first use */
    bool loaded;
    ms_status load_st;
    ms_error load_err;
    ms_trace *full, *train, *test; /* train/test may alias full */
    ms_stats *stats;
    ms_loads *loads;
    bool have_model;
    ms_model_preset model;
} sw_trace;

typedef struct sw_algo {
    char label[64];
    char algo[32];
    ms_place_opts po;
} sw_algo;

typedef struct sw_batch {
    ms_batch_mode mode;
    uint32_t tokens, batch;
    char label[48];
} sw_batch;

/* The lists of the "replay" block, in the order they are read. */
typedef enum replay_list {
    RL_POLICIES, RL_EVERY, RL_WINDOW, RL_MAX_MOVES, RL_MIGRATION, RL_INIT, RL_COUNT
} replay_list;

static const char *const replay_list_keys[RL_COUNT] = {"policies", "every",     "window",
                                                       "max_moves", "migration", "init"};

/* Entries of a replay list; max_moves one fewer, so that an oracle's rivals
 * (periodic EPLB and one incremental run per budget) stay within the 16 that
 * ms_replay_run takes. */
#define SW_LIST 16

/* One replay of a point's coordinates: a policy and the entries of the
 * lists it takes (-1 where the list does not apply to it). */
typedef struct sw_run {
    ms_rebalance policy;
    int every, window, moves, migration;
} sw_run;

typedef struct sw_replay {
    size_t n[RL_COUNT];             /* entries of each list */
    ms_rebalance policies[SW_LIST];
    ms_span every[SW_LIST], window[SW_LIST]; /* window n 0: the interval */
    uint32_t moves[SW_LIST];
    ms_migration migration[SW_LIST];
    char init[SW_LIST][32];         /* algorithms of the initial placement */
    uint32_t groups;                /* EPLB's expert groups (initial placement and periodic EPLB) */
    uint64_t after_request;         /* UINT64_MAX: no split */
    double variance_weight;
    ms_hw_preset hw;                /* the links copies use */
    /* the runs of one point's coordinates (replay_run_at) */
    bool want[MS_REBALANCE_COUNT];  /* the policies listed */
    size_t n_window_runs, n_migration_runs; /* windows and modes that multiply (1 without an online policy) */
    size_t per_group;               /* runs per (interval, window, mode) */
    size_t n_runs;
} sw_replay;

struct ms_sweep_spec {
    char *label;
    sw_trace *traces;
    size_t nt;
    sw_algo *algos;
    size_t na;
    ms_route *routes;
    size_t nr;
    ms_cluster *clusters;
    size_t nc;
    uint32_t *slots;
    size_t ns;
    sw_batch *batches;
    size_t nb;
    /* options */
    ms_cost_model cost;
    bool have_hw, have_model;
    ms_hw_preset hw;
    ms_model_preset model;
    double capacity_factor;
    ms_overflow overflow;
    bool origin_set;
    ms_origin origin;
    ms_overlap overlap;
    int64_t layer;
    uint64_t seed;
    bool shared;
    ms_mesh_table table;
    bool need_coact;
    /* scaling-model points */
    size_t n_scale;
    ms_scale_opts scale;
    bool scale_done;
    ms_status scale_st;
    ms_error scale_err;
    ms_scale_result *scale_res;
    /* replay points */
    bool has_replay;
    sw_replay rp;
    uint64_t grid, n_replay, points, digest;
    int threads_per_point;
    pthread_mutex_t mu;
    /* the output columns: the replay ones only in specs with replay points */
    int col_of[C_COUNT];        /* column -> cell index, -1 when absent */
    const char *col_names[C_COUNT];
    bool col_numeric[C_COUNT];
    size_t n_cols;
};

/* ------------------------------------------------------------ parse */

static char *dupstr(const char *s) {
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d) memcpy(d, s, n + 1);
    return d;
}

static ms_status bad(ms_error *err, const char *label, const char *fmt, const char *what) {
    return ms_error_set(err, MS_E_INPUT, "%s: %s%s", label, fmt, what ? what : "");
}

/* A list key: absent -> 0 entries (*a NULL); a scalar -> 1 entry. */
static size_t list_of(const json_t *root, const char *key, const json_t **a) {
    const json_t *v = json_object_get(root, key);
    *a = v;
    if (!v) return 0;
    return json_is_array(v) ? json_array_size(v) : 1;
}

static const json_t *item(const json_t *a, size_t i) { return json_is_array(a) ? json_array_get(a, i) : a; }

/* The product of n list sizes, saturating at UINT64_MAX (six lists of 2048
 * entries wrapped 2^66 to 0). Cannot fail. */
static uint64_t product(const size_t *dims, size_t n) {
    uint64_t p = 1;
    for (size_t i = 0; i < n; i++) p = !dims[i] ? 0 : p > UINT64_MAX / dims[i] ? UINT64_MAX : p * dims[i];
    return p;
}

static bool get_u32(const json_t *o, const char *key, uint32_t *out, bool *bad_value) {
    json_t *v = json_object_get(o, key);
    if (!v) return false;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > UINT32_MAX) {
        *bad_value = true;
        return false;
    }
    *out = (uint32_t)json_integer_value(v);
    return true;
}

static bool get_num(const json_t *o, const char *key, double *out, bool *bad_value) {
    json_t *v = json_object_get(o, key);
    if (!v) return false;
    if (!json_is_number(v) || !isfinite(json_number_value(v))) {
        *bad_value = true;
        return false;
    }
    *out = json_number_value(v);
    return true;
}

static bool known_algo(const char *name) {
    const char *const *a = ms_place_algorithms();
    for (; a && *a; a++)
        if (strcmp(*a, name) == 0) return true;
    return false;
}

/* The placement algorithms' names, comma-separated, into buf (for messages;
 * truncated to len). Returns buf. Cannot fail. */
static const char *algo_names(char *buf, size_t len) {
    buf[0] = '\0';
    for (const char *const *n = ms_place_algorithms(); n && *n; n++) {
        size_t l = strlen(buf);
        snprintf(buf + l, len - l, "%s%s", l ? ", " : "", *n);
    }
    return buf;
}

static ms_status parse_traces(ms_sweep_spec *s, const json_t *root, ms_error *err) {
    const json_t *a;
    s->nt = list_of(root, "traces", &a);
    s->traces = calloc(s->nt ? s->nt : 1, sizeof *s->traces);
    if (!s->traces) return ms_error_set(err, MS_E_NOMEM, "out of memory");
    for (size_t i = 0; i < s->nt; i++) {
        const json_t *t = item(a, i);
        sw_trace *tr = &s->traces[i];
        tr->phase = MS_PHASE_ALL;
        const char *path = NULL, *label = NULL, *ev = NULL;
        bool bv = false;
        if (json_is_string(t)) {
            path = json_string_value(t);
        } else if (json_is_object(t)) {
            const char *k;
            json_t *v;
            json_object_foreach((json_t *)t, k, v) {
                if (strcmp(k, "path") == 0 || strcmp(k, "train") == 0) path = json_string_value(v);
                else if (strcmp(k, "label") == 0) label = json_string_value(v);
                else if (strcmp(k, "eval") == 0) ev = json_string_value(v);
                else if (strcmp(k, "experts") == 0) get_u32(t, k, &tr->experts, &bv);
                else if (strcmp(k, "split") == 0) {
                    if (!get_num(t, k, &tr->split, &bv) || tr->split <= 0 || tr->split >= 1) bv = true;
                } else if (strcmp(k, "seed") == 0) {
                    double sd = 0;
                    /* range first: converting -3 or 1e30 is undefined (fuzz/fuzz-sweep-spec.c) */
                    if (!get_num(t, k, &sd, &bv) || !(sd >= 0 && sd < 18446744073709551616.0)) bv = true;
                    else tr->split_seed = (uint64_t)sd;
                } else if (strcmp(k, "phase") == 0) {
                    if (!json_is_string(v) || ms_phase_parse(json_string_value(v), &tr->phase, NULL) != MS_OK)
                        return ms_error_set(err, MS_E_INPUT, "%s: traces[%zu].phase must be all, prefill or decode",
                                            s->label, i);
                } else {
                    return ms_error_set(err, MS_E_INPUT, "%s: traces[%zu]: unknown key '%s'", s->label, i, k);
                }
            }
        }
        if (!path || !*path || bv || (json_object_get(t, "eval") && !ev))
            return ms_error_set(err, MS_E_INPUT,
                                "%s: traces[%zu] must be a path or {\"path\": ..., \"eval\"|\"split\", \"label\", "
                                "\"experts\", \"phase\", \"seed\"} with valid values",
                                s->label, i);
        if (ev && tr->split > 0)
            return ms_error_set(err, MS_E_INPUT, "%s: traces[%zu]: give eval or split, not both", s->label, i);
        tr->path = dupstr(path);
        tr->eval_path = ev ? dupstr(ev) : NULL;
        if (!label) {
            label = strrchr(path, '/');
            label = label && label[1] ? label + 1 : path;
        }
        tr->label = dupstr(label);
        if (!tr->path || !tr->label || (ev && !tr->eval_path)) return ms_error_set(err, MS_E_NOMEM, "out of memory");
    }
    return MS_OK;
}

static ms_status parse_algos(ms_sweep_spec *s, const json_t *root, ms_error *err) {
    const json_t *a;
    s->na = list_of(root, "algorithms", &a);
    if (!s->na && s->nt && !json_object_get(root, "replay")) { /* with replay: grid points only when asked for */
        a = NULL;
        s->na = 1;
    }
    s->algos = calloc(s->na ? s->na : 1, sizeof *s->algos);
    if (!s->algos) return ms_error_set(err, MS_E_NOMEM, "out of memory");
    for (size_t i = 0; i < s->na; i++) {
        const json_t *t = a ? item(a, i) : NULL;
        sw_algo *al = &s->algos[i];
        ms_place_opts_default(&al->po);
        const char *name = t ? NULL : "eplb", *label = NULL;
        bool bv = false;
        if (json_is_string(t)) {
            name = json_string_value(t);
        } else if (json_is_object(t)) {
            const char *k;
            json_t *v;
            json_object_foreach((json_t *)t, k, v) {
                double x;
                if (strcmp(k, "algo") == 0 || strcmp(k, "algorithm") == 0) name = json_string_value(v);
                else if (strcmp(k, "label") == 0) label = json_string_value(v);
                else if (strcmp(k, "groups") == 0) get_u32(t, k, &al->po.groups, &bv);
                else if (strcmp(k, "redundant") == 0) get_u32(t, k, &al->po.redundant, &bv);
                else if (strcmp(k, "hot_n") == 0) get_u32(t, k, &al->po.hot_n, &bv);
                else if (strcmp(k, "shared_replicas") == 0) get_u32(t, k, &al->po.shared_replicas, &bv);
                else if (strcmp(k, "tail_alpha") == 0) get_num(t, k, &al->po.tail_alpha, &bv);
                else if (strcmp(k, "coact_weight") == 0) get_num(t, k, &al->po.coact_weight, &bv);
                else if (strcmp(k, "time_limit") == 0) get_num(t, k, &al->po.time_limit_s, &bv);
                else if (strcmp(k, "seed") == 0) {
                    if (get_num(t, k, &x, &bv) && x >= 0 && x < 18446744073709551616.0) al->po.seed = (uint64_t)x;
                    else bv = true;
                } else if (strcmp(k, "axis") == 0) {
                    const char *ax = json_string_value(v);
                    if (ax && strcmp(ax, "row") == 0) al->po.axis = 'r';
                    else if (ax && strcmp(ax, "col") == 0) al->po.axis = 'c';
                    else bv = true;
                } else {
                    return ms_error_set(err, MS_E_INPUT, "%s: algorithms[%zu]: unknown key '%s'", s->label, i, k);
                }
            }
        }
        if (!name || bv)
            return ms_error_set(err, MS_E_INPUT, "%s: algorithms[%zu] must be a name or {\"algo\": NAME, ...} with "
                                                 "valid values",
                                s->label, i);
        if (!known_algo(name)) {
            char list[400];
            return ms_error_set(err, MS_E_INPUT, "%s: algorithms[%zu]: unknown algorithm '%s' (known: %s)", s->label,
                                i, name, algo_names(list, sizeof list));
        }
        snprintf(al->algo, sizeof al->algo, "%s", name);
        al->po.algo = al->algo;
        snprintf(al->label, sizeof al->label, "%s", label ? label : name);
        if (!strcmp(name, "coact") || !strcmp(name, "balance-coact") || !strcmp(name, "search") ||
            !strcmp(name, "tail"))
            s->need_coact = true;
    }
    return MS_OK;
}

static ms_status parse_grid(ms_sweep_spec *s, const json_t *root, ms_error *err) {
    const json_t *a;
    /* routes */
    s->nr = list_of(root, "routes", &a);
    size_t nr = s->nr ? s->nr : 1;
    s->routes = calloc(nr, sizeof *s->routes);
    if (!s->routes) return ms_error_set(err, MS_E_NOMEM, "out of memory");
    if (!s->nr) {
        s->routes[0] = s->cost == MS_COST_MESH ? MS_ROUTE_BALANCED : MS_ROUTE_LEAST_LOADED;
        s->nr = 1;
    }
    for (size_t i = 0; a && i < s->nr; i++) {
        const json_t *t = item(a, i);
        ms_error le = {0};
        if (!json_is_string(t) || ms_route_parse(json_string_value(t), &s->routes[i], &le) != MS_OK)
            return ms_error_set(err, MS_E_INPUT, "%s: routes[%zu]: %s", s->label, i,
                                json_is_string(t) ? le.msg : "not a name");
    }
    /* clusters */
    s->nc = list_of(root, "clusters", &a);
    s->clusters = calloc(s->nc ? s->nc : 1, sizeof *s->clusters);
    if (!s->clusters) return ms_error_set(err, MS_E_NOMEM, "out of memory");
    for (size_t i = 0; i < s->nc; i++) {
        const json_t *t = item(a, i);
        ms_cluster *c = &s->clusters[i];
        bool ok = false, bv = false;
        if (json_is_string(t)) {
            unsigned r, cc;
            char tail;
            ok = sscanf(json_string_value(t), "%ux%u%c", &r, &cc, &tail) == 2;
            c->rows = r;
            c->cols = cc;
        } else if (json_is_object(t)) {
            ok = get_u32(t, "rows", &c->rows, &bv) && get_u32(t, "cols", &c->cols, &bv) && !bv &&
                 json_object_size(t) == 2;
        }
        c->slots_per_device = 1;
        if (!ok || ms_cluster_check(c, NULL) != MS_OK)
            return ms_error_set(err, MS_E_INPUT, "%s: clusters[%zu] must be \"RxC\" or {\"rows\": R, \"cols\": C}",
                                s->label, i);
    }
    /* slots */
    s->ns = list_of(root, "slots", &a);
    s->slots = calloc(s->ns ? s->ns : 1, sizeof *s->slots);
    if (!s->slots) return ms_error_set(err, MS_E_NOMEM, "out of memory");
    for (size_t i = 0; i < s->ns; i++) {
        const json_t *t = item(a, i);
        if (!json_is_integer(t) || json_integer_value(t) < 1 || json_integer_value(t) > 65536)
            return ms_error_set(err, MS_E_INPUT, "%s: slots[%zu] must be an integer 1..65536", s->label, i);
        s->slots[i] = (uint32_t)json_integer_value(t);
    }
    if (s->nt && (!s->nc || !s->ns))
        return bad(err, s->label, "\"clusters\" and \"slots\" are required with traces", NULL);
    /* batches */
    s->nb = list_of(root, "batches", &a);
    size_t nb = s->nb ? s->nb : 1;
    s->batches = calloc(nb, sizeof *s->batches);
    if (!s->batches) return ms_error_set(err, MS_E_NOMEM, "out of memory");
    if (!s->nb) {
        a = NULL;
        s->nb = 1;
    }
    for (size_t i = 0; i < s->nb; i++) {
        const json_t *t = a ? item(a, i) : NULL;
        sw_batch *b = &s->batches[i];
        ms_batch_opts bo;
        ms_batch_opts_default(&bo);
        b->tokens = bo.batch_tokens;
        b->batch = bo.decode_batch;
        b->mode = s->cost == MS_COST_MESH ? MS_BATCH_PER_REQUEST : MS_BATCH_PREFILL;
        bool bv = false;
        if (!t) {
        } else if (json_is_integer(t)) {
            if (json_integer_value(t) < 1 || json_integer_value(t) > UINT32_MAX) bv = true;
            b->mode = MS_BATCH_PREFILL;
            b->tokens = (uint32_t)json_integer_value(t);
        } else if (json_is_string(t)) {
            ms_error le = {0};
            if (ms_batch_mode_parse(json_string_value(t), &b->mode, &le) != MS_OK)
                return ms_error_set(err, MS_E_INPUT, "%s: batches[%zu]: %s", s->label, i, le.msg);
        } else if (json_is_object(t)) {
            const char *k;
            json_t *v;
            json_object_foreach((json_t *)t, k, v) {
                if (strcmp(k, "mode") == 0) {
                    ms_error le = {0};
                    if (!json_is_string(v) || ms_batch_mode_parse(json_string_value(v), &b->mode, &le) != MS_OK)
                        return ms_error_set(err, MS_E_INPUT, "%s: batches[%zu].mode: %s", s->label, i,
                                            json_is_string(v) ? le.msg : "not a name");
                } else if (strcmp(k, "tokens") == 0) {
                    get_u32(t, k, &b->tokens, &bv);
                } else if (strcmp(k, "batch") == 0) {
                    get_u32(t, k, &b->batch, &bv);
                } else {
                    return ms_error_set(err, MS_E_INPUT, "%s: batches[%zu]: unknown key '%s'", s->label, i, k);
                }
            }
        } else {
            bv = true;
        }
        if (bv || b->tokens == 0 || b->batch == 0)
            return ms_error_set(err, MS_E_INPUT,
                                "%s: batches[%zu] must be a token budget, a mode name or {\"mode\", \"tokens\", "
                                "\"batch\"} with positive sizes",
                                s->label, i);
        if (b->mode == MS_BATCH_PREFILL) snprintf(b->label, sizeof b->label, "prefill:%u", b->tokens);
        else if (b->mode == MS_BATCH_DECODE) snprintf(b->label, sizeof b->label, "decode:%u", b->batch);
        else snprintf(b->label, sizeof b->label, "%s", ms_batch_mode_name(b->mode));
    }
    return MS_OK;
}

static ms_status parse_options(ms_sweep_spec *s, const json_t *root, ms_error *err) {
    s->cost = MS_COST_MESH;
    s->capacity_factor = NAN;
    s->overflow = MS_OVERFLOW_ACCEPT;
    s->overlap = MS_OVERLAP_NONE;
    s->layer = -1;
    s->table = MS_MESH_TABLE_REFERENCE;
    const json_t *o = json_object_get(root, "options");
    if (o && !json_is_object(o)) return bad(err, s->label, "\"options\" must be an object", NULL);
    const char *hw = NULL, *model = NULL;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v) {
        const char *str = json_string_value(v);
        ms_status st = MS_OK;
        ms_error le = {0};
        bool bv = false;
        double x = 0;
        if (strcmp(k, "cost_model") == 0) st = str ? ms_cost_model_parse(str, &s->cost, &le) : MS_E_INPUT;
        else if (strcmp(k, "overflow") == 0) st = str ? ms_overflow_parse(str, &s->overflow, &le) : MS_E_INPUT;
        else if (strcmp(k, "origin_rows") == 0) {
            st = str ? ms_origin_parse(str, &s->origin, &le) : MS_E_INPUT;
            s->origin_set = true;
        } else if (strcmp(k, "overlap") == 0) st = str ? ms_overlap_parse(str, &s->overlap, &le) : MS_E_INPUT;
        else if (strcmp(k, "mesh_table") == 0) st = str ? ms_mesh_table_parse(str, &s->table, &le) : MS_E_INPUT;
        else if (strcmp(k, "hw") == 0) hw = str, bv = !str;
        else if (strcmp(k, "model") == 0) model = str, bv = !str && !json_is_null(v);
        else if (strcmp(k, "capacity_factor") == 0) bv = !get_num(o, k, &s->capacity_factor, &bv) || bv;
        else if (strcmp(k, "layer") == 0) {
            bv = !get_num(o, k, &x, &bv) || x < -1 || x != floor(x) || x >= 9223372036854775808.0;
            if (!bv) s->layer = (int64_t)x;
        } else if (strcmp(k, "seed") == 0) {
            bv = !get_num(o, k, &x, &bv) || x < 0 || x >= 18446744073709551616.0;
            if (!bv) s->seed = (uint64_t)x;
        } else if (strcmp(k, "shared_expert") == 0) {
            bv = !json_is_boolean(v);
            s->shared = json_is_true(v);
        } else
            return ms_error_set(err, MS_E_INPUT, "%s: options: unknown key '%s'", s->label, k);
        if (st != MS_OK || bv)
            return ms_error_set(err, MS_E_INPUT, "%s: options.%s: %s", s->label, k,
                                st != MS_OK && le.msg[0] ? le.msg : "bad value");
    }
    if (s->cost == MS_COST_ROOFLINE) {
        ms_status st = ms_hw_preset_load(hw ? hw : "h100-sxm", &s->hw, err);
        if (st != MS_OK) return ms_error_prefix(err, s->label);
        s->have_hw = true;
    }
    if (model) {
        ms_status st = ms_model_preset_load(model, &s->model, err);
        if (st != MS_OK) return ms_error_prefix(err, s->label);
        s->have_model = true;
    }
    return MS_OK;
}

static ms_status parse_scaling(ms_sweep_spec *s, const json_t *root, ms_error *err) {
    const json_t *sc = json_object_get(root, "scaling");
    if (!sc) return MS_OK;
    if (!json_is_object(sc)) return bad(err, s->label, "\"scaling\" must be an object", NULL);
    ms_scale_opts_default(&s->scale);
    const char *gpu = "a100", *energy = NULL;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)sc, k, v) {
        bool bv = false;
        if (strcmp(k, "gpu") == 0) gpu = json_string_value(v), bv = !gpu;
        else if (strcmp(k, "energy") == 0) energy = json_string_value(v), bv = !energy;
        else if (strcmp(k, "experts") == 0) get_u32(sc, k, &s->scale.experts, &bv);
        else if (strcmp(k, "top_k") == 0) get_u32(sc, k, &s->scale.top_k, &bv);
        else if (strcmp(k, "sizes") == 0) {
            size_t n = json_array_size(v);
            bv = n == 0 || n > 32;
            for (size_t i = 0; !bv && i < n; i++) {
                json_t *x = json_array_get(v, i);
                bv = !json_is_number(x) || !(json_number_value(x) >= 1e6) || json_number_value(x) > 1e16;
                if (!bv) s->scale.sizes[i] = json_number_value(x);
            }
            if (!bv) s->scale.n_sizes = (uint32_t)n;
        } else
            return ms_error_set(err, MS_E_INPUT, "%s: scaling: unknown key '%s'", s->label, k);
        if (bv) return ms_error_set(err, MS_E_INPUT, "%s: scaling.%s: bad value", s->label, k);
    }
    if (ms_hw_preset_load(gpu, &s->scale.gpu, err) != MS_OK) return ms_error_prefix(err, s->label);
    if (ms_energy_load(energy ? energy : s->scale.gpu.name, &s->scale.energy, err) != MS_OK)
        return ms_error_prefix(err, s->label);
    s->n_scale = s->scale.n_sizes;
    return MS_OK;
}

/* A span of a replay list: a number of steps (positive; 0 too when zero_ok:
 * "the interval") or a span text ("50steps", "200ktokens"). The reason it
 * is not one into le. */
static bool span_entry(const json_t *v, bool zero_ok, ms_span *out, ms_error *le) {
    if (json_is_integer(v) && (json_integer_value(v) > 0 || (zero_ok && json_integer_value(v) == 0))) {
        out->n = (uint64_t)json_integer_value(v);
        out->unit = MS_SPAN_STEPS;
        return true;
    }
    if (json_is_string(v)) return ms_span_parse(json_string_value(v), out, le) == MS_OK;
    ms_error_set(le, MS_E_INPUT, "must be %s integer (steps) or a span such as \"50steps\" or \"200ktokens\"",
                 zero_ok ? "a non-negative" : "a positive");
    return false;
}

/* Entry i of replay list k into r; the reason it is bad into le. */
static bool replay_entry(sw_replay *r, replay_list k, size_t i, const json_t *v, ms_error *le) {
    const char *str = json_string_value(v);
    char list[400];
    switch (k) {
    case RL_POLICIES:
        if (str) return ms_rebalance_parse(str, &r->policies[i], le) == MS_OK;
        ms_error_set(le, MS_E_INPUT, "not a policy name");
        return false;
    case RL_EVERY: return span_entry(v, false, &r->every[i], le);
    case RL_WINDOW: return span_entry(v, true, &r->window[i], le);
    case RL_MAX_MOVES:
        if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= UINT32_MAX) {
            r->moves[i] = (uint32_t)json_integer_value(v);
            return true;
        }
        ms_error_set(le, MS_E_INPUT, "must be an integer 0..4294967295 (replica copies per decision)");
        return false;
    case RL_MIGRATION:
        if (str) return ms_migration_parse(str, &r->migration[i], le) == MS_OK;
        ms_error_set(le, MS_E_INPUT, "not a name (stall or overlap)");
        return false;
    case RL_INIT:
        if (str && known_algo(str) && strlen(str) < sizeof r->init[i]) {
            snprintf(r->init[i], sizeof r->init[i], "%s", str);
            return true;
        }
        ms_error_set(le, MS_E_INPUT, "unknown algorithm '%s' (known: %s)", str ? str : "", algo_names(list, sizeof list));
        return false;
    case RL_COUNT: break;
    }
    return false;
}

/* True when entries i and j of replay list k are the same value. */
static bool same_entry(const sw_replay *r, replay_list k, size_t i, size_t j) {
    switch (k) {
    case RL_POLICIES: return r->policies[i] == r->policies[j];
    case RL_EVERY: return r->every[i].n == r->every[j].n && r->every[i].unit == r->every[j].unit;
    case RL_WINDOW: return r->window[i].n == r->window[j].n && r->window[i].unit == r->window[j].unit;
    case RL_MAX_MOVES: return r->moves[i] == r->moves[j];
    case RL_MIGRATION: return r->migration[i] == r->migration[j];
    case RL_INIT: return strcmp(r->init[i], r->init[j]) == 0;
    case RL_COUNT: break;
    }
    return false;
}

/* The default of replay list k: every policy, every 100 steps, window = the
 * interval, 64 copies, stall, EPLB. */
static void replay_default(sw_replay *r, replay_list k) {
    r->n[k] = 1;
    switch (k) {
    case RL_POLICIES:
        for (int p = 0; p < MS_REBALANCE_COUNT; p++) r->policies[p] = (ms_rebalance)p;
        r->n[k] = MS_REBALANCE_COUNT;
        break;
    case RL_EVERY: r->every[0] = (ms_span){100, MS_SPAN_STEPS}; break;
    case RL_WINDOW: r->window[0] = (ms_span){0, MS_SPAN_STEPS}; break;
    case RL_MAX_MOVES: r->moves[0] = 64; break;
    case RL_MIGRATION: r->migration[0] = MS_MIGRATION_STALL; break;
    case RL_INIT: snprintf(r->init[0], sizeof r->init[0], "eplb"); break;
    case RL_COUNT: break;
    }
}

/* Counts the runs of one point's coordinates. In output order: static
 * once; then groups, one per interval, window and migration mode (those two
 * only with an online policy listed: nothing else reads them), each
 * periodic EPLB, incremental per copy budget, the oracle (whose rivals are
 * the online runs of its group). Cannot fail. */
static void replay_count(sw_replay *r) {
    for (size_t i = 0; i < r->n[RL_POLICIES]; i++) r->want[r->policies[i]] = true;
    const bool online = r->want[MS_REBALANCE_PERIODIC_EPLB] || r->want[MS_REBALANCE_INCREMENTAL];
    r->n_window_runs = online ? r->n[RL_WINDOW] : 1;
    r->n_migration_runs = online ? r->n[RL_MIGRATION] : 1;
    r->per_group = (size_t)r->want[MS_REBALANCE_PERIODIC_EPLB] + (size_t)r->want[MS_REBALANCE_ORACLE] +
                   (r->want[MS_REBALANCE_INCREMENTAL] ? r->n[RL_MAX_MOVES] : 0);
    r->n_runs = (size_t)r->want[MS_REBALANCE_STATIC] +
                r->n[RL_EVERY] * r->n_window_runs * r->n_migration_runs * r->per_group;
}

/* Run j (< n_runs) of a point's coordinates. Cannot fail. */
static sw_run replay_run_at(const sw_replay *r, size_t j) {
    if (r->want[MS_REBALANCE_STATIC] && j-- == 0) return (sw_run){MS_REBALANCE_STATIC, -1, -1, -1, -1};
    const bool online = r->want[MS_REBALANCE_PERIODIC_EPLB] || r->want[MS_REBALANCE_INCREMENTAL];
    size_t g = j / r->per_group, k = j % r->per_group;
    const int m = online ? (int)(g % r->n_migration_runs) : -1;
    g /= r->n_migration_runs;
    const int w = online ? (int)(g % r->n_window_runs) : -1, e = (int)(g / r->n_window_runs);
    if (r->want[MS_REBALANCE_PERIODIC_EPLB] && k-- == 0) return (sw_run){MS_REBALANCE_PERIODIC_EPLB, e, w, -1, m};
    if (r->want[MS_REBALANCE_INCREMENTAL] && k < r->n[RL_MAX_MOVES])
        return (sw_run){MS_REBALANCE_INCREMENTAL, e, w, (int)k, m};
    return (sw_run){MS_REBALANCE_ORACLE, e, w, -1, m};
}

/* The "replay" block (absent: no replay points): its lists, scalars, the
 * links' hardware preset and the run count. Fails MS_E_INPUT naming the key
 * (and entry) on a value that is not one, an unknown key, a list empty, too
 * long or holding a value twice, a block without traces or with
 * options.layer >= 0; as ms_hw_preset_load for options.hw. */
static ms_status parse_replay(ms_sweep_spec *s, const json_t *root, ms_error *err) {
    const json_t *rp = json_object_get(root, "replay");
    if (!rp) return MS_OK;
    if (!json_is_object(rp)) return bad(err, s->label, "\"replay\" must be an object", NULL);
    if (!s->nt) return bad(err, s->label, "\"replay\" needs traces", NULL);
    if (s->layer >= 0) return bad(err, s->label, "options.layer: replay points serve every layer (leave it -1)", NULL);
    s->has_replay = true;
    sw_replay *r = &s->rp;
    r->after_request = UINT64_MAX;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)rp, k, v) {
        bool list = false, bv = false;
        double x = 0;
        for (int i = 0; i < RL_COUNT; i++) list |= strcmp(k, replay_list_keys[i]) == 0;
        if (list || strcmp(k, "comment") == 0) continue;
        if (strcmp(k, "groups") == 0) bv = !get_u32(rp, k, &r->groups, &bv);
        else if (strcmp(k, "after_request") == 0) {
            bv = !json_is_integer(v) || json_integer_value(v) < 0;
            if (!bv) r->after_request = (uint64_t)json_integer_value(v);
        } else if (strcmp(k, "variance_weight") == 0) {
            bv = !get_num(rp, k, &x, &bv) || x < 0;
            r->variance_weight = x;
        } else
            return ms_error_set(err, MS_E_INPUT, "%s: replay: unknown key '%s'", s->label, k);
        if (bv)
            return ms_error_set(err, MS_E_INPUT, "%s: replay.%s must be %s", s->label, k,
                                strcmp(k, "variance_weight") == 0 ? "a number >= 0"
                                                                  : "an integer >= 0");
    }
    for (int kk = 0; kk < RL_COUNT; kk++) {
        const replay_list l = (replay_list)kk;
        const json_t *a;
        size_t n = list_of(rp, replay_list_keys[l], &a);
        const size_t max = l == RL_MAX_MOVES ? SW_LIST - 1 : SW_LIST;
        if (!a) {
            replay_default(r, l);
            continue;
        }
        if (n == 0 || n > max)
            return ms_error_set(err, MS_E_INPUT, "%s: replay.%s must hold 1 to %zu entries", s->label,
                                replay_list_keys[l], max);
        for (size_t i = 0; i < n; i++) {
            ms_error le = {0};
            if (!replay_entry(r, l, i, item(a, i), &le))
                return ms_error_set(err, MS_E_INPUT, "%s: replay.%s[%zu]: %s", s->label, replay_list_keys[l], i,
                                    le.msg);
            for (size_t j = 0; j < i; j++)
                if (same_entry(r, l, i, j))
                    return ms_error_set(err, MS_E_INPUT, "%s: replay.%s[%zu]: the same as [%zu]", s->label,
                                        replay_list_keys[l], i, j);
        }
        r->n[l] = n;
    }
    /* the links copies use: options.hw (the roofline's already loaded), else h100-sxm */
    if (s->have_hw) {
        r->hw = s->hw;
    } else {
        const char *hw = json_string_value(json_object_get(json_object_get(root, "options"), "hw"));
        if (ms_hw_preset_load(hw ? hw : "h100-sxm", &r->hw, err) != MS_OK) return ms_error_prefix(err, s->label);
    }
    replay_count(r);
    return MS_OK;
}

void ms_sweep_spec_free(ms_sweep_spec *s) {
    if (!s) return;
    for (size_t i = 0; s->traces && i < s->nt; i++) {
        sw_trace *t = &s->traces[i];
        free(t->label);
        free(t->path);
        free(t->eval_path);
        if (t->train != t->full) ms_trace_free(t->train);
        if (t->test != t->full) ms_trace_free(t->test);
        ms_trace_free(t->full);
        ms_stats_free(t->stats);
        ms_loads_free(t->loads);
    }
    free(s->traces);
    free(s->algos);
    free(s->routes);
    free(s->clusters);
    free(s->slots);
    free(s->batches);
    ms_scale_result_free(s->scale_res);
    free(s->label);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

ms_status ms_sweep_spec_parse(const char *text, size_t len, const char *label, ms_sweep_spec **out, ms_error *err) {
    *out = NULL;
    ms_sweep_spec *s = calloc(1, sizeof *s);
    if (!s) return ms_error_set(err, MS_E_NOMEM, "out of memory");
    pthread_mutex_init(&s->mu, NULL);
    s->threads_per_point = 1;
    s->label = dupstr(label ? label : "spec");
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    ms_status st = MS_OK;
    if (!s->label) st = ms_error_set(err, MS_E_NOMEM, "out of memory");
    else if (!root)
        st = ms_error_set(err, MS_E_INPUT, "%s: not JSON (line %d, column %d: %s)", s->label, je.line, je.column,
                          je.text);
    else if (!json_is_object(root)) st = bad(err, s->label, "the spec must be a JSON object", NULL);
    if (st == MS_OK) {
        const char *k;
        json_t *v;
        static const char *const keys[] = {"traces", "algorithms", "routes", "clusters", "slots",
                                           "batches", "options", "replay", "scaling", "comment", NULL};
        json_object_foreach(root, k, v) {
            bool known = false;
            for (const char *const *kk = keys; *kk; kk++) known |= strcmp(*kk, k) == 0;
            if (!known) {
                st = ms_error_set(err, MS_E_INPUT, "%s: unknown key '%s'", s->label, k);
                break;
            }
        }
    }
    if (st == MS_OK) st = parse_options(s, root, err);
    if (st == MS_OK) st = parse_traces(s, root, err);
    if (st == MS_OK) st = parse_algos(s, root, err);
    if (st == MS_OK) st = parse_grid(s, root, err);
    if (st == MS_OK) st = parse_replay(s, root, err);
    if (st == MS_OK) st = parse_scaling(s, root, err);
    if (st == MS_OK) {
        const size_t gd[6] = {s->nt, s->na, s->nr, s->nc, s->ns, s->nb};
        s->grid = product(gd, 6);
        if (s->has_replay) {
            const size_t rd[7] = {s->nt, s->rp.n[RL_INIT], s->nr, s->nc, s->ns, s->nb, s->rp.n_runs};
            s->n_replay = product(rd, 7);
        }
        s->points = s->grid > 100000000ULL || s->n_replay > 100000000ULL ? UINT64_MAX
                                                                          : s->grid + s->n_replay + s->n_scale;
        if (!s->points) st = bad(err, s->label, "the spec has no points (no traces and no scaling sizes)", NULL);
        else if (s->points > 100000000ULL) st = bad(err, s->label, "more than 10^8 points", NULL);
    }
    if (st == MS_OK) {
        char *canon = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
        if (!canon) st = ms_error_set(err, MS_E_NOMEM, "out of memory");
        else s->digest = ms_fnv1a(MS_FNV_OFFSET, canon, strlen(canon));
        free(canon);
    }
    json_decref(root);
    if (st != MS_OK) {
        ms_sweep_spec_free(s);
        return st;
    }
    for (int c = 0; c < C_COUNT; c++) {
        const bool on = s->has_replay || c < C_POLICY || c == C_ERROR;
        s->col_of[c] = on ? (int)s->n_cols : -1;
        if (!on) continue;
        s->col_names[s->n_cols] = column_names[c];
        s->col_numeric[s->n_cols++] = column_numeric[c];
    }
    *out = s;
    return MS_OK;
}

ms_status ms_sweep_spec_load(const char *path, ms_sweep_spec **out, ms_error *err) {
    uint8_t *buf = NULL;
    size_t len = 0;
    ms_status st = ms_file_read_all(path, &buf, &len, err);
    if (st != MS_OK) return st;
    st = ms_sweep_spec_parse((const char *)buf, len, path, out, err);
    free(buf);
    return st;
}

uint64_t ms_sweep_spec_points(const ms_sweep_spec *s) { return s->points; }
uint64_t ms_sweep_spec_digest(const ms_sweep_spec *s) { return s->digest; }

/* ------------------------------------------------------------ points */

typedef enum point_kind { K_GRID, K_REPLAY, K_SCALE } point_kind;

typedef struct coords {
    point_kind kind;
    size_t t, a, r, c, s, b; /* a: the algorithm, or for a replay point the initial placement's */
    size_t run;              /* replay points: the run of the coordinates */
    size_t k;                /* scaling points: the size */
} coords;

/* Index (< points) -> coordinates. Grid points first, then replay points,
 * then scaling points; traces outermost, batches (replay points: runs)
 * innermost. Cannot fail. */
static void decode(const ms_sweep_spec *s, uint64_t index, coords *c) {
    memset(c, 0, sizeof *c);
    size_t dims[7] = {s->nt, s->na, s->nr, s->nc, s->ns, s->nb, 1}, x[7];
    if (index >= s->grid + s->n_replay) {
        c->kind = K_SCALE;
        c->k = (size_t)(index - s->grid - s->n_replay);
        return;
    }
    c->kind = index < s->grid ? K_GRID : K_REPLAY;
    if (c->kind == K_REPLAY) {
        index -= s->grid;
        dims[1] = s->rp.n[RL_INIT];
        dims[6] = s->rp.n_runs;
    }
    for (size_t i = 7; i-- > 0;) {
        x[i] = (size_t)(index % dims[i]);
        index /= dims[i];
    }
    c->t = x[0], c->a = x[1], c->r = x[2], c->c = x[3], c->s = x[4], c->b = x[5], c->run = x[6];
}

/* A replay run as text, e.g. "policy=incremental every=20 steps window=20
 * steps max_moves=64 migration=stall" (lists that do not apply left out;
 * truncated to len). Cannot fail. */
static void describe_run(const sw_replay *r, const sw_run *x, char *buf, size_t len) {
    char e[40], w[40];
    const ms_span *win = x->window >= 0 && r->window[x->window].n ? &r->window[x->window] : NULL;
    snprintf(buf, len, "policy=%s", ms_rebalance_name(x->policy));
    size_t n = strlen(buf);
    if (x->every >= 0 && n < len)
        n += (size_t)snprintf(buf + n, len - n, " every=%s", ms_span_format(&r->every[x->every], e, sizeof e));
    if (x->window >= 0 && n < len)
        n += (size_t)snprintf(buf + n, len - n, " window=%s",
                              ms_span_format(win ? win : &r->every[x->every], w, sizeof w));
    if (x->moves >= 0 && n < len) n += (size_t)snprintf(buf + n, len - n, " max_moves=%u", r->moves[x->moves]);
    if (x->migration >= 0 && n < len)
        snprintf(buf + n, len - n, " migration=%s", ms_migration_name(r->migration[x->migration]));
}

void ms_sweep_spec_describe(const ms_sweep_spec *s, uint64_t index, char *buf, size_t len) {
    coords c;
    if (index >= s->points) {
        snprintf(buf, len, "point %" PRIu64 " (out of range)", index);
        return;
    }
    decode(s, index, &c);
    if (c.kind == K_SCALE) {
        snprintf(buf, len, "scaling size=%.4g", s->scale.sizes[c.k]);
        return;
    }
    char run[200] = "";
    if (c.kind == K_REPLAY) {
        const sw_run x = replay_run_at(&s->rp, c.run);
        describe_run(&s->rp, &x, run, sizeof run);
    }
    snprintf(buf, len, "trace=%s %s=%s route=%s cluster=%ux%u slots=%u batch=%s%s%s", s->traces[c.t].label,
             c.kind == K_REPLAY ? "init" : "algo", c.kind == K_REPLAY ? s->rp.init[c.a] : s->algos[c.a].label,
             ms_route_name(s->routes[c.r]), s->clusters[c.c].rows, s->clusters[c.c].cols, s->slots[c.s],
             s->batches[c.b].label, run[0] ? " " : "", run);
}

/* Loads trace i once per process (callers serialise on s->mu). */
static ms_status load_trace(ms_sweep_spec *s, sw_trace *t, ms_error *err) {
    if (t->loaded) {
        if (t->load_st != MS_OK && err) *err = t->load_err;
        return t->load_st;
    }
    t->loaded = true;
    ms_error *le = &t->load_err;
    ms_trace_load_opts lo = {.n_experts = t->experts, .threads = s->threads_per_point};
    const char *p = t->path;
    ms_status st = ms_trace_load(&p, 1, &lo, &t->full, le);
    if (st == MS_OK && t->eval_path) {
        const char *q = t->eval_path;
        st = ms_trace_load(&q, 1, &lo, &t->test, le);
        if (st == MS_OK) st = ms_trace_check_compatible(t->full, t->test, le);
        t->train = t->full;
    } else if (st == MS_OK && t->split > 0) {
        st = ms_trace_split(t->full, t->split, t->split_seed, &t->train, &t->test, le);
    } else if (st == MS_OK) {
        t->train = t->test = t->full;
    }
    if (st == MS_OK) {
        ms_stats_opts so;
        ms_stats_opts_default(&so);
        so.phase = t->phase;
        so.coact = s->need_coact;
        so.threads = s->threads_per_point;
        st = ms_stats_compute(t->train, &so, &t->stats, le);
    }
    if (st == MS_OK) st = ms_stats_to_loads(t->stats, &t->loads, le);
    if (st == MS_OK && !s->have_model) {
        const char *guess = ms_model_preset_guess(t->full->n_experts, t->full->top_k);
        if (guess && ms_model_preset_load(guess, &t->model, NULL) == MS_OK) t->have_model = true;
    }
    if (st != MS_OK) ms_error_prefix(le, t->label);
    t->load_st = st;
    if (st != MS_OK && err) *err = *le;
    return st;
}

static void put_num(char *cell, double v) {
    if (isfinite(v)) snprintf(cell, MS_SWEEP_CELL, "%.10g", v);
    else cell[0] = '\0';
}

static void put_u64(char *cell, uint64_t v) { snprintf(cell, MS_SWEEP_CELL, "%" PRIu64, v); }

static ms_status eval_scale(ms_sweep_spec *s, size_t k, char **cells, ms_error *err) {
    pthread_mutex_lock(&s->mu);
    if (!s->scale_done) {
        s->scale_done = true;
        s->scale_st = ms_scale_run(&s->scale, &s->scale_res, &s->scale_err);
    }
    ms_status st = s->scale_st;
    if (st != MS_OK && err) *err = s->scale_err;
    pthread_mutex_unlock(&s->mu);
    snprintf(cells[C_KIND], MS_SWEEP_CELL, "scale");
    if (st == MS_E_INPUT) { /* a family the model cannot build: record it */
        snprintf(cells[C_ERROR], MS_SWEEP_CELL, "%.250s", s->scale_err.msg);
        return MS_OK;
    }
    if (st != MS_OK) return st;
    /* the k-th point of the size sweep */
    const ms_scale_point *p = NULL;
    size_t seen = 0;
    for (uint32_t i = 0; i < s->scale_res->n_points; i++) {
        if (strcmp(s->scale_res->points[i].sweep, "size") != 0) continue;
        if (seen++ == k) {
            p = &s->scale_res->points[i];
            break;
        }
    }
    if (!p) {
        snprintf(cells[C_ERROR], MS_SWEEP_CELL, "no model of size %.4g in the family", s->scale.sizes[k]);
        return MS_OK;
    }
    snprintf(cells[C_TRACE], MS_SWEEP_CELL, "size:%.4g", s->scale.sizes[k]);
    put_num(cells[C_TOTAL_PARAMS], p->total_params);
    put_num(cells[C_ACTIVE_PARAMS], p->active_params);
    put_u64(cells[C_GPUS_INFER], p->gpus_infer);
    put_num(cells[C_INFER_J], p->infer_j_per_token);
    put_num(cells[C_INFER_W], p->infer_avg_w);
    put_u64(cells[C_GPUS_TRAIN], p->gpus_train);
    put_num(cells[C_TRAIN_J], p->train_j_per_token);
    put_num(cells[C_TRAIN_SITE_W], p->train_site_w);
    return MS_OK;
}

/* The model preset of a point's trace: the spec's, else the one guessed
 * from its shape; NULL when neither. */
static const ms_model_preset *model_of(const ms_sweep_spec *s, const sw_trace *t) {
    return s->have_model ? &s->model : t->have_model ? &t->model : NULL;
}

/* The batch options of a point (the spec's seed). Cannot fail. */
static void point_batch_opts(const ms_sweep_spec *s, const sw_batch *b, ms_batch_opts *bo) {
    ms_batch_opts_default(bo);
    bo->mode = b->mode;
    bo->batch_tokens = b->tokens;
    bo->decode_batch = b->batch;
    bo->seed = s->seed;
}

/* The simulator's options of a point: the spec's options and the route.
 * Cannot fail. */
static void point_sim_opts(const ms_sweep_spec *s, const sw_trace *t, ms_route route, ms_sim_opts *so) {
    ms_sim_opts_default(so);
    so->cost_model = s->cost;
    so->route = route;
    if (isfinite(s->capacity_factor)) so->capacity_factor = s->capacity_factor;
    so->overflow = s->overflow;
    if (s->origin_set) so->origin = s->origin;
    so->layer = s->layer;
    so->overlap = s->overlap;
    so->seed = s->seed;
    so->threads = s->threads_per_point;
    so->mesh_table = s->table;
    so->hw = s->have_hw ? &s->hw : NULL;
    so->model = model_of(s, t);
    so->keep_records = false;
}

/* A grid point: ms_place_run on the training loads, ms_sim_run on the
 * evaluation trace; fills the placement and simulation cells. Fails as
 * they do (and as ms_batch_plan_build). */
static ms_status eval_grid(const ms_sweep_spec *s, const coords *c, const sw_trace *t, const ms_cluster *cl,
                           char **cells, ms_error *e) {
    ms_place_opts po = s->algos[c->a].po;
    po.cluster = *cl;
    po.shared_expert = s->shared;
    po.threads = s->threads_per_point;
    ms_place_input in = {.loads = t->loads, .stats = t->stats, .digest = t->train->digest};
    ms_placement *p = NULL;
    ms_batch_plan *plan = NULL;
    ms_sim_result *res = NULL;
    ms_status st = ms_place_run(&in, &po, &p, e);
    if (st == MS_OK) {
        put_num(cells[C_OBJ], p->objective);
        put_num(cells[C_LB], p->lower_bound);
        ms_batch_opts bo;
        point_batch_opts(s, &s->batches[c->b], &bo);
        st = ms_batch_plan_build(t->test, &bo, ms_cluster_devices(cl), &plan, e);
    }
    if (st == MS_OK) {
        ms_sim_opts so;
        point_sim_opts(s, t, s->routes[c->r], &so);
        st = ms_sim_run(t->test, plan, p, &so, NULL, &res, e);
    }
    if (st == MS_OK) {
        const ms_sim_summary *m = &res->summary;
        put_u64(cells[C_BATCHES], m->batches);
        put_u64(cells[C_TOKENS], m->tokens);
        put_num(cells[C_IMB_MEAN], m->imbalance.mean);
        put_num(cells[C_IMB_P50], m->imbalance.p50);
        put_num(cells[C_IMB_P95], m->imbalance.p95);
        put_num(cells[C_IMB_P99], m->imbalance.p99);
        put_num(cells[C_IMB_MAX], m->imbalance.max);
        put_num(cells[C_LT_MEAN], m->layer_us.mean);
        put_num(cells[C_LT_P95], m->layer_us.p95);
        put_num(cells[C_LT_P99], m->layer_us.p99);
        put_num(cells[C_BT_P99], m->batch_us.p99);
        put_num(cells[C_TPS], m->tokens_per_second);
        put_u64(cells[C_DROPPED], m->dropped);
        put_u64(cells[C_REROUTED], m->rerouted);
        put_num(cells[C_INTRA], m->intra_bytes);
        put_num(cells[C_INTER], m->inter_bytes);
        put_num(cells[C_UTIL], m->gpu_utilisation);
    }
    ms_sim_result_free(res);
    ms_batch_plan_free(plan);
    ms_placement_free(p);
    return st;
}

/* The options of replay run x: base with the run's policy and list entries
 * (static takes the first interval, which changes nothing it does). Cannot
 * fail. */
static void run_opts(const sw_replay *r, const sw_run *x, const ms_replay_opts *base, ms_replay_opts *o) {
    *o = *base;
    o->policy = x->policy;
    o->every = r->every[x->every >= 0 ? x->every : 0];
    if (x->window >= 0) o->window = r->window[x->window];
    o->max_moves = x->moves >= 0 ? r->moves[x->moves] : 0;
    if (x->migration >= 0) o->migration = r->migration[x->migration];
}

/* Replays run j. The oracle first replays the online runs of its group (its
 * interval, window and migration mode: periodic EPLB and one incremental
 * run per copy budget, those the spec lists, the runs before it), whose
 * placements join its candidates, as moesim replay gives it the other
 * policies of its interval. Fails as ms_replay_run. */
static ms_status run_replay(const sw_replay *r, size_t j, const ms_trace *t, const ms_batch_plan *plan,
                            const ms_placement *init, const ms_sim_opts *so, const ms_replay_opts *base,
                            ms_replay_result **out, ms_error *err) {
    const sw_run x = replay_run_at(r, j);
    ms_replay_result *rivals[SW_LIST] = {NULL};
    const ms_replay_result *view[SW_LIST];
    uint32_t n = 0;
    ms_replay_opts o;
    ms_status st = MS_OK;
    /* the oracle is its group's last run */
    for (size_t i = j + 1 - r->per_group; x.policy == MS_REBALANCE_ORACLE && st == MS_OK && i < j; i++) {
        const sw_run y = replay_run_at(r, i);
        run_opts(r, &y, base, &o);
        st = ms_replay_run(t, plan, init, so, &o, &rivals[n], err);
        if (st == MS_OK) view[n] = rivals[n], n++;
    }
    if (st == MS_OK) {
        run_opts(r, &x, base, &o);
        o.rivals = view;
        o.n_rivals = n;
        st = ms_replay_run(t, plan, init, so, &o, out, err);
    }
    for (uint32_t i = 0; i < n; i++) ms_replay_result_free(rivals[i]);
    return st;
}

/* A span into its number and unit cells. Cannot fail. */
static void put_span(char *n, char *unit, const ms_span *sp) {
    put_u64(n, sp->n);
    snprintf(unit, MS_SWEEP_CELL, "%s", sp->unit == MS_SPAN_TOKENS ? "tokens" : "steps");
}

/* A replay point: the initial placement (its algorithm on the loads of the
 * plan's first interval, every[0]), then the run, serving the evaluation
 * trace in arrival order; fills the run's and the replay's cells. Fails
 * MS_E_INPUT without a model preset (expert bytes), and as
 * ms_batch_plan_build, ms_replay_initial_placement and ms_replay_run. */
static ms_status eval_replay(const ms_sweep_spec *s, const coords *c, const sw_trace *t, const ms_cluster *cl,
                             char **cells, ms_error *e) {
    const sw_replay *r = &s->rp;
    const sw_run x = replay_run_at(r, c->run);
    snprintf(cells[C_POLICY], MS_SWEEP_CELL, "%s", ms_rebalance_name(x.policy));
    if (x.every >= 0) put_span(cells[C_EVERY], cells[C_EVERY_UNIT], &r->every[x.every]);
    if (x.window >= 0)
        put_span(cells[C_WINDOW], cells[C_WINDOW_UNIT],
                 r->window[x.window].n ? &r->window[x.window] : &r->every[x.every]);
    if (x.moves >= 0) put_u64(cells[C_MAX_MOVES], r->moves[x.moves]);
    if (x.migration >= 0)
        snprintf(cells[C_MIGRATION], MS_SWEEP_CELL, "%s", ms_migration_name(r->migration[x.migration]));
    const ms_model_preset *m = model_of(s, t);
    if (!m)
        return ms_error_set(e, MS_E_INPUT, "no model preset matches %u experts, top-%u: give options.model "
                                           "(the expert weights migration copies)",
                            t->test->n_experts, t->test->top_k);
    ms_batch_opts bo;
    point_batch_opts(s, &s->batches[c->b], &bo);
    bo.order = MS_ORDER_TRACE;
    ms_batch_plan *plan = NULL;
    ms_placement *init = NULL;
    ms_replay_result *res = NULL;
    ms_status st = ms_batch_plan_build(t->test, &bo, ms_cluster_devices(cl), &plan, e);
    if (st == MS_OK) {
        ms_place_opts po;
        ms_place_opts_default(&po);
        po.algo = r->init[c->a];
        po.cluster = *cl;
        po.groups = r->groups;
        po.shared_expert = s->shared;
        po.lp_bound = false;
        po.threads = s->threads_per_point;
        st = ms_replay_initial_placement(t->test, plan, r->every[0], &po, &init, e);
    }
    if (st == MS_OK) {
        ms_sim_opts so;
        point_sim_opts(s, t, s->routes[c->r], &so);
        ms_replay_opts base;
        ms_replay_opts_default(&base);
        base.eplb_groups = r->groups;
        ms_replay_opts_set_weights(&base, m);
        base.hw = &r->hw;
        base.after_step = ms_plan_first_step(t->test, plan, r->after_request);
        base.variance_weight = r->variance_weight;
        st = run_replay(r, c->run, t->test, plan, init, &so, &base, &res, e);
    }
    if (st == MS_OK) {
        const ms_replay_summary *sum = &res->summary;
        put_u64(cells[C_BATCHES], sum->steps);
        put_u64(cells[C_TOKENS], sum->tokens);
        put_num(cells[C_IMB_MEAN], sum->imbalance);
        put_num(cells[C_LT_MEAN], sum->layer_us);
        put_num(cells[C_TPS], sum->total_us > 0 ? (double)sum->tokens / (sum->total_us * 1e-6) : 0);
        put_u64(cells[C_DROPPED], sum->dropped);
        put_u64(cells[C_REROUTED], sum->rerouted);
        put_u64(cells[C_DECISIONS], sum->decisions);
        put_u64(cells[C_REPLACEMENTS], sum->replacements);
        put_u64(cells[C_SKIPPED], sum->skipped);
        put_u64(cells[C_MOVED], sum->moved);
        put_u64(cells[C_MOVED_INTER], sum->moved_inter);
        put_num(cells[C_BYTES_MOVED], sum->bytes);
        put_num(cells[C_BYTES_MOVED_INTER], sum->inter_bytes);
        put_num(cells[C_SERVE_US], sum->serve_us);
        put_num(cells[C_MIGRATION_US], sum->migration_us);
        put_num(cells[C_TOTAL_US], sum->total_us);
        if (sum->steps_before) put_num(cells[C_IMB_BEFORE], sum->imbalance_before);
        if (sum->steps_after) put_num(cells[C_IMB_AFTER], sum->imbalance_after);
        if (sum->steps_before) put_num(cells[C_TOTAL_BEFORE], sum->total_us_before);
        if (sum->steps_after) put_num(cells[C_TOTAL_AFTER], sum->total_us_after);
    }
    ms_replay_result_free(res);
    ms_placement_free(init);
    ms_batch_plan_free(plan);
    return st;
}

static ms_status spec_eval(void *ctx, uint64_t index, char **out, ms_error *err) {
    ms_sweep_spec *s = ctx;
    if (index >= s->points) return ms_error_set(err, MS_E_INTERNAL, "point %" PRIu64 " out of range", index);
    /* cells by column; the columns this spec does not have write into sink */
    char sink[MS_SWEEP_CELL], *cells[C_COUNT];
    for (int i = 0; i < C_COUNT; i++) cells[i] = s->col_of[i] >= 0 ? out[s->col_of[i]] : sink;
    coords c;
    decode(s, index, &c);
    put_u64(cells[C_POINT], index);
    if (c.kind == K_SCALE) return eval_scale(s, c.k, cells, err);
    sw_trace *t = &s->traces[c.t];
    ms_cluster cl = s->clusters[c.c];
    cl.slots_per_device = s->slots[c.s];
    snprintf(cells[C_KIND], MS_SWEEP_CELL, c.kind == K_REPLAY ? "replay" : "grid");
    snprintf(cells[C_TRACE], MS_SWEEP_CELL, "%s", t->label);
    snprintf(cells[C_ALGO], MS_SWEEP_CELL, "%s", c.kind == K_REPLAY ? s->rp.init[c.a] : s->algos[c.a].label);
    snprintf(cells[C_ROUTE], MS_SWEEP_CELL, "%s", ms_route_name(s->routes[c.r]));
    put_u64(cells[C_ROWS], cl.rows);
    put_u64(cells[C_COLS], cl.cols);
    put_u64(cells[C_SLOTS], cl.slots_per_device);
    snprintf(cells[C_BATCH], MS_SWEEP_CELL, "%s", s->batches[c.b].label);

    pthread_mutex_lock(&s->mu);
    ms_status st = load_trace(s, t, err);
    pthread_mutex_unlock(&s->mu);
    if (st != MS_OK) return st; /* a trace that cannot be read stops the sweep */

    ms_error e = {0};
    st = c.kind == K_REPLAY ? eval_replay(s, &c, t, &cl, cells, &e) : eval_grid(s, &c, t, &cl, cells, &e);
    if (st == MS_E_INPUT || st == MS_E_UNSUPPORTED) { /* this combination does not work: say why, go on */
        snprintf(cells[C_ERROR], MS_SWEEP_CELL, "%.250s", e.msg);
        return MS_OK;
    }
    if (st != MS_OK && err) *err = e;
    return st;
}

void ms_sweep_spec_evaluator(ms_sweep_spec *s, int threads_per_point, ms_sweep_evaluator *out) {
    s->threads_per_point = threads_per_point > 0 ? threads_per_point : 1;
    out->n_columns = s->n_cols;
    out->columns = s->col_names;
    out->numeric = s->col_numeric;
    out->eval = spec_eval;
    out->ctx = s;
}
