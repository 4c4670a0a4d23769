/* bench_opt.c - `search` on DeepSeek-V3's shape: 58 MoE layers x 256 routed
 * experts + the shared expert -> 384 slots on 16 x 8 = 128 GPUs, 3 slots each
 * (256 routed + 16 shared replicas, one per row, + 112 replicas of hot
 * experts), trained on a synthetic DeepSeek-V3 trace. The bar: finish
 * within the time limit with a training objective at least as good as eplb's.
 * MOESIM_BENCH_OPT_TOKENS sets the trace size (default 32768 tokens),
 * MOESIM_BENCH_OPT_LIMIT the time limit (default 10 s). Then the speed of
 * the surrogate paths: one layer, a fixed number of moves, round-robin
 * routing (incremental), the load surrogate against the power surrogates
 * (peak power, energy, time under a per-GPU cap, under a cluster budget). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "moesim/gen.h"
#include "moesim/opt.h"

static double env_num(const char *name, double dflt, double lo) {
    const char *v = getenv(name);
    char *end;
    double x = v && *v ? strtod(v, &end) : NAN;
    return isfinite(x) && x >= lo ? x : dflt;
}

static int run_case(const ms_trace *t, const char *label, ms_route route, ms_cost_model cm, ms_batch_mode bm,
                    ms_search_objective obj, double limit) {
    ms_search_opts o;
    ms_search_opts_default(&o);
    o.place.cluster = (ms_cluster){16, 8, 3};
    o.place.shared_expert = true;
    o.place.lp_bound = false;
    o.sim.route = route;
    o.sim.cost_model = cm;
    o.batch.mode = bm;
    o.batch.batch_tokens = 4096;
    o.objective = obj;
    o.time_limit_s = limit;
    ms_placement *p = NULL;
    ms_error err = {0};
    double t0 = ms_now();
    ms_status st = ms_search_run(t, NULL, &o, &p, &err);
    double wall = ms_now() - t0;
    if (st != MS_OK) {
        printf("%s: failed: %s\n", label, err.msg);
        return 1;
    }
    json_error_t je;
    json_t *pj = json_loads(p->params, 0, &je);
    double f0 = pj ? json_number_value(json_object_get(pj, "init_objective")) : NAN;
    long long it = pj ? (long long)json_integer_value(json_object_get(pj, "iterations")) : -1;
    int cut = pj ? json_is_true(json_object_get(pj, "stopped_by_time")) : -1;
    printf("%s: %.2f s wall (limit %g s, %s), objective %s %.6g vs eplb %.6g (%+.2f%%), %lld moves, %s\n", label,
           wall, limit, wall <= limit ? "within" : "OVER", ms_search_objective_name(obj), p->objective, f0,
           100.0 * (p->objective - f0) / f0, it, cut ? "stopped by the time limit" : "iterations done");
    int rc = wall <= limit && p->objective <= f0 ? 0 : 1;
    json_decref(pj);
    ms_placement_free(p);
    return rc;
}

/* moves per second of the surrogate: one layer, `moves` moves, then the
 * (few) simulations of that layer */
static int speed_case(const ms_trace *t, const char *label, ms_search_objective obj, double gpu_w, double cluster_w,
                      uint64_t moves) {
    ms_search_opts o;
    ms_search_opts_default(&o);
    o.place.cluster = (ms_cluster){16, 8, 3};
    o.place.shared_expert = true;
    o.place.lp_bound = false;
    o.sim.route = MS_ROUTE_ROUND_ROBIN;
    o.sim.cost_model = MS_COST_ROOFLINE;
    o.sim.layer = 10;
    o.batch.mode = MS_BATCH_PREFILL;
    o.batch.batch_tokens = 4096;
    o.objective = obj;
    o.iterations = moves;
    o.chains = 1;
    o.threads = 1;
    o.time_limit_s = 600;
    o.cap.gpu_w = gpu_w;
    o.cap.cluster_w = cluster_w;
    o.cap_set = true;
    ms_placement *p = NULL;
    ms_error err = {0};
    double t0 = ms_now();
    ms_status st = ms_search_run(t, NULL, &o, &p, &err);
    double wall = ms_now() - t0;
    if (st != MS_OK) {
        printf("%s: failed: %s\n", label, err.msg);
        return 1;
    }
    json_error_t je;
    json_t *pj = json_loads(p->params, 0, &je);
    double f0 = pj ? json_number_value(json_object_get(pj, "init_objective")) : NAN;
    uint32_t win = pj ? (uint32_t)json_integer_value(json_object_get(pj, "windows")) : 0;
    printf("%s: %llu moves over %u windows in %.2f s (%.0f moves/s, simulations included), objective %s %.6g vs "
           "eplb %.6g (%+.2f%%)\n",
           label, (unsigned long long)moves, win, wall, moves / wall, ms_search_objective_name(obj), p->objective, f0,
           100.0 * (p->objective - f0) / f0);
    json_decref(pj);
    ms_placement_free(p);
    return 0;
}

int bench_opt(void) {
    double tokens = env_num("MOESIM_BENCH_OPT_TOKENS", 32768, 1000), limit = env_num("MOESIM_BENCH_OPT_LIMIT", 10, 0.1);
    ms_error err = {0};
    const ms_gen_preset *pr = ms_gen_preset_find("deepseek-v3", &err);
    if (!pr) {
        printf("no deepseek-v3 preset: %s\n", err.msg);
        return 1;
    }
    ms_gen_opts go;
    ms_gen_opts_default(&go);
    ms_gen_opts_apply_preset(&go, pr);
    go.n_requests = 128;
    go.total_tokens = (uint64_t)tokens;
    go.output_mean = 0;
    go.seed = 1;
    ms_trace *t = NULL;
    double t0 = ms_now();
    if (ms_gen_trace(&go, &t, &err) != MS_OK) {
        printf("gen failed: %s\n", err.msg);
        return 1;
    }
    printf("trace: synthetic deepseek-v3, %llu tokens, %u layers x %u experts, top-%u (%.2f s to generate)\n",
           (unsigned long long)t->n_tokens, t->n_layers, t->n_experts, t->top_k, ms_now() - t0);
    int rc = 0;
    rc |= run_case(t, "search least-loaded imbalance, roofline, prefill 4096 (58 x 384 slots, 128 GPUs)",
                   MS_ROUTE_LEAST_LOADED, MS_COST_ROOFLINE, MS_BATCH_PREFILL, MS_OBJ_IMBALANCE, limit);
    rc |= run_case(t, "search balanced-replicas p99 layer time, mesh, per-request (same shape)", MS_ROUTE_BALANCED,
                   MS_COST_MESH, MS_BATCH_PER_REQUEST, MS_OBJ_P99, limit);
    uint64_t mv = 200000;
    rc |= speed_case(t, "surrogate, load (mean layer time)", MS_OBJ_MEAN, NAN, INFINITY, mv);
    rc |= speed_case(t, "surrogate, power: peak-power", MS_OBJ_PEAK_POWER, NAN, INFINITY, mv);
    rc |= speed_case(t, "surrogate, power: energy", MS_OBJ_ENERGY, NAN, INFINITY, mv);
    rc |= speed_case(t, "surrogate, power: time-under-cap, 350 W per GPU", MS_OBJ_TIME_UNDER_CAP, 350, INFINITY, mv);
    rc |= speed_case(t, "surrogate, power: time-under-cap, 30 kW cluster", MS_OBJ_TIME_UNDER_CAP, NAN, 30e3, mv);
    ms_trace_free(t);
    return rc;
}
