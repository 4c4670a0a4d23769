/* bench_sim.c - simulator speed.
 *
 * 1. The mesh model on moe-balance's reference case (999 requests of
 *    deepseek-v2-lite-puffin, layer 10, its 2x8 placement, average-rows), one
 *    thread: milliseconds per (placement, layer) against the peer's ~1.2 s.
 *    Trace: MOESIM_BENCH_TRACE or ../shared/data/deepseek-v2-lite-puffin;
 *    placement: MOESIM_BENCH_PLACEMENT or ../shared/reference/moe-balance/...
 *    (skipped when absent).
 * 2. A synthetic DeepSeek-V3-scale trace built here (58 layers, 256 experts,
 *    top-8, 200k tokens, Zipf-skewed), 16x8 devices x 3 slots, prefill batches
 *    of 4096 tokens: routing events per second per core with least-loaded
 *    routing (roofline and mesh), against a plain pass that only reads every
 *    expert id (the memory-bound limit), and the memory per event. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "moesim/place.h"
#include "moesim/sim.h"
#include "moesim/trace.h"

typedef struct run_ctx {
    const ms_trace *t;
    const ms_batch_plan *plan;
    const ms_placement *p;
    ms_sim_opts o;
    double sink;
    int fail;
} run_ctx;

static void run_once(void *ctx) {
    run_ctx *c = ctx;
    ms_sim_result *r = NULL;
    ms_error err = {0};
    if (ms_sim_run(c->t, c->plan, c->p, &c->o, NULL, &r, &err) != MS_OK) {
        fprintf(stderr, "bench_sim: %s\n", err.msg);
        c->fail = 1;
        return;
    }
    c->sink += r->summary.layer_us.mean;
    ms_sim_result_free(r);
}

/* Best of reps runs of fn(ctx): wall seconds and process CPU seconds (the
 * CPU time is what counts on a shared machine; single-threaded runs only). */
static void best_of2(int reps, void (*fn)(void *), void *ctx, double *wall, double *cpu) {
    *wall = *cpu = 1e300;
    for (int i = 0; i < reps; i++) {
        struct timespec c0, c1;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
        double t0 = ms_now();
        fn(ctx);
        double dt = ms_now() - t0;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
        double dc = (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) * 1e-9;
        if (dt < *wall) *wall = dt;
        if (dc < *cpu) *cpu = dc;
    }
}

typedef struct scan_ctx {
    const uint16_t *ids;
    size_t n;
    uint64_t sink;
} scan_ctx;

static void plain_scan(void *ctx) {
    scan_ctx *s = ctx;
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    size_t i = 0;
    for (; i + 4 <= s->n; i += 4) {
        a0 += s->ids[i];
        a1 += s->ids[i + 1];
        a2 += s->ids[i + 2];
        a3 += s->ids[i + 3];
    }
    for (; i < s->n; i++) a0 += s->ids[i];
    s->sink += a0 + a1 + a2 + a3;
}

static int bench_reference(void) {
    const char *dir = getenv("MOESIM_BENCH_TRACE");
    const char *pf = getenv("MOESIM_BENCH_PLACEMENT");
    if (!dir) dir = "../shared/data/deepseek-v2-lite-puffin";
    if (!pf) pf = "../shared/reference/moe-balance/balance_dsv2lite_l10_2x8.placement.json";
    ms_error err = {0};
    ms_trace *t = NULL;
    ms_placement *p = NULL;
    ms_batch_plan *plan = NULL;
    const char *paths[1] = {dir};
    ms_trace_load_opts lo = {0};
    if (ms_trace_load(paths, 1, &lo, &t, &err) != MS_OK ||
        ms_placement_read_json(pf, NULL, t->n_experts, &p, &err) != MS_OK) {
        printf("mesh reference: skipped (%s)\n", err.msg);
        ms_trace_free(t);
        return 0;
    }
    ms_batch_opts bo;
    ms_batch_opts_default(&bo);
    int rc = 0;
    if (ms_batch_plan_build(t, &bo, ms_cluster_devices(&p->cluster), &plan, &err) != MS_OK) {
        printf("mesh reference: %s\n", err.msg);
        rc = 1;
    } else {
        run_ctx c = {t, plan, p, {0}, 0, 0};
        ms_sim_opts_default(&c.o);
        c.o.layer = 10;
        c.o.threads = 1;
        c.o.keep_records = false;
        uint64_t tokens = plan->n_tokens;
        for (int m = 0; m < 2 && !c.fail; m++) {
            c.o.origin = m == 0 ? MS_ORIGIN_AVERAGE_ROWS : MS_ORIGIN_ROUND_ROBIN;
            double w, s;
            best_of2(30, run_once, &c, &w, &s);
            printf("mesh reference (%s, %llu requests, %llu tokens, layer 10, 1 thread): %.3f ms CPU (%.3f ms wall) "
                   "per placement-layer, %.0fx the peer's 1.2 s, %.1f M events/s\n",
                   ms_origin_name(c.o.origin), (unsigned long long)plan->n_batches, (unsigned long long)tokens,
                   s * 1e3, w * 1e3, 1.2 / s, tokens * t->top_k / s / 1e6);
        }
        rc |= c.fail;
    }
    ms_batch_plan_free(plan);
    ms_placement_free(p);
    ms_trace_free(t);
    return rc;
}

/* A Zipf-skewed synthetic trace: per layer a random permutation of experts
 * gets weights 1/(rank+1)^0.8; tokens draw top_k distinct experts. */
static ms_trace *synth_trace(uint32_t layers, uint32_t experts, uint32_t k, uint64_t requests, uint64_t per_req,
                             uint64_t seed) {
    ms_error err = {0};
    ms_trace *t = NULL;
    uint64_t n = requests * per_req;
    if (ms_trace_new(layers, experts, k, 0, requests, n, &t, &err) != MS_OK) return NULL;
    for (uint64_t r = 0; r <= requests; r++) t->tok_offset[r] = r * per_req;
    for (uint64_t r = 0; r < requests; r++) {
        t->n_prompt[r] = (uint32_t)per_req;
        t->request_id[r] = (int64_t)r;
    }
    enum { TAB = 8192 };
    uint16_t *tab = malloc(TAB * sizeof *tab);
    uint64_t *perm = malloc(experts * sizeof *perm);
    uint64_t *seen = calloc(experts, sizeof *seen);
    ms_rng rng;
    ms_rng_seed(&rng, seed);
    uint64_t stamp = 0;
    for (uint32_t l = 0; l < layers; l++) {
        for (uint32_t e = 0; e < experts; e++) perm[e] = e;
        ms_rng_shuffle_u64(&rng, perm, experts);
        double tot = 0;
        for (uint32_t e = 0; e < experts; e++) tot += pow(e + 1.0, -0.8);
        uint32_t pos = 0;
        double acc = 0;
        for (uint32_t e = 0; e < experts; e++) {
            acc += pow(e + 1.0, -0.8) / tot;
            uint32_t end = e + 1 == experts ? TAB : (uint32_t)(acc * TAB);
            for (; pos < end && pos < TAB; pos++) tab[pos] = (uint16_t)perm[e];
        }
        uint16_t *row = t->experts + (uint64_t)l * n * k;
        for (uint64_t i = 0; i < n; i++) {
            stamp++;
            for (uint32_t j = 0; j < k; j++) {
                uint16_t e;
                do e = tab[ms_rng_next(&rng) & (TAB - 1)];
                while (seen[e] == stamp);
                seen[e] = stamp;
                row[i * k + j] = e;
            }
        }
    }
    free(tab);
    free(perm);
    free(seen);
    if (ms_trace_finish(t, &err) != MS_OK) {
        ms_trace_free(t);
        return NULL;
    }
    return t;
}

static int bench_synthetic(void) {
    const uint32_t L = 58, E = 256, K = 8;
    const uint64_t REQ = 200, PER = 1000;
    double g0 = ms_now();
    ms_trace *t = synth_trace(L, E, K, REQ, PER, 7);
    if (!t) {
        printf("synthetic trace: out of memory\n");
        return 1;
    }
    double gen_s = ms_now() - g0;
    ms_error err = {0};
    ms_cluster cl = {16, 8, 3};
    ms_placement *p = NULL;
    if (ms_placement_new(1, &cl, E, false, &p, &err) != MS_OK) {
        ms_trace_free(t);
        return 1;
    }
    /* every expert once, then 128 replicas of experts 0..127, spread */
    for (uint32_t s = 0; s < p->n_phys; s++) p->phy2log[s] = (int32_t)((s * 37u) % 384u < 256 ? (s * 37u) % 384u : (s * 37u) % 384u - 256);
    ms_batch_plan *plan = NULL;
    ms_batch_opts bo;
    ms_batch_opts_default(&bo);
    bo.mode = MS_BATCH_PREFILL;
    bo.batch_tokens = 4096;
    ms_hw_preset hw;
    ms_model_preset mp;
    int rc = 0;
    if (ms_placement_index(p, &err) != MS_OK || ms_placement_check(p, &err) != MS_OK ||
        ms_batch_plan_build(t, &bo, ms_cluster_devices(&cl), &plan, &err) != MS_OK ||
        ms_hw_preset_load("h100-sxm", &hw, &err) != MS_OK || ms_model_preset_load("deepseek-v3", &mp, &err) != MS_OK) {
        printf("synthetic: %s\n", err.msg);
        rc = 1;
        goto out;
    }
    uint64_t events = (uint64_t)L * t->n_tokens * K;
    printf("synthetic DeepSeek-V3 trace: %u layers x %u experts top-%u, %llu tokens, %.1f M events, generated in "
           "%.2f s; %llu prefill batches of ~4096 tokens, 16x8 devices x 3 slots\n",
           L, E, K, (unsigned long long)t->n_tokens, events / 1e6, gen_s, (unsigned long long)plan->n_batches);
    scan_ctx sc = {t->experts, (size_t)events, 0};
    double scan_w, scan_s;
    best_of2(5, plain_scan, &sc, &scan_w, &scan_s);
    printf("plain pass reading every id: %.1f ms CPU, %.0f M events/s (%.2f GB/s; sum of ids %llu)\n", scan_s * 1e3,
           events / scan_s / 1e6, events * 2.0 / scan_s / 1e9, (unsigned long long)(sc.sink / 5));
    run_ctx c = {t, plan, p, {0}, 0, 0};
    ms_sim_opts_default(&c.o);
    c.o.keep_records = false;
    c.o.hw = &hw;
    c.o.model = &mp;
    struct {
        ms_cost_model m;
        ms_route r;
        int threads;
        const char *what;
    } cases[] = {
        {MS_COST_ROOFLINE, MS_ROUTE_LEAST_LOADED, 1, "roofline, least-loaded, 1 thread"},
        {MS_COST_ROOFLINE, MS_ROUTE_LEAST_LOADED, 0, "roofline, least-loaded, all threads"},
        {MS_COST_ROOFLINE, MS_ROUTE_ROUND_ROBIN, 1, "roofline, round-robin, 1 thread"},
        {MS_COST_ROOFLINE, MS_ROUTE_SPLIT, 1, "roofline, split, 1 thread"},
        {MS_COST_MESH, MS_ROUTE_LEAST_LOADED, 1, "mesh average-rows (16 rows), least-loaded, 1 thread"},
        {MS_COST_MESH, MS_ROUTE_BALANCED, 1, "mesh average-rows (16 rows), balanced-replicas, 1 thread"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0] && !c.fail; i++) {
        c.o.cost_model = cases[i].m;
        c.o.route = cases[i].r;
        c.o.threads = cases[i].threads;
        c.o.origin = cases[i].m == MS_COST_MESH ? MS_ORIGIN_AVERAGE_ROWS : MS_ORIGIN_DP;
        double w, s;
        best_of2(3, run_once, &c, &w, &s);
        if (cases[i].threads != 1) s = w; /* CPU time sums the threads: report wall time */
        printf("%s: %.1f ms %s, %.1f M events/s, %.1fx the plain pass's time\n", cases[i].what, s * 1e3,
               cases[i].threads != 1 ? "wall" : "CPU", events / s / 1e6, s / scan_s);
    }
    rc |= c.fail;
    double plan_bytes = (double)plan->n_tokens * (sizeof *plan->tok + sizeof *plan->origin) +
                        (plan->n_batches + 1.0) * sizeof *plan->off;
    printf("memory per event: trace %.3f bytes + batch plan %.4f bytes (+ per-thread tables of a few KB)\n",
           (double)events * 2 / events, plan_bytes / events);
out:
    ms_batch_plan_free(plan);
    ms_placement_free(p);
    ms_trace_free(t);
    return rc;
}

int bench_sim(void) {
    int rc = bench_reference();
    rc |= bench_synthetic();
    return rc;
}
